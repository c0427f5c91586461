"""`optimize`: every pass, in one order, to a fixed point."""
from __future__ import annotations

from ir import config
from ir.passes.cse import cse_rule
from ir.passes.dce import dce
from ir.passes.fold import fold_rule
from ir.passes.integer_pow import inexact_integer_pow_rule, integer_pow_rule
from ir.passes.rewrite import rewrite
from ir.passes.simplify import simplify_rule

# Each round is one forward sweep and one DCE. The sweep sees every operand in
# its final form already (program order), so one round reaches nearly all of
# the fixed point; the second usually just confirms it. The bound keeps a
# pair of rules that undo each other (a bug) from looping forever.
MAX_ROUNDS = 4

# In the order the sweep tries them on each equation: folding first (a constant
# needs no other rewrite), then simplification and the lowering of
# integer_pow, and CSE last, so that what it remembers is the final form.
RULES = (fold_rule, simplify_rule, integer_pow_rule, cse_rule)


def optimize(program, exact_powers=True):
    """`program` (ClosedJaxpr or Jaxpr) after constant folding, simplification,
    integer_pow lowering, CSE and DCE, repeated until nothing changes (at most
    MAX_ROUNDS rounds). Returns the input object itself when there is nothing to do.

    With `exact_powers` (the default) it evaluates bit for bit as `program`
    does: integer_pow is lowered only where multiplications equal np.power
    exactly. `exact_powers=False` lowers every integer power to multiplications,
    as JAX's integer_pow does (within an ulp or so of np.power, and many times
    faster: NumPy's `x ** 3` goes through pow); jit uses it.
    """
    rules = RULES if exact_powers else tuple(
        inexact_integer_pow_rule if rule is integer_pow_rule else rule for rule in RULES)
    for _ in range(MAX_ROUNDS):
        optimized = dce(rewrite(program, rules, merge_consts=True))
        if optimized is program:
            break
        program = optimized
    if config.debug:
        from ir.check import check
        check(program)
    return program
