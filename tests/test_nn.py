"""ftrans.nn: JAX's values and derivatives (literals from JAX, tests/nn_cases.py), closed forms at
ordinary and extreme inputs, check_grads, jit and vmap, float32, and the initializers."""
from __future__ import annotations

import math

import numpy as np
import pytest

import ftrans as ft
import ftrans.numpy as fnp
from nn_cases import ELEMENTWISE, EXPECTED, INITIALIZERS, POINTS, VECTOR

# JAX's x + sqrt(x^2 + b) at x = -1000 cancels: its last digits are rounding (ftrans computes
# b / (2 (sqrt(x^2 + b) - x)) there, and is nearer the exact value: see the test below)
RTOL = {"squareplus": 1e-9}


def _assert_close(got, want, rtol, what):
    want = np.asarray(want, dtype=np.asarray(got).dtype)
    np.testing.assert_allclose(got, want, rtol=rtol, atol=1e-300, equal_nan=True, err_msg=what)


@pytest.mark.parametrize("name", sorted(ELEMENTWISE))
def test_elementwise_values_and_derivatives_are_jax_s(name):
    fun = lambda x: ELEMENTWISE[name](ft.nn, x)  # noqa: E731
    value, derivative = EXPECTED[name]
    x = np.array(POINTS)
    _assert_close(fun(x), value, RTOL.get(name, 1e-13), f"{name} value")
    _assert_close(ft.vmap(ft.grad(fun))(x), derivative, RTOL.get(name, 1e-13), f"{name} derivative")
    _assert_close(ft.jit(ft.vmap(ft.grad(fun)))(x), derivative, RTOL.get(name, 1e-13), f"{name} jit derivative")


def test_squareplus_and_gelu_far_out():
    """squareplus lost digits for x < 0 (6 at -800) and was inf at -1e300; gelu's derivative was NaN past
    |x| ~ 1e102 (x^3 overflowed, 0 * inf). Closed forms: 2 / (sqrt(x^2 + 4) - x), and the limits."""
    x = np.array([-1e300, -1e200, -800.0, -1e3, -3.0])
    want = 2 / (np.hypot(x, 2.0) - x)
    np.testing.assert_allclose(ft.nn.squareplus(x), want, rtol=1e-15)
    np.testing.assert_allclose(ft.nn.squareplus(np.array([1e300, 1e3])), [1e300, 1000.000999999], rtol=1e-15)
    x = np.array([-1e300, -1e103, 1e103, 1e300])
    np.testing.assert_array_equal(ft.vmap(ft.grad(ft.nn.gelu))(x), [0.0, 0.0, 1.0, 1.0])
    np.testing.assert_array_equal(ft.nn.gelu(x), [-0.0, -0.0, 1e103, 1e300])


@pytest.mark.parametrize("name", sorted(VECTOR))
def test_vector_functions_are_jax_s(name):
    f, x = VECTOR[name]
    fun = lambda x: f(ft.nn, x)  # noqa: E731
    value, derivative = EXPECTED[name]
    x = np.array(x)
    _assert_close(fun(x), value, 1e-13, f"{name} value")
    _assert_close(ft.grad(lambda x: fnp.sum(fun(x)[..., :1] ** 2))(x), derivative, 1e-13, f"{name} derivative")
    _assert_close(ft.jit(fun)(x), value, 1e-13, f"{name} jit")


@pytest.mark.parametrize("name", sorted(INITIALIZERS))
def test_initializers_draw_jax_s_numbers(name):
    value, _ = EXPECTED[name]
    got = INITIALIZERS[name](ft.nn.initializers, ft.random.PRNGKey(0))
    want = np.asarray(value, dtype=got.dtype)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-15)


# -------------------- closed forms --------------------

def test_closed_forms_at_ordinary_points():
    x = np.linspace(-4, 4, 17)
    sig = 1 / (1 + np.exp(-x))
    cases = {
        "relu": np.maximum(x, 0), "sigmoid": sig, "silu": x * sig, "softplus": np.log1p(np.exp(x)),
        "log_sigmoid": np.log(sig), "elu": np.where(x > 0, x, np.expm1(x)), "hard_tanh": np.clip(x, -1, 1),
        "relu6": np.clip(x, 0, 6), "hard_sigmoid": np.clip(x + 3, 0, 6) / 6, "leaky_relu": np.where(x >= 0, x, 0.01 * x),
        "selu": 1.0507009873554805 * np.where(x > 0, x, 1.6732632423543772 * np.expm1(x)),
        "gelu": 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3))),
    }
    for name, want in cases.items():
        np.testing.assert_allclose(getattr(ft.nn, name)(x), want, rtol=1e-12, atol=1e-15, err_msg=name)


def test_extreme_inputs_neither_overflow_nor_give_nan():
    x = np.array([-1000.0, 0.0, 1000.0])
    np.testing.assert_array_equal(ft.nn.softplus(x), [0.0, np.log(2.0), 1000.0])
    np.testing.assert_array_equal(ft.nn.log_sigmoid(x), [-1000.0, -np.log(2.0), 0.0])
    np.testing.assert_array_equal(ft.nn.sigmoid(x), [0.0, 0.5, 1.0])
    np.testing.assert_allclose(ft.nn.softmax(x), [0.0, 0.0, 1.0])
    np.testing.assert_allclose(ft.nn.log_softmax(x), [-2000.0, -1000.0, 0.0])
    np.testing.assert_allclose(ft.nn.logsumexp(x), 1000.0)
    for f in (ft.nn.softplus, ft.nn.log_sigmoid, ft.nn.sigmoid, ft.nn.silu, ft.nn.gelu, ft.nn.elu, ft.nn.selu):
        assert np.all(np.isfinite(ft.vmap(ft.grad(f))(x))), f.__name__
    jacobian = ft.jacrev(ft.nn.softmax)(x)  # stable: y_i (delta_ij - y_j) without inf - inf
    np.testing.assert_allclose(jacobian, np.diag([0, 0, 1.0]) - np.outer([0, 0, 1.0], [0, 0, 1.0]), atol=1e-300)


def test_derivative_conventions_at_the_kinks():
    at = lambda f, x: float(ft.grad(f)(x))  # noqa: E731
    assert at(ft.nn.relu, 0.0) == 0.0 and at(ft.nn.relu, 1e-300) == 1.0
    assert at(ft.nn.relu6, 0.0) == 0.0 and at(ft.nn.relu6, 6.0) == 0.0 and at(ft.nn.relu6, 3.0) == 1.0
    assert at(ft.nn.softplus, 0.0) == 0.5 and at(ft.nn.log_sigmoid, 0.0) == 0.5
    assert at(ft.nn.leaky_relu, 0.0) == 1.0 and at(ft.nn.hard_tanh, 1.0) == 1.0
    assert at(ft.nn.elu, 0.0) == 1.0


@pytest.mark.parametrize("name", ["sigmoid", "softplus", "log_sigmoid", "silu", "gelu", "elu", "celu", "selu",
                                  "mish", "squareplus", "soft_sign"])
def test_check_grads_of_smooth_functions(name):
    x = np.array([-2.3, -0.7, 0.4, 1.9])
    ft.check_grads(getattr(ft.nn, name), (x,), order=2, modes=("fwd", "rev"))


def test_check_grads_of_softmax_family_and_standardize():
    x = np.array([[0.3, -1.2, 2.0], [0.5, 0.1, -0.4]])
    for f in (ft.nn.softmax, ft.nn.log_softmax, lambda x: ft.nn.softmax(x, axis=0), ft.nn.standardize,
              lambda x: ft.nn.logsumexp(x, axis=1), ft.nn.glu):
        ft.check_grads(f, (x if f is not ft.nn.glu else np.concatenate([x, x], axis=1),), order=2)


def test_softmax_rows_sum_to_one_and_masks():
    x = np.array([[1.0, 2.0, 3.0], [1e300, 0.0, -1e300]])
    np.testing.assert_allclose(np.sum(ft.nn.softmax(x), axis=-1), [1.0, 1.0])
    where = np.array([[True, False, True], [True, True, True]])
    masked = ft.nn.softmax(np.array([[1.0, 2.0, 3.0]] * 2), where=where)
    np.testing.assert_allclose(masked[0], [1 / (1 + math.e**2), 0.0, math.e**2 / (1 + math.e**2)])
    assert ft.nn.log_softmax(np.array([1.0, 2.0]), where=np.array([True, False]))[1] == -np.inf


def test_one_hot_standardize_glu_logsumexp():
    np.testing.assert_array_equal(ft.nn.one_hot(np.array([0, 2, -1, 3]), 3),
                                  [[1, 0, 0], [0, 0, 1], [0, 0, 0], [0, 0, 0]])
    assert ft.nn.one_hot(np.array([1]), 2, dtype=np.float32).dtype == np.float32
    np.testing.assert_array_equal(ft.nn.one_hot(np.array([0, 1]), 2, axis=0), [[1, 0], [0, 1]])
    x = np.array([1.0, 2.0, 4.0])
    np.testing.assert_allclose(ft.nn.standardize(x), (x - x.mean()) / np.sqrt(x.var() + 1e-5))
    np.testing.assert_allclose(ft.nn.glu(np.array([1.0, 2.0, 0.0, 3.0])), [0.5, 2 / (1 + np.exp(-3))])
    out, sign = ft.nn.logsumexp(np.array([0.0, 0.0]), b=np.array([1.0, -2.0]), return_sign=True)
    assert np.isclose(out, 0.0) and sign == -1.0
    with pytest.raises(ValueError, match="even"):
        ft.nn.glu(np.ones(3))


def test_float32_stays_float32_and_vmap_matches_a_loop():
    x = np.array([[-1.0, 0.5], [2.0, -3.0]], np.float32)
    for name in ["relu", "sigmoid", "softplus", "gelu", "elu", "selu", "silu", "softmax", "log_softmax"]:
        f = getattr(ft.nn, name)
        assert f(x).dtype == np.float32, name
        np.testing.assert_allclose(ft.vmap(f)(x), np.stack([f(row) for row in x]), rtol=1e-6, err_msg=name)


# -------------------- initializers --------------------

def test_initializers_have_the_variance_they_promise():
    key = ft.random.PRNGKey(1)
    init = ft.nn.initializers
    shape = (400, 300)
    cases = {init.glorot_uniform(): 2 / 700, init.he_uniform(): 2 / 400, init.lecun_uniform(): 1 / 400,
             init.variance_scaling(3.0, "fan_out", "uniform"): 3 / 300}
    for initializer, variance in cases.items():
        w = initializer(key, shape)
        assert w.shape == shape and w.dtype == np.float64
        assert abs(w.var() / variance - 1) < 0.02 and abs(w.mean()) < 4 * math.sqrt(variance / w.size)
    assert init.glorot_uniform()(key, (3, 4), np.float32).dtype == np.float32
    assert np.all(init.constant(2.5)(key, (2,)) == 2.5) and init.zeros(key, (2, 0)).shape == (2, 0)


def test_initializers_under_jit_and_vmap():
    init = ft.nn.initializers.he_uniform()
    keys = ft.random.split(ft.random.PRNGKey(2), 3)
    looped = np.stack([init(k, (4, 3)) for k in keys])
    np.testing.assert_array_equal(ft.vmap(lambda k: init(k, (4, 3)))(keys), looped)
    np.testing.assert_array_equal(ft.jit(lambda k: init(k, (4, 3)))(keys[0]), looped[0])


def test_initializer_errors():
    with pytest.raises(ValueError, match="at least 2D"):
        ft.nn.initializers.glorot_uniform()(ft.random.PRNGKey(0), (3,))
    with pytest.raises(ValueError, match="invalid mode"):
        ft.nn.initializers.variance_scaling(1.0, "fan_sideways", "uniform")
