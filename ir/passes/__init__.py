"""IR passes: functions from a program to an equivalent, smaller or cheaper one.

Each pass takes a ClosedJaxpr and returns a ClosedJaxpr (given a bare Jaxpr,
it returns a bare Jaxpr; its constvars then have no known values, and
constant folding makes literals only). Every pass

- computes bit for bit what its input computes (NaN payloads aside), with
  the same avals (shape, dtype and weak type) for every output, and the same
  invars (`lower_integer_pow(exact=False)` alone trades bits for speed);
- never mutates its input: changed equations are new Eqn objects, unchanged
  ones and variables are shared, and a pass that changes nothing returns its
  input object itself;
- is one or two loops over the equations (no recursion per equation: a
  100,000-equation program is routine) and deterministic (no set or id order
  decides anything);
- treats equations holding sub-jaxprs (jit_call, cond, scan) as units: DCE
  trims their unused outputs and operands by the primitive's `dce` rule (or
  drops them when unused), CSE merges two with identical operands and the
  same sub-jaxpr objects, and no work moves into or out of a sub-jaxpr.
  `optimize` optimizes each sub-jaxpr on its own.

    dce                 drop unused equations and constvars          (dce.py)
    cse                 one equation per distinct computation        (cse.py)
    fold_constants      compute small constant results ahead         (fold.py)
    simplify            IEEE-exact algebraic rewrites                (simplify.py)
    lower_integer_pow   integer_pow as multiplications, where exact  (integer_pow.py)
    optimize            all of them to a fixed point, sub-jaxprs too (pipeline.py)
    collapse_sums       push sums over an axis towards the inputs    (collapse.py)

`cse`, `fold_constants`, `simplify` and `lower_integer_pow` are rules of one
shared forward sweep (rewrite.py), which `optimize` runs with all of them at
once. What a pass makes unused it leaves for `dce`. `collapse_sums` is exact
up to rounding only (it reorders additions), so `optimize` does not run it:
the differential operators of Taylor mode do (ftrans/_taylor.py).
"""
from ir.passes.collapse import collapse_sums
from ir.passes.cse import cse
from ir.passes.dce import dce
from ir.passes.fold import fold_constants
from ir.passes.integer_pow import lower_integer_pow
from ir.passes.pipeline import optimize
from ir.passes.rewrite import BARRIER_PRIMITIVES, FOLD_MAX_ELEMENTS
from ir.passes.simplify import simplify

__all__ = ["BARRIER_PRIMITIVES", "FOLD_MAX_ELEMENTS", "collapse_sums", "cse", "dce", "fold_constants",
           "lower_integer_pow", "optimize", "simplify"]
