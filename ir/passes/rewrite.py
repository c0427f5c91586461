"""The forward sweep that `cse`, `fold_constants`, `simplify` and
`lower_integer_pow` share: one loop over the equations, in order, that lets a
list of *rules* replace each equation.

A rule is a function ``rule(rw, eqn)`` given an equation whose operands are
already rewritten. It returns

- None: no change, try the next rule (an equation no rule changes is kept);
- a list of atoms, one per output: the outputs are those atoms from now on
  (existing variables, literals, or variables of equations the rule added
  with `rw.emit`), and the equation is dropped;
- a new Eqn: the equation is replaced by it, and the rules start over on it.

A rule that only ever changes equations of some primitives says so in a
`primitives` attribute (a frozenset of Primitive objects): the sweep skips
it for the others. (Most equations then meet two rules, fold and CSE, not
every rule of the sweep.)

Because the sweep runs in program order, every operand an equation sees is
already in its final form, so one sweep reaches what most chains of rewrites
reach (`neg(neg(neg x))`, folds feeding simplifications feeding CSE).
Equations whose outputs are no longer used stay: `dce` removes them.

Invariants the sweep keeps for every rule:

- An output is only ever replaced by an atom of the identical aval (avals
  are interned, so `is`): shape, dtype and weak type never change.
- The input jaxpr is never mutated. Unchanged equations (and variables and
  params dicts) are shared with the input, since no pass mutates an Eqn;
  changed ones are new Eqn objects. A sweep
  that changes nothing returns its input object itself, which is how
  `optimize` knows there was nothing to do (and, in debug mode, checks
  that its one round reached the fixed point).
- No recursion per equation: the sweep is a loop, and the only nesting is a
  rule emitting a few equations of its own (bounded by the rule, not by the
  program).
"""
from __future__ import annotations

import numpy as np

from ir.core import ClosedJaxpr, Eqn, Jaxpr, Literal, ShapedArray, Var
from ir.primitive import Primitive

# Arrays of at most this many elements are "small": constant folding may
# compute them at optimization time and hold them as constants. 16 elements
# (128 bytes at float64) covers what rules and indexing build from constants
# (index vectors, small masks, 4x4 grids, broadcast scalars of small shapes),
# while anything the size of a user's data stays staged: folding must not
# undo omnistaging by baking large arrays into the program (they would be
# computed at trace time, held for as long as jit's cache holds the program,
# and keyed and compared on every look-up).
FOLD_MAX_ELEMENTS = 16

# Primitives behind which nothing is merged or computed ahead of time.
# NB: `checkpoint` does not exist yet. When it arrives, its recomputation in
# the backward pass must stay a recomputation: CSE would otherwise merge it
# with the forward computation it repeats, and the residuals checkpointing
# was asked to drop would be kept alive again. Fold and simplify leave these
# equations alone too.
BARRIER_PRIMITIVES = frozenset({"checkpoint", "optimization_barrier"})

# A rule that keeps replacing an equation by another is a bug; stop it.
_MAX_REWRITES_PER_EQN = 32


def unpack(program):
    """(jaxpr, consts or None, rebuild) for a ClosedJaxpr or a bare Jaxpr:
    every pass takes either and returns the same kind."""
    if isinstance(program, ClosedJaxpr):
        return program.jaxpr, program.consts, ClosedJaxpr
    if isinstance(program, Jaxpr):
        return program, None, lambda jaxpr, consts: jaxpr
    raise TypeError(f"IR passes take a Jaxpr or ClosedJaxpr, got {type(program).__name__}")


def holds_jaxpr(eqn) -> bool:
    """Whether a param holds a sub-jaxpr (directly or in a tuple/list of params)."""
    pending = list(eqn.params.values())
    while pending:
        value = pending.pop()
        if isinstance(value, (Jaxpr, ClosedJaxpr)):
            return True
        if isinstance(value, (tuple, list)):
            pending.extend(value)
    return False


def is_barrier(eqn) -> bool:
    return eqn.primitive.name in BARRIER_PRIMITIVES


def literal(value, aval: ShapedArray) -> Literal:
    """A rank-0 literal of `aval` (whose weak type it keeps) holding `value`."""
    return Literal(aval.dtype.type(value), ShapedArray((), aval.dtype, aval.weak_type))


class Rewriter:
    """One forward sweep over a jaxpr (see the module docstring).

    Rules read it through `atom_value`, `scalar_value`, `producer`,
    `order_key`, and add equations with `emit` or constants with `new_const`.
    """

    def __init__(self, program, rules, merge_consts=False):
        self.jaxpr, consts, self._rebuild = unpack(program)
        self.program, self.rules = program, list(rules)
        self.changed = False
        self.env = {}         # Var of the input -> the atom that replaces it
        self.eqns = []        # the new equations
        self.producers = {}   # Var -> the new Eqn defining it
        self.order = {}       # Var -> definition index in the new program
        self.constvars = list(self.jaxpr.constvars)
        self.consts = None if consts is None else list(consts)
        self.known = {}       # Var -> value (a small NumPy array) of a constvar
        self._const_table = {} if merge_consts else None  # (aval, bytes) -> constvar
        self.tables = {}      # scratch space for rules (CSE's table lives here)
        self.origin = None    # Eqn.origin of the equation swept now: what rules emit for it keeps it
        self._rules_by_primitive = {}  # Primitive -> the rules that may change its equations
        for var in self.constvars:
            self._define(var)
        for var in self.jaxpr.invars:
            self._define(var)
        if self.consts is not None:
            for var, value in zip(self.constvars, self.consts, strict=True):
                if isinstance(value, (np.ndarray, np.generic)) and value.size <= FOLD_MAX_ELEMENTS:
                    self._register_const(var, np.asarray(value))

    # -------------------- what rules read --------------------

    def atom_value(self, atom):
        """The value of a literal or of a small constant, else None."""
        if type(atom) is Literal:
            return atom.value
        return self.known.get(atom)

    def scalar_value(self, atom):
        """The one value every element of `atom` has, when that is known
        statically: a literal, a small constant whose elements are all
        bitwise equal, or `broadcast_in_dim` of either (e.g. AD's
        materialized zeros, whatever their size). Else None."""
        eqn = self.producers.get(atom) if type(atom) is Var else None
        if eqn is not None and eqn.primitive.name == "broadcast_in_dim":
            atom = eqn.invars[0]
        if type(atom) is Literal:
            return atom.value
        value = self.known.get(atom)
        if value is None or value.size == 0 or value.dtype.itemsize == 0:
            return None
        data, size = value.tobytes(), value.dtype.itemsize
        if data != data[:size] * value.size:  # bitwise: -0.0 and 0.0 are different values here
            return None
        return value.reshape(-1)[0]

    def producer(self, atom):
        """The new equation that defines `atom`, or None (inputs, constants, literals)."""
        return self.producers.get(atom) if type(atom) is Var else None

    def order_key(self, atom):
        """Sort key of an operand: variables by definition index, then literals."""
        if type(atom) is Literal:
            return (1, atom.aval.dtype.str, atom.aval.weak_type, atom.value.tobytes())
        return (0, self.order[atom], "", b"")

    # -------------------- what rules add --------------------

    def emit(self, prim: Primitive, invars, params):
        """Add `prim(*invars, **params)` (itself run through the rules) and
        return its output atoms, in a list."""
        avals = prim.abstract_eval([x.aval for x in invars], params)
        eqn = Eqn(prim, list(invars), [Var(aval) for aval in avals], dict(params), self.origin)
        return self._process(eqn)

    def new_const(self, value, aval: ShapedArray):
        """A constvar bound to `value` (an array of `aval`), or None for a bare
        Jaxpr, which has nowhere to keep a constant's value."""
        if self.consts is None:
            return None
        value = np.array(value, dtype=aval.dtype, copy=True)
        if self._const_table is not None:
            existing = self._const_table.get(self._const_key(value, aval))
            if existing is not None:
                return existing
        var = Var(aval)
        self.constvars.append(var)
        self.consts.append(value)
        self._define(var)
        self._register_const(var, value)
        return var

    # -------------------- the sweep --------------------

    def run(self):
        """The rewritten program (the input object itself if nothing changed)."""
        for eqn in self.jaxpr.eqns:
            self.origin = eqn.origin
            outs = self._process(eqn)
            for old, new in zip(eqn.outvars, outs, strict=True):
                if new is not old:
                    self.env[old] = new
        outvars = [self.read(v) for v in self.jaxpr.outvars]
        if not self.changed:
            return self.program
        jaxpr = Jaxpr(self.constvars, self.jaxpr.invars, self.eqns, outvars)
        return self._rebuild(jaxpr, self.consts)

    def read(self, atom):
        return self.env.get(atom, atom) if type(atom) is Var else atom

    def _process(self, eqn):
        """Run the rules on `eqn`; return the atoms its outputs become."""
        env = self.env
        if env:
            invars = [env.get(x, x) for x in eqn.invars]  # literals are never keys of env
            if invars != eqn.invars:  # NB: atoms compare by identity
                eqn = eqn.replace(invars=invars)
        for _ in range(_MAX_REWRITES_PER_EQN):
            for rule in self._rules_for(eqn.primitive):
                result = rule(self, eqn)
                if result is not None:
                    break
            else:
                break  # no rule applies: keep the equation
            self.changed = True
            if isinstance(result, Eqn):
                eqn = result
                continue
            for var, atom in zip(eqn.outvars, result, strict=True):
                if atom.aval is not var.aval:
                    raise AssertionError(f"a rewrite of {eqn.primitive.name} replaced a "
                                         f"{var.aval.str_short()} by a {atom.aval.str_short()}")
            return list(result)
        self.eqns.append(eqn)
        for var in eqn.outvars:
            self._define(var)
            self.producers[var] = eqn
        return eqn.outvars

    def _rules_for(self, prim):
        rules = self._rules_by_primitive.get(prim)
        if rules is None:  # a rule without `primitives` may change any equation
            rules = self._rules_by_primitive[prim] = [
                rule for rule in self.rules if prim in getattr(rule, "primitives", (prim,))]
        return rules

    def _define(self, var):
        self.order[var] = len(self.order)

    @staticmethod
    def _const_key(value, aval):
        return (aval, value.shape, value.tobytes())

    def _register_const(self, var, value):
        self.known[var] = value
        if self._const_table is None:
            return
        key = self._const_key(value, var.aval)
        existing = self._const_table.get(key)
        if existing is None:
            self._const_table[key] = var
        elif existing is not var:  # the same small constant twice: use the first
            self.env[var] = existing
            self.changed = True


def rewrite(program, rules, merge_consts=False):
    """Sweep `program` (a ClosedJaxpr or Jaxpr) once with `rules`."""
    return Rewriter(program, rules, merge_consts).run()
