"""ft.lax.scan(..., checkpoints=k) (issue 12): reverse mode keeps O(k) carries and recomputes the
rest; its gradients are those of the plain scan (to rounding) for several k, eagerly and under jit,
forward and reversed, with pytrees and without xs, under vmap(grad) and to second order."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import ftrans as ft
import ftrans.numpy as fnp
from ftrans._control_flow import checkpoint_levels


def _rnn(w, h0, xs, checkpoints, reverse=False):
    def step(h, x):
        h = fnp.tanh(h @ w + x["in"]) * x["gate"]
        return h, (fnp.sum(h * h), h[0])
    h, (energies, firsts) = ft.lax.scan(step, h0, xs, checkpoints=checkpoints, reverse=reverse)
    return fnp.sum(energies) + fnp.sum(firsts * fnp.arange(firsts.shape[-1])) + fnp.sum(fnp.sin(h))


def _inputs(length, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(4, 4)) / 2, rng.normal(size=(3, 4)),
            {"in": rng.normal(size=(length, 3, 4)), "gate": rng.uniform(0.5, 1.5, size=(length, 1, 4))})


def _assert_trees_close(got, want, rtol=1e-12, atol=1e-13):
    got, want = ft.tree_util.tree_flatten(got)[0], ft.tree_util.tree_flatten(want)[0]
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert np.shape(g) == np.shape(w) and np.asarray(g).dtype == np.asarray(w).dtype
        np.testing.assert_allclose(g, w, rtol=rtol, atol=atol)


@pytest.mark.parametrize("k", [1, 2, 3, 7, 36, 100])
@pytest.mark.parametrize("reverse", [False, True])
def test_gradients_are_those_of_the_plain_scan(k, reverse):
    w, h0, xs = _inputs(37)
    argnums = (0, 1, 2)
    want = ft.grad(_rnn, argnums)(w, h0, xs, None, reverse)
    _assert_trees_close(ft.grad(_rnn, argnums)(w, h0, xs, k, reverse), want)
    _assert_trees_close(ft.jit(ft.grad(_rnn, argnums), static_argnums=(3, 4))(w, h0, xs, k, reverse), want)
    # and the values: eagerly (a Python loop) and under jit (the nested scans)
    value = _rnn(w, h0, xs, None, reverse)
    np.testing.assert_allclose(_rnn(w, h0, xs, k, reverse), value, rtol=1e-14)
    np.testing.assert_allclose(ft.jit(_rnn, static_argnums=(3, 4))(w, h0, xs, k, reverse), value, rtol=1e-13)


@settings(deadline=None)
@given(length=st.integers(1, 60), k=st.integers(1, 12), seed=st.integers(0, 3))
def test_any_length_and_k_against_the_plain_scan_float32(length, k, seed):
    w, h0, xs = (np.asarray(a, np.float32) if not isinstance(a, dict) else {n: v.astype(np.float32)
                 for n, v in a.items()} for a in _inputs(length, seed))
    want = ft.jit(ft.grad(_rnn), static_argnums=(3,))(w, h0, xs, None)
    got = ft.jit(ft.grad(_rnn), static_argnums=(3,))(w, h0, xs, k)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-6)


def test_vmap_of_grad_against_a_loop_of_calls():
    w, h0, xs = _inputs(23)
    ws = np.stack([w, -w, 0.5 * w])
    got = ft.vmap(lambda w: ft.grad(_rnn)(w, h0, xs, 4))(ws)
    _assert_trees_close(got, np.stack([ft.grad(_rnn)(v, h0, xs, None) for v in ws]))
    _assert_trees_close(ft.jit(ft.vmap(lambda w: ft.grad(_rnn)(w, h0, xs, 4)))(ws), got)


def test_second_order_and_check_grads():
    def f(a, k):
        carry, ys = ft.lax.scan(lambda c, x: (fnp.sin(c * x) + a * c, c * a), a, np.linspace(0.1, 1.0, 13),
                                checkpoints=k)
        return carry + fnp.sum(ys)
    for k in (1, 3):
        want = ft.grad(ft.grad(f))(0.7, None)
        np.testing.assert_allclose(ft.grad(ft.grad(f))(0.7, k), want, rtol=1e-12)
        np.testing.assert_allclose(ft.jit(ft.grad(ft.grad(f)), static_argnums=1)(0.7, k), want, rtol=1e-12)
        ft.check_grads(lambda a: f(a, k), (0.7,), order=2, modes=("fwd", "rev"))


def test_without_xs_and_with_a_python_scalar_carry():
    def f(a, k):
        carry, ys = ft.lax.scan(lambda c, _: (c * 0.9 + fnp.sin(a * c), c), 1.0, None, length=17, checkpoints=k)
        return carry + fnp.sum(ys ** 2)
    want = ft.grad(f)(0.3, None)
    for k in (1, 2, 5):
        np.testing.assert_allclose(ft.grad(f)(0.3, k), want, rtol=1e-13)
        np.testing.assert_allclose(ft.jit(ft.grad(f), static_argnums=1)(0.3, k), want, rtol=1e-13)


def _peak_bytes(fun, *args):
    """The peak of what `fun(*args)` allocated (tracemalloc, which NumPy reports to) beyond what it returns."""
    import tracemalloc
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        out = fun(*args)
        current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    del out
    return peak - max(current, base)


def test_reverse_mode_keeps_few_carries():
    """Peak memory of jit(grad) over 1,000 iterations: with checkpoints=30 (3 levels of 10 segments)
    at most about 30 carries and one iteration's residuals beside the ys, without checkpoints every
    iteration's residuals."""
    rng = np.random.default_rng(0)
    w, h0 = rng.normal(size=(64, 64)) / 8, np.zeros((16, 64))
    xs = {"in": rng.normal(size=(1000, 16, 64)), "gate": np.ones((1000, 1, 64))}
    grads = {k: ft.jit(ft.grad(lambda w, k=k: _rnn(w, h0, xs, k))) for k in (None, 30)}
    _assert_trees_close(grads[30](w), grads[None](w))  # compiled and run once each before measuring
    tape, kept = _peak_bytes(grads[None], w), _peak_bytes(grads[30], w)
    assert kept * 10 < tape, (kept, tape)
    ys_bytes = 1000 * (1 + 64) * 8  # the ys (energies, firsts) and their cotangents: kept by any schedule
    assert kept < 40 * h0.nbytes + 3 * w.nbytes + 2 * ys_bytes, (kept, h0.nbytes)


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_checkpoints_must_be_a_positive_int(bad):
    with pytest.raises(TypeError, match="checkpoints"):
        ft.lax.scan(lambda c, x: (c, x), 0.0, np.zeros(3), checkpoints=bad)


@given(length=st.integers(1, 10**6), k=st.integers(1, 1000))
def test_levels_cover_the_length_within_the_budget(length, k):
    levels, segments = checkpoint_levels(length, k)
    assert segments >= 2 and segments ** levels >= length
    if segments * levels > k:  # only where k cannot cover the length: segments of 2
        assert segments == 2 and all((k // d) < 2 or (k // d) ** d < length for d in range(1, k + 1))
