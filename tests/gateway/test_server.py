"""gateway/server.py subclasses uvicorn's private ``HttpToolsProtocol``: fail loudly when that API moves.

uvicorn has no header timeout and no supported hook for one, so the gateway overrides four
methods of the httptools protocol and reads ``self.cycle.response_complete``. uvicorn is
pinned in pyproject.toml; this test names what to re-check when the pin moves. The
behaviour itself (408 for slow or missing headers) is tested against a real gateway in
tests/reliability/test_hostile_input.py.
"""

from __future__ import annotations

import inspect
import re
from importlib import metadata

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

from gateway.server import HeaderTimeoutProtocol, header_timeout_protocol
from tests.utils.servers import REPO


def test_uvicorn_is_the_pinned_version() -> None:
    pinned = re.search(r'"uvicorn\[standard\]==([^"]+)"', (REPO / "pyproject.toml").read_text())
    assert pinned is not None
    assert metadata.version("uvicorn") == pinned.group(1), (
        "uvicorn moved: re-check gateway/server.py against its HttpToolsProtocol, then update this pin"
    )


def test_the_private_protocol_still_has_what_the_header_timeout_uses() -> None:
    for name in ("connection_made", "connection_lost", "on_message_begin", "on_headers_complete"):
        assert name in vars(HttpToolsProtocol), f"HttpToolsProtocol.{name} is gone"
    assert list(inspect.signature(HttpToolsProtocol.connection_made).parameters) == ["self", "transport"]
    assert list(inspect.signature(HttpToolsProtocol.connection_lost).parameters) == ["self", "exc"]
    source = inspect.getsource(HttpToolsProtocol)
    for attribute in ("self.loop", "self.transport", "self.cycle"):
        assert attribute in source, f"HttpToolsProtocol no longer sets {attribute}"
    assert "self.response_complete" in inspect.getsource(RequestResponseCycle)


def test_the_bound_protocol_class_carries_its_timeout() -> None:
    bound = header_timeout_protocol(2.5)
    assert issubclass(bound, HeaderTimeoutProtocol)
    assert issubclass(bound, HttpToolsProtocol)
    assert bound.header_timeout_s == 2.5
