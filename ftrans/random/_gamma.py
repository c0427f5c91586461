"""gamma, loggamma, beta and dirichlet: JAX's algorithms step for step (Marsaglia and Tsang's
rejection method, with the boost Gamma(a) = Gamma(a + 1) U**(1/a) for a < 1, in log space for
loggamma), so that the same key gives `jax.random`'s draws where the arithmetic rounds alike.

One key per element: the key is split into prod(shape) keys, and each element runs its own
rejection loop (`lax.while_loop`, so that it traces; vmapped over the elements, the loop runs
while any element's draw is still rejected, each keeping its own). The gradient in `a` is JAX's
implicit one: for x = F^-1(u; a) at a fixed key, dx/da = -(dF/da) / (dF/dx), which is
`lax.random_gamma_grad(a, x)`; beta and dirichlet, ratios of gammas, follow.
"""
from __future__ import annotations

import math

import numpy as np

import ftrans.numpy as fnp
from ftrans import lax
from ftrans._control_flow import while_loop
from ftrans._custom_derivatives import custom_jvp
from ftrans._vmap import vmap
from ftrans.numpy._core import aval_of, static_int
from ftrans.random._keys import check_key, split
from ftrans.random._public import public_returning_arrays as public
from ftrans.random._samplers import (_float_dtype, _normal, _shape, _uniform, broadcast_shape, checked_batch_shape,
                                     exponential, float_sampler_arguments, normal, param_shape, rademacher)
from ir.errors import at_user_line


def _gamma_one(key, alpha, log_space):
    """One draw of Gamma(alpha) (its log if `log_space`) from one key: JAX's _gamma_one."""
    dtype = aval_of(alpha).dtype
    zero, one, two, minus_one = (dtype.type(v) for v in (0, 1, 2, -1))
    one_over_three, squeeze = dtype.type(1.0 / 3.0), dtype.type(0.0331)
    boost_mask = alpha >= one
    alpha_orig = alpha
    alpha = fnp.where(boost_mask, alpha, alpha + one)
    d = alpha - one_over_three
    c = one_over_three / fnp.sqrt(d)

    def rejected(carry):  # Marsaglia and Tsang's squeeze, then the full test
        _, x2, v, u = carry
        return (u >= one - squeeze * (x2 * x2)) & (fnp.log(u) >= x2 * dtype.type(0.5) + d * ((one - v) + fnp.log(v)))

    def next_normal(carry):
        key, subkey = split(carry[0])
        x = _normal(subkey, (), dtype)
        return key, x, one + x * c

    def propose(carry):
        key, x_key, u_key = split(carry[0], 3)
        _, x, v = while_loop(lambda kxv: kxv[2] <= zero, next_normal, (x_key, zero, minus_one))
        return key, x * x, v * v * v, _uniform(u_key, (), dtype, 0.0, 1.0)

    key, subkey = split(key)
    # the initial carry (x^2 = 0, v = 1, u = 2) is rejected, so that the loop draws at least once
    _, _, v, _ = while_loop(rejected, propose, (key, zero, one, two))
    if log_space:
        log_u = -(-fnp.log1p(-_uniform(subkey, (), dtype, 0.0, 1.0)))  # -exponential, as JAX
        log_boost = fnp.where(boost_mask | (log_u == zero), zero, log_u * (one / alpha_orig))
        return fnp.log(d) + fnp.log(v) + log_boost
    u = one - _uniform(subkey, (), dtype, 0.0, 1.0)
    boost = fnp.where(boost_mask, one, fnp.power(u, one / alpha_orig))
    return d * v * boost


def _gamma_draws(key, a, log_space):
    """Draws of Gamma(a) (or their logs) of a's shape: one split key per element, as JAX's _gamma_impl."""
    shape = aval_of(a).shape
    n = math.prod(shape)
    if n == 0:
        return fnp.zeros(shape, aval_of(a).dtype)
    keys = split(key, n)
    draws = vmap(lambda k, alpha: _gamma_one(k, alpha, log_space))(keys, fnp.reshape(a, (n,)))
    return fnp.reshape(draws, shape)


_gamma_draws = custom_jvp(_gamma_draws, nondiff_argnums=(2,))


@_gamma_draws.defjvp
def _gamma_draws_jvp(log_space, primals, tangents):
    """d(draw)/da at a fixed key, by implicit differentiation of the gamma CDF (JAX's _gamma_grad):
    the draw x solves P(a, x) = u for a fixed u, so dx/da = -(dP/da) / (dP/dx) = random_gamma_grad(a, x)."""
    key, a = primals
    _, a_dot = tangents
    draws = _gamma_draws(key, a, log_space)
    if log_space:  # d log x = dx / x, with x = exp(log x) kept above 0 where it underflows
        x = fnp.exp(draws)
        x = fnp.where(x == 0, np.finfo(aval_of(x).dtype).tiny, x)
        return draws, a_dot * (lax.random_gamma_grad(a, x) / x)
    return draws, a_dot * lax.random_gamma_grad(a, draws)


def _gamma(name, key, a, shape, dtype, log_space):
    key = check_key(name, key)
    dtype = _float_dtype(name, dtype)
    shape = broadcast_shape(name, shape, ("a", a))
    return _gamma_draws(key, fnp.broadcast_to(fnp.asarray(a).astype(dtype), shape), log_space)


@public
def gamma(key, a, shape=None, dtype=None):
    """Gamma(a) draws (unit scale), as `jax.random.gamma`: Marsaglia-Tsang rejection per element;
    differentiable in `a` (implicitly, through the CDF at the draw)."""
    return _gamma("gamma", key, a, shape, dtype, False)


@public
def loggamma(key, a, shape=None, dtype=None):
    """log of Gamma(a) draws, computed in log space (accurate where a << 1 makes the draws underflow),
    as `jax.random.loggamma`: exp(loggamma(key, a)) is gamma(key, a) to rounding."""
    return _gamma("loggamma", key, a, shape, dtype, True)


@public
def beta(key, a, b, shape=None, dtype=None):
    """Beta(a, b) draws, as `jax.random.beta`: G_a / (G_a + G_b) of two log-space gammas, scaled by
    their maximum so that small a and b keep their precision; differentiable in a and b."""
    key = check_key("beta", key)
    dtype = _float_dtype("beta", dtype)
    shape = broadcast_shape("beta", shape, ("a", a), ("b", b))
    key_a, key_b = split(key)
    a = fnp.broadcast_to(fnp.asarray(a).astype(dtype), shape)
    b = fnp.broadcast_to(fnp.asarray(b).astype(dtype), shape)
    log_gamma_a = _gamma_draws(key_a, a, True)
    log_gamma_b = _gamma_draws(key_b, b, True)
    log_max = fnp.maximum(log_gamma_a, log_gamma_b)
    gamma_a_scaled = fnp.exp(log_gamma_a - log_max)
    gamma_b_scaled = fnp.exp(log_gamma_b - log_max)
    return gamma_a_scaled / (gamma_a_scaled + gamma_b_scaled)


@public
def dirichlet(key, alpha, shape=None, dtype=None):
    """Dirichlet(alpha) draws along alpha's last axis, as `jax.random.dirichlet`: the softmax of
    log-space gammas; `shape` is the batch shape (the result is shape + alpha.shape[-1:])."""
    key = check_key("dirichlet", key)
    dtype = _float_dtype("dirichlet", dtype)
    alpha_shape = param_shape("dirichlet", alpha, "alpha")
    if len(alpha_shape) < 1:
        raise ValueError(at_user_line(f"dirichlet requires alpha.ndim >= 1, got alpha.ndim == {len(alpha_shape)}"))
    shape = alpha_shape[:-1] if shape is None else checked_batch_shape("dirichlet", shape,
                                                                       [("alpha.shape[:-1]", alpha_shape[:-1])])
    alpha = fnp.broadcast_to(fnp.asarray(alpha).astype(dtype), shape + alpha_shape[-1:])
    log_gammas = _gamma_draws(key, alpha, True)
    from ftrans.nn import softmax  # ftrans.nn's initializers import ftrans.random
    return softmax(log_gammas, -1)


# -------------------- samplers built on gamma --------------------

@public
def chisquare(key, df, shape=None, dtype=None):
    """Chi-square draws with `df` degrees of freedom, 2 Gamma(df / 2) (from loggamma), as `jax.random.chisquare`."""
    key, shape, dtype = float_sampler_arguments("chisquare", key, shape, dtype, ("df", df))
    return _chisquare(key, df, shape, dtype)


def _chisquare(key, df, shape, dtype):
    half_df = fnp.asarray(df).astype(dtype) / dtype.type(2)
    log_g = _gamma("chisquare", key, half_df, shape, dtype, True)
    return fnp.exp(log_g) * dtype.type(2)


@public
def t(key, df, shape=None, dtype=None):
    """Student's t draws with `df` degrees of freedom, N sqrt((df / 2) / Gamma(df / 2)), as `jax.random.t`."""
    key, shape, dtype = float_sampler_arguments("t", key, shape, dtype, ("df", df))
    key_n, key_g = split(key)
    n = normal(key_n, shape, dtype)
    half_df = fnp.asarray(df).astype(dtype) / dtype.type(2)
    g = _gamma("t", key_g, half_df, shape, dtype, False)
    return n * fnp.sqrt(half_df / g)


@public
def f(key, dfnum, dfden, shape=None, dtype=None):
    """F draws, (chi2(dfnum) / dfnum) / (chi2(dfden) / dfden), as `jax.random.f`."""
    key, shape, dtype = float_sampler_arguments("f", key, shape, dtype, ("dfnum", dfnum), ("dfden", dfden))
    dfnum, dfden = fnp.asarray(dfnum).astype(dtype), fnp.asarray(dfden).astype(dtype)
    key_dfd, key_dfn = split(key)
    num = _chisquare(key_dfn, dfnum, shape, dtype) / dfnum
    den = _chisquare(key_dfd, dfden, shape, dtype) / dfden
    return num / den


@public
def generalized_normal(key, p, shape=(), dtype=None):
    """Draws of density proportional to exp(-|x|**p), a random sign times Gamma(1/p)**(1/p), as
    `jax.random.generalized_normal`."""
    key = check_key("generalized_normal", key)
    dtype = _float_dtype("generalized_normal", dtype)
    shape = _shape("generalized_normal", shape)
    return _generalized_normal(key, p, shape, dtype)


def _generalized_normal(key, p, shape, dtype):
    keys = split(key)
    g = _gamma("generalized_normal", keys[0], 1 / p, shape, dtype, False)
    r = rademacher(keys[1], shape, dtype)
    return r * g ** (1 / p)


@public
def ball(key, d, p=2, shape=(), dtype=None):
    """Points uniform in the d-dimensional unit ball of the p-norm (Barthe, Guedon, Mendelson and Naor:
    generalized normals over (their p-norm**p + an exponential)**(1/p)), as `jax.random.ball`;
    the result has shape (*shape, d)."""
    key = check_key("ball", key)
    dtype = _float_dtype("ball", dtype)
    shape = _shape("ball", shape)
    d = static_int(d, "ball", "d")
    if d < 0:
        raise ValueError(at_user_line(f"ball: d must be a nonnegative int, got {d}"))
    k1, k2 = split(key)
    g = _generalized_normal(k1, p, (*shape, d), dtype)
    e = exponential(k2, shape, dtype)
    return g / (((fnp.abs(g) ** p).sum(-1) + e) ** (1 / p))[..., None]
