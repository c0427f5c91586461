"""`shard_map` and `pmap` over processes: f runs on every process with an axis
name bound (kind "process"), so that collectives over it are MPI calls
(ftrans/distributed.py).

`shard_map(f, mesh, in_specs, out_specs)` is JAX's: every process passes the
global arguments, f sees its block of each (dimensions named in the spec are
split along the mesh axis), and the global results are put back together
(all_gather of the named dimensions; `P()` outputs are taken as replicated).
`shard_map(f, axis_name="i")` and `pmap(f, axis_name="i")` are per-process:
each process passes its own local values and gets back its own results.

Gradients through the global form equal the unsharded gradient, as JAX's: a
replicated (global) value's cotangent is one global cotangent, held on every
process, whereas psum's transpose (psum, right for per-process values) sums
what every process holds. So as JAX's shard_map transpose, each output's
cotangent is divided by the axis size, and each input's cotangent is summed
over the processes; here by identity functions whose derivative does that
(sg: stop_gradient): out = sg(y) + (y - sg(y)) / n and x' = sg(x) + psum(x - sg(x)).
Their values are exactly y and x; the second costs an allreduce of zeros, so
both are applied only to traced values (concrete ones cannot be differentiated).
"""
from __future__ import annotations

import contextlib
import functools

from ftrans import distributed
from ftrans._collectives import all_gather, psum
from ftrans._jit import jit
from ftrans._vmap import vmap
from ftrans.lax import stop_gradient
from ftrans.sharding import Mesh, PartitionSpec
from ftrans.tree_util import tree_flatten, tree_unflatten
from ir.errors import api_boundary, at_user_line
from ir.tracing import Tracer


def _check_callable(f, what):
    if not callable(f):
        raise TypeError(at_user_line(f"{what}: expected a callable, got {type(f).__name__}"))


def _broadcast_specs(specs, tree, what):
    """One PartitionSpec per leaf of `tree`, `specs` a pytree prefix of it (a PartitionSpec is a leaf)."""
    if isinstance(specs, PartitionSpec) or specs is None:
        return [PartitionSpec() if specs is None else specs] * len(tree_flatten(tree)[0])
    if isinstance(specs, (tuple, list)) and isinstance(tree, (tuple, list)) and len(specs) == len(tree):
        return [s for sub, t in zip(specs, tree) for s in _broadcast_specs(sub, t, what)]
    if isinstance(specs, dict) and isinstance(tree, dict) and set(specs) == set(tree):
        return [s for k in sorted(tree) for s in _broadcast_specs(specs[k], tree[k], what)]
    raise ValueError(at_user_line(f"shard_map: {what} {specs!r} is not a pytree prefix of the "
                                  f"{'arguments' if what == 'in_specs' else 'outputs'} (PartitionSpecs at its leaves)"))


def _split_dims(spec, ndim, names, what):
    """{dimension: mesh axis name} of the dimensions `spec` splits."""
    if len(spec) > ndim:
        raise ValueError(at_user_line(f"shard_map: {what} {spec!r} has more entries than the {ndim} dimensions "
                                      "of its value"))
    for p in spec:
        if p is not None and p not in names:
            raise ValueError(at_user_line(f"shard_map: {what} {spec!r} names {p!r}, not an axis of the mesh "
                                          f"(axis names {names!r})"))
    used = [p for p in spec if p is not None]
    if len(set(used)) != len(used):
        raise ValueError(at_user_line(f"shard_map: {what} {spec!r} splits two dimensions along one mesh axis"))
    return {d: p for d, p in enumerate(spec) if p is not None}


def _block(x, d, index, count):
    size = x.shape[d]
    if size % count:
        raise ValueError(at_user_line(f"shard_map: dimension {d} of an argument of shape {tuple(x.shape)} is "
                                      f"not divisible by the {count} processes of its mesh axis"))
    b = size // count
    return x[(slice(None),) * d + (slice(index * b, (index + 1) * b),)]


def _as_replicated_input(x, names):
    """x, with a derivative that sums the cotangent over the processes (module docstring)."""
    if not isinstance(x, Tracer) or x.dtype.kind != "f":
        return x
    fixed = stop_gradient(x)
    return fixed + psum(x - fixed, names)


def _as_replicated_output(y, count):
    """y, with a derivative divided by the number of processes (module docstring)."""
    if not isinstance(y, Tracer) or y.dtype.kind != "f":
        return y
    fixed = stop_gradient(y)
    return fixed + (y - fixed) / count


def _global_shard_map(f, mesh, in_specs, out_specs):
    if not isinstance(mesh, Mesh):
        raise TypeError(at_user_line(f"shard_map: mesh must be an ft.sharding.Mesh, got {type(mesh).__name__}"))
    names, shape = mesh.axis_names, mesh.devices.shape

    @functools.wraps(f)
    def sharded(*args):
        import ftrans.numpy as fnp
        comms, coords = mesh.communicators()
        leaves, tree = tree_flatten(args)
        specs = _broadcast_specs(in_specs, args, "in_specs")
        with contextlib.ExitStack() as bindings:
            for name, comm in zip(names, comms):
                bindings.enter_context(distributed.bind_process_axis(name, "shard_map", comm))
            blocks = []
            for x, spec in zip(leaves, specs):
                x = fnp.asarray(x)
                split = _split_dims(spec, x.ndim, names, "in_specs")
                x = _as_replicated_input(x, names)
                for d, name in split.items():
                    k = names.index(name)
                    x = _block(x, d, coords[k], shape[k])
                blocks.append(x)
            out = f(*tree_unflatten(tree, blocks))
            out_leaves, out_tree = tree_flatten(out)
            results = []
            for y, spec in zip(out_leaves, _broadcast_specs(out_specs, out, "out_specs")):
                y = fnp.asarray(y)
                for d, name in _split_dims(spec, y.ndim, names, "out_specs").items():
                    y = all_gather(y, name, axis=d, tiled=True)
                results.append(_as_replicated_output(y, mesh.size))
        return tree_unflatten(out_tree, results)
    return sharded


@api_boundary
def shard_map(f, mesh=None, in_specs=None, out_specs=None, *, axis_name=None, check_rep=True):
    """JAX's shard_map over processes (module docstring); `shard_map(f, axis_name="i")`: f on each
    process's local values with "i" bound to all processes."""
    _check_callable(f, "shard_map")
    if axis_name is not None:
        if mesh is not None or in_specs is not None or out_specs is not None:
            raise TypeError(at_user_line("shard_map: pass either mesh, in_specs and out_specs, or axis_name alone"))
        if type(axis_name) is not str:
            raise TypeError(at_user_line(f"shard_map: axis_name must be a str, got {axis_name!r}"))

        @functools.wraps(f)
        def local(*args, **kwargs):
            with distributed.bind_process_axis(axis_name, "shard_map"):
                return f(*args, **kwargs)
        return local
    if mesh is None or in_specs is None or out_specs is None:
        raise TypeError(at_user_line("shard_map: needs mesh, in_specs and out_specs (or axis_name=... alone)"))
    return _global_shard_map(f, mesh, in_specs, out_specs)


@api_boundary
def pmap(f, axis_name=None, *, in_axes=0, out_axes=0):
    """JAX's pmap over processes: each process passes its local values, whose mapped leading axis
    is its number of devices (one), and gets back its results with that axis."""
    _check_callable(f, "pmap")
    name = axis_name if axis_name is not None else f"pmap_{id(f)}"
    if type(name) is not str:
        raise TypeError(at_user_line(f"pmap: axis_name must be a str, got {axis_name!r}"))
    mapped = jit(vmap(f, in_axes=in_axes, out_axes=out_axes))

    @functools.wraps(f)
    def per_process(*args):
        axes = in_axes if isinstance(in_axes, (tuple, list)) else (in_axes,) * len(args)
        for arg, ax in zip(args, axes):
            if ax is None:
                continue
            for leaf in tree_flatten(arg)[0]:
                shape = getattr(leaf, "shape", ())
                if len(shape) <= ax or shape[ax] != 1:
                    raise ValueError(at_user_line(
                        f"pmap: a mapped argument of shape {tuple(shape)} must have size 1 along axis {ax}: "
                        "each process maps over its local devices, and a process is one device "
                        "(ft.distributed.process_count() processes in all)"))
        with distributed.bind_process_axis(name, "pmap"):
            return mapped(*args)
    return per_process

