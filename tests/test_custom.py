"""ft.custom_jvp and ft.custom_vjp (issue 13): the JAX documentation's classic cases under
grad, jit(grad), vmap(grad) and second order; rules against closed forms and finite
differences; printing, parsing and ir.check; errors as JAX raises them."""
from __future__ import annotations

from functools import partial

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ftrans as ft
import ftrans.numpy as fnp
import ir


# -------------------- custom_jvp --------------------

@ft.custom_jvp
def log1pexp(x):
    return fnp.log(1.0 + fnp.exp(x))


@log1pexp.defjvp
def log1pexp_jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    return log1pexp(x), t * (1.0 - 1.0 / (1.0 + fnp.exp(x)))


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def test_log1pexp_is_stable_at_100_under_every_transformation():
    assert ft.grad(log1pexp)(100.0) == 1.0
    assert ft.jit(ft.grad(log1pexp))(100.0) == 1.0
    np.testing.assert_allclose(ft.vmap(ft.grad(log1pexp))(np.array([-3.0, 0.5, 100.0])),
                               sigmoid(np.array([-3.0, 0.5, 100.0])), rtol=1e-14)
    # second order differentiates the rule: sigmoid'(x) = s(1 - s), 0 (not nan) at 100
    for x in (0.7, 100.0):
        want = np.exp(-x) / (1 + np.exp(-x)) ** 2
        np.testing.assert_allclose(ft.grad(ft.grad(log1pexp))(x), want, rtol=1e-12, atol=1e-50)
        np.testing.assert_allclose(ft.jit(ft.grad(ft.grad(log1pexp)))(x), want, rtol=1e-12, atol=1e-50)
    # without the rule, differentiating log(1 + exp(x)) at 100 is fine too; at 1000 exp overflows
    with np.errstate(all="ignore"):
        assert np.isnan(ft.grad(lambda x: fnp.log(1.0 + fnp.exp(x)))(1000.0))
    assert ft.grad(log1pexp)(1000.0) == 1.0


@ft.custom_jvp
def three_times_sin_derivative(x):
    return fnp.sin(x)


three_times_sin_derivative.defjvp(lambda p, t: (three_times_sin_derivative(p[0]), 3.0 * fnp.cos(p[0]) * t[0]))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_the_rule_not_the_function_is_differentiated(dtype):
    x = np.asarray(0.4, dtype)
    want = dtype(3.0 * np.cos(0.4))
    for got in (ft.grad(three_times_sin_derivative)(x), ft.jit(ft.grad(three_times_sin_derivative))(x),
                ft.jvp(three_times_sin_derivative, (x,), (np.ones((), dtype),))[1],
                ft.linearize(three_times_sin_derivative, x)[1](np.ones((), dtype)),
                ft.vjp(three_times_sin_derivative, x)[1](np.ones((), dtype))[0]):
        assert np.asarray(got).dtype == dtype
        np.testing.assert_allclose(got, want, rtol=1e-6 if dtype == np.float32 else 1e-14)
    np.testing.assert_allclose(three_times_sin_derivative(x), np.sin(x))
    # second order: d/dx 3 cos x = -3 sin x
    np.testing.assert_allclose(ft.grad(ft.grad(three_times_sin_derivative))(0.4), -3 * np.sin(0.4), rtol=1e-14)


@ft.custom_jvp
def safe_norm(x):
    return fnp.sqrt(fnp.sum(x * x))


@safe_norm.defjvp
def safe_norm_jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    y = safe_norm(x)
    safe_y = fnp.where(y == 0.0, 1.0, y)
    return y, fnp.where(y == 0.0, 0.0, fnp.sum(x * t) / safe_y)


def test_safe_norm_at_the_zero_vector():
    zero = np.zeros(3)
    for grad in (ft.grad(safe_norm), ft.jit(ft.grad(safe_norm))):
        np.testing.assert_array_equal(grad(zero), np.zeros(3))
        np.testing.assert_allclose(grad(np.array([3.0, 4.0, 0.0])), [0.6, 0.8, 0.0])
    with np.errstate(all="ignore"):
        assert np.isnan(ft.grad(lambda x: fnp.sqrt(fnp.sum(x * x)))(zero)).all()
    batch = np.array([[0.0, 0.0, 0.0], [3.0, 4.0, 0.0]])
    np.testing.assert_allclose(ft.vmap(ft.grad(safe_norm))(batch), [[0, 0, 0], [0.6, 0.8, 0]])


@settings(max_examples=20, deadline=None)
@given(st.lists(st.floats(-3, 3), min_size=1, max_size=4), st.sampled_from([np.float64, np.float32]))
def test_vmap_of_a_custom_jvp_function_and_its_grad_match_a_loop(values, dtype):
    xs = np.array(values, dtype)
    batched = ft.vmap(log1pexp)(xs)
    grads = ft.vmap(ft.grad(log1pexp))(xs)
    grad_of_vmap = ft.grad(lambda v: fnp.sum(ft.vmap(log1pexp)(v)))(xs)
    tol = dict(rtol=1e-5) if dtype == np.float32 else dict(rtol=1e-13)
    for i, x in enumerate(xs):
        np.testing.assert_allclose(batched[i], log1pexp(x), **tol)
        np.testing.assert_allclose(grads[i], ft.grad(log1pexp)(x), **tol)
        np.testing.assert_allclose(grad_of_vmap[i], ft.grad(log1pexp)(x), **tol)
    assert batched.dtype == grads.dtype == dtype


def test_under_jit_a_custom_jvp_call_is_one_equation():
    closed = ft.make_jaxpr(log1pexp)(1.0)
    assert [e.primitive.name for e in closed.eqns] == ["custom_jvp_call"]
    jitted = ft.make_jaxpr(ft.jit(lambda x: log1pexp(x) * 2.0))(1.0)
    inner = jitted.eqns[0].params["jaxpr"]
    assert "custom_jvp_call" in [e.primitive.name for e in inner.eqns]
    np.testing.assert_allclose(ft.jit(log1pexp)(2.0), np.log1p(np.exp(2.0)))


def test_defjvps_one_rule_per_argument():
    @ft.custom_jvp
    def f(x, y):
        return fnp.sin(x) * y

    f.defjvps(lambda x_dot, out, x, y: fnp.cos(x) * x_dot * y, lambda y_dot, out, x, y: fnp.sin(x) * y_dot)
    dx, dy = ft.grad(f, argnums=(0, 1))(0.5, 2.0)
    np.testing.assert_allclose([dx, dy], [2 * np.cos(0.5), np.sin(0.5)])
    g = ft.custom_jvp(lambda x, y: x * y)
    g.defjvps(None, lambda y_dot, out, x, y: x * y_dot)  # no rule for x: its tangent is dropped
    assert ft.grad(g, argnums=(0, 1))(3.0, 4.0) == (0.0, 3.0)


def test_nondiff_argnums_pass_static_values_to_the_rule_first():
    @partial(ft.custom_jvp, nondiff_argnums=(0,))
    def apply(fn, x):
        return fn(x)

    @apply.defjvp
    def apply_jvp(fn, primals, tangents):
        return apply(fn, primals[0]), 5.0 * tangents[0]

    assert ft.grad(lambda x: apply(fnp.sin, x))(1.0) == 5.0
    assert ft.jit(ft.grad(lambda x: apply(fnp.sin, x)))(1.0) == 5.0
    np.testing.assert_allclose(ft.vmap(lambda x: apply(fnp.sin, x))(np.arange(3.0)), np.sin(np.arange(3.0)))


def test_pytree_arguments_and_outputs():
    @ft.custom_jvp
    def f(d):
        return {"s": d["a"] * d["b"], "t": (d["a"],)}

    @f.defjvp
    def f_jvp(primals, tangents):
        (d,), (t,) = primals, tangents
        return f(d), {"s": 2.0 * (t["a"] * d["b"] + d["a"] * t["b"]), "t": (t["a"],)}

    g = ft.grad(lambda d: f(d)["s"] + f(d)["t"][0])({"a": 2.0, "b": 3.0})
    assert g == {"a": 7.0, "b": 4.0}


def test_closed_over_differentiated_values_are_differentiated_through_the_function():
    def g(w):
        @ft.custom_jvp
        def h(x):
            return fnp.sin(x) * w
        h.defjvp(lambda p, t: (h(p[0]), 10.0 * t[0]))
        return h(0.3)
    np.testing.assert_allclose(ft.grad(g)(2.0), np.sin(0.3))


def test_custom_functions_inside_scan_and_cond():
    def scanned(x):
        carry, _ = ft.lax.scan(lambda c, e: (c + three_times_sin_derivative(c * e), None), x, np.array([1.0, 2.0]))
        return carry

    def unrolled_rule_derivative(x):  # the same loop, differentiated with the rule's 3 cos by hand
        c, dc = x, 1.0
        for e in (1.0, 2.0):
            c, dc = c + np.sin(c * e), dc + 3 * np.cos(c * e) * e * dc
        return dc
    np.testing.assert_allclose(ft.grad(scanned)(0.5), unrolled_rule_derivative(0.5), rtol=1e-13)
    np.testing.assert_allclose(ft.jit(ft.grad(scanned))(0.5), unrolled_rule_derivative(0.5), rtol=1e-13)
    branch = lambda x: ft.lax.cond(x > 0, log1pexp, fnp.sin, x)  # noqa: E731
    assert ft.grad(branch)(100.0) == 1.0 and ft.jit(ft.grad(branch))(100.0) == 1.0
    np.testing.assert_allclose(ft.vmap(ft.grad(branch))(np.array([-1.0, 100.0])), [np.cos(-1.0), 1.0])


def test_jet_evaluates_the_function_as_jaxs_jet_does():
    _, series = ft.jet(three_times_sin_derivative, (0.3,), ((1.0, 0.0),))
    np.testing.assert_allclose(series[0], np.cos(0.3))  # the function's derivative, not the rule's 3 cos


# -------------------- custom_vjp --------------------

@ft.custom_vjp
def clip_gradient(x, lo, hi):
    return x


def clip_fwd(x, lo, hi):
    return x, (lo, hi)


def clip_bwd(residuals, g):
    lo, hi = residuals
    return fnp.clip(g, lo, hi), None, None


clip_gradient.defvjp(clip_fwd, clip_bwd)


def test_gradient_clipping():
    f = lambda x: fnp.sum(clip_gradient(x, -1.0, 1.0) * np.array([5.0, 0.5, -3.0]))  # noqa: E731
    x = np.array([1.0, 2.0, 3.0])
    for grad in (ft.grad(f), ft.jit(ft.grad(f))):
        np.testing.assert_allclose(grad(x), [1.0, 0.5, -1.0])
    np.testing.assert_allclose(ft.vmap(ft.grad(f))(np.stack([x, x])), [[1.0, 0.5, -1.0]] * 2)
    np.testing.assert_allclose(ft.grad(lambda x: fnp.sum(ft.vmap(lambda r: clip_gradient(r, -1.0, 1.0) * 4.0)(x)))(
        np.ones((2, 3))), np.ones((2, 3)))
    np.testing.assert_array_equal(clip_gradient(x, -1.0, 1.0), x)
    # the clip bounds are arguments too: their cotangents are zeros (bwd gave None)
    assert ft.grad(lambda lo: fnp.sum(clip_gradient(x, lo, 1.0)))(-1.0) == 0.0


def _iterate(step, x, times=60):
    for _ in range(times):
        x = step(x)
    return x


@partial(ft.custom_vjp, nondiff_argnums=(0,))
def fixed_point(f, a, x_guess):
    return _iterate(lambda x: f(a, x), x_guess)


def fixed_point_fwd(f, a, x_guess):
    x_star = fixed_point(f, a, x_guess)
    return x_star, (a, x_star)


def fixed_point_bwd(f, residuals, x_star_bar):
    """The implicit function theorem: w = x_star_bar + w df/dx, then a_bar = w df/da."""
    a, x_star = residuals
    _, vjp_a = ft.vjp(lambda a: f(a, x_star), a)
    _, vjp_x = ft.vjp(lambda x: f(a, x), x_star)
    w = _iterate(lambda u: x_star_bar + vjp_x(u)[0], x_star_bar)
    return vjp_a(w)[0], fnp.zeros_like(x_star)


fixed_point.defvjp(fixed_point_fwd, fixed_point_bwd)


def newton_sqrt_step(a, x):
    return 0.5 * (x + a / x)


def test_fixed_point_differentiated_implicitly_against_unrolled_differentiation():
    sqrt = lambda a: fixed_point(newton_sqrt_step, a, 1.0)  # noqa: E731
    unrolled = lambda a: _iterate(lambda x: newton_sqrt_step(a, x), 1.0)  # noqa: E731
    for a in (2.0, 9.0):
        np.testing.assert_allclose(sqrt(a), np.sqrt(a), rtol=1e-14)
        np.testing.assert_allclose(ft.grad(sqrt)(a), ft.grad(unrolled)(a), rtol=1e-12)
        np.testing.assert_allclose(ft.jit(ft.grad(sqrt))(a), 0.5 / np.sqrt(a), rtol=1e-12)
    np.testing.assert_allclose(ft.vmap(ft.grad(sqrt))(np.array([2.0, 9.0])), 0.5 / np.sqrt([2.0, 9.0]), rtol=1e-12)
    # second order: bwd is differentiated (d/da 1/(2 sqrt a) = -1/(4 a^1.5))
    np.testing.assert_allclose(ft.grad(ft.grad(sqrt))(4.0), -1 / (4 * 4.0 ** 1.5), rtol=1e-10)


def test_jvp_of_a_custom_vjp_function_is_a_type_error():
    with pytest.raises(TypeError, match="can't apply forward-mode autodiff \\(jvp\\) to a custom_vjp function"):
        ft.jvp(lambda x: clip_gradient(x, -1.0, 1.0), (1.0,), (1.0,))
    with pytest.raises(TypeError, match="forward-mode"):
        ft.jit(lambda x: ft.jvp(lambda y: clip_gradient(y, -1.0, 1.0), (x,), (1.0,)))(1.0)
    with pytest.raises(TypeError, match="forward-mode"):
        ft.jacfwd(lambda x: clip_gradient(x, -1.0, 1.0))(np.ones(2))
    np.testing.assert_allclose(ft.jacrev(lambda x: clip_gradient(x, -1.0, 1.0) * 3.0)(np.ones(2)), np.eye(2))


def test_residuals_may_be_any_pytree_and_jit_works_inside_and_outside():
    @ft.custom_vjp
    def f(x):
        return fnp.sin(x)

    f.defvjp(lambda x: (f(x), {"cos": [fnp.cos(x)], "none": None, "n": (np.int64(2),)}),
             lambda r, g: (r["cos"][0] * g * r["n"][0],))
    np.testing.assert_allclose(ft.grad(f)(0.3), 2 * np.cos(0.3))
    np.testing.assert_allclose(ft.jit(ft.grad(f))(0.3), 2 * np.cos(0.3))
    np.testing.assert_allclose(ft.grad(ft.jit(f))(0.3), 2 * np.cos(0.3))
    inner = ft.custom_vjp(ft.jit(lambda x: x * 3.0))
    inner.defvjp(ft.jit(lambda x: (x * 3.0, None)), lambda r, g: (g * 4.0,))
    assert ft.grad(inner)(1.0) == 4.0


def test_differentiating_a_closed_over_value_of_a_custom_vjp_function_is_an_error():
    def g(w):
        f = ft.custom_vjp(lambda x: x * w)
        f.defvjp(lambda x: (x * w, None), lambda r, ct: (ct * w,))
        return f(2.0)
    with pytest.raises(TypeError, match="closed-over value"):
        ft.grad(g)(3.0)


# -------------------- check_grads, printing and parsing --------------------

def test_check_grads_accepts_a_correct_rule_and_rejects_a_wrong_one():
    ft.check_grads(log1pexp, (0.7,), order=2, modes=("fwd", "rev"))
    ft.check_grads(safe_norm, (np.array([1.0, -2.0, 0.5]),), order=2, modes=("fwd", "rev"))
    ft.check_grads(lambda a: fixed_point(newton_sqrt_step, a, 1.0), (2.0,), order=1, modes=("rev",))
    with pytest.raises(AssertionError):
        ft.check_grads(three_times_sin_derivative, (0.4,), order=1, modes=("fwd",))
    with pytest.raises(AssertionError):
        ft.check_grads(three_times_sin_derivative, (0.4,), order=1, modes=("rev",))
    with pytest.raises(AssertionError):
        ft.check_grads(lambda x: clip_gradient(x * 3.0, -0.01, 0.01), (0.4,), order=1, modes=("rev",))


@pytest.mark.parametrize("fun, arg", [(log1pexp, 100.0), (lambda a: fixed_point(newton_sqrt_step, a, 1.0), 2.0),
                                      (lambda x: clip_gradient(x * 3.0, -1.0, 1.0), 0.4)],
                         ids=["custom_jvp", "custom_vjp fixed point", "custom_vjp clip"])
def test_printed_and_parsed_programs_differentiate_the_same_way(fun, arg):
    closed = ft.make_jaxpr(fun)(np.float64(arg))
    ir.check(closed)
    parsed = ft.parse_jaxpr(str(closed))
    assert str(parsed) == str(closed)
    ir.check(parsed)
    as_fun = ft.jaxpr_as_fun(parsed)
    np.testing.assert_allclose(ft.grad(lambda x: as_fun(x)[0])(arg), ft.grad(fun)(arg), rtol=1e-14)
    grad_program = ft.make_jaxpr(ft.grad(fun))(np.float64(arg))
    ir.check(grad_program)
    assert str(ft.parse_jaxpr(str(grad_program))) == str(grad_program)


def test_the_custom_vjp_call_prints_its_three_jaxprs():
    text = str(ft.make_jaxpr(lambda x: clip_gradient(x, -1.0, 1.0))(1.0))
    for name in ("call_jaxpr=", "fwd_jaxpr=", "bwd_jaxpr=", "num_res=2", "name=clip_gradient"):
        assert name in text
    grad_text = str(ft.make_jaxpr(ft.grad(lambda x: clip_gradient(x, -1.0, 1.0)))(1.0))
    assert "bwd_of_clip_gradient" in grad_text


# -------------------- errors --------------------

def test_differentiating_before_a_rule_is_defined():
    f = ft.custom_jvp(lambda x: x * 2.0)
    with pytest.raises(AttributeError, match="No JVP defined for custom_jvp function <lambda> using defjvp"):
        ft.grad(f)(1.0)
    g = ft.custom_vjp(lambda x: x * 2.0)
    with pytest.raises(AttributeError, match="No VJP defined for custom_vjp function <lambda> using defvjp"):
        ft.grad(g)(1.0)


def test_a_jvp_rule_whose_tangent_has_the_wrong_shape_or_dtype():
    @ft.custom_jvp
    def f(x):
        return x * 2.0

    f.defjvp(lambda p, t: (f(p[0]), fnp.ones(3)))
    with pytest.raises(TypeError, match=r"Custom JVP rule of f .*f64\[2\].*f64\[3\]"):
        ft.grad(lambda x: fnp.sum(f(x)))(np.ones(2))
    g = ft.custom_jvp(lambda x: x * 2.0)
    g.defjvp(lambda p, t: (g(p[0]), t[0].astype(np.float32)))
    with pytest.raises(TypeError, match=r"Custom JVP rule of <lambda> .*f64\[2\].*f32\[2\]"):
        ft.jvp(g, (np.ones(2),), (np.ones(2),))
    h = ft.custom_jvp(lambda x: x * 2.0)
    h.defjvp(lambda p, t: (h(p[0]), (t[0],)))
    with pytest.raises(TypeError, match="equal container"):
        ft.jvp(h, (1.0,), (1.0,))
    k = ft.custom_jvp(lambda x: x * 2.0)
    k.defjvp(lambda p, t: p[0] * 2.0)
    with pytest.raises(TypeError, match="must produce a pair"):
        ft.jvp(k, (1.0,), (1.0,))


def test_a_bwd_with_the_wrong_number_of_cotangents_or_wrong_shapes():
    f = ft.custom_vjp(lambda x, y: x * y)
    f.defvjp(lambda x, y: (x * y, (x, y)), lambda r, g: (g * r[1],))
    with pytest.raises(TypeError, match="Custom VJP bwd rule of <lambda> must produce a tuple of length equal to "
                                        "the number of .*arguments of the function, 2, but got a tuple of length 1"):
        ft.grad(f)(1.0, 2.0)
    g = ft.custom_vjp(lambda x: x * 2.0)
    g.defvjp(lambda x: (x * 2.0, None), lambda r, ct: (fnp.ones(3),))
    with pytest.raises(ValueError, match=r"Custom VJP bwd rule of <lambda> .*output\[0\].*f64\[2\] but got f64\[3\]"):
        ft.grad(lambda x: fnp.sum(g(x)))(np.ones(2))
    h = ft.custom_vjp(lambda x: x * 2.0)
    h.defvjp(lambda x: x * 2.0, lambda r, ct: (ct,))
    with pytest.raises(TypeError, match="fwd rule of <lambda> must produce a pair"):
        ft.grad(h)(1.0)


def test_the_custom_lin_primitive_cannot_be_evaluated_forward():
    """custom_lin (NO_EVALUATION in test_primitives): only its transpose, bwd, runs."""
    import custom_rows
    params = custom_rows.lin_params(ir.ShapedArray((2,), np.dtype(np.float64)))
    x = np.array([0.3, 0.6])
    with pytest.raises(TypeError, match="forward-mode"):
        ir.bind(ir.PRIMITIVES["custom_lin"], np.cos(x), np.sin(x), x, x, x, **params)
    want = custom_rows.rule_gradient(x, x)
    p = custom_rows.vjp_params(ir.ShapedArray((2,), np.dtype(np.float64)))
    f = lambda a, b: fnp.sum(ir.bind(ir.PRIMITIVES["custom_vjp_call"], a, b, **p)[0])  # noqa: E731
    for got, w in zip(ft.grad(f, argnums=(0, 1))(x, x), want, strict=True):
        np.testing.assert_allclose(got, w)


# -------------------- checkpoint (remat) and its policies --------------------

import random_programs  # noqa: E402


def _loss_of(program):
    return lambda x, y: sum(fnp.sum(v * (k + 1.0)) for k, v in enumerate(program(x, y)))


@settings(max_examples=25, deadline=None)
@given(random_programs.programs(max_steps=6), st.data(), st.sampled_from(["nothing_saveable", "dots_saveable",
                                                                         "everything_saveable"]))
def test_checkpoint_gives_the_values_and_gradients_of_no_checkpoint(program_and_names, data, policy):
    program, _ = program_and_names
    x, y = random_programs.inputs(data.draw)
    loss = _loss_of(program)
    remat = ft.checkpoint(loss, policy=getattr(ft.checkpoint_policies, policy))
    with np.errstate(all="ignore"):
        want_value, want_grads = ft.value_and_grad(loss, argnums=(0, 1))(x, y)
        for how, grad in (("eager", ft.value_and_grad(remat, argnums=(0, 1))),
                          ("jit", ft.jit(ft.value_and_grad(remat, argnums=(0, 1))))):
            value, grads = grad(x, y)
            np.testing.assert_allclose(value, want_value, rtol=1e-12, atol=1e-12, err_msg=how)
            for g, w in zip(grads, want_grads, strict=True):
                np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-10, err_msg=how)


def _mlp(params, x):
    for w in params:
        x = fnp.tanh(x @ w)
    return fnp.sum(x ** 2)


def test_the_recomputation_is_visible_and_survives_the_passes():
    f = lambda x: fnp.sum(ft.checkpoint(lambda v: fnp.sin(fnp.sin(v)))(x))  # noqa: E731
    x = np.array([0.3, 0.5])
    for optimize in (False, True):
        closed = ft.make_jaxpr(ft.grad(f), optimize=optimize)(x)
        ir.check(closed)
        checkpoints = [e for e in closed.eqns if e.primitive.name == "checkpoint"]
        assert len(checkpoints) == 1
        inner = [e.primitive.name for e in checkpoints[0].params["jaxpr"].eqns]
        assert "sin" in inner  # the forward value sin(x), recomputed in the backward pass
        outside = str(closed).replace(str(checkpoints[0].params["jaxpr"]), "")
        assert outside.count("sin") >= 1  # and computed once in the forward pass
    jitted = ft.jit(ft.grad(f))
    np.testing.assert_allclose(jitted(x), np.cos(np.sin(x)) * np.cos(x))


def _residual_bytes(f, *args):
    return ft.ad_checkpoint.saved_residual_bytes(f, *args)


def test_print_saved_residuals_before_and_after_checkpoint(capsys):
    params = [np.full((3, 3), 0.1 * (k + 1)) for k in range(4)]
    x = np.ones((2, 3))
    ft.print_saved_residuals(_mlp, params, x)
    before = capsys.readouterr().out
    assert "output of sub" in before or "output of tanh" in before
    assert "f64[2,3]" in before and before.strip().splitlines()[-1].startswith("total:")
    remat_layers = lambda params, x: _mlp_with(params, x, ft.checkpoint)  # noqa: E731
    ft.print_saved_residuals(remat_layers, params, x)
    after = capsys.readouterr().out
    assert "output of sub" not in after  # the layer outputs are saved (the next layer's inputs), not 1 - tanh^2
    full = _residual_bytes(_mlp, params, x)
    assert _residual_bytes(remat_layers, params, x) < full
    everything = lambda params, x: _mlp_with(params, x, partial(  # noqa: E731
        ft.checkpoint, policy=ft.checkpoint_policies.everything_saveable))
    assert _residual_bytes(everything, params, x) >= full
    dots = lambda params, x: _mlp_with(params, x, partial(  # noqa: E731
        ft.checkpoint, policy=ft.checkpoint_policies.dots_saveable))
    ft.print_saved_residuals(dots, params, x)
    assert "output of dot_general" in capsys.readouterr().out


def _mlp_with(params, x, wrap):
    layer = wrap(lambda w, h: fnp.tanh(h @ w))
    for w in params:
        x = layer(w, x)
    return fnp.sum(x ** 2)


def test_save_only_these_names():
    def layer(w, h):
        z = ft.ad_checkpoint.checkpoint_name(h @ w, "pre")
        return fnp.tanh(z) * fnp.sin(z)
    f = lambda w, h: fnp.sum(layer(w, h))  # noqa: E731
    w, h = np.full((3, 3), 0.2), np.ones((2, 3))
    named = ft.checkpoint(f, policy=ft.checkpoint_policies.save_only_these_names("pre"))
    listed = ft.ad_checkpoint.saved_residuals(named, w, h)
    assert [where for _, where in listed].count("output of name") == 1
    others = ft.checkpoint(f, policy=ft.checkpoint_policies.save_only_these_names("other"))
    assert "output of name" not in [where for _, where in ft.ad_checkpoint.saved_residuals(others, w, h)]
    for g in (ft.grad(named, argnums=(0, 1))(w, h), ft.grad(others, argnums=(0, 1))(w, h)):
        for got, want in zip(g, ft.grad(f, argnums=(0, 1))(w, h), strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-13)


def test_nested_checkpoints_and_checkpoint_inside_scan():
    inner = ft.checkpoint(lambda v: fnp.sin(v) * v)
    outer = ft.checkpoint(lambda v: fnp.cos(inner(v)) + inner(v * 2.0))
    plain = lambda v: fnp.cos(fnp.sin(v) * v) + fnp.sin(v * 2.0) * v * 2.0  # noqa: E731
    x = np.array([0.3, -0.7])
    for grad in (ft.grad(lambda v: fnp.sum(outer(v))), ft.jit(ft.grad(lambda v: fnp.sum(outer(v))))):
        np.testing.assert_allclose(grad(x), ft.grad(lambda v: fnp.sum(plain(v)))(x), rtol=1e-13)
    body = ft.checkpoint(lambda c, e: (fnp.tanh(c * e + 0.5), fnp.sin(c)))
    scanned = lambda c: fnp.sum(ft.lax.scan(body, c, np.array([0.5, 1.5, -1.0]))[1])  # noqa: E731

    def by_hand(c):
        total = 0.0
        for e in (0.5, 1.5, -1.0):
            total = total + fnp.sin(c)
            c = fnp.tanh(c * e + 0.5)
        return total
    for grad in (ft.grad(scanned), ft.jit(ft.grad(scanned))):
        np.testing.assert_allclose(grad(0.4), ft.grad(by_hand)(0.4), rtol=1e-13)
    np.testing.assert_allclose(ft.vmap(ft.grad(scanned))(np.array([0.4, -0.2])),
                               [ft.grad(by_hand)(0.4), ft.grad(by_hand)(-0.2)], rtol=1e-13)


def test_second_order_jet_and_vmap_through_a_checkpoint():
    f = ft.checkpoint(lambda x: fnp.sin(x) * x)
    np.testing.assert_allclose(ft.grad(ft.grad(f))(0.7), 2 * np.cos(0.7) - 0.7 * np.sin(0.7), rtol=1e-14)
    np.testing.assert_allclose(ft.jvp(f, (0.7,), (1.0,))[1], np.cos(0.7) * 0.7 + np.sin(0.7), rtol=1e-14)
    _, series = ft.jet(f, (0.7,), ((1.0, 0.0),))
    np.testing.assert_allclose(series[1], 2 * np.cos(0.7) - 0.7 * np.sin(0.7), rtol=1e-13)
    np.testing.assert_allclose(ft.vmap(f)(np.array([0.1, 0.2])), np.sin([0.1, 0.2]) * [0.1, 0.2])
    assert ft.remat is ft.checkpoint


def test_checkpoint_programs_print_parse_and_differentiate_the_same():
    f = ft.checkpoint(lambda x: fnp.tanh(x @ np.full((2, 2), 0.3)), policy=ft.checkpoint_policies.dots_saveable)
    x = np.array([[0.2, -0.4]])
    closed = ft.make_jaxpr(f)(x)
    assert "policy=dots_saveable" in str(closed)
    parsed = ft.parse_jaxpr(str(closed), consts=closed.consts)
    assert str(parsed) == str(closed)
    as_fun = ft.jaxpr_as_fun(parsed)
    np.testing.assert_allclose(ft.grad(lambda v: fnp.sum(as_fun(v)[0]))(x), ft.grad(lambda v: fnp.sum(f(v)))(x))
    grad_program = ft.make_jaxpr(ft.grad(lambda v: fnp.sum(f(v))))(x)
    assert str(ft.parse_jaxpr(str(grad_program))) == str(grad_program)


def test_checkpoint_errors():
    with pytest.raises(TypeError, match="policy must be one of ft.checkpoint_policies"):
        ft.checkpoint(fnp.sin, policy=lambda *a, **k: True)
    with pytest.raises(ValueError, match="letters, digits"):
        ft.grad(lambda x: ft.ad_checkpoint.checkpoint_name(x, "a b"))(1.0)
    with pytest.raises(TypeError, match="must be callable|callable"):
        ft.checkpoint(3)


def test_custom_vjp_inside_scan_and_cond_and_custom_rules_inside_a_checkpoint():
    f = lambda x: ft.lax.scan(lambda c, e: (clip_gradient(c * e, -0.1, 0.1), None), x,  # noqa: E731
                              np.array([2.0, 3.0]))[0]
    for grad in (ft.grad(f), ft.jit(ft.grad(f))):
        np.testing.assert_allclose(grad(1.0), 0.2)  # the cotangent 1 is clipped to 0.1, then times 2
    np.testing.assert_allclose(ft.vmap(ft.grad(f))(np.array([1.0, 2.0])), [0.2, 0.2])
    branch = lambda x: ft.lax.cond(x > 0, lambda y: clip_gradient(y * 5.0, -1.0, 1.0), fnp.sin, x)  # noqa: E731
    assert ft.grad(branch)(1.0) == 5.0
    g = ft.checkpoint(lambda x: log1pexp(x) * clip_gradient(x, -1.0, 1.0))
    want = sigmoid(3.0) * 3.0 + 1.0  # the cotangent of the clipped factor, log1pexp(3) > 1, is clipped to 1
    np.testing.assert_allclose(ft.grad(g)(3.0), want, rtol=1e-14)
    np.testing.assert_allclose(ft.jit(ft.grad(g))(3.0), want, rtol=1e-14)
    np.testing.assert_allclose(ft.hessian(lambda x: fnp.sum(log1pexp(x)))(np.array([0.1, 3.0])),
                               np.diag(sigmoid(np.array([0.1, 3.0])) * (1 - sigmoid(np.array([0.1, 3.0])))),
                               rtol=1e-12)


@pytest.mark.parametrize("mode", ["eager", "jit"])
def test_complex_arguments_and_outputs_carry_their_tangents(mode):
    """Rules of complex functions are not dropped: their gradient is the plain function's
    (JAX's convention, where a VJP transposes the JVP without conjugating)."""
    @ft.custom_jvp
    def square(z):
        return z * z
    square.defjvp(lambda p, t: (p[0] * p[0], 2 * p[0] * t[0]))

    @ft.custom_vjp
    def square_v(z):
        return z * z
    square_v.defvjp(lambda z: (z * z, z), lambda z, g: (2 * z * g,))

    def loss_of(sq):
        return lambda z: fnp.sum(fnp.abs(sq(z)) ** 2)
    z = np.array([1 + 2j, 3 - 1j, -0.5 + 0.25j])
    wrap = ft.jit if mode == "jit" else (lambda f: f)
    expected = ft.grad(loss_of(lambda z: z * z))(z)
    np.testing.assert_allclose(expected, 4 * np.conj(z) * np.abs(z) ** 2, rtol=1e-13)  # as grad(abs(z)**2) = 2 conj(z)
    for sq in (square, square_v):
        np.testing.assert_allclose(wrap(ft.grad(loss_of(sq)))(z), expected, rtol=1e-13)
    t = np.array([0.5 - 1j, 2j, 1.0])
    _, tangent = ft.jvp(wrap(square), (z,), (t,))
    np.testing.assert_allclose(tangent, 2 * z * t, rtol=1e-13)
