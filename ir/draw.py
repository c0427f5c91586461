"""Pictures of jaxprs: Graphviz DOT text, made here with no dependency.

    graph = ft.make_jaxpr(f)(x).draw()     # or ft.draw(f, x)
    graph.source                           # the DOT text
    graph.render("f.svg")                  # through Graphviz's `dot` program

What a picture shows: each input, constant, literal operand and output is a
node, each equation is a box naming its primitive and params, and each edge
is a value, labelled with its shape and dtype. A sub-jaxpr (jit_call's body,
cond's branches, scan's body) is a cluster around its equations; a call
(jit_call) is drawn open, its operands wired straight to the equations that
use them, while a branch or a loop body gets its own inputs and outputs next
to the equation that runs it. `collapse=True` draws every such equation as
one node instead.

Reverse mode tags the equations it stages (`Eqn.origin`: "forward" while it
linearizes, "backward" while it transposes; ir.tracing.staged_as), so the
picture of `grad(f)` colours the two parts by what the interpreters did, and
marks the residuals: values the forward part computes or reads that the
backward part reads (torchviz marks saved tensors so).

Large graphs: past `max_nodes` nodes the rest is cut, and a note says how
many equations are missing.
"""
from __future__ import annotations

import shutil
import subprocess
import warnings

import numpy as np

from ir.core import ClosedJaxpr, Jaxpr, Literal
from ir.printer import _Names, _holds_jaxpr, _pp_param, format_scalar

FORWARD_COLOR = "#c9daf8"    # blue: primal work
BACKWARD_COLOR = "#f4cccc"   # red: transposed work
PLAIN_COLOR = "#eeeeee"      # an equation no transformation tagged
INPUT_COLOR = "#fff2cc"
CONST_COLOR = "#e6e6e6"
OUTPUT_COLOR = "#d9ead3"
RESIDUAL_COLOR = "#e69138"   # orange: a residual crossing from forward to backward
_ORIGIN_COLORS = {"forward": FORWARD_COLOR, "backward": BACKWARD_COLOR, None: PLAIN_COLOR}

# Primitives that call their one sub-jaxpr on their operands as they are: drawn open
_CALLS = frozenset({"jit_call", "checkpoint", "custom_jvp_call", "custom_vjp_call"})
_MAX_PARAM_CHARS = 40
FORMATS = ("svg", "png")

_INSTALL_GRAPHVIZ = ("drawing needs Graphviz's `dot` program, which is not on PATH: install Graphviz "
                     "(apt install graphviz, brew install graphviz, conda install graphviz, or "
                     "https://graphviz.org/download/). The DOT text is in `.source` without it.")


class Graph:
    """A drawn jaxpr. `.source` is its Graphviz DOT text; `.render(path, format)`
    writes an SVG or PNG and `_repr_svg_` shows it in a notebook, both through the
    Graphviz `dot` program. `pip install 'ftrans[viz]'` adds the `graphviz` package,
    whose `Source` `to_graphviz()` returns (for `.view()` and its other formats)."""

    def __init__(self, source: str, num_nodes: int, num_edges: int, omitted: int = 0):
        self.source = source
        self.num_nodes, self.num_edges, self.omitted = num_nodes, num_edges, omitted

    def pipe(self, format="svg") -> bytes:
        """The picture as bytes of `format` ("svg" or "png"), made by `dot`."""
        if format not in FORMATS:
            raise ValueError(f"draw: format must be one of {FORMATS}, got {format!r}")
        dot = shutil.which("dot")
        if dot is None:
            raise RuntimeError(_INSTALL_GRAPHVIZ)
        done = subprocess.run([dot, f"-T{format}"], input=self.source.encode(), capture_output=True, timeout=300)
        if done.returncode != 0:
            raise RuntimeError(f"Graphviz's dot failed ({done.returncode}): {done.stderr.decode(errors='replace')}")
        return done.stdout

    def render(self, path, format="svg"):
        """Write the picture to `path` (as given: no extension is added); return `path`."""
        data = self.pipe(format)
        with open(path, "wb") as file:
            file.write(data)
        return path

    def _repr_svg_(self):
        """The SVG for notebooks; None (so the text repr shows) with a warning when `dot` is missing."""
        if shutil.which("dot") is None:
            warnings.warn(_INSTALL_GRAPHVIZ, stacklevel=2)
            return None
        return self.pipe("svg").decode()

    def to_graphviz(self):
        """This graph as a `graphviz.Source` (the `viz` extra: pip install 'ftrans[viz]')."""
        try:
            import graphviz
        except ImportError:
            raise ImportError("to_graphviz needs the graphviz package: pip install 'ftrans[viz]' "
                              "(or pip install graphviz)") from None
        return graphviz.Source(self.source)

    def __repr__(self):
        cut = f", {self.omitted} equations cut" if self.omitted else ""
        return f"<ftrans Graph: {self.num_nodes} nodes, {self.num_edges} edges{cut}; DOT text in .source>"


def draw(closed, *, collapse=False, optimize=False, max_nodes=500, input_names=None):
    """The `Graph` of a jaxpr (ClosedJaxpr or Jaxpr).

    collapse: draw each equation holding sub-jaxprs as one node.
    optimize: draw it after the IR passes (CSE and DCE among them: a shared
      subexpression is one node).
    max_nodes: draw at most this many nodes; a note names how many equations
      were cut.
    input_names: labels of the inputs (default: their names in the printed jaxpr).
    """
    if not isinstance(closed, (ClosedJaxpr, Jaxpr)):
        raise TypeError(f"draw: expected a ClosedJaxpr or Jaxpr, got {type(closed).__name__}")
    if not isinstance(max_nodes, int) or isinstance(max_nodes, bool) or max_nodes < 1:
        raise ValueError(f"draw: max_nodes must be a positive int, got {max_nodes!r}")
    if optimize:
        from ir import passes
        closed = passes.optimize(closed if isinstance(closed, ClosedJaxpr) else ClosedJaxpr(closed, None))
    jaxpr = closed.jaxpr if isinstance(closed, ClosedJaxpr) else closed
    consts = closed.consts if isinstance(closed, ClosedJaxpr) else None
    if input_names is not None and len(input_names) != len(jaxpr.invars):
        raise ValueError(f"draw: {len(input_names)} input names for {len(jaxpr.invars)} inputs")
    return _Drawing(collapse, max_nodes).run(jaxpr, consts, input_names)


class _Drawing:
    def __init__(self, collapse, max_nodes):
        self.collapse, self.max_nodes = collapse, max_nodes
        self.lines = []              # DOT statements, in order (clusters nest by indentation)
        self.edges = []              # (source id, target id, label, target origin)
        self.kind = {}               # node id -> "input", "const", "eqn", ...
        self.origin = {}             # eqn node id -> Eqn.origin
        self.readers = {}            # input or const node id -> origins of the equations reading it
        self.num_nodes = self.omitted = 0
        self.counter = 0
        self.names = _Names()
        self.indent = 1
        self.enclosing = None        # origin of the equation whose sub-jaxpr is drawn now

    # -------------------- nodes and edges --------------------

    def new_id(self, prefix):
        self.counter += 1
        return f"{prefix}{self.counter}"

    def node(self, prefix, kind, label, **attrs):
        node_id = self.new_id(prefix)
        self.kind[node_id] = kind
        self.num_nodes += 1
        self.emit(f"{node_id} [{_attrs(label=label, **attrs)}]")
        return node_id

    def emit(self, line):
        self.lines.append("  " * self.indent + line)

    def full(self):
        return self.num_nodes >= self.max_nodes

    def connect(self, source, atom, target, target_origin):
        """An edge carrying `atom` from `source` (a node id, or a Literal, drawn as its own node) to `target`."""
        if type(source) is Literal:
            source = self.node("lit", "literal", format_scalar(source.value), shape="plaintext", fontsize="9")
        if source is None:
            return
        if source in self.readers:
            self.readers[source].add(target_origin)
        self.edges.append((source, target, atom.aval.strip_weak_type().str_short(), target_origin))

    # -------------------- jaxprs --------------------

    def run(self, jaxpr, consts, input_names):
        env = {}
        for i, var in enumerate(jaxpr.constvars):
            name = self.names.define(var)
            value = consts[i] if consts is not None else None
            env[var] = self.node("const", "const", _const_label(name, var.aval, value), shape="box",
                                 style="filled,dashed", fillcolor=CONST_COLOR)
            self.readers[env[var]] = set()
        for i, var in enumerate(jaxpr.invars):
            name = self.names.define(var)
            label = name if input_names is None else input_names[i]
            env[var] = self.node("in", "input", label, shape="ellipse", style="filled", fillcolor=INPUT_COLOR)
            self.readers[env[var]] = set()
        outs = self.eqns(jaxpr, env)
        cut_note = None
        if self.omitted:
            cut_note = self.node("note", "note", f"{self.omitted} more equations not drawn (max_nodes="
                                 f"{self.max_nodes}): pass a larger max_nodes, or collapse=True", shape="note")
        for i, (var, source) in enumerate(zip(jaxpr.outvars, outs, strict=True)):
            label = "out" if len(jaxpr.outvars) == 1 else f"out[{i}]"
            out = self.node("out", "output", label, shape="ellipse", style="filled", fillcolor=OUTPUT_COLOR)
            self.connect(cut_note if source is None and type(var) is not Literal else source, var, out, "output")
        return Graph(self.dot(), self.num_nodes, len(self.edges), self.omitted)

    def eqns(self, jaxpr, env):
        """Draw `jaxpr`'s equations, its inputs' sources in `env` (Var -> node id);
        return the sources of its outputs (None where they were cut)."""
        for eqn in jaxpr.eqns:
            if self.full():
                self.omitted += _count_eqns(eqn)
                continue
            subs = [(name, value) for name, value in sorted(eqn.params.items()) if _holds_jaxpr(value)]
            if not subs:
                self.plain(eqn, env)
            elif self.collapse:
                self.plain(eqn, env, note=f"({_count_eqns(eqn) - 1} equations inside)")
            elif eqn.primitive.name in _CALLS and self.opens(eqn, subs):
                self.call(eqn, subs[0][1], env)
            else:
                self.holder(eqn, subs, env)
        return [_source(env, v) for v in jaxpr.outvars]

    def plain(self, eqn, env, note=None):
        """An equation as one box; its outputs' source is that box. An untagged
        equation inside a sub-jaxpr (one a rule built by hand) has its enclosing equation's origin."""
        origin = eqn.origin or self.enclosing
        lines = [eqn.primitive.name, *_param_lines(eqn.params)] + ([note] if note else [])
        style = "filled,rounded" + (",bold" if note else "")
        node_id = self.node("eqn", "eqn", "\n".join(lines), shape="box", style=style,
                            fillcolor=_ORIGIN_COLORS.get(origin, PLAIN_COLOR))
        self.origin[node_id] = origin
        for atom in eqn.invars:
            self.connect(_source(env, atom), atom, node_id, origin)
        for var in eqn.outvars:
            env[var] = node_id
        return node_id

    @staticmethod
    def opens(eqn, subs):
        """Whether a call's operands are its sub-jaxpr's inputs, one for one, and its outputs its outputs."""
        if len(subs) != 1 or not isinstance(subs[0][1], (ClosedJaxpr, Jaxpr)):
            return False
        sub = subs[0][1].jaxpr if isinstance(subs[0][1], ClosedJaxpr) else subs[0][1]
        return (not sub.constvars and len(sub.invars) == len(eqn.invars) and len(sub.outvars) == len(eqn.outvars))

    def cluster(self, label, origin):
        self.emit(f"subgraph {self.new_id('cluster_')} {{")
        self.indent += 1
        outer, self.enclosing = self.enclosing, origin or self.enclosing
        origin = self.enclosing
        color = {"forward": "#3c78d8", "backward": "#cc0000"}.get(origin, "#999999")
        self.emit(f"graph [{_attrs(label=label, style='rounded,dashed', color=color, fontcolor=color)}]")
        return outer

    def end_cluster(self, enclosing):
        self.indent -= 1
        self.emit("}")
        self.enclosing = enclosing

    def call(self, eqn, sub, env):
        """A call drawn open: a cluster around its body, operands wired to their uses inside."""
        jaxpr = sub.jaxpr if isinstance(sub, ClosedJaxpr) else sub
        outer = self.cluster("\n".join([eqn.primitive.name, *_param_lines(eqn.params)]), eqn.origin)
        inner = {}
        for var, atom in zip(jaxpr.invars, eqn.invars, strict=True):
            self.names.define(var)
            inner[var] = _source(env, atom)
        outs = self.eqns(jaxpr, inner)
        self.end_cluster(outer)
        for var, source in zip(eqn.outvars, outs, strict=True):
            env[var] = source

    def holder(self, eqn, subs, env):
        """An equation running sub-jaxprs (branches, loop bodies): a cluster holding
        its box (operands in, results out) and each sub-jaxpr with its own inputs and outputs."""
        outer = self.cluster(eqn.primitive.name, eqn.origin)
        head = self.plain(eqn, env)
        for name, value in subs:
            values = value if isinstance(value, tuple) else (value,)
            for i, sub in enumerate(values):
                label = f"{name}[{i}]" if isinstance(value, tuple) else name
                self.body(label, sub, head, eqn.origin)
        self.end_cluster(outer)

    def body(self, label, sub, head, origin):
        jaxpr = sub.jaxpr if isinstance(sub, ClosedJaxpr) else sub
        outer = self.cluster(label, origin)
        inner = {}
        for var in [*jaxpr.constvars, *jaxpr.invars]:
            if self.full():
                break
            inner[var] = self.node("arg", "arg", self.names.define(var), shape="ellipse", fontsize="9",
                                   style="filled", fillcolor=INPUT_COLOR)
            self.emit(f"{head} -> {inner[var]} [style=dotted, arrowhead=none]")
        outs = self.eqns(jaxpr, inner)
        for i, (var, source) in enumerate(zip(jaxpr.outvars, outs, strict=True)):
            if self.full():
                break
            result = self.node("res", "result", f"{label} out[{i}]", shape="ellipse", fontsize="9",
                               style="filled", fillcolor=OUTPUT_COLOR)
            self.connect(source, var, result, origin)
        self.end_cluster(outer)

    # -------------------- the text --------------------

    def dot(self):
        tagged = {o for o in self.origin.values() if o is not None}
        edges = []
        for source, target, label, target_origin in self.edges:
            attrs = {"label": label}
            if target_origin == "backward" and self.crosses(source):
                attrs.update(label=f"{label}\nresidual", color=RESIDUAL_COLOR, fontcolor=RESIDUAL_COLOR,
                             penwidth="2")
            edges.append(f"  {source} -> {target} [{_attrs(**attrs)}]")
        head = ['digraph jaxpr {',
                '  graph [rankdir=TB, fontname="Helvetica", fontsize=10, labelloc=b]',
                '  node [fontname="Helvetica", fontsize=10]',
                '  edge [fontname="Helvetica", fontsize=8]']
        if tagged:
            legend = "blue: forward  red: backward (transposed)  orange edges: residuals"
            head.append(f"  graph [{_attrs(label=legend)}]")
        return "\n".join([*head, *self.lines, *edges, "}"]) + "\n"

    def crosses(self, source):
        """Whether a value from `source`, read by a backward equation, is a residual:
        computed by the forward part, or an input or constant the forward part reads."""
        if self.kind.get(source) == "eqn":
            return self.origin.get(source) == "forward"
        return "forward" in self.readers.get(source, ())


def _source(env, atom):
    return atom if type(atom) is Literal else env.get(atom)


def _count_eqns(eqn):
    """1 + the equations of its sub-jaxprs, at every depth (a loop, not recursion)."""
    total, pending = 0, [eqn]
    while pending:
        e = pending.pop()
        total += 1
        for value in e.params.values():
            for sub in (value if isinstance(value, tuple) else (value,)):
                if isinstance(sub, (ClosedJaxpr, Jaxpr)):
                    pending.extend(sub.eqns)
    return total


def _param_lines(params):
    lines = []
    for name, value in sorted(params.items()):
        if _holds_jaxpr(value):
            continue
        text = _pp_param(value, 0, None)
        if len(text) > _MAX_PARAM_CHARS:
            text = text[:_MAX_PARAM_CHARS - 3] + "..."
        lines.append(f"{name}={text}")
    return lines


def _const_label(name, aval, value):
    label = f"{name}: {aval.str_short()}"
    if value is not None and getattr(value, "size", 1) <= 4:
        try:
            label += "\n" + np.array2string(np.asarray(value), precision=4, separator=", ")
        except (TypeError, ValueError):  # a value NumPy cannot show (a CuPy array): its type only
            pass
    return label


def _quote(text):
    return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _attrs(**attrs):
    return ", ".join(f"{key}={_quote(value)}" for key, value in attrs.items())
