"""Collapse: push a sum over one axis towards the inputs, through everything linear in what it sums.

Where y = L(u, c) is linear in u and c is the same all along axis a,

    sum_a L(u, c) = L(sum_a u, c),

and the right side works on arrays without axis a. The pass applies this to
each output of the program that is such a sum, then to the sums it creates,
as far as the chain of linear equations goes; where it stops (u*u, tanh u, an
input), the sum is taken there. Weighted sums, sum_r w_r y[r] (a dot_general
of y with a vector of weights that is an input or constant of the program),
are pushed the same way.

This is "collapsing" Taylor mode (Dangel, Siebert, Zeinhofer and Walther,
"Collapsing Taylor Mode Automatic Differentiation", 2025): in the standard
Taylor-mode program of a differential operator, one K-jet per direction
batched along axis a, every K-th coefficient is linear in the K-th
coefficients it is computed from, with factors from lower orders that do not
depend on the direction (g'(x_0) x_K, W x_K, ...). So the sum over the
directions of the output's K-th coefficients becomes one summed K-th
coefficient propagated through the program: for the Laplacian, D + 1 vectors
(the D first-order coefficients and one sum) where the standard program
propagates 2D. `ft.laplacian`, `ft.biharmonic` and `ft.differential_operator`
run it on the program they stage; `ft.make_jaxpr` of them shows the result.

Which equations a sum goes through: add, sub, neg, convert_element_type
(unweighted sums), mul and div by a factor the same along the axis (a rank-0
value, or a broadcast_in_dim that adds the axis), select_n with such a
predicate, dot_general over a free dimension of one operand, and the
structural primitives that keep the axis whole (broadcast_in_dim, reshape,
transpose, squeeze, reduce_sum, rev, slice, pad with 0, concatenate along
another axis). Everything else takes the sum where it is.

Not part of `optimize`: it changes the order of additions (sum(u*c) becomes
sum(u)*c), so results agree up to rounding, not bit for bit. Like the other
passes it never mutates its input, loops (no recursion per equation), and
returns the input itself when no output is a sum it can push.
"""
from __future__ import annotations

import math

from ir.core import Eqn, Jaxpr, Literal, Var
from ir.passes.dce import dce
from ir.passes.rewrite import unpack
from ir.primitive import PRIMITIVES


def collapse_sums(program):
    """`program` (ClosedJaxpr or Jaxpr) with each output that is a sum over one
    axis (reduce_sum of one axis, or a dot_general with a vector of weights
    that is an input or a constant) pushed towards the inputs; see the module
    docstring. The outputs keep their avals."""
    jaxpr, consts, rebuild = unpack(program)
    producers = {var: eqn for eqn in jaxpr.eqns for var in eqn.outvars}
    inputs = set(jaxpr.constvars) | set(jaxpr.invars)
    roots = {}
    for out in jaxpr.outvars:
        request = _sum_in(producers.get(out), inputs) if type(out) is Var else None
        if request is not None and request[0] in producers:
            roots[out] = request
    if not roots:
        return program

    # backward: which sums each variable is asked for, and how each is computed
    requests = {}  # Var -> {(var, axis, weights): None}, in the order they were asked for
    for request in roots.values():
        requests.setdefault(request[0], {})[request] = None
    plans = {}
    for eqn in reversed(jaxpr.eqns):
        for var in eqn.outvars:
            for request in list(requests.get(var, ())):
                _, axis, weights = request
                plan = None if eqn.primitive.multiple_results else _push(eqn, axis, weights, producers)
                plans[request] = plan
                if plan is not None:
                    for index, operand_axis in plan[0].items():
                        operand = eqn.invars[index]
                        requests.setdefault(operand, {})[(operand, operand_axis, weights)] = None

    # forward: each sum right after the equation defining what it sums
    eqns, summed = [], {}

    def emit(prim, invars, params):
        aval, = prim.abstract_eval([x.aval for x in invars], params)
        out = Var(aval)
        eqns.append(Eqn(prim, list(invars), [out], dict(params)))
        return out

    def realize(var):
        for request in requests.get(var, ()):
            _, axis, weights = request
            plan = plans.get(request)
            if plan is None:
                summed[request] = _sum_here(emit, var, axis, weights)
            else:
                operand_axes, build = plan
                eqn = producers[var]
                build_operands = {i: summed[(eqn.invars[i], a, weights)] for i, a in operand_axes.items()}
                summed[request] = build(emit, build_operands)

    for var in [*jaxpr.constvars, *jaxpr.invars]:
        realize(var)
    env = {}
    for eqn in jaxpr.eqns:
        if env and any(type(x) is Var and x in env for x in eqn.invars):
            eqn = eqn.replace(invars=[env.get(x, x) if type(x) is Var else x for x in eqn.invars])
        eqns.append(eqn)
        for var in eqn.outvars:
            realize(var)
            if var in roots:
                env[var] = summed[roots[var]]
    outvars = [env.get(v, v) if type(v) is Var else v for v in jaxpr.outvars]
    return dce(rebuild(Jaxpr(jaxpr.constvars, jaxpr.invars, eqns, outvars), consts))


def _sum_in(eqn, inputs):
    """(summed var, axis, weights or None) if `eqn` sums one axis, else None."""
    if eqn is None:
        return None
    if eqn.primitive.name == "reduce_sum" and len(eqn.params["axes"]) == 1 and type(eqn.invars[0]) is Var:
        return eqn.invars[0], eqn.params["axes"][0], None
    if eqn.primitive.name == "dot_general":
        (lc, rc), (lb, rb) = eqn.params["dimension_numbers"]
        lhs, rhs = eqn.invars
        if lb or len(lc) != 1 or type(lhs) is not Var or type(rhs) is not Var:
            return None
        if rhs in inputs and rhs.aval.ndim == 1 and lhs not in inputs:
            return lhs, lc[0], rhs
        if lhs in inputs and lhs.aval.ndim == 1 and rhs not in inputs:
            return rhs, rc[0], lhs
    return None


def _sum_here(emit, var, axis, weights):
    if weights is None:
        return emit(PRIMITIVES["reduce_sum"], [var], {"axes": (axis,)})
    return emit(PRIMITIVES["dot_general"], [var, weights], {"dimension_numbers": (((axis,), (0,)), ((), ()))})


# -------------------- the rules: how a sum goes through one equation --------------------
# `_push(eqn, axis, weights, producers)` is None where the sum stays, or
# ({operand index: its axis to sum}, build), `build(emit, summed operands)`
# emitting the equation of the summed output and returning its variable.

def _without(items, index):
    return tuple(x for i, x in enumerate(items) if i != index)


def _shifted(dims, removed):
    """Axis numbers once axis `removed` is gone (none of `dims` is it)."""
    return tuple(d - (d > removed) for d in dims)


def _full(atom, eqn):
    return type(atom) is Var and atom.aval.shape == eqn.outvars[0].aval.shape


def _invariant(atom, axis, producers):
    """How to read `atom`, an operand the same all along `axis` of the output, without
    that axis: a function of `emit` returning the atom, or None if it varies along it."""
    if atom.aval.ndim == 0:  # rank-0 beside arrays: the same everywhere
        return lambda emit: atom
    eqn = producers.get(atom) if type(atom) is Var else None
    if eqn is None or eqn.primitive.name != "broadcast_in_dim" or axis in eqn.params["broadcast_dimensions"]:
        return None
    source, params = eqn.invars[0], eqn.params
    shape, dims = _without(params["shape"], axis), _shifted(params["broadcast_dimensions"], axis)
    if shape == source.aval.shape and dims == tuple(range(len(shape))):
        return lambda emit: source
    return lambda emit: emit(eqn.primitive, [source], {"shape": shape, "broadcast_dimensions": dims})


def _same_params(eqn):
    return lambda emit, s: emit(eqn.primitive, [s[i] for i in range(len(eqn.invars))], eqn.params)


def _push_elementwise_sum(eqn, axis, weights, producers):
    if all(_full(x, eqn) for x in eqn.invars):
        return {i: axis for i in range(len(eqn.invars))}, _same_params(eqn)
    return None


def _push_convert(eqn, axis, weights, producers):
    # between floats only (a sum of values converted to integers is not the conversion of
    # their sum); and unweighted: the weights have one dtype, the sum beyond another
    if weights is not None or eqn.invars[0].aval.dtype.kind != "f" or eqn.params["new_dtype"].kind != "f":
        return None
    return {0: axis}, _same_params(eqn)


def _push_scaling(eqn, axis, weights, producers):
    """mul by a factor the same along the axis (either operand), div by one (the divisor)."""
    candidates = (0, 1) if eqn.primitive.name == "mul" else (0,)
    for index in candidates:
        other = 1 - index
        reduced = _invariant(eqn.invars[other], axis, producers)
        if reduced is not None and _full(eqn.invars[index], eqn) and \
                _invariant(eqn.invars[index], axis, producers) is None:
            def build(emit, s, index=index, other=other, reduced=reduced):
                operands = [None, None]
                operands[index], operands[other] = s[index], reduced(emit)
                return emit(eqn.primitive, operands, {})
            return {index: axis}, build
    return None


def _push_select(eqn, axis, weights, producers):
    which, *cases = eqn.invars
    reduced = _invariant(which, axis, producers)
    if reduced is None:
        return None
    summed = {}
    for i, case in enumerate(cases, 1):
        if _full(case, eqn):
            summed[i] = axis
        elif not (type(case) is Literal and case.value == 0):  # a zero stays a zero
            return None

    def build(emit, s):
        return emit(eqn.primitive, [reduced(emit)] + [s.get(i, case) for i, case in enumerate(cases, 1)], {})
    return summed, build


def _push_dot_general(eqn, axis, weights, producers):
    (lc, rc), (lb, rb) = eqn.params["dimension_numbers"]
    lhs, rhs = eqn.invars
    lhs_free = [d for d in range(lhs.aval.ndim) if d not in lc and d not in lb]
    rhs_free = [d for d in range(rhs.aval.ndim) if d not in rc and d not in rb]
    position = axis - len(lb)
    if 0 <= position < len(lhs_free):
        index, operand_axis = 0, lhs_free[position]
    elif 0 <= position - len(lhs_free) < len(rhs_free):
        index, operand_axis = 1, rhs_free[position - len(lhs_free)]
    else:  # a batch dimension: an elementwise product along it, not linear in one operand
        return None
    if type(eqn.invars[index]) is not Var:
        return None
    contract, batch = (lc, lb) if index == 0 else (rc, rb)
    contract, batch = _shifted(contract, operand_axis), _shifted(batch, operand_axis)
    numbers = ((contract, rc), (batch, rb)) if index == 0 else ((lc, contract), (lb, batch))

    def build(emit, s):
        operands = [s[0], rhs] if index == 0 else [lhs, s[1]]
        return emit(eqn.primitive, operands, {"dimension_numbers": numbers})
    return {index: operand_axis}, build


def _push_broadcast(eqn, axis, weights, producers):
    source, params = eqn.invars[0], eqn.params
    dims = params["broadcast_dimensions"]
    if axis not in dims or type(source) is not Var:
        return None
    i = dims.index(axis)
    if source.aval.shape[i] != params["shape"][axis]:  # stretched from 1: every entry is the same value
        return None
    new = {"shape": _without(params["shape"], axis), "broadcast_dimensions": _shifted(_without(dims, i), axis)}
    return {0: i}, lambda emit, s: emit(eqn.primitive, [s[0]], new)


def _push_reshape(eqn, axis, weights, producers):
    """Only where the axis stays whole: an operand axis of the same size with as
    many elements before it (row-major order then maps the rest consistently)."""
    source, sizes = eqn.invars[0], eqn.params["new_sizes"]
    shape, before = source.aval.shape, math.prod(sizes[:axis])
    for i in range(len(shape)):
        if shape[i] == sizes[axis] and math.prod(shape[:i]) == before:
            return {0: i}, lambda emit, s: emit(eqn.primitive, [s[0]], {"new_sizes": _without(sizes, axis)})
    return None


def _push_transpose(eqn, axis, weights, producers):
    permutation = eqn.params["permutation"]
    source_axis = permutation[axis]
    new = {"permutation": _shifted(_without(permutation, axis), source_axis)}
    return {0: source_axis}, lambda emit, s: emit(eqn.primitive, [s[0]], new)


def _kept_axis(ndim, removed_axes, axis):
    """The operand axis behind output axis `axis` of a primitive that removes `removed_axes`."""
    return [d for d in range(ndim) if d not in removed_axes][axis]


def _push_squeeze(eqn, axis, weights, producers):
    dims = eqn.params["dimensions"]
    source_axis = _kept_axis(eqn.invars[0].aval.ndim, dims, axis)
    return {0: source_axis}, lambda emit, s: emit(eqn.primitive, [s[0]], {"dimensions": _shifted(dims, source_axis)})


def _push_reduce_sum(eqn, axis, weights, producers):
    axes = eqn.params["axes"]
    source_axis = _kept_axis(eqn.invars[0].aval.ndim, axes, axis)
    return {0: source_axis}, lambda emit, s: emit(eqn.primitive, [s[0]], {"axes": _shifted(axes, source_axis)})


def _push_rev(eqn, axis, weights, producers):
    dims = eqn.params["dimensions"]
    if axis in dims:
        return None
    return {0: axis}, lambda emit, s: emit(eqn.primitive, [s[0]], {"dimensions": _shifted(dims, axis)})


def _push_slice(eqn, axis, weights, producers):
    start, limit, strides = eqn.params["start_indices"], eqn.params["limit_indices"], eqn.params["strides"]
    if start[axis] != 0 or limit[axis] != eqn.invars[0].aval.shape[axis] or (strides and strides[axis] != 1):
        return None
    new = {"start_indices": _without(start, axis), "limit_indices": _without(limit, axis),
           "strides": None if strides is None else _without(strides, axis)}
    return {0: axis}, lambda emit, s: emit(eqn.primitive, [s[0]], new)


def _push_pad(eqn, axis, weights, producers):
    source, value = eqn.invars
    config = eqn.params["padding_config"]
    if config[axis] != (0, 0, 0) or not (type(value) is Literal and value.value == 0):
        return None
    new = {"padding_config": _without(config, axis)}
    return {0: axis}, lambda emit, s: emit(eqn.primitive, [s[0], value], new)


def _push_concatenate(eqn, axis, weights, producers):
    dimension = eqn.params["dimension"]
    if dimension == axis or not all(type(x) is Var for x in eqn.invars):
        return None
    new = {"dimension": dimension - (dimension > axis)}
    return ({i: axis for i in range(len(eqn.invars))},
            lambda emit, s: emit(eqn.primitive, [s[i] for i in range(len(eqn.invars))], new))


_RULES = {
    "add": _push_elementwise_sum, "sub": _push_elementwise_sum, "neg": _push_elementwise_sum,
    "convert_element_type": _push_convert, "mul": _push_scaling, "div": _push_scaling,
    "select_n": _push_select, "dot_general": _push_dot_general, "broadcast_in_dim": _push_broadcast,
    "reshape": _push_reshape, "transpose": _push_transpose, "squeeze": _push_squeeze,
    "reduce_sum": _push_reduce_sum, "rev": _push_rev, "slice": _push_slice, "pad": _push_pad,
    "concatenate": _push_concatenate,
}


def _push(eqn, axis, weights, producers):
    rule = _RULES.get(eqn.primitive.name)
    return None if rule is None else rule(eqn, axis, weights, producers)
