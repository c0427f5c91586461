"""ftrans.lax: operations below ftrans.numpy, named as in jax.lax."""
from __future__ import annotations

from ftrans.numpy._core import aval_of, concrete_or_none, convert, inexact_dtype, operands, static_int
from ftrans.tree_util import tree_flatten, tree_map, tree_unflatten
from ir.errors import api_boundary, at_user_line
from ir.primitives import elementwise, structural
from ir.primitives.elementwise import stop_gradient as _stop_gradient_leaf

__all__ = ["cond", "logistic", "pad", "stop_gradient"]


@api_boundary
def logistic(x):
    """1 / (1 + exp(-x)), computed without overflow (JAX's lax.logistic)."""
    (x,), dtype, weak = operands("logistic", x)
    target = inexact_dtype(dtype, weak)
    return elementwise.logistic(convert(x, target, weak) if target != dtype else x)


@api_boundary
def pad(operand, padding_value, padding_config):
    """Pad with `padding_value`: one (low, high, interior) triple of non-negative ints per axis."""
    (operand,), dtype, _ = operands("pad", operand)
    ndim = aval_of(operand).ndim
    if not hasattr(padding_config, "__len__") or len(padding_config) != ndim \
            or not all(hasattr(c, "__len__") and len(c) == 3 for c in padding_config):
        raise TypeError(at_user_line(f"pad: padding_config must hold one (low, high, interior) triple per axis "
                                     f"of the rank-{ndim} operand, got {padding_config!r}"))
    config = [tuple(static_int(n, "pad", "each entry of padding_config", allow_bool=True) for n in c) for c in padding_config]
    return structural.pad(operand, convert(padding_value, dtype), config)


@api_boundary
def stop_gradient(x):
    """`x` itself, with a zero derivative: no transformation differentiates through it."""
    return tree_map(_stop_gradient_leaf, x)


@api_boundary
def cond(pred, true_fun, false_fun, *operands):
    """true_fun(*operands) if pred else false_fun(*operands), for a scalar bool `pred`.

    With a concrete `pred` (eager code, or grad/jvp outside jit) only the chosen
    branch runs, exactly like a Python `if`. With a traced one (under jit, vmap,
    make_jaxpr) both branches are traced and every output leaf is selected with
    `where`, as JAX does for a batched predicate: so both branches are computed,
    and both must return the same structure, shapes and dtypes.
    """
    from ftrans.numpy import where
    pred_aval = aval_of(pred)
    if pred_aval.shape != () or pred_aval.dtype.kind != "b":
        raise TypeError(at_user_line(f"cond: the predicate must be a scalar bool, got {pred_aval.str_short()}"))
    value = concrete_or_none(pred)
    if value is not None:
        return (true_fun if bool(value) else false_fun)(*operands)
    true_leaves, true_tree = tree_flatten(true_fun(*operands))
    false_leaves, false_tree = tree_flatten(false_fun(*operands))
    if true_tree != false_tree:
        raise TypeError(at_user_line(f"cond: the branches return different structures: {true_tree} "
                                     f"and {false_tree}"))
    for i, (t, f) in enumerate(zip(true_leaves, false_leaves)):
        t_aval, f_aval = aval_of(t).strip_weak_type(), aval_of(f).strip_weak_type()
        if t_aval != f_aval:
            raise TypeError(at_user_line(f"cond: output leaf {i} is {t_aval.str_short()} in the true branch "
                                         f"but {f_aval.str_short()} in the false branch"))
    return tree_unflatten(true_tree, [where(pred, t, f) for t, f in zip(true_leaves, false_leaves)])
