"""Test-wide settings: debug checks on, hypothesis profiles, and jit's backends.

Profiles: `ci` (the default under CI=true: modest example counts, keeps the
suite well under 10 minutes on 2 cores), `dev` (default locally), `heavy`
(opt-in sweeps: FTRANS_HYPOTHESIS_PROFILE=heavy).

Backends: a test that compares jit with eager takes the `jit_backend` fixture
("numpy", and "cupy", which skips cleanly without CuPy and a GPU) and jits
with `jit_for(fun, jit_backend)`: that is called on NumPy arguments and
returns NumPy results on either backend, so the test's assertions are the same.
Test modules import the helpers: `from conftest import jit_for, share_of_profile`.
"""
import os

import pytest
from hypothesis import HealthCheck, settings

import ftrans as ft
import ir.config
from ir.primitives import collectives as _collectives
from ftrans import _device

ir.config.debug = True  # every staged jaxpr is type-checked, every impl result checked against its aval

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

JIT_BACKENDS = ("numpy", "cupy")


# Module-scoped, so that hypothesis tests may take it (a function-scoped fixture fails
# hypothesis's health check: it would not be reset between examples). It only names a backend.
@pytest.fixture(scope="module", params=JIT_BACKENDS)
def jit_backend(request):
    """"numpy", or "cupy" where CuPy and a GPU are there (skipped cleanly elsewhere)."""
    if request.param == "cupy" and not _device.gpu_available():
        pytest.skip(f"jit(backend='cupy') needs a GPU: {_device._gpu_problem()}")
    return request.param


def jit_for(fun, backend, **jit_kwargs):
    """`ft.jit(fun, **jit_kwargs)` for `backend`, called like `fun` on NumPy arguments
    and returning NumPy results. "numpy" is jit's default (backend=None: the arguments
    decide); "cupy" is backend="cupy", with the arguments moved to the GPU by
    `ft.device_put(..., "gpu")` and the results brought back by `ft.device_put(..., "cpu")`.
    Keyword arguments are passed as they are (traced, unless named in static_argnames)."""
    if backend == "numpy":
        return ft.jit(fun, **jit_kwargs)
    if backend != "cupy":
        raise ValueError(f"unknown jit backend {backend!r}")
    jitted = ft.jit(fun, backend="cupy", **jit_kwargs)

    def on_the_gpu(*args, **kwargs):
        return ft.device_put(jitted(*ft.device_put(args, "gpu"), **kwargs), "cpu")
    on_the_gpu.jitted = jitted
    return on_the_gpu


# Collectives (psum, all_gather, ...) run only where an axis name is bound (a vmap with
# axis_name, a distributed run): the per-primitive tables leave them to
# tests/test_collectives.py, which has a row for each of them, rule by rule.
COLLECTIVES = frozenset(p.name for p in _collectives.COLLECTIVES)
