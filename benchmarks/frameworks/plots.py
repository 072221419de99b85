"""The frameworks report's PNG plots (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from benchmarks.frameworks.plan import RUNTIMES

COLORS = {"pytorch": "#ee4c2c", "tensorflow": "#ff8f00", "onnxruntime": "#5c6bc0"}


def _save(fig: Any, out: Path, name: str) -> str:
    (out / "plots").mkdir(exist_ok=True)
    fig.tight_layout()
    fig.savefig(out / "plots" / name, dpi=110)
    plt.close(fig)
    return f"plots/{name}"


def training(out: Path, entries: list[dict[str, Any]]) -> str | None:
    """Steady-epoch samples/s per program and framework (whiskers: min–max over repeats)."""
    if not entries:
        return None
    models = list(dict.fromkeys(e["model"] for e in entries))
    frameworks = list(dict.fromkeys(e["framework"] for e in entries))
    fig, ax = plt.subplots(figsize=(8, 4))
    width = 0.8 / len(frameworks)
    for i, fw in enumerate(frameworks):
        x, med, low, high = [], [], [], []
        for j, model in enumerate(models):
            entry = next((e for e in entries if e["model"] == model and e["framework"] == fw), None)
            if entry is None:
                continue
            s = entry["samples_per_s_spread"]
            x.append(j + (i - (len(frameworks) - 1) / 2) * width)
            med.append(s["median"])
            low.append(s["median"] - s["min"])
            high.append(s["max"] - s["median"])
        ax.bar(x, med, width, yerr=[low, high], capsize=3, label=fw, color=COLORS.get(fw))
    ax.set_xticks(range(len(models)), models)
    ax.set_yscale("log")
    ax.set_ylabel("training samples/s (log)")
    ax.set_title("Training throughput, epochs after the first")
    ax.legend()
    return _save(fig, out, "training.png")


def losses(out: Path, entries: list[dict[str, Any]]) -> str | None:
    """Loss per epoch of each program, both frameworks on one axis."""
    models = list(dict.fromkeys(e["model"] for e in entries))
    if not models:
        return None
    fig, axes = plt.subplots(1, len(models), figsize=(3.2 * len(models), 3.2), squeeze=False)
    for ax, model in zip(axes[0], models, strict=True):
        for entry in (e for e in entries if e["model"] == model):
            ax.plot(
                range(1, len(entry["losses"]) + 1),
                entry["losses"],
                marker="o",
                label=entry["framework"],
                color=COLORS.get(entry["framework"]),
            )
        ax.set_title(model)
        ax.set_xlabel("epoch")
        ax.set_ylabel("mean training loss")
        ax.legend(fontsize="small")
    return _save(fig, out, "losses.png")


def inference(out: Path, entries: list[dict[str, Any]]) -> dict[str, str]:
    """Per model: p50 against batch size, one line per runtime (log-log)."""
    plots = {}
    for model in dict.fromkeys(e["model"] for e in entries):
        mine = [e for e in entries if e["model"] == model]
        fig, ax = plt.subplots(figsize=(7, 4))
        for runtime in [r for r in RUNTIMES if any(e["runtime"] == r for e in mine)]:
            points = sorted((e["batch"], e["p50_ms"]) for e in mine if e["runtime"] == runtime)
            xs, ys = zip(*points, strict=True)
            style = "--" if RUNTIMES[runtime] == "tensorflow" else "-"
            ax.plot(xs, ys, style, marker="o", label=runtime)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("batch size")
        ax.set_ylabel("p50 latency per call (ms, log)")
        ax.set_title(f"{model}: in-process inference latency")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small", ncol=2)
        plots[model] = _save(fig, out, f"inference_{model}.png")
    return plots


def gpu(out: Path, entries: list[dict[str, Any]]) -> str | None:
    """Mean GPU utilisation per runtime during inference, at each model's largest batch."""
    rows = []
    for model in dict.fromkeys(e["model"] for e in entries if e.get("gpu")):
        mine = [e for e in entries if e["model"] == model and e.get("gpu")]
        largest = max(e["batch"] for e in mine)
        rows += [
            (f"{model}×{largest} {e['runtime']}", e["gpu"]["gpu_util_mean_pct"]) for e in mine if e["batch"] == largest
        ]
    if not rows:
        return None
    fig, ax = plt.subplots(figsize=(8, 0.35 * len(rows) + 1.2))
    ax.barh(np.arange(len(rows)), [v for _, v in rows])
    ax.set_yticks(np.arange(len(rows)), [n for n, _ in rows], fontsize="small")
    ax.set_xlabel("mean GPU utilisation during the timed calls (%, NVML)")
    ax.set_xlim(0, 100)
    return _save(fig, out, "gpu_utilisation.png")


def draw_all(out: Path, result: dict[str, Any]) -> dict[str, Any]:
    """Every plot of a report; keys name them, values are paths relative to ``out``."""
    return {
        "training": training(out, result["training"]),
        "losses": losses(out, result["training"]),
        "inference": inference(out, result["inference"]),
        "gpu": gpu(out, result["inference"]),
    }
