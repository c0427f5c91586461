"""Reference distribution functions for tests/test_random.py, computed here with NumPy and Python's
math module alone (no SciPy): the regularized incomplete gamma and beta functions by their power
series (the gamma series has positive terms only; the beta series is used where x <= 1/2 and the
symmetry I_x(a, b) = 1 - I_{1-x}(b, a) elsewhere), and the CDFs of the samplers built from them.
test_random.py checks these against SciPy's values, written there as literals.
"""
from __future__ import annotations

import math

import numpy as np

_erf = np.vectorize(math.erf, otypes=[np.float64])
_lgamma = np.vectorize(math.lgamma, otypes=[np.float64])


def normal_cdf(x):
    return 0.5 * (1 + _erf(np.asarray(x, np.float64) / math.sqrt(2)))


def gamma_cdf(a, x=None, log_x=None):
    """P(a, x) = the integral of t^(a-1) e^-t / Gamma(a) from 0 to x (give log_x for x that underflow):
    x^a e^-x / Gamma(a + 1) * sum_n x^n / ((a + 1) ... (a + n)), summed until the terms are below 1e-17
    of the sum (for x < a + 1 that is soon; for larger x the terms first grow, up to about e^x)."""
    log_x = np.log(np.asarray(x, np.float64)) if log_x is None else np.asarray(log_x, np.float64)
    x = np.exp(log_x)
    total = np.ones_like(x)
    term = np.ones_like(x)
    n = 0
    while True:
        n += 1
        term = term * x / (a + n)
        total = total + term
        if np.all(term <= 1e-17 * total):
            break
    with np.errstate(under="ignore"):
        return np.minimum(1.0, np.exp(a * log_x - x - math.lgamma(a + 1) + np.log(total)))


def _beta_series(x, a, b):
    """I_x(a, b) for x <= 1/2: x^a / B(a, b) * sum_n (1 - b)_n / n! x^n / (a + n)."""
    total = np.zeros_like(x)
    coefficient = np.ones_like(x)  # (1 - b)_n / n! x^n
    for n in range(200):  # x^n <= 2^-n: 200 terms leave nothing
        total = total + coefficient / (a + n)
        coefficient = coefficient * (n + 1 - b) / (n + 1) * x
    log_beta = math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)
    with np.errstate(divide="ignore"):
        return np.exp(a * np.log(x) - log_beta) * total


def beta_cdf(a, b, x):
    """The regularized incomplete beta function I_x(a, b), x in [0, 1]."""
    x = np.clip(np.asarray(x, np.float64), 0.0, 1.0)
    low = x <= 0.5
    out = np.empty_like(x)
    out[low] = _beta_series(x[low], a, b)
    out[~low] = 1 - _beta_series(1 - x[~low], b, a)
    return np.clip(out, 0.0, 1.0)


def t_cdf(df, x):
    x = np.asarray(x, np.float64)
    tail = 0.5 * beta_cdf(df / 2, 0.5, df / (df + x * x))
    return np.where(x > 0, 1 - tail, tail)


def f_cdf(d1, d2, x):
    x = np.maximum(np.asarray(x, np.float64), 0.0)
    return beta_cdf(d1 / 2, d2 / 2, d1 * x / (d1 * x + d2))


def wald_cdf(mean, x):
    """The inverse Gaussian CDF of mean `mean` and shape 1."""
    x = np.asarray(x, np.float64)
    root = np.sqrt(1 / x)
    return normal_cdf(root * (x / mean - 1)) + np.exp(2 / mean) * normal_cdf(-root * (x / mean + 1))


def poisson_pmf(lam, k):
    k = np.asarray(k, np.float64)
    return np.exp(k * math.log(lam) - lam - _lgamma(k + 1))


def binomial_pmf(n, p, k):
    k = np.asarray(k, np.float64)
    log_choose = math.lgamma(n + 1) - _lgamma(k + 1) - _lgamma(n - k + 1)
    return np.exp(log_choose + k * math.log(p) + (n - k) * math.log1p(-p))


def gamma_quantile(a, u):
    """The x with P(a, x) = u, by bisection on log x: 200 halvings of [-750, log(a + 20 sqrt(a) + 40)]
    (P is 1 to double precision at the top) leave an interval far below an ulp of log x."""
    u = np.asarray(u, np.float64)
    lo, hi = np.full_like(u, -750.0), np.full_like(u, math.log(a + 20 * math.sqrt(a) + 40))
    for _ in range(200):
        mid = (lo + hi) / 2
        below = gamma_cdf(a, log_x=mid) < u
        lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
    return np.exp((lo + hi) / 2)
