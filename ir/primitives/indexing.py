"""Gather and scatter with integer index arrays.

`indices` has shape ``batch + (k,)``: each row names one element of the first
k dimensions of `operand`. ``gather`` returns ``operand[idx[..., 0], ...,
idx[..., k-1]]``, of shape ``batch + operand.shape[k:]``. ``ftrans.numpy``
moves the indexed axes to the front and back again, so this one normalized
form covers all of NumPy's integer-array indexing.

Out-of-range indices: gather clamps them (as JAX under jit) with
``mode="clip"``, or yields a fill value with ``mode="fill"`` (NaN for floats,
`fill_value`, or by default NaN for floats, the lowest integer, False); scatters
drop those updates. ``ftrans.numpy``
raises IndexError for concrete out-of-range indices before any of this.
"""
from __future__ import annotations

import numpy as np

from ir.core import ShapedArray, array_module, common_arrays
from ir.markers import Zero, not_mapped
from ir.primitive import OneOf, Optional, Primitive, Scalar
from ir.primitives import elementwise as ew
from ir.primitives import structural
from ir.primitives.ad_util import aval_of, instantiate, is_undefined, jvp_from_derivatives, zeros
from ir.primitives.batch_util import batch_size, bdim_to, move_dim
from ir.tracing import bind, get_aval


def _index_depth(name, operand, indices):
    if operand.dtype.kind not in "fiub":
        raise TypeError(f"{name} needs a numeric or bool operand, got {operand.str_short()}")
    if indices.dtype.kind not in "iu":
        raise TypeError(f"{name} needs integer indices, got {indices.str_short()}")
    if indices.ndim == 0 or not 1 <= indices.shape[-1] <= operand.ndim:
        raise TypeError(f"{name}: indices {indices.str_short()} must end in a dimension of size "
                        f"1..{operand.ndim} (the indexed axes of {operand.str_short()})")
    return indices.shape[-1]


GATHER_MODES = ("clip", "fill")


def _gather_abstract_eval(operand, indices, *, mode, fill_value=None):
    if mode not in GATHER_MODES:
        raise TypeError(f"gather: mode must be one of {GATHER_MODES}, got {mode!r}")
    k = _index_depth("gather", operand, indices)
    if mode == "clip" and 0 in operand.shape[:k] and 0 not in indices.shape[:-1]:
        raise TypeError(f"gather: mode='clip' has no element to clamp to in an empty axis of "
                        f"{operand.str_short()} (mode='fill' reads its fill value)")
    if fill_value is not None and not _holds(operand.dtype, fill_value):
        raise TypeError(f"gather: fill_value={fill_value!r} is not a value of {operand.str_short()}")
    return ShapedArray(indices.shape[:-1] + operand.shape[k:], operand.dtype, operand.weak_type)


def _holds(dtype, value):
    """Whether `value` (a Python scalar) is exactly a value of `dtype`: a fill
    value is written as it is, so it must not need rounding or wrapping."""
    if dtype.kind == "b":
        return type(value) is bool
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return type(value) in (bool, int) and info.min <= value <= info.max
    return True  # floats hold every bool, int and float (rounded, as any float literal is)


def _signed(indices):
    """uint64 indices as int64, values past int64's range saturated (they are out
    of range for every axis either way): NumPy promotes uint64 beside the int64
    bounds to float64, which cannot index."""
    if indices.dtype != np.uint64:
        return indices
    xp = array_module(indices)
    return xp.minimum(indices, np.uint64(2**63 - 1)).astype(np.int64)


def _index_tuple(operand_shape, indices):
    indices = _signed(indices)
    k = indices.shape[-1]
    upper = array_module(indices).array(operand_shape[:k]) - 1
    clamped = np.clip(indices, 0, np.maximum(upper, 0))
    return tuple(clamped[..., j] for j in range(k))


def default_fill_value(dtype):
    if dtype.kind == "f":
        return np.nan
    if dtype.kind == "b":
        return False
    return np.iinfo(dtype).min if dtype.kind == "i" else np.iinfo(dtype).max


def _gather_impl(operand, indices, *, mode, fill_value=None):
    xp, (operand, indices) = common_arrays(operand, indices)  # an iota operand, or indices, may be NumPy's
    k = indices.shape[-1]
    if mode == "fill" and 0 in operand.shape[:k]:  # every index is out of range: all fill
        fill = default_fill_value(operand.dtype) if fill_value is None else fill_value
        return xp.full(indices.shape[:-1] + operand.shape[k:], fill, dtype=operand.dtype)
    result = operand[_index_tuple(operand.shape, indices)]
    if mode == "fill":
        outside = ~_in_range_rows(operand.shape, indices)
        if outside.any():
            result = xp.array(result, copy=True)
            result[outside] = default_fill_value(operand.dtype) if fill_value is None else fill_value
    return result


def _clamped(indices, operand_shape):
    """The indices a clip-mode gather actually reads (for its transpose). The
    bounds are scalars, one per indexed axis: an array of them would be a NumPy
    constant, which CuPy indices cannot meet."""
    aval = aval_of(indices)
    # NB: no index of a narrow dtype (int8 into an axis of 1000) reaches past its dtype's maximum
    top = np.iinfo(aval.dtype).max
    last, bounds = aval.ndim - 1, [min(max(n - 1, 0), top) for n in operand_shape[:aval.shape[-1]]]

    def clamp(x, bound):
        return ew.max(ew.min(x, aval.dtype.type(bound)), aval.dtype.type(0))
    if len(set(bounds)) == 1:  # one indexed axis, or axes of one size
        return clamp(indices, bounds[0])
    columns = [structural.slice(indices, [0] * last + [j], aval.shape[:-1] + (j + 1,)) for j in range(len(bounds))]
    return structural.concatenate([clamp(c, b) for c, b in zip(columns, bounds, strict=True)], last)


def _gather_transpose(ct, operand, indices, *, mode, fill_value=None):
    if type(ct) is Zero:
        return [None, None]
    if is_undefined(indices):
        raise ValueError("gather is not linear in its indices")
    if mode == "clip":
        indices = _clamped(indices, operand.aval.shape)
    return [scatter_add(zeros(operand.aval), indices, ct), None]


gather_p = Primitive("gather", params={"mode": OneOf(*GATHER_MODES), "fill_value": Optional(Scalar())},
                     abstract_eval=_gather_abstract_eval, impl=_gather_impl, linear_in=(0,),
                     transpose=_gather_transpose)
gather_p.define(jvp=jvp_from_derivatives(
    gather_p, lambda t, out, operand, indices, **params: bind(gather_p, t, indices, **params), None))


def _with_example_column(indices, bdim):
    """Batched indices with the batch axis first and each row prefixed by its
    example's number, so that it indexes a batched operand's own example."""
    indices = move_dim(indices, bdim, 0)
    shape = get_aval(indices).shape
    column = structural.iota(get_aval(indices).dtype, shape[:-1] + (1,), 0)
    return structural.concatenate([column, indices], len(shape) - 1)


def _gather_batch(values, dims, *, mode, fill_value=None):
    """Operand batched only: its batch axis goes just after the k indexed axes,
    where gather keeps it. Indices batched only: the batch axis is one more
    axis of index rows. Both: each row also names its example (an iota column).
    `mode` and `fill_value` act on the same indices as before, so they mean the same."""
    (operand, indices), (operand_bdim, indices_bdim) = values, dims
    if indices_bdim is not_mapped:
        k = get_aval(indices).shape[-1]
        operand = move_dim(operand, operand_bdim, k)
        return gather(operand, indices, mode, fill_value), get_aval(indices).ndim - 1
    if operand_bdim is not_mapped:
        if indices_bdim == get_aval(indices).ndim - 1:  # the batch axis must not follow the index rows
            indices, indices_bdim = move_dim(indices, indices_bdim, 0), 0
        return gather(operand, indices, mode, fill_value), indices_bdim
    operand = move_dim(operand, operand_bdim, 0)
    return gather(operand, _with_example_column(indices, indices_bdim), mode, fill_value), 0


gather_p.define(batch=_gather_batch)


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
    indices = _signed(indices)
    k = indices.shape[-1]
    bounds = array_module(indices).array(operand_shape[:k])
    return np.all((indices >= 0) & (indices < bounds), axis=-1)


# Scatters take their array module from all operands: the zeros a transpose scatters into are NumPy's.
def _scatter_add_impl(operand, indices, updates):
    xp, (operand, indices, updates) = common_arrays(operand, indices, updates)
    result = xp.array(operand, copy=True)
    keep = _in_range_rows(operand.shape, indices)
    xp.add.at(result, tuple(indices[keep][:, j] for j in range(indices.shape[-1])), updates[keep])
    return result


def _scatter_impl(operand, indices, updates):
    xp, (operand, indices, updates) = common_arrays(operand, indices, updates)
    result = xp.array(operand, copy=True)
    keep = _in_range_rows(operand.shape, indices)
    result[tuple(indices[keep][:, j] for j in range(indices.shape[-1]))] = updates[keep]
    return result


def _scatter_jvp(prim):
    def jvp(primals, tangents):
        operand, indices, updates = primals
        out = bind(prim, operand, indices, updates)
        t_operand, _, t_updates = tangents
        if type(t_operand) is Zero and type(t_updates) is Zero:
            return out, Zero(aval_of(out))
        return out, bind(prim, instantiate(t_operand), indices, instantiate(t_updates))
    return jvp


def _updates_ct(ct, indices):
    """The cotangent each update receives: ct at its position (0 if it was dropped)."""
    return gather(ct, indices, mode="fill", fill_value=aval_of(ct).dtype.type(0).item())


def _scatter_add_transpose(ct, operand, indices, updates):
    if type(ct) is Zero:
        return [None, None, None]
    return [ct if is_undefined(operand) else None, None,
            _updates_ct(ct, indices) if is_undefined(updates) else None]


def _scatter_transpose(ct, operand, indices, updates):
    if type(ct) is Zero:
        return [None, None, None]
    ct_operand = None
    if is_undefined(operand):  # overwritten positions do not reach the operand
        ct_operand = scatter(ct, indices, zeros(aval_of(updates)))
    return [ct_operand, None, _updates_ct(ct, indices) if is_undefined(updates) else None]


scatter_add_p = Primitive("scatter_add", params={}, abstract_eval=_scatter_abstract_eval("scatter_add"),
                          impl=_scatter_add_impl, linear_in=(0, 2), transpose=_scatter_add_transpose)
scatter_add_p.define(jvp=_scatter_jvp(scatter_add_p))
# NB: where indices repeat, which update wins is unspecified (as in JAX); its
# transpose gives every duplicate the cotangent of the position
scatter_p = Primitive("scatter", params={}, abstract_eval=_scatter_abstract_eval("scatter"), impl=_scatter_impl,
                      linear_in=(0, 2), transpose=_scatter_transpose)
scatter_p.define(jvp=_scatter_jvp(scatter_p))


def _scatter_batcher(prim):
    """Shared indices: one scatter into an operand whose batch axis follows the
    k indexed axes, with updates batched just after their index-row axes.
    Batched indices: everything batched along axis 0, each index row prefixed
    by its example's number. The operand is broadcast when unbatched: every
    example writes into its own copy. Out-of-range rows stay out of range."""
    def batch(values, dims):
        (operand, indices, updates), (operand_bdim, indices_bdim, updates_bdim) = values, dims
        size = batch_size(values, dims)
        if indices_bdim is not_mapped:
            k = get_aval(indices).shape[-1]
            operand = bdim_to(operand, operand_bdim, size, k)
            updates = bdim_to(updates, updates_bdim, size, get_aval(indices).ndim - 1)
            return bind(prim, operand, indices, updates), k
        operand = bdim_to(operand, operand_bdim, size, 0)
        updates = bdim_to(updates, updates_bdim, size, 0)
        return bind(prim, operand, _with_example_column(indices, indices_bdim), updates), 0
    return batch


scatter_add_p.define(batch=_scatter_batcher(scatter_add_p))
scatter_p.define(batch=_scatter_batcher(scatter_p))


def gather(operand, indices, mode="clip", fill_value=None):
    return bind(gather_p, operand, indices, mode=mode, fill_value=fill_value)


def scatter_add(operand, indices, updates):
    return bind(scatter_add_p, operand, indices, updates)


def scatter(operand, indices, updates):
    return bind(scatter_p, operand, indices, updates)
