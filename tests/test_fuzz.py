"""Every public function fuzzed with bad input (issue "Hardening"): wrong types, shapes and dtypes,
nan, inf, empty arrays, zero-size batches, negative sizes.

The promise checked for each call:
  - it works, or raises a documented error (ValueError, TypeError, IndexError, KeyError,
    FileNotFoundError, tl.DomainError, tl.AnomalyError; SystemExit(2) with a usage message for the
    command line) raised by our code (the traceback's last frame is in tinygrad_lec, or the message
    starts with our function's name; never numpy's internals) with a message that names the function
    (or the op) and says what was wrong;
  - if it works, finite input of moderate size gives no nan (in the result, the gradients, the
    parameters), apart from the few documented cases named where they are checked;
  - if it fails, every parameter, gradient, buffer, optimizer state, running statistic, random
    generator and file is bit for bit as before (no partial update).

Functions are grouped into families sharing strategies. Each argument is drawn from a "good" pool
(what the API documents) or a "bad" pool (everything else): ``Case.pick``. ``Case.call`` makes the
call, checks the promise and counts, per function, the calls, the calls with at least one bad
argument, and the calls that raised.

Environment:
    TINYGRAD_LEC_FUZZ_EXAMPLES=N   examples per family (default: min(30, the hypothesis profile's))
    TINYGRAD_LEC_FUZZ_REPORT=path  write the table of counts there at the end (and print it)
    TINYGRAD_LEC_FUZZ_COLLECT=1    record broken promises in the report instead of failing at the
                                   first one, to list every distinct problem in one run
    TINYGRAD_LEC_FUZZ_SHRINK=1     let hypothesis shrink a failing example (slow: minutes)
"""

from __future__ import annotations

import contextlib
import io
import math
import numbers
import operator
import os
import re
import tempfile
import warnings
from collections import Counter, defaultdict
from fractions import Fraction
from typing import Any

import hypothesis
import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from hypothesis.extra import numpy as hnp

import tinygrad_lec as tl
from tinygrad_lec import Tensor, Value, nn, optim, testing, viz
from tinygrad_lec import data as tl_data
from tinygrad_lec import functional as F
from tinygrad_lec.optim import lr_scheduler

EXAMPLES = int(os.environ.get("TINYGRAD_LEC_FUZZ_EXAMPLES", "0")) or min(30, settings().max_examples)
COLLECT = os.environ.get("TINYGRAD_LEC_FUZZ_COLLECT") == "1"
SHRINK = os.environ.get("TINYGRAD_LEC_FUZZ_SHRINK") == "1"
PACKAGE_DIR = os.path.dirname(os.path.abspath(tl.__file__))
HYPOTHESIS_DIR = os.path.dirname(os.path.abspath(hypothesis.__file__))
THIS_FILE = os.path.abspath(__file__)

DOCUMENTED = (ValueError, TypeError, IndexError, KeyError, FileNotFoundError, tl.DomainError, tl.AnomalyError)
RAISED = object()  # what Case.call returns for a call that raised

COUNTS: defaultdict[str, Counter] = defaultdict(Counter)
VIOLATIONS: defaultdict[str, Counter] = defaultdict(Counter)


def fuzz(scale: float = 1.0) -> settings:
    """Hypothesis settings of a family: EXAMPLES (times ``scale``) examples, no deadline, and no
    shrinking unless TINYGRAD_LEC_FUZZ_SHRINK=1 (a failing family would spend minutes shrinking;
    the unshrunk example is printed draw by draw, and the message says what broke)."""
    phases = [Phase.explicit, Phase.reuse, Phase.generate] + [Phase.shrink] * SHRINK
    return settings(max_examples=max(1, int(EXAMPLES * scale)), deadline=None, phases=phases,
                    report_multiple_bugs=SHRINK, suppress_health_check=list(HealthCheck))


# -- the report -------------------------------------------------------------------------------------


def report_text() -> str:
    rows = [("function", "calls", "bad input", "raised")]
    rows += [(name, str(c["calls"]), str(c["bad"]), str(c["raised"])) for name, c in sorted(COUNTS.items())]
    rows.append(("total", *(str(sum(c[k] for c in COUNTS.values())) for k in ("calls", "bad", "raised"))))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["| " + " | ".join(cell.ljust(w) for cell, w in zip(row, widths)) + " |" for row in rows]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    head = [f"tinygrad_lec fuzz: {EXAMPLES} examples per family (TINYGRAD_LEC_FUZZ_EXAMPLES), "
            f"{len(COUNTS)} functions", ""]
    tail = []
    if VIOLATIONS:
        tail = ["", "broken promises (function: [count] problem):"]
        for name, problems in sorted(VIOLATIONS.items()):
            tail += [f"  {name}: [{n}x] {problem}" for problem, n in problems.most_common()]
    return "\n".join(head + lines + tail) + "\n"


@pytest.fixture(scope="module", autouse=True)
def fuzz_report(request):
    """At the end: the table of counts, into $TINYGRAD_LEC_FUZZ_REPORT and onto the terminal."""
    yield
    path = os.environ.get("TINYGRAD_LEC_FUZZ_REPORT")
    if path:
        text = report_text()
        with open(path, "w") as f:
            f.write(text)
        reporter = request.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            for line in ["", *text.splitlines()]:
                reporter.write_line(line)


# -- the promise ----------------------------------------------------------------------------------


def _last_frame(e: BaseException) -> tuple[str, int]:
    tb = e.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return (os.path.abspath(tb.tb_frame.f_code.co_filename), tb.tb_lineno) if tb is not None else ("", 0)


def _where(e: BaseException) -> str:
    path, line = _last_frame(e)
    for prefix, short in ((PACKAGE_DIR, "tinygrad_lec"), (os.path.dirname(np.__file__), "numpy")):
        path = path.replace(prefix, short)
    return f"{path}:{line}"


def error_problem(e: BaseException, names: tuple[str, ...]) -> str | None:
    """What is wrong with an error of a documented type, or None."""
    message = str(e.args[0]) if isinstance(e, KeyError) and e.args else str(e)
    where = _last_frame(e)[0]
    if where == THIS_FILE:  # the caller's side: Python's operator protocol, or a callback of ours
        return None
    if not (where.startswith(PACKAGE_DIR) or any(message.startswith(n) for n in names)):
        return f"{type(e).__name__} from outside tinygrad_lec ({_where(e)}): {message[:160]}"
    if not any(n.lower() in message.lower() for n in names):
        return f"{type(e).__name__} whose message does not name {names[0]!r}: {message[:160]}"
    if len(message) < len(names[0]) + 12:
        return f"{type(e).__name__} whose message does not say what was wrong: {message!r}"
    return None


def violation(name: str, problem: str, cause: BaseException | None = None) -> None:
    """A broken promise: fail, or (TINYGRAD_LEC_FUZZ_COLLECT=1) record it for the report."""
    if not COLLECT:
        raise AssertionError(f"{name}: {problem}") from cause
    VIOLATIONS[name][re.sub(r"0x[0-9a-f]+", "0x..", problem)[:300]] += 1


def _numbers(obj: Any, depth: int = 0):
    """The magnitudes of every number inside obj (Tensors, Values, arrays, containers)."""
    if depth > 4 or isinstance(obj, bool):
        return
    if isinstance(obj, Tensor):
        yield from _numbers(obj.data, depth + 1)
    elif isinstance(obj, Value):
        yield np.abs([obj.data])
    elif isinstance(obj, np.ndarray):
        if obj.dtype.kind in "fciu":
            yield np.abs(obj.astype(np.complex128 if obj.dtype.kind == "c" else np.float64)).ravel()
    elif isinstance(obj, (int, float, complex, np.number)):
        try:
            yield np.abs([complex(obj)])
        except OverflowError:
            yield np.array([math.inf])
    elif isinstance(obj, (list, tuple, dict)):
        for x in list(obj.values() if isinstance(obj, dict) else obj)[:64]:
            yield from _numbers(x, depth + 1)


def moderate(obj: Any) -> bool:
    """All numbers finite with |x| <= 1e100: no sum or product of them overflows, so a nan in a
    result is ours, not IEEE arithmetic's. (Tiny numbers, where underflow bites, are moderate.)"""
    return all(bool(np.all(a <= 1e100)) for a in _numbers(obj))


def has_nan(obj: Any) -> bool:
    if isinstance(obj, Tensor):
        return has_nan(obj.data) or has_nan(obj.grad)
    if isinstance(obj, Value):
        return math.isnan(obj.data) or math.isnan(obj.grad)
    if isinstance(obj, np.ndarray):
        return obj.dtype.kind in "fc" and bool(np.isnan(obj).any())
    if isinstance(obj, float):
        return math.isnan(obj)
    return isinstance(obj, (list, tuple)) and any(has_nan(x) for x in obj)


def freeze(obj: Any, depth: int = 0) -> Any:
    """A bit-exact, comparable picture of obj (arrays by their bytes, floats by repr)."""
    if depth > 8:
        return "..."
    if isinstance(obj, np.ndarray):
        return ("array", obj.dtype.str, obj.shape, obj.tobytes())
    if isinstance(obj, Tensor):
        return ("Tensor", freeze(obj.data), freeze(obj.grad), obj.requires_grad)
    if isinstance(obj, Value):
        return ("Value", repr(obj.data), repr(obj.grad))
    if isinstance(obj, np.random.Generator):
        return ("rng", repr(obj.bit_generator.state))
    if isinstance(obj, dict):
        return ("dict", tuple((repr(k), freeze(v, depth + 1)) for k, v in obj.items()))
    if isinstance(obj, (list, tuple)):
        return (type(obj).__name__, tuple(freeze(x, depth + 1) for x in obj))
    if isinstance(obj, (int, float, str, bytes, type(None))):
        return (type(obj).__name__, repr(obj))
    return (type(obj).__name__, id(obj))


def module_state(m: nn.Module) -> Any:
    """Parameters (data and grad), buffers, training flags and dropout generators of m."""
    return freeze([list(m.named_parameters()), list(m.named_buffers()),
                   [(type(s).__name__, s.training, getattr(s, "generator", None)) for s in m.modules()]])


def optimizer_state(opt: Any, params: list[Any]) -> Any:
    """Parameters (data and grad), per-parameter state and the options of every group. (A
    scheduler's ``initial_lr`` is left out: torch too keeps it after a failed construction.)"""
    groups = [{k: v for k, v in g.items() if k not in ("params", "initial_lr")} for g in opt.param_groups]
    return freeze([params, opt.state, groups, [len(g["params"]) for g in opt.param_groups]])


class Case:
    """One hypothesis example: draws arguments from good or bad pools, calls the API, checks."""

    def __init__(self, data: Any) -> None:
        self.data = data
        self.bad = False  # some argument came from a bad pool
        self.moderate = True  # every number drawn is finite and moderate (see ``moderate``)

    def draw(self, strategy: Any, label: str | None = None) -> Any:
        value = self.data.draw(strategy, label=label)
        self.moderate = self.moderate and moderate(value)
        return value

    def pick(self, good: Any, bad: Any, label: str) -> Any:
        """An argument from the good pool or from the bad one (hypothesis shrinks towards good)."""
        tagged = st.one_of(good.map(lambda v: (False, v)), bad.map(lambda v: (True, v)))
        is_bad, value = self.data.draw(tagged, label=label)
        self.bad = self.bad or is_bad
        self.moderate = self.moderate and moderate(value)
        return value

    def call(self, name: str, fn: Any, *args: Any, names: tuple[str, ...] = (), allowed: tuple = DOCUMENTED,
             state: Any = None, on_error: Any = None, foreign: str = "", **kwargs: Any) -> Any:
        """``fn(*args, **kwargs)`` counted under ``name``: its result, or RAISED.

        ``names``: what the message of an error must name (default: the last word of ``name``).
        ``state``: a function whose result must be the same after a failed call as before.
        ``on_error``: a further check of an error (returns a problem or None).
        ``foreign``: errors raised inside this directory are that library's own validation."""
        COUNTS[name]["calls"] += 1
        COUNTS[name]["bad"] += self.bad
        names = tuple(n for n in names if n) or (re.split(r"[ .]", name)[-1].strip("()"),)
        before = state() if state is not None else None
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # numpy's overflow warnings
                warnings.simplefilter("error", np.exceptions.ComplexWarning)  # an imaginary part dropped
                return fn(*args, **kwargs)
        except Exception as e:
            error = e
        COUNTS[name]["raised"] += 1
        problems = []
        if state is not None and state() != before:
            problems.append("a failed call changed the state (partial update)")
        if foreign and _last_frame(error)[0].startswith(foreign):
            pass  # that library's own validation
        elif not isinstance(error, allowed):
            text = f"{type(error).__name__}: {str(error)[:160]}"
            problems.append(f"undocumented {text} (raised in {_where(error)})")
        else:
            problems.append(error_problem(error, names) or (on_error and on_error(error)))
        for problem in filter(None, problems):
            violation(name, problem, cause=error)
        return RAISED

    def no_nan(self, name: str, *outputs: Any, unless: bool = False) -> None:
        """Finite, moderate input gives no nan (``unless``: a documented exception applies)."""
        if self.moderate and not unless and has_nan(list(outputs)):
            violation(name, "nan from finite input")

    def backward(self, out: Any) -> bool:
        """Backward from ``out`` (if it needs grad) with an upstream gradient of ones; True if it ran."""
        if not (isinstance(out, Tensor) and out.requires_grad):
            return False
        ones = np.ones(out.shape, out.dtype)
        return self.call("Tensor.backward", out.backward, ones, names=("backward",)) is not RAISED


# -- pools of arguments -----------------------------------------------------------------------------

NAN, INF = float("nan"), float("inf")
HUGE_INT = 10**400


def fresh(*makers: Any) -> Any:
    """A new object from one of ``makers`` at every draw (pools must not share mutable objects)."""
    return st.sampled_from(makers).map(lambda make: make())


def read_only(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a


MODERATE = st.floats(-10, 10)
EDGES = st.sampled_from([0.0, -0.0, 5e-324, -5e-324, 1e-300, -1e-300, 1e-200, 1e-100, -1e100, 1e100])
FINITE = st.one_of(MODERATE, EDGES)
HUGE = st.sampled_from([1e300, -1e300, 1.7976931348623157e308, -1.7976931348623157e308])
NONFINITE = st.sampled_from([NAN, INF, -INF])
ANY_FLOAT = st.one_of(FINITE, HUGE, NONFINITE)

NOT_DATA = fresh(  # where numbers or arrays go
    lambda: None, lambda: "abc", lambda: "", lambda: b"\x00", lambda: {}, lambda: {"a": 1.0},
    lambda: object(), lambda: 1j, lambda: complex(NAN, 0), lambda: [[1.0, 2.0], [3.0]], lambda: [["a", "b"]],
    lambda: [None, 1.0], lambda: Value(1.0), lambda: print, lambda: np.array([object()]),
    lambda: np.array(["a", "b"]), lambda: {1.0, 2.0})
BAD_NUMBERS = st.one_of(
    NONFINITE, HUGE,
    st.sampled_from([HUGE_INT, -HUGE_INT, True, False, -1, 0, 1j, "1.0", "abc", None, Fraction(1, 3)]),
    fresh(lambda: {}, lambda: [1.0], lambda: object(), lambda: np.array([1.0, 2.0]),
          lambda: np.float16(65504), lambda: np.array(2.0), lambda: np.int64(-3), lambda: Value(0.5),
          lambda: Tensor([1.0])))
BAD_SIZES = st.one_of(  # where a size or a count goes (no huge ones: those are memory errors)
    st.sampled_from([0, -1, -5, 1.5, 2.0, "3", None, True, False, NAN, INF, 1j]),
    fresh(lambda: np.int64(-1), lambda: [3], lambda: (3,), lambda: np.array([2, 3]), lambda: object()))
BAD_BOOLS = fresh(lambda: "yes", lambda: "", lambda: None, lambda: 2, lambda: np.array([True, False]),
                  lambda: [], lambda: object(), lambda: NAN)
GOOD_SEEDS = st.one_of(st.none(), st.integers(0, 2**32))
BAD_SEEDS = st.one_of(st.sampled_from([-1, -(2**70), 1.5, "a", NAN, 1j, 2**200]),
                      fresh(lambda: [1, -2], lambda: object(), lambda: {}, lambda: np.array([-1])))
GOOD_DTYPES = st.sampled_from([None, np.float64, np.float32, "float64", np.dtype("float32"), np.float16])
BAD_DTYPES = fresh(lambda: "foo", lambda: complex, lambda: object, lambda: str, lambda: np.int64,
                   lambda: bool, lambda: 3, lambda: np.dtype("U3"), lambda: "complex64", lambda: [])
REDUCTION_BAD = fresh(lambda: "avg", lambda: "", lambda: None, lambda: 1, lambda: "MEAN", lambda: ["mean"])

SHAPES = hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4)  # empty ones too
NONEMPTY = hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=4)


def float_arrays(shape: Any = SHAPES) -> Any:
    """float64, float32 and float16 arrays with any values of their type (nan, inf, extremes)."""
    return st.one_of(hnp.arrays(np.float64, shape, elements=ANY_FLOAT),
                     hnp.arrays(np.float32, shape, elements=st.floats(width=32)),
                     hnp.arrays(np.float16, shape, elements=st.floats(width=16)))


INT_ARRAYS = st.one_of(hnp.arrays(np.int64, SHAPES, elements=st.integers(-5, 5)),
                       hnp.arrays(np.bool_, SHAPES), hnp.arrays(np.uint8, SHAPES))
OTHER_ARRAYS = st.one_of(INT_ARRAYS,
                         hnp.arrays(np.complex128, SHAPES, elements=st.complex_numbers(max_magnitude=10)))
GOOD_ARRAYS = hnp.arrays(np.float64, NONEMPTY, elements=FINITE)
BAD_ARRAYS = st.one_of(float_arrays(), OTHER_ARRAYS, NOT_DATA)


@st.composite
def tensors(draw: Any, arrays: Any = None) -> Tensor:
    """Valid Tensors of every kind: float64/32/16 with any values and shapes (empty too), needing
    grad or not, and integer and bool tensors made with an explicit dtype."""
    arr = draw(arrays if arrays is not None else st.one_of(float_arrays(), INT_ARRAYS))
    if arr.dtype.kind == "f":
        return Tensor(arr, requires_grad=draw(st.booleans()))
    return Tensor(arr, dtype=arr.dtype)


GOOD_TENSORS = tensors(GOOD_ARRAYS)
BAD_TENSOR_ARGS = st.one_of(tensors(), BAD_ARRAYS, BAD_NUMBERS)  # where a Tensor argument goes


def leaves(*xs: Any) -> list[Any]:
    return [x for x in xs if isinstance(x, (Tensor, Value))]


# -- Value --------------------------------------------------------------------------------------------

VALUE_BINARY = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv,
                "**": operator.pow}


@fuzz()
@given(st.data())
def test_value_constructor_and_label(data):
    case = Case(data)
    bad = st.one_of(NONFINITE, HUGE, BAD_NUMBERS, NOT_DATA)
    x = case.pick(st.one_of(FINITE, st.integers(-5, 5)), bad, "data")
    label = case.pick(st.sampled_from(["", "w", "γ"]), BAD_NUMBERS, "label")
    v = case.call("Value()", Value, x, label=label, names=("Value", "label"))
    if v is not RAISED:
        assert isinstance(v.data, float) and v.grad == 0.0


@fuzz(2)
@given(st.data())
def test_value_operators(data):
    case = Case(data)
    symbol = case.draw(st.sampled_from(sorted(VALUE_BINARY)), "op")
    x = Value(case.pick(FINITE, st.one_of(HUGE, NONFINITE), "x"))
    other = case.pick(st.one_of(FINITE, FINITE.map(Value)),
                      st.one_of(BAD_NUMBERS, NOT_DATA, ANY_FLOAT.map(Value), ANY_FLOAT), "other")
    args = (other, x) if case.draw(st.booleans(), "reflected") else (x, other)
    # "/: division by zero", "op 'r-' produced inf", "cannot combine a Tensor with a Value"
    names = (f"{symbol}:", f"'{symbol}'", f"'r{symbol}'", "Value")
    with tl.detect_anomaly(case.draw(st.booleans(), "detect_anomaly")):
        out = case.call(f"Value {symbol}", VALUE_BINARY[symbol], *args, names=names)
        if out is RAISED:
            return
        assert isinstance(out, Value)
        case.no_nan(f"Value {symbol}", out.data)
        if case.call("Value.backward", out.backward) is RAISED:
            return
    if math.isfinite(out.data):
        # d(c ** p)/dp = c ** p log c is nan for a negative base c (documented, as torch)
        base = args[0].data if isinstance(args[0], Value) else args[0]
        exponent_of_negative = symbol == "**" and isinstance(args[1], Value) and base < 0
        case.no_nan(f"Value {symbol} (gradient)", *leaves(*args), unless=exponent_of_negative)


@fuzz()
@given(st.data())
def test_value_methods(data):
    case = Case(data)
    methods = ["exp", "log", "sqrt", "tanh", "sigmoid", "relu", "abs", "neg"]
    method = case.draw(st.sampled_from(methods), "method")
    x = Value(case.pick(FINITE, st.one_of(HUGE, NONFINITE), "x"))
    fn = (lambda: -x) if method == "neg" else getattr(x, method)
    with tl.detect_anomaly(case.draw(st.booleans(), "detect_anomaly")):
        out = case.call(f"Value.{method}", fn)
        if out is RAISED:
            return
        case.no_nan(f"Value.{method}", out.data)
        if case.call("Value.backward", out.backward) is RAISED:
            return
    if math.isfinite(out.data):
        case.no_nan(f"Value.{method} (gradient)", x.grad)


# -- Tensor -------------------------------------------------------------------------------------------


@fuzz()
@given(st.data())
def test_tensor_constructor(data):
    case = Case(data)
    good = st.one_of(GOOD_ARRAYS, GOOD_ARRAYS.map(lambda a: a.tolist()), FINITE, st.integers(-9, 9))
    x = case.pick(good, st.one_of(BAD_ARRAYS, BAD_NUMBERS), "data")
    kwargs = {"requires_grad": case.pick(st.booleans(), BAD_BOOLS, "requires_grad"),
              "dtype": case.pick(GOOD_DTYPES, BAD_DTYPES, "dtype"),
              "label": case.pick(st.just(""), BAD_NUMBERS, "label")}
    t = case.call("Tensor()", Tensor, x, names=("Tensor", "label"), **kwargs)
    if t is not RAISED:
        assert isinstance(t.data, np.ndarray) and t.data.dtype.kind in "fiub"
        assert not t.requires_grad or t.data.dtype.kind == "f"


@fuzz()
@given(st.data())
def test_tensor_factories(data):
    case = Case(data)
    factory = case.draw(st.sampled_from(["zeros", "ones", "randn"]), "factory")
    shape = case.pick(st.lists(st.integers(0, 4), max_size=3),
                      st.lists(st.one_of(st.integers(0, 3), BAD_SIZES), min_size=1, max_size=3), "shape")
    args = (tuple(shape),) if case.draw(st.booleans(), "shape as one tuple") else tuple(shape)
    kwargs = {"dtype": case.pick(st.sampled_from([np.float64, np.float32]), BAD_DTYPES, "dtype"),
              "requires_grad": case.pick(st.booleans(), BAD_BOOLS, "requires_grad")}
    if factory == "randn":
        kwargs["seed"] = case.pick(GOOD_SEEDS, BAD_SEEDS, "seed")
    t = case.call(f"Tensor.{factory}", getattr(Tensor, factory), *args, names=(factory, "Tensor:"), **kwargs)
    if t is not RAISED:  # zeros(2, 3), zeros((2, 3)) and zeros([2, 3]) alike
        flat = shape[0] if len(shape) == 1 and isinstance(shape[0], (list, tuple)) else shape
        assert t.shape == tuple(int(n) for n in flat)


TENSOR_OPERATORS = {"+": (operator.add, np.add), "-": (operator.sub, np.subtract),
                    "*": (operator.mul, np.multiply), "/": (operator.truediv, np.true_divide),
                    "**": (operator.pow, np.power), "@": (operator.matmul, np.matmul)}


def _as_numpy_operand(a: Any) -> Any:
    return a.data if isinstance(a, Tensor) else float(a) if isinstance(a, numbers.Real) else np.asarray(a)


@fuzz(3)
@given(st.data())
def test_tensor_operators(data):
    case = Case(data)
    symbol = case.draw(st.sampled_from(sorted(TENSOR_OPERATORS)), "op")
    op, numpy_op = TENSOR_OPERATORS[symbol]
    x = case.pick(GOOD_TENSORS, tensors(), "x")
    other = case.pick(st.one_of(GOOD_TENSORS, GOOD_ARRAYS, FINITE), st.one_of(BAD_TENSOR_ARGS, ANY_FLOAT),
                      "other")
    args = (other, x) if case.draw(st.booleans(), "reflected") else (x, other)
    # "+: shapes ... are not broadcastable", "op '+' produced inf", "cannot combine a Tensor with ..."
    names = (f"{symbol}:", f"'{symbol}'", "matmul" if symbol == "@" else "", "Tensor")

    def claims_unbroadcastable(e: BaseException) -> str | None:
        """A message that says 'not broadcastable' must be about shapes that are not."""
        if "not broadcastable" not in str(e):
            return None
        try:
            np.broadcast_shapes(*(np.shape(getattr(a, "data", a)) for a in args))
        except ValueError:
            return None
        return f"says the shapes are not broadcastable, but they are: {e}"

    with tl.detect_anomaly(case.draw(st.booleans(), "detect_anomaly")):
        out = case.call(f"Tensor {symbol}", op, *args, names=names, on_error=claims_unbroadcastable)
        if out is RAISED:
            return
        assert isinstance(out, Tensor)
        try:  # nan only where numpy's own op gives nan (0/0, a negative base to a fractional power)
            with np.errstate(all="ignore"):
                expected = np.asarray(numpy_op(*map(_as_numpy_operand, args)), dtype=np.float64)
        except (TypeError, ValueError):
            expected = None  # numpy refuses too (bool arithmetic, ...)
        if expected is not None and (expected.shape != out.shape or
                                     np.any(np.isnan(out.data) & ~np.isnan(expected))):
            violation(f"Tensor {symbol}", f"result differs from numpy's (nan or shape) for {args!r}")
        if not case.backward(out):
            return
    if np.all(np.isfinite(out.data)):
        # d(c ** p)/dp = c ** p log c is nan for a negative base (documented, as torch)
        exponent_of_negative = symbol == "**" and np.any(np.asarray(_as_numpy_operand(args[0])) < 0)
        grads = [a.grad for a in leaves(*args)]
        case.no_nan(f"Tensor {symbol} (gradient)", *grads,
                    unless=exponent_of_negative or (symbol == "**" and _pow_partials_overflow(*args)))


def _pow_partials_overflow(base: Any, exponent: Any) -> bool:
    """Whether a local derivative of ``base ** exponent`` overflows to inf although the result is
    finite (a subnormal base with an exponent below 1: ``p x^(p-1)``). Summed over a broadcast
    axis, +inf and -inf make nan: IEEE arithmetic's (torch gives the same nan), not ours."""
    x, p = (np.asarray(_as_numpy_operand(a), dtype=np.float64) for a in (base, exponent))
    with np.errstate(all="ignore"):
        d_x = np.where(p == 0, 0.0, p * x ** (p - 1))
        d_p = np.where(x == 0, 0.0, x**p * np.log(np.where(x > 0, x, 1.0)))
    return bool(np.isinf(d_x).any() or np.isinf(d_p).any())


# numpy's nan as the oracle where numpy has the op
ELEMENTWISE = {"exp": np.exp, "log": np.log, "sqrt": np.sqrt, "tanh": np.tanh, "abs": np.abs,
               "neg": np.negative, "relu": None, "sigmoid": None, "softplus": None, "clip": None}


@fuzz(2)
@given(st.data())
def test_tensor_elementwise_methods(data):
    case = Case(data)
    method = case.draw(st.sampled_from(sorted(ELEMENTWISE)), "method")
    x = case.pick(GOOD_TENSORS, tensors(), "x")
    kwargs = {}
    if method == "clip":
        bound, bad = st.one_of(st.none(), FINITE), st.one_of(BAD_NUMBERS, NOT_DATA)
        kwargs = {"min": case.pick(bound, bad, "min"), "max": case.pick(bound, bad, "max")}
    fn = (lambda: -x) if method == "neg" else getattr(x, method)
    with tl.detect_anomaly(case.draw(st.booleans(), "detect_anomaly")):
        out = case.call(f"Tensor.{method}", fn, **kwargs)
        if out is RAISED:
            return
        assert isinstance(out, Tensor) and out.shape == x.shape
        # log and sqrt give nan below 0, as numpy and torch (documented); nothing else may
        with np.errstate(all="ignore"):
            documented = np.isnan(ELEMENTWISE[method](x.data)) if ELEMENTWISE[method] else False
        if case.moderate and np.any(np.isnan(out.data) & ~documented):
            violation(f"Tensor.{method}", "nan from finite input")
        if not case.backward(out):
            return
    if np.all(np.isfinite(out.data)):
        case.no_nan(f"Tensor.{method} (gradient)", x.grad)


AXES_BAD = st.one_of(st.sampled_from([5, -9, 1.5, "0", True, NAN]), fresh(
    lambda: np.float64(1.0), lambda: [0, 0], lambda: (0, -3), lambda: [[0]], lambda: {0: 1}, lambda: object(),
    lambda: np.array([0, 1]), lambda: (None,)))


@fuzz(2)
@given(st.data())
def test_tensor_reductions(data):
    case = Case(data)
    method = case.draw(st.sampled_from(["sum", "mean", "var", "max", "softmax", "log_softmax"]), "method")
    x = case.pick(GOOD_TENSORS, tensors(), "x")
    one_axis = "softmax" in method
    good_axes = st.one_of(st.none(), st.integers(-3, 2), st.tuples(st.integers(-3, 2)))
    kwargs = {"axis": case.pick(st.integers(-3, 2) if one_axis else good_axes, AXES_BAD, "axis")}
    if not one_axis:
        kwargs["keepdims"] = case.pick(st.booleans(), BAD_BOOLS, "keepdims")
    if method == "var":
        kwargs["correction"] = case.pick(st.integers(0, 1), st.one_of(BAD_NUMBERS, NOT_DATA), "correction")
    with tl.detect_anomaly(case.draw(st.booleans(), "detect_anomaly")):
        out = case.call(f"Tensor.{method}", getattr(x, method), **kwargs)
        if out is RAISED:
            return
        case.no_nan(f"Tensor.{method}", out.data)
        if not case.backward(out):
            return
    if np.all(np.isfinite(out.data)):
        case.no_nan(f"Tensor.{method} (gradient)", x.grad)


INDEX_GOOD = st.one_of(st.integers(0, 1), st.just(slice(None)), st.just(Ellipsis), st.just(None),
                       st.tuples(st.integers(0, 1), st.just(slice(None, 1))), fresh(lambda: [0, 0, 1]))
INDEX_BAD = st.one_of(
    st.sampled_from([1.5, "a", 99, -99, True, NAN, (0, 0, 0, 0), (Ellipsis, Ellipsis)]),
    fresh(lambda: slice(None, None, 0), lambda: [[0, 1], [0]], lambda: ["a"], lambda: {}, lambda: object(),
          lambda: Tensor([0.5, 1.7]), lambda: Tensor([NAN]), lambda: np.array([True, False, True, False]),
          lambda: [0, 99], lambda: np.array([[0], [1]]), lambda: (np.array([0, 1]), np.array([0, 1, 2])),
          lambda: slice("a", None), lambda: Value(0.0)))
SHAPE_ARGS_BAD = st.one_of(st.lists(st.one_of(st.integers(-3, 5), BAD_SIZES), min_size=1, max_size=3),
                           fresh(lambda: [(2, 3), 4], lambda: ["a"], lambda: [None], lambda: [[-1, -1]]))


@fuzz(2)
@given(st.data())
def test_tensor_shape_ops(data):
    case = Case(data)
    method = case.draw(st.sampled_from(["reshape", "transpose", "getitem", "T"]), "method")
    x = case.pick(GOOD_TENSORS, tensors(), "x")
    if method == "reshape":
        good = st.sampled_from([[x.size], [-1], [(1, x.size)], [1, -1]])
        args, fn = case.pick(good, SHAPE_ARGS_BAD, "shape"), x.reshape
    elif method == "transpose":
        good = st.sampled_from([[], [tuple(range(x.ndim))], list(range(x.ndim))[::-1]])
        args, fn = case.pick(good, SHAPE_ARGS_BAD, "axes"), x.transpose
    elif method == "T":
        args, fn = [], lambda: x.T
    else:
        args, fn = [case.pick(INDEX_GOOD, INDEX_BAD, "index")], x.__getitem__
    out = case.call(f"Tensor.{method}", fn, *args, names=({"T": "transpose"}.get(method, method),))
    if out is not RAISED and case.backward(out):
        case.no_nan(f"Tensor.{method} (gradient)", x.grad)


@fuzz(2)
@given(st.data())
def test_tensor_backward_and_conveniences(data):
    case = Case(data)
    x = case.pick(GOOD_TENSORS, tensors(), "x")
    if x.requires_grad:
        x.grad = np.full(x.shape, 0.5, x.dtype)  # a failed backward must leave it so
    y = x * 2.0 if x.dtype.kind == "f" else x
    method = case.draw(st.sampled_from(["backward", "item", "float", "len", "detach", "numpy", "zero_grad",
                                        "label"]), "method")
    if method == "backward":
        grad = case.pick(st.one_of(st.none(), st.just(np.ones(y.shape))), st.one_of(BAD_ARRAYS, BAD_NUMBERS),
                         "grad")
        case.call("Tensor.backward", y.backward, grad, state=lambda: freeze(x))
    elif method == "label":
        case.call("Tensor.label", setattr, y, "label", case.pick(st.just("a"), BAD_NUMBERS, "label"))
    else:
        calls = {"item": y.item, "float": lambda: float(y), "len": lambda: len(y), "detach": y.detach,
                 "numpy": y.numpy, "zero_grad": y.zero_grad}
        case.call(f"Tensor.{method}", calls[method], names=({"float": "item"}.get(method, method),))


# -- gradcheck and testing --------------------------------------------------------------------------


def user_function(term: Any) -> Any:
    """A user's function: the sum of ``term(x)`` over its inputs, which must be all Values or all
    Tensors (a mix is the user's own TypeError, raised here)."""
    def f(*xs: Any) -> Any:
        if len({type(x) for x in xs}) != 1:
            raise TypeError("f: inputs must be all Values or all Tensors")
        terms = [term(x) if isinstance(x, Value) else term(x).sum() for x in xs]
        return sum(terms[1:], terms[0])
    return f


USER_FUNCTIONS = {"smooth": user_function(lambda x: (x * x).tanh()),
                  "a kink": user_function(lambda x: x.abs()),
                  "returns None": lambda *xs: None, "returns a float": lambda *xs: 1.5,
                  "returns a str": lambda *xs: "loss",
                  "returns a list of nodes": lambda *xs: [x * 2.0 for x in xs]}


@fuzz(0.7)
@given(st.data())
def test_gradcheck_and_assert_grads_match(data):
    case = Case(data)
    homogeneous = st.one_of(st.lists(FINITE.map(Value), min_size=1, max_size=3), st.lists(
        GOOD_ARRAYS.map(lambda a: Tensor(a, requires_grad=True)), min_size=1, max_size=3))
    odd = st.one_of(tensors(), BAD_NUMBERS, NOT_DATA, ANY_FLOAT.map(Value),
                    fresh(lambda: Value(1.0) * 2.0, lambda: Tensor([1.0], requires_grad=True) * 2.0))
    inputs = case.pick(homogeneous, st.one_of(st.lists(odd, max_size=3), NOT_DATA), "inputs")
    f = USER_FUNCTIONS[case.pick(st.just("smooth"), st.sampled_from(sorted(USER_FUNCTIONS)), "f")]
    kwargs = {k: case.pick(st.just(v), st.one_of(BAD_NUMBERS, NOT_DATA), k)
              for k, v in (("eps", 1e-6), ("atol", 1e-5), ("rtol", 1e-3))}
    nodes = leaves(*inputs) if isinstance(inputs, list) else []
    allowed = DOCUMENTED + (tl.GradcheckError,)
    if case.draw(st.booleans(), "testing.assert_grads_match"):
        args = inputs if isinstance(inputs, list) else [inputs]
        case.call("testing.assert_grads_match", testing.assert_grads_match, f, *args, names=("gradcheck",),
                  allowed=allowed, state=lambda: freeze(nodes), **kwargs)
    else:
        case.call("gradcheck", tl.gradcheck, f, inputs, allowed=allowed, state=lambda: freeze(nodes),
                  **kwargs)


@fuzz(0.5)
@given(st.data())
def test_testing_strategies_and_expressions(data):
    case = Case(data)
    which = case.draw(st.sampled_from(["values", "floats", "shapes", "tensors", "Expression"]), "function")
    bad_bound = st.one_of(BAD_NUMBERS, NOT_DATA)
    lo, hi = case.pick(st.just(-1.0), bad_bound, "min_value"), case.pick(st.just(1.0), bad_bound, "max_value")
    # a strategy's bad argument may be refused by hypothesis's own validation
    kw = {"allowed": DOCUMENTED + (InvalidArgument,), "foreign": HYPOTHESIS_DIR}
    if which in ("values", "floats"):
        case.call(f"testing.{which}", lambda: getattr(testing, which)(lo, hi).validate(), names=("value",),
                  **kw)
    elif which == "shapes":
        dims = case.pick(st.just(2), BAD_SIZES, "max_dims")
        case.call("testing.shapes", lambda: testing.shapes(0, dims).validate(), names=("dims",), **kw)
    elif which == "tensors":
        dtype = case.pick(st.sampled_from([np.float64, np.float32]), BAD_DTYPES, "dtype")
        shape = case.pick(st.just((2,)), st.one_of(BAD_SIZES, st.just((-1, 2))), "shape")
        case.call("testing.tensors", lambda: testing.tensors(shape, lo, hi, dtype=dtype).validate(),
                  names=("tensors", "dtype", "shape", "value"), **kw)
    else:
        args = case.pick(st.just([1.0, 2.0]), st.lists(FINITE, max_size=4), "inputs")
        expression = testing.Expression(2, (("add", (0, 1)),))
        case.call("testing.Expression", expression, *args, names=("Expression",))


# -- functional ---------------------------------------------------------------------------------------

LOSSES = ["mse_loss", "l2_divergence", "kl_div", "cross_entropy", "binary_cross_entropy",
          "binary_cross_entropy_with_logits"]


@st.composite
def good_loss_args(draw: Any, loss: str) -> tuple[Tensor, Any]:
    """(input, target) as each loss documents them, (B, C) with B, C in 1..4."""
    b, c = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    z = draw(hnp.arrays(np.float64, (b, c), elements=FINITE))
    unit = hnp.arrays(np.float64, (b, c), elements=st.floats(0, 1))
    if loss == "cross_entropy":
        return Tensor(z, requires_grad=True), draw(hnp.arrays(np.int64, (b,), elements=st.integers(0, c - 1)))
    if loss == "kl_div":
        d = draw(unit)
        return Tensor(z, requires_grad=True).log_softmax(), Tensor(d / np.maximum(d.sum(1, keepdims=True), 1))
    if loss == "binary_cross_entropy":
        return Tensor(draw(unit), requires_grad=True), Tensor(draw(unit))
    return Tensor(z, requires_grad=True), Tensor(draw(unit))


@fuzz(3)
@given(st.data())
def test_functional_losses(data):
    case = Case(data)
    loss = case.draw(st.sampled_from(LOSSES), "loss")
    good_input, good_target = case.draw(good_loss_args(loss), "good arguments")
    bad = st.one_of(BAD_TENSOR_ARGS, hnp.arrays(np.int64, hnp.array_shapes(max_dims=2, min_side=0),
                                                elements=st.integers(-3, 9)))
    x, target = case.pick(st.just(good_input), bad, "input"), case.pick(st.just(good_target), bad, "target")
    kwargs = {}
    if loss != "l2_divergence":
        reductions = ["mean", "sum", "none"] + (["batchmean"] if loss == "kl_div" else [])
        kwargs["reduction"] = case.pick(st.sampled_from(reductions), REDUCTION_BAD, "reduction")
    out = case.call(f"F.{loss}", getattr(F, loss), x, target, **kwargs)
    if out is RAISED:
        return
    case.no_nan(f"F.{loss}", out.data)
    if case.backward(out) and np.all(np.isfinite(out.data)):
        case.no_nan(f"F.{loss} (gradient)", *[a.grad for a in leaves(x, target)])


@fuzz(2)
@given(st.data())
def test_functional_activations_linear_and_dropout(data):
    case = Case(data)
    name = case.draw(st.sampled_from(["softmax", "log_softmax", "softplus", "linear", "dropout"]), "function")
    x = case.pick(GOOD_TENSORS, BAD_TENSOR_ARGS, "x")
    args, kwargs = [x], {}
    if name in ("softmax", "log_softmax"):
        kwargs["axis"] = case.pick(st.just(-1), AXES_BAD, "axis")
    elif name == "linear":
        n_in = x.shape[-1] if isinstance(x, Tensor) and x.ndim else 2
        weight = Tensor(np.full((3, n_in), 0.5), requires_grad=True)
        args += [case.pick(st.just(weight), BAD_TENSOR_ARGS, "weight"),
                 case.pick(st.sampled_from([None, Tensor(np.zeros(3), requires_grad=True)]), BAD_TENSOR_ARGS,
                           "bias")]
    elif name == "dropout":
        kwargs = {"p": case.pick(st.floats(0, 1), st.one_of(BAD_NUMBERS, NOT_DATA), "p"),
                  "training": case.pick(st.booleans(), BAD_BOOLS, "training"),
                  "seed": case.pick(GOOD_SEEDS, BAD_SEEDS, "seed")}
    out = case.call(f"F.{name}", getattr(F, name), *args, **kwargs)
    if out is RAISED:
        return
    case.no_nan(f"F.{name}", out.data)
    if case.backward(out) and np.all(np.isfinite(out.data)):
        case.no_nan(f"F.{name} (gradient)", *[a.grad for a in leaves(*args)])


@fuzz(2)
@given(st.data())
def test_functional_batch_norm_never_half_updates_the_running_stats(data):
    case = Case(data)
    c = case.draw(st.integers(1, 3), "channels")
    good_x = hnp.arrays(np.float64, st.sampled_from([(2, c), (4, c), (3, c, 2)]), elements=FINITE)
    x = case.pick(good_x.map(lambda a: Tensor(a, requires_grad=True)), BAD_TENSOR_ARGS, "x")
    odd_shapes = hnp.array_shapes(max_dims=2, min_side=0)
    bad_stats = st.one_of(float_arrays(odd_shapes), OTHER_ARRAYS, NOT_DATA, fresh(
        lambda: [0.0] * c, lambda: np.zeros(c, np.int64), lambda: np.zeros(c, np.float16),
        lambda: read_only(np.zeros(c))))
    running_mean = case.pick(st.one_of(st.none(), fresh(lambda: np.zeros(c))), bad_stats, "running_mean")
    running_var = case.pick(st.one_of(st.none(), fresh(lambda: np.ones(c))), bad_stats, "running_var")
    affine = st.one_of(st.none(), fresh(lambda: Tensor(np.ones(c), requires_grad=True)))
    weight = case.pick(affine, st.one_of(tensors(), BAD_ARRAYS), "weight")
    bias = case.pick(affine, st.one_of(tensors(), BAD_ARRAYS), "bias")
    bad_number = st.one_of(BAD_NUMBERS, NOT_DATA)
    kwargs = {"training": case.pick(st.booleans(), BAD_BOOLS, "training"),
              "momentum": case.pick(st.sampled_from([0.1, 0.0, 1.0]), bad_number, "momentum"),
              "eps": case.pick(st.sampled_from([1e-5, 1e-3]), bad_number, "eps")}
    stats = [a for a in (running_mean, running_var) if isinstance(a, np.ndarray)]
    out = case.call("F.batch_norm", F.batch_norm, x, running_mean, running_var, weight, bias,
                    state=lambda: freeze(stats), **kwargs)
    if out is RAISED:
        return
    # eps = 0 (or below the square of the smallest normal) gives 0/0 for a constant channel, as torch
    tiny_eps = not (isinstance(kwargs["eps"], float) and kwargs["eps"] >= 1e-12)
    case.no_nan("F.batch_norm", out.data, *stats, unless=tiny_eps)
    if case.backward(out) and np.all(np.isfinite(out.data)):
        case.no_nan("F.batch_norm (gradient)", *[a.grad for a in leaves(x, weight, bias)], unless=tiny_eps)


# -- nn -----------------------------------------------------------------------------------------------

POSITIVE = st.integers(1, 5)
PROBABILITY = st.floats(0, 1)
BAD_PROBABILITY = st.one_of(BAD_NUMBERS, NOT_DATA)


def _constructor_arguments(case: Case, name: str) -> tuple[tuple, dict]:
    """(args, kwargs) for ``nn.<name>(...)``, each from its good or bad pool."""
    def pick(good: Any, bad: Any, label: str) -> Any:
        return case.pick(good, bad, label)

    if name == "Linear":
        return ((pick(POSITIVE, BAD_SIZES, "in_features"), pick(POSITIVE, BAD_SIZES, "out_features")),
                {"bias": pick(st.booleans(), BAD_BOOLS, "bias"), "seed": pick(GOOD_SEEDS, BAD_SEEDS, "seed"),
                 "dtype": pick(st.just(np.float64), BAD_DTYPES, "dtype")})
    if name == "BatchNorm1d":
        return ((pick(POSITIVE, BAD_SIZES, "num_features"),),
                {"eps": pick(st.sampled_from([1e-5, 0.0]), BAD_PROBABILITY, "eps"),
                 "momentum": pick(st.one_of(st.none(), PROBABILITY), BAD_PROBABILITY, "momentum"),
                 "dtype": pick(st.just(np.float64), BAD_DTYPES, "dtype")})
    if name == "Dropout":
        return (pick(PROBABILITY, BAD_PROBABILITY, "p"),), {"seed": pick(GOOD_SEEDS, BAD_SEEDS, "seed")}
    if name == "Sequential":
        bad = st.lists(st.one_of(BAD_NUMBERS, NOT_DATA, fresh(nn.ReLU)), min_size=1, max_size=2)
        return tuple(pick(st.lists(fresh(nn.ReLU, nn.Tanh), max_size=2), bad, "modules")), {}
    if name == "MLP":
        bad_sizes = st.one_of(st.lists(st.one_of(POSITIVE, BAD_SIZES), max_size=4), BAD_NUMBERS, NOT_DATA)
        bad_activation = st.one_of(st.sampled_from(["softmax", "ReLU", ""]), BAD_NUMBERS)
        return ((pick(st.lists(POSITIVE, min_size=2, max_size=4), bad_sizes, "sizes"),),
                {"activation": pick(st.sampled_from(["relu", "tanh"]), bad_activation, "activation"),
                 "batchnorm": pick(st.booleans(), BAD_BOOLS, "batchnorm"),
                 "dropout": pick(PROBABILITY, BAD_PROBABILITY, "dropout"),
                 "seed": pick(GOOD_SEEDS, BAD_SEEDS, "seed")})
    if name == "Parameter":
        return (pick(GOOD_ARRAYS, st.one_of(BAD_ARRAYS, BAD_NUMBERS), "data"),), {}
    return (), {"reduction": pick(st.sampled_from(["mean", "sum"]), REDUCTION_BAD, "reduction")}  # losses


NN_CLASSES = ["Linear", "BatchNorm1d", "Dropout", "Sequential", "MLP", "Parameter", "MSELoss",
              "CrossEntropyLoss", "BCELoss", "KLDivLoss"]


@fuzz(2)
@given(st.data())
def test_nn_constructors(data):
    case = Case(data)
    name = case.draw(st.sampled_from(NN_CLASSES), "class")
    args, kwargs = _constructor_arguments(case, name)
    inner = ("Linear", "BatchNorm1d", "Dropout") if name == "MLP" else ()  # an MLP's layers check their own
    module = case.call(f"nn.{name}()", getattr(nn, name), *args, names=(name, "Tensor", *inner), **kwargs)
    if isinstance(module, nn.Module):
        case.no_nan(f"nn.{name}()", *[p.data for p in module.parameters()])


def _modules() -> dict[str, nn.Module]:
    """Fresh modules to fuzz forward with: each layer, and a deep MLP with BatchNorm and dropout
    whose later layers can fail after earlier ones have updated running statistics."""
    return {"Linear": nn.Linear(3, 2, seed=0), "BatchNorm1d": nn.BatchNorm1d(3),
            "BatchNorm1d(momentum=None)": nn.BatchNorm1d(3, momentum=None),
            "Dropout": nn.Dropout(0.5, seed=0),
            "ReLU": nn.ReLU(), "Sigmoid": nn.Sigmoid(), "Tanh": nn.Tanh(), "Identity": nn.Identity(),
            "Sequential": nn.Sequential(nn.Linear(3, 4, seed=0), nn.BatchNorm1d(4), nn.Tanh()),
            "MLP": nn.MLP([3, 4, 5, 2], batchnorm=True, dropout=0.5, seed=0)}


FORWARD_NAMES = {"Linear": ("linear",), "BatchNorm1d": ("BatchNorm1d", "batch_norm"), "Dropout": ("dropout",),
                 "ReLU": ("relu",), "Sigmoid": ("sigmoid",), "Tanh": ("tanh",), "Identity": ("Identity",),
                 "Sequential": ("linear", "BatchNorm1d", "batch_norm", "tanh"),
                 "MLP": ("linear", "BatchNorm1d", "batch_norm", "relu", "dropout")}


@fuzz(3)
@given(st.data())
def test_nn_forward_never_half_updates_a_module(data):
    case = Case(data)
    name = case.draw(st.sampled_from(sorted(_modules())), "module")
    module = _modules()[name].train(not case.draw(st.booleans(), "eval mode"))
    good = hnp.arrays(np.float64, st.tuples(st.integers(2, 5), st.just(3)), elements=FINITE)
    odd_shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=5)  # (2, 4, 3) passes 3 layers
    odd = st.one_of(hnp.arrays(np.float64, odd_shapes, elements=ANY_FLOAT),
                    hnp.arrays(np.float64, st.tuples(st.integers(0, 1), st.just(3)), elements=FINITE))
    as_tensor = st.one_of(odd, odd.map(Tensor), OTHER_ARRAYS, NOT_DATA, BAD_NUMBERS)
    x = case.pick(good.map(lambda a: Tensor(a, requires_grad=True)), as_tensor, "x")
    base = name.split("(")[0]
    out = case.call(f"nn.{base}.forward", module, x, names=FORWARD_NAMES[base],
                    state=lambda: module_state(module))
    if out is RAISED:
        return
    case.no_nan(f"nn.{base}.forward", out, *module.buffers())
    if case.backward(out) and np.all(np.isfinite(out.data)):
        case.no_nan(f"nn.{base}.forward (gradient)", *[p.grad for p in module.parameters()])


LOSS_MODULES = {"MSELoss": "mse_loss", "CrossEntropyLoss": "cross_entropy", "BCELoss": "binary_cross_entropy",
                "KLDivLoss": "kl_div"}


@fuzz()
@given(st.data())
def test_nn_loss_modules(data):
    case = Case(data)
    name = case.draw(st.sampled_from(sorted(LOSS_MODULES)), "loss")
    good_input, good_target = case.draw(good_loss_args(LOSS_MODULES[name]), "good arguments")
    x = case.pick(st.just(good_input), BAD_TENSOR_ARGS, "input")
    target = case.pick(st.just(good_target), BAD_TENSOR_ARGS, "target")
    out = case.call(f"nn.{name}.forward", getattr(nn, name)(), x, target, names=(name, LOSS_MODULES[name]))
    if out is not RAISED:
        case.no_nan(f"nn.{name}.forward", out.data)


ARCHITECTURES = {"Linear": lambda: nn.Linear(3, 2, seed=1), "BatchNorm1d": lambda: nn.BatchNorm1d(3),
                 "MLP": lambda: nn.MLP([3, 4, 2], batchnorm=True, seed=1)}


def _set(key_value: Any) -> Any:
    """A state_dict mutation that replaces the value under the key by ``key_value(old value)``."""
    return lambda sd, key: sd.__setitem__(key, key_value(sd[key]))


STATE_DICT_MUTATIONS = st.sampled_from([
    ("drop a key", lambda sd, key: sd.pop(key)),
    ("add a key", lambda sd, key: sd.__setitem__(key + ".extra", np.zeros(1))),
    ("add an int key", lambda sd, key: sd.__setitem__(0, np.zeros(1))),
    ("wrong shape", _set(lambda v: np.zeros(np.shape(v) + (2,)))),
    ("transposed", _set(lambda v: np.asarray(v).T.copy()[..., None])),
    ("complex", _set(lambda v: np.asarray(v) + 1j)),
    ("object array", _set(lambda v: np.asarray(v).astype(object))),
    ("strings", _set(lambda v: np.asarray(v).astype(str))),
    ("float16", _set(lambda v: np.asarray(v, np.float16))),
    ("ints", _set(lambda v: np.asarray(v).astype(np.int64))),
    ("nan", _set(lambda v: np.full(np.shape(v), NAN))),
    ("a list", _set(lambda v: np.asarray(v).tolist())),
    ("a Tensor", _set(lambda v: Tensor(np.asarray(v, float)))),
    ("None", _set(lambda v: None)), ("a str", _set(lambda v: "weights")),
    ("a dict", _set(lambda v: {"a": 1})),
    ("ragged", _set(lambda v: [[1.0, 2.0], [3.0]])),
])


@fuzz(2)
@given(st.data())
def test_nn_load_state_dict_is_all_or_nothing(data):
    case = Case(data)
    arch = case.draw(st.sampled_from(sorted(ARCHITECTURES)), "architecture")
    module, source = ARCHITECTURES[arch](), ARCHITECTURES[arch]()
    source(Tensor(np.arange(6.0).reshape(2, 3)))  # other running statistics than module's
    state = source.state_dict()
    if case.draw(st.booleans(), "spoil it"):
        case.bad = True
        for _, mutate in case.draw(st.lists(STATE_DICT_MUTATIONS, min_size=1, max_size=3), "mutations"):
            keys = sorted(k for k in state if isinstance(k, str))
            if keys:
                key = case.draw(st.sampled_from(keys), "key")
                with contextlib.suppress(Exception):  # an earlier mutation spoiled what this one needs
                    mutate(state, key)
    not_a_dict = fresh(lambda: list(state.items()), lambda: tuple(state.values()), lambda: np.zeros(3))
    whole = case.pick(st.just(state), st.one_of(NOT_DATA, BAD_NUMBERS, not_a_dict), "state_dict")
    strict = case.pick(st.just(True), st.one_of(st.just(False), BAD_BOOLS), "strict")
    result = case.call(f"nn.{arch}.load_state_dict", module.load_state_dict, whole, strict=strict,
                       state=lambda: module_state(module))
    if result is not RAISED and strict is True:
        for key, value in module.state_dict().items():
            np.testing.assert_array_equal(value, np.asarray(whole[key]).astype(value.dtype))


def _spoiled_files(directory: str, good: str) -> dict[str, Any]:
    """Files load_into must refuse, by name: functions that write one and return its path."""
    raw = open(good, "rb").read()

    def write(name: str, content: bytes) -> str:
        path = os.path.join(directory, name)
        with open(path, "wb") as f:
            f.write(content)
        return path

    def other_architecture() -> str:
        nn.save(nn.Linear(5, 1, seed=0), os.path.join(directory, "other.npz"))
        return os.path.join(directory, "other.npz")

    def npy() -> str:
        np.save(os.path.join(directory, "single.npy"), np.zeros(3))
        return os.path.join(directory, "single.npy")

    def pickled() -> str:
        np.savez(os.path.join(directory, "pickled.npz"), weight=np.array([object()]))
        return os.path.join(directory, "pickled.npz")

    def flipped(at: float) -> str:
        spoiled = bytearray(raw)
        spoiled[int(at * (len(spoiled) - 1))] ^= 0xFF
        return write(f"flipped{at}.npz", bytes(spoiled))

    files = {"empty": lambda: write("empty.npz", b""), "text": lambda: write("text.npz", b"not a model\n"),
             "other architecture": other_architecture, "npy": npy, "pickled objects": pickled,
             "missing": lambda: os.path.join(directory, "missing.npz"), "a directory": lambda: directory,
             "an empty path": lambda: ""}
    for fraction in (0.1, 0.5, 0.9, 0.99):
        files[f"truncated to {fraction}"] = lambda f=fraction: write(f"cut{f}.npz", raw[: int(len(raw) * f)])
    for at in (0.02, 0.1, 0.3, 0.6, 0.97):
        files[f"a byte flipped at {at}"] = lambda at=at: flipped(at)
    return files


@fuzz()
@given(st.data())
def test_nn_save_and_load_into_are_all_or_nothing(data):
    case = Case(data)
    arch = case.draw(st.sampled_from(sorted(ARCHITECTURES)), "architecture")
    source, module = ARCHITECTURES[arch](), ARCHITECTURES[arch]()
    with tempfile.TemporaryDirectory() as directory, pytest.MonkeyPatch.context() as mp:
        os.mkdir(os.path.join(directory, "cwd"))
        mp.chdir(os.path.join(directory, "cwd"))  # save(m, "") writes beside the cwd: keep it in here
        good = os.path.join(directory, "model.npz")
        nn.save(source, good)
        odd_paths = st.sampled_from([os.path.join(directory, "no", "such", "dir.npz"), directory, "",
                                     good + os.sep, os.path.join(directory, "nul\x00.npz")])
        target = case.pick(st.just(os.path.join(directory, "new.npz")),
                           st.one_of(odd_paths, BAD_NUMBERS, NOT_DATA), "save path")
        if isinstance(target, str) and target and os.path.isdir(os.path.dirname(target)) \
                and "\x00" not in target and not target.endswith(os.sep) and not os.path.isdir(target):
            with open(target, "wb") as f:
                f.write(b"old content")  # a failed save must leave it
        listing = sorted(os.listdir(directory))
        save = (lambda: source.save(target)) if case.draw(st.booleans(), "Module.save") else (
            lambda: nn.save(source, target))
        if case.call("nn.save", save, names=("save", target if isinstance(target, str) else ""),
                     allowed=DOCUMENTED + (OSError,)) is RAISED:
            old = isinstance(target, str) and os.path.isfile(target) and open(target, "rb").read()
            if old not in (False, b"old content"):
                violation("nn.save", "a failed save changed the existing file")
            if sorted(os.listdir(directory)) != listing:
                violation("nn.save", "a failed save left files behind")
        files = _spoiled_files(directory, good)
        choice = case.pick(st.just("the saved model"), st.sampled_from(sorted(files)), "file")
        path = good if choice == "the saved model" else files[choice]()
        path = case.pick(st.just(path), st.one_of(BAD_NUMBERS, NOT_DATA), "load path")
        load = (lambda: module.load(path)) if case.draw(st.booleans(), "Module.load") else (
            lambda: nn.load_into(module, path))
        names = ("load_into", "load_state_dict", path if isinstance(path, str) else "")
        if case.call("nn.load_into", load, names=names, state=lambda: module_state(module)) is not RAISED:
            for key, value in module.state_dict().items():
                np.testing.assert_array_equal(value, source.state_dict()[key])


# -- optim --------------------------------------------------------------------------------------------

FLAGS = ("nesterov", "amsgrad", "eps_inside_sqrt", "maximize", "centered")
PAIRS = ("betas", "etas", "step_sizes")
OPTION_GOOD = {
    "lr": st.sampled_from([0.1, 0.01, 0.0]), "momentum": st.sampled_from([0.0, 0.9]),
    "weight_decay": st.sampled_from([0.0, 0.01]), "eps": st.sampled_from([1e-8, 1e-6]),
    "alpha": st.sampled_from([0.99, 0.9]), "betas": st.sampled_from([(0.9, 0.999), (0.0, 0.5)]),
    "etas": st.just((0.5, 1.2)), "step_sizes": st.just((1e-6, 50.0)), "dampening": st.just(0.0),
    "nesterov": st.just(False), "amsgrad": st.booleans(), "eps_inside_sqrt": st.booleans(),
    "maximize": st.booleans(), "centered": st.booleans()}
BAD_PAIRS = st.one_of(BAD_NUMBERS, NOT_DATA, st.tuples(*[st.one_of(BAD_NUMBERS, FINITE)] * 2),
                      fresh(lambda: (0.9,), lambda: (0.9, 0.9, 0.9), lambda: (0.1, 0.9), lambda: (2.0, 1.5)))
OPTION_BAD = {k: BAD_PAIRS if k in PAIRS else st.one_of(BAD_NUMBERS, NOT_DATA, BAD_BOOLS) if k in FLAGS else
              st.one_of(BAD_NUMBERS, NOT_DATA, st.sampled_from([-0.1, 1.5])) for k in OPTION_GOOD}
OPTIMIZERS = {"SGD": ["lr", "momentum", "dampening", "weight_decay", "nesterov", "maximize"],
              "RMSprop": ["lr", "alpha", "eps", "weight_decay", "momentum", "centered", "eps_inside_sqrt",
                          "maximize"],
              "Adam": ["lr", "betas", "eps", "weight_decay", "amsgrad", "eps_inside_sqrt", "maximize"],
              "AdamW": ["lr", "betas", "eps", "weight_decay", "amsgrad", "maximize"],
              "Rprop": ["lr", "etas", "step_sizes", "maximize"]}


def _options(case: Case, name: str, bad: bool = True) -> dict[str, Any]:
    """Some of the optimizer's keyword arguments, from the good pools (and the bad ones if ``bad``)."""
    return {k: case.pick(OPTION_GOOD[k], OPTION_BAD[k], k) if bad else case.draw(OPTION_GOOD[k], k)
            for k in OPTIMIZERS[name] if case.draw(st.booleans(), f"pass {k}")}


def _parameters(case: Case) -> list[Any]:
    """Parameters: float64 and float32 Tensors and Values; bad: int, bool and float16 tensors and
    tensors holding nan, inf or nothing."""
    def as_parameter(a: np.ndarray) -> Tensor:
        return Tensor(a, requires_grad=True) if a.dtype.kind == "f" else Tensor(a, dtype=a.dtype)

    float32 = st.floats(-10, 10, width=32)
    good = st.one_of(hnp.arrays(np.float64, NONEMPTY, elements=MODERATE).map(as_parameter),
                     hnp.arrays(np.float32, NONEMPTY, elements=float32).map(as_parameter),
                     MODERATE.map(Value))
    bad = st.one_of(INT_ARRAYS.map(as_parameter), float_arrays().map(as_parameter))
    return [case.pick(good, bad, f"parameter {i}") for i in range(case.draw(st.integers(1, 3), "parameters"))]


@fuzz(2)
@given(st.data())
def test_optim_constructors(data):
    case = Case(data)
    name = case.draw(st.sampled_from(sorted(OPTIMIZERS)), "optimizer")
    odd_params = fresh(
        lambda: [], lambda: Tensor([1.0], requires_grad=True), lambda: [1.0, 2.0], lambda: [None],
        lambda: [Value(1.0)] * 2, lambda: [{"lr": 0.1}], lambda: [{"params": [Value(1.0)], "foo": 1}],
        lambda: [{"params": [Value(1.0)]}, Value(2.0)], lambda: iter([]), lambda: np.zeros(3),
        lambda: [{"params": [Value(1.0)], "lr": -1.0}])
    params = case.pick(st.just(_parameters(case)), st.one_of(NOT_DATA, BAD_NUMBERS, odd_params), "params")
    case.call(f"optim.{name}()", getattr(optim, name), params, **_options(case, name))


def _gradient(case: Case, p: Any) -> Any:
    """A gradient for p: None or finite of p's shape; bad: other shapes, dtypes, types, nan, inf."""
    shape = np.shape(p.data)
    good = st.one_of(st.none(), hnp.arrays(np.float64, st.just(shape), elements=FINITE))
    bad = st.one_of(hnp.arrays(np.float64, SHAPES, elements=ANY_FLOAT), OTHER_ARRAYS, NOT_DATA, BAD_NUMBERS,
                    hnp.arrays(np.complex128, st.just(shape), elements=st.complex_numbers(max_magnitude=2)),
                    hnp.arrays(np.float64, st.just(shape), elements=ANY_FLOAT))
    grad = case.pick(good, bad, "grad")
    if isinstance(p, Value) and isinstance(grad, np.ndarray) and grad.shape == () and grad.dtype.kind == "f" \
            and case.draw(st.booleans(), "as a float"):
        grad = float(grad)
    return grad


@fuzz(3)
@given(st.data())
def test_optim_step_is_all_or_nothing(data):
    case = Case(data)
    name = case.draw(st.sampled_from(sorted(OPTIMIZERS)), "optimizer")
    params = _parameters(case)
    opt = case.call(f"optim.{name}()", getattr(optim, name), params, **_options(case, name, bad=False))
    if opt is RAISED:
        return
    for _ in range(case.draw(st.integers(1, 2), "steps")):
        for p in params:
            p.grad = _gradient(case, p)
        case.call(f"optim.{name}.step", opt.step, names=(name,), state=lambda: optimizer_state(opt, params))
        # eps = 0 divides 0 by 0 where a gradient is 0 (as torch; the lecture's exact form)
        case.no_nan(f"optim.{name}.step", [p.data for p in params],
                    unless=any(g.get("eps") == 0 for g in opt.param_groups))
    set_to_none = case.pick(st.booleans(), BAD_BOOLS, "set_to_none")
    case.call(f"optim.{name}.zero_grad", opt.zero_grad, set_to_none)


def _at(path: list[Any], value: Any) -> Any:
    """An optimizer state_dict mutation that sets ``sd[path[0]][path[1]]...`` to value."""
    def mutate(sd: dict) -> None:
        for key in path[:-1]:
            sd = sd[key]
        sd[path[-1]] = value() if callable(value) else value
    return mutate


def _each_state(change: Any) -> Any:
    """A mutation applying ``change(entry)`` to every per-parameter state entry."""
    return lambda sd: [change(entry) for entry in sd["state"].values()]


def _arrays(fn: Any) -> Any:
    return _each_state(lambda e: e.update({k: fn(v) for k, v in e.items() if isinstance(v, np.ndarray)}))


OPTIMIZER_STATE_MUTATIONS = st.sampled_from([
    ("no state", lambda sd: sd.pop("state")), ("no param_groups", lambda sd: sd.pop("param_groups")),
    ("state None", _at(["state"], None)), ("state a list", _at(["state"], lambda: [1, 2])),
    ("groups None", _at(["param_groups"], None)), ("groups a str", _at(["param_groups"], "g")),
    ("one group too many", lambda sd: sd["param_groups"].append(dict(sd["param_groups"][0]))),
    ("a group's params shorter", lambda sd: sd["param_groups"][0]["params"].pop()),
    ("a group's params None", _at(["param_groups", 0, "params"], None)),
    ("a group a list", _at(["param_groups", 0], lambda: [1])),
    ("lr < 0", _at(["param_groups", 0, "lr"], -1.0)), ("lr a str", _at(["param_groups", 0, "lr"], "x")),
    ("lr nan", _at(["param_groups", 0, "lr"], NAN)), ("unknown option", _at(["param_groups", 0, "foo"], 1)),
    ("state of a missing parameter", _at(["state", 99], lambda: {"step": 1})),
    ("state key a str", _at(["state", "0"], lambda: {"step": 1})),
    ("state entry None", _at(["state", 0], None)), ("state entry a list", _at(["state", 0], lambda: [1.0])),
    ("state arrays of a wrong shape", _arrays(lambda v: np.zeros(7))),
    ("state arrays complex", _arrays(lambda v: v + 1j)),
    ("state arrays of str", _arrays(lambda v: v.astype(str))),
    ("state arrays None", _each_state(lambda e: e.update({k: None for k in e}))),
    ("step a str", _each_state(lambda e: "step" in e and e.update(step="x"))),
    ("step None", _each_state(lambda e: "step" in e and e.update(step=None))),
    ("state emptied", _each_state(lambda e: e.clear())),
])


@fuzz(3)
@given(st.data())
def test_optim_load_state_dict_is_all_or_nothing(data):
    case = Case(data)
    name = case.draw(st.sampled_from(sorted(OPTIMIZERS)), "optimizer")
    kwargs = {"momentum": 0.9} if name in ("SGD", "RMSprop") else {}

    def stepped() -> tuple[list[Any], Any]:
        params = [Tensor(np.linspace(-1, 1, 6).reshape(2, 3), requires_grad=True), Value(0.5)]
        opt = getattr(optim, name)(params, **kwargs)
        for p in params:
            p.grad = np.full(np.shape(p.data), 0.25) if isinstance(p, Tensor) else 0.25
        opt.step()
        return params, opt

    params, opt = stepped()
    state = stepped()[1].state_dict()
    if case.draw(st.booleans(), "spoil it"):
        case.bad = True
        for _, mutate in case.draw(st.lists(OPTIMIZER_STATE_MUTATIONS, min_size=1, max_size=2), "mutations"):
            with contextlib.suppress(Exception):  # an earlier mutation removed what this one changes
                mutate(state)
    whole = case.pick(st.just(state), st.one_of(NOT_DATA, BAD_NUMBERS), "state_dict")
    if case.call(f"optim.{name}.load_state_dict", opt.load_state_dict, whole, names=("load_state_dict", name),
                 state=lambda: optimizer_state(opt, params)) is RAISED:
        return
    for p in params:  # what was loaded must drive a step, or be refused there without a partial update
        p.grad = np.full(np.shape(p.data), 0.5) if isinstance(p, Tensor) else 0.5
    case.call(f"optim.{name}.step", opt.step, names=(name,), state=lambda: optimizer_state(opt, params))
    case.no_nan(f"optim.{name}.step", [p.data for p in params])


BAD_LAMBDAS = fresh(lambda: None, lambda: "x", lambda: (lambda k: "x"), lambda: (lambda k: None),
                    lambda: (lambda k: [1.0]), lambda: (lambda: 1.0), lambda: (lambda k: NAN),
                    lambda: (lambda k: -1.0), lambda: (lambda k: 1j))


def _scheduler_arguments(case: Case, name: str) -> dict[str, Any]:
    bad = st.one_of(BAD_NUMBERS, NOT_DATA)
    if name == "LambdaLR":
        good = st.sampled_from([lambda k: 0.9**k, lambda k: 1.0 / (k + 1)])
        return {"lr_lambda": case.pick(good, BAD_LAMBDAS, "lr_lambda")}
    if name == "StepLR":
        return {"step_size": case.pick(POSITIVE, BAD_SIZES, "step_size"),
                "gamma": case.pick(st.sampled_from([0.1, 0.5]), bad, "gamma")}
    if name == "ExponentialLR":
        return {"gamma": case.pick(st.sampled_from([0.9, 1.0]), bad, "gamma")}
    return {"decay": case.pick(st.sampled_from([1.0, 0.1]), bad, "decay")}


@fuzz(2)
@given(st.data())
def test_lr_schedulers_are_all_or_nothing(data):
    case = Case(data)
    name = case.draw(st.sampled_from(["LambdaLR", "StepLR", "ExponentialLR", "InverseTimeLR"]), "scheduler")
    params = [Tensor([1.0, -1.0], requires_grad=True), Value(2.0)]
    opt = optim.SGD([{"params": params[:1]}, {"params": params[1:], "lr": 0.5}], lr=0.1)
    target = case.pick(st.just(opt), st.one_of(NOT_DATA, BAD_NUMBERS), "optimizer")

    def optimizer() -> Any:
        return optimizer_state(opt, params)

    sched = case.call(f"lr_scheduler.{name}()", getattr(lr_scheduler, name), target, state=optimizer,
                      **_scheduler_arguments(case, name))
    if sched is RAISED:
        return

    def scheduler() -> Any:
        # optimizer() is a frozen picture already (freezing it again would compare ids of
        # temporaries and cut the options off at the depth limit)
        return (optimizer(), freeze({k: v for k, v in sched.__dict__.items() if k != "optimizer"}))

    for _ in range(case.draw(st.integers(1, 3), "steps")):
        if case.call(f"lr_scheduler.{name}.step", sched.step, names=(name,), state=scheduler) is RAISED:
            return
        # a bad lr_lambda may itself return nan
        case.no_nan(f"lr_scheduler.{name}.step", sched.get_last_lr(), unless=name == "LambdaLR" and case.bad)
    saved = sched.state_dict()
    odd = fresh(lambda: {"last_epoch": "x"}, lambda: {"last_epoch": -5}, lambda: {"base_lrs": [0.1]},
                lambda: {"base_lrs": None}, lambda: {"optimizer": None}, lambda: {"lr_of": None},
                lambda: {"last_epoch": NAN}, lambda: dict(saved, gamma="x"))
    loaded = case.pick(st.just(saved), st.one_of(NOT_DATA, BAD_NUMBERS, odd), "state_dict")
    case.call(f"lr_scheduler.{name}.load_state_dict", sched.load_state_dict, loaded,
              names=("load_state_dict", name), state=scheduler)


# -- data ---------------------------------------------------------------------------------------------


@fuzz(2)
@given(st.data())
def test_data_loader(data):
    case = Case(data)
    n = case.draw(st.integers(0, 6), "rows")
    X = case.pick(hnp.arrays(np.float64, (n, 2), elements=FINITE), st.one_of(
        BAD_ARRAYS, BAD_NUMBERS, hnp.arrays(np.float64, (n + 1, 2)), fresh(lambda: [["a", "b"]] * n)), "X")
    y = case.pick(hnp.arrays(np.int64, (n,), elements=st.integers(0, 2)), st.one_of(
        BAD_ARRAYS, BAD_NUMBERS, fresh(lambda: ["a"] * n, lambda: [None] * n)), "y")
    kwargs = {"batch_size": case.pick(st.integers(1, 8), BAD_SIZES, "batch_size"),
              "shuffle": case.pick(st.booleans(), BAD_BOOLS, "shuffle"),
              "seed": case.pick(GOOD_SEEDS, BAD_SEEDS, "seed"),
              "drop_last": case.pick(st.booleans(), BAD_BOOLS, "drop_last")}
    loader = case.call("data.DataLoader()", tl_data.DataLoader, X, y, **kwargs)
    if loader is RAISED:
        return
    epoch = case.call("data.DataLoader iteration", lambda: (len(loader), list(loader)), names=("DataLoader",))
    if epoch is not RAISED:
        count, batches = epoch
        assert count == len(batches)
        assert all(isinstance(xb, Tensor) and isinstance(yb, Tensor) for xb, yb in batches)
        assert all(len(xb) == len(yb) for xb, yb in batches)


@fuzz(2)
@given(st.data())
def test_make_moons_and_make_spirals(data):
    case = Case(data)
    which = case.draw(st.sampled_from(["make_moons", "make_spirals"]), "dataset")
    kwargs = {"n_samples": case.pick(st.integers(1, 40), BAD_SIZES, "n_samples"),
              "noise": case.pick(st.floats(0, 1), st.one_of(BAD_NUMBERS, NOT_DATA, st.just(-0.1)), "noise"),
              "seed": case.pick(GOOD_SEEDS, BAD_SEEDS, "seed")}
    if which == "make_spirals":
        kwargs["n_classes"] = case.pick(POSITIVE, BAD_SIZES, "n_classes")
    out = case.call(f"data.{which}", getattr(tl_data, which), **kwargs)
    if out is not RAISED:
        X, y = out
        n = kwargs["n_samples"]
        assert X.shape == (n, 2) and y.shape == (n,) and y.dtype.kind == "i"
        case.no_nan(f"data.{which}", X)


@fuzz()
@given(st.data())
def test_train_test_split(data):
    case = Case(data)
    n = case.draw(st.integers(2, 6), "rows")
    X = case.pick(hnp.arrays(np.float64, (n, 2)), st.one_of(BAD_ARRAYS, BAD_NUMBERS), "X")
    y = case.pick(st.just(np.arange(n)), st.one_of(BAD_ARRAYS, BAD_NUMBERS), "y")
    bad_fraction = st.one_of(BAD_NUMBERS, NOT_DATA, st.sampled_from([0.0, 1.0]))
    fraction = case.pick(st.sampled_from([0.25, 0.5]), bad_fraction, "test_fraction")
    seed = case.pick(GOOD_SEEDS, BAD_SEEDS, "seed")
    case.call("data.train_test_split", tl_data.train_test_split, X, y, fraction, seed=seed)


# -- viz ----------------------------------------------------------------------------------------------


def _graphs() -> Any:
    """Roots to draw: a scoped Value graph, a leaf, a Tensor graph holding nan and inf, an empty, a
    float16 and a bool tensor."""
    a, b = Value(2.0, label="a"), Value(-3.0)
    with tl.name_scope("block"):
        c = (a * b).tanh() + a
    c.backward()
    w = Tensor(np.array([[1.0, NAN], [INF, 2.0]]), requires_grad=True)
    with tl.name_scope("layer"):
        loss = (w * Tensor(np.zeros(2)) + w).sum()
    loss.backward()
    return st.sampled_from([c, a, loss, Tensor(np.zeros((0, 3)), label="empty"), Tensor(np.float16(1e4)),
                            Tensor(np.array([True]), dtype=bool)])


@fuzz()
@given(st.data())
def test_viz_draw_dot_and_render(data):
    case = Case(data)
    root = case.pick(_graphs(), st.one_of(NOT_DATA, BAD_NUMBERS, fresh(lambda: "digraph { a -> b }")), "root")
    bad_rankdir = st.one_of(st.sampled_from(["lr", "XY", ""]), BAD_NUMBERS)
    options = [("rankdir", st.sampled_from(["LR", "TB"]), bad_rankdir),
               ("show_grad", st.booleans(), BAD_BOOLS), ("show_data", st.booleans(), BAD_BOOLS),
               ("collapse", st.one_of(st.booleans(), st.just("block")), st.one_of(BAD_NUMBERS, NOT_DATA)),
               ("max_nodes", st.one_of(st.none(), st.integers(1, 5)), BAD_SIZES),
               ("precision", st.integers(1, 6), st.one_of(BAD_SIZES, BAD_NUMBERS))]
    kwargs = {k: case.pick(good, bad, k) for k, good, bad in options if case.draw(st.booleans(), f"pass {k}")}
    if not case.draw(st.booleans(), "render"):
        dot = case.call("viz.draw_dot", viz.draw_dot, root, **kwargs)
        assert dot is RAISED or "digraph" in dot.source
        return
    with tempfile.TemporaryDirectory() as d:
        good = st.sampled_from([os.path.join(d, name) for name in ("g.dot", "g.gv", "g.svg")])
        odd_names = ("g.txt", "g", "no/such/dir/g.dot", "g.DOT", "", ".dot")
        odd = st.sampled_from([os.path.join(d, name) for name in odd_names])
        path = case.pick(good, st.one_of(odd, BAD_NUMBERS, NOT_DATA), "path")
        timeout = case.pick(st.just(30.0), st.one_of(st.sampled_from([0.0, -1.0]), BAD_NUMBERS), "timeout")
        case.call("viz.render", viz.render, root, path, timeout=timeout, **kwargs,
                  allowed=DOCUMENTED + (viz.RenderError,),
                  names=("render", "draw_dot", path if isinstance(path, str) else ""))


# -- the command line -----------------------------------------------------------------------------------

CLI_COMMANDS = ["demo", "optimizers", "minibatch", "divergence", "batchnorm", "regularization", "micrograd",
                "graph", "bogus", "", "--version", "-h"]
CLI_OPTIONS = ["--out", "--seed", "--quick", "--no-progress", "--dataset", "--epochs", "--batch-size", "--lr",
               "--tolerance", "--bowl-steps", "--rosenbrock-steps", "--samples", "--minibatches",
               "--grid-step", "--pairs", "--steps", "--weight-decay", "--dropout", "-o", "--output",
               "--batch", "--level", "--collapse", "--max-nodes", "--timeout", "--bogus"]
CLI_VALUES = ["x", "-1", "0", "1", "2", "3", "1.5", "nan", "inf", "-inf", "1e400", "", "digits", "spirals",
              "scalar", "tensor", "batchnorm", "mlp", "0.5", "1,2", "10000000000000000000000", " 3", "\x00"]


def _stub_experiments(mp: pytest.MonkeyPatch) -> None:
    """The experiments and the micrograd demo do no work: only the argument handling is fuzzed
    (``graph`` runs for real; it is fast)."""
    import importlib

    from tinygrad_lec import lecture
    from tinygrad_lec.cli import EXPERIMENTS
    from tinygrad_lec.lecture.common import Result

    for name in EXPERIMENTS:
        mp.setattr(importlib.import_module(f"tinygrad_lec.lecture.{name}"), "run",
                   lambda **kw: Result("stub", ["a"], [[1]]))
    demo = {"nodes": 1, "losses": [1.0, 0.5], "accuracy": 1.0}
    mp.setattr(lecture, "train_scalar_moons", lambda **kw: demo, raising=False)


def _exit_code(argv: list[str]) -> int:
    """main's return value, or the code of the SystemExit argparse raised."""
    try:
        return tl.cli.main(argv)
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else 1


@fuzz()
@given(st.data())
def test_cli_main_rejects_bad_argv_with_a_usage_error(data):
    case = Case(data)
    case.bad = True
    with tempfile.TemporaryDirectory() as d:
        open(os.path.join(d, "f"), "w").close()  # a file where a directory is expected
        paths = [os.path.join(d, p) for p in ("g.dot", "g.txt", "missing/g.dot", "out", "g.svg", "f")]
        command = case.draw(st.sampled_from(CLI_COMMANDS), "command")
        tokens = st.lists(st.sampled_from(CLI_OPTIONS + CLI_VALUES + paths), max_size=6)
        argv = [command, *case.draw(tokens, "arguments")]
        err = io.StringIO()
        with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stdout(io.StringIO()), \
                contextlib.redirect_stderr(err):
            mp.chdir(d)  # default outputs (graph.svg, tinygrad_lec_out/) land here
            _stub_experiments(mp)
            code = case.call("cli.main", _exit_code, argv, names=("tinygrad-lec",))
    if code is RAISED:
        return
    text, helped = err.getvalue(), any(a in ("-h", "--help", "--version") for a in argv)
    if code == 2 and "error:" not in text:
        violation("cli.main", f"exit code 2 without an error message for {argv!r}: {text[-200:]!r}")
    elif code == 1 and "error:" not in text:
        violation("cli.main", f"exit code 1 without an error message for {argv!r}")
    elif code not in (0, 1, 2) or (code == 0 and not helped and "error" in text.lower()):
        violation("cli.main", f"exit code {code} for {argv!r}: {text[-200:]!r}")


# -- coverage of the public API -------------------------------------------------------------------


def test_every_public_name_is_fuzzed_or_takes_no_user_input():
    """A new public name must get a fuzz family here (or be added to a list of names without input)."""
    no_input = {"GradcheckError", "DomainError", "AnomalyError", "__version__", "no_grad", "enable_grad",
                "is_grad_enabled", "current_scope", "detect_anomaly", "set_detect_anomaly",
                "is_anomaly_enabled"}
    assert set(tl.__all__) <= {"Value", "Tensor", "gradcheck", "name_scope"} | no_input
    assert set(F.__all__) <= {*LOSSES, "softmax", "log_softmax", "softplus", "linear", "dropout",
                              "batch_norm"}
    assert set(nn.__all__) <= {*NN_CLASSES, *FORWARD_NAMES, "Module", "save", "load_into"}
    assert set(optim.__all__) <= {*OPTIMIZERS, "Optimizer", "lr_scheduler"}
    assert set(lr_scheduler.__all__) <= {"LambdaLR", "StepLR", "ExponentialLR", "InverseTimeLR",
                                         "LRScheduler"}
    assert set(tl_data.__all__) <= {"DataLoader", "make_moons", "make_spirals", "train_test_split",
                                    "load_digits"}


@pytest.mark.parametrize("name", ["", "a/b", None, 3, b"x", ["a"]], ids=repr)
def test_name_scope_rejects_a_bad_name(name):
    with pytest.raises(ValueError, match="name_scope"):
        tl.name_scope(name)
