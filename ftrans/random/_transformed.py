"""Samplers that are a closed-form transform of normal, uniform or exponential draws (JAX's
expressions, so the same key gives `jax.random`'s numbers to the last place of the functions
involved), and multivariate_normal: mean + factor @ z, reparameterized, so differentiable in the
mean and the covariance (through the factor's own derivative: cholesky, eigh or svd).
"""
from __future__ import annotations

import numpy as np

import ftrans.numpy as fnp
from ftrans.numpy._core import shape_tuple, static_int
from ftrans.random._keys import check_key, split
from ftrans.random._public import public_returning_arrays as public
from ftrans.random._samplers import (FLOAT64, _float_dtype, _normal, _shape, _uniform, broadcast_shape,
                                     checked_batch_shape, exponential, float_sampler_arguments, param_shape,
                                     rademacher)
from ir.errors import at_user_line


def _param(value, dtype, shape):
    return fnp.broadcast_to(fnp.asarray(value).astype(dtype), shape)


@public
def multivariate_normal(key, mean, cov, shape=None, dtype=None, method="cholesky"):
    """Draws of N(mean, cov), mean + factor z with factor factor^T = cov, as `jax.random.multivariate_normal`:
    mean (..., n), cov (..., n, n), `shape` the batch shape (the result is shape + (n,)); the factor is
    cov's Cholesky factor, or from eigh or svd (for a singular cov)."""
    key = check_key("multivariate_normal", key)
    if method not in ("svd", "eigh", "cholesky"):
        raise ValueError(at_user_line(f"multivariate_normal: method must be one of 'svd', 'eigh' and 'cholesky', "
                                      f"got {method!r}"))
    mean_shape = param_shape("multivariate_normal", mean, "mean")
    cov_shape = param_shape("multivariate_normal", cov, "cov")
    mean, cov = fnp.asarray(mean), fnp.asarray(cov)
    common = np.promote_types(mean.dtype, cov.dtype)
    common = common if common.kind == "f" else FLOAT64
    mean, cov = mean.astype(common), cov.astype(common)
    dtype = common if dtype is None else _float_dtype("multivariate_normal", dtype)
    if len(mean_shape) < 1:
        raise ValueError(at_user_line(f"multivariate_normal requires mean.ndim >= 1, got mean.ndim == "
                                      f"{len(mean_shape)}"))
    if len(cov_shape) < 2:
        raise ValueError(at_user_line(f"multivariate_normal requires cov.ndim >= 2, got cov.ndim == "
                                      f"{len(cov_shape)}"))
    n = mean_shape[-1]
    if cov_shape[-2:] != (n, n):
        raise ValueError(at_user_line(f"multivariate_normal requires cov.shape == (..., n, n) for n={n} "
                                      f"(mean.shape[-1]), but got cov.shape == {cov_shape}"))
    shape = checked_batch_shape("multivariate_normal", shape, [("mean.shape[:-1]", mean_shape[:-1]),
                                                               ("cov.shape[:-2]", cov_shape[:-2])])
    if method == "svd":
        u, s, _ = fnp.linalg.svd(cov)
        factor = u * fnp.sqrt(s[..., None, :])
    elif method == "eigh":
        w, v = fnp.linalg.eigh(cov)
        factor = v * fnp.sqrt(w[..., None, :])
    else:
        factor = fnp.linalg.cholesky(cov)
    z = _normal(key, (*shape, n), dtype)
    return mean + fnp.einsum("...ij,...j->...i", factor, z)


@public
def lognormal(key, sigma=np.float32(1), shape=None, dtype=None):
    """exp(sigma N(0, 1)), as `jax.random.lognormal`."""
    key, shape, dtype = float_sampler_arguments("lognormal", key, shape, dtype, ("sigma", sigma))
    return fnp.exp(_normal(key, shape, dtype) * fnp.asarray(sigma).astype(dtype))


@public
def pareto(key, b, shape=None, dtype=None):
    """Pareto draws of shape b (support [1, inf)), exp(E / b) for E exponential, as `jax.random.pareto`."""
    key, shape, dtype = float_sampler_arguments("pareto", key, shape, dtype, ("b", b))
    return fnp.exp(exponential(key, shape, dtype) / fnp.asarray(b).astype(dtype))


@public
def weibull_min(key, scale, concentration, shape=(), dtype=None):
    """Weibull draws, scale (-log1p(-u))**(1/concentration), as `jax.random.weibull_min`."""
    key = check_key("weibull_min", key)
    dtype = _float_dtype("weibull_min", dtype)
    shape = _shape("weibull_min", shape)
    u = _uniform(key, shape, dtype, 0.0, 1.0)
    return fnp.power(-fnp.log1p(-u), 1.0 / concentration) * scale


@public
def rayleigh(key, scale, shape=None, dtype=None):
    """Rayleigh draws, scale sqrt(-2 log u), as `jax.random.rayleigh`."""
    key, shape, dtype = float_sampler_arguments("rayleigh", key, shape, dtype, ("scale", scale))
    u = _uniform(key, shape, dtype, 0.0, 1.0)
    return _param(scale, dtype, shape) * fnp.sqrt(fnp.log(u) * dtype.type(-2))


@public
def wald(key, mean, shape=None, dtype=None):
    """Wald (inverse Gaussian) draws of mean `mean` and unit shape (Michael, Schucany and Haas), as
    `jax.random.wald`."""
    key, shape, dtype = float_sampler_arguments("wald", key, shape, dtype, ("mean", mean))
    k1, k2 = split(key)
    mean = _param(mean, dtype, shape)
    v = _normal(k1, shape, dtype)
    z = _uniform(k2, shape, dtype, 0.0, 1.0)
    y = v * v
    y_sq = y * y
    mean_sq = mean * mean
    sqrt_term = fnp.sqrt(4 * mean * y + mean_sq * y_sq)
    x = mean + mean_sq * y / 2 - mean / 2 * sqrt_term
    return fnp.where(z <= mean / (mean + x), x, mean_sq / x)


@public
def triangular(key, left, mode, right, shape=None, dtype=None):
    """Triangular draws on [left, right] peaking at mode, by the inverse CDF, as `jax.random.triangular`."""
    key, shape, dtype = float_sampler_arguments("triangular", key, shape, dtype,
                                                ("left", left), ("mode", mode), ("right", right))
    left, mode, right = (_param(x, dtype, shape) for x in (left, mode, right))
    fc = (mode - left) / (right - left)
    u = _uniform(key, shape, dtype, 0.0, 1.0)
    out1 = left + fnp.sqrt(u * (right - left) * (mode - left))
    out2 = right - fnp.sqrt((1 - u) * (right - left) * (right - mode))
    return fnp.where(u < fc, out1, out2)


@public
def maxwell(key, shape=(), dtype=None):
    """Maxwell draws, the norm of three standard normals, as `jax.random.maxwell`."""
    key = check_key("maxwell", key)
    dtype = _float_dtype("maxwell", dtype)
    return _maxwell(key, _shape("maxwell", shape), dtype)


def _maxwell(key, shape, dtype):
    return fnp.linalg.norm(_normal(key, (*shape, 3), dtype), axis=-1)


@public
def double_sided_maxwell(key, loc, scale, shape=(), dtype=None):
    """loc + scale * (a random sign times a Maxwell draw), as `jax.random.double_sided_maxwell`.
    NB: as JAX's, the result's shape is shape + the parameters' broadcast shape (the latter alone
    where shape is ())."""
    key = check_key("double_sided_maxwell", key)
    dtype = _float_dtype("double_sided_maxwell", dtype)
    shape = shape_tuple(shape, "double_sided_maxwell")
    params_shape = broadcast_shape("double_sided_maxwell", None, ("loc", loc), ("scale", scale))
    shape = (shape or params_shape) + params_shape
    maxwell_key, rademacher_key = split(key)
    maxwell_rvs = _maxwell(maxwell_key, shape, dtype)
    random_sign = rademacher(rademacher_key, shape, dtype)
    return random_sign * maxwell_rvs * scale + loc



@public
def orthogonal(key, n, shape=(), dtype=None, m=None):
    """Matrices uniform on the orthogonal group O(n) (with m: n x m with orthonormal rows or columns),
    as `jax.random.orthogonal`: Q of the QR of a normal draw, its columns' signs set by R's diagonal
    (Mezzadri's correction, so that Q is Haar-distributed); the result has shape (*shape, n, m)."""
    key = check_key("orthogonal", key)
    dtype = _float_dtype("orthogonal", dtype)
    shape = _shape("orthogonal", shape)
    n = static_int(n, "orthogonal", "n")
    m = n if m is None else static_int(m, "orthogonal", "m")
    if n < 0 or m < 0:
        raise ValueError(at_user_line(f"orthogonal: n and m must be nonnegative, got n={n}, m={m}"))
    z = _normal(key, (*shape, max(n, m), min(n, m)), dtype)
    q, r = fnp.linalg.qr(z)
    d = fnp.diagonal(r, axis1=-2, axis2=-1)
    x = q * fnp.expand_dims(fnp.sign(d), -2)
    return fnp.swapaxes(x, -1, -2) if n < m else x
