"""`make_jaxpr`: trace a function into its printable jaxpr."""
from __future__ import annotations

import functools

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
