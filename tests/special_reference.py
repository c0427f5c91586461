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


# -------------------- the incomplete gamma and beta functions: mpmath at 40 digits --------------------

def _mpmath():
    try:
        import mpmath
        return mpmath
    except ImportError:
        pytest.skip("the incomplete gamma and beta references need mpmath")


def _broadcast_vectorized(fun, *args):
    arrays = np.broadcast_arrays(*(np.asarray(a, np.float64) for a in args))
    out = np.empty(arrays[0].shape)
    for index in np.ndindex(out.shape):
        out[index] = fun(*(float(a[index]) for a in arrays))
    return out


def _gamma_edges(a, x, at_zero, at_a_zero, at_inf, at_a_inf):
    if math.isnan(a) or math.isnan(x) or a < 0 or x < 0 or (a == 0 and x == 0) or (math.isinf(a) and math.isinf(x)):
        return math.nan
    if x == 0:
        return at_zero
    if a == 0:
        return at_a_zero
    if math.isinf(x):
        return at_inf
    if math.isinf(a):
        return at_a_inf
    return None


def gammainc(a, x):
    """P(a, x), SciPy's edge values (nan for a < 0 or x < 0, ...)."""
    mp = _mpmath()
    def p(a, x):
        edge = _gamma_edges(a, x, 0.0, 1.0, 1.0, 0.0)
        if edge is not None:
            return edge
        with mp.workdps(40):
            return float(mp.gammainc(a, 0, x, regularized=True))
    return _broadcast_vectorized(p, a, x)


def gammaincc(a, x):
    mp = _mpmath()
    def q(a, x):
        edge = _gamma_edges(a, x, 1.0, 0.0, 0.0, 1.0)
        if edge is not None:
            return edge
        with mp.workdps(40):
            return float(mp.gammainc(a, x, mp.inf, regularized=True))
    return _broadcast_vectorized(q, a, x)


def gammainc_grad_a(a, x):
    """dP/da by mpmath's numerical differentiation at 60 digits (a > 0, 0 < x < inf)."""
    mp = _mpmath()
    def d(a, x):
        with mp.workdps(60):
            return float(mp.diff(lambda t: mp.gammainc(t, 0, x, regularized=True), a))
    return _broadcast_vectorized(d, a, x)


def random_gamma_grad(a, x):
    """-(dP/da) / (dP/dx), dP/dx = x^(a-1) e^-x / Gamma(a)."""
    mp = _mpmath()
    def d(a, x):
        with mp.workdps(60):
            slope = mp.diff(lambda t: mp.gammainc(t, 0, x, regularized=True), a)
            density = mp.exp((a - 1) * mp.log(x) - x - mp.loggamma(a))
            return float(-slope / density)
    return _broadcast_vectorized(d, a, x)


def betainc(a, b, x):
    """I_x(a, b), with JAX's and SciPy's edge values."""
    mp = _mpmath()
    def i(a, b, x):
        at_0, at_1 = a == 0 or math.isinf(b), b == 0 or math.isinf(a)
        if any(map(math.isnan, (a, b, x))) or a < 0 or b < 0 or x < 0 or x > 1 or (at_0 and at_1):
            return math.nan
        if at_0:
            return 1.0 if x > 0 else 0.0
        if at_1:
            return 0.0 if x < 1 else 1.0
        with mp.workdps(40):
            return float(mp.betainc(a, b, 0, x, regularized=True))
    return _broadcast_vectorized(i, a, b, x)
