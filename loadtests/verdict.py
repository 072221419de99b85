"""The report's first lines: which stack to pick for this model, batch and SLO on this machine.

Two questions, each answered from figures with a spread, and "no clear winner" where the
spreads overlap:

- **Most served under the SLO**: each stack's capacity lies in its range ``[low, high]``:
  from the lowest confirmation round's answer (:mod:`loadtests.slo`) to the lowest rate
  that failed above the highest rate that held (the search resolves a capacity only to its
  bisection's tolerance); the winner's low end must clear every other stack's high end. A capacity
  the load generator bounded is "at least" that much: its high end is open, so nothing can
  clear it, and it can win only against ranges below its low end.
- A stack that held none of its confirmation rounds and failed every probe at the lowest rate
  it was probed at *cannot meet the bound at any rate here* (a lone pass higher up is named):
  the verdict says so with its p99 at that rate and the bound it would meet there, and ranks
  the others without it.
- A stack that held fewer than :data:`MIN_CONFIRMED` of its confirmation rounds cannot be
  ranked: the throughput answer is then "no clear winner", naming it, and why: the host was
  too noisy only when the figures say so (other processes' CPU above :data:`NOISY_CPU` % of
  a core, or its confirmation windows spread more than :data:`NOISY_SPREAD`), with that
  figure; a stack whose own windows spread while the host was quiet is named as the unstable one,
  not the host; otherwise its capacity sits where the same rate passes and fails. The other
  stacks are still ranked among themselves.
- A shared host whose other processes took very different shares of the CPU while the
  stacks were probed (more than :data:`MAX_CONTENTION_GAP` points of a core apart) cannot
  rank them either: "no clear winner", naming each stack's share.
- **Lowest p50 at low load**: the p50 of each stack's lowest-rate passing probe, with the
  min–max of its windows; the winner's worst window must beat every other's best.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from loadtests.stability import short_of

#: Confirmation rounds a stack must hold before the verdict ranks it.
MIN_CONFIRMED = 2
#: Most difference (percent of one core) in other processes' CPU between the stacks' probes for a fair ranking.
MAX_CONTENTION_GAP = 25.0
#: Other processes' CPU (median, percent of one core) during a stack's probes above which the host was noisy.
NOISY_CPU = 25.0
#: Spread of a confirmation probe's windows (``max / min − 1`` on req/s or latency) above which the host was noisy.
NOISY_SPREAD = 0.25


def rate_text(rate: float) -> str:
    """An offered rate: ``1,600`` or, below 100, three significant digits (``8.4``, ``6.25``)."""
    return f"{rate:,.0f}" if rate >= 100 else f"{rate:.3g}"


@dataclass(frozen=True)
class Capacity:
    """One stack's capacity under the SLO: median of the confirmations and where it can lie."""

    target: str
    median: float | None
    low: float | None
    high: float | None
    generator_bound: bool = False
    held: int = 3
    rounds: int = 3

    @classmethod
    def of(cls, target: str, result: dict[str, Any]) -> Capacity:
        """From a stored SLO result: its range ends at the lowest rate that failed above the highest rate that
        held (the search resolves the capacity only to its bisection's tolerance), or is open when the load
        generator bounded it."""
        cap = result.get("capacity") or {}
        bracket = result.get("bracket") or {}
        bound = bool(result.get("generator_bound"))
        held_rates = [p["rate"] for p in result.get("probes", []) if p.get("outcome") == "pass"]
        top = max(held_rates, default=bracket.get("high"))
        failed_above = [
            p["rate"] for p in result.get("probes", []) if p.get("outcome") == "fail" and p["rate"] > (top or 0)
        ]
        high = None if bound else min(failed_above, default=top)
        held, rounds = _rounds(target, result, cap.get("median"))
        return cls(target, cap.get("median"), bracket.get("low"), high, bound, held, rounds)


def _rounds(target: str, result: dict[str, Any], median: float | None) -> tuple[int, int]:
    """(rounds that held, rounds run), from the counts or the confirmation list; a capacity without either
    is refused: the confirmation gate must never pass for want of its numbers."""
    confirmed = result.get("confirmed")
    held = result.get("confirmed_rounds")
    if held is None and isinstance(confirmed, list):
        held = sum(1 for c in confirmed if c.get("rate") is not None)
    rounds = result.get("rounds")
    if rounds is None:
        rounds = len(confirmed) if isinstance(confirmed, list) else held
    if median is not None and (held is None or not rounds):
        raise ValueError(
            f"SLO result for {target} has a capacity but no confirmation rounds "
            "(neither confirmed_rounds/rounds nor a confirmed list): it cannot be ranked"
        )
    return int(held or 0), int(rounds or 0)


@dataclass(frozen=True)
class LowLoad:
    """One stack's p50 at low load, with the min and max of its windows."""

    target: str
    rate: float
    p50_ms: float
    low_ms: float
    high_ms: float


def _ceiling(c: Capacity) -> float:
    return float("inf") if c.high is None else c.high


def _fmt_high(c: Capacity) -> str:
    return "open (generator-bound)" if c.high is None else rate_text(c.high)


@dataclass(frozen=True)
class Noise:
    """What the run measured of the host while each stack was probed: other processes' CPU (median, percent of
    one core) and the widest spread of its confirmation probes' windows."""

    other_cpu: dict[str, float | None]
    spread: dict[str, float | None]

    def why(self, target: str) -> str:
        """Why ``target``'s rounds disagree: a noisy host, with the figure that says so, or its knee."""
        cpu, spread = self.other_cpu.get(target), self.spread.get(target)
        if cpu is not None and cpu > NOISY_CPU:
            return (
                f"the host was too noisy to rank them (other processes used {cpu:.0f} % of a core while {target} "
                "was probed)"
            )
        if spread is not None and spread > NOISY_SPREAD and cpu is not None:
            return (
                f"{target}'s own latency did not repeat (its confirmation windows spread {spread:.0%}, over "
                f"{NOISY_SPREAD:.0%}, while other processes used {cpu:.0f} % of a core): the instability is "
                f"{target}'s, not the host's"
            )
        if spread is not None and spread > NOISY_SPREAD:
            return (
                f"the host was too noisy to rank them ({target}'s confirmation windows spread {spread:.0%}, "
                f"over {NOISY_SPREAD:.0%})"
            )
        quiet = f"other processes used {cpu:.0f} % of a core" if cpu is not None else "no sign of a noisy host"
        return f"{target}'s capacity sits where the same rate passes and fails ({quiet})"


def throughput(caps: list[Capacity], min_confirmed: int = MIN_CONFIRMED, noise: Noise | None = None) -> dict[str, Any]:
    """The stack that serves most under the SLO, by how much, or why there is no clear winner."""
    known = [c for c in caps if c.median is not None and c.low is not None]
    if not known:
        return {"winner": None, "text": "no stack held the SLO at any rate probed"}
    shaky = [c for c in caps if c.held < min(min_confirmed, c.rounds)]
    if shaky:
        named = ", ".join(f"{c.target} held {c.held} of {c.rounds}" for c in shaky)
        noise = noise or Noise({}, {})
        text = (
            f"no clear winner: not every stack's capacity was confirmed ({named} confirmation rounds; "
            f"at least {min_confirmed} needed): {'; '.join(noise.why(c.target) for c in shaky)}"
        )
        rest = [c for c in caps if c not in shaky]
        if len(rest) >= 2:
            text += f". Among the others: {throughput(rest, min_confirmed, noise)['text']}"
        return {"winner": None, "text": text}
    best = max(known, key=lambda c: c.median or 0.0)
    others = [c for c in caps if c is not best]
    assert best.low is not None
    assert best.median is not None
    overlapping = [c.target for c in others if c.median is not None and _ceiling(c) > best.low]
    if overlapping:
        below = [c.target for c in others if c.target not in overlapping and c.median is not None]
        tail = f"; {', '.join(below)} below both" if below else ""
        return {
            "winner": None,
            "leader": best.target,
            "text": (
                f"no clear winner: {best.target} has the highest median ({rate_text(best.median)} req/s, range "
                f"{rate_text(best.low)}–{_fmt_high(best)}) but its range overlaps {', '.join(overlapping)}{tail}"
            ),
        }
    runner_up = max((c for c in others if c.median), key=lambda c: c.median or 0.0, default=None)
    if runner_up is None or runner_up.median is None:
        return {"winner": best.target, "text": f"{best.target} is the only stack that held the SLO"}
    factor = best.median / runner_up.median
    note = " (at least: the load generator bounded it)" if best.generator_bound else ""
    return {
        "winner": best.target,
        "factor": factor,
        "text": (
            f"{best.target} serves the most under the SLO: {rate_text(best.median)} req/s{note}, "
            f"{factor:.2f}× {runner_up.target} ({rate_text(runner_up.median)} req/s)"
        ),
    }


def latency(points: list[LowLoad]) -> dict[str, Any]:
    """The stack with the lowest p50 at low load, or why there is no clear winner."""
    if not points:
        return {"winner": None, "text": "no low-load latency was measured"}
    best = min(points, key=lambda p: p.p50_ms)
    overlapping = [p.target for p in points if p is not best and p.low_ms <= best.high_ms]
    if overlapping:
        return {
            "winner": None,
            "leader": best.target,
            "text": (
                f"no clear winner at low load: {best.target} has the lowest p50 ({best.p50_ms:.2f} ms at "
                f"{rate_text(best.rate)} req/s) but its windows overlap {', '.join(overlapping)}"
            ),
        }
    runner_up = min((p for p in points if p is not best), key=lambda p: p.p50_ms, default=None)
    tail = f", against {runner_up.p50_ms:.2f} ms for {runner_up.target}" if runner_up else ""
    return {
        "winner": best.target,
        "text": (
            f"{best.target} has the lowest p50 at low load: {best.p50_ms:.2f} ms at {rate_text(best.rate)} req/s{tail}"
        ),
    }


def low_load_points(slo_results: dict[str, Any]) -> list[LowLoad]:
    """Each target's lowest-rate passing probe, its p50 and the min–max of its windows' p50s."""
    found = []
    for target, result in slo_results.items():
        probe = result.get("low_load")
        if not probe or probe.get("p50_ms") is None:
            continue
        windows = probe.get("window_p50s") or [probe["p50_ms"]]
        found.append(LowLoad(target, probe["rate"], probe["p50_ms"], min(windows), max(windows)))
    return found


def floor_text(slo_results: dict[str, Any]) -> str:
    """When no stack held the SLO: each stack's p99 at the lowest rate it was probed at, and what to do."""
    lowest = []
    bound = None
    for target, result in slo_results.items():
        bound = result.get("slo_ms", bound)
        probes = [p for p in result.get("probes", []) if p.get("p99_ms") is not None]
        if probes:
            rate = min(p["rate"] for p in probes)
            best = min((p for p in probes if p["rate"] == rate), key=lambda p: p["p99_ms"])
            lowest.append(f"{target} {_p99_text(best)} at {rate_text(rate)} req/s")
    if not lowest:
        return "no stack held the SLO at any rate probed"
    return (
        f"no stack held the SLO at any rate probed: the best p99 at the lowest rate was {', '.join(lowest)}, "
        f"above the bound{f' of {bound:g} ms' if bound else ''} even with no load to speak of; run again with a "
        "bound above that floor (`make run RUN_ARGS='--slo-ms N'`)"
    )


def contention(other_cpu: dict[str, float | None]) -> str | None:
    """Why the stacks' probes were not taken under comparable host load, or None when they were."""
    known = {t: v for t, v in other_cpu.items() if v is not None}
    if len(known) < 2 or max(known.values()) - min(known.values()) <= MAX_CONTENTION_GAP:
        return None
    shares = ", ".join(f"{t} {v:.0f} %" for t, v in known.items())
    return (
        f"no clear winner: other processes on this host took very different shares of the CPU while the stacks "
        f"were probed ({shares} of a core), so their capacities are not comparable"
    )


def spread(result: dict[str, Any]) -> float | None:
    """The widest spread of a stack's confirmation probes' windows (req/s or latency), None when unrecorded."""
    known = [p["spread"] for p in result.get("probes") or [] if p.get("round") and p.get("spread") is not None]
    return max(known, default=None)


def _round_up(ms: float) -> float:
    """``ms`` rounded up to two significant digits (165 → 170, 1,201 → 1,300): a bound to suggest."""
    step = 10 ** (math.floor(math.log10(ms)) - 1) if ms > 0 else 1
    return math.ceil(ms / step) * step


def _p99_text(probe: dict[str, Any]) -> str:
    # a run before probes carried their counts: HdrHistogram's p99 of fewer than 100 latencies is their max
    n = probe.get("p99_of") or short_of(int(probe.get("requests") or 0), "p99")
    return f"{probe['p99_ms']:,.0f} ms (max of {n})" if n else f"{probe['p99_ms']:,.0f} ms"


def unmet(target: str, result: dict[str, Any]) -> str | None:
    """When ``target`` held no rate at all, not even its lowest probe: that it cannot meet the bound at any rate
    here, its p99 at that rate and the bound it would meet there; None when it held a rate (or was never judged)."""
    probes = [p for p in result.get("probes") or [] if p.get("outcome") in ("pass", "fail")]
    if not probes or (result.get("capacity") or {}).get("median") is not None:
        return None
    rate = min(p["rate"] for p in probes)
    at = [p for p in probes if p["rate"] == rate]
    if any(p["outcome"] == "pass" or p.get("p99_ms") is None for p in at):
        return None
    low, high = min(at, key=lambda p: p["p99_ms"]), max(at, key=lambda p: p["p99_ms"])
    same = low["p99_ms"] == high["p99_ms"]
    p99 = _p99_text(low) if same else f"{low['p99_ms']:,.0f}–{_p99_text(high)}"
    bound = result.get("slo_ms")
    unloaded = result.get("unloaded") or {}
    alone = ""
    if unloaded.get("p50_ms") is not None and bound is not None and unloaded["p50_ms"] > bound:
        alone = f"; one request at a time its p50 was already {unloaded['p50_ms']:,.0f} ms"
    passed = [p for p in probes if p["outcome"] == "pass"]
    lucky = ""
    if passed:
        rates = ", ".join(dict.fromkeys(rate_text(r) for r in sorted(p["rate"] for p in passed)))
        lucky = (
            f"; {len(passed)} of its {len(probes)} probes passed (at {rates} req/s) but none of its "
            "confirmation rounds held"
        )
    return (
        f"{target} cannot meet p99 ≤ {bound:g} ms at any rate here: its p99 was {p99} at {rate_text(rate)} req/s, "
        f"the lowest rate probed{alone}; it would meet p99 ≤ {_round_up(high['p99_ms']):,.0f} ms at that rate{lucky}"
    )


def decide(
    slo_results: dict[str, Any],
    tf_server: str,
    other_cpu: dict[str, float | None] | None = None,
    provenance_notes: list[str] | None = None,
) -> dict[str, Any]:
    """The verdict: throughput under the SLO, latency at low load, and which TF server was measured.

    ``other_cpu``: per stack, the median CPU other processes used during its probes (percent of a core);
    ``provenance_notes``: the sentences saying where a converted artifact ran much slower than its source
    (:func:`loadtests.provenance.conversion_notes`).
    """
    cannot = {t: text for t, r in slo_results.items() if (text := unmet(t, r))}
    ranked_results = {t: r for t, r in slo_results.items() if t not in cannot}
    caps = [Capacity.of(t, r) for t, r in ranked_results.items()]
    unfair = contention({t: (other_cpu or {}).get(t) for t in ranked_results})
    noise = Noise({t: (other_cpu or {}).get(t) for t in slo_results}, {t: spread(r) for t, r in slo_results.items()})
    ranked: dict[str, Any]
    if not any(c.median is not None and c.low is not None for c in caps):
        ranked = {"winner": None, "text": floor_text(slo_results)}
    else:
        ranked = throughput(caps, noise=noise)
        if unfair and ranked.get("winner"):
            ranked = {"winner": None, "leader": ranked["winner"], "text": unfair}
        if cannot:
            ranked = {**ranked, "text": "; ".join([ranked["text"], *cannot.values()]), "cannot": sorted(cannot)}
    return {
        "throughput": ranked,
        "latency": latency(low_load_points(slo_results)),
        "tf_server": tf_server,
        "conversion": list(provenance_notes or []),
    }
