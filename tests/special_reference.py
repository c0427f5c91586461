"""Reference values of the special functions for the tests, from outside ftrans:
Python's math module (erf, erfc, lgamma: C's libm), erf_inv by bisection on
math.erf, and digamma / polygamma from SciPy or mpmath when installed (else the
test that needs them is skipped)."""
from __future__ import annotations

import math

import numpy as np
import pytest


def _vectorized(fun):
    def reference(x):
        x = np.asarray(x, np.float64)
        return np.vectorize(fun, otypes=[np.float64])(x) if x.size else x.copy()
    return reference


def _lgamma(x):
    if math.isnan(x):
        return x
    if math.isinf(x) or (x <= 0 and x == math.floor(x)):
        return math.inf
    return math.lgamma(x)


def _erf_inv(y):
    """The x with erf(x) = y, by bisection on math.erf (erfc in the tails, where it keeps digits)."""
    if y == 0:
        return y
    if math.isnan(y) or abs(y) > 1:
        return math.nan
    if abs(y) == 1:
        return math.copysign(math.inf, y)
    a = abs(y)
    if a < 1e-6:  # the series: the next term, 7 pi^2 y^4 / 480, is below an ulp
        return y * math.sqrt(math.pi) / 2 * (1 + math.pi * y * y / 12)
    lo, hi = 0.0, 30.0
    for _ in range(200):
        mid = (lo + hi) / 2
        too_small = math.erf(mid) < a if a < 0.5 else math.erfc(mid) > 1 - a
        lo, hi = (mid, hi) if too_small else (lo, mid)
        if hi - lo <= 4e-17 * hi:
            break
    return math.copysign((lo + hi) / 2, y)


erf = _vectorized(math.erf)
erfc = _vectorized(math.erfc)
erf_inv = _vectorized(_erf_inv)


def lgamma(x):
    """mpmath's where installed: C's lgamma loses digits near its zeros (1e-10 relative at 0.99999)."""
    try:
        import mpmath
    except ImportError:
        return _vectorized(_lgamma)(x)
    def exact(v):
        if math.isnan(v) or math.isinf(v) or (v <= 0 and v == math.floor(v)):
            return _lgamma(v)
        with mpmath.workdps(40):
            return float(mpmath.log(abs(mpmath.gamma(mpmath.mpf(v)))))
    return _vectorized(exact)(x)


def _outside():
    try:
        import scipy.special
        return scipy.special
    except ImportError:
        pass
    try:
        import mpmath
        return mpmath
    except ImportError:
        pytest.skip("digamma and polygamma references need scipy or mpmath")


def digamma(x):
    module = _outside()
    if module.__name__ == "mpmath":
        return _vectorized(lambda v: float(module.digamma(v)) if v > 0 or v != math.floor(v) else math.nan)(x)
    return module.digamma(np.asarray(x, np.float64))


def polygamma(m, x):
    module = _outside()
    if module.__name__ == "mpmath":
        return _vectorized(lambda v: float(module.polygamma(m, v)))(x)
    return module.polygamma(m, np.asarray(x, np.float64))
