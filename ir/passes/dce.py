"""Dead-code elimination: drop equations whose outputs nothing uses.

Every primitive but the effectful ones (host callbacks, always kept) is pure,
so an equation is needed exactly when one of its outputs is (an output of the
jaxpr, or an operand of a needed equation). One backward loop finds them. Constvars nothing reads are dropped with their
constants; invars stay, since they are the function's signature.

An equation holding sub-jaxprs (jit_call, cond, scan) is trimmed by its
primitive's `dce` rule: its unused outputs leave the sub-jaxprs, and so do the
operands only they needed (for a loop, the carries nothing reads, found by
fixpoint). Without a rule it is kept or dropped as a whole.
"""
from __future__ import annotations

from ir.core import ClosedJaxpr, Jaxpr, Var
from ir.passes.rewrite import unpack


def dce(program):
    """`program` (ClosedJaxpr or Jaxpr) without dead equations and unused
    constvars; the input object itself when nothing is dead."""
    jaxpr, consts, rebuild = unpack(program)
    kept, live = _live_equations(jaxpr, {v for v in jaxpr.outvars if type(v) is Var})
    used = [v in live for v in jaxpr.constvars]
    if len(kept) == len(jaxpr.eqns) and all(a is b for a, b in zip(kept, jaxpr.eqns)) and all(used):
        return program
    constvars = [v for v, u in zip(jaxpr.constvars, used, strict=True) if u]
    if consts is not None:
        consts = [c for c, u in zip(consts, used, strict=True) if u]
    return rebuild(Jaxpr(constvars, jaxpr.invars, kept, jaxpr.outvars), consts)


def _live_equations(jaxpr, live):
    """(the equations needed for the variables in `live`, in order, each trimmed
    by its dce rule; every variable they read, added to `live`)."""
    kept = []
    for eqn in reversed(jaxpr.eqns):
        if live.isdisjoint(eqn.outvars) and not eqn.primitive.effectful:
            continue
        rule = eqn.primitive.dce
        if rule is not None:
            used_inputs, eqn = rule([v in live for v in eqn.outvars], eqn, dce_jaxpr)
        kept.append(eqn)
        live.update(eqn.invars)  # literals too (faster than filtering them): no outvar is one
    kept.reverse()
    return kept, live


def dce_jaxpr(closed: ClosedJaxpr, used_outputs, prune_invars=False):
    """(`closed` with only the outputs in `used_outputs` and what they need,
    which inputs that reads): what the dce rules do to sub-jaxprs.
    `prune_invars`: True drops the inputs it does not read, a flag per input
    keeps those flagged (a superset of those it reads: the branches of a cond
    keep what any of them reads). The jaxpr itself when nothing goes."""
    jaxpr = closed.jaxpr
    outvars = [v for v, u in zip(jaxpr.outvars, used_outputs, strict=True) if u]
    kept, live = _live_equations(jaxpr, {v for v in outvars if type(v) is Var})
    used_inputs = [v in live for v in jaxpr.invars]
    if prune_invars is True:
        prune_invars = used_inputs
    if prune_invars is False:
        invars = jaxpr.invars
    else:
        if any(u and not k for u, k in zip(used_inputs, prune_invars, strict=True)):
            raise ValueError("dce_jaxpr: an input the jaxpr reads would be dropped")
        invars = [v for v, k in zip(jaxpr.invars, prune_invars) if k]
    if len(outvars) == len(jaxpr.outvars) and len(invars) == len(jaxpr.invars) \
            and len(kept) == len(jaxpr.eqns) and all(a is b for a, b in zip(kept, jaxpr.eqns)):
        return closed, used_inputs
    used_consts = [v in live for v in jaxpr.constvars]
    constvars = [v for v, u in zip(jaxpr.constvars, used_consts) if u]
    consts = None if closed.consts is None else [c for c, u in zip(closed.consts, used_consts) if u]
    return ClosedJaxpr(Jaxpr(constvars, invars, kept, outvars), consts), used_inputs
