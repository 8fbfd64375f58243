"""numpy helpers of the Tensor engine that know nothing of Tensors: the shape rules of
broadcasting and reductions, vjp arithmetic that takes large results from the array pool, dtype
and axis normalization, index analysis. ``tensor.py`` builds the ops from them.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from . import pool


def _kind_of(data: Any, arr: np.ndarray) -> str:
    if isinstance(data, int):
        return f"an int too large for a float: {repr(data)[:40]}..."
    if arr.dtype.kind == "O" and arr.ndim == 0:
        return f"{type(data).__name__} {repr(data)[:40]}"
    return f"an array of dtype {arr.dtype}"


def _dtype(dtype: Any, op: str) -> np.dtype:
    """A numeric numpy dtype (floating, integer or bool) from anything np.dtype understands."""
    try:
        dt = np.dtype(dtype)
    except (TypeError, ValueError):
        raise TypeError(f"{op}: unknown dtype {dtype!r}") from None
    if dt.kind not in "fiub":
        raise TypeError(f"{op}: dtype must be a floating, integer or bool dtype, got {dt}")
    return dt


def _unbroadcast(g: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum ``g`` down to ``shape``: over the leading axes broadcasting added, and over the axes
    where the operand had length 1. (Sums, not reshapes, so the result is a fresh array.)"""
    if g.shape == shape:
        return g
    extra = g.ndim - len(shape)
    if extra:
        g = g.sum(axis=tuple(range(extra)))
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and g.shape[i] != 1)
    if stretched:
        g = g.sum(axis=stretched, keepdims=True)
    return g


def _times(g: np.ndarray, y: Any) -> np.ndarray:
    """``g * y`` (y broadcasts to g's shape); a large result comes from the array pool."""
    if type(g) is np.ndarray and pool.is_large(g.nbytes):
        return np.multiply(g, y, out=pool.empty(g.shape, np.result_type(g, y)))
    return g * y


def _negative(g: np.ndarray) -> np.ndarray:
    """``-g``; a large result comes from the array pool."""
    if type(g) is np.ndarray and pool.is_large(g.nbytes):
        return np.negative(g, out=pool.empty(g.shape, g.dtype))
    return -g


def _sum_to(g: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """:func:`_unbroadcast`, giving a large summed-away temporary back to the pool."""
    if g.shape == shape:
        return g
    summed = _unbroadcast(g, shape)
    pool.recycle(g, 1)
    return summed


def _product_sum(g: np.ndarray, y: Any, shape: tuple[int, ...]) -> np.ndarray:
    """``_unbroadcast(g * y, shape)``: the gradient of an operand of ``shape`` that broadcasting
    stretched, where g and y have the result's shape. One einsum pass instead of a product and a
    sum, with no full-size temporary."""
    if type(y) is not np.ndarray or y.shape != g.shape or type(g) is not np.ndarray or g.ndim > 26:
        return _sum_to(_times(g, y), shape)
    letters = "abcdefghijklmnopqrstuvwxyz"[:g.ndim]
    lead = g.ndim - len(shape)
    kept = "".join(letters[lead + i] for i, n in enumerate(shape) if n != 1 or g.shape[lead + i] == 1)
    return np.einsum(f"{letters},{letters}->{kept}", g, y).reshape(shape)


def _normalize_axis(axis: Any, ndim: int, op: str) -> tuple[int, ...] | None:
    """``axis`` (None, an int or a tuple/list of ints) as a tuple of axes in ``range(ndim)``. A
    0-d tensor has the one axis 0 (or -1), as in torch: reducing over it changes nothing (())."""
    if axis is None:
        return None
    if isinstance(axis, (int, np.integer)) and not isinstance(axis, (bool, np.bool_)):
        axes: tuple[Any, ...] = (axis,)
    elif isinstance(axis, (tuple, list)):
        axes = tuple(axis)
    else:
        raise TypeError(f"{op}: axis must be an int or a tuple of ints, got {type(axis).__name__} "
                        f"{repr(axis)[:40]}")
    out = []
    for ax in axes:
        if not isinstance(ax, (int, np.integer)) or isinstance(ax, (bool, np.bool_)):
            raise TypeError(f"{op}: axis must be an int or a tuple of ints, got {repr(axis)[:40]}")
        if not -ndim <= ax < max(ndim, 1) and not (ndim == 0 and ax == -1):
            raise ValueError(f"{op}: axis {ax} is out of range for a tensor with {ndim} dimensions")
        out.append(int(ax) % max(ndim, 1))
    if len(set(out)) != len(out):
        raise ValueError(f"{op}: repeated axis in {axis!r}")
    return tuple(out) if ndim else ()


def _expand(g: np.ndarray, shape: tuple[int, ...], axes: tuple[int, ...] | None, keepdims: bool
            ) -> np.ndarray:
    """Gradient of a reduction: ``g`` copied along the reduced axes, as a fresh array of ``shape``.
    (Not a broadcast view: the vjps reading it then run numpy's strided loops, and the BatchNorm
    step measured 7% slower; ``np.broadcast_to`` also costs microseconds on tiny arrays.)"""
    large = pool.is_large(math.prod(shape) * g.itemsize)
    out = pool.empty(shape, g.dtype) if large else np.empty(shape, g.dtype)
    if axes is None:
        out.fill(g.reshape(()))
        return out
    if not keepdims:
        g = g.reshape([1 if i in axes else n for i, n in enumerate(shape)])
    out[...] = g
    return out


def _non_finite(arr: Any) -> str:
    arr = np.asarray(arr)
    bad = ~np.isfinite(arr)
    kinds = " and ".join(k for k, m in (("nan", np.isnan(arr)), ("inf", np.isinf(arr))) if m.any())
    return f"{kinds} in {np.count_nonzero(bad)} of {arr.size} values"


def _doubled(t: np.ndarray) -> np.ndarray:
    t *= 2
    return t


def _quotient(g: np.ndarray, y: Any) -> np.ndarray:
    """``g / y``; a large result comes from the array pool."""
    if type(g) is np.ndarray and pool.is_large(g.nbytes):
        return np.divide(g, y, out=pool.empty(g.shape, np.result_type(g, y)))
    return g / y


def _maybe_shared(view: np.ndarray, upstream: Any) -> bool:
    """A view we may not keep as a gradient: read-only, or possibly memory of the upstream array."""
    return not view.flags.writeable or (type(upstream) is np.ndarray and np.may_share_memory(view, upstream))


def _dtype_of(x: Any) -> str:
    return str(x.dtype) if isinstance(x, np.ndarray) else type(x).__name__


def _count(shape: tuple[int, ...], axes: tuple[int, ...] | None) -> int:
    return math.prod(shape) if axes is None else math.prod(shape[a] for a in axes)


def _has_array_index(index: Any) -> bool:
    items = index if isinstance(index, tuple) else (index,)
    return any(isinstance(i, (list, np.ndarray)) for i in items)


def _flat_indices(index: Any, shape: tuple[int, ...]) -> np.ndarray | None:
    """Flat positions picked by an index made of one integer array per axis (else None)."""
    if not isinstance(index, tuple) or len(index) != len(shape) or len(shape) == 0:
        return None
    arrays = []
    for i in index:
        if not isinstance(i, (list, np.ndarray)):
            return None
        a = np.asarray(i)
        if a.dtype.kind not in "iu":
            return None
        arrays.append(a)
    try:
        arrays = np.broadcast_arrays(*arrays)
    except ValueError:
        return None
    return np.ravel_multi_index(arrays, shape, mode="wrap").reshape(-1)
