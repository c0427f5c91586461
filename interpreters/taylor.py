"""Taylor mode (jet): push a truncated Taylor series through a function in one pass.

A `JetTrace` carries, for each value that depends on the input series, the
primal together with its series of K coefficients (`JetTracer`), scaled as
derivatives (JAX's convention, see ir/primitives/taylor_util.py): x_k is the
k-th derivative of x(t) = x_0 + sum_k x_k t^k / k! at t = 0. A coefficient
known to be zero is a `Zero` marker, never an array; a value whose whole
series is zero is not wrapped at all (a constant). Each primitive's `taylor`
rule runs in the parent trace, like jvp rules, so the jet of a function
computes at once in eager mode, stages under jit and make_jaxpr, batches
under vmap and differentiates under grad.

`jet_jaxpr(closed, order, nonzero)` is the jaxpr -> jaxpr form (staged once
per signature and kept while `closed` lives): what jit_call's rule binds,
and what the rules of loops call on their bodies.
"""
from __future__ import annotations

from interpreters.eval import eval_jaxpr
from ir.core import ClosedJaxpr
from ir.markers import Zero, tangent_aval
from ir.primitives import call, taylor_util
from ir.tracing import Trace, Tracer, _current_trace, bind_in, get_aval, stage, trace_context


class JetTracer(Tracer):
    # `aval` is a plain attribute (it shadows Tracer's property): read on every operation
    __slots__ = ("primal", "series", "aval")

    def __init__(self, trace, primal, series):
        self._trace = trace
        self.primal = primal
        self.series = series
        self.aval = get_aval(primal)

    def concrete_value(self):
        primal = self.primal
        return primal.concrete_value() if isinstance(primal, Tracer) else primal


class JetTrace(Trace):
    """Applies `taylor` rules to series of `order` coefficients; the rules run in the parent trace."""

    def __init__(self, order):
        super().__init__()
        self.order = order

    def process_primitive(self, prim, args, params):
        primals, series, any_series = [], [], False
        for x in args:
            if isinstance(x, JetTracer) and x._trace is self:
                primals.append(x.primal)
                series.append(x.series)
                any_series = True
            else:
                if isinstance(x, Tracer):
                    self.check_alive(x)
                primals.append(x)
                series.append(None)
        if not any_series:  # nothing here moves along the curve: no series to propagate
            return bind_in(self.parent, prim, primals, params)
        for i, s in enumerate(series):
            if s is None:
                series[i] = taylor_util.zero_series(get_aval(primals[i]), self.order)
        token = _current_trace.set(self.parent)
        try:
            primal_out, series_out = (prim.taylor or prim.rule("taylor"))(primals, series, **params)
        finally:
            _current_trace.reset(token)
        if prim.multiple_results:
            return [self.wrap(p, s) for p, s in zip(primal_out, series_out, strict=True)]
        return self.wrap(primal_out, series_out)

    def wrap(self, primal, series):
        if len(series) != self.order:
            raise AssertionError(f"a taylor rule returned {len(series)} coefficients for a jet of order {self.order}")
        # a value with a zero series leaves the trace: later operations see a constant
        if all(type(c) is Zero for c in series):
            return primal
        return JetTracer(self, primal, list(series))


def _is_constant(series):
    return series is None or all(type(c) is Zero for c in series)


def jet_flat(fun, primals, series, order):
    """(primals_out, series_out) of flat `fun` at `primals` along `series`: one
    list of `order` coefficients per input (Zero allowed), or None for an input
    that is a constant. A primal may be a Zero marker itself (a tangent a rule
    passes on): it stays one. Each output's series is a list of `order`
    coefficients, Zero where known to be zero."""
    if order == 0:
        outs = fun(*primals)
        return list(outs), [[] for _ in outs]
    with trace_context(JetTrace(order)) as trace:
        tracers = [x if _is_constant(s) or type(x) is Zero else JetTracer(trace, x, list(s))
                   for x, s in zip(primals, series, strict=True)]
        outs = fun(*tracers)
        primals_out, series_out = [], []
        for out in outs:
            if isinstance(out, JetTracer) and out._trace is trace:
                primals_out.append(out.primal)
                series_out.append(out.series)
            else:
                primals_out.append(out)
                aval = out.aval if type(out) is Zero else get_aval(out)
                series_out.append(taylor_util.zero_series(aval, order))
    return primals_out, series_out


taylor_util.JET_OF_FUNCTION["jet"] = lambda fun, primals, series: jet_flat(
    fun, primals, series, len(next(s for s in series if s is not None)))


# -------------------- jaxpr -> jaxpr --------------------

def jet_jaxpr(closed: ClosedJaxpr, order, nonzero, instantiate=False):
    """(jet ClosedJaxpr, out_nonzero): `closed` evaluated inside a JetTrace of
    `order` inside a staging trace. `nonzero[i]` holds one bool per order for
    input i: whether its coefficient of that order is nonzero. The new jaxpr
    takes the primals, then the nonzero coefficients (input by input, order by
    order), and returns the primal outputs, then the nonzero output
    coefficients in the same layout; `out_nonzero` says which those are.
    `instantiate` (a bool, or one tuple of bools per output) makes those
    coefficients of the outputs arrays even where they are zero (a loop's
    carries need the same pattern in and out). Memoized on (closed, order,
    nonzero, instantiate) while `closed` lives: loop rules call it on each
    step of their fixpoint."""
    nonzero = tuple(tuple(bool(b) for b in row) for row in nonzero)
    if isinstance(instantiate, bool):
        instantiate = tuple((instantiate,) * order for _ in closed.out_avals)
    key = ("jet", order, nonzero, tuple(tuple(row) for row in instantiate))
    return call.derived(closed, key, lambda: _build_jet_jaxpr(closed, order, nonzero, instantiate))


def _build_jet_jaxpr(closed, order, nonzero, instantiate):
    from ir.primitives.ad_util import zeros
    in_avals = closed.in_avals
    coefficient_avals = [tangent_aval(a) for a, row in zip(in_avals, nonzero, strict=True) for nz in row if nz]
    out_nonzero = []

    def jet_of(*args):
        primals, coefficients = args[:len(in_avals)], iter(args[len(in_avals):])
        series = [[next(coefficients) if nz else Zero(tangent_aval(a)) for nz in row]
                  for a, row in zip(in_avals, nonzero, strict=True)]
        outs, series_out = jet_flat(lambda *xs: eval_jaxpr(closed.jaxpr, closed.consts, *xs), list(primals),
                                    series, order)
        flat = []
        for out_series, forced in zip(series_out, instantiate, strict=True):
            row = []
            for c, force in zip(out_series, forced, strict=True):
                if type(c) is Zero and force:
                    c = zeros(c.aval)
                row.append(type(c) is not Zero)
                if type(c) is not Zero:
                    flat.append(c)
            out_nonzero.append(tuple(row))
        return [*outs, *flat]

    return stage(jet_of, [*in_avals, *coefficient_avals]), out_nonzero


def _jet_of_closed_jaxpr(closed, primals, series, name):
    """jit_call's taylor rule: one jit_call of the jet of its sub-jaxpr, so a
    jitted function stays one (compiled) call in Taylor mode too."""
    order = len(series[0])
    nonzero = tuple(tuple(type(c) is not Zero for c in s) for s in series)
    jet_closed, out_nonzero = jet_jaxpr(closed, order, nonzero)
    call_jaxpr, consts = call.derived(jet_closed, "call_form", lambda: call.call_form(jet_closed))
    coefficients = [c for s in series for c in s if type(c) is not Zero]
    outs = call.jit_call(call_jaxpr, [*consts, *primals, *coefficients], name)
    primals_out, flat = outs[:len(closed.out_avals)], iter(outs[len(closed.out_avals):])
    series_out = [[next(flat) if nz else Zero(tangent_aval(aval)) for nz in row]
                  for aval, row in zip(closed.out_avals, out_nonzero, strict=True)]
    return primals_out, series_out


call.SUBJAXPR_TRANSFORMS["jet"] = _jet_of_closed_jaxpr
call.SUBJAXPR_TRANSFORMS["jet_jaxpr"] = jet_jaxpr  # for the rules of loops, in ir/primitives
