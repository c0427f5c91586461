"""NumPy's dtype queries: finfo, iinfo, result_type, promote_types (NumPy 2 rules,
Python scalars weak, as every ftrans.numpy function promotes)."""
from __future__ import annotations

import numpy as np

from ftrans.numpy._core import aval_of, result_type as _result_type
from ir.core import ShapedArray
from ir.errors import at_user_line


def _dtype_of(x):
    """The dtype of a dtype-like, an array, a tracer or a scalar (a Python scalar's is weak)."""
    if isinstance(x, (np.dtype, type, str)) and not isinstance(x, (bool, int, float, complex)):
        try:
            return np.dtype(x)
        except TypeError:
            raise TypeError(at_user_line(f"{x!r} is not a dtype")) from None
    return aval_of(x).dtype


def finfo(dtype):
    """numpy.finfo of a float or complex dtype, or of an array's dtype."""
    return np.finfo(_dtype_of(dtype))


def iinfo(int_type):
    """numpy.iinfo of an integer dtype, or of an array's dtype."""
    return np.iinfo(_dtype_of(int_type))


def result_type(*arrays_and_dtypes):
    """The dtype ftrans.numpy gives combining these (NumPy 2, NEP 50: a Python scalar is weak)."""
    if not arrays_and_dtypes:
        raise ValueError(at_user_line("at least one array or dtype is required"))
    avals = []
    for x in arrays_and_dtypes:
        if isinstance(x, (np.dtype, type, str)) and not isinstance(x, (bool, int, float, complex)):
            avals.append(ShapedArray((), _dtype_of(x)))
        else:
            avals.append(aval_of(x, "result_type"))
    return _result_type(*avals, name="result_type")[0]


def promote_types(type1, type2):
    """The smallest dtype both cast to safely, as numpy.promote_types."""
    return np.promote_types(_dtype_of(type1), _dtype_of(type2))


def issubdtype(arg1, arg2):
    return np.issubdtype(arg1, arg2)


def can_cast(from_, to, casting="safe"):
    return np.can_cast(_dtype_of(from_), np.dtype(to), casting)
