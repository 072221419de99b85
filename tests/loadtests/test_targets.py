from __future__ import annotations

import json
from pathlib import Path

import pytest

from contract.stackinfo import StackInfo
from loadtests.targets import TARGETS, Endpoints, get_target, headers, path, torch_key


@pytest.fixture
def endpoints(tmp_path: Path) -> Endpoints:
    key_file = tmp_path / "key_file.json"
    key_file.write_text(json.dumps({"inference": {"key": "abc"}, "management": {"key": "never-used"}}))
    StackInfo(
        gateway="http://127.0.0.1:8000/",
        torch="http://127.0.0.1:8080",
        torch_management="http://127.0.0.1:8081",
        torch_metrics="http://127.0.0.1:8082",
        torch_key_file=key_file,
        torch_models="all",
        tf_rest="http://127.0.0.1:8501",
        tf_grpc="127.0.0.1:8500",
        tf_server="duoserve-compat",
        models=["digits"],
        gateway_backends={"digits": ["torch", "tf"]},
        run_dir=tmp_path,
        log_dir=tmp_path,
        artifacts=tmp_path,
    ).write(tmp_path / "stack.json")
    return Endpoints.from_stack_json(tmp_path / "stack.json")


def test_hosts_and_paths(endpoints: Endpoints) -> None:
    want = {
        "torch": "http://127.0.0.1:8080/predictions/digits",
        "torch_ort": "http://127.0.0.1:8080/predictions/digits_ort",
        "tf": "http://127.0.0.1:8501/v1/models/digits:predict",
        "gw_torch": "http://127.0.0.1:8000/v1/models/digits/predict",
        "gw_tf": "http://127.0.0.1:8000/v1/models/digits/predict",
        "gw_compare": "http://127.0.0.1:8000/v1/models/digits/compare",
        "gw_v2_torch": "http://127.0.0.1:8000/v2/models/digits/infer",
        "gw_v2b_tf": "http://127.0.0.1:8000/v2/models/digits/infer",
    }
    for name, url in want.items():
        target = get_target(name)
        assert endpoints.host(target) + path(target, "digits") == url
    assert endpoints.compare_backends("digits") == ["torch", "tf"]
    assert endpoints.compare_backends("mlp") == ["torch", "torch_ort", "tf"]


def test_headers_carry_the_right_credentials(endpoints: Endpoints) -> None:
    key = torch_key(endpoints.torch_key_file)
    assert key == "abc"
    assert headers(endpoints, TARGETS["torch"], key)["Authorization"] == "Bearer abc"
    assert "Authorization" not in headers(endpoints, TARGETS["gw_torch"], key)
    assert headers(endpoints, TARGETS["gw_torch_ort"], None)["X-Backend"] == "torch_ort"
    assert "X-API-Key" not in headers(endpoints, TARGETS["gw_tf"], None)
    keyed = endpoints.with_overrides(None, None, None, None, api_key="s3cret")
    assert headers(keyed, TARGETS["gw_compare"], None)["X-API-Key"] == "s3cret"
    assert "X-API-Key" not in headers(keyed, TARGETS["tf"], None)
    assert "s3cret" not in repr(keyed)
    assert headers(endpoints, TARGETS["gw_v2b_torch_ort"], key)["X-Backend"] == "torch_ort"
    assert headers(keyed, TARGETS["gw_v2_tf"], None)["X-API-Key"] == "s3cret"
    assert [TARGETS[n].encoding for n in ("gw_tf", "gw_v2_tf", "gw_v2b_tf")] == ["v1", "v2", "v2_binary"]


def test_overrides_and_missing_stack(endpoints: Endpoints, tmp_path: Path) -> None:
    moved = endpoints.with_overrides("http://gateway:8000/", None, "http://tf_api:8501", None)
    assert (moved.gateway, moved.torch, moved.tf_rest) == ("http://gateway:8000", endpoints.torch, "http://tf_api:8501")
    with pytest.raises(FileNotFoundError, match="start the stack"):
        Endpoints.from_stack_json(tmp_path / "nope.json")
    with pytest.raises(KeyError, match="known: torch, torch_ort"):
        get_target("grpc")


def test_triton_targets_go_to_triton_direct_in_binary_and_through_the_gateway(tmp_path: Path) -> None:
    StackInfo(
        gateway="http://127.0.0.1:8000",
        torch="http://127.0.0.1:8080",
        torch_management="http://127.0.0.1:8081",
        torch_metrics="http://127.0.0.1:8082",
        torch_key_file=tmp_path / "key_file.json",
        torch_models="all",
        tf_rest="http://127.0.0.1:8501",
        tf_grpc="127.0.0.1:8500",
        tf_server="duoserve-compat",
        triton="http://127.0.0.1:8100",
        triton_grpc="127.0.0.1:8101",
        triton_metrics="http://127.0.0.1:8102",
        triton_models="all",
        models=["digits"],
        gateway_backends={"digits": ["torch", "triton", "triton_ort", "tf"]},
        run_dir=tmp_path,
        log_dir=tmp_path,
        artifacts=tmp_path,
    ).write(tmp_path / "stack.json")
    endpoints = Endpoints.from_stack_json(tmp_path / "stack.json")
    want = {
        "triton": "http://127.0.0.1:8100/v2/models/digits/infer",
        "triton_ort": "http://127.0.0.1:8100/v2/models/digits_ort/infer",
        "gw_triton": "http://127.0.0.1:8000/v1/models/digits/predict",
        "gw_triton_ort": "http://127.0.0.1:8000/v1/models/digits/predict",
        "gw_v2b_triton": "http://127.0.0.1:8000/v2/models/digits/infer",
    }
    for name, url in want.items():
        target = get_target(name)
        assert endpoints.host(target) + path(target, "digits") == url
    assert TARGETS["triton"].encoding == "v2_binary"
    assert not TARGETS["triton"].via_gateway
    assert "X-Backend" not in headers(endpoints, TARGETS["triton"], None)
    assert headers(endpoints, TARGETS["gw_triton_ort"], None)["X-Backend"] == "triton_ort"
    # a stack without Triton has no host for its direct targets
    without = Endpoints(gateway="http://127.0.0.1:8000", torch="http://127.0.0.1:8080", tf_rest="http://127.0.0.1:8501")
    with pytest.raises(ValueError, match="the stack runs no Triton"):
        without.host(TARGETS["triton"])
