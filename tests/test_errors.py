"""Errors users see: what they say, where they point, and the traceback they come with.

Lines that an error must point at carry a `# LINE:<name>` marker; `line_of`
finds them, so the tests do not depend on line numbers written by hand.
"""
import collections
import os
import traceback
import uuid

import numpy as np
import pytest

import ftrans as ft
import ftrans.numpy as fnp
import ir
from ftrans import tree_util
from ir.primitive import PRIMITIVES, Primitive

THIS_FILE = os.path.abspath(__file__)
ERRORS_PY = os.path.abspath(ir.errors.__file__)
PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(ir.__file__)))
INTERNAL_DIRS = tuple(os.path.join(PACKAGE_ROOT, name) + os.sep for name in ("ir", "interpreters", "ftrans"))


@pytest.fixture(autouse=True)
def default_traceback_filtering(monkeypatch):
    """These tests describe the default (filtered) tracebacks, whatever the environment says."""
    monkeypatch.delenv("FTRANS_TRACEBACK_FILTERING", raising=False)


def line_of(marker):
    """The line number of the line of this file that ends in `# LINE:<marker>`."""
    with open(THIS_FILE) as source:
        found = [n for n, text in enumerate(source, 1) if text.rstrip().endswith(f"# LINE:{marker}")]
    assert len(found) == 1, f"marker {marker!r} found {len(found)} times"
    return found[0]


def location(marker):
    return f"{os.path.basename(THIS_FILE)}:{line_of(marker)}"


def frames(error):
    return [(os.path.abspath(f.filename), f.lineno, f.name) for f in traceback.extract_tb(error.__traceback__)]


def assert_user_traceback(error, marker):
    """Every frame is this file's or the one api-boundary re-raise in ir/errors.py,
    and the innermost frame that is not ir/errors.py is the user's line."""
    stack = frames(error)
    boundary = [f for f in stack if f[0] == ERRORS_PY]
    assert len(boundary) == 1, stack
    assert boundary[0][2] == "reraise_with_user_frames", stack
    for filename, lineno, name in stack:
        assert filename in (THIS_FILE, ERRORS_PY), f"internal frame {filename}:{lineno} ({name}) in {stack}"
    user = [f for f in stack if f[0] != ERRORS_PY]
    assert user[-1][:2] == (THIS_FILE, line_of(marker)), stack


def headline(error):
    """The message without its `at file:line (source)` part (the source line
    itself, marker comments included, must not satisfy checks on the message)."""
    return str(error).split("\n  at ")[0]


def assert_points_at(error, marker):
    message = str(error)
    assert location(marker) in message, message
    assert THIS_FILE in message or os.path.basename(THIS_FILE) in message


# -------------------- (a) concretization --------------------

def branch_on_value(x):
    if x > 0:  # LINE:if
        return x
    return -x


def test_bool_of_tracer_is_a_concretization_error():
    with pytest.raises(ft.ConcretizationError) as info:
        ft.make_jaxpr(branch_on_value)(1.0)
    error = info.value
    assert isinstance(error, TypeError)
    assert issubclass(ft.ConcretizationError, TypeError)
    message = headline(error)
    assert_points_at(error, "if")
    assert "ft.lax.cond" in message and "static_argnums" in message
    assert_user_traceback(error, "if")


def test_bool_of_tracer_in_a_while_and_in_and_or():
    def loop(x):
        while x < 10:  # LINE:while
            x = x * 2
        return x

    with pytest.raises(ft.ConcretizationError) as info:
        ft.make_jaxpr(loop)(np.float32(1.0))
    assert_points_at(info.value, "while")

    def logic(x, y):
        return x if (x > 0 and y > 0) else y  # LINE:and

    with pytest.raises(ft.ConcretizationError) as info:
        ft.make_jaxpr(logic)(1.0, 2.0)
    assert_points_at(info.value, "and")


def test_float_of_tracer():
    def to_float(x):
        scale = float(x)  # LINE:float
        return x * scale

    with pytest.raises(ft.ConcretizationError) as info:
        ft.make_jaxpr(to_float)(np.ones(()))
    assert isinstance(info.value, TypeError)
    assert_points_at(info.value, "float")
    assert_user_traceback(info.value, "float")


def test_int_of_tracer():
    def to_int(n, x):
        return x * int(n)  # LINE:int

    with pytest.raises(ft.ConcretizationError) as info:
        ft.make_jaxpr(to_int)(np.int64(3), np.ones(2))
    assert isinstance(info.value, TypeError)
    message = headline(info.value)
    assert_points_at(info.value, "int")
    assert "static_argnums" in message
    assert_user_traceback(info.value, "int")


def test_range_of_tracer_and_static_argnums_fix():
    def repeat(x, n):
        for _ in range(n):  # LINE:range
            x = fnp.sin(x)
        return x

    with pytest.raises(ft.ConcretizationError) as info:
        ft.make_jaxpr(repeat)(1.0, 3)
    assert_points_at(info.value, "range")
    closed = ft.make_jaxpr(repeat, static_argnums=1)(1.0, 3)  # the fix the message suggests
    assert [e.primitive.name for e in closed.eqns] == ["sin"] * 3


# -------------------- (b) shape mismatches --------------------

def _add_eager():
    return fnp.add(np.ones(3), np.ones(4))  # LINE:add_eager


def _add_traced():
    return ft.make_jaxpr(lambda x, y: x + y)(np.ones(3), np.ones(4))  # LINE:add_traced


def _matmul_eager():
    return fnp.matmul(np.ones((2, 3)), np.ones((4, 5)))  # LINE:matmul_eager


def _matmul_traced():
    return ft.make_jaxpr(lambda a, b: a @ b)(np.ones((2, 3)), np.ones((4, 5)))  # LINE:matmul_traced


def _concatenate_eager():
    return fnp.concatenate([np.ones((2, 3)), np.ones((2, 5))], axis=0)  # LINE:concatenate_eager


def _concatenate_traced():
    return ft.make_jaxpr(lambda a, b: fnp.concatenate([a, b]))(np.ones((2, 3)), np.ones((2, 5)))  # LINE:concatenate_traced


def _reshape_eager():
    return fnp.reshape(np.ones(6), (4,))  # LINE:reshape_eager


def _reshape_traced():
    return ft.make_jaxpr(lambda x: x.reshape(4))(np.ones(6))  # LINE:reshape_traced


# (trigger, marker, operation names accepted, the shapes, whether it is a broadcasting error)
SHAPE_CASES = {
    "add_eager": (_add_eager, ("add",), ((3,), (4,)), True),
    "add_traced": (_add_traced, ("add",), ((3,), (4,)), True),
    "matmul_eager": (_matmul_eager, ("matmul", "dot"), ((2, 3), (4, 5)), False),
    "matmul_traced": (_matmul_traced, ("matmul", "dot"), ((2, 3), (4, 5)), False),
    "concatenate_eager": (_concatenate_eager, ("concatenate",), ((2, 3), (2, 5)), False),
    "concatenate_traced": (_concatenate_traced, ("concatenate",), ((2, 3), (2, 5)), False),
    "reshape_eager": (_reshape_eager, ("reshape",), ((6,), (4,)), False),
    "reshape_traced": (_reshape_traced, ("reshape",), ((6,), (4,)), False),
}


def _names_shape(message, shape):
    return str(tuple(shape)) in message or f"[{','.join(map(str, shape))}]" in message


@pytest.mark.parametrize("case", sorted(SHAPE_CASES))
def test_shape_mismatch_message(case):
    trigger, ops, shapes, broadcasting = SHAPE_CASES[case]
    with pytest.raises((TypeError, ValueError)) as info:
        trigger()
    message = headline(info.value)
    assert any(op in message for op in ops), message
    for shape in shapes:
        assert _names_shape(message, shape), (shape, message)
    assert_points_at(info.value, case)
    if broadcasting:
        assert isinstance(info.value, TypeError) and isinstance(info.value, ValueError)


@pytest.mark.parametrize("case", [
    *sorted(SHAPE_CASES),
])
def test_shape_mismatch_is_a_type_error(case):
    trigger = SHAPE_CASES[case][0]
    with pytest.raises(TypeError):
        trigger()


@pytest.mark.parametrize("case", ["add_traced", "matmul_traced", "concatenate_eager"])
def test_shape_mismatch_traceback_is_the_users(case):
    with pytest.raises((TypeError, ValueError)) as info:
        SHAPE_CASES[case][0]()
    error = info.value
    stack = frames(error)
    for filename, lineno, name in stack:
        assert filename in (THIS_FILE, ERRORS_PY), f"internal frame {filename}:{lineno} in {stack}"
    assert len([f for f in stack if f[0] == ERRORS_PY]) == 1, stack
    assert [f for f in stack if f[0] != ERRORS_PY][-1][:2] == (THIS_FILE, line_of(case))


def test_matmul_mismatch_names_matmul():
    with pytest.raises(TypeError) as info:
        _matmul_traced()
    assert "matmul" in headline(info.value)


# -------------------- (c) the traceback the user sees --------------------

def _helper_that_adds(a, b):
    return a + b  # LINE:helper


def _user_function(x):
    y = fnp.sin(x)
    return _helper_that_adds(y, np.ones(5))


def test_traceback_through_user_helpers_is_only_user_frames():
    with pytest.raises(TypeError) as info:
        ft.make_jaxpr(_user_function)(np.ones(3))
    assert_user_traceback(info.value, "helper")
    names = [name for _, _, name in frames(info.value)]
    assert "_user_function" in names and "_helper_that_adds" in names


def test_users_own_exception_keeps_their_frames():
    def fails(x):
        raise KeyError("the user's own")  # LINE:users_own

    with pytest.raises(KeyError, match="the user's own") as info:
        ft.make_jaxpr(fails)(1.0)
    assert_user_traceback(info.value, "users_own")


def test_traceback_filtering_off_keeps_internal_frames(monkeypatch):
    monkeypatch.setenv("FTRANS_TRACEBACK_FILTERING", "off")
    with pytest.raises(ft.ConcretizationError) as info:
        ft.make_jaxpr(branch_on_value)(1.0)
    stack = frames(info.value)
    internal = [f for f in stack if f[0].startswith(INTERNAL_DIRS) and f[0] != ERRORS_PY]
    assert internal, stack
    assert any(f[0].startswith(os.path.join(PACKAGE_ROOT, "ftrans")) for f in internal), stack
    assert any(f[0].startswith(os.path.join(PACKAGE_ROOT, "ir")) for f in internal), stack
    assert (THIS_FILE, line_of("if")) in [f[:2] for f in stack]
    # the message still points at the user's line
    assert_points_at(info.value, "if")


def test_traceback_filtering_off_for_eager_errors(monkeypatch):
    monkeypatch.setenv("FTRANS_TRACEBACK_FILTERING", "off")
    with pytest.raises(TypeError) as info:
        _add_eager()
    assert any(f[0].startswith(os.path.join(PACKAGE_ROOT, "ftrans")) for f in frames(info.value))


# -------------------- (d) NumPy meets tracers --------------------

def test_np_asarray_of_tracer():
    def f(x):
        return np.asarray(x)  # LINE:asarray

    with pytest.raises(TypeError) as info:
        ft.make_jaxpr(f)(np.ones(3))
    assert "ftrans.numpy" in headline(info.value)
    assert_points_at(info.value, "asarray")
    assert_user_traceback(info.value, "asarray")


def test_np_array_of_tracer():
    with pytest.raises(TypeError, match="ftrans.numpy"):
        ft.make_jaxpr(lambda x: np.array(x) + 1)(np.ones(3))


def test_ndarray_times_tracer_defers_to_the_tracer():
    seen = []
    w = np.arange(3.0)

    def f(x):
        y = w * x
        seen.append(y)
        return y, x * w, w + x, w @ x

    closed = ft.make_jaxpr(f)(np.ones(3))
    assert isinstance(seen[0], ir.Tracer)
    assert [e.primitive.name for e in closed.eqns] == ["mul", "mul", "add", "dot_general"]
    assert closed.consts[0] is w and len(closed.consts) == 1
    assert closed.eqns[0].invars[1] is closed.jaxpr.invars[0]


def test_numpy_ufunc_on_tracer_stages_the_fnp_function():
    closed = ft.make_jaxpr(lambda x: np.sin(x) + np.exp(x))(np.ones(3))
    assert [e.primitive.name for e in closed.eqns] == ["sin", "exp", "add"]
    closed = ft.make_jaxpr(lambda x: np.multiply(2.0, x))(np.ones(3, np.float32))
    assert [e.primitive.name for e in closed.eqns] == ["mul"]
    assert closed.out_avals[0].dtype == np.float32


def test_numpy_ufunc_method_on_tracer_is_an_error():
    def f(x):
        return np.add.reduce(x)  # LINE:reduce

    with pytest.raises(TypeError) as info:
        ft.make_jaxpr(f)(np.ones(3))
    message = headline(info.value)
    assert "fnp" in message and "add" in message
    assert_points_at(info.value, "reduce")


def test_numpy_ufunc_with_out_on_tracer_is_an_error():
    with pytest.raises(TypeError, match="fnp"):
        ft.make_jaxpr(lambda x: np.sin(x, out=np.empty(3)))(np.ones(3))


# -------------------- (e) leaked tracers --------------------

def _leak():
    leaked = []

    def f(x):
        leaked.append(x)
        return x * 2.0

    ft.make_jaxpr(f)(np.ones(3))
    return leaked[0]


@pytest.mark.parametrize("use", ["eager_operator", "eager_fnp", "inside_other_trace", "as_argument"])
def test_leaked_tracer(use):
    tracer = _leak()
    with pytest.raises(ft.UnexpectedTracerError) as info:
        if use == "eager_operator":
            tracer + 1.0  # LINE:leak_eager_operator
        elif use == "eager_fnp":
            fnp.sin(tracer)  # LINE:leak_eager_fnp
        elif use == "inside_other_trace":
            ft.make_jaxpr(lambda y: y * tracer)(np.ones(3))  # LINE:leak_inside_other_trace
        else:
            ft.make_jaxpr(lambda y: y * 2.0)(tracer)  # LINE:leak_as_argument
    message = headline(info.value)
    assert "escaped" in message
    assert_points_at(info.value, f"leak_{use}")


# -------------------- (f) non-array arguments --------------------

Pair = collections.namedtuple("Pair", ["first", "second"])


class Holder:
    def __init__(self, a, b):
        self.a, self.b = a, b


tree_util.register_pytree_node(Holder, lambda h: ((h.a, h.b), None), lambda _, c: Holder(*c))


@pytest.mark.parametrize("args, static, where", [
    ((1.0, {"w": "a string"}), (), "argument 1['w']"),
    ((1.0, {"b": 2.0, "w": object()}), (), "argument 1['w']"),
    (("text",), (), "argument 0"),
    ((np.ones(2), [1.0, (2.0, None, {"z": "deep"})]), (), "argument 1[1][2]['z']"),
    ((Pair(1.0, "no"),), (), "argument 0.second"),
    ((Holder(1.0, "no"), {"w": 1.0}), (), "argument 0[1]"),  # a registered class
    ((3, {"w": "s"}), (0,), "argument 1['w']"),  # numbered as the caller numbers them
    (("static", 1.0, ["s"]), (0,), "argument 2[0]"),
])
def test_non_array_argument(args, static, where):
    with pytest.raises(TypeError) as info:
        ft.make_jaxpr(lambda *a: 1.0, static_argnums=static)(*args)  # LINE:non_array
    message = headline(info.value)
    assert f"{where} is a" in message, message
    assert "static_argnums" in message
    assert_points_at(info.value, "non_array")


def test_non_array_output():
    with pytest.raises(TypeError, match="output"):
        ft.make_jaxpr(lambda x: (x, "not an array"))(1.0)


# -------------------- (g) a missing rule --------------------

def test_missing_rule_names_the_transformation_and_the_primitive():
    without_jvp = [p for p in PRIMITIVES.values() if p.jvp is None]
    throwaway = None
    if not without_jvp:
        throwaway = Primitive(f"test_no_rules_{uuid.uuid4().hex[:8]}", params={},
                              abstract_eval=lambda x: x, impl=lambda x: x)
        without_jvp = [throwaway]
    try:
        prim = without_jvp[0]
        with pytest.raises(NotImplementedError) as info:
            prim.rule("jvp")
        assert str(info.value) == f"jvp of {prim.name}"
    finally:
        if throwaway is not None:
            PRIMITIVES.pop(throwaway.name, None)


def test_missing_rule_on_a_throwaway_primitive():
    name = f"test_no_rules_{uuid.uuid4().hex[:8]}"
    prim = Primitive(name, params={}, abstract_eval=lambda x: x, impl=lambda x: x)
    try:
        with pytest.raises(NotImplementedError, match=f"^jvp of {name}$"):
            prim.rule("jvp")
        with pytest.raises(NotImplementedError, match=f"^vmap of {name}$"):
            prim.rule("batch")
        with pytest.raises(NotImplementedError, match=f"^transpose of {name}$"):
            prim.rule("transpose")
        rule = lambda primals, tangents: (primals, tangents)
        prim.define(jvp=rule)
        assert prim.rule("jvp") is rule
    finally:
        PRIMITIVES.pop(name, None)


# -------------------- (h) integer overflow of Python literals --------------------

def _overflow_traced():
    return ft.make_jaxpr(lambda i: i + 2**40)(np.arange(3, dtype=np.int32))  # LINE:overflow_traced


def _overflow_eager():
    return fnp.add(np.arange(3, dtype=np.int32), 2**40)  # LINE:overflow_eager


@pytest.mark.parametrize("case", ["overflow_traced", "overflow_eager"])
def test_python_int_too_big_for_int32(case):
    trigger = {"overflow_traced": _overflow_traced, "overflow_eager": _overflow_eager}[case]
    with pytest.raises((OverflowError, TypeError, ValueError)) as info:
        trigger()
    message = headline(info.value)
    assert str(2**40) in message and "int32" in message
    assert_points_at(info.value, case)


def test_python_int_too_big_for_int64():
    with pytest.raises((OverflowError, TypeError, ValueError)) as info:
        ft.make_jaxpr(lambda i: i * 2**70)(np.arange(3))
    assert str(2**70) in str(info.value) and "int64" in str(info.value)


def test_python_int_that_fits_int32_stays_int32():
    closed = ft.make_jaxpr(lambda i: i + (2**31 - 1))(np.arange(3, dtype=np.int32))
    assert closed.out_avals[0].dtype == np.int32
    assert f"{2**31 - 1}:i32[]" in str(closed)


# -------------------- (i) one ftrans frame, whatever the entry point (issue 11, point 19) --------------------

def _mismatched_add(x):
    return x + fnp.ones(4)  # LINE:inside_user_function


def _a_leaked_tracer(value=np.ones(3)):
    leaked = []
    ft.make_jaxpr(lambda x: leaked.append(x) or x)(value)
    return leaked[0]


def _api_grad():
    ft.grad(lambda x: x)(np.ones(3))  # LINE:api_grad


def _api_grad_of_a_user_error():
    ft.grad(lambda x: fnp.sum(_mismatched_add(x)))(np.ones(3))


def _api_grad_at_creation():
    ft.grad(lambda x: x, argnums=1.0)  # LINE:api_grad_at_creation


def _api_value_and_grad():
    ft.value_and_grad(lambda x, y: x, argnums=(0, 0))(1.0, 2.0)  # LINE:api_value_and_grad


def _api_jvp():
    ft.jvp(lambda x: x, (1.0,), (np.ones(2),))  # LINE:api_jvp


def _api_vjp():
    ft.vjp(_mismatched_add, np.ones(3))


def _api_vjp_fn():
    _, vjp_fn = ft.vjp(lambda x: x * 2.0, np.ones(3))
    vjp_fn(np.ones(4))  # LINE:api_vjp_fn


def _api_linearize():
    ft.linearize(_mismatched_add, np.ones(3))


def _api_f_jvp():
    _, f_jvp = ft.linearize(lambda x: x * 2.0, np.ones(3))
    f_jvp(np.ones(3), np.ones(3))  # LINE:api_f_jvp


def _api_jacfwd():
    ft.jacfwd(lambda x: x)(np.arange(3))  # LINE:api_jacfwd


def _api_jacrev():
    ft.jacrev(_mismatched_add)(np.ones(3))


def _api_hessian():
    ft.hessian(lambda x: fnp.sum(_mismatched_add(x)))(np.ones(3))


def _api_vmap():
    ft.vmap(lambda x: x, in_axes=2)(np.ones(3))  # LINE:api_vmap


def _api_jit():
    ft.jit(branch_on_value)(1.0)


def _api_jit_lower():
    ft.jit(lambda x: x).lower("text")  # LINE:api_jit_lower


def _api_make_jaxpr():
    ft.make_jaxpr(_mismatched_add)(np.ones(3))


def _api_leaked_operator():
    _a_leaked_tracer() * 2.0  # LINE:api_leaked_operator


def _api_leaked_method():
    _a_leaked_tracer().sum()  # LINE:api_leaked_method


def _api_leaked_property():
    _a_leaked_tracer(np.ones((2, 3))).T  # LINE:api_leaked_property


def _api_leaked_function():
    fnp.sin(_a_leaked_tracer())  # LINE:api_leaked_function


def _api_fnp_shape():
    fnp.add(np.ones(3), np.ones(4))  # LINE:api_fnp_shape


def _api_nested():
    ft.jit(ft.vmap(ft.grad(lambda x: fnp.sum(_mismatched_add(x)))))(np.ones((2, 3)))


def _api_check_grads():
    ft.check_grads(lambda x: x, (1.0,), order=0)  # LINE:api_check_grads


def _api_tree_map():
    ft.tree_util.tree_map(lambda x: x + "s", [1.0])  # LINE:api_tree_map


def _api_device_put():
    ft.device_put(np.ones(2), device="tpu")  # LINE:api_device_put


def _api_lax_cond():
    ft.lax.cond(True, _mismatched_add, _mismatched_add, np.ones(3))


def _api_lax_scan():
    ft.jit(lambda xs: ft.lax.scan(lambda c, x: (_mismatched_add(c), x), np.ones(3), xs))(np.ones((2, 3)))


def _api_lax_scan_carry():
    ft.lax.scan(lambda c, x: (x, x), 0.0, np.ones((2, 3)))  # LINE:api_lax_scan_carry


def _api_lax_switch():
    ft.grad(lambda x: ft.lax.switch(1, [fnp.sin, lambda x: fnp.sum(_mismatched_add(x))], x))(np.ones(3))


def _api_lax_fori_loop():
    ft.lax.fori_loop(0, 2, lambda i, c: _mismatched_add(c), np.ones(3))


def _api_lax_map():
    ft.vmap(lambda xs: ft.lax.map(_mismatched_add, xs))(np.ones((2, 2, 3)))


def _api_parse_jaxpr():
    ft.parse_jaxpr("{ lambda ; a:f64[]. let b:f64[] = sin[where=False] a in (b,) }")  # LINE:api_parse_jaxpr


def _api_closed_jaxpr_call():
    ft.make_jaxpr(fnp.sin)(1.0)(np.ones(2))  # LINE:api_closed_jaxpr_call


def _api_jaxpr_as_fun():
    ft.jaxpr_as_fun(ft.make_jaxpr(fnp.sin)(1.0))("a")  # LINE:api_jaxpr_as_fun


# each public entry point (or way to reach ftrans) -> (how to make it fail, the marker of the
# innermost user line: the call itself, or the line of the user's function that failed)
PUBLIC_API_ERRORS = {
    "grad": (_api_grad, "api_grad"),
    "grad_of_a_user_error": (_api_grad_of_a_user_error, "inside_user_function"),
    "grad_at_creation": (_api_grad_at_creation, "api_grad_at_creation"),
    "value_and_grad": (_api_value_and_grad, "api_value_and_grad"),
    "jvp": (_api_jvp, "api_jvp"),
    "vjp": (_api_vjp, "inside_user_function"),
    "vjp_fn": (_api_vjp_fn, "api_vjp_fn"),
    "linearize": (_api_linearize, "inside_user_function"),
    "f_jvp": (_api_f_jvp, "api_f_jvp"),
    "jacfwd": (_api_jacfwd, "api_jacfwd"),
    "jacrev": (_api_jacrev, "inside_user_function"),
    "hessian": (_api_hessian, "inside_user_function"),
    "vmap": (_api_vmap, "api_vmap"),
    "jit_concretization": (_api_jit, "if"),
    "jit_lower": (_api_jit_lower, "api_jit_lower"),
    "make_jaxpr": (_api_make_jaxpr, "inside_user_function"),
    "leaked_tracer_operator": (_api_leaked_operator, "api_leaked_operator"),
    "leaked_tracer_method": (_api_leaked_method, "api_leaked_method"),
    "leaked_tracer_property": (_api_leaked_property, "api_leaked_property"),
    "leaked_tracer_function": (_api_leaked_function, "api_leaked_function"),
    "fnp_shape": (_api_fnp_shape, "api_fnp_shape"),
    "jit_of_vmap_of_grad": (_api_nested, "inside_user_function"),
    "check_grads": (_api_check_grads, "api_check_grads"),
    "tree_map": (_api_tree_map, "api_tree_map"),
    "device_put": (_api_device_put, "api_device_put"),
    "lax_cond": (_api_lax_cond, "inside_user_function"),
    "lax_scan": (_api_lax_scan, "inside_user_function"),
    "lax_scan_carry": (_api_lax_scan_carry, "api_lax_scan_carry"),
    "lax_switch": (_api_lax_switch, "inside_user_function"),
    "lax_fori_loop": (_api_lax_fori_loop, "inside_user_function"),
    "lax_map": (_api_lax_map, "inside_user_function"),
    "parse_jaxpr": (_api_parse_jaxpr, "api_parse_jaxpr"),
    "closed_jaxpr_call": (_api_closed_jaxpr_call, "api_closed_jaxpr_call"),
    "jaxpr_as_fun": (_api_jaxpr_as_fun, "api_jaxpr_as_fun"),
}


@pytest.mark.parametrize("case", sorted(PUBLIC_API_ERRORS))
def test_every_public_entry_point_shows_one_ftrans_frame(case):
    trigger, marker = PUBLIC_API_ERRORS[case]
    with pytest.raises(Exception) as info:
        trigger()
    assert_user_traceback(info.value, marker)


def test_unexpected_tracer_error_is_a_type_error():
    assert issubclass(ft.UnexpectedTracerError, TypeError)
    with pytest.raises(TypeError, match="escaped"):
        _a_leaked_tracer() + 1.0
