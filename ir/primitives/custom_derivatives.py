"""Custom derivative rules: `custom_jvp_call`, `custom_vjp_call` and `custom_lin`.

    custom_jvp_call[call_jaxpr=f jvp_jaxpr=j num_consts=C jvp_num_consts=J symbolic_zeros=S name=N]
        *consts *jvp_consts *args                         -> f(*consts, *args)
    custom_vjp_call[call_jaxpr=f fwd_jaxpr=fw bwd_jaxpr=bw num_consts=C fwd_num_consts=F
                    bwd_num_consts=B num_res=R name=N]
        *consts *fwd_consts *bwd_consts *args             -> f(*consts, *args)
    custom_lin[bwd_jaxpr=bw num_consts=B num_res=R name=N] *bwd_consts *residuals *tangents
        -> the output tangents of a custom_vjp function (linear in the tangents; its
           transpose is bwd, and forward mode through it is a TypeError, as in JAX)

Every function and rule is a closed sub-jaxpr without constants: what it closed
over is an explicit leading operand, so a printed program holds its rules too and,
parsed back, differentiates the same way (ARCHITECTURE, "Higher-order primitives").

- `j` takes (*jvp_consts, *args, *tangents of args) and returns (*outputs, *their
  tangents): the user's rule, staged with every tangent given (zeros included:
  JAX's rules may be handed SymbolicZeros, never must). The JVP of a custom_jvp_call
  is a call of `j`, so reverse mode linearizes the rule's output and transposes it,
  and second order differentiates the rule. Tangents of `consts` (values `f` closed
  over) add `f`'s own JVP in their direction; the rule's closure needs none (the
  outputs do not depend on it).
- `fw` takes (*fwd_consts, *args) and returns (*outputs, *residuals); `bw` takes
  (*bwd_consts, *residuals, *output cotangents) and returns one cotangent per arg
  (zeros where the user's bwd gave None). The JVP of a custom_vjp_call runs `fw`
  and applies `custom_lin` to the tangents; transposing that runs `bw`.
- Under vmap every operand is broadcast to batched and each sub-jaxpr batched whole,
  so the rules stay consistent with their function (an unbatched operand's
  cotangent is summed by the broadcast's transpose).
- jet of either evaluates the jet of `f`, ignoring the rule, as JAX's jet does.
"""
from __future__ import annotations

from ir.markers import UndefinedPrimal, Zero, tangent_aval
from ir.primitive import BOOL, NON_NEGATIVE_INT, STR, Primitive, SubJaxpr
from ir.primitives import ad_util, batch_util
from ir.primitives.call import check_operands, jit_call, nonzero_flags, transform
from ir.primitives.control_flow import split_list
from ir.tracing import bind

FORWARD_MODE_ERROR = ("can't apply forward-mode autodiff (jvp) to a custom_vjp function ({name}): its rule "
                      "defines reverse mode only. Use ft.grad/ft.vjp, or give it a custom_jvp rule instead")


def _tangent_avals(avals):
    return [tangent_aval(a) for a in avals]


def _same_types(a, b):
    return len(a) == len(b) and all(x.shape == y.shape and x.dtype == y.dtype for x, y in zip(a, b))


def _listed(avals):
    return ", ".join(a.str_short() for a in avals)


def _all_batched(values, dims):
    """Every value with its batch axis first (broadcast where it had none), and the size."""
    size = batch_util.batch_size(values, dims)
    return [batch_util.bdim_to(x, d, size, 0) for x, d in zip(values, dims, strict=True)], size


def _batched_call_form(closed, size):
    """(the batched jaxpr, its consts): every input and output batched along axis 0."""
    n_in, n_out = len(closed.in_avals), len(closed.out_avals)
    batched, consts, _ = transform("batch_jaxpr")(closed, (True,) * n_in, size, (True,) * n_out)
    return batched, consts


def _all_used_dce(used_outputs, eqn, dce_jaxpr):
    """Kept whole while any output is used: the rules read every operand."""
    return [True] * len(eqn.invars), eqn


# -------------------- custom_jvp_call --------------------

def _custom_jvp_abstract_eval(*avals, call_jaxpr, jvp_jaxpr, num_consts, jvp_num_consts, symbolic_zeros, name):
    what = f"custom_jvp_call of {name}"
    if len(avals) < num_consts + jvp_num_consts:
        raise TypeError(f"{what}: {len(avals)} operands, fewer than its {num_consts + jvp_num_consts} constants")
    consts, jvp_consts, args = split_list(avals, num_consts, jvp_num_consts)
    check_operands(what, [*consts, *args], call_jaxpr.in_avals)
    outs = call_jaxpr.out_avals
    check_operands(f"{what} (its jvp rule)", [*jvp_consts, *args, *_tangent_avals(args)], jvp_jaxpr.in_avals)
    wanted = [*outs, *_tangent_avals(outs)]
    if not _same_types(jvp_jaxpr.out_avals, wanted):
        raise TypeError(f"{what}: its jvp rule returns ({_listed(jvp_jaxpr.out_avals)}), "
                        f"but the function's outputs and their tangents are ({_listed(wanted)})")
    return outs


def _custom_jvp_impl(*operands, call_jaxpr, num_consts, jvp_num_consts, **_):
    consts, _jvp_consts, args = split_list(operands, num_consts, jvp_num_consts)
    return transform("evaluate")(call_jaxpr, [*consts, *args])


def _custom_jvp_jvp(primals, tangents, *, call_jaxpr, jvp_jaxpr, num_consts, jvp_num_consts, symbolic_zeros,
                    name):
    """The rule, called on the primals and the (materialized) tangents of the args."""
    consts, jvp_consts, args = split_list(primals, num_consts, jvp_num_consts)
    const_tangents, _, arg_tangents = split_list(tangents, num_consts, jvp_num_consts)
    outs = jit_call(jvp_jaxpr, [*jvp_consts, *args, *map(ad_util.instantiate, arg_tangents)], f"jvp_of_{name}")
    num_out = len(call_jaxpr.out_avals)
    primals_out, tangents_out = list(outs[:num_out]), list(outs[num_out:])
    tangents_out = [Zero(tangent_aval(a)) if a.dtype.kind not in "fc" else t
                    for t, a in zip(tangents_out, call_jaxpr.out_avals, strict=True)]
    if any(nonzero_flags(const_tangents)):  # f closed over a differentiated value: f's JVP in its direction
        nonzero = (*nonzero_flags(const_tangents), *(False,) * len(args))
        jvp, jvp_c, out_nonzero = transform("jvp_jaxpr")(call_jaxpr, nonzero, (False,) * num_out)
        extra = iter(jit_call(jvp, [*jvp_c, *consts, *args, *(t for t in const_tangents if type(t) is not Zero)],
                              f"jvp_of_{name}_closure")[num_out:])
        tangents_out = [ad_util.add_tangents(t, next(extra)) if nz else t
                        for t, nz in zip(tangents_out, out_nonzero, strict=True)]
    return primals_out, tangents_out


def _custom_jvp_transpose(cts, *operands, call_jaxpr, num_consts, jvp_num_consts, name, **_):
    """The transpose of the function itself, where it is linear (a rule that applies the
    function to the tangents, `f.defjvp(lambda p, t: (f(*p), f(*t)))`, puts it in a linear jaxpr)."""
    consts, jvp_consts, args = split_list(operands, num_consts, jvp_num_consts)
    fun_operands = [*consts, *args]
    undefined = tuple(type(x) is UndefinedPrimal for x in fun_operands)
    transposed, t_consts, in_nonzero = transform("transpose_jaxpr")(call_jaxpr, undefined, nonzero_flags(cts), False)
    defined = [x for x in fun_operands if type(x) is not UndefinedPrimal]
    cts_in = iter(jit_call(transposed, [*t_consts, *defined, *(c for c in cts if type(c) is not Zero)],
                           f"transpose_of_{name}") if transposed.jaxpr.outvars else [])
    nonzero = iter(in_nonzero)
    fun_cts = [None if type(x) is not UndefinedPrimal else (next(cts_in) if next(nonzero) else Zero(x.aval))
               for x in fun_operands]
    return [*fun_cts[:num_consts], *(None for _ in jvp_consts), *fun_cts[num_consts:]]


def _custom_jvp_batch(values, dims, *, call_jaxpr, jvp_jaxpr, num_consts, jvp_num_consts, symbolic_zeros, name):
    values, size = _all_batched(values, dims)
    consts, jvp_consts, args = split_list(values, num_consts, jvp_num_consts)
    fun, fun_c = _batched_call_form(call_jaxpr, size)
    jvp, jvp_c = _batched_call_form(jvp_jaxpr, size)
    outs = bind(custom_jvp_call_p, *fun_c, *consts, *jvp_c, *jvp_consts, *args, call_jaxpr=fun, jvp_jaxpr=jvp,
                num_consts=len(fun_c) + num_consts, jvp_num_consts=len(jvp_c) + jvp_num_consts,
                symbolic_zeros=symbolic_zeros, name=name)
    return outs, [0] * len(outs)


def _custom_jvp_taylor(primals, series, *, call_jaxpr, num_consts, jvp_num_consts, name, **_):
    consts, _c, args = split_list(primals, num_consts, jvp_num_consts)
    const_series, _s, arg_series = split_list(series, num_consts, jvp_num_consts)
    return transform("jet")(call_jaxpr, [*consts, *args], [*const_series, *arg_series], name)


def _custom_jvp_dce(used_outputs, eqn, dce_jaxpr):
    """Unused outputs leave the function and the rule (their tangents too), and
    the operands that neither reads then."""
    p = eqn.params
    num_consts, jvp_num_consts = p["num_consts"], p["jvp_num_consts"]
    used_outputs = list(used_outputs)
    fun, fun_used = dce_jaxpr(p["call_jaxpr"], used_outputs)
    jvp, jvp_used = dce_jaxpr(p["jvp_jaxpr"], used_outputs * 2)
    jc_used, arg_used, arg_t_used = split_list(jvp_used, jvp_num_consts, len(eqn.invars) - num_consts - jvp_num_consts)
    c_used, arg_used_f = split_list(fun_used, num_consts)
    args_kept = [a or b or c for a, b, c in zip(arg_used, arg_used_f, arg_t_used, strict=True)]
    fun, _ = dce_jaxpr(p["call_jaxpr"], used_outputs, prune_invars=[*c_used, *args_kept])
    jvp, _ = dce_jaxpr(p["jvp_jaxpr"], used_outputs * 2, prune_invars=[*jc_used, *args_kept, *args_kept])
    used_inputs = [*c_used, *jc_used, *args_kept]
    if fun is p["call_jaxpr"] and jvp is p["jvp_jaxpr"]:
        return used_inputs, eqn
    return used_inputs, eqn.replace(
        invars=[x for x, u in zip(eqn.invars, used_inputs, strict=True) if u],
        outvars=[v for v, u in zip(eqn.outvars, used_outputs, strict=True) if u],
        params={**p, "call_jaxpr": fun, "jvp_jaxpr": jvp, "num_consts": sum(c_used), "jvp_num_consts": sum(jc_used)})


custom_jvp_call_p = Primitive(
    "custom_jvp_call",
    params={"call_jaxpr": SubJaxpr(), "jvp_jaxpr": SubJaxpr(), "num_consts": NON_NEGATIVE_INT,
            "jvp_num_consts": NON_NEGATIVE_INT, "symbolic_zeros": BOOL, "name": STR},
    abstract_eval=_custom_jvp_abstract_eval, impl=_custom_jvp_impl, multiple_results=True,
    jvp=_custom_jvp_jvp, transpose=_custom_jvp_transpose, batch=_custom_jvp_batch, taylor=_custom_jvp_taylor,
    dce=_custom_jvp_dce)


def custom_jvp_call(call_jaxpr, jvp_jaxpr, consts, jvp_consts, args, name, symbolic_zeros=False):
    """Bind custom_jvp_call (both jaxprs in call form: their constants are in the lists)."""
    return bind(custom_jvp_call_p, *consts, *jvp_consts, *args, call_jaxpr=call_jaxpr, jvp_jaxpr=jvp_jaxpr,
                num_consts=len(consts), jvp_num_consts=len(jvp_consts), symbolic_zeros=symbolic_zeros, name=name)


# -------------------- custom_vjp_call --------------------

def _vjp_sections(operands, num_consts, fwd_num_consts, bwd_num_consts):
    return split_list(operands, num_consts, fwd_num_consts, bwd_num_consts)


def _custom_vjp_abstract_eval(*avals, call_jaxpr, fwd_jaxpr, bwd_jaxpr, num_consts, fwd_num_consts, bwd_num_consts,
                              num_res, name):
    what = f"custom_vjp_call of {name}"
    if len(avals) < num_consts + fwd_num_consts + bwd_num_consts:
        raise TypeError(f"{what}: {len(avals)} operands, fewer than its "
                        f"{num_consts + fwd_num_consts + bwd_num_consts} constants")
    consts, fwd_consts, bwd_consts, args = _vjp_sections(avals, num_consts, fwd_num_consts, bwd_num_consts)
    check_operands(what, [*consts, *args], call_jaxpr.in_avals)
    outs = call_jaxpr.out_avals
    check_operands(f"{what} (its fwd)", [*fwd_consts, *args], fwd_jaxpr.in_avals)
    fwd_outs = fwd_jaxpr.out_avals
    if len(fwd_outs) != len(outs) + num_res or not _same_types(fwd_outs[:len(outs)], outs):
        raise TypeError(f"{what}: its fwd returns ({_listed(fwd_outs)}), but the function's {len(outs)} outputs "
                        f"({_listed(outs)}) and {num_res} residuals were expected")
    residuals = fwd_outs[len(outs):]
    check_operands(f"{what} (its bwd)", [*bwd_consts, *residuals, *_tangent_avals(outs)], bwd_jaxpr.in_avals)
    if not _same_types(bwd_jaxpr.out_avals, _tangent_avals(args)):
        raise TypeError(f"{what}: its bwd returns ({_listed(bwd_jaxpr.out_avals)}), but the cotangents of the "
                        f"arguments are ({_listed(_tangent_avals(args))})")
    return outs


def _custom_vjp_impl(*operands, call_jaxpr, num_consts, fwd_num_consts, bwd_num_consts, **_):
    consts, _f, _b, args = _vjp_sections(operands, num_consts, fwd_num_consts, bwd_num_consts)
    return transform("evaluate")(call_jaxpr, [*consts, *args])


def _custom_vjp_jvp(primals, tangents, *, call_jaxpr, fwd_jaxpr, bwd_jaxpr, num_consts, fwd_num_consts,
                    bwd_num_consts, num_res, name):
    """fwd on the primals; the tangents go through custom_lin, whose transpose is bwd."""
    sections = (num_consts, fwd_num_consts, bwd_num_consts)
    consts, fwd_consts, bwd_consts, args = _vjp_sections(primals, *sections)
    const_t, fwd_t, _, arg_tangents = _vjp_sections(tangents, *sections)
    if any(nonzero_flags([*const_t, *fwd_t])):
        raise TypeError(f"Detected differentiation of a custom_vjp function ({name}) with respect to a closed-over "
                        "value. That isn't supported because the custom VJP rule only specifies how to "
                        "differentiate the custom_vjp function with respect to explicit input parameters: pass "
                        "the value as an argument instead")
    outs = jit_call(fwd_jaxpr, [*fwd_consts, *args], f"fwd_of_{name}")
    num_out = len(call_jaxpr.out_avals)
    primals_out, residuals = outs[:num_out], outs[num_out:]
    if not any(nonzero_flags(arg_tangents)):
        return primals_out, [Zero(tangent_aval(a)) for a in call_jaxpr.out_avals]
    tangents_out = bind(custom_lin_p, *bwd_consts, *residuals, *map(ad_util.instantiate, arg_tangents),
                        bwd_jaxpr=bwd_jaxpr, num_consts=bwd_num_consts, num_res=num_res, name=name)
    tangents_out = [Zero(tangent_aval(a)) if a.dtype.kind not in "fc" else t
                    for t, a in zip(tangents_out, call_jaxpr.out_avals, strict=True)]
    return primals_out, tangents_out


def _custom_vjp_batch(values, dims, *, call_jaxpr, fwd_jaxpr, bwd_jaxpr, num_consts, fwd_num_consts, bwd_num_consts,
                      num_res, name):
    values, size = _all_batched(values, dims)
    consts, fwd_consts, bwd_consts, args = _vjp_sections(values, num_consts, fwd_num_consts, bwd_num_consts)
    fun, fun_c = _batched_call_form(call_jaxpr, size)
    fwd, fwd_c = _batched_call_form(fwd_jaxpr, size)
    bwd, bwd_c = _batched_call_form(bwd_jaxpr, size)
    outs = bind(custom_vjp_call_p, *fun_c, *consts, *fwd_c, *fwd_consts, *bwd_c, *bwd_consts, *args,
                call_jaxpr=fun, fwd_jaxpr=fwd, bwd_jaxpr=bwd, num_consts=len(fun_c) + num_consts,
                fwd_num_consts=len(fwd_c) + fwd_num_consts, bwd_num_consts=len(bwd_c) + bwd_num_consts,
                num_res=num_res, name=name)
    return outs, [0] * len(outs)


def _custom_vjp_taylor(primals, series, *, call_jaxpr, num_consts, fwd_num_consts, bwd_num_consts, name, **_):
    """NB: JAX's jet, too, evaluates the function and ignores its custom_vjp rule."""
    sections = (num_consts, fwd_num_consts, bwd_num_consts)
    consts, _f, _b, args = _vjp_sections(primals, *sections)
    const_series, _fs, _bs, arg_series = _vjp_sections(series, *sections)
    return transform("jet")(call_jaxpr, [*consts, *args], [*const_series, *arg_series], name)


custom_vjp_call_p = Primitive(
    "custom_vjp_call",
    params={"call_jaxpr": SubJaxpr(), "fwd_jaxpr": SubJaxpr(), "bwd_jaxpr": SubJaxpr(),
            "num_consts": NON_NEGATIVE_INT, "fwd_num_consts": NON_NEGATIVE_INT, "bwd_num_consts": NON_NEGATIVE_INT,
            "num_res": NON_NEGATIVE_INT, "name": STR},
    abstract_eval=_custom_vjp_abstract_eval, impl=_custom_vjp_impl, multiple_results=True,
    jvp=_custom_vjp_jvp, batch=_custom_vjp_batch, taylor=_custom_vjp_taylor, dce=_all_used_dce)


def custom_vjp_call(call_jaxpr, fwd_jaxpr, bwd_jaxpr, consts, fwd_consts, bwd_consts, args, num_res, name):
    """Bind custom_vjp_call (every jaxpr in call form: its constants are in the lists)."""
    return bind(custom_vjp_call_p, *consts, *fwd_consts, *bwd_consts, *args, call_jaxpr=call_jaxpr,
                fwd_jaxpr=fwd_jaxpr, bwd_jaxpr=bwd_jaxpr, num_consts=len(consts), fwd_num_consts=len(fwd_consts),
                bwd_num_consts=len(bwd_consts), num_res=num_res, name=name)


# -------------------- custom_lin: a custom_vjp function's linear map --------------------

def _custom_lin_abstract_eval(*avals, bwd_jaxpr, num_consts, num_res, name):
    what = f"custom_lin of {name}"
    if len(avals) < num_consts + num_res:
        raise TypeError(f"{what}: {len(avals)} operands, fewer than its {num_consts} constants "
                        f"and {num_res} residuals")
    consts, residuals, tangents = split_list(avals, num_consts, num_res)
    if not _same_types(bwd_jaxpr.out_avals, tangents):
        raise TypeError(f"{what}: its bwd returns cotangents ({_listed(bwd_jaxpr.out_avals)}) for tangents "
                        f"({_listed(tangents)})")
    cts = bwd_jaxpr.in_avals[num_consts + num_res:]
    check_operands(f"{what} (its bwd)", [*consts, *residuals, *cts], bwd_jaxpr.in_avals)
    return list(cts)


def _forward_mode_error(*args, name, **params):
    raise TypeError(FORWARD_MODE_ERROR.format(name=name))


def _custom_lin_jvp(primals, tangents, *, name, **params):
    _forward_mode_error(name=name)


def _custom_lin_transpose(cts, *operands, bwd_jaxpr, num_consts, num_res, name):
    """bwd on the residuals and the output cotangents: the cotangents of the tangents."""
    consts, residuals, tangents = split_list(operands, num_consts, num_res)
    if any(type(x) is UndefinedPrimal for x in (*consts, *residuals)):
        raise ValueError(f"custom_lin of {name} is linear in its tangents only, not in its residuals")
    cts = [ad_util.instantiate(ct) for ct in cts]
    cts_in = jit_call(bwd_jaxpr, [*consts, *residuals, *cts], f"bwd_of_{name}")
    return [*(None for _ in (*consts, *residuals)),
            *(ct if type(t) is UndefinedPrimal else None for t, ct in zip(tangents, cts_in, strict=True))]


def _custom_lin_batch(values, dims, *, bwd_jaxpr, num_consts, num_res, name):
    values, size = _all_batched(values, dims)
    consts, rest = split_list(values, num_consts)
    bwd, bwd_c = _batched_call_form(bwd_jaxpr, size)
    outs = bind(custom_lin_p, *bwd_c, *consts, *rest, bwd_jaxpr=bwd, num_consts=len(bwd_c) + num_consts,
                num_res=num_res, name=name)
    return outs, [0] * len(outs)


custom_lin_p = Primitive(
    "custom_lin", params={"bwd_jaxpr": SubJaxpr(), "num_consts": NON_NEGATIVE_INT, "num_res": NON_NEGATIVE_INT,
                          "name": STR},
    abstract_eval=_custom_lin_abstract_eval, impl=_forward_mode_error, multiple_results=True,
    jvp=_custom_lin_jvp, transpose=_custom_lin_transpose, batch=_custom_lin_batch,
    taylor=lambda primals, series, *, name, **params: _forward_mode_error(name=name), dce=_all_used_dce)
