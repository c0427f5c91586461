"""Named axes: which axis names are bound while a function runs or is traced.

`vmap(f, axis_name="i")` binds "i" to its batch (size: the number of
examples); a collective (`psum(x, "i")`, ...) over a name that nothing binds
is an error when it is traced. The environment is a context variable, so it
follows the dynamic extent of the transformation that binds it, as the trace
stack does.
"""
from __future__ import annotations

import contextlib
import contextvars
from typing import NamedTuple


class BoundAxis(NamedTuple):
    name: str
    size: int
    kind: str  # "vmap": examples of a batch; "process": the processes of a distributed run


_axes: contextvars.ContextVar[tuple[BoundAxis, ...]] = contextvars.ContextVar("ftrans_axis_env", default=())


def bound_axes() -> tuple[BoundAxis, ...]:
    return _axes.get()


def bound_axis(name):
    """The innermost binding of `name`, or None."""
    for axis in reversed(_axes.get()):
        if axis.name == name:
            return axis
    return None


@contextlib.contextmanager
def binding(name, size, kind):
    token = _axes.set(_axes.get() + (BoundAxis(name, size, kind),))
    try:
        yield
    finally:
        _axes.reset(token)
