"""Learning-rate schedules (torch's ``optim.lr_scheduler``): call ``scheduler.step()`` once per
epoch (or per update), after ``optimizer.step()``; it sets ``group["lr"]`` of every group.

SGD converges on noisy minibatch gradients only with a decaying rate, the classic condition being
``sum lr_k = inf`` and ``sum lr_k^2 < inf`` (REFERENCE 1): :class:`InverseTimeLR`'s
``lr_0 / (1 + decay k)`` meets it; a constant or exponentially decaying rate does not.

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

from collections.abc import Callable
from typing import Any

__all__ = ["LRScheduler", "LambdaLR", "StepLR", "ExponentialLR", "InverseTimeLR"]


class LRScheduler:
    """Base: ``lr_k = lr_of(base_lr, k)`` after k calls of ``step()``."""

    def __init__(self, optimizer: Any) -> None:
        if not hasattr(optimizer, "param_groups"):
            raise TypeError(f"{type(self).__name__}: expected an optimizer, got {type(optimizer).__name__}")
        self.optimizer = optimizer
        for group in optimizer.param_groups:
            group.setdefault("initial_lr", group["lr"])
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = 0
        self._set(0)

    def lr_of(self, base_lr: float, epoch: int) -> float:
        raise NotImplementedError

    def _set(self, epoch: int) -> None:
        """Set every group's rate for ``epoch``; all are computed first, so a failure sets none."""
        lrs = [self.lr_of(base, epoch) for base in self.base_lrs]
        for group, lr in zip(self.optimizer.param_groups, lrs):
            group["lr"] = lr

    def step(self) -> None:
        """Advance one epoch and set the new learning rates (nothing changes if that fails)."""
        self._set(self.last_epoch + 1)
        self.last_epoch += 1

    def get_last_lr(self) -> list[float]:
        return [group["lr"] for group in self.optimizer.param_groups]

    def state_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "optimizer" and not callable(v)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume: the epoch count and base rates, and the learning rates they give are set again."""
        name = type(self).__name__
        own = self.state_dict()
        if not isinstance(state, dict) or set(state) != set(own):
            raise ValueError(f"{name}.load_state_dict: expected a dict with the keys {sorted(own)}")
        epoch = state["last_epoch"]
        if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
            raise ValueError(f"{name}.load_state_dict: last_epoch must be an int >= 0, got {epoch!r}")
        if len(state["base_lrs"]) != len(self.optimizer.param_groups):
            raise ValueError(f"{name}.load_state_dict: {len(state['base_lrs'])} base_lrs for "
                             f"{len(self.optimizer.param_groups)} parameter groups")
        saved = dict(self.__dict__)
        try:
            self.__dict__.update(state)
            self._set(self.last_epoch)
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(saved)
            raise


class LambdaLR(LRScheduler):
    """``lr_k = base_lr * lr_lambda(k)``."""

    def __init__(self, optimizer: Any, lr_lambda: Callable[[int], float]) -> None:
        self.lr_lambda = lr_lambda
        super().__init__(optimizer)

    def lr_of(self, base_lr: float, epoch: int) -> float:
        return base_lr * self.lr_lambda(epoch)


class StepLR(LRScheduler):
    """``lr_k = base_lr * gamma ** (k // step_size)``: divide by 1/gamma every step_size epochs."""

    def __init__(self, optimizer: Any, step_size: int, gamma: float = 0.1) -> None:
        if not isinstance(step_size, int) or step_size <= 0:
            raise ValueError(f"StepLR: step_size must be a positive integer, got {step_size!r}")
        if gamma < 0:
            raise ValueError(f"StepLR: gamma must be >= 0, got {gamma}")
        self.step_size, self.gamma = step_size, gamma
        super().__init__(optimizer)

    def lr_of(self, base_lr: float, epoch: int) -> float:
        return base_lr * self.gamma ** (epoch // self.step_size)


class ExponentialLR(LRScheduler):
    """``lr_k = base_lr * gamma ** k``."""

    def __init__(self, optimizer: Any, gamma: float) -> None:
        if gamma < 0:
            raise ValueError(f"ExponentialLR: gamma must be >= 0, got {gamma}")
        self.gamma = gamma
        super().__init__(optimizer)

    def lr_of(self, base_lr: float, epoch: int) -> float:
        return base_lr * self.gamma**epoch


class InverseTimeLR(LRScheduler):
    """``lr_k = base_lr / (1 + decay * k)``: the 1/k decay under which SGD on noisy gradients
    converges (sum of rates infinite, sum of squares finite; REFERENCE 1)."""

    def __init__(self, optimizer: Any, decay: float = 1.0) -> None:
        if decay < 0:
            raise ValueError(f"InverseTimeLR: decay must be >= 0, got {decay}")
        self.decay = decay
        super().__init__(optimizer)

    def lr_of(self, base_lr: float, epoch: int) -> float:
        return base_lr / (1 + self.decay * epoch)
