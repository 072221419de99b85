"""A whole native stack on free loopback ports, in a directory of its own: for the tests and the zoo.

:func:`running_stack` runs ``python -m stack up`` (:mod:`stack.native`, the one way the stack
starts) with every port moved to a free one and its run and log directories under ``base``,
yields a :class:`Stack`, and runs ``python -m stack down`` afterwards, checking that no
process group of it is left.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from contract.keys import read_key
from contract.stackinfo import StackInfo
from services.process import REPO, free_port, log_tail

SERVICES = ("torch_api", "tf_api", "gateway")
PORT_VARIABLES = (
    "TORCH_API_INFERENCE_PORT", "TORCH_API_MANAGEMENT_PORT", "TORCH_API_METRICS_PORT",
    "TORCH_API_GRPC_INFERENCE_PORT", "TORCH_API_GRPC_MANAGEMENT_PORT", "TF_API_REST_PORT", "TF_API_GRPC_PORT",
    "GATEWAY_PORT", "GATEWAY_GRPC_PORT", "TRITON_API_HTTP_PORT", "TRITON_API_GRPC_PORT", "TRITON_API_METRICS_PORT",
)  # fmt: skip


def torchserve_worker_port() -> int:
    """First of a free range of TorchServe worker socket numbers (``/tmp/.ts.sock.<port>``).

    Clear of 9000, the default a running ``make up`` stack uses.
    """
    rng = random.Random()
    while True:
        port = rng.randrange(20000, 60000, 100)
        if not any(Path(f"/tmp/.ts.sock.{port + i}").exists() for i in range(20)):
            return port


@dataclass
class Stack:
    """A running stack: its ``stack.json``, environment and directories."""

    info: StackInfo
    env: dict[str, str]
    run_dir: Path
    log_dir: Path
    pids: dict[str, int] = field(default_factory=dict)

    def command(self, *args: str, timeout: float = 400) -> subprocess.CompletedProcess[str]:
        """Run ``python -m stack ARGS`` with this stack's environment."""
        return subprocess.run(
            [sys.executable, "-m", "stack", *args],
            cwd=REPO, env=self.env, capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip

    @property
    def services(self) -> list[str]:
        """The services this stack runs (Triton where it was asked for)."""
        return (
            [s for s in SERVICES if s != "gateway"]
            + (["triton_api"] if self.info is not None and self.info.triton else [])
            + ["gateway"]
        )

    def tails(self) -> str:
        """Every service's launcher log tail."""
        return "\n".join(f"--- {s} ---\n{log_tail(self.log_dir / s / 'launcher.log', 30)}" for s in self.services)

    def key(self) -> str:
        return read_key(self.info.torch_key_file)


def _alive(pid: int) -> bool:
    try:
        os.killpg(pid, 0)
    except ProcessLookupError:
        return False
    return True


@contextmanager
def running_stack(
    base: Path,
    torch_models: str = "all",
    artifacts: Path | None = None,
    env: dict[str, str] | None = None,
    triton_models: str = "none",
) -> Iterator[Stack]:
    """``python -m stack up`` on free ports under ``base``; ``down`` afterwards, checking nothing is left.

    ``artifacts``: the artifacts root to serve (default: the built one, ``artifacts/``);
    ``torch_models``: the archives TorchServe loads (``TORCH_API_MODELS``); ``triton_models``: the
    models Triton loads (``TRITON_API_MODELS``; none by default: a scratch stack starts Triton only
    when asked, each of its instances being a process with its own torch); ``env``: more variables.
    :class:`RuntimeError` (with the output of ``up``) when the stack does not come up, or when a
    process group outlives ``down``.
    """
    full = dict(os.environ)
    if artifacts is not None:
        full["DUOSERVE_ARTIFACTS"] = str(artifacts)
    full["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), full.get("PYTHONPATH")]))
    full.update({name: str(free_port()) for name in PORT_VARIABLES})
    full.update(
        TORCH_API_WORKER_PORT=str(torchserve_worker_port()),
        TORCH_API_MODELS=torch_models,
        TRITON_API_MODELS=triton_models,
        STACK_RUN_DIR=str(base / "run"),
        STACK_LOG_DIR=str(base / "logs"),
    )
    full.update(env or {})
    stack = Stack(None, full, base / "run", base / "logs")  # type: ignore[arg-type]  # set once it is up
    started = stack.command("up")
    try:
        if started.returncode != 0:
            raise RuntimeError(f"stack up failed ({started.returncode}):\n{started.stdout}\n{started.stderr}")
        stack.info = StackInfo.read(stack.run_dir / "stack.json")
        stack.pids = json.loads((stack.run_dir / "stack.pids.json").read_text())
        yield stack
    finally:
        pids_file = stack.run_dir / "stack.pids.json"
        pids = json.loads(pids_file.read_text()) if pids_file.exists() else {}
        stopped = stack.command("down", timeout=120)
        if stopped.returncode != 0:
            raise RuntimeError(f"stack down failed ({stopped.returncode}): {stopped.stderr}")
        left = {s: p for s, p in pids.items() if _alive(p)}
        if left:
            raise RuntimeError(f"processes left behind after `stack down`: {left}")
