from __future__ import annotations

from loadtests import checks


def test_predict_answers() -> None:
    assert checks.check_predict({"predictions": [[0.1, 0.9], [1, 0]]}, 2, 2) is None
    assert checks.check_predict({"predictions": [[[0.5]]]}, 1, 1) is None  # nested rows count their numbers
    assert checks.check_predict({"predictions": [[0.1, 0.9]]}, 2, 2) == "1 prediction rows for 2 instances"
    assert checks.check_predict({"predictions": [[0.1]]}, 1, 2) == "row 0 has 1 values, expected 2"
    assert checks.check_predict({"predictions": [["a", 1]]}, 1, 2) == "row 0 has non-numeric values, expected 2"
    assert (
        checks.check_predict({"predictions": [[float("nan"), 1]]}, 1, 2) == "row 0 has non-numeric values, expected 2"
    )
    assert checks.check_predict({"outputs": []}, 1, 2) == "answer has no 'predictions'"
    assert (
        checks.check_predict({"backend": "tf", "predictions": [[1]]}, 1, 1, "torch")
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
    assert checks.check_compare(ok, 1, 2, ["tf", "torch"]) is None
    assert (
        checks.check_compare({**ok, "max_abs_diff": 2e-4}, 1, 2, ["tf", "torch"])
        == "max_abs_diff 0.0002 exceeds 0.0001"
    )
    assert "expected ['tf', 'torch', 'torch_ort']" in str(checks.check_compare(ok, 1, 2, ["torch", "torch_ort", "tf"]))
    failed = {**ok, "results": [ok["results"][0], {"backend": "tf", "error": {"status": 503}}]}
    assert checks.check_compare(failed, 1, 2, ["tf", "torch"]) == "tf failed in compare: {'status': 503}"


def test_gate() -> None:
    assert checks.gate(100, 1, 10.0, 0.01, 0.0) is None
    assert checks.gate(100, 2, 10.0, 0.01, 0.0) == "fail ratio 2.00% > 1.00%"
    assert checks.gate(100, 0, 60.0, 0.01, 50.0) == "p99 60 ms > 50 ms"
    assert checks.gate(0, 0, None, 0.01, 0.0) == "no requests were made"
