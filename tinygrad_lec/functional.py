"""Functions on Tensors with PyTorch's names and semantics (``import tinygrad_lec.functional as F``).

Each is composed from Tensor ops or is one (``linear``), so its gradient comes from the ops'
own vector-Jacobian products: nothing here has a backward of its own. The docstrings give the
lecture's form beside torch's convention (REFERENCE 8, 10, 12).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from . import _check
from .graph import name_scope
from .tensor import Tensor, _as_array, linear

__all__ = [
    "linear", "softmax", "log_softmax", "mse_loss", "l2_divergence", "kl_div", "cross_entropy",
    "binary_cross_entropy", "binary_cross_entropy_with_logits", "softplus", "batch_norm", "dropout",
]

_REDUCTIONS = ("mean", "sum", "none")


def softmax(x: Tensor, axis: int = -1) -> Tensor:
    """``exp(x) / sum exp(x)`` along ``axis``, computed without overflow (``Tensor.softmax``)."""
    return _tensor(x, "softmax").softmax(axis=axis)


def log_softmax(x: Tensor, axis: int = -1) -> Tensor:
    """``x - log sum exp(x)`` along ``axis``, finite for logits of any size (``Tensor.log_softmax``)."""
    return _tensor(x, "log_softmax").log_softmax(axis=axis)


# -- divergences (REFERENCE 8) ---------------------------------------------------------------------


def _tensor(x: Any, op: str) -> Tensor:
    """A floating Tensor as it is; an integer or bool Tensor (which cannot require grad), numbers,
    lists and arrays as a constant float Tensor (errors name ``op``). Integers become floats before
    any arithmetic, so ``x - max`` of uint8 input cannot wrap around, nor ``-x`` of bools fail."""
    if isinstance(x, Tensor):
        return x if x.data.dtype.kind == "f" else Tensor(x.data.astype(np.float64))
    return Tensor(_as_array(x, None, op))


def _check_reduction(op: str, reduction: Any, batchmean: bool = False) -> None:
    allowed = _REDUCTIONS + (("batchmean",) if batchmean else ())
    if not isinstance(reduction, str):
        raise TypeError(f"{op}: reduction must be one of {allowed}, got {type(reduction).__name__} "
                        f"{_check.show(reduction)}")
    if reduction not in allowed:
        raise ValueError(f"{op}: reduction must be one of {allowed}, got {reduction!r}")


def _same_shape(op: str, input: Tensor, target: Tensor) -> None:
    # torch broadcasts with a warning; a (B, 1) vs (B,) mix-up silently gives a (B, B) loss, so we refuse.
    if input.shape != target.shape:
        raise ValueError(f"{op}: input shape {input.shape} and target shape {target.shape} differ")


def _reduce(op: str, loss: Tensor, reduction: str, batchmean: bool = False) -> Tensor:
    """``loss`` reduced; ``reduction`` was checked by ``_check_reduction`` before any work."""
    if reduction == "mean":
        if loss.size == 0:  # torch gives nan
            raise ValueError(f"{op}: reduction 'mean' of an empty batch (loss of shape {loss.shape}) "
                             f"is undefined; use 'sum' or 'none'")
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    if batchmean and reduction == "batchmean":
        if loss.ndim and loss.shape[0] == 0:
            raise ValueError(f"{op}: 'batchmean' of an empty batch (shape {loss.shape})")
        return loss.sum() / (loss.shape[0] if loss.ndim else 1)
    return loss


def mse_loss(input: Tensor, target: Any, reduction: str = "mean") -> Tensor:
    """torch's MSELoss: ``mean (input - target)^2`` over all elements ('mean'), or the sum, or none.

    The lecture's L2 divergence is ``1/2 ||y - d||^2`` per instance, averaged over the batch; it
    equals ``mse_loss(y, d, 'sum') / (2 B)`` and is :func:`l2_divergence` (REFERENCE 8).

    >>> mse_loss(Tensor([1.0, 2.0]), Tensor([0.0, 0.0])).item()
    2.5
    """
    _check_reduction("mse_loss", reduction)
    input, target = _tensor(input, "mse_loss"), _tensor(target, "mse_loss")
    _same_shape("mse_loss", input, target)
    diff = input - target
    return _reduce("mse_loss", diff * diff, reduction)


def l2_divergence(y: Tensor, d: Any) -> Tensor:
    """The lecture's L2 divergence over a minibatch: ``(1/B) sum_t 1/2 ||y_t - d_t||^2``, whose
    gradient per instance is ``y - d`` (REFERENCE 8). Equals ``mse_loss(y, d, 'sum') / (2 B)``.

    >>> l2_divergence(Tensor([[1.0, 2.0]]), Tensor([[0.0, 0.0]])).item()
    2.5
    """
    y, d = _tensor(y, "l2_divergence"), _tensor(d, "l2_divergence")
    _same_shape("l2_divergence", y, d)
    if y.ndim and y.shape[0] == 0:
        raise ValueError(f"l2_divergence: an empty batch (shape {y.shape}) has no mean")
    diff = y - d
    return (diff * diff).sum() * (0.5 / (y.shape[0] if y.ndim else 1))


def kl_div(input: Tensor, target: Any, reduction: str = "batchmean", log_target: bool = False) -> Tensor:
    """KL divergence ``sum d (log d - input)`` with ``input`` = log y (log-probabilities, e.g.
    ``log_softmax(z)``) and ``target`` = d (probabilities; log-probabilities if ``log_target``),
    with ``0 log 0 = 0``. This is torch's ``F.kl_div``, except that our default reduction is
    'batchmean' (sum / B, the mathematical KL averaged over the batch); torch's 'mean' divides by
    B*C. With one-hot targets KL equals the cross-entropy ``-log y_c`` exactly (REFERENCE 8).

    >>> z = Tensor([[1.0, 2.0, 3.0]])
    >>> d = Tensor([[0.0, 0.0, 1.0]])
    >>> round(kl_div(z.log_softmax(), d).item(), 12) == round(cross_entropy(z, [2]).item(), 12)
    True
    """
    _check_reduction("kl_div", reduction, batchmean=True)
    log_target = _flag("kl_div", "log_target", log_target)
    input, target = _tensor(input, "kl_div"), _tensor(target, "kl_div")
    _same_shape("kl_div", input, target)
    if log_target:
        pointwise = target.exp() * (target - input)
    elif target.requires_grad:
        # log of d where d > 0; where d == 0 the factor d makes the term 0 (0 log 0 = 0)
        pointwise = target * (target.clip(min=np.finfo(target.dtype).tiny).log() - input)
    else:
        d = target.data
        with np.errstate(divide="ignore", invalid="ignore"):
            d_log_d = np.where(d > 0, d * np.log(np.where(d > 0, d, 1)), 0).astype(d.dtype, copy=False)
        pointwise = Tensor(d_log_d) - target * input
    return _reduce("kl_div", pointwise, reduction, batchmean=True)


def cross_entropy(logits: Tensor, target: Any, reduction: str = "mean") -> Tensor:
    """torch's cross_entropy: ``-log softmax(logits)[target]`` per instance, through the stable
    ``log_softmax``; its gradient with respect to the logits is ``softmax(z) - onehot`` (divided by B
    for 'mean', REFERENCE 8).

    ``logits`` is (B, C) or (C,). ``target`` is either class indices, of shape (B,) (or () for
    unbatched logits), given as integers or as a float Tensor holding whole numbers (what
    ``data.DataLoader`` yields), or class probabilities of the logits' shape (soft targets:
    ``-sum d log y``).

    >>> round(cross_entropy(Tensor([[0.0, 0.0]]), [1]).item(), 6)
    0.693147
    """
    _check_reduction("cross_entropy", reduction)
    logits = _tensor(logits, "cross_entropy")
    if logits.ndim not in (1, 2):
        raise ValueError(f"cross_entropy: logits must be (B, C) or (C,), got shape {logits.shape}")
    n_classes = logits.shape[-1]
    if n_classes == 0:
        raise ValueError(f"cross_entropy: logits of shape {logits.shape} have no classes")
    if isinstance(target, Tensor) and target.shape == logits.shape and target.dtype.kind == "f":
        return _reduce("cross_entropy", -(target * logits.log_softmax(axis=-1)).sum(axis=-1), reduction)
    labels = _labels(target)
    if labels.shape == logits.shape and labels.dtype.kind == "f":
        soft = Tensor(labels) * logits.log_softmax(axis=-1)
        return _reduce("cross_entropy", -soft.sum(axis=-1), reduction)
    if labels.shape != logits.shape[:-1]:
        raise ValueError(f"cross_entropy: target of shape {labels.shape} does not fit logits of shape "
                         f"{logits.shape} (expected class indices of shape {logits.shape[:-1]} or "
                         f"probabilities of shape {logits.shape})")
    if labels.dtype.kind == "f":
        whole = np.isfinite(labels) & (labels == np.round(labels))
        if not np.all(whole):
            raise ValueError(f"cross_entropy: class indices must be whole numbers, got {labels[~whole][0]}")
    outside = (labels < 0) | (labels >= n_classes)  # before the cast: 1e300 must not wrap around
    if np.any(outside):
        bad = labels[outside].ravel()[0]
        raise IndexError(f"cross_entropy: class index {bad.item()} is out of range for {n_classes} classes")
    labels = labels.astype(np.intp)
    log_probs = logits.log_softmax(axis=-1)
    if logits.ndim == 1:
        return _reduce("cross_entropy", -log_probs[int(labels)], reduction)
    picked = log_probs[np.arange(len(labels)), labels]
    return _reduce("cross_entropy", -picked, reduction)


def _labels(target: Any) -> np.ndarray:
    """cross_entropy's target as an integer or float array (class indices or probabilities)."""
    if isinstance(target, Tensor):
        labels = target.data
    else:
        try:
            labels = np.asarray(target)
        except (TypeError, ValueError):
            labels = np.array(None)  # ragged lists and the like: refused below
    if labels.dtype.kind not in "iuf":
        raise TypeError(f"cross_entropy: target must be integer class indices or float probabilities, "
                        f"got {type(target).__name__} {_check.show(target)}"
                        f"{' of dtype ' + str(labels.dtype) if labels.dtype != object else ''}")
    return labels


def binary_cross_entropy(input: Tensor, target: Any, reduction: str = "mean") -> Tensor:
    """``-(d log y + (1 - d) log(1 - y))`` for probabilities y in [0, 1] (torch's BCELoss): the
    KL divergence between Bernoulli(d) and Bernoulli(y) for d in {0, 1}; through a sigmoid its
    gradient is ``y - d`` (REFERENCE 8). As torch, each log is clamped at -100, so y = 0 or 1
    gives a finite loss and no nan gradient.

    >>> round(binary_cross_entropy(Tensor([0.5]), Tensor([1.0])).item(), 6)
    0.693147
    """
    _check_reduction("binary_cross_entropy", reduction)
    input, target = _tensor(input, "binary_cross_entropy"), _tensor(target, "binary_cross_entropy")
    _same_shape("binary_cross_entropy", input, target)
    y = input.data
    if not np.all((y >= 0) & (y <= 1)):
        bad = y[~((y >= 0) & (y <= 1))].ravel()[0]
        raise ValueError(f"binary_cross_entropy: input must hold probabilities in [0, 1], got {bad}")

    def clamped_log(p: Tensor) -> Tensor:
        # log(p) clamped at -100 (torch). Clipping p away from 0 first keeps the gradient finite
        # (0, not 0/0) where the clamp is active.
        return p.clip(min=np.finfo(p.dtype).smallest_subnormal).log().clip(min=-100.0)

    loss = -(target * clamped_log(input) + (1 - target) * clamped_log(1 - input))
    return _reduce("binary_cross_entropy", loss, reduction)


def softplus(x: Tensor) -> Tensor:
    """``log(1 + e^x)``, stable for any x (``Tensor.softplus``); its derivative is sigmoid(x)."""
    return _tensor(x, "softplus").softplus()


def binary_cross_entropy_with_logits(input: Tensor, target: Any, reduction: str = "mean") -> Tensor:
    """Binary cross-entropy of ``sigmoid(input)`` computed from the logits a, stable for any a
    (torch's BCEWithLogitsLoss): ``d softplus(-a) + (1 - d) softplus(a)``, whose gradient is
    ``sigmoid(a) - d`` (REFERENCE 8, 9). No clamping is needed, unlike :func:`binary_cross_entropy`.

    >>> round(binary_cross_entropy_with_logits(Tensor([0.0]), Tensor([1.0])).item(), 6)
    0.693147
    """
    _check_reduction("binary_cross_entropy_with_logits", reduction)
    input = _tensor(input, "binary_cross_entropy_with_logits")
    target = _tensor(target, "binary_cross_entropy_with_logits")
    _same_shape("binary_cross_entropy_with_logits", input, target)
    loss = target * (-input).softplus() + (1 - target) * input.softplus()
    return _reduce("binary_cross_entropy_with_logits", loss, reduction)


# -- Batch Normalization (REFERENCE 10) ------------------------------------------------------------


def batch_norm(x: Tensor, running_mean: np.ndarray | None, running_var: np.ndarray | None,
               weight: Tensor | None = None, bias: Tensor | None = None, training: bool = False,
               momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Batch Normalization of ``x`` (N, C) or (N, C, L) per channel C (REFERENCE 10.1):

        mu = mean_i z_i,  var = mean_i (z_i - mu)^2 (biased),  u_i = (z_i - mu) / sqrt(var + eps),
        out_i = weight * u_i + bias

    In training the batch statistics are used and, if given, ``running_mean``/``running_var`` are
    updated in place: ``r <- (1 - momentum) r + momentum * stat``, the variance with the unbiased
    factor N/(N-1) (REFERENCE 10.4). Otherwise the running statistics normalize. Built from
    Tensor ops inside name scopes batchnorm/{mean, variance, normalize, scale_shift}, so autodiff
    derives the lecture's closed-form backward (REFERENCE 10.2) and viz can draw the stages.

    >>> out = batch_norm(Tensor([[1.0], [3.0]]), None, None, training=True, eps=0.0)
    >>> out.data.ravel().tolist()
    [-1.0, 1.0]
    """
    x = _tensor(x, "batch_norm")
    if x.ndim not in (2, 3):
        raise ValueError(f"batch_norm: expected input of shape (N, C) or (N, C, L), got {x.shape}")
    training = _flag("batch_norm", "training", training)
    momentum = _fraction("batch_norm", "momentum", momentum)
    eps = _nonnegative("batch_norm", "eps", eps)
    channels = x.shape[1]
    axes = (0,) if x.ndim == 2 else (0, 2)
    stat_shape = (1, channels) if x.ndim == 2 else (1, channels, 1)
    running_mean = _running_stat("running_mean", running_mean, x.shape, training)
    running_var = _running_stat("running_var", running_var, x.shape, training)
    if weight is not None:
        weight = _affine("weight", weight, x.shape)
    if bias is not None:
        bias = _affine("bias", bias, x.shape)
    n = x.size // channels if channels else 0
    if not training and (running_mean is None or running_var is None):
        raise ValueError("batch_norm: running_mean and running_var must be given in evaluation mode "
                         "(training=False); pass training=True to normalize with the batch statistics")
    use_batch_stats = training
    if training and n <= 1:
        raise ValueError(f"batch_norm: expected more than 1 value per channel when training, "
                         f"got input of shape {x.shape}")
    if not training and np.any(running_var < 0):  # sqrt of it: nan
        raise ValueError(f"batch_norm: running_var must be >= 0, got {running_var[running_var < 0][0]}")

    with name_scope("batchnorm"):
        if use_batch_stats:
            with name_scope("mean"):
                mu = x.mean(axis=axes, keepdims=True)
            with name_scope("variance"):
                centered = x - mu
                var = (centered * centered).mean(axis=axes, keepdims=True)
            with name_scope("normalize"):
                std = (var + eps).sqrt()
                u = centered / std
            mu.label, var.label, std.label, u.label = "μ", "σ²", "s", "u"
        else:
            with name_scope("normalize"):
                mean_c = np.asarray(running_mean, dtype=x.dtype).reshape(stat_shape)
                std_c = np.sqrt(np.asarray(running_var, dtype=x.dtype) + eps).reshape(stat_shape)
                u = (x - mean_c) / std_c
        with name_scope("scale_shift"):
            if weight is not None:
                u = u * _per_channel(weight, stat_shape)
            if bias is not None:
                u = u + _per_channel(bias, stat_shape)
    if weight is not None or bias is not None:
        u.label = "ẑ"

    if training and running_mean is not None and running_var is not None:
        # Updated only now that the forward has succeeded: a failed call changes nothing.
        batch_mean = mu.data.reshape(channels)
        unbiased_var = var.data.reshape(channels) * (n / (n - 1))
        running_mean *= 1 - momentum
        running_mean += momentum * batch_mean
        running_var *= 1 - momentum
        running_var += momentum * unbiased_var
    return u


def _per_channel(p: Tensor, stat_shape: tuple[int, ...]) -> Tensor:
    return p if len(stat_shape) == 2 else p.reshape(stat_shape)


def _running_stat(name: str, arr: Any, shape: tuple[int, ...], training: bool) -> Any:
    """A running statistic of batch_norm, checked: in training a writable float array of shape
    (C,) (it is updated in place), in evaluation anything numeric of that shape."""
    if arr is None:
        return None
    if training:
        if not isinstance(arr, np.ndarray) or arr.dtype.kind != "f":
            raise TypeError(f"batch_norm: {name} must be a floating numpy array to be updated in training, "
                            f"got {type(arr).__name__}"
                            f"{' of dtype ' + str(arr.dtype) if isinstance(arr, np.ndarray) else ''}")
        if not arr.flags.writeable:
            raise ValueError(f"batch_norm: {name} must be writable to be updated in training, "
                             f"got a read-only array")
    else:
        arr = _as_array(arr, None, f"batch_norm: {name}")
    if arr.shape != (shape[1],):
        raise ValueError(f"batch_norm: {name} must have shape ({shape[1]},) for input {shape}, "
                         f"got {arr.shape}")
    return arr


def _affine(name: str, p: Any, shape: tuple[int, ...]) -> Tensor:
    """batch_norm's weight or bias as a float Tensor of shape (C,)."""
    p = _tensor(p, f"batch_norm: {name}")
    if p.shape != (shape[1],):
        raise ValueError(f"batch_norm: {name} must have shape ({shape[1]},) for input {shape}, "
                         f"got {p.shape}")
    return p


# -- argument checks with a fast path for the plain values a training loop passes ---------------


def _flag(op: str, name: str, x: Any) -> bool:
    return x if x is True or x is False else _check.flag(op, name, x)


def _fraction(op: str, name: str, x: Any) -> float:
    """A number in [0, 1]."""
    if type(x) is float and 0.0 <= x <= 1.0:
        return x
    return _check.number(op, name, x, low=0, high=1)


def _nonnegative(op: str, name: str, x: Any) -> float:
    """A finite number >= 0."""
    if type(x) is float and 0.0 <= x < math.inf:
        return x
    return _check.nonnegative(op, name, x)


# -- Dropout (REFERENCE 12) ------------------------------------------------------------------------


def dropout(x: Tensor, p: float = 0.5, training: bool = True, seed: int | None = None,
            generator: np.random.Generator | None = None) -> Tensor:
    """Inverted dropout (torch): in training each element is kept with probability 1 - p and
    scaled by 1/(1 - p), so ``y = m * x / (1 - p)`` and ``dx = m * dy / (1 - p)``; outside training
    it is the identity (x itself). The lecture's form (``y = m * x`` in training, ``(1 - p) x`` at
    test) is this divided by 1 - p in both phases (REFERENCE 12). p = 1 gives zeros, not nan.

    The mask comes from ``generator`` if given, else from ``np.random.default_rng(seed)``.

    >>> dropout(Tensor([1.0, 2.0, 3.0]), p=0.5, training=False).data.tolist()
    [1.0, 2.0, 3.0]
    """
    x = _tensor(x, "dropout")
    p = _fraction("dropout", "p", p)
    training = _flag("dropout", "training", training)
    if generator is not None:
        if not isinstance(generator, np.random.Generator):
            raise TypeError(f"dropout: generator must be a numpy Generator or None, got "
                            f"{type(generator).__name__} {_check.show(generator)}")
        if seed is not None:
            raise ValueError("dropout: give seed or generator, not both")
    elif not (seed is None or isinstance(seed, np.random.Generator)
              or (type(seed) is int and seed >= 0)):
        _check.rng("dropout", seed)  # raises, naming the seed
    return _dropout(x, p, training, generator, seed)


def _dropout(x: Tensor, p: float, training: bool, generator: np.random.Generator | None,
             seed: Any = None) -> Tensor:
    """:func:`dropout` of checked arguments (``nn.Dropout`` checks its own when they are set)."""
    if not training or p == 0:
        return x
    if p == 1:
        return x * 0.0
    rng = generator if generator is not None else np.random.default_rng(seed)
    keep = rng.random(x.shape) >= p  # Bernoulli(1 - p)
    scale = (keep * (1.0 / (1.0 - p))).astype(x.dtype, copy=False)
    with name_scope("dropout"):
        return x * scale
