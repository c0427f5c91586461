"""ftrans.lax: operations below ftrans.numpy, named as in jax.lax, with JAX's signatures.

Elementwise operations take (and promote) operands as ftrans.numpy does; the structural
ones (slicing, broadcasting, convolution, windows, scans) are in _lax_slicing.py and
_lax_windows.py, each a composition of the primitives in ir/primitives.
"""
from __future__ import annotations

import builtins

import numpy as np

from ftrans import numpy as _fnp
from ftrans._collectives import all_gather, all_to_all, axis_index, pmax, pmean, pmin, ppermute, psum, psum_scatter
from ftrans._control_flow import cond, fori_loop, map, scan, switch, while_loop
from ftrans._lax_slicing import (dynamic_index_in_dim, dynamic_slice, dynamic_slice_in_dim,
                                 dynamic_update_index_in_dim, dynamic_update_slice, dynamic_update_slice_in_dim,
                                 index_in_dim, slice, slice_in_dim)
from ftrans._lax_windows import (ConvDimensionNumbers, conv, conv_dimension_numbers, conv_general_dilated,
                                 conv_with_general_padding, padtype_to_pads, reduce_window)
from ftrans._unavailable import missing_name_hook as _missing_name_hook
from ftrans.numpy._core import (as_operand, aval_of, convert, dtype_argument, inexact_dtype, operands, result_type,
                                shape_tuple, static_int)
from ftrans.tree_util import tree_flatten, tree_map, tree_unflatten
from ir.errors import api_boundary, at_user_line
from ir.primitives import bits, elementwise, linalg, precision, reductions, sorting, special, structural
from ir.primitives.elementwise import stop_gradient as _stop_gradient_leaf
from ir.tracing import Tracer

__all__ = ["ConvDimensionNumbers", "abs", "add", "argmax", "argmin", "associative_scan", "atan", "batch_matmul",
           "bitwise_and", "bitwise_not", "bitwise_or", "bitwise_xor", "broadcast", "broadcast_in_dim",
           "broadcasted_iota", "ceil", "clamp", "collapse", "concatenate", "cond", "conv", "conv_dimension_numbers",
           "conv_general_dilated", "conv_with_general_padding", "convert_element_type", "cos", "cosh", "div", "dot",
           "dot_general", "dynamic_index_in_dim", "dynamic_slice", "dynamic_slice_in_dim",
           "dynamic_update_index_in_dim", "dynamic_update_slice", "dynamic_update_slice_in_dim", "eq", "exp",
           "expand_dims", "expm1", "floor", "fori_loop", "full", "full_like", "ge", "gt", "index_in_dim",
           "integer_pow", "iota", "le", "log", "log1p", "logistic", "lt", "map", "max", "min", "mul", "ne", "neg",
           "pad", "padtype_to_pads", "pow", "reduce_max", "reduce_precision", "reduce_min", "reduce_prod",
           "reduce_sum", "reduce_window", "reshape", "rev", "rsqrt", "scan", "select", "select_n", "sign", "sin", "sinh",
           "slice", "slice_in_dim", "sqrt", "square", "squeeze", "stop_gradient", "sub", "switch", "tan", "tanh",
           "top_k", "transpose", "zeros_like_array"]
__all__ += ["while_loop"]
__all__ += ["cummax", "cummin", "cumprod", "cumsum", "sort", "sort_key_val"]
__all__ += ["betainc", "digamma", "erf", "erf_inv", "erfc", "igamma", "igamma_grad_a", "igammac", "lgamma",
            "polygamma", "random_gamma_grad"]
__all__ += ["shift_left", "shift_right_logical"]
__all__ += ["all_gather", "all_to_all", "axis_index", "pmax", "pmean", "pmin", "ppermute", "psum",
            "psum_scatter"]

# -------------------- elementwise --------------------

abs, add, sub, mul, neg, sign = _fnp.abs, _fnp.add, _fnp.subtract, _fnp.multiply, _fnp.negative, _fnp.sign
exp, log, log1p, expm1, sqrt = _fnp.exp, _fnp.log, _fnp.log1p, _fnp.expm1, _fnp.sqrt
sin, cos, tan, atan, sinh, cosh, tanh = _fnp.sin, _fnp.cos, _fnp.tan, _fnp.arctan, _fnp.sinh, _fnp.cosh, _fnp.tanh
floor, ceil, square, pow = _fnp.floor, _fnp.ceil, _fnp.square, _fnp.power
max, min = _fnp.maximum, _fnp.minimum
eq, ne, lt, le, gt, ge = _fnp.equal, _fnp.not_equal, _fnp.less, _fnp.less_equal, _fnp.greater, _fnp.greater_equal
bitwise_and, bitwise_or, bitwise_xor, bitwise_not = (_fnp.bitwise_and, _fnp.bitwise_or, _fnp.bitwise_xor,
                                                     _fnp.bitwise_not)


@api_boundary
def div(x, y):
    """x / y, rounding towards zero for integers (C's division, as XLA's)."""
    (x, y), dtype, _ = operands("div", x, y)
    if dtype.kind == "f":
        return elementwise.div(x, y)
    quotient = elementwise.floor_divide(x, y)
    if dtype.kind == "u":
        return quotient
    inexact = elementwise.ne(elementwise.mul(quotient, y), x)
    negative = elementwise.ne(elementwise.lt(x, convert(0, dtype)), elementwise.lt(y, convert(0, dtype)))
    return elementwise.select_n(elementwise.bitwise_and(inexact, negative), quotient,
                                elementwise.add(quotient, convert(1, dtype)))


@api_boundary
def logistic(x):
    """1 / (1 + exp(-x)), computed without overflow (JAX's lax.logistic)."""
    (x,), dtype, weak = operands("logistic", x)
    target = inexact_dtype(dtype, weak)
    return elementwise.logistic(convert(x, target, weak) if target != dtype else x)


@api_boundary
def rsqrt(x, accuracy=None):
    """1 / sqrt(x)."""
    (x,), dtype, weak = operands("rsqrt", x)
    target = inexact_dtype(dtype, weak)
    x = convert(x, target, weak) if target != dtype else x
    return elementwise.div(convert(1, target, weak), elementwise.sqrt(x))


@api_boundary
def integer_pow(x, y):
    """x ** y for a static Python int y (negative only for floats)."""
    y = static_int(y, "integer_pow", "the exponent y")
    (x,), _, _ = operands("integer_pow", x)
    return elementwise.integer_pow(x, y)


@api_boundary
def reduce_precision(operand, exponent_bits, mantissa_bits):
    """`operand` rounded as a float of `exponent_bits` and `mantissa_bits` holds it (to nearest, ties
    to even; overflow to infinity, below the smallest normal to zero), keeping its dtype: (8, 7) is
    bfloat16, (5, 10) float16. Its derivative is the tangent rounded alike (JAX's)."""
    exponent_bits = static_int(exponent_bits, "reduce_precision", "exponent_bits")
    mantissa_bits = static_int(mantissa_bits, "reduce_precision", "mantissa_bits")
    if exponent_bits < 1 or mantissa_bits < 0:
        raise ValueError(at_user_line(f"reduce_precision: exponent_bits must be at least 1 and mantissa_bits at "
                                      f"least 0, got {exponent_bits} and {mantissa_bits}"))
    (operand,), dtype, weak = operands("reduce_precision", operand)
    target = inexact_dtype(dtype, weak)
    operand = convert(operand, target, weak) if target != dtype else operand
    return precision.reduce_precision(operand, builtins.min(exponent_bits, 64), builtins.min(mantissa_bits, 64))


@api_boundary
def clamp(min, x, max):
    """x clipped to [min, max] (JAX's argument order)."""
    return _fnp.minimum(_fnp.maximum(x, min), max)


@api_boundary
def select(pred, on_true, on_false):
    """on_true where `pred` holds, else on_false (pred bool, of their shape or a scalar)."""
    pred = as_operand(pred)
    pred_aval = aval_of(pred, "select")
    if pred_aval.dtype != np.bool_:
        raise TypeError(at_user_line(f"select: pred must be a bool array, got {pred_aval.str_short()}"))
    (on_false, on_true), _, _ = operands("select", on_false, on_true)
    shape = aval_of(on_true).shape
    if pred_aval.shape not in ((), shape):
        raise TypeError(at_user_line(f"select: pred of shape {pred_aval.shape} must be a scalar or have the "
                                     f"shape {shape} of on_true and on_false"))
    if pred_aval.shape != shape:
        pred = structural.broadcast_in_dim(pred, shape, ())
    return elementwise.select_n(pred, *_broadcast_cases([on_false, on_true], shape))


@api_boundary
def select_n(which, *cases):
    """cases[which] elementwise: `which` bool (two cases) or an integer array."""
    if not cases:
        raise TypeError(at_user_line("select_n needs at least one case"))
    which = as_operand(which)
    which_aval = aval_of(which, "select_n")
    cases, _, _ = operands("select_n", *cases)
    shape = aval_of(cases[0]).shape
    if which_aval.shape not in ((), shape):
        raise TypeError(at_user_line(f"select_n: which of shape {which_aval.shape} must be a scalar or have the "
                                     f"shape {shape} of the cases"))
    if len(cases) == 1:
        return cases[0]
    if which_aval.dtype.kind not in "biu" or (which_aval.dtype == np.bool_ and len(cases) != 2):
        raise TypeError(at_user_line(f"select_n: which must be bool (two cases) or an integer array, "
                                     f"got {which_aval.str_short()} for {len(cases)} cases"))
    if which_aval.shape != shape:
        which = structural.broadcast_in_dim(which, shape, ())
    cases = _broadcast_cases(cases, shape)
    if which_aval.dtype == np.bool_:
        return elementwise.select_n(which, *cases)
    # an integer `which`: a chain of two-way selects, the last case where which is out of range (as clamping)
    out = cases[-1]
    for k in range(len(cases) - 2, -1, -1):
        hit = elementwise.le(which, convert(k, which_aval.dtype)) if k == 0 else \
            elementwise.eq(which, convert(k, which_aval.dtype))
        out = elementwise.select_n(hit, out, cases[k])
    return out


def _broadcast_cases(cases, shape):
    return [structural.broadcast_in_dim(c, shape, ()) if aval_of(c).shape != shape else c for c in cases]


@api_boundary
def convert_element_type(operand, new_dtype):
    """`operand` as `new_dtype` (floats to ints round towards zero, as a C cast)."""
    new_dtype = dtype_argument("convert_element_type", new_dtype)
    (operand,), _, _ = operands("convert_element_type", operand)
    return elementwise.convert_element_type(operand, new_dtype)


# -------------------- shapes --------------------

@api_boundary
def broadcast_in_dim(operand, shape, broadcast_dimensions, out_sharding=None):
    """`operand` broadcast to `shape`, its axis i becoming axis broadcast_dimensions[i]."""
    (operand,), _, _ = operands("broadcast_in_dim", operand)
    shape = shape_tuple(shape, "broadcast_in_dim")
    dims = tuple(static_int(d, "broadcast_in_dim", "each broadcast dimension") for d in broadcast_dimensions)
    aval = aval_of(operand)
    if len(dims) != aval.ndim or any(not 0 <= d < len(shape) for d in dims) or list(dims) != sorted(set(dims)) \
            or any(aval.shape[i] not in (1, shape[d]) for i, d in enumerate(dims)):
        raise TypeError(at_user_line(f"broadcast_in_dim: cannot broadcast {aval.str_short()} to {shape} with "
                                     f"broadcast_dimensions={dims} (one increasing dimension per operand axis, "
                                     f"of its size or of size 1)"))
    if any(aval.shape[i] != shape[d] for i, d in enumerate(dims)):  # size-1 axes: squeezed, then broadcast
        ones = tuple(i for i, d in enumerate(dims) if aval.shape[i] != shape[d])
        operand = structural.squeeze(operand, ones)
        dims = tuple(d for i, d in enumerate(dims) if i not in ones)
    return structural.broadcast_in_dim(operand, shape, dims)


@api_boundary
def broadcast(operand, sizes):
    """`operand` with new leading axes of `sizes`."""
    (operand,), _, _ = operands("broadcast", operand)
    sizes = shape_tuple(sizes, "broadcast", "sizes")
    aval = aval_of(operand)
    return structural.broadcast_in_dim(operand, sizes + aval.shape, range(len(sizes), len(sizes) + aval.ndim))


@api_boundary
def reshape(operand, new_sizes, dimensions=None):
    """`operand` (its axes first permuted by `dimensions`) in the shape `new_sizes`."""
    (operand,), _, _ = operands("reshape", operand)
    if dimensions is not None:
        operand = transpose(operand, dimensions)
    return _fnp.reshape(operand, shape_tuple(new_sizes, "reshape", "new_sizes"))


@api_boundary
def transpose(operand, permutation):
    (operand,), _, _ = operands("transpose", operand)
    return _fnp.transpose(operand, tuple(static_int(p, "transpose", "each permutation entry") for p in permutation))


@api_boundary
def squeeze(array, dimensions):
    return _fnp.squeeze(array, tuple(dimensions))


@api_boundary
def expand_dims(array, dimensions):
    return _fnp.expand_dims(array, tuple(dimensions))


@api_boundary
def collapse(operand, start_dimension, stop_dimension=None):
    """`operand` with axes [start, stop) merged into one."""
    (operand,), _, _ = operands("collapse", operand)
    shape = aval_of(operand).shape
    stop = len(shape) if stop_dimension is None else stop_dimension
    start, stop, _ = builtins.slice(start_dimension, stop).indices(len(shape))
    size = int(np.prod(shape[start:stop], dtype=np.int64))
    return _fnp.reshape(operand, shape[:start] + (size,) + shape[stop:])


@api_boundary
def concatenate(operands, dimension):  # noqa: F811 (JAX's argument name)
    return _fnp.concatenate(list(operands), axis=dimension)


@api_boundary
def rev(operand, dimensions):
    """`operand` reversed along `dimensions`."""
    (operand,), _, _ = operands("rev", operand)
    ndim = aval_of(operand).ndim
    dims = tuple(sorted(static_int(d, "rev", "each dimension") % builtins.max(ndim, 1) for d in dimensions))
    return structural.rev(operand, dims) if dims else operand


@api_boundary
def pad(operand, padding_value, padding_config):
    """Pad with `padding_value`: one (low, high, interior) triple per axis; negative low/high crop."""
    (operand,), dtype, _ = operands("pad", operand)
    ndim = aval_of(operand).ndim
    if not hasattr(padding_config, "__len__") or len(padding_config) != ndim \
            or not all(hasattr(c, "__len__") and len(c) == 3 for c in padding_config):
        raise TypeError(at_user_line(f"pad: padding_config must hold one (low, high, interior) triple per axis "
                                     f"of the rank-{ndim} operand, got {padding_config!r}"))
    config = [tuple(static_int(n, "pad", "each entry of padding_config", allow_bool=True) for n in c)
              for c in padding_config]
    if any(interior < 0 for _, _, interior in config):
        raise ValueError(at_user_line(f"pad: interior padding must be non-negative, got {padding_config!r}"))
    value = convert(padding_value, dtype)
    if all(low >= 0 and high >= 0 for low, high, _ in config):
        return structural.pad(operand, value, config)
    out = structural.pad(operand, value, [(builtins.max(lo, 0), builtins.max(hi, 0), i) for lo, hi, i in config])
    shape = aval_of(out).shape
    starts = [builtins.max(-lo, 0) for lo, _, _ in config]
    limits = [n - builtins.max(-hi, 0) for n, (_, hi, _) in zip(shape, config)]
    if any(s > lim for s, lim in zip(starts, limits)):
        raise ValueError(at_user_line(f"pad: padding_config {padding_config!r} crops more than the operand holds"))
    return structural.slice(out, starts, limits)


@api_boundary
def iota(dtype, size):
    """[0, 1, ..., size - 1] of `dtype`."""
    return structural.iota(dtype_argument("iota", dtype), (static_int(size, "iota", "size"),), 0)


@api_boundary
def broadcasted_iota(dtype, shape, dimension):
    """An array of `shape` whose entries count along `dimension`."""
    shape = shape_tuple(shape, "broadcasted_iota")
    return structural.iota(dtype_argument("broadcasted_iota", dtype), shape, static_int(dimension, "broadcasted_iota",
                                                                                         "dimension"))


@api_boundary
def full(shape, fill_value, dtype=None):
    return _fnp.full(shape, fill_value, dtype)


@api_boundary
def full_like(x, fill_value, dtype=None, shape=None):
    return _fnp.full_like(x, fill_value, dtype, shape=shape) if shape is not None \
        else _fnp.full_like(x, fill_value, dtype)


@api_boundary
def zeros_like_array(x):
    return _fnp.zeros_like(x)


# -------------------- reductions and contractions --------------------

def _reducer(name, binder):
    @api_boundary
    def reduce(operand, axes):
        (operand,), _, _ = operands(name, operand)
        ndim = aval_of(operand).ndim
        axes = tuple(sorted({static_int(a, name, "each axis") % builtins.max(ndim, 1) for a in axes}))
        return binder(operand, axes) if axes else operand
    reduce.__name__ = reduce.__qualname__ = name
    reduce.__doc__ = f"{name} over `axes` (a sequence of ints)."
    return reduce


reduce_sum = _reducer("reduce_sum", reductions.reduce_sum)
reduce_prod = _reducer("reduce_prod", reductions.reduce_prod)
reduce_max = _reducer("reduce_max", reductions.reduce_max)
reduce_min = _reducer("reduce_min", reductions.reduce_min)


@api_boundary
def argmax(operand, axis, index_dtype):
    return reductions.argmax(operand, static_int(axis, "argmax", "axis"), dtype_argument("argmax", index_dtype))


@api_boundary
def argmin(operand, axis, index_dtype):
    return reductions.argmin(operand, static_int(axis, "argmin", "axis"), dtype_argument("argmin", index_dtype))


# -------------------- sorting and cumulative scans --------------------

def _axis_of(name, what, value, ndim):
    axis = static_int(value, name, what)
    if not -ndim <= axis < ndim:
        raise ValueError(at_user_line(f"{name}: {what} {axis} is out of range for an operand of rank {ndim}"))
    return axis % ndim


@api_boundary
def sort(operand, dimension=-1, is_stable=True, num_keys=1):
    """`operand` sorted along `dimension` (NaNs last); a sequence of operands of one shape is sorted
    lexicographically by its first `num_keys` and returned as a tuple, the rest permuted alike."""
    several = isinstance(operand, (tuple, list))
    xs = [as_operand(x) for x in (operand if several else [operand])]
    if not xs:
        raise TypeError(at_user_line("sort needs at least one operand"))
    shapes = {aval_of(x).shape for x in xs}
    if len(shapes) != 1:
        raise TypeError(at_user_line(f"sort: operands must have one shape, got {sorted(shapes)}"))
    ndim = aval_of(xs[0]).ndim
    if ndim == 0:
        raise TypeError(at_user_line("sort needs operands of rank at least 1, got a scalar"))
    num_keys = static_int(num_keys, "sort", "num_keys")
    if not 1 <= num_keys <= len(xs):
        raise ValueError(at_user_line(f"sort: num_keys={num_keys} must be in [1, {len(xs)}] (the operands)"))
    dimension = _axis_of("sort", "dimension", dimension, ndim)
    outs = sorting.sort(xs, dimension, bool(is_stable), num_keys)
    return tuple(outs) if several else outs[0]


@api_boundary
def sort_key_val(keys, values, dimension=-1, is_stable=True):
    """(keys sorted along `dimension`, values permuted alike)."""
    return sort((keys, values), dimension, is_stable, num_keys=1)


def _cumulative(name, binder):
    @api_boundary
    def cumulative(operand, axis=0, reverse=False):
        operand = as_operand(operand)
        ndim = aval_of(operand).ndim
        if ndim == 0:
            raise TypeError(at_user_line(f"{name} needs an operand of rank at least 1, got a scalar"))
        return binder(operand, _axis_of(name, "axis", axis, ndim), bool(reverse))
    cumulative.__name__ = cumulative.__qualname__ = name
    cumulative.__doc__ = f"The inclusive {name[3:]} scan of `operand` along `axis` (from the end if `reverse`)."
    return cumulative


cumsum = _cumulative("cumsum", sorting.cumsum)
cumprod = _cumulative("cumprod", sorting.cumprod)
cummax = _cumulative("cummax", sorting.cummax)
cummin = _cumulative("cummin", sorting.cummin)


@api_boundary
def top_k(operand, k):
    """(values, indices): the k largest entries along the last axis, largest first (ties: the lower
    index first; NaN counts as the largest), indices int32 (JAX's lax.top_k).

    One `sort` equation: the stable descending order (fnp.argsort's), its first k positions, and
    the values gathered there, so they differentiate (the cotangent goes back to the chosen
    entries) and batch like the sort and the gather."""
    (x,), dtype, _ = operands("top_k", operand)
    aval = aval_of(x)
    if aval.ndim == 0:
        raise TypeError(at_user_line("top_k needs an operand with at least one axis"))
    if dtype.kind not in "fiu":
        raise TypeError(at_user_line(f"top_k takes numbers, got {aval.str_short()}"))
    n = aval.shape[-1]
    k = static_int(k, "top_k", "k")
    if not 0 <= k <= n:
        raise ValueError(at_user_line(f"top_k: k={k} must be in [0, {n}] (the size of the last axis)"))
    if n == 0:
        return x, convert(x, np.dtype(np.int32))
    order = _fnp.argsort(x, axis=-1, descending=True)
    start, limit = (0,) * aval.ndim, aval.shape[:-1] + (k,)
    indices = structural.slice(order, start, limit)
    values = _fnp.take_along_axis(x, indices, axis=-1)
    return values, convert(indices, np.dtype(np.int32))


def _dot_operands(name, lhs, rhs, preferred_element_type):
    lhs, rhs = as_operand(lhs), as_operand(rhs)
    dtype, weak = result_type(aval_of(lhs, name), aval_of(rhs, name), name=name)
    if dtype.kind not in "fiu":
        raise TypeError(at_user_line(f"{name}: operands must be numeric, got {dtype}"))
    return convert(lhs, dtype, weak), convert(rhs, dtype, weak)


def _preferred(out, preferred_element_type):
    return out if preferred_element_type is None else convert(out, np.dtype(preferred_element_type))


@api_boundary
def dot_general(lhs, rhs, dimension_numbers, precision=None, preferred_element_type=None, out_sharding=None):
    """Contract lhs and rhs: dimension_numbers = ((lhs_contracting, rhs_contracting), (lhs_batch, rhs_batch));
    the result holds the batch dimensions, then lhs's free ones, then rhs's."""
    lhs, rhs = _dot_operands("dot_general", lhs, rhs, preferred_element_type)
    try:
        (lc, rc), (lb, rb) = dimension_numbers
        dims = tuple(tuple(tuple(static_int(d, "dot_general", "a dimension number") for d in side) for side in pair)
                     for pair in ((lc, rc), (lb, rb)))
    except (TypeError, ValueError):
        raise TypeError(at_user_line(f"dot_general: dimension_numbers must be ((lhs_contracting, rhs_contracting), "
                                     f"(lhs_batch, rhs_batch)), got {dimension_numbers!r}")) from None
    nl, nr = aval_of(lhs).ndim, aval_of(rhs).ndim
    (lc, rc), (lb, rb) = dims
    dims = ((tuple(d % builtins.max(nl, 1) for d in lc), tuple(d % builtins.max(nr, 1) for d in rc)),
            (tuple(d % builtins.max(nl, 1) for d in lb), tuple(d % builtins.max(nr, 1) for d in rb)))
    return _preferred(linalg.dot_general(lhs, rhs, dims), preferred_element_type)


@api_boundary
def dot(lhs, rhs, precision=None, preferred_element_type=None):
    """Vector/matrix products: contracts lhs's last axis with rhs's first (rank <= 2)."""
    lhs, rhs = _dot_operands("dot", lhs, rhs, preferred_element_type)
    nl, nr = aval_of(lhs).ndim, aval_of(rhs).ndim
    if not (1 <= nl <= 2 and 1 <= nr <= 2):
        raise TypeError(at_user_line(f"dot: operands must be vectors or matrices, got ranks {nl} and {nr}"))
    return _preferred(linalg.dot_general(lhs, rhs, (((nl - 1,), (0,)), ((), ()))), preferred_element_type)


@api_boundary
def batch_matmul(lhs, rhs, precision=None):
    """Matrix products over the leading (batch) dimensions of two rank-n (n >= 2) operands."""
    lhs, rhs = _dot_operands("batch_matmul", lhs, rhs, None)
    nl, nr = aval_of(lhs).ndim, aval_of(rhs).ndim
    if nl != nr or nl < 2:
        raise TypeError(at_user_line(f"batch_matmul: operands must have one rank of at least 2, got {nl} and {nr}"))
    batch = tuple(range(nl - 2))
    return linalg.dot_general(lhs, rhs, (((nl - 1,), (nl - 2,)), (batch, batch)))


# -------------------- scans --------------------

@api_boundary
def associative_scan(fn, elems, reverse=False, axis=0):
    """Inclusive prefix scan of `elems` (a pytree of arrays of one length along `axis`) with the
    associative `fn`, in O(log n) rounds of whole-array calls (the odd/even scheme of JAX's)."""
    if not callable(fn):
        raise TypeError(at_user_line(f"associative_scan: fn must be callable, got {fn!r}"))
    leaves, tree = tree_flatten(elems)
    if not leaves:
        raise ValueError(at_user_line("associative_scan: elems holds no arrays"))
    leaves = [as_operand(x) for x in leaves]
    avals = [aval_of(x, "associative_scan") for x in leaves]
    ndim = avals[0].ndim
    if ndim == 0:
        raise ValueError(at_user_line("associative_scan: elems must have an axis to scan along"))
    axis = static_int(axis, "associative_scan", "axis")
    if not -ndim <= axis < ndim:
        raise ValueError(at_user_line(f"associative_scan: axis {axis} is out of range for rank {ndim}"))
    axis %= ndim
    lengths = {a.shape[axis] if a.ndim > axis else None for a in avals}
    if len(lengths) != 1 or None in lengths:
        raise ValueError(at_user_line(f"associative_scan: every array of elems must have one length along axis "
                                      f"{axis}, got shapes {[a.shape for a in avals]}"))
    if reverse:
        leaves = [structural.rev(x, (axis,)) for x in leaves]

    def combine(a, b):
        out, out_tree = tree_flatten(fn(tree_unflatten(tree, a), tree_unflatten(tree, b)))
        if out_tree != tree:
            raise TypeError(at_user_line(f"associative_scan: fn must return the structure of elems "
                                         f"({tree}), got {out_tree}"))
        return [as_operand(x) for x in out]

    def sliced(x, start, stop, stride=1):
        return slice_in_dim(x, start, stop, stride, axis)

    def scan_level(elems):
        n = aval_of(elems[0]).shape[axis]
        if n < 2:
            return elems
        reduced = combine([sliced(x, 0, -1, 2) for x in elems], [sliced(x, 1, None, 2) for x in elems])
        odd = scan_level(reduced)  # NB: recursion depth log2(n)
        if n % 2 == 0:
            even = combine([sliced(x, 0, -1) for x in odd], [sliced(x, 2, None, 2) for x in elems])
        else:
            even = combine(odd, [sliced(x, 2, None, 2) for x in elems])
        even = [structural.concatenate([sliced(x, 0, 1), e], axis) for x, e in zip(elems, even, strict=True)]
        return [_interleave(e, o, axis) for e, o in zip(even, odd, strict=True)]

    out = scan_level(leaves)
    if reverse:
        out = [structural.rev(x, (axis,)) for x in out]
    return tree_unflatten(tree, out)


def _interleave(a, b, axis):
    """a[0], b[0], a[1], b[1], ... along `axis` (len(a) == len(b) or len(b) + 1): two interior pads and an add."""
    aval, n_a, n_b = aval_of(a), aval_of(a).shape[axis], aval_of(b).shape[axis]
    zero = convert(0, aval.dtype)
    config_a = [(0, 0, 0)] * aval.ndim
    config_b = [(0, 0, 0)] * aval.ndim
    config_a[axis] = (0, 1 if n_a == n_b else 0, 1)
    config_b[axis] = (1, 0 if n_a == n_b else 1, 1)
    padded_a, padded_b = structural.pad(a, zero, config_a), structural.pad(b, zero, config_b)
    if aval.dtype == np.bool_:
        return elementwise.bitwise_or(padded_a, padded_b)
    return elementwise.add(padded_a, padded_b)


# -------------------- special functions --------------------

def _float_unary(name, binder, x):
    """`binder` on x as a float (ints promote as in jax.lax's wrappers, a weak Python scalar stays weak)."""
    (x,), dtype, weak = operands(name, x)
    target = inexact_dtype(dtype, weak)
    return binder(convert(x, target, weak) if target != dtype else x)


@api_boundary
def erf(x):
    """The error function."""
    return _float_unary("erf", special.erf, x)


@api_boundary
def erfc(x):
    """1 - erf(x), accurate where it is small."""
    return _float_unary("erfc", special.erfc, x)


@api_boundary
def erf_inv(x):
    """The inverse of erf on [-1, 1] (±inf at ±1, nan outside)."""
    return _float_unary("erf_inv", special.erf_inv, x)


@api_boundary
def lgamma(x):
    """log |Gamma(x)|."""
    return _float_unary("lgamma", special.lgamma, x)


@api_boundary
def digamma(x):
    """The derivative of lgamma."""
    return _float_unary("digamma", special.digamma, x)


@api_boundary
def polygamma(m, x):
    """The m-th derivative of digamma; m a non-negative Python int (or a concrete integer scalar)."""
    m = static_int(m, "polygamma", "m")
    if m < 0:
        raise ValueError(at_user_line(f"polygamma: m must be non-negative, got {m}"))
    if m == 0:
        return digamma(x)
    if m > special.MAX_POLYGAMMA_ORDER:
        raise ValueError(at_user_line(f"polygamma: m={m} is above the largest order, {special.MAX_POLYGAMMA_ORDER}"))
    return _float_unary("polygamma", lambda v: special.polygamma(v, m), x)


def _float_nary(name, binder, *args):
    """`binder` on the operands promoted together (as jnp promotes) to a float dtype, broadcast to one shape."""
    args, dtype, weak = operands(name, *args)
    target = inexact_dtype(dtype, weak)
    if target.kind != "f":
        raise TypeError(at_user_line(f"{name} needs real operands, got {dtype.name}"))
    return binder(*(convert(v, target, weak) if aval_of(v).dtype != target else v for v in args))


@api_boundary
def igamma(a, x):
    """The regularized lower incomplete gamma function P(a, x) = gamma(a, x) / Gamma(a)."""
    return _float_nary("igamma", special.igamma, a, x)


@api_boundary
def igammac(a, x):
    """The regularized upper incomplete gamma function Q(a, x) = 1 - P(a, x)."""
    return _float_nary("igammac", special.igammac, a, x)


@api_boundary
def igamma_grad_a(a, x):
    """The derivative of igamma(a, x) in a."""
    return _float_nary("igamma_grad_a", special.igamma_grad_a, a, x)


@api_boundary
def random_gamma_grad(a, x):
    """The derivative in a of a sample x of Gamma(a, 1): -(dP/da) / (dP/dx), P = igamma(a, x)."""
    return _float_nary("random_gamma_grad", special.random_gamma_grad, a, x)


@api_boundary
def betainc(a, b, x):
    """The regularized incomplete beta function I_x(a, b) (differentiable in x only, as JAX's)."""
    return _float_nary("betainc", special.betainc, a, b, x)


def _shift(name, binder, x, y):
    (x, y), dtype, _ = operands(name, x, y)
    if dtype.kind not in "iu":
        raise TypeError(at_user_line(f"{name} needs integer operands, got {dtype.name}"))
    return binder(x, y)


@api_boundary
def shift_left(x, y):
    """x shifted left by y bits; 0 where y is negative or at least the bit width (as XLA)."""
    return _shift("shift_left", bits.shift_left, x, y)


@api_boundary
def shift_right_logical(x, y):
    """x shifted right by y bits, zeros shifted in (signed values too); 0 where y is out of range."""
    return _shift("shift_right_logical", bits.shift_right_logical, x, y)


# -------------------- gradients --------------------

@api_boundary
def stop_gradient(x):
    """`x` itself, with a zero derivative: no transformation differentiates through it."""
    return tree_map(_stop_gradient_leaf, x)


# -------------------- the rest of jax.lax's elementwise functions --------------------

__all__ += ["RoundingMethod", "acos", "acosh", "asin", "asinh", "atan2", "atanh", "exp2", "is_finite", "rem",
            "round"]
asin, acos, asinh, acosh, atanh = _fnp.arcsin, _fnp.arccos, _fnp.arcsinh, _fnp.arccosh, _fnp.arctanh
atan2, exp2, is_finite = _fnp.arctan2, _fnp.exp2, _fnp.isfinite


@api_boundary
def rem(x, y):
    """C's remainder (fmod): of the sign of x, as jax.lax.rem."""
    return _fnp.fmod(x, y)


class RoundingMethod:
    """jax.lax.RoundingMethod's two values."""
    AWAY_FROM_ZERO = 0
    TO_NEAREST_EVEN = 1


@api_boundary
def round(x, rounding_method=RoundingMethod.AWAY_FROM_ZERO):
    """x rounded to an integer value: halves away from zero (JAX's default) or to even."""
    if int(rounding_method) == RoundingMethod.TO_NEAREST_EVEN:
        return _fnp.rint(x)
    if int(rounding_method) != RoundingMethod.AWAY_FROM_ZERO:
        raise ValueError(at_user_line(f"round: unknown rounding_method {rounding_method!r}"))
    (x,), dtype, _ = operands("round", x)
    if dtype.kind != "f":
        raise TypeError(at_user_line(f"round needs floating-point operands, got {aval_of(x).str_short()}"))
    whole = _fnp.trunc(x)
    # x - trunc(x) is exact: a half or more rounds away from zero
    away = _fnp.greater_equal(_fnp.abs(_fnp.subtract(x, whole)), 0.5)
    return _fnp.where(away, _fnp.add(whole, _fnp.sign(x)), whole)


__getattr__ = _missing_name_hook(__name__)  # a JAX name not ported yet says so


del Tracer
