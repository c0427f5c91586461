"""Keys and bits: JAX's Threefry-2x32 key API, with `jax_threefry_partitionable` on (JAX's default).

A key is a `uint32[2]` array, as JAX's legacy `PRNGKey`s are; `key(seed)` gives the same array
(ftrans has no key dtype: `key_data` and `wrap_key_data` pass the bits through, checked). A key
is pure data: the same key gives the same bits, under `jit`, under `vmap` (a batch of keys is a
`uint32[n, 2]` array mapped over axis 0) and inside loops.

The bits of shape S are threefry2x32(key, hi, lo), where (hi, lo) are the two 32-bit halves of
each element's row-major index in S (JAX's `iota_2x32_shape`): 32-bit draws are the xor of the
two output words, 64-bit draws the first word above the second, 8 and 16-bit draws the xor cut
to width. `split` is the same hash of the indices of the key array's shape, both words kept.
"""
from __future__ import annotations

import math

import numpy as np

import ftrans.numpy as fnp
from ftrans.numpy._core import aval_of, shape_tuple
from ftrans.random._public import public_returning_arrays as public
from ir.errors import at_user_line
from ir.primitives import structural
from ir.primitives.bits import shift_left, shift_right_logical, threefry2x32
from ir.primitives.elementwise import bitwise_or, bitwise_xor, convert_element_type
from ir.tracing import Tracer

U32, U64 = np.dtype(np.uint32), np.dtype(np.uint64)
UINT_OF_WIDTH = {8: np.dtype(np.uint8), 16: np.dtype(np.uint16), 32: U32, 64: U64}


def check_key(name, key, batched_ok=False):
    """`key` as an array or tracer of uint32[2] (uint32[..., 2] if `batched_ok`), or a clear error."""
    if not isinstance(key, Tracer):
        key = np.asarray(key)
    aval = aval_of(key, name)
    if aval.dtype != U32 or not aval.shape or aval.shape[-1] != 2:
        raise TypeError(at_user_line(f"{name}: a key is a uint32[2] array (from ft.random.PRNGKey, key, split or "
                                     f"fold_in), got {aval.str_short()}"))
    if aval.shape != (2,) and not batched_ok:
        raise TypeError(at_user_line(f"{name} accepts a single key, but was given a key array of shape "
                                     f"{aval.shape[:-1]} != (). Use ft.vmap for batching."))
    return key


def _seed_words(seed):
    """The key of an integer seed: its high and low 32 bits (a 32-bit seed has no high bits)."""
    aval = aval_of(seed, "PRNGKey")
    if aval.dtype.kind not in "iu":
        raise TypeError(at_user_line(f"PRNGKey: the seed must be an integer, got {aval.str_short()}"))
    if aval.shape:
        raise TypeError(at_user_line(f"PRNGKey accepts a scalar seed, but was given an array of shape "
                                     f"{aval.shape} != (). Use ft.vmap for batching"))
    dtype = aval.dtype
    if type(seed) is int:  # a Python int is an int64, as in JAX with 64-bit types on
        if not -2**63 <= seed < 2**64:
            raise OverflowError(f"PRNGKey: the seed {seed} does not fit in 64 bits")
        seed = np.uint64(seed) if seed >= 2**63 else np.int64(seed)
        dtype = seed.dtype
    width = 8 * dtype.itemsize
    high = (convert_element_type(shift_right_logical(seed, dtype.type(32)), U32) if width == 64
            else np.uint32(0))
    # NB: JAX's `seed & 0xFFFFFFFF` promotes a narrow signed seed to int64 first: -1 gives 0xFFFFFFFF
    low = convert_element_type(convert_element_type(seed, np.int64 if dtype.kind == "i" else U64), U32)
    return high, low


@public
def PRNGKey(seed, *, impl=None):
    """A key from an integer seed, as `jax.random.PRNGKey`: uint32[2], the seed's 64 bits split in two."""
    _check_impl(impl)
    high, low = _seed_words(seed)
    return fnp.stack([fnp.asarray(high, U32), fnp.asarray(low, U32)])


@public
def key(seed, *, impl=None):
    """As `jax.random.key`; NB: ftrans has no key dtype, so this is PRNGKey's uint32[2] array."""
    return PRNGKey(seed, impl=impl)


def _check_impl(impl):
    if impl not in (None, "threefry2x32"):
        raise ValueError(f"ftrans.random implements only the threefry2x32 PRNG, got impl={impl!r}")


@public
def key_data(keys):
    """The raw uint32 bits of `keys` (which are those bits already)."""
    return check_key("key_data", keys, batched_ok=True)


@public
def wrap_key_data(key_bits_array, *, impl=None):
    """Keys from raw bits (a uint32[..., 2] array), checked."""
    _check_impl(impl)
    return check_key("wrap_key_data", key_bits_array, batched_ok=True)


def _counts(shape):
    """The row-major index of each element of `shape`, as its high and low 32-bit words."""
    index = structural.reshape(structural.iota(U64, (math.prod(shape),)), tuple(shape))
    return convert_element_type(shift_right_logical(index, np.uint64(32)), U32), convert_element_type(index, U32)


def _hash_of_indices(key, shape):
    high, low = _counts(shape)
    return threefry2x32(key[0], key[1], high, low)


def random_bits(key, bit_width, shape):
    """Unsigned ints of `bit_width` bits and `shape`, from a checked single key."""
    if bit_width not in UINT_OF_WIDTH:
        raise TypeError(at_user_line(f"bits: bit_width must be 8, 16, 32 or 64, got {bit_width}"))
    bits0, bits1 = _hash_of_indices(key, shape)
    if bit_width == 64:
        high = convert_element_type(bits0, U64)
        return bitwise_or(shift_left(high, np.uint64(32)), convert_element_type(bits1, U64))
    bits = bitwise_xor(bits0, bits1)
    return bits if bit_width == 32 else convert_element_type(bits, UINT_OF_WIDTH[bit_width])


@public
def split(key, num=2):
    """`num` new keys (a shape, if a tuple): uint32[*num, 2], as `jax.random.split`."""
    key = check_key("split", key)
    shape = shape_tuple(num if isinstance(num, (tuple, list)) else (num,), "split", "num")
    words = _hash_of_indices(key, shape)
    return fnp.stack(words, axis=len(shape))


@public
def fold_in(key, data):
    """A new key, a function of `key` and the 32-bit integer `data`, as `jax.random.fold_in`."""
    key = check_key("fold_in", key)
    aval = aval_of(data, "fold_in")
    if aval.shape:
        raise TypeError(at_user_line(f"fold_in accepts a scalar, but was given an array of shape {aval.shape} "
                                     "!= (). Use ft.vmap for batching."))
    if aval.dtype.kind not in "iub":
        raise TypeError(at_user_line(f"fold_in: data must be an integer, got {aval.str_short()}"))
    if type(data) is int:
        data = np.int64(data)
    # the seed key of `data` as uint32 is (0, data), hashed as one count under `key`
    words = threefry2x32(key[0], key[1], np.uint32(0), convert_element_type(data, U32))
    return fnp.stack(words)


@public
def bits(key, shape=(), dtype=None):
    """Uniform random bits as unsigned ints of `dtype` (default uint64, as JAX with 64-bit types)."""
    key = check_key("bits", key)
    dtype = U64 if dtype is None else np.dtype(dtype)
    if dtype.kind != "u":
        raise TypeError(at_user_line(f"bits: dtype must be an unsigned integer dtype, got {dtype.name}"))
    return random_bits(key, 8 * dtype.itemsize, shape_tuple(shape, "bits"))



@public
def threefry_2x32(keypair, count):
    """The Threefry-2x32 hash of uint32 `count` under the key (k0, k1), as `jax.random.threefry_2x32`:
    the flat counts are cut in two halves (padded with a 0 when odd), hashed pairwise, joined again."""
    keypair = check_key("threefry_2x32", keypair)
    count = fnp.asarray(count)
    if count.dtype != U32:
        raise TypeError(at_user_line(f"threefry_2x32 needs uint32 counts, got {count.dtype.name}"))
    flat = fnp.reshape(count, (-1,))
    odd = flat.shape[0] % 2
    if odd:
        flat = fnp.concatenate([flat, fnp.zeros((1,), U32)])
    half = flat.shape[0] // 2
    words = threefry2x32(keypair[0], keypair[1], flat[:half], flat[half:])
    out = fnp.concatenate(words)
    return fnp.reshape(out[:-1] if odd else out, count.shape)
