"""Jacobians and Hessians, built from jvp (forward) and vjp (reverse).

NB: until `vmap` exists these loop over basis vectors in Python; the vmap
issue replaces the loops with one batched jvp/vjp.
"""
from __future__ import annotations

import functools

import numpy as np

from ftrans import numpy as fnp
from ftrans._api_util import normalize_argnums
from ftrans._autodiff import _vjp, jvp
from ftrans.tree_util import tree_flatten, tree_unflatten
from ir.errors import api_boundary, at_user_line
from ir.tracing import get_aval


def _check_float(leaves, what):
    for leaf in leaves:
        if get_aval(leaf).dtype.kind != "f":
            raise TypeError(at_user_line(f"{what} requires floating-point inputs, got {get_aval(leaf).dtype.name}"))


def _basis(avals):
    """One-hot tangents: for each element of each leaf, a tuple with a 1 there and 0 elsewhere."""
    for k, aval in enumerate(avals):
        for flat_index in range(aval.size):
            one_hot = []
            for j, other in enumerate(avals):
                e = np.zeros(other.shape, other.dtype)
                if j == k:
                    e.reshape(-1)[flat_index] = 1
                one_hot.append(e)
            yield one_hot


def jacfwd(fun, argnums=0):
    """The Jacobian of `fun` by forward mode: one jvp per input element."""
    @functools.wraps(fun)
    @api_boundary
    def jacfwd_f(*args):
        nums = normalize_argnums(argnums, len(args), "argnums")
        diff_args = tuple(args[i] for i in nums)
        in_leaves, in_tree = tree_flatten(diff_args)
        _check_float(in_leaves, "jacfwd")
        in_avals = [get_aval(x) for x in in_leaves]

        def diff_fun(*diff_leaves):
            full = list(args)
            for i, value in zip(nums, tree_unflatten(in_tree, diff_leaves), strict=True):
                full[i] = value
            return fun(*full)

        out_tree, columns = None, []
        for one_hot in _basis(in_avals):
            out, tangent = jvp(lambda *leaves: diff_fun(*leaves), tuple(in_leaves), tuple(one_hot))
            out_leaves, out_tree = tree_flatten(out)
            columns.append(tree_flatten(tangent)[0])
        if out_tree is None:  # no input elements: the Jacobian is empty
            out_leaves, out_tree = tree_flatten(diff_fun(*in_leaves))
        out_avals = [get_aval(o) for o in out_leaves]
        blocks = []
        for i, out_aval in enumerate(out_avals):
            row, start = [], 0
            for in_aval in in_avals:
                pieces = [columns[c][i] for c in range(start, start + in_aval.size)]
                start += in_aval.size
                stacked = (fnp.stack(pieces, axis=-1) if pieces
                           else fnp.zeros(out_aval.shape + (0,), out_aval.dtype))
                row.append(fnp.reshape(stacked, out_aval.shape + in_aval.shape))
            blocks.append(_per_argnums(tree_unflatten(in_tree, row), argnums))
        return tree_unflatten(out_tree, blocks)
    return jacfwd_f


def jacrev(fun, argnums=0):
    """The Jacobian of `fun` by reverse mode: one vjp per output element."""
    @functools.wraps(fun)
    @api_boundary
    def jacrev_f(*args):
        nums = normalize_argnums(argnums, len(args), "argnums")
        diff_args = [args[i] for i in nums]
        in_leaves, in_tree = tree_flatten(tuple(diff_args))
        _check_float(in_leaves, "jacrev")
        in_avals = [get_aval(x) for x in in_leaves]

        def diff_fun(*diff_values):
            full = list(args)
            for i, value in zip(nums, diff_values, strict=True):
                full[i] = value
            return fun(*full)

        out, vjp_fn, _ = _vjp(diff_fun, diff_args, has_aux=False)
        out_leaves, out_tree = tree_flatten(out)
        out_avals = [get_aval(o) for o in out_leaves]
        rows = [tree_flatten(vjp_fn(tree_unflatten(out_tree, one_hot)))[0] for one_hot in _basis(out_avals)]
        blocks, start = [], 0
        for out_aval in out_avals:
            block_rows = rows[start:start + out_aval.size]
            start += out_aval.size
            per_input = []
            for j, in_aval in enumerate(in_avals):
                pieces = [r[j] for r in block_rows]
                stacked = (fnp.stack(pieces, axis=0) if pieces
                           else fnp.zeros((0,) + in_aval.shape, in_aval.dtype))
                per_input.append(fnp.reshape(stacked, out_aval.shape + in_aval.shape))
            blocks.append(_per_argnums(tree_unflatten(in_tree, per_input), argnums))
        return tree_unflatten(out_tree, blocks)
    return jacrev_f


def _per_argnums(per_arg, argnums):
    """A tuple over argnums, or the single entry when argnums is an int (as JAX)."""
    return per_arg[0] if isinstance(argnums, int) else tuple(per_arg)


def hessian(fun, argnums=0):
    """The Hessian: jacfwd of jacrev (forward-over-reverse, as JAX)."""
    return jacfwd(jacrev(fun, argnums), argnums)
