"""dot_general: every contraction (dot, matmul, einsum, tensordot) in one primitive.

``dimension_numbers = ((lhs_contract, rhs_contract), (lhs_batch, rhs_batch))``;
the output holds the batch dimensions, then lhs's free ones, then rhs's (as JAX).
"""
from __future__ import annotations

import math

import numpy as np

from ir.core import ShapedArray, array_module
from ir.markers import Zero, not_mapped
from ir.primitive import AXES, Primitive, Tuple
from ir.primitives import structural
from ir.primitives.ad_util import aval_of, is_undefined, jvp_from_derivatives
from ir.primitives.batch_util import shift_dim
from ir.primitives.elementwise import array_if_python_scalar
from ir.primitives.taylor_util import bilinear_taylor
from ir.tracing import bind, get_aval


def _free_dims(ndim, *used):
    taken = set(used[0]) | set(used[1])
    return [d for d in range(ndim) if d not in taken]


def _dot_general_abstract_eval(lhs, rhs, *, dimension_numbers):
    (lc, rc), (lb, rb) = dimension_numbers
    def bad(why):
        return TypeError(f"dot_general of {lhs.str_short()} and {rhs.str_short()} with "
                         f"dimension_numbers={dimension_numbers}: {why}")
    if lhs.dtype != rhs.dtype:
        raise bad("operands must have one dtype")
    if lhs.dtype.kind not in "fiuc":
        raise bad("operands must be numeric")
    if len(lc) != len(rc) or len(lb) != len(rb):
        raise bad("contracting and batch dimensions must pair up")
    for dims, aval in ((lc + lb, lhs), (rc + rb, rhs)):
        if len(set(dims)) != len(dims) or any(not 0 <= d < aval.ndim for d in dims):
            raise bad("dimensions must be distinct and in range")
    if any(lhs.shape[l] != rhs.shape[r] for l, r in zip(lc + lb, rc + rb)):
        raise bad("paired dimensions have different sizes")
    shape = ([lhs.shape[d] for d in lb] + [lhs.shape[d] for d in _free_dims(lhs.ndim, lc, lb)]
             + [rhs.shape[d] for d in _free_dims(rhs.ndim, rc, rb)])
    return ShapedArray(shape, lhs.dtype, lhs.weak_type and rhs.weak_type)


def _dot_general_impl(lhs, rhs, *, dimension_numbers):
    """Permute both operands to (batch, free, contract) / (batch, contract, free),
    flatten to 3-D, and let matmul (BLAS for floats) do the work."""
    (lc, rc), (lb, rb) = dimension_numbers
    lhs, rhs = array_if_python_scalar(lhs), array_if_python_scalar(rhs)  # Python scalars have no shape
    lf, rf = _free_dims(lhs.ndim, lc, lb), _free_dims(rhs.ndim, rc, rb)
    batch = [lhs.shape[d] for d in lb]
    lhs_free, rhs_free = [lhs.shape[d] for d in lf], [rhs.shape[d] for d in rf]
    contract = math.prod(lhs.shape[d] for d in lc)
    a = np.transpose(lhs, [*lb, *lf, *lc]).reshape(math.prod(batch), math.prod(lhs_free), contract)
    b = np.transpose(rhs, [*rb, *rc, *rf]).reshape(math.prod(batch), contract, math.prod(rhs_free))
    # nothing to sum over (outer products, e.g. per-example gradients): a broadcast multiply beats BLAS
    xp = array_module(a, b)
    product = xp.multiply(a, b) if contract == 1 else xp.matmul(a, b)
    return product.reshape(batch + lhs_free + rhs_free)


def _transpose_one_side(ct, other, this_aval, this_dims, other_dims, ct_this_first):
    """Cotangent of one operand of a dot_general: contract `ct` with the other
    operand over the other's free dims, then put the dims back in this operand's order.
    `ct_this_first`: whether this operand's free dims precede the other's in `ct`."""
    (this_contract, other_contract), (this_batch, other_batch) = this_dims, other_dims
    other_ndim = aval_of(other).ndim
    this_free = _free_dims(this_aval.ndim, this_contract, this_batch)
    other_free = _free_dims(other_ndim, other_contract, other_batch)
    nb = len(this_batch)
    if ct_this_first:
        ct_other_free = list(range(nb + len(this_free), nb + len(this_free) + len(other_free)))
    else:
        ct_other_free = list(range(nb, nb + len(other_free)))
    dims = ((tuple(ct_other_free), tuple(other_free)), (tuple(range(nb)), tuple(other_batch)))
    result = dot_general(ct, other, dims)
    # result dims: batch, this operand's free dims, then its contracting dims in the other's order
    contract_in_other_order = [c for _, c in sorted(zip(other_contract, this_contract))]
    layout = list(this_batch) + this_free + contract_in_other_order
    return structural.transpose(result, np.argsort(layout).tolist()) if layout != sorted(layout) else result


def _dot_general_transpose(ct, lhs, rhs, *, dimension_numbers):
    if type(ct) is Zero:
        return [None, None]
    (lc, rc), (lb, rb) = dimension_numbers
    if is_undefined(lhs) and is_undefined(rhs):
        raise ValueError("dot_general is linear in one operand at a time, not both")
    if is_undefined(lhs):
        return [_transpose_one_side(ct, rhs, lhs.aval, (lc, rc), (lb, rb), ct_this_first=True), None]
    return [None, _transpose_one_side(ct, lhs, rhs.aval, (rc, lc), (rb, lb), ct_this_first=False)]


# ((lhs_contract, rhs_contract), (lhs_batch, rhs_batch))
DIMENSION_NUMBERS = Tuple(Tuple(AXES, AXES), Tuple(AXES, AXES))
dot_general_p = Primitive("dot_general", params={"dimension_numbers": DIMENSION_NUMBERS},
                          abstract_eval=_dot_general_abstract_eval,
                          impl=_dot_general_impl, linear_in=(0, 1), transpose=_dot_general_transpose)
dot_general_p.define(jvp=jvp_from_derivatives(
    dot_general_p,
    lambda t, out, lhs, rhs, *, dimension_numbers: dot_general(t, rhs, dimension_numbers),
    lambda t, out, lhs, rhs, *, dimension_numbers: dot_general(lhs, t, dimension_numbers)))


def _dot_general_batch(values, dims, *, dimension_numbers):
    """Both operands batched: the batch axes pair up as one more (leading) batch
    dimension. One batched: its batch axis is one more free dimension, and the
    output has it where dot_general puts that operand's free dimensions."""
    (lhs, rhs), (lhs_bdim, rhs_bdim) = values, dims
    (lc, rc), (lb, rb) = dimension_numbers

    def shifted(dims_, bdim):
        return tuple(dims_) if bdim is not_mapped else tuple(shift_dim(d, bdim) for d in dims_)
    lc, lb, rc, rb = shifted(lc, lhs_bdim), shifted(lb, lhs_bdim), shifted(rc, rhs_bdim), shifted(rb, rhs_bdim)
    if lhs_bdim is not not_mapped and rhs_bdim is not not_mapped:
        return dot_general(lhs, rhs, ((lc, rc), ((lhs_bdim,) + lb, (rhs_bdim,) + rb))), 0
    if lhs_bdim is not_mapped and get_aval(rhs).ndim - len(rc) - len(rb) == 1:
        # the batch axis is rhs's only free one: as lhs it comes first among the free axes
        return dot_general(rhs, lhs, ((rc, lc), (rb, lb))), len(lb)
    out = dot_general(lhs, rhs, ((lc, rc), (lb, rb)))
    if rhs_bdim is not_mapped:
        lhs_free = _free_dims(get_aval(lhs).ndim, lc, lb)
        return out, len(lb) + lhs_free.index(lhs_bdim)
    lhs_free_count = get_aval(lhs).ndim - len(lc) - len(lb)
    rhs_free = _free_dims(get_aval(rhs).ndim, rc, rb)
    return out, len(lb) + lhs_free_count + rhs_free.index(rhs_bdim)


dot_general_p.define(batch=_dot_general_batch)
dot_general_p.define(taylor=bilinear_taylor(dot_general_p))  # Leibniz: sum_j C(k, j) lhs_j . rhs_(k-j)


def dot_general(lhs, rhs, dimension_numbers):
    (lc, rc), (lb, rb) = dimension_numbers
    dims = ((tuple(lc), tuple(rc)), (tuple(lb), tuple(rb)))
    return bind(dot_general_p, lhs, rhs, dimension_numbers=dims)
