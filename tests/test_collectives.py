"""Collectives over a named vmap axis, one row per primitive, rule by rule.

A row is a function of one example that applies the collective over axis
"i", and what it computes for every example, written with NumPy over the
stacked examples. For each row: the values under vmap(axis_name="i") (eagerly,
under jit, through a jitted inner function), the batch rule for another axis
(an outer collective inside an inner vmap), forward and reverse derivatives to
order 2, the transposes (a gradient inside the vmap equals the gradient of the
sum over examples, as in JAX), and the Taylor rule (jet inside the vmap equals
jet of the vmapped function). The tables of tests/test_primitives.py and the
others leave these primitives to this file (conftest.COLLECTIVES).
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import ftrans as ft
import ftrans.numpy as fnp
from conftest import COLLECTIVES
from ir import axis_env

lax = ft.lax
def _shift(n):
    """Every example sends to the next; the last to no one, so the first receives zeros."""
    return [(k, k + 1) for k in range(n - 1)]


# name -> (the function of one example, NumPy's outputs for the stacked examples X of n rows,
#          whether the example's leading dimension must be n, differentiable)
ROWS = {
    "psum": (lambda v, n: lax.psum(v, "i"), lambda X: np.broadcast_to(X.sum(0), X.shape), False, True),
    "pmax": (lambda v, n: lax.pmax(v, "i"), lambda X: np.broadcast_to(X.max(0), X.shape), False, True),
    "pmin": (lambda v, n: lax.pmin(v, "i"), lambda X: np.broadcast_to(X.min(0), X.shape), False, True),
    "all_gather": (lambda v, n: lax.all_gather(v, "i"), lambda X: np.broadcast_to(X, (len(X),) + X.shape),
                   False, True),
    "psum_scatter": (lambda v, n: lax.psum_scatter(v, "i"), lambda X: X.sum(0), True, True),
    "ppermute": (lambda v, n: lax.ppermute(v, "i", _shift(n)),
                 lambda X: np.concatenate([np.zeros_like(X[:1]), X[:-1]]), False, True),
    "all_to_all": (lambda v, n: lax.all_to_all(v, "i", 0, 0), lambda X: np.swapaxes(X, 0, 1), True, True),
    "axis_index": (lambda v, n: lax.axis_index("i") + 0 * v.astype(np.int32),
                   lambda X: np.broadcast_to(np.arange(len(X)).reshape((-1,) + (1,) * (X.ndim - 1)),
                                             X.shape).astype(np.int32), False, False),
}


def test_every_collective_has_a_row():
    assert set(ROWS) == COLLECTIVES


def _draw_examples(draw, leading_is_n, dtype=np.float64):
    n = draw(st.integers(1, 4))
    rest = tuple(draw(st.lists(st.integers(1, 3), max_size=2)))
    example = ((n,) + rest) if leading_is_n else rest
    values = draw(st.lists(st.integers(-40, 40), min_size=n * int(np.prod(example, dtype=int)),
                           max_size=n * int(np.prod(example, dtype=int))))
    # distinct values on a 1/8 grid: sums are exact, maxima unique
    X = (np.array(values, dtype) / 8 + np.arange(len(values)) * 1e-3).reshape((n,) + example)
    return n, X


@st.composite
def row_and_examples(draw, name):
    return _draw_examples(draw, ROWS[name][2])


def _per_example(name, n):
    fun = ROWS[name][0]
    return lambda v: fun(v, n)


@pytest.mark.parametrize("name", sorted(ROWS))
@given(data=st.data())
def test_value_under_vmap_with_the_axis_name(name, data):
    n, X = data.draw(row_and_examples(name))
    want = ROWS[name][1](X)
    f = _per_example(name, n)
    np.testing.assert_allclose(ft.vmap(f, axis_name="i")(X), want, rtol=1e-14)
    np.testing.assert_allclose(ft.jit(ft.vmap(f, axis_name="i"))(X), want, rtol=1e-14)
    np.testing.assert_allclose(ft.vmap(ft.jit(f), axis_name="i")(X), want, rtol=1e-14)


@pytest.mark.parametrize("name", sorted(ROWS))
def test_float32_stays_float32(name):
    n, X = 3, np.linspace(-1, 1, 9, dtype=np.float32).reshape(3, 3)
    out = ft.vmap(_per_example(name, n), axis_name="i")(X)
    want = ROWS[name][1](X)
    assert out.dtype == want.dtype
    np.testing.assert_allclose(out, want, rtol=1e-6)


@pytest.mark.parametrize("name", sorted(ROWS))
@given(data=st.data())
def test_outer_axis_inside_an_inner_vmap(name, data):
    """The collective names the outer axis: the inner vmap batches it by its `batch` rule."""
    n, X = data.draw(row_and_examples(name))
    m = data.draw(st.integers(1, 3))
    Z = np.stack([X * (j + 1) for j in range(m)], axis=1)  # [n (axis "i"), m (axis "j"), *example]
    f = _per_example(name, n)
    out = ft.vmap(ft.vmap(f, axis_name="j"), axis_name="i")(Z)
    want = np.stack([ROWS[name][1](Z[:, j]) for j in range(m)], axis=1)
    np.testing.assert_allclose(out, want, rtol=1e-14)


DIFFERENTIABLE = sorted(name for name, row in ROWS.items() if row[3])


def _weights(shape):
    return np.cos(np.arange(int(np.prod(shape, dtype=int)))).reshape(shape) + 1.5


@pytest.mark.parametrize("name", DIFFERENTIABLE)
def test_check_grads_to_order_two(name):
    X = np.linspace(-1, 1, 18).reshape((3, 3, 2) if ROWS[name][2] else (3, 2, 3))
    f = _per_example(name, 3)
    out_shape = ft.vmap(f, axis_name="i")(X).shape
    W = _weights(out_shape)

    def loss(X):
        return fnp.sum(fnp.sin(ft.vmap(f, axis_name="i")(X)) * W)
    ft.check_grads(loss, (X,), order=2, modes=("fwd", "rev"))


@pytest.mark.parametrize("name", DIFFERENTIABLE)
@given(data=st.data())
def test_gradient_inside_the_vmap_is_the_gradient_of_the_sum(name, data):
    """The transpose rules: each example's gradient of its own loss, taken inside the
    vmap, is (as in JAX) the gradient of the sum of all examples' losses."""
    n, X = data.draw(row_and_examples(name))
    f = _per_example(name, n)
    W = _weights(ft.vmap(f, axis_name="i")(X).shape)

    def example_loss(v, w):
        return fnp.sum(fnp.sin(f(v)) * w)
    inside = ft.vmap(ft.grad(example_loss), axis_name="i")(X, W)
    of_sum = ft.grad(lambda X: fnp.sum(ft.vmap(example_loss, axis_name="i")(X, W)))(X)
    np.testing.assert_allclose(inside, of_sum, rtol=1e-12, atol=1e-14)
    jitted = ft.jit(ft.vmap(ft.grad(example_loss), axis_name="i"))(X, W)
    np.testing.assert_allclose(jitted, of_sum, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", sorted(ROWS))
def test_jet_inside_the_vmap_equals_jet_of_the_vmap(name):
    leading = ROWS[name][2]
    X = np.linspace(-1, 1, 12).reshape((2, 2, 3) if leading else (2, 3, 2))
    T1, T2 = np.cos(X), np.sin(3 * X)
    f = _per_example(name, 2)

    def g(v):
        return fnp.tanh(f(fnp.sin(v)).astype(np.float64))
    inside = ft.vmap(lambda x, t1, t2: ft.jet(g, (x,), ((t1, t2),)), axis_name="i")(X, T1, T2)
    outside = ft.jet(ft.vmap(g, axis_name="i"), (X,), ((T1, T2),))
    np.testing.assert_allclose(inside[0], outside[0], rtol=1e-13)
    for a, b in zip(inside[1], outside[1]):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


# -------------------- the public functions' other forms --------------------

def test_psum_of_a_pytree_over_two_axes_and_of_a_constant():
    Z = np.arange(24.0).reshape(2, 3, 4)

    def f(z):
        return lax.psum({"a": z, "b": (2 * z,)}, ("i", "j")), lax.psum(1, "i")
    tree, ones = ft.vmap(ft.vmap(f, axis_name="j"), axis_name="i")(Z)
    np.testing.assert_allclose(tree["a"], np.broadcast_to(Z.sum((0, 1)), Z.shape))
    np.testing.assert_allclose(tree["b"][0], 2 * np.broadcast_to(Z.sum((0, 1)), Z.shape))
    np.testing.assert_array_equal(ones, np.full((2, 3), 2))


def test_pmean_of_integers_is_float():
    X = np.arange(6).reshape(3, 2)
    out = ft.vmap(lambda v: lax.pmean(v, "i"), axis_name="i")(X)
    assert out.dtype == np.float64
    np.testing.assert_allclose(out, np.broadcast_to(X.mean(0), X.shape))


def test_tiled_all_gather_and_psum_scatter_are_each_others_transpose():
    X = np.arange(24.0).reshape(3, 4, 2)
    gathered = ft.vmap(lambda v: lax.all_gather(v, "i", axis=1, tiled=True), axis_name="i")(X)
    np.testing.assert_array_equal(gathered[0], np.concatenate(list(X), axis=1))
    Y = np.arange(36.0).reshape(3, 6, 2)
    scattered = ft.vmap(lambda v: lax.psum_scatter(v, "i", scatter_dimension=0, tiled=True), axis_name="i")(Y)
    np.testing.assert_array_equal(scattered, Y.sum(0).reshape(3, 2, 2))
    # <all_gather(x), y> = <x, psum_scatter(y)>, summed over examples
    G = np.cos(np.arange(72.0)).reshape(3, 12, 2)
    lhs = np.sum(ft.vmap(lambda v: lax.all_gather(v, "i", axis=0, tiled=True), axis_name="i")(X) * G)
    rhs = np.sum(X * ft.vmap(lambda g: lax.psum_scatter(g, "i", scatter_dimension=0, tiled=True),
                             axis_name="i")(G))
    np.testing.assert_allclose(lhs, rhs, rtol=1e-13)


def test_tiled_all_to_all_is_a_block_transpose():
    X = np.arange(48.0).reshape(2, 4, 6)  # 2 examples; split axis 0 in 2 blocks of 2, concat along axis 1
    out = ft.vmap(lambda v: lax.all_to_all(v, "i", 0, 1, tiled=True), axis_name="i")(X)
    for j in range(2):
        np.testing.assert_array_equal(out[j], np.concatenate([X[i, 2 * j:2 * j + 2] for i in range(2)], axis=1))


def test_ppermute_rotation_and_its_inverse():
    X = np.arange(8.0).reshape(4, 2)
    rotate = [(k, (k + 1) % 4) for k in range(4)]
    out = ft.vmap(lambda v: lax.ppermute(v, "i", rotate), axis_name="i")(X)
    np.testing.assert_array_equal(out, np.roll(X, 1, axis=0))
    back = ft.vmap(ft.grad(lambda v: fnp.sum(lax.ppermute(v, "i", rotate) * fnp.arange(2.0))), axis_name="i")(X)
    np.testing.assert_array_equal(back, np.broadcast_to(np.arange(2.0), X.shape))


@pytest.mark.parametrize("name", sorted(ROWS))
def test_the_named_batch_rules_stage_a_number_of_equations_independent_of_the_axis_size(name):
    """No rule loops over the examples (ppermute is one gather with constant indices, not a slice per
    example): the staged program for 7 examples is as long as for 2."""
    fun = ROWS[name][0]

    def length(n):
        shape = (n, n, 2) if ROWS[name][2] else (n, 2)
        return len(ft.make_jaxpr(ft.vmap(lambda v: fun(v, n), axis_name="i"))(np.ones(shape)).jaxpr.eqns)
    assert length(7) == length(2)


def test_ppermute_over_a_vmap_axis_is_one_gather():
    closed = ft.make_jaxpr(ft.vmap(lambda v: lax.ppermute(v, "i", [(0, 2), (2, 1)]), axis_name="i"))(np.ones((4, 3)))
    assert [e.primitive.name for e in closed.jaxpr.eqns] == ["gather"]


def test_collectives_inside_scan_and_cond_under_the_vmap():
    X = np.arange(6.0).reshape(3, 2)

    def f(v):
        total = lax.scan(lambda c, _: (c + lax.psum(v, "i"), None), fnp.zeros_like(v), None, length=4)[0]
        return lax.cond(lax.axis_index("i") == 0, lambda t: lax.pmax(t, "i"), lambda t: -t, total)
    out = ft.vmap(f, axis_name="i")(X)
    total = 4 * X.sum(0)
    np.testing.assert_allclose(out, np.stack([total, -total, -total]))
    np.testing.assert_allclose(ft.vmap(ft.jit(f), axis_name="i")(X), out)


# -------------------- errors --------------------

def test_an_unbound_axis_name_is_a_name_error_at_trace_time():
    with pytest.raises(NameError, match="unbound axis name 'i'"):
        lax.psum(1.0, "i")
    with pytest.raises(NameError, match=r"unbound axis name 'k' \(the bound axis names are \['i'\]\)"):
        ft.vmap(lambda v: lax.all_gather(v, "k"), axis_name="i")(np.ones(3))
    with pytest.raises(NameError, match="unbound axis name 'i'"):
        ft.jit(lambda v: lax.pmean(v, "i"))(np.ones(3))


def test_a_jitted_function_does_not_reuse_a_program_traced_under_another_axis():
    g = ft.jit(lambda v: lax.psum(v, "i"))
    np.testing.assert_allclose(ft.vmap(g, axis_name="i")(np.arange(3.0)), [3.0, 3.0, 3.0])
    with pytest.raises(NameError, match="unbound axis name 'i'"):
        g(np.arange(3.0))


def test_a_parsed_collective_run_where_no_axis_is_bound_says_so():
    with axis_env.binding("i", 2, "process"):
        closed = ft.make_jaxpr(lambda v: lax.psum(v, "i"))(np.ones(2))
    parsed = ft.parse_jaxpr(str(closed))
    assert str(parsed) == str(closed)
    with pytest.raises(NameError, match="psum: unbound axis name 'i'"):
        parsed(np.ones(2))


@pytest.mark.parametrize("fun, error, message", [
    (lambda v: lax.ppermute(v, "i", [(0, 1), (1, 1)]), ValueError, "repeated source or destination"),
    (lambda v: lax.ppermute(v, "i", [(0, 5)]), ValueError, "outside axis 'i' of size 3"),
    (lambda v: lax.ppermute(v, "i", [0, 1]), TypeError, "pairs of ints"),
    (lambda v: lax.psum_scatter(v, "i"), TypeError, "must be equal to the size 3"),
    (lambda v: lax.all_to_all(v, "i", 0, 0), TypeError, "must equal the size 3"),
    (lambda v: lax.all_gather(v, "i", axis=3), ValueError, "out of range"),
    (lambda v: lax.psum(v, 3), TypeError, "axis_name must be a str"),
    (lambda v: lax.psum(v > 0, "i"), TypeError, "psum does not take bool"),
])
def test_misuse_is_a_clear_error(fun, error, message):
    with pytest.raises(error, match=message):
        ft.vmap(fun, axis_name="i")(np.ones((3, 2)))


def test_vmap_axis_name_must_be_a_str():
    with pytest.raises(TypeError, match="axis_name must be a str"):
        ft.vmap(lambda v: v, axis_name=0)
