"""ftrans.lax: operations below ftrans.numpy, named as in jax.lax."""
from __future__ import annotations

from ftrans.numpy._core import convert, inexact_dtype, operands
from ftrans.tree_util import tree_map
from ir.errors import api_boundary
from ir.primitives import elementwise, structural
from ir.primitives.elementwise import stop_gradient as _stop_gradient_leaf

__all__ = ["logistic", "pad", "stop_gradient"]


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
    return structural.pad(operand, convert(padding_value, dtype), padding_config)


@api_boundary
def stop_gradient(x):
    """`x` itself, with a zero derivative: no transformation differentiates through it."""
    return tree_map(_stop_gradient_leaf, x)
