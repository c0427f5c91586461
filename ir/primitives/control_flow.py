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
from ir.primitive import BOOL, NON_NEGATIVE_INT, POSITIVE_INT, Primitive, SubJaxpr, TupleOf
from ir.primitives import ad_util, batch_util, call
from ir.primitives import elementwise as ew
from ir.primitives import structural
from ir.primitives.call import check_operands, derived, fill_zeros, merge_lists, nonzero_flags, transform
from ir.tracing import bind, get_aval

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
    transposed = [transpose_jaxpr(b, undefined, ct_nonzero, True) for b in branches]
    transposed_branches, consts = join_consts([(closed, consts) for closed, consts, _ in transposed])
    defined = [x for x, u in zip(operands, undefined) if not u]
    cts_in = iter(bind(cond_p, index, *consts, *defined, *(c for c in cts if type(c) is not Zero),
                       branches=transposed_branches))
    return [None, *(next(cts_in) if u else None for u in undefined)]


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
    body, consts = derived(jaxpr, ("scan transpose", c_undefined, xs_undefined, ys_nonzero, num_consts, num_carry),
                           lambda: _scan_transpose_body(jaxpr, c_undefined, xs_undefined, ys_nonzero, num_carry))
    residual_c = [x for x, u in zip(c, c_undefined) if not u]
    accumulators = [ad_util.zeros(x.aval) for x, u in zip(c, c_undefined) if u]
    ct_carry = [ad_util.zeros(a) if type(ct) is Zero else ct for ct, a in zip(ct_carry, carry_avals, strict=True)]
    residual_xs = [x for x, u in zip(xs, xs_undefined) if not u]
    outs = bind(scan_p, *consts, *residual_c, *accumulators, *ct_carry, *residual_xs,
                *(ct for ct in ct_ys if type(ct) is not Zero),
                **_params(body, len(consts) + len(residual_c), len(accumulators) + num_carry, length,
                          not reverse, unroll))
    ct_c, ct_init, ct_xs = iter(outs[:len(accumulators)]), outs[len(accumulators):len(accumulators) + num_carry], \
        iter(outs[len(accumulators) + num_carry:])
    return [*(next(ct_c) if u else None for u in c_undefined),
            *(ct if type(x) is UndefinedPrimal else None for x, ct in zip(carry, ct_init, strict=True)),
            *(next(ct_xs) if u else None for u in xs_undefined)]


def _scan_transpose_body(jaxpr, c_undefined, xs_undefined, ys_nonzero, num_carry):
    """(body, consts): (consts, residual consts | accumulators, carry cotangents |
    residual xs, nonzero ys cotangents) -> (accumulators + the linear consts'
    cotangents, the cotangents of the carry one iteration back | the linear xs'
    cotangents), from the body's transpose."""
    undefined = (*c_undefined, *(True,) * num_carry, *xs_undefined)
    transposed, consts, _ = transform("transpose_jaxpr")(jaxpr, undefined, (*(True,) * num_carry, *ys_nonzero), True)
    tj = transposed.jaxpr
    n_res_c, n_lin_c = c_undefined.count(False), c_undefined.count(True)
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
    return ClosedJaxpr(body, []), consts


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
