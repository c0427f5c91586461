"""Gather and scatter with integer index arrays.

`indices` has shape ``batch + (k,)``: each row names one element of the first
k dimensions of `operand`. ``gather`` returns ``operand[idx[..., 0], ...,
idx[..., k-1]]``, of shape ``batch + operand.shape[k:]``. ``ftrans.numpy``
moves the indexed axes to the front and back again, so this one normalized
form covers all of NumPy's integer-array indexing.

Out-of-range indices: gather clamps them (as JAX under jit) with
``mode="clip"``, or yields a fill value with ``mode="fill"`` (NaN for floats,
the lowest integer, False); scatters drop those updates. ``ftrans.numpy``
raises IndexError for concrete out-of-range indices before any of this.
"""
from __future__ import annotations

import numpy as np

from ir.core import ShapedArray
from ir.primitive import Primitive
from ir.tracing import bind


def _index_depth(name, operand, indices):
    if indices.dtype.kind not in "iu":
        raise TypeError(f"{name} needs integer indices, got {indices.str_short()}")
    if indices.ndim == 0 or not 1 <= indices.shape[-1] <= operand.ndim:
        raise TypeError(f"{name}: indices {indices.str_short()} must end in a dimension of size "
                        f"1..{operand.ndim} (the indexed axes of {operand.str_short()})")
    return indices.shape[-1]


GATHER_MODES = ("clip", "fill")


def _gather_abstract_eval(operand, indices, *, mode):
    if mode not in GATHER_MODES:
        raise TypeError(f"gather: mode must be one of {GATHER_MODES}, got {mode!r}")
    k = _index_depth("gather", operand, indices)
    return ShapedArray(indices.shape[:-1] + operand.shape[k:], operand.dtype, operand.weak_type)


def _index_tuple(operand_shape, indices):
    k = indices.shape[-1]
    upper = np.array(operand_shape[:k]) - 1
    clamped = np.clip(indices, 0, np.maximum(upper, 0))
    return tuple(clamped[..., j] for j in range(k))


def fill_value(dtype):
    if dtype.kind == "f":
        return np.nan
    if dtype.kind == "b":
        return False
    return np.iinfo(dtype).min if dtype.kind == "i" else np.iinfo(dtype).max


def _gather_impl(operand, indices, *, mode):
    result = operand[_index_tuple(operand.shape, indices)]
    if mode == "fill":
        outside = ~_in_range_rows(operand.shape, indices)
        if outside.any():
            result = np.array(result, copy=True)
            result[outside] = fill_value(operand.dtype)
    return result


gather_p = Primitive("gather", abstract_eval=_gather_abstract_eval, impl=_gather_impl, linear_in=(0,))


def _scatter_abstract_eval(name):
    def abstract_eval(operand, indices, updates):
        k = _index_depth(name, operand, indices)
        expected = indices.shape[:-1] + operand.shape[k:]
        if updates.shape != expected or updates.dtype != operand.dtype:
            raise TypeError(f"{name} into {operand.str_short()} at {indices.str_short()} needs updates "
                            f"{ShapedArray(expected, operand.dtype).str_short()}, got {updates.str_short()}")
        return operand
    return abstract_eval


def _in_range_rows(operand_shape, indices):
    k = indices.shape[-1]
    return np.all((indices >= 0) & (indices < np.array(operand_shape[:k])), axis=-1)


def _scatter_add_impl(operand, indices, updates):
    result = np.array(operand, copy=True)
    keep = _in_range_rows(operand.shape, indices)
    np.add.at(result, tuple(indices[keep][:, j] for j in range(indices.shape[-1])), updates[keep])
    return result


def _scatter_impl(operand, indices, updates):
    result = np.array(operand, copy=True)
    keep = _in_range_rows(operand.shape, indices)
    result[tuple(indices[keep][:, j] for j in range(indices.shape[-1]))] = updates[keep]
    return result


scatter_add_p = Primitive("scatter_add", abstract_eval=_scatter_abstract_eval("scatter_add"),
                          impl=_scatter_add_impl, linear_in=(0, 2))
# NB: where indices repeat, which update wins is unspecified (as in JAX)
scatter_p = Primitive("scatter", abstract_eval=_scatter_abstract_eval("scatter"), impl=_scatter_impl)


def gather(operand, indices, mode="clip"):
    return bind(gather_p, operand, indices, mode=mode)


def scatter_add(operand, indices, updates):
    return bind(scatter_add_p, operand, indices, updates)


def scatter(operand, indices, updates):
    return bind(scatter_p, operand, indices, updates)
