"""Sorting and cumulative (prefix-scan) primitives, as jax.lax's.

`sort` sorts several operands of one shape along `dimension` by the first
`num_keys` of them (lexicographically, NaNs last, as NumPy), permuting the
others alike: argsort is a sort of (x, iota), sort_key_val one of (keys,
values). Its jvp sorts an iota along as one more operand and gathers the
tangents by that permutation (as JAX), so reverse mode is the gather's
transpose, a scatter-add.

`cumsum`, `cumprod`, `cummax`, `cummin` are the inclusive scans along `axis`
(from the end when `reverse`). cumsum is linear, its transpose the cumsum in
the other direction. The other three are differentiated as the scan written
with their binary primitive (mul, max, min): a Hillis-Steele scan of
log2(n) steps, each combining an element with the one 2^k before it, whose
tangent is the binary primitive's jvp at each step (as JAX, which
differentiates its associative_scan): exact at zeros for cumprod (no division)
and ties share the tangent for cummax and cummin, as max's jvp does.
"""
from __future__ import annotations

import numpy as np

from ir.core import ShapedArray, array_module, common_arrays
from ir.markers import Zero
from ir.primitive import AXIS, BOOL, POSITIVE_INT, Primitive
from ir.primitives import elementwise as ew
from ir.primitives import indexing, structural
from ir.primitives.ad_util import linear_jvp
from ir.primitives.batch_util import batch_size, bdim_to, shift_dim
from ir.primitives.elementwise import array_if_python_scalar
from ir.primitives.taylor_util import taylor_from_derivative, taylor_from_jvp
from ir.tracing import bind, get_aval

# -------------------- sort --------------------


def _sort_abstract_eval(*operands, dimension, is_stable, num_keys):
    if not operands:
        raise TypeError("sort needs at least one operand")
    shapes = {o.shape for o in operands}
    if len(shapes) != 1:
        raise TypeError(f"sort: operands must have one shape, got {', '.join(o.str_short() for o in operands)}")
    first = operands[0]
    if first.ndim == 0:
        raise TypeError(f"sort needs operands of rank at least 1, got {first.str_short()}")
    if not 0 <= dimension < first.ndim:
        raise TypeError(f"sort: dimension {dimension} is out of range for {first.str_short()}")
    if num_keys > len(operands):
        raise TypeError(f"sort: num_keys={num_keys} but only {len(operands)} operands")
    for o in operands:
        if o.dtype.kind not in "fiub":
            raise TypeError(f"sort does not take {o.str_short()}")
    return [ShapedArray(o.shape, o.dtype, o.weak_type) for o in operands]


def _sort_permutation(keys, dimension):
    xp = array_module(keys[0])
    if len(keys) == 1:  # stable in every case: NumPy's default quicksort would give no order to ties
        return xp.argsort(keys[0], axis=dimension, kind="stable")
    # NB: lexsort's primary key is its last; it is stable
    return xp.lexsort(tuple(reversed(keys)), axis=dimension)


def _sort_impl(*operands, dimension, is_stable, num_keys):
    xp, operands = common_arrays(*operands)
    operands = [xp.asarray(o) for o in operands]
    permutation = _sort_permutation(operands[:num_keys], dimension)
    return [xp.take_along_axis(o, permutation, axis=dimension) for o in operands]


def take_along(x, permutation, dimension):
    """x[..., permutation, ...] along `dimension` (permutation of x's shape), as one full-index gather."""
    aval = get_aval(x)
    index_dtype = get_aval(permutation).dtype
    columns = [permutation if d == dimension else structural.iota(index_dtype, aval.shape, d)
               for d in range(aval.ndim)]
    columns = [structural.reshape(c, aval.shape + (1,)) for c in columns]
    return indexing.gather(x, structural.concatenate(columns, aval.ndim))


def _sort_jvp(primals, tangents, *, dimension, is_stable, num_keys):
    shape = get_aval(primals[0]).shape
    index_dtype = np.int32 if shape[dimension] < 2**31 else np.int64
    iota = structural.iota(index_dtype, shape, dimension)
    *outs, permutation = bind(sort_p, *primals, iota, dimension=dimension, is_stable=is_stable, num_keys=num_keys)
    tangents_out = [t if type(t) is Zero else take_along(t, permutation, dimension) for t in tangents]
    return outs, tangents_out


def _sort_batch(values, dims, *, dimension, is_stable, num_keys):
    size = batch_size(values, dims)
    moved = [bdim_to(x, d, size, 0) for x, d in zip(values, dims, strict=True)]
    outs = bind(sort_p, *moved, dimension=dimension + 1, is_stable=is_stable, num_keys=num_keys)
    return outs, [0] * len(outs)


sort_p = Primitive("sort", params={"dimension": AXIS, "is_stable": BOOL, "num_keys": POSITIVE_INT},
                   abstract_eval=_sort_abstract_eval, impl=_sort_impl, multiple_results=True,
                   jvp=_sort_jvp, batch=_sort_batch)
# a permutation: linear in the operands wherever no keys tie or change order
sort_p.define(taylor=taylor_from_jvp(sort_p))


# -------------------- cumulative scans --------------------

def _cumulative_abstract_eval(name, kinds):
    def abstract_eval(x, *, axis, reverse):
        if x.dtype.kind not in kinds:
            raise TypeError(f"{name} does not take {x.str_short()}")
        if not 0 <= axis < x.ndim:
            raise TypeError(f"{name}: axis {axis} is out of range for {x.str_short()}")
        return ShapedArray(x.shape, x.dtype, x.weak_type)
    return abstract_eval


def _cumulative_impl(accumulate):
    def impl(x, *, axis, reverse):
        x = array_if_python_scalar(x)
        xp = array_module(x)
        if reverse:
            return xp.flip(accumulate(xp, xp.flip(x, axis), axis), axis)
        return accumulate(xp, x, axis)
    return impl


def _cumulative_batch(prim):
    def batch(values, dims, *, axis, reverse):
        (x,), (bdim,) = values, dims
        return bind(prim, x, axis=shift_dim(axis, bdim), reverse=reverse), bdim
    return batch


def _cumulative(name, kinds, accumulate):
    prim = Primitive(name, params={"axis": AXIS, "reverse": BOOL},
                     abstract_eval=_cumulative_abstract_eval(name, kinds), impl=_cumulative_impl(accumulate))
    prim.define(batch=_cumulative_batch(prim))
    return prim


def _maximum_accumulate(xp, x, axis):
    if xp is np:
        return np.maximum.accumulate(x, axis=axis)
    return xp.maximum.accumulate(x, axis=axis)


def _minimum_accumulate(xp, x, axis):
    if xp is np:
        return np.minimum.accumulate(x, axis=axis)
    return xp.minimum.accumulate(x, axis=axis)


cumsum_p = _cumulative("cumsum", "fiu", lambda xp, x, axis: xp.cumsum(x, axis=axis, dtype=x.dtype))
cumprod_p = _cumulative("cumprod", "fiu", lambda xp, x, axis: xp.cumprod(x, axis=axis, dtype=x.dtype))
cummax_p = _cumulative("cummax", "fiub", _maximum_accumulate)
cummin_p = _cumulative("cummin", "fiub", _minimum_accumulate)


def _cumsum_transpose(ct, x, *, axis, reverse):
    return [None if type(ct) is Zero else cumsum(ct, axis, not reverse)]


cumsum_p.define(jvp=linear_jvp(cumsum_p), transpose=_cumsum_transpose, taylor=taylor_from_jvp(cumsum_p))
cumsum_p.linear_in = (0,)


def _part(x, axis, start, stop):
    shape = get_aval(x).shape
    return structural.slice(x, [start if d == axis else 0 for d in range(len(shape))],
                            [stop if d == axis else n for d, n in enumerate(shape)])


def _scan_jvp(binary_prim, prim):
    """The jvp of the Hillis-Steele scan with `binary_prim`, the primal from `prim` itself."""
    def jvp(primals, tangents, *, axis, reverse):
        (x,), (t,) = primals, tangents
        out = bind(prim, x, axis=axis, reverse=reverse)
        if type(t) is Zero:
            return out, t
        if reverse:
            x, t = structural.rev(x, (axis,)), structural.rev(t, (axis,))
        n = get_aval(x).shape[axis]
        y, ty, step = x, t, 1
        while step < n:  # element i combines with element i - step
            earlier, later = _part(y, axis, 0, n - step), _part(y, axis, step, n)
            t_earlier, t_later = _part(ty, axis, 0, n - step), _part(ty, axis, step, n)
            combined, t_combined = binary_prim.jvp([earlier, later], [t_earlier, t_later])
            y = structural.concatenate([_part(y, axis, 0, step), combined], axis)
            ty = structural.concatenate([_part(ty, axis, 0, step), t_combined], axis)
            step *= 2
        if reverse:
            ty = structural.rev(ty, (axis,))
        return out, ty
    return jvp


cumprod_p.define(jvp=_scan_jvp(ew.mul_p, cumprod_p))
cummax_p.define(jvp=_scan_jvp(ew.max_p, cummax_p))
cummin_p.define(jvp=_scan_jvp(ew.min_p, cummin_p))
# cumprod is a polynomial: its series is the jet of its jvp; the extrema are linear by pieces
cumprod_p.define(taylor=taylor_from_derivative(cumprod_p))
cummax_p.define(taylor=taylor_from_jvp(cummax_p))
cummin_p.define(taylor=taylor_from_jvp(cummin_p))


# -------------------- binders --------------------

def sort(operands, dimension=-1, is_stable=True, num_keys=1):
    operands = list(operands)
    ndim = get_aval(operands[0]).ndim
    return bind(sort_p, *operands, dimension=dimension % max(ndim, 1), is_stable=is_stable, num_keys=num_keys)


def cumsum(x, axis=0, reverse=False):
    return bind(cumsum_p, x, axis=axis, reverse=reverse)


def cumprod(x, axis=0, reverse=False):
    return bind(cumprod_p, x, axis=axis, reverse=reverse)


def cummax(x, axis=0, reverse=False):
    return bind(cummax_p, x, axis=axis, reverse=reverse)


def cummin(x, axis=0, reverse=False):
    return bind(cummin_p, x, axis=axis, reverse=reverse)
