"""Networks made of :class:`Value` scalars, as in micrograd (Neuron, Layer, MLP), and the
lecture's per-element BatchNorm (batch_norm).

Every weight is its own Value, so the whole network is one scalar graph that ``viz`` can draw
node by node. Initialisation is seeded (``seed=None`` draws from fresh entropy).

>>> from tinygrad_lec import scalar
>>> net = scalar.MLP(2, [4, 1], seed=0)
>>> out = net([0.5, -1.0])
>>> out.backward()
>>> len(net.parameters())
17
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from .graph import name_scope
from .value import Number, Value


class Module:
    """Base: ``parameters()`` lists the Values to train; ``zero_grad()`` sets their grads to 0."""

    def parameters(self) -> list[Value]:
        return []

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.grad = 0.0


class Neuron(Module):
    """``act(sum_i w_i x_i + b)``: weights uniform in [-1, 1], bias 0 (micrograd's init).

    ``nonlin=True`` applies ReLU; ``activation`` may name another Value method ("tanh", ...).
    """

    def __init__(self, nin: int, nonlin: bool = True, activation: str = "relu",
                 seed: int | random.Random | None = None) -> None:
        if not isinstance(nin, int) or nin < 1:
            raise ValueError(f"Neuron: nin must be a positive int, got {nin!r}")
        if not callable(getattr(Value, activation, None)):
            raise ValueError(f"Neuron: unknown activation {activation!r}")
        rng = seed if isinstance(seed, random.Random) else random.Random(seed)
        self.w = [Value(rng.uniform(-1.0, 1.0)) for _ in range(nin)]
        self.b = Value(0.0)
        self.nonlin = nonlin
        self.activation = activation

    def __call__(self, x: Sequence[Value | Number]) -> Value:
        if len(x) != len(self.w):
            raise ValueError(f"Neuron: expected {len(self.w)} inputs, got {len(x)}")
        act = self.b
        for wi, xi in zip(self.w, x):
            act = act + wi * xi
        return getattr(act, self.activation)() if self.nonlin else act

    def parameters(self) -> list[Value]:
        return self.w + [self.b]

    def __repr__(self) -> str:
        kind = self.activation.capitalize() if self.nonlin else "Linear"
        return f"{kind}Neuron({len(self.w)})"


class Layer(Module):
    """``nout`` neurons on the same inputs; returns a list, or the Value itself when nout == 1."""

    def __init__(self, nin: int, nout: int, seed: int | random.Random | None = None, **kwargs) -> None:
        if not isinstance(nout, int) or nout < 1:
            raise ValueError(f"Layer: nout must be a positive int, got {nout!r}")
        rng = seed if isinstance(seed, random.Random) else random.Random(seed)
        self.neurons = [Neuron(nin, seed=rng, **kwargs) for _ in range(nout)]

    def __call__(self, x: Sequence[Value | Number]) -> Value | list[Value]:
        out = [n(x) for n in self.neurons]
        return out[0] if len(out) == 1 else out

    def parameters(self) -> list[Value]:
        return [p for n in self.neurons for p in n.parameters()]

    def __repr__(self) -> str:
        return f"Layer of [{', '.join(str(n) for n in self.neurons)}]"


class MLP(Module):
    """Layers of sizes ``[nin] + nouts``; ReLU (or ``activation``) on all but the last layer.

    >>> MLP(3, [2, 1], seed=1)
    MLP of [Layer of [ReluNeuron(3), ReluNeuron(3)], Layer of [LinearNeuron(2)]]
    """

    def __init__(self, nin: int, nouts: Sequence[int], activation: str = "relu",
                 seed: int | random.Random | None = None) -> None:
        if not nouts:
            raise ValueError("MLP: nouts must name at least one layer size")
        rng = seed if isinstance(seed, random.Random) else random.Random(seed)
        sizes = [nin] + list(nouts)
        self.layers = [Layer(sizes[i], sizes[i + 1], seed=rng, nonlin=i != len(nouts) - 1,
                             activation=activation) for i in range(len(nouts))]

    def __call__(self, x: Sequence[Value | Number]) -> Value | list[Value]:
        for layer in self.layers:
            x = layer(x)
        return x

    def parameters(self) -> list[Value]:
        return [p for layer in self.layers for p in layer.parameters()]

    def __repr__(self) -> str:
        return f"MLP of [{', '.join(str(layer) for layer in self.layers)}]"


def batch_norm(zs: Sequence[Value], gamma: Value | Number = 1.0, beta: Value | Number = 0.0,
               eps: float = 1e-5) -> list[Value]:
    """The lecture's Batch Normalization of one neuron over a minibatch, element by element.

    REFERENCE.md 10.1: for the pre-activations ``z_1..z_B`` of one neuron,

        mu = (1/B) sum_i z_i,   var = (1/B) sum_i (z_i - mu)^2   (biased),
        u_i = (z_i - mu) / sqrt(var + eps),   out_i = gamma u_i + beta.

    Built from Value ops only, inside name scopes ``batchnorm/mean``, ``batchnorm/variance``,
    ``batchnorm/normalize`` and ``batchnorm/scale_shift``, so ``backward`` derives the gradients
    of REFERENCE 10.2 by itself, and a drawing shows every ``out_i`` depending on every ``z_j``
    through ``mu`` and ``var``. Training on a batch of one is a ValueError, as in torch (10.3.5).

    >>> zs = [Value(1.0), Value(2.0), Value(4.0)]
    >>> ys = batch_norm(zs, gamma=Value(1.0), beta=Value(0.0), eps=0.0)
    >>> [round(y.data, 4) for y in ys]
    [-1.069, -0.2673, 1.3363]
    """
    zs = list(zs)
    if len(zs) < 2:
        raise ValueError(f"batch_norm: expected more than 1 value per neuron in training, got a batch of "
                         f"{len(zs)}")
    for i, z in enumerate(zs):
        if not isinstance(z, Value):
            raise TypeError(f"batch_norm: zs[{i}] must be a Value, got {type(z).__name__}")
    if not (isinstance(eps, (int, float)) and eps >= 0):
        raise ValueError(f"batch_norm: eps must be a number >= 0, got {eps!r}")
    n = len(zs)
    with name_scope("batchnorm"):
        with name_scope("mean"):
            total = zs[0]
            for z in zs[1:]:
                total = total + z
            mu = total / n
            mu.label = "μ"
        with name_scope("variance"):
            centered = [z - mu for z in zs]
            squares = centered[0] ** 2
            for c in centered[1:]:
                squares = squares + c**2
            var = squares / n
            var.label = "σ²"
        with name_scope("normalize"):
            std = (var + eps).sqrt()
            std.label = "s"
            us = [c / std for c in centered]
            for i, u in enumerate(us):
                u.label = f"u{i + 1}"
        with name_scope("scale_shift"):
            out = [gamma * u + beta for u in us]
            for i, o in enumerate(out):
                o.label = f"ẑ{i + 1}"
            return out
