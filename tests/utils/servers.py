"""Start real servers for tests: free loopback ports, bounded readiness waits, log tails on failure.

The process helper is the project's own (:mod:`services.process`); this module only adds
what tests need beside it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

from services.process import REPO, Process, free_port, log_tail
from stack.scratch import torchserve_worker_port

__all__ = ["REPO", "Process", "free_port", "listening", "log_tail", "running", "torchserve_worker_port"]


def listening(pids: Sequence[int]) -> list[tuple[str, int, str, int]]:
    """Every TCP socket listening in this network namespace held by ``pids`` or their descendants:
    ``(process name, pid, address, port)``, an IPv4-mapped IPv6 address written as IPv4; a socket in another
    namespace is unreachable from here and not listed."""
    import psutil

    tree: dict[int, str] = {}
    for pid in pids:
        with contextlib.suppress(psutil.NoSuchProcess):
            root = psutil.Process(pid)
            for proc in [root, *root.children(recursive=True)]:
                with contextlib.suppress(psutil.NoSuchProcess):
                    tree[proc.pid] = proc.name()
    return sorted(
        (tree[c.pid], c.pid, c.laddr.ip.removeprefix("::ffff:"), c.laddr.port)  # Java's IPv4-mapped addresses
        for c in psutil.net_connections(kind="tcp")
        if c.status == psutil.CONN_LISTEN and c.pid in tree
    )


def host_addresses() -> list[str]:
    """This host's non-loopback IPv4 addresses (where a server on every interface would be reachable)."""
    import psutil

    return [
        a.address
        for addrs in psutil.net_if_addrs().values()
        for a in addrs
        if a.family.name == "AF_INET" and not a.address.startswith("127.")
    ]


@contextlib.contextmanager
def running(name: str, args: Sequence[str], log: Path, env: dict[str, str] | None = None) -> Iterator[Process]:
    """``python ARGS`` with this environment plus ``env``, always stopped afterwards."""
    with Process.python(name, list(args), log, env={**os.environ, **(env or {})}) as proc:
        yield proc
