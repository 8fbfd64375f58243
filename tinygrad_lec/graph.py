"""The ground floor: one reverse-mode graph shared by :class:`Value` and ``Tensor``.

A node knows at most two parents (``_a`` and ``_b``), the name of the op that made it and how to
pass a gradient to its parents; the node kinds (``value.py``, ``tensor.py``) say *how*, this module
says *when*: it finds the nodes a backward pass must visit, in an order where every node comes
after all the nodes that use it, without recursion, and it owns the graph-building mode
(``no_grad``, ``name_scope``).

Nodes only point at their parents, never at their children or at themselves (no closures that
capture the output), so a graph dropped by the user is freed at once by reference counting: no
reference cycle ever waits for Python's cyclic garbage collector.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from typing import NamedTuple


class _Mode(NamedTuple):
    grad_enabled: bool
    scope: str


# The graph-building mode of the current thread / asyncio task. ``None`` is the common case
# (gradients on, no scope): ops test it with one call and one ``is`` check.
_MODE: contextvars.ContextVar[_Mode | None] = contextvars.ContextVar("tinygrad_lec_mode", default=None)
get_mode = _MODE.get


def is_grad_enabled() -> bool:
    """True unless inside :func:`no_grad`."""
    mode = _MODE.get()
    return mode is None or mode.grad_enabled


def current_scope() -> str:
    """The name scope that new nodes are tagged with ("" outside any :func:`name_scope`)."""
    mode = _MODE.get()
    return "" if mode is None else mode.scope


@contextlib.contextmanager
def _set_mode(grad_enabled: bool, scope: str) -> Iterator[None]:
    mode = None if (grad_enabled and not scope) else _Mode(grad_enabled, scope)
    token = _MODE.set(mode)
    try:
        yield
    finally:
        _MODE.reset(token)


def no_grad() -> contextlib.AbstractContextManager[None]:
    """Context manager: ops inside build no graph; their results are leaves needing no gradient.

    >>> from tinygrad_lec import Value, no_grad
    >>> w = Value(2.0)
    >>> with no_grad():
    ...     y = w * 3.0
    >>> y.op, y.parents
    ('', ())
    """
    return _set_mode(False, current_scope())


def enable_grad() -> contextlib.AbstractContextManager[None]:
    """Context manager: build graphs again inside an enclosing :func:`no_grad`."""
    return _set_mode(True, current_scope())


def name_scope(name: str) -> contextlib.AbstractContextManager[None]:
    """Context manager: tag every node made inside with ``name`` (nested scopes join with "/").

    >>> from tinygrad_lec import Value, name_scope
    >>> with name_scope("block1"), name_scope("batchnorm"):
    ...     y = Value(1.0) + 2.0
    >>> y.scope
    'block1/batchnorm'
    """
    if not isinstance(name, str) or not name or "/" in name:
        raise ValueError(f"name_scope: name must be a non-empty str without '/', got {name!r}")
    outer = current_scope()
    return _set_mode(is_grad_enabled(), f"{outer}/{name}" if outer else name)


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


def backward_order(root: Node) -> list[Node]:
    """The interior (non-leaf) nodes reachable from ``root``, every node before its parents.

    A reverse-mode pass may visit a node only after every node computed from it has added its
    contribution to the node's gradient; this is the reverse of a depth-first postorder along
    parent edges. The search is iterative (a chain of a million ops is fine) and follows the
    operands' order, so the order is deterministic. It also resets each interior gradient to
    ``type(node)._zero_grad``: interior gradients hold only the current pass (API.md, "Graph
    core"). Leaves are left out: they accumulate, and have nothing to pass on.
    """
    order: list[Node] = []
    if root._a is None:
        return order
    expanded: set[Node] = set()
    stack: list[Node | None] = [root]
    push, pop, expand, emit = stack.append, stack.pop, expanded.add, order.append
    while stack:
        v = pop()
        if v is None:  # marker: every parent of the node below it has been emitted
            emit(pop())
            continue
        if v in expanded:  # pushed by two children and already done through the other
            continue
        expand(v)
        v.grad = v._zero_grad
        push(v)
        push(None)
        a, b = v._a, v._b
        if b is not None and b._a is not None and b not in expanded:
            push(b)
        if a._a is not None and a not in expanded:
            push(a)
    order.reverse()
    return order


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
