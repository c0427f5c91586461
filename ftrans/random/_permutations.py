"""permutation, shuffle and choice: JAX's algorithms (a stable sort by random 32-bit keys, the
Gumbel top-k trick, inverse-CDF search), so the same key gives JAX's permutation.

NB: ftrans has no sort primitive yet; the stable sort by keys is done by ranks, each element's
count of smaller keys (and of equal keys before it), which is O(n^2) in time and memory: fine for
the thousands of elements permutations of data sets and batches usually have.
"""
from __future__ import annotations

import math

import numpy as np

import ftrans.numpy as fnp
from ftrans._vmap import vmap
from ftrans.numpy._core import aval_of, normalize_axis
from ftrans.random._keys import check_key, random_bits, split
from ftrans.random._public import public_returning_arrays as public
from ftrans.random._samplers import gumbel, randint, uniform
from ir.errors import at_user_line


def _stable_order(sort_keys, descending=False):
    """The indices that sort 1-D `sort_keys` stably (equal keys keep their order), as lax.sort does."""
    n = aval_of(sort_keys).shape[0]
    row, column = sort_keys[:, None], sort_keys[None, :]  # row i, column j
    before = (column > row) if descending else (column < row)
    earlier = np.tri(n, k=-1, dtype=bool)  # j < i
    rank = fnp.sum(before | ((column == row) & earlier), axis=1)  # where element i goes
    return fnp.argmax(rank[None, :] == fnp.arange(n)[:, None], axis=1)  # which element lands at r


def top_k_indices(x, k):
    """The indices of the k largest entries along the last axis, the largest first (ties by index), as
    lax.top_k's."""
    order = lambda row: _stable_order(row, descending=True)[:k]  # noqa: E731
    for _ in range(aval_of(x).ndim - 1):
        order = vmap(order)
    return order(x)


def _shuffle_along_last(key, x):
    """JAX's _shuffle on the last axis: rounds of a stable sort by fresh 32-bit keys."""
    n = aval_of(x).shape[-1]
    size = math.prod(aval_of(x).shape)
    rounds = int(np.ceil(3 * np.log(max(1, size)) / np.log(np.iinfo(np.uint32).max)))
    for _ in range(rounds):
        key, subkey = split(key)
        sort_keys = random_bits(subkey, 32, aval_of(x).shape)
        if n == 0:
            continue
        take_row = lambda k, v: fnp.take(v, _stable_order(k), axis=0)  # noqa: E731
        for _ in range(aval_of(x).ndim - 1):
            take_row = vmap(take_row)
        x = take_row(sort_keys, x)
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
            cumulative = _cumsum(p)
            r = cumulative[-1] * (1 - uniform(key, shape, dtype=p.dtype))
            # searchsorted (left): how many cumulative sums are below each r
            ind = fnp.sum(cumulative < fnp.expand_dims(r, -1), axis=-1)
        else:
            g = gumbel(key, (n_inputs,), dtype=p.dtype, mode=mode or "low") + fnp.log(p)
            ind = top_k_indices(g, n_draws)
        result = ind if arr.ndim == 0 else fnp.take(arr, ind, axis)
    return fnp.reshape(result, shape if arr.ndim == 0 else arr.shape[:axis] + shape + arr.shape[axis + 1:])


def _cumsum(p):
    """Running sums, left to right (NB: ftrans.numpy has no cumsum yet): a sum of a masked matrix."""
    n = p.shape[0]
    return fnp.sum(fnp.where(np.tri(n, dtype=bool), p[None, :], p.dtype.type(0)), axis=1)


