"""Print jaxprs the way JAX prints them.

    { lambda ; a:f64[3]. let
        b:f64[3] = sin a
        c:f64[3] = mul b 2.0:f64[]
      in (c,) }

A jaxpr that fits in `WIDTH` columns prints on one line with `;` between
equations, as JAX's does. Variables are named a..z, ba, bb, ... in order of
definition, continuing into nested jaxprs. Extension (read back by the
parser): a weakly typed value's type is followed by `{weak}`. Sub-jaxprs
(jit_call's `jaxpr`, cond's `branches`, scan's `jaxpr`) print in the params,
one param per line, a tuple of them one jaxpr per line.
"""
from __future__ import annotations

import numpy as np

from ir.core import ClosedJaxpr, Jaxpr, Literal, float0

WIDTH = 80
_LETTERS = "abcdefghijklmnopqrstuvwxyz"


def var_name(index: int) -> str:
    """0 -> a, 25 -> z, 26 -> ba, 27 -> bb: base 26 with no leading 'a' (as JAX)."""
    digits = []
    while True:
        index, digit = divmod(index, 26)
        digits.append(_LETTERS[digit])
        if index == 0:
            return "".join(reversed(digits))


def format_scalar(value) -> str:
    """Shortest text that reads back to the same value of the same dtype."""
    value = np.asarray(value)[()]
    if value.dtype == np.bool_:
        return "True" if value else "False"
    if value.dtype.kind == "c":  # `re+imj`, each part as its float prints (no parentheses: one token)
        im = value.imag
        sign = "-" if np.signbit(im) and not np.isnan(im) else "+"
        return f"{str(value.real)}{sign}{str(abs(im))}j"  # str: NumPy's shortest repr (format() is Python's)
    return str(value)  # NumPy's shortest round-trip repr for the value's own dtype; inf, nan


# words of the grammar that a variable may not be named (the parser reads them by context,
# but a reader should not have to)
_RESERVED = {"in", "inf", "let", "nan", "lambda"}


class _Names:
    def __init__(self):
        self.names = {}
        self.count = 0

    def define(self, var):
        """A fresh name, even for a variable seen before (a jaxpr printed twice)."""
        name = var_name(self.count)
        self.count += 1
        while name in _RESERVED:
            name = var_name(self.count)
            self.count += 1
        self.names[id(var)] = name
        return name

    def atom(self, atom):
        if isinstance(atom, Literal):
            return f"{format_scalar(atom.value)}:{atom.aval.str_short()}"
        return self.names.get(id(atom), "<undefined>")


def pp_jaxpr(jaxpr, indent=0, names=None) -> str:
    if isinstance(jaxpr, ClosedJaxpr):
        jaxpr = jaxpr.jaxpr
    names = names or _Names()
    binders = lambda vs: " ".join(f"{names.define(v)}:{v.aval.str_short()}" for v in vs)
    head = f"{{ lambda {binders(jaxpr.constvars)}; {binders(jaxpr.invars)}. let"
    eqn_lines = [_pp_eqn(eqn, indent + 4, names) for eqn in jaxpr.eqns]
    outs = ", ".join(names.atom(v) for v in jaxpr.outvars)
    outs = f"({outs},)" if len(jaxpr.outvars) == 1 else f"({outs})"
    one_line = f"{head} {'; '.join(eqn_lines)} in {outs} }}"
    if indent + len(one_line) <= WIDTH and "\n" not in one_line:
        return one_line
    pad = " " * indent
    body = "".join(f"\n{pad}    {line}" for line in eqn_lines)
    return f"{head}{body}\n{pad}  in {outs} }}"


def _pp_eqn(eqn, indent, names) -> str:
    args = " ".join(names.atom(x) for x in eqn.invars)
    params = sorted(eqn.params.items())
    lhs = " ".join(f"{names.define(v)}:{v.aval.str_short()}" for v in eqn.outvars)
    has_jaxpr = any(_holds_jaxpr(v) for _, v in params)
    if not has_jaxpr:  # params print on the equation's line unless it grows too long
        flat = [f"{k}={_pp_param(v, indent, names)}" for k, v in params]
        line = f"{lhs} = {eqn.primitive.name}" + (f"[{' '.join(flat)}]" if params else "") + f" {args}"
        if indent + len(line) <= WIDTH or not params:
            return line.rstrip()
    # one param per line; sub-jaxprs always go here, so each is printed (and named) once
    pad = " " * indent
    broken = "".join(f"\n{pad}  {k}={_pp_param(v, indent + 2, names)}" for k, v in params)
    return f"{lhs} = {eqn.primitive.name}[{broken}\n{pad}] {args}".rstrip()


def _holds_jaxpr(value) -> bool:
    return isinstance(value, (Jaxpr, ClosedJaxpr)) or (
        isinstance(value, tuple) and any(isinstance(v, (Jaxpr, ClosedJaxpr)) for v in value))


def _pp_param(value, indent, names) -> str:
    if isinstance(value, (Jaxpr, ClosedJaxpr)):
        return pp_jaxpr(value, indent, names)
    if _holds_jaxpr(value):  # cond's branches: one jaxpr per line, each followed by a comma
        pad = " " * (indent + 2)
        items = "".join(f"\n{pad}{_pp_param(v, indent + 2, names)}," for v in value)
        return f"({items}\n{' ' * indent})"
    if isinstance(value, tuple):
        items = [_pp_param(v, indent, names) for v in value]
        return f"({items[0]},)" if len(items) == 1 else f"({', '.join(items)})"
    if isinstance(value, np.dtype):
        return "float0" if value == float0 else value.name
    if isinstance(value, (bool, np.bool_)):
        return "True" if value else "False"
    if isinstance(value, (float, np.floating)):
        return format_scalar(value) if isinstance(value, np.floating) else repr(value)
    if isinstance(value, np.complexfloating):
        return format_scalar(value)
    return str(value)
