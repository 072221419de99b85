"""How a call is timed, and what is recorded while it runs (no framework imported).

:func:`measure` times one zero-argument call: the first call alone (graph building,
tracing, compilation), the rest of the warm-up (never counted), then ``repeats`` windows
of about ``repeat_s`` seconds each. Latencies go through :mod:`contract.latency` (the one
percentile estimator); throughput is counted per window so the report can show its
spread. :class:`GpuSampler` reads GPU utilisation through NVML (``nvidia-ml-py``) while
the windows run, where there is a GPU.
"""

from __future__ import annotations

import contextlib
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from benchmarks.frameworks.plan import Timing
from contract import latency


def spread(values: list[float]) -> dict[str, float]:
    """``{"min", "median", "max"}`` of some repeats."""
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}


@dataclass
class Measured:
    """What :func:`measure` saw: first call, warm-up, and each window's latencies and wall time."""

    first_call_s: float
    warmup_s: float
    windows: list[list[float]] = field(default_factory=list)
    window_s: list[float] = field(default_factory=list)
    output: Any = None

    @property
    def calls(self) -> int:
        return sum(len(w) for w in self.windows)

    def summary(self, batch: int) -> dict[str, Any]:
        """p50/p99 over every timed call, samples/s (median of windows) and its spread."""
        pooled = [s for window in self.windows for s in window]
        percentiles = latency.percentiles_ms(pooled, (50, 99))
        rates = [batch * len(w) / s for w, s in zip(self.windows, self.window_s, strict=True)]
        p50s = [latency.percentiles_ms(w, (50,))["p50_ms"] or 0.0 for w in self.windows]
        return {
            "p50_ms": percentiles["p50_ms"],
            "p99_ms": percentiles["p99_ms"],
            "samples_per_s": statistics.median(rates),
            "samples_per_s_spread": spread(rates),
            "p50_ms_spread": spread(p50s),
            "calls": self.calls,
            "repeats": len(self.windows),
            "first_call_ms": self.first_call_s * 1000,
            "warmup_s": self.warmup_s,
        }


def measure(
    call: Callable[[], Any], timing: Timing, during: contextlib.AbstractContextManager[Any] | None = None
) -> Measured:
    """Time ``call``: first call and warm-up apart, then ``timing.repeats`` windows; keeps the first output.

    A window runs calls until ``repeat_s`` has passed (at least ``min_calls``, at most
    ``max_calls``), so a runtime whose warm-up calls are slow (a JIT profiling its first
    runs) is still timed on enough steady calls. ``during`` (e.g. a :class:`GpuSampler`)
    is entered around the windows only, never around compilation or warm-up.
    """
    clock = time.perf_counter
    began = clock()
    output = call()
    first = clock() - began
    for _ in range(max(0, timing.warmup_calls - 1)):
        call()
    measured = Measured(first_call_s=first, warmup_s=clock() - began, output=output)
    with during if during is not None else contextlib.nullcontext():
        for _ in range(timing.repeats):
            window: list[float] = []
            window_start = clock()
            while len(window) < timing.max_calls and (
                len(window) < timing.min_calls or clock() - window_start < timing.repeat_s
            ):
                start = clock()
                call()
                window.append(clock() - start)
            measured.window_s.append(clock() - window_start)
            measured.windows.append(window)
    return measured


class GpuSampler:
    """GPU utilisation and memory through NVML, sampled every ``interval_s`` in a thread while in use.

    ``available`` is false (and :meth:`result` None) without ``nvidia-ml-py`` or a GPU;
    ``reason`` says which.
    """

    def __init__(self, index: int = 0, interval_s: float = 0.02) -> None:
        self.interval_s = interval_s
        self.reason: str | None = None
        self._nvml: Any = None
        self._handle: Any = None
        self._samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        try:
            import pynvml

            pynvml.nvmlInit()
            self._handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            self._nvml = pynvml
        except Exception as exc:  # noqa: BLE001 -- any NVML failure only means "no figure"
            self.reason = f"NVML unavailable: {type(exc).__name__}: {exc}"

    @property
    def available(self) -> bool:
        return self._nvml is not None

    def _run(self) -> None:
        while not self._stop.is_set():
            rates = self._nvml.nvmlDeviceGetUtilizationRates(self._handle)
            memory = self._nvml.nvmlDeviceGetMemoryInfo(self._handle)
            self._samples.append((float(rates.gpu), memory.used / 2**20))
            self._stop.wait(self.interval_s)

    def __enter__(self) -> GpuSampler:
        self._samples = []
        self._stop.clear()
        if self.available:
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def result(self) -> dict[str, float] | None:
        """Mean and max utilisation (%) and max memory used (MiB) of the last ``with`` block."""
        if not self.available or not self._samples:
            return None
        util = [u for u, _ in self._samples]
        return {
            "gpu_util_mean_pct": statistics.fmean(util),
            "gpu_util_max_pct": max(util),
            "gpu_mem_max_mib": max(m for _, m in self._samples),
            "samples": float(len(self._samples)),
        }

    def name(self) -> str | None:
        """The GPU's name, as NVML reports it."""
        if not self.available:
            return None
        name = self._nvml.nvmlDeviceGetName(self._handle)
        return name.decode() if isinstance(name, bytes) else str(name)
