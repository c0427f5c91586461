"""Taylor mode: ft.jet against nested jvps for every primitive (to order 4, eager
and jitted), its conventions, compositions and errors; the collapse pass; and the
differential operators (ft.laplacian, ft.biharmonic, ft.differential_operator)
against trace(hessian), 4th-derivative tensors, closed forms and their stochastic
estimates, batched, jitted, differentiated, in float64 and float32."""
import itertools
import math
import uuid

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import ftrans as ft
import ftrans.numpy as fnp
import ir
from conftest import share_of_profile
from interpreters import taylor
from interpreters.eval import eval_jaxpr
from ir.core import ShapedArray
from ir.passes import collapse_sums
from ir.primitive import PRIMITIVES, Primitive
from ir.primitives import call

# -------------------- the reference: derivatives along the curve by nested jvps --------------------


def along_curve(primals, series):
    """t -> the point of the curve x(t) = x + sum_k x_k t^k / k! (one per argument)."""
    def point(t):
        return [x + sum(c * (t ** k / math.factorial(k)) for k, c in enumerate(s, 1))
                for x, s in zip(primals, series, strict=True)]
    return point


def nested_jvp_series(fun, primals, series, order):
    """d^k/dt^k fun(x(t)) at t = 0 for k = 1..order, by `order` nested jvps in t."""
    point = along_curve(primals, series)
    derivative = lambda t: fun(*point(t))  # noqa: E731
    out = []
    for _ in range(order):
        derivative = (lambda d: lambda t: ft.jvp(d, (t,), (1.0,))[1])(derivative)
        out.append(derivative(0.0))
    return out


# -------------------- one row per primitive --------------------

positive = (0.4, 2.0)
anywhere = (-2.0, 2.0)
small = (-1.0, 1.0)


def _flat(x):
    return fnp.reshape(x, (-1,))


# primitive name -> (function of one or two float arrays, value range, number of args)
TAYLOR_CASES = {
    "neg": (lambda x: -x * x, anywhere, 1),
    "sign": (lambda x: fnp.sign(x) * x ** 2, anywhere, 1),
    "abs": (lambda x: fnp.abs(x) * x, anywhere, 1),
    "floor": (lambda x: fnp.floor(x) * x, anywhere, 1),
    "ceil": (lambda x: fnp.ceil(x) * x, anywhere, 1),
    "sin": (fnp.sin, anywhere, 1), "cos": (fnp.cos, anywhere, 1), "tan": (fnp.tan, small, 1),
    "atan": (fnp.arctan, anywhere, 1), "sinh": (fnp.sinh, anywhere, 1), "cosh": (fnp.cosh, anywhere, 1),
    "tanh": (fnp.tanh, anywhere, 1), "exp": (fnp.exp, anywhere, 1), "log": (fnp.log, positive, 1),
    "log1p": (fnp.log1p, positive, 1), "expm1": (fnp.expm1, anywhere, 1), "sqrt": (fnp.sqrt, positive, 1),
    "logistic": (lambda x: ft.lax.logistic(x), anywhere, 1),
    "not": (lambda x: fnp.where(fnp.logical_not(x > 0), x, 2.0 * x), anywhere, 1),
    "stop_gradient": (lambda x: ft.lax.stop_gradient(x) * x, anywhere, 1),
    "integer_pow": (lambda x: x ** 3 + x ** -2 + x ** 2 + x ** 1 + x ** 0, positive, 1),
    "add": (lambda x, y: (x + y) * x, anywhere, 2), "sub": (lambda x, y: (x - y) * y, anywhere, 2),
    "mul": (lambda x, y: x * y * x, anywhere, 2), "div": (lambda x, y: x / y, positive, 2),
    "floor_divide": (lambda x, y: (x // 0.7) * y, anywhere, 2),
    "mod": (lambda x, y: fnp.mod(x, y + 3.0), positive, 2),
    "pow": (lambda x, y: x ** y + x ** 2.5 + 1.5 ** y, positive, 2),
    "max": (lambda x, y: fnp.maximum(x, y + 0.05) * x, anywhere, 2),
    "min": (lambda x, y: fnp.minimum(x, y + 0.05) * y, anywhere, 2),
    "and": (lambda x, y: fnp.where((x > 0) & (y < 1), x, y), anywhere, 2),
    "or": (lambda x, y: fnp.where((x > 0) | (y < -1), x, y), anywhere, 2),
    "xor": (lambda x, y: fnp.where((x > 0) ^ (y < 1), x, y), anywhere, 2),
    "eq": (lambda x, y: (x == y) * x + y, anywhere, 2), "ne": (lambda x, y: (x != y) * x + y, anywhere, 2),
    "lt": (lambda x, y: fnp.where(x < y, x * y, y), anywhere, 2),
    "le": (lambda x, y: fnp.where(x <= y, x * y, y), anywhere, 2),
    "gt": (lambda x, y: fnp.where(x > y, x * y, y), anywhere, 2),
    "ge": (lambda x, y: fnp.where(x >= y, x * y, y), anywhere, 2),
    "select_n": (lambda x, y: fnp.where(x > y, x * y, fnp.sin(y)), anywhere, 2),
    "convert_element_type": (lambda x: x.astype(np.float32).astype(np.float64) * x, anywhere, 1),
    "broadcast_in_dim": (lambda x: fnp.broadcast_to(x, (2,) + x.shape) * fnp.sin(x), anywhere, 1),
    "reshape": (lambda x: fnp.reshape(x, (-1,)) ** 2, anywhere, 1),
    "transpose": (lambda x: fnp.transpose(x) * fnp.sin(fnp.transpose(x)), anywhere, 1),
    "squeeze": (lambda x: fnp.squeeze(fnp.expand_dims(x, 0), 0) ** 2, anywhere, 1),
    "concatenate": (lambda x, y: fnp.concatenate([_flat(x), _flat(y * 2.0), _flat(x * y)]) ** 2, anywhere, 2),
    "slice": (lambda x: _flat(x)[1::2] ** 2, anywhere, 1),
    "pad": (lambda x: ft.lax.pad(x, 0.5, [(1, 2, 1)] * x.ndim) ** 2, anywhere, 1),
    "rev": (lambda x: _flat(x)[::-1] * _flat(x), anywhere, 1),
    "iota": (lambda x: fnp.reshape(fnp.arange(float(x.size)), x.shape) * x ** 2, anywhere, 1),  # no operand
    "reduce_sum": (lambda x: fnp.sum(x ** 2, axis=0 if x.ndim else None), anywhere, 1),
    "reduce_prod": (lambda x: fnp.prod(fnp.sin(x), axis=0 if x.ndim else None), anywhere, 1),
    "reduce_max": (lambda x: fnp.max(x * x, axis=0 if x.ndim else None), anywhere, 1),
    "reduce_min": (lambda x: fnp.min(fnp.sin(x), axis=-1 if x.ndim else None), anywhere, 1),
    "argmax": (lambda x: fnp.argmax(x) * x, anywhere, 1),
    "argmin": (lambda x: fnp.argmin(x) * x, anywhere, 1),
    "dot_general": (lambda x, y: fnp.einsum("...,...->", x, y) * fnp.tensordot(x, fnp.sin(y), x.ndim), anywhere, 2),
    "gather": (lambda x: _flat(x)[np.array([0, 0, -1])] ** 2, anywhere, 1),
    "scatter_add": (lambda x: fnp.at(_flat(x))[np.array([0, 0])].add(_flat(x)[0] ** 2) ** 2, anywhere, 1),
    "scatter": (lambda x: fnp.at(_flat(x))[-1].set(fnp.sum(x) ** 2) * _flat(x), anywhere, 1),
    "scatter_mul": (lambda x: fnp.at(_flat(x))[np.array([0, 0, -1])].multiply(fnp.sin(_flat(x)[np.array([-1, 0, 0])])),
                    anywhere, 1),
    "scatter_min": (lambda x: fnp.at(_flat(x) ** 2)[np.array([0, 0, -1])].min(_flat(x)[np.array([-1, 0, 0])] + 0.05),
                    anywhere, 1),
    "scatter_max": (lambda x: fnp.at(fnp.sin(_flat(x)))[np.array([0, 0, -1])].max(_flat(x)[np.array([-1, 0, 0])]),
                    anywhere, 1),
    "jit_call": (lambda x, y: ft.jit(lambda a, b: fnp.sin(a) * b + a)(x, y) ** 2, anywhere, 2),
}

TOLERANCES = {"convert_element_type": dict(rtol=1e-5, atol=1e-6)}  # the float32 round trip


def test_every_primitive_has_a_row():
    assert set(TAYLOR_CASES) == set(ir.PRIMITIVES) - {n for n in ir.PRIMITIVES if n.startswith("test_")}


def test_every_primitive_declares_a_taylor_rule():
    assert [name for name, prim in ir.PRIMITIVES.items() if prim.taylor is None and not name.startswith("test_")] == []


def _case_arguments(rng, low_high, nargs, shape, order=4):
    low, high = low_high
    primals = [rng.uniform(low, high, size=shape) for _ in range(nargs)]
    # a curve that stays in the domain for small t; every coefficient nonzero
    series = [[rng.uniform(-0.5, 0.5, size=shape) for _ in range(order)] for _ in range(nargs)]
    return primals, series


def _assert_series_close(got, want, **tolerance):
    tolerance = tolerance or dict(rtol=1e-9, atol=1e-10)
    assert len(got) == len(want)
    for k, (g, w) in enumerate(zip(got, want, strict=True), 1):
        np.testing.assert_allclose(g, w, err_msg=f"coefficient {k}", **tolerance)


@pytest.mark.parametrize("shape", [(), (3,), (2, 3)], ids=["scalar", "vector", "matrix"])
@pytest.mark.parametrize("name", sorted(TAYLOR_CASES))
def test_jet_matches_nested_jvps_to_order_4_eager_and_jitted(name, shape):
    fun, domain, nargs = TAYLOR_CASES[name]
    if name in ("slice", "gather", "scatter_add", "scatter_mul", "scatter_min", "scatter_max") and shape == ():
        shape = (1,)  # indexing needs an axis
    rng = np.random.default_rng(abs(hash((name, shape))) % 2 ** 32)
    primals, series = _case_arguments(rng, domain, nargs, shape)
    out, series_out = ft.jet(fun, primals, series)
    np.testing.assert_allclose(out, fun(*primals), rtol=1e-12, atol=1e-12)
    tolerance = TOLERANCES.get(name, {})
    _assert_series_close(series_out, nested_jvp_series(fun, primals, series, 4), **tolerance)
    jitted_out, jitted_series = ft.jit(lambda p, s: ft.jet(fun, p, s))(primals, series)
    np.testing.assert_allclose(jitted_out, out, rtol=1e-12, atol=1e-12)
    _assert_series_close(jitted_series, series_out, **(tolerance or dict(rtol=1e-11, atol=1e-12)))


# -------------------- jet: JAX's conventions --------------------

def test_jet_follows_jaxs_documented_example():
    """jax.experimental.jet's docstring: f = sin after h(z) = z^3 at 0.5 (Faa di Bruno by hand)."""
    h0, h1, h2 = 0.5 ** 3, 3 * 0.5 ** 2, 6 * 0.5
    f0, (f1, f2) = ft.jet(fnp.sin, (h0,), ((h1, h2),))
    np.testing.assert_allclose(f0, np.sin(h0))
    np.testing.assert_allclose(f1, np.cos(h0) * h1)
    np.testing.assert_allclose(f2, -np.sin(h0) * h1 ** 2 + np.cos(h0) * h2)


def test_jet_terms_are_directional_derivatives_along_a_line():
    """With the series (v, 0, ..., 0) the k-th term is d^k f(x)[v, ..., v]: for exp, exp(x) v^k."""
    x, v = np.array([0.3, -1.2]), np.array([0.5, 2.0])
    _, terms = ft.jet(fnp.exp, (x,), ([v] + [np.zeros(2)] * 7,))
    for k, term in enumerate(terms, 1):
        np.testing.assert_allclose(term, np.exp(x) * v ** k, rtol=1e-13)


def test_jet_to_high_order_matches_the_closed_form():
    """sin along x + t: the k-th derivative is sin(x + k pi/2), to order 12."""
    x = np.array([0.2, 1.1, -0.7])
    _, terms = ft.jet(fnp.sin, (x,), ([np.ones(3)] + [np.zeros(3)] * 11,))
    for k, term in enumerate(terms, 1):
        np.testing.assert_allclose(term, np.sin(x + k * np.pi / 2), atol=1e-12)


def test_jet_of_order_one_is_jvp():
    f = lambda x, y: fnp.sin(x) * y ** 2  # noqa: E731
    x, y, tx, ty = 0.3, 1.7, 0.5, -1.0
    out, (term,) = ft.jet(f, (x, y), ([tx], [ty]))
    want_out, want_tangent = ft.jvp(f, (x, y), (tx, ty))
    np.testing.assert_allclose(out, want_out)
    np.testing.assert_allclose(term, want_tangent)


def test_jet_of_order_zero_is_the_function():
    out, terms = ft.jet(fnp.cos, (0.4,), ([],))
    np.testing.assert_allclose(out, np.cos(0.4))
    assert terms == []


def test_jet_without_factorial_scaling_takes_and_gives_taylor_coefficients():
    """factorial_scaled=False: x(t) = x + c_1 t + c_2 t^2 + ..., and out c_k = f^(k) / k!."""
    x, series = np.array([0.3, 0.9]), [np.array([1.0, -0.5]), np.array([0.2, 0.4]), np.array([-0.3, 0.1])]
    _, scaled = ft.jet(fnp.tanh, (x,), ([c * math.factorial(k) for k, c in enumerate(series, 1)],))
    _, plain = ft.jet(fnp.tanh, (x,), (series,), factorial_scaled=False)
    for k, (s, p) in enumerate(zip(scaled, plain, strict=True), 1):
        np.testing.assert_allclose(p, s / math.factorial(k), rtol=1e-13)


def test_jet_takes_and_gives_pytrees():
    """Each argument's terms have its structure; the output's series is the output's
    structure with each leaf replaced by its list of terms (as JAX returns it)."""
    def f(params, x):
        return {"y": params["w"] * fnp.sin(x), "z": (params["b"] * x, x ** 2)}
    params = {"w": np.array([1.5, -0.5]), "b": 2.0}
    x = np.array([0.3, 0.8])
    p_terms = [{"w": np.array([0.1, 0.2]), "b": 0.5}, {"w": np.zeros(2), "b": 0.0}]
    x_terms = [np.array([1.0, 0.0]), np.array([0.0, 1.0])]
    out, series = ft.jet(f, (params, x), (p_terms, x_terms))
    assert set(out) == {"y", "z"} and isinstance(series["z"], tuple) and len(series["y"]) == 2
    flat = lambda w, b, x: [f({"w": w, "b": b}, x)["y"], f({"w": w, "b": b}, x)["z"][0]]  # noqa: E731
    want = nested_jvp_series(lambda w, b, x: flat(w, b, x)[0], [params["w"], params["b"], x],
                             [[t["w"] for t in p_terms], [t["b"] for t in p_terms], x_terms], 2)
    _assert_series_close(series["y"], want)
    want = nested_jvp_series(lambda w, b, x: flat(w, b, x)[1], [params["w"], params["b"], x],
                             [[t["w"] for t in p_terms], [t["b"] for t in p_terms], x_terms], 2)
    _assert_series_close(series["z"][0], want)


def test_jet_results_are_arrays_with_materialized_zero_terms():
    out, terms = ft.jet(lambda x, c: c * 2.0 + x * 0.0, (1.0, np.array([1.0, 2.0])), ([1.0, 1.0], [np.zeros(2)] * 2))
    assert type(out) is ft.Array and all(type(t) is ft.Array for t in terms)
    np.testing.assert_array_equal(terms[1], np.zeros(2))


def test_jet_of_a_constant_function_has_zero_terms():
    _, terms = ft.jet(lambda x: fnp.ones(3), (0.5,), ([1.0, 2.0],))
    for term in terms:
        np.testing.assert_array_equal(term, np.zeros(3))


# -------------------- jet composes with jit, vmap and grad --------------------

def _mlp_params(rng, sizes=(3, 5, 4, 1)):
    return [(rng.normal(size=(n, m)) / np.sqrt(m), rng.normal(size=n) * 0.3) for m, n in zip(sizes[:-1], sizes[1:])]


def _mlp(params, x):
    for W, b in params[:-1]:
        x = fnp.tanh(W @ x + b)
    W, b = params[-1]
    return (W @ x + b)[0]


def test_vmap_of_jet_over_directions_equals_a_loop():
    rng = np.random.default_rng(0)
    params, x = _mlp_params(rng), rng.normal(size=3)
    directions = rng.normal(size=(4, 3))
    second = lambda v: ft.jet(lambda x: _mlp(params, x), (x,), ([v, fnp.zeros(3)],))[1][1]  # noqa: E731
    batched = ft.vmap(second)(directions)
    np.testing.assert_allclose(batched, [second(v) for v in directions], rtol=1e-12)
    hessian = ft.hessian(lambda x: _mlp(params, x))(x)
    np.testing.assert_allclose(batched, [v @ hessian @ v for v in directions], rtol=1e-10)


def test_jet_of_vmap_equals_vmap_of_jet():
    x, v = np.array([[0.1, 0.5], [0.9, -0.3]]), np.array([[1.0, 0.0], [0.5, 2.0]])
    f = lambda x: fnp.sin(x) * fnp.exp(x)  # noqa: E731
    _, outer = ft.jet(ft.vmap(f), (x,), ([v, v],))
    inner = ft.vmap(lambda x, v: ft.jet(f, (x,), ([v, v],))[1])(x, v)
    _assert_series_close(outer, inner)


def test_grad_of_a_taylor_coefficient():
    """d/dx of d^2 f(x)[v, v] = v^T H(x) v, against grad of the Hessian form."""
    rng = np.random.default_rng(1)
    params, x, v = _mlp_params(rng), rng.normal(size=3), rng.normal(size=3)
    f = lambda x: _mlp(params, x)  # noqa: E731
    coefficient = lambda x: ft.jet(f, (x,), ([v, fnp.zeros(3)],))[1][1]  # noqa: E731
    want = ft.grad(lambda x: v @ ft.hessian(f)(x) @ v)(x)
    np.testing.assert_allclose(ft.grad(coefficient)(x), want, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ft.jit(ft.grad(coefficient))(x), want, rtol=1e-10, atol=1e-12)


def test_grad_of_a_taylor_coefficient_with_respect_to_parameters():
    rng = np.random.default_rng(2)
    params, x, v = _mlp_params(rng), rng.normal(size=3), rng.normal(size=3)
    coefficient = lambda p: ft.jet(lambda x: _mlp(p, x), (x,), ([v, fnp.zeros(3)],))[1][1]  # noqa: E731
    want = ft.grad(lambda p: v @ ft.hessian(lambda x: _mlp(p, x))(x) @ v)(params)
    for got, expected in zip(ft.tree_util.tree_flatten(ft.grad(coefficient)(params))[0],
                             ft.tree_util.tree_flatten(want)[0], strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)


def test_jet_of_a_jitted_function_stays_one_call():
    inner = ft.jit(lambda a: fnp.tanh(a) * a)
    jaxpr = ft.make_jaxpr(lambda x, v: ft.jet(inner, (x,), ([v, v],)))(np.ones(3), np.ones(3))
    assert [e.primitive.name for e in jaxpr.eqns] == ["jit_call"]


def test_jet_jaxpr_is_staged_once_per_signature():
    closed = ft.make_jaxpr(lambda x: fnp.sin(x) * x)(np.ones(2))
    first = taylor.jet_jaxpr(closed, 3, [(True, False, True)])
    assert taylor.jet_jaxpr(closed, 3, [(True, False, True)]) is first
    assert taylor.jet_jaxpr(closed, 3, [(True, True, True)]) is not first
    jet_closed, out_nonzero = first
    assert out_nonzero == [(True, True, True)]
    ir.check(jet_closed.jaxpr)


def test_jet_jaxpr_instantiates_zero_outputs_on_request():
    """A loop's carries need one pattern in and out: `instantiate` makes zero terms arrays."""
    closed = ft.make_jaxpr(lambda x, y: [x * 2.0, y])(np.ones(2), np.ones(2))
    (_, out_nonzero) = taylor.jet_jaxpr(closed, 2, [(True, False), (False, False)])
    assert out_nonzero == [(True, False), (False, False)]
    jet_closed, out_nonzero = taylor.jet_jaxpr(closed, 2, [(True, False), (False, False)], instantiate=True)
    assert out_nonzero == [(True, True), (True, True)]
    outs = eval_jaxpr(jet_closed.jaxpr, jet_closed.consts, np.ones(2), np.ones(2), np.full(2, 3.0))
    np.testing.assert_array_equal(outs[2], np.full(2, 6.0))
    np.testing.assert_array_equal(outs[3], np.zeros(2))


@given(data=st.data())
@share_of_profile(1 / 2)
def test_jet_of_random_compositions_matches_nested_jvps(data):
    """A chain of drawn elementwise functions and contractions, at a drawn point and series."""
    unary = {"sin": fnp.sin, "tanh": fnp.tanh, "exp": lambda x: fnp.exp(0.3 * x), "square": lambda x: x * x,
             "logistic": ft.lax.logistic, "atan": fnp.arctan, "cube": lambda x: x ** 3}
    names = data.draw(st.lists(st.sampled_from(sorted(unary)), min_size=1, max_size=4), label="chain")
    order = data.draw(st.integers(1, 4), label="order")
    values = st.floats(-1.0, 1.0)
    x = data.draw(hnp.arrays(np.float64, (3,), elements=values), label="x")
    series = [data.draw(hnp.arrays(np.float64, (3,), elements=values), label=f"x_{k}") for k in range(order)]
    matrix = np.array([[0.5, -0.2, 0.1], [0.3, 0.4, -0.6], [0.0, 0.7, 0.2]])

    def f(x):
        for name in names:
            x = matrix @ unary[name](x)
        return x
    _, terms = ft.jet(f, (x,), (series,))
    _assert_series_close(terms, nested_jvp_series(f, [x], [series], order), rtol=1e-8, atol=1e-9)


def test_jet_keeps_float32():
    x = np.array([0.3, 0.8], dtype=np.float32)
    out, terms = ft.jet(fnp.tanh, (x,), ([np.ones(2, np.float32), np.zeros(2, np.float32)],))
    assert out.dtype == np.float32 and all(t.dtype == np.float32 for t in terms)
    np.testing.assert_allclose(terms[1], -2 * np.tanh(x) * (1 - np.tanh(x) ** 2), rtol=1e-5)


# -------------------- jet: errors --------------------

def test_jet_of_a_primitive_without_a_rule_names_it():
    name = f"test_no_taylor_{uuid.uuid4().hex[:8]}"
    prim = Primitive(name, params={}, abstract_eval=lambda x: x, impl=lambda x: x)
    try:
        with pytest.raises(NotImplementedError, match=f"^jet of {name}$"):
            ft.jet(lambda x: ir.bind(prim, x), (1.0,), ([1.0],))
    finally:
        PRIMITIVES.pop(name, None)


def test_jet_series_of_different_lengths_is_a_value_error():
    with pytest.raises(ValueError, match=r"same number of terms.*series\[0\] has 2.*series\[1\] has 1"):
        ft.jet(lambda x, y: x * y, (1.0, 2.0), ([1.0, 0.0], [1.0]))


def test_jet_series_for_each_argument():
    with pytest.raises(ValueError, match="one list of terms per argument: 2 arguments, 1 entries"):
        ft.jet(lambda x, y: x * y, (1.0, 2.0), ([1.0],))
    with pytest.raises(TypeError, match=r"series\[0\] must be a list or tuple of terms"):
        ft.jet(fnp.sin, (1.0,), (np.ones(2),))
    with pytest.raises(TypeError, match="primals and series must be tuples or lists"):
        ft.jet(fnp.sin, 1.0, ([1.0],))


def test_jet_term_of_the_wrong_shape_or_dtype_is_a_value_error():
    with pytest.raises(ValueError, match=r"series\[0\]\[1\] must be f64\[3\] to match primals\[0\] f64\[3\], got f64\[2\]"):
        ft.jet(fnp.sin, (np.ones(3),), ([np.ones(3), np.ones(2)],))
    with pytest.raises(ValueError, match=r"series\[0\]\[0\] must be f32\[2\].*got f64\[2\]"):
        ft.jet(fnp.sin, (np.ones(2, np.float32),), ([np.ones(2)],))
    with pytest.raises(ValueError, match=r"series\[0\]\[0\] must have the structure of primals\[0\]"):
        ft.jet(lambda p: p["a"], ({"a": 1.0},), ([{"b": 1.0}],))


def test_jet_of_integer_primals_is_a_type_error():
    with pytest.raises(TypeError, match=r"floating-point primals, but primals\[0\] has dtype int64"):
        ft.jet(lambda x: x * 2, (np.arange(3),), ([np.ones(3)],))


def test_jet_of_a_non_callable_is_a_type_error():
    with pytest.raises(TypeError, match="jet expects a callable"):
        ft.jet(3.0, (1.0,), ([1.0],))
