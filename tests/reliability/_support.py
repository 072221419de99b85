"""Helpers for the reliability tests: a gateway of our own in front of the stack's backends, raw sockets."""

from __future__ import annotations

import contextlib
import json
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from contract.artifacts import default_root
from services.process import http_probe
from tests.utils.inputs import random_batch
from tests.utils.servers import Process, free_port, running
from tests.utils.stack import Stack

HOST = "127.0.0.1"
FAILOVER = json.dumps({"digits": {"policy": "failover", "order": ["torch", "tf"]}})


def digits_body(n: int = 1, seed: int = 0) -> bytes:
    return json.dumps({"instances": random_batch("digits", n, seed).tolist()}).encode()


@dataclass
class Gateway:
    """A ``python -m gateway`` we started."""

    proc: Process
    port: int

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def tail(self) -> str:
        return self.proc.tail(40)

    def backends(self) -> dict[str, Any]:
        """``/v1/models``' backends block: circuit state and in-flight count per backend."""
        body: dict[str, Any] = httpx.get(f"{self.url}/v1/models", timeout=10).json()
        return dict(body["backends"])


def gateway_env(stack: Stack, port: int, **overrides: str) -> dict[str, str]:
    """The stack gateway's backend settings, on our own port, with ``overrides`` (``GATEWAY_*`` names)."""
    env = {
        "GATEWAY_HOST": HOST,
        "GATEWAY_PORT": str(port),
        "GATEWAY_GRPC_PORT": str(free_port()),
        "GATEWAY_TORCH_URL": stack.info.torch,
        "GATEWAY_TORCH_KEY_FILE": str(stack.info.torch_key_file),
        "GATEWAY_TF_URL": stack.info.tf_rest,
        "GATEWAY_MANIFEST": str(default_root() / "manifest.json"),
        "GATEWAY_BACKENDS": json.dumps(stack.info.gateway_backends),
        "GATEWAY_LOG_LEVEL": "warning",
    }
    env.update(overrides)
    return env


@contextlib.contextmanager
def running_gateway(stack: Stack, log_dir: Path, **overrides: str) -> Iterator[Gateway]:
    """Start a gateway with :func:`gateway_env`; wait (bounded) until it is live; stop it afterwards."""
    port = free_port()
    with running(
        "gateway", ["-m", "gateway"], log_dir / f"gateway-{port}.log", gateway_env(stack, port, **overrides)
    ) as proc:
        proc.wait_ready(http_probe(f"http://{HOST}:{port}/health/live"), timeout_s=30)
        yield Gateway(proc, port)


def raw_exchange(port: int, chunks: list[bytes], *, gap_s: float = 0.0, timeout_s: float = 10.0) -> bytes:
    """Send ``chunks`` (``gap_s`` apart) on one connection and read until the server closes or answers."""
    deadline = time.monotonic() + timeout_s
    with socket.create_connection((HOST, port), timeout=timeout_s) as sock:
        received = b""
        for chunk in chunks:
            try:
                sock.sendall(chunk)
            except OSError:
                break  # the server gave up on us: read what it said
            if gap_s:
                time.sleep(gap_s)
            sock.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                received += sock.recv(65536)
            sock.setblocking(True)
            if received:
                break
        sock.settimeout(max(0.1, deadline - time.monotonic()))
        with contextlib.suppress(OSError):
            while not _complete(received) and (data := sock.recv(65536)):
                received += data
        return received


def _complete(raw: bytes) -> bool:
    if b"\r\n\r\n" not in raw:
        return False
    head, _, body = raw.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return len(body) >= int(line.split(b":", 1)[1])
    return False


def status_of(raw: bytes) -> int:
    """The status code of a raw HTTP answer (0 when nothing came)."""
    if not raw.startswith(b"HTTP/"):
        return 0
    return int(raw.split(b" ", 2)[1])


def body_of(raw: bytes) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(raw.partition(b"\r\n\r\n")[2] or b"{}")
    return parsed
