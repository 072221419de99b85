"""The training data, drawn once in numpy so both frameworks see the same numbers in the same order.

Every batch both sides train on is decided here: the data, each epoch's order (seeded)
and, for the digits CNN, each batch's random one-pixel shift. A PyTorch loop and a Keras
``fit`` then only slice the arrays they are given. numpy and scikit-learn only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from services.datasets import digits_split

SIMPLENN_ROWS = 1000
SIMPLENN_FEATURES = 10
SIMPLENN_BATCH = 32
DENSE_BATCH = 32
DIGITS_BATCH = 64
#: The article's dense classifier reads 28x28 MNIST images; no download is possible here, so the
#: 8x8 digits are upsampled (nearest neighbour) to 28x28 = 784 features as a local stand-in.
DENSE_SIDE = 28
RNN_FEATURES = 8
RNN_HIDDEN = 32
RNN_MIN_LEN = 5
RNN_MAX_LEN = 50
RNN_BATCH = 32


@dataclass(frozen=True)
class Epochs:
    """Training data already in each epoch's order: ``x[e]`` and ``y[e]`` are epoch ``e``'s rows."""

    x: np.ndarray
    y: np.ndarray
    batch: int
    #: Held-out data for accuracy (the digits), or None.
    x_test: np.ndarray | None = None
    y_test: np.ndarray | None = None
    #: Sequence lengths per epoch row (the RNN), or None.
    lengths: np.ndarray | None = None

    @property
    def epochs(self) -> int:
        return int(self.x.shape[0])

    @property
    def rows(self) -> int:
        return int(self.x.shape[1])

    @property
    def steps(self) -> int:
        """Batches per epoch (the last one may be short, as in a DataLoader and in Keras)."""
        return -(-self.rows // self.batch)


def _orders(rng: np.random.Generator, epochs: int, rows: int) -> np.ndarray:
    return np.stack([rng.permutation(rows) for _ in range(epochs)])


def simplenn(epochs: int, seed: int) -> Epochs:
    """The article's SimpleNN data: 1,000 x 10 standard normal features, random 0/1 labels."""
    rng = np.random.default_rng([seed, 1])
    x = rng.standard_normal((SIMPLENN_ROWS, SIMPLENN_FEATURES)).astype(np.float32)
    y = rng.integers(0, 2, size=(SIMPLENN_ROWS, 1)).astype(np.float32)
    order = _orders(rng, epochs, SIMPLENN_ROWS)
    return Epochs(x[order], y[order], SIMPLENN_BATCH)


def upsample(images: np.ndarray, side: int = DENSE_SIDE) -> np.ndarray:
    """``[N, 8, 8]`` digits (0-16) to ``[N, side * side]`` in [0, 1] by nearest-neighbour upsampling."""
    index = np.arange(side) * images.shape[1] // side
    return (images[:, index][:, :, index] / 16.0).reshape(len(images), side * side).astype(np.float32)


def dense784(epochs: int, seed: int) -> Epochs:
    """The 784 -> 128 -> 10 classifier's data: the digits training split upsampled to 28x28."""
    x_train, y_train, x_test, y_test = digits_split()
    rng = np.random.default_rng([seed, 2])
    order = _orders(rng, epochs, len(x_train))
    x = upsample(x_train)
    return Epochs(x[order], y_train[order], DENSE_BATCH, upsample(x_test), y_test)


def digits(epochs: int, seed: int) -> Epochs:
    """The digits CNN's data: each epoch shuffled, each batch shifted by one random 0-2 pixel offset.

    The same augmentation as ``services/torch_api/train.py`` (pad by one, crop 8x8), drawn
    here once so both frameworks train on identical batches.
    """
    x_train, y_train, x_test, y_test = digits_split()
    rng = np.random.default_rng([seed, 3])
    padded = np.pad(x_train, ((0, 0), (1, 1), (1, 1)))
    xs, ys = [], []
    for order in _orders(rng, epochs, len(x_train)):
        shifted = np.empty_like(x_train)
        for start in range(0, len(order), DIGITS_BATCH):
            idx = order[start : start + DIGITS_BATCH]
            dy, dx = rng.integers(0, 3, size=2)
            shifted[start : start + len(idx)] = padded[idx, dy : dy + 8, dx : dx + 8]
        xs.append(shifted)
        ys.append(y_train[order])
    return Epochs(np.stack(xs), np.stack(ys), DIGITS_BATCH, x_test, y_test)


def sequences(rows: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``rows`` sequences of lengths 5-50, zero-padded: ``(x [rows, 50, 8], lengths [rows], y [rows, 1])``.

    The label says whether the first feature sums above zero over the valid steps, so
    the network must read each sequence to its own end. No valid step is all zeros,
    so Keras' ``Masking(0.0)`` masks exactly the padding.
    """
    rng = np.random.default_rng([seed, 4, rows])
    lengths = rng.integers(RNN_MIN_LEN, RNN_MAX_LEN, size=rows, endpoint=True)
    x = rng.standard_normal((rows, RNN_MAX_LEN, RNN_FEATURES)).astype(np.float32)
    valid = np.arange(RNN_MAX_LEN)[None, :] < lengths[:, None]
    x *= valid[:, :, None]
    y = (x[:, :, 0].sum(axis=1) > 0).astype(np.float32)[:, None]
    return x, lengths.astype(np.int64), y


def rnn(epochs: int, rows: int, seed: int) -> Epochs:
    """The DynamicRNN's training data in each epoch's order."""
    x, lengths, y = sequences(rows, seed)
    order = _orders(np.random.default_rng([seed, 5]), epochs, rows)
    return Epochs(x[order], y[order], RNN_BATCH, lengths=lengths[order])
