"""``python -m loadtests compare REPORT_DIR [REPORT_DIR...]``: runs side by side (genai-perf ``compare``).

Reads each run's ``results.json`` and writes ``compare.md``, ``compare.html`` and a plot:
per target and run, the capacity under the SLO (median and spread), throughput and
p50/p99 at fixed concurrency, and each run's verdict. Runs that differ in model, payload
(batch, seed, payload seed) or stack configuration (its hash) measure different things;
the comparison says so loudly, at the top of the page and on stderr, and still shows them
(a laptop against a GPU host, default against tuned: differences in machine or
configuration are often the point, differences in model or payload almost never are).
"""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from loadtests import provenance, report, verdict

#: What must agree for two runs to measure the same thing, and how to read it from results.json.
SAME: dict[str, Any] = {
    "model": lambda r: r.get("model"),
    "batch": lambda r: r.get("batch"),
    "payload seed": lambda r: r.get("seed"),
    "SLO (p99 ms)": lambda r: (r.get("slo") or {}).get("slo_ms"),
    "stack configuration": lambda r: r.get("config_hash"),
    "TF server": lambda r: (r.get("environment") or {}).get("tf_server"),
}


def mismatches(runs: list[tuple[str, dict[str, Any]]]) -> list[str]:
    """One warning per property the runs disagree on, naming each run's value."""
    found = []
    for name, read in SAME.items():
        values = [read(results) for _, results in runs]
        if len({repr(v) for v in values}) > 1:
            each = ", ".join(f"{run}: {value}" for (run, _), value in zip(runs, values, strict=True))
            found.append(f"runs differ in {name} ({each})")
    return found


def table(runs: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """Per target present in any run: each run's figures (None where the run lacks the target)."""
    targets: list[str] = []
    for _, results in runs:
        for run in results["comparison"]["runs"]:
            if run["target"] not in targets:
                targets.append(run["target"])
    rows = []
    for target in targets:
        cells = []
        for _, results in runs:
            summary = {r.target: r for r in report.summary_rows(results)}.get(target)
            slo = ((results.get("slo") or {}).get("results") or {}).get(target) or {}
            cells.append(
                {
                    "capacity": slo.get("capacity"),
                    "generator_bound": slo.get("generator_bound", False),
                    "rps": summary.rps.median if summary else None,
                    "p50": summary.latency["p50"].median if summary else None,
                    "p99": summary.latency["p99"].median if summary else None,
                    "stable": summary.stable if summary else None,
                }
            )
        rows.append({"target": target, "cells": cells})
    return rows


def _plot(out: Path, names: list[str], rows: list[dict[str, Any]]) -> str:
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 6.5))
    width = 0.8 / max(1, len(names))
    x = np.arange(len(rows))
    for i, name in enumerate(names):
        caps = [(r["cells"][i]["capacity"] or {}).get("median") or 0 for r in rows]
        low = [c - ((r["cells"][i]["capacity"] or {}).get("low") or c) for c, r in zip(caps, rows, strict=True)]
        high = [((r["cells"][i]["capacity"] or {}).get("high") or c) - c for c, r in zip(caps, rows, strict=True)]
        top.bar(x + (i - (len(names) - 1) / 2) * width, caps, width, yerr=[low, high], capsize=2, label=name)
        p50 = [r["cells"][i]["p50"] or 0 for r in rows]
        bottom.bar(x + (i - (len(names) - 1) / 2) * width, p50, width, label=name)
    top.set_ylabel("max req/s under the SLO")
    top.set_title("Capacity under the SLO per target (whiskers: min–max of the confirmations)")
    bottom.set_ylabel("p50 ms at fixed concurrency")
    for ax in (top, bottom):
        ax.set_xticks(x, [r["target"] for r in rows], rotation=15)
        ax.legend(fontsize="x-small")
        ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    (out / "plots").mkdir(parents=True, exist_ok=True)
    fig.savefig(out / "plots" / "compare.png", dpi=110)
    plt.close(fig)
    return "plots/compare.png"


def build(run_dirs: list[Path], out: Path) -> tuple[str, list[str]]:
    """Write the comparison under ``out``; returns (its Markdown, the mismatch warnings)."""
    if len(run_dirs) < 2:
        raise report.ReportError("compare needs at least two report directories")
    runs = [(str(d), report.load_results(d)) for d in run_dirs]
    warnings = mismatches(runs)
    rows = table(runs)
    out.mkdir(parents=True, exist_ok=True)
    names = [f"run {i + 1}" for i in range(len(runs))]
    verdicts = []
    for (_, results), name in zip(runs, names, strict=True):
        slo_results = (results.get("slo") or {}).get("results") or {}
        tf_server = (results.get("environment") or {}).get("tf_server", "unknown")
        other_cpu = report.other_cpu_by_target((results.get("slo") or {}).get("runs", []))
        notes = provenance.conversion_notes(results.get("provenance") or {}, list(slo_results))
        verdicts.append((name, verdict.decide(slo_results, tf_server, other_cpu, notes) if slo_results else None))
    markdown = (
        report.templates()
        .get_template("compare.md")
        .render(runs=runs, names=names, warnings=warnings, rows=rows, verdicts=verdicts, plot=_plot(out, names, rows))
    )
    (out / "compare.md").write_text(markdown)
    (out / "compare.html").write_text(report.to_html(markdown, "duoserve: runs compared"))
    return markdown, warnings


def main(run_dirs: list[Path], out: Path | None) -> int:
    """The command: build, print the table, shout the warnings; 0 (1 only for unreadable input, via ReportError)."""
    target = out or Path("reports") / f"compare-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
    markdown, warnings = build(run_dirs, target)
    print(markdown)
    for warning in warnings:
        print(f"WARNING: {warning}: these runs measure different things", file=sys.stderr)
    print(f"compare: {target / 'compare.html'}  ({target / 'compare.md'})")
    return 0
