"""The whole native stack (TorchServe, TF server, gateway) for integration tests, on free ports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from contract.keys import read_key
from contract.stackinfo import StackInfo
from tests.utils.servers import REPO, free_port, log_tail, torchserve_worker_port

SERVICES = ("torch_api", "tf_api", "gateway")


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

    def tails(self) -> str:
        """Every service's launcher log tail."""
        return "\n".join(f"--- {s} ---\n{log_tail(self.log_dir / s / 'launcher.log', 30)}" for s in SERVICES)

    def key(self) -> str:
        return read_key(self.info.torch_key_file)


def _alive(pid: int) -> bool:
    try:
        os.killpg(pid, 0)
    except ProcessLookupError:
        return False
    return True


@contextmanager
def running_stack(base: Path, torch_models: str = "all", artifacts: Path | None = None) -> Iterator[Stack]:
    """``python -m stack up`` on free ports under ``base``; ``down`` afterwards, checking nothing is left.

    ``artifacts``: the artifacts root to serve (default: the built one, ``artifacts/``).
    """
    env = dict(os.environ)
    if artifacts is not None:
        env["DUOSERVE_ARTIFACTS"] = str(artifacts)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    names = ["TORCH_API_INFERENCE_PORT", "TORCH_API_MANAGEMENT_PORT", "TORCH_API_METRICS_PORT",
             "TORCH_API_GRPC_INFERENCE_PORT", "TORCH_API_GRPC_MANAGEMENT_PORT", "TF_API_REST_PORT",
             "TF_API_GRPC_PORT", "GATEWAY_PORT", "GATEWAY_GRPC_PORT"]  # fmt: skip
    env.update({name: str(free_port()) for name in names})
    env.update(
        TORCH_API_WORKER_PORT=str(torchserve_worker_port()),
        TORCH_API_MODELS=torch_models,
        STACK_RUN_DIR=str(base / "run"),
        STACK_LOG_DIR=str(base / "logs"),
        # TorchServe's access log is off in production; the tests read it to see what reached TorchServe
        TORCH_API_ACCESS_LOG="true",
    )
    stack = Stack(None, env, base / "run", base / "logs")  # type: ignore[arg-type]  # set once it is up
    started = stack.command("up")
    try:
        if started.returncode != 0:
            raise RuntimeError(f"stack up failed ({started.returncode}):\n{started.stdout}\n{started.stderr}")
        stack.info = StackInfo.read(stack.run_dir / "stack.json")
        stack.pids = json.loads((stack.run_dir / "stack.pids.json").read_text())
        yield stack
    finally:
        pids = (
            json.loads((stack.run_dir / "stack.pids.json").read_text())
            if (stack.run_dir / "stack.pids.json").exists()
            else {}
        )
        stopped = stack.command("down", timeout=120)
        assert stopped.returncode == 0, stopped.stderr
        left = {s: p for s, p in pids.items() if _alive(p)}
        assert not left, f"processes left behind after `stack down`: {left}"
