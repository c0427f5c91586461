"""Shape manipulation under NumPy's names."""
from __future__ import annotations

import math

import numpy as np

from ftrans.numpy._core import (ShapeMismatchError, aval_of, convert,
                                normalize_axes, normalize_axis, operands, public, result_type,
                                shape_tuple, static_int, unchanged)
from ftrans.numpy._core import broadcast_shapes as _broadcast_shapes
from ir.errors import at_user_line
from ir.primitives import structural


@public
def reshape(a, shape=None, order="C", *, newshape=None):
    """numpy.reshape; the new shape as NumPy 2.1 names it (`shape`) or as before (`newshape`)."""
    if order != "C":
        raise NotImplementedError(at_user_line("reshape supports order='C' only"))
    if (shape is None) == (newshape is None):
        raise TypeError(at_user_line("reshape: pass the new shape once (as `shape`)"))
    new = list(shape_tuple(shape if newshape is None else newshape, "reshape", allow_unknown=True))
    (a,), _, _ = operands("reshape", a)
    old = aval_of(a).shape
    if -1 in new:
        known = math.prod(n for n in new if n != -1)
        if known == 0 or math.prod(old) % known:
            raise ShapeMismatchError(at_user_line(f"cannot reshape array of shape {old} into shape {tuple(new)}"))
        new[new.index(-1)] = math.prod(old) // known
    if math.prod(new) != math.prod(old):
        raise ShapeMismatchError(at_user_line(f"cannot reshape array of shape {old} into shape {tuple(new)}"))
    return unchanged(a) if tuple(new) == old else structural.reshape(a, new)


@public
def ravel(a):
    return reshape(a, (-1,))


@public
def transpose(a, axes=None):
    (a,), _, _ = operands("transpose", a)
    ndim = aval_of(a).ndim
    if axes is None:
        perm = tuple(reversed(range(ndim)))
    else:
        perm = tuple(normalize_axis(ax, ndim) for ax in axes)
        if sorted(perm) != list(range(ndim)):
            raise ValueError(at_user_line(f"transpose: axes {tuple(axes)} do not match an array of rank {ndim}"))
    return unchanged(a) if perm == tuple(range(ndim)) else structural.transpose(a, perm)


@public
def moveaxis(a, source, destination):
    (a,), _, _ = operands("moveaxis", a)
    ndim = aval_of(a).ndim
    sources = source if isinstance(source, (tuple, list)) else (source,)
    destinations = destination if isinstance(destination, (tuple, list)) else (destination,)
    if len(sources) != len(destinations):
        raise ValueError(at_user_line("moveaxis: `source` and `destination` arguments must have the same "
                                      "number of elements"))
    src = [normalize_axis(ax, ndim, "source") for ax in sources]
    dst = [normalize_axis(ax, ndim, "destination") for ax in destinations]
    if len(set(src)) != len(src) or len(set(dst)) != len(dst):
        raise ValueError(at_user_line(f"moveaxis: repeated axis in {source!r} or {destination!r}"))
    order = [i for i in range(ndim) if i not in src]
    for d, s in sorted(zip(dst, src, strict=True)):  # NumPy's: insert in destination order
        order.insert(d, s)
    return transpose(a, order)


@public
def swapaxes(a, axis1, axis2):
    (a,), _, _ = operands("swapaxes", a)
    ndim = aval_of(a).ndim
    order = list(range(ndim))
    i, j = normalize_axis(axis1, ndim), normalize_axis(axis2, ndim)
    order[i], order[j] = order[j], order[i]
    return transpose(a, order)


@public
def squeeze(a, axis=None):
    (a,), _, _ = operands("squeeze", a)
    shape = aval_of(a).shape
    if axis is None:
        axes = tuple(i for i, n in enumerate(shape) if n == 1)
    else:
        axes = normalize_axes(axis, len(shape))
        if any(shape[i] != 1 for i in axes):
            raise ValueError(at_user_line(f"cannot select an axis to squeeze out which has size "
                                          f"not equal to one (shape {shape}, axis {axis})"))
    return structural.squeeze(a, axes) if axes else unchanged(a)


@public
def expand_dims(a, axis):
    (a,), _, _ = operands("expand_dims", a)
    shape = aval_of(a).shape
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis) if isinstance(axis, (tuple, list)) else None
    if axes is None:
        raise TypeError(at_user_line(f"expand_dims: axis must be an int or a tuple of ints, got {axis!r}"))
    out_ndim = len(shape) + len(axes)
    new_axes = normalize_axes(axes, out_ndim)
    new_shape, rest = [], iter(shape)
    for i in range(out_ndim):
        new_shape.append(1 if i in new_axes else next(rest))
    return structural.reshape(a, new_shape)


@public
def broadcast_to(array, shape):
    (array,), _, _ = operands("broadcast_to", array)
    shape = shape_tuple(shape, "broadcast_to")
    aval = aval_of(array)
    if _broadcast_shapes("broadcast_to", [aval.shape, shape]) != shape:
        raise ShapeMismatchError(at_user_line(f"broadcast_to: cannot broadcast {aval.shape} to {shape}"))
    if aval.shape == shape:
        return unchanged(array)
    lead = len(shape) - aval.ndim
    return structural.broadcast_in_dim(array, shape, range(lead, len(shape)))


def _same_dtype(name, arrays):
    arrays = [operands(name, a)[0][0] for a in arrays]
    dtype, weak = result_type(*[aval_of(a) for a in arrays], name=name)
    return [convert(a, dtype, weak) for a in arrays]


@public
def concatenate(arrays, axis=0):
    arrays = list(arrays)
    if not arrays:
        raise ValueError(at_user_line("need at least one array to concatenate"))
    if axis is None:
        arrays, axis = [ravel(a) for a in arrays], 0
    arrays = _same_dtype("concatenate", arrays)
    avals = [aval_of(a) for a in arrays]
    if any(v.ndim == 0 for v in avals):
        raise ValueError(at_user_line("zero-dimensional arrays cannot be concatenated"))
    ax = normalize_axis(axis, avals[0].ndim)
    for v in avals:
        if v.ndim != avals[0].ndim or v.shape[:ax] + v.shape[ax + 1:] != avals[0].shape[:ax] + avals[0].shape[ax + 1:]:
            shapes = ", ".join(str(w.shape) for w in avals)
            raise ShapeMismatchError(at_user_line(f"concatenate along axis {axis}: shapes {shapes} "
                                                  "must match except along that axis"))
    if len(arrays) == 1:
        return unchanged(arrays[0])
    return structural.concatenate(arrays, ax)


@public
def stack(arrays, axis=0):
    arrays = list(arrays)
    if not arrays:
        raise ValueError(at_user_line("need at least one array to stack"))
    arrays = _same_dtype("stack", arrays)
    shapes = {aval_of(a).shape for a in arrays}
    if len(shapes) != 1:
        raise ShapeMismatchError(at_user_line(f"all input arrays must have the same shape, got {sorted(shapes)}"))
    ax = normalize_axis(axis, len(shapes.pop()) + 1)
    return concatenate([expand_dims(a, ax) for a in arrays], axis=ax)


@public
def split(ary, indices_or_sections, axis=0):
    (ary,), _, _ = operands("split", ary)
    shape = aval_of(ary).shape
    ax = normalize_axis(axis, len(shape))
    n = shape[ax]
    if isinstance(indices_or_sections, (int, np.integer)) or getattr(indices_or_sections, "ndim", None) == 0:
        sections = static_int(indices_or_sections, "split", "the number of sections")
        if sections <= 0 or n % sections:
            raise ValueError(at_user_line(f"array split of an axis of size {n} into {sections} "
                                          "sections does not result in an equal division"))
        bounds = [i * (n // sections) for i in range(sections + 1)]
    elif hasattr(indices_or_sections, "__iter__"):
        indices = [static_int(i, "split", "each index", allow_bool=True) for i in indices_or_sections]
        bounds = [0] + [min(max(i if i >= 0 else i + n, 0), n) for i in indices] + [n]
    else:
        raise TypeError(at_user_line(f"split: indices_or_sections must be an integer or a sequence of "
                                     f"integers, got {indices_or_sections!r}"))
    pieces = []
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        hi = max(lo, hi)
        start = [0] * len(shape)
        limit = list(shape)
        start[ax], limit[ax] = lo, hi
        pieces.append(structural.slice(ary, start, limit))
    return pieces


@public
def shape(a):
    return aval_of(a).shape


@public
def ndim(a):
    return aval_of(a).ndim


@public
def size(a, axis=None):
    """The number of elements, or the length along `axis` (an int or, as NumPy 2.4, a tuple)."""
    aval = aval_of(a)
    if axis is None:
        return aval.size
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    return int(np.prod([aval.shape[normalize_axis(ax, aval.ndim)] for ax in axes], dtype=np.int64))


@public
def broadcast_shapes(*shapes):
    """The shape `shapes` broadcast to, as numpy.broadcast_shapes (a ShapeMismatchError if they do not)."""
    return _broadcast_shapes("broadcast_shapes", [shape_tuple(s, "broadcast_shapes") for s in shapes])


@public
def broadcast_arrays(*args):
    """Each argument broadcast to their common shape, as numpy.broadcast_arrays (a tuple, as NumPy 2's;
    jax.numpy's is a list)."""
    arrays = [operands("broadcast_arrays", a)[0][0] for a in args]
    shape = _broadcast_shapes("broadcast_arrays", [aval_of(a).shape for a in arrays])
    return tuple(broadcast_to(a, shape) for a in arrays)


@public
def matrix_transpose(x):
    """The last two axes swapped, as numpy.matrix_transpose (an array of rank 2 or more)."""
    (x,), _, _ = operands("matrix_transpose", x)
    ndim = aval_of(x).ndim
    if ndim < 2:
        raise ValueError(at_user_line(f"matrix_transpose: the array has rank {ndim}; it needs at least 2"))
    return swapaxes(x, -1, -2)
