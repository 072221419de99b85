"""models.config, batching and monitoring files, version policies, settings, and the binary's command line."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from contract.artifacts import default_root
from services.tf_api.binary import command
from services.tf_api.compat.errors import Code, ServingError
from services.tf_api.compat.servables import ModelRegistry
from services.tf_api.config import (
    DEFAULT_BATCHING_CONFIG,
    DEFAULT_MONITORING_CONFIG,
    BatchingConfig,
    ConfigError,
    VersionPolicy,
    load_batching,
    load_models,
    load_monitoring,
    render_models_config,
    resolve_base_path,
    write_native_config,
)
from services.tf_api.settings import SettingsError, load_settings


def _models_config(tmp_path: Path, models: tuple[str, ...] = ("mlp", "digits", "resnet")) -> Path:
    path = tmp_path / "models.config"
    path.write_text(render_models_config(list(models)))
    return path


def test_written_models_config_resolves_to_the_artifacts(tmp_path: Path) -> None:
    entries = load_models(_models_config(tmp_path), tmp_path)
    assert [e.name for e in entries] == ["mlp", "digits", "resnet"]
    for entry in entries:
        assert entry.base_path == tmp_path / "tf" / entry.name
        assert entry.policy == VersionPolicy("latest", num_versions=1)
        assert entry.labels == {"stable": 1}


def test_the_build_lists_every_model_with_a_savedmodel(artifacts_root: Path) -> None:
    from contract.artifacts import TF_MODELS_CONFIG
    from contract.manifest import read_manifest

    manifest = read_manifest(artifacts_root)
    entries = load_models(artifacts_root / TF_MODELS_CONFIG, artifacts_root)
    assert [e.name for e in entries] == sorted(n for n, e in manifest.models.items() if "tf" in e.artifacts)
    assert load_settings(artifacts=artifacts_root).models_config_path == artifacts_root / TF_MODELS_CONFIG


def test_shipped_batching_and_monitoring_files() -> None:
    shipped = load_batching(DEFAULT_BATCHING_CONFIG)
    assert shipped == BatchingConfig(1024, 1000, 2, 64, enable_large_batch_splitting=True, max_execution_batch_size=16)
    assert shipped.execution_limit == 16  # the same window as TorchServe's batchSize 16
    monitoring = load_monitoring(DEFAULT_MONITORING_CONFIG)
    assert monitoring.enable is True
    assert monitoring.path == "/monitoring/prometheus/metrics"


@pytest.mark.parametrize(
    ("base_path", "expected"),
    [("/models/mlp", "ART/tf/mlp"), ("mlp", "ART/tf/mlp"), ("/srv/elsewhere/mlp", "/srv/elsewhere/mlp")],
)
def test_base_path_scheme(base_path: str, expected: str) -> None:
    assert str(resolve_base_path(base_path, Path("ART"))) == expected


def test_unset_batching_fields_keep_tf_serving_defaults(tmp_path: Path) -> None:
    path = tmp_path / "b.config"
    path.write_text("max_batch_size { value: 8 }\n")
    assert load_batching(path) == BatchingConfig(max_batch_size=8, batch_timeout_micros=0, num_batch_threads=4)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("max_batch_size { value: 0 }", "max_batch_size must be at least 1"),
        ("max_batch_size: 3", "not a BatchingParameters text proto"),
    ],
)
def test_bad_batching_file_names_the_file(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "b.config"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as info:
        load_batching(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("model_config_list { config { name: 'a' base_path: '/models/a' model_platform: 'onnx' } }",
         "model a: platform 'onnx' is not 'tensorflow'"),
        ("model_config_list { config { name: 'a' base_path: '/models/a' } config { name: 'a' base_path: 'b' } }",
         "model a is configured twice"),
        ("model_config_list { config { name: 'a' } }", "every config needs a name and a base_path"),
        ("nonsense", "not a ModelServerConfig text proto"),
    ],
)  # fmt: skip
def test_bad_models_config(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "models.config"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_models(path, tmp_path)


@pytest.mark.parametrize(
    ("policy", "available", "chosen"),
    [
        (VersionPolicy(), [1, 3, 2], [3]),
        (VersionPolicy("latest", num_versions=2), [1, 3, 2], [3, 2]),
        (VersionPolicy("all"), [1, 3, 2], [3, 2, 1]),
        (VersionPolicy("specific", versions=(1, 5)), [1, 3, 2], [1]),
    ],
)
def test_version_policy_choice(policy: VersionPolicy, available: list[int], chosen: list[int]) -> None:
    assert policy.choose(available) == chosen


def make_model_base(root: Path, garbage: int | None = None) -> Path:
    """``root/tf/m/{1,2}`` copies of the mlp SavedModel, and optionally a garbage version dir."""
    base = root / "tf" / "m"
    for version in (1, 2):
        shutil.copytree(default_root() / "tf" / "mlp" / "1", base / str(version))
    if garbage is not None:
        (base / str(garbage)).mkdir()
        (base / str(garbage) / "saved_model.pb").write_bytes(b"not a protobuf \x00\xff")
    return base


def _config(tmp_path: Path, policy: str) -> Path:
    path = tmp_path / "models.config"
    path.write_text(
        "model_config_list { config { name: 'm' base_path: '/models/m' model_platform: 'tensorflow' "
        f"model_version_policy {{ {policy} }} version_labels {{ key: 'old' value: 1 }} }} }}"
    )
    return path


@pytest.mark.parametrize(
    ("policy", "states"),
    [
        ("latest { num_versions: 1 }", {2: "AVAILABLE"}),
        ("all {}", {1: "AVAILABLE", 2: "AVAILABLE"}),
        ("specific { versions: 1 }", {1: "AVAILABLE"}),
    ],
)
def test_policy_loads_the_versions_it_names(tmp_path: Path, policy: str, states: dict[int, str]) -> None:
    make_model_base(tmp_path)
    registry = ModelRegistry()
    registry.load(load_models(_config(tmp_path, policy), tmp_path))
    assert {v.version: v.state for v in registry.status("m")} == states
    assert registry.resolve("m").version == max(states)


def test_garbage_version_fails_only_that_version(tmp_path: Path) -> None:
    make_model_base(tmp_path, garbage=3)
    registry = ModelRegistry()
    registry.load(load_models(_config(tmp_path, "all {}"), tmp_path))
    states = {v.version: v for v in registry.status("m")}
    assert {v: s.state for v, s in states.items()} == {3: "END", 2: "AVAILABLE", 1: "AVAILABLE"}
    assert states[3].error.startswith(f"Failed to load SavedModel {tmp_path / 'tf' / 'm' / '3'}: ")
    assert registry.resolve("m").version == 2  # the newest *available* one
    assert registry.resolve("m", label="old").version == 1
    with pytest.raises(ServingError) as info:
        registry.resolve("m", 3)
    assert info.value.code is Code.NOT_FOUND
    assert info.value.message == "Servable not found for request: Specific(m, 3)"


def test_native_config_for_the_binary_has_local_paths(tmp_path: Path) -> None:
    target = write_native_config(_models_config(tmp_path), tmp_path, tmp_path / "native.config")
    entries = load_models(target, Path("/unused"))
    assert [e.base_path for e in entries] == [(tmp_path / "tf" / m).resolve() for m in ("mlp", "digits", "resnet")]


def test_binary_command_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TF_API_REST_PORT", "9501")
    monkeypatch.setenv("TF_API_GRPC_PORT", "9500")
    settings = load_settings()
    assert command(settings, "/usr/bin/tensorflow_model_server", tmp_path / "m.config") == [
        "/usr/bin/tensorflow_model_server",
        "--port=9500",
        "--rest_api_port=9501",
        f"--model_config_file={tmp_path / 'm.config'}",
        f"--monitoring_config_file={DEFAULT_MONITORING_CONFIG}",
        "--enable_batching=true",
        f"--batching_parameters_file={DEFAULT_BATCHING_CONFIG}",
    ]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"TF_API_REST_PORT": "70000"}, "TF_API_REST_PORT: Input should be less than or equal to 65535"),
        ({"TF_API_MAX_BODY_BYTES": "lots"}, "TF_API_MAX_BODY_BYTES: Input should be a valid integer"),
        ({"TF_API_SERVER": "docker"}, "TF_API_SERVER: Input should be 'auto', 'binary' or 'compat'"),
        (
            {"TF_API_REST_PORT": "9000", "TF_API_GRPC_PORT": "9000"},
            "TF_API_REST_PORT and TF_API_GRPC_PORT are both 9000",
        ),
    ],
)
def test_bad_setting_names_the_variable(monkeypatch: pytest.MonkeyPatch, env: dict[str, str], message: str) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(SettingsError) as info:
        load_settings()
    assert message in str(info.value)
