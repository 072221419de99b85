"""The report's PNG plots (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from loadtests.summary import SummaryRow


def _save(fig: Any, out: Path, name: str) -> str:
    (out / "plots").mkdir(exist_ok=True)
    fig.tight_layout()
    fig.savefig(out / "plots" / name, dpi=110)
    plt.close(fig)
    return f"plots/{name}"


def percentiles(out: Path, rows: list[SummaryRow]) -> str:
    """Grouped bars of p50/p90/p95/p99 per target; whiskers span the repeats' min to max."""
    fig, ax = plt.subplots(figsize=(9, 4.2))
    keys = ["p50", "p90", "p95", "p99"]
    width = 0.8 / len(keys)
    x = np.arange(len(rows))
    for i, key in enumerate(keys):
        med = [r.latency[key].median or 0 for r in rows]
        low = [med[j] - (r.latency[key].low or 0) for j, r in enumerate(rows)]
        high = [(r.latency[key].high or 0) - med[j] for j, r in enumerate(rows)]
        ax.bar(x + (i - 1.5) * width, med, width, yerr=[low, high], capsize=2, label=key)
    ax.set_xticks(x, [r.target for r in rows], rotation=20)
    ax.set_ylabel("latency (ms, Locust, median of repeats)")
    ax.set_title("Latency percentiles per target (whiskers: min–max across repeats)")
    ax.legend()
    return _save(fig, out, "latency_percentiles.png")


def cdf(out: Path, samples: dict[str, list[float]]) -> str:
    fig, ax = plt.subplots(figsize=(8, 4.2))
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
    return _save(fig, out, "latency_cdf.png")


def steps(out: Path, points: dict[str, list[dict[str, float | None]]]) -> str:
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
    return _save(fig, out, "step_load.png")


def overhead(out: Path, rows: list[dict[str, Any]]) -> str:
    fig, ax = plt.subplots(figsize=(7, 3.8))
    x = np.arange(len(rows))
    ax.bar(x - 0.2, [r["overhead_p50_ms"] or 0 for r in rows], 0.4, label="gateway p50 − direct p50 (client)")
    ax.bar(x + 0.2, [r["server_timing_gateway_ms"] or 0 for r in rows], 0.4, label="Server-Timing gateway;dur")
    ax.set_xticks(x, [r["backend"] for r in rows])
    ax.set_ylabel("ms")
    ax.axhline(0, color="black", linewidth=0.5)
    ax.set_title("Gateway overhead per backend")
    ax.legend(fontsize="small")
    return _save(fig, out, "gateway_overhead.png")


def draw_all(
    out: Path,
    rows: list[SummaryRow],
    samples: dict[str, list[float]],
    points: dict[str, list[dict[str, float | None]]],
    overhead_rows: list[dict[str, Any]],
) -> dict[str, str]:
    """Every plot that has data; name -> path relative to ``out``."""
    made = {"percentiles": percentiles(out, rows)}
    if any(samples.values()):
        made["cdf"] = cdf(out, samples)
    if points:
        made["steps"] = steps(out, points)
    if overhead_rows:
        made["overhead"] = overhead(out, overhead_rows)
    return made
