"""`fnp.float32` and friends as JAX's `jnp.float32`: a dtype wherever NumPy takes one
(`np.dtype(fnp.float32)`, `dtype=fnp.float32`, `x.dtype == fnp.float32`), and also a
function that converts traced values, so `fnp.float32(x)` works under `jit` and `grad`
(NumPy's own `np.float32(tracer)` would have to read the value). `isinstance(v,
fnp.float32)` holds for NumPy's float32 scalars."""
from __future__ import annotations

import numpy as np


class _ScalarType(type):
    def __call__(cls, x=0):
        from ftrans.numpy._creation import asarray
        return asarray(x, dtype=cls.dtype)

    def __instancecheck__(cls, obj):
        return isinstance(obj, cls.dtype.type)

    def __eq__(cls, other):
        return other is cls or other is cls.dtype.type

    def __hash__(cls):
        return hash(cls.dtype.type)

    def __repr__(cls):
        return f"<class 'ftrans.numpy.{cls.__name__}'>"


def _scalar_type(name):
    dtype = np.dtype(name.rstrip("_"))
    return _ScalarType(name, (), {"dtype": dtype, "__doc__": f"The {dtype.name} dtype; called, converts (as "
                                                                f"jnp.{name}): fnp.{name}(x) is asarray(x, {dtype.name})"})


bool_ = _scalar_type("bool_")
int8, int16, int32, int64 = map(_scalar_type, ("int8", "int16", "int32", "int64"))
uint8, uint16, uint32, uint64 = map(_scalar_type, ("uint8", "uint16", "uint32", "uint64"))
float16, float32, float64 = map(_scalar_type, ("float16", "float32", "float64"))
complex64, complex128 = map(_scalar_type, ("complex64", "complex128"))
