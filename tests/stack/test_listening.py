"""What every native process of a running stack listens on: loopback only."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from tests.utils.servers import host_addresses, listening
from tests.utils.stack import SERVICES, Stack


def test_every_native_process_listens_on_loopback_only(stack: Stack) -> None:
    pids = json.loads((Path(stack.run_dir) / "stack.pids.json").read_text())  # current: other tests restart some
    seen = {}
    for service in SERVICES:
        bound = listening([pids[service]])
        assert bound, f"{service}: no listening socket found"
        seen[service] = bound
        assert {address for _, _, address, _ in bound} <= {"127.0.0.1", "::1"}, (service, bound)
    ports = {port for bound in seen.values() for *_, port in bound}
    # the gateway (HTTP, gRPC), TorchServe (inference, management, metrics), the TF server (REST, gRPC)
    for url in (stack.info.gateway, stack.info.torch, stack.info.tf_rest):
        assert int(url.rsplit(":", 1)[1].split("/")[0]) in ports, (url, seen)
    for address in host_addresses():
        for port in ports:
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection((address, port), timeout=2).close()
