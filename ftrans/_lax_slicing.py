"""ft.lax's slicing: slice, dynamic_slice, dynamic_update_slice and their `_in_dim` forms (JAX's signatures).

Start indices known while tracing (Python ints, concrete arrays) become static `slice` and
`pad` equations; traced ones become a `gather` per sliced axis (dynamic_slice) or one
`scatter` (dynamic_update_slice). As in JAX, a start index is clamped so that the slice
fits: ``start = clip(start, 0, dim - size)``, a negative one counting from the end first.
"""
from __future__ import annotations

import builtins

import numpy as np

from ftrans.numpy._core import aval_of, as_operand, concrete_or_none, convert, operands, result_type, static_int
from ir.errors import api_boundary, at_user_line
from ir.primitives import elementwise as ew
from ir.primitives import indexing, structural
from ir.tracing import Tracer

_INDEX = np.dtype(np.int64)


def _operand(x, name):
    (x,), _, _ = operands(name, x)
    return x


def _promoted(name, *xs):
    """`xs` converted to their common dtype, each keeping its shape."""
    xs = [as_operand(x) for x in xs]
    dtype, weak = result_type(*(aval_of(x, name) for x in xs), name=name)
    return [convert(x, dtype, weak) for x in xs], dtype


def _static_ints(values, name, what, length=None):
    if not hasattr(values, "__len__") or isinstance(values, (str, bytes)):
        raise TypeError(at_user_line(f"{name}: {what} must be a sequence of ints, got {values!r}"))
    ints = tuple(static_int(v, name, f"each entry of {what}") for v in values)
    if length is not None and len(ints) != length:
        raise TypeError(at_user_line(f"{name}: {what} must have one entry per axis of the rank-{length} "
                                     f"operand, got {len(ints)}: {values!r}"))
    return ints


def _start_indices(start_indices, ndim, name):
    """The start indices as a list of scalars (ints or traced integer scalars), one per axis."""
    if isinstance(start_indices, Tracer) or isinstance(start_indices, np.ndarray):
        aval = aval_of(start_indices)
        if aval.ndim != 1:
            raise TypeError(at_user_line(f"{name}: start_indices must be a sequence of scalars or a 1-d array, "
                                         f"got {aval.str_short()}"))
        starts = [start_indices[i] for i in range(aval.shape[0])]
    elif hasattr(start_indices, "__len__") and not isinstance(start_indices, (str, bytes)):
        starts = list(start_indices)
    else:
        raise TypeError(at_user_line(f"{name}: start_indices must be a sequence of scalars, got {start_indices!r}"))
    if len(starts) != ndim:
        raise TypeError(at_user_line(f"{name}: start_indices must have one entry per axis of the rank-{ndim} "
                                     f"operand, got {len(starts)}"))
    out = []
    for s in starts:
        aval = aval_of(s, name)
        if aval.ndim != 0 or aval.dtype.kind not in "iu":
            raise TypeError(at_user_line(f"{name}: each start index must be an integer scalar, "
                                         f"got {aval.str_short()}"))
        value = concrete_or_none(s)
        out.append(int(value) if value is not None else s)
    return out


def _clamped_static(start, dim, size):
    if start < 0:
        start += dim
    return builtins.min(builtins.max(start, 0), dim - size)


def _clamped_traced(start, dim, size):
    """clip(start (+ dim if negative), 0, dim - size), as an int64 scalar tracer."""
    start = convert(start, _INDEX)
    start = ew.select_n(ew.lt(start, np.int64(0)), start, ew.add(start, np.int64(dim)))
    return ew.max(ew.min(start, np.int64(dim - size)), np.int64(0))


@api_boundary
def slice(operand, start_indices, limit_indices, strides=None):
    """operand[start:limit:stride] along every axis (static bounds, as JAX's lax.slice)."""
    operand = _operand(operand, "slice")
    shape = aval_of(operand).shape
    starts = _static_ints(start_indices, "slice", "start_indices", len(shape))
    limits = _static_ints(limit_indices, "slice", "limit_indices", len(shape))
    strides = (1,) * len(shape) if strides is None else _static_ints(strides, "slice", "strides", len(shape))
    for axis, (s, l, st, d) in enumerate(zip(starts, limits, strides, shape)):
        if not 0 <= s <= l <= d or st < 1:
            raise ValueError(at_user_line(f"slice: axis {axis} of size {d} cannot be sliced from {s} to {l} "
                                          f"with stride {st} (need 0 <= start <= limit <= size, stride >= 1)"))
    return structural.slice(operand, starts, limits, strides)


@api_boundary
def slice_in_dim(operand, start_index, limit_index, stride=1, axis=0):
    """operand[start:limit:stride] along `axis`; None and negative bounds as Python's."""
    operand = _operand(operand, "slice_in_dim")
    shape = aval_of(operand).shape
    axis = _axis(axis, len(shape), "slice_in_dim")
    start, limit, stride = builtins.slice(start_index, limit_index).indices(shape[axis])[0:2] + (stride,)
    starts, limits = [0] * len(shape), list(shape)
    starts[axis], limits[axis] = start, builtins.max(limit, start)
    strides = [1] * len(shape)
    strides[axis] = static_int(stride, "slice_in_dim", "stride")
    return slice(operand, starts, limits, strides)


def _axis(axis, ndim, name):
    axis = static_int(axis, name, "axis")
    if not -ndim <= axis < ndim:
        raise ValueError(at_user_line(f"{name}: axis {axis} is out of range for a rank-{ndim} operand"))
    return axis % ndim


@api_boundary
def index_in_dim(operand, index, axis=0, keepdims=True):
    """operand[..., index, ...] along `axis` (static index), keeping the axis if `keepdims`."""
    operand = _operand(operand, "index_in_dim")
    shape = aval_of(operand).shape
    axis = _axis(axis, len(shape), "index_in_dim")
    index = static_int(index, "index_in_dim", "index")
    if not -shape[axis] <= index < shape[axis]:
        raise IndexError(at_user_line(f"index_in_dim: index {index} is out of bounds for axis {axis} "
                                      f"of size {shape[axis]}"))
    index %= shape[axis]
    out = slice_in_dim(operand, index, index + 1, 1, axis)
    return out if keepdims else structural.squeeze(out, (axis,))


@api_boundary
def dynamic_slice(operand, start_indices, slice_sizes):
    """The `slice_sizes` block of `operand` at `start_indices` (scalars that may be traced), clamped to fit."""
    operand = _operand(operand, "dynamic_slice")
    shape = aval_of(operand).shape
    sizes = _static_ints(slice_sizes, "dynamic_slice", "slice_sizes", len(shape))
    for axis, (size, dim) in enumerate(zip(sizes, shape)):
        if not 0 <= size <= dim:
            raise TypeError(at_user_line(f"dynamic_slice: slice size {size} does not fit axis {axis} of size {dim}"))
    starts = _start_indices(start_indices, len(shape), "dynamic_slice")
    static = [_clamped_static(s, d, n) if isinstance(s, int) else 0 for s, d, n in zip(starts, shape, sizes)]
    limits = [s + n if isinstance(t, int) else d for s, n, d, t in zip(static, sizes, shape, starts)]
    out = operand if limits == list(shape) and not any(static) else structural.slice(operand, static, limits)
    for axis, (start, dim, size) in enumerate(zip(starts, shape, sizes)):
        if isinstance(start, int):
            continue
        start = _clamped_traced(start, dim, size)
        indices = ew.add(structural.iota(_INDEX, (size, 1), 0), start)
        moved = _to_front(out, axis)
        out = _from_front(indexing.gather(moved, indices), axis)
    return out


def _to_front(x, axis):
    ndim = aval_of(x).ndim
    return x if axis == 0 else structural.transpose(x, (axis,) + tuple(a for a in range(ndim) if a != axis))


def _from_front(x, axis):
    ndim = aval_of(x).ndim
    if axis == 0:
        return x
    permutation = list(range(1, ndim))
    permutation.insert(axis, 0)
    return structural.transpose(x, tuple(permutation))


@api_boundary
def dynamic_update_slice(operand, update, start_indices):
    """`operand` with the block at `start_indices` (clamped so that `update` fits) replaced by `update`."""
    (operand, update), dtype = _promoted("dynamic_update_slice", operand, update)
    shape, update_shape = aval_of(operand).shape, aval_of(update).shape
    if len(update_shape) != len(shape) or any(u > d for u, d in zip(update_shape, shape)):
        raise TypeError(at_user_line(f"dynamic_update_slice: an update of shape {update_shape} does not fit "
                                     f"an operand of shape {shape}"))
    starts = _start_indices(start_indices, len(shape), "dynamic_update_slice")
    if all(isinstance(s, int) for s in starts):
        lows = [_clamped_static(s, d, n) for s, d, n in zip(starts, shape, update_shape)]
        config = [(lo, d - lo - n, 0) for lo, d, n in zip(lows, shape, update_shape)]
        placed = structural.pad(update, convert(0, dtype), config)
        mask = np.zeros(shape, np.bool_)
        mask[tuple(builtins.slice(lo, lo + n) for lo, n in zip(lows, update_shape))] = True
        return ew.select_n(mask, operand, placed)
    # a traced start: one index row per element of `update`, scattered into place
    columns = []
    for axis, (start, dim, size) in enumerate(zip(starts, shape, update_shape)):
        start = _clamped_traced(start, dim, size) if not isinstance(start, int) \
            else np.int64(_clamped_static(start, dim, size))
        columns.append(ew.add(structural.iota(_INDEX, update_shape + (1,), axis), start))
    indices = structural.concatenate(columns, len(shape)) if len(columns) > 1 else columns[0]
    return indexing.scatter(operand, indices, update)


@api_boundary
def dynamic_slice_in_dim(operand, start_index, slice_size, axis=0):
    """dynamic_slice along one axis: `slice_size` entries from `start_index` (may be traced)."""
    operand = _operand(operand, "dynamic_slice_in_dim")
    shape = aval_of(operand).shape
    axis = _axis(axis, len(shape), "dynamic_slice_in_dim")
    starts, sizes = [0] * len(shape), list(shape)
    starts[axis], sizes[axis] = start_index, slice_size
    return dynamic_slice(operand, starts, sizes)


@api_boundary
def dynamic_index_in_dim(operand, index, axis=0, keepdims=True):
    """operand[..., index, ...] along `axis` with a possibly traced index (clamped)."""
    out = dynamic_slice_in_dim(operand, index, 1, axis)
    axis = _axis(axis, aval_of(out).ndim, "dynamic_index_in_dim")
    return out if keepdims else structural.squeeze(out, (axis,))


@api_boundary
def dynamic_update_slice_in_dim(operand, update, start_index, axis):
    """dynamic_update_slice along one axis."""
    operand = _operand(operand, "dynamic_update_slice_in_dim")
    ndim = aval_of(operand).ndim
    axis = _axis(axis, ndim, "dynamic_update_slice_in_dim")
    starts = [0] * ndim
    starts[axis] = start_index
    return dynamic_update_slice(operand, update, starts)


@api_boundary
def dynamic_update_index_in_dim(operand, update, index, axis):
    """dynamic_update_slice of one index along `axis`; `update` may lack that axis."""
    operand = _operand(operand, "dynamic_update_index_in_dim")
    ndim = aval_of(operand).ndim
    axis = _axis(axis, ndim, "dynamic_update_index_in_dim")
    update = _operand(update, "dynamic_update_index_in_dim")
    update_aval = aval_of(update)
    if update_aval.ndim == ndim - 1:
        shape = update_aval.shape[:axis] + (1,) + update_aval.shape[axis:]
        update = structural.reshape(update, shape)
    return dynamic_update_slice_in_dim(operand, update, index, axis)
