"""Array creation. Inside a trace these are staged like any operation
(omnistaging): `zeros((n, n))` under jit is an equation, not a baked constant."""
from __future__ import annotations

import math

import numpy as np

from ftrans.numpy import _elementwise as elementwise
from ftrans.numpy._core import as_operand, aval_of, concrete_or_none, convert, public
from ftrans.numpy._shape import _shape_tuple
from ir.core import array_module, is_cupy_array
from ir.errors import at_user_line
from ir.primitive import as_array
from ir.primitives import structural
from ir.tracing import Tracer

_FLOAT64 = np.dtype(np.float64)


def _dtype_of_fill(value, dtype):
    if dtype is not None:
        return np.dtype(dtype)
    return aval_of(as_operand(value)).dtype


@public
def full(shape, fill_value, dtype=None):
    shape = _shape_tuple(shape)
    fill_value = as_operand(fill_value)
    dtype = _dtype_of_fill(fill_value, dtype)
    value = convert(fill_value, dtype)
    aval = aval_of(value)
    if aval.ndim:
        from ftrans.numpy._shape import broadcast_to
        return broadcast_to(value, shape)
    return structural.broadcast_in_dim(value, shape, ())


@public
def zeros(shape, dtype=None):
    return full(shape, 0, np.dtype(dtype or _FLOAT64))


@public
def ones(shape, dtype=None):
    return full(shape, 1, np.dtype(dtype or _FLOAT64))


@public
def empty(shape, dtype=None):
    """Like numpy.empty, but filled with zeros: ftrans arrays are never uninitialised."""
    return zeros(shape, dtype)


@public
def full_like(a, fill_value, dtype=None, shape=None):
    """As numpy.full_like, and as cupy.full_like for CuPy arrays: the result is on `a`'s device."""
    a = as_operand(a)
    aval = aval_of(a)
    xp = array_module(concrete_or_none(a))
    if xp is not np and not isinstance(fill_value, Tracer):  # a fill value on the GPU broadcasts there
        fill_value = xp.asarray(fill_value)
    return full(aval.shape if shape is None else shape, fill_value, dtype or aval.dtype)


@public
def zeros_like(a, dtype=None, shape=None):
    return full_like(a, 0, dtype, shape)


@public
def ones_like(a, dtype=None, shape=None):
    return full_like(a, 1, dtype, shape)


def _static_number(x, name):
    value = concrete_or_none(x)
    if value is None:
        raise TypeError(at_user_line(f"{name} must be a concrete number, not a traced value "
                                     "(array sizes are fixed when a function is traced)"))
    return value.item() if hasattr(value, "item") else value


@public
def arange(start, stop=None, step=1, dtype=None):
    start, step = _static_number(start, "arange start"), _static_number(step, "arange step")
    if stop is None:
        start, stop = 0, start
    stop = _static_number(stop, "arange stop")
    if step == 0:
        raise ZeroDivisionError(at_user_line("arange: step must not be zero"))  # NumPy's error class
    length = max(0, math.ceil((stop - start) / step))
    if dtype is None:
        is_int = all(isinstance(v, (int, np.integer)) for v in (start, stop, step))
        dtype = np.dtype(np.int64) if is_int else _FLOAT64
    dtype = np.dtype(dtype)
    count = structural.iota(dtype if dtype.kind != "b" else np.int64, (length,))
    if step != 1:
        count = elementwise.multiply(count, convert(step, dtype) if dtype.kind != "f" else step)
    if start != 0:
        count = elementwise.add(count, start)
    return convert(count, dtype)


@public
def linspace(start, stop, num=50, endpoint=True, dtype=None):
    start, stop = _static_number(start, "linspace start"), _static_number(stop, "linspace stop")
    num = int(num)
    if num < 0:
        raise ValueError(at_user_line(f"linspace: number of samples, {num}, must be non-negative"))
    dtype = np.dtype(dtype) if dtype is not None else _FLOAT64
    intervals = (num - 1) if endpoint else num
    step = (stop - start) / intervals if intervals > 0 else 0.0
    values = elementwise.add(elementwise.multiply(structural.iota(_FLOAT64, (num,)), step), float(start))
    if endpoint and num > 1:
        # NumPy sets the last sample to `stop` exactly
        last = structural.broadcast_in_dim(np.float64(stop), (1,), ())
        values = structural.concatenate([structural.slice(values, (0,), (num - 1,)), last], 0)
    if dtype.kind in "iu":  # NumPy 2 rounds toward -inf for integer dtypes, not toward zero
        values = elementwise.floor(values)
    return convert(values, dtype) if dtype != _FLOAT64 else values


@public
def eye(N, M=None, k=0, dtype=None):
    M = N if M is None else M
    rows = structural.iota(np.int64, (N, M), 0)
    cols = structural.iota(np.int64, (N, M), 1)
    on_diagonal = elementwise.equal(elementwise.add(rows, int(k)), cols)
    return convert(on_diagonal, np.dtype(dtype or _FLOAT64))


@public
def identity(n, dtype=None):
    return eye(n, dtype=dtype)


@public
def asarray(a, dtype=None):
    """A traced value stays traced, a CuPy array stays a CuPy array; anything
    else becomes an Array (the ndarray with `.at` that ftrans returns), a
    view of a NumPy array's data where it can be, as numpy.asarray."""
    a = as_operand(a)
    if isinstance(a, Tracer):
        return a if dtype is None else convert(a, np.dtype(dtype))
    if isinstance(a, (bool, int, float, np.generic)):
        return as_array(np.asarray(a, dtype=dtype))
    return as_array(a if dtype is None or a.dtype == dtype else a.astype(dtype))


@public
def array(a, dtype=None):
    """Like asarray, but concrete inputs are copied (as numpy.array)."""
    if isinstance(a, np.ndarray) or is_cupy_array(a):
        return as_array(array_module(a).array(a, dtype=dtype))
    return asarray(a, dtype)


