"""The launchers' shared settings checks: loopback only, and the models to load, each refusal naming its variable."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.torch_api.settings import TorchApiSettings
from services.triton_api.settings import TritonApiSettings


@pytest.mark.parametrize(("cls", "prefix"), [(TorchApiSettings, "TORCH_API"), (TritonApiSettings, "TRITON_API")])
def test_a_host_off_loopback_is_refused(cls: type, prefix: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(f"{prefix}_HOST", "0.0.0.0")
    with pytest.raises(ValidationError, match=f"{prefix}_HOST must be a loopback address"):
        cls()
    monkeypatch.setenv(f"{prefix}_HOST", "::1")
    assert cls().host == "::1"


def test_model_lists_are_normalised_and_bad_names_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORCH_API_MODELS", " mlp , digits_ort ")
    settings = TorchApiSettings()
    assert settings.models == "mlp,digits_ort"
    assert settings.model_names(["digits", "digits_ort", "mlp"]) == ["mlp", "digits_ort"]
    with pytest.raises(ValueError, match=r"TORCH_API_MODELS names mlp, not in the model store \(have: digits_ort\)"):
        settings.model_names(["digits_ort"])
    monkeypatch.setenv("TORCH_API_MODELS", "../etc")
    with pytest.raises(ValidationError, match=r"TORCH_API_MODELS: '\.\./etc' is not an archive name"):
        TorchApiSettings()
    monkeypatch.setenv("TORCH_API_MODELS", " , ")
    with pytest.raises(ValidationError, match='TORCH_API_MODELS must be "all" or a comma-separated list'):
        TorchApiSettings()


def test_triton_takes_none_and_all(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRITON_API_MODELS", "none")
    assert TritonApiSettings().model_names(["mlp"]) == []
    assert not TritonApiSettings().enabled
    monkeypatch.setenv("TRITON_API_MODELS", "all")
    assert TritonApiSettings().model_names(["mlp_ort", "mlp"]) == ["mlp", "mlp_ort"]
    monkeypatch.setenv("TRITON_API_MODELS", "")
    with pytest.raises(ValidationError, match='TRITON_API_MODELS must be "all", "none" or a comma-separated list'):
        TritonApiSettings()
