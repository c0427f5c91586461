"""jit: equal to eager, cached per signature, nested in every transformation.

The tests that compare values take the `jit_backend` fixture (tests/conftest.py):
they run on NumPy, and with backend="cupy" where there is a GPU. Cache counts,
generated text, errors and NumPy memory sharing are the NumPy backend's own."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import ftrans as ft
import ftrans.numpy as fnp
from conftest import jit_for
from ir.core import Array
from random_programs import inputs, programs


@given(program_and_ops=programs(), data=st.data())
def test_jit_equals_eager_on_random_programs(program_and_ops, data, jit_backend):
    program, ops = program_and_ops
    x, y = inputs(data.draw)
    for got, want in zip(jit_for(program, jit_backend)(x, y), program(x, y), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12, err_msg=str(ops))
        assert type(got) is Array and got.dtype == np.asarray(want).dtype


def test_cache_hits_and_misses():
    calls = []

    def f(x, scale):
        calls.append(1)  # runs only when jit traces
        return fnp.sin(x) * scale

    jf = ft.jit(f, static_argnums=1)
    x = np.ones(3)
    jf(x, 2.0)
    jf(x + 1, 2.0)
    assert len(calls) == 1
    jf(x, 3.0)  # a new static value
    jf(np.ones(4), 2.0)  # a new shape
    jf(np.ones(3, np.float32), 2.0)  # a new dtype
    jf(np.ones(3), 2.0)
    assert len(calls) == 4 and jf.trace_count == 4
    np.testing.assert_allclose(jf(x, 3.0), np.sin(x) * 3.0)


def test_weak_types_are_part_of_the_key():
    calls = []
    jf = ft.jit(lambda x, y: calls.append(1) or x * y)
    assert jf(np.float32(2.0), 3.0).dtype == np.float32  # a Python float is weak
    assert jf(np.float32(2.0), np.float64(3.0)).dtype == np.float64
    assert len(calls) == 2


def test_unhashable_static_argument_is_a_type_error():
    with pytest.raises(TypeError, match="hashable"):
        ft.jit(lambda x, opts: x, static_argnums=1)(1.0, {"a": 1})


def test_usable_as_a_decorator_with_static_argnames():
    @ft.jit
    def double(x):
        return 2 * x

    @ft.jit(static_argnames=("n",))
    def power(x, n):
        return x ** n

    np.testing.assert_allclose(double(np.arange(3.0)), [0, 2, 4])
    np.testing.assert_allclose(power(np.arange(3.0), n=3), [0, 1, 8])


def test_static_arguments_on_every_backend(jit_backend):
    power = jit_for(lambda x, n: x ** n, jit_backend, static_argnames=("n",))
    scale = jit_for(lambda x, s: fnp.sin(x) * s, jit_backend, static_argnums=1)
    x = np.arange(3.0)
    for n in (3, -2, 0.5):
        np.testing.assert_allclose(power(x + 1.0, n=n), (x + 1.0) ** n, rtol=1e-12)
    np.testing.assert_allclose(scale(x, 2.5), np.sin(x) * 2.5, rtol=1e-12)


def test_closed_over_arrays_are_copied_when_traced(jit_backend):
    w = np.ones(3)
    jf = jit_for(lambda x: x * w, jit_backend)
    np.testing.assert_allclose(jf(np.ones(3)), 1.0)
    w[:] = 5.0
    np.testing.assert_allclose(jf(np.ones(3)), 1.0)


def test_lower_shows_the_optimized_jaxpr_and_generated_code():
    lowered = ft.jit(lambda x: fnp.sin(x) * 1.0 + fnp.sin(x)).lower(np.ones(2))
    names = [eqn.primitive.name for eqn in lowered.jaxpr.eqns]
    assert names == ["sin", "add"]  # x*1 simplified, sin(x) computed once
    text = lowered.as_text()
    assert "numpy.sin(a)" in text and text.count("\n") == 4


def test_outputs_are_fresh_and_inputs_untouched():
    x = np.arange(6.0).reshape(2, 3)
    before = x.copy()
    same, transposed, doubled, again = ft.jit(lambda x: (x, x.T, x * 2, x))(x)
    for out in (same, transposed, again):
        assert not np.shares_memory(out, x)
    assert not np.shares_memory(same, again)
    doubled[...] = 0
    np.testing.assert_array_equal(x, before)
    assert type(ft.jit(lambda x: fnp.sum(x))(x)) is Array


def test_nesting_in_every_transformation(jit_backend):
    jit = lambda f: jit_for(f, jit_backend)  # noqa: E731  (the outermost jit: jits inside a trace are calls)
    f = lambda x: fnp.sum(fnp.sin(x) * x)  # noqa: E731
    x = np.linspace(0.1, 1.0, 4)
    want = ft.grad(f)(x)
    np.testing.assert_allclose(ft.grad(ft.jit(f))(x), want, rtol=1e-13)
    np.testing.assert_allclose(jit(ft.grad(f))(x), want, rtol=1e-13)
    batch = np.stack([x, 2 * x])
    np.testing.assert_allclose(ft.vmap(ft.jit(f))(batch), [f(x), f(2 * x)], rtol=1e-13)
    np.testing.assert_allclose(jit(ft.vmap(ft.grad(f)))(batch), [want, ft.grad(f)(2 * x)], rtol=1e-13)
    np.testing.assert_allclose(jit(ft.jit(f))(x), f(x), rtol=1e-13)
    np.testing.assert_allclose(jit(lambda x: ft.grad(ft.jit(f))(x))(x), want, rtol=1e-13)


# each wraps a jitted function with functools.wraps: (transformation of the jitted sin(x) * x
# or of a jit of its own, the NumPy reference)
_SIN_X = lambda x: fnp.sin(x) * x  # noqa: E731
WRAPPERS_OF_A_JIT = {
    "grad": (lambda j: ft.grad(ft.jit(lambda x: fnp.sum(_SIN_X(x)))), lambda x: np.cos(x) * x + np.sin(x)),
    "vmap": (lambda j: ft.vmap(j, in_axes=1), lambda x: (np.sin(x) * x).T),
    "jacfwd": (lambda j: ft.jacfwd(j), lambda x: np.diag(np.cos(x) * x + np.sin(x))),
    "value_and_grad": (lambda j: ft.value_and_grad(ft.jit(lambda x: fnp.sum(_SIN_X(x)))),
                       lambda x: (np.sum(np.sin(x) * x), np.cos(x) * x + np.sin(x))),
}


@pytest.mark.parametrize("name", sorted(WRAPPERS_OF_A_JIT))
def test_jit_of_a_transformed_jitted_function(name, jit_backend):
    transform, reference = WRAPPERS_OF_A_JIT[name]
    x = np.linspace(0.1, 1.0, 4) if name != "vmap" else np.arange(6.0).reshape(3, 2)
    got = jit_for(transform(ft.jit(_SIN_X)), jit_backend)(x)
    for g, w in zip(ft.tree_util.tree_leaves(got), ft.tree_util.tree_leaves(reference(x)), strict=True):
        assert np.shape(g) == np.shape(w)
        np.testing.assert_allclose(g, w, rtol=1e-13)
    assert ft.grad(lambda w: ft.jit(lambda x: x * w)(1.0))(2.0) == 1.0
    np.testing.assert_allclose(ft.grad(ft.grad(ft.jit(lambda x: fnp.sin(x) * x)))(0.7),
                               2 * np.cos(0.7) - 0.7 * np.sin(0.7), rtol=1e-13)


def test_an_inner_jit_is_one_equation_of_the_outer_trace():
    inner = ft.jit(lambda x: fnp.sin(x) * 2.0)
    jaxpr = ft.make_jaxpr(lambda x: inner(x) + 1.0)(np.ones(3))
    assert [eqn.primitive.name for eqn in jaxpr.eqns] == ["jit_call", "add"]
    sub = jaxpr.eqns[0].params["jaxpr"]
    assert [eqn.primitive.name for eqn in sub.eqns] == ["sin", "mul"]
    assert str(ft.parse_jaxpr(str(jaxpr))) == str(jaxpr)


def test_differentiating_a_jit_keeps_it_calls():
    inner = ft.jit(lambda x: fnp.sin(x) * x)
    calls = lambda jaxpr: [e.primitive.name for e in jaxpr.eqns].count("jit_call")  # noqa: E731
    jvp_jaxpr = ft.make_jaxpr(lambda x: ft.jvp(inner, (x,), (fnp.ones_like(x),)))(np.ones(3))
    assert [e.primitive.name for e in jvp_jaxpr.eqns] == ["broadcast_in_dim", "jit_call"]  # one call of the JVP
    grad_jaxpr = ft.make_jaxpr(ft.grad(lambda x: fnp.sum(inner(x))))(np.ones(3))
    assert calls(grad_jaxpr) == 2  # the known part, and the transposed linear part
    x = np.linspace(-1.0, 1.0, 3)
    np.testing.assert_allclose(ft.grad(lambda x: fnp.sum(inner(x)))(x), np.cos(x) * x + np.sin(x), rtol=1e-13)
    np.testing.assert_allclose(ft.hessian(lambda x: fnp.sum(inner(x)))(x),
                               np.diag(2 * np.cos(x) - x * np.sin(x)), rtol=1e-13, atol=1e-15)


def test_vmap_of_a_jit_is_one_call_of_the_batched_jaxpr():
    inner = ft.jit(lambda x: fnp.sin(x) * x)
    batch = np.arange(6.0).reshape(3, 2)
    jaxpr = ft.make_jaxpr(ft.vmap(inner, in_axes=1))(batch)
    assert [eqn.primitive.name for eqn in jaxpr.eqns] == ["jit_call", "transpose"]
    sub = jaxpr.eqns[0].params["jaxpr"]
    assert [eqn.primitive.name for eqn in sub.eqns] == ["sin", "mul"] and sub.in_avals[0].shape == (3, 2)
    np.testing.assert_allclose(ft.vmap(inner, in_axes=1)(batch), np.stack([np.sin(c) * c for c in batch.T]))


def test_jit_of_vmap_of_a_jit(jit_backend):
    inner = ft.jit(lambda x: fnp.sin(x) * x)
    batch = np.arange(6.0).reshape(3, 2)
    # (a lambda around vmap: jit of vmap(jit) itself is test_jit_of_a_transformed_jitted_function)
    got = jit_for(lambda b: ft.vmap(inner, in_axes=1)(b), jit_backend)(batch)
    assert type(got) is Array
    np.testing.assert_allclose(got, np.stack([np.sin(c) * c for c in batch.T]), rtol=1e-13)


def test_value_dependent_branch_inside_jit_names_the_line():
    def f(x):
        if x > 0:  # the line the error must name
            return x
        return -x
    with pytest.raises(ft.ConcretizationError, match=r"test_jit.py:\d+ \(if x > 0:") as info:
        ft.jit(f)(1.0)
    assert "static_argnums" in str(info.value) and "ft.lax.cond" in str(info.value)
    assert ft.jit(f, static_argnums=0)(-2.0) == 2.0


def test_weak_scalars_and_dtypes_on_every_backend(jit_backend):
    # a Python scalar argument is weak: the float32 operand decides, on either backend
    f32 = np.array([1.5, -2.0], np.float32)
    got = jit_for(lambda x, s: x * s + 1, jit_backend)(f32, 3.0)
    assert type(got) is Array and got.dtype == np.float32
    np.testing.assert_allclose(got, f32 * np.float32(3.0) + 1, rtol=1e-6)
    i32 = np.arange(4, dtype=np.int32)
    got = jit_for(lambda i, k: (i * k + 1, i // 2, i > k, i + 0.5), jit_backend)(i32, 2)
    want = (i32 * 2 + 1, i32 // 2, i32 > 2, i32 + 0.5)
    for g, w in zip(got, want, strict=True):
        assert type(g) is Array and g.dtype == w.dtype
        np.testing.assert_array_equal(g, w)
    scalar = jit_for(lambda x: fnp.sum(x), jit_backend)(i32)
    assert type(scalar) is Array and scalar.shape == () and scalar.dtype == np.sum(i32).dtype and scalar == 6


def test_a_tracer_leaked_from_jit_is_an_error_when_used():
    leaked = []
    ft.jit(lambda x: leaked.append(x) or x)(1.0)
    with pytest.raises(ft.UnexpectedTracerError, match="escaped"):
        fnp.sin(leaked[0])


# -------------------- arguments as JAX takes them (issue 11, point 16) --------------------

def test_keyword_arguments_are_traced():
    calls = []

    def f(x, y, scale=1.0):
        calls.append(1)  # runs only when jit traces
        return (x * y + scale, y)

    jf = ft.jit(f)
    x = np.arange(3.0)
    for y in (2.0, np.full(3, 4.0)):
        got = jf(x, y=y)
        want = f(x, y=y)
        for g, w in zip(got, want, strict=True):
            np.testing.assert_allclose(g, w, rtol=1e-15)
    np.testing.assert_allclose(jf(x, y=np.full(3, 5.0))[0], x * 5.0 + 1.0)  # cached: a new value, same key
    assert jf.trace_count == 2  # a Python float and an array: two signatures
    np.testing.assert_allclose(jf(x, y=2.0, scale=np.float64(3.0))[0], x * 2.0 + 3.0)
    np.testing.assert_allclose(jf(x, scale=3.0, y=2.0)[0], x * 2.0 + 3.0)  # the order of keywords is no matter
    assert jf.trace_count == 4
    jaxpr_of_kwargs = ft.make_jaxpr(lambda x: jf(x, y=x)[0])(x)
    assert [e.primitive.name for e in jaxpr_of_kwargs.eqns] == ["jit_call"]
    # a keyword argument is a traced value: branching on it is the concretization error
    with pytest.raises(ft.ConcretizationError):
        ft.jit(lambda x, flag: x if flag else -x)(x, flag=np.array(True))


def test_keyword_and_positional_calls_of_one_structure_do_not_share_a_trace():
    jf = ft.jit(lambda a, b=None: (a, b))
    x, y = np.ones(2), np.zeros(2)
    by_keyword = jf(x, b={"y": y})  # flattens as ((x,), {'b': {'y': y}})
    positional = jf((x,), {"b": {"y": y}})  # the same leaves and nesting, but two positional arguments
    assert isinstance(by_keyword[1], dict) and set(by_keyword[1]) == {"y"}
    assert isinstance(positional[0], tuple) and set(positional[1]) == {"b"}
    assert jf.trace_count == 2


def test_keyword_arguments_differentiate_and_batch():
    f = ft.jit(lambda x, w: fnp.sum(fnp.sin(x) * w))
    x, w = np.linspace(0.1, 1.0, 4), np.arange(4.0)
    np.testing.assert_allclose(ft.grad(lambda x: f(x, w=w))(x), np.cos(x) * w, rtol=1e-13)
    np.testing.assert_allclose(ft.vmap(lambda x: f(x, w=w))(np.stack([x, 2 * x])),
                               [np.sum(np.sin(x) * w), np.sum(np.sin(2 * x) * w)], rtol=1e-13)


def test_a_non_array_keyword_argument_names_it_and_static_argnames():
    with pytest.raises(TypeError) as info:
        ft.jit(lambda x, mode="a": x)(1.0, mode="fast")
    message = str(info.value)
    assert "keyword argument 'mode' is a str" in message and "static_argnames" in message
    with pytest.raises(TypeError, match=r"keyword argument 'opts'\['k'\]\[1\] is a str"):
        ft.jit(lambda x, opts: x)(1.0, opts={"k": [1.0, "no"]})


def test_static_argnums_on_a_parameter_left_at_its_default():
    def f(x, n=2):
        return x ** n

    jf = ft.jit(f, static_argnums=1)
    x = np.arange(4.0)
    np.testing.assert_allclose(jf(x), x ** 2)  # position 1 absent from the call
    np.testing.assert_allclose(jf(x, 3), x ** 3)
    np.testing.assert_allclose(jf(x, n=4), x ** 4)  # static by name too: inferred from the signature
    assert jf.static_argnames == ("n",)
    with pytest.raises(ft.ConcretizationError):  # only what static_argnums names is static
        ft.jit(lambda x, n=2: x if n > 1 else -x, static_argnames=())(x, n=np.float64(3.0))


def test_static_argnames_infer_static_argnums():
    jf = ft.jit(lambda x, n: x ** n if n > 1 else -x, static_argnames="n")
    x = np.arange(3.0)
    assert jf.static_argnums == (1,)
    np.testing.assert_allclose(jf(x, 3), x ** 3)
    np.testing.assert_allclose(jf(x, n=0), -x)


def test_static_values_of_equal_value_and_another_type_trace_again():
    jf = ft.jit(lambda x, fill: x + fnp.full(3, fill), static_argnums=1)
    assert jf(np.zeros(3, np.int64), 1).dtype == np.int64
    assert jf(np.zeros(3, np.int64), 1.0).dtype == np.float64  # 1.0 == 1, but it traces as a float
    assert jf(np.zeros(3, np.int64), True).dtype == np.int64
    assert jf.trace_count == 3


@pytest.mark.parametrize("kwargs, match", [
    ({"static_argnums": 2}, r"static_argnums=\(2,\) refers to positional argument 2, but the function takes 2"),
    ({"static_argnums": -3}, "refers to positional argument -3"),
    ({"static_argnames": "z"}, "static_argnames lists 'z', but the function has no parameter of that name"),
    ({"donate_argnums": 5}, "donate_argnums"),
    ({"donate_argnames": ("y", "q")}, "donate_argnames lists 'q'"),
    ({"static_argnums": 1, "donate_argnums": 1}, r"static_argnums and donate_argnums both list \[1\]"),
    ({"static_argnames": "y", "donate_argnames": "y"}, r"static_arg\w+ and donate_arg\w+ both list"),
])
def test_argnums_and_argnames_that_do_not_fit_the_signature_are_value_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ft.jit(lambda x, y: x, **kwargs)


@pytest.mark.parametrize("kwargs, match", [
    ({"static_argnums": 1.0}, "static_argnums must be an int or a tuple of ints, got 1.0"),
    ({"static_argnums": "a"}, "static_argnums must be an int or a tuple of ints, got 'a'"),
    ({"static_argnums": (0, None)}, "None is a NoneType"),
    ({"static_argnums": True}, "static_argnums must be an int"),
    ({"static_argnames": 1}, "static_argnames must be a str or a tuple of str, got 1"),
    ({"static_argnames": ("x", 2)}, "2 is a int"),
    ({"donate_argnums": "0"}, "donate_argnums must be an int"),
])
def test_argnums_and_argnames_of_the_wrong_type_are_type_errors(kwargs, match):
    with pytest.raises(TypeError, match=match):
        ft.jit(lambda x, y: x, **kwargs)


def test_static_argnums_of_a_function_taking_star_args():
    jf = ft.jit(lambda *xs: xs[0] * len(xs) if xs[-1] else -xs[0], static_argnums=(2, 5))
    x = np.arange(3.0)
    np.testing.assert_allclose(jf(x, x, True), 3 * x)  # position 5 absent
    np.testing.assert_allclose(jf(x, x, False), -x)
    with pytest.raises(ValueError, match="refers to positional argument -9"):
        ft.jit(lambda *xs: xs[0], static_argnums=-9)(x)


def test_donated_arguments_are_accepted_and_never_written():
    def step(params, grads):
        return params - 0.1 * grads

    params, grads = np.ones(4), np.full(4, 2.0)
    before = params.copy()
    for jf in (ft.jit(step, donate_argnums=0), ft.jit(step, donate_argnames="params"),
               ft.jit(step, donate_argnums=(0, 1))):
        np.testing.assert_allclose(jf(params, grads), before - 0.2)
        np.testing.assert_array_equal(params, before)  # ftrans never writes into its inputs
    assert ft.jit(step, donate_argnums=0).donate_argnames == ("params",)
    decorated = ft.jit(donate_argnums=0)(step)
    np.testing.assert_allclose(decorated(params, grads), before - 0.2)


def test_jit_of_something_that_is_not_a_function_fails_at_once():
    with pytest.raises(TypeError, match="jit expects a callable function as its first argument, got 3"):
        ft.jit(3)
    with pytest.raises(TypeError, match="callable"):
        ft.jit(static_argnums=0)(np.ones(2))
