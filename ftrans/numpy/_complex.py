"""Complex numbers under NumPy's names: real, imag, conj, angle and the dtype predicates.

The parts of a complex array are arrays of its real dtype (complex64 -> float32);
on a real array `real` and `conj` give it back and `imag` gives zeros, as NumPy.
"""
from __future__ import annotations

import numpy as np

from ftrans.numpy._core import aval_of, as_operand, convert, operands, public, unchanged
from ir.core import complex_dtype
from ir.primitives import elementwise as ew
from ir.primitives import structural


@public
def real(val):
    """The real part, as numpy.real."""
    val = int(val) if type(val) is bool else val  # as NumPy's: Python's True.real is the int 1
    (x,), dtype, _ = operands("real", val)
    return ew.real(x) if dtype.kind == "c" else unchanged(x)


@public
def imag(val):
    """The imaginary part, as numpy.imag (zeros of the array's dtype for a real one)."""
    val = int(val) if type(val) is bool else val  # as NumPy's: Python's True.imag is the int 0
    (x,), dtype, weak = operands("imag", val)
    if dtype.kind == "c":
        return ew.imag(x)
    return structural.broadcast_in_dim(convert(0, dtype), aval_of(x).shape, ())


@public
def conj(x):
    """The complex conjugate, as numpy.conj (a real array as it is)."""
    (x,), dtype, _ = operands("conj", x)
    if dtype.kind == "b":  # numpy.conjugate is a ufunc with no bool loop: bools come back as int8
        return unchanged(convert(x, np.dtype(np.int8)))
    return ew.conj(x) if dtype.kind == "c" else unchanged(x)


conjugate = conj


@public
def angle(z, deg=False):
    """The argument of z in (-pi, pi], as numpy.angle: atan2(imag, real), computed as the imaginary part of
    log(z), which NumPy computes by that atan2 (so -0.0 parts give the same signs). Real input: 0 or pi."""
    (z,), dtype, weak = operands("angle", z)
    if dtype.kind != "c":
        real_type = dtype if dtype.kind == "f" else np.dtype(np.float64)  # as numpy.angle: arctan2 of its parts
        z = convert(convert(z, real_type, weak), complex_dtype(real_type), weak)
    out = ew.imag(ew.log(z))
    return ew.mul(out, convert(180 / np.pi, aval_of(out).dtype)) if deg else out


@public
def iscomplexobj(x):
    """Whether x has a complex dtype (its values are not looked at), as numpy.iscomplexobj."""
    return aval_of(as_operand(x), "iscomplexobj").dtype.kind == "c"


@public
def isrealobj(x):
    return not iscomplexobj(x)


def _imaginary_test(name, compare, for_reals, doc):
    @public
    def fun(x):
        (x,), dtype, _ = operands(name, x)
        if dtype.kind == "c":
            part = ew.imag(x)
            return compare(part, convert(0, aval_of(part).dtype))
        return structural.broadcast_in_dim(convert(for_reals, np.dtype(bool)), aval_of(x).shape, ())
    fun.__name__ = fun.__qualname__ = name
    fun.__doc__ = doc
    return fun


iscomplex = _imaginary_test("iscomplex", ew.ne, False, "Elementwise: whether the imaginary part is not 0, as "
                            "numpy.iscomplex (False for real arrays).")
isreal = _imaginary_test("isreal", ew.eq, True, "Elementwise: whether the imaginary part is 0, as numpy.isreal "
                         "(True for real arrays).")


@public
def isscalar(element):
    """Whether `element` is a scalar as NumPy sees it (numpy.isscalar: Python and NumPy scalars, not
    arrays, even of rank 0)."""
    return bool(np.isscalar(element))
