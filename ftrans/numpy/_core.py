"""What every ftrans.numpy function shares: NumPy 2 (NEP 50) dtype promotion,
turning arguments into primitive operands (one dtype, one shape), and axes.

Primitives take operands of identical shape and dtype; this module inserts the
`convert_element_type` and `broadcast_in_dim` equations NumPy's rules imply.
Non-traced scalars are left unbroadcast: they become literals in the IR.
"""
from __future__ import annotations

import numpy as np

from ir.core import Array, ShapedArray, concrete_aval
from ir.errors import api_boundary, at_user_line
from ir.primitive import as_array
from ir.primitives import structural
from ir.primitives.elementwise import convert_element_type
from ir.tracing import Tracer, current_trace

_KIND_RANK = {"b": 0, "u": 1, "i": 1, "f": 2}
_DEFAULT_OF_KIND = {"b": np.dtype(np.bool_), "u": np.dtype(np.int64), "i": np.dtype(np.int64),
                    "f": np.dtype(np.float64)}
float64 = np.dtype(np.float64)


class ShapeMismatchError(TypeError, ValueError):
    """Operand shapes that do not fit. A TypeError like JAX's, a ValueError like NumPy's."""


def public(fun):
    """Mark a public ftrans.numpy function: errors show the user's frames."""
    return api_boundary(fun)


def aval_of(x) -> ShapedArray:
    if isinstance(x, Tracer):
        return x.aval
    try:
        return concrete_aval(x)
    except TypeError:
        raise TypeError(at_user_line(f"{type(x).__name__} is not a valid ftrans.numpy argument: "
                                     "pass arrays, NumPy scalars or Python bool/int/float")) from None


def as_operand(x):
    """Lists and tuples become arrays; arrays, tracers and scalars pass through."""
    if isinstance(x, (list, tuple)):
        if any(isinstance(v, Tracer) for v in _flat(x)):
            from ftrans.numpy._shape import stack
            return stack([as_operand(v) for v in x])
        return np.asarray(x)
    if isinstance(x, (Tracer, np.ndarray, np.generic, bool, int, float)):
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


def result_type(*avals):
    """(dtype, weak) of combining `avals` under NumPy 2 rules with weak Python scalars."""
    strong = {a.dtype for a in avals if not a.weak_type}
    weak_kind = max((a.dtype.kind for a in avals if a.weak_type), key=_KIND_RANK.get, default=None)
    if not strong:
        return _DEFAULT_OF_KIND[weak_kind], True
    dtype = strong.pop() if len(strong) == 1 else np.result_type(*strong)
    if weak_kind is not None and _KIND_RANK[weak_kind] > _KIND_RANK[dtype.kind]:
        dtype = _DEFAULT_OF_KIND[weak_kind]
    return dtype, False


def inexact_dtype(dtype, weak=False):
    """The float dtype NumPy computes `sin` etc. in: float16 for int8/bool, float64 for int32..."""
    if dtype.kind == "f":
        return dtype
    return float64 if weak else np.result_type(dtype, np.float16)


def convert(x, dtype, weak=False):
    """`x` as `dtype` (weak only if `weak`): a Python scalar stays one when the
    result is weak, so that it prints and promotes as a weak literal."""
    if type(x) in (bool, int, float):
        if weak:
            return {"b": bool, "i": int, "f": float}[dtype.kind](x)
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
        avals.append(aval_of(x))
        traced.append(False)
    key = (tuple(avals), tuple(traced), dtype)
    plan = _OPERAND_PLANS.get(key)
    if plan is None:
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
_PLAIN_OPERANDS = (np.ndarray, Array, float, int, bool)


def _operand_plan(name, avals, traced, dtype):
    if dtype is None:
        dtype, weak = result_type(*avals)
    else:
        weak = False
    shapes = {a.shape for a in avals}
    shape = shapes.pop() if len(shapes) == 1 else broadcast_shapes(name, [a.shape for a in avals])
    converts = [a.dtype != dtype or (a.weak_type and not weak) for a in avals]
    broadcasts = [a.shape != shape for a in avals]
    return (dtype, weak, shape, tuple(converts) if any(converts) else (),
            tuple(broadcasts) if any(broadcasts) else ())


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
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    normalized = tuple(normalize_axis(a, ndim) for a in axes)
    if len(set(normalized)) != len(normalized):
        raise ValueError(at_user_line(f"repeated axis in {axis!r}"))
    return tuple(sorted(normalized))


def unchanged(x):
    """`x` as the result of a function that leaves it as it is (a reshape to its own
    shape, abs of bools, ...). Eager results are Arrays (ir.core), never NumPy or
    Python scalars (SPEC 2); under a trace a Python scalar stays one (weakly typed,
    as a computed result would be)."""
    if isinstance(x, Tracer) or (type(x) in (bool, int, float) and current_trace() is not None):
        return x
    return as_array(x)


def concrete_or_none(x):
    """The concrete NumPy value of `x` if it has one (arrays, scalars, concrete tracers)."""
    if isinstance(x, Tracer):
        return x.concrete_value()
    return x
