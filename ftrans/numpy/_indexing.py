"""NumPy indexing (`x[...]`) and JAX-style functional updates (`x.at[...].set`).

Every index expression is reduced to at most: a reshape for `None`s, `rev`
for negative steps, one `slice`, a `squeeze` for integer indices, and, when
arrays are used as indices, one normalized `gather` (see ir/primitives/indexing).
Updates reuse the same path: indexing an iota of the positions tells which
elements an index selects, and a scatter writes there.
"""
from __future__ import annotations

import math

import numpy as np

from ftrans.numpy import _elementwise as elementwise
from ftrans.numpy._core import aval_of, concrete_or_none, convert, operands, public, unchanged
from ftrans.numpy._shape import broadcast_to, reshape, stack, transpose
from ir.core import array_module, is_cupy_array
from ir.errors import at_user_line
from ir.primitives import indexing, structural
from ir.tracing import Tracer

_INT64 = np.dtype(np.int64)


def _is_int(entry):
    return isinstance(entry, (int, np.integer)) and not isinstance(entry, (bool, np.bool_))


def _is_array(entry):
    """Whether an index entry is an array: NumPy's, CuPy's or traced."""
    return isinstance(entry, (np.ndarray, Tracer)) or is_cupy_array(entry)


def _concrete_array(value):
    """A concrete index as an array of its own module: CuPy indices stay on the GPU."""
    return value if is_cupy_array(value) else np.asarray(value)


def _as_index_entry(entry):
    if isinstance(entry, list) or _is_array(entry):
        array = np.asarray(entry) if isinstance(entry, list) else entry
        dtype = aval_of(array).dtype
        if dtype.kind == "b" and isinstance(array, Tracer):
            concrete = concrete_or_none(array)
            if concrete is None:
                raise IndexError(at_user_line(
                    "a traced boolean mask cannot index an array (the result's shape would depend "
                    "on its values); use fnp.where(mask, x, other) instead"))
            array = _concrete_array(concrete)
        elif not (dtype.kind in "iub" or (not isinstance(array, Tracer) and array.size == 0)):
            raise IndexError(at_user_line(f"arrays used as indices must be of integer or bool type, got {dtype.name}"))
        return array
    if _is_int(entry) or entry is None or entry is Ellipsis or isinstance(entry, slice):
        return entry
    raise IndexError(at_user_line(f"only integers, slices (`:`), ellipsis (`...`), None and integer "
                                  f"or boolean arrays are valid indices, got {type(entry).__name__}"))


def _consumed_dims(entry):
    if entry is None:
        return 0
    if _is_array(entry) and aval_of(entry).dtype.kind == "b":
        return aval_of(entry).ndim
    return 1


def _expand(index, shape):
    """The index as a list of entries, Ellipsis expanded, bool arrays turned into int arrays;
    and where an Ellipsis standing for no dimension was (or None): NumPy counts it as a
    separation between index arrays all the same."""
    ndim = len(shape)
    entries = [_as_index_entry(e) for e in (index if isinstance(index, tuple) else (index,))]
    if sum(e is Ellipsis for e in entries) > 1:
        raise IndexError(at_user_line("an index can only have a single ellipsis ('...')"))
    used = sum(_consumed_dims(e) for e in entries if e is not Ellipsis)
    if used > ndim:
        raise IndexError(at_user_line(f"too many indices for array: array is {ndim}-dimensional, "
                                      f"but {used} were indexed"))
    ellipsis_at = next((i for i, e in enumerate(entries) if e is Ellipsis), None)
    gap = ellipsis_at if ellipsis_at is not None and used == ndim else None
    if ellipsis_at is not None:
        entries[ellipsis_at:ellipsis_at + 1] = [slice(None)] * (ndim - used)
    else:
        entries += [slice(None)] * (ndim - used)
    expanded, dim, expanded_gap = [], 0, None
    for i, e in enumerate(entries):
        if i == gap:
            expanded_gap = len(expanded)
        if _is_array(e) and not isinstance(e, Tracer) and e.dtype.kind == "b":
            # a mask must match the dims it covers: nonzero() of a shorter one would index silently
            if e.shape != tuple(shape[dim:dim + e.ndim]):
                raise IndexError(at_user_line(f"boolean index of shape {e.shape} did not match the indexed "
                                              f"dimensions {tuple(shape[dim:dim + e.ndim])} (at dimension {dim})"))
            expanded.extend(e.nonzero())
        else:
            expanded.append(e)
        dim += _consumed_dims(e)
    return expanded, expanded_gap


def _insert_new_axes(x, entries):
    """`None` entries become size-1 axes of x, indexed by `:`."""
    if not any(e is None for e in entries):
        return x, entries
    dims = iter(aval_of(x).shape)
    new_shape = [1 if e is None else next(dims) for e in entries]
    return structural.reshape(x, new_shape), [slice(None) if e is None else e for e in entries]


def _slice_plan(shape, entries):
    """rev dims, (start, limit, stride) per dim, for slice and int entries (ints: stride 1, length 1)."""
    reversed_dims, starts, limits, strides = [], [], [], []
    for dim, (n, e) in enumerate(zip(shape, entries)):
        if _is_int(e):
            i = int(e)
            if not -n <= i < n:
                raise IndexError(at_user_line(f"index {i} is out of bounds for axis {dim} with size {n}"))
            i %= n
            starts.append(i), limits.append(i + 1), strides.append(1)
            continue
        if not isinstance(e, slice):  # an index array: this dim is kept whole here
            starts.append(0), limits.append(n), strides.append(1)
            continue
        start, stop, step = (concrete_or_none(v) if isinstance(v, Tracer) else v for v in (e.start, e.stop, e.step))
        if any(v is None and w is not None for v, w in zip((start, stop, step), (e.start, e.stop, e.step))):
            raise IndexError(at_user_line("slice bounds must be concrete integers, not traced values "
                                          "(array shapes are fixed when a function is traced)"))
        start, stop, step = slice(start, stop, step).indices(n)
        length = len(range(start, stop, step))
        if step < 0:
            reversed_dims.append(dim)
            start, step = n - 1 - start, -step
        if length == 0:
            start = 0
        starts.append(start), limits.append(start + (length - 1) * step + 1 if length else 0), strides.append(step)
    return reversed_dims, starts, limits, strides


def _basic(x, entries):
    """Apply the slices and integers of `entries` (dims indexed by arrays stay
    whole; integer dims stay as size-1 dims for the caller to squeeze)."""
    shape = aval_of(x).shape
    reversed_dims, starts, limits, strides = _slice_plan(shape, entries)
    if reversed_dims:
        x = structural.rev(x, reversed_dims)
    if (starts, limits, strides) != ([0] * len(shape), list(shape), [1] * len(shape)):
        x = structural.slice(x, starts, limits, strides)
    return x


def _normalized_index_array(index, size, dim):
    """An index array with negative entries wrapped; concrete ones are bounds-checked."""
    concrete = concrete_or_none(index)
    if concrete is not None:
        concrete = _concrete_array(concrete)
        if concrete.size and (concrete.min() < -size or concrete.max() >= size):
            bad = concrete[(concrete < -size) | (concrete >= size)][0]
            raise IndexError(at_user_line(f"index {bad} is out of bounds for axis {dim} with size {size}"))
        if not isinstance(index, Tracer):
            return np.where(concrete < 0, concrete + size, concrete).astype(np.int64)
    index = convert(index, _INT64)
    return elementwise.where(elementwise.less(index, 0), elementwise.add(index, size), index)


def getitem(x, index, mode="clip"):
    (x,), _, _ = operands("getitem", x)
    entries, gap = _expand(index, aval_of(x).shape)
    x, entries = _insert_new_axes(x, entries)
    advanced = [d for d, e in enumerate(entries) if _is_array(e)]
    if not advanced:  # basic indexing: no gather
        x = _basic(x, entries)
        int_dims = [d for d, e in enumerate(entries) if _is_int(e)]
        return structural.squeeze(x, int_dims) if int_dims else unchanged(x)
    # with an index array present, integers are indices too (NumPy's rule)
    advanced = [d for d, e in enumerate(entries) if not isinstance(e, slice)]
    x = _basic(x, [e if isinstance(e, slice) else slice(None) for e in entries])
    shape = aval_of(x).shape
    arrays = [_normalized_index_array(np.asarray(e) if _is_int(e) else e, shape[d], d)
              for d, e in zip(advanced, [entries[d] for d in advanced])]
    try:
        batch = np.broadcast_shapes(*[aval_of(a).shape for a in arrays])
    except ValueError:  # an IndexError, as NumPy's
        shapes = " ".join(str(aval_of(a).shape) for a in arrays)
        raise IndexError(at_user_line(f"shape mismatch: indexing arrays could not be broadcast "
                                      f"together with shapes {shapes}")) from None
    rest = [d for d in range(len(shape)) if d not in advanced]
    if not any(isinstance(a, Tracer) for a in arrays):  # integers among CuPy arrays join them on the GPU
        xp = array_module(*arrays)
        index_rows = xp.stack([xp.broadcast_to(xp.asarray(a), batch) for a in arrays], axis=-1)
    else:
        index_rows = stack([broadcast_to(a, batch) for a in arrays], axis=-1)
    x = transpose(x, advanced + rest)
    out = indexing.gather(x, index_rows, mode)
    adjacent = (advanced == list(range(advanced[0], advanced[0] + len(advanced)))
                and not (gap is not None and advanced[0] < gap <= advanced[-1]))
    if adjacent and advanced[0] > 0:
        nb, first = len(batch), advanced[0]
        order = list(range(nb, nb + first)) + list(range(nb)) + list(range(nb + first, nb + len(rest)))
        out = transpose(out, order)
    return out


class _IndexUpdateHelper:
    """`x.at[index]`: functional updates, as JAX's `.at` (arrays are never mutated)."""
    __slots__ = ("array",)

    def __init__(self, array):
        self.array = array

    def __getitem__(self, index):
        return _IndexUpdateRef(self.array, index)


class _IndexUpdateRef:
    __slots__ = ("array", "index")

    def __init__(self, array, index):
        self.array, self.index = array, index

    @public
    def get(self):
        return getitem(self.array, self.index)

    @public
    def set(self, values):
        return _scatter(self.array, self.index, values, indexing.scatter)

    @public
    def add(self, values):
        return _scatter(self.array, self.index, values, indexing.scatter_add)


def _scatter(x, index, values, scatter):
    (x,), dtype, _ = operands("at", x)
    shape = aval_of(x).shape
    size = math.prod(shape)
    positions = getitem(structural.reshape(structural.iota(_INT64, (size,)), shape), index, mode="fill")
    target_shape = aval_of(positions).shape
    (values,), _, _ = operands("at", values, dtype=dtype)
    values = broadcast_to(values, target_shape)
    flat = structural.reshape(x, (size,))
    count = math.prod(target_shape)
    updated = scatter(flat, reshape(positions, (count, 1)), reshape(values, (count,)))
    return structural.reshape(updated, shape)


@public
def at(array):
    """`fnp.at(x)[i].set(v)`: `.at` for NumPy arrays, which have no `.at` of their own."""
    return _IndexUpdateHelper(array)


@public
def take(a, indices, axis=None):
    (a,), _, _ = operands("take", a)
    if axis is None:
        return getitem(reshape(a, (-1,)), indices)
    ndim = aval_of(a).ndim
    from ftrans.numpy._core import normalize_axis
    axis = normalize_axis(axis, ndim)
    return getitem(a, (slice(None),) * axis + (indices,))
