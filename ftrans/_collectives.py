"""The collectives of ftrans.lax (psum, pmean, all_gather, ...), as JAX's:
each takes a pytree and an axis name (or a tuple of names, reduced over in
turn) and binds the primitives of ir/primitives/collectives.py."""
from __future__ import annotations

import math

from ftrans.numpy._core import convert, inexact_dtype, operands
from ftrans.tree_util import tree_flatten, tree_map, tree_unflatten
from ir import axis_env
from ir.errors import api_boundary, at_user_line
from ir.primitives import collectives, elementwise, structural
from ir.tracing import get_aval


def _names(axis_name, what):
    names = axis_name if isinstance(axis_name, tuple) else (axis_name,)
    if not names or not all(type(n) is str for n in names):
        raise TypeError(at_user_line(f"{what}: axis_name must be a str or a tuple of str, got {axis_name!r}"))
    for name in names:
        if axis_env.bound_axis(name) is None:
            raise collectives.unbound_axis_error(name, what).with_traceback(None) from None
    return names


def _leaf(x, what):
    (x,), _, _ = operands(what, x)
    return x


def _reducer(bind_one, what):
    def reduce(x, axis_name):
        names = _names(axis_name, what)

        def one(v):
            for name in names:
                v = bind_one(v, name)
            return v
        leaves, tree = tree_flatten(x)
        return tree_unflatten(tree, _fused(names, [_leaf(v, what) for v in leaves], one))
    return reduce


def _fused(names, values, reduce, finish=None):
    """`finish(reduce(v))` (`reduce` of one array, `finish` elementwise) of each of `values`. Over
    processes, the values of each dtype are raveled into one buffer, reduced at once and split back
    (slices and reshapes, which are views): one Allreduce for all of a model's gradients instead of
    one per leaf. Each collective is a rendezvous of every rank, which on a loaded machine costs up to
    a scheduling slice of the last to arrive, and a latency on any network. `finish` runs on each
    leaf's slice, so that its outputs are the leaves themselves (under jit, results are returned
    as they are, where slices of one buffer would be copied: one pass less over all the gradients).
    Under vmap the per-leaf form is kept (nothing to save)."""
    if finish is None:
        def finish(v):
            return v
    if len(values) < 2 or not all(axis_env.bound_axis(name).kind == "process" for name in names):
        return [finish(reduce(v)) for v in values]
    groups = {}
    for k, v in enumerate(values):
        aval = get_aval(v)
        groups.setdefault((aval.dtype, aval.weak_type), []).append(k)
    out = list(values)
    for members in groups.values():
        if len(members) == 1:
            out[members[0]] = finish(reduce(values[members[0]]))
            continue
        shapes = [get_aval(values[k]).shape for k in members]
        sizes = [math.prod(shape) for shape in shapes]
        flat = reduce(structural.concatenate([structural.reshape(values[k], (n,))
                                              for k, n in zip(members, sizes, strict=True)], 0))
        start = 0
        for k, shape, n in zip(members, shapes, sizes, strict=True):
            out[k] = finish(structural.reshape(structural.slice(flat, (start,), (start + n,)), shape))
            start += n
    return out


def _axis_size(names):
    size = 1
    for name in names:
        size *= axis_env.bound_axis(name).size
    return size


@api_boundary
def psum(x, axis_name):
    """The sum over the named axis (every example, or every process, gets it)."""
    return _reducer(collectives.psum, "psum")(x, axis_name)


@api_boundary
def pmax(x, axis_name):
    return _reducer(collectives.pmax, "pmax")(x, axis_name)


@api_boundary
def pmin(x, axis_name):
    return _reducer(collectives.pmin, "pmin")(x, axis_name)


@api_boundary
def pmean(x, axis_name):
    """psum divided by the axis's size; integer inputs give floats, as JAX."""
    names = _names(axis_name, "pmean")
    size = _axis_size(names)

    def converted(v):
        (v,), dtype, weak = operands("pmean", v)
        return convert(v, inexact_dtype(dtype, weak), weak)

    def total(v):
        for name in names:
            v = collectives.psum(v, name)
        return v

    def mean(v):
        aval = get_aval(v)
        return elementwise.div(v, convert(float(size), aval.dtype, aval.weak_type))
    leaves, tree = tree_flatten(x)
    return tree_unflatten(tree, _fused(names, [converted(v) for v in leaves], total, mean))


def _single_name(axis_name, what):
    names = _names(axis_name, what)
    if len(names) != 1:
        raise NotImplementedError(at_user_line(f"{what} over several axis names at once ({axis_name!r})"))
    return names[0]


@api_boundary
def all_gather(x, axis_name, *, axis=0, tiled=False):
    """Every example's (process's) x, stacked along a new axis `axis` (concatenated along it if tiled)."""
    name = _single_name(axis_name, "all_gather")
    return tree_map(lambda v: collectives.all_gather(_leaf(v, "all_gather"), name, _axis(v, axis, tiled, 1),
                                                     bool(tiled)), x)


@api_boundary
def psum_scatter(x, axis_name, *, scatter_dimension=0, tiled=False):
    """psum, of which example (process) i keeps only block i along `scatter_dimension`."""
    name = _single_name(axis_name, "psum_scatter")
    return tree_map(lambda v: collectives.psum_scatter(_leaf(v, "psum_scatter"), name,
                                                       _axis(v, scatter_dimension, True, 0), bool(tiled)), x)


@api_boundary
def ppermute(x, axis_name, perm):
    """Example (process) `dst` receives `x` of `src` for each (src, dst) in perm; the others receive zeros."""
    name = _single_name(axis_name, "ppermute")
    try:
        perm = tuple((int(s), int(d)) for s, d in perm)
    except (TypeError, ValueError):
        raise TypeError(at_user_line(f"ppermute: perm must be (source, destination) pairs of ints, got {perm!r}"))
    size = axis_env.bound_axis(name).size
    if any(not 0 <= i < size for pair in perm for i in pair):
        raise ValueError(at_user_line(f"ppermute: perm {perm} names an index outside axis {name!r} of size {size}"))
    if len({s for s, _ in perm}) != len(perm) or len({d for _, d in perm}) != len(perm):
        raise ValueError(at_user_line(f"ppermute: perm {perm} has a repeated source or destination"))
    return tree_map(lambda v: collectives.ppermute(_leaf(v, "ppermute"), name, perm), x)


@api_boundary
def all_to_all(x, axis_name, split_axis, concat_axis, *, tiled=False):
    """Split `split_axis` into one block per example (process), send block j to j, and
    join what arrives along `concat_axis` (a new axis unless tiled)."""
    name = _single_name(axis_name, "all_to_all")

    def leaf(v):
        v = _leaf(v, "all_to_all")
        return collectives.all_to_all(v, name, _axis(v, split_axis, True, 0), _axis(v, concat_axis, True, 0),
                                      bool(tiled))
    return tree_map(leaf, x)


@api_boundary
def axis_index(axis_name):
    """This example's (process's) index along the named axis, an int32."""
    return collectives.axis_index(_single_name(axis_name, "axis_index"))


def _axis(v, axis, existing, extra):
    """A non-negative axis: of v's axes if `existing`, else of v's rank + `extra` positions."""
    ndim = v.ndim + (0 if existing else extra)
    if type(axis) is not int or not -ndim <= axis < max(ndim, 1):
        raise ValueError(at_user_line(f"axis {axis!r} is out of range for an operand of rank {v.ndim}"))
    return axis % ndim if ndim else 0
