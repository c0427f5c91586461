"""ftrans.numpy against NumPy: values, shapes and dtypes (NumPy 2 / NEP 50 rules).

Every eager call must return what NumPy returns, as a `numpy.ndarray` (0-d for
scalars, never a NumPy scalar), and raise where NumPy raises. Traced code
(`make_jaxpr`, then evaluating the jaxpr) must agree with eager code, and so
must jitted code: every like-NumPy check (`check_like_numpy`, and the indexing
checks) also runs `ft.jit` of the function on the NumPy backend and compares it
with the eager result (`check_jit_like_eager`).
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import itertools
import math
import re
import warnings
from typing import Callable

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import ftrans as ft
import ftrans.numpy as fnp
from ftrans.numpy import _indexing
from conftest import share_of_profile
from ftrans.tree_util import tree_flatten
from interpreters.eval import eval_closed_jaxpr
from ir.core import Array

F16, F32, F64 = np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64)
I32, I64, BOOL = np.dtype(np.int32), np.dtype(np.int64), np.dtype(np.bool_)
DTYPES = (F64, F32, I32, I64, BOOL)
RTOL = {F16: 1e-3, F32: 1e-5, F64: 1e-12}

# names exercised below, for test_every_shared_function_is_covered
COVERED: set[str] = set()


def covers(*names):
    COVERED.update(n if isinstance(n, str) else n[0] for n in names)  # names, or (name, ...) rows
    return names


# -------------------- comparing with NumPy --------------------

def assert_same(got, want, rtol=None, atol=0.0, what=""):
    """`got` is a numpy.ndarray with `want`'s shape, dtype and values."""
    want = np.asarray(want)
    assert type(got) is Array, f"{what}: got a {type(got).__name__}, not an Array (the numpy.ndarray ftrans returns)"
    assert got.shape == want.shape, f"{what}: shape {got.shape}, NumPy {want.shape}"
    assert got.dtype == want.dtype, f"{what}: dtype {got.dtype}, NumPy {want.dtype}"
    if want.dtype.kind == "f":
        np.testing.assert_allclose(got, want, rtol=RTOL[want.dtype] if rtol is None else rtol, atol=atol,
                                   equal_nan=True, err_msg=what)
    else:
        np.testing.assert_array_equal(got, want, err_msg=what)


def _error_family(error):
    """The builtin exception class a NumPy error is (AxisError -> ValueError, ...)."""
    return next(c for c in type(error).__mro__
                if c in (TypeError, ValueError, IndexError, OverflowError, ZeroDivisionError))


@contextlib.contextmanager
def quiet():
    """No RuntimeWarnings: log(0), 0/0 and empty means are part of what is compared."""
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def check_like_numpy(fun, np_fun, *args, rtol=None, atol=0.0, traced=None, **kwargs):
    """fun(*args) == np_fun(*args), or both raise (fnp an exception of NumPy's builtin class);
    and ft.jit of fun equals fun (`check_jit_like_eager`; `traced`: the positions it traces)."""
    with quiet():
        try:
            want = np_fun(*args, **kwargs)
        except (TypeError, ValueError, IndexError, OverflowError, ZeroDivisionError) as error:
            with pytest.raises(_error_family(error)):
                fun(*args, **kwargs)
            with pytest.raises(_error_family(error)):
                _jitted(fun, args, kwargs, traced)()
            return
        got = fun(*args, **kwargs)
    if isinstance(want, (list, tuple)):
        assert isinstance(got, (list, tuple)) and len(got) == len(want)
        for g, w in zip(got, want):
            assert_same(g, w, rtol, atol, what=getattr(fun, "__name__", ""))
    else:
        assert_same(got, want, rtol, atol, what=getattr(fun, "__name__", ""))
    check_jit_like_eager(fun, got, *args, atol=atol, traced=traced, **kwargs)


# -------------------- jit against eager --------------------

# jit lowers integer powers to multiplications (not bit-exact to numpy.power): floats agree
# with eager to a few ulps, everything else exactly
JIT_RTOL = {F16: 1e-3, F32: 1e-5, F64: 1e-12}


def _traced_positions(args):
    """The positional arguments jit traces unless a test says otherwise: arrays and NumPy
    scalars, and non-empty lists of arrays (concatenate, stack). The rest (Python scalars,
    shapes, axes, subscripts, index tuples, dtypes) is closed over, as static values are:
    many must be concrete. Tests of operands that may be Python scalars pass
    `traced=` to trace those too (weakly typed jit arguments)."""
    def is_array(a):
        return isinstance(a, (np.ndarray, np.generic))
    return tuple(i for i, a in enumerate(args)
                 if is_array(a) or (type(a) is list and a and all(map(is_array, a))))


def _jitted(fun, args, kwargs, traced=None):
    """ft.jit of `fun` on the NumPy backend, as a function of no arguments: the arguments at
    `traced` positions are jit's (traced) arguments; the others, and kwargs, are closed over."""
    traced = _traced_positions(args) if traced is None else tuple(traced)

    def closure(*operands):
        full = list(args)
        for i, operand in zip(traced, operands):
            full[i] = operand
        return fun(*full, **kwargs)
    jitted = ft.jit(closure)
    return lambda: jitted(*[args[i] for i in traced])


def check_jit_like_eager(fun, eager, *args, atol=0.0, traced=None, **kwargs):
    """ft.jit(fun)(*args) has the pytree structure, types, shapes and dtypes of `eager`
    (what fun(*args, **kwargs) returned) and its values: floats to JIT_RTOL (plus `atol`,
    the check's own allowance for cancellation), the rest exactly."""
    with quiet():
        got = _jitted(fun, args, kwargs, traced)()
    got_leaves, got_tree = tree_flatten(got)
    eager_leaves, eager_tree = tree_flatten(eager)
    what = f"jit of {getattr(fun, '__name__', 'fun')}"
    assert got_tree == eager_tree, f"{what}: structure {got_tree}, eager {eager_tree}"
    for g, e in zip(got_leaves, eager_leaves):
        assert_same(g, e, JIT_RTOL[np.dtype(e.dtype)] if np.dtype(e.dtype).kind == "f" else None, atol, what)


# -------------------- drawing operands --------------------

# value domains: (lo, hi, exclude lo)
DOMAINS = {"any": (-6, 6, False), "small": (-4, 4, False), "pos": (0, 50, True),
           "gt-1": (-1, 50, True), "nonzero": (-6, 6, False)}


@functools.lru_cache(maxsize=None)
def elements(dtype, domain="any", grid=True):
    lo, hi, exclude_lo = DOMAINS[domain]
    dtype = np.dtype(dtype)
    if dtype.kind == "b":
        return st.just(True) if domain in ("pos", "nonzero") else st.booleans()
    if dtype.kind in "iu":
        values = st.integers(int(lo) + exclude_lo, int(hi))
    elif grid:  # on a 1/4 grid: ties for comparisons, exact sums
        values = st.integers(lo * 4 + exclude_lo, hi * 4).map(lambda k: k / 4)
    else:
        values = st.floats(lo, hi, exclude_min=exclude_lo, width=8 * dtype.itemsize, allow_nan=False,
                           allow_infinity=False, allow_subnormal=False)
    return values.filter(bool) if domain == "nonzero" else values


def python_scalars(domain="any"):
    """Weakly typed operands: Python bool, int and float."""
    return st.one_of(elements(BOOL, domain), elements(I64, domain), elements(F64, domain))


@functools.lru_cache(maxsize=None)
def value_lists(dtype, size, domain, grid):
    return st.lists(elements(dtype, domain, grid), min_size=min(size, 1), max_size=min(size, 12))


def draw_array(draw, dtype, shape, domain="any", grid=True):
    """Up to 12 drawn values, repeated to fill `shape`: far cheaper to draw than one value
    per element (hypothesis's arrays()), and it shrinks just as well."""
    dtype = np.dtype(dtype)
    values = draw(value_lists(dtype, math.prod(shape), domain, grid))
    return np.resize(np.array(values, dtype=dtype), shape)


def draw_operand(draw, shape, domain="any", dtypes=DTYPES, scalars=True, grid=True):
    """An array of a drawn dtype, or (for a rank-0 slot, sometimes) a Python scalar."""
    if scalars and shape == () and draw(st.booleans()):
        return draw(python_scalars(domain))
    return draw_array(draw, draw(st.sampled_from(dtypes)), shape, domain, grid)


@functools.lru_cache(maxsize=None)  # one strategy per signature, not one per example
def operand(shape, domain="any", dtypes=DTYPES, scalars=True, grid=True):
    """The strategy of `draw_operand`."""
    return st.composite(lambda draw: draw_operand(draw, tuple(shape), domain, dtypes, scalars, grid))()


SHAPES = hnp.array_shapes(min_dims=0, max_dims=3, max_side=4)
SHAPES_WITH_EMPTY = hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4)


def broadcastable_shapes(n):
    return hnp.mutually_broadcastable_shapes(num_shapes=n, min_dims=0, max_dims=3, max_side=4)


# -------------------- elementwise --------------------

UNARY = covers(*{
    "sin": "small", "cos": "small", "tan": "small", "arctan": "any", "sinh": "small", "cosh": "small",
    "tanh": "any", "exp": "small", "log": "pos", "log1p": "gt-1", "expm1": "small", "sqrt": "pos",
    "negative": "any", "sign": "any", "floor": "any", "ceil": "any", "abs": "any", "absolute": "any",
    "square": "any", "reciprocal": "nonzero", "invert": "any", "bitwise_not": "any", "logical_not": "any",
}.items())


@pytest.mark.parametrize("name, domain", UNARY, ids=[n for n, _ in UNARY])
@share_of_profile(1 / 2)
@given(data=st.data())
def test_unary_like_numpy(name, domain, data):
    shape = data.draw(SHAPES)
    x = data.draw(operand(shape, domain, grid=False))
    fun, np_fun = getattr(fnp, name), getattr(np, name)
    # as NumPy: integer reciprocals truncate to 0 or +-1, bools square (and 1 / bool) in int8
    check_like_numpy(fun, np_fun, x, traced=(0,))


# as NumPy, //, % and ** of two bools compute in int8

BINARY = covers(*{
    "add": "any", "subtract": "any", "multiply": "any", "divide": "nonzero", "true_divide": "nonzero",
    "floor_divide": "nonzero", "mod": "nonzero", "remainder": "nonzero", "power": "small",
    "maximum": "any", "minimum": "any", "equal": "any", "not_equal": "any", "less": "any",
    "less_equal": "any", "greater": "any", "greater_equal": "any", "bitwise_and": "any",
    "bitwise_or": "any", "bitwise_xor": "any", "logical_and": "any", "logical_or": "any",
    "logical_xor": "any",
}.items())


@st.composite
def broadcast_operands(draw, n, domains):
    shapes = draw(broadcastable_shapes(n)).input_shapes
    return [draw_operand(draw, shape, domain) for shape, domain in zip(shapes, domains)]


@pytest.mark.parametrize("name, domain", BINARY, ids=[n for n, _ in BINARY])
@share_of_profile(1 / 2)
@given(data=st.data())
def test_binary_like_numpy(name, domain, data):
    x, y = data.draw(broadcast_operands(2, ("pos" if name == "power" else "any", domain)))
    fun, np_fun = getattr(fnp, name), getattr(np, name)
    check_like_numpy(fun, np_fun, x, y, traced=(0, 1))


@pytest.mark.parametrize("x, y", [
    (np.ones(3, np.float32), 2.0), (np.ones(3, np.float32), 2), (np.ones(3, np.int32), 1.5),
    (np.ones(3, np.int32), 1), (np.ones(3, np.bool_), 1), (np.ones(3, np.bool_), 1.5),
    (np.ones(3, np.bool_), True), (np.float32(1.5), 2.0), (np.int32(3), 4), (2.0, np.ones(2, np.float32)),
    (1, 2), (1, 2.5), (True, 2), (True, False), (np.ones(2, np.int32), np.ones(2, np.float32)),
    (np.ones(2, np.int64), np.ones(2, np.float32)), (np.ones(2, np.bool_), np.ones(2, np.int32)),
    (np.ones(2, np.float16), 1.0), (np.ones(2, np.float16), np.ones(2, np.int32)),
])
@pytest.mark.parametrize("name", ["add", "multiply", "maximum", "true_divide", "less"])
def test_nep50_promotion(name, x, y):
    check_like_numpy(getattr(fnp, name), getattr(np, name), x, y, traced=(0, 1))


def test_python_int_that_does_not_fit_raises_overflow_error():
    check_like_numpy(fnp.add, np.add, np.ones(2, np.int32), 2 ** 40)
    with pytest.raises(OverflowError):
        fnp.add(np.ones(2, np.int32), 2 ** 40)


@given(data=st.data())
def test_where_like_numpy(data):
    cond, x, y = data.draw(broadcast_operands(3, ("any", "any", "any")))
    check_like_numpy(fnp.where, np.where, cond, x, y, traced=(0, 1, 2))


covers("where", "clip")


@given(data=st.data())
def test_clip_like_numpy(data):
    a, lo, hi = data.draw(broadcast_operands(3, ("any", "any", "any")))
    a_min, a_max = data.draw(st.sampled_from([(lo, hi), (lo, None), (None, hi)]))
    if np.result_type(a, lo, hi) == BOOL:  # NumPy clips bools as bools; not worth a path of its own
        a = np.asarray(a, np.int64)
    a = np.asarray(a)  # numpy.clip makes a Python scalar `a` strong (test_products_keep_python_scalars_weak)
    check_like_numpy(fnp.clip, np.clip, a, a_min, a_max,
                     traced=[i for i, v in enumerate((a, a_min, a_max)) if v is not None])


# -------------------- reductions --------------------

@st.composite
def axis_args(draw, ndim):
    """None, an int (maybe negative), or a tuple of distinct axes (maybe negative)."""
    kind = draw(st.sampled_from(["none", "int", "tuple"] if ndim else ["none", "tuple"]))
    if kind == "none":
        return None
    if kind == "int":
        return draw(st.integers(-ndim, ndim - 1))
    axes = draw(st.permutations(range(ndim)))[:draw(st.integers(0, ndim))]
    return tuple(a - ndim if draw(st.booleans()) else a for a in axes)


REDUCTIONS = covers("sum", "prod", "max", "min", "amax", "amin", "mean", "var", "std")


@pytest.mark.parametrize("name", REDUCTIONS)
@given(data=st.data())
def test_reduction_like_numpy(name, data):
    shape = data.draw(SHAPES_WITH_EMPTY)
    x = data.draw(operand(shape, "small" if name == "prod" else "any", scalars=shape == ()))
    kwargs = {"axis": data.draw(axis_args(np.ndim(x))), "keepdims": data.draw(st.booleans())}
    if name in ("var", "std"):
        kwargs["ddof"] = data.draw(st.integers(0, 2))
    if name in ("sum", "prod", "mean") and data.draw(st.booleans()):
        kwargs["dtype"] = data.draw(st.sampled_from([F64, F32, I64] if name != "mean" else [F64, F32]))
    # var/std: NumPy and ftrans compute x - mean in one order, but allow for rounding near 0
    atol = 1e-6 if name in ("var", "std") else 0.0
    # a Python scalar x is a weak jit argument, except for prod: test_jit_of_prod_of_a_python_scalar
    traced = () if name == "prod" and not isinstance(x, np.ndarray) else (0,)
    check_like_numpy(getattr(fnp, name), getattr(np, name), x, rtol=None if name not in ("var", "std", "mean")
                     else {F16: 1e-3, F32: 1e-5, F64: 1e-10}[np.result_type(x, F16)], atol=atol, traced=traced,
                     **kwargs)


@pytest.mark.parametrize("x", [3, 1.5])  # (a bool is converted to int64 before it is reduced)
def test_jit_of_prod_of_a_python_scalar(x):
    check_like_numpy(fnp.prod, np.prod, x, traced=(0,))


covers("argmax", "argmin")


@pytest.mark.parametrize("name", ["argmax", "argmin"])
@given(data=st.data())
def test_arg_reduction_like_numpy(name, data):
    shape = data.draw(SHAPES_WITH_EMPTY)
    x = data.draw(operand(shape, scalars=False))
    axis = data.draw(st.one_of(st.none(), st.integers(-x.ndim, x.ndim - 1)) if x.ndim else st.none())
    check_like_numpy(getattr(fnp, name), getattr(np, name), x, axis=axis, keepdims=data.draw(st.booleans()))


def logsumexp_reference(x, axis=None, keepdims=False):
    """NumPy's own stable pairwise form: logaddexp reduced over the axes, in float64."""
    x = np.asarray(x, dtype=np.result_type(x, np.float64))
    axes = tuple(range(x.ndim)) if axis is None else tuple(
        a % x.ndim for a in ((axis,) if isinstance(axis, int) else axis))
    rest = [a for a in range(x.ndim) if a not in axes]
    moved = np.transpose(x, rest + list(axes)).reshape([x.shape[a] for a in rest] + [-1])
    out = np.logaddexp.reduce(moved, axis=-1)
    if keepdims:
        out = np.reshape(out, [1 if a in axes else n for a, n in enumerate(x.shape)])
    return out


@given(data=st.data())
def test_logsumexp_against_a_stable_reference(data):
    shape = data.draw(SHAPES)
    dtype = data.draw(st.sampled_from(DTYPES))
    values = st.sampled_from([-np.inf, -1000.0, 1000.0, 0.0]) if dtype.kind == "f" else st.nothing()
    x = data.draw(hnp.arrays(dtype, shape, elements=st.one_of(elements(dtype), values)))
    axis = data.draw(axis_args(len(shape)))
    keepdims = data.draw(st.booleans())
    with quiet():
        got = fnp.logsumexp(x, axis=axis, keepdims=keepdims)
        want = logsumexp_reference(x, axis, keepdims)
    out_dtype = x.dtype if x.dtype.kind == "f" else F64
    atol = 1e-5 if out_dtype == F32 else 1e-12
    assert_same(got, want.astype(out_dtype), rtol=RTOL[out_dtype], atol=atol)
    check_jit_like_eager(fnp.logsumexp, got, x, atol=atol, axis=axis, keepdims=keepdims)


def test_logsumexp_is_stable():
    x = np.array([[1000.0, 1000.0], [-1000.0, -np.inf]])
    assert_same(fnp.logsumexp(x, axis=1), np.array([1000 + np.log(2), -1000.0]))
    with quiet():  # log(0)
        assert_same(fnp.logsumexp(np.array([-np.inf, -np.inf])), np.array(-np.inf))


# -------------------- products --------------------

PRODUCT_DTYPES = (F64, F32, I32, I64, BOOL)


@st.composite
def matmul_operands(draw):
    a_batch, b_batch = draw(hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=2, max_side=3)).input_shapes
    n, k, m = (draw(st.integers(1, 4)) for _ in range(3))
    a_shape = (k,) if draw(st.booleans()) and not a_batch else a_batch + (n, k)
    b_shape = (k,) if draw(st.booleans()) and not b_batch else b_batch + (k, m)
    dtype_a, dtype_b = (draw(st.sampled_from(PRODUCT_DTYPES)) for _ in range(2))
    return draw_array(draw, dtype_a, a_shape), draw_array(draw, dtype_b, b_shape)


covers("matmul", "dot", "inner", "outer", "vdot", "tensordot")


@given(operands=matmul_operands())
def test_matmul_like_numpy(operands):
    check_like_numpy(fnp.matmul, np.matmul, *operands)


@st.composite
def dot_operands(draw):
    a_shape = draw(hnp.array_shapes(min_dims=0, max_dims=3, max_side=3))
    b_ndim = draw(st.integers(0, 3))
    b_shape = list(draw(hnp.array_shapes(min_dims=b_ndim, max_dims=b_ndim, max_side=3)))
    if a_shape and b_shape:  # dot contracts a's last axis with b's second-to-last (or only) axis
        b_shape[max(len(b_shape) - 2, 0)] = a_shape[-1]
    # no Python scalars: numpy.dot makes them strong arrays (see test_products_keep_scalars_weak)
    return (draw_operand(draw, a_shape, dtypes=PRODUCT_DTYPES, scalars=False),
            draw_operand(draw, tuple(b_shape), dtypes=PRODUCT_DTYPES, scalars=False))


@given(operands=dot_operands())
def test_dot_like_numpy(operands):
    check_like_numpy(fnp.dot, np.dot, *operands)


@given(data=st.data())
def test_inner_outer_vdot_like_numpy(data):
    a_shape = data.draw(hnp.array_shapes(min_dims=0, max_dims=3, max_side=3))
    b_shape = data.draw(hnp.array_shapes(min_dims=0, max_dims=2, max_side=3))
    if a_shape and b_shape:
        b_shape = b_shape[:-1] + a_shape[-1:]
    a = data.draw(operand(a_shape, dtypes=PRODUCT_DTYPES, scalars=False))
    b = data.draw(operand(b_shape, dtypes=PRODUCT_DTYPES, scalars=False))
    check_like_numpy(fnp.inner, np.inner, a, b)
    check_like_numpy(fnp.outer, np.outer, a, b)
    if np.size(a) == np.size(b) and np.result_type(a, b) != BOOL:  # NumPy's vdot of bools is an or of ands, too
        check_like_numpy(fnp.vdot, np.vdot, a, b)


@pytest.mark.parametrize("name", ["dot", "inner", "clip"])
def test_products_keep_python_scalars_weak(name):
    # NB: numpy.dot, inner and clip turn a Python scalar into a strong float64/int64
    # array before promoting (they are not ufuncs); ftrans keeps it weak, as SPEC 2 (NEP 50)
    # says for every function: the float32 operand decides, as in fnp.multiply.
    x = np.array([1.5, 2.0], np.float32)
    fun = getattr(fnp, name)
    got = fun(2.0, x) if name != "clip" else fun(2.0, x, 3.0)
    assert type(got) is Array and got.dtype == np.float32
    want = np.multiply(2.0, x) if name != "clip" else np.clip(np.float32(2.0), x, 3.0)
    np.testing.assert_array_equal(got.ravel(), want.ravel())


@given(data=st.data())
def test_tensordot_like_numpy(data):
    n = data.draw(st.integers(0, 2))
    shared = data.draw(hnp.array_shapes(min_dims=n, max_dims=n, max_side=3))
    a_free = data.draw(hnp.array_shapes(min_dims=0, max_dims=2, max_side=3))
    b_free = data.draw(hnp.array_shapes(min_dims=0, max_dims=2, max_side=3))
    a_perm = data.draw(st.permutations(range(len(a_free) + n)))
    b_perm = data.draw(st.permutations(range(len(b_free) + n)))
    a_shape = tuple((a_free + shared)[i] for i in a_perm)
    b_shape = tuple((shared + b_free)[i] for i in b_perm)
    a = data.draw(operand(a_shape, dtypes=PRODUCT_DTYPES, scalars=False))
    b = data.draw(operand(b_shape, dtypes=PRODUCT_DTYPES, scalars=False))
    if data.draw(st.booleans()) and a_perm == list(range(len(a_perm))) and b_perm == list(range(len(b_perm))):
        axes = n  # the int form: a's last n against b's first n
    else:
        a_axes = [a_perm.index(len(a_free) + j) for j in range(n)]
        b_axes = [b_perm.index(j) for j in range(n)]
        axes = ([a - len(a_shape) if data.draw(st.booleans()) else a for a in a_axes], b_axes)
    check_like_numpy(fnp.tensordot, np.tensordot, a, b, axes=axes)


covers("einsum")
EINSUMS = [
    "ij,jk->ik", "ij,jk", "i,i", "i,i->", "i,i->i", "ij->ji", "ij", "ji", "ij->", "ii->i", "ii", "iij->ij",
    "i,j->ij", "i,j", "bij,bjk->bik", "ij,ij->ij", "ijk->kji", "ijk,ikl->jl", "ij,jk,kl->il",
    "i,j,k", "i,i,i->i", "ab,bc,ca->", "...ij,...jk->...ik", "...i,...i", "...ii->...i",
    "i...,i...->...", "...,...", "ij...,jk->ik...", "ba,ab", " ij , jk -> ik ",
]


@pytest.mark.parametrize("subscripts", EINSUMS)
@share_of_profile(1 / 3)
@given(data=st.data())
def test_einsum_like_numpy(subscripts, data):
    spec = subscripts.replace(" ", "")
    terms = spec.split("->")[0].split(",")
    sizes = {c: data.draw(st.integers(1, 3)) for c in sorted(set(spec) - set(",->."))}
    # the '...' dims of each operand broadcast against each other
    ellipses = data.draw(hnp.mutually_broadcastable_shapes(num_shapes=len(terms), max_dims=2, max_side=3)).input_shapes
    operands = []
    for term, ellipsis in zip(terms, ellipses):
        shape = []
        for part in term.split("..."):
            shape += [sizes[c] for c in part] + list(ellipsis)
        shape = shape[:len(shape) - len(ellipsis)] if "..." in term else [sizes[c] for c in term]
        operands.append(data.draw(operand(tuple(shape), dtypes=PRODUCT_DTYPES, scalars=False)))
    check_like_numpy(fnp.einsum, np.einsum, subscripts, *operands)


# -------------------- shapes --------------------

@functools.lru_cache(maxsize=None)
def _factorizations(n):
    """Every shape of at most 3 sides whose product is n (n >= 1)."""
    divisors = [d for d in range(1, n + 1) if n % d == 0]
    out = [()] if n == 1 else []
    for k in (1, 2, 3):
        out += [s for s in itertools.product(divisors, repeat=k) if math.prod(s) == n]
    return out


covers("reshape", "ravel", "squeeze", "expand_dims", "broadcast_to", "transpose", "moveaxis", "swapaxes",
       "concatenate", "stack", "split", "take", "shape", "ndim", "size")


@given(data=st.data())
def test_reshape_like_numpy(data):
    shape = data.draw(SHAPES)
    x = data.draw(operand(shape))
    new = list(data.draw(st.sampled_from(_factorizations(math.prod(shape)))))
    if new and data.draw(st.booleans()):
        new[data.draw(st.integers(0, len(new) - 1))] = -1
    check_like_numpy(fnp.reshape, np.reshape, x, tuple(new))
    check_like_numpy(fnp.ravel, np.ravel, x)
    assert (fnp.shape(x), fnp.ndim(x), fnp.size(x)) == (np.shape(x), np.ndim(x), np.size(x))


@pytest.mark.parametrize("new", [(4, -1), (-1,), (-1, 3), (2, -1, 2), (5, -1), (-1, -1), (3, 5)])
def test_reshape_with_minus_one(new):
    check_like_numpy(fnp.reshape, np.reshape, np.arange(12.0), new)


@given(data=st.data())
def test_squeeze_and_expand_dims_like_numpy(data):
    shape = tuple(1 if data.draw(st.booleans()) else n for n in data.draw(SHAPES))
    x = data.draw(operand(shape, scalars=False))
    ones = [i for i, n in enumerate(shape) if n == 1]
    axis = data.draw(st.one_of(st.none(), st.sampled_from(ones) if ones else st.none(),
                               st.lists(st.sampled_from(ones), unique=True).map(tuple) if ones else st.none()))
    if axis is not None and data.draw(st.booleans()):
        axis = tuple(a - len(shape) for a in axis) if isinstance(axis, tuple) else axis - len(shape)
    check_like_numpy(fnp.squeeze, np.squeeze, x, axis=axis)
    k = data.draw(st.integers(1, 2))
    new_axes = data.draw(st.lists(st.integers(-(x.ndim + k), x.ndim + k - 1), min_size=k, max_size=k))
    check_like_numpy(fnp.expand_dims, np.expand_dims, x, new_axes[0] if k == 1 else tuple(new_axes))


@given(data=st.data())
def test_broadcast_to_like_numpy(data):
    x_shape, other = data.draw(broadcastable_shapes(2)).input_shapes
    if data.draw(st.booleans()):  # a shape x broadcasts to
        target = data.draw(hnp.mutually_broadcastable_shapes(
            num_shapes=1, base_shape=x_shape, max_dims=3, max_side=4)).result_shape
    else:  # one it only broadcasts *with*: NumPy raises unless it is x's broadcast shape
        target = other
    x = data.draw(operand(x_shape))
    check_like_numpy(fnp.broadcast_to, np.broadcast_to, x, target)


@given(data=st.data())
def test_transpose_moveaxis_swapaxes_like_numpy(data):
    shape = data.draw(SHAPES)
    x = data.draw(operand(shape))
    ndim = len(shape)
    perm = data.draw(st.permutations(range(ndim)))
    axes = None if data.draw(st.booleans()) else [p - ndim if data.draw(st.booleans()) else p for p in perm]
    check_like_numpy(fnp.transpose, np.transpose, x, axes)
    if ndim:
        i, j = data.draw(st.integers(-ndim, ndim - 1)), data.draw(st.integers(-ndim, ndim - 1))
        check_like_numpy(fnp.moveaxis, np.moveaxis, x, i, j)
        check_like_numpy(fnp.swapaxes, np.swapaxes, x, i, j)


@given(data=st.data())
def test_concatenate_and_stack_like_numpy(data):
    base = list(data.draw(hnp.array_shapes(min_dims=1, max_dims=3, max_side=3)))
    axis = data.draw(st.integers(-len(base), len(base) - 1))
    arrays = []
    for _ in range(data.draw(st.integers(1, 3))):
        shape = list(base)
        shape[axis] = data.draw(st.integers(0, 3))
        arrays.append(data.draw(operand(tuple(shape))))
    check_like_numpy(fnp.concatenate, np.concatenate, arrays, axis=axis)
    check_like_numpy(fnp.concatenate, np.concatenate, arrays, axis=None)
    same = [data.draw(operand(tuple(base))) for _ in arrays]
    check_like_numpy(fnp.stack, np.stack, same, axis=data.draw(st.integers(-len(base) - 1, len(base))))


@given(data=st.data())
def test_split_like_numpy(data):
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=6))
    x = data.draw(operand(shape))
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    n = shape[axis]
    if data.draw(st.booleans()):
        sections = data.draw(st.sampled_from([d for d in range(1, n + 1) if n % d == 0] or [1, 2]))
    else:  # indices: unsorted, negative, past the end
        sections = data.draw(st.lists(st.integers(-n - 2, n + 2), max_size=3))
    check_like_numpy(fnp.split, np.split, x, sections, axis=axis)


@given(data=st.data())
def test_take_like_numpy(data):
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=3, max_side=4))
    x = data.draw(operand(shape))
    axis = data.draw(st.one_of(st.none(), st.integers(-len(shape), len(shape) - 1)))
    n = x.size if axis is None else shape[axis]
    indices = data.draw(hnp.arrays(np.int64, data.draw(hnp.array_shapes(min_dims=0, max_dims=2, max_side=3)),
                                   elements=st.integers(-n, n - 1)))
    check_like_numpy(fnp.take, np.take, x, indices, axis=axis)


# -------------------- indexing --------------------

X = np.arange(4 * 5 * 6).reshape(4, 5, 6)
I = np.array
INDICES = [
    0, -1, 3, (1, 2), (-1, -2, -3), (0, 0, 0), slice(None), slice(1, 3), slice(None, None, -1),
    slice(3, 0, -2), slice(-2, None), slice(10, 20), slice(None, None, 3), slice(-100, 100),
    (slice(None), 1), (slice(None), slice(None, None, -2), 0), (Ellipsis, 1), (Ellipsis, slice(None, None, -1)),
    (1, Ellipsis), (1, Ellipsis, 2), Ellipsis, (), None, (None, 1), (1, None, slice(None), None),
    (Ellipsis, None), (None, Ellipsis, None), I([0, 2]), I([-1, 0, -1]), [0, 1], [[0, 1], [2, 3]],
    I([[1], [2]]), (I([0, 1]), I([1, 2])), (I([0, 1]), I([1, 2]), I([3, 4])), (I([[0], [1]]), I([1, 2, 3])),
    (slice(None), I([0, 4])), (slice(None), I([0, 1]), I([2, 3])), (I([0, 1]), slice(None), I([2, 3])),
    (1, slice(None), I([0, 2])), (slice(None), 1, I([0, 2])), (I([0, 1]), 1), (I([1]), slice(1, 3), 2),
    (Ellipsis, I([0, 5])), (I([2, 0]), Ellipsis, I([1, 1])), (None, I([0, 1])), (I([0, 1]), None, I([1, 2])),
    (slice(None, None, -1), I([4, 0]), slice(None, 2)), I(2), (I(2), I([1, 3])), [], ([],), (I([], int),),
    X[:, 0, 0] > 10, (slice(None), X[0, :, 0] % 2 == 0), X > 50, (X[:, :, 0] > 30, 1),
    (X[:, 0, 0] > 10, I([0, 1, 2])), (Ellipsis, X[0, 0] < 3), (1, X[0, :, 0] > 6, slice(None, None, -1)),
    (I([True, False, True, False]), slice(None), I([0, 5])), np.zeros(4, bool),
    # an Ellipsis standing for no dimension still separates index arrays (batch dims go first)
    (None, 0, Ellipsis, I([0, 0]), 0), (slice(None), I([0, 1]), Ellipsis, I([1, 2])), (I([1, 2]), Ellipsis, 0, 1),
    (Ellipsis, I([0, 1]), I([1, 2]), I([2, 3])),
]


def _ids(indices):
    return [repr(i).replace("\n", "")[:60] for i in indices]


@pytest.mark.parametrize("index", INDICES, ids=_ids(INDICES))
def test_getitem_like_numpy(index):
    got = _indexing.getitem(X, index)
    assert_same(got, X[index])
    check_jit_like_eager(_indexing.getitem, got, X, index, traced=(0,))
    assert_same(fnp.at(X)[index].get(), X[index])
    x32 = X.astype(np.float32)
    got = fnp.at(x32)[index].get()
    assert_same(got, x32[index])
    check_jit_like_eager(lambda x, i: fnp.at(x)[i].get(), got, x32, index, traced=(0,))


@pytest.mark.parametrize("index", INDICES[::3], ids=_ids(INDICES[::3]))
def test_getitem_traced_like_numpy(index):
    closed = ft.make_jaxpr(lambda x: x[index])(X)
    assert_same(eval_closed_jaxpr(closed, X)[0], X[index])


def _positions(shape, index):
    """Which flat positions NumPy's x[index] reads (computed by NumPy on an iota)."""
    return np.arange(math.prod(shape)).reshape(shape)[index]


def _set_reference(x, index, values):
    ref = x.copy()
    ref[index] = values
    return ref


def _assert_set_matches(got, x, index, values):
    """Like NumPy's x[index] = values; where an index repeats, any one of its values may win."""
    positions = _positions(x.shape, index)
    values = np.broadcast_to(np.asarray(values).astype(x.dtype), positions.shape)
    unique, counts = np.unique(positions, return_counts=True)
    repeated = unique[counts > 1]
    want = _set_reference(x, index, values)
    assert type(got) is Array and got.dtype == x.dtype and got.shape == x.shape
    free = ~np.isin(np.arange(x.size), repeated).reshape(x.shape)
    np.testing.assert_array_equal(got[free], want[free])
    for p in repeated:
        assert got.flat[p] in values[positions == p]


def _values_for(index, x, kind):
    shape = np.shape(x[index])
    if kind == "scalar":
        return 7 if x.dtype.kind in "iu" else 7.5 if x.dtype.kind == "f" else True
    if kind == "row" and shape:
        return (np.arange(shape[-1]) * 3 + 1).astype(x.dtype)
    return (np.arange(math.prod(shape)).reshape(shape) * 3 + 1).astype(x.dtype)


UPDATE_INDICES = INDICES + [I([0, 0, 1]), (I([1, 1]), I([2, 2])), (slice(None), I([0, 0, 0])),
                            (I([0, 1, 0]), slice(None), I([5, 5, 5]))]


@pytest.mark.parametrize("kind", ["scalar", "row", "full"])
@pytest.mark.parametrize("index", UPDATE_INDICES, ids=_ids(UPDATE_INDICES))
def test_at_set_and_add_like_numpy(index, kind):
    for x in (X, X.astype(np.float32)):
        values = _values_for(index, x, kind)
        _assert_set_matches(fnp.at(x)[index].set(values), x, index, values)
        # jit: which of repeated indices wins may differ from eager, so against NumPy's rule
        jitted_set = _jitted(lambda x, i, v: fnp.at(x)[i].set(v), (x, index, values), {}, traced=(0, 2))
        _assert_set_matches(jitted_set(), x, index, values)
        want = x.copy()
        np.add.at(want, index, values)  # duplicates add up
        got = fnp.at(x)[index].add(values)
        assert_same(got, want)
        check_jit_like_eager(lambda x, i, v: fnp.at(x)[i].add(v), got, x, index, values, traced=(0, 2))


@given(data=st.data())
def test_drawn_basic_indices_like_numpy(data):
    shape = data.draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4))
    x = np.arange(math.prod(shape), dtype=np.float64).reshape(shape)
    index = data.draw(hnp.basic_indices(shape, min_dims=0, allow_newaxis=True, allow_ellipsis=True))
    got = _indexing.getitem(x, index)
    assert_same(got, x[index])
    check_jit_like_eager(_indexing.getitem, got, x, index, traced=(0,))
    got = fnp.at(x)[index].add(1.0)
    assert_same(got, _add_at(x, index, 1.0))
    check_jit_like_eager(lambda a, i: fnp.at(a)[i].add(1.0), got, x, index, traced=(0,))


def _add_at(x, index, values):
    want = x.copy()
    np.add.at(want, index, values)
    return want


@st.composite
def mixed_indices(draw, shape):
    """Ints, slices (negative steps too), integer arrays, lists, bool masks, None and Ellipsis, mixed."""
    batch = draw(hnp.array_shapes(min_dims=0, max_dims=2, max_side=3))
    entries, dim = [], 0
    while dim < len(shape):
        n = shape[dim]
        kind = draw(st.sampled_from(["slice", "int", "array", "list", "mask", "none", "end"]))
        if kind == "end":
            break
        if kind == "none":
            entries.append(None)
            continue
        if kind == "slice":
            bound = st.one_of(st.none(), st.integers(-n - 2, n + 2))
            entries.append(slice(draw(bound), draw(bound), draw(st.one_of(st.none(), st.sampled_from([1, 2, -1, -3])))))
        elif kind == "int" and n:
            entries.append(draw(st.integers(-n, n - 1)))
        elif kind in ("array", "list") and n:
            array = draw(hnp.arrays(np.int64, batch, elements=st.integers(-n, n - 1)))
            entries.append(array.tolist() if kind == "list" and array.ndim else array)
        else:
            entries.append(draw(hnp.arrays(np.bool_, (n,))))
        dim += 1
    if draw(st.booleans()):
        entries.insert(draw(st.integers(0, len(entries))), Ellipsis)
    return tuple(entries)


@given(data=st.data())
def test_drawn_mixed_indices_like_numpy(data):
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4))
    x = np.arange(math.prod(shape), dtype=np.float64).reshape(shape)
    index = data.draw(mixed_indices(shape))
    check_like_numpy(_indexing.getitem, lambda a, i: a[i], x, index, traced=(0,))
    check_like_numpy(lambda a, i: fnp.at(a)[i].add(1.0), lambda a, i: _add_at(a, i, 1.0), x, index, traced=(0,))


@pytest.mark.parametrize("index", [
    4, -5, (0, 5), (0, 0, 6), (Ellipsis, -7), I([0, 4]), I([-5]), [3, 9], (slice(None), I([0, 5])),
    (I([0, 1]), I([0, 5])), np.zeros(5, bool), (slice(None), np.zeros(4, bool)), (0, 0, 0, 0), 1.0, "a",
], ids=repr)
def test_bad_concrete_indices_raise_index_error(index):
    with pytest.raises(IndexError):
        X[index]
    with pytest.raises(IndexError):
        _indexing.getitem(X, index)
    with pytest.raises(IndexError):
        fnp.at(X)[index].set(0)
    with pytest.raises(IndexError):
        fnp.at(X)[index].add(1)


def test_traced_indices_clamp():
    x = np.arange(5.0)
    closed = ft.make_jaxpr(lambda x, i: x[i])(x, np.array([0, -1, 7, -9]))
    got = eval_closed_jaxpr(closed, x, np.array([0, -1, 7, -9]))[0]
    assert_same(got, x[np.clip(np.array([0, 4, 7, -4]), 0, 4)])
    assert_same(ft.jit(lambda x, i: x[i])(x, np.array([0, -1, 7, -9])), got)


# -------------------- creation --------------------

covers("zeros", "ones", "full", "empty", "zeros_like", "ones_like", "full_like", "arange", "linspace",
       "eye", "identity", "asarray", "array")
CREATION = [
    ("zeros", (3,), {}), ("zeros", ((2, 3),), {}), ("zeros", ((),), {}), ("zeros", ((2, 0),), {}),
    ("zeros", ((2,), np.int32), {}), ("zeros", (2,), {"dtype": bool}), ("zeros", (2,), {"dtype": np.float32}),
    ("ones", (3,), {}), ("ones", ((2, 2),), {"dtype": np.int64}), ("ones", (4,), {"dtype": bool}),
    ("ones", ((1, 2),), {"dtype": "float32"}),
    ("full", ((2,), 3), {}), ("full", ((2, 2), 1.5), {"dtype": np.float32}), ("full", (3, True), {}),
    ("full", ((2, 2), [1, 2]), {}), ("full", (2, np.float32(1.5)), {}), ("full", (2, 1.5), {"dtype": np.int32}),
    ("full", ((), 7), {}), ("full", ((3, 2), np.array([1.0, 2.0], np.float32)), {}),
    ("zeros_like", (np.ones((2, 3), np.int32),), {}), ("zeros_like", (np.ones(2),), {"dtype": np.float32}),
    ("zeros_like", (2.0,), {}), ("zeros_like", (True,), {}), ("ones_like", (np.ones(3, bool),), {}),
    ("ones_like", (np.ones((2, 2), np.float32),), {"dtype": np.int32}), ("ones_like", ([1, 2],), {}),
    ("ones_like", (np.ones(2),), {"shape": (3, 1)}), ("full_like", (np.ones(2, np.int32), 2.7), {}),
    ("full_like", (np.ones(2), 3), {"dtype": np.float32}),
    ("arange", (5,), {}), ("arange", (1, 7, 2), {}), ("arange", (0, 1, 0.25), {}), ("arange", (5.0,), {}),
    ("arange", (5,), {"dtype": np.float32}), ("arange", (10, 0, -3), {}), ("arange", (3, 1), {}),
    ("arange", (-2.5, 2.5, 0.5), {}), ("arange", (0, 5), {"dtype": np.int32}), ("arange", (np.int32(4),), {}),
    ("arange", (0, 10, 3), {"dtype": float}), ("arange", (0.0, -1.0, -0.3), {}),
    ("linspace", (0, 1, 5), {}), ("linspace", (0, 1), {}), ("linspace", (0, 1, 5), {"endpoint": False}),
    ("linspace", (2, 3, 1), {}), ("linspace", (2, 3, 0), {}), ("linspace", (-5, 5, 4), {"dtype": np.int64}),
    ("linspace", (0, 10, 7), {"dtype": np.int32}), ("linspace", (1.5, -1.5, 4), {"dtype": np.float32}),
    ("linspace", (0, 1, 3), {"endpoint": False, "dtype": np.float64}), ("linspace", (-1, 1, -1), {}),
    ("eye", (3,), {}), ("eye", (3, 4), {"k": 1}), ("eye", (4,), {"k": -2, "dtype": np.int32}),
    ("eye", (2,), {"dtype": bool}), ("eye", (2, 3), {"k": 5}), ("eye", (0,), {}), ("identity", (3,), {}),
    ("identity", (2,), {"dtype": np.float32}),
    ("asarray", ([1, 2],), {}), ("asarray", ([1.0, 2],), {"dtype": np.float32}), ("asarray", (2.0,), {}),
    ("asarray", (np.int32(3),), {}), ("asarray", (True,), {}), ("asarray", ([[True], [False]],), {}),
    ("asarray", (np.ones(2, np.float32),), {"dtype": np.float64}),
    ("array", ([1, 2],), {}), ("array", (3,), {}), ("array", (np.ones(2),), {"dtype": np.int32}),
    ("arange", (0, 5, 0), {}),
]


@pytest.mark.parametrize("name, args, kwargs", CREATION, ids=[f"{n}{a}{k}" for n, a, k in CREATION])
def test_creation_like_numpy(name, args, kwargs):
    check_like_numpy(getattr(fnp, name), getattr(np, name), *args, traced=(), **kwargs)


@pytest.mark.parametrize("shape, dtype", [((2, 3), None), (4, np.int32), ((), bool)])
def test_empty_has_numpys_shape_and_dtype(shape, dtype):
    got, want = fnp.empty(shape, dtype), np.empty(shape, dtype)
    assert type(got) is Array and (got.shape, got.dtype) == (want.shape, want.dtype)


def test_array_copies_and_asarray_does_not():
    x = np.ones(3)
    copy = fnp.array(x)
    copy[0] = 5.0
    assert x[0] == 1.0
    viewed = fnp.asarray(x)  # an Array viewing x's data, as numpy.asarray shares it
    assert type(viewed) is Array and np.shares_memory(viewed, x)
    assert fnp.asarray(viewed) is viewed


# -------------------- every result is an ndarray --------------------

SCALAR_CALLS = [
    (fnp.abs, np.abs, (True,)), (fnp.abs, np.abs, (np.float32(-2),)), (fnp.floor, np.floor, (3,)),
    (fnp.ceil, np.ceil, (np.int32(3),)), (fnp.squeeze, np.squeeze, (2.0,)), (fnp.reshape, np.reshape, (2.0, ())),
    (fnp.transpose, np.transpose, (np.float32(1),)), (fnp.broadcast_to, np.broadcast_to, (2.0, ())),
    (fnp.sum, np.sum, (3,)), (fnp.prod, np.prod, (2.5,)), (fnp.max, np.max, (True,)), (fnp.min, np.min, (4,)),
    (fnp.mean, np.mean, (3,)), (fnp.var, np.var, (2.0,)), (fnp.argmax, np.argmax, (1.0,)),
    (fnp.add, np.add, (1, 2)), (fnp.sin, np.sin, (1.0,)), (fnp.multiply, np.multiply, (np.float32(2), 3.0)),
    (fnp.where, np.where, (True, 1, 2.0)), (fnp.clip, np.clip, (5, 0, 3)), (fnp.dot, np.dot, (2.0, 3)),
    (fnp.einsum, np.einsum, (",", 2.0, 3.0)), (fnp.einsum, np.einsum, ("i->i", np.ones(2))),
    (fnp.negative, np.negative, (np.int64(3),)), (fnp.square, np.square, (3,)), (fnp.power, np.power, (2.0, 3)),
    (fnp.logical_not, np.logical_not, (0,)), (fnp.equal, np.equal, (1, 1.0)), (fnp.ravel, np.ravel, (1,)),
    (fnp.expand_dims, np.expand_dims, (1.0, 0)), (fnp.concatenate, np.concatenate, ([np.ones(2)],)),
    (fnp.sign, np.sign, (-2,)), (fnp.true_divide, np.true_divide, (1, 2)),
    (_indexing.getitem, lambda x, i: x[i], (np.float64(2.0), ())),
    (_indexing.getitem, lambda x, i: x[i], (np.ones((2, 2)), (0, 1))),
]


@pytest.mark.parametrize("fun, np_fun, args", SCALAR_CALLS, ids=[f"{f.__name__}{a}" for f, _, a in SCALAR_CALLS])
def test_eager_results_are_ndarrays_not_scalars(fun, np_fun, args):
    check_like_numpy(fun, np_fun, *args)  # checks type(result) is Array (NumPy's may be a scalar)


# -------------------- traced vs eager --------------------

def _f32(*shape):
    return np.linspace(-2, 3, math.prod(shape), dtype=np.float32).reshape(shape)


TRACED_CASES = {
    "mlp": (lambda w, b, x: fnp.tanh(x @ w + b).sum(axis=-1), (_f32(3, 4), _f32(4), _f32(2, 3))),
    "weak scalar": (lambda x, s: fnp.add(x, s) * 2.0, (_f32(3), 2.0)),
    "int weak float": (lambda i: i + 1.5, (np.arange(3, dtype=np.int32),)),
    "int weak int": (lambda i: i * 2 + 1, (np.arange(3, dtype=np.int32),)),
    "bool plus int": (lambda b: b + 1, (np.array([True, False]),)),
    "promote": (lambda a, b: a * b, (np.arange(3, dtype=np.int32), _f32(3))),
    "reductions": (lambda x: [x.mean(axis=0), fnp.var(x, ddof=1), fnp.std(x, axis=(0, 1), keepdims=True),
                              fnp.max(x, axis=-1), fnp.argmax(x), fnp.argmin(x, axis=1)], (_f32(2, 3),)),
    "sum int32": (lambda x: fnp.sum(x, axis=1), (np.arange(6, dtype=np.int32).reshape(2, 3),)),
    "logsumexp": (lambda x: fnp.logsumexp(x, axis=1), (_f32(2, 3) * 100,)),
    "where clip": (lambda x: fnp.where(x > 0, fnp.clip(x, -1, 1), x ** 2), (_f32(5),)),
    "einsum": (lambda a, b: fnp.einsum("bij,bjk->bik", a, b), (_f32(2, 3, 4), _f32(2, 4, 2))),
    "einsum trace": (lambda a: fnp.einsum("ii", a), (_f32(3, 3),)),
    "matmul batched": (lambda a, b: fnp.matmul(a, b), (_f32(2, 1, 3, 4), _f32(3, 4, 2))),
    "tensordot": (lambda a, b: fnp.tensordot(a, b, axes=([0, 1], [1, 0])), (_f32(2, 3, 4), _f32(3, 2))),
    "outer inner": (lambda a, b: [fnp.outer(a, b), fnp.inner(a, b), fnp.dot(a, b)], (_f32(3), _f32(3))),
    "shapes": (lambda x: [fnp.reshape(x, (3, -1)), fnp.squeeze(x[:1]), fnp.expand_dims(x, (0, -1)),
                          fnp.broadcast_to(x, (2, 2, 3)), fnp.concatenate([x, x], axis=None),
                          fnp.stack([x, x], axis=-1), fnp.moveaxis(x, 0, -1)], (_f32(2, 3),)),
    "split": (lambda x: fnp.split(x, [1, -1], axis=1), (_f32(2, 4),)),
    "indexing": (lambda x, i: [x[1:, ::-1], x[i], x[:, i], x[..., None, 0], x[0], x[-1, 1:]],
                 (_f32(3, 4), np.array([0, 2, 1]))),
    "at": (lambda x, v: [fnp.at(x)[1].set(v), fnp.at(x)[np.array([0, 0, 2])].add(1.0), fnp.at(x)[:, 1].get()],
           (_f32(3, 2), np.float32(5.0))),
    "creation": (lambda x: x + fnp.ones_like(x) + fnp.arange(3) + fnp.zeros((2, 3), np.int32) + fnp.eye(2, 3)
                 + fnp.linspace(0, 1, 3) + fnp.full((3,), 2.0), (_f32(2, 3),)),
    "unary": (lambda x: [fnp.exp(x), fnp.log1p(fnp.abs(x)), fnp.sqrt(fnp.square(x)), fnp.sign(x),
                         fnp.floor(x), fnp.arctan(x), fnp.reciprocal(x + 5)], (_f32(4),)),
    "bools": (lambda x: fnp.logical_and(x > 0, fnp.logical_not(x > 2)) | (x == 1), (_f32(4),)),
    "int ops": (lambda i, j: [i // j, i % j, i ** 2, -i, ~i, i & j], (np.arange(1, 5, dtype=np.int32),
                                                                   np.array([2, 3, 1, 2], np.int32))),
    "pytree in": (lambda d: d["a"] * d["b"][0] - d["b"][1], ({"a": _f32(2), "b": (2.0, np.float32(1.0))},)),
}


@pytest.mark.parametrize("name", sorted(TRACED_CASES))
def test_traced_equals_eager(name):
    f, args = TRACED_CASES[name]
    eager, _ = tree_flatten(f(*args))
    closed = ft.make_jaxpr(f)(*args)
    leaves, _ = tree_flatten(args)
    traced = eval_closed_jaxpr(closed, *leaves)
    assert len(traced) == len(eager)
    for got, want in zip(traced, eager):
        assert isinstance(want, np.ndarray), f"eager result is a {type(want).__name__}"
        assert_same(got, want)
        assert np.asarray(got).dtype == want.dtype
    check_jit_like_eager(f, f(*args), *args, traced=range(len(args)))


# -------------------- tracer methods under make_jaxpr --------------------

A = np.arange(6.0).reshape(2, 3) - 2.5
B = np.arange(12.0).reshape(3, 4) / 4
V = np.array([0.5, -1.5, 2.0])

TRACER_METHODS = [
    ("x.sum(axis=0)", lambda x: x.sum(axis=0), lambda x: x.sum(axis=0), (A,)),
    ("x.T", lambda x: x.T, lambda x: x.T, (A,)),
    ("x.reshape(3, -1)", lambda x: x.reshape(3, -1), lambda x: x.reshape(3, -1), (A,)),
    ("x.reshape((6,))", lambda x: x.reshape((6,)), lambda x: x.reshape((6,)), (A,)),
    ("x @ y", lambda x, y: x @ y, lambda x, y: x @ y, (A, B)),
    ("ndarray @ tracer", lambda y: A @ y, lambda y: A @ y, (B,)),
    ("x[1:]", lambda x: x[1:], lambda x: x[1:], (A,)),
    ("x[:, ::-1][0]", lambda x: x[:, ::-1][0], lambda x: x[:, ::-1][0], (A,)),
    ("-x", lambda x: -x, lambda x: -x, (A,)),
    ("+x", lambda x: +x, lambda x: +x, (A,)),
    ("abs(x)", lambda x: abs(x), lambda x: abs(x), (A,)),
    ("x ** 2", lambda x: x ** 2, lambda x: x ** 2, (A,)),
    ("x ** 0.5", lambda x: abs(x) ** 0.5, lambda x: abs(x) ** 0.5, (A,)),
    ("2 ** x", lambda x: 2 ** x, lambda x: 2 ** x, (A,)),
    ("1 - x", lambda x: 1 - x, lambda x: 1 - x, (A,)),
    ("1 / x", lambda x: 1 / x, lambda x: 1 / x, (V,)),
    ("x // 2, x % 2", lambda x: [x // 2, x % 2], lambda x: [x // 2, x % 2], (A,)),
    ("np.ones(3) * x", lambda x: np.ones(3) * x, lambda x: np.ones(3) * x, (V,)),
    ("np.ones(3, f32) + x", lambda x: np.ones(3, np.float32) + x, lambda x: np.ones(3, np.float32) + x, (V,)),
    ("comparisons", lambda x: [x < 0, x <= 0, x > 0, x >= 0, x == 0.5, x != 0.5],
     lambda x: [x < 0, x <= 0, x > 0, x >= 0, x == 0.5, x != 0.5], (V,)),
    ("x.mean(), x.max(1), x.argmin()", lambda x: [x.mean(), x.max(axis=1), x.argmin(), x.std()],
     lambda x: [x.mean(), x.max(axis=1), x.argmin(), x.std()], (A,)),
    ("x.astype(int32)", lambda x: x.astype(np.int32), lambda x: x.astype(np.int32), (A,)),
    ("x.ravel(), x.transpose(1, 0)", lambda x: [x.ravel(), x.transpose(1, 0), x.swapaxes(0, 1)],
     lambda x: [x.ravel(), x.transpose(1, 0), x.swapaxes(0, 1)], (A,)),
    ("x.clip(-1, 1), x.prod()", lambda x: [x.clip(-1, 1), x.prod(), x.dot(V)],
     lambda x: [x.clip(-1, 1), x.prod(), x.dot(V)], (A,)),
    ("x.at[0].set(1.0)", lambda x: x.at[0].set(1.0), lambda x: _set_reference(x, 0, 1.0), (A,)),
    ("iteration", lambda x: [r * 2 for r in x], lambda x: [r * 2 for r in x], (A,)),
]


@pytest.mark.parametrize("what, f, reference, args", TRACER_METHODS, ids=[t[0] for t in TRACER_METHODS])
def test_tracer_methods_under_make_jaxpr(what, f, reference, args):
    closed = ft.make_jaxpr(f)(*args)
    outs = eval_closed_jaxpr(closed, *args)
    want, _ = tree_flatten(reference(*args))
    assert len(outs) == len(want)
    for got, w in zip(outs, want):
        assert_same(got, w, what=what)
    jitted, _ = tree_flatten(ft.jit(f)(*args))
    assert len(jitted) == len(want)
    for got, w in zip(jitted, want):
        assert_same(got, w, what=f"jit of {what}")


def test_tracer_var_method_under_make_jaxpr():
    closed = ft.make_jaxpr(lambda x: x.var(axis=0))(A)
    assert_same(eval_closed_jaxpr(closed, A)[0], A.var(axis=0))


def test_tracer_attributes():
    seen = {}

    def f(x):
        seen.update(shape=x.shape, ndim=x.ndim, dtype=x.dtype, size=x.size, len=len(x))
        return x
    ft.make_jaxpr(f)(np.ones((2, 3), np.float32))
    assert seen == {"shape": (2, 3), "ndim": 2, "dtype": np.float32, "size": 6, "len": 2}


@pytest.mark.parametrize("name", ["sin", "exp", "tanh", "negative", "abs", "sqrt"])
def test_numpy_ufunc_on_a_tracer_is_the_ftrans_function(name):
    x = np.array([0.5, 1.0, 2.0], np.float32)
    via_numpy = ft.make_jaxpr(lambda x: getattr(np, name)(x))(x)
    via_fnp = ft.make_jaxpr(lambda x: getattr(fnp, name)(x))(x)
    assert str(via_numpy) == str(via_fnp)


def test_numpy_binary_ufunc_on_tracers():
    x = np.array([0.5, 1.0, 2.0])
    via_numpy = ft.make_jaxpr(lambda x, y: np.add(x, y))(x, x)
    via_fnp = ft.make_jaxpr(lambda x, y: fnp.add(x, y))(x, x)
    assert str(via_numpy) == str(via_fnp)


def test_ndarray_operator_tracer_defers_to_the_tracer():
    closed = ft.make_jaxpr(lambda x: np.ones(3) * x)(np.arange(3.0))
    assert [e.primitive.name for e in closed.eqns][-1] == "mul"
    assert closed.out_avals[0].shape == (3,) and closed.out_avals[0].dtype == F64


# -------------------- complex numbers (tests/test_complex.py has their derivatives) --------------------

_COMPLEX_PARTS = covers("real", "imag", "conj", "conjugate", "angle", "iscomplexobj", "isrealobj")
_COMPLEX_VALUES = [np.array([3 + 4j, -1 - 0j, complex(-0.0, 0.0), complex(np.inf, -2), complex(np.nan, 1)]),
                   np.array([1.5 - 2j, 0j], np.complex64), np.array([-2.0, 0.0, -0.0, 3.0]),
                   np.array([1, -2], np.int32), np.float32(-1.5), 2 - 1j, np.array([True, False])]


@pytest.mark.parametrize("name", _COMPLEX_PARTS)
@pytest.mark.parametrize("k", range(len(_COMPLEX_VALUES)))
def test_complex_parts_match_numpy(name, k):
    x = _COMPLEX_VALUES[k]
    with np.errstate(all="ignore"):
        want = getattr(np, name)(x)
    for fun in (getattr(fnp, name), ft.jit(getattr(fnp, name))) if not name.startswith("is") else [getattr(fnp, name)]:
        got = fun(x)
        if name.startswith("is"):
            assert got is want
            continue
        assert np.asarray(got).dtype == np.asarray(want).dtype, (name, x)
        np.testing.assert_array_equal(got, want)
        assert np.array_equal(np.signbit(np.real(got)), np.signbit(np.real(want)))


# -------------------- coverage of the shared names --------------------

def test_every_shared_function_is_covered():
    shared = {name for name in fnp.__all__
              if hasattr(np, name) and callable(getattr(fnp, name)) and not isinstance(getattr(fnp, name), type)}
    shared -= {"dtype"}
    from test_numpy_api import NO_ROW, ROWS as API_ROWS, STATIC_ROWS  # issue 16's functions are compared there
    shared -= {name.split(" (")[0] for name in API_ROWS} | set(STATIC_ROWS)
    shared -= {"partition", "argpartition"} & set(NO_ROW)  # (compared by their property: test_numpy_api.py)
    missing = sorted(shared - COVERED)
    assert not missing, f"ftrans.numpy functions with no NumPy comparison in tests/test_numpy.py: {missing}"


# -------------------- every public function on Python scalars --------------------

class _NumPyNames:
    """NumPy under ftrans.numpy's names, with references for the names NumPy lacks."""

    def __getattr__(self, name):
        return getattr(np, name)

    @staticmethod
    def logsumexp(a, axis=None, keepdims=False):
        a = np.asarray(a)
        a = a if a.dtype.kind == "f" else a.astype(np.float64)
        shift = np.max(a, axis=axis, keepdims=True)
        total = np.log(np.sum(np.exp(a - shift), axis=axis, keepdims=True)) + shift
        return total if keepdims else np.squeeze(total, axis=axis)

    @staticmethod
    def at(x):
        class _Ref:
            def __getitem__(self, index):
                def set(value):
                    out = np.array(x)
                    out[index] = value
                    return out

                def add(value):
                    out = np.array(x)
                    out[index] += value
                    return out
                return type("_Update", (), {"set": staticmethod(set), "add": staticmethod(add)})
        return _Ref()


NP = _NumPyNames()


@dataclasses.dataclass
class ScalarCall:
    """`call(module, *operands)` computes with fnp or NumPy (NP); the operands are drawn
    from Python floats, ints and bools. `static`: operands that must be concrete (shapes,
    sizes, arange's bounds), which jit closes over instead of tracing; `grad`: whether to
    differentiate with respect to each float operand (where the result is a float)."""
    call: Callable
    operands: int
    static: tuple = ()
    grad: bool = True


def _unary(name):
    return ScalarCall(lambda m, x: getattr(m, name)(x), 1)


def _binary(name):
    return ScalarCall(lambda m, x, y: getattr(m, name)(x, y), 2)


SCALAR_SWEEP = {name: _unary(name) for name in (
    "abs", "absolute", "arctan", "bitwise_not", "ceil", "cos", "cosh", "exp", "expm1", "floor", "invert", "log",
    "log1p", "logical_not", "negative", "reciprocal", "sign", "sin", "sinh", "sqrt", "square", "tan", "tanh",
    "array", "asarray", "zeros_like", "ones_like", "ravel", "squeeze", "transpose", "ndim", "shape", "size",
    "sum", "prod", "mean", "var", "std", "max", "min", "amax", "amin", "argmax", "argmin", "logsumexp",
    "conj", "conjugate", "angle")}
# the std of one value is sqrt(0), whose derivative is inf: its gradient is nan (as JAX's), where
# finite differences of the constant 0 give 0
SCALAR_SWEEP["std"].grad = False
SCALAR_SWEEP.update({name: _binary(name) for name in (
    "add", "subtract", "multiply", "divide", "true_divide", "floor_divide", "mod", "remainder", "power",
    "maximum", "minimum", "equal", "not_equal", "less", "less_equal", "greater", "greater_equal",
    "bitwise_and", "bitwise_or", "bitwise_xor", "logical_and", "logical_or", "logical_xor",
    "dot", "inner", "vdot", "outer", "matmul", "full_like")})
SCALAR_SWEEP.update({
    # numpy.real(3) is 3 itself (Python's int.real, True.real the int 1) and iscomplexobj a Python bool:
    # compared as arrays, of arrays (jit traces a Python bool as a bool array)
    **{name: ScalarCall(lambda m, x, name=name: m.asarray(getattr(m, name)(m.asarray(x))), 1)
       for name in ("real", "imag", "iscomplexobj", "isrealobj")},
    "where": ScalarCall(lambda m, c, x, y: m.where(c, x, y), 3),
    "clip": ScalarCall(lambda m, x, lo, hi: m.clip(x, lo, hi), 3),
    "tensordot": ScalarCall(lambda m, x, y: m.tensordot(x, y, 0), 2),
    "einsum": ScalarCall(lambda m, x, y: m.einsum(",->", x, y), 2),
    "einsum (sublists)": ScalarCall(lambda m, x, y: m.einsum(x, [], y, [], []), 2),
    "at": ScalarCall(lambda m, x, v: m.at(x)[()].set(v), 2),
    "at add": ScalarCall(lambda m, x, v: m.at(x)[()].add(v), 2),
    "take": ScalarCall(lambda m, x: m.take(x, 0), 1),
    "full": ScalarCall(lambda m, x: m.full((2,), x), 1),
    "broadcast_to": ScalarCall(lambda m, x: m.broadcast_to(x, (2, 1)), 1),
    "reshape": ScalarCall(lambda m, x: m.reshape(x, (1, 1)), 1),
    "expand_dims": ScalarCall(lambda m, x: m.expand_dims(x, 0), 1),
    "moveaxis": ScalarCall(lambda m, x: m.moveaxis(x, 0, 0), 1),
    "swapaxes": ScalarCall(lambda m, x: m.swapaxes(x, 0, 0), 1),
    "concatenate": ScalarCall(lambda m, x, y: m.concatenate([x, y]), 2),
    "concat": ScalarCall(lambda m, x, y: m.concat([x, y]), 2),
    "stack": ScalarCall(lambda m, x, y: m.stack([x, y]), 2),
    "split": ScalarCall(lambda m, x: m.split(x, 1), 1),
    "linspace": ScalarCall(lambda m, x, y: m.linspace(x, y, 5), 2),
    "linspace (retstep)": ScalarCall(lambda m, x, y: m.linspace(x, y, 4, endpoint=False, retstep=True)[0], 2),
    # what sets a shape is concrete; arange's start and step carry derivatives all the same
    "arange": ScalarCall(lambda m, x: m.arange(x), 1, static=(0,)),
    "arange (start, stop)": ScalarCall(lambda m, x, y: m.arange(x, y + 2), 2, static=(0, 1)),
    "arange (start, stop, step)": ScalarCall(lambda m, x, y, z: m.arange(x, y + 4, z), 3, static=(0, 1, 2)),
    "zeros": ScalarCall(lambda m, n: m.zeros(n), 1, static=(0,)),
    "ones": ScalarCall(lambda m, n: m.ones((n, 2)), 1, static=(0,)),
    "empty": ScalarCall(lambda m, n: m.empty(n).shape, 1, static=(0,)),  # NumPy's values are garbage
    "eye": ScalarCall(lambda m, n: m.eye(n), 1, static=(0,)),
    "eye (k)": ScalarCall(lambda m, k: m.eye(3, k=k), 1, static=(0,)),
    "identity": ScalarCall(lambda m, n: m.identity(n), 1, static=(0,)),
    "full (shape)": ScalarCall(lambda m, n: m.full(n, 1.5), 1, static=(0,)),
    "reshape (shape)": ScalarCall(lambda m, n: m.reshape(np.ones(3), n), 1, static=(0,)),
    "broadcast_to (shape)": ScalarCall(lambda m, n: m.broadcast_to(1.5, n), 1, static=(0,)),
    "linspace (num)": ScalarCall(lambda m, n: m.linspace(0.0, 1.0, n), 1, static=(0,)),
})
# names that are no function of arrays (dtypes, constants)
_NOT_FUNCTIONS = {"bool_", "dtype", "e", "float16", "float32", "float64", "inf", "int8", "int16", "int32", "int64",
                  "nan", "ndarray", "newaxis", "pi", "uint8", "uint16", "uint32", "uint64", "complex64", "complex128",
                  "fft", "linalg"}  # modules: tests/test_fft.py, tests/test_linalg.py
# issue 16's functions (tests/test_numpy_api.py has their rows on arrays)
SCALAR_SWEEP.update({name: _unary(name) for name in (
    "arcsin", "arccos", "arcsinh", "arccosh", "arctanh", "exp2", "log2", "log10", "rint", "trunc", "fix", "isnan",
    "isinf", "isfinite", "isposinf", "isneginf", "signbit", "nan_to_num", "round", "around", "cumsum", "cumprod",
    "cumulative_sum", "cumulative_prod", "cummax", "cummin", "nancumsum", "nancumprod", "all", "any",
    "count_nonzero", "nansum", "nanprod", "nanmean", "nanmax", "nanmin", "nanmedian", "median", "atleast_1d",
    "atleast_2d", "atleast_3d", "sort", "argsort", "diff",
    "ediff1d", "flip", "fliplr", "flipud", "rot90", "diag", "diagflat", "diagonal", "trace", "triu", "tril", "ravel",
    "meshgrid", "acos", "asin", "atan", "acosh", "asinh", "atanh", "deg2rad", "rad2deg", "degrees", "radians",
    "permute_dims")})
SCALAR_SWEEP.update({name: _binary(name) for name in (
    "arctan2", "hypot", "logaddexp", "logaddexp2", "fmod", "copysign", "heaviside", "isclose", "allclose",
    "array_equal", "array_equiv", "kron", "cross", "convolve", "correlate", "polyval", "append", "searchsorted",
    "digitize", "logspace", "atan2")})
SCALAR_SWEEP.update({
    **{name: ScalarCall(lambda m, x, y, name=name: getattr(m, name)([x, y]), 2)
       for name in ("vstack", "hstack", "dstack", "column_stack", "row_stack")},
    **{name: ScalarCall(lambda m, x, name=name: getattr(m, name)(x, 1), 1) for name in ("hsplit", "vsplit", "dsplit")},
    "quantile": ScalarCall(lambda m, x, q: m.quantile(x, m.multiply(q, 0.5)), 2),
    "percentile": ScalarCall(lambda m, x, q: m.percentile(x, m.multiply(q, 10)), 2),
    "interp": ScalarCall(lambda m, x, y, z: m.interp(x, [y, y + 1], [z, z * 2]), 3),
    "pad": ScalarCall(lambda m, x, y: m.pad(m.atleast_1d(x), 1, constant_values=y), 2),
    "take_along_axis": ScalarCall(lambda m, x: m.take_along_axis(m.atleast_1d(x), m.zeros(2, m.int64), -1), 1),
    "lexsort": ScalarCall(lambda m, x, y: m.lexsort((m.atleast_1d(x), m.atleast_1d(y))), 2),
    "select": ScalarCall(lambda m, c, x, y: m.select([m.asarray(c) > 1], [x], y), 3),
    "piecewise": ScalarCall(lambda m, x, y: m.piecewise(x, [m.asarray(x) > 1], [y, lambda v: v * 2]), 2),
    "tri": ScalarCall(lambda m, n: m.tri(3, k=int(n)), 1, static=(0,), grad=False),
    # the shapes of these results depend on the values: concrete under jit
    **{name: ScalarCall(lambda m, x, name=name: getattr(m, name)(x), 1, static=(0,))
       for name in ("nonzero", "flatnonzero", "argwhere", "unique", "bincount")},
    "tile": ScalarCall(lambda m, x: m.tile(x, 2), 1), "repeat": ScalarCall(lambda m, x: m.repeat(x, 3), 1),
    "roll": ScalarCall(lambda m, x: m.roll(x, 1), 1), "array_split": ScalarCall(lambda m, x: m.array_split(m.atleast_1d(x), 1), 1),
    "r_": ScalarCall(lambda m, x, y: m.r_[x, y], 2), "c_": ScalarCall(lambda m, x, y: m.c_[x, y], 2),
    "result_type": ScalarCall(lambda m, x, y: m.zeros((), m.result_type(x, y)), 2, static=(0, 1)),
    "promote_types": ScalarCall(lambda m, x, y: m.zeros((), m.promote_types(m.result_type(x), m.result_type(y))), 2,
                                static=(0, 1)),
    "finfo": ScalarCall(lambda m, x: m.asarray(m.finfo(m.result_type(x, 0.5)).eps), 1, static=(0,)),
    "iinfo": ScalarCall(lambda m, x: m.asarray(m.iinfo(m.result_type(x, 1)).max), 1, static=(0,)),
    "can_cast": ScalarCall(lambda m, x: m.asarray(m.can_cast(m.result_type(x), m.float32)), 1, static=(0,)),
    "issubdtype": ScalarCall(lambda m, x: m.asarray(m.issubdtype(m.result_type(x), m.floating)), 1, static=(0,)),
})
_NOT_FUNCTIONS |= {"complexfloating", "floating", "generic", "inexact", "integer", "number", "signedinteger",
                   "unsignedinteger"}
# this stop's functions (tests/test_numpy_api.py has their rows on arrays)
SCALAR_SWEEP.update({name: _unary(name) for name in (
    "cbrt", "fabs", "positive", "sinc", "copy", "nanvar", "nanstd", "nanargmax", "nanargmin",
    "average", "sort_complex", "iscomplex", "isreal")})
SCALAR_SWEEP.update({name: _binary(name) for name in ("fmax", "fmin", "float_power", "gcd", "lcm")})
SCALAR_SWEEP["nanstd"].grad = False  # (as std's: sqrt(0) of one value)
SCALAR_SWEEP.update({
    "modf": ScalarCall(lambda m, x: m.modf(x), 1),
    "divmod": ScalarCall(lambda m, x, y: m.stack(m.divmod(x, y)), 2),  # (a tuple compares NaN with ==)
    "isscalar": ScalarCall(lambda m, x: m.asarray(m.isscalar(x)), 1, static=(0,)),
    "empty_like": ScalarCall(lambda m, x: m.zeros_like(m.empty_like(x)), 1, grad=False),  # (NumPy's values: garbage)
    "astype": ScalarCall(lambda m, x: m.astype(m.asarray(x), m.float32), 1),
    "broadcast_arrays": ScalarCall(lambda m, x, y: m.broadcast_arrays(x, y), 2),
    "broadcast_shapes": ScalarCall(lambda m, n: m.zeros(m.broadcast_shapes((int(n),), (1,))), 1, static=(0,),
                                   grad=False),
    "matrix_transpose": ScalarCall(lambda m, x, y: m.matrix_transpose(m.reshape(m.stack([x, y]), (1, 2))), 2),
    "vecdot": ScalarCall(lambda m, x, y: m.vecdot(m.stack([x, y]), m.stack([y, x])), 2),
    "trapezoid": ScalarCall(lambda m, x, y: m.trapezoid(m.stack([x, y])), 2),
    "cov": ScalarCall(lambda m, x, y, z: m.cov(m.stack([x, y, z])), 3),
    "corrcoef": ScalarCall(lambda m, x, y, z: m.corrcoef(m.stack([x, y, z]), m.stack([y, z, x])), 3),
    "block": ScalarCall(lambda m, x, y: m.block([x, y]), 2),
    "geomspace": ScalarCall(lambda m, x, y: m.geomspace(m.add(m.abs(x), 1), m.add(m.abs(y), 2), 4), 2),
    # (arrays made by stack only, and nonzero leading coefficients: NumPy's poly1d trims zeros)
    **{name: ScalarCall(lambda m, x, y, name=name: getattr(m, name)(m.stack([x, y]), m.stack([y, x, y])), 2)
       for name in ("polyadd", "polysub")},
    "polymul": ScalarCall(lambda m, x, y: m.polymul(m.stack([x, y]), m.stack([x, y])), 2),  # (x is never 0 here)
    "polyder": ScalarCall(lambda m, x, y: m.polyder(m.stack([x, y, x])), 2),
    "polyint": ScalarCall(lambda m, x, y: m.polyint(m.stack([x, y])), 2),
    "vander": ScalarCall(lambda m, x, y: m.vander(m.stack([x, y]), 3), 2),
    "unwrap": ScalarCall(lambda m, x, y: m.unwrap(m.stack([x, y, x])), 2),
    "partition": ScalarCall(lambda m, x, y: m.sort(m.partition(m.stack([x, y]), 1)), 2),
    "argpartition": ScalarCall(lambda m, x, y: m.argsort(m.argpartition(m.stack([x, y, y]), 1)), 2, grad=False),
    "resize": ScalarCall(lambda m, x: m.resize(x, (3,)), 1),
    "fill_diagonal": ScalarCall(lambda m, x: _filled(m, x), 1),
    "ix_": ScalarCall(lambda m, n: m.ix_(m.arange(int(n)), m.arange(2))[0], 1, static=(0,), grad=False),
    "fromfunction": ScalarCall(lambda m, x: m.fromfunction(lambda i: m.multiply(i, x), (3,)), 1),
    "apply_along_axis": ScalarCall(lambda m, x: m.apply_along_axis(lambda v: m.multiply(v, 2), 0, m.atleast_1d(x)), 1),
    "apply_over_axes": ScalarCall(lambda m, x: m.apply_over_axes(m.sum, m.atleast_2d(x), [0]), 1),
    **{name: ScalarCall(lambda m, n, name=name: getattr(m, name)(int(n)), 1, static=(0,), grad=False)
       for name in ("hamming", "hanning", "bartlett", "blackman")},
    **{name: ScalarCall(lambda m, n, name=name: getattr(m, name)(int(n) + 1)[0], 1, static=(0,), grad=False)
       for name in ("tril_indices", "triu_indices", "diag_indices")},
    "indices": ScalarCall(lambda m, n: m.indices((int(n) + 1, 2)), 1, static=(0,), grad=False),
    **{name: ScalarCall(lambda m, x, name=name: getattr(m, name)(m.multiply(m.ones((2, 2)), x))[0], 1, grad=False)
       for name in ("tril_indices_from", "triu_indices_from", "diag_indices_from")},
    "unravel_index": ScalarCall(lambda m, n: m.unravel_index(int(n), (3, 4))[0], 1, static=(0,), grad=False),
    "ravel_multi_index": ScalarCall(lambda m, n: m.ravel_multi_index((int(n) % 2, 1), (2, 3)), 1, static=(0,),
                                    grad=False),
})


def _filled(m, x):
    if m is not fnp:  # NumPy's fills in place
        a = np.zeros((2, 2), np.result_type(x, 0.5))
        np.fill_diagonal(a, x)
        return a
    return m.fill_diagonal(m.zeros((2, 2), m.result_type(x, 0.5)), x, inplace=False)
_NumPyNames.cummax = staticmethod(lambda x: np.maximum.accumulate(np.ravel(x)))
_NumPyNames.cummin = staticmethod(lambda x: np.minimum.accumulate(np.ravel(x)))
# Python scalars (weak under NEP 50), and a NumPy scalar beside them (strong)
_SCALAR_VALUES = {"float": (0.7, 1.3, 0.4), "int": (3, 2, 5), "bool": (True, False, True),
                  "float32": (np.float32(0.7), np.float32(1.3), np.float32(0.4))}


# NumPy functions that take their operands with asarray, making a Python scalar strong
# (np.dot(0.7, np.float32(1.3)) is float64); ftrans keeps it weak in every function, as
# fnp.multiply does (see test_products_keep_python_scalars_weak): the reference is NumPy's
# on the operands promoted as a ufunc promotes them
_ASARRAY_FUNCTIONS = {"dot", "inner", "outer", "vdot", "tensordot", "einsum", "stack", "concatenate", "concat", "clip",
                      "append", "vstack", "hstack", "dstack", "column_stack", "row_stack", "kron", "polyval",
                      "convolve", "correlate",
                      # this stop's, and the sweep's calls of them, which stack their operands
                      "cov", "corrcoef", "block", "matrix_transpose", "vecdot", "trapezoid", "polyadd", "polysub",
                      "polymul", "polyder", "polyint", "vander", "unwrap", "partition", "argpartition", "divmod"}


def test_the_scalar_sweep_covers_every_public_function():
    names = {name.split(" ")[0] for name in SCALAR_SWEEP}
    missing = sorted(set(fnp.__all__) - _NOT_FUNCTIONS - names)
    assert not missing, f"ftrans.numpy functions missing from SCALAR_SWEEP: {missing}"


def _results(out):
    return list(out) if isinstance(out, list) else [out]


def _assert_like(got, want, what):
    if isinstance(want, (int, tuple)) and not isinstance(want, (bool, np.generic)):  # ndim, shape, size
        assert type(got) is type(want) and got == want, f"{what}: {got!r}, NumPy {want!r}"
        return
    got, want = _results(got), _results(want)
    assert len(got) == len(want), f"{what}: {len(got)} results, NumPy {len(want)}"
    for g, w in zip(got, want):
        assert_same(g, w, what=what)


def _finite_difference(entry, values, position):
    """d/dx sum(NumPy's result) at operand `position`, by central differences."""
    def total(x):
        operands = list(values)
        operands[position] = x
        with quiet():
            return sum(np.sum(np.asarray(r, dtype=np.float64)) for r in _results(entry.call(NP, *operands)))
    h = 1e-6
    return (total(values[position] + h) - total(values[position] - h)) / (2 * h)


@pytest.mark.parametrize("name", sorted(SCALAR_SWEEP))
def test_every_public_function_takes_python_scalars(name):
    """On Python floats, ints and bools, and NumPy float32 scalars (every mix of them): NumPy's value and dtype
    (NEP 50), or an error of NumPy's class where NumPy refuses; ft.jit equals eager; the
    gradient with respect to each float operand equals finite differences, eagerly and
    under jit (and grad of jit)."""
    entry = SCALAR_SWEEP[name]
    for kinds in itertools.product(_SCALAR_VALUES, repeat=entry.operands):
        values = [_SCALAR_VALUES[kind][i] for i, kind in enumerate(kinds)]
        what = f"{name}{tuple(values)}"
        reference_values = values
        if name.split(" ")[0] in _ASARRAY_FUNCTIONS:
            reference_values = [np.asarray(v, np.result_type(*values)) for v in values]
        with quiet():
            try:
                want = entry.call(NP, *reference_values)
            except Exception as error:  # noqa: BLE001 (NumPy's own split raises AttributeError on a scalar)
                try:
                    family = _error_family(error)
                except StopIteration:
                    family = (TypeError, ValueError, IndexError)
                with pytest.raises(family):
                    entry.call(fnp, *values)
                continue
            got = entry.call(fnp, *values)
        _assert_like(got, want, what)
        traced = [i for i in range(entry.operands) if i not in entry.static]

        def on_traced(*operands, values=values, traced=traced):
            full = list(values)
            for i, x in zip(traced, operands):
                full[i] = x
            return entry.call(fnp, *full)
        with quiet():
            jitted = ft.jit(on_traced)(*[values[i] for i in traced])
        if isinstance(got, (int, tuple)) and not isinstance(got, (bool, np.generic)):
            continue  # ndim, shape, size: Python values, not arrays
        for g, e in zip(_results(jitted), _results(got)):
            assert_same(g, e, JIT_RTOL.get(e.dtype), what=f"jit of {what}")
        if not entry.grad or any(r.dtype != F64 or not np.all(np.isfinite(r)) for r in _results(got)) \
                or any(isinstance(v, np.generic) for v in values):
            continue  # no derivative, or none that finite differences (in float64) tell
        for position in [i for i, v in enumerate(values) if type(v) is float]:
            def total(x, values=values, position=position):
                operands = list(values)
                operands[position] = x
                return fnp.sum(fnp.stack([fnp.sum(r) for r in _results(entry.call(fnp, *operands))]))
            with quiet():
                want_grad = _finite_difference(entry, values, position)
                eager = ft.grad(total)(values[position])
                assert_same(eager, np.float64(want_grad), rtol=1e-6, atol=1e-6, what=f"grad of {what} at {position}")
                if position in entry.static:
                    continue
                assert_same(ft.jit(ft.grad(total))(values[position]), eager, JIT_RTOL[F64], atol=1e-12,
                            what=f"jit of grad of {what} at {position}")
                assert_same(ft.grad(ft.jit(total))(values[position]), eager, JIT_RTOL[F64], atol=1e-12,
                            what=f"grad of jit of {what} at {position}")


# -------------------- creation functions carry derivatives --------------------

def test_linspace_carries_the_derivatives_of_start_and_stop():
    want = np.array([1.0, 0.75, 0.5, 0.25, 0.0])
    f = lambda x: fnp.linspace(x, 3.4, 5)  # noqa: E731
    for transformed in (ft.jacrev(f), ft.jacfwd(f), ft.jit(ft.jacrev(f)), ft.jacrev(ft.jit(f))):
        assert_same(transformed(1.2), want)
    assert_same(ft.jacrev(lambda y: fnp.linspace(1.2, y, 5))(3.4), 1.0 - want)
    assert_same(ft.jacrev(lambda y: fnp.linspace(1.2, y, 4, endpoint=False))(3.4), np.arange(4) / 4)
    starts, stops = np.array([0.0, 1.0]), np.array([2.0, 5.0])
    assert_same(ft.vmap(lambda s: fnp.linspace(s, 3.0, 3))(starts), np.linspace(starts, 3.0, 3, axis=1))
    ft.check_grads(lambda s, e: fnp.linspace(s, e, 4, axis=-1), (starts, stops), order=2)


def test_arange_carries_start_and_step_derivatives_and_a_traced_length_is_refused():
    assert_same(ft.grad(lambda x: fnp.sum(fnp.arange(x, 5.0, 0.5)))(1.2), np.array(8.0))  # 8 values
    assert_same(ft.grad(lambda step: fnp.sum(fnp.arange(1.0, 5.0, step)))(0.5), np.array(28.0))  # sum of i
    assert_same(ft.grad(lambda stop: fnp.sum(fnp.arange(1.0, stop)))(4.5), np.array(0.0))  # sets the length only
    for argument, f in [("stop", lambda x: fnp.arange(x)), ("start", lambda x: fnp.arange(x, 4.0)),
                        ("step", lambda x: fnp.arange(0.0, 4.0, x))]:
        with pytest.raises(ft.ConcretizationError, match=f"arange: {argument} is a traced value"):
            ft.jit(f)(2.0)
    assert_same(ft.jit(lambda x: fnp.arange(3.0) * x)(2.0), np.arange(3.0) * 2.0)  # concrete bounds: fine


@pytest.mark.parametrize("name, want", [("sum", 1.0), ("max", 1.0), ("min", 1.0), ("mean", 1.0), ("prod", 1.0),
                                        ("amax", 1.0), ("amin", 1.0), ("var", 0.0), ("std", np.nan)])
def test_grad_of_a_reduction_of_a_python_float(name, want):
    """std of one value is sqrt(0): its derivative is nan, as JAX's."""
    fun = getattr(fnp, name)
    with quiet():
        assert_same(ft.grad(fun)(3.5), np.array(want))
        assert_same(ft.jit(ft.grad(fun))(3.5), np.array(want))


def test_tensordot_of_a_python_float_being_differentiated():
    assert_same(ft.grad(lambda x: fnp.tensordot(x, 2.0, 0))(1.5), np.array(2.0))
    assert_same(ft.grad(lambda x: fnp.sum(fnp.tensordot(np.arange(3.0), x, 0)))(1.5), np.array(3.0))
    assert_same(ft.grad(lambda x: fnp.tensordot(x, np.float64(2.0), axes=0))(np.float64(1.5)), np.array(2.0))


_A, _B, _C = np.arange(6.0).reshape(2, 3), np.arange(12.0).reshape(3, 4), np.arange(24.0).reshape(2, 3, 4)
EINSUM_SUBLISTS = covers(*[("einsum", args) for args in [
    (_A, [0, 1], [1, 0]), (_A, [0, 1], _B, [1, 2]), (_A, [0, 1], _B, [1, 2], [0, 2]), (_A, [0, 1], _B, [1, 2], [2]),
    (_C, [Ellipsis, 1], [1, Ellipsis]), (_C, [0, Ellipsis], _A, [0, 1], [Ellipsis, 1]), (1.5, [], 2.0, []),
    (np.eye(3), [0, 0]), (np.eye(3), [0, 0], [0]), (_A, [30, 3]), (_A, [0, 52]), (_A, [0, 1.5]), (_A, "ab"),
    (_A,), (np.ones(3, bool), [0], np.ones(3, bool), [0], [])]])


@pytest.mark.parametrize("name, args", EINSUM_SUBLISTS, ids=[str(i) for i in range(len(EINSUM_SUBLISTS))])
def test_einsum_sublist_form_like_numpy(name, args):
    check_like_numpy(fnp.einsum, np.einsum, *args, traced=[i for i, a in enumerate(args) if isinstance(a, np.ndarray)])


def test_einsum_sublist_form_is_differentiable():
    ft.check_grads(lambda a, b: fnp.einsum(a, [0, 1], b, [1, 2], [2, 0]), (_A, _B), order=1)


# -------------------- unsupported dtypes and bad shapes --------------------

UNSUPPORTED = {"complex256": np.array([1 + 1j], np.clongdouble), "object": np.array([None, 1]), "<U1": np.array(["a"]),
               "datetime64[D]": np.array(["2020-01-01"], dtype="datetime64[D]"),
               "timedelta64[s]": np.array([1], dtype="timedelta64[s]"), "|S1": np.array([b"a"]),
               "float128": np.array([1.0], np.longdouble)}
ON_UNSUPPORTED = {
    "multiply": lambda a: fnp.multiply(1.5, a), "add": lambda a: fnp.add(a, a), "sin": fnp.sin, "sum": fnp.sum,
    "mean": fnp.mean, "reshape": lambda a: fnp.reshape(a, (-1,)), "asarray": fnp.asarray, "array": fnp.array,
    "full": lambda a: fnp.full(2, a[:1].reshape(())), "zeros_like": fnp.zeros_like, "einsum": lambda a: fnp.einsum("i->", a),
    "dot": lambda a: fnp.dot(a, a), "clip": lambda a: fnp.clip(a, 0, 1), "where": lambda a: fnp.where(True, a, a),
    "concatenate": lambda a: fnp.concatenate([a, a]), "argmax": fnp.argmax, "take": lambda a: fnp.take(a, 0),
    "linspace": lambda a: fnp.linspace(a, a, 3), "arange": lambda a: fnp.arange(a[:1].reshape(())),
    "logistic": ft.lax.logistic, "under jit: sin": lambda a: ft.jit(fnp.sin)(a),
    "under vmap: sin": lambda a: ft.vmap(fnp.sin)(a),
}


@pytest.mark.parametrize("call", sorted(ON_UNSUPPORTED))
@pytest.mark.parametrize("dtype", sorted(UNSUPPORTED))
def test_unsupported_dtypes_are_a_type_error_naming_the_function_and_the_dtype(dtype, call):
    name = call.split(": ")[-1]
    with pytest.raises(TypeError, match=rf"^{name}: ftrans does not support .*{re.escape(dtype)}"):
        ON_UNSUPPORTED[call](UNSUPPORTED[dtype])


@pytest.mark.parametrize("call", [lambda: fnp.zeros(2, dtype=np.clongdouble),
                                  lambda: fnp.sum(np.ones(2), dtype=np.clongdouble),
                                  lambda: fnp.mean(np.ones(2), dtype=np.clongdouble), lambda: fnp.eye(2, dtype="M8[s]"),
                                  lambda: fnp.arange(3, dtype=np.clongdouble), lambda: fnp.asarray(1.0, dtype=object)])
def test_unsupported_dtype_arguments_are_type_errors(call):
    with pytest.raises(TypeError, match="ftrans does not support"):
        call()


@pytest.mark.parametrize("call", [lambda m: m.zeros(2, dtype=complex), lambda m: m.sum(m.ones(2), dtype=complex),
                                  lambda m: m.mean(m.ones(2), dtype=m.complex64), lambda m: m.multiply(1.5j, m.ones(2)),
                                  lambda m: m.sin(1j), lambda m: m.multiply(1.5, m.array([1 + 1j]))])
def test_complex_dtype_arguments_and_scalars_compute_as_numpy(call):
    got, want = call(fnp), call(np)
    assert np.asarray(got).dtype == np.asarray(want).dtype
    np.testing.assert_array_equal(got, want)


_V = np.ones(3)
SHAPE_ARGUMENTS = covers(*[
    ("zeros", ((2.5,),)), ("zeros", (2.5,)), ("zeros", ((True,),)), ("zeros", (True,)), ("zeros", ((-1,),)),
    ("zeros", ((2, -3),)), ("zeros", (np.float64(2),)), ("zeros", ("a",)), ("zeros", (None,)), ("zeros", ([[2]],)),
    ("zeros", (np.array([2, 3]),)), ("zeros", (np.array(2),)), ("zeros", (np.uint8(2),)), ("zeros", ([],)),
    ("ones", ((2, np.int32(3)),)), ("ones", ((2.0, 3),)), ("empty", ((2.5,),)), ("full", ((2.5,), 1.0)),
    ("full", (-2, 1.0)), ("eye", (2.5,)), ("eye", (True,)), ("eye", (-1,)), ("eye", (2, 2.0)), ("eye", (2, 3, 1.5)),
    ("identity", (2.0,)), ("identity", (np.int64(2),)), ("linspace", (0.0, 1.0, 2.5)), ("linspace", (0.0, 1.0, -1)),
    ("linspace", (0.0, 1.0, True)), ("linspace", (0.0, 1.0, np.int32(3))), ("reshape", (_V, (3.0,))),
    ("reshape", (_V, 3.0)), ("reshape", (_V, (True, 3))), ("reshape", (_V, (-1, -1))), ("reshape", (_V, (np.int8(3),))),
    ("broadcast_to", (1.0, (2.5,))), ("broadcast_to", (1.0, (-1,))), ("broadcast_to", (1.0, (np.int16(2), 3))),
    ("split", (_V, [1.5])), ("split", (_V, [1])), ("expand_dims", (_V, 1.5)),
    ("tensordot", (_V, _V, 1.5)),
])


@pytest.mark.parametrize("name, args", SHAPE_ARGUMENTS, ids=[f"{n}{a}" for n, a in SHAPE_ARGUMENTS])
def test_shape_arguments_are_checked_as_numpy_checks_them(name, args):
    """Integers (Python's, NumPy's, 0-d integer arrays) only, never floats or bools,
    none negative: NumPy's TypeError and ValueError, never a silent truncation."""
    check_like_numpy(getattr(fnp, name), getattr(np, name), *args, traced=())


def test_zeros_of_a_float_shape_is_a_type_error_naming_zeros():
    with pytest.raises(TypeError, match="zeros: each dimension of shape must be an integer, got 2.5"):
        fnp.zeros((2.5,))
    with pytest.raises(ValueError, match="zeros: negative dimensions are not allowed"):
        fnp.zeros((2, -1))
    with pytest.raises(TypeError, match="split: "):  # NumPy truncates 1.5 sections to 1
        fnp.split(_V, 1.5)


def test_lax_pad_checks_its_padding_config():
    assert_same(ft.lax.pad(np.ones(2), 0.0, [(1, 0, 1)]), np.array([0.0, 1.0, 0.0, 1.0]))
    for config in ([(1.5, 0, 0)], [(1, 0)], (1, 0, 0), [(1, 0, 0), (0, 0, 0)]):
        with pytest.raises(TypeError, match="pad: "):
            ft.lax.pad(np.ones(2), 0.0, config)


_BOUNDS = st.floats(-50, 50, allow_nan=False, allow_subnormal=False)


@given(start=_BOUNDS, stop=_BOUNDS, num=st.integers(0, 12), endpoint=st.booleans(),
       dtype=st.sampled_from([None, np.float32, np.int64]), arrays=st.booleans())
def test_staged_linspace_has_numpys_values_bit_for_bit(start, stop, num, endpoint, dtype, arrays):
    """Eagerly linspace is NumPy's own; staged (under jit) it is primitives, which must give the same bits."""
    if arrays:
        start, stop = np.array([start, 1.0], np.float32), np.array([stop, -3.0], np.float32)
    want = np.linspace(start, stop, num, endpoint=endpoint, retstep=True, dtype=dtype)
    got = ft.jit(lambda s, e: fnp.linspace(s, e, num, endpoint=endpoint, retstep=True, dtype=dtype))(start, stop)
    assert_same(got[0], want[0], rtol=0)
    assert_same(got[1], want[1], rtol=0)


@given(start=_BOUNDS, size=st.integers(0, 20), step=st.floats(0.01, 5), sign=st.sampled_from([1, -1]),
       integers=st.booleans())
def test_staged_arange_has_numpys_values_bit_for_bit(start, size, step, sign, integers):
    step *= sign
    if integers:
        start, step = int(start), int(step) or sign
    stop = start + step * size
    want = np.arange(start, stop, step)
    assert_same(ft.jit(lambda: fnp.arange(start, stop, step))(), want, rtol=0)  # staged, not NumPy's


@pytest.mark.parametrize("name", ["bool_", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
                                  "float16", "float32", "float64", "complex64", "complex128"])
def test_scalar_types_are_dtypes_and_convert_traced_values(name):
    """As jnp.float32: a dtype wherever NumPy takes one, and a conversion that works under jit and grad."""
    ours, numpy_type = getattr(fnp, name), getattr(np, name)
    assert np.dtype(ours) == np.dtype(numpy_type) and np.zeros(2, ours).dtype == numpy_type
    assert fnp.ones(2, dtype=ours).dtype == numpy_type and np.ones(1, numpy_type).dtype == ours
    assert isinstance(numpy_type(1), ours) and not isinstance(1.5, ours)
    x = np.array([0.0, 1.0, 2.5])
    want = x.astype(numpy_type)
    for got in (ours(x), ft.jit(ours)(x)):
        assert got.dtype == numpy_type
        np.testing.assert_array_equal(got, want)
    if np.dtype(numpy_type).kind == "f":
        np.testing.assert_array_equal(ft.grad(lambda v: fnp.sum(ours(v) * 3).astype(float))(x), [3.0] * 3)


def test_size_along_an_axis_like_numpy():
    x = np.ones((3, 4, 5))
    for axis in (None, 0, 1, -1):
        assert fnp.size(x, axis) == np.size(x, axis)
    assert ft.jit(lambda v: v * fnp.size(v, 1))(x)[0, 0, 0] == 4
    with pytest.raises(np.exceptions.AxisError):
        fnp.size(x, 3)
