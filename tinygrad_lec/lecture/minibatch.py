"""Incremental (B = 1), minibatch and full-batch updates on one problem, and the variance of the
minibatch gradient against B (REFERENCE 1).

The problem is logistic regression (``nn.Linear(2, 1)``, a sigmoid and ``F.binary_cross_entropy``)
on ``make_moons(N, noise=0.2)`` with standardized features: convex, with one optimum w* that Newton's
method finds to machine precision (the gradient comes from autodiff; the closed-form Hessian
``A^T diag(p(1-p)) A / N`` serves only as that oracle's second derivative).

Training: plain SGD with the same constant learning rate (0.5) and the same number of epochs for
every batch size, i.e. the same number of per-example gradient evaluations (``epochs * N``), not the
same number of updates: B = 1 makes N updates per epoch, B = N one. ``data.DataLoader`` reshuffles
every epoch and keeps the smaller last batch. A second B = 1 run uses ``InverseTimeLR``, the rate
``0.5 / (1 + k/N)`` after k updates (about 0.5 / (1 + epoch)): SGD on noisy gradients settles only
with a decaying rate (sum of rates infinite, sum of squares finite); with a constant rate it keeps
jumping around the optimum.

Gradient noise: at w* (where the full gradient is 0, so all a minibatch gradient shows is noise),
many random minibatches of each size B are drawn without replacement (``DataLoader`` with
``drop_last``) and each one's mean gradient computed with autodiff. Its variance (the expected
squared distance to the full gradient, summed over the 3 parameters) is compared with sampling
theory without replacement, ``sigma^2 / B * (N - B) / (N - 1)``, where ``sigma^2`` is the variance of
the N per-example gradients (each from autodiff). So ``variance * B / ((N - B)/(N - 1))`` should be
``sigma^2`` for every B; the plain ``sigma^2 / B`` law (sampling with replacement) is drawn too.
"""

from __future__ import annotations

import argparse
import math
import pathlib
from typing import Any

import numpy as np

from .. import data, nn, optim
from .. import functional as F
from ..graph import no_grad
from ..tensor import Tensor
from .common import Result, int_range, prepare_out, pyplot, save_figure
from .common import positive_int as _positive_int
from .common import progress as progress_bar

HELP = "incremental, minibatch and full-batch SGD, and the gradient variance against the batch size"
DESCRIPTION = (
    "Train logistic regression on make_moons with SGD (constant lr 0.5) for the same number of epochs "
    "(the same number of per-example gradients) with batch sizes from 1 (incremental) to N (full batch), "
    "plus B = 1 with an InverseTimeLR (1/k) schedule; measure the variance of the minibatch gradient "
    "at the optimum over many random minibatches (sampling without replacement, autodiff gradients) "
    "and compare it with sigma^2/B (N-B)/(N-1). Prints a table (B, updates per epoch, final loss, "
    "gradient variance, variance x B) and saves minibatch_loss.png and minibatch_variance.png.")

LR = 0.5         # stable for B = 1 on standardized features; the same for every B
NOISE = 0.2      # make_moons noise
PLOTTED_SIZES = (1, 16)  # loss curves drawn besides the full batch; the table shows every size


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of this experiment beyond --out, --seed, --quick, --no-progress."""
    parser.add_argument("--samples", type=int_range(2), default=None,
                        help="training set size N (default 256, 128 with --quick)")
    parser.add_argument("--epochs", type=_positive_int, default=None,
                        help="epochs for every batch size (default 30, 6 with --quick)")
    parser.add_argument("--minibatches", type=int_range(2), default=None,
                        help="random minibatches per batch size for the variance (default 400, 150 with "
                             "--quick)")


def options(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments of :func:`run` given by the options of :func:`add_arguments`."""
    return {"samples": args.samples, "epochs": args.epochs, "minibatches": args.minibatches}


def batch_sizes(n: int) -> list[int]:
    """1, 2, 4, ... below n, then n itself (full batch)."""
    sizes = [2**i for i in range(int(math.log2(n)) + 1) if 2**i < n]
    return sizes + [n]


def moons(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``make_moons(n, noise=0.2)``, features standardized; labels as float64 0/1."""
    X, y = data.make_moons(n, noise=NOISE, seed=seed)
    return (X - X.mean(axis=0)) / X.std(axis=0), y.astype(np.float64)


def loss_of(model: nn.Module, X: Any, y: Any) -> Tensor:
    """Mean binary cross-entropy of ``sigmoid(model(X))`` against the 0/1 labels ``y``."""
    X = X if isinstance(X, Tensor) else Tensor(X)
    y = y if isinstance(y, Tensor) else Tensor(y)
    return F.binary_cross_entropy(model(X).sigmoid(), y.reshape(-1, 1))


def _flat_grad(model: nn.Module) -> np.ndarray:
    return np.concatenate([p.grad.ravel() for p in model.parameters()])


def _set_flat(model: nn.Module, theta: np.ndarray) -> None:
    i = 0
    for p in model.parameters():
        p.data[...] = theta[i:i + p.data.size].reshape(p.data.shape)
        i += p.data.size


def gradient(model: nn.Module, X: Any, y: Any) -> np.ndarray:
    """The gradient of the mean loss over (X, y) at the model's parameters, by autodiff, flattened."""
    model.zero_grad()
    loss_of(model, X, y).backward()
    return _flat_grad(model)


def optimum(X: np.ndarray, y: np.ndarray, iterations: int = 30) -> tuple[np.ndarray, float, float]:
    """Newton's method for the logistic-regression optimum: (w*, L(w*), |gradient at w*|).

    The gradient is autodiff's; the Hessian ``A^T diag(p (1 - p)) A / N`` (A = [X, 1]) is the closed
    form, used only here as an oracle."""
    model = nn.Linear(2, 1, seed=0)
    A = np.hstack([X, np.ones((len(X), 1))])
    theta = np.zeros(3)
    for _ in range(iterations):
        _set_flat(model, theta)
        g = gradient(model, X, y)
        p = 1.0 / (1.0 + np.exp(-A @ theta))
        hessian = A.T @ (A * (p * (1 - p))[:, None]) / len(X)
        theta = theta - np.linalg.solve(hessian, g)
    _set_flat(model, theta)
    g = gradient(model, X, y)
    with no_grad():
        loss = loss_of(model, X, y).item()
    return theta, loss, float(np.linalg.norm(g))


def train(X: np.ndarray, y: np.ndarray, batch_size: int, epochs: int, seed: int,
          inverse_time: bool = False, evals_per_epoch: int = 8) -> dict[str, Any]:
    """SGD at lr :data:`LR` with minibatches of ``batch_size`` for ``epochs`` epochs (the same
    initial weights for every batch size, given ``seed``). The full-data loss is recorded about
    ``evals_per_epoch`` times per epoch: returns ``updates`` (update counts), ``loss`` and ``theta``."""
    model = nn.Linear(2, 1, seed=seed)
    opt = optim.SGD(model.parameters(), lr=LR)
    loader = data.DataLoader(X, y, batch_size=batch_size, shuffle=True, seed=seed + 1)
    per_epoch = len(loader)
    schedule = optim.lr_scheduler.InverseTimeLR(opt, decay=1.0 / per_epoch) if inverse_time else None
    every = max(1, per_epoch // evals_per_epoch)
    # plus log-spaced points, so that the first updates show on a log axis
    early = set(np.unique(np.geomspace(1, epochs * per_epoch, 60).astype(int)).tolist())
    Xt, yt = Tensor(X), Tensor(y)

    def full_loss() -> float:
        with no_grad():
            return loss_of(model, Xt, yt).item()

    updates, losses = [0], [full_loss()]
    k = 0
    for _ in range(epochs):
        for xb, yb in loader:
            loss = loss_of(model, xb, yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            if schedule is not None:
                schedule.step()  # per update: lr_k = LR / (1 + k / per_epoch)
            k += 1
            if k % every == 0 or k % per_epoch == 0 or k in early:
                updates.append(k)
                losses.append(full_loss())
    theta = np.concatenate([p.data.ravel() for p in model.parameters()])
    return {"updates": np.array(updates), "loss": np.array(losses), "updates_per_epoch": per_epoch,
            "theta": theta}


def gradient_variance(X: np.ndarray, y: np.ndarray, theta: np.ndarray, batch_size: int, minibatches: int,
                      seed: int) -> float:
    """``E |g_B - g|^2`` at ``theta``: the mean squared distance between the autodiff gradient of
    ``minibatches`` random minibatches of ``batch_size`` (each drawn without replacement) and the
    full-data gradient g."""
    model = nn.Linear(2, 1, seed=0)  # its weights are replaced by theta
    _set_flat(model, theta)
    full = gradient(model, X, y)
    loader = data.DataLoader(X, y, batch_size=batch_size, shuffle=True, seed=seed, drop_last=True)
    total, count = 0.0, 0
    while count < minibatches:
        for xb, yb in loader:
            total += float(np.sum((gradient(model, xb, yb) - full) ** 2))
            count += 1
            if count == minibatches:
                break
    return total / count


def per_example_variance(X: np.ndarray, y: np.ndarray, theta: np.ndarray) -> float:
    """``sigma^2 = (1/N) sum_i |g_i - g|^2`` over the N per-example autodiff gradients g_i."""
    model = nn.Linear(2, 1, seed=0)  # its weights are replaced by theta
    _set_flat(model, theta)
    grads = np.array([gradient(model, X[i:i + 1], y[i:i + 1]) for i in range(len(X))])
    return float(np.mean(np.sum((grads - grads.mean(axis=0)) ** 2, axis=1)))


def finite_population_factor(n: int, batch_size: int) -> float:
    """``(N - B) / (N - 1)``: how much less a mean of B draws without replacement varies than one
    of B independent draws."""
    return (n - batch_size) / (n - 1)


def run(out: str | pathlib.Path = "tinygrad_lec_out", seed: int = 0, quick: bool = False,
        progress: bool = True, samples: int | None = None, epochs: int | None = None,
        minibatches: int | None = None) -> Result:
    """Train with every batch size, measure the gradient variance; ``numbers`` holds ``sizes``,
    ``variance[B]``, ``sigma2``, ``ratio[B]`` (variance B / factor / sigma^2, 1 in theory),
    ``final_loss[B]``, ``excess[B]`` (L - L*), ``loss_star``, ``curves[B]``, ``inverse_time`` (the
    B = 1 run with the 1/k schedule) and ``epochs``."""
    out = prepare_out(out)  # a clear error before any work if it cannot be written
    n = samples or (128 if quick else 256)
    epochs = epochs or (6 if quick else 30)
    minibatches = minibatches or (150 if quick else 400)
    X, y = moons(n, seed)
    theta_star, loss_star, grad_norm = optimum(X, y)
    sizes = batch_sizes(n)

    jobs: list[tuple[str, int]] = [("train", b) for b in sizes] + [("1/k", 1)]
    jobs += [("variance", b) for b in sizes if b < n]
    curves: dict[int, dict[str, Any]] = {}
    variance: dict[int, float] = {}
    inverse_time: dict[str, Any] = {}
    for kind, b in progress_bar(jobs, total=len(jobs), desc="minibatch", enabled=progress):
        if kind == "train":
            curves[b] = train(X, y, b, epochs, seed)
        elif kind == "1/k":
            inverse_time = train(X, y, 1, epochs, seed, inverse_time=True)
        else:
            variance[b] = gradient_variance(X, y, theta_star, b, minibatches, seed + 2)
    sigma2 = per_example_variance(X, y, theta_star)
    variance[n] = gradient_variance(X, y, theta_star, n, 1, seed + 2)  # 0 up to rounding

    final = {b: float(curves[b]["loss"][-1]) for b in sizes}
    excess = {b: final[b] - loss_star for b in sizes}
    ratio = {b: variance[b] * b / finite_population_factor(n, b) / sigma2 for b in sizes if b < n}
    rows: list[list[Any]] = []
    for b in sizes:
        label = f"{b} (full)" if b == n else str(b)
        scaled = variance[b] * b / finite_population_factor(n, b) if b < n else "n/a"
        rows.append([label, curves[b]["updates_per_epoch"], final[b], excess[b], variance[b],
                     variance[b] * b, scaled])
    inverse_final = float(inverse_time["loss"][-1])
    rows.append(["1, lr 0.5/(1+k/N)", inverse_time["updates_per_epoch"], inverse_final,
                 inverse_final - loss_star, "", "", ""])
    header = ["B", "updates/epoch", "final loss", "L - L*", "grad variance", "variance x B",
              "variance x B / fpc"]

    files = [_plot_losses(curves, inverse_time, loss_star, n, epochs, out / "minibatch_loss.png"),
             _plot_variance(variance, sigma2, n, minibatches, out / "minibatch_variance.png")]
    lo, hi = min(ratio.values()), max(ratio.values())
    notes = [
        f"logistic regression on make_moons(N={n}, noise={NOISE}), SGD lr {LR}, {epochs} epochs for every B "
        f"(the same {epochs * n} per-example gradients); optimum L* = {loss_star:.6f} (Newton, "
        f"|grad| = {grad_norm:.1e}).",
        f"gradient variance at w* over {minibatches} random minibatches per B (without replacement); "
        f"fpc = (N-B)/(N-1). Per-example variance sigma^2 = {sigma2:.4g}; variance x B / fpc / sigma^2 "
        f"ranges over {lo:.2f} to {hi:.2f} (sampling theory: 1).",
        f"B = 1 after {epochs} epochs: L - L* = {excess[1]:.2e} with the constant lr, "
        f"{inverse_final - loss_star:.2e} with the 1/k schedule.",
    ]
    return Result(
        title=f"minibatch: incremental, minibatch and full-batch SGD on make_moons (seed {seed})",
        header=header, rows=rows, files=[str(f) for f in files], notes=notes,
        numbers={"sizes": sizes, "n": n, "epochs": epochs, "variance": variance, "sigma2": sigma2,
                 "ratio": ratio, "final_loss": final, "excess": excess, "loss_star": loss_star,
                 "optimum_grad_norm": grad_norm, "curves": curves, "inverse_time": inverse_time,
                 "inverse_time_excess": inverse_final - loss_star, "minibatches": minibatches})


def _plot_losses(curves: dict[int, dict[str, Any]], inverse_time: dict[str, Any], loss_star: float, n: int,
                 epochs: int, path: pathlib.Path) -> str:
    plt = pyplot()
    fig, (ax_epoch, ax_update) = plt.subplots(1, 2, figsize=(12.5, 4.6), sharey=True)
    sizes = [b for b in sorted(curves) if b in PLOTTED_SIZES or b == n]  # the table has all of them
    cmap = plt.get_cmap("viridis")
    floor = 1e-12
    for i, b in enumerate(sizes):
        c = curves[b]
        color = cmap(0.85 * i / max(1, len(sizes) - 1))
        label = f"B = {b}" + (" (full batch)" if b == n else " (incremental)" if b == 1 else "")
        gap = np.maximum(c["loss"] - loss_star, floor)
        ax_epoch.plot(c["updates"] / c["updates_per_epoch"], gap, color=color, label=label, linewidth=1.2)
        ax_update.plot(np.maximum(c["updates"], 0.5), gap, color=color, label=label, linewidth=1.2)
    c = inverse_time
    gap = np.maximum(c["loss"] - loss_star, floor)
    label = f"B = 1, lr {LR}/(1 + k/N) (1/k)"
    ax_epoch.plot(c["updates"] / c["updates_per_epoch"], gap, color="crimson", linestyle="--", label=label)
    ax_update.plot(np.maximum(c["updates"], 0.5), gap, color="crimson", linestyle="--", label=label)
    ax_epoch.set(xlabel="epoch (N per-example gradients each)", ylabel="L(w) - L*  (full training set)",
                 yscale="log", title=f"excess loss vs epoch (constant lr {LR} unless noted)")
    ax_update.set(xlabel="updates (log scale)", xscale="log", title="excess loss vs number of updates")
    ax_update.set_xlim(left=0.8)
    ax_epoch.legend(fontsize=8)
    ax_update.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    return save_figure(fig, path)


def _plot_variance(variance: dict[int, float], sigma2: float, n: int, minibatches: int,
                   path: pathlib.Path) -> str:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.8, 4.8))
    sizes = np.array([b for b in sorted(variance) if b < n])
    measured = np.array([variance[b] for b in sizes])
    grid = np.unique(np.concatenate([np.geomspace(1, sizes.max(), 200), sizes]))
    ax.plot(grid, sigma2 / grid, color="0.5", linestyle="--", label="σ²/B (with replacement)")
    ax.plot(grid, sigma2 / grid * (n - grid) / (n - 1), color="k",
            label="σ²/B · (N-B)/(N-1) (without replacement)")
    ax.plot(sizes, measured, "o", color="tab:red", label=f"measured, {minibatches} minibatches per B")
    ax.set(xscale="log", yscale="log", xlabel="minibatch size B",
           ylabel="E |g_B - g|²  (summed over the 3 weights)",
           title=f"variance of the minibatch gradient at w* (N = {n})")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)
