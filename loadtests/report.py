"""The report: ``report.md`` and ``report.html`` (Jinja2), PNG plots, from a run directory.

Input is what the runner leaves in ``reports/<time>/``: ``results.json`` (what ran, with
each run's Locust CSV path) and the raw Locust CSVs. Every latency and throughput
figure in the summary table is read from those CSVs, so the table can be checked
against them. Latencies in Locust's CSVs are whole milliseconds; the exact per-request
latencies the runner also keeps (``samples/``) feed the CDF and the gateway overhead.
``python -m loadtests report <dir>`` rebuilds the report of an earlier run.
"""

from __future__ import annotations

import csv
import json
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2

from loadtests import frameworks_link, plots
from loadtests.summary import Spread, SummaryRow
from loadtests.targets import DIRECT_OF, TARGETS

TEMPLATES = Path(__file__).resolve().parent / "templates"
PERCENTILE_COLUMNS = {"p50": "50%", "p90": "90%", "p95": "95%", "p99": "99%"}


def read_stats_row(path: Path, name: str) -> dict[str, str]:
    """The row of Locust's ``_stats.csv`` whose Name is ``name``."""
    with path.open(newline="") as f:
        for row in csv.DictReader(f):
            if row["Name"] == name:
                return row
    raise ValueError(f"{path}: no row named {name!r}")


def _num(text: str) -> float | None:
    return None if text in ("", "N/A") else float(text)


@dataclass
class Built:
    """What :func:`build` made."""

    out: Path
    rows: list[SummaryRow]
    summary_markdown: str
    gate_failures: list[str]
    files: list[Path] = field(default_factory=list)


def _load_samples(out: Path, runs: list[dict[str, Any]]) -> dict[str, list[float]]:
    pooled: dict[str, list[float]] = {}
    for run in runs:
        path = out / run["samples"]
        if path.exists():
            pooled.setdefault(run["target"], []).extend(json.loads(path.read_text()))
    return pooled


def summary_rows(out: Path, results: dict[str, Any]) -> list[SummaryRow]:
    """Per comparison target: the CSV figures of every repeat, as median [min, max]."""
    runs = results["comparison"]["runs"]
    slo_results = (results.get("slo") or {}).get("results", {})
    rows = []
    for name in dict.fromkeys(r["target"] for r in runs):
        mine = [r for r in runs if r["target"] == name]
        csv_rows = [read_stats_row(out / r["csv"], name) for r in mine]
        rows.append(
            SummaryRow(
                target=name,
                description=TARGETS[name].description if name in TARGETS else name,
                repeats=len(mine),
                requests=sum(int(c["Request Count"]) for c in csv_rows),
                failures=sum(int(c["Failure Count"]) for c in csv_rows),
                rps=Spread.of([_num(c["Requests/s"]) for c in csv_rows]),
                latency={k: Spread.of([_num(c[col]) for c in csv_rows]) for k, col in PERCENTILE_COLUMNS.items()},
                max_ms=max((v for c in csv_rows if (v := _num(c["Max Response Time"])) is not None), default=None),
                slo_rps=(slo_results.get(name) or {}).get("max_rps"),
                loadgen_cpu_max=max(r["loadgen_cpu_percent"] for r in mine),
            )
        )
    return rows


def overhead(out: Path, results: dict[str, Any], rows: list[SummaryRow]) -> list[dict[str, Any]]:
    """Gateway p50 minus direct p50 per backend, from exact samples and from the CSVs; Server-Timing's gateway;dur."""
    runs = results["comparison"]["runs"]
    samples = _load_samples(out, runs)
    by_target = {r.target: r for r in rows}
    found = []
    for gw, direct in DIRECT_OF.items():
        if gw not in by_target or direct not in by_target:
            continue
        timing = [r["server_timing"]["gateway_ms_median"] for r in runs if r["target"] == gw]
        known = [t for t in timing if t is not None]
        gw_p50 = statistics.median(samples[gw]) if samples.get(gw) else None
        direct_p50 = statistics.median(samples[direct]) if samples.get(direct) else None
        csv_gw, csv_direct = by_target[gw].latency["p50"].median, by_target[direct].latency["p50"].median
        found.append(
            {
                "backend": TARGETS[gw].backend,
                "gateway_p50_ms": gw_p50,
                "direct_p50_ms": direct_p50,
                "overhead_p50_ms": gw_p50 - direct_p50 if gw_p50 is not None and direct_p50 is not None else None,
                "overhead_p50_csv_ms": csv_gw - csv_direct if csv_gw is not None and csv_direct is not None else None,
                "server_timing_gateway_ms": statistics.median(known) if known else None,
                "rps_ratio": _ratio(by_target[gw].rps.median, by_target[direct].rps.median),
            }
        )
    return found


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def step_points(out: Path, results: dict[str, Any]) -> dict[str, list[dict[str, float | None]]]:
    """Per target: users, req/s and p99 of every step, from the step CSVs."""
    points: dict[str, list[dict[str, float | None]]] = {}
    for run in (results.get("step") or {}).get("runs", []):
        row = read_stats_row(out / run["csv"], run["target"])
        points.setdefault(run["target"], []).append(
            {
                "users": run["users"],
                "rps": _num(row["Requests/s"]),
                "p99": _num(row["99%"]),
                "failures": _num(row["Failure Count"]),
            }
        )
    return points


def gateway_reconciliation(out: Path, results: dict[str, Any]) -> list[dict[str, Any]]:
    """The gateway's own counts next to what Locust sent through it."""
    info = results.get("gateway_stats")
    if not info or not (out / info["file"]).exists():
        return []
    snapshot = json.loads((out / info["file"]).read_text())
    model = (snapshot.get("models") or {}).get(results["model"], {})
    rows = []
    for backend, sent in sorted(info["sent"].items()):
        since = (model.get(backend) or {}).get("since_reset", {})
        rows.append(
            {
                "backend": backend,
                "locust_sent": sent,
                "gateway_count": since.get("count", 0),
                "gateway_errors": sum((since.get("errors") or {}).values()),
                "p50_ms": since.get("p50_ms"),
                "p99_ms": since.get("p99_ms"),
                "server": (model.get(backend) or {}).get("server"),
            }
        )
    return rows


def _serving_p50(rows: list[SummaryRow], samples: dict[str, list[float]]) -> dict[str, tuple[str, float | None]]:
    """Per target: its backend and p50 in ms (exact samples where kept, else the CSV median)."""
    return {
        r.target: (
            TARGETS[r.target].backend if r.target in TARGETS else r.target,
            statistics.median(samples[r.target]) if samples.get(r.target) else r.latency["p50"].median,
        )
        for r in rows
    }


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def _spread(s: Spread, digits: int = 1) -> str:
    if s.median is None:
        return "–"
    if s.low == s.high:
        return _fmt(s.median, digits)
    return f"{_fmt(s.median, digits)} ({_fmt(s.low, digits)}–{_fmt(s.high, digits)})"


def _templates() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default_for_string=False),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["fmt"] = _fmt
    env.filters["spread"] = _spread
    return env


def build(out: Path) -> Built:
    """Write the plots, ``report.md`` and ``report.html`` of the run in ``out``."""
    results = json.loads((out / "results.json").read_text())
    for optional in ("step", "slo", "wrk", "gateway_stats"):
        results.setdefault(optional, None)
    rows = summary_rows(out, results)
    runs = results["comparison"]["runs"]
    limit = results["profile"].get("max_fail_ratio", 0.01)
    gate = [f"{r.target}: {r.failures}/{r.requests} failed" for r in rows if not r.requests or r.error_ratio > limit]
    context: dict[str, Any] = {
        "r": results,
        "rows": rows,
        "overhead": overhead(out, results, rows),
        "steps": step_points(out, results),
        "gateway": gateway_reconciliation(out, results),
        "slo": (results.get("slo") or {}).get("results", {}),
        "wrk": results.get("wrk"),
        "wrk_locust": next((r for r in rows if results.get("wrk") and r.target == results["wrk"]["target"]), None),
        "gate": gate,
        "csvs": sorted(p.relative_to(out).as_posix() for p in (out / "csv").glob("*.csv")),
    }
    samples = _load_samples(out, runs)
    context["frameworks"] = frameworks_link.framework_compute(
        out.parent, out, results["model"], int(results["batch"]), _serving_p50(rows, samples)
    )
    context["plots"] = plots.draw_all(out, rows, samples, context["steps"], context["overhead"])
    env = _templates()
    summary = env.get_template("summary.md").render(**context)
    context["summary_md"] = summary
    files = [out / "report.md", out / "report.html"]
    files[0].write_text(env.get_template("report.md").render(**context))
    files[1].write_text(env.get_template("report.html").render(**context))
    return Built(out, rows, summary, gate, files + [out / p for p in context["plots"].values()])
