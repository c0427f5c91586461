"""Host callbacks: equations that call a Python function at run time.

``debug_callback`` calls its function for its effect (ft.debug.print, ft.debug.callback)
and has no outputs; ``pure_callback`` calls a function of arrays that returns arrays of
declared shapes and dtypes (ft.pure_callback). Both run where the program runs: eagerly
at once, under jit when the compiled program runs, under vmap once per example (or, for
pure_callback, as `vmap_method` says), under differentiation on the primal values.

The function is a `HostCallback` param. Only tracing a program makes one: no printed
text parses to it, and the parser refuses these primitives by name (`runs_host_code`), so
a program read from text (untrusted IR) can never name code to run. The printed form
shows which function is called (``callback=<python print 'x = {x}'>``).

Both are `effectful`: the passes keep them as they are (DCE keeps a debug_callback nothing
reads, CSE never merges two, folding never runs one ahead of time).
"""
from __future__ import annotations

import numpy as np

from ir.core import ShapedArray, array_module, is_cupy_array
from ir.markers import Zero, not_mapped, tangent_aval
from ir.primitive import DType, OneOf, ParamType, Primitive, SHAPE, Tuple, TupleOf
from ir.primitives.batch_util import batch_size, bdim_to
from ir.primitives.taylor_util import is_zero, zero_series
from ir.tracing import bind, get_aval

MAX_CALLBACK_RESULTS = 256


class HostCallback:
    """A Python function of flat host (NumPy) arrays, named for the printed IR. Compared by
    identity: two callbacks are never the same computation."""
    __slots__ = ("fun", "name")

    def __init__(self, fun, name):
        self.fun, self.name = fun, name

    def __call__(self, *arrays):
        return self.fun(*arrays)

    def __str__(self):
        return f"<python {self.name}>"

    __repr__ = __str__


class Callback(ParamType):
    description = "a Python callback (made by tracing; no text parses to one)"

    def accepts(self, value):
        return isinstance(value, HostCallback)


CALLBACK = Callback()
RESULT_AVALS = TupleOf(Tuple(SHAPE, DType()), max_length=MAX_CALLBACK_RESULTS,
                       description="a tuple of (shape, dtype) pairs, one per result")
VMAP_METHODS = ("sequential", "expand_dims", "broadcast_all")


def _on_host(x):
    return x.get() if is_cupy_array(x) else np.asarray(x)


def _check_operands(name, avals):
    for aval in avals:
        if not isinstance(aval, ShapedArray):
            raise TypeError(f"{name} takes arrays, got {aval}")


# -------------------- debug_callback --------------------

def _debug_callback_abstract_eval(*avals, callback):
    _check_operands("debug_callback", avals)
    return []


def _debug_callback_impl(*args, callback):
    callback(*map(_on_host, args))
    return []


def _debug_callback_jvp(primals, tangents, *, callback):
    bind(debug_callback_p, *primals, callback=callback)  # NB: the primal values only, as JAX's
    return [], []


def _debug_callback_taylor(primals, series, *, callback):
    bind(debug_callback_p, *primals, callback=callback)
    return [], []


def _per_example(callback, dims, size):
    """`callback` called once per example of operands whose batch axis is 0 (or unbatched)."""
    def each(*arrays):
        results = []
        for i in range(size):
            results.append(callback(*(a[i] if d is not not_mapped else a for a, d in zip(arrays, dims, strict=True))))
        return results
    return each


def _moved_to_front(values, dims):
    return [v if d is not_mapped else bdim_to(v, d, None, 0) for v, d in zip(values, dims, strict=True)]


def _debug_callback_batch(values, dims, *, callback):
    size = batch_size(values, dims)
    each = _per_example(callback, dims, size)
    bind(debug_callback_p, *_moved_to_front(values, dims), callback=HostCallback(each, callback.name))
    return [], []


debug_callback_p = Primitive("debug_callback", params={"callback": CALLBACK},
                             abstract_eval=_debug_callback_abstract_eval, impl=_debug_callback_impl,
                             multiple_results=True, jvp=_debug_callback_jvp, taylor=_debug_callback_taylor,
                             batch=_debug_callback_batch, effectful=True, runs_host_code=True)


# -------------------- pure_callback --------------------

def _pure_callback_abstract_eval(*avals, callback, result_avals, vmap_method):
    _check_operands("pure_callback", avals)
    return [ShapedArray(shape, dtype) for shape, dtype in result_avals]


def _pure_callback_impl(*args, callback, result_avals, vmap_method):
    outs = callback(*map(_on_host, args))
    outs = list(outs) if isinstance(outs, (list, tuple)) else [outs]
    if len(outs) != len(result_avals):
        raise TypeError(f"pure_callback: {callback.name} returned {len(outs)} arrays, "
                        f"result_shape_dtypes declares {len(result_avals)}")
    xp = array_module(*args) if args else np
    results = []
    for i, (out, (shape, dtype)) in enumerate(zip(outs, result_avals, strict=True)):
        out = np.asarray(out)
        if out.shape != tuple(shape) or out.dtype != dtype:
            raise TypeError(f"pure_callback: {callback.name} returned {out.dtype.name}{list(out.shape)} as result "
                            f"{i}, result_shape_dtypes declares {np.dtype(dtype).name}{list(shape)}")
        results.append(xp.asarray(out) if xp is not np else np.array(out))
    return results


def _not_differentiable(callback):
    return ValueError(f"pure_callback ({callback.name}) cannot be differentiated: ftrans does not know its "
                      f"derivative. Wrap it in a function with a custom derivative, or stop_gradient its inputs")


def _pure_callback_jvp(primals, tangents, *, callback, result_avals, vmap_method):
    if not all(type(t) is Zero for t in tangents):
        raise _not_differentiable(callback)
    outs = bind(pure_callback_p, *primals, callback=callback, result_avals=result_avals, vmap_method=vmap_method)
    return outs, [Zero(tangent_aval(get_aval(o))) for o in outs]


def _pure_callback_taylor(primals, series, *, callback, result_avals, vmap_method):
    if not all(is_zero(c) for s in series for c in s):
        raise _not_differentiable(callback)
    outs = bind(pure_callback_p, *primals, callback=callback, result_avals=result_avals, vmap_method=vmap_method)
    return outs, [zero_series(get_aval(o), len(series[0]) if series else 0) for o in outs]


def _pure_callback_batch(values, dims, *, callback, result_avals, vmap_method):
    size = batch_size(values, dims)
    batched_avals = tuple(((size, *shape), dtype) for shape, dtype in result_avals)
    if vmap_method == "sequential":
        each = _per_example(callback, dims, size)

        def stacked(*arrays):
            per_example = [r if isinstance(r, (list, tuple)) else [r] for r in each(*arrays)]
            return [np.stack([np.asarray(r[k]) for r in per_example]) if per_example
                    else np.zeros((0, *shape), dtype) for k, (shape, dtype) in enumerate(result_avals)]
        fun, operands = HostCallback(stacked, callback.name), _moved_to_front(values, dims)
    else:
        # one call on whole batches: unbatched operands get a leading axis of 1 or of the batch size
        target = 1 if vmap_method == "expand_dims" else size
        operands = [bdim_to(v, d, size, 0) if d is not not_mapped else _leading(v, target)
                    for v, d in zip(values, dims, strict=True)]
        fun = callback
    outs = bind(pure_callback_p, *operands, callback=fun, result_avals=batched_avals, vmap_method=vmap_method)
    return outs, [0] * len(outs)


def _leading(x, n):
    from ir.primitives import structural
    aval = get_aval(x)
    return structural.broadcast_in_dim(x, (n, *aval.shape), tuple(range(1, aval.ndim + 1)))


pure_callback_p = Primitive("pure_callback",
                            params={"callback": CALLBACK, "result_avals": RESULT_AVALS,
                                    "vmap_method": OneOf(*VMAP_METHODS)},
                            abstract_eval=_pure_callback_abstract_eval, impl=_pure_callback_impl,
                            multiple_results=True, jvp=_pure_callback_jvp, taylor=_pure_callback_taylor,
                            batch=_pure_callback_batch,
                            effectful=True,  # "pure" is the user's promise; the passes do not rely on it
                            runs_host_code=True)


# -------------------- binders --------------------

def debug_callback(args, callback):
    return bind(debug_callback_p, *args, callback=callback)


def pure_callback(args, callback, result_avals, vmap_method="sequential"):
    return bind(pure_callback_p, *args, callback=callback, result_avals=tuple(result_avals), vmap_method=vmap_method)
