"""Neural-network modules on Tensors, with PyTorch's names, parameter layouts and state_dict keys.

A :class:`Module` finds its parameters, buffers and submodules by looking at its attributes in
the order they were set: a leaf Tensor that requires grad (e.g. an :class:`Parameter`) is a
parameter, a :class:`Module` is a child, and numpy arrays registered with
:meth:`Module.register_buffer` are buffers (BatchNorm's running statistics). Every layer's forward
is built from Tensor ops and ``functional``, so all gradients come from autodiff.

>>> from tinygrad_lec import nn, Tensor
>>> net = nn.MLP([2, 8, 1], seed=0)
>>> [name for name, _ in net.named_parameters()]
['0.weight', '0.bias', '2.weight', '2.bias']
>>> net(Tensor([[0.5, -0.5]])).shape
(1, 1)
"""

from __future__ import annotations

import errno
import os
import threading
import zipfile
import zlib
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import numpy as np

from . import _check
from . import functional as F
from ._io import _os_error, atomic_write
from .tensor import Tensor, _as_array, linear

__all__ = [
    "Parameter", "Module", "Linear", "BatchNorm1d", "Dropout", "ReLU", "Sigmoid", "Tanh", "Identity",
    "Sequential", "MLP", "MSELoss", "CrossEntropyLoss", "KLDivLoss", "BCELoss", "save", "load_into",
]


class Parameter(Tensor):
    """A leaf Tensor that requires grad: the thing a Module registers and an optimizer updates.

    >>> Parameter([1.0, 2.0]).requires_grad
    True
    """

    __slots__ = ()

    def __init__(self, data: Any, requires_grad: bool = True, dtype: Any = None, label: str = "") -> None:
        super().__init__(data, requires_grad=requires_grad, dtype=dtype, label=label)


class IncompatibleKeys(NamedTuple):
    """What a non-strict ``load_state_dict`` skipped (torch's return value)."""

    missing_keys: list[str]
    unexpected_keys: list[str]


def _is_parameter(value: Any) -> bool:
    """A Parameter (even frozen, requires_grad=False, as torch), or any leaf Tensor needing grad."""
    if isinstance(value, Parameter):
        return True
    return isinstance(value, Tensor) and value.requires_grad and value.op == ""


class Module:
    """Base class of all layers: ``__call__`` runs ``forward``; parameters, buffers and children are
    the attributes, in the order they were first set (torch's registration order)."""

    training: bool

    def __init__(self) -> None:
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_buffers", {})

    def __setattr__(self, name: str, value: Any) -> None:
        buffers = self.__dict__.get("_buffers")
        if buffers is not None and name in buffers:
            buffers[name] = _as_buffer(name, value)
        else:
            object.__setattr__(self, name, value)

    def __getattr__(self, name: str) -> Any:
        buffers = self.__dict__.get("_buffers")
        if buffers is not None and name in buffers:
            return buffers[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def register_buffer(self, name: str, array: Any) -> None:
        """Register a numpy array that is state but not a parameter (saved in ``state_dict``)."""
        if "_buffers" not in self.__dict__:
            raise RuntimeError(f"{type(self).__name__}: call Module.__init__() before register_buffer")
        if name in self.__dict__:
            raise KeyError(f"register_buffer: attribute {name!r} already exists")
        self._buffers[name] = _as_buffer(name, array)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} has no forward()")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """``forward``, all or nothing: if it raises, every running statistic and dropout generator
        that the modules called inside it (a Sequential's earlier layers) had updated is restored."""
        if type(self) in _ATOMIC:
            return self.forward(*args, **kwargs)
        journal = _JOURNAL
        if journal.undo is not None:  # inside an outer call: that one restores on failure
            return self.forward(*args, **kwargs)
        undo: list[Callable[[], None]] = []
        journal.undo = undo
        try:
            return self.forward(*args, **kwargs)
        except BaseException:
            for restore in reversed(undo):
                restore()
            raise
        finally:
            journal.undo = None

    # -- walking the tree -------------------------------------------------------------------------

    def named_children(self) -> Iterator[tuple[str, Module]]:
        for name, value in self.__dict__.items():
            if isinstance(value, Module):
                yield name, value

    def children(self) -> Iterator[Module]:
        for _, child in self.named_children():
            yield child

    def modules(self) -> Iterator[Module]:
        """This module and all below it, depth first (torch's order)."""
        yield self
        for child in self.children():
            yield from child.modules()

    def named_parameters(self, prefix: str = "", recurse: bool = True) -> Iterator[tuple[str, Tensor]]:
        """(name, parameter) pairs: this module's in registration order, then each child's with
        the child's name as prefix ("0.weight"); a parameter shared by two modules appears once."""
        seen: set[int] = set()
        for name, p in self._named_members(prefix, recurse, lambda m: m._own_parameters()):
            if id(p) not in seen:
                seen.add(id(p))
                yield name, p

    def parameters(self, recurse: bool = True) -> Iterator[Tensor]:
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix: str = "", recurse: bool = True) -> Iterator[tuple[str, np.ndarray]]:
        yield from self._named_members(prefix, recurse, lambda m: m._buffers.items())

    def buffers(self, recurse: bool = True) -> Iterator[np.ndarray]:
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    def _own_parameters(self) -> Iterator[tuple[str, Tensor]]:
        for name, value in self.__dict__.items():
            if _is_parameter(value):
                yield name, value

    def _named_members(self, prefix: str, recurse: bool,
                       members: Callable[[Module], Any]) -> Iterator[tuple[str, Any]]:
        for name, value in members(self):
            yield prefix + name, value
        if recurse:
            for name, child in self.named_children():
                yield from child._named_members(prefix + name + ".", True, members)

    # -- training state -----------------------------------------------------------------------------

    def zero_grad(self) -> None:
        """Set every parameter's grad to None (torch's default, ``set_to_none=True``)."""
        for p in self.parameters():
            p.grad = None

    def train(self, mode: bool = True) -> Module:
        """Training mode (batch statistics, dropout on) for this module and all below; returns self."""
        mode = _check.flag("train", "mode", mode)
        for m in self.modules():
            object.__setattr__(m, "training", mode)
        return self

    def eval(self) -> Module:
        """Evaluation mode (running statistics, dropout off): ``train(False)``."""
        return self.train(False)

    # -- state ------------------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of all parameters' data and buffers, keyed like torch ("0.weight",
        "1.running_mean"); per module its parameters, then its buffers, then its children."""
        out: dict[str, np.ndarray] = {}
        self._collect_state("", out)
        return out

    def _collect_state(self, prefix: str, out: dict[str, np.ndarray]) -> None:
        for name, p in self._own_parameters():
            out.setdefault(prefix + name, p.data.copy())
        for name, b in self._buffers.items():
            out[prefix + name] = b.copy()
        for name, child in self.named_children():
            child._collect_state(prefix + name + ".", out)

    def _state_targets(self) -> dict[str, np.ndarray]:
        """The arrays that ``load_state_dict`` writes into, by key: every key of ``state_dict()``
        (a shared parameter under each of its names, as torch)."""
        targets = {name: p.data for name, p in self._named_members("", True, lambda m: m._own_parameters())}
        targets.update(self.named_buffers())
        return targets

    def load_state_dict(self, state_dict: dict[str, Any], strict: bool = True) -> IncompatibleKeys:
        """Copy arrays from ``state_dict`` into the parameters and buffers (in place, cast to
        their dtypes). Strict (the default): a missing key, an unexpected key, a wrong shape or a
        non-numeric value raises ValueError naming it, and changes nothing; everything is checked
        and converted before anything is written. Non-strict: missing and unexpected keys are
        skipped and returned, as torch does.
        """
        if not hasattr(state_dict, "keys"):
            raise TypeError(f"load_state_dict: expected a dict of arrays, got {type(state_dict).__name__}")
        strict = _check.flag("load_state_dict", "strict", strict)
        targets = self._state_targets()
        missing = [k for k in targets if k not in state_dict]
        unexpected = [k for k in state_dict if k not in targets]
        if strict and (missing or unexpected):
            raise ValueError(f"load_state_dict: missing keys {missing}, unexpected keys {unexpected} "
                             f"for {type(self).__name__}")
        converted = {}
        for key, target in targets.items():
            if key not in state_dict:
                continue
            try:
                value = np.asarray(state_dict[key])
            except Exception as e:
                raise ValueError(f"load_state_dict: {key!r} is not an array: {e}") from None
            if value.shape != target.shape:
                raise ValueError(f"load_state_dict: {key!r} has shape {value.shape}, the module expects "
                                 f"{target.shape}")
            if value.dtype.kind not in "biuf":
                raise ValueError(f"load_state_dict: {key!r} must be numeric, got dtype {value.dtype}")
            if target.dtype.kind in "iu" and value.dtype.kind == "f":  # num_batches_tracked
                info = np.iinfo(target.dtype)  # (float(max) + 1: the bound stays exact in float)
                whole = (np.isfinite(value) & (value == np.round(value)) & (value >= float(info.min))
                         & (value < float(info.max) + 1))
                if not np.all(whole):
                    raise ValueError(f"load_state_dict: {key!r} must hold whole numbers that fit dtype "
                                     f"{target.dtype}, got {value[~whole].ravel()[0]}")
            converted[key] = value.astype(target.dtype, copy=False)
        for key, value in converted.items():  # cannot fail: shapes and dtypes are settled
            targets[key][...] = value
        return IncompatibleKeys(missing, unexpected)

    def save(self, path: str | os.PathLike) -> None:
        """``nn.save(self, path)``: write the state_dict atomically."""
        save(self, path)

    def load(self, path: str | os.PathLike) -> Module:
        """``nn.load_into(self, path)``; returns self."""
        return load_into(self, path)

    # -- printing --------------------------------------------------------------------------------------

    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        children = [f"  ({name}): " + repr(child).replace("\n", "\n  ")
                    for name, child in self.named_children()]
        head = f"{type(self).__name__}({self.extra_repr()}"
        return head + (")" if not children else "\n" + "\n".join(children) + "\n)")


class _Journal(threading.local):
    """Per thread, during the outermost watched ``Module.__call__``: how to undo the state changes
    (running statistics, dropout generators) of the modules called so far."""

    undo: list[Callable[[], None]] | None = None


_JOURNAL = _Journal()


def _journal_arrays(*arrays: np.ndarray) -> None:
    """Record the contents of ``arrays`` (running statistics) before they are updated."""
    undo = _JOURNAL.undo
    if undo is not None:
        saved = [a.copy() for a in arrays]
        undo.append(lambda: [np.copyto(a, b) for a, b in zip(arrays, saved)])


def _journal_rng(generator: np.random.Generator) -> None:
    """Record the state of ``generator`` before it is drawn from."""
    undo = _JOURNAL.undo
    if undo is not None:
        bits = generator.bit_generator
        state = bits.state
        undo.append(lambda: setattr(bits, "state", state))


def _as_buffer(name: str, value: Any) -> np.ndarray:
    if value is None or not isinstance(value, np.ndarray):
        raise TypeError(f"buffer {name!r} must be a numpy array, got {type(value).__name__}")
    return value


# -- layers -----------------------------------------------------------------------------------------


def _rng(op: str, seed: Any) -> np.random.Generator:
    """``_check.rng``, and a SeedSequence too (MLP seeds its layers with spawned ones)."""
    if isinstance(seed, np.random.SeedSequence):
        return np.random.default_rng(seed)
    return _check.rng(op, seed)


def _check_positive_int(op: str, name: str, n: Any) -> None:
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n <= 0:
        raise ValueError(f"{op}: {name} must be a positive integer, got {n!r}")


class Linear(Module):
    """``y = x @ weight.T + bias`` (torch layout: weight (out, in), bias (out,)), initialized as
    torch does, uniform in ``[-1/sqrt(in), 1/sqrt(in)]``, from ``np.random.default_rng(seed)``.

    >>> Linear(3, 2, seed=0).weight.shape
    (2, 3)
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, seed: Any = None,
                 dtype: Any = np.float64) -> None:
        super().__init__()
        _check_positive_int("Linear", "in_features", in_features)
        _check_positive_int("Linear", "out_features", out_features)
        bias = _check.flag("Linear", "bias", bias)
        rng = _rng("Linear", seed)
        dtype = _check.float_dtype("Linear", dtype)
        self.in_features, self.out_features = int(in_features), int(out_features)
        bound = 1.0 / np.sqrt(in_features)
        self.weight = Parameter(rng.uniform(-bound, bound, (out_features, in_features)).astype(dtype))
        self.bias = Parameter(rng.uniform(-bound, bound, out_features).astype(dtype)) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        return linear(x, self.weight, self.bias)  # tensor.linear: no F.linear wrapper in the hot path

    def extra_repr(self) -> str:
        bias = self.bias is not None
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={bias}"


class BatchNorm1d(Module):
    """Batch Normalization over (N, C) or (N, C, L) inputs (REFERENCE 10), as torch's BatchNorm1d.

    Training: normalize with the batch mean and biased variance, then update the running
    statistics ``r <- (1 - momentum) r + momentum * stat`` with the unbiased variance
    ``B/(B-1) var``. ``momentum=None`` makes them the cumulative average over all batches seen, the
    lecture's test-time statistics (REFERENCE 10.4). Eval: normalize with the running statistics.
    ``weight`` is gamma (ones), ``bias`` is beta (zeros). A batch of 1 in training is a ValueError.

    >>> bn = BatchNorm1d(2)
    >>> _ = bn(Tensor([[0.0, 10.0], [2.0, 10.0]]))
    >>> bn.running_mean.tolist(), bn.running_var.tolist()
    ([0.1, 1.0], [1.1, 0.9])
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True, track_running_stats: bool = True, dtype: Any = np.float64) -> None:
        super().__init__()
        _check_positive_int("BatchNorm1d", "num_features", num_features)
        eps = _check.number("BatchNorm1d", "eps", eps, low=0)
        if momentum is not None:
            momentum = _check.number("BatchNorm1d", "momentum", momentum, low=0, high=1)
        affine = _check.flag("BatchNorm1d", "affine", affine)
        track_running_stats = _check.flag("BatchNorm1d", "track_running_stats", track_running_stats)
        dtype = _check.float_dtype("BatchNorm1d", dtype)
        self.num_features, self.eps, self.momentum = int(num_features), eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        self.weight = Parameter(np.ones(num_features, dtype=dtype)) if affine else None
        self.bias = Parameter(np.zeros(num_features, dtype=dtype)) if affine else None
        if track_running_stats:
            self.register_buffer("running_mean", np.zeros(num_features, dtype=dtype))
            self.register_buffer("running_var", np.ones(num_features, dtype=dtype))
            self.register_buffer("num_batches_tracked", np.zeros((), dtype=np.int64))

    def reset_running_stats(self) -> None:
        """Running mean 0, running variance 1, no batches seen (torch)."""
        if self.track_running_stats:
            self.running_mean[...] = 0
            self.running_var[...] = 1
            self.num_batches_tracked[...] = 0

    def forward(self, x: Tensor) -> Tensor:
        x = x if isinstance(x, Tensor) else Tensor(_as_array(x, None, "BatchNorm1d"))
        if x.ndim not in (2, 3) or x.shape[1] != self.num_features:
            raise ValueError(f"BatchNorm1d: expected input of shape (N, {self.num_features}) or "
                             f"(N, {self.num_features}, L), got {x.shape}")
        tracking = self.track_running_stats
        running = (self.running_mean, self.running_var) if tracking else (None, None)
        factor = 0.0
        if self.training and tracking:
            _journal_arrays(*running, self.num_batches_tracked)
            seen = int(self.num_batches_tracked) + 1
            factor = 1.0 / seen if self.momentum is None else self.momentum  # None: cumulative average
        out = F.batch_norm(x, *running, self.weight, self.bias, training=self.training or not tracking,
                           momentum=factor, eps=self.eps)
        if self.training and tracking:
            self.num_batches_tracked[...] = seen  # only after a successful forward
        return out

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"bias={self.affine}, track_running_stats={self.track_running_stats}")


class Dropout(Module):
    """Inverted dropout (REFERENCE 12): in training, each element is zeroed with probability p
    and the rest scaled by 1/(1 - p), a fresh mask on every call from a generator seeded with
    ``seed``; the identity in eval.

    >>> d = Dropout(0.5, seed=0).eval()
    >>> d(Tensor([1.0, 2.0])).data.tolist()
    [1.0, 2.0]
    """

    def __init__(self, p: float = 0.5, seed: Any = None) -> None:
        super().__init__()
        self.p = p
        self.generator = _rng("Dropout", seed)

    @property
    def p(self) -> float:
        """The probability of zeroing an element, in [0, 1] (checked when set)."""
        return self._p

    @p.setter
    def p(self, p: float) -> None:
        object.__setattr__(self, "_p", _check.number("Dropout", "p", p, low=0, high=1))

    def forward(self, x: Tensor) -> Tensor:
        x = x if isinstance(x, Tensor) and x.data.dtype.kind == "f" else F._tensor(x, "Dropout")
        generator = self.generator
        if self.training and 0.0 < self._p < 1.0:
            _journal_rng(generator)
        return F._dropout(x, self._p, self.training, generator)

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace=False"


class ReLU(Module):
    """max(x, 0) elementwise."""

    def forward(self, x: Tensor) -> Tensor:
        return (x if isinstance(x, Tensor) else Tensor(_as_array(x, None, "ReLU"))).relu()


class Sigmoid(Module):
    """1 / (1 + e^-x) elementwise."""

    def forward(self, x: Tensor) -> Tensor:
        return (x if isinstance(x, Tensor) else Tensor(_as_array(x, None, "Sigmoid"))).sigmoid()


class Tanh(Module):
    """tanh elementwise."""

    def forward(self, x: Tensor) -> Tensor:
        return (x if isinstance(x, Tensor) else Tensor(_as_array(x, None, "Tanh"))).tanh()


class Identity(Module):
    """Returns its input."""

    def forward(self, x: Tensor) -> Tensor:
        return x


class Sequential(Module):
    """Modules applied in order; children are named "0", "1", ... (torch's keys).

    >>> net = Sequential(Linear(2, 3, seed=0), ReLU())
    >>> len(net), type(net[1]).__name__
    (2, 'ReLU')
    """

    def __init__(self, *modules: Module) -> None:
        super().__init__()
        for i, m in enumerate(modules):
            if not isinstance(m, Module):
                raise TypeError(f"Sequential: argument {i} is a {type(m).__name__}, not a Module")
            setattr(self, str(i), m)

    def __len__(self) -> int:
        return sum(1 for _ in self.children())

    def __iter__(self) -> Iterator[Module]:
        return self.children()

    def __getitem__(self, i: int | slice) -> Module:
        layers = list(self.children())
        if isinstance(i, slice):
            return Sequential(*layers[i])
        if isinstance(i, (bool, np.bool_)) or not isinstance(i, (int, np.integer)):
            raise TypeError(f"Sequential: index must be an int or a slice, got {type(i).__name__} "
                            f"{_check.show(i)}")
        if not -len(layers) <= i < len(layers):
            raise IndexError(f"Sequential: index {i} is out of range for {len(layers)} modules")
        return layers[i]

    def forward(self, x: Any) -> Any:
        for m in self.children():
            x = m(x)
        return x


_ACTIVATIONS: dict[str, type[Module]] = {"relu": ReLU, "sigmoid": Sigmoid, "tanh": Tanh}


class MLP(Sequential):
    """A multilayer perceptron ``sizes[0] -> ... -> sizes[-1]``: each hidden layer is
    Linear [-> BatchNorm1d] -> activation [-> Dropout]; the last layer is Linear alone (logits).
    BatchNorm sits between the weighted sum and the activation, as in the lecture (REFERENCE 10.1).
    ``seed`` makes all initial weights and dropout masks reproducible.

    >>> MLP([2, 16, 3], batchnorm=True, dropout=0.1, seed=0)
    MLP(
      (0): Linear(in_features=2, out_features=16, bias=True)
      (1): BatchNorm1d(16, eps=1e-05, momentum=0.1, affine=True, bias=True, track_running_stats=True)
      (2): ReLU()
      (3): Dropout(p=0.1, inplace=False)
      (4): Linear(in_features=16, out_features=3, bias=True)
    )
    """

    def __init__(self, sizes: list[int], activation: str = "relu", batchnorm: bool = False,
                 dropout: float = 0.0, seed: Any = None, dtype: Any = np.float64) -> None:
        try:
            if isinstance(sizes, (str, bytes, dict, set)):
                raise TypeError
            sizes = list(sizes)
        except TypeError:  # not iterable (a number, a 0-d array...)
            raise TypeError(f"MLP: sizes must be a sequence of ints, got {type(sizes).__name__} "
                            f"{_check.show(sizes)}") from None
        if len(sizes) < 2:
            raise ValueError(f"MLP: sizes needs an input and an output size, got {sizes}")
        for n in sizes:
            _check_positive_int("MLP", "each of sizes", n)
        if not (isinstance(activation, str) and activation in _ACTIVATIONS):
            raise ValueError(f"MLP: activation must be one of {sorted(_ACTIVATIONS)}, got {activation!r}")
        batchnorm = _check.flag("MLP", "batchnorm", batchnorm)
        dropout = _check.number("MLP", "dropout", dropout, low=0, high=1)
        _check.rng("MLP", seed)
        dtype = _check.float_dtype("MLP", dtype)
        if isinstance(seed, np.random.Generator):
            seed = seed.integers(2**63)
        # separate seed streams: the same seed gives the same weights with or without dropout
        weight_seeds, mask_seeds = (iter(s.spawn(len(sizes))) for s in np.random.SeedSequence(seed).spawn(2))
        layers: list[Module] = []
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            layers.append(Linear(n_in, n_out, seed=next(weight_seeds), dtype=dtype))
            if i == len(sizes) - 2:
                break
            if batchnorm:
                layers.append(BatchNorm1d(n_out, dtype=dtype))
            layers.append(_ACTIVATIONS[activation]())
            if dropout > 0:
                layers.append(Dropout(dropout, seed=next(mask_seeds)))
        super().__init__(*layers)


# -- losses as modules (torch's names) -------------------------------------------------------------


class _Loss(Module):
    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        F._check_reduction(type(self).__name__, reduction)
        self.reduction = reduction

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"


class MSELoss(_Loss):
    """``F.mse_loss`` as a module."""

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return F.mse_loss(input, target, self.reduction)


class CrossEntropyLoss(_Loss):
    """``F.cross_entropy`` as a module (logits and class indices)."""

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return F.cross_entropy(input, target, self.reduction)


class BCELoss(_Loss):
    """``F.binary_cross_entropy`` as a module (probabilities in [0, 1])."""

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return F.binary_cross_entropy(input, target, self.reduction)


class KLDivLoss(Module):
    """``F.kl_div`` as a module; the default reduction here is 'batchmean' (the true KL per instance)."""

    def __init__(self, reduction: str = "batchmean", log_target: bool = False) -> None:
        super().__init__()
        F._check_reduction("KLDivLoss", reduction, batchmean=True)
        self.reduction = reduction
        self.log_target = _check.flag("KLDivLoss", "log_target", log_target)

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return F.kl_div(input, target, self.reduction, self.log_target)


# -- files ------------------------------------------------------------------------------------------------


def save(module: Module, path: str | os.PathLike) -> None:
    """Write ``module.state_dict()`` to ``path`` (an ``.npz`` archive, exactly that name).

    Atomic: the archive is written to a temporary file beside ``path``, flushed to disk and then
    renamed over ``path``; if anything fails on the way, ``path`` keeps its old content and the
    temporary file is removed.
    """
    _check_module("save", module)
    path = _check.path("save", path)
    state = module.state_dict()
    atomic_write(path, lambda f: np.savez(f, **state), op="save")


def load_into(module: Module, path: str | os.PathLike) -> Module:
    """Load a file written by :func:`save` into ``module`` (strict ``load_state_dict``); returns the
    module. A file that cannot be read, or does not fit the module, raises ValueError and leaves the
    module unchanged."""
    _check_module("load_into", module)
    path = _check.path("load_into", path)
    try:
        with open(path, "rb") as f:  # closed whatever happens (np.load would leak it on errors)
            if f.read(4) not in (b"PK\x03\x04", b"PK\x05\x06"):  # a zip archive, as .npz files are
                raise ValueError("it is not an .npz archive (no zip signature)")
            f.seek(0)
            with np.load(f, allow_pickle=False) as archive:
                state = {key: archive[key] for key in archive.files}
    except FileNotFoundError:
        raise _os_error(FileNotFoundError, errno.ENOENT, f"load_into: no such file: {path!r}") from None
    except (OSError, ValueError, EOFError, KeyError, NotImplementedError, RuntimeError, zipfile.BadZipFile,
            zlib.error) as e:
        raise ValueError(f"load_into: {path!r} is not a readable tinygrad_lec model file: {e}") from None
    module.load_state_dict(state)
    return module


def _check_module(op: str, module: Any) -> None:
    if not isinstance(module, Module):
        raise TypeError(f"{op}: module must be an nn.Module, got {type(module).__name__} "
                        f"{_check.show(module)}")


# The layers whose own forward either succeeds or changes nothing (a BatchNorm1d updates its
# running statistics only once it succeeded): Module.__call__ need not watch them. Containers,
# subclasses and user modules are watched, so that a later layer's failure undoes an earlier one's
# updates. (Exact types: a subclass may override forward.)
_ATOMIC = frozenset({Linear, BatchNorm1d, Dropout, ReLU, Sigmoid, Tanh, Identity, MSELoss, CrossEntropyLoss,
                     BCELoss, KLDivLoss})
