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
