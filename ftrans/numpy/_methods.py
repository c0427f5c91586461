"""Python operators and array methods of tracers, with NumPy's semantics.

`ir.Tracer` knows nothing of NumPy; this module installs `+`, `x[i]`, `.sum()`,
`.T`, `.at` and the rest on it when ftrans.numpy is imported (as JAX's
lax_numpy does for its tracers). On `ir.core.Array`, the ndarray users get,
it installs `.at` only: everything else of it is NumPy's.
"""
from __future__ import annotations

from ftrans.numpy import _complex, _creation, _elementwise as ew, _indexing, _linalg, _reductions, _shape
from ir.core import Array
from ir.errors import api_boundary, at_user_line, operator_boundary
from ir.tracing import Tracer


def _swap(fun):
    fun = getattr(fun, "__wrapped__", fun)  # unwrapped: install_tracer_methods adds the boundary
    return lambda self, other: fun(other, self)


def _setitem(self, index, value):
    raise TypeError(at_user_line("traced arrays are immutable: use x = x.at[index].set(value) "
                                 "instead of x[index] = value"))


def _reshape_method(self, *shape, order="C"):
    shape = shape[0] if len(shape) == 1 and not isinstance(shape[0], int) else shape
    return _shape.reshape(self, shape, order)


def _transpose_method(self, *axes):
    axes = axes[0] if len(axes) == 1 and not isinstance(axes[0], int) else axes
    return _shape.transpose(self, axes or None)


def _astype(self, dtype):
    return _creation.asarray(self, dtype)


def _item(self):
    value = self.concrete_value()
    if value is None:
        raise TypeError(at_user_line("item() of a traced value: its value is not known while tracing"))
    return value.item() if hasattr(value, "item") else value  # arrays of any module; Python numbers


def _array_ufunc(self, ufunc, method, *inputs, **kwargs):
    """`np.sin(tracer)` computes `fnp.sin(tracer)`; anything it cannot honour is an error."""
    from ftrans import numpy as fnp
    fun = getattr(fnp, ufunc.__name__, None)
    if method != "__call__" or kwargs or fun is None:
        raise TypeError(at_user_line(
            f"numpy.{ufunc.__name__}{'' if method == '__call__' else '.' + method} cannot be applied "
            f"to a traced value; use ftrans.numpy (fnp.{ufunc.__name__}) instead"))
    return fun(*inputs)


_OPERATORS = {
    "__add__": ew.add, "__radd__": _swap(ew.add),
    "__sub__": ew.subtract, "__rsub__": _swap(ew.subtract),
    "__mul__": ew.multiply, "__rmul__": _swap(ew.multiply),
    "__truediv__": ew.true_divide, "__rtruediv__": _swap(ew.true_divide),
    "__floordiv__": ew.floor_divide, "__rfloordiv__": _swap(ew.floor_divide),
    "__mod__": ew.mod, "__rmod__": _swap(ew.mod),
    "__pow__": ew.power, "__rpow__": _swap(ew.power),
    "__matmul__": _linalg.matmul, "__rmatmul__": _swap(_linalg.matmul),
    "__and__": ew.bitwise_and, "__rand__": _swap(ew.bitwise_and),
    "__or__": ew.bitwise_or, "__ror__": _swap(ew.bitwise_or),
    "__xor__": ew.bitwise_xor, "__rxor__": _swap(ew.bitwise_xor),
    "__lt__": ew.less, "__le__": ew.less_equal, "__gt__": ew.greater, "__ge__": ew.greater_equal,
    "__eq__": ew.equal, "__ne__": ew.not_equal,
    "__neg__": ew.negative, "__pos__": lambda self: self, "__abs__": ew.abs, "__invert__": ew.invert,
    "__getitem__": _indexing.getitem, "__setitem__": _setitem,
}

_METHODS = {
    "sum": _reductions.sum, "prod": _reductions.prod, "mean": _reductions.mean,
    "max": _reductions.max, "min": _reductions.min, "var": _reductions.var, "std": _reductions.std,
    "argmax": _reductions.argmax, "argmin": _reductions.argmin,
    "reshape": _reshape_method, "transpose": _transpose_method, "squeeze": _shape.squeeze,
    "ravel": _shape.ravel, "flatten": _shape.ravel, "swapaxes": _shape.swapaxes,
    "dot": _linalg.dot, "clip": ew.clip, "conj": _complex.conj, "conjugate": _complex.conj,
    "astype": _astype, "item": _item,
    "__array_ufunc__": _array_ufunc,
}

_PROPERTIES = {
    "T": lambda self: _shape.transpose(self),
    "real": lambda self: _complex.real(self),
    "imag": lambda self: _complex.imag(self),
    "at": lambda self: _indexing._IndexUpdateHelper(self),
}


_UNARY_OPERATORS = {"__neg__", "__pos__", "__abs__", "__invert__"}


def install_tracer_methods():
    # NB: each a boundary of its own: a tracer used outside the transformation that made
    # it (a leaked one) reaches an operator from the user's code directly, and its error
    # must show the user's frames too. Operators, hot, get the cheaper operator_boundary.
    for name, fun in _OPERATORS.items():
        fun = getattr(fun, "__wrapped__", fun)
        if name == "__setitem__":
            setattr(Tracer, name, api_boundary(fun))
        else:
            setattr(Tracer, name, operator_boundary(fun, 1 if name in _UNARY_OPERATORS else 2))
    for name, fun in _METHODS.items():
        setattr(Tracer, name, api_boundary(getattr(fun, "__wrapped__", fun)))
    for name, getter in _PROPERTIES.items():
        setattr(Tracer, name, property(api_boundary(getter)))
    Tracer.__hash__ = None  # `==` is elementwise, so tracers cannot be hashed (as arrays)
    Array.at = property(_PROPERTIES["at"])
