"""The main job: an MLP with BatchNorm and dropout, trained with Adam on minibatches.

Spirals (3 interleaved arms, 2-D) by default, or scikit-learn's digits (8x8 images). Prints train and
test accuracy, saves the loss and accuracy curves and the lecture's BatchNorm backprop graph.
"""

from __future__ import annotations

import argparse
import pathlib
from typing import Any

import numpy as np

from .. import data, nn, optim, viz
from .. import functional as F
from ..graph import no_grad
from .common import Result, prepare_out, pyplot, save_figure
from .common import positive_float as _positive_float
from .common import positive_int as _positive_int
from .common import progress as progress_bar

HELP = "train an MLP with BatchNorm and dropout using Adam (the main job)"
DESCRIPTION = ("Train an MLP (Linear-BatchNorm-ReLU-Dropout blocks) with Adam on minibatches of a built-in "
               "dataset: spirals by default, or --dataset digits (needs scikit-learn). Prints train and "
               "test accuracy, saves the loss curves (demo_curves.png) and the lecture's BatchNorm backprop "
               "graph (batchnorm_graph.svg).")

DATASETS = ("spirals", "digits")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", choices=DATASETS, default="spirals", help="default spirals")
    parser.add_argument("--epochs", type=_positive_int, default=None,
                        help="training epochs (default 60 for spirals, 30 for digits; 5 with --quick)")
    parser.add_argument("--batch-size", type=_positive_int, default=32, help="minibatch size (default 32)")
    parser.add_argument("--lr", type=_positive_float, default=0.01,
                        help="Adam's learning rate (default 0.01)")


def options(args: argparse.Namespace) -> dict[str, Any]:
    return {"dataset": args.dataset, "epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr}


def load(dataset: str, seed: int, quick: bool) -> tuple[np.ndarray, ...]:
    """(X_train, X_test, y_train, y_test), features standardized with the training statistics."""
    if dataset == "spirals":
        X, y = data.make_spirals(600 if not quick else 300, n_classes=3, noise=0.2, seed=seed)
    elif dataset == "digits":
        X, y = data.load_digits()
    else:
        raise ValueError(f"demo: unknown dataset {dataset!r}; choose from {DATASETS}")
    X_train, X_test, y_train, y_test = data.train_test_split(X, y, test_fraction=0.25, seed=seed)
    mean, std = X_train.mean(axis=0), X_train.std(axis=0) + 1e-8
    return (X_train - mean) / std, (X_test - mean) / std, y_train, y_test


def accuracy(net: nn.Module, X: np.ndarray, y: np.ndarray) -> float:
    with no_grad():
        return float((net(X).data.argmax(axis=1) == y).mean())


def run(out: str | pathlib.Path = "tinygrad_lec_out", seed: int = 0, quick: bool = False,
        progress: bool = True, dataset: str = "spirals", epochs: int | None = None, batch_size: int = 32,
        lr: float = 0.01) -> Result:
    """Train and evaluate; returns the accuracies, the per-epoch curves and the files written."""
    out = prepare_out(out)
    X_train, X_test, y_train, y_test = load(dataset, seed, quick)
    n_classes = int(max(y_train.max(), y_test.max())) + 1
    hidden = [64, 64] if dataset == "spirals" else [128]
    if epochs is None:
        epochs = 5 if quick else (60 if dataset == "spirals" else 30)
    net = nn.MLP([X_train.shape[1], *hidden, n_classes], batchnorm=True, dropout=0.1, seed=seed)
    opt = optim.Adam(net.parameters(), lr=lr)
    loader = data.DataLoader(X_train, y_train, batch_size=batch_size, seed=seed, drop_last=True)

    curves: dict[str, list[float]] = {"train_loss": [], "test_loss": [], "train_acc": [], "test_acc": []}
    for _ in progress_bar(range(epochs), total=epochs, desc=f"demo ({dataset})", enabled=progress):
        net.train()
        losses = []
        for xb, yb in loader:
            loss = F.cross_entropy(net(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        net.eval()
        with no_grad():
            test_loss = F.cross_entropy(net(X_test), y_test).item()
        curves["train_loss"].append(float(np.mean(losses)))
        curves["test_loss"].append(test_loss)
        curves["train_acc"].append(accuracy(net, X_train, y_train))
        curves["test_acc"].append(accuracy(net, X_test, y_test))

    files = [_plot_curves(curves, dataset, out / "demo_curves.png"),
             viz.render(viz.batchnorm_graph(batch=3), out / "batchnorm_graph.svg")]
    train_acc, test_acc = curves["train_acc"][-1], curves["test_acc"][-1]
    rows = [["train", len(y_train), curves["train_loss"][-1], f"{train_acc:.1%}"],
            ["test", len(y_test), curves["test_loss"][-1], f"{test_acc:.1%}"]]
    layers = " -> ".join(str(n) for n in [X_train.shape[1], *hidden, n_classes])
    return Result(
        title=f"demo: MLP {layers} (BatchNorm, dropout 0.1), Adam lr {lr}, batch {batch_size}, "
              f"{epochs} epochs on {dataset}",
        header=["split", "samples", "loss", "accuracy"], rows=rows, files=[str(f) for f in files],
        numbers={"train_accuracy": train_acc, "test_accuracy": test_acc, "curves": curves,
                 "epochs": epochs, "dataset": dataset})


def _plot_curves(curves: dict[str, list[float]], dataset: str, path: pathlib.Path) -> str:
    plt = pyplot()
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.8))
    epochs = np.arange(1, len(curves["train_loss"]) + 1)
    ax_loss.plot(epochs, curves["train_loss"], label="train (minibatch mean, dropout on)")
    ax_loss.plot(epochs, curves["test_loss"], label="test (eval mode)")
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy", title=f"loss on {dataset}", yscale="log")
    ax_loss.legend()
    ax_acc.plot(epochs, curves["train_acc"], label="train")
    ax_acc.plot(epochs, curves["test_acc"], label="test")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", title="accuracy (eval mode)", ylim=(0, 1.02))
    ax_acc.legend()
    fig.tight_layout()
    return save_figure(fig, path)
