"""The IR's data: abstract values, variables, literals, equations and jaxprs.

Nothing here knows about tracing or interpreters; a jaxpr is plain data that
the printer, the parser, the checker, the passes and the interpreters read.
"""
from __future__ import annotations

import math
import operator
import threading
import weakref
from _weakref import _remove_dead_weakref  # NB: what weakref.WeakValueDictionary uses; see _forget_aval

import numpy as np

from ir.errors import api_boundary, at_user_line

# -------------------- dtypes --------------------

float0 = np.dtype([("float0", np.void, 0)])  # NB: JAX's dtype of tangents of integer values

_SHORT_NAMES = {
    np.dtype("float16"): "f16", np.dtype("float32"): "f32", np.dtype("float64"): "f64",
    np.dtype("int8"): "i8", np.dtype("int16"): "i16", np.dtype("int32"): "i32",
    np.dtype("int64"): "i64", np.dtype("uint8"): "u8", np.dtype("uint16"): "u16",
    np.dtype("uint32"): "u32", np.dtype("uint64"): "u64", np.dtype("bool"): "bool",
    np.dtype("complex64"): "c64", np.dtype("complex128"): "c128",
    float0: "float0",
}
DTYPE_FROM_SHORT_NAME = {short: dtype for dtype, short in _SHORT_NAMES.items()}
MAX_RANK = 64  # NumPy's limit on an array's dimensions


def supported_dtypes():
    """Every dtype ftrans supports, float0 included."""
    return _SHORT_NAMES.keys()


def short_dtype_name(dtype) -> str:
    try:
        return _SHORT_NAMES[np.dtype(dtype)]
    except KeyError:
        raise TypeError(f"ftrans does not support dtype {np.dtype(dtype).name}") from None


def check_supported_dtype(primitive_name, dtype):
    """A TypeError naming the primitive if ftrans does not support `dtype`."""
    try:
        short_dtype_name(dtype)
    except TypeError as error:
        raise TypeError(f"{primitive_name}: {error}") from None


def is_float(dtype) -> bool:
    return np.dtype(dtype).kind == "f"


def is_complex(dtype) -> bool:
    return np.dtype(dtype).kind == "c"


def is_inexact(dtype) -> bool:
    """Float or complex: the dtypes that have (nonzero) tangents."""
    return np.dtype(dtype).kind in "fc"


def real_dtype(dtype):
    """The dtype of the real and imaginary parts of `dtype` (itself when real)."""
    dtype = np.dtype(dtype)
    return np.dtype(f"f{dtype.itemsize // 2}") if dtype.kind == "c" else dtype


def complex_dtype(dtype):
    """The complex dtype whose parts are `dtype` (complex64 for float16 and float32, as NumPy)."""
    return np.result_type(np.dtype(dtype), np.complex64)


def is_integer_or_bool(dtype) -> bool:
    return np.dtype(dtype).kind in "biu"


# -------------------- abstract values --------------------

class ShapedArray:
    """The type of an array: shape, dtype, and whether it is weakly typed.

    A weak type comes from a Python scalar: under NumPy 2 (NEP 50) rules it
    takes the dtype of whatever it meets instead of promoting it.

    Instances are interned: equal types are the same object, for as long as
    anything holds one. The intern table holds them weakly, so that types
    hostile text or a long session made once do not stay forever; the most
    recent ones are also held by a bounded table, so that a type made and
    dropped in a loop is not made again each time. Avals key every cache on the
    tracing hot path, so they hash and compare by identity (in C).
    """
    __slots__ = ("shape", "dtype", "weak_type", "__weakref__")

    def __new__(cls, shape, dtype, weak_type=False):
        key = (tuple(shape), np.dtype(dtype), bool(weak_type))
        aval = _RECENT.get(key)
        return aval if aval is not None else _intern(cls, key)

    def __reduce__(self):
        return ShapedArray, (self.shape, self.dtype, self.weak_type)

    def __copy__(self):
        return self

    def __deepcopy__(self, memo):
        return self

    @property
    def ndim(self):
        return len(self.shape)

    @property
    def size(self):
        return math.prod(self.shape)

    def strip_weak_type(self):
        return ShapedArray(self.shape, self.dtype) if self.weak_type else self

    def update(self, shape=None, dtype=None, weak_type=None):
        return ShapedArray(self.shape if shape is None else shape,
                           self.dtype if dtype is None else dtype,
                           self.weak_type if weak_type is None else weak_type)

    def str_short(self):
        name = _SHORT_NAMES.get(self.dtype, self.dtype.name)  # unsupported dtypes print too, for errors
        text = f"{name}[{','.join(map(str, self.shape))}]"
        return text + "{weak}" if self.weak_type else text

    def __repr__(self):
        return f"ShapedArray({self.str_short()})"


# (shape, dtype, weak_type) -> weak reference to the ShapedArray of that type: every live aval
_INTERNED: dict = {}
# Taken on a miss only: two threads making the same new type must get one object.
_INTERN_LOCK = threading.Lock()
# (shape, dtype, weak_type) -> ShapedArray, for the avals made most recently: the hit path is
# one look-up here. It starts over past _MAX_RECENT types; what else holds an aval keeps it interned.
_RECENT: dict = {}
_MAX_RECENT = 4096


def _intern(cls, key):
    with _INTERN_LOCK:
        ref = _INTERNED.get(key)  # again: another thread may have made it since the look-up
        aval = None if ref is None else ref()
        if aval is None:
            aval = object.__new__(cls)
            aval.shape, aval.dtype, aval.weak_type = key
            _INTERNED[key] = weakref.KeyedRef(aval, _forget_aval, key)
    if len(_RECENT) >= _MAX_RECENT:
        _RECENT.clear()  # one atomic step: safe beside other threads' look-ups
    _RECENT[key] = aval
    return aval


def _forget_aval(ref):
    """Drop a dead aval's entry. It runs when the aval dies, in whichever thread
    that happens, and must not take the lock (the thread may hold it already).
    `_remove_dead_weakref` deletes the entry only if it is still a dead
    reference, in one step: never the live one another thread has put there since."""
    _remove_dead_weakref(_INTERNED, ref.key)


_PYTHON_SCALAR_AVALS = {
    bool: ShapedArray((), np.bool_, weak_type=True),
    int: ShapedArray((), np.int64, weak_type=True),
    float: ShapedArray((), np.float64, weak_type=True),
    complex: ShapedArray((), np.complex128, weak_type=True),
}


_ARRAY_AVALS = {}  # (shape, dtype) -> ShapedArray: avals of arrays are asked for on every bind
_MAX_ARRAY_AVALS = 4096  # past this many shapes it starts over, so that it cannot grow without bound


def concrete_aval(x) -> ShapedArray:
    """The aval of a concrete value: an array (NumPy's or CuPy's: any value with a
    `shape` and a NumPy `dtype`, never weakly typed), a NumPy scalar or a Python scalar."""
    aval = _PYTHON_SCALAR_AVALS.get(type(x))
    if aval is not None:
        return aval
    try:
        key = (x.shape, x.dtype)
    except AttributeError:
        raise TypeError(f"{type(x).__name__} is not a valid ftrans value: pass arrays, "
                        "NumPy scalars or Python bool/int/float/complex") from None
    aval = _ARRAY_AVALS.get(key)
    if aval is None:
        if len(_ARRAY_AVALS) >= _MAX_ARRAY_AVALS:
            _ARRAY_AVALS.clear()  # one atomic step: safe beside other threads' look-ups
        aval = _ARRAY_AVALS[key] = ShapedArray(x.shape, x.dtype)
    return aval


_SHAPE_AND_DTYPE = operator.attrgetter("shape", "dtype")


def concrete_avals(values) -> tuple:
    """The concrete_aval of each of `values` (a list). When there are many, all
    arrays of shapes and dtypes seen before, the loop runs in C: a jitted call
    over a pytree of 100,000 arrays asks for them all on every call."""
    if len(values) > 32:  # below that, a failed try (Python scalars) would cost more than it saves
        try:
            return tuple(map(_ARRAY_AVALS.__getitem__, map(_SHAPE_AND_DTYPE, values)))
        except (AttributeError, KeyError, TypeError):  # Python scalars, new shapes, unhashable shapes
            pass
    return tuple(map(concrete_aval, values))


# -------------------- the arrays users get --------------------

class _ArrayMeta(type):
    """`isinstance(x, Array)` holds for tracers too, as `isinstance(x, jax.Array)` does inside
    jit: type hints and checks written for arrays keep working on traced values."""

    def __instancecheck__(cls, instance):
        if type.__instancecheck__(cls, instance):
            return True
        from ir.tracing import Tracer  # NB: ir.tracing imports this module
        return cls is Array and isinstance(instance, Tracer)


class Array(np.ndarray, metaclass=_ArrayMeta):
    """The numpy.ndarray that ftrans hands to users on the CPU, with JAX's
    functional updates `x.at[i].set(v)` besides (SPEC section 2). CuPy results
    stay cupy.ndarray.

    Why a subclass: JAX code writes `x = x.at[i].set(v)` on the arrays it gets,
    and numpy.ndarray takes no new attribute. Every place that hands an array
    to user code gives an Array: `bind` with no trace open (eager ftrans.numpy,
    creation functions, the constant computations of a transformation's eager
    fallbacks: ir.tracing.compute), the results of every transformation and
    of jit's generated code, device_put to the CPU. `as_array` (ir/primitive)
    makes one: a view, no copy.

    Why here, bare: `ir/` imports nothing of ours, yet `bind` makes eager
    results; ftrans.numpy installs `.at` (ftrans/numpy/_methods.py), as it
    installs the methods of ir's Tracer.

    Nothing of NumPy's behaviour changes. An Array is an ndarray
    (`isinstance`, `np.asarray(x)` is a plain view, every NumPy function
    takes it, values and dtypes are NumPy's); repr prints as NumPy's
    (`array([0., 1.])`); pickle and copy give back an Array (NumPy's own
    mechanism for subclasses); `.at` never writes into x. What is an Array,
    as in JAX: the array's own operations keep the type, NumPy's functions
    do not.
    - Python operators (`x + 1`, `2 * x`, `x @ w`, `x > 0`, `-x`) and the
      views and copies ndarray's methods make (`x[1:]`, `x.T`, `x.reshape`,
      `x.copy()`, `x.astype`) give Arrays, as NumPy's operators do for any
      subclass and JAX's do for jax.Array. Where NumPy gives a scalar (an
      operator on 0-d arrays) it stays NumPy's scalar.
    - NumPy's ufuncs and the functions built on them (`np.sin(x)`,
      `np.add(x, 1)`, `x.sum()`, np.linalg) return what they return for a
      plain ndarray: a plain ndarray or a NumPy scalar, as `np.sin(jax_array)`
      is a numpy.ndarray (`__array_wrap__` below). With `out=` they return
      `out`, an Array as it is (`x += 1` keeps x). A NumPy array gets `.at`
      from `fnp.at(x)`, or any ftrans.numpy function. (`np.array_repr(x)`,
      which np.testing prints, names the class, as it does for any subclass.)

    Why NumPy's functions give plain arrays: cost. A subclass operand costs
    each NumPy ufunc about 0.23 us (NumPy looks up `__array_ufunc__`,
    `__array_wrap__` and `__array_priority__` on it, and calls
    `__array_wrap__`): np.sin of 8 elements took 0.28 us on an ndarray, 0.51
    us on an Array, 0.63 us on a subclass that propagates (NumPy's default). A
    propagating subclass would make every intermediate computed from a user's
    Array one too, in jit's generated code, in implementations and on the
    eager grad tape, each paying again; plain results pay at the first
    operation only, and ftrans computes on plain ndarrays inside (generated
    code and implementations call ufuncs, never these operators). The
    operators are Python methods (`x * 2.0` on 8 elements: 0.41 us on an
    ndarray, 1.0 us on an Array, 0.79 us propagating): worth it for the idiom
    `y = 2 * x; y = y.at[i].set(v)`.
    """
    __slots__ = ()

    def __array_wrap__(self, array, context=None, return_scalar=False):
        """What NumPy's ufuncs return: their result as they made it (a plain
        ndarray, or `out`), a NumPy scalar where NumPy would give one."""
        return array[()] if return_scalar else array

    def __repr__(self):
        return repr(self.view(np.ndarray))


def _keeping_the_type(operator):
    """ndarray's `operator`, with an Array for its array results (for each one
    of a tuple, from divmod); NumPy scalars and NotImplemented (`x + tracer`
    defers to the tracer) as NumPy gives them."""
    def method(self, *other):
        out = operator(self, *other)
        if type(out) is np.ndarray:
            return out.view(Array)
        if type(out) is tuple:
            return tuple(o.view(Array) if type(o) is np.ndarray else o for o in out)
        return out
    method.__name__ = method.__qualname__ = operator.__name__
    return method


_TYPE_KEEPING_OPERATORS = [
    *(f"__{prefix}{name}__" for name in ("add", "sub", "mul", "truediv", "floordiv", "mod", "divmod", "pow",
                                         "matmul", "and", "or", "xor", "lshift", "rshift") for prefix in ("", "r")),
    "__lt__", "__le__", "__gt__", "__ge__", "__eq__", "__ne__", "__neg__", "__pos__", "__abs__", "__invert__"]
for _name in _TYPE_KEEPING_OPERATORS:
    setattr(Array, _name, _keeping_the_type(getattr(np.ndarray, _name)))
del _name


# -------------------- array modules: NumPy or CuPy --------------------

# Types that are never CuPy arrays: a set look-up settles the common values at once.
HOST_TYPES = frozenset({np.ndarray, Array, bool, int, float, complex} | set(np.sctypeDict.values()))


def is_cupy_array(x) -> bool:
    """Whether `x` is a cupy.ndarray, told by its type's module: CuPy is never imported for it."""
    return type(x).__module__.partition(".")[0] == "cupy" and hasattr(x, "__cuda_array_interface__")


def array_module(*args):
    """The module to compute `args` with: cupy when any of them is a CuPy array,
    else numpy. Implementations call it where NumPy would not hand the work to
    CuPy by itself: ufuncs (np.sin) and array functions (np.transpose) dispatch
    on CuPy arrays already; creating arrays (np.array, np.full) does not."""
    for x in args:
        if type(x) not in HOST_TYPES and is_cupy_array(x):
            import cupy  # a CuPy array exists, so CuPy is installed
            return cupy
    return np


def common_arrays(*args):
    """(xp, args) for an implementation that combines several arrays: xp as
    `array_module` says, and under CuPy the NumPy arrays among `args` copied to
    the GPU. Transformation rules make such arrays from nothing (zeros they fill
    in, iota masks, index arrays), so these follow the data they meet, as JAX's
    uncommitted arrays do. NumPy scalars stay as they are: CuPy takes them."""
    xp = array_module(*args)
    if xp is np:
        return np, args
    return xp, [xp.asarray(x) if isinstance(x, np.ndarray) else x for x in args]



# -------------------- variables, literals, equations --------------------

class Var:
    """A variable: a typed name-less slot. The printer assigns a, b, c, ... on output."""
    __slots__ = ("aval",)

    def __init__(self, aval: ShapedArray):
        self.aval = aval

    def __repr__(self):
        return f"Var({self.aval.str_short()})"


class Literal:
    """A scalar constant written inline in an equation, e.g. ``2.0:f64[]``.

    The value is a NumPy scalar of the literal's dtype, so that implementations,
    the printed IR and generated code all see the same number.
    """
    __slots__ = ("value", "aval")

    def __init__(self, value, aval: ShapedArray):
        self.value = value
        self.aval = aval

    def __repr__(self):
        return f"Literal({self.value!r}:{self.aval.str_short()})"


class Eqn:
    """``outvars = primitive[params] invars``.

    `origin` says which part of a derivative staged the equation: "forward"
    (the primal work of linearize), "backward" (the transposed, reverse-mode
    work) or None. Reverse mode sets it (ir.tracing.staged_as), passes keep it,
    `ir.draw` colours by it; printing, parsing and CSE ignore it."""
    __slots__ = ("primitive", "invars", "outvars", "params", "origin")

    def __init__(self, primitive, invars, outvars, params, origin=None):
        # NB: takes ownership of the lists and the dict (no copies: tracing makes one per equation)
        self.primitive = primitive
        self.invars = invars if type(invars) is list else list(invars)
        self.outvars = outvars if type(outvars) is list else list(outvars)
        self.params = params if type(params) is dict else dict(params)
        self.origin = origin

    def replace(self, primitive=None, invars=None, outvars=None, params=None):
        return Eqn(self.primitive if primitive is None else primitive,
                   self.invars if invars is None else invars,
                   self.outvars if outvars is None else outvars,
                   self.params if params is None else params, self.origin)

    def __repr__(self):
        return f"Eqn({self.primitive.name}, {len(self.invars)} in, {len(self.outvars)} out)"


class Jaxpr:
    """A typed, first-order function in A-normal form.

    `constvars` are inputs bound to constants by a ClosedJaxpr; `invars` are the
    function's arguments; `outvars` may be Vars or Literals.
    """
    __slots__ = ("constvars", "invars", "eqns", "outvars", "__weakref__")

    def __init__(self, constvars, invars, eqns, outvars):
        self.constvars = list(constvars)
        self.invars = list(invars)
        self.eqns = list(eqns)
        self.outvars = list(outvars)

    @property
    def in_avals(self):
        return [v.aval for v in self.invars]

    @property
    def out_avals(self):
        return [v.aval for v in self.outvars]

    def __str__(self):
        from ir.printer import pp_jaxpr
        return pp_jaxpr(self)

    __repr__ = __str__


class ClosedJaxpr:
    """A Jaxpr together with the values of its constvars.

    `consts` may be None for a jaxpr read back from text without its constants;
    evaluating it then asks for them.

    Calling it, ``closed(*args)``, evaluates it: the list of its outputs. The
    call is one `jit_call` equation (the jaxpr with its constants as leading
    operands), so it runs eagerly as generated NumPy code, as a jitted function
    does, and grad, jvp, vjp, vmap and jit go through it by jit_call's rules.
    (`ft.jaxpr_as_fun(closed)` instead evaluates it primitive by primitive.)
    """
    __slots__ = ("jaxpr", "consts", "__weakref__")

    def __init__(self, jaxpr: Jaxpr, consts):
        self.jaxpr = jaxpr
        self.consts = None if consts is None else list(consts)
        if self.consts is not None and len(self.consts) != len(jaxpr.constvars):
            raise ValueError(f"ClosedJaxpr: {len(jaxpr.constvars)} constvars but "
                             f"{len(self.consts)} constants")

    @api_boundary
    def __call__(self, *args):
        from ir.primitives.call import call_closed_jaxpr  # NB: ir.primitives imports this module
        return call_closed_jaxpr(self, args)

    def require_consts(self):
        """A ValueError naming the constants, if this jaxpr was parsed without them."""
        if self.consts is not None:
            return
        from ir.printer import _Names  # names them as printing this jaxpr does
        names = _Names()
        binders = [f"{names.define(v)}:{v.aval.str_short()}" for v in self.jaxpr.constvars]
        shown = ", ".join(binders[:8]) + (f" and {len(binders) - 8} more" if len(binders) > 8 else "")
        raise ValueError(at_user_line(
            f"this jaxpr was parsed without the values of its constants, {shown} (the binders "
            "before ';'): pass them, in that order, as parse_jaxpr(text, consts=[...])"))

    @property
    def in_avals(self):
        return self.jaxpr.in_avals

    @property
    def out_avals(self):
        return self.jaxpr.out_avals

    @property
    def eqns(self):
        return self.jaxpr.eqns

    def __str__(self):
        from ir.printer import pp_jaxpr
        return pp_jaxpr(self.jaxpr)

    __repr__ = __str__

    def draw(self, **options):
        """A picture of this jaxpr: an `ir.draw.Graph` (its `.source` is Graphviz DOT
        text; `.render(path)` and notebooks draw it with Graphviz). Options: see `ir.draw.draw`."""
        from ir.draw import draw
        return draw(self, **options)
