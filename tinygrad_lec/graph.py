"""The ground floor: one reverse-mode graph shared by :class:`Value` and ``Tensor``.

A node knows at most two parents (``_a`` and ``_b``; an op with more operands keeps the others in
an internal join node, see ``tensor.linear``), the name of the op that made it and how to pass a
gradient to its parents; the node kinds (``value.py``, ``tensor.py``) say *how*, this module
says *when*: it finds the nodes a backward pass must visit, in an order where every node comes
after all the nodes that use it, without recursion, and it owns the graph-building mode
(``no_grad``, ``name_scope``).

Nodes only point at their parents, never at their children or at themselves (no closures that
capture the output), so a graph dropped by the user is freed at once by reference counting: no
reference cycle ever waits for Python's cyclic garbage collector.
"""

from __future__ import annotations

import contextvars
import functools
from collections.abc import Callable
from typing import Any, NamedTuple


class _Mode(NamedTuple):
    grad_enabled: bool
    scope: str
    anomaly: bool = False


class AnomalyError(FloatingPointError):
    """Under :func:`detect_anomaly`, an op produced nan or inf in the forward or backward pass."""


# The graph-building mode of the current thread / asyncio task. ``None`` is the common case
# (gradients on, no scope): ops test it with one call and one ``is`` check.
_MODE: contextvars.ContextVar[_Mode | None] = contextvars.ContextVar("tinygrad_lec_mode", default=None)
get_mode = _MODE.get
# The modes that the active with-blocks of the current thread / task will restore, innermost last.
_SAVED: contextvars.ContextVar[tuple[_Mode | None, ...]] = contextvars.ContextVar("tinygrad_lec_saved",
                                                                                 default=())


def is_grad_enabled() -> bool:
    """True unless inside :func:`no_grad`."""
    mode = _MODE.get()
    return mode is None or mode.grad_enabled


def is_anomaly_enabled() -> bool:
    """True inside :func:`detect_anomaly` (or after ``set_detect_anomaly(True)``)."""
    mode = _MODE.get()
    return mode is not None and mode.anomaly


def current_scope() -> str:
    """The name scope that new nodes are tagged with ("" outside any :func:`name_scope`)."""
    mode = _MODE.get()
    return "" if mode is None else mode.scope


class _ModeContext:
    """A context manager (and function decorator) that sets the graph-building mode.

    Like torch.no_grad: the same object may be entered again, also while already active, and
    ``@no_grad()`` on a function applies the mode to each call. The mode is computed from the
    enclosing one at each entry, so a decorated function keeps its caller's scope.
    """

    __slots__ = ("_grad_enabled", "_scope", "_anomaly")

    def __init__(self, grad_enabled: bool | None, scope: str | None, anomaly: bool | None = None) -> None:
        self._grad_enabled = grad_enabled  # None: keep the enclosing setting
        self._scope = scope  # None: keep the enclosing scope; else a name nested inside it
        self._anomaly = anomaly  # None: keep the enclosing setting

    def __enter__(self) -> None:
        # The mode to restore goes on a per-thread (per-task) stack, not on this object: one
        # object may be active in several threads at once, and with-blocks nest within each.
        _SAVED.set((*_SAVED.get(), _MODE.get()))
        _MODE.set(self._mode())

    def _mode(self) -> _Mode | None:
        grad = is_grad_enabled() if self._grad_enabled is None else self._grad_enabled
        anomaly = is_anomaly_enabled() if self._anomaly is None else self._anomaly
        scope = current_scope()
        if self._scope is not None:
            scope = f"{scope}/{self._scope}" if scope else self._scope
        return None if grad and not scope and not anomaly else _Mode(grad, scope, anomaly)

    def __exit__(self, *exc: object) -> None:
        *rest, previous = _SAVED.get()
        _SAVED.set(tuple(rest))
        _MODE.set(previous)

    def __call__(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with _ModeContext(self._grad_enabled, self._scope, self._anomaly):
                return fn(*args, **kwargs)

        return wrapper


def no_grad() -> _ModeContext:
    """Context manager (or decorator): ops inside build no graph; results are leaves.

    >>> from tinygrad_lec import Value, no_grad
    >>> w = Value(2.0)
    >>> with no_grad():
    ...     y = w * 3.0
    >>> y.op, y.parents
    ('', ())
    """
    return _ModeContext(False, None)


def enable_grad() -> _ModeContext:
    """Context manager (or decorator): build graphs again inside an enclosing :func:`no_grad`."""
    return _ModeContext(True, None)


def detect_anomaly(enabled: bool = True) -> _ModeContext:
    """Context manager (or decorator): every op checks that its result, and in backward every
    gradient it passes on, is finite; the first nan or inf raises :class:`AnomalyError` naming the
    op, its scope and label, its inputs and the pass (forward or backward). Off by default, and
    then it costs nothing. Per thread and per asyncio task, like no_grad.

    >>> from tinygrad_lec import Value, detect_anomaly
    >>> with detect_anomaly():
    ...     Value(1000.0).exp()
    Traceback (most recent call last):
    ...
    tinygrad_lec.graph.AnomalyError: forward: op 'exp' produced inf (inputs: 1000.0)
    """
    return _ModeContext(None, None, bool(enabled))


def set_detect_anomaly(enabled: bool) -> None:
    """Switch anomaly detection on or off for the rest of the current thread (or asyncio task)."""
    _MODE.set(_ModeContext(None, None, bool(enabled))._mode())


def anomaly_error(where: str, op: str, scope: str, label: str, result: str, inputs: str) -> AnomalyError:
    """The error :func:`detect_anomaly` raises: where (forward/backward), the op, its place."""
    place = "".join([f" in scope {scope!r}" if scope else "", f" (label {label!r})" if label else ""])
    return AnomalyError(f"{where}: op {op!r}{place} produced {result} (inputs: {inputs})")


def name_scope(name: str) -> _ModeContext:
    """Context manager (or decorator): tag every node made inside with ``name``, nested scopes
    joined with "/"; ``viz`` draws each scope as a cluster.

    >>> from tinygrad_lec import Value, name_scope
    >>> with name_scope("block1"), name_scope("batchnorm"):
    ...     y = Value(1.0) + 2.0
    >>> y.scope
    'block1/batchnorm'
    """
    if not isinstance(name, str) or not name or "/" in name:
        raise ValueError(f"name_scope: name must be a non-empty str without '/', got {name!r}")
    return _ModeContext(None, name)


class Node:
    """Base of every graph node: parents, op name, label and scope.

    Subclasses add ``data`` and ``grad`` and, as the class attribute ``_zero_grad``, the value an
    interior node's gradient is reset to at the start of a backward pass.
    """

    # _a, _b: parent nodes or None (a leaf has _a None); op: the op's name ("" for a leaf);
    # _label and _scope stay unset (no store, no memory beyond the slot) until they are given:
    # most nodes have neither.
    __slots__ = ("_a", "_b", "op", "_label", "_scope", "__weakref__")

    @property
    def label(self) -> str:
        """A name for drawings and error messages ("" unless set)."""
        try:
            return self._label
        except AttributeError:
            return ""

    @label.setter
    def label(self, label: str) -> None:
        if not isinstance(label, str):
            raise TypeError(f"label must be a str, got {type(label).__name__}: {label!r}")
        self._label = label

    def _init_leaf(self, label: str) -> None:
        """Fields of a node made by the user: no parents, no op, the label, the current scope."""
        self._a = self._b = None
        self.op = ""
        if type(label) is not str or label:
            self.label = label  # the setter checks that it is a str
        mode = _MODE.get()
        if mode is not None and mode.scope:
            self._scope = mode.scope

    @property
    def parents(self) -> tuple[Node, ...]:
        """The nodes this one was computed from, in operand order (a reused operand appears twice)."""
        a, b = self._a, self._b
        if a is None:
            return ()
        return (a,) if b is None else (a, b)

    @property
    def scope(self) -> str:
        """The :func:`name_scope` this node was made in ("" if none)."""
        try:
            return self._scope
        except AttributeError:
            return ""

    @property
    def is_leaf(self) -> bool:
        """True for nodes made by the user or under no_grad (no parents)."""
        return self._a is None


def backward_order(root: Node) -> tuple[list[Node], list[Node], list[object]]:
    """Prepare a backward pass from ``root``: ``(order, leaves, saved)``.

    ``order``: the interior (non-leaf) nodes reachable from ``root``, every node before its
    parents. A reverse-mode pass may visit a node only after every node computed from it has
    added its contribution to the node's gradient; this is the reverse of a depth-first
    postorder along parent edges. The search is iterative (a chain of a million ops is fine)
    and follows the operands' order, so the order is deterministic.

    Every gradient the pass will write starts from ``type(node)._zero_grad``. Interior gradients
    hold only the current pass (API.md, "Graph core"). Leaves accumulate across passes, but
    this pass's contributions are summed on their own first: ``leaves`` are the leaves reached
    and ``saved`` their gradients before the pass, which the caller adds back at the end
    (``saved + this pass``). So a second backward adds exactly the same total again and leaves
    exactly twice the gradient, whatever the rounding of the individual contributions.
    """
    order: list[Node] = []
    leaves: list[Node] = []
    if root._a is None:
        return order, leaves, []
    expanded: set[Node] = set()
    stack: list[Node | None] = [root]
    push, pop, expand, emit, leaf = stack.append, stack.pop, expanded.add, order.append, leaves.append
    while stack:
        v = pop()
        if v is None:  # marker: every parent of the node below it has been emitted
            emit(pop())
            continue
        if v in expanded:  # pushed by two children and already done through the other
            continue
        expand(v)
        v.grad = v._zero_grad
        waiting = False  # does v wait for a parent to be emitted first?
        a, b = v._a, v._b
        if b is not None and b not in expanded:
            if b._a is not None:
                push(v)
                push(None)
                push(b)
                waiting = True
            else:
                expand(b)
                leaf(b)
        if a not in expanded:
            if a._a is not None:
                if not waiting:
                    push(v)
                    push(None)
                    waiting = True
                push(a)
            else:
                expand(a)
                leaf(a)
        if not waiting:
            emit(v)
    order.reverse()
    saved = [v.grad for v in leaves]
    for v in leaves:
        v.grad = v._zero_grad
    return order, leaves, saved


def topological_order(root: Node) -> list[Node]:
    """Every node ``root`` depends on (leaves included) and ``root`` itself, parents first.

    Deterministic: the order follows the operands' order in each op, never ``id()`` or hashing.
    Iterative depth-first search, so it works on graphs of any depth.
    """
    order: list[Node] = []
    done: set[int] = set()
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        v, parents_done = stack.pop()
        if parents_done:
            order.append(v)
            continue
        if id(v) in done:
            continue
        done.add(id(v))
        stack.append((v, True))
        stack.extend((p, False) for p in reversed(v.parents) if id(p) not in done)
    return order
