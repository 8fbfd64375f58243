"""Value: a scalar node on Python floats (micrograd-style), on the shared graph core.

Every op computes its result and, on the same line or the next, its *local derivatives*
d(out)/d(operand) at the current point; the node stores them (``_da``, ``_db``) and the backward
pass is the chain rule ``parent.grad += local * out.grad`` for every node in reverse topological
order. So each op reads like a line of a derivative table, and no closure is kept per node (a
closure would also tie the node into a reference cycle).

A Python number operand is not made into a node: ``x * 2.0`` is one node with one parent and local
derivative 2.0. The number is kept in ``_db`` so that a drawing can show it.
"""

from __future__ import annotations

import math
from numbers import Real

from . import _check
from .graph import Node, anomaly_error, backward_order, get_mode

Number = int | float
_FAST_NUMBERS = (float, int)


class DomainError(ValueError):
    """An op was applied outside its domain (log of a non-positive number, 0 ** -1, ...)."""


def _domain_error(op: str, message: str) -> DomainError:
    return DomainError(f"{op}: {message}")


def _too_large(op: str, x: object, what: str = "operand") -> ValueError:
    return ValueError(f"{op}: {what} {_check.show(x)} is too large for a float (Value holds Python floats)")


def _to_float(x: Real, op: str) -> float:
    """float(x); a number beyond the float range (an int like 10**400) is a ValueError naming the op."""
    try:
        return float(x)
    except OverflowError:
        raise _too_large(op, x) from None


def _as_number(x: object, op: str) -> float | None:
    """A real Python/numpy number as float, else None (so the operator returns NotImplemented)."""
    if isinstance(x, Real) and not isinstance(x, Node):
        return _to_float(x, op)
    return None


def _real_pow(x: float, p: float, op: str) -> float:
    """x ** p on the reals: a clear error instead of a complex result or ZeroDivisionError."""
    if x == 0.0 and p < 0.0:
        raise _domain_error(op, f"0 ** {_check.show(p)} is a pole (base 0 with a negative exponent)")
    if x < 0.0 and math.isfinite(p) and not float(p).is_integer():
        raise _domain_error(op, f"{x!r} ** {_check.show(p)} is not real (negative base, non-integer "
                                f"exponent)")
    try:
        return x**p
    except OverflowError:
        return math.copysign(math.inf, x) if p % 2 == 1 else math.inf


def _dpow_dbase(x: float, p: float, op: str) -> float:
    """d(x**p)/dx = p * x**(p-1); 0 at p == 0 and +inf at x == 0 with 0 < p < 1 (as torch)."""
    if p == 0.0:
        return 0.0
    if x == 0.0 and p < 1.0:
        return math.inf
    return p * _real_pow(x, p - 1.0, op)


def _dpow_dexp(x: float, out: float) -> float:
    """d(x**p)/dp = x**p * log(x); 0 at x == 0 (p > 0), nan for a negative base (as torch)."""
    if x > 0.0:
        return out * math.log(x)
    return 0.0 if x == 0.0 else math.nan


class Value(Node):
    """A scalar in a reverse-mode graph: ``data`` (float) and ``grad`` (float, d(root)/d(self)).

    Operators ``+ - * / **`` and unary ``-`` work with Values or Python numbers on either side;
    ``exp log sqrt tanh sigmoid relu abs`` are methods. ``backward()`` fills ``grad`` of every node
    that the value depends on (API.md, "Graph core" and "Value").

    >>> a, b = Value(2.0, label="a"), Value(-3.0, label="b")
    >>> c = a * b + a.exp()
    >>> c.backward()
    >>> round(a.grad, 6), b.grad        # d/da = b + e^a, d/db = a
    (4.389056, 2.0)
    """

    __slots__ = ("data", "grad", "_da", "_db")
    _zero_grad = 0.0
    # numpy defers to our reflected operators instead of making object arrays of Values.
    __array_ufunc__ = None

    def __init__(self, data: Real, label: str = "") -> None:
        if type(data) is not float:
            if isinstance(data, Node) or not isinstance(data, Real):
                raise TypeError(f"Value: data must be a real number, got {type(data).__name__}: "
                                f"{_check.show(data)}")
            try:
                data = float(data)
            except OverflowError:
                raise _too_large("Value", data, "data") from None
        self.data = data
        self.grad = 0.0
        self._init_leaf(label)

    def __repr__(self) -> str:
        label = f", label={self.label!r}" if self.label else ""
        return f"Value(data={self.data!r}, grad={self.grad!r}{label})"

    # -- the graph --------------------------------------------------------------------------

    def backward(self) -> None:
        """Reverse mode from this node: seed d(self)/d(self) = 1, then the chain rule.

        Interior nodes end with this pass's gradient; leaves accumulate across calls.
        """
        if self._a is None:  # a leaf root: d(self)/d(self) = 1, accumulated
            self.grad += 1.0
            return
        order, leaves, saved = backward_order(self)
        self.grad = 1.0
        mode = get_mode()
        try:
            if mode is not None and mode.anomaly:
                _checked_backward(order)
            for v in order:  # the chain rule: parent.grad += d(v)/d(parent) * v.grad
                g = v.grad
                a = v._a
                a.grad += v._da * g
                b = v._b
                if b is not None:
                    b.grad += v._db * g
        except BaseException:  # leaves keep what they had
            for v, before in zip(leaves, saved):
                v.grad = before
            raise
        for v, before in zip(leaves, saved):  # what they had + this pass's total
            if before:
                v.grad = before + v.grad

    def zero_grad(self) -> None:
        """Set this node's gradient to 0.0."""
        self.grad = 0.0

    def detach(self) -> Value:
        """A new leaf with the same data (the graph is cut here)."""
        return Value(self.data, self.label)

    def item(self) -> float:
        """The data as a Python float (as torch's ``item``)."""
        return self.data

    def __float__(self) -> float:
        return self.data

    # -- binary ops: (result, local derivative w.r.t. each operand) -------------------------

    # The hottest ops (every neuron is a chain of Value * Value and Value + Value, then relu)
    # build their node inline when the mode is the default, saving a Python call per node
    # (benchmarks/scalar_mlp.py); everything else goes through _node.

    def __add__(self, other: Value | Number) -> Value:
        if isinstance(other, Value):
            data = self.data + other.data  # d/dx (x + y) = 1, d/dy (x + y) = 1
            if get_mode() is None:
                out = _new(Value)
                out.data = data
                out.grad = 0.0
                out.op = "+"
                out._a = self
                out._da = 1.0
                out._b = other
                out._db = 1.0
                return out
            return _node(data, "+", self, 1.0, other, 1.0)
        c = other if type(other) in _FAST_NUMBERS else _as_number(other, "+")
        if c is None:
            return NotImplemented
        try:  # an int beyond the float range: float + int raises OverflowError
            return _node(self.data + c, "+", self, 1.0, None, c)  # d/dx (x + c) = 1
        except OverflowError:
            raise _too_large("+", c) from None

    __radd__ = __add__

    def __sub__(self, other: Value | Number) -> Value:
        if isinstance(other, Value):
            return _node(self.data - other.data, "-", self, 1.0, other, -1.0)
        c = other if type(other) in _FAST_NUMBERS else _as_number(other, "-")
        if c is None:
            return NotImplemented
        try:
            return _node(self.data - c, "-", self, 1.0, None, c)
        except OverflowError:
            raise _too_large("-", c) from None

    def __rsub__(self, other: Number) -> Value:
        c = other if type(other) in _FAST_NUMBERS else _as_number(other, "-")
        if c is None:
            return NotImplemented
        try:
            return _node(c - self.data, "r-", self, -1.0, None, c)
        except OverflowError:
            raise _too_large("-", c) from None

    def __mul__(self, other: Value | Number) -> Value:
        x = self.data
        if isinstance(other, Value):
            y = other.data
            if get_mode() is None:  # d/dx (x y) = y, d/dy (x y) = x
                out = _new(Value)
                out.data = x * y
                out.grad = 0.0
                out.op = "*"
                out._a = self
                out._da = y
                out._b = other
                out._db = x
                return out
            return _node(x * y, "*", self, y, other, x)
        c = other if type(other) in _FAST_NUMBERS else _as_number(other, "*")
        if c is None:
            return NotImplemented
        try:
            return _node(x * c, "*", self, c, None, c)  # d/dx (c x) = c
        except OverflowError:
            raise _too_large("*", c) from None

    __rmul__ = __mul__

    def __truediv__(self, other: Value | Number) -> Value:
        if isinstance(other, Value):
            x, y = self.data, other.data
            if y == 0.0:
                raise _domain_error("/", f"division by zero ({x!r} / 0.0)")
            try:
                dy = -x / (y * y)  # d/dy (x / y) = -x / y^2
            except ZeroDivisionError:  # y * y underflowed to 0: the same, without the square
                dy = -(x / y) / y
            return _node(x / y, "/", self, 1.0 / y, other, dy)
        c = other if type(other) in _FAST_NUMBERS else _as_number(other, "/")
        if c is None:
            return NotImplemented
        if c == 0:
            raise _domain_error("/", f"division by zero ({self.data!r} / {other!r})")
        try:
            return _node(self.data / c, "/", self, 1.0 / c, None, c)
        except OverflowError:
            raise _too_large("/", c) from None

    def __rtruediv__(self, other: Number) -> Value:
        c = other if type(other) in _FAST_NUMBERS else _as_number(other, "/")
        if c is None:
            return NotImplemented
        y = self.data
        if y == 0.0:
            raise _domain_error("/", f"division by zero ({_check.show(other)} / 0.0)")
        try:
            try:
                dy = -c / (y * y)  # d/dy (c / y) = -c / y^2
            except ZeroDivisionError:  # y * y underflowed to 0: the same, without the square
                dy = -(c / y) / y
            return _node(c / y, "r/", self, dy, None, c)
        except OverflowError:
            raise _too_large("/", c) from None

    def __pow__(self, other: Value | Number) -> Value:
        x = self.data
        if isinstance(other, Value):
            p = other.data
            out = _real_pow(x, p, "**")
            return _node(out, "**", self, _dpow_dbase(x, p, "**"), other, _dpow_dexp(x, out))
        # an int exponent becomes a float (the same pow; an int beyond the float range is an error)
        p = other if type(other) is float else _to_float(other, "**") if type(other) is int else \
            _as_number(other, "**")
        if p is None:
            return NotImplemented
        return _node(_real_pow(x, p, "**"), "**", self, _dpow_dbase(x, p, "**"), None, p)

    def __rpow__(self, other: Number) -> Value:
        c = other if type(other) is float else _to_float(other, "**") if type(other) is int else \
            _as_number(other, "**")
        if c is None:
            return NotImplemented
        out = _real_pow(c, self.data, "**")
        return _node(out, "r**", self, _dpow_dexp(c, out), None, c)

    # -- unary ops --------------------------------------------------------------------------

    def __neg__(self) -> Value:
        """-x; local derivative -1."""
        return _node(-self.data, "neg", self, -1.0)

    def __pos__(self) -> Value:
        return self

    def exp(self) -> Value:
        """e^x (inf past overflow); local derivative e^x.

        >>> Value(0.0).exp().data
        1.0
        """
        try:
            e = math.exp(self.data)
        except OverflowError:
            e = math.inf
        return _node(e, "exp", self, e)  # d e^x = e^x

    def log(self) -> Value:
        """Natural log; local derivative 1/x. Raises DomainError for x <= 0."""
        x = self.data
        if not x > 0.0:
            raise _domain_error("log", f"input must be > 0, got {x!r}{_named(self)}")
        return _node(math.log(x), "log", self, 1.0 / x)  # d log x = 1/x

    def sqrt(self) -> Value:
        """Square root; local derivative 1/(2 sqrt x) (inf at 0). Raises DomainError for x < 0."""
        x = self.data
        if not x >= 0.0:
            raise _domain_error("sqrt", f"input must be >= 0, got {x!r}{_named(self)}")
        s = math.sqrt(x)
        return _node(s, "sqrt", self, 0.5 / s if s > 0.0 else math.inf)  # d sqrt x = 1/(2 sqrt x)

    def tanh(self) -> Value:
        """tanh x; local derivative 1 - tanh^2 x."""
        t = math.tanh(self.data)
        return _node(t, "tanh", self, 1.0 - t * t)  # d tanh x = 1 - tanh^2 x

    def sigmoid(self) -> Value:
        """1 / (1 + e^-x), without overflow; local derivative s (1 - s)."""
        x = self.data
        if x >= 0.0:
            s = 1.0 / (1.0 + math.exp(-x))
        else:  # exp(-x) would overflow for very negative x
            e = math.exp(x)
            s = e / (1.0 + e)
        return _node(s, "sigmoid", self, s * (1.0 - s))  # d s(x) = s(x)(1 - s(x))

    def relu(self) -> Value:
        """max(x, 0); local derivative 1 for x > 0, else 0 (also at the kink, as torch).

        >>> Value(-2.0).relu().data, Value(3.0).relu().data
        (0.0, 3.0)
        """
        x = self.data
        if x <= 0.0:  # derivative 0 at the kink, as torch
            x, da = 0.0, 0.0
        else:
            da = 1.0
        if get_mode() is None:
            out = _new(Value)
            out.data = x
            out.grad = 0.0
            out.op = "relu"
            out._a = self
            out._da = da
            out._b = None
            out._db = None
            return out
        return _node(x, "relu", self, da)

    def abs(self) -> Value:
        """|x|; local derivative sign(x) (0 at 0, as torch)."""
        x = self.data
        return _node(abs(x), "abs", self, 1.0 if x > 0.0 else (-1.0 if x < 0.0 else 0.0))

    __abs__ = abs


def _inputs(v: Value) -> str:
    """An op's inputs as text, for anomaly reports (a number operand is kept in ``_db``)."""
    b = v._b.data if v._b is not None else v._db
    return ", ".join(repr(x) for x in ((v._a.data,) if b is None else (v._a.data, b)))


def _checked_backward(order: list[Value]) -> None:
    """The chain rule as in :meth:`Value.backward`, checking each contribution (detect_anomaly);
    it runs on a copy of the gradients, so the real pass starts from where it was."""
    grads = {id(v): v.grad for v in order}
    for v in order:
        g = grads[id(v)]
        for i, (p, local) in enumerate(((v._a, v._da), (v._b, v._db if v._b is not None else None))):
            if p is None or local is None:
                continue
            contribution = local * g
            if not math.isfinite(contribution):
                raise anomaly_error("backward", v.op, v.scope, v.label,
                                    f"a non-finite gradient {contribution!r} for operand {i + 1} "
                                    f"(upstream gradient {g!r}, local derivative {local!r})", _inputs(v))
            if p._a is not None:
                grads[id(p)] = grads.get(id(p), 0.0) + contribution


def _named(v: Value) -> str:
    return f" (label {v.label!r})" if v.label else ""


_new = object.__new__


def _node(data: float, op: str, a: Value, da: float, b: Value | None = None, db: object = None
          ) -> Value:
    """The result of an op: parents ``a`` (and ``b``) with local derivatives ``da`` (and ``db``).

    For an op with a number operand, ``b`` is None and ``db`` holds the number (for drawings).
    Under no_grad the result is a leaf that remembers nothing of its operands; in a name_scope
    it is tagged with the scope.
    """
    out = _new(Value)
    out.data = data
    out.grad = 0.0
    mode = get_mode()
    if mode is None or mode.grad_enabled:
        out.op = op
        out._a = a
        out._da = da
        out._b = b
        out._db = db
    else:
        out.op = ""
        out._a = out._b = None
    if mode is not None:
        if mode.scope:
            out._scope = mode.scope
        if mode.anomaly and not math.isfinite(data):
            inputs = ", ".join(repr(x) for x in ((a.data,) if b is None and db is None else
                                                 (a.data, b.data if b is not None else db)))
            raise anomaly_error("forward", op, mode.scope, "", "nan" if data != data else repr(data), inputs)
    return out
