"""The small contracts: TorchServe's key file, stack.json, settings errors, and the percentile estimator."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from contract import latency
from contract.keys import KeyFileError, read_key, read_keys
from contract.settings import SettingsError, load
from contract.stackinfo import StackInfo, StackInfoError


def test_key_file(tmp_path: Path) -> None:
    path = tmp_path / "key_file.json"
    path.write_text(json.dumps({"inference": {"key": "i", "expiration time": "x"}, "API": {"key": "a"}, "n": 3}))
    assert read_keys(path) == {"inference": "i", "API": "a"}
    assert read_key(path) == "i"
    with pytest.raises(KeyFileError, match=r"key_file\.json: no management key \(has: API, inference\)"):
        read_key(path, "management")
    with pytest.raises(KeyFileError, match=r"gone\.json: cannot read TorchServe's key file"):
        read_key(tmp_path / "gone.json")


def _info(tmp_path: Path) -> StackInfo:
    return StackInfo(
        gateway="http://127.0.0.1:8000",
        torch="http://127.0.0.1:8080",
        torch_management="http://127.0.0.1:8081",
        torch_metrics="http://127.0.0.1:8082",
        torch_key_file=tmp_path / "key_file.json",
        torch_models="all",
        tf_rest="http://127.0.0.1:8501",
        tf_grpc="127.0.0.1:8500",
        tf_server="duoserve-compat",
        models=["mlp"],
        gateway_backends={"mlp": ["torch", "tf"]},
        run_dir=tmp_path,
        log_dir=tmp_path / "logs",
        artifacts=tmp_path / "artifacts",
    )


def test_stack_info_round_trips_and_names_what_is_wrong(tmp_path: Path) -> None:
    info = _info(tmp_path)
    info.write(tmp_path / "stack.json")
    back = StackInfo.read(tmp_path / "stack.json")
    assert back == info
    assert back.torch_port == 8080
    with pytest.raises(StackInfoError, match=r"nope\.json: no stack description; start the stack"):
        StackInfo.read(tmp_path / "nope.json")
    (tmp_path / "old.json").write_text(json.dumps({"gateway": "x"}))
    with pytest.raises(StackInfoError, match=r"old\.json: not a stack description of this version"):
        StackInfo.read(tmp_path / "old.json")


class _Toy(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TOY_")
    port: int = Field(1, ge=1, le=65535)
    table: dict[str, int] = Field(default_factory=dict)


def test_settings_errors_name_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOY_PORT", "70000")
    with pytest.raises(SettingsError, match=r"^TOY_PORT: Input should be less than or equal to 65535 \(got '70000'\)$"):
        load(_Toy)
    monkeypatch.setenv("TOY_PORT", "2")
    monkeypatch.setenv("TOY_TABLE", "{not json")
    with pytest.raises(SettingsError, match=r"^TOY_TABLE: not valid JSON"):
        load(_Toy)
    monkeypatch.delenv("TOY_TABLE")
    assert load(_Toy).port == 2


def test_percentiles_are_hdrhistogram_within_a_tenth_of_a_percent() -> None:
    values = [i / 1000 for i in range(1, 1001)]  # 1 ms .. 1 s
    found = latency.percentiles_ms(values, (50, 99))
    assert found["p50_ms"] == pytest.approx(500.0, rel=1e-3)
    assert found["p99_ms"] == pytest.approx(990.0, rel=1e-3)
    assert latency.percentiles_ms([])["p50_ms"] is None
