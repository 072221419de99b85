"""The SLO search: the highest offered load a target sustains with p99 within a bound.

MLPerf's Server scenario in miniature: requests arrive at a fixed mean rate (Poisson,
independent of how fast answers come back); a probe at rate ``r`` passes when the target
kept up (achieved ≥ ``min_achieved`` × ``r``), its p99 stayed ≤ the bound, and under
``max_fail_ratio`` of requests failed. The search brackets the knee (doubling until a
probe fails, or starting from a known upper bound), bisects until the bracket is within
``rel_tol``, then confirms the best passing rate with a longer run, stepping down if the
confirmation fails. It is bounded by ``max_probes`` + ``confirm_attempts`` runs.

Nothing here knows about Locust: ``measure(rate, confirm)`` runs one probe, so the tests
drive it with a synthetic latency model.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class Probe:
    """One run at a fixed offered rate."""

    rate: float
    achieved_rps: float
    p99_ms: float | None
    fail_ratio: float
    requests: int
    confirm: bool = False
    duration_s: float = 0.0


@dataclass(frozen=True)
class Criteria:
    """What a probe must meet."""

    slo_ms: float
    max_fail_ratio: float = 0.01
    min_achieved: float = 0.95

    def floor(self, probe: Probe) -> float:
        """Least achieved rate that counts as keeping up: ``min_achieved`` of the offered rate, less two
        standard deviations of a Poisson count over the probe (short probes are noisy)."""
        noise = 2 * math.sqrt(probe.rate / probe.duration_s) if probe.duration_s > 0 else 0.0
        return self.min_achieved * probe.rate - noise

    def verdict(self, probe: Probe) -> str | None:
        """None when ``probe`` passes, else why not."""
        if probe.requests == 0 or probe.p99_ms is None:
            return "no requests completed"
        if probe.fail_ratio >= self.max_fail_ratio:
            return f"errors {probe.fail_ratio:.2%} ≥ {self.max_fail_ratio:.0%}"
        if probe.p99_ms > self.slo_ms:
            return f"p99 {probe.p99_ms:g} ms > {self.slo_ms:g} ms"
        if probe.achieved_rps < self.floor(probe):
            return f"achieved {probe.achieved_rps:.1f} req/s < {self.floor(probe):.1f} (offered {probe.rate:.1f})"
        return None


@dataclass
class SloResult:
    """The answer: ``max_rps`` (achieved, in the confirmation run) at p99 ≤ ``slo_ms``; None if no rate passed."""

    slo_ms: float
    max_rate: float | None
    max_rps: float | None
    p99_ms: float | None
    confirmed: bool
    probes: list[Probe] = field(default_factory=list)
    verdicts: list[str | None] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        data = asdict(self)
        data["probes"] = [{**asdict(p), "verdict": v} for p, v in zip(self.probes, self.verdicts, strict=True)]
        del data["verdicts"]
        return data


Measure = Callable[[float, bool], Probe]


def search(
    measure: Measure,
    criteria: Criteria,
    *,
    start_rate: float,
    upper: float | None = None,
    max_probes: int = 6,
    confirm_attempts: int = 2,
    rel_tol: float = 0.1,
    min_rate: float = 1.0,
) -> SloResult:
    """Find the highest passing offered rate; see the module docstring."""
    result = SloResult(criteria.slo_ms, None, None, None, confirmed=False)

    def run(rate: float, confirm: bool) -> bool:
        probe = measure(rate, confirm)
        verdict = criteria.verdict(probe)
        result.probes.append(probe)
        result.verdicts.append(verdict)
        return verdict is None

    best: float | None = None  # highest rate that passed
    ceiling = upper  # lowest rate that failed (or the assumed bound)
    rate = start_rate if upper is None else min(start_rate, upper)
    for _ in range(max_probes):
        if run(rate, False):
            best = rate if best is None else max(best, rate)
        else:
            ceiling = rate if ceiling is None else min(ceiling, rate)
        if ceiling is None:
            assert best is not None
            rate = best * 2
        elif best is None:
            if rate <= min_rate:
                break
            rate = max(min_rate, ceiling / 2)
        elif (ceiling - best) / ceiling <= rel_tol:
            break
        else:
            rate = (best + ceiling) / 2
    if best is None:
        return result
    rate = best
    for _ in range(confirm_attempts):
        if run(rate, True):
            probe = result.probes[-1]
            result.max_rate, result.max_rps, result.p99_ms, result.confirmed = (
                rate,
                probe.achieved_rps,
                probe.p99_ms,
                True,
            )
            return result
        rate *= 1 - rel_tol
        if rate < min_rate:
            break
    return result
