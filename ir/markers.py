"""Markers the transformation rules exchange (plain data, no behaviour).

`Zero(aval)`: a tangent or cotangent known to be zero, never materialized.
`UndefinedPrimal(aval)`: in a transpose rule, the linear operand whose
cotangent is being computed. `not_mapped`: in a batching rule, an operand
without a batch dimension.
"""
from __future__ import annotations

import numpy as np

from ir.core import ShapedArray, float0


class Zero:
    __slots__ = ("aval",)

    def __init__(self, aval: ShapedArray):
        self.aval = aval

    def __repr__(self):
        return f"Zero({self.aval.str_short()})"


class UndefinedPrimal:
    __slots__ = ("aval",)

    def __init__(self, aval: ShapedArray):
        self.aval = aval

    def __repr__(self):
        return f"UndefinedPrimal({self.aval.str_short()})"


not_mapped = None  # NB: JAX spells it the same way


def tangent_aval(aval: ShapedArray) -> ShapedArray:
    """The type of a tangent of `aval`: itself for floats and complex numbers, float0 for integers and bools."""
    return aval if aval.dtype.kind in "fc" else ShapedArray(aval.shape, float0)


def float0_zeros(shape):
    return np.zeros(shape, dtype=float0)
