"""Properties over random programs: printing, parsing and evaluating agree."""
import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import ftrans as ft
from interpreters.eval import eval_closed_jaxpr
from random_programs import inputs, programs


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
