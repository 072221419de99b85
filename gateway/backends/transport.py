"""Pooled HTTP transports behind one small interface, so the client library is a setting.

duoserve's own keep-alive client (:mod:`.h1`) is the default because it measured fastest
as a proxy client on this machine (docs/benchmarks.md, "gateway"); aiohttp and httpx stay
selectable (``GATEWAY_HTTP_CLIENT``) so the comparison can be re-run. The factory lives
in the package (:func:`gateway.backends.make_transport`), so this interface module
imports none of its implementations. Both map their failures onto the same gateway errors:
a refused/reset connection or connect timeout -> BackendUnavailableError (before answering),
a read timeout -> BackendTimeoutError, an answer cut off midway -> BackendCutOffError.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass

import aiohttp
import httpx

from ..errors import BackendCutOffError, BackendTimeoutError, BackendUnavailableError, BadBackendResponseError


@dataclass(frozen=True)
class HttpLimits:
    """What every backend pool is built with (also what the tests check reached the client)."""

    connect_timeout_s: float
    read_timeout_s: float
    pool_size: int
    retry_after_s: float = 1.0


@dataclass(frozen=True)
class HttpAnswer:
    status: int
    body: bytes
    headers: dict[str, str]


class Transport(abc.ABC):
    """POST/GET bytes to one backend; raises only gateway BackendError subclasses."""

    def __init__(self, backend: str, limits: HttpLimits) -> None:
        self.backend = backend
        self.limits = limits

    @abc.abstractmethod
    async def request(
        self, method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> HttpAnswer: ...

    @abc.abstractmethod
    async def close(self) -> None: ...

    def _unavailable(self, exc: BaseException) -> BackendUnavailableError:
        return BackendUnavailableError(
            f"backend {self.backend} is unreachable: {type(exc).__name__}: {exc}".rstrip(": "),
            self.backend,
            self.limits.retry_after_s,
        )

    def _timeout(self) -> BackendTimeoutError:
        return BackendTimeoutError(
            f"backend {self.backend} did not answer within {self.limits.read_timeout_s:g} s", self.backend
        )


class AiohttpTransport(Transport):
    """One ``aiohttp.ClientSession`` with a bounded connector."""

    def __init__(self, backend: str, limits: HttpLimits) -> None:
        super().__init__(backend, limits)
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=limits.pool_size, limit_per_host=limits.pool_size),
            timeout=aiohttp.ClientTimeout(
                total=None, connect=limits.connect_timeout_s, sock_read=limits.read_timeout_s
            ),
            auto_decompress=False,
            skip_auto_headers=("User-Agent",),
        )

    async def request(
        self, method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> HttpAnswer:
        try:
            async with self.session.request(method, url, data=body, headers=headers) as resp:
                try:
                    raw = await resp.read()
                except aiohttp.ClientPayloadError as exc:
                    raise BackendCutOffError(
                        f"backend {self.backend} sent a broken body: {exc}", self.backend
                    ) from None
                return HttpAnswer(resp.status, raw, dict(resp.headers))
        except aiohttp.ConnectionTimeoutError as exc:
            raise self._unavailable(exc) from None
        except (TimeoutError, aiohttp.SocketTimeoutError, aiohttp.ServerTimeoutError):
            raise self._timeout() from None
        except (aiohttp.ClientConnectionError, aiohttp.ClientResponseError) as exc:
            # refused, reset, or disconnected before a status line arrived
            raise self._unavailable(exc) from None

    async def close(self) -> None:
        await self.session.close()


class HttpxTransport(Transport):
    """One ``httpx.AsyncClient`` with the same limits (kept for comparison)."""

    def __init__(self, backend: str, limits: HttpLimits, transport: httpx.AsyncBaseTransport | None = None) -> None:
        super().__init__(backend, limits)
        self.client = httpx.AsyncClient(
            timeout=httpx.Timeout(
                connect=limits.connect_timeout_s,
                read=limits.read_timeout_s,
                write=limits.read_timeout_s,
                pool=limits.connect_timeout_s,
            ),
            limits=httpx.Limits(max_connections=limits.pool_size, max_keepalive_connections=limits.pool_size),
            transport=transport,
        )

    async def request(
        self, method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> HttpAnswer:
        try:
            resp = await self.client.request(method, url, content=body, headers=headers)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError, httpx.ReadError) as exc:
            raise self._unavailable(exc) from None
        except httpx.PoolTimeout as exc:
            raise self._unavailable(exc) from None
        except httpx.TimeoutException:
            raise self._timeout() from None
        except httpx.HTTPError as exc:
            raise BadBackendResponseError(f"backend {self.backend} failed: {exc}", self.backend) from None
        return HttpAnswer(resp.status_code, resp.content, dict(resp.headers))

    async def close(self) -> None:
        await self.client.aclose()
