"""ftrans.lax: operations below ftrans.numpy, named as in jax.lax."""
from __future__ import annotations

from ftrans.tree_util import tree_map
from ir.errors import api_boundary
from ir.primitives.elementwise import stop_gradient as _stop_gradient_leaf

__all__ = ["stop_gradient"]


@api_boundary
def stop_gradient(x):
    """`x` itself, with a zero derivative: no transformation differentiates through it."""
    return tree_map(_stop_gradient_leaf, x)
