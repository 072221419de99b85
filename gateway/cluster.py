"""Several gateway workers answering as one: each serves its statistics on a unix socket; any worker merges them.

With ``GATEWAY_WORKERS`` > 1 (:mod:`.workers`) every worker keeps its own stats, so a
``/v1/stats`` that reached one worker would see only its share. Each worker therefore
listens on ``<directory>/worker-<index>.sock`` for two one-line commands: ``dump`` (its
:meth:`~gateway.stats.Stats.dump`, as JSON) and ``reset``. The worker answering
``/v1/stats`` asks every other worker and merges the dumps with its own (HdrHistograms add
exactly), so the answer covers every request every worker answered. Metrics need no such
exchange: prometheus_client's multiprocess mode shares them through files (:mod:`.metrics`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

log = logging.getLogger("gateway.cluster")
#: a peer that does not answer within this is left out of the merge (and named in the answer)
PEER_TIMEOUT_S = 2.0


class Cluster:
    """This worker's place among ``workers`` siblings sharing ``directory``."""

    def __init__(self, directory: Path, index: int, workers: int) -> None:
        self.directory = directory
        self.index = index
        self.workers = workers
        self.server: asyncio.AbstractServer | None = None

    def socket(self, index: int) -> Path:
        return self.directory / f"worker-{index}.sock"

    async def start(self, dump: Callable[[], dict[str, Any]], reset: Callable[[], None]) -> None:
        """Serve ``dump`` and ``reset`` to the siblings."""

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                command = (await reader.readline()).strip()
                if command == b"dump":
                    writer.write(orjson.dumps(dump()))
                elif command == b"reset":
                    reset()
                    writer.write(b'{"status": "reset"}')
                await writer.drain()
            finally:
                writer.close()

        path = self.socket(self.index)
        path.unlink(missing_ok=True)
        self.server = await asyncio.start_unix_server(handle, path=str(path))

    async def ask(self, command: str) -> tuple[list[dict[str, Any]], list[int]]:
        """Every other worker's answer to ``command``; and the workers that did not answer."""

        async def one(index: int) -> dict[str, Any]:
            reader, writer = await asyncio.open_unix_connection(str(self.socket(index)))
            try:
                writer.write(command.encode() + b"\n")
                await writer.drain()
                answer: dict[str, Any] = orjson.loads(await reader.read())
                return answer
            finally:
                writer.close()

        others = [i for i in range(self.workers) if i != self.index]
        found = await asyncio.gather(
            *(asyncio.wait_for(one(i), PEER_TIMEOUT_S) for i in others), return_exceptions=True
        )
        answers = [a for a in found if isinstance(a, dict)]
        missing = [i for i, a in zip(others, found, strict=True) if not isinstance(a, dict)]
        for index in missing:
            log.warning("gateway worker %d did not answer %r; left out", index, command)
        return answers, missing

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            with contextlib.suppress(Exception):
                await self.server.wait_closed()
        self.socket(self.index).unlink(missing_ok=True)
