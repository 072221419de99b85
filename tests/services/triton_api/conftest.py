"""A real Triton (the nvidia-pytriton wheel's tritonserver), started once for the triton_api tests on free
loopback ports, serving mlp and digits from TorchScript and from ONNX."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from contract.artifacts import default_root
from services.process import StartError
from services.triton_api.launcher import READY_LINE
from tests.utils.servers import Process, free_port, log_tail, running

MODELS = "mlp,mlp_ort,digits,digits_ort"


@dataclass
class Triton:
    proc: Process
    host: str
    http: int
    grpc: int
    metrics: int
    run_dir: Path
    log_dir: Path

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.http}"


def triton_env(base: Path, artifacts: Path, models: str) -> tuple[dict[str, str], dict[str, int]]:
    ports = {name: free_port() for name in ("http", "grpc", "metrics")}
    env = {f"TRITON_API_{name.upper()}_PORT": str(port) for name, port in ports.items()}
    env.update(
        TRITON_API_RUN_DIR=str(base / "run"),
        TRITON_API_LOG_DIR=str(base / "logs"),
        TRITON_API_ARTIFACTS=str(artifacts),
        DUOSERVE_ARTIFACTS=str(artifacts),
        TRITON_API_MODELS=models,
        TRITON_API_READY_TIMEOUT_S="240",
    )
    return env, ports


@pytest.fixture(scope="session")
def triton(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Triton]:
    base = tmp_path_factory.mktemp("triton")
    env, ports = triton_env(base, default_root(), MODELS)
    with running("triton", ["-m", "services.triton_api", "serve"], base / "launcher.log", env) as proc:
        server = Triton(proc, "127.0.0.1", ports["http"], ports["grpc"], ports["metrics"], base / "run", base / "logs")
        try:
            proc.wait_ready(line=READY_LINE, timeout_s=300)
        except StartError as exc:
            pytest.fail(f"{exc}\n--- tritonserver.log ---\n{log_tail(server.log_dir / 'tritonserver.log', 40)}")
        yield server


def broken_onnx_root(base: Path, model: str = "mlp") -> Path:
    """The built artifacts, hard-linked under ``base``, with ``model``'s ONNX file replaced by bytes ONNX Runtime
    cannot read and the manifest's hash updated: the manifest vouches for it, Triton cannot load it."""
    import os
    import shutil

    from contract.artifacts import artifact_path, sha256_path
    from contract.manifest import read_manifest

    root = base / "artifacts"
    shutil.copytree(default_root(), root, copy_function=os.link, ignore=shutil.ignore_patterns("zoo", ".staging"))
    onnx = artifact_path(root, model, "onnx")
    onnx.unlink()  # a new file, not the built one the link shares
    onnx.write_bytes(b"this is not an ONNX model")
    manifest = read_manifest(root)
    entry = manifest.models[model]
    record = entry.artifacts["onnx"].model_copy(update={"sha256": sha256_path(onnx)})
    manifest.models[model] = entry.model_copy(update={"artifacts": {**entry.artifacts, "onnx": record}})
    (root / "manifest.json").unlink()
    manifest.write(root / "manifest.json")
    return root
