"""The report: ``report.md`` and ``report.html``, PNG plots, from a run directory.

Input is what the runner leaves in ``reports/<time>/``: ``results.json`` (what ran, every
figure with its windows and the servers' metrics) and the raw files (exact latencies of
each figure under ``samples/``, Locust's CSVs under ``csv/``). Every latency the report
publishes comes from HdrHistogram (:mod:`contract.latency`) over exact per-request
latencies, the figures' windows merged; Locust's CSVs (whole milliseconds, its own
estimator) are kept as raw files only. ``report.md`` is rendered from one Jinja2 template
and ``report.html`` from that Markdown (markdown-it), so the two never disagree.
``python -m loadtests report <dir>`` rebuilds the report of an earlier run.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
from markdown_it import MarkdownIt

from contract.latency import histogram_of, percentile_ms
from loadtests import breakdown, frameworks_link, plots, provenance, servermetrics, stability, verdict
from loadtests.hostload import cpu_ms_per_request
from loadtests.summary import Spread, SummaryRow
from loadtests.targets import DIRECT_OF, TARGETS

TEMPLATES = Path(__file__).resolve().parent / "templates"
PERCENTILES = ("p50", "p90", "p95", "p99")
HTML_STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2em auto;max-width:76em;color:#222}"
    "table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #ccc;padding:.3em .6em}"
    "blockquote{background:#fff3cd;margin:1em 0;padding:.3em 1em;border-left:4px solid #e0a800}img{max-width:100%}"
)


class ReportError(ValueError):
    """A directory that holds no readable run; the message says which and why, in one line."""


@dataclass
class Built:
    """What :func:`build` made."""

    out: Path
    rows: list[SummaryRow]
    summary_markdown: str
    gate_failures: list[str]
    files: list[Path] = field(default_factory=list)


def load_results(out: Path) -> dict[str, Any]:
    """``results.json`` of a run directory; :class:`ReportError` in one line when it is not one."""
    path = out / "results.json"
    if not out.is_dir():
        raise ReportError(f"{out}: not a directory")
    try:
        results: dict[str, Any] = json.loads(path.read_text())
    except FileNotFoundError:
        raise ReportError(f"{out}: no results.json (not a `python -m loadtests run` report directory)") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise ReportError(f"{path}: unreadable ({exc})") from None
    missing = [k for k in ("model", "batch", "comparison", "profile") if k not in results]
    if missing:
        raise ReportError(f"{path}: not a run of this version (missing {', '.join(missing)})")
    for optional in ("step", "slo", "wrk", "gateway_stats"):
        results.setdefault(optional, None)
    return results


def summary_rows(results: dict[str, Any]) -> list[SummaryRow]:
    """Per comparison target: every repeat's figure, as median [min, max] across repeats."""
    runs = results["comparison"]["runs"]
    slo_results = (results.get("slo") or {}).get("results", {})
    rows = []
    for name in dict.fromkeys(r["target"] for r in runs):
        mine = [r for r in runs if r["target"] == name]
        figures = [r["figure"] for r in mine]
        rows.append(
            SummaryRow(
                target=name,
                description=TARGETS[name].description if name in TARGETS else name,
                repeats=len(mine),
                requests=sum(f["requests"] for f in figures),
                failures=sum(f["failures"] for f in figures),
                rps=Spread.of([f["rps"] for f in figures]),
                latency={k: Spread.of([f[f"{k}_ms"] for f in figures]) for k in PERCENTILES},
                max_ms=max((f["max_ms"] for f in figures if f["max_ms"] is not None), default=None),
                slo=slo_results.get(name),
                loadgen_cpu_max=max(r["loadgen_cpu_percent"] for r in mine),
                stable=all(f["stable"] for f in figures),
                short=_short(figures),
                artifact=artifact_cell(results, name),
                server_cpu_ms=Spread.of([_cpu_ms(r) for r in mine]),
            )
        )
    return rows


def _cpu_ms(run: dict[str, Any]) -> float | None:
    target = TARGETS.get(run["target"])
    return cpu_ms_per_request(run.get("host"), target.backend, target.via_gateway) if target else None


def _short(figures: list[dict[str, Any]]) -> dict[str, int]:
    found: dict[str, int] = {}
    for figure in figures:
        for key, n in (figure.get("short") or {}).items():
            found[key] = min(n, found.get(key, n))
    return found


def artifact_cell(results: dict[str, Any], target: str) -> str | None:
    """A user's model: the artifact behind ``target`` and, when measured, how many times slower than the source
    it ran in process (``torchscript, 2.10× source``); None for a built-in model or an older run."""
    if (results.get("model_entry") or {}).get("origin") != "user" or target not in TARGETS:
        return None
    info = (results.get("provenance") or {}).get(TARGETS[target].backend)
    if not info:
        return None
    ratio = f", {info['slowdown']:.2f}× source" if info.get("slowdown") is not None else ""
    return f"{info['artifact']}{ratio}"


def _p50(values: list[float]) -> float | None:
    return percentile_ms(histogram_of(x / 1000 for x in values), 50.0) if values else None


def overhead(out: Path, results: dict[str, Any], rows: list[SummaryRow]) -> list[dict[str, Any]]:
    """Gateway p50 minus direct p50 per backend (exact latencies pooled over the repeats), and Server-Timing."""
    runs = results["comparison"]["runs"]
    samples = plots.pooled_samples(out, runs)
    by_target = {r.target: r for r in rows}
    found = []
    for gw, direct in DIRECT_OF.items():
        if gw not in by_target or direct not in by_target:
            continue
        timing = [r["figure"]["timing_means_ms"].get("gateway") for r in runs if r["target"] == gw]
        known = [t for t in timing if t is not None]
        gw_p50, direct_p50 = _p50(samples.get(gw, [])), _p50(samples.get(direct, []))
        found.append(
            {
                "backend": TARGETS[gw].backend,
                "gateway_p50_ms": gw_p50,
                "direct_p50_ms": direct_p50,
                "overhead_p50_ms": gw_p50 - direct_p50 if gw_p50 is not None and direct_p50 is not None else None,
                "server_timing_gateway_ms": statistics.median(known) if known else None,
                "rps_ratio": _ratio(by_target[gw].rps.median, by_target[direct].rps.median),
            }
        )
    return found


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def breakdowns(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per comparison target (not /compare): where its mean latency went (:mod:`loadtests.breakdown`),
    each source averaged over the repeats."""
    found: dict[str, dict[str, Any]] = {}
    runs = results["comparison"]["runs"]
    for name in dict.fromkeys(r["target"] for r in runs):
        target = TARGETS.get(name)
        if target is None or target.kind == "compare":
            continue
        mine = [r for r in runs if r["target"] == name]
        sources = []
        for run in mine:
            server = run.get("server") or {}
            means = servermetrics.mean_ms(server.get("before") or {}, server.get("after") or {})
            timing = run["figure"].get("timing_means_ms") or {}
            sources.append(
                breakdown.Sources(
                    client_ms=run["figure"]["mean_ms"],
                    via_gateway=target.via_gateway,
                    gateway_ms=timing.get("gateway"),
                    backend_ms=timing.get("backend"),
                    server={k: means.get(k) for k in servermetrics.PARTS},
                )
            )
        data = breakdown.split(_average(sources)).to_json()
        by_key = {p["key"]: p["ms"] for p in data["parts"]}
        data["parts_by_key"] = [by_key.get(key) for key, _, _ in breakdown.PARTS]
        found[name] = data
    return found


def _mean(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return sum(known) / len(known) if len(known) == len(values) and known else None


def _average(sources: list[breakdown.Sources]) -> breakdown.Sources:
    return breakdown.Sources(
        client_ms=_mean([s.client_ms for s in sources]),
        via_gateway=sources[0].via_gateway,
        gateway_ms=_mean([s.gateway_ms for s in sources]),
        backend_ms=_mean([s.backend_ms for s in sources]),
        server={k: _mean([s.server.get(k) for s in sources]) for k in servermetrics.PARTS},
    )


def other_cpu_by_target(runs: list[dict[str, Any]]) -> dict[str, float | None]:
    """Per target: the median CPU (percent of one core) that processes outside the stack and the load
    generator used during its runs: how much a shared host competed with the servers."""
    found: dict[str, list[float]] = {}
    for run in runs:
        other = (run.get("host") or {}).get("other_percent")
        if other is not None:
            found.setdefault(run["target"], []).append(other)
    return {t: statistics.median(v) for t, v in found.items()}


def curve_points(results: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Per target: every SLO probe as a point of the latency-versus-load curve, by offered rate."""
    points: dict[str, list[dict[str, Any]]] = {}
    for target, result in ((results.get("slo") or {}).get("results") or {}).items():
        probes = sorted(result["probes"], key=lambda p: p["rate"])
        points[target] = [
            {
                **{k: p[k] for k in ("rate", "achieved_rps", "p50_ms", "p99_ms", "outcome", "stable", "label")},
                "p50_of": p.get("p50_of"),
                # a run before probes carried their counts: HdrHistogram's p99 of fewer than 100 latencies is their max
                "p99_of": p.get("p99_of") or stability.short_of(int(p.get("requests") or 0), "p99"),
            }
            for p in probes
        ]
    return points


def step_points(results: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Per target: users, req/s and p99 of every step."""
    points: dict[str, list[dict[str, Any]]] = {}
    for run in (results.get("step") or {}).get("runs", []):
        f = run["figure"]
        points.setdefault(run["target"], []).append(
            {
                "users": run["users"],
                "rps": f["rps"],
                "p99": f["p99_ms"],
                "failures": f["failures"],
                "stable": f["stable"],
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


def label(results: dict[str, Any], phase: str | None = None) -> str:
    """The line every figure carries: seed, stack configuration hash, TF server, load-generator headroom."""
    loadgen = results.get("loadgen") or {}
    head = (
        f"seed {results.get('seed')} · config {results.get('config_hash', 'unknown')} · "
        f"TF server {(results.get('environment') or {}).get('tf_server', 'unknown')}"
    )
    p = (loadgen.get("phases") or {}).get(phase or "")
    if not p:
        return head
    achieved = f", achieved ≥ {p['min_achieved_ratio']:.0%} of offered" if p.get("min_achieved_ratio") else ""
    saturated = f", {p['saturated_runs']} run(s) saturated" if p.get("saturated_runs") else ""
    other = ""
    if p.get("other_cpu_median") is not None:
        other = f" · other processes {p['other_cpu_median']:.0f} % of a core (max {p['other_cpu_max']:.0f} %)"
    return (
        f"{head} · load generator ≤ {p['max_cpu_percent']:.0f} % of a core ({p['loop']} loop{achieved}{saturated})"
        f"{other}"
    )


def _serving_p50(rows: list[SummaryRow]) -> dict[str, tuple[str, float | None]]:
    return {
        r.target: (TARGETS[r.target].backend if r.target in TARGETS else r.target, r.latency["p50"].median)
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


def templates() -> jinja2.Environment:
    """The Jinja2 environment of the report templates (also used by ``compare``)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=False,  # Markdown out; the HTML is rendered from it by markdown-it, which escapes
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["fmt"] = _fmt
    env.filters["spread"] = _spread
    env.filters["rate"] = lambda v: "–" if v is None else verdict.rate_text(v)
    env.globals["zip"] = zip
    env.filters["spread_dict"] = lambda d, digits=1: _spread(
        Spread(d.get("median"), d.get("low"), d.get("high")), digits
    )
    return env


def to_html(markdown: str, title: str) -> str:
    """A standalone HTML page of ``markdown`` (tables on, raw HTML in the Markdown escaped)."""
    body = MarkdownIt("commonmark", {"html": False}).enable("table").render(markdown)
    return (
        f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{title}</title>\n'
        f"<style>{HTML_STYLE}</style>\n</head>\n<body>\n{body}</body>\n</html>\n"
    )


def build(out: Path) -> Built:
    """Write the plots, ``report.md`` and ``report.html`` of the run in ``out``."""
    results = load_results(out)
    rows = summary_rows(results)
    limit = results["profile"].get("max_fail_ratio", 0.01)
    gate = [f"{r.target}: {r.failures}/{r.requests} failed" for r in rows if not r.requests or r.error_ratio > limit]
    slo_results = (results.get("slo") or {}).get("results", {})
    tf_server = (results.get("environment") or {}).get("tf_server", "unknown")
    origins = results.get("provenance") or {}
    context: dict[str, Any] = {
        "r": results,
        "rows": rows,
        "verdict": (
            verdict.decide(
                slo_results,
                tf_server,
                other_cpu_by_target((results.get("slo") or {}).get("runs", [])),
                provenance.conversion_notes(origins, list(slo_results)),
            )
            if slo_results
            else None
        ),
        "provenance": origins,
        "source_latency": next((p["source_latency"] for p in origins.values() if p.get("source_latency")), None),
        "min_samples": stability.MIN_SAMPLES,
        "min_window": stability.WINDOW_MIN_REQUESTS,
        "artifacts": any(row.artifact for row in rows),
        "overhead": overhead(out, results, rows),
        "breakdown": breakdowns(results),
        "breakdown_parts": breakdown.PARTS,
        "curve": curve_points(results),
        "steps": step_points(results),
        "gateway": gateway_reconciliation(out, results),
        "slo": slo_results,
        "ranges": {t: verdict.Capacity.of(t, r) for t, r in slo_results.items()},
        "slo_other_cpu": other_cpu_by_target((results.get("slo") or {}).get("runs", [])),
        "wrk": results.get("wrk"),
        "wrk_locust": next((r for r in rows if results.get("wrk") and r.target == results["wrk"]["target"]), None),
        "gate": gate,
        "label": {p: label(results, p) for p in ("comparison", "step", "slo", "wrk", None)},
        "other_cpu": max(
            (
                p["other_cpu_median"]
                for p in (results.get("loadgen") or {}).get("phases", {}).values()
                if p.get("other_cpu_median") is not None
            ),
            default=None,
        ),
        "csvs": sorted(p.relative_to(out).as_posix() for p in (out / "csv").glob("*.csv")),
    }
    context["frameworks"] = frameworks_link.framework_compute(
        out.parent, out, results["model"], int(results["batch"]), _serving_p50(rows)
    )
    context["plots"] = plots.draw_all(out, results, context)
    env = templates()
    summary = env.get_template("summary.md").render(**context)
    context["summary_md"] = summary
    markdown = env.get_template("report.md").render(**context)
    files = [out / "report.md", out / "report.html"]
    files[0].write_text(markdown)
    files[1].write_text(to_html(markdown, f"duoserve load test: {results['model']}"))
    return Built(out, rows, summary, gate, files + [out / p for p in context["plots"].values()])
