"""Python operators and array methods of tracers, with NumPy's semantics.

`ir.Tracer` knows nothing of NumPy; this module installs `+`, `x[i]`, `.sum()`,
`.T`, `.at` and the rest on it when ftrans.numpy is imported (as JAX's
lax_numpy does for its tracers). On `ir.core.Array`, the ndarray users get,
it installs `.at` only: everything else of it is NumPy's.
"""
from __future__ import annotations

import numpy as np

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

# Array methods that are ftrans.numpy functions of the array (x.cumsum(axis) is fnp.cumsum(x, axis)):
# each is installed when ftrans.numpy has the function, so a function added there is a method too.
NUMPY_NAMED_METHODS = ("all", "any", "argpartition", "argsort", "choose", "compress", "conj", "conjugate", "cumprod",
                       "cumsum", "diagonal", "nonzero", "partition", "repeat", "round", "searchsorted", "sort",
                       "take", "trace", "ptp", "nansum", "cummax", "cummin")
# and those that are not (yet): asking for one says so, naming the function it would be
_NOT_METHODS = frozenset({"base", "byteswap", "ctypes", "data", "dump", "dumps", "fill", "flags", "flat", "getfield",
                          "itemset", "newbyteorder", "put", "resize", "setfield", "setflags", "strides", "tofile",
                          "view"})


def _tolist(self):
    value = self.concrete_value()
    if value is None:
        raise TypeError(at_user_line("tolist() of a traced value: its value is not known while tracing"))
    return value.tolist() if hasattr(value, "tolist") else value


def _copy(self, order="K"):
    return self  # tracers are immutable: a copy is the value itself


def _matrix_transpose(self):
    if self.aval.ndim < 2:
        raise ValueError(at_user_line(f"x.mT needs an array of rank 2 or more, got {self.aval.str_short()}"))
    return _shape.swapaxes(self, -1, -2)


_PROPERTIES.update({
    "mT": _matrix_transpose,
    "nbytes": lambda self: self.aval.size * self.aval.dtype.itemsize,
    "itemsize": lambda self: self.aval.dtype.itemsize,
})


def _numpy_method(fun):
    fun = getattr(fun, "__wrapped__", fun)
    return lambda self, *args, **kwargs: fun(self, *args, **kwargs)


def _missing_attribute(self, name):
    """Only reached for attributes a tracer does not have (`__getattr__`)."""
    if name.startswith("__"):
        raise AttributeError(name)
    if name in NUMPY_NAMED_METHODS:
        raise AttributeError(f"traced arrays have no `.{name}()` yet: ftrans.numpy has no `{name}` yet")
    if name in _NOT_METHODS or hasattr(np.ndarray, name):
        raise AttributeError(f"traced arrays have no `.{name}` (numpy.ndarray's, which a traced value, "
                             f"immutable and without a buffer, does not have)")
    raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")


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
    from ftrans import numpy as fnp  # NB: called at the end of ftrans.numpy's import: all its functions are there
    for name in NUMPY_NAMED_METHODS:
        fun = getattr(fnp, name, None)
        if fun is not None and callable(fun):
            setattr(Tracer, name, api_boundary(_numpy_method(fun)))
    for name, method in (("tolist", _tolist), ("copy", _copy)):
        setattr(Tracer, name, api_boundary(method))
    Tracer.__getattr__ = _missing_attribute
    for name, getter in _PROPERTIES.items():
        setattr(Tracer, name, property(api_boundary(getter)))
    Tracer.__hash__ = None  # `==` is elementwise, so tracers cannot be hashed (as arrays)
    Array.at = property(_PROPERTIES["at"])
