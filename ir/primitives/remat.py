"""Rematerialization: `checkpoint` (JAX's `remat`) and `name` (checkpoint_name).

    checkpoint[jaxpr=f prevent_cse=P differentiated=D policy=N names=(...)] *operands -> f(*operands)
    name[name=s] x -> x

A checkpoint evaluates its body like a call. What changes is reverse mode: its JVP is
a checkpoint of the JVP'd body, and when linearize splits that (its `partial_eval`
rule), the known part computes the primal outputs and only the residuals the policy
allows to be saved; the unknown part, a `checkpoint` again, recomputes every other
residual from the checkpoint's inputs (and the saved ones) before the tangent work.
Transposed, it stays a `checkpoint` holding the recomputation: one equation, which the
passes treat as a unit (CSE does not merge it with the forward pass it repeats: it is a
barrier, ir/passes/rewrite.py; DCE keeps what its transpose needs).

`policy` names which equations' outputs may be saved (JAX's jax.checkpoint_policies):
nothing_saveable (the default), everything_saveable, dots_saveable,
dots_with_no_batch_dims_saveable, save_only_these_names / save_any_names_but_these
(with `names`, the names given by `name` equations, JAX's checkpoint_name). Inputs of
the checkpoint are always available to the recomputation.
"""
from __future__ import annotations

from ir.core import ClosedJaxpr, Jaxpr, Var, array_module
from ir.markers import UndefinedPrimal, Zero
from ir.passes.dce import dce, dce_jaxpr
from ir.primitive import BOOL, STR, OneOf, Primitive, SubJaxpr, TupleOf
from ir.primitives import call
from ir.primitives.call import (batched_sub_jaxpr, check_operands, dce_sub_jaxpr_call, fill_zeros, merge_lists,
                                nonzero_flags, transform)
from ir.tracing import bind

POLICIES = ("nothing_saveable", "everything_saveable", "dots_saveable", "dots_with_no_batch_dims_saveable",
            "save_only_these_names", "save_any_names_but_these")
MAX_NAMES = 1 << 10


def saveable(policy, names, eqn) -> bool:
    """Whether the policy lets reverse mode store `eqn`'s outputs."""
    prim = eqn.primitive.name
    if policy == "everything_saveable":
        return True
    if policy == "dots_saveable":
        return prim == "dot_general"
    if policy == "dots_with_no_batch_dims_saveable":
        return prim == "dot_general" and not eqn.params["dimension_numbers"][1][0]
    if policy == "save_only_these_names":
        return prim == "name" and eqn.params["name"] in names
    if policy == "save_any_names_but_these":
        return prim == "name" and eqn.params["name"] not in names
    return False


def _params(jaxpr, prevent_cse, differentiated, policy, names):
    return {"jaxpr": jaxpr, "prevent_cse": prevent_cse, "differentiated": differentiated, "policy": policy,
            "names": names}


def _checkpoint_abstract_eval(*avals, jaxpr, prevent_cse, differentiated, policy, names):
    check_operands("checkpoint", avals, jaxpr.in_avals)
    return jaxpr.out_avals


def _checkpoint_jvp(primals, tangents, *, jaxpr, prevent_cse, differentiated, policy, names):
    """A checkpoint of the JVP'd body: the recomputation keeps its structure under linearize."""
    nonzero = nonzero_flags(tangents)
    jvp, consts, out_nonzero = transform("jvp_jaxpr")(jaxpr, nonzero, (False,) * len(jaxpr.out_avals))
    outs = bind(checkpoint_p, *consts, *primals, *(t for t in tangents if type(t) is not Zero),
                **_params(jvp, prevent_cse, True, policy, names))
    n = len(jaxpr.out_avals)
    return outs[:n], fill_zeros(jaxpr.out_avals, out_nonzero, outs[n:])


def _checkpoint_partial_eval(trace, unknowns, args, *, jaxpr, prevent_cse, differentiated, policy, names):
    """The known part computes the known outputs and the saveable residuals; the unknown
    one (a checkpoint) recomputes the others from the known inputs, then does the rest."""
    n_out = len(jaxpr.out_avals)
    known, known_consts, unknown, out_unknowns, num_res = transform("partial_eval_jaxpr")(
        jaxpr, tuple(unknowns), (False,) * n_out)
    kj, uj = known.jaxpr, unknown.jaxpr
    num_known_out = out_unknowns.count(False)
    residual_atoms = kj.outvars[num_known_out:]
    inputs = set(kj.invars)
    # what the policy lets the known part store: the outputs of saveable equations; of those,
    # the ones the recomputation of the other residuals reads, or that are residuals themselves
    candidates = list(dict.fromkeys(v for eqn in kj.eqns if saveable(policy, names, eqn) for v in eqn.outvars))
    saved, recompute = _cut(kj, candidates, [v for v in residual_atoms if type(v) is Var and v not in inputs])
    # the unknown jaxpr reads the residuals as its first invars: substitute them
    substitution = dict(zip(uj.invars[:num_res], residual_atoms, strict=True))
    sub = lambda x: substitution.get(x, x) if type(x) is Var else x  # noqa: E731
    unknown_eqns = [e.replace(invars=[sub(x) for x in e.invars]) for e in uj.eqns]
    body = Jaxpr([], [*kj.invars, *saved, *uj.invars[num_res:]], [*recompute.eqns, *unknown_eqns],
                 [sub(x) for x in uj.outvars])
    # the known inputs and saved values the unknown part reads: only those become residuals
    num_known_in = len(kj.invars) + len(saved)
    _, used = dce_jaxpr(ClosedJaxpr(body, []), [True] * len(body.outvars))
    keep = [*used[:num_known_in], *(True,) * (len(body.invars) - num_known_in)]
    body, _ = dce_jaxpr(ClosedJaxpr(body, []), [True] * len(body.outvars), prune_invars=keep)
    forward = ClosedJaxpr(Jaxpr([], kj.invars, kj.eqns, [*kj.outvars[:num_known_out], *saved]), [])
    forward = ClosedJaxpr(dce(forward.jaxpr), [])
    known_args = [x for x, u in zip(args, unknowns, strict=True) if not u]
    unknown_args = [x for x, u in zip(args, unknowns) if u]
    known_outs = trace.known(call.jit_call_p, [*known_consts, *known_args], {"jaxpr": forward, "name": "checkpoint"})
    saved_values = known_outs[num_known_out:]
    operands = [x for x, k in zip([*known_consts, *known_args, *saved_values, *unknown_args], keep, strict=True) if k]
    unknown_outs = trace.unknown(checkpoint_p, operands, _params(body, prevent_cse, True, policy, names)) \
        if any(out_unknowns) else []
    return merge_lists(out_unknowns, known_outs[:num_known_out], unknown_outs)


def _cut(kj, candidates, residuals):
    """(saved, recompute): the candidates to store, and a jaxpr from (known inputs, saved)
    to the residuals that are not stored, which reads nothing it does not need."""
    cut = set(candidates)
    eqns = []
    for eqn in kj.eqns:
        if cut.issuperset(eqn.outvars):
            continue  # given as an input of the recomputation
        if cut.intersection(eqn.outvars):  # recomputed beside a candidate output: that one renamed
            eqn = eqn.replace(outvars=[Var(v.aval) if v in cut else v for v in eqn.outvars])
        eqns.append(eqn)
    recomputed = [v for v in residuals if v not in cut]
    full = ClosedJaxpr(Jaxpr([], [*kj.invars, *candidates], eqns, recomputed), [])
    _, used = dce_jaxpr(full, [True] * len(recomputed))
    needed = set(v for v, u in zip(candidates, used[len(kj.invars):], strict=True) if u)
    needed.update(v for v in residuals if v in cut)
    saved = [v for v in candidates if v in needed]
    recompute = dce(Jaxpr([], [*kj.invars, *saved], eqns, recomputed))
    return saved, recompute


def _checkpoint_transpose(cts, *operands, jaxpr, prevent_cse, differentiated, policy, names):
    """A checkpoint of the transposed body: the recomputation runs inside it, in the backward pass."""
    undefined = tuple(type(x) is UndefinedPrimal for x in operands)
    transposed, consts, in_nonzero = transform("transpose_jaxpr")(jaxpr, undefined, nonzero_flags(cts), False)
    defined = [x for x in operands if type(x) is not UndefinedPrimal]
    cts_in = iter(bind(checkpoint_p, *consts, *defined, *(c for c in cts if type(c) is not Zero),
                       **_params(transposed, prevent_cse, True, policy, names)) if transposed.jaxpr.outvars else [])
    nonzero = iter(in_nonzero)
    return [None if type(x) is not UndefinedPrimal else (next(cts_in) if next(nonzero) else Zero(x.aval))
            for x in operands]


def _checkpoint_batch(values, dims, *, jaxpr, prevent_cse, differentiated, policy, names):
    batched, consts, out_dims = batched_sub_jaxpr(jaxpr, values, dims)
    outs = bind(checkpoint_p, *consts, *values, **_params(batched, prevent_cse, differentiated, policy, names))
    return outs, out_dims


checkpoint_p = Primitive(
    "checkpoint",
    params={"jaxpr": SubJaxpr(), "prevent_cse": BOOL, "differentiated": BOOL, "policy": OneOf(*POLICIES),
            "names": TupleOf(STR, max_length=MAX_NAMES)},
    abstract_eval=_checkpoint_abstract_eval, multiple_results=True,
    impl=lambda *args, jaxpr, **params: transform("evaluate")(jaxpr, args),
    jvp=_checkpoint_jvp, partial_eval=_checkpoint_partial_eval, transpose=_checkpoint_transpose,
    batch=_checkpoint_batch, dce=dce_sub_jaxpr_call,
    taylor=lambda primals, series, *, jaxpr, **params: transform("jet")(jaxpr, primals, series, "checkpoint"))


def checkpoint(closed: ClosedJaxpr, args, policy="nothing_saveable", names=(), prevent_cse=True):
    """Bind a checkpoint of `closed` (in call form: its constants among `args`)."""
    return bind(checkpoint_p, *args, **_params(closed, prevent_cse, False, policy, tuple(names)))


# -------------------- name: a value with a name for the policies --------------------

def _name_impl(x, *, name):
    return array_module(x).array(x, copy=True)  # a fresh array: generated code hands results out


name_p = Primitive(
    "name", params={"name": STR}, abstract_eval=lambda x, *, name: x, impl=_name_impl, linear_in=(0,),
    jvp=lambda primals, tangents, *, name: (bind(name_p, primals[0], name=name), tangents[0]),
    transpose=lambda ct, x, *, name: [ct],
    batch=lambda values, dims, *, name: (bind(name_p, values[0], name=name), dims[0]),
    taylor=lambda primals, series, *, name: (bind(name_p, primals[0], name=name), series[0]))


def checkpoint_name(x, name):
    return bind(name_p, x, name=name)
