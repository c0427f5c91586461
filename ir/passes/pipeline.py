"""`optimize`: every pass, in one order, in one round that reaches their fixed point."""
from __future__ import annotations

from ir import config
from ir.core import ClosedJaxpr
from ir.passes.cse import cse_rule
from ir.passes.dce import dce
from ir.passes.fold import fold_rule
from ir.passes.integer_pow import inexact_integer_pow_rule, integer_pow_rule
from ir.passes.rewrite import rewrite
from ir.passes.simplify import simplify_rule
from ir.primitives.call import derived

# In the order the sweep tries them on each equation: folding first (a constant
# needs no other rewrite), then simplification and the lowering of
# integer_pow, and CSE last, so that what it remembers is the final form.
RULES = (fold_rule, simplify_rule, integer_pow_rule, cse_rule)


def _sub_jaxprs_rule(exact_powers):
    """The rule that optimizes the sub-jaxprs of jit_call, cond and scan, each
    on its own (so nothing moves across a loop's or a branch's boundary; CSE
    merges within a body only), once per sub-jaxpr: the result is remembered
    beside it. A sub-jaxpr is optimized as a bare Jaxpr, so folding makes
    literals only and it keeps no constants, as its primitive requires."""
    def optimize_sub_jaxprs(rw, eqn):
        params = {name: _optimized(value, exact_powers) for name, value in eqn.params.items()}
        if all(params[name] is value for name, value in eqn.params.items()):
            return None
        return eqn.replace(params=params)
    optimize_sub_jaxprs.primitives = _HigherOrder()  # the sweep skips the rule for every other primitive
    return optimize_sub_jaxprs


class _HigherOrder:
    """The primitives holding sub-jaxprs, as a rule's `primitives` (rewrite.py), whichever are declared."""

    def __contains__(self, prim):
        return prim.holds_jaxprs


def _optimized(value, exact_powers):
    if isinstance(value, tuple):
        items = tuple(_optimized(v, exact_powers) for v in value)
        return value if all(a is b for a, b in zip(items, value)) else items
    if not isinstance(value, ClosedJaxpr) or value.jaxpr.constvars:
        return value

    def build():
        jaxpr = optimize(value.jaxpr, exact_powers)
        # a while's predicate read from text keeps its loop limit (ir.config.max_loop_iterations)
        return value if jaxpr is value.jaxpr else config.inherit_untrusted(ClosedJaxpr(jaxpr, []), value)
    return derived(value, ("optimize", exact_powers), build)


def optimize(program, exact_powers=True):
    """`program` (ClosedJaxpr or Jaxpr) after constant folding, simplification,
    integer_pow lowering, CSE and DCE: the fixed point of all of them. Returns
    the input object itself when there is nothing to do.

    One round (a forward sweep of all the rules, then DCE) reaches the fixed
    point: the sweep sees every operand in its final form already (program
    order), no rule reads later equations or counts uses, and DCE drops only
    equations that no kept one reads. So a second sweep would meet the same
    operands, producers and constants and change nothing. In debug mode (the
    test suite) a second round checks that it does not.

    With `exact_powers` (the default) it evaluates bit for bit as `program`
    does: integer_pow is lowered only where multiplications equal np.power
    exactly. `exact_powers=False` lowers every integer power to multiplications,
    as JAX's integer_pow does (within an ulp or so of np.power, and many times
    faster: NumPy's `x ** 3` goes through pow); jit uses it.
    """
    rules = (_SUB_JAXPR_RULES[exact_powers], *(RULES if exact_powers else tuple(
        inexact_integer_pow_rule if rule is integer_pow_rule else rule for rule in RULES)))
    optimized = dce(rewrite(program, rules, merge_consts=True))
    if config.debug:
        if optimized is not program and dce(rewrite(optimized, rules, merge_consts=True)) is not optimized:
            raise AssertionError("optimize: a second round changed the program (a rule that needs "
                                 "more than one sweep?)")
        from ir.check import check
        check(optimized)
    return optimized


_SUB_JAXPR_RULES = {True: _sub_jaxprs_rule(True), False: _sub_jaxprs_rule(False)}
