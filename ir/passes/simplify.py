"""Algebraic simplification: rewrites that are exact in IEEE arithmetic.

A rewrite is made only when the new program computes bit for bit what the
old one did, for every input (NaN payloads aside: IEEE leaves them open), and
keeps every output's aval (shape, dtype, weak type). So `x*1 -> x`, never
`x*0 -> 0` (inf*0 and nan*0 are nan), and never a reassociation.

The rules, with why each is exact (x, y arbitrary; c a constant whose
elements are all equal, as a literal, a small constant or a broadcast of one,
such as AD's materialized zeros):

    mul(x, 1) -> x                       x*1 == x exactly, -0.0, inf, nan included
    mul(x, -1) -> neg(x)                 exact: only the sign changes
    mul(neg a, neg b) -> mul(a, b)       rounding is symmetric in sign
    mul(neg a, c) -> mul(a, -c)          c a literal; the same symmetry
    div(x, 1) -> x; div(x, -1) -> neg(x)
    div(x, c) -> mul(x, 1/c)             c = +-2**k with 1/c representable: both
                                         round the same real number once
    div(neg a, neg b) -> div(a, b); div(neg a, c) -> div(a, -c)
    add(x, -0.0) -> x                    x + (-0.0) == x for every x, -0.0 too.
                                         NB: x + (+0.0) is NOT x for x = -0.0
                                         (-0.0 + 0.0 == +0.0): kept, unless x is
                                         known never to be -0.0 (below).
    add(x, neg y) -> sub(x, y)           IEEE defines x - y as x + (-y)
    sub(x, +0.0) -> x                    x - 0.0 == x + (-0.0) == x
    sub(-0.0, y) -> neg(y)               -0.0 - y == -y, for y = +-0.0 too
    sub(x, neg y) -> add(x, y)
    neg(neg x) -> x
    integer operands: the zero of add/sub is 0 (no signed zero)
    complex operands: no arithmetic rule (x*1 is not x for x = inf+0j)
    convert_element_type to x's own aval -> x; two conversions one of which
        changes only the weak type -> one conversion
    select_n(p, x, x) -> x; select_n(c, x, y) -> x or y for a constant predicate
    transpose(transpose x) -> one transpose, or x for the identity permutation
    reshape(reshape x), reshape(squeeze x), squeeze(reshape x) -> one reshape;
        reshape to x's own shape -> x
    broadcast_in_dim(broadcast_in_dim x) -> one broadcast_in_dim;
        broadcast_in_dim to x's own shape with dims 0..n-1 -> x
    rev(rev(x, d), d) -> x; reduce_sum/max/min/prod, rev, squeeze over no axes -> x

"x is never -0.0" is proved locally (from x's value or its producer, never
further back): it holds for literals and constants without a -0.0 element,
for `add` with such an operand (a + b is -0.0 only if both are), for `sub`
with an operand that rules it out (a - b is -0.0 only if a is -0.0 and b is
+0.0), and for `exp`, `abs`, `cosh`, `x*x` and `integer_pow` with an even
exponent (each is >= +0.0 or nan). With it, `add(x, 0.0) -> x`: the zeros AD
adds for absent tangents vanish wherever dropping them is exact.

A rewrite that would change the output's weak type only (e.g. `x*1.0` with a
weak x and a strong 1.0) replaces the equation by `convert_element_type` to
the output's aval, which is exact (same dtype) and merges under CSE.
"""
from __future__ import annotations

import numpy as np

from ir.core import Eqn, Literal
from ir.passes.rewrite import literal, rewrite
from ir.primitives import elementwise as ew
from ir.primitives import reductions, structural


def simplify(program):
    """`program` (ClosedJaxpr or Jaxpr) with the exact simplifications above
    made. Leaves now-unused equations for `dce`."""
    return rewrite(program, [simplify_rule])


def simplify_rule(rw, eqn):
    rule = _RULES.get(eqn.primitive)
    return None if rule is None else rule(rw, eqn, *eqn.invars, **eqn.params)


# -------------------- helpers --------------------

def _same(rw, eqn, atom):
    """The output of `eqn` is `atom`: exactly when their avals agree, through
    an exact conversion when only the weak type differs, else not at all."""
    out = eqn.outvars[0].aval
    if atom.aval is out:
        return [atom]
    if atom.aval.shape != out.shape or atom.aval.dtype != out.dtype:
        return None
    if type(atom) is Literal:
        return [literal(atom.value, out)]
    return rw.emit(ew.convert_element_type_p, [atom], {"new_dtype": out.dtype, "weak_type": out.weak_type})


def _replace(rw, eqn, prim, invars, **params):
    """`eqn` computed as `prim(*invars, **params)` instead, if that has its
    output's aval. (Not through a conversion, as `_same` may: a rewrite must
    never cost an equation.)"""
    out = eqn.outvars[0]
    try:
        (aval,) = prim.abstract_eval([x.aval for x in invars], params)
    except TypeError:
        return None
    return Eqn(prim, list(invars), [out], params, eqn.origin) if aval is out.aval else None


def _operand_of(rw, atom, prim):
    """x when `atom` is defined by `prim x`, else None."""
    eqn = rw.producer(atom)
    return eqn.invars[0] if eqn is not None and eqn.primitive is prim else None


def _complex(eqn):
    """Complex arithmetic is left alone: (inf+0j)*(1+0j) is inf+nanj, and a complex
    zero's two signs make x+0 and x-0 inexact, so none of the rules below holds."""
    return eqn.outvars[0].aval.dtype.kind == "c"


def _is_float(atom):
    return atom.aval.dtype.kind == "f"


def _is_zero(c, sign_bit):
    """c is a zero of the given sign (integers: c is 0, whatever the sign asked)."""
    if c is None or c != 0:
        return False
    return c.dtype.kind != "f" or bool(np.signbit(c)) == sign_bit


def _never_negative_zero(rw, atom):
    """A cheap, local proof that no element of `atom` is -0.0 (see the docstring):
    it looks at `atom`'s value or its producer, never further back."""
    if not _is_float(atom):
        return True
    value = _known_value(rw, atom)
    if value is not None:
        return not _has_zero_of_sign(value, True)
    eqn = rw.producer(atom)
    if eqn is None:
        return False
    prim = eqn.primitive
    if prim in (ew.exp_p, ew.abs_p, ew.cosh_p):
        return True
    if prim is ew.integer_pow_p:
        return eqn.params["y"] % 2 == 0
    if prim is ew.mul_p:  # x*x: the sign bits cancel, and a product rounds to +0.0 at worst
        return eqn.invars[0] is eqn.invars[1]
    if prim is ew.add_p:  # a + b is -0.0 only if a and b both are
        return any(_known_value(rw, x) is not None and not _has_zero_of_sign(_known_value(rw, x), True)
                   for x in eqn.invars)
    if prim is ew.sub_p:  # a - b is -0.0 only if a is -0.0 and b is +0.0
        a, b = (_known_value(rw, x) for x in eqn.invars)
        return (a is not None and not _has_zero_of_sign(a, True)) or \
               (b is not None and not _has_zero_of_sign(b, False))
    return False


def _known_value(rw, atom):
    """The value of a literal or small constant, or the one value of a splat."""
    value = rw.atom_value(atom)
    return value if value is not None else rw.scalar_value(atom)


def _has_zero_of_sign(value, sign_bit):
    value = np.asarray(value)
    return bool(np.any((value == 0) & (np.signbit(value) == sign_bit)))


# -------------------- arithmetic --------------------

def _mul(rw, eqn, x, y):
    if _complex(eqn):
        return None
    for a, b in ((x, y), (y, x)):
        c = rw.scalar_value(b)
        if c is None:
            continue
        if c == 1:
            result = _same(rw, eqn, a)
            if result is not None:
                return result
        elif c == -1:
            result = _replace(rw, eqn, ew.neg_p, [a])
            if result is not None:
                return result
    neg_x, neg_y = _operand_of(rw, x, ew.neg_p), _operand_of(rw, y, ew.neg_p)
    if neg_x is not None and neg_y is not None:
        return _replace(rw, eqn, ew.mul_p, [neg_x, neg_y])
    if neg_x is not None and type(y) is Literal:
        return _replace(rw, eqn, ew.mul_p, [neg_x, _negated(y)])
    if neg_y is not None and type(x) is Literal:
        return _replace(rw, eqn, ew.mul_p, [_negated(x), neg_y])
    return None


def _negated(lit):
    with np.errstate(all="ignore"):  # -INT_MIN wraps around, as it does in neg itself
        return literal(np.negative(lit.value), lit.aval)


def _div(rw, eqn, x, y):
    if _complex(eqn):
        return None
    c = rw.scalar_value(y)
    if c is not None:
        if c == 1:
            return _same(rw, eqn, x)
        if c == -1:
            return _replace(rw, eqn, ew.neg_p, [x])
        reciprocal = _exact_reciprocal(c)
        if reciprocal is not None:
            return _replace(rw, eqn, ew.mul_p, [x, literal(reciprocal, y.aval)])
    neg_x, neg_y = _operand_of(rw, x, ew.neg_p), _operand_of(rw, y, ew.neg_p)
    if neg_x is not None and neg_y is not None:
        return _replace(rw, eqn, ew.div_p, [neg_x, neg_y])
    if neg_x is not None and type(y) is Literal:
        return _replace(rw, eqn, ew.div_p, [neg_x, _negated(y)])
    return None


def _exact_reciprocal(c):
    """1/c when c is a (signed) power of two whose reciprocal is representable, else None."""
    if c.dtype.kind != "f" or not np.isfinite(c) or c == 0:
        return None
    mantissa, _ = np.frexp(c)
    if abs(mantissa) != 0.5:
        return None
    with np.errstate(all="ignore"):
        reciprocal = c.dtype.type(1) / c
    if not np.isfinite(reciprocal) or abs(np.frexp(reciprocal)[0]) != 0.5 or reciprocal * c != 1:
        return None  # 1/c overflows, or underflows below the subnormals' precision
    return reciprocal


def _add(rw, eqn, x, y):
    if _complex(eqn):
        return None
    for a, b in ((x, y), (y, x)):
        c = rw.scalar_value(b)
        if _is_zero(c, True) or (_is_zero(c, False) and _never_negative_zero(rw, a)):
            result = _same(rw, eqn, a)
            if result is not None:
                return result
    for a, b in ((x, y), (y, x)):
        negated = _operand_of(rw, b, ew.neg_p)
        if negated is not None:
            return _replace(rw, eqn, ew.sub_p, [a, negated])
    return None


def _sub(rw, eqn, x, y):
    if _complex(eqn):
        return None
    c = rw.scalar_value(y)
    if _is_zero(c, False):
        result = _same(rw, eqn, x)
        if result is not None:
            return result
    if _is_zero(rw.scalar_value(x), True):
        result = _replace(rw, eqn, ew.neg_p, [y])
        if result is not None:
            return result
    negated = _operand_of(rw, y, ew.neg_p)
    if negated is not None:
        return _replace(rw, eqn, ew.add_p, [x, negated])
    return None


def _neg(rw, eqn, x):
    inner = _operand_of(rw, x, ew.neg_p)
    return None if inner is None else _same(rw, eqn, inner)


def _convert(rw, eqn, x, *, new_dtype, weak_type=False):
    if x.aval is eqn.outvars[0].aval:
        return [x]
    inner = rw.producer(x)
    if inner is None or inner.primitive is not ew.convert_element_type_p:
        return None
    source = inner.invars[0]
    # one of the two conversions changes the weak type only: together they are one conversion
    if source.aval.dtype == x.aval.dtype or x.aval.dtype == new_dtype:
        return _replace(rw, eqn, ew.convert_element_type_p, [source],
                        new_dtype=new_dtype, weak_type=weak_type)
    return None


def _same_atom(a, b):
    if type(a) is Literal and type(b) is Literal:
        return a.aval is b.aval and a.value.tobytes() == b.value.tobytes()
    return a is b


def _select_n(rw, eqn, which, on_false, on_true):
    if _same_atom(on_false, on_true):
        return _same(rw, eqn, on_false)
    c = rw.scalar_value(which)
    if c is not None:
        return _same(rw, eqn, on_true if c else on_false)
    return None


# -------------------- data movement --------------------

def _transpose(rw, eqn, x, *, permutation):
    inner = rw.producer(x)
    if inner is not None and inner.primitive is structural.transpose_p:
        first = inner.params["permutation"]
        composed = tuple(first[p] for p in permutation)
        return _replace(rw, eqn, structural.transpose_p, [inner.invars[0]], permutation=composed)
    if tuple(permutation) == tuple(range(len(permutation))):
        return _same(rw, eqn, x)
    return None


def _reshape(rw, eqn, x, *, new_sizes):
    inner = rw.producer(x)
    if inner is not None and inner.primitive in (structural.reshape_p, structural.squeeze_p):
        return _replace(rw, eqn, structural.reshape_p, [inner.invars[0]], new_sizes=tuple(new_sizes))
    if tuple(x.aval.shape) == tuple(new_sizes):
        return _same(rw, eqn, x)
    return None


def _squeeze(rw, eqn, x, *, dimensions):
    if not dimensions:
        return _same(rw, eqn, x)
    inner = rw.producer(x)
    if inner is not None and inner.primitive in (structural.reshape_p, structural.squeeze_p):
        shape = tuple(eqn.outvars[0].aval.shape)
        return _replace(rw, eqn, structural.reshape_p, [inner.invars[0]], new_sizes=shape)
    return None


def _broadcast_in_dim(rw, eqn, x, *, shape, broadcast_dimensions):
    inner = rw.producer(x)
    if inner is not None and inner.primitive is structural.broadcast_in_dim_p:
        composed = tuple(broadcast_dimensions[d] for d in inner.params["broadcast_dimensions"])
        return _replace(rw, eqn, structural.broadcast_in_dim_p, [inner.invars[0]],
                        shape=tuple(shape), broadcast_dimensions=composed)
    if tuple(x.aval.shape) == tuple(shape) and tuple(broadcast_dimensions) == tuple(range(len(shape))):
        return _same(rw, eqn, x)
    return None


def _rev(rw, eqn, x, *, dimensions):
    if not dimensions:
        return _same(rw, eqn, x)
    inner = rw.producer(x)
    if inner is not None and inner.primitive is structural.rev_p \
            and sorted(inner.params["dimensions"]) == sorted(dimensions):
        return _same(rw, eqn, inner.invars[0])
    return None


def _reduce_over_no_axes(rw, eqn, x, *, axes):
    return _same(rw, eqn, x) if not axes else None


_RULES = {
    ew.mul_p: _mul, ew.div_p: _div, ew.add_p: _add, ew.sub_p: _sub, ew.neg_p: _neg,
    ew.convert_element_type_p: _convert, ew.select_n_p: _select_n,
    structural.transpose_p: _transpose, structural.reshape_p: _reshape, structural.squeeze_p: _squeeze,
    structural.broadcast_in_dim_p: _broadcast_in_dim, structural.rev_p: _rev,
    reductions.reduce_sum_p: _reduce_over_no_axes, reductions.reduce_max_p: _reduce_over_no_axes,
    reductions.reduce_min_p: _reduce_over_no_axes, reductions.reduce_prod_p: _reduce_over_no_axes,
}
simplify_rule.primitives = frozenset(_RULES)  # the sweep skips the rule for the others
