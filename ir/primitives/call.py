"""`jit_call`: apply a closed sub-jaxpr, as one equation of the enclosing program.

`jit` binds it when a trace is open, so an inner jitted function shows in an
outer trace as a single equation holding its jaxpr. Everything the body
closed over has been made an explicit leading operand, so the sub-jaxpr holds
no tracers and every transformation sees every dependence.

Its rules transform the sub-jaxpr with the jaxpr -> jaxpr transformations
that the higher-order primitives share (`SUBJAXPR_TRANSFORMS`, below); `ir`
imports no interpreter, so the interpreters hand those in when imported
(ARCHITECTURE: "rules that must transform a sub-jaxpr receive the
transformation as an argument"). cond and scan (ir/primitives/control_flow.py)
use the same ones.
"""
from __future__ import annotations

import weakref

import numpy as np

from ir.core import ClosedJaxpr, Jaxpr
from ir.errors import at_user_line
from ir.markers import UndefinedPrimal, Zero, tangent_aval
from ir.primitive import STR, Primitive, SubJaxpr
from ir.tracing import Tracer, bind, get_aval

# The jaxpr -> jaxpr transformations, each memoized on (sub-jaxpr, transformation,
# flags) with `derived`. A derived jaxpr comes in call form: (a ClosedJaxpr without
# constvars, the constants it needs as leading operands). Flags are tuples of bools,
# one per input or output.
#
# "evaluate" (closed, args) -> outs, on concrete values        (interpreters/lowering_numpy.py)
# "jvp_jaxpr" (closed, nonzero, instantiate) -> (jvp, consts, out_nonzero)   (interpreters/ad.py)
#     jvp takes (*consts, *primals, *the tangents of the inputs that are nonzero) and
#     returns (*primal outputs, *the tangents of the outputs that are nonzero); an
#     output whose `instantiate` flag is set has a (materialized) tangent.
# "partial_eval_jaxpr" (closed, unknowns, instantiate)                       (interpreters/ad.py)
#     -> (known, known_consts, unknown, out_unknowns, num_residuals)
#     known takes (*known_consts, *known inputs) and returns (*known outputs, *residuals);
#     unknown (no constants) takes (*residuals, *unknown inputs) and returns the unknown
#     outputs. An input is unknown when its flag is set; an output when it depends on an
#     unknown input, or when its `instantiate` flag is set.
# "transpose_jaxpr" (closed, undefined, ct_nonzero, instantiate)             (interpreters/ad.py)
#     -> (transposed, consts, in_nonzero)
#     transposed takes (*consts, *the defined inputs, *the nonzero output cotangents) and
#     returns the cotangents of the undefined inputs that are nonzero (of all of them,
#     zeros materialized, with `instantiate`).
# "batch_jaxpr" (closed, batched, axis_size, instantiate) -> (batched, consts, out_batched)
#     every batched input and output has its batch axis first; an output whose
#     `instantiate` flag is set is batched (broadcast if it does not depend on the batch).
#     With instantiate=None the outputs keep the batch axis where it falls, and
#     out_batched holds each output's axis (or not_mapped).     (interpreters/batching.py)
# "jet" (closed, primals, series, name) -> (outs, series_out)                (interpreters/taylor.py)
# "jet_jaxpr" (closed, order, nonzero, instantiate) -> (jet ClosedJaxpr, out_nonzero)  (interpreters/taylor.py)
SUBJAXPR_TRANSFORMS = {}


def transform(name):
    try:
        return SUBJAXPR_TRANSFORMS[name]
    except KeyError:
        raise NotImplementedError(f"{name} of a sub-jaxpr (import the interpreters package)") from None


def _jit_call_abstract_eval(*avals, jaxpr, name):
    if jaxpr.jaxpr.constvars:  # the schema says so too; lowering has no values for them
        raise TypeError(f"jit_call of {name}: its jaxpr must have no constvars (pass constants as operands)")
    check_operands(f"jit_call of {name}", avals, jaxpr.in_avals)
    return jaxpr.out_avals


def check_operands(what, avals, expected):
    """A TypeError naming both lists of types if `avals` do not fit `expected` in
    shape and dtype (a weak type may meet a strong one: a Python scalar passed
    where the jaxpr was staged for an array)."""
    if len(avals) != len(expected) or any(a.shape != e.shape or a.dtype != e.dtype
                                          for a, e in zip(avals, expected)):
        listed = ", ".join(a.str_short() for a in avals)
        wanted = ", ".join(a.str_short() for a in expected)
        raise TypeError(f"{what} takes ({wanted}), got ({listed})")


# -------------------- jit_call's rules, on the shared transformations --------------------
# A jitted function stays one call under every transformation: its JVP is a call of
# the JVP'd sub-jaxpr; under linearize that call is split by partial evaluation into
# a known call (primal outputs and residuals, computed at once) and an unknown one
# (staged), whose transpose is a call of the transposed sub-jaxpr; vmap calls the
# batched sub-jaxpr.

def nonzero_flags(tangents):
    return tuple(type(t) is not Zero for t in tangents)


def fill_zeros(avals, nonzero, values):
    """`values` (those of the nonzero entries) with Zeros of tangent type elsewhere."""
    values = iter(values)
    return [next(values) if nz else Zero(tangent_aval(a)) for a, nz in zip(avals, nonzero, strict=True)]


def _jit_call_jvp(primals, tangents, *, jaxpr, name):
    nonzero = nonzero_flags(tangents)
    jvp, consts, out_nonzero = transform("jvp_jaxpr")(jaxpr, nonzero, (False,) * len(jaxpr.out_avals))
    outs = jit_call(jvp, [*consts, *primals, *(t for t in tangents if type(t) is not Zero)], name)
    num_outputs = len(jaxpr.out_avals)
    return outs[:num_outputs], fill_zeros(jaxpr.out_avals, out_nonzero, outs[num_outputs:])


def _jit_call_partial_eval(trace, unknowns, args, *, jaxpr, name):
    known, known_consts, unknown, out_unknowns, _ = transform("partial_eval_jaxpr")(
        jaxpr, tuple(unknowns), (False,) * len(jaxpr.out_avals))
    known_args = [x for x, u in zip(args, unknowns, strict=True) if not u]
    unknown_args = [x for x, u in zip(args, unknowns, strict=True) if u]
    known_outs = trace.known(jit_call_p, [*known_consts, *known_args], {"jaxpr": known, "name": name})
    num_known = out_unknowns.count(False)
    residuals = known_outs[num_known:]
    unknown_outs = trace.unknown(jit_call_p, [*residuals, *unknown_args], {"jaxpr": unknown, "name": name}) \
        if unknown.jaxpr.outvars else []
    return merge_lists(out_unknowns, known_outs[:num_known], unknown_outs)


def merge_lists(which, falses, trues):
    """One list from two: `trues[k]` where `which` is set, `falses[k]` elsewhere, in order."""
    falses, trues = iter(falses), iter(trues)
    return [next(trues) if w else next(falses) for w in which]


def _jit_call_transpose(cts, *operands, jaxpr, name):
    undefined = tuple(type(x) is UndefinedPrimal for x in operands)
    transposed, consts, in_nonzero = transform("transpose_jaxpr")(jaxpr, undefined, nonzero_flags(cts), False)
    known = [x for x in operands if type(x) is not UndefinedPrimal]
    cts_in = iter(jit_call(transposed, [*consts, *known, *(c for c in cts if type(c) is not Zero)], name)
                  if transposed.jaxpr.outvars else [])
    nonzero_in = iter(in_nonzero)
    return [None if type(x) is not UndefinedPrimal else (next(cts_in) if next(nonzero_in) else Zero(x.aval))
            for x in operands]


def batched_sub_jaxpr(jaxpr, values, dims):
    """(batched jaxpr, its consts, out_dims) for an equation that calls one sub-jaxpr on
    its operands: jit_call and checkpoint stay one equation under vmap this way."""
    from ir.primitives.batch_util import batch_size
    return transform("batch_jaxpr")(jaxpr, tuple(dims), batch_size(values, dims), None)


def _jit_call_batch(values, dims, *, jaxpr, name):
    """One jit_call of the batched sub-jaxpr, so a jitted function stays one
    (compiled) call under vmap."""
    batched, consts, out_dims = batched_sub_jaxpr(jaxpr, values, dims)
    return jit_call(batched, [*consts, *values], name), out_dims


def dce_sub_jaxpr_call(used_outputs, eqn, dce_jaxpr):
    """For an equation that calls its sub-jaxpr `jaxpr` on its operands: unused outputs
    leave the sub-jaxpr, and so do the operands only they read."""
    closed = eqn.params["jaxpr"]
    pruned, used_inputs = dce_jaxpr(closed, used_outputs, prune_invars=True)
    if pruned is closed:
        return used_inputs, eqn
    return used_inputs, eqn.replace(invars=[x for x, u in zip(eqn.invars, used_inputs) if u],
                                    outvars=[v for v, u in zip(eqn.outvars, used_outputs) if u],
                                    params={**eqn.params, "jaxpr": pruned})


jit_call_p = Primitive(
    "jit_call", params={"jaxpr": SubJaxpr(), "name": STR}, abstract_eval=_jit_call_abstract_eval, multiple_results=True,
    impl=lambda *args, jaxpr, name: transform("evaluate")(jaxpr, args),
    jvp=_jit_call_jvp, partial_eval=_jit_call_partial_eval, transpose=_jit_call_transpose,
    batch=_jit_call_batch, dce=dce_sub_jaxpr_call,
    taylor=lambda primals, series, *, jaxpr, name: transform("jet")(jaxpr, primals, series, name))


def call_form(closed: ClosedJaxpr):
    """(`closed` with its constants turned into leading operands, the constants):
    the form jit_call takes a staged function in."""
    jaxpr = closed.jaxpr
    return ClosedJaxpr(Jaxpr([], jaxpr.constvars + jaxpr.invars, jaxpr.eqns, jaxpr.outvars), []), closed.consts


# closed sub-jaxpr -> {key: what a transformation derived from it}. Weak keys: an
# entry goes when its sub-jaxpr does (with the jitted function that made it). So
# neither a key nor a value may hold the sub-jaxpr itself, which would keep its
# own entry alive for good: derived jaxprs are new ones, built by evaluating it
# (a transformation that leaves the sub-jaxpr as it is, as optimizing an optimal
# one does, is remembered by a marker).
_DERIVED = weakref.WeakKeyDictionary()
_ITSELF = object()


def derived(closed: ClosedJaxpr, key, build):
    """`build()`, computed once per (sub-jaxpr, key) and kept as long as the
    sub-jaxpr lives: the transformations of jit_call, cond and scan (their
    JVPs, partial evaluations, batched and transposed forms, eager reverse
    mode's rules) are staged once per signature, not per call."""
    by_key = _DERIVED.setdefault(closed, {})
    entry = by_key.get(key)
    if entry is None:
        entry = build()
        by_key[key] = _ITSELF if entry is closed else entry
    return closed if entry is _ITSELF else entry


def clear_derived():
    """Forget every derived form (ft.clear_caches): each is rebuilt when next needed."""
    _DERIVED.clear()


def jit_call(closed: ClosedJaxpr, args, name):
    """Bind `closed` (which must have no constvars left: pass them as leading args)."""
    if closed.jaxpr.constvars:
        raise ValueError("jit_call needs a jaxpr whose constants are explicit operands")
    return bind(jit_call_p, *args, jaxpr=closed, name=name)


# -------------------- calling a ClosedJaxpr: closed(*args) --------------------

_PYTHON_SCALAR_OF_KIND = {"b": False, "i": 0, "f": 0.0, "c": 0j}  # weakly typed values promote as these do (NEP 50)


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
