"""ft.lax: cond (eager it runs one branch; traced it selects between both)."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import ftrans as ft
import ftrans.numpy as fnp
from conftest import jit_for


def piecewise(x):
    return ft.lax.cond(fnp.sum(x) > 0, lambda x: fnp.sin(x) * x, lambda x: x ** 3 - 1.0, x)


def piecewise_numpy(x):
    return np.sin(x) * x if np.sum(x) > 0 else x ** 3 - 1.0


@given(x=hnp.arrays(np.float64, st.integers(1, 4), elements=st.floats(-2.0, 2.0)))
def test_cond_under_every_transformation_matches_numpy(x, jit_backend):
    want = piecewise_numpy(x)
    np.testing.assert_allclose(piecewise(x), want, rtol=1e-12)
    np.testing.assert_allclose(jit_for(piecewise, jit_backend)(x), want, rtol=1e-12)
    want_grad = np.cos(x) * x + np.sin(x) if np.sum(x) > 0 else 3 * x ** 2
    grad = ft.grad(lambda x: fnp.sum(piecewise(x)))
    for g in (grad, jit_for(grad, jit_backend)):
        np.testing.assert_allclose(g(x), want_grad, rtol=1e-12, atol=1e-12)


def test_cond_with_a_batched_predicate_matches_a_loop(jit_backend):
    xs = np.array([[1.0, 2.0], [-1.0, -2.0], [0.5, -0.25]])
    want = np.stack([piecewise_numpy(x) for x in xs])
    np.testing.assert_allclose(ft.vmap(piecewise)(xs), want)
    np.testing.assert_allclose(jit_for(ft.vmap(piecewise), jit_backend)(xs), want, rtol=1e-12)
    # a cond inside a jit, batched and differentiated: one select over both branches
    per_example_grad = ft.vmap(ft.grad(lambda x: fnp.sum(ft.jit(piecewise)(x))))
    want_grad = np.stack([np.cos(x) * x + np.sin(x) if np.sum(x) > 0 else 3 * x ** 2 for x in xs])
    np.testing.assert_allclose(per_example_grad(xs), want_grad, rtol=1e-12)
    np.testing.assert_allclose(jit_for(per_example_grad, jit_backend)(xs), want_grad, rtol=1e-12)


def test_eager_cond_runs_only_the_chosen_branch():
    ran = []
    out = ft.lax.cond(True, lambda x: ran.append("true") or x + 1, lambda x: ran.append("false") or x, 1.0)
    assert out == 2.0 and ran == ["true"]
    ft.grad(lambda x: ft.lax.cond(x > 0, lambda x: ran.append("t") or x, lambda x: ran.append("f") or -x, x))(-1.0)
    assert ran == ["true", "f"]


def test_cond_errors_name_the_problem():
    with pytest.raises(TypeError, match="scalar bool"):
        ft.lax.cond(np.array([True, False]), lambda: 1.0, lambda: 2.0)
    with pytest.raises(TypeError, match="different structures"):
        ft.jit(lambda x: ft.lax.cond(x > 0, lambda: (x, x), lambda: x))(1.0)
    with pytest.raises(TypeError, match=r"leaf 0 is f64\[2\] in the true branch"):
        ft.jit(lambda x: ft.lax.cond(x[0] > 0, lambda: x, lambda: x[0]))(np.ones(2))
