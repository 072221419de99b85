"""The figures a report is made of, shared by the report builder and the plots."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Spread:
    """Median with min and max across repeats."""

    median: float | None
    low: float | None
    high: float | None

    @classmethod
    def of(cls, values: list[float | None]) -> Spread:
        known = [v for v in values if v is not None]
        if not known:
            return cls(None, None, None)
        return cls(statistics.median(known), min(known), max(known))


@dataclass
class SummaryRow:
    """One target's figures across the comparison's repeats."""

    target: str
    description: str
    repeats: int
    requests: int
    failures: int
    rps: Spread
    latency: dict[str, Spread]
    max_ms: float | None
    #: the SLO search's result for this target (``loadtests.slo.TargetResult.to_json``), if searched
    slo: dict[str, Any] | None
    loadgen_cpu_max: float
    #: every repeat's figure met the stability rule
    stable: bool = True
    #: percentiles some repeat held too few latencies for -> the fewest it held (its figure is then their max)
    short: dict[str, int] = field(default_factory=dict)
    #: the artifact behind the target and how much slower it ran in process than the source (a user's model)
    artifact: str | None = None
    #: CPU ms per request of the processes that served it (its server, and the gateway when through it)
    server_cpu_ms: Spread = field(default_factory=lambda: Spread(None, None, None))

    @property
    def slo_rps(self) -> float | None:
        return (self.slo or {}).get("max_rps")

    @property
    def error_ratio(self) -> float:
        return self.failures / self.requests if self.requests else 0.0
