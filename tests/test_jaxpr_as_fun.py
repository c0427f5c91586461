"""Running a jaxpr: `ft.jaxpr_as_fun(closed)` (equation by equation, as JAX's)
and `closed(*args)` (one jit_call), on jaxprs read back from their printed
text, eagerly and under grad, jvp, vjp, vmap and jit, each against the Python
function the jaxpr was traced from."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import ftrans as ft
import ftrans.numpy as fnp
from interpreters.eval import eval_closed_jaxpr

W = np.array([[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]])
B = np.array([0.1, -0.2])


def cubic_of_sine(x):
    return fnp.sum(fnp.sin(x) * x ** 3)  # x**3: jit's multiplications round otherwise than np.power


def closed_over_layer(x):
    return fnp.sum(fnp.tanh(W @ x + B))  # W and B become the jaxpr's constants


def two_outputs(x):
    return fnp.sum(fnp.exp(-x) * 2.0), x * x


FUNCTIONS = [cubic_of_sine, closed_over_layer, two_outputs]
values = st.lists(st.floats(-2.0, 2.0), min_size=3, max_size=3)
dtypes = st.sampled_from([np.float64, np.float32])


def _parsed(fun, x):
    """`fun`'s jaxpr at `x`, printed and read back with its constants."""
    closed = ft.make_jaxpr(fun)(x)
    return ft.parse_jaxpr(str(closed), consts=closed.consts)


def _runners(fun, x):
    parsed = _parsed(fun, x)
    return {"jaxpr_as_fun": ft.jaxpr_as_fun(parsed), "call": parsed}


def _first(run):
    return lambda x: run(x)[0]


def _close(dtype):
    return dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-13, atol=1e-14)


def _assert_leaves_close(got, want, **tolerance):
    got, want = ft.tree_util.tree_leaves(got), ft.tree_util.tree_leaves(want)
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert np.asarray(g).dtype == np.asarray(w).dtype
        np.testing.assert_allclose(g, w, **tolerance)


@pytest.mark.parametrize("fun", FUNCTIONS)
@given(values=values, dtype=dtypes)
def test_jaxpr_as_fun_of_a_parsed_jaxpr_is_the_traced_function_bit_for_bit(fun, values, dtype):
    x = np.array(values, dtype)
    got = ft.jaxpr_as_fun(_parsed(fun, x))(x)
    assert isinstance(got, list)
    want = ft.tree_util.tree_leaves(fun(x))
    for g, w in zip(got, want, strict=True):
        assert g.dtype == w.dtype
        np.testing.assert_array_equal(g, w)


@pytest.mark.parametrize("fun", FUNCTIONS)
@given(values=values, dtype=dtypes)
def test_calling_a_parsed_closed_jaxpr_is_the_traced_function(fun, values, dtype):
    x = np.array(values, dtype)
    got = _parsed(fun, x)(x)
    assert isinstance(got, list)
    _assert_leaves_close(got, fun(x), **_close(dtype))


@pytest.mark.parametrize("how", ["jaxpr_as_fun", "call"])
@pytest.mark.parametrize("fun", FUNCTIONS)
@given(values=values, dtype=dtypes)
def test_a_parsed_jaxpr_differentiates_like_the_traced_function(how, fun, values, dtype):
    x = np.array(values, dtype)
    run = _runners(fun, x)[how]
    scalar = lambda x: ft.tree_util.tree_leaves(fun(x))[0]
    tolerance = _close(dtype)
    _assert_leaves_close(ft.grad(_first(run))(x), ft.grad(scalar)(x), **tolerance)
    direction = np.linspace(-1.0, 1.0, 3).astype(dtype)
    _assert_leaves_close(ft.jvp(run, (x,), (direction,)), ft.jvp(lambda x: ft.tree_util.tree_leaves(fun(x)), (x,),
                                                                  (direction,)), **tolerance)
    out, run_vjp = ft.vjp(run, x)
    cotangents = [np.ones_like(o) for o in out]
    _, fun_vjp = ft.vjp(lambda x: ft.tree_util.tree_leaves(fun(x)), x)
    _assert_leaves_close(run_vjp(cotangents), fun_vjp(cotangents), **tolerance)


@pytest.mark.parametrize("how", ["jaxpr_as_fun", "call"])
@pytest.mark.parametrize("fun", FUNCTIONS)
def test_second_derivatives_of_a_parsed_jaxpr_match_the_traced_function(how, fun):
    x = np.array([0.3, -0.8, 1.1])
    run = _runners(fun, x)[how]
    scalar = lambda x: ft.tree_util.tree_leaves(fun(x))[0]
    _assert_leaves_close(ft.hessian(_first(run))(x), ft.hessian(scalar)(x), rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("how", ["jaxpr_as_fun", "call"])
@pytest.mark.parametrize("fun", FUNCTIONS)
@given(batch=st.lists(values, min_size=1, max_size=4), dtype=dtypes)
def test_vmap_of_a_parsed_jaxpr_is_a_loop_of_the_traced_function(how, fun, batch, dtype):
    xs = np.array(batch, dtype)
    run = _runners(fun, xs[0])[how]
    want = [ft.tree_util.tree_leaves(fun(x)) for x in xs]
    want = [np.stack(column) for column in zip(*want, strict=True)]
    _assert_leaves_close(ft.vmap(run)(xs), want, **_close(dtype))


@pytest.mark.parametrize("how", ["jaxpr_as_fun", "call"])
@pytest.mark.parametrize("fun", FUNCTIONS)
@given(values=values, dtype=dtypes)
def test_jit_of_a_parsed_jaxpr_is_the_traced_function(how, fun, values, dtype):
    x = np.array(values, dtype)
    run = _runners(fun, x)[how]
    _assert_leaves_close(ft.jit(run)(x), fun(x), **_close(dtype))
    _assert_leaves_close(ft.jit(ft.grad(_first(run)))(x), ft.grad(lambda x: ft.tree_util.tree_leaves(fun(x))[0])(x),
                         **_close(dtype))


def test_a_parsed_jaxpr_takes_python_scalars_in_the_dtype_it_declares():
    closed = ft.parse_jaxpr("{ lambda ; a:f32[]. let b:f32[] = sin a in (b,) }")
    for run in (closed, ft.jaxpr_as_fun(closed)):
        out, = run(0.5)
        assert out.dtype == np.float32 and out == np.sin(np.float32(0.5))
        grad = ft.grad(lambda x: run(x)[0])(0.5)
        np.testing.assert_allclose(grad, np.cos(0.5), rtol=1e-6)


def test_a_jaxpr_parsed_without_its_constants_says_which_are_missing():
    text = str(ft.make_jaxpr(closed_over_layer)(np.ones(3)))
    parsed = ft.parse_jaxpr(text)
    with pytest.raises(ValueError, match=r"constants, a:f64\[2,3\], b:f64\[2\] .*consts="):
        parsed(np.ones(3))
    with pytest.raises(ValueError, match=r"a:f64\[2,3\], b:f64\[2\]"):
        ft.jaxpr_as_fun(parsed)
    with pytest.raises(ValueError, match=r"a:f64\[2,3\], b:f64\[2\]"):
        ft.grad(lambda x: parsed(x)[0])(np.ones(3))
    with pytest.raises(ValueError, match=r"a:f64\[2,3\], b:f64\[2\]"):
        eval_closed_jaxpr(parsed, np.ones(3))  # the interpreters' own entry says the same


def test_a_parsed_jaxpr_refuses_arguments_it_does_not_take():
    closed = ft.parse_jaxpr("{ lambda ; a:f64[3] b:i64[]. let c:f64[3] = sin a in (c,) }")
    for run in (closed, ft.jaxpr_as_fun(closed)):
        with pytest.raises(TypeError, match=r"takes 2 arguments \(f64\[3\], i64\[\]\), got 1"):
            run(np.ones(3))
        with pytest.raises(TypeError, match=r"argument 0 of the jaxpr is f64\[4\], but the jaxpr takes f64\[3\]"):
            run(np.ones(4), 1)
        with pytest.raises(TypeError, match=r"argument 0 of the jaxpr is f32\[3\]"):
            run(np.ones(3, np.float32), 1)
        with pytest.raises(TypeError, match=r"argument 1 of the jaxpr is f64\[\]\{weak\}, but the jaxpr takes i64\[\]"):
            run(np.ones(3), 1.5)
        with pytest.raises(TypeError, match=r"argument 1 of the jaxpr: str is not a valid ftrans value"):
            run(np.ones(3), "1")
        with pytest.raises(TypeError, match=r"argument 0 of the jaxpr is f64\[4\]"):
            ft.vmap(run, in_axes=(0, None))(np.ones((2, 4)), 1)


def test_jaxpr_as_fun_takes_a_closed_jaxpr():
    with pytest.raises(TypeError, match="jaxpr_as_fun takes a ClosedJaxpr .* got function"):
        ft.jaxpr_as_fun(cubic_of_sine)
