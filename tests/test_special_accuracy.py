"""The special functions' accuracy (ir/primitives/special_math.py) against mpmath, where installed:
a few ulps in float64 (relative), absolute near the zeros that no branch is built around."""
import numpy as np
import pytest

import ftrans as ft

mpmath = pytest.importorskip("mpmath")

RNG = np.random.default_rng(0)
POSITIVE = np.concatenate([RNG.uniform(0, 3, 300), RNG.uniform(0, 60, 200), np.exp(RNG.uniform(-40, 40, 100)),
                           [0.5, 1.0, 2.0, 1.4616321449683622, 1e-300, 0.99999, 2.00001]])
NEGATIVE = -RNG.uniform(0.01, 20, 300)
NEGATIVE = NEGATIVE[NEGATIVE != np.round(NEGATIVE)]


def _exact(fun, xs):
    mpmath.mp.dps = 40
    return np.array([float(fun(mpmath.mpf(float(x)))) for x in xs])


def _relative_error(got, want):
    """Relative to the value, or to the smallest normal number where the value is subnormal."""
    return np.max(np.abs(got - want) / np.maximum(np.abs(want), np.finfo(np.float64).tiny))


CASES = {  # name -> (ftrans function, mpmath function, points, largest relative error)
    "erf": (ft.lax.erf, mpmath.erf, np.concatenate([RNG.uniform(-6, 6, 500), RNG.uniform(-1e-3, 1e-3, 50)]), 4e-16),
    "erfc": (ft.lax.erfc, mpmath.erfc, np.concatenate([RNG.uniform(-3, 27, 600), [0.5, 2.5, 26.5]]), 8e-16),
    "erf_inv": (ft.lax.erf_inv, mpmath.erfinv,
                np.concatenate([RNG.uniform(-1, 1, 500), 1 - np.exp(RNG.uniform(-36, -1, 100)), [1e-300, -0.75]]),
                4e-16),
    "lgamma": (ft.lax.lgamma, mpmath.loggamma, POSITIVE, 1e-15),
    "digamma": (ft.lax.digamma, mpmath.digamma, POSITIVE, 1e-15),
    "trigamma": (lambda x: ft.lax.polygamma(1, x), lambda x: mpmath.polygamma(1, x), POSITIVE[(POSITIVE < 1e15) & (POSITIVE > 1e-60)],
                 1e-15),
    "polygamma_4": (lambda x: ft.lax.polygamma(4, x), lambda x: mpmath.polygamma(4, x), POSITIVE[(POSITIVE < 1e15) & (POSITIVE > 1e-60)],
                    1e-15),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_float64_accuracy_against_mpmath(name):
    fun, exact, xs, tolerance = CASES[name]
    assert _relative_error(np.asarray(fun(xs)), _exact(exact, xs)) < tolerance


@pytest.mark.parametrize("name", ["lgamma", "digamma", "polygamma"])
def test_negative_arguments_by_reflection(name):
    fun, exact = {"lgamma": (ft.lax.lgamma, lambda x: mpmath.log(abs(mpmath.gamma(x)))),
                  "digamma": (ft.lax.digamma, mpmath.digamma),
                  "polygamma": (lambda x: ft.lax.polygamma(3, x), lambda x: mpmath.polygamma(3, x))}[name]
    got, want = np.asarray(fun(NEGATIVE)), _exact(exact, NEGATIVE)
    assert np.max(np.abs(got - want) / np.maximum(np.abs(want), 1)) < 1e-13


def test_float32_results_are_the_float64_ones_rounded():
    x = np.linspace(0.1, 5, 50).astype(np.float32)
    for fun in (ft.lax.erf, ft.lax.erfc, ft.lax.lgamma, ft.lax.digamma):
        got = fun(x)
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got, np.asarray(fun(x.astype(np.float64))).astype(np.float32))


def test_values_at_the_edges_follow_scipy_and_c():
    inf, nan = np.inf, np.nan
    x = np.array([0.0, -0.0, 1.0, -1.0, inf, -inf, nan])
    np.testing.assert_array_equal(ft.lax.erf(x), [0.0, -0.0, 0.8427007929497149, -0.8427007929497149, 1, -1, nan])
    np.testing.assert_array_equal(ft.lax.erf_inv(x), [0.0, -0.0, inf, -inf, nan, nan, nan])
    np.testing.assert_array_equal(ft.lax.lgamma(x), [inf, inf, 0.0, inf, inf, inf, nan])  # C's lgamma(-inf) = inf
    np.testing.assert_array_equal(ft.lax.digamma(x)[[0, 1, 3, 4, 5, 6]], [-inf, inf, nan, inf, nan, nan])
    np.testing.assert_array_equal(ft.lax.polygamma(1, x)[[0, 1, 3, 4, 5]], [inf, inf, inf, 0.0, inf])


def test_polygamma_takes_a_static_order():
    assert float(ft.lax.polygamma(0, 2.0)) == float(ft.lax.digamma(2.0))
    with pytest.raises(ValueError, match="non-negative"):
        ft.lax.polygamma(-1, 2.0)
    with pytest.raises(TypeError, match="integer"):
        ft.lax.polygamma(1.5, 2.0)


def test_second_derivatives_of_the_special_functions():
    x = np.array([0.3, 1.7, 4.0])
    for fun in (ft.lax.erf, ft.lax.erfc, ft.lax.lgamma, ft.lax.digamma, lambda v: ft.lax.erf_inv(v / 5)):
        ft.check_grads(fun, (x,), order=2, modes=("fwd", "rev"))
