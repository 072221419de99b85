"""The shared training data and the timing loop, without a framework."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.frameworks import data
from benchmarks.frameworks.plan import Timing
from benchmarks.frameworks.timing import GpuSampler, measure, spread


def test_simplenn_data_is_seeded_and_reordered_per_epoch() -> None:
    a, b = data.simplenn(3, seed=0), data.simplenn(3, seed=0)
    assert a.x.shape == (3, 1000, 10)
    assert a.y.shape == (3, 1000, 1)
    assert a.steps == 32  # 31 full batches of 32 and one of 8
    np.testing.assert_array_equal(a.x, b.x)
    assert not np.array_equal(a.x[0], a.x[1])  # each epoch has its own order ...
    np.testing.assert_allclose(np.sort(a.x[0], axis=0), np.sort(a.x[1], axis=0))  # ... of the same rows
    assert set(np.unique(a.y)) == {0.0, 1.0}


def test_dense784_upsamples_the_digits_to_784_features() -> None:
    images = np.arange(64, dtype=np.float32).reshape(1, 8, 8) % 17
    flat = data.upsample(images)
    assert flat.shape == (1, 784)
    grid = flat.reshape(28, 28)
    assert grid[0, 0] == pytest.approx(images[0, 0, 0] / 16)
    assert grid[27, 27] == pytest.approx(images[0, 7, 7] / 16)
    assert float(flat.max()) <= 1.0
    epochs = data.dense784(2, seed=0)
    assert epochs.x.shape[2] == 784
    assert epochs.x_test is not None
    assert epochs.x_test.shape[1] == 784


def test_digits_batches_are_shifted_crops_of_the_padded_images() -> None:
    epochs = data.digits(1, seed=0)
    assert epochs.x.shape[1:] == (1437, 8, 8)
    assert epochs.batch == 64
    assert float(epochs.x.min()) >= 0.0
    assert float(epochs.x.max()) <= 16.0
    np.testing.assert_array_equal(np.sort(epochs.y[0]), np.sort(data.digits(1, seed=1).y[0]))


def test_sequences_are_zero_exactly_past_their_length() -> None:
    x, lengths, y = data.sequences(50, seed=3)
    assert x.shape == (50, data.RNN_MAX_LEN, data.RNN_FEATURES)
    assert lengths.min() >= data.RNN_MIN_LEN
    assert lengths.max() <= data.RNN_MAX_LEN
    for row, n in zip(x, lengths, strict=True):
        assert not np.any(row[n:])
        assert np.all(np.abs(row[:n]).sum(axis=1) > 0)  # Masking(0.0) masks only the padding
    np.testing.assert_array_equal(y[:, 0], (x[:, :, 0].sum(axis=1) > 0).astype(np.float32))


def test_measure_counts_windows_and_keeps_the_first_output() -> None:
    calls: list[int] = []

    def call() -> dict[str, np.ndarray]:
        calls.append(1)
        return {"y": np.full(2, len(calls), dtype=np.float32)}

    measured = measure(call, Timing(warmup_calls=3, repeats=2, repeat_s=0.0, min_calls=4, max_calls=4))
    assert len(calls) == 3 + 2 * 4  # warm-up (first call included) + two windows of exactly 4
    assert [len(w) for w in measured.windows] == [4, 4]
    np.testing.assert_array_equal(measured.output["y"], [1.0, 1.0])
    summary = measured.summary(batch=8)
    assert summary["calls"] == 8
    assert summary["repeats"] == 2
    assert summary["p50_ms"] <= summary["p99_ms"]
    assert summary["samples_per_s_spread"]["min"] <= summary["samples_per_s"] <= summary["samples_per_s_spread"]["max"]


def test_spread_and_a_sampler_without_a_gpu() -> None:
    assert spread([3.0, 1.0, 2.0]) == {"min": 1.0, "median": 2.0, "max": 3.0}
    sampler = GpuSampler()
    if not sampler.available:  # this machine: no NVML driver; the reason is kept, the result is None
        assert sampler.reason is not None
        assert sampler.reason.startswith("NVML unavailable")
        with sampler:
            pass
        assert sampler.result() is None
