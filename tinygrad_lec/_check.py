"""Argument checks shared by the public functions (issue 8, "Hardening").

Each check takes the public name of the function (``op``) and the argument's name, and raises a
TypeError (wrong kind of thing) or ValueError (right kind, bad value) whose message starts with
``op`` and names the argument and the value given, so bad input never surfaces as a numpy or
CPython internals error. Each returns the argument converted to its canonical Python form.

>>> integer("Linear", "in_features", 3, low=1)
3
>>> integer("Linear", "in_features", 0, low=1)
Traceback (most recent call last):
...
ValueError: Linear: in_features must be an int >= 1, got 0
"""

from __future__ import annotations

import math
import numbers
import os
from typing import Any

import numpy as np

__all__ = ["integer", "number", "flag", "rng", "path", "float_dtype", "function", "sizes"]


def _show(x: Any) -> str:
    """repr, shortened: a bad argument may be a large array."""
    text = repr(x)
    return text if len(text) <= 60 else text[:57] + "..."


def _bounds(low: Any, high: Any, low_open: bool = False, high_open: bool = False) -> str:
    parts = []
    if low is not None:
        parts.append(f"{'>' if low_open else '>='} {low}")
    if high is not None:
        parts.append(f"{'<' if high_open else '<='} {high}")
    return " and ".join(parts)


def integer(op: str, name: str, x: Any, *, low: int | None = None, high: int | None = None) -> int:
    """An int (or numpy integer; not a bool, not a float) in ``[low, high]``."""
    if isinstance(x, (bool, np.bool_)) or not isinstance(x, (int, np.integer)):
        raise TypeError(f"{op}: {name} must be an int, got {type(x).__name__} {_show(x)}")
    x = int(x)
    if (low is not None and x < low) or (high is not None and x > high):
        raise ValueError(f"{op}: {name} must be an int {_bounds(low, high)}, got {x}")
    return x


def number(op: str, name: str, x: Any, *, low: float | None = None, high: float | None = None,
           low_open: bool = False, high_open: bool = False, finite: bool = True) -> float:
    """A real number (int, float, numpy scalar, Fraction...; not a bool, complex or array) as a
    float, finite unless ``finite=False`` (nan is never accepted), within the bounds."""
    if isinstance(x, (bool, np.bool_)) or not isinstance(x, numbers.Real):
        raise TypeError(f"{op}: {name} must be a real number, got {type(x).__name__} {_show(x)}")
    try:
        v = float(x)
    except OverflowError:
        raise ValueError(f"{op}: {name} is too large for a float: {_show(x)}") from None
    if math.isnan(v) or (finite and math.isinf(v)):
        raise ValueError(f"{op}: {name} must be a {'finite ' if finite else ''}number, got {v}")
    if ((low is not None and (v <= low if low_open else v < low))
            or (high is not None and (v >= high if high_open else v > high))):
        raise ValueError(f"{op}: {name} must be {_bounds(low, high, low_open, high_open)}, got {_show(x)}")
    return v


def flag(op: str, name: str, x: Any) -> bool:
    """A bool (or numpy bool, or the ints 0 and 1); never an array's ambiguous truth value."""
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, (int, np.integer)) and x in (0, 1):
        return bool(x)
    raise TypeError(f"{op}: {name} must be True or False, got {type(x).__name__} {_show(x)}")


def rng(op: str, seed: Any, name: str = "seed") -> np.random.Generator:
    """``np.random.default_rng(seed)`` for a seed that is None, an int >= 0 or a Generator."""
    if seed is None or isinstance(seed, np.random.Generator):
        return np.random.default_rng(seed)
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"{op}: {name} must be None, an int >= 0 or a numpy Generator, got "
                        f"{type(seed).__name__} {_show(seed)}")
    if seed < 0:
        raise ValueError(f"{op}: {name} must be an int >= 0, got {seed}")
    return np.random.default_rng(int(seed))


def path(op: str, p: Any, name: str = "path") -> str:
    """A file path: a non-empty str or os.PathLike (bytes paths are decoded), without NUL bytes."""
    if not isinstance(p, (str, bytes, os.PathLike)):
        raise TypeError(f"{op}: {name} must be a str or os.PathLike, got {type(p).__name__} {_show(p)}")
    p = os.fsdecode(os.fspath(p))
    if not p:
        raise ValueError(f"{op}: {name} is empty")
    if "\0" in p:
        raise ValueError(f"{op}: {name} contains a NUL byte: {_show(p)}")
    return p


def float_dtype(op: str, dtype: Any, name: str = "dtype") -> np.dtype:
    """A numpy floating dtype from anything np.dtype understands (np.float32, 'float64', ...)."""
    try:
        dt = np.dtype(dtype)
    except (TypeError, ValueError):
        raise TypeError(f"{op}: {name} must be a numpy floating dtype, got {_show(dtype)}") from None
    if dt.kind != "f":
        raise TypeError(f"{op}: {name} must be a floating dtype (float16/32/64), got {dt}")
    return dt


def function(op: str, name: str, f: Any) -> Any:
    if not callable(f):
        raise TypeError(f"{op}: {name} must be callable, got {type(f).__name__} {_show(f)}")
    return f


def sizes(op: str, name: str, x: Any, *, low: int = 0) -> tuple[int, ...]:
    """A shape-like argument: an int or a sequence of ints, each >= ``low``."""
    if isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_)):
        x = (x,)
    if isinstance(x, (str, bytes)) or not hasattr(x, "__iter__") or isinstance(x, (dict, set)):
        raise TypeError(f"{op}: {name} must be an int or a sequence of ints, got {type(x).__name__} "
                        f"{_show(x)}")
    out = tuple(integer(op, f"each of {name}", n) for n in x)
    bad = [n for n in out if n < low]
    if bad:
        raise ValueError(f"{op}: {name} must hold ints >= {low}, got {_show(x)}")
    return out
