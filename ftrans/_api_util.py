"""Argument handling shared by the transformations: static arguments, pytree
flattening, checking that every leaf is an array (naming the one that is not), and
pausing the garbage collector while a large program is built."""
from __future__ import annotations

import contextlib
import gc

import numpy as np

from ftrans.tree_util import _node_entry, tree_flatten
from ir.core import concrete_aval
from ir.errors import at_user_line
from ir.tracing import Tracer, get_aval, leaked_tracer_error


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


def _leaf_path(tree, index):
    """A readable path to leaf `index` of `tree` (in flattening order), e.g. ``[1]['w']``.

    Walks the tree as `tree_flatten` does (registered classes and namedtuples
    included), keeping parent links and building only the one path asked for,
    so deep trees cost linear time and no recursion.
    """
    stack = [(tree, None)]  # (node, link); link = (parent link, path segment)
    count = 0
    while stack:
        node, link = stack.pop()
        entry = _node_entry(node)
        if entry is None:
            if count == index:
                segments = []
                while link is not None:
                    link, segment = link
                    segments.append(segment)
                return "".join(reversed(segments))
            count += 1
            continue
        children, aux = entry[0](node)
        children = list(children)
        segments = child_path_segments(node, aux, len(children))
        stack.extend((child, (link, segment))
                     for child, segment in zip(reversed(children), reversed(segments), strict=True))
    return None


def child_path_segments(node, aux, count):
    """How each child of a pytree node is named in an error path: ``['k']``, ``.field`` or ``[i]``."""
    if isinstance(node, dict):
        return [f"[{k!r}]" for k in aux]
    if isinstance(node, tuple) and hasattr(node, "_fields"):
        return [f".{name}" for name in node._fields]
    return [f"[{i}]" for i in range(count)]


def flatten_args(args, what, positions=None):
    """Flatten positional args; check every leaf is an array-like value.

    `positions` are the numbers of `args` among the caller's arguments (they
    differ when static arguments were taken out), used to name a bad leaf.
    """
    leaves, treedef = tree_flatten(tuple(args))
    avals = []
    for i, leaf in enumerate(leaves):
        if isinstance(leaf, Tracer) and not leaf._trace.alive:
            raise leaked_tracer_error(leaf)
        try:
            avals.append(get_aval(leaf) if isinstance(leaf, Tracer) else concrete_aval(_as_array_leaf(leaf)))
        except TypeError:
            path = _leaf_path(tuple(args), i)
            where = f"leaf {i}" if path is None else _argument_path(path, positions)
            raise TypeError(at_user_line(
                f"{what}: {where} is a {type(leaf).__name__}, not an array. Arguments must be "
                "pytrees of arrays or numbers; mark other arguments static with static_argnums")) from None
    return leaves, treedef, avals


def _argument_path(path, positions=None):
    """``[1]['w']`` (a path into the tuple of arguments) -> ``argument 1['w']``."""
    number, rest = path[1:].split("]", 1)
    if positions is not None:
        number = positions[int(number)]
    return f"argument {number}{rest}"


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


@contextlib.contextmanager
def gc_paused():
    """Tracing, optimizing and lowering a large program allocate millions of
    objects that all stay alive: the cyclic GC would walk them again and again
    (a third of the compile time at 60,000 equations) and free nothing."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
