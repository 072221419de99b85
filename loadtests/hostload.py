"""Who used the CPU during a measurement: the load generator, the stack under test, everything else.

On a shared host other work competes with the servers for the same cores; a figure taken
while other processes used a core's worth of CPU is not a figure of the servers alone. Each
run records the host's CPU over its measured windows (percent of one core, so a 2-core host
peaks at 200 %), the stack's own processes (every process of the services ``stack.json``
names, children included: TorchServe's frontend and workers, the TF server, the gateway)
and this process (the load generator); the rest is *other*.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import psutil  # type: ignore[import-untyped]


def _tree_cpu(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            root = psutil.Process(pid)
            for proc in [root, *root.children(recursive=True)]:
                try:
                    times = proc.cpu_times()
                    total += times.user + times.system
                except psutil.Error:
                    continue
        except psutil.Error:
            continue
    return total


@dataclass(frozen=True)
class Sample:
    """CPU seconds so far: the whole host, the stack's processes, this process."""

    host: float
    stack: float
    own: float


class HostLoad:
    """Samples CPU use; :meth:`between` turns two samples into shares of one core."""

    def __init__(self, stack_pids: list[int]) -> None:
        self.stack_pids = stack_pids
        self.own = psutil.Process()

    def sample(self) -> Sample:
        host = psutil.cpu_times()
        busy = sum(getattr(host, f, 0.0) for f in ("user", "nice", "system", "irq", "softirq", "steal"))
        own = self.own.cpu_times()
        return Sample(busy, _tree_cpu(self.stack_pids), own.user + own.system)

    @staticmethod
    def between(a: Sample, b: Sample, seconds: float) -> dict[str, Any]:
        """Percent of one core over ``seconds``: host, stack, load generator, other; and the core count."""
        if seconds <= 0:
            return {}
        host = (b.host - a.host) / seconds * 100
        stack = (b.stack - a.stack) / seconds * 100
        own = (b.own - a.own) / seconds * 100
        return {
            "cores": os.cpu_count(),
            "host_percent": round(host, 1),
            "stack_percent": round(stack, 1),
            "loadgen_percent": round(own, 1),
            "other_percent": round(max(0.0, host - stack - own), 1),
        }
