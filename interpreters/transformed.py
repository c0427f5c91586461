"""Transformations applied at run time: the implementation of a while_reverse with `transforms`.

Under jit, reverse mode of a while_reverse in its primal operands needs a tape whose length
(the loop's trip count) is known only when the loop runs, so its rule records the
transformation instead (ir/primitives/control_flow.py, "while_reverse, transformed once its
trip count is known"). Its implementation, given concrete operands, applies the recorded
transformations to the plain while_reverse with the eager interpreters: there the trip count
is a number, each loop becomes scans of that many iterations, and their rules apply to any
order. Each body runs as the generated code of its jaxpr; what runs in Python per call is the
transformations' bookkeeping, which does not grow with the trip count.
"""
from __future__ import annotations

from interpreters import ad, ad_eager, batching
from ir.markers import Zero, not_mapped, tangent_aval
from ir.primitives import ad_util, call
from ir.primitives.control_flow import transformed_avals
from ir.tracing import current_trace


def run_transformed(base, transforms, args, in_avals, out_avals):
    """`base` (a list of values of `in_avals` -> a list of outputs of `out_avals`) with
    `transforms` (innermost first) applied, at `args`. Call with concrete args and no trace open."""
    fun = base
    for spec in transforms:
        kind, flags, size = spec
        fun = _WRAPPERS[kind](fun, tuple(flags), size, in_avals)
        in_avals, out_avals = transformed_avals(in_avals, out_avals, [spec])
    return fun(list(args))


def _jvp(fun, nonzero, size, avals):
    """(inputs, the tangents of those flagged) -> (outputs, every output's tangent, zeros materialized)."""
    def jvp_fun(args):
        primals, tangents = args[:len(avals)], iter(args[len(avals):])
        tangents_in = [next(tangents) if nz else Zero(tangent_aval(a)) for a, nz in zip(avals, nonzero, strict=True)]
        outs, tangents_out = ad.jvp_flat(lambda *xs: fun(list(xs)), primals, tangents_in)
        like = next((x for x in args if hasattr(x, "shape")), None)
        return [*outs, *(ad_util.zeros(t.aval, like) if type(t) is Zero else t for t in tangents_out)]
    return jvp_fun


def _vjp(fun, linear, size, avals):
    """(inputs not flagged, cotangents of the outputs) -> cotangents of the inputs flagged. The
    function is linear in those (a transpose rule made this): it is linearized at zero."""
    num_known = linear.count(False)

    def vjp_fun(args):
        known, cts = iter(args[:num_known]), args[num_known:]
        like = next((x for x in args if hasattr(x, "shape")), None)
        primals = [ad_util.zeros(a, like) if lin else next(known) for a, lin in zip(avals, linear, strict=True)]
        flat = lambda *xs: fun(list(xs))  # noqa: E731
        if current_trace() is None:  # eager: a tape
            _, linear_map = ad_eager.vjp_flat(flat, primals, avals, linear)
        else:  # inside a transformation applied after this one (a jvp): linearize and transpose as IR
            _, linear_map = ad.linearize_flat(flat, primals, linear)
        nonzero = [ct for ct, nz in zip(cts, linear_map.nonzero_outputs, strict=True) if nz]
        if nonzero:
            cts_in = linear_map.transpose(nonzero)
        else:  # no output depends on them
            cts_in = [Zero(tangent_aval(a)) for a, lin in zip(avals, linear) if lin]
        return [ad_util.zeros(tangent_aval(a), like) if type(ct) is Zero else ct
                for a, ct in zip((a for a, lin in zip(avals, linear) if lin), cts_in, strict=True)]
    return vjp_fun


def _vmap(fun, batched, size, avals):
    """Inputs flagged with a leading batch axis of `size`, every output batched at axis 0."""
    def batched_fun(args):
        dims = [0 if b else not_mapped for b in batched]
        return batching.batch_flat(lambda *xs: fun(list(xs)), args, dims, size, lambda outs: [0] * len(outs))
    return batched_fun


_WRAPPERS = {"jvp": _jvp, "vjp": _vjp, "vmap": _vmap}

call.SUBJAXPR_TRANSFORMS["run_transformed"] = run_transformed
