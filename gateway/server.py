"""uvicorn's httptools protocol with a header timeout and a lingering close.

uvicorn arms its keep-alive timer only after a response, so a client that opens a
connection and sends nothing, or sends its request line and headers a byte at a time
(slowloris), holds a connection and its buffers forever. Here the request line and
headers must arrive within ``header_timeout_s`` of the connection opening (or of the
request's first byte on a kept-alive connection); otherwise the gateway answers 408
and closes. The body has its own bound (``GATEWAY_BODY_TIMEOUT_S``, :mod:`.payload`).

Lingering close (nginx's ``lingering_close``): an answer given before the request body has
arrived (a 413 from ``Content-Length``, a request shed before its body is read) is followed,
when the connection is to close, by a half-close (FIN) and then by reading and discarding
what the client still sends, until the body ends, the client closes, nothing arrives for
``LINGER_IDLE_S`` or ``LINGER_TOTAL_S`` have passed. Closing at once with unread bytes in the
socket makes the kernel send a reset, and a client that writes its whole body before it
reads (Python's urllib, requests) then sees "connection reset" instead of the status.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from .config import Settings

#: nginx's defaults: lingering_timeout 5 s, lingering_time 30 s
LINGER_IDLE_S = 5.0
LINGER_TOTAL_S = 30.0


def _timeout_answer(timeout_s: float) -> bytes:
    body = json.dumps({"detail": f"request headers not received within {timeout_s:g} s"}).encode()
    head = (
        "HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode() + body


class _LingeringTransport:
    """The transport uvicorn writes to: one socket write per answer, and ``close()`` lingers while the request
    body is still arriving.

    uvicorn writes an answer's status line and headers, then its body, in two writes, so two
    sends and two TCP segments per answer; here the head is held until the body follows (in
    the same turn of the event loop), or until the end of that turn: one send.
    """

    __slots__ = ("_head", "_protocol", "_transport")

    def __init__(self, transport: asyncio.Transport, protocol: HeaderTimeoutProtocol) -> None:
        self._transport = transport
        self._protocol = protocol
        self._head: bytes | None = None

    def write(self, data: bytes) -> None:
        if self._head is not None:
            data = self._head + data
            self._head = None
        elif data.startswith(b"HTTP/1.1 ") and data.endswith(b"\r\n\r\n"):
            self._head = data
            self._protocol.loop.call_soon(self.flush)
            return
        self._transport.write(data)

    def flush(self) -> None:
        if self._head is not None:
            head, self._head = self._head, None
            if not self._transport.is_closing():
                self._transport.write(head)

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def close(self) -> None:
        self.flush()
        if not self._protocol.linger():
            self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class HeaderTimeoutProtocol(HttpToolsProtocol):
    """:class:`HttpToolsProtocol` with a header timeout and a lingering close."""

    header_timeout_s = 10.0
    _header_timer: asyncio.TimerHandle | None = None
    _linger_timer: asyncio.TimerHandle | None = None
    _linger_until = 0.0
    lingering = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._raw = transport
        super().connection_made(_LingeringTransport(transport, self))  # type: ignore[arg-type]
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self._linger_timer is not None:
            self._linger_timer.cancel()
        super().connection_lost(exc)

    # -- lingering close ----------------------------------------------------------------

    def linger(self) -> bool:
        """Called instead of closing: start lingering (True) if the request body is still arriving."""
        cycle = self.cycle
        if self.lingering:
            return True
        if cycle is None or not cycle.more_body or cycle.disconnected or self._raw.is_closing():
            return False
        self.lingering = True
        self._linger_until = self.loop.time() + LINGER_TOTAL_S
        if self._raw.can_write_eof():
            self._raw.write_eof()  # the answer is complete: FIN after it, keep reading
        self._raw.resume_reading()
        self._linger_timer = self.loop.call_later(LINGER_IDLE_S, self._linger_over)
        return True

    def _linger_over(self) -> None:
        self._linger_timer = None
        self._raw.close()

    def data_received(self, data: bytes) -> None:
        if not self.lingering:
            super().data_received(data)
            return
        # discard: the answer is out; only the end of the body (or of the client) matters now
        assert self._linger_timer is not None
        self._linger_timer.cancel()
        now = self.loop.time()
        if now >= self._linger_until:
            self._raw.close()
            return
        self._linger_timer = self.loop.call_later(min(LINGER_IDLE_S, self._linger_until - now), self._linger_over)
        try:
            self.parser.feed_data(data)
        except Exception:  # noqa: BLE001 -- garbage after the answer: just close
            self._raw.close()

    def on_message_complete(self) -> None:
        if self.lingering:
            self._raw.close()
            return
        super().on_message_complete()

    def eof_received(self) -> None:
        if self.lingering:
            self._raw.close()

    # -- header timeout -------------------------------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._header_timer is None:
            self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def _arm(self) -> None:
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._headers_timed_out)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_timed_out(self) -> None:
        self._header_timer = None
        if self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            self._arm()  # a request is still being answered; judge the next one after it
            return
        self._raw.write(_timeout_answer(self.header_timeout_s))
        self._raw.close()


def uvicorn_config(app: Any, settings: Settings) -> uvicorn.Config:
    """How every gateway process serves ``app``: uvloop, httptools with this module's protocol, no access log
    unless ``GATEWAY_ACCESS_LOG`` asks for one."""
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http=header_timeout_protocol(settings.header_timeout_s),  # httptools, header timeout, lingering close
        log_level=settings.log_level,
        access_log=settings.access_log,
        proxy_headers=False,  # nothing in front of it that the gateway trusts; one ASGI layer less per request
        timeout_graceful_shutdown=10,
    )
    if settings.access_log:
        # uvicorn sets its access logger to GATEWAY_LOG_LEVEL; its lines are INFO
        logging.getLogger("uvicorn.access").setLevel(logging.INFO)
    return config


def header_timeout_protocol(timeout_s: float) -> type[HeaderTimeoutProtocol]:
    """A :class:`HeaderTimeoutProtocol` subclass bound to ``timeout_s`` (uvicorn takes a class)."""
    return type("HeaderTimeoutProtocol", (HeaderTimeoutProtocol,), {"header_timeout_s": timeout_s})
