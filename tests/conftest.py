"""Test-wide settings: debug checks on, hypothesis profiles, and jit's backends.

Profiles: `ci` (the default under CI=true: modest example counts, keeps the
suite well under 10 minutes on 2 cores), `dev` (default locally), `heavy`
(opt-in sweeps: FTRANS_HYPOTHESIS_PROFILE=heavy).

Backends: a test that compares jit with eager takes the `jit_backend` fixture
("numpy": jit's NumPy code; "c": its fused C kernels, interpreters/lowering_c.py, which
skips cleanly without a working C compiler; and "cupy", which skips cleanly without CuPy
and a GPU) and jits
with `jit_for(fun, jit_backend)`: that is called on NumPy arguments and
returns NumPy results on either backend, so the test's assertions are the same.
Test modules import the helpers: `from conftest import jit_for, share_of_profile`.

C kernels: the whole run shares one disk cache (FTRANS_CACHE_DIR, a temporary
directory made here unless it is set already, and inherited by the processes
tests start), so each generated source is compiled once per run. Most families run
jit with the kernels off (`ir.config.cpu_kernels = False` below): the "c" backend and
tests/test_c_kernels.py turn them on, with `c_kernels()`.
"""
import atexit
import contextlib
import os
import shutil
import tempfile

import pytest
from hypothesis import HealthCheck, settings

if not os.environ.get("FTRANS_CACHE_DIR"):  # before anything compiles; a CI that sets it keeps its cache
    os.environ["FTRANS_CACHE_DIR"] = tempfile.mkdtemp(prefix="ftrans-test-kernels-")
    atexit.register(shutil.rmtree, os.environ["FTRANS_CACHE_DIR"], True)

import ftrans as ft  # noqa: E402 (after FTRANS_CACHE_DIR is set)
import ir.config  # noqa: E402
from ir.primitives import collectives as _collectives
from ftrans import _device

ir.config.debug = True  # every staged jaxpr is type-checked, every impl result checked against its aval
ir.config.cpu_kernels = False  # jit's NumPy code, but where a test asks for C kernels (c_kernels)

settings.register_profile("ci", max_examples=25, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", max_examples=60, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("heavy", max_examples=1000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("FTRANS_HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


def share_of_profile(fraction):
    """Settings for one case of a large parametrized family (a function of 23, a subscript
    of 30, a primitive of 60): a fraction of the hypothesis profile's max_examples, never
    more than it. The family as a whole still runs many times the profile's count; the
    suite stays fast."""
    profile = settings().max_examples
    return settings(max_examples=min(profile, max(10, int(profile * fraction))))


# -------------------- jit's backends --------------------

# FTRANS_JIT_BACKENDS=c (a comma-separated list) runs the jit-vs-eager families on those backends only
JIT_BACKENDS = tuple(os.environ.get("FTRANS_JIT_BACKENDS", "numpy,c,cupy").split(","))
# Every program on the C path is compiled (a few tenths of a second each, once per run with the shared
# cache): by default the C path runs in its own family and the jit-equals-eager families below; naming
# "c" in FTRANS_JIT_BACKENDS runs it in every family that takes `jit_backend`.
C_FAMILIES = frozenset({"test_c_kernels", "test_random_programs", "test_jit"})
C_EVERYWHERE = "c" in os.environ.get("FTRANS_JIT_BACKENDS", "").split(",")


@contextlib.contextmanager
def c_kernels(enabled=True, every_size=True):
    """jit with C kernels (True: required) or without (False), for what is jitted and
    first called inside (a jitted function keeps the lowering of its first call).
    `every_size`: groups of any size run in C (jit leaves small ones to NumPy, where a
    ctypes call costs more than it saves; the tests' arrays are small)."""
    from interpreters import lowering_c
    saved = ir.config.cpu_kernels, lowering_c.C_MIN_ELEMENTS
    ir.config.cpu_kernels = enabled
    if every_size:
        lowering_c.C_MIN_ELEMENTS = 1
    try:
        yield
    finally:
        ir.config.cpu_kernels, lowering_c.C_MIN_ELEMENTS = saved


def c_compiler_problem():
    """Why C kernels cannot run here, or None when they can."""
    from interpreters import c_compiler
    status = c_compiler.compiler_status()
    return None if status.available else status.reason


# Module-scoped, so that hypothesis tests may take it (a function-scoped fixture fails
# hypothesis's health check: it would not be reset between examples). It only names a backend.
@pytest.fixture(scope="module", params=JIT_BACKENDS)
def jit_backend(request):
    """"numpy", or "cupy" where CuPy and a GPU are there (skipped cleanly elsewhere)."""
    if request.param == "cupy" and not _device.gpu_available():
        pytest.skip(f"jit(backend='cupy') needs a GPU: {_device._gpu_problem()}")
    if request.param == "c" and not C_EVERYWHERE and request.module.__name__.rpartition(".")[2] not in C_FAMILIES:
        pytest.skip("this family's C path runs with FTRANS_JIT_BACKENDS=numpy,c (by default: "
                    f"{', '.join(sorted(C_FAMILIES))})")
    if request.param == "c" and c_compiler_problem():
        pytest.skip(f"jit's C kernels need a C compiler: {c_compiler_problem()}")
    return request.param


def jit_for(fun, backend, **jit_kwargs):
    """`ft.jit(fun, **jit_kwargs)` for `backend`, called like `fun` on NumPy arguments
    and returning NumPy results. "numpy" is jit's default (backend=None: the arguments
    decide); "cupy" is backend="cupy", with the arguments moved to the GPU by
    `ft.device_put(..., "gpu")` and the results brought back by `ft.device_put(..., "cpu")`.
    Keyword arguments are passed as they are (traced, unless named in static_argnames)."""
    if backend == "numpy":
        return ft.jit(fun, **jit_kwargs)
    if backend == "c":  # jit's C kernels: lowered (at the first call) with them required
        jitted_c = ft.jit(fun, **jit_kwargs)

        def with_c_kernels(*args, **kwargs):
            with c_kernels():
                return jitted_c(*args, **kwargs)
        with_c_kernels.jitted = jitted_c
        return with_c_kernels
    if backend != "cupy":
        raise ValueError(f"unknown jit backend {backend!r}")
    jitted = ft.jit(fun, backend="cupy", **jit_kwargs)

    def on_the_gpu(*args, **kwargs):
        return ft.device_put(jitted(*ft.device_put(args, "gpu"), **kwargs), "cpu")
    on_the_gpu.jitted = jitted
    return on_the_gpu


# Collectives (psum, all_gather, ...) run only where an axis name is bound (a vmap with
# axis_name, a distributed run). tests/test_collectives.py has a row for each of them, rule by
# rule; test_autodiff, test_vmap and test_taylor give them ordinary rows too, run under
# `under_named_axis`. test_primitives's ROWS and SCALAR_CASES leave them out (COLLECTIVES): those
# rows also feed `prim.impl` alone (test_codegen, test_floating_point), which a collective over a
# vmap axis never reaches, and their values against NumPy are test_collectives's first test.
COLLECTIVES = frozenset(p.name for p in _collectives.COLLECTIVES)
NAMED_AXIS = "i"


class NamedAxisCase:
    """A row of a per-primitive table for a collective: as a function of float arrays of any shapes
    it makes `size` examples of each (`stack`: x, then x scaled and shifted, distinct values so that
    a maximum has no ties while x stays inside (-1.2, 1.2)) and runs `per_example` on them under
    vmap(axis_name="i"), which binds the collectives' axis; the tables check that function as any
    other. Run so, the vmap handles each collective (its rule for its own axis) before any other
    transformation sees it: `inside(transform, *stacked)` applies a transformation to per_example
    *inside* the vmap, where the collective's own jvp, transpose, batch and taylor rules run."""

    def __init__(self, per_example, size=3):
        self.per_example, self.size = per_example, size

    def stack(self, x):
        import ftrans.numpy as fnp
        return fnp.stack([x * (1 + 0.37 * k) + 0.61 * k for k in range(self.size)])

    def __call__(self, *xs):
        return ft.vmap(self.per_example, axis_name=NAMED_AXIS)(*[self.stack(x) for x in xs])

    def inside(self, transform, *stacked, in_axes=0, out_axes=0):
        return ft.vmap(transform(self.per_example), in_axes=in_axes, out_axes=out_axes,
                       axis_name=NAMED_AXIS)(*stacked)


def under_named_axis(per_example, size=3):
    return NamedAxisCase(per_example, size)


def check_rules_inside_the_axis(case, args, rtol=1e-10, atol=1e-12):
    """jvp and vjp taken inside the vmap that binds the axis (the collective's own jvp and transpose
    rules) equal those of the whole vmapped function, which the tables check against finite
    differences: as JAX's, the gradient inside the vmap is that of the sum over the examples."""
    import numpy as np
    X = [np.asarray(case.stack(a)) for a in args]
    rng = np.random.default_rng(len(X[0].shape))
    T = [rng.standard_normal(x.shape) for x in X]
    n = len(X)
    whole = lambda *xs: ft.vmap(case.per_example, axis_name=NAMED_AXIS)(*xs)  # noqa: E731
    out, want_t = ft.jvp(whole, tuple(X), tuple(T))
    got_out, got_t = case.inside(lambda f: lambda *vt: ft.jvp(f, vt[:n], vt[n:]), *X, *T)
    np.testing.assert_allclose(got_out, out, rtol=rtol, atol=atol, err_msg="value inside the vmap")
    np.testing.assert_allclose(got_t, want_t, rtol=rtol, atol=atol, err_msg="jvp inside the vmap")
    C = rng.standard_normal(np.shape(out))
    want_ct = ft.vjp(whole, *X)[1](C)
    got_ct = case.inside(lambda f: lambda *vc: ft.vjp(f, *vc[:n])[1](vc[n]), *X, C)
    for got, want in zip(got_ct, want_ct, strict=True):
        np.testing.assert_allclose(got, want, rtol=rtol, atol=atol, err_msg="vjp inside the vmap")


def collective_examples(lax, fnp):
    """name -> a function of one example v (any shape) over the named axis of size 3 applying that
    collective, with smooth operations around it so that its derivatives mix the examples."""
    three = lambda v: fnp.stack([v, 2.0 * v, v * v])  # noqa: E731 (a leading axis of the axis's size)
    return {
        "psum": lambda v: lax.psum(fnp.sin(v), NAMED_AXIS) * v,
        # (no ties between the examples of under_named_axis for v inside (-1.2, 1.2))
        "pmax": lambda v: lax.pmax(v * (v + 3.0), NAMED_AXIS) * v,
        "pmin": lambda v: lax.pmin(fnp.tanh(v), NAMED_AXIS) * v,
        "all_gather": lambda v: lax.all_gather(fnp.sin(v), NAMED_AXIS) * v,
        "psum_scatter": lambda v: lax.psum_scatter(three(fnp.sin(v)), NAMED_AXIS) * v,
        "ppermute": lambda v: lax.ppermute(fnp.sin(v), NAMED_AXIS, [(0, 1), (1, 2)]) * v,
        "all_to_all": lambda v: lax.all_to_all(three(fnp.sin(v)), NAMED_AXIS, 0, 0) * v,
        "axis_index": lambda v: lax.axis_index(NAMED_AXIS) * fnp.sin(v),
    }
