"""The decorator of ftrans.random's and ftrans.nn's public functions."""
from __future__ import annotations

import functools

from ftrans.numpy._core import public
from ftrans.tree_util import tree_map
from ir.primitive import as_array


def public_returning_arrays(fun):
    """A public function (errors show the user's frames) whose eager results are always ft.Arrays:
    NumPy's operators on a 0-d array give NumPy scalars, which the samplers' last steps may be."""
    @functools.wraps(fun)
    def wrapper(*args, **kwargs):
        return tree_map(as_array, fun(*args, **kwargs))
    return public(wrapper)
