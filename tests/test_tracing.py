"""make_jaxpr: pytree arguments, static arguments, closures and nesting,
omnistaging, weak types, trace-then-evaluate == eager, and ir.check."""
import collections
import contextlib
import gc
import re
import sys
import threading
import weakref

import numpy as np
import pytest

import ftrans as ft
import ftrans.numpy as fnp
import ir
from ftrans.tree_util import tree_leaves
from interpreters.eval import eval_closed_jaxpr
from ir.core import ClosedJaxpr, Eqn, Jaxpr, Literal, ShapedArray, Var
from ir.primitives import elementwise as E
from ir.primitives import reductions as R

Params = collections.namedtuple("Params", ["w", "b"])


def f64(*shape, weak=False):
    return ShapedArray(shape, np.float64, weak)


def traced(fun, *args, **kwargs):
    """make_jaxpr, plus the checks every traced jaxpr must pass."""
    closed = ft.make_jaxpr(fun, **kwargs)(*args)
    assert isinstance(closed, ClosedJaxpr)
    ir.check(closed)
    return closed


def assert_same_values(got, want):
    got, want = tree_leaves(got), tree_leaves(want)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        g, w = np.asarray(g), np.asarray(w)
        assert g.shape == w.shape and g.dtype == w.dtype, (g, w)
        np.testing.assert_allclose(g, w, rtol=1e-13, atol=0)


# -------------------- pytree arguments --------------------

def test_dict_tuple_none_and_namedtuple_arguments():
    def f(params, pair, nothing, p):
        assert nothing is None
        return {"y": params["w"] * pair[0] + params["b"], "z": (p.w @ p.b, pair[1])}

    params = {"w": np.arange(3.0), "b": 1.5}          # dict: leaves in sorted key order (b, w)
    pair = (np.ones(3), np.float32(2.0))
    p = Params(np.ones((2, 3)), np.arange(3.0))
    closed = traced(f, params, pair, None, p)
    assert closed.in_avals == [f64(weak=True), f64(3), f64(3), ShapedArray((), np.float32),
                               f64(2, 3), f64(3)]
    assert [a.shape for a in closed.out_avals] == [(3,), (2,), ()]  # y, z[0], z[1]
    leaves = [1.5, np.arange(3.0), np.ones(3), np.float32(2.0), np.ones((2, 3)), np.arange(3.0)]
    out = eval_closed_jaxpr(closed, *leaves)
    expected = f(params, pair, None, p)
    assert_same_values(out, [expected["y"], *expected["z"]])
    np.testing.assert_allclose(out[0], np.arange(3.0) * 1.0 + 1.5)  # NumPy's own answer


def test_dict_argument_insertion_order_does_not_matter():
    f = lambda d: d["a"] - d["b"]
    one = traced(f, {"a": np.ones(2), "b": np.zeros(3)[:1]})
    two = traced(f, {"b": np.zeros(3)[:1], "a": np.ones(2)})
    assert str(one) == str(two)
    assert one.in_avals == [f64(2), f64(1)]


def test_none_leaves_and_empty_containers_have_no_invars():
    closed = traced(lambda a, b, c: (a[0] * 2.0, b, c), (np.ones(2), None), [], {})
    assert closed.in_avals == [f64(2)]
    assert len(closed.out_avals) == 1


def test_namedtuple_output_is_flattened():
    closed = traced(lambda x: Params(w=fnp.sin(x), b=x), np.ones(2))
    assert [e.primitive.name for e in closed.eqns] == ["sin"]
    assert closed.jaxpr.outvars[1] is closed.jaxpr.invars[0]


def test_python_scalar_arguments_are_weak():
    closed = traced(lambda a, b, c: (a, b, c), 1.0, 2, True)
    assert closed.in_avals == [f64(weak=True), ShapedArray((), np.int64, True),
                               ShapedArray((), np.bool_, True)]
    assert str(closed).startswith("{ lambda ; a:f64[]{weak} b:i64[]{weak} c:bool[]{weak}.")


def test_numpy_scalars_and_arrays_are_strong():
    closed = traced(lambda a, b: (a, b), np.float32(1.0), np.arange(3, dtype=np.int32))
    assert closed.in_avals == [ShapedArray((), np.float32), ShapedArray((3,), np.int32)]
    assert "{weak}" not in str(closed)


# -------------------- static_argnums --------------------

def test_static_argnums_are_python_values():
    def f(x, n, scale):
        assert isinstance(n, int) and n == 3
        for _ in range(n):  # Python control flow on the static value
            x = fnp.sin(x)
        return x * scale

    closed = traced(f, np.ones(2), 3, 2.0, static_argnums=(1,))
    names = [e.primitive.name for e in closed.eqns]
    assert names[:3] == ["sin", "sin", "sin"] and names.count("sin") == 3 and names[-1] == "mul"
    assert len(closed.jaxpr.invars) == 2
    out, = eval_closed_jaxpr(closed, np.full(2, 0.5), 2.0)
    np.testing.assert_allclose(out, np.sin(np.sin(np.sin(np.full(2, 0.5)))) * 2.0)


@pytest.mark.parametrize("static", [-1, (-1,), (2,), (-1, 2)])
def test_negative_static_argnums(static):
    def f(x, y, mode):
        assert mode == "double"
        return x * 2.0 + y

    closed = traced(f, np.ones(3), np.ones(3), "double", static_argnums=static)
    assert closed.in_avals == [f64(3), f64(3)]


def test_static_argnum_controls_branch_and_becomes_literal():
    def f(x, flag, k):
        return x * k if flag else x - k

    mul = traced(f, np.ones(2), True, 4.0, static_argnums=(-2, 2))
    sub = traced(f, np.ones(2), False, 4.0, static_argnums=(1, -1))
    assert [e.primitive.name for e in mul.eqns] == ["mul"]
    assert [e.primitive.name for e in sub.eqns] == ["sub"]
    literal = mul.eqns[0].invars[1]
    assert isinstance(literal, Literal) and literal.value == 4.0 and "4.0:f64[]" in str(mul)
    assert len(mul.jaxpr.invars) == 1


@pytest.mark.parametrize("static", [3, -4, (0, 5)])
def test_static_argnums_out_of_range(static):
    with pytest.raises(ValueError, match="static_argnums"):
        ft.make_jaxpr(lambda a, b, c: a, static_argnums=static)(1.0, 2.0, 3.0)


# -------------------- closures and nesting --------------------

def test_closed_over_arrays_become_constvars_and_scalars_literals():
    table = np.arange(3.0)
    half = np.float32(0.5)

    def f(x):
        # `table` used twice: one constvar; (`table * half` would be NumPy's, computed at once)
        return x * table + 3.0 + fnp.multiply(table, half) + np.array(7.0)

    closed = traced(f, np.ones(3))
    assert len(closed.jaxpr.constvars) == 1
    assert closed.consts[0] is table
    assert closed.jaxpr.constvars[0].aval == f64(3)
    text = str(closed)
    assert text.startswith("{ lambda a:f64[3]; b:f64[3]. let")
    literals = [x for e in closed.eqns for x in e.invars if isinstance(x, Literal)]
    assert sorted(float(lit.value) for lit in literals) == [0.5, 3.0, 7.0]
    assert "3.0:f64[]" in text and "7.0:f64[]" in text and "0.5:f" in text
    out, = eval_closed_jaxpr(closed, np.full(3, 2.0))
    np.testing.assert_allclose(out, np.full(3, 2.0) * table + 3.0 + table * np.float32(0.5) + 7.0)


def test_closed_over_array_is_referenced_not_copied_into_the_text():
    big = np.linspace(0.0, 1.0, 1000)
    closed = traced(lambda x: x + big, np.ones(1000))
    assert closed.consts[0] is big
    assert len(str(closed)) < 200  # the constant prints by name, not by value


def test_nested_make_jaxpr_closing_over_an_outer_tracer():
    inner_jaxprs = []

    def outer(x):
        inner = ft.make_jaxpr(lambda y: fnp.sin(x) * y)(2.0)
        ir.check(inner)
        inner_jaxprs.append(inner)
        return x * 2.0

    outer_closed = traced(outer, np.ones(3))
    inner, = inner_jaxprs
    # the outer value is a constvar of the inner jaxpr, bound to the outer tracer
    assert len(inner.jaxpr.constvars) == 1 and len(inner.consts) == 1
    assert isinstance(inner.consts[0], ir.Tracer)
    assert inner.consts[0].aval == f64(3)
    text = str(inner)
    assert re.match(r"\{ lambda (\w+):f64\[3\]; (\w+):f64\[\]\{weak\}\. let", text), text
    const_name, arg_name = re.match(r"\{ lambda (\w+):f64\[3\]; (\w+):", text).groups()
    assert re.search(rf"(\w+):f64\[3\] = sin {const_name}\b", text), text
    assert arg_name in text.split(" let", 1)[1]
    # the outer jaxpr is unaffected: only its own multiplication
    assert [e.primitive.name for e in outer_closed.eqns] == ["mul"]


def test_nested_make_jaxpr_with_the_outer_tracer_as_argument():
    seen = []

    def outer(x):
        seen.append(ft.make_jaxpr(lambda y: y + 1.0)(x))
        return x

    traced(outer, np.ones((2, 2), np.float32))
    inner, = seen
    assert inner.in_avals == [ShapedArray((2, 2), np.float32)] and not inner.jaxpr.constvars


# -------------------- omnistaging --------------------

def test_creation_inside_make_jaxpr_is_staged():
    def f(x):
        return fnp.zeros((2, 3)) + fnp.ones(3) * x + fnp.arange(3.0)

    closed = traced(f, 1.5)
    assert not closed.jaxpr.constvars  # nothing baked in as a constant array
    assert len(closed.eqns) >= 3
    zeros_eqn = closed.eqns[0]
    assert zeros_eqn.outvars[0].aval.shape == (2, 3)
    assert all(isinstance(x, Literal) for x in zeros_eqn.invars)
    out, = eval_closed_jaxpr(closed, 1.5)
    np.testing.assert_allclose(out, np.zeros((2, 3)) + np.ones(3) * 1.5 + np.arange(3.0))


def test_operations_on_constants_only_are_staged():
    closed = traced(lambda x: (fnp.sin(np.ones(2)), x), 1.0)
    assert [e.primitive.name for e in closed.eqns] == ["sin"]
    assert len(closed.jaxpr.constvars) == 1


# -------------------- weak types --------------------

def test_python_scalars_are_weak_in_the_print():
    text = str(traced(lambda x: x * 2.0 + 1, 3.0))
    assert "2.0:f64[]{weak}" in text
    assert "1.0:f64[]{weak}" in text or "1:" in text
    assert text.count("{weak}") >= 4  # the argument, two literals, the results


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_python_scalars_do_not_upcast_small_floats(dtype):
    def f(x):
        return (x * 2.0 + 1) / 3 - 0.5, fnp.maximum(x, 0.0), x ** 2

    closed = traced(f, np.ones(4, dtype))
    assert all(a.dtype == dtype and not a.weak_type for a in closed.out_avals)
    short = {np.float32: "f32", np.float16: "f16"}[dtype]
    assert "f64" not in str(closed) and f"2.0:{short}[]" in str(closed)
    x = np.linspace(-1, 1, 4).astype(dtype)
    got = eval_closed_jaxpr(closed, x)
    assert [g.dtype for g in got] == [np.dtype(dtype)] * 3
    want = f(x)  # NumPy 2 gives the same dtypes (NEP 50)
    for g, w in zip(got, want):
        assert np.asarray(w).dtype == dtype
        np.testing.assert_allclose(g, w, rtol=1e-3)


def test_int32_stays_int32_with_python_int_and_promotes_with_python_float():
    closed = traced(lambda i: (i + 1, i * 2.5), np.arange(3, dtype=np.int32))
    assert [a.dtype for a in closed.out_avals] == [np.dtype(np.int32), np.dtype(np.float64)]
    want = (np.arange(3, dtype=np.int32) + 1, np.arange(3, dtype=np.int32) * 2.5)
    assert [w.dtype for w in want] == [a.dtype for a in closed.out_avals]  # NumPy agrees


def test_strong_numpy_scalar_does_upcast():
    closed = traced(lambda x: x * np.float64(2.0), np.ones(2, np.float32))
    assert closed.out_avals[0].dtype == np.float64
    assert (np.ones(2, np.float32) * np.float64(2.0)).dtype == np.float64


def test_weak_results_of_weak_inputs():
    closed = traced(lambda a, b: a * b + 1.0, 2.0, 3.0)
    assert closed.out_avals == [f64(weak=True)]
    closed = traced(lambda a, b: a * b, 2.0, np.float64(3.0))
    assert closed.out_avals == [f64()]


# -------------------- traced, then evaluated == eager --------------------

def _mlp(params, x):
    for w, b in params:
        x = fnp.tanh(x @ w + b)
    return fnp.sum(x ** 2) / x.size


def _softmax_entropy(x):
    z = x - fnp.max(x, axis=-1, keepdims=True)
    p = fnp.exp(z) / fnp.sum(fnp.exp(z), axis=-1, keepdims=True)
    return -fnp.sum(p * fnp.log(p), axis=-1)


def _piecewise(x, y):
    return fnp.where(x > y, fnp.sqrt(fnp.abs(x)), fnp.cos(y) * 3) + x[::2].mean() - y.T[0]


def _ints(i, j):
    return (i * j + 3) // 2 % 5, fnp.maximum(i, j) - fnp.minimum(i, 1), i.sum(axis=0)


rng = np.random.default_rng(0)
EAGER_CASES = {
    "mlp": (_mlp, ([(rng.normal(size=(4, 8)), rng.normal(size=8)), (rng.normal(size=(8, 2)), np.zeros(2))],
                   rng.normal(size=(5, 4)))),
    "softmax_entropy": (_softmax_entropy, (rng.normal(size=(3, 7)),)),
    "piecewise": (_piecewise, (rng.normal(size=(4, 4)), rng.normal(size=(4, 4)))),
    "ints": (_ints, (rng.integers(-9, 9, size=(3, 4)), rng.integers(1, 9, size=(3, 4)).astype(np.int64))),
    "float32": (lambda x: fnp.exp(x * 0.5) - fnp.log1p(x * x), (rng.normal(size=6).astype(np.float32),)),
    "reshape_concat": (lambda x: fnp.concatenate([x.reshape(2, 3), x.reshape(2, 3)[:, ::-1]], axis=0).T @ x[:4],
                       (np.arange(6.0),)),
}


@pytest.mark.parametrize("name", sorted(EAGER_CASES))
def test_traced_then_evaluated_equals_eager(name):
    fun, args = EAGER_CASES[name]
    closed = traced(fun, *args)
    got = eval_closed_jaxpr(closed, *tree_leaves(args))
    assert_same_values(got, fun(*args))


def test_eager_matches_numpy_reference():
    params, x = EAGER_CASES["mlp"][1]
    h = x
    for w, b in params:
        h = np.tanh(h @ w + b)
    closed = traced(_mlp, params, x)
    got, = eval_closed_jaxpr(closed, *tree_leaves((params, x)))
    np.testing.assert_allclose(got, np.sum(h ** 2) / h.size, rtol=1e-12)
    x = EAGER_CASES["softmax_entropy"][1][0]
    p = np.exp(x) / np.exp(x).sum(-1, keepdims=True)
    got, = eval_closed_jaxpr(traced(_softmax_entropy, x), x)
    np.testing.assert_allclose(got, -(p * np.log(p)).sum(-1), rtol=1e-12)


def test_evaluating_at_other_values_reuses_the_jaxpr():
    closed = traced(lambda x: fnp.sin(x) * 2.0, np.zeros(3))
    for values in (np.arange(3.0), np.full(3, -1.25)):
        got, = eval_closed_jaxpr(closed, values)
        np.testing.assert_allclose(got, np.sin(values) * 2.0)


def test_tracer_attributes_under_make_jaxpr():
    def f(x):
        assert x.shape == (2, 3) and x.ndim == 2 and x.dtype == np.float32 and x.size == 6
        assert len(x) == 2
        assert isinstance(x, ir.Tracer)
        return x.T.sum(axis=0), x.mean()

    closed = traced(f, np.ones((2, 3), np.float32))
    assert [a.shape for a in closed.out_avals] == [(2,), ()]


# -------------------- ir.check --------------------

def _jaxpr(invars, eqns, outvars, constvars=()):
    return Jaxpr(list(constvars), invars, eqns, outvars)


def test_check_accepts_a_hand_built_jaxpr():
    a, b, c = Var(f64(3)), Var(f64(3)), Var(f64())
    jaxpr = _jaxpr([a], [Eqn(E.sin_p, [a], [b], {}),
                         Eqn(R.reduce_sum_p, [b], [c], {"axes": (0,)})], [c, Literal(np.float64(1.0), f64())])
    ir.check(jaxpr)
    ir.check(ClosedJaxpr(jaxpr, []))


def test_check_rejects_a_wrong_output_aval():
    a, b = Var(f64(3)), Var(ShapedArray((3,), np.float32))
    with pytest.raises(ir.JaxprTypeError, match="declared f32\\[3\\]"):
        ir.check(_jaxpr([a], [Eqn(E.sin_p, [a], [b], {})], [b]))
    a, b = Var(f64(3)), Var(f64())
    with pytest.raises(ir.JaxprTypeError, match="reduce_sum"):
        ir.check(_jaxpr([a], [Eqn(R.reduce_sum_p, [a], [b], {"axes": ()})], [b]))
    a, b = Var(f64(3)), Var(f64(3, weak=True))
    with pytest.raises(ir.JaxprTypeError):
        ir.check(_jaxpr([a], [Eqn(E.cos_p, [a], [b], {})], [b]))


def test_check_rejects_ill_typed_operands():
    a, b, c = Var(f64(3)), Var(ShapedArray((3,), np.float32)), Var(f64(3))
    with pytest.raises(ir.JaxprTypeError, match="add"):
        ir.check(_jaxpr([a, b], [Eqn(E.add_p, [a, b], [c], {})], [c]))


def test_check_rejects_use_before_definition():
    a, b, c = Var(f64(3)), Var(f64(3)), Var(f64(3))
    eqns = [Eqn(E.mul_p, [a, c], [b], {}), Eqn(E.sin_p, [a], [c], {})]
    with pytest.raises(ir.JaxprTypeError, match="before it is defined"):
        ir.check(_jaxpr([a], eqns, [b]))
    with pytest.raises(ir.JaxprTypeError, match="before it is defined"):
        ir.check(_jaxpr([a], [], [Var(f64(3))]))  # an output nobody defines


def test_check_rejects_a_variable_bound_twice():
    a, b = Var(f64(3)), Var(f64(3))
    with pytest.raises(ir.JaxprTypeError, match="bound twice"):
        ir.check(_jaxpr([a], [Eqn(E.sin_p, [a], [a], {})], [a]))
    with pytest.raises(ir.JaxprTypeError, match="bound twice"):
        ir.check(_jaxpr([a], [Eqn(E.sin_p, [a], [b], {}), Eqn(E.cos_p, [a], [b], {})], [b]))
    with pytest.raises(ir.JaxprTypeError, match="bound twice"):
        ir.check(_jaxpr([a, a], [], [a]))
    with pytest.raises(ir.JaxprTypeError, match="bound twice"):
        ir.check(_jaxpr([a], [], [a], constvars=[a]))


def test_check_rejects_a_literal_that_is_not_a_scalar():
    a, b = Var(f64(3)), Var(f64(3))
    literal = Literal(np.ones(3), f64(3))
    with pytest.raises(ir.JaxprTypeError, match="literal"):
        ir.check(_jaxpr([a], [Eqn(E.mul_p, [a, literal], [b], {})], [b]))
    wrong_dtype = Literal(np.float32(2.0), f64())  # value's dtype is not the literal's
    with pytest.raises(ir.JaxprTypeError, match="literal"):
        ir.check(_jaxpr([a], [Eqn(E.mul_p, [a, wrong_dtype], [b], {})], [b]))


def test_check_rejects_a_broken_traced_jaxpr():
    closed = traced(lambda x: fnp.sin(x) * 2.0 + x, np.ones(3))
    jaxpr = closed.jaxpr
    ir.check(jaxpr)
    # swap two equations: the second now uses a value before it is defined
    broken = Jaxpr(jaxpr.constvars, jaxpr.invars, [jaxpr.eqns[1], jaxpr.eqns[0], *jaxpr.eqns[2:]],
                   jaxpr.outvars)
    with pytest.raises(ir.JaxprTypeError, match="before it is defined"):
        ir.check(broken)
    ir.check(jaxpr)  # the original is untouched


# -------------------- interning of avals --------------------

@contextlib.contextmanager
def _frequent_thread_switches():
    """Threads switch every microsecond (not every 5 ms): a race window of a few
    bytecodes is then hit within a few hundred tries."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(interval)


def _in_threads(work, count=8):
    """`work(i)` in `count` threads released at once; their results, in order."""
    barrier = threading.Barrier(count)
    results, errors = [None] * count, []

    def run(i):
        barrier.wait()
        try:
            results[i] = work(i)
        except Exception as error:  # noqa: BLE001  (reported below, with its thread)
            errors.append((i, error))
    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    return results


def test_interning_makes_one_object_per_type_across_threads():
    fresh = [(4001, 3, k) for k in range(3000)]  # shapes no other test makes
    with _frequent_thread_switches():
        made = _in_threads(lambda i: [ShapedArray(shape, np.float32) for shape in fresh])
    for avals in made[1:]:
        assert all(a is b for a, b in zip(made[0], avals, strict=True))
    assert all(ShapedArray(shape, np.float32) is a for shape, a in zip(fresh, made[0], strict=True))


def test_threads_parsing_at_once_see_no_spurious_type_errors():
    texts = [f"{{ lambda ; a:f32[{3894 + k},1]. let b:f32[{3894 + k},1] = sin a in (b,) }}" for k in range(300)]
    with _frequent_thread_switches():
        parsed = _in_threads(lambda i: [ir.parse(text) for text in texts])
    for closeds in parsed:
        assert [str(c) for c in closeds] == texts


def test_an_aval_nobody_holds_is_not_kept():
    from ir import core
    aval = ShapedArray((4002, 7, 1), np.int8, weak_type=True)
    key, ref = (aval.shape, aval.dtype, True), weakref.ref(aval)
    assert key in core._INTERNED and core._RECENT[key] is aval
    del aval
    core._RECENT.clear()  # what the bounded table of recent avals does past _MAX_RECENT of them
    gc.collect()
    assert ref() is None and key not in core._INTERNED
    again = ShapedArray((4002, 7, 1), np.int8, weak_type=True)  # made again: still one object per type
    assert again is ShapedArray([4002, 7, 1], "int8", True) and key in core._INTERNED


def test_the_intern_table_keeps_a_bounded_number_of_unheld_avals():
    from ir import core
    gc.collect()
    before = len(core._INTERNED)
    held = [ShapedArray((4003, k), np.float32) for k in range(100)]
    for k in range(3 * core._MAX_RECENT):
        ShapedArray((4004, k), np.float32)
    gc.collect()
    assert len(core._INTERNED) <= before + len(held) + core._MAX_RECENT
    assert all(ShapedArray((4003, k), np.float32) is a for k, a in enumerate(held))


def test_the_avals_of_arrays_are_a_bounded_cache():
    from ir import core
    for n in range(core._MAX_ARRAY_AVALS + 100):
        core.concrete_aval(np.empty((0, n)))
    assert len(core._ARRAY_AVALS) <= core._MAX_ARRAY_AVALS
    assert ir.get_aval(np.ones((2, 3))) is ShapedArray((2, 3), np.float64)
