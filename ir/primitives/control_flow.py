"""Structured control flow: `cond` and `scan`, primitives holding closed sub-jaxprs.

    cond[branches=(b0, b1, ...)] index *operands      -> the outputs of branch clamp(index)
    scan[jaxpr=body num_consts=C num_carry=K length=N reverse=R unroll=U] *consts *init *xs
        -> *final carry, *stacked ys

Both hold their bodies as closed jaxprs without constants: every value a body
closes over is an explicit operand (a cond's leading operands, a scan's
`num_consts` consts), so no tracer hides in a param and every transformation
sees every dependence (ARCHITECTURE, "Higher-order primitives"). The names and
params are JAX's (`linear`, which JAX's scan carries for its transpose, is left
out: the transpose reads linearity off its UndefinedPrimal operands).

Every rule transforms the sub-jaxprs with the shared jaxpr -> jaxpr
transformations (call.SUBJAXPR_TRANSFORMS: jvp_jaxpr, partial_eval_jaxpr,
transpose_jaxpr, batch_jaxpr, each memoized on its sub-jaxpr), and the loop's
rules find which carries have nonzero tangents, are unknown, are batched or are
used by a fixpoint over the body (`carry_fixpoint`). A new loop primitive
(while) declares its rules the same way, from the helpers of the first section.

Semantics, as JAX's: cond clamps its index into range (so a parsed program
cannot index past its branches); scan runs its body `length` times, from the
last element of the xs to the first when `reverse`, and stacks the ys along a
new leading axis. `unroll` is JAX's performance hint; the IR records it and
the loops ftrans generates run the body once per iteration either way.
"""
from __future__ import annotations

import numpy as np

from ir.core import ClosedJaxpr, Eqn, Jaxpr, Literal, ShapedArray, Var, array_module
from ir.markers import UndefinedPrimal, Zero, not_mapped, tangent_aval
from ir.primitive import BOOL, NON_NEGATIVE_INT, POSITIVE_INT, OneOf, Optional, Primitive, SubJaxpr, Tuple, TupleOf
from ir.primitives import ad_util, batch_util, call
from ir.primitives import elementwise as ew
from ir.primitives import structural
from ir.primitives.call import check_operands, derived, fill_zeros, merge_lists, nonzero_flags, transform
from ir.tracing import Tracer, bind, get_aval

MAX_BRANCHES = 1 << 16  # a cond's branches: far more than any program has, and a bound for parsed text


# -------------------- what the higher-order primitives share --------------------

def split_list(values, *counts):
    """`values` cut into len(counts) + 1 lists, the first `counts[0]` long, ..."""
    values, parts, start = list(values), [], 0
    for count in counts:
        parts.append(values[start:start + count])
        start += count
    parts.append(values[start:])
    return parts


def carry_fixpoint(flags, step):
    """The least set of carries closed under `step` (flags of the carries whose
    property, a nonzero tangent, an unknown or a batched value, a use, holds on
    the way in -> flags of those for which it holds on the way out): a loop's
    carry has the property if its initial value or any iteration gives it."""
    flags = tuple(flags)
    while True:
        grown = tuple(a or b for a, b in zip(flags, step(flags), strict=True))
        if grown == flags:
            return flags
        flags = grown


def permuted(closed: ClosedJaxpr, in_order, out_order) -> ClosedJaxpr:
    """`closed` taking its inputs in `in_order` and giving its outputs in
    `out_order` (lists of positions): the same equations, shared."""
    jaxpr = closed.jaxpr
    return ClosedJaxpr(Jaxpr(jaxpr.constvars, [jaxpr.invars[i] for i in in_order], jaxpr.eqns,
                             [jaxpr.outvars[i] for i in out_order]), closed.consts)


def join_consts(derived_jaxprs):
    """(jaxprs, consts) from a list of (jaxpr in call form, its consts), one per
    branch: every jaxpr takes the consts of all of them as leading operands and
    reads its own, so that one equation can hold them all (a cond's branches)."""
    consts = [c for _, cs in derived_jaxprs for c in cs]
    if not consts:
        return tuple(closed for closed, _ in derived_jaxprs), []
    joined, start = [], 0
    for closed, own in derived_jaxprs:
        jaxpr = closed.jaxpr
        mine = jaxpr.invars[:len(own)]
        # the others' consts, typed as they are (arrays a transformation made: never weak)
        before = [Var(get_aval(c).strip_weak_type()) for c in consts[:start]]
        after = [Var(get_aval(c).strip_weak_type()) for c in consts[start + len(own):]]
        joined.append(ClosedJaxpr(Jaxpr([], [*before, *mine, *after, *jaxpr.invars[len(own):]], jaxpr.eqns,
                                        jaxpr.outvars), []))
        start += len(own)
    return tuple(joined), consts


def _zeros_eqn(aval):
    """(an equation making zeros of `aval`, its output)."""
    var = Var(aval)
    zero = Literal(aval.dtype.type(0), ShapedArray((), aval.dtype, aval.weak_type))  # the output keeps its weak type
    return Eqn(structural.broadcast_in_dim_p, [zero], [var],
               {"shape": aval.shape, "broadcast_dimensions": ()}), var


# -------------------- cond --------------------

_I32 = np.dtype(np.int32)


def _cond_abstract_eval(index, *operands, branches):
    if not branches:
        raise TypeError("cond needs at least one branch")
    if index.shape != () or index.dtype != _I32:
        raise TypeError(f"cond: the index must be an i32[] scalar, got {index.str_short()}")
    first = branches[0]
    for k, branch in enumerate(branches):
        if branch.jaxpr.constvars:
            raise TypeError(f"cond: branch {k} has constvars (pass constants as operands)")
        check_operands(f"cond: branch {k}", operands, branch.in_avals)
        outs, wanted = branch.out_avals, first.out_avals
        if [(a.shape, a.dtype) for a in outs] != [(a.shape, a.dtype) for a in wanted]:
            raise TypeError(f"cond: branch 0 returns ({', '.join(a.str_short() for a in wanted)}) but "
                            f"branch {k} returns ({', '.join(a.str_short() for a in outs)})")
    return [ShapedArray(a.shape, a.dtype, all(b.out_avals[i].weak_type for b in branches))
            for i, a in enumerate(first.out_avals)]


def branch_index(index, num_branches):
    """Which branch a concrete index picks: clamped into range, as JAX's switch clamps."""
    return int(np.clip(int(index), 0, num_branches - 1))


def _cond_impl(index, *operands, branches):
    return transform("evaluate")(branches[branch_index(index, len(branches))], operands)


def _cond_jvp(primals, tangents, *, branches):
    """A cond of the branches' JVPs: one branch runs, differentiated."""
    (index, *operands), nonzero = primals, nonzero_flags(tangents[1:])
    num_out = len(branches[0].out_avals)
    jvp_jaxpr = transform("jvp_jaxpr")
    out_nonzero = _any_of([jvp_jaxpr(b, nonzero, (False,) * num_out)[2] for b in branches])
    jvps = [jvp_jaxpr(b, nonzero, out_nonzero) for b in branches]
    jvp_branches, consts = join_consts([(closed, consts) for closed, consts, _ in jvps])
    outs = bind(cond_p, index, *consts, *operands, *(t for t in tangents[1:] if type(t) is not Zero),
                branches=jvp_branches)
    return outs[:num_out], fill_zeros(branches[0].out_avals, out_nonzero, outs[num_out:])


def _any_of(flag_lists):
    return tuple(any(flags) for flags in zip(*flag_lists, strict=True))


def _cond_partial_eval(trace, unknowns, args, *, branches):
    """A known cond (the known outputs, and the residuals of whichever branch
    ran) and an unknown one reading them. Each branch has residuals of its own:
    every known branch returns those of all branches, zeros for the others', so
    that the two conds have one type whichever branch runs."""
    if unknowns[0]:  # the index itself is unknown: nothing can be computed ahead
        return trace.unknown(cond_p, args, {"branches": branches})
    index, operands = args[0], args[1:]
    operand_unknowns = tuple(unknowns[1:])
    num_out = len(branches[0].out_avals)
    partial_eval = transform("partial_eval_jaxpr")
    out_unknowns = _any_of([partial_eval(b, operand_unknowns, (False,) * num_out)[3] for b in branches])
    splits = [partial_eval(b, operand_unknowns, out_unknowns) for b in branches]
    residual_avals = [split[2].in_avals[:split[4]] for split in splits]
    num_known_out = out_unknowns.count(False)
    known_branches, known_consts = join_consts([
        (_returning_all_residuals(known, num_known_out, k, residual_avals), consts)
        for k, (known, consts, _, _, _) in enumerate(splits)])
    known_operands = [x for x, u in zip(operands, operand_unknowns, strict=True) if not u]
    known_outs = trace.known(cond_p, [index, *known_consts, *known_operands], {"branches": known_branches}) \
        if known_branches[0].jaxpr.outvars else []
    residuals = known_outs[num_known_out:]
    unknown_branches = tuple(_taking_all_residuals(unknown, k, residual_avals)
                             for k, (_, _, unknown, _, _) in enumerate(splits))
    unknown_operands = [x for x, u in zip(operands, operand_unknowns) if u]
    unknown_outs = trace.unknown(cond_p, [index, *residuals, *unknown_operands], {"branches": unknown_branches}) \
        if any(out_unknowns) else []
    return merge_lists(out_unknowns, known_outs[:num_known_out], unknown_outs)


def _returning_all_residuals(known: ClosedJaxpr, num_known_out, own, residual_avals):
    """Branch `own`'s known jaxpr, returning the residuals of every branch in
    turn (its own, and zeros for those of the others)."""
    jaxpr = known.jaxpr
    eqns, outvars = list(jaxpr.eqns), list(jaxpr.outvars[:num_known_out])
    for k, avals in enumerate(residual_avals):
        if k == own:
            outvars += jaxpr.outvars[num_known_out:]
            continue
        for aval in avals:
            eqn, var = _zeros_eqn(aval)
            eqns.append(eqn)
            outvars.append(var)
    return ClosedJaxpr(Jaxpr(jaxpr.constvars, jaxpr.invars, eqns, outvars), known.consts)


def _taking_all_residuals(unknown: ClosedJaxpr, own, residual_avals):
    """Branch `own`'s unknown jaxpr, taking the residuals of every branch and reading its own."""
    jaxpr = unknown.jaxpr
    count = len(residual_avals[own])
    invars = []
    for k, avals in enumerate(residual_avals):
        invars += jaxpr.invars[:count] if k == own else [Var(aval) for aval in avals]
    return ClosedJaxpr(Jaxpr([], [*invars, *jaxpr.invars[count:]], jaxpr.eqns, jaxpr.outvars), [])


def _cond_transpose(cts, index, *operands, branches):
    """A cond of the transposed branches: the branch that ran forward runs backward."""
    if type(index) is UndefinedPrimal:
        raise ValueError("cond is not linear in its index")
    undefined = tuple(type(x) is UndefinedPrimal for x in operands)
    ct_nonzero = nonzero_flags(cts)
    if not any(ct_nonzero) or not any(undefined):
        return [None, *(Zero(x.aval) if u else None for x, u in zip(operands, undefined))]
    transpose_jaxpr = transform("transpose_jaxpr")
    # an operand's cotangent is instantiated where some branch makes it nonzero; one that no branch
    # reaches stays a symbolic zero (an array of 0 would meet infinite residuals upstream, as NaN)
    reached = _any_of([transpose_jaxpr(b, undefined, ct_nonzero, False)[2] for b in branches])
    transposed = [transpose_jaxpr(b, undefined, ct_nonzero, reached) for b in branches]
    transposed_branches, consts = join_consts([(closed, consts) for closed, consts, _ in transposed])
    defined = [x for x, u in zip(operands, undefined) if not u]
    if not any(reached):
        return [None, *(Zero(x.aval) if u else None for x, u in zip(operands, undefined))]
    cts_in = iter(bind(cond_p, index, *consts, *defined, *(c for c in cts if type(c) is not Zero),
                       branches=transposed_branches))
    reached = iter(reached)
    return [None, *((next(cts_in) if next(reached) else Zero(x.aval)) if u else None
                    for x, u in zip(operands, undefined))]


def _cond_batch(values, dims, *, branches):
    size = batch_util.batch_size(values, dims)
    (index, *operands), (index_dim, *operand_dims) = values, dims
    operands = [x if d is not_mapped else batch_util.move_dim(x, d, 0) for x, d in zip(operands, operand_dims)]
    batched = tuple(d is not not_mapped for d in operand_dims)
    num_out = len(branches[0].out_avals)
    batch_jaxpr = transform("batch_jaxpr")
    if index_dim is not_mapped:  # one branch for every example: a cond of the batched branches
        out_batched = _any_of([batch_jaxpr(b, batched, size, (False,) * num_out)[2] for b in branches])
        batched_branches, consts = join_consts([batch_jaxpr(b, batched, size, out_batched)[:2] for b in branches])
        outs = bind(cond_p, index, *consts, *operands, branches=batched_branches)
        return outs, [0 if b else not_mapped for b in out_batched]
    # each example picks its own branch: every branch runs on all of them, a select picks per lane (as JAX)
    results = []
    for k, branch in enumerate(branches):
        batched_branch, consts, _ = batch_jaxpr(branch, batched, size, (True,) * num_out)
        results.append(call.jit_call(batched_branch, [*consts, *operands], f"cond_branch{k}"))
    index = batch_util.move_dim(index, index_dim, 0)
    last = np.int32(len(branches) - 1)
    index = ew.max(ew.min(index, last), np.int32(0))
    outs = list(results[0])
    for k in range(1, len(branches)):
        picked = ew.eq(index, np.int32(k))
        for i, out in enumerate(results[k]):
            shape = get_aval(out).shape
            mask = structural.broadcast_in_dim(picked, shape, (0,)) if len(shape) > 1 else picked
            outs[i] = ew.select_n(mask, outs[i], out)
    return outs, [0] * num_out


def _cond_dce(used_outputs, eqn, dce_jaxpr):
    """Unused outputs leave every branch, and so do the operands no branch reads then."""
    branches = eqn.params["branches"]
    used_operands = _any_of([dce_jaxpr(b, used_outputs)[1] for b in branches])
    pruned = tuple(dce_jaxpr(b, used_outputs, prune_invars=used_operands)[0] for b in branches)
    used_inputs = [True, *used_operands]
    if all(p is b for p, b in zip(pruned, branches)):
        return used_inputs, eqn
    return used_inputs, eqn.replace(invars=[x for x, u in zip(eqn.invars, used_inputs) if u],
                                    outvars=[v for v, u in zip(eqn.outvars, used_outputs) if u],
                                    params={"branches": pruned})


def _jet_in_call_form(closed, order, nonzero, instantiate):
    """(the jet of `closed` in call form, its consts, which output coefficients are nonzero)."""
    jet_closed, out_nonzero = transform("jet_jaxpr")(closed, order, nonzero, instantiate)
    jet_call, consts = derived(jet_closed, "call_form", lambda: call.call_form(jet_closed))
    return jet_call, consts, out_nonzero


def _series_flags(series):
    return tuple(tuple(type(c) is not Zero for c in s) for s in series)


def _series_of(avals, flags, values):
    """Each output's series: its nonzero coefficients from `values` (output by
    output, order by order), Zeros of its tangent type elsewhere."""
    values = iter(values)
    return [[next(values) if nz else Zero(tangent_aval(a)) for nz in row] for a, row in zip(avals, flags, strict=True)]


def _cond_taylor(primals, series, *, branches):
    """A cond of the branches' jets: one branch runs, along the curve. Every branch
    gives the coefficients that any branch has nonzero, so that one cond holds them."""
    (index, *operands), order = primals, len(series[0])
    nonzero = _series_flags(series[1:])
    out_nonzero = tuple(tuple(any(rows) for rows in zip(*per_output, strict=True))
                        for per_output in zip(*(_jet_in_call_form(b, order, nonzero, False)[2] for b in branches),
                                              strict=True))
    jets = [_jet_in_call_form(b, order, nonzero, out_nonzero) for b in branches]
    jet_branches, consts = join_consts([(closed, consts) for closed, consts, _ in jets])
    coefficients = [c for s in series[1:] for c in s if type(c) is not Zero]
    outs = bind(cond_p, index, *consts, *operands, *coefficients, branches=jet_branches)
    num_out = len(branches[0].out_avals)
    return outs[:num_out], _series_of(branches[0].out_avals, out_nonzero, outs[num_out:])


cond_p = Primitive(
    "cond", params={"branches": TupleOf(SubJaxpr(), max_length=MAX_BRANCHES,
                                        description="a tuple of closed jaxprs without constvars (the branches)")},
    abstract_eval=_cond_abstract_eval, impl=_cond_impl, multiple_results=True,
    jvp=_cond_jvp, partial_eval=_cond_partial_eval, transpose=_cond_transpose, batch=_cond_batch, dce=_cond_dce,
    taylor=_cond_taylor)


def cond(index, operands, branches):
    """Bind cond: the outputs of `branches[clamp(index)]` (an i32[] index) at `operands`."""
    return bind(cond_p, index, *operands, branches=tuple(branches))


# -------------------- scan --------------------

def _scan_abstract_eval(*avals, jaxpr, num_consts, num_carry, length, reverse, unroll):
    if jaxpr.jaxpr.constvars:
        raise TypeError("scan: its jaxpr has constvars (pass constants as consts)")
    if num_consts + num_carry > len(avals):
        raise TypeError(f"scan: num_consts={num_consts} and num_carry={num_carry}, but {len(avals)} operands")
    consts, carry, xs = split_list(avals, num_consts, num_carry)
    for i, x in enumerate(xs):
        if not x.shape or x.shape[0] != length:
            raise TypeError(f"scan of length {length}: xs operand {i} is {x.str_short()}, whose leading axis "
                            f"is not of that length")
    x_slices = [x.update(shape=x.shape[1:]) for x in xs]
    check_operands("scan: its jaxpr", [*consts, *carry, *x_slices], jaxpr.in_avals)
    out_avals = jaxpr.out_avals
    if len(out_avals) < num_carry:
        raise TypeError(f"scan: its jaxpr returns {len(out_avals)} values, fewer than its {num_carry} carries")
    carry_in, (carry_out, ys) = jaxpr.in_avals[num_consts:num_consts + num_carry], split_list(out_avals, num_carry)
    check_operands("scan: the carry its jaxpr returns", carry_out, carry_in)
    return [*carry_out, *(y.update(shape=(length, *y.shape)) for y in ys)]


def scan_loop(body, args, *, num_consts, num_carry, length, reverse, y_avals, xp=np):
    """Run a scan: `body(list of values) -> list of outputs` once per iteration,
    the carry passed along, the ys written into arrays of module `xp` stacked
    along a new leading axis. The implementation (body: the body's generated
    code) and the CuPy backend (body: its fused kernels) share it."""
    consts, carry, xs = split_list(args, num_consts, num_carry)
    ys = [xp.empty((length, *aval.shape), aval.dtype) for aval in y_avals]
    for i in (range(length - 1, -1, -1) if reverse else range(length)):
        outs = body([*consts, *carry, *(x[i] for x in xs)])
        carry = outs[:num_carry]
        for y, out in zip(ys, outs[num_carry:], strict=True):
            y[i] = out
    return [*carry, *ys]


def _scan_impl(*args, jaxpr, num_consts, num_carry, length, reverse, unroll):
    evaluate = transform("evaluate")
    return scan_loop(lambda values: evaluate(jaxpr, values), args, num_consts=num_consts, num_carry=num_carry,
                     length=length, reverse=reverse, y_avals=jaxpr.out_avals[num_carry:], xp=array_module(*args))


def _params(jaxpr, num_consts, num_carry, length, reverse, unroll):
    return {"jaxpr": jaxpr, "num_consts": num_consts, "num_carry": num_carry, "length": length,
            "reverse": reverse, "unroll": unroll}


def _scan_jvp(primals, tangents, *, jaxpr, num_consts, num_carry, length, reverse, unroll):
    """A scan of the body's JVP, carrying the tangents of the carries that have
    one (found by fixpoint: a carry with a zero tangent gets no tangent work)."""
    nonzero = nonzero_flags(tangents)
    body, consts, carry_nonzero, ys_nonzero = derived(
        jaxpr, ("scan jvp", nonzero, num_consts, num_carry),
        lambda: _scan_jvp_body(jaxpr, nonzero, num_consts, num_carry))
    c, carry, xs = split_list(primals, num_consts, num_carry)
    tc, tcarry, txs = split_list(tangents, num_consts, num_carry)
    nonzero_c = [t for t in tc if type(t) is not Zero]
    carry_tangents = [ad_util.zeros(t.aval, x) if type(t) is Zero else t
                      for x, t, nz in zip(carry, tcarry, carry_nonzero, strict=True) if nz]
    outs = bind(scan_p, *consts, *c, *nonzero_c, *carry, *carry_tangents, *xs, *(t for t in txs if type(t) is not Zero),
                **_params(body, len(consts) + num_consts + len(nonzero_c), num_carry + len(carry_tangents),
                          length, reverse, unroll))
    carry_out, carry_t, ys, ys_t = split_list(outs, num_carry, len(carry_tangents), len(jaxpr.out_avals) - num_carry)
    out_avals = [get_aval(x) for x in (*carry_out, *ys)]
    tangents_out = fill_zeros(out_avals, (*carry_nonzero, *ys_nonzero), [*carry_t, *ys_t])
    return [*carry_out, *ys], tangents_out


def _scan_jvp_body(jaxpr, nonzero, num_consts, num_carry):
    const_nz, carry_nz, xs_nz = split_list(nonzero, num_consts, num_carry)
    num_ys = len(jaxpr.out_avals) - num_carry
    jvp_jaxpr = transform("jvp_jaxpr")

    def carries_out(carry_nz):
        return jvp_jaxpr(jaxpr, (*const_nz, *carry_nz, *xs_nz), (*carry_nz, *(False,) * num_ys))[2][:num_carry]
    carry_nz = carry_fixpoint(carry_nz, carries_out)
    jvp, consts, out_nz = jvp_jaxpr(jaxpr, (*const_nz, *carry_nz, *xs_nz), (*carry_nz, *(False,) * num_ys))
    # jvp takes (extra consts, consts, carry, xs, their nonzero tangents) and returns (carry, ys,
    # nonzero tangents of both): a scan takes (consts, carry, xs), each with its tangents
    n = [len(consts), num_consts, num_carry, len(xs_nz), sum(const_nz), sum(carry_nz), sum(xs_nz)]
    starts = np.cumsum([0] + n).tolist()
    section = lambda k: list(range(starts[k], starts[k + 1]))  # noqa: E731
    in_order = [*section(0), *section(1), *section(4), *section(2), *section(5), *section(3), *section(6)]
    num_ys_t = sum(out_nz[num_carry:])
    # the carries' tangents are instantiated: those of carry_nz follow the carries and ys
    assert tuple(out_nz[:num_carry]) == carry_nz
    out_order = [*range(num_carry), *(num_carry + num_ys + i for i in range(sum(carry_nz))),
                 *range(num_carry, num_carry + num_ys),
                 *(num_carry + num_ys + sum(carry_nz) + i for i in range(num_ys_t))]
    return permuted(jvp, in_order, out_order), consts, carry_nz, tuple(out_nz[num_carry:])


def _scan_partial_eval(trace, unknowns, args, *, jaxpr, num_consts, num_carry, length, reverse, unroll):
    """A known scan (known carries and ys, and the residuals of every iteration,
    stacked) and an unknown one reading them. Residuals that are consts of the
    body stay consts, and those that are its xs are read from the xs as they
    are: only what each iteration computes is stacked."""
    plan = derived(jaxpr, ("scan partial eval", tuple(unknowns), num_consts, num_carry),
                   lambda: _ScanSplit(jaxpr, tuple(unknowns), num_consts, num_carry))
    c, carry, xs = split_list(args, num_consts, num_carry)
    known_c, unknown_c = _by_flag(c, plan.const_unknowns)
    known_carry, unknown_carry = _by_flag(carry, plan.carry_unknowns)
    known_xs, unknown_xs = _by_flag(xs, plan.xs_unknowns)
    known_outs = []
    if plan.known.jaxpr.outvars:
        known_outs = trace.known(scan_p, [*plan.known_consts, *known_c, *known_carry, *known_xs],
                                 _params(plan.known, len(plan.known_consts) + len(known_c), len(known_carry),
                                         length, reverse, unroll))
    stacked = known_outs[plan.num_known_out:]
    const_pool = [*plan.known_consts, *known_c]
    unknown_outs = []
    if plan.unknown.jaxpr.outvars:
        invariant = [const_pool[i] for i in plan.invariant_residuals]
        forwarded = [known_xs[i] for i in plan.forwarded_residuals]
        unknown_outs = trace.unknown(scan_p, [*invariant, *unknown_c, *unknown_carry, *stacked, *forwarded,
                                              *unknown_xs],
                                     _params(plan.unknown, len(invariant) + len(unknown_c), len(unknown_carry),
                                             length, reverse, unroll))
    return merge_lists(plan.out_unknowns, known_outs[:plan.num_known_out], unknown_outs)


def _by_flag(values, flags):
    return ([x for x, f in zip(values, flags, strict=True) if not f], [x for x, f in zip(values, flags) if f])


class _ScanSplit:
    """How a scan with these unknown operands splits (see _scan_partial_eval):
    the known body (known consts, carries, xs -> known carries, ys, stacked
    residuals) and the unknown one ((invariant residuals, unknown consts),
    unknown carries, (stacked residuals, forwarded xs, unknown xs) -> unknown
    carries, ys), the unknown carries found by fixpoint."""

    def __init__(self, jaxpr, unknowns, num_consts, num_carry):
        self.const_unknowns, carry_unknowns, self.xs_unknowns = split_list(unknowns, num_consts, num_carry)
        num_ys = len(jaxpr.out_avals) - num_carry
        partial_eval = transform("partial_eval_jaxpr")

        def flags(carry_unknowns):
            return (*self.const_unknowns, *carry_unknowns, *self.xs_unknowns)

        def carries_out(carry_unknowns):
            return partial_eval(jaxpr, flags(carry_unknowns), (*carry_unknowns, *(False,) * num_ys))[3][:num_carry]
        self.carry_unknowns = carry_fixpoint(carry_unknowns, carries_out)
        known, self.known_consts, unknown, self.out_unknowns, num_residuals = partial_eval(
            jaxpr, flags(self.carry_unknowns), (*self.carry_unknowns, *(False,) * num_ys))
        self.num_known_out = self.out_unknowns.count(False)
        # where each residual comes from: an input of the known body that is loop-invariant
        # (a const) or an xs, read as it is, or else what an iteration computes, stacked
        kj = known.jaxpr
        num_invariant = len(self.known_consts) + self.const_unknowns.count(False)
        num_known_carry = self.carry_unknowns.count(False)
        role = {}
        for i, var in enumerate(kj.invars):
            if i < num_invariant:
                role[var] = ("invariant", i)
            elif i >= num_invariant + num_known_carry:
                role[var] = ("forwarded", i - num_invariant - num_known_carry)
        self.invariant_residuals, self.forwarded_residuals, stacked = [], [], []
        order = {"invariant": [], "stacked": [], "forwarded": []}  # residual positions, by where they come from
        for position, var in enumerate(kj.outvars[self.num_known_out:]):
            kind, index = role.get(var, ("stacked", None))
            order[kind].append(position)
            if kind == "invariant":
                self.invariant_residuals.append(index)
            elif kind == "forwarded":
                self.forwarded_residuals.append(index)
            else:
                stacked.append(var)
        self.known = ClosedJaxpr(Jaxpr([], kj.invars, kj.eqns, [*kj.outvars[:self.num_known_out], *stacked]), [])
        # the unknown body takes (residuals, unknown consts, carries, xs): put each residual in its section
        uj = unknown.jaxpr
        unknown_inputs = list(range(num_residuals, len(uj.invars)))
        n_uc, n_ucarry = self.const_unknowns.count(True), self.carry_unknowns.count(True)
        in_order = [*order["invariant"], *unknown_inputs[:n_uc], *unknown_inputs[n_uc:n_uc + n_ucarry],
                    *order["stacked"], *order["forwarded"], *unknown_inputs[n_uc + n_ucarry:]]
        self.unknown = permuted(unknown, in_order, range(len(uj.outvars)))


def _scan_transpose(cts, *operands, jaxpr, num_consts, num_carry, length, reverse, unroll):
    """A scan of the transposed body, run the other way: the cotangents of the
    carries flow back from the last iteration to the first, those of the
    linear consts accumulate in carries, those of the linear xs are its ys.
    Every carry is linear (one whose initial value is known, as zeros a JVP
    materialized, is too: its cotangent is dropped)."""
    c, carry, xs = split_list(operands, num_consts, num_carry)
    c_undefined = tuple(type(x) is UndefinedPrimal for x in c)
    xs_undefined = tuple(type(x) is UndefinedPrimal for x in xs)
    ct_carry, ct_ys = split_list(cts, num_carry)
    ys_nonzero = nonzero_flags(ct_ys)
    carry_avals = [x.aval if type(x) is UndefinedPrimal else get_aval(x) for x in carry]
    if any(a.dtype.kind not in "fc" for a in carry_avals):
        raise NotImplementedError("transpose of a scan with a carry that is not floating-point")
    body, consts, reached_c, reached_xs = derived(
        jaxpr, ("scan transpose", c_undefined, xs_undefined, ys_nonzero, num_consts, num_carry),
        lambda: _scan_transpose_body(jaxpr, c_undefined, xs_undefined, ys_nonzero, num_carry))
    residual_c = [x for x, u in zip(c, c_undefined) if not u]
    linear_c = [x for x, u in zip(c, c_undefined) if u]
    accumulators = [ad_util.zeros(x.aval) for x, r in zip(linear_c, reached_c, strict=True) if r]
    ct_carry = [ad_util.zeros(a) if type(ct) is Zero else ct for ct, a in zip(ct_carry, carry_avals, strict=True)]
    residual_xs = [x for x, u in zip(xs, xs_undefined) if not u]
    outs = bind(scan_p, *consts, *residual_c, *accumulators, *ct_carry, *residual_xs,
                *(ct for ct in ct_ys if type(ct) is not Zero),
                **_params(body, len(consts) + len(residual_c), len(accumulators) + num_carry, length,
                          not reverse, unroll))
    ct_c, ct_init, ct_xs = outs[:len(accumulators)], outs[len(accumulators):len(accumulators) + num_carry], \
        outs[len(accumulators) + num_carry:]
    # the linear consts and xs that no iteration's cotangent reaches get symbolic zeros (not arrays of
    # zeros, which would meet infinite residuals upstream as NaN)
    ct_c = iter(merge_lists([not r for r in reached_c], ct_c, [Zero(x.aval) for x, r in zip(linear_c, reached_c) if not r]))
    linear_xs = [x for x, u in zip(xs, xs_undefined) if u]
    ct_xs = iter(merge_lists([not r for r in reached_xs], ct_xs,
                             [Zero(x.aval) for x, r in zip(linear_xs, reached_xs, strict=True) if not r]))
    return [*(next(ct_c) if u else None for u in c_undefined),
            *(ct if type(x) is UndefinedPrimal else None for x, ct in zip(carry, ct_init, strict=True)),
            *(next(ct_xs) if u else None for u in xs_undefined)]


def _scan_transpose_body(jaxpr, c_undefined, xs_undefined, ys_nonzero, num_carry):
    """(body, consts, reached_c, reached_xs): body (consts, residual consts |
    accumulators, carry cotangents | residual xs, nonzero ys cotangents) ->
    (accumulators + the linear consts' cotangents, the cotangents of the carry
    one iteration back | the linear xs' cotangents), from the body's transpose,
    for the linear consts and xs that a cotangent reaches (`reached_c`,
    `reached_xs`: a flag for each linear one)."""
    undefined = (*c_undefined, *(True,) * num_carry, *xs_undefined)
    ct_nonzero = (*(True,) * num_carry, *ys_nonzero)
    transpose_jaxpr = transform("transpose_jaxpr")
    reached_c, _, reached_xs = split_list(transpose_jaxpr(jaxpr, undefined, ct_nonzero, False)[2],
                                          c_undefined.count(True), num_carry)
    transposed, consts, _ = transpose_jaxpr(jaxpr, undefined, ct_nonzero, (*reached_c, *(True,) * num_carry,
                                                                           *reached_xs))
    tj = transposed.jaxpr
    n_res_c, n_lin_c = c_undefined.count(False), sum(reached_c)
    n_res_xs = xs_undefined.count(False)
    const_vars, res_c, res_xs, ct_carry, ct_ys = split_list(tj.invars, len(consts), n_res_c, n_res_xs, num_carry)
    ct_lin_c, ct_carry_back, ct_lin_xs = split_list(tj.outvars, n_lin_c, num_carry)
    eqns, sums, accumulators = list(tj.eqns), [], []
    for ct in ct_lin_c:
        accumulator, total = Var(ct.aval), Var(ct.aval)
        eqns.append(Eqn(ew.add_p, [accumulator, ct], [total], {}))
        accumulators.append(accumulator)
        sums.append(total)
    body = Jaxpr([], [*const_vars, *res_c, *accumulators, *ct_carry, *res_xs, *ct_ys], eqns,
                 [*sums, *ct_carry_back, *ct_lin_xs])
    return ClosedJaxpr(body, []), consts, tuple(reached_c), tuple(reached_xs)


def _scan_batch(values, dims, *, jaxpr, num_consts, num_carry, length, reverse, unroll):
    """A scan of the batched body; the carries that are batched found by
    fixpoint (batch axis first), the xs and ys batched along axis 1."""
    size = batch_util.batch_size(values, dims)
    batched = tuple(d is not not_mapped for d in dims)
    const_b, carry_b, xs_b = split_list(batched, num_consts, num_carry)
    num_ys = len(jaxpr.out_avals) - num_carry
    batch_jaxpr = transform("batch_jaxpr")

    def carries_out(carry_b):
        return batch_jaxpr(jaxpr, (*const_b, *carry_b, *xs_b), size, (*carry_b, *(False,) * num_ys))[2][:num_carry]
    carry_b = carry_fixpoint(carry_b, carries_out)
    body, consts, out_b = batch_jaxpr(jaxpr, (*const_b, *carry_b, *xs_b), size, (*carry_b, *(False,) * num_ys))
    c, carry, xs = split_list(values, num_consts, num_carry)
    c_dims, carry_dims, xs_dims = split_list(dims, num_consts, num_carry)
    c = [x if d is not_mapped else batch_util.move_dim(x, d, 0) for x, d in zip(c, c_dims)]
    carry = [batch_util.bdim_to(x, d, size, 0) if b else x for x, d, b in zip(carry, carry_dims, carry_b, strict=True)]
    xs = [x if d is not_mapped else batch_util.move_dim(x, d, 1) for x, d in zip(xs, xs_dims)]
    outs = bind(scan_p, *consts, *c, *carry, *xs,
                **_params(body, len(consts) + num_consts, num_carry, length, reverse, unroll))
    return outs, [*(0 if b else not_mapped for b in carry_b), *(1 if b else not_mapped for b in out_b[num_carry:])]


def _scan_dce(used_outputs, eqn, dce_jaxpr):
    """Unused ys leave the body; so do the carries that neither an output nor
    another used carry reads (by fixpoint), and the consts and xs it no longer reads."""
    params = eqn.params
    body, num_consts, num_carry = params["jaxpr"], params["num_consts"], params["num_carry"]
    used_carry, used_ys = split_list(used_outputs, num_carry)

    def carries_read(used_carry):
        return dce_jaxpr(body, (*used_carry, *used_ys))[1][num_consts:num_consts + num_carry]
    used_carry = carry_fixpoint(used_carry, carries_read)
    used_inputs = dce_jaxpr(body, (*used_carry, *used_ys))[1]
    used_c, _, used_xs = split_list(used_inputs, num_consts, num_carry)
    keep = [*used_c, *used_carry, *used_xs]
    pruned, _ = dce_jaxpr(body, (*used_carry, *used_ys), prune_invars=keep)
    if pruned is body:
        return keep, eqn
    outvars = [v for v, u in zip(eqn.outvars, (*used_carry, *used_ys), strict=True) if u]
    return keep, eqn.replace(invars=[x for x, k in zip(eqn.invars, keep, strict=True) if k], outvars=outvars,
                             params={**params, "jaxpr": pruned, "num_consts": sum(used_c), "num_carry": sum(used_carry)})


def _scan_taylor(primals, series, *, jaxpr, num_consts, num_carry, length, reverse, unroll):
    """A scan of the body's jet, carrying the coefficients of the carries that have
    nonzero ones (found by fixpoint over every order at once, as the jvp's are)."""
    order = len(series[0])
    nonzero = _series_flags(series)
    body, consts, carry_nonzero, ys_nonzero = derived(
        jaxpr, ("scan jet", order, nonzero, num_consts, num_carry),
        lambda: _scan_jet_body(jaxpr, order, nonzero, num_consts, num_carry))
    c, carry, xs = split_list(primals, num_consts, num_carry)
    sc, scarry, sxs = split_list(series, num_consts, num_carry)
    c_coefficients = [x for s in sc for x in s if type(x) is not Zero]
    carry_coefficients = [ad_util.zeros(x.aval, p) if type(x) is Zero else x
                          for p, s, row in zip(carry, scarry, carry_nonzero, strict=True)
                          for x, nz in zip(s, row, strict=True) if nz]
    xs_coefficients = [x for s in sxs for x in s if type(x) is not Zero]
    outs = bind(scan_p, *consts, *c, *c_coefficients, *carry, *carry_coefficients, *xs, *xs_coefficients,
                **_params(body, len(consts) + num_consts + len(c_coefficients), num_carry + len(carry_coefficients),
                          length, reverse, unroll))
    num_ys = len(jaxpr.out_avals) - num_carry
    carry_out, carry_c, ys, ys_c = split_list(outs, num_carry, len(carry_coefficients), num_ys)
    avals = [get_aval(x) for x in (*carry_out, *ys)]
    return [*carry_out, *ys], _series_of(avals, (*carry_nonzero, *ys_nonzero), [*carry_c, *ys_c])


def _scan_jet_body(jaxpr, order, nonzero, num_consts, num_carry):
    const_nz, carry_nz, xs_nz = split_list(nonzero, num_consts, num_carry)
    num_ys = len(jaxpr.out_avals) - num_carry
    no_coefficients = ((False,) * order,) * num_ys

    def carries_out(flat_carry_nz):
        rows = tuple(tuple(flat_carry_nz[k * order:(k + 1) * order]) for k in range(num_carry))
        out_nz = _jet_in_call_form(jaxpr, order, (*const_nz, *rows, *xs_nz), (*rows, *no_coefficients))[2]
        return tuple(b for row in out_nz[:num_carry] for b in row)
    flat = carry_fixpoint(tuple(b for row in carry_nz for b in row), carries_out)
    carry_nz = tuple(tuple(flat[k * order:(k + 1) * order]) for k in range(num_carry))
    jet, consts, out_nz = _jet_in_call_form(jaxpr, order, (*const_nz, *carry_nz, *xs_nz),
                                            (*carry_nz, *no_coefficients))
    assert tuple(out_nz[:num_carry]) == carry_nz
    # jet takes (extra consts, consts, carry, xs, then the nonzero coefficients of each, input by
    # input) and returns (carry, ys, then theirs): a scan takes (consts, carry, xs), each with theirs
    count = lambda rows: sum(sum(row) for row in rows)  # noqa: E731
    n = [len(consts), num_consts, num_carry, len(xs_nz), count(const_nz), count(carry_nz), count(xs_nz)]
    starts = np.cumsum([0] + n).tolist()
    section = lambda k: list(range(starts[k], starts[k + 1]))  # noqa: E731
    in_order = [*section(0), *section(1), *section(4), *section(2), *section(5), *section(3), *section(6)]
    num_carry_c, num_ys_c = count(carry_nz), count(out_nz[num_carry:])
    out_order = [*range(num_carry), *(num_carry + num_ys + i for i in range(num_carry_c)),
                 *range(num_carry, num_carry + num_ys),
                 *(num_carry + num_ys + num_carry_c + i for i in range(num_ys_c))]
    return permuted(jet, in_order, out_order), consts, carry_nz, tuple(out_nz[num_carry:])


scan_p = Primitive(
    "scan", params={"jaxpr": SubJaxpr(), "num_consts": NON_NEGATIVE_INT, "num_carry": NON_NEGATIVE_INT,
                    "length": NON_NEGATIVE_INT, "reverse": BOOL, "unroll": POSITIVE_INT},
    abstract_eval=_scan_abstract_eval, impl=_scan_impl, multiple_results=True,
    jvp=_scan_jvp, partial_eval=_scan_partial_eval, transpose=_scan_transpose, batch=_scan_batch, dce=_scan_dce,
    taylor=_scan_taylor)


def scan(body, consts, init, xs, length, reverse=False, unroll=1):
    """Bind scan: (final carry, stacked ys) of `body` over `xs` (lists of values)."""
    return bind(scan_p, *consts, *init, *xs, **_params(body, len(consts), len(init), length, reverse, unroll))


# -------------------- while --------------------
# while[cond_jaxpr=C body_jaxpr=B cond_nconsts=m body_nconsts=k] *cond_consts *body_consts *init -> *final carry
#
# JAX's while_p: `carry = B(*body_consts, *carry)` as long as `C(*cond_consts, *carry)` (a bool[]) holds.
# The trip count is known only at run time. Reverse mode (partial_eval with unknown carries) needs each
# iteration's residuals: where the trip count is concrete when the loop is split (eager grad, grad of grad,
# eager vmap of grad with an unbatched predicate) the loop is the scan of that many iterations and splits
# as a scan does (residuals stacked, the transposed loop run backwards); where it is not (under jit) the
# known loop keeps its residuals in a host-side record (`while_record`, below) which a `record_scan` reads.

_BOOL = np.dtype(np.bool_)


def _inherit(new_cond, cond_jaxpr):
    """A predicate derived from `cond_jaxpr`, under its loop limit if it has one (see loop_limit)."""
    from ir import config
    return config.inherit_untrusted(new_cond, cond_jaxpr)


def _while_abstract_eval(*avals, cond_jaxpr, body_jaxpr, cond_nconsts, body_nconsts, checkpoints):
    if cond_jaxpr.jaxpr.constvars or body_jaxpr.jaxpr.constvars:
        raise TypeError("while: its cond_jaxpr and body_jaxpr must have no constvars (pass constants as consts)")
    if cond_nconsts + body_nconsts > len(avals):
        raise TypeError(f"while: cond_nconsts={cond_nconsts} and body_nconsts={body_nconsts}, "
                        f"but {len(avals)} operands")
    cond_consts, body_consts, carry = split_list(avals, cond_nconsts, body_nconsts)
    check_operands("while: its cond_jaxpr", [*cond_consts, *carry], cond_jaxpr.in_avals)
    check_operands("while: its body_jaxpr", [*body_consts, *carry], body_jaxpr.in_avals)
    outs = cond_jaxpr.out_avals
    if len(outs) != 1 or outs[0].shape != () or outs[0].dtype != _BOOL:
        raise TypeError(f"while: its cond_jaxpr must return one bool[], it returns "
                        f"({', '.join(a.str_short() for a in outs)})")
    carry_in = body_jaxpr.in_avals[body_nconsts:]
    check_operands("while: the carry its body_jaxpr returns", body_jaxpr.out_avals, carry_in)
    return list(carry_in)


def loop_limit(cond_jaxpr):
    """The most iterations this while may run (None: no limit): ir.config's
    max_loop_iterations for a loop read from text (parse_jaxpr, ft.load), or
    derived from one by a transformation; none for code the user traced."""
    from ir import config
    return config.max_loop_iterations if config.is_untrusted(cond_jaxpr) else None


def loop_limit_error(limit):
    return RuntimeError(f"while: the loop ran {limit} iterations, max_loop_iterations for programs read from text "
                        f"(parse_jaxpr, ft.load): raise it with ft.config.update('max_loop_iterations', n), or "
                        f"None for no limit, if the program is trusted")


def while_loop_run(cond, body, args, *, cond_nconsts, body_nconsts, limit=None):
    """Run a while: `cond(values) -> bool-like`, `body(values) -> carry`; the
    implementation and the CuPy backend (which reads the predicate back) share it."""
    cond_consts, body_consts, carry = split_list(args, cond_nconsts, body_nconsts)
    count = 0
    while bool(cond([*cond_consts, *carry])):
        if limit is not None and count >= limit:
            raise loop_limit_error(limit)
        carry = list(body([*body_consts, *carry]))
        count += 1
    return carry


def _while_impl(*args, cond_jaxpr, body_jaxpr, cond_nconsts, body_nconsts, checkpoints):
    evaluate = transform("evaluate")
    return while_loop_run(lambda values: evaluate(cond_jaxpr, values)[0], lambda values: evaluate(body_jaxpr, values),
                          args, cond_nconsts=cond_nconsts, body_nconsts=body_nconsts, limit=loop_limit(cond_jaxpr))


def _while_params(cond_jaxpr, body_jaxpr, cond_nconsts, body_nconsts, checkpoints):
    return {"cond_jaxpr": cond_jaxpr, "body_jaxpr": body_jaxpr, "cond_nconsts": cond_nconsts,
            "body_nconsts": body_nconsts, "checkpoints": checkpoints}


def _ignoring_extra_carries(cond_jaxpr, extra_avals):
    """`cond_jaxpr` taking extra carries after its own, which it does not read
    (the tangents or Taylor coefficients a transformed loop carries beside them)."""
    jaxpr = cond_jaxpr.jaxpr
    return ClosedJaxpr(Jaxpr([], [*jaxpr.invars, *(Var(a) for a in extra_avals)], jaxpr.eqns, jaxpr.outvars), [])


def _while_jvp(primals, tangents, *, cond_jaxpr, body_jaxpr, cond_nconsts, body_nconsts, checkpoints):
    """A while of the body's JVP, carrying the tangents of the carries that have one
    (by fixpoint: a carry with a zero tangent gets no tangent work); the
    predicate reads the primal carries only."""
    nonzero = nonzero_flags(tangents)
    _, body_nz, carry_nz = split_list(nonzero, cond_nconsts, body_nconsts)
    num_carry = len(body_jaxpr.out_avals)
    body, consts, carry_nz, _ = derived(
        body_jaxpr, ("while jvp", tuple(body_nz), tuple(carry_nz), body_nconsts),
        lambda: _scan_jvp_body(body_jaxpr, (*body_nz, *carry_nz), body_nconsts, num_carry))
    cond_c, body_c, carry = split_list(primals, cond_nconsts, body_nconsts)
    _, tbody, tcarry = split_list(tangents, cond_nconsts, body_nconsts)
    nonzero_c = [t for t in tbody if type(t) is not Zero]
    carry_tangents = [ad_util.zeros(t.aval, x) if type(t) is Zero else t
                      for x, t, nz in zip(carry, tcarry, carry_nz, strict=True) if nz]
    extra = tuple(get_aval(t).strip_weak_type() for t in carry_tangents)
    cond = derived(cond_jaxpr, ("while cond ignoring", extra),
                   lambda: _inherit(_ignoring_extra_carries(cond_jaxpr, extra), cond_jaxpr))
    outs = bind(while_p, *cond_c, *consts, *body_c, *nonzero_c, *carry, *carry_tangents,
                **_while_params(cond, body, cond_nconsts, len(consts) + body_nconsts + len(nonzero_c), checkpoints))
    carry_out, carry_t = outs[:num_carry], outs[num_carry:]
    return carry_out, fill_zeros([get_aval(x) for x in carry_out], carry_nz, carry_t)


def _while_batch(values, dims, *, cond_jaxpr, body_jaxpr, cond_nconsts, body_nconsts, checkpoints):
    """A while of the batched body. With a predicate that is the same for every
    example, one loop of the batched bodies; with a batched one (examples that
    stop at different iterations), the loop runs while any example's predicate
    holds, and an example whose predicate no longer holds keeps its carry (a
    select per lane, as JAX)."""
    size = batch_util.batch_size(values, dims)
    batched = tuple(d is not not_mapped for d in dims)
    cond_b, body_b, carry_b = split_list(batched, cond_nconsts, body_nconsts)
    num_carry = len(carry_b)
    batch_jaxpr = transform("batch_jaxpr")

    def carries_out(carry_b):
        return tuple(batch_jaxpr(body_jaxpr, (*body_b, *carry_b), size, carry_b)[2])
    carry_b = carry_fixpoint(carry_b, carries_out)
    pred_batched = batch_jaxpr(cond_jaxpr, (*cond_b, *carry_b), size, (False,))[2][0]
    if pred_batched:
        carry_b = (True,) * num_carry
    cond_c, body_c, carry = split_list(values, cond_nconsts, body_nconsts)
    cond_dims, body_dims, carry_dims = split_list(dims, cond_nconsts, body_nconsts)
    cond_c = [x if d is not_mapped else batch_util.move_dim(x, d, 0) for x, d in zip(cond_c, cond_dims)]
    body_c = [x if d is not_mapped else batch_util.move_dim(x, d, 0) for x, d in zip(body_c, body_dims)]
    carry = [batch_util.bdim_to(x, d, size, 0) if b else x for x, d, b in zip(carry, carry_dims, carry_b, strict=True)]
    body, body_consts, _ = batch_jaxpr(body_jaxpr, (*body_b, *carry_b), size, carry_b)
    cond, cond_consts, _ = batch_jaxpr(cond_jaxpr, (*cond_b, *carry_b), size, (False,))
    cond = _inherit(cond, cond_jaxpr)
    if not pred_batched:
        outs = bind(while_p, *cond_consts, *cond_c, *body_consts, *body_c, *carry,
                    **_while_params(cond, body, len(cond_consts) + cond_nconsts, len(body_consts) + body_nconsts,
                                    checkpoints))
        return outs, [0 if b else not_mapped for b in carry_b]
    # a batched predicate: the loop goes on while any lane's holds; the body computes every lane's and
    # keeps the carry of those whose predicate no longer holds
    n_cc, n_bc = len(cond_consts) + cond_nconsts, len(body_consts) + body_nconsts
    any_cond, masked_body = _masked_loop(cond, body, cond_jaxpr, [*cond_consts, *cond_c], [*body_consts, *body_c],
                                         carry)
    outs = bind(while_p, *cond_consts, *cond_c, *cond_consts, *cond_c, *body_consts, *body_c, *carry,
                **_while_params(any_cond, masked_body, n_cc, n_cc + n_bc, checkpoints))
    return outs, [0] * num_carry


def _while_dce(used_outputs, eqn, dce_jaxpr):
    """The carries that neither an output, the predicate nor another used carry
    reads (by fixpoint) leave the loop, and so do the consts no longer read."""
    params = eqn.params
    cond_jaxpr, body_jaxpr = params["cond_jaxpr"], params["body_jaxpr"]
    cond_nconsts, body_nconsts = params["cond_nconsts"], params["body_nconsts"]
    cond_reads = dce_jaxpr(cond_jaxpr, (True,))[1]
    cond_c_used, cond_carry_used = cond_reads[:cond_nconsts], cond_reads[cond_nconsts:]
    used = tuple(a or b for a, b in zip(used_outputs, cond_carry_used, strict=True))

    def carries_read(used_carry):
        return dce_jaxpr(body_jaxpr, used_carry)[1][body_nconsts:]
    used = carry_fixpoint(used, carries_read)
    body_reads = dce_jaxpr(body_jaxpr, used)[1]
    body_c_used = body_reads[:body_nconsts]
    body, _ = dce_jaxpr(body_jaxpr, used, prune_invars=(*body_c_used, *used))
    cond, _ = dce_jaxpr(cond_jaxpr, (True,), prune_invars=(*cond_c_used, *used))
    cond = _inherit(cond, cond_jaxpr)
    keep = [*cond_c_used, *body_c_used, *used]
    if body is body_jaxpr and cond is cond_jaxpr:
        return keep, eqn
    return keep, eqn.replace(invars=[x for x, k in zip(eqn.invars, keep, strict=True) if k],
                             outvars=[v for v, u in zip(eqn.outvars, used, strict=True) if u],
                             params=_while_params(cond, body, sum(cond_c_used), sum(body_c_used),
                                                  params["checkpoints"]))


def _while_taylor(primals, series, *, cond_jaxpr, body_jaxpr, cond_nconsts, body_nconsts, checkpoints):
    """A while of the body's jet, the coefficients of the carries that have nonzero
    ones found by fixpoint; the predicate reads the primal carries only."""
    order = len(series[0])
    nonzero = _series_flags(series)
    _, body_nz, carry_nz = split_list(nonzero, cond_nconsts, body_nconsts)
    num_carry = len(carry_nz)
    body, consts, carry_nonzero, _ = derived(
        body_jaxpr, ("while jet", order, tuple(body_nz), tuple(carry_nz), body_nconsts),
        lambda: _scan_jet_body(body_jaxpr, order, (*body_nz, *carry_nz), body_nconsts, num_carry))
    cond_c, body_c, carry = split_list(primals, cond_nconsts, body_nconsts)
    _, sbody, scarry = split_list(series, cond_nconsts, body_nconsts)
    c_coefficients = [x for s in sbody for x in s if type(x) is not Zero]
    carry_coefficients = [ad_util.zeros(x.aval, p) if type(x) is Zero else x
                          for p, s, row in zip(carry, scarry, carry_nonzero, strict=True)
                          for x, nz in zip(s, row, strict=True) if nz]
    extra = [get_aval(x).strip_weak_type() for x in carry_coefficients]
    cond = _inherit(_ignoring_extra_carries(cond_jaxpr, extra), cond_jaxpr)
    outs = bind(while_p, *cond_c, *consts, *body_c, *c_coefficients, *carry, *carry_coefficients,
                **_while_params(cond, body, cond_nconsts, len(consts) + body_nconsts + len(c_coefficients),
                                checkpoints))
    carry_out, carry_c = outs[:num_carry], outs[num_carry:]
    return carry_out, _series_of([get_aval(x) for x in carry_out], carry_nonzero, carry_c)


def _while_partial_eval(trace, unknowns, args, *, cond_jaxpr, body_jaxpr, cond_nconsts, body_nconsts, checkpoints):
    """Known and unknown carries found by fixpoint. A predicate that reads an
    unknown value makes the whole loop unknown; else (reverse mode: the tangent
    carries are unknown, the primal ones known) the known loop runs first and
    counts its iterations. A concrete count n (eager mode, and nested eager
    differentiation) makes the loop the scan of n iterations, split as a scan is;
    an abstract one (under jit) records the residuals on the host (while_record)."""
    params = _while_params(cond_jaxpr, body_jaxpr, cond_nconsts, body_nconsts, checkpoints)
    cond_u, body_u, carry_u = split_list(unknowns, cond_nconsts, body_nconsts)
    partial_eval = transform("partial_eval_jaxpr")

    def carries_out(carry_u):
        return tuple(partial_eval(body_jaxpr, (*body_u, *carry_u), (False,) * len(carry_u))[3])
    carry_u = carry_fixpoint(carry_u, carries_out)
    cond_unknown = partial_eval(cond_jaxpr, (*cond_u, *carry_u), (False,))[3][0]
    if cond_unknown or not any(carry_u):
        return trace.unknown(while_p, args, params)
    cond_c, body_c, carry = split_list(args, cond_nconsts, body_nconsts)
    known_args = [x for x, u in zip(args, (*cond_u, *body_u, *carry_u), strict=True) if not u]
    if checkpoints is None and all(_concrete(x) for x in known_args):
        # NB: the counting loop and the split one both run the known body: the price of knowing n
        count = trip_count(trace.known, cond_jaxpr, body_jaxpr, cond_c, body_c, carry, body_u, carry_u)
        n = count.concrete_value() if isinstance(count, Tracer) else count
        if n is not None:
            scan_params = _params(body_jaxpr, body_nconsts, len(carry), int(n), False, 1)
            return _scan_partial_eval(trace, (*body_u, *carry_u), [*body_c, *carry], **scan_params)
    return _recorded_partial_eval(trace, carry_u, args, params)


def _concrete(x):
    return not isinstance(x, Tracer) or x.concrete_value() is not None


def _known_loop(cond_jaxpr, body_jaxpr, cond_nconsts, body_nconsts, body_u, carry_u, counter=True):
    """(cond, body) of the loop over the known carries only, with an i32 counter
    carried last (if `counter`): a while of them gives the known carries and the trip count."""
    from ir.passes.dce import dce_jaxpr
    known = tuple(not u for u in carry_u)
    body_known = tuple(not u for u in body_u)
    body, reads = dce_jaxpr(body_jaxpr, known)
    if any(r and u for r, u in zip(reads, (*body_u, *carry_u), strict=True)):
        raise AssertionError("while: a known carry reads an unknown value")
    body, _ = dce_jaxpr(body_jaxpr, known, prune_invars=(*body_known, *known))
    cond, _ = dce_jaxpr(cond_jaxpr, (True,), prune_invars=(*(True,) * cond_nconsts, *known))
    if not counter:
        return _inherit(cond, cond_jaxpr), body
    counter = ShapedArray((), _I32)
    body_avals = body.in_avals

    def counting_body(*args):
        return [*call.jit_call(body, list(args[:-1]), "while_body"), ew.add(args[-1], np.int32(1))]
    from ir.tracing import stage
    counting = call.call_form(stage(counting_body, [*body_avals, counter]))[0]
    cond = _inherit(ClosedJaxpr(Jaxpr([], [*cond.jaxpr.invars, Var(counter)], cond.jaxpr.eqns, cond.jaxpr.outvars),
                                []), cond_jaxpr)
    return cond, counting


def trip_count(bind_known, cond_jaxpr, body_jaxpr, cond_c, body_c, carry, body_u, carry_u):
    """How many iterations the loop runs, computed (by `bind_known`) from its known values."""
    cond, body = _known_loop(cond_jaxpr, body_jaxpr, len(cond_c), len(body_c), body_u, carry_u)
    known_body_c = [x for x, u in zip(body_c, body_u, strict=True) if not u]
    known_carry = [x for x, u in zip(carry, carry_u, strict=True) if not u]
    outs = bind_known(while_p, [*cond_c, *known_body_c, *known_carry, np.int32(0)],
                      _while_params(cond, body, len(cond_c), len(known_body_c), None))
    return outs[-1]


def _recorded_partial_eval(trace, carry_u, args, params):
    """Under jit: the known loop (its carries only) computes the known outputs, and the
    whole loop is staged unknown beside it, reading the known initial carries as
    residuals. Its transpose (`_while_transpose`) is a while_reverse: the primal loop
    run again, keeping its carries (a tape, or checkpoints), then the transposed body
    run backwards over them."""
    cond_nconsts, body_nconsts = params["cond_nconsts"], params["body_nconsts"]
    cond_c, body_c, carry = split_list(args, cond_nconsts, body_nconsts)
    body_u = [_is_unknown(trace, x) for x in body_c]
    cond, body = _known_loop(params["cond_jaxpr"], params["body_jaxpr"], cond_nconsts, body_nconsts, body_u, carry_u,
                             counter=False)
    known_body_c = [x for x, u in zip(body_c, body_u, strict=True) if not u]
    known_carry = [x for x, u in zip(carry, carry_u, strict=True) if not u]
    known_outs = trace.known(while_p, [*cond_c, *known_body_c, *known_carry],
                             _while_params(cond, body, cond_nconsts, len(known_body_c), params["checkpoints"]))
    unknown_outs = trace.unknown(while_p, args, params)
    return merge_lists(carry_u, known_outs, [x for x, u in zip(unknown_outs, carry_u, strict=True) if u])


def _is_unknown(trace, x):
    from ir.tracing import StagingTracer
    return isinstance(x, StagingTracer) and x._trace is trace


def _while_transpose(cts, *operands, cond_jaxpr, body_jaxpr, cond_nconsts, body_nconsts, checkpoints):
    """The transpose of a loop linear in some carries (and body consts): those whose
    operands are undefined; the others are primal carries that do not depend on
    them. A while_reverse: the primal loop runs again, keeping its carries (all of
    them, or at most `checkpoints`), then the transposed body runs backwards."""
    cond_c, body_c, carry = split_list(operands, cond_nconsts, body_nconsts)
    if any(type(x) is UndefinedPrimal for x in cond_c):
        raise ValueError("while is not linear in the operands of its predicate")
    body_undef = tuple(type(x) is UndefinedPrimal for x in body_c)
    if not any(type(x) is UndefinedPrimal for x in carry) and not any(body_undef):
        return [None] * len(operands)
    # the linear carries: those undefined, and those a linear value reaches (by fixpoint): a tangent carry
    # whose initial value is known (zeros a JVP materialized) is linear too, its cotangent dropped
    partial_eval = transform("partial_eval_jaxpr")
    carry_undef = carry_fixpoint(tuple(type(x) is UndefinedPrimal for x in carry), lambda u: tuple(
        partial_eval(body_jaxpr, (*body_undef, *u), (False,) * len(carry))[3]))
    if any(carry_undef) and partial_eval(cond_jaxpr, (*(False,) * cond_nconsts, *carry_undef), (False,))[3][0]:
        raise ValueError("while is not linear in carries its predicate reads")
    ct_nonzero = nonzero_flags(cts)
    if not any(nz for nz, u in zip(ct_nonzero, carry_undef, strict=True) if u):
        return [Zero(x.aval) if type(x) is UndefinedPrimal else None for x in operands]
    known_body_c = [x for x, u in zip(body_c, body_undef, strict=True) if not u]
    known_carry = [x for x, u in zip(carry, carry_undef, strict=True) if not u]
    bwd, bwd_consts = derived(body_jaxpr, ("while backward body", body_undef, carry_undef, body_nconsts),
                              lambda: _while_backward_body(body_jaxpr, body_nconsts, body_undef, carry_undef))
    cond, body = _known_loop(cond_jaxpr, body_jaxpr, cond_nconsts, body_nconsts, body_undef, carry_undef,
                             counter=False)
    accumulators = [ad_util.zeros(x.aval) for x in body_c if type(x) is UndefinedPrimal]
    ct_init = [ad_util.zeros(tangent_aval(a)) if type(ct) is Zero else ct
               for a, ct, u in zip(body_jaxpr.out_avals, cts, carry_undef, strict=True) if u]
    outs = bind(while_reverse_p, *cond_c, *known_body_c, *bwd_consts, *known_body_c, *known_carry,
                *accumulators, *ct_init,
                **_reverse_params(cond, body, bwd, cond_nconsts, len(known_body_c), len(bwd_consts) + len(known_body_c),
                                  checkpoints))
    ct_consts, ct_carry = iter(outs[:len(accumulators)]), iter(outs[len(accumulators):])
    return [*(None for _ in cond_c), *(next(ct_consts) if u else None for u in body_undef),
            *(next(ct_carry) if type(x) is UndefinedPrimal else (next(ct_carry), None)[1] if u else None
              for x, u in zip(carry, carry_undef))]


def _while_backward_body(body_jaxpr, body_nconsts, body_undef, carry_undef):
    """(bwd, its consts): (consts, defined body consts | defined carries c_i |
    accumulators of the linear consts' cotangents, cotangents of the linear
    carries) -> the same one iteration back: what the body computed from c_i,
    recomputed, and its linear part transposed."""
    partial_eval, transpose_jaxpr = transform("partial_eval_jaxpr"), transform("transpose_jaxpr")
    known, known_consts, unknown, out_unknowns, num_res = partial_eval(
        body_jaxpr, (*body_undef, *carry_undef), carry_undef)
    num_known_out = out_unknowns.count(False)
    num_linear_in = len(unknown.in_avals) - num_res
    num_linear_out = len(unknown.out_avals)
    transposed, t_consts, _ = transpose_jaxpr(unknown, (*(False,) * num_res, *(True,) * num_linear_in),
                                              (True,) * num_linear_out, True)
    kbc_avals = [a for a, u in zip(body_jaxpr.in_avals[:body_nconsts], body_undef, strict=True) if not u]
    carry_avals = body_jaxpr.in_avals[body_nconsts:]
    kc_avals = [a for a, u in zip(carry_avals, carry_undef, strict=True) if not u]
    acc_avals = [tangent_aval(a) for a, u in zip(body_jaxpr.in_avals[:body_nconsts], body_undef) if u]
    ct_avals = [tangent_aval(a) for a, u in zip(carry_avals, carry_undef) if u]
    consts = [*known_consts, *t_consts]
    const_avals = [get_aval(c).strip_weak_type() for c in consts]
    n_kc, n_tc, n_kbc, n_c, n_acc = len(known_consts), len(t_consts), len(kbc_avals), len(kc_avals), len(acc_avals)

    def backward(*args):
        kconsts, tconsts, kbc, c, acc, ct = split_list(args, n_kc, n_tc, n_kbc, n_c, n_acc)
        residuals = call.jit_call(known, [*kconsts, *kbc, *c], "while_body_residuals")[num_known_out:]
        cts_in = call.jit_call(transposed, [*tconsts, *residuals, *ct], "while_body_transposed")
        return [*(ew.add(a, g) for a, g in zip(acc, cts_in[:n_acc], strict=True)), *cts_in[n_acc:]]
    from ir.tracing import stage
    bwd, stage_consts = call.call_form(stage(backward, [*const_avals, *kbc_avals, *kc_avals, *acc_avals, *ct_avals]))
    return bwd, [*stage_consts, *consts]


while_p = Primitive(
    "while", params={"cond_jaxpr": SubJaxpr(), "body_jaxpr": SubJaxpr(), "cond_nconsts": NON_NEGATIVE_INT,
                     "body_nconsts": NON_NEGATIVE_INT, "checkpoints": Optional(POSITIVE_INT)},
    abstract_eval=_while_abstract_eval, impl=_while_impl, multiple_results=True,
    jvp=_while_jvp, partial_eval=_while_partial_eval, transpose=_while_transpose, batch=_while_batch, dce=_while_dce,
    taylor=_while_taylor)


def while_loop(cond_jaxpr, body_jaxpr, cond_consts, body_consts, init, checkpoints=None):
    """Bind while: the carry after `body_jaxpr` ran as long as `cond_jaxpr` held."""
    return bind(while_p, *cond_consts, *body_consts, *init,
                **_while_params(cond_jaxpr, body_jaxpr, len(cond_consts), len(body_consts), checkpoints))


# -------------------- while_reverse: a while loop's reverse sweep --------------------
# while_reverse[cond_jaxpr body_jaxpr bwd_jaxpr cond_nconsts body_nconsts bwd_nconsts checkpoints]
#     *cond_consts *body_consts *bwd_consts *init *ct -> *ct after the reverse sweep
#
# The primal loop (cond_jaxpr, body_jaxpr) runs from `init`, n iterations, n known when it stops, keeping
# its carries c_0 ... c_{n-1}: every one (a tape) or at most `checkpoints` of them, the others recomputed
# from the nearest kept one on an online schedule (interpreters/checkpointing.py). Then
# `ct = bwd_jaxpr(*bwd_consts, *c_i, *ct)` for i = n-1 down to 0. The transpose of a while loop is one.

def _reverse_params(cond_jaxpr, body_jaxpr, bwd_jaxpr, cond_nconsts, body_nconsts, bwd_nconsts, checkpoints,
                    transforms=()):
    return {"cond_jaxpr": cond_jaxpr, "body_jaxpr": body_jaxpr, "bwd_jaxpr": bwd_jaxpr, "cond_nconsts": cond_nconsts,
            "body_nconsts": body_nconsts, "bwd_nconsts": bwd_nconsts, "checkpoints": checkpoints,
            "transforms": transforms}


def _split_reverse(values, cond_nconsts, body_nconsts, bwd_nconsts, body_jaxpr):
    """(cond consts, body consts, bwd consts, init carries, cts)."""
    return split_list(values, cond_nconsts, body_nconsts, bwd_nconsts, len(body_jaxpr.out_avals))


def _while_reverse_abstract_eval(*avals, cond_jaxpr, body_jaxpr, bwd_jaxpr, cond_nconsts, body_nconsts, bwd_nconsts,
                                 checkpoints):
    if cond_nconsts + body_nconsts + bwd_nconsts > len(avals):
        raise TypeError(f"while_reverse: cond_nconsts={cond_nconsts}, body_nconsts={body_nconsts} and "
                        f"bwd_nconsts={bwd_nconsts}, but {len(avals)} operands")
    cond_c, body_c, bwd_c, carry, ct = _split_reverse(avals, cond_nconsts, body_nconsts, bwd_nconsts, body_jaxpr)
    _while_abstract_eval(*cond_c, *body_c, *carry, cond_jaxpr=cond_jaxpr, body_jaxpr=body_jaxpr,
                         cond_nconsts=cond_nconsts, body_nconsts=body_nconsts, checkpoints=checkpoints)
    check_operands("while_reverse: its bwd_jaxpr", [*bwd_c, *carry, *ct], bwd_jaxpr.in_avals)
    check_operands("while_reverse: the cotangents its bwd_jaxpr returns", bwd_jaxpr.out_avals, bwd_jaxpr.in_avals[
        bwd_nconsts + len(carry):])
    return list(bwd_jaxpr.out_avals)


def while_reverse_run(cond, body, bwd, args, *, cond_nconsts, body_nconsts, bwd_nconsts, num_carry, checkpoints,
                      limit=None):
    """Run a while_reverse with `cond`, `body`, `bwd` (values -> outputs): the
    implementation and the CuPy backend share it."""
    cond_c, body_c, bwd_c, rest = split_list(args, cond_nconsts, body_nconsts, bwd_nconsts)
    carry, ct = rest[:num_carry], rest[num_carry:]
    step = lambda i, c: list(body([*body_c, *c]))  # noqa: E731
    record = transform("loop_record")(step, lambda i, c: (step(i, c), c), checkpoints)  # residuals: the carry
    while bool(cond([*cond_c, *carry])):
        if limit is not None and record.trip_count >= limit:
            raise loop_limit_error(limit)
        carry = record.step(carry)
    return list(record.reverse(list(ct), lambda i, c, ct: list(bwd([*bwd_c, *c, *ct]))))


def _while_reverse_impl(*args, cond_jaxpr, body_jaxpr, bwd_jaxpr, cond_nconsts, body_nconsts, bwd_nconsts,
                        checkpoints):
    evaluate = transform("evaluate")
    return while_reverse_run(lambda v: evaluate(cond_jaxpr, v)[0], lambda v: evaluate(body_jaxpr, v),
                             lambda v: evaluate(bwd_jaxpr, v), args, cond_nconsts=cond_nconsts,
                             body_nconsts=body_nconsts, bwd_nconsts=bwd_nconsts,
                             num_carry=len(body_jaxpr.out_avals), checkpoints=checkpoints,
                             limit=loop_limit(cond_jaxpr))


def _while_reverse_jvp(primals, tangents, *, cond_jaxpr, body_jaxpr, bwd_jaxpr, cond_nconsts, body_nconsts,
                       bwd_nconsts, checkpoints):
    """A while_reverse of the JVPs: the forward loop carries the carries' tangents
    (found by fixpoint), the reverse sweep the cotangents' (likewise)."""
    nonzero = nonzero_flags(tangents)
    _, body_nz, bwd_nz, carry_nz, ct_nz = _split_reverse(nonzero, cond_nconsts, body_nconsts, bwd_nconsts, body_jaxpr)
    num_carry, num_ct = len(carry_nz), len(ct_nz)
    body, body_jc, carry_nz, _ = derived(
        body_jaxpr, ("while jvp", tuple(body_nz), tuple(carry_nz), body_nconsts),
        lambda: _scan_jvp_body(body_jaxpr, (*body_nz, *carry_nz), body_nconsts, num_carry))
    jvp_jaxpr = transform("jvp_jaxpr")

    def cts_out(ct_nz):
        return tuple(jvp_jaxpr(bwd_jaxpr, (*bwd_nz, *carry_nz, *ct_nz), ct_nz)[2])
    ct_nz = carry_fixpoint(ct_nz, cts_out)
    bwd, bwd_jc, _, _ = derived(
        bwd_jaxpr, ("while_reverse bwd jvp", tuple(bwd_nz), tuple(carry_nz), tuple(ct_nz), bwd_nconsts),
        lambda: _scan_jvp_body(bwd_jaxpr, (*bwd_nz, *carry_nz, *ct_nz), bwd_nconsts + num_carry, num_ct))
    # _scan_jvp_body takes (consts, tangents of the consts, carry, its tangents): here the carries c_i are
    # among the bwd's "consts" of each iteration, and its carry is the cotangent
    cond_c, body_c, bwd_c, carry, ct = _split_reverse(primals, cond_nconsts, body_nconsts, bwd_nconsts, body_jaxpr)
    _, tbody, tbwd, tcarry, tct = _split_reverse(tangents, cond_nconsts, body_nconsts, bwd_nconsts, body_jaxpr)
    carry_t = [ad_util.zeros(t.aval, x) if type(t) is Zero else t for x, t, nz in zip(carry, tcarry, carry_nz) if nz]
    ct_t = [ad_util.zeros(t.aval, x) if type(t) is Zero else t for x, t, nz in zip(ct, tct, ct_nz) if nz]
    extra = tuple(get_aval(t).strip_weak_type() for t in carry_t)
    cond = _inherit(_ignoring_extra_carries(cond_jaxpr, extra), cond_jaxpr)
    bwd = _bwd_taking_carry_tangents_last(bwd, len(bwd_jc), bwd_nconsts, sum(bwd_nz), num_carry, sum(carry_nz))
    nz_body = [t for t in tbody if type(t) is not Zero]
    nz_bwd = [t for t in tbwd if type(t) is not Zero]
    outs = bind(while_reverse_p, *cond_c, *body_jc, *body_c, *nz_body, *bwd_jc, *bwd_c, *nz_bwd, *carry, *carry_t,
                *ct, *ct_t, **_reverse_params(cond, body, bwd, cond_nconsts, len(body_jc) + body_nconsts + len(nz_body),
                                              len(bwd_jc) + bwd_nconsts + len(nz_bwd), checkpoints))
    return outs[:num_ct], fill_zeros([get_aval(x) for x in outs[:num_ct]], ct_nz, outs[num_ct:])


def _while_reverse_taylor(primals, series, *, cond_jaxpr, body_jaxpr, bwd_jaxpr, cond_nconsts, body_nconsts,
                          bwd_nconsts, checkpoints):
    """A while_reverse of the jets, as its JVP: the forward loop carries the carries'
    nonzero coefficients, the reverse sweep the cotangents' (each found by fixpoint)."""
    order = len(series[0])
    nonzero = _series_flags(series)
    _, body_nz, bwd_nz, carry_nz, ct_nz = _split_reverse(nonzero, cond_nconsts, body_nconsts, bwd_nconsts, body_jaxpr)
    num_carry, num_ct = len(carry_nz), len(ct_nz)
    body, body_jc, carry_nz, _ = _scan_jet_body(body_jaxpr, order, (*body_nz, *carry_nz), body_nconsts, num_carry)
    bwd, bwd_jc, ct_nz, _ = _scan_jet_body(bwd_jaxpr, order, (*bwd_nz, *carry_nz, *ct_nz), bwd_nconsts + num_carry,
                                           num_ct)
    count = lambda rows: sum(sum(row) for row in rows)  # noqa: E731
    bwd = _bwd_taking_carry_tangents_last(bwd, len(bwd_jc), bwd_nconsts, count(bwd_nz), num_carry, count(carry_nz))
    cond_c, body_c, bwd_c, carry, ct = _split_reverse(primals, cond_nconsts, body_nconsts, bwd_nconsts, body_jaxpr)
    _, sbody, sbwd, scarry, sct = _split_reverse(series, cond_nconsts, body_nconsts, bwd_nconsts, body_jaxpr)
    nonzero_of = lambda rows: [x for s in rows for x in s if type(x) is not Zero]  # noqa: E731

    def materialized(values, rows, flags):
        return [ad_util.zeros(x.aval, p) if type(x) is Zero else x
                for p, s, row in zip(values, rows, flags, strict=True) for x, nz in zip(s, row, strict=True) if nz]
    carry_coefficients, ct_coefficients = materialized(carry, scarry, carry_nz), materialized(ct, sct, ct_nz)
    cond = _inherit(_ignoring_extra_carries(cond_jaxpr, [get_aval(x).strip_weak_type() for x in carry_coefficients]),
                    cond_jaxpr)
    body_coefficients, bwd_coefficients = nonzero_of(sbody), nonzero_of(sbwd)
    outs = bind(while_reverse_p, *cond_c, *body_jc, *body_c, *body_coefficients, *bwd_jc, *bwd_c, *bwd_coefficients,
                *carry, *carry_coefficients, *ct, *ct_coefficients,
                **_reverse_params(cond, body, bwd, cond_nconsts, len(body_jc) + body_nconsts + len(body_coefficients),
                                  len(bwd_jc) + bwd_nconsts + len(bwd_coefficients), checkpoints))
    return outs[:num_ct], _series_of([get_aval(x) for x in outs[:num_ct]], ct_nz, outs[num_ct:])


def _bwd_taking_carry_tangents_last(bwd, n_jc, n_bc, n_tbc, num_carry, n_tcarry):
    """The bwd JVP, which takes (jvp consts, bwd consts, carries, tangents of the bwd
    consts, tangents of the carries, ...), taking them as (jvp consts, bwd consts,
    tangents of the bwd consts, carries, their tangents, ...): consts, then carries."""
    n = len(bwd.in_avals)
    order = [*range(n_jc + n_bc), *range(n_jc + n_bc + num_carry, n_jc + n_bc + num_carry + n_tbc),
             *range(n_jc + n_bc, n_jc + n_bc + num_carry),
             *range(n_jc + n_bc + num_carry + n_tbc, n_jc + n_bc + num_carry + n_tbc + n_tcarry)]
    order += [i for i in range(n) if i not in set(order)]
    return permuted(bwd, order, range(len(bwd.out_avals)))


def _while_reverse_transpose(cts, *operands, cond_jaxpr, body_jaxpr, bwd_jaxpr, cond_nconsts, body_nconsts,
                             bwd_nconsts, checkpoints):
    """Linear in its cotangents (the reverse sweep of a linear map): its transpose
    is a forward loop beside the primal one, the transposed bwd run forwards."""
    cond_c, body_c, bwd_c, carry, ct = _split_reverse(operands, cond_nconsts, body_nconsts, bwd_nconsts, body_jaxpr)
    if any(type(x) is UndefinedPrimal for x in cond_c):
        raise ValueError("while_reverse is not linear in the operands of its predicate")
    if any(type(x) is UndefinedPrimal for x in (*body_c, *bwd_c, *carry)):
        # reverse mode of the whole loop, not only of its reverse sweep: recorded, applied at run time (see below)
        return _transformed_transpose(cts, *operands, **_reverse_params(
            cond_jaxpr, body_jaxpr, bwd_jaxpr, cond_nconsts, body_nconsts, bwd_nconsts, checkpoints))
    if not any(type(x) is UndefinedPrimal for x in ct):
        return [None] * len(operands)
    num_carry, num_ct = len(carry), len(ct)
    transposed, t_consts, _ = transform("transpose_jaxpr")(
        bwd_jaxpr, (*(False,) * (bwd_nconsts + num_carry), *(True,) * num_ct), (True,) * num_ct, True)
    ct_avals = [x.aval for x in ct]
    carry_avals = [get_aval(x).strip_weak_type() for x in carry]
    body_c_avals = [get_aval(x).strip_weak_type() for x in (*body_c, *bwd_c, *t_consts)]
    n_b, n_w, n_t = len(body_c), len(bwd_c), len(t_consts)

    def forward(*args):
        bc, wc, tc, c, x = split_list(args, n_b, n_w, n_t, num_carry)
        new_c = call.jit_call(body_jaxpr, [*bc, *c], "while_body")
        new_x = call.jit_call(transposed, [*tc, *wc, *c, *x], "while_bwd_transposed")
        return [*new_c, *new_x]
    from ir.tracing import stage
    body, consts = call.call_form(stage(forward, [*body_c_avals, *carry_avals, *ct_avals]))
    cond = _inherit(_ignoring_extra_carries(cond_jaxpr, ct_avals), cond_jaxpr)
    ct_in = [ad_util.zeros(a) if type(c) is Zero else c for a, c in zip(ct_avals, cts, strict=True)]
    outs = bind(while_p, *cond_c, *consts, *body_c, *bwd_c, *t_consts, *carry, *ct_in,
                **_while_params(cond, body, cond_nconsts, len(consts) + n_b + n_w + n_t, checkpoints))
    return [*(None for _ in (*cond_c, *body_c, *bwd_c, *carry)), *outs[num_carry:]]


def _while_reverse_batch(values, dims, *, cond_jaxpr, body_jaxpr, bwd_jaxpr, cond_nconsts, body_nconsts, bwd_nconsts,
                         checkpoints):
    """A while_reverse of the batched jaxprs. With a batched predicate, the forward
    loop runs while any example's holds (the others keep their carries), and the
    reverse sweep leaves the cotangents of an example alone at the iterations it did
    not run (its predicate is read again from c_i)."""
    size = batch_util.batch_size(values, dims)
    batched = tuple(d is not not_mapped for d in dims)
    cond_b, body_b, bwd_b, carry_b, ct_b = _split_reverse(batched, cond_nconsts, body_nconsts, bwd_nconsts, body_jaxpr)
    batch_jaxpr = transform("batch_jaxpr")
    carry_b = carry_fixpoint(carry_b, lambda b: tuple(batch_jaxpr(body_jaxpr, (*body_b, *b), size, b)[2]))
    pred_batched = batch_jaxpr(cond_jaxpr, (*cond_b, *carry_b), size, (False,))[2][0]
    if pred_batched:
        carry_b = (True,) * len(carry_b)
    ct_b = carry_fixpoint(ct_b, lambda b: tuple(batch_jaxpr(bwd_jaxpr, (*bwd_b, *carry_b, *b), size, b)[2]))
    if pred_batched:
        ct_b = (True,) * len(ct_b)
    moved = [x if d is not_mapped else batch_util.move_dim(x, d, 0) for x, d in zip(values, dims)]
    cond_c, body_c, bwd_c, carry, ct = _split_reverse(moved, cond_nconsts, body_nconsts, bwd_nconsts, body_jaxpr)
    _, _, _, carry_d, ct_d = _split_reverse(dims, cond_nconsts, body_nconsts, bwd_nconsts, body_jaxpr)
    carry = [batch_util.bdim_to(x, d, size, 0) if b else x
             for x, d, b in zip(split_list(values, cond_nconsts + body_nconsts + bwd_nconsts)[1][:len(carry)],
                                carry_d, carry_b, strict=True)]
    ct = [batch_util.bdim_to(x, d, size, 0) if b else x
          for x, d, b in zip(values[len(values) - len(ct):], ct_d, ct_b, strict=True)]
    cond, cond_k, _ = batch_jaxpr(cond_jaxpr, (*cond_b, *carry_b), size, (False,))
    body, body_k, _ = batch_jaxpr(body_jaxpr, (*body_b, *carry_b), size, carry_b)
    bwd, bwd_k, _ = batch_jaxpr(bwd_jaxpr, (*bwd_b, *carry_b, *ct_b), size, ct_b)
    cond = _inherit(cond, cond_jaxpr)
    n_cc, n_bc, n_wc = len(cond_k) + cond_nconsts, len(body_k) + body_nconsts, len(bwd_k) + bwd_nconsts
    if not pred_batched:
        outs = bind(while_reverse_p, *cond_k, *cond_c, *body_k, *body_c, *bwd_k, *bwd_c, *carry, *ct,
                    **_reverse_params(cond, body, bwd, n_cc, n_bc, n_wc, checkpoints))
        return outs, [0 if b else not_mapped for b in ct_b]
    any_cond, masked_body = _masked_loop(cond, body, cond_jaxpr, [*cond_k, *cond_c], [*body_k, *body_c], carry)
    masked_bwd = _masked_bwd(cond, bwd, [*cond_k, *cond_c], [*bwd_k, *bwd_c], carry, ct)
    outs = bind(while_reverse_p, *cond_k, *cond_c, *cond_k, *cond_c, *body_k, *body_c, *cond_k, *cond_c, *bwd_k, *bwd_c,
                *carry, *ct, **_reverse_params(any_cond, masked_body, masked_bwd, n_cc, n_cc + n_bc, n_cc + n_wc,
                                               checkpoints))
    return outs, [0] * len(ct)


def _selected(pred, old, new):
    outs = []
    for a, b in zip(old, new, strict=True):
        shape = get_aval(b).shape
        mask = structural.broadcast_in_dim(pred, shape, (0,)) if len(shape) > 1 else pred
        outs.append(ew.select_n(mask, a, b))
    return outs


def _masked_loop(cond, body, cond_jaxpr, cond_consts, body_consts, carry):
    """(a predicate: any lane's holds; a body: the lanes whose predicate does not hold keep their carry)."""
    from ir.primitives import reductions
    from ir.tracing import stage
    n_cc, n_bc = len(cond_consts), len(body_consts)
    cc_avals = [get_aval(x).strip_weak_type() for x in cond_consts]
    bc_avals = [get_aval(x).strip_weak_type() for x in body_consts]
    carry_avals = [get_aval(x) for x in carry]

    def any_lane(*args):
        (pred,) = call.jit_call(cond, list(args), "while_cond")
        return [reductions.reduce_max(pred, (0,))]

    def masked_body(*args):
        cc, bc, c = split_list(args, n_cc, n_bc)
        (pred,) = call.jit_call(cond, [*cc, *c], "while_cond")
        return _selected(pred, c, call.jit_call(body, [*bc, *c], "while_body"))
    any_cond = _inherit(call.call_form(stage(any_lane, [*cc_avals, *carry_avals]))[0], cond_jaxpr)
    return any_cond, call.call_form(stage(masked_body, [*cc_avals, *bc_avals, *carry_avals]))[0]


def _masked_bwd(cond, bwd, cond_consts, bwd_consts, carry, ct):
    """The bwd of a masked loop: at an iteration a lane did not run, its cotangent passes unchanged."""
    from ir.tracing import stage
    n_cc, n_wc, n_c = len(cond_consts), len(bwd_consts), len(carry)
    avals = [get_aval(x).strip_weak_type() for x in (*cond_consts, *bwd_consts)] + [get_aval(x) for x in (*carry, *ct)]

    def masked(*args):
        cc, wc, c, g = split_list(args, n_cc, n_wc, n_c)
        (pred,) = call.jit_call(cond, [*cc, *c], "while_cond")
        return _selected(pred, g, call.jit_call(bwd, [*wc, *c, *g], "while_bwd"))
    return call.call_form(stage(masked, avals))[0]


def while_reverse_as_scans(process, args, params, n):
    """A while_reverse of n iterations (n known) as two scans, whose every rule
    applies to any order: the loop, its carries stacked as ys, and the bwd run
    over them in reverse. `process(prim, args, params)` binds them (in a trace)."""
    cond_nconsts, body_nconsts, bwd_nconsts = params["cond_nconsts"], params["body_nconsts"], params["bwd_nconsts"]
    body_jaxpr, bwd_jaxpr = params["body_jaxpr"], params["bwd_jaxpr"]
    _, body_c, bwd_c, carry, ct = _split_reverse(args, cond_nconsts, body_nconsts, bwd_nconsts, body_jaxpr)
    forward, backward = derived(body_jaxpr, ("while_reverse as scans", bwd_nconsts, _Key(bwd_jaxpr)),
                                lambda: _as_scan_bodies(body_jaxpr, bwd_jaxpr, body_nconsts, bwd_nconsts))
    num_carry = len(carry)
    outs = process(scan_p, [*body_c, *carry], _params(forward, body_nconsts, num_carry, n, False, 1))
    stacked = outs[num_carry:]
    return process(scan_p, [*bwd_c, *ct, *stacked], _params(backward, bwd_nconsts, len(ct), n, True, 1))


class _Key:
    """A jaxpr in a cache key beside another one's entry, by identity, without keeping it alive."""
    __slots__ = ("ref", "hash")

    def __init__(self, closed):
        import weakref
        self.ref, self.hash = weakref.ref(closed), id(closed)

    def __hash__(self):
        return self.hash

    def __eq__(self, other):
        return type(other) is _Key and self.ref() is not None and self.ref() is other.ref()


def _as_scan_bodies(body_jaxpr, bwd_jaxpr, body_nconsts, bwd_nconsts):
    from ir.tracing import stage
    carry_avals = body_jaxpr.in_avals[body_nconsts:]
    num_carry = len(carry_avals)

    def forward(*args):
        return [*call.jit_call(body_jaxpr, list(args), "while_body"), *args[body_nconsts:]]

    def backward(*args):
        wc, ct, c = split_list(args, bwd_nconsts, len(args) - bwd_nconsts - num_carry)
        return call.jit_call(bwd_jaxpr, [*wc, *c, *ct], "while_bwd")
    wc_avals = bwd_jaxpr.in_avals[:bwd_nconsts]
    ct_avals = bwd_jaxpr.in_avals[bwd_nconsts + num_carry:]
    return (call.call_form(stage(forward, body_jaxpr.in_avals))[0],
            call.call_form(stage(backward, [*wc_avals, *ct_avals, *carry_avals]))[0])


def reverse_trip_count(compute_fn, args, params):
    """The trip count of a while_reverse's loop (its operands concrete)."""
    cond_nconsts, body_nconsts = params["cond_nconsts"], params["body_nconsts"]
    cond_c, body_c, _, carry, _ = _split_reverse(args, cond_nconsts, body_nconsts, params["bwd_nconsts"],
                                                 params["body_jaxpr"])
    count = trip_count(compute_fn, params["cond_jaxpr"], params["body_jaxpr"], cond_c, body_c, carry,
                       (False,) * body_nconsts, (False,) * len(carry))
    n = count.concrete_value() if isinstance(count, Tracer) else count
    return None if n is None else int(n)


def _while_reverse_partial_eval(trace, unknowns, args, **params):
    """With the loop's operands concrete (eager mode, nested eager differentiation):
    the two scans of while_reverse_as_scans, split as scans are. Else the loop's
    cotangents that read no unknown value (by fixpoint) come from a known
    while_reverse, and the whole one is staged unknown."""
    cond_nconsts, body_nconsts, bwd_nconsts = params["cond_nconsts"], params["body_nconsts"], params["bwd_nconsts"]
    body_jaxpr = params["body_jaxpr"]
    cond_c, body_c, _, carry, _ = _split_reverse(args, cond_nconsts, body_nconsts, bwd_nconsts, body_jaxpr)
    cond_u, body_u, bwd_u, carry_u, ct_u = _split_reverse(unknowns, cond_nconsts, body_nconsts, bwd_nconsts,
                                                          body_jaxpr)
    partial_eval = transform("partial_eval_jaxpr")
    bwd_jaxpr = params["bwd_jaxpr"]
    carry_u = carry_fixpoint(carry_u, lambda u: tuple(
        partial_eval(body_jaxpr, (*body_u, *u), (False,) * len(u))[3]))
    cond_unknown = partial_eval(params["cond_jaxpr"], (*cond_u, *carry_u), (False,))[3][0]
    known_loop_args = [x for x, u in zip((*cond_c, *body_c, *carry), (*cond_u, *body_u, *carry_u), strict=True)
                       if not u]
    if params["checkpoints"] is None and not cond_unknown and all(_concrete(x) for x in known_loop_args):
        # the trip count from the known part of the loop (the primal carries of a JVP'd one, say)
        count = trip_count(trace.known, params["cond_jaxpr"], body_jaxpr, cond_c, body_c, carry, body_u, carry_u)
        n = count.concrete_value() if isinstance(count, Tracer) else count
        if n is not None:
            return while_reverse_as_scans(trace.process_primitive, args, params, int(n))
    ct_u = carry_fixpoint(ct_u, lambda u: tuple(
        partial_eval(bwd_jaxpr, (*bwd_u, *carry_u, *u), (False,) * len(u))[3]))
    if cond_unknown or all(ct_u):
        return trace.unknown(while_reverse_p, args, params)
    from ir.passes.dce import dce_jaxpr
    cond, body = _known_loop(params["cond_jaxpr"], body_jaxpr, cond_nconsts, body_nconsts, body_u, carry_u,
                             counter=False)
    known_ct = tuple(not u for u in ct_u)
    bwd, _ = dce_jaxpr(bwd_jaxpr, known_ct, prune_invars=(*(not u for u in bwd_u), *(not u for u in carry_u),
                                                          *known_ct))
    _, body_c, bwd_c, carry, ct = _split_reverse(args, cond_nconsts, body_nconsts, bwd_nconsts, body_jaxpr)
    known = lambda xs, us: [x for x, u in zip(xs, us, strict=True) if not u]  # noqa: E731
    known_outs = trace.known(while_reverse_p, [*cond_c, *known(body_c, body_u), *known(bwd_c, bwd_u),
                                               *known(carry, carry_u), *known(ct, ct_u)],
                             _reverse_params(cond, body, bwd, cond_nconsts, body_u.count(False), bwd_u.count(False),
                                             params["checkpoints"]))
    unknown_outs = trace.unknown(while_reverse_p, args, params)
    return merge_lists(ct_u, known_outs, [x for x, u in zip(unknown_outs, ct_u, strict=True) if u])


def _while_reverse_dce(used_outputs, eqn, dce_jaxpr):
    """Nothing to prune inside: every cotangent flows back through every iteration."""
    return [True] * len(eqn.invars), eqn


# -------------------- while_reverse, transformed once its trip count is known --------------------
# Reverse mode of a while_reverse in its primal operands (reverse of reverse through a while_loop) needs the
# cotangents of its reverse sweep at every iteration, in the order opposite to the one the sweep computes them:
# a second tape, of a length known only at run time. Where the trip count n is concrete that is two scans of
# n iterations (while_reverse_as_scans), whose rules apply to any order; under jit it is not. There the
# transformation is recorded instead of carried out: `transforms` lists, innermost first, what was applied to
# the plain while_reverse (the loop of the other params, run with a tape: checkpoints are for its first order),
#     ("jvp", nonzero, 0)      inputs: (its inputs, the tangents of those flagged) -> (its outputs, their tangents)
#     ("vjp", linear, 0)       inputs: (its inputs not flagged, cotangents of its outputs) -> cotangents of
#                              those flagged
#     ("vmap", batched, size)  inputs: those flagged with a leading batch axis of `size` -> outputs batched at axis 0
# and the implementation applies them, in that order, to its concrete operands, where the eager rules see n
# (interpreters/transformed.py). So every transformation composes with every other (to any order), the
# staged program does not depend on n, and each loop body is still the generated code of its jaxpr.

TRANSFORM_KINDS = ("jvp", "vjp", "vmap")
_MAX_OPERANDS = 1 << 20


def _base_avals(cond_jaxpr, body_jaxpr, bwd_jaxpr, cond_nconsts, body_nconsts, bwd_nconsts):
    """The operand types of the plain while_reverse of these params, and its output types."""
    num_carry = len(body_jaxpr.out_avals)
    avals = [*cond_jaxpr.in_avals[:cond_nconsts], *body_jaxpr.in_avals[:body_nconsts],
             *bwd_jaxpr.in_avals[:bwd_nconsts], *body_jaxpr.in_avals[body_nconsts:],
             *bwd_jaxpr.in_avals[bwd_nconsts + num_carry:]]
    return [a.strip_weak_type() for a in avals], list(bwd_jaxpr.out_avals)


def transformed_avals(in_avals, out_avals, transforms):
    """(operand types, output types) of a function of those types after `transforms` (see above)."""
    for kind, flags, size in transforms:
        if len(flags) != len(in_avals):
            raise TypeError(f"while_reverse: a {kind} in transforms flags {len(flags)} operands, the function "
                            f"it transforms takes {len(in_avals)}")
        if kind == "jvp":
            in_avals = [*in_avals, *(tangent_aval(a) for a, f in zip(in_avals, flags) if f)]
            out_avals = [*out_avals, *map(tangent_aval, out_avals)]
        elif kind == "vjp":
            linear = [tangent_aval(a) for a, f in zip(in_avals, flags) if f]
            in_avals = [*(a for a, f in zip(in_avals, flags) if not f), *map(tangent_aval, out_avals)]
            out_avals = linear
        else:
            if size < 1:
                raise TypeError(f"while_reverse: a vmap in transforms has batch size {size}")
            in_avals = [a.update(shape=(size, *a.shape)) if f else a for a, f in zip(in_avals, flags)]
            out_avals = [a.update(shape=(size, *a.shape)) for a in out_avals]
    return in_avals, out_avals


def _transformed_abstract_eval(*avals, transforms, **params):
    base_in, base_out = _base_avals(**{k: v for k, v in params.items() if k != "checkpoints"})
    _while_reverse_abstract_eval(*base_in, **params)
    in_avals, out_avals = transformed_avals(base_in, base_out, transforms)
    check_operands("while_reverse with transforms", avals, in_avals)
    return out_avals


def _transformed_impl(*args, transforms, **params):
    plain = {**params, "checkpoints": None, "transforms": ()}
    base_in, base_out = _base_avals(**{k: v for k, v in params.items() if k != "checkpoints"})
    return transform("run_transformed")(lambda values: bind(while_reverse_p, *values, **plain), transforms,
                                        list(args), base_in, base_out)


def _with(params, *spec):
    return {**params, "transforms": (*params["transforms"], spec)}


def _transformed_jvp(primals, tangents, **params):
    nonzero = nonzero_flags(tangents)
    outs = bind(while_reverse_p, *primals, *(t for t in tangents if type(t) is not Zero),
                **_with(params, "jvp", nonzero, 0))
    half = len(outs) // 2
    return outs[:half], outs[half:]


def _transformed_transpose(cts, *operands, **params):
    undefined = tuple(type(x) is UndefinedPrimal for x in operands)
    if not any(type(ct) is not Zero for ct in cts):
        return [Zero(x.aval) if u else None for x, u in zip(operands, undefined, strict=True)]
    out_avals = while_reverse_p.abstract_eval([x.aval if u else get_aval(x) for x, u in zip(operands, undefined)],
                                              params)
    cts = [ad_util.zeros(tangent_aval(a)) if type(ct) is Zero else ct for ct, a in zip(cts, out_avals, strict=True)]
    outs = iter(bind(while_reverse_p, *(x for x, u in zip(operands, undefined) if not u), *cts,
                     **_with(params, "vjp", undefined, 0)))
    return [next(outs) if u else None for u in undefined]


def _transformed_batch(values, dims, **params):
    """The vmap goes in after the vmaps already there, before any jvp or vjp: vmap commutes with them
    where every operand is batched (each one is, broadcast where it was not), and a jvp or vjp at run
    time must see a loop whose trip count is one number (that of the masked loop of every lane)."""
    size = batch_util.batch_size(values, dims)
    transforms = params["transforms"]
    num_vmaps = next((k for k, (kind, _, _) in enumerate(transforms) if kind != "vmap"), len(transforms))
    num_inputs = len(_base_avals(**{k: v for k, v in params.items()
                                    if k not in ("checkpoints", "transforms")})[0])
    spec = ("vmap", (True,) * num_inputs, size)
    batched = [batch_util.bdim_to(x, d, size, 0) for x, d in zip(values, dims, strict=True)]
    outs = bind(while_reverse_p, *batched, **{**params, "transforms": (*transforms[:num_vmaps], spec,
                                                                       *transforms[num_vmaps:])})
    return outs, [0] * len(outs)


def _transformed_partial_eval(trace, unknowns, args, params):
    """Under linearize (the last transform a jvp whose tangents alone are unknown): the outputs
    come from the while_reverse it differentiates, known, and their tangents from the whole one."""
    kind, nonzero, _ = params["transforms"][-1]
    num_primals = len(nonzero)
    if kind != "jvp" or any(unknowns[:num_primals]):
        return trace.unknown(while_reverse_p, args, params)
    inner = {**params, "transforms": params["transforms"][:-1]}
    known_outs = trace.known(while_reverse_p, list(args[:num_primals]), inner)
    unknown_outs = trace.unknown(while_reverse_p, args, params)
    return [*known_outs, *unknown_outs[len(known_outs):]]


def _dispatching(plain_rule, transformed_rule):
    """The rule of the plain while_reverse, or of a transformed one (transforms not empty)."""
    def rule(*args, transforms, **params):
        if transforms:
            return transformed_rule(*args, transforms=transforms, **params)
        return plain_rule(*args, **params)
    return rule


def _partial_eval(trace, unknowns, args, **params):
    if params["transforms"]:
        return _transformed_partial_eval(trace, unknowns, args, params)
    return _while_reverse_partial_eval(trace, unknowns, args, **params)


def _transformed_taylor(primals, series, **params):
    raise NotImplementedError("jet of a while_reverse with transforms (reverse mode of reverse mode through a "
                              "while_loop under jit): use jet of a jvp of grad, or jet outside jit")


while_reverse_p = Primitive(
    "while_reverse", params={"cond_jaxpr": SubJaxpr(), "body_jaxpr": SubJaxpr(), "bwd_jaxpr": SubJaxpr(),
                             "cond_nconsts": NON_NEGATIVE_INT, "body_nconsts": NON_NEGATIVE_INT,
                             "bwd_nconsts": NON_NEGATIVE_INT, "checkpoints": Optional(POSITIVE_INT),
                             "transforms": TupleOf(Tuple(OneOf(*TRANSFORM_KINDS),
                                                         TupleOf(BOOL, max_length=_MAX_OPERANDS), NON_NEGATIVE_INT),
                                                   max_length=64, description="a tuple of transformations "
                                                   "(kind, flags, batch size), innermost first")},
    abstract_eval=_dispatching(_while_reverse_abstract_eval, _transformed_abstract_eval),
    impl=_dispatching(_while_reverse_impl, _transformed_impl), multiple_results=True,
    jvp=_dispatching(_while_reverse_jvp, _transformed_jvp), partial_eval=_partial_eval,
    transpose=_dispatching(_while_reverse_transpose, _transformed_transpose),
    batch=_dispatching(_while_reverse_batch, _transformed_batch), dce=_while_reverse_dce,
    taylor=_dispatching(_while_reverse_taylor, _transformed_taylor))
