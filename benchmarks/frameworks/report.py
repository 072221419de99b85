"""``report.md`` and ``report.html`` (Jinja2) and the plots of a frameworks run, from its ``frameworks.json``.

The tables are built here once, as headers and rows, and both templates render the same
rows, so the Markdown and the HTML can never disagree. ``summary_markdown`` is what the
command prints at the end.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jinja2

from benchmarks.frameworks import plots
from benchmarks.frameworks.plan import RUNTIME_TEXT, RUNTIMES

TEMPLATES = Path(__file__).resolve().parent / "templates"


def _num(value: float | None, digits: int = 3) -> str:
    if value is None:
        return "–"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


def _spread(spread: dict[str, float] | None, digits: int = 3) -> str:
    if not spread:
        return "–"
    return f"{_num(spread['median'], digits)} ({_num(spread['min'], digits)}–{_num(spread['max'], digits)})"


def claims_table(result: dict[str, Any]) -> dict[str, Any]:
    rows = [[c["claim"], c["measurement"], c["verdict"], c["limits"]] for c in result["claims"]]
    return {
        "id": "claims",
        "title": "The article's claims on this machine",
        "headers": ["claim", "measurement", "verdict here", "limits"],
        "rows": rows,
    }


def training_table(result: dict[str, Any]) -> dict[str, Any]:
    rows = []
    for e in result["training"]:
        accuracy = "–"
        if e.get("target_accuracy") is not None:
            tta = e.get("time_to_accuracy_s")
            reached = f"{_spread(e.get('time_to_accuracy_s_spread'), 2)} s" if tta is not None else "not reached"
            accuracy = f"to {e['target_accuracy']:.1%}: {reached}, epochs {e['epochs_to_accuracy']}"
        elif e.get("final_accuracy") is not None:
            accuracy = f"held-out {e['final_accuracy']:.1%}"
        rows.append(
            [
                e["model"],
                e["framework"],
                f"{e['batch']}",
                f"{e['repeats']}",
                _spread(e["samples_per_s_spread"], 0),
                _spread(e["epoch_s_spread"], 3),
                _spread(e["first_epoch_s_spread"], 3),
                " ".join(f"{v:.4f}" for v in e["losses"]),
                accuracy,
            ]
        )
    return {
        "id": "training",
        "title": "Training",
        "note": "samples/s over the epochs after the first; cells median (min–max) over repeats; the first epoch "
        "(graph building, tracing, allocation) apart. Losses: mean training loss per epoch, first repeat.",
        "headers": [
            "program",
            "framework",
            "batch",
            "repeats",
            "samples/s",
            "epoch s",
            "first epoch s",
            "loss per epoch",
            "accuracy",
        ],
        "rows": rows,
    }


def inference_tables(result: dict[str, Any]) -> list[dict[str, Any]]:
    tables = []
    order = {r: i for i, r in enumerate(RUNTIMES)}
    for model in dict.fromkeys(e["model"] for e in result["inference"]):
        entries = sorted(
            (e for e in result["inference"] if e["model"] == model),
            key=lambda e: (e["batch"], order.get(e["runtime"], 99)),
        )
        rows = []
        for e in entries:
            gpu = e.get("gpu")
            diff = e.get("max_abs_diff")
            rows.append(
                [
                    e["runtime"],
                    str(e["batch"]),
                    _num(e["p50_ms"]),
                    _num(e["p99_ms"]),
                    _spread(e["samples_per_s_spread"], 0),
                    _num(e["first_call_ms"], 1),
                    "–" if diff is None else f"{diff:.1e}",
                    e.get("parity", "–"),
                    "–" if not gpu else f"{gpu['gpu_util_mean_pct']:.0f} (max {gpu['gpu_util_max_pct']:.0f})",
                ]
            )
        tables.append(
            {
                "id": f"inference-{model}",
                "title": f"Inference: {model}",
                "note": "p50/p99 over every timed call (HdrHistogram); samples/s median (min–max) over windows; "
                "first call = graph building/compilation, excluded; max abs diff against "
                f"{entries[0].get('reference') or 'no reference'} on the same inputs.",
                "headers": [
                    "runtime",
                    "batch",
                    "p50 ms",
                    "p99 ms",
                    "samples/s",
                    "first call ms",
                    "max abs diff",
                    "parity",
                    "GPU util %",
                ],
                "rows": rows,
            }
        )
    return tables


def skipped_table(result: dict[str, Any]) -> dict[str, Any]:
    rows = [[s["framework"], s["what"], s["model"], s["reason"]] for s in result["skipped"]]
    rows += [
        [fw, "everything", "–", info["reason"]]
        for fw, info in result["environment"]["frameworks"].items()
        if not info["available"]
    ]
    return {
        "id": "skipped",
        "title": "Not measured, and why",
        "headers": ["framework", "what", "model", "reason"],
        "rows": rows,
    }


def tables(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Every table of the report, in order."""
    return [claims_table(result), training_table(result), *inference_tables(result), skipped_table(result)]


def _environment(env: dict[str, Any]) -> list[str]:
    lines = [
        f"command: `{env['command']}`",
        f"CPU: {env['cpu_model']}, {env['logical_cores']} logical cores ({env['physical_cores']} physical), "
        f"{env['memory_gib']} GiB; {env['machine']}",
        f"GPU: {', '.join(env['gpus']) or 'none'}; device used: {env['device']}",
        f"OS: {env['os']}, Python {env['python']}",
        f"threads per framework: {env['threads']} (seed {env['seed']}; threading variables: "
        f"{json.dumps(env.get('thread_env') or {})}); load average before "
        + " ".join(f"{v:.2f}" for v in env["load_average_before"])
        + ", after "
        + " ".join(f"{v:.2f}" for v in env["load_average_after"]),
    ]
    for framework, info in env["frameworks"].items():
        details = {k: v for k, v in info.items() if k not in ("available", "reason")}
        state = "ran" if info["available"] else f"did not run: {info['reason']}"
        lines.append(f"{framework}: {state}; {json.dumps(details)}")
    return lines


def _templates() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default_for_string=False),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def summary_markdown(result: dict[str, Any]) -> str:
    """The claims and training tables as Markdown, for the terminal."""
    return _templates().get_template("tables.md").render(tables=[claims_table(result), training_table(result)])


def build(out: Path, result: dict[str, Any]) -> list[Path]:
    """Write the plots, ``report.md`` and ``report.html`` of ``result`` into ``out``; returns the files."""
    context = {
        "r": result,
        "tables": tables(result),
        "environment": _environment(result["environment"]),
        "runtimes": RUNTIME_TEXT,
        "plots": plots.draw_all(out, result),
    }
    env = _templates()
    files = [out / "report.md", out / "report.html"]
    files[0].write_text(env.get_template("report.md").render(**context))
    files[1].write_text(env.get_template("report.html").render(**context))
    return files
