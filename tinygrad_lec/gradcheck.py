"""Gradients from backward vs central finite differences.

    d f / d x_j  ~  (f(x + h e_j) - f(x - h e_j)) / (2 h)

A non-scalar output is reduced to a scalar by a random projection ``sum_k r_k out_k`` (r drawn
once per check), so that every output element takes part and errors cannot cancel out.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from typing import Any

from .graph import Node, no_grad

# Tolerances for autodiff vs central differences in float64, REFERENCE.md section 13.
FD_EPS = 1e-6
FD_RTOL = 1e-6
FD_ATOL = 1e-8


class GradcheckError(AssertionError):
    """backward and finite differences disagree; the message names input, index and both values."""


def _is_array_node(x: Any) -> bool:
    return isinstance(x, Node) and not isinstance(x.data, float)


def _check_inputs(inputs: Sequence[Any]) -> None:
    if not inputs:
        raise ValueError("gradcheck: inputs is empty")
    for i, x in enumerate(inputs):
        if not isinstance(x, Node):
            raise TypeError(f"gradcheck: input {i} must be a Value or Tensor, got {type(x).__name__}")
        if _is_array_node(x):
            if str(x.data.dtype) != "float64":
                raise ValueError(f"gradcheck: input {i} has dtype {x.data.dtype}; finite differences "
                                 "need float64 Tensors")
            if not getattr(x, "requires_grad", False):
                raise ValueError(f"gradcheck: input {i} does not require grad")
        values = x.data if _is_array_node(x) else [x.data]
        if not all(math.isfinite(float(v)) for v in getattr(values, "flat", values)):
            raise ValueError(f"gradcheck: input {i} holds nan or inf; finite differences need finite inputs")
        if not x.is_leaf:
            raise ValueError(f"gradcheck: input {i} is not a leaf (made by op {x.op!r}); pass leaves")


def _flat_size(x: Any) -> int:
    return x.data.size if _is_array_node(x) else 1


def _get(x: Any, j: int) -> float:
    return float(x.data.flat[j]) if _is_array_node(x) else x.data


def _set(x: Any, j: int, v: float) -> None:
    if _is_array_node(x):
        x.data.flat[j] = v
    else:
        x.data = v


def _grad_at(x: Any, j: int) -> float:
    g = x.grad
    if _is_array_node(x):
        return 0.0 if g is None else float(g.flat[j])
    return g


class _Projection:
    """out -> sum_k r_k out_k with r fixed at first use (1 for a single scalar output)."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.weights: Any = None

    def __call__(self, out: Any) -> Any:
        if isinstance(out, (list, tuple)):
            if self.weights is None:
                self.weights = [self.rng.uniform(0.5, 1.5) * self.rng.choice((-1, 1)) for _ in out]
            total = 0.0
            for w, o in zip(self.weights, out):
                total = total + o * w
            return total
        if isinstance(out, Node) and _is_array_node(out) and out.data.size != 1:
            import numpy as np

            if self.weights is None:
                rng = np.random.default_rng(self.rng.randrange(2**32))
                self.weights = rng.uniform(0.5, 1.5, out.data.shape) * rng.choice((-1.0, 1.0), out.data.shape)
            return (out * self.weights).sum()
        return out


def _scalar(x: Any) -> float:
    if isinstance(x, Node):
        return float(x.data) if not _is_array_node(x) else float(x.data.reshape(-1)[0])
    return float(x)


def gradcheck(f: Callable[..., Any], inputs: Sequence[Any], eps: float = FD_EPS, atol: float = 1e-5,
              rtol: float = 1e-3, seed: int = 0) -> bool:
    """Check backward's gradients of ``f(*inputs)`` against central finite differences.

    ``inputs``: leaf Values, or float64 Tensors with ``requires_grad``. Element j of input i
    passes when ``|analytic - numeric| <= atol + rtol * |numeric|``. Returns True; otherwise
    raises :class:`GradcheckError` naming the input, the index, both values and the error.
    The inputs' data and grad are as before when it returns or raises.

    >>> from tinygrad_lec import Value, gradcheck
    >>> gradcheck(lambda a, b: (a * b).tanh() + a.exp(), [Value(0.3), Value(-1.2)])
    True
    """
    inputs = list(inputs)
    _check_inputs(inputs)
    saved = [(x.data.copy() if _is_array_node(x) else x.data, x.grad) for x in inputs]
    project = _Projection(seed)
    try:
        for x in inputs:
            x.grad = None if _is_array_node(x) else 0.0
        out = project(f(*inputs))
        if isinstance(out, Node):
            out.backward()
        for i, x in enumerate(inputs):
            for j in range(_flat_size(x)):
                analytic = _grad_at(x, j)
                x0 = _get(x, j)
                with no_grad():
                    _set(x, j, x0 + eps)
                    f_plus = _scalar(project(f(*inputs)))
                    _set(x, j, x0 - eps)
                    f_minus = _scalar(project(f(*inputs)))
                _set(x, j, x0)
                numeric = (f_plus - f_minus) / (2.0 * eps)
                err = abs(analytic - numeric)
                if not err <= atol + rtol * abs(numeric):
                    name = f" ({x.label!r})" if x.label else ""
                    where = f"index {j}" if _is_array_node(x) else "the scalar"
                    raise GradcheckError(
                        f"gradcheck: input {i}{name}, {where}: backward gives {analytic!r}, central "
                        f"differences (eps={eps}) give {numeric!r}; error {err:.3g} > "
                        f"atol + rtol*|numeric| = {atol + rtol * abs(numeric):.3g}")
    finally:
        for x, (data, grad) in zip(inputs, saved):
            if _is_array_node(x):
                x.data[...] = data  # in place: the caller's array object stays the same
            else:
                x.data = data
            x.grad = grad
    return True
