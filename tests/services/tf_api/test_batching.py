"""Server-side batching: the batcher's rules in-process, and merged concurrent requests on the real server."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from services.tf_api.compat.batching import QUEUE_FULL, Batcher
from services.tf_api.compat.errors import Code, ServingError
from services.tf_api.config import BatchingConfig
from tests.utils.inputs import random_batch

TOLERANCE = 1e-5


class Recorder:
    """A fake model: doubles its input and remembers each batch's row count."""

    def __init__(self, gate: threading.Event | None = None) -> None:
        self.batches: list[int] = []
        self.gate = gate

    def __call__(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self.gate is not None:
            assert self.gate.wait(10)
        self.batches.append(int(inputs["x"].shape[0]))
        return {"y": inputs["x"] * 2}


def _run(coro):
    return asyncio.run(asyncio.wait_for(coro, 20))


def test_concurrent_tasks_merge_and_split_back_in_order() -> None:
    recorder = Recorder()
    config = BatchingConfig(max_batch_size=16, batch_timeout_micros=50_000, num_batch_threads=1, max_enqueued_batches=4)

    async def main() -> list[dict[str, np.ndarray]]:
        with ThreadPoolExecutor(1) as pool:
            batcher = Batcher(recorder, config, pool)
            tasks = [batcher.submit({"x": np.full((i % 3 + 1, 2), i, np.float32)}) for i in range(8)]
            return await asyncio.gather(*tasks)

    results = _run(main())
    for i, result in enumerate(results):
        np.testing.assert_array_equal(result["y"], np.full((i % 3 + 1, 2), 2 * i, np.float32))
    assert sum(recorder.batches) == sum(i % 3 + 1 for i in range(8))
    assert len(recorder.batches) < 8  # merged


def test_full_batch_runs_without_waiting_for_the_timeout() -> None:
    recorder = Recorder()
    config = BatchingConfig(max_batch_size=4, batch_timeout_micros=60_000_000, num_batch_threads=1)

    async def main() -> None:
        with ThreadPoolExecutor(1) as pool:
            batcher = Batcher(recorder, config, pool)
            await asyncio.gather(*(batcher.submit({"x": np.ones((1, 1), np.float32)}) for _ in range(4)))

    _run(main())  # would time out (20 s) if the 60 s batch timeout were awaited
    assert recorder.batches == [4]


def test_a_task_larger_than_max_batch_size_is_refused_as_tf_serving_does() -> None:
    recorder = Recorder()
    config = BatchingConfig(max_batch_size=4, batch_timeout_micros=0, num_batch_threads=1)

    async def main() -> dict[str, np.ndarray]:
        with ThreadPoolExecutor(1) as pool:
            return await Batcher(recorder, config, pool).submit({"x": np.ones((10, 1), np.float32)})

    with pytest.raises(ServingError) as info:
        _run(main())
    assert info.value.code == Code.INVALID_ARGUMENT
    assert info.value.message == "Task size 10 is larger than maximum input batch size 4"
    assert recorder.batches == []


def test_large_batch_splitting_cuts_a_big_task_into_execution_batches_and_joins_the_rows() -> None:
    recorder = Recorder()
    config = BatchingConfig(
        max_batch_size=64,
        batch_timeout_micros=50_000,
        num_batch_threads=1,
        max_enqueued_batches=8,
        enable_large_batch_splitting=True,
        max_execution_batch_size=4,
    )

    async def main() -> list[dict[str, np.ndarray]]:
        with ThreadPoolExecutor(1) as pool:
            batcher = Batcher(recorder, config, pool)
            small = batcher.submit({"x": np.full((3, 1), -1, np.float32)})
            big = batcher.submit({"x": np.arange(10, dtype=np.float32).reshape(10, 1)})
            return await asyncio.gather(small, big)

    small, big = _run(main())
    np.testing.assert_array_equal(small["y"], np.full((3, 1), -2, np.float32))
    np.testing.assert_array_equal(big["y"][:, 0], 2 * np.arange(10, dtype=np.float32))
    assert max(recorder.batches) <= 4
    assert recorder.batches[0] == 4  # the big task filled the small one's open batch first
    assert sum(recorder.batches) == 13


def test_tasks_of_other_row_shapes_never_share_a_batch() -> None:
    recorder = Recorder()
    config = BatchingConfig(max_batch_size=16, batch_timeout_micros=50_000, num_batch_threads=1)

    async def main() -> list[dict[str, np.ndarray]]:
        with ThreadPoolExecutor(1) as pool:
            batcher = Batcher(recorder, config, pool)
            return await asyncio.gather(
                batcher.submit({"x": np.ones((1, 3), np.float32)}),
                batcher.submit({"x": np.ones((1, 5), np.float32)}),
                batcher.submit({"x": np.ones((2, 3), np.float32)}),
            )

    results = _run(main())
    assert [r["y"].shape for r in results] == [(1, 3), (1, 5), (2, 3)]
    assert sorted(recorder.batches) == [1, 1, 2]  # a change of shape closes the open batch


def test_full_queue_answers_unavailable() -> None:
    gate = threading.Event()
    recorder = Recorder(gate)
    config = BatchingConfig(max_batch_size=1, batch_timeout_micros=0, num_batch_threads=1, max_enqueued_batches=1)

    async def main() -> None:
        with ThreadPoolExecutor(1) as pool:
            batcher = Batcher(recorder, config, pool)
            one = np.ones((1, 1), np.float32)
            running = asyncio.ensure_future(batcher.submit({"x": one}))  # takes the only thread
            await asyncio.sleep(0)
            queued = asyncio.ensure_future(batcher.submit({"x": one}))  # the one allowed waiting batch
            await asyncio.sleep(0)
            with pytest.raises(ServingError) as info:
                await batcher.submit({"x": one})
            assert info.value.code is Code.UNAVAILABLE
            assert info.value.code.http == 503
            assert info.value.message == QUEUE_FULL
            gate.set()
            await asyncio.gather(running, queued)

    _run(main())
    assert recorder.batches == [1, 1]


def test_model_error_reaches_every_task_of_the_batch() -> None:
    def broken(inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        raise RuntimeError("boom")

    config = BatchingConfig(max_batch_size=8, batch_timeout_micros=20_000, num_batch_threads=1)

    async def main() -> list[object]:
        with ThreadPoolExecutor(1) as pool:
            batcher = Batcher(broken, config, pool)
            tasks = [batcher.submit({"x": np.ones((1, 1), np.float32)}) for _ in range(3)]
            return await asyncio.gather(*tasks, return_exceptions=True)

    results = _run(main())
    assert [str(r) for r in results] == ["boom"] * 3


def _batch_counts(text: str, model: str) -> tuple[float, float]:
    """(batches run, batches of one row) for ``model`` from the Prometheus text."""
    total = single = 0.0
    for family in text_string_to_metric_families(text):
        if family.name != ":tensorflow:serving:batching_session:processed_batch_size":
            continue
        for sample in family.samples:
            if sample.labels.get("model_name") != model:
                continue
            if sample.name.endswith("_count"):
                total = sample.value
            if sample.name.endswith("_bucket") and sample.labels["le"] == "1.0":
                single = sample.value
    return total, single


@pytest.mark.parametrize("model", ["mlp", "digits"])
def test_concurrent_requests_each_get_their_own_answer_and_are_merged(tf_server, reference, model: str) -> None:
    inputs = [random_batch(model, 1 + i % 3, seed=1000 + i) for i in range(32)]
    before = _batch_counts(httpx.get(f"{tf_server.url}/monitoring/prometheus/metrics").text, model)
    barrier = threading.Barrier(32, timeout=30)

    def call(x: np.ndarray) -> np.ndarray:
        with httpx.Client(base_url=tf_server.url, timeout=60) as client:
            barrier.wait()
            response = client.post(f"/v1/models/{model}:predict", json={"instances": x.tolist()})
            assert response.status_code == 200, response.text
            return np.asarray(response.json()["predictions"], dtype=np.float32)

    merged = False
    for _ in range(3):  # bounded: merging is near certain on the first round
        with ThreadPoolExecutor(32) as pool:
            answers = list(pool.map(call, inputs))
        for x, answer in zip(inputs, answers, strict=True):
            assert np.abs(answer - reference(model, x)).max() <= TOLERANCE
        after = _batch_counts(httpx.get(f"{tf_server.url}/monitoring/prometheus/metrics").text, model)
        # fewer batches than requests: some batch carried several requests' rows
        if after[0] - before[0] < len(inputs):
            merged = True
            break
        before = after
        barrier.reset()
    assert merged, "no batch held more than one request's rows"
