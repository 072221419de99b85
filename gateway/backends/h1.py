"""A minimal pooled HTTP/1.1 keep-alive client on asyncio protocols and httptools' parser.

Why it exists: on this 2-core machine a sequential aiohttp round trip to a trivial
backend costs about 300 µs of Python, a raw asyncio exchange about 150 µs, and the
gateway's own work (validation, stats, metrics) about 25 µs; the client is most of the
proxy's overhead (docs/benchmarks.md, "gateway"). It speaks only what the backends need:
one request at a time per connection, ``Content-Length`` or chunked answers (httptools
parses both), keep-alive reuse, explicit connect and read timeouts, a bounded pool.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import cast
from urllib.parse import urlsplit

import httptools

from ..errors import BackendCutOffError, BackendOverloadedError
from .transport import HttpAnswer, HttpLimits, Transport


class _Connection(asyncio.Protocol):
    """One TCP connection; ``exchange`` sends a request and waits for the whole answer."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future[HttpAnswer] | None = None
        self.received = 0
        self.closed = False
        self._headers: dict[str, str] = {}
        self._body: list[bytes] = []
        self._until_eof = False

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass it

    def data_received(self, data: bytes) -> None:
        self.received += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if exc is None and self._until_eof and self.waiter is not None and not self.waiter.done():
            # an answer with neither Content-Length nor chunking ends where the connection does
            self.waiter.set_result(HttpAnswer(self.parser.get_status_code(), b"".join(self._body), self._headers))
            return
        self._fail(exc or ConnectionResetError("connection closed by the backend"))

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers[name.decode("latin-1")] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        names = {name.lower() for name in self._headers}
        self._until_eof = "content-length" not in names and "transfer-encoding" not in names

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        answer = HttpAnswer(self.parser.get_status_code(), b"".join(self._body), self._headers)
        if not self.parser.should_keep_alive():
            self.close()
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(answer)

    def _fail(self, exc: BaseException) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(exc)
        self.close()

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    async def exchange(self, request: bytes, timeout_s: float) -> HttpAnswer:
        """Send ``request``; TimeoutError when the whole answer has not come within ``timeout_s``."""
        assert self.transport is not None
        self.received = 0
        self._headers = {}
        self._body = []
        self._until_eof = False
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[HttpAnswer] = loop.create_future()
        self.waiter = waiter
        # a bare timer, not asyncio.timeout(): one TimerHandle per exchange is the cheapest deadline
        timer = loop.call_later(timeout_s, _expire, waiter)
        self.transport.write(request)
        try:
            return await waiter
        finally:
            timer.cancel()
            self.waiter = None


def _expire(waiter: asyncio.Future[HttpAnswer]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())


class H1Transport(Transport):
    """Pooled keep-alive connections to one ``scheme://host:port`` (plain HTTP only)."""

    def __init__(self, backend: str, limits: HttpLimits, base_url: str) -> None:
        super().__init__(backend, limits)
        parts = urlsplit(base_url)
        if parts.scheme != "http" or parts.hostname is None:
            raise ValueError(f"{base_url}: the h1 client speaks plain http only")
        self.host = parts.hostname
        self.port = parts.port or 80
        self.host_header = parts.netloc.encode()
        self.idle: deque[_Connection] = deque()
        self.slots = asyncio.Semaphore(limits.pool_size)
        self._heads: dict[tuple[str, str, tuple[tuple[str, str], ...]], bytes] = {}

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.limits.connect_timeout_s):
                _, conn = await loop.create_connection(_Connection, self.host, self.port)
        except (OSError, TimeoutError) as exc:
            raise self._unavailable(exc) from None
        return conn

    def _encode(self, method: str, url: str, body: bytes | None, headers: dict[str, str] | None) -> bytes:
        key = (method, url, tuple(headers.items()) if headers else ())
        head = self._heads.get(key)
        if head is None:
            parts = urlsplit(url)
            path = parts.path + ("?" + parts.query if parts.query else "")
            lines = [f"{method} {path} HTTP/1.1".encode(), b"Host: " + self.host_header]
            lines.extend(f"{k}: {v}".encode("latin-1") for k, v in key[2])
            head = b"\r\n".join(lines) + b"\r\n"
            if len(self._heads) < 1024:  # a few URLs and header sets per backend; bounded all the same
                self._heads[key] = head
        payload = body or b""
        if body is not None or method == "POST":
            return b"%sContent-Length: %d\r\n\r\n%s" % (head, len(payload), payload)
        return head + b"\r\n"

    async def request(
        self, method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> HttpAnswer:
        request = self._encode(method, url, body, headers)
        if self.slots.locked():
            try:  # waiting for a pooled connection is bounded like connecting is
                async with asyncio.timeout(self.limits.connect_timeout_s):
                    await self.slots.acquire()
            except TimeoutError:
                raise BackendOverloadedError(
                    f"backend {self.backend}: all {self.limits.pool_size} pooled connections stayed busy",
                    self.backend,
                    self.limits.retry_after_s,
                ) from None
        else:
            await self.slots.acquire()  # free: returns at once
        retried = False
        try:
            while True:
                while self.idle and self.idle[-1].closed:
                    self.idle.pop()
                reused = bool(self.idle) and not retried
                conn = self.idle.pop() if reused else await self._connect()
                try:
                    answer = await conn.exchange(request, self.limits.read_timeout_s)
                except TimeoutError:
                    conn.close()
                    raise self._timeout() from None
                except (OSError, httptools.HttpParserError) as exc:
                    conn.close()
                    if conn.received == 0 and reused:
                        # a keep-alive connection the backend had already closed: once, on a fresh one
                        # (predictions are idempotent, so even a request it did read may be repeated)
                        retried = True
                        continue
                    if conn.received == 0:
                        raise self._unavailable(exc) from None
                    raise BackendCutOffError(
                        f"backend {self.backend} broke off its answer: {type(exc).__name__}: {exc}", self.backend
                    ) from None
                except BaseException:
                    conn.close()
                    raise
                if not conn.closed:
                    self.idle.append(conn)
                return answer
        finally:
            self.slots.release()

    async def close(self) -> None:
        while self.idle:
            self.idle.pop().close()
