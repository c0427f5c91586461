"""Dead-code elimination: drop equations whose outputs nothing uses.

Every primitive is pure, so an equation is needed exactly when one of its
outputs is (an output of the jaxpr, or an operand of a needed equation). One
backward loop finds them. Constvars nothing reads are dropped with their
constants; invars stay, since they are the function's signature.

An equation holding a sub-jaxpr is kept or dropped as a whole (its outputs
are all needed as soon as one is).
"""
from __future__ import annotations

from ir.core import Jaxpr, Var
from ir.passes.rewrite import unpack


def dce(program):
    """`program` (ClosedJaxpr or Jaxpr) without dead equations and unused
    constvars; the input object itself when nothing is dead."""
    jaxpr, consts, rebuild = unpack(program)
    live = {v for v in jaxpr.outvars if type(v) is Var}
    kept = []
    for eqn in reversed(jaxpr.eqns):
        if not live.isdisjoint(eqn.outvars):
            kept.append(eqn)
            live.update(eqn.invars)  # literals too (faster than filtering them): no outvar is one
    used = [v in live for v in jaxpr.constvars]
    if len(kept) == len(jaxpr.eqns) and all(used):
        return program
    kept.reverse()
    constvars = [v for v, u in zip(jaxpr.constvars, used, strict=True) if u]
    if consts is not None:
        consts = [c for c, u in zip(consts, used, strict=True) if u]
    return rebuild(Jaxpr(constvars, jaxpr.invars, kept, jaxpr.outvars), consts)
