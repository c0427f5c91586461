"""Taylor mode: ft.jet against nested jvps for every primitive (to order 4, eager
and jitted), its conventions, compositions and errors; the collapse pass; and the
differential operators (ft.laplacian, ft.biharmonic, ft.differential_operator)
against trace(hessian), 4th-derivative tensors, closed forms and their stochastic
estimates, batched, jitted, differentiated, in float64 and float32."""
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
import matrix_cases
from conftest import NamedAxisCase, collective_examples, share_of_profile, under_named_axis
from interpreters import taylor
from interpreters.eval import eval_jaxpr
from ir.passes import collapse_sums
from ir.primitive import PRIMITIVES, Primitive

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
    "erf": (ft.lax.erf, anywhere, 1), "erfc": (ft.lax.erfc, anywhere, 1),
    "erf_inv": (ft.lax.erf_inv, (-0.8, 0.8), 1),
    "lgamma": (ft.lax.lgamma, positive, 1), "digamma": (ft.lax.digamma, positive, 1),
    "polygamma": (lambda x: ft.lax.polygamma(2, x), positive, 1),
    "igamma": (lambda x: ft.lax.igamma(1.7, x * 2.0), positive, 1),
    "igammac": (lambda x: ft.lax.igammac(0.6, x * 3.0), positive, 1),
    "igamma_grad_a": (lambda x: ft.lax.igamma_grad_a(1.7, x * 2.0), positive, 1),
    "random_gamma_grad": (lambda x: ft.lax.random_gamma_grad(1.7, x * 2.0), positive, 1),
    "regularized_incomplete_beta": (lambda x: ft.lax.betainc(1.5, 2.5, x / 2.5), positive, 1),
    **{name: (fun, small, nargs) for name, (fun, nargs) in matrix_cases.FUNCTIONS.items()},
    "not": (lambda x: fnp.where(fnp.logical_not(x > 0), x, 2.0 * x), anywhere, 1),
    "stop_gradient": (lambda x: ft.lax.stop_gradient(x) * x, anywhere, 1),
    "reduce_precision": (lambda x: ft.lax.reduce_precision(x * x, 11, 52) * fnp.sin(x), anywhere, 1),
    "debug_callback": (lambda x: (ft.debug.callback(lambda v: None, x), fnp.sin(x) * x)[1], anywhere, 1),
    "pure_callback": (lambda x: ft.pure_callback(np.cos, ft.ShapeDtypeStruct(x.shape, x.dtype),
                                                 ft.lax.stop_gradient(x)) * x, anywhere, 1),
    "integer_pow": (lambda x: x ** 3 + x ** -2 + x ** 2 + x ** 1 + x ** 0, positive, 1),
    "add": (lambda x, y: (x + y) * x, anywhere, 2), "sub": (lambda x, y: (x - y) * y, anywhere, 2),
    "mul": (lambda x, y: x * y * x, anywhere, 2), "div": (lambda x, y: x / y, positive, 2),
    "floor_divide": (lambda x, y: (x // 0.7) * y, anywhere, 2),
    "mod": (lambda x, y: fnp.mod(x, y + 3.0), positive, 2),
    "pow": (lambda x, y: x ** y + x ** 2.5 + 1.5 ** y, positive, 2),
    "atan2": (lambda x, y: fnp.arctan2(x, y - 3.0) * x, anywhere, 2),
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
    "shift_left": (lambda x: ft.lax.shift_left((x > 0).astype(np.int64), 2) * x, anywhere, 1),
    "shift_right_logical": (lambda x: ft.lax.shift_right_logical((x > 0).astype(np.int64) * 8, 2) * x, anywhere, 1),
    # the key depends on x; the draws are a constant factor of x's series
    "threefry2x32": (lambda x: ft.random.uniform(ft.random.fold_in(ft.random.PRNGKey(0), fnp.sum(x > 0)),
                                                 x.shape) * x, anywhere, 1),
    "argmin": (lambda x: fnp.argmin(x) * x, anywhere, 1),
    "dot_general": (lambda x, y: fnp.einsum("...,...->", x, y) * fnp.tensordot(x, fnp.sin(y), x.ndim), anywhere, 2),
    "gather": (lambda x: _flat(x)[np.array([0, 0, -1])] ** 2, anywhere, 1),
    "sort": (lambda x, y: fnp.stack(ft.lax.sort_key_val(_flat(x), fnp.sin(_flat(y)))) * _flat(y), anywhere, 2),
    "cumsum": (lambda x: ft.lax.cumsum(fnp.sin(_flat(x)), reverse=True) * _flat(x), anywhere, 1),
    "cumprod": (lambda x: ft.lax.cumprod(fnp.sin(_flat(x))) + ft.lax.cumprod(_flat(x), reverse=True), anywhere, 1),
    "cummax": (lambda x: ft.lax.cummax(_flat(x) ** 2) * _flat(x), anywhere, 1),
    "cummin": (lambda x: ft.lax.cummin(fnp.sin(_flat(x)), reverse=True) * _flat(x), anywhere, 1),
    "scatter_add": (lambda x: fnp.at(_flat(x))[np.array([0, 0])].add(_flat(x)[0] ** 2) ** 2, anywhere, 1),
    "scatter": (lambda x: fnp.at(_flat(x))[-1].set(fnp.sum(x) ** 2) * _flat(x), anywhere, 1),
    "scatter_mul": (lambda x: fnp.at(_flat(x))[np.array([0, 0, -1])].multiply(fnp.sin(_flat(x)[np.array([-1, 0, 0])])),
                    anywhere, 1),
    "scatter_min": (lambda x: fnp.at(_flat(x) ** 2)[np.array([0, 0, -1])].min(_flat(x)[np.array([-1, 0, 0])] + 0.05),
                    anywhere, 1),
    "scatter_max": (lambda x: fnp.at(fnp.sin(_flat(x)))[np.array([0, 0, -1])].max(_flat(x)[np.array([-1, 0, 0])]),
                    anywhere, 1),
    "jit_call": (lambda x, y: ft.jit(lambda a, b: fnp.sin(a) * b + a)(x, y) ** 2, anywhere, 2),
    # both branches nonlinear, the predicate a traced comparison (so the cond is staged)
    "cond": (lambda x, y: ft.lax.cond(fnp.sum(y) > 0, lambda a, b: fnp.sin(a) * b, lambda a, b: a * a - b,
                                      x, y) ** 2, anywhere, 2),
    # a carry that picks up a series only on the way (c starts constant), ys stacked
    "scan": (lambda x: _scan_case(x), anywhere, 1),
    # a carry that picks up a series only on the way, three iterations
    "while": (lambda x: _while_case(x), anywhere, 1),
    # the reverse sweep of jit(grad) of a while_loop
    "while_reverse": (lambda x: ft.jit(ft.grad(lambda a: fnp.sum(_while_case(a) ** 2)))(x), anywhere, 1),
    # jet evaluates a custom function's own jet, its rule ignored (as JAX's jet does)
    "custom_jvp_call": (lambda x, y: _custom_jvp_case(x, y) ** 2, anywhere, 2),
    "custom_vjp_call": (lambda x, y: _custom_vjp_case(x, y) ** 2, anywhere, 2),
    "checkpoint": (lambda x, y: ft.checkpoint(lambda a, b: fnp.sin(a) * b)(x, y) ** 2, anywhere, 2),
    "name": (lambda x: ft.ad_checkpoint.checkpoint_name(fnp.sin(x), "s") * x, anywhere, 1),
    # complex intermediates between real inputs and outputs: abs of a complex value is smooth away from 0
    "complex": (lambda x, y: fnp.abs(_complex(x, y) + (3 + 1j))
                + fnp.real(_complex(x, y) ** 3 * fnp.exp(_complex(y, x))),
                anywhere, 2),
    "real": (lambda x: fnp.real(fnp.sin(x * (1 + 2j)) * fnp.sqrt(x + 3j)), anywhere, 1),
    "fft": (lambda x: fnp.sum(fnp.imag(fnp.fft.rfft(fnp.sin(_flat(x)), n=4)) ** 2)
            + fnp.sum(fnp.fft.irfft(fnp.fft.fft(_flat(x) * 1j), n=3) * fnp.cos(_flat(x)[:1])), anywhere, 1),
    "imag": (lambda x: fnp.imag(fnp.log(x * (1 - 0.5j) + 3) * x), anywhere, 1),
    "conj": (lambda x, y: fnp.real(fnp.conj(_complex(x, y * y)) * _complex(y, x) * (2 + 1j)), anywhere, 2),
    # the collectives, over an axis that vmap(axis_name="i") binds (conftest.under_named_axis)
    **{name: (under_named_axis(fun), (-1.2, 1.2), 1)
       for name, fun in collective_examples(ft.lax, fnp).items()},
}
# primitives with no jet: forward mode through them is a TypeError (test_jet_of_custom_lin_is_a_type_error)
NO_JET = {"custom_lin": "the linear map of a custom_vjp function: reverse mode only, as in JAX"}
# the function whose nested jvps a row's jet is checked against, where it is not the row's own
# (nested jvps of a custom_vjp function are a TypeError)
JVP_REFERENCES = {"custom_vjp_call": lambda x, y: (fnp.sin(x) * y) ** 2}


@ft.custom_jvp
def _custom_jvp_case(x, y):
    return fnp.sin(x) * y


_custom_jvp_case.defjvp(lambda p, t: (_custom_jvp_case(*p), fnp.cos(p[0]) * p[1] * t[0] + fnp.sin(p[0]) * t[1]))


@ft.custom_vjp
def _custom_vjp_case(x, y):
    return fnp.sin(x) * y


_custom_vjp_case.defvjp(lambda x, y: (_custom_vjp_case(x, y), None), lambda r, g: (g, g))


def _while_case(x):
    def body(carry):
        i, c, s = carry
        return i + 1, c * 0.5 + fnp.sin(x * s), s * x
    return ft.lax.while_loop(lambda carry: carry[0] < 3, body, (0, fnp.zeros_like(x), fnp.ones_like(x)))[1]


def _complex(x, y):
    return ir.primitives.elementwise.complex(x, y)


def _scan_case(x):
    def body(carry, xi):
        c, s = carry
        return (c * 0.5 + fnp.sin(xi * s), s), c * xi
    (c, _), ys = ft.lax.scan(body, (fnp.zeros_like(_flat(x)[0]), fnp.sum(x)), _flat(x))
    return c + fnp.sum(ys ** 2)

TOLERANCES = {"convert_element_type": dict(rtol=1e-5, atol=1e-6)}  # the float32 round trip


def test_every_primitive_has_a_row():
    assert set(TAYLOR_CASES) | set(NO_JET) == (set(ir.PRIMITIVES) - {n for n in ir.PRIMITIVES if n.startswith("test_")})


def test_jet_of_custom_lin_is_a_type_error():
    """jet through the linear map of a custom_vjp function, as nested jvps would be."""
    _, f_lin = ft.linearize(_custom_vjp_case, 0.3, 0.5)
    with pytest.raises(TypeError, match="forward-mode"):
        ft.jet(f_lin, (0.1, 0.2), ((1.0, 0.0), (0.0, 0.0)))


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
    reference = JVP_REFERENCES.get(name, fun)
    _assert_series_close(series_out, nested_jvp_series(reference, primals, series, 4), **tolerance)
    jitted_out, jitted_series = ft.jit(lambda p, s: ft.jet(fun, p, s))(primals, series)
    np.testing.assert_allclose(jitted_out, out, rtol=1e-12, atol=1e-12)
    _assert_series_close(jitted_series, series_out, **(tolerance or dict(rtol=1e-11, atol=1e-12)))
    if isinstance(fun, NamedAxisCase):  # a collective: its own taylor rule, inside the vmap binding its axis
        stacked = [np.asarray(fun.stack(p)) for p in primals]
        stacked_series = [[rng.uniform(-0.5, 0.5, size=x.shape) for _ in range(4)] for x in stacked]
        whole = lambda *xs: ft.vmap(fun.per_example, axis_name="i")(*xs)  # noqa: E731
        want_out, want_series = ft.jet(whole, stacked, stacked_series)
        got_out, got_series = fun.inside(lambda f: lambda p, s: ft.jet(f, p, s), stacked, stacked_series)
        np.testing.assert_allclose(got_out, want_out, rtol=1e-12, atol=1e-12)
        _assert_series_close(got_series, want_series)


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
    """A loop's carries need one pattern in and out: `instantiate` makes zero terms arrays.
    Rules declared in ir (loops) reach it as SUBJAXPR_TRANSFORMS["jet_jaxpr"]."""
    from ir.primitives.call import SUBJAXPR_TRANSFORMS
    assert SUBJAXPR_TRANSFORMS["jet_jaxpr"] is taylor.jet_jaxpr
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


# -------------------- the collapse pass --------------------

def _evaluate(closed, *args):
    return eval_jaxpr(closed.jaxpr, closed.consts, *args)


def _reduce_sum_operands(closed):
    return [e.invars[0] for e in closed.jaxpr.eqns if e.primitive.name == "reduce_sum"]


def test_collapse_pushes_a_sum_through_linear_equations_to_the_input():
    """sum_0 of a chain linear in u (scalings by values the same along axis 0, sums, a
    contraction, transposes and reshapes) becomes the same chain of sum_0 u."""
    rng = np.random.default_rng(0)
    W, c, u = rng.normal(size=(4, 5)), rng.normal(size=5), rng.normal(size=(3, 5))

    def f(u, c):
        y = (u * c - u / (c * c + 1.0)) @ W.T                # (3, 4)
        y = fnp.reshape(fnp.transpose(fnp.broadcast_to(y, (2, 3, 4)), (1, 0, 2)), (3, 8))
        return fnp.sum(fnp.where(c[:1] > 0, y, -y), axis=0)
    closed = ft.make_jaxpr(f)(u, c)
    collapsed = collapse_sums(closed)
    ir.check(collapsed.jaxpr)
    u_var = collapsed.jaxpr.invars[0]
    assert _reduce_sum_operands(collapsed) == [u_var]  # one sum left, of the input itself
    np.testing.assert_allclose(_evaluate(collapsed, u, c)[0], f(u, c), rtol=1e-12)
    assert collapsed.out_avals == closed.out_avals


def test_collapse_leaves_the_sum_of_a_nonlinear_term_where_it_is():
    u = np.arange(6.0).reshape(2, 3)
    closed = ft.make_jaxpr(lambda u: fnp.sum(fnp.tanh(u) * 2.0 + u * u, axis=0))(u)
    collapsed = collapse_sums(closed)
    operands = _reduce_sum_operands(collapsed)
    producers = {v: e for e in collapsed.jaxpr.eqns for v in e.outvars}
    assert sorted(producers[v].primitive.name for v in operands) == ["mul", "tanh"]
    np.testing.assert_allclose(_evaluate(collapsed, u)[0], np.sum(np.tanh(u) * 2 + u * u, axis=0), rtol=1e-13)


def test_collapse_pushes_a_weighted_sum():
    rng = np.random.default_rng(1)
    u, w, c = rng.normal(size=(4, 3)), rng.normal(size=4), rng.normal(size=3)
    f = lambda u, w, c: fnp.tensordot(w, fnp.sin(c) * (u + u), 1)  # noqa: E731
    collapsed = collapse_sums(ft.make_jaxpr(f)(u, w, c))
    contractions = [e for e in collapsed.jaxpr.eqns if e.primitive.name == "dot_general"]
    assert [e.invars[0] for e in contractions] == [collapsed.jaxpr.invars[0]]  # sum_r w_r u[r], then linear work
    np.testing.assert_allclose(_evaluate(collapsed, u, w, c)[0], f(u, w, c), rtol=1e-12)


def test_collapse_does_not_push_a_sum_through_a_conversion_to_integers():
    u = np.array([[0.6, 1.7], [0.6, 0.2]])
    collapsed = collapse_sums(ft.make_jaxpr(lambda u: fnp.sum(u.astype(np.int64), axis=0))(u))
    np.testing.assert_array_equal(_evaluate(collapsed, u)[0], [0, 1])


def test_collapse_returns_its_input_when_no_output_is_a_sum_and_never_mutates_it():
    closed = ft.make_jaxpr(lambda u: fnp.sin(u) * 2.0)(np.ones((2, 3)))
    assert collapse_sums(closed) is closed
    closed = ft.make_jaxpr(lambda u: fnp.sum(u * 2.0, axis=0))(np.ones((2, 3)))
    before = str(closed)
    assert collapse_sums(closed) is not closed
    assert str(closed) == before


_LINEAR_STEPS = ["scale", "divide", "add", "sub", "neg", "contract", "transpose", "reshape", "select", "pad",
                 "slice", "rev", "concatenate", "reduce", "tanh", "square"]


@given(data=st.data())
@share_of_profile(1 / 2)
def test_collapse_of_random_programs_computes_the_same_sums(data):
    """Drawn chains of operations on a batch u of shape (R, n), summed over the batch axis:
    the collapsed program computes the same values (to rounding) and type-checks."""
    steps = data.draw(st.lists(st.sampled_from(_LINEAR_STEPS), min_size=1, max_size=6), label="steps")
    r, n = data.draw(st.integers(1, 3), label="R"), data.draw(st.integers(2, 4), label="n")
    rng = np.random.default_rng(data.draw(st.integers(0, 2 ** 16), label="seed"))
    u, c = rng.normal(size=(r, n)), rng.normal(size=n)
    weights = data.draw(st.booleans(), label="weighted")
    w = rng.normal(size=r)

    def f(u, c, w):
        y = u
        for step in steps:
            width = y.shape[1]
            c_here = c[:1] * fnp.ones(width)
            if step == "scale":
                y = y * c_here
            elif step == "divide":
                y = y / (c_here * c_here + 1.0)
            elif step in ("add", "sub"):
                y = y + fnp.sin(u[:, :1] * y) if step == "add" else y - y * c_here
            elif step == "neg":
                y = -y
            elif step == "contract":
                y = y @ np.random.default_rng(width).normal(size=(3, width)).T
            elif step == "transpose":
                y = fnp.transpose(fnp.broadcast_to(y, (2,) + y.shape), (1, 0, 2)).reshape(y.shape[0], 2 * width)
            elif step == "reshape":
                y = fnp.reshape(fnp.reshape(y, (y.shape[0], width, 1)), (y.shape[0], width))
            elif step == "select":
                y = fnp.where(c_here > 0, y, 2.0 * y)
            elif step == "pad":
                y = ft.lax.pad(y, 0.0, [(0, 0, 0), (1, 1, 0)])
            elif step == "slice":
                y = y[:, ::2]
            elif step == "rev":
                y = y[:, ::-1]
            elif step == "concatenate":
                y = fnp.concatenate([y, 3.0 * y], axis=1)
            elif step == "reduce":
                y = fnp.sum(fnp.reshape(y, (y.shape[0], width, 1)) * fnp.ones(2), axis=2)
            elif step == "tanh":
                y = fnp.tanh(y)
            elif step == "square":
                y = y * y
        return fnp.tensordot(w, y, 1) if weights else fnp.sum(y, axis=0)
    closed = ft.make_jaxpr(f)(u, c, w)
    collapsed = collapse_sums(closed)
    ir.check(collapsed.jaxpr)
    assert collapsed.out_avals == closed.out_avals
    np.testing.assert_allclose(_evaluate(collapsed, u, c, w)[0], _evaluate(closed, u, c, w)[0],
                               rtol=1e-10, atol=1e-10)


# -------------------- the differential operators --------------------

def _net(params, x):
    return _mlp(params, x)


def _hessian_trace(f, x):
    hessian = ft.hessian(f)(x)
    return np.trace(np.reshape(hessian, (x.size, x.size)))


def test_laplacian_of_an_mlp_is_the_trace_of_its_hessian():
    rng = np.random.default_rng(3)
    params, x = _mlp_params(rng), rng.normal(size=3)
    f = lambda x: _net(params, x)  # noqa: E731
    np.testing.assert_allclose(ft.laplacian(f)(x), _hessian_trace(f, x), rtol=1e-12)


def test_laplacian_closed_forms():
    x = np.array([0.3, -1.2, 2.0, 0.7])
    np.testing.assert_allclose(ft.laplacian(lambda x: fnp.sum(fnp.sin(x)))(x), -np.sum(np.sin(x)), rtol=1e-13)
    # |x|^4: Laplacian 4 (D + 2) |x|^2
    np.testing.assert_allclose(ft.laplacian(lambda x: fnp.sum(x * x) ** 2)(x), 4 * 6 * np.sum(x * x), rtol=1e-13)
    # a matrix argument: the sum over all its elements
    X = np.array([[0.5, 1.5], [-0.3, 0.8], [1.1, -2.0]])
    f = lambda X: fnp.sum(fnp.exp(X) * X)  # noqa: E731  (second derivative (x + 2) e^x)
    np.testing.assert_allclose(ft.laplacian(f)(X), np.sum((X + 2) * np.exp(X)), rtol=1e-13)


def test_biharmonic_closed_forms_and_the_fourth_derivative_tensor():
    x = np.array([0.3, -1.2, 2.0])
    # |x|^4: Delta^2 = 8 D (D + 2)
    np.testing.assert_allclose(ft.biharmonic(lambda x: fnp.sum(x * x) ** 2)(x), 8 * 3 * 5, rtol=1e-12)
    np.testing.assert_allclose(ft.biharmonic(lambda x: fnp.sum(fnp.sin(x)))(x), np.sum(np.sin(x)), rtol=1e-12)
    rng = np.random.default_rng(4)
    params = _mlp_params(rng)
    f = lambda x: _net(params, x)  # noqa: E731
    tensor = ft.jacfwd(ft.jacfwd(ft.hessian(f)))(x)
    np.testing.assert_allclose(ft.biharmonic(f)(x), np.einsum("iijj->", tensor), rtol=1e-10)
    np.testing.assert_allclose(ft.biharmonic(f, collapse=False)(x), np.einsum("iijj->", tensor), rtol=1e-10)


def test_biharmonic_of_one_variable_is_the_fourth_derivative():
    np.testing.assert_allclose(ft.biharmonic(lambda x: fnp.sum(fnp.exp(2.0 * x)))(np.array([0.4])),
                               16 * np.exp(0.8), rtol=1e-13)


def test_weighted_laplacian_is_the_weighted_sum_of_hessian_forms():
    rng = np.random.default_rng(5)
    params, x = _mlp_params(rng), rng.normal(size=3)
    f = lambda x: _net(params, x)  # noqa: E731
    hessian = ft.hessian(f)(x)
    V, w = rng.normal(size=(5, 3)), rng.normal(size=5)
    forms = np.einsum("ri,ij,rj->r", V, hessian, V)
    np.testing.assert_allclose(ft.laplacian(f, directions=V, weights=w)(x), forms @ w, rtol=1e-11)
    np.testing.assert_allclose(ft.laplacian(f, directions=V)(x), forms.mean(), rtol=1e-11)


def test_stochastic_laplacian_averages_to_the_exact_one():
    """Hutchinson with random signs: the mean of v^T H v over R directions is within a few
    standard errors of trace(H), sqrt(2 (|H|_F^2 - sum H_ii^2) / R) (for +-1 entries)."""
    rng = np.random.default_rng(6)
    params, x = _mlp_params(rng, (4, 6, 1)), rng.normal(size=4)
    f = lambda x: _net(params, x)  # noqa: E731
    hessian = ft.hessian(f)(x)
    count = 4000
    V = rng.choice([-1.0, 1.0], size=(count, 4))
    estimate = ft.laplacian(f, directions=V)(x)
    error = np.sqrt(2 * (np.sum(hessian ** 2) - np.sum(np.diag(hessian) ** 2)) / count)
    assert abs(estimate - np.trace(hessian)) < 5 * error
    assert abs(estimate - np.trace(hessian)) > 0  # it is an estimate: not the exact value by construction


def test_stochastic_biharmonic_averages_to_the_exact_one():
    """Gaussian directions: E[d^4 f[v,v,v,v]] = 3 Delta^2 f; the estimate is within a few
    standard errors (from the per-direction values) of the exact operator."""
    rng = np.random.default_rng(7)
    params, x = _mlp_params(rng, (3, 5, 1)), rng.normal(size=3)
    f = lambda x: _net(params, x)  # noqa: E731
    count = 3000
    V = rng.normal(size=(count, 3))
    per_direction = ft.vmap(lambda v: ft.jet(f, (x,), ([v] + [fnp.zeros(3)] * 3,))[1][3])(V)
    estimate = ft.biharmonic(f, directions=V)(x)
    np.testing.assert_allclose(estimate, np.mean(per_direction) / 3, rtol=1e-10)
    standard_error = np.std(per_direction) / 3 / np.sqrt(count)
    assert abs(estimate - ft.biharmonic(f)(x)) < 5 * standard_error


def test_differential_operator_is_the_weighted_sum_of_directional_derivatives():
    rng = np.random.default_rng(8)
    params, x = _mlp_params(rng), rng.normal(size=3)
    f = lambda x: _net(params, x)  # noqa: E731
    V, w = rng.normal(size=(4, 3)), rng.normal(size=4)
    third = [nested_jvp_series(f, [x], [[v, np.zeros(3), np.zeros(3)]], 3)[2] for v in V]
    np.testing.assert_allclose(ft.differential_operator(f, 3, V, w)(x), np.dot(w, third), rtol=1e-10)
    np.testing.assert_allclose(ft.differential_operator(f, 3, V)(x), np.sum(third), rtol=1e-10)
    first = [ft.jvp(f, (x,), (v,))[1] for v in V]
    np.testing.assert_allclose(ft.differential_operator(f, 1, V, w)(x), np.dot(w, first), rtol=1e-12)


def test_laplacian_in_another_argument_and_of_a_constant():
    rng = np.random.default_rng(9)
    params, x = _mlp_params(rng), rng.normal(size=3)
    np.testing.assert_allclose(ft.laplacian(_net, argnums=1)(params, x), _hessian_trace(lambda x: _net(params, x), x),
                               rtol=1e-12)
    np.testing.assert_allclose(ft.laplacian(_net, argnums=-1)(params, x), ft.laplacian(_net, argnums=1)(params, x))
    assert ft.laplacian(lambda x: fnp.sum(x) + 1.0)(x) == 0.0


def test_laplacian_shows_the_collapsed_program():
    """The first-order coefficients of the 3 directions (3 x 6) and one summed second-order
    coefficient (6) go through each layer; a is the basis of directions."""
    params = [(np.ones((6, 3)), np.ones(6)), (np.ones((6, 6)), np.ones(6)), (np.ones((1, 6)), np.ones(1))]
    got = str(ft.make_jaxpr(ft.laplacian(_mlp, argnums=1))(params, np.ones(3)))
    assert got.strip() == GOLDEN_LAPLACIAN.strip()
    assert str(ft.parse_jaxpr(got, consts=[np.eye(3)])) == got


GOLDEN_LAPLACIAN = """
{ lambda a:f64[3,3]; b:f64[6,3] c:f64[6] d:f64[6,6] e:f64[6] f:f64[1,6] g:f64[1] h:f64[3]. let
    i:f64[6] = dot_general[dimension_numbers=(((1,), (0,)), ((), ()))] b h
    j:f64[3,6] = dot_general[dimension_numbers=(((1,), (1,)), ((), ()))] a b
    k:f64[6] = add i c
    l:f64[6] = tanh k
    m:f64[6] = neg l
    n:f64[6] = mul m l
    o:f64[6] = add n 1.0:f64[]
    p:f64[6] = mul l 2.0:f64[]
    q:f64[6] = mul p l
    r:f64[6] = add q -2.0:f64[]
    s:f64[6] = mul r l
    t:f64[3,6] = broadcast_in_dim[broadcast_dimensions=(1,) shape=(3, 6)] o
    u:f64[3,6] = mul t j
    v:f64[3,6] = mul j j
    w:f64[6] = reduce_sum[axes=(0,)] v
    x:f64[6] = mul s w
    y:f64[6] = dot_general[dimension_numbers=(((1,), (0,)), ((), ()))] d l
    z:f64[3,6] = dot_general[dimension_numbers=(((1,), (1,)), ((), ()))] u d
    ba:f64[6] = dot_general[dimension_numbers=(((0,), (1,)), ((), ()))] x d
    bb:f64[6] = add y e
    bc:f64[6] = tanh bb
    bd:f64[6] = neg bc
    be:f64[6] = mul bd bc
    bf:f64[6] = add be 1.0:f64[]
    bg:f64[6] = mul bc 2.0:f64[]
    bh:f64[6] = mul bg bc
    bi:f64[6] = add bh -2.0:f64[]
    bj:f64[6] = mul bi bc
    bk:f64[6] = mul bf ba
    bl:f64[3,6] = mul z z
    bm:f64[6] = reduce_sum[axes=(0,)] bl
    bn:f64[6] = mul bj bm
    bo:f64[6] = add bk bn
    bp:f64[1] = dot_general[dimension_numbers=(((0,), (1,)), ((), ()))] bo f
    bq:f64[] = squeeze[dimensions=(0,)] bp
  in (bq,) }
"""


def _tangent_rows_through(closed, weight):
    """How many vectors beside the primal go through `weight` (a matrix input): the rows
    of the other operands of the dot_generals that read it, less the primal's one."""
    rows = 0
    for eqn in closed.jaxpr.eqns:
        if eqn.primitive.name == "dot_general" and weight in eqn.invars:
            other = eqn.invars[1] if eqn.invars[0] is weight else eqn.invars[0]
            rows += other.aval.size // weight.aval.shape[1]
    return rows - 1


@pytest.mark.parametrize("dimension", [2, 5])
def test_collapsed_program_carries_d_plus_1_tangent_vectors_the_standard_one_2d(dimension):
    rng = np.random.default_rng(10)
    params, x = _mlp_params(rng, (dimension, 7, 7, 1)), rng.normal(size=dimension)
    hidden = lambda closed: closed.jaxpr.invars[2]  # noqa: E731  (the second layer's weight)
    collapsed = ft.make_jaxpr(ft.laplacian(_mlp, argnums=1))(params, x)
    standard = ft.make_jaxpr(ft.laplacian(_mlp, argnums=1, collapse=False))(params, x)
    assert _tangent_rows_through(collapsed, hidden(collapsed)) == dimension + 1
    assert _tangent_rows_through(standard, hidden(standard)) == 2 * dimension


def test_collapse_false_computes_the_same_operators():
    rng = np.random.default_rng(11)
    params, x = _mlp_params(rng), rng.normal(size=3)
    f = lambda x: _net(params, x)  # noqa: E731
    np.testing.assert_allclose(ft.laplacian(f, collapse=False)(x), ft.laplacian(f)(x), rtol=1e-12)
    V = rng.normal(size=(3, 3))
    np.testing.assert_allclose(ft.biharmonic(f, directions=V, collapse=False)(x),
                               ft.biharmonic(f, directions=V)(x), rtol=1e-11)


def test_laplacian_goes_through_jitted_inner_functions():
    """Inner jit_calls are inlined before the collapse, so the sum goes through them too."""
    rng = np.random.default_rng(12)
    params, x = _mlp_params(rng), rng.normal(size=3)
    layer = ft.jit(lambda W, b, h: fnp.tanh(W @ h + b))

    def f(x):
        for W, b in params[:-1]:
            x = layer(W, b, x)
        W, b = params[-1]
        return (W @ x + b)[0]
    program = ft.make_jaxpr(ft.laplacian(f))(x)
    assert "jit_call" not in str(program)
    np.testing.assert_allclose(ft.laplacian(f)(x), _hessian_trace(f, x), rtol=1e-12)


# -------------------- batching, jit, grad, dtypes --------------------

def test_vmap_of_laplacian_over_points_equals_a_loop_and_jit_equals_eager():
    rng = np.random.default_rng(13)
    params, points = _mlp_params(rng), rng.normal(size=(6, 3))
    batched = ft.vmap(ft.laplacian(_net, argnums=1), in_axes=(None, 0))
    want = [_hessian_trace(lambda x: _net(params, x), x) for x in points]
    np.testing.assert_allclose(batched(params, points), want, rtol=1e-12)
    np.testing.assert_allclose(ft.jit(batched)(params, points), batched(params, points), rtol=1e-13)
    biharmonic = ft.vmap(ft.biharmonic(_net, argnums=1), in_axes=(None, 0))
    np.testing.assert_allclose(ft.jit(biharmonic)(params, points), [ft.biharmonic(_net, argnums=1)(params, x)
                                                                    for x in points], rtol=1e-11)


def test_vmap_of_stochastic_laplacian_over_batched_directions():
    rng = np.random.default_rng(14)
    params, x = _mlp_params(rng), rng.normal(size=3)
    directions = rng.normal(size=(4, 2, 3))  # 4 draws of 2 directions
    f = lambda V: ft.laplacian(lambda x: _net(params, x), directions=V)(x)  # noqa: E731
    np.testing.assert_allclose(ft.vmap(f)(directions), [f(V) for V in directions], rtol=1e-12)
    np.testing.assert_allclose(ft.jit(ft.vmap(f))(directions), [f(V) for V in directions], rtol=1e-12)


def test_grad_through_the_laplacian_with_respect_to_parameters():
    """A PINN's loss: grad of the mean squared Laplacian over points, against the same
    through trace(hessian), eagerly and under jit."""
    rng = np.random.default_rng(15)
    params, points = _mlp_params(rng), rng.normal(size=(4, 3))
    lap = ft.vmap(ft.laplacian(_net, argnums=1), in_axes=(None, 0))
    loss = lambda p: fnp.mean(lap(p, points) ** 2)  # noqa: E731
    by_hessian = lambda p: fnp.mean(ft.vmap(  # noqa: E731
        lambda x: fnp.einsum("ii->", ft.hessian(_net, argnums=1)(p, x)))(points) ** 2)
    want = ft.tree_util.tree_flatten(ft.grad(by_hessian)(params))[0]
    for got in (ft.grad(loss)(params), ft.jit(ft.grad(loss))(params)):
        for g, w in zip(ft.tree_util.tree_flatten(got)[0], want, strict=True):
            np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-12)


def test_laplacian_of_a_function_closing_over_a_traced_value():
    """d/dw of Laplacian(x -> sin(w x) summed) = -sum(2 w x^2 sin(wx) + w^2 x^3 cos(wx))... checked by grad."""
    x = np.array([0.3, 0.9])
    f = lambda w: ft.laplacian(lambda x: fnp.sum(fnp.sin(w * x)))(x)  # noqa: E731
    closed_form = lambda w: -w ** 2 * np.sum(np.sin(w * x))  # noqa: E731
    np.testing.assert_allclose(f(1.3), closed_form(1.3), rtol=1e-13)
    want = -2 * 1.3 * np.sum(np.sin(1.3 * x)) - 1.3 ** 2 * np.sum(x * np.cos(1.3 * x))
    np.testing.assert_allclose(ft.grad(f)(1.3), want, rtol=1e-12)
    np.testing.assert_allclose(ft.jit(ft.grad(f))(1.3), want, rtol=1e-12)


def test_operators_keep_float32():
    rng = np.random.default_rng(16)
    params = [(W.astype(np.float32), b.astype(np.float32)) for W, b in _mlp_params(rng)]
    x = rng.normal(size=3).astype(np.float32)
    f = lambda x: _net(params, x)  # noqa: E731
    params64 = [(W.astype(np.float64), b.astype(np.float64)) for W, b in params]
    exact = _hessian_trace(lambda x: _net(params64, x), x.astype(np.float64))
    for value in (ft.laplacian(f)(x), ft.jit(ft.laplacian(f))(x),
                  ft.laplacian(f, directions=np.eye(3))(x) * 3):  # float64 directions take x's dtype
        assert value.dtype == np.float32
        np.testing.assert_allclose(value, exact, rtol=1e-4, atol=1e-5)
    assert ft.biharmonic(f)(x).dtype == np.float32


# -------------------- the operators: errors --------------------

def test_laplacian_of_a_non_scalar_function_is_a_type_error():
    with pytest.raises(TypeError, match=r"laplacian requires a scalar output, but the function returned shape \(3,\)"):
        ft.laplacian(fnp.sin)(np.ones(3))
    with pytest.raises(TypeError, match="scalar output.*a pytree of 2 leaves"):
        ft.laplacian(lambda x: (fnp.sum(x), fnp.sum(x)))(np.ones(3))


def test_laplacian_of_integer_inputs_is_a_type_error():
    with pytest.raises(TypeError, match="laplacian requires a floating-point input, but argument 0 has dtype int64"):
        ft.laplacian(lambda x: fnp.sum(x * x))(np.arange(3))
    with pytest.raises(TypeError, match="biharmonic requires a floating-point input, but argument 1"):
        ft.biharmonic(lambda a, x: fnp.sum(x), argnums=1)(1.0, np.arange(3))


def test_operator_directions_and_weights_of_the_wrong_shape_are_value_errors():
    f = lambda x: fnp.sum(x ** 3)  # noqa: E731
    x = np.ones(3)
    with pytest.raises(ValueError, match=r"directions must have shape \(R,\) \+ x.shape = \(R, 3\).*got f64\[2,4\]"):
        ft.laplacian(f, directions=np.ones((2, 4)))(x)
    with pytest.raises(ValueError, match="directions must have shape"):
        ft.biharmonic(f, directions=np.ones(3))(x)
    with pytest.raises(ValueError, match="directions must have shape"):
        ft.laplacian(f, directions=np.ones((0, 3)))(x)
    with pytest.raises(ValueError, match=r"weights must have shape \(2,\), one per direction, got f64\[3\]"):
        ft.laplacian(f, directions=np.ones((2, 3)), weights=np.ones(3))(x)
    with pytest.raises(ValueError, match="weights go with directions"):
        ft.laplacian(f, weights=np.ones(3))


def test_operator_argument_errors():
    f = lambda x: fnp.sum(x ** 3)  # noqa: E731
    with pytest.raises(TypeError, match="argnums must be one int"):
        ft.laplacian(f, argnums=(0, 1))
    with pytest.raises(ValueError, match="argnums=2 refers to positional argument 2"):
        ft.laplacian(f, argnums=2)(np.ones(3))
    with pytest.raises(TypeError, match="argument 0 must be one array"):
        ft.laplacian(lambda p: p["x"] ** 2)({"x": np.ones(3)})
    with pytest.raises(TypeError, match="order must be a positive int"):
        ft.differential_operator(f, 0, np.ones((1, 3)))
    with pytest.raises(TypeError, match="laplacian expects a callable"):
        ft.laplacian("f")
    with pytest.raises(TypeError, match="laplacian requires a real floating-point output"):
        ft.laplacian(lambda x: fnp.sum(x) > 0)(np.ones(3))
