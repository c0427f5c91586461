"""What every ftrans.numpy function shares: NumPy 2 (NEP 50) dtype promotion,
turning arguments into primitive operands (one dtype, one shape), and axes.

Primitives take operands of identical shape and dtype; this module inserts the
`convert_element_type` and `broadcast_in_dim` equations NumPy's rules imply.
Non-traced scalars are left unbroadcast: they become literals in the IR.
"""
from __future__ import annotations

import operator

import numpy as np

from ir.core import Array, DTYPE_FROM_SHORT_NAME, ShapedArray, concrete_aval
from ir.errors import api_boundary, at_user_line
from ir.primitive import as_array
from ir.primitives import structural
from ir.primitives.elementwise import convert_element_type
from ir.tracing import Tracer, current_trace

_KIND_RANK = {"b": 0, "u": 1, "i": 1, "f": 2, "c": 3}
_DEFAULT_OF_KIND = {"b": np.dtype(np.bool_), "u": np.dtype(np.int64), "i": np.dtype(np.int64),
                    "f": np.dtype(np.float64), "c": np.dtype(np.complex128)}
float64 = np.dtype(np.float64)
# what ftrans computes in (float0 is only ever a tangent's dtype)
SUPPORTED_DTYPES = frozenset(d for d in DTYPE_FROM_SHORT_NAME.values() if d.kind != "V")
_SUPPORTED_NAMES = "bool, int8/16/32/64, uint8/16/32/64, float16/32/64, complex64/128"


class ShapeMismatchError(TypeError, ValueError):
    """Operand shapes that do not fit. A TypeError like JAX's, a ValueError like NumPy's."""


def public(fun):
    """Mark a public ftrans.numpy function: errors show the user's frames."""
    return api_boundary(fun)


def aval_of(x, name=None) -> ShapedArray:
    if isinstance(x, Tracer):
        return x.aval
    try:
        return concrete_aval(x)
    except TypeError:
        where = f"{name}: " if name else ""
        raise TypeError(at_user_line(f"{where}{type(x).__name__} is not a valid ftrans.numpy argument: "
                                     "pass arrays, NumPy scalars or Python bool/int/float/complex")) from None


def unsupported_dtype_error(name, dtype, what="arrays of dtype "):
    dtype = np.dtype(dtype)
    return TypeError(at_user_line(f"{name}: ftrans does not support {what}{dtype}; "
                                  f"it computes in {_SUPPORTED_NAMES}"))


def dtype_argument(name, dtype):
    """The `dtype=` argument of `name` as a NumPy dtype ftrans computes in, or a TypeError naming it."""
    try:
        dtype = np.dtype(dtype)
    except TypeError:
        raise TypeError(at_user_line(f"{name}: dtype={dtype!r} is not a dtype")) from None
    if dtype not in SUPPORTED_DTYPES:
        raise unsupported_dtype_error(name, dtype, "dtype=")
    return dtype


def as_operand(x):
    """Lists and tuples become arrays; arrays, tracers and scalars pass through."""
    if isinstance(x, (list, tuple)):
        if any(isinstance(v, Tracer) for v in _flat(x)):
            from ftrans.numpy._shape import stack
            return stack([as_operand(v) for v in x])
        return np.asarray(x)
    if isinstance(x, (Tracer, np.ndarray, np.generic, bool, int, float, complex)):
        return x
    if hasattr(x, "__array__") and not hasattr(x, "__cuda_array_interface__"):
        return np.asarray(x)
    return x


def _flat(x):
    stack = [x]
    while stack:
        v = stack.pop()
        if isinstance(v, (list, tuple)):
            stack.extend(v)
        else:
            yield v


def result_type(*avals, name="ftrans.numpy"):
    """(dtype, weak) of combining `avals` under NumPy 2 rules with weak Python scalars.
    A dtype ftrans does not compute in is a TypeError naming the function `name`."""
    for a in avals:
        if a.dtype not in SUPPORTED_DTYPES:
            raise unsupported_dtype_error(name, a.dtype)
    strong = {a.dtype for a in avals if not a.weak_type}
    weak_kind = max((a.dtype.kind for a in avals if a.weak_type), key=_KIND_RANK.get, default=None)
    if not strong:
        return _DEFAULT_OF_KIND[weak_kind], True
    dtype = strong.pop() if len(strong) == 1 else np.result_type(*strong)
    if weak_kind is not None and _KIND_RANK[weak_kind] > _KIND_RANK[dtype.kind]:
        # NEP 50: a Python float or complex takes the precision of the array it meets (float32 + 1j is
        # complex64), an integer array's the default
        if weak_kind == "c" and dtype.kind == "f":
            dtype = np.result_type(dtype, np.complex64)
        else:
            dtype = _DEFAULT_OF_KIND[weak_kind]
    return dtype, False


def inexact_dtype(dtype, weak=False):
    """The float dtype NumPy computes `sin` etc. in: float16 for int8/bool, float64 for int32...
    (floats and complex numbers compute in their own dtype)"""
    if dtype.kind in "fc":
        return dtype
    return float64 if weak else np.result_type(dtype, np.float16)


def convert(x, dtype, weak=False):
    """`x` as `dtype` (weak only if `weak`): a Python scalar stays one when the
    result is weak, so that it prints and promotes as a weak literal."""
    if type(x) in (bool, int, float, complex):
        if weak:
            return {"b": bool, "i": int, "f": float, "c": complex}[dtype.kind](x)
        try:
            return np.array(x, dtype=dtype)[()]
        except OverflowError:
            raise OverflowError(at_user_line(f"Python integer {x} does not fit in {dtype.name}")) from None
    aval = aval_of(x)
    if aval.dtype == dtype and (aval.weak_type == weak or not weak):
        return x
    if isinstance(x, np.generic):
        return x.astype(dtype)
    return convert_element_type(x, dtype, weak)


def broadcast_shapes(name, shapes):
    try:
        return np.broadcast_shapes(*shapes)
    except ValueError:
        listed = " and ".join(str(tuple(s)) for s in shapes)
        raise ShapeMismatchError(at_user_line(f"{name}: shapes {listed} do not broadcast together")) from None


def broadcast_to_shape(x, shape):
    aval = aval_of(x)
    if aval.shape == tuple(shape):
        return x
    lead = len(shape) - aval.ndim
    return structural.broadcast_in_dim(x, shape, range(lead, len(shape)))


def broadcast_all(name, *args):
    """Broadcast `args` to one shape, keeping their dtypes (non-traced scalars stay scalars)."""
    avals = [aval_of(a) for a in args]
    shape = broadcast_shapes(name, [a.shape for a in avals])
    return [x if aval.shape == shape or (aval.ndim == 0 and not isinstance(x, Tracer))
            else broadcast_to_shape(x, shape) for x, aval in zip(args, avals, strict=True)]


def operands(name, *args, dtype=None):
    """Promote `args` to one dtype (or `dtype`) and broadcast them to one shape.

    Returns (operands, dtype, weak). Non-traced rank-0 values stay scalars
    (they become literals); everything else is broadcast explicitly.
    """
    avals, traced = [], []
    for i, x in enumerate(args):  # a loop, not comprehensions: this runs on every call
        if isinstance(x, Tracer):
            avals.append(x.aval)
            traced.append(True)
            continue
        if type(x) not in _PLAIN_OPERANDS:
            if not isinstance(args, list):
                args = list(args)
            x = args[i] = as_operand(x)
            if isinstance(x, Tracer):  # a list of tracers became one stacked tracer
                avals.append(x.aval)
                traced.append(True)
                continue
        avals.append(aval_of(x, name))
        traced.append(False)
    key = (tuple(avals), tuple(traced), dtype)
    plan = _OPERAND_PLANS.get(key)
    if plan is None:
        if len(_OPERAND_PLANS) >= _MAX_OPERAND_PLANS:
            _OPERAND_PLANS.clear()
        plan = _OPERAND_PLANS[key] = _operand_plan(name, *key)
    dtype, weak, shape, converts, broadcasts = plan
    if not (converts or broadcasts):
        return args, dtype, weak
    out = []
    for x, aval, convert_it, broadcast_it in zip(args, avals, converts or [False] * len(args),
                                                 broadcasts or [False] * len(args), strict=True):
        if convert_it:
            x = convert(x, dtype, weak)
        if broadcast_it and (isinstance(x, Tracer) or aval.shape):  # untraced scalars stay literals
            x = broadcast_to_shape(x, shape)
        out.append(x)
    return out, dtype, weak


# operands() runs on every ftrans.numpy call: what it does to each argument
# depends only on the arguments' avals and which are traced, so it is planned
# once per such key. A plan: (dtype, weak, shape, convert flags, flags of the
# arguments whose shape differs), with empty flags when nothing needs doing.
_OPERAND_PLANS = {}
_MAX_OPERAND_PLANS = 4096  # distinct keys kept; past that the cache starts over
_PLAIN_OPERANDS = (np.ndarray, Array, float, int, bool, complex)


def _operand_plan(name, avals, traced, dtype):
    if dtype is None:
        dtype, weak = result_type(*avals, name=name)
    else:
        result_type(*avals, name=name)  # only to check the operands' dtypes
        weak = False
    shapes = {a.shape for a in avals}
    shape = shapes.pop() if len(shapes) == 1 else broadcast_shapes(name, [a.shape for a in avals])
    converts = [a.dtype != dtype or (a.weak_type and not weak) for a in avals]
    broadcasts = [a.shape != shape for a in avals]
    return (dtype, weak, shape, tuple(converts) if any(converts) else (),
            tuple(broadcasts) if any(broadcasts) else ())


def static_int(value, name, what, allow_bool=False):
    """`value` as a Python int, as NumPy takes sizes and counts: an int, a NumPy integer,
    a 0-d integer array or a concrete integer tracer, never a float (nor a bool, which
    NumPy refuses as a dimension but takes as a count: `allow_bool`)."""
    is_bool = isinstance(value, (bool, np.bool_)) or getattr(value, "dtype", None) == np.bool_
    if is_bool and not allow_bool:
        raise TypeError(at_user_line(f"{name}: {what} must be an integer, got the bool {value!r}"))
    if isinstance(value, Tracer) and value.aval.dtype.kind not in ("biu" if allow_bool else "iu"):
        raise TypeError(at_user_line(f"{name}: {what} must be an integer, got a traced {value.aval.str_short()}"))
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(at_user_line(f"{name}: {what} must be an integer, got {value!r} "
                                     f"({type(value).__name__})")) from None


def shape_tuple(shape, name, what="shape", allow_unknown=False):
    """A shape argument as NumPy takes it: an integer or a sequence of integers (see
    `static_int`), none negative (`allow_unknown`: one may be -1, as reshape's)."""
    if _is_plain_shape(shape):  # the common cases, settled at once (reshape and friends are hot)
        return shape
    if type(shape) is int and shape >= 0:
        return (shape,)
    if isinstance(shape, (int, np.generic)) or getattr(shape, "ndim", None) == 0 \
            or (hasattr(shape, "__index__") and not hasattr(shape, "__iter__")):
        dims = (static_int(shape, name, what),)
    elif hasattr(shape, "__iter__") and not isinstance(shape, (str, bytes)):
        dims = tuple(static_int(n, name, f"each dimension of {what}") for n in shape)
    else:
        raise TypeError(at_user_line(f"{name}: {what} must be an integer or a sequence of integers, "
                                     f"got {shape!r} ({type(shape).__name__})"))
    negative = [n for n in dims if n < 0]
    if allow_unknown and negative and set(negative) == {-1}:
        if len(negative) > 1:
            raise ValueError(at_user_line(f"{name}: can only specify one unknown dimension (-1), got {what} {dims}"))
    elif negative:
        raise ValueError(at_user_line(f"{name}: negative dimensions are not allowed, got {what} {dims}"))
    return dims


def _is_plain_shape(shape):
    """Whether `shape` is a tuple of non-negative Python ints (never bools)."""
    if type(shape) is not tuple:
        return False
    for n in shape:
        if type(n) is not int or n < 0:
            return False
    return True


def normalize_axis(axis, ndim, name="axis"):
    if not isinstance(axis, (int, np.integer)) or isinstance(axis, bool):
        raise TypeError(at_user_line(f"{name} must be an int, got {axis!r}"))
    if not -ndim <= axis < ndim:  # as NumPy: a 0-d array has no axis at all
        raise np.exceptions.AxisError(at_user_line(f"{name} {axis} is out of bounds for an array of rank {ndim}"))
    return int(axis) % ndim


def normalize_axes(axis, ndim):
    """None -> every axis; an int or a tuple of ints -> a sorted tuple of non-negative axes."""
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, (int, np.integer)):
        axes = (axis,)
    elif isinstance(axis, (tuple, list)):
        axes = tuple(axis)
    else:
        raise TypeError(at_user_line(f"axis must be None, an int or a tuple of ints, got {axis!r}"))
    normalized = tuple(normalize_axis(a, ndim) for a in axes)
    if len(set(normalized)) != len(normalized):
        raise ValueError(at_user_line(f"repeated axis in {axis!r}"))
    return tuple(sorted(normalized))


def unchanged(x):
    """`x` as the result of a function that leaves it as it is (a reshape to its own
    shape, abs of bools, ...). Eager results are Arrays (ir.core), never NumPy or
    Python scalars (SPEC 2); under a trace a Python scalar stays one (weakly typed,
    as a computed result would be)."""
    if isinstance(x, Tracer) or (type(x) in (bool, int, float, complex) and current_trace() is not None):
        return x
    return as_array(x)


def concrete_or_none(x):
    """The concrete NumPy value of `x` if it has one (arrays, scalars, concrete tracers)."""
    if isinstance(x, Tracer):
        return x.concrete_value()
    return x
