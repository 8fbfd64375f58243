"""Overfitting and its remedies (REFERENCE 6, 11, 12), and why large weights overfit (REFERENCE 11).

Part 1, overfitting. 60 noisy training points (two moons, noise 0.3), 1000 test points from the same
distribution, and an over-parameterized MLP 2 -> 64 -> 64 -> 2 (ReLU, 4.5k parameters) trained with
full-batch Adam (lr 0.01) long enough to fit the noise. Three runs from the same initial weights:

* none: plain cross-entropy;
* weight decay: the lecture's L2 penalty (lambda/2) sum ||W||^2 on the weights only, biases
  excluded, through the optimizer's parameter groups: ``Adam([{"params": weights,
  "weight_decay": lambda}, {"params": biases, "weight_decay": 0}])``. This is coupled decay
  (lambda W is added to the gradient, the penalty's gradient), not AdamW;
* dropout: inverted dropout with p = 0.5 after each hidden ReLU (REFERENCE 12).

Train loss is measured in eval mode (no dropout) on the whole training set. On the default seed,
weight decay (lambda = 0.01) cuts the total weight norm from 18 to 4.5 and the train-test gap of
the loss from 3.0 to 0.29 after 300 steps (``quick``); after 1000 steps from 20 to 4.4 and from 4.0
to 0.30. That held for every seed tried (0-9 at 300 steps, 0-7 at 1000). Dropout also narrowed the
gap on every seed at 300 steps (seeds 0-9), but not at 1000 steps (three seeds of eight ended
with a larger gap than no regularization), so that is reported, not claimed.

Part 2, weight size and steepness. For sigmoid(w x + b) the slope at the boundary x = -b/w is
|w|/4 and the 10 % -> 90 % transition is 2 ln 9/|w| wide: large weights make sharp boundaries that
can fit noise. Checked with autodiff (the slope) and bisection on the forward (the width). On the
separable set S of REFERENCE 9 (x = -2, -1, 1, 2; d = 0, 0, 1, 1), gradient descent (lr 0.5, from
w = b = 0) on the mean cross-entropy lets w grow like ln k without a penalty (3.38, 5.55, 7.83,
10.13 at k = 1e2 .. 1e5), while with (lambda/2) w^2, lambda = 0.1, it converges to the finite
w* = 1.4578, b* = 0.
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
from ..value import Value
from .common import Result, format_table, prepare_out, pyplot, save_figure
from .common import positive_float as _positive_float
from .common import positive_int as _positive_int
from .common import progress as progress_bar

HELP = "overfitting with no regularization, weight decay and dropout; sigmoid steepness vs |w|"
DESCRIPTION = ("Train an over-parameterized MLP on 60 noisy two-moons points three times (no "
               "regularization, L2 weight decay on the weights only, dropout) and compare train and test "
               "loss, the gap and the weight norm (regularization_curves.png, "
               "regularization_boundaries.png). Then REFERENCE 11: the slope |w|/4 and the 10-90% width "
               "2 ln 9/|w| of sigmoid(w x + b), and gradient descent on a separable set, where w grows "
               "like ln k without a penalty and converges with one (regularization_steepness.png).")

N_TRAIN, N_TEST, NOISE = 60, 1000, 0.3
HIDDEN = (64, 64)
RUNS = ("none", "weight decay", "dropout")

# REFERENCE 9 / 11: the separable set S, gradient descent's step and the L2 coefficient.
S_X = (-2.0, -1.0, 1.0, 2.0)
S_D = (0.0, 0.0, 1.0, 1.0)
S_LR = 0.5
S_LAMBDA = 0.1
STEEPNESS_W = (1.0, 5.0, 20.0)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of this experiment beyond --out, --seed, --quick, --no-progress."""
    parser.add_argument("--steps", type=_positive_int, default=None,
                        help="full-batch Adam steps per run (default 1000; 300 with --quick)")
    parser.add_argument("--lr", type=_positive_float, default=0.01,
                        help="Adam's learning rate (default 0.01)")
    parser.add_argument("--weight-decay", type=_positive_float, default=0.01,
                        help="L2 coefficient lambda on the weights, biases excluded (default 0.01)")
    parser.add_argument("--dropout", type=_probability, default=0.5,
                        help="drop probability p of the dropout run, 0 < p < 1 (default 0.5)")


def options(args: argparse.Namespace) -> dict[str, Any]:
    return {"steps": args.steps, "lr": args.lr, "weight_decay": args.weight_decay, "dropout": args.dropout}


def _probability(text: str) -> float:
    try:
        p = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a probability, got {text!r}") from None
    if not 0 < p < 1:
        raise argparse.ArgumentTypeError(f"expected a probability strictly between 0 and 1, got {text}")
    return p


# -- part 1: overfitting, weight decay, dropout -------------------------------------------------------


def load(seed: int) -> tuple[np.ndarray, ...]:
    """Two moons with noise 0.3: (X_train, X_test, y_train, y_test), 60 / 1000 points."""
    X, y = data.make_moons(N_TRAIN + N_TEST, noise=NOISE, seed=seed)
    return data.train_test_split(X, y, test_fraction=N_TEST / (N_TRAIN + N_TEST), seed=seed)


def weights_and_biases(net: nn.Module) -> tuple[list[Tensor], list[Tensor]]:
    """The Linear weights (penalized) and everything else (biases; not penalized)."""
    named = list(net.named_parameters())
    return ([p for name, p in named if name.endswith("weight")],
            [p for name, p in named if not name.endswith("weight")])


def weight_norm(net: nn.Module) -> float:
    """sqrt(sum_l ||W_l||_F^2) over the weight matrices (biases excluded).

    >>> net = nn.MLP([2, 2], seed=0)
    >>> net[0].weight.data[...] = [[3.0, 0.0], [0.0, 4.0]]
    >>> weight_norm(net)
    5.0
    """
    return math.sqrt(sum(float((w.data ** 2).sum()) for w in weights_and_biases(net)[0]))


def make_net(dropout: float, seed: int) -> nn.MLP:
    """The MLP 2 -> 64 -> 64 -> 2 with ReLU, and dropout p after each hidden layer if p > 0. Its
    initial weights are those of the p = 0 net with the same seed (``nn.MLP`` spends seeds on its
    Dropout layers too, so they are copied over), so every run starts from the same point."""
    net = nn.MLP([2, *HIDDEN, 2], dropout=dropout, seed=seed)
    if dropout > 0:
        reference = nn.MLP([2, *HIDDEN, 2], seed=seed)
        for p, q in zip(net.parameters(), reference.parameters(), strict=True):
            p.data[...] = q.data
    return net


def train(kind: str, splits: tuple[np.ndarray, ...], seed: int, steps: int, lr: float, weight_decay: float,
          dropout: float, eval_every: int, progress: bool = False) -> dict[str, Any]:
    """Full-batch Adam for ``steps`` steps; ``kind`` is one of RUNS. Every ``eval_every`` steps, the
    train and test loss in eval mode. Returns the net and its curves."""
    if kind not in RUNS:
        raise ValueError(f"regularization: unknown run {kind!r}; choose from {RUNS}")
    X_train, X_test, y_train, y_test = splits
    net = make_net(dropout if kind == "dropout" else 0.0, seed)
    weights, biases = weights_and_biases(net)
    decay = weight_decay if kind == "weight decay" else 0.0
    # Coupled L2 on the weights only: the gradient of (lambda/2) sum ||W||^2 (REFERENCE 6).
    opt = optim.Adam([{"params": weights, "weight_decay": decay}, {"params": biases, "weight_decay": 0.0}],
                     lr=lr)
    X = Tensor(X_train)
    curves: dict[str, list[float]] = {"step": [], "train_loss": [], "test_loss": []}
    for step in progress_bar(range(1, steps + 1), total=steps, desc=f"regularization: {kind}",
                             enabled=progress):
        net.train()
        loss = F.cross_entropy(net(X), y_train)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % eval_every == 0 or step == steps:
            net.eval()
            with no_grad():
                curves["step"].append(step)
                curves["train_loss"].append(F.cross_entropy(net(X_train), y_train).item())
                curves["test_loss"].append(F.cross_entropy(net(X_test), y_test).item())
    net.eval()
    with no_grad():
        accuracy = float((net(X_test).data.argmax(axis=1) == y_test).mean())
    train_loss, test_loss = curves["train_loss"][-1], curves["test_loss"][-1]
    return {"net": net, "curves": curves, "train_loss": train_loss, "test_loss": test_loss,
            "gap": test_loss - train_loss, "test_accuracy": accuracy, "weight_norm": weight_norm(net)}


# -- part 2: weight size and sigmoid steepness (REFERENCE 11) -----------------------------------------


def sigmoid_steepness(w: float, b: float = 1.0) -> dict[str, float]:
    """For sigmoid(w x + b): the slope d/dx at the boundary x0 = -b/w by autodiff (Value), and the
    10 % -> 90 % width by bisection on the forward, next to the formulas |w|/4 and 2 ln 9/|w|.

    >>> s = sigmoid_steepness(5.0)
    >>> s["slope"], round(s["width"], 6), round(2 * math.log(9) / 5, 6)
    (1.25, 0.87889, 0.87889)
    """
    if w == 0:
        raise ValueError("sigmoid_steepness: w must be non-zero (w = 0 has no boundary)")
    x0 = -b / w
    x = Value(x0)
    (x * w + b).sigmoid().backward()

    def crossing(p: float) -> float:
        lo, hi = x0 - 60.0 / abs(w), x0 + 60.0 / abs(w)
        for _ in range(200):  # sigmoid(w x + b) is monotone in x: bisection to rounding
            mid = 0.5 * (lo + hi)
            if ((Value(mid) * w + b).sigmoid().data < p) == (w > 0):
                lo = mid
            else:
                hi = mid
        return 0.5 * (lo + hi)

    return {"w": w, "b": b, "boundary": x0, "slope": x.grad, "slope_formula": abs(w) / 4,
            "width": abs(crossing(0.9) - crossing(0.1)), "width_formula": 2 * math.log(9) / abs(w)}


def separable_gd(lam: float, steps: int, lr: float = S_LR, progress: bool = False) -> dict[str, Any]:
    """Gradient descent from w = b = 0 on the separable set S (REFERENCE 9) for one sigmoid unit,
    minimizing the mean cross-entropy plus (lam/2) w^2 (b unpenalized), with Values (autodiff):

        L(w, b) = (1/4) sum_n [d_n softplus(-a_n) + (1 - d_n) softplus(a_n)],  a_n = w x_n + b.

    Returns ``w`` and ``b`` after each step (index k-1 holds step k) and the gradient norm of the
    regularized loss at the final point.

    >>> round(separable_gd(0.1, 300)["w"][-1], 4)
    1.4578
    """
    w, b = Value(0.0, label="w"), Value(0.0, label="b")
    opt = optim.SGD([w, b], lr=lr)

    def loss() -> Value:
        total = Value(0.0)
        for x, d in zip(S_X, S_D):
            a = w * x + b
            softplus = (1.0 + (-a if d else a).exp()).log()  # -log sigmoid(a) if d = 1, -log(1 - sigmoid(a))
            total = total + softplus
        out = total / len(S_X)
        return out + 0.5 * lam * w * w if lam else out

    ws, bs = [], []
    for _ in progress_bar(range(steps), total=steps, desc=f"regularization: GD on S, lambda {lam:g}",
                          enabled=progress):
        opt.zero_grad()
        loss().backward()
        opt.step()
        ws.append(w.data)
        bs.append(b.data)
    opt.zero_grad()
    final = loss()
    final.backward()
    return {"w": ws, "b": bs, "loss": final.data, "grad_norm": math.hypot(w.grad, b.grad)}


# -- the experiment ---------------------------------------------------------------------------------


def run(out: str | pathlib.Path = "tinygrad_lec_out", seed: int = 0, quick: bool = False,
        progress: bool = True, steps: int | None = None, lr: float = 0.01, weight_decay: float = 0.01,
        dropout: float = 0.5) -> Result:
    """Part 1 (three runs) and part 2 (steepness, separable S); returns the table and the numbers."""
    out = prepare_out(out)  # before any work
    if steps is None:
        steps = 300 if quick else 1000
    splits = load(seed)
    runs = {kind: train(kind, splits, seed, steps, lr, weight_decay, dropout, eval_every=10,
                        progress=progress) for kind in RUNS}

    steepness = [sigmoid_steepness(w) for w in STEEPNESS_W]
    gd_steps = 1000 if quick else 100_000
    checkpoints = [k for k in (100, 1000, 10_000, 100_000) if k <= gd_steps]
    free = separable_gd(0.0, gd_steps, progress=progress)
    penalized = separable_gd(S_LAMBDA, 500)

    files = [_plot_curves(runs, out / "regularization_curves.png"),
             _plot_boundaries(runs, splits, out / "regularization_boundaries.png"),
             _plot_steepness(steepness, free, penalized, checkpoints, out / "regularization_steepness.png")]

    rows = [[kind, r["train_loss"], r["test_loss"], r["gap"], f"{r['test_accuracy']:.1%}", r["weight_norm"]]
            for kind, r in runs.items()]
    steep_rows = [[f"{s['w']:g}", f"{s['slope']:.12g}", f"{s['slope_formula']:.12g}",
                   f"{abs(s['slope'] / s['slope_formula'] - 1):.0e}", f"{s['width']:.12g}",
                   f"{s['width_formula']:.12g}", f"{abs(s['width'] / s['width_formula'] - 1):.0e}"]
                  for s in steepness]
    gd_rows = [[f"{k:.0e}", f"{free['w'][k - 1]:.4f}", f"{free['b'][k - 1]:.1e}"] for k in checkpoints]
    notes = [
        f"weight decay: lambda = {weight_decay} on the weights only (Adam parameter groups, coupled L2 = "
        f"gradient of lambda/2 sum ||W||^2; biases 0); dropout: p = {dropout} after each hidden ReLU.",
        "train loss: eval mode (no dropout), whole training set; gap = test loss - train loss; weight norm: "
        "sqrt(sum ||W||_F^2) over the weight matrices.",
        "",
        "REFERENCE 11: sigmoid(w x + 1), slope at the boundary by autodiff, 10%-90% width by bisection",
        format_table(["|w|", "slope", "|w|/4", "rel. error", "width", "2 ln 9/|w|", "rel. error"],
                     steep_rows),
        "",
        f"gradient descent (lr {S_LR}, from w = b = 0) on separable S, mean cross-entropy, no penalty: "
        f"w grows like ln k (REFERENCE 11: 3.38, 5.55, 7.83, 10.13)",
        format_table(["k", "w", "b"], gd_rows),
        f"with (lambda/2) w^2, lambda = {S_LAMBDA}, 500 steps: w* = {penalized['w'][-1]:.6f}, "
        f"b* = {penalized['b'][-1]:.1e}, gradient norm {penalized['grad_norm']:.1e} "
        f"(REFERENCE 11: 1.4578, 0)",
    ]
    return Result(
        title=f"regularization: MLP 2-{'-'.join(map(str, HIDDEN))}-2 on {N_TRAIN} noisy moons "
              f"(noise {NOISE}), full-batch Adam lr {lr}, {steps} steps; test on {N_TEST} points",
        header=["run", "train loss", "test loss", "gap", "test accuracy", "weight norm"], rows=rows,
        files=[str(f) for f in files], notes=notes,
        numbers={"steps": steps,
                 "runs": {kind: {k: v for k, v in r.items() if k != "net"} for kind, r in runs.items()},
                 "steepness": steepness,
                 "separable": {"w": {k: free["w"][k - 1] for k in checkpoints},
                               "b": {k: free["b"][k - 1] for k in checkpoints},
                               "w_star": penalized["w"][-1], "b_star": penalized["b"][-1],
                               "grad_norm": penalized["grad_norm"]}})


def _plot_curves(runs: dict[str, dict[str, Any]], path: pathlib.Path) -> str:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    for (kind, r), color in zip(runs.items(), ("tab:red", "tab:blue", "tab:green")):
        c = r["curves"]
        ax.plot(c["step"], c["test_loss"], color=color, label=f"{kind}: test")
        ax.plot(c["step"], c["train_loss"], color=color, linestyle="--", label=f"{kind}: train")
    ax.set(xlabel="Adam step (full batch)", ylabel="cross-entropy (eval mode)", yscale="log",
           title=f"overfitting {N_TRAIN} noisy points: train (dashed) vs test (solid) loss")
    ax.legend(fontsize=8, ncol=3, loc="lower left")
    fig.tight_layout()
    return save_figure(fig, path)


def _plot_boundaries(runs: dict[str, dict[str, Any]], splits: tuple[np.ndarray, ...],
                     path: pathlib.Path) -> str:
    plt = pyplot()
    X_train, X_test, y_train, y_test = splits
    lo, hi = X_test.min(axis=0) - 0.3, X_test.max(axis=0) + 0.3
    gx, gy = np.meshgrid(np.linspace(lo[0], hi[0], 200), np.linspace(lo[1], hi[1], 200))
    grid = np.stack([gx.ravel(), gy.ravel()], axis=1)
    fig, axes = plt.subplots(1, len(runs), figsize=(5 * len(runs), 4.4), sharey=True)
    for ax, (kind, r) in zip(axes, runs.items()):
        with no_grad():
            prob = r["net"](grid).softmax(axis=1).data[:, 1].reshape(gx.shape)
        filled = ax.contourf(gx, gy, prob, levels=np.linspace(0, 1, 11), cmap="RdBu_r", alpha=0.6)
        ax.contour(gx, gy, prob, levels=[0.5], colors="k", linewidths=1.2)
        ax.scatter(X_test[:, 0], X_test[:, 1], c=y_test, cmap="RdBu_r", s=3, alpha=0.25, vmin=0, vmax=1)
        ax.scatter(X_train[:, 0], X_train[:, 1], c=y_train, cmap="RdBu_r", s=28, edgecolors="k",
                   vmin=0, vmax=1)
        ax.set(title=f"{kind}\ntest loss {r['test_loss']:.2f}, accuracy {r['test_accuracy']:.1%}\n"
                     f"weight norm {r['weight_norm']:.1f}", xlabel="x1")
    axes[0].set_ylabel("x2")
    fig.colorbar(filled, ax=axes, label="P(class 1)", shrink=0.9)
    fig.suptitle(f"decision boundaries (black: P = 0.5); large dots: the {N_TRAIN} training points, "
                 f"small dots: test points", y=1.07)
    return save_figure(fig, path)


def _plot_steepness(steepness: list[dict[str, float]], free: dict[str, Any], penalized: dict[str, Any],
                    checkpoints: list[int], path: pathlib.Path) -> str:
    plt = pyplot()
    fig, (ax_s, ax_w) = plt.subplots(1, 2, figsize=(11, 4.2))
    x = np.linspace(-3, 3, 601)
    for s in steepness:
        w = s["w"]
        ax_s.plot(x, 1 / (1 + np.exp(-w * x)),
                  label=f"|w| = {w:g}: slope {s['slope']:.3g}, width {s['width']:.3g}")
    for level in (0.1, 0.9):
        ax_s.axhline(level, color="gray", linestyle=":", linewidth=1)
    ax_s.text(-3, 0.91, "90%", color="gray", fontsize=8, va="bottom")
    ax_s.text(-3, 0.11, "10%", color="gray", fontsize=8, va="bottom")
    ax_s.set(xlabel="x (distance from the boundary along w)", ylabel="sigmoid(w x)",
             title="large weights make the sigmoid steep")
    ax_s.legend(fontsize=8, loc="center left", bbox_to_anchor=(0.0, 0.7),
                title="slope |w|/4 at the boundary,\n10-90% width 2 ln 9/|w|", title_fontsize=8)
    k = np.arange(1, len(free["w"]) + 1)
    ax_w.plot(k, free["w"], label="no penalty: w grows like ln k")
    kp = np.arange(1, len(penalized["w"]) + 1)
    ax_w.plot(kp, penalized["w"],
              label=f"(λ/2) w², λ = {S_LAMBDA}: converges to w* = {penalized['w'][-1]:.4f}")
    ax_w.axhline(penalized["w"][-1], color="tab:orange", linestyle=":", linewidth=1)
    reference = {100: 3.38, 1000: 5.55, 10_000: 7.83, 100_000: 10.13}
    ks = [c for c in checkpoints if c in reference]
    ax_w.plot(ks, [reference[c] for c in ks], "kx", markersize=8, label="REFERENCE 11")
    ax_w.set(xscale="log", xlabel="gradient-descent step k", ylabel="w",
             title=f"one sigmoid on separable S, GD lr {S_LR}, cross-entropy")
    ax_w.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    return save_figure(fig, path)
