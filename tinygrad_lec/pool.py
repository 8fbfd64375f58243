"""A pool of large numpy arrays, so that training steps reuse memory instead of faulting it in.

A graph keeps every intermediate array (and, by the API, every interior gradient) until it is
dropped; then glibc returns that memory to the OS, and the next step faults it all in again
(hundreds of page faults per step at batch 512; see BENCHMARKS.md). So the arrays of a dead node
come back here (``tensor._PooledTensor.__del__``), and ops take their large results from here
(``empty``). An array is taken back only when nothing but the dying node refers to it (its
reference count says so), so no array anyone can still see is ever reused. Small arrays are left
to numpy: for them a pool costs more than it saves.

``MIN_BYTES = None`` switches the pool off; ``clear()`` gives its arrays back to the allocator.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

MIN_BYTES: int | None = 1 << 16  # arrays at least this large go through the pool
PER_SHAPE = 8  # arrays kept per (shape, dtype)
_waiting: dict[tuple[tuple[int, ...], np.dtype], list[np.ndarray]] = {}


def is_large(nbytes: int) -> bool:
    """Whether an array of this size goes through the pool."""
    return MIN_BYTES is not None and nbytes >= MIN_BYTES


def empty(shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    """An uninitialized array for a large result: from the pool when one of that shape waits."""
    waiting = _waiting.get((shape, np.dtype(dtype)))
    if waiting:
        try:
            return waiting.pop()
        except IndexError:  # another thread took it
            pass
    return np.empty(shape, dtype)


def recycle(arr: Any, refs: int) -> None:
    """Take ``arr`` back if it is large, owns its memory, and ``refs`` references (those of the
    caller) are all there are."""
    if (type(arr) is np.ndarray and MIN_BYTES is not None and arr.nbytes >= MIN_BYTES
            and arr.base is None and arr.flags.c_contiguous and arr.flags.writeable
            and sys.getrefcount(arr) == refs + 2):  # + this function's argument, + getrefcount's
        waiting = _waiting.setdefault((arr.shape, arr.dtype), [])
        if len(waiting) < PER_SHAPE:
            waiting.append(arr)


def held() -> int:
    """How many arrays the pool holds."""
    return sum(len(w) for w in _waiting.values())


def clear() -> None:
    """Drop the arrays the pool holds (their memory goes back to the allocator)."""
    _waiting.clear()
