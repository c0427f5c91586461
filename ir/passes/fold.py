"""Constant folding: compute ahead of time what depends on constants only.

An equation is folded when every operand is a literal or a *small* constant
(a constvar bound to an array of at most `FOLD_MAX_ELEMENTS` elements, or an
earlier folded result) and every output is small too. It is computed by the
primitive's own `impl`, on the same NumPy values `eval_jaxpr` would give it,
so folding changes no bit of the result. A rank-0 result becomes a literal;
a small array becomes a new constvar (so a bare Jaxpr, which cannot hold
constants, only gets literals).

Never folded:
- large results: `broadcast_in_dim 0.0` to shape (10**6,) stays an equation
  (omnistaging: staging must not bake big constants into the program), and
  large constants are never read;
- primitives without `impl`, with sub-jaxprs in their params, or behind a
  barrier (`BARRIER_PRIMITIVES`), and collectives (psum, axis_index...: their
  values depend on the axis they run over, not only on their operands);
- equations whose `impl` raises on these values: the error belongs to run time.

NB: floating-point errors (log(0), 1/0) are silenced while folding; the
result (-inf, inf) is the one run time computes. On the GPU, a folded value
is NumPy's, which may differ from CuPy's in the last bit for transcendental
functions (as XLA's folding on the host may differ from its GPU kernels).
"""
from __future__ import annotations

import numpy as np

from ir.core import float0
from ir.passes.rewrite import FOLD_MAX_ELEMENTS, holds_jaxpr, is_barrier, literal, rewrite

# what an impl may raise on bad values, e.g. an out-of-range index or an integer division by zero
_IMPL_ERRORS = (ArithmeticError, IndexError, ValueError, TypeError)


def fold_constants(program):
    """`program` (ClosedJaxpr or Jaxpr) with its small constant computations
    computed. Leaves the now-unused equations for `dce`."""
    return rewrite(program, [fold_rule])


def fold_rule(rw, eqn):
    args = []
    for atom in eqn.invars:  # first, as it rules out nearly every equation at once
        value = rw.atom_value(atom)
        if value is None:
            return None
        args.append(value)
    prim = eqn.primitive
    if prim.impl is None or is_barrier(eqn) or holds_jaxpr(eqn):
        return None
    if prim.collective_batch is not None:  # a collective: its value depends on the axis it runs over
        return None
    for var in eqn.outvars:
        if var.aval.size > FOLD_MAX_ELEMENTS or var.aval.dtype == float0:
            return None
    try:
        with np.errstate(all="ignore"):
            out = prim.impl(*args, **eqn.params)
    except _IMPL_ERRORS:
        return None
    outs = out if prim.multiple_results else [out]
    atoms = []
    for var, value in zip(eqn.outvars, outs, strict=True):
        value = np.asarray(value)
        if value.shape != var.aval.shape or value.dtype != var.aval.dtype:
            return None  # an impl that disagrees with abstract evaluation: leave it to ir.check / debug mode
        atom = literal(value[()], var.aval) if not var.aval.shape else rw.new_const(value, var.aval)
        if atom is None:  # an array result in a bare Jaxpr
            return None
        atoms.append(atom)
    return atoms
