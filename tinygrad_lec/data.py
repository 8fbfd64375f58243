"""Toy datasets for the lecture's experiments (numpy arrays; the DataLoader comes with Tensor).

``n_samples`` is the total, as in scikit-learn; ``y`` holds integer class labels.
"""

from __future__ import annotations

import numpy as np


def _check(name: str, n_samples: int, noise: float) -> None:
    if isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer)) or n_samples < 1:
        raise ValueError(f"{name}: n_samples must be a positive int, got {n_samples!r}")
    if not (isinstance(noise, (int, float, np.floating)) and np.isfinite(noise) and noise >= 0):
        raise ValueError(f"{name}: noise must be a finite number >= 0, got {noise!r}")


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
    _check("make_moons", n_samples, noise)
    rng = np.random.default_rng(seed)
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
    _check("make_spirals", n_samples, noise)
    if isinstance(n_classes, bool) or not isinstance(n_classes, (int, np.integer)) or n_classes < 1:
        raise ValueError(f"make_spirals: n_classes must be a positive int, got {n_classes!r}")
    rng = np.random.default_rng(seed)
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
