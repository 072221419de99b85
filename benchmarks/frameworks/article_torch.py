"""The article's programs in PyTorch, run as it wrote them: a module, an optimizer, a loop over batches.

* ``simplenn`` -- the article's SimpleNN (``services/torch_api/models.py``), 10 -> 5 -> 1
  with a sigmoid, ``nn.BCELoss``, Adam 1e-3, batch 32, 5 epochs on 1,000 x 10 random rows;
* ``dense784`` -- its 784 -> 128 -> 10 dense classifier, cross-entropy, Adam 1e-3, batch 32;
* ``digits_cnn`` -- duoserve's digits CNN trained to an accuracy (AdamW, one-cycle schedule,
  the same one-pixel shifts as ``services/torch_api/train.py``), timed to the target;
* ``dynamic_rnn`` -- the article's DynamicRNN: a GRU over variable-length sequences read with
  ``pack_padded_sequence``.

The Keras twins live in :mod:`benchmarks.frameworks.article_keras` (the two frameworks
never share a process); they start from the weights this side writes (:func:`write_init`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.rnn import pack_padded_sequence

from benchmarks.frameworks import data
from benchmarks.frameworks.data import Epochs
from services.torch_api.models import DigitsCNN, SimpleNN
from services.torch_api.train import save_weights

LR = 1e-3
EPS = 1e-8
DIGITS_LR = 3e-3
DIGITS_WEIGHT_DECAY = 1e-2


class DenseClassifier(nn.Module):
    """The article's dense classifier: Linear(784, 128)-ReLU-Linear(128, 10), logits out."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(28 * 28, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.relu(self.fc1(x)))


class DynamicRNN(nn.Module):
    """The article's DynamicRNN: a GRU over padded sequences packed by length, then a linear head."""

    def __init__(self) -> None:
        super().__init__()
        self.rnn = nn.GRU(data.RNN_FEATURES, data.RNN_HIDDEN, batch_first=True)
        self.fc = nn.Linear(data.RNN_HIDDEN, 1)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        _, hidden = self.rnn(packed)
        return self.fc(hidden[-1])


def build(name: str, seed: int) -> nn.Module:
    """A freshly seeded network for training program ``name``."""
    torch.manual_seed(seed)
    networks: dict[str, Callable[[], nn.Module]] = {
        "simplenn": SimpleNN,
        "dense784": DenseClassifier,
        "digits_cnn": DigitsCNN,
        "dynamic_rnn": DynamicRNN,
    }
    return networks[name]()


def check_inputs(name: str, seed: int) -> dict[str, np.ndarray]:
    """A small batch on which both frameworks' networks must agree before anything is timed."""
    rng = np.random.default_rng([seed, 9])
    if name == "simplenn":
        return {"x": rng.standard_normal((16, data.SIMPLENN_FEATURES)).astype(np.float32)}
    if name == "dense784":
        return {"x": rng.random((16, data.DENSE_SIDE**2)).astype(np.float32)}
    if name == "digits_cnn":
        return {"x": (rng.random((16, 8, 8)) * 16).astype(np.float32)}
    x, lengths, _ = data.sequences(16, seed + 1)
    return {"x": x, "lengths": lengths}


def forward(model: nn.Module, name: str, arrays: dict[str, np.ndarray], device: str) -> np.ndarray:
    """The network's training-time output (logits; SimpleNN's sigmoid) on numpy inputs, as numpy."""
    with torch.inference_mode():
        x = torch.from_numpy(arrays["x"]).to(device)
        if name == "dynamic_rnn":
            out = model(x, torch.from_numpy(arrays["lengths"]))
        elif name == "digits_cnn":
            out = model.logits(x)  # type: ignore[operator]
        else:
            out = model(x)
        return np.asarray(out.cpu().numpy())


def write_init(directory: Path, name: str, seed: int) -> None:
    """Write the seeded initial weights of ``name`` and its check batch with this side's outputs."""
    model = build(name, seed).eval()
    directory.mkdir(parents=True, exist_ok=True)
    save_weights(model, directory / f"{name}.npz")
    arrays = check_inputs(name, seed)
    payload: dict[str, Any] = {"expected": forward(model, name, arrays, "cpu"), **arrays}
    np.savez(directory / f"{name}.check.npz", **payload)


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def _loss_and_optimizer(name: str, model: nn.Module, total_steps: int) -> tuple[Any, torch.optim.Optimizer, Any]:
    if name == "digits_cnn":
        opt: torch.optim.Optimizer = torch.optim.AdamW(
            model.parameters(), lr=DIGITS_LR, weight_decay=DIGITS_WEIGHT_DECAY, eps=EPS
        )
        schedule = torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=DIGITS_LR, total_steps=total_steps, cycle_momentum=False
        )
        return nn.CrossEntropyLoss(), opt, schedule
    opt = torch.optim.Adam(model.parameters(), lr=LR, eps=EPS)
    loss = {"simplenn": nn.BCELoss(), "dense784": nn.CrossEntropyLoss()}.get(name, nn.BCEWithLogitsLoss())
    return loss, opt, None


def accuracy(model: nn.Module, name: str, x: np.ndarray, y: np.ndarray, device: str) -> float:
    """Share of held-out rows classified right."""
    model.eval()
    predicted = forward(model, name, {"x": x}, device).argmax(axis=1)
    model.train()
    return float((predicted == y).mean())


def train(name: str, epochs: Epochs, seed: int, device: str, target: float | None = None) -> dict[str, Any]:
    """Train ``name`` from its seeded weights on ``epochs``; per-epoch wall time, mean loss and accuracy.

    Every epoch's data is on the device before the clock starts (as Keras gets it from
    memory). With ``target``, training stops after the first epoch whose held-out
    accuracy reaches it; evaluation is not timed.
    """
    model = build(name, seed).to(device).train()
    loss_fn, opt, schedule = _loss_and_optimizer(name, model, epochs.epochs * epochs.steps)
    xs = torch.from_numpy(epochs.x).to(device)
    ys = torch.from_numpy(epochs.y).to(device)  # float 0/1 columns, or int64 class labels
    lengths = torch.from_numpy(epochs.lengths) if epochs.lengths is not None else None
    epoch_s: list[float] = []
    losses: list[float] = []
    accuracies: list[float] = []
    for e in range(epochs.epochs):
        _sync(device)
        start = time.perf_counter()
        total = 0.0
        for s in range(epochs.steps):
            rows = slice(s * epochs.batch, (s + 1) * epochs.batch)
            xb, yb = xs[e, rows], ys[e, rows]
            opt.zero_grad()
            if lengths is not None:
                out = model(xb, lengths[e, rows])
            elif name == "digits_cnn":
                out = model.logits(xb)  # type: ignore[operator]
            else:
                out = model(xb)
            loss = loss_fn(out, yb)
            loss.backward()
            opt.step()
            if schedule is not None:
                schedule.step()
            total += float(loss.item()) * len(xb)
        _sync(device)
        epoch_s.append(time.perf_counter() - start)
        losses.append(total / epochs.rows)
        if epochs.x_test is not None and epochs.y_test is not None:
            accuracies.append(accuracy(model, name, epochs.x_test, epochs.y_test, device))
            if target is not None and accuracies[-1] >= target:
                break
    return {"epoch_s": epoch_s, "losses": losses, "accuracy": accuracies}
