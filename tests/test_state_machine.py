"""Stateful tests of the graph API (issue "Hardening"): hypothesis RuleBasedStateMachines, one
over Value and one over Tensor with the same rules, that create leaves, combine any existing nodes
with random ops (so the graph is a DAG with shared subexpressions), run backward from random
roots, zero gradients, build inside no_grad / enable_grad / name_scope blocks, detach, and step
SGD and Adam optimizers that change leaf data.

Every step is mirrored in a record the test keeps of its own (:class:`Rec`): each node's op, its
operands, the values of its operands when it was made, and the gradient the API promises. That
record has its own numpy forward (:data:`OPS`, ``ref``) and its own naive reverse mode
(:meth:`GraphMachine._reference_pass`: a walk over the records in reverse creation order, which
is a reverse topological order), written from the derivative table and not from the library.
After every step:

    grads      every node's grad equals the record: leaves accumulate across backward calls
               until zeroed, interior nodes hold the last pass that reached them, and backward
               twice from zeroed leaves gives exactly (bit for bit) twice the gradient
    data       every node's data equals the recorded value and a fresh numpy re-evaluation of
               its expression from the current leaf values (while no leaf of it has changed)
    structure  leaves (made by the user, under no_grad, by detach, or from inputs that need no
               gradient) have no parents and op ""; every other node has exactly its operands
               as parents; every node carries the name_scope it was made in

The reverse-mode reference is itself checked against central finite differences of the numpy
re-evaluation whenever a backward pass runs on a small graph whose leaves have not changed.

Leaf data changed by an optimizer: a Value graph keeps the local derivatives of the point where it
was built, so old Value graphs stay usable and the record keeps their snapshot. A Tensor graph
built before the change is retired from the machine (no longer used as an operand or root, its data
no longer compared: views such as ``reshape`` share the leaf's memory, as in torch); backward
through such a graph is pinned down by its own test at the end of this file.

Size of a run: TINYGRAD_LEC_SM_EXAMPLES (default 40) state-machine runs of up to
TINYGRAD_LEC_SM_STEPS (default 50) steps (rules) per machine, about 1,500-1,900 steps each and
~10 s in all; ``pytest -s`` prints the steps run and what they did. The long run reported in
RELIABILITY.md (~80,000 steps, ~7 min):

    TINYGRAD_LEC_SM_EXAMPLES=1000 TINYGRAD_LEC_SM_STEPS=50 python -m pytest -q -s tests/test_state_machine.py
"""

from __future__ import annotations

import contextlib
import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

import tinygrad_lec as tl
from tinygrad_lec import Tensor, Value, optim

EXAMPLES = int(os.environ.get("TINYGRAD_LEC_SM_EXAMPLES", "40"))
STEPS = int(os.environ.get("TINYGRAD_LEC_SM_STEPS", "50"))
SM_SETTINGS = settings(max_examples=EXAMPLES, stateful_step_count=STEPS, deadline=None,
                       suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# Tolerances. data/grad: library against the record (rounding of different but equivalent float64
# evaluation orders over graphs of up to ~50 ops, values kept within +-BOUND). FD: the reference
# reverse mode against central differences, h = 1e-6 (a wrong derivative is off by O(1)).
RTOL, ATOL = 1e-9, 1e-10
FD_H, FD_RTOL, FD_ATOL = 1e-6, 1e-5, 1e-5
BOUND = 100.0  # an op whose result leaves [-BOUND, BOUND] is replaced by tanh of its first operand
MAX_NODES = 45
MAX_FD_ELEMENTS = 24

# What the runs did, summed over every run of every test in this module (printed by the tests).
COUNTS: dict[str, Counter] = {"Value": Counter(), "Tensor": Counter()}

# Tensor shapes: any two broadcast together, and every broadcast result is again one of them.
SHAPES = [(), (1,), (3,), (1, 1), (1, 3), (2, 1), (2, 3)]
CONSTS = [-1.5, 0.5, 2.0, 3.0]
SCOPE_NAMES = ["blk", "bn", "head"]
MODES = ["plain", "no_grad", "scope", "no_grad_scope", "enable_grad_in_no_grad"]


# -- the reference: a derivative table in numpy ------------------------------------------------------


def _sum_to(g: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Reduce a gradient of the broadcast result to an operand's shape (naively, axis by axis)."""
    g = np.asarray(g, dtype=np.float64)
    while g.ndim > len(shape):
        g = g.sum(axis=0)
    for axis, n in enumerate(shape):
        if n == 1 and g.shape[axis] != 1:
            g = g.sum(axis=axis, keepdims=True)
    return g


def _expand_back(g: np.ndarray, shape: tuple[int, ...], axis: int | None, keepdims: bool) -> np.ndarray:
    """A reduction's output gradient copied back along the reduced axis (numpy broadcast)."""
    if axis is not None and not keepdims:
        g = np.expand_dims(g, axis)
    return np.broadcast_to(g, shape).astype(np.float64)


def _max_vjp(g, out, a, axis, keepdims):
    """amax: the gradient split evenly between tied maxima (torch.amax)."""
    m = a.max(axis=axis, keepdims=True)
    mask = (a == m).astype(np.float64)
    return (_expand_back(g, a.shape, axis, keepdims) * mask / mask.sum(axis=axis, keepdims=True),)


def _no_near_ties(a, axis, keepdims) -> bool:
    """max is differentiable: the largest values per slice are exactly tied or clearly apart."""
    s = np.sort(np.moveaxis(a, axis, -1).reshape(-1, a.shape[axis]) if axis is not None else a.reshape(1, -1))
    if s.shape[1] < 2:
        return True
    gap = s[:, -1] - s[:, -2]
    return bool(np.all((gap == 0) | (gap > 1e-6)))


def _slice_vjp(g, out, a, start):
    grad = np.zeros(a.shape)
    grad[start:start + 1] = g
    return (grad,)


@dataclass(frozen=True)
class Op:
    """One op of the machine: how to apply it to library nodes, its numpy forward and its
    vector-Jacobian products (one per node operand, in the result's shape; broadcasting is
    undone by the caller), and where it is defined (kept away from poles and kinks)."""

    arity: int
    lib: Callable[..., Any]
    ref: Callable[..., np.ndarray]
    vjp: Callable[..., tuple[np.ndarray, ...]]
    domain: Callable[..., bool] = lambda *a, **kw: True
    tensor_only: bool = False


OPS: dict[str, Op] = {
    "add": Op(2, lambda a, b: a + b, np.add, lambda g, o, a, b: (g, g)),
    "sub": Op(2, lambda a, b: a - b, np.subtract, lambda g, o, a, b: (g, -g)),
    "mul": Op(2, lambda a, b: a * b, np.multiply, lambda g, o, a, b: (g * b, g * a)),
    "div": Op(2, lambda a, b: a / b, np.divide, lambda g, o, a, b: (g / b, -g * a / (b * b)),
              domain=lambda a, b: np.min(np.abs(b)) >= 0.5),
    "pow": Op(2, lambda a, b: a ** b, np.power, lambda g, o, a, b: (g * b * a ** (b - 1), g * o * np.log(a)),
              domain=lambda a, b: np.min(a) >= 0.25 and np.max(np.abs(b)) <= 3),
    "add_c": Op(1, lambda a, c: a + c, lambda a, c: a + c, lambda g, o, a, c: (g,)),
    "radd_c": Op(1, lambda a, c: c + a, lambda a, c: c + a, lambda g, o, a, c: (g,)),
    "rsub_c": Op(1, lambda a, c: c - a, lambda a, c: c - a, lambda g, o, a, c: (-g,)),
    "mul_c": Op(1, lambda a, c: a * c, lambda a, c: a * c, lambda g, o, a, c: (g * c,)),
    "rmul_c": Op(1, lambda a, c: c * a, lambda a, c: c * a, lambda g, o, a, c: (g * c,)),
    "div_c": Op(1, lambda a, c: a / c, lambda a, c: a / c, lambda g, o, a, c: (g / c,)),
    "rdiv_c": Op(1, lambda a, c: c / a, lambda a, c: c / a, lambda g, o, a, c: (-g * c / (a * a),),
                 domain=lambda a, c: np.min(np.abs(a)) >= 0.5),
    "pow_k": Op(1, lambda a, k: a ** k, lambda a, k: a ** k, lambda g, o, a, k: (g * k * a ** (k - 1),)),
    "neg": Op(1, lambda a: -a, np.negative, lambda g, o, a: (-g,)),
    "exp": Op(1, lambda a: a.exp(), np.exp, lambda g, o, a: (g * o,), domain=lambda a: np.max(a) <= 3),
    "tanh": Op(1, lambda a: a.tanh(), np.tanh, lambda g, o, a: (g * (1 - o * o),)),
    "sigmoid": Op(1, lambda a: a.sigmoid(), lambda a: 1 / (1 + np.exp(-a)),
                  lambda g, o, a: (g * o * (1 - o),)),
    "relu": Op(1, lambda a: a.relu(), lambda a: np.where(a > 0, a, 0.0), lambda g, o, a: (g * (a > 0),),
               domain=lambda a: np.min(np.abs(a)) >= 1e-2),
    # Tensor only: reductions and views
    "sum": Op(1, lambda a, axis, keepdims: a.sum(axis=axis, keepdims=keepdims),
              lambda a, axis, keepdims: a.sum(axis=axis, keepdims=keepdims),
              lambda g, o, a, axis, keepdims: (_expand_back(g, a.shape, axis, keepdims),), tensor_only=True),
    "mean": Op(1, lambda a, axis, keepdims: a.mean(axis=axis, keepdims=keepdims),
               lambda a, axis, keepdims: a.mean(axis=axis, keepdims=keepdims),
               lambda g, o, a, axis, keepdims: (_expand_back(g, a.shape, axis, keepdims)
                                                / (a.size if axis is None else a.shape[axis]),),
               tensor_only=True),
    "max": Op(1, lambda a, axis, keepdims: a.max(axis=axis, keepdims=keepdims),
              lambda a, axis, keepdims: a.max(axis=axis, keepdims=keepdims), _max_vjp,
              domain=_no_near_ties, tensor_only=True),
    "reshape": Op(1, lambda a, shape: a.reshape(shape), lambda a, shape: a.reshape(shape),
                  lambda g, o, a, shape: (g.reshape(a.shape),), tensor_only=True),
    "slice": Op(1, lambda a, start: a[start:start + 1], lambda a, start: a[start:start + 1], _slice_vjp,
                tensor_only=True),
}
BINARY = {name for name, op in OPS.items() if op.arity == 2}


def _draw_params(data: st.DataObject, name: str, shape: tuple[int, ...]) -> dict[str, Any] | None:
    """Keyword arguments of op ``name`` for an operand of ``shape`` (None: not applicable)."""
    if name.endswith("_c"):
        c = data.draw(st.sampled_from(CONSTS), label="const")
        return {"c": c}
    if name == "pow_k":
        return {"k": data.draw(st.sampled_from([2, 3]), label="exponent")}
    if name in ("sum", "mean", "max"):
        axis = data.draw(st.sampled_from([None, *range(len(shape))]), label="axis")
        keepdims = data.draw(st.booleans(), label="keepdims")
        out = np.empty(shape).sum(axis=axis, keepdims=keepdims).shape
        return {"axis": axis, "keepdims": keepdims if out in SHAPES else True}
    if name == "reshape":
        targets = [s for s in SHAPES if int(np.prod(s)) == int(np.prod(shape)) and s != shape]
        return {"shape": data.draw(st.sampled_from(targets), label="target")} if targets else None
    if name == "slice":
        if len(shape) == 0:
            return None
        return {"start": data.draw(st.integers(0, shape[0] - 1), label="start")}
    return {}


@dataclass
class Rec:
    """What the test knows about one node, independently of the library."""

    node: Any
    value: np.ndarray  # data when made (a leaf: its current data)
    op: str = ""  # "" for a leaf
    parents: tuple[int, ...] = ()  # record indices of the node operands, in operand order
    args: tuple[np.ndarray, ...] = ()  # the operands' values when the node was made
    params: dict[str, Any] = field(default_factory=dict)
    requires_grad: bool = True
    grad: np.ndarray | None = None  # the gradient the API promises
    scale: float = 1.0  # largest gradient magnitude seen (tolerances)
    scope: str = ""
    deps: frozenset[int] = frozenset()  # leaves whose data this node's data was computed from or views
    stale: bool = False  # a leaf in deps changed since the node was made

    @property
    def is_leaf(self) -> bool:
        return self.op == ""


@contextlib.contextmanager
def _mode(mode: str, names: list[str]):
    with contextlib.ExitStack() as stack:
        if "no_grad" in mode:
            stack.enter_context(tl.no_grad())
        if mode == "enable_grad_in_no_grad":
            stack.enter_context(tl.enable_grad())
        if "scope" in mode:
            for name in names:
                stack.enter_context(tl.name_scope(name))
        yield


def _grad_enabled(mode: str) -> bool:
    return mode in ("plain", "scope", "enable_grad_in_no_grad")


def _assert_close(actual, expected, scale: float, what: str, rtol: float = RTOL, atol: float = ATOL) -> None:
    np.testing.assert_allclose(np.asarray(actual, dtype=np.float64), expected, rtol=rtol, atol=atol * scale,
                               err_msg=what)


class _RefOptimizer:
    """A library optimizer and the test's own naive version of its update (torch's formulas)."""

    def __init__(self, kind: str, params: list[int], lr: float, lib: Any) -> None:
        self.kind, self.params, self.lr, self.lib = kind, params, lr, lib
        self.state: dict[int, dict[str, Any]] = {}

    def update(self, i: int, w: np.ndarray, g: np.ndarray) -> np.ndarray:
        state = self.state.setdefault(i, {"t": 0})
        if self.kind == "sgd":
            return w - self.lr * g
        if self.kind == "sgd_momentum":  # torch: b = g first, then b = 0.9 b + g; w -= lr b
            state["buf"] = g.copy() if "buf" not in state else 0.9 * state["buf"] + g
            return w - self.lr * state["buf"]
        b1, b2, eps = 0.9, 0.999, 1e-8  # adam (torch: eps outside the square root)
        state["t"] += 1
        t = state["t"]
        state["m"] = b1 * state.get("m", 0.0) + (1 - b1) * g
        state["v"] = b2 * state.get("v", 0.0) + (1 - b2) * g * g
        m_hat, v_hat = state["m"] / (1 - b1**t), state["v"] / (1 - b2**t)
        return w - self.lr * m_hat / (np.sqrt(v_hat) + eps)


# -- the machine ------------------------------------------------------------------------------------


class GraphMachine(RuleBasedStateMachine):
    """The rules and the reference, for any node kind; subclasses say how to make and read nodes."""

    KIND = ""
    ALLOW_STALE = False  # may nodes built before a leaf changed still be used?

    def __init__(self) -> None:
        super().__init__()
        self.recs: list[Rec] = []
        self.optimizers: list[_RefOptimizer] = []
        self.counts = COUNTS[self.KIND]

    # hooks -------------------------------------------------------------------------------------

    def make_leaf(self, value: np.ndarray, requires_grad: bool) -> Any:
        raise NotImplementedError

    def lib_data(self, node: Any) -> np.ndarray:
        raise NotImplementedError

    def lib_grad(self, node: Any) -> np.ndarray | None:
        raise NotImplementedError

    def zero(self, rec: Rec) -> np.ndarray | None:
        """The gradient of a node nobody has reached, or that was zeroed."""
        raise NotImplementedError

    def draw_leaf(self, data: st.DataObject) -> tuple[np.ndarray, bool]:
        raise NotImplementedError

    def run_backward(self, data: st.DataObject, root: int, mode: str) -> tuple[int, np.ndarray]:
        """Call backward from record ``root`` in ``mode``; return the record the pass started from
        and its seed gradient."""
        raise NotImplementedError

    def detaches_share_data(self) -> bool:
        raise NotImplementedError

    def is_parameter(self, rec: Rec) -> bool:
        raise NotImplementedError

    # helpers -----------------------------------------------------------------------------------

    def tick(self, what: str) -> None:
        self.counts["steps"] += 1
        self.counts[what] += 1

    def usable(self) -> list[int]:
        return [i for i, r in enumerate(self.recs) if self.ALLOW_STALE or not r.stale]

    def pick(self, data: st.DataObject, candidates: list[int], label: str) -> int:
        """An index from ``candidates``; half the time the newest, so graphs grow deep as well as wide."""
        if data.draw(st.booleans(), label=f"{label} is newest"):
            return candidates[-1]
        return data.draw(st.sampled_from(candidates), label=label)

    def pick_root(self, data: st.DataObject) -> int | None:
        """A node that needs a gradient; half the time the newest interior one (deep graphs)."""
        candidates = [i for i in self.usable() if self.recs[i].requires_grad]
        interior = [i for i in candidates if not self.recs[i].is_leaf]
        if interior and data.draw(st.booleans(), label="root is the newest interior node"):
            return interior[-1]
        return data.draw(st.sampled_from(candidates), label="root") if candidates else None

    def draw_mode(self, data: st.DataObject) -> tuple[str, list[str]]:
        mode = data.draw(st.one_of(st.just("plain"), st.sampled_from(MODES)), label="mode")
        names = data.draw(st.lists(st.sampled_from(SCOPE_NAMES), min_size=1, max_size=2), label="scopes")
        return mode, names

    def add_leaf(self, node: Any, value: np.ndarray, requires_grad: bool, scope: str, deps: frozenset[int]
                 ) -> int:
        i = len(self.recs)
        rec = Rec(node, np.array(value, dtype=np.float64), requires_grad=requires_grad, scope=scope,
                  deps=deps | {i})
        rec.grad = self.zero(rec)
        self.recs.append(rec)
        self.check_structure(i)
        return i

    def reevaluate(self, i: int, override: dict[int, np.ndarray] | None = None,
                   memo: dict[int, np.ndarray] | None = None) -> np.ndarray:
        """Record ``i``'s value from the current leaf values (``override`` replaces some)."""
        memo = {} if memo is None else memo
        override = override or {}
        stack = [i]
        while stack:
            j = stack[-1]
            if j in memo:
                stack.pop()
                continue
            rec = self.recs[j]
            if rec.is_leaf:
                memo[j] = override.get(j, rec.value)
                stack.pop()
                continue
            todo = [p for p in rec.parents if p not in memo]
            if todo:
                stack.extend(todo)
                continue
            memo[j] = np.asarray(OPS[rec.op].ref(*(memo[p] for p in rec.parents), **rec.params), np.float64)
            stack.pop()
        return memo[i]

    # the reference reverse mode ------------------------------------------------------------------

    def _reference_pass(self, root: int, seed: np.ndarray) -> tuple[dict[int, np.ndarray], dict[int, float]]:
        """This pass's gradient of every node it reaches (interior: the whole gradient; leaf: what
        this pass adds), from the recorded operand values, and the largest contribution per node.
        Records are made after their operands, so descending index order visits every node
        after all its users."""
        grads: dict[int, np.ndarray] = {root: np.array(seed, dtype=np.float64)}
        scales: dict[int, float] = {root: float(np.max(np.abs(seed), initial=0.0))}
        for j in range(root, -1, -1):
            rec = self.recs[j]
            if j not in grads or rec.is_leaf:
                continue
            g = grads[j]
            parts = OPS[rec.op].vjp(g, rec.value, *rec.args, **rec.params)
            for p, arg, part in zip(rec.parents, rec.args, parts):
                if not self.recs[p].requires_grad:
                    continue
                part = _sum_to(part, arg.shape)
                grads[p] = grads[p] + part if p in grads else part
                scales[p] = max(scales.get(p, 0.0), float(np.max(np.abs(part), initial=0.0)))
        return grads, scales

    def apply_pass(self, root: int, seed: np.ndarray) -> dict[int, np.ndarray]:
        grads, scales = self._reference_pass(root, seed)
        for j, g in grads.items():
            rec = self.recs[j]
            self.counts[f"backprop through {rec.op or 'leaf'}"] += 1
            if rec.is_leaf:
                rec.grad = g.copy() if rec.grad is None else rec.grad + g
            else:
                rec.grad = g
            rec.scale = max(rec.scale, scales[j], float(np.max(np.abs(rec.grad), initial=0.0)))
        return grads

    def check_with_finite_differences(self, root: int, seed: np.ndarray, grads: dict[int, np.ndarray]
                                      ) -> None:
        """The reference pass against central differences of d sum(seed * root)/d leaf, when the
        root's graph is small, smooth (no tied maxima) and built from the current leaf values."""
        reached = [j for j in grads if self.recs[j].is_leaf]
        if (any(self.recs[j].stale for j in grads)
                or sum(self.recs[j].value.size for j in reached) > MAX_FD_ELEMENTS
                or any(self.recs[j].op == "max" and not _no_ties(self.recs[j]) for j in grads)):
            return
        for j in reached:
            leaf = self.recs[j]
            fd = np.zeros(leaf.value.shape)
            for k in np.ndindex(leaf.value.shape):
                h = FD_H * max(1.0, abs(float(leaf.value[k])))
                plus, minus = leaf.value.copy(), leaf.value.copy()
                plus[k] += h
                minus[k] -= h
                f_plus = np.sum(seed * self.reevaluate(root, {j: plus}))
                f_minus = np.sum(seed * self.reevaluate(root, {j: minus}))
                fd[k] = (f_plus - f_minus) / (2 * h)
            scale = 1.0 + float(np.max(np.abs(grads[j]), initial=0.0))
            _assert_close(grads[j], fd, scale, f"reference pass vs finite differences, leaf {j}",
                          rtol=FD_RTOL, atol=FD_ATOL)
            self.counts["leaves checked by finite differences"] += 1

    # checks --------------------------------------------------------------------------------------

    def check_structure(self, i: int) -> None:
        rec = self.recs[i]
        node = rec.node
        assert node.scope == rec.scope, f"node {i}: scope {node.scope!r}, expected {rec.scope!r}"
        if rec.is_leaf:
            assert node.parents == () and node.op == "" and node.is_leaf, f"node {i} should be a leaf"
        else:
            parents = node.parents
            assert len(parents) == len(rec.parents) and all(
                p is self.recs[j].node for p, j in zip(parents, rec.parents)), f"node {i}: parents"
            assert node.op != "" and not node.is_leaf, f"node {i} should be interior"
        if hasattr(node, "requires_grad"):
            assert node.requires_grad == rec.requires_grad, f"node {i}: requires_grad"

    @invariant()
    def grads_match_reference(self) -> None:
        for i, rec in enumerate(self.recs):
            got = self.lib_grad(rec.node)
            if rec.grad is None:
                assert got is None, f"node {i}: grad should be None, is {got!r}"
                continue
            assert got is not None, f"node {i}: grad is None, expected {rec.grad!r}"
            assert np.shape(got) == rec.value.shape, f"node {i}: grad shape {np.shape(got)}"
            _assert_close(got, rec.grad, rec.scale, f"grad of node {i} ({rec.op or 'leaf'})")
        self.counts["grad comparisons"] += len(self.recs)

    @invariant()
    def data_match_reference(self) -> None:
        memo: dict[int, np.ndarray] = {}
        for i, rec in enumerate(self.recs):
            if rec.stale and not self.ALLOW_STALE:
                continue  # retired: may view a leaf's changed memory
            got = self.lib_data(rec.node)
            assert got.shape == rec.value.shape, f"node {i}: shape {got.shape}, expected {rec.value.shape}"
            scale = 1.0 + float(np.max(np.abs(rec.value), initial=0.0))
            _assert_close(got, rec.value, scale, f"data of node {i} ({rec.op or 'leaf'})")
            if not rec.stale:
                _assert_close(got, self.reevaluate(i, memo=memo), scale, f"node {i} vs re-evaluation")
        self.counts["data comparisons"] += len(self.recs)

    # rules -------------------------------------------------------------------------------------

    @initialize(data=st.data())
    def start_with_two_leaves(self, data: st.DataObject) -> None:
        for _ in range(2):
            value, requires_grad = self.draw_leaf(data)
            self.add_leaf(self.make_leaf(value, requires_grad), value, requires_grad, "", frozenset())

    @precondition(lambda self: len(self.recs) < MAX_NODES)
    @rule(data=st.data())
    def create_leaf(self, data: st.DataObject) -> None:
        self.tick("create leaf")
        value, requires_grad = self.draw_leaf(data)
        mode, names = self.draw_mode(data)
        with _mode(mode, names):
            node = self.make_leaf(value, requires_grad)
        self.add_leaf(node, value, requires_grad, "/".join(names) if "scope" in mode else "", frozenset())

    @precondition(lambda self: len(self.recs) < MAX_NODES)
    @rule(data=st.data())
    def combine(self, data: st.DataObject) -> None:
        """One to four ops, each on any existing nodes (reused: shared subexpressions)."""
        self.tick("combine")
        for _ in range(data.draw(st.integers(1, 4), label="ops")):
            self.apply_op(data, data.draw(st.sampled_from(self.op_names()), label="op"))

    @precondition(lambda self: len(self.recs) < MAX_NODES)
    @rule(data=st.data())
    def combine_two_nodes(self, data: st.DataObject) -> None:
        self.tick("combine")
        self.apply_op(data, data.draw(st.sampled_from(sorted(BINARY)), label="binary op"))

    def op_names(self) -> list[str]:
        return [n for n, op in OPS.items() if self.KIND == "Tensor" or not op.tensor_only]

    @precondition(lambda self: len(self.recs) < MAX_NODES)
    @rule(data=st.data())
    def op_then_backward(self, data: st.DataObject) -> None:
        """Every op is backpropagated through right after it is made, not only when chosen later."""
        self.tick("op then backward")
        self.apply_op(data, data.draw(st.sampled_from(self.op_names()), label="op"), mode="plain")
        root = len(self.recs) - 1
        if self.recs[root].requires_grad:
            start, seed = self.run_backward(data, root, "plain")
            self.apply_pass(start, seed)

    def apply_op(self, data: st.DataObject, name: str, mode: str | None = None) -> None:
        """Apply op ``name`` (tanh instead, outside its safe domain) in ``mode`` (None: a random
        one) and record it."""
        usable = self.usable()
        operands = [self.pick(data, usable, "operand") for _ in range(OPS[name].arity)]
        params = _draw_params(data, name, self.recs[operands[0]].value.shape)
        args = [self.recs[j].value for j in operands]
        out = None
        if params is not None and OPS[name].domain(*args, **params):
            with np.errstate(all="ignore"):
                out = np.asarray(OPS[name].ref(*args, **params), dtype=np.float64)
        if out is None or not np.all(np.isfinite(out)) or np.max(np.abs(out), initial=0.0) > BOUND:
            name, operands, params = "tanh", operands[:1], {}  # outside the op's safe domain
            args = args[:1]
            out = np.tanh(args[0])
        self.counts[f"op {name}"] += 1
        self.counts["ops"] += 1
        scope_names: list[str] = []
        if mode is None:
            mode, scope_names = self.draw_mode(data)
        with _mode(mode, scope_names):
            node = OPS[name].lib(*(self.recs[j].node for j in operands), **params)
        scope = "/".join(scope_names) if "scope" in mode else ""
        deps = frozenset().union(*(self.recs[j].deps for j in operands))
        requires_grad = any(self.recs[j].requires_grad for j in operands)
        # The operands' data in the library, as made (checks this op alone, tightly).
        local = np.asarray(OPS[name].ref(*(self.lib_data(self.recs[j].node) for j in operands), **params))
        _assert_close(self.lib_data(node), local, 1.0 + float(np.max(np.abs(local), initial=0.0)),
                      f"op {name} on the operands' data", rtol=1e-12, atol=1e-14)
        if not (_grad_enabled(mode) and requires_grad):  # no graph: a leaf
            if not self.detaches_share_data():
                deps = frozenset()
            self.add_leaf(node, out, self.KIND == "Value", scope, deps)
            self.counts["leaf results (no_grad or no input needs grad)"] += 1
            return
        rec = Rec(node, out, op=name, parents=tuple(operands), args=tuple(a.copy() for a in args),
                  params=params, requires_grad=True, scope=scope, deps=deps,
                  stale=any(self.recs[j].stale for j in operands))
        rec.grad = self.zero(rec)
        self.recs.append(rec)
        self.check_structure(len(self.recs) - 1)

    @rule(data=st.data())
    def backward(self, data: st.DataObject) -> None:
        root = self.pick_root(data)
        if root is None:
            return
        self.tick("backward")
        mode = data.draw(st.sampled_from(["plain", "no_grad"]), label="backward mode")
        start, seed = self.run_backward(data, root, mode)
        grads = self.apply_pass(start, seed)
        self.check_with_finite_differences(start, seed, grads)

    @rule(data=st.data())
    def backward_twice_from_zeroed_leaves_doubles_exactly(self, data: st.DataObject) -> None:
        root = self.pick_root(data)
        if root is None:
            return
        self.tick("backward twice")
        for rec in self.recs:
            if rec.is_leaf:
                rec.node.zero_grad()
                rec.grad = self.zero(rec)
        start, seed = self.run_backward(data, root, "plain")
        once = {i: self.lib_grad(r.node) for i, r in enumerate(self.recs)}
        once = {i: None if g is None else np.array(g) for i, g in once.items()}
        if self.KIND == "Tensor":
            self.recs[start].node.backward(seed)
        else:
            self.recs[start].node.backward()
        for i, rec in enumerate(self.recs):
            got, first = self.lib_grad(rec.node), once[i]
            if first is None:
                assert got is None, f"node {i}: grad appeared in the second pass only"
            elif rec.is_leaf:
                np.testing.assert_array_equal(got, 2 * first, err_msg=f"leaf {i}: not exactly twice")
            else:
                np.testing.assert_array_equal(got, first, err_msg=f"interior {i}: not the last pass")
        self.apply_pass(start, seed)
        self.apply_pass(start, seed)

    @rule(data=st.data())
    def zero_grad(self, data: st.DataObject) -> None:
        self.tick("zero_grad")
        chosen = data.draw(st.lists(st.sampled_from(range(len(self.recs))), min_size=1, max_size=4,
                                    unique=True), label="zeroed")
        for i in chosen:
            self.recs[i].node.zero_grad()
            self.recs[i].grad = self.zero(self.recs[i])

    @precondition(lambda self: len(self.recs) < MAX_NODES)
    @rule(data=st.data())
    def detach(self, data: st.DataObject) -> None:
        self.tick("detach")
        j = self.pick(data, self.usable(), "detached")
        mode, names = self.draw_mode(data)
        source = self.recs[j]
        with _mode(mode, names):
            node = source.node.detach()
        assert node is not source.node
        deps = source.deps if self.detaches_share_data() else frozenset()
        scope = "/".join(names) if "scope" in mode else ""
        self.add_leaf(node, source.value, self.KIND == "Value", scope, deps)
        if self.KIND == "Tensor":
            assert node.grad is None and not node.requires_grad

    @precondition(lambda self: len(self.optimizers) < 3)
    @rule(data=st.data())
    def make_optimizer(self, data: st.DataObject) -> None:
        params = [i for i, r in enumerate(self.recs) if self.is_parameter(r)]
        if not params:
            return
        self.tick("make optimizer")
        chosen = data.draw(st.lists(st.sampled_from(params), min_size=1, max_size=4, unique=True),
                           label="params")
        kind = data.draw(st.sampled_from(["sgd", "sgd_momentum", "adam"]), label="optimizer")
        lr = data.draw(st.sampled_from([0.01, 0.1]), label="lr")
        nodes = [self.recs[i].node for i in chosen]
        lib = {"sgd": lambda: optim.SGD(nodes, lr=lr),
               "sgd_momentum": lambda: optim.SGD(nodes, lr=lr, momentum=0.9),
               "adam": lambda: optim.Adam(nodes, lr=lr)}[kind]()
        self.optimizers.append(_RefOptimizer(kind, chosen, lr, lib))

    @precondition(lambda self: self.optimizers)
    @rule(data=st.data())
    def optimizer_step(self, data: st.DataObject) -> None:
        self.tick("optimizer step")
        opt = data.draw(st.sampled_from(self.optimizers), label="which optimizer")
        grads = {i: self.lib_grad(self.recs[i].node) for i in opt.params}
        grads = {i: None if g is None else np.array(g, dtype=np.float64) for i, g in grads.items()}
        opt.lib.step()
        changed = set()
        for i in opt.params:
            if grads[i] is None:  # skipped, as in torch
                continue
            rec = self.recs[i]
            rec.value = np.array(opt.update(i, rec.value, grads[i]), dtype=np.float64)
            changed.add(i)
        for j, rec in enumerate(self.recs):
            if j not in changed and rec.deps & changed:
                rec.stale = True

    @precondition(lambda self: self.optimizers)
    @rule(data=st.data())
    def optimizer_zero_grad(self, data: st.DataObject) -> None:
        self.tick("optimizer zero_grad")
        opt = data.draw(st.sampled_from(self.optimizers), label="which optimizer")
        opt.lib.zero_grad()
        for i in opt.params:
            self.recs[i].grad = self.zero(self.recs[i])


def _no_ties(rec: Rec) -> bool:
    (a,) = rec.args
    axis = rec.params["axis"]
    s = np.sort(np.moveaxis(a, axis, -1).reshape(-1, a.shape[axis]) if axis is not None else a.reshape(1, -1))
    return s.shape[1] < 2 or bool(np.all(s[:, -1] != s[:, -2]))


class ValueMachine(GraphMachine):
    """Values: scalars, every node takes part in backward, leaf grads start at 0.0."""

    KIND = "Value"
    ALLOW_STALE = True  # a Value op keeps its local derivatives: old graphs stay exact

    def make_leaf(self, value, requires_grad):
        return Value(float(value))

    def lib_data(self, node):
        assert type(node.data) is float, f"Value.data is a {type(node.data).__name__}"
        return np.asarray(node.data, dtype=np.float64)

    def lib_grad(self, node):
        assert type(node.grad) is float, f"Value.grad is a {type(node.grad).__name__}"
        return np.asarray(node.grad, dtype=np.float64)

    def zero(self, rec):
        return np.zeros(())

    def draw_leaf(self, data):
        x = data.draw(st.floats(-2, 2, allow_nan=False), label="leaf value")
        return np.asarray(x, dtype=np.float64), True

    def run_backward(self, data, root, mode):
        with _mode(mode, []):
            self.recs[root].node.backward()
        return root, np.ones(())

    def detaches_share_data(self):
        return False  # Python floats

    def is_parameter(self, rec):
        return rec.is_leaf


class TensorMachine(GraphMachine):
    """float64 Tensors of small broadcastable shapes, some leaves without requires_grad."""

    KIND = "Tensor"

    def make_leaf(self, value, requires_grad):
        return Tensor(value.copy(), requires_grad=requires_grad)

    def lib_data(self, node):
        assert type(node.data) is np.ndarray and node.data.dtype == np.float64
        return node.data

    def lib_grad(self, node):
        g = node.grad
        assert g is None or (type(g) is np.ndarray and g.dtype == np.float64), f"grad {g!r}"
        return g

    def zero(self, rec):
        return None

    def draw_leaf(self, data):
        shape = data.draw(st.sampled_from(SHAPES), label="shape")
        n = int(np.prod(shape))
        if data.draw(st.booleans(), label="all elements equal"):  # like ones/zeros: ties for max
            flat = [data.draw(st.floats(-2, 2, allow_nan=False), label="leaf value")] * n
        else:
            flat = data.draw(st.lists(st.floats(-2, 2, allow_nan=False), min_size=n, max_size=n),
                             label="leaf values")
        requires_grad = data.draw(st.sampled_from([True, True, True, False]), label="requires_grad")
        return np.array(flat, dtype=np.float64).reshape(shape), requires_grad

    def run_backward(self, data, root, mode):
        rec = self.recs[root]
        how = data.draw(st.sampled_from(["sum", "upstream", "default"] if rec.value.size == 1
                                        else ["sum", "upstream"]), label="seed")
        if how == "sum":  # the usual loss: a new interior node, recorded like any other
            node = rec.node.sum()
            i = len(self.recs)
            self.recs.append(Rec(node, np.asarray(rec.value.sum()), op="sum", parents=(root,),
                                 args=(rec.value.copy(),), params={"axis": None, "keepdims": False},
                                 deps=rec.deps, grad=None))
            self.check_structure(i)
            with _mode(mode, []):
                node.backward()
            return i, np.ones(())
        if how == "default":
            with _mode(mode, []):
                rec.node.backward()
            return root, np.ones(rec.value.shape)
        flat = data.draw(st.lists(st.floats(-1, 1, allow_nan=False), min_size=rec.value.size,
                                  max_size=rec.value.size), label="upstream grad")
        seed = np.array(flat, dtype=np.float64).reshape(rec.value.shape)
        given = seed.copy()
        with _mode(mode, []):
            rec.node.backward(given)
        given[...] = np.nan  # the library must have copied it: a grad sharing it would show nan now
        return root, seed

    def detaches_share_data(self):
        return True  # as torch: detach() and views share the leaf's array

    def is_parameter(self, rec):
        return rec.is_leaf and rec.requires_grad

    @rule(data=st.data())
    def backward_without_a_graph_raises(self, data: st.DataObject) -> None:
        """A node that needs no gradient, or a non-scalar without an upstream gradient: ValueError,
        and no gradient changes (the invariants check that)."""
        bad = [i for i in self.usable()
               if not self.recs[i].requires_grad or self.recs[i].value.size > 1]
        if not bad:
            return
        self.tick("invalid backward")
        i = data.draw(st.sampled_from(bad), label="bad root")
        with pytest.raises(ValueError, match="backward"):
            self.recs[i].node.backward()


def _report(kind: str) -> None:
    counts = COUNTS[kind]
    details = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()) if k != "steps")
    print(f"\n{kind} state machine: {counts['steps']} steps ({EXAMPLES} runs x up to {STEPS} steps);"
          f" {details}")


def test_value_graph_state_machine():
    run_state_machine_as_test(ValueMachine, settings=SM_SETTINGS)
    _report("Value")


def test_tensor_graph_state_machine():
    run_state_machine_as_test(TensorMachine, settings=SM_SETTINGS)
    _report("Tensor")


# -- a graph whose leaf an optimizer changed ---------------------------------------------------------


def test_value_backward_after_an_optimizer_step_gives_the_gradient_where_the_graph_was_built():
    # A Value op keeps its local derivatives, so an old graph stays consistent with its own data.
    a, b = Value(1.0), Value(3.0)
    loss = a * b
    loss.backward()
    optim.SGD([a, b], lr=0.5).step()
    a.zero_grad()
    b.zero_grad()
    loss.backward()
    assert (a.grad, b.grad, loss.data) == (3.0, 1.0, 3.0)


OPTIMIZERS = {"sgd": lambda ps: optim.SGD(ps, lr=0.5),
              "momentum": lambda ps: optim.SGD(ps, lr=0.5, momentum=0.9),
              "adam": lambda ps: optim.Adam(ps, lr=0.5), "adamw": lambda ps: optim.AdamW(ps, lr=0.5),
              "rmsprop": lambda ps: optim.RMSprop(ps, lr=0.5), "rprop": lambda ps: optim.Rprop(ps, lr=0.5)}


@pytest.mark.parametrize("make", OPTIMIZERS.values(), ids=OPTIMIZERS.keys())
def test_tensor_backward_after_an_optimizer_step_gives_the_gradient_where_the_graph_was_built(make):
    """The optimizer changes leaves after the graph was built. Backward through the old graph
    gives the gradient at the point the graph was built, as Value does (torch raises "modified by
    an inplace operation"); it must never mix the old graph with the new leaf values. (It once
    did: the step wrote into the arrays the vjps had kept.)"""
    a = Tensor([1.0, 2.0], requires_grad=True)
    b = Tensor([3.0, 4.0], requires_grad=True)
    loss = (a * b).sum()
    loss.backward()
    make([a, b]).step()
    assert not np.array_equal(a.data, [1.0, 2.0]) and not np.array_equal(b.data, [3.0, 4.0])
    a.zero_grad()
    b.zero_grad()
    loss.backward()
    assert loss.data == 11.0
    np.testing.assert_array_equal(a.grad, [3.0, 4.0])  # d/da (a b) = b where the graph was built
    np.testing.assert_array_equal(b.grad, [1.0, 2.0])


@pytest.mark.parametrize("make", OPTIMIZERS.values(), ids=OPTIMIZERS.keys())
def test_a_step_with_no_graph_alive_updates_the_parameter_array_in_place(make):
    """The copy costs something only while a graph (or another reference) holds the array."""
    a = Tensor([1.0, 2.0], requires_grad=True)
    (a * a).sum().backward()  # the graph dies here
    before = id(a.data)  # (a reference held here would count as a reader)
    make([a]).step()
    assert id(a.data) == before and not np.array_equal(a.data, [1.0, 2.0])
