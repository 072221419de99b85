"""The digits data set, split the same way for every user: training, parity checks, benchmarks.

scikit-learn ships the 8x8 digits, so nothing is downloaded. numpy and scikit-learn
only: the PyTorch side trains on it, the TF side and the benchmarks read it too.
"""

from __future__ import annotations

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

#: Seed of the held-out split; training never sees the test part.
SPLIT_SEED = 0
TEST_FRACTION = 0.2


def digits_split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """scikit-learn's bundled 8x8 digits as (x_train, y_train, x_test, y_test), x float32 [N, 8, 8] in 0-16."""
    data = load_digits()
    images = data.images.astype(np.float32)
    labels = data.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        images, labels, test_size=TEST_FRACTION, random_state=SPLIT_SEED, stratify=labels
    )
    return x_train, y_train, x_test, y_test
