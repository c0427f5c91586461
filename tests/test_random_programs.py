"""Properties over random programs: printing, parsing and evaluating agree, and so
do jit of the program read back from its text, of its vjp and of its vmap; eager and
jitted derivatives agree at special inputs (signed zeros, infinities, nan, huge and tiny
values), to the pattern of nan, inf and the sign of zeros."""
import numpy as np
from hypothesis import example, given
from hypothesis import strategies as st

import ftrans as ft
import ftrans.numpy as fnp
from conftest import jit_for
from interpreters.eval import eval_closed_jaxpr
from ir.core import Array
from random_programs import (N, inputs, program_of, programs, scalar_program_of, scalar_programs, special_floats,
                             special_inputs)


@given(programs(), st.data())
def test_print_parse_print_is_identity_and_evaluation_agrees(program_and_ops, data):
    program, ops = program_and_ops
    x, y = inputs(data.draw)
    closed = ft.make_jaxpr(program)(x, y)
    text = str(closed)
    parsed = ft.parse_jaxpr(text, consts=closed.consts)
    assert str(parsed) == text, ops
    eager = program(x, y)
    traced = eval_closed_jaxpr(closed, x, y)
    from_text = eval_closed_jaxpr(parsed, x, y)
    for e, t, p in zip(eager, traced, from_text, strict=True):
        np.testing.assert_allclose(t, e, rtol=1e-12, atol=1e-12, err_msg=str(ops))
        np.testing.assert_array_equal(p, t, err_msg=str(ops))


def _assert_jit_equals_eager(got, want, what):
    got_leaves, got_tree = ft.tree_util.tree_flatten(got)
    want_leaves, want_tree = ft.tree_util.tree_flatten(want)
    assert got_tree == want_tree, what
    for g, w in zip(got_leaves, want_leaves, strict=True):
        assert type(g) is Array and (g.shape, g.dtype) == (np.shape(w), np.asarray(w).dtype), what
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-12, err_msg=what)


@given(program_and_ops=programs(), data=st.data())
def test_jit_of_the_parsed_program_its_vjp_and_its_vmap_equal_eager(program_and_ops, data, jit_backend):
    program, ops = program_and_ops
    x, y = inputs(data.draw)
    with np.errstate(all="ignore"):  # NaN derivatives (of std at a constant vector, ...), eager and jitted alike
        _check_jit_of_program(program, ops, x, y, jit_backend)


def _check_jit_of_program(program, ops, x, y, jit_backend):
    closed = ft.make_jaxpr(program)(x, y)
    parsed = ft.parse_jaxpr(str(closed), consts=closed.consts)
    # the program read back from its text, jitted: its equations are bound again, traced
    from_text = jit_for(lambda x, y: eval_closed_jaxpr(parsed, x, y), jit_backend)(x, y)
    _assert_jit_equals_eager(from_text, program(x, y), f"jit of the parsed program {ops}")
    # vjp: every output weighted by a cotangent (the eager tape against the staged transpose)
    cts = [np.linspace(-1.0, 1.0, np.size(out)).reshape(np.shape(out)) for out in program(x, y)]
    vjp = lambda cts, x, y: ft.vjp(program, x, y)[1](cts)  # noqa: E731
    _assert_jit_equals_eager(jit_for(vjp, jit_backend)(cts, x, y), vjp(cts, x, y), f"jit of the vjp of {ops}")
    # vmap over a batch of x's, y shared
    xs = np.stack([x, x[::-1], np.full(N, 0.5)])
    vmapped = ft.vmap(program, in_axes=(0, None))
    _assert_jit_equals_eager(jit_for(vmapped, jit_backend)(xs, y), vmapped(xs, y), f"jit of the vmap of {ops}")


# -------------------- eager and jitted derivatives agree, special values included --------------------

def assert_same_values(got, want, what):
    """The same pytree of arrays, shapes and dtypes; the same nan positions, the
    same infinities, the same sign where both are zero; finite values equal up
    to the rounding jit may differ by (integer powers as multiplications, sums
    in another order)."""
    got_leaves, got_tree = ft.tree_util.tree_flatten(got)
    want_leaves, want_tree = ft.tree_util.tree_flatten(want)
    assert got_tree == want_tree, what
    for g, w in zip(got_leaves, want_leaves, strict=True):
        g, w = np.asarray(g), np.asarray(w)
        assert (g.shape, g.dtype) == (w.shape, w.dtype), what
        np.testing.assert_array_equal(np.isnan(g), np.isnan(w), err_msg=f"nan positions: {what}")
        np.testing.assert_array_equal(np.where(np.isinf(w), w, 0.0), np.where(np.isinf(g), g, 0.0),
                                      err_msg=f"infinities: {what}")
        zeros = (g == 0) & (w == 0)
        np.testing.assert_array_equal(np.signbit(g[zeros]), np.signbit(w[zeros]), err_msg=f"signs of zeros: {what}")
        finite = np.isfinite(w)
        np.testing.assert_allclose(g[finite], w[finite], rtol=1e-9, atol=1e-12, err_msg=what)


def _eager_and_jitted_agree(fun, args, jit_backend, what):
    with np.errstate(all="ignore"):
        want = fun(*args)
        got = jit_for(fun, jit_backend)(*args)
    assert_same_values(got, want, what)


@given(program_and_ops=programs(max_steps=6), data=st.data())
def test_eager_and_jitted_derivatives_of_random_programs_agree(program_and_ops, data, jit_backend):
    """grad, vjp with a drawn cotangent and jvp of a random program, at special
    inputs: the eager tape and forward trace against jit of the same transformation."""
    program, ops = program_and_ops
    x, y = special_inputs(data.draw)
    with np.errstate(all="ignore"):
        shapes = [np.shape(out) for out in program(x, y)]
    cts = [np.array(data.draw(st.lists(special_floats(), min_size=int(np.prod(s)), max_size=int(np.prod(s))),
                              label="cotangent")).reshape(s) for s in shapes]
    loss = lambda x, y: sum(fnp.sum(out) for out in program(x, y))  # noqa: E731
    _eager_and_jitted_agree(ft.grad(loss, argnums=(0, 1)), (x, y), jit_backend, f"grad of {ops} at {x}, {y}")
    vjp = lambda cts, x, y: ft.vjp(program, x, y)[1](cts)  # noqa: E731
    _eager_and_jitted_agree(vjp, (cts, x, y), jit_backend, f"vjp of {ops} at {x}, {y} with {cts}")
    jvp = lambda x, y: ft.jvp(lambda x: program(x, y), (x,), (y,))  # noqa: E731
    _eager_and_jitted_agree(jvp, (x, y), jit_backend, f"jvp of {ops} at {x} along {y}")


@given(program_and_ops=scalar_programs(), s=special_floats(), ct=special_floats())
@example(program_and_ops=scalar_program_of(program_of([("log_where_positive", 0, 0)])), s=0.0, ct=1.0)
@example(program_and_ops=scalar_program_of(program_of([("log_where_positive", 0, 0)])), s=-1.0, ct=1.0)
@example(program_and_ops=scalar_program_of(program_of([("signed_zeros", 0, 0)])), s=1e200, ct=1e200)
@example(program_and_ops=scalar_program_of(program_of([("cond", 0, 0)])), s=np.inf, ct=1.0)
def test_eager_and_jitted_derivatives_of_random_scalar_programs_agree(program_and_ops, s, ct, jit_backend):
    """A scalar function of a scalar, whose reverse mode runs forward as its own
    transpose where it may (interpreters/ad.py): grad, grad of grad, vjp and jvp."""
    program, ops = program_and_ops
    s, ct = np.float64(s), np.float64(ct)
    for name, fun, args in (("grad", ft.grad(program), (s,)), ("grad of grad", ft.grad(ft.grad(program)), (s,)),
                            ("vjp", lambda s, ct: ft.vjp(program, s)[1](ct), (s, ct)),
                            ("jvp", lambda s, ct: ft.jvp(program, (s,), (ct,)), (s, ct))):
        _eager_and_jitted_agree(fun, args, jit_backend, f"{name} of {ops} at {s} (cotangent/tangent {ct})")
