"""Traces, tracers and `bind`: how running Python code reaches the interpreters.

A trace is an interpreter of primitive applications. The current trace lives
in a context variable; `bind` hands every primitive application to it. With no
trace open, `bind` runs the primitive's implementation on concrete arrays.
Each trace remembers its parent (the trace that was current when it opened),
so a transformation can do its primal work one level out: nesting is a chain.

Values from outside the current trace (arrays, Python scalars, tracers of an
enclosing trace) are *lifted*: each trace decides how to see them as its own.
A tracer whose trace has finished is a leak, and using it is an error.
"""
from __future__ import annotations

import contextlib
import contextvars
import functools

import numpy as np

from ir import config
from ir.core import ClosedJaxpr, Eqn, Jaxpr, Literal, ShapedArray, Var, concrete_aval, is_cupy_array
from ir.errors import ConcretizationError, TracerArrayConversionError, UnexpectedTracerError, at_user_line
from ir.floating_point import ignore_errors, new_nan, restore_errors
from ir.primitive import as_array, check_impl_result

_current_trace: contextvars.ContextVar = contextvars.ContextVar("ftrans_current_trace", default=None)


def current_trace():
    return _current_trace.get()


# What every equation staged now is tagged with (Eqn.origin): reverse mode says "forward"
# while it linearizes and "backward" while it transposes, wherever the equations land.
_eqn_origin: contextvars.ContextVar = contextvars.ContextVar("ftrans_eqn_origin", default=None)


def staged_as(origin):
    """Decorator: the equations staged while the function runs, in any staging
    trace, carry `origin` (Eqn.origin), unless a nested call says otherwise."""
    def decorate(fun):
        @functools.wraps(fun)
        def tagged(*args, **kwargs):
            token = _eqn_origin.set(origin)
            try:
                return fun(*args, **kwargs)
            finally:
                _eqn_origin.reset(token)
        return tagged
    return decorate


@contextlib.contextmanager
def trace_context(trace):
    """Make `trace` current for the block; on exit it is finished for good."""
    token = _current_trace.set(trace)
    try:
        yield trace
    finally:
        _current_trace.reset(token)
        trace.alive = False


# Within ft.ensure_compile_time_eval(): a primitive on concrete values only is computed, even
# inside a trace (what JAX's does), so that values known while tracing can steer Python code
_compile_time_eval: contextvars.ContextVar = contextvars.ContextVar("ftrans_compile_time_eval", default=False)


@contextlib.contextmanager
def compile_time_eval():
    token = _compile_time_eval.set(True)
    try:
        yield
    finally:
        _compile_time_eval.reset(token)


def _computable_now(prim, args):
    """Within compile_time_eval: no traced operand, and nothing whose value depends on
    the trace (a collective's on its axis)."""
    return (prim.impl is not None and prim.collective_batch is None
            and not any(isinstance(x, Tracer) for x in args))


def bind(prim, *args, **params):
    """Apply a primitive in the current trace (or compute it, with none open)."""
    trace = _current_trace.get()
    if trace is not None and _compile_time_eval.get() and _computable_now(prim, args):
        trace = None
    if trace is None:  # results reach the user: 0-d arrays, never NumPy scalars
        out = apply_impl(prim, args, params)
        return [as_array(o) for o in out] if prim.multiple_results else as_array(out)
    return trace.process_primitive(prim, args, params)


def compute(prim, args, params):
    """`bind` with no trace open: the eager fallback of a transformation (a
    computation on constants only) whose results go back to user code."""
    out = apply_impl(prim, args, params)
    return [as_array(o) for o in out] if prim.multiple_results else as_array(out)


def bind_in(trace, prim, args, params):
    """`bind` with `trace` current: how a transformation does work one level out."""
    token = _current_trace.set(trace)
    try:
        return bind(prim, *args, **params)
    finally:
        _current_trace.reset(token)


def apply_impl(prim, args, params):
    """Compute a primitive on concrete values, IEEE-silently (see ir/floating_point.py).
    0-d results may be NumPy scalars: inside a transformation that is cheaper, and
    `bind` converts what users see."""
    for x in args:
        if isinstance(x, Tracer):
            raise leaked_tracer_error(x)
    token = ignore_errors()
    try:
        out = prim.impl(*args, **params)
    finally:
        restore_errors(token)
    if config.debug:
        check_impl_result(prim, args, params, out if prim.multiple_results else [out])
    if config.debug_nans:
        check_nans(prim, args, params, out if prim.multiple_results else [out])
    return out


# -------------------- debug_nans --------------------

def nan_error(what, detail="", location=None):
    """JAX's words, `detail` (which equation), then where: `location`, by default
    the user's current line."""
    message = f"invalid value (nan) encountered in {what}{detail}"
    return FloatingPointError(at_user_line(message) if location is None else f"{message}\n  at {location}")


def check_nans(prim, args, params, outs):
    """With debug_nans: a FloatingPointError if `prim` made a NaN of operands that
    hold none. For a call of a sub-jaxpr its equations first run one at a time
    (as JAX's de-optimized re-run), to name the one that made it."""
    if not new_nan(args, outs):
        return
    if prim.name == "jit_call":  # its operands are its jaxpr's inputs (a loop's are not its body's)
        find_nan_equation(params["jaxpr"], args, f"jit_call of {params['name']}")
    raise nan_error(prim.name)


def find_nan_equation(closed: ClosedJaxpr, args, where, location=None):
    """Evaluate `closed` one equation at a time and raise a FloatingPointError at
    the first that makes a NaN of operands holding none (inside a sub-jaxpr, at
    the equation there); `where` names the jaxpr, `location` the user's line (by
    default the current one). Returns if none does: a NaN from the inputs or
    constants, or one that only the optimized code made."""
    jaxpr = closed.jaxpr
    env = dict(zip(jaxpr.constvars, closed.consts, strict=True))
    env.update(zip(jaxpr.invars, (np.asarray(x) if type(x) in _SCALAR_TYPES else x for x in args), strict=True))
    for index, eqn in enumerate(jaxpr.eqns):
        ins = [x.value if type(x) is Literal else env[x] for x in eqn.invars]
        prim = eqn.primitive
        token = ignore_errors()
        try:
            out = prim.impl(*ins, **eqn.params)
        finally:
            restore_errors(token)
        outs = list(out) if prim.multiple_results else [out]
        if new_nan(ins, outs):
            if prim.name == "jit_call":
                find_nan_equation(eqn.params["jaxpr"], ins, f"jit_call of {eqn.params['name']}", location)
            types = lambda vs: ", ".join(v.aval.str_short() for v in vs)
            raise nan_error(prim.name, f" (equation {index + 1} of {len(jaxpr.eqns)} in {where}: "
                                       f"{types(eqn.outvars)} = {prim.name} {types(eqn.invars)})", location)
        env.update(zip(eqn.outvars, outs, strict=True))


def leaked_tracer_error(tracer):
    return UnexpectedTracerError(at_user_line(
        f"a traced value ({tracer.aval.str_short()}) escaped the transformation that made it "
        f"(a {type(tracer._trace).__name__}) and was used after it finished. Return the value "
        "from the transformed function instead of storing it outside (e.g. in a global or "
        "an attribute)."))


def get_aval(x) -> ShapedArray:
    return x.aval if isinstance(x, Tracer) else concrete_aval(x)


# -------------------- traces and tracers --------------------

class Trace:
    """Base of all interpreters. Subclasses implement `process_primitive`."""

    def __init__(self):
        self.parent = _current_trace.get()
        self.alive = True

    def process_primitive(self, prim, args, params):
        raise NotImplementedError

    def check_alive(self, tracer):
        if not tracer._trace.alive:
            raise leaked_tracer_error(tracer)


class Tracer:
    """A value seen by a trace. Subclasses define `aval` and `concrete_value`.

    Python operators and array methods are installed by `ftrans.numpy`, which
    owns NumPy's semantics; `ir` knows only the tracer's type and identity.
    """
    __slots__ = ("_trace",)
    __array_priority__ = 1000
    __array_ufunc__ = None  # `ndarray * tracer` defers to the tracer instead of making an object array
    __hash__ = None  # like arrays: `==` builds a traced comparison, so tracers cannot be dict keys

    @property
    def aval(self) -> ShapedArray:
        raise NotImplementedError

    def concrete_value(self):
        """The concrete array behind this tracer, or None if it is abstract."""
        return None

    shape = property(lambda self: self.aval.shape)
    dtype = property(lambda self: self.aval.dtype)
    ndim = property(lambda self: self.aval.ndim)
    size = property(lambda self: self.aval.size)

    def __len__(self):
        if not self.aval.shape:
            raise TypeError("len() of a 0-d traced array")
        return self.aval.shape[0]

    def __iter__(self):
        if not self.aval.shape:
            raise TypeError("iteration over a 0-d traced array")
        return (self[i] for i in range(self.aval.shape[0]))

    def _concretize(self, what):
        value = self.concrete_value()
        if value is None:
            raise ConcretizationError(at_user_line(
                f"{what} of a traced value ({self.aval.str_short()}): its value is not known "
                "while the function is being transformed (e.g. under jit, make_jaxpr or vmap). "
                "For a value-dependent branch use ft.lax.cond, or mark "
                "the argument static with static_argnums."))
        return value

    def __bool__(self):
        return bool(self._concretize("bool()"))

    def __index__(self):
        if self.aval.dtype.kind not in "biu":
            raise TypeError(at_user_line(f"{self.aval.str_short()} traced value cannot be used as an index"))
        return int(self._concretize("int()"))

    __int__ = __index__

    def __float__(self):
        raise ConcretizationError(at_user_line(
            f"float() of a traced value ({self.aval.str_short()}) would drop it out of the "
            "transformation (and its derivative). Keep it an array: use ftrans.numpy functions."))

    def __complex__(self):
        raise TypeError(at_user_line("ftrans does not support complex numbers"))

    def __array__(self, *args, **kwargs):
        raise TracerArrayConversionError(at_user_line(
            f"NumPy was asked to convert a traced value ({self.aval.str_short()}) to an array, "
            "which would silently make it a constant. Use the ftrans.numpy function of the same "
            "name (import ftrans.numpy as fnp; fnp.sin(x)) instead of numpy's."))

    def __repr__(self):
        value = self.concrete_value()
        shown = "" if value is None else f" with value {value!r}"
        return f"Traced<{self.aval.str_short()}>{shown} ({type(self).__name__})"


# -------------------- staging: building a jaxpr --------------------

class StagingTracer(Tracer):
    # NB: `_var`, not `var`: tracers have NumPy's methods, and `x.var()` is the variance
    __slots__ = ("_var", "aval")  # `aval` shadows Tracer's property: read on every operation

    def __init__(self, trace, var):
        self._trace = trace
        self._var = var
        self.aval = var.aval


class StagingTrace(Trace):
    """Records every primitive applied while it is current into a new jaxpr.

    Omnistaging: even operations on constants are recorded, so `fnp.zeros(n)`
    inside jit is part of the program, not baked in. Arrays and outer tracers
    the function closes over become constvars (closure conversion); scalar
    constants become literals.
    """

    def __init__(self):
        super().__init__()
        self.invars = []
        self.eqns = []
        self.constvars = []
        self.consts = []
        self._constvar_of_id = {}

    def new_arg(self, aval):
        var = Var(aval)
        self.invars.append(var)
        return StagingTracer(self, var)

    def to_atom(self, x):
        if isinstance(x, StagingTracer) and x._trace is self:
            return x._var
        if isinstance(x, Tracer):
            self.check_alive(x)
        elif type(x) in _SCALAR_TYPES or isinstance(x, np.generic) or (np.ndim(x) == 0 and not is_cupy_array(x)):
            return make_literal(x)
        var = self._constvar_of_id.get(id(x))
        if var is None:
            var = Var(get_aval(x).strip_weak_type() if not isinstance(x, Tracer) else x.aval)
            self._constvar_of_id[id(x)] = var
            self.constvars.append(var)
            self.consts.append(x)
        return var

    def process_primitive(self, prim, args, params):
        # plain loops, not comprehensions: this runs once per staged equation
        atoms, avals = [], []
        for x in args:
            atom = x._var if type(x) is StagingTracer and x._trace is self else self.to_atom(x)
            atoms.append(atom)
            avals.append(atom.aval)
        avals_out = prim.abstract_eval(avals, params)
        if prim.multiple_results:
            outvars = [Var(aval) for aval in avals_out]
            self.eqns.append(Eqn(prim, atoms, outvars, params, _eqn_origin.get()))
            return [StagingTracer(self, v) for v in outvars]
        var = Var(avals_out[0])
        self.eqns.append(Eqn(prim, atoms, [var], params, _eqn_origin.get()))
        return StagingTracer(self, var)

    def build(self, outs) -> ClosedJaxpr:
        outvars = [self.to_atom(x) for x in outs]
        jaxpr = Jaxpr(self.constvars, self.invars, self.eqns, outvars)
        if config.debug:
            from ir.check import check
            check(jaxpr)
        return ClosedJaxpr(jaxpr, self.consts)


_SCALAR_TYPES = (bool, int, float)


def make_literal(x) -> Literal:
    if isinstance(x, np.generic):
        return Literal(x, concrete_aval(x))
    if isinstance(x, (bool, int, float)):
        aval = concrete_aval(x)
        try:
            value = aval.dtype.type(x)
        except OverflowError:
            raise TypeError(f"Python integer {x} does not fit in int64") from None
        return Literal(value, aval)
    value = np.asarray(x)[()]
    return Literal(value, ShapedArray((), value.dtype))


def stage(fun, in_avals) -> ClosedJaxpr:
    """Trace `fun` (flat list of values -> flat list of values) into a jaxpr."""
    with trace_context(StagingTrace()) as trace:
        in_tracers = [trace.new_arg(aval) for aval in in_avals]
        outs = fun(*in_tracers)
        return trace.build(outs)
