"""poisson, binomial and geometric: JAX's algorithms step for step (Knuth's product of uniforms and
Hörmann's transformed rejection for Poisson; inversion by geometric waiting times and BTRS for the
binomial; the inverse CDF for the geometric). The rejection loops are `lax.while_loop`s over the
whole array, drawing fresh uniforms from a split key each round while any element is not yet done,
so they trace, vectorize and batch (vmap over keys or parameters runs each lane as a loop would).
"""
from __future__ import annotations

import numpy as np

import ftrans.numpy as fnp
from ftrans import lax
from ftrans._control_flow import while_loop
from ftrans.random._keys import check_key, split
from ftrans.random._public import public_returning_arrays as public
from ftrans.numpy._core import shape_tuple
from ftrans.random._samplers import _float_dtype, _uniform, broadcast_shape, param_shape
from ir.errors import at_user_line

F32 = np.dtype(np.float32)
I64 = np.dtype(np.int64)


def _int_dtype(name, dtype):
    dtype = I64 if dtype is None else np.dtype(dtype)
    if dtype.kind not in "iu":
        raise TypeError(at_user_line(f"{name} only accepts integer dtypes, got {dtype.name}"))
    return dtype


def _isnan(x):
    return x != x


def _poisson_knuth(key, lam, shape, dtype, max_iters):
    """The count of uniforms whose running product stays above exp(-lam), less one (Knuth)."""
    def body(carry):
        i, k, key, log_prod = carry
        key, subkey = split(key)
        k = fnp.where(log_prod > -lam, k + dtype.type(1), k)
        u = _uniform(subkey, shape, F32, 0.0, 1.0)
        return i + 1, k, key, log_prod + fnp.log(u)

    def cond(carry):
        i, log_prod = carry[0], carry[3]
        return fnp.any(log_prod > -lam) & (i < max_iters)

    init = (np.int64(0), fnp.zeros(shape, dtype), key, fnp.zeros(shape, F32))
    k = while_loop(cond, body, init)[1]
    return (k - dtype.type(1)).astype(dtype)


def _poisson_rejection(key, lam, shape, dtype, max_iters):
    """Hörmann's transformed rejection (PTRS), for lam >= 10."""
    log_lam = fnp.log(lam)
    b = 0.931 + 2.53 * fnp.sqrt(lam)
    a = -0.059 + 0.02483 * b
    inv_alpha = 1.1239 + 1.1328 / (b - 3.4)
    v_r = 0.9277 - 3.6224 / (b - 2)

    def body(carry):
        i, k_out, accepted, key = carry
        key, subkey_0, subkey_1 = split(key, 3)
        u = _uniform(subkey_0, shape, F32, 0.0, 1.0) - 0.5
        v = _uniform(subkey_1, shape, F32, 0.0, 1.0)
        u_shifted = 0.5 - fnp.abs(u)
        k = fnp.floor((2 * a / u_shifted + b) * u + lam + 0.43)
        s = fnp.log(v * inv_alpha / (a / (u_shifted * u_shifted) + b))
        t = -lam + k * log_lam - lax.lgamma(k + 1)
        accept1 = (u_shifted >= 0.07) & (v <= v_r)
        reject = (k < 0) | ((u_shifted < 0.013) & (v > u_shifted))
        accept = accept1 | (~reject & (s <= t))
        return i + 1, fnp.where(accept, k, k_out), accepted | accept, key

    def cond(carry):
        i, _, accepted, _ = carry
        return fnp.any(~accepted) & (i < max_iters)

    init = (np.int64(0), fnp.full(shape, -1, F32), fnp.zeros(shape, np.bool_), key)
    return while_loop(cond, body, init)[1].astype(dtype)


@public
def poisson(key, lam, shape=None, dtype=None):
    """Poisson(lam) counts, as `jax.random.poisson` (which computes in float32): Knuth's algorithm
    where lam < 10, Hörmann's transformed rejection elsewhere; 0 where lam is 0."""
    key = check_key("poisson", key)
    dtype = _int_dtype("poisson", dtype)
    lam_shape = param_shape("poisson", lam, "lam")
    shape = lam_shape if shape is None else shape_tuple(shape, "poisson")
    try:
        np.broadcast_to(np.empty(lam_shape, np.bool_), shape)
    except ValueError:
        raise ValueError(at_user_line(f"poisson: lam of shape {lam_shape} does not broadcast to shape {shape}")) \
            from None
    lam = fnp.broadcast_to(fnp.asarray(lam), shape).astype(F32)
    use_knuth = _isnan(lam) | (lam < 10)
    lam_knuth = fnp.where(use_knuth, lam, F32.type(0))
    lam_rejection = fnp.where(use_knuth, F32.type(1e5), lam)  # acceptance tends to 89% as lam grows
    max_iters = np.int64(np.iinfo(dtype).max)  # JAX's (never reached)
    result = fnp.where(use_knuth, _poisson_knuth(key, lam_knuth, shape, dtype, max_iters),
                       _poisson_rejection(key, lam_rejection, shape, dtype, max_iters))
    return fnp.where(lam == 0, dtype.type(0), result)


@public
def geometric(key, p, shape=None, dtype=None):
    """The number of Bernoulli(p) trials up to the first success (1, 2, ...), floor(log u / log1p(-p)) + 1,
    as `jax.random.geometric`."""
    key = check_key("geometric", key)
    dtype = _int_dtype("geometric", dtype)
    shape = broadcast_shape("geometric", shape, ("p", p))
    p = fnp.asarray(p)
    if p.dtype.kind != "f":
        p = p.astype(np.float64)
    u = _uniform(key, shape, p.dtype, 0.0, 1.0)
    u = fnp.where(u == 0, p.dtype.type(1), u)  # JAX's: keeps log finite, as its draws
    g = fnp.floor(fnp.log(u) / fnp.broadcast_to(fnp.log1p(-p), shape)) + 1
    return g.astype(dtype)


# -------------------- binomial --------------------

_STIRLING_TAIL = np.array([0.0810614667953272, 0.0413406959554092, 0.0276779256849983, 0.02079067210376509,
                           0.0166446911898211, 0.0138761288230707, 0.0118967099458917, 0.0104112652619720,
                           0.00925546218271273, 0.00833056343336287])


def _stirling_approx_tail(k):
    """log(k!) - Stirling's approximation of it: tabulated for k <= 9, its series above."""
    dtype = k.dtype
    use_table = k <= 9
    k = fnp.clip(k, dtype.type(0), dtype.type(9))
    kp1sq = (k + 1) * (k + 1)
    approx = (1.0 / 12 - (1.0 / 360 - 1.0 / 1260 / kp1sq) / kp1sq) / (k + 1)
    index = fnp.where(_isnan(k), dtype.type(0), fnp.floor(k))  # a nan k (a nan count's) is masked later
    table = fnp.take(_STIRLING_TAIL.astype(dtype), index.astype(np.int32))
    return fnp.where(use_table, table, approx)


def _binomial_inversion(key, count, prob, shape, dtype, max_iters):
    """Sums of geometric waiting times until they pass count: their number, less one."""
    log1minusprob = fnp.log1p(-prob)

    def body(carry):
        i, num_geom, geom_sum, key = carry
        subkey, key = split(key)
        num_geom_out = fnp.where(geom_sum <= count, num_geom + 1, num_geom)
        u = _uniform(subkey, shape, prob.dtype, 0.0, 1.0)
        geom = fnp.ceil(fnp.log(u) / log1minusprob)
        return i + 1, num_geom_out, geom_sum + geom, key

    def cond(carry):
        i, geom_sum = carry[0], carry[2]
        return fnp.any(geom_sum <= count) & (i < max_iters)

    zeros = fnp.zeros(shape, prob.dtype)
    k = while_loop(cond, body, (np.int64(0), zeros, zeros, key))[1]
    return (k - 1).astype(dtype)


def _btrs(key, count, prob, shape, dtype, max_iters):
    """Hörmann's transformed rejection with squeeze (BTRS), for count * prob > 10."""
    stddev = fnp.sqrt(count * prob * (1 - prob))
    b = 1.15 + 2.53 * stddev
    a = -0.0873 + 0.0248 * b + 0.01 * prob
    c = count * prob + 0.5
    v_r = 0.92 - 4.2 / b
    r = prob / (1 - prob)
    alpha = (2.83 + 5.1 / b) * stddev
    m = fnp.floor((count + 1) * prob)

    def body(carry):
        i, k_out, accepted, key = carry
        key, subkey_0, subkey_1 = split(key, 3)
        u = _uniform(subkey_0, shape, prob.dtype, 0.0, 1.0)
        v = _uniform(subkey_1, shape, prob.dtype, 0.0, 1.0)
        u = u - 0.5
        us = 0.5 - fnp.abs(u)
        accept1 = (us >= 0.07) & (v <= v_r)
        k = fnp.floor((2 * a / us + b) * u + c)
        reject = (k < 0) | (k > count)
        v = fnp.log(v * alpha / (a / (us * us) + b))
        ub = ((m + 0.5) * fnp.log((m + 1) / (r * (count - m + 1)))
              + (count + 1) * fnp.log((count - m + 1) / (count - k + 1))
              + (k + 0.5) * fnp.log(r * (count - k + 1) / (k + 1))
              + _stirling_approx_tail(m)
              + _stirling_approx_tail(count - m)
              - _stirling_approx_tail(k)
              - _stirling_approx_tail(count - k))
        accept = accept1 | (~reject & (v <= ub))
        return i + 1, fnp.where(accept, k, k_out), accepted | accept, key

    def cond(carry):
        i, accepted = carry[0], carry[2]
        return fnp.any(~accepted) & (i < max_iters)

    init = (np.int64(0), fnp.full(shape, -1, prob.dtype), fnp.zeros(shape, np.bool_), key)
    return while_loop(cond, body, init)[1].astype(dtype)


@public
def binomial(key, n, p, shape=None, dtype=None):
    """Binomial(n, p) counts as floats, as `jax.random.binomial`: inversion where n min(p, 1-p) <= 10,
    BTRS elsewhere; nan where p is nan or negative or n is nan or negative, inf where n is inf."""
    key = check_key("binomial", key)
    dtype = _float_dtype("binomial", dtype)
    shape = broadcast_shape("binomial", shape, ("n", n), ("p", p))
    prob = fnp.asarray(p)
    if prob.dtype.kind != "f":
        prob = prob.astype(np.float64)
    count = fnp.broadcast_to(fnp.asarray(n).astype(prob.dtype), shape)
    prob = fnp.broadcast_to(prob, shape)
    p_lt_half = prob < 0.5
    q = fnp.where(p_lt_half, prob, 1.0 - prob)
    count_nan_or_neg = _isnan(count) | (count < 0.0)
    count_inf = fnp.isinf(count)
    q_is_nan = _isnan(q)
    q_l_0 = q < 0.0
    q = fnp.where(q_is_nan | q_l_0, prob.dtype.type(0.01), q)
    use_inversion = count_nan_or_neg | (count * q <= 10.0)
    count = fnp.floor(count)  # as NumPy's binomial takes a float count
    count_inv = fnp.where(use_inversion, count, prob.dtype.type(0))
    count_btrs = fnp.where(use_inversion, prob.dtype.type(1e4), count)
    q_btrs = fnp.where(use_inversion, prob.dtype.type(0.5), q)
    max_iters = np.finfo(dtype).max  # JAX's (never reached)
    samples = fnp.where(use_inversion, _binomial_inversion(key, count_inv, q, shape, dtype, max_iters),
                        _btrs(key, count_btrs, q_btrs, shape, dtype, max_iters))
    invalid = q_l_0 | q_is_nan | count_nan_or_neg
    samples = fnp.where(invalid, dtype.type(np.nan), samples)
    samples = fnp.where(count_inf & ~invalid, dtype.type(np.inf), samples)
    return fnp.where(p_lt_half | count_nan_or_neg | q_is_nan | count_inf, samples, count.astype(dtype) - samples)
