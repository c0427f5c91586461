"""Reductions over a set of axes, and arg-reductions."""
from __future__ import annotations

import numpy as np

from ir.core import ShapedArray
from ir.primitive import Primitive
from ir.tracing import bind


def _reduced_aval(name, x, axes, dtype=None):
    if any(not 0 <= a < x.ndim for a in axes) or len(set(axes)) != len(axes):
        raise TypeError(f"{name}: axes {axes} are not distinct axes of {x.str_short()}")
    shape = [n for i, n in enumerate(x.shape) if i not in axes]
    return ShapedArray(shape, dtype or x.dtype, x.weak_type and dtype is None)


def _reducer(name, impl, kinds):
    def abstract_eval(x, *, axes):
        if x.dtype.kind not in kinds:
            raise TypeError(f"{name} does not take {x.str_short()}")
        return _reduced_aval(name, x, axes)
    return Primitive(name, abstract_eval=abstract_eval, impl=impl)


def _identity_of_max(dtype):
    return -np.inf if dtype.kind == "f" else (False if dtype.kind == "b" else np.iinfo(dtype).min)


def _identity_of_min(dtype):
    return np.inf if dtype.kind == "f" else (True if dtype.kind == "b" else np.iinfo(dtype).max)


# NB: sums keep the operand's dtype (NumPy would widen int32 sums to int64; ftrans.numpy converts first)
reduce_sum_p = _reducer("reduce_sum", lambda x, *, axes: np.sum(x, axis=axes, dtype=x.dtype), "fiu")
reduce_prod_p = _reducer("reduce_prod", lambda x, *, axes: np.prod(x, axis=axes, dtype=x.dtype), "fiu")
# as JAX: the max of no elements is -inf (the dtype's lowest value), not an error
reduce_max_p = _reducer("reduce_max", lambda x, *, axes: np.max(x, axis=axes, initial=_identity_of_max(x.dtype)), "fiub")
reduce_min_p = _reducer("reduce_min", lambda x, *, axes: np.min(x, axis=axes, initial=_identity_of_min(x.dtype)), "fiub")


def _arg_reducer(name, np_fun):
    def abstract_eval(x, *, axes, index_dtype):
        if len(axes) != 1:
            raise TypeError(f"{name} reduces exactly one axis, got axes={axes}")
        if x.shape[axes[0]] == 0:
            raise TypeError(f"{name} of an empty axis of {x.str_short()}")
        return _reduced_aval(name, x, axes, dtype=index_dtype)

    def impl(x, *, axes, index_dtype):
        return np_fun(x, axis=axes[0]).astype(index_dtype)
    return Primitive(name, abstract_eval=abstract_eval, impl=impl)


argmax_p = _arg_reducer("argmax", np.argmax)
argmin_p = _arg_reducer("argmin", np.argmin)


def reduce_sum(x, axes):
    return bind(reduce_sum_p, x, axes=tuple(axes))


def reduce_prod(x, axes):
    return bind(reduce_prod_p, x, axes=tuple(axes))


def reduce_max(x, axes):
    return bind(reduce_max_p, x, axes=tuple(axes))


def reduce_min(x, axes):
    return bind(reduce_min_p, x, axes=tuple(axes))


def argmax(x, axis, index_dtype=np.int64):
    return bind(argmax_p, x, axes=(axis,), index_dtype=np.dtype(index_dtype))


def argmin(x, axis, index_dtype=np.int64):
    return bind(argmin_p, x, axes=(axis,), index_dtype=np.dtype(index_dtype))
