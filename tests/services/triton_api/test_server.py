"""Triton natively, as ``make up`` starts it: parity with the artifacts' own runtimes through tritonclient (HTTP
binary and JSON, gRPC), the contract's refusals, loopback only, metrics, and a repository nobody writes into."""

from __future__ import annotations

import functools
import py_compile
import re
import urllib.request
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from contract.manifest import Manifest
from contract.tensors import sample_inputs
from services.triton_api.repository import windows, write_repository
from tests.services.triton_api.conftest import MODELS, Triton
from tests.utils.servers import host_addresses, listening

TOLERANCE = 1e-4
BATCHES = (1, 7, 32)


@functools.cache
def _reference(root: Path, model: str, kind: str) -> object:
    path = root / ("onnx" if kind == "onnx" else "torchscript") / f"{model}.{'onnx' if kind == 'onnx' else 'pt'}"
    if kind == "onnx":
        return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return torch.jit.load(str(path)).eval()


def reference(root: Path, manifest: Manifest, name: str, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """What the artifact Triton serves as ``name`` answers in its own runtime, in this process."""
    model = name.removesuffix("_ort")
    entry = manifest.model(model)
    runner = _reference(root, model, "onnx" if name.endswith("_ort") else "torchscript")
    if isinstance(runner, ort.InferenceSession):
        return dict(zip(entry.output_names, runner.run(entry.output_names, arrays), strict=True))
    with torch.no_grad():
        out = runner(*[torch.from_numpy(arrays[n]) for n in entry.input_names])  # type: ignore[operator]
    values = out if isinstance(out, (tuple, list)) else [out]
    return {n: v.numpy() for n, v in zip(entry.output_names, values, strict=True)}


def _http_inputs(arrays: dict[str, np.ndarray], binary: bool) -> list[httpclient.InferInput]:
    inputs = []
    for name, array in arrays.items():
        item = httpclient.InferInput(name, list(array.shape), "FP32")
        item.set_data_from_numpy(array, binary_data=binary)
        inputs.append(item)
    return inputs


@pytest.mark.parametrize("name", ["mlp", "mlp_ort", "digits", "digits_ort"])
def test_triton_answers_as_the_artifacts_own_runtime(
    triton: Triton, artifacts_root: Path, manifest: Manifest, name: str
) -> None:
    entry = manifest.model(name.removesuffix("_ort"))
    http = httpclient.InferenceServerClient(f"{triton.host}:{triton.http}")
    grpc = grpcclient.InferenceServerClient(f"{triton.host}:{triton.grpc}")
    assert http.is_model_ready(name)
    for rows in BATCHES:
        arrays = sample_inputs(entry, rows, seed=rows)
        expected = reference(artifacts_root, manifest, name, arrays)
        for binary in (True, False):
            outputs = [httpclient.InferRequestedOutput(n, binary_data=binary) for n in entry.output_names]
            answer = http.infer(name, _http_inputs(arrays, binary), outputs=outputs)
            for output in entry.output_names:
                got = answer.as_numpy(output)
                assert got.shape == (rows, *entry.outputs[0].shape)
                assert got.dtype == np.float32
                assert float(np.abs(got - expected[output]).max()) <= TOLERANCE, (name, rows, binary)
        grpc_inputs = []
        for input_name, array in arrays.items():
            item = grpcclient.InferInput(input_name, list(array.shape), "FP32")
            item.set_data_from_numpy(array)
            grpc_inputs.append(item)
        answer = grpc.infer(name, grpc_inputs)
        for output in entry.output_names:
            assert float(np.abs(answer.as_numpy(output) - expected[output]).max()) <= TOLERANCE, (name, rows, "grpc")


def test_the_config_triton_serves_is_the_generated_one(triton: Triton, manifest: Manifest) -> None:
    http = httpclient.InferenceServerClient(f"{triton.host}:{triton.http}")
    config = http.get_model_config("digits")
    entry = manifest.model("digits")
    assert config["backend"] == "python"
    assert [(i["name"], i["data_type"], [int(d) for d in i["dims"]]) for i in config["input"]] == [
        (t.name, "TYPE_FP32", list(t.shape)) for t in entry.inputs
    ]
    assert [(o["name"], [int(d) for d in o["dims"]]) for o in config["output"]] == [
        (t.name, list(t.shape)) for t in entry.outputs
    ]
    assert config["dynamic_batching"]["preferred_batch_size"] == [16]
    assert int(config["dynamic_batching"]["max_queue_delay_microseconds"]) == 1000
    assert [(int(g["count"]), g["kind"]) for g in config["instance_group"]] == [(2, "KIND_CPU")]
    assert int(config["max_batch_size"]) == entry.max_batch


def _refusal(triton: Triton, name: str, inputs: list[httpclient.InferInput]) -> InferenceServerException:
    http = httpclient.InferenceServerClient(f"{triton.host}:{triton.http}")
    with pytest.raises(InferenceServerException) as caught:
        http.infer(name, inputs)
    return caught.value


@pytest.mark.parametrize("name", ["mlp", "mlp_ort"])
def test_bad_input_is_refused_with_400_naming_what_was_expected(triton: Triton, name: str) -> None:
    nan = np.ones((3, 10), dtype=np.float32)
    nan[2, 4] = np.nan
    refused = _refusal(triton, name, _http_inputs({"x": nan}, binary=True))
    assert refused.status() == "400"
    assert "input x holds a NaN or infinite value at [2, 4]" in refused.message()
    assert "model mlp takes input x (FP32, shape [N, 10])" in refused.message()
    inf = np.ones((1, 10), dtype=np.float32)
    inf[0, 0] = np.inf
    assert _refusal(triton, name, _http_inputs({"x": inf}, binary=True)).status() == "400"
    # wrong shape, wrong datatype, too many instances, an unknown input: Triton refuses them against the config
    wrong = _refusal(triton, name, _http_inputs({"x": np.ones((2, 9), dtype=np.float32)}, binary=True))
    assert wrong.status() == "400"
    assert "unexpected shape for input 'x'" in wrong.message()
    as_int = httpclient.InferInput("x", [1, 10], "INT64")
    as_int.set_data_from_numpy(np.ones((1, 10), dtype=np.int64))
    refused = _refusal(triton, name, [as_int])
    assert refused.status() == "400"
    assert re.search(r"INT64.*FP32", refused.message()), refused.message()  # got INT64, FP32 expected
    big = _refusal(triton, name, _http_inputs({"x": np.ones((1025, 10), dtype=np.float32)}, binary=True))
    assert big.status() == "400"
    assert re.search(r"batch.size.*1024", big.message()), big.message()
    unknown = _refusal(triton, name, _http_inputs({"y": np.ones((1, 10), dtype=np.float32)}, binary=True))
    assert unknown.status() == "400"


def test_triton_listens_on_loopback_only_and_its_metrics_too(triton: Triton) -> None:
    bound = listening([triton.proc.pid])
    assert {port for *_, port in bound} >= {triton.http, triton.grpc, triton.metrics}, bound
    assert {address for _, _, address, _ in bound} <= {"127.0.0.1", "::1"}, bound
    for address in host_addresses():
        for port in (triton.http, triton.grpc, triton.metrics):
            with pytest.raises(ConnectionRefusedError):
                __import__("socket").create_connection((address, port), timeout=2).close()
    with urllib.request.urlopen(f"http://{triton.host}:{triton.metrics}/metrics", timeout=5) as response:
        text = response.read().decode()
    for metric in ("nv_inference_queue_duration_us", "nv_inference_compute_infer_duration_us"):
        assert f'{metric}{{model="digits",version="1"}}' in text


def test_nothing_is_written_into_the_repository_at_run_time(
    triton: Triton, artifacts_root: Path, manifest: Manifest, tmp_path: Path
) -> None:
    served = triton.run_dir / "repository"
    names = MODELS.split(",")
    fresh = write_repository(manifest, artifacts_root, tmp_path / "fresh", names, windows(names))

    def files(root: Path) -> dict[str, bytes]:
        return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}

    # after loading and answering, the repository is what the generator wrote, byte for byte; model.py's
    # bytecode names its own source's path, so it is compared with a compilation of the served file
    found, wanted = files(served), files(fresh)
    assert sorted(found) == sorted(wanted)
    for name, data in found.items():
        if not name.endswith(".pyc"):
            assert data == wanted[name], name
            continue
        source = served / name.split("/__pycache__/")[0] / "model.py"
        again = tmp_path / "again.pyc"
        py_compile.compile(
            str(source), cfile=str(again), dfile=str(source), doraise=True,
            invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
        )  # fmt: skip
        assert data == again.read_bytes(), f"{name} was rewritten"


def test_the_breakdown_reads_tritons_queue_and_compute_times(triton: Triton, manifest: Manifest) -> None:
    from loadtests import servermetrics

    metrics = f"http://{triton.host}:{triton.metrics}"
    entry = manifest.model("mlp")
    http = httpclient.InferenceServerClient(f"{triton.host}:{triton.http}")
    before = servermetrics.triton(metrics, "mlp_ort")
    for seed in range(5):
        http.infer("mlp_ort", _http_inputs(sample_inputs(entry, 2, seed=seed), binary=True))
    after = servermetrics.triton(metrics, "mlp_ort")
    means = servermetrics.mean_ms(before, after)
    assert means["requests"] == 5
    assert means["inference"] is None  # Triton's compute is the model's whole execute
    for part in ("total", "queue", "pre", "compute", "post"):
        assert means[part] is not None, part
        assert means[part] >= 0, part
    assert means["compute"] > 0
    assert means["total"] >= means["compute"]


def test_a_model_triton_cannot_load_ends_the_start_with_its_message_and_name(tmp_path: Path) -> None:
    from services.triton_api.launcher import READY_LINE
    from tests.services.triton_api.conftest import broken_onnx_root, triton_env
    from tests.utils.servers import running

    env, _ = triton_env(tmp_path, broken_onnx_root(tmp_path), "mlp,mlp_ort")
    with running("triton-broken", ["-m", "services.triton_api", "serve"], tmp_path / "launcher.log", env) as proc:
        code = proc.popen.wait(timeout=240)
        output = proc.log_text()
    assert code == 1, output
    assert READY_LINE not in output
    (line,) = [line for line in output.splitlines() if line.startswith("triton_api: model ")]
    # Triton's own words for the failure, after the model's name; the loadable model is not blamed
    assert line.startswith("triton_api: model mlp_ort: "), line
    assert "INVALID_PROTOBUF" in line or "Protobuf parsing failed" in line, line
    assert "model mlp:" not in output


def test_the_apis_duoserve_does_not_use_are_closed(triton: Triton) -> None:
    http = httpclient.InferenceServerClient(f"{triton.host}:{triton.http}")
    grpc = grpcclient.InferenceServerClient(f"{triton.host}:{triton.grpc}")
    for register in (http.register_system_shared_memory, grpc.register_system_shared_memory):
        with pytest.raises(InferenceServerException) as refused:
            register("duoserve-test", "/duoserve-test", 64)
        assert "restricted" in refused.value.message().lower() or refused.value.status() in (
            "403",
            "StatusCode.UNAVAILABLE",
        ), refused.value
    with pytest.raises(InferenceServerException):
        http.unload_model("mlp")
    assert http.is_model_ready("mlp")  # inference, health, metadata and the model's config stay open
    assert http.get_model_config("mlp")["name"] == "mlp"
