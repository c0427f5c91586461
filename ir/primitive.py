"""Primitives: one declaration each, holding every rule side by side.

A rule slot left empty means that transformation is not defined for the
primitive; asking for it raises ``NotImplementedError("<transform> of <name>")``.
"""
from __future__ import annotations

import numpy as np

from ir.core import Array

PRIMITIVES: dict[str, "Primitive"] = {}

# Each slot, with what it holds and the transformation named in its error.
RULE_SLOTS = {
    "jvp": "jvp",                  # (primals, tangents, **params) -> (primals_out, tangents_out)
    "transpose": "transpose",      # (cts_out, *operands, **params) -> cts_in (linear primitives)
    "batch": "vmap",               # (values, batch_dims, **params) -> (values_out, dims_out)
    "partial_eval": "partial evaluation",
    "dce": "dead-code elimination",
    "taylor": "jet",
    "numpy_template": "NumPy lowering",
    "cuda_template": "CUDA lowering",
}


class Primitive:
    """A named operation with its abstract evaluation, implementation and rules.

    `abstract_eval(*avals, **params)` returns the output aval (a list of them
    when `multiple_results`); `impl(*arrays, **params)` computes with the
    array module of its inputs.
    """

    def __init__(self, name, *, abstract_eval, impl, multiple_results=False,
                 elementwise=False, commutative=False, linear_in=(), **rules):
        if name in PRIMITIVES:
            raise ValueError(f"primitive {name!r} is declared twice")
        unknown = set(rules) - set(RULE_SLOTS)
        if unknown:
            raise TypeError(f"primitive {name!r}: unknown rule slots {sorted(unknown)}")
        self.name = name
        self._abstract_eval = abstract_eval
        self.impl = impl
        self.multiple_results = multiple_results
        self.elementwise = elementwise
        self.commutative = commutative
        self.linear_in = tuple(linear_in)
        for slot in RULE_SLOTS:
            setattr(self, slot, rules.get(slot))
        self._aval_cache = {}
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

    def abstract_eval(self, avals, params):
        """Output avals (always a list), cached on (avals, params): tracing calls
        this once per equation, so it must be cheap."""
        try:  # param types are part of the key: 2 == 2.0 == True as dict keys, not as params
            key = (tuple(avals), tuple(params.items()), tuple(map(type, params.values())))
            out = self._aval_cache.get(key)
        except TypeError:  # an unhashable param: compute without caching
            key, out = None, None
        if out is None:
            out = self._abstract_eval(*avals, **params)
            out = list(out) if self.multiple_results else [out]
            if key is not None:
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
    if isinstance(x, (np.generic, bool, int, float)):
        return np.asarray(x).view(Array)
    return x

