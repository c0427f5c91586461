"""ft.debug.print, ft.debug.callback and ft.pure_callback (JAX's signatures): a Python function
called at run time on concrete values, inside jit, vmap, grad and the rest (see
ir/primitives/callback.py). Array leaves of the arguments become the equation's operands;
other leaves (strings, None, Python objects) are passed to the function as they are."""
from __future__ import annotations

import builtins

import numpy as np

from ftrans._api_util import check_callable
from ftrans.numpy._core import as_operand
from ftrans.tree_util import tree_flatten, tree_unflatten
from ir.core import Array
from ir.errors import api_boundary, at_user_line
from ir.primitive import as_array
from ir.primitives import callback as callback_prims
from ir.tracing import Tracer

_ARRAY_LEAVES = (Tracer, np.ndarray, np.generic, bool, int, float)


def _split_arguments(args, kwargs):
    """(operands, rebuild): the array leaves of (args, kwargs), and a function of their host
    values giving back (args, kwargs) with the other leaves in place."""
    leaves, tree = tree_flatten((args, kwargs))
    positions = [i for i, leaf in enumerate(leaves) if isinstance(leaf, _ARRAY_LEAVES)
                 or hasattr(leaf, "__cuda_array_interface__")]
    operands = [as_operand(leaves[i]) for i in positions]

    def rebuild(values):
        filled = list(leaves)
        for i, value in zip(positions, values, strict=True):
            filled[i] = as_array(value)
        return tree_unflatten(tree, filled)
    return operands, rebuild


def _name_of(fun):
    return getattr(fun, "__qualname__", None) or getattr(fun, "__name__", None) or type(fun).__name__


@api_boundary
def debug_print(fmt, *args, ordered=False, **kwargs):
    """Print `fmt.format(*args, **kwargs)` with the values the arguments have when the program
    runs (under jit: each time it runs; under vmap: once per example; under grad: the primal values)."""
    if not isinstance(fmt, str):
        raise TypeError(at_user_line(f"debug.print: the format must be a str, got {type(fmt).__name__}"))
    operands, rebuild = _split_arguments(args, kwargs)

    def show(*values):
        call_args, call_kwargs = rebuild(values)
        builtins.print(fmt.format(*call_args, **call_kwargs))
    callback_prims.debug_callback(operands, callback_prims.HostCallback(show, f"print {fmt!r}"))


@api_boundary
def debug_callback(callback, *args, ordered=False, **kwargs):
    """Call `callback(*args, **kwargs)` for its effect with the values the arguments have at run
    time (NumPy arrays); what it returns is dropped."""
    check_callable(callback, "debug.callback")
    operands, rebuild = _split_arguments(args, kwargs)

    def call(*values):
        call_args, call_kwargs = rebuild(values)
        callback(*call_args, **call_kwargs)
    callback_prims.debug_callback(operands, callback_prims.HostCallback(call, _name_of(callback)))


@api_boundary
def pure_callback(callback, result_shape_dtypes, *args, sharding=None, vmap_method=None, **kwargs):
    """`callback(*args, **kwargs)` computed by Python at run time: a function of NumPy arrays
    returning arrays of `result_shape_dtypes` (a pytree of ShapeDtypeStruct or arrays). Under
    vmap, `vmap_method` says how: "sequential" (the default: one call per example),
    "expand_dims" (one call, unbatched arguments with a leading axis of 1) or "broadcast_all"
    (one call, every argument batched). It cannot be differentiated (ftrans does not know
    its derivative)."""
    check_callable(callback, "pure_callback")
    method = "sequential" if vmap_method is None else vmap_method
    if method not in callback_prims.VMAP_METHODS:
        raise ValueError(at_user_line(f"pure_callback: vmap_method must be one of "
                                      f"{', '.join(callback_prims.VMAP_METHODS)}, got {vmap_method!r}"))
    result_leaves, result_tree = tree_flatten(result_shape_dtypes)
    result_avals = []
    for leaf in result_leaves:
        if not (hasattr(leaf, "shape") and hasattr(leaf, "dtype")):
            raise TypeError(at_user_line(f"pure_callback: result_shape_dtypes must hold ShapeDtypeStructs (or "
                                         f"arrays), got a {type(leaf).__name__}"))
        result_avals.append((tuple(int(n) for n in leaf.shape), np.dtype(leaf.dtype)))
    operands, rebuild = _split_arguments(args, kwargs)

    def call(*values):
        call_args, call_kwargs = rebuild(values)
        out_leaves, out_tree = tree_flatten(callback(*call_args, **call_kwargs))
        if out_tree != result_tree:
            raise TypeError(f"pure_callback: {_name_of(callback)} returned the structure {out_tree}, "
                            f"result_shape_dtypes declares {result_tree}")
        return [np.asarray(x) for x in out_leaves]
    outs = callback_prims.pure_callback(operands, callback_prims.HostCallback(call, _name_of(callback)),
                                        result_avals, method)
    return tree_unflatten(result_tree, [o if isinstance(o, Tracer) else as_array(o) for o in outs])


del Array
