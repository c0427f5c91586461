"""Evaluate a jaxpr: walk its equations in order, binding each primitive.

Because every equation goes through `bind`, evaluating a jaxpr inside a
transformation transforms it: this one loop is how every interpreter turns a
jaxpr into a new one.
"""
from __future__ import annotations

from ir.core import ClosedJaxpr, Literal
from ir.primitive import as_array
from ir.tracing import bind


def eval_jaxpr(jaxpr, consts, *args):
    """Run `jaxpr` (constvars bound to `consts`) on `args`; returns the list of outputs."""
    env = {}

    def read(atom):
        return atom.value if type(atom) is Literal else env[atom]

    def write(var, value):
        env[var] = value

    if len(args) != len(jaxpr.invars):
        raise TypeError(f"the jaxpr takes {len(jaxpr.invars)} arguments, got {len(args)}")
    for var, value in zip(jaxpr.constvars, consts, strict=True):
        write(var, value)
    for var, value in zip(jaxpr.invars, args, strict=True):
        write(var, value)
    for eqn in jaxpr.eqns:
        outs = bind(eqn.primitive, *map(read, eqn.invars), **eqn.params)
        if eqn.primitive.multiple_results:
            for var, value in zip(eqn.outvars, outs, strict=True):
                write(var, value)
        else:
            write(eqn.outvars[0], outs)
    return [read(atom) for atom in jaxpr.outvars]


def eval_closed_jaxpr(closed: ClosedJaxpr, *args):
    closed.require_consts()
    # an output may be an input, a constant or a literal: users get Arrays all the same
    return [as_array(x) for x in eval_jaxpr(closed.jaxpr, closed.consts, *args)]
