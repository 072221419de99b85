"""Who used the CPU during a measurement: the load generator, the stack under test, everything else.

On a shared host other work competes with the servers for the same cores; a figure taken
while other processes used a core's worth of CPU is not a figure of the servers alone. Each
run records the host's CPU over its measured windows (percent of one core, so a 2-core host
peaks at 200 %), the stack's own processes (every process of the services ``stack.json``
names, children included: TorchServe's frontend and workers, Triton and its stubs, the TF
server, the gateway) and this process (the load generator); the rest is *other*. Each
service's own CPU seconds are kept too: divided by the requests the windows completed, they
are a target's CPU per request (:func:`cpu_ms_per_request`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import psutil  # type: ignore[import-untyped]


def _tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) of process ``pid`` and its children so far; 0 for a process gone."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0.0
    total = 0.0
    for proc in procs:
        try:
            times = proc.cpu_times()
            total += times.user + times.system
        except psutil.Error:
            continue
    return total


#: The services whose processes serve a backend's requests (``stack.json``'s names).
SERVER_OF = {"torch": "torch_api", "torch_ort": "torch_api", "triton": "triton_api", "triton_ort": "triton_api",
             "tf": "tf_api"}  # fmt: skip


@dataclass(frozen=True)
class Sample:
    """CPU seconds so far: the whole host, each of the stack's services, this process."""

    host: float
    services: dict[str, float]
    own: float

    @property
    def stack(self) -> float:
        return sum(self.services.values())


class HostLoad:
    """Samples CPU use; :meth:`between` turns two samples into shares of one core."""

    def __init__(self, stack_pids: dict[str, int]) -> None:
        self.stack_pids = stack_pids
        self.own = psutil.Process()

    def sample(self) -> Sample:
        host = psutil.cpu_times()
        busy = sum(getattr(host, f, 0.0) for f in ("user", "nice", "system", "irq", "softirq", "steal"))
        own = self.own.cpu_times()
        services = {name: _tree_cpu(pid) for name, pid in self.stack_pids.items()}
        return Sample(busy, services, own.user + own.system)

    @staticmethod
    def between(a: Sample, b: Sample, seconds: float) -> dict[str, Any]:
        """Percent of one core over ``seconds``: host, stack, load generator, other; the core count; and each
        service's CPU seconds."""
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
            "service_cpu_s": {n: round(b.services[n] - a.services.get(n, 0.0), 4) for n in b.services},
        }


def cpu_ms_per_request(host: dict[str, Any] | None, backend: str, via_gateway: bool) -> float | None:
    """CPU milliseconds per request of the processes that served it: the backend's server, and the gateway when
    the target goes through it; from a run's ``host`` (:meth:`HostLoad.between` and the ``requests`` its
    windows completed). None when unrecorded (an older run, a backend without one server)."""
    services = [SERVER_OF.get(backend, ""), *(["gateway"] if via_gateway else [])]
    used = (host or {}).get("service_cpu_s") or {}
    requests = (host or {}).get("requests")
    if not requests or any(s not in used for s in services):
        return None
    return float(sum(used[s] for s in services) / requests * 1000)
