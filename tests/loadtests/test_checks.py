from __future__ import annotations

from contract.manifest import ModelEntry, TensorSpec
from loadtests import checks

TWO = ModelEntry(
    name="m", inputs=(TensorSpec(name="x", shape=(1,)),), outputs=(TensorSpec(name="y", shape=(2,)),), max_batch=4
)
ONE = TWO.model_copy(update={"outputs": (TensorSpec(name="y", shape=(1,)),)})


def test_predict_answers() -> None:
    assert checks.check_predict({"predictions": [[0.1, 0.9], [1, 0]]}, TWO, 2) is None
    assert checks.check_predict({"predictions": [0.5]}, ONE, 1) is None  # one value per row may come unwrapped
    assert checks.check_predict({"outputs": [[0.1, 0.9]]}, TWO, 1) is None
    assert checks.check_predict({"predictions": [[0.1, 0.9]]}, TWO, 2) == "output y has shape [1, 2]; expected [2, 2]"
    assert checks.check_predict({"predictions": [[0.1]]}, TWO, 1) == "output y has shape [1, 1]; expected [1, 2]"
    assert checks.check_predict({"predictions": [["a", 1]]}, TWO, 1) == "output y is not a numeric tensor"
    assert checks.check_predict({"predictions": [[float("nan"), 1]]}, TWO, 1) == "output y holds NaN or infinite values"
    assert checks.check_predict({"detail": "x"}, TWO, 1) == "the answer has neither predictions nor outputs"
    assert (
        checks.check_predict({"backend": "tf", "predictions": [[1, 2]]}, TWO, 1, "torch")
        == "served by 'tf', asked for 'torch'"
    )


def test_compare_answers() -> None:
    ok = {
        "results": [
            {"backend": "torch", "predictions": [[0.2, 0.8]]},
            {"backend": "tf", "predictions": [[0.2, 0.8]]},
        ],
        "max_abs_diff": 3e-7,
    }
    assert checks.check_compare(ok, TWO, 1, ["tf", "torch"]) is None
    assert (
        checks.check_compare({**ok, "max_abs_diff": 2e-4}, TWO, 1, ["tf", "torch"])
        == "max_abs_diff 0.0002 exceeds 0.0001"
    )
    assert "expected ['tf', 'torch', 'torch_ort']" in str(
        checks.check_compare(ok, TWO, 1, ["torch", "torch_ort", "tf"])
    )
    failed = {**ok, "results": [ok["results"][0], {"backend": "tf", "error": {"status": 503}}]}
    assert checks.check_compare(failed, TWO, 1, ["tf", "torch"]) == "tf failed in compare: {'status': 503}"


def test_gate() -> None:
    assert checks.gate(100, 1, 10.0, 0.01, 0.0) is None
    assert checks.gate(100, 2, 10.0, 0.01, 0.0) == "fail ratio 2.00% > 1.00%"
    assert checks.gate(100, 0, 60.0, 0.01, 50.0) == "p99 60 ms > 50 ms"
    assert checks.gate(0, 0, None, 0.01, 0.0) == "no requests were made"


def test_v2_answers() -> None:
    import json

    import numpy as np

    from contract.oip import RequestedOutput, rest_response

    def answer(values: list[list[float]], binary: bool, backend: str = "torch") -> tuple[bytes, str | None]:
        body, length = rest_response(
            TWO, {"y": np.asarray(values, np.float32)}, [RequestedOutput("y", binary)], parameters={"backend": backend}
        )
        return body, None if length is None else str(length)

    for binary in (False, True):
        assert checks.check_v2(*answer([[0.1, 0.9]], binary), TWO, 1, "torch") is None
        assert (
            checks.check_v2(*answer([[0.1, 0.9]], binary), TWO, 2, "torch")
            == "output y has shape [1, 2]; expected [2, 2]"
        )
        assert (
            checks.check_v2(*answer([[0.1, 0.9]], binary, "tf"), TWO, 1, "torch") == "served by 'tf', asked for 'torch'"
        )
        nan = checks.check_v2(*answer([[float("nan"), 1]], binary), TWO, 1, "torch")
        assert nan == (
            "output y holds NaN or infinite values"
            if binary
            else "request body contains NaN; instances must hold finite numbers"
        )
    assert (
        checks.check_v2(json.dumps({"error": "x"}).encode(), None, TWO, 1, "torch")
        == "the answer has no list of outputs"
    )
    assert checks.check_v2(b"<html>", None, TWO, 1, "torch").startswith("request body is not valid JSON")
