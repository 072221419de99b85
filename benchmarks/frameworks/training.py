"""The training programs' settings and how their repeats become one entry (no framework imported).

Each framework's worker trains a program ``repeats`` times from the same initial weights
on the same batches (:mod:`benchmarks.frameworks.data`) and hands the per-epoch times and
losses here. The first epoch (graph building, tracing, allocator warm-up) is reported on
its own; throughput comes from the later epochs.
"""

from __future__ import annotations

import statistics
from typing import Any

from benchmarks.frameworks import data
from benchmarks.frameworks.data import Epochs
from benchmarks.frameworks.plan import Plan
from benchmarks.frameworks.timing import spread

#: What each program is, its loss and optimizer, in words for the report.
PROGRAMS: dict[str, dict[str, str]] = {
    "simplenn": {
        "what": "the article's SimpleNN, 10→5→1, sigmoid; 1,000×10 standard-normal rows, random 0/1 labels",
        "loss": "binary cross-entropy (nn.BCELoss / 'binary_crossentropy')",
        "optimizer": "Adam, lr 1e-3, eps 1e-8",
    },
    "dense784": {
        "what": "the article's 784→128→10 dense classifier; stand-in data: the 1,437 training digits "
        "upsampled 8×8→28×28 (no MNIST download here)",
        "loss": "cross-entropy on logits",
        "optimizer": "Adam, lr 1e-3, eps 1e-8",
    },
    "digits_cnn": {
        "what": "duoserve's digits CNN to a held-out accuracy target (1,437 training / 360 held-out digits, "
        "random one-pixel shifts per batch)",
        "loss": "cross-entropy on logits",
        "optimizer": "AdamW, one-cycle lr to 3e-3, weight decay 1e-2, eps 1e-8",
    },
    "dynamic_rnn": {
        "what": "the article's DynamicRNN: GRU(8→32) + linear head over sequences of lengths 5–50; "
        "PyTorch packs them (pack_padded_sequence), Keras masks the padding (Masking)",
        "loss": "binary cross-entropy on logits",
        "optimizer": "Adam, lr 1e-3, eps 1e-8",
    },
}


def epochs_for(name: str, plan: Plan) -> Epochs:
    """The batches program ``name`` trains on, in order, under ``plan``."""
    t = plan.training
    if name == "simplenn":
        return data.simplenn(t.simplenn_epochs, plan.seed)
    if name == "dense784":
        return data.dense784(t.dense784_epochs, plan.seed)
    if name == "digits_cnn":
        return data.digits(t.digits_epochs, plan.seed)
    if name == "dynamic_rnn":
        return data.rnn(t.rnn_epochs, t.rnn_sequences, plan.seed)
    raise KeyError(f"unknown training program {name!r}")


def repeats_for(name: str, plan: Plan) -> int:
    return plan.training.digits_repeats if name == "digits_cnn" else plan.training.repeats


def target_for(name: str, plan: Plan) -> float | None:
    return plan.training.digits_target if name == "digits_cnn" else None


def _time_to(run: dict[str, Any], target: float) -> tuple[float | None, int | None]:
    for epoch, acc in enumerate(run["accuracy"]):
        if acc >= target:
            return sum(run["epoch_s"][: epoch + 1]), epoch + 1
    return None, None


def summarise(framework: str, name: str, runs: list[dict[str, Any]], epochs: Epochs, plan: Plan) -> dict[str, Any]:
    """One training entry from ``runs`` (each: ``epoch_s``, ``losses``, ``accuracy`` per epoch)."""
    rates, steady, firsts = [], [], []
    for run in runs:
        times = run["epoch_s"]
        later = times[1:] or times
        rates.append(epochs.rows * len(later) / sum(later))
        steady.append(statistics.median(later))
        firsts.append(times[0])
    entry: dict[str, Any] = {
        "framework": framework,
        "model": name,
        "device": plan.device,
        "threads": plan.threads,
        "seed": plan.seed,
        "batch": epochs.batch,
        "rows": epochs.rows,
        "epochs_planned": epochs.epochs,
        "epochs_run": [len(r["epoch_s"]) for r in runs],
        "repeats": len(runs),
        "samples_per_s": statistics.median(rates),
        "samples_per_s_spread": spread(rates),
        "epoch_s": statistics.median(steady),
        "epoch_s_spread": spread(steady),
        "first_epoch_s": statistics.median(firsts),
        "first_epoch_s_spread": spread(firsts),
        "losses": runs[0]["losses"],
        "losses_per_repeat": [r["losses"] for r in runs],
        "epoch_s_per_repeat": [r["epoch_s"] for r in runs],
        **PROGRAMS[name],
    }
    if any(r.get("accuracy") for r in runs):
        entry["accuracy"] = runs[0]["accuracy"]
        entry["final_accuracy"] = statistics.median(r["accuracy"][-1] for r in runs)
    if "jit_compile" in runs[0]:
        entry["keras_jit_compile"] = runs[0]["jit_compile"]
    target = target_for(name, plan)
    if target is not None:
        reached = [_time_to(r, target) for r in runs]
        seconds = [s for s, _ in reached if s is not None]
        entry["target_accuracy"] = target
        entry["time_to_accuracy_s"] = statistics.median(seconds) if len(seconds) == len(runs) else None
        entry["time_to_accuracy_s_spread"] = spread(seconds) if len(seconds) == len(runs) else None
        entry["epochs_to_accuracy"] = [e for _, e in reached]
    return entry
