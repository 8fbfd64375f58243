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

__all__ = ["integer", "positive_int", "nonnegative", "number", "flag", "rng", "path", "float_dtype",
           "function", "sizes", "show"]


def show(x: Any) -> str:
    """repr for an error message, shortened (a bad argument may be a large array or an int of
    thousands of digits, which str() refuses); never raises."""
    if isinstance(x, int) and not -(10**50) < x < 10**50:
        sign, digits = "-" if x < 0 else "", int(abs(x).bit_length() * 0.30103) + 1
        if digits >= 4000:  # str() refuses ints this long (sys.set_int_max_str_digits)
            return f"{sign}an int of about {digits} digits"
        text = str(abs(x))
        return f"{sign}{text[:8]}... (an int of {len(text)} digits)"
    try:
        text = repr(x)
    except Exception:  # a broken __repr__
        return f"<{type(x).__name__}>"
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
        raise TypeError(f"{op}: {name} must be an int, got {type(x).__name__} {show(x)}")
    x = int(x)
    if (low is not None and x < low) or (high is not None and x > high):
        raise ValueError(f"{op}: {name} must be an int {_bounds(low, high)}, got {x}")
    return x


def nonnegative(op: str, name: str, x: Any) -> float:
    """A finite real number >= 0, as a float (a learning rate, a decay, eps)."""
    return number(op, name, x, low=0.0)


def positive_int(op: str, name: str, x: Any) -> int:
    """An int >= 1 (or numpy integer). A real number that is not one (0, 2.5, True) is a
    ValueError, anything else (None, "3", [3]) a TypeError."""
    if isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_)) and x >= 1:
        return int(x)
    error = ValueError if isinstance(x, numbers.Real) else TypeError
    raise error(f"{op}: {name} must be a positive int, got {type(x).__name__} {show(x)}")


def number(op: str, name: str, x: Any, *, low: float | None = None, high: float | None = None,
           low_open: bool = False, high_open: bool = False, finite: bool = True) -> float:
    """A real number (int, float, numpy scalar, Fraction...; not a bool, complex or array) as a
    float, finite unless ``finite=False`` (nan is never accepted), within the bounds."""
    if isinstance(x, (bool, np.bool_)) or not isinstance(x, numbers.Real):
        raise TypeError(f"{op}: {name} must be a real number, got {type(x).__name__} {show(x)}")
    try:
        v = float(x)
    except OverflowError:
        raise ValueError(f"{op}: {name} is too large for a float: {show(x)}") from None
    if math.isnan(v) or (finite and math.isinf(v)):
        raise ValueError(f"{op}: {name} must be a {'finite ' if finite else ''}number, got {v}")
    if ((low is not None and (v <= low if low_open else v < low))
            or (high is not None and (v >= high if high_open else v > high))):
        raise ValueError(f"{op}: {name} must be {_bounds(low, high, low_open, high_open)}, got {show(x)}")
    return v


def flag(op: str, name: str, x: Any) -> bool:
    """A bool (or numpy bool, or the ints 0 and 1); never an array's ambiguous truth value."""
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, (int, np.integer)) and x in (0, 1):
        return bool(x)
    raise TypeError(f"{op}: {name} must be True or False, got {type(x).__name__} {show(x)}")


def rng(op: str, seed: Any, name: str = "seed") -> np.random.Generator:
    """``np.random.default_rng(seed)`` for a seed that is None, an int >= 0 or a Generator."""
    if seed is None or isinstance(seed, np.random.Generator):
        return np.random.default_rng(seed)
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"{op}: {name} must be None, an int >= 0 or a numpy Generator, got "
                        f"{type(seed).__name__} {show(seed)}")
    if seed < 0:
        raise ValueError(f"{op}: {name} must be an int >= 0, got {seed}")
    return np.random.default_rng(int(seed))


def path(op: str, p: Any, name: str = "path") -> str:
    """A file path: a non-empty str or os.PathLike (bytes paths are decoded), without NUL bytes."""
    if not isinstance(p, (str, bytes, os.PathLike)):
        raise TypeError(f"{op}: {name} must be a str or os.PathLike, got {type(p).__name__} {show(p)}")
    p = os.fsdecode(os.fspath(p))
    if not p:
        raise ValueError(f"{op}: {name} is empty")
    if "\0" in p:
        raise ValueError(f"{op}: {name} contains a NUL byte: {show(p)}")
    return p


def float_dtype(op: str, dtype: Any, name: str = "dtype") -> np.dtype:
    """A numpy floating dtype from anything np.dtype understands (np.float32, 'float64', ...)."""
    try:
        dt = np.dtype(dtype)
    except (TypeError, ValueError):
        raise TypeError(f"{op}: {name} must be a numpy floating dtype, got {show(dtype)}") from None
    if dt.kind != "f":
        raise TypeError(f"{op}: {name} must be a floating dtype (float16/32/64), got {dt}")
    return dt


def function(op: str, name: str, f: Any) -> Any:
    if not callable(f):
        raise TypeError(f"{op}: {name} must be callable, got {type(f).__name__} {show(f)}")
    return f


def sizes(op: str, name: str, x: Any, *, low: int = 0) -> tuple[int, ...]:
    """A shape-like argument: an int or a sequence of ints, each >= ``low``."""
    if isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_)):
        x = (x,)
    if isinstance(x, (str, bytes)) or not hasattr(x, "__iter__") or isinstance(x, (dict, set)):
        raise TypeError(f"{op}: {name} must be an int or a sequence of ints, got {type(x).__name__} "
                        f"{show(x)}")
    out = tuple(integer(op, f"each of {name}", n) for n in x)
    bad = [n for n in out if n < low]
    if bad:
        raise ValueError(f"{op}: {name} must hold ints >= {low}, got {show(x)}")
    return out
