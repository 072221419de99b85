"""Per model × backend latency statistics over a sliding window and since the last reset.

Latencies go into HdrHistograms (:mod:`contract.latency`, duoserve's one percentile
estimator: microseconds, 3 significant digits, every percentile within 0.1 % of the
true value). The sliding window is a ring of ``slots`` histograms (and error counters),
each covering ``window_s / slots`` seconds of the monotonic clock, aligned on multiples of
the slot length; a snapshot merges the live ones, so the window is between
``window_s - window_s/slots`` and ``window_s`` long.

Mergeable: :meth:`Stats.dump` writes everything as plain JSON (histograms in HdrHistogram's
compressed encoding) and :meth:`Stats.merged` adds several dumps into one ``Stats``, slot by
slot (the monotonic clock is the machine's, so slots of different worker processes line
up). ``/v1/stats`` with several gateway workers is the merge of every worker's dump: exact.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from collections.abc import Callable, Iterable
from typing import Any

from hdrh.histogram import HdrHistogram

from contract.latency import PERCENTILES, new_histogram, percentile_ms, record

#: what the data plane counts per model besides latencies (retries and hedges)
EVENTS = ("retries", "retries_denied", "hedges", "hedges_won", "hedges_denied", "cancelled")


def summarize(hist: HdrHistogram, seconds: float) -> dict[str, float | int | None]:
    """count, throughput and percentiles (ms) of one histogram covering ``seconds``."""
    count = int(hist.get_total_count())
    out: dict[str, float | int | None] = {
        "count": count,
        "throughput_rps": round(count / seconds, 3) if seconds > 0 else None,
    }
    for p in PERCENTILES:
        out[f"p{p:g}_ms"] = percentile_ms(hist, p)
    out["max_ms"] = hist.get_max_value() / 1000.0 if count else None
    return out


class _Slot:
    __slots__ = ("errors", "hist", "start")

    def __init__(self, start: float) -> None:
        self.start = start
        self.hist = new_histogram()
        self.errors: Counter[str] = Counter()


def _decoded(encoded: str) -> HdrHistogram:
    hist = new_histogram()
    if encoded:
        hist.decode_and_add(encoded.encode())
    return hist


def _encoded(hist: HdrHistogram) -> str:
    return hist.encode().decode() if hist.get_total_count() else ""


class Series:
    """Successful-call latencies and error counts of one model × backend (or one shadow pair)."""

    def __init__(self, window_s: float, slots: int, clock: Callable[[], float]) -> None:
        self.window_s = window_s
        self.slot_s = window_s / slots
        self.slots = slots
        self.clock = clock
        self.reset()

    def reset(self) -> None:
        self.since = self.clock()
        self.total = new_histogram()
        self.ring: deque[_Slot] = deque()
        self.errors: Counter[str] = Counter()

    def _slot(self, now: float) -> _Slot:
        start = now - now % self.slot_s
        if not self.ring or self.ring[-1].start != start:
            self.ring.append(_Slot(start))
            self._expire(now)
        return self.ring[-1]

    def _expire(self, now: float) -> None:
        horizon = now - self.window_s
        while self.ring and self.ring[0].start < horizon:
            self.ring.popleft()

    def record(self, latency_s: float) -> None:
        record(self.total, latency_s)
        record(self._slot(self.clock()).hist, latency_s)

    def record_error(self, kind: str) -> None:
        self.errors[kind] += 1
        self._slot(self.clock()).errors[kind] += 1

    def window(self) -> HdrHistogram:
        """The live slots merged."""
        self._expire(self.clock())
        merged = new_histogram()
        for slot in self.ring:
            merged.add(slot.hist)
        return merged

    def snapshot(self) -> dict[str, object]:
        now = self.clock()
        window = self.window()
        span = min(self.window_s, now - self.since)
        window_errors: Counter[str] = Counter()
        for slot in self.ring:
            window_errors.update(slot.errors)
        return {
            "window": {"seconds": round(span, 3), **summarize(window, span), "errors": dict(window_errors)},
            "since_reset": {**summarize(self.total, now - self.since), "errors": dict(self.errors)},
        }

    def dump(self) -> dict[str, Any]:
        self._expire(self.clock())
        return {
            "since": self.since,
            "total": _encoded(self.total),
            "errors": dict(self.errors),
            "slots": [[s.start, _encoded(s.hist), dict(s.errors)] for s in self.ring],
        }

    def add(self, dumped: dict[str, Any]) -> None:
        """Add another process's dump of the same series (slots line up on the shared monotonic clock)."""
        self.since = min(self.since, float(dumped["since"]))
        self.total.add(_decoded(dumped["total"]))
        self.errors.update(dumped["errors"])
        mine = {s.start: s for s in self.ring}
        for start, encoded, errors in dumped["slots"]:
            slot = mine.get(start)
            if slot is None:
                slot = mine[start] = _Slot(start)
            slot.hist.add(_decoded(encoded))
            slot.errors.update(errors)
        self.ring = deque(sorted(mine.values(), key=lambda s: s.start))


class Stats:
    """All series, keyed by (model, backend); shadow comparisons keyed by (model, primary, shadow)."""

    def __init__(self, window_s: float = 60.0, slots: int = 6, clock: Callable[[], float] = time.monotonic) -> None:
        self.window_s = window_s
        self.slots = slots
        self.clock = clock
        self.series: dict[tuple[str, str], Series] = {}
        self.shadow: dict[tuple[str, str, str], Series] = {}
        self.shadow_diff: dict[tuple[str, str, str], float] = {}
        self.servers: dict[str, str] = {}
        self.events: dict[str, Counter[str]] = {}
        self.reset_at = time.time()

    def _series(self, key: tuple[str, str]) -> Series:
        series = self.series.get(key)
        if series is None:
            series = self.series[key] = Series(self.window_s, self.slots, self.clock)
        return series

    def _shadow(self, key: tuple[str, str, str]) -> Series:
        series = self.shadow.get(key)
        if series is None:
            series = self.shadow[key] = Series(self.window_s, self.slots, self.clock)
        return series

    def record(self, model: str, backend: str, latency_s: float, server: str | None = None) -> None:
        self._series((model, backend)).record(latency_s)
        if server:
            self.servers[backend] = server

    def record_error(self, model: str, backend: str, kind: str) -> None:
        self._series((model, backend)).record_error(kind)

    def count(self, model: str, event: str) -> None:
        """One retry or hedge event of ``model`` (see :data:`EVENTS`)."""
        counter = self.events.get(model)
        if counter is None:
            counter = self.events[model] = Counter()
        counter[event] += 1

    def percentile_s(self, model: str, backend: str, q: float) -> float | None:
        """The ``q`` percentile of ``backend``'s live window for ``model`` in seconds (None before any call)."""
        series = self.series.get((model, backend))
        if series is None:
            return None
        found = percentile_ms(series.window(), q)
        return None if found is None else found / 1000.0

    def record_shadow(
        self, model: str, primary: str, shadow: str, latency_s: float | None, diff: float | None, error: str | None
    ) -> None:
        key = (model, primary, shadow)
        series = self._shadow(key)
        if error is not None:
            series.record_error(error)
        elif latency_s is not None:
            series.record(latency_s)
        if diff is not None:
            self.shadow_diff[key] = max(self.shadow_diff.get(key, 0.0), diff)

    def reset(self) -> None:
        self.series.clear()
        self.shadow.clear()
        self.shadow_diff.clear()
        self.events.clear()
        self.reset_at = time.time()

    # -- several processes ----------------------------------------------------------------

    def dump(self) -> dict[str, Any]:
        """Everything, as plain JSON, for :meth:`merged` in another process."""
        return {
            "reset_at": self.reset_at,
            "series": [[m, b, s.dump()] for (m, b), s in self.series.items()],
            "shadow": [[m, p, sh, s.dump(), self.shadow_diff.get((m, p, sh))] for (m, p, sh), s in self.shadow.items()],
            "servers": self.servers,
            "events": {m: dict(c) for m, c in self.events.items()},
        }

    @classmethod
    def merged(
        cls,
        dumps: Iterable[dict[str, Any]],
        window_s: float,
        slots: int = 6,
        clock: Callable[[], float] = time.monotonic,
    ) -> Stats:
        """The sum of several processes' dumps, as one ``Stats``."""
        out = cls(window_s, slots, clock)
        out.reset_at = 0.0
        for dumped in dumps:
            out.reset_at = max(out.reset_at, float(dumped["reset_at"]))
            for model, backend, series in dumped["series"]:
                out._fresh_series((model, backend), series, out.series)
            for model, primary, shadow, series, diff in dumped["shadow"]:
                out._fresh_series((model, primary, shadow), series, out.shadow)
                if diff is not None:
                    key = (model, primary, shadow)
                    out.shadow_diff[key] = max(out.shadow_diff.get(key, 0.0), float(diff))
            out.servers.update(dumped["servers"])
            for model, counts in dumped["events"].items():
                out.events.setdefault(model, Counter()).update(counts)
        return out

    def _fresh_series(self, key: Any, dumped: dict[str, Any], into: dict[Any, Series]) -> None:
        series = into.get(key)
        if series is None:
            series = into[key] = Series(self.window_s, self.slots, self.clock)
            series.since = float(dumped["since"])
        series.add(dumped)

    def snapshot(self) -> dict[str, object]:
        models: dict[str, dict[str, object]] = {}
        for (model, backend), series in sorted(self.series.items()):
            entry = series.snapshot()
            entry["server"] = self.servers.get(backend)
            models.setdefault(model, {})[backend] = entry
        shadow = [
            {
                "model": model,
                "primary": primary,
                "shadow": shadow,
                "max_abs_diff": self.shadow_diff.get((model, primary, shadow)),
                **series.snapshot(),
            }
            for (model, primary, shadow), series in sorted(self.shadow.items())
        ]
        return {
            "reset_at": self.reset_at,
            "window_s": self.window_s,
            "latency_unit": "ms",
            "models": models,
            "shadow": shadow,
            "events": {m: {e: c.get(e, 0) for e in EVENTS} for m, c in sorted(self.events.items())},
        }
