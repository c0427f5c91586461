"""Primitives: one declaration each, holding every rule side by side.

A declaration names the primitive's parameters and their types (`params`, a
schema: `{}` for none), its abstract evaluation and its implementation, then
its transformation rules. A rule slot left empty means that transformation is
not defined for the primitive; asking for it raises
``NotImplementedError("<transform> of <name>")``.

The schema is what makes a jaxpr read from untrusted text safe to run: the
parser and `ir.check` reject any equation whose params are unknown, missing
or of the wrong type, and abstract evaluation checks them before it computes
anything, so that an implementation only ever sees params it was written for.
"""
from __future__ import annotations

import reprlib

import numpy as np

from ir.core import MAX_RANK, Array, ClosedJaxpr, supported_dtypes

PRIMITIVES: dict[str, "Primitive"] = {}

# Each slot, with what it holds and the transformation named in its error.
RULE_SLOTS = {
    "jvp": "jvp",                  # (primals, tangents, **params) -> (primals_out, tangents_out)
    "transpose": "transpose",      # (cts_out, *operands, **params) -> cts_in (linear primitives)
    "batch": "vmap",               # (values, batch_dims, **params) -> (values_out, dims_out)
    # (values, batch_dims, size, **params) -> (values_out, dims_out): a collective (psum...) under the vmap
    # that binds its axis name, `size` that axis's; operands may be unbatched (ir/primitives/collectives.py)
    "collective_batch": "vmap over a named axis",
    # (trace, unknowns, operands, **params) -> outputs: for a primitive holding sub-jaxprs, under
    # linearize (or partial evaluation of a jaxpr) with some operands known and some not. It binds
    # `trace.known(prim, operands, params)` (computed now, or one level out) for what the known
    # operands determine and `trace.unknown(prim, operands, params)` (staged; known operands become
    # residuals) for the rest, and returns each output as the one or the other.
    "partial_eval": "partial evaluation",
    # (used_outputs, eqn, dce_jaxpr) -> (used_inputs, the equation without what is unused): for a
    # primitive holding sub-jaxprs; `dce_jaxpr(closed, used_outputs, prune_invars)` is ir.passes.dce's.
    "dce": "dead-code elimination",
    "taylor": "jet",
    "numpy_template": "NumPy lowering",
    "cuda_template": "CUDA lowering",
    # as cuda_template, for the C kernels of jit on the CPU (interpreters/lowering_c.py): C99, where {f}
    # is the float suffix of C's math functions (tanhf) and {t} the dtype's name (ft_mod_int32)
    "c_template": "C lowering",
}

# Abstract evaluation results kept per primitive. Past this many the cache
# starts over: a stream of distinct programs (hostile text, say) cannot grow
# it without bound, and a program's own few hundred signatures come back at once.
MAX_CACHED_AVALS = 4096


# -------------------- parameter types --------------------

class ParamType:
    """The values one parameter may take: `accepts(value)`, and `description`
    for errors. Exact Python types: a bool is not an int (True == 1, but
    `axes=(True,)` is a mistake), a float is not an int, a list is not a tuple;
    the printed form reads back to exactly these types."""
    description = "a value"
    holds_jaxpr = False  # a sub-jaxpr: abstract evaluation is not cached on it (it would keep it alive)

    def accepts(self, value) -> bool:
        raise NotImplementedError

    def __repr__(self):
        return self.description


class Int(ParamType):
    """An int in [low, high] (by default int64's range: every int param ends up
    in NumPy's fixed-size integers)."""

    def __init__(self, low=-2**63, high=2**63 - 1, description=None):
        self.low, self.high = low, high
        self.description = description or f"an int in [{low}, {high}]"

    def accepts(self, value):
        return type(value) is int and self.low <= value <= self.high


class Bool(ParamType):
    description = "True or False"

    def accepts(self, value):
        return type(value) is bool


class Str(ParamType):
    description = "a name (a str)"

    def accepts(self, value):
        return type(value) is str


class OneOf(ParamType):
    def __init__(self, *choices):
        self.choices = choices
        self.description = "one of " + ", ".join(map(str, choices))

    def accepts(self, value):
        return any(type(value) is type(c) and value == c for c in self.choices)


class DType(ParamType):
    """A NumPy dtype that ftrans supports, of one of the kinds in `kinds`
    ('f' float, 'c' complex, 'i' signed, 'u' unsigned, 'b' bool; float0, 'V', only if listed)."""

    def __init__(self, kinds="fiubc"):
        self.kinds = kinds
        self.names = [d.name if d.kind != "V" else "float0" for d in supported_dtypes() if d.kind in kinds]
        self.description = "a dtype (" + ", ".join(self.names) + ")"

    def accepts(self, value):
        return isinstance(value, np.dtype) and value.kind in self.kinds and value in supported_dtypes()


class Scalar(ParamType):
    """A Python bool, int (in int64 or uint64's range) or float (inf and nan included)."""
    description = "a Python bool, int or float"

    def accepts(self, value):
        return type(value) in (bool, float) or (type(value) is int and -2**63 <= value < 2**64)


class Optional(ParamType):
    """None, or a value of `kind`."""

    def __init__(self, kind):
        self.kind = kind
        self.holds_jaxpr = kind.holds_jaxpr
        self.description = f"None or {kind.description}"

    def accepts(self, value):
        return value is None or self.kind.accepts(value)


class TupleOf(ParamType):
    """A tuple of up to `max_length` values of `item` (distinct ones if `distinct`)."""

    def __init__(self, item, max_length=MAX_RANK, distinct=False, description=None):
        self.item, self.max_length, self.distinct = item, max_length, distinct
        self.holds_jaxpr = item.holds_jaxpr
        self.description = description or (f"a tuple of at most {max_length} "
                                           f"{'distinct ' if distinct else ''}values, each {item.description}")

    def accepts(self, value):
        return (type(value) is tuple and len(value) <= self.max_length
                and all(self.item.accepts(v) for v in value)
                and (not self.distinct or len(set(value)) == len(value)))


class Tuple(ParamType):
    """A tuple with one value of each of `items`, in order."""

    def __init__(self, *items):
        self.items = items
        self.holds_jaxpr = any(item.holds_jaxpr for item in items)
        self.description = "a tuple (" + ", ".join(item.description for item in items) + ")"

    def accepts(self, value):
        return (type(value) is tuple and len(value) == len(self.items)
                and all(item.accepts(v) for item, v in zip(self.items, value)))


class SubJaxpr(ParamType):
    """A ClosedJaxpr. With `constvars=False` (what a call takes: its constants
    are explicit operands) it has no constvars, and its consts are the empty list."""
    holds_jaxpr = True

    def __init__(self, constvars=False):
        self.constvars = constvars
        self.description = "a closed jaxpr" + ("" if constvars else " without constvars")

    def accepts(self, value):
        if not isinstance(value, ClosedJaxpr):
            return False
        return self.constvars or (not value.jaxpr.constvars and value.consts is not None)


# The parameter types the declarations share.
INT = Int(description="an int")
NON_NEGATIVE_INT = Int(0, description="a non-negative int")
POSITIVE_INT = Int(1, description="a positive int")
AXIS = Int(0, MAX_RANK - 1, description=f"an axis (an int in [0, {MAX_RANK - 1}])")
AXES = TupleOf(AXIS, distinct=True, description=f"a tuple of distinct axes (ints in [0, {MAX_RANK - 1}])")
SHAPE = TupleOf(NON_NEGATIVE_INT, description=f"a shape (a tuple of at most {MAX_RANK} non-negative ints)")
BOOL = Bool()
STR = Str()

_short_repr = reprlib.Repr()
_short_repr.maxstring = _short_repr.maxother = 60
_short_repr.maxtuple = 8
_short_repr.maxlevel = 4


def _check_schema(name, params):
    if params is None:
        raise TypeError(f"primitive {name!r} is declared without its parameters: pass "
                        f"params={{name: type, ...}} (ir.primitive.INT, AXES, TupleOf(...), ...), "
                        f"or params={{}} if it takes none")
    if not isinstance(params, dict) or not all(isinstance(k, str) and isinstance(t, ParamType)
                                               for k, t in params.items()):
        raise TypeError(f"primitive {name!r}: params must map each parameter name to its type "
                        f"(ir.primitive.INT, AXES, TupleOf(...), ...; params={{}} for none), got {params!r}")
    return dict(params)


# -------------------- primitives --------------------

class Primitive:
    """A named operation with its parameters, abstract evaluation, implementation and rules.

    `params` is its schema: parameter name -> ParamType (`{}` when it takes
    none). Every equation of the primitive carries exactly these params;
    `check_params` rejects any other. `abstract_eval(*avals, **params)` returns
    the output aval (a list of them when `multiple_results`) and raises
    TypeError for operands it does not take; `impl(*arrays, **params)`
    computes with the array module of its inputs.
    """

    def __init__(self, name, *, params=None, abstract_eval, impl, multiple_results=False,
                 elementwise=False, commutative=False, linear_in=(), effectful=False, runs_host_code=False,
                 **rules):
        if name in PRIMITIVES:
            raise ValueError(f"primitive {name!r} is declared twice")
        unknown = set(rules) - set(RULE_SLOTS)
        if unknown:
            raise TypeError(f"primitive {name!r}: unknown rule slots {sorted(unknown)}")
        self.name = name
        self.params = _check_schema(name, params)
        self._abstract_eval = abstract_eval
        self.impl = impl
        self.multiple_results = multiple_results
        self.elementwise = elementwise
        self.commutative = commutative
        self.linear_in = tuple(linear_in)
        # an equation that does something besides computing its outputs (a host callback):
        # the passes keep it, never merge it and never compute it ahead of time
        self.effectful = effectful
        # calls a Python function held in its params: the parser refuses it (untrusted text names no code)
        self.runs_host_code = runs_host_code
        for slot in RULE_SLOTS:
            setattr(self, slot, rules.get(slot))
        self._aval_cache = {}
        # a higher-order primitive (jit_call, cond, scan): the passes optimize its sub-jaxprs
        self.holds_jaxprs = any(kind.holds_jaxpr for kind in self.params.values())
        # a cache entry would keep a sub-jaxpr param (and all it holds) alive
        self._caches_avals = not self.holds_jaxprs
        PRIMITIVES[name] = self

    def rule(self, slot):
        """The rule in `slot`, or NotImplementedError naming the transformation."""
        rule = getattr(self, slot)
        if rule is None:
            raise NotImplementedError(f"{RULE_SLOTS[slot]} of {self.name}")
        return rule

    def define(self, **rules):
        """Fill rule slots after the fact (for rules that need the binders of
        primitives declared later in the same module)."""
        for slot, rule in rules.items():
            if slot not in RULE_SLOTS:
                raise TypeError(f"primitive {self.name!r}: unknown rule slot {slot!r}")
            setattr(self, slot, rule)

    def check_params(self, params):
        """TypeError naming the first parameter that is unknown, missing or not of its type."""
        schema = self.params
        if not params and not schema:  # most primitives: nothing to check
            return
        if params.keys() != schema.keys():
            unknown, missing = sorted(params.keys() - schema.keys()), sorted(schema.keys() - params.keys())
            takes = f"takes the parameters {', '.join(schema)}" if schema else "takes no parameters"
            problems = ([f"unknown {', '.join(map(_short_repr.repr, unknown))}"] if unknown else []) + \
                       ([f"missing {', '.join(missing)}"] if missing else [])
            raise TypeError(f"{self.name} {takes}: {'; '.join(problems)}")
        for key, kind in schema.items():
            value = params[key]
            if not kind.accepts(value):
                raise TypeError(f"{self.name}: parameter {key}={_short_repr.repr(value)} "
                                f"({type(value).__name__}) is not {kind.description}")

    def abstract_eval(self, avals, params):
        """Output avals (always a list), cached on (avals, params): tracing calls
        this once per equation, so it must be cheap. Params are checked against
        the schema before anything is computed; callers that take params from
        outside (the parser, `ir.check`) call `check_params` first, so that
        ill-typed params never meet an entry cached for equal ones
        (`(0,) == (0.0,)`, but only the first is an axis)."""
        try:  # param types are part of the key: 2 == 2.0 == True as dict keys, not as params
            key = (tuple(avals), tuple(params.items()), tuple(map(type, params.values())))
            out = self._aval_cache.get(key)
        except TypeError:  # an unhashable param: compute without caching
            key, out = None, None
        if out is None:
            self.check_params(params)
            out = self._abstract_eval(*avals, **params)
            out = list(out) if self.multiple_results else [out]
            if key is not None and self._caches_avals:
                if len(self._aval_cache) >= MAX_CACHED_AVALS:
                    self._aval_cache.clear()  # NB: one atomic step, safe beside other threads' look-ups
                self._aval_cache[key] = out
        return out

    def __repr__(self):
        return self.name

def check_impl_result(prim, args, params, outs):
    """Debug mode: the implementation's results must match abstract evaluation."""
    from ir.core import concrete_aval
    avals_in = [concrete_aval(a) for a in args]
    expected = prim.abstract_eval(avals_in, params)
    for want, got in zip(expected, outs, strict=True):
        got_aval = concrete_aval(got)
        if got_aval.shape != want.shape or got_aval.dtype != want.dtype:
            raise AssertionError(f"{prim.name}: implementation returned {got_aval.str_short()}, "
                                 f"abstract evaluation says {want.str_short()}")


def as_array(x):
    """`x` as users get it: an Array (ir.core), viewing x's data. Implementations
    may return NumPy or Python scalars for 0-d results (an identity such as
    stop_gradient returns its operand); users get 0-d arrays. CuPy arrays,
    tracers and Arrays pass as they are."""
    if type(x) is np.ndarray:  # first: the common case
        return x.view(Array)
    if isinstance(x, (np.generic, bool, int, float, complex)):
        return np.asarray(x).view(Array)
    return x

