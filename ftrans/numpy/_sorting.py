"""Sorting, searching, counting and order statistics, under NumPy's names, on the
`sort` and cumulative primitives (ir/primitives/sorting.py).

sort and argsort are one `sort` equation (argsort sorts an iota along), so they
differentiate by its rules: a sort's tangent is its input's gathered by the
permutation. Complex numbers sort by real part, then imaginary part (NumPy's
order), as two keys. Floats sort as NumPy's and JAX's: NaNs last, and -0.0
equal to 0.0 (ties keep their order: sorts are stable).

Functions whose result's shape depends on values (nonzero, argwhere, unique)
compute with NumPy on concrete arrays and take JAX's `size=` (and
`fill_value=`) under a trace.
"""
from __future__ import annotations

import builtins
import math

import numpy as np

from ftrans.numpy import _elementwise as el
from ftrans.numpy._core import (aval_of, concrete_or_none, convert, normalize_axis, operands, public, result_type,
                                static_int, unchanged)
from ftrans.numpy._creation import arange, full
from ftrans.numpy._indexing import at, getitem
from ftrans.numpy._math import isnan
from ftrans.numpy._reductions import _accumulating_dtype
from ftrans.numpy._reductions import sum as _sum
from ftrans.numpy._shape import broadcast_to, concatenate, moveaxis, ravel, reshape, stack
from ir.errors import ConcretizationError, at_user_line
from ir.primitive import as_array
from ir.primitives import elementwise as ew
from ir.primitives import sorting, structural
from ir.tracing import Tracer

_INT64, _FLOAT64 = np.dtype(np.int64), np.dtype(np.float64)


def _array(name, a):
    return operands(name, a)[0][0]


def _flat_or_axis(a, axis):
    if axis is None:
        return ravel(a), 0
    return a, normalize_axis(axis, aval_of(a).ndim)


def _keys(x):
    """The sort keys of x: itself, or its real and imaginary parts."""
    if aval_of(x).dtype.kind == "c":
        return [ew.real(x), ew.imag(x)]
    return [x]


def _sorted(x, axis, with_indices):
    """(x sorted along axis, and the permutation if `with_indices`); a complex x is sorted as its
    parts, which come back sorted themselves."""
    keys = _keys(x)
    carried = [structural.iota(_INT64, aval_of(x).shape, axis)] if with_indices else []
    outs = sorting.sort(keys + carried, axis, True, len(keys))
    values = outs[0] if len(keys) == 1 else ew.complex(outs[0], outs[1])
    return [values] + outs[len(keys):]


def _check_sort_arguments(name, kind, order):
    if order is not None:
        raise TypeError(at_user_line(f"{name}: order= (structured arrays) is not supported"))
    del kind  # every sort is stable here: the kind of algorithm does not change the result


@public
def sort(a, axis=-1, kind=None, order=None, *, stable=True, descending=False):
    """numpy.sort (and jnp.sort's `descending`): along `axis` (None: flattened)."""
    _check_sort_arguments("sort", kind, order)
    a, axis = _flat_or_axis(_array("sort", a), axis)
    if aval_of(a).ndim == 0:
        raise np.exceptions.AxisError(at_user_line("sort: axis -1 is out of bounds for an array of rank 0"))
    if aval_of(a).size == 0:
        return unchanged(a)
    out = _sorted(a, axis, False)[0]
    return structural.rev(out, (axis,)) if descending else out


@public
def argsort(a, axis=-1, kind=None, order=None, *, stable=True, descending=False):
    """numpy.argsort: the stable order (int64); `descending` as jnp.argsort's, ties still first to last."""
    _check_sort_arguments("argsort", kind, order)
    a = _array("argsort", a)
    if aval_of(a).ndim == 0:  # NumPy's: the order of the one element
        a, axis = reshape(a, (1,)), 0
    a, axis = _flat_or_axis(a, axis)
    if aval_of(a).size == 0:
        return convert(a, _INT64) if aval_of(a).dtype != _INT64 else unchanged(a)
    if not descending:
        return _sorted(a, axis, True)[-1]
    # the stable ascending order of the reversed array, reversed and read as positions of the original
    n = aval_of(a).shape[axis]
    order = _sorted(structural.rev(a, (axis,)), axis, True)[-1]
    return structural.rev(ew.sub(np.int64(n - 1), order), (axis,))


@public
def lexsort(keys, axis=-1):
    """The stable order sorting by the last key first, as numpy.lexsort."""
    keys = [_array("lexsort", k) for k in keys]
    shape = aval_of(keys[0]).shape
    axis = normalize_axis(axis, len(shape))
    ordered = [part for k in reversed(keys) for part in _keys(k)]
    outs = sorting.sort(ordered + [structural.iota(_INT64, shape, axis)], axis, True, len(ordered))
    return outs[-1]


@public
def take_along_axis(arr, indices, axis, mode=None, fill_value=None):
    """arr[..., indices, ...] along `axis`, the other axes broadcast together, as numpy.take_along_axis."""
    arr = _array("take_along_axis", arr)
    indices = _array("take_along_axis", indices)
    if aval_of(indices).dtype.kind not in "iu":
        raise TypeError(at_user_line(f"take_along_axis: indices must be integers, got {aval_of(indices).dtype}"))
    if axis is None:
        if aval_of(indices).ndim != 1:
            raise ValueError(at_user_line("take_along_axis: when axis=None, `indices` must have a single dimension"))
        return getitem(ravel(arr), indices)
    ndim = aval_of(arr).ndim
    if aval_of(indices).ndim != ndim:
        raise ValueError(at_user_line(f"take_along_axis: `indices` and `arr` must have the same number of "
                                      f"dimensions, got {aval_of(indices).ndim} and {ndim}"))
    axis = normalize_axis(axis, ndim)
    index = []
    for d, n in enumerate(aval_of(arr).shape):
        if d == axis:
            index.append(indices)
        else:
            shape = [1] * ndim
            shape[d] = n
            index.append(np.arange(n).reshape(shape))
    if mode is None:
        return getitem(arr, tuple(index))
    return at(arr)[tuple(index)].get(mode=mode, fill_value=fill_value)


# -------------------- searching --------------------

def _before(x, y):
    """x < y in sort order (NaNs last; complex numbers by parts)."""
    kx, ky = _keys(x), _keys(y)
    if len(kx) == 1:
        return _real_before(x, y)
    re_x, im_x = kx
    re_y, im_y = ky
    same_re = ew.bitwise_or(ew.eq(re_x, re_y), ew.bitwise_and(ew.ne(re_x, re_x), ew.ne(re_y, re_y)))
    return ew.bitwise_or(_real_before(re_x, re_y), ew.bitwise_and(same_re, _real_before(im_x, im_y)))


def _real_before(x, y):
    less = ew.lt(x, y)
    if aval_of(x).dtype.kind != "f":
        return less
    return ew.bitwise_or(less, ew.bitwise_and(ew.ne(y, y), ew.eq(x, x)))


@public
def searchsorted(a, v, side="left", sorter=None, *, method="scan"):
    """Where v's elements go in the sorted 1-d `a` (int64), as numpy.searchsorted: a binary
    search of log2(len(a)) + 1 steps, each a gather of a's middle elements."""
    if side not in ("left", "right"):
        raise ValueError(at_user_line(f"searchsorted: side must be 'left' or 'right', got {side!r}"))
    a, v = _array("searchsorted", a), _array("searchsorted", v)
    if aval_of(a).ndim != 1:
        raise ValueError(at_user_line(f"searchsorted: a must be 1-d, got {aval_of(a).str_short()}"))
    (a, v), _, _ = operands("searchsorted", a, v) if aval_of(a).dtype != aval_of(v).dtype else ((a, v), None, None)
    if sorter is not None:
        a = getitem(a, _array("searchsorted", sorter))
    n = aval_of(a).shape[0]
    shape = aval_of(v).shape
    lo = full(shape, 0, _INT64)
    hi = full(shape, n, _INT64)
    for _ in range(n.bit_length()):
        mid = el.floor_divide(el.add(lo, hi), 2)
        middle = getitem(a, el.minimum(mid, n - 1))
        # left: go right of every element before v; right: of every element not after v
        right_of = _before(middle, v) if side == "left" else ew.bitwise_not(_before(v, middle))
        active = el.less(lo, hi)
        lo = el.where(el.logical_and(active, right_of), el.add(mid, 1), lo)
        hi = el.where(el.logical_and(active, el.logical_not(right_of)), mid, hi)
    return lo


@public
def digitize(x, bins, right=False):
    """The bin of each x, as numpy.digitize (bins increasing or decreasing)."""
    x, bins = _array("digitize", x), _array("digitize", bins)
    if aval_of(x).dtype.kind == "c":
        raise TypeError(at_user_line("digitize: x may not be complex"))
    if aval_of(bins).ndim != 1:
        raise ValueError(at_user_line("digitize: bins must be 1-dimensional"))
    n = aval_of(bins).shape[0]
    side = "left" if right else "right"
    if n == 0:
        return full(aval_of(x).shape, 0, _INT64)
    increasing = searchsorted(bins, x, side=side)
    decreasing = el.subtract(np.int64(n), searchsorted(structural.rev(bins, (0,)), x, side=side))
    ascending = el.greater_equal(getitem(bins, n - 1), getitem(bins, 0))
    known = concrete_or_none(ascending)
    if known is not None:
        return increasing if bool(known) else decreasing
    return el.where(ascending, increasing, decreasing)


# -------------------- value-dependent shapes --------------------

def _concrete_input(name, a, size):
    """a's concrete value when the result's shape may be read from it, else None; a
    ConcretizationError when a is traced and no size= was given."""
    value = concrete_or_none(a)
    if value is not None and size is None:
        return np.asarray(value)
    if size is None:
        raise ConcretizationError(at_user_line(
            f"{name}: the size of the result depends on the values of a traced array "
            f"({aval_of(a).str_short()}); pass size= (and fill_value=) to use {name} under a transformation"))
    return None


def _compacted(mask, values, size, fill):
    """values[mask] into a length-`size` array, the rest `fill` (values and mask 1-d)."""
    slot = el.subtract(sorting.cumsum(convert(mask, _INT64), 0, False), np.int64(1))
    slot = el.where(mask, slot, np.int64(size))  # dropped: out of range
    dtype = aval_of(values).dtype
    base = full((size,), convert(fill, dtype), dtype)
    return at(base)[slot].set(values, mode="drop")


@public
def nonzero(a, *, size=None, fill_value=None):
    a = _array("nonzero", a)
    if aval_of(a).ndim == 0:
        raise ValueError(at_user_line("Calling nonzero on 0d arrays is not allowed. Use "
                                      "fnp.atleast_1d(scalar).nonzero() instead."))
    value = _concrete_input("nonzero", a, size)
    if value is not None:
        return tuple(as_array(i) for i in np.nonzero(value))
    size = static_int(size, "nonzero", "size")
    shape = aval_of(a).shape
    flat = ravel(a)
    mask = flat if aval_of(flat).dtype.kind == "b" else el.not_equal(flat, 0)
    positions = _compacted(mask, arange(aval_of(flat).shape[0], dtype=_INT64), size, 0)  # flat, 0 past the end
    found = el.less(arange(size, dtype=_INT64), _sum(mask, dtype=_INT64))
    fills = fill_value if isinstance(fill_value, (tuple, list)) else (fill_value,) * len(shape)
    out = []
    for d, (n, fill) in enumerate(zip(shape, fills, strict=True)):  # the flat positions unravelled
        index = el.mod(el.floor_divide(positions, np.int64(math.prod(shape[d + 1:]))), np.int64(max(n, 1)))
        out.append(index if fill is None else el.where(found, index, convert(fill, _INT64)))
    return tuple(out)


@public
def flatnonzero(a, *, size=None, fill_value=None):
    a = _array("flatnonzero", a)
    value = concrete_or_none(a) if size is None else None
    if value is not None:
        return as_array(np.flatnonzero(value))
    return nonzero(ravel(a), size=size, fill_value=fill_value)[0]


@public
def argwhere(a, *, size=None, fill_value=None):
    a = _array("argwhere", a)
    if aval_of(a).ndim == 0:  # NumPy's: of a 0-d array, (1, 0) or (0, 0)
        value = _concrete_input("argwhere", a, size)
        if value is not None:
            return as_array(np.argwhere(value))
        a = reshape(a, (1,))
        return reshape(nonzero(a, size=size, fill_value=fill_value)[0], (size, 1))[:, :0]
    indices = nonzero(a, size=size, fill_value=fill_value)
    return stack(indices, axis=-1)


@public
def unique(ar, return_index=False, return_inverse=False, return_counts=False, axis=None, *, equal_nan=True,
           size=None, fill_value=None):
    """numpy.unique; under a trace with size= (JAX's): the first `size` unique values in order,
    then `fill_value` (default: the smallest value)."""
    ar = _array("unique", ar)
    value = _concrete_input("unique", ar, size)
    if value is not None and isinstance(ar, Tracer) and axis is None:
        # a concrete tracer (an eager grad's): the sized path, which carries the derivatives
        size, value = len(np.unique(value, equal_nan=equal_nan)), None
    if value is not None or axis is not None:
        if value is None:
            raise NotImplementedError(at_user_line("unique: axis= needs a concrete array"))
        result = np.unique(value, return_index, return_inverse, return_counts, axis=axis, equal_nan=equal_nan)
        return tuple(as_array(r) for r in result) if isinstance(result, tuple) else as_array(result)
    size = static_int(size, "unique", "size")
    flat = ravel(ar)
    n = aval_of(flat).shape[0]
    if n == 0:
        raise ValueError(at_user_line("unique: size= on an empty array has no fill value to take"))
    order = argsort(flat)
    values = getitem(flat, order)
    later, earlier = values[1:], values[:-1]
    differs = el.not_equal(later, earlier)
    if equal_nan and aval_of(values).dtype.kind in "fc":
        differs = el.logical_and(differs, el.logical_not(el.logical_and(isnan(later), isnan(earlier))))
    first = concatenate([full((1,), True, np.bool_), differs])
    fill = getitem(values, 0) if fill_value is None else fill_value
    out = [_compacted(first, values, size, fill)]
    if return_index:  # JAX's fill: the index of the first (smallest) value
        out.append(_compacted(first, order, size, getitem(order, 0)))
    group = el.subtract(sorting.cumsum(convert(first, _INT64), 0, False), np.int64(1))
    if return_inverse:
        inverse = at(full((n,), 0, _INT64))[order].set(group)
        out.append(reshape(inverse, aval_of(ar).shape))
    if return_counts:
        counts = at(full((size,), 0, _INT64))[group].add(np.int64(1), mode="drop")
        out.append(counts)
    return out[0] if len(out) == 1 else tuple(out)


@public
def bincount(x, weights=None, minlength=0, *, length=None):
    """Counts (or sums of weights) of each value of the non-negative integers x, as
    numpy.bincount; under a trace, JAX's length= fixes the result's length (larger values
    are dropped)."""
    x = _array("bincount", x)
    if aval_of(x).ndim != 1:
        raise ValueError(at_user_line(f"bincount: x must be 1-dimensional, got {aval_of(x).str_short()}"))
    if aval_of(x).dtype.kind not in "biu":
        raise TypeError(at_user_line(f"bincount: x must be non-negative integers, got {aval_of(x).str_short()}"))
    minlength = static_int(minlength, "bincount", "minlength")
    if length is None:
        value = concrete_or_none(x)
        if value is None:
            raise ConcretizationError(at_user_line(
                "bincount: the length of the result depends on the values of a traced x; pass length="))
        value = np.asarray(value)
        if value.size and value.min() < 0:
            raise ValueError(at_user_line("bincount: x must be non-negative"))
        length = max(minlength, int(value.max()) + 1 if value.size else 0)
    else:
        length = static_int(length, "bincount", "length")
    if weights is None:
        return at(full((length,), 0, _INT64))[x].add(np.int64(1), mode="drop")
    (weights,), w_dtype, _ = operands("bincount", weights)
    dtype = w_dtype if w_dtype.kind == "c" else _FLOAT64  # NumPy's: weights are summed as float64
    return at(full((length,), 0, dtype))[x].add(convert(weights, dtype), mode="drop")


# -------------------- cumulative --------------------

def _cumulative(name, binder, complex_binder, accumulates):
    @public
    def fun(a, axis=None, dtype=None, out=None):
        if out is not None:
            raise TypeError(at_user_line(f"{name}: out= is not supported (arrays are immutable)"))
        a, axis = _flat_or_axis(_array(name, a), axis)
        a_dtype = aval_of(a).dtype
        target = np.dtype(dtype) if dtype is not None else (_accumulating_dtype(a_dtype) if accumulates else a_dtype)
        if aval_of(a).ndim == 0:
            a = reshape(a, (1,))
        if target != a_dtype:
            a = convert(a, target)
        if target.kind == "c":
            return complex_binder(a, axis)
        return binder(a, axis, False)
    fun.__name__ = fun.__qualname__ = name
    fun.__doc__ = f"numpy.{name}: along `axis` (None: flattened), integers accumulated as NumPy's."
    return fun


def _complex_cumsum(a, axis):
    return ew.complex(sorting.cumsum(ew.real(a), axis, False), sorting.cumsum(ew.imag(a), axis, False))


def _scan(combine):
    """The inclusive scan with `combine` by log2(n) steps (Hillis-Steele), for what the
    cumulative primitives do not take (complex products)."""
    def scan(a, axis):
        n = aval_of(a).shape[axis]
        step = 1
        while step < n:
            shape = aval_of(a).shape
            head = structural.slice(a, [0] * len(shape), [step if d == axis else s for d, s in enumerate(shape)])
            earlier = structural.slice(a, [0] * len(shape), [n - step if d == axis else s for d, s in enumerate(shape)])
            later = structural.slice(a, [step if d == axis else 0 for d in range(len(shape))], list(shape))
            a = structural.concatenate([head, combine(earlier, later)], axis)
            step *= 2
        return a
    return scan


def _no_complex(name):
    def refuse(a, axis):
        raise TypeError(at_user_line(f"{name} is not defined for complex numbers"))
    return refuse


cumsum = _cumulative("cumsum", sorting.cumsum, _complex_cumsum, accumulates=True)
cumprod = _cumulative("cumprod", sorting.cumprod, _scan(ew.mul), accumulates=True)
cummax = _cumulative("cummax", sorting.cummax, _no_complex("cummax"), accumulates=False)
cummin = _cumulative("cummin", sorting.cummin, _no_complex("cummin"), accumulates=False)
cumulative_sum = cumsum
cumulative_prod = cumprod


@public
def nancumsum(a, axis=None, dtype=None, out=None):
    (a,), a_dtype, _ = operands("nancumsum", a)
    if a_dtype.kind in "fc":
        a = el.where(isnan(a), convert(0, a_dtype), a)
    return cumsum(a, axis=axis, dtype=dtype, out=out)


@public
def nancumprod(a, axis=None, dtype=None, out=None):
    (a,), a_dtype, _ = operands("nancumprod", a)
    if a_dtype.kind in "fc":
        a = el.where(isnan(a), convert(1, a_dtype), a)
    return cumprod(a, axis=axis, dtype=dtype, out=out)


# -------------------- order statistics --------------------

_METHODS = ("linear", "lower", "higher", "nearest", "midpoint")


def _along_last(a, axis):
    """a with the reduced axes moved last and merged into one; the kept shape; the axes."""
    ndim = aval_of(a).ndim
    if axis is None:
        axes = tuple(range(ndim))
    else:
        axes = tuple(sorted({normalize_axis(ax, ndim) for ax in (axis if isinstance(axis, (tuple, list))
                                                                  else (axis,))}))
    kept = [d for d in range(ndim) if d not in axes]
    moved = moveaxis(a, axes, tuple(range(ndim - len(axes), ndim))) if axes else a
    kept_shape = tuple(aval_of(a).shape[d] for d in kept)
    return reshape(moved, kept_shape + (-1,)), kept_shape, axes


def _keepdims_shape(shape, axes, q_shape):
    return q_shape + tuple(1 if d in axes else n for d, n in enumerate(shape))


def _quantile(name, a, q, axis, method, keepdims):
    if method not in _METHODS:
        raise ValueError(at_user_line(f"{name}: method {method!r} is not supported ({', '.join(_METHODS)} are)"))
    (a,), dtype, _ = operands(name, a)
    if dtype.kind == "c":
        raise TypeError(at_user_line(f"{name}: complex numbers have no order statistics"))
    if dtype.kind == "b":  # NumPy's interpolation subtracts them
        raise TypeError(at_user_line(f"{name}: bools have no interpolation (numpy boolean subtract is not supported)"))
    (q,), _, _ = operands(name, q)
    # NumPy's dtype: of a and q together, each taken as an array (a Python scalar is not weak here)
    a, q = _strong(a), _strong(q)
    dtype, _ = result_type(aval_of(a), aval_of(q), name=name)
    if dtype.kind != "f":
        dtype = _FLOAT64
    a = convert(a, dtype)
    known = concrete_or_none(q)
    if known is not None and not np.all((np.asarray(known) >= 0) & (np.asarray(known) <= 1)):
        raise ValueError(at_user_line(f"{name}: quantiles must be in the range [0, 1]"
                                      + (" (percentiles in [0, 100])" if name == "percentile" else "")))
    q = convert(q, dtype)
    shape = aval_of(a).shape
    flat, kept_shape, axes = _along_last(a, axis)
    n = aval_of(flat).shape[-1]
    if n == 0:
        raise ValueError(at_user_line(f"{name}: the reduced axes are empty"))
    s = sort(flat, axis=-1)
    q_shape = aval_of(q).shape
    position = el.multiply(q, float(n - 1))  # NumPy's virtual index for the linear family
    below = el.floor(position)
    lo = convert(el.clip(below, 0, n - 1), _INT64)
    hi = convert(el.clip(el.add(below, 1), 0, n - 1), _INT64)
    gamma = el.subtract(position, below)

    def pick(index):  # s[..., index] for each q: shape q_shape + kept_shape
        taken = getitem(s, (Ellipsis, reshape(index, (-1,))))  # kept_shape + (q count,)
        taken = moveaxis(taken, -1, 0)
        return reshape(taken, q_shape + kept_shape)

    def per_q(x):  # a q-shaped value beside q_shape + kept_shape
        return reshape(x, q_shape + (1,) * len(kept_shape))

    if method == "lower":
        result = pick(lo)
    elif method == "higher":
        result = pick(convert(el.clip(el.ceil(position), 0, n - 1), _INT64))
    elif method == "nearest":
        from ftrans.numpy._math import rint
        result = pick(convert(el.clip(rint(position), 0, n - 1), _INT64))
    else:
        low, high = pick(lo), pick(hi)
        if method == "midpoint":
            gamma = el.where(el.equal(gamma, 0), gamma, convert(0.5, dtype))
        t = per_q(gamma)
        step = el.subtract(high, low)
        # NumPy's lerp: from the nearer end, so that t = 1 gives `high` exactly
        result = el.where(el.greater_equal(t, 0.5), el.subtract(high, el.multiply(step, el.subtract(1, t))),
                          el.add(low, el.multiply(step, t)))
    # NumPy's: a NaN in the slice makes its statistics NaN (sorted last: the last element tells)
    has_nan = isnan(getitem(s, (Ellipsis, n - 1)))
    result = el.where(broadcast_to(has_nan, aval_of(result).shape), convert(np.nan, dtype), result)
    if keepdims:
        result = reshape(result, _keepdims_shape(shape, axes, q_shape))
    return result


def _strong(x):
    aval = aval_of(x)
    if not aval.weak_type:
        return x
    if isinstance(x, Tracer):
        return ew.convert_element_type(x, aval.dtype, False)
    return np.asarray(x)


@public
def quantile(a, q, axis=None, out=None, overwrite_input=False, method="linear", keepdims=False, *,
             interpolation=None):
    if out is not None:
        raise TypeError(at_user_line("quantile: out= is not supported (arrays are immutable)"))
    return _quantile("quantile", a, q, axis, interpolation or method, keepdims)


@public
def percentile(a, q, axis=None, out=None, overwrite_input=False, method="linear", keepdims=False, *,
               interpolation=None):
    if out is not None:
        raise TypeError(at_user_line("percentile: out= is not supported (arrays are immutable)"))
    (q,), dtype, _ = operands("percentile", q)
    return _quantile("percentile", a, el.true_divide(q, 100), axis, interpolation or method, keepdims)


@public
def median(a, axis=None, out=None, overwrite_input=False, keepdims=False):
    """numpy.median: the middle element, or the mean of the two middle ones."""
    if out is not None:
        raise TypeError(at_user_line("median: out= is not supported (arrays are immutable)"))
    (a,), dtype, _ = operands("median", a)
    if dtype.kind not in "fc":  # complex numbers: in sort order (by real part, then imaginary)
        a, dtype = convert(a, _FLOAT64), _FLOAT64
    shape = aval_of(a).shape
    flat, kept_shape, axes = _along_last(a, axis)
    n = aval_of(flat).shape[-1]
    if n == 0:
        raise ValueError(at_user_line("median: the reduced axes are empty"))
    s = sort(flat, axis=-1)
    middle = getitem(s, (Ellipsis, n // 2))
    if n % 2 == 0:
        middle = el.true_divide(el.add(getitem(s, (Ellipsis, n // 2 - 1)), middle), convert(2, dtype))
    has_nan = isnan(getitem(s, (Ellipsis, n - 1)))
    result = el.where(has_nan, convert(np.nan, dtype), middle)
    if keepdims:
        result = reshape(result, _keepdims_shape(shape, axes, ()))
    return result


@public
def nanmedian(a, axis=None, out=None, overwrite_input=False, keepdims=False):
    """median of the non-NaN elements: NaNs sort last, so the middle of the first `count` ones."""
    (a,), dtype, _ = operands("nanmedian", a)
    if dtype.kind not in "fc":
        return median(a, axis=axis, keepdims=keepdims)
    shape = aval_of(a).shape
    flat, kept_shape, axes = _along_last(a, axis)
    s = sort(flat, axis=-1)
    count = _count_not_nan(s)
    upper = el.floor_divide(count, 2)
    lower = el.where(el.equal(el.mod(count, 2), 0), el.subtract(upper, 1), upper)
    pick = lambda i: take_along_axis(s, reshape(el.maximum(i, 0), kept_shape + (1,)), -1)[..., 0]  # noqa: E731
    result = el.true_divide(el.add(pick(lower), pick(upper)), convert(2, dtype))
    result = el.where(el.equal(count, 0), convert(np.nan, dtype), result)
    if keepdims:
        result = reshape(result, _keepdims_shape(shape, axes, ()))
    return result


def _count_not_nan(s):
    return _sum(el.logical_not(isnan(s)), axis=-1)



@public
def sort_complex(a):
    """a sorted by real part, then imaginary part, as complex numbers, as numpy.sort_complex (int8,
    int16 and their unsigned kinds become complex64, the rest complex128, complex64 stays)."""
    (a,), dtype, _ = operands("sort_complex", a)
    s = sort(a, axis=-1)
    if dtype.kind == "c":
        return s
    return convert(s, np.dtype(np.complex64) if dtype.char in "bhBH" else np.dtype(np.complex128))


@public
def partition(a, kth, axis=-1):
    """a with its kth element (along axis) where a sort would put it, smaller ones before and larger after,
    as numpy.partition; here the whole axis is sorted, which is one such arrangement (NumPy's own order
    within each side is unspecified)."""
    (a,), _, _ = operands("partition", a)
    _check_kth("partition", a, kth, axis)
    return sort(a, axis=axis)


@public
def argpartition(a, kth, axis=-1):
    """The indices that would partition a (numpy.argpartition): here those of a stable sort, one such
    arrangement."""
    (a,), _, _ = operands("argpartition", a)
    _check_kth("argpartition", a, kth, axis)
    return argsort(a, axis=axis)


def _check_kth(name, a, kth, axis):
    n = aval_of(a).shape[normalize_axis(axis, aval_of(a).ndim)] if aval_of(a).ndim else 1
    for k in np.atleast_1d(kth):
        if not isinstance(k, (int, np.integer)) or not -n <= k < n:
            raise ValueError(at_user_line(f"{name}: kth(={k!r}) out of bounds ({n})"))


@public
def unwrap(p, discont=None, axis=-1, *, period=2 * np.pi):
    """p with its jumps of more than discont (default period / 2) along axis taken back by multiples of
    period, as numpy.unwrap."""
    from ftrans.numpy._arrange import diff
    (p,), p_dtype, _ = operands("unwrap", p)
    axis = normalize_axis(axis, aval_of(p).ndim)
    dd = diff(p, axis=axis)
    dtype = np.result_type(aval_of(dd).dtype, period)  # (a Python period is weak, as NumPy 2 has it)
    if discont is None:
        discont = period / 2
    if dtype.kind in "iu":
        interval_high, rem = builtins.divmod(period, 2)
        boundary_ambiguous = rem == 0
    else:
        interval_high, boundary_ambiguous = period / 2, True
    interval_low = -interval_high
    ddmod = el.add(el.mod(el.subtract(dd, interval_low), period), interval_low)
    if boundary_ambiguous:
        ddmod = el.where(el.logical_and(el.equal(ddmod, interval_low), el.greater(dd, 0)), interval_high, ddmod)
    correction = el.where(el.less(el.abs(dd), discont), 0, el.subtract(ddmod, dd))
    p = convert(p, dtype)
    first = getitem(p, (slice(None),) * axis + (slice(0, 1),))
    rest = el.add(getitem(p, (slice(None),) * axis + (slice(1, None),)), cumsum(convert(correction, dtype), axis=axis))
    return concatenate([first, rest], axis=axis)
