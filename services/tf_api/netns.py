"""Keep TF Serving's binary on loopback: it runs in a network namespace of its own, reached through Unix sockets.

``tensorflow_model_server`` has no flag that chooses an interface: it binds gRPC to
``0.0.0.0:<port>`` and REST to the port on every address. So the launcher starts it with
``unshare --net --map-root-user`` (a new network namespace, whose only interface is its
own loopback: "every interface" there is nothing the host's network can reach), gRPC on a
Unix socket (``--grpc_socket_path``, ``--port=0``) and REST on a port inside the namespace.
Two Unix sockets in the run directory cross the namespace's edge:

- ``grpc.sock``: the binary's own gRPC socket;
- ``rest.sock``: :func:`inside` forwards it to the binary's REST port inside the namespace.

Outside, :func:`serve_outside` listens on ``TF_API_HOST`` (127.0.0.1) at ``TF_API_REST_PORT``
and ``TF_API_GRPC_PORT`` and forwards each connection, byte for byte, to its socket. The
cost is one extra local hop per connection (the gateway keeps its connections open).

``python -m services.tf_api.netns --rest-port P --rest-sock S inside -- BINARY ARGS`` is
what runs in the namespace: it brings the namespace's ``lo`` up, starts the binary, forwards
``S`` to ``127.0.0.1:P`` and passes SIGTERM/SIGINT on.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
from pathlib import Path

_SIOCGIFFLAGS, _SIOCSIFFLAGS, _IFF_UP = 0x8913, 0x8914, 0x1
UNSHARE = ("unshare", "--net", "--map-root-user")


class ConfineError(RuntimeError):
    """The binary cannot be confined here (no ``unshare``, or user namespaces are not allowed)."""


def check_unshare() -> list[str]:
    """The ``unshare`` command that makes a network namespace, after trying it; :class:`ConfineError` if it fails."""
    binary = shutil.which(UNSHARE[0])
    if binary is None:
        raise ConfineError("unshare (util-linux) is not installed")
    probe = subprocess.run([binary, *UNSHARE[1:], "true"], capture_output=True, text=True, timeout=30, check=False)
    if probe.returncode != 0:
        why = probe.stderr.strip().splitlines()[-1] if probe.stderr.strip() else f"exit {probe.returncode}"
        raise ConfineError(f"`unshare --net --map-root-user` failed ({why}): user namespaces are not allowed here")
    return [binary, *UNSHARE[1:]]


def loopback_up() -> None:
    """Bring this namespace's ``lo`` up (a new namespace starts with it down)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sH22x", b"lo", 0)
        flags = struct.unpack("16sH22x", fcntl.ioctl(sock, _SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(sock, _SIOCSIFFLAGS, struct.pack("16sH22x", b"lo", flags | _IFF_UP))


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(Exception):
            if writer.can_write_eof():
                writer.write_eof()
            else:
                writer.close()


def _forwarder(connect: object) -> object:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await connect()  # type: ignore[operator]
        except OSError:
            writer.close()
            return
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        for w in (writer, up_writer):
            w.close()

    return handle


async def serve_outside(host: str, rest_port: int, grpc_port: int, rest_sock: Path, grpc_sock: Path) -> list[object]:
    """Listen on ``host`` at both ports and forward to the namespace's sockets; returns the servers."""
    rest = await asyncio.start_server(
        _forwarder(lambda: asyncio.open_unix_connection(str(rest_sock))),  # type: ignore[arg-type]
        host,
        rest_port,
    )
    grpc = await asyncio.start_server(
        _forwarder(lambda: asyncio.open_unix_connection(str(grpc_sock))),  # type: ignore[arg-type]
        host,
        grpc_port,
    )
    return [rest, grpc]


async def _inside(rest_port: int, rest_sock: Path, cmd: list[str]) -> int:
    loopback_up()
    rest_sock.unlink(missing_ok=True)
    child = await asyncio.create_subprocess_exec(*cmd)
    loop = asyncio.get_running_loop()

    def forward(signum: int) -> None:
        if child.returncode is None:
            child.send_signal(signum)

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, forward, sig)
    server = await asyncio.start_unix_server(
        _forwarder(lambda: asyncio.open_connection("127.0.0.1", rest_port)),  # type: ignore[arg-type]
        str(rest_sock),
    )
    code = await child.wait()
    server.close()
    return code if code >= 0 else 128 - code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.tf_api.netns", description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", choices=["inside"])
    parser.add_argument("--rest-port", type=int, required=True)
    parser.add_argument("--rest-sock", type=Path, required=True)
    parser.add_argument("cmd", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    if not cmd:
        parser.error("no command given after --")
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    return asyncio.run(_inside(args.rest_port, args.rest_sock, cmd))


if __name__ == "__main__":
    sys.exit(main())
