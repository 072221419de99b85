"""Start a server process and know, within a bound, that it is ready; or say why not, with its log tail.

The one helper behind every launcher (TorchServe's Java frontend, the TF binary), the
stack, the benchmarks and the tests: a :class:`Process` runs in its own process group
with its output in a log file (with ``rotate``, a file that rolls over at a size:
:mod:`services.logsink`); :meth:`Process.wait_ready` polls a probe (an HTTP check,
a line in the log, an open port) until it holds, and raises :class:`StartError` with the
log tail when the process exits or the time runs out. :func:`check_ports` refuses to
start anything while a port it needs is taken, naming the port and its variable.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType

REPO = Path(__file__).resolve().parents[1]
Probe = Callable[[], bool]


class StartError(RuntimeError):
    """A process did not become ready; the message names it and ends with its log tail."""


class PortInUseError(RuntimeError):
    """A port a service needs is taken; the message names the port and the variable that moves it."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that was free a moment ago."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_free(host: str, port: int) -> bool:
    """Whether ``host:port`` can be bound now (a listening server, ours or not, makes it taken)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def check_ports(ports: Mapping[str, tuple[str, int]]) -> None:
    """Raise :class:`PortInUseError` for the first ``variable -> (host, port)`` that is taken."""
    seen: dict[tuple[str, int], str] = {}
    for variable, (host, port) in ports.items():
        if (host, port) in seen:
            raise PortInUseError(f"port {port} is set twice: {seen[(host, port)]} and {variable}; move one")
        seen[(host, port)] = variable
        if not port_free(host, port):
            raise PortInUseError(f"port {port} on {host} is already in use; set {variable} to another port")


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` is running (a zombie child of ours counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie child of ours counts as gone
    with contextlib.suppress(ChildProcessError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done:
            return False
    return True


def log_tail(path: Path, lines: int = 40) -> str:
    """The last ``lines`` lines of a log file (or a note that there is none)."""
    if not path.exists():
        return f"(no log at {path})"
    with path.open("rb") as f:
        f.seek(max(0, path.stat().st_size - 200 * lines))
        text = f.read().decode(errors="replace").splitlines()[-lines:]
    return "\n".join(text) or f"(empty log at {path})"


def wait_until(
    ready: Probe,
    *,
    what: str,
    timeout_s: float,
    failed: Callable[[], str | None] = lambda: None,
    tail: Callable[[], str] = lambda: "",
    interval_s: float = 0.25,
) -> None:
    """Poll ``ready`` until it is true; :class:`StartError` when ``failed`` says why, or after ``timeout_s``.

    A probe that raises counts as not ready (the server is still coming up).
    """
    deadline = time.monotonic() + timeout_s
    while True:
        why = failed()
        if why:
            raise StartError(f"{what} {why}\n{tail()}")
        with contextlib.suppress(Exception):
            if ready():
                return
        if time.monotonic() > deadline:
            raise StartError(f"{what} not ready after {timeout_s:g} s\n{tail()}")
        time.sleep(interval_s)


def http_probe(url: str, *, headers: Mapping[str, str] | None = None, timeout_s: float = 2.0) -> Probe:
    """A probe that holds when ``GET url`` answers 200."""

    def probe() -> bool:
        request = urllib.request.Request(url, headers=dict(headers or {}))
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as response:
                return int(response.status) == 200
        except (urllib.error.URLError, OSError):
            return False

    return probe


def port_probe(host: str, port: int) -> Probe:
    """A probe that holds once something accepts connections on ``host:port``."""

    def probe() -> bool:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.settimeout(0.5)
            return sock.connect_ex((host, port)) == 0

    return probe


class Process:
    """A child process with its output in ``log``; stopped (TERM, then KILL) with its whole group."""

    def __init__(
        self,
        name: str,
        cmd: Sequence[str],
        log: Path,
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path = REPO,
        own_group: bool = True,
        append: bool = False,
        rotate: tuple[int, int] | None = None,
    ) -> None:
        self.name = name
        self.log = log
        self.own_group = own_group
        log.parent.mkdir(parents=True, exist_ok=True)
        full_env = dict(os.environ if env is None else env)
        full_env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(filter(None, [str(REPO), full_env.get("PYTHONPATH")])))
        if rotate is not None:
            # the output goes through services.logsink, which rolls the file over at a size; the pid is the sink's
            max_bytes, backups = rotate
            sink = [sys.executable, "-m", "services.logsink", "--max-bytes", str(max_bytes), "--backups", str(backups)]
            sink += [] if append else ["--truncate"]
            sink += ["--group"] if own_group else []
            cmd = [*sink, str(log), "--", *cmd]
            with log.open("ab"):
                pass
            self.popen = subprocess.Popen(
                list(cmd), cwd=cwd, env=full_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                start_new_session=own_group,
            )  # fmt: skip
            return
        with log.open("ab" if append else "wb") as out:
            self.popen = subprocess.Popen(
                list(cmd), cwd=cwd, env=full_env, stdout=out, stderr=subprocess.STDOUT, start_new_session=own_group
            )

    @classmethod
    def python(cls, name: str, args: Sequence[str], log: Path, **kwargs: object) -> Process:
        """``python ARGS`` with the interpreter running this code."""
        return cls(name, [sys.executable, *args], log, **kwargs)  # type: ignore[arg-type]

    @property
    def pid(self) -> int:
        return int(self.popen.pid)

    @property
    def returncode(self) -> int | None:
        return self.popen.poll()

    def tail(self, lines: int = 40) -> str:
        return f"--- {self.name} log tail ({self.log}) ---\n{log_tail(self.log, lines)}"

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def exited(self) -> str | None:
        """Why the process is gone (``exited with 1``), or None while it runs."""
        code = self.popen.poll()
        return None if code is None else f"exited with {code}"

    def wait_ready(
        self,
        probe: Probe | None = None,
        *,
        line: str | None = None,
        timeout_s: float,
        interval_s: float = 0.25,
    ) -> Process:
        """Block until ``probe`` holds (or ``line`` appears in the log); :class:`StartError` with the log tail."""
        if probe is None:
            if line is None:
                raise ValueError("wait_ready needs a probe or a line")
            text = line
            probe = lambda: text in self.log_text()  # noqa: E731
        ready = probe
        wait_until(
            ready, what=self.name, timeout_s=timeout_s, failed=self.exited, tail=self.tail, interval_s=interval_s
        )
        return self

    def signal(self, signum: int) -> None:
        """Send ``signum`` to the process (and its group when it has its own)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if self.own_group:
                os.killpg(self.popen.pid, signum)
            else:
                self.popen.send_signal(signum)

    def stop(self, timeout_s: float = 30.0) -> int | None:
        """SIGTERM, then SIGKILL after ``timeout_s``; the group's stragglers (e.g. workers) are killed too."""
        if self.popen.poll() is None:
            self.signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.signal(signal.SIGKILL)
                self.popen.wait(5)
        if self.own_group:
            self.signal(signal.SIGKILL)
        return self.popen.returncode

    def __enter__(self) -> Process:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
