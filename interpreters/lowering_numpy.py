"""Lower a jaxpr to one generated Python function of NumPy calls.

The function is straight-line source, one line per equation, named after the
IR's variables (so `ft.jit(f).lower(x).as_text()` reads like the printed
jaxpr): no interpreter loop runs when it is called. Elementwise primitives
whose implementation is a NumPy ufunc call it directly; the others call their
declared implementation. Literals, constants and params live in the function's
namespace.

Returned arrays are always fresh: an output that is an input, a constant, or a
view of one is copied, and 0-d results are 0-d arrays, never NumPy scalars.
"""
from __future__ import annotations

import keyword
import weakref

import numpy

from ir.core import ClosedJaxpr, Literal
from ir.primitives import call
from ir.printer import var_name

# primitives whose implementation may return a view of (or the very) operand
VIEW_PRIMITIVES = {"reshape", "transpose", "squeeze", "slice", "rev", "stop_gradient"}


class LoweredNumpy:
    """A jaxpr lowered to NumPy: `source` (the generated text) and `function`."""

    def __init__(self, source, function):
        self.source, self.function = source, function

    def __call__(self, *args):
        return self.function(*args)


def _names():
    """a, b, ... as the printer names them, skipping Python keywords and `numpy`."""
    index = 0
    while True:
        name = var_name(index)
        index += 1
        if not keyword.iskeyword(name) and name != "numpy":
            yield name


def lower(closed: ClosedJaxpr, name="jitted") -> LoweredNumpy:
    jaxpr = closed.jaxpr
    fresh = _names()
    names, namespace, lines = {}, {"numpy": numpy}, []

    def define(var):
        names[var] = next(fresh)
        return names[var]

    def atom(x):
        if type(x) is Literal:
            key = f"lit{len(namespace)}"
            namespace[key] = x.value
            return key
        return names[x]

    for var, value in zip(jaxpr.constvars, closed.consts, strict=True):
        namespace[f"const_{define(var)}"] = value
        names[var] = f"const_{names[var]}"
    params = ", ".join(define(v) for v in jaxpr.invars)
    fresh_outputs = set()
    for eqn in jaxpr.eqns:
        prim = eqn.primitive
        args = ", ".join(atom(x) for x in eqn.invars)
        if isinstance(prim.impl, numpy.ufunc) and not eqn.params:
            expr = f"numpy.{prim.impl.__name__}({args})"
        else:
            impl_name = f"impl_{prim.name}"
            namespace[impl_name] = prim.impl
            if eqn.params:
                params_name = f"params{len(namespace)}"
                namespace[params_name] = eqn.params
                expr = f"{impl_name}({args}{', ' if args else ''}**{params_name})"
            else:
                expr = f"{impl_name}({args})"
        targets = ", ".join(define(v) for v in eqn.outvars)
        lines.append(f"{targets}{',' if prim.multiple_results and len(eqn.outvars) == 1 else ''} = {expr}")
        if prim.name not in VIEW_PRIMITIVES:
            fresh_outputs.update(eqn.outvars)
    returned, seen = [], set()
    for x in jaxpr.outvars:
        text = atom(x)
        if type(x) is Literal or x not in fresh_outputs or x in seen:
            text = f"numpy.array({text})"  # a copy: never hand out an input, a constant or one array twice
        elif not x.aval.shape:
            text = f"numpy.asarray({text})"  # NumPy scalar -> 0-d array
        if type(x) is not Literal:
            seen.add(x)
        returned.append(text)
    body = "".join(f"    {line}\n" for line in lines)
    source = f"def {name}({params}):\n{body}    return ({', '.join(returned)}{',' if len(returned) == 1 else ''})\n"
    exec(compile(source, f"<ftrans jit of {name}>", "exec"), namespace)  # our own generated source
    return LoweredNumpy(source, namespace[name])


_LOWERED = weakref.WeakKeyDictionary()  # ClosedJaxpr -> LoweredNumpy, for jit_call's implementation


def _evaluate(closed, args):
    lowered = _LOWERED.get(closed)
    if lowered is None:
        lowered = _LOWERED[closed] = lower(closed)
    return list(lowered(*args))


call.SUBJAXPR_TRANSFORMS["evaluate"] = _evaluate
