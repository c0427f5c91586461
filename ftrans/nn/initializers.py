"""jax.nn.initializers: functions of (key, shape, dtype) that draw parameters, the same numbers as
JAX's for the same key (the default dtype is float64, JAX's with 64-bit types on).

    init = ft.nn.initializers.glorot_uniform()
    w = init(ft.random.PRNGKey(0), (784, 128))
"""
from __future__ import annotations

import math

import numpy as np

import ftrans.numpy as fnp
import ftrans.random as random
from ftrans.numpy._core import shape_tuple
from ir.errors import at_user_line

__all__ = ["constant", "glorot_normal", "glorot_uniform", "he_normal", "he_uniform", "kaiming_normal",
           "kaiming_uniform", "lecun_normal", "lecun_uniform", "normal", "ones", "orthogonal", "truncated_normal",
           "uniform", "variance_scaling", "xavier_normal", "xavier_uniform", "zeros"]


def _dtype(dtype):
    return np.dtype(np.float64 if dtype is None else dtype)


def zeros(key, shape, dtype=None):
    """Zeros (the key is ignored)."""
    return fnp.zeros(shape_tuple(shape, "zeros"), _dtype(dtype))


def ones(key, shape, dtype=None):
    """Ones (the key is ignored)."""
    return fnp.ones(shape_tuple(shape, "ones"), _dtype(dtype))


def constant(value, dtype=None):
    """An initializer filling arrays with `value`."""
    def init(key, shape, dtype=dtype):
        return fnp.full(shape_tuple(shape, "constant"), value, _dtype(dtype))
    return init


def uniform(scale=1e-2, dtype=None):
    """An initializer drawing uniformly from [0, scale)."""
    def init(key, shape, dtype=dtype):
        dtype = _dtype(dtype)
        return random.uniform(key, shape, dtype) * fnp.asarray(scale, dtype)
    return init


def normal(stddev=1e-2, dtype=None):
    """An initializer drawing from N(0, stddev^2)."""
    def init(key, shape, dtype=dtype):
        dtype = _dtype(dtype)
        return random.normal(key, shape, dtype) * fnp.asarray(stddev, dtype)
    return init


def truncated_normal(stddev=1e-2, dtype=None, lower=-2.0, upper=2.0):
    """An initializer drawing from N(0, 1) truncated to [lower, upper], times stddev."""
    def init(key, shape, dtype=dtype):
        dtype = _dtype(dtype)
        return random.truncated_normal(key, lower, upper, shape, dtype) * fnp.asarray(stddev, dtype)
    return init


def _size_of(shape, axes):
    return shape[axes] if isinstance(axes, int) else math.prod(shape[i] for i in axes)


def compute_fans(shape, in_axis=-2, out_axis=-1, batch_axis=()):
    """(fan_in, fan_out) of a weight shape; axes in none of the three make the receptive field."""
    if isinstance(in_axis, int) and in_axis == -2 and len(shape) <= 1:
        raise ValueError(at_user_line(f"Can't compute input and output sizes of a {len(shape)}-dimensional weights "
                                      "tensor with default in_axis. Must be at least 2D or specify in_axis "
                                      "explicitly."))
    in_size, out_size = _size_of(shape, in_axis), _size_of(shape, out_axis)
    receptive_field = math.prod(shape) / in_size / out_size / _size_of(shape, batch_axis)
    return in_size * receptive_field, out_size * receptive_field


# the standard deviation of N(0, 1) truncated to [-2, 2]
_TRUNCATED_STDDEV = .87962566103423978


def variance_scaling(scale, mode, distribution, in_axis=-2, out_axis=-1, batch_axis=(), dtype=None):
    """Draws with variance scale / n, n the fan given by `mode` ("fan_in", "fan_out", "fan_avg",
    "fan_geo_avg"), from `distribution` ("truncated_normal", "normal", "uniform")."""
    if mode not in ("fan_in", "fan_out", "fan_avg", "fan_geo_avg"):
        raise ValueError(f"invalid mode for variance scaling initializer: {mode}")
    if distribution not in ("truncated_normal", "normal", "uniform"):
        raise ValueError(f"invalid distribution for variance scaling initializer: {distribution}")

    def init(key, shape, dtype=dtype):
        shape = shape_tuple(shape, "variance_scaling")
        dtype = _dtype(dtype)
        fan_in, fan_out = compute_fans(shape, in_axis, out_axis, batch_axis)
        denominator = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2,
                       "fan_geo_avg": (fan_in * fan_out) ** 0.5}[mode]
        variance = fnp.asarray(scale / denominator, dtype)
        if distribution == "truncated_normal":
            stddev = fnp.sqrt(variance) / fnp.asarray(_TRUNCATED_STDDEV, dtype)
            return random.truncated_normal(key, -2, 2, shape, dtype) * stddev
        if distribution == "normal":
            return random.normal(key, shape, dtype) * fnp.sqrt(variance)
        return random.uniform(key, shape, dtype, -1) * fnp.sqrt(3 * variance)
    return init


def glorot_uniform(in_axis=-2, out_axis=-1, batch_axis=(), dtype=None):
    return variance_scaling(1.0, "fan_avg", "uniform", in_axis, out_axis, batch_axis, dtype)


def glorot_normal(in_axis=-2, out_axis=-1, batch_axis=(), dtype=None):
    return variance_scaling(1.0, "fan_avg", "truncated_normal", in_axis, out_axis, batch_axis, dtype)


def lecun_uniform(in_axis=-2, out_axis=-1, batch_axis=(), dtype=None):
    return variance_scaling(1.0, "fan_in", "uniform", in_axis, out_axis, batch_axis, dtype)


def lecun_normal(in_axis=-2, out_axis=-1, batch_axis=(), dtype=None):
    return variance_scaling(1.0, "fan_in", "truncated_normal", in_axis, out_axis, batch_axis, dtype)


def he_uniform(in_axis=-2, out_axis=-1, batch_axis=(), dtype=None):
    return variance_scaling(2.0, "fan_in", "uniform", in_axis, out_axis, batch_axis, dtype)


def he_normal(in_axis=-2, out_axis=-1, batch_axis=(), dtype=None):
    return variance_scaling(2.0, "fan_in", "truncated_normal", in_axis, out_axis, batch_axis, dtype)


xavier_uniform, xavier_normal = glorot_uniform, glorot_normal
kaiming_uniform, kaiming_normal = he_uniform, he_normal


def orthogonal(scale=1.0, column_axis=-1, dtype=None):
    """An initializer drawing matrices with orthonormal rows or columns (QR of a normal draw, as JAX)."""
    def init(key, shape, dtype=dtype):
        shape = shape_tuple(shape, "orthogonal")
        dtype = _dtype(dtype)
        if len(shape) < 2:
            raise ValueError("orthogonal initializer requires at least a 2D shape")
        if 0 in shape:
            return fnp.zeros(shape, dtype)
        n_cols = shape[column_axis]
        n_rows = math.prod(shape) // n_cols
        q = random.orthogonal(key, n_rows, (), dtype, n_cols)
        q = fnp.reshape(q, tuple(np.delete(shape, column_axis)) + (n_cols,))
        return fnp.asarray(scale, dtype) * fnp.moveaxis(q, -1, column_axis)
    return init


from ftrans._unavailable import missing_name_hook as _missing_name_hook  # noqa: E402

__getattr__ = _missing_name_hook(__name__)  # a JAX name not ported yet says so
