"""Structured control flow (ft.lax.cond, switch, scan, fori_loop, map): each
against a Python reference, eagerly and under jit on every backend; derivatives
by check_grads (forward and reverse, order 2) and against closed forms; vmap
against a loop of calls; what the transformations stage (one branch, one loop,
no tangent work for zero tangents, no stacked loop invariants); the passes on
sub-jaxprs; the generated code; printing and parsing; errors."""
import gc
import re
import warnings
import weakref

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import ftrans as ft
import ftrans.numpy as fnp
from conftest import jit_for
from interpreters.eval import eval_closed_jaxpr
from ir.core import Array
from ir.primitives import call

FLOATS = st.floats(-2.0, 2.0)


def _arrays(shape, dtype=np.float64, elements=FLOATS):
    return hnp.arrays(dtype, shape, elements=elements)


def assert_tree_close(got, want, rtol=1e-12, atol=1e-12):
    got_leaves, got_tree = ft.tree_util.tree_flatten(got)
    want_leaves, want_tree = ft.tree_util.tree_flatten(want)
    assert got_tree == want_tree
    for g, w in zip(got_leaves, want_leaves, strict=True):
        assert type(g) is Array, type(g)
        assert (g.shape, g.dtype) == (np.shape(w), np.asarray(w).dtype), (g, w)
        np.testing.assert_allclose(g, w, rtol=rtol, atol=atol)


def primitives_in(closed):
    """Every primitive name in a jaxpr, its sub-jaxprs included."""
    names, pending = [], [closed.jaxpr]
    while pending:
        for eqn in pending.pop().eqns:
            names.append(eqn.primitive.name)
            for value in eqn.params.values():
                for v in value if isinstance(value, tuple) else (value,):
                    if isinstance(v, ft.ClosedJaxpr):
                        pending.append(v.jaxpr)
    return names


@pytest.fixture
def warnings_are_errors():
    with warnings.catch_warnings(), np.errstate(all="raise"):
        warnings.simplefilter("error")
        yield


# -------------------- cond and switch --------------------

def piecewise(x):
    return ft.lax.cond(fnp.sum(x) > 0, lambda x: fnp.sin(x) * x, lambda x: x ** 3 - 1.0, x)


def piecewise_numpy(x):
    return np.sin(x) * x if np.sum(x) > 0 else x ** 3 - 1.0


def piecewise_grad(x):
    return np.cos(x) * x + np.sin(x) if np.sum(x) > 0 else 3 * x ** 2


@given(x=_arrays(st.integers(1, 4)))
def test_cond_matches_a_python_if_eagerly_under_jit_and_differentiated(x, jit_backend):
    assert_tree_close(piecewise(x), piecewise_numpy(x))
    assert_tree_close(jit_for(piecewise, jit_backend)(x), piecewise_numpy(x))
    grad = ft.grad(lambda x: fnp.sum(piecewise(x)))
    for g in (grad, jit_for(grad, jit_backend), ft.grad(lambda x: fnp.sum(ft.jit(piecewise)(x)))):
        assert_tree_close(g(x), piecewise_grad(x))


@pytest.mark.parametrize("pred", [True, False, 0, 3, -1, np.int32(2), np.array(False)])
def test_cond_takes_a_bool_or_an_integer_predicate(pred):
    f = lambda p, x: ft.lax.cond(p, lambda x: x + 1.0, lambda x: x - 1.0, x)  # noqa: E731
    want = 3.0 if pred else 1.0
    assert f(pred, 2.0) == want
    assert ft.jit(f)(pred, 2.0) == want
    assert ft.make_jaxpr(f)(pred, 2.0).eqns[-1].primitive.name == "cond"


@pytest.mark.parametrize("index", [-3, -1, 0, 1, 2, 3, 7])
def test_switch_clamps_its_index_into_range(index, jit_backend):
    branches = [lambda x: x * 10.0, lambda x: x + 1.0, lambda x: -x]
    want = branches[min(max(index, 0), 2)](2.0)
    assert ft.lax.switch(index, branches, 2.0) == want
    assert jit_for(lambda i, x: ft.lax.switch(i, branches, x), jit_backend)(np.int64(index), 2.0) == want
    assert jit_for(lambda x: ft.lax.switch(index, branches, x), jit_backend)(2.0) == want
    assert ft.vmap(lambda i: ft.lax.switch(i, branches, 2.0))(np.array([index, 1]))[0] == want


def test_eager_cond_calls_only_the_chosen_branch_and_tracing_traces_each_once():
    ran = []
    out = ft.lax.cond(True, lambda x: ran.append("true") or x + 1, lambda x: ran.append("false") or x, 1.0)
    assert out == 2.0 and type(out) is Array and ran == ["true"]
    ran.clear()
    f = lambda x: ft.lax.cond(x > 0, lambda x: ran.append("t") or x, lambda x: ran.append("f") or -x, x)  # noqa
    assert ft.grad(f)(-1.0) == -1.0
    assert sorted(ran) == ["f", "t"]  # grad stages one cond: each branch traced once, one of them runs


def safe_log(x):
    return ft.lax.cond(x > 0, fnp.log, lambda x: 0. * x, x)


def test_safe_log_has_gradient_zero_at_zero_under_every_composition(warnings_are_errors):
    """The issue's example: only the chosen branch runs, in every composition, so the
    log of 0 (and its derivative 1/0) never meets the derivative."""
    assert ft.grad(safe_log)(0.0) == 0.0
    assert ft.grad(ft.jit(safe_log))(0.0) == 0.0
    assert ft.jit(ft.grad(safe_log))(0.0) == 0.0
    assert ft.grad(ft.grad(safe_log))(0.0) == 0.0
    assert ft.jvp(safe_log, (0.0,), (1.0,))[1] == 0.0
    np.testing.assert_array_equal(ft.vmap(ft.grad(safe_log))(np.array([0.0, 2.0, -1.0])), [0.0, 0.5, 0.0])
    np.testing.assert_array_equal(ft.jit(ft.vmap(ft.grad(safe_log)))(np.array([0.0, 4.0])), [0.0, 0.25])
    assert ft.grad(safe_log)(2.0) == 0.5 and ft.jit(ft.grad(safe_log))(2.0) == 0.5


def test_the_derivatives_of_a_cond_are_conds():
    """jvp and reverse mode stage conds of the branches' derivatives: no select, and
    neither branch's work outside a cond."""
    for transformed in (ft.grad(safe_log), lambda x: ft.jvp(safe_log, (x,), (1.0,))):
        names = [eqn.primitive.name for eqn in ft.make_jaxpr(transformed)(1.0).eqns]
        assert "select_n" not in names and "log" not in names and "div" not in names
        assert "cond" in names
    text = ft.jit(ft.grad(safe_log)).lower(1.0).as_text()
    assert "if " in text and "else:" in text


@settings(max_examples=10)
@given(x=_arrays(st.integers(1, 3), elements=st.floats(0.3, 2.0)), y=st.floats(-1.5, 1.5))
def test_check_grads_through_cond_and_switch(x, y):
    f = lambda x, y: ft.lax.cond(y > 0.1234, lambda a: fnp.sin(a) * y, lambda a: fnp.log(a) * a, x)  # noqa: E731
    ft.check_grads(f, (x, y), order=2, modes=("fwd", "rev"), atol=1e-5, rtol=1e-5)
    g = lambda x, y: ft.lax.switch(fnp.floor(y * 2.0).astype(np.int32),  # noqa: E731
                                   [lambda a: a * a, lambda a: fnp.exp(a), lambda a: fnp.cos(a) * y], x)
    if abs(y * 2.0 - round(y * 2.0)) > 1e-3:
        ft.check_grads(g, (x, y), order=2, modes=("fwd", "rev"), atol=1e-5, rtol=1e-5)


def test_grad_of_grad_through_cond_is_the_closed_form():
    f = lambda x: ft.lax.cond(x > 1.0, lambda x: fnp.sin(x) * x, lambda x: x ** 4, x)  # noqa: E731
    for x, want in ((2.0, 2 * np.cos(2.0) - 2.0 * np.sin(2.0)), (0.5, 12 * 0.5 ** 2)):
        np.testing.assert_allclose(ft.grad(ft.grad(f))(x), want, rtol=1e-12)
        np.testing.assert_allclose(ft.jit(ft.grad(ft.grad(f)))(x), want, rtol=1e-12)


def test_grad_of_grad_through_cond_at_infinity_is_the_closed_form_eagerly_too():
    """Outputs of a cond that no cotangent reaches stay symbolic zeros, in the
    eager tape and in cond's transpose: an array of zeros would meet the
    infinite residual exp(x) (or -x*x) upstream, and 0 * inf is NaN."""
    same = lambda b: ft.lax.cond(b < 5.0, lambda b: -b * b, lambda b: -b * b, b)  # noqa: E731
    first = lambda x: ft.lax.cond(x > 0, lambda x: (x * x, fnp.exp(x)), lambda x: (x, x), x)[0]  # noqa: E731
    for fun, want in ((same, -2.0), (first, 2.0)):
        for x in (1000.0, np.inf, 3.0):
            second = ft.grad(ft.grad(fun))
            assert second(x) == want, (fun, x)
            assert ft.jit(second)(x) == want, (fun, x)
    np.testing.assert_allclose(ft.grad(first)(3.0), 6.0)


def test_grad_of_grad_through_scan_past_overflow_is_the_closed_form():
    """The ys and linear consts of a scan that no cotangent reaches stay
    symbolic zeros in its transpose (as cond's outputs do): h = x**3, whose
    unused ys hold exp(x e), which overflows at x = 1000."""
    def h(x):
        return ft.lax.scan(lambda c, e: (c * x, (fnp.exp(x * e), x * c)), 1.0, np.arange(3.0))[0]
    for x in (1000.0, 2.0):
        assert ft.grad(ft.grad(h))(x) == 6 * x
        assert ft.jit(ft.grad(ft.grad(h)))(x) == 6 * x
        np.testing.assert_allclose(ft.grad(h)(x), 3 * x * x)


@given(xs=_arrays((4, 3)), w=_arrays(3))
def test_vmap_of_cond_matches_a_loop_with_a_batched_or_a_shared_predicate(xs, w, jit_backend):
    batched_pred = lambda x: ft.lax.cond(fnp.sum(x) > 0, lambda x: fnp.sin(x) * w, lambda x: x - w, x)  # noqa
    shared_pred = lambda x, p: ft.lax.cond(p, lambda x: fnp.sin(x) * w, lambda x: x - w, x)  # noqa: E731
    want = np.stack([np.sin(x) * w if np.sum(x) > 0 else x - w for x in xs])
    assert_tree_close(ft.vmap(batched_pred)(xs), want)
    assert_tree_close(jit_for(ft.vmap(batched_pred), jit_backend)(xs), want)
    for p in (True, False):
        want = np.stack([np.sin(x) * w if p else x - w for x in xs])
        assert_tree_close(ft.vmap(shared_pred, in_axes=(0, None))(xs, p), want)
    # the batched predicate runs every branch and selects; the shared one stays a cond
    assert "cond" not in [e.primitive.name for e in ft.make_jaxpr(ft.vmap(batched_pred))(xs).eqns]
    assert "cond" in [e.primitive.name for e in ft.make_jaxpr(ft.vmap(shared_pred, in_axes=(0, None)))(xs, True).eqns]
    # vmap of grad: per-example gradients, each example through its own branch
    per_example = ft.vmap(ft.grad(lambda x: fnp.sum(batched_pred(x))))
    want_grad = np.stack([np.cos(x) * w if np.sum(x) > 0 else np.ones(3) for x in xs])
    assert_tree_close(per_example(xs), want_grad)
    assert_tree_close(jit_for(per_example, jit_backend)(xs), want_grad)


def test_cond_takes_and_returns_pytrees_and_promotes_weak_outputs():
    def f(p, tree):
        return ft.lax.cond(p, lambda t: {"a": t[0] * 2.0, "b": (t[1], 0.0)},
                           lambda t: {"a": t[0], "b": (-t[1], t[0].sum())}, tree)
    tree = (np.arange(3.0, dtype=np.float32), np.float32(2.0))
    for p in (True, False):
        want = {"a": tree[0] * 2, "b": (tree[1], np.float32(0))} if p else \
            {"a": tree[0], "b": (-tree[1], tree[0].sum())}
        # traced, the weak 0.0 takes the other branch's dtype, float32
        assert_tree_close(ft.jit(f)(p, tree), ft.tree_util.tree_map(np.asarray, want))
        # eagerly the branch runs as Python code: its 0.0 is a float64 array
        eager = f(p, tree)
        for got, expected in zip(ft.tree_util.tree_leaves(eager), ft.tree_util.tree_leaves(want), strict=True):
            assert type(got) is Array
            np.testing.assert_array_equal(got, expected)


def test_cond_errors_name_both_types_and_the_users_line():
    with pytest.raises(TypeError, match=r"predicate must be a scalar, got bool\[2\]"):
        ft.lax.cond(np.array([True, False]), lambda: 1.0, lambda: 2.0)
    with pytest.raises(TypeError, match="must be a bool or an integer, got f64"):
        ft.jit(lambda x: ft.lax.cond(x, lambda: x, lambda: x))(1.0)
    with pytest.raises(TypeError, match="must return the same structure") as info:
        ft.jit(lambda x: ft.lax.cond(x > 0, lambda: (x, x), lambda: x))(1.0)
    assert "test_control_flow.py" in str(info.value)
    with pytest.raises(TypeError, match=r"output\['b'\]\[1\] is f64\[2\] in false_fun and f64\[\] in true_fun, so "
                                        r"the shapes do not match"):
        ft.jit(lambda x: ft.lax.cond(x[0] > 0, lambda: {"a": x, "b": (x, x[0])},
                                     lambda: {"a": x, "b": (x, x)}))(np.ones(2))
    with pytest.raises(TypeError, match=r"f32\[2\] in false_fun and f64\[2\] in true_fun, so the dtypes"):
        ft.jit(lambda x: ft.lax.cond(x[0] > 0, lambda: x, lambda: x.astype(np.float32)))(np.ones(2))
    with pytest.raises(TypeError, match="cond \\(true_fun\\) expects a callable"):
        ft.lax.cond(True, 1.0, lambda: 2.0)
    with pytest.raises(ValueError, match="branches is empty"):
        ft.lax.switch(0, [], 1.0)
    with pytest.raises(TypeError, match=r"index must be an integer scalar, got bool\[\]"):
        ft.lax.switch(True, [lambda: 1.0], 1.0)


# -------------------- scan --------------------

def scan_reference(f, init, xs, length=None, reverse=False):
    """lax.scan's semantics as a plain Python loop (JAX's documented reference)."""
    leaves = ft.tree_util.tree_leaves(xs)
    n = length if length is not None else len(leaves[0])
    carry, ys = init, [None] * n
    for i in (reversed(range(n)) if reverse else range(n)):
        x = ft.tree_util.tree_map(lambda leaf: leaf[i], xs)
        carry, ys[i] = f(carry, x)
    return carry, ft.tree_util.tree_map(lambda *ys: np.stack(ys), *ys)


def _step_numpy(w):
    def step(carry, x):
        h, total = carry
        h = np.tanh(h @ w + x["u"]) * x["gate"]
        return (h, total + np.sum(h)), {"h": h, "norm": np.sum(h * h)}
    return step


def _step(w):
    def step(carry, x):
        h, total = carry
        h = fnp.tanh(h @ w + x["u"]) * x["gate"]
        return (h, total + fnp.sum(h)), {"h": h, "norm": fnp.sum(h * h)}
    return step


@given(data=st.data(), length=st.integers(1, 5), hidden=st.integers(1, 3), reverse=st.booleans())
def test_scan_matches_a_python_loop_eagerly_and_under_jit(data, length, hidden, reverse, jit_backend):
    w = data.draw(_arrays((hidden, hidden)), label="w")
    xs = {"u": data.draw(_arrays((length, 2, hidden)), label="u"), "gate": data.draw(_arrays((length, 1, 1)))}
    init = (np.zeros((2, hidden)), np.float64(0.0))
    want = scan_reference(_step_numpy(w), init, xs, reverse=reverse)
    f = lambda init, xs: ft.lax.scan(_step(w), init, xs, reverse=reverse)  # noqa: E731
    assert_tree_close(f(init, xs), want)
    assert_tree_close(jit_for(f, jit_backend)(init, xs), want)


def test_scan_of_no_xs_runs_length_times_and_length_zero_returns_the_init():
    carry, ys = ft.lax.scan(lambda c, _: (c * 2.0, c), 1.0, None, length=4)
    assert carry == 16.0 and ys.tolist() == [1.0, 2.0, 4.0, 8.0]
    for f in (lambda c: ft.lax.scan(lambda c, x: (c + x, c * x), c, np.zeros((0, 3))), ):
        for run in (f, ft.jit(f)):
            carry, ys = run(np.ones(3))
            assert carry.tolist() == [1.0, 1.0, 1.0] and ys.shape == (0, 3) and type(ys) is Array
    assert ft.jit(lambda c: ft.lax.scan(lambda c, _: (c * 2.0, c), c, None, length=4))(1.0)[0] == 16.0


def test_scan_takes_the_dtype_its_body_gives_a_weak_initial_carry():
    xs = np.arange(4, dtype=np.float32)
    for run in (ft.lax.scan, lambda f, c, x: ft.jit(lambda c, x: ft.lax.scan(f, c, x))(c, x)):
        carry, ys = run(lambda c, x: (c + x, fnp.sin(c)), 0.0, xs)
        assert carry.dtype == ys.dtype == np.float32 and carry == 6.0
        np.testing.assert_allclose(ys, np.sin(np.cumsum(xs) - xs), rtol=1e-6)


def rnn_loss(w, h0, xs):
    def step(h, x):
        h = fnp.tanh(h @ w + x)
        return h, fnp.sum(h * h)
    h, ys = ft.lax.scan(step, h0, xs)
    return fnp.sum(ys) + fnp.sum(h)


def rnn_loss_numpy(w, h0, xs):
    h, total = h0, 0.0
    for x in xs:
        h = np.tanh(h @ w + x)
        total += np.sum(h * h)
    return total + np.sum(h)


@settings(max_examples=10)
@given(data=st.data(), length=st.integers(1, 4), hidden=st.integers(1, 3))
def test_check_grads_through_scan(data, length, hidden):
    w = data.draw(_arrays((hidden, hidden), elements=st.floats(-1, 1)), label="w")
    h0 = data.draw(_arrays((2, hidden)), label="h0")
    xs = data.draw(_arrays((length, 2, hidden)), label="xs")
    np.testing.assert_allclose(rnn_loss(w, h0, xs), rnn_loss_numpy(w, h0, xs), rtol=1e-12)
    ft.check_grads(rnn_loss, (w, h0, xs), order=2, modes=("fwd", "rev"), atol=1e-5, rtol=1e-5)


def test_grad_of_grad_through_scan_is_the_closed_form():
    """x -> x**(2**n) by n squarings: the second derivative is k(k-1)x**(k-2), k = 2**n."""
    f = lambda x: ft.lax.scan(lambda c, _: (c * c, None), x, None, length=3)[0]  # noqa: E731
    for g in (ft.grad(ft.grad(f)), ft.jit(ft.grad(ft.grad(f))), ft.grad(ft.jit(ft.grad(f)))):
        np.testing.assert_allclose(g(1.1), 8 * 7 * 1.1 ** 6, rtol=1e-12)
    np.testing.assert_allclose(ft.jacfwd(ft.jacrev(f))(1.1), 8 * 7 * 1.1 ** 6, rtol=1e-12)


@given(data=st.data(), length=st.integers(1, 4))
def test_vmap_of_scan_and_of_its_gradient_match_a_loop(data, length, jit_backend):
    ws = data.draw(_arrays((3, 2, 2), elements=st.floats(-1, 1)), label="ws")
    h0 = data.draw(_arrays((1, 2)), label="h0")
    xs = data.draw(_arrays((length, 1, 2)), label="xs")
    batched = ft.vmap(rnn_loss, in_axes=(0, None, None))
    want = np.array([rnn_loss_numpy(w, h0, xs) for w in ws])
    assert_tree_close(batched(ws, h0, xs), want)
    assert_tree_close(jit_for(batched, jit_backend)(ws, h0, xs), want)
    per_example = ft.vmap(ft.grad(rnn_loss), in_axes=(0, None, None))
    want = np.stack([ft.grad(rnn_loss)(w, h0, xs) for w in ws])
    assert_tree_close(per_example(ws, h0, xs), want)
    assert_tree_close(jit_for(per_example, jit_backend)(ws, h0, xs), want)
    # xs batched along an inner axis, the carry batched because the body makes it so
    xs_batch = data.draw(_arrays((length, 3)), label="xs batch")
    f = lambda c, xs: ft.lax.scan(lambda c, x: (c * 0.5 + x, c * x), c, xs)  # noqa: E731
    loop = [f(1.0, xs_batch[:, k]) for k in range(3)]
    want = (np.stack([carry for carry, _ in loop]), np.stack([ys for _, ys in loop]))
    assert_tree_close(ft.vmap(f, in_axes=(None, 1))(1.0, xs_batch), want)
    assert_tree_close(jit_for(ft.vmap(f, in_axes=(None, 1)), jit_backend)(1.0, xs_batch), want)


def test_a_carry_with_a_zero_tangent_gets_no_tangent_work():
    """jvp in w only: the counter and the carry that never meets w stay primal
    (found by fixpoint), the one that does carries a tangent."""
    def f(w):
        def step(carry, _):
            i, independent, dependent = carry
            return (i + 1, independent * 2.0, dependent * w + independent), None
        return ft.lax.scan(step, (0, 1.0, 1.0), None, length=3)[0]
    closed = ft.make_jaxpr(lambda w: ft.jvp(f, (w,), (1.0,)))(0.5)
    (scan_eqn,) = [e for e in closed.eqns if e.primitive.name == "scan"]
    assert scan_eqn.params["num_carry"] == 3 + 1  # one tangent carry, of `dependent`
    np.testing.assert_allclose(ft.jvp(f, (0.5,), (1.0,))[1][2], ft.grad(lambda w: f(w)[2])(0.5), rtol=1e-12)


def test_reverse_mode_stacks_only_what_the_iterations_compute():
    """The weights (a loop invariant) and the xs reach the backward loop as they are:
    neither is stacked once per iteration by the forward loop."""
    def loss(w, h0, xs):  # the xs scale the state: their values are residuals
        return fnp.sum(ft.lax.scan(lambda h, x: (fnp.tanh(h @ w) * x, None), h0, xs)[0])
    w, h0, xs = np.ones((4, 4)) * 0.1, np.ones((2, 4)), np.ones((6, 2, 4))
    closed = ft.make_jaxpr(ft.grad(loss))(w, h0, xs)
    scans = [e for e in closed.eqns if e.primitive.name == "scan"]
    forward, backward = scans[0], scans[-1]
    assert not forward.params["reverse"] and backward.params["reverse"]
    stacked = [v.aval.shape for v in forward.outvars[forward.params["num_carry"]:]]
    assert (6, 4, 4) not in stacked  # w is not stacked
    assert closed.jaxpr.invars[2] in backward.invars  # the xs themselves, not a copy per iteration


def test_dce_drops_unused_ys_and_the_carries_only_they_read():
    def f(x, xs):
        def step(carry, e):
            a, b, c = carry  # c feeds only b, b only the unused y
            return (a + e, b + c, c * 2.0), (a * b, a)
        carry, (unused, used) = ft.lax.scan(step, (x, x, x), xs)
        return carry[0], used
    closed = ft.make_jaxpr(f, optimize=True)(1.0, np.arange(3.0))
    (scan_eqn,) = [e for e in closed.eqns if e.primitive.name == "scan"]
    assert scan_eqn.params["num_carry"] == 1 and len(scan_eqn.outvars) == 2
    assert_tree_close(eval_closed_jaxpr(closed, 1.0, np.arange(3.0)), list(f(1.0, np.arange(3.0))))


def test_passes_optimize_bodies_on_their_own_and_move_nothing_across_a_loop():
    w = np.linspace(0.1, 0.9, 3)

    def f(x):
        outside = fnp.sin(x)
        carry, ys = ft.lax.scan(lambda c, e: (c * 1.0 + fnp.sin(x) * e, fnp.sin(x) + fnp.sin(x)), x, w)
        return carry + outside, ys
    closed = ft.make_jaxpr(f, optimize=True)(0.3)
    (scan_eqn,) = [e for e in closed.eqns if e.primitive.name == "scan"]
    body = [e.primitive.name for e in scan_eqn.params["jaxpr"].eqns]
    assert body.count("sin") == 1  # CSE within the body
    assert "mul" in body and body.count("mul") == 1  # c * 1.0 simplified away, sin(x) * e kept
    assert [e.primitive.name for e in closed.eqns].count("sin") == 1  # the outer sin stays outside
    assert_tree_close(eval_closed_jaxpr(closed, 0.3), list(f(0.3)))


def test_jit_inlines_jitted_functions_called_in_a_loop_body_into_the_body():
    inner = ft.jit(lambda h, x: fnp.tanh(h * 2.0 + x))
    f = ft.jit(lambda xs: ft.lax.scan(lambda c, x: (inner(c, x), c), xs[0], xs))
    closed = f.lower(np.ones((3, 2))).jaxpr
    assert "jit_call" not in primitives_in(closed) and "tanh" in primitives_in(closed)
    assert_tree_close(f(np.ones((3, 2))), ft.lax.scan(lambda c, x: (inner(c, x), c), np.ones(2), np.ones((3, 2))))


def test_unused_branch_outputs_leave_every_branch():
    def f(p, x):
        a, b = ft.lax.cond(p, lambda x: (fnp.sin(x), fnp.exp(x)), lambda x: (x, fnp.log(x)), x)
        return a
    closed = ft.make_jaxpr(f, optimize=True)(True, 2.0)
    (cond_eqn,) = [e for e in closed.eqns if e.primitive.name == "cond"]
    assert len(cond_eqn.outvars) == 1
    assert "exp" not in primitives_in(closed) and "log" not in primitives_in(closed)


# -------------------- the generated code --------------------

def test_jit_of_a_scan_is_a_python_loop_around_a_body_compiled_once():
    traced = []

    def loss(w, xs):
        def step(h, x):
            traced.append(1)
            return fnp.tanh(h @ w + x), None
        return fnp.sum(ft.lax.scan(step, xs[0], xs)[0])
    w = np.eye(8) * 0.5
    texts = {}
    for length in (10, 1000):
        traced.clear()
        jitted = ft.jit(ft.grad(loss))
        texts[length] = jitted.lower(w, np.ones((length, 4, 8))).as_text()
        assert len(traced) == 1  # the body is traced once, whatever the length
        np.testing.assert_allclose(jitted(w, np.ones((length, 4, 8)) * 0.1),
                                   ft.grad(loss)(w, np.ones((length, 4, 8)) * 0.1), rtol=1e-12)
    assert f"range({10})" in texts[10] and "range(9, -1, -1)" in texts[10]
    # the same code whatever the trip count (but for the numbers in it)
    assert re.sub(r"\d+", "N", texts[10]) == re.sub(r"\d+", "N", texts[1000])


def test_a_loop_body_reuses_one_set_of_scratch_buffers_on_every_iteration():
    step = lambda h, x: (fnp.tanh(fnp.tanh(h @ w + x) * 2.0 + x), fnp.sum(h))  # noqa: E731
    w, xs = np.eye(64) * 0.5, np.linspace(-1, 1, 20 * 64 * 64).reshape(20, 64, 64)
    jitted = ft.jit(lambda xs: ft.lax.scan(step, xs[0], xs))
    text = jitted.lower(xs).as_text()
    assert "def body" in text and "out=buf" in text  # the body's intermediates go into scratch buffers
    (body,) = [value for name, value in jitted.lower(xs)._lowered.function.__globals__.items()
               if name.startswith("body")]
    pool, taken = body.__globals__["scratch_pool"], []
    take = pool.take
    pool.take = lambda: taken.append(take()) or taken[-1]
    assert_tree_close(jitted(xs), ft.lax.scan(step, xs[0], xs))
    assert len(taken) == 20 and len({id(buffers) for buffers in taken}) == 1


def test_cupy_lowering_runs_loops_and_branches_on_the_host_around_kernels():
    """Without a GPU: the host plan of jit(grad) of a scan and a cond, with NumPy standing
    in for every kernel (tests/test_fusion.py's numpy_kernel), equals eager evaluation."""
    from test_fusion import run_lowered_on_numpy

    def loss(w, h0, xs):
        return rnn_loss(w, h0, xs) + ft.lax.cond(fnp.sum(w) > 0, lambda w: fnp.sum(fnp.sin(w)),
                                                lambda w: fnp.sum(w * w), w)
    rng = np.random.default_rng(0)
    args = (rng.normal(size=(3, 3)) * 0.5, rng.normal(size=(2, 3)), rng.normal(size=(4, 2, 3)))
    for w in (args[0], -np.abs(args[0])):
        jitted = ft.jit(ft.grad(loss, argnums=(0, 1, 2)), backend="cupy")
        lowered = jitted.lower(w, *args[1:])
        text = lowered.as_text()
        assert "= scan(" in text and "= cond(" in text and re.search(r"plan loss_scan0_0\(", text)
        got = run_lowered_on_numpy(lowered._lowered, [w, *args[1:]])
        want = ft.tree_util.tree_leaves(ft.grad(loss, argnums=(0, 1, 2))(w, *args[1:]))
        for g, e in zip(got, want, strict=True):
            np.testing.assert_allclose(g, e, rtol=1e-12, atol=1e-12)


# -------------------- fori_loop and map --------------------

@given(lower=st.integers(-3, 3), trips=st.integers(-2, 5), x=st.floats(-1, 1))
def test_fori_loop_with_static_bounds_matches_a_python_loop(lower, trips, x, jit_backend):
    upper = lower + trips
    body = lambda i, c: c * 0.5 + fnp.sin(c) * i  # noqa: E731
    want = x
    for i in range(lower, upper):
        want = want * 0.5 + np.sin(want) * i
    assert_tree_close(ft.lax.fori_loop(lower, upper, body, x), np.asarray(want))
    assert_tree_close(jit_for(lambda x: ft.lax.fori_loop(lower, upper, body, x), jit_backend)(x), np.asarray(want))
    ft.check_grads(lambda x: ft.lax.fori_loop(lower, upper, body, x), (x,), order=2, modes=("fwd", "rev"))


def test_fori_loop_counts_in_the_dtype_of_its_bounds():
    seen = []
    ft.jit(lambda x: ft.lax.fori_loop(np.int32(0), 3, lambda i, c: seen.append(i.dtype) or c + i, x))(0)
    assert set(seen) == {np.dtype(np.int32)}  # traced twice: the weak 0 carry takes int32 from the body
    assert ft.lax.fori_loop(np.int32(0), np.int32(3), lambda i, c: c + i, 0).tolist() == 3


def test_fori_loop_with_traced_bounds_is_a_while_loop():
    f = ft.jit(lambda n, x: ft.lax.fori_loop(0, n, lambda i, c: c * 2.0, x))
    assert float(f(3, 1.0)) == 8.0 and float(f(0, 1.0)) == 1.0
    assert float(ft.grad(f, argnums=1)(3, 1.0)) == 8.0


def test_fori_loop_body_errors_name_both_types():
    with pytest.raises(TypeError, match=r"init_val is f64\[\]\{weak\} and body_fun returned f64\[2\] there, so the sh"):
        ft.lax.fori_loop(0, 2, lambda i, c: c * np.ones(2), 1.0)
    with pytest.raises(TypeError, match=r"init_val\[1\] is f64\[\] and body_fun returned f32\[\]"):
        ft.jit(lambda x: ft.lax.fori_loop(0, 2, lambda i, c: (c[0], c[1].astype(np.float32)), (x, x)))(np.float64(1))


@pytest.mark.parametrize("batch_size", [None, 1, 2, 3, 7])
def test_map_applies_f_to_each_slice(batch_size):
    xs = {"a": np.arange(10.0).reshape(5, 2), "b": np.arange(5.0)}
    f = lambda x: fnp.sum(x["a"]) * x["b"]  # noqa: E731
    want = np.array([np.sum(xs["a"][i]) * xs["b"][i] for i in range(5)])
    assert_tree_close(ft.lax.map(f, xs, batch_size=batch_size), want)
    assert_tree_close(ft.jit(lambda xs: ft.lax.map(f, xs, batch_size=batch_size))(xs), want)
    assert_tree_close(ft.grad(lambda xs: fnp.sum(ft.lax.map(f, xs, batch_size=batch_size)))(xs)["b"],
                      np.sum(xs["a"], axis=1))


# -------------------- the IR: printing, parsing, checking --------------------

def test_programs_holding_conds_and_scans_print_parse_and_evaluate_alike():
    w, h0, xs = np.eye(3) * 0.3, np.ones((2, 3)), np.linspace(-1, 1, 24).reshape(4, 2, 3)
    programs = [ft.make_jaxpr(ft.grad(rnn_loss))(w, h0, xs),
                ft.make_jaxpr(ft.vmap(ft.grad(safe_log)))(np.array([0.0, 2.0])),
                ft.make_jaxpr(lambda i, x: ft.lax.switch(i, [fnp.sin, fnp.cos, lambda x: x], x))(1, 2.0)]
    args = [(w, h0, xs), (np.array([0.0, 2.0]),), (1, 2.0)]
    for closed, arguments in zip(programs, args):
        text = str(closed)
        parsed = ft.parse_jaxpr(text, consts=closed.consts)
        assert str(parsed) == text
        for got, want in zip(eval_closed_jaxpr(parsed, *arguments), eval_closed_jaxpr(closed, *arguments)):
            np.testing.assert_array_equal(got, want)
    assert "branches=(\n" in str(programs[2]) and "jaxpr={ lambda" in str(programs[0])


def test_check_rejects_an_ill_typed_body_inside_a_scan():
    text = str(ft.make_jaxpr(lambda c, xs: ft.lax.scan(lambda c, x: (c + x, c), c, xs))(1.0, np.ones(3)))
    broken = text.replace("add", "lt", 1)  # the body's carry becomes a bool
    with pytest.raises(ft.JaxprParseError):
        ft.parse_jaxpr(broken)


# -------------------- errors --------------------

def test_scan_errors_as_jax_raises_them():
    xs = np.ones((3, 2))
    with pytest.raises(TypeError, match=r"input carry component carry\[1\]\['h'\] is f64\[2\] and the output carry "
                                        r"component is f64\[\], so the shapes do not match") as info:
        ft.lax.scan(lambda c, x: ((c[0], {"h": fnp.sum(c[1]["h"])}), x), (0.0, {"h": np.ones(2)}), xs)
    assert "test_control_flow.py" in str(info.value)
    with pytest.raises(TypeError, match=r"component carry is f32\[2\] and the output carry component is f64\[2\], so "
                                        "the dtypes do not match"):
        ft.jit(lambda xs: ft.lax.scan(lambda c, x: (c + x, x), np.ones(2, np.float32), xs))(xs)
    with pytest.raises(TypeError, match="structure of its carry input"):
        ft.jit(lambda xs: ft.lax.scan(lambda c, x: ((c, c), x), 0.0, xs))(xs)
    with pytest.raises(TypeError, match="must return a pair"):
        ft.lax.scan(lambda c, x: c, 0.0, xs)
    with pytest.raises(ValueError, match=r"different leading axis sizes: xs\[0\].shape\[0\] = 3, "
                                         r"xs\[1\].shape\[0\] = 4"):
        ft.lax.scan(lambda c, x: (c, x), 0.0, (xs, np.ones(4)))
    with pytest.raises(ValueError, match="length=5, which disagrees"):
        ft.jit(lambda xs: ft.lax.scan(lambda c, x: (c, x), 0.0, xs, length=5))(xs)
    with pytest.raises(ValueError, match="no values to scan over"):
        ft.lax.scan(lambda c, x: (c, x), 0.0, None)
    with pytest.raises(ValueError, match="no leading axis"):
        ft.lax.scan(lambda c, x: (c, x), 0.0, {"x": 1.0})
    with pytest.raises(TypeError, match="unroll must be"):
        ft.lax.scan(lambda c, x: (c, x), 0.0, xs, unroll=0)


# -------------------- the eager tape and memory --------------------

def test_eager_grad_of_a_scan_keeps_its_rule_beside_its_body_and_both_die_with_it():
    from interpreters import ad_eager
    rules_before = len(ad_eager._RULES)
    big = np.random.default_rng(0).random(10 ** 5)

    def loss(s):
        return fnp.sum(ft.lax.scan(lambda c, x: (c * s + x, None), big[:3], big[:9].reshape(3, 3))[0] * big[:3])
    np.testing.assert_allclose(ft.grad(loss)(0.5), ft.jit(ft.grad(loss))(0.5), rtol=1e-12)
    assert len(ad_eager._RULES) <= rules_before + 8  # the scan's own rule is kept beside its body
    bodies = []
    original = call.derived

    def spy(closed, key, build):
        if isinstance(key, tuple) and key[:1] == ("eager vjp",):
            bodies.append(weakref.ref(closed))
        return original(closed, key, build)
    call.derived = spy
    try:
        ft.grad(loss)(0.5)
    finally:
        call.derived = original
    assert bodies  # the tape's rule of the scan was asked for beside its body
    gc.collect()
    assert all(ref() is None for ref in bodies)  # and the body (with what it keeps) is gone
