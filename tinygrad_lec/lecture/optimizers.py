"""SGD, momentum, Nesterov, RMSprop and Adam on two 2-D problems (REFERENCE 2-5).

The problems are the lecture's pictures of why plain gradient descent is slow:

* the ill-conditioned bowl ``f(x, y) = (x^2 + 100 y^2) / 2`` (condition number 100): the gradient
  points mostly *across* the narrow valley, so SGD must keep its step below ``2/100`` to stay stable
  across it and then crawls *along* it. Momentum adds up the consistent component along the valley
  and cancels the oscillating one across; RMSprop and Adam divide each coordinate by its own running
  gradient scale, which on this axis-aligned valley means large steps along and small steps across;
* Rosenbrock's banana ``f(x, y) = (1 - x)^2 + 100 (y - x^2)^2`` (minimum 0 at (1, 1)), a curved
  valley whose floor is almost flat.

Each optimizer is the library's own (``optim.SGD``, ``optim.RMSprop``, ``optim.Adam``, torch's update
rules) on a 2-parameter Tensor; the losses are built from Tensor ops, so the gradients come from
autodiff. Nesterov is torch's form: the parameters it stores and we plot are the look-ahead points
(REFERENCE 3).

Hyperparameters (:data:`HYPERPARAMETERS`) were tuned once and are the same for every seed: momentum
0.9, RMSprop's ``alpha`` 0.99 and Adam's betas (0.9, 0.999) (torch's defaults), and for each
optimizer and problem the learning rate from the grid {1, 1.5, 2, 3, 5, 7} x 10^k that needs the
fewest steps to reach the tolerance and stay below it, in the worst of the starts of seeds 0-7
(on Rosenbrock, an optimizer that never gets there takes the lr with the lowest final loss). So
each row of the table is that optimizer at its best on that problem, not at a shared lr (one lr
would be unstable for some and far too slow for others).

The tuning used the full budgets (1000 steps on the bowl, 5000 on Rosenbrock) and the tolerance
1e-6; ``--quick`` only shortens the Rosenbrock budget (1500 steps).

The starting point is ``(-4, 1)`` on the bowl and ``(-1.2, 1)`` on Rosenbrock, moved by a small
offset drawn from ``np.random.default_rng(seed)``: normal with standard deviation 0.1 on the bowl and
0.05 on Rosenbrock (seed 0 moves it too).

What it shows (seeds 0-19 alike): on the bowl SGD needs about 525 steps, momentum about 165, Nesterov
125 and Adam 165; with momentum 0.9 the error shrinks by at most sqrt(0.9) per step, which is why
momentum's count barely depends on its lr. RMSprop needs about 650: its step is about lr in every
coordinate whatever the gradient's size, so a constant lr either crawls along the valley (small lr)
or never settles at the minimum (large lr). On Rosenbrock, momentum (about 650), Nesterov (1400) and
Adam (2000-3800) converge within 5000 steps; SGD and RMSprop do not (final loss about 5e-5 and 4e-4).
"""

from __future__ import annotations

import argparse
import math
import pathlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import optim
from ..tensor import Tensor
from .common import Result, prepare_out, pyplot, save_figure
from .common import positive_float as _positive_float
from .common import positive_int as _positive_int
from .common import progress as progress_bar

HELP = "SGD, momentum, Nesterov, RMSprop and Adam on an ill-conditioned bowl and on Rosenbrock"
DESCRIPTION = (
    "Run the library's SGD, SGD with momentum 0.9, Nesterov (momentum 0.9), RMSprop (alpha 0.99) and "
    "Adam (betas 0.9, 0.999) on the ill-conditioned bowl (x^2 + 100 y^2)/2 and on Rosenbrock's "
    "function, with autodiff gradients. Each optimizer uses its own learning rate per problem, tuned "
    "once on a grid (the fewest steps to the tolerance over the starts of seeds 0-7) and the same for "
    "every seed. Prints the steps each needs until the loss stays below the tolerance, and the final "
    "loss; saves the trajectories over the contours (optimizers_bowl.png, optimizers_rosenbrock.png) "
    "and the loss against the step (optimizers_loss.png). --seed moves the starting point by a small "
    "random offset (standard deviation 0.1 on the bowl, 0.05 on Rosenbrock).")

OPTIMIZERS = ("SGD", "momentum", "Nesterov", "RMSprop", "Adam")
CONDITION = 100.0  # curvature ratio of the bowl: 1 along the valley (x), 100 across it (y)
TOLERANCE = 1e-6   # loss below which a run counts as converged (both minima are 0)
MOMENTUM = 0.9

# Learning rates, tuned once (see the module docstring); the same for every seed.
HYPERPARAMETERS: dict[str, dict[str, float]] = {
    "bowl": {"SGD": 0.015, "momentum": 0.005, "Nesterov": 0.007, "RMSprop": 0.01, "Adam": 0.3},
    "rosenbrock": {"SGD": 0.002, "momentum": 0.002, "Nesterov": 0.001, "RMSprop": 0.001, "Adam": 0.02},
}


def bowl_loss(w: Tensor) -> Tensor:
    """``(x^2 + 100 y^2) / 2`` for ``w = (x, y)``: an axis-aligned valley, minimum 0 at the origin.
    ``w`` may also stack grids of x and y (shape (2, ...)); the result then has the grid's shape."""
    x, y = w[0], w[1]
    return 0.5 * (x * x + CONDITION * (y * y))


def rosenbrock_loss(w: Tensor) -> Tensor:
    """``(1 - x)^2 + 100 (y - x^2)^2`` for ``w = (x, y)`` (or stacked grids): minimum 0 at (1, 1)."""
    x, y = w[0], w[1]
    along, across = 1 - x, y - x * x
    return along * along + 100 * (across * across)


@dataclass(frozen=True)
class Problem:
    """A 2-D test function with its start, minimum, step budget and plotting window."""

    name: str
    title: str
    loss: Callable[[Tensor], Tensor]
    start: tuple[float, float]
    start_noise: float
    minimum: tuple[float, float]
    steps: int
    quick_steps: int
    xlim: tuple[float, float]
    ylim: tuple[float, float]


PROBLEMS = {
    "bowl": Problem("bowl", f"ill-conditioned bowl (x² + {CONDITION:g} y²)/2", bowl_loss, (-4.0, 1.0), 0.1,
                    (0.0, 0.0), steps=1000, quick_steps=1000, xlim=(-4.6, 1.2), ylim=(-1.4, 1.4)),
    "rosenbrock": Problem("rosenbrock", "Rosenbrock (1 - x)² + 100 (y - x²)²", rosenbrock_loss,
                          (-1.2, 1.0), 0.05, (1.0, 1.0), steps=5000, quick_steps=1500,
                          xlim=(-1.7, 1.6), ylim=(-0.5, 2.0)),
}


def make_optimizer(name: str, params: list[Tensor], lr: float) -> optim.Optimizer:
    """The library optimizer called ``name`` (one of :data:`OPTIMIZERS`) with learning rate ``lr``."""
    if name == "SGD":
        return optim.SGD(params, lr=lr)
    if name == "momentum":
        return optim.SGD(params, lr=lr, momentum=MOMENTUM)
    if name == "Nesterov":
        return optim.SGD(params, lr=lr, momentum=MOMENTUM, nesterov=True)
    if name == "RMSprop":
        return optim.RMSprop(params, lr=lr, alpha=0.99)
    if name == "Adam":
        return optim.Adam(params, lr=lr, betas=(0.9, 0.999))
    raise ValueError(f"optimizers: unknown optimizer {name!r}; choose from {OPTIMIZERS}")


def start_point(problem: Problem, seed: int) -> np.ndarray:
    """The problem's start plus a normal offset of standard deviation ``problem.start_noise``."""
    offset = problem.start_noise * np.random.default_rng(seed).standard_normal(2)
    return np.array(problem.start) + offset


def optimize(problem: Problem, name: str, start: np.ndarray, steps: int, lr: float | None = None
             ) -> tuple[np.ndarray, np.ndarray]:
    """Run ``steps`` updates of optimizer ``name`` from ``start``. Returns the points visited
    (steps + 1, 2) and the loss at each (steps + 1,); a run that blows up stops there."""
    lr = HYPERPARAMETERS[problem.name][name] if lr is None else lr
    w = Tensor(np.array(start, dtype=np.float64), requires_grad=True)
    opt = make_optimizer(name, [w], lr)
    points, losses = [w.data.copy()], []
    with np.errstate(over="ignore", invalid="ignore"):  # a diverging run ends at inf or nan, reported
        for _ in range(steps):
            loss = problem.loss(w)
            losses.append(loss.item())
            if not math.isfinite(losses[-1]):
                break
            opt.zero_grad()
            loss.backward()
            opt.step()
            points.append(w.data.copy())
        else:
            losses.append(problem.loss(w).item())
    return np.array(points[:len(losses)]), np.array(losses)


def steps_to_tolerance(losses: np.ndarray, tolerance: float) -> int | None:
    """The first step k from which the loss stays at or below ``tolerance`` to the end of the run,
    or None if it is above at the end (a run that only passes through the tolerance has not
    converged)."""
    above = np.flatnonzero(~(np.asarray(losses) <= tolerance))
    if len(above) == 0:
        return 0
    k = int(above[-1]) + 1
    return k if k < len(losses) else None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of this experiment beyond --out, --seed, --quick, --no-progress."""
    parser.add_argument("--tolerance", type=_positive_float, default=TOLERANCE,
                        help=f"loss a run must reach and stay below (default {TOLERANCE:g})")
    parser.add_argument("--bowl-steps", type=_positive_int, default=None,
                        help=f"step budget on the bowl (default {PROBLEMS['bowl'].steps})")
    parser.add_argument("--rosenbrock-steps", type=_positive_int, default=None,
                        help=f"step budget on Rosenbrock (default {PROBLEMS['rosenbrock'].steps}, "
                             f"{PROBLEMS['rosenbrock'].quick_steps} with --quick)")


def options(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments of :func:`run` given by the options of :func:`add_arguments`."""
    return {"tolerance": args.tolerance, "bowl_steps": args.bowl_steps,
            "rosenbrock_steps": args.rosenbrock_steps}


def run(out: str | pathlib.Path = "tinygrad_lec_out", seed: int = 0, quick: bool = False,
        progress: bool = True, tolerance: float = TOLERANCE, bowl_steps: int | None = None,
        rosenbrock_steps: int | None = None) -> Result:
    """Run every optimizer on both problems; returns the table, the plots and, in ``numbers``,
    ``steps[problem][optimizer]`` (None: not within the budget), ``final_loss``, ``losses``,
    ``trajectories``, ``start``, ``budget`` and ``tolerance``."""
    out = prepare_out(out)  # a clear error before any work if it cannot be written
    budgets = {"bowl": bowl_steps, "rosenbrock": rosenbrock_steps}
    for name, problem in PROBLEMS.items():
        if budgets[name] is None:
            budgets[name] = problem.quick_steps if quick else problem.steps
    starts = {name: start_point(problem, seed) for name, problem in PROBLEMS.items()}
    trajectories: dict[str, dict[str, np.ndarray]] = {name: {} for name in PROBLEMS}
    losses: dict[str, dict[str, np.ndarray]] = {name: {} for name in PROBLEMS}
    jobs = [(p, o) for p in PROBLEMS for o in OPTIMIZERS]
    for problem_name, opt_name in progress_bar(jobs, total=len(jobs), desc="optimizers", enabled=progress):
        points, loss = optimize(PROBLEMS[problem_name], opt_name, starts[problem_name], budgets[problem_name])
        trajectories[problem_name][opt_name], losses[problem_name][opt_name] = points, loss

    steps = {p: {o: steps_to_tolerance(losses[p][o], tolerance) for o in OPTIMIZERS} for p in PROBLEMS}
    final = {p: {o: float(losses[p][o][-1]) for o in OPTIMIZERS} for p in PROBLEMS}
    rows = []
    for o in OPTIMIZERS:
        row: list[Any] = [o]
        for p in PROBLEMS:
            row += [f"{HYPERPARAMETERS[p][o]:g}", _steps_text(steps[p][o]), final[p][o]]
        rows.append(row)
    header = ["optimizer", "bowl lr", "bowl steps", "bowl final loss",
              "Rosenbrock lr", "Rosenbrock steps", "Rosenbrock final loss"]

    files = [_plot_trajectories(PROBLEMS[p], trajectories[p], steps[p], out / f"optimizers_{p}.png")
             for p in PROBLEMS]
    files.append(_plot_losses(losses, tolerance, out / "optimizers_loss.png"))
    notes = [f"steps: updates until the loss stays below {tolerance:g} for the rest of the budget "
             f"({budgets['bowl']} steps on the bowl, {budgets['rosenbrock']} on Rosenbrock).",
             f"start (seed {seed}): bowl ({starts['bowl'][0]:.3f}, {starts['bowl'][1]:.3f}), Rosenbrock "
             f"({starts['rosenbrock'][0]:.3f}, {starts['rosenbrock'][1]:.3f}). Momentum 0.9, RMSprop alpha "
             f"0.99, Adam betas (0.9, 0.999); learning rates tuned once per optimizer and problem."]
    sgd = steps["bowl"]["SGD"]
    faster = [o for o in ("momentum", "Nesterov", "Adam") if _fewer(steps["bowl"][o], sgd)]
    if sgd is not None and faster:
        notes.append(f"bowl: {', '.join(faster)} converge in fewer steps than plain SGD ({sgd}).")
    return Result(
        title=f"optimizers: steps until the loss stays below {tolerance:g} (seed {seed})",
        header=header, rows=rows, files=[str(f) for f in files], notes=notes,
        numbers={"steps": steps, "final_loss": final, "losses": losses, "trajectories": trajectories,
                 "start": starts, "budget": budgets, "tolerance": tolerance,
                 "learning_rates": HYPERPARAMETERS})


def _fewer(steps: int | None, than: int | None) -> bool:
    return steps is not None and (than is None or steps < than)


def _steps_text(steps: int | None) -> str:
    return "not reached" if steps is None else str(steps)


COLORS = dict(zip(OPTIMIZERS, ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple")))


def _contours(ax: Any, problem: Problem) -> None:
    x = np.linspace(*problem.xlim, 300)
    y = np.linspace(*problem.ylim, 300)
    X, Y = np.meshgrid(x, y)
    Z = problem.loss(Tensor(np.stack([X, Y]))).data
    levels = np.logspace(-2, math.log10(Z.max()), 14)
    ax.contour(X, Y, Z, levels=levels, colors="0.6", linewidths=0.7)
    ax.plot(*problem.minimum, marker="*", color="k", markersize=11, linestyle="none")


def _plot_trajectories(problem: Problem, trajectories: dict[str, np.ndarray], steps: dict[str, int | None],
                       path: pathlib.Path) -> str:
    plt = pyplot()
    fig, axes = plt.subplots(2, 3, figsize=(13, 5.4 if problem.name == "bowl" else 7.3), sharex=True,
                             sharey=True)
    panels = [*OPTIMIZERS, "all"]
    for ax, panel in zip(axes.ravel(), panels):
        _contours(ax, problem)
        names = OPTIMIZERS if panel == "all" else (panel,)
        for name in names:
            pts = trajectories[name]
            inside = _inside(pts, problem)
            ax.plot(pts[:inside, 0], pts[:inside, 1], color=COLORS[name], linewidth=1.2,
                    marker="." if panel != "all" else None, markersize=3, label=name)
        ax.plot(*trajectories[OPTIMIZERS[0]][0], marker="o", color="k", markersize=5, linestyle="none")
        if panel == "all":
            ax.set_title("all five")
            ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8)
        else:
            lr = HYPERPARAMETERS[problem.name][panel]
            budget = len(trajectories[panel]) - 1
            reached = f"{steps[panel]} steps" if steps[panel] is not None else f"not within {budget} steps"
            ax.set_title(f"{panel} (lr {lr:g}): {reached}")
        ax.set(xlim=problem.xlim, ylim=problem.ylim)
        ax.set_aspect("equal")
    for ax in axes[-1]:
        ax.set_xlabel("x")
    for ax in axes[:, 0]:
        ax.set_ylabel("y")
    fig.suptitle(f"{problem.title}: trajectories from the start (black dot) to the minimum (star)")
    fig.tight_layout()
    return save_figure(fig, path)


def _inside(points: np.ndarray, problem: Problem) -> int:
    """How many leading points to draw: all of them, unless the run left the window for good."""
    (x0, x1), (y0, y1) = problem.xlim, problem.ylim
    margin = 10.0
    ok = ((points[:, 0] > x0 - margin) & (points[:, 0] < x1 + margin) & (points[:, 1] > y0 - margin)
          & (points[:, 1] < y1 + margin))
    bad = np.flatnonzero(~ok)
    return len(points) if len(bad) == 0 else int(bad[0]) + 1


def _plot_losses(losses: dict[str, dict[str, np.ndarray]], tolerance: float, path: pathlib.Path) -> str:
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    floor = 1e-30  # exact zeros cannot go on a log axis
    for ax, (name, problem) in zip(axes, PROBLEMS.items()):
        for opt_name in OPTIMIZERS:
            loss = np.maximum(losses[name][opt_name], floor)
            ax.plot(np.arange(len(loss)), loss, color=COLORS[opt_name], label=opt_name, linewidth=1.2)
        ax.axhline(tolerance, color="k", linestyle="--", linewidth=0.8, label=f"tolerance {tolerance:g}")
        ax.set(yscale="log", xlabel="step", ylabel="loss f(x, y)", title=problem.title, ylim=(1e-25, None))
        ax.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)
