"""Tensor: a numpy-array node on the shared graph core, with numpy broadcasting.

Each op computes its result with numpy and, beside it, one *vector-Jacobian product* per operand:
a function ``g -> g · d(out)/d(operand)`` that maps the gradient of the result to the gradient of
that operand. Written as one-line lambdas, they read like a table of derivatives (``exp``:
``g * e``; ``matmul``: ``g @ B^T`` and ``A^T @ g``). Broadcasting is undone in one place
(:func:`_unbroadcast`): an operand's gradient is summed over the axes that broadcasting added or
stretched. A vjp closes over arrays only, never over the result node, so graphs hold no
reference cycles and are freed by reference counting.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from numbers import Real
from typing import Any

import numpy as np

from . import _check, pool
from ._arrays import (
    _count,
    _doubled,
    _dtype,
    _dtype_of,
    _expand,
    _flat_indices,
    _has_array_index,
    _kind_of,
    _maybe_shared,
    _negative,
    _non_finite,
    _normalize_axis,
    _product_sum,
    _quotient,
    _sum_to,
    _times,
    _unbroadcast,
)
from .graph import Node, anomaly_error, backward_order, get_mode

Vjp = Callable[[np.ndarray], np.ndarray]
_new = object.__new__

def _as_array(data: Any, dtype: Any, op: str) -> np.ndarray:
    """numpy data for a Tensor: floating arrays keep their dtype, everything else becomes float64.
    Only real numbers are data: complex, object and str arrays are a TypeError naming ``op``,
    never a cast that drops an imaginary part with a warning."""
    if isinstance(data, Tensor):
        data = data.data
    if dtype is not None:
        dtype = _dtype(dtype, op)
    if isinstance(data, np.ndarray) and data.dtype.kind == "f" and (dtype is None or dtype == data.dtype):
        return data
    try:
        arr = np.asarray(data)
    except (TypeError, ValueError, OverflowError) as e:
        raise TypeError(f"{op}: data must be numbers (a number, a nested list or an array), "
                        f"got {type(data).__name__}: {e}") from None
    if arr.dtype.kind not in "fiub":
        raise TypeError(f"{op}: data must be real numbers, got {_kind_of(data, arr)}")
    if dtype is not None:
        if dtype.kind in "iu" and arr.dtype.kind == "f" and arr.size:
            info = np.iinfo(dtype)
            if not (np.isfinite(arr).all() and info.min <= arr.min() and arr.max() <= info.max):
                raise ValueError(f"{op}: values {arr.min()}..{arr.max()} do not fit dtype {dtype}")
        return arr.astype(dtype, copy=False)
    return arr if arr.dtype.kind == "f" else arr.astype(np.float64)


class Tensor(Node):
    """An n-dimensional array in a reverse-mode graph (API.md, "Tensor").

    ``data`` is a numpy array; ``grad`` is None until a backward pass reaches the tensor, then an
    array of the same shape and dtype. Floating data keeps its dtype (float32 stays float32);
    numbers, lists and integer arrays become float64. A floating ndarray is wrapped, not copied.

    >>> w = Tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    >>> loss = (w * w).sum()
    >>> loss.backward()
    >>> w.grad.tolist()
    [[2.0, 4.0], [6.0, 8.0]]
    """

    # _const: (number, "left" | "right") for an op with a Python number operand; unset otherwise
    __slots__ = ("data", "grad", "requires_grad", "_da", "_db", "_const")
    _zero_grad = None
    # numpy hands binary ops with a Tensor on the right to our reflected methods.
    __array_ufunc__ = None

    def __init__(self, data: Any, requires_grad: bool = False, dtype: Any = None, label: str = "") -> None:
        arr = _as_array(data, dtype, "Tensor")
        if requires_grad is not False and requires_grad is not True:
            requires_grad = _check.flag("Tensor", "requires_grad", requires_grad)
        if requires_grad and arr.dtype.kind != "f":
            raise ValueError(f"Tensor: only floating tensors can require grad, got dtype {arr.dtype}")
        self.data = arr
        self.grad = None
        self.requires_grad = bool(requires_grad)
        self._da = self._db = None
        self._init_leaf(label)

    @property
    def parents(self) -> tuple[Node, ...]:
        """The tensors this one was computed from, in operand order (``linear``: x, W, b)."""
        a, b = self._a, self._b
        if a is None:
            return ()
        if b is None:
            return (a,)
        return (a, b._a, b._b) if type(b) is _Join else (a, b)

    # -- constructors -----------------------------------------------------------------------

    @staticmethod
    def _factory(op: str, shape: tuple[Any, ...], dtype: Any, requires_grad: Any
                 ) -> tuple[tuple[int, ...], np.dtype, bool]:
        """The checked shape (``f(2, 3)`` or ``f((2, 3))``), dtype and requires_grad of a factory."""
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        for n in shape:
            if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)) or n < 0:
                raise ValueError(f"{op}: shape must be non-negative ints, got {shape!r}")
        requires_grad = _check.flag(op, "requires_grad", requires_grad)
        dt = _dtype(dtype, op)
        if requires_grad and dt.kind != "f":
            raise ValueError(f"{op}: only floating tensors can require grad, got dtype {dt}")
        return tuple(int(n) for n in shape), dt, requires_grad

    @classmethod
    def zeros(cls, *shape: int, requires_grad: bool = False, dtype: Any = np.float64) -> Tensor:
        """A tensor of zeros: ``Tensor.zeros(2, 3)`` or ``Tensor.zeros((2, 3))``."""
        shape, dt, requires_grad = cls._factory("Tensor.zeros", shape, dtype, requires_grad)
        return cls(np.zeros(shape, dtype=dt), requires_grad=requires_grad)

    @classmethod
    def ones(cls, *shape: int, requires_grad: bool = False, dtype: Any = np.float64) -> Tensor:
        """A tensor of ones."""
        shape, dt, requires_grad = cls._factory("Tensor.ones", shape, dtype, requires_grad)
        return cls(np.ones(shape, dtype=dt), requires_grad=requires_grad)

    @classmethod
    def randn(cls, *shape: int, seed: int | None = None, requires_grad: bool = False,
              dtype: Any = np.float64) -> Tensor:
        """Standard normal samples from ``numpy.random.default_rng(seed)`` (seed: None, an int >= 0
        or a Generator); dtype must be floating."""
        shape, dt, requires_grad = cls._factory("Tensor.randn", shape, dtype, requires_grad)
        if dt.kind != "f":
            raise TypeError(f"Tensor.randn: dtype must be floating, got {dt}")
        data = _check.rng("Tensor.randn", seed).standard_normal(shape).astype(dt, copy=False)
        return cls(data, requires_grad=requires_grad)

    # -- array protocol and conveniences ----------------------------------------------------

    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def size(self) -> int:
        return self.data.size

    def __len__(self) -> int:
        return len(self.data)

    def numpy(self) -> np.ndarray:
        """The data array itself (no copy), as torch's ``.numpy()``."""
        return self.data

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        if dtype is not None and np.dtype(dtype) != self.data.dtype:
            return self.data.astype(dtype)
        return self.data.copy() if copy else self.data

    def item(self) -> float:
        """The value of a one-element tensor as a Python float."""
        if self.data.size != 1:
            raise ValueError(f"item: only one-element tensors can be converted, got shape {self.shape}")
        return self.data.item()

    def __float__(self) -> float:
        return float(self.item())

    def detach(self) -> Tensor:
        """A leaf sharing this tensor's data, cut from the graph (requires_grad False)."""
        return Tensor(self.data)

    def zero_grad(self) -> None:
        """Set the gradient to None."""
        self.grad = None

    def __repr__(self) -> str:
        body = np.array2string(self.data, separator=", ", precision=4, threshold=20, edgeitems=2)
        extra = ", requires_grad=True" if self.requires_grad else ""
        if self.data.dtype != np.float64:
            extra += f", dtype={self.data.dtype}"
        if self.op:
            extra += f", op={self.op!r}"
        if self.label:
            extra += f", label={self.label!r}"
        return f"Tensor({body}{extra})"

    # -- backward -----------------------------------------------------------------------------

    def backward(self, grad: Any = None) -> None:
        """Reverse mode from this tensor, seeded with ``grad`` (1 for a one-element tensor).

        Interior tensors end with this pass's gradient; leaves with ``requires_grad``
        accumulate across calls (API.md, "Graph core").
        """
        if grad is None:
            if self.data.size != 1:
                raise ValueError(f"backward: grad can be omitted only for a one-element tensor; this one has "
                                 f"shape {self.shape}: pass grad= an array of that shape")
            dtype = self.data.dtype
            seed = np.array(1, dtype) if self.data.ndim == 0 else np.ones(self.data.shape, dtype)
        else:
            given = _as_array(grad, self.data.dtype, "backward")
            if given.shape != self.shape:
                raise ValueError(f"backward: grad has shape {given.shape}, the tensor has shape {self.shape}")
            if pool.is_large(given.nbytes):  # a copy: the caller keeps their array
                seed = pool.empty(given.shape, given.dtype)
                np.copyto(seed, given)
            else:
                seed = given.copy()
            if not np.isfinite(seed).all():
                raise ValueError(f"backward: grad must be finite, got {np.count_nonzero(~np.isfinite(seed))} "
                                 f"nan/inf value(s) of {seed.size}")
        if not self.requires_grad:
            raise ValueError("backward: this tensor does not require grad (no input of its graph does)")
        if self._a is None:  # a leaf root
            _accumulate(self, seed, None)
            return
        order, leaves, saved = backward_order(self)
        self.grad = seed
        mode = get_mode()
        borrowed: dict[int, tuple[Tensor, np.ndarray]] = {}  # see _accumulate
        try:
            if mode is not None and mode.anomaly:
                _checked_backward(order, borrowed)
            else:
                for v in order:  # the chain rule, one vector-Jacobian product per operand
                    g = v.grad
                    if v._da is not None:
                        _accumulate(v._a, v._da(g), g, borrowed)
                    if v._db is not None:
                        _accumulate(v._b, v._db(g), g, borrowed)
        except BaseException:  # leaves keep what they had
            for v, before in zip(leaves, saved):
                v.grad = before
            _own_borrowed(borrowed)
            raise
        for v, before in zip(leaves, saved):  # what they had + this pass's total
            if before is not None and v.grad is not None:
                before += v.grad
                v.grad = before
            elif before is not None:
                v.grad = before
        _own_borrowed(borrowed)

    # -- elementwise binary ops: (result, vjp for each operand) ---------------------------

    def __add__(self, other: Any) -> Tensor:
        y = _operand(other)
        return _binary("+", self, y, np.add, lambda g: g, lambda g: g)

    def __radd__(self, other: Any) -> Tensor:
        return _binary("+", _operand(other), self, np.add, lambda g: g, lambda g: g)

    def __sub__(self, other: Any) -> Tensor:
        return _sub(self, _operand(other))

    def __rsub__(self, other: Any) -> Tensor:
        return _sub(_operand(other), self)

    def __mul__(self, other: Any) -> Tensor:
        return _mul(self, _operand(other))

    def __rmul__(self, other: Any) -> Tensor:
        return _mul(_operand(other), self)

    def __truediv__(self, other: Any) -> Tensor:
        return _div(self, _operand(other))

    def __rtruediv__(self, other: Any) -> Tensor:
        return _div(_operand(other), self)

    def __pow__(self, other: Any) -> Tensor:
        return _pow(self, _operand(other))

    def __rpow__(self, other: Any) -> Tensor:
        return _pow(_operand(other), self)

    def __matmul__(self, other: Any) -> Tensor:
        return _matmul(self, _operand(other))

    def __rmatmul__(self, other: Any) -> Tensor:
        return _matmul(_operand(other), self)

    # -- elementwise unary ops --------------------------------------------------------------

    def __neg__(self) -> Tensor:
        """-x; vjp: -g."""
        return _unary("neg", self, -self.data, _negative)

    def __pos__(self) -> Tensor:
        return self

    def exp(self) -> Tensor:
        """e^x elementwise; vjp: g * e^x."""
        e = np.exp(self.data)
        return _unary("exp", self, e, lambda g: g * e)

    def log(self) -> Tensor:
        """Natural log elementwise (nan below 0, as numpy and torch); vjp: g / x."""
        x = self.data
        return _unary("log", self, np.log(x), lambda g: g / x)

    def sqrt(self) -> Tensor:
        """Square root elementwise; vjp: g / (2 sqrt x)."""
        s = np.sqrt(self.data)
        return _unary("sqrt", self, s, lambda g: g * 0.5 / s)

    def tanh(self) -> Tensor:
        """tanh elementwise; vjp: g * (1 - tanh^2 x)."""
        t = np.tanh(self.data)
        return _unary("tanh", self, t, lambda g: g * (1 - t * t))

    def sigmoid(self) -> Tensor:
        """1 / (1 + e^-x) elementwise, without overflow; vjp: g * s (1 - s)."""
        x = self.data
        if x.dtype.kind != "f":
            x = x.astype(np.float64)
        # 1/(1+e^-x) for x >= 0 and e^x/(1+e^x) below: neither exponent can overflow.
        e = np.exp(-np.abs(x))
        s = np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)
        return _unary("sigmoid", self, s, lambda g: g * s * (1 - s))

    def softplus(self) -> Tensor:
        """log(1 + e^x) elementwise, without overflow: max(x, 0) + log1p(e^-|x|); vjp: g * sigmoid(x)
        (1/2 at 0: smooth, no kink).

        >>> Tensor([0.0, 1000.0]).softplus().data.round(6).tolist()
        [0.693147, 1000.0]
        """
        x = self.data
        if x.dtype.kind != "f":
            x = x.astype(np.float64)
        out = (np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))).astype(x.dtype, copy=False)
        e = np.exp(-np.abs(x))
        s = np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)  # sigmoid(x)
        return _unary("softplus", self, out, lambda g: g * s)

    def relu(self) -> Tensor:
        """max(x, 0) elementwise; vjp: g where x > 0, else 0 (also at the kink, as torch)."""
        x = self.data
        if not (pool.is_large(x.nbytes) and x.dtype.kind == "f"):
            mask = x > 0  # derivative 1 where x > 0, else 0 (also at the kink, as torch)
            return _unary("relu", self, np.maximum(x, 0.0), lambda g: g * mask)
        out = np.maximum(x, 0.0, out=pool.empty(x.shape, x.dtype))  # large: pooled, mask made when needed
        return _unary("relu", self, out, lambda g: np.multiply(g, out > 0, out=pool.empty(g.shape, g.dtype)))

    def abs(self) -> Tensor:
        """|x| elementwise; vjp: g * sign(x) (0 at 0, as torch)."""
        x = self.data
        return _unary("abs", self, np.abs(x), lambda g: g * np.sign(x))

    __abs__ = abs

    def clip(self, min: float | None = None, max: float | None = None) -> Tensor:
        """Limit to ``[min, max]`` elementwise (torch.clamp); vjp: g where min <= x <= max, else 0
        (the bounds themselves pass the gradient, as torch).

        >>> Tensor([-2.0, 0.5, 3.0]).clip(-1, 1).data.tolist()
        [-1.0, 0.5, 1.0]
        """
        if min is None and max is None:
            raise ValueError("clip: give at least one of min and max")
        if min is not None:
            min = _check.number("clip", "min", min, finite=False)
        if max is not None:
            max = _check.number("clip", "max", max, finite=False)
        if min is not None and max is not None and min > max:
            raise ValueError(f"clip: min {min} is greater than max {max}")
        x = self.data
        inside = np.ones(x.shape, dtype=bool)
        if min is not None:
            inside &= x >= min
        if max is not None:
            inside &= x <= max
        out = np.clip(x, min, max).astype(x.dtype, copy=False)
        return _unary("clip", self, out, lambda g: g * inside)

    clamp = clip

    # -- reductions ---------------------------------------------------------------------------

    def sum(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        """Sum over ``axis`` (all axes if None); vjp: g copied back along the summed axes.

        >>> Tensor([[1.0, 2.0], [3.0, 4.0]]).sum(axis=0).data.tolist()
        [4.0, 6.0]
        """
        shape, axes = self.data.shape, None if axis is None else _normalize_axis(axis, self.ndim, "sum")
        if keepdims is not False and keepdims is not True:
            keepdims = _check.flag("sum", "keepdims", keepdims)
        return _unary("sum", self, self.data.sum(axis=axes, keepdims=keepdims),
                      lambda g: _expand(g, shape, axes, keepdims))

    def mean(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        """Mean over ``axis`` (all axes if None); vjp: g / N copied back along the axes."""
        shape, axes = self.data.shape, None if axis is None else _normalize_axis(axis, self.ndim, "mean")
        if keepdims is not False and keepdims is not True:
            keepdims = _check.flag("mean", "keepdims", keepdims)
        n = _count(shape, axes)
        if n == 0:
            raise ValueError(f"mean: cannot average over zero elements (shape {shape}, axis {axis!r})")
        return _unary("mean", self, self.data.mean(axis=axes, keepdims=keepdims),
                      lambda g: _expand(g / n, shape, axes, keepdims))

    def var(self, axis: Any = None, keepdims: bool = False, correction: int = 0) -> Tensor:
        """Variance ``sum (x - mean)^2 / (N - correction)``; correction=0 is the biased variance
        BatchNorm normalizes with, correction=1 the unbiased one (REFERENCE 10.4)."""
        shape, axes = self.shape, _normalize_axis(axis, self.ndim, "var")
        keepdims = _check.flag("var", "keepdims", keepdims)
        correction = _check.integer("var", "correction", correction, low=0)
        n = _count(shape, axes)
        if n - correction <= 0:
            raise ValueError(f"var: N - correction must be > 0, got N={n}, correction={correction}")
        x = self.data
        centered = x - x.mean(axis=axes, keepdims=True)
        out = (centered * centered).sum(axis=axes, keepdims=keepdims) / (n - correction)
        scale = 2 / (n - correction)
        return _unary("var", self, out.astype(x.dtype, copy=False),
                      lambda g: _expand(g, shape, axes, keepdims) * (scale * centered))

    def max(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        """Maximum over ``axis``; the gradient is split evenly between tied maxima (as torch.amax)."""
        shape, axes = self.shape, _normalize_axis(axis, self.ndim, "max")
        keepdims = _check.flag("max", "keepdims", keepdims)
        if self.data.size == 0:
            raise ValueError(f"max: cannot take the maximum of an empty tensor (shape {shape})")
        x = self.data
        m = x.max(axis=axes, keepdims=True)
        mask = x == m
        share = mask / mask.sum(axis=axes, keepdims=True)
        out = m if keepdims else (m.reshape(()) if axes is None else np.squeeze(m, axis=axes))
        return _unary("max", self, out, lambda g: _expand(g, shape, axes, keepdims) * share)

    # -- shape ops ------------------------------------------------------------------------------

    def reshape(self, *shape: Any) -> Tensor:
        """The same data in a new shape (``reshape(2, 3)`` or ``reshape((2, 3))``, -1 allowed);
        vjp: g reshaped back."""
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        old = self.shape
        try:
            out = self.data.reshape(shape)
        except (ValueError, TypeError) as e:
            raise ValueError(f"reshape: cannot reshape a tensor of shape {old} to {shape}: {e}") from None
        return _unary("reshape", self, out, lambda g: g.reshape(old))

    def transpose(self, *axes: Any) -> Tensor:
        """Permute the axes (numpy's meaning; no axes reverses them); vjp: g permuted back."""
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = tuple(axes[0])
        ndim = self.ndim
        perm = tuple(range(ndim))[::-1] if not axes else axes
        ok = len(perm) == ndim and all(isinstance(a, (int, np.integer)) and -ndim <= a < ndim for a in perm)
        perm = tuple(int(a) % ndim for a in perm) if ok and ndim else ()
        if not ok or sorted(perm) != list(range(ndim)):
            raise ValueError(f"transpose: axes {axes!r} are not a permutation of the {ndim} axes "
                             f"of a tensor of shape {self.shape}")
        inverse = tuple(perm.index(i) for i in range(ndim))
        return _unary("transpose", self, self.data.transpose(perm), lambda g: g.transpose(inverse))

    @property
    def T(self) -> Tensor:
        """``transpose()``: the axes reversed."""
        return self.transpose()

    def __getitem__(self, index: Any) -> Tensor:
        """numpy indexing: basic slices, integers and integer arrays; vjp: g scattered back
        into zeros, repeated indices adding up."""
        index = _plain_index(index)
        x = self.data
        try:
            out = x[index]
        except (IndexError, ValueError, TypeError) as e:
            raise IndexError(f"getitem: index {repr(index)[:60]} for a tensor of shape {self.shape}: {e}"
                             ) from None
        shape, dtype, advanced = x.shape, x.dtype, _has_array_index(index)
        flat = _flat_indices(index, shape) if advanced else None

        def vjp(g: np.ndarray) -> np.ndarray:
            if flat is not None:  # one integer array per axis: a weighted histogram, fast
                summed = np.bincount(flat, weights=g.reshape(-1), minlength=x.size)
                return summed.astype(dtype, copy=False).reshape(shape)
            grad = np.zeros(shape, dtype=dtype)
            if advanced:
                np.add.at(grad, index, g)  # repeated indices accumulate
            else:
                grad[index] = g
            return grad

        return _unary("getitem", self, out, vjp)

    # -- softmax -------------------------------------------------------------------------------

    def softmax(self, axis: int = -1) -> Tensor:
        """``exp(x - max) / sum exp(x - max)``: no overflow for logits of any size."""
        x, ax = _softmax_input(self, axis, "softmax")
        if x.size == 0:
            return _unary("softmax", self, x.copy(), lambda g: g)
        e = np.exp(x - x.max(axis=ax, keepdims=True, initial=-np.inf))
        s = e / e.sum(axis=ax, keepdims=True)
        return _unary("softmax", self, s, lambda g: s * (g - (g * s).sum(axis=ax, keepdims=True)))

    def log_softmax(self, axis: int = -1) -> Tensor:
        """``x - max - log sum exp(x - max)``: finite for logits of any size."""
        x, ax = _softmax_input(self, axis, "log_softmax")
        if x.size == 0:
            return _unary("log_softmax", self, x.copy(), lambda g: g)
        shifted = x - x.max(axis=ax, keepdims=True, initial=-np.inf)
        e = np.exp(shifted)
        z = e.sum(axis=ax, keepdims=True)
        out = shifted - np.log(z)
        return _unary("log_softmax", self, out, lambda g: g - (e / z) * g.sum(axis=ax, keepdims=True))


class _PooledTensor(Tensor):
    """An op result with a large array: when it dies, its data and gradient go to the pool."""

    __slots__ = ()

    def __del__(self) -> None:
        try:
            self._da = self._db = None  # its vjps may hold its own result (exp, relu, ...)
            data, grad = self.data, self.grad
            self.data = self.grad = None
            pool.recycle(data, 1)  # the local name is the only reference left
            del data
            pool.recycle(grad, 1)
        except Exception:  # at interpreter shutdown the module may be half torn down
            pass


# -- building nodes ---------------------------------------------------------------------------


def _operand(x: Any) -> Tensor | float:
    """A Tensor stays; a Python or numpy scalar becomes a Python float (so float32 stays
    float32, as with torch); an array or list becomes a constant Tensor."""
    if isinstance(x, Tensor):
        return x
    if type(x) is float:
        return x
    if isinstance(x, Real) and not isinstance(x, Node):
        try:
            return float(x)
        except OverflowError:
            raise ValueError(f"Tensor op: the number {repr(x)[:40]}... is too large for a float") from None
    if isinstance(x, Node):
        raise TypeError(f"cannot combine a Tensor with a {type(x).__name__}")
    return Tensor(_as_array(x, None, "Tensor op"))


def _node(op: str, data: np.ndarray, a: Tensor, da: Vjp | None, b: Tensor | None = None,
          db: Vjp | None = None) -> Tensor:
    """The result of an op. Operands that need no gradient get no vjp; if neither does (or
    under no_grad) the result is a leaf."""
    data = data if type(data) is np.ndarray else np.asarray(data)  # numpy gives 0-d results as scalars
    min_bytes = pool.MIN_BYTES  # pool.is_large, inline: this is the hottest path
    large = min_bytes is not None and data.nbytes >= min_bytes
    out = _new(_PooledTensor if large else Tensor)
    out.data = data
    out.grad = None
    mode = get_mode()
    need_a = a.requires_grad
    need_b = b is not None and b.requires_grad
    if (need_a or need_b) and (mode is None or mode.grad_enabled):
        out.requires_grad = True
        out.op = op
        out._a, out._da = a, da if need_a else None
        out._b, out._db = b, db if need_b else None
    else:
        out.requires_grad = False
        out.op = ""
        out._a = out._b = out._da = out._db = None
    if mode is not None:
        if mode.scope:
            out._scope = mode.scope
        if mode.anomaly and data.dtype.kind == "f" and not np.isfinite(data).all():
            raise anomaly_error("forward", op, mode.scope, "", _non_finite(data),
                                _describe([a] if b is None else [a, b]))
    return out


def _describe(tensors: list[Any]) -> str:
    """Operands as text for anomaly reports: a short array, or shape, dtype and range."""
    out = []
    for t in tensors:
        if type(t) is _Join:
            out.append(_describe([t._a, t._b]))
            continue
        d = t.data
        if d.size <= 4:
            out.append(repr(d.tolist()))
        else:
            finite = d[np.isfinite(d)] if d.dtype.kind == "f" else d
            span = f", finite range [{finite.min():.4g}, {finite.max():.4g}]" if finite.size else ""
            out.append(f"shape {d.shape} {d.dtype}{span}")
    return "; ".join(out)


def _checked_backward(order: list[Tensor], borrowed: dict[int, tuple[Tensor, np.ndarray]]) -> None:
    """The chain rule as in :meth:`Tensor.backward`, checking every gradient an op passes on."""
    for v in order:
        g = v.grad
        for i, (parent, vjp) in enumerate(((v._a, v._da), (v._b, v._db))):
            if vjp is None:
                continue
            contribution = vjp(g)
            parts = contribution if type(parent) is _Join else (contribution,)
            for part in parts:
                if not np.isfinite(part).all():
                    raise anomaly_error("backward", v.op, v.scope, v.label,
                                        f"{_non_finite(part)} of the gradient for operand {i + 1}",
                                        _describe([p for p in (v._a, v._b) if p is not None]))
            _accumulate(parent, contribution, g, borrowed)


def _unary(op: str, a: Tensor, data: np.ndarray, vjp: Vjp) -> Tensor:
    return _node(op, data, a, vjp)


def _binary(op: str, a: Tensor | float, b: Tensor | float, forward: Callable, da: Vjp, db: Vjp) -> Tensor:
    """An elementwise op with numpy broadcasting; a float operand is a constant."""
    x = a.data if isinstance(a, Tensor) else a
    y = b.data if isinstance(b, Tensor) else b
    try:
        data = forward(x, y)
    except ValueError:
        raise ValueError(f"{op}: shapes {np.shape(x)} and {np.shape(y)} are not broadcastable") from None
    except TypeError as e:  # numpy refuses e.g. bool - bool (so does torch)
        raise TypeError(f"{op}: not defined for operands of dtypes {_dtype_of(x)} and {_dtype_of(y)}: {e}"
                        ) from None
    if not isinstance(a, Tensor):
        out = _node(op, data, b, db)
        out._const = (a, "left")  # the number, for drawings (viz)
        return out
    if not isinstance(b, Tensor):
        out = _node(op, data, a, da)
        out._const = (b, "right")
        return out
    return _node(op, data, a, da, b, db)


def _mul(a: Tensor | float, b: Tensor | float) -> Tensor:
    x = a.data if isinstance(a, Tensor) else a
    y = b.data if isinstance(b, Tensor) else b
    if a is b:  # x * x: both edges stay in the graph, one vjp 2 (g x) = g x + g x, bit for bit
        return _node("*", x * x, a, lambda g: _doubled(_times(g, x)), a, None)
    # the operands' shapes are looked up in backward only: nothing extra on the forward path
    return _binary("*", a, b, np.multiply, lambda g: _product_sum(g, y, np.shape(x)),
                   lambda g: _product_sum(g, x, np.shape(y)))


def _sub(a: Tensor | float, b: Tensor | float) -> Tensor:
    # d/db (a - b) = -1; a broadcast b sums g first, then negates the small sum
    y = b.data if isinstance(b, Tensor) else b
    return _binary("-", a, b, np.subtract, lambda g: g, lambda g: _negative(_sum_to(g, np.shape(y))))


def _div(a: Tensor | float, b: Tensor | float) -> Tensor:
    """x / y; d/dx = 1/y, d/dy = -(x/y)/y, as torch computes it (no y*y to underflow; for a
    broadcast y the sum of g (x/y) comes first, then / -y)."""
    x = a.data if isinstance(a, Tensor) else a
    y = b.data if isinstance(b, Tensor) else b
    try:
        out = np.true_divide(x, y)
    except ValueError:
        raise ValueError(f"/: shapes {np.shape(x)} and {np.shape(y)} are not broadcastable") from None
    except TypeError as e:
        raise TypeError(f"/: not defined for operands of dtypes {_dtype_of(x)} and {_dtype_of(y)}: {e}"
                        ) from None
    def d_y(g: np.ndarray) -> np.ndarray:
        if g.size == 0:  # an empty sum: 0, not 0 / -y (nan where y is 0)
            return np.zeros(np.shape(y), g.dtype)
        q = _product_sum(g, out, np.shape(y))  # fresh: a sum, or a product from the pool
        return np.divide(q, _negative(y), out=q if type(q) is np.ndarray else None)

    return _binary("/", a, b, lambda x, y: out, lambda g: _quotient(g, y), d_y)


def _pow(a: Tensor | float, b: Tensor | float) -> Tensor:
    """x ** p; d/dx = p x^(p-1) (0 where p == 0); d/dp = x^p log x (0 where x == 0), as torch.
    A local derivative can overflow where the result does not (a subnormal x, p < 1): it is then
    +-inf, and summing both signs over a broadcast axis gives nan, as in torch."""
    x = a.data if isinstance(a, Tensor) else a
    p = b.data if isinstance(b, Tensor) else b
    try:
        out = x**p
    except ValueError as e:
        try:
            np.broadcast_shapes(np.shape(x), np.shape(p))
        except ValueError:
            raise ValueError(f"**: shapes {np.shape(x)} and {np.shape(p)} are not broadcastable") from None
        # numpy: "Integers to negative integer powers are not allowed."
        raise ValueError(f"**: {e} (operands of dtypes {_dtype_of(x)} and {_dtype_of(p)})") from None
    except TypeError as e:
        raise TypeError(f"**: not defined for operands of dtypes {_dtype_of(x)} and {_dtype_of(p)}: {e}"
                        ) from None

    def d_base(g: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return g * np.where(np.equal(p, 0), 0, p * x ** (p - 1))

    def d_exp(g: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return g * out * np.log(np.where(np.equal(x, 0), 1, x))

    return _binary("**", a, b, lambda x, p: out, d_base, d_exp)


def _matmul(a: Tensor | float, b: Tensor | float) -> Tensor:
    """numpy's matmul rules (1-D, 2-D, batched). With 1-D operands promoted to matrices:
    dA = g @ B^T, dB = A^T @ g, batch axes summed back by _unbroadcast."""
    if not isinstance(a, Tensor) or not isinstance(b, Tensor):
        raise ValueError("matmul: both operands must be tensors or arrays, not scalars")
    A, B = a.data, b.data
    if A.ndim == 0 or B.ndim == 0:
        raise ValueError(f"matmul: operands must have at least 1 dimension, got shapes {A.shape} "
                         f"and {B.shape}")
    try:
        data = A @ B
    except ValueError:
        raise ValueError(f"matmul: shapes {A.shape} and {B.shape} do not match "
                         f"({A.shape[-1]} != {B.shape[-2] if B.ndim > 1 else B.shape[0]})") from None
    A2 = A[None, :] if A.ndim == 1 else A
    B2 = B[:, None] if B.ndim == 1 else B

    def as_matrix(g: np.ndarray) -> np.ndarray:
        """The upstream gradient in the shape of A2 @ B2 (1-D operands promoted)."""
        if A.ndim == 1 and B.ndim == 1:
            return g.reshape(1, 1)
        if A.ndim == 1:
            return np.expand_dims(g, -2)
        if B.ndim == 1:
            return np.expand_dims(g, -1)
        return g

    def d_a(g: np.ndarray) -> np.ndarray:
        ga = _unbroadcast(as_matrix(g) @ B2.swapaxes(-1, -2), A2.shape)
        return ga if ga.shape == A.shape else ga.reshape(A.shape)

    def d_b(g: np.ndarray) -> np.ndarray:
        gm = as_matrix(g)
        if gm.ndim == 2 and A2.ndim == 2 and B2.flags.f_contiguous and not B2.flags.c_contiguous:
            # B is a transposed view (x @ W.T): give its gradient the same layout, so that
            # the transpose's gradient, W's, comes out row-major like W.
            gb = (gm.T @ A2).T
        else:
            gb = A2.swapaxes(-1, -2) @ gm
        gb = _unbroadcast(gb, B2.shape)
        return gb if gb.shape == B.shape else gb.reshape(B.shape)

    return _node("@", data, a, d_a, b, d_b)


class _Join(Node):
    """The extra operands of an op with more than two: a graph node has at most two parents,
    so ``linear(x, W, b)`` keeps ``x`` as its first parent and a join of ``(W, b)`` as its
    second. A join is never seen by users (``Tensor.parents`` looks through it); its gradient is
    the pair of its parents' gradients, which its two vjps hand on."""

    __slots__ = ("grad", "requires_grad", "_da", "_db")
    _zero_grad = None

    def __init__(self, a: Tensor, b: Tensor) -> None:
        self._a, self._b, self.op, self.grad = a, b, "join", None
        self.requires_grad = True
        self._da = _first if a.requires_grad else None
        self._db = _second if b.requires_grad else None


def _first(pair: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    return pair[0]


def _second(pair: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    return pair[1]


def linear(x: Any, weight: Any, bias: Any = None) -> Tensor:
    """``x @ weight.T + bias`` (torch.nn.functional.linear): weight (out, in), bias (out,).

    One op with its own vector-Jacobian products, ``dx = g @ W``, ``dW = g^T @ x`` (row-major
    like W, no transposed copy) and ``dbias = sum of g over the leading axes``, so an MLP layer
    costs what hand-written numpy costs. ``x`` may have any number of leading axes.

    >>> x = Tensor([[1.0, 2.0]])
    >>> W = Tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], requires_grad=True)
    >>> linear(x, W, Tensor([0.5, 0.5, 0.5])).data.tolist()
    [[1.5, 2.5, 3.5]]
    """
    x, weight = (t if isinstance(t, Tensor) else Tensor(_as_array(t, None, "linear")) for t in (x, weight))
    if bias is not None and not isinstance(bias, Tensor):
        bias = Tensor(_as_array(bias, None, "linear"))
    X, W = x.data, weight.data
    if W.ndim != 2 or X.ndim == 0 or X.shape[-1] != W.shape[1]:
        raise ValueError(f"linear: input of shape {X.shape} does not fit weight of shape {W.shape} "
                         f"(expected weight (out, {X.shape[-1] if X.ndim else '?'}))")
    if bias is not None and bias.shape != (W.shape[0],):
        raise ValueError(f"linear: bias must have shape ({W.shape[0]},), got {bias.shape}")
    out_shape = (*X.shape[:-1], W.shape[0])
    if pool.is_large(math.prod(out_shape) * X.itemsize):
        out = np.matmul(X, W.T, out=pool.empty(out_shape, np.result_type(X, W)))
    else:
        out = X @ W.T
    n_out, n_in = W.shape
    rows = math.prod(X.shape[:-1])  # not -1 in the reshapes: that fails for a zero-size g

    def d_x(g: np.ndarray) -> np.ndarray:
        if pool.is_large(X.nbytes):
            return np.matmul(g, W, out=pool.empty(X.shape, np.result_type(g, W)))
        return g @ W

    def d_w(g: np.ndarray) -> np.ndarray:
        return g.reshape(rows, n_out).T @ X.reshape(rows, n_in)

    if bias is None:
        return _node("linear", out, x, d_x, weight, d_w)
    out += bias.data
    if not (weight.requires_grad or bias.requires_grad):
        return _node("linear", out, x, d_x, weight, None)
    return _node("linear", out, x, d_x, _Join(weight, bias),
                 lambda g: (d_w(g), g.reshape(rows, n_out).sum(axis=0)))


def _accumulate(t: Tensor, contribution: np.ndarray, upstream: np.ndarray | None,
                borrowed: dict[int, tuple[Tensor, np.ndarray]] | None = None) -> None:
    """Add one gradient contribution to ``t.grad`` (summing away broadcast axes, in t's dtype).

    A first contribution that is the upstream gradient itself (an identity rule: ``+``, ``-``)
    is borrowed, not copied: ``t.grad`` is the upstream array for now, noted in ``borrowed``. A
    second contribution then goes into a fresh array (``contribution += borrowed`` when the
    contribution is ours), and :func:`_own_borrowed` copies whatever is still borrowed when the
    pass ends; so no two gradients share memory afterwards, and a leaf (``x`` in ``x - mean(x)``)
    is spared one full-size copy. Any other first contribution is stored as it is unless it may
    share memory with the upstream gradient (reshape and transpose rules return views of it) or
    is read-only: then it is copied.
    """
    if type(t) is _Join:  # its only consumer hands it the pair of gradients, once
        t.grad = contribution
        return
    if contribution.shape != t.data.shape:
        full, contribution = contribution, None
        contribution = _unbroadcast(full, t.data.shape)
        pool.recycle(full, 1)  # a large temporary nobody else holds goes back to the pool
        del full
    g = t.grad
    if g is None:
        if contribution is upstream and borrowed is not None and contribution.dtype == t.data.dtype:
            t.grad = contribution
            borrowed[id(t)] = (t, contribution)
            return
        # A fresh array (base None) that is not the upstream array itself is ours to keep;
        # numpy hands 0-d results back as scalars, which become arrays here.
        if (contribution is upstream or type(contribution) is not np.ndarray
                or contribution.dtype != t.data.dtype
                or (contribution.base is not None and _maybe_shared(contribution, upstream))):
            if pool.is_large(t.data.nbytes):
                copy = pool.empty(t.data.shape, t.data.dtype)
                np.copyto(copy, contribution, casting="unsafe")
                contribution = copy
            else:
                contribution = np.array(contribution, dtype=t.data.dtype, copy=True)
        t.grad = contribution
    elif borrowed and borrowed.pop(id(t), None) is not None:  # g is another node's gradient
        if (contribution is not upstream and type(contribution) is np.ndarray and contribution.base is None
                and contribution.flags.writeable and contribution.dtype == g.dtype):
            contribution += g  # a fresh array of ours: the sum goes there
            t.grad = contribution
        else:
            out = pool.empty(g.shape, g.dtype) if pool.is_large(g.nbytes) else np.empty_like(g)
            t.grad = np.add(g, contribution, out=out)
    else:
        g += contribution
        pool.recycle(contribution, 1)  # a large temporary nobody else holds goes back to the pool


def _own_borrowed(borrowed: dict[int, tuple[Tensor, np.ndarray]]) -> None:
    """End of a pass: a gradient still borrowed from its upstream node gets a copy of its own."""
    for t, array in borrowed.values():
        if t.grad is array:
            if pool.is_large(array.nbytes):
                t.grad = pool.empty(array.shape, array.dtype)
                np.copyto(t.grad, array)
            else:
                t.grad = array.copy()


def _own_data(t: Any) -> np.ndarray:
    """``t.data``, made safe to change in place (an optimizer step): when anything besides ``t``
    refers to the array (a graph built from ``t``, whose vjps read it in backward; a detached
    tensor; a view), ``t`` first gets a copy of its own, so each of those keeps the values it saw.
    A backward through a graph built before a step then gives the gradient where the graph was
    built, as Value does (torch raises instead); nothing ever mixes old and new values."""
    d = t.data
    if sys.getrefcount(d) > 3:  # t's slot, d, getrefcount's argument
        d = t.data = d.copy()
    return d


def _softmax_input(t: Tensor, axis: Any, op: str) -> tuple[np.ndarray, int | None]:
    """The data (integer and bool tensors as float64) and the one axis of a softmax; a 0-d
    tensor is its own class axis (softmax 1, log_softmax 0, as torch)."""
    if not isinstance(axis, (int, np.integer)) or isinstance(axis, (bool, np.bool_)):
        raise TypeError(f"{op}: axis must be an int, got {type(axis).__name__} {repr(axis)[:40]}")
    (ax,) = _normalize_axis(axis, t.ndim, op) or (None,)
    x = t.data
    return (x if x.dtype.kind == "f" else x.astype(np.float64)), ax


def _plain_index(index: Any) -> Any:
    """Tensors used as indices become their integer arrays (bool tensors stay masks); a float
    tensor must hold whole numbers."""
    if isinstance(index, tuple):
        return tuple(_plain_index(i) for i in index)
    if isinstance(index, Tensor):
        d = index.data
        if d.dtype.kind == "b":
            return d
        if d.dtype.kind == "f" and not np.array_equal(d, np.round(d)):  # nan and inf are not equal
            raise IndexError(f"getitem: a float tensor used as an index must hold whole numbers, got "
                             f"{np.array2string(d, threshold=6)}")
        return d.astype(np.intp)
    return index


