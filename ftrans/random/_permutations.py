"""permutation, shuffle and choice: JAX's algorithms (a stable sort by random 32-bit keys, the
Gumbel top-k trick, inverse-CDF search), so the same key gives JAX's permutation. The sorts are
one `sort` equation each (fnp.argsort), O(n log n).
"""
from __future__ import annotations

import math

import numpy as np

import ftrans.numpy as fnp
from ftrans.numpy._core import aval_of, normalize_axis
from ftrans.random._keys import check_key, random_bits, split
from ftrans.random._public import public_returning_arrays as public
from ftrans.random._samplers import gumbel, randint, uniform
from ir.errors import at_user_line


def top_k_indices(x, k):
    """The indices of the k largest entries along the last axis, the largest first (ties by index), as
    lax.top_k's: the first k of the stable descending order."""
    return fnp.argsort(x, axis=-1, descending=True)[..., :k]


def _shuffle_along_last(key, x):
    """JAX's _shuffle on the last axis: rounds of a stable sort by fresh 32-bit keys (lax.sort_key_val:
    here the stable order of the keys, and x taken in that order)."""
    n = aval_of(x).shape[-1]
    size = math.prod(aval_of(x).shape)
    rounds = int(np.ceil(3 * np.log(max(1, size)) / np.log(np.iinfo(np.uint32).max)))
    for _ in range(rounds):
        key, subkey = split(key)
        sort_keys = random_bits(subkey, 32, aval_of(x).shape)
        if n == 0:
            continue
        x = fnp.take_along_axis(x, fnp.argsort(sort_keys, axis=-1), axis=-1)
    return x


def _shuffle(key, x, axis):
    moved = fnp.moveaxis(x, axis, -1)
    return fnp.moveaxis(_shuffle_along_last(key, moved), -1, axis)


@public
def permutation(key, x, axis=0, independent=False):
    """A random permutation of `x` along `axis` (of arange(x) for an integer), as `jax.random.permutation`."""
    key = check_key("permutation", key)
    x_aval = aval_of(x, "permutation")
    if not x_aval.shape:
        if x_aval.dtype.kind not in "iu":
            raise TypeError(at_user_line("permutation: x must be an integer or at least 1-dimensional"))
        return _shuffle(key, fnp.arange(int(x)), 0)
    x = fnp.asarray(x)
    axis = normalize_axis(axis, x.ndim)
    if independent or x.ndim == 1:
        return _shuffle(key, x, axis)
    order = _shuffle(key, fnp.arange(x.shape[axis]), 0)
    return fnp.take(x, order, axis=axis)


@public
def shuffle(key, x, axis=0):
    """Deprecated in JAX in favour of permutation(key, x, axis, independent=True); the same here."""
    key = check_key("shuffle", key)
    x = fnp.asarray(x)
    return _shuffle(key, x, normalize_axis(axis, x.ndim))


@public
def choice(key, a, shape=(), replace=True, p=None, axis=0, mode=None):
    """Draws from `a` (or arange(a)), with or without replacement, with probabilities `p`, as
    `jax.random.choice`."""
    key = check_key("choice", key)
    if not isinstance(shape, (tuple, list)):
        raise TypeError(at_user_line(f"shape argument of choice must be a sequence, got {shape}"))
    shape = tuple(shape)
    arr = fnp.asarray(a)
    if arr.ndim == 0:
        n_inputs = int(a)
    else:
        axis = normalize_axis(axis, arr.ndim)
        n_inputs = arr.shape[axis]
    n_draws = math.prod(shape)
    if n_draws == 0:
        return fnp.zeros(shape, arr.dtype)
    if n_inputs <= 0:
        raise ValueError(at_user_line("choice: a must be greater than 0 unless no samples are taken"))
    if not replace and n_draws > n_inputs:
        raise ValueError(at_user_line(f"Cannot take a larger sample (size {n_draws}) than population "
                                      f"(size {n_inputs}) when 'replace=False'"))
    if p is None:
        if replace:
            ind = randint(key, shape, 0, n_inputs)
            result = ind if arr.ndim == 0 else fnp.take(arr, ind, axis)
        else:
            drawn = permutation(key, n_inputs if arr.ndim == 0 else arr, axis)
            result = drawn[(slice(None),) * (0 if arr.ndim == 0 else axis) + (slice(n_draws),)]
    else:
        p = fnp.asarray(p)
        if p.dtype.kind != "f":
            p = p.astype(np.float64)
        if p.shape != (n_inputs,):
            raise ValueError(at_user_line(f"p must be None or a 1D vector with the same size as a.shape[axis]. "
                                          f"p has shape {p.shape} and a.shape[axis] is {n_inputs}."))
        if replace:
            cumulative = fnp.cumsum(p)
            r = cumulative[-1] * (1 - uniform(key, shape, dtype=p.dtype))
            ind = fnp.searchsorted(cumulative, r)  # how many cumulative sums are below each r
        else:
            g = gumbel(key, (n_inputs,), dtype=p.dtype, mode=mode or "low") + fnp.log(p)
            ind = top_k_indices(g, n_draws)
        result = ind if arr.ndim == 0 else fnp.take(arr, ind, axis)
    return fnp.reshape(result, shape if arr.ndim == 0 else arr.shape[:axis] + shape + arr.shape[axis + 1:])
