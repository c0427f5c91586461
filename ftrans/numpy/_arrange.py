"""Stacking, splitting, tiling, padding, flipping and the triangular and diagonal
parts of arrays, under NumPy's names.

Where an element's source position is fixed by the shapes alone (pad's edge,
reflect and wrap modes, repeat, roll by a concrete shift, diagonal), the
positions are computed by NumPy itself on an arange (`np.pad(np.arange(n),
...)`) and read with one gather: its transpose is the scatter-add that
differentiates them, and vmap batches it.
"""
from __future__ import annotations

import builtins

import numpy as np

from ftrans.numpy import _elementwise as el
from ftrans.numpy._core import (ShapeMismatchError, as_operand, aval_of, concrete_or_none, convert, normalize_axis, operands, public,
                                result_type, static_int, unchanged)
from ftrans.numpy._creation import arange, zeros
from ftrans.numpy._indexing import getitem
from ftrans.numpy._reductions import sum as _sum
from ftrans.numpy._shape import broadcast_to, concatenate, moveaxis, ravel, reshape, split, stack, swapaxes
from ir.errors import at_user_line
from ir.primitive import as_array
from ir.primitives import elementwise as ew
from ir.primitives import structural
from ir.tracing import Tracer

_INT64 = np.dtype(np.int64)


def _array(name, a):
    return operands(name, a)[0][0]


def _take_positions(a, positions, axis):
    """a[..., positions, ...] along `axis`, positions a concrete integer array."""
    return getitem(a, (slice(None),) * axis + (np.asarray(positions, dtype=_INT64),))


# -------------------- at least n dimensions --------------------

def _atleast(name, ndim, arys, place):
    out = []
    for a in arys:
        a = _array(name, a)
        shape = aval_of(a).shape
        out.append(unchanged(a) if len(shape) >= ndim else reshape(a, place(shape)))
    return out[0] if len(out) == 1 else out


@public
def atleast_1d(*arys):
    return _atleast("atleast_1d", 1, arys, lambda s: (1,))


@public
def atleast_2d(*arys):
    return _atleast("atleast_2d", 2, arys, lambda s: (1,) * (2 - len(s)) + s)


@public
def atleast_3d(*arys):
    # NumPy's: (n,) -> (1, n, 1), (m, n) -> (m, n, 1)
    return _atleast("atleast_3d", 3, arys, lambda s: {0: (1, 1, 1), 1: (1,) + s + (1,), 2: s + (1,)}[len(s)])


# -------------------- stacking and splitting --------------------

def _sequence(name, tup):
    """The arrays of `tup`, promoted together first (Python scalars weak, as concatenate's)."""
    if isinstance(tup, (Tracer, np.ndarray)):
        return [tup[i] for i in range(aval_of(tup).shape[0])]
    arrays = [_array(name, a) for a in tup]
    if not arrays:
        raise ValueError(at_user_line(f"{name}: need at least one array to concatenate"))
    return _promoted(name, arrays)


def _promoted(name, arrays):
    dtype, weak = result_type(*[aval_of(a) for a in arrays], name=name)
    return [convert(a, dtype, weak) for a in arrays]


@public
def vstack(tup, dtype=None):
    arrays = atleast_2d(*_sequence("vstack", tup))
    out = concatenate(arrays if isinstance(arrays, list) else [arrays], axis=0)
    return out if dtype is None else convert(out, np.dtype(dtype))


row_stack = vstack


@public
def hstack(tup, dtype=None):
    arrays = atleast_1d(*_sequence("hstack", tup))
    arrays = arrays if isinstance(arrays, list) else [arrays]
    out = concatenate(arrays, axis=0 if aval_of(arrays[0]).ndim == 1 else 1)
    return out if dtype is None else convert(out, np.dtype(dtype))


@public
def dstack(tup, dtype=None):
    arrays = atleast_3d(*_sequence("dstack", tup))
    out = concatenate(arrays if isinstance(arrays, list) else [arrays], axis=2)
    return out if dtype is None else convert(out, np.dtype(dtype))


@public
def column_stack(tup):
    arrays = []
    for a in _sequence("column_stack", tup):
        a = _array("column_stack", a)
        arrays.append(reshape(a, (-1, 1)) if aval_of(a).ndim < 2 else a)
    return concatenate(arrays, axis=1)


@public
def append(arr, values, axis=None):
    # one promotion of both first (Python scalars stay weak, as in concatenate)
    arr, values = _promoted("append", [_array("append", arr), _array("append", values)])
    if axis is None:
        return concatenate([ravel(arr), ravel(values)], axis=0)
    return concatenate([arr, values], axis=axis)


@public
def array_split(ary, indices_or_sections, axis=0):
    """split, with sections that need not divide the axis: the first n % sections get one more."""
    ary = _array("array_split", ary)
    if aval_of(ary).ndim == 0:
        raise ShapeMismatchError(at_user_line("array_split: a 0-d array has no axis to split"))
    n = aval_of(ary).shape[normalize_axis(axis, aval_of(ary).ndim)]
    if isinstance(indices_or_sections, (int, np.integer)):
        sections = static_int(indices_or_sections, "array_split", "the number of sections")
        if sections <= 0:
            raise ValueError(at_user_line("array_split: number sections must be larger than 0."))
        each, extra = divmod(n, sections)
        sizes = [each + 1] * extra + [each] * (sections - extra)
        indices_or_sections = list(np.cumsum(sizes)[:-1])
    return split(ary, indices_or_sections, axis=axis)


@public
def hsplit(ary, indices_or_sections):
    ary = _array("hsplit", ary)
    return split(ary, indices_or_sections, axis=0 if aval_of(ary).ndim == 1 else 1)


@public
def vsplit(ary, indices_or_sections):
    return split(ary, indices_or_sections, axis=0)


@public
def dsplit(ary, indices_or_sections):
    return split(ary, indices_or_sections, axis=2)


# -------------------- r_ and c_ --------------------

class _AxisConcatenator:
    """NumPy's r_ and c_: slices become aranges (a complex step: linspace), scalars and
    arrays are concatenated along `axis` once raised to `ndmin` dimensions; a leading
    string 'axis[,ndmin[,trans1d]]' sets those (also 'r' and 'c')."""

    def __init__(self, axis, ndmin, trans1d, name):
        self.axis, self.ndmin, self.trans1d, self.name = axis, ndmin, trans1d, name

    def __getitem__(self, key):
        from ftrans.numpy._creation import linspace
        items = list(key) if isinstance(key, tuple) else [key]
        axis, ndmin, trans1d, matrix = self.axis, self.ndmin, self.trans1d, None
        if items and isinstance(items[0], str):
            directive = items.pop(0)
            if directive in ("r", "c"):
                matrix = directive
            else:
                parts = [int(p) for p in directive.split(",")]
                axis = parts[0]
                ndmin = parts[1] if len(parts) > 1 else ndmin
                trans1d = parts[2] if len(parts) > 2 else trans1d
        pieces, item_avals = [], []
        for item in items:
            if isinstance(item, slice):
                start = 0 if item.start is None else item.start
                step = 1 if item.step is None else item.step
                if isinstance(step, complex):
                    piece = linspace(start, item.stop, int(abs(step)))
                else:
                    piece = arange(start, item.stop, step)
                item_avals.append(aval_of(piece))
                piece = self._raise(piece, ndmin, trans1d)
            elif isinstance(item, str):
                raise ValueError(at_user_line(f"{self.name}: a string is only allowed as the first entry"))
            else:
                piece = as_operand(item)
                item_avals.append(aval_of(piece))
                scalar = aval_of(piece).ndim == 0
                piece = self._raise(reshape(_array(self.name, piece), (1,)) if scalar else _array(self.name, piece),
                                    ndmin, trans1d)
            pieces.append(piece)
        # one promotion of the entries as given (a Python scalar weak beside an array, as NumPy's r_)
        dtype, _ = result_type(*item_avals, name=self.name)
        out = concatenate([convert(p, dtype) for p in pieces], axis=axis)
        if matrix is not None:  # np.r_['r', ...] is a row matrix, 'c' a column one
            out = reshape(out, (1, -1)) if matrix == "r" else reshape(out, (-1, 1))
        return out

    @staticmethod
    def _raise(piece, ndmin, trans1d):
        ndim = aval_of(piece).ndim
        if ndim >= ndmin:
            return piece
        shape = aval_of(piece).shape
        extra = ndmin - ndim
        if trans1d < 0:
            trans1d += ndmin
        # NumPy: the piece's dims go where trans1d says among the new ones
        new_shape = (1,) * trans1d + shape + (1,) * (extra - trans1d) if trans1d <= extra else \
            (1,) * extra + shape
        return reshape(piece, new_shape)

    def __len__(self):
        return 0


r_ = _AxisConcatenator(0, 1, -1, "r_")
c_ = _AxisConcatenator(-1, 2, 0, "c_")


# -------------------- meshgrid --------------------

@public
def meshgrid(*xi, copy=True, sparse=False, indexing="xy"):
    if indexing not in ("xy", "ij"):
        raise ValueError(at_user_line(f"meshgrid: indexing must be 'xy' or 'ij', got {indexing!r}"))
    arrays = [ravel(_array("meshgrid", x)) for x in xi]
    n = len(arrays)
    shapes = [[1] * n for _ in arrays]
    for i, a in enumerate(arrays):
        shapes[i][i] = aval_of(a).shape[0]
    if indexing == "xy" and n > 1:
        for s in shapes:
            s[0], s[1] = s[1], s[0]
    grids = [reshape(a, tuple(s)) for a, s in zip(arrays, shapes, strict=True)]
    if sparse:
        return tuple(grids)
    full = tuple(max(s[d] for s in shapes) for d in range(n))
    return tuple(broadcast_to(g, full) for g in grids)  # a tuple, as NumPy 2's


# -------------------- tile, repeat, roll, flip --------------------

@public
def tile(A, reps):
    A = _array("tile", A)
    reps = (static_int(reps, "tile", "reps"),) if not hasattr(reps, "__iter__") else \
        tuple(static_int(r, "tile", "each rep") for r in reps)
    shape = aval_of(A).shape
    ndim = max(len(shape), len(reps))
    shape = (1,) * (ndim - len(shape)) + shape
    reps = (1,) * (ndim - len(reps)) + reps
    A = reshape(A, shape)
    # each axis (n,) becomes (r, n) by broadcasting, then r * n by a reshape
    widened = reshape(A, tuple(d for n in shape for d in (1, n)))
    widened = broadcast_to(widened, tuple(d for r, n in zip(reps, shape, strict=True) for d in (r, n)))
    return reshape(widened, tuple(r * n for r, n in zip(reps, shape, strict=True)))


@public
def repeat(a, repeats, axis=None, *, total_repeat_length=None):
    """numpy.repeat; `repeats` must be concrete (they fix the result's shape), as JAX's
    unless total_repeat_length is given."""
    a = _array("repeat", a)
    if axis is None:
        a, axis = ravel(a), 0
    axis = normalize_axis(axis, aval_of(a).ndim)
    n = aval_of(a).shape[axis]
    counts = concrete_or_none(repeats)
    if counts is None:
        if total_repeat_length is None:
            raise TypeError(at_user_line("repeat: traced repeats need total_repeat_length= (the result's length)"))
        return _traced_repeat(a, repeats, axis, total_repeat_length)
    counts = np.asarray(counts)
    if counts.dtype.kind not in "iub":
        raise TypeError(at_user_line(f"repeat: repeats must be integers, got {counts.dtype}"))
    if (counts < 0).any():
        raise ValueError(at_user_line("repeat: negative dimensions are not allowed"))
    positions = np.repeat(np.arange(n), np.broadcast_to(counts, (n,)) if counts.ndim == 0 else counts)
    if total_repeat_length is not None:  # JAX's: cut, or padded with the array's last element
        length = static_int(total_repeat_length, "repeat", "total_repeat_length")
        tail = [n - 1] * max(0, length - len(positions))
        positions = np.concatenate([positions[:length], np.asarray(tail, dtype=positions.dtype)])
    return _take_positions(a, positions, axis)


def _traced_repeat(a, repeats, axis, length):
    """JAX's: position j of the result holds the element whose cumulative count first exceeds j."""
    from ftrans.numpy._sorting import cumsum, searchsorted
    n = aval_of(a).shape[axis]
    counts = broadcast_to(repeats, (n,))
    bounds = cumsum(counts)
    positions = searchsorted(bounds, arange(length), side="right")
    positions = el.minimum(positions, n - 1)  # past the repeats: the last element, as JAX's
    return getitem(a, (slice(None),) * axis + (positions,))


@public
def roll(a, shift, axis=None):
    a = _array("roll", a)
    if axis is None:
        return reshape(roll(ravel(a), shift, 0), aval_of(a).shape)
    shifts = shift if isinstance(shift, (tuple, list)) else (shift,)
    axes = axis if isinstance(axis, (tuple, list)) else (axis,)
    if len(shifts) == 1 and len(axes) > 1:
        shifts = shifts * len(axes)
    if len(axes) == 1 and len(shifts) > 1:
        axes = axes * len(shifts)
    if len(shifts) != len(axes):
        raise ValueError(at_user_line("roll: 'shift' and 'axis' should be scalars or 1D sequences "
                                      "of the same length"))
    for s, ax in zip(shifts, axes, strict=True):
        ax = normalize_axis(ax, aval_of(a).ndim)
        n = aval_of(a).shape[ax]
        if n == 0:
            continue
        known = concrete_or_none(s)
        if known is not None:
            a = _take_positions(a, np.roll(np.arange(n), int(known)), ax)
        else:  # a traced shift: the positions are computed
            positions = el.mod(el.subtract(arange(n), s), n)
            a = getitem(a, (slice(None),) * ax + (positions,))
    return a


@public
def flip(m, axis=None):
    m = _array("flip", m)
    ndim = aval_of(m).ndim
    if axis is None:
        axes = tuple(range(ndim))
    else:
        axes = tuple(sorted({normalize_axis(ax, ndim) for ax in (axis if isinstance(axis, (tuple, list))
                                                                  else (axis,))}))
    return structural.rev(m, axes) if axes else unchanged(m)


@public
def fliplr(m):
    m = _array("fliplr", m)
    if aval_of(m).ndim < 2:
        raise ValueError(at_user_line("fliplr: the input must be at least 2-d"))
    return flip(m, 1)


@public
def flipud(m):
    m = _array("flipud", m)
    if aval_of(m).ndim < 1:
        raise ValueError(at_user_line("flipud: the input must be at least 1-d"))
    return flip(m, 0)


@public
def rot90(m, k=1, axes=(0, 1)):
    m = _array("rot90", m)
    ndim = aval_of(m).ndim
    if len(axes) != 2 or ndim < 2:
        raise ValueError(at_user_line("rot90: len(axes) must be 2 and the array at least 2-d"))
    a0, a1 = normalize_axis(axes[0], ndim), normalize_axis(axes[1], ndim)
    if a0 == a1:
        raise ValueError(at_user_line("rot90: the axes must be different"))
    k = static_int(k, "rot90", "k") % 4
    if k == 0:
        return unchanged(m)
    if k == 2:
        return flip(flip(m, a0), a1)
    if k == 1:
        return swapaxes(flip(m, a1), a0, a1)
    return flip(swapaxes(m, a0, a1), a1)


# -------------------- pad --------------------

_INDEX_MODES = ("edge", "reflect", "symmetric", "wrap")


def _pad_widths(pad_width, ndim):
    widths = np.asarray(concrete_or_none(pad_width) if isinstance(pad_width, Tracer) else pad_width)
    if widths.dtype.kind not in "iu":
        raise TypeError(at_user_line(f"pad: pad_width must be integers, got {pad_width!r}"))
    try:
        widths = np.broadcast_to(widths, (ndim, 2))
    except ValueError:
        raise ValueError(at_user_line(f"pad: pad_width {pad_width!r} does not fit an array of rank {ndim}")) from None
    if (widths < 0).any():
        raise ValueError(at_user_line("pad: index can't contain negative values"))
    return [tuple(int(v) for v in row) for row in widths]


@public
def pad(array, pad_width, mode="constant", **kwargs):
    """numpy.pad with the modes 'constant' (constant_values), 'edge', 'reflect',
    'symmetric' (reflect_type 'even') and 'wrap'."""
    array = _array("pad", array)
    ndim = aval_of(array).ndim
    widths = _pad_widths(pad_width, ndim)
    if mode == "constant":
        values = kwargs.pop("constant_values", 0)
        _no_more("pad", kwargs)
        return _pad_constant(array, widths, values)
    if mode not in _INDEX_MODES:
        raise NotImplementedError(at_user_line(f"pad: mode {mode!r} is not supported (constant, edge, "
                                               "reflect, symmetric, wrap are)"))
    reflect_type = kwargs.pop("reflect_type", "even")
    _no_more("pad", kwargs)
    if reflect_type != "even":
        raise NotImplementedError(at_user_line("pad: only reflect_type='even' is supported"))
    for axis, (before, after) in enumerate(widths):
        if before == after == 0:
            continue
        n = aval_of(array).shape[axis]
        if n == 0:
            raise ValueError(at_user_line(f"pad: can't extend an empty axis {axis} using modes other than "
                                          "'constant'"))
        positions = np.pad(np.arange(n), (before, after), mode=mode)
        array = _take_positions(array, positions, axis)
    return array


def _no_more(name, kwargs):
    if kwargs:
        raise TypeError(at_user_line(f"{name}: unsupported keyword arguments {sorted(kwargs)}"))


def _pad_constant(array, widths, values):
    dtype = aval_of(array).dtype
    if isinstance(values, Tracer):  # traced (concrete too: an eager grad's), it carries its derivative
        if aval_of(values).ndim:
            raise NotImplementedError(at_user_line("pad: traced constant_values must be a scalar"))
        return structural.pad(array, convert(values, dtype), [(lo, hi, 0) for lo, hi in widths])
    pairs = np.broadcast_to(values, (len(widths), 2))
    if (pairs == pairs.flat[0]).all() if pairs.size else True:
        value = convert(pairs.flat[0] if pairs.size else 0, dtype)
        return structural.pad(array, value, [(lo, hi, 0) for lo, hi in widths])
    for axis, (lo, hi) in enumerate(widths):  # a value per side: one pad per side
        config = [(0, 0, 0)] * len(widths)
        config[axis] = (lo, 0, 0)
        array = structural.pad(array, convert(pairs[axis][0], dtype), config)
        config[axis] = (0, hi, 0)
        array = structural.pad(array, convert(pairs[axis][1], dtype), config)
    return array


# -------------------- differences --------------------

@public
def diff(a, n=1, axis=-1, prepend=None, append=None):
    a = _array("diff", a)
    n = static_int(n, "diff", "n")
    if n < 0:
        raise ValueError(at_user_line(f"diff: order must be non-negative but got {n}"))
    ndim = aval_of(a).ndim
    if ndim == 0:
        raise ValueError(at_user_line("diff requires input that is at least one dimensional"))
    axis = normalize_axis(axis, ndim)
    pieces = []
    for extra, where in ((prepend, "before"), (append, "after")):
        if extra is None:
            pieces.append(None)
            continue
        extra = _array("diff", extra)
        if aval_of(extra).ndim == 0:
            shape = list(aval_of(a).shape)
            shape[axis] = 1
            extra = broadcast_to(extra, tuple(shape))
        pieces.append(extra)
    parts = [p for p in (pieces[0], a, pieces[1]) if p is not None]
    if len(parts) > 1:
        a = concatenate(parts, axis=axis)
    boolean = aval_of(a).dtype.kind == "b"
    for _ in range(n):
        length = aval_of(a).shape[axis]
        if length == 0:
            break
        later = _part(a, axis, 1, length)
        earlier = _part(a, axis, 0, length - 1)
        a = el.not_equal(later, earlier) if boolean else el.subtract(later, earlier)
    return a


def _part(a, axis, start, stop):
    shape = aval_of(a).shape
    return structural.slice(a, [start if d == axis else 0 for d in range(len(shape))],
                            [stop if d == axis else s for d, s in enumerate(shape)])


@public
def ediff1d(ary, to_end=None, to_begin=None):
    flat = ravel(ary)
    if aval_of(flat).dtype.kind == "b":
        raise TypeError(at_user_line("ediff1d: numpy boolean subtract is not supported (as NumPy's)"))
    parts = [] if to_begin is None else [ravel(to_begin)]
    parts.append(diff(flat))
    if to_end is not None:
        parts.append(ravel(to_end))
    dtype = aval_of(_array("ediff1d", flat)).dtype  # NumPy's: the ends are cast to the array's dtype
    return concatenate([convert(_array("ediff1d", p), dtype) for p in parts], axis=0)


# -------------------- triangles and diagonals --------------------

def _upper_mask(shape, k):
    rows = structural.iota(_INT64, shape, 0)
    cols = structural.iota(_INT64, shape, 1)
    return ew.ge(ew.sub(cols, rows), np.int64(k))


@public
def tri(N, M=None, k=0, dtype=None):
    N = static_int(N, "tri", "N")
    M = N if M is None else static_int(M, "tri", "M")
    k = static_int(k, "tri", "k")
    below = ew.bitwise_not(_upper_mask((N, M), k + 1))
    return convert(below, np.dtype(np.float64) if dtype is None else np.dtype(dtype))


def _triangle(name, m, keep):
    m = _array(name, m)
    shape = aval_of(m).shape
    if len(shape) < 2:
        if len(shape) == 1:  # NumPy: a 1-d array is broadcast to its square
            m = broadcast_to(m, (shape[0], shape[0]))
            shape = aval_of(m).shape
        else:
            raise ShapeMismatchError(at_user_line(f"{name}: the input must be at least 1-d"))
    mask = keep(shape[-2:])
    zero = convert(0, aval_of(m).dtype)
    return el.where(mask, m, zero)


@public
def triu(m, k=0):
    return _triangle("triu", m, lambda s: _upper_mask(s, static_int(k, "triu", "k")))


@public
def tril(m, k=0):
    return _triangle("tril", m, lambda s: ew.bitwise_not(_upper_mask(s, static_int(k, "tril", "k") + 1)))


@public
def diagonal(a, offset=0, axis1=0, axis2=1):
    a = _array("diagonal", a)
    ndim = aval_of(a).ndim
    if ndim < 2:
        raise ValueError(at_user_line("diagonal requires an array of at least two dimensions"))
    axis1, axis2 = normalize_axis(axis1, ndim), normalize_axis(axis2, ndim)
    if axis1 == axis2:
        raise ValueError(at_user_line("diagonal: axis1 and axis2 cannot be the same"))
    offset = static_int(offset, "diagonal", "offset")
    a = moveaxis(a, (axis1, axis2), (-2, -1))
    rows, cols = aval_of(a).shape[-2:]
    start_row, start_col = max(-offset, 0), max(offset, 0)
    length = max(0, min(rows - start_row, cols - start_col))
    i = np.arange(length)
    return getitem(a, (Ellipsis, i + start_row, i + start_col))


@public
def diag(v, k=0):
    v = _array("diag", v)
    shape = aval_of(v).shape
    k = static_int(k, "diag", "k")
    if len(shape) == 2:
        return diagonal(v, k)
    if len(shape) != 1:
        raise ValueError(at_user_line("diag: input must be 1- or 2-d"))
    n = shape[0] + abs(k)
    out = zeros((n, n), aval_of(v).dtype)
    i = np.arange(shape[0])
    from ftrans.numpy._indexing import at
    return at(out)[i + max(-k, 0), i + max(k, 0)].set(v)


@public
def diagflat(v, k=0):
    return diag(ravel(v), k)


@public
def trace(a, offset=0, axis1=0, axis2=1, dtype=None):
    return _sum(diagonal(a, offset, axis1, axis2), axis=-1, dtype=dtype)


@public
def kron(a, b):
    a, b = _promoted("kron", [_array("kron", a), _array("kron", b)])
    sa, sb = aval_of(a).shape, aval_of(b).shape
    ndim = max(len(sa), len(sb))
    sa, sb = (1,) * (ndim - len(sa)) + sa, (1,) * (ndim - len(sb)) + sb
    a = reshape(a, tuple(d for n in sa for d in (n, 1)))
    b = reshape(b, tuple(d for n in sb for d in (1, n)))
    return reshape(el.multiply(a, b), tuple(x * y for x, y in zip(sa, sb, strict=True)))



# -------------------- index helpers (static shapes: NumPy's index arrays, as constants) --------------------

def _static_indices(values):
    return tuple(as_array(np.asarray(v)) for v in values)


@public
def tril_indices(n, k=0, m=None):
    """The indices of the lower triangle of an (n, m) array, as numpy.tril_indices."""
    n, k = static_int(n, "tril_indices", "n"), static_int(k, "tril_indices", "k")
    m = n if m is None else static_int(m, "tril_indices", "m")
    return _static_indices(np.tril_indices(n, k, m))


@public
def triu_indices(n, k=0, m=None):
    """The indices of the upper triangle of an (n, m) array, as numpy.triu_indices."""
    n, k = static_int(n, "triu_indices", "n"), static_int(k, "triu_indices", "k")
    m = n if m is None else static_int(m, "triu_indices", "m")
    return _static_indices(np.triu_indices(n, k, m))


def _matrix_shape(name, arr):
    shape = aval_of(as_operand(arr), name).shape
    if len(shape) != 2:
        raise ValueError(at_user_line(f"{name}: the array must be 2-d, got shape {shape}"))
    return shape


@public
def tril_indices_from(arr, k=0):
    n, m = _matrix_shape("tril_indices_from", arr)
    return tril_indices(n, k, m)


@public
def triu_indices_from(arr, k=0):
    n, m = _matrix_shape("triu_indices_from", arr)
    return triu_indices(n, k, m)


@public
def diag_indices(n, ndim=2):
    """The indices of the main diagonal of an (n, ..., n) array of rank ndim, as numpy.diag_indices."""
    n, ndim = static_int(n, "diag_indices", "n"), static_int(ndim, "diag_indices", "ndim")
    return _static_indices(np.diag_indices(n, ndim))


@public
def diag_indices_from(arr):
    shape = aval_of(as_operand(arr), "diag_indices_from").shape
    if len(shape) < 2 or len(set(shape)) != 1:
        raise ValueError(at_user_line(f"diag_indices_from: all dimensions must be of equal length (and at least "
                                      f"2 of them), got shape {shape}"))
    return diag_indices(shape[0], len(shape))


@public
def indices(dimensions, dtype=int, sparse=False):
    """An index grid of `dimensions` (static), as numpy.indices: one array of shape (len, *dimensions), or
    with sparse=True a tuple of broadcastable ones."""
    dimensions = tuple(static_int(d, "indices", "dimensions") for d in dimensions)
    grid = np.indices(dimensions, dtype=np.dtype(dtype), sparse=sparse)
    return tuple(as_array(g) for g in grid) if sparse else as_array(grid)


@public
def vander(x, N=None, increasing=False):
    """The Vandermonde matrix of 1-d x, as numpy.vander: columns x^(N-1), ..., x^0 (increasing: the other
    way), each power the product of the previous one and x, as NumPy's multiply.accumulate."""
    (x,), dtype, _ = operands("vander", x)
    if aval_of(x).ndim != 1:
        raise ValueError(at_user_line(f"vander: x must be 1-d, got {aval_of(x).str_short()}"))
    x = convert(x, np.promote_types(dtype, np.int64))  # NumPy's: float32 becomes float64, bool int64
    n = aval_of(x).shape[0] if N is None else static_int(N, "vander", "N")
    if n == 0:
        return zeros((aval_of(x).shape[0], 0), aval_of(x).dtype)
    columns = [el.add(el.multiply(x, 0), convert(1, aval_of(x).dtype))]
    for _ in range(n - 1):
        columns.append(el.multiply(columns[-1], x))
    if not increasing:
        columns = columns[::-1]
    return stack(columns, axis=1)


@public
def unravel_index(indices, shape):
    """The coordinates in an array of `shape` (static) of flat indices, as numpy.unravel_index (a tuple);
    out-of-range indices are clipped, as jax.numpy's (NumPy raises)."""
    (flat,), dtype, _ = operands("unravel_index", indices)
    if dtype.kind not in "iu":
        raise TypeError(at_user_line(f"unravel_index: indices must be integers, got {dtype.name}"))
    shape = tuple(static_int(d, "unravel_index", "shape") for d in shape)
    size = int(np.prod(shape))
    flat = el.clip(flat, -size, size - 1)
    flat = el.where(el.less(flat, 0), el.add(flat, size), flat)
    coordinates = []
    for d in reversed(shape):
        coordinates.append(el.mod(flat, d))
        flat = el.floor_divide(flat, d)
    return tuple(coordinates[::-1])


@public
def ravel_multi_index(multi_index, dims, mode="raise", order="C"):
    """The flat indices of coordinates in an array of `dims` (static), as numpy.ravel_multi_index
    (C order; mode "clip" or "wrap"; "raise" checks concrete coordinates)."""
    dims = tuple(static_int(d, "ravel_multi_index", "dims") for d in dims)
    if order != "C":
        raise NotImplementedError(at_user_line("ravel_multi_index: only order='C' is supported"))
    if len(multi_index) != len(dims):
        raise ValueError(at_user_line(f"ravel_multi_index: {len(multi_index)} coordinate arrays for {len(dims)} dims"))
    flat = None
    for coordinate, d in zip(multi_index, dims):
        (c,), dtype, _ = operands("ravel_multi_index", coordinate)
        if dtype.kind not in "iu":
            raise TypeError(at_user_line(f"ravel_multi_index: coordinates must be integers, got {dtype.name}"))
        if mode == "clip":
            c = el.clip(c, 0, d - 1)
        elif mode == "wrap":
            c = el.mod(c, d)
        elif mode == "raise":
            value = concrete_or_none(c)
            if value is not None and (np.any(value < 0) or np.any(value >= d)):
                raise ValueError(at_user_line("ravel_multi_index: invalid entry in coordinates array"))
        else:
            raise ValueError(at_user_line(f"ravel_multi_index: mode must be 'raise', 'clip' or 'wrap', got {mode!r}"))
        flat = c if flat is None else el.add(el.multiply(flat, d), c)
    return flat


@public
def block(arrays):
    """An array assembled from nested lists of blocks, as numpy.block: the innermost lists joined along
    the last axis, the next along the one before, ...; every block made of the result's rank by leading
    1s first (the rank: the nesting's depth, or the largest block's)."""
    def depth(x, where):
        if isinstance(x, tuple):
            raise TypeError(at_user_line(f"block: {where} is a tuple; only lists may be nested"))
        if not isinstance(x, list):
            return 0
        if not x:
            raise ValueError(at_user_line(f"block: {where} is an empty list"))
        depths = {depth(e, f"{where}[{i}]") for i, e in enumerate(x)}
        if len(depths) != 1:
            raise ValueError(at_user_line(f"block: the lists in {where} are nested to different depths"))
        return 1 + depths.pop()

    levels = depth(arrays, "arrays")
    leaves = []

    def collect(x, level):
        if level == levels:
            leaves.append(operands("block", x)[0][0])
        else:
            for e in x:
                collect(e, level + 1)
    collect(arrays, 0)
    dtype, _ = result_type(*[aval_of(a) for a in leaves], name="block")  # (Python scalars stay weak, as elsewhere)
    leaves = [convert(a, dtype) for a in leaves]
    rank = builtins.max([levels] + [aval_of(a).ndim for a in leaves])
    blocks = iter(leaves)

    def build(x, level):
        if level == levels:
            a = next(blocks)
            shape = aval_of(a).shape
            return reshape(a, (1,) * (rank - len(shape)) + shape)
        return concatenate([build(e, level + 1) for e in x], axis=-(levels - level))
    return build(arrays, 0) if levels else unchanged(leaves[0])


@public
def resize(a, new_shape):
    """a's elements, repeated in order as often as needed, in an array of new_shape, as numpy.resize
    (zeros where a is empty)."""
    (a,), dtype, _ = operands("resize", a)
    new_shape = (static_int(new_shape, "resize", "new_shape"),) if isinstance(new_shape, (int, np.integer)) else \
        tuple(static_int(d, "resize", "new_shape") for d in new_shape)
    total, size = int(np.prod(new_shape)), aval_of(a).size
    if size == 0 or total == 0:
        return zeros(new_shape, dtype)
    flat = ravel(a)
    copies = -(-total // size)
    repeated = concatenate([flat] * copies) if copies > 1 else flat
    return reshape(getitem(repeated, slice(0, total)), new_shape)


@public
def fill_diagonal(a, val, wrap=False, *, inplace=True):
    """A copy of a with its main diagonal set to val (repeated along it), as numpy.fill_diagonal; arrays
    are immutable, so, as jax.numpy's, it needs inplace=False and returns the result."""
    if inplace:
        raise ValueError(at_user_line("fill_diagonal: arrays are immutable; call it with inplace=False, which "
                                      "returns the filled array"))
    (a,), dtype, _ = operands("fill_diagonal", a)
    shape = aval_of(a).shape
    if len(shape) < 2:
        raise ValueError(at_user_line("fill_diagonal: the array must be at least 2-d"))
    if len(shape) > 2 and len(set(shape)) != 1:
        raise ValueError(at_user_line("fill_diagonal: all dimensions of an array of rank > 2 must be equal"))
    if len(shape) == 2:
        step, end = shape[1] + 1, (None if wrap else shape[1] * shape[1])
    else:
        step, end = 1 + int(np.cumprod(shape[:-1]).sum()), None
    positions = np.arange(int(np.prod(shape)))[:end:step]
    (val,), _, _ = operands("fill_diagonal", val)
    values = resize(convert(val, dtype), (len(positions),))
    from ftrans.numpy._indexing import at
    return reshape(at(ravel(a))[positions].set(values), shape)


@public
def ix_(*args):
    """Open-mesh index arrays, as numpy.ix_: the k-th of n 1-d arguments reshaped to 1s but on axis k
    (a boolean argument's nonzero positions, which need its concrete values)."""
    out = []
    for k, arg in enumerate(args):
        (x,), dtype, _ = operands("ix_", arg)
        if aval_of(x).ndim != 1:
            raise ValueError(at_user_line(f"ix_: each argument must be 1-d, argument {k} is {aval_of(x).str_short()}"))
        if dtype.kind == "b":
            value = concrete_or_none(x)
            if value is None:
                raise TypeError(at_user_line(f"ix_: boolean argument {k} must be concrete (its nonzero positions "
                                             f"give the shape)"))
            x = as_array(np.nonzero(np.asarray(value))[0])
        shape = [1] * len(args)
        shape[k] = aval_of(x).shape[0]
        out.append(reshape(x, tuple(shape)))
    return tuple(out)


@public
def fromfunction(function, shape, *, dtype=float, **kwargs):
    """function(*coordinates) over the index grid of shape, as numpy.fromfunction (the coordinates are
    arrays of dtype, one for each axis)."""
    return function(*indices(shape, dtype=dtype), **kwargs)


@public
def apply_along_axis(func1d, axis, arr, *args, **kwargs):
    """func1d(v, *args, **kwargs) of every 1-d slice v of arr along axis, as numpy.apply_along_axis: the
    slices mapped with vmap (as jax.numpy's), the results' axes where axis was."""
    from ftrans._vmap import vmap
    (arr,), _, _ = operands("apply_along_axis", arr)
    ndim = aval_of(arr).ndim
    axis = normalize_axis(axis, ndim)
    fun = lambda v: func1d(v, *args, **kwargs)  # noqa: E731
    moved = moveaxis(arr, axis, -1)
    for _ in range(ndim - 1):
        fun = vmap(fun)
    out = fun(moved)
    out_ndim = aval_of(out).ndim - (ndim - 1)
    if out_ndim == 0:
        return out
    return moveaxis(out, tuple(range(ndim - 1, ndim - 1 + out_ndim)), tuple(range(axis, axis + out_ndim)))


@public
def apply_over_axes(func, a, axes):
    """func(a, axis) for each axis in turn, as numpy.apply_over_axes: a result of one rank less gets
    its axis back (length 1)."""
    (a,), _, _ = operands("apply_over_axes", a)
    for axis in np.atleast_1d(axes).tolist():
        ndim = aval_of(a).ndim
        result = func(a, normalize_axis(axis, ndim))
        (result,), _, _ = operands("apply_over_axes", result)
        if aval_of(result).ndim == ndim:
            a = result
        elif aval_of(result).ndim == ndim - 1:
            a = reshape(result, aval_of(result).shape[:normalize_axis(axis, ndim)] + (1,)
                        + aval_of(result).shape[normalize_axis(axis, ndim):])
        else:
            raise ValueError(at_user_line("apply_over_axes: the function must keep the array's rank or "
                                          "reduce it by one"))
    return a
