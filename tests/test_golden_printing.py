"""The printed jaxprs of the quickstart's seed examples, verbatim (as JAX's api_test does)."""
import importlib.util
import pathlib
import textwrap

import numpy as np
import pytest

import ftrans as ft
import ftrans.numpy as fnp

_spec = importlib.util.spec_from_file_location(
    "quickstart", pathlib.Path(__file__).parent.parent / "examples" / "quickstart.py")
quickstart = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(quickstart)

x3 = np.ones(3)
params = (np.ones((4, 3)), np.ones(4), np.ones((2, 4)), np.ones(2))

GOLDEN = [
    (quickstart.scaled_sum, (np.float64(1.0), np.float64(2.0), np.float64(3.0)), """
        { lambda ; a:f64[] b:f64[] c:f64[]. let
            d:f64[] = add a b
            e:f64[] = mul c d
          in (e,) }
    """),
    (quickstart.shared_subexpression, (x3, x3), """
        { lambda ; a:f64[3] b:f64[3]. let
            c:f64[3] = add a b
            d:f64[3] = add a b
            e:f64[3] = mul a d
            f:f64[3] = add c e
          in (f,) }
    """),
    (quickstart.cubic_minus_log, (x3,), """
        { lambda ; a:f64[3]. let
            b:f64[3] = integer_pow[y=3] a
            c:f64[3] = log a
            d:f64[3] = sub b c
          in (d,) }
    """),
    (quickstart.two_layer_net, (params, x3), """
        { lambda ; a:f64[4,3] b:f64[4] c:f64[2,4] d:f64[2] e:f64[3]. let
            f:f64[4] = dot_general[dimension_numbers=(((1,), (0,)), ((), ()))] a e
            g:f64[4] = add f b
            h:f64[4] = tanh g
            i:f64[2] = dot_general[dimension_numbers=(((1,), (0,)), ((), ()))] c h
            j:f64[2] = add i d
          in (j,) }
    """),
    # the SPEC's own example
    (lambda x: fnp.sum(fnp.sin(x) * 2.0), (x3,), """
        { lambda ; a:f64[3]. let
            b:f64[3] = sin a
            c:f64[3] = mul b 2.0:f64[]
            d:f64[] = reduce_sum[axes=(0,)] c
          in (d,) }
    """),
    # weak types print with the `{weak}` extension; float32 is not upcast by a Python scalar
    (lambda x, s: x * s + 1, (np.ones(2, np.float32), 2.0), """
        { lambda ; a:f32[2] b:f64[]{weak}. let
            c:f32[] = convert_element_type[new_dtype=float32 weak_type=False] b
            d:f32[2] = broadcast_in_dim[broadcast_dimensions=() shape=(2,)] c
            e:f32[2] = mul a d
            f:f32[2] = add e 1.0:f32[]
          in (f,) }
    """),
    # short jaxprs fit on one line, equations separated by `;` (as JAX prints them)
    (lambda x: fnp.exp(x) + 1.0, (x3,), """
        { lambda ; a:f64[3]. let b:f64[3] = exp a; c:f64[3] = add b 1.0:f64[] in (c,) }
    """),
    # constants print by name before `;`
    (lambda x: x * np.arange(3.0), (x3,), """
        { lambda a:f64[3]; b:f64[3]. let c:f64[3] = mul b a in (c,) }
    """),
]


def _strip(text):
    return textwrap.dedent(text).strip()


@pytest.mark.parametrize("fun, args, expected", GOLDEN)
def test_printed_jaxpr_is_exactly_as_expected(fun, args, expected):
    assert str(ft.make_jaxpr(fun)(*args)) == _strip(expected)


def test_variable_names_continue_past_z_as_in_jax():
    def long_chain(x):
        for _ in range(30):
            x = fnp.sin(x)
        return x
    printed = str(ft.make_jaxpr(long_chain)(1.0))
    assert "z:f64[]{weak} = sin y" in printed
    assert "ba:f64[]{weak} = sin z" in printed
    assert "bb:f64[]{weak} = sin ba" in printed


def test_quickstart_runs_and_prints_every_seed_example(capsys):
    quickstart.main()
    out = capsys.readouterr().out
    for title in ("c * (a + b)", "(x + y) + x * (x + y)", "x**3 - log(x)", "V tanh(W x + b) + a"):
        assert f"# {title}" in out
    assert out.count("{ lambda") == 4
