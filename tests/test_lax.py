"""ftrans.lax against NumPy and closed forms, one table row per public name.

For every row: eager equals the NumPy reference; `jit` equals eager; `vmap` over the
first argument equals a Python loop; `check_grads` (forward and reverse, order 2) in
every differentiable argument. `test_every_public_name_has_a_row` fails for a name of
`ftrans.lax.__all__` without a row. Convolution and windows are also swept by hypothesis
(shapes, strides, padding, dilations, groups, layouts) against a loop-based reference.
"""
from __future__ import annotations

import dataclasses
import itertools
from typing import Callable

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import ftrans as ft
import ftrans.numpy as fnp
import special_reference
from conftest import jit_for
from ftrans import lax


# -------------------- references --------------------

def ref_pad(x, value, config):
    """lax.pad by hand: interior holes, then low/high (negative: cropping)."""
    for axis, (low, high, interior) in enumerate(config):
        n = x.shape[axis]
        shape = list(x.shape)
        shape[axis] = n + max(n - 1, 0) * interior
        out = np.full(shape, value, x.dtype)
        index = [slice(None)] * x.ndim
        index[axis] = slice(None, None, interior + 1)
        out[tuple(index)] = x
        x = np.moveaxis(out, axis, 0)
        x = np.concatenate([np.full((max(low, 0),) + x.shape[1:], value, x.dtype), x[max(-low, 0):]])
        x = np.concatenate([x[:x.shape[0] - max(-high, 0)], np.full((max(high, 0),) + x.shape[1:], value, x.dtype)])
        x = np.moveaxis(x, 0, axis)
    return x


def ref_conv(lhs, rhs, strides, pads, lhs_dil, rhs_dil, groups=1, batch_groups=1):
    """Cross-correlation of lhs (N, C, *S) with rhs (O, I, *K), one output position at a time."""
    nsp = lhs.ndim - 2
    lhs = ref_pad(lhs, 0, [(0, 0, 0)] * 2 + [(lo, hi, d - 1) for (lo, hi), d in zip(pads, lhs_dil)])
    kernel = ref_pad(rhs, 0, [(0, 0, 0)] * 2 + [(0, 0, d - 1) for d in rhs_dil])  # dilated kernel
    k_shape = kernel.shape[2:]
    out_sp = [(s - k) // st + 1 for s, k, st in zip(lhs.shape[2:], k_shape, strides)]
    n, o = lhs.shape[0] // batch_groups, rhs.shape[0]
    out = np.zeros((n, o, *out_sp), np.result_type(lhs, rhs))
    og, ig, nb, ob = o // groups, rhs.shape[1], n, o // batch_groups
    for pos in itertools.product(*(range(m) for m in out_sp)):
        window = lhs[(slice(None), slice(None)) + tuple(slice(p * st, p * st + k)
                                                        for p, st, k in zip(pos, strides, k_shape))]
        axes = list(range(2, 2 + nsp))
        for g in range(groups):
            for b in range(batch_groups):
                w = window[b * nb:(b + 1) * nb, g * ig:(g + 1) * ig]
                f_lo = g * og if groups > 1 else b * ob
                f_hi = f_lo + (og if groups > 1 else ob)
                contracted = ([1] + axes, [1] + axes)
                out[(slice(None), slice(f_lo, f_hi)) + pos] = np.tensordot(w, kernel[f_lo:f_hi], contracted)
    return out


def ref_reduce_window(x, init, op, window, strides, pads, base=None, wdil=None):
    base = base or (1,) * x.ndim
    wdil = wdil or (1,) * x.ndim
    x = ref_pad(x, init, [(lo, hi, b - 1) for (lo, hi), b in zip(pads, base)])
    spans = [(k - 1) * d + 1 for k, d in zip(window, wdil)]
    out_shape = [(n - s) // st + 1 for n, s, st in zip(x.shape, spans, strides)]
    out = np.empty(out_shape, x.dtype)
    for pos in itertools.product(*(range(m) for m in out_shape)):
        block = x[tuple(slice(p * st, p * st + s, d) for p, st, s, d in zip(pos, strides, spans, wdil))]
        out[pos] = op.reduce(block.ravel(), initial=init)
    return out


def ref_dynamic_slice(x, starts, sizes):
    starts = [min(max(s + d if s < 0 else s, 0), d - n) for s, d, n in zip(starts, x.shape, sizes)]
    return x[tuple(slice(s, s + n) for s, n in zip(starts, sizes))]


def ref_dynamic_update_slice(x, u, starts):
    starts = [min(max(s + d if s < 0 else s, 0), d - n) for s, d, n in zip(starts, x.shape, u.shape)]
    out = x.copy()
    out[tuple(slice(s, s + n) for s, n in zip(starts, u.shape))] = u
    return out


def ref_rem_div(x, y):
    return np.trunc(x / y).astype(x.dtype) if x.dtype.kind in "iu" else x / y


# -------------------- the table --------------------

@dataclasses.dataclass
class Row:
    fun: Callable            # applied to the arrays `args` makes
    args: Callable           # rng, dtype -> tuple of NumPy arrays
    ref: Callable            # the same arrays -> what NumPy computes
    diff: tuple = ()         # differentiable argument positions (floats): check_grads in each
    dtypes: tuple = (np.float64, np.float32)
    vmap: bool = True        # vmap over the first argument's new leading axis vs a loop
    rtol: float = None


def normal(*shape):
    return lambda rng, dtype: (rng.standard_normal(shape).astype(dtype),)


def normals(*shapes):
    return lambda rng, dtype: tuple(rng.standard_normal(s).astype(dtype) for s in shapes)


def positive(*shape):
    return lambda rng, dtype: (rng.uniform(0.5, 2.0, shape).astype(dtype),)


def _gamma_operands(rng, dtype):
    """(a, x): x on both sides of a (P's series and Q's continued fraction)."""
    a = rng.uniform(0.5, 5, 4)
    return a.astype(dtype), (a * rng.uniform(0.2, 3, 4)).astype(dtype)


def ints(*shapes, lo=-5, hi=6):
    return lambda rng, dtype: tuple(rng.integers(lo, hi, s).astype(np.int64) for s in shapes)


def _np_scan(x):
    return np.cumsum(x, axis=0)


_CONV_NHWC = ("NHWC", "HWIO", "NHWC")
I64 = (np.int64,)
ROWS = {
    "abs": Row(lax.abs, normal(3, 4), np.abs),
    "add": Row(lax.add, normals((3,), (3,)), np.add, (0, 1)),
    "sub": Row(lax.sub, normals((3,), (3,)), np.subtract, (0, 1)),
    "mul": Row(lax.mul, normals((3,), (3,)), np.multiply, (0, 1)),
    "div": Row(lax.div, lambda rng, dtype: (rng.standard_normal(4).astype(dtype), rng.uniform(1, 2, 4).astype(dtype)),
               np.divide, (0, 1)),
    "neg": Row(lax.neg, normal(3), np.negative, (0,)),
    "sign": Row(lax.sign, normal(3), np.sign),
    "exp": Row(lax.exp, normal(3), np.exp, (0,)),
    "expm1": Row(lax.expm1, normal(3), np.expm1, (0,)),
    "log": Row(lax.log, positive(3), np.log, (0,)),
    "log1p": Row(lax.log1p, positive(3), np.log1p, (0,)),
    "sqrt": Row(lax.sqrt, positive(3), np.sqrt, (0,)),
    "rsqrt": Row(lax.rsqrt, positive(3, 2), lambda x: 1 / np.sqrt(x), (0,)),
    "sin": Row(lax.sin, normal(3), np.sin, (0,)),
    "cos": Row(lax.cos, normal(3), np.cos, (0,)),
    "tan": Row(lax.tan, normal(3), np.tan, (0,)),
    "atan": Row(lax.atan, normal(3), np.arctan, (0,)),
    "sinh": Row(lax.sinh, normal(3), np.sinh, (0,)),
    "cosh": Row(lax.cosh, normal(3), np.cosh, (0,)),
    "tanh": Row(lax.tanh, normal(3), np.tanh, (0,)),
    "logistic": Row(lax.logistic, normal(3), lambda x: 1 / (1 + np.exp(-x)), (0,)),
    "floor": Row(lax.floor, normal(3), np.floor),
    "ceil": Row(lax.ceil, normal(3), np.ceil),
    "square": Row(lax.square, normal(3), np.square, (0,)),
    "atan2": Row(lax.atan2, normals((4,), (4,)), np.arctan2, (0, 1)),
    # the incomplete gamma and beta functions against mpmath (tests/special_reference.py), differentiated
    # to order 2 in x (their derivatives in a: tests/test_scipy.py)
    "igamma": Row(lax.igamma, _gamma_operands, special_reference.gammainc, (1,)),
    "igammac": Row(lax.igammac, _gamma_operands, special_reference.gammaincc, (1,)),
    "igamma_grad_a": Row(lax.igamma_grad_a, _gamma_operands, special_reference.gammainc_grad_a, (1,)),
    "random_gamma_grad": Row(lax.random_gamma_grad, _gamma_operands, special_reference.random_gamma_grad, (1,)),
    "betainc": Row(lax.betainc, lambda rng, dtype: (rng.uniform(0.5, 5, 4).astype(dtype),
                                                    rng.uniform(0.5, 5, 4).astype(dtype),
                                                    rng.uniform(0.05, 0.95, 4).astype(dtype)),
                   special_reference.betainc, (2,)),
    "rem": Row(lax.rem, lambda rng, dtype: (rng.standard_normal(4).astype(dtype) * 3,
                                            rng.uniform(0.5, 2, 4).astype(dtype)), np.fmod, (0,)),
    "round": Row(lax.round, lambda rng, dtype: ((rng.standard_normal(6) * 4).astype(dtype),),
                 lambda x: np.sign(x) * np.floor(np.abs(x) + 0.5)),
    "asin": Row(lax.asin, lambda rng, dtype: (rng.uniform(-0.9, 0.9, 3).astype(dtype),), np.arcsin, (0,)),
    "acos": Row(lax.acos, lambda rng, dtype: (rng.uniform(-0.9, 0.9, 3).astype(dtype),), np.arccos, (0,)),
    "atanh": Row(lax.atanh, lambda rng, dtype: (rng.uniform(-0.9, 0.9, 3).astype(dtype),), np.arctanh, (0,)),
    "asinh": Row(lax.asinh, normal(3), np.arcsinh, (0,)),
    "acosh": Row(lax.acosh, lambda rng, dtype: (rng.uniform(1.1, 4, 3).astype(dtype),), np.arccosh, (0,)),
    "exp2": Row(lax.exp2, normal(3), np.exp2, (0,)),
    "is_finite": Row(lax.is_finite, lambda rng, dtype: (np.array([1.0, np.inf, np.nan, -np.inf], dtype),),
                     np.isfinite),
    "pow": Row(lax.pow, lambda rng, dtype: (rng.uniform(0.5, 2, 3).astype(dtype),
                                            rng.standard_normal(3).astype(dtype)), np.power, (0, 1)),
    "integer_pow": Row(lambda x: lax.integer_pow(x, 3), normal(3), lambda x: x ** 3, (0,)),
    "max": Row(lax.max, normals((4,), (4,)), np.maximum, (0, 1)),
    "min": Row(lax.min, normals((4,), (4,)), np.minimum, (0, 1)),
    "clamp": Row(lambda x: lax.clamp(-0.5, x, 0.5), normal(5), lambda x: np.clip(x, -0.5, 0.5), (0,)),
    "eq": Row(lax.eq, ints((4,), (4,), lo=0, hi=2), np.equal, dtypes=I64),
    "ne": Row(lax.ne, ints((4,), (4,), lo=0, hi=2), np.not_equal, dtypes=I64),
    "lt": Row(lax.lt, normals((4,), (4,)), np.less),
    "le": Row(lax.le, normals((4,), (4,)), np.less_equal),
    "gt": Row(lax.gt, normals((4,), (4,)), np.greater),
    "ge": Row(lax.ge, normals((4,), (4,)), np.greater_equal),
    "bitwise_and": Row(lax.bitwise_and, ints((4,), (4,)), np.bitwise_and, dtypes=I64),
    "bitwise_or": Row(lax.bitwise_or, ints((4,), (4,)), np.bitwise_or, dtypes=I64),
    "bitwise_xor": Row(lax.bitwise_xor, ints((4,), (4,)), np.bitwise_xor, dtypes=I64),
    "bitwise_not": Row(lax.bitwise_not, ints((4,)), np.bitwise_not, dtypes=I64),
    "select": Row(lambda p, x, y: lax.select(p > 0, x, y), normals((2, 3), (2, 3), (2, 3)),
                  lambda p, x, y: np.where(p > 0, x, y), (1, 2)),
    "select_n": Row(lambda w, x, y, z: lax.select_n(fnp.asarray(w > 0, np.int32) + fnp.asarray(w > 1, np.int32),
                                                    x, y, z),
                    normals((5,), (5,), (5,), (5,)),
                    lambda w, x, y, z: np.choose((w > 0).astype(int) + (w > 1), [x, y, z]), (1, 2, 3)),
    "convert_element_type": Row(lambda x: lax.convert_element_type(x, np.int32), normal(4),
                                lambda x: x.astype(np.int32)),
    "broadcast_in_dim": Row(lambda x: lax.broadcast_in_dim(x, (2, 3, 4), (0, 2)), normal(2, 4),
                            lambda x: np.broadcast_to(x[:, None, :], (2, 3, 4)), (0,)),
    "broadcast": Row(lambda x: lax.broadcast(x, (2,)), normal(3), lambda x: np.broadcast_to(x, (2, 3)), (0,)),
    "reshape": Row(lambda x: lax.reshape(x, (3, 2), (1, 0)), normal(2, 3), lambda x: x.T.reshape(3, 2), (0,)),
    "transpose": Row(lambda x: lax.transpose(x, (1, 0)), normal(2, 3), np.transpose, (0,)),
    "squeeze": Row(lambda x: lax.squeeze(x, (1,)), normal(2, 1, 3), lambda x: x[:, 0], (0,)),
    "expand_dims": Row(lambda x: lax.expand_dims(x, (0, 2)), normal(2, 3), lambda x: x[None, :, None], (0,)),
    "collapse": Row(lambda x: lax.collapse(x, 1, 3), normal(2, 3, 4), lambda x: x.reshape(2, 12), (0,)),
    "concatenate": Row(lambda x, y: lax.concatenate([x, y], 1), normals((2, 3), (2, 1)),
                       lambda x, y: np.concatenate([x, y], 1), (0, 1)),
    "rev": Row(lambda x: lax.rev(x, (1,)), normal(2, 3), lambda x: x[:, ::-1], (0,)),
    "pad": Row(lambda x: lax.pad(x, 0.5, [(1, -1, 1), (-1, 2, 0)]), normal(3, 4),
               lambda x: ref_pad(x, 0.5, [(1, -1, 1), (-1, 2, 0)]), (0,)),
    "iota": Row(lambda x: lax.iota(np.int32, 4) + x, normal(4), lambda x: np.arange(4) + x),
    "broadcasted_iota": Row(lambda x: lax.broadcasted_iota(np.float64, (2, 3), 1) * x, normal(2, 3),
                            lambda x: np.arange(3.0)[None] * x, (0,)),
    "full": Row(lambda x: lax.full((2,), 3.0) * x, normal(2), lambda x: 3.0 * x, (0,)),
    "full_like": Row(lambda x: lax.full_like(x, 2.0) + x, normal(2), lambda x: 2.0 + x, (0,)),
    "zeros_like_array": Row(lambda x: lax.zeros_like_array(x) + x, normal(2), lambda x: x, (0,)),
    "slice": Row(lambda x: lax.slice(x, (0, 1), (3, 4), (2, 2)), normal(3, 4), lambda x: x[0:3:2, 1:4:2], (0,)),
    "slice_in_dim": Row(lambda x: lax.slice_in_dim(x, 1, None, 2, axis=1), normal(3, 5), lambda x: x[:, 1::2], (0,)),
    "index_in_dim": Row(lambda x: lax.index_in_dim(x, -1, 1, keepdims=False), normal(3, 5), lambda x: x[:, -1], (0,)),
    "dynamic_slice": Row(lambda x, i: lax.dynamic_slice(x, (i[0], i[1]), (2, 3)),
                         lambda rng, dtype: (rng.standard_normal((4, 6)).astype(dtype), rng.integers(-8, 8, 2)),
                         lambda x, i: ref_dynamic_slice(x, i, (2, 3)), (0,)),
    "dynamic_slice_in_dim": Row(lambda x, i: lax.dynamic_slice_in_dim(x, i[0], 2, axis=1),
                                lambda rng, dtype: (rng.standard_normal((3, 5)).astype(dtype), rng.integers(-6, 6, 1)),
                                lambda x, i: ref_dynamic_slice(x, (0, i[0]), (3, 2)), (0,)),
    "dynamic_index_in_dim": Row(lambda x, i: lax.dynamic_index_in_dim(x, i[0], 0, keepdims=False),
                                lambda rng, dtype: (rng.standard_normal((4, 3)).astype(dtype), rng.integers(-4, 4, 1)),
                                lambda x, i: ref_dynamic_slice(x, (i[0], 0), (1, 3))[0], (0,)),
    "dynamic_update_slice": Row(lambda x, u, i: lax.dynamic_update_slice(x, u, (i[0], i[1])),
                                lambda rng, dtype: (rng.standard_normal((4, 5)).astype(dtype),
                                                    rng.standard_normal((2, 3)).astype(dtype), rng.integers(-6, 6, 2)),
                                lambda x, u, i: ref_dynamic_update_slice(x, u, i), (0, 1)),
    "dynamic_update_slice_in_dim": Row(lambda x, u, i: lax.dynamic_update_slice_in_dim(x, u, i[0], 1),
                                       lambda rng, dtype: (rng.standard_normal((3, 5)).astype(dtype),
                                                           rng.standard_normal((3, 2)).astype(dtype),
                                                           rng.integers(-6, 6, 1)),
                                       lambda x, u, i: ref_dynamic_update_slice(x, u, (0, i[0])), (0, 1)),
    "dynamic_update_index_in_dim": Row(lambda x, u, i: lax.dynamic_update_index_in_dim(x, u, i[0], 0),
                                       lambda rng, dtype: (rng.standard_normal((4, 3)).astype(dtype),
                                                           rng.standard_normal(3).astype(dtype),
                                                           rng.integers(-4, 4, 1)),
                                       lambda x, u, i: ref_dynamic_update_slice(x, u[None], (i[0], 0)), (0, 1)),
    "reduce_sum": Row(lambda x: lax.reduce_sum(x, (0, 2)), normal(2, 3, 4), lambda x: x.sum((0, 2)), (0,)),
    "reduce_prod": Row(lambda x: lax.reduce_prod(x, (1,)), normal(2, 3), lambda x: x.prod(1), (0,)),
    "reduce_max": Row(lambda x: lax.reduce_max(x, (1,)), normal(2, 3), lambda x: x.max(1), (0,)),
    "reduce_min": Row(lambda x: lax.reduce_min(x, (0,)), normal(2, 3), lambda x: x.min(0), (0,)),
    "argmax": Row(lambda x: lax.argmax(x, 1, np.int32), normal(2, 5), lambda x: np.argmax(x, 1).astype(np.int32)),
    "argmin": Row(lambda x: lax.argmin(x, 0, np.int64), normal(4, 3), lambda x: np.argmin(x, 0)),
    "sort": Row(lambda x: lax.sort(x, 0), normal(4, 3), lambda x: np.sort(x, 0), (0,)),
    # one array of both results: the vmap row stacks a single output
    "sort_key_val": Row(lambda k, v: fnp.stack(lax.sort_key_val(k, v)), normals((2, 5), (2, 5)),
                        lambda k, v: np.stack([np.sort(k, -1),
                                               np.take_along_axis(v, np.argsort(k, -1, kind="stable"), -1)]),
                        (0, 1)),
    "cumsum": Row(lambda x: lax.cumsum(x, 1, reverse=True), normal(2, 4),
                  lambda x: np.flip(np.cumsum(np.flip(x, 1), 1), 1), (0,)),
    "cumprod": Row(lambda x: lax.cumprod(x, 0), normal(4, 3), lambda x: np.cumprod(x, 0), (0,)),
    "cummax": Row(lambda x: lax.cummax(x, 1), normal(2, 5), lambda x: np.maximum.accumulate(x, 1), (0,)),
    "cummin": Row(lambda x: lax.cummin(x, 0, reverse=True), normal(5, 2),
                  lambda x: np.flip(np.minimum.accumulate(np.flip(x, 0), 0), 0), (0,)),
    "dot": Row(lax.dot, normals((2, 3), (3, 4)), np.dot, (0, 1)),
    "dot_general": Row(lambda x, y: lax.dot_general(x, y, (((2,), (1,)), ((0,), (0,)))), normals((2, 3, 4), (2, 4, 5)),
                       lambda x, y: np.einsum("bij,bjk->bik", x, y), (0, 1)),
    "batch_matmul": Row(lax.batch_matmul, normals((2, 3, 4), (2, 4, 2)), np.matmul, (0, 1)),
    "conv_general_dilated": Row(
        lambda x, w: lax.conv_general_dilated(x, w, (2, 1), [(1, 0), (2, 1)], (1, 2), (2, 1),
                                              feature_group_count=2),
        normals((2, 4, 5, 4), (6, 2, 2, 3)),
        lambda x, w: ref_conv(x, w, (2, 1), [(1, 0), (2, 1)], (1, 2), (2, 1), groups=2), (0, 1)),
    "conv": Row(lambda x, w: lax.conv(x, w, (1,), "SAME"), normals((2, 3, 7), (4, 3, 3)),
                lambda x, w: ref_conv(x, w, (1,), [(1, 1)], (1,), (1,)), (0, 1)),
    "conv_with_general_padding": Row(
        lambda x, w: lax.conv_with_general_padding(x, w, (1, 1), [(0, 1), (1, 0)], (2, 1), (1, 2)),
        normals((1, 2, 3, 5), (3, 2, 2, 2)),
        lambda x, w: ref_conv(x, w, (1, 1), [(0, 1), (1, 0)], (2, 1), (1, 2)), (0, 1)),
    "conv_dimension_numbers": Row(
        lambda x, w: lax.conv_general_dilated(x, w, (1, 1), "VALID", dimension_numbers=lax.conv_dimension_numbers(
            x.shape, w.shape, _CONV_NHWC)),
        normals((2, 5, 4, 3), (2, 3, 3, 4)),
        lambda x, w: ref_conv(x.transpose(0, 3, 1, 2), w.transpose(3, 2, 0, 1), (1, 1), [(0, 0)] * 2, (1, 1),
                              (1, 1)).transpose(0, 2, 3, 1), (0, 1)),
    "ConvDimensionNumbers": Row(
        lambda x, w: lax.conv_general_dilated(x, w, (1,), "VALID",
                                              dimension_numbers=lax.ConvDimensionNumbers((2, 0, 1), (1, 2, 0),
                                                                                         (1, 0, 2))),
        normals((2, 5, 3), (2, 4, 2)),
        lambda x, w: ref_conv(x.transpose(2, 0, 1), w.transpose(1, 2, 0), (1,), [(0, 0)], (1,),
                              (1,)).transpose(1, 0, 2),
        (0, 1)),
    "padtype_to_pads": Row(lambda x: lax.pad(x, 0.0, [(lo, hi, 0) for lo, hi in lax.padtype_to_pads((5,), (4,), (2,),
                                                                                                     "SAME")]),
                           normal(5), lambda x: np.pad(x, (1, 2)), (0,)),
    "reduce_window": Row(lambda x: lax.reduce_window(x, -np.inf, lax.max, (1, 2, 2), (1, 2, 1), "SAME"),
                         normal(2, 5, 4),
                         lambda x: ref_reduce_window(x, -np.inf, np.maximum, (1, 2, 2), (1, 2, 1),
                                                     lax.padtype_to_pads(x.shape, (1, 2, 2), (1, 2, 1), "SAME")),
                         (0,)),
    "reduce_precision": Row(lambda x: lax.reduce_precision(x, 5, 10), normal(3, 4),
                            lambda x: x.astype(np.float16).astype(x.dtype), rtol=1e-15),  # a staircase: no FD
    "top_k": Row(lambda x: lax.top_k(x, 3)[0], normal(2, 5), lambda x: -np.sort(-x, axis=-1)[:, :3], (0,)),
    "associative_scan": Row(lambda x: lax.associative_scan(lax.add, x), normal(7, 2), _np_scan, (0,)),
    "stop_gradient": Row(lambda x: lax.stop_gradient(x) * x, normal(3), lambda x: x * x),
    "cond": Row(lambda x: lax.cond(True, lambda v: v * 2.0, lambda v: v, x), normal(3), lambda x: 2 * x, (0,)),
    "switch": Row(lambda x: lax.switch(1, [lambda v: v, lambda v: v * 3.0], x), normal(3), lambda x: 3 * x, (0,)),
    "while_loop": Row(lambda x: lax.while_loop(lambda c: c[0] < 3, lambda c: (c[0] + 1, c[1] * 2.0), (0, x))[1],
                      normal(3), lambda x: 8 * x, (0,)),
    "fori_loop": Row(lambda x: lax.fori_loop(0, 3, lambda i, v: v * 2.0, x), normal(3), lambda x: 8 * x, (0,)),
    "scan": Row(lambda x: lax.scan(lambda c, v: (c + v, c), 0.0, x)[1], normal(4), lambda x: np.cumsum(x) - x, (0,)),
    "map": Row(lambda x: lax.map(lambda v: v * v, x), normal(4, 2), lambda x: x * x, (0,)),
}

INT_ROWS = {  # integer semantics that need their own check
    "div": (lax.div, ints((6,), (6,), lo=1, hi=7), lambda x, y: np.trunc(x / y).astype(x.dtype)),
}


# names whose own test files check them, as this table would
TESTED_ELSEWHERE = {
    **{name: "tests/test_special_accuracy.py" for name in ("digamma", "erf", "erf_inv", "erfc", "lgamma", "polygamma")},
    **{name: "tests/test_collectives.py" for name in ("all_gather", "all_to_all", "axis_index", "pmax", "pmean",
                                                       "pmin", "ppermute", "psum", "psum_scatter")},
    "while_loop": "tests/test_while_loop.py",
    "RoundingMethod": "the round row (its two constants: tests/test_numpy_api.py rounds to even)",
    **{name: "tests/test_primitives.py and tests/test_random.py" for name in ("shift_left", "shift_right_logical")},
}


def test_every_public_name_has_a_row():
    missing = sorted(set(lax.__all__) - set(ROWS) - set(TESTED_ELSEWHERE))
    assert not missing, f"ftrans.lax names without a row in tests/test_lax.py: {missing}"


def _args(name, dtype):
    return ROWS[name].args(np.random.default_rng(sorted(ROWS).index(name)), dtype)


def _close(a, b, dtype, rtol=None):
    rtol = rtol or (1e-5 if dtype == np.float32 else 1e-12)
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=rtol, atol=rtol)


CASES = [(name, dtype) for name, row in ROWS.items() for dtype in row.dtypes]


@pytest.mark.parametrize("name,dtype", CASES)
def test_eager_matches_numpy(name, dtype):
    row, args = ROWS[name], _args(name, dtype)
    out = row.fun(*args)
    _close(out, row.ref(*args), dtype, row.rtol)


@pytest.mark.parametrize("name,dtype", CASES)
def test_jit_matches_eager(name, dtype, jit_backend):
    row, args = ROWS[name], _args(name, dtype)
    _close(jit_for(row.fun, jit_backend)(*args), row.fun(*args), dtype, row.rtol)


@pytest.mark.parametrize("name", [n for n, r in ROWS.items() if r.vmap])
def test_vmap_matches_loop(name):
    row = ROWS[name]
    dtype = row.dtypes[0]
    rng = np.random.default_rng(7)
    batches = [row.args(rng, dtype) for _ in range(3)]
    stacked_first = np.stack([b[0] for b in batches])
    rest = batches[0][1:]
    out = ft.vmap(lambda x: row.fun(x, *rest))(stacked_first)
    expected = np.stack([np.asarray(row.fun(b[0], *rest)) for b in batches])
    _close(out, expected, dtype, row.rtol)
    if len(rest):  # every argument batched
        stacked = [np.stack([b[i] for b in batches]) for i in range(len(batches[0]))]
        out = ft.vmap(row.fun)(*stacked)
        expected = np.stack([np.asarray(row.fun(*b)) for b in batches])
        _close(out, expected, dtype, row.rtol)


@pytest.mark.parametrize("name", [n for n, r in ROWS.items() if r.diff])
def test_check_grads(name):
    row = ROWS[name]
    args = _args(name, np.float64)
    for position in row.diff:
        def in_one(x, position=position):
            return row.fun(*args[:position], x, *args[position + 1:])
        ft.check_grads(in_one, (args[position],), order=2, modes=("fwd", "rev"))


@pytest.mark.parametrize("name", sorted(INT_ROWS))
def test_integer_semantics(name):
    fun, make, ref = INT_ROWS[name]
    x, y = make(np.random.default_rng(0), np.int64)
    for sign_x, sign_y in itertools.product((1, -1), repeat=2):
        np.testing.assert_array_equal(fun(sign_x * x, sign_y * y), ref(sign_x * x, sign_y * y))
        np.testing.assert_array_equal(ft.jit(fun)(sign_x * x, sign_y * y), ref(sign_x * x, sign_y * y))


# -------------------- sweeps: convolution, windows, dynamic slices --------------------

@st.composite
def conv_configs(draw):
    nsp = draw(st.integers(1, 2))
    groups, batch_groups = draw(st.sampled_from([(1, 1), (2, 1), (1, 2), (3, 1)]))
    i = draw(st.integers(1, 2))
    n = batch_groups * draw(st.integers(1, 2))
    o = groups * batch_groups * draw(st.integers(1, 2))
    window = tuple(draw(st.integers(1, 3)) for _ in range(nsp))
    rhs_dil = tuple(draw(st.integers(1, 2)) for _ in range(nsp))
    lhs_dil = tuple(draw(st.integers(1, 2)) for _ in range(nsp))
    strides = tuple(draw(st.integers(1, 3)) for _ in range(nsp))
    pads = [(draw(st.integers(-1, 2)), draw(st.integers(-1, 2))) for _ in range(nsp)]
    spans = [(k - 1) * d + 1 for k, d in zip(window, rhs_dil)]
    spatial = tuple(max(draw(st.integers(1, 5)), -(-(s - lo - hi + 2) // ld))
                    for s, (lo, hi), ld in zip(spans, pads, lhs_dil))
    return dict(lhs_shape=(n, i * groups, *spatial), rhs_shape=(o, i, *window), strides=strides, pads=pads,
                lhs_dil=lhs_dil, rhs_dil=rhs_dil, groups=groups, batch_groups=batch_groups)


@given(conv_configs(), st.sampled_from([np.float64, np.float32]))
def test_conv_general_dilated_against_loops(config, dtype):
    rng = np.random.default_rng(0)
    lhs = rng.standard_normal(config["lhs_shape"]).astype(dtype)
    rhs = rng.standard_normal(config["rhs_shape"]).astype(dtype)
    args = (config["strides"], config["pads"], config["lhs_dil"], config["rhs_dil"])
    expected = ref_conv(lhs, rhs, *args, config["groups"], config["batch_groups"])

    def conv(x, w):
        return lax.conv_general_dilated(x, w, *args, feature_group_count=config["groups"],
                                        batch_group_count=config["batch_groups"])
    _close(conv(lhs, rhs), expected, dtype)
    _close(ft.jit(conv)(lhs, rhs), expected, dtype)


@pytest.mark.parametrize("specs", [("NHWC", "HWIO", "NHWC"), ("NCHW", "OIHW", "NHWC"), ("NWHC", "HWOI", "CNHW")])
def test_conv_layouts_agree_with_nchw(specs):
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal((2, 3, 5, 4)), rng.standard_normal((4, 3, 2, 3))  # NCHW, OIHW
    base = lax.conv_general_dilated(x, w, (1, 2), "SAME", rhs_dilation=(2, 1))
    to = lambda a, src, dst: np.transpose(a, [src.index(c) for c in dst])  # noqa: E731
    out = lax.conv_general_dilated(to(x, "NCHW", specs[0]), to(w, "OIHW", specs[1]), (1, 2), "SAME",
                                   rhs_dilation=(2, 1), dimension_numbers=specs)
    np.testing.assert_allclose(out, to(np.asarray(base), "NCHW", specs[2]), rtol=1e-12)


def test_conv_is_differentiable_in_both_operands_and_batches():
    rng = np.random.default_rng(2)
    x, w = rng.standard_normal((2, 4, 6, 5)), rng.standard_normal((2, 2, 3, 2))

    def f(x, w):
        return lax.conv_general_dilated(x, w, (2, 1), "SAME", (1, 1), (1, 2), ("NCHW", "OIHW", "NCHW"),
                                        feature_group_count=2)
    ft.check_grads(f, (x, w), order=2, modes=("fwd", "rev"))
    ft.check_grads(ft.jit(f), (x, w), order=1, modes=("rev",))
    ws = rng.standard_normal((3,) + w.shape)
    np.testing.assert_allclose(ft.vmap(f, in_axes=(None, 0))(x, ws), np.stack([f(x, v) for v in ws]), rtol=1e-12)
    grads = ft.vmap(ft.grad(lambda x, w: fnp.sum(f(x, w) ** 2), argnums=1), in_axes=(None, 0))(x, ws)
    np.testing.assert_allclose(grads, np.stack([ft.grad(lambda w: fnp.sum(f(x, w) ** 2))(v) for v in ws]),
                               rtol=1e-10)


@given(st.integers(1, 2), st.integers(1, 3), st.integers(1, 2), st.integers(1, 2),
       st.sampled_from(["VALID", "SAME", ((1, 0), (0, 2))]), st.sampled_from(["sum", "max", "min", "mean"]))
def test_reduce_window_against_loops(wh, ww, stride, dilation, padding, kind):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 5))
    op, init = {"sum": (lax.add, 0.0), "mean": (lax.add, 0.0), "max": (lax.max, -np.inf),
                "min": (lax.min, np.inf)}[kind]
    np_op = {"sum": np.add, "mean": np.add, "max": np.maximum, "min": np.minimum}[kind]
    window, strides, dil = (wh, ww), (stride, 1), (1, dilation)
    spans = [(k - 1) * d + 1 for k, d in zip(window, dil)]
    pads = lax.padtype_to_pads(x.shape, spans, strides, padding) if isinstance(padding, str) else padding

    def pool(x):
        out = lax.reduce_window(x, init, op, window, strides, padding, window_dilation=dil)
        return out / (wh * ww) if kind == "mean" else out
    expected = ref_reduce_window(x, init, np_op, window, strides, pads, wdil=dil)
    expected = expected / (wh * ww) if kind == "mean" else expected
    np.testing.assert_allclose(pool(x), expected, rtol=1e-12)
    np.testing.assert_allclose(ft.jit(pool)(x), expected, rtol=1e-12)
    if kind in ("sum", "mean") or padding == "VALID":
        ft.check_grads(pool, (x,), order=1, modes=("fwd", "rev"))


def test_reduce_window_base_dilation_and_init_value():
    x = np.arange(6.0).reshape(2, 3)
    out = lax.reduce_window(x, 1.0, lax.add, (1, 2), (1, 1), "VALID", base_dilation=(1, 2))
    np.testing.assert_allclose(out, ref_reduce_window(x, 1.0, np.add, (1, 2), (1, 1), [(0, 0), (0, 0)], (1, 2)))


def test_max_pooling_gradient_goes_to_the_maximum():
    x = np.array([[1.0, 5.0, 2.0, 0.0], [3.0, 4.0, 7.0, 6.0]])
    g = ft.grad(lambda x: fnp.sum(lax.reduce_window(x, -np.inf, lax.max, (2, 2), (2, 2), "VALID")))(x)
    np.testing.assert_array_equal(g, [[0, 1, 0, 0], [0, 0, 1, 0]])


@given(st.integers(-7, 7), st.integers(-7, 7), st.integers(0, 4), st.integers(0, 5))
def test_dynamic_slice_clamps_as_jax(i, j, h, w):
    x = np.arange(20.0).reshape(4, 5)
    expected = ref_dynamic_slice(x, (i, j), (h, w))
    np.testing.assert_array_equal(lax.dynamic_slice(x, (i, j), (h, w)), expected)
    np.testing.assert_array_equal(ft.jit(lambda x, i, j: lax.dynamic_slice(x, (i, j), (h, w)))(x, i, j), expected)
    u = -np.ones((h, w))
    expected = ref_dynamic_update_slice(x, u, (i, j))
    np.testing.assert_array_equal(lax.dynamic_update_slice(x, u, (i, j)), expected)
    np.testing.assert_array_equal(ft.jit(lambda x, i: lax.dynamic_update_slice(x, u, (i, j)))(x, i), expected)


def test_dynamic_slice_under_jit_is_one_program_for_every_start():
    f = ft.jit(lambda x, i: lax.dynamic_slice_in_dim(x, i, 2))
    x = np.arange(5.0)
    for i in range(-6, 7):
        np.testing.assert_array_equal(f(x, i), ref_dynamic_slice(x, (i,), (2,)))
    text = str(ft.make_jaxpr(lambda x, i: lax.dynamic_slice_in_dim(x, i, 2))(x, 1))
    assert "gather" in text


@given(st.lists(st.sampled_from([-np.inf, -1.0, 0.0, 0.5, 2.0, np.nan]), min_size=1, max_size=7), st.data())
def test_top_k_against_a_stable_sort(values, data):
    x = np.array(values)
    k = data.draw(st.integers(0, len(values)))
    # NaN first, then descending; ties by index (np.lexsort sorts by its last key first)
    order = np.lexsort((np.arange(len(x)), -np.nan_to_num(x, nan=0.0, neginf=-np.inf), ~np.isnan(x)))
    for fun in (lax.top_k, ft.jit(lax.top_k, static_argnums=1)):
        values_out, indices = fun(x, k)
        np.testing.assert_array_equal(indices, order[:k].astype(np.int32))
        np.testing.assert_array_equal(values_out, x[order[:k]])
        assert indices.dtype == np.int32
    ints = np.array([3, 1, 3, 2], np.int64)
    np.testing.assert_array_equal(lax.top_k(ints, 3)[1], [0, 2, 3])


def test_top_k_batches_and_differentiates():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 2, 6))
    values, indices = ft.vmap(lambda v: lax.top_k(v, 2))(x)
    for b in range(3):
        expected_values, expected_indices = lax.top_k(x[b], 2)
        np.testing.assert_array_equal(values[b], expected_values)
        np.testing.assert_array_equal(indices[b], expected_indices)
    g = ft.grad(lambda v: fnp.sum(lax.top_k(v, 2)[0] * np.array([1.0, 10.0])))(np.array([1.0, 4.0, 2.0, 3.0]))
    np.testing.assert_array_equal(g, [0.0, 1.0, 0.0, 10.0])
    with pytest.raises(ValueError, match="k=7"):
        lax.top_k(np.ones(3), 7)


def test_reduce_precision_formats_and_derivative():
    x = np.array([1.0, 1 / 3, 1.00390625, 1.01171875, 65504.0, 65520.0, -2.5, 1e300, -0.0, np.inf, np.nan])
    with np.errstate(over="ignore"):  # NumPy's own casts of 1e300, the references
        as_f32, as_f16 = x.astype(np.float32), x.astype(np.float16)
    bf16 = lax.reduce_precision(as_f32, 8, 7)
    np.testing.assert_array_equal(bf16[2:4], [1.0, 1.015625])  # ties to even
    np.testing.assert_array_equal(lax.reduce_precision(x, 8, 23), as_f32.astype(np.float64))
    normal = np.abs(x) >= 2.0 ** -14
    np.testing.assert_array_equal(lax.reduce_precision(x, 5, 10)[normal], as_f16[normal])
    np.testing.assert_array_equal(ft.jit(lambda v: lax.reduce_precision(v, 5, 10))(x), lax.reduce_precision(x, 5, 10))
    assert np.isnan(lax.reduce_precision(np.nan, 5, 2)) and lax.reduce_precision(np.nan, 5, 0) == np.inf
    _, tangent = ft.jvp(lambda v: lax.reduce_precision(v, 8, 7), (np.float32(0.7),), (np.float32(1 / 3),))
    assert tangent == lax.reduce_precision(np.float32(1 / 3), 8, 7)  # JAX's rule: the tangent rounded alike
    assert lax.reduce_precision(3, 8, 7).dtype == np.float64  # integers compute in a float, as NumPy's sin
    with pytest.raises(ValueError, match="exponent_bits"):
        lax.reduce_precision(x, 0, 3)


def test_associative_scan_pytrees_reverse_and_axis():
    rng = np.random.default_rng(4)
    a, b = rng.uniform(0.5, 1.0, (3, 9)), rng.standard_normal((3, 9))

    def affine(x, y):  # composition of x -> a x + b maps: associative, not commutative
        return (x[0] * y[0], y[0] * x[1] + y[1])
    out = lax.associative_scan(affine, (a, b), axis=1)
    expected_a, expected_b = np.cumprod(a, axis=1), np.zeros_like(b)
    acc = np.zeros(3)
    for k in range(9):
        acc = a[:, k] * acc + b[:, k]
        expected_b[:, k] = acc
    np.testing.assert_allclose(out[0], expected_a, rtol=1e-12)
    np.testing.assert_allclose(out[1], expected_b, rtol=1e-12)
    np.testing.assert_allclose(lax.associative_scan(lax.add, b, reverse=True, axis=1),
                               np.cumsum(b[:, ::-1], axis=1)[:, ::-1], rtol=1e-12)
    for n in range(1, 12):
        v = np.arange(1.0, n + 1)
        np.testing.assert_allclose(ft.jit(lambda v: lax.associative_scan(lax.max, v))(v[::-1]),
                                   np.maximum.accumulate(v[::-1]))


@pytest.mark.parametrize("call,error", [
    (lambda: lax.dynamic_slice(np.ones((3, 3)), (0,), (1, 1)), TypeError),
    (lambda: lax.dynamic_slice(np.ones((3, 3)), (0, 0), (4, 1)), TypeError),
    (lambda: lax.dynamic_slice(np.ones(3), (0.5,), (1,)), TypeError),
    (lambda: lax.dynamic_update_slice(np.ones(3), np.ones(4), (0,)), TypeError),
    (lambda: lax.conv_general_dilated(np.ones((1, 3, 4)), np.ones((2, 2, 2)), (1,), "VALID"), ValueError),
    (lambda: lax.conv_general_dilated(np.ones((1, 2, 4)), np.ones((2, 2, 2)), (1,), "FULL"), ValueError),
    (lambda: lax.conv_general_dilated(np.ones((1, 2, 4)), np.ones((2, 2, 2)), (1, 1), "VALID"), TypeError),
    (lambda: lax.conv_general_dilated(np.ones((1, 2, 4)), np.ones((2, 2, 9)), (1,), "VALID"), ValueError),
    (lambda: lax.reduce_window(np.ones(4), 0.0, "add", (2,), (1,), "VALID"), TypeError),
    (lambda: lax.select(np.ones(2), np.ones(2), np.ones(2)), TypeError),
    (lambda: lax.broadcast_in_dim(np.ones(3), (2, 4), (1,)), TypeError),
    (lambda: lax.associative_scan(lax.add, (np.ones(3), np.ones(4))), ValueError),
])
def test_bad_arguments_raise_clear_errors(call, error):
    with pytest.raises(error):
        call()


def test_missing_jax_names_say_so():
    from ftrans._unavailable import JAX_NAMES
    missing = [name for name in JAX_NAMES["jax.lax"] if not hasattr(lax, name)]
    if missing:
        with pytest.raises(AttributeError, match=f"ftrans.lax has no `{missing[0]}` yet"):
            getattr(lax, missing[0])
    with pytest.raises(AttributeError, match="has no attribute 'no_such_thing'"):
        lax.no_such_thing  # noqa: B018
