"""The report's PNG plots (matplotlib, Agg backend: no display needed). Every plot carries the
run's label: seed, stack configuration hash, TF server and the load generator's headroom."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from loadtests.summary import SummaryRow


def _save(fig: Any, out: Path, name: str, label: str) -> str:
    (out / "plots").mkdir(exist_ok=True)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    fig.text(0.01, 0.01, label, fontsize=7, color="#555")
    fig.savefig(out / "plots" / name, dpi=110)
    plt.close(fig)
    return f"plots/{name}"


def percentiles(out: Path, rows: list[SummaryRow], label: str) -> str:
    """Grouped bars of p50/p90/p95/p99 per target; whiskers span the repeats' min to max."""
    fig, ax = plt.subplots(figsize=(9, 4.4))
    keys = ["p50", "p90", "p95", "p99"]
    width = 0.8 / len(keys)
    x = np.arange(len(rows))
    for i, key in enumerate(keys):
        med = [r.latency[key].median or 0 for r in rows]
        low = [med[j] - (r.latency[key].low or 0) for j, r in enumerate(rows)]
        high = [(r.latency[key].high or 0) - med[j] for j, r in enumerate(rows)]
        ax.bar(x + (i - 1.5) * width, med, width, yerr=[low, high], capsize=2, label=key)
    ax.set_xticks(x, [r.target + ("" if r.stable else "\n(unstable)") for r in rows], rotation=20)
    ax.set_ylabel("latency (ms, HdrHistogram, median of repeats)")
    ax.set_title("Latency percentiles per target, fixed concurrency (whiskers: min–max across repeats)")
    ax.legend()
    return _save(fig, out, "latency_percentiles.png", label)


def cdf(out: Path, samples: dict[str, list[float]], label: str) -> str:
    fig, ax = plt.subplots(figsize=(8, 4.4))
    for name, values in samples.items():
        if values:
            data = np.sort(np.asarray(values))
            ax.plot(data, np.arange(1, len(data) + 1) / len(data), label=name)
    ax.set_xscale("log")
    ax.set_xlabel("latency (ms, log scale)")
    ax.set_ylabel("share of requests ≤ x")
    ax.set_title("Latency CDF (comparison runs, all repeats)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return _save(fig, out, "latency_cdf.png", label)


def curve(out: Path, model: str, points: dict[str, list[dict[str, Any]]], slo_ms: float, label: str) -> str:
    """The serving curve: p50 (solid) and p99 (dashed) against the offered rate, every target, one model."""
    fig, ax = plt.subplots(figsize=(9, 4.8))
    for i, (name, pts) in enumerate(points.items()):
        color = f"C{i}"
        rates = [p["rate"] for p in pts]
        ax.plot(rates, [p["p50_ms"] for p in pts], marker="o", color=color, label=f"{name} p50")
        ax.plot(rates, [p["p99_ms"] for p in pts], marker="^", linestyle="--", color=color, label=f"{name} p99")
        void = [p for p in pts if p["outcome"] == "void"]
        if void:
            ax.scatter([p["rate"] for p in void], [p["p99_ms"] or 0 for p in void], marker="x", color="black")
    ax.axhline(slo_ms, color="red", linewidth=0.8, label=f"SLO p99 ≤ {slo_ms:g} ms")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("offered rate (req/s, open-loop Poisson, log scale)")
    ax.set_ylabel("latency (ms, log scale)")
    ax.set_title(f"{model}: latency versus offered load (x: probe the load generator could not offer)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize="x-small", ncol=2)
    return _save(fig, out, f"latency_vs_load_{model}.png", label)


def breakdown(out: Path, parts: list[tuple[str, str, str]], found: dict[str, dict[str, Any]], label: str) -> str:
    """Stacked bars: each target's mean latency split into its parts, the unaccounted rest hatched."""
    fig, ax = plt.subplots(figsize=(9, 0.9 + 0.55 * max(2, len(found))))
    names = list(found)
    left = np.zeros(len(names))
    for i, (key, lab, _) in enumerate(parts):
        values = np.array([max(0.0, dict(zip([k for k, _, _ in parts], f["parts_by_key"], strict=True))[key] or 0.0)
                           for f in found.values()])  # fmt: skip
        if values.any():
            ax.barh(names, values, left=left, color=f"C{i}", label=lab)
            left += values
    rest = np.array([max(0.0, f["unaccounted_ms"] or 0.0) for f in found.values()])
    if rest.any():
        ax.barh(names, rest, left=left, color="white", edgecolor="grey", hatch="//", label="unaccounted")
    ax.scatter([f["client_ms"] or 0 for f in found.values()], names, marker="|", s=300, color="black",
               label="client mean", zorder=3)  # fmt: skip
    ax.set_xlabel("mean ms per request")
    ax.set_title("Where the time goes (comparison load)")
    ax.invert_yaxis()
    ax.legend(fontsize="x-small", loc="center left", bbox_to_anchor=(1.0, 0.5))
    return _save(fig, out, "breakdown.png", label)


def steps(out: Path, points: dict[str, list[dict[str, Any]]], label: str) -> str:
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 6), sharex=True)
    for name, pts in points.items():
        users = [p["users"] for p in pts]
        top.plot(users, [p["rps"] for p in pts], marker="o", label=name)
        bottom.plot(users, [p["p99"] for p in pts], marker="o", label=name)
    top.set_ylabel("req/s")
    top.set_title("Step load: throughput and p99 versus users")
    bottom.set_ylabel("p99 (ms)")
    bottom.set_xlabel("users (closed loop, log scale)")
    bottom.set_xscale("log", base=2)
    for ax in (top, bottom):
        ax.grid(alpha=0.3)
    top.legend(fontsize="small")
    return _save(fig, out, "step_load.png", label)


def overhead(out: Path, rows: list[dict[str, Any]], label: str) -> str:
    fig, ax = plt.subplots(figsize=(7, 4))
    x = np.arange(len(rows))
    ax.bar(x - 0.2, [r["overhead_p50_ms"] or 0 for r in rows], 0.4, label="gateway p50 − direct p50 (client)")
    ax.bar(x + 0.2, [r["server_timing_gateway_ms"] or 0 for r in rows], 0.4, label="Server-Timing gateway;dur")
    ax.set_xticks(x, [r["backend"] for r in rows])
    ax.set_ylabel("ms")
    ax.axhline(0, color="black", linewidth=0.5)
    ax.set_title("Gateway overhead per backend")
    ax.legend(fontsize="small")
    return _save(fig, out, "gateway_overhead.png", label)


def pooled_samples(out: Path, runs: list[dict[str, Any]]) -> dict[str, list[float]]:
    """Per target: the exact latencies (ms) of its runs' figures, pooled."""
    pooled: dict[str, list[float]] = {}
    for run in runs:
        path = out / run["samples"]
        if path.exists():
            pooled.setdefault(run["target"], []).extend(json.loads(path.read_text()))
    return pooled


def draw_all(out: Path, results: dict[str, Any], context: dict[str, Any]) -> dict[str, str]:
    """Every plot that has data; name -> path relative to ``out``."""
    labels = context["label"]
    made = {"percentiles": percentiles(out, context["rows"], labels["comparison"])}
    samples = pooled_samples(out, results["comparison"]["runs"])
    if any(samples.values()):
        made["cdf"] = cdf(out, samples, labels["comparison"])
    if context["curve"]:
        made["curve"] = curve(out, results["model"], context["curve"], results["slo"]["slo_ms"], labels["slo"])
    if context["breakdown"]:
        made["breakdown"] = breakdown(out, context["breakdown_parts"], context["breakdown"], labels["comparison"])
    if context["steps"]:
        made["steps"] = steps(out, context["steps"], labels["step"])
    if context["overhead"]:
        made["overhead"] = overhead(out, context["overhead"], labels["comparison"])
    return made
