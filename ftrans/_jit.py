"""`jit`: trace once per argument signature, optimize, lower (to NumPy, or to
CuPy kernels on a GPU), cache.

With no trace open, a call looks its signature up in the cache (pytree
structure, per-leaf aval, static values) and runs the lowered function; with
no static arguments that is all it does (flatten, one dict lookup, the call).
Inside any open trace (grad, vmap, make_jaxpr, an outer jit) it binds one
`jit_call` equation holding the optimized jaxpr, which that trace transforms.

The cache key: (pytree structure of the dynamic arguments, their avals, the
static positional and keyword values, the backend). Avals are interned, so
the key hashes in C; static values must be hashable. The backend is
`backend=` when given, else where the array arguments live (ftrans/_device.py).
"""
from __future__ import annotations

import functools
from operator import itemgetter

import numpy as np

from ftrans._api_util import check_outputs, flatten_args, gc_paused, normalize_argnums, split_static
from ftrans._device import BACKENDS, resolve_backend
from ftrans.tree_util import tree_flatten, tree_structure, tree_unflatten
from interpreters import lowering_cupy, lowering_numpy
from ir import config, passes
from ir.core import ClosedJaxpr, concrete_aval
from ir.errors import api_boundary, at_user_line
from ir.floating_point import ignore_errors, new_nan, restore_errors
from ir.passes.inline import inline_calls
from ir.primitives.call import call_form, jit_call
from ir.tracing import Tracer, current_trace, find_nan_equation, nan_error, stage

_LEAF = tree_structure(0)  # the structure of a single array


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
        run = self.lowered.function
        if any(aval.weak_type for aval in in_avals):
            # some arguments are Python scalars, and the generated code calls implementations
            # that expect arrays; array arguments (never weakly typed) pay nothing for this
            self.run = lambda *leaves: run(*[np.asarray(x) if type(x) in (bool, int, float) else x
                                             for x in leaves])
        else:
            self.run = run
        self.unflatten = itemgetter(0) if out_tree == _LEAF else functools.partial(tree_unflatten, out_tree)
        # for binding under a trace: constants become explicit leading operands
        self.call_jaxpr, self.consts = call_form(closed)
        self.name = name

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
    def __init__(self, fun, static_argnums, static_argnames, backend=None):
        self.fun = fun
        self.backend = backend
        self.static_argnums = static_argnums
        # then a call without keywords may take the fast path of __call__
        self._no_static_argnums = isinstance(static_argnums, (tuple, list)) and not static_argnums
        self.static_argnames = tuple(static_argnames)
        self._static_argname_set = frozenset(self.static_argnames)
        self._static_positions = {}  # number of positional args -> normalized static_argnums
        self.name = getattr(fun, "__name__", "function")
        if not self.name.isidentifier():  # lambdas
            self.name = "jitted"
        self._cache = {}
        self.trace_count = 0  # how many times the function has been traced (cache misses)
        # name and docstring only: copying fun.__dict__ (the default) would let a wrapped
        # jitted function's attributes (its fun, its cache) overwrite this one's
        functools.update_wrapper(self, fun, updated=())

    def _static_argnums_for(self, num_args):
        static = self._static_positions.get(num_args)
        if static is None:  # not cached when it raises: the error comes again on every such call
            static = self._static_positions[num_args] = normalize_argnums(self.static_argnums, num_args)
        return static

    def _signature(self, args, kwargs, need_device=True):
        static = self._static_argnums_for(len(args))
        unknown = kwargs.keys() - self._static_argname_set
        if unknown:
            raise TypeError(at_user_line(f"jit: keyword arguments {sorted(unknown)} must be listed in "
                                         "static_argnames (pass arrays positionally)"))
        dynamic, merge = split_static(args, static)
        positions = [i for i in range(len(args)) if i not in static]
        leaves, in_tree, in_avals = flatten_args(dynamic, "jit", positions)
        static_values = tuple((i, args[i]) for i in static) + tuple(sorted(kwargs.items()))
        # under an open trace the call becomes a jit_call equation: no lowering runs here
        backend = resolve_backend(leaves, self.backend, need_device) if current_trace() is None else "numpy"
        key = (in_tree, tuple(in_avals), static_values, backend)
        try:
            hash(key)
        except TypeError:
            raise TypeError(at_user_line("jit: static arguments must be hashable; got "
                                         f"{[type(v).__name__ for _, v in static_values]}")) from None
        return key, leaves, in_tree, in_avals, merge

    def _compile(self, key, in_tree, in_avals, merge, kwargs):
        self.trace_count += 1
        out_trees = []

        def flat_fun(*tracers):
            out = self.fun(*merge(tree_unflatten(in_tree, tracers)), **kwargs)
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
            compiled = self._cache[key] = _Compiled(closed, in_avals, out_trees[0], self.name, backend=key[-1])
        return compiled

    def _lookup(self, args, kwargs, need_device=True):
        key, leaves, in_tree, in_avals, merge = self._signature(args, kwargs, need_device)
        compiled = self._cache.get(key)
        if compiled is None:
            compiled = self._compile(key, in_tree, in_avals, merge, kwargs)
        return compiled, leaves

    @api_boundary
    def __call__(self, *args, **kwargs):
        # The fast path, for a cached signature with nothing static and no trace open:
        # flatten, one dict lookup, the call. Everything else (static arguments, a
        # first call, a bad argument, a leaked tracer) takes `_call` and its checks.
        if kwargs or not self._no_static_argnums or current_trace() is not None:
            return self._call(args, kwargs)
        leaves, in_tree = tree_flatten(args)
        try:
            key = (in_tree, tuple(map(concrete_aval, leaves)), (), resolve_backend(leaves, self.backend))
            compiled = self._cache.get(key)
        except TypeError:  # a leaf that is no array, or mixed devices: _call names it
            compiled = None
        if compiled is None or any(isinstance(leaf, Tracer) for leaf in leaves):
            return self._call(args, kwargs)
        token = ignore_errors()  # IEEE-silently (ir/floating_point.py)
        try:
            outs = compiled.run(*leaves)
        finally:
            restore_errors(token)
        if config.debug_nans:
            compiled.check_nans(leaves, outs)
        return compiled.unflatten(outs)

    def _call(self, args, kwargs):
        compiled, leaves = self._lookup(args, kwargs)
        if current_trace() is None:
            token = ignore_errors()
            try:
                outs = compiled.run(*leaves)
            finally:
                restore_errors(token)
            if config.debug_nans:
                compiled.check_nans(leaves, outs)
        else:  # inside a transformation: one equation it can differentiate and batch through
            outs = jit_call(compiled.call_jaxpr, [*compiled.consts, *leaves], self.name)
        return compiled.unflatten(outs)

    @api_boundary
    def lower(self, *args, **kwargs) -> Lowered:
        """The optimized jaxpr and the generated code for these arguments. Lowering
        for backend="cupy" only generates code: it needs neither CuPy nor a GPU."""
        compiled, _ = self._lookup(args, kwargs, need_device=False)
        return Lowered(compiled.jaxpr, compiled.lowered)


def jit(fun=None, static_argnums=(), static_argnames=(), backend=None):
    """Compile `fun` (a decorator too): traced once per argument signature,
    optimized by the IR passes, lowered to one generated NumPy function, or
    to fused CuPy kernels for backend="cupy" (or CuPy array arguments)."""
    if backend not in BACKENDS:
        raise ValueError(at_user_line(f"jit: backend must be one of {BACKENDS}, got {backend!r}"))
    if fun is None:
        return functools.partial(jit, static_argnums=static_argnums, static_argnames=static_argnames,
                                 backend=backend)
    return JittedFunction(fun, static_argnums, static_argnames, backend)
