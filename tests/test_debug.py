"""ft.debug.print, ft.debug.callback and ft.pure_callback: they run at run time with concrete
values, inside jit, vmap, grad, scan and cond, appear as equations in the printed IR, survive
the passes, and can never be named by a program read from text."""
from __future__ import annotations

import numpy as np
import pytest

import ftrans as ft
import ftrans.numpy as fnp
from ir.parser import JaxprParseError

X = np.array([1.0, 2.0, 3.0])


def printed(capsys):
    return capsys.readouterr().out.splitlines()


# -------------------- ft.debug.print --------------------

def f_print(x):
    ft.debug.print("x = {x}, total = {}", fnp.sum(x), x=x)
    return fnp.sin(x) * 2.0


def test_print_eagerly(capsys):
    np.testing.assert_allclose(f_print(X), np.sin(X) * 2)
    assert printed(capsys) == ["x = [1. 2. 3.], total = 6.0"]


def test_print_under_jit_runs_each_call_not_at_trace(capsys):
    jitted = ft.jit(f_print)
    jitted(X)
    jitted(X + 1)
    jitted(X)
    assert printed(capsys) == ["x = [1. 2. 3.], total = 6.0", "x = [2. 3. 4.], total = 9.0",
                               "x = [1. 2. 3.], total = 6.0"]


def test_print_under_vmap_once_per_example(capsys):
    xs = np.stack([X, -X])
    np.testing.assert_allclose(ft.vmap(f_print)(xs), np.sin(xs) * 2)
    assert printed(capsys) == ["x = [1. 2. 3.], total = 6.0", "x = [-1. -2. -3.], total = -6.0"]
    ft.jit(ft.vmap(f_print))(xs)
    assert printed(capsys) == ["x = [1. 2. 3.], total = 6.0", "x = [-1. -2. -3.], total = -6.0"]
    ft.vmap(f_print, in_axes=1)(xs.T)
    assert printed(capsys) == ["x = [1. 2. 3.], total = 6.0", "x = [-1. -2. -3.], total = -6.0"]


def test_print_of_an_unbatched_value_beside_a_batched_one(capsys):
    def f(x, y):
        ft.debug.print("{} {}", x, y)
        return x * y
    ft.vmap(f, in_axes=(0, None))(np.array([1.0, 2.0]), 5.0)
    assert printed(capsys) == ["1.0 5.0", "2.0 5.0"]


@pytest.mark.parametrize("how", ["grad", "jit of grad", "grad of jit", "jvp", "vjp", "jacfwd", "hessian"])
def test_print_under_differentiation_sees_primal_values(capsys, how):
    def f(x):
        ft.debug.print("primal {}", x)
        return fnp.sum(x ** 3)
    transformed = {
        "grad": lambda: ft.grad(f)(X), "jit of grad": lambda: ft.jit(ft.grad(f))(X),
        "grad of jit": lambda: ft.grad(ft.jit(f))(X), "jvp": lambda: ft.jvp(f, (X,), (np.ones(3),))[1],
        "vjp": lambda: ft.vjp(f, X)[1](1.0)[0], "jacfwd": lambda: ft.jacfwd(f)(X),
        "hessian": lambda: ft.hessian(f)(X),
    }[how]
    out = transformed()
    expected = {"jvp": np.sum(3 * X ** 2), "hessian": np.diag(6 * X)}.get(how, 3 * X ** 2)
    np.testing.assert_allclose(out, expected)
    lines = printed(capsys)
    assert lines and set(lines) == {"primal [1. 2. 3.]"}


def test_print_inside_scan_and_cond(capsys):
    def body(carry, x):
        ft.debug.print("step {} carry {}", x, carry)
        return carry + x, carry
    ft.jit(lambda xs: ft.lax.scan(body, 0.0, xs))(np.array([1.0, 2.0, 3.0]))
    assert printed(capsys) == ["step 1.0 carry 0.0", "step 2.0 carry 1.0", "step 3.0 carry 3.0"]

    def branchy(p, x):
        return ft.lax.cond(p, lambda v: (ft.debug.print("yes {}", v), v)[1],
                           lambda v: (ft.debug.print("no {}", v), -v)[1], x)
    ft.jit(branchy)(True, 1.0)
    ft.jit(branchy)(False, 2.0)
    assert printed(capsys) == ["yes 1.0", "no 2.0"]


def test_print_appears_in_the_ir_and_survives_the_passes():
    text = str(ft.make_jaxpr(f_print)(X))
    assert "debug_callback[callback=<python print 'x = {x}, total = {}'>]" in text
    def twice(x):
        ft.debug.print("same {}", x)
        ft.debug.print("same {}", x)  # CSE must not merge the two
        return x
    optimized = ft.make_jaxpr(twice, optimize=True)(X)  # DCE must not drop what no output reads
    assert [e.primitive.name for e in optimized.jaxpr.eqns] == ["debug_callback", "debug_callback"]
    lowered = ft.jit(twice).lower(X)
    assert [e.primitive.name for e in lowered.jaxpr.jaxpr.eqns].count("debug_callback") == 2


def test_print_of_non_array_arguments_and_bad_formats(capsys):
    ft.jit(lambda x: (ft.debug.print("{name}: {v} {none}", name="label", v=x, none=None), x)[1])(2.0)
    assert printed(capsys) == ["label: 2.0 None"]
    with pytest.raises(TypeError, match="format must be a str"):
        ft.debug.print(3, 1.0)


# -------------------- ft.debug.callback --------------------

def test_callback_gets_numpy_arrays_at_run_time():
    seen = []

    def f(x, params):
        ft.debug.callback(lambda a, p: seen.append((type(a), a.copy(), p["w"].copy())), x * 2, params)
        return fnp.sum(x * params["w"])
    params = {"w": np.array([1.0, -1.0, 0.5])}
    ft.jit(f)(X, params)
    assert issubclass(seen[0][0], np.ndarray)
    np.testing.assert_array_equal(seen[0][1], 2 * X)
    g = ft.grad(f, argnums=1)(X, params)
    np.testing.assert_array_equal(g["w"], X)
    assert len(seen) == 2
    ft.vmap(f, in_axes=(0, None))(np.stack([X, X + 1]), params)
    assert [s[1].tolist() for s in seen[2:]] == [(2 * X).tolist(), (2 * X + 2).tolist()]
    with pytest.raises(TypeError, match="callable"):
        ft.debug.callback("not a function", X)


def test_callback_under_jet():
    seen = []

    def f(x):
        ft.debug.callback(seen.append, x)
        return fnp.sin(x)
    out, series = ft.jet(f, (0.5,), ([1.0, 0.0],))
    np.testing.assert_allclose(out, np.sin(0.5))
    np.testing.assert_allclose(series[0], np.cos(0.5))
    assert [float(v) for v in seen] == [0.5]


# -------------------- ft.pure_callback --------------------

def host_sin(x):
    return np.sin(x)


def sds(x):
    return ft.ShapeDtypeStruct(np.shape(x), np.result_type(x))


@pytest.mark.parametrize("vmap_method", [None, "sequential", "expand_dims", "broadcast_all"])
def test_pure_callback_eager_jit_and_vmap(vmap_method):
    calls = []

    def host(x, y):
        calls.append(np.shape(x))
        return {"s": np.sin(x) * y, "c": np.cos(x)}

    def f(x, y):
        out = ft.pure_callback(host, {"s": sds(x), "c": sds(x)}, x, y, vmap_method=vmap_method)
        return out["s"] + out["c"]
    expected = np.sin(X) * 2.0 + np.cos(X)
    np.testing.assert_allclose(f(X, 2.0), expected)
    np.testing.assert_allclose(ft.jit(f)(X, 2.0), expected)
    xs, y = np.stack([X, -X, 2 * X]), np.array(2.0)
    loop = np.stack([f(x, y) for x in xs])
    calls.clear()
    np.testing.assert_allclose(ft.vmap(f, in_axes=(0, None))(xs, y), loop)
    assert len(calls) == (3 if vmap_method in (None, "sequential") else 1)
    np.testing.assert_allclose(ft.jit(ft.vmap(f, in_axes=(0, None)))(xs, y), loop)


def test_pure_callback_is_not_differentiable_but_stops_gradients_cleanly():
    f = lambda x: fnp.sum(ft.pure_callback(host_sin, sds(x), x))  # noqa: E731
    with pytest.raises(ValueError, match="cannot be differentiated"):
        ft.grad(f)(X)
    with pytest.raises(ValueError, match="cannot be differentiated"):
        ft.jvp(f, (X,), (np.ones(3),))
    g = ft.grad(lambda x, w: fnp.sum(ft.pure_callback(host_sin, sds(x), ft.lax.stop_gradient(x)) * w), argnums=1)
    np.testing.assert_allclose(g(X, 2.0), np.sum(np.sin(X)))


def test_pure_callback_checks_what_the_function_returns():
    with pytest.raises(TypeError, match=r"returned float64\[2\] as result 0, result_shape_dtypes declares "
                                        r"float64\[3\]"):
        ft.jit(lambda x: ft.pure_callback(lambda v: v[:2], sds(x), x))(X)
    with pytest.raises(TypeError, match="structure"):
        ft.pure_callback(lambda v: (v, v), sds(X), X)
    with pytest.raises(TypeError, match="ShapeDtypeStruct"):
        ft.pure_callback(host_sin, "f64[3]", X)
    with pytest.raises(ValueError, match="vmap_method"):
        ft.pure_callback(host_sin, sds(X), X, vmap_method="legacy")


def test_pure_callback_in_the_printed_ir():
    text = str(ft.make_jaxpr(lambda x: ft.pure_callback(host_sin, sds(x), x) * 2.0)(X))
    assert "pure_callback[" in text and "callback=<python host_sin>" in text and "vmap_method=sequential" in text


# -------------------- untrusted IR --------------------

@pytest.mark.parametrize("fun", [f_print, lambda x: ft.pure_callback(host_sin, sds(x), x)])
def test_a_parsed_program_can_never_run_a_callback(fun):
    text = str(ft.make_jaxpr(fun)(X))
    with pytest.raises(JaxprParseError, match="calls a Python function"):
        ft.parse_jaxpr(text)


@pytest.mark.parametrize("text", [
    "{ lambda ; a:f64[3]. let\n     = debug_callback[callback=print] a\n  in (a,) }",
    "{ lambda ; a:f64[3]. let\n    b:f64[3] = pure_callback[callback=os.system result_avals=(((3,), float64),) "
    "vmap_method=sequential] a\n  in (b,) }",
    "{ lambda ; a:f64[3]. let\n     = debug_callback a\n  in (a,) }",
])
def test_hand_written_callbacks_are_refused(text):
    with pytest.raises(JaxprParseError, match="host callbacks do not parse"):
        ft.parse_jaxpr(text)


def test_export_refuses_a_program_with_a_callback(tmp_path):
    with pytest.raises(ft.ExportError, match="cannot be exported"):
        ft.export(f_print, X, path=str(tmp_path / "program"))


def _breakpointed(x):
    y = fnp.sin(x) * 2
    scale = 3
    ft.debug.breakpoint()
    return y * scale


@pytest.mark.parametrize("wrap", ["eager", "jit", "grad", "vmap"])
def test_breakpoint_shows_run_time_values_and_continues(wrap, monkeypatch, capsys):
    import io
    monkeypatch.setattr("sys.stdin", io.StringIO("p y\nscale + 1\nw\nnot_a_name\nc\n" * 2))
    x = np.array([0.5, 1.5])
    if wrap == "grad":
        out = ft.grad(lambda v: fnp.sum(_breakpointed(v)))(x)
        np.testing.assert_allclose(out, 6 * np.cos(x))
    elif wrap == "vmap":
        np.testing.assert_allclose(ft.vmap(_breakpointed)(x), 6 * np.sin(x))
    else:
        f = ft.jit(_breakpointed) if wrap == "jit" else _breakpointed
        np.testing.assert_allclose(f(x), 6 * np.sin(x))
    shown = capsys.readouterr().out
    assert "Entering ftrans debugger at" in shown and "_breakpointed()" in shown
    first = "array([0.95885108" if wrap != "vmap" else "array(0.95885108"
    assert first in shown and "(fdb) 4" in shown and "NameError" in shown


def test_breakpoint_quit_stops_the_program(monkeypatch):
    import io
    monkeypatch.setattr("sys.stdin", io.StringIO("q\n"))
    with pytest.raises(ft.debug.BreakpointQuit, match="_breakpointed"):
        ft.jit(_breakpointed)(np.ones(2))
    with pytest.raises(ValueError, match="cli"):
        ft.debug.breakpoint(backend="web")
