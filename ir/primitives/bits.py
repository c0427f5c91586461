"""Bit-level primitives: shifts, and the Threefry-2x32 block cipher that `ftrans.random` counts with.

Shifts follow XLA's (and JAX's) semantics, not C's: a shift by a negative amount or by the
bit width or more gives 0 (so does NumPy's left_shift; its right_shift of a negative signed
value would give -1, which shift_right_logical does not: it shifts in zeros).

`threefry2x32` is JAX's primitive of the same name: four uint32 operands (the two key words
and the two counter words, rank-0 ones standing beside arrays), two uint32 results, the
20-round Threefry-2x32 of Salmon et al., "Parallel random numbers: as easy as 1, 2, 3" (SC11),
whose known-answer vectors (Random123's kat_vectors) tests/test_random.py checks.
"""
from __future__ import annotations

import numpy as np

from ir.core import ShapedArray, common_arrays
from ir.primitive import Primitive
from ir.primitives.ad_util import zero_jvp
from ir.primitives.batch_util import elementwise_batcher
from ir.primitives.elementwise import INTEGER, binary, elementwise_shape
from ir.primitives.taylor_util import zero_taylor
from ir.tracing import bind


# -------------------- shifts --------------------

def _shift_amount_in_range(x, y):
    """Where the shift amount y is in [0, bit width of x)."""
    bits = 8 * np.dtype(x.dtype).itemsize
    return (y >= 0) & (y < bits)


def _shift_left_impl(x, y):
    xp, (x, y) = common_arrays(x, y)
    x, y = xp.asarray(x), xp.asarray(y)
    # NB: through the unsigned type of x's width, so that shifting a signed value is modular too
    unsigned = np.dtype(f"u{x.dtype.itemsize}")
    shifted = xp.left_shift(x.view(unsigned), xp.where(_shift_amount_in_range(x, y), y, 0).astype(unsigned))
    return xp.where(_shift_amount_in_range(x, y), shifted.view(x.dtype), x.dtype.type(0))


def _shift_right_logical_impl(x, y):
    xp, (x, y) = common_arrays(x, y)
    x, y = xp.asarray(x), xp.asarray(y)
    unsigned = np.dtype(f"u{x.dtype.itemsize}")  # zeros shift in, whatever the sign
    shifted = xp.right_shift(x.view(unsigned), xp.where(_shift_amount_in_range(x, y), y, 0).astype(unsigned))
    return xp.where(_shift_amount_in_range(x, y), shifted.view(x.dtype), x.dtype.type(0))


# In C a shift by the width or more is undefined; both go through unsigned long long, whose
# conversions are modular, and the mask keeps only x's own bits before a logical right shift.
_IN_RANGE = "({1} >= 0 && {1} < 8 * (long long)sizeof({out_type}))"
_SHIFT_LEFT_CUDA = (f"({_IN_RANGE} ? static_cast<{{out_type}}>(static_cast<unsigned long long>({{0}}) << {{1}}) "
                    f": static_cast<{{out_type}}>(0))")
_SHIFT_RIGHT_LOGICAL_CUDA = (
    f"({_IN_RANGE} ? static_cast<{{out_type}}>((static_cast<unsigned long long>({{0}}) "
    f"& (~0ULL >> (64 - 8 * sizeof({{out_type}})))) >> {{1}}) : static_cast<{{out_type}}>(0))")

# the same in C99: casts for static_casts
_SHIFT_LEFT_C = (f"({_IN_RANGE} ? ({{out_type}})((unsigned long long)({{0}}) << {{1}}) "
                 f": ({{out_type}})0)")
_SHIFT_RIGHT_LOGICAL_C = (
    f"({_IN_RANGE} ? ({{out_type}})(((unsigned long long)({{0}}) "
    f"& (~0ULL >> (64 - 8 * sizeof({{out_type}})))) >> {{1}}) : ({{out_type}})0)")

shift_left_p = binary("shift_left", _shift_left_impl, INTEGER, cuda_template=_SHIFT_LEFT_CUDA,
                      c_template=_SHIFT_LEFT_C)
shift_right_logical_p = binary("shift_right_logical", _shift_right_logical_impl, INTEGER,
                               cuda_template=_SHIFT_RIGHT_LOGICAL_CUDA, c_template=_SHIFT_RIGHT_LOGICAL_C)
for _prim in (shift_left_p, shift_right_logical_p):
    _prim.define(jvp=zero_jvp(_prim), taylor=zero_taylor(_prim))

# -------------------- threefry2x32 --------------------

_U32 = np.dtype(np.uint32)
_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))
_PARITY = np.uint32(0x1BD11BDA)  # Threefish's key-schedule constant


def _threefry2x32_abstract_eval(k0, k1, x0, x1):
    operands = (k0, k1, x0, x1)
    if any(a.dtype != _U32 for a in operands):
        raise TypeError("threefry2x32 needs uint32 operands, got " + ", ".join(a.str_short() for a in operands))
    shape = elementwise_shape("threefry2x32", *operands)
    return [ShapedArray(shape, _U32), ShapedArray(shape, _U32)]


def _rotate_left(x, d):
    return (x << np.uint32(d)) | (x >> np.uint32(32 - d))


def threefry2x32_reference(k0, k1, x0, x1):
    """The 20 rounds on arrays (NumPy's or CuPy's): uint32 addition wraps, as the cipher wants."""
    xp, (k0, k1, x0, x1) = common_arrays(k0, k1, x0, x1)
    k0, k1, x0, x1 = (xp.asarray(v, dtype=_U32) for v in (k0, k1, x0, x1))
    shape = np.broadcast_shapes(k0.shape, k1.shape, x0.shape, x1.shape)
    # NB: flat: 0-d arrays would become NumPy scalars, whose wrapping additions warn
    k0, k1, x0, x1 = (xp.broadcast_to(v, shape).reshape(-1) for v in (k0, k1, x0, x1))
    ks = (k0, k1, k0 ^ k1 ^ _PARITY)
    x = [x0 + ks[0], x1 + ks[1]]
    for block in range(5):
        for rotation in _ROTATIONS[block % 2]:
            x[0] = x[0] + x[1]
            x[1] = _rotate_left(x[1], rotation) ^ x[0]
        x[0] = x[0] + ks[(block + 1) % 3]
        x[1] = x[1] + ks[(block + 2) % 3] + np.uint32(block + 1)
    return [x[0].reshape(shape), x[1].reshape(shape)]


def _threefry2x32_batch(values, dims, **params):
    outs, dim = elementwise_batcher(threefry2x32_p)(values, dims, **params)
    return outs, [dim, dim]


# NB: not `elementwise` for the fusion planner: it has two results, which a fused kernel does not
# take; the CuPy lowering calls its implementation on CuPy arrays, as it does for gather.
threefry2x32_p = Primitive("threefry2x32", params={}, abstract_eval=_threefry2x32_abstract_eval,
                           impl=threefry2x32_reference, multiple_results=True, batch=_threefry2x32_batch)
threefry2x32_p.define(jvp=zero_jvp(threefry2x32_p), taylor=zero_taylor(threefry2x32_p))


# -------------------- binders --------------------

def shift_left(x, y):
    return bind(shift_left_p, x, y)


def shift_right_logical(x, y):
    return bind(shift_right_logical_p, x, y)


def threefry2x32(k0, k1, x0, x1):
    return bind(threefry2x32_p, k0, k1, x0, x1)

