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

__all__ = ["REPO", "Process", "free_port", "log_tail", "running", "torchserve_worker_port"]


@contextlib.contextmanager
def running(name: str, args: Sequence[str], log: Path, env: dict[str, str] | None = None) -> Iterator[Process]:
    """``python ARGS`` with this environment plus ``env``, always stopped afterwards."""
    with Process.python(name, list(args), log, env={**os.environ, **(env or {})}) as proc:
        yield proc
