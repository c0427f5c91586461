"""`jit_call`: apply a closed sub-jaxpr, as one equation of the enclosing program.

`jit` binds it when a trace is open, so an inner jitted function shows in an
outer trace as a single equation holding its jaxpr. Everything the body
closed over has been made an explicit leading operand, so the sub-jaxpr holds
no tracers and every transformation sees every dependence.

Its rules transform the sub-jaxpr, which takes the interpreters; `ir` imports
none of them, so they hand their sub-jaxpr transformations in when imported
(ARCHITECTURE: "rules that must transform a sub-jaxpr receive the
transformation as an argument"): `SUBJAXPR_TRANSFORMS[name](closed, ...)`.
"""
from __future__ import annotations

import weakref

import numpy as np

from ir.core import ClosedJaxpr, Jaxpr
from ir.errors import at_user_line
from ir.primitive import STR, Primitive, SubJaxpr
from ir.tracing import Tracer, bind, get_aval

# "evaluate":  (closed, args) -> outs                                  (interpreters/lowering_numpy.py)
# "jvp":       (closed, primals, tangents, name) -> (outs, tangents_out)     (interpreters/ad.py)
# "transpose": (closed, cts, operands, name) -> cts of the operands       (interpreters/ad.py)
# "batch":     (closed, values, dims, name) -> (outs, dims_out)           (interpreters/batching.py)
# "jet":       (closed, primals, series, name) -> (outs, series_out)        (interpreters/taylor.py)
# "jet_jaxpr": (closed, order, nonzero, instantiate) -> (jet ClosedJaxpr, out_nonzero)  (interpreters/taylor.py)
SUBJAXPR_TRANSFORMS = {}


def _transform(name):
    try:
        return SUBJAXPR_TRANSFORMS[name]
    except KeyError:
        raise NotImplementedError(f"{name} of jit_call (import the interpreters package)") from None


def _jit_call_abstract_eval(*avals, jaxpr, name):
    if jaxpr.jaxpr.constvars:  # the schema says so too; lowering has no values for them
        raise TypeError(f"jit_call of {name}: its jaxpr must have no constvars (pass constants as operands)")
    expected = jaxpr.in_avals
    if [a.shape for a in avals] != [a.shape for a in expected] or [a.dtype for a in avals] != [a.dtype for a in expected]:
        listed = ", ".join(a.str_short() for a in avals)
        wanted = ", ".join(a.str_short() for a in expected)
        raise TypeError(f"jit_call of {name} takes ({wanted}), got ({listed})")
    return jaxpr.out_avals


jit_call_p = Primitive(
    "jit_call", params={"jaxpr": SubJaxpr(), "name": STR}, abstract_eval=_jit_call_abstract_eval, multiple_results=True,
    impl=lambda *args, jaxpr, name: _transform("evaluate")(jaxpr, args),
    jvp=lambda primals, tangents, *, jaxpr, name: _transform("jvp")(jaxpr, primals, tangents, name),
    transpose=lambda cts, *operands, jaxpr, name: _transform("transpose")(jaxpr, cts, operands, name),
    batch=lambda values, dims, *, jaxpr, name: _transform("batch")(jaxpr, values, dims, name),
    taylor=lambda primals, series, *, jaxpr, name: _transform("jet")(jaxpr, primals, series, name))


def call_form(closed: ClosedJaxpr):
    """(`closed` with its constants turned into leading operands, the constants):
    the form jit_call takes a staged function in."""
    jaxpr = closed.jaxpr
    return ClosedJaxpr(Jaxpr([], jaxpr.constvars + jaxpr.invars, jaxpr.eqns, jaxpr.outvars), []), closed.consts


# closed sub-jaxpr -> {key: what a transformation derived from it}. Weak keys: an
# entry goes when its sub-jaxpr does (with the jitted function that made it). So
# neither a key nor a value may hold the sub-jaxpr itself, which would keep its
# own entry alive for good: derived jaxprs are new ones, built by evaluating it.
_DERIVED = weakref.WeakKeyDictionary()


def derived(closed: ClosedJaxpr, key, build):
    """`build()`, computed once per (sub-jaxpr, key) and kept as long as the
    sub-jaxpr lives: the transformations of jit_call (its JVP, its batched
    and transposed forms, eager reverse mode's rules) are staged once per
    signature, not per call."""
    by_key = _DERIVED.setdefault(closed, {})
    entry = by_key.get(key)
    if entry is None:
        entry = by_key[key] = build()
    return entry


def jit_call(closed: ClosedJaxpr, args, name):
    """Bind `closed` (which must have no constvars left: pass them as leading args)."""
    if closed.jaxpr.constvars:
        raise ValueError("jit_call needs a jaxpr whose constants are explicit operands")
    return bind(jit_call_p, *args, jaxpr=closed, name=name)


# -------------------- calling a ClosedJaxpr: closed(*args) --------------------

_PYTHON_SCALAR_OF_KIND = {"b": False, "i": 0, "f": 0.0}  # weakly typed values promote as these do (NEP 50)


def call_closed_jaxpr(closed: ClosedJaxpr, args):
    """`closed(*args)`: one jit_call of `closed` (its constants as leading operands),
    so that it runs as generated code eagerly and every transformation goes through it."""
    args = checked_arguments(closed, args)
    if not closed.jaxpr.constvars:
        return jit_call(closed, args, "closed_jaxpr")
    call_jaxpr, consts = derived(closed, "call_form", lambda: call_form(closed))
    return jit_call(call_jaxpr, [*consts, *args], "closed_jaxpr")


def checked_arguments(closed: ClosedJaxpr, args):
    """`args` checked against the jaxpr's inputs (a TypeError naming the first that
    does not fit), with its constants present. A Python scalar, or a weakly typed
    traced value, takes the dtype of a rank-0 input when NumPy 2 promotion keeps
    that dtype (2.0 for an f32[] input; not 1.5 for an i32[] one)."""
    from ir.primitives.elementwise import convert_element_type  # NB: it imports this module's neighbours
    closed.require_consts()
    wanted = closed.jaxpr.in_avals
    if len(args) != len(wanted):
        listed = ", ".join(aval.str_short() for aval in wanted)
        raise TypeError(at_user_line(f"this jaxpr takes {len(wanted)} arguments ({listed}), got {len(args)}"))
    checked = []
    for i, (x, want) in enumerate(zip(args, wanted, strict=True)):
        try:
            aval = get_aval(x)
        except TypeError as error:
            raise TypeError(at_user_line(f"argument {i} of the jaxpr: {error}")) from None
        like = _PYTHON_SCALAR_OF_KIND.get(aval.dtype.kind) if aval.weak_type else None
        if like is not None and aval.dtype != want.dtype and want.shape == () == aval.shape \
                and np.result_type(like, want.dtype) == want.dtype:
            if isinstance(x, Tracer):
                x = convert_element_type(x, want.dtype, weak_type=True)
            else:
                x = np.asarray(x, dtype=want.dtype)
        elif aval.shape != want.shape or aval.dtype != want.dtype:
            raise TypeError(at_user_line(f"argument {i} of the jaxpr is {aval.str_short()}, "
                                         f"but the jaxpr takes {want.strip_weak_type().str_short()}"))
        elif type(x) in (bool, int, float):
            x = np.asarray(x, dtype=want.dtype)  # NB: the generated code takes arrays, as NumPy's functions do
        checked.append(x)
    return checked
