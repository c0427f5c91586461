"""Argument handling shared by the transformations: static arguments, pytree
flattening, and checking that every leaf is an array (naming the one that is not)."""
from __future__ import annotations

import numpy as np

from ftrans.tree_util import tree_flatten
from ir.core import concrete_aval
from ir.errors import at_user_line
from ir.tracing import Tracer, get_aval


def normalize_argnums(argnums, num_args, what="static_argnums"):
    argnums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    normalized = []
    for i in argnums:
        if not isinstance(i, int) or not -num_args <= i < num_args:
            raise ValueError(at_user_line(f"{what}={argnums!r} does not fit a call with {num_args} "
                                          "positional arguments"))
        normalized.append(i % num_args)
    return tuple(sorted(set(normalized)))


def split_static(args, static_argnums):
    """(dynamic args, a function putting dynamic values back among the static ones)."""
    dynamic = [a for i, a in enumerate(args) if i not in static_argnums]

    def merge(dynamic_values):
        values = iter(dynamic_values)
        return [a if i in static_argnums else next(values) for i, a in enumerate(args)]
    return dynamic, merge


def _leaf_paths(tree):
    """A readable path for each leaf, e.g. ``[1]['w']``, in flattening order."""
    paths, stack = [], [(tree, "")]
    while stack:
        node, path = stack.pop()
        if isinstance(node, dict):
            stack.extend((node[k], f"{path}[{k!r}]") for k in reversed(sorted(node)))
        elif isinstance(node, (list, tuple)):
            stack.extend((v, f"{path}[{i}]") for i, v in reversed(list(enumerate(node))))
        elif node is None:
            continue
        else:
            paths.append(path)
    return paths


def flatten_args(args, what):
    """Flatten positional args; check every leaf is an array-like value."""
    leaves, treedef = tree_flatten(tuple(args))
    avals = []
    for i, leaf in enumerate(leaves):
        try:
            avals.append(get_aval(leaf) if isinstance(leaf, Tracer) else concrete_aval(_as_array_leaf(leaf)))
        except TypeError:
            paths = [f"argument {n}{path}" for n, arg in enumerate(args) for path in _leaf_paths(arg)]
            where = paths[i] if i < len(paths) else f"leaf {i}"
            raise TypeError(at_user_line(
                f"{what}: {where} is a {type(leaf).__name__}, not an array. Arguments must be "
                "pytrees of arrays or numbers; mark other arguments static with static_argnums")) from None
    return leaves, treedef, avals


def _as_array_leaf(leaf):
    if isinstance(leaf, (bool, int, float, np.ndarray, np.generic)):
        return leaf
    if hasattr(leaf, "shape") and hasattr(leaf, "dtype"):
        return leaf
    raise TypeError(type(leaf).__name__)


def check_outputs(leaves, what):
    for i, leaf in enumerate(leaves):
        if not isinstance(leaf, Tracer):
            try:
                _as_array_leaf(leaf)
            except TypeError:
                raise TypeError(at_user_line(f"{what}: output leaf {i} is a {type(leaf).__name__}, "
                                             "not an array; return pytrees of arrays")) from None
