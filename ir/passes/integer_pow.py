"""Integer powers as multiplications, as JAX's `integer_pow` lowering does.

`integer_pow[y=k] x` becomes square-and-multiply (x**5 = x4 * x with
x2 = x*x, x4 = x2*x2), a negative k the reciprocal of the positive power, and
k = 0 ones of x's type (1 for every x, nan and inf included, as np.power).

Only where it is bit-for-bit what `integer_pow`'s implementation
(`np.power`) computes, by default (`exact=True`, what `optimize` runs):

- integer dtypes, every k >= 0: integer products are exact modulo 2**bits,
  in any order, and so is np.power's own square-and-multiply;
- floating dtypes, k in {-1, 0, 1, 2}: x*x and 1/x are single correctly
  rounded operations, and np.power(x, 2.0) and np.power(x, -1.0) are too
  (NumPy computes them as x*x and 1/x; `tests/test_passes.py` checks it on
  random float16/32/64 inputs). For k >= 3 a chain of multiplications rounds
  more than once, while pow rounds once: they differ in the last bit for a
  quarter of the inputs, so those stay `integer_pow`.

- complex dtypes: k = 1 only (np.power(-0+0j, 2) is 0+0j, (-0+0j)*(-0+0j) is 0-0j).

`exact=False` lowers every k for floats too, as JAX does (within a few ulps
of np.power); a backend that accepts that trade may ask for it.
"""
from __future__ import annotations

from ir.passes.rewrite import literal, rewrite
from ir.primitives import elementwise as ew
from ir.primitives import structural

_EXACT_FLOAT_EXPONENTS = frozenset({-1, 0, 1, 2})


def lower_integer_pow(program, exact=True):
    """`program` (ClosedJaxpr or Jaxpr) with its `integer_pow`s lowered (see above)."""
    return rewrite(program, [integer_pow_rule if exact else inexact_integer_pow_rule])


def integer_pow_rule(rw, eqn):
    return _lower(rw, eqn, exact=True)


def inexact_integer_pow_rule(rw, eqn):
    return _lower(rw, eqn, exact=False)


# the sweep calls them on integer_pow equations only
integer_pow_rule.primitives = inexact_integer_pow_rule.primitives = frozenset({ew.integer_pow_p})


def _lower(rw, eqn, exact):
    if eqn.primitive is not ew.integer_pow_p:
        return None
    (x,), (out,), y = eqn.invars, eqn.outvars, eqn.params["y"]
    if exact and out.aval.dtype.kind == "f" and y not in _EXACT_FLOAT_EXPONENTS:
        return None
    if exact and out.aval.dtype.kind == "c" and y != 1:  # np.power(z, 2) is not z*z at signed zeros and infs
        return None
    if y == 0:
        one = literal(1, x.aval)
        if not out.aval.shape:
            return [one]
        return rw.emit(structural.broadcast_in_dim_p, [one],
                       {"shape": tuple(out.aval.shape), "broadcast_dimensions": ()})
    power = _square_and_multiply(rw, x, abs(y))
    if y > 0:
        return [power]
    return rw.emit(ew.div_p, [literal(1, x.aval), power], {})


def _square_and_multiply(rw, x, k):
    """x**k for k >= 1, with the multiplications of JAX's lowering, in its order."""
    acc = None
    while k > 0:
        if k & 1:
            acc = x if acc is None else rw.emit(ew.mul_p, [acc, x], {})[0]
        k >>= 1
        if k > 0:
            x = rw.emit(ew.mul_p, [x, x], {})[0]
    return acc
