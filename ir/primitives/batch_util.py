"""Helpers the batching rules share, and the registrars of whole families.

A batching rule takes ``(values, dims, **params)``: each operand's value and
its batch dimension (an int, or `not_mapped` for an operand that is the same
for every example), and returns ``(out, out_dim)``. It runs one level out,
in the batch trace's parent, so it binds ordinary primitives on ordinary
values (arrays, or tracers of enclosing traces) and never sees a batch tracer.

Rules keep unbatched operands unbatched wherever the primitive allows it, and
move or broadcast only when the operand contract (identical shapes) asks for it.

NB: the primitive modules use these registrars while they are being declared,
so this module reaches `transpose` and `broadcast_in_dim` through the registry
at call time (as ad_util does).
"""
from __future__ import annotations

from ir.markers import not_mapped
from ir.primitive import PRIMITIVES
from ir.tracing import bind, get_aval


def batch_size(values, dims):
    """The size of the mapped axis, read off the first batched operand."""
    for x, d in zip(values, dims, strict=True):
        if d is not not_mapped:
            return get_aval(x).shape[d]
    raise ValueError("a batching rule was called with no batched operand")


def shift_dim(d, bdim):
    """Where per-example axis `d` sits in a value whose batch axis is `bdim`."""
    return d if d < bdim else d + 1


def move_dim(x, src, dst):
    """`x` with its axis `src` moved to position `dst` (the others keep their order)."""
    ndim = get_aval(x).ndim
    src, dst = src % ndim, dst % ndim
    if src == dst:
        return x
    permutation = [d for d in range(ndim) if d != src]
    permutation.insert(dst, src)
    return bind(PRIMITIVES["transpose"], x, permutation=tuple(permutation))


def broadcast_batched(x, size, dim):
    """An unbatched `x` repeated `size` times along a new axis at `dim`."""
    aval = get_aval(x)
    shape = aval.shape[:dim] + (size,) + aval.shape[dim:]
    dims = tuple(shift_dim(d, dim) for d in range(aval.ndim))
    return bind(PRIMITIVES["broadcast_in_dim"], x, shape=shape, broadcast_dimensions=dims)


def bdim_to(x, bdim, size, dst):
    """`x` with its batch axis at `dst`: moved there, or created there (broadcast) if unbatched."""
    if bdim is not_mapped:
        return broadcast_batched(x, size, dst)
    return move_dim(x, bdim, dst)


# -------------------- elementwise --------------------

def elementwise_batcher(prim):
    """The batching rule of an elementwise primitive of any arity.

    Fast path: when every batched operand has the same rank and batch axis and
    every unbatched operand is rank-0, the primitive applies as it is and the
    batch axis stays where it was. Otherwise batched operands move their batch
    axis to the front, per-example scalars among them are broadcast to the
    common shape, and unbatched operands are broadcast along the batch axis,
    since operands must have identical shapes; unbatched rank-0 operands
    (literals) stay rank-0.
    """
    def batch(values, dims, **params):
        avals = [get_aval(x) for x in values]
        batched = [(a.ndim, d) for a, d in zip(avals, dims, strict=True) if d is not not_mapped]
        unbatched_scalars = all(a.ndim == 0 for a, d in zip(avals, dims, strict=True) if d is not_mapped)
        if unbatched_scalars and len(set(batched)) == 1:
            return bind(prim, *values, **params), batched[0][1]
        size = batch_size(values, dims)
        example_shape = ()
        for a, d in zip(avals, dims, strict=True):
            shape = a.shape if d is not_mapped else a.shape[:d] + a.shape[d + 1:]
            if shape:
                example_shape = shape
                break
        out_shape = (size,) + example_shape
        operands = []
        for x, a, d in zip(values, avals, dims, strict=True):
            if d is not_mapped:
                if a.ndim:
                    x = broadcast_batched(x, size, 0)
            else:
                x = move_dim(x, d, 0)
                if a.ndim == 1 and example_shape:  # a per-example scalar beside arrays
                    x = bind(PRIMITIVES["broadcast_in_dim"], x, shape=out_shape, broadcast_dimensions=(0,))
            operands.append(x)
        return bind(prim, *operands, **params), 0
    return batch


# -------------------- reductions --------------------

def reduction_batcher(prim):
    """The batching rule of a primitive reducing `axes` (reduce_*, argmax/argmin):
    the same reduction on the per-example axes, shifted past the batch axis."""
    def batch(values, dims, *, axes, **params):
        (x,), (bdim,) = values, dims
        out = bind(prim, x, axes=tuple(shift_dim(a, bdim) for a in axes), **params)
        return out, bdim - sum(1 for a in axes if a < bdim)
    return batch
