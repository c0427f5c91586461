"""Samplers built on uniform bits, each JAX's algorithm step for step, so that the same key gives
the same numbers as `jax.random` (with 64-bit types on: the default dtype is float64)."""
from __future__ import annotations

import math

import numpy as np

import ftrans.numpy as fnp
from ftrans import lax
from ftrans.lax import stop_gradient
from ftrans.numpy._core import aval_of, shape_tuple
from ftrans.random._public import public_returning_arrays as public
from ftrans.random._keys import UINT_OF_WIDTH, check_key, random_bits, split
from ir.errors import at_user_line
from ir.primitives.bits import shift_right_logical
from ir.primitives.elementwise import convert_element_type
from ir.tracing import Tracer

FLOAT64 = np.dtype(np.float64)


def _float_dtype(name, dtype):
    dtype = FLOAT64 if dtype is None else np.dtype(dtype)
    if dtype.kind != "f":
        raise TypeError(at_user_line(f"{name} only accepts floating-point dtypes, got {dtype.name}"))
    return dtype


def _shape(name, shape, *param_shapes):
    """`shape` as a tuple, checked to be a broadcast of the parameters' shapes, as JAX's _check_shape."""
    shape = shape_tuple(shape, name)
    if param_shapes:
        try:
            broadcast = np.broadcast_shapes(shape, *param_shapes)
        except ValueError:
            broadcast = None
        if broadcast != shape:
            raise ValueError(at_user_line(f"{name} parameter shapes {param_shapes} must be broadcast-compatible "
                                          f"with shape argument, and the result of broadcasting the shapes must "
                                          f"equal the shape argument, got shape {shape}"))
    return shape


def param_shape(name, value, what):
    """The shape of parameter `what` of sampler `name`, which must be real numbers (an array or a scalar)."""
    aval = aval_of(value, f"{name} ({what})")
    if aval.dtype.kind not in "biuf":
        raise TypeError(at_user_line(f"{name}: {what} must be real numbers, got {aval.str_short()}"))
    return aval.shape


def broadcast_shape(name, shape, *params):
    """JAX's _check_broadcast_shapes: the parameters' broadcast shape where `shape` is None, else
    `shape`, checked against theirs; `params` are (argument name, value) pairs."""
    param_shapes = [param_shape(name, value, what) for what, value in params]
    return checked_batch_shape(name, shape, [(what, s) for (what, _), s in zip(params, param_shapes)])


def checked_batch_shape(name, shape, named_shapes):
    """The broadcast of the (argument name, shape) pairs where `shape` is None, else `shape`, which
    broadcasting them with must give: a ValueError naming the arguments and their shapes otherwise."""
    names = ", ".join(f"{what} {s}" for what, s in named_shapes)
    shapes = [s for _, s in named_shapes]
    if shape is None:
        try:
            return np.broadcast_shapes(*shapes)
        except ValueError:
            raise ValueError(at_user_line(f"{name}: the parameter shapes ({names}) do not broadcast")) from None
    shape = shape_tuple(shape, name)
    try:
        broadcast = np.broadcast_shapes(shape, *shapes)
    except ValueError:
        broadcast = None
    if broadcast != shape:
        raise ValueError(at_user_line(f"{name}: the parameter shapes ({names}) must be broadcast-compatible with "
                                      f"the shape argument, and broadcasting them with it must give it, got shape "
                                      f"{shape}"))
    return shape


def check_safe_to_cast(name, dtype, *params):
    """JAX's _check_all_safe_to_cast: a float parameter (an array or NumPy scalar, not a Python float)
    wider than `dtype` is an error naming it. As in JAX's promotion lattice, where integers and bools
    sit below every float, an integer parameter converts to any float dtype."""
    for what, value in params:
        aval = aval_of(value, f"{name} ({what})")
        if aval.weak_type or type(value) in (bool, int, float) or aval.dtype.kind in "biu":
            continue
        if np.promote_types(aval.dtype, dtype) != dtype:
            raise ValueError(at_user_line(f"In arguments to {name}, cannot safely cast argument {what} of type "
                                          f"{aval.dtype.name} to {dtype.name}"))


def float_sampler_arguments(name, key, shape, dtype, *params):
    """(key, shape, dtype) of a float sampler with parameters `params` ((argument name, value) pairs):
    the key checked, the dtype resolved, the shape broadcast with the parameters', and each
    parameter safe to cast to the dtype."""
    key, dtype = check_key(name, key), _float_dtype(name, dtype)
    shape = broadcast_shape(name, shape, *params)
    check_safe_to_cast(name, dtype, *params)
    return key, shape, dtype


def unit_floats(key, shape, dtype):
    """Floats in [0, 1) on the grid 2**-nmant: the top mantissa bits of a draw (JAX's bit trick,
    1.m - 1, is exactly m * 2**-nmant, which this computes without a bitcast)."""
    info = np.finfo(dtype)
    nbits = 8 * dtype.itemsize
    bits = random_bits(key, nbits, shape)
    uint = UINT_OF_WIDTH[nbits]
    mantissa = shift_right_logical(bits, uint.type(nbits - info.nmant))
    return convert_element_type(mantissa, dtype) * dtype.type(2.0 ** -info.nmant)


def _uniform(key, shape, dtype, minval, maxval):
    floats = unit_floats(key, shape, dtype)
    minval = fnp.asarray(minval, dtype)
    maxval = fnp.asarray(maxval, dtype)
    return fnp.maximum(minval, floats * (maxval - minval) + minval)


@public
def uniform(key, shape=(), dtype=None, minval=0.0, maxval=1.0):
    """Uniform floats in [minval, maxval), as `jax.random.uniform`; differentiable in minval and maxval."""
    key = check_key("uniform", key)
    dtype = _float_dtype("uniform", dtype)
    shape = _shape("uniform", shape, np.shape(minval), np.shape(maxval))
    return _uniform(key, shape, dtype, minval, maxval)


@public
def bernoulli(key, p=np.float64(0.5), shape=None, mode="low"):
    """Booleans, True with probability p, as `jax.random.bernoulli` (uniform of p's dtype < p)."""
    key = check_key("bernoulli", key)
    p_aval = aval_of(p, "bernoulli")
    dtype = p_aval.dtype if p_aval.dtype.kind == "f" else FLOAT64
    shape = p_aval.shape if shape is None else _shape("bernoulli", shape, p_aval.shape)
    p = fnp.asarray(p, dtype)
    if mode == "high":
        u = _uniform(key, (2, *shape), dtype, 0.0, 1.0)
        u1, u2 = u[0], u[1] * dtype.type(2.0 ** -np.finfo(dtype).nmant)
        return u2 < p - u1
    if mode != "low":
        raise ValueError(at_user_line(f"bernoulli: mode must be 'low' or 'high', got {mode!r}"))
    return _uniform(key, shape, dtype, 0.0, 1.0) < p


def _clip_to(value, dtype):
    """An integer array converted to `dtype` with values clipped to its range, not wrapped."""
    value = fnp.asarray(value)
    if value.dtype.kind not in "iu":
        value = value.astype(np.int64)
    info, own = np.iinfo(dtype), np.iinfo(value.dtype)
    low, high = max(info.min, own.min), min(info.max, own.max)
    return fnp.clip(value, value.dtype.type(low), value.dtype.type(high)).astype(dtype)


@public
def randint(key, shape, minval, maxval, dtype=None):
    """Integers in [minval, maxval), as `jax.random.randint` (two draws per value, reduced modulo the span)."""
    key = check_key("randint", key)
    dtype = np.dtype(np.int64 if dtype is None else dtype)
    if dtype.kind not in "iu":
        raise TypeError(at_user_line(f"randint only accepts integer dtypes, got {dtype.name}"))
    shape = _shape("randint", shape, np.shape(minval), np.shape(maxval))
    if dtype.itemsize < 4:  # sampled at 32 bits, as JAX does, to keep the modulo bias small
        info = np.iinfo(dtype)
        low = fnp.clip(fnp.asarray(minval).astype(np.int32), info.min, info.max)
        high = fnp.clip(fnp.asarray(maxval).astype(np.int32), info.min, info.max + 1)
        return _randint(key, shape, low, high, np.dtype(np.int32)).astype(dtype)
    return _randint(key, shape, minval, maxval, dtype)


def _randint(key, shape, minval, maxval, dtype):
    minval, maxval = fnp.asarray(minval), fnp.asarray(maxval)
    if minval.dtype.kind not in "iu":
        minval = minval.astype(np.int64)
    if maxval.dtype.kind not in "iu":
        maxval = maxval.astype(np.int64)
    # maxval past dtype's range (randint(key, s, 0, 256, uint8)): the span is one larger
    out_of_range = maxval > _clip_to(np.array(np.iinfo(dtype).max, dtype), maxval.dtype)
    minval, maxval = _clip_to(minval, dtype), _clip_to(maxval, dtype)
    nbits = 8 * dtype.itemsize
    unsigned = UINT_OF_WIDTH[nbits]
    key_high, key_low = split(key)
    higher, lower = random_bits(key_high, nbits, shape), random_bits(key_low, nbits, shape)
    span = (maxval - minval).astype(unsigned)
    span = fnp.where(maxval <= minval, unsigned.type(1), span)  # an empty range gives minval
    span = fnp.where(out_of_range & (maxval > minval), span + unsigned.type(1), span)
    # (high * 2**nbits + low) % span, by (a * b) % n = ((a % n) * (b % n)) % n, all in nbits (wrapping)
    multiplier = fnp.mod(unsigned.type(2 ** (nbits // 2)), span)
    multiplier = fnp.mod(multiplier * multiplier, span)
    offset = fnp.mod(fnp.mod(higher, span) * multiplier + fnp.mod(lower, span), span)
    return minval + offset.astype(dtype)


@public
def exponential(key, shape=(), dtype=None):
    """Standard exponential draws, -log1p(-u), as `jax.random.exponential`."""
    key = check_key("exponential", key)
    dtype = _float_dtype("exponential", dtype)
    return -fnp.log1p(-_uniform(key, _shape("exponential", shape), dtype, 0.0, 1.0))


@public
def gumbel(key, shape=(), dtype=None, mode="low"):
    """Standard Gumbel draws, -log(-log(u)) with u in [tiny, 1), as `jax.random.gumbel`."""
    key = check_key("gumbel", key)
    dtype = _float_dtype("gumbel", dtype)
    shape = _shape("gumbel", shape)
    info = np.finfo(dtype)
    if mode == "low":
        return -fnp.log(-fnp.log(_uniform(key, shape, dtype, info.tiny, 1.0)))
    if mode != "high":
        raise ValueError(at_user_line(f"gumbel: mode must be 'low' or 'high', got {mode!r}"))
    u = _uniform(key, (2, *shape), dtype, 0.0, 1.0)
    high, low = u[0], u[1]
    x = fnp.where(high >= 0.5, high, high + dtype.type(2.0 ** -info.nmant) * low + dtype.type(info.tiny))
    return -fnp.log(-fnp.log1p(-x))


@public
def laplace(key, shape=(), dtype=None):
    """Standard Laplace draws, sign(u) log1p(-|u|) with u in (-1, 1), as `jax.random.laplace`."""
    key = check_key("laplace", key)
    dtype = _float_dtype("laplace", dtype)
    u = _uniform(key, _shape("laplace", shape), dtype, -1.0 + np.finfo(dtype).epsneg, 1.0)
    return fnp.sign(u) * fnp.log1p(-fnp.abs(u))


@public
def logistic(key, shape=(), dtype=None):
    """Standard logistic draws, log(u) - log1p(-u), as `jax.random.logistic`."""
    key = check_key("logistic", key)
    dtype = _float_dtype("logistic", dtype)
    x = _uniform(key, _shape("logistic", shape), dtype, np.finfo(dtype).tiny, 1.0)
    return fnp.log(x) - fnp.log1p(-x)


@public
def cauchy(key, shape=(), dtype=None):
    """Standard Cauchy draws, tan(pi (u - 1/2)), as `jax.random.cauchy`."""
    key = check_key("cauchy", key)
    dtype = _float_dtype("cauchy", dtype)
    u = _uniform(key, _shape("cauchy", shape), dtype, np.finfo(dtype).eps, 1.0)
    return fnp.tan(dtype.type(np.pi) * (u - dtype.type(0.5)))


@public
def rademacher(key, shape=(), dtype=None):
    """-1 or +1 with equal probability, as `jax.random.rademacher` (default int64)."""
    key = check_key("rademacher", key)
    dtype = np.dtype(np.int64 if dtype is None else dtype)
    draws = bernoulli(key, np.float64(0.5), _shape("rademacher", shape)).astype(dtype)
    return (2 * draws - 1).astype(dtype)


@public
def categorical(key, logits, axis=-1, shape=None, replace=True, mode="low"):
    """Category indices drawn from unnormalized log-probabilities (Gumbel-max), as `jax.random.categorical`."""
    key = check_key("categorical", key)
    logits = fnp.asarray(logits)
    if logits.dtype.kind != "f":
        logits = logits.astype(FLOAT64)
    ndim = logits.ndim
    if not -ndim <= axis < ndim:
        raise ValueError(at_user_line(f"categorical: axis {axis} is out of bounds for logits of rank {ndim}"))
    axis = axis % ndim
    batch_shape = logits.shape[:axis] + logits.shape[axis + 1:]
    shape = batch_shape if shape is None else _shape("categorical", shape, batch_shape)
    prefix = shape[:len(shape) - len(batch_shape)]
    if not replace:  # Gumbel top-k: the k = prod(prefix) largest of logits + noise, the largest first
        from ftrans.random._permutations import top_k_indices
        k = math.prod(prefix)
        if k > logits.shape[axis]:
            raise ValueError(at_user_line(f"Number of samples without replacement ({k}) cannot exceed number of "
                                          f"categories ({logits.shape[axis]})."))
        perturbed = fnp.moveaxis(logits + gumbel(key, logits.shape, logits.dtype, mode=mode), axis, -1)
        indices = top_k_indices(perturbed, k)  # batch_shape + (k,)
        # NB: int32, as JAX's (lax.top_k's indices are int32 even with 64-bit types)
        return fnp.reshape(fnp.moveaxis(indices, -1, 0), shape).astype(np.int32)
    logits_shape = list(shape[len(shape) - len(batch_shape):])
    logits_shape.insert(axis, logits.shape[axis])
    noise = gumbel(key, (*prefix, *logits_shape), logits.dtype, mode=mode)
    return fnp.argmax(noise + fnp.reshape(logits, (1,) * len(prefix) + logits.shape), axis=len(prefix) + axis)


@public
def normal(key, shape=(), dtype=None):
    """Standard normal draws, sqrt(2) erf_inv(u) with u uniform in (-1, 1), as `jax.random.normal`."""
    key = check_key("normal", key)
    dtype = _float_dtype("normal", dtype)
    return _normal(key, _shape("normal", shape), dtype)


def _normal(key, shape, dtype):
    low = np.nextafter(dtype.type(-1), dtype.type(0))  # erf_inv(-1) would be -inf
    u = _uniform(key, shape, dtype, low, 1.0)
    return lax.erf_inv(u) * dtype.type(np.sqrt(2))  # NB: Array first, so that the result is one


def _next_toward(bound, direction, dtype):
    """nextafter(bound, direction) for concrete bounds; a traced bound is kept as it is (ftrans has
    no nextafter primitive yet), so that the clip is to the closed interval."""
    if isinstance(bound, Tracer):
        return stop_gradient(bound)
    return np.nextafter(np.asarray(bound, dtype), dtype.type(direction))


@public
def truncated_normal(key, lower, upper, shape=None, dtype=None):
    """Standard normal draws truncated to (lower, upper), by the inverse CDF as `jax.random.truncated_normal`;
    differentiable in lower and upper."""
    key = check_key("truncated_normal", key)
    dtype = _float_dtype("truncated_normal", dtype)
    if shape is None:
        shape = np.broadcast_shapes(np.shape(lower), np.shape(upper))
    else:
        shape = _shape("truncated_normal", shape, np.shape(lower), np.shape(upper))
    sqrt2 = dtype.type(np.sqrt(2))
    lower_, upper_ = fnp.asarray(lower, dtype), fnp.asarray(upper, dtype)
    a, b = lax.erf(lower_ / sqrt2), lax.erf(upper_ / sqrt2)
    u = _uniform(key, shape, dtype, a, b)
    out = lax.erf_inv(u) * sqrt2
    # rounding (or u = a) must not push a draw out of the open interval
    return fnp.clip(out, _next_toward(lower_, np.inf, dtype), _next_toward(upper_, -np.inf, dtype))
