"""What a prediction means, independent of REST or gRPC: check the tensors, batch, run.

Both adapters resolve a servable and signature, build numpy inputs, and call
:meth:`DataPlane.predict`; it checks names, dtypes, shapes and finiteness against the
signature (so a bad request never reaches a batch shared with others), hands the task
to that signature's batcher and turns a TF failure into a :class:`ServingError`.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import Executor
from typing import Any

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import types_pb2

from services.tf_api.compat.batching import Batcher, Timing, Unbatched
from services.tf_api.compat.errors import Code, ServingError, invalid
from services.tf_api.compat.metrics import Metrics
from services.tf_api.compat.servables import Servable, Signature
from services.tf_api.config import BatchingConfig

log = logging.getLogger(__name__)


def _type_name(dtype: np.dtype[Any]) -> str:
    try:
        return str(types_pb2.DataType.Name(tf.as_dtype(dtype).as_datatype_enum))[3:].lower()
    except TypeError:
        return "string" if dtype.kind in "OSU" else str(dtype)


def _shape_text(shape: tuple[int, ...]) -> str:
    return "[" + ",".join(str(d) for d in shape) + "]"


def check_inputs(signature: Signature, inputs: dict[str, np.ndarray]) -> None:
    """INVALID_ARGUMENT unless ``inputs`` are exactly the signature's, in dtype and shape, and finite."""
    given, wanted = set(inputs), set(signature.inputs)
    if given != wanted:
        raise invalid(
            f"input size does not match signature: {len(given)}!={len(wanted)} "
            f"len({{{','.join(sorted(given))}}}) != len({{{','.join(sorted(wanted))}}}). "
            f"Sent extra: {{{','.join(sorted(given - wanted))}}}. "
            f"Missing but required: {{{','.join(sorted(wanted - given))}}}."
        )
    batch: int | None = None
    for index, name in enumerate(sorted(inputs)):
        array, info = inputs[name], signature.inputs[name]
        if array.dtype != info.dtype:
            raise invalid(
                f"Expects arg[{index}] to be {_type_name(info.dtype)} but {_type_name(array.dtype)} is provided"
            )
        shape = tuple(int(d) for d in array.shape)
        fits = len(shape) == len(info.shape) and all(w < 0 or w == g for w, g in zip(info.shape, shape, strict=True))
        if not fits:
            raise invalid(
                f"input '{name}' has shape {_shape_text(shape)} but signature '{signature.name}' expects "
                f"{_shape_text(info.shape)} (-1: any size)"
            )
        if batch is not None and shape and shape[0] != batch:
            raise invalid(f"input '{name}' has {shape[0]} rows but another input has {batch}")
        batch = shape[0] if shape else batch
        if array.dtype.kind == "f" and not np.isfinite(array).all():
            where = ",".join(str(int(i)) for i in np.argwhere(~np.isfinite(array))[0])
            raise invalid(
                f"input '{name}' holds NaN or Infinity at [{where}]; duoserve-compat refuses non-finite input"
            )


class DataPlane:
    """Runs predictions through per-signature batchers (or unbatched when batching is off)."""

    def __init__(self, batching: BatchingConfig | None, executor: Executor, metrics: Metrics) -> None:
        self._batching = batching
        self._executor = executor
        self._metrics = metrics
        self._queues: dict[tuple[str, int, str], Batcher | Unbatched] = {}

    def _queue(self, servable: Servable, signature: Signature) -> Batcher | Unbatched:
        key = (servable.model, servable.version, signature.name)
        queue = self._queues.get(key)
        if queue is None:
            observe = self._metrics.batch_size.labels(servable.model).observe
            if self._batching is None:
                queue = Unbatched(signature.run, self._executor, observe)
            else:
                queue = Batcher(signature.run, self._batching, self._executor, observe)
            self._queues[key] = queue
        return queue

    async def predict(
        self,
        servable: Servable,
        signature: Signature,
        inputs: dict[str, np.ndarray],
        entrypoint: str,
        timing: Timing | None = None,
    ) -> dict[str, np.ndarray]:
        """Check, batch and run one request; counts it in the metrics whatever the outcome.

        ``timing`` (optional) receives the request's queue, batch-execution and TF-call times.
        """
        started = time.perf_counter()
        status = "OK"
        timing = timing if timing is not None else Timing()
        try:
            check_inputs(signature, inputs)
            outputs = await self._queue(servable, signature).submit(inputs, timing)
            self._metrics.queuing.labels(servable.model).observe(timing.queue_s * 1e6)
            self._metrics.runtime.labels(servable.model).observe(timing.compute_s * 1e6)
            return outputs
        except ServingError as exc:
            status = exc.code.name
            raise
        except tf.errors.InvalidArgumentError as exc:
            status = Code.INVALID_ARGUMENT.name
            raise invalid(str(exc.message)) from None
        except Exception as exc:
            status = Code.INTERNAL.name
            log.exception("predict %s/%d failed", servable.model, servable.version)
            raise ServingError(Code.INTERNAL, f"{type(exc).__name__}: {exc}"[:500]) from None
        finally:
            self._metrics.requests.labels(servable.model, entrypoint, status).inc()
            self._metrics.latency.labels(servable.model, entrypoint).observe((time.perf_counter() - started) * 1e6)
