"""REST predict, status and metadata against the real compatible server."""

from __future__ import annotations

import numpy as np
import pytest

from tests.services.tf_api.conftest import MODELS
from tests.utils.inputs import random_batch

TOLERANCE = 1e-5
# resnet over JSON is slow on 2 cores: batch 32 runs once, in test_resnet_batch_32_row.
CASES = [(m, n) for m in MODELS for n in ((1, 32) if m != "resnet" else (1, 4))]


@pytest.mark.parametrize(("model", "n"), CASES)
def test_row_format_matches_savedmodel(http, reference, model: str, n: int) -> None:
    x = random_batch(model, n, seed=n)
    response = http.post(f"/v1/models/{model}:predict", json={"instances": x.tolist()})
    assert response.status_code == 200, response.text
    assert response.headers["X-TF-Server"] == "duoserve-compat"
    predictions = np.asarray(response.json()["predictions"], dtype=np.float32)
    expected = reference(model, x)
    assert predictions.shape == expected.shape
    assert np.abs(predictions - expected).max() <= TOLERANCE


@pytest.mark.parametrize(("model", "n"), CASES)
def test_columnar_format_matches_savedmodel(http, reference, model: str, n: int) -> None:
    x = random_batch(model, n, seed=100 + n)
    body = {"signature_name": "serving_default", "inputs": x.tolist()}
    response = http.post(f"/v1/models/{model}/versions/1:predict", json=body)
    assert response.status_code == 200, response.text
    assert set(response.json()) == {"outputs"}
    outputs = np.asarray(response.json()["outputs"], dtype=np.float32)
    assert np.abs(outputs - reference(model, x)).max() <= TOLERANCE


def test_resnet_batch_32_row(http, reference) -> None:
    x = random_batch("resnet", 32, seed=32)
    response = http.post("/v1/models/resnet:predict", json={"instances": x.tolist()})
    assert response.status_code == 200, response.text
    predictions = np.asarray(response.json()["predictions"], dtype=np.float32)
    assert predictions.shape == (32, 1000)
    assert np.abs(predictions - reference("resnet", x)).max() <= TOLERANCE


def test_label_names_a_version(http, reference) -> None:
    x = random_batch("mlp", 3, seed=7)
    response = http.post("/v1/models/mlp/labels/stable:predict", json={"instances": x.tolist()})
    assert response.status_code == 200, response.text
    assert np.abs(np.asarray(response.json()["predictions"]) - reference("mlp", x)).max() <= TOLERANCE


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("suffix", ["", "/versions/1", "/labels/stable"])
def test_status_body_has_tf_serving_shape(http, model: str, suffix: str) -> None:
    response = http.get(f"/v1/models/{model}{suffix}")
    assert response.status_code == 200
    assert response.headers["X-TF-Server"] == "duoserve-compat"
    assert response.json() == {
        "model_version_status": [
            {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
        ]
    }


@pytest.mark.parametrize(
    ("model", "instance_dims", "output_dims"),
    [("mlp", ["10"], ["1"]), ("digits", ["8", "8"], ["10"]), ("resnet", ["224", "224", "3"], ["1000"])],
)
def test_metadata_body_has_tf_serving_shape(http, model: str, instance_dims: list[str], output_dims: list[str]) -> None:
    response = http.get(f"/v1/models/{model}/versions/1/metadata")
    assert response.status_code == 200
    body = response.json()
    assert body["model_spec"] == {"name": model, "signature_name": "", "version": "1"}
    signatures = body["metadata"]["signature_def"]["signature_def"]
    assert list(signatures) == ["serving_default"]
    signature = signatures["serving_default"]
    assert signature["method_name"] == "tensorflow/serving/predict"
    x = signature["inputs"]["x"]
    y = signature["outputs"]["probabilities"]
    assert x["dtype"] == y["dtype"] == "DT_FLOAT"
    assert [d["size"] for d in x["tensor_shape"]["dim"]] == ["-1", *instance_dims]
    assert [d["size"] for d in y["tensor_shape"]["dim"]] == ["-1", *output_dims]
    assert x["tensor_shape"]["unknown_rank"] is False


def test_prometheus_metrics_are_exposed(http) -> None:
    http.post("/v1/models/mlp:predict", json={"instances": [[0.0] * 10]})
    response = http.get("/monitoring/prometheus/metrics")
    assert response.status_code == 200
    assert ':tensorflow:serving:request_count_total{entrypoint="REST",model_name="mlp",status="OK"}' in response.text
    assert ":tensorflow:serving:batching_session:processed_batch_size_bucket" in response.text
