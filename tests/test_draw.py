"""ft.draw: the DOT text of small programs (nodes, edges, colours of the forward and
backward parts, residuals, clusters, collapse, the max_nodes cut), rendering through
Graphviz's `dot` when it is installed, and the message when it is not."""
import re
import shutil

import numpy as np
import pytest

import ftrans as ft
import ftrans.numpy as fnp
from ir import draw as ir_draw

HAS_DOT = shutil.which("dot") is not None
needs_dot = pytest.mark.skipif(not HAS_DOT, reason="Graphviz's dot is not installed")

_NODE = re.compile(r"^\s*(\w+) \[(.*)\]$")
_EDGE = re.compile(r"^\s*(\w+) -> (\w+) \[(.*)\]$")
_ATTR = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def attrs(text):
    """The attributes of a DOT statement, their values unescaped."""
    unescape = lambda value: re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), value)
    return {key: unescape(value) for key, value in _ATTR.findall(text)}


def parse(source):
    """(nodes: id -> attrs, edges: [(source, target, attrs)], clusters: [label]) of our DOT text."""
    nodes, edges, clusters = {}, [], []
    for line in source.splitlines():
        edge = _EDGE.match(line)
        if edge:
            edges.append((edge.group(1), edge.group(2), attrs(edge.group(3))))
            continue
        node = _NODE.match(line)
        if node and node.group(1) not in ("graph", "node", "edge"):
            nodes[node.group(1)] = attrs(node.group(2))
        elif line.strip().startswith("graph [") and "dashed" in line:
            clusters.append(attrs(line)["label"])
    return nodes, edges, clusters


def labelled(nodes, edges):
    """Values as (source label, target label, edge label), independent of node ids (not the
    dotted lines from an equation to its sub-jaxprs' inputs)."""
    return sorted((nodes[s]["label"], nodes[t]["label"], a["label"]) for s, t, a in edges if "label" in a)


def eqn_colors(nodes):
    return sorted((a["label"], a["fillcolor"]) for i, a in nodes.items() if i.startswith("eqn"))


def c_times_a_plus_b(a, b, c):
    return c * (a + b)


def shared(x, y):
    return (x + y) + x * (x + y)


def test_c_times_a_plus_b_golden():
    source = ft.draw(c_times_a_plus_b, 1.0, 2.0, 3.0).source
    assert source == """digraph jaxpr {
  graph [rankdir=TB, fontname="Helvetica", fontsize=10, labelloc=b]
  node [fontname="Helvetica", fontsize=10]
  edge [fontname="Helvetica", fontsize=8]
  in1 [label="a", shape="ellipse", style="filled", fillcolor="#fff2cc"]
  in2 [label="b", shape="ellipse", style="filled", fillcolor="#fff2cc"]
  in3 [label="c", shape="ellipse", style="filled", fillcolor="#fff2cc"]
  eqn4 [label="add", shape="box", style="filled,rounded", fillcolor="#eeeeee"]
  eqn5 [label="mul", shape="box", style="filled,rounded", fillcolor="#eeeeee"]
  out6 [label="out", shape="ellipse", style="filled", fillcolor="#d9ead3"]
  in1 -> eqn4 [label="f64[]"]
  in2 -> eqn4 [label="f64[]"]
  in3 -> eqn5 [label="f64[]"]
  eqn4 -> eqn5 [label="f64[]"]
  eqn5 -> out6 [label="f64[]"]
}
"""


def test_edges_carry_shape_and_dtype_params_show_and_constants_are_nodes():
    w = np.arange(6.0, dtype=np.float32).reshape(2, 3)
    graph = ft.draw(lambda x: fnp.sum(fnp.tanh(w @ x), axis=0), np.ones(3, np.float32))
    nodes, edges, _ = parse(graph.source)
    assert labelled(nodes, edges) == sorted([
        ("a: f32[2,3]", "dot_general\ndimension_numbers=(((1,), (0,)), ((), ()))", "f32[2,3]"),
        ("x", "dot_general\ndimension_numbers=(((1,), (0,)), ((), ()))", "f32[3]"),
        ("dot_general\ndimension_numbers=(((1,), (0,)), ((), ()))", "tanh", "f32[2]"),
        ("tanh", "reduce_sum\naxes=(0,)", "f32[2]"),
        ("reduce_sum\naxes=(0,)", "out", "f32[]")])
    assert [a["style"] for i, a in nodes.items() if i.startswith("const")] == ["filled,dashed"]


def test_cse_makes_the_shared_subexpression_one_node():
    before, edges_before, _ = parse(ft.draw(shared, 1.0, 2.0).source)
    after, edges_after, _ = parse(ft.draw(shared, 1.0, 2.0, optimize=True).source)
    count = lambda nodes, label: sum(a["label"] == label for i, a in nodes.items() if i.startswith("eqn"))
    assert (count(before, "add"), count(after, "add")) == (3, 2)
    # after CSE x+y feeds both the product and the final sum
    assert sorted(labelled(after, edges_after)) == sorted([
        ("x", "add", "f64[]"), ("y", "add", "f64[]"), ("x", "mul", "f64[]"), ("add", "mul", "f64[]"),
        ("add", "add", "f64[]"), ("mul", "add", "f64[]"), ("add", "out", "f64[]")])


def test_grad_colours_forward_and_backward_and_marks_the_residuals():
    graph = ft.draw(ft.grad(c_times_a_plus_b, argnums=(0, 1, 2)), 1.0, 2.0, 3.0)
    nodes, edges, _ = parse(graph.source)
    assert eqn_colors(nodes) == sorted([("add", ir_draw.FORWARD_COLOR), ("mul", ir_draw.FORWARD_COLOR),
                                        ("mul", ir_draw.BACKWARD_COLOR), ("mul", ir_draw.BACKWARD_COLOR)])
    residuals = sorted((nodes[s]["label"], nodes[t]["fillcolor"]) for s, t, a in edges
                       if a.get("color") == ir_draw.RESIDUAL_COLOR)
    # c and a+b cross to the backward part (dL/da = dL/db = c, dL/dc = a+b); a and b do not
    assert residuals == [("add", ir_draw.BACKWARD_COLOR), ("c", ir_draw.BACKWARD_COLOR)]
    assert all("residual" in a["label"] for s, t, a in edges if a.get("color") == ir_draw.RESIDUAL_COLOR)
    assert "blue: forward" in graph.source


def test_the_tags_come_from_the_interpreters_and_survive_the_passes():
    closed = ft.make_jaxpr(ft.grad(lambda x: fnp.sum(fnp.tanh(x) * 2.0)))(np.ones(3))
    assert [e.origin for e in closed.eqns] == ["forward"] * 5 + ["backward"] * 3
    optimized = ft.make_jaxpr(ft.grad(lambda x: fnp.sum(fnp.tanh(x) * 2.0)), optimize=True)(np.ones(3))
    assert {e.origin for e in optimized.eqns} == {"forward", "backward"}
    assert all(e.origin is None for e in ft.make_jaxpr(fnp.sin)(1.0).eqns)  # no derivative, no tag
    jitted = ft.make_jaxpr(ft.jit(ft.grad(fnp.sin)))(1.0)  # jit's passes and inlining keep them
    inner = jitted.eqns[0].params["jaxpr"].eqns
    assert [e.origin for e in inner] == ["forward", "backward"]


def test_vjp_cotangent_input_is_not_a_residual():
    def pullback(x, ct):
        return ft.vjp(fnp.sin, x)[1](ct)[0]
    nodes, edges, _ = parse(ft.draw(pullback, 1.0, 1.0).source)
    residuals = sorted(nodes[s]["label"] for s, t, a in edges if a.get("color") == ir_draw.RESIDUAL_COLOR)
    assert residuals == ["cos"]  # the saved cos(x); ct only flows backward


def _program_with_sub_jaxprs(x):
    y = ft.jit(lambda z: fnp.sin(z) * 2.0)(x)
    y = ft.lax.cond(x > 0, lambda v: v * 3.0, lambda v: -v, y)
    s, _ = ft.lax.scan(lambda carry, xi: (carry + xi, carry * xi), y, fnp.ones(3))
    return s


def test_sub_jaxprs_are_clusters():
    nodes, edges, clusters = parse(ft.draw(_program_with_sub_jaxprs, 1.0).source)
    assert clusters == ["jit_call\nname=jitted", "cond", "branches[0]", "branches[1]", "scan", "jaxpr"]
    labels = [a["label"] for i, a in nodes.items() if i.startswith("eqn")]
    assert labels.count("sin") == 1 and labels.count("neg") == 1 and "jit_call" not in labels
    # the call is open: x goes straight to sin inside it, its result straight to cond's box
    assert ("x", "sin", "f64[]") in labelled(nodes, edges)
    assert any(l[0] == "mul" and l[1] == "cond" for l in labelled(nodes, edges))


def test_collapse_folds_each_sub_jaxpr_into_one_node():
    nodes, edges, clusters = parse(ft.draw(_program_with_sub_jaxprs, 1.0, collapse=True).source)
    assert clusters == []
    labels = sorted(a["label"].split("\n")[0] for i, a in nodes.items() if i.startswith("eqn"))
    assert labels == sorted(["jit_call", "gt", "convert_element_type", "cond", "broadcast_in_dim",
                             "convert_element_type", "scan"])
    cond = next(a["label"] for i, a in nodes.items() if a["label"].startswith("cond"))
    assert cond.endswith("(2 equations inside)")


def test_grad_through_sub_jaxprs_colours_the_clusters():
    nodes, _, clusters = parse(ft.draw(ft.grad(_program_with_sub_jaxprs), 1.0).source)
    assert "cond" in clusters and clusters.count("cond") == 2  # forward cond and its transpose
    colors = {a["fillcolor"] for i, a in nodes.items() if a["label"].startswith(("cond", "scan"))}
    assert colors == {ir_draw.FORWARD_COLOR, ir_draw.BACKWARD_COLOR}


def test_max_nodes_cuts_with_a_note():
    def long_chain(x):
        for _ in range(200):
            x = fnp.sin(x)
        return x
    graph = ft.draw(long_chain, 1.0, max_nodes=20)
    nodes, edges, _ = parse(graph.source)
    assert len(nodes) <= 22 and graph.omitted == 200 - sum(i.startswith("eqn") for i in nodes)
    note = next(a["label"] for i, a in nodes.items() if i.startswith("note"))
    assert note.startswith(f"{graph.omitted} more equations not drawn (max_nodes=20)")
    assert any(s.startswith("note") and nodes[t]["label"] == "out" for s, t, _ in edges)
    assert "cut" in repr(graph)


def test_closed_jaxpr_draw_names_inputs_as_the_printer_does_and_shows_small_constants():
    closed = ft.make_jaxpr(lambda x: x * np.array([2.0, 3.0]))(np.ones(2))
    nodes, _, _ = parse(closed.draw().source)
    assert sorted(a["label"] for i, a in nodes.items() if i.startswith(("in", "const"))) == \
        ["a: f64[2]\n[2., 3.]", "b"]


def test_labels_with_quotes_are_escaped():
    source = ft.draw(lambda x: ft.jit(fnp.sin)(x), 1.0).source
    assert 'name=sin' in source
    assert ir_draw._quote('say "hi"\n') == '"say \\"hi\\"\\n"'


def test_bad_options_are_named():
    with pytest.raises(ValueError, match="max_nodes must be a positive int"):
        ft.draw(fnp.sin, 1.0, max_nodes=0)
    with pytest.raises(TypeError, match="draw: expected a ClosedJaxpr"):
        ir_draw.draw(fnp.sin)
    with pytest.raises(ValueError, match="format must be one of"):
        ft.draw(fnp.sin, 1.0).render("/tmp/never", format="pdf")


def test_without_dot_the_message_says_to_install_graphviz(monkeypatch, tmp_path):
    monkeypatch.setattr(ir_draw.shutil, "which", lambda name: None)
    graph = ft.draw(fnp.sin, 1.0)
    assert graph.source.startswith("digraph")  # the text needs nothing
    with pytest.raises(RuntimeError, match="install Graphviz"):
        graph.render(tmp_path / "sin.svg")
    with pytest.warns(UserWarning, match="install Graphviz"):
        assert graph._repr_svg_() is None


@needs_dot
def test_renders_svg_and_png(tmp_path):
    graph = ft.draw(ft.grad(shared, argnums=(0, 1)), 1.0, 2.0)
    path = graph.render(tmp_path / "shared.svg")
    svg = path.read_text()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg and "residual" in svg
    assert graph._repr_svg_().count("<svg") == 1
    png = graph.render(tmp_path / "shared.png", format="png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@needs_dot
def test_a_cut_and_clustered_graph_is_valid_dot(tmp_path):
    for graph in (ft.draw(ft.grad(_program_with_sub_jaxprs), 1.0, max_nodes=15),
                  ft.draw(ft.grad(_program_with_sub_jaxprs), 1.0, collapse=True)):
        assert "<svg" in graph.pipe("svg").decode()


def test_to_graphviz_needs_the_viz_extra():
    graph = ft.draw(fnp.sin, 1.0)
    try:
        import graphviz
    except ImportError:
        with pytest.raises(ImportError, match=r"ftrans\[viz\]"):
            graph.to_graphviz()
    else:
        assert isinstance(graph.to_graphviz(), graphviz.Source)
        assert graph.to_graphviz().source == graph.source


def test_equations_a_rule_builds_by_hand_take_their_enclosing_equations_origin():
    def loss(w):  # the transposed scan accumulates w's cotangent in an equation scan's rule writes itself
        c, ys = ft.lax.scan(lambda c, x: (fnp.tanh(c * w + x), c), 0.5, fnp.ones(3))
        return c + fnp.sum(ys)
    closed = ft.make_jaxpr(ft.grad(loss))(0.3)
    backward_scan = [e for e in closed.eqns if e.primitive.name == "scan"][1]
    assert backward_scan.origin == "backward" and None in {e.origin for e in backward_scan.params["jaxpr"].eqns}
    nodes, _, _ = parse(closed.draw().source)
    assert {a["fillcolor"] for i, a in nodes.items() if i.startswith("eqn")} == {ir_draw.FORWARD_COLOR,
                                                                               ir_draw.BACKWARD_COLOR}


def test_inputs_are_named_after_the_parameters_pytree_leaves_by_key_static_arguments_left_out():
    def layer(params, x, activation):
        return activation(params["w"] @ x + params["b"])
    graph = ft.draw(layer, {"w": np.ones((2, 3)), "b": np.zeros(2)}, np.ones(3), fnp.tanh, static_argnums=2)
    nodes, _, _ = parse(graph.source)
    assert [a["label"] for i, a in nodes.items() if i.startswith("in")] == ["params['b']", "params['w']", "x"]
