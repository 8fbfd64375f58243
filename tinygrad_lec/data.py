"""Minibatches and datasets for the lecture's experiments.

:class:`DataLoader` cuts (X, y) into minibatches of Tensors, reshuffled every epoch (REFERENCE 1).
The datasets are numpy arrays: ``n_samples`` is the total, as in scikit-learn; ``y`` holds integer
class labels.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np

from . import _check
from .tensor import Tensor

__all__ = ["DataLoader", "make_moons", "make_spirals", "load_digits", "train_test_split"]


def _rows(op: str, name: str, a: Any, numeric: bool = False) -> np.ndarray:
    """``a`` (a Tensor or anything numpy takes) as an array of at least one dimension, its rows
    the samples; with ``numeric``, of a real numeric dtype (float, int, bool)."""
    raw = a
    try:
        a = np.asarray(a.data if isinstance(a, Tensor) else a)
    except (TypeError, ValueError) as e:  # ragged nested lists
        raise ValueError(f"{op}: {name} must be an array (equal-length rows), got {type(raw).__name__} "
                         f"{_check.show(raw)} ({e})") from None
    if a.ndim == 0:
        raise TypeError(f"{op}: {name} must be an array with one row per sample, got "
                        f"{type(raw).__name__} {_check.show(raw)}")
    if numeric and a.dtype.kind not in "fiub":
        raise TypeError(f"{op}: {name} must hold real numbers (float, int or bool), got an array of dtype "
                        f"{a.dtype}")
    return a


class DataLoader:
    """Minibatches ``(X_batch, y_batch)`` as Tensors, one epoch per iteration (REFERENCE 1).

    Each epoch takes a fresh permutation of the rows (if ``shuffle``) from a generator seeded once
    with ``seed``, so runs are reproducible and epochs differ; then cuts it into consecutive batches
    of ``batch_size``. The last, smaller batch is kept unless ``drop_last`` (it matters for
    BatchNorm: a batch of one cannot be normalized). ``batch_size=1`` gives incremental
    (stochastic) updates, ``batch_size=len(X)`` full-batch gradient descent. Features keep their
    floating dtype; labels become float64 Tensors holding whole numbers, which
    ``F.cross_entropy`` takes as class indices.

    >>> X, y = make_moons(10, seed=0)
    >>> loader = DataLoader(X, y, batch_size=4, seed=0)
    >>> len(loader), [xb.shape for xb, yb in loader]
    (3, [(4, 2), (4, 2), (2, 2)])
    """

    def __init__(self, X: Any, y: Any, batch_size: int = 32, shuffle: bool = True, seed: Any = None,
                 drop_last: bool = False) -> None:
        X, y = _rows("DataLoader", "X", X, numeric=True), _rows("DataLoader", "y", y, numeric=True)
        if len(X) != len(y):
            raise ValueError(f"DataLoader: X and y need the same number of rows, got shapes {X.shape} "
                             f"and {y.shape}")
        batch_size = _check.positive_int("DataLoader", "batch_size", batch_size)
        shuffle = _check.flag("DataLoader", "shuffle", shuffle)
        drop_last = _check.flag("DataLoader", "drop_last", drop_last)
        self.generator = _check.rng("DataLoader", seed)
        self.X, self.y = X, y
        self.batch_size, self.shuffle, self.drop_last = batch_size, shuffle, drop_last

    def __len__(self) -> int:
        n, b = len(self.X), self.batch_size
        return n // b if self.drop_last else -(-n // b)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        n = len(self.X)
        order = self.generator.permutation(n) if self.shuffle else np.arange(n)
        for i in range(len(self)):
            rows = order[i * self.batch_size:(i + 1) * self.batch_size]
            yield Tensor(self.X[rows]), Tensor(self.y[rows])


def train_test_split(X: Any, y: Any, test_fraction: float = 0.25, seed: Any = None
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Shuffle and split: ``X_train, X_test, y_train, y_test`` (scikit-learn's order).

    >>> X, y = make_moons(8, seed=0)
    >>> [a.shape[0] for a in train_test_split(X, y, 0.25, seed=0)]
    [6, 2, 6, 2]
    """
    X, y = _rows("train_test_split", "X", X), _rows("train_test_split", "y", y)
    if len(X) != len(y):
        raise ValueError(f"train_test_split: X and y need the same number of rows, got shapes {X.shape} "
                         f"and {y.shape}")
    test_fraction = _check.number("train_test_split", "test_fraction", test_fraction, low=0.0, high=1.0,
                                  low_open=True, high_open=True)
    rng = _check.rng("train_test_split", seed)
    n_test = math.ceil(test_fraction * len(X))  # scikit-learn's rounding
    if n_test >= len(X):
        raise ValueError(f"train_test_split: {len(X)} rows with test_fraction {test_fraction} leave no "
                         f"training rows")
    perm = rng.permutation(len(X))
    test, train = perm[:n_test], perm[n_test:]
    return X[train], X[test], y[train], y[test]


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled handwritten digits: X (1797, 64) float64 in [0, 1] (8x8 images, pixel
    values / 16), y (1797,) int64 in 0..9. Needs scikit-learn: ``pip install 'tinygrad-lec[digits]'``.
    """
    try:
        from sklearn.datasets import load_digits as sklearn_digits
    except ImportError:
        raise ImportError("load_digits needs scikit-learn, which is not installed: "
                          "pip install 'tinygrad-lec[digits]' (or pip install scikit-learn)") from None
    X, y = sklearn_digits(return_X_y=True)
    return X.astype(np.float64) / 16.0, y.astype(np.int64)


def _dataset_options(name: str, n_samples: Any, noise: Any, seed: Any
                     ) -> tuple[int, float, np.random.Generator]:
    """n_samples, noise and the generator of a toy dataset, checked."""
    return (_check.positive_int(name, "n_samples", n_samples), _check.number(name, "noise", noise, low=0.0),
            _check.rng(name, seed))


def make_moons(n_samples: int = 100, noise: float = 0.1, seed: int | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaving half circles (scikit-learn's layout): X (n, 2) float64, y (n,) int64.

    Class 0 is the upper arc ``(cos t, sin t)``, class 1 the lower ``(1 - cos t, 1/2 - sin t)``,
    t evenly spaced in [0, pi], plus Gaussian noise of standard deviation ``noise``; rows are
    shuffled.

    >>> X, y = make_moons(10, seed=0)
    >>> X.shape, y.tolist().count(1)
    ((10, 2), 5)
    """
    n_samples, noise, rng = _dataset_options("make_moons", n_samples, noise, seed)
    n_out = n_samples // 2
    n_in = n_samples - n_out
    t_out = np.linspace(0.0, np.pi, n_out)
    t_in = np.linspace(0.0, np.pi, n_in)
    X = np.concatenate([np.stack([np.cos(t_out), np.sin(t_out)], axis=1),
                        np.stack([1.0 - np.cos(t_in), 0.5 - np.sin(t_in)], axis=1)])
    y = np.concatenate([np.zeros(n_out, dtype=np.int64), np.ones(n_in, dtype=np.int64)])
    X += rng.normal(0.0, noise, X.shape)
    perm = rng.permutation(n_samples)
    return X[perm], y[perm]


def make_spirals(n_samples: int = 300, n_classes: int = 3, noise: float = 0.2,
                 seed: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``n_classes`` interleaved spiral arms (the CS231n toy set): X (n, 2), y (n,) int64.

    Arm k holds points ``r (sin u, cos u)`` with r from 0 to 1 and
    ``u = 4 r + 2 pi k / n_classes + noise * N(0, 1)``; samples are split as evenly as possible
    over the classes and shuffled.

    >>> X, y = make_spirals(30, n_classes=3, seed=0)
    >>> X.shape, sorted(set(y.tolist()))
    ((30, 2), [0, 1, 2])
    """
    n_samples, noise, rng = _dataset_options("make_spirals", n_samples, noise, seed)
    n_classes = _check.positive_int("make_spirals", "n_classes", n_classes)
    counts = [n_samples // n_classes + (k < n_samples % n_classes) for k in range(n_classes)]
    Xs, ys = [], []
    for k, n in enumerate(counts):
        r = np.linspace(0.0, 1.0, n)
        u = 4.0 * r + 2.0 * np.pi * k / n_classes + noise * rng.normal(size=n)
        Xs.append(np.stack([r * np.sin(u), r * np.cos(u)], axis=1))
        ys.append(np.full(n, k, dtype=np.int64))
    X, y = np.concatenate(Xs), np.concatenate(ys)
    perm = rng.permutation(n_samples)
    return X[perm], y[perm]
