"""TF Serving's binary, which binds every interface, is kept on loopback natively (its own network namespace).

The binary cannot be installed here: ``fakebin/tensorflow_model_server`` binds the way it does
(REST on every address, gRPC on ``0.0.0.0:--port`` or ``--grpc_socket_path``) and answers model
status (REST) and echoes bytes (gRPC), which is all these tests need of it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.services.tf_api.conftest import ready_probe, start_env
from tests.utils.servers import REPO, host_addresses, listening, running

FAKEBIN = Path(__file__).parent / "fakebin"


def _env(tmp_path: Path, **extra: str) -> tuple[dict[str, str], int, int]:
    env, rest, grpc_port = start_env(tmp_path, TF_API_SERVER="binary", **extra)
    env["PATH"] = f"{extra.get('PATH', FAKEBIN)}{os.pathsep}{os.environ['PATH']}"
    return env, rest, grpc_port


def test_the_binary_listens_on_loopback_only(tmp_path: Path, artifacts_root: Path) -> None:
    env, rest, grpc_port = _env(tmp_path)
    with running("tf_api", ["-m", "services.tf_api", "serve"], tmp_path / "launcher.log", env) as proc:
        proc.wait_ready(ready_probe(rest), timeout_s=60)
        assert "in a network namespace of its own" in proc.log_text()
        # REST and gRPC reach the binary through the launcher's forwarders
        assert httpx.get(f"http://127.0.0.1:{rest}/v1/models/mlp", timeout=5).json()["model_version_status"]
        with socket.create_connection(("127.0.0.1", grpc_port), timeout=5) as grpc:
            grpc.sendall(b"PRI * HTTP/2.0")
            assert grpc.recv(64) == b"PRI * HTTP/2.0"
        bound = listening([proc.pid])
        fake_log = (tmp_path / "logs" / "tensorflow_model_server.log").read_text()
        assert "fake tensorflow_model_server" in fake_log
        # the binary bound 0.0.0.0 inside its namespace: in this one, only the launcher's loopback ports listen
        assert {(address, port) for _, _, address, port in bound} == {("127.0.0.1", rest), ("127.0.0.1", grpc_port)}
        assert {pid for _, pid, _, _ in bound} == {proc.pid}  # the launcher's forwarders, nothing else
        for address in host_addresses():
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection((address, rest), timeout=2).close()


def test_without_user_namespaces_the_binary_is_refused_or_replaced(tmp_path: Path, artifacts_root: Path) -> None:
    # an unshare that fails as it does where unprivileged user namespaces are off
    nouserns = tmp_path / "nouserns"
    nouserns.mkdir()
    (nouserns / "unshare").write_text(
        "#!/bin/sh\necho 'unshare: unshare failed: Operation not permitted' >&2\nexit 1\n"
    )
    (nouserns / "unshare").chmod(0o755)
    env, _, _ = _env(tmp_path, PATH=f"{nouserns}{os.pathsep}{FAKEBIN}")
    result = subprocess.run(
        [sys.executable, "-m", "services.tf_api", "serve"],
        cwd=REPO, env={**os.environ, **env}, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "tf_api: tensorflow_model_server listens on every interface and cannot be kept on loopback here: "
        "`unshare --net --map-root-user` failed (unshare: unshare failed: Operation not permitted): user namespaces "
        "are not allowed here; set TF_API_BINARY_ANY_INTERFACE=true to run it anyway (behind a firewall)"
    )
