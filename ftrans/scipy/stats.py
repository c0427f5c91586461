"""ftrans.scipy.stats: distributions as jax.scipy.stats has them (modules of functions), differentiable.

norm (pdf logpdf cdf logcdf sf logsf ppf isf), multivariate_normal (logpdf pdf),
t (logpdf pdf), beta, gamma and chi2 (pdf logpdf cdf logcdf sf logsf), poisson (logpmf
pmf cdf). Out of the support, densities are 0 (log densities -inf), as SciPy's. The
cdfs and sfs take their values as JAX's do (the incomplete gamma and beta functions of
the standardized value clamped to the support) and keep finite derivatives out of the
support: there the clamped value is a constant, not a point where the density is infinite.
"""
from __future__ import annotations

import types

import numpy as np

import ftrans.numpy as fnp
from ftrans import lax
from ftrans.numpy import linalg as fla
from ftrans.numpy._core import public
from ftrans.scipy import special
from ftrans.scipy.linalg import solve_triangular
from ir.errors import at_user_line
from ir.primitives import decompositions as dec
from ftrans._unavailable import missing_name_hook as _missing_name_hook

__all__ = ["beta", "chi2", "gamma", "multivariate_normal", "norm", "poisson", "t"]

_HALF_LOG_2PI = 0.91893853320467274178


def _module(name, doc, **functions):
    module = types.ModuleType(f"ftrans.scipy.stats.{name}", doc)
    for key, fun in functions.items():
        fun.__name__ = key
        fun.__qualname__ = f"{name}.{key}"
        setattr(module, key, public(fun))
    module.__all__ = sorted(functions)
    return module


def _standardized(x, loc, scale):
    return (fnp.multiply(x, 1.0) - loc) / scale


# -------------------- norm --------------------

def _norm_logpdf(x, loc=0, scale=1):
    z = _standardized(x, loc, scale)
    return -0.5 * z * z - _HALF_LOG_2PI - fnp.log(fnp.multiply(scale, 1.0))


norm = _module(
    "norm", "The normal distribution.",
    logpdf=_norm_logpdf,
    pdf=lambda x, loc=0, scale=1: fnp.exp(_norm_logpdf(x, loc, scale)),
    cdf=lambda x, loc=0, scale=1: special.ndtr(_standardized(x, loc, scale)),
    logcdf=lambda x, loc=0, scale=1: special.log_ndtr(_standardized(x, loc, scale)),
    sf=lambda x, loc=0, scale=1: special.ndtr(-_standardized(x, loc, scale)),
    logsf=lambda x, loc=0, scale=1: special.log_ndtr(-_standardized(x, loc, scale)),
    ppf=lambda q, loc=0, scale=1: fnp.multiply(special.ndtri(q), scale) + loc,
    isf=lambda q, loc=0, scale=1: fnp.multiply(-special.ndtri(q), scale) + loc,  # (1 - q would round small q away)
)


# -------------------- multivariate_normal --------------------

def _mvn_logpdf(x, mean=None, cov=1, allow_singular=False):
    """By the Cholesky factor of cov: -|L^-1 (x - mean)|^2 / 2 - sum log diag L - d log(2 pi) / 2.
    x (..., d), mean (d,), cov (d, d) (a scalar or a vector: a multiple of the identity, a diagonal)."""
    if allow_singular:
        raise NotImplementedError(at_user_line("multivariate_normal.logpdf: allow_singular=True is not implemented"))
    x = fnp.multiply(x, 1.0)
    d = fnp.shape(x)[-1] if fnp.ndim(x) else 1
    mean = fnp.zeros((d,)) if mean is None else fnp.multiply(mean, 1.0)
    cov = fnp.multiply(cov, 1.0)
    if fnp.ndim(cov) < 2:
        cov = fnp.eye(d) * cov
    chol = fla.cholesky(cov)
    diff = fnp.broadcast_to(x - mean, np.broadcast_shapes(fnp.shape(x), fnp.shape(mean)))
    flat = fnp.reshape(diff, (-1, d))
    z = solve_triangular(chol, fnp.transpose(flat), lower=True)  # (d, n)
    quad = fnp.reshape(fnp.sum(z * z, axis=0), fnp.shape(diff)[:-1])
    log_det = fnp.sum(fnp.log(fnp.abs(dec.diagonal(chol))))
    return -0.5 * quad - log_det - d * _HALF_LOG_2PI


multivariate_normal = _module(
    "multivariate_normal", "The multivariate normal distribution.",
    logpdf=_mvn_logpdf,
    pdf=lambda x, mean=None, cov=1, allow_singular=False: fnp.exp(_mvn_logpdf(x, mean, cov, allow_singular)))


# -------------------- t --------------------

def _t_logpdf(x, df, loc=0, scale=1):
    z = _standardized(x, loc, scale)
    df = fnp.multiply(df, 1.0)
    half = 0.5 * (df + 1.0)
    return (special.gammaln(half) - special.gammaln(0.5 * df) - 0.5 * fnp.log(df * np.pi)
            - fnp.log(fnp.multiply(scale, 1.0)) - half * fnp.log1p(z * z / df))


t = _module("t", "Student's t distribution.", logpdf=_t_logpdf,
            pdf=lambda x, df, loc=0, scale=1: fnp.exp(_t_logpdf(x, df, loc, scale)))


# -------------------- beta --------------------

def _beta_logpdf(x, a, b, loc=0, scale=1):
    y = _standardized(x, loc, scale)
    inside = (y >= 0) & (y <= 1)
    safe = fnp.where(inside, y, 0.5)
    value = (special.xlogy(a - 1.0, safe) + special.xlog1py(b - 1.0, -safe) - special.betaln(a, b)
             - fnp.log(fnp.multiply(scale, 1.0)))
    return fnp.where(inside, value, -np.inf)


def _log_probability(probability, complement):
    """log p where p = probability(), as log1p(-q) (q = complement()) where p > 1/2: there p rounds
    to 1 - a few ulps or to 1, and its log was 0 where it is -q (each branch sees its own value)."""
    p, q = probability(), complement()
    near_one = p > 0.5
    return fnp.where(near_one, fnp.log1p(-fnp.where(near_one, q, 0.0)), fnp.log(fnp.where(near_one, 0.5, p)))


def _clamped(y, low, high, inside):
    """(y where `inside` and a point of the support elsewhere, y clamped to [low, high] as a constant):
    the first for the function's value and derivative inside the support, the second outside."""
    safe = fnp.where(inside, y, 0.5 * (low + high) if np.isfinite(high) else low + 1.0)
    return safe, lax.stop_gradient(fnp.clip(y, low, high))


def _beta_cdf(x, a, b, loc=0, scale=1):
    y = _standardized(x, loc, scale)
    inside = (y > 0) & (y < 1)
    safe, clamped = _clamped(y, 0.0, 1.0, inside)
    return fnp.where(inside, special.betainc(a, b, safe), special.betainc(a, b, clamped))


def _beta_sf(x, a, b, loc=0, scale=1):
    """I_(1-y)(b, a), as JAX's."""
    y = _standardized(x, loc, scale)
    inside = (y > 0) & (y < 1)
    safe, clamped = _clamped(y, 0.0, 1.0, inside)
    return fnp.where(inside, special.betainc(b, a, 1.0 - safe), special.betainc(b, a, 1.0 - clamped))


beta = _module("beta", "The beta distribution.", logpdf=_beta_logpdf,
               pdf=lambda x, a, b, loc=0, scale=1: fnp.exp(_beta_logpdf(x, a, b, loc, scale)),
               cdf=_beta_cdf,
               logcdf=lambda x, a, b, loc=0, scale=1: _log_probability(lambda: _beta_cdf(x, a, b, loc, scale),
                                                                          lambda: _beta_sf(x, a, b, loc, scale)),
               sf=_beta_sf,
               logsf=lambda x, a, b, loc=0, scale=1: _log_probability(lambda: _beta_sf(x, a, b, loc, scale),
                                                                         lambda: _beta_cdf(x, a, b, loc, scale)))


# -------------------- gamma --------------------

def _gamma_logpdf(x, a, loc=0, scale=1):
    y = _standardized(x, loc, scale)
    inside = y >= 0
    safe = fnp.where(inside, y, 1.0)
    value = special.xlogy(a - 1.0, safe) - safe - special.gammaln(a) - fnp.log(fnp.multiply(scale, 1.0))
    return fnp.where(inside, value, -np.inf)


def _gamma_cdf(x, a, loc=0, scale=1):
    """P(a, y), y clamped to [0, inf] (as JAX's)."""
    y = _standardized(x, loc, scale)
    inside = y > 0
    safe, clamped = _clamped(y, 0.0, np.inf, inside)
    return fnp.where(inside, special.gammainc(a, safe), special.gammainc(a, clamped))


def _gamma_sf(x, a, loc=0, scale=1):
    """Q(a, y); 1 where y < 0 (as JAX's)."""
    y = _standardized(x, loc, scale)
    inside = y > 0
    safe, clamped = _clamped(y, 0.0, np.inf, inside)
    return fnp.where(inside, special.gammaincc(a, safe), fnp.where(y < 0, 1.0, special.gammaincc(a, clamped)))


gamma = _module("gamma", "The gamma distribution.", logpdf=_gamma_logpdf,
                pdf=lambda x, a, loc=0, scale=1: fnp.exp(_gamma_logpdf(x, a, loc, scale)),
                cdf=_gamma_cdf,
                logcdf=lambda x, a, loc=0, scale=1: _log_probability(lambda: _gamma_cdf(x, a, loc, scale),
                                                                       lambda: _gamma_sf(x, a, loc, scale)),
                sf=_gamma_sf,
                logsf=lambda x, a, loc=0, scale=1: _log_probability(lambda: _gamma_sf(x, a, loc, scale),
                                                                      lambda: _gamma_cdf(x, a, loc, scale)))


# -------------------- chi2 --------------------

def _chi2_logpdf(x, df, loc=0, scale=1):
    """(df/2 - 1) log y - y/2 - lgamma(df/2) - df log(2)/2 - log scale (JAX's form: -inf below loc)."""
    x = fnp.multiply(x, 1.0)
    inside = x >= loc
    y = fnp.where(inside, _standardized(x, loc, scale), 1.0)
    half = fnp.multiply(df, 0.5)
    value = ((half - 1.0) * fnp.log(y) - 0.5 * y - special.gammaln(half) - half * np.log(2.0)
             - fnp.log(fnp.multiply(scale, 1.0)))
    return fnp.where(inside, value, -np.inf)


def _chi2_cdf(x, df, loc=0, scale=1):
    return _gamma_cdf(x, fnp.multiply(df, 0.5), loc, fnp.multiply(scale, 2.0))


def _chi2_sf(x, df, loc=0, scale=1):
    return _gamma_sf(x, fnp.multiply(df, 0.5), loc, fnp.multiply(scale, 2.0))


chi2 = _module("chi2", "The chi-squared distribution (gamma's with a = df/2, scale 2).", logpdf=_chi2_logpdf,
               pdf=lambda x, df, loc=0, scale=1: fnp.exp(_chi2_logpdf(x, df, loc, scale)),
               cdf=_chi2_cdf,
               logcdf=lambda x, df, loc=0, scale=1: _log_probability(lambda: _chi2_cdf(x, df, loc, scale),
                                                                        lambda: _chi2_sf(x, df, loc, scale)),
               sf=_chi2_sf,
               logsf=lambda x, df, loc=0, scale=1: _log_probability(lambda: _chi2_sf(x, df, loc, scale),
                                                                       lambda: _chi2_cdf(x, df, loc, scale)))


# -------------------- poisson --------------------

def _poisson_logpmf(k, mu, loc=0):
    k = fnp.multiply(k, 1.0) - loc
    inside = (k >= 0) & (k == fnp.floor(k))
    safe = fnp.where(inside, k, 0.0)
    value = special.xlogy(safe, mu) - mu - special.gammaln(safe + 1.0)
    return fnp.where(inside, value, -np.inf)


def _poisson_cdf(k, mu, loc=0):
    """Q(floor(k - loc) + 1, mu) for k >= loc, 0 below (as JAX's); differentiable in mu."""
    x = fnp.multiply(k, 1.0) - loc
    below = x < 0
    order = fnp.where(below, 1.0, fnp.floor(lax.stop_gradient(x)) + 1.0)
    return fnp.where(below, 0.0, special.gammaincc(order, mu))


poisson = _module("poisson", "The Poisson distribution.", logpmf=_poisson_logpmf,
                  pmf=lambda k, mu, loc=0: fnp.exp(_poisson_logpmf(k, mu, loc)),
                  cdf=_poisson_cdf)


__getattr__ = _missing_name_hook(__name__)  # a JAX name not ported yet says so
