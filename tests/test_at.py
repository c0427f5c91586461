"""JAX's `x.at[i].set(v)` on every array ftrans hands out, and the ndarray
subclass that carries it (ir.core.Array): wherever a JAX user writes the idiom
it works, with JAX's methods and keywords, and results stay NumPy arrays that
behave as NumPy's."""
from __future__ import annotations

import copy
import math
import pickle

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import ftrans as ft
import ftrans.numpy as fnp
from conftest import jit_for
from ir.core import Array, float0

X = np.arange(12.0).reshape(3, 4) - 5.0


def assert_array(got, want):
    """`got` is an Array (so a numpy.ndarray) equal to `want` in shape, dtype and values."""
    want = np.asarray(want)
    assert type(got) is Array and isinstance(got, np.ndarray), type(got)
    assert (got.shape, got.dtype) == (want.shape, want.dtype), (got.shape, got.dtype, want.shape, want.dtype)
    np.testing.assert_array_equal(got, want)


# -------------------- the reproducer --------------------

def test_at_works_on_arrays_made_by_creation_functions_eagerly_under_grad_and_under_vmap():
    assert_array(fnp.zeros(3).at[1].set(2.0), [0.0, 2.0, 0.0])

    # inside eager grad the zeros are a constant, computed at once: an Array all the same
    def f(v):
        return fnp.sum(fnp.zeros(3).at[1].set(v) ** 2 + fnp.ones(3).at[0].add(v))
    assert_array(ft.grad(f)(3.0), np.float64(7.0))  # d/dv (v**2 + 3 + v) = 2v + 1

    # under vmap the zeros do not depend on the batch: computed once, unbatched
    def g(v):
        return fnp.zeros(3).at[1].set(v).at[2].multiply(v)
    values = np.array([1.0, 2.0, -3.0])
    assert_array(ft.vmap(g)(values), np.stack([g(v) for v in values]))
    assert_array(ft.jit(g)(2.0), g(2.0))


def test_at_inside_every_transformation_on_arrays_made_inside_the_function():
    def f(v):
        z = fnp.zeros(4).at[np.array([0, 0, 3])].add(1.0)  # a constant: no tracer involved
        return fnp.sum(z.at[1].set(v) * v)
    x, df = 1.5, 3.0 + 2 * 1.5  # f(v) = (2 + v + 0 + 1) v
    assert_array(ft.grad(f)(x), np.float64(df))
    assert_array(ft.jvp(f, (x,), (1.0,))[1], np.float64(df))
    out, f_jvp = ft.linearize(f, x)
    assert_array(f_jvp(1.0), np.float64(df))
    out, f_vjp = ft.vjp(f, x)
    assert_array(f_vjp(1.0)[0], np.float64(df))
    assert_array(ft.jit(ft.grad(f))(x), np.float64(df))
    assert_array(ft.vmap(ft.grad(f))(np.array([1.0, 2.0])), np.array([5.0, 7.0]))
    assert_array(ft.grad(ft.grad(f))(x), np.float64(2.0))


# -------------------- every kind of result is an Array --------------------

_V = np.array([0.5, 1.0, 2.0])
RESULTS = {
    "eager fnp": lambda: fnp.sin(_V),
    "eager reduction": lambda: fnp.sum(_V),
    "reshape to its own shape": lambda: fnp.reshape(_V, (3,)),
    "zeros": lambda: fnp.zeros(3), "ones": lambda: fnp.ones((2, 2)), "full": lambda: fnp.full(3, 2.0),
    "empty": lambda: fnp.empty(2), "arange": lambda: fnp.arange(4), "linspace": lambda: fnp.linspace(0, 1, 3),
    "eye": lambda: fnp.eye(2), "identity": lambda: fnp.identity(2), "zeros_like": lambda: fnp.zeros_like(_V),
    "ones_like": lambda: fnp.ones_like(_V), "full_like": lambda: fnp.full_like(_V, 3.0),
    "asarray": lambda: fnp.asarray(_V), "array": lambda: fnp.array(_V), "asarray of a list": lambda: fnp.asarray([1, 2]),
    "grad": lambda: ft.grad(lambda x: fnp.sum(x ** 2))(_V),
    "value_and_grad": lambda: ft.value_and_grad(lambda x: fnp.sum(x ** 2))(_V)[0],
    "vjp output": lambda: ft.vjp(fnp.sin, _V)[0],
    "vjp cotangent": lambda: ft.vjp(fnp.sin, _V)[1](_V)[0],
    "jvp output": lambda: ft.jvp(fnp.sin, (_V,), (_V,))[0],
    "jvp tangent": lambda: ft.jvp(fnp.sin, (_V,), (_V,))[1],
    "jvp zero tangent": lambda: ft.jvp(lambda x: fnp.zeros(3), (_V,), (_V,))[1],
    "linearize": lambda: ft.linearize(fnp.sin, _V)[1](_V),
    "vmap": lambda: ft.vmap(lambda x: x * 2.0)(_V),
    "jacfwd": lambda: ft.jacfwd(fnp.sin)(_V), "jacrev": lambda: ft.jacrev(fnp.sin)(_V),
    "hessian": lambda: ft.hessian(lambda x: fnp.sum(x ** 3))(_V),
    "jit": lambda: ft.jit(lambda x: x * 2.0)(_V),
    "jit returning its input": lambda: ft.jit(lambda x: x)(_V),
    "jit of a scalar": lambda: ft.jit(fnp.sum)(_V),
    "jit, large": lambda: ft.jit(lambda x: fnp.tanh(x) * 2.0 + 1.0)(np.ones(10 ** 4)),
    "lax": lambda: ft.lax.logistic(_V),
    "device_put to the CPU": lambda: ft.device_put(_V, "cpu"),
    "an operator on a result": lambda: 2.0 * fnp.sin(_V) + 1.0,
    "a comparison of results": lambda: fnp.sin(_V) > 0.5,
    "a view of a result": lambda: fnp.zeros((3, 4))[1:, ::2].T,
    "a copy of a result": lambda: fnp.zeros(3).copy(),
}


@pytest.mark.parametrize("name", sorted(RESULTS))
def test_every_kind_of_result_is_an_array_with_at(name):
    result = RESULTS[name]()
    assert type(result) is Array and isinstance(result, np.ndarray)
    before = np.array(result)
    index = (0,) * result.ndim
    updated = result.at[index].set(42)
    want = before.copy()
    want[index] = 42
    assert_array(updated, want)
    np.testing.assert_array_equal(result, before)  # the result itself is untouched


def test_float0_cotangents_are_arrays_too():
    float0_cotangent = ft.vjp(lambda x, i: x * i, _V, np.arange(3))[1](_V)[1]
    assert type(float0_cotangent) is Array and float0_cotangent.dtype == float0


def test_results_inside_a_grad_tape_that_leave_it_are_arrays():
    seen = {}

    def f(x):
        seen["mask"] = x > 1.0  # a zero-tangent output of a tracked operation leaves the tape
        seen["constant"] = fnp.cos(np.ones(2))
        return fnp.sum(x ** 2)
    ft.grad(f)(_V)
    assert type(seen["mask"]) is Array and type(seen["constant"]) is Array


# -------------------- NumPy's behaviour is unchanged --------------------

PRINTED = [np.arange(3.0), np.float32(2.5) * np.ones((2, 2), np.float32), np.array(3.0), np.zeros((0, 2)),
           np.arange(5, dtype=np.int32), np.array([True, False]), np.linspace(0, 1, 2000)]


@pytest.mark.parametrize("value", PRINTED, ids=lambda v: f"{v.dtype}{list(v.shape)}")
def test_repr_and_str_print_as_numpy(value):
    result = fnp.asarray(value)
    assert type(result) is Array
    assert repr(result) == repr(value) and str(result) == str(value)
    assert repr([result]) == repr([value])


@pytest.mark.parametrize("value", PRINTED, ids=lambda v: f"{v.dtype}{list(v.shape)}")
def test_pickle_and_copy_round_trip(value):
    result = fnp.asarray(value)
    for again in (pickle.loads(pickle.dumps(result)), copy.copy(result), copy.deepcopy(result)):
        assert_array(again, value)
        assert not np.shares_memory(again, result)


def test_numpy_functions_take_results_and_give_plain_ndarrays():
    x = fnp.asarray(np.array([[2.0, 1.0], [1.0, 3.0]]))
    plain = np.asarray(x)
    assert type(plain) is np.ndarray and np.shares_memory(plain, x)
    for got, want in [(np.sin(x), np.sin(plain)), (np.add(x, 1), plain + 1), (np.linalg.inv(x), np.linalg.inv(plain)),
                      (np.concatenate([x, x]), np.concatenate([plain, plain])), (x.sum(axis=0), plain.sum(axis=0)),
                      (np.where(x > 1.5, x, 0.0), np.where(plain > 1.5, plain, 0.0))]:
        assert type(got) is np.ndarray
        np.testing.assert_array_equal(got, want)
    assert type(x.sum()) is np.float64 and x.sum() == plain.sum()


def test_operators_keep_the_type_with_numpy_values():
    x = fnp.asarray(np.array([1.5, -2.0, 4.0], np.float32))
    plain = np.asarray(x)
    cases = [(x + 1, plain + 1), (1 + x, 1 + plain), (x * x, plain * plain), (2 ** x, 2 ** plain), (-x, -plain),
             (abs(x), abs(plain)), (x // 1.5, plain // 1.5), (x % 1.5, plain % 1.5), (x == x, plain == plain),
             (plain - x, plain - plain), (x @ np.eye(3, dtype=np.float32), plain @ np.eye(3, dtype=np.float32)),
             (fnp.arange(3) & 1, np.arange(3) & 1), (~fnp.asarray(np.array([True])), ~np.array([True]))]
    for got, want in cases:
        assert_array(got, want)
    quotient, remainder = divmod(x, 1.5)
    assert_array(quotient, plain // 1.5) and assert_array(remainder, plain % 1.5)
    scalar = fnp.asarray(2.0) * 3  # NumPy gives a scalar for 0-d operands: so does an Array
    assert type(scalar) is np.float64 and scalar == 6.0
    same = x
    x += 1  # in place, as NumPy: x stays the same Array
    assert x is same and type(x) is Array and x[0] == 2.5
    buffer = fnp.zeros(3)
    assert np.multiply(plain, 2.0, out=buffer) is buffer  # a ufunc returns its out= as it is


def test_a_result_beside_a_traced_value_defers_to_it():
    # Array * tracer must reach the tracer (its derivative), not make an object array
    # d/dv sum(1 v + 3 v) over 3 elements
    assert_array(ft.grad(lambda v: fnp.sum(fnp.ones(3) * v + fnp.arange(3.0) @ fnp.ones(3) * v))(2.0), np.float64(12.0))
    assert_array(ft.jit(lambda v: fnp.zeros(2) - v)(1.0), [-1.0, -1.0])


# -------------------- .at semantics, against NumPy --------------------

DTYPES = [np.float64, np.float32, np.int64]
METHODS = ["set", "add", "subtract", "multiply", "divide", "power", "min", "max", "get"]


@st.composite
def _indexed_arrays(draw):
    """(x, an index into it: ints, negative ones, slices, Ellipsis, None, integer arrays,
    repeated entries included, values for the updated elements)."""
    dtype = draw(st.sampled_from(DTYPES))
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4))
    x = np.asarray(draw(hnp.arrays(dtype, shape, elements=st.integers(-4, 4))), dtype)
    rows = hnp.arrays(np.int64, draw(st.integers(0, 4)), elements=st.integers(-shape[0], shape[0] - 1))
    index = draw(st.one_of(
        hnp.basic_indices(shape, allow_newaxis=True, allow_ellipsis=True),
        hnp.integer_array_indices(shape, result_shape=hnp.array_shapes(min_dims=0, max_dims=2, max_side=4)),
        # an index array beside a slice
        st.tuples(rows, st.sampled_from([slice(None), slice(None, None, -1), slice(1, None, 2)]))
        if len(shape) > 1 else rows))
    selected = np.shape(x[index])
    values = np.asarray(draw(hnp.arrays(dtype, draw(st.sampled_from([selected, selected[-1:], ()]))
                                         , elements=st.integers(1, 3))), dtype)
    return x, index, values


def _numpy_at(x, index, method, values):
    """The NumPy reference: every update at a repeated position applies (np.ufunc.at on
    the flat positions NumPy's own indexing selects); divide and power as JAX defines
    them, x over (or to the power of) ones with the updates multiplied in."""
    if method == "get":
        return x[index]
    positions = np.arange(x.size).reshape(x.shape)[index]
    updates = np.broadcast_to(values, positions.shape).ravel()
    flat = x.ravel().copy()
    if method in ("divide", "power"):
        factors = np.ones_like(flat)
        np.multiply.at(factors, positions.ravel(), updates)
        return np.true_divide(x, factors.reshape(x.shape)) if method == "divide" else x ** factors.reshape(x.shape)
    ufunc = {"set": None, "add": np.add, "subtract": np.subtract, "multiply": np.multiply,
             "min": np.minimum, "max": np.maximum}[method]
    if ufunc is None:
        flat[positions.ravel()] = updates
    else:
        ufunc.at(flat, positions.ravel(), updates)
    return flat.reshape(x.shape)


def _call(array, index, method, values, **kwargs):
    """array.at[index].method(values, **kwargs), on any array (fnp.at gives NumPy's an `.at`)."""
    ref = (array.at if isinstance(array, Array) else fnp.at(array))[index]
    return ref.get(**kwargs) if method == "get" else getattr(ref, method)(values, **kwargs)


def _repeats(x, index):
    positions = np.arange(x.size).reshape(x.shape)[index].ravel()
    return len(np.unique(positions)) < len(positions)


@pytest.mark.parametrize("method", METHODS)
@given(case=_indexed_arrays())
def test_at_matches_numpy(method, case):
    x, index, values = case
    if method == "set" and _repeats(x, index):
        return  # which of several sets wins is unspecified (as in JAX); tests/test_numpy.py checks it is one of them
    with np.errstate(over="ignore"):  # repeated exponents multiply: powers may overflow, alike in both
        _check_at_matches_numpy(x, index, method, values)


def _check_at_matches_numpy(x, index, method, values):
    want = _numpy_at(x, index, method, values)
    before = x.copy()
    array = fnp.asarray(x)
    got = _call(array, index, method, values)
    np.testing.assert_array_equal(x, before)  # never written into
    assert type(got) is Array and (got.shape, got.dtype) == (want.shape, want.dtype)
    np.testing.assert_allclose(got, want, rtol=1e-6 if x.dtype == np.float32 else 1e-12)
    # the same on a traced x (jit: every method staged) and on a NumPy array through fnp.at
    jitted = ft.jit(lambda a, v: _call(a, index, method, v))(x, values)
    np.testing.assert_allclose(jitted, got, rtol=1e-6 if x.dtype == np.float32 else 1e-12)
    np.testing.assert_array_equal(_call(x, index, method, values), got)
    # the keywords JAX takes, as promises that change nothing here
    hinted = _call(array, index, method, values, indices_are_sorted=True, unique_indices=True)
    np.testing.assert_array_equal(hinted, got)


@pytest.mark.parametrize("method", METHODS)
def test_at_under_vmap_equals_a_loop(method, jit_backend):
    xs = np.arange(12.0).reshape(3, 4) / 4 + 0.5
    vs = np.array([[1.5, 2.0], [0.5, 3.0], [2.5, 1.0]])
    index = np.array([1, -1])

    def f(x, v):
        return _call(x, index, method, v)
    want = np.stack([f(x, v) for x, v in zip(xs, vs)])
    np.testing.assert_allclose(ft.vmap(f)(xs, vs), want, rtol=1e-12)
    np.testing.assert_allclose(jit_for(ft.vmap(f), jit_backend)(xs, vs), want, rtol=1e-12)


@pytest.mark.parametrize("method", METHODS)
def test_derivatives_of_at_match_finite_differences(method):
    x = np.array([0.7, 1.3, 2.1, 0.4])
    index = np.array([0, 2, 0])  # a repeated position
    values = np.array([1.9, 0.6, 1.1])  # no ties with x: min and max are smooth here

    def f(x, v):
        return fnp.sum(fnp.sin(_call(x, index, method, v)))
    ft.check_grads(lambda a: fnp.sum(fnp.sin(a.at[index].get())), (x,), order=2)
    if method != "get":
        ft.check_grads(f, (x, values), order=2)


# -------------------- modes: out-of-range indices as JAX documents them --------------------

def test_modes_as_the_jax_documentation_shows():
    x = fnp.arange(5.0)
    assert_array(x.at[2].get(), np.float64(2.0))
    assert_array(x.at[2].add(10), [0.0, 1.0, 12.0, 3.0, 4.0])
    assert_array(x.at[10].add(10, mode="drop"), x)
    assert_array(x.at[10].add(10, mode="fill"), x)
    assert_array(x.at[10].add(10, mode="promise_in_bounds"), x)
    assert_array(x.at[20].add(10, mode="clip"), [0.0, 1.0, 2.0, 3.0, 14.0])
    assert_array(x.at[20].get(mode="clip"), np.float64(4.0))
    assert_array(x.at[20].get(mode="promise_in_bounds"), np.float64(4.0))
    assert np.isnan(x.at[20].get(mode="fill"))
    assert_array(x.at[20].get(mode="fill", fill_value=-1), np.float64(-1.0))
    assert_array(x.at[20].get(mode="clip", fill_value=-1), np.float64(4.0))  # fill_value only for "fill"
    assert_array(x.at[-1].set(99), [0.0, 1.0, 2.0, 3.0, 99.0])
    assert_array(x.at[-1].set(99, wrap_negative_indices=False, mode="drop"), x)
    assert_array(x.at[-7].get(mode="clip"), np.float64(0.0))  # -7 + 5 is still below 0: clamped to 0


def test_without_a_mode_a_concrete_out_of_range_index_is_an_index_error():
    x = fnp.arange(5.0)
    for update in (lambda: x.at[10].add(1.0), lambda: x.at[np.array([1, 5])].set(0.0), lambda: x.at[-6].get(),
                   lambda: x.at[-1].set(9.0, wrap_negative_indices=False), lambda: x[7]):
        with pytest.raises(IndexError, match="out of bounds for axis 0 with size 5"):
            update()


def test_modes_on_index_arrays_and_traced_indices():
    x = np.arange(5.0)
    index = np.array([4, 5, -1, -6, 9])
    assert_array(fnp.at(x)[index].get(mode="clip"), x[[4, 4, 4, 0, 4]])
    assert_array(fnp.at(x)[index].get(mode="fill", fill_value=-2.0), [4.0, -2.0, 4.0, -2.0, -2.0])
    assert_array(fnp.at(x)[index].add(1.0, mode="drop"), [0.0, 1.0, 2.0, 3.0, 6.0])
    assert_array(fnp.at(x)[index].add(1.0, mode="clip"), [1.0, 1.0, 2.0, 3.0, 8.0])
    # a traced index is never checked: without a mode reads clamp and updates drop, as JAX under jit
    get = ft.jit(lambda a, i: a.at[i].get())
    assert_array(get(x, 7), np.float64(4.0))
    assert_array(ft.jit(lambda a, i: a.at[i].set(-1.0))(x, 7), x)
    assert_array(ft.jit(lambda a, i: a.at[i].set(-1.0, mode="clip"))(x, 7), [0.0, 1.0, 2.0, 3.0, -1.0])
    assert_array(ft.jit(lambda a, i: a.at[i].get(mode="fill", fill_value=3.5))(x, 7), np.float64(3.5))
    assert_array(ft.jit(lambda a, i: a.at[i].get(wrap_negative_indices=False, mode="fill"))(x, -1), np.float64(np.nan))


@given(data=st.data())
def test_modes_match_a_numpy_reference(data):
    dtype = data.draw(st.sampled_from(DTYPES))
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=2, min_side=1, max_side=4))
    x = np.arange(math.prod(shape), dtype=dtype).reshape(shape) + 1
    n = shape[0]
    index = data.draw(hnp.arrays(np.int64, data.draw(st.integers(0, 5)), elements=st.integers(-2 * n, 2 * n)))
    mode = data.draw(st.sampled_from(["promise_in_bounds", "clip", "drop", "fill"]))
    wrap = data.draw(st.booleans())
    method = data.draw(st.sampled_from(["get", "add", "max"]))
    values = np.asarray(data.draw(st.integers(-3, 3)), dtype)
    normalized = np.where(index < 0, index + n, index) if wrap else index
    inside = (normalized >= 0) & (normalized < n)
    clamped = np.clip(normalized, 0, n - 1)
    if method == "get":
        want = x[clamped].copy()
        if mode in ("drop", "fill"):  # JAX's default fill: NaN, or the lowest integer
            want[~inside] = np.nan if x.dtype.kind == "f" else np.iinfo(x.dtype).min
    else:
        rows = clamped if mode == "clip" else normalized[inside]
        want = x.copy()
        (np.add if method == "add" else np.maximum).at(want, rows, values)
    got = _call(fnp.asarray(x), index, method, values, mode=mode, wrap_negative_indices=wrap)
    assert_array(got, want)
    traced = ft.jit(lambda a, i: _call(a, i, method, values, mode=mode, wrap_negative_indices=wrap))(x, index)
    assert_array(traced, want)


@pytest.mark.parametrize("dtype, fill", [(np.float32, np.nan), (np.int32, np.iinfo(np.int32).min),
                                         (np.int64, np.iinfo(np.int64).min), (np.uint8, 255), (np.bool_, True)])
def test_default_fill_values_are_jaxs(dtype, fill):
    x = np.zeros(3, dtype)
    got = fnp.at(x)[np.array([0, 3])].get(mode="fill")
    assert got.dtype == dtype
    np.testing.assert_array_equal(got, np.array([0, fill], dtype=dtype))


def test_bad_keywords_say_what_is_wrong():
    x = fnp.arange(3.0)
    with pytest.raises(ValueError, match=r"\.at\[\.\.\.\]\.set: mode must be one of .*got 'wrap'"):
        x.at[0].set(1.0, mode="wrap")
    with pytest.raises(ValueError, match=r"\.at\[\.\.\.\]\.get: mode must be one of"):
        x.at[0].get(mode=["clip"])
    with pytest.raises(ValueError, match="fill_value must be a scalar"):
        x.at[5].get(mode="fill", fill_value=np.ones(2))
    with pytest.raises(ValueError, match="fill_value nan is not a int64"):
        fnp.arange(3).at[5].get(mode="fill", fill_value=np.nan)
    with pytest.raises(TypeError, match="fill_value must be a concrete scalar"):
        ft.jit(lambda a, f: a.at[5].get(mode="fill", fill_value=f))(np.ones(2), 1.0)
    with pytest.raises(TypeError):
        x.at[0].set(1.0, 2.0)  # keywords are keyword-only, as in JAX


def test_updates_at_repeated_indices_all_apply():
    x = fnp.ones(3)
    index = np.array([0, 0, 2])
    assert_array(x.at[index].add(2.0), [5.0, 1.0, 3.0])
    assert_array(x.at[index].multiply(3.0), [9.0, 1.0, 3.0])
    assert_array(x.at[index].mul(3.0), [9.0, 1.0, 3.0])
    assert_array(x.at[index].subtract(np.array([1.0, 2.0, 3.0])), [-2.0, 1.0, -2.0])
    assert_array(x.at[index].divide(2.0), [0.25, 1.0, 0.5])
    assert_array((x * 2).at[index].power(2.0), [16.0, 2.0, 4.0])  # repeated exponents multiply, as JAX
    assert_array(x.at[index].min(np.array([0.5, -1.0, 4.0])), [-1.0, 1.0, 1.0])
    assert_array(x.at[index].max(np.array([0.5, 3.0, 4.0])), [3.0, 1.0, 4.0])
    assert_array(fnp.arange(3).at[1].divide(2), [0.0, 0.5, 2.0])  # a true division, as JAX


def test_multiply_differentiates_through_zero_updates_at_repeated_positions():
    x = np.array([1.5, -2.0, 3.0])
    index = np.array([1, 1, 1, 0])
    for values in ([0.0, 2.0, 3.0, 0.5], [0.0, 0.0, 3.0, 0.5], [0.0, 0.0, 0.0, 0.0]):
        ft.check_grads(lambda a, v: fnp.sum(fnp.at(a)[index].multiply(v) ** 2), (x, np.array(values)), order=2)


def test_at_on_a_numpy_array_leaves_it_alone():
    x = np.arange(4.0)
    viewed = fnp.asarray(x)  # an Array viewing x's data
    for method in METHODS[:-1]:
        getattr(viewed.at[1], method)(5.0)
        getattr(fnp.at(x)[1:], method)(5.0)
    np.testing.assert_array_equal(x, np.arange(4.0))


def test_complex_arrays_read_with_a_fill_and_differentiate_through_updates():
    """A complex gather's fill was 0j, which its real-scalar param refused: `.get(mode="fill")` and the
    derivatives of dropped updates raised a TypeError from deep inside."""
    x = np.array([1 + 1j, 2 - 1j, 3 + 0.5j])
    np.testing.assert_array_equal(fnp.asarray(x).at[np.array([0, 5])].get(mode="fill", fill_value=2.5), [1 + 1j, 2.5])
    ft.check_grads(lambda a: fnp.asarray(a).at[np.array([0, 2, 5])].set(a[1] * 2, mode="drop"), (x,), order=2,
                   modes=("fwd", "rev"))
    ft.check_grads(lambda a: fnp.asarray(a).at[np.array([0, 7])].get(mode="fill", fill_value=0), (x,), order=2,
                   modes=("fwd", "rev"))
    with pytest.raises(NotImplementedError, match="complex fill_value with an imaginary part"):
        fnp.asarray(x).at[np.array([0, 5])].get(mode="fill", fill_value=1j)
