"""Start real servers for tests: free loopback ports, bounded readiness waits, log tails on failure."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from services.common.procs import free_port as free_port  # re-exported for the tests

REPO = Path(__file__).resolve().parents[2]


def torchserve_worker_port() -> int:
    """First of a free range of TorchServe worker socket numbers (``/tmp/.ts.sock.<port>``).

    Clear of 9000, the default a running ``make up`` stack uses.
    """
    rng = random.Random()
    while True:
        port = rng.randrange(20000, 60000, 100)
        if not any(Path(f"/tmp/.ts.sock.{port + i}").exists() for i in range(20)):
            return port


def log_tail(path: Path, lines: int = 60) -> str:
    """The last ``lines`` lines of a log file (or a note that it is empty)."""
    if not path.exists():
        return f"(no log at {path})"
    text = path.read_text(errors="replace").splitlines()
    return "\n".join(text[-lines:]) or f"(empty log at {path})"


class ServerProcess:
    """A server started in its own process group, its output in a log file."""

    def __init__(self, name: str, cmd: Sequence[str], log: Path, env: dict[str, str] | None = None) -> None:
        self.name = name
        self.log = log
        log.parent.mkdir(parents=True, exist_ok=True)
        full_env = dict(os.environ)
        full_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), full_env.get("PYTHONPATH")]))
        full_env.update(env or {})
        self._log_file = log.open("wb")
        self.proc = subprocess.Popen(
            list(cmd), cwd=REPO, env=full_env, stdout=self._log_file, stderr=subprocess.STDOUT, start_new_session=True
        )

    def tail(self, lines: int = 60) -> str:
        return f"--- {self.name} log tail ({self.log}) ---\n{log_tail(self.log, lines)}"

    def wait_ready(self, probe: Callable[[], bool], timeout: float, interval: float = 0.25) -> None:
        """Poll ``probe`` until it is true; raise with the log tail on timeout or early exit."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode} before ready\n{self.tail()}")
            with contextlib.suppress(Exception):
                if probe():
                    return
            time.sleep(interval)
        raise RuntimeError(f"{self.name} not ready after {timeout:.0f} s\n{self.tail()}")

    def stop(self, timeout: float = 20.0) -> int | None:
        """SIGTERM the process group, then SIGKILL if it lingers; returns the exit code."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        # children (e.g. TorchServe's workers) may outlive the leader
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self._log_file.close()
        return self.proc.returncode


@contextlib.contextmanager
def running(name: str, cmd: Sequence[str], log: Path, env: dict[str, str] | None = None) -> Iterator[ServerProcess]:
    """Context manager around :class:`ServerProcess` that always stops it."""
    server = ServerProcess(name, cmd, log, env)
    try:
        yield server
    finally:
        server.stop()


def python_cmd(*args: str) -> list[str]:
    """``python args...`` with the interpreter running the tests."""
    return [sys.executable, *args]
