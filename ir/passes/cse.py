"""Common-subexpression elimination: one equation per distinct computation.

Two equations compute the same thing when they apply the same primitive with
equal params to the same operands. The key of an equation is

    (primitive, params, operands)

- params by value, with their types (so `2`, `2.0` and `True` differ) and
  floats by their bits (so `0.0` and `-0.0` differ); a sub-jaxpr by
  identity (two equal-looking sub-jaxprs are not compared);
- operands: variables by identity, literals by (aval, bytes): the aval
  carries dtype and weak type, the bytes tell `0.0` from `-0.0`;
- commutative primitives sort their two operands by definition index
  (variables first, in the order they are defined, then literals), so
  `x*y` and `y*x` are one node and the result does not depend on the order
  of a dict or set.

So `(x+y) + x*(x+y)` computes `x+y` once. Identical small constants are
merged too (keyed by aval and bytes). Equations of barrier primitives
(`BARRIER_PRIMITIVES`, e.g. a future `checkpoint`) are never merged.
"""
from __future__ import annotations

import struct

import numpy as np

from ir.core import Literal
from ir.passes.rewrite import is_barrier, rewrite

# Flagged commutative, but not *bitwise* commutative: NumPy's maximum(0.0, -0.0)
# is -0.0 and maximum(-0.0, 0.0) is 0.0 (the second operand wins ties), and
# likewise for minimum. Swapping their operands could change the sign of a
# zero result, so CSE merges these only with their operands in the same order.
_ORDER_SENSITIVE = frozenset({"max", "min"})

_UNHASHABLE = object()


def cse(program):
    """`program` (ClosedJaxpr or Jaxpr) with repeated computations merged: a
    repeat is dropped and its uses read the first. (What only the repeat used
    is left for `dce`.)"""
    return rewrite(program, [cse_rule], merge_consts=True)


def cse_rule(rw, eqn):
    """Replace `eqn` by an earlier equal one, or remember it. Must be the last
    rule of a sweep: an equation it remembers is one the sweep keeps."""
    if is_barrier(eqn):
        return None
    key = equation_key(rw, eqn)
    if key is None:
        return None
    table = rw.tables.setdefault("cse", {})
    earlier = table.get(key)
    if earlier is not None:
        return earlier
    table[key] = eqn.outvars
    return None


def equation_key(rw, eqn):
    """The CSE key of `eqn` (see the module docstring), or None if its params
    cannot be compared."""
    params = param_key(eqn.params)
    if params is _UNHASHABLE:
        return None
    operands = eqn.invars
    prim = eqn.primitive
    if prim.commutative and len(operands) == 2 and prim.name not in _ORDER_SENSITIVE:
        x, y = operands
        if _precedes(rw, y, x):
            operands = [y, x]
    # per equation, on every sweep: the common case (variables) in one comprehension, no call
    return (prim, params, tuple([x if type(x) is not Literal else (x.aval, x.value.tobytes())
                                 for x in operands]))


def _precedes(rw, a, b):
    """`a` sorts before `b` by `rw.order_key` (variables by definition index,
    then literals), building keys only to compare two literals."""
    a_is_literal, b_is_literal = type(a) is Literal, type(b) is Literal
    if a_is_literal and b_is_literal:
        return rw.order_key(a) < rw.order_key(b)
    if a_is_literal or b_is_literal:
        return b_is_literal
    return rw.order[a] < rw.order[b]


def param_key(params):
    """A hashable stand-in for a params dict, or _UNHASHABLE. Recursion only
    follows nested tuples in params (a few levels, whatever the program's size)."""
    if not params:  # most equations (elementwise ones) have none
        return ()
    key = tuple([(name, _value_key(value)) for name, value in sorted(params.items())])
    try:
        hash(key)
    except TypeError:  # e.g. a dict or a list of lists in some param
        return _UNHASHABLE
    return key


def _value_key(value):
    kind = type(value)
    if kind is float:
        return (float, struct.pack("<d", value))
    if isinstance(value, np.generic):
        return (kind, value.tobytes())
    if isinstance(value, np.ndarray):
        return (np.ndarray, value.dtype, value.shape, value.tobytes())
    if kind is tuple or kind is list:
        return (kind, tuple(_value_key(v) for v in value))
    # anything else by its own equality, with its type: a sub-jaxpr (Jaxpr and
    # ClosedJaxpr hash and compare by identity), a dtype, an int, a string, None
    return (kind, value)
