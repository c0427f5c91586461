"""`optimize`: every pass, in one order, to a fixed point."""
from __future__ import annotations

from ir import config
from ir.passes.cse import cse_rule
from ir.passes.dce import dce
from ir.passes.fold import fold_rule
from ir.passes.integer_pow import integer_pow_rule
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


def optimize(program):
    """`program` (ClosedJaxpr or Jaxpr) after constant folding, simplification,
    integer_pow lowering (the exact cases), CSE and DCE, repeated until nothing
    changes (at most MAX_ROUNDS rounds). Evaluates bit for bit as `program` does.
    Returns the input object itself when there is nothing to do."""
    for _ in range(MAX_ROUNDS):
        optimized = dce(rewrite(program, RULES, merge_consts=True))
        if optimized is program:
            break
        program = optimized
    if config.debug:
        from ir.check import check
        check(program)
    return program
