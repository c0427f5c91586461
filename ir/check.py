"""`check(jaxpr)`: re-derive every equation's types and report the first inconsistency.

Params are checked against their primitive's schema, operands and outputs
against abstract evaluation: whatever passes evaluates to the declared types.
"""
from __future__ import annotations

from ir.core import ClosedJaxpr, Jaxpr, Literal, Var


class JaxprTypeError(TypeError):
    pass


def check(jaxpr) -> None:
    """Raise JaxprTypeError at the first ill-typed spot of `jaxpr` (nested jaxprs included).

    Iterative: a work list of jaxprs, so deeply nested or very long programs
    need no Python recursion.
    """
    pending = [jaxpr.jaxpr if isinstance(jaxpr, ClosedJaxpr) else jaxpr]
    while pending:
        pending.extend(_check_one(pending.pop()))


def _check_one(jaxpr: Jaxpr):
    defined = set()
    nested = []

    def bind_var(v, where):
        if not isinstance(v, Var):
            raise JaxprTypeError(f"{where}: expected a variable, got {v!r}")
        if id(v) in defined:
            raise JaxprTypeError(f"{where}: variable {v!r} is bound twice")
        defined.add(id(v))

    def read(atom, where):
        if isinstance(atom, Literal):
            if atom.aval.shape != () or atom.value.dtype != atom.aval.dtype:
                raise JaxprTypeError(f"{where}: literal {atom!r} is not a scalar of its dtype")
        elif not isinstance(atom, Var) or id(atom) not in defined:
            raise JaxprTypeError(f"{where}: {atom!r} is used before it is defined")
        return atom.aval

    for v in jaxpr.constvars:
        bind_var(v, "constvars")
    for v in jaxpr.invars:
        bind_var(v, "invars")
    for i, eqn in enumerate(jaxpr.eqns):
        where = f"equation {i} ({eqn.primitive.name})"
        avals_in = [read(x, where) for x in eqn.invars]
        try:
            eqn.primitive.check_params(eqn.params)  # first: ill-typed params must not meet a cached result
            expected = eqn.primitive.abstract_eval(avals_in, eqn.params)
        except (TypeError, ValueError) as error:
            raise JaxprTypeError(f"{where}: {error}") from None
        if len(expected) != len(eqn.outvars):
            raise JaxprTypeError(f"{where}: {len(eqn.outvars)} outputs, expected {len(expected)}")
        for v, aval in zip(eqn.outvars, expected, strict=True):
            bind_var(v, where)
            if v.aval != aval:
                raise JaxprTypeError(f"{where}: output declared {v.aval.str_short()} "
                                     f"but the primitive gives {aval.str_short()}")
        for param in eqn.params.values():
            for value in param if isinstance(param, tuple) else (param,):  # cond's branches are a tuple
                if isinstance(value, ClosedJaxpr):
                    nested.append(value.jaxpr)
                elif isinstance(value, Jaxpr):
                    nested.append(value)
    for atom in jaxpr.outvars:
        read(atom, "outputs")
    return nested
