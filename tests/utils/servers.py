"""Start real servers for tests: free loopback ports, bounded readiness waits, log tails on failure.

The process helper is the project's own (:mod:`services.process`); this module only adds
what tests need beside it.
"""

from __future__ import annotations

import contextlib
import os
import random
from collections.abc import Iterator, Sequence
from pathlib import Path

from services.process import REPO, Process, free_port, log_tail

__all__ = ["REPO", "Process", "free_port", "log_tail", "running", "torchserve_worker_port"]


def torchserve_worker_port() -> int:
    """First of a free range of TorchServe worker socket numbers (``/tmp/.ts.sock.<port>``).

    Clear of 9000, the default a running ``make up`` stack uses.
    """
    rng = random.Random()
    while True:
        port = rng.randrange(20000, 60000, 100)
        if not any(Path(f"/tmp/.ts.sock.{port + i}").exists() for i in range(20)):
            return port


@contextlib.contextmanager
def running(name: str, args: Sequence[str], log: Path, env: dict[str, str] | None = None) -> Iterator[Process]:
    """``python ARGS`` with this environment plus ``env``, always stopped afterwards."""
    with Process.python(name, list(args), log, env={**os.environ, **(env or {})}) as proc:
        yield proc
