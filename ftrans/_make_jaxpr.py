"""`make_jaxpr`: trace a function into its printable jaxpr."""
from __future__ import annotations

import functools
import inspect

from ftrans._api_util import (check_callable, check_outputs, ensure_index_tuple, flatten_args, gc_paused,
                              normalize_argnums, split_static)
from ftrans.tree_util import tree_flatten, tree_unflatten
from ir import passes
from ir.core import ClosedJaxpr
from ir.errors import api_boundary
from ir.tracing import stage


@api_boundary
def make_jaxpr(fun, static_argnums=(), optimize=False):
    """`make_jaxpr(f)(*args)` -> the ClosedJaxpr of `f` at the shapes and dtypes of `args`.

    `str()` of the result prints it as JAX does. Arguments listed in
    `static_argnums` are passed through as Python values, not traced.
    With `optimize=True` the IR passes run on it (`ir.passes.optimize`: constant
    folding, IEEE-exact simplification, CSE and DCE), as they do under `jit`.
    """
    check_callable(fun, "make_jaxpr")
    ensure_index_tuple(static_argnums, "static_argnums", "make_jaxpr")

    @functools.wraps(fun)
    @api_boundary
    def make_jaxpr_f(*args) -> ClosedJaxpr:
        static = normalize_argnums(static_argnums, len(args))
        dynamic, merge = split_static(args, static)
        positions = [i for i in range(len(args)) if i not in static]
        leaves, in_tree, in_avals = flatten_args(dynamic, "make_jaxpr", positions)

        def flat_fun(*tracers):
            out = fun(*merge(tree_unflatten(in_tree, tracers)))
            out_leaves, _ = tree_flatten(out)
            check_outputs(out_leaves, "make_jaxpr")
            return out_leaves

        with gc_paused():  # as under jit: what tracing and the passes allocate all stays alive
            closed = stage(flat_fun, in_avals)
            return passes.optimize(closed) if optimize else closed
    return make_jaxpr_f


@api_boundary
def draw(fun, *args, static_argnums=(), optimize=False, collapse=False, max_nodes=500):
    """A picture of `fun`'s jaxpr at `args`: a Graph whose `.source` is Graphviz DOT
    text (made with no dependency) and which `.render(path, format="svg"|"png")`
    and notebooks draw through Graphviz's `dot` program.

    Inputs are labelled by `fun`'s parameter names. `ft.draw(ft.grad(f), x)` colours
    the forward and the backward (transposed) equations and marks the residuals
    that cross between them. `optimize=True` draws after the IR passes (CSE: each
    shared subexpression once); `collapse=True` draws each equation holding
    sub-jaxprs (jit_call, cond, scan) as one node; past `max_nodes` nodes the rest
    is cut, with a note. See `ir.draw`.
    """
    check_callable(fun, "draw")
    closed = make_jaxpr(fun, static_argnums=static_argnums)(*args)
    return closed.draw(collapse=collapse, optimize=optimize, max_nodes=max_nodes,
                       input_names=_input_names(fun, args, normalize_argnums(static_argnums, len(args))))


def _input_names(fun, args, static):
    """A label per flat input: the parameter's name, with the leaf's index when it holds several."""
    try:
        parameters = list(inspect.signature(fun).parameters.values())
    except (TypeError, ValueError):  # a builtin or a callable without a signature
        parameters = []
    positional = [p.name for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    names = []
    for i, arg in enumerate(args):
        if i in static:
            continue
        name = positional[i] if i < len(positional) else f"args[{i}]"
        leaves = tree_flatten(arg)[0]
        paths = _leaf_paths(arg, name)
        names.extend(paths if len(paths) == len(leaves) else [f"{name}[{j}]" for j in range(len(leaves))])
    return names


def _leaf_paths(tree, name):
    """`name['w']`, `name[0]`, ... for the leaves of dicts, lists and tuples (in tree_flatten's
    order: dicts by sorted key); other pytrees count as one leaf, and the caller then numbers them."""
    paths, pending = [], [(tree, name)]
    while pending:
        node, path = pending.pop()
        if isinstance(node, dict):
            children = [(node[k], f"{path}[{k!r}]") for k in sorted(node)]
        elif isinstance(node, (list, tuple)):
            children = [(v, f"{path}[{i}]") for i, v in enumerate(node)]
        else:
            paths.append(path)
            continue
        pending.extend(reversed(children))
    return paths
