"""Helpers the AD rules share: zero-aware arithmetic on tangents and the
registrars that build a primitive's `jvp`/`transpose` rules from its derivatives.

Rules are written with primitives (through their binders), so they run in any
trace: concretely in eager mode, staged under jit, and differentiated again
for higher-order derivatives.
"""
from __future__ import annotations

import numpy as np

from ir.core import array_module
from ir.markers import UndefinedPrimal, Zero, float0_zeros, tangent_aval
from ir.primitive import PRIMITIVES
from ir.tracing import bind, get_aval

# NB: the primitive modules use these registrars while they are being declared,
# so this module reaches `add` and `broadcast_in_dim` through the registry at call time.


def _add(a, b):
    return bind(PRIMITIVES["add"], a, b)


def zeros(aval, like=None):
    """A materialized zero of `aval` (float0 for integer tangents, always NumPy's).
    Where the zero meets concrete values, pass one as `like`: beside a CuPy array
    the zero is a CuPy array. Otherwise it is bound, so that a trace stages it."""
    if aval.dtype.kind == "V":
        return float0_zeros(aval.shape)
    xp = array_module(like)
    if xp is not np:
        return xp.zeros(aval.shape, aval.dtype)
    return bind(PRIMITIVES["broadcast_in_dim"], aval.dtype.type(0), shape=aval.shape, broadcast_dimensions=())


def instantiate(t):
    return zeros(t.aval) if type(t) is Zero else t


def add_tangents(a, b):
    """a + b where either may be a symbolic Zero. NB: JAX calls this add_jaxvals / add_any."""
    if type(a) is Zero:
        return b
    if type(b) is Zero:
        return a
    return _add(a, b)


def scalar_like(x, value):
    """`value` as a scalar of x's dtype: rules build constants this way, since
    primitives do not promote (a float32 rule needs float32 constants)."""
    dtype = getattr(x, "dtype", None)  # arrays, NumPy scalars and tracers have one; Python scalars not
    return (dtype if dtype is not None else aval_of(x).dtype).type(value)


def unbroadcast(ct, aval):
    """Sum a cotangent back to the shape of a rank-0 operand that stood beside arrays."""
    if type(ct) is Zero or aval_of(ct).shape == aval.shape:
        return ct
    return bind(PRIMITIVES["reduce_sum"], ct, axes=tuple(range(aval_of(ct).ndim)))


def is_undefined(x):
    return type(x) is UndefinedPrimal


def aval_of(x):
    return x.aval if type(x) in (UndefinedPrimal, Zero) else get_aval(x)


# -------------------- jvp registrars --------------------

def jvp_from_derivatives(prim, *derivatives):
    """A jvp rule from one function per operand, ``d(t, out, *primals, **params)``,
    giving that operand's contribution to the output tangent (None: the operand
    is not differentiable; a `d` may return a Zero where the contribution is
    structurally zero). Zero tangents contribute nothing."""
    def jvp(primals, tangents, **params):
        out = bind(prim, *primals, **params)
        total = None
        for derivative, t in zip(derivatives, tangents, strict=True):
            if derivative is None or type(t) is Zero:
                continue
            term = derivative(t, out, *primals, **params)
            if type(term) is Zero:
                continue
            total = term if total is None else _add(total, term)
        return out, Zero(get_aval(out)) if total is None else total
    return jvp


def zero_jvp(prim):
    """For primitives with integer/bool results or piecewise-constant ones (floor, sign)."""
    def jvp(primals, tangents, **params):
        out = bind(prim, *primals, **params)
        if prim.multiple_results:
            return out, [Zero(_tangent_aval(o)) for o in out]
        return out, Zero(_tangent_aval(out))
    return jvp


def _tangent_aval(x):
    return tangent_aval(get_aval(x))


def linear_jvp(prim):
    """For primitives linear in all their operands: the tangent is the primitive
    applied to the tangents (Zeros instantiated where others are not)."""
    def jvp(primals, tangents, **params):
        out = bind(prim, *primals, **params)
        return out, bind(prim, *[instantiate(t) for t in tangents], **params)
    return jvp
