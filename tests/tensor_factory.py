"""The Tensor op factory: one row of CASES gives an op every property test (issue 3).

What MyGrad's tests/wrappers/uber.py does with two decorator factories, done with a table. A row
(:class:`OpCase`) names an op, the same op in numpy (the forward oracle, also differentiated
numerically), and a hypothesis strategy of :class:`Example` s: operands drawn from a domain kept
away from kinks and poles, shapes mutually broadcastable, and the op's keyword arguments (axis,
keepdims, index, ...). The test modules parametrize the checks below over CASES:

    forward          equals the numpy expression (float64; REFERENCE 13: rtol 1e-12, atol 1e-14)
    gradient         d sum(out * upstream)/d input, for a random upstream gradient of the output's
                     shape, equals central differences (h = 1e-6; rtol 1e-6, atol 1e-8)
    invariants       no input or upstream array mutated by forward or backward; no gradient shares
                     memory with another one, the upstream array or any input; every leaf grad is an
                     array of the leaf's shape and dtype (float32 too); the graph is freed by
                     reference counting alone; inputs that need no gradient build no graph
    torch parity     forward and gradients equal torch's in float64 (tests/test_torch_parity_tensor.py)

A new op gets all of that by adding a row: ``unary("erf", lambda x: x.erf(), scipy.special.erf)``.
"""

from __future__ import annotations

import functools
import gc
import operator
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

import numpy as np
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinygrad_lec as tl
from tinygrad_lec.gradcheck import FD_ATOL, FD_EPS, FD_RTOL

# Examples per property: the brief's ~25-50, never more than the loaded profile allows (dev: 20).
EXAMPLES = min(25, settings().max_examples)
FEW_EXAMPLES = min(5, EXAMPLES)  # structural properties (graph freed, no graph built)

FORWARD_RTOL, FORWARD_ATOL = 1e-12, 1e-14  # REFERENCE 13, single forward in float64


# -- operand domains (hypothesis element strategies) -----------------------------------------------

def floats(lo: float, hi: float) -> st.SearchStrategy[float]:
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False)


def either_sign(lo: float, hi: float) -> st.SearchStrategy[float]:
    """|x| in [lo, hi]: away from a kink or pole at 0."""
    return st.one_of(floats(-hi, -lo), floats(lo, hi))


def off_bounds(*bounds: float, lo: float = -3.0, hi: float = 3.0, gap: float = 2e-3
               ) -> st.SearchStrategy[float]:
    """x in [lo, hi] more than 1e-3 from every bound (clip's kinks, where the gradient jumps
    between 0 and 1): no difference quotient straddles a bound, no float32 rounding crosses one."""
    edges = sorted(bounds)
    pieces = [floats(lo, edges[0] - gap), *(floats(a + gap, b - gap) for a, b in zip(edges, edges[1:])),
              floats(edges[-1] + gap, hi)]
    return st.one_of(*pieces)


REAL = floats(-3.0, 3.0)
WIDE = floats(-10.0, 10.0)  # tanh, sigmoid: saturating, harmless anywhere
POSITIVE = floats(0.1, 3.0)  # log, sqrt, the base of a real power: third derivatives stay < 2e3
DIVISOR = either_sign(0.5, 3.0)  # a pole at 0: |d(1/y)/dy| <= 4
OFF_KINK = either_sign(1e-3, 3.0)  # relu, abs: 1e-3 >> h, so no difference quotient straddles 0
EXPONENT = floats(-2.0, 2.0)
INT_EXPONENT = st.integers(-3, 3)
# Matmul entries: a sum of k products of size <= 1 keeps the rounding error of a central
# difference (~eps |out| / h per output) below FD_ATOL.
UNIT = floats(-1.0, 1.0)
LOGITS = floats(-5.0, 5.0)
UPSTREAM = floats(-2.0, 2.0)

SHAPES = hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=4)
NONEMPTY_SHAPES = hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4)  # at least one axis
ANY_ARRAY = hnp.arrays(np.float64, SHAPES, elements=REAL)
NONEMPTY_ARRAY = hnp.arrays(np.float64, NONEMPTY_SHAPES, elements=REAL)
LOGIT_ARRAY = hnp.arrays(np.float64, NONEMPTY_SHAPES, elements=LOGITS)


def distinct_arrays(shape: tuple[int, ...]) -> st.SearchStrategy[np.ndarray]:
    """Arrays of pairwise distinct values at least 1/64 apart (>> h): max has no ties, and no
    difference quotient moves the maximum."""
    return _distinct(shape).map(lambda a: a / 64.0)


@functools.cache
def _distinct(shape: tuple[int, ...]) -> st.SearchStrategy[np.ndarray]:
    return hnp.arrays(np.int64, shape, elements=st.integers(-400, 400), unique=True)


# -- examples and cases ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Example:
    """Operands of one call. ``kinds[i]`` says what ``args[i]`` becomes: "t" a leaf Tensor
    (float64 array data; the only operands that get gradients), "a" a numpy array constant, "n" a
    number. ``kwargs`` go to the op unchanged (axis, keepdims, index, ...)."""

    args: tuple[Any, ...]
    kinds: str
    kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def tensor_positions(self) -> list[int]:
        return [i for i, k in enumerate(self.kinds) if k == "t"]


@dataclass(frozen=True)
class OpCase:
    """One op: ``op`` on Tensors (and constants), ``reference`` the same on numpy arrays and
    numbers, ``examples`` draws its operands. ``torch_op`` is the op on torch tensors when ``op``
    itself does not work there. ``torch_tol`` is (rtol, atol) for torch parity."""

    name: str
    op: Callable[..., Any]
    reference: Callable[..., Any]
    examples: st.SearchStrategy[Example]
    torch_op: Callable[..., Any] | None = None
    torch_tol: tuple[float, float] = (1e-12, 1e-14)

    def __str__(self) -> str:
        return self.name


# Strategies are built once and reused: building and validating one per draw costs more than drawing.
_MUTUAL_SHAPES = {2: hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=3, max_side=4)}


@functools.cache
def arrays(shape: tuple[int, ...], elements: st.SearchStrategy[float]) -> st.SearchStrategy[np.ndarray]:
    return hnp.arrays(np.float64, shape, elements=elements)


@functools.cache
def numbers(domain: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Python numbers and numpy scalars: both count as numbers."""
    return st.one_of(domain, domain.map(np.float64))


@st.composite
def operands(draw: st.DrawFn, kinds: str, domains: tuple[Any, ...],
             shapes: st.SearchStrategy[list[tuple[int, ...]]] | None = None) -> Example:
    """Arrays and numbers, one element domain each; the arrays' shapes are mutually broadcastable
    (or drawn from ``shapes``)."""
    n_arrays = sum(k != "n" for k in kinds)
    if shapes is not None:
        array_shapes = iter(draw(shapes))
    elif n_arrays > 1:
        array_shapes = iter(draw(_MUTUAL_SHAPES[n_arrays]).input_shapes)
    else:
        array_shapes = iter([draw(SHAPES)])
    args = []
    for kind, domain in zip(kinds, domains):
        if kind == "n":
            args.append(draw(numbers(domain)))
        else:
            args.append(draw(arrays(next(array_shapes), domain)))
    return Example(tuple(args), kinds)


def unary(name: str, op: Callable, reference: Callable, domain: Any = REAL) -> list[OpCase]:
    return [OpCase(name, op, reference, operands("t", (domain,)))]


BINARY_KINDS = ("tt", "tn", "nt", "ta", "at")


def binary(name: str, op: Callable, reference: Callable, left: Any = REAL, right: Any = REAL,
           kinds: tuple[str, ...] = BINARY_KINDS) -> list[OpCase]:
    """Rows for tensor op tensor, with a number on either side (the reflected form on the left),
    and with a numpy array on either side."""
    return [OpCase(f"{name}_{k}", op, reference, operands(k, (left, right))) for k in kinds]


# -- reductions ------------------------------------------------------------------------------------

AXIS_FORMS = ("no_arguments", "axis_none", "axis_int", "axis_negative_int", "axis_tuple")


@st.composite
def axis_kwargs(draw: st.DrawFn, form: str, ndim: int) -> dict[str, Any]:
    if form == "no_arguments":
        return {}
    if form == "axis_none":
        axis = None
    elif form == "axis_int":
        axis = draw(st.integers(0, ndim - 1))
    elif form == "axis_negative_int":
        axis = draw(st.integers(-ndim, -1))
    else:  # a non-empty tuple, any order, some axes counted from the end
        chosen = draw(st.permutations(range(ndim)))[: draw(st.integers(1, ndim))]
        axis = tuple(a - ndim if draw(st.booleans()) else a for a in chosen)
    return {"axis": axis, "keepdims": draw(st.booleans())}


def reduced_count(shape: tuple[int, ...], axis: Any) -> int:
    axes = range(len(shape)) if axis is None else ((axis,) if isinstance(axis, int) else axis)
    return int(np.prod([shape[a] for a in axes]))


@st.composite
def reduction_example(draw: st.DrawFn, form: str, domain: Any, correction: int | None = None) -> Example:
    shape = draw(SHAPES if form in ("no_arguments", "axis_none") else NONEMPTY_SHAPES)
    kwargs = draw(axis_kwargs(form, len(shape)))
    if correction is not None:
        # N - correction > 0, else var has no degrees of freedom (a ValueError, tested apart)
        if reduced_count(shape, kwargs.get("axis")) <= correction:
            axis = kwargs.get("axis")
            axes = range(len(shape)) if axis is None else ((axis,) if isinstance(axis, int) else axis)
            reduced = {a % len(shape) for a in axes} if shape else set()
            shape = tuple(max(n, 2) if a in reduced else n for a, n in enumerate(shape)) or (2,)
        if form != "no_arguments" or correction:
            kwargs["correction"] = correction
    x = draw(domain(shape) if callable(domain) and not isinstance(domain, st.SearchStrategy)
             else arrays(shape, domain))
    return Example((x,), "t", kwargs)


def _numpy_var(x: np.ndarray, axis: Any = None, keepdims: bool = False, correction: int = 0) -> Any:
    return np.var(x, axis=axis, keepdims=keepdims, ddof=correction)


def _torch_all_axes(x: Any, axis: Any) -> Any:
    return tuple(range(x.ndim)) if axis is None else axis


def _torch_var(x: Any, axis: Any = None, keepdims: bool = False, correction: int = 0) -> Any:
    # our default correction is 0 (API.md), torch's is 1: always pass it
    return x.var(dim=axis, keepdim=keepdims, correction=correction)


def _torch_amax(x: Any, axis: Any = None, keepdims: bool = False) -> Any:
    return x.amax(dim=_torch_all_axes(x, axis), keepdim=keepdims)


# Torch sums in a different order than numpy (vector lanes vs pairwise), so a sum that cancels can
# differ by up to ~n eps max|x| = 64 * 2.2e-16 * 3 ~ 4e-14 in absolute terms (7e-15 seen in 20000
# random draws): atol 1e-14 is too tight a bound for sums; rtol stays 1e-12.
SUM_ORDER_TOL = (1e-12, 1e-13)

REDUCTIONS = [
    ("sum", lambda x, **kw: x.sum(**kw), lambda x, **kw: np.sum(x, **kw), REAL, None, None),
    ("mean", lambda x, **kw: x.mean(**kw), lambda x, **kw: np.mean(x, **kw), REAL, None, None),
    ("var_correction0", lambda x, **kw: x.var(**kw), _numpy_var, REAL, 0, _torch_var),
    ("var_correction1", lambda x, **kw: x.var(**kw), _numpy_var, REAL, 1, _torch_var),
    ("max", lambda x, **kw: x.max(**kw), lambda x, **kw: np.max(x, **kw), distinct_arrays, None, _torch_amax),
]


def reductions() -> list[OpCase]:
    return [OpCase(f"{name}_{form}", op, ref, reduction_example(form, domain, correction),
                   torch_op=torch_op, torch_tol=SUM_ORDER_TOL)
            for name, op, ref, domain, correction, torch_op in REDUCTIONS for form in AXIS_FORMS]


# -- matmul ----------------------------------------------------------------------------------------

# numpy's matmul shape rules, drawn by hypothesis from the gufunc signature "(n?,k),(k,m?)->(n?,m?)":
# 1-D operands on either side, 2-D, and batch dimensions that broadcast against each other.
MATMUL_SHAPES = hnp.mutually_broadcastable_shapes(signature=np.matmul.signature, max_dims=2, max_side=3
                                                  ).map(lambda s: s.input_shapes)


@st.composite
def square_matrix_shapes(draw: st.DrawFn) -> list[tuple[int, ...]]:
    n = draw(st.integers(1, 3))
    return [(*draw(hnp.array_shapes(min_dims=0, max_dims=1, max_side=3)), n, n)]


def matmuls() -> list[OpCase]:
    # Sums of products (and, in the gradients, over batch axes), ordered differently by torch.
    cases = [OpCase(f"matmul_{k}", operator.matmul, np.matmul,
                    operands(k, (UNIT, UNIT), shapes=MATMUL_SHAPES), torch_tol=SUM_ORDER_TOL)
             for k in ("tt", "ta", "at")]
    cases.append(OpCase("matmul_self", lambda x: x @ x, lambda x: x @ x,
                        operands("t", (UNIT,), shapes=square_matrix_shapes()), torch_tol=SUM_ORDER_TOL))
    return cases


@st.composite
def linear_example(draw: st.DrawFn, kinds: str) -> Example:
    """x (..., in) with 0 to 2 leading axes, W (out, in) and, for a third kind, b (out,)."""
    n_in, n_out = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    lead = draw(hnp.array_shapes(min_dims=0, max_dims=2, max_side=3))
    shapes = [(*lead, n_in), (n_out, n_in), (n_out,)][: len(kinds)]
    return Example(tuple(draw(arrays(shape, UNIT)) for shape in shapes), kinds)


def _torch_linear(*args: Any) -> Any:
    import torch

    return torch.nn.functional.linear(*args)


def linears() -> list[OpCase]:
    """linear(x, W, b) = x @ W.T + b, one op with three operands (torch.nn.functional.linear)."""
    return [OpCase(f"linear_{k}", tl.tensor.linear, lambda x, w, b=None: x @ w.T + (0.0 if b is None else b),
                   linear_example(k), torch_op=_torch_linear, torch_tol=SUM_ORDER_TOL)
            for k in ("ttt", "tt", "att", "tat", "tta")]


# -- shape ops -------------------------------------------------------------------------------------

def _prime_factors(n: int) -> list[int]:
    out, p = [], 2
    while n > 1:
        while n % p == 0:
            out.append(p)
            n //= p
        p += 1
    return out


@st.composite
def reshape_example(draw: st.DrawFn) -> Example:
    """A new shape of the same size: the size's prime factors shuffled into groups, with 1s
    inserted and sometimes one side given as -1."""
    x = draw(ANY_ARRAY)
    factors = draw(st.permutations(_prime_factors(x.size)))
    cuts = sorted(draw(st.lists(st.integers(0, len(factors)), max_size=3)))
    bounds = [0, *cuts, len(factors)]
    shape = [int(np.prod(factors[i:j])) for i, j in zip(bounds, bounds[1:]) if j > i or not factors]
    for _ in range(draw(st.integers(0, 2))):
        shape.insert(draw(st.integers(0, len(shape))), 1)
    if shape and draw(st.booleans()):
        shape[draw(st.integers(0, len(shape) - 1))] = -1
    if len(shape) > 4:
        shape = [x.size]
    return Example((x,), "t", {"shape": tuple(shape)})


@st.composite
def permutation_example(draw: st.DrawFn) -> Example:
    x = draw(ANY_ARRAY)
    axes = tuple(a - x.ndim if draw(st.booleans()) else a for a in draw(st.permutations(range(x.ndim))))
    return Example((x,), "t", {"axes": axes})


def _reversed_axes(x: Any) -> Any:
    return x.permute(tuple(reversed(range(x.ndim))))


def shape_ops() -> list[OpCase]:
    any_array = operands("t", (REAL,))
    return [
        OpCase("reshape_varargs", lambda x, shape: x.reshape(*shape), lambda x, shape: np.reshape(x, shape),
               reshape_example(), torch_op=lambda x, shape: x.reshape(shape)),
        OpCase("reshape_tuple", lambda x, shape: x.reshape(shape), lambda x, shape: np.reshape(x, shape),
               reshape_example()),
        OpCase("transpose_no_axes", lambda x: x.transpose(), np.transpose, any_array,
               torch_op=_reversed_axes),
        OpCase("transpose_permutation_varargs", lambda x, axes: x.transpose(*axes) if axes else x.transpose(),
               lambda x, axes: np.transpose(x, axes), permutation_example(),
               torch_op=lambda x, axes: x.permute(axes)),
        OpCase("transpose_permutation_tuple", lambda x, axes: x.transpose(axes),
               lambda x, axes: np.transpose(x, axes), permutation_example(),
               torch_op=lambda x, axes: x.permute(axes)),
        OpCase("T", lambda x: x.T, lambda x: x.T, any_array, torch_op=_reversed_axes),
    ]


# -- indexing --------------------------------------------------------------------------------------

@functools.cache
def _index_array(n: int, length: int) -> st.SearchStrategy[np.ndarray]:
    """Integer indices into a side of length n (negative ones too) whose last entry repeats the
    first: a gradient through it must accumulate, not overwrite."""
    entries = st.lists(st.integers(-n, n - 1), min_size=length - 1, max_size=length - 1)
    return entries.map(lambda e: np.array([*e, e[0]] if e else [0, 0], dtype=np.intp))


@st.composite
def index_example(draw: st.DrawFn, form: str) -> Example:
    x = draw(NONEMPTY_ARRAY)
    sides = x.shape
    if form == "basic":  # slices, integers, Ellipsis, np.newaxis, as hypothesis draws them
        index: Any = draw(hnp.basic_indices(x.shape, allow_newaxis=True))
    elif form == "integers":
        index = tuple(draw(st.integers(-n, n - 1)) for n in sides[: draw(st.integers(1, x.ndim))])
    elif form == "negative_step_slices":
        def bound(n: int) -> Any:
            return draw(st.none() | st.integers(-n - 1, n))

        index = tuple(slice(bound(n), bound(n), draw(st.integers(-3, -1)))
                      for n in sides[: draw(st.integers(1, x.ndim))])
    elif form == "repeated_integer_array":
        index = draw(_index_array(sides[0], draw(st.integers(2, 6))))
        if draw(st.booleans()):
            index = index.tolist()  # a list indexes like an array
    elif form == "integer_arrays_on_every_axis":  # broadcast together; picks repeat
        length = draw(st.integers(2, 4))
        arrays = [draw(_index_array(n, length)) for n in sides]
        if x.ndim > 1 and draw(st.booleans()):
            arrays[0] = arrays[0][:, None]  # (L, 1) against (L,): an outer selection
        index = tuple(arrays)
    else:  # "mixed": per axis a slice, an integer or an index array; arrays broadcast together
        length = draw(st.integers(2, 4))
        kinds = draw(st.lists(st.sampled_from("sia"), min_size=1, max_size=x.ndim).filter(lambda k: "a" in k))
        parts: list[Any] = []
        for kind, n in zip(kinds, sides):
            if kind == "s":
                parts.append(draw(st.slices(n)))
            elif kind == "i":
                parts.append(draw(st.integers(-n, n - 1)))
            else:
                parts.append(draw(_index_array(n, length)))
        index = tuple(parts)
    return Example((x,), "t", {"index": index})


def _torch_getitem(x: Any, index: Any) -> Any:
    """The same selection in torch. Where torch's indexing cannot say it, the selection is taken
    as a gather of the flat positions numpy's indexing picks (same values, same gradient): torch
    slicing has no negative steps, and an integer beside an index array is an advanced index in
    numpy (x[0, :, [0, 0]] has shape (2, n)) but a basic one in torch (shape (n, 2))."""
    import torch

    items = index if isinstance(index, tuple) else (index,)
    arrays = any(isinstance(i, (list, np.ndarray)) for i in items)
    integers = any(isinstance(i, (int, np.integer)) for i in items)
    if arrays and integers or any(isinstance(i, slice) and i.step is not None and i.step < 0 for i in items):
        flat = np.arange(int(np.prod(x.shape))).reshape(tuple(x.shape))[index]
        return x.reshape(-1)[torch.from_numpy(np.array(flat, dtype=np.int64, order="C"))]
    as_torch = tuple(torch.as_tensor(np.asarray(i, dtype=np.int64)) if isinstance(i, (list, np.ndarray))
                     else i for i in items)
    return x[as_torch if isinstance(index, tuple) else as_torch[0]]


INDEX_FORMS = ("basic", "integers", "negative_step_slices", "repeated_integer_array",
               "integer_arrays_on_every_axis", "mixed")


def indexing() -> list[OpCase]:
    return [OpCase(f"getitem_{form}", lambda x, index: x[index], lambda x, index: x[index],
                   index_example(form), torch_op=_torch_getitem) for form in INDEX_FORMS]


# -- softmax ---------------------------------------------------------------------------------------

@st.composite
def softmax_example(draw: st.DrawFn, default_axis: bool) -> Example:
    x = draw(LOGIT_ARRAY)
    return Example((x,), "t", {} if default_axis else {"axis": draw(st.integers(-x.ndim, x.ndim - 1))})


def _numpy_softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _numpy_log_softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def softmaxes() -> list[OpCase]:
    return [OpCase(f"{name}_{form}", lambda x, name=name, **kw: getattr(x, name)(**kw), ref,
                   softmax_example(form == "default_axis"),
                   torch_op=lambda x, name=name, axis=-1: getattr(x, name)(dim=axis), torch_tol=SUM_ORDER_TOL)
            for name, ref in (("softmax", _numpy_softmax), ("log_softmax", _numpy_log_softmax))
            for form in ("default_axis", "any_axis")]


# -- the table -------------------------------------------------------------------------------------

def _sigmoid(x: Any) -> Any:
    return 1.0 / (1.0 + np.exp(-x))


CASES: list[OpCase] = [
    *binary("add", operator.add, np.add),
    *binary("sub", operator.sub, np.subtract),
    *binary("mul", operator.mul, np.multiply),
    *binary("truediv", operator.truediv, np.divide, right=DIVISOR),
    *binary("pow", operator.pow, np.power, left=POSITIVE, right=EXPONENT),
    *binary("pow_int_exponent", operator.pow, np.power, left=DIVISOR, right=INT_EXPONENT, kinds=("tn",)),
    *unary("add_self", lambda x: x + x, lambda x: x + x),
    *unary("sub_self", lambda x: x - x, lambda x: x - x),
    *unary("mul_self", lambda x: x * x, lambda x: x * x),
    *unary("truediv_self", lambda x: x / x, lambda x: x / x, DIVISOR),
    *unary("pow_self", lambda x: x**x, lambda x: x**x, POSITIVE),
    *matmuls(),
    *linears(),
    *unary("neg", operator.neg, np.negative),
    *unary("exp", lambda x: x.exp(), np.exp),
    *unary("log", lambda x: x.log(), np.log, POSITIVE),
    *unary("sqrt", lambda x: x.sqrt(), np.sqrt, POSITIVE),
    *unary("tanh", lambda x: x.tanh(), np.tanh, WIDE),
    *unary("sigmoid", lambda x: x.sigmoid(), _sigmoid, WIDE),
    OpCase("softplus", lambda x: x.softplus(), lambda x: np.logaddexp(0.0, x), operands("t", (WIDE,)),
           torch_op=lambda x: __import__("torch").nn.functional.softplus(x)),
    *unary("relu", lambda x: x.relu(), lambda x: np.maximum(x, 0.0), OFF_KINK),
    *unary("abs", lambda x: x.abs(), np.abs, OFF_KINK),
    *unary("builtin_abs", abs, np.abs, OFF_KINK),
    *unary("clip", lambda x: x.clip(-1.0, 1.0), lambda x: np.clip(x, -1.0, 1.0), off_bounds(-1.0, 1.0)),
    *unary("clip_min_only", lambda x: x.clip(min=-0.5), lambda x: np.clip(x, -0.5, None), off_bounds(-0.5)),
    *unary("clip_max_only", lambda x: x.clip(max=0.5), lambda x: np.clip(x, None, 0.5), off_bounds(0.5)),
    *reductions(),
    *shape_ops(),
    *indexing(),
    *softmaxes(),
]
assert len({c.name for c in CASES}) == len(CASES), "case names must be unique"


# -- running a case --------------------------------------------------------------------------------

@dataclass
class Run:
    """One call of a case's op: the leaves it made (None at non-tensor positions), the
    constants and the output."""

    leaves: list[tl.Tensor | None]
    out: Any


def call(case: OpCase, example: Example, dtype: Any = np.float64, requires_grad: bool = True) -> Run:
    """``case.op`` on the example: leaf Tensors of ``dtype`` at "t" positions, the constants as they are."""
    leaves = [tl.Tensor(np.array(x, dtype=dtype), requires_grad=requires_grad) if k == "t" else None
              for x, k in zip(example.args, example.kinds)]
    args = [leaf if leaf is not None else x for leaf, x in zip(leaves, example.args)]
    return Run(leaves, case.op(*args, **example.kwargs))


def reference(case: OpCase, example: Example) -> np.ndarray:
    return np.asarray(case.reference(*example.args, **example.kwargs))


def draw_upstream(data: Any, shape: tuple[int, ...]) -> np.ndarray:
    return data.draw(arrays(shape, UPSTREAM), label="upstream gradient")


def central_differences(case: OpCase, example: Example, upstream: np.ndarray, position: int) -> np.ndarray:
    """d sum(upstream * reference(...)) / d args[position], one central difference per element.

    The outputs are subtracted before the weighted sum, so outputs the element does not touch
    cancel exactly and add no rounding error. The step is the representable one, x+h - (x-h).
    """
    args = list(example.args)
    x = np.asarray(args[position], dtype=np.float64)
    grad = np.zeros(x.shape)
    for j in np.ndindex(x.shape):
        plus, minus = x.copy(), x.copy()
        plus[j] += FD_EPS
        minus[j] -= FD_EPS
        args[position] = plus
        f_plus = np.asarray(case.reference(*args, **example.kwargs))
        args[position] = minus
        f_minus = np.asarray(case.reference(*args, **example.kwargs))
        grad[j] = np.sum(upstream * (f_plus - f_minus)) / (plus[j] - minus[j])
    return grad


# -- the checks ------------------------------------------------------------------------------------

def check_forward(case: OpCase, example: Example) -> None:
    out = call(case, example).out
    expected = reference(case, example)
    assert isinstance(out, tl.Tensor), f"{case.name} returned {type(out).__name__}, not a Tensor"
    assert out.shape == expected.shape, f"shape {out.shape}, numpy gives {expected.shape}"
    assert out.dtype == np.float64
    np.testing.assert_allclose(out.data, expected, rtol=FORWARD_RTOL, atol=FORWARD_ATOL)
    assert isinstance(out.data, np.ndarray), f"out.data is a {type(out.data).__name__}, not an ndarray"


def check_gradient(case: OpCase, example: Example, data: Any) -> None:
    run = call(case, example)
    upstream = draw_upstream(data, run.out.shape)
    run.out.backward(upstream)
    for i in example.tensor_positions:
        numeric = central_differences(case, example, upstream, i)
        np.testing.assert_allclose(run.leaves[i].grad, numeric, rtol=FD_RTOL, atol=FD_ATOL,
                                   err_msg=f"gradient of operand {i}")


def check_inputs_not_mutated(case: OpCase, example: Example, dtype: Any, data: Any) -> None:
    run = call(case, example, dtype)
    arrays = [leaf.data if leaf is not None else x for leaf, x in zip(run.leaves, example.args)]
    arrays = [a for a in arrays if isinstance(a, np.ndarray)]
    before = [a.copy() for a in arrays]
    upstream = draw_upstream(data, run.out.shape)
    upstream_before = upstream.copy()
    for a, b in zip(arrays, before):
        np.testing.assert_array_equal(a, b, err_msg="forward mutated an input")
    run.out.backward(upstream)
    for a, b in zip(arrays, before):
        np.testing.assert_array_equal(a, b, err_msg="backward mutated an input")
    np.testing.assert_array_equal(upstream, upstream_before, err_msg="backward mutated the upstream gradient")


def check_no_gradient_aliases(case: OpCase, example: Example, dtype: Any, data: Any) -> None:
    run = call(case, example, dtype)
    upstream = draw_upstream(data, run.out.shape)
    run.out.backward(upstream)
    leaves = [leaf for leaf in run.leaves if leaf is not None]
    grads = {f"grad of operand {i}": leaf.grad for i, leaf in enumerate(run.leaves) if leaf is not None}
    grads["grad of the output"] = run.out.grad
    for (name_a, a), (name_b, b) in combinations(grads.items(), 2):
        assert not np.shares_memory(a, b), f"{name_a} shares memory with {name_b}"
    others = {"the upstream array": upstream, "the output's data": run.out.data}
    others.update({f"data of operand {i}": x for i, x in enumerate(example.args)
                   if isinstance(x, np.ndarray)})
    others.update({f"data of leaf {i}": leaf.data for i, leaf in enumerate(leaves)})
    for name, g in grads.items():
        for other, arr in others.items():
            assert not np.shares_memory(g, arr), f"{name} shares memory with {other}"


def check_leaf_grads_match_leaves(case: OpCase, example: Example, dtype: Any, data: Any) -> None:
    run = call(case, example, dtype)
    if all(leaf is not None for leaf in run.leaves):  # no constant operand that could promote
        assert run.out.dtype == dtype, f"output dtype {run.out.dtype} from {dtype} operands"
    run.out.backward(draw_upstream(data, run.out.shape))
    for i, leaf in enumerate(run.leaves):
        if leaf is None:
            continue
        assert leaf.grad.shape == leaf.shape, f"operand {i}: grad shape {leaf.grad.shape}, leaf {leaf.shape}"
        assert leaf.grad.dtype == leaf.dtype, f"operand {i}: grad dtype {leaf.grad.dtype}, leaf {leaf.dtype}"
        assert isinstance(leaf.grad, np.ndarray), f"operand {i}: grad is a {type(leaf.grad).__name__}"


def check_graph_freed(case: OpCase, example: Example) -> None:
    """After backward, the op's output dies with the last reference to it, by reference counting
    alone: the garbage collector stays off, so a reference cycle would keep it alive."""
    run = call(case, example)
    out = run.out
    follower = out * 2.0  # an interior node holding `out` as its parent
    follower.backward(np.ones(follower.shape))
    ref = weakref.ref(out)
    del run, out
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        assert ref() is not None, "the output died while a later node still used it"
        del follower
        assert ref() is None, "the output outlived the last reference to its graph"
    finally:
        if was_enabled:
            gc.enable()


def check_no_graph_without_grad(case: OpCase, example: Example, under_no_grad: bool) -> None:
    if under_no_grad:
        with tl.no_grad():
            out = call(case, example, requires_grad=True).out
    else:
        out = call(case, example, requires_grad=False).out
    assert out.op == "", f"op {out.op!r} recorded"
    assert out.requires_grad is False
    assert out.parents == ()
