"""Properties over random programs: printing, parsing and evaluating agree, and so
do jit of the program read back from its text, of its vjp and of its vmap."""
import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import ftrans as ft
from conftest import jit_for
from interpreters.eval import eval_closed_jaxpr
from ir.core import Array
from random_programs import N, inputs, programs


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
