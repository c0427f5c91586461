"""Jacobians and Hessians: one batched jvp (forward) or one batched vjp (reverse).

`jacfwd` pushes the whole standard basis of the inputs through a single
`vmap` of `jvp`; `jacrev` pulls the standard basis of the outputs back through
a single `vmap` of the vjp function. Work that does not depend on the basis
vector (the primal computation) is done once, unbatched.
"""
from __future__ import annotations

import functools

from ftrans import numpy as fnp
from ftrans._api_util import check_callable, differentiation_argnums, is_index, resolve_argnums
from ftrans._autodiff import _vjp, jvp, split_aux
from ftrans._vmap import vmap
from ftrans.numpy._core import concrete_or_none
from ftrans.tree_util import tree_flatten, tree_unflatten
from ir.core import array_module
from ir.errors import api_boundary, at_user_line
from ir.tracing import get_aval


def _check_float(leaves, what, where, holomorphic=False, complex_ok=False):
    """JAX's dtype checks: with holomorphic=True every leaf complex; else real floating-point
    leaves, or complex ones where `complex_ok` (jacrev's inputs, jacfwd's outputs)."""
    for i, leaf in enumerate(leaves):
        dtype = get_aval(leaf).dtype
        if holomorphic:
            if dtype.kind != "c":
                raise TypeError(at_user_line(f"{what} with holomorphic=True requires {where} with complex dtype, "
                                             f"but got {dtype.name} ({where[:-1]} leaf {i})"))
        elif dtype.kind == "c" and not complex_ok:
            direct = "jvp" if where == "inputs" else "vjp"
            raise TypeError(at_user_line(
                f"{what} requires real-valued {where} (dtype that is a sub-dtype of np.floating), but got "
                f"{dtype.name} ({where[:-1]} leaf {i}). For holomorphic differentiation, pass holomorphic=True. "
                f"For differentiation of non-holomorphic functions involving complex {where}, use ft.{direct} "
                "directly"))
        elif dtype.kind not in "fc":
            raise TypeError(at_user_line(f"{what} requires floating-point {where}, got {dtype.name} "
                                         f"({where[:-1]} leaf {i})"))


def _standard_basis(avals, like):
    """The standard basis of the space of all `avals` together, as one array
    per aval: leaf k has shape (n,) + avals[k].shape, n the total size, and row
    r is 1 at the r-th element of the flattened concatenation, 0 elsewhere.
    The arrays are of the array module of the values `like` (CuPy's on the GPU):
    they meet those values in the batched jvp or vjp."""
    xp = array_module(*[concrete_or_none(x) for x in like])
    n = sum(aval.size for aval in avals)
    basis, start = [], 0
    for aval in avals:
        rows = xp.zeros((n, aval.size), aval.dtype)
        rows[start:start + aval.size] = xp.eye(aval.size, dtype=aval.dtype)
        basis.append(rows.reshape((n,) + aval.shape))
        start += aval.size
    return basis, n


@api_boundary
def jacfwd(fun, argnums=0, has_aux=False, holomorphic=False):
    """The Jacobian of `fun` by forward mode: one jvp, batched over the input basis.
    With has_aux=True `fun` returns (output, aux), and the result is (jacobian, aux).
    Inputs are real unless holomorphic=True (then complex inputs and outputs), as JAX."""
    check_callable(fun, "jacfwd")
    nums_given = differentiation_argnums(argnums, "jacfwd")

    @functools.wraps(fun)
    @api_boundary
    def jacfwd_f(*args, **kwargs):
        nums = resolve_argnums(nums_given, len(args), "jacfwd", argnums)
        in_leaves, in_tree = tree_flatten(tuple(args[i] for i in nums))
        _check_float(in_leaves, "jacfwd", "inputs", holomorphic)
        in_avals = [get_aval(x) for x in in_leaves]
        out_tree = []

        def diff_fun(*diff_leaves):
            full = list(args)
            for i, value in zip(nums, tree_unflatten(in_tree, diff_leaves), strict=True):
                full[i] = value
            out = fun(*full, **kwargs)
            out, aux = split_aux(out, "jacfwd") if has_aux else (out, None)
            out_leaves, tree = tree_flatten(out)
            out_tree.append(tree)
            _check_float(out_leaves, "jacfwd", "outputs", holomorphic, complex_ok=True)
            return (out_leaves, aux) if has_aux else out_leaves

        def push_forward(*basis_vector):
            if has_aux:  # the aux value does not depend on the basis vector: it is not batched
                _, tangents, aux = jvp(diff_fun, tuple(in_leaves), tuple(basis_vector), has_aux=True)
                return tangents, aux
            return jvp(diff_fun, tuple(in_leaves), tuple(basis_vector))[1]

        basis, n = _standard_basis(in_avals, in_leaves)
        # each output leaf: its shape + (n,), one column per input element
        columns = vmap(push_forward, out_axes=(-1, None) if has_aux else -1, axis_size=n)(*basis)
        columns, aux = columns if has_aux else (columns, None)
        blocks = []
        for column in columns:
            out_shape = get_aval(column).shape[:-1]
            row, start = [], 0
            for in_aval in in_avals:
                piece = column if len(in_avals) == 1 else column[..., start:start + in_aval.size]
                row.append(fnp.reshape(piece, out_shape + in_aval.shape))
                start += in_aval.size
            blocks.append(_per_argnums(tree_unflatten(in_tree, row), argnums))
        jacobian = tree_unflatten(out_tree[0], blocks)
        return (jacobian, aux) if has_aux else jacobian
    return jacfwd_f


@api_boundary
def jacrev(fun, argnums=0, has_aux=False, holomorphic=False):
    """The Jacobian of `fun` by reverse mode: one vjp, batched over the output basis.
    With has_aux=True `fun` returns (output, aux), and the result is (jacobian, aux).
    Outputs are real unless holomorphic=True (then complex inputs and outputs), as JAX;
    a real function of complex inputs gets grad's convention."""
    check_callable(fun, "jacrev")
    nums_given = differentiation_argnums(argnums, "jacrev")

    @functools.wraps(fun)
    @api_boundary
    def jacrev_f(*args, **kwargs):
        nums = resolve_argnums(nums_given, len(args), "jacrev", argnums)
        diff_args = [args[i] for i in nums]
        in_leaves, in_tree = tree_flatten(tuple(diff_args))
        _check_float(in_leaves, "jacrev", "inputs", holomorphic, complex_ok=True)
        in_avals = [get_aval(x) for x in in_leaves]

        def diff_fun(*diff_values):
            full = list(args)
            for i, value in zip(nums, diff_values, strict=True):
                full[i] = value
            return fun(*full, **kwargs)

        out, vjp_fn, aux = _vjp(diff_fun, diff_args, has_aux, "jacrev")
        out_leaves, out_tree = tree_flatten(out)
        _check_float(out_leaves, "jacrev", "outputs", holomorphic)
        out_avals = [get_aval(o) for o in out_leaves]

        def pull_back(*basis_vector):
            return tree_flatten(vjp_fn(tree_unflatten(out_tree, basis_vector)))[0]

        basis, m = _standard_basis(out_avals, out_leaves)
        # each input leaf: (m,) + its shape, one row per output element
        rows = vmap(pull_back, axis_size=m)(*basis)
        blocks, start = [], 0
        for out_aval in out_avals:
            per_input = []
            for in_aval, row in zip(in_avals, rows, strict=True):
                piece = row if len(out_avals) == 1 else row[start:start + out_aval.size]
                per_input.append(fnp.reshape(piece, out_aval.shape + in_aval.shape))
            start += out_aval.size
            blocks.append(_per_argnums(tree_unflatten(in_tree, per_input), argnums))
        jacobian = tree_unflatten(out_tree, blocks)
        return (jacobian, aux) if has_aux else jacobian
    return jacrev_f


def _per_argnums(per_arg, argnums):
    """A tuple over argnums, or the single entry when argnums is an int (as JAX)."""
    return per_arg[0] if is_index(argnums) else tuple(per_arg)


@api_boundary
def hessian(fun, argnums=0, has_aux=False, holomorphic=False):
    """The Hessian: jacfwd of jacrev (forward-over-reverse, as JAX). With a tuple
    `argnums`, a nested tuple: entry [i][j] differentiates by argnums[i], then
    argnums[j]. With has_aux=True `fun` returns (output, aux), and the result is
    (hessian, aux)."""
    check_callable(fun, "hessian")
    return jacfwd(jacrev(fun, argnums, has_aux, holomorphic), argnums, has_aux, holomorphic)
