"""Taylor mode: `jet`, and differential operators by collapsed Taylor mode.

`jet(fun, primals, series)` is JAX's `jax.experimental.jet`: the truncated
Taylor series of `fun` along a curve through `primals`, to any order, in one
forward pass (interpreters/taylor.py).

`differential_operator(fun, order, directions, weights)` computes
sum_r w_r d^K f(x)[v_r, ..., v_r], a weighted sum of K-th directional
derivatives (every linear differential operator of order K with constant
coefficients is one). It stages the standard Taylor-mode program, one K-jet
per direction batched over the directions, and sums the K-th coefficients;
then the collapse pass (ir/passes/collapse.py) pushes that sum towards the
inputs through everything linear in the K-th coefficients, so the program
propagates one summed coefficient of order K instead of one per direction
(Dangel, Siebert, Zeinhofer and Walther, "Collapsing Taylor Mode Automatic
Differentiation", 2025). `laplacian` and `biharmonic` are two of them.
"""
from __future__ import annotations

import functools
import itertools
import math

import numpy as np

from ftrans._api_util import _leaf_path, check_callable, is_index
from ftrans.tree_util import tree_flatten, tree_unflatten
from interpreters import batching, taylor
from interpreters.eval import eval_jaxpr
from ir import passes
from ir.errors import api_boundary, at_user_line
from ir.markers import Zero
from ir.passes.inline import inline_calls
from ir.primitive import as_array
from ir.primitives import ad_util, reductions
from ir.primitives import elementwise as ew
from ir.primitives.linalg import dot_general
from ir.tracing import Tracer, get_aval, stage

__all__ = ["jet", "differential_operator", "laplacian", "biharmonic"]


# -------------------- jet --------------------

@api_boundary
def jet(fun, primals, series, factorial_scaled=True):
    """Taylor-mode higher-order forward differentiation, as JAX's `jet`.

    `primals` holds the arguments (a tuple or list), `series` one list of K
    terms per argument, each term shaped like its argument (a pytree of the
    same structure, leaves of the same shape and dtype). Together they are the
    curve x(t) = x + x_1 t + x_2 t^2/2! + ... + x_K t^K/K!; the result is
    ``(fun(*primals), series_out)``, where series_out has the structure of the
    output with each leaf replaced by its list of K terms, the derivatives
    d^k/dt^k fun(x(t)) at t = 0 (as JAX returns them). With
    `factorial_scaled=False` terms in and out are plain Taylor coefficients
    (x(t) = x + x_1 t + x_2 t^2 + ...) instead. For a direction v,
    ``jet(f, (x,), ([v, 0, 0, ...],))`` gives d^k f(x)[v, ..., v].
    """
    check_callable(fun, "jet")
    if not isinstance(primals, (tuple, list)) or not isinstance(series, (tuple, list)):
        raise TypeError(at_user_line("jet: primals and series must be tuples or lists (one entry per argument), "
                                     f"got {type(primals).__name__} and {type(series).__name__}"))
    if len(series) != len(primals):
        raise ValueError(at_user_line(f"jet: series must hold one list of terms per argument: {len(primals)} "
                                      f"arguments, {len(series)} entries in series"))
    for i, terms in enumerate(series):
        if not isinstance(terms, (tuple, list)):
            raise TypeError(at_user_line(f"jet: series[{i}] must be a list or tuple of terms, "
                                         f"got {type(terms).__name__}"))
    orders = {len(terms) for terms in series}
    if len(orders) > 1:
        lengths = ", ".join(f"series[{i}] has {len(t)}" for i, t in enumerate(series))
        raise ValueError(at_user_line(f"jet: every argument needs the same number of terms, but {lengths}"))
    order = orders.pop() if orders else 0
    primal_leaves, in_tree = tree_flatten(tuple(primals))
    leaf_series = _series_of_leaves(primals, series, order, factorial_scaled)
    out_tree = []

    def flat_fun(*leaves):
        out_leaves, tree = tree_flatten(fun(*tree_unflatten(in_tree, leaves)))
        out_tree.append(tree)
        return out_leaves

    primals_out, series_out = taylor.jet_flat(flat_fun, primal_leaves, leaf_series, order)
    terms_out = []
    for p, terms in zip(primals_out, series_out, strict=True):
        terms = [as_array(ad_util.zeros(t.aval, p) if type(t) is Zero else t) for t in terms]
        if not factorial_scaled:
            terms = [_times(t, 1 / math.factorial(k)) for k, t in enumerate(terms, 1)]
        terms_out.append(terms)
    return (tree_unflatten(out_tree[0], [as_array(p) for p in primals_out]),
            tree_unflatten(out_tree[0], terms_out))


def _times(x, c):
    return x if c == 1 else ew.mul(x, ad_util.scalar_like(x, c))


def _series_of_leaves(primals, series, order, factorial_scaled):
    """One list of `order` terms per leaf of the primals, each checked against its
    primal leaf (a TypeError or ValueError naming the term), in derivative scaling."""
    per_leaf = []
    for i, (primal, terms) in enumerate(zip(primals, series, strict=True)):
        leaves, tree = tree_flatten(primal)
        avals = []
        for j, leaf in enumerate(leaves):
            aval = _aval(leaf, f"primals[{i}]{_leaf_path(primal, j)}")
            if aval.dtype.kind != "f":
                raise TypeError(at_user_line(
                    f"jet requires floating-point primals, but primals[{i}]{_leaf_path(primal, j)} has dtype "
                    f"{aval.dtype.name}. Convert it to float (e.g. x.astype(float)), or close over it instead"))
            avals.append(aval)
        columns = []
        for k, term in enumerate(terms):
            term_leaves, term_tree = tree_flatten(term)
            if term_tree != tree:
                raise ValueError(at_user_line(f"jet: series[{i}][{k}] must have the structure of primals[{i}] "
                                              f"({tree}), got {term_tree}"))
            column = []
            for j, (leaf, aval) in enumerate(zip(term_leaves, avals, strict=True)):
                where = f"series[{i}][{k}]{_leaf_path(term, j)}"
                leaf = _checked_term(leaf, aval, where, f"primals[{i}]{_leaf_path(primal, j)}")
                column.append(leaf if factorial_scaled else _times(leaf, math.factorial(k + 1)))
            columns.append(column)
        per_leaf.extend([column[j] for column in columns] for j in range(len(leaves)))
    return per_leaf


def _aval(x, name):
    try:
        return get_aval(x)
    except TypeError:
        raise TypeError(at_user_line(f"jet: {name} is a {type(x).__name__}, not an array")) from None


def _checked_term(term, aval, where, primal_name):
    """A term that fits its primal leaf (a Python scalar takes the leaf's dtype), or a ValueError."""
    term_aval = _aval(term, where)
    if term_aval.weak_type and term_aval.shape == aval.shape and not isinstance(term, Tracer):
        term = np.asarray(term, dtype=aval.dtype)
    elif term_aval.shape != aval.shape or term_aval.dtype != aval.dtype:
        raise ValueError(at_user_line(
            f"jet: {where} must be {aval.strip_weak_type().str_short()} to match {primal_name} "
            f"{aval.str_short()}, got {term_aval.str_short()}"))
    return term


# -------------------- differential operators by collapsed Taylor mode --------------------

@api_boundary
def differential_operator(fun, order, directions, weights=None, argnums=0, collapse=True):
    """The function computing sum_r w_r d^K f(x)[v_r, ..., v_r], the weighted
    sum of `order`-th (K-th) directional derivatives of scalar-valued `fun`
    with respect to argument `argnums` (one array) along `directions`
    (an array of shape (R,) + x.shape: row r is v_r), with `weights` (shape
    (R,); None: all 1). Every linear differential operator of order K with
    constant coefficients has this form.

    It stages one K-jet of `fun` per direction, batched over the directions,
    and (with `collapse`, the default) pushes the sum of their K-th
    coefficients towards the inputs (ir/passes/collapse.py): the lower
    coefficients propagate R vectors, the K-th one. `ft.make_jaxpr` of the
    result shows the program; `collapse=False` keeps the standard Taylor-mode
    program (R vectors at every order), for comparison.
    """
    check_callable(fun, "differential_operator")
    _check_order(order)
    return _operator(fun, "differential_operator", order, argnums, collapse,
                     lambda x: _given_directions(x, directions, weights, "differential_operator", None))


@api_boundary
def laplacian(fun, argnums=0, directions=None, weights=None, collapse=True):
    """The Laplacian of scalar-valued `fun` in argument `argnums` (one
    floating-point array x): sum_i d^2 f / dx_i^2, by collapsed Taylor mode.

    - `directions=None`: exact, from the D = x.size basis directions (one
      2-jet each; collapsed, the program carries D + 1 vectors, the standard
      Taylor-mode one 2D).
    - `directions=V` (shape (R,) + x.shape): the weighted sum
      sum_r w_r v_r^T H v_r; with `weights=None` the mean over the R
      directions, Hutchinson's estimate of the trace of the Hessian H, unbiased
      when E[v v^T] = I (random signs, or standard normal entries).
    """
    check_callable(fun, "laplacian")
    if directions is None and weights is not None:
        raise ValueError(at_user_line("laplacian: weights go with directions (directions=None is the exact Laplacian)"))

    def directions_of(x):
        if directions is None:
            return _basis(x), None
        return _given_directions(x, directions, weights, "laplacian", 1.0)
    return _operator(fun, "laplacian", 2, argnums, collapse, directions_of)


@api_boundary
def biharmonic(fun, argnums=0, directions=None, weights=None, collapse=True):
    """The biharmonic operator of scalar-valued `fun` in argument `argnums`
    (one floating-point array x): Delta^2 f = sum_ij d^4 f / dx_i^2 dx_j^2, by
    collapsed Taylor mode (4-jets).

    - `directions=None`: exact, from D^2 directions (D = x.size), by
      interpolation of 4th directional derivatives: with p(v) = d^4 f[v,v,v,v],
      d^4 f / dx_i^2 dx_j^2 = (p(e_i + e_j) + p(e_i - e_j) - 2 p(e_i) - 2 p(e_j)) / 12,
      so Delta^2 f = (1 - (D-1)/3) sum_i p(e_i) + (1/6) sum_{i<j} (p(e_i + e_j) + p(e_i - e_j)).
      (Griewank, Utke and Walther's interpolation uses D + 3 D(D-1)/2 directions
      for the same sum; p(-v) = p(v) saves a third of them.)
    - `directions=V` (shape (R,) + x.shape, standard normal entries):
      stochastic, with `weights=None` the estimate (1/3R) sum_r p(v_r), unbiased
      for Gaussian v (E[p(v)] = 3 Delta^2 f, by Isserlis' theorem; random signs
      are biased). Given `weights`, sum_r w_r p(v_r).
    """
    check_callable(fun, "biharmonic")
    if directions is None and weights is not None:
        raise ValueError(at_user_line("biharmonic: weights go with directions (directions=None is the exact operator)"))

    def directions_of(x):
        if directions is None:
            return _biharmonic_directions(x)
        return _given_directions(x, directions, weights, "biharmonic", 1 / 3)
    return _operator(fun, "biharmonic", 4, argnums, collapse, directions_of)


def _check_order(order):
    if not is_index(order) or order < 1:
        raise TypeError(at_user_line(f"differential_operator: order must be a positive int, got {order!r}"))


def _operator(fun, what, order, argnums, collapse, directions_of):
    """The function sum_r w_r d^order f(x)[v_r, ...] with (V, w) = directions_of(x)
    (w None: the plain sum; a float: the mean times it; an array: the weights)."""
    if not is_index(argnums):
        raise TypeError(at_user_line(f"{what}: argnums must be one int (the argument to differentiate), "
                                     f"got {argnums!r}"))

    @functools.wraps(fun)
    @api_boundary
    def operator(*args, **kwargs):
        if not -len(args) <= argnums < len(args):
            raise ValueError(at_user_line(f"{what}: argnums={argnums} refers to positional argument {argnums}, "
                                          f"but the function was called with {len(args)} positional arguments"))
        position = argnums % len(args)
        x = args[position]
        aval = _argument_aval(x, what, position)
        directions, weights = directions_of(x)

        def fun_of_x(x):
            full = list(args)
            full[position] = x
            return fun(*full, **kwargs)
        program = _operator_program(fun_of_x, what, aval, order, directions, weights, collapse)
        out, = eval_jaxpr(program.jaxpr, program.consts, x)
        if isinstance(weights, float):  # the mean, times the scale
            out = ew.mul(out, ad_util.scalar_like(out, weights / get_aval(directions).shape[0]))
        return as_array(out)
    return operator


def _argument_aval(x, what, position):
    leaves, _ = tree_flatten(x)
    if len(leaves) != 1 or leaves[0] is not x:
        raise TypeError(at_user_line(f"{what}: argument {position} must be one array (the point x), "
                                     f"got a {type(x).__name__}"))
    try:
        aval = get_aval(x)
    except TypeError:
        raise TypeError(at_user_line(f"{what}: argument {position} is a {type(x).__name__}, not an array")) from None
    if aval.dtype.kind != "f":
        raise TypeError(at_user_line(
            f"{what} requires a floating-point input, but argument {position} has dtype {aval.dtype.name}. "
            "Convert it to float (e.g. x.astype(float))"))
    return aval.strip_weak_type()


def _operator_program(fun_of_x, what, aval, order, directions, weights, collapse):
    """The staged program x -> sum_r w_r d^order f(x)[v_r, ...] (the plain sum where
    `weights` is None or a mean's scale): the standard Taylor-mode program, a jet per
    direction batched over the directions, then inlined, collapsed and optimized."""
    count = get_aval(directions).shape[0]
    higher = [Zero(aval)] * (order - 1)  # the curve x + t v: no higher coefficients

    def scalar_output(x):
        out_leaves, _ = tree_flatten(fun_of_x(x))
        out_aval = get_aval(out_leaves[0]) if len(out_leaves) == 1 else None
        if out_aval is None or out_aval.shape != ():
            shape = out_aval.shape if out_aval is not None else f"a pytree of {len(out_leaves)} leaves"
            raise TypeError(at_user_line(f"{what} requires a scalar output, but the function returned shape {shape}"))
        if out_aval.dtype.kind != "f":
            raise TypeError(at_user_line(f"{what} requires a real floating-point output, got {out_aval.dtype.name}"))
        return out_leaves

    def program(x):
        def top_coefficient(v):
            _, series = taylor.jet_flat(scalar_output, [x], [[v, *higher]], order)
            top = series[0][order - 1]
            return [ad_util.zeros(top.aval) if type(top) is Zero else top]  # f of lower degree in x
        top, = batching.batch_flat(top_coefficient, [directions], [0], count, lambda avals: [0])
        if weights is None or isinstance(weights, float):  # a mean is scaled once evaluated
            return [reductions.reduce_sum(top, (0,))]
        return [dot_general(top, weights, (((0,), (0,)), ((), ())))]

    staged = inline_calls(stage(program, [aval]))
    if collapse:
        staged = passes.collapse_sums(staged)
    return passes.optimize(staged)


def _basis(x):
    aval = get_aval(x)
    return np.eye(aval.size, dtype=aval.dtype).reshape((aval.size,) + aval.shape)


def _biharmonic_directions(x):
    """The D^2 directions e_i, e_i + e_j, e_i - e_j (i < j) and their weights (see biharmonic)."""
    aval = get_aval(x)
    n = aval.size
    rows, weights = [], []
    eye = np.eye(n, dtype=aval.dtype)
    for i in range(n):
        rows.append(eye[i])
        weights.append(1 - (n - 1) / 3)
    for i, j in itertools.combinations(range(n), 2):
        rows += [eye[i] + eye[j], eye[i] - eye[j]]
        weights += [1 / 6, 1 / 6]
    return np.stack(rows).reshape((len(rows),) + aval.shape), np.asarray(weights, dtype=aval.dtype)


def _given_directions(x, directions, weights, what, mean_scale):
    """(directions, weights) checked against x: directions of shape (R,) + x.shape
    and weights of shape (R,), both converted to x's dtype; without weights,
    `mean_scale` in their place (None: the plain sum; a number c: c times the mean)."""
    aval = get_aval(x).strip_weak_type()
    try:
        d_aval = get_aval(directions)
    except TypeError:
        directions = np.asarray(directions)
        d_aval = get_aval(directions)
    if d_aval.shape[1:] != aval.shape or d_aval.ndim != aval.ndim + 1 or d_aval.shape[0] == 0:
        raise ValueError(at_user_line(
            f"{what}: directions must have shape (R,) + x.shape = (R, {', '.join(map(str, aval.shape))}) "
            f"with R >= 1 directions along the first axis, got {d_aval.str_short()} for x {aval.str_short()}"))
    if d_aval.dtype.kind not in "fiub":
        raise TypeError(at_user_line(f"{what}: directions must be real numbers, got {d_aval.dtype.name}"))
    directions = _as_dtype(directions, aval.dtype)
    if weights is None:
        return directions, mean_scale
    try:
        w_aval = get_aval(weights)
    except TypeError:
        weights = np.asarray(weights)
        w_aval = get_aval(weights)
    if w_aval.shape != (d_aval.shape[0],):
        raise ValueError(at_user_line(f"{what}: weights must have shape ({d_aval.shape[0]},), one per direction, "
                                      f"got {w_aval.str_short()}"))
    return directions, _as_dtype(weights, aval.dtype)


def _as_dtype(x, dtype):
    if get_aval(x).dtype == dtype:
        return x
    return ew.convert_element_type(x, dtype) if isinstance(x, Tracer) else np.asarray(x, dtype=dtype)
