"""Reductions over a set of axes, and arg-reductions."""
from __future__ import annotations

import numpy as np

from ir.core import ShapedArray, array_module
from ir.markers import Zero
from ir.primitive import AXES, AXIS, DType, Primitive, Tuple
from ir.primitives import elementwise as ew
from ir.primitives import structural
from ir.primitives.ad_util import aval_of, jvp_from_derivatives, linear_jvp, scalar_like, zero_jvp
from ir.primitives.batch_util import reduction_batcher
from ir.primitives.elementwise import array_if_python_scalar
from ir.primitives.taylor_util import taylor_from_derivative, taylor_from_jvp, zero_taylor
from ir.tracing import bind


def _kept_dims(ndim, axes):
    return [d for d in range(ndim) if d not in axes]


def _expand_reduced(value, operand_shape, axes):
    """Broadcast a reduction's result back over the reduced axes."""
    return structural.broadcast_in_dim(value, operand_shape, _kept_dims(len(operand_shape), axes))


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
    prim = Primitive(name, params={"axes": AXES}, abstract_eval=abstract_eval, impl=impl)
    prim.define(batch=reduction_batcher(prim))
    return prim


def _identity_of_max(dtype):
    if dtype.kind == "c":  # complex values are ordered by real part, then imaginary part (as NumPy)
        return complex(-np.inf, -np.inf)
    return -np.inf if dtype.kind == "f" else (False if dtype.kind == "b" else np.iinfo(dtype).min)


def _identity_of_min(dtype):
    if dtype.kind == "c":
        return complex(np.inf, np.inf)
    return np.inf if dtype.kind == "f" else (True if dtype.kind == "b" else np.iinfo(dtype).max)


# NB: sums keep the operand's dtype (NumPy would widen int32 sums to int64; ftrans.numpy converts first)
def _reduce_sum_transpose(ct, x, *, axes):
    return [None if type(ct) is Zero else _expand_reduced(ct, x.aval.shape, axes)]


def _sum_impl(x, *, axes):
    x = array_if_python_scalar(x)  # a Python scalar has no dtype to keep
    return np.sum(x, axis=axes, dtype=x.dtype)


def _prod_impl(x, *, axes):
    x = array_if_python_scalar(x)
    return np.prod(x, axis=axes, dtype=x.dtype)


reduce_sum_p = _reducer("reduce_sum", _sum_impl, "fiuc")
reduce_sum_p.define(jvp=linear_jvp(reduce_sum_p), transpose=_reduce_sum_transpose)
reduce_sum_p.linear_in = (0,)
reduce_sum_p.define(cuda_template={"identity": 0, "combine": "{0} + {1}"})
# the C kernels' (interpreters/lowering_c.py), for real dtypes: combined in a fixed order of chunks
reduce_sum_p.define(c_template={"identity": 0, "combine": "{0} + {1}"})


def _reduce_prod_derivative(t, out, x, *, axes):
    """sum_i t_i * prod_{j != i} x_j, by the product rule over a balanced tree of
    pairwise products (as JAX's): no division by x_i, so exact where some x_j
    are 0, and O(n) work in the reduced size n."""
    shape = aval_of(x).shape
    kept = _kept_dims(len(shape), axes)
    lead = [shape[d] for d in kept]
    n = int(np.prod([shape[a] for a in axes]))

    def flattened(v):  # the reduced axes moved last and made one
        return structural.reshape(structural.transpose(v, kept + list(axes)), lead + [n])

    def part(v, start, stop):
        return structural.slice(v, [0] * len(lead) + [start], lead + [stop])
    product, tangent = flattened(x), flattened(t)
    while n > 1:
        half = n // 2
        a, b = part(product, 0, half), part(product, half, 2 * half)
        ta, tb = part(tangent, 0, half), part(tangent, half, 2 * half)
        products, tangents = [ew.mul(a, b)], [ew.add(ew.mul(ta, b), ew.mul(a, tb))]
        if n % 2:  # the odd one out waits for the next level
            products.append(part(product, n - 1, n))
            tangents.append(part(tangent, n - 1, n))
        product = structural.concatenate(products, len(lead)) if n % 2 else products[0]
        tangent = structural.concatenate(tangents, len(lead)) if n % 2 else tangents[0]
        n = half + n % 2
    return reduce_sum(tangent, [len(lead)])


def _chooser_derivative(t, out, x, *, axes):
    """The tangent at the chosen element; ties share it equally (as JAX)."""
    shape = aval_of(x).shape
    chosen = ew.convert_element_type(ew.eq(x, _expand_reduced(out, shape, axes)), aval_of(t).dtype)
    count = reduce_sum(chosen, axes)
    return ew.div(reduce_sum(ew.mul(t, chosen), axes), count)


reduce_prod_p = _reducer("reduce_prod", _prod_impl, "fiuc")
reduce_prod_p.define(jvp=jvp_from_derivatives(reduce_prod_p, _reduce_prod_derivative))


def _extremum_impl(name, identity):
    """np.max or np.min, with the identity as `initial` so that reducing no elements gives it."""
    def impl(x, *, axes):
        x = array_if_python_scalar(x)  # a Python scalar has no dtype to take the identity of
        xp = array_module(x)
        if xp is np:
            return getattr(np, name)(x, axis=axes, initial=identity(x.dtype))
        # CuPy's max and min take no `initial`: it matters only when there are no elements
        if x.size == 0:
            return xp.full([n for d, n in enumerate(x.shape) if d not in axes], identity(x.dtype), x.dtype)
        return getattr(xp, name)(x, axis=axes)
    return impl


# as JAX: the max of no elements is -inf (the dtype's lowest value), not an error
reduce_max_p = _reducer("reduce_max", _extremum_impl("max", _identity_of_max), "fiubc")
reduce_min_p = _reducer("reduce_min", _extremum_impl("min", _identity_of_min), "fiubc")
reduce_max_p.define(jvp=jvp_from_derivatives(reduce_max_p, _chooser_derivative))
reduce_min_p.define(jvp=jvp_from_derivatives(reduce_min_p, _chooser_derivative))
# combined as max_p and min_p are: NaN-propagating, like np.max and np.min
reduce_prod_p.define(cuda_template={"identity": 1, "combine": "{0} * {1}"})
reduce_max_p.define(cuda_template={"identity": _identity_of_max, "combine": ew.max_p.cuda_template})
reduce_min_p.define(cuda_template={"identity": _identity_of_min, "combine": ew.min_p.cuda_template})
reduce_prod_p.define(c_template={"identity": 1, "combine": "{0} * {1}"})
reduce_max_p.define(c_template={"identity": _identity_of_max, "combine": ew.max_p.c_template})
reduce_min_p.define(c_template={"identity": _identity_of_min, "combine": ew.min_p.c_template})


def _arg_reducer(name, np_fun):
    def abstract_eval(x, *, axes, index_dtype):
        if len(axes) != 1:
            raise TypeError(f"{name} reduces exactly one axis, got axes={axes}")
        if not 0 <= axes[0] < x.ndim:
            raise TypeError(f"{name}: axis {axes[0]} is out of range for {x.str_short()}")
        if x.shape[axes[0]] == 0:
            raise TypeError(f"{name} of an empty axis of {x.str_short()}")
        if x.dtype.kind not in "fiub":
            raise TypeError(f"{name} does not take {x.str_short()}")
        if x.shape[axes[0]] - 1 > np.iinfo(index_dtype).max:
            raise TypeError(f"{name}: {index_dtype.name} cannot hold the indices of axis {axes[0]} "
                            f"of {x.str_short()}")
        return _reduced_aval(name, x, axes, dtype=index_dtype)

    def impl(x, *, axes, index_dtype):
        return np_fun(x, axis=axes[0]).astype(index_dtype)
    prim = Primitive(name, params={"axes": Tuple(AXIS), "index_dtype": DType("iu")},
                     abstract_eval=abstract_eval, impl=impl)
    prim.define(batch=reduction_batcher(prim))
    return prim


argmax_p = _arg_reducer("argmax", np.argmax)
argmin_p = _arg_reducer("argmin", np.argmin)
argmax_p.define(jvp=zero_jvp(argmax_p))
argmin_p.define(jvp=zero_jvp(argmin_p))


# -------------------- Taylor mode (jet) --------------------
# reduce_sum is linear, max and min linear by pieces (the chosen elements' coefficients,
# ties sharing); the product's series is the jet of its jvp's tree of pairwise products,
# exact where some elements are 0 (ir/primitives/taylor_util.py).

for _prim in (reduce_sum_p, reduce_max_p, reduce_min_p):
    _prim.define(taylor=taylor_from_jvp(_prim))
reduce_prod_p.define(taylor=taylor_from_derivative(reduce_prod_p))
argmax_p.define(taylor=zero_taylor(argmax_p))
argmin_p.define(taylor=zero_taylor(argmin_p))
del _prim


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
