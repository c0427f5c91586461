"""Every public ftrans.numpy function, one row each: against NumPy's own result
(float64 and float32, complex where NumPy takes it), under jit against eager,
vmap against a loop, and check_grads (forward and reverse) where NumPy's result
is differentiable. `test_every_public_name_has_a_row` fails when a public name
has no row (or a named reason for having none).

A row's `args(rng, dtype)` draws the arguments; `fun` is called on them as
ftrans.numpy and `reference` as NumPy (by default the function of that name in
NumPy with the same arguments). Shapes are fixed by the row, so that vmap can
stack draws; tests at the end sweep shapes with hypothesis where they matter.
"""
from __future__ import annotations

import dataclasses
import types
from typing import Callable

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import ftrans as ft
import ftrans.numpy as fnp
from conftest import jit_for
from ftrans.tree_util import tree_flatten

F32, F64, C64, C128 = (np.dtype(t) for t in (np.float32, np.float64, np.complex64, np.complex128))
I32, I64, BOOL = np.dtype(np.int32), np.dtype(np.int64), np.dtype(np.bool_)
RTOL = {F32: 2e-5, F64: 1e-12, C64: 2e-5, C128: 1e-12}


@dataclasses.dataclass
class Row:
    args: Callable                 # (rng, dtype) -> tuple of arguments
    fun: Callable = None           # ftrans.numpy's; default: fnp.<name>
    reference: Callable = None     # NumPy's; default: np.<name>
    grad: tuple = ()               # the arguments check_grads differentiates (float64)
    dtypes: tuple = (F64, F32)     # what `args` is drawn in
    complex: bool = False          # also drawn in complex128 and complex64
    vmap: bool = True
    jit: bool = True
    order: int = 1                 # of check_grads
    rtol: float = None
    check_dtype: bool = True


def draw(rng, dtype, shape, lo=-2.0, hi=2.0):
    """Uniform values in [lo, hi) of `dtype` (complex: both parts), a NumPy array."""
    dtype = np.dtype(dtype)
    if dtype.kind == "c":
        parts = rng.uniform(lo, hi, shape + (2,))
        return (parts[..., 0] + 1j * parts[..., 1]).astype(dtype)
    if dtype.kind in "iu":
        return rng.integers(int(lo), int(hi), shape).astype(dtype)
    if dtype.kind == "b":
        return rng.random(shape) < 0.5
    return rng.uniform(lo, hi, shape).astype(dtype)


def normal(*shapes, lo=-2.0, hi=2.0):
    return lambda rng, dtype: tuple(draw(rng, dtype, s, lo, hi) for s in shapes)


def ints(*shapes, lo=-5, hi=5, dtype=I64):
    return lambda rng, _: tuple(draw(rng, dtype, s, lo, hi) for s in shapes)


def distinct(shape, lo=-2.0, hi=2.0):
    """Values far apart (no ties: sorts and extrema are differentiable there)."""
    def make(rng, dtype):
        n = int(np.prod(shape))
        values = (np.linspace(lo, hi, n) + rng.uniform(-0.1, 0.1, n) * (hi - lo) / max(n, 1) / 4)
        return (rng.permutation(values).reshape(shape).astype(dtype),)
    return make


def with_nans(shape):
    def make(rng, dtype):
        x = draw(rng, dtype, shape)
        x.reshape(-1)[rng.choice(x.size, max(1, x.size // 4), replace=False)] = np.nan
        return (x,)
    return make


X = (3, 4)
U = dict(lo=-0.9, hi=0.9)
P = dict(lo=0.5, hi=3.0)
INTS = (I64, I32)

ROWS = {
    # ---- elementwise, one argument
    **{name: Row(normal(X), grad=(0,), complex=True) for name in
       ["sin", "cos", "tan", "sinh", "cosh", "tanh", "exp", "expm1", "negative", "square", "arctan", "exp2"]},
    **{name: Row(normal(X, **P), grad=(0,), complex=True) for name in ["log", "log1p", "sqrt", "reciprocal",
                                                                       "log2", "log10"]},
    "arcsin": Row(normal(X, **U), grad=(0,), complex=True),
    "arccos": Row(normal(X, **U), grad=(0,), complex=True),
    "arctanh": Row(normal(X, **U), grad=(0,), complex=True),
    "arcsinh": Row(normal(X, lo=-4, hi=4), grad=(0,), complex=True),
    "arccosh": Row(normal(X, lo=1.1, hi=5), grad=(0,), complex=True),
    # NumPy 2's spellings: the same functions, against NumPy's arc* (NumPy 1.26 has no acos)
    "acos": Row(normal(X, **U), grad=(0,), complex=True, reference=np.arccos),
    "asin": Row(normal(X, **U), grad=(0,), complex=True, reference=np.arcsin),
    "atanh": Row(normal(X, **U), grad=(0,), complex=True, reference=np.arctanh),
    "asinh": Row(normal(X, lo=-4, hi=4), grad=(0,), complex=True, reference=np.arcsinh),
    "acosh": Row(normal(X, lo=1.1, hi=5), grad=(0,), complex=True, reference=np.arccosh),
    "atan": Row(normal(X), grad=(0,), complex=True, reference=np.arctan),
    "atan2": Row(normal(X, X), grad=(0, 1), reference=np.arctan2),
    **{name: Row(normal(X, lo=-400, hi=400), grad=(0,)) for name in ["deg2rad", "rad2deg", "degrees", "radians"]},
    **{name: Row(normal(X), grad=(0,), complex=name != "sign") for name in ["abs", "absolute", "sign"]},
    **{name: Row(normal(X, lo=-5, hi=5)) for name in ["floor", "ceil", "trunc", "fix", "rint"]},
    "round": Row(lambda rng, dtype: (draw(rng, dtype, X, -50, 50) / 4,), complex=True),
    "around": Row(lambda rng, dtype: (draw(rng, dtype, X, -50, 50) / 8,), fun=lambda x: fnp.around(x, 1),
                  reference=lambda x: np.around(x, 1)),
    "signbit": Row(lambda rng, dtype: (np.concatenate([draw(rng, dtype, (4,)), np.array([0.0, -0.0], dtype)]),)),
    **{name: Row(lambda rng, dtype: (np.array([0.0, np.nan, np.inf, -np.inf, 1.5, -2.0], dtype),), complex=True)
       for name in ["isnan", "isinf", "isfinite"]},
    **{name: Row(lambda rng, dtype: (np.array([0.0, np.nan, np.inf, -np.inf, 1.5, -2.0], dtype),))
       for name in ["isposinf", "isneginf"]},
    "nan_to_num": Row(lambda rng, dtype: (np.array([0.0, np.nan, np.inf, -np.inf, 1.5, -2.0], dtype),),
                      grad=(), complex=True),
    "invert": Row(ints(X), dtypes=INTS), "bitwise_not": Row(ints(X), dtypes=INTS),
    "logical_not": Row(normal(X)),
    "real": Row(normal(X), grad=(0,), complex=True), "imag": Row(normal(X), complex=True),
    "conj": Row(normal(X), grad=(0,), complex=True), "conjugate": Row(normal(X), grad=(0,), complex=True),
    "angle": Row(normal(X), complex=True),
    # ---- elementwise, two arguments
    **{name: Row(normal(X, X), grad=(0, 1), complex=True) for name in ["add", "subtract", "multiply"]},
    **{name: Row(normal(X, X, **P), grad=(0, 1), complex=True) for name in ["divide", "true_divide", "power"]},
    **{name: Row(normal(X, X), grad=(0, 1)) for name in ["maximum", "minimum", "arctan2", "hypot", "logaddexp",
                                                          "logaddexp2"]},
    **{name: Row(normal(X, X, **P), grad=(0,)) for name in ["mod", "remainder", "fmod"]},
    "floor_divide": Row(normal(X, X, **P)),
    "copysign": Row(lambda rng, dtype: (draw(rng, dtype, (5,)), np.array([1.0, -1.0, 0.0, -0.0, 2.0], dtype)),
                    grad=()),
    "heaviside": Row(lambda rng, dtype: (np.array([-1.0, 0.0, 2.0, np.nan], dtype), np.array(0.5, dtype))),
    **{name: Row(normal(X, X), grad=(0, 1)) for name in ["fmax", "fmin"]},
    "float_power": Row(normal(X, X, **P), grad=(0, 1), complex=True),
    "fabs": Row(normal(X), grad=(0,)),
    "cbrt": Row(normal(X, lo=-30, hi=30), grad=(0,)),
    "positive": Row(normal(X), grad=(0,), complex=True),
    "sinc": Row(lambda rng, dtype: (np.concatenate([draw(rng, dtype, (6,), -3.0, 3.0), np.array([0.0, 1e-5, -1.0, 2.5],
                                                                                           dtype)]),),
                grad=(0,), complex=True),
    **{name: Row(normal(X, X)) for name in ["equal", "not_equal", "less", "less_equal", "greater",
                                            "greater_equal", "logical_and", "logical_or", "logical_xor"]},
    **{name: Row(ints(X, X), dtypes=INTS) for name in ["bitwise_and", "bitwise_or", "bitwise_xor"]},
    "where": Row(lambda rng, dtype: (rng.random(X) < 0.5,) + normal(X, X)(rng, dtype), grad=(1, 2)),
    "clip": Row(normal(X), fun=lambda x: fnp.clip(x, min=-0.5, max=0.7), reference=lambda x: np.clip(x, -0.5, 0.7),
                grad=(0,)),
    "isclose": Row(lambda rng, dtype: (lambda x: (x, x + draw(rng, dtype, X, -1e-5, 1e-5) * (rng.random(X) < 0.5)
                                                  * 100))(draw(rng, dtype, X))),
    "allclose": Row(lambda rng, dtype: (lambda x: (x, x * (1 + 1e-9)))(draw(rng, dtype, X))),
    "array_equal": Row(lambda rng, dtype: (lambda x: (x, np.where(rng.random(X) < 0.1, 0, x).astype(dtype)))(
        draw(rng, dtype, X))),
    "array_equiv": Row(lambda rng, dtype: (lambda x: (x, x[:1]))(draw(rng, dtype, X))),
    # ---- reductions
    **{name: Row(normal(X), fun=(lambda n: lambda x: getattr(fnp, n)(x, axis=1))(name),
                 reference=(lambda n: lambda x: getattr(np, n)(x, axis=1))(name), grad=(0,),
                 complex=True)
       for name in ["sum", "prod", "mean", "var", "std", "max", "min", "amax", "amin"]},
    "max (complex, NaN)": Row(lambda rng, dtype: (np.array([[1 + 1j, 1 + 2j, -3j], [np.nan + 1j, 2, 1j * np.nan]],
                                                           dtype),),
                              fun=lambda z: fnp.max(z, axis=1, keepdims=True),
                              reference=lambda z: np.max(z, axis=1, keepdims=True), dtypes=(C128, C64)),
    "sum (where, initial)": Row(normal(X), fun=lambda x: fnp.sum(x, axis=0, where=x > 0, initial=1.5),
                                reference=lambda x: np.sum(x, axis=0, where=x > 0, initial=1.5), grad=(0,)),
    "prod (where)": Row(normal(X), fun=lambda x: fnp.prod(x, axis=1, where=x > -1),
                        reference=lambda x: np.prod(x, axis=1, where=x > -1), grad=(0,)),
    "max (where, initial)": Row(normal(X), fun=lambda x: fnp.max(x, axis=1, where=x < 1, initial=-3.0),
                                reference=lambda x: np.max(x, axis=1, where=x < 1, initial=-3.0), grad=(0,)),
    "max (complex, where, initial)": Row(normal(X), fun=lambda z: fnp.max(z, axis=0, where=z.real > -1, initial=-5j),
                                         reference=lambda z: np.max(z, axis=0, where=z.real > -1, initial=-5j),
                                         dtypes=(C128, C64)),
    "min (initial)": Row(normal(X), fun=lambda x: fnp.min(x, initial=0.5), reference=lambda x: np.min(x, initial=0.5),
                         grad=(0,)),
    "var (where)": Row(normal(X), fun=lambda x: fnp.var(x, axis=1, ddof=1, where=x > -1),
                       reference=lambda x: np.var(x, axis=1, ddof=1, where=x > -1), grad=(0,), complex=True),
    "std (where)": Row(normal(X), fun=lambda x: fnp.std(x, axis=1, where=x < 1.5),
                       reference=lambda x: np.std(x, axis=1, where=x < 1.5), grad=(0,)),
    "mean (where)": Row(normal(X), fun=lambda x: fnp.mean(x, axis=1, where=x > -1),
                        reference=lambda x: np.mean(x, axis=1, where=x > -1), grad=(0,)),
    "logsumexp": Row(normal(X), fun=lambda x: fnp.logsumexp(x, axis=1),
                     reference=lambda x: np.log(np.sum(np.exp(x), axis=1)), grad=(0,)),
    **{name: Row(normal(X), fun=(lambda n: lambda x: getattr(fnp, n)(x, axis=0))(name),
                 reference=(lambda n: lambda x: getattr(np, n)(x, axis=0))(name)) for name in ["argmax", "argmin"]},
    "all": Row(lambda rng, dtype: (draw(rng, dtype, X, -1, 2).round(),), fun=lambda x: fnp.all(x, axis=1),
               reference=lambda x: np.all(x, axis=1)),
    "any": Row(lambda rng, dtype: (draw(rng, dtype, X, -0.6, 0.6).round(),), fun=lambda x: fnp.any(x, axis=0),
               reference=lambda x: np.any(x, axis=0), complex=True),
    "count_nonzero": Row(lambda rng, dtype: (draw(rng, dtype, X, -1, 2).round(),),
                         fun=lambda x: fnp.count_nonzero(x, axis=1), reference=lambda x: np.count_nonzero(x, axis=1)),
    **{name: Row(with_nans(X), fun=(lambda n: lambda x: getattr(fnp, n)(x, axis=1))(name),
                 reference=(lambda n: lambda x: getattr(np, n)(x, axis=1))(name), grad=(0,), complex=True)
       for name in ["nansum", "nanprod", "nanmean", "nanmax", "nanmin", "nanvar", "nanstd"]},
    **{name: Row(with_nans(X), fun=(lambda n: lambda x: getattr(fnp, n)(x, axis=1))(name),
                 reference=(lambda n: lambda x: getattr(np, n)(x, axis=1))(name))
       for name in ["nanargmax", "nanargmin"]},
    "average": Row(normal(X, (4,), lo=0.5, hi=2.0), fun=lambda a, w: fnp.average(a, axis=1, weights=w, returned=True),
                   reference=lambda a, w: np.average(a, axis=1, weights=w, returned=True), grad=(0, 1), complex=True),
    "average (no weights)": Row(normal(X), fun=lambda a: fnp.average(a, axis=0),
                                reference=lambda a: np.average(a, axis=0), grad=(0,), complex=True),
    "nanmedian": Row(with_nans((3, 5)), fun=lambda x: fnp.nanmedian(x, axis=1),
                     reference=lambda x: np.nanmedian(x, axis=1)),
    "median": Row(distinct((3, 4)), fun=lambda x: fnp.median(x, axis=1), reference=lambda x: np.median(x, axis=1),
                  grad=(0,)),
    "median (complex)": Row(normal((3, 5)), fun=lambda x: fnp.median(x, axis=0), reference=lambda x: np.median(x, axis=0),
                            dtypes=(C128, C64)),
    "quantile": Row(lambda rng, dtype: distinct((3, 5))(rng, dtype) + (np.array([0.1, 0.45, 0.95], dtype),),
                    fun=lambda x, q: fnp.quantile(x, q, axis=1), reference=lambda x, q: np.quantile(x, q, axis=1),
                    grad=(0, 1)),
    "percentile": Row(lambda rng, dtype: distinct((3, 5))(rng, dtype) + (np.array([10.0, 50.0, 99.0], dtype),),
                      fun=lambda x, q: fnp.percentile(x, q, axis=(0, 1), keepdims=True),
                      reference=lambda x, q: np.percentile(x, q, axis=(0, 1), keepdims=True), grad=(0,)),
    # ---- cumulative
    **{name: Row(normal(X), fun=(lambda n: lambda x: getattr(fnp, n)(x, axis=1))(name),
                 reference=(lambda n: lambda x: getattr(np, n)(x, axis=1))(name), grad=(0,), complex=True)
       for name in ["cumsum", "cumprod", "cumulative_sum", "cumulative_prod"]},
    "cummax": Row(distinct(X), fun=lambda x: fnp.cummax(x, axis=0),
                  reference=lambda x: np.maximum.accumulate(x, axis=0), grad=(0,)),
    "cummin": Row(distinct(X), fun=lambda x: fnp.cummin(x, axis=1),
                  reference=lambda x: np.minimum.accumulate(x, axis=1), grad=(0,)),
    "nancumsum": Row(with_nans(X), grad=(0,)), "nancumprod": Row(with_nans(X), grad=(0,)),
    "diff": Row(normal(X), fun=lambda x: fnp.diff(x, n=2, axis=1, prepend=0.5),
                reference=lambda x: np.diff(x, n=2, axis=1, prepend=0.5), grad=(0,), complex=True),
    "ediff1d": Row(normal(X), fun=lambda x: fnp.ediff1d(x, to_begin=[1.0, 2.0], to_end=-1.0),
                   reference=lambda x: np.ediff1d(x, to_begin=[1.0, 2.0], to_end=-1.0), grad=(0,)),
    # ---- sorting and searching
    "sort": Row(distinct(X), fun=lambda x: fnp.sort(x, axis=0), reference=lambda x: np.sort(x, axis=0), grad=(0,),
                complex=True),
    "sort (descending)": Row(distinct(X), fun=lambda x: fnp.sort(x, descending=True),
                             reference=lambda x: -np.sort(-x), grad=(0,)),
    "argsort": Row(distinct(X), fun=lambda x: fnp.argsort(x, axis=1), reference=lambda x: np.argsort(x, axis=1),
                   complex=True),
    "lexsort": Row(ints((6,), (6,), lo=0, hi=3), fun=lambda a, b: fnp.lexsort((a, b)),
                   reference=lambda a, b: np.lexsort((a, b))),
    "take_along_axis": Row(lambda rng, dtype: (draw(rng, dtype, X), rng.integers(-4, 4, (3, 2))),
                           fun=lambda x, i: fnp.take_along_axis(x, i, axis=1),
                           reference=lambda x, i: np.take_along_axis(x, i, axis=1), grad=(0,)),
    "searchsorted": Row(lambda rng, dtype: (np.sort(draw(rng, dtype, (7,))), draw(rng, dtype, X)), grad=()),
    "searchsorted (right)": Row(lambda rng, dtype: (np.array([0.0, 1.0, 1.0, 2.0, np.nan], dtype),
                                                    np.array([1.0, -1.0, 2.0, 3.0, np.nan, 0.5], dtype)),
                                fun=lambda a, v: fnp.searchsorted(a, v, side="right"),
                                reference=lambda a, v: np.searchsorted(a, v, side="right")),
    "digitize": Row(lambda rng, dtype: (draw(rng, dtype, X), np.array([-1.0, 0.0, 0.5, 1.5], dtype))),
    "digitize (decreasing, right)": Row(lambda rng, dtype: (draw(rng, dtype, X), np.array([1.5, 0.0, -1.0], dtype)),
                                        fun=lambda x, b: fnp.digitize(x, b, right=True),
                                        reference=lambda x, b: np.digitize(x, b, right=True)),
    "nonzero": Row(lambda rng, dtype: (draw(rng, dtype, X, -1, 2).round(),), fun=lambda x: fnp.nonzero(x, size=12),
                   reference=lambda x: tuple(np.pad(i, (0, 12 - len(i))) for i in np.nonzero(x))),
    "flatnonzero": Row(lambda rng, dtype: (draw(rng, dtype, X, -1, 2).round(),),
                       fun=lambda x: fnp.flatnonzero(x, size=12, fill_value=-1),
                       reference=lambda x: np.pad(np.flatnonzero(x), (0, 12 - np.count_nonzero(x)),
                                                  constant_values=-1)),
    "argwhere": Row(lambda rng, dtype: (draw(rng, dtype, X, -1, 2).round(),), fun=lambda x: fnp.argwhere(x, size=12),
                    reference=lambda x: np.pad(np.argwhere(x), ((0, 12 - np.count_nonzero(x)), (0, 0)))),
    "unique": Row(lambda rng, dtype: (draw(rng, dtype, (10,), 0, 4).round(),),
                  fun=lambda x: fnp.unique(x, return_counts=True, return_inverse=True, return_index=True, size=6,
                                           fill_value=-1),
                  reference=lambda x: _padded_unique(x, 6, -1)),
    "bincount": Row(lambda rng, dtype: (rng.integers(0, 5, 8), draw(rng, dtype, (8,))),
                    fun=lambda x, w: fnp.bincount(x, w, length=6),
                    reference=lambda x, w: np.bincount(x, w, minlength=6), grad=(1,)),
    # ---- shapes
    "reshape": Row(normal(X), fun=lambda x: fnp.reshape(x, (2, 6)), reference=lambda x: np.reshape(x, (2, 6)),
                   grad=(0,)),
    "ravel": Row(normal(X), grad=(0,)), "transpose": Row(normal(X), grad=(0,)),
    "permute_dims": Row(normal((2, 3, 4)), fun=lambda x: fnp.permute_dims(x, (2, 0, 1)),
                        reference=lambda x: np.transpose(x, (2, 0, 1)), grad=(0,)),
    "concat": Row(normal(X, (2, 4)), fun=lambda a, b: fnp.concat([a, b]),
                  reference=lambda a, b: np.concatenate([a, b]), grad=(0, 1)),
    "swapaxes": Row(normal(X), fun=lambda x: fnp.swapaxes(x, 0, 1), reference=lambda x: np.swapaxes(x, 0, 1)),
    "moveaxis": Row(normal((2, 3, 4)), fun=lambda x: fnp.moveaxis(x, (0, 2), (2, 0)),
                    reference=lambda x: np.moveaxis(x, (0, 2), (2, 0)), grad=(0,)),
    "expand_dims": Row(normal(X), fun=lambda x: fnp.expand_dims(x, (0, 3)),
                       reference=lambda x: np.expand_dims(x, (0, 3))),
    "squeeze": Row(normal((3, 1, 4)), grad=(0,)),
    "broadcast_to": Row(normal((1, 4)), fun=lambda x: fnp.broadcast_to(x, X), reference=lambda x: np.broadcast_to(x, X),
                        grad=(0,)),
    "concatenate": Row(normal(X, (2, 4)), fun=lambda a, b: fnp.concatenate([a, b]),
                       reference=lambda a, b: np.concatenate([a, b]), grad=(0, 1)),
    "stack": Row(normal(X, X), fun=lambda a, b: fnp.stack([a, b], axis=1), reference=lambda a, b: np.stack([a, b], 1),
                 grad=(0, 1)),
    **{name: Row(normal(X, X), fun=(lambda n: lambda a, b: getattr(fnp, n)([a, b]))(name),
                 reference=(lambda n: lambda a, b: getattr(np, n)([a, b]))(name), grad=(0, 1), complex=True)
       for name in ["vstack", "hstack", "dstack", "column_stack"]},
    "row_stack": Row(normal((4,), (4,)), fun=lambda a, b: fnp.row_stack([a, b]),
                     reference=lambda a, b: np.vstack([a, b])),
    "append": Row(normal(X, (2, 4)), fun=lambda a, b: fnp.append(a, b, axis=0),
                  reference=lambda a, b: np.append(a, b, axis=0), grad=(0, 1)),
    "split": Row(normal((4, 3)), fun=lambda x: fnp.split(x, [1, 3]), reference=lambda x: np.split(x, [1, 3]),
                 grad=(0,)),
    "array_split": Row(normal((5, 3)), fun=lambda x: fnp.array_split(x, 3),
                       reference=lambda x: np.array_split(x, 3), grad=(0,)),
    "hsplit": Row(normal((3, 4)), fun=lambda x: fnp.hsplit(x, 2), reference=lambda x: np.hsplit(x, 2)),
    "vsplit": Row(normal((4, 3)), fun=lambda x: fnp.vsplit(x, 2), reference=lambda x: np.vsplit(x, 2)),
    "dsplit": Row(normal((2, 3, 4)), fun=lambda x: fnp.dsplit(x, [1]), reference=lambda x: np.dsplit(x, [1])),
    "atleast_1d": Row(lambda rng, dtype: (dtype.type(1.5), draw(rng, dtype, X)), grad=(0, 1)),
    "atleast_2d": Row(lambda rng, dtype: (draw(rng, dtype, (3,)), draw(rng, dtype, X)), grad=(0, 1)),
    "atleast_3d": Row(lambda rng, dtype: (draw(rng, dtype, (3,)), draw(rng, dtype, X)), grad=(0, 1)),
    "meshgrid": Row(normal((3,), (4,), (2,)), grad=(0, 1, 2)),
    "meshgrid (ij, sparse)": Row(normal((3,), (4,)), fun=lambda a, b: fnp.meshgrid(a, b, indexing="ij", sparse=True),
                                 reference=lambda a, b: np.meshgrid(a, b, indexing="ij", sparse=True)),
    "tile": Row(normal((2, 3)), fun=lambda x: fnp.tile(x, (2, 1, 2)), reference=lambda x: np.tile(x, (2, 1, 2)),
                grad=(0,)),
    "repeat": Row(normal((2, 3)), fun=lambda x: fnp.repeat(x, [1, 0, 3], axis=1),
                  reference=lambda x: np.repeat(x, [1, 0, 3], axis=1), grad=(0,)),
    "repeat (total_repeat_length, traced repeats)": Row(
        lambda rng, dtype: (draw(rng, dtype, (4,)), np.array([1, 2, 0, 0])),
        fun=lambda x, r: fnp.repeat(x, r, total_repeat_length=6),
        reference=lambda x, r: np.concatenate([np.repeat(x, r), np.repeat(x[-1], 3)]), grad=(0,)),
    "roll": Row(normal(X), fun=lambda x: fnp.roll(x, (1, -5), axis=(0, 1)),
                reference=lambda x: np.roll(x, (1, -5), axis=(0, 1)), grad=(0,)),
    "flip": Row(normal(X), fun=lambda x: fnp.flip(x, 1), reference=lambda x: np.flip(x, 1), grad=(0,)),
    "fliplr": Row(normal(X), grad=(0,)), "flipud": Row(normal(X), grad=(0,)),
    "rot90": Row(normal((2, 3, 4)), fun=lambda x: fnp.rot90(x, 3, axes=(1, 2)),
                 reference=lambda x: np.rot90(x, 3, axes=(1, 2)), grad=(0,)),
    "pad": Row(normal(X), fun=lambda x: fnp.pad(x, ((1, 2), (0, 3)), constant_values=((1.5, -1), (2, 3))),
               reference=lambda x: np.pad(x, ((1, 2), (0, 3)), constant_values=((1.5, -1), (2, 3))), grad=(0,),
               complex=True),
    **{f"pad ({mode})": Row(normal(X), fun=(lambda m: lambda x: fnp.pad(x, ((2, 3), (3, 1)), mode=m))(mode),
                            reference=(lambda m: lambda x: np.pad(x, ((2, 3), (3, 1)), mode=m))(mode), grad=(0,))
       for mode in ["edge", "reflect", "symmetric", "wrap"]},
    "triu": Row(normal((2, 3, 4)), fun=lambda x: fnp.triu(x, 1), reference=lambda x: np.triu(x, 1), grad=(0,)),
    "tril": Row(normal(X), fun=lambda x: fnp.tril(x, -1), reference=lambda x: np.tril(x, -1), grad=(0,)),
    "diag": Row(normal((3,)), fun=lambda x: fnp.diag(x, -1), reference=lambda x: np.diag(x, -1), grad=(0,)),
    "diag (of a matrix)": Row(normal(X), fun=lambda x: fnp.diag(x, 1), reference=lambda x: np.diag(x, 1), grad=(0,)),
    "diagflat": Row(normal((2, 2)), grad=(0,)),
    "diagonal": Row(normal((2, 3, 4)), fun=lambda x: fnp.diagonal(x, 1, 2, 0),
                    reference=lambda x: np.diagonal(x, 1, 2, 0), grad=(0,)),
    "trace": Row(normal((4, 3)), fun=lambda x: fnp.trace(x, -1), reference=lambda x: np.trace(x, -1), grad=(0,)),
    "kron": Row(normal((2, 3), (3, 1, 2)), grad=(0, 1), complex=True),
    "take": Row(normal(X), fun=lambda x: fnp.take(x, np.array([2, 0, 2]), axis=1),
                reference=lambda x: np.take(x, [2, 0, 2], axis=1), grad=(0,)),
    # ---- linear algebra, polynomials, signals
    "dot": Row(normal(X, (4, 2)), grad=(0, 1), complex=True), "matmul": Row(normal(X, (4, 2)), grad=(0, 1)),
    "inner": Row(normal(X, (2, 4)), grad=(0, 1)), "outer": Row(normal((3,), (4,)), grad=(0, 1), complex=True),
    "vdot": Row(normal((4,), (4,)), grad=(0, 1), complex=True),
    "vecdot": Row(normal((2, 3, 4), (3, 4)), grad=(0, 1), complex=True),
    "unwrap": Row(lambda rng, dtype: (np.cumsum(draw(rng, dtype, X, -4.0, 4.0), axis=1),), grad=(0,)),
    "unwrap (period)": Row(lambda rng, dtype: (np.cumsum(draw(rng, dtype, X, -3.0, 3.0), axis=0),),
                           fun=lambda p: fnp.unwrap(p, axis=0, period=4.0), reference=lambda p: np.unwrap(p, axis=0, period=4.0),
                           grad=(0,)),
    "sort_complex": Row(normal((6,)), complex=True),
    "resize": Row(normal((5,)), fun=lambda a: fnp.resize(a, (3, 4)), reference=lambda a: np.resize(a, (3, 4)), grad=(0,),
                  complex=True),
    "fill_diagonal": Row(normal((5, 3), (2,)), fun=lambda a, v: fnp.fill_diagonal(a, v, wrap=True, inplace=False),
                         reference=lambda a, v: (lambda b: (np.fill_diagonal(b, v, wrap=True), b)[1])(a.copy()),
                         grad=(0, 1), complex=True),
    "ix_": Row(ints((2,), (3,), lo=0, hi=3), dtypes=INTS),
    "fromfunction": Row(normal((3,)), fun=lambda c: fnp.fromfunction(lambda i, j: i * c[0] + j * c[1] + c[2], (2, 3)),
                        reference=lambda c: np.fromfunction(lambda i, j: i * c[0] + j * c[1] + c[2], (2, 3)), grad=(0,)),
    "apply_along_axis": Row(normal((2, 3, 4)), fun=lambda a: fnp.apply_along_axis(lambda v: fnp.cumsum(v)[::-1], 1, a),
                            reference=lambda a: np.apply_along_axis(lambda v: np.cumsum(v)[::-1], 1, a), grad=(0,)),
    "apply_over_axes": Row(normal((2, 3, 4)), fun=lambda a: fnp.apply_over_axes(fnp.sum, a, [0, 2]),
                           reference=lambda a: np.apply_over_axes(np.sum, a, [0, 2]), grad=(0,)),
    "cov": Row(normal((3, 6), (2, 6)), grad=(0, 1), complex=True),
    "cov (weights)": Row(normal((6, 3), (6,), lo=0.5, hi=2.0),
                         fun=lambda m, w: fnp.cov(m, rowvar=False, ddof=2, fweights=np.arange(1, 7), aweights=w),
                         reference=lambda m, w: np.cov(m, rowvar=False, ddof=2, fweights=np.arange(1, 7), aweights=w),
                         grad=(0, 1)),
    "corrcoef": Row(normal((3, 6)), grad=(0,), complex=True),
    "block": Row(normal((2, 2), (2, 3), (3, 2), (3, 3)), fun=lambda a, b, c, d: fnp.block([[a, b], [c, d]]),
                 reference=lambda a, b, c, d: np.block([[a, b], [c, d]]), grad=(0, 1, 2, 3), complex=True),
    "astype": Row(normal(X), fun=lambda x: fnp.astype(x, np.float16), reference=lambda x: x.astype(np.float16)),
    **{name: Row(normal((3,), (5,)), grad=(0, 1), complex=True) for name in ["polyadd", "polysub", "polymul"]},
    "polyder": Row(normal((5,)), fun=lambda p: fnp.polyder(p, 2), reference=lambda p: np.polyder(p, 2), grad=(0,),
                   complex=True),
    "polyint": Row(normal((4,)), fun=lambda p: fnp.polyint(p, 2, k=[0.5, -1.0]),
                   reference=lambda p: np.polyint(p, 2, k=[0.5, -1.0]), grad=(0,), complex=True),
    "vander": Row(normal((4,)), fun=lambda x: fnp.vander(x, 5), reference=lambda x: np.vander(x, 5), grad=(0,),
                  complex=True),
    "vander (increasing)": Row(normal((3,)), fun=lambda x: fnp.vander(x, increasing=True),
                               reference=lambda x: np.vander(x, increasing=True), grad=(0,)),
    "geomspace": Row(normal((2,), lo=0.5, hi=3.0), fun=lambda a: fnp.geomspace(a, 40.0, 6, axis=1),
                     reference=lambda a: np.geomspace(a, 40.0, 6, axis=1), grad=(0,)),
    "unravel_index": Row(ints((5,), lo=-6, hi=6), fun=lambda i: fnp.unravel_index(i, (2, 3)),
                         reference=lambda i: np.unravel_index(i % 6, (2, 3)), dtypes=INTS),
    "ravel_multi_index": Row(ints((5,), (5,), lo=0, hi=2), fun=lambda i, j: fnp.ravel_multi_index((i, j), (2, 3)),
                             reference=lambda i, j: np.ravel_multi_index((i, j), (2, 3)), dtypes=INTS),
    **{name: Row(normal((3, 4)), fun=(lambda n: lambda x: getattr(fnp, n)(x, 1))(name),
                 reference=(lambda n: lambda x: getattr(np, n)(x, 1))(name), check_dtype=False)
       for name in ["tril_indices_from", "triu_indices_from"]},
    "diag_indices_from": Row(normal((3, 3)), check_dtype=False),
    "matrix_transpose": Row(normal((2, 3, 4)), grad=(0,), complex=True),
    "trapezoid": Row(normal(X, (4,)), fun=lambda y, x: fnp.trapezoid(y, x=fnp.sort(x), axis=1),
                     reference=lambda y, x: np.trapezoid(y, x=np.sort(x), axis=1), grad=(0,), complex=True),
    "trapezoid (dx)": Row(normal(X), fun=lambda y: fnp.trapezoid(y, dx=0.5, axis=0),
                          reference=lambda y: np.trapezoid(y, dx=0.5, axis=0), grad=(0,)),
    "broadcast_arrays": Row(normal((2, 1), (3,)), grad=(0, 1), complex=True),
    "modf": Row(lambda rng, dtype: (np.concatenate([draw(rng, dtype, (6,), -5.0, 5.0),
                                                    np.array([-0.0, 0.0, np.inf, -np.inf, np.nan, -0.5], dtype)]),)),
    "divmod": Row(normal(X, X, **P)),
    **{name: Row(ints(X, X, lo=-40, hi=40), dtypes=INTS + (np.dtype(np.uint8), np.dtype(np.int8))) for name in ("gcd", "lcm")},
    "iscomplex": Row(normal(X), complex=True), "isreal": Row(normal(X), complex=True),
    "copy": Row(normal(X), grad=(0,), complex=True),
    "empty_like": Row(normal(X), reference=np.zeros_like, complex=True),
    "tensordot": Row(normal((2, 3, 4), (4, 3)), fun=lambda a, b: fnp.tensordot(a, b, ((1, 2), (1, 0))),
                     reference=lambda a, b: np.tensordot(a, b, ((1, 2), (1, 0))), grad=(0, 1)),
    "einsum": Row(normal(X, (4, 2)), fun=lambda a, b: fnp.einsum("ij,jk->ki", a, b),
                  reference=lambda a, b: np.einsum("ij,jk->ki", a, b), grad=(0, 1)),
    "cross": Row(normal((4, 3), (4, 3)), grad=(0, 1)),
    "cross (2 and 3 components)": Row(normal((2, 4), (3, 4)), fun=lambda a, b: fnp.cross(a, b, axisa=0, axisb=0),
                                      reference=lambda a, b: np.cross(a, b, axisa=0, axisb=0), grad=(0, 1)),
    "convolve": Row(normal((5,), (3,)), grad=(0, 1), complex=True),
    **{f"convolve ({mode})": Row(normal((4,), (6,)), fun=(lambda m: lambda a, v: fnp.convolve(a, v, m))(mode),
                                 reference=(lambda m: lambda a, v: np.convolve(a, v, m))(mode), grad=(0, 1))
       for mode in ["same", "valid"]},
    "correlate": Row(normal((5,), (3,)), grad=(0, 1), complex=True),
    **{f"correlate ({mode})": Row(normal((4,), (7,)), fun=(lambda m: lambda a, v: fnp.correlate(a, v, m))(mode),
                                  reference=(lambda m: lambda a, v: np.correlate(a, v, m))(mode), grad=(0, 1),
                                  complex=True)
       for mode in ["same", "full"]},
    "interp": Row(lambda rng, dtype: (draw(rng, dtype, (7,), -3, 3), np.sort(draw(rng, dtype, (5,))),
                                      draw(rng, dtype, (5,))), grad=(0, 1, 2)),
    "interp (left, right, period)": Row(
        lambda rng, dtype: (draw(rng, dtype, (7,), -3, 3), draw(rng, dtype, (5,), 0, 4), draw(rng, dtype, (5,))),
        fun=lambda x, xp, fp: fnp.interp(x, xp, fp, period=4.0),
        reference=lambda x, xp, fp: np.interp(x, xp, fp, period=4.0), grad=(0, 2)),
    "polyval": Row(normal((4,), X), grad=(0, 1), complex=True),
    "select": Row(normal(X, X), fun=lambda a, b: fnp.select([a > 0.5, b < 0], [a, b * 2], default=-1.0),
                  reference=lambda a, b: np.select([a > 0.5, b < 0], [a, b * 2], default=-1.0), grad=(0, 1)),
    "piecewise": Row(normal(X), fun=lambda x: fnp.piecewise(x, [x < -0.5, x > 0.5], [lambda v: v * v, 1.0,
                                                                                      lambda v: -v]),
                     reference=lambda x: np.piecewise(x, [x < -0.5, x > 0.5], [lambda v: v * v, 1.0, lambda v: -v]),
                     grad=(0,)),
    # ---- creation
    "zeros_like": Row(normal(X)), "ones_like": Row(normal(X)),
    "full_like": Row(normal(X), fun=lambda x: fnp.full_like(x, 2.5), reference=lambda x: np.full_like(x, 2.5)),
    "asarray": Row(normal(X), grad=(0,)), "array": Row(normal(X), grad=(0,)),
    "logspace (traced ends)": Row(normal((2,), (2,)), fun=lambda a, b: fnp.logspace(a, b, 4, base=2.0, axis=1),
                                  reference=lambda a, b: np.logspace(a, b, 4, base=2.0, axis=1), grad=(0, 1)),
}


def _padded_unique(x, size, fill):
    values, index, inverse, counts = np.unique(x, return_index=True, return_inverse=True, return_counts=True)
    pad = size - len(values)
    return (np.pad(values, (0, pad), constant_values=fill), np.pad(index, (0, pad), constant_values=index[0]),
            inverse.reshape(x.shape),
            np.pad(counts, (0, pad)))


# Functions of no array arguments (creation) and dtype queries: called on static arguments
# only, compared with NumPy's result.
STATIC_ROWS = {
    "zeros": ((2, 3),), "ones": ((2, 3),), "empty": ((2, 3),), "full": ((2, 3), 1.5),
    "eye": (3, 4, 1), "identity": (3,), "tri": (3, 4, -1), "arange": (1, 7, 2), "linspace": (0.0, 1.0, 5),
    "logspace": (0.0, 2.0, 5),
    "finfo": (np.float32,), "iinfo": (np.int32,), "promote_types": (np.int32, np.float32),
    "result_type": (np.float32, np.int64), "can_cast": (np.int32, np.float64), "issubdtype": (np.float32, np.floating),
    "shape": (np.zeros(X),), "ndim": (np.zeros(X),), "size": (np.zeros(X),),
    "iscomplexobj": (np.zeros(2, complex),), "isrealobj": (np.zeros(2),),
    "isscalar": (3.5,), "broadcast_shapes": ((2, 1), (3,), (1, 1, 3)),
    "hamming": (7,), "hanning": (6,), "bartlett": (5,), "blackman": (8,),
    "tril_indices": (4, 1, 5), "triu_indices": (3, -1), "diag_indices": (3, 3), "indices": ((2, 3),),
}

# Names without a row here, and why.
NO_ROW = {
    "at": "functional updates: tests/test_at.py",
    "r_": "an index trick, not a function: test_r_ and_c_ below", "c_": "an index trick: test_r_and_c_ below",
    "newaxis": "None", "ndarray": "a type",
    "partition": "NumPy's order within each side is unspecified: test_partition_and_argpartition_partition below",
    "argpartition": "as partition: test_partition_and_argpartition_partition below",
}


def _public_functions():
    for name in fnp.__all__:
        value = getattr(fnp, name)
        if isinstance(value, (type, types.ModuleType, float, np.dtype)) or value is None:
            continue
        yield name


def _base(name):
    return name.split(" (")[0]


def test_every_public_name_has_a_row():
    rows = {_base(name) for name in ROWS} | set(STATIC_ROWS) | set(NO_ROW)
    missing = sorted(set(_public_functions()) - rows)
    assert not missing, f"public ftrans.numpy functions without a row in tests/test_numpy_api.py: {missing}"
    unknown = sorted(rows - set(_public_functions()) - {"newaxis", "ndarray"})
    assert not unknown, f"rows for names ftrans.numpy does not have: {unknown}"


def _fun(name, row):
    return row.fun or getattr(fnp, _base(name))


def _reference(name, row):
    return row.reference or getattr(np, _base(name))


def _leaves(out):
    leaves, _ = tree_flatten(out)
    if not leaves and isinstance(out, (tuple, list)):
        return []
    return leaves


def assert_like(got, want, rtol, check_dtype=True, what=""):
    got_leaves = _leaves(got) if not isinstance(got, np.ndarray) else [got]
    want_leaves = [np.asarray(w) for w in (want if isinstance(want, (tuple, list)) else [want])]
    assert len(got_leaves) == len(want_leaves), f"{what}: {len(got_leaves)} results, NumPy {len(want_leaves)}"
    for g, w in zip(got_leaves, want_leaves, strict=True):
        g = np.asarray(g)
        assert g.shape == w.shape, f"{what}: shape {g.shape}, NumPy {w.shape}"
        if check_dtype:
            assert g.dtype == w.dtype, f"{what}: dtype {g.dtype}, NumPy {w.dtype}"
        if w.dtype.kind in "fc":
            np.testing.assert_allclose(g, w, rtol=rtol, atol=rtol, equal_nan=True, err_msg=what)
        else:
            np.testing.assert_array_equal(g, w, err_msg=what)


def _cases():
    for name, row in ROWS.items():
        dtypes = row.dtypes + ((C128, C64) if row.complex else ())
        for dtype in dtypes:
            yield pytest.param(name, dtype, id=f"{name}-{dtype.name}")


def _args(row, dtype, seed=0):
    return row.args(np.random.default_rng(seed), dtype)


@pytest.mark.parametrize("name, dtype", list(_cases()))
def test_against_numpy(name, dtype):
    row = ROWS[name]
    args = _args(row, dtype)
    with np.errstate(all="ignore"):
        want = _reference(name, row)(*args)
    got = _fun(name, row)(*args)
    assert_like(got, want, row.rtol or RTOL.get(dtype, 0), row.check_dtype, f"{name} on {dtype.name}")


def _float_cases(flag):
    for name, row in ROWS.items():
        if getattr(row, flag):
            dtype = row.dtypes[0]
            yield pytest.param(name, dtype, id=f"{name}-{dtype.name}")
            if row.complex:
                yield pytest.param(name, C128, id=f"{name}-complex128")


@pytest.mark.parametrize("name, dtype", list(_float_cases("jit")))
def test_jit_against_eager(name, dtype, jit_backend):
    row = ROWS[name]
    args = _args(row, dtype)
    fun = _fun(name, row)
    want = fun(*args)
    got = jit_for(fun, jit_backend)(*args)
    assert_like(got, [np.asarray(w) for w in _leaves(want)] if not isinstance(want, np.ndarray) else want,
                row.rtol or RTOL.get(dtype, 0), what=f"jit of {name}")


@pytest.mark.parametrize("name, dtype", list(_float_cases("vmap")))
def test_vmap_against_a_loop(name, dtype):
    row = ROWS[name]
    fun = _fun(name, row)
    draws = [_args(row, dtype, seed) for seed in range(3)]
    stacked = [np.stack(parts) for parts in zip(*draws, strict=True)]
    got = ft.vmap(fun)(*stacked)
    per_draw = [_leaves(fun(*args)) if not isinstance(fun(*args), np.ndarray) else [fun(*args)] for args in draws]
    want = [np.stack(parts) for parts in zip(*per_draw, strict=True)]
    assert_like(got, want, row.rtol or RTOL.get(dtype, 0), what=f"vmap of {name}")


def _grad_cases():
    for name, row in ROWS.items():
        if row.grad:
            yield pytest.param(name, F64, id=f"{name}-float64")
            if row.complex:
                yield pytest.param(name, C128, id=f"{name}-complex128")


@pytest.mark.parametrize("name, dtype", list(_grad_cases()))
def test_check_grads(name, dtype):
    row = ROWS[name]
    args = list(_args(row, dtype))
    fun = _fun(name, row)

    def of_differentiated(*diff):
        full = list(args)
        for i, value in zip(row.grad, diff, strict=True):
            full[i] = value
        return fun(*full)
    ft.check_grads(of_differentiated, [args[i] for i in row.grad], row.order, modes=("fwd", "rev"))


@pytest.mark.parametrize("name", sorted(STATIC_ROWS))
def test_static_functions_against_numpy(name):
    args = STATIC_ROWS[name]
    got, want = getattr(fnp, name)(*args), getattr(np, name)(*args)
    if isinstance(want, (np.finfo, np.iinfo)):
        assert (got.dtype, got.min, got.max) == (want.dtype, want.min, want.max)
    elif isinstance(want, (np.dtype, bool, int)) or (isinstance(want, tuple) and all(isinstance(v, int) for v in want)):
        assert got == want
    elif name == "empty":  # NumPy's values are whatever the memory held
        assert (got.shape, got.dtype) == (want.shape, want.dtype)
    else:
        assert_like(got, want, 1e-12, what=name)
    if name in ("zeros", "ones", "full", "eye", "identity", "tri", "arange", "linspace", "logspace"):  # arrays, staged
        jitted = ft.jit(lambda: getattr(fnp, name)(*args))()
        assert_like(jitted, want, 1e-12, what=f"jit of {name}")


# -------------------- beyond the table --------------------

def test_r_and_c_():
    a, b = np.arange(3.0), np.array([[1.0, 2.0], [3.0, 4.0]])
    assert_like(fnp.r_[a, 0.5, 1:4, 0:1:5j], np.r_[a, 0.5, 1:4, 0:1:5j], 1e-12)
    assert_like(fnp.r_["0,2", a, a], np.r_["0,2", a, a], 1e-12)
    assert_like(fnp.r_["1", b, b], np.r_["1", b, b], 1e-12)
    assert_like(fnp.c_[a, a * 2], np.c_[a, a * 2], 1e-12)
    assert_like(ft.jit(lambda x: fnp.c_[x, x + 1])(a), np.c_[a, a + 1], 1e-12)
    assert_like(ft.grad(lambda x: fnp.sum(fnp.r_[x, x * 3] ** 2))(a), 20 * a, 1e-12)


def test_sort_orders_signed_zeros_and_nans_as_jax():
    """JAX (and NumPy) sort -0.0 and 0.0 as equal (a stable sort keeps their order) and every
    NaN last in its order: the values after jnp.sort of this array, and jnp.argsort's indices."""
    x = np.array([0.0, -0.0, np.nan, -np.nan, 1.0, -1.0, 0.0, -0.0])
    for run in (lambda f: f, ft.jit):
        order = np.asarray(run(fnp.argsort)(x))
        np.testing.assert_array_equal(order, [5, 0, 1, 6, 7, 4, 2, 3])
        sorted_x = np.asarray(run(fnp.sort)(x))
        np.testing.assert_array_equal(np.signbit(sorted_x[:6]), np.signbit(x[order][:6]))
        assert np.isnan(sorted_x[6:]).all()
    np.testing.assert_array_equal(fnp.argsort(x, descending=True), [2, 3, 4, 0, 1, 6, 7, 5])


def test_sort_of_complex_numbers_by_real_then_imaginary_part():
    z = np.array([1 + 2j, 1 - 1j, -3 + 0j, 1 + 2j, np.nan + 0j, 0 + 5j])
    assert_like(fnp.sort(z), np.sort(z), 0)
    assert_like(fnp.argsort(z), np.argsort(z, kind="stable"), 0)


def test_value_dependent_shapes_are_concrete_or_sized():
    x = np.array([3.0, 0.0, 1.0, 3.0, 0.0, 2.0])
    assert_like(fnp.unique(x), np.unique(x), 0)
    assert_like(fnp.nonzero(x), np.nonzero(x), 0)
    assert_like(fnp.where(x), np.where(x), 0)
    assert_like(fnp.argwhere(x.reshape(2, 3)), np.argwhere(x.reshape(2, 3)), 0)
    assert_like(fnp.bincount(np.array([0, 3, 3])), np.bincount([0, 3, 3]), 0)
    for fun in (fnp.unique, fnp.nonzero, fnp.argwhere, fnp.where, fnp.flatnonzero, fnp.bincount):
        with pytest.raises(ft.errors.ConcretizationError if hasattr(ft, "errors") else Exception, match="size|length"):
            ft.jit(fun)(x.astype(np.int64) if fun is fnp.bincount else x)
    got = ft.jit(lambda v: fnp.unique(v, size=5))(x)
    assert_like(got, np.array([0.0, 1.0, 2.0, 3.0, 0.0]), 0)  # the smallest value fills (JAX's default)
    assert_like(ft.jit(lambda v: fnp.where(v > 1, size=4, fill_value=-1))(x), (np.array([0, 3, 5, -1]),), 0)


def test_unique_under_grad_carries_the_values_derivatives():
    x = np.array([2.0, 1.0, 2.0, 5.0])
    grad = ft.grad(lambda v: fnp.sum(fnp.unique(v, size=3) * np.array([1.0, 10.0, 100.0])))(x)
    # the first of each run of equal sorted values is the one kept (a stable sort: the first 2.0)
    np.testing.assert_array_equal(grad, [10.0, 1.0, 0.0, 100.0])


def test_sort_is_differentiated_by_the_sort_rules():
    jaxpr = str(ft.make_jaxpr(ft.grad(lambda x: fnp.sum(fnp.sort(x) * np.arange(4.0))))(np.ones(4)))
    # the jvp gathers the tangents by the sort's permutation; reverse mode scatters them back
    assert " sort[" in jaxpr and "scatter_add" in jaxpr


def test_clip_spellings_and_reduction_keywords():
    x = np.linspace(-2, 2, 7)
    for got in (fnp.clip(x, -1, 1), fnp.clip(x, min=-1, max=1), fnp.clip(arr=x, min=-1, max=1),
                fnp.clip(x, a_max=1, a_min=-1)):
        assert_like(got, np.clip(x, -1, 1), 0)
    assert_like(fnp.clip(x, max=0.5), np.clip(x, None, 0.5), 0)
    with pytest.raises(ValueError, match="initial"):
        fnp.max(x, where=x > 0)
    assert_like(fnp.max(np.zeros((0, 3)), axis=0, initial=-1.0), np.max(np.zeros((0, 3)), axis=0, initial=-1.0), 0)
    assert_like(fnp.all(x > -3, where=x > 0), np.all(x > -3, where=x > 0), 0)
    assert_like(fnp.any(x > 1.5, where=x < 1), np.any(x > 1.5, where=x < 1), 0)
    with pytest.raises(ValueError, match="both or neither"):
        fnp.where(x > 0, x)


def test_round_is_half_to_even_at_every_scale():
    x = np.array([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 0.49999999999999994, 4503599627370495.5, -0.0, 1e300, np.inf,
                  np.nan, -0.2])
    assert_like(fnp.round(x), np.round(x), 0)
    assert_like(fnp.rint(x.astype(np.float32)), np.rint(x.astype(np.float32)), 0)
    np.testing.assert_array_equal(np.signbit(fnp.round(x)), np.signbit(np.round(x)))
    ints_ = np.array([15, 25, -35, 149, 150, 250], np.int64)
    assert_like(fnp.round(ints_, -1), np.round(ints_, -1), 0)
    assert_like(fnp.round(ints_, -2), np.round(ints_, -2), 0)


def test_inverse_functions_keep_numpy_accuracy_at_the_edges():
    near_one = 1 - np.logspace(-15, -1, 20)
    tiny = np.logspace(-300, -1, 30)
    large = np.logspace(1, 300, 30)
    cases = {"arcsin": near_one, "arccos": near_one, "arctanh": near_one, "arcsinh": np.r_[tiny, -large, large],
             "arccosh": np.r_[1 + tiny[-15:], large], "log2": large, "log10": tiny, "exp2": np.r_[-1074.0, 3.0, 1023.5]}
    for name, x in cases.items():
        np.testing.assert_allclose(getattr(fnp, name)(x), getattr(np, name)(x), rtol=4e-16 * 8, err_msg=name)
    np.testing.assert_array_equal(fnp.arcsin(np.array([1.0, -1.0, 1.5])), np.arcsin([1.0, -1.0, 1.5]))
    np.testing.assert_array_equal(fnp.arctanh(np.array([1.0, -1.0])), [np.inf, -np.inf])
    # below 1 NaN, far below too ((x - 1)(x + 1) overflowed to +inf there: arccosh(-1.7e308) was inf)
    below = np.array([-1.7e308, -1e200, -3.0, 0.5, 1.0 - 1e-16, np.nan])
    with np.errstate(invalid="ignore"):
        np.testing.assert_array_equal(fnp.arccosh(below), np.arccosh(below))
    big = np.array([1e308, -1e308, 3.0, np.inf])
    np.testing.assert_allclose(fnp.hypot(big, big[::-1]), np.hypot(big, big[::-1]), rtol=1e-15)
    np.testing.assert_allclose(fnp.logaddexp(big, big[::-1]), np.logaddexp(big, big[::-1]), rtol=1e-15)
    np.testing.assert_array_equal(fnp.logaddexp(-np.inf, -np.inf), -np.inf)


def test_fmax_and_fmin_ignore_nans_and_keep_the_first_of_tied_zeros():
    x = np.array([-0.0, 0.0, np.nan, 1.0, np.nan, -2.5, 4.0])
    y = np.array([0.0, -0.0, 1.0, np.nan, np.nan, 3.0, -1.0])
    for name in ("fmax", "fmin"):
        got, want = np.asarray(getattr(fnp, name)(x, y)), getattr(np, name)(x, y)
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(np.signbit(got), np.signbit(want))
    np.testing.assert_array_equal(fnp.fmax(np.array([1, 5], np.int32), np.array([3, 2], np.int32)), [3, 5])
    with pytest.raises(TypeError, match="positive is not defined for booleans"):
        fnp.positive(np.array([True]))
    with pytest.raises(TypeError, match="fabs"):
        fnp.fabs(np.array([1j]))


def test_cbrt_is_within_an_ulp_of_numpys_over_all_of_float64():
    rng = np.random.default_rng(0)
    x = 10.0 ** rng.uniform(-323, 308, 20000) * rng.choice([-1, 1], 20000)
    got, want = np.asarray(fnp.cbrt(x)), np.cbrt(x)
    assert np.all(np.abs(got - want) <= np.spacing(np.abs(want)))
    special = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 5e-324, 1.7976931348623157e308, -27.0])
    got = np.asarray(fnp.cbrt(special))
    np.testing.assert_array_equal(got, np.cbrt(special))
    np.testing.assert_array_equal(np.signbit(got), np.signbit(np.cbrt(special)))
    # float32 computed in float64 and rounded once: the cube root of the float32 value, correctly rounded
    with np.errstate(over="ignore", under="ignore"):
        x32 = x.astype(np.float32)  # (past float32's range: infinities and zeros, on the test's side)
    np.testing.assert_array_equal(fnp.cbrt(x32), np.cbrt(x32.astype(np.float64)).astype(np.float32))


def test_gcd_and_lcm_over_wide_integers_and_their_errors():
    rng = np.random.default_rng(0)
    x, y = rng.integers(-10 ** 15, 10 ** 15, 500), rng.integers(-10 ** 6, 10 ** 6, 500)
    x[:3], y[:3] = [0, 0, 7], [0, 5, 0]
    np.testing.assert_array_equal(fnp.gcd(x, y), np.gcd(x, y))
    np.testing.assert_array_equal(ft.jit(fnp.lcm)(x, y), np.lcm(x, y))
    np.testing.assert_array_equal(fnp.lcm(np.int8(100), np.int8(3)), np.lcm(np.int8(100), np.int8(3)))  # wraps
    with pytest.raises(TypeError, match="integers only"):
        fnp.gcd(1.5, 2)


def test_copy_and_positive_copy():
    a = np.ones(3)
    c, p = fnp.copy(a), fnp.positive(a)
    a[0] = 5.0
    np.testing.assert_array_equal(c, [1.0, 1.0, 1.0])
    np.testing.assert_array_equal(p, [1.0, 1.0, 1.0])


def test_partition_and_argpartition_partition():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 5, (4, 9)).astype(float)
    for kth in (0, 4, -1):
        got = np.asarray(fnp.partition(a, kth, axis=1))
        k = kth % a.shape[1]
        np.testing.assert_array_equal(got[:, k], np.partition(a, kth, axis=1)[:, k])
        assert np.all(got[:, :k] <= got[:, k:k + 1]) and np.all(got[:, k + 1:] >= got[:, k:k + 1])
        np.testing.assert_array_equal(np.sort(got, axis=1), np.sort(a, axis=1))
        index = np.asarray(fnp.argpartition(a, kth, axis=1))
        np.testing.assert_array_equal(np.take_along_axis(a, index, axis=1), got)
    with pytest.raises(ValueError, match="out of bounds"):
        fnp.partition(a, 9, axis=1)


def test_sinc_has_the_derivatives_of_its_series_at_zero():
    """sin(pi x) / (pi x) is 0/0 at 0, its derivatives too: sinc takes its series there (1, 0, -pi^2/3,
    0, pi^4/5), and is 1 there, as NumPy's."""
    d = fnp.sinc
    derivatives = []
    for _ in range(5):
        derivatives.append(float(d(0.0)))
        d = ft.grad(d)
    np.testing.assert_allclose(derivatives, [1.0, 0.0, -np.pi ** 2 / 3, 0.0, np.pi ** 4 / 5], rtol=1e-12, atol=1e-12)
    x = np.array([1e-6, 3e-4, 1e-3, 0.01, 0.3])  # both sides of the switch at pi x = 1e-3
    u = np.pi * x
    closed = np.pi * (np.cos(u) / u - np.sin(u) / u ** 2)  # (cancels below 1e-3: there the series' own)
    want = np.where(u < 1e-2, -np.pi ** 2 / 3 * x + np.pi ** 4 / 30 * x ** 3, closed)
    np.testing.assert_allclose(ft.vmap(ft.grad(fnp.sinc))(x), want, rtol=1e-10)


def test_fmod_and_copysign_keep_signs():
    x = np.array([5.5, -5.5, 5.5, -5.5, -0.0, 0.0, 3.0])
    y = np.array([2.0, 2.0, -2.0, -2.0, 1.0, -1.0, 0.0])
    numbers = ~np.isnan(np.fmod(x, y))  # a NaN's sign is not seen (ftrans has no bitcast; _math._signbit)
    np.testing.assert_array_equal(np.signbit(fnp.fmod(x, y))[numbers], np.signbit(np.fmod(x, y))[numbers])
    assert_like(fnp.fmod(x, y), np.fmod(x, y), 0)
    i, j = np.array([7, -7, 7, -7]), np.array([3, 3, -3, -3])
    assert_like(fnp.fmod(i, j), np.fmod(i, j), 0)
    assert_like(fnp.copysign(x, y), np.copysign(x, y), 0)


_SHAPES = hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=5)


@given(hnp.arrays(np.float64, _SHAPES, elements=st.floats(-10, 10)), st.integers(-3, 2), st.booleans())
def test_sort_and_argsort_as_numpy_for_any_shape(x, axis, descending):
    axis = axis % x.ndim
    want = np.argsort(-x if descending else x, axis=axis, kind="stable")
    assert_like(fnp.argsort(x, axis=axis, descending=descending), want, 0)
    assert_like(fnp.sort(x, axis=axis), np.sort(x, axis=axis), 0)
    rows = x.reshape(x.shape[0], -1)
    assert_like(ft.vmap(lambda r: fnp.sort(r, axis=-1))(rows), np.sort(rows), 0)


_WITH_NAN = st.one_of(st.floats(-5, 5), st.just(np.nan), st.just(np.inf), st.just(-np.inf))


@given(hnp.arrays(np.float64, st.integers(0, 9), elements=_WITH_NAN),
       hnp.arrays(np.float64, st.integers(0, 6), elements=_WITH_NAN),
       st.sampled_from(["left", "right"]))
def test_searchsorted_as_numpy(a, v, side):
    a = np.sort(a)
    assert_like(fnp.searchsorted(a, v, side=side), np.searchsorted(a, v, side=side), 0)
    assert_like(ft.jit(lambda p, q: fnp.searchsorted(p, q, side=side))(a, v), np.searchsorted(a, v, side=side), 0)


@given(hnp.arrays(np.float64, hnp.array_shapes(min_dims=1, max_dims=2, min_side=1, max_side=4),
                  elements=st.floats(-3, 3)),
       st.integers(0, 4), st.integers(0, 4), st.sampled_from(["constant", "edge", "reflect", "symmetric", "wrap"]))
def test_pad_as_numpy(x, before, after, mode):
    widths = [(before, after)] + [(after, before)] * (x.ndim - 1)
    assert_like(fnp.pad(x, widths, mode=mode), np.pad(x, widths, mode=mode), 0)


@given(hnp.arrays(np.float64, hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=5),
                  elements=st.floats(-3, 3)),
       st.lists(st.floats(0, 1), min_size=1, max_size=3),
       st.sampled_from(["linear", "lower", "higher", "nearest", "midpoint"]), st.booleans())
def test_quantile_as_numpy(x, q, method, keepdims):
    axis = x.ndim - 1
    assert_like(fnp.quantile(x, np.array(q), axis=axis, method=method, keepdims=keepdims),
                np.quantile(x, np.array(q), axis=axis, method=method, keepdims=keepdims), 1e-13)
    assert_like(fnp.median(x, axis=0), np.median(x, axis=0), 1e-13)


@given(hnp.arrays(np.int64, hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4),
                  elements=st.integers(-3, 3)), st.sampled_from([None, 0, -1]))
def test_cumulative_dtypes_and_values_as_numpy(x, axis):
    for name in ("cumsum", "cumprod"):
        assert_like(getattr(fnp, name)(x, axis=axis), getattr(np, name)(x, axis=axis), 0)
        assert_like(getattr(fnp, name)(x.astype(np.int32), axis=axis), getattr(np, name)(x.astype(np.int32), axis=axis),
                    0)
    assert_like(fnp.cumsum(x > 0, axis=axis), np.cumsum(x > 0, axis=axis), 0)


@given(hnp.arrays(np.float64, st.integers(1, 8), elements=st.floats(-3, 3)),
       hnp.arrays(np.float64, st.integers(1, 8), elements=st.floats(-3, 3)),
       st.sampled_from(["full", "same", "valid"]))
def test_convolve_and_correlate_as_numpy(a, v, mode):
    assert_like(fnp.convolve(a, v, mode), np.convolve(a, v, mode), 1e-12)
    assert_like(fnp.correlate(a, v, mode), np.correlate(a, v, mode), 1e-12)


@given(hnp.arrays(np.float64, hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4),
                  elements=st.floats(-3, 3)), st.integers(-5, 5))
def test_roll_diagonal_and_triangles_as_numpy(x, k):
    assert_like(fnp.roll(x, k), np.roll(x, k), 0)
    assert_like(ft.jit(fnp.roll)(x, k), np.roll(x, k), 0)  # a traced shift
    if x.ndim >= 2:
        assert_like(fnp.diagonal(x, k), np.diagonal(x, k), 0)
        assert_like(fnp.triu(x, k), np.triu(x, k), 0)
        assert_like(fnp.tril(x, k), np.tril(x, k), 0)


@given(hnp.arrays(np.float64, hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=5),
                  elements=st.floats(-3, 3)), st.integers(0, 2), st.booleans())
def test_gradients_of_sort_and_cumsum_in_closed_form(x, axis, descending):
    """d/dx sum(sort(x) * w) puts w[i] at the position sort took its i-th value from (ties too:
    the stable permutation; descending, its reverse, as jnp.sort's rev of the ascending sort);
    d/dx sum(cumsum(x) * w) is w summed from the end."""
    axis = axis % x.ndim
    w = np.random.default_rng(0).standard_normal(x.shape)
    order = np.argsort(x, axis=axis, kind="stable")
    order = np.flip(order, axis) if descending else order
    want = np.zeros_like(x)
    np.put_along_axis(want, order, w, axis=axis)
    for transform in (lambda f: f, ft.jit):
        got = transform(ft.grad(lambda v: fnp.sum(fnp.sort(v, axis=axis, descending=descending) * w)))(x)
        assert_like(got, want, 0)
        got = transform(ft.grad(lambda v: fnp.sum(fnp.cumsum(v, axis=axis) * w)))(x)
        assert_like(got, np.flip(np.cumsum(np.flip(w, axis), axis), axis), 1e-12)
