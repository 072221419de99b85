"""The SLO capacity search: the highest open-loop offered rate a target serves with p99 within a bound.

MLPerf LoadGen's Server scenario and perf_analyzer's latency-bounded request-rate search,
small enough for a 2-core host:

- **Probes.** A probe offers Poisson arrivals at a fixed rate (open loop) and is measured
  in stable windows (:mod:`loadtests.stability`). It *passes* when p99 ≤ the bound, errors
  stay under ``max_fail_ratio`` and the target kept up; it *fails* when the target broke
  one of those; it *does not count* when the load generator did not offer what was asked
  (it achieved less than the offered rate while latency stayed within the bound, or its
  own CPU was saturated): such a probe says nothing about the server, and the search stops
  there with its answer marked as bounded by the generator.
- **Where to start.** Each target's latency one request at a time (one closed-loop user, no
  queue: the *unloaded* latency ``L``) is measured first. A server that answers in ``L``
  cannot serve much more than ``1 / L`` req/s per worker, and a queue's wait must fit into
  what the bound leaves, ``slo − L``: the search starts at ``(1 / L) · (1 − L / slo)`` and
  never probes below :data:`FLOOR_SHARE` of ``1 / L`` (lower rates are no load to speak of
  for this target). A target whose unloaded p50 is already above the bound cannot meet it
  at any rate; it is probed once, at that floor, for its curve.
- **Search (round 0).** Its own bracket, capped by nothing else the run measured: double
  until a probe fails, then bisect until the bracket is within ``rel_tol`` (or
  ``max_probes`` ran, or ``search_budget_s`` of probing was spent). A probe that failed on
  its tail (p99 over the bound, p50 within it) is measured once more before its rate counts
  as failed: one hiccup of a shared host must not cap the search; a p50 over the bound is
  no hiccup.
- **Confirmations (rounds 1..n, at least 3).** Every target is probed again at the best
  rate of its search, the targets in a new shuffled order each round (the seed is
  recorded); a failed confirmation steps down by ``rel_tol`` (at most
  ``confirm_attempts`` times). Each round's answer is the offered rate it held, or, when it
  held none, the rate below its last failure. The capacity is the median of the rounds'
  answers with their min and max; its range ``[lowest round's answer, highest rate that
  held]`` is what the verdict compares (near the knee the same rate passes and fails on a
  noisy host, and the range says so).

Every probe also is a point of the target's latency-versus-load curve (p50 and p99
against offered rate), from the first low-rate probe to past the knee.

Nothing here knows Locust: ``measure(target, rate, label)`` runs one probe, so the tests
drive the search with a synthetic server.
"""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Outcome = Literal["pass", "fail", "void"]


@dataclass(frozen=True)
class Probe:
    """One probe at a fixed offered rate: what came back, and how the generator fared."""

    rate: float
    achieved_rps: float
    p99_ms: float | None
    fail_ratio: float
    requests: int
    duration_s: float = 0.0
    p50_ms: float | None = None
    stable: bool = True
    loadgen_cpu_percent: float = 0.0
    label: str = ""
    round: int = 0
    #: p50 of each window the figure merged (its spread, for the verdict's low-load latency)
    window_p50s: tuple[float, ...] = ()
    #: seconds the probe took, warm-up included (what the search's budget counts; 0: ``duration_s``)
    elapsed_s: float = 0.0
    #: when the figure held too few latencies for its p99 (p50): how many; ``p99_ms`` is then their max
    p99_of: int | None = None
    p50_of: int | None = None
    #: the widest disagreement of its windows, ``max / min − 1`` on req/s or latency (the host's noise)
    spread: float | None = None

    @property
    def p99_text(self) -> str:
        """``p99 42 ms``, or ``max of 14: 42 ms`` when too few latencies stand behind a p99."""
        return f"max of {self.p99_of}: {self.p99_ms:g} ms" if self.p99_of else f"p99 {self.p99_ms:g} ms"


@dataclass(frozen=True)
class Criteria:
    """What a probe must meet, and when the generator is to blame instead of the target."""

    slo_ms: float
    max_fail_ratio: float = 0.01
    min_achieved: float = 0.95
    #: standard deviations of the probe's Poisson count allowed below ``min_achieved``
    noise_sigmas: float = 2.0
    saturated_cpu_percent: float = 90.0

    def floor(self, probe: Probe) -> float:
        """Least achieved rate that counts as the offered rate: ``min_achieved`` of it, less two
        standard deviations of a Poisson count over the probe (short probes are noisy)."""
        noise = self.noise_sigmas * math.sqrt(probe.rate / probe.duration_s) if probe.duration_s > 0 else 0.0
        return self.min_achieved * probe.rate - noise

    def rule(self) -> str:
        """The rule :meth:`judge` applies, in words and with its numbers (the report prints this)."""
        return (
            f"A probe passes with p99 ≤ {self.slo_ms:g} ms and errors under {self.max_fail_ratio:.0%}. "
            f'It does not count ("void") when the load generator used more than '
            f"{self.saturated_cpu_percent:g} % of a core, or when it achieved less than "
            f"{self.min_achieved:g} × offered − {self.noise_sigmas:g}·√(offered / duration) req/s "
            f"(the offered rate less {self.noise_sigmas:g} standard deviations of a Poisson count over the "
            f"probe's duration in seconds: at 100 req/s for 10 s the floor is {self.floor_at(100.0, 10.0):.1f} req/s)."
        )

    def floor_at(self, rate: float, duration_s: float) -> float:
        """:meth:`floor` for an offered ``rate`` over ``duration_s``."""
        return self.floor(Probe(rate, 0.0, None, 0.0, 0, duration_s=duration_s))

    def judge(self, probe: Probe) -> tuple[Outcome, str]:
        """(``pass`` | ``fail`` | ``void``, why)."""
        if probe.loadgen_cpu_percent > self.saturated_cpu_percent:
            return "void", (
                f"load generator saturated ({probe.loadgen_cpu_percent:.0f} % of a core > "
                f"{self.saturated_cpu_percent:.0f} %)"
            )
        if probe.requests == 0 or probe.p99_ms is None:
            return "fail", "no requests completed"
        if probe.fail_ratio >= self.max_fail_ratio:
            return "fail", f"errors {probe.fail_ratio:.2%} ≥ {self.max_fail_ratio:.0%}"
        if probe.p99_ms > self.slo_ms:
            return "fail", f"{probe.p99_text} > {self.slo_ms:g} ms"
        if probe.achieved_rps < self.floor(probe):
            # latency within the bound yet fewer answers than offered: the requests were never sent
            return "void", (
                f"load generator achieved {probe.achieved_rps:.1f} req/s of {probe.rate:.1f} offered "
                f"(< {self.floor(probe):.1f})"
            )
        return "pass", "pass"


@dataclass(frozen=True)
class Plan:
    """How hard to look: the search's start and resolution, and the confirmations."""

    #: None: from each target's unloaded latency (:func:`start_rate_for`)
    start_rate: float | None = None
    growth: float = 2.0
    rel_tol: float = 0.10
    max_probes: int = 10
    confirmations: int = 3
    confirm_attempts: int = 2
    min_rate: float = 1.0
    #: a failing search probe is measured again before the rate counts as failed
    retry_failures: bool = True
    #: confirmation rounds a target must hold for the verdict to rank it
    min_confirmed: int = 2
    #: seconds of probing (warm-up included) after which a target's search takes no new probe
    search_budget_s: float = math.inf

    def check(self) -> None:
        """``ValueError`` naming the first bad value."""
        if (self.start_rate is not None and self.start_rate <= 0) or self.growth <= 1 or not 0 < self.rel_tol < 1:
            raise ValueError("slo needs start_rate > 0 (or none), growth > 1 and 0 < rel_tol < 1")
        if self.search_budget_s <= 0:
            raise ValueError("slo.search_budget_s must be positive")
        if self.confirmations < 3:
            raise ValueError(f"slo.confirmations must be at least 3 (got {self.confirmations})")
        if self.max_probes < 1 or self.confirm_attempts < 1:
            raise ValueError("slo needs max_probes >= 1 and confirm_attempts >= 1")


#: The search never probes below this share of a target's unloaded throughput ``1 / L``.
FLOOR_SHARE = 0.25
#: Where a search starts when the unloaded latency is unknown (no request came back).
FALLBACK_START = 25.0


def start_rate_for(unloaded_p50_ms: float | None, slo_ms: float, min_rate: float = 1.0) -> tuple[float, float]:
    """``(start, floor)`` of a target's search from its unloaded p50 ``L``: ``(1 / L) · (1 − L / slo)`` and
    :data:`FLOOR_SHARE` of ``1 / L``, neither below ``min_rate``, the start never below the floor."""
    if not unloaded_p50_ms or unloaded_p50_ms <= 0:
        return FALLBACK_START, min_rate
    throughput = 1000.0 / unloaded_p50_ms
    floor = max(min_rate, FLOOR_SHARE * throughput)
    return max(floor, throughput * (1 - unloaded_p50_ms / slo_ms)), floor


@dataclass
class TargetResult:
    """One target's answer: the confirmed rounds, the bracket, every probe with its outcome."""

    target: str
    slo_ms: float
    probes: list[Probe] = field(default_factory=list)
    outcomes: list[tuple[Outcome, str]] = field(default_factory=list)
    best_rate: float | None = None
    ceiling: float | None = None
    generator_bound: bool = False
    confirmed: list[dict[str, Any]] = field(default_factory=list)
    #: one request at a time (one closed-loop user): the latency with no queue, and where the search started
    unloaded: Probe | None = None
    start_rate: float | None = None
    floor_rate: float | None = None
    #: seconds the search (round 0) probed, and whether its budget stopped it
    search_s: float = 0.0
    budget_spent: bool = False

    def record(self, probe: Probe, verdict: tuple[Outcome, str]) -> Outcome:
        self.probes.append(probe)
        self.outcomes.append(verdict)
        outcome = verdict[0]
        if outcome == "fail":
            self.ceiling = probe.rate if self.ceiling is None else min(self.ceiling, probe.rate)
        elif outcome == "void":
            self.generator_bound = True
        return outcome

    def _round_values(self) -> list[float]:
        # each round's answer in offered req/s: the rate it held, or, when it held none, the rate below
        # its last failure (an upper estimate of a round that failed: the spread then shows the doubt)
        return [c["rate"] if c["rate"] is not None else c["below"] for c in self.confirmed if c["rate"] or c["below"]]

    @property
    def capacity(self) -> dict[str, float | None]:
        """Median, min and max over the confirmation rounds of the offered req/s each held (None if none held)."""
        values = self._round_values()
        if not values or not any(c["rate"] for c in self.confirmed):
            return {"median": None, "low": None, "high": None}
        return {"median": statistics.median(values), "low": min(values), "high": max(values)}

    @property
    def bracket(self) -> tuple[float | None, float | None]:
        """Where the capacity lies, ``[low, high]``: from the lowest round's answer to the highest rate that
        held in any probe at or below the lowest failing rate above it (the search's best, a confirmation)."""
        values = self._round_values()
        if not values or not any(c["rate"] for c in self.confirmed):
            return (None, self.ceiling)
        held = [c["rate"] for c in self.confirmed if c["rate"] is not None] + [self.best_rate or 0.0]
        return (min(values), max(held))

    @property
    def stable(self) -> bool:
        """Every confirmation probe met the stability rule."""
        return bool(self.confirmed) and all(c["stable"] for c in self.confirmed)

    @property
    def low_load(self) -> Probe | None:
        """The lowest-rate probe that passed (the latency at low load)."""
        passing = [p for p, (o, _) in zip(self.probes, self.outcomes, strict=True) if o == "pass"]
        return min(passing, key=lambda p: p.rate) if passing else None

    def to_json(self) -> dict[str, Any]:
        low, high = self.bracket
        low_load = self.low_load
        return {
            "target": self.target,
            "slo_ms": self.slo_ms,
            "max_rps": self.capacity["median"],
            "capacity": self.capacity,
            "bracket": {"low": low, "high": high},
            "best_rate": self.best_rate,
            "ceiling": self.ceiling,
            "confirmed_rounds": len([c for c in self.confirmed if c["rate"] is not None]),
            "rounds": len(self.confirmed),
            "achieved_rps": [c["achieved_rps"] for c in self.confirmed if c["achieved_rps"] is not None],
            "confirmed": self.confirmed,
            "stable": self.stable,
            "generator_bound": self.generator_bound,
            "low_load": asdict(low_load) if low_load else None,
            "unloaded": asdict(self.unloaded) if self.unloaded else None,
            "start_rate": self.start_rate,
            "floor_rate": self.floor_rate,
            "search_s": round(self.search_s, 1),
            "budget_spent": self.budget_spent,
            "probes": [
                {**asdict(p), "outcome": o, "verdict": why}
                for p, (o, why) in zip(self.probes, self.outcomes, strict=True)
            ],
        }


Measure = Callable[[str, float, str, int], Probe]
#: One request at a time against a target: its unloaded latency (a closed-loop probe with one user).
Unloaded = Callable[[str], Probe]


def _tail_only(probe: Probe, criteria: Criteria) -> bool:
    """A failure of the tail alone (p50 within the bound, or unknown): what one hiccup of a shared host looks like."""
    return probe.p50_ms is None or probe.p50_ms <= criteria.slo_ms


def search(result: TargetResult, measure: Measure, criteria: Criteria, plan: Plan) -> None:
    """Round 0 for one target: double from its start until a probe fails, then bisect (at most
    ``max_probes`` rates and ``search_budget_s`` of probing)."""
    best: float | None = None
    ceiling: float | None = None
    rate = result.start_rate or plan.start_rate or FALLBACK_START
    result.start_rate = rate
    floor = max(plan.min_rate, result.floor_rate or 0.0)

    def probe(label: str) -> Outcome:
        found = measure(result.target, rate, label, 0)
        result.search_s += found.elapsed_s or found.duration_s
        return result.record(found, criteria.judge(found))

    for index in range(1, plan.max_probes + 1):
        if index > 1 and result.search_s >= plan.search_budget_s:
            result.budget_spent = True
            break
        outcome = probe(f"s{index}")
        if outcome == "fail" and plan.retry_failures and _tail_only(result.probes[-1], criteria):
            # one hiccup of a shared host must not end the bracket: a rate fails when it fails twice
            outcome = probe(f"s{index}r")
        if outcome == "void":
            break
        if outcome == "pass":
            best = rate if best is None else max(best, rate)
        else:
            ceiling = rate if ceiling is None else min(ceiling, rate)
        if ceiling is None:
            assert best is not None
            rate = best * plan.growth
        elif best is None:
            if rate <= floor:
                break
            rate = max(floor, ceiling / plan.growth)
        elif (ceiling - best) / ceiling <= plan.rel_tol:
            break
        else:
            rate = (best + ceiling) / 2
    result.best_rate = best


def confirm(result: TargetResult, measure: Measure, criteria: Criteria, plan: Plan, round_no: int) -> None:
    """One confirmation round for one target: its best rate, stepping down by ``rel_tol`` on failure."""
    entry: dict[str, Any] = {
        "round": round_no, "rate": None, "achieved_rps": None, "p99_ms": None, "stable": False, "below": None,
    }  # fmt: skip
    rate = result.best_rate
    for attempt in range(1, plan.confirm_attempts + 1):
        if rate is None or rate < plan.min_rate:
            break
        probe = measure(result.target, rate, f"c{round_no}a{attempt}", round_no)
        outcome = result.record(probe, criteria.judge(probe))
        if outcome == "pass":
            entry.update(rate=rate, achieved_rps=probe.achieved_rps, p99_ms=probe.p99_ms, stable=probe.stable)
            break
        if outcome == "void":
            break
        rate *= 1 - plan.rel_tol
        # a round that never held: its capacity is below the last rate it tried
        entry["below"] = rate
    result.confirmed.append(entry)


def run_all(
    targets: list[str], measure: Measure, criteria: Criteria, plan: Plan, seed: int, unloaded: Unloaded | None = None
) -> tuple[dict[str, TargetResult], list[list[str]]]:
    """The search (round 0) and ``plan.confirmations`` rounds over ``targets``, each round in an order
    shuffled by ``random.Random(seed)``; returns the results and the order of every round.

    ``unloaded`` measures each target's unloaded latency just before its search; without a ``plan.start_rate``
    the search starts from it."""
    plan.check()
    if plan.start_rate is None and unloaded is None:
        raise ValueError("a search without a start rate needs the unloaded latency (unloaded=...)")
    rng = random.Random(seed)
    results = {t: TargetResult(t, criteria.slo_ms) for t in targets}
    orders: list[list[str]] = []
    for round_no in range(plan.confirmations + 1):
        order = list(targets)
        rng.shuffle(order)
        orders.append(order)
        for target in order:
            if round_no == 0:
                if unloaded is not None:
                    first = results[target].unloaded = unloaded(target)
                    start, floor = start_rate_for(first.p50_ms, criteria.slo_ms, plan.min_rate)
                    results[target].floor_rate = floor
                    results[target].start_rate = start if plan.start_rate is None else plan.start_rate
                search(results[target], measure, criteria, plan)
            else:
                confirm(results[target], measure, criteria, plan, round_no)
    return results, orders
