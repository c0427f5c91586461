"""100,000-equation programs: tracing, printing, parsing, checking and evaluating
them takes linear time and no Python recursion per equation.

The recursion limit is left at its default (far below 100,000), so any stage
that recursed once per equation would fail here with a RecursionError. Debug
checks (`ir.config.debug`) are off in this module: they are tested elsewhere
and would only slow these tests down.
"""
import sys

import numpy as np
import pytest

import ftrans as ft
import ftrans.numpy as fnp
import ir
import ir.config
from interpreters.eval import eval_closed_jaxpr
from deadlines import deadline

STEPS = 33_334                 # three equations each: 100,002 equations
NUM_EQNS = 3 * STEPS
DEFAULT_RECURSION_LIMIT = sys.getrecursionlimit()
# Seconds allowed for one linear-time stage on 100,000 equations. The stages
# take 0.3 s (check, eval) to 8 s (parse) here; a quadratic one takes minutes,
# so the deadline stops it early, and a slow CI machine still has a wide margin.
STAGE_DEADLINE = 30.0
PRINT_DEADLINE = 8.0  # printing is ~0.6 s when linear


@pytest.fixture(scope="module", autouse=True)
def debug_off():
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ir.config, "debug", False)
        yield


@pytest.fixture(autouse=True)
def recursion_limit_untouched():
    assert sys.getrecursionlimit() == DEFAULT_RECURSION_LIMIT < NUM_EQNS
    yield
    assert sys.getrecursionlimit() == DEFAULT_RECURSION_LIMIT


def chain(x):
    for _ in range(STEPS):
        x = fnp.sin(x)
        x = x * 1.0001
        x = x + 0.1
    return x


def numpy_chain(x):
    for _ in range(STEPS):
        x = np.sin(x)
        x = x * 1.0001
        x = x + 0.1
    return x


X = np.array([0.3, -1.2, 2.5])


class Traced:
    """The traced chain, with a short repr: test reports print fixture values."""

    def __init__(self, closed):
        self.closed = closed

    def __repr__(self):
        return f"<the traced {len(self.closed.eqns)}-equation chain>"


@pytest.fixture(scope="module")
def traced_chain(debug_off):
    with deadline(STAGE_DEADLINE, f"make_jaxpr of {NUM_EQNS} equations"):
        return Traced(ft.make_jaxpr(chain)(X))


@pytest.fixture(scope="module")
def reference():
    return numpy_chain(X)


def test_trace_check_and_eval_100k_equations(traced_chain, reference):
    closed = traced_chain.closed
    assert len(closed.eqns) == NUM_EQNS
    assert [e.primitive.name for e in closed.eqns[:3]] == ["sin", "mul", "add"]
    assert {e.primitive.name for e in closed.eqns} == {"sin", "mul", "add"}
    with deadline(STAGE_DEADLINE, f"ir.check of {NUM_EQNS} equations"):
        ir.check(closed)
    with deadline(STAGE_DEADLINE, f"eval_closed_jaxpr of {NUM_EQNS} equations"):
        out, = eval_closed_jaxpr(closed, X)
    np.testing.assert_allclose(out, reference, rtol=1e-12)
    # a different input flows through the same jaxpr
    other = np.array([1.0, 0.0, -0.5])
    out, = eval_closed_jaxpr(closed, other)
    np.testing.assert_allclose(out, numpy_chain(other), rtol=1e-12)


def _var_name(index):
    """JAX's naming, written out here independently of ir.printer."""
    letters = "abcdefghijklmnopqrstuvwxyz"
    name = ""
    while True:
        index, digit = divmod(index, 26)
        name = letters[digit] + name
        if index == 0:
            return name


def chain_text():
    """The chain in the printed syntax, written without ir.printer."""
    lines = ["{ lambda ; a:f64[3]. let"]
    names = (_var_name(i) for i in range(NUM_EQNS + 1))
    previous = next(names)
    for _ in range(STEPS):
        s, m, a = next(names), next(names), next(names)
        lines.append(f"    {s}:f64[3] = sin {previous}")
        lines.append(f"    {m}:f64[3] = mul {s} 1.0001:f64[]")
        lines.append(f"    {a}:f64[3] = add {m} 0.1:f64[]")
        previous = a
    lines.append(f"  in ({previous},) }}")
    return "\n".join(lines)


def test_print_and_parse_back_100k_equations(traced_chain, reference):
    from ir.parser import parse
    with deadline(PRINT_DEADLINE, f"printing of {NUM_EQNS} equations"):
        text = str(traced_chain.closed)
    assert text.count("\n") == NUM_EQNS + 1
    with deadline(STAGE_DEADLINE, f"parse of {NUM_EQNS} equations"):
        parsed = Traced(parse(text))
    assert len(parsed.closed.eqns) == NUM_EQNS
    ir.check(parsed.closed)
    out, = eval_closed_jaxpr(parsed.closed, X)
    np.testing.assert_allclose(out, reference, rtol=1e-12)
    with deadline(PRINT_DEADLINE, f"printing of {NUM_EQNS} equations"):
        same = str(parsed.closed) == text
    assert same


def test_5000_deep_pytree_argument():
    depth = 5000
    tree = {"leaf": np.arange(3.0), "scale": 2.0}
    for i in range(depth):
        tree = [tree] if i % 2 else (tree, None)

    def f(t):
        for i in range(depth):
            t = t[0]
        return t["leaf"] * t["scale"]

    closed = ft.make_jaxpr(f)(tree)
    ir.check(closed)
    assert closed.in_avals == [ir.ShapedArray((3,), np.float64), ir.ShapedArray((), np.float64, True)]
    out, = eval_closed_jaxpr(closed, np.arange(3.0), 2.0)
    np.testing.assert_allclose(out, np.arange(3.0) * 2.0)
    # and the error for a bad leaf at the bottom still names its path, with no recursion
    bad = "not an array"
    for _ in range(depth):
        bad = [bad]
    with pytest.raises(TypeError, match=r"argument 0(\[0\]){5000} is a str"):
        ft.make_jaxpr(lambda t: 1.0)(bad)
