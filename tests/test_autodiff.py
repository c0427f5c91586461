"""Differentiation: every primitive's jvp against central finite differences and
its vjp against its jvp (adjoint identity), closed forms, nesting, conventions, errors;
and jit of grad, jvp and vjp equal to eager, on every jit backend."""
import collections
import math
import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import ftrans as ft
import ftrans.numpy as fnp
import ir
import matrix_cases
from conftest import (NamedAxisCase, check_rules_inside_the_axis, collective_examples, jit_for, share_of_profile,
                      under_named_axis)
from interpreters import ad, ad_eager
from interpreters.eval import eval_jaxpr
from ir.core import Array

# -------------------- one row per primitive --------------------

positive = dict(min_value=0.3, max_value=2.0)
anywhere = dict(min_value=-2.0, max_value=2.0)
small = dict(min_value=-1.2, max_value=1.2)

def _flat(x):
    return fnp.reshape(x, (-1,))


# primitive name -> (function of one or two float arrays, value domain, number of args)
DIFFERENTIABLE = {
    "neg": (lambda x: -x, anywhere, 1),
    # rounding to float64's own format: the identity, so finite differences can check the rules' plumbing
    "reduce_precision": (lambda x: ft.lax.reduce_precision(fnp.sin(x), 11, 52) * x, anywhere, 1),
    "abs": (lambda x: fnp.abs(x) * x, anywhere, 1),  # smooth at 0 after multiplying by x
    "sin": (fnp.sin, anywhere, 1), "cos": (fnp.cos, anywhere, 1), "tan": (fnp.tan, small, 1),
    "atan": (fnp.arctan, anywhere, 1), "sinh": (fnp.sinh, anywhere, 1), "cosh": (fnp.cosh, anywhere, 1),
    "tanh": (fnp.tanh, anywhere, 1), "exp": (fnp.exp, anywhere, 1), "log": (fnp.log, positive, 1),
    "log1p": (fnp.log1p, positive, 1), "expm1": (fnp.expm1, anywhere, 1), "sqrt": (fnp.sqrt, positive, 1),
    "logistic": (lambda x: ft.lax.logistic(x), anywhere, 1),
    "erf": (ft.lax.erf, anywhere, 1), "erfc": (ft.lax.erfc, anywhere, 1),
    "erf_inv": (ft.lax.erf_inv, dict(min_value=-0.8, max_value=0.8), 1),
    "lgamma": (ft.lax.lgamma, positive, 1), "digamma": (ft.lax.digamma, positive, 1),
    "polygamma": (lambda x: ft.lax.polygamma(2, x), positive, 1),
    # the incomplete gamma and beta functions, order 2 in x (tests/test_scipy.py checks order 1 in a and b
    # where they are differentiable); x * 2 spans the series (x < a) and the continued fraction
    "igamma": (lambda x: ft.lax.igamma(1.7, x * 2.0), positive, 1),
    "igammac": (lambda x: ft.lax.igammac(0.6, x * 3.0), positive, 1),
    "igamma_grad_a": (lambda x: ft.lax.igamma_grad_a(1.7, x * 2.0), positive, 1),
    "random_gamma_grad": (lambda x: ft.lax.random_gamma_grad(1.7, x * 2.0), positive, 1),
    "regularized_incomplete_beta": (lambda x: ft.lax.betainc(1.5, 2.5, x / 2.5), positive, 1),
    # the decompositions, of a 3x3 matrix moved along a curve by x (tests/matrix_cases.py)
    **{name: (fun, anywhere, nargs) for name, (fun, nargs) in matrix_cases.FUNCTIONS.items()},
    "integer_pow": (lambda x: x ** 3 + x ** -2 + x ** 2, positive, 1),
    "add": (lambda x, y: x + y, anywhere, 2), "sub": (lambda x, y: x - y, anywhere, 2),
    "mul": (lambda x, y: x * y, anywhere, 2), "div": (lambda x, y: x / y, positive, 2),
    "pow": (lambda x, y: x ** y, positive, 2),
    "atan2": (lambda x, y: fnp.arctan2(x, y + 3.0), anywhere, 2),
    "mod": (lambda x, y: fnp.mod(x, y + 3.0), positive, 2),
    "max": (lambda x, y: fnp.maximum(x, y + 0.05), anywhere, 2),
    "min": (lambda x, y: fnp.minimum(x, y + 0.05), anywhere, 2),
    "select_n": (lambda x, y: fnp.where(x > y, x * y, fnp.sin(y)), anywhere, 2),
    # a float32 round trip: finite differences need a coarse step and tolerance (see CHECK_OPTIONS)
    "convert_element_type": (lambda x: x.astype(np.float32).astype(np.float64) * x, anywhere, 1),
    "broadcast_in_dim": (lambda x: fnp.broadcast_to(x, (2,) + x.shape) * fnp.sin(x), anywhere, 1),
    "reshape": (lambda x: fnp.reshape(x, (-1,)) ** 2, anywhere, 1),
    "transpose": (lambda x: fnp.transpose(x) * fnp.arange(float(x.size)).reshape(x.shape[::-1]), anywhere, 1),
    "squeeze": (lambda x: fnp.squeeze(fnp.expand_dims(x, 0), 0) ** 2, anywhere, 1),
    "concatenate": (lambda x, y: fnp.concatenate([fnp.ravel(x), fnp.ravel(y * 2.0), fnp.ravel(x * y)]) ** 2, anywhere, 2),
    "slice": (lambda x: fnp.reshape(x, (-1,))[1::2] ** 2, anywhere, 1),
    "pad": (lambda x: ft.lax.pad(x, 0.5, [(1, 2, 1)] * x.ndim) ** 2, anywhere, 1),
    "rev": (lambda x: fnp.reshape(x, (-1,))[::-1] * fnp.reshape(x, (-1,)), anywhere, 1),
    "reduce_sum": (lambda x: fnp.sum(x ** 2, axis=0 if x.ndim else None), anywhere, 1),
    "reduce_prod": (lambda x: fnp.prod(x, axis=0 if x.ndim else None), anywhere, 1),
    "reduce_max": (lambda x: fnp.max(x * 1.0, axis=0 if x.ndim else None), anywhere, 1),
    "reduce_min": (lambda x: fnp.min(x, axis=-1 if x.ndim else None), anywhere, 1),
    "dot_general": (lambda x, y: fnp.einsum("...,...->", x, y) + fnp.tensordot(x, y, x.ndim), anywhere, 2),
    "gather": (lambda x: fnp.reshape(x, (-1,))[np.array([0, 0, -1])] ** 2, anywhere, 1),
    # sort's keys carry a second operand along; the tangents are permuted as the keys are
    "sort": (lambda x, y: fnp.stack(ft.lax.sort_key_val(_flat(x * 1.5), _flat(y) ** 2)) * _flat(y), anywhere, 2),
    "cumsum": (lambda x: ft.lax.cumsum(_flat(x) ** 2, reverse=True) * _flat(x), anywhere, 1),
    "cumprod": (lambda x: ft.lax.cumprod(_flat(x)) + ft.lax.cumprod(_flat(x), reverse=True), anywhere, 1),
    "cummax": (lambda x: ft.lax.cummax(_flat(x)) * _flat(x), anywhere, 1),
    "cummin": (lambda x: ft.lax.cummin(_flat(x), reverse=True) * _flat(x), anywhere, 1),
    "scatter_add": (lambda x: fnp.at(fnp.reshape(x, (-1,)))[np.array([0, 0])].add(fnp.reshape(x, (-1,))[0] ** 2), anywhere, 1),
    "scatter": (lambda x: fnp.at(fnp.reshape(x, (-1,)))[-1].set(fnp.sum(x) ** 2), anywhere, 1),
    # repeated positions, the updates depending on x too (0.05 apart from it: no ties, see below)
    "scatter_mul": (lambda x: fnp.at(_flat(x))[np.array([0, 0, -1])].multiply(fnp.sin(_flat(x)[np.array([-1, 0, 0])])),
                    anywhere, 1),
    "scatter_min": (lambda x: fnp.at(_flat(x))[np.array([0, 0, -1])].min(_flat(x)[np.array([-1, 0, 0])] + 0.05),
                    anywhere, 1),
    "scatter_max": (lambda x: fnp.at(_flat(x))[np.array([0, 0, -1])].max(_flat(x)[np.array([-1, 0, 0])] - 0.05),
                    anywhere, 1),
    "jit_call": (lambda x, y: ft.jit(lambda a, b: fnp.sin(a) * b + a)(x, y) ** 2, anywhere, 2),
    # a predicate no drawn value lies within a finite-difference step of
    "cond": (lambda x, y: ft.lax.cond(fnp.sum(x) > 0.1234, lambda a, b: fnp.sin(a) * b, lambda a, b: a * b + b ** 2,
                                      x, y), anywhere, 2),
    "scan": (lambda x, y: _scanned(x, fnp.reshape(y, (-1,))), anywhere, 2),
    "while": (lambda x, y: _looped(x, y), anywhere, 2),
    # the reverse sweep jit(grad) of a while_loop runs (its trip count abstract there): reverse of reverse
    # through it is recorded and applied once the trip count is known (while_reverse's transforms)
    "while_reverse": (lambda x, y: ft.jit(ft.grad(lambda a, b: fnp.sum(_looped(a, b))))(x, y), anywhere, 2),
    "custom_jvp_call": (lambda x, y: _custom_sin_times(x, y) * x, anywhere, 2),
    "checkpoint": (lambda x, y: ft.checkpoint(lambda a, b: fnp.sin(fnp.sin(a) * b))(x, y) * x, anywhere, 2),
    "name": (lambda x: ft.ad_checkpoint.checkpoint_name(fnp.sin(x), "s") * x, anywhere, 1),
    # complex parts, between real inputs and real outputs (tests/test_complex.py has complex inputs)
    "complex": (lambda x, y: fnp.real(_complex(x, y) ** 2 * (0.5 - 1j))
                + fnp.imag(_complex(x, y) * fnp.exp(_complex(y, x))),
                anywhere, 2),
    "real": (lambda x: fnp.real(fnp.exp(x * (1 + 2j))), anywhere, 1),
    # every fft type (fft_types below): a band of the real spectrum, back through irfft and the complex pair
    "fft": (lambda x: _spectral(x), anywhere, 1),
    "imag": (lambda x: fnp.imag(fnp.sin(x * (1 - 0.5j)) * x), anywhere, 1),
    "conj": (lambda x, y: fnp.real(fnp.conj(_complex(x, y)) * _complex(y, x * x) * (2 + 1j)), anywhere, 2),
    # the collectives, over an axis that vmap(axis_name="i") binds (conftest.under_named_axis)
    **{name: (under_named_axis(fun), small, 1) for name, fun in collective_examples(ft.lax, fnp).items()},
}


@ft.custom_jvp
def _custom_sin_times(x, y):
    """sin(x) * y, with its own (correct) rule: the derivative of f through the rule."""
    return fnp.sin(x) * y


@_custom_sin_times.defjvp
def _custom_sin_times_jvp(primals, tangents):
    (x, y), (tx, ty) = primals, tangents
    return _custom_sin_times(x, y), fnp.cos(x) * y * tx + fnp.sin(x) * ty


@ft.custom_vjp
def _custom_vjp_sin_times(x, y):
    return fnp.sin(x) * y


def _sin_times_fwd(x, y):
    return _custom_vjp_sin_times(x, y), (fnp.cos(x), fnp.sin(x), y)


def _sin_times_bwd(residuals, g):
    cos_x, sin_x, y = residuals
    return cos_x * y * g, sin_x * g


_custom_vjp_sin_times.defvjp(_sin_times_fwd, _sin_times_bwd)

# primitives that reverse mode alone differentiates (forward mode through them is a TypeError, as in
# JAX): custom_vjp_call, and custom_lin, the linear map its linearization holds
REVERSE_ONLY = {
    "custom_vjp_call": (lambda x, y: _custom_vjp_sin_times(x, y) * x, anywhere, 2),
    "custom_lin": (lambda x, y: _custom_vjp_sin_times(x * x, y), anywhere, 2),
}

# Primitives differentiated in forward mode only.
FORWARD_ONLY = {}


def _looped(x, y):
    """Three iterations (a trip count no drawn value changes) of a nonlinear body."""
    return ft.lax.while_loop(lambda c: c[0] < 3, lambda c: (c[0] + 1, fnp.sin(c[1]) * y + c[1] * 0.5), (0, x))[1]



def _complex(x, y):
    return ir.primitives.elementwise.complex(x, y)


def _spectral(x):
    x = fnp.reshape(x, (-1,))
    spectrum = fnp.fft.rfft(x, n=5)
    band = fnp.sum(fnp.real(spectrum[1:3] * fnp.conj(spectrum[1:3])))  # |s|^2, smooth at s = 0 too
    back = fnp.fft.irfft(spectrum * (1 - 0.5j), n=x.size)
    round_trip = fnp.real(fnp.fft.ifft(fnp.fft.fft(x * (1 + 1j)) * fnp.exp(1j * fnp.arange(x.size))))
    return band + fnp.sum(back * x) + fnp.sum(round_trip ** 2)


def _scanned(init, xs):
    """A scan carrying `init` over the elements of `xs`: the final carry plus the sum of the ys."""
    carry, ys = ft.lax.scan(lambda c, e: (fnp.sin(c) * e + c * 0.5, c * e), init, xs)
    return carry + fnp.sum(ys)

CHECK_OPTIONS = {"convert_element_type": dict(atol=1e-2, rtol=1e-2, eps=1e-3)}


# primitives whose outputs are integers/bools or piecewise constant: zero derivative
NOT_DIFFERENTIABLE = {"sign", "floor", "ceil", "not", "floor_divide", "and", "or", "xor", "eq", "ne",
                      "lt", "le", "gt", "ge", "iota", "argmax", "argmin", "stop_gradient",
                      # host callbacks: debug_callback has no outputs; pure_callback's derivative is
                      # unknown (a ValueError under differentiation, zero of a stop_gradient'd input)
                      "debug_callback", "pure_callback",
                      "shift_left", "shift_right_logical", "threefry2x32"}


def test_every_primitive_is_in_a_table():
    assert set(DIFFERENTIABLE) | set(FORWARD_ONLY) | set(REVERSE_ONLY) | NOT_DIFFERENTIABLE == (
        set(ir.PRIMITIVES) - _test_only_primitives())


@pytest.mark.parametrize("name", sorted(REVERSE_ONLY))
@given(data=st.data())
def test_reverse_only_primitives_match_finite_differences_and_jit(name, data):
    """Reverse mode to second order against finite differences; jit of grad and vjp against eager;
    jvp is a TypeError."""
    fun, domain, nargs = REVERSE_ONLY[name]
    args = _args(data.draw, domain, nargs)
    ft.check_grads(fun, args, order=2, modes=("rev",), atol=1e-5, rtol=1e-5, eps=1e-5)
    loss = lambda *xs: fnp.sum(fun(*xs) ** 2)  # noqa: E731
    argnums = tuple(range(nargs))
    _assert_jit_equals_eager(ft.jit(ft.grad(loss, argnums))(*args), ft.grad(loss, argnums)(*args),
                             f"{name}: jit of grad")
    ct = np.ones(np.shape(fun(*args)))
    vjp = lambda ct, *xs: ft.vjp(fun, *xs)[1](ct)  # noqa: E731
    _assert_jit_equals_eager(ft.jit(vjp)(ct, *args), vjp(ct, *args), f"{name}: jit of vjp")
    with pytest.raises(TypeError, match="forward-mode"):
        ft.jvp(fun, args, args)


def _test_only_primitives():
    return {name for name in ir.PRIMITIVES if name.startswith("test_")}


def _args(draw, domain, nargs):
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=2, min_side=1, max_side=3))
    return tuple(draw(hnp.arrays(np.float64, shape, elements=st.floats(**domain))) for _ in range(nargs))


@pytest.mark.parametrize("name", sorted(DIFFERENTIABLE))
@given(data=st.data())
def test_jvp_and_vjp_match_finite_differences(name, data):
    fun, domain, nargs = DIFFERENTIABLE[name]
    args = _args(data.draw, domain, nargs)
    if name in ("reduce_max", "reduce_min", "max", "min", "select_n", "abs", "mod", "scatter_min", "scatter_max",
                "sort", "cummax", "cummin"):
        # stay away from kinks/ties, where finite differences are meaningless
        values = np.concatenate([np.ravel(a) for a in args])
        if len(values) > 1 and np.min(np.diff(np.sort(values))) < 0.1 or np.min(np.abs(values)) < 0.1:
            return
    options = CHECK_OPTIONS.get(name, dict(atol=1e-5, rtol=1e-5, eps=1e-5))
    ft.check_grads(fun, args, order=2, modes=("fwd", "rev"), **options)
    if isinstance(fun, NamedAxisCase):  # a collective: its own rules, inside the vmap binding its axis
        check_rules_inside_the_axis(fun, args)


@pytest.mark.parametrize("name", sorted(FORWARD_ONLY))
@given(data=st.data())
def test_forward_only_primitives_jvp_matches_finite_differences_and_jit(name, data):
    fun, domain, nargs = FORWARD_ONLY[name]
    args = _args(data.draw, domain, nargs)
    ft.check_grads(fun, args, order=2, modes=("fwd",), atol=1e-5, rtol=1e-5, eps=1e-5)
    tangents = tuple(np.ones_like(a) for a in args)
    jvp = lambda xs, ts: ft.jvp(fun, xs, ts)  # noqa: E731
    _assert_jit_equals_eager(ft.jit(jvp)(args, tangents), jvp(args, tangents), f"{name}: jit of jvp")


def _assert_jit_equals_eager(got, want, what):
    """The same pytree of numpy.ndarrays, shapes and dtypes, values to a few ulps (jit turns
    integer powers into multiplications) beside an absolute allowance for cancellation."""
    got_leaves, got_tree = ft.tree_util.tree_flatten(got)
    want_leaves, want_tree = ft.tree_util.tree_flatten(want)
    assert got_tree == want_tree, what
    for g, w in zip(got_leaves, want_leaves, strict=True):
        assert type(g) is Array and (g.shape, g.dtype) == (w.shape, w.dtype), (what, g, w)
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-12, err_msg=what)


@pytest.mark.parametrize("name", sorted(DIFFERENTIABLE))
@share_of_profile(1 / 2)
@given(data=st.data())
def test_jit_of_grad_jvp_and_vjp_equals_eager(name, data, jit_backend):
    fun, domain, nargs = DIFFERENTIABLE[name]
    args = _args(data.draw, domain, nargs)
    argnums = tuple(range(nargs))
    out = fun(*args)
    draw_like = lambda label: data.draw(hnp.arrays(np.float64, np.shape(out), elements=st.floats(-2.0, 2.0)),
                                        label=label)
    ct = draw_like("cotangent")
    tangents = tuple(data.draw(hnp.arrays(np.float64, np.shape(a), elements=st.floats(-2.0, 2.0)), label="tangent")
                     for a in args)

    # grad, of the output weighted by a drawn cotangent (a scalar, for any output shape)
    loss = lambda *xs: fnp.sum(fun(*xs) * ct)  # noqa: E731
    _assert_jit_equals_eager(jit_for(ft.grad(loss, argnums), jit_backend)(*args), ft.grad(loss, argnums)(*args),
                             f"{name}: jit of grad")
    # jvp: the primal output and the tangent
    jvp = lambda xs, ts: ft.jvp(fun, xs, ts)  # noqa: E731
    _assert_jit_equals_eager(jit_for(jvp, jit_backend)(args, tangents), jvp(args, tangents), f"{name}: jit of jvp")
    # vjp: the primal output and the cotangents of every argument (the eager tape, against the staged vjp)
    vjp = lambda ct, *xs: (fun(*xs), ft.vjp(fun, *xs)[1](ct))  # noqa: E731
    _assert_jit_equals_eager(jit_for(vjp, jit_backend)(ct, *args), vjp(ct, *args), f"{name}: jit of vjp")


@pytest.mark.parametrize("name", sorted(NOT_DIFFERENTIABLE - {"iota", "stop_gradient"}))
def test_piecewise_constant_primitives_have_zero_derivative(name):
    x = np.array([0.3, -1.7, 2.2])
    uses = {
        "sign": lambda x: fnp.sign(x) * 1.0, "floor": fnp.floor, "ceil": fnp.ceil,
        "not": lambda x: fnp.where(fnp.logical_not(x > 0), 1.0, 2.0),
        "floor_divide": lambda x: x // 0.7, "and": lambda x: fnp.where((x > 0) & (x < 1), 1.0, 0.0),
        "or": lambda x: fnp.where((x > 0) | (x < -1), 1.0, 0.0), "xor": lambda x: fnp.where((x > 0) ^ (x < 1), 1.0, 0.0),
        "eq": lambda x: (x == 0.3) * 1.0, "ne": lambda x: (x != 0.3) * 1.0, "lt": lambda x: (x < 0) * 1.0,
        "le": lambda x: (x <= 0) * 1.0, "gt": lambda x: (x > 0) * 1.0, "ge": lambda x: (x >= 0) * 1.0,
        "argmax": lambda x: fnp.argmax(x) * 1.0, "argmin": lambda x: fnp.argmin(x) * 1.0,
        "debug_callback": lambda x: (ft.debug.callback(lambda v: None, x), 1.0)[1],
        "pure_callback": lambda x: ft.pure_callback(np.sin, ft.ShapeDtypeStruct((3,), x.dtype),
                                                    ft.lax.stop_gradient(x)),
        "shift_left": lambda x: ft.lax.shift_left((x > 0).astype(np.int64), 3) * 1.0,
        "shift_right_logical": lambda x: ft.lax.shift_right_logical((x > 0).astype(np.int64) * 8, 2) * 1.0,
        "threefry2x32": lambda x: ft.random.uniform(ft.random.fold_in(ft.random.PRNGKey(0), fnp.sum(x > 0)), (3,)),
    }
    np.testing.assert_array_equal(ft.grad(lambda x: fnp.sum(uses[name](x)))(x), np.zeros(3))


def test_stop_gradient_blocks_derivatives():
    assert ft.grad(lambda x: ft.lax.stop_gradient(x) * x)(3.0) == 3.0
    assert ft.grad(ft.grad(lambda x: ft.lax.stop_gradient(x ** 2) * x))(3.0) == 0.0


# -------------------- closed forms --------------------

def test_seed_exercises_closed_forms():
    x = 1.3
    assert np.isclose(ft.grad(lambda x: x ** 3 - fnp.log(x))(x), 3 * x ** 2 - 1 / x)
    sigmoid = lambda x: 1 / (1 + fnp.exp(-x))
    assert np.isclose(ft.grad(sigmoid)(x), sigmoid(x) * (1 - sigmoid(x)))
    hinge = lambda x: fnp.maximum(0.0, 1.0 - x)
    assert ft.grad(hinge)(0.5) == -1.0 and ft.grad(hinge)(1.5) == 0.0
    a, b, c = 2.0, 3.0, 5.0
    grads = ft.grad(lambda a, b, c: c * (a + b), argnums=(0, 1, 2))(a, b, c)
    assert np.allclose(grads, (c, c, a + b))
    grads = ft.grad(lambda x, y: (x + y) + x * (x + y), argnums=(0, 1))(a, b)
    assert np.allclose(grads, (1 + 2 * a + b, 1 + a))
    assert np.allclose(ft.grad(lambda x, y: fnp.sin(x) + fnp.sin(y), argnums=(0, 1))(a, b), (np.cos(a), np.cos(b)))


def test_svm_objective_gradient():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(20, 3)), rng.choice([-1.0, 1.0], size=20)
    w, lam = rng.normal(size=3), 0.1

    def objective(w):
        return fnp.mean(fnp.maximum(0.0, 1.0 - y * (X @ w))) + lam * fnp.sum(w ** 2)
    margins = 1.0 - y * (X @ w)
    assert np.all(np.abs(margins) > 1e-9)
    expected = -(X * (y * (margins > 0))[:, None]).mean(0) + 2 * lam * w
    np.testing.assert_allclose(ft.grad(objective)(w), expected, rtol=1e-12)


def test_linear_regression_gradient():
    rng = np.random.default_rng(1)
    X, y, w = rng.normal(size=(30, 4)), rng.normal(size=30), rng.normal(size=4)
    loss = lambda w: fnp.mean((X @ w - y) ** 2)
    np.testing.assert_allclose(ft.grad(loss)(w), 2 * X.T @ (X @ w - y) / 30, rtol=1e-12)


def test_quadratic_form_gradient_and_hessian():
    rng = np.random.default_rng(2)
    A, b, x = rng.normal(size=(4, 4)), rng.normal(size=4), rng.normal(size=4)
    f = lambda x, A: x @ A @ x + b @ x + 1.0
    np.testing.assert_allclose(ft.grad(f)(x, A), (A + A.T) @ x + b, rtol=1e-12)
    np.testing.assert_allclose(ft.grad(f, argnums=1)(x, A), np.outer(x, x), rtol=1e-12)
    np.testing.assert_allclose(ft.hessian(f)(x, A), A + A.T, rtol=1e-12)
    np.testing.assert_allclose(ft.jacfwd(ft.jacrev(f))(x, A), A + A.T, rtol=1e-12)


def test_two_layer_tanh_net_against_hand_backprop():
    rng = np.random.default_rng(3)
    W, b, V, a, x = rng.normal(size=(5, 3)), rng.normal(size=5), rng.normal(size=(2, 5)), rng.normal(size=2), rng.normal(size=3)
    loss = lambda W, b, V, a: fnp.sum((V @ fnp.tanh(W @ x + b) + a) ** 2)
    h = np.tanh(W @ x + b)
    out = V @ h + a
    d_out = 2 * out
    d_h = V.T @ d_out * (1 - h ** 2)
    expected = (np.outer(d_h, x), d_h, np.outer(d_out, h), d_out)
    for got, want in zip(ft.grad(loss, argnums=(0, 1, 2, 3))(W, b, V, a), expected):
        np.testing.assert_allclose(got, want, rtol=1e-12)


def _nth(f, n):
    for _ in range(n):
        f = ft.grad(f)
    return f


@pytest.mark.parametrize("n", range(1, 7))
def test_nth_derivatives_of_sin_exp_tanh_and_powers(n):
    t = 0.4
    assert np.isclose(_nth(fnp.sin, n)(t), [np.sin, np.cos, lambda x: -np.sin(x), lambda x: -np.cos(x)][n % 4](t), rtol=1e-12)
    assert np.isclose(_nth(fnp.exp, n)(t), np.exp(t), rtol=1e-12)
    for k in (3, 5, 7):
        expected = math.perm(k, n) * t ** (k - n) if n <= k else 0.0
        assert np.isclose(_nth(lambda x: x ** k, n)(t), expected, rtol=1e-12, atol=1e-12)
    # tanh: derivatives are polynomials in y = tanh t, built by y' = 1 - y^2
    poly = np.polynomial.Polynomial([0, 1])
    for _ in range(n):
        poly = poly.deriv() * np.polynomial.Polynomial([1, 0, -1])
    assert np.isclose(_nth(fnp.tanh, n)(t), poly(np.tanh(t)), rtol=1e-10)


# -------------------- composition --------------------

def test_classic_nested_derivatives():
    assert np.isclose(ft.grad(ft.grad(lambda x: fnp.sin(x) * x))(0.7), 2 * np.cos(0.7) - 0.7 * np.sin(0.7))
    assert ft.grad(lambda x: ft.grad(lambda y: x * y)(1.0))(2.0) == 1.0
    assert ft.grad(lambda x: ft.grad(lambda y: x * y)(x))(2.0) == 1.0
    # d/dx [x * d/dy (x + y)] = 1: no perturbation confusion
    assert ft.grad(lambda x: x * ft.grad(lambda y: x + y)(1.0))(3.0) == 1.0


def test_third_order_and_jvp_of_grad():
    f = lambda x: fnp.sin(x) * x ** 2
    x = 0.9
    third = 6 * np.cos(x) - 6 * x * np.sin(x) - x ** 2 * np.cos(x)
    assert np.isclose(ft.grad(ft.grad(ft.grad(f)))(x), third, rtol=1e-12)
    _, hvp = ft.jvp(ft.grad(f), (x,), (1.0,))
    assert np.isclose(hvp, 2 * np.sin(x) + 4 * x * np.cos(x) - x ** 2 * np.sin(x))


def test_grad_of_a_function_calling_jvp():
    def directional(x):
        return ft.jvp(lambda y: fnp.sum(fnp.sin(y) * y), (x,), (fnp.ones_like(x),))[1]
    x = np.array([0.2, 0.5])
    expected = 2 * np.cos(x) - x * np.sin(x)  # d/dx_i of (cos x_i * x_i + sin x_i)
    np.testing.assert_allclose(ft.grad(directional)(x), expected, rtol=1e-12)


def test_jvp_and_vjp_satisfy_the_adjoint_identity_on_a_network():
    rng = np.random.default_rng(4)
    W = rng.normal(size=(3, 4))
    f = lambda x: fnp.tanh(W @ x) * fnp.sum(x ** 2)
    x, v, u = rng.normal(size=4), rng.normal(size=4), rng.normal(size=3)
    _, jv = ft.jvp(f, (x,), (v,))
    _, vjp_fn = ft.vjp(f, x)
    (ju,) = vjp_fn(u)
    assert np.isclose(u @ jv, ju @ v, rtol=1e-12)


def test_linearize_matches_jvp():
    f = lambda x: fnp.sin(x) * fnp.exp(x)
    x, v = np.array([0.1, 0.4]), np.array([1.0, -2.0])
    out, f_jvp = ft.linearize(f, x)
    np.testing.assert_allclose(out, f(x))
    np.testing.assert_allclose(f_jvp(v), ft.jvp(f, (x,), (v,))[1], rtol=1e-12)


def test_make_jaxpr_of_grad_shows_forward_and_backward_equations():
    jaxpr = ft.make_jaxpr(ft.grad(lambda x: fnp.sum(fnp.sin(x) * x)))(np.ones(3))
    names = [eqn.primitive.name for eqn in jaxpr.eqns]
    assert "sin" in names and "cos" in names and names.count("mul") >= 3
    assert names.index("reduce_sum") < names.index("broadcast_in_dim")  # the sum, then its transpose


def test_gradient_cost_does_not_grow_with_the_number_of_inputs():
    # reverse mode: one backward sweep, never one JVP per input, so the gradient's
    # program and the eager tape are the same size for 3 inputs as for 1000
    f = lambda x: fnp.sum(fnp.tanh(x) * fnp.exp(-x) + x ** 2)
    sizes = {n: len(ft.make_jaxpr(ft.grad(f))(np.ones(n)).eqns) for n in (3, 1000)}
    assert sizes[3] == sizes[1000]
    steps = {}
    for n in (3, 1000):
        trace_out = ad_eager.vjp_flat(lambda x: [f(x)], [np.ones(n)], [ir.ShapedArray((n,), np.dtype("float64"))],
                                      [True])
        steps[n] = len(trace_out[1].trace.steps)
    assert steps[3] == steps[1000] <= 8


def test_pytrees_and_has_aux():
    params = {"w": np.array([1.0, 2.0]), "b": 0.5}
    loss = lambda p, x: (fnp.sum(p["w"] * x) + p["b"]) ** 2
    g = ft.grad(loss)(params, np.array([3.0, 4.0]))
    value = 1 * 3 + 2 * 4 + 0.5
    np.testing.assert_allclose(g["w"], 2 * value * np.array([3.0, 4.0]))
    assert np.isclose(g["b"], 2 * value)
    (value_out, aux), g2 = ft.value_and_grad(lambda x: (x ** 2, {"double": 2 * x}), has_aux=True)(3.0)
    assert value_out == 9.0 and aux["double"] == 6.0 and g2 == 6.0
    assert type(aux["double"]) is Array


def test_eager_grad_runs_the_forward_pass_once(monkeypatch):
    calls = []
    sin_p = ir.PRIMITIVES["sin"]
    original = sin_p.impl
    monkeypatch.setattr(sin_p, "impl", lambda x: calls.append(1) or original(x))
    ft.grad(lambda x: fnp.sin(x) * x)(0.3)
    assert len(calls) == 1


def test_python_control_flow_outside_jit():
    def f(x):
        if x > 0:
            y = x ** 2
        else:
            y = -x ** 3
        n = 0
        while y < 10.0 and n < 50:
            y = y * 1.5
            n += 1
        for _ in range(3):
            y = fnp.sin(y)
        return y

    for x0 in (0.8, -0.6):
        ft.check_grads(f, (x0,), order=2)


def test_results_are_numpy_arrays():
    g = ft.grad(lambda x: x * 2.0)(1.0)
    assert type(g) is Array and g.shape == ()
    out, f_vjp = ft.vjp(lambda x: x * 2.0, np.ones(2))
    assert type(out) is Array and type(f_vjp(np.ones(2))[0]) is Array


# -------------------- conventions at kinks (as JAX) --------------------

def test_derivatives_at_kinks_follow_jax():
    assert ft.grad(fnp.abs)(0.0) == 1.0
    assert ft.grad(lambda x: fnp.maximum(x, 0.0))(0.0) == 0.5  # relu via maximum: ties split
    assert ft.grad(lambda x: fnp.minimum(x, 0.0))(0.0) == 0.5
    assert ft.grad(lambda x: fnp.maximum(x, 0.0))(-1.0) == 0.0
    assert ft.grad(lambda x: fnp.where(x > 0, x, 2 * x))(0.0) == 2.0
    assert ft.grad(lambda x: fnp.max(fnp.stack([x, x, 2 * x - 1])))(1.0) == pytest.approx(4 / 3)
    assert ft.grad(lambda x: x ** 0.0)(0.0) == 0.0
    assert ft.grad(lambda y: 0.0 ** y)(2.0) == 0.0


# -------------------- errors --------------------

def test_integer_argument_is_a_type_error_naming_it():
    with pytest.raises(TypeError, match=r"argument 0.*int64"):
        ft.grad(lambda x: x * 1.0)(np.arange(3))
    with pytest.raises(TypeError, match=r"argument 1.*int32"):
        ft.grad(lambda x, n: fnp.sum(x * n), argnums=(0, 1))(np.ones(2), np.ones(2, np.int32))


def test_vjp_gives_float0_zeros_for_integer_inputs():
    out, f_vjp = ft.vjp(lambda x, n: x * n, 2.0, np.int64(3))
    ct_x, ct_n = f_vjp(np.ones(()))
    assert ct_x == 3.0 and ct_n.dtype == ir.float0 and ct_n.shape == ()


def test_non_scalar_output_names_shape_and_alternatives():
    with pytest.raises(TypeError, match=r"scalar output.*\(3,\).*jacrev.*vjp"):
        ft.grad(lambda x: x * 2.0)(np.ones(3))


def test_mismatched_tangents_and_cotangents():
    with pytest.raises(ValueError, match="structure"):
        ft.jvp(lambda x, y: x * y, (1.0, 2.0), (1.0,))
    with pytest.raises(ValueError, match=r"f64\[3\].*f64\[2\]"):
        ft.jvp(fnp.sin, (np.ones(3),), (np.ones(2),))
    _, f_vjp = ft.vjp(fnp.sin, np.ones(3))
    with pytest.raises(ValueError, match="cotangent"):
        f_vjp(np.ones(4))
    with pytest.raises(ValueError, match="structure"):
        f_vjp((np.ones(3), np.ones(3)))


def test_missing_rule_names_primitive_and_transformation():
    prim = ir.Primitive("test_no_jvp_rule", params={}, abstract_eval=lambda x: x, impl=lambda x: x)
    try:
        with pytest.raises(NotImplementedError, match="jvp of test_no_jvp_rule"):
            ft.grad(lambda x: ir.bind(prim, x) * 1.0)(1.0)
    finally:
        del ir.PRIMITIVES[prim.name]


# -------------------- float32 --------------------

def test_float32_gradients_stay_float32():
    x = np.array([0.5, 1.5], np.float32)
    g = ft.grad(lambda x: fnp.sum(fnp.tanh(x) * 2.0))(x)
    assert g.dtype == np.float32
    np.testing.assert_allclose(g, 2 * (1 - np.tanh(x) ** 2), rtol=1e-6)
    ft.check_grads(lambda x: fnp.sin(x) * x, (x,), order=2)


# -------------------- linearize internals --------------------

def test_linear_jaxpr_holds_only_tangent_work():
    f = lambda x: fnp.exp(fnp.sin(x))
    _, linear = ad.linearize_flat(lambda x: [f(x)], [np.array([0.3, 0.4])], [True])
    assert {eqn.primitive.name for eqn in linear.jaxpr.eqns} == {"mul"}
    ir.check(linear.jaxpr)


@given(st.floats(-2.0, 2.0), st.floats(-2.0, 2.0), st.sampled_from([np.float64, np.float32]))
def test_a_map_from_one_scalar_to_one_is_its_own_transpose(x, ct, dtype):
    # a 1x1 matrix equals its transpose: the vjp of a scalar function of a scalar whose linear
    # map is a sum of products is that map run forward on the cotangent, the jvp's program,
    # staged and eagerly (the tape, one step at a time) alike
    f = lambda x: fnp.tanh(fnp.sin(x) * x + 1.0) * fnp.exp(-x)
    x, ct = dtype(x), dtype(ct)
    staged_vjp = ft.make_jaxpr(lambda x, ct: ft.vjp(f, x)[1](ct), optimize=True)(x, ct)
    staged_jvp = ft.make_jaxpr(lambda x, t: ft.jvp(f, (x,), (t,))[1], optimize=True)(x, ct)
    assert collections.Counter(e.primitive.name for e in staged_vjp.eqns) == \
        collections.Counter(e.primitive.name for e in staged_jvp.eqns)
    (got,) = eval_jaxpr(staged_vjp.jaxpr, staged_vjp.consts, x, ct)
    (eager,) = ft.vjp(f, x)[1](ct)
    assert got.dtype == eager.dtype == dtype
    np.testing.assert_array_equal(got, eager)
    np.testing.assert_array_equal(eager, ft.jvp(f, (x,), (ct,))[1])
    _, linear = ad.linearize_flat(lambda x: [f(x)], [x], [True])
    assert linear.runs_forward_as_transpose()
    for inputs in ([np.array([x, 1.0])], [np.float64(x), np.float32(1.0)]):  # not one scalar, or two dtypes
        _, linear = ad.linearize_flat(lambda *xs: [fnp.sum(f(xs[0]) * xs[-1])], inputs, [True] * len(inputs))
        assert not linear.runs_forward_as_transpose()


def test_a_scalar_map_through_select_is_transposed_eagerly_and_jitted():
    # forward, select_n drops the unselected tangent (1/x, inf at 0); transposed, it sends that
    # case a zero cotangent, and 0 * (1/0) is nan: JAX's grad, eager and jitted ftrans all give nan
    g = lambda x: fnp.where(x > 0, fnp.log(x), 0.0)
    _, linear = ad.linearize_flat(lambda x: [g(x)], [np.float64(0.0)], [True])
    assert not linear.runs_forward_as_transpose()
    with np.errstate(all="ignore"):
        for x, want in ((0.0, np.nan), (-1.0, -0.0), (2.0, 0.5)):
            for grad_g in (ft.grad(g), ft.jit(ft.grad(g)), ft.jit(lambda x: ft.vjp(g, x)[1](1.0)[0])):
                got = grad_g(x)
                np.testing.assert_array_equal(got, want)
                assert want != 0 or np.signbit(got) == np.signbit(want), (x, got)


def test_make_jaxpr_of_grad_of_a_scalar_function_is_its_forward_derivative():
    f = lambda x: fnp.sin(x) * x ** 2 + fnp.exp(-x)
    forward = ft.make_jaxpr(lambda x: ft.jvp(f, (x,), (np.float64(1.0),))[1], optimize=True)(0.5)
    gradient = ft.make_jaxpr(ft.grad(f), optimize=True)(0.5)
    # the same equations (linearize stages the primal ones first: names and order differ)
    assert len(gradient.eqns) == len(forward.eqns) == 12
    assert collections.Counter(e.primitive.name for e in gradient.eqns) == \
        collections.Counter(e.primitive.name for e in forward.eqns)
    for x in (0.5, -1.5):
        np.testing.assert_allclose(eval_jaxpr(gradient.jaxpr, gradient.consts, x)[0],
                                   eval_jaxpr(forward.jaxpr, forward.consts, x)[0], rtol=1e-15)


def test_values_independent_of_the_input_get_no_tangent_work():
    def f(x, c):
        return fnp.sin(x) * 2.0, fnp.exp(c) * c  # the second output does not depend on x

    def jvp_in_x(x, c):
        return ft.jvp(lambda x: f(x, c), (x,), (1.0,))

    jaxpr = ft.make_jaxpr(jvp_in_x)(0.5, 0.25)
    names = [eqn.primitive.name for eqn in jaxpr.eqns]
    # primal: sin, mul, exp, mul; tangent of the first output only: cos and two muls
    assert names.count("exp") == 1 and names.count("cos") == 1
    assert names.count("mul") == 4, names
    _, linear = ad.linearize_flat(lambda x, c: list(f(x, c)), [np.array(0.5), np.array(0.25)], [True, False])
    assert linear.nonzero_outputs == [True, False]
    assert [eqn.primitive.name for eqn in linear.jaxpr.eqns] == ["mul", "mul"]


# -------------------- eager reverse mode: the tape (interpreters/ad_eager.py) --------------------

@pytest.mark.parametrize("name", sorted(DIFFERENTIABLE))
@given(data=st.data())
def test_eager_tape_agrees_with_staged_linearize_and_transpose(name, data):
    fun, domain, nargs = DIFFERENTIABLE[name]
    args = _args(data.draw, domain, nargs)
    out, f_vjp = ft.vjp(fun, *args)  # no trace open: the tape
    ct = data.draw(hnp.arrays(np.float64, np.shape(out), elements=st.floats(-2.0, 2.0)))
    staged = ft.make_jaxpr(lambda *xs: ft.vjp(fun, *xs)[1](ct))(*args)  # linearize + transpose, as IR
    want = eval_jaxpr(staged.jaxpr, staged.consts, *args)
    for got, expected in zip(f_vjp(ct), want, strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


def test_eager_tape_compiles_each_primitive_signature_once(monkeypatch):
    builds = []
    original = ad_eager._build_rule
    monkeypatch.setattr(ad_eager, "_build_rule", lambda *a: builds.append(a[0].name) or original(*a))
    monkeypatch.setattr(ad_eager, "_RULES", {})
    f = ft.grad(lambda x: fnp.sum(fnp.sin(x) * x))
    f(np.ones(3))
    assert sorted(builds) == ["mul", "reduce_sum", "sin"]
    f(np.full(3, 2.0))
    f(np.ones(3))
    assert len(builds) == 3  # the same shapes: no new rule
    f(np.ones(4))
    assert len(builds) == 6  # a new shape: a new signature per primitive


def test_eager_tape_through_a_multiple_result_call_with_one_cotangent():
    both = ft.jit(lambda x: (fnp.sin(x), fnp.cos(x) * x))
    x = np.linspace(-1.0, 1.0, 5)
    np.testing.assert_allclose(ft.grad(lambda x: fnp.sum(both(x)[0]))(x), np.cos(x))
    np.testing.assert_allclose(ft.grad(lambda x: fnp.sum(both(x)[1]))(x), np.cos(x) - x * np.sin(x))
    ft.check_grads(lambda x: fnp.sum(both(x)[0] * both(x)[1]), (x,), order=2)


def test_a_value_escaping_the_tape_is_an_error():
    stash = []
    ft.grad(lambda x: stash.append(x * 2.0) or x * 3.0)(1.0)
    with pytest.raises(ir.UnexpectedTracerError, match="escaped"):
        fnp.sin(stash[0])


def test_eager_grad_and_integer_intermediates():
    x = np.array([0.5, 2.0, 1.5])
    g = ft.grad(lambda x: fnp.argmax(x) * fnp.sum(x * x))(x)  # argmax: an int, constant on the tape
    np.testing.assert_array_equal(g, 1 * 2 * x)


# -------------------- argnums, has_aux and what a transformation is given (issue 11, points 1, 16, 18) -----

def _cubic(x, y, z):
    return x * y ** 2 + z ** 3


# closed forms at (x, y, z) = (1, 2, 3): d/dx = y^2 = 4, d/dy = 2xy = 4, d/dz = 3z^2 = 27
_CUBIC_GRADIENT = {0: 4.0, 1: 4.0, 2: 27.0}


@pytest.mark.parametrize("argnums", [(2, 0), (1, 2, 0), (0, 2), (-1, 0), (2,), (-3, -1)])
def test_grad_results_follow_the_order_of_argnums(argnums):
    args = (1.0, 2.0, 3.0)
    want = tuple(_CUBIC_GRADIENT[i % 3] for i in argnums)
    assert ft.grad(_cubic, argnums=argnums)(*args) == want
    value, grads = ft.value_and_grad(_cubic, argnums=argnums)(*args)
    assert value == 31.0 and grads == want
    for jacobian in (ft.jacfwd, ft.jacrev):
        assert jacobian(_cubic, argnums=argnums)(*args) == want
    assert ft.jit(ft.grad(_cubic, argnums=argnums))(*args) == want
    assert ft.grad(lambda *a: ft.jit(_cubic)(*a), argnums=argnums)(*args) == want


@pytest.mark.parametrize("argnums", [1, np.int64(1), np.int32(-2)])
def test_an_int_argnums_numpy_ints_too_gives_one_result_not_a_tuple(argnums):
    args = (1.0, 2.0, 3.0)
    for transformation in (ft.grad, ft.jacfwd, ft.jacrev):
        got = transformation(_cubic, argnums=argnums)(*args)
        assert type(got) is Array and got == 4.0
    assert ft.hessian(_cubic, argnums=argnums)(*args) == 2.0
    assert ft.value_and_grad(_cubic, argnums=argnums)(*args)[1] == 4.0


def test_keyword_arguments_pass_through_undifferentiated():
    f = lambda x, scale=1.0: fnp.sin(x) * scale  # noqa: E731
    x = np.array([0.3, -1.2])
    np.testing.assert_allclose(ft.grad(lambda x, scale: fnp.sum(f(x, scale)))(x, scale=3.0), 3 * np.cos(x))
    for jacobian in (ft.jacfwd, ft.jacrev):
        np.testing.assert_allclose(jacobian(f)(x, scale=3.0), np.diag(3 * np.cos(x)))
    np.testing.assert_allclose(ft.hessian(lambda x, scale: fnp.sum(f(x, scale)))(x, scale=2.0),
                               np.diag(-2 * np.sin(x)))


def test_hessian_with_a_tuple_of_argnums_is_nested_in_its_order():
    x, y, z = 1.0, 2.0, 3.0
    # second derivatives of x y^2 + z^3: d2/dxdy = 2y, d2/dy2 = 2x, d2/dz2 = 6z, the others 0
    second = {(0, 0): 0.0, (0, 1): 2 * y, (1, 1): 2 * x, (2, 2): 6 * z, (0, 2): 0.0, (1, 2): 0.0}
    for argnums in [(2, 0), (1, 0), (0, 2, 1)]:
        got = ft.hessian(_cubic, argnums=argnums)(x, y, z)
        assert len(got) == len(argnums)
        for i, row in zip(argnums, got, strict=True):
            assert len(row) == len(argnums)
            for j, entry in zip(argnums, row, strict=True):
                assert entry == second[min(i, j), max(i, j)], (argnums, i, j)
    # pytree arguments: one block per (argument, argument), each of shape arg_i.shape + arg_j.shape
    a, b = np.array([0.5, 1.5]), np.array([2.0, -1.0, 0.25])
    f = lambda a, b: fnp.sum(fnp.sin(a)) * fnp.sum(b ** 2)  # noqa: E731
    hess = ft.hessian(f, argnums=(1, 0))(a, b)
    np.testing.assert_allclose(hess[0][0], 2 * np.sum(np.sin(a)) * np.eye(3))
    np.testing.assert_allclose(hess[0][1], np.outer(2 * b, np.cos(a)))
    np.testing.assert_allclose(hess[1][0], np.outer(np.cos(a), 2 * b))
    np.testing.assert_allclose(hess[1][1], -np.diag(np.sin(a)) * np.sum(b ** 2))


@pytest.mark.parametrize("transformation", [ft.grad, ft.value_and_grad, ft.jacfwd, ft.jacrev, ft.hessian])
def test_an_argument_listed_twice_in_argnums_is_a_value_error(transformation):
    with pytest.raises(ValueError, match=r"argnums=\(0, 0\) names positional argument 0 more than once"):
        transformation(_cubic, argnums=(0, 0))
    fun = transformation(_cubic, argnums=(0, -3))  # the same argument, seen once the call is known
    with pytest.raises(ValueError, match=r"argnums=\(0, -3\) names positional argument 0 more than once"):
        fun(1.0, 2.0, 3.0)


@pytest.mark.parametrize("transformation", [ft.grad, ft.value_and_grad, ft.jacfwd, ft.jacrev, ft.hessian])
@pytest.mark.parametrize("argnums, match", [
    (1.0, r"argnums must be an int or a tuple of ints, got 1.0 \(a float\)"),
    ("a", r"argnums must be an int or a tuple of ints, got 'a' \(a str\)"),
    (None, r"argnums must be an int or a tuple of ints, got None"),
    (True, r"argnums must be an int or a tuple of ints, got True \(a bool\)"),
    ((0, 1.5), r"1.5 is a float"),
])
def test_argnums_of_the_wrong_type_are_type_errors_at_once(transformation, argnums, match):
    with pytest.raises(TypeError, match=match):
        transformation(_cubic, argnums=argnums)


@pytest.mark.parametrize("transformation", [ft.grad, ft.value_and_grad, ft.jacfwd, ft.jacrev, ft.hessian])
def test_argnums_out_of_range_name_the_call(transformation):
    with pytest.raises(ValueError, match=r"argnums=3 refers to positional argument 3, but the function was "
                                         "called with 3 positional arguments"):
        transformation(_cubic, argnums=3)(1.0, 2.0, 3.0)


@pytest.mark.parametrize("make", [
    lambda f: ft.grad(f), lambda f: ft.value_and_grad(f), lambda f: ft.jacfwd(f), lambda f: ft.jacrev(f),
    lambda f: ft.hessian(f), lambda f: ft.vmap(f), lambda f: ft.jit(f), lambda f: ft.make_jaxpr(f),
    lambda f: ft.jvp(f, (1.0,), (1.0,)), lambda f: ft.vjp(f, 1.0), lambda f: ft.linearize(f, 1.0),
    lambda f: ft.check_grads(f, (1.0,), order=1),
], ids=["grad", "value_and_grad", "jacfwd", "jacrev", "hessian", "vmap", "jit", "make_jaxpr", "jvp", "vjp",
        "linearize", "check_grads"])
@pytest.mark.parametrize("not_a_function", [3, "f", None, np.ones(2)], ids=["int", "str", "None", "array"])
def test_transforming_what_is_not_a_function_fails_at_once(make, not_a_function):
    with pytest.raises(TypeError, match="expects a callable function as its first argument"):
        make(not_a_function)


def test_jvp_linearize_jacfwd_jacrev_hessian_with_has_aux():
    x = np.array([0.3, -1.2, 2.0])

    def f(x):
        return fnp.sin(x) * x, {"norm": fnp.sum(x * x), "count": 3}

    out, tangent, aux = ft.jvp(f, (x,), (np.ones(3),), has_aux=True)
    np.testing.assert_allclose(out, np.sin(x) * x)
    np.testing.assert_allclose(tangent, np.cos(x) * x + np.sin(x))
    assert aux["norm"] == np.sum(x * x) and aux["count"] == 3 and type(aux["norm"]) is Array
    out, f_jvp, aux = ft.linearize(f, x, has_aux=True)
    np.testing.assert_allclose(f_jvp(np.ones(3)), np.cos(x) * x + np.sin(x))
    assert aux["norm"] == np.sum(x * x)
    for jacobian in (ft.jacfwd, ft.jacrev):
        jac, aux = jacobian(f, has_aux=True)(x)
        np.testing.assert_allclose(jac, np.diag(np.cos(x) * x + np.sin(x)), rtol=1e-14)
        assert aux["norm"] == np.sum(x * x) and aux["count"] == 3
    hess, aux = ft.hessian(lambda x: (fnp.sum(fnp.sin(x) * x), x * 2.0), has_aux=True)(x)
    np.testing.assert_allclose(hess, np.diag(2 * np.cos(x) - x * np.sin(x)), rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(aux, x * 2.0)
    # the aux of a traced call is a traced value of the enclosing trace, as JAX's is
    jaxpr = ft.make_jaxpr(lambda x: ft.jacrev(f, has_aux=True)(x)[1]["norm"])(x)
    assert jaxpr.out_avals[0].shape == ()
    # and aux under jit and vmap
    jitted = ft.jit(lambda x: ft.jacfwd(f, has_aux=True)(x))(x)
    np.testing.assert_allclose(jitted[0], np.diag(np.cos(x) * x + np.sin(x)), rtol=1e-14)
    batched = ft.vmap(lambda x: ft.jvp(f, (x,), (x,), has_aux=True)[2]["norm"])(np.stack([x, 2 * x]))
    np.testing.assert_allclose(batched, [np.sum(x * x), 4 * np.sum(x * x)])


@pytest.mark.parametrize("call", [
    lambda f: ft.grad(f, has_aux=True)(1.0),
    lambda f: ft.value_and_grad(f, has_aux=True)(1.0),
    lambda f: ft.jvp(f, (1.0,), (1.0,), has_aux=True),
    lambda f: ft.vjp(f, 1.0, has_aux=True),
    lambda f: ft.linearize(f, 1.0, has_aux=True),
    lambda f: ft.jacfwd(f, has_aux=True)(1.0),
    lambda f: ft.jacrev(f, has_aux=True)(1.0),
    lambda f: ft.hessian(f, has_aux=True)(1.0),
], ids=["grad", "value_and_grad", "jvp", "vjp", "linearize", "jacfwd", "jacrev", "hessian"])
@pytest.mark.parametrize("output, returned", [
    (lambda x: x * 2.0, r"one array, of shape \(\)"),
    (lambda x: "text", "a str"),
    (lambda x: (x, x, x), "a tuple of 3 entries"),
    (lambda x: [x], "a list of 1 entries"),
])
def test_has_aux_output_that_is_not_a_pair_is_a_type_error(call, output, returned):
    with pytest.raises(TypeError, match=r"with has_aux=True: the function must return a pair \(output, aux\), "
                                         f"but it returned ({returned})"):
        call(output)


def test_linearized_function_checks_its_tangents_as_jvp_does():
    x = np.array([0.3, -1.2, 2.0])
    _, f_jvp = ft.linearize(lambda x: fnp.sin(x), x)
    for bad, got in [(np.ones(4), "f64[4]"), (np.ones(3, np.float32), "f32[3]"), (np.arange(3), "i64[3]")]:
        with pytest.raises(ValueError, match=rf"f_jvp: the tangent of primals\[0\] must be f64\[3\] to match its "
                                             rf"primal f64\[3\], got {re.escape(got)}"):
            f_jvp(bad)
    with pytest.raises(TypeError, match=r"tangent of primals\[0\] is a str, not an array"):
        f_jvp("a")
    np.testing.assert_allclose(f_jvp(np.full(3, 2.0)), 2 * np.cos(x))
    with pytest.raises(ValueError, match=r"jvp: the tangent of primals\[0\]\['a'\] must be f64\[\] to match"):
        ft.jvp(lambda d: d["a"], ({"a": 1.0},), ({"a": np.ones(2)},))


@pytest.mark.parametrize("kwargs, error, match", [
    ({"order": 0}, ValueError, "order must be a positive int"),
    ({"order": -1}, ValueError, "order must be a positive int"),
    ({"order": 1.5}, TypeError, r"order must be a positive int, got 1.5 \(a float\)"),
    ({"order": True}, TypeError, "order must be a positive int, got True"),
    ({"order": 1, "modes": ()}, ValueError, "modes must name 'fwd' and/or 'rev'"),
    ({"order": 1, "modes": ("fwd", "backward")}, ValueError, "modes must name 'fwd' and/or 'rev'"),
    ({"order": 1, "eps": 0.0}, ValueError, "eps must be None or a positive number"),
    ({"order": 1, "atol": -1e-3}, ValueError, "atol must be None or a non-negative number"),
    ({"order": 1, "rtol": "tight"}, TypeError, "rtol must be None or a non-negative number"),
])
def test_check_grads_arguments_are_checked(kwargs, error, match):
    with pytest.raises(error, match=match):
        ft.check_grads(lambda x: x * x, (1.0,), **kwargs)


def test_check_grads_args_must_be_a_sequence_and_modes_may_be_one_string():
    with pytest.raises(TypeError, match=r"args must be a tuple or list of arguments, got a float \(write \(x,\)"):
        ft.check_grads(lambda x: x * x, 1.0, order=1)
    ft.check_grads(lambda x: fnp.sin(x), (0.5,), order=2, modes="rev")  # one mode, as a string
