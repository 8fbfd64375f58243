"""Batch Normalization in practice (REFERENCE 10): the same network trained with and without it, the
lecture's test-time statistics against running averages, and the BatchNorm backprop graph.

The network is a deep sigmoid MLP 2 -> 64 -> 64 -> 64 -> 3 on three interleaved spirals, trained with
SGD (momentum 0.9, lr 0.05, minibatches of 32, the same seed, the same initial Linear weights and the
same batch order for both runs). Without BatchNorm it sits on the plateau at the chance loss ln 3
for tens of epochs: the small initial weights keep every sigmoid near 1/2, so the hidden features
hardly depend on the input and each sigmoid layer shrinks the backward signal by at least 4. With
BatchNorm between each weighted sum and its sigmoid, every layer's pre-activations are re-standardized
per minibatch, the sigmoids work in their sensitive range, and the loss falls from the first epoch.
On the default seed the training loss (eval mode, whole training set) after 210 steps (``quick``)
is 1.13 without and 0.84 with BatchNorm, after 1400 steps 0.78 and 0.078; the mean minibatch loss
of the last epoch is lower with BatchNorm too. Both held for every seed tried (0-9, both settings).

Test time (REFERENCE 10.4): after training, with frozen weights, one train-mode pass over the
training minibatches (equal size B, last partial batch dropped) gives the lecture's statistics
``mu_BN = mean_b mu_b`` and ``sigma2_BN = B/(B-1) mean_b sigma2_b``, computed here with numpy from
each BatchNorm layer's input. ``nn.BatchNorm1d`` with ``momentum=None``, after
``reset_running_stats()`` and the same pass, must hold exactly these (a cumulative average); the
exponential averages (``momentum=0.1``) collected during training differ, since they weight the last
batches most and saw weights that were still moving.
"""

from __future__ import annotations

import argparse
import pathlib
from typing import Any

import numpy as np

from .. import data, nn, optim, viz
from .. import functional as F
from ..graph import no_grad
from .common import BATCH_SIZE, Result, int_range, prepare_out, pyplot, save_figure
from .common import positive_float as _positive_float
from .common import positive_int as _positive_int
from .common import progress as progress_bar

HELP = "the same deep sigmoid MLP trained with and without BatchNorm; test-time statistics"
DESCRIPTION = ("Train the same deep sigmoid MLP (2-64-64-64-3, SGD with momentum, same seed) on spirals "
               "without and with BatchNorm and compare the loss curves (batchnorm_loss.png). Then, with "
               "frozen weights, compute the lecture's test-time statistics (mean of the minibatch means, "
               "B/(B-1) times the mean of the minibatch variances) and compare them with BatchNorm1d's "
               "running statistics for momentum=None (equal) and momentum=0.1 (not). Renders the "
               "lecture's BatchNorm backprop graph (batchnorm_graph.svg, batchnorm_graph_tensor.svg).")

HIDDEN = (64, 64, 64)
N_SAMPLES = 600
N_TRAIN = N_SAMPLES - round(0.25 * N_SAMPLES)  # train_test_split(test_fraction=0.25)
SGD_MOMENTUM = 0.9


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of this experiment beyond --out, --seed, --quick, --no-progress."""
    parser.add_argument("--epochs", type=_positive_int, default=None,
                        help="training epochs per run (default 100; 15 with --quick)")
    parser.add_argument("--lr", type=_positive_float, default=0.05,
                        help=f"SGD learning rate, momentum {SGD_MOMENTUM} (default 0.05)")
    parser.add_argument("--batch-size", type=int_range(2, N_TRAIN, BATCH_SIZE), default=32,
                        help=f"minibatch size, 2 <= B <= {N_TRAIN} (default 32)")


def options(args: argparse.Namespace) -> dict[str, Any]:
    return {"epochs": args.epochs, "lr": args.lr, "batch_size": args.batch_size}


def load(seed: int) -> tuple[np.ndarray, ...]:
    """Spirals (3 arms, noise 0.2): (X_train, X_test, y_train, y_test), 450 / 150 points."""
    X, y = data.make_spirals(N_SAMPLES, n_classes=3, noise=0.2, seed=seed)
    return data.train_test_split(X, y, test_fraction=0.25, seed=seed)


def make_net(batchnorm: bool, seed: int) -> nn.MLP:
    """Linear [-> BatchNorm1d] -> sigmoid blocks, then a Linear to 3 logits. Both variants draw the
    same Linear weights from ``seed`` (BatchNorm adds no random parameters)."""
    return nn.MLP([2, *HIDDEN, 3], activation="sigmoid", batchnorm=batchnorm, seed=seed)


def _loss(net: nn.Module, X: np.ndarray, y: np.ndarray) -> float:
    with no_grad():
        return F.cross_entropy(net(X), y).item()


def _accuracy(net: nn.Module, X: np.ndarray, y: np.ndarray) -> float:
    with no_grad():
        return float((net(X).data.argmax(axis=1) == y).mean())


def train(batchnorm: bool, splits: tuple[np.ndarray, ...], seed: int, epochs: int, lr: float,
          batch_size: int, progress: bool = False) -> dict[str, Any]:
    """SGD (momentum 0.9) on minibatches (drop_last, so every BatchNorm batch has B rows).

    Returns the net and its curves: ``step_loss`` (each minibatch's loss, train mode, what SGD
    sees), ``train_loss``/``test_loss`` (whole sets in eval mode after each epoch)."""
    X_train, X_test, y_train, y_test = splits
    net = make_net(batchnorm, seed)
    opt = optim.SGD(net.parameters(), lr=lr, momentum=SGD_MOMENTUM)
    loader = data.DataLoader(X_train, y_train, batch_size=batch_size, seed=seed, drop_last=True)
    curves: dict[str, list[float]] = {"step_loss": [], "train_loss": [], "test_loss": []}
    name = "with BatchNorm" if batchnorm else "without BatchNorm"
    for _ in progress_bar(range(epochs), total=epochs, desc=f"batchnorm: {name}", enabled=progress):
        net.train()
        for xb, yb in loader:
            loss = F.cross_entropy(net(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            curves["step_loss"].append(loss.item())
        net.eval()
        curves["train_loss"].append(_loss(net, X_train, y_train))
        curves["test_loss"].append(_loss(net, X_test, y_test))
    return {"net": net, "curves": curves, "steps_per_epoch": len(loader)}


def lecture_statistics(net: nn.Module, X: np.ndarray, batch_size: int, seed: int = 0
                         ) -> list[dict[str, np.ndarray]]:
    """The lecture's test-time statistics of every BatchNorm1d in ``net`` (a Sequential), next to
    what ``BatchNorm1d(momentum=None)`` accumulates, from one pass over ``X`` (REFERENCE 10.4).

    With the weights frozen (no optimizer step), each BatchNorm layer is switched to
    ``momentum=None`` and ``reset_running_stats()``; the net runs in train mode over shuffled
    minibatches of exactly ``batch_size`` rows (the last partial batch is dropped, since the lecture's
    B/(B-1) assumes one B). Independently, each layer's input z of every batch is kept and

        mu_BN = (1/N) sum_b mean(z_b),   sigma2_BN = B/(B-1) (1/N) sum_b var(z_b)  (biased var)

    is computed with numpy. Returns one dict per BatchNorm layer with ``lecture_mean``,
    ``lecture_var``, ``running_mean``, ``running_var`` and ``batches``. The layers keep the
    momentum=None statistics (and momentum) afterwards; the net is left in eval mode.

    >>> net = nn.Sequential(nn.Linear(1, 1, bias=False), nn.BatchNorm1d(1))
    >>> net[0].weight.data[...] = 1.0
    >>> (s,) = lecture_statistics(net, np.array([[0.0], [2.0], [4.0], [8.0]]), batch_size=2)
    >>> float(s["lecture_mean"][0]), float(s["running_mean"][0])   # the mean of the two batch means
    (3.5, 3.5)
    """
    layers = list(net)
    bns = [m for m in layers if isinstance(m, nn.BatchNorm1d)]
    means: list[list[np.ndarray]] = [[] for _ in bns]
    variances: list[list[np.ndarray]] = [[] for _ in bns]
    for bn in bns:
        bn.momentum = None
        bn.reset_running_stats()
    net.train()
    loader = data.DataLoader(X, np.zeros(len(X)), batch_size=batch_size, seed=seed, drop_last=True)
    with no_grad():
        for xb, _ in loader:
            h = xb
            for layer in layers:
                if isinstance(layer, nn.BatchNorm1d):
                    k = bns.index(layer)
                    means[k].append(h.data.mean(axis=0))
                    variances[k].append(h.data.var(axis=0))
                h = layer(h)
    net.eval()
    B = batch_size
    return [{"lecture_mean": np.mean(m, axis=0), "lecture_var": B / (B - 1) * np.mean(v, axis=0),
             "running_mean": bn.running_mean.copy(), "running_var": bn.running_var.copy(),
             "batches": len(m)} for bn, m, v in zip(bns, means, variances)]


def compare_statistics(mean: np.ndarray, var: np.ndarray, ref_mean: np.ndarray, ref_var: np.ndarray
                       ) -> dict[str, float]:
    """How far (mean, var) is from (ref_mean, ref_var) where it matters for normalizing: the mean's
    shift in reference standard deviations, max |mean - ref_mean| / sqrt(ref_var), and the
    variance's relative error, max |var / ref_var - 1| (both over neurons).

    >>> c = compare_statistics(np.array([0.2, 0.0]), np.array([1.0, 5.0]), np.zeros(2), np.array([4.0, 4.0]))
    >>> c["mean_shift"], c["var_rel"]
    (0.1, 0.75)
    """
    return {"mean_shift": float(np.max(np.abs(mean - ref_mean) / np.sqrt(ref_var))),
            "var_rel": float(np.max(np.abs(var / ref_var - 1.0)))}


def run(out: str | pathlib.Path = "tinygrad_lec_out", seed: int = 0, quick: bool = False,
        progress: bool = True, epochs: int | None = None, lr: float = 0.05, batch_size: int = 32) -> Result:
    """Train without and with BatchNorm, compare test-time statistics, draw the graphs."""
    if not 2 <= batch_size <= N_TRAIN:
        raise ValueError(f"batchnorm: batch_size must be in [2, {N_TRAIN}] (the training set size), "
                         f"got {batch_size}")
    out = prepare_out(out)  # before any work
    if epochs is None:
        epochs = 15 if quick else 100
    splits = load(seed)
    X_train, X_test, y_train, y_test = splits
    runs = {bn: train(bn, splits, seed, epochs, lr, batch_size, progress) for bn in (False, True)}
    steps = epochs * runs[True]["steps_per_epoch"]
    plain, normed = runs[False]["net"], runs[True]["net"]

    # Test time: the EMA statistics collected while training (momentum 0.1), then the lecture's.
    bns = [m for m in normed if isinstance(m, nn.BatchNorm1d)]
    ema = [(bn.running_mean.copy(), bn.running_var.copy()) for bn in bns]
    normed.eval()
    ema_eval = {"train_loss": _loss(normed, X_train, y_train), "test_loss": _loss(normed, X_test, y_test),
                "test_accuracy": _accuracy(normed, X_test, y_test)}
    stats = lecture_statistics(normed, X_train, batch_size, seed=seed + 1)
    lecture_eval = {"train_loss": _loss(normed, X_train, y_train), "test_loss": _loss(normed, X_test, y_test),
                    "test_accuracy": _accuracy(normed, X_test, y_test)}
    none_vs_lecture = [compare_statistics(s["running_mean"], s["running_var"], s["lecture_mean"],
                                          s["lecture_var"]) for s in stats]
    ema_vs_lecture = [compare_statistics(m, v, s["lecture_mean"], s["lecture_var"])
                      for (m, v), s in zip(ema, stats)]
    worst = {key: max(c[key] for c in none_vs_lecture) for key in ("mean_shift", "var_rel")}
    ema_worst = {key: max(c[key] for c in ema_vs_lecture) for key in ("mean_shift", "var_rel")}

    curves = {("batchnorm" if bn else "plain"): r["curves"] for bn, r in runs.items()}
    files = [_plot_loss(curves, runs[True]["steps_per_epoch"], out / "batchnorm_loss.png"),
             viz.render(viz.batchnorm_graph(batch=3, level="scalar"), out / "batchnorm_graph.svg"),
             viz.render(viz.batchnorm_graph(batch=3, level="tensor"), out / "batchnorm_graph_tensor.svg")]

    def last_epoch(c: dict[str, list[float]]) -> float:
        return float(np.mean(c["step_loss"][-runs[True]["steps_per_epoch"]:]))

    rows = [["no BatchNorm", last_epoch(curves["plain"]), curves["plain"]["train_loss"][-1],
             curves["plain"]["test_loss"][-1], f"{_accuracy(plain, X_test, y_test):.1%}"],
            ["BatchNorm, EMA stats (momentum 0.1)", last_epoch(curves["batchnorm"]), ema_eval["train_loss"],
             ema_eval["test_loss"], f"{ema_eval['test_accuracy']:.1%}"],
            ["BatchNorm, lecture stats (momentum=None)", last_epoch(curves["batchnorm"]),
             lecture_eval["train_loss"], lecture_eval["test_loss"], f"{lecture_eval['test_accuracy']:.1%}"]]
    n_batches = stats[0]["batches"]
    notes = [
        f"test-time statistics from one train-mode pass, frozen weights, {n_batches} minibatches of "
        f"B = {batch_size} (last partial batch dropped), {len(stats)} BatchNorm layers of {HIDDEN[0]}:",
        f"  BatchNorm1d(momentum=None) vs the lecture's mean of mu_b and B/(B-1) * mean of sigma2_b: "
        f"mean off by {worst['mean_shift']:.1e} sd, var by {worst['var_rel']:.1e} (relative): equal",
        f"  EMA (momentum 0.1, from training) vs the lecture's: mean off by up to "
        f"{ema_worst['mean_shift']:.3f} sd, var by up to {ema_worst['var_rel']:.1%}",
        "train loss: whole training set in eval mode; last-epoch loss: mean minibatch loss (train mode, "
        "batch statistics) over the last epoch, higher and noisier with BatchNorm because each output also "
        "depends on the other examples of its minibatch.",
    ]
    return Result(
        title=f"batchnorm: sigmoid MLP 2-{'-'.join(map(str, HIDDEN))}-3 on spirals, SGD lr {lr} momentum "
              f"{SGD_MOMENTUM}, batch {batch_size}, {epochs} epochs = {steps} steps, with and without "
              f"BatchNorm",
        header=["run", "last-epoch loss", "train loss", "test loss", "test accuracy"], rows=rows,
        files=[str(f) for f in files], notes=notes,
        numbers={"epochs": epochs, "steps": steps, "curves": curves,
                 "final_train_loss": {"plain": curves["plain"]["train_loss"][-1],
                                      "batchnorm": ema_eval["train_loss"]},
                 "last_epoch_loss": {"plain": last_epoch(curves["plain"]),
                                     "batchnorm": last_epoch(curves["batchnorm"])},
                 "test_accuracy": {"plain": _accuracy(plain, X_test, y_test),
                                   "batchnorm_ema": ema_eval["test_accuracy"],
                                   "batchnorm_lecture": lecture_eval["test_accuracy"]},
                 "statistics": stats, "ema": ema, "momentum_none_vs_lecture": worst,
                 "ema_vs_lecture": ema_worst})


def _plot_loss(curves: dict[str, dict[str, list[float]]], steps_per_epoch: int, path: pathlib.Path) -> str:
    plt = pyplot()
    fig, (ax_step, ax_epoch) = plt.subplots(1, 2, figsize=(11, 4))
    labels = {"plain": "without BatchNorm", "batchnorm": "with BatchNorm"}
    colors = {"plain": "tab:red", "batchnorm": "tab:blue"}
    for key, c in curves.items():
        steps = np.arange(1, len(c["step_loss"]) + 1)
        ax_step.plot(steps, c["step_loss"], color=colors[key], alpha=0.25, linewidth=0.7)
        smooth = np.convolve(c["step_loss"], np.ones(steps_per_epoch) / steps_per_epoch, mode="valid")
        ax_step.plot(steps[steps_per_epoch - 1:], smooth, color=colors[key],
                     label=f"{labels[key]} (mean of last {steps_per_epoch})")
        epochs = np.arange(1, len(c["train_loss"]) + 1) * steps_per_epoch
        ax_epoch.plot(epochs, c["train_loss"], color=colors[key], label=f"{labels[key]}: train")
        ax_epoch.plot(epochs, c["test_loss"], color=colors[key], linestyle="--", label=f"{labels[key]}: test")
    for ax in (ax_step, ax_epoch):
        ax.axhline(np.log(3), color="gray", linestyle=":", linewidth=1, label="chance, ln 3")
        low, high = ax.get_ylim()
        wide = high > 10 * max(low, 1e-12)  # a log scale only pays off over a decade or more
        ax.set(xlabel="SGD step", ylabel="cross-entropy", yscale="log" if wide else "linear")
        ax.legend(fontsize=8)
    ax_step.set_title("minibatch loss (train mode: what SGD sees)")
    ax_epoch.set_title("whole sets in eval mode, after each epoch")
    fig.suptitle("the same sigmoid MLP, same seed and SGD, without and with BatchNorm")
    fig.tight_layout()
    return save_figure(fig, path)
