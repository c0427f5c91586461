"""Eager reverse mode: `grad`/`vjp` with no trace open, at Python speed.

The rules are ad.py's (jvp + transpose); what changes is when they run. ad.py
linearizes the whole function on every call, staging each tangent equation
anew. Here each primitive is linearized once per *signature* (primitive,
params, input avals, which inputs are differentiated), and the result is cut
in two and lowered to NumPy:

- a residual function: (primal inputs, primal outputs) -> the residuals the
  tangent map needs (cos x for sin; nothing for add);
- a backward function: (residuals, output cotangents) -> input cotangents,
  the transpose of the primitive's linear map.

A call computes each primitive with its implementation (so the forward pass
runs once, as written), records (backward function, residuals, operands) on a
tape, and walks the tape backward. A map from one scalar to one whose every
step is a sum of products walks it forward instead, each step's linear map
(staged and lowered the first time it is needed) on its operands' tangents:
ad.LinearFunction.transpose does the same with the whole linear jaxpr, and
eager and jitted derivatives must compute the same values (see
ad.forward_is_transpose). Only the outermost, eager `grad`/`vjp` comes
here: under any open trace (make_jaxpr, jit, vmap, an outer grad) reverse mode
stays linearize + transpose over the IR, so `make_jaxpr(grad(f))` prints it.
"""
from __future__ import annotations

import numpy as np

from interpreters import ad
from interpreters.eval import eval_jaxpr
from interpreters.lowering_numpy import lower
from ir import config, passes
from ir.core import Array, ClosedJaxpr, Jaxpr, concrete_aval
from ir.markers import Zero
from ir.passes.dce import dce
from ir.primitives import call, control_flow
from ir.primitive import as_array, check_impl_result
from ir.errors import user_location
from ir.floating_point import ignore_errors, new_nan, restore_errors
from ir.tracing import (StagingTrace, StagingTracer, Trace, Tracer, _current_trace, bind, check_nans, compute,
                        current_trace, find_nan_equation, leaked_tracer_error, nan_error, trace_context)


class TapeTracer(Tracer):
    """A differentiated value: the concrete array and its slot on the tape."""
    __slots__ = ("value", "aval", "slot")

    def __init__(self, trace, value, aval, slot):
        self._trace = trace
        self.value = value
        self.aval = aval
        self.slot = slot

    def concrete_value(self):
        return self.value


class TapeTrace(Trace):
    """Computes each primitive concretely and records how to pull cotangents
    back through it. A tape step is a tuple (the primitive signature's rule,
    residuals, operand slots, output slot: an int, or a list for a
    multiple-result primitive): tuples, because one is made per primitive
    application."""

    def __init__(self):
        super().__init__()
        self.steps = []
        self.slot_count = 0
        # with debug_nans: the id of a step's residual list (one per step, alive as long as
        # the tape) -> the user's line that applied its primitive, for errors of the backward pass
        self.user_lines = {}

    def new_input(self, value, aval):
        self.slot_count += 1
        return TapeTracer(self, value, aval, self.slot_count - 1)

    def process_primitive(self, prim, args, params):
        # runs once per primitive application: plain loops, one dict look-up, no helper calls
        values, slots, key, tracked = [], [], [prim], False
        for x in args:
            if type(x) is TapeTracer and x._trace is self:
                values.append(x.value)
                slots.append(x.slot)
                key.append(x.aval)
                tracked = True
            else:
                if isinstance(x, Tracer):  # only a finished trace's tracer can reach here
                    raise leaked_tracer_error(x)
                values.append(x)
                slots.append(None)
                key.append((concrete_aval(x),))  # wrapped: the key tells constants from tracked operands
        if not tracked:  # a constant computation: nothing to record
            return compute(prim, values, params)
        if prim is control_flow.while_p and params["checkpoints"] is None:  # a scan of its trip count (see below)
            return _while_as_scan(self, args, values, params)
        if prim is control_flow.while_reverse_p and params["checkpoints"] is None and not params["transforms"]:
            # likewise: two scans
            n = control_flow.reverse_trip_count(lambda p, xs, ps: compute(p, xs, ps), values, params)
            return control_flow.while_reverse_as_scans(self.process_primitive, args, params, n)
        if params:  # param types are part of the key (2 == 2.0 as dict keys), as in abstract_eval's cache
            key += params.items()
            key += map(type, params.values())
        try:
            key = tuple(key)
            rule = _RULES.get(key)
        except TypeError:  # an unhashable param: build the rule without caching it
            key = rule = None
        if rule is None:
            rule = _new_rule(key, prim, params, args, slots)
        token = ignore_errors()  # IEEE-silently, as apply_impl
        try:
            outs = prim.impl(*values, **params) if rule.calls_impl else rule.forward(*values)
        finally:
            restore_errors(token)
        if config.debug_nans:
            check_nans(prim, values, params, outs if prim.multiple_results or not rule.calls_impl else [outs])
        if rule.calls_impl:
            if config.debug:
                check_impl_result(prim, values, params, outs if prim.multiple_results else [outs])
            if not prim.multiple_results:  # the common case, kept short
                if not rule.nonzero_outputs[0]:  # a constant from here on (a comparison, say): the user's
                    return as_array(outs)
                slot = self.slot_count
                self.slot_count = slot + 1
                values.append(outs)
                self.steps.append((rule, values, slots, slot))
                if config.debug_nans:
                    self.user_lines[id(values)] = user_location()
                return TapeTracer(self, outs, rule.out_avals[0], slot)
            residuals = [*values, *outs]
        else:  # the linearization could not reuse the implementation's outputs: it computes them
            computed = outs
            outs = computed[:rule.num_outputs]
            residuals = [*values, *computed]
        out_slots, results = [], []  # out_slots: those of the outputs with a nonzero tangent
        for out, aval, differentiable in zip(outs, rule.out_avals, rule.nonzero_outputs):
            if differentiable:
                out_slots.append(self.slot_count)
                results.append(TapeTracer(self, out, aval, self.slot_count))
                self.slot_count += 1
            else:
                results.append(as_array(out))
        if out_slots:
            self.steps.append((rule, residuals, slots, out_slots))
            if config.debug_nans:
                self.user_lines[id(residuals)] = user_location()
        return results if prim.multiple_results else results[0]

    def backward(self, out_slots, cts_out, traced=False):
        """Cotangents of every slot, from those of the slots in `out_slots`.
        A step's output slot is an int for a single-result primitive.
        `traced`: a transformation is open (vmap over a vjp function, say), so
        the backward functions run as IR through `bind`, not as NumPy code."""
        check = config.debug_nans
        cts = [None] * self.slot_count
        for slot, ct in zip(out_slots, cts_out, strict=True):
            if ct is not None:
                cts[slot] = ct if cts[slot] is None else cts[slot] + ct
        for rule, residuals, slots, step_out in reversed(self.steps):
            if type(step_out) is int:
                ct = cts[step_out]
                if ct is None:
                    continue
                step_cts = [ct]
            else:
                step_cts = [cts[slot] for slot in step_out]
                if all(ct is None for ct in step_cts):
                    continue
                if any(ct is None for ct in step_cts):
                    # of a multiple-result primitive's outputs only some have a cotangent: the others
                    # are symbolic zeros, not arrays of 0 (0 times an infinite residual is NaN)
                    rule = rule.with_zero_cotangents(tuple(ct is not None for ct in step_cts))
                    step_cts = [ct for ct in step_cts if ct is not None]
            cts_in = (rule.backward_traced if traced else rule.backward)(*residuals, *step_cts)
            if check:
                self._check_step_nans(f"the backward pass of {rule.name}", rule.backward_jaxpr, residuals,
                                      step_cts, cts_in)
            for position, ct in zip(rule.ct_inputs, cts_in):
                slot = slots[position]
                previous = cts[slot]
                cts[slot] = ct if previous is None else previous + ct
        return cts

    def _check_step_nans(self, where, closed, residuals, step_values, outs):
        """debug_nans: a FloatingPointError naming `where` (the backward pass, or the
        forward derivative, of a step's primitive) and the user's line that applied
        it, if the step made a NaN."""
        inputs = [*residuals, *step_values]
        if not new_nan(inputs, outs):
            return
        line = self.user_lines.get(id(residuals)) or None  # where the forward pass applied it
        find_nan_equation(closed, inputs, where, line)
        raise nan_error(where, location=line)

    def runs_forward_as_transpose(self, dtype):
        """Whether a map from one scalar of `dtype` to one, through this tape,
        is one that ad.forward_is_transpose lets run forward: every step's
        linear map is one, in that dtype. The test staged code makes of the
        whole linear jaxpr, one step at a time."""
        for step in self.steps:
            step_dtype = step[0].forward_dtype
            if step_dtype is None or step_dtype != dtype:  # NB: dtype == None holds: np.dtype(None) is float64
                return False
        return True

    def forward(self, in_slot, out_slot, tangent, traced=False):
        """The tangent of `out_slot` along `tangent` at `in_slot`: the tape run
        forward, each step's linear map applied to its operands' tangents.
        Every tracked value depends on the one input, so each has a tangent."""
        check = config.debug_nans
        tangents = [None] * self.slot_count
        tangents[in_slot] = tangent
        for rule, residuals, slots, step_out in self.steps:
            tangent_map, closed = rule.tangent_map or rule.build_tangent_map()
            operand_tangents = []
            for slot in slots:
                if slot is not None:
                    operand_tangents.append(tangents[slot])
            if traced:
                outs = eval_jaxpr(closed.jaxpr, closed.consts, *residuals, *operand_tangents)
            else:
                outs = tangent_map(*residuals, *operand_tangents)
            if check:
                self._check_step_nans(f"the derivative of {rule.name}", closed, residuals, operand_tangents, outs)
            if type(step_out) is int:
                tangents[step_out] = outs[0]
            else:
                for slot, t in zip(step_out, outs, strict=True):
                    tangents[slot] = t
        return tangents[out_slot]


def _while_as_scan(trace, args, values, params):
    """A while on the tape: its trip count n is computed first (from the concrete
    values), and the loop recorded as the scan of n iterations of its body, whose
    residuals the tape stacks and whose transpose runs backwards (a while's
    reverse mode needs what each iteration computed; eagerly that is a scan's)."""
    cond_nconsts, body_nconsts = params["cond_nconsts"], params["body_nconsts"]
    cond_c, body_c, carry = control_flow.split_list(values, cond_nconsts, body_nconsts)
    n = control_flow.trip_count(lambda prim, xs, ps: compute(prim, xs, ps), params["cond_jaxpr"],
                                params["body_jaxpr"], cond_c, body_c, carry, (False,) * body_nconsts,
                                (False,) * len(carry))
    body_args = args[cond_nconsts:]
    return trace.process_primitive(control_flow.scan_p, body_args, {
        "jaxpr": params["body_jaxpr"], "num_consts": body_nconsts, "num_carry": len(carry), "length": int(n),
        "reverse": False, "unroll": 1})


# -------------------- one primitive's VJP, compiled once per signature --------------------

class _VJPRule:
    """The forward and backward functions of one primitive signature.

    With `calls_impl` (the usual case) the tape computes the outputs with the
    primitive's implementation and keeps (inputs, outputs) as the residuals:
    the backward function recomputes whatever else the linear map needs (cos x
    for sin) from them, and only if a cotangent reaches it. Otherwise (a
    linearization that does not compute the outputs with the primitive itself,
    e.g. a jit_call, which it inlines) `forward(inputs)` returns (outputs,
    extra residuals). `ct_inputs`: the operand positions that `backward`
    returns cotangents for (the others' are structurally zero).
    """
    __slots__ = ("name", "calls_impl", "forward", "num_outputs", "out_avals", "nonzero_outputs", "backward",
                 "backward_jaxpr", "ct_inputs", "ct_avals", "forward_dtype", "tangent_map", "_tangent_map_parts",
                 "_backward_parts", "_with_zero_cotangents")

    def backward_traced(self, *args):
        return eval_jaxpr(self.backward_jaxpr.jaxpr, self.backward_jaxpr.consts, *args)

    def with_zero_cotangents(self, ct_present):
        """This rule with a backward function that takes only the cotangents
        `ct_present` marks (one flag per entry of ct_avals): the others enter
        the transpose as symbolic zeros. Built once per pattern; a dict
        assignment, so threads racing here each see a whole rule."""
        rule = self._with_zero_cotangents.get(ct_present)
        if rule is None:
            rule = _VJPRule()
            for name in self.__slots__:
                setattr(rule, name, getattr(self, name))
            rule.backward_jaxpr, rule.ct_avals, rule.ct_inputs = _backward_function(
                *self._backward_parts, ct_present=ct_present)
            rule.backward = _lower(rule.backward_jaxpr, "backward", self._backward_parts[-1])
            self._with_zero_cotangents[ct_present] = rule
        return rule

    def build_tangent_map(self):
        """`tangent_map`, (the lowered function, its ClosedJaxpr) of (residuals,
        tangents of the differentiated operands) -> tangents of the nonzero
        outputs: the linear map run forward (TapeTrace.forward). Staged on first
        use only, as most tapes are transposed; one assignment, so that threads
        racing here each see a whole pair."""
        self.tangent_map = _tangent_map(*self._tangent_map_parts)
        return self.tangent_map


# Rules of signatures whose params hold no sub-jaxpr, by signature (the key
# TapeTrace.process_primitive builds). Those of a jit_call are kept with its
# sub-jaxpr instead (call.derived): a global entry would keep the jaxpr, and what
# its transformations' generated code holds, alive after the jitted function is gone.
_RULES: dict = {}
_MAX_RULES = 4096  # distinct signatures kept; past that the cache starts over


def _new_rule(key, prim, params, args, slots):
    avals = [x.aval if slot is not None else concrete_aval(x) for x, slot in zip(args, slots)]
    wrt = [slot is not None for slot in slots]
    if key is None:  # unhashable params
        return _build_rule(prim, params, avals, wrt)
    sub_jaxprs = [v for value in params.values() for v in (value if type(value) is tuple else (value,))
                  if isinstance(v, ClosedJaxpr)]  # jit_call's and scan's jaxpr, cond's branches
    if sub_jaxprs:
        # keyed on all but the first sub-jaxpr itself, which an entry beside it must not hold (the
        # other branches of a cond it may: they live and die with it)
        first = sub_jaxprs[0]
        signature = ("eager vjp", prim, tuple(avals), tuple(wrt),
                     tuple((name, type(value), _without(value, first)) for name, value in params.items()
                           if value is not first))
        if prim.name in _RETRACED and not any(map(_calls_a_jaxpr, sub_jaxprs)):
            return call.derived(first, signature, lambda: _rule_of_program(prim, params, avals, wrt))
        return call.derived(first, signature, lambda: _build_rule(prim, params, avals, wrt))
    rule = _build_rule(prim, params, avals, wrt)
    if len(_RULES) >= _MAX_RULES:
        _RULES.clear()
    _RULES[key] = rule
    return rule


def _without(value, closed):
    """A param as a cache key beside `closed`: `closed` itself replaced by a marker."""
    return tuple(_SUB_JAXPR if v is closed else v for v in value) if type(value) is tuple else value


_SUB_JAXPR = "the sub-jaxpr"

# Rules of cond and scan, by the text of their signature: their branches and bodies are
# traced anew at every call of ft.lax.cond/scan, so under an eager grad each call brings
# new sub-jaxprs of the same program. The printed form says all there is to them (it reads
# back to an equal program), and a rule holds only what it derived (new jaxprs, never the
# sub-jaxprs themselves) lowered to the plainest code, which keeps no buffers: one rule
# serves them all, for some microseconds of printing. Not for jit_call (a jitted function
# keeps its jaxpr, so the rules kept beside it serve every call), nor for sub-jaxprs
# calling one (the generated code of its derived jaxprs would stay alive with the rule).
# Bounded, as _RULES is.
_RETRACED = frozenset({"cond", "scan", "while", "custom_jvp_call", "custom_vjp_call"})
_RULES_BY_TEXT: dict = {}
_MAX_RULES_BY_TEXT = 256


def _calls_a_jaxpr(closed):
    pending = [closed.jaxpr]
    while pending:
        for eqn in pending.pop().eqns:
            if eqn.primitive.name == "jit_call":
                return True
            for value in eqn.params.values():
                pending.extend(v.jaxpr for v in (value if type(value) is tuple else (value,))
                               if isinstance(v, ClosedJaxpr))
    return False


def _rule_of_program(prim, params, avals, wrt):
    key = (prim, tuple(avals), tuple(wrt), tuple((name, type(value), _as_text(value)) for name, value in params.items()))
    rule = _RULES_BY_TEXT.get(key)
    if rule is None:
        rule = _build_rule(prim, params, avals, wrt)
        if len(_RULES_BY_TEXT) >= _MAX_RULES_BY_TEXT:
            _RULES_BY_TEXT.clear()
        _RULES_BY_TEXT[key] = rule
    return rule


def _as_text(value):
    if isinstance(value, ClosedJaxpr):
        return str(value)
    if type(value) is tuple:
        return tuple(_as_text(v) for v in value)
    return value


def _build_rule(prim, params, avals, wrt):
    """Linearize `prim` abstractly and lower the two halves (see the module docstring)."""
    def apply(*xs):
        out = bind(prim, *xs, **params)
        return list(out) if prim.multiple_results else [out]

    # primal work is staged into `known`; tangent work into the linear jaxpr
    with trace_context(StagingTrace()) as known:
        inputs = [known.new_arg(aval) for aval in avals]
        outs, linear = ad.linearize_flat(apply, inputs, wrt)
        known_closed = known.build(outs)
    jaxpr = known_closed.jaxpr
    num_inputs, num_outputs = len(inputs), len(outs)
    rule = _VJPRule()
    rule.name = prim.name
    rule.num_outputs = num_outputs
    rule.out_avals = [v.aval for v in jaxpr.outvars]
    rule.nonzero_outputs = linear.nonzero_outputs

    # residuals the linear map needs beyond the inputs and outputs
    available = [*jaxpr.invars, *jaxpr.outvars]
    staged = [r._var for r in linear.residuals if isinstance(r, StagingTracer)]
    extra = list(dict.fromkeys(v for v in staged if v not in available))
    primal_eqn = _primal_equation(prim, params, jaxpr, num_inputs)
    rule.calls_impl = primal_eqn is not None
    if rule.calls_impl:  # the backward function recomputes the extra residuals
        eqns = [e for e in jaxpr.eqns if e is not primal_eqn]
        recompute = dce(ClosedJaxpr(Jaxpr(jaxpr.constvars, available, eqns, extra), known_closed.consts))
        rule.forward = None
        residual_vars = available
    else:
        full = Jaxpr(jaxpr.constvars, jaxpr.invars, jaxpr.eqns, [*jaxpr.outvars, *extra])
        rule.forward = _lower(passes.optimize(ClosedJaxpr(full, known_closed.consts)), "forward", prim)
        residual_vars, recompute = [*available, *extra], None
    # what the backward functions need, without `linear` itself (whose tracers hold their trace)
    rule._backward_parts = (linear.jaxpr, linear.out_avals, linear.nonzero_outputs, _residual_sources(linear),
                            residual_vars, recompute, wrt, prim)
    rule._with_zero_cotangents = {}
    rule.backward_jaxpr, rule.ct_avals, rule.ct_inputs = _backward_function(*rule._backward_parts)
    rule.backward = _lower(rule.backward_jaxpr, "backward", prim)
    rule.forward_dtype = ad.forward_is_transpose(linear.jaxpr)
    rule.tangent_map = None
    # what the forward tangent map needs, without `linear` itself (whose tracers hold their trace)
    rule._tangent_map_parts = (linear.jaxpr, _residual_sources(linear), residual_vars, recompute, prim)
    return rule


def _primal_equation(prim, params, jaxpr, num_inputs):
    """The equation computing the outputs as `prim` of the inputs with these
    params, if there is one."""
    for eqn in jaxpr.eqns:
        if eqn.primitive is prim and eqn.outvars == jaxpr.outvars and eqn.invars == jaxpr.invars[:num_inputs]:
            try:
                same_params = bool(eqn.params == params)
            except (TypeError, ValueError):  # params holding arrays: not provably the same
                same_params = False
            return eqn if same_params else None
    return None


def _lower(closed, what, prim):
    return lower(closed, f"{what}_of_{prim.name}", copy_outputs=False).function


def _residual_sources(linear):
    """Where each residual of `linear` comes from: a variable of the known
    jaxpr, or a value (a constant a rule made)."""
    return [(True, r._var) if isinstance(r, StagingTracer) else (False, r) for r in linear.residuals]


def _residual_values(residual_args, residual_vars, recompute, sources):
    value_of = dict(zip(residual_vars, residual_args))
    if recompute is not None:
        value_of.update(zip(recompute.jaxpr.outvars, eval_jaxpr(recompute.jaxpr, recompute.consts, *residual_args)))
    return [value_of[source] if is_var else source for is_var, source in sources]


def _backward_function(linear_jaxpr, out_avals, nonzero_outputs, sources, residual_vars, recompute, wrt, prim,
                       ct_present=None):
    """Stage the transpose of the linear half: (residuals, output cotangents) ->
    cotangents of the differentiated operands that are not structurally zero.
    `recompute` (a jaxpr over the residuals, or None) computes the rest of
    what the linear map needs. `ct_present` (a flag per nonzero output, or
    None for all): the outputs whose cotangents are arguments; the others are
    symbolic zeros. Returns (the jaxpr, the avals of the cotangent arguments,
    the operand positions of its results)."""
    all_ct_avals = [aval for aval, nonzero in zip(out_avals, nonzero_outputs) if nonzero]
    present = ct_present or (True,) * len(all_ct_avals)
    ct_avals = [aval for aval, given in zip(all_ct_avals, present, strict=True) if given]
    ct_positions = [i for i, w in enumerate(wrt) if w]
    ct_inputs = []

    def transpose(*args):
        residual_args, given = args[:len(residual_vars)], iter(args[len(residual_vars):])
        cts = [next(given) if is_given else Zero(aval) for aval, is_given in zip(all_ct_avals, present)]
        residuals = _residual_values(residual_args, residual_vars, recompute, sources)
        cts_in = ad.backward_pass(linear_jaxpr, residuals, cts, all_linear=True)
        outs = []
        for position, ct in zip(ct_positions, cts_in, strict=True):
            if type(ct) is not Zero:
                ct_inputs.append(position)
                outs.append(ct)
        return outs

    with trace_context(StagingTrace()) as staging:
        args = [staging.new_arg(aval) for aval in [*(v.aval for v in residual_vars), *ct_avals]]
        closed = staging.build(transpose(*args))
    return passes.optimize(closed), ct_avals, ct_inputs


def _tangent_map(linear_jaxpr, sources, residual_vars, recompute, prim):
    """(the lowered function, its jaxpr) of the linear half run forward:
    (residuals, tangents of the differentiated operands) -> tangents of the
    nonzero outputs."""
    def forward(*args):
        residual_args, tangents = args[:len(residual_vars)], args[len(residual_vars):]
        residuals = _residual_values(residual_args, residual_vars, recompute, sources)
        return eval_jaxpr(linear_jaxpr, residuals, *tangents)

    with trace_context(StagingTrace()) as staging:
        avals = [*(v.aval for v in residual_vars), *(v.aval for v in linear_jaxpr.invars)]
        closed = passes.optimize(staging.build(forward(*[staging.new_arg(aval) for aval in avals])))
    return _lower(closed, "tangent_map", prim), closed


# -------------------- entry point --------------------

class TapeLinearFunction:
    """What `vjp_flat` returns, with LinearFunction's reverse-mode interface:
    `transpose(cts)` and `nonzero_outputs`."""

    def __init__(self, trace, in_slots, out_slots, out_avals):
        self.trace, self.in_slots, self.out_slots = trace, in_slots, out_slots
        self.nonzero_outputs = [s is not None for s in out_slots]
        # (input slot, output slot, dtype) of a map from one real scalar to one, else None
        self.scalar_map = None
        nonzero = [(slot, aval) for slot, aval in zip(out_slots, out_avals) if slot is not None]
        if len(in_slots) == 1 and len(nonzero) == 1:
            (in_slot, in_aval), (out_slot, out_aval) = in_slots[0], nonzero[0]
            if in_aval.shape == out_aval.shape == () and in_aval.dtype.kind == "f":
                self.scalar_map = in_slot, out_slot, in_aval.dtype

    def transpose(self, cts_out):
        """As ad.LinearFunction.transpose: a map from one scalar to one whose
        every step is a sum of products runs forward on the cotangent."""
        slots = [s for s in self.out_slots if s is not None]
        traced = current_trace() is not None
        token = ignore_errors()  # the backward functions (and the sums of cotangents), IEEE-silently
        try:
            if self.scalar_map is not None and type(cts_out[0]) is not Zero:
                in_slot, out_slot, dtype = self.scalar_map
                if self.trace.runs_forward_as_transpose(dtype):
                    return [self.trace.forward(in_slot, out_slot, cts_out[0], traced)]
            cts = self.trace.backward(slots, cts_out, traced)
        finally:
            restore_errors(token)
        return [Zero(aval) if cts[slot] is None else cts[slot] for slot, aval in self.in_slots]


def vjp_flat(fun, primals, avals, wrt):
    """Run flat `fun` once, recording a tape; return (primals_out, the linear
    map's reverse-mode interface). Call only with no trace open."""
    trace = TapeTrace()
    token = _current_trace.set(trace)
    try:
        # an Array (a user's ftrans result) is seen as a plain ndarray: NumPy's ufuncs cost more on a subclass
        tracers = [trace.new_input(x.view(np.ndarray) if type(x) is Array else x, aval) if w else x
                   for x, aval, w in zip(primals, avals, wrt, strict=True)]
        outs = fun(*tracers)
    finally:
        _current_trace.reset(token)
        trace.alive = False
    primals_out, out_slots, out_avals = [], [], []
    for out in outs:
        if type(out) is TapeTracer and out._trace is trace:
            primals_out.append(out.value)
            out_slots.append(out.slot)
            out_avals.append(out.aval)
        else:
            primals_out.append(out)
            out_slots.append(None)
            out_avals.append(None)
    in_slots = [(t.slot, t.aval) for t in tracers if type(t) is TapeTracer]
    return primals_out, TapeLinearFunction(trace, in_slots, out_slots, out_avals)
