"""ftrans.scipy.special: scipy.special's functions as jax.scipy.special has them, differentiable.

erf, erfc, erfinv, gammaln, digamma, polygamma, gammainc, gammaincc and betainc are
primitives (ftrans.lax); the
rest are compositions, written so that their derivatives stay finite where
SciPy's values are (xlogy(0, 0) = 0 with a zero gradient, log_ndtr far in the tail).
"""
from __future__ import annotations

import math

import numpy as np

import ftrans.numpy as fnp
from ftrans import lax
from ftrans.numpy._core import public
from ir.errors import at_user_line
from ir.primitives.special_math import BERNOULLI
from ftrans._unavailable import missing_name_hook as _missing_name_hook

__all__ = ["betainc", "betaln", "digamma", "erf", "erfc", "erfinv", "expit", "gammainc", "gammaincc", "gammaln",
           "log_ndtr", "log_softmax", "logit", "logsumexp", "ndtr", "ndtri", "polygamma", "psi", "softmax", "xlog1py",
           "xlogy"]

erf, erfc, erfinv, gammaln, digamma = lax.erf, lax.erfc, lax.erf_inv, lax.lgamma, lax.digamma
psi = digamma


@public
def gammainc(a, x):
    """The regularized lower incomplete gamma function P(a, x) (differentiable in a and in x)."""
    return lax.igamma(a, x)


@public
def gammaincc(a, x):
    """The regularized upper incomplete gamma function Q(a, x) = 1 - P(a, x)."""
    return lax.igammac(a, x)


@public
def betainc(a, b, x):
    """The regularized incomplete beta function I_x(a, b) (differentiable in x only, as JAX's)."""
    return lax.betainc(a, b, x)


@public
def polygamma(n, x):
    """The n-th derivative of digamma; n a non-negative integer (a Python int, or a concrete
    integer array: each distinct order computed once)."""
    if isinstance(n, (int, np.integer)) and not isinstance(n, bool):
        return lax.polygamma(int(n), x)
    orders = np.asarray(n)
    if orders.dtype.kind not in "iu":
        raise TypeError(at_user_line(f"polygamma: n must be an integer or integer array, got {n!r}"))
    out = None
    for m in np.unique(orders):
        value = lax.polygamma(int(m), x)
        out = value if out is None else fnp.where(orders == m, value, out)
    return out


@public
def expit(x):
    return lax.logistic(x)


@public
def logit(x):
    """log(x / (1 - x))."""
    return fnp.log(x) - fnp.log1p(-x)


@public
def xlogy(x, y):
    """x log(y), 0 where x is 0 (y = 0 included)."""
    zero = fnp.equal(x, 0)
    safe_y = fnp.where(zero, 1.0, y)
    return fnp.where(zero, 0.0, x * fnp.log(safe_y))


@public
def xlog1py(x, y):
    """x log(1 + y), 0 where x is 0 (y = -1 included)."""
    zero = fnp.equal(x, 0)
    safe_y = fnp.where(zero, 0.0, y)
    return fnp.where(zero, 0.0, x * fnp.log1p(safe_y))


@public
def logsumexp(a, axis=None, b=None, keepdims=False, return_sign=False):
    """log(sum(b * exp(a))) over axis, stably; with return_sign, (log|s|, sign(s)) (b may be negative)."""
    if b is None and not return_sign:
        return fnp.logsumexp(a, axis=axis, keepdims=keepdims)
    a = _floats(a)
    shift = fnp.max(a, axis=axis, keepdims=True)
    shift = fnp.where(fnp.abs(shift) < np.inf, shift, 0.0)
    scaled = fnp.exp(a - lax.stop_gradient(shift))
    total = fnp.sum(scaled if b is None else scaled * b, axis=axis, keepdims=True)
    out = fnp.log(fnp.abs(total)) + lax.stop_gradient(shift)
    sign = fnp.sign(total)
    if not keepdims:
        out, sign = (fnp.squeeze(v, axis=axis) if axis is not None else fnp.reshape(v, ()) for v in (out, sign))
    return (out, sign) if return_sign else out


@public
def softmax(x, axis=None):
    shifted = x - lax.stop_gradient(fnp.max(x, axis=axis, keepdims=True))
    e = fnp.exp(shifted)
    return e / fnp.sum(e, axis=axis, keepdims=True)


@public
def log_softmax(x, axis=None):
    shifted = x - lax.stop_gradient(fnp.max(x, axis=axis, keepdims=True))
    return shifted - fnp.log(fnp.sum(fnp.exp(shifted), axis=axis, keepdims=True))


def _stirling_correction(inv):
    """lgamma(x) - ((x - 1/2) log x - x + log(2 pi)/2) for x >= 10, of inv = 1/x (as special_math's)."""
    inv2 = inv * inv
    series = 0.0
    for k in range(8, 0, -1):
        series = series * inv2 + BERNOULLI[k - 1] / (2 * k * (2 * k - 1))
    return series * inv


@public
def betaln(a, b):
    """log |B(a, b)|: lgamma(a) + lgamma(b) - lgamma(a + b) where the larger, L, is under 10 (or either
    is not positive); there that sum would cancel (and be inf - inf past 1e305): Stirling's form with
    the large logarithms combined, as the incomplete beta function's (special_math._log_beta). Each
    branch sees its arguments clamped to its side."""
    a, b = _floats(a), _floats(b)
    large, small = fnp.maximum(a, b), fnp.minimum(a, b)
    stirling = (large >= 10.0) & (small > 0)
    both = stirling & (small >= 10.0)
    big, little = fnp.where(stirling, large, 10.0), fnp.where(stirling, small, 1.0)
    ratio = little / big
    inv_big = 1.0 / big  # and 1 / (L + s) as inv_big / (1 + ratio): L + s may overflow
    shared = (_stirling_correction(inv_big) - _stirling_correction(inv_big / (1.0 + ratio))
              - (big - 0.5) * fnp.log1p(ratio))
    little_large = fnp.where(both, little, 10.0)
    both_large = (little_large * (fnp.log(little_large) - fnp.log(big) - fnp.log1p(ratio))
                  + 0.5 * fnp.log(2.0 * np.pi / little_large) + _stirling_correction(1.0 / little_large))
    one_large = gammaln(little) - little * (fnp.log(big) + fnp.log1p(ratio)) + little
    da, db = fnp.where(stirling, 1.0, a), fnp.where(stirling, 1.0, b)
    direct = gammaln(da) + gammaln(db) - gammaln(da + db)
    return fnp.where(stirling, shared + fnp.where(both, both_large, one_large), direct)


def _floats(x):
    """x as a float array (ints promote as NumPy's ufuncs promote them)."""
    return fnp.multiply(x, 1.0)


_SQRT_HALF = 0.70710678118654752440


@public
def ndtr(x):
    """The standard normal CDF, erfc(-x / sqrt 2) / 2 (accurate in the lower tail)."""
    return 0.5 * erfc(-x * _SQRT_HALF)


_TAIL = -20.0  # (below, erfc's second derivative over ndtr^2 underflows)
# ndtr(x) = pdf(x) / -x (1 - 1/x^2 + 3/x^4 - 15/x^6 + ...), the coefficients (-1)^n (2n - 1)!!: ten
# terms leave 6e-18 at x = -20 (five left 2.5e-12, which ndtri's round trip showed)
_MILLS_SERIES = [(-1) ** n * math.prod(range(1, 2 * n, 2)) for n in range(11)]


@public
def log_ndtr(x):
    """log ndtr(x): log1p(-ndtr(-x)) above 0 (where ndtr(x) rounds to 1 - a few ulps, or to 1: its
    log was 0 from x ~ 8.3, not -ndtr(-x)), log of erfc's from x = -20 to 0, the asymptotic series
    below, where ndtr underflows (each branch sees x clamped to its side, so none's derivative meets
    an infinity)."""
    x = _floats(x)
    lower, upper = x < _TAIL, x > 0
    x_up = fnp.where(upper, x, 0.0)
    x_mid = fnp.where(lower, _TAIL, fnp.where(upper, 0.0, x))
    x_lo = fnp.where(lower, x, _TAIL)
    above = fnp.log1p(-ndtr(-x_up))
    near = fnp.log(ndtr(x_mid))
    z = 1.0 / (x_lo * x_lo)
    series = 0.0
    for coefficient in reversed(_MILLS_SERIES):
        series = coefficient + z * series
    far = -0.5 * x_lo * x_lo - fnp.log(-x_lo) - 0.91893853320467274178 + fnp.log(series)
    return fnp.where(lower, far, fnp.where(upper, above, near))


_NDTRI_TAIL = 0.1
_NEWTON_STEPS = 4  # from the initial guess's 4.5e-4: 1e-7, 1e-14, then below an ulp, its derivatives too


def _ndtri_lower_tail(p):
    """ndtri(p) for 0 < p <= _NDTRI_TAIL, where 2p - 1 would round p's digits away (ndtri(1e-20) was
    -inf): Abramowitz and Stegun's 26.2.23 (error < 4.5e-4), then Newton's steps on log_ndtr(z) = log p.
    Being differentiable ft operations, the steps carry the derivatives too: at the root each step's
    derivative is the implicit function's, 1 / pdf(z), and the steps converge it as they do z."""
    t = fnp.sqrt(-2.0 * fnp.log(p))
    z = -(t - (2.515517 + t * (0.802853 + t * 0.010328)) / (1.0 + t * (1.432788 + t * (0.189269 + t * 0.001308))))
    log_p = fnp.log(p)
    for _ in range(_NEWTON_STEPS):
        log_cdf = log_ndtr(z)
        # dz = (log p - log ndtr(z)) / (pdf(z) / ndtr(z)), the slope written as exp of logs (no underflow)
        z = z + (log_p - log_cdf) * fnp.exp(log_cdf + 0.5 * z * z + 0.91893853320467274178)
    return z


@public
def ndtri(p):
    """The inverse of ndtr: sqrt(2) erfinv(2p - 1) between 0.1 and 0.9; below, Newton's steps on
    log_ndtr (_ndtri_lower_tail), and above, its mirror -ndtri(1 - p) (1 - p exact there). -inf at 0,
    inf at 1, NaN outside [0, 1]. Each branch sees p clamped to its side."""
    p = _floats(p)
    lower, upper = p < _NDTRI_TAIL, p > 1.0 - _NDTRI_TAIL
    central = 1.4142135623730950488 * erfinv(2.0 * fnp.where(lower | upper, 0.5, p) - 1.0)
    tail_p = fnp.where(lower, p, fnp.where(upper, 1.0 - p, _NDTRI_TAIL))
    inside = (tail_p > 0) & (tail_p <= _NDTRI_TAIL)
    tail = _ndtri_lower_tail(fnp.where(inside, tail_p, _NDTRI_TAIL))
    tail = fnp.where(inside, tail, fnp.where(tail_p == 0, -np.inf, np.nan))
    return fnp.where(lower, tail, fnp.where(upper, -tail, central))


__getattr__ = _missing_name_hook(__name__)  # a JAX name not ported yet says so
