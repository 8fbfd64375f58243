"""Optimizers with PyTorch's update rules, step for step (REFERENCE 2-7), and the lecture's forms.

An optimizer only reads ``p.data`` and ``p.grad`` of its parameters and writes ``p.data``, so it
works on Tensors and on Values alike (a Value is treated as a 0-d array). A parameter whose grad
is None is skipped, as in torch. Parameters come as an iterable or as torch-style parameter groups,
a list of dicts with per-group hyperparameters::

    opt = optim.SGD([{"params": weights, "weight_decay": 1e-4}, {"params": biases}], lr=0.1)

Each update below is torch's single-tensor loop (``foreach=False``) in numpy, in the same order
of floating-point operations, so trajectories agree with torch to rounding. float16 parameters
are updated in float32 (the state is kept in float32) and the result is rounded back to float16:
in float16 itself the default ``eps=1e-8`` rounds to 0 and squared gradients underflow, so Adam
and RMSprop would divide 0 by 0. float32 and float64 parameters are updated in their own dtype.

Every hyperparameter is checked when the optimizer is built (and when a state_dict is loaded):
a wrong type is a TypeError, a value out of torch's range a ValueError, both naming the
optimizer and the option; the groups keep the options as Python floats, bools and tuples.

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
import numbers
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from . import _check, lr_scheduler
from .tensor import _own_data

__all__ = ["Optimizer", "SGD", "RMSprop", "Adam", "AdamW", "Rprop", "lr_scheduler"]

_MAX_STEP = 2**53  # a step count beyond this is no count of steps (beta**k would not be a float)


def _is_value(p: Any) -> bool:
    return not isinstance(p.data, np.ndarray)


# -- option checks: (op, option name, value) -> the value in canonical form, or TypeError/ValueError --


_nonnegative, _flag = _check.nonnegative, _check.flag  # short names for the option tables


def _real(op: str, key: str, x: Any) -> float:
    return _check.number(op, key, x)


def _unit(op: str, key: str, x: Any) -> float:
    return _check.number(op, key, x, low=0.0, high=1.0)


def _pair(op: str, key: str, x: Any, **bounds: Any) -> tuple[float, float]:
    """A tuple or list of two real numbers, each within ``bounds`` (those of _check.number)."""
    if not isinstance(x, (tuple, list)):
        raise TypeError(f"{op}: {key} must be a pair of numbers (a tuple), got {type(x).__name__} "
                        f"{_check.show(x)}")
    if len(x) != 2:
        raise ValueError(f"{op}: {key} must be a pair of numbers, got {len(x)} of them: {_check.show(x)}")
    return (_check.number(op, f"{key}[0]", x[0], **bounds), _check.number(op, f"{key}[1]", x[1], **bounds))


def _betas(op: str, key: str, x: Any) -> tuple[float, float]:
    return _pair(op, key, x, low=0.0, high=1.0, high_open=True)


def _etas(op: str, key: str, x: Any) -> tuple[float, float]:
    minus, plus = _pair(op, key, x)
    if not 0 < minus < 1 < plus:
        raise ValueError(f"{op}: {key} must satisfy 0 < {key}[0] < 1 < {key}[1], got {_check.show(x)}")
    return minus, plus


def _step_sizes(op: str, key: str, x: Any) -> tuple[float, float]:
    low, high = _pair(op, key, x, low=0.0)
    if not low <= high:
        raise ValueError(f"{op}: {key} must be (min, max) with 0 <= min <= max, got {_check.show(x)}")
    return low, high


class Optimizer:
    """Base class: parameter groups, ``zero_grad``, ``step``, ``state_dict``/``load_state_dict``.

    ``self.state[i]`` holds the state of parameter i (its position over all groups) as numpy
    arrays of the parameter's shape; a Value's state arrays are 0-d.
    """

    # option -> its check; a subclass lists every option it takes
    _options: dict[str, Callable[[str, str, Any], Any]] = {"lr": _nonnegative}
    # state keys: those an optimizer may keep per parameter
    _state_keys: frozenset[str] = frozenset()

    def __init__(self, params: Iterable[Any], defaults: dict[str, Any]) -> None:
        name = type(self).__name__
        if isinstance(params, np.ndarray) or hasattr(params, "data") and hasattr(params, "grad"):
            raise TypeError(f"{name}: params must be an iterable of parameters or of parameter groups, "
                            f"got a single {type(params).__name__}")
        groups = self._listed(name, "params", params)
        if not groups:
            raise ValueError(f"{name}: got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        self.defaults = self._canonical(dict(defaults), name)
        self.param_groups: list[dict[str, Any]] = []
        seen: set[int] = set()
        for i, group in enumerate(groups):
            if not isinstance(group, dict) or "params" not in group:
                raise TypeError(f"{name}: parameter group {i} must be a dict with a 'params' entry, got "
                                f"{type(group).__name__} {_check.show(group)}")
            unknown = set(group) - set(defaults) - {"params"}
            if unknown:
                raise ValueError(f"{name}: parameter group {i} has unknown options "
                                 f"{sorted(map(repr, unknown))}")
            ps = group["params"]
            ps = [ps] if hasattr(ps, "grad") else self._listed(name, f"the params of group {i}", ps)
            for p in ps:
                if not (hasattr(p, "data") and hasattr(p, "grad")):
                    raise TypeError(f"{name}: parameters need .data and .grad, got {type(p).__name__} "
                                    f"{_check.show(p)}")
                if id(p) in seen:
                    raise ValueError(f"{name}: a parameter appears more than once")
                seen.add(id(p))
            options = {k: v for k, v in group.items() if k != "params"}
            where = f"{name} (group {i})" if len(groups) > 1 else name
            full = self._canonical({**self.defaults, **options}, where)
            full["params"] = ps
            self.param_groups.append(full)
        self.state: dict[int, dict[str, Any]] = {}

    @staticmethod
    def _listed(name: str, what: str, params: Any) -> list[Any]:
        """``list(params)`` for an ordered iterable (not a dict or set, whose order is no order)."""
        if isinstance(params, (dict, set, frozenset, str, bytes)):
            raise TypeError(f"{name}: {what} must be an iterable of parameters or of dicts (a list), got "
                            f"{type(params).__name__} {_check.show(params)}")
        try:
            return list(params)
        except TypeError:
            raise TypeError(f"{name}: {what} must be an iterable of parameters or of dicts, got "
                            f"{type(params).__name__} {_check.show(params)}") from None

    def _canonical(self, group: dict[str, Any], name: str) -> dict[str, Any]:
        """The group's options checked and in canonical form (a new dict; ``params`` left out)."""
        out = {}
        for key, value in group.items():
            if key == "params":
                continue
            check = self._options.get(key)
            out[key] = value if check is None else check(name, key, value)
        return out

    def _params(self) -> Iterable[tuple[int, Any, dict[str, Any]]]:
        """(index over all groups, parameter, its group)."""
        return self._params_of(self.param_groups)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Tensors' grads become None (or zeros), Values' grads 0.0."""
        set_to_none = _flag(f"{type(self).__name__}.zero_grad", "set_to_none", set_to_none)
        for _, p, _ in self._params():
            if _is_value(p):
                p.grad = 0.0
            elif set_to_none or p.grad is None:
                p.grad = None
            else:
                p.grad = np.zeros_like(p.data)

    def _grad(self, i: int, grad: Any, dtype: np.dtype) -> np.ndarray:
        """A gradient that is not already an array of ``dtype``, as one, or a TypeError/ValueError:
        it must hold real numbers (no None, str, complex) and fit ``dtype`` (a finite gradient must
        not become inf)."""
        name = type(self).__name__
        not_numeric = TypeError(f"{name}: the grad of parameter {i} must be a real numeric array, got "
                                f"{type(grad).__name__} {_check.show(grad)}")
        try:
            a = np.asarray(grad)
        except (TypeError, ValueError):  # a ragged list
            raise not_numeric from None
        if a.dtype.kind == "c":
            raise TypeError(f"{name}: the grad of parameter {i} is complex ({a.dtype}); gradients must be "
                            f"real")
        try:
            with np.errstate(over="raise"):
                if a.dtype.kind == "O":  # numbers as Python objects (numpy would make None a nan)
                    items = a.ravel().tolist()
                    if not all(isinstance(x, numbers.Real) for x in items):
                        raise not_numeric
                    a = np.array([float(x) for x in items], dtype=np.float64).reshape(a.shape)
                elif a.dtype.kind not in "fiub":
                    raise not_numeric
                return a.astype(dtype, copy=False)
        except (FloatingPointError, OverflowError):
            raise ValueError(f"{name}: the grad of parameter {i} overflows the dtype it is used in, "
                             f"{np.dtype(dtype)}") from None

    def step(self) -> None:
        """One update of every parameter that has a gradient. Every gradient is checked before
        any parameter moves, so a bad one (complex, not numeric, of the wrong shape) raises and
        changes nothing. Arrays are updated in place, except one that something else still reads
        (a live graph built from the parameter): that parameter moves to a fresh copy, so a later
        backward through the old graph gives the gradient where it was built."""
        work = []
        for i, p, group in self._params():
            grad = p.grad
            if grad is None:
                continue
            data = p.data
            if isinstance(data, np.ndarray):
                del data
                data = _own_data(p)  # a live graph keeps reading the values it was built with
                value, w = False, data
                if w.dtype.kind != "f" or not w.flags.writeable:
                    what = "" if w.flags.writeable else " (read-only)"
                    raise TypeError(f"{type(self).__name__}: parameter {i} must be a writable floating "
                                    f"array, got dtype {w.dtype}{what}")
            else:
                value = True
                try:
                    w = np.array(float(data))
                except (TypeError, ValueError):
                    raise TypeError(f"{type(self).__name__}: parameter {i} must hold a float or a floating "
                                    f"array, got {type(data).__name__}") from None
            half = w.dtype.itemsize == 2  # float16: updated in float32
            dtype = np.float32 if half else w.dtype
            g = grad if isinstance(grad, np.ndarray) and grad.dtype == dtype else self._grad(i, grad, dtype)
            if g.shape != w.shape:
                raise ValueError(f"{type(self).__name__}: parameter {i} has shape {w.shape} but its grad "
                                 f"has shape {g.shape}")
            work.append((i, p, group, value, half, w, g))
        for i, p, group, value, half, w, g in work:
            if half:
                w32 = w.astype(np.float32)
                self._update(w32, g, self.state.setdefault(i, {}), group)
                w[...] = w32
            else:
                self._update(w, g, self.state.setdefault(i, {}), group)
            if value:
                p.data = float(w)

    def _update(self, w: np.ndarray, g: np.ndarray, state: dict[str, Any], group: dict[str, Any]) -> None:
        raise NotImplementedError

    def _needed(self, group: dict[str, Any]) -> set[str]:
        """The state keys an update with ``group``'s options reads from a non-empty state entry."""
        return set()

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
        """Resume from ``state_dict`` (torch's layout, see :meth:`state_dict`). Everything is checked
        first: on any mismatch (number of groups or parameters, options, state keys, shapes, dtypes)
        it raises ValueError or TypeError and changes nothing. State arrays are copied in the
        dtype the parameter is updated in (as torch casts them to the parameter's dtype)."""
        name = type(self).__name__
        op = f"{name}.load_state_dict"
        if not isinstance(state_dict, dict):
            raise TypeError(f"{op}: expected a dict with 'state' and 'param_groups', got "
                            f"{type(state_dict).__name__} {_check.show(state_dict)}")
        if "param_groups" not in state_dict or "state" not in state_dict:
            raise ValueError(f"{op}: expected a dict with 'state' and 'param_groups', got the keys "
                             f"{_check.show(sorted(map(repr, state_dict)))}")
        groups, state = state_dict["param_groups"], state_dict["state"]
        if not isinstance(groups, (list, tuple)) or not all(
                isinstance(g, dict) and isinstance(g.get("params"), (list, tuple)) for g in groups):
            raise ValueError(f"{op}: 'param_groups' must be a list of dicts with 'params'")
        if not isinstance(state, dict):
            raise ValueError(f"{op}: 'state' must be a dict, got {type(state).__name__}")
        if len(groups) != len(self.param_groups) or any(
                len(g["params"]) != len(own["params"]) for g, own in zip(groups, self.param_groups)):
            raise ValueError(f"{op}: the parameter groups do not match this optimizer's "
                             f"({[len(g['params']) for g in self.param_groups]} parameters per group)")
        new_groups = []
        for j, (g, own) in enumerate(zip(groups, self.param_groups)):
            keys = set(g) - {"params"}
            missing, unknown = set(self.defaults) - keys, keys - set(self.defaults) - {"initial_lr"}
            if missing or unknown:
                problem = (f"lacks the options {sorted(missing)}" if missing
                           else f"has unknown options {sorted(map(repr, unknown))}")
                raise ValueError(f"{op}: parameter group {j} {problem}")
            new = self._canonical(g, f"{op} (group {j})")
            if "initial_lr" in g:
                new["initial_lr"] = _nonnegative(f"{op} (group {j})", "initial_lr", g["initial_lr"])
            new["params"] = own["params"]
            new_groups.append(new)
        where = {i: (p, group) for i, p, group in self._params_of(new_groups)}
        new_state = {}
        for i, entry in state.items():
            if isinstance(i, (bool, np.bool_)) or not isinstance(i, (int, np.integer)) or int(i) not in where:
                raise ValueError(f"{op}: state for parameter {i!r}, which does not exist (the keys are the "
                                 f"parameters' positions 0..{len(where) - 1})")
            if not isinstance(entry, dict):
                raise ValueError(f"{op}: the state of parameter {i} must be a dict, got "
                                 f"{type(entry).__name__}")
            p, group = where[int(i)]
            unknown = set(entry) - self._state_keys
            missing = self._needed(group) - set(entry) if entry else set()
            if unknown or missing:
                raise ValueError(f"{op}: the state of parameter {i} " + (
                    f"has unknown keys {sorted(map(repr, unknown))}" if unknown
                    else f"lacks {sorted(missing)} (needed with this group's options)"))
            data = p.data
            shape = np.shape(data)
            floating = isinstance(data, np.ndarray) and data.dtype.kind == "f"
            dtype = data.dtype if floating else np.dtype(np.float64)
            dtype = np.float32 if dtype.itemsize == 2 else dtype  # float16: updated in float32
            new_entry: dict[str, Any] = {}
            for key, value in entry.items():
                if key == "step":
                    new_entry[key] = _check.integer(op, f"the step of parameter {i}", value, low=0,
                                                    high=_MAX_STEP)
                elif not isinstance(value, np.ndarray) or value.shape != shape or value.dtype.kind != "f":
                    raise ValueError(f"{op}: state {key!r} of parameter {i} must be a floating array of "
                                     f"shape {shape}, got {_check.show(value)}")
                else:
                    with np.errstate(over="ignore"):
                        new_entry[key] = np.array(value, dtype=dtype, copy=True)
            new_state[int(i)] = new_entry
        self.state = new_state
        self.param_groups = new_groups

    @staticmethod
    def _params_of(groups: list[dict[str, Any]]) -> Iterable[tuple[int, Any, dict[str, Any]]]:
        """(index over all groups, parameter, its group) of ``groups``."""
        i = 0
        for group in groups:
            for p in group["params"]:
                yield i, p, group
                i += 1

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {k}: {v}" for k, v in sorted(group.items()) if k != "params"]
        return "\n".join(lines + [")"])


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

    _options = {"lr": _nonnegative, "momentum": _nonnegative, "dampening": _real,
                "weight_decay": _nonnegative, "nesterov": _flag, "maximize": _flag}
    _state_keys = frozenset({"momentum_buffer"})

    def __init__(self, params: Iterable[Any], lr: float = 1e-3, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False, maximize: bool = False) -> None:
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov, maximize=maximize))


    def _canonical(self, group: dict[str, Any], name: str) -> dict[str, Any]:
        group = super()._canonical(group, name)
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError(f"{name}: nesterov=True requires momentum > 0 and dampening = 0, got "
                             f"momentum={group['momentum']}, dampening={group['dampening']}")
        return group

    def _needed(self, group: dict[str, Any]) -> set[str]:
        return {"momentum_buffer"} if group["momentum"] != 0 else set()

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

    _options = {"lr": _nonnegative, "alpha": _unit, "eps": _nonnegative, "weight_decay": _nonnegative,
                "momentum": _nonnegative, "centered": _flag, "eps_inside_sqrt": _flag, "maximize": _flag}
    _state_keys = frozenset({"step", "square_avg", "momentum_buffer", "grad_avg"})

    def __init__(self, params: Iterable[Any], lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0.0, momentum: float = 0.0, centered: bool = False,
                 eps_inside_sqrt: bool = False, maximize: bool = False) -> None:
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                                      momentum=momentum, centered=centered, eps_inside_sqrt=eps_inside_sqrt,
                                      maximize=maximize))


    def _needed(self, group: dict[str, Any]) -> set[str]:
        return ({"step", "square_avg"} | ({"momentum_buffer"} if group["momentum"] > 0 else set())
                | ({"grad_avg"} if group["centered"] else set()))

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

    _options = {"lr": _nonnegative, "betas": _betas, "eps": _nonnegative, "weight_decay": _nonnegative,
                "amsgrad": _flag, "eps_inside_sqrt": _flag, "maximize": _flag}
    _state_keys = frozenset({"step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"})

    _decoupled = False

    def __init__(self, params: Iterable[Any], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, amsgrad: bool = False,
                 eps_inside_sqrt: bool = False, maximize: bool = False) -> None:
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                                      eps_inside_sqrt=eps_inside_sqrt, maximize=maximize))


    def _needed(self, group: dict[str, Any]) -> set[str]:
        return {"step", "exp_avg", "exp_avg_sq"} | ({"max_exp_avg_sq"} if group["amsgrad"] else set())

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

    _options = {"lr": _nonnegative, "etas": _etas, "step_sizes": _step_sizes, "maximize": _flag}
    _state_keys = frozenset({"step", "prev", "step_size"})

    def __init__(self, params: Iterable[Any], lr: float = 1e-2, etas: tuple[float, float] = (0.5, 1.2),
                 step_sizes: tuple[float, float] = (1e-6, 50), maximize: bool = False) -> None:
        super().__init__(params, dict(lr=lr, etas=etas, step_sizes=step_sizes, maximize=maximize))

    def _needed(self, group: dict[str, Any]) -> set[str]:
        return {"step", "prev", "step_size"}

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

