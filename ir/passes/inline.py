"""Inline nested `jit_call`s: splice each call's sub-jaxpr into the caller
(inside the branches and bodies of cond and scan, into those).

`jit` stages a function with inner jitted functions as single equations (so
outer transformations see them), then inlines them before optimizing and
lowering: the passes see one flat program.

Iterative: a stack of (equations still to copy, variable map) frames, one per
call being spliced, so deep nesting needs no Python recursion. Every spliced
variable is fresh, so a sub-jaxpr inlined twice stays correct.
"""
from __future__ import annotations

from ir.core import ClosedJaxpr, Eqn, Jaxpr, Literal, Var
from ir.primitives.elementwise import convert_element_type_p


def inline_calls(closed: ClosedJaxpr) -> ClosedJaxpr:
    """`closed` with every jit_call spliced in, those in the branches and loop
    bodies of cond and scan too (each sub-jaxpr on its own: a call inside a
    loop stays inside it)."""
    jaxpr = closed.jaxpr
    if not _holds_a_call(jaxpr):
        return closed
    eqns = []
    top_env = {}
    stack = [(iter(jaxpr.eqns), top_env, None)]  # (equations, var map, (caller outvars, callee outvars))
    while stack:
        todo, env, call_outputs = stack[-1]
        eqn = next(todo, None)
        if eqn is None:  # a spliced call is done: its outputs become the caller's outvars
            stack.pop()
            if call_outputs is not None:
                caller_outvars, callee_outvars, caller_env = call_outputs
                for var, atom in zip(caller_outvars, callee_outvars, strict=True):
                    caller_env[var] = atom if type(atom) is Literal else env.get(atom, atom)
            continue
        read = lambda atom: atom if type(atom) is Literal else env.get(atom, atom)  # noqa: E731
        if eqn.primitive.name == "jit_call":
            sub = eqn.params["jaxpr"]
            sub_env = {var: _typed_as(read(x), var.aval, eqns) for var, x in zip(sub.jaxpr.invars, eqn.invars,
                                                                                   strict=True)}
            stack.append((iter(sub.jaxpr.eqns), sub_env, (eqn.outvars, sub.jaxpr.outvars, env)))
            continue
        outvars = [Var(v.aval) for v in eqn.outvars] if len(stack) > 1 else eqn.outvars
        for old, new in zip(eqn.outvars, outvars, strict=True):
            if new is not old:
                env[old] = new
        params = eqn.params
        if eqn.primitive.holds_jaxprs:
            params = {name: _inlined(value) for name, value in params.items()}
        eqns.append(Eqn(eqn.primitive, [read(x) for x in eqn.invars], outvars, params, eqn.origin))
    outvars = [atom if type(atom) is Literal else top_env.get(atom, atom) for atom in jaxpr.outvars]
    return ClosedJaxpr(Jaxpr(jaxpr.constvars, jaxpr.invars, eqns, outvars), closed.consts)


def _inlined(value):
    """A param with the calls in its sub-jaxprs inlined (cond's branches are a tuple of them)."""
    if isinstance(value, ClosedJaxpr):
        return inline_calls(value)
    if type(value) is tuple:
        return tuple(_inlined(v) for v in value)
    return value


def _holds_a_call(jaxpr):
    pending = [jaxpr]
    while pending:
        for eqn in pending.pop().eqns:
            if eqn.primitive.name == "jit_call":
                return True
            if eqn.primitive.holds_jaxprs:
                pending.extend(v.jaxpr for value in eqn.params.values()
                               for v in (value if type(value) is tuple else (value,)) if isinstance(v, ClosedJaxpr))
    return False


def _typed_as(atom, aval, eqns):
    """`atom` as the call's parameter of type `aval` sees it. jit_call takes an
    operand whose type differs in weakness only (a Python scalar passed where the
    call was staged for an array); its equations were typed for `aval`, and keep that type."""
    if atom.aval is aval:
        return atom
    if type(atom) is Literal:
        return Literal(atom.value, aval)
    converted = Var(aval)
    eqns.append(Eqn(convert_element_type_p, [atom], [converted],
                    {"new_dtype": aval.dtype, "weak_type": aval.weak_type}))
    return converted
