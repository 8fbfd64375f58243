"""tinygrad_lec: a small, exact reverse-mode autodiff library for the lecture
"Training optimizers and regularizers".

>>> import tinygrad_lec as tl
>>> x = tl.Value(3.0)
>>> y = x * x + 2 * x
>>> y.backward()
>>> x.grad
8.0

Submodules (``nn``, ``functional``, ``optim``, ``data``, ``viz``, ``scalar``, ``testing``, ...)
load on first use, so ``import tinygrad_lec`` stays fast.
"""

from __future__ import annotations

import importlib

from .gradcheck import GradcheckError, gradcheck
from .graph import (
    AnomalyError,
    current_scope,
    detect_anomaly,
    enable_grad,
    is_anomaly_enabled,
    is_grad_enabled,
    name_scope,
    no_grad,
    set_detect_anomaly,
)
from .tensor import Tensor
from .value import DomainError, Value

__version__ = "0.1.0"

__all__ = [
    "Value", "Tensor", "DomainError", "no_grad", "enable_grad", "is_grad_enabled", "name_scope",
    "current_scope", "gradcheck", "GradcheckError", "detect_anomaly", "set_detect_anomaly",
    "is_anomaly_enabled", "AnomalyError", "__version__",
]

_SUBMODULES = {"scalar", "data", "testing", "graph", "value", "tensor", "pool", "functional", "nn", "optim",
               "lr_scheduler", "viz", "lecture", "cli"}


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'tinygrad_lec' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | _SUBMODULES)
