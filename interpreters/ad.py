"""Automatic differentiation: forward mode (JVP), linearization, and transposition.

Forward mode: a `JVPTrace` carries (primal, tangent) pairs and applies each
primitive's `jvp` rule. The rule runs one level out, in the trace's *rule
trace*: for `jvp` that is the parent trace, so primal and tangent are both
computed there (concretely in eager mode, staged when nested).

Reverse mode = linearize + transpose. To linearize, the rule trace is a
`TangentTrace`: a staging trace that records an equation only when one of
its operands is a tangent (one of its own tracers) and hands every other
equation to the parent. So known and unknown are split by data dependence:
primal work runs in the parent (at once, in eager mode: the "online" path,
forward pass computed once), and the tangent work becomes a linear jaxpr
whose constvars are the residuals it needs. `backward_pass` then walks that
jaxpr in reverse, applying each primitive's `transpose` rule.

A primitive holding sub-jaxprs (jit_call, cond, scan) is split by its
`partial_eval` rule when it meets known and unknown operands, and its rules
transform the sub-jaxprs with `jvp_jaxpr`, `partial_eval_jaxpr` and
`transpose_jaxpr` (end of this module), which run these same interpreters
over the sub-jaxpr inside a staging trace.
"""
from __future__ import annotations

from ir import config
from interpreters.checkpointing import LoopRecord
from interpreters.eval import eval_jaxpr
from ir.core import ClosedJaxpr, Jaxpr, Literal
from ir.markers import UndefinedPrimal, Zero, tangent_aval
from ir.passes.dce import dce
from ir.primitives import ad_util, call, linalg, reductions, structural
from ir.primitives import elementwise as ew
from ir.tracing import (StagingTrace, StagingTracer, Trace, Tracer, _current_trace, bind, bind_in, compute,
                        get_aval, stage, trace_context)
from ir.tracing import staged_as


class JVPTracer(Tracer):
    # `aval` is a plain attribute (it shadows Tracer's property): asked for on every operation
    __slots__ = ("primal", "tangent", "aval")

    def __init__(self, trace, primal, tangent):
        self._trace = trace
        self.primal = primal
        self.tangent = tangent
        self.aval = get_aval(primal)

    def concrete_value(self):
        primal = self.primal
        return primal.concrete_value() if isinstance(primal, Tracer) else primal


class JVPTrace(Trace):
    """Applies `jvp` rules; `rule_trace` is where they run (parent, or a TangentTrace)."""

    def __init__(self, rule_trace=None):
        super().__init__()
        self.rule_trace = self.parent if rule_trace is None else rule_trace

    def process_primitive(self, prim, args, params):
        primals, tangents, any_tangent = [], [], False
        for x in args:
            if isinstance(x, JVPTracer) and x._trace is self:
                primals.append(x.primal)
                tangents.append(x.tangent)
                any_tangent = True
            else:
                if isinstance(x, Tracer):
                    self.check_alive(x)
                primals.append(x)
                tangents.append(None)
        if not any_tangent:  # nothing here depends on what we differentiate: no tangent work
            return bind_in(self.parent, prim, primals, params)
        for i, t in enumerate(tangents):
            if t is None:
                tangents[i] = Zero(tangent_aval(get_aval(primals[i])))
        token = _current_trace.set(self.rule_trace)
        try:
            primal_out, tangent_out = (prim.jvp or prim.rule("jvp"))(primals, tangents, **params)
        finally:
            _current_trace.reset(token)
        if prim.multiple_results:
            return [self.wrap(p, t) for p, t in zip(primal_out, tangent_out, strict=True)]
        return self.wrap(primal_out, tangent_out)

    def wrap(self, primal, tangent):
        # a value with a zero tangent leaves the trace: later operations see a constant
        return primal if type(tangent) is Zero else JVPTracer(self, primal, tangent)


class TangentTrace(StagingTrace):
    """Stages equations that touch a tangent; computes everything else in the parent.

    It is a partial evaluator: values of the parent are known, its own tracers
    unknown. A primitive holding sub-jaxprs (jit_call, cond, scan) applied to
    both is split by its `partial_eval` rule into a known part (`known`) and
    an unknown one (`unknown`); any other equation with an unknown operand is
    staged whole, its known operands becoming residuals."""

    def process_primitive(self, prim, args, params):
        for x in args:
            if isinstance(x, StagingTracer) and x._trace is self:
                if prim.partial_eval is not None:
                    unknowns = [isinstance(y, StagingTracer) and y._trace is self for y in args]
                    if not all(unknowns):
                        return prim.partial_eval(self, unknowns, args, **params)
                return super().process_primitive(prim, args, params)
        return self.known(prim, args, params)

    def known(self, prim, args, params):
        """`prim` applied one level out: at once in eager mode, else in the parent."""
        if self.parent is None:  # eager: compute the primal value right here
            return compute(prim, args, params)
        return bind_in(self.parent, prim, args, params)

    def unknown(self, prim, args, params):
        """`prim` staged here, whatever its operands."""
        return StagingTrace.process_primitive(self, prim, args, params)


# -------------------- forward mode --------------------

def jvp_flat(fun, primals, tangents):
    """(primals_out, tangents_out) of flat `fun` at `primals` along `tangents`
    (a tangent may be a Zero). Output tangents may be Zero."""
    with trace_context(JVPTrace()) as trace:
        tracers = [x if type(t) is Zero else JVPTracer(trace, x, t) for x, t in zip(primals, tangents, strict=True)]
        outs = fun(*tracers)
        return _unpack(trace, outs)


def _unpack(trace, outs):
    primals_out, tangents_out = [], []
    for out in outs:
        if isinstance(out, JVPTracer) and out._trace is trace:
            primals_out.append(out.primal)
            tangents_out.append(out.tangent)
        else:
            primals_out.append(out)
            tangents_out.append(Zero(tangent_aval(get_aval(out))))
    return primals_out, tangents_out


# -------------------- linearize --------------------

class LinearFunction:
    """The linear map a function's linearization leaves: a jaxpr over tangents,
    with residuals (primal values it needs) bound to its constvars."""

    def __init__(self, jaxpr: Jaxpr, residuals, in_avals, out_avals):
        self.jaxpr, self.residuals = jaxpr, residuals
        self.in_avals, self.out_avals = in_avals, out_avals

    def __call__(self, *tangents):
        """Forward: tangents in -> tangents out (Zero where independent)."""
        return eval_jaxpr(self.jaxpr, self.residuals, *[ad_util.instantiate(t) for t in tangents])

    @staged_as("backward")
    def transpose(self, cts_out):
        """Backward: output cotangents -> input cotangents (Zero where independent).
        A map from one scalar to one whose forward evaluation is its transpose
        (see `forward_is_transpose`) runs forward on the cotangent."""
        if self.runs_forward_as_transpose() and type(cts_out[0]) is not Zero:
            return [self(*cts_out)[0]]
        return backward_pass(self.jaxpr, self.residuals, cts_out, all_linear=True)

    def runs_forward_as_transpose(self):
        jaxpr = self.jaxpr
        if len(jaxpr.invars) != 1 or len(jaxpr.outvars) != 1:
            return False
        if jaxpr.invars[0].aval.shape != () or jaxpr.outvars[0].aval.shape != ():
            return False
        return forward_is_transpose(jaxpr) is not None


# Linear primitives (in the operands a linear jaxpr feeds them) under which forward
# evaluation and transposition compute one sum of products, bracketed differently:
# every product keeps all its factors, and no zero is added or dropped.
_SUMS_OF_PRODUCTS = frozenset({
    ew.mul_p, ew.div_p, ew.neg_p, ew.add_p, ew.sub_p, ew.convert_element_type_p,
    structural.broadcast_in_dim_p, structural.reshape_p, structural.squeeze_p, structural.transpose_p,
    structural.rev_p, reductions.reduce_sum_p, linalg.dot_general_p})


def forward_is_transpose(jaxpr: Jaxpr):
    """The dtype of a linear jaxpr whose forward evaluation stands for its
    transpose, or None when it must be transposed.

    A linear map from one real scalar to one is multiplication by a number c,
    a 1x1 matrix: its own transpose. ftrans evaluates such a map forward on
    the cotangent wherever its equations are sums of products (`_SUMS_OF_PRODUCTS`,
    and jit_calls of them) in one dtype, in every mode: eager (the tape in
    ad_eager.py does the same per primitive), unstaged and staged, so eager and
    jitted derivatives compute the same values. Nested grads of scalar
    functions are then forward mode's programs, which share their work under
    CSE (the 8th grad of tanh optimizes to 79 equations; transposed at every
    order, to 875).

    Forward and transposed evaluation both compute c*t as a sum over the
    paths through the jaxpr of the product of the factors along each path
    (residuals; 1/r for a division), bracketed differently. In real arithmetic
    they are equal. In IEEE arithmetic they differ by rounding, and also where
    (a) a partial product or sum overflows to inf or underflows to 0 in one
    bracketing and not in the other (((t*1e-300)*1e300)*1e300 is 1e300*t,
    ((t*1e300)*1e300)*1e-300 is inf), (b) terms cancel exactly: forward gives the sign
    of what multiplies the zero ((a - a)*r is -0.0 for r < 0), transposed
    +0.0 (a*r - a*r), and (c) infinities meet in a sum: (1 - 1 + 2)*inf is inf,
    inf - inf + 2*inf is nan. (A factor that is exactly 0, inf or nan gives the
    same result in every bracketing.) These are differences from strict
    reverse mode (JAX's grad), never between eager and jitted ftrans.

    Excluded, because transposing them adds zeros that forward mode never
    computes with, or the reverse: select_n (its transpose sends a zero
    cotangent into the unselected case, where 0 * (1/x) is nan at x = 0:
    JAX's grad of where(x > 0, log(x), 0.0) is nan at 0, and so is ftrans's),
    slice and pad (zeros for the elements cut off or padded), concatenate (its
    jvp fills zero tangents in), gather and the scatters, and any primitive
    not listed. (One dtype throughout: the two orders of evaluation round
    differently, which must stay at that dtype's precision, not a narrower
    intermediate's.)"""
    dtypes = {v.aval.dtype for v in jaxpr.invars}
    pending = [jaxpr]
    while pending:
        for eqn in pending.pop().eqns:
            if eqn.primitive is call.jit_call_p:
                pending.append(eqn.params["jaxpr"].jaxpr)
            elif eqn.primitive not in _SUMS_OF_PRODUCTS:
                return None
            dtypes.update(v.aval.dtype for v in eqn.outvars)
    if len(dtypes) != 1:
        return None
    (dtype,) = dtypes
    return dtype if dtype.kind in "fc" else None


@staged_as("forward")
def linearize_flat(fun, primals, wrt):
    """Run flat `fun` once; return (primals_out, LinearFunction over the inputs in `wrt`).

    `wrt[i]` says whether input i is differentiated; the others are constants.
    """
    tangent_trace = TangentTrace()
    trace = JVPTrace(rule_trace=tangent_trace)
    token = _current_trace.set(trace)  # NB: not trace_context(): this runs on every eager grad call
    try:
        tangent_in = [tangent_trace.new_arg(tangent_aval(get_aval(x))) if w else None
                      for x, w in zip(primals, wrt, strict=True)]
        tracers = [JVPTracer(trace, x, t) if w else x
                   for x, t, w in zip(primals, tangent_in, wrt, strict=True)]
        primals_out, tangents_out = _unpack(trace, fun(*tracers))
        out_atoms = [None if type(t) is Zero else tangent_trace.to_atom(t) for t in tangents_out]
    finally:
        _current_trace.reset(token)
        trace.alive = tangent_trace.alive = False
    jaxpr = Jaxpr(tangent_trace.constvars, tangent_trace.invars, tangent_trace.eqns,
                  [a for a in out_atoms if a is not None])
    if config.debug:
        from ir.check import check
        check(jaxpr)
    linear = LinearFunction(jaxpr, tangent_trace.consts, [t.aval for t in tangent_in if t is not None],
                            [t.aval for t in tangents_out])
    linear.nonzero_outputs = [a is not None for a in out_atoms]
    return primals_out, linear


# -------------------- transpose --------------------

def backward_pass(jaxpr: Jaxpr, residuals, cts_out, all_linear=False):
    """Cotangents of `jaxpr`'s inputs (its invars are the linear inputs) from
    those of its outputs. `cts_out` lines up with `jaxpr.outvars`; Zero allowed.

    Equations with no linear input (residual arithmetic) run forward first;
    `all_linear` says there are none (true of what linearize_flat records).
    """
    primal_env = dict(zip(jaxpr.constvars, residuals, strict=True))
    if all_linear:
        linear_eqns = jaxpr.eqns
    else:
        linear_eqns = _run_nonlinear_eqns(jaxpr, primal_env)

    ct_env = {}
    for var, ct in zip(jaxpr.outvars, cts_out, strict=True):
        if type(var) is not Literal and var not in primal_env:
            _accumulate(ct_env, var, ct)
    for eqn in reversed(linear_eqns):
        prim = eqn.primitive
        if prim.multiple_results:
            cts = [ct_env.pop(v, None) for v in eqn.outvars]
            if all(ct is None for ct in cts):
                continue
            ct = [Zero(v.aval) if c is None else c for v, c in zip(eqn.outvars, cts)]
        else:
            ct = ct_env.pop(eqn.outvars[0], None)
            if ct is None:
                continue
        invals = []
        for x in eqn.invars:
            if type(x) is Literal:
                invals.append(x.value)
            else:
                value = primal_env.get(x, _UNDEFINED)
                invals.append(UndefinedPrimal(x.aval) if value is _UNDEFINED else value)
        cts_in = (prim.transpose or prim.rule("transpose"))(ct, *invals, **eqn.params)
        for x, inval, ct_in in zip(eqn.invars, invals, cts_in, strict=True):
            if type(inval) is UndefinedPrimal and ct_in is not None and type(ct_in) is not Zero:
                _accumulate(ct_env, x, ct_in)
    return [ct_env.get(v, Zero(v.aval)) for v in jaxpr.invars]


def _accumulate(ct_env, var, ct):
    if ct is None or type(ct) is Zero:
        return
    previous = ct_env.get(var)
    ct_env[var] = ct if previous is None else ad_util.add_tangents(previous, ct)


_UNDEFINED = object()


def _run_nonlinear_eqns(jaxpr, primal_env):
    """Evaluate, into primal_env, the equations that no linear input reaches;
    return the others (the linear ones), in order."""
    linear = set(jaxpr.invars)
    linear_eqns = []
    for eqn in jaxpr.eqns:
        if any(type(x) is not Literal and x in linear for x in eqn.invars):
            linear.update(eqn.outvars)
            linear_eqns.append(eqn)
            continue
        outs = bind(eqn.primitive, *[x.value if type(x) is Literal else primal_env[x] for x in eqn.invars],
                    **eqn.params)
        for var, value in zip(eqn.outvars, outs if eqn.primitive.multiple_results else [outs], strict=True):
            primal_env[var] = value
    return linear_eqns


# -------------------- jaxpr -> jaxpr --------------------
# Each is "evaluate the jaxpr inside the transformation inside a staging trace",
# memoized with call.derived on (sub-jaxpr, transformation, flags): the rules of
# jit_call, cond and scan (ir/primitives) reach them through call.SUBJAXPR_TRANSFORMS.

def jvp_jaxpr(closed: ClosedJaxpr, nonzero, instantiate):
    """(jvp, consts, out_nonzero): see call.SUBJAXPR_TRANSFORMS."""
    nonzero, instantiate = tuple(nonzero), tuple(instantiate)
    return call.derived(closed, ("jvp_jaxpr", nonzero, instantiate), lambda: _jvp_jaxpr(closed, nonzero, instantiate))


def _jvp_jaxpr(closed, nonzero, instantiate):
    in_avals, out_nonzero = closed.in_avals, []

    def jvp_of_jaxpr(*args):
        primals, tangents = args[:len(in_avals)], call.fill_zeros(in_avals, nonzero, args[len(in_avals):])
        outs, tangents_out = jvp_flat(lambda *xs: eval_jaxpr(closed.jaxpr, closed.consts, *xs), primals, tangents)
        kept = [type(t) is not Zero or (inst and t.aval.dtype.kind in "fc")
                for t, inst in zip(tangents_out, instantiate, strict=True)]
        out_nonzero.extend(kept)
        return [*outs, *(ad_util.instantiate(t) for t, k in zip(tangents_out, kept) if k)]

    tangent_avals = [tangent_aval(a) for a, nz in zip(in_avals, nonzero, strict=True) if nz]
    return (*call.call_form(stage(jvp_of_jaxpr, [*in_avals, *tangent_avals])), out_nonzero)


def partial_eval_jaxpr(closed: ClosedJaxpr, unknowns, instantiate):
    """(known, known_consts, unknown, out_unknowns, num_residuals): see
    call.SUBJAXPR_TRANSFORMS. The jaxpr is evaluated in a TangentTrace whose
    parent stages the known jaxpr: known and unknown are split by data
    dependence, exactly as linearize splits primal and tangent work."""
    unknowns, instantiate = tuple(unknowns), tuple(instantiate)
    return call.derived(closed, ("partial_eval_jaxpr", unknowns, instantiate),
                        lambda: _partial_eval_jaxpr(closed, unknowns, instantiate))


def _partial_eval_jaxpr(closed, unknowns, instantiate):
    in_avals = closed.in_avals
    with trace_context(StagingTrace()) as known_trace:
        known_in = iter([known_trace.new_arg(a) for a, u in zip(in_avals, unknowns, strict=True) if not u])
        unknown_trace = TangentTrace()
        unknown_in = iter([unknown_trace.new_arg(a) for a, u in zip(in_avals, unknowns) if u])
        args = [next(unknown_in) if u else next(known_in) for u in unknowns]
        token = _current_trace.set(unknown_trace)
        try:
            outs = eval_jaxpr(closed.jaxpr, closed.consts, *args)
            out_unknowns = [(isinstance(o, StagingTracer) and o._trace is unknown_trace) or inst
                            for o, inst in zip(outs, instantiate, strict=True)]
            unknown_outs = [unknown_trace.to_atom(o) for o, u in zip(outs, out_unknowns) if u]
        finally:
            _current_trace.reset(token)
            unknown_trace.alive = False
        residuals = unknown_trace.consts
        known = known_trace.build([*(o for o, u in zip(outs, out_unknowns) if not u), *residuals])
    unknown = Jaxpr([], [*unknown_trace.constvars, *unknown_trace.invars], unknown_trace.eqns, unknown_outs)
    if config.debug:
        from ir.check import check
        check(unknown)
    known_call, known_consts = call.call_form(dce(known))
    return known_call, known_consts, ClosedJaxpr(unknown, []), out_unknowns, len(residuals)


def transpose_jaxpr(closed: ClosedJaxpr, undefined, ct_nonzero, instantiate):
    """(transposed, consts, in_nonzero): see call.SUBJAXPR_TRANSFORMS.
    `instantiate`: a bool for every undefined input, or a flag for each."""
    undefined, ct_nonzero = tuple(undefined), tuple(ct_nonzero)
    num_undefined = sum(undefined)
    instantiate = (bool(instantiate),) * num_undefined if isinstance(instantiate, bool) \
        else tuple(map(bool, instantiate))
    if len(instantiate) != num_undefined:
        raise ValueError(f"transpose_jaxpr: {len(instantiate)} instantiate flags for {num_undefined} linear inputs")
    return call.derived(closed, ("transpose_jaxpr", undefined, ct_nonzero, instantiate),
                        lambda: _transpose_jaxpr(closed, undefined, ct_nonzero, instantiate))


def _transpose_jaxpr(closed, undefined, ct_nonzero, instantiate):
    jaxpr = closed.jaxpr
    # the defined inputs (and the constants) are what backward_pass takes as residuals
    view = Jaxpr([*jaxpr.constvars, *(v for v, u in zip(jaxpr.invars, undefined, strict=True) if not u)],
                 [v for v, u in zip(jaxpr.invars, undefined) if u], jaxpr.eqns, jaxpr.outvars)
    known_avals = [v.aval for v, u in zip(jaxpr.invars, undefined) if not u]
    out_avals = [tangent_aval(v.aval) for v in jaxpr.outvars]
    ct_avals = [a for a, nz in zip(out_avals, ct_nonzero, strict=True) if nz]
    in_nonzero = []

    def transposed(*args):
        known, cts = args[:len(known_avals)], call.fill_zeros(out_avals, ct_nonzero, args[len(known_avals):])
        cts_in = backward_pass(view, [*closed.consts, *known], cts)
        cts_in = [ad_util.instantiate(c) if wanted else c for c, wanted in zip(cts_in, instantiate, strict=True)]
        in_nonzero.extend(type(c) is not Zero for c in cts_in)
        return [c for c in cts_in if type(c) is not Zero]

    return (*call.call_form(stage(transposed, [*known_avals, *ct_avals])), in_nonzero)


call.SUBJAXPR_TRANSFORMS["jvp_jaxpr"] = jvp_jaxpr
call.SUBJAXPR_TRANSFORMS["partial_eval_jaxpr"] = partial_eval_jaxpr
call.SUBJAXPR_TRANSFORMS["transpose_jaxpr"] = transpose_jaxpr
call.SUBJAXPR_TRANSFORMS["loop_record"] = LoopRecord  # a while loop's reverse sweep (while_reverse)
