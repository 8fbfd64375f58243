"""Learning-rate schedules (torch's ``optim.lr_scheduler``): call ``scheduler.step()`` once per
epoch (or per update), after ``optimizer.step()``; it sets ``group["lr"]`` of every group.

SGD converges on noisy minibatch gradients only with a decaying rate, the classic condition being
``sum lr_k = inf`` and ``sum lr_k^2 < inf`` (REFERENCE 1): :class:`InverseTimeLR`'s
``lr_0 / (1 + decay k)`` meets it; a constant or exponentially decaying rate does not.

The options are checked when a scheduler is built (TypeError for a wrong type, ValueError for a
value out of range, naming the scheduler and the option), and every learning rate a schedule
gives must be a finite number >= 0: a step (or a load) whose rate would not be (a ``gamma > 1``
that overflows, an ``lr_lambda`` returning nan) raises ValueError and changes nothing.

>>> from tinygrad_lec import Tensor, optim
>>> opt = optim.SGD([Tensor([1.0], requires_grad=True)], lr=1.0)
>>> sched = optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
>>> lrs = []
>>> for epoch in range(5):
...     lrs.append(opt.param_groups[0]["lr"])
...     opt.step(); sched.step()
>>> lrs
[1.0, 1.0, 0.5, 0.5, 0.25]
"""

from __future__ import annotations

import copy
import inspect
import math
import numbers
from collections.abc import Callable
from typing import Any

import numpy as np

from . import _check

__all__ = ["LRScheduler", "LambdaLR", "StepLR", "ExponentialLR", "InverseTimeLR"]


class LRScheduler:
    """Base: ``lr_k = lr_of(base_lr, k)`` after k calls of ``step()``."""

    # option -> its check (op, name, value) -> canonical value; used by __init__ and load_state_dict
    _options: dict[str, Callable[[str, str, Any], Any]] = {}

    def __init__(self, optimizer: Any) -> None:
        name = type(self).__name__
        groups = getattr(optimizer, "param_groups", None)
        if not (isinstance(groups, list) and groups
                and all(isinstance(g, dict) and "lr" in g for g in groups)):
            raise TypeError(f"{name}: expected an optimizer (with param_groups), got "
                            f"{type(optimizer).__name__} {_check.show(optimizer)}")
        base_lrs = [_check.nonnegative(name, f"the initial lr of parameter group {j}",
                                       g.get("initial_lr", g["lr"])) for j, g in enumerate(groups)]
        self.optimizer = optimizer
        self.base_lrs = base_lrs
        self.last_epoch = 0
        lrs = self._lrs(0)  # may raise: nothing of the optimizer is touched before this
        for group in groups:
            group.setdefault("initial_lr", group["lr"])
        self._write(lrs)

    def lr_of(self, base_lr: float, epoch: int) -> float:
        raise NotImplementedError

    def _lrs(self, epoch: int) -> list[float]:
        """The learning rate of every group at ``epoch``, each a finite number >= 0 (or ValueError)."""
        out = []
        for j, base in enumerate(self.base_lrs):
            try:
                lr = self.lr_of(base, epoch)
            except OverflowError:
                lr = math.inf
            if isinstance(lr, (bool, np.bool_)) or not isinstance(lr, numbers.Real) or not (
                    math.isfinite(lr) and lr >= 0):
                raise ValueError(f"{type(self).__name__}: the learning rate of parameter group {j} at epoch "
                                 f"{epoch} would be {_check.show(lr)}, not a finite number >= 0 "
                                 f"(base lr {base}, options {self._describe()})")
            out.append(float(lr))
        return out

    def _describe(self) -> str:
        return ", ".join(f"{key}={getattr(self, key)!r}" for key in self._options) or "none"

    def _write(self, lrs: list[float]) -> None:
        for group, lr in zip(self.optimizer.param_groups, lrs):
            group["lr"] = lr

    def step(self) -> None:
        """Advance one epoch and set the new learning rates (nothing changes if that fails)."""
        epoch = self.last_epoch + 1
        lrs = self._lrs(epoch)
        self._write(lrs)
        self.last_epoch = epoch

    def get_last_lr(self) -> list[float]:
        return [group["lr"] for group in self.optimizer.param_groups]

    def state_dict(self) -> dict[str, Any]:
        """The epoch count, the base rates and the options (as torch: not the optimizer, not a
        function such as ``lr_lambda``)."""
        return {k: list(v) if isinstance(v, list) else v for k, v in self.__dict__.items()
                if k != "optimizer" and not callable(v)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume: the epoch count, base rates and options, and the learning rates they give are set
        again. Everything is checked first; on a bad ``state`` it raises and changes nothing."""
        name = type(self).__name__
        op = f"{name}.load_state_dict"
        own = self.state_dict()
        if not isinstance(state, dict):
            raise TypeError(f"{op}: expected a dict with the keys {sorted(own)}, got {type(state).__name__} "
                            f"{_check.show(state)}")
        if set(state) != set(own):
            raise ValueError(f"{op}: expected a dict with the keys {sorted(own)}, got the keys "
                             f"{_check.show(sorted(map(repr, state)))}")
        new: dict[str, Any] = {"last_epoch": _check.integer(op, "last_epoch", state["last_epoch"], low=0)}
        base_lrs = state["base_lrs"]
        if not isinstance(base_lrs, (list, tuple)):
            raise TypeError(f"{op}: base_lrs must be a list of numbers, got {type(base_lrs).__name__} "
                            f"{_check.show(base_lrs)}")
        if len(base_lrs) != len(self.optimizer.param_groups):
            raise ValueError(f"{op}: {len(base_lrs)} base_lrs for {len(self.optimizer.param_groups)} "
                             f"parameter groups")
        new["base_lrs"] = [_check.nonnegative(op, f"base_lrs[{j}]", lr) for j, lr in enumerate(base_lrs)]
        for key, check in self._options.items():
            if key in state:
                new[key] = check(op, key, state[key])
        trial = copy.copy(self)
        trial.__dict__.update(new)
        lrs = trial._lrs(new["last_epoch"])
        self.__dict__.update(new)
        self._write(lrs)


class LambdaLR(LRScheduler):
    """``lr_k = base_lr * lr_lambda(k)``; ``lr_lambda`` takes the epoch and returns a real number
    >= 0 (anything else raises ValueError or TypeError)."""

    def __init__(self, optimizer: Any, lr_lambda: Callable[[int], float]) -> None:
        _check.function("LambdaLR", "lr_lambda", lr_lambda)
        try:
            signature = inspect.signature(lr_lambda)
        except (TypeError, ValueError):  # no signature to read (some builtins): trust it
            signature = None
        if signature is not None:
            try:
                signature.bind(0)
            except TypeError:
                raise TypeError(f"LambdaLR: lr_lambda must take one argument (the epoch), got "
                                f"{getattr(lr_lambda, '__qualname__', type(lr_lambda).__name__)}{signature}"
                                ) from None
        self.lr_lambda = lr_lambda
        super().__init__(optimizer)

    def lr_of(self, base_lr: float, epoch: int) -> float:
        factor = _check.number("LambdaLR", f"lr_lambda({epoch})", self.lr_lambda(epoch), low=0.0)
        return base_lr * factor


class StepLR(LRScheduler):
    """``lr_k = base_lr * gamma ** (k // step_size)``: divide by 1/gamma every step_size epochs."""

    _options = {"step_size": _check.positive_int, "gamma": _check.nonnegative}

    def __init__(self, optimizer: Any, step_size: int, gamma: float = 0.1) -> None:
        self.step_size = _check.positive_int("StepLR", "step_size", step_size)
        self.gamma = _check.nonnegative("StepLR", "gamma", gamma)
        super().__init__(optimizer)

    def lr_of(self, base_lr: float, epoch: int) -> float:
        return base_lr * self.gamma ** (epoch // self.step_size)


class ExponentialLR(LRScheduler):
    """``lr_k = base_lr * gamma ** k``."""

    _options = {"gamma": _check.nonnegative}

    def __init__(self, optimizer: Any, gamma: float) -> None:
        self.gamma = _check.nonnegative("ExponentialLR", "gamma", gamma)
        super().__init__(optimizer)

    def lr_of(self, base_lr: float, epoch: int) -> float:
        return base_lr * self.gamma**epoch


class InverseTimeLR(LRScheduler):
    """``lr_k = base_lr / (1 + decay * k)``: the 1/k decay under which SGD on noisy gradients
    converges (sum of rates infinite, sum of squares finite; REFERENCE 1)."""

    _options = {"decay": _check.nonnegative}

    def __init__(self, optimizer: Any, decay: float = 1.0) -> None:
        self.decay = _check.nonnegative("InverseTimeLR", "decay", decay)
        super().__init__(optimizer)

    def lr_of(self, base_lr: float, epoch: int) -> float:
        return base_lr / (1 + self.decay * epoch)
