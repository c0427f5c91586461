"""Special functions in NumPy alone: erf, erfc, erf_inv, lgamma, digamma, polygamma.

Each takes an array of a floating dtype and returns one of that dtype; the work
is done in float64 (float32 results are the float64 ones rounded). The methods
are textbook ones, chosen so that every branch keeps its relative error at a
few ulps without a table of fitted coefficients:

- erf, erfc: the Maclaurin series for |x| < 1/2; Taylor series of erfc about
  eight centers on [1/2, 5/2] (its derivatives are Hermite polynomials times
  exp(-x^2)); beyond, the continued fraction of erfc, which converges fast
  there. exp(-x^2) is evaluated with x^2 split into an exact product and a
  small rest, so that it keeps its accuracy where x^2 is large.
- erf_inv: a series guess (or the asymptotic inversion of erfc in the tails),
  then Halley steps on erf (on erfc in the tails, where 1 - |y| is exact).
- lgamma, digamma: the series of lgamma(2 + z) and digamma(2 + z) in
  zeta(k) - 1 near 1 and 2 (exact zeros of lgamma there), recurrence and
  Stirling's series elsewhere, reflection for x < 0; digamma about its positive
  zero uses the Taylor series there, in Hurwitz zeta values.
- polygamma(m, x) = (-1)^(m+1) m! zeta(m+1, x), Hurwitz's zeta by
  Euler-Maclaurin summation; x < 0 by reflection (derivatives of pi cot(pi x)).

Accuracy (tests/test_scipy.py checks it against mpmath where installed): a few
ulps in float64 except where a function has a zero that is not one of these
(lgamma's and digamma's negative zeros), where the error is absolute, ~1e-16.
"""
from __future__ import annotations

import math

import numpy as np

from ir.core import array_module

# B_2, B_4, ..., B_22 (Bernoulli numbers)
BERNOULLI = [1 / 6, -1 / 30, 1 / 42, -1 / 30, 5 / 66, -691 / 2730, 7 / 6, -3617 / 510, 43867 / 798,
             -174611 / 330, 854513 / 138]
EULER_GAMMA = 0.57721566490153286061
HALF_LOG_2PI = 0.91893853320467274178
TWO_OVER_SQRT_PI = 1.1283791670955125739
SQRT_PI_OVER_2 = 0.88622692545275801365
# erfc at the centers 0.625, 0.875, ..., 2.375 of the Taylor branch (from mpmath, 40 digits, rounded)
ERFC_CENTERS = np.array([0.376759117811582, 0.21592493894014034, 0.11161176829829224, 0.051829927217909674,
                         0.021556266760016336, 0.00800994232988003, 0.0026540293594823415,
                         0.0007829382178911192])
# digamma's positive zero, as a sum of two doubles (from mpmath)
DIGAMMA_ROOT_HI, DIGAMMA_ROOT_LO = 1.4616321449683622, 9.549995429965697e-17


def _piecewise(x, branches):
    """out[i] = f(x[i]) for the first (condition, f) whose condition holds at i
    (conditions are boolean arrays over x; each f sees only its elements)."""
    xp = array_module(x)
    out = xp.full(x.shape, np.nan)
    taken = xp.zeros(x.shape, bool)
    for condition, f in branches:
        mask = condition & ~taken
        if mask.any():
            out[mask] = f(x[mask])
        taken |= mask
    return out


def _as_float64(x):
    xp = array_module(x)
    x = xp.asarray(x)
    return x, xp.asarray(x, dtype=np.float64).reshape(-1)


def _elementwise(fun):
    """Lift a function of a flat float64 array to any float array, keeping its shape and dtype."""
    def lifted(x, *args):
        x, flat = _as_float64(x)
        with np.errstate(all="ignore"):
            out = fun(flat, *args)
        return out.reshape(x.shape).astype(x.dtype, copy=False)
    lifted.__name__ = fun.__name__
    lifted.__doc__ = fun.__doc__
    return lifted


def exp_neg_square(x):
    """exp(-x^2), accurate where x^2 is large: x = hi + lo with hi of 24 bits,
    so hi^2 is exact and x^2 - hi^2 = lo (x + hi) is small."""
    xp = array_module(x)
    hi = xp.asarray(x, np.float32).astype(np.float64)
    hi = xp.where(xp.isfinite(hi), hi, x)
    lo = x - hi
    return xp.exp(-hi * hi) * xp.exp(-lo * (x + hi))


# -------------------- erf and erfc --------------------

def _erf_series(a):
    """erf by its Maclaurin series, for |a| <= 1/2 (19 terms: 0.25^19 / 19! is far below an ulp)."""
    a2 = a * a
    total = np.zeros_like(a)
    for n in range(19, -1, -1):  # Horner in a^2: sum (-1)^n a^(2n+1) / (n! (2n+1))
        total = total * a2 + (-1) ** n / (math.factorial(n) * (2 * n + 1))
    return TWO_OVER_SQRT_PI * a * total


def _erfc_taylor(a):
    """erfc by its Taylor series about the nearest center c (|a - c| <= 1/8), for
    1/2 <= a <= 5/2: the n-th derivative of erfc is (-1)^n (2/sqrt(pi)) H_(n-1)(c) exp(-c^2)."""
    xp = array_module(a)
    index = xp.clip(xp.floor((a - 0.5) * 4), 0, 7).astype(np.int64)
    c = 0.625 + 0.25 * index
    h = a - c
    # sum_{n>=1} H_(n-1)(c) (-h)^n / n!, with H_(k+1) = 2c H_k - 2k H_(k-1)
    h_prev, h_now = xp.zeros_like(c), xp.ones_like(c)
    term_power = -h  # (-h)^n / n!
    total = h_now * term_power
    for n in range(2, 26):
        h_prev, h_now = h_now, 2 * c * h_now - 2 * (n - 2) * h_prev
        term_power = term_power * (-h) / n
        total = total + h_now * term_power
    return xp.asarray(ERFC_CENTERS)[index] + TWO_OVER_SQRT_PI * xp.exp(-c * c) * total


def _erfc_continued_fraction(a, terms=40):
    """erfc for a >= 5/2: exp(-a^2)/sqrt(pi) 2a / (2a^2 + 1 - 1*2/(2a^2 + 5 - 3*4/(2a^2 + 9 - ...))),
    evaluated from the bottom (40 levels: within an ulp for a >= 2)."""
    z = 2 * a * a
    tail = np.zeros_like(a)
    for n in range(terms, 0, -1):
        tail = (2 * n - 1) * (2 * n) / (z + (4 * n + 1) - tail)
    out = exp_neg_square(a) * (TWO_OVER_SQRT_PI * a) / (z + 1 - tail)
    return np.where(a > 27.3, 0.0, out)  # erfc(27.3) is below the smallest subnormal


def _erfc_positive(a):
    """erfc for a >= 0 (nan stays nan)."""
    return _piecewise(a, [(a < 0.5, lambda v: 1 - _erf_series(v)),
                          (a <= 2.5, _erfc_taylor),
                          (a >= 2.5, _erfc_continued_fraction)])


@_elementwise
def erf(x):
    """The error function, 2/sqrt(pi) times the integral of exp(-t^2) from 0 to x."""
    a = np.abs(x)
    magnitude = _piecewise(a, [(a <= 0.5, _erf_series), (a > 0.5, lambda v: 1 - _erfc_positive(v))])
    return np.where(np.isnan(x), x, np.copysign(magnitude, x))


@_elementwise
def erfc(x):
    """1 - erf(x), accurate where it is small (x large)."""
    a = np.abs(x)
    positive = _erfc_positive(a)
    return np.where(np.isnan(x), x, np.where(x < 0, 2 - positive, positive))


# -------------------- erf_inv --------------------

def _erf_inv_series_coefficients(count):
    """erf_inv(y) = sum_k c_k / (2k + 1) (sqrt(pi) y / 2)^(2k+1), with
    c_0 = 1, c_k = sum_m c_m c_(k-1-m) / ((m + 1)(2m + 1))."""
    c = [1.0]
    for k in range(1, count):
        c.append(sum(c[m] * c[k - 1 - m] / ((m + 1) * (2 * m + 1)) for m in range(k)))
    return [ck / (2 * k + 1) for k, ck in enumerate(c)]


_ERF_INV_SERIES = _erf_inv_series_coefficients(40)


def _halley(x, residual, steps):
    """Halley's steps on erf(x) = target: f'' / f' = -2x for erf and erfc alike,
    so x <- x - u / (1 + x u) with u = f / f'."""
    for _ in range(steps):
        u = residual(x) / (TWO_OVER_SQRT_PI * exp_neg_square(x))
        x = x - u / (1 + x * u)
    return x


def _erf_inv_central(y):
    """|y| <= 0.75: the series (40 terms) as the guess, then one Halley step on erf."""
    w = SQRT_PI_OVER_2 * y
    w2 = w * w
    total = np.zeros_like(y)
    for c in reversed(_ERF_INV_SERIES):
        total = total * w2 + c
    return _halley(w * total, lambda x: erf(x) - y, 2)


def _erf_inv_tail(y):
    """0.75 < |y| < 1: on q = 1 - |y| (exact), x^2 ~ -log(q x sqrt(pi)) as the guess,
    then Halley steps on erfc(x) = q (erfc falls: the step's sign is erf's)."""
    a = np.abs(y)
    q = 1 - a
    t = np.sqrt(-np.log(q))
    for _ in range(3):
        t = np.sqrt(np.maximum(-np.log(q * t * 1.7724538509055160273), 0.25))
    x = _halley(t, lambda v: q - erfc(v), 5)
    return np.copysign(x, y)


@_elementwise
def erf_inv(y):
    """The inverse of erf on (-1, 1): ±inf at ±1, nan outside."""
    a = np.abs(y)
    inner = _piecewise(y, [(a <= 0.75, _erf_inv_central), (a < 1, _erf_inv_tail)])
    return np.where(a == 1, np.copysign(np.inf, y), np.where(a > 1, np.nan, inner))


# -------------------- zeta(k) - 1, and the series about 2 --------------------

def hurwitz_zeta(s, q, direct_terms=10):
    """zeta(s, q) = sum_{k>=0} (q + k)^-s for an int s >= 2 and q > 0, by
    Euler-Maclaurin summation: `direct_terms` terms, then the integral of the
    rest and its corrections in Bernoulli numbers (q + N >= 10: they fall fast)."""
    xp = array_module(q)
    total = xp.zeros_like(q)
    for k in range(direct_terms):
        total = total + (q + k) ** -float(s)
    a = q + direct_terms
    inv = 1 / a
    power = a ** -float(s)  # a^-s
    total = total + power * a / (s - 1) + power / 2
    rising = float(s)  # s (s+1) ... (s + 2j - 2)
    term_power = power * inv  # a^(-s - 2j + 1)
    for j, b in enumerate(BERNOULLI, 1):
        total = total + b / math.factorial(2 * j) * rising * term_power
        rising *= (s + 2 * j - 1) * (s + 2 * j)
        term_power = term_power * inv * inv
    return total


# zeta(k) - 1 = zeta(k, 2), k = 2 .. 61: 0.5^60 is below an ulp of the series' terms
ZETA_MINUS_ONE = [float(hurwitz_zeta(k, np.float64(2.0))) for k in range(2, 62)]


def _lgamma_near_2(z):
    """lgamma(2 + z) = (1 - gamma) z + sum_{k>=2} (-1)^k (zeta(k) - 1) z^k / k, |z| <= 1/2:
    zero at z = 0 with the right slope, so accurate in relative terms at lgamma's zero 2."""
    total = np.zeros_like(z)
    for k in range(len(ZETA_MINUS_ONE) + 1, 1, -1):
        total = total * z + (-1) ** k * ZETA_MINUS_ONE[k - 2] / k
    return z * ((1 - EULER_GAMMA) + z * total)


def _digamma_near_2(z):
    """digamma(2 + z) = 1 - gamma + sum_{k>=2} (-1)^k (zeta(k) - 1) z^(k-1), |z| <= 1/2."""
    total = np.zeros_like(z)
    for k in range(len(ZETA_MINUS_ONE) + 1, 1, -1):
        total = total * z + (-1) ** k * ZETA_MINUS_ONE[k - 2]
    return (1 - EULER_GAMMA) + z * total


# -------------------- lgamma --------------------

def _stirling_correction(x):
    """lgamma(x) - ((x - 1/2) log x - x + log(2 pi)/2) for x >= 10: sum B_2k / (2k (2k-1) x^(2k-1))."""
    inv = 1 / x
    inv2 = inv * inv
    series = np.zeros_like(x)
    for k in range(8, 0, -1):
        series = series * inv2 + BERNOULLI[k - 1] / (2 * k * (2 * k - 1))
    return series * inv


def _stirling(x):
    """lgamma(x) for x >= 10: (x - 1/2) log x - x + log(2 pi)/2 + _stirling_correction(x)."""
    big = x > 1e17  # the series is below an ulp; (x - 1/2) log x - x stays finite as long as it can
    return np.where(big, x * (np.log(x) - 1), (x - 0.5) * np.log(x) - x + HALF_LOG_2PI + _stirling_correction(x))


def _lgamma_shifted_down(x):
    """2.5 <= x < 10: lgamma(x - n) + log((x-1) (x-2) ... (x-n)), x - n in [1.5, 2.5):
    every term positive, so nothing cancels."""
    product = np.ones_like(x)
    shifted = x.copy()
    for _ in range(8):
        above = shifted >= 2.5
        shifted = np.where(above, shifted - 1, shifted)
        product = np.where(above, product * shifted, product)
    return _lgamma_near_2(shifted - 2) + np.log(product)


def _lgamma_positive(x):
    return _piecewise(x, [
        (x < 0.5, lambda v: _lgamma_near_2(v) - np.log1p(v) - np.log(v)),      # lgamma(1 + v) - log v
        (x < 1.5, lambda v: _lgamma_near_2(v - 1) - np.log1p(v - 1)),           # lgamma(2 + z) - log(1 + z)
        (x < 2.5, lambda v: _lgamma_near_2(v - 2)),
        (x < 10, _lgamma_shifted_down),
        (x >= 10, _stirling)])


def _sin_pi(x):
    """|sin(pi x)|, exact at the integers: reduced to r = x - round(x) in [-1/2, 1/2]."""
    r = x - np.round(x)
    return np.abs(np.sin(np.pi * r))


@_elementwise
def lgamma(x):
    """log |Gamma(x)|: +inf at 0 and the negative integers (and at ±inf, as C's lgamma)."""
    positive = x > 0
    pole = (x <= 0) & (x == np.floor(x))
    a = np.where(positive, x, 1 - x)  # reflection: Gamma(x) Gamma(1 - x) = pi / sin(pi x)
    value = _lgamma_positive(np.where(np.isfinite(a), a, 1.0))
    value = np.where(np.isfinite(a), value, np.inf)
    # NB: x < -2^52 are even integers (poles); below, nothing here is large enough to overflow
    reflected = np.log(np.pi / _sin_pi(x)) - value
    out = np.where(positive, value, reflected)
    out = np.where(pole | np.isinf(x), np.inf, out)
    return np.where(np.isnan(x), x, out)


# -------------------- digamma --------------------

def _digamma_asymptotic(x):
    """digamma(x) for x >= 10: log x - 1/(2x) - sum B_2k / (2k x^2k)."""
    inv2 = 1 / (x * x)
    series = np.zeros_like(x)
    for k in range(8, 0, -1):
        series = series * inv2 + BERNOULLI[k - 1] / (2 * k)
    return np.log(x) - 0.5 / x - series * inv2


def _digamma_shifted_up(x):
    """2.5 <= x < 10: digamma(x + n) - sum 1/(x + k), x + n >= 10."""
    total = np.zeros_like(x)
    shifted = x.copy()
    for _ in range(8):
        below = shifted < 10
        total = np.where(below, total + 1 / shifted, total)
        shifted = np.where(below, shifted + 1, shifted)
    return _digamma_asymptotic(shifted) - total


# Taylor coefficients of digamma about its positive zero x0: digamma^(n)(x0) / n! = (-1)^(n+1) zeta(n+1, x0)
_ROOT_SERIES = [(-1) ** (n + 1) * float(hurwitz_zeta(n + 1, np.float64(DIGAMMA_ROOT_HI))) for n in range(1, 30)]


def _digamma_near_root(x):
    """|x - x0| <= 1/4: the series about the zero (x0 = hi + lo: h keeps its relative accuracy)."""
    h = (x - DIGAMMA_ROOT_HI) - DIGAMMA_ROOT_LO
    total = np.zeros_like(x)
    for c in reversed(_ROOT_SERIES):
        total = total * h + c
    return h * total


def _digamma_positive(x):
    return _piecewise(x, [
        (np.abs(x - DIGAMMA_ROOT_HI) <= 0.25, _digamma_near_root),
        (x < 0.5, lambda v: _digamma_near_2(v) - 1 / (v + 1) - 1 / v),  # digamma(v + 2) - 1/(v+1) - 1/v
        (x < 1.5, lambda v: _digamma_near_2(v - 1) - 1 / v),
        (x < 2.5, lambda v: _digamma_near_2(v - 2)),
        (x < 10, _digamma_shifted_up),
        (x >= 10, _digamma_asymptotic)])


def _cot_pi(x):
    """cot(pi x) on r = x - round(x), so that it is exact near the integers."""
    r = x - np.round(x)
    return np.cos(np.pi * r) / np.sin(np.pi * r)


@_elementwise
def digamma(x):
    """d/dx lgamma(x): nan at the negative integers and -inf; at 0, -inf from above and +inf from below."""
    positive = x > 0
    a = np.where(positive, x, 1 - x)  # reflection: digamma(1 - x) - digamma(x) = pi cot(pi x)
    value = _digamma_positive(np.where(np.isfinite(a), a, 1.0))
    value = np.where(np.isinf(a), np.inf, value)
    reflected = value - np.pi * _cot_pi(x)
    out = np.where(positive, value, reflected)
    out = np.where((x < 0) & (x == np.floor(x)), np.nan, out)
    out = np.where(x == 0, np.where(np.signbit(x), np.inf, -np.inf), out)
    out = np.where(x == -np.inf, np.nan, out)
    return np.where(np.isnan(x), x, out)


# -------------------- polygamma --------------------

def _cot_derivative_polynomials(m):
    """P_m with d^m/dx^m cot(pi x) = pi^m P_m(cot(pi x)): P_0 = c, P_(k+1) = -(1 + c^2) P_k'(c)
    (coefficients lowest power first)."""
    p = [0.0, 1.0]
    for _ in range(m):
        dp = [i * p[i] for i in range(1, len(p))]
        # -(1 + c^2) dp
        q = [0.0] * (len(dp) + 2)
        for i, coefficient in enumerate(dp):
            q[i] -= coefficient
            q[i + 2] -= coefficient
        p = q
    return p


def _polygamma_positive(x, m):
    return (-1) ** (m + 1) * math.factorial(m) * hurwitz_zeta(m + 1, x)


def _polygamma(x, m):
    """The m-th derivative of digamma (m >= 1). As SciPy's: (-1)^(m+1) inf at the poles (the
    non-positive integers) and at -inf, (-1)^(m+1) 0 at +inf."""
    positive = x > 0
    a = np.where(positive, x, 1 - x)
    value = _polygamma_positive(np.where(np.isfinite(a), a, 1.0), m)
    value = np.where(np.isinf(a), 0.0, value)
    # reflection, differentiated m times: (-1)^m psi^(m)(1 - x) - psi^(m)(x) = pi d^m/dx^m cot(pi x)
    c = _cot_pi(x)
    poly = np.zeros_like(x)
    for coefficient in reversed(_cot_derivative_polynomials(m)):
        poly = poly * c + coefficient
    reflected = (-1) ** m * value - np.pi ** (m + 1) * poly
    out = np.where(positive, value, reflected)
    pole = (x <= 0) & (x == np.floor(x))
    sign = (-1.0) ** (m + 1)
    out = np.where(pole | (x == -np.inf), sign * np.inf, out)
    out = np.where(x == np.inf, sign * 0.0, out)
    return np.where(np.isnan(x), x, out)


polygamma = _elementwise(_polygamma)


# -------------------- the incomplete gamma and beta functions --------------------
#
# P(a, x) = gamma(a, x) / Gamma(a) and Q = 1 - P, as Cephes (and SciPy) compute them:
# P's power series x^a e^-x / Gamma(a + 1) sum_n x^n / ((a+1) ... (a+n)) where x <= 1 or
# x <= a; Q's continued fraction (its forward recurrence, rescaled) where x > 1.1 and x > a;
# in between (x <= 1.1, small a), Q = 1 - x^a / Gamma(a + 1) - x^a / Gamma(a) sum_{n>=1}
# (-x)^n / (n! (a + n)) (DLMF 8.7.3), which keeps Q's relative accuracy where P is near 1.
# Each function computes the other one's complement only where that one is not small.
# d/da by differentiating the series and the recurrence term by term (as JAX does).
# The prefactor x^a e^-x / Gamma(a) is exp of a difference of terms of size ~a log a:
# its relative error grows as a few ulps times a log a (1e-14 at a ~ 50, 1e-12 at a ~ 1e4).

MAX_SERIES_TERMS = 40_000  # x ~ a needs ~9 sqrt(a) terms: enough up to LARGE_A
# Above, P and Q by Temme's uniform asymptotic expansion to its first correction (error ~a^-3/2,
# 1e-11 at 1e7), where the series' prefactor has lost ~a log a ulps (1e-8 there) anyway; the
# derivatives by holding the quantile fixed (_random_gamma_grad_large_a: relative error ~1/a)
LARGE_A = 1e7
FAR_TAIL = 1e8  # x / max(a, 1) from which random_gamma_grad takes Q's asymptotic series
EPS64 = float(np.finfo(np.float64).eps)
UNDERFLOW = -746.0  # exp of less is 0 in float64


def lgamma1p(a):
    """lgamma(1 + a), accurate near a = 0 and a = 1 (lgamma's zeros), for a > -1/2."""
    return _piecewise(a, [(a <= 0.5, lambda v: _lgamma_near_2(v) - np.log1p(v)),
                          (a <= 1.5, lambda v: _lgamma_near_2(v - 1)),
                          (a > 0.5, lambda v: lgamma(1 + v))])


def _each_until(state, step, limit=MAX_SERIES_TERMS):
    """Run `step(state) -> (state, converged)` on the elements not converged yet
    (a dict of equal-length flat arrays; each element stops on its own). The steps count
    an element whose convergence test is NaN as converged: its sum or fraction is NaN,
    and would stay NaN for every remaining term."""
    active = np.arange(len(next(iter(state.values()))))
    current = dict(state)
    for _ in range(limit):
        if active.size == 0:
            break
        current, done = step(current)
        if done.any():
            keep = ~done
            for key, value in current.items():
                state[key][active[done]] = value[done]
                current[key] = value[keep]
            active = active[keep]
    for key, value in current.items():  # the ones that never converged: their last values
        state[key][active] = value
    return state


def _p_series(a, x, derivative=False):
    """(sum, d sum / da) of P's series: sum_n c_n with c_0 = 1, c_n = c_(n-1) x / (a + n)."""
    ones = np.ones_like(a)
    state = dict(r=a.copy(), c=ones.copy(), s=ones.copy(), dc=np.zeros_like(a), ds=np.zeros_like(a),
                 a=a, x=x)

    def step(v):
        r = v["r"] + 1
        dc = v["dc"] * (v["x"] / r) - v["c"] * v["x"] / (r * r)
        c = v["c"] * (v["x"] / r)
        s, ds = v["s"] + c, v["ds"] + dc
        done = ~(c > EPS64 * s / 2)
        if derivative:
            done &= ~(np.abs(dc) > EPS64 / 2 * np.abs(ds))
        return dict(r=r, c=c, s=s, dc=dc, ds=ds, a=v["a"], x=v["x"]), done

    out = _each_until(state, step)
    return out["s"], out["ds"]


def _q_continued_fraction(a, x, derivative=False):
    """(F, dF/da) with Q = x^a e^-x / Gamma(a) F: the continued fraction of Cephes' igamc,
    by its forward recurrence p_k / q_k (rescaled as it grows), and its derivative in a."""
    y = 1 - a
    z = x + y + 1
    zeros = np.zeros_like(a)
    state = dict(c=zeros.copy(), y=y, z=z, pkm2=np.ones_like(a), qkm2=x.copy(), pkm1=x + 1, qkm1=z * x,
                 dpkm2=zeros.copy(), dqkm2=zeros.copy(), dpkm1=zeros.copy(), dqkm1=-x, a=a, x=x)
    state["ans"] = state["pkm1"] / state["qkm1"]
    state["dans"] = (state["dpkm1"] - state["ans"] * state["dqkm1"]) / state["qkm1"]

    def step(v):
        c, y, z = v["c"] + 1, v["y"] + 1, v["z"] + 2
        yc = y * c
        pk = v["pkm1"] * z - v["pkm2"] * yc
        qk = v["qkm1"] * z - v["qkm2"] * yc
        dpk = v["dpkm1"] * z - v["pkm1"] - v["dpkm2"] * yc + v["pkm2"] * c
        dqk = v["dqkm1"] * z - v["qkm1"] - v["dqkm2"] * yc + v["qkm2"] * c
        nonzero = qk != 0
        safe_qk = np.where(nonzero, qk, 1)
        r = pk / safe_qk
        t = np.where(nonzero, np.abs((v["ans"] - r) / r), 1)
        ans = np.where(nonzero, r, v["ans"])
        dans = np.where(nonzero, (dpk - ans * dqk) / safe_qk, v["dans"])
        done = ~(t > EPS64 / 2)
        if derivative:
            done &= ~(np.abs(dans - v["dans"]) > EPS64 / 2 * np.abs(dans))
        big = np.abs(pk) > 1 / EPS64
        scale = np.where(big, EPS64, 1.0)
        new = dict(c=c, y=y, z=z, pkm2=v["pkm1"] * scale, qkm2=v["qkm1"] * scale, pkm1=pk * scale,
                   qkm1=qk * scale, dpkm2=v["dpkm1"] * scale, dqkm2=v["dqkm1"] * scale, dpkm1=dpk * scale,
                   dqkm1=dqk * scale, a=v["a"], x=v["x"], ans=ans, dans=dans)
        return new, done

    out = _each_until(state, step, limit=MAX_SERIES_TERMS)
    return out["ans"], out["dans"]


def _q_series(a, x):
    """Q for x <= 1.1 and a small (DLMF 8.7.3): -expm1(a log x - lgamma(1 + a)) minus
    x^a / Gamma(a) sum_{n>=1} (-x)^n / (n! (a + n))."""
    state = dict(n=np.zeros_like(a), fac=np.ones_like(a), s=np.zeros_like(a), a=a, x=x)

    def step(v):
        n = v["n"] + 1
        fac = v["fac"] * (-v["x"] / n)
        term = fac / (v["a"] + n)
        s = v["s"] + term
        return dict(n=n, fac=fac, s=s, a=v["a"], x=v["x"]), ~(np.abs(term) > EPS64 / 2 * np.abs(s))

    s = _each_until(state, step)["s"]
    log_x = np.log(x)
    return -np.expm1(a * log_x - lgamma1p(a)) - np.exp(a * log_x - lgamma(a)) * s


def _log_prefactor(a, x):
    """log(x^a e^-x / Gamma(a))."""
    return a * np.log(x) - x - lgamma(a)


def _p_by_series(a, x):
    """P by its series; 0 without summing where the prefactor times (a + 1) (a bound of the sum) underflows."""
    log_prefactor = a * np.log(x) - x - lgamma1p_or_lgamma(a)
    out = np.zeros_like(a)
    keep = log_prefactor + np.log1p(a) > UNDERFLOW
    s, _ = _p_series(a[keep], x[keep])
    out[keep] = s * np.exp(log_prefactor[keep])
    return out


def _minus_log1p(u):
    """u - log1p(u), u > -1, without the cancellation near 0: sum_k>=2 (-1)^k u^k / k there."""
    small = np.abs(u) < 0.1
    series = np.zeros_like(u)
    for k in range(30, 1, -1):
        series = series * u + (-1) ** k / k
    return np.where(small, series * u * u, u - np.log1p(u))


def _temme(a, x):
    """(P, Q) for large a (Temme, DLMF 8.12.3-8.12.8): with lambda = x/a and a eta^2/2 =
    a (lambda - 1 - log lambda), Q = erfc(eta sqrt(a/2))/2 + R and P = erfc(-eta sqrt(a/2))/2 - R,
    R = exp(-a eta^2/2) / sqrt(2 pi a) c_0(eta), c_0 = 1/(lambda - 1) - 1/eta (-1/3 + eta/12 - 2 eta^2/135 near 0)."""
    u = x / a - 1
    d = _minus_log1p(u)
    eta = np.sign(u) * np.sqrt(2 * d)
    near = np.abs(eta) < 1e-2
    safe_u, safe_eta = np.where(near, 1.0, u), np.where(near, 1.0, eta)
    c0 = np.where(near, -1 / 3 + eta / 12 - 2 * eta * eta / 135, 1 / safe_u - 1 / safe_eta)
    r = np.exp(-a * d) / np.sqrt(2 * np.pi * a) * c0
    root = eta * np.sqrt(a / 2)
    return erfc(-root) / 2 - r, erfc(root) / 2 + r


def lgamma1p_or_lgamma(a):
    """lgamma(1 + a) for a > 0: lgamma1p (its zeros kept) below 1.5, lgamma(1 + a) above."""
    return _piecewise(a, [(a <= 1.5, lgamma1p), (a > 1.5, lambda v: lgamma(1 + v))])


def _q_by_continued_fraction(a, x):
    """Q by its continued fraction where x^a e^-x / Gamma(a) does not underflow (0 where it does:
    the fraction is below 1 there, and its recurrence would overflow for x beyond ~1e154)."""
    log_prefactor = _log_prefactor(a, x)
    out = np.zeros_like(a)
    keep = log_prefactor > UNDERFLOW
    f, _ = _q_continued_fraction(a[keep], x[keep])
    out[keep] = f * np.exp(log_prefactor[keep])
    return out


def _q_small_x_uses_series(a, x):
    """Where Cephes' igamc takes 1 - P's series for x <= 1.1 (elsewhere there: _q_series)."""
    with np.errstate(all="ignore"):
        return np.where(x <= 0.5, -0.4 / np.log(x) < a, x * 1.1 < a)


def _incomplete_gamma_edges(a, x, value_at_zero, value_at_a_zero, value_at_infinity, value_at_a_infinity):
    """(result with the edge values filled, mask of the finite interior 0 < x < inf, 0 < a < inf)."""
    nan = np.isnan(a) | np.isnan(x) | (a < 0) | (x < 0) | ((a == 0) & (x == 0)) | (np.isinf(a) & np.isinf(x))
    out = np.full(a.shape, np.nan)
    out = np.where(x == 0, value_at_zero, out)
    out = np.where((a == 0) & (x > 0), value_at_a_zero, out)
    out = np.where(np.isinf(x) & (a > 0), value_at_infinity, out)
    out = np.where(np.isinf(a) & (x > 0), value_at_a_infinity, out)
    out = np.where(nan, np.nan, out)
    interior = ~nan & (x > 0) & (a > 0) & np.isfinite(x) & np.isfinite(a)
    return out, interior


def _broadcast_flat(*args):
    """The operands broadcast together, as flat float64 arrays, and the shape and dtype of the result."""
    xp = array_module(*args)
    arrays = [xp.asarray(v) for v in args]
    dtype = np.result_type(*arrays)
    shape = np.broadcast_shapes(*(v.shape for v in arrays))
    flats = [xp.broadcast_to(xp.asarray(v, dtype=np.float64), shape).reshape(-1).copy() for v in arrays]
    return flats, shape, dtype


def _elementwise_nary(fun):
    """Lift a function of flat float64 arrays (of one length) to float arrays that broadcast."""
    def lifted(*args):
        flats, shape, dtype = _broadcast_flat(*args)
        with np.errstate(all="ignore"):
            out = fun(*flats)
        return np.asarray(out).reshape(shape).astype(dtype, copy=False)
    lifted.__name__ = fun.__name__
    lifted.__doc__ = fun.__doc__
    return lifted


@_elementwise_nary
def igamma(a, x):
    """The regularized lower incomplete gamma function P(a, x) = gamma(a, x) / Gamma(a):
    nan for a < 0, x < 0, a = x = 0 and a = x = inf; 0 at x = 0, 1 at a = 0 (x > 0) and x = inf,
    0 at a = inf (as SciPy's gammainc)."""
    out, interior = _incomplete_gamma_edges(a, x, 0.0, 1.0, 1.0, 0.0)
    large = interior & (a > LARGE_A)
    out[large] = _temme(a[large], x[large])[0]
    interior &= ~large
    by_q = interior & (x > 1) & (x > a)
    q_cf = by_q & (x > 1.1)
    out[interior & ~by_q] = _p_by_series(a[interior & ~by_q], x[interior & ~by_q])
    out[q_cf] = 1 - _q_by_continued_fraction(a[q_cf], x[q_cf])
    q_small = by_q & ~q_cf
    out[q_small] = 1 - _q_series(a[q_small], x[q_small])
    return np.minimum(out, 1.0)  # a series summing to ~1 can round to 1 + ulp (P(1e-20, 1)); NaN stays NaN


@_elementwise_nary
def igammac(a, x):
    """The regularized upper incomplete gamma function Q(a, x) = 1 - P(a, x) (edges as P's complement)."""
    out, interior = _incomplete_gamma_edges(a, x, 1.0, 0.0, 0.0, 1.0)
    large = interior & (a > LARGE_A)
    out[large] = _temme(a[large], x[large])[1]
    interior &= ~large
    large_x = x > 1.1
    by_p = interior & np.where(large_x, x < a, _q_small_x_uses_series(a, x))
    cf = interior & large_x & ~by_p
    small = interior & ~large_x & ~by_p
    out[by_p] = 1 - _p_by_series(a[by_p], x[by_p])
    out[cf] = _q_by_continued_fraction(a[cf], x[cf])
    out[small] = _q_series(a[small], x[small])
    return np.minimum(out, 1.0)  # (as igamma's)


def _random_gamma_grad_large_a(a, x):
    """d x / d a holding the quantile fixed, for large a. Within 1% of the mean, holding z fixed in
    Wilson-Hilferty's x = a (1 - 1/(9a) + z / (3 sqrt a))^3 (1e-11 relative in the bulk at a = 1e7, but
    wrong in sign from x = 27a); farther out, holding eta sqrt(a) fixed in Temme's P = erfc(-eta
    sqrt(a/2))/2, eta^2/2 = lambda - 1 - log lambda with lambda = x/a: lambda log(lambda) / (lambda - 1),
    ~0.17/a relative (log lambda far in the upper tail, as the asymptotic series; in the lower tail
    written x (log x - log a) / (x - a), as x/a may underflow)."""
    lam = x / a
    u = lam - 1
    bulk = np.abs(u) <= 0.01
    w = np.cbrt(lam)
    z = (w - 1 + 1 / (9 * a)) * 3 * np.sqrt(a)
    a_dw = 1 / (9 * a) - z / (6 * np.sqrt(a))  # a dw/da, which does not overflow where a does
    tail = np.where(x > a, lam * np.log(lam) / np.where(bulk, 1.0, u),
                    x * (np.log(x) - np.log(a)) / np.where(bulk, 1.0, x - a))
    return np.where(bulk, w ** 3 + 3 * w * w * a_dw, tail)


def _gamma_derivative_parts(a, x):
    """For the finite interior: (d, by_cf) where by_cf marks the continued fraction's elements and
    d = (log x - digamma(a + 1)) S + dS/da on the series' (P = x^a e^-x / Gamma(a+1) S) and
    (log x - digamma(a)) F + dF/da on the fraction's (Q = x^a e^-x / Gamma(a) F)."""
    by_cf = (x > 1) & (x > a)
    d = np.empty_like(a)
    s, ds = _p_series(a[~by_cf], x[~by_cf], derivative=True)
    d[~by_cf] = (np.log(x[~by_cf]) - digamma(a[~by_cf] + 1)) * s + ds
    f, df = _q_continued_fraction(a[by_cf], x[by_cf], derivative=True)
    d[by_cf] = (np.log(x[by_cf]) - digamma(a[by_cf])) * f + df
    return d, by_cf


@_elementwise_nary
def igamma_grad_a(a, x):
    """dP(a, x)/da: nan for a <= 0, x < 0 and nan operands; 0 at x = 0 and (a finite) at x = inf,
    and where x^a e^-x / Gamma(a) underflows."""
    nan = np.isnan(a) | np.isnan(x) | (a <= 0) | (x < 0) | np.isinf(a)
    out = np.where(nan, np.nan, 0.0)
    interior = ~nan & (x > 0) & np.isfinite(x) & (_log_prefactor(a, x) > UNDERFLOW)
    large = interior & (a > LARGE_A)
    out[large] = -_random_gamma_grad_large_a(a[large], x[large]) * np.exp(_log_prefactor(a[large], x[large])
                                                                          - np.log(x[large]))
    interior &= ~large
    ai, xi = a[interior], x[interior]
    d, by_cf = _gamma_derivative_parts(ai, xi)
    log_prefactor = _log_prefactor(ai, xi)
    out[interior] = np.where(by_cf, -np.exp(log_prefactor) * d, np.exp(log_prefactor - np.log(ai)) * d)
    return out


@_elementwise_nary
def random_gamma_grad(a, x):
    """The derivative in a of a Gamma(a, 1) sample x, holding its quantile P(a, x) fixed:
    -(dP/da) / (dP/dx) (as jax.lax.random_gamma_grad). nan for a <= 0, x < 0, x = inf and nan
    operands; 0 at x = 0. Neither factor's x^a e^-x / Gamma(a) is formed, so nothing underflows."""
    nan = np.isnan(a) | np.isnan(x) | (a <= 0) | (x < 0) | np.isinf(a) | np.isinf(x)
    out = np.where(nan, np.nan, 0.0)
    interior = ~nan & (x > 0)
    # far in the upper tail, (log x - digamma(a)) S + dS/da with Q's asymptotic series S = 1 + (a - 1)/x
    # + (a - 1)(a - 2)/x^2 + ..., to its first term (the next is below an ulp): there the continued
    # fraction's recurrence overflows (NaN from x ~ 5e15), and Wilson-Hilferty's quantile is far off
    far = interior & (x >= FAR_TAIL * np.maximum(a, 1))
    af, xf = a[far], x[far]
    out[far] = (np.log(xf) - digamma(af)) * (1 + (af - 1) / xf) + 1 / xf
    interior &= ~far
    large = interior & (a > LARGE_A)
    out[large] = _random_gamma_grad_large_a(a[large], x[large])
    interior &= ~large
    ai, xi = a[interior], x[interior]
    d, by_cf = _gamma_derivative_parts(ai, xi)
    out[interior] = np.where(by_cf, xi * d, -xi / ai * d)
    return out


# -------------------- the regularized incomplete beta function --------------------

TINY = 1e-300
# The continued fraction's front, exp of terms of size ~ a + b, loses ~(a + b) ulps (1e-9 at 1e7), and
# the fraction itself takes ~(a + b)^1/3 steps (2,000 at 1e8). Past these bounds, asymptotic forms
# (betainc): the incomplete gamma limit where one parameter is BETA_AS_GAMMA times the other's 3/2
# power, and Temme's expansion where both are BETA_LARGE or more, within BETA_LARGE_RATIO of each
# other (relative error 5e-13 at a = b = 1e6, 2e-11 at (1e6, 1e8), 1e-14 at a = b = 1e7).
BETA_AS_GAMMA = 1e8
BETA_LARGE = 1e6
BETA_LARGE_RATIO = 100


def _beta_continued_fraction(a, b, x):
    """The continued fraction of I_x(a, b) (DLMF 8.17.22) by the modified Lentz method:
    I_x(a, b) = x^a (1 - x)^b / (a B(a, b)) / (1 + d_1 / (1 + d_2 / (1 + ...))), with
    d_(2m+1) = -(a + m)(a + b + m) x / ((a + 2m)(a + 2m + 1)), d_(2m) = m (b - m) x / ((a + 2m - 1)(a + 2m))."""
    d = 1 - (a + b) * x / (a + 1)
    d = 1 / np.where(np.abs(d) < TINY, TINY, d)
    state = dict(m=np.zeros_like(a), c=np.ones_like(a), d=d, h=d.copy(), a=a, b=b, x=x)

    def step(v):
        m, a, b, x = v["m"] + 1, v["a"], v["b"], v["x"]
        c, d, h = v["c"], v["d"], v["h"]
        for numerator in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                          -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1 + numerator * d
            d = 1 / np.where(np.abs(d) < TINY, TINY, d)
            c = 1 + numerator / c
            c = np.where(np.abs(c) < TINY, TINY, c)
            delta = c * d
            h = h * delta
        return dict(m=m, c=c, d=d, h=h, a=a, b=b, x=x), ~(np.abs(delta - 1) > EPS64 / 2)

    return _each_until(state, step)["h"]


def _beta_temme(a, b, x):
    """I_x(a, b) for a and b both large (Temme, DLMF 8.18.8-8.18.12): with n = a + b, x0 = a/n
    and eta^2/2 = x0 (u - log1p u) + (1 - x0)(v - log1p v), u = (x - x0)/x0, v = (x0 - x)/(1 - x0),
    eta of x - x0's sign, I = erfc(-eta sqrt(n/2))/2 + exp(-n eta^2/2) / sqrt(2 pi n) c_0(eta),
    c_0 = 1/eta - sqrt(x0 (1 - x0)) / (x - x0) ((1 - 2 x0) / (3 sqrt(x0 (1 - x0))) near eta = 0).
    n is kept as a (1 + b/a), which overflows only where its products do."""
    scale = 1 + b / a  # n / a
    x0, y0 = 1 / scale, 1 / (1 + a / b)  # y0 = 1 - x0 without its rounding near x0 = 1
    d = x - x0
    half_eta2 = x0 * _minus_log1p(d / x0) + y0 * _minus_log1p(-d / y0)
    eta = np.sign(d) * np.sqrt(2 * half_eta2)
    spread = np.sqrt(x0 * y0)
    near = np.abs(eta) < 1e-5
    safe_eta, safe_d = np.where(near, 1.0, eta), np.where(near, 1.0, d)
    c0 = np.where(near, (y0 - x0) / (3 * spread), 1 / safe_eta - spread / safe_d)
    root_half_n = np.sqrt(a / 2) * np.sqrt(scale)
    correction = np.exp(-(a * half_eta2) * scale) / (np.sqrt(2 * np.pi) * root_half_n * np.sqrt(2)) * c0
    return erfc(-eta * root_half_n) / 2 + correction


def _log_beta(a, b):
    """log B(a, b) for a, b > 0. Where the larger, L, is 10 or more, lgamma's sum would cancel
    (and be inf - inf past 1e305): Stirling's form with the large logarithms combined,
    c(L) - c(L + s) - (L - 1/2) log1p(s/L) (c: _stirling_correction; 0 where L + s overflows),
    plus s log(s / (L + s)) + log(2 pi / s)/2 + c(s) where the smaller, s, is 10 or more too,
    and lgamma(s) - s log(L + s) + s where it is not."""
    large, small = np.maximum(a, b), np.minimum(a, b)
    out = np.empty_like(large)
    direct = large < 10
    out[direct] = lgamma(large[direct]) + lgamma(small[direct]) - lgamma(large[direct] + small[direct])
    for both_large in (True, False):
        where = ~direct & ((small >= 10) == both_large)
        big, little = large[where], small[where]
        ratio = little / big
        shared = _stirling_correction(big) - _stirling_correction(big + little) - (big - 0.5) * np.log1p(ratio)
        if both_large:
            out[where] = (shared + little * (np.log(ratio) - np.log1p(ratio)) + 0.5 * np.log(2 * np.pi / little)
                          + _stirling_correction(little))
        else:
            out[where] = shared + lgamma(little) - little * (np.log(big) + np.log1p(ratio)) + little
    return out


@_elementwise_nary
def betainc(a, b, x):
    """The regularized incomplete beta function I_x(a, b), as jax.lax.betainc and SciPy's betainc:
    nan for a < 0, b < 0, x outside [0, 1], a = b = 0 and nan operands; where a = 0 or b = inf
    (all the mass at 0) 1 for x > 0 and 0 at x = 0; where b = 0 or a = inf (all at 1) 0 for x < 1
    and 1 at x = 1. Where x > (a + 1)/(a + b + 2) by I_x(a, b) = 1 - I_(1-x)(b, a)."""
    mass_at_0 = (a == 0) | (b == np.inf)
    mass_at_1 = (b == 0) | (a == np.inf)
    nan = (np.isnan(a) | np.isnan(b) | np.isnan(x) | (a < 0) | (b < 0) | (x < 0) | (x > 1)
           | (mass_at_0 & mass_at_1))
    out = np.where(x == 0, 0.0, np.where(x == 1, 1.0, np.nan))
    out = np.where(mass_at_0, np.where(x > 0, 1.0, 0.0), out)
    out = np.where(mass_at_1, np.where(x < 1, 0.0, 1.0), out)
    out = np.where(nan, np.nan, out)
    interior = ~nan & ~mass_at_0 & ~mass_at_1 & (x > 0) & (x < 1)
    # b very much larger than a: the incomplete gamma function, P(a, -(b + (a - 1)/2) log1p(-x)), whose
    # error is of the order of a^3 / b^2 (1e-16 at the bound); a very much larger than b: the same, mirrored
    b_large = interior & (b >= BETA_AS_GAMMA * np.maximum(a, 1) ** 1.5)
    a_large = interior & (a >= BETA_AS_GAMMA * np.maximum(b, 1) ** 1.5)
    out[b_large] = igamma(a[b_large], -(b[b_large] + (a[b_large] - 1) / 2) * np.log1p(-x[b_large]))
    out[a_large] = igammac(b[a_large], -(a[a_large] + (b[a_large] - 1) / 2) * np.log(x[a_large]))
    both_large = (interior & ~b_large & ~a_large & (np.minimum(a, b) >= BETA_LARGE)
                  & (np.maximum(a, b) <= BETA_LARGE_RATIO * np.minimum(a, b)))
    out[both_large] = _beta_temme(a[both_large], b[both_large], x[both_large])
    interior &= ~(b_large | a_large | both_large)
    ai, bi, xi = a[interior], b[interior], x[interior]
    swap = xi >= (ai + 1) / (ai + bi + 2)
    p, q, y = np.where(swap, bi, ai), np.where(swap, ai, bi), np.where(swap, 1 - xi, xi)
    log_front = ai * np.log(xi) + bi * np.log1p(-xi) - _log_beta(ai, bi)  # the same with (b, a, 1 - x)
    front = np.exp(log_front - np.log(p))
    # where the front underflows the value is 0 whatever the fraction, whose convergence
    # takes longest there (a or b huge): it is not computed
    fraction = np.zeros_like(front)
    needed = front != 0
    fraction[needed] = _beta_continued_fraction(p[needed], q[needed], y[needed])
    value = front * fraction
    out[interior] = np.where(swap, 1 - value, value)
    return out
