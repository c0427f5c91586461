"""Array creation. Inside a trace these are staged like any operation
(omnistaging): `zeros((n, n))` under jit is an equation, not a baked constant.

Values that a result depends on (a fill value, linspace's start and stop,
arange's start and step) may be traced, and carry their derivatives; what fixes
a result's shape (sizes, counts, arange's stop) must be concrete.
"""
from __future__ import annotations

import math

import numpy as np

from ftrans.numpy import _elementwise as elementwise
from ftrans.numpy._core import (as_operand, aval_of, broadcast_shapes, concrete_or_none, convert, dtype_argument,
                                public, result_type, shape_tuple, static_int, unchanged)
from ftrans.numpy._shape import broadcast_to, moveaxis
from ir.core import array_module, is_cupy_array
from ir.errors import ConcretizationError, at_user_line
from ir.floating_point import ignore_errors, restore_errors
from ir.primitive import as_array
from ir.primitives import reductions, structural
from ir.tracing import Tracer, current_trace

_FLOAT64 = np.dtype(np.float64)


def _full(name, shape, fill_value, dtype):
    shape = shape_tuple(shape, name)
    fill_value = as_operand(fill_value)
    fill_dtype, _ = result_type(aval_of(fill_value, name), name=name)
    value = convert(fill_value, fill_dtype if dtype is None else dtype_argument(name, dtype))
    if aval_of(value).ndim:
        return broadcast_to(value, shape)
    return structural.broadcast_in_dim(value, shape, ())


@public
def full(shape, fill_value, dtype=None):
    return _full("full", shape, fill_value, dtype)


@public
def zeros(shape, dtype=None):
    return _full("zeros", shape, 0, _FLOAT64 if dtype is None else dtype)


@public
def ones(shape, dtype=None):
    return _full("ones", shape, 1, _FLOAT64 if dtype is None else dtype)


@public
def empty(shape, dtype=None):
    """Like numpy.empty, but filled with zeros: ftrans arrays are never uninitialised."""
    return _full("empty", shape, 0, _FLOAT64 if dtype is None else dtype)


def _full_like(name, a, fill_value, dtype, shape):
    """As numpy.full_like, and as cupy.full_like for CuPy arrays: the result is on `a`'s device."""
    a = as_operand(a)
    aval = aval_of(a, name)
    result_type(aval, name=name)
    xp = array_module(concrete_or_none(a))
    if xp is not np and not isinstance(fill_value, Tracer):  # a fill value on the GPU broadcasts there
        fill_value = xp.asarray(fill_value)
    return _full(name, aval.shape if shape is None else shape, fill_value, dtype or aval.dtype)


@public
def full_like(a, fill_value, dtype=None, shape=None):
    return _full_like("full_like", a, fill_value, dtype, shape)


@public
def zeros_like(a, dtype=None, shape=None):
    return _full_like("zeros_like", a, 0, dtype, shape)


@public
def ones_like(a, dtype=None, shape=None):
    return _full_like("ones_like", a, 1, dtype, shape)


@public
def astype(x, dtype, /, *, copy=False, device=None):
    """x converted to `dtype`, as numpy.astype, with jax.numpy's default copy=False (copy=True copies a
    NumPy argument even of that dtype; `device` is accepted: arrays live where x does)."""
    out = convert(as_operand(x), dtype_argument("astype", dtype))
    return array(out) if copy else out


@public
def empty_like(prototype, dtype=None, shape=None):
    """As numpy.empty_like, but filled with zeros (as jax.numpy's: no uninitialized memory is read)."""
    return _full_like("empty_like", prototype, 0, dtype, shape)


@public
def copy(a, order=None):
    """A copy of `a`, as numpy.copy: a NumPy array's values are copied (a later change to it does not
    show), a traced value is itself (values under a trace never change)."""
    if order not in (None, "K", "A", "C"):
        raise NotImplementedError(at_user_line(f"copy: order={order!r} is not supported (arrays are C-ordered)"))
    return array(a)


# -------------------- arange and linspace --------------------

def _concrete_number(x, name, what, why):
    """The concrete value of argument `what` as a NumPy or Python scalar, for arithmetic
    as NumPy does it; a ConcretizationError saying `why` it must be concrete."""
    value = concrete_or_none(x)
    if value is None and isinstance(x, Tracer):
        raise ConcretizationError(at_user_line(
            f"{name}: {what} is a traced value ({x.aval.str_short()}), but {why}. Pass a concrete "
            "number (outside jit, or marked static with static_argnums)"))
    aval = aval_of(value, name)
    if aval.shape != ():
        raise TypeError(at_user_line(f"{name}: {what} must be a scalar, got {aval.str_short()}"))
    result_type(aval, name=name)  # a dtype ftrans computes in
    return value[()] if isinstance(value, np.ndarray) else value


@public
def arange(start, stop=None, step=None, dtype=None):
    """numpy.arange, with its values. The length depends on the values of start, stop
    and step, so these must be concrete; start and step may be traced by an eager
    grad or jvp, and carry their derivatives (stop only sets the length)."""
    if stop is None:
        start, stop = 0, start
    step = 1 if step is None else step
    why = "the length of arange's result depends on it"
    start_value, stop_value, step_value = (_concrete_number(x, "arange", what, why)
                                           for x, what in ((start, "start"), (stop, "stop"), (step, "step")))
    if step_value == 0:
        raise ZeroDivisionError(at_user_line("arange: step must not be zero"))  # NumPy's error class
    try:
        length = max(0, math.ceil((stop_value - start_value) / step_value))
    except (OverflowError, ValueError):
        raise ValueError(at_user_line(f"arange: the length of arange({start_value}, {stop_value}, "
                                      f"{step_value}) is not finite")) from None
    if dtype is None:  # NumPy's: int64 for integers and bools, else float64
        integral = all(aval_of(v).dtype.kind in "biu" for v in (start_value, stop_value, step_value))
        dtype = np.dtype(np.int64) if integral else _FLOAT64
    dtype = dtype_argument("arange", dtype)
    if dtype.kind == "b" and length > 2:
        raise ValueError(at_user_line(f"arange: a bool range has at most 2 values, not {length}"))
    if current_trace() is None and not any(isinstance(x, Tracer) for x in (start, step)):
        return as_array(np.arange(start_value, stop_value, step_value, dtype=dtype))  # eager: NumPy's own, at its speed
    # NumPy's values, each in the result's dtype: first = start, second = start + step, then
    # first + i * (second - first)
    first = convert(as_operand(start), dtype)
    if length <= 1:
        return structural.broadcast_in_dim(first, (length,), ())
    second = convert(elementwise.add(_bool_as_int(start), _bool_as_int(step)), dtype)
    if length == 2:
        return structural.concatenate([structural.broadcast_in_dim(v, (1,), ()) for v in (first, second)], 0)
    count = structural.iota(dtype, (length,))
    values = elementwise.add(first, elementwise.multiply(count, elementwise.subtract(second, first)))
    if dtype.kind != "f":
        return values
    # the second value is start + step itself, which first + 1 * (second - first) may round away from
    return elementwise.where(elementwise.equal(count, convert(1, dtype)), second, values)


def _bool_as_int(x):
    """A bool as NumPy's arange adds it: as Python adds them (True + True == 2)."""
    aval = aval_of(x)
    return convert(x, np.dtype(np.int64), aval.weak_type) if aval.dtype.kind == "b" else x


_WEAK_FLOAT = aval_of(1.0)


@public
def linspace(start, stop, num=50, endpoint=True, retstep=False, dtype=None, axis=0):
    """numpy.linspace, with its values; start and stop may be traced (arrays too: the
    samples run along `axis`), and carry their derivatives."""
    num = static_int(num, "linspace", "num", allow_bool=True)
    if num < 0:
        raise ValueError(at_user_line(f"linspace: number of samples, {num}, must be non-negative"))
    start, stop = as_operand(start), as_operand(stop)
    # NumPy's dtype: start's and stop's with a float (float32 stays float32, integers become float64)
    dt, _ = result_type(aval_of(start, "linspace"), aval_of(stop, "linspace"), _WEAK_FLOAT, name="linspace")
    dtype = dt if dtype is None else dtype_argument("linspace", dtype)
    if current_trace() is None and not isinstance(start, Tracer) and not isinstance(stop, Tracer):
        # eager: NumPy's own, at its speed (CuPy's for CuPy arrays)
        token = ignore_errors()  # inf - inf is nan, silently (ir/floating_point.py)
        try:
            out = array_module(start, stop).linspace(start, stop, num, endpoint, retstep, dtype, axis)
        finally:
            restore_errors(token)
        return (as_array(out[0]), unchanged(out[1])) if retstep else as_array(out)
    start, stop = convert(start, dt), convert(stop, dt)
    shape = broadcast_shapes("linspace", [aval_of(start).shape, aval_of(stop).shape])
    delta = elementwise.subtract(stop, start)
    samples = structural.iota(dt, (num,) + shape, 0)
    div = num - 1 if endpoint else num
    if div > 0:
        step = elementwise.true_divide(delta, div)
        values = _scaled_samples(samples, step, delta, div)
    else:  # no step: 0 or 1 samples from start
        step = unchanged(np.float64(np.nan))  # NumPy's: a Python float, whatever the dtype
        values = elementwise.multiply(samples, delta)
    values = elementwise.add(values, start)
    if endpoint and num > 1:  # NumPy sets the last sample to `stop` exactly
        last = structural.reshape(broadcast_to(stop, shape), (1,) + shape)
        most = structural.slice(values, (0,) * (len(shape) + 1), (num - 1,) + shape)
        values = structural.concatenate([most, last], 0)
    if axis != 0:
        values = moveaxis(values, 0, axis)
    if dtype.kind in "iu":  # NumPy 2 rounds toward -inf for integer dtypes, not toward zero
        values = elementwise.floor(values)
    values = convert(values, dtype)
    return (values, step) if retstep else values


def _scaled_samples(samples, step, delta, div):
    """samples * step, or where any step is 0 (denormal deltas: delta / div underflows)
    samples / div * delta, as NumPy chooses; chosen at once when the steps are concrete,
    else by a select of both."""
    steps_zero = elementwise.equal(step, 0)
    scaled = lambda: elementwise.multiply(samples, step)  # noqa: E731
    divided = lambda: elementwise.multiply(elementwise.true_divide(samples, div), delta)  # noqa: E731
    known = concrete_or_none(steps_zero)
    if known is not None:
        return divided() if bool(np.any(known)) else scaled()
    ndim = aval_of(steps_zero).ndim
    any_zero = reductions.reduce_max(steps_zero, tuple(range(ndim))) if ndim else steps_zero
    return elementwise.where(any_zero, divided(), scaled())


def _eye(name, N, M, k, dtype):
    N = static_int(N, name, "N")
    M = N if M is None else static_int(M, name, "M")
    k = static_int(k, name, "k", allow_bool=True)
    shape = shape_tuple((N, M), name, "(N, M)")
    rows = structural.iota(np.int64, shape, 0)
    cols = structural.iota(np.int64, shape, 1)
    on_diagonal = elementwise.equal(elementwise.add(rows, k), cols)
    return convert(on_diagonal, dtype_argument(name, _FLOAT64 if dtype is None else dtype))


@public
def eye(N, M=None, k=0, dtype=None):
    return _eye("eye", N, M, k, dtype)


@public
def identity(n, dtype=None):
    return _eye("identity", n, None, 0, dtype)


def _asarray(name, a, dtype):
    a = as_operand(a)
    dtype = None if dtype is None else dtype_argument(name, dtype)
    if isinstance(a, Tracer):
        return a if dtype is None else convert(a, dtype)
    result_type(aval_of(a, name), name=name)  # a dtype ftrans does not compute in is refused here
    if isinstance(a, (bool, int, float, np.generic)):
        return as_array(np.asarray(a, dtype=dtype))
    return as_array(a if dtype is None or a.dtype == dtype else a.astype(dtype))


@public
def asarray(a, dtype=None):
    """A traced value stays traced, a CuPy array stays a CuPy array; anything
    else becomes an Array (the ndarray with `.at` that ftrans returns), a
    view of a NumPy array's data where it can be, as numpy.asarray."""
    return _asarray("asarray", a, dtype)


@public
def array(a, dtype=None):
    """Like asarray, but concrete inputs are copied (as numpy.array)."""
    if isinstance(a, np.ndarray) or is_cupy_array(a):
        _asarray("array", a, dtype)  # refuses what asarray refuses
        return as_array(array_module(a).array(a, dtype=dtype))
    return _asarray("array", a, dtype)


@public
def geomspace(start, stop, num=50, endpoint=True, dtype=None, axis=0):
    """num numbers spaced evenly on a log scale from start to stop, as numpy.geomspace: both of one sign
    (0 in a concrete start or stop is a ValueError), the endpoints exact; start and stop may be traced."""
    from ftrans.numpy._math import log10
    num = static_int(num, "geomspace", "num")
    start, stop = as_operand(start), as_operand(stop)
    for value in (start, stop):
        concrete = concrete_or_none(value)
        if concrete is not None and np.any(np.asarray(concrete) == 0):
            raise ValueError(at_user_line("geomspace: a geometric sequence cannot include zero"))
    if current_trace() is None and not isinstance(start, Tracer) and not isinstance(stop, Tracer):
        token = ignore_errors()  # (a change of sign is NaN, as NumPy's, without its warning)
        try:
            return as_array(np.geomspace(start, stop, num, endpoint, None if dtype is None else
                                         dtype_argument("geomspace", dtype), axis))
        finally:
            restore_errors(token)
    # NumPy's computes in float64 (its dtype joins a float64 zero), float32 operands too
    dt = np.result_type(aval_of(start).dtype, aval_of(stop).dtype, np.float64)
    start, stop = convert(start, dt), convert(stop, dt)
    shape = broadcast_shapes("geomspace", [aval_of(start).shape, aval_of(stop).shape])
    sign = elementwise.sign(start)
    a, b = broadcast_to(elementwise.multiply(start, sign), shape), broadcast_to(elementwise.multiply(stop, sign), shape)
    values = elementwise.power(10.0, linspace(log10(a), log10(b), num, endpoint=endpoint))
    dt = aval_of(values).dtype
    a, b, sign = convert(a, dt), convert(b, dt), convert(sign, dt)
    if num > 0:  # NumPy sets the endpoints exactly
        first = structural.reshape(a, (1,) + shape)
        pieces = [first, structural.slice(values, (1,) + (0,) * len(shape), (num,) + shape)]
        if endpoint and num > 1:
            pieces = [first, structural.slice(values, (1,) + (0,) * len(shape), (num - 1,) + shape),
                      structural.reshape(b, (1,) + shape)]
        values = structural.concatenate(pieces, 0)
    values = elementwise.multiply(values, sign)
    if axis != 0:
        values = moveaxis(values, 0, axis)
    return values if dtype is None else convert(values, dtype_argument("geomspace", dtype))


def logspace(start, stop, num=50, endpoint=True, base=10.0, dtype=None, axis=0):
    """base ** linspace(start, stop, ...), as numpy.logspace (start and stop may be traced)."""
    exponents = linspace(start, stop, num, endpoint=endpoint, axis=axis)
    values = elementwise.power(base, exponents)
    return values if dtype is None else convert(values, dtype_argument("logspace", dtype))
