"""Hypothesis strategies and assertions for property tests of your own functions.

Needs ``hypothesis`` (``pip install tinygrad-lec[test]``).

>>> from hypothesis import given
>>> from tinygrad_lec import testing
>>> @given(testing.values(-2, 2), testing.values(0.5, 3))
... def test_my_function(x, y):
...     testing.assert_grads_match(lambda x, y: (x * y).tanh() / y, x, y)
>>> test_my_function()

``expressions()`` draws random programs (DAGs that reuse intermediate results) that run on any
number type with the Value interface, which makes an engine-against-reference test three lines.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from . import _check
from .gradcheck import FD_ATOL, FD_EPS, FD_RTOL, gradcheck
from .tensor import Tensor
from .value import Value

__all__ = ["values", "tensors", "shapes", "floats", "expressions", "Expression", "OPS",
           "assert_grads_match"]


def _bounds(op: str, min_value: Any, max_value: Any) -> tuple[float | None, float | None]:
    """Finite bounds (None: unbounded on that side, as in hypothesis) with min_value <= max_value."""
    lo = None if min_value is None else _check.number(op, "min_value", min_value)
    hi = None if max_value is None else _check.number(op, "max_value", max_value)
    if lo is not None and hi is not None and lo > hi:
        raise ValueError(f"{op}: min_value must be <= max_value, got min_value={min_value!r} and "
                         f"max_value={max_value!r}")
    return lo, hi


def floats(min_value: float = -10.0, max_value: float = 10.0) -> st.SearchStrategy[float]:
    """Finite floats in [min_value, max_value] (None: no bound on that side)."""
    lo, hi = _bounds("testing.floats", min_value, max_value)
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False)


def values(min_value: float = -10.0, max_value: float = 10.0) -> st.SearchStrategy[Value]:
    """Leaf :class:`Value` objects with data in [min_value, max_value] (None: no bound on that side)."""
    lo, hi = _bounds("testing.values", min_value, max_value)
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False).map(Value)


def shapes(min_dims: int = 0, max_dims: int = 3, max_side: int = 4) -> st.SearchStrategy[tuple[int, ...]]:
    """Small array shapes (min_dims..max_dims dimensions, at most 32; sides 1..max_side)."""
    min_dims = _check.integer("testing.shapes", "min_dims", min_dims, low=0, high=32)
    max_dims = _check.integer("testing.shapes", "max_dims", max_dims, low=min_dims, high=32)
    max_side = _check.integer("testing.shapes", "max_side", max_side, low=1)
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=1, max_side=max_side)


def tensors(shape: Any = None, min_value: float = -10.0, max_value: float = 10.0, dtype: Any = np.float64,
            requires_grad: bool = True) -> st.SearchStrategy[Tensor]:
    """Leaf :class:`Tensor` objects; ``shape`` None draws a small shape (0 to 3 dimensions),
    a tuple (or an int) fixes it, a strategy draws it. ``dtype``: a floating dtype (float64, float32,
    float16); ``min_value``/``max_value`` finite bounds (None: none on that side)."""
    op = "testing.tensors"
    dtype = _check.float_dtype(op, dtype)
    min_value, max_value = _bounds(op, min_value, max_value)
    requires_grad = _check.flag(op, "requires_grad", requires_grad)
    if shape is None:
        shape = shapes()
    elif not isinstance(shape, st.SearchStrategy):
        fixed = _check.sizes(op, "shape", shape)
        if math.prod(fixed) > _MAX_ELEMENTS:
            raise ValueError(f"{op}: shape {fixed} has {math.prod(fixed)} elements; a drawn tensor may have "
                             f"at most {_MAX_ELEMENTS}")
        shape = st.just(fixed)
    width = 8 * dtype.itemsize
    if width < 64:  # bounds the narrower type cannot hold exactly move inward to ones it can
        given = (min_value, max_value)
        # (compared as Python floats: numpy would cast the bound to the narrow type, inf for 1e300)
        with np.errstate(over="ignore"):  # a bound beyond the type's range moves in to its largest value
            if min_value is not None:
                lo = dtype.type(min_value)
                min_value = float(np.nextafter(lo, dtype.type(np.inf)) if float(lo) < min_value else lo)
            if max_value is not None:
                hi = dtype.type(max_value)
                max_value = float(np.nextafter(hi, dtype.type(-np.inf)) if float(hi) > max_value else hi)
        if not all(b is None or math.isfinite(b) for b in (min_value, max_value)) or (
                min_value is not None and max_value is not None and min_value > max_value):
            raise ValueError(f"{op}: no finite {dtype} value lies in [min_value, max_value] = "
                             f"[{given[0]!r}, {given[1]!r}]")
    elements = st.floats(min_value, max_value, allow_nan=False, allow_infinity=False, width=width)
    return hnp.arrays(dtype, shape, elements=elements).map(lambda a: Tensor(a, requires_grad=requires_grad))


_MAX_ELEMENTS = 10**6  # a fixed shape larger than this is a mistake (hypothesis draws every element)


# Ops for random programs: name -> (arity, how to apply it). Written with operators and Value's
# methods only, so that the same program runs on Values, on Tensors and on any reference number
# type. Each is smooth and defined on all reals (no poles, no kinks), so finite differences
# apply anywhere; KINK_OPS adds the piecewise-linear ones.
OPS: dict[str, tuple[int, Callable[..., Any]]] = {
    "add": (2, lambda a, b: a + b),
    "sub": (2, lambda a, b: a - b),
    "mul": (2, lambda a, b: a * b),
    "div": (2, lambda a, b: a / (b * b + 1.0)),
    "pow": (2, lambda a, b: (a * a + 1.0) ** b.tanh()),
    "neg": (1, lambda a: -a),
    "add_const": (1, lambda a: 0.5 + a),
    "rsub_const": (1, lambda a: 2.0 - a),
    "mul_const": (1, lambda a: a * 0.75),
    "rdiv_const": (1, lambda a: 1.0 / (a * a + 1.0)),
    "square": (1, lambda a: a**2),
    "cube": (1, lambda a: a**3),
    "exp": (1, lambda a: a.tanh().exp()),
    "log": (1, lambda a: (a * a + 1.0).log()),
    "sqrt": (1, lambda a: (a * a + 0.5).sqrt()),
    "tanh": (1, lambda a: a.tanh()),
    "sigmoid": (1, lambda a: a.sigmoid()),
    "rpow": (1, lambda a: 2.0 ** a.tanh()),
}
KINK_OPS: dict[str, tuple[int, Callable[..., Any]]] = {
    "relu": (1, lambda a: a.relu()),
    "abs": (1, lambda a: a.abs()),
}


@dataclass(frozen=True)
class Expression:
    """A straight-line program over ``n_inputs`` inputs; ``steps[k] = (op, operand indices)``.

    Slot i < n_inputs is input i; slot n_inputs + k holds step k's result. Operands index any
    earlier slot, so results are reused (a DAG, not a tree). The output is the last slot.
    """

    n_inputs: int
    steps: tuple[tuple[str, tuple[int, ...]], ...]

    def __post_init__(self) -> None:
        op = "Expression"
        _check.integer(op, "n_inputs", self.n_inputs, low=0)
        if isinstance(self.steps, (str, bytes)) or not isinstance(self.steps, (tuple, list)):
            raise TypeError(f"{op}: steps must be a tuple of (op, operand indices) pairs, got "
                            f"{type(self.steps).__name__}")
        for k, step in enumerate(self.steps):
            if not (isinstance(step, (tuple, list)) and len(step) == 2):
                raise TypeError(f"{op}: step {k} must be an (op, operand indices) pair, got {step!r:.60}")
            name, args = step
            if not isinstance(name, str) or (name not in OPS and name not in KINK_OPS):
                raise ValueError(f"{op}: step {k} has an unknown op {name!r:.40}; known: "
                                 f"{', '.join(sorted({**OPS, **KINK_OPS}))}")
            arity = (OPS.get(name) or KINK_OPS[name])[0]
            if not isinstance(args, (tuple, list)) or len(args) != arity:
                raise ValueError(f"{op}: step {k} ({name}) needs {arity} operand indices, got {args!r:.60}")
            for i in args:
                _check.integer(op, f"an operand index of step {k}", i, low=0, high=self.n_inputs + k - 1)

    def __call__(self, *inputs: Any) -> Any:
        if len(inputs) != self.n_inputs:
            raise ValueError(f"Expression: expected {self.n_inputs} inputs, got {len(inputs)}")
        slots = list(inputs)
        for op, args in self.steps:
            fn = OPS[op][1] if op in OPS else KINK_OPS[op][1]
            slots.append(fn(*(slots[i] for i in args)))
        return slots[-1]

    def __repr__(self) -> str:
        def name(i: int) -> str:
            return f"x{i}" if i < self.n_inputs else f"v{i - self.n_inputs}"

        body = "; ".join(f"v{k} = {op}({', '.join(name(i) for i in args)})"
                         for k, (op, args) in enumerate(self.steps))
        return f"Expression({', '.join(name(i) for i in range(self.n_inputs))}: {body})"


def expressions(max_inputs: int = 3, max_steps: int = 10, kinks: bool = False
                ) -> st.SearchStrategy[Expression]:
    """Random :class:`Expression` DAGs: 1..max_inputs inputs, 1..max_steps ops, reused operands.

    ``kinks=True`` adds relu and abs (fine for exact references, not for finite differences).
    """
    op = "testing.expressions"
    return _expressions(_check.integer(op, "max_inputs", max_inputs, low=1),
                        _check.integer(op, "max_steps", max_steps, low=1), _check.flag(op, "kinks", kinks))


@st.composite
def _expressions(draw: st.DrawFn, max_inputs: int, max_steps: int, kinks: bool) -> Expression:
    ops = dict(OPS, **KINK_OPS) if kinks else OPS
    names = sorted(ops)
    n_inputs = draw(st.integers(1, max_inputs))
    n_steps = draw(st.integers(1, max_steps))
    steps = []
    for k in range(n_steps):
        op = draw(st.sampled_from(names))
        last = n_inputs + k - 1
        # Half the operands are the latest result, so programs grow deep as well as wide.
        operand = st.one_of(st.just(last), st.integers(0, last))
        steps.append((op, tuple(draw(operand) for _ in range(ops[op][0]))))
    return Expression(n_inputs, tuple(steps))


def assert_grads_match(f: Callable[..., Any], *inputs: Any, eps: float = FD_EPS, rtol: float = FD_RTOL,
                       atol: float = FD_ATOL) -> None:
    """Assert that backward's gradients of ``f(*inputs)`` match central finite differences.

    Defaults are REFERENCE.md section 13's float64 policy (h = 1e-6, rtol 1e-6, atol 1e-8).
    Raises :class:`tinygrad_lec.GradcheckError` (an AssertionError) on a mismatch.
    """
    gradcheck(f, list(inputs), eps=eps, atol=atol, rtol=rtol)


def finite(x: float, bound: float = 1e6) -> bool:
    """True when ``x`` is a number of moderate size (useful with ``hypothesis.assume``)."""
    return math.isfinite(x) and abs(x) < bound
