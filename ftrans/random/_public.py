"""The decorator of ftrans.random's and ftrans.nn's public functions."""
from __future__ import annotations

import functools

from ftrans.numpy._core import public
from ftrans.tree_util import tree_map
from ir.floating_point import ignore_errors, restore_errors
from ir.primitive import as_array


def public_returning_arrays(fun):
    """A public function (errors show the user's frames) whose eager results are always ft.Arrays:
    NumPy's operators on a 0-d array give NumPy scalars, which the samplers' last steps may be.
    Eagerly the samplers' operators are NumPy's: their inf and nan (binomial's of a nan count) come
    silently, as every ftrans computation's (ir/floating_point.py)."""
    @functools.wraps(fun)
    def wrapper(*args, **kwargs):
        token = ignore_errors()
        try:
            return tree_map(as_array, fun(*args, **kwargs))
        finally:
            restore_errors(token)
    return public(wrapper)
