"""IEEE arithmetic without NumPy's warnings, and the checks of debug_nans.

ftrans computes inf, nan and signed zeros silently, as JAX does: NumPy's
RuntimeWarnings ("divide by zero encountered in log") would point at ftrans's
internals or at generated code, not at the user's line, and say nothing a
user can act on. Every place where ftrans computes on concrete values sets
NumPy's floating-point error state to "ignore" around that work, and only
there: NumPy code of the user's own (inside a transformed function too) keeps
the caller's error state.

NumPy 2 keeps its error state in a context variable (per thread and per
asyncio task). `np.errstate(all="ignore")` builds a new state object on every
entry (about 0.8 us); setting the context variable to one built once costs
about 0.12 us, little enough for every primitive an eager program applies:
`token = ignore_errors()` ... `restore_errors(token)` (in a `finally`). Where
NumPy keeps its state elsewhere (another layout), both use `np.errstate`.

With `config.debug_nans`, `new_nan(inputs, outputs)` tells whether outputs
hold a NaN that no input held: what a FloatingPointError reports.
"""
from __future__ import annotations

import functools

import numpy as np

try:
    from numpy._core._ufunc_config import _extobj_contextvar as _NUMPY_ERROR_STATE
except ImportError:  # not NumPy 2's layout
    _NUMPY_ERROR_STATE = None



def _ignore_with_errstate():
    state = np.errstate(all="ignore")
    state.__enter__()
    return state


def _restore_with_errstate(state):
    state.__exit__(None, None, None)


if _NUMPY_ERROR_STATE is not None:
    with np.errstate(all="ignore"):
        _IGNORE_ALL = _NUMPY_ERROR_STATE.get()
    # C calls both: no Python frame on the eager hot path
    ignore_errors = functools.partial(_NUMPY_ERROR_STATE.set, _IGNORE_ALL)
    restore_errors = _NUMPY_ERROR_STATE.reset
else:
    ignore_errors, restore_errors = _ignore_with_errstate, _restore_with_errstate


def ignore_in_this_thread():
    """For threads of ftrans's own (the workers of chunked runs), which only
    ever run ftrans's computations: ignore floating-point errors for good."""
    np.seterr(all="ignore")


def _has_nan(x) -> bool:
    dtype = getattr(x, "dtype", None)
    if dtype is None:  # a Python scalar
        return isinstance(x, float) and x != x
    return dtype.kind in "fc" and bool(np.isnan(x).any())  # np.isnan defers to CuPy for its arrays


def has_nan(values) -> bool:
    return any(_has_nan(x) for x in values)


def new_nan(inputs, outputs) -> bool:
    """Whether `outputs` hold a NaN and `inputs` none (JAX's debug_nans reports a
    NaN where it first appears, not everywhere it propagates to)."""
    return has_nan(outputs) and not has_nan(inputs)
