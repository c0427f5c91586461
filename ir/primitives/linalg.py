"""dot_general: every contraction (dot, matmul, einsum, tensordot) in one primitive.

``dimension_numbers = ((lhs_contract, rhs_contract), (lhs_batch, rhs_batch))``;
the output holds the batch dimensions, then lhs's free ones, then rhs's (as JAX).
"""
from __future__ import annotations

import math

import numpy as np

from ir.core import ShapedArray
from ir.primitive import Primitive
from ir.tracing import bind


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
    if lhs.dtype.kind not in "fiu":
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
    lf, rf = _free_dims(lhs.ndim, lc, lb), _free_dims(rhs.ndim, rc, rb)
    batch = [lhs.shape[d] for d in lb]
    lhs_free, rhs_free = [lhs.shape[d] for d in lf], [rhs.shape[d] for d in rf]
    contract = math.prod(lhs.shape[d] for d in lc)
    a = np.transpose(lhs, [*lb, *lf, *lc]).reshape(math.prod(batch), math.prod(lhs_free), contract)
    b = np.transpose(rhs, [*rb, *rc, *rf]).reshape(math.prod(batch), contract, math.prod(rhs_free))
    return np.matmul(a, b).reshape(batch + lhs_free + rhs_free)


dot_general_p = Primitive("dot_general", abstract_eval=_dot_general_abstract_eval,
                          impl=_dot_general_impl, linear_in=(0, 1))


def dot_general(lhs, rhs, dimension_numbers):
    (lc, rc), (lb, rb) = dimension_numbers
    dims = ((tuple(lc), tuple(rc)), (tuple(lb), tuple(rb)))
    return bind(dot_general_p, lhs, rhs, dimension_numbers=dims)
