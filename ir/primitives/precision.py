"""reduce_precision: round floats to fewer exponent and mantissa bits (XLA's ReducePrecision).

The value keeps its dtype and is rounded as a float of `exponent_bits` and `mantissa_bits` would
hold it: the mantissa to nearest (ties to even), then values past that format's range overflow
to a signed infinity and those below its smallest normal flush to a signed zero (as XLA, it has
no subnormals). NaN stays NaN (infinity when no mantissa bit is left to hold it).
`reduce_precision(x, 8, 7)` is bfloat16's rounding, `(5, 10)` float16's, `(8, 23)` float32's.

As JAX declares it, it is linear for differentiation: its tangent (and cotangent) is the
tangent rounded the same way (the rounding is the identity to first order).
"""
from __future__ import annotations

import numpy as np

from ir.core import array_module
from ir.markers import Zero
from ir.primitive import Int, Primitive
from ir.primitives.batch_util import elementwise_batcher
from ir.primitives.taylor_util import taylor_from_jvp
from ir.tracing import bind

# float dtype -> (unsigned type of its width, exponent bits, mantissa bits)
_FORMATS = {np.dtype(np.float16): (np.uint16, 5, 10), np.dtype(np.float32): (np.uint32, 8, 23),
            np.dtype(np.float64): (np.uint64, 11, 52)}
_EXPONENT_BITS = Int(1, 64, "an exponent width (an int in [1, 64])")
_MANTISSA_BITS = Int(0, 64, "a mantissa width (an int in [0, 64])")


def _abstract_eval(x, *, exponent_bits, mantissa_bits):
    if x.dtype not in _FORMATS:
        raise TypeError(f"reduce_precision takes floats, got {x.str_short()}")
    return x


def _rounded_bits(bits, uint, src_exponent, src_mantissa, exponent_bits, mantissa_bits):
    """XLA's bit manipulation, on an unsigned view of the floats (the C template's twin)."""
    one = uint(1)
    if mantissa_bits < src_mantissa:
        shift = uint(src_mantissa - mantissa_bits)
        last = one << shift
        base = (last >> one) - one
        bits = (bits + ((bits & last) >> shift) + base) & ~(last - one)
    if exponent_bits < src_exponent:
        sign = one << uint(8 * np.dtype(uint).itemsize - 1)
        exponent_mask = ((one << uint(src_exponent)) - one) << uint(src_mantissa)
        bias = (one << uint(src_exponent - 1)) - one
        reduced_bias = (one << uint(exponent_bits - 1)) - one
        exponent = bits & exponent_mask
        xp = array_module(bits)
        overflows = exponent > ((bias + reduced_bias) << uint(src_mantissa))
        underflows = exponent <= ((bias - reduced_bias) << uint(src_mantissa))
        bits = xp.where(overflows, (bits & sign) | exponent_mask, xp.where(underflows, bits & sign, bits))
    return bits


def _impl(x, *, exponent_bits, mantissa_bits):
    xp = array_module(x)
    x = xp.asarray(x)
    uint, src_exponent, src_mantissa = _FORMATS[x.dtype]
    if exponent_bits >= src_exponent and mantissa_bits >= src_mantissa:
        return x.copy()
    bits = _rounded_bits(xp.ascontiguousarray(x).view(uint), uint, src_exponent, src_mantissa,
                         exponent_bits, mantissa_bits)
    out = xp.asarray(bits, dtype=uint).view(x.dtype).reshape(x.shape)
    nan = x if mantissa_bits > 0 else xp.asarray(np.inf, x.dtype)
    return xp.where(xp.isnan(x), nan, out).astype(x.dtype, copy=False)


def _jvp(primals, tangents, *, exponent_bits, mantissa_bits):
    (x,), (t,) = primals, tangents
    out = reduce_precision(x, exponent_bits, mantissa_bits)
    if type(t) is Zero:
        return out, t
    return out, reduce_precision(t, exponent_bits, mantissa_bits)


def _transpose(ct, x, *, exponent_bits, mantissa_bits):
    if type(ct) is Zero:
        return [None]
    return [reduce_precision(ct, exponent_bits, mantissa_bits)]


def _cuda_template(*, exponent_bits, mantissa_bits):
    return f"ft_reduce_precision({{0}}, {exponent_bits}, {mantissa_bits})"  # the prelude's (lowering_cupy)


reduce_precision_p = Primitive("reduce_precision", params={"exponent_bits": _EXPONENT_BITS,
                                                           "mantissa_bits": _MANTISSA_BITS},
                               abstract_eval=_abstract_eval, impl=_impl, elementwise=True, linear_in=(0,),
                               jvp=_jvp, transpose=_transpose, cuda_template=_cuda_template)
reduce_precision_p.define(batch=elementwise_batcher(reduce_precision_p),
                          taylor=taylor_from_jvp(reduce_precision_p))


def reduce_precision(x, exponent_bits, mantissa_bits):
    return bind(reduce_precision_p, x, exponent_bits=exponent_bits, mantissa_bits=mantissa_bits)
