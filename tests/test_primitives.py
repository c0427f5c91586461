"""Every primitive against NumPy, one table row each.

A row says how to draw operands and params with hypothesis (values inside the
primitive's domain) and what NumPy computes for them. For every row:

(a) `ir.bind` with no trace open equals the NumPy reference, as a
    `numpy.ndarray` (0-d for scalars) of the reference's dtype;
(b) `abstract_eval` predicts the shape and dtype of that result;
(c) staging the primitive into a jaxpr and evaluating it gives the same array.

(d) `abstract_eval` rejects bad operands and params with a TypeError that
names the primitive. A primitive registered without a row fails
`test_every_primitive_has_a_row`.

(e) `ft.jit` of the primitive alone, on each jit backend, equals the same
    NumPy reference and (tightly) eager `bind`: `test_jit_of_each_primitive_matches_eager`.
"""
from __future__ import annotations

import collections
import dataclasses
import functools
import itertools
import math
import re
from typing import Callable

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import ftrans as ft
import ir
import custom_rows
import special_reference
from conftest import COLLECTIVES, jit_for, share_of_profile
from interpreters.eval import eval_closed_jaxpr
from ir.core import Array, ShapedArray
from ir.primitives.callback import VMAP_METHODS, HostCallback

F32, F64 = np.dtype(np.float32), np.dtype(np.float64)
I32, I64 = np.dtype(np.int32), np.dtype(np.int64)
BOOL = np.dtype(np.bool_)
C64, C128 = np.dtype(np.complex64), np.dtype(np.complex128)
COMPLEX = (C64, C128)
FLOATS = (F32, F64)
INTS = (I32, I64)
NUMBERS = FLOATS + INTS
ALL = NUMBERS + (BOOL,)

SHAPES = hnp.array_shapes(min_dims=0, max_dims=3, max_side=4)
NONSCALAR_SHAPES = hnp.array_shapes(min_dims=1, max_dims=3, max_side=4)
# zero-size dimensions too, for the ops where emptiness changes the answer
SHAPES_WITH_EMPTY = hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4)

RTOL = {np.dtype(np.float16): 1e-3, F32: 1e-6, F64: 1e-12, C64: 1e-5, C128: 1e-12}


# -------------------- drawing values --------------------

@functools.lru_cache(maxsize=None)  # strategies are built (and validated) once, not per example
def elements(dtype, lo=-10, hi=10, *, exclude_lo=False, exclude_zero=False, grid=None,
             allow_nan=False):
    """Values of `dtype` in [lo, hi]. `grid=4` draws floats on a 1/4 grid: sums (and small
    products) of those are exact in any order, so no tolerance hides a wrong answer."""
    dtype = np.dtype(dtype)
    if dtype.kind == "c":  # each part as a float of the part's precision
        part = elements(np.dtype(f"f{dtype.itemsize // 2}"), lo, hi, exclude_lo=exclude_lo, grid=grid,
                        allow_nan=allow_nan)
        values = st.builds(complex, part, part)
        return values.filter(bool) if exclude_zero else values
    if dtype.kind == "b":
        return st.booleans()
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        ints = st.integers(max(int(np.ceil(lo)) + exclude_lo, info.min), min(int(hi), info.max))
        return ints.filter(bool) if exclude_zero else ints
    if grid is not None:
        values = st.integers(int(np.ceil(lo * grid)) + exclude_lo, int(hi * grid)).map(lambda k: k / grid)
    else:
        values = st.floats(lo, hi, exclude_min=exclude_lo, width=8 * dtype.itemsize,
                           allow_nan=False, allow_infinity=False, allow_subnormal=False)
    if exclude_zero:
        values = values.filter(bool)
    if allow_nan:
        values = st.one_of(values, st.just(np.nan))
    return values


@functools.lru_cache(maxsize=None)
def _value_lists(dtype, size, kw):
    return st.lists(elements(dtype, **dict(kw)), min_size=min(size, 1), max_size=min(size, 12))


def array(draw, dtype, shape, **kw):
    """An array of `dtype` and `shape` with values from `elements(dtype, **kw)`: up to 12
    drawn values, repeated to fill it (far cheaper to draw than one value per element
    with hypothesis's arrays(), and it shrinks just as well)."""
    dtype = np.dtype(dtype)
    values = draw(_value_lists(dtype, math.prod(shape), tuple(sorted(kw.items()))))
    return np.resize(np.array(values, dtype=dtype), shape)


def subset(draw, n, min_size=0):
    """A subset of range(n), in a drawn (not necessarily sorted) order."""
    perm = draw(st.permutations(range(n)))
    return tuple(perm[:draw(st.integers(min_size, n))])


# -------------------- the table --------------------

@dataclasses.dataclass
class Row:
    draw: Callable       # hypothesis `draw` -> (args, params)
    reference: Callable  # (args, params) -> the NumPy result

    def __post_init__(self):
        self.strategy = st.composite(self.draw)()


ROWS: dict[str, Row] = {}


def row(name):
    """Register a row: a (draw, reference) pair, or a function returning one."""
    def register(entry):
        draw, reference = entry() if callable(entry) else entry
        ROWS[name] = Row(draw, reference)
        return entry
    return register


def in_f64(np_fun):
    """A float reference computed in float64 and rounded to the operand's dtype:
    the float32 result is then checked against a more accurate one. Complex
    operands: NumPy's function in their own dtype."""
    def reference(args, params):
        x, = args
        if x.dtype.kind == "c":  # NumPy's own complex64 functions are accurate only in norm (log1p near 0)
            with np.errstate(all="ignore"):
                return np.asarray(np_fun(x))
        return np.asarray(np_fun(x.astype(np.float64))).astype(x.dtype)
    return reference


# unary elementwise: name -> (NumPy function, dtypes, value domain); floats are checked
# against the function computed in float64
_UNARY = {
    "neg": (np.negative, NUMBERS + COMPLEX, {}),
    "sign": (np.sign, NUMBERS, {}),
    "abs": (np.abs, NUMBERS + COMPLEX, {}),
    "floor": (np.floor, FLOATS, {}),
    "ceil": (np.ceil, FLOATS, {}),
    "sin": (np.sin, FLOATS + COMPLEX, {}),
    "cos": (np.cos, FLOATS + COMPLEX, {}),
    "tan": (np.tan, FLOATS + COMPLEX, {"lo": -1.5, "hi": 1.5}),
    "atan": (np.arctan, FLOATS, {"lo": -100, "hi": 100}),
    "sinh": (np.sinh, FLOATS + COMPLEX, {}),
    "cosh": (np.cosh, FLOATS + COMPLEX, {}),
    "tanh": (np.tanh, FLOATS + COMPLEX, {}),
    "exp": (np.exp, FLOATS + COMPLEX, {"lo": -30, "hi": 30}),
    "log": (np.log, FLOATS + COMPLEX, {"lo": 0, "hi": 1000, "exclude_lo": True}),
    "log1p": (np.log1p, FLOATS + COMPLEX, {"lo": -1, "hi": 100, "exclude_lo": True}),
    "expm1": (np.expm1, FLOATS + COMPLEX, {"lo": -30, "hi": 30}),
    "sqrt": (np.sqrt, FLOATS + COMPLEX, {"lo": 0, "hi": 1000}),
    "logistic": (lambda x: 1 / (1 + np.exp(-x)), FLOATS, {"lo": -30, "hi": 30}),
    "not": (np.invert, INTS + (BOOL,), {}),
    "real": (np.real, COMPLEX, {"allow_nan": True}),
    "imag": (np.imag, COMPLEX, {"allow_nan": True}),
    "conj": (np.conjugate, COMPLEX, {"allow_nan": True}),
    "stop_gradient": (lambda x: x, ALL, {}),
    # special functions (references from outside ftrans: tests/special_reference.py)
    "erf": (lambda x: special_reference.erf(x), FLOATS, {"lo": -6, "hi": 6}),
    "erfc": (lambda x: special_reference.erfc(x), FLOATS, {"lo": -6, "hi": 26}),
    "erf_inv": (lambda x: special_reference.erf_inv(x), FLOATS, {"lo": -0.9990234375, "hi": 0.9990234375}),
    "lgamma": (lambda x: special_reference.lgamma(x), FLOATS, {"lo": 0, "hi": 100, "exclude_lo": True}),
    "digamma": (lambda x: special_reference.digamma(x), FLOATS, {"lo": 0, "hi": 100, "exclude_lo": True}),
}


def _unary_row(np_fun, dtypes, domain):
    def draw(d):
        dtype = d(st.sampled_from(dtypes))
        return [array(d, dtype, d(SHAPES), **domain)], {}

    def reference(args, params):
        x, = args
        if x.dtype.kind in "fc":
            return in_f64(np_fun)(args, params)
        return np_fun(x)
    return draw, reference


for _name, (_fun, _dtypes, _domain) in _UNARY.items():
    row(_name)(_unary_row(_fun, _dtypes, _domain))


def _binary_operand_shapes(d):
    """One shape for both, or one of them rank-0 (a scalar beside an array)."""
    shape = d(SHAPES)
    which = d(st.sampled_from(["same", "same", "x scalar", "y scalar"]))
    return ((), shape) if which == "x scalar" else (shape, ()) if which == "y scalar" else (shape, shape)


# binary elementwise: name -> (NumPy function, dtypes, domain of x, domain of y)
_SMALL = {"lo": -6, "hi": 6, "grid": 4}
_NONZERO = {"lo": -6, "hi": 6, "grid": 4, "exclude_zero": True}
def _complex_reference(x, y):
    x, y = np.broadcast_arrays(x, y)
    out = np.empty(x.shape, np.result_type(x.dtype, np.complex64))
    out.real, out.imag = x, y  # parts as they are: x + 1j * y would mix a NaN into both
    return out


_BINARY = {
    "add": (np.add, NUMBERS + COMPLEX, {"grid": 4}, {"grid": 4}),
    "sub": (np.subtract, NUMBERS + COMPLEX, {"grid": 4}, {"grid": 4}),
    "mul": (np.multiply, NUMBERS + COMPLEX, {"grid": 4}, {"grid": 4}),
    "div": (np.true_divide, FLOATS + COMPLEX, {}, {"grid": 16, "exclude_zero": True}),
    "atan2": (np.arctan2, FLOATS, {"grid": 4, "allow_nan": True}, {"grid": 4, "allow_nan": True}),
    "complex": (lambda x, y: _complex_reference(x, y), FLOATS, {"allow_nan": True}, {"allow_nan": True}),
    "floor_divide": (np.floor_divide, NUMBERS, _SMALL, _NONZERO),
    "mod": (np.mod, NUMBERS, _SMALL, _NONZERO),
    "max": (np.maximum, ALL + COMPLEX, {"grid": 4, "allow_nan": True}, {"grid": 4, "allow_nan": True}),
    "min": (np.minimum, ALL + COMPLEX, {"grid": 4, "allow_nan": True}, {"grid": 4, "allow_nan": True}),
    "and": (np.bitwise_and, INTS + (BOOL,), {}, {}),
    "or": (np.bitwise_or, INTS + (BOOL,), {}, {}),
    "xor": (np.bitwise_xor, INTS + (BOOL,), {}, {}),
    "eq": (np.equal, ALL + COMPLEX, _SMALL, _SMALL),
    "ne": (np.not_equal, ALL + COMPLEX, _SMALL, _SMALL),
    "lt": (np.less, ALL + COMPLEX, _SMALL, _SMALL),
    "le": (np.less_equal, ALL + COMPLEX, _SMALL, _SMALL),
    "gt": (np.greater, ALL + COMPLEX, _SMALL, _SMALL),
    "ge": (np.greater_equal, ALL + COMPLEX, _SMALL, _SMALL),
}


def _binary_row(np_fun, dtypes, x_domain, y_domain):
    def draw(d):
        dtype = d(st.sampled_from(dtypes))
        x_shape, y_shape = _binary_operand_shapes(d)
        return [array(d, dtype, x_shape, **x_domain), array(d, dtype, y_shape, **y_domain)], {}

    def reference(args, params):
        return np_fun(*args)
    return draw, reference


for _name, (_fun, _dtypes, _xd, _yd) in _BINARY.items():
    row(_name)(_binary_row(_fun, _dtypes, _xd, _yd))


def _draw_pow(d):
    dtype = d(st.sampled_from(NUMBERS))
    x_shape, y_shape = _binary_operand_shapes(d)
    if dtype.kind == "f":  # positive bases: real results for any exponent
        return [array(d, dtype, x_shape, lo=1 / 16, hi=4),
                array(d, dtype, y_shape, lo=-3, hi=3)], {}
    return [array(d, dtype, x_shape, lo=-5, hi=5), array(d, dtype, y_shape, lo=0, hi=5)], {}


def _pow_reference(args, params):
    x, y = args
    if x.dtype.kind == "f":
        return np.power(x.astype(np.float64), y.astype(np.float64)).astype(x.dtype)
    xb, yb = np.broadcast_arrays(x, y)
    return np.array([int(a) ** int(b) for a, b in zip(xb.flat, yb.flat)], dtype=x.dtype).reshape(xb.shape)


row("pow")((_draw_pow, _pow_reference))


# -------------------- bits --------------------

U8, U32, U64 = np.dtype(np.uint8), np.dtype(np.uint32), np.dtype(np.uint64)
SHIFTABLE = INTS + (U8, U32, U64)


def _shift_reference(shift):
    """x shifted by y bits in Python's integers, cut to x's width; 0 for y outside [0, width)."""
    def reference(args, params):
        x, y = np.broadcast_arrays(*args)
        width = 8 * x.dtype.itemsize
        unsigned = np.dtype(f"u{x.dtype.itemsize}")
        out = [shift(int(a) % 2**width, int(b)) % 2**width if 0 <= b < width else 0
               for a, b in zip(x.view(unsigned).flat if x.ndim else [x.view(unsigned)], y.flat)]
        return np.array(out, dtype=unsigned).view(x.dtype).reshape(x.shape)
    return reference


def _draw_shift(d):
    dtype = d(st.sampled_from(SHIFTABLE))
    x_shape, y_shape = _binary_operand_shapes(d)
    info = np.iinfo(dtype)
    return [array(d, dtype, x_shape, lo=info.min, hi=info.max),
            array(d, dtype, y_shape, lo=-2 if dtype.kind == "i" else 0, hi=8 * dtype.itemsize + 2)], {}


row("shift_left")((_draw_shift, _shift_reference(lambda a, b: a << b)))
row("shift_right_logical")((_draw_shift, _shift_reference(lambda a, b: a >> b)))


def threefry2x32_in_python(k0, k1, x0, x1):
    """Threefry-2x32, 20 rounds, on Python ints: Random123's threefry.h, written out again."""
    mask = 2**32 - 1
    ks = [k0, k1, k0 ^ k1 ^ 0x1BD11BDA]
    x = [(x0 + ks[0]) & mask, (x1 + ks[1]) & mask]
    for block in range(5):
        for r in ((13, 15, 26, 6), (17, 29, 16, 24))[block % 2]:
            x[0] = (x[0] + x[1]) & mask
            x[1] = (((x[1] << r) | (x[1] >> (32 - r))) & mask) ^ x[0]
        x[0] = (x[0] + ks[(block + 1) % 3]) & mask
        x[1] = (x[1] + ks[(block + 2) % 3] + block + 1) & mask
    return x


@row("threefry2x32")
def _():
    def draw(d):
        shape = d(SHAPES)
        shapes = [d(st.sampled_from([(), shape])) for _ in range(4)]
        return [array(d, U32, s, lo=0, hi=2**32 - 1) for s in shapes], {}

    def reference(args, params):
        args = np.broadcast_arrays(*args)
        outs = [threefry2x32_in_python(*map(int, words)) for words in zip(*(a.flat for a in args))]
        return [np.array([o[i] for o in outs], dtype=U32).reshape(args[0].shape) for i in (0, 1)]
    return draw, reference


@row("polygamma")
def _():
    def draw(d):
        dtype = d(st.sampled_from(FLOATS))
        return [array(d, dtype, d(SHAPES), lo=0.0625, hi=50)], {"m": d(st.integers(1, 4))}

    def reference(args, params):
        x, = args
        return np.asarray(special_reference.polygamma(params["m"], x.astype(np.float64))).astype(x.dtype)
    return draw, reference


# the incomplete gamma and beta functions against mpmath (tests/special_reference.py); the domains
# hold both branches of each (series and continued fraction) and P's and Q's small tails
_INCOMPLETE = {
    "igamma": (special_reference.gammainc, [{"lo": 0.0625, "hi": 30}, {"lo": 0, "hi": 60}]),
    "igammac": (special_reference.gammaincc, [{"lo": 0.0625, "hi": 30}, {"lo": 0, "hi": 60}]),
    "igamma_grad_a": (special_reference.gammainc_grad_a, [{"lo": 0.25, "hi": 20}, {"lo": 0.0625, "hi": 40}]),
    "random_gamma_grad": (special_reference.random_gamma_grad, [{"lo": 0.25, "hi": 20}, {"lo": 0.0625, "hi": 40}]),
    "regularized_incomplete_beta": (special_reference.betainc,
                                    [{"lo": 0.25, "hi": 20}, {"lo": 0.25, "hi": 20}, {"lo": 0, "hi": 1}]),
}


def _incomplete_row(reference_fun, domains):
    def draw(d):
        dtype = d(st.sampled_from(FLOATS))
        shape = d(SHAPES)
        shapes = [d(st.sampled_from([(), shape])) for _ in domains]
        return [array(d, dtype, s, **domain) for s, domain in zip(shapes, domains)], {}

    def reference(args, params):
        return np.asarray(reference_fun(*args)).astype(args[0].dtype)
    return draw, reference


for _name, (_reference, _domains) in _INCOMPLETE.items():
    row(_name)(_incomplete_row(_reference, _domains))


# -------------------- decompositions: numpy.linalg's own, on stacks of well-conditioned matrices --------------------

def _matrices(d, square=True, min_side=1):
    dtype = d(st.sampled_from(FLOATS + COMPLEX))
    batch = d(hnp.array_shapes(min_dims=0, max_dims=2, max_side=3))
    m = d(st.integers(min_side, 4))
    n = m if square else d(st.integers(min_side, 4))
    return array(d, dtype, batch + (m, n), lo=-2, hi=2, grid=4), dtype


def _spd(d):
    a, dtype = _matrices(d)
    n = a.shape[-1]
    return (a @ np.conj(np.swapaxes(a, -1, -2)) + n * np.eye(n)).astype(dtype)  # Hermitian for complex a


def _lu_reference(a):
    """Doolittle with partial pivoting, one matrix at a time (jax.lax.linalg.lu's outputs)."""
    n = a.shape[-1]
    # in the input's own precision, as lu computes: an exact cancellation in float32 arithmetic
    # is not one in float64 (0 against 3e-9, say, where rtol has nothing to scale)
    flat = a.reshape(-1, n, n).copy()
    lus, pivots, perms = [], [], []
    for m in flat:
        m, piv, perm = m.copy(), [], list(range(n))
        for k in range(n):
            p = k + int(np.argmax(np.abs(m[k:, k].real) + np.abs(m[k:, k].imag)))  # LAPACK's getrf's pivot
            piv.append(p)
            m[[k, p]], perm[k], perm[p] = m[[p, k]], perm[p], perm[k]
            m[k + 1:, k] /= m[k, k]
            m[k + 1:, k + 1:] -= np.outer(m[k + 1:, k], m[k, k + 1:])
        lus.append(m), pivots.append(piv), perms.append(perm)
    shape = a.shape[:-2]
    return [np.array(lus).reshape(a.shape).astype(a.dtype), np.array(pivots, np.int32).reshape(shape + (n,)),
            np.array(perms, np.int32).reshape(shape + (n,))]


row("cholesky")((lambda d: ([_spd(d)], {}), lambda args, params: np.linalg.cholesky(args[0])))
row("eigh")((lambda d: ([_spd(d)], {}), lambda args, params: list(np.linalg.eigh(args[0]))[::-1]))
row("lu")((lambda d: ([_spd(d)], {}), lambda args, params: _lu_reference(args[0])))


def _unit_largest_real(v):
    """Columns of unit norm with their largest entry real and positive (eig's left eigenvectors)."""
    v = v / np.linalg.norm(v, axis=-2, keepdims=True)
    largest = np.take_along_axis(v, np.argmax(np.abs(v), axis=-2)[..., None, :], axis=-2)
    return v * np.conj(largest) / np.abs(largest)


def _left_eigenvectors(v):
    """The rows of v^-1, conjugated, normalized (what LAPACK's geev returns as vl; that they solve the
    left problem is tests/test_linalg.py's test_eig_eigenvectors_are_normalized_as_lapack_...)."""
    return _unit_largest_real(np.conj(np.swapaxes(np.linalg.inv(v), -1, -2)))


@row("eig")
def _():
    def draw(d):
        # distinct eigenvalues: a diagonal of separate values plus a small perturbation
        a, dtype = _matrices(d)
        n = a.shape[-1]
        a = (np.diag(np.arange(1.0, n + 1) * 3) + a * 0.2).astype(dtype)
        return [a], {"compute_left_eigenvectors": d(st.booleans()), "compute_right_eigenvectors": d(st.booleans())}

    def reference(args, params):
        (a,) = args
        dtype = np.result_type(a.dtype, np.complex64)
        w, v = np.linalg.eig(a)
        outs = [w.astype(dtype)]
        if params["compute_left_eigenvectors"]:
            outs.append(_left_eigenvectors(v.astype(dtype)).astype(dtype))
        if params["compute_right_eigenvectors"]:
            outs.append(v.astype(dtype))
        return outs
    return draw, reference


def _substitution(t, b):
    """Solve t x = b for triangular t (either triangle), column by column, matrix by matrix
    (numpy.linalg.solve would round where substitution is exact)."""
    n = t.shape[-1]
    lower = np.allclose(t, np.tril(t))
    tf, bf = t.reshape(-1, n, n), b.reshape(-1, n, b.shape[-1])
    x = np.zeros(bf.shape, np.result_type(t, b))
    for m in range(tf.shape[0]):
        for i in (range(n) if lower else range(n - 1, -1, -1)):
            x[m, i] = (bf[m, i] - tf[m, i] @ x[m]) / tf[m, i, i]
    return x.reshape(b.shape)


@row("triangular_solve")
def _():
    def draw(d):
        a = _spd(d)
        n = a.shape[-1]
        left_side = d(st.booleans())
        k = d(st.integers(1, 3))
        b = array(d, a.dtype, a.shape[:-2] + ((n, k) if left_side else (k, n)), lo=-2, hi=2, grid=4)
        return [a, b], {"left_side": left_side, "lower": d(st.booleans()), "transpose_a": d(st.booleans()),
                        "unit_diagonal": d(st.booleans())}

    def reference(args, params):
        a, b = (x.astype(np.result_type(x.dtype, np.float64)) for x in args)
        t = np.tril(a) if params["lower"] else np.triu(a)
        if params["unit_diagonal"]:
            t = t - t * np.eye(a.shape[-1]) + np.eye(a.shape[-1])
        if params["transpose_a"]:
            t = np.swapaxes(t, -1, -2)
        if not params["left_side"]:  # x t = b: t^T x^T = b^T
            return np.swapaxes(_substitution(np.swapaxes(t, -1, -2), np.swapaxes(b, -1, -2)), -1, -2).astype(
                args[1].dtype)
        x = _substitution(t, b)
        return x.astype(args[1].dtype)
    return draw, reference


@row("svd")
def _():
    def draw(d):
        return [_matrices(d, square=False)[0]], {"full_matrices": d(st.booleans())}

    def reference(args, params):
        u, s, vt = np.linalg.svd(args[0], full_matrices=params["full_matrices"])
        return [s.astype(args[0].real.dtype), u, vt]
    return draw, reference


@row("qr")
def _():
    def draw(d):
        return [_matrices(d, square=False)[0]], {"full_matrices": d(st.booleans())}

    def reference(args, params):
        return list(np.linalg.qr(args[0], mode="complete" if params["full_matrices"] else "reduced"))
    return draw, reference


@row("integer_pow")
def _():
    def draw(d):
        dtype = d(st.sampled_from(NUMBERS))
        y = d(st.integers(-3, 5) if dtype.kind == "f" else st.integers(0, 5))
        x = array(d, dtype, d(SHAPES), lo=-5, hi=5, grid=4, exclude_zero=y < 0)
        return [x], {"y": y}

    def reference(args, params):
        x, = args
        y = params["y"]
        if x.dtype.kind == "f":  # in float64, then rounded
            return (x.astype(np.float64) ** y).astype(x.dtype)
        return np.array([int(v) ** y for v in x.flat], dtype=x.dtype).reshape(x.shape)
    return draw, reference


@row("select_n")
def _():
    def draw(d):
        dtype = d(st.sampled_from(ALL))
        shape = d(SHAPES)
        pick = lambda: shape if d(st.booleans()) else ()
        which = array(d, BOOL, pick())
        return [which, array(d, dtype, pick()), array(d, dtype, pick())], {}

    def reference(args, params):
        which, on_false, on_true = args
        return np.where(which, on_true, on_false)
    return draw, reference


@row("convert_element_type")
def _():
    def draw(d):
        dtype = d(st.sampled_from(ALL))
        new_dtype = d(st.sampled_from(ALL + (np.dtype(np.float16),)))
        x = array(d, dtype, d(SHAPES), lo=-100, hi=100, grid=4)
        return [x], {"new_dtype": new_dtype, "weak_type": d(st.booleans())}

    def reference(args, params):
        x, = args
        new = params["new_dtype"]
        if x.dtype.kind == "f" and new.kind in "iu":  # truncation toward zero
            return np.trunc(x).astype(np.int64).astype(new)
        if new.kind == "b":
            return x != 0
        return x.astype(new)
    return draw, reference


# -------------------- structural --------------------

@row("broadcast_in_dim")
def _():
    def draw(d):
        dtype = d(st.sampled_from(ALL))
        x_shape = d(SHAPES)
        out_ndim = d(st.integers(len(x_shape), len(x_shape) + 2))
        dims = tuple(sorted(d(st.permutations(range(out_ndim)))[:len(x_shape)]))
        shape = [d(st.integers(0, 3)) for _ in range(out_ndim)]
        for i, dim in enumerate(dims):
            shape[dim] = x_shape[i] if x_shape[i] != 1 else d(st.integers(1, 3))
        return [array(d, dtype, x_shape)], {"shape": tuple(shape), "broadcast_dimensions": dims}

    def reference(args, params):
        x, = args
        shape, dims = params["shape"], params["broadcast_dimensions"]
        new_axes = [i for i in range(len(shape)) if i not in dims]
        return np.broadcast_to(np.expand_dims(x, new_axes), shape)
    return draw, reference


@functools.lru_cache(maxsize=None)
def _factorizations(n, max_dims=4):
    """Every shape of at most max_dims sides whose product is n (n >= 1)."""
    shapes = [()] if n == 1 else []
    for k in range(1, max_dims + 1):
        for sides in itertools.product([s for s in range(1, n + 1) if n % s == 0], repeat=k):
            if math.prod(sides) == n:
                shapes.append(sides)
    return shapes


@row("reshape")
def _():
    def draw(d):
        dtype = d(st.sampled_from(ALL))
        x_shape = d(SHAPES_WITH_EMPTY)
        size = int(np.prod(x_shape))
        if size == 0:
            new = d(st.lists(st.integers(0, 3), min_size=1, max_size=3).filter(lambda s: 0 in s))
        else:
            new = d(st.sampled_from(_factorizations(size)))
        return [array(d, dtype, x_shape)], {"new_sizes": tuple(new)}

    def reference(args, params):
        x, = args
        return np.array(list(x.flat), dtype=x.dtype).reshape(params["new_sizes"])
    return draw, reference


@row("transpose")
def _():
    def draw(d):
        x_shape = d(SHAPES)
        return ([array(d, d(st.sampled_from(ALL)), x_shape)],
                {"permutation": tuple(d(st.permutations(range(len(x_shape)))))})

    def reference(args, params):
        x, = args
        return np.transpose(x, params["permutation"])
    return draw, reference


@row("squeeze")
def _():
    def draw(d):
        x_shape = [1 if d(st.booleans()) else n for n in d(SHAPES)]
        ones = [i for i, n in enumerate(x_shape) if n == 1]
        dims = tuple(d(st.permutations(ones))[:d(st.integers(0, len(ones)))])
        return [array(d, d(st.sampled_from(ALL)), tuple(x_shape))], {"dimensions": dims}

    def reference(args, params):
        x, = args
        dims = params["dimensions"]
        return x.reshape([n for i, n in enumerate(x.shape) if i not in dims])
    return draw, reference


@row("concatenate")
def _():
    def draw(d):
        dtype = d(st.sampled_from(ALL))
        base = list(d(NONSCALAR_SHAPES))
        dimension = d(st.integers(0, len(base) - 1))
        xs = []
        for _ in range(d(st.integers(1, 4))):
            shape = list(base)
            shape[dimension] = d(st.integers(0, 4))
            xs.append(array(d, dtype, tuple(shape)))
        return xs, {"dimension": dimension}

    def reference(args, params):
        return np.concatenate(args, axis=params["dimension"])
    return draw, reference


@row("slice")
def _():
    def draw(d):
        x_shape = d(SHAPES_WITH_EMPTY)
        starts, limits, strides = [], [], []
        for n in x_shape:
            start = d(st.integers(0, n))
            starts.append(start)
            limits.append(n if d(st.booleans()) else d(st.integers(start, n)))  # long slices: strides matter
            strides.append(d(st.sampled_from([2, 1, 3])))
        strides = tuple(strides) if d(st.booleans()) else None
        return ([array(d, d(st.sampled_from(ALL)), x_shape)],
                {"start_indices": tuple(starts), "limit_indices": tuple(limits), "strides": strides})

    def reference(args, params):
        x, = args
        strides = params["strides"] or (1,) * x.ndim
        # element by element, from the definition: x[start + i * stride] for start + i * stride < limit
        axes = [range(s, l, st_) for s, l, st_ in zip(params["start_indices"], params["limit_indices"], strides)]
        out = np.empty([len(r) for r in axes], dtype=x.dtype)
        for pos in np.ndindex(out.shape):
            out[pos] = x[tuple(r[i] for r, i in zip(axes, pos))]
        return out
    return draw, reference


@row("pad")
def _():
    def draw(d):
        dtype = d(st.sampled_from(ALL))
        x_shape = d(SHAPES_WITH_EMPTY)
        config = tuple((d(st.integers(0, 2)), d(st.integers(0, 2)), d(st.integers(0, 2))) for _ in x_shape)
        return [array(d, dtype, x_shape), array(d, dtype, ())], {"padding_config": config}

    def reference(args, params):
        x, value = args
        config = params["padding_config"]
        # from the definition: x[i] lands at lo + i * (interior + 1); the rest is the padding value
        shape = [lo + hi + n + max(n - 1, 0) * interior for n, (lo, hi, interior) in zip(x.shape, config)]
        out = np.full(shape, value, dtype=x.dtype)
        for pos in np.ndindex(x.shape):
            out[tuple(lo + i * (interior + 1) for i, (lo, _, interior) in zip(pos, config))] = x[pos]
        return out
    return draw, reference


@row("rev")
def _():
    def draw(d):
        x_shape = d(SHAPES)
        return ([array(d, d(st.sampled_from(ALL)), x_shape)],
                {"dimensions": subset(d, len(x_shape))})

    def reference(args, params):
        x, = args
        return x[tuple(slice(None, None, -1) if i in params["dimensions"] else slice(None)
                       for i in range(x.ndim))]
    return draw, reference


@row("iota")
def _():
    def draw(d):
        shape = d(hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=4))
        return [], {"dtype": d(st.sampled_from(NUMBERS)), "shape": tuple(shape),
                    "dimension": d(st.integers(0, len(shape) - 1))}

    def reference(args, params):
        return np.indices(params["shape"])[params["dimension"]].astype(params["dtype"])
    return draw, reference


# -------------------- reductions --------------------

def _empty_aware(np_reduce, identity):
    def reference(args, params):
        x, = args
        axes = params["axes"]
        out_shape = [n for i, n in enumerate(x.shape) if i not in axes]
        if any(x.shape[a] == 0 for a in axes):
            return np.full(out_shape, identity(x.dtype), dtype=x.dtype)
        return np.asarray(np_reduce(x, axis=axes)).astype(x.dtype)
    return reference


def _lowest(dtype):
    return -np.inf if dtype.kind == "f" else False if dtype.kind == "b" else np.iinfo(dtype).min


def _highest(dtype):
    return np.inf if dtype.kind == "f" else True if dtype.kind == "b" else np.iinfo(dtype).max


def _reduction_row(dtypes, reference, domain):
    def draw(d):
        x_shape = d(SHAPES_WITH_EMPTY)
        x = array(d, d(st.sampled_from(dtypes)), x_shape, **domain)
        return [x], {"axes": subset(d, len(x_shape))}
    return draw, reference


# sums keep the operand's dtype (integers wrap, as NumPy's with dtype=)
row("reduce_sum")(_reduction_row(NUMBERS, _empty_aware(
    lambda x, axis: np.sum(x, axis=axis, dtype=x.dtype), lambda dt: 0), {"grid": 4}))
# products of powers of two are exact in any order
row("reduce_prod")(_reduction_row(NUMBERS, _empty_aware(
    lambda x, axis: np.prod(x, axis=axis, dtype=x.dtype), lambda dt: 1), {"lo": -2, "hi": 2, "grid": 1}))
row("reduce_max")(_reduction_row(ALL, _empty_aware(np.max, _lowest), {"grid": 4}))
row("reduce_min")(_reduction_row(ALL, _empty_aware(np.min, _highest), {"grid": 4}))


def _arg_row(np_arg):
    def draw(d):
        x_shape = d(NONSCALAR_SHAPES)
        x = array(d, d(st.sampled_from(ALL)), x_shape, lo=-3, hi=3, grid=2)  # ties are likely
        return [x], {"axes": (d(st.integers(0, len(x_shape) - 1)),),
                     "index_dtype": d(st.sampled_from(INTS))}

    def reference(args, params):
        x, = args
        return np_arg(x, axis=params["axes"][0]).astype(params["index_dtype"])
    return draw, reference


row("argmax")(_arg_row(np.argmax))
row("argmin")(_arg_row(np.argmin))


# -------------------- fft --------------------

@row("fft")
def _():
    def draw(d):
        fft_type = d(st.sampled_from(["FFT", "IFFT", "RFFT", "IRFFT"]))
        lengths = tuple(d(st.lists(st.integers(1, 5), min_size=1, max_size=3)))
        lead = tuple(d(st.lists(st.integers(1, 3), max_size=2)))
        real = d(st.sampled_from(FLOATS))
        if fft_type == "RFFT":
            x = array(d, real, lead + lengths, allow_nan=True)
        else:
            shape = lead + (lengths if fft_type != "IRFFT" else lengths[:-1] + (lengths[-1] // 2 + 1,))
            x = array(d, np.result_type(real, np.complex64), shape)
        return [x], {"fft_type": fft_type, "fft_lengths": lengths}

    def reference(args, params):
        (x,), k = args, len(params["fft_lengths"])
        axes = tuple(range(x.ndim - k, x.ndim))
        fun = {"FFT": np.fft.fftn, "IFFT": np.fft.ifftn, "RFFT": np.fft.rfftn}.get(params["fft_type"])
        out = fun(x, axes=axes) if fun else np.fft.irfftn(x, s=params["fft_lengths"], axes=axes)
        return out.astype(np.result_type(x.real.dtype, np.complex64) if params["fft_type"] != "IRFFT" else x.real.dtype)
    return draw, reference


# -------------------- sort and cumulative scans --------------------

def _sort_row():
    def draw(d):
        shape = d(NONSCALAR_SHAPES)
        count = d(st.integers(1, 3))
        xs = [array(d, d(st.sampled_from(ALL)), shape, lo=-3, hi=3, grid=2) for _ in range(count)]  # ties
        return xs, {"dimension": d(st.integers(0, len(shape) - 1)), "is_stable": d(st.booleans()),
                    "num_keys": d(st.integers(1, count))}

    def reference(args, params):
        dimension, keys = params["dimension"], args[:params["num_keys"]]
        permutation = np.lexsort(tuple(reversed(keys)), axis=dimension)
        return [np.take_along_axis(x, permutation, axis=dimension) for x in args]
    return draw, reference


row("sort")(_sort_row())


def _cumulative_row(dtypes, np_accumulate, domain):
    def draw(d):
        shape = d(NONSCALAR_SHAPES)
        x = array(d, d(st.sampled_from(dtypes)), shape, **domain)
        return [x], {"axis": d(st.integers(0, len(shape) - 1)), "reverse": d(st.booleans())}

    def reference(args, params):
        x, = args
        axis = params["axis"]
        flip = (lambda v: np.flip(v, axis)) if params["reverse"] else (lambda v: v)
        return flip(np_accumulate(flip(x), axis)).astype(x.dtype)
    return draw, reference


row("cumsum")(_cumulative_row(NUMBERS, lambda x, axis: np.cumsum(x, axis, dtype=x.dtype), {"grid": 4}))
# products of powers of two are exact in any order
row("cumprod")(_cumulative_row(NUMBERS, lambda x, axis: np.cumprod(x, axis, dtype=x.dtype),
                               {"lo": -2, "hi": 2, "grid": 1}))
row("cummax")(_cumulative_row(ALL, lambda x, axis: np.maximum.accumulate(x, axis), {"grid": 4}))
row("cummin")(_cumulative_row(ALL, lambda x, axis: np.minimum.accumulate(x, axis), {"grid": 4}))


# -------------------- dot_general --------------------

@row("dot_general")
def _():
    def draw(d):
        nb, nc = d(st.integers(0, 2)), d(st.integers(0, 2))
        nlf, nrf = d(st.integers(0, 2)), d(st.integers(0, 2))
        letters = {c: d(st.integers(1, 3)) for c in "ab"[:nb] + "cd"[:nc] + "ef"[:nlf] + "gh"[:nrf]}
        lhs_term = "".join(d(st.permutations("ab"[:nb] + "cd"[:nc] + "ef"[:nlf])))
        rhs_term = "".join(d(st.permutations("ab"[:nb] + "cd"[:nc] + "gh"[:nrf])))
        dtype = d(st.sampled_from(NUMBERS))
        lhs = array(d, dtype, tuple(letters[c] for c in lhs_term), lo=-4, hi=4, grid=4)
        rhs = array(d, dtype, tuple(letters[c] for c in rhs_term), lo=-4, hi=4, grid=4)
        contract, batch = "cd"[:nc], "ab"[:nb]
        dims = ((tuple(lhs_term.index(c) for c in contract), tuple(rhs_term.index(c) for c in contract)),
                (tuple(lhs_term.index(c) for c in batch), tuple(rhs_term.index(c) for c in batch)))
        return [lhs, rhs], {"dimension_numbers": dims}

    def reference(args, params):
        lhs, rhs = args
        (lc, rc), (lb, rb) = params["dimension_numbers"]
        names = iter("abcdefghijklmnop")
        lhs_term = [next(names) for _ in range(lhs.ndim)]
        rhs_term = [next(names) for _ in range(rhs.ndim)]
        for l, r in zip(lc + lb, rc + rb):
            rhs_term[r] = lhs_term[l]
        out = ([lhs_term[i] for i in lb] + [c for i, c in enumerate(lhs_term) if i not in lc + lb]
               + [c for i, c in enumerate(rhs_term) if i not in rc + rb])
        spec = f"{''.join(lhs_term)},{''.join(rhs_term)}->{''.join(out)}"
        return np.einsum(spec, lhs.astype(np.float64), rhs.astype(np.float64)).astype(lhs.dtype)
    return draw, reference


# -------------------- gather and scatter --------------------

def _indexed(d, operand_shapes=NONSCALAR_SHAPES, lo_pad=2, hi_pad=2):
    """(operand shape, k, batch shape, index array), indices possibly out of range."""
    shape = d(operand_shapes)
    k = d(st.integers(1, len(shape)))
    batch = d(hnp.array_shapes(min_dims=0, max_dims=2, min_side=0, max_side=3))
    cols = [d(hnp.arrays(np.int64, batch, elements=st.integers(-lo_pad, shape[j] - 1 + hi_pad)))
            for j in range(k)]
    indices = np.stack(cols, axis=-1).astype(d(st.sampled_from(INTS)))
    return shape, k, batch, indices


def _rows_of(indices):
    batch = indices.shape[:-1]
    return [(pos, tuple(int(v) for v in indices[pos])) for pos in np.ndindex(batch)]


def _in_range(row_, shape):
    return all(0 <= i < n for i, n in zip(row_, shape))


@row("gather")
def _():
    def draw(d):
        shape, k, batch, indices = _indexed(d)
        return ([array(d, d(st.sampled_from(ALL)), shape), indices],
                {"mode": d(st.sampled_from(["clip", "fill"])), "fill_value": None})

    def reference(args, params):
        operand, indices = args
        k = indices.shape[-1]
        out = np.empty(indices.shape[:-1] + operand.shape[k:], dtype=operand.dtype)
        for pos, idx in _rows_of(indices):
            if _in_range(idx, operand.shape):
                out[pos] = operand[idx]
            elif params["mode"] == "clip":
                out[pos] = operand[tuple(min(max(i, 0), n - 1) for i, n in zip(idx, operand.shape))]
            else:
                kind = operand.dtype.kind
                out[pos] = np.nan if kind == "f" else False if kind == "b" else np.iinfo(operand.dtype).min
        return out
    return draw, reference


@row("scatter_add")
def _():
    def draw(d):
        # a narrow index range: duplicate rows (which add up) and out-of-range ones (dropped)
        shape, k, batch, indices = _indexed(d, lo_pad=1, hi_pad=1)
        dtype = d(st.sampled_from(ALL))
        operand = array(d, dtype, shape, grid=4)
        updates = array(d, dtype, batch + shape[k:], grid=4)
        return [operand, indices, updates], {}

    def reference(args, params):
        operand, indices, updates = args
        out = operand.copy()
        for pos, idx in _rows_of(indices):
            if _in_range(idx, operand.shape):
                out[idx] = out[idx] + updates[pos]
        return out
    return draw, reference


@row("scatter")
def _():
    def draw(d):
        shape, k, batch, indices = _indexed(d, lo_pad=1, hi_pad=1)
        # which of several updates to one element wins is unspecified: in-range rows are unique
        seen, flat = set(), indices.reshape(-1, k)
        for r in range(flat.shape[0]):
            idx = tuple(int(v) for v in flat[r])
            if _in_range(idx, shape) and idx in seen:
                flat[r, 0] = shape[0]  # now out of range: dropped
            seen.add(idx)
        dtype = d(st.sampled_from(ALL))
        return [array(d, dtype, shape), indices, array(d, dtype, batch + shape[k:])], {}

    def reference(args, params):
        operand, indices, updates = args
        out = operand.copy()
        for pos, idx in _rows_of(indices):
            if _in_range(idx, operand.shape):
                out[idx] = updates[pos]
        return out
    return draw, reference


def _combining_scatter_row(combine, dtypes):
    """Repeated rows combine in turn (the order of a product's factors does not matter:
    values on a 1/4 grid, few of them, multiply exactly), out-of-range rows are dropped."""
    def draw(d):
        shape, k, batch, indices = _indexed(d, lo_pad=1, hi_pad=1)
        dtype = d(st.sampled_from(dtypes))
        return [array(d, dtype, shape, lo=-3, hi=3, grid=4), indices,
                array(d, dtype, batch + shape[k:], lo=-3, hi=3, grid=4, allow_nan=combine is not np.multiply)], {}

    def reference(args, params):
        operand, indices, updates = args
        out = operand.copy()
        for pos, idx in _rows_of(indices):
            if _in_range(idx, operand.shape):
                out[idx] = combine(out[idx], updates[pos])
        return out
    return draw, reference


row("scatter_mul")(_combining_scatter_row(np.multiply, NUMBERS))
row("scatter_min")(_combining_scatter_row(np.minimum, ALL))
row("scatter_max")(_combining_scatter_row(np.maximum, ALL))


# -------------------- the properties --------------------

def assert_matches(got, want, what):
    """`got` is a numpy.ndarray equal to `want` (exact, or to rtol for floats) in shape and dtype."""
    want = np.asarray(want)
    assert type(got) is Array, f"{what}: got a {type(got).__name__}, not an Array (the numpy.ndarray ftrans returns)"
    assert got.shape == want.shape, f"{what}: shape {got.shape}, expected {want.shape}"
    assert got.dtype == want.dtype, f"{what}: dtype {got.dtype}, expected {want.dtype}"
    if want.dtype.kind in "fc":
        np.testing.assert_allclose(got, want, rtol=RTOL[want.dtype], atol=0, equal_nan=True, err_msg=what)
    else:
        np.testing.assert_array_equal(got, want, err_msg=what)


def _stage_one(prim, avals, params):
    def fun(*xs):
        out = ir.bind(prim, *xs, **params)
        return list(out) if prim.multiple_results else [out]
    return ir.stage(fun, avals)


# primitives that cannot be evaluated on their own, and where their tests are
NO_EVALUATION = {
    "custom_lin": "a custom_vjp function's linear map: only its transpose (bwd) exists; tests/test_custom.py",
}


def test_every_primitive_has_a_row():
    missing = sorted(set(ir.PRIMITIVES) - set(ROWS) - COLLECTIVES - set(NO_EVALUATION))
    assert not missing, f"primitives without a row in tests/test_primitives.py: {missing}"
    unknown = sorted(set(ROWS) - set(ir.PRIMITIVES))
    assert not unknown, f"rows for primitives that are not registered: {unknown}"


def _draw_row(name, data):
    """(primitive, drawn args, params, NumPy's results as a list, eager bind's results as a list)."""
    prim, entry = ir.PRIMITIVES[name], ROWS[name]
    args, params = data.draw(entry.strategy, label="args, params")
    want, out = entry.reference(args, params), ir.bind(prim, *args, **params)
    as_list = list if prim.multiple_results else (lambda x: [x])
    return prim, args, params, as_list(want), as_list(out)


@pytest.mark.parametrize("name", sorted(ROWS))
@given(data=st.data())
def test_primitive_matches_numpy(name, data):
    prim, args, params, wants, outs = _draw_row(name, data)

    # (a) eager bind == NumPy
    assert len(outs) == len(wants)
    for i, (got, w) in enumerate(zip(outs, wants)):
        assert_matches(got, w, f"{name}: bind result {i} vs NumPy")

    # (b) abstract evaluation predicts the real output
    avals = [ShapedArray(np.shape(a), np.asarray(a).dtype) for a in args]
    out_avals = prim.abstract_eval(avals, params)
    assert len(out_avals) == len(outs)
    for aval, got in zip(out_avals, outs):
        assert (aval.shape, aval.dtype) == (got.shape, got.dtype), f"{name}: abstract_eval says {aval}"
        assert aval.weak_type == bool(params.get("weak_type", False))

    # (c) staged, then evaluated: the same arrays
    closed = _stage_one(prim, avals, params)
    assert [e.primitive for e in closed.eqns] == [prim]
    assert closed.out_avals == out_avals
    staged = eval_closed_jaxpr(closed, *args)
    for i, (got, direct) in enumerate(zip(staged, outs)):
        assert_matches(got, direct, f"{name}: staged-then-evaluated result {i} vs direct bind")
        if direct.dtype.kind in "fc":
            np.testing.assert_array_equal(got, direct)


# -------------------- (e) jit of each primitive --------------------

# jit against eager: jit lowers integer powers to multiplications (not bit-exact to
# numpy.power), so floats agree to a few ulps; the rest exactly
JIT_RTOL = {np.dtype(np.float16): 1e-3, F32: 1e-5, F64: 1e-12, C64: 1e-5, C128: 1e-12}

def assert_jit_matches_eager(got, eager, what):
    """`got` is a numpy.ndarray of `eager`'s shape and dtype, equal to it (floats to JIT_RTOL)."""
    assert type(got) is Array, f"{what}: got a {type(got).__name__}, not an Array (the numpy.ndarray ftrans returns)"
    assert (got.shape, got.dtype) == (eager.shape, eager.dtype), \
        f"{what}: {got.dtype}{list(got.shape)}, eager {eager.dtype}{list(eager.shape)}"
    if eager.dtype.kind in "fc":
        np.testing.assert_allclose(got, eager, rtol=JIT_RTOL[eager.dtype], atol=0, equal_nan=True, err_msg=what)
    else:
        np.testing.assert_array_equal(got, eager, err_msg=what)


@pytest.mark.parametrize("name", sorted(ROWS))
@share_of_profile(1 / 2)
@given(data=st.data())
def test_jit_of_each_primitive_matches_eager(name, data, jit_backend):
    """Every row jitted, all of its operands traced."""
    prim, args, params, wants, eagers = _draw_row(name, data)

    def fun(*operands):
        out = ir.bind(prim, *operands, **params)
        return list(out) if prim.multiple_results else out
    out = jit_for(fun, jit_backend)(*args)
    outs = list(out) if prim.multiple_results else [out]
    assert len(outs) == len(wants)
    for i, (got, w, e) in enumerate(zip(outs, wants, eagers)):
        assert_matches(got, w, f"{name}: jit ({jit_backend}) result {i} vs NumPy")
        assert_jit_matches_eager(got, e, f"{name}: jit ({jit_backend}) result {i} vs eager bind")


# -------------------- targeted cases the drawn rows could miss --------------------

def test_scatter_add_duplicates_add_up_and_out_of_range_is_dropped():
    operand = np.zeros(4)
    indices = np.array([[1], [1], [3], [1], [4], [-1]])
    updates = np.array([1.0, 2.0, 5.0, 4.0, 100.0, 1000.0])
    want = np.zeros(4)
    np.add.at(want, [1, 1, 3, 1], [1.0, 2.0, 5.0, 4.0])
    assert_matches(ir.bind(ir.PRIMITIVES["scatter_add"], operand, indices, updates), want, "scatter_add")


def test_gather_modes_on_out_of_range_rows():
    operand = np.arange(12.0).reshape(3, 4)
    indices = np.array([[0, 1], [2, 3], [3, 0], [-1, 2], [1, 9]])
    clip = ir.bind(ir.PRIMITIVES["gather"], operand, indices, mode="clip", fill_value=None)
    assert_matches(clip, operand[[0, 2, 2, 0, 1], [1, 3, 0, 2, 3]], "gather clip")
    fill = ir.bind(ir.PRIMITIVES["gather"], operand, indices, mode="fill", fill_value=None)
    assert_matches(fill, np.array([operand[0, 1], operand[2, 3], np.nan, np.nan, np.nan]), "gather fill")


@pytest.mark.parametrize("index_dtype", INTS)
def test_gather_fill_of_integers_and_bools(index_dtype):
    indices = np.array([[0], [5], [-3]], dtype=index_dtype)
    ints = ir.bind(ir.PRIMITIVES["gather"], np.array([7, 8], np.int32), indices, mode="fill", fill_value=None)
    assert_matches(ints, np.array([7, np.iinfo(np.int32).min, np.iinfo(np.int32).min], np.int32), "int fill")
    bools = ir.bind(ir.PRIMITIVES["gather"], np.array([True, True]), indices, mode="fill", fill_value=None)
    assert_matches(bools, np.array([True, False, False]), "bool fill")


def test_gather_fill_from_an_empty_axis():
    out = ir.bind(ir.PRIMITIVES["gather"], np.zeros((0,)), np.array([[0], [2]]), mode="fill", fill_value=None)
    assert_matches(out, np.array([np.nan, np.nan]), "gather fill from an empty axis")


def test_iota_of_bool_is_rejected_by_abstract_eval_or_computed():
    prim, params = ir.PRIMITIVES["iota"], {"dtype": BOOL, "shape": (4,), "dimension": 0}
    try:
        prim.abstract_eval([], params)
    except TypeError as error:  # rejecting it up front, naming iota, is fine too
        assert "iota" in str(error)
        return
    assert_matches(ir.bind(prim, **params), np.arange(4) != 0, "iota of bool")


def test_staged_rank0_literal_beside_an_array():
    # a NumPy scalar closed over by a staged function becomes a literal of its dtype
    x = np.array([1.0, 2.0, 3.0], np.float32)
    closed = ir.stage(lambda a: [ir.bind(ir.PRIMITIVES["mul"], a, np.float32(2.5))], [ShapedArray((3,), F32)])
    literal = closed.eqns[0].invars[1]
    assert isinstance(literal, ir.Literal) and literal.aval.dtype == F32
    assert_matches(eval_closed_jaxpr(closed, x)[0], x * np.float32(2.5), "mul by a literal")


# -------------------- (d) bad input: TypeError naming the primitive --------------------

def A(shape, dtype=F64):
    return ShapedArray(shape, dtype)


# the bodies of the control-flow rows, (d)'s cases and the scalar cases
def _cond_branches(aval):
    """Three branches of two operands and two outputs each."""
    E = ir.primitives.elementwise
    two = aval.dtype.type(2)
    bodies = [lambda x, y: [E.mul(E.sin(x), y), x],
              lambda x, y: [E.sub(x, y), E.mul(y, two)],
              lambda x, y: [E.add(E.mul(x, y), x), E.neg(x)]]
    return tuple(ir.stage(body, [aval, aval]) for body in bodies)


def _scan_body(aval):
    """(w, carry, x) -> (carry * w + sin(x), carry * x)."""
    E = ir.primitives.elementwise
    return ir.stage(lambda w, c, x: [E.add(E.mul(c, w), E.sin(x)), E.mul(c, x)], [aval] * 3)


def _while_params(aval):
    """cond (n, i, x) -> i < min(n, 4) (bounded: a drawn n never runs long);
    body (w, i, x) -> (i + 1, x * w + sin x)."""
    E = ir.primitives.elementwise
    i32 = ShapedArray((), I32)
    cond = ir.stage(lambda n, i, x: [E.lt(i, E.min(n, np.int32(4)))], [i32, i32, aval])
    body = ir.stage(lambda w, i, x: [E.add(i, np.int32(1)), E.add(E.mul(x, w), E.sin(x))], [aval, i32, aval])
    return {"cond_jaxpr": cond, "body_jaxpr": body, "cond_nconsts": 1, "body_nconsts": 1, "checkpoints": None}


def _while_reference(n, w, i, x):
    while i < min(n, 4):
        i, x = i + 1, x * w + np.sin(x)
    return [np.int32(i), x]


def _while_reverse_params(aval):
    """The loop of _while_params run forwards, then ct -> ct * (w + cos x_i) for each of its carries
    x_i, last first (the transpose of its tangent map in x)."""
    E = ir.primitives.elementwise
    i32 = ShapedArray((), I32)
    bwd = ir.stage(lambda w, i, x, g: [E.mul(g, E.add(w, E.cos(x)))], [aval, i32, aval, aval])
    loop = _while_params(aval)
    return {"cond_jaxpr": loop["cond_jaxpr"], "body_jaxpr": loop["body_jaxpr"], "bwd_jaxpr": bwd,
            "cond_nconsts": 1, "body_nconsts": 1, "bwd_nconsts": 1, "checkpoints": None, "transforms": ()}


def _while_reverse_reference(n, w, w2, i, x, g):
    xs = []
    while i < min(n, 4):
        xs.append(x)
        i, x = i + 1, x * w + np.sin(x)
    for x in reversed(xs):
        g = g * (w2 + np.cos(x))
    return [g]


BAD_INPUTS = [
    ("fft", [A((4,), F64)], {"fft_type": "FFT", "fft_lengths": (4,)}),
    ("fft", [A((4,), C128)], {"fft_type": "FFT", "fft_lengths": (5,)}),
    ("fft", [A((4,), C128)], {"fft_type": "RFFT", "fft_lengths": (4,)}),
    ("fft", [A((2, 4), C64)], {"fft_type": "IRFFT", "fft_lengths": (2, 4)}),
    ("fft", [A((4,), C64)], {"fft_type": "DCT", "fft_lengths": (4,)}),
    ("fft", [A((4,), C64)], {"fft_type": "FFT", "fft_lengths": ()}),
    ("add", [A((3,)), A((4,))], {}),
    ("add", [A((2, 3)), A((3,))], {}),
    ("mul", [A((3,), F32), A((3,), F64)], {}),
    ("add", [A((3,), BOOL), A((3,), BOOL)], {}),
    ("sin", [A((3,), I32)], {}),
    ("log", [A((), BOOL)], {}),
    ("neg", [A((2,), BOOL)], {}),
    ("div", [A((2,), I64), A((2,), I64)], {}),
    ("and", [A((2,)), A((2,))], {}),
    ("not", [A((2,), F32)], {}),
    ("lt", [A((2,), I32), A((2,), I64)], {}),
    ("integer_pow", [A((2,), I32)], {"y": -1}),
    ("integer_pow", [A((7, 5))], {"y": 2.0}),  # a shape no row draws: see test_aval_cache_tells_2_from_2_0
    ("integer_pow", [A((2,), BOOL)], {"y": 2}),
    ("cholesky", [A((2, 3))], {}),
    ("cholesky", [A((3,))], {}),
    ("cholesky", [A((3, 3), I32)], {}),
    ("eigh", [A((2, 3))], {}),
    ("eig", [A((2, 3))], {"compute_left_eigenvectors": False, "compute_right_eigenvectors": True}),
    ("eig", [A((3, 3), I32)], {"compute_left_eigenvectors": False, "compute_right_eigenvectors": True}),
    ("eig", [A((3, 3))], {"compute_left_eigenvectors": 0, "compute_right_eigenvectors": True}),
    ("lu", [A((3,))], {}),
    ("svd", [A((3,))], {"full_matrices": False}),
    ("svd", [A((3, 2), I64)], {"full_matrices": False}),
    ("qr", [A((3,))], {"full_matrices": 1}),
    ("triangular_solve", [A((3, 3)), A((2, 2))], {"left_side": True, "lower": True, "transpose_a": False,
                                                  "unit_diagonal": False}),
    ("triangular_solve", [A((3, 3)), A((3, 2), F32)], {"left_side": True, "lower": True, "transpose_a": False,
                                                       "unit_diagonal": False}),
    ("triangular_solve", [A((3, 3)), A((3, 2))], {"left_side": True, "lower": True, "transpose_a": False}),
    ("erf", [A((2,), I32)], {}),
    ("erf_inv", [A((2,), BOOL)], {}),
    ("lgamma", [A((2,), I64)], {}),
    ("digamma", [A((2,), I32)], {}),
    ("erfc", [A((2,), I32)], {}),
    ("polygamma", [A((2,))], {"m": 0}),
    ("polygamma", [A((2,), I32)], {"m": 1}),
    ("polygamma", [A((2,))], {"m": 1.0}),
    ("igamma", [A((2,), I32), A((2,), I32)], {}),
    ("igammac", [A((2,)), A((2,), F32)], {}),
    ("igamma_grad_a", [A((2,)), A((3,))], {}),
    ("random_gamma_grad", [A((2,), BOOL), A((2,), BOOL)], {}),
    ("regularized_incomplete_beta", [A((2,)), A((2,))], {}),
    ("regularized_incomplete_beta", [A((2,)), A((2,)), A((2,), I64)], {}),
    ("select_n", [A((2,), I32), A((2,)), A((2,))], {}),
    ("select_n", [A((2,), BOOL), A((2,), F32), A((2,))], {}),
    ("select_n", [A((2,), BOOL), A((3,)), A((3,))], {}),
    ("select_n", [A((2,), BOOL), A((2,))], {}),
    ("broadcast_in_dim", [A((3,))], {"shape": (4,), "broadcast_dimensions": (0,)}),
    ("broadcast_in_dim", [A((3,))], {"shape": (3, 2), "broadcast_dimensions": (1,)}),
    ("broadcast_in_dim", [A((3, 1))], {"shape": (3, 2), "broadcast_dimensions": (1, 0)}),
    ("broadcast_in_dim", [A((3,))], {"shape": (3,), "broadcast_dimensions": ()}),
    ("reshape", [A((2, 3))], {"new_sizes": (4,)}),
    ("reshape", [A((2, 3))], {"new_sizes": (-2, -3)}),
    ("transpose", [A((2, 3))], {"permutation": (0, 0)}),
    ("transpose", [A((2, 3))], {"permutation": (0,)}),
    ("squeeze", [A((2, 1))], {"dimensions": (0,)}),
    ("squeeze", [A((2, 1))], {"dimensions": (2,)}),
    ("squeeze", [A((1, 1))], {"dimensions": (1, 1)}),
    ("concatenate", [A((2, 3)), A((2, 4))], {"dimension": 0}),
    ("concatenate", [A((2, 3)), A((2, 3), F32)], {"dimension": 0}),
    ("concatenate", [A((2, 3)), A((2, 3))], {"dimension": 2}),
    ("concatenate", [A((2, 3)), A((2, 3, 1))], {"dimension": 0}),
    ("slice", [A((4,))], {"start_indices": (0,), "limit_indices": (5,), "strides": None}),
    ("slice", [A((4,))], {"start_indices": (3,), "limit_indices": (2,), "strides": None}),
    ("slice", [A((4,))], {"start_indices": (0,), "limit_indices": (4,), "strides": (0,)}),
    ("slice", [A((4, 2))], {"start_indices": (0,), "limit_indices": (4,), "strides": None}),
    ("pad", [A((4,)), A((1,))], {"padding_config": ((1, 1, 0),)}),
    ("pad", [A((4,)), A((), F32)], {"padding_config": ((1, 1, 0),)}),
    ("pad", [A((4,)), A(())], {"padding_config": ((1, 1, 0), (0, 0, 0))}),
    ("pad", [A((4,)), A(())], {"padding_config": ((-1, 1, 0),)}),
    ("rev", [A((4,))], {"dimensions": (1,)}),
    ("rev", [A((4, 3))], {"dimensions": (0, 0)}),
    ("iota", [], {"dtype": I64, "shape": (3,), "dimension": 1}),
    ("shift_left", [A((2,), F64), A((2,), F64)], {}),
    ("shift_right_logical", [A((2,), I64), A((2,), I32)], {}),
    ("threefry2x32", [A((2,), I64)] * 4, {}),
    ("threefry2x32", [A((2,), np.dtype(np.uint32)), A((3,), np.dtype(np.uint32))] * 2, {}),
    ("reduce_sum", [A((2, 3))], {"axes": (2,)}),
    ("reduce_sum", [A((2, 3))], {"axes": (0, 0)}),
    ("reduce_sum", [A((2, 3), BOOL)], {"axes": (0,)}),
    ("reduce_prod", [A((2, 3))], {"axes": (-1,)}),
    ("reduce_max", [A((2,))], {"axes": (1,)}),
    ("reduce_min", [A((2,))], {"axes": (0, 0)}),
    ("argmax", [A((2, 3))], {"axes": (0, 1), "index_dtype": I64}),
    ("argmin", [A((0, 3))], {"axes": (0,), "index_dtype": I64}),
    ("dot_general", [A((2, 3)), A((4, 5))], {"dimension_numbers": (((1,), (0,)), ((), ()))}),
    ("dot_general", [A((2, 3)), A((3, 5), F32)], {"dimension_numbers": (((1,), (0,)), ((), ()))}),
    ("dot_general", [A((2, 3), BOOL), A((3, 5), BOOL)], {"dimension_numbers": (((1,), (0,)), ((), ()))}),
    ("dot_general", [A((2, 3)), A((3, 5))], {"dimension_numbers": (((1,), ()), ((), ()))}),
    ("dot_general", [A((2, 3)), A((3, 5))], {"dimension_numbers": (((2,), (0,)), ((), ()))}),
    ("dot_general", [A((2, 3)), A((2, 3))], {"dimension_numbers": (((1,), (1,)), ((1,), (1,)))}),
    ("gather", [A((3, 4)), A((2, 1), F64)], {"mode": "clip", "fill_value": None}),
    ("gather", [A((3, 4)), A((2, 3), I64)], {"mode": "clip", "fill_value": None}),
    ("gather", [A((3, 4)), A((), I64)], {"mode": "clip", "fill_value": None}),
    ("gather", [A((3, 4)), A((2, 1), I64)], {"mode": "wrap", "fill_value": None}),
    ("scatter_add", [A((3, 4)), A((2, 1), I64), A((2, 3))], {}),
    ("scatter_add", [A((3, 4)), A((2, 1), I64), A((2, 4), F32)], {}),
    ("scatter", [A((3,)), A((2, 1), F32), A((2,))], {}),
    ("scatter", [A((3,)), A((2, 2), I64), A((2,))], {}),
    ("scatter_mul", [A((3,), BOOL), A((2, 1), I64), A((2,), BOOL)], {}),
    ("scatter_mul", [A((3,)), A((2, 1), I64), A((2,), F32)], {}),
    ("scatter_min", [A((3,)), A((2, 1), I64), A((3,))], {}),
    ("scatter_max", [A((3, 4)), A((2, 1), F32), A((2, 4))], {}),
    ("cond", [A((), I64), A((3,)), A((3,))], {"branches": _cond_branches(A((3,)))}),  # the index is i32
    ("cond", [A((2,), I32), A((3,)), A((3,))], {"branches": _cond_branches(A((3,)))}),
    ("cond", [A((), I32), A((3,)), A((3,), F32)], {"branches": _cond_branches(A((3,)))}),
    ("cond", [A((), I32), A((3,)), A((3,))], {"branches": ()}),
    ("cond", [A((), I32), A((3,)), A((3,))], {"branches": _cond_branches(A((3,)))[:1] + _cond_branches(A((2,)))[1:]}),
    ("scan", [A((3,)), A((3,)), A((4, 3))], {"jaxpr": _scan_body(A((3,))), "num_consts": 1, "num_carry": 1,
                                              "length": 5, "reverse": False, "unroll": 1}),  # xs of length 4
    ("scan", [A((3,)), A((3,)), A((4, 3))], {"jaxpr": _scan_body(A((3,))), "num_consts": 0, "num_carry": 1,
                                              "length": 4, "reverse": False, "unroll": 1}),  # a carry taken as xs
    ("scan", [A((3,)), A((3,)), A((4, 3))], {"jaxpr": _scan_body(A((3,))), "num_consts": 2, "num_carry": 2,
                                              "length": 4, "reverse": False, "unroll": 1}),  # more than the operands
    ("scan", [A((3,)), A((3,), F32), A((4, 3))], {"jaxpr": _scan_body(A((3,))), "num_consts": 1, "num_carry": 1,
                                                   "length": 4, "reverse": False, "unroll": 1}),
    ("while", [A((), I32), A((3,)), A((), I32), A((3,), F32)], _while_params(A((3,)))),
    ("while", [A((), I32), A((3,)), A((), I32)], _while_params(A((3,)))),
    ("while_reverse", [A((), I32), A((3,)), A((3,)), A((), I32), A((3,)), A((3,), F32)],
     _while_reverse_params(A((3,)))),
    ("while", [A((), I32), A((3,)), A((), I32), A((3,))],  # a cond that returns an i32
     {**_while_params(A((3,))), "cond_jaxpr": ir.stage(lambda n, i, x: [i], [A((), I32), A((), I32), A((3,))])}),
    ("scan", [A((3,)), A((3,)), A((4, 3))],  # a body whose carry output is not its carry input's type
     {"jaxpr": ir.stage(lambda w, c, x: [ir.primitives.reductions.reduce_sum(c, (0,)), x], [A((3,))] * 3),
      "num_consts": 1, "num_carry": 1, "length": 4, "reverse": False, "unroll": 1}),
]


@pytest.mark.parametrize("name, avals, params", BAD_INPUTS,
                         ids=[f"{n}-{i}" for i, (n, _, _) in enumerate(BAD_INPUTS)])
def test_abstract_eval_rejects_bad_input(name, avals, params):
    with pytest.raises(TypeError, match=re.escape(name)):
        ir.PRIMITIVES[name].abstract_eval(avals, params)


def test_aval_cache_tells_2_from_2_0():
    prim, x = ir.PRIMITIVES["integer_pow"], A((6, 7))
    prim.abstract_eval([x], {"y": 2})
    with pytest.raises(TypeError, match="integer_pow"):
        prim.abstract_eval([x], {"y": 2.0})


@pytest.mark.parametrize("x", [3, 1.5])
def test_bind_on_a_python_scalar_returns_an_ndarray(x):
    assert_matches(ir.bind(ir.PRIMITIVES["integer_pow"], x, y=2), np.asarray(x) ** 2, "integer_pow of a Python scalar")


@pytest.mark.parametrize("x", [3, 1.5, True])
def test_eager_stop_gradient_of_a_python_scalar_is_an_ndarray_as_under_jit(x):
    eager = ir.bind(ir.PRIMITIVES["stop_gradient"], x)
    assert_jit_matches_eager(ft.jit(ft.lax.stop_gradient)(x), np.asarray(eager), "jit of stop_gradient")
    assert_matches(eager, np.asarray(x), "eager stop_gradient of a Python scalar")


@pytest.mark.parametrize("name", ["argmax", "argmin"])
def test_arg_reduction_rejects_an_out_of_range_axis(name):
    with pytest.raises(TypeError, match=name):
        ir.PRIMITIVES[name].abstract_eval([A((2, 3))], {"axes": (2,), "index_dtype": I64})


@pytest.mark.parametrize("name, avals, params", [
    ("convert_element_type", [A((2,))], {"new_dtype": np.dtype(np.clongdouble), "weak_type": False}),
    ("stop_gradient", [A((2,), np.dtype(np.clongdouble))], {}),
    ("sin", [A((2,), np.dtype(np.clongdouble))], {}),
    ("floor", [A((2,), C128)], {}),
    ("real", [A((2,), F64)], {}),
    ("complex", [A((2,), C64), A((2,), C64)], {}),
    ("iota", [], {"dtype": np.dtype(np.complex128), "shape": (3,), "dimension": 0}),
])
def test_unsupported_dtype_error_names_the_primitive(name, avals, params):
    with pytest.raises(TypeError, match=re.escape(name)):
        ir.PRIMITIVES[name].abstract_eval(avals, params)


# -------------------- reduce_precision --------------------

def reduce_precision_reference(x, exponent_bits, mantissa_bits):
    """Rounding by frexp/rint/ldexp (not by bits): the mantissa to `mantissa_bits` (ties to even),
    then infinity past the format's range and a signed zero below its smallest normal."""
    with np.errstate(all="ignore"):
        mantissa, exponent = np.frexp(x)
        r = np.ldexp(np.rint(np.ldexp(mantissa, mantissa_bits + 1)), exponent - mantissa_bits - 1).astype(x.dtype)
        emax = 2 ** (exponent_bits - 1) - 1
        r = np.where(np.abs(r) >= np.ldexp(x.dtype.type(1), emax + 1), np.copysign(x.dtype.type(np.inf), x), r)
        r = np.where(np.abs(r) < np.ldexp(x.dtype.type(1), 1 - emax), np.copysign(x.dtype.type(0), x), r)
        r = np.where(np.isinf(x), x, r)
        return np.where(np.isnan(x), x if mantissa_bits else x.dtype.type(np.inf), r).astype(x.dtype)


@row("reduce_precision")
def _():
    def draw(d):
        dtype = d(st.sampled_from(FLOATS))
        src_exponent, src_mantissa = (8, 23) if dtype == F32 else (11, 52)
        x = d(hnp.arrays(dtype, d(SHAPES), elements=st.floats(width=8 * dtype.itemsize, allow_subnormal=True)))
        params = {"exponent_bits": d(st.integers(2, src_exponent - 1)),
                  "mantissa_bits": d(st.integers(0, src_mantissa - 1))}
        return [x], params
    return draw, lambda args, params: reduce_precision_reference(args[0], **params)


# -------------------- host callbacks --------------------

_DOUBLE = HostCallback(lambda x: [x * x.dtype.type(2)], "double")
_SEEN = collections.deque(maxlen=8)  # what the debug_callback rows were called with, last first
_RECORD = HostCallback(lambda *xs: _SEEN.appendleft([np.array(x) for x in xs]), "record")


@row("pure_callback")
def _():
    def draw(d):
        dtype, shape = d(st.sampled_from(NUMBERS)), d(SHAPES)
        params = {"callback": _DOUBLE, "result_avals": ((shape, dtype),),
                  "vmap_method": d(st.sampled_from(VMAP_METHODS))}
        return [array(d, dtype, shape, lo=-4, hi=4)], params
    return draw, lambda args, params: [args[0] * args[0].dtype.type(2)]


@row("debug_callback")
def _():
    def draw(d):
        n = d(st.integers(0, 2))
        return [array(d, d(st.sampled_from(ALL)), d(SHAPES)) for _ in range(n)], {"callback": _RECORD}

    def reference(args, params):
        if args:  # the call just made (by bind, before this reference) saw the operands
            for seen, x in zip(_SEEN[0], args, strict=True):
                np.testing.assert_array_equal(seen, x)
        return []
    return draw, reference


@row("jit_call")
def _():
    """A call of a small sub-jaxpr, sin(x) * 2 + y, over drawn shapes and dtypes."""
    def draw(d):
        shape = d(hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=4))
        dtype = d(st.sampled_from([np.float64, np.float32]))
        elements = st.floats(-3, 3, width=8 * np.dtype(dtype).itemsize)
        x, y = (d(hnp.arrays(dtype, shape, elements=elements)) for _ in range(2))
        aval = ShapedArray(shape, dtype)
        E = ir.primitives.elementwise
        body = ir.stage(lambda a, b: [E.add(E.mul(E.sin(a), np.dtype(dtype).type(2)), b)], [aval, aval])
        return [x, y], {"jaxpr": body, "name": "f"}

    def reference(args, params):
        x, y = args
        return [np.sin(x) * x.dtype.type(2) + y]
    return draw, reference


def _cond_reference(index, x, y):
    two = x.dtype.type(2)
    return [[np.sin(x) * y, x], [x - y, y * two], [x * y + x, -x]][int(np.clip(index, 0, 2))]


@row("cond")
def _():
    """A cond of three branches over drawn shapes and dtypes; the index is drawn out of
    range too (it is clamped, as JAX's switch clamps)."""
    def draw(d):
        shape = d(hnp.array_shapes(min_dims=0, max_dims=2, min_side=1, max_side=3))
        dtype = d(st.sampled_from(FLOATS))
        x, y = (array(d, dtype, shape, lo=-3, hi=3) for _ in range(2))
        index = np.int32(d(st.integers(-2, 4)))
        return [index, x, y], {"branches": _cond_branches(ShapedArray(shape, dtype))}
    return draw, lambda args, params: _cond_reference(*args)


def _scan_reference(w, carry, xs, reverse):
    ys = [None] * len(xs)
    for i in (reversed(range(len(xs))) if reverse else range(len(xs))):
        ys[i], carry = carry * xs[i], carry * w + np.sin(xs[i])
    return [carry, np.stack(ys) if ys else np.zeros(xs.shape, xs.dtype)]


@row("scan")
def _():
    """A scan with a const, a carry and xs over drawn shapes, dtypes and lengths (0 too),
    forwards or in reverse."""
    def draw(d):
        shape = d(hnp.array_shapes(min_dims=0, max_dims=2, min_side=1, max_side=3))
        dtype, length = d(st.sampled_from(FLOATS)), d(st.integers(0, 4))
        w, carry = array(d, dtype, shape, lo=-1, hi=1), array(d, dtype, shape, lo=-2, hi=2)
        xs = array(d, dtype, (length, *shape), lo=-2, hi=2)
        params = {"jaxpr": _scan_body(ShapedArray(shape, dtype)), "num_consts": 1, "num_carry": 1,
                  "length": length, "reverse": d(st.booleans()), "unroll": d(st.integers(1, 2))}
        return [w, carry, xs], params
    return draw, lambda args, params: _scan_reference(*args, params["reverse"])


@row("while")
def _():
    """A while with a cond const (the bound), a body const and two carries (a counter and a
    value) over drawn shapes, dtypes and trip counts (0 too)."""
    def draw(d):
        shape = d(hnp.array_shapes(min_dims=0, max_dims=2, min_side=1, max_side=3))
        dtype = d(st.sampled_from(FLOATS))
        n, i = np.int32(d(st.integers(-1, 6))), np.int32(d(st.integers(0, 2)))
        w, x = array(d, dtype, shape, lo=-1, hi=1), array(d, dtype, shape, lo=-2, hi=2)
        return [n, w, i, x], _while_params(ShapedArray(shape, dtype))
    return draw, lambda args, params: _while_reference(*args)


@row("while_reverse")
def _():
    """A while_reverse over drawn shapes, dtypes, trip counts (0 too) and checkpoints (a tape, or 1 or 2 carries)."""
    def draw(d):
        shape = d(hnp.array_shapes(min_dims=0, max_dims=2, min_side=1, max_side=3))
        dtype = d(st.sampled_from(FLOATS))
        n, i = np.int32(d(st.integers(-1, 6))), np.int32(d(st.integers(0, 2)))
        w, x, g = (array(d, dtype, shape, lo=-1, hi=1) for _ in range(3))
        params = {**_while_reverse_params(ShapedArray(shape, dtype)), "checkpoints": d(st.sampled_from([None, 1, 2]))}
        return [n, w, w, i, x, g], params
    return draw, lambda args, params: _while_reverse_reference(*args)


def _custom_row(params_of):
    """A custom rule's equation on f(x, y) = sin(x) * y over drawn shapes and dtypes."""
    def draw(d):
        shape = d(hnp.array_shapes(min_dims=0, max_dims=2, min_side=1, max_side=3))
        dtype = d(st.sampled_from(FLOATS))
        x, y = (array(d, dtype, shape, lo=-3, hi=3) for _ in range(2))
        return [x, y], params_of(ShapedArray(shape, dtype))
    return draw, lambda args, params: [custom_rows.reference(*args)]


row("custom_jvp_call")(_custom_row(custom_rows.call_params))
row("custom_vjp_call")(_custom_row(custom_rows.vjp_params))
row("checkpoint")(_custom_row(custom_rows.checkpoint_params))


@row("name")
def _():
    """checkpoint_name's identity, over drawn shapes and dtypes."""
    def draw(d):
        shape = d(hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=3))
        dtype = d(st.sampled_from(NUMBERS))
        return [array(d, dtype, shape)], {"name": d(st.sampled_from(["a", "layer_1"]))}
    return draw, lambda args, params: [args[0]]


# -------------------- Python and NumPy scalars as operands --------------------

def S(value, dtype=F64):
    """A rank-0 operand: the tests below pass it as a Python scalar and as a NumPy scalar."""
    return np.array(value, dtype)


def _float_unary(value=0.7):
    return [([S(value)], {}), ([S(value, F32)], {})]


# primitive -> cases (operands, params) with rank-0 operands beside arrays or on their own
SCALAR_CASES = {name: _float_unary() for name in
                ("sin", "cos", "tan", "atan", "sinh", "cosh", "tanh", "exp", "log", "log1p", "expm1", "sqrt",
                 "logistic", "floor", "ceil", "erf", "erfc", "erf_inv", "lgamma", "digamma")}
SCALAR_CASES["polygamma"] = [([S(0.7)], {"m": 1}), ([S(0.7, F32)], {"m": 3})]
SCALAR_CASES.update({name: _float_unary(-0.7) + [([S(-3, I64)], {}), ([S(3, I32)], {})]
                     for name in ("neg", "sign", "abs")})
SCALAR_CASES["not"] = [([S(True, BOOL)], {}), ([S(5, I64)], {})]
SCALAR_CASES["stop_gradient"] = _float_unary() + [([S(3, I64)], {}), ([S(True, BOOL)], {})]
SCALAR_CASES["integer_pow"] = [([S(0.7)], {"y": 3}), ([S(0.7)], {"y": -2}), ([S(3, I64)], {"y": 2}),
                               ([S(0.7, F32)], {"y": 2})]


def _binary_cases(dtype, x, y):
    array_ = np.array([x, y, x], dtype)
    return [([S(x, dtype), S(y, dtype)], {}), ([S(x, dtype), array_], {}), ([array_, S(y, dtype)], {})]


for _name in ("add", "sub", "mul", "floor_divide", "mod", "pow", "max", "min", "eq", "ne", "lt", "le", "gt", "ge"):
    SCALAR_CASES[_name] = (_binary_cases(F64, 0.7, 1.3) + _binary_cases(I64, 3, 2)
                           + _binary_cases(F32, 0.7, 1.3)[:1])
SCALAR_CASES["div"] = _binary_cases(F64, 0.7, 1.3) + _binary_cases(F32, 0.7, 1.3)[:1]
SCALAR_CASES["atan2"] = _binary_cases(F64, 0.7, -1.3) + _binary_cases(F32, -0.7, 1.3)[:1]
for _name in ("igamma", "igammac", "igamma_grad_a", "random_gamma_grad"):
    SCALAR_CASES[_name] = _binary_cases(F64, 1.5, 2.5) + _binary_cases(F32, 2.5, 1.5)[:1]
SCALAR_CASES["regularized_incomplete_beta"] = [
    ([S(1.5), S(2.5), S(0.25)], {}), ([S(1.5), np.array([1.5, 2.5, 0.5]), S(0.75)], {}),
    ([np.array([0.5, 2.5, 3.0]), S(2.5), np.array([0.25, 0.5, 0.75])], {}), ([S(1.5, F32), S(2.5, F32), S(0.25, F32)], {})]
for _name in ("and", "or", "xor"):
    SCALAR_CASES[_name] = _binary_cases(BOOL, True, False) + _binary_cases(I64, 6, 3)
for _name in ("max", "min", "eq", "lt"):
    SCALAR_CASES[_name] += _binary_cases(BOOL, True, False)
for _name in ("shift_left", "shift_right_logical"):
    SCALAR_CASES[_name] = _binary_cases(I64, -6, 3) + _binary_cases(np.dtype(np.uint32), 6, 31)
SCALAR_CASES["threefry2x32"] = [([S(k, np.dtype(np.uint32)) for k in (1, 2, 3, 4)], {}),
                                ([S(1, np.dtype(np.uint32)), S(2, np.dtype(np.uint32)),
                                  np.arange(3, dtype=np.uint32), np.arange(3, 6, dtype=np.uint32)], {})]
for _name in ("real", "imag", "conj"):
    SCALAR_CASES[_name] = [([S(0.7 - 1.3j, C128)], {}), ([S(0.7 - 1.3j, C64)], {})]
SCALAR_CASES["complex"] = _binary_cases(F64, 0.7, -1.3) + _binary_cases(F32, 0.7, 1.3)[:1]
for _name in ("sin", "exp", "sqrt", "log", "neg", "abs"):
    SCALAR_CASES[_name] += [([S(0.7 - 1.3j, C128)], {}), ([S(0.7 - 1.3j, C64)], {})]
for _name in ("add", "sub", "mul", "div", "pow", "eq", "lt", "max"):
    SCALAR_CASES[_name] += _binary_cases(C128, 0.7 - 1.3j, 1.3 + 0.5j) + _binary_cases(C64, 0.7 - 1.3j, 2j)[:1]
SCALAR_CASES["select_n"] = [([S(True, BOOL), S(0.7), S(1.3)], {}),
                            ([S(False, BOOL), np.array([0.5, 1.5]), np.array([2.5, 3.5])], {}),
                            ([np.array([True, False]), S(0.7), S(1.3)], {}),
                            ([S(True, BOOL), S(0.7), np.array([2.5, 3.5])], {}),
                            ([S(False, BOOL), np.array([2.5, 3.5]), S(1.3)], {}),
                            ([S(True, BOOL), S(3, I64), S(4, I64)], {})]
SCALAR_CASES["convert_element_type"] = [([S(0.7)], {"new_dtype": I32, "weak_type": False}),
                                        ([S(3, I64)], {"new_dtype": F32, "weak_type": False}),
                                        ([S(True, BOOL)], {"new_dtype": F64, "weak_type": True}),
                                        ([S(0.7)], {"new_dtype": F32, "weak_type": False})]
SCALAR_CASES["broadcast_in_dim"] = [([S(0.7)], {"shape": (2, 3), "broadcast_dimensions": ()}),
                                    ([S(3, I64)], {"shape": (2,), "broadcast_dimensions": ()})]
SCALAR_CASES["reshape"] = [([S(0.7)], {"new_sizes": (1, 1)}), ([S(True, BOOL)], {"new_sizes": ()})]
SCALAR_CASES["transpose"] = [([S(0.7)], {"permutation": ()})]
SCALAR_CASES["squeeze"] = [([S(0.7)], {"dimensions": ()})]
SCALAR_CASES["rev"] = [([S(0.7)], {"dimensions": ()})]
SCALAR_CASES["slice"] = [([S(0.7)], {"start_indices": (), "limit_indices": (), "strides": None}),
                         ([S(3, I64)], {"start_indices": (), "limit_indices": (), "strides": None})]
SCALAR_CASES["pad"] = [([np.array([0.5, 1.5]), S(0.7)], {"padding_config": ((1, 2, 1),)}),
                       ([S(0.7), S(1.3)], {"padding_config": ()}),
                       ([np.array([1, 2]), S(3, I64)], {"padding_config": ((0, 1, 0),)})]
for _name in ("reduce_sum", "reduce_prod", "reduce_max", "reduce_min"):
    SCALAR_CASES[_name] = [([S(0.7)], {"axes": ()}), ([S(3, I64)], {"axes": ()}), ([S(0.7, F32)], {"axes": ()})]
SCALAR_CASES["reduce_max"] += [([S(True, BOOL)], {"axes": ()})]
SCALAR_CASES["dot_general"] = [([S(0.7), S(1.3)], {"dimension_numbers": (((), ()), ((), ()))}),
                               ([S(0.7), np.array([0.5, 1.5])], {"dimension_numbers": (((), ()), ((), ()))}),
                               ([np.array([[0.5, 1.5]]), S(3.0)], {"dimension_numbers": (((), ()), ((), ()))}),
                               ([S(3, I64), S(2, I64)], {"dimension_numbers": (((), ()), ((), ()))})]
# one index row into a vector: the update is rank-0
SCALAR_CASES["scatter_add"] = [([np.array([0.5, 1.5, 2.5]), np.array([1]), S(0.7)], {}),
                               ([np.array([1, 2, 3]), np.array([1]), S(4, I64)], {})]
SCALAR_CASES["scatter"] = [([np.array([0.5, 1.5, 2.5]), np.array([2]), S(0.7)], {}),
                           ([np.array([True, False]), np.array([1]), S(True, BOOL)], {})]
for _name in ("scatter_mul", "scatter_min", "scatter_max"):
    SCALAR_CASES[_name] = [([np.array([0.5, 1.5, 2.5]), np.array([1]), S(0.7)], {}),
                           ([np.array([1, 2, 3]), np.array([2]), S(4, I64)], {})]


def _scalar_body():
    E = ir.primitives.elementwise
    aval = ShapedArray((), F64)
    return ir.stage(lambda a, b: [E.add(E.mul(E.sin(a), np.float64(2)), b), E.mul(a, b)], [aval, aval])


SCALAR_CASES["jit_call"] = [([S(0.7), S(1.3)], {"jaxpr": _scalar_body(), "name": "f"})]
SCALAR_CASES["cond"] = [([S(k, np.int32), S(0.7), S(1.3)], {"branches": _cond_branches(ShapedArray((), F64))})
                        for k in (0, 2)]
SCALAR_CASES["scan"] = [([S(0.7), S(1.3), np.array([0.5, 1.5, -0.5])],
                         {"jaxpr": _scan_body(ShapedArray((), F64)), "num_consts": 1, "num_carry": 1, "length": 3,
                          "reverse": False, "unroll": 1})]
SCALAR_CASES["pure_callback"] = [([S(0.7)], {"callback": _DOUBLE, "result_avals": (((), F64),),
                                           "vmap_method": "sequential"}),
                                 ([S(3, I64)], {"callback": _DOUBLE, "result_avals": (((), I64),),
                                                "vmap_method": "broadcast_all"})]
SCALAR_CASES["reduce_precision"] = [([S(0.7)], {"exponent_bits": 8, "mantissa_bits": 7}),
                                    ([S(0.7, F32)], {"exponent_bits": 5, "mantissa_bits": 10})]
SCALAR_CASES["debug_callback"] = [([S(0.7), S(3, I64), np.array([1.0, 2.0])], {"callback": _RECORD})]
SCALAR_CASES["while"] = [([S(3, np.int32), S(0.7), S(0, np.int32), S(1.3)], _while_params(ShapedArray((), F64)))]
SCALAR_CASES["while_reverse"] = [([S(3, np.int32), S(0.7), S(0.7), S(0, np.int32), S(1.3), S(1.0)],
                                  _while_reverse_params(ShapedArray((), F64)))]
SCALAR_CASES["custom_jvp_call"] = [([S(0.7), S(1.3)], custom_rows.call_params(ShapedArray((), F64)))]
SCALAR_CASES["custom_vjp_call"] = [([S(0.7), S(1.3)], custom_rows.vjp_params(ShapedArray((), F64)))]
SCALAR_CASES["checkpoint"] = [([S(0.7), S(1.3)], custom_rows.checkpoint_params(ShapedArray((), F64)))]
SCALAR_CASES["name"] = [([S(0.7)], {"name": "a"}), ([S(3, I64)], {"name": "b"})]
# operands that are never rank-0
NO_RANK0_OPERANDS = {
    "custom_lin": "no evaluation of its own (NO_EVALUATION)",
    "iota": "no operands", "fft": "transforms trailing axes of its operand",
    "argmax": "reduces one axis of its operand", "argmin": "reduces one axis of its operand",
    "concatenate": "joins operands along an axis",
    "gather": "indexes the leading axes of its operand with index rows",
    **{name: "decomposes matrices" for name in ("cholesky", "triangular_solve", "lu", "eigh", "svd", "qr", "eig")},
    "sort": "sorts along an axis of its operands", "cumsum": "scans along an axis of its operand",
    "cumprod": "scans along an axis of its operand", "cummax": "scans along an axis of its operand",
    "cummin": "scans along an axis of its operand",
}


def test_every_primitive_has_scalar_operand_cases():
    missing = sorted(set(ir.PRIMITIVES) - set(SCALAR_CASES) - set(NO_RANK0_OPERANDS) - COLLECTIVES)
    assert not missing, f"primitives without rank-0 operand cases in SCALAR_CASES: {missing}"


_SCALAR_FORMS = {
    "python scalar": lambda x: x.item() if x.dtype in (F64, I64, BOOL) else None,  # float, int, bool
    "numpy scalar": lambda x: x[()],
}


def _formed(args, form):
    """`args` with each rank-0 operand in `form`, or None if Python has no scalar of its dtype."""
    out = [form(a) if a.ndim == 0 else a for a in args]
    return None if any(o is None for o in out) else out


def _outputs(prim, args, params):
    out = ir.bind(prim, *args, **params)
    return list(out) if prim.multiple_results else [out]


def _sum_of_float_outputs(prim, params, args, position):
    """A scalar function of operand `position`: the sum of every float output's elements."""
    R = ir.primitives.reductions

    def total(x):
        operands = list(args)
        operands[position] = x
        outs = [o for o in _outputs(prim, operands, params) if ir.core.is_float(ir.get_aval(o).dtype)]
        sums = [R.reduce_sum(o, tuple(range(ir.get_aval(o).ndim))) for o in outs]
        acc = sums[0]
        for s in sums[1:]:
            acc = ir.primitives.elementwise.add(acc, s)
        return acc
    return total


# operands whose derivative raises on purpose, as JAX's does (the error is tested in tests/test_scipy.py)
NOT_DIFFERENTIABLE_IN = {"igamma_grad_a": (0,), "random_gamma_grad": (0,), "regularized_incomplete_beta": (0, 1)}


def _differentiable_positions(prim, args, params):
    if prim.jvp is None or prim.name in ("stop_gradient", "pure_callback"):  # pure_callback: no derivative
        return []
    outs = _outputs(prim, args, params)
    if not any(o.dtype.kind == "f" for o in outs):
        return []
    positions = [i for i, a in enumerate(args) if a.ndim == 0 and a.dtype.kind == "f"
                 and i not in NOT_DIFFERENTIABLE_IN.get(prim.name, ())]
    return positions


def _check_vmap_beside_an_unbatched_scalar(prim, arrays, args, params, position, what):
    """vmap with the scalar at `position` unbatched (in_axes=None) and the other operands
    batched (two examples: the operand and the operand + 1, or its negation for bools), against a loop."""
    if len(arrays) == 1:
        return

    def example(a, k):
        return a if k == 0 else np.invert(a) if a.dtype.kind == "b" else a + a.dtype.type(1)
    batched = [None if i == position else np.stack([example(a, 0), example(a, 1)]) for i, a in enumerate(arrays)]
    in_axes = tuple(None if i == position else 0 for i in range(len(arrays)))
    operands = [args[position] if i == position else b for i, b in enumerate(batched)]
    outs = ft.vmap(lambda *xs: _outputs(prim, xs, params), in_axes=in_axes)(*operands)
    for k in range(2):
        one = [args[position] if i == position else batched[i][k] for i in range(len(arrays))]
        for i, (got, want) in enumerate(zip(outs, _outputs(prim, one, params), strict=True)):
            assert_matches(got[k, ...], want, f"{what}: vmap result {i}, example {k}")


_CASE_IDS = [(name, i) for name in sorted(SCALAR_CASES) for i in range(len(SCALAR_CASES[name]))]


@pytest.mark.parametrize("form", sorted(_SCALAR_FORMS))
@pytest.mark.parametrize("name, case", _CASE_IDS, ids=[f"{n}-{i}" for n, i in _CASE_IDS])
def test_every_primitive_takes_python_and_numpy_scalar_operands(name, case, form):
    """Eagerly, under jit, under grad (and grad of jit) where differentiable: the same
    arrays as with 0-d array operands."""
    prim = ir.PRIMITIVES[name]
    arrays, params = SCALAR_CASES[name][case]
    args = _formed(arrays, _SCALAR_FORMS[form])
    if args is None:
        pytest.skip(f"Python has no scalar of {[a.dtype.name for a in arrays if a.ndim == 0]}")
    wants = _outputs(prim, arrays, params)
    for i, (got, want) in enumerate(zip(_outputs(prim, args, params), wants, strict=True)):
        assert_matches(got, want, f"{name}: eager result {i} on {form}s")
    jitted = ft.jit(lambda *xs: _outputs(prim, xs, params))
    for i, (got, want) in enumerate(zip(jitted(*args), jitted(*arrays), strict=True)):
        assert_matches(got, want, f"{name}: jit result {i} on {form}s")
        assert_jit_matches_eager(got, wants[i], f"{name}: jit result {i} on {form}s vs eager")
    for position in [i for i, a in enumerate(arrays) if a.ndim == 0]:
        _check_vmap_beside_an_unbatched_scalar(prim, arrays, args, params, position, f"{name} on {form}s")
    for position in _differentiable_positions(prim, arrays, params):
        on_arrays = _sum_of_float_outputs(prim, params, arrays, position)
        on_scalars = _sum_of_float_outputs(prim, params, args, position)
        want = ft.grad(on_arrays)(arrays[position])
        assert_matches(ft.grad(on_scalars)(args[position]), want, f"{name}: grad wrt operand {position} on {form}s")
        assert_jit_matches_eager(ft.grad(ft.jit(on_scalars))(args[position]), want,
                                 f"{name}: grad of jit wrt operand {position} on {form}s")


def test_lax_logistic_of_a_python_float():
    assert_matches(ft.lax.logistic(0.0), np.array(0.5), "logistic(0.0)")
    assert_matches(ft.grad(ft.lax.logistic)(0.0), np.array(0.25), "grad of logistic at 0.0")
    assert_matches(ft.jit(ft.grad(ft.lax.logistic))(0.0), np.array(0.25), "jit of grad of logistic at 0.0")


@pytest.mark.parametrize("name, d_dx", [("add", 3.0), ("sub", 3.0), ("mod", 3.0)])
def test_the_tangent_of_a_rank0_operand_beside_an_array_has_the_output_shape(name, d_dx):
    """add's derivative in x is the tangent of x itself: rank-0 where the output is not."""
    R = ir.primitives.reductions
    prim, y = ir.PRIMITIVES[name], np.array([2.5, 3.5, 4.5])
    f = lambda x: R.reduce_sum(ir.bind(prim, x, y), (0,))  # noqa: E731
    for transformed in (ft.grad(f), ft.jit(ft.grad(f)), ft.grad(ft.jit(f)), lambda x: ft.jvp(f, (x,), (1.0,))[1]):
        assert_matches(transformed(0.7), np.array(d_dx), f"d/dx sum({name}(x, y))")
    tangent = ft.jvp(lambda x: ir.bind(prim, x, y), (0.7,), (1.0,))[1]
    assert_matches(tangent, np.ones(3), f"the tangent of {name}(x, y)")


def test_an_inlined_call_keeps_the_types_it_was_staged_for():
    """jit_call takes a weakly typed operand (a Python scalar) where its jaxpr says f64[];
    inlined into an outer jit, its equations are typed as staged (ir.check runs in debug mode)."""
    body, = [params["jaxpr"] for _, params in SCALAR_CASES["jit_call"]]
    call = lambda x, y: ir.bind(ir.PRIMITIVES["jit_call"], x, y, jaxpr=body, name="f")  # noqa: E731
    closed = ft.make_jaxpr(call)(0.7, 1.3)
    assert closed.in_avals[0].weak_type and not body.in_avals[0].weak_type
    for got, want in zip(ft.jit(call)(0.7, 1.3), ir.bind(ir.PRIMITIVES["jit_call"], S(0.7), S(1.3), jaxpr=body,
                                                           name="f"), strict=True):
        assert_matches(got, want, "inlined call on Python floats")
