"""Primitives that move data without arithmetic: broadcasting, reshaping,
transposition, squeezing, concatenation, slicing, reversal, and iota."""
from __future__ import annotations

import builtins
import math

import numpy as np

from ir.core import ShapedArray, array_module, check_supported_dtype, common_arrays
from ir.markers import Zero, not_mapped
from ir.primitive import (AXES, AXIS, NON_NEGATIVE_INT, POSITIVE_INT, SHAPE, DType, Optional, Primitive, Tuple,
                          TupleOf)
from ir.primitives import elementwise, reductions
from ir.primitives.ad_util import aval_of, is_undefined, linear_jvp, scalar_like, zero_jvp
from ir.primitives.batch_util import batch_size, bdim_to, broadcast_batched, move_dim, shift_dim
from ir.primitives.elementwise import array_if_python_scalar
from ir.primitives.taylor_util import taylor_from_jvp, zero_taylor
from ir.tracing import bind, get_aval


def _linear_unary_transpose(ct_to_operand):
    """Transpose rule of a primitive linear in its one operand."""
    def transpose(ct, x, **params):
        return [None if type(ct) is Zero else ct_to_operand(ct, x.aval, **params)]
    return transpose


def _check_axes(name, axes, ndim):
    if any(not 0 <= a < ndim for a in axes) or len(set(axes)) != len(axes):
        raise TypeError(f"{name}: axes {axes} are not distinct axes of a rank-{ndim} operand")


# -------------------- broadcast_in_dim --------------------

def _broadcast_in_dim_abstract_eval(x, *, shape, broadcast_dimensions):
    dims = broadcast_dimensions
    ok = (len(dims) == x.ndim and all(0 <= d < len(shape) for d in dims)
          and list(dims) == sorted(set(dims))
          and all(x.shape[i] in (1, shape[d]) for i, d in enumerate(dims)))
    if not ok:
        raise TypeError(f"broadcast_in_dim cannot broadcast {x.str_short()} to shape {shape} "
                        f"with broadcast_dimensions={dims}")
    return ShapedArray(shape, x.dtype, x.weak_type)


def _broadcast_in_dim_impl(x, *, shape, broadcast_dimensions):
    xp = array_module(x)
    expanded = [1] * len(shape)
    for i, d in enumerate(broadcast_dimensions):
        expanded[d] = x.shape[i]
    # a fresh array, not a read-only view: the result may reach the user
    return xp.array(xp.broadcast_to(xp.reshape(x, expanded), shape))


def _broadcast_in_dim_ct(ct, aval, *, shape, broadcast_dimensions):
    new_dims = [d for d in range(len(shape)) if d not in broadcast_dimensions]
    stretched = [d for i, d in enumerate(broadcast_dimensions) if aval.shape[i] == 1 and shape[d] != 1]
    summed = reductions.reduce_sum(ct, sorted(new_dims + stretched)) if new_dims or stretched else ct
    return reshape(summed, aval.shape) if stretched else summed


broadcast_in_dim_p = Primitive("broadcast_in_dim", params={"shape": SHAPE, "broadcast_dimensions": AXES},
                               abstract_eval=_broadcast_in_dim_abstract_eval,
                               impl=_broadcast_in_dim_impl, linear_in=(0,),
                               transpose=_linear_unary_transpose(_broadcast_in_dim_ct))
broadcast_in_dim_p.define(jvp=linear_jvp(broadcast_in_dim_p))


def _broadcast_in_dim_batch(values, dims, *, shape, broadcast_dimensions):
    """The batch axis becomes the output axis right after the one the operand
    axis before it maps to, so broadcast_dimensions stay increasing: no transpose."""
    (x,), (bdim,) = values, dims
    out_dim = broadcast_dimensions[bdim - 1] + 1 if bdim else 0
    new_shape = shape[:out_dim] + (get_aval(x).shape[bdim],) + shape[out_dim:]
    new_dims = [shift_dim(d, out_dim) for d in broadcast_dimensions]
    new_dims.insert(bdim, out_dim)
    return broadcast_in_dim(x, new_shape, new_dims), out_dim


broadcast_in_dim_p.define(batch=_broadcast_in_dim_batch)

# -------------------- reshape, transpose, squeeze --------------------


def _reshape_abstract_eval(x, *, new_sizes):
    if math.prod(new_sizes) != x.size or any(d < 0 for d in new_sizes):
        raise TypeError(f"reshape cannot turn {x.str_short()} into shape {new_sizes}")
    return ShapedArray(new_sizes, x.dtype, x.weak_type)


reshape_p = Primitive("reshape", params={"new_sizes": SHAPE},
                      abstract_eval=_reshape_abstract_eval, linear_in=(0,),
                      impl=lambda x, *, new_sizes: np.reshape(x, new_sizes),
                      transpose=_linear_unary_transpose(lambda ct, aval, new_sizes: reshape(ct, aval.shape)))
reshape_p.define(jvp=linear_jvp(reshape_p))


def _reshape_batch(values, dims, *, new_sizes):
    # row-major reshapes of each example are one reshape once the batch axis leads
    (x,), (bdim,) = values, dims
    x = move_dim(x, bdim, 0)
    return reshape(x, (get_aval(x).shape[0],) + new_sizes), 0


reshape_p.define(batch=_reshape_batch)


def _transpose_abstract_eval(x, *, permutation):
    if sorted(permutation) != list(range(x.ndim)):
        raise TypeError(f"transpose: {permutation} is not a permutation of the axes of {x.str_short()}")
    return ShapedArray([x.shape[p] for p in permutation], x.dtype, x.weak_type)


transpose_p = Primitive("transpose", params={"permutation": AXES},
                        abstract_eval=_transpose_abstract_eval, linear_in=(0,),
                        impl=lambda x, *, permutation: np.transpose(x, permutation),
                        transpose=_linear_unary_transpose(
                            lambda ct, aval, permutation: transpose(ct, np.argsort(permutation).tolist())))
transpose_p.define(jvp=linear_jvp(transpose_p))


def _transpose_batch(values, dims, *, permutation):
    (x,), (bdim,) = values, dims
    batched_permutation = [shift_dim(p, bdim) for p in permutation]
    batched_permutation.insert(bdim, bdim)  # the batch axis stays where it is
    return transpose(x, batched_permutation), bdim


transpose_p.define(batch=_transpose_batch)


def _squeeze_abstract_eval(x, *, dimensions):
    _check_axes("squeeze", dimensions, x.ndim)
    if any(x.shape[d] != 1 for d in dimensions):
        raise TypeError(f"squeeze: dimensions {dimensions} of {x.str_short()} are not all of size 1")
    return ShapedArray([n for i, n in enumerate(x.shape) if i not in dimensions], x.dtype, x.weak_type)


squeeze_p = Primitive("squeeze", params={"dimensions": AXES},
                      abstract_eval=_squeeze_abstract_eval, linear_in=(0,),
                      impl=lambda x, *, dimensions: np.squeeze(x, dimensions),
                      transpose=_linear_unary_transpose(lambda ct, aval, dimensions: reshape(ct, aval.shape)))
squeeze_p.define(jvp=linear_jvp(squeeze_p))


def _squeeze_batch(values, dims, *, dimensions):
    (x,), (bdim,) = values, dims
    out_dim = bdim - sum(1 for d in dimensions if d < bdim)
    return squeeze(x, [shift_dim(d, bdim) for d in dimensions]), out_dim


squeeze_p.define(batch=_squeeze_batch)

# -------------------- concatenate, slice, rev --------------------


def _concatenate_abstract_eval(*xs, dimension):
    if not xs:
        raise TypeError("concatenate needs at least one operand")
    first = xs[0]
    if not 0 <= dimension < first.ndim:
        raise TypeError(f"concatenate: dimension {dimension} is out of range for {first.str_short()}")
    for x in xs:
        other_dims = lambda a: a.shape[:dimension] + a.shape[dimension + 1:]
        if x.ndim != first.ndim or other_dims(x) != other_dims(first) or x.dtype != first.dtype:
            listed = ", ".join(a.str_short() for a in xs)
            raise TypeError(f"concatenate along dimension {dimension} needs operands that agree "
                            f"elsewhere, got {listed}")
    size = sum(x.shape[dimension] for x in xs)
    shape = first.shape[:dimension] + (size,) + first.shape[dimension + 1:]
    return ShapedArray(shape, first.dtype, all(x.weak_type for x in xs))


def _concatenate_transpose(ct, *xs, dimension):
    if type(ct) is Zero:
        return [None] * len(xs)
    cts, offset = [], 0
    for x in xs:
        size = aval_of(x).shape[dimension]
        if is_undefined(x):
            start = [0] * len(x.aval.shape)
            limit = list(x.aval.shape)
            start[dimension], limit[dimension] = offset, offset + size
            cts.append(slice(ct, start, limit))
        else:
            cts.append(None)
        offset += size
    return cts


def _concatenate_impl(*xs, dimension):
    xp, xs = common_arrays(*xs)  # zeros a rule filled in are NumPy's even beside CuPy arrays
    return xp.concatenate(xs, axis=dimension)


concatenate_p = Primitive("concatenate", params={"dimension": AXIS},
                          abstract_eval=_concatenate_abstract_eval,
                          impl=_concatenate_impl,
                          transpose=_concatenate_transpose)
concatenate_p.define(jvp=linear_jvp(concatenate_p))


def _concatenate_batch(values, dims, *, dimension):
    """Every operand gets its batch axis where the first batched one has it
    (moved there, or broadcast there when unbatched: concatenate's result is
    batched as a whole)."""
    size = batch_size(values, dims)
    bdim = next(d for d in dims if d is not not_mapped)
    operands = [bdim_to(x, d, size, bdim) for x, d in zip(values, dims, strict=True)]
    return concatenate(operands, shift_dim(dimension, bdim)), bdim


concatenate_p.define(batch=_concatenate_batch)


def _slice_abstract_eval(x, *, start_indices, limit_indices, strides):
    strides = strides or (1,) * x.ndim
    if not (len(start_indices) == len(limit_indices) == len(strides) == x.ndim
            and all(0 <= s <= l <= n for s, l, n in zip(start_indices, limit_indices, x.shape))
            and all(st >= 1 for st in strides)):
        raise TypeError(f"slice [{start_indices}:{limit_indices}:{strides}] does not fit {x.str_short()}")
    shape = [-(-(l - s) // st) for s, l, st in zip(start_indices, limit_indices, strides)]
    return ShapedArray(shape, x.dtype, x.weak_type)


def _slice_impl(x, *, start_indices, limit_indices, strides):
    x = array_if_python_scalar(x)  # a Python scalar cannot be indexed, not even by ()
    strides = strides or (1,) * len(start_indices)
    return x[tuple(builtins.slice(s, l, st) for s, l, st in zip(start_indices, limit_indices, strides))]


def _slice_ct(ct, aval, *, start_indices, limit_indices, strides):
    strides = strides or (1,) * aval.ndim
    config = []
    for n, start, m, stride in zip(aval.shape, start_indices, aval_of(ct).shape, strides):
        last = start + (m - 1) * stride + 1 if m else start
        config.append((start, n - last, stride - 1) if m else (n, 0, 0))
    return pad(ct, scalar_like(ct, 0), config)


_INDICES = TupleOf(NON_NEGATIVE_INT, description="a tuple of non-negative ints, one per dimension")
_STRIDES = Optional(TupleOf(POSITIVE_INT, description="a tuple of positive ints"))
slice_p = Primitive("slice", params={"start_indices": _INDICES, "limit_indices": _INDICES, "strides": _STRIDES},
                    abstract_eval=_slice_abstract_eval, impl=_slice_impl, linear_in=(0,),
                    transpose=_linear_unary_transpose(_slice_ct))
slice_p.define(jvp=linear_jvp(slice_p))


def _slice_batch(values, dims, *, start_indices, limit_indices, strides):
    (x,), (bdim,) = values, dims
    start, limit = list(start_indices), list(limit_indices)
    start.insert(bdim, 0)
    limit.insert(bdim, get_aval(x).shape[bdim])
    if strides is not None:
        strides = list(strides)
        strides.insert(bdim, 1)
    return slice(x, start, limit, strides), bdim


slice_p.define(batch=_slice_batch)

# -------------------- pad (the transpose of slice) --------------------


def _pad_abstract_eval(x, padding_value, *, padding_config):
    if padding_value.shape != () or padding_value.dtype != x.dtype or len(padding_config) != x.ndim:
        raise TypeError(f"pad of {x.str_short()} needs a scalar padding value of its dtype and one "
                        f"(low, high, interior) per dimension, got {padding_value.str_short()} and {padding_config}")
    if any(lo < 0 or hi < 0 or interior < 0 for lo, hi, interior in padding_config):
        raise TypeError(f"pad: negative padding {padding_config} is not supported")
    shape = [lo + hi + n + max(n - 1, 0) * interior for n, (lo, hi, interior) in zip(x.shape, padding_config)]
    return ShapedArray(shape, x.dtype, x.weak_type)


def _pad_impl(x, padding_value, *, padding_config):
    xp, (x, padding_value) = common_arrays(x, padding_value)
    x = xp.asarray(x)
    shape = [lo + hi + n + max(n - 1, 0) * interior for n, (lo, hi, interior) in zip(x.shape, padding_config)]
    result = xp.full(shape, padding_value, dtype=x.dtype)
    result[tuple(builtins.slice(lo, lo + n + max(n - 1, 0) * interior, interior + 1)
                 for n, (lo, hi, interior) in zip(x.shape, padding_config))] = x
    return result


def _pad_transpose(ct, x, padding_value, *, padding_config):
    if type(ct) is Zero:
        return [None, None]
    shape = aval_of(ct).shape
    start = [lo for lo, _, _ in padding_config]
    limit = [n - hi for n, (_, hi, _) in zip(shape, padding_config)]
    strides = [interior + 1 for _, _, interior in padding_config]
    ct_x = slice(ct, start, limit, strides)
    ct_value = None
    if is_undefined(padding_value):
        # the sum over the padding itself: (the total) - (the sum over x) would lose it to
        # cancellation beside large cotangents, and be nan beside an infinite one
        is_padding = pad(broadcast_in_dim(np.False_, x.aval.shape if is_undefined(x) else get_aval(x).shape, ()),
                         np.True_, padding_config)
        ct_value = reductions.reduce_sum(elementwise.select_n(is_padding, scalar_like(ct, 0), ct),
                                         range(len(shape)))
    return [ct_x if is_undefined(x) else None, ct_value]


_PADDING = Tuple(NON_NEGATIVE_INT, NON_NEGATIVE_INT, NON_NEGATIVE_INT)  # (low, high, interior)
_PADDING_CONFIG = TupleOf(_PADDING, description="a tuple of (low, high, interior) triples of non-negative ints")
pad_p = Primitive("pad", params={"padding_config": _PADDING_CONFIG},
                  abstract_eval=_pad_abstract_eval, impl=_pad_impl, linear_in=(0, 1),
                  transpose=_pad_transpose)
pad_p.define(jvp=linear_jvp(pad_p))


def _pad_batch(values, dims, *, padding_config):
    """A shared padding value pads the batch as a whole. A padding value per
    example cannot be a pad operand (it is rank-0): pad with zeros, then pick
    each example's value where a shared mask marks the padding."""
    (x, padding_value), (x_bdim, value_bdim) = values, dims
    if value_bdim is not_mapped:
        config = list(padding_config)
        config.insert(x_bdim, (0, 0, 0))
        return pad(x, padding_value, config), x_bdim
    size = get_aval(padding_value).shape[0]
    zero = scalar_like(padding_value, 0)
    if x_bdim is not_mapped:
        padded = broadcast_batched(pad(x, zero, padding_config), size, 0)
        example_shape = get_aval(x).shape
    else:
        x = move_dim(x, x_bdim, 0)
        padded = pad(x, zero, [(0, 0, 0)] + list(padding_config))
        example_shape = get_aval(x).shape[1:]
    is_x = pad(broadcast_in_dim(np.True_, example_shape, ()), np.False_, padding_config)
    out_shape = get_aval(padded).shape
    value = broadcast_in_dim(padding_value, out_shape, (0,))
    return elementwise.select_n(broadcast_batched(is_x, size, 0), value, padded), 0


pad_p.define(batch=_pad_batch)


def _rev_abstract_eval(x, *, dimensions):
    _check_axes("rev", dimensions, x.ndim)
    return x


rev_p = Primitive("rev", params={"dimensions": AXES}, abstract_eval=_rev_abstract_eval, linear_in=(0,),
                  impl=lambda x, *, dimensions: np.flip(x, dimensions),
                  transpose=_linear_unary_transpose(lambda ct, aval, dimensions: rev(ct, dimensions)))
rev_p.define(jvp=linear_jvp(rev_p))


def _rev_batch(values, dims, *, dimensions):
    (x,), (bdim,) = values, dims
    return rev(x, [shift_dim(d, bdim) for d in dimensions]), bdim


rev_p.define(batch=_rev_batch)

# -------------------- iota --------------------


def _iota_abstract_eval(*, dtype, shape, dimension):
    check_supported_dtype("iota", dtype)
    if np.dtype(dtype).kind not in "fiu":
        raise TypeError(f"iota needs a numeric dtype, got {np.dtype(dtype).name}")
    if not 0 <= dimension < len(shape):
        raise TypeError(f"iota: dimension {dimension} is out of range for shape {shape}")
    return ShapedArray(shape, dtype)


def _iota_impl(*, dtype, shape, dimension):
    line = np.arange(shape[dimension], dtype=dtype)
    expanded = [1] * len(shape)
    expanded[dimension] = shape[dimension]
    return np.array(np.broadcast_to(line.reshape(expanded), shape))


# NB: as JAX's iota: 0, 1, 2, ... along `dimension`, repeated along the others
iota_p = Primitive("iota", params={"dtype": DType("fiu"), "shape": SHAPE, "dimension": AXIS},
                   abstract_eval=_iota_abstract_eval, impl=_iota_impl)
iota_p.define(jvp=zero_jvp(iota_p))


def _iota_batch(values, dims, **params):
    # iota has no operands, so a batch trace never calls this: it is the same for every example
    return bind(iota_p, **params), not_mapped


iota_p.define(batch=_iota_batch)

# -------------------- Taylor mode (jet) --------------------
# All of these are linear: each coefficient of the output is the primitive of the
# operands' coefficients (ir/primitives/taylor_util.py). iota has no operand to move.

for _prim in (broadcast_in_dim_p, reshape_p, transpose_p, squeeze_p, concatenate_p, slice_p, pad_p, rev_p):
    _prim.define(taylor=taylor_from_jvp(_prim))
iota_p.define(taylor=zero_taylor(iota_p))
del _prim

# -------------------- binders --------------------


def broadcast_in_dim(x, shape, broadcast_dimensions):
    return bind(broadcast_in_dim_p, x, shape=tuple(shape), broadcast_dimensions=tuple(broadcast_dimensions))


def reshape(x, new_sizes):
    return bind(reshape_p, x, new_sizes=tuple(new_sizes))


def transpose(x, permutation):
    return bind(transpose_p, x, permutation=tuple(permutation))


def squeeze(x, dimensions):
    return bind(squeeze_p, x, dimensions=tuple(dimensions))


def concatenate(xs, dimension):
    return bind(concatenate_p, *xs, dimension=dimension)


def slice(x, start_indices, limit_indices, strides=None):
    if strides is not None and all(s == 1 for s in strides):
        strides = None
    return bind(slice_p, x, start_indices=tuple(start_indices), limit_indices=tuple(limit_indices),
                strides=None if strides is None else tuple(strides))


def pad(x, padding_value, padding_config):
    return bind(pad_p, x, padding_value,
                padding_config=tuple((int(lo), int(hi), int(i)) for lo, hi, i in padding_config))


def rev(x, dimensions):
    return bind(rev_p, x, dimensions=tuple(dimensions))


def iota(dtype, shape, dimension=0):
    return bind(iota_p, dtype=np.dtype(dtype), shape=tuple(shape), dimension=dimension)
