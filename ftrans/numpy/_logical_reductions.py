"""all, any, count_nonzero and the NaN-ignoring reductions, from the reductions of
ftrans.numpy._reductions: a NaN counts as the reduction's identity (nanmax's of an
all-NaN slice is NaN, as NumPy's with its warning)."""
from __future__ import annotations

import numpy as np

from ftrans.numpy import _elementwise as el
from ftrans.numpy import _reductions as red
from ftrans.numpy._core import aval_of, convert, operands, public
from ftrans.numpy._math import isnan
from ir.errors import at_user_line

_INT64 = np.dtype(np.int64)


def _as_bools(name, a):
    (a,), dtype, _ = operands(name, a)
    return a if dtype.kind == "b" else el.not_equal(a, convert(0, dtype))


@public
def all(a, axis=None, out=None, keepdims=False, *, where=None):
    if out is not None:
        raise TypeError(at_user_line("all: out= is not supported (arrays are immutable)"))
    return red._min(_as_bools("all", a), axis=axis, keepdims=keepdims, initial=True if where is not None else None,
                    where=where)


@public
def any(a, axis=None, out=None, keepdims=False, *, where=None):
    if out is not None:
        raise TypeError(at_user_line("any: out= is not supported (arrays are immutable)"))
    return red._max(_as_bools("any", a), axis=axis, keepdims=keepdims, initial=False if where is not None else None,
                    where=where)


@public
def count_nonzero(a, axis=None, keepdims=False):
    return red.sum(_as_bools("count_nonzero", a), axis=axis, dtype=_INT64, keepdims=keepdims)


def _without_nans(name, a, fill):
    (a,), dtype, _ = operands(name, a)
    if dtype.kind not in "fc":
        return a, None
    nans = isnan(a)
    return el.where(nans, convert(fill, dtype), a), nans


@public
def nansum(a, axis=None, dtype=None, out=None, keepdims=False, initial=None, where=None):
    a, _ = _without_nans("nansum", a, 0)
    return red.sum(a, axis=axis, dtype=dtype, out=out, keepdims=keepdims, initial=initial, where=where)


@public
def nanprod(a, axis=None, dtype=None, out=None, keepdims=False, initial=None, where=None):
    a, _ = _without_nans("nanprod", a, 1)
    return red.prod(a, axis=axis, dtype=dtype, out=out, keepdims=keepdims, initial=initial, where=where)


@public
def nanmean(a, axis=None, dtype=None, out=None, keepdims=False, *, where=None):
    if out is not None:
        raise TypeError(at_user_line("nanmean: out= is not supported (arrays are immutable)"))
    (a,), a_dtype, _ = operands("nanmean", a)
    if a_dtype.kind not in "fc":
        return red.mean(a, axis=axis, dtype=dtype, keepdims=keepdims, where=where)
    kept = el.logical_not(isnan(a))
    if where is not None:
        kept = el.logical_and(kept, where)
    return red.mean(a, axis=axis, dtype=dtype, keepdims=keepdims, where=kept)


@public
def nanvar(a, axis=None, dtype=None, out=None, ddof=0, keepdims=False, *, where=None):
    """var of the values that are not NaN, as numpy.nanvar."""
    if out is not None:
        raise TypeError(at_user_line("nanvar: out= is not supported (arrays are immutable)"))
    a, nans = _without_nans("nanvar", a, 0)  # zeros, not NaNs, under the mask: a NaN * 0 cotangent is NaN
    if nans is None:
        return red.var(a, axis=axis, dtype=dtype, ddof=ddof, keepdims=keepdims, where=where)
    kept = el.logical_not(nans)
    if where is not None:
        kept = el.logical_and(kept, where)
    return red.var(a, axis=axis, dtype=dtype, ddof=ddof, keepdims=keepdims, where=kept)


@public
def nanstd(a, axis=None, dtype=None, out=None, ddof=0, keepdims=False, *, where=None):
    """std of the values that are not NaN, as numpy.nanstd."""
    if out is not None:
        raise TypeError(at_user_line("nanstd: out= is not supported (arrays are immutable)"))
    return el.sqrt(nanvar(a, axis=axis, dtype=dtype, ddof=ddof, keepdims=keepdims, where=where))


def _nan_arg_extremum(name, reduce, fill):
    @public
    def fun(a, axis=None, out=None, keepdims=None):
        if out is not None:
            raise TypeError(at_user_line(f"{name}: out= is not supported (arrays are immutable)"))
        (a,), dtype, _ = operands(name, a)
        if dtype.kind not in "fc":
            return reduce(a, axis=axis, keepdims=bool(keepdims))
        nans = isnan(a)
        index = reduce(el.where(nans, convert(fill, dtype), a), axis=axis, keepdims=bool(keepdims))
        all_nan = all(nans, axis=axis, keepdims=bool(keepdims))
        return el.where(all_nan, convert(-1, aval_of(index).dtype), index)
    fun.__name__ = fun.__qualname__ = name
    fun.__doc__ = (f"numpy.{name}: the index of the {'largest' if 'max' in name else 'smallest'} value that is not "
                   f"NaN; -1 for a slice of NaNs only, as jax.numpy's (NumPy raises).")
    return fun


nanargmax = _nan_arg_extremum("nanargmax", red.argmax, -np.inf)
nanargmin = _nan_arg_extremum("nanargmin", red.argmin, np.inf)


def _nan_extremum(name, reduce, fill):
    @public
    def fun(a, axis=None, out=None, keepdims=False, initial=None, where=None):
        (a,), dtype, _ = operands(name, a)
        if dtype.kind not in "fc":
            return reduce(a, axis=axis, out=out, keepdims=keepdims, initial=initial, where=where)
        # a NaN (complex: in either part) becomes the far end of the order, never the result
        cleaned, nans = _without_nans(name, a, complex(fill, fill) if dtype.kind == "c" else fill)
        result = reduce(cleaned, axis=axis, out=out, keepdims=keepdims, initial=initial, where=where)
        all_nan = all(nans, axis=axis, keepdims=keepdims, where=where)
        if initial is not None:
            return result
        return el.where(all_nan, convert(np.nan, dtype), result)
    fun.__name__ = fun.__qualname__ = name
    fun.__doc__ = f"numpy.{name}: NaNs are left out; an all-NaN slice gives NaN."
    return fun


nanmax = _nan_extremum("nanmax", red.max, -np.inf)
nanmin = _nan_extremum("nanmin", red.min, np.inf)
