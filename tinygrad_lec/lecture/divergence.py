"""L2 vs KL for one sigmoid perceptron: loss surfaces, Hessians and convexity (REFERENCE 9).

The model is ``y = sigmoid(w x + b)`` with two parameters (w, b), trained on the separable dataset
S: ``x = (-2, -1, 1, 2)``, ``d = (0, 0, 1, 1)``. Two losses, means over the N points:

    L2:  (1/N) sum 1/2 (sigmoid(a_n) - d_n)^2                       a_n = w x_n + b
    KL:  (1/N) sum d_n softplus(-a_n) + (1 - d_n) softplus(a_n)     (binary cross-entropy, stable)

On the grid w, b in [-10, 10] (step 0.1, 201 x 201 points) the experiment evaluates both losses
and their gradient fields with the library's autodiff, all grid points in one graph: ``w`` and
``b`` are Tensors of shape (G,), the pre-activations are (G, N), the loss is (G,), and one
backward of its sum gives every point's gradient (each point's loss depends on its own (w, b)
only). The Hessian comes from the engine too: central differences of autodiff gradient fields,
``H[:, i] = (grad L(theta + h e_i) - grad L(theta - h e_i)) / 2h`` with h = 1e-4, symmetrized (the
engine has no second-order autodiff). It is checked against the closed-form Hessian of
REFERENCE 9, ``H = (1/N) sum h(a_n) phi_n phi_n^T``, implemented here in plain numpy as the
independent oracle. The verdicts (L2 non-convex with plateaus, KL convex) follow REFERENCE 9's
pass/fail rules applied to the engine's numbers.

On the non-separable variant S' the two losses have finite minimizers; the library's Rprop finds
them (full batch, until the gradient norm is below 1e-10) and they differ.
"""

from __future__ import annotations

import argparse
import pathlib
from typing import Any

import numpy as np

from .. import functional as F
from .. import optim
from ..graph import no_grad
from ..tensor import Tensor
from .common import Result, int_range, prepare_out, pyplot, save_figure
from .common import progress as progress_bar

HELP = "L2 vs KL loss surfaces of one sigmoid perceptron: Hessians, convexity, plateaus"
DESCRIPTION = ("The single sigmoid perceptron of REFERENCE 9 on the separable dataset S: the L2 and KL "
               "(binary cross-entropy) loss surfaces over (w, b) in [-10, 10]^2, their gradients by "
               "autodiff, the minimum Hessian eigenvalue on the grid (engine Hessian checked against the "
               "closed form), midpoint convexity tests on random pairs, the plateau of L2, and the "
               "different minimizers of the two losses on the non-separable S'. Prints the verdict "
               "(L2 non-convex with plateaus, KL convex) and REFERENCE 9's table; saves "
               "divergence_surfaces.png and divergence_hessian.png.")

LOSSES = ("l2", "kl")
NAMES = {"l2": "L2", "kl": "KL"}

# The datasets of REFERENCE 9.
X_S, D_S = np.array([-2.0, -1.0, 1.0, 2.0]), np.array([0.0, 0.0, 1.0, 1.0])
X_S_PRIME, D_S_PRIME = np.array([-2.0, -1.0, -0.5, 0.5, 1.0, 2.0]), np.array([0.0, 0.0, 1.0, 0.0, 1.0, 1.0])

GRID_HALF_WIDTH = 10.0
GRID_STEP, QUICK_GRID_STEP, MIN_GRID_STEP = 0.1, 0.5, 0.05
PAIRS, QUICK_PAIRS, MAX_PAIRS = 100_000, 10_000, 1_000_000
HESSIAN_STEP = 1e-4  # central differences of autodiff gradients (REFERENCE 9: h = 1e-4, atol 1e-7)

# REFERENCE 9's thresholds and pass/fail rules.
NEGATIVE_EIGENVALUE = -1e-8        # "fraction of grid with lambda_min < -1e-8"
POSITIVE_VIOLATION = 1e-12         # "L(mid) - avg > 1e-12 in 45.6 % of pairs"
L2_EIGENVALUE_RULE = -1e-3         # L2 non-convex: min lambda_min < -1e-3 ...
L2_VIOLATION_RULE = 1e-3           # ... and at least one midpoint violation > 1e-3
KL_EIGENVALUE_RULE = 1e-12         # KL convex: lambda_min >= -1e-12 max|H| at every grid point ...
KL_VIOLATION_RULE = 1e-10          # ... and every random-pair violation <= 1e-10 (1 + |L|)
GRAD_NORM_STOP = 1e-10             # S' minimizers: Rprop until |grad L| < this

MIDPOINT_P, MIDPOINT_Q = (-10.0, 0.0), (0.0, 0.0)
PLATEAU = (-8.0, 0.0)

# REFERENCE 9's table (measured in float64 against torch 2.13.0), shown beside our numbers.
EXPECTED = {
    "l2": {"min_eigenvalue": -0.13270, "min_eigenvalue_at": (-1.0, 0.0), "negative_fraction": 0.688,
           "midpoint": (0.499977, 0.125000, 0.496642), "midpoint_violation": 0.18415,
           "pairs_positive_fraction": 0.456, "pairs_max_violation": 0.2364,
           "plateau_loss": 0.49983, "plateau_grad_norm": 1.68e-4, "argmin_s_prime": (1.0328, 0.0)},
    "kl": {"min_eigenvalue": 1.53e-7, "negative_fraction": 0.0,
           "midpoint": (15.000023, 0.693147, 7.503380), "midpoint_violation": 7.503380 - 7.846585,
           "pairs_positive_fraction": 0.0, "pairs_max_violation": -2.7e-8,
           "plateau_loss": 12.0002, "plateau_grad_norm": 1.4998, "argmin_s_prime": (1.3511, 0.0)},
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of this experiment beyond --out, --seed, --quick, --no-progress."""
    parser.add_argument("--grid-step", type=_grid_step, default=None,
                        help=f"spacing of the (w, b) grid on [-10, 10]^2; must divide 10 "
                             f"(default {GRID_STEP}; {QUICK_GRID_STEP} with --quick)")
    parser.add_argument("--pairs", type=int_range(1, MAX_PAIRS), default=None,
                        help=f"random pairs for the midpoint convexity test (default {PAIRS}; "
                             f"{QUICK_PAIRS} with --quick)")


def options(args: argparse.Namespace) -> dict[str, Any]:
    return {"grid_step": args.grid_step, "pairs": args.pairs}


def _grid_step(text: str) -> float:
    try:
        step = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    try:
        grid_values(step)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e).removeprefix("divergence: ")) from None
    return step


def grid_values(step: float) -> np.ndarray:
    """The grid's coordinates ``-10, -10 + step, ..., 10``, each the double nearest ``k * step``.

    >>> grid_values(0.5)[:3].tolist(), len(grid_values(0.1))
    ([-10.0, -9.5, -9.0], 201)
    """
    if not (np.isfinite(step) and MIN_GRID_STEP <= step <= GRID_HALF_WIDTH):
        raise ValueError(f"divergence: grid step must be between {MIN_GRID_STEP} and {GRID_HALF_WIDTH}, "
                         f"got {step}")
    n = round(GRID_HALF_WIDTH / step)
    if abs(n * step - GRID_HALF_WIDTH) > 1e-9:
        raise ValueError(f"divergence: grid step must divide {GRID_HALF_WIDTH:g} (e.g. 0.1, 0.25, 0.5), "
                         f"got {step}")
    return np.arange(-n, n + 1) * GRID_HALF_WIDTH / n


# -- the losses, on the engine -----------------------------------------------------------------


def softplus(z: Tensor) -> Tensor:
    """``log(1 + e^z)`` without overflow, composed from Tensor ops:
    ``(z + |z|)/2 + log(1 + e^-|z|)``. Writing max(z, 0) as ``(z + |z|)/2`` (not ``relu``) gives
    autodiff the right slope 1/2 at z = 0, where relu and abs both pass a zero gradient.

    >>> softplus(Tensor([0.0, 800.0, -800.0])).data.round(6).tolist()
    [0.693147, 800.0, 0.0]
    """
    magnitude = z.abs()
    return (z + magnitude) * 0.5 + ((-magnitude).exp() + 1.0).log()


def perceptron_loss(kind: str, w: Tensor, b: Tensor, x: Any = X_S, d: Any = D_S) -> Tensor:
    """The loss of ``y = sigmoid(w x + b)`` on the dataset (x, d), for every (w, b) pair at once:
    ``w`` and ``b`` have one shape S, the result has shape S (a mean over the N points).

    ``kind`` 'l2': ``mean 1/2 (y - d)^2`` (the lecture's L2 divergence, F.l2_divergence per pair);
    'kl': ``mean d softplus(-a) + (1 - d) softplus(a)`` (binary cross-entropy from the logits a).

    >>> round(perceptron_loss("kl", Tensor([0.0]), Tensor([0.0])).item(), 6)
    0.693147
    """
    x, d = np.asarray(x, dtype=np.float64), np.asarray(d, dtype=np.float64)
    a = w.reshape(*w.shape, 1) * x + b.reshape(*b.shape, 1)  # (..., N) pre-activations
    if kind == "l2":
        y = a.sigmoid()
        return F.mse_loss(y, np.broadcast_to(d, y.shape), reduction="none").mean(axis=-1) * 0.5
    if kind == "kl":
        return (softplus(-a) * d + softplus(a) * (1.0 - d)).mean(axis=-1)
    raise ValueError(f"divergence: unknown loss {kind!r}; choose from {LOSSES}")


def loss_and_gradient(kind: str, w: Any, b: Any, x: Any = X_S, d: Any = D_S
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(L, dL/dw, dL/db)`` at every (w, b) pair, by one backward pass over all of them."""
    w = Tensor(np.array(w, dtype=np.float64), requires_grad=True)
    b = Tensor(np.array(b, dtype=np.float64), requires_grad=True)
    loss = perceptron_loss(kind, w, b, x, d)
    loss.sum().backward()  # each pair's loss depends on its own (w, b): the sum's gradient is the field
    return loss.data, w.grad, b.grad


def loss_values(kind: str, w: Any, b: Any, x: Any = X_S, d: Any = D_S) -> np.ndarray:
    """The loss at every (w, b) pair, forward only."""
    with no_grad():
        return perceptron_loss(kind, Tensor(np.array(w, dtype=np.float64)),
                               Tensor(np.array(b, dtype=np.float64)), x, d).data


def hessian_autodiff(kind: str, w: Any, b: Any, x: Any = X_S, d: Any = D_S, step: float = HESSIAN_STEP
                     ) -> np.ndarray:
    """The 2x2 Hessian at every (w, b) pair, shape (..., 2, 2): central differences of the
    autodiff gradient field, ``column i = (g(theta + h e_i) - g(theta - h e_i)) / 2h``, divided by
    the step actually taken (``(w + h) - (w - h)`` in floating point), then symmetrized. Truncation
    error O(h^2), about 1e-9 at h = 1e-4 on this problem."""
    w, b = np.asarray(w, dtype=np.float64), np.asarray(b, dtype=np.float64)

    def gradient(w_: np.ndarray, b_: np.ndarray) -> np.ndarray:
        _, gw, gb = loss_and_gradient(kind, w_, b_, x, d)
        return np.stack([gw, gb], axis=-1)

    columns = []
    for plus, minus, taken in (((w + step, b), (w - step, b), (w + step) - (w - step)),
                               ((w, b + step), (w, b - step), (b + step) - (b - step))):
        columns.append((gradient(*plus) - gradient(*minus)) / taken[..., None])
    H = np.stack(columns, axis=-1)
    return (H + np.swapaxes(H, -1, -2)) / 2


# -- the closed form (the oracle) ---------------------------------------------------------------


def _sigmoid(a: np.ndarray) -> np.ndarray:
    e = np.exp(-np.abs(a))
    return np.where(a >= 0, 1 / (1 + e), e / (1 + e))


def hessian_closed_form(kind: str, w: Any, b: Any, x: Any = X_S, d: Any = D_S) -> np.ndarray:
    """REFERENCE 9's Hessian ``(1/N) sum h(a_n) phi_n phi_n^T`` with ``phi_n = (x_n, 1)``, shape
    (..., 2, 2), in plain numpy: ``h_KL = s (1 - s)``; ``h_L2 = s'^2 + (s - d) s''``, i.e.
    ``s (1 - s)^2 (3 s - 1)`` for d = 1 and ``s^2 (1 - s)(2 - 3 s)`` for d = 0.

    >>> hessian_closed_form("kl", 0.0, 0.0).tolist()
    [[0.625, 0.0], [0.0, 0.25]]
    """
    w, b = np.asarray(w, dtype=np.float64)[..., None], np.asarray(b, dtype=np.float64)[..., None]
    x, d = np.asarray(x, dtype=np.float64), np.asarray(d, dtype=np.float64)
    s = _sigmoid(w * x + b)
    if kind == "kl":
        h = s * (1 - s)
    elif kind == "l2":
        h = s * (1 - s) * ((s - d) * (1 - 2 * s) + s * (1 - s))
    else:
        raise ValueError(f"divergence: unknown loss {kind!r}; choose from {LOSSES}")
    hww, hwb, hbb = (h * x * x).mean(axis=-1), (h * x).mean(axis=-1), h.mean(axis=-1)
    return np.stack([np.stack([hww, hwb], axis=-1), np.stack([hwb, hbb], axis=-1)], axis=-2)


def min_eigenvalue(H: np.ndarray) -> np.ndarray:
    """The smaller eigenvalue of each symmetric 2x2 matrix in ``H`` (..., 2, 2)."""
    return np.linalg.eigvalsh(H)[..., 0]


# -- S': the minimizers ---------------------------------------------------------------------------


def minimize(kind: str, x: Any = X_S_PRIME, d: Any = D_S_PRIME, start: tuple[float, float] = (0.0, 0.0),
             max_steps: int = 5000, tol: float = GRAD_NORM_STOP) -> dict[str, Any]:
    """Minimize the loss over (w, b) with the library's Rprop on the full batch, from ``start``
    until ``|grad L| < tol``. Step sizes may shrink to 1e-12 (torch's default floor 1e-6 would stop
    the iterates about 1e-6 short of the minimizer). Returns the argmin, the loss, the gradient norm
    and the steps taken."""
    w = Tensor(np.array([start[0]], dtype=np.float64), requires_grad=True)
    b = Tensor(np.array([start[1]], dtype=np.float64), requires_grad=True)
    opt = optim.Rprop([w, b], lr=0.01, step_sizes=(1e-12, 1.0))
    for step in range(max_steps + 1):
        opt.zero_grad()
        loss = perceptron_loss(kind, w, b, x, d).sum()
        loss.backward()
        grad_norm = float(np.hypot(w.grad[0], b.grad[0]))
        if grad_norm < tol or step == max_steps:
            break
        opt.step()
    return {"argmin": (float(w.data[0]), float(b.data[0])), "loss": loss.item(), "grad_norm": grad_norm,
            "steps": step}


# -- the experiment ---------------------------------------------------------------------------------


def analyse(kind: str, values: np.ndarray, P: np.ndarray, Q: np.ndarray) -> dict[str, Any]:
    """Everything REFERENCE 9 measures for one loss on S: the grid maps (loss, gradient norm,
    engine and closed-form Hessians, lambda_min), the fixed midpoint test, the random-pair test on
    the pairs (P[i], Q[i]) and the plateau."""
    W, B = np.meshgrid(values, values, indexing="ij")  # W[i, j] = values[i], B[i, j] = values[j]
    loss, gw, gb = loss_and_gradient(kind, W, B)
    H = hessian_autodiff(kind, W, B)
    H_closed = hessian_closed_form(kind, W, B)
    lam = min_eigenvalue(H)
    at = np.unravel_index(np.argmin(lam), lam.shape)

    p, q = np.array(MIDPOINT_P), np.array(MIDPOINT_Q)
    fixed = loss_values(kind, [p[0], q[0], (p[0] + q[0]) / 2], [p[1], q[1], (p[1] + q[1]) / 2])
    M = (P + Q) / 2
    L_p, L_q, L_m = (loss_values(kind, T[:, 0], T[:, 1]) for T in (P, Q, M))
    average = (L_p + L_q) / 2
    violation = L_m - average
    plateau_loss, plateau_gw, plateau_gb = loss_and_gradient(kind, PLATEAU[0], PLATEAU[1])

    return {
        "loss_map": loss, "grad_norm_map": np.hypot(gw, gb), "lambda_min_map": lam,
        "lambda_min_closed_map": min_eigenvalue(H_closed),
        "hessian_error": float(np.abs(H - H_closed).max()),
        "min_eigenvalue": float(lam[at]), "min_eigenvalue_at": (float(W[at]), float(B[at])),
        "min_eigenvalue_closed": float(min_eigenvalue(H_closed).min()),
        "negative_fraction": float(np.mean(lam < NEGATIVE_EIGENVALUE)),
        "eigenvalue_rule_ok": eigenvalue_rule(lam, H),
        "midpoint": tuple(float(v) for v in fixed),
        "midpoint_violation": float(fixed[2] - (fixed[0] + fixed[1]) / 2),
        "pairs_positive_fraction": float(np.mean(violation > POSITIVE_VIOLATION)),
        "pairs_max_violation": float(violation.max()),
        "pairs_rule_ok": midpoint_rule(violation, average),
        "plateau_loss": float(plateau_loss), "plateau_grad_norm": float(np.hypot(plateau_gw, plateau_gb)),
    }


def nonconvexity_rule(min_eigenvalue: float, midpoint_violations: Any) -> bool:
    """REFERENCE 9's L2 rule: non-convexity is shown when ``min lambda_min < -1e-3`` and at least
    one midpoint violation ``L(m) - (L(p) + L(q))/2 > 1e-3``."""
    return bool(min_eigenvalue < L2_EIGENVALUE_RULE
                and np.max(np.asarray(midpoint_violations, dtype=np.float64)) > L2_VIOLATION_RULE)


def eigenvalue_rule(lambda_min: Any, hessians: Any) -> bool:
    """REFERENCE 9's KL rule, first half: ``lambda_min >= -1e-12 max|H|`` at every grid point
    (max|H| of that point's Hessian; ``hessians`` has shape (..., 2, 2))."""
    scale = np.abs(np.asarray(hessians, dtype=np.float64)).max(axis=(-2, -1))
    return bool(np.all(np.asarray(lambda_min) >= -KL_EIGENVALUE_RULE * scale))


def midpoint_rule(violations: Any, averages: Any) -> bool:
    """REFERENCE 9's KL rule, second half: every random-pair violation ``L(m) - avg`` is at most
    ``1e-10 (1 + |L|)``, with L the pair's average ``(L(p) + L(q))/2`` (rounding scales with it)."""
    violations, averages = np.asarray(violations), np.asarray(averages)
    return bool(np.all(violations <= KL_VIOLATION_RULE * (1 + np.abs(averages))))


def verdicts(l2: dict[str, Any], kl: dict[str, Any]) -> tuple[bool, bool]:
    """REFERENCE 9's pass/fail rules on two :func:`analyse` results: (L2 is shown non-convex, KL
    passes both convexity checks)."""
    violations = [l2["midpoint_violation"], l2["pairs_max_violation"]]
    l2_nonconvex = nonconvexity_rule(l2["min_eigenvalue"], violations)
    return l2_nonconvex, kl["eigenvalue_rule_ok"] and kl["pairs_rule_ok"]


def run(out: str | pathlib.Path = "tinygrad_lec_out", seed: int = 0, quick: bool = False,
        progress: bool = True, grid_step: float | None = None, pairs: int | None = None) -> Result:
    """Run REFERENCE 9's experiment; returns the table, the verdicts and every number by name
    (``numbers['l2']``, ``numbers['kl']``: see :func:`analyse`; also the S' minimizers)."""
    out = prepare_out(out)  # a clear error before any work (cli.py has already checked it)
    grid_step = grid_step if grid_step is not None else (QUICK_GRID_STEP if quick else GRID_STEP)
    pairs = pairs if pairs is not None else (QUICK_PAIRS if quick else PAIRS)
    if not 1 <= pairs <= MAX_PAIRS:
        raise ValueError(f"divergence: pairs must be from 1 to {MAX_PAIRS}, got {pairs}")
    values = grid_values(grid_step)
    rng = np.random.default_rng(seed)
    P, Q = (rng.uniform(-GRID_HALF_WIDTH, GRID_HALF_WIDTH, size=(pairs, 2)) for _ in range(2))

    found: dict[str, dict[str, Any]] = {}
    files: list[str] = []

    def measure(kind: str) -> None:
        found[kind] = analyse(kind, values, P, Q)
        found[kind]["s_prime"] = minimize(kind)
        found[kind]["argmin_s_prime"] = found[kind]["s_prime"]["argmin"]

    stages = [lambda: measure("l2"), lambda: measure("kl"),
              lambda: files.append(_plot_surfaces(values, found["l2"], found["kl"],
                                                  out / "divergence_surfaces.png")),
              lambda: files.append(_plot_hessians(values, found["l2"], found["kl"],
                                                  out / "divergence_hessian.png"))]
    for stage in progress_bar(stages, total=len(stages), desc="divergence (L2, KL, plots)",
                              enabled=progress):
        stage()
    l2, kl = found["l2"], found["kl"]
    l2_nonconvex, kl_convex = verdicts(l2, kl)
    argmins_differ = bool(abs(l2["argmin_s_prime"][0] - kl["argmin_s_prime"][0]) > 1e-3)
    n = len(values)
    return Result(
        title=f"divergence: one sigmoid perceptron y = sigmoid(w x + b) on S = "
              f"{{x: -2, -1, 1, 2; d: 0, 0, 1, 1}}: L2 vs KL on a {n} x {n} grid over [-10, 10]^2 "
              f"(step {grid_step:g}), {pairs} random pairs",
        header=["check (REFERENCE 9)", "loss", "REFERENCE 9", "tinygrad_lec"],
        rows=_table(l2, kl), files=files,
        notes=_verdict_lines(l2, kl, l2_nonconvex, kl_convex, argmins_differ),
        numbers={"l2": l2, "kl": kl, "l2_nonconvex": l2_nonconvex, "kl_convex": kl_convex,
                 "argmins_differ": argmins_differ, "grid": values, "grid_step": grid_step, "pairs": pairs})


def _point(p: tuple[float, float], digits: int = 0) -> str:
    return f"({p[0]:.{digits}f}, {p[1] + 0.0:.{digits}f})"


def _table(l2: dict[str, Any], kl: dict[str, Any]) -> list[list[str]]:
    E2, EK = EXPECTED["l2"], EXPECTED["kl"]
    rows = [
        ["min lambda_min over the grid (at (w, b))", "L2",
         f"{E2['min_eigenvalue']:+.5f} at {_point(E2['min_eigenvalue_at'])}",
         f"{l2['min_eigenvalue']:+.5f} at {_point(l2['min_eigenvalue_at'], 1)}"],
        ["", "KL", f"{EK['min_eigenvalue']:+.3g}",
         f"{kl['min_eigenvalue']:+.3g} at {_point(kl['min_eigenvalue_at'], 1)}"],
        ["fraction of grid with lambda_min < -1e-8", "L2", f"{E2['negative_fraction']:.3f}",
         f"{l2['negative_fraction']:.3f}"],
        ["", "KL", "0", f"{kl['negative_fraction']:.3g}"],
    ]
    for name, e, f in (("L2", E2, l2), ("KL", EK, kl)):
        rows.append(["midpoint p=(-10,0), q=(0,0): L(p), L(q), L(m)" if name == "L2" else "", name,
                     ", ".join(f"{v:.6f}" for v in e["midpoint"]),
                     ", ".join(f"{v:.6f}" for v in f["midpoint"])])
    for name, e, f in (("L2", E2, l2), ("KL", EK, kl)):
        rows.append(["  L(m) - (L(p) + L(q))/2" if name == "L2" else "", name,
                     f"{e['midpoint_violation']:+.5f}", f"{f['midpoint_violation']:+.5f}"])
    rows += [
        ["random pairs: share with L(m) - avg > 1e-12", "L2", f"{E2['pairs_positive_fraction']:.1%}",
         f"{l2['pairs_positive_fraction']:.1%}"],
        ["", "KL", "0", f"{kl['pairs_positive_fraction']:.1%}"],
        ["random pairs: max L(m) - avg", "L2", f"{E2['pairs_max_violation']:.4f}",
         f"{l2['pairs_max_violation']:.4f}"],
        ["", "KL", f"{EK['pairs_max_violation']:.2g}", f"{kl['pairs_max_violation']:.2g}"],
        ["plateau at (-8, 0): L, |grad L|", "L2",
         f"{E2['plateau_loss']:.5f}, {E2['plateau_grad_norm']:.2e}",
         f"{l2['plateau_loss']:.5f}, {l2['plateau_grad_norm']:.2e}"],
        ["", "KL", f"{EK['plateau_loss']:.4f}, {EK['plateau_grad_norm']:.4f}",
         f"{kl['plateau_loss']:.4f}, {kl['plateau_grad_norm']:.4f}"],
        ["max |H_engine - H_closed form| on the grid", "L2", "< 1e-7", f"{l2['hessian_error']:.1e}"],
        ["", "KL", "< 1e-7", f"{kl['hessian_error']:.1e}"],
        ["argmin on S' (Rprop, |grad| < 1e-10)", "L2", _point(E2["argmin_s_prime"], 4),
         _point(l2["argmin_s_prime"], 4)],
        ["", "KL", _point(EK["argmin_s_prime"], 4), _point(kl["argmin_s_prime"], 4)],
    ]
    return rows


def _verdict_lines(l2: dict[str, Any], kl: dict[str, Any], l2_nonconvex: bool, kl_convex: bool,
                   argmins_differ: bool) -> list[str]:
    w, b = l2["min_eigenvalue_at"]
    evidence = (f"min eigenvalue {l2['min_eigenvalue']:.4f} at (w,b)=({w:g},{b + 0.0:g}); midpoint violation "
                f"{l2['midpoint_violation']:+.3f}; plateau at ({PLATEAU[0]:g},{PLATEAU[1]:g}): "
                f"|grad| = {l2['plateau_grad_norm']:.2e}")
    l2_line = f"L2: non-convex ({evidence})" if l2_nonconvex else f"L2: non-convexity NOT shown ({evidence})"
    kl_evidence = (f"min eigenvalue {kl['min_eigenvalue']:+.2e} >= -1e-12 max|H| at every point; largest "
                   f"random-pair L(m) - avg {kl['pairs_max_violation']:+.1e} <= 1e-10 (1 + |L|); "
                   f"plateau at ({PLATEAU[0]:g},{PLATEAU[1]:g}): |grad| = {kl['plateau_grad_norm']:.4f}")
    kl_line = (f"KL: convex on the grid ({kl_evidence})" if kl_convex
               else f"KL: convexity check FAILED (min eigenvalue {kl['min_eigenvalue']:+.2e}, largest "
                    f"random-pair L(m) - avg {kl['pairs_max_violation']:+.1e})")
    (w2, b2), (wk, bk) = l2["argmin_s_prime"], kl["argmin_s_prime"]
    s_line = (f"S' (not separable): argmin L2 = ({w2:.4f}, {b2 + 0.0:.4f}), "
              f"argmin KL = ({wk:.4f}, {bk + 0.0:.4f}): "
              + ("the minimizers differ" if argmins_differ else "the minimizers agree"))
    return [l2_line, kl_line, s_line]


# -- plots ------------------------------------------------------------------------------------------


def _log_colorbar(fig: Any, mappable: Any, ax: Any, label: str, low: float, high: float) -> None:
    """A colorbar with plain '1e-3' labels at the decades (matplotlib's default log labels are
    mathtext, slow to lay out)."""
    bar = fig.colorbar(mappable, ax=ax, label=label)
    decades = np.arange(np.ceil(np.log10(low)), np.floor(np.log10(high)) + 1)
    bar.set_ticks(10.0 ** decades, labels=[f"1e{k:+.0f}" for k in decades])
    bar.minorticks_off()


def _plot_surfaces(values: np.ndarray, l2: dict[str, Any], kl: dict[str, Any], path: pathlib.Path) -> str:
    plt = pyplot()
    from matplotlib.colors import LogNorm

    fig, axes = plt.subplots(1, 3, figsize=(17, 5))
    extent = dict(xlabel="w", ylabel="b")
    p, q = MIDPOINT_P, MIDPOINT_Q
    for ax, kind, found in ((axes[0], "l2", l2), (axes[1], "kl", kl)):
        Z = found["loss_map"].T  # rows: b, columns: w
        if kind == "l2":
            cs = ax.contourf(values, values, Z, levels=np.linspace(0, 0.5, 21), cmap="viridis")
            ax.set_title("L2: mean 1/2 (sigmoid(wx+b) - d)^2\nbounded in [0, 1/2]: flat plateaus")
        else:
            levels = np.geomspace(Z.min(), Z.max(), 25)
            cs = ax.contourf(values, values, Z, levels=levels, norm=LogNorm(), cmap="viridis")
            ax.set_title("KL (binary cross-entropy) from the logits\nlog colour scale: convex bowl")
        if kind == "kl":
            _log_colorbar(fig, cs, ax, "loss (log scale)", Z.min(), Z.max())
        else:
            fig.colorbar(cs, ax=ax, label="loss")
        ax.plot([p[0], q[0]], [p[1], q[1]], "w--", lw=1.5, label="midpoint test p-q")
        ax.plot(*PLATEAU, "rx", ms=10, mew=2.5, label=f"plateau ({PLATEAU[0]:g}, {PLATEAU[1]:g})")
        ax.set(**extent, aspect="equal")
        ax.legend(loc="lower right", fontsize=8)

    ax = axes[2]
    mid = len(values) // 2  # b = 0
    w = values
    ax.plot(w, l2["loss_map"][:, mid], color="C0", label="L2(w, 0)")
    ax.plot([p[0], q[0]], [l2["midpoint"][0], l2["midpoint"][1]], "--", color="C0",
            label=f"L2 chord p-q: midpoint {l2['midpoint_violation']:+.3f} above")
    ax.plot([(p[0] + q[0]) / 2] * 2, [(l2["midpoint"][0] + l2["midpoint"][1]) / 2, l2["midpoint"][2]], "-",
            color="red", lw=2.5, label="L2 midpoint violation")
    ax.set(xlabel="w (b = 0)", ylabel="L2 loss", title="slice b = 0 with the midpoint test")
    kl_ax = ax.twinx()
    kl_ax.plot(w, kl["loss_map"][:, mid], color="C1", label="KL(w, 0)")
    kl_ax.plot([p[0], q[0]], [kl["midpoint"][0], kl["midpoint"][1]], "--", color="C1",
               label="KL chord p-q: above the curve")
    kl_ax.set_ylabel("KL loss")
    lines = ax.get_legend_handles_labels()[0] + kl_ax.get_legend_handles_labels()[0]
    ax.legend(lines, [line.get_label() for line in lines], loc="center right", fontsize=8)
    fig.suptitle("One sigmoid perceptron on S: loss surfaces over (w, b)")
    fig.tight_layout()
    return save_figure(fig, path)


def _plot_hessians(values: np.ndarray, l2: dict[str, Any], kl: dict[str, Any], path: pathlib.Path) -> str:
    plt = pyplot()
    from matplotlib.colors import LogNorm, TwoSlopeNorm
    from matplotlib.patches import Patch

    fig, (ax_l2, ax_kl) = plt.subplots(1, 2, figsize=(13, 5.2))
    lam = l2["lambda_min_map"].T
    norm = TwoSlopeNorm(vmin=lam.min(), vcenter=0.0, vmax=max(lam.max(), 1e-6))
    mesh = ax_l2.pcolormesh(values, values, lam, norm=norm, cmap="RdBu", shading="nearest")
    fig.colorbar(mesh, ax=ax_l2, label="λ_min of the Hessian")
    ax_l2.contourf(values, values, lam < NEGATIVE_EIGENVALUE, levels=[0.5, 1.5], colors="none",
                   hatches=["//"])
    ax_l2.contour(values, values, lam, levels=[NEGATIVE_EIGENVALUE], colors="k", linewidths=1)
    w, b = l2["min_eigenvalue_at"]
    ax_l2.plot(w, b, "k*", ms=14, label=f"min {l2['min_eigenvalue']:.4f} at ({w:g}, {b + 0.0:g})")
    handles = [Patch(facecolor="none", hatch="//", edgecolor="k",
                     label=f"λ_min < -1e-8: {l2['negative_fraction']:.1%} of the grid (non-convex)")]
    ax_l2.legend(handles=ax_l2.get_legend_handles_labels()[0] + handles, loc="lower right", fontsize=8)
    ax_l2.set(xlabel="w", ylabel="b", aspect="equal", title="L2: minimum Hessian eigenvalue (red < 0 < blue)")

    lam = kl["lambda_min_map"].T
    mesh = ax_kl.pcolormesh(values, values, lam, norm=LogNorm(vmin=max(lam.min(), 1e-12), vmax=lam.max()),
                            cmap="viridis", shading="nearest")
    _log_colorbar(fig, mesh, ax_kl, "λ_min of the Hessian (log scale)", lam.min(), lam.max())
    w, b = kl["min_eigenvalue_at"]
    ax_kl.plot(w, b, "r*", ms=14, clip_on=False,
               label=f"min {kl['min_eigenvalue']:+.2e} at ({w:g}, {b + 0.0:g}): never < 0")
    ax_kl.legend(loc="lower right", fontsize=8)
    ax_kl.set(xlabel="w", ylabel="b", aspect="equal",
              title="KL: minimum Hessian eigenvalue (all > 0: convex)")
    fig.suptitle("Hessian of the loss (central differences of autodiff gradients, checked against the "
                 "closed form)")
    fig.tight_layout()
    return save_figure(fig, path)
