"""Optimizers with PyTorch's update rules, step for step (REFERENCE 2-7), and the lecture's forms.

An optimizer only reads ``p.data`` and ``p.grad`` of its parameters and writes ``p.data``, so it
works on Tensors and on Values alike (a Value is treated as a 0-d array). A parameter whose grad
is None is skipped, as in torch. Parameters come as an iterable or as torch-style parameter groups,
a list of dicts with per-group hyperparameters::

    opt = optim.SGD([{"params": weights, "weight_decay": 1e-4}, {"params": biases}], lr=0.1)

Each update below is torch's single-tensor loop (``foreach=False``) in numpy, in the same order
of floating-point operations, so trajectories agree with torch to rounding.

>>> from tinygrad_lec import Tensor, optim
>>> w = Tensor([1.0, -2.0], requires_grad=True)
>>> opt = optim.SGD([w], lr=0.1, momentum=0.9)
>>> (w * w).sum().backward()
>>> opt.step()
>>> w.data.tolist()
[0.8, -1.6]
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from . import lr_scheduler

__all__ = ["Optimizer", "SGD", "RMSprop", "Adam", "AdamW", "Rprop", "lr_scheduler"]


def _is_value(p: Any) -> bool:
    return not isinstance(p.data, np.ndarray)


class Optimizer:
    """Base class: parameter groups, ``zero_grad``, ``step``, ``state_dict``/``load_state_dict``.

    ``self.state[i]`` holds the state of parameter i (its position over all groups) as numpy
    arrays of the parameter's shape; a Value's state arrays are 0-d.
    """

    def __init__(self, params: Iterable[Any], defaults: dict[str, Any]) -> None:
        name = type(self).__name__
        if isinstance(params, (np.ndarray,)) or hasattr(params, "data") and hasattr(params, "grad"):
            raise TypeError(f"{name}: params must be an iterable of parameters or of parameter groups, "
                            f"got a single {type(params).__name__}")
        groups = list(params)
        if not groups:
            raise ValueError(f"{name}: got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        self.defaults = dict(defaults)
        self.param_groups: list[dict[str, Any]] = []
        seen: set[int] = set()
        for i, group in enumerate(groups):
            if not isinstance(group, dict) or "params" not in group:
                raise TypeError(f"{name}: parameter group {i} must be a dict with a 'params' entry")
            unknown = set(group) - set(defaults) - {"params"}
            if unknown:
                raise ValueError(f"{name}: parameter group {i} has unknown options {sorted(unknown)}")
            ps = [group["params"]] if hasattr(group["params"], "grad") else list(group["params"])
            for p in ps:
                if not (hasattr(p, "data") and hasattr(p, "grad")):
                    raise TypeError(f"{name}: parameters need .data and .grad, got {type(p).__name__}")
                if id(p) in seen:
                    raise ValueError(f"{name}: a parameter appears more than once")
                seen.add(id(p))
            full = {**defaults, **{k: v for k, v in group.items() if k != "params"}, "params": ps}
            self._validate(full, f"{name} (group {i})" if len(groups) > 1 else name)
            self.param_groups.append(full)
        self.state: dict[int, dict[str, Any]] = {}

    def _validate(self, group: dict[str, Any], name: str) -> None:
        lr = group.get("lr")
        if lr is None or not isinstance(lr, (int, float)) or lr < 0 or math.isnan(lr):
            raise ValueError(f"{name}: invalid learning rate lr={lr!r} (must be a number >= 0)")
        for key in ("weight_decay", "momentum", "eps"):
            if key in group and not group[key] >= 0:
                raise ValueError(f"{name}: invalid {key}={group[key]!r} (must be >= 0)")

    def _params(self) -> Iterable[tuple[int, Any, dict[str, Any]]]:
        """(index over all groups, parameter, its group)."""
        i = 0
        for group in self.param_groups:
            for p in group["params"]:
                yield i, p, group
                i += 1

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Tensors' grads become None (or zeros), Values' grads 0.0."""
        for _, p, _ in self._params():
            if _is_value(p):
                p.grad = 0.0
            elif set_to_none or p.grad is None:
                p.grad = None
            else:
                p.grad = np.zeros_like(p.data)

    def step(self) -> None:
        """One update of every parameter that has a gradient. Every gradient is checked before
        any parameter moves, so a bad one raises and changes nothing."""
        work = []
        for i, p, group in self._params():
            if p.grad is None:
                continue
            value = _is_value(p)
            w = np.array(p.data, dtype=np.float64) if value else p.data
            if w.dtype.kind != "f" or not w.flags.writeable:
                raise TypeError(f"{type(self).__name__}: parameter {i} must be a writable floating array, "
                                f"got dtype {w.dtype}{'' if w.flags.writeable else ' (read-only)'}")
            try:
                g = np.asarray(p.grad, dtype=w.dtype)
            except (TypeError, ValueError):
                raise TypeError(f"{type(self).__name__}: the grad of parameter {i} is not numeric: "
                                f"{type(p.grad).__name__}") from None
            if g.shape != w.shape:
                raise ValueError(f"{type(self).__name__}: parameter {i} has shape {w.shape} but its grad "
                                 f"has shape {g.shape}")
            work.append((i, p, group, value, w, g))
        for i, p, group, value, w, g in work:
            self._update(w, g, self.state.setdefault(i, {}), group)
            if value:
                p.data = float(w)

    def _update(self, w: np.ndarray, g: np.ndarray, state: dict[str, Any], group: dict[str, Any]) -> None:
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        """torch's layout: ``{"state": {i: {...}}, "param_groups": [{..., "params": [i, ...]}]}``,
        with copies of the arrays."""
        groups, i = [], 0
        for group in self.param_groups:
            n = len(group["params"])
            options = {k: v for k, v in group.items() if k != "params"}
            groups.append({**options, "params": list(range(i, i + n))})
            i += n
        state = {i: {k: v for k, v in entry.items() if not k.startswith("_")}  # not the work arrays
                 for i, entry in self.state.items()}
        return {"state": copy.deepcopy(state), "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Resume from ``state_dict``; on any mismatch raises ValueError and changes nothing."""
        name = type(self).__name__
        try:
            if not isinstance(state_dict, dict):
                raise TypeError
            groups, state = state_dict["param_groups"], state_dict["state"]
        except (KeyError, TypeError):
            raise ValueError(f"{name}.load_state_dict: expected a dict with 'state' and "
                             f"'param_groups'") from None
        if not isinstance(groups, (list, tuple)) or not all(
                isinstance(g, dict) and isinstance(g.get("params"), (list, tuple)) for g in groups):
            raise ValueError(f"{name}.load_state_dict: 'param_groups' must be a list of dicts with 'params'")
        if len(groups) != len(self.param_groups) or any(
                len(g["params"]) != len(own["params"]) for g, own in zip(groups, self.param_groups)):
            raise ValueError(f"{name}.load_state_dict: the parameter groups do not match this optimizer's "
                             f"({[len(g['params']) for g in self.param_groups]} parameters per group)")
        shapes = {i: np.shape(p.data) for i, p, _ in self._params()}
        if not isinstance(state, dict) or not isinstance(groups, (list, tuple)):
            raise ValueError(f"{name}.load_state_dict: 'state' must be a dict and 'param_groups' a list")
        for i, entry in state.items():
            if i not in shapes or not isinstance(entry, dict):
                raise ValueError(f"{name}.load_state_dict: state for parameter {i!r}, which does not exist "
                                 f"or is not a dict")
            for key, value in entry.items():
                if key == "step":
                    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
                        raise ValueError(f"{name}.load_state_dict: step of parameter {i} must be an int "
                                         f">= 0, got {value!r}")
                elif (not isinstance(value, np.ndarray) or value.shape != shapes[i]
                      or value.dtype.kind != "f"):
                    raise ValueError(f"{name}.load_state_dict: state {key!r} of parameter {i} must be a "
                                     f"floating array of shape {shapes[i]}, got {value!r:.60}")
        new_groups = [{**{k: v for k, v in g.items() if k != "params"}, "params": own["params"]}
                      for g, own in zip(groups, self.param_groups)]
        for g in new_groups:
            self._validate(g, name)
        self.state = {int(i): copy.deepcopy(entry) for i, entry in state.items()}
        self.param_groups = new_groups

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {k}: {v}" for k, v in sorted(group.items()) if k != "params"]
        return "\n".join(lines + [")"])


def _check_range(name: str, key: str, value: float, low: float, high: float) -> None:
    if not low <= value < high:
        raise ValueError(f"{name}: invalid {key}={value!r} (must be in [{low}, {high}))")


def _lerp(m: np.ndarray, g: np.ndarray, weight: float) -> None:
    """``m += weight (g - m)`` in place, as torch's lerp computes it (two forms by weight)."""
    if weight < 0.5:
        m += weight * (g - m)
    else:
        m[...] = g - (g - m) * (1 - weight)


class SGD(Optimizer):
    """Stochastic gradient descent, with momentum, dampening, Nesterov and weight decay (torch):

        g <- g + weight_decay * w
        b <- g (first step),  b <- momentum * b + (1 - dampening) * g (later)
        g <- g + momentum * b  (nesterov)  or  g <- b
        w <- w - lr * g

    The lecture keeps the velocity in parameter units, dW = momentum * dW - lr * g; with a constant
    lr, dW = -lr * b and both give the same iterates (REFERENCE 2). With ``nesterov=True`` the
    parameters are the look-ahead points of the lecture's Nesterov method: the lecture's weights
    are ``W = w + lr * momentum * b`` (REFERENCE 3), ``b = opt.state[i]["momentum_buffer"]``.
    """

    def __init__(self, params: Iterable[Any], lr: float = 1e-3, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False, maximize: bool = False) -> None:
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov, maximize=maximize))

    def _validate(self, group: dict[str, Any], name: str) -> None:
        super()._validate(group, name)
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError(f"{name}: nesterov=True requires momentum > 0 and dampening = 0, got "
                             f"momentum={group['momentum']}, dampening={group['dampening']}")

    def _update(self, w, g, state, group):
        if group["maximize"]:
            g = -g
        if group["weight_decay"] != 0:
            g = g + group["weight_decay"] * w
        momentum = group["momentum"]
        if momentum != 0:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = np.array(g, copy=True)
            else:
                buf *= momentum
                buf += (1 - group["dampening"]) * g
            g = g + momentum * buf if group["nesterov"] else buf
        w -= group["lr"] * g


class RMSprop(Optimizer):
    """RMSProp (torch): ``v <- alpha v + (1 - alpha) g^2`` and ``w <- w - lr g / (sqrt(v) + eps)``,
    with optional weight decay, momentum and centering (``v - mean(g)^2``).

    ``eps_inside_sqrt=True`` gives the lecture's ``w <- w - lr g / sqrt(v + eps)`` (REFERENCE 4;
    the lecture's gamma is ``alpha``). The two agree only at eps = 0.
    """

    def __init__(self, params: Iterable[Any], lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0.0, momentum: float = 0.0, centered: bool = False,
                 eps_inside_sqrt: bool = False, maximize: bool = False) -> None:
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                                      momentum=momentum, centered=centered, eps_inside_sqrt=eps_inside_sqrt,
                                      maximize=maximize))

    def _validate(self, group: dict[str, Any], name: str) -> None:
        super()._validate(group, name)
        _check_range(name, "alpha", group["alpha"], 0.0, 1.0 + 1e-300)

    def _update(self, w, g, state, group):
        if group["maximize"]:
            g = -g
        if group["weight_decay"] != 0:
            g = g + group["weight_decay"] * w
        alpha, eps = group["alpha"], group["eps"]
        if not state:
            state["step"] = 0
            state["square_avg"] = np.zeros_like(w)
            if group["momentum"] > 0:
                state["momentum_buffer"] = np.zeros_like(w)
            if group["centered"]:
                state["grad_avg"] = np.zeros_like(w)
        state["step"] += 1
        v = state["square_avg"]
        v *= alpha
        v += ((1 - alpha) * g) * g  # torch's addcmul order
        if group["centered"]:
            _lerp(state["grad_avg"], g, 1 - alpha)
            variance = v - state["grad_avg"] * state["grad_avg"]
        else:
            variance = v
        avg = np.sqrt(variance + eps) if group["eps_inside_sqrt"] else np.sqrt(variance) + eps
        if group["momentum"] > 0:
            buf = state["momentum_buffer"]
            buf *= group["momentum"]
            buf += g / avg
            w -= group["lr"] * buf
        else:
            w += (-group["lr"] * g) / avg


class Adam(Optimizer):
    """Adam (torch): ``m <- beta1 m + (1 - beta1) g``, ``v <- beta2 v + (1 - beta2) g^2``, then
    ``w <- w - lr m_hat / (sqrt(v_hat) + eps)`` with the bias corrections ``m_hat = m / (1 - beta1^k)``,
    ``v_hat = v / (1 - beta2^k)``. ``weight_decay`` adds ``weight_decay * w`` to g (coupled L2;
    see :class:`AdamW` for decoupled decay); ``amsgrad`` uses the running maximum of v.

    ``eps_inside_sqrt=True`` gives the lecture's ``w <- w - lr m_hat / sqrt(v_hat + eps)``
    (REFERENCE 5; the lecture's delta, gamma are beta1, beta2). The two agree only at eps = 0; the
    first step at eps = 0 is ``-lr sign(g)``.
    """

    _decoupled = False

    def __init__(self, params: Iterable[Any], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, amsgrad: bool = False,
                 eps_inside_sqrt: bool = False, maximize: bool = False) -> None:
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                                      eps_inside_sqrt=eps_inside_sqrt, maximize=maximize))

    def _validate(self, group: dict[str, Any], name: str) -> None:
        super()._validate(group, name)
        betas = group["betas"]
        if not (isinstance(betas, (tuple, list)) and len(betas) == 2):
            raise ValueError(f"{name}: betas must be a pair (beta1, beta2), got {betas!r}")
        _check_range(name, "beta1 (betas[0])", betas[0], 0.0, 1.0)
        _check_range(name, "beta2 (betas[1])", betas[1], 0.0, 1.0)

    def _update(self, w, g, state, group):
        if group["maximize"]:
            g = -g
        lr, (beta1, beta2), eps, decay = group["lr"], group["betas"], group["eps"], group["weight_decay"]
        if not state:
            state["step"] = 0
            state["exp_avg"] = np.zeros_like(w)
            state["exp_avg_sq"] = np.zeros_like(w)
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = np.zeros_like(w)
        state["step"] += 1
        k = state["step"]
        if decay != 0:
            if self._decoupled:
                w *= 1 - lr * decay
            else:
                g = g + decay * w
        m, v = state["exp_avg"], state["exp_avg_sq"]
        scratch = state.get("_scratch")
        if scratch is None or scratch[0].dtype != w.dtype:  # two work arrays per parameter, kept
            scratch = state["_scratch"] = (np.empty_like(w), np.empty_like(w))
        t1, t2 = scratch
        # m: torch's lerp(m, g, 1 - beta1); v <- beta2 v + ((1 - beta2) g) g, in place
        if 1 - beta1 < 0.5:
            np.subtract(g, m, out=t1)
            t1 *= 1 - beta1
            m += t1
        else:
            _lerp(m, g, 1 - beta1)
        v *= beta2
        np.multiply(g, 1 - beta2, out=t1)
        t1 *= g
        v += t1
        if group["amsgrad"]:
            np.maximum(state["max_exp_avg_sq"], v, out=state["max_exp_avg_sq"])
            v = state["max_exp_avg_sq"]
        bias_correction1 = 1 - beta1**k
        bias_correction2 = 1 - beta2**k
        step_size = lr / bias_correction1
        denom = t1
        if group["eps_inside_sqrt"]:  # the lecture: sqrt(v_hat + eps)
            np.divide(v, bias_correction2, out=denom)
            denom += eps
            np.sqrt(denom, out=denom)
        else:  # torch: sqrt(v) / sqrt(1 - beta2^k) + eps
            np.sqrt(v, out=denom)
            denom /= bias_correction2**0.5
            denom += eps
        np.multiply(m, -step_size, out=t2)
        t2 /= denom
        w += t2


class AdamW(Adam):
    """Adam with decoupled weight decay (torch's AdamW): ``w <- w (1 - lr weight_decay)`` first,
    then the Adam step on the raw gradient (REFERENCE 6). Default ``weight_decay=0.01``."""

    _decoupled = True

    def __init__(self, params: Iterable[Any], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2, amsgrad: bool = False,
                 maximize: bool = False) -> None:
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                         maximize=maximize)


class Rprop(Optimizer):
    """Resilient backpropagation, torch's iRprop- variant (REFERENCE 7): per element, the step size
    grows by ``etas[1]`` while the gradient keeps its sign and shrinks by ``etas[0]`` when it flips
    (then that element does not move this step), within ``step_sizes``; ``w <- w - step * sign(g)``.
    Meant for full-batch gradients.
    """

    def __init__(self, params: Iterable[Any], lr: float = 1e-2, etas: tuple[float, float] = (0.5, 1.2),
                 step_sizes: tuple[float, float] = (1e-6, 50), maximize: bool = False) -> None:
        super().__init__(params, dict(lr=lr, etas=etas, step_sizes=step_sizes, maximize=maximize))

    def _validate(self, group: dict[str, Any], name: str) -> None:
        super()._validate(group, name)
        minus, plus = group["etas"]
        if not 0 < minus < 1 < plus:
            raise ValueError(f"{name}: invalid etas={group['etas']!r} (need 0 < etas[0] < 1 < etas[1])")
        low, high = group["step_sizes"]
        if not 0 <= low <= high:
            raise ValueError(f"{name}: invalid step_sizes={group['step_sizes']!r} (need 0 <= min <= max)")

    def _update(self, w, g, state, group):
        if group["maximize"]:
            g = -g
        (minus, plus), (low, high) = group["etas"], group["step_sizes"]
        if not state:
            state["step"] = 0
            state["prev"] = np.zeros_like(w)
            state["step_size"] = np.full_like(w, group["lr"])
        state["step"] += 1
        sign = np.sign(g * state["prev"])
        factor = np.where(sign > 0, plus, np.where(sign < 0, minus, 1.0))
        step_size = state["step_size"]
        step_size *= factor
        np.clip(step_size, low, high, out=step_size)
        g = np.where(sign < 0, 0.0, g)
        w -= np.sign(g) * step_size
        state["prev"][...] = g

