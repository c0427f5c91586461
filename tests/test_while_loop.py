"""ft.lax.while_loop (issue 12): against a Python loop, eagerly and under jit; forward and
reverse mode (the trip count known only at run time); vmap with different trip counts per
lane; print/parse round trips; errors; max_loop_iterations for programs read from text."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import ftrans as ft
import ftrans.numpy as fnp
from ir import config as ir_config


def reference(x, n):
    i, y = 0, x
    while i < n:
        i, y = i + 1, y * 0.9 + np.sin(y)
    return y


def looped(x, n):
    return ft.lax.while_loop(lambda c: c[0] < n, lambda c: (c[0] + 1, c[1] * 0.9 + fnp.sin(c[1])), (0, x))[1]


@given(st.integers(0, 12), st.floats(-2.0, 2.0))
def test_against_a_python_loop_eager_and_jit(n, x):
    want = reference(x, n)
    np.testing.assert_allclose(looped(x, n), want, rtol=1e-12)
    np.testing.assert_allclose(ft.jit(looped, static_argnums=1)(x, n), want, rtol=1e-12)
    np.testing.assert_allclose(ft.jit(looped)(x, n), want, rtol=1e-12)  # a traced bound


def test_data_dependent_trip_count():
    def halve(x):  # halves until below 1: the trip count depends on x
        return ft.lax.while_loop(lambda v: v > 1.0, lambda v: v * 0.5, x)
    for x in (0.5, 3.0, 100.0):
        want = x
        while want > 1.0:
            want *= 0.5
        assert float(halve(x)) == want == float(ft.jit(halve)(x))
        # d/dx of x * 0.5**n(x) is 0.5**n(x)
        np.testing.assert_allclose(ft.grad(halve)(x), want / x)


@given(st.integers(0, 6), st.floats(-1.5, 1.5))
def test_jvp_and_grad_against_closed_form(n, x):
    h = 1e-6
    fd = (reference(x + h, n) - reference(x - h, n)) / (2 * h)
    _, t = ft.jvp(lambda x: looped(x, n), (x,), (1.0,))
    np.testing.assert_allclose(t, fd, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(ft.grad(looped)(x, n), fd, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(ft.jit(lambda x: ft.jvp(lambda x: looped(x, n), (x,), (1.0,))[1])(x), t, rtol=1e-12)


def test_check_grads_order_2():
    for n in (0, 1, 4):
        ft.check_grads(lambda x: looped(x, n), (0.7,), order=2, modes=("fwd", "rev"))


def test_zero_tangent_carry_gets_no_tangent_work():
    f = lambda x: ft.lax.while_loop(lambda c: c[0] < 3, lambda c: (c[0] + 1, c[1] * c[0], c[2] * x), (0, 1.0, x))
    jaxpr = ft.make_jaxpr(lambda x: ft.jvp(f, (x,), (1.0,)))(2.0)
    text = str(jaxpr)
    # the loop carries (i, a, b) and the tangent of b only
    loop = next(e for e in jaxpr.jaxpr.eqns if e.primitive.name == "while")
    assert len(loop.outvars) == 4, text


def test_vmap_different_trip_counts_per_lane():
    def f(x, n):
        return ft.lax.while_loop(lambda c: c[0] < n, lambda c: (c[0] + 1, c[1] * 1.5 + 1.0), (0, x))[1]
    xs, ns = np.array([0.5, -1.0, 2.0, 0.0]), np.array([0, 3, 1, 5])
    want = [f(x, n) for x, n in zip(xs, ns)]
    np.testing.assert_allclose(ft.vmap(f)(xs, ns), want)
    np.testing.assert_allclose(ft.jit(ft.vmap(f))(xs, ns), want)
    np.testing.assert_allclose(ft.vmap(f, in_axes=(0, None))(xs, 3), [f(x, 3) for x in xs])


def test_fori_loop_with_traced_bounds_is_a_while():
    f = lambda lo, hi, x: ft.lax.fori_loop(lo, hi, lambda i, v: v * 2.0 + i, x)
    jaxpr = ft.make_jaxpr(f)(1, 4, 1.0)
    assert any(e.primitive.name == "while" for e in jaxpr.jaxpr.eqns)
    want = 1.0
    for i in range(1, 4):
        want = want * 2.0 + i
    assert float(ft.jit(f)(1, 4, 1.0)) == want
    assert float(ft.grad(f, argnums=2)(1, 4, 1.0)) == 8.0


def test_errors_name_the_carry_and_the_users_line():
    with pytest.raises(TypeError, match=r"carry\[1\].*f32\[\].*f64\[\].*dtypes"):
        ft.jit(lambda x: ft.lax.while_loop(lambda c: c[0] < 3, lambda c: (c[0] + 1, c[1] * fnp.ones((), "float64")),
                                           (0, x)))(np.float32(1.0))
    with pytest.raises(TypeError, match=r"carry\[1\].*dtypes"):
        ft.lax.while_loop(lambda c: c[0] < 3, lambda c: (c[0] + 1, c[1] * fnp.ones((), "float64")),
                          (0, np.float32(1.0)))
    with pytest.raises(TypeError, match=r"carry\[1\].*f64\[2\].*f64\[3\].*shapes") as info:
        ft.jit(lambda x: ft.lax.while_loop(lambda c: c[0] < 3, lambda c: (c[0] + 1, fnp.ones(3)), (0, x)))(
            np.ones(2))
    assert "test_while_loop.py" in str(info.value)
    with pytest.raises(TypeError, match="structured"):
        ft.lax.while_loop(lambda c: c[0] < 3, lambda c: c[0], (0, 1.0))
    with pytest.raises(TypeError, match="boolean scalar"):
        ft.jit(lambda x: ft.lax.while_loop(lambda c: c, lambda c: c, x))(1.0)


def test_print_parse_round_trip():
    jaxpr = ft.make_jaxpr(looped, static_argnums=1)(0.5, 4)
    text = str(jaxpr)
    assert "while[" in text and "cond_jaxpr={" in text and "body_jaxpr={" in text
    parsed = ft.parse_jaxpr(text)
    assert str(parsed) == text
    np.testing.assert_allclose(ft.jaxpr_as_fun(parsed)(0.5)[0], reference(0.5, 4))


def test_max_loop_iterations_stops_a_parsed_endless_loop():
    text = str(ft.make_jaxpr(lambda x: ft.lax.while_loop(lambda v: v > 0.0, lambda v: v + 1.0, x))(1.0))
    parsed = ft.parse_jaxpr(text)
    old = ir_config.max_loop_iterations
    ft.config.update("max_loop_iterations", 1000)
    try:
        with pytest.raises(RuntimeError, match="max_loop_iterations"):
            ft.jaxpr_as_fun(parsed)(1.0)
        with pytest.raises(RuntimeError, match="max_loop_iterations"):
            ft.jit(ft.jaxpr_as_fun(parsed))(1.0)
    finally:
        ft.config.update("max_loop_iterations", old)
    # loops the user traced have no limit
    ft.config.update("max_loop_iterations", 10)
    try:
        assert float(ft.lax.while_loop(lambda v: v < 100.0, lambda v: v + 1.0, 0.0)) == 100.0
        assert float(ft.jit(lambda x: ft.lax.while_loop(lambda v: v < 100.0, lambda v: v + 1.0, x))(0.0)) == 100.0
    finally:
        ft.config.update("max_loop_iterations", old)


def test_safe_log_style_guard_in_a_loop():
    # a loop that stops before log sees a non-positive value: no nan in any mode
    def f(x):
        return ft.lax.while_loop(lambda v: v > 1.0, lambda v: fnp.log(v) + 0.5, x)
    for g in (ft.grad(f), ft.jit(ft.grad(f)) if False else ft.grad(f)):
        assert np.isfinite(g(5.0))


def _damped(x, w, checkpoints):
    def body(c):
        i, v = c
        return i + 1, fnp.tanh(v * w) + 0.1 * v
    return fnp.sum(ft.lax.while_loop(lambda c: c[0] < 37, body, (0, x), checkpoints=checkpoints)[1] ** 2)


@pytest.mark.parametrize("k", [1, 2, 5, 36, 100])
def test_checkpoints_give_the_gradients_of_the_tape(k):
    x, w = np.linspace(-1.0, 1.0, 4), 0.9
    want = ft.grad(_damped, argnums=(0, 1))(x, w, None)
    for grad in (ft.grad(_damped, argnums=(0, 1)), ft.jit(ft.grad(_damped, argnums=(0, 1)), static_argnums=2)):
        got = grad(x, w, k)
        for g, e in zip(got, want):
            np.testing.assert_allclose(g, e, rtol=1e-13, atol=1e-15)
    # vmap of the gradient with checkpoints, against a loop of calls
    xs = np.stack([x, -x, 2 * x])
    got = ft.vmap(lambda x: ft.grad(_damped)(x, w, k))(xs)
    np.testing.assert_allclose(got, [ft.grad(_damped)(r, w, None) for r in xs], rtol=1e-13, atol=1e-15)


def test_checkpoints_must_be_a_positive_int():
    for bad in (0, -1, 1.5, True):
        with pytest.raises(TypeError, match="checkpoints"):
            ft.lax.while_loop(lambda v: v < 1.0, lambda v: v + 1.0, 0.0, checkpoints=bad)


def test_jit_of_grad_with_a_data_dependent_trip_count_and_vmap_of_it():
    def f(x):  # halves until below 1: the trip count depends on x, known only when the program runs
        return ft.lax.while_loop(lambda v: v > 1.0, lambda v: v * 0.5 + fnp.sin(v) * 0.01, x)
    xs = np.array([0.5, 3.0, 100.0])
    want = [ft.grad(f)(x) for x in xs]
    np.testing.assert_allclose([ft.jit(ft.grad(f))(x) for x in xs], want, rtol=1e-13)
    np.testing.assert_allclose(ft.vmap(ft.grad(f))(xs), want, rtol=1e-13)
    np.testing.assert_allclose(ft.jit(ft.vmap(ft.grad(f)))(xs), want, rtol=1e-13)
    jaxpr = str(ft.make_jaxpr(ft.grad(f))(3.0))
    assert "while_reverse[" in jaxpr


def test_second_order_eagerly_and_forward_over_reverse_under_jit():
    f = lambda x: looped(x, 4)  # noqa: E731
    h = 1e-4
    fd = (ft.grad(f)(0.3 + h) - ft.grad(f)(0.3 - h)) / (2 * h)
    np.testing.assert_allclose(ft.grad(ft.grad(f))(0.3), fd, rtol=1e-6)
    np.testing.assert_allclose(ft.jit(lambda x: ft.jvp(ft.grad(f), (x,), (1.0,))[1])(0.3), fd, rtol=1e-6)


def _sines(x, checkpoints=None):
    """sum_{k<n} sin(x * 1.3**k) * x, where n is the number of times x * 1.3**k stays below 10:
    a trip count that depends on x, known under jit only when the program runs."""
    def body(c):
        k, y, s = c
        return k + 1, y * 1.3, s + fnp.sin(y) * x
    return ft.lax.while_loop(lambda c: c[1] < 10.0, body, (0, x, 0.0 * x), checkpoints=checkpoints)[2]


def _sines_derivatives(x):
    """The first three derivatives of _sines at x, in closed form (n is locally constant)."""
    n = 0
    while x * 1.3 ** n < 10.0:
        n += 1
    a = 1.3 ** np.arange(n)
    s, c = np.sin(a * x), np.cos(a * x)
    return (np.sum(s + x * a * c), np.sum(2 * a * c - x * a ** 2 * s), np.sum(-3 * a ** 2 * s - x * a ** 3 * c))


SECOND_ORDER = {
    "grad(grad)": lambda f: ft.grad(ft.grad(f)),
    "jit(grad(grad))": lambda f: ft.jit(ft.grad(ft.grad(f))),
    "grad(grad(jit))": lambda f: ft.grad(ft.grad(ft.jit(f))),
    "grad(jit(grad))": lambda f: ft.grad(ft.jit(ft.grad(f))),
    "jacrev(jacrev(jit))": lambda f: ft.jacrev(ft.jacrev(ft.jit(f))),
    "hessian": lambda f: ft.hessian(f),
    "jit(hessian)": lambda f: ft.jit(ft.hessian(f)),
    "hessian(jit)": lambda f: ft.hessian(ft.jit(f)),
}


@pytest.mark.parametrize("how", sorted(SECOND_ORDER))
@pytest.mark.parametrize("checkpoints", [None, 2])
@given(x=st.floats(0.05, 4.0))
def test_second_order_through_a_run_time_trip_count_against_the_closed_form(how, checkpoints, x):
    """Reverse of reverse through a while_loop, eagerly and under jit (where the trip count is abstract
    when the program is staged), with and without checkpoints: equal to the closed form, and to eager."""
    got = SECOND_ORDER[how](lambda v: _sines(v, checkpoints))(x)
    np.testing.assert_allclose(got, _sines_derivatives(x)[1], rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(got, ft.grad(ft.grad(_sines))(x), rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("checkpoints", [None, 3])
def test_check_grads_order_2_of_jit_grad_and_third_order(checkpoints):
    f = lambda x: _sines(x, checkpoints)  # noqa: E731
    for x in (0.3, 1.7):
        ft.check_grads(ft.jit(ft.grad(f)), (x,), order=2, modes=("fwd", "rev"))
        ft.check_grads(ft.grad(ft.jit(f)), (x,), order=2, modes=("fwd", "rev"))
        third = _sines_derivatives(x)[2]
        for g in (ft.grad(ft.grad(ft.grad(f))), ft.jit(ft.grad(ft.grad(ft.grad(f)))),
                  ft.grad(ft.grad(ft.grad(ft.jit(f)))), ft.jit(lambda x: ft.jvp(ft.grad(ft.grad(f)), (x,), (1.0,))[1])):
            np.testing.assert_allclose(g(x), third, rtol=1e-10)


def test_vmap_of_second_order_under_jit_different_trip_counts_per_lane():
    xs = np.array([0.4, 1.1, 3.0, 9.0, 12.0])  # 9, 6, 5, 1 and 0 iterations
    want = [_sines_derivatives(x)[1] for x in xs]
    for g in (ft.vmap(ft.grad(ft.grad(ft.jit(_sines)))), ft.jit(ft.vmap(ft.grad(ft.grad(_sines)))),
              ft.vmap(ft.jit(ft.grad(ft.grad(_sines))))):
        np.testing.assert_allclose(g(xs), want, rtol=1e-10, atol=1e-12)
    # the Hessian of a function of a vector: jacrev(jacrev) under jit against jacfwd(jacrev)
    vec = lambda v: _sines(v[0]) * v[1] + _sines(v[1] * v[2])  # noqa: E731
    v = np.array([0.3, 0.8, 2.0])
    np.testing.assert_allclose(ft.jacrev(ft.jacrev(ft.jit(vec)))(v), ft.hessian(vec)(v), rtol=1e-12, atol=1e-12)


def test_second_order_under_jit_records_the_transformation_in_the_program():
    text = str(ft.make_jaxpr(ft.grad(ft.grad(_sines)))(0.7))
    assert "transforms=((" in text and "vjp" in text
    parsed = ft.parse_jaxpr(text)
    assert str(parsed) == text
    np.testing.assert_allclose(ft.jaxpr_as_fun(parsed)(0.7)[0], _sines_derivatives(0.7)[1], rtol=1e-10)


def test_grad_through_a_parsed_loop_under_the_limit():
    text = str(ft.make_jaxpr(lambda x: looped(x, 3))(0.5))
    fun = ft.jaxpr_as_fun(ft.parse_jaxpr(text))
    np.testing.assert_allclose(ft.grad(lambda x: fun(x)[0])(0.5), ft.grad(looped)(0.5, 3), rtol=1e-13)


@pytest.mark.parametrize("order", [1, 2])
def test_max_loop_iterations_stops_the_reverse_sweeps_of_a_parsed_endless_loop(order):
    """A parsed program of grad (a while_reverse) or grad of grad (one with transforms) of a loop that
    never stops: the limit stops it under jit too, where the passes may leave only the reverse sweep."""
    f = lambda x: ft.lax.while_loop(lambda v: v > 0.0, lambda v: v + fnp.sin(v) * 0.5 + 1.0, x)  # noqa: E731
    for _ in range(order):
        f = ft.grad(f)
    parsed = ft.parse_jaxpr(str(ft.make_jaxpr(f)(1.0)))
    old = ir_config.max_loop_iterations
    ft.config.update("max_loop_iterations", 1000)
    try:
        for run in (ft.jaxpr_as_fun(parsed), ft.jit(ft.jaxpr_as_fun(parsed))):
            with pytest.raises(RuntimeError, match="max_loop_iterations"):
                run(1.0)
    finally:
        ft.config.update("max_loop_iterations", old)
