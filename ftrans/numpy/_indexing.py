"""NumPy indexing (`x[...]`) and JAX-style functional updates (`x.at[...].set`).

Every index expression is reduced to at most: a reshape for `None`s, `rev`
for negative steps, one `slice`, a `squeeze` for integer indices, and, when
arrays are used as indices, one normalized `gather` (see ir/primitives/indexing).
Updates reuse the same path: indexing an iota of the positions tells which
elements an index selects, and a scatter writes there.

Out-of-range indices (integers and index arrays; slices clip, as Python's):
`x[i]` and `.at[i]` without a `mode` raise IndexError for a concrete one, and
for a traced one read clamped and drop updates (as JAX under jit). With a
`mode`, as JAX documents it: "promise_in_bounds" reads clamped and drops
updates, "clip" clamps both, "drop" and "fill" drop updates and read
`fill_value`. Negative indices count from the end, unless
`wrap_negative_indices=False` makes them out of range.
"""
from __future__ import annotations

import math

import numpy as np

from ftrans.numpy import _elementwise as elementwise
from ftrans.numpy._core import aval_of, concrete_or_none, convert, operands, public, unchanged
from ftrans.numpy._creation import full_like
from ftrans.numpy._shape import broadcast_to, reshape, stack, transpose
from ir.core import array_module, is_cupy_array
from ir.errors import at_user_line
from ir.primitives import elementwise as ew
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
        if _is_int(e):  # in range and non-negative (see _in_range_integers)
            i = int(e)
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


def _out_of_bounds(index, size, dim):
    return IndexError(at_user_line(f"index {index} is out of bounds for axis {dim} with size {size}"))


class _Bounds:
    """What an index expression does with out-of-range indices: `check`, raise
    IndexError for concrete ones; `read`, the gather mode of what is read
    ("clip" or "fill", with `fill_value`); `wrap`, count negative ones from the end."""
    __slots__ = ("check", "read", "fill_value", "wrap")

    def __init__(self, check=True, read="clip", fill_value=None, wrap=True):
        self.check, self.read, self.fill_value, self.wrap = check, read, fill_value, wrap


_NUMPY_BOUNDS = _Bounds()  # x[i]


def _in_range_integers(entries, shape, bounds):
    """Integer entries as non-negative in-range ints for the slicing path. One out
    of range is an IndexError, or, when `bounds` allow it, a 0-d index array:
    gather then clamps or fills it (NumPy indexes alike with an int and a 0-d array)."""
    resolved = list(entries)
    for dim, (n, e) in enumerate(zip(shape, entries)):
        if not _is_int(e):
            continue
        i = int(e) + (n if bounds.wrap and e < 0 else 0)
        if 0 <= i < n:
            resolved[dim] = i
        elif bounds.check:
            raise _out_of_bounds(int(e), n, dim)
        else:
            resolved[dim] = np.asarray(e, dtype=_INT64)
    return resolved


def _normalized_index_array(index, size, dim, bounds):
    """An index array with negative entries wrapped (when `bounds.wrap`); concrete
    ones are bounds-checked (when `bounds.check`)."""
    lowest = -size if bounds.wrap else 0
    concrete = concrete_or_none(index)
    if concrete is not None:
        concrete = _concrete_array(concrete)
        outside = (concrete < lowest) | (concrete >= size)
        if bounds.check and concrete.size and outside.any():
            raise _out_of_bounds(concrete[outside][0], size, dim)
        if not isinstance(index, Tracer):
            return (np.where(concrete < 0, concrete + size, concrete) if bounds.wrap else concrete).astype(np.int64)
    index = convert(index, _INT64)
    if not bounds.wrap:
        return index
    return elementwise.where(elementwise.less(index, 0), elementwise.add(index, size), index)


def getitem(x, index, bounds=_NUMPY_BOUNDS):
    """x[index], with NumPy's semantics; `bounds` says what out-of-range indices do."""
    (x,), _, _ = operands("getitem", x)
    entries, gap = _expand(index, aval_of(x).shape)
    x, entries = _insert_new_axes(x, entries)
    entries = _in_range_integers(entries, aval_of(x).shape, bounds)
    advanced = [d for d, e in enumerate(entries) if _is_array(e)]
    if not advanced:  # basic indexing: no gather
        x = _basic(x, entries)
        int_dims = [d for d, e in enumerate(entries) if _is_int(e)]
        return structural.squeeze(x, int_dims) if int_dims else unchanged(x)
    # with an index array present, integers are indices too (NumPy's rule)
    advanced = [d for d, e in enumerate(entries) if not isinstance(e, slice)]
    x = _basic(x, [e if isinstance(e, slice) else slice(None) for e in entries])
    shape = aval_of(x).shape
    arrays = [_normalized_index_array(np.asarray(e) if _is_int(e) else e, shape[d], d, bounds)
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
    out = indexing.gather(x, index_rows, bounds.read, bounds.fill_value)
    adjacent = (advanced == list(range(advanced[0], advanced[0] + len(advanced)))
                and not (gap is not None and advanced[0] < gap <= advanced[-1]))
    if adjacent and advanced[0] > 0:
        nb, first = len(batch), advanced[0]
        order = list(range(nb, nb + first)) + list(range(nb)) + list(range(nb + first, nb + len(rest)))
        out = transpose(out, order)
    return out


# -------------------- x.at[index]: functional updates, as JAX's --------------------

# mode -> (how `.get()` reads out-of-range indices, how updates treat them: a
# "fill" read of the positions drops an update; whether a concrete one is an IndexError)
_MODES = {
    None: ("clip", "fill", True),
    "promise_in_bounds": ("clip", "fill", False),
    "clip": ("clip", "clip", False),
    "drop": ("fill", "fill", False),
    "fill": ("fill", "fill", False),
}


def _mode(mode, method):
    if not (mode is None or isinstance(mode, str) and mode in _MODES):
        raise ValueError(at_user_line(f".at[...].{method}: mode must be one of 'promise_in_bounds', "
                                      f"'clip', 'drop', 'fill' (or None), got {mode!r}"))
    return _MODES[mode]


def _fill_value(fill_value, dtype):
    """`.get(mode="fill")`'s fill value as a Python scalar of `dtype`; by default
    JAX's (NaN, the lowest signed or highest unsigned integer, True)."""
    if fill_value is None:  # NB: the gather primitive's own default for bools is False
        return True if dtype.kind == "b" else None
    value = concrete_or_none(fill_value)
    if value is None:
        raise TypeError(at_user_line(".at[...].get: fill_value must be a concrete scalar, not a traced value"))
    if np.ndim(value) != 0:
        raise ValueError(at_user_line(f".at[...].get: fill_value must be a scalar, got shape {np.shape(value)}"))
    try:
        fill = dtype.type(value.item() if hasattr(value, "item") else value).item()
    except (TypeError, ValueError, OverflowError):
        raise ValueError(at_user_line(f".at[...].get: fill_value {value!r} is not a {dtype.name}")) from None
    if dtype.kind == "c":  # the gather's fill is a real scalar (the IR's params are bools, ints and floats)
        if fill.imag != 0:
            raise NotImplementedError(at_user_line(f".at[...].get: a complex fill_value with an imaginary part "
                                                   f"({value!r}) is not supported yet; a real one is"))
        return fill.real
    return fill


class _IndexUpdateHelper:
    """`x.at[index]`: functional updates, as JAX's `.at`. Each method of
    `x.at[index]` returns an updated copy of x; x itself never changes.

    ==============================  ================================
    ``x.at[idx].set(y)``            ``x[idx] = y``
    ``x.at[idx].add(y)``            ``x[idx] += y``
    ``x.at[idx].subtract(y)``       ``x[idx] -= y``
    ``x.at[idx].multiply(y)``       ``x[idx] *= y``
    ``x.at[idx].divide(y)``         ``x[idx] /= y``
    ``x.at[idx].power(y)``          ``x[idx] **= y``
    ``x.at[idx].min(y)``            ``x[idx] = minimum(x[idx], y)``
    ``x.at[idx].max(y)``            ``x[idx] = maximum(x[idx], y)``
    ``x.at[idx].get()``             ``x[idx]``
    ==============================  ================================

    Unlike NumPy's in-place operators, every update at a repeated index applies
    (they add up, multiply, ...; which of several `set`s wins is unspecified).
    Keywords, as JAX's: `mode` for out-of-range indices (see the module
    docstring) and `fill_value` (`get` with mode "fill"); `wrap_negative_indices`;
    `indices_are_sorted` and `unique_indices`, promises that JAX's compiler may
    use and ftrans does not need: the result is the same either way.
    """
    __slots__ = ("array",)

    def __init__(self, array):
        self.array = array

    def __getitem__(self, index):
        return _IndexUpdateRef(self.array, index)

    def __repr__(self):
        return f"_IndexUpdateHelper({self.array!r})"


class _IndexUpdateRef:
    """`x.at[index]`: see _IndexUpdateHelper."""
    __slots__ = ("array", "index")

    def __init__(self, array, index):
        self.array, self.index = array, index

    def __repr__(self):
        return f"_IndexUpdateRef({self.array!r}, {self.index!r})"

    @public
    def get(self, *, indices_are_sorted=False, unique_indices=False, mode=None, fill_value=None,
            wrap_negative_indices=True):
        read, _, check = _mode(mode, "get")
        (x,), dtype, _ = operands("at", self.array)
        fill_value = _fill_value(fill_value, dtype) if read == "fill" else None  # as JAX: ignored otherwise
        return getitem(x, self.index, _Bounds(check, read, fill_value, bool(wrap_negative_indices)))

    @public
    def set(self, values, *, indices_are_sorted=False, unique_indices=False, mode=None,
            wrap_negative_indices=True):
        return _scatter(self.array, self.index, values, indexing.scatter, mode, wrap_negative_indices, "set")

    @public
    def add(self, values, *, indices_are_sorted=False, unique_indices=False, mode=None,
            wrap_negative_indices=True):
        return _scatter(self.array, self.index, values, indexing.scatter_add, mode, wrap_negative_indices, "add")

    @public
    def subtract(self, values, *, indices_are_sorted=False, unique_indices=False, mode=None,
                 wrap_negative_indices=True):
        return _scatter(self.array, self.index, values, _scatter_subtract, mode, wrap_negative_indices, "subtract")

    @public
    def multiply(self, values, *, indices_are_sorted=False, unique_indices=False, mode=None,
                 wrap_negative_indices=True):
        return _scatter(self.array, self.index, values, indexing.scatter_mul, mode, wrap_negative_indices,
                        "multiply")

    mul = multiply

    @public
    def divide(self, values, *, indices_are_sorted=False, unique_indices=False, mode=None,
               wrap_negative_indices=True):
        """x / (ones with the updates multiplied in), as JAX: a true division (floats for integer x)."""
        return elementwise.true_divide(self.array, self._factors(values, mode, wrap_negative_indices, "divide"))

    @public
    def power(self, values, *, indices_are_sorted=False, unique_indices=False, mode=None,
              wrap_negative_indices=True):
        """x ** (ones with the updates multiplied in), as JAX (repeated exponents multiply)."""
        return elementwise.power(self.array, self._factors(values, mode, wrap_negative_indices, "power"))

    @public
    def min(self, values, *, indices_are_sorted=False, unique_indices=False, mode=None,
            wrap_negative_indices=True):
        return _scatter(self.array, self.index, values, indexing.scatter_min, mode, wrap_negative_indices, "min")

    @public
    def max(self, values, *, indices_are_sorted=False, unique_indices=False, mode=None,
            wrap_negative_indices=True):
        return _scatter(self.array, self.index, values, indexing.scatter_max, mode, wrap_negative_indices, "max")

    def _factors(self, values, mode, wrap, method):
        ones = full_like(self.array, 1)
        return _scatter(ones, self.index, values, indexing.scatter_mul, mode, wrap, method)


def _scatter_subtract(operand, indices, updates):
    return indexing.scatter_add(operand, indices, ew.neg(updates))


def _scatter(x, index, values, scatter, mode, wrap, method):
    _, update, check = _mode(mode, method)
    (x,), dtype, _ = operands("at", x)
    shape = aval_of(x).shape
    size = math.prod(shape)
    # which flat positions the index names; an update at a position gathered as out of range is dropped
    positions = getitem(structural.reshape(structural.iota(_INT64, (size,)), shape), index,
                        _Bounds(check, update, None, bool(wrap)))
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
