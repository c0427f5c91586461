"""Vectorization (vmap): run a function once on a whole batch of examples.

A `BatchTrace` carries, for each value that depends on a batched input, the
batched value together with its batch dimension (`BatchTracer`). Values that
do not depend on a batched input are not wrapped at all: arrays, scalars and
tracers of other traces are unbatched (`not_mapped`), and a primitive applied
only to unbatched operands runs in the parent trace as it is, with no batching
work, no broadcasting and no copy. Otherwise the primitive's `batch` rule runs
in the parent trace on the (value, batch dim) pairs.

A vmap may name its axis (`axis_name`): collectives over that name (psum,
all_gather, ...) then act across the examples, by their `collective_batch`
rule, even on operands that are the same for every example. A rule that
batches a sub-jaxpr (jit_call, cond, scan) batches it under the same name.

NB: JAX's BatchTrace works the same way; its `axis_data` holds what
`axis_size` and `axis_name` hold here.
"""
from __future__ import annotations

import contextvars

from interpreters.eval import eval_jaxpr
from ir import axis_env
from ir.core import ClosedJaxpr
from ir.errors import at_user_line
from ir.markers import not_mapped
from ir.primitives import batch_util, call
from ir.tracing import Trace, Tracer, _current_trace, bind, get_aval, stage, trace_context


class BatchTracer(Tracer):
    """A batched value seen by its BatchTrace: `value` has the example axis at
    `batch_dim` (always an int: unbatched values are never wrapped)."""
    # `aval` (one example's: the value's without the batch axis) is a plain
    # attribute shadowing Tracer's property, as in JVPTracer: read on every operation
    __slots__ = ("value", "batch_dim", "aval")

    def __init__(self, trace, value, batch_dim):
        self._trace = trace
        self.value = value
        self.batch_dim = batch_dim
        aval = get_aval(value)
        self.aval = aval.update(shape=aval.shape[:batch_dim] + aval.shape[batch_dim + 1:])

    def concrete_value(self):
        # a batched value is many values at once: Python cannot branch on it
        return None


# The axis name of the batch trace whose rule is running: sub-jaxprs a rule batches are batched under it
_rule_axis_name = contextvars.ContextVar("ftrans_rule_axis_name", default=None)


class BatchTrace(Trace):
    """Applies `batch` rules; the rules run in the parent trace."""

    def __init__(self, axis_size, axis_name=None):
        super().__init__()
        self.axis_size = axis_size
        self.axis_name = axis_name

    def process_primitive(self, prim, args, params):
        if self.axis_name is not None and prim.collective_batch is not None \
                and params["axis_name"] == self.axis_name:
            return self.process_collective(prim, args, params)
        values, dims = self.unwrap(args)
        any_batched = any(d is not not_mapped for d in dims)
        token = _current_trace.set(self.parent)
        name_token = _rule_axis_name.set(self.axis_name)
        try:
            if not any_batched:  # the same for every example: computed once, unbatched
                return bind(prim, *values, **params)
            out, out_dim = (prim.batch or prim.rule("batch"))(values, dims, **params)
        finally:
            _rule_axis_name.reset(name_token)
            _current_trace.reset(token)
        if prim.multiple_results:
            return [self.wrap(o, d) for o, d in zip(out, out_dim, strict=True)]
        return self.wrap(out, out_dim)

    def process_collective(self, prim, args, params):
        """A collective over this trace's axis: it acts across the examples."""
        prim.abstract_eval([get_aval(x) for x in args], params)  # one example's operands, checked
        values, dims = self.unwrap(args)
        token = _current_trace.set(self.parent)
        try:
            out, out_dim = prim.collective_batch(values, dims, self.axis_size, **params)
        finally:
            _current_trace.reset(token)
        return self.wrap(out, out_dim)

    def unwrap(self, args):
        values, dims = [], []
        for x in args:
            if isinstance(x, BatchTracer) and x._trace is self:
                values.append(x.value)
                dims.append(x.batch_dim)
            else:
                if isinstance(x, Tracer):
                    self.check_alive(x)
                values.append(x)
                dims.append(not_mapped)
        return values, dims

    def wrap(self, value, batch_dim):
        return value if batch_dim is not_mapped else BatchTracer(self, value, batch_dim)


def _run_batched(fun, in_vals, in_dims, axis_size, axis_name=None):
    """Run flat `fun` under a new BatchTrace; returns its outputs as
    (value, batch dim or not_mapped, per-example aval) triples."""
    with trace_context(BatchTrace(axis_size, axis_name)) as trace:
        tracers = [x if d is not_mapped else BatchTracer(trace, x, d)
                   for x, d in zip(in_vals, in_dims, strict=True)]
        outs = fun(*tracers)
        triples = []
        for out in outs:
            if isinstance(out, BatchTracer) and out._trace is trace:
                triples.append((out.value, out.batch_dim, out.aval))
            else:
                triples.append((out, not_mapped, get_aval(out)))
    return triples


def batch_flat(fun, in_vals, in_dims, axis_size, out_dims, axis_name=None):
    """Run flat `fun` on a batch: input i holds `axis_size` examples along axis
    `in_dims[i]` (or is shared by all of them where it is `not_mapped`).

    `out_dims(out_avals)` is called once `fun` has run, with the per-example
    avals of its outputs, and returns where each output's batch axis goes
    (a non-negative int, or `not_mapped` for an output that must not depend on
    the batch). An unbatched output asked for an int axis is broadcast along
    it, as JAX does; a batched one asked for `not_mapped` is a ValueError.
    """
    if axis_name is None:
        triples = _run_batched(fun, in_vals, in_dims, axis_size)
    else:
        with axis_env.binding(axis_name, axis_size, "vmap"):
            triples = _run_batched(fun, in_vals, in_dims, axis_size, axis_name)
    # back in the parent trace: moving and broadcasting are ordinary work there
    wanted = out_dims([aval for _, _, aval in triples])
    results = []
    for i, ((value, bdim, _), dst) in enumerate(zip(triples, wanted, strict=True)):
        if dst is not_mapped:
            if bdim is not not_mapped:
                raise ValueError(at_user_line(
                    f"vmap: out_axes is None for output leaf {i}, but that output depends on the "
                    "mapped inputs (it is batched). out_axes=None is only for outputs that are "
                    "the same for every example"))
            results.append(value)
        else:
            results.append(batch_util.bdim_to(value, bdim, axis_size, dst))
    return results


# -------------------- jaxpr -> jaxpr --------------------

def batch_jaxpr(closed: ClosedJaxpr, in_dims, axis_size, instantiate=None, axis_name=None):
    """(the batched ClosedJaxpr, out_dims): `closed` evaluated inside a
    BatchTrace inside a staging trace. Input i of the new jaxpr has the batch
    axis at `in_dims[i]` (or none: not_mapped); `out_dims` says where each
    output has it (not_mapped for outputs that do not depend on the batch).
    With `instantiate` (a flag per output) every batched output has its batch
    axis first, and those flagged are batched even where they do not depend on
    the batch (broadcast): what loops need, whose carries keep one type.
    For rules of primitives that hold sub-jaxprs (jit_call, cond, scan...);
    `axis_name` is the name of the vmap axis (collectives over it act across the batch).
    """
    in_avals = []
    for aval, d in zip(closed.in_avals, in_dims, strict=True):
        in_avals.append(aval if d is not_mapped else aval.update(shape=aval.shape[:d] + (axis_size,) + aval.shape[d:]))
    out_dims = []

    def batched(*args):
        triples = _run_batched(lambda *xs: eval_jaxpr(closed.jaxpr, closed.consts, *xs), args, in_dims, axis_size,
                               axis_name)
        if instantiate is None:
            out_dims.extend(d for _, d, _ in triples)
            return [value for value, _, _ in triples]
        outs = []
        for (value, d, _), inst in zip(triples, instantiate, strict=True):
            if d is not_mapped and not inst:
                out_dims.append(not_mapped)
                outs.append(value)
            else:
                out_dims.append(0)
                outs.append(batch_util.bdim_to(value, d, axis_size, 0))
        return outs
    return stage(batched, in_avals), out_dims


def _batch_jaxpr_call_form(closed, in_dims, axis_size, instantiate):
    """batch_jaxpr in call form, memoized: see call.SUBJAXPR_TRANSFORMS. `in_dims`
    holds batch axes (with instantiate=None) or, for loops, flags (batched at axis 0)."""
    in_dims = tuple(in_dims)
    axis_name = _rule_axis_name.get()
    if instantiate is not None:
        instantiate = tuple(instantiate)
        in_dims = tuple(0 if b else not_mapped for b in in_dims)

    def build():
        batched, out_dims = batch_jaxpr(closed, in_dims, axis_size, instantiate, axis_name)
        if instantiate is not None:
            out_dims = [d is not not_mapped for d in out_dims]
        return (*call.call_form(batched), out_dims)
    return call.derived(closed, ("batch_jaxpr", in_dims, axis_size, instantiate, axis_name), build)


call.SUBJAXPR_TRANSFORMS["batch_jaxpr"] = _batch_jaxpr_call_form
