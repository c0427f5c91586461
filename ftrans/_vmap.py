"""`vmap`: vectorize a function over a batch axis of its arguments.

This module checks and resolves the axes (pytree prefixes, negative axes,
sizes) and names the argument at fault in every error; `interpreters.batching`
does the work.
"""
from __future__ import annotations

import functools

import numpy as np

from ftrans._api_util import _leaf_path, check_callable, check_outputs, child_path_segments, flatten_args
from ftrans.tree_util import _node_entry, _sorted_keys, tree_flatten, tree_unflatten
from interpreters import batching
from ir.errors import api_boundary, at_user_line
from ir.markers import not_mapped
from ir.primitive import as_array


def _is_axis(x):
    return x is None or (isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_)))


def _kind(node):
    """A few words on a pytree node, for structure errors."""
    if node is None:
        return "None"
    if isinstance(node, dict):
        return f"a dict with keys {list(_sorted_keys(node))}"
    if isinstance(node, (tuple, list)):
        return f"a {type(node).__name__} of {len(node)} entries"
    if _node_entry(node) is not None:
        return f"a {type(node).__name__}"
    return "a single value (a leaf)"


def broadcast_prefix(prefix, tree, what, where):
    """One entry per leaf of `tree`: the leaf of `prefix` whose subtree holds it.

    `prefix` is a pytree of axes (ints and None; None is a leaf here, not an
    empty node) with the structure of the top of `tree`: an axis at a node
    applies to every leaf below it. `where` is the name of `tree` in messages
    (e.g. "argument 1"); a mismatch is a ValueError naming the path to it.
    Iterative (an explicit stack), like tree_flatten.
    """
    out = []
    stack = [(prefix, tree, "")]
    while stack:
        axes, node, path = stack.pop()
        if _is_axis(axes):
            out.extend([None if axes is None else int(axes)] * len(tree_flatten(node)[0]))
            continue
        axes_entry = _node_entry(axes)
        if axes_entry is None:
            raise ValueError(at_user_line(
                f"vmap {what} must be made of ints, None, and tuples/lists/dicts of them; "
                f"got {axes!r} for {where}{path}"))
        node_entry = _node_entry(node)
        axes_children, axes_aux = axes_entry[0](axes)
        if node_entry is not None:
            node_children, node_aux = node_entry[0](node)
        if (node_entry is None or type(axes) is not type(node) or axes_aux != node_aux
                or len(axes_children) != len(node_children)):
            raise ValueError(at_user_line(
                f"vmap {what} does not match the structure of {where}{path}: {what} has "
                f"{_kind(axes)} there, but the value is {_kind(node)}. Give {what} one entry "
                "per subtree, or a single int/None for the whole of it"))
        segments = child_path_segments(axes, axes_aux, len(axes_children))
        stack.extend((a, n, path + s) for a, n, s in
                     zip(reversed(list(axes_children)), reversed(list(node_children)), reversed(segments),
                         strict=True))
    return out


def _check_axes_spec(axes, what):
    leaves = tree_flatten(axes, is_leaf=lambda x: x is None)[0]
    bad = [x for x in leaves if not _is_axis(x)]
    if bad:
        raise TypeError(at_user_line(f"vmap {what} must be an int, None, or a tuple/list/dict of them, "
                                     f"got {axes!r}"))


class _Names:
    """Readable names of the flat leaves of several top-level values, built only
    on error (a path costs a walk of its tree)."""

    def __init__(self):
        self.parts = []  # (name, tree, first flat index, number of leaves)
        self.count = 0

    def add(self, name, tree, num_leaves):
        self.parts.append((name, tree, self.count, num_leaves))
        self.count += num_leaves

    def __call__(self, index):
        for name, tree, first, n in self.parts:
            if first <= index < first + n:
                return name + _leaf_path(tree, index - first)
        raise IndexError(index)


@api_boundary
def vmap(fun, in_axes=0, out_axes=0, axis_name=None, axis_size=None):
    """Vectorize `fun` over an axis of its arguments, as JAX's vmap.

    `in_axes`: the axis of each argument that holds the examples: an int
    (negative counts from the end), None (the argument is shared by all
    examples), or a tuple with one such entry per positional argument, nested
    as a pytree prefix of the arguments (tuples, lists, dicts). Keyword
    arguments are mapped over axis 0. `out_axes`: where the batch axis goes in
    each output, likewise (None: the output must not depend on the batch).
    `axis_name`: a name (any hashable; a str here) for the batch axis, over
    which collectives inside `fun` (`ft.lax.psum(x, axis_name)`, ...) act
    across the examples. `axis_size`: the number of examples when no argument
    is mapped.

    Values that do not depend on a mapped argument are computed once, unbatched.
    """
    check_callable(fun, "vmap")
    if isinstance(in_axes, list):  # as JAX: a list at the top is a tuple over the arguments
        in_axes = tuple(in_axes)
    _check_axes_spec(in_axes, "in_axes")
    if not (_is_axis(in_axes) or isinstance(in_axes, tuple)):
        raise TypeError(at_user_line(
            "vmap in_axes must be an int, None, or a tuple with one entry per positional argument "
            f"(entries may be pytrees of ints and None), got {in_axes!r}"))
    _check_axes_spec(out_axes, "out_axes")
    if axis_size is not None and not _is_axis(axis_size):
        raise TypeError(at_user_line(f"vmap axis_size must be a non-negative int or None, got {axis_size!r} "
                                     f"(a {type(axis_size).__name__})"))
    if axis_size is not None and axis_size < 0:
        raise ValueError(at_user_line(f"vmap axis_size must be a non-negative int or None, got {axis_size}"))
    if axis_name is not None and type(axis_name) is not str:
        raise TypeError(at_user_line(f"vmap axis_name must be a str or None, got {axis_name!r} "
                                     f"(a {type(axis_name).__name__})"))

    @functools.wraps(fun)
    @api_boundary
    def vmap_f(*args, **kwargs):
        if isinstance(in_axes, tuple) and len(in_axes) != len(args):
            raise ValueError(at_user_line(
                f"vmap in_axes is a tuple of {len(in_axes)} entries, but the function was called with "
                f"{len(args)} positional arguments: give one entry per argument, or a single int or None"))
        leaves, in_tree, in_avals = flatten_args((*args, kwargs), "vmap")
        names, axes = _Names(), []
        for i, arg in enumerate(args):
            arg_axes = broadcast_prefix(in_axes[i] if isinstance(in_axes, tuple) else in_axes, arg,
                                        "in_axes", f"argument {i}")
            names.add(f"argument {i}", arg, len(arg_axes))
            axes.extend(arg_axes)
        for key in sorted(kwargs):
            kwarg_axes = broadcast_prefix(0, kwargs[key], "in_axes", f"keyword argument {key!r}")
            names.add(f"keyword argument {key!r}", kwargs[key], len(kwarg_axes))
            axes.extend(kwarg_axes)
        in_dims, size = _resolve_in_dims(in_avals, axes, axis_size, names)

        out_box = []  # (output pytree, its treedef), once `fun` has run

        def flat_fun(*tracers):
            *call_args, call_kwargs = tree_unflatten(in_tree, tracers)
            out = fun(*call_args, **call_kwargs)
            out_leaves, out_tree = tree_flatten(out)
            check_outputs(out_leaves, "vmap")
            out_box.append((out, out_tree))
            return out_leaves

        def out_dims(out_avals):
            out = out_box[0][0]
            return _resolve_out_dims(broadcast_prefix(out_axes, out, "out_axes", "output"), out_avals, out)

        results = batching.batch_flat(flat_fun, leaves, in_dims, size, out_dims, axis_name)
        return tree_unflatten(out_box[0][1], [as_array(r) for r in results])
    return vmap_f


def _resolve_in_dims(in_avals, axes, axis_size, names):
    """Non-negative batch dims (or not_mapped) of the flat inputs, and the batch size."""
    in_dims, mapped = [], []
    for i, (aval, axis) in enumerate(zip(in_avals, axes, strict=True)):
        if axis is None:
            in_dims.append(not_mapped)
            continue
        if not -aval.ndim <= axis < aval.ndim:
            allowed = f"in [{-aval.ndim}, {aval.ndim - 1}]" if aval.ndim else "None (it has no axes)"
            raise ValueError(at_user_line(
                f"vmap in_axes={axis} is out of range for {names(i)}, of rank {aval.ndim} "
                f"(shape {aval.shape}): its in_axes must be {allowed}"))
        in_dims.append(axis % aval.ndim)
        mapped.append((i, aval, axis % aval.ndim))
    sizes = {aval.shape[d] for _, aval, d in mapped}
    if axis_size is not None:
        sizes.add(int(axis_size))
    if not sizes:
        raise ValueError(at_user_line(
            "vmap needs at least one mapped argument (an in_axes entry that is not None), "
            "or axis_size to say how many examples there are"))
    if len(sizes) > 1:
        lines = [f"  {names(i)}: size {aval.shape[d]} (axis {d} of shape {aval.shape})" for i, aval, d in mapped]
        if axis_size is not None:
            lines.append(f"  axis_size: {axis_size}")
        raise ValueError(at_user_line(
            "vmap got mapped axes of different sizes; every mapped axis must have the same size:\n"
            + "\n".join(lines)))
    return in_dims, sizes.pop()


def _resolve_out_dims(axes, out_avals, out):
    """Non-negative positions of the batch axis in each output (or not_mapped)."""
    dims = []
    for i, (aval, axis) in enumerate(zip(out_avals, axes, strict=True)):
        if axis is None:
            dims.append(not_mapped)
            continue
        rank = aval.ndim + 1  # the output's rank once batched
        if not -rank <= axis < rank:
            raise ValueError(at_user_line(
                f"vmap out_axes={axis} is out of range for output{_leaf_path(out, i)}: each example's "
                f"value has shape {aval.shape}, so batched it has rank {rank} and out_axes must be "
                f"in [{-rank}, {rank - 1}]"))
        dims.append(axis % rank)
    return dims

