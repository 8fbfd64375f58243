"""Gradients from backward vs central finite differences.

    d f / d x_j  ~  (f(x + h e_j) - f(x - h e_j)) / (2 h)

A non-scalar output is reduced to a scalar by a random projection ``sum_k r_k out_k`` (r drawn
once per check), so that every output element takes part and errors cannot cancel out.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from . import _check
from .graph import Node, no_grad

# Tolerances for autodiff vs central differences in float64, REFERENCE.md section 13.
FD_EPS = 1e-6
FD_RTOL = 1e-6
FD_ATOL = 1e-8


class GradcheckError(AssertionError):
    """backward and finite differences disagree; the message names input, index and both values."""


def _is_array_node(x: Any) -> bool:
    return isinstance(x, Node) and not isinstance(x.data, float)


def _show(x: Any) -> str:
    """A short description of a bad argument: its type and a shortened repr."""
    return f"{type(x).__name__} {_check.show(x)}"


def _as_inputs(inputs: Any) -> list[Any]:
    """The inputs as a list: a list or tuple (any iterable) of nodes, or one node (as torch)."""
    if isinstance(inputs, Node):
        return [inputs]
    if isinstance(inputs, (str, bytes, Mapping, set, frozenset)) or not isinstance(inputs, Iterable):
        raise TypeError(f"gradcheck: inputs must be a list or tuple of Values or Tensors, got "
                        f"{_show(inputs)}")
    return list(inputs)


def _check_inputs(inputs: Sequence[Any]) -> None:
    if not inputs:
        raise ValueError("gradcheck: inputs is empty")
    for i, x in enumerate(inputs):
        if not isinstance(x, Node):
            raise TypeError(f"gradcheck: input {i} must be a Value or Tensor, got {_show(x)}")
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
    """The outputs of f -> sum_k r_k out_k, with r fixed at first use: one weight per scalar
    output and an array of weights per Tensor output of more than one element (a single scalar
    output keeps weight 1). Gives the scalar (``value``) or runs backward through it
    (``backward``: each output seeded with its weights, the leaves' gradients add up)."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.weights: list[Any] | None = None
        self.shapes: list[Any] = []

    def outputs(self, out: Any) -> list[Any]:
        """f's result as a list of nodes, checked (and the weights drawn at the first call)."""
        many = isinstance(out, (list, tuple))
        outs = list(out) if many else [out]
        if not outs or not all(isinstance(o, Node) for o in outs):
            raise TypeError(f"gradcheck: f must return a Value, a Tensor or a non-empty list or tuple of "
                            f"them, got {_show(out)}")
        shapes = [o.data.shape if _is_array_node(o) else None for o in outs]
        if self.weights is None:
            self.shapes = shapes
            if not many:
                self.weights = [self._array(shapes[0]) if shapes[0] is not None and math.prod(shapes[0]) != 1
                                else 1.0]
            else:
                self.weights = [self._array(s) if s is not None and math.prod(s) != 1
                                else self.rng.uniform(0.5, 1.5) * self.rng.choice((-1, 1)) for s in shapes]
        elif shapes != self.shapes:
            raise ValueError(f"gradcheck: f returned outputs of shapes {shapes} at a perturbed point, "
                             f"{self.shapes} at the first call; f must return the same structure every time")
        return outs

    def _array(self, shape: tuple[int, ...]) -> Any:
        import numpy as np

        rng = np.random.default_rng(self.rng.randrange(2**32))
        return rng.uniform(0.5, 1.5, shape) * rng.choice((-1.0, 1.0), shape)

    def value(self, out: Any) -> float:
        import numpy as np

        total = 0.0
        for o, w in zip(self.outputs(out), self.weights or ()):
            if _is_array_node(o):
                total += float(np.sum(np.asarray(o.data, np.float64) * w))
            else:
                total += o.data * w
        return total

    def backward(self, out: Any) -> None:
        import numpy as np

        for o, w in zip(self.outputs(out), self.weights or ()):
            if _is_array_node(o):
                if getattr(o, "requires_grad", False):  # otherwise no input reaches it: gradient 0
                    o.backward(np.broadcast_to(np.asarray(w, np.float64), o.data.shape))
            elif w == 1.0:
                o.backward()
            else:
                (o * w).backward()


def gradcheck(f: Callable[..., Any], inputs: Sequence[Any], eps: float = FD_EPS, atol: float = 1e-5,
              rtol: float = 1e-3, seed: int = 0) -> bool:
    """Check backward's gradients of ``f(*inputs)`` against central finite differences.

    ``inputs``: leaf Values, or float64 Tensors with ``requires_grad`` (a list or tuple; one node
    alone is taken as ``[node]``). ``f`` returns a Value, a Tensor, or a list or tuple of them.
    Element j of input i passes when ``|analytic - numeric| <= atol + rtol * |numeric|``. Returns
    True; otherwise raises :class:`GradcheckError` naming the input, the index, both values and the
    error. The inputs' data and grad are as before when it returns or raises (the Tensors' arrays
    are the same objects, never written: the perturbations go to copies).

    >>> from tinygrad_lec import Value, gradcheck
    >>> gradcheck(lambda a, b: (a * b).tanh() + a.exp(), [Value(0.3), Value(-1.2)])
    True
    """
    _check.function("gradcheck", "f", f)
    inputs = _as_inputs(inputs)
    eps = _check.number("gradcheck", "eps", eps, low=0.0, low_open=True)
    atol = _check.number("gradcheck", "atol", atol, low=0.0)
    rtol = _check.number("gradcheck", "rtol", rtol, low=0.0)
    seed = _check.integer("gradcheck", "seed", seed, low=0)
    _check_inputs(inputs)
    # every input as it was: (node, its data object, a copy of an array's data, its grad)
    saved = [(x, x.data, x.data.copy() if _is_array_node(x) else None, x.grad) for x in inputs]
    project = _Projection(seed)
    try:
        for x, _, copy, _ in saved:
            if copy is not None:
                x.data = copy  # the perturbations go to the copy; the caller's array is never written
            x.grad = None if copy is not None else 0.0
        project.backward(f(*inputs))
        for i, x in enumerate(inputs):
            for j in range(_flat_size(x)):
                analytic = _grad_at(x, j)
                x0 = _get(x, j)
                with no_grad():
                    _set(x, j, x0 + eps)
                    f_plus = project.value(f(*inputs))
                    _set(x, j, x0 - eps)
                    f_minus = project.value(f(*inputs))
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
        for x, data, _, grad in reversed(saved):  # reversed: an input passed twice ends as it was
            x.data = data
            x.grad = grad
    return True
