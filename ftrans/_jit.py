"""`jit`: trace once per argument signature, optimize, lower (to NumPy, or to
CuPy kernels on a GPU), cache.

With no trace open, a call looks its signature up in the cache (pytree
structure, per-leaf aval, static values) and runs the lowered function; with
no static or keyword arguments that is all it does (flatten, one dict lookup,
the call). Inside any open trace (grad, vmap, make_jaxpr, an outer jit) it
binds one `jit_call` equation holding the optimized jaxpr, which that trace
transforms.

Arguments as in JAX: positional and keyword arguments are traced, except those
named by `static_argnums`/`static_argnames` (a parameter that may be passed
either way is static both ways: the signature of `fun` tells one from the
other). A static position the call does not fill (a parameter left at its
default) is simply absent. `donate_argnums`/`donate_argnames` are accepted and
checked; they change nothing, since ftrans never writes into its inputs.

The cache key: (pytree structure of the dynamic arguments, their avals, the
static positional and keyword values with their types, the backend, and the
bound axis names when there are any: ir/axis_env.py). Avals
are interned, so the key hashes in C; static values must be hashable. The
backend is `backend=` when given, else where the array arguments live
(ftrans/_device.py).
"""
from __future__ import annotations

import functools
import weakref
from operator import itemgetter

import numpy as np

from ftrans._api_util import (check_callable, check_outputs, flatten_args, gc_paused,
                              infer_argnums_and_argnames, signature_of, split_static)
from ftrans._config import jit_disabled
from ftrans._device import BACKENDS, resolve_backend
from ftrans.tree_util import tree_flatten, tree_structure, tree_unflatten
from interpreters import lowering_cupy, lowering_numpy
from ir import axis_env, config, passes
from ir.core import HOST_TYPES, ClosedJaxpr, concrete_avals, is_cupy_array
from ir.errors import api_boundary, at_user_line
from ir.floating_point import ignore_errors, new_nan, restore_errors
from ir.passes.inline import inline_calls
from ir.primitives.call import call_form, jit_call
from ir.tracing import current_trace, find_nan_equation, nan_error, stage

_LEAF = tree_structure(0)  # the structure of a single array


LIVE_JITTED = weakref.WeakSet()  # every jitted function alive: what ft.clear_caches empties


class Lowered:
    """What `jit(f).lower(*args)` returns: the optimized IR and the generated code."""

    def __init__(self, jaxpr: ClosedJaxpr, lowered):
        self.jaxpr, self._lowered = jaxpr, lowered

    def as_text(self):
        """The generated code: a NumPy function, or the CuPy host plan and CUDA kernels."""
        return self._lowered.source


class _Compiled:
    """One cache entry: the optimized jaxpr, its lowering, the output structure.

    `run` (the generated function itself) and `unflatten` are what a cached
    call uses, picked here so that the call does no more than call them."""

    def __init__(self, closed, in_avals, out_tree, name, backend):
        self.jaxpr = closed
        self.lowered = (lowering_cupy if backend == "cupy" else lowering_numpy).lower(closed, name)
        self.run = self.lowered.function  # it takes Python scalars where arrays go, as NumPy does
        self.unflatten = itemgetter(0) if out_tree == _LEAF else functools.partial(tree_unflatten, out_tree)
        # for binding under a trace: constants become explicit leading operands
        self.call_jaxpr, self.consts = call_form(closed)
        self.name = name

    def execute(self, leaves):
        """Run the generated code on `leaves`, IEEE-silently (ir/floating_point.py)."""
        token = ignore_errors()
        try:
            outs = self.run(*leaves)
        finally:
            restore_errors(token)
        if config.debug_nans:
            self.check_nans(leaves, outs)
        return outs

    def check_nans(self, leaves, outs):
        """debug_nans: if the call made a NaN, re-run its jaxpr one equation at a time
        to name the one that did (as JAX does), else say that only the optimized code did."""
        if not new_nan([*leaves, *self.consts], outs):
            return
        where = f"the jitted function {self.name}"
        find_nan_equation(self.jaxpr, leaves, where)
        raise nan_error(where, ", though none of its equations makes one when they run one at a time: "
                               "the NaN comes from jit's rewrites (such as x**3 as multiplications, "
                               "which may overflow where power does not)")


class JittedFunction:
    def __init__(self, fun, static_argnums=None, static_argnames=None, backend=None,
                 donate_argnums=None, donate_argnames=None):
        check_callable(fun, "jit")
        if backend not in BACKENDS:
            raise ValueError(at_user_line(f"jit: backend must be one of {BACKENDS}, got {backend!r}"))
        self.fun = fun
        self.backend = backend
        signature = signature_of(fun)
        self.static_argnums, self.static_argnames = infer_argnums_and_argnames(
            signature, static_argnums, static_argnames, "static", "jit")
        # NB: accepted as JAX's are, and checked; ftrans never writes into its inputs, so
        # there is nothing to donate (every result is a fresh array either way)
        self.donate_argnums, self.donate_argnames = infer_argnums_and_argnames(
            signature, donate_argnums, donate_argnames, "donate", "jit")
        _check_disjoint(self.static_argnums, self.donate_argnums, "argnums")
        _check_disjoint(self.static_argnames, self.donate_argnames, "argnames")
        self._static_argname_set = frozenset(self.static_argnames)
        self._static_positions_by_arity = {}  # number of positional args -> the static positions
        self.name = getattr(fun, "__name__", "function")
        if not (self.name.isascii() and self.name.isidentifier()):  # lambdas; a name prints as IR, which is ASCII
            self.name = "jitted"
        self._cache = {}
        LIVE_JITTED.add(self)  # for ft.clear_caches
        self.trace_count = 0  # how many times the function has been traced (cache misses)
        # name and docstring only: copying fun.__dict__ (the default) would let a wrapped
        # jitted function's attributes (its fun, its cache) overwrite this one's
        functools.update_wrapper(self, fun, updated=())

    def _static_positions(self, num_args):
        """The static positions of a call with `num_args` positional arguments; a
        static_argnums entry the call does not reach is absent (as in JAX)."""
        static = self._static_positions_by_arity.get(num_args)
        if static is None:  # not cached when it raises: the error comes again on every such call
            positions = set()
            for i in self.static_argnums:
                if i >= num_args:
                    continue
                if i < -num_args:
                    raise ValueError(at_user_line(
                        f"jit: static_argnums={self.static_argnums!r} refers to positional argument {i}, "
                        f"but the function was called with {num_args} positional arguments"))
                positions.add(i % num_args)
            static = self._static_positions_by_arity[num_args] = frozenset(positions)
        return static

    def _signature(self, args, kwargs, need_device=True):
        static = self._static_positions(len(args))
        dynamic, merge = split_static(args, static)
        static_kwargs = {k: v for k, v in kwargs.items() if k in self._static_argname_set}
        dynamic_kwargs = {k: v for k, v in kwargs.items() if k not in self._static_argname_set}
        positions = [i for i in range(len(args)) if i not in static]
        leaves, in_tree, in_avals = flatten_args(dynamic, "jit", positions, dynamic_kwargs)
        # with its type: 1, 1.0 and True are equal but trace differently
        static_values = (tuple((i, type(args[i]), args[i]) for i in sorted(static))
                         + tuple((k, type(v), v) for k, v in sorted(static_kwargs.items())))
        # under an open trace the call becomes a jit_call equation: no lowering runs here
        backend = resolve_backend(leaves, self.backend, need_device) if current_trace() is None else "numpy"
        # a call with keyword arguments flattens (args, kwargs): tagged, so that it never
        # meets the structure of a call passing the same values positionally
        tree_key = (in_tree, "with keyword arguments") if dynamic_kwargs else in_tree
        key = (tree_key, tuple(in_avals), static_values, backend)
        bound_axes = axis_env.bound_axes()
        if bound_axes:  # collectives trace differently (or not at all) under other axis names
            key += (bound_axes,)
        try:
            hash(key)
        except TypeError:
            raise TypeError(at_user_line("jit: static arguments must be hashable; got "
                                         f"{[type(v).__name__ for _, _, v in static_values]}")) from None
        call = _Call(in_tree, bool(dynamic_kwargs), merge, static_kwargs)
        return key, leaves, in_avals, call

    def _compile(self, key, in_avals, call):
        self.trace_count += 1
        out_trees = []

        def flat_fun(*tracers):
            call_args, call_kwargs = call.split(tracers)
            out = self.fun(*call_args, **call_kwargs)
            out_leaves, out_tree = tree_flatten(out)
            check_outputs(out_leaves, "jit")
            out_trees.append(out_tree)
            return out_leaves

        with gc_paused():
            closed = stage(flat_fun, in_avals)
            # closed-over arrays are copied now: later changes to them do not reach the compiled code
            consts = [np.array(c) if isinstance(c, np.ndarray) else c for c in closed.consts]
            # integer powers become multiplications, as JAX's integer_pow does (not bit-exact to np.power)
            closed = passes.optimize(inline_calls(ClosedJaxpr(closed.jaxpr, consts)), exact_powers=False)
            compiled = self._cache[key] = _Compiled(closed, in_avals, out_trees[0], self.name, backend=key[3])
        return compiled

    def _lookup(self, args, kwargs, need_device=True):
        key, leaves, in_avals, call = self._signature(args, kwargs, need_device)
        compiled = self._cache.get(key)
        if compiled is None:
            compiled = self._compile(key, in_avals, call)
        return compiled, leaves

    @api_boundary
    def __call__(self, *args, **kwargs):
        # The fast path, for a cached signature with nothing static, no keywords and no
        # trace open: flatten, one dict lookup, the call. Everything else (static or keyword
        # arguments, a first call, a bad argument, a leaked tracer) takes `_call` and its checks.
        if kwargs or self.static_argnums or current_trace() is not None or jit_disabled.get():
            return self._call(args, kwargs)
        if self.backend != "cupy" and HOST_TYPES.issuperset(map(type, args)):
            # every argument an array or a scalar (a leaf each, on the host): no flattening to do
            leaves, in_tree, backend = args, _leaf_tuple(len(args)), "numpy"
        else:
            leaves, in_tree = tree_flatten(args)
            backend = self._fast_backend(leaves)
        compiled = None if backend is None else self._cache.get((in_tree, concrete_avals(leaves), (), backend))
        if compiled is None:
            return self._call(args, kwargs)
        return compiled.unflatten(compiled.execute(leaves))

    def _fast_backend(self, leaves):
        """The backend of a call whose leaves are all arrays on one device (so no tracers
        and nothing that is not an array); None for any other call."""
        if HOST_TYPES.issuperset(map(type, leaves)):  # checked per distinct type, in C
            return "numpy" if self.backend != "cupy" else resolve_backend(leaves, "cupy")
        if self.backend != "numpy" and leaves and all(map(is_cupy_array, leaves)):
            return "cupy"
        return None

    def _call(self, args, kwargs):
        if jit_disabled.get():  # ft.disable_jit(): the Python function itself, eagerly
            return self.fun(*args, **kwargs)
        compiled, leaves = self._lookup(args, kwargs)
        if current_trace() is None:
            outs = compiled.execute(leaves)
        else:  # inside a transformation: one equation it can differentiate and batch through
            outs = jit_call(compiled.call_jaxpr, [*compiled.consts, *leaves], self.name)
        return compiled.unflatten(outs)

    @api_boundary
    def lower(self, *args, **kwargs) -> Lowered:
        """The optimized jaxpr and the generated code for these arguments. Lowering
        for backend="cupy" only generates code: it needs neither CuPy nor a GPU."""
        compiled, _ = self._lookup(args, kwargs, need_device=False)
        return Lowered(compiled.jaxpr, compiled.lowered)


@functools.cache
def _leaf_tuple(n):
    """The structure of a tuple of n leaves."""
    return tree_structure((0,) * n)


class _Call:
    """How the flat traced values of one signature become `fun`'s arguments again."""

    def __init__(self, in_tree, has_dynamic_kwargs, merge, static_kwargs):
        self.in_tree, self.has_dynamic_kwargs = in_tree, has_dynamic_kwargs
        self.merge, self.static_kwargs = merge, static_kwargs

    def split(self, leaves):
        """(positional arguments, keyword arguments) holding `leaves`."""
        values = tree_unflatten(self.in_tree, leaves)
        dynamic, dynamic_kwargs = values if self.has_dynamic_kwargs else (values, {})
        return self.merge(dynamic), {**self.static_kwargs, **dynamic_kwargs}


def _check_disjoint(static, donated, what):
    both = sorted(set(static) & set(donated))
    if both:
        raise ValueError(at_user_line(f"jit: static_{what} and donate_{what} both list {both}: a static "
                                      "argument is a Python value, not a buffer to donate"))


_DECORATOR = object()  # jit called without a function: `@jit(static_argnums=...)`


@api_boundary
def jit(fun=_DECORATOR, static_argnums=None, static_argnames=None, backend=None, *,
        donate_argnums=None, donate_argnames=None):
    """Compile `fun` (a decorator too): traced once per argument signature,
    optimized by the IR passes, lowered to one generated NumPy function, or
    to fused CuPy kernels for backend="cupy" (or CuPy array arguments).

    Arguments as JAX's: `static_argnums`/`static_argnames` name the arguments
    passed as Python values (hashable; a new value traces again), inferred from
    each other by `fun`'s signature when only one is given. `donate_argnums`/
    `donate_argnames` are accepted and checked, and change nothing: ftrans never
    writes into its inputs."""
    if backend not in BACKENDS:
        raise ValueError(at_user_line(f"jit: backend must be one of {BACKENDS}, got {backend!r}"))
    if fun is _DECORATOR:
        return functools.partial(jit, static_argnums=static_argnums, static_argnames=static_argnames,
                                 backend=backend, donate_argnums=donate_argnums, donate_argnames=donate_argnames)
    return JittedFunction(fun, static_argnums, static_argnames, backend, donate_argnums, donate_argnames)
