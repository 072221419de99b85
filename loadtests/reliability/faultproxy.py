"""A small fault-injecting TCP proxy for the reliability tests (Toxiproxy is on neither Debian nor PyPI).

One proxy forwards ``127.0.0.1:<port>`` to one loopback upstream and injects one fault
at a time, switchable at runtime from any thread::

    pass        forward bytes both ways
    latency     forward, but hold every chunk coming back from the upstream ``latency_s``
    reset       accept, then reset (RST) the connection; open ones are reset too
    blackhole   accept and read, never forward or answer; open ones stop forwarding
    down        stop listening (connections are refused); open ones are reset

It runs its own event loop in a daemon thread so synchronous tests can drive it. It is
bounded: loopback only, at most ``max_connections`` open at once (more are reset), and
``close()`` stops everything it started.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import struct
import threading
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

Mode = Literal["pass", "latency", "reset", "blackhole", "down"]
MODES: tuple[Mode, ...] = ("pass", "latency", "reset", "blackhole", "down")
_CHUNK = 65536


def _loopback(host: str) -> None:
    if host != "localhost" and not ipaddress.ip_address(host).is_loopback:
        raise ValueError(f"fault proxy: {host} is not a loopback address")


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with RST rather than FIN (SO_LINGER 0)."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


@dataclass
class Counters:
    """What the proxy did, for tests to assert on."""

    accepted: int = 0
    forwarded: int = 0
    reset: int = 0
    blackholed: int = 0
    over_limit: int = 0
    by_mode: dict[str, int] = field(default_factory=dict)


class FaultProxy:
    """``with FaultProxy(upstream_port) as proxy: proxy.set_mode("reset")``; ``proxy.url`` points at it."""

    def __init__(
        self,
        upstream_port: int,
        *,
        upstream_host: str = "127.0.0.1",
        port: int = 0,
        max_connections: int = 512,
        latency_s: float = 0.0,
    ) -> None:
        _loopback(upstream_host)
        self.upstream = (upstream_host, upstream_port)
        self.port = port
        self.max_connections = max_connections
        self.mode: Mode = "pass"
        self.latency_s = latency_s
        self.counters = Counters()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="faultproxy", daemon=True)
        self._server: asyncio.Server | None = None
        self._conns: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter | None]] = set()

    # -- life cycle (any thread) ------------------------------------------------------------

    def start(self) -> FaultProxy:
        self._thread.start()
        self._call(self._listen())
        return self

    def close(self) -> None:
        if self._thread.is_alive():
            self._call(self._shutdown())
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
        self._loop.close()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def open_connections(self) -> int:
        return len(self._conns)

    def set_mode(self, mode: Mode, latency_s: float | None = None) -> None:
        """Switch the fault now; ``reset``/``down`` also reset open connections."""
        if mode not in MODES:
            raise ValueError(f"fault proxy: unknown mode {mode!r}; one of {MODES}")
        self._call(self._switch(mode, latency_s))

    def _call(self, coro: Coroutine[Any, Any, None]) -> None:
        asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    # -- on the proxy's loop ------------------------------------------------------------------

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port, reuse_address=True)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def _switch(self, mode: Mode, latency_s: float | None) -> None:
        if latency_s is not None:
            self.latency_s = latency_s
        previous, self.mode = self.mode, mode
        if mode in ("reset", "down"):
            for client, upstream in list(self._conns):
                _reset(client)
                if upstream is not None:
                    upstream.transport.abort()
            self._conns.clear()
        if mode == "down" and self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        elif mode != "down" and previous == "down":
            await self._listen()

    async def _shutdown(self) -> None:
        self.mode = "down"
        for client, upstream in list(self._conns):
            client.transport.abort()
            if upstream is not None:
                upstream.transport.abort()
        self._conns.clear()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        if tasks:  # aborted transports end the pumps; cancel whatever still lingers
            _, pending = await asyncio.wait(tasks, timeout=1.0)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(asyncio.CancelledError):  # only at close(); nothing to report
            await self._serve(reader, writer)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.counters.accepted += 1
        mode = self.mode
        self.counters.by_mode[mode] = self.counters.by_mode.get(mode, 0) + 1
        if mode in ("reset", "down") or len(self._conns) >= self.max_connections:
            if mode not in ("reset", "down"):
                self.counters.over_limit += 1
            self.counters.reset += 1
            _reset(writer)
            return
        if mode == "blackhole":
            await self._swallow(reader, writer)
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            self.counters.reset += 1
            _reset(writer)
            return
        pair = (writer, up_writer)
        self._conns.add(pair)
        self.counters.forwarded += 1
        try:
            await asyncio.gather(
                self._pump(reader, up_writer, delay=False),
                self._pump(up_reader, writer, delay=True),
            )
        finally:
            self._conns.discard(pair)
            for w in (writer, up_writer):
                w.transport.abort()

    async def _swallow(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.counters.blackholed += 1
        pair = (writer, None)
        self._conns.add(pair)
        try:
            while await reader.read(_CHUNK):
                pass
        except OSError:
            pass
        finally:
            self._conns.discard(pair)
            writer.transport.abort()

    async def _pump(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter, *, delay: bool) -> None:
        try:
            while data := await src.read(_CHUNK):
                if self.mode == "blackhole":
                    continue  # swallowed: the connection stays open and silent
                if delay and self.mode == "latency" and self.latency_s > 0:
                    await asyncio.sleep(self.latency_s)
                dst.write(data)
                await dst.drain()
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError, RuntimeError):
                if dst.can_write_eof():
                    dst.write_eof()


@contextlib.contextmanager
def fault_proxy(upstream_port: int, **kwargs: int | float) -> Iterator[FaultProxy]:
    """A started :class:`FaultProxy`, closed on exit."""
    proxy = FaultProxy(upstream_port, **kwargs)  # type: ignore[arg-type]
    with proxy:
        yield proxy
