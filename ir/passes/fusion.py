"""Fusion planning: which equations of an optimized jaxpr run as one GPU kernel.

`plan_fusion(jaxpr)` returns a `Plan`: steps in an order that runs each step
after the steps whose results it reads.

- `ElementwiseGroup`: equations of one output shape that become one
  elementwise kernel, with several outputs where several values leave it (a
  forward value and its derivative, say). Its members are elementwise
  primitives with a `cuda_template` (a `c_template` for the C targets) and `broadcast_in_dim`s of values from
  outside, which become broadcasting loads (a `Load` views the operand with
  1s where it is broadcast). Rank-0 operands broadcast as they are.
- `ReductionGroup`: a reduction with the elementwise equations that compute
  its operand (its "map"), as one reduction kernel.
- `LibraryCall`: every other equation (dot_general, gather, transpose, ...).

A few small passes build it, over steps that hold equation indices:

1. `classify`: what each equation may become (elementwise, load, reduction, call).
2. `schedule`: a list scheduling in which each group is a run of consecutive
   fusible equations of one shape. Ready calls run first, so that a group
   opens as late as possible and takes in all that is ready for it. A run of
   a topological order is convex (no path leaves it and comes back), so the
   steps form no cycle, by construction.
3. `merge_groups`: a group joins the nearest earlier group of its shape when
   nothing it reads depends on that group; the steps in between that do
   depend on it move after the merged group, so the order stays topological.
4. `absorb_into_reductions`: a reduction whose operand a group computes and
   nothing but reductions reads recomputes the operand in its own map
   (reading the group's inputs once more costs less than writing the operand
   and reading it back); values that other steps read anyway are read, not
   recomputed. `prune` then drops what no step reads any more from the
   groups (and groups left empty), and `merge_groups` runs once more: a
   group that gave its work to a reduction may now merge past it.
5. `share_broadcasts`: a kernel that reads a broadcast another group computes
   broadcasts it itself (a load of the broadcast's operand), so that no group
   writes a broadcast array out only for other kernels; `prune` runs again.
6. `finish` reads off each kernel's inputs (`Load`s) and outputs: an
   intermediate that another step or the jaxpr's result reads is one more
   output of its group.

Every pass is a loop or two over the equations (no recursion); merging scans
the steps between the two groups it merges.
"""
from __future__ import annotations

import heapq
from dataclasses import dataclass

import numpy as np

from ir.core import ClosedJaxpr, Eqn, Jaxpr, Literal, Var
from ir.printer import _Names, format_scalar
from ir.primitives import reductions, structural

# Dtypes a generated kernel computes in: each has a C type. float16 has none
# in CUDA (NumPy's float16 results need a rounding to half after every
# operation), so float16 equations are library calls there; see C_FLOAT16.
KERNEL_DTYPES = frozenset(np.dtype(name) for name in (
    "float32", "float64", "int8", "int16", "int32", "int64",
    "uint8", "uint16", "uint32", "uint64", "bool", "complex64", "complex128"))

# The primitives whose templates hold for complex operands or results (CuPy's complex<T>, thrust's; the
# ordering ones compare lexicographically, as NumPy): the others (log1p, expm1, ...) have no complex C
# function, and run as library calls
COMPLEX_KERNEL_PRIMITIVES = frozenset({
    "neg", "abs", "sin", "cos", "tan", "sinh", "cosh", "tanh", "exp", "log", "sqrt", "add", "sub", "mul", "div",
    "pow", "eq", "ne", "lt", "le", "gt", "ge", "max", "min", "select_n", "convert_element_type", "stop_gradient",
    "integer_pow", "real", "imag", "conj", "complex", "reduce_sum", "reduce_prod", "reduce_max", "reduce_min"})



@dataclass(frozen=True)
class Target:
    """What kernels of one kind take: the primitive attribute holding their templates, the dtypes
    they compute in, the primitives they compute on complex values, and those they compute on
    float16 values (where float16 is one of the dtypes)."""
    template: str
    dtypes: frozenset
    complex_primitives: frozenset
    float16_primitives: frozenset = frozenset()


# CuPy's kernels (interpreters/lowering_cupy.py)
CUDA = Target("cuda_template", KERNEL_DTYPES, COMPLEX_KERNEL_PRIMITIVES)
# The C kernels of jit on the CPU (interpreters/lowering_c.py): real dtypes only; complex values
# are NumPy calls (NumPy's complex functions are its own, not C99's)
C = Target("c_template", frozenset(d for d in KERNEL_DTYPES if d.kind != "c"), frozenset())

FLOAT16 = np.dtype(np.float16)
# The primitives whose C templates give NumPy's float16 results bit for bit (computed in float32,
# rounded to half after every operation, as NumPy's float16 loops): the elementwise ones but pow
# (NumPy's float16 loop hands a signaling NaN to powf, whose pow(sNaN, 0) is NaN; the kernel's
# conversion to float quiets it, and powf answers 1) and no reduction (NumPy's float16 sums
# accumulate in float32 and round once, over its own blocks)
FLOAT16_KERNEL_PRIMITIVES = frozenset({
    "neg", "sign", "abs", "floor", "ceil", "sin", "cos", "tan", "atan", "sinh", "cosh", "tanh", "exp", "log",
    "log1p", "expm1", "sqrt", "logistic", "stop_gradient", "integer_pow", "add", "sub", "mul", "div",
    "floor_divide", "mod", "max", "min", "atan2", "eq", "ne", "lt", "le", "gt", "ge", "select_n",
    "convert_element_type", "broadcast_in_dim"})
# The C kernels where the compiler has _Float16 (interpreters/c_compiler.py's probe): float16 too
C_FLOAT16 = Target("c_template", C.dtypes | {FLOAT16}, frozenset(), FLOAT16_KERNEL_PRIMITIVES)

REDUCTIONS = frozenset({reductions.reduce_sum_p, reductions.reduce_prod_p,
                        reductions.reduce_max_p, reductions.reduce_min_p})

ELEMENTWISE, LOAD, REDUCTION, CALL = "elementwise", "load", "reduction", "call"
FUSIBLE = (ELEMENTWISE, LOAD)


# -------------------- the plan --------------------

@dataclass(frozen=True)
class Load:
    """A kernel input: `var` viewed with `shape` (its own shape, or the shape
    with 1s from which broadcast_in_dim broadcasts it)."""
    var: Var
    shape: tuple


@dataclass
class ElementwiseGroup:
    eqns: list       # members, in program order
    shape: tuple     # every member's output shape
    inputs: list     # Loads
    outputs: list    # member outvars read outside the group


@dataclass
class ReductionGroup:
    eqns: list       # the map: members computing the reduced operand, in program order
    reduction: Eqn
    inputs: list     # Loads; they broadcast to the reduced operand's shape


@dataclass
class LibraryCall:
    eqn: Eqn


@dataclass
class Plan:
    jaxpr: Jaxpr
    steps: list

    @property
    def kernels(self):
        return [s for s in self.steps if not isinstance(s, LibraryCall)]

    def pretty(self, name="plan", kernel_names=None):
        """The host-side plan as Python-like text, one line per step, in the
        printed jaxpr's variable names; kernels are called `kernel_names` (in
        step order) or k0, k1, ..."""
        return _pp_plan(self, name, kernel_names)

    def __str__(self):
        return self.pretty()


def load_shape(eqn) -> tuple:
    """The shape broadcast_in_dim's operand is viewed with: its own sizes on
    the dimensions it maps to, 1 elsewhere."""
    expanded = [1] * len(eqn.params["shape"])
    for size, dim in zip(eqn.invars[0].aval.shape, eqn.params["broadcast_dimensions"], strict=True):
        expanded[dim] = size
    return tuple(expanded)


def kernel_statements(eqns, inputs, results, input_name, literal, statement):
    """The body of a kernel computing a group's `eqns` from its `inputs` (Loads): each input
    is named input_name(k), each broadcast_in_dim is a load of its operand (the kernel's loop
    broadcasts), and each other equation is one statement(eqn, name, operands) defining
    `v<k>`, its operands the names or literal(value, dtype) texts. Returns the statements
    and the text of each of `results`."""
    names = {(load.var, load.shape): input_name(k) for k, load in enumerate(inputs)}
    env, lines = {}, []

    def operand(x, shape=None):
        if type(x) is Literal:
            return literal(x.value, x.aval.dtype)
        return env[x] if x in env else names[(x, x.aval.shape if shape is None else shape)]

    for eqn in eqns:
        out = eqn.outvars[0]
        if eqn.primitive is structural.broadcast_in_dim_p:
            env[out] = operand(eqn.invars[0], load_shape(eqn))
            continue
        env[out] = f"v{len(lines)}"
        lines.append(statement(eqn, env[out], [operand(x) for x in eqn.invars]))
    return lines, [operand(v) for v in results]


def plan_fusion(program, target=CUDA) -> Plan:
    """The plan for kernels of `target` (CUDA, or C)."""
    jaxpr = program.jaxpr if isinstance(program, ClosedJaxpr) else program
    graph = _Graph(jaxpr, target)
    steps = merge_groups(graph, schedule(graph))
    steps = prune(graph, absorb_into_reductions(graph, steps))
    # what left the groups for the reductions may let more of them merge
    steps = prune(graph, share_broadcasts(graph, merge_groups(graph, steps)))
    return Plan(jaxpr, finish(graph, steps))


class _Graph:
    """The jaxpr's data flow between equations (by index), and each one's kind."""

    def __init__(self, jaxpr, target=CUDA):
        self.jaxpr, self.eqns = jaxpr, jaxpr.eqns
        self.kinds = classify(jaxpr, target)
        self.producer = {v: i for i, eqn in enumerate(self.eqns) for v in eqn.outvars}
        self.sources = []  # per equation: the equations whose results it reads, each once
        self.readers = {}  # var -> the equations reading it
        for i, eqn in enumerate(self.eqns):
            sources = []
            for x in eqn.invars:
                if type(x) is Var:
                    self.readers.setdefault(x, []).append(i)
                    p = self.producer.get(x)
                    if p is not None and p not in sources:
                        sources.append(p)
            self.sources.append(sources)
        self.results = {v for v in jaxpr.outvars if type(v) is Var}

    def shape(self, i):
        return self.eqns[i].outvars[0].aval.shape

    def loads(self, members):
        """The Loads of a set of equations: the operands computed outside it."""
        loads = {}  # a dict for its order
        for i in sorted(members):
            eqn = self.eqns[i]
            for x in eqn.invars:
                if type(x) is Var and self.producer.get(x) not in members:
                    loads[Load(x, load_shape(eqn) if self.kinds[i] == LOAD else x.aval.shape)] = None
        return list(loads)


class _Step:
    """A step while planning: the equations it computes, in program order. A
    reduction step computes its map and, last, the reduction; only the
    reduction's result leaves it."""

    def __init__(self, kind, members):
        self.kind, self.members = kind, members
        self.member_set = set(members)
        self._reads = None

    @property
    def writes(self):
        return self.members[-1:] if self.kind == REDUCTION else self.members

    def reads(self, graph):
        """The equations whose results the step reads."""
        if self._reads is None:
            self._reads = {p for i in self.members for p in graph.sources[i] if p not in self.member_set}
        return self._reads

    def is_group(self):
        return self.kind in FUSIBLE


# -------------------- 1. classify --------------------

def classify(jaxpr, target=CUDA) -> list:
    """Per equation: ELEMENTWISE, LOAD (a broadcast_in_dim), REDUCTION or CALL."""
    return [_kind(eqn, target) for eqn in jaxpr.eqns]


def _kind(eqn, target):
    prim = eqn.primitive
    avals = [x.aval for x in eqn.invars] + [v.aval for v in eqn.outvars]
    if any(a.dtype not in target.dtypes for a in avals):
        return CALL
    if prim.name not in target.complex_primitives and any(a.dtype.kind == "c" for a in avals):
        return CALL
    if prim.name not in target.float16_primitives and any(a.dtype == FLOAT16 for a in avals):
        return CALL
    if prim is structural.broadcast_in_dim_p:
        return LOAD
    if getattr(prim, target.template) is None:
        return CALL
    if prim.elementwise:
        return ELEMENTWISE
    # a reduction kernel needs an array to reduce (a literal operand is a call)
    return REDUCTION if prim in REDUCTIONS and type(eqn.invars[0]) is Var else CALL


# -------------------- 2. schedule --------------------

def schedule(graph) -> list:
    """Steps in a topological order where each group of fusible equations of
    one shape is one step."""
    waiting = [len(sources) for sources in graph.sources]
    consumers = [[] for _ in graph.eqns]
    for i, sources in enumerate(graph.sources):
        for p in sources:
            consumers[p].append(i)
    ready_calls, ready_fusible = [], {}  # heaps of indices; the fusible ones by output shape

    def make_ready(i):
        if graph.kinds[i] in FUSIBLE:
            heapq.heappush(ready_fusible.setdefault(graph.shape(i), []), i)
        else:
            heapq.heappush(ready_calls, i)

    def done(i):
        for c in consumers[i]:
            waiting[c] -= 1
            if waiting[c] == 0:
                make_ready(c)

    for i, count in enumerate(waiting):
        if count == 0:
            make_ready(i)
    steps = []
    while ready_calls or ready_fusible:
        if ready_calls:
            i = heapq.heappop(ready_calls)
            steps.append(_Step(graph.kinds[i], [i]))
            done(i)
            continue
        # open a group with the earliest ready fusible equation; all of its
        # shape that becomes ready while the group is open joins it
        shape = min(ready_fusible, key=lambda s: ready_fusible[s][0])
        heap, group = ready_fusible[shape], []
        while heap:  # `done` pushes what it makes ready onto this same heap
            i = heapq.heappop(heap)
            group.append(i)
            done(i)
        del ready_fusible[shape]
        steps.append(_Step(ELEMENTWISE, sorted(group)))
    return steps


# -------------------- 3. merge groups --------------------

def merge_groups(graph, steps) -> list:
    steps = list(steps)
    position = 0
    while position < len(steps):
        earlier_at = _nearest_group_like(graph, steps, position)
        if earlier_at is None:
            position += 1
            continue
        between = steps[earlier_at + 1:position]
        moved, tainted = _dependents(graph, steps[earlier_at], between)
        later = steps[position]
        if later.reads(graph) & tainted:
            position += 1  # it reads a result of the earlier group through another step
            continue
        kept = [s for s in between if s not in moved]
        merged = _Step(ELEMENTWISE, sorted(steps[earlier_at].members + later.members))
        steps[earlier_at:position + 1] = kept + [merged] + moved
        # the range shrank by one step: `position` now holds the step after `later`
    return steps


def _nearest_group_like(graph, steps, position):
    """The position of the nearest earlier group of the shape of the group at `position`."""
    if not steps[position].is_group():
        return None
    shape = graph.shape(steps[position].members[0])
    for at in range(position - 1, -1, -1):
        if steps[at].is_group() and graph.shape(steps[at].members[0]) == shape:
            return at
    return None


def _dependents(graph, source, between):
    """The steps in `between` that read results of the step `source`, directly
    or through one another, and the results (equation indices) they write."""
    dependents, tainted = [], set(source.writes)
    for step in between:
        if step.reads(graph) & tainted:
            dependents.append(step)
            tainted.update(step.writes)
    return dependents, tainted - set(source.writes)


# -------------------- 4. absorb into reductions --------------------

def absorb_into_reductions(graph, steps) -> list:
    """The steps with every reduction's map filled in."""
    group_of = {i: step for step in steps if step.is_group() for i in step.members}
    result = []
    for step in steps:
        if step.kind != REDUCTION:
            result.append(step)
            continue
        (r,) = step.members
        operand = graph.eqns[r].invars[0]
        source = graph.producer.get(operand)
        cone = []
        if source in group_of and _only_reductions_read(graph, operand):
            cone = _cone(graph, source, group_of[source].member_set)
            if _broadcast_shape(graph.loads(set(cone))) != operand.aval.shape:
                cone = []  # its inputs would not span the operand's shape: read the operand
        result.append(_Step(REDUCTION, cone + [r]))
    return result


def _only_reductions_read(graph, var):
    return var not in graph.results and all(graph.kinds[i] == REDUCTION for i in graph.readers[var])


def _needed_anyway(graph, var, group):
    """Whether something other than a reduction reads `var` from outside `group`."""
    return var in graph.results or any(i not in group and graph.kinds[i] != REDUCTION
                                       for i in graph.readers.get(var, ()))


def _cone(graph, source, group):
    """The members of `group` that compute equation `source`'s result, up to
    values that are written out for other steps anyway."""
    cone, stack = set(), [source]
    while stack:
        i = stack.pop()
        if i in cone:
            continue
        cone.add(i)
        for p in graph.sources[i]:
            if p in group and not _needed_anyway(graph, graph.eqns[p].outvars[0], group):
                stack.append(p)
    return sorted(cone)


def _broadcast_shape(loads):
    return tuple(np.broadcast_shapes(*[load.shape for load in loads])) if loads else ()


def prune(graph, steps) -> list:
    """The steps without group members that no other step (nor the jaxpr's
    result) needs, and without groups left empty: what reductions now
    recompute in their maps."""
    read = {p for step in steps for p in step.reads(graph)}
    read.update(graph.producer[v] for v in graph.results if v in graph.producer)
    pruned = []
    for step in steps:
        if step.is_group():
            needed = {i for i in step.members if i in read}
            for i in reversed(step.members):  # readers come after what they read
                if i in needed:
                    needed.update(p for p in graph.sources[i] if p in step.member_set)
            if not needed:
                continue
            step = _Step(step.kind, sorted(needed))
        pruned.append(step)
    return pruned


# -------------------- 5. share broadcasts --------------------

def share_broadcasts(graph, steps) -> list:
    """The steps, each kernel that reads a broadcast_in_dim of another group computing it
    itself: in a kernel a broadcast is a load of its operand, free, where reading it from
    the other group would have that group write the whole broadcast array out (a bias
    broadcast over the batch, which the gradient reads after a matrix product). `prune`
    then drops broadcasts that no other step reads from their first group."""
    shared = []
    for step in steps:
        if step.kind == CALL:
            shared.append(step)
            continue
        # a kernel computes values of one shape: a broadcast that another broadcast reads (to
        # a shape of its own) is read as it is
        last = graph.eqns[step.members[-1]]
        shape = last.invars[0].aval.shape if step.kind == REDUCTION else graph.shape(step.members[0])
        broadcasts = {p for i in step.members for p in graph.sources[i]
                      if p not in step.member_set and graph.kinds[p] == LOAD and graph.shape(p) == shape}
        shared.append(_Step(step.kind, sorted(step.member_set | broadcasts)) if broadcasts else step)
    return shared


# -------------------- finish: inputs and outputs --------------------

def finish(graph, steps) -> list:
    read = set(graph.results)  # values some step reads from another (or the jaxpr returns)
    for step in steps:
        read.update(load.var for load in graph.loads(step.member_set))
    finished = []
    for step in steps:
        members = [graph.eqns[i] for i in step.members]
        if step.kind == CALL:
            finished.append(LibraryCall(members[0]))
        elif step.kind == REDUCTION:
            finished.append(ReductionGroup(members[:-1], members[-1], graph.loads(step.member_set)))
        else:
            outputs = [v for e in members for v in e.outvars if v in read]
            finished.append(ElementwiseGroup(members, members[0].outvars[0].aval.shape,
                                             graph.loads(step.member_set), outputs))
    return finished


# -------------------- printing --------------------

def _pp_plan(plan, name, kernel_names):
    jaxpr, names = plan.jaxpr, _Names()  # the printer's naming: the plan reads beside the jaxpr
    for v in jaxpr.constvars + jaxpr.invars:
        names.define(v)
    for eqn in jaxpr.eqns:
        for v in eqn.outvars:
            names.define(v)
    kernel_names = iter(kernel_names or [f"k{n}" for n in range(len(plan.kernels))])
    atom = names.atom
    listed = lambda xs: ", ".join(atom(x) for x in xs)

    def load(l):
        return atom(l.var) if l.shape == l.var.aval.shape else f"{atom(l.var)}.reshape{l.shape}"

    head = f"plan {name}({listed(jaxpr.invars)})"
    lines = [head + (f", constants ({listed(jaxpr.constvars)})" if jaxpr.constvars else "") + ":"]
    for step in plan.steps:
        if isinstance(step, LibraryCall):
            eqn = step.eqn
            params = "".join(f", {k}={_pp_param(v)}" for k, v in sorted(eqn.params.items()))
            lines.append(f"{listed(eqn.outvars)} = {eqn.primitive.name}({listed(eqn.invars)}{params})")
        elif isinstance(step, ElementwiseGroup):
            members = " ".join(atom(e.outvars[0]) for e in step.eqns)
            call = f"{listed(step.outputs)} = {next(kernel_names)}({', '.join(map(load, step.inputs))})"
            lines.append(f"{call}  # elementwise {step.shape}: {members}")
        else:
            red = step.reduction
            mapped = f": map {' '.join(atom(e.outvars[0]) for e in step.eqns)}" if step.eqns else ""
            call = f"{atom(red.outvars[0])} = {next(kernel_names)}({', '.join(map(load, step.inputs))})"
            lines.append(f"{call}  # {red.primitive.name}[axes={red.params['axes']}] "
                         f"of {red.invars[0].aval.shape}{mapped}")
    outs = listed(jaxpr.outvars)
    lines.append(f"return ({outs},)" if len(jaxpr.outvars) == 1 else f"return ({outs})")
    return "\n    ".join(lines)


def _pp_param(value):
    if isinstance(value, ClosedJaxpr):  # a branch or a loop body: its own plan follows the host plan
        return "<its plan, below>"
    if isinstance(value, tuple) and any(isinstance(v, ClosedJaxpr) for v in value):
        return "(" + ", ".join(_pp_param(v) for v in value) + ")"
    if isinstance(value, np.dtype):
        return value.name
    if isinstance(value, np.generic):
        return format_scalar(value)
    return repr(value)
