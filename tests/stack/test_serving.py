"""The serving configuration a stack starts with: tuned files, the batching window, the hash."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from contract.artifacts import default_root
from contract.manifest import read_manifest
from contract.tuning import TfBatchingSettings, TorchServeSettings, TunedConfig, TunedFileError
from services.tf_api.config import DEFAULT_BATCHING_CONFIG, load_batching
from stack import serving
from stack.native import StackPaths, plan


def tuned(**over: object) -> TunedConfig:
    data = {
        "model": "digits",
        "batch": 1,
        "slo_ms": 50.0,
        "torchserve": {"digits_ort": TorchServeSettings(batchSize=8, maxBatchDelay=2, workers=1, intraOpThreads=2)},
        "tf": TfBatchingSettings(max_execution_batch_size=32, batch_timeout_micros=2000, num_batch_threads=1),
    }
    data.update(over)
    return TunedConfig.model_validate(data)


def test_a_tuned_file_round_trips_and_sets_only_what_it_names(tmp_path: Path) -> None:
    path = tmp_path / "tuned.json"
    tuned().write(path)
    found = serving.read_tuned(path, read_manifest(default_root()))
    assert serving.archive_settings("digits_ort", found) == {
        "batchSize": 8, "maxBatchDelay": 2, "minWorkers": 1, "maxWorkers": 1, "intraOpThreads": 2,
    }  # fmt: skip
    assert serving.archive_settings("digits", found) == serving.archive_settings("digits")  # shipped


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "tuned file {p}: (top level): Invalid JSON"),
        ('{"model": "digits", "batch": 1, "slo_ms": 50, "tf": {"num_batch_threads": 0}}', "tuned file {p}: tf."),
        ('{"model": "nope", "batch": 1, "slo_ms": 50}', "tuned file {p}: model 'nope' is not built"),
        (
            '{"model": "digits", "batch": 1, "slo_ms": 50, "torchserve": {"nope": '
            '{"batchSize": 1, "maxBatchDelay": 1, "workers": 1}}}',
            "tuned file {p}: no TorchServe archive nope",
        ),
        (
            '{"model": "digits", "batch": 1, "slo_ms": 50, "triton": {"nope_ort": '
            '{"instances": 1, "max_queue_delay_microseconds": 100, "preferred_batch_size": 4}}}',
            "tuned file {p}: no Triton model nope_ort",
        ),
    ],
)
def test_a_bad_tuned_file_gets_one_line_naming_it(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "tuned.json"
    path.write_text(text)
    with pytest.raises(TunedFileError) as caught:
        serving.read_tuned(path, read_manifest(default_root()))
    assert str(caught.value).startswith(message.format(p=path))
    assert "\n" not in str(caught.value)


def test_a_missing_tuned_file_stops_the_plan_before_anything_starts(tmp_path: Path) -> None:
    with pytest.raises(TunedFileError, match=r"tuned file .*nope.json: cannot read"):
        plan(StackPaths(tmp_path / "run", tmp_path / "logs"), tmp_path / "nope.json")


def test_the_batching_window_replaces_three_fields_and_keeps_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "batching.config"
    path.write_text(serving.batching_text(DEFAULT_BATCHING_CONFIG, tuned().tf))  # type: ignore[arg-type]
    found = load_batching(path)
    shipped = load_batching(DEFAULT_BATCHING_CONFIG)
    assert (found.max_execution_batch_size, found.batch_timeout_micros, found.num_batch_threads) == (32, 2000, 1)
    assert found.max_batch_size == shipped.max_batch_size
    assert found.enable_large_batch_splitting
    assert found.max_enqueued_batches == shipped.max_enqueued_batches


def test_the_hash_changes_with_the_settings_not_with_the_file_name(tmp_path: Path) -> None:
    archives = ["digits", "digits_ort"]
    shipped = serving.summary(archives, DEFAULT_BATCHING_CONFIG, None, None)
    same = serving.summary(archives, DEFAULT_BATCHING_CONFIG, tuned(torchserve={}, tf=None), tmp_path / "t.json")
    other = serving.summary(archives, DEFAULT_BATCHING_CONFIG, tuned(tf=None), tmp_path / "t.json")
    assert serving.config_hash(shipped) == serving.config_hash(same)
    assert serving.config_hash(shipped) != serving.config_hash(other)
    assert len(serving.config_hash(shipped)) == 12
    assert json.loads(json.dumps(other))["torchserve"]["digits_ort"]["batchSize"] == 8


def test_the_stack_names_each_stacks_logging(tmp_path: Path) -> None:
    from services.tf_api.settings import Settings as TfSettings
    from services.torch_api.settings import TorchApiSettings
    from stack.native import logging_summary

    found = logging_summary(TorchApiSettings(), TfSettings(), {})
    assert found == {
        "torchserve": "services/torch_api/log4j2.xml: frontend WARN, workers INFO without the per-batch line, "
        "no access log, files roll at 10 MB × 3",
        "tf_server": "WARNING, no access log, compat.log rolls at 10 MB",
        "gateway": "WARNING, no access log; launcher logs roll at 10 MB",
    }
    shipped = logging_summary(TorchApiSettings(logging="torchserve-default"), TfSettings(access_log=True),
                              {"GATEWAY_LOG_LEVEL": "info", "GATEWAY_ACCESS_LOG": "true"})  # fmt: skip
    assert shipped["torchserve"].startswith("TorchServe's built-in log4j2.xml: DEBUG, an access-log line per request")
    assert shipped["tf_server"] == "WARNING, access log on, compat.log rolls at 10 MB"
    assert shipped["gateway"] == "INFO, access log on; launcher logs roll at 10 MB"


def test_the_plan_hands_triton_the_tuned_file_and_hashes_its_windows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from contract.tuning import TritonSettings

    path = tmp_path / "tuned.json"
    window = TritonSettings(instances=1, max_queue_delay_microseconds=500, preferred_batch_size=8)
    tuned(torchserve={}, tf=None, triton={"digits_ort": window}).write(path)
    monkeypatch.setenv("TRITON_API_MODELS", "digits,digits_ort")
    paths = StackPaths(tmp_path / "run", tmp_path / "logs")
    planned = plan(paths, path)
    assert planned.envs["triton_api"]["TRITON_API_TUNED"] == str(path.resolve())
    found = planned.info.serving["triton"]
    assert found["digits_ort"] == {
        "preferred_batch": 8,
        "max_queue_delay_us": 500,
        "instances": 1,
        "intra_op_threads": 1,
    }
    assert found["digits"] == {"preferred_batch": 16, "max_queue_delay_us": 1000, "instances": 2, "intra_op_threads": 1}
    assert planned.info.config_hash != plan(paths).info.config_hash
    monkeypatch.setenv("TRITON_API_MODELS", "none")
    without = plan(paths)
    assert "triton_api" not in without.envs
    assert "triton" not in without.info.serving
    assert not any(b.startswith("triton") for names in without.info.gateway_backends.values() for b in names)
