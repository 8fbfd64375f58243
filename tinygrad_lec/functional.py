"""Functions on Tensors with PyTorch's names and semantics (``import tinygrad_lec.functional as F``).

Each is composed from Tensor ops or is one (``linear``), so its gradient comes from the ops'
own vector-Jacobian products: nothing here has a backward of its own.
"""

from __future__ import annotations

from .tensor import Tensor, linear

__all__ = ["linear", "softmax", "log_softmax"]


def softmax(x: Tensor, axis: int = -1) -> Tensor:
    """``exp(x) / sum exp(x)`` along ``axis``, computed without overflow (``Tensor.softmax``)."""
    return x.softmax(axis=axis)


def log_softmax(x: Tensor, axis: int = -1) -> Tensor:
    """``x - log sum exp(x)`` along ``axis``, finite for logits of any size (``Tensor.log_softmax``)."""
    return x.log_softmax(axis=axis)
