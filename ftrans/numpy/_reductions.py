"""Reductions with NumPy's `axis`, `keepdims` and result dtypes."""
from __future__ import annotations

import builtins
import math

import numpy as np

from ftrans.numpy import _elementwise as elementwise
from ftrans.numpy._core import aval_of, convert, dtype_argument, normalize_axes, normalize_axis, operands, public
from ftrans.numpy._shape import broadcast_to
from ir.errors import at_user_line
from ir.primitives import reductions as red
from ir.primitives import structural

_INT64, _UINT64, _FLOAT64 = np.dtype(np.int64), np.dtype(np.uint64), np.dtype(np.float64)


def _keep_dims(x, axes, in_shape):
    return structural.reshape(x, [1 if i in axes else n for i, n in enumerate(in_shape)])


def _accumulating_dtype(dtype):
    """NumPy sums and multiplies bools and small integers in the platform integer."""
    if dtype.kind == "b" or (dtype.kind == "i" and dtype.itemsize < 8):
        return _INT64
    if dtype.kind == "u" and dtype.itemsize < 8:
        return _UINT64
    return dtype


def _identity(name, dtype):
    """The value a masked-out element (where=False) counts as: the reduction's identity."""
    if name == "sum":
        return 0
    if name == "prod":
        return 1
    lowest = name == "max"
    if dtype.kind == "f":
        return -np.inf if lowest else np.inf
    if dtype.kind == "c":  # the ends of NumPy's order of complex numbers
        return complex(-np.inf, -np.inf) if lowest else complex(np.inf, np.inf)
    if dtype.kind == "b":
        return not lowest
    info = np.iinfo(dtype)
    return info.min if lowest else info.max


def _combine_initial(name, result, initial):
    combine = {"sum": elementwise.add, "prod": elementwise.multiply, "max": elementwise.maximum,
               "min": elementwise.minimum}[name]
    return convert(combine(result, initial), aval_of(result).dtype)


def _reduction(name, binder, accumulates):
    @public
    def fun(a, axis=None, dtype=None, keepdims=False, out=None, initial=None, where=None):
        if out is not None:
            raise TypeError(at_user_line(f"{name}: out= is not supported (arrays are immutable)"))
        (a,), a_dtype, _ = operands(name, a)
        target = dtype_argument(name, dtype) if dtype is not None else (
            _accumulating_dtype(a_dtype) if accumulates else a_dtype)
        if target != a_dtype or type(a) in (bool, int, float):  # implementations need NumPy values
            a = convert(a, target)
        shape = aval_of(a).shape
        axes = normalize_axes(axis, len(shape))
        if where is not None:  # masked-out elements count as the identity
            if initial is None and name in ("max", "min"):
                raise ValueError(at_user_line(f"{name}: reduction operation '{name}imum' does not have an "
                                              "identity, so to use a where mask one has to specify 'initial'"))
            a = elementwise.where(where, a, convert(_identity(name, target), target))
            a = convert(broadcast_to(a, shape), target)
        result = binder(a, axes)
        if initial is not None:
            result = _combine_initial(name, result, initial)
        return _keep_dims(result, axes, shape) if keepdims else result
    fun.__name__ = fun.__qualname__ = name
    fun.__doc__ = f"numpy.{name} with axis (int, tuple or None), dtype, keepdims, initial and where."
    return fun


sum = _reduction("sum", red.reduce_sum, accumulates=True)
prod = _reduction("prod", red.reduce_prod, accumulates=True)
_max = _reduction("max", red.reduce_max, accumulates=False)
_min = _reduction("min", red.reduce_min, accumulates=False)


def _nonempty(name, fun):
    @public
    def checked(a, axis=None, keepdims=False, out=None, initial=None, where=None):
        shape = aval_of(a).shape if not isinstance(a, (list, tuple)) else np.shape(a)
        axes = normalize_axes(axis, len(shape))
        if initial is None and any(shape[i] == 0 for i in axes):
            raise ValueError(at_user_line(f"zero-size array to reduction operation {name} which has no identity"))
        return fun(a, axis=axis, keepdims=keepdims, out=out, initial=initial, where=where)
    checked.__name__ = checked.__qualname__ = name
    return checked


max = amax = _nonempty("max", _max)
min = amin = _nonempty("min", _min)


def _count(shape, axes):
    count = 1
    for i in axes:
        count *= shape[i]
    return count


@public
def mean(a, axis=None, dtype=None, keepdims=False, *, where=None):
    (a,), a_dtype, _ = operands("mean", a)
    target = dtype_argument("mean", dtype) if dtype is not None else (a_dtype if a_dtype.kind in "fc" else _FLOAT64)
    shape = aval_of(a).shape
    total = sum(convert(a, target) if target != a_dtype else a, axis=axis, keepdims=keepdims, where=where)
    if where is None:
        count = convert(_count(shape, normalize_axes(axis, len(shape))), target)
    else:  # the number of elements the mask keeps
        count = sum(broadcast_to(where, shape), axis=axis, dtype=target, keepdims=keepdims)
    return elementwise.true_divide(total, count)


@public
def var(a, axis=None, dtype=None, ddof=0, keepdims=False, *, where=None):
    (a,), a_dtype, _ = operands("var", a)
    target = dtype_argument("var", dtype) if dtype is not None else (a_dtype if a_dtype.kind in "fc" else _FLOAT64)
    a = convert(a, target) if target != a_dtype else a
    shape = aval_of(a).shape
    centered = elementwise.subtract(a, mean(a, axis=axis, keepdims=True, where=where))
    if target.kind == "c":  # as NumPy: the mean of |x - mean|^2, real
        from ftrans.numpy._complex import imag, real
        re, im = real(centered), imag(centered)
        centered_squared = elementwise.add(elementwise.multiply(re, re), elementwise.multiply(im, im))
        target = aval_of(re).dtype
    else:
        centered_squared = elementwise.multiply(centered, centered)
    total = sum(centered_squared, axis=axis, keepdims=keepdims, where=where)
    if where is not None:  # the elements the mask keeps, less ddof (at least 0, as below)
        kept = sum(broadcast_to(where, shape), axis=axis, dtype=target, keepdims=keepdims)
        return elementwise.true_divide(total, elementwise.maximum(elementwise.subtract(kept, ddof), 0))
    # as NumPy: no degrees of freedom left gives nan (0/0) or inf, never a negative count
    count = builtins.max(_count(shape, normalize_axes(axis, len(shape))) - ddof, 0)
    return elementwise.true_divide(total, convert(float(count), target))


@public
def average(a, axis=None, weights=None, returned=False, keepdims=False):
    """The weighted mean along `axis`, as numpy.average: `weights` of a's shape, or 1-d along `axis`;
    with `returned`, (average, sum of the weights) (the count of elements without weights)."""
    (a,), a_dtype, _ = operands("average", a)
    shape = aval_of(a).shape
    if weights is None:
        result = mean(a, axis=axis, keepdims=keepdims)
        scale = convert(_count(shape, normalize_axes(axis, len(shape))), aval_of(result).dtype)
    else:
        (w,), w_dtype, _ = operands("average", weights)
        w_shape = aval_of(w).shape
        if w_shape != shape:
            if axis is None:
                raise TypeError(at_user_line("average: axis must be specified when the shapes of a and weights differ"))
            if len(w_shape) != 1:
                raise TypeError(at_user_line("average: 1-d weights expected when the shapes of a and weights differ"))
            ax = normalize_axis(axis, len(shape))
            if w_shape[0] != shape[ax]:
                raise ValueError(at_user_line(f"average: the length of weights ({w_shape[0]}) differs from that of "
                                              f"axis {axis} ({shape[ax]})"))
            w = broadcast_to(structural.reshape(w, tuple(shape[ax] if d == ax else 1 for d in range(len(shape)))), shape)
        target = np.result_type(a_dtype, w_dtype, *((np.float64,) if a_dtype.kind in "biu" else ()))
        a, w = convert(a, target), convert(w, target)
        scale = sum(w, axis=axis, keepdims=keepdims)
        result = elementwise.true_divide(sum(elementwise.multiply(a, w), axis=axis, keepdims=keepdims), scale)
    if returned:
        return result, broadcast_to(convert(scale, aval_of(result).dtype), aval_of(result).shape)
    return result


@public
def std(a, axis=None, dtype=None, ddof=0, keepdims=False, *, where=None):
    return elementwise.sqrt(var(a, axis=axis, dtype=dtype, ddof=ddof, keepdims=keepdims, where=where))


def _arg_reduction(name, binder):
    @public
    def fun(a, axis=None, keepdims=False):
        (a,), _, _ = operands(name, a)
        shape = aval_of(a).shape
        # only an empty reduced axis has no answer: argmax(zeros((0, 3)), axis=1) has shape (0,)
        if (0 in shape) if axis is None else shape[normalize_axis(axis, len(shape))] == 0:
            raise ValueError(at_user_line(f"attempt to get {name} of an empty sequence"))
        if axis is None:
            flat = structural.reshape(a, (math.prod(shape),))
            result = binder(flat, 0)
            return structural.reshape(result, (1,) * len(shape)) if keepdims else result
        axis = normalize_axis(axis, len(shape))
        result = binder(a, axis)
        return _keep_dims(result, (axis,), shape) if keepdims else result
    fun.__name__ = fun.__qualname__ = name
    return fun


argmax = _arg_reduction("argmax", red.argmax)
argmin = _arg_reduction("argmin", red.argmin)


@public
def logsumexp(a, axis=None, keepdims=False):
    """log(sum(exp(a))) over `axis`, computed stably by shifting by the maximum."""
    (a,), dtype, weak = operands("logsumexp", a)
    if dtype.kind != "f":
        a = convert(a, _FLOAT64)
    shift = _max(a, axis=axis, keepdims=True)
    finite = elementwise.less(elementwise.abs(shift), np.inf)
    shift = elementwise.where(finite, shift, 0.0)
    total = sum(elementwise.exp(elementwise.subtract(a, shift)), axis=axis, keepdims=True)
    result = elementwise.add(elementwise.log(total), shift)
    if keepdims:
        return result
    shape = aval_of(result).shape
    axes = normalize_axes(axis, len(shape))
    return structural.squeeze(result, axes) if axes else result
