"""What ftrans keeps alive: caches keyed on user functions or jaxprs let them
die with their owner, and the global caches are bounded.

A jitted closure copies the arrays it closes over when it is traced; the
transformations of its `jit_call` (JVP, linearization, transposes, batching,
eager reverse mode's per-signature rules) are cached beside its jaxpr. Once the
jitted function is gone, all of that must go too: the closed-over array, jit's
copy of it, and every buffer the cached transformations' generated code holds.
"""
from __future__ import annotations

import gc
import tracemalloc
import weakref

import numpy as np
import pytest

import ftrans as ft
import ftrans.numpy as fnp
from interpreters import ad_eager, lowering_cupy
from ftrans import tree_util
from ftrans.numpy import _core as fnp_core

N = 10 ** 5  # past the size from which generated code keeps scratch buffers between calls


S = 1.5


def _value(big, s=S):
    return np.sum(np.sin(big * s) + big * s)


def _first(big, s=S):
    return np.sum(np.cos(big * s) * big + big)


def _second(big, s=S):
    return np.sum(-np.sin(big * s) * big ** 2)


# Each way of using a jitted closure `f` of one float input: (use, its expected
# result from the closed-over array)
USES = {
    "grad": (lambda f: ft.grad(f)(np.asarray(S)), _first),
    "value_and_grad": (lambda f: ft.value_and_grad(f)(np.asarray(S))[1], _first),
    "vjp": (lambda f: ft.vjp(f, np.asarray(S))[1](np.asarray(1.0))[0], _first),
    "jvp": (lambda f: ft.jvp(f, (np.asarray(S),), (np.asarray(1.0),))[1], _first),
    "linearize": (lambda f: ft.linearize(f, np.asarray(S))[1](np.asarray(1.0)), _first),
    "jit of grad": (lambda f: ft.jit(ft.grad(f))(np.asarray(S)), _first),
    "grad of grad": (lambda f: ft.grad(ft.grad(f))(np.asarray(S)), _second),
    "vmap": (lambda f: ft.vmap(f)(np.full(3, S))[1], _value),
    "vmap of grad": (lambda f: ft.vmap(ft.grad(f))(np.full(3, S))[2], _first),
    "jacrev": (lambda f: ft.jacrev(f)(np.asarray(S)), _first),
    "hessian": (lambda f: ft.hessian(f)(np.asarray(S)), _second),
}


def _jitted_closure(seed):
    """A jitted closure over an array of N elements; its derivative in s is sum(big)."""
    big = np.random.default_rng(seed).random(N)
    f = ft.jit(lambda s: fnp.sum(fnp.sin(big * s) + big * s))
    return f, big


def _held_by_jit(f, s):
    """Weak references to what jit made for `f` at this signature: its jaxpr, its
    constants (copies of the closed-over arrays), and the jaxpr that a `jit_call`
    of it holds under a transformation (what the caches of transformations key on)."""
    lowered = f.lower(s)
    (call,) = ft.make_jaxpr(f)(s).eqns
    return [weakref.ref(lowered.jaxpr), weakref.ref(call.params["jaxpr"]),
            *(weakref.ref(c) for c in lowered.jaxpr.consts)]


@pytest.mark.parametrize("use", sorted(USES))
def test_a_jitted_closure_and_its_transformations_die_with_the_function(use):
    run, expected = USES[use]
    run(_jitted_closure(1)[0])  # first fill the caches every such closure shares (per-primitive rules)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        f, big = _jitted_closure(0)
        np.testing.assert_allclose(run(f), expected(big), rtol=1e-10)
        refs = [weakref.ref(big), *_held_by_jit(f, np.asarray(S))]
        del f, big
        gc.collect()
        retained = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    alive = [type(ref()).__name__ for ref in refs if ref() is not None]
    assert not alive, f"{use}: still alive after the function is gone: {alive}"
    assert retained < 8 * N / 2, f"{use}: {retained / 1e6:.2f} MB still allocated after the function is gone"


def test_eager_grad_of_a_jitted_closure_keeps_no_copy_of_its_array():
    """The reproducer of issue 11: one closure over 8 MB kept twice that alive."""
    tracemalloc.start()
    try:
        f = ft.jit(lambda s, big=np.ones(10 ** 6): fnp.sum(big * s))
        np.testing.assert_allclose(ft.grad(f)(np.asarray(1.0)), 1e6)
        del f
        gc.collect()
        retained = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert retained < 4 * 10 ** 6, f"{retained / 1e6:.1f} MB still allocated after the function is gone"


def test_many_distinct_jitted_closures_keep_memory_bounded():
    """Each closure is differentiated, vmapped and jitted again, then dropped:
    what stays allocated does not grow with the number of closures."""
    def use_one(seed):
        f, big = _jitted_closure(seed)
        ft.grad(f)(np.asarray(0.5))
        ft.vmap(f)(np.full(2, 0.5))
        ft.jvp(f, (np.asarray(0.5),), (np.asarray(1.0),))
        ft.jit(ft.grad(f))(np.asarray(0.5))

    for seed in range(3):  # warm up: the caches of primitives that every closure shares
        use_one(seed)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for seed in range(40):
            use_one(seed)
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    per_closure = 8 * N  # one copy of a closed-over array
    assert grown < 5 * per_closure, f"{grown / 1e6:.2f} MB more after 40 closures came and went"


# -------------------- the global caches are bounded --------------------

def test_eager_rule_cache_is_bounded(monkeypatch):
    monkeypatch.setattr(ad_eager, "_MAX_RULES", 8)
    monkeypatch.setattr(ad_eager, "_RULES", {})  # the suite's rules stay as they were
    for n in range(1, 30):  # as many distinct signatures: sin of f64[n], and so on
        np.testing.assert_allclose(ft.grad(lambda x: fnp.sum(fnp.sin(x)))(np.zeros(n)), np.ones(n))
        assert len(ad_eager._RULES) <= 8


def test_operand_plan_cache_is_bounded(monkeypatch):
    monkeypatch.setattr(fnp_core, "_MAX_OPERAND_PLANS", 8)
    monkeypatch.setattr(fnp_core, "_OPERAND_PLANS", {})
    for n in range(1, 30):
        np.testing.assert_array_equal(fnp.add(np.ones(n), 1.0), np.full(n, 2.0))
        assert len(fnp_core._OPERAND_PLANS) <= 8


def test_treedef_cache_of_tuples_is_bounded(monkeypatch):
    monkeypatch.setattr(tree_util, "_MAX_TUPLE_OF_LEAVES_DEFS", 8)
    monkeypatch.setattr(tree_util, "_TUPLE_OF_LEAVES_DEFS", {})
    for n in range(1, 30):
        leaves, treedef = ft.tree_util.tree_flatten(tuple(range(n)))
        assert ft.tree_util.tree_unflatten(treedef, leaves) == tuple(range(n))
        assert len(tree_util._TUPLE_OF_LEAVES_DEFS) <= 8


def test_cupy_kernel_cache_is_bounded():
    """The kernel cache drops the least recently used kernel (checked without CuPy:
    keys and stand-ins for kernels)."""
    cache = lowering_cupy._KernelCache(capacity=4)
    for i in range(6):
        cache[("kernel", i)] = f"kernel {i}"
        assert cache.get(("kernel", 2)) in (None, "kernel 2")  # kernel 2, once built, stays in use
    assert len(cache) == 4
    assert [cache.get(("kernel", i)) for i in range(6)] == [None, None, "kernel 2", "kernel 3", "kernel 4", "kernel 5"]
    cache[("kernel", 6)] = "kernel 6"  # the look-ups just made kernel 2 the least recently used
    assert cache.get(("kernel", 2)) is None and cache.get(("kernel", 3)) == "kernel 3"
    assert lowering_cupy._KERNEL_CACHE.capacity >= 256
