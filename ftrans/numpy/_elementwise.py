"""Elementwise functions under NumPy's names, dtypes and broadcasting."""
from __future__ import annotations

import numpy as np

from ftrans.numpy._core import (as_operand, aval_of, broadcast_all, convert, inexact_dtype, operands,
                                public, result_type, unchanged)
from ir.errors import at_user_line
from ir.primitives import elementwise as ew


def _unary_float(name, binder):
    """sin, exp, ...: integers and bools are computed in NumPy's float dtype for them."""
    @public
    def fun(x):
        (x,), dtype, weak = operands(name, x)
        weak = weak and dtype.kind != "b"  # NEP 50: Python bools are not weak; sin(True) is float16
        target = inexact_dtype(dtype, weak)
        return binder(convert(x, target, weak) if target != dtype else x)
    fun.__name__ = fun.__qualname__ = name
    fun.__doc__ = f"Elementwise {name}, as numpy.{name}."
    return fun


sin = _unary_float("sin", ew.sin)
cos = _unary_float("cos", ew.cos)
tan = _unary_float("tan", ew.tan)
arctan = _unary_float("arctan", ew.atan)
sinh = _unary_float("sinh", ew.sinh)
cosh = _unary_float("cosh", ew.cosh)
tanh = _unary_float("tanh", ew.tanh)
exp = _unary_float("exp", ew.exp)
log = _unary_float("log", ew.log)
log1p = _unary_float("log1p", ew.log1p)
expm1 = _unary_float("expm1", ew.expm1)
sqrt = _unary_float("sqrt", ew.sqrt)


def _unary_same_dtype(name, binder, allow_bool=False):
    @public
    def fun(x):
        (x,), dtype, _ = operands(name, x)
        if dtype.kind == "b" and not allow_bool:
            raise TypeError(at_user_line(f"{name} of a bool array is not supported (as in NumPy)"))
        return binder(x)
    fun.__name__ = fun.__qualname__ = name
    fun.__doc__ = f"Elementwise {name}, as numpy.{name}."
    return fun


negative = _unary_same_dtype("negative", ew.neg)


def _sign(x):
    if aval_of(x).dtype.kind != "c":
        return ew.sign(x)
    return _complex_sign(x)


def _complex_sign(z):
    """NumPy 2's sign of a complex number (npy_csign): z / |z| (each part divided by |z|, so that
    subnormal z stays accurate), 0 at 0; at an infinite part, the direction it points in (sign(inf + 1j)
    = 1, sign(1 - inf j) = -1j, sign(inf + nan j) = 1, zero parts +0); NaN + NaN j where both parts are
    infinite, or a part is NaN and none infinite."""
    real_type = np.dtype(f"f{aval_of(z).dtype.itemsize // 2}")
    re, im = ew.real(z), ew.imag(z)
    magnitude = ew.abs(z)
    zero, one, nan = (convert(v, real_type) for v in (0.0, 1.0, np.nan))
    at_zero = ew.eq(magnitude, zero)
    safe = ew.select_n(at_zero, magnitude, one)
    unit_re = ew.select_n(at_zero, ew.div(re, safe), zero)
    unit_im = ew.select_n(at_zero, ew.div(im, safe), zero)
    inf = convert(np.inf, real_type)
    re_inf, im_inf = ew.eq(ew.abs(re), inf), ew.eq(ew.abs(im), inf)
    # one infinite part: the unit vector along it (sign(re) + 0j, or 0 + sign(im) j)
    unit_re = ew.select_n(im_inf, ew.select_n(re_inf, unit_re, ew.sign(re)), zero)
    unit_im = ew.select_n(re_inf, ew.select_n(im_inf, unit_im, ew.sign(im)), zero)
    some_inf, some_nan = ew.bitwise_or(re_inf, im_inf), ew.bitwise_or(ew.ne(re, re), ew.ne(im, im))
    undefined = ew.bitwise_or(ew.bitwise_and(re_inf, im_inf), ew.bitwise_and(some_nan, ew.bitwise_not(some_inf)))
    return ew.complex(ew.select_n(undefined, unit_re, nan), ew.select_n(undefined, unit_im, nan))


def _real_only(name, binder):
    """floor, ceil: NumPy has no loop for complex numbers; integers and bools are their own floor (NumPy 2)."""
    def fun(x):
        kind = aval_of(x).dtype.kind
        if kind == "c":
            raise TypeError(at_user_line(f"{name} is not defined for complex numbers "
                                         f"(numpy.{name} has no loop for {aval_of(x).dtype.name})"))
        return unchanged(x) if kind != "f" else binder(x)
    return fun


sign = _unary_same_dtype("sign", _sign)
floor = _unary_same_dtype("floor", _real_only("floor", ew.floor), allow_bool=True)
ceil = _unary_same_dtype("ceil", _real_only("ceil", ew.ceil), allow_bool=True)


@public
def abs(x):
    """Elementwise absolute value, as numpy.abs (bools are returned as they are)."""
    (x,), dtype, _ = operands("abs", x)
    return unchanged(x) if dtype.kind == "b" else ew.abs(x)


absolute = abs


def _integer_pow(x, y):
    # NB: integer_pow's impl computes a Python number's power in Python, and bind
    # hands that back as is; eager results must still be arrays
    return unchanged(ew.integer_pow(x, y))


_INT8 = np.dtype(np.int8)


def _bools_as_int8(xs, dtype):
    """Bools as NumPy computes arithmetic on them where it has no bool loop (square,
    floor_divide, mod, power): in int8."""
    if dtype.kind != "b":
        return xs, dtype
    return [convert(x, _INT8) for x in xs], _INT8


@public
def square(x):
    (x,), dtype, _ = operands("square", x)
    (x,), dtype = _bools_as_int8([x], dtype)
    if dtype.kind == "c":  # np.square(z) is z*z, which differs from np.power(z, 2) in signed zeros and infs
        return ew.mul(x, x)
    return _integer_pow(x, 2)


@public
def reciprocal(x):
    """1 / x. Integers as NumPy's reciprocal: truncated toward zero (so 0 unless x is
    1 or -1; 1 / 0 gives 0, where NumPy's value depends on the integer type)."""
    (x,), dtype, _ = operands("reciprocal", x)
    if dtype.kind == "c":  # a division, as numpy.reciprocal (numpy.power(z, -1) differs at infinities)
        return ew.div(convert(1, dtype), x)
    if dtype.kind == "f":
        return _integer_pow(x, -1)
    (x,), dtype = _bools_as_int8([x], dtype)
    one = convert(1, dtype)
    unit = ew.eq(ew.abs(x) if dtype.kind == "i" else x, one)  # 1 / x is x itself at 1 and -1
    return unchanged(ew.select_n(unit, convert(0, dtype), x))


def _binary(name, binder, kinds="fiubc", bools_as_int8=False):
    @public
    def fun(x, y):
        (x, y), dtype, _ = operands(name, x, y)
        if bools_as_int8:
            (x, y), dtype = _bools_as_int8([x, y], dtype)
        if dtype.kind not in kinds:
            extra = " (NumPy defines it on real numbers only)" if dtype.kind == "c" else ""
            raise TypeError(at_user_line(f"{name} does not support {dtype.name} operands{extra}"))
        return binder(x, y)
    fun.__name__ = fun.__qualname__ = name
    fun.__doc__ = f"Elementwise {name} with NumPy broadcasting and promotion, as numpy.{name}."
    return fun


add = _binary("add", lambda x, y: ew.bitwise_or(x, y) if aval_of(x).dtype.kind == "b" else ew.add(x, y))
multiply = _binary("multiply", lambda x, y: ew.bitwise_and(x, y) if aval_of(x).dtype.kind == "b" else ew.mul(x, y))
subtract = _binary("subtract", ew.sub, "fiuc")
floor_divide = _binary("floor_divide", ew.floor_divide, "fiu", bools_as_int8=True)
mod = _binary("mod", ew.mod, "fiu", bools_as_int8=True)
remainder = mod
maximum = _binary("maximum", ew.max)
minimum = _binary("minimum", ew.min)
equal = _binary("equal", ew.eq)
not_equal = _binary("not_equal", ew.ne)
less = _binary("less", ew.lt)
less_equal = _binary("less_equal", ew.le)
greater = _binary("greater", ew.gt)
greater_equal = _binary("greater_equal", ew.ge)
bitwise_and = _binary("bitwise_and", ew.bitwise_and, "biu")
bitwise_or = _binary("bitwise_or", ew.bitwise_or, "biu")
bitwise_xor = _binary("bitwise_xor", ew.bitwise_xor, "biu")


@public
def true_divide(x, y):
    """x / y; integers divide as float64, as in NumPy."""
    (x, y), dtype, weak = operands("divide", x, y)
    if dtype.kind not in "fc":
        target = np.dtype(np.float64)
        x, y = convert(x, target, weak), convert(y, target, weak)
    return ew.div(x, y)


divide = true_divide


@public
def power(x, y):
    """x ** y. A Python int exponent stays an integer power (`integer_pow`), as in JAX."""
    if type(y) is int:
        (x,), dtype, _ = operands("power", x)
        if dtype.kind == "b":
            x = convert(x, np.dtype(np.int64))
        if y < 0 and dtype.kind not in "fc":
            raise ValueError(at_user_line("Integers to negative integer powers are not allowed."))
        return _integer_pow(x, y)
    (x, y), dtype, _ = operands("power", x, y)
    (x, y), dtype = _bools_as_int8([x, y], dtype)
    return ew.pow(x, y)


@public
def invert(x):
    (x,), dtype, _ = operands("invert", x)
    if dtype.kind not in "biu":
        raise TypeError(at_user_line(f"invert needs integer or bool values, got {dtype.name}"))
    return ew.bitwise_not(x)


bitwise_not = invert


def _to_bool(x):
    (x,), dtype, _ = operands("logical", x)
    return x if dtype.kind == "b" else ew.ne(x, convert(0, dtype))


@public
def logical_not(x):
    return ew.bitwise_not(_to_bool(x))


def _logical(name, binder):
    @public
    def fun(x, y):
        (x, y), _, _ = operands(name, _to_bool(x), _to_bool(y))
        return binder(x, y)
    fun.__name__ = fun.__qualname__ = name
    return fun


logical_and = _logical("logical_and", ew.bitwise_and)
logical_or = _logical("logical_or", ew.bitwise_or)
logical_xor = _logical("logical_xor", ew.bitwise_xor)


@public
def where(condition, x=None, y=None, /, *, size=None, fill_value=None):
    """`x` where `condition` holds, else `y`; with the condition alone, `nonzero(condition)`
    (JAX's `size=` and `fill_value=` for that form under a trace)."""
    if x is None and y is None:
        from ftrans.numpy._sorting import nonzero
        return nonzero(condition, size=size, fill_value=fill_value)
    if x is None or y is None:
        raise ValueError(at_user_line("where: either both or neither of x and y should be given"))
    (x, y), _, _ = operands("where", x, y)
    condition, x, y = broadcast_all("where", _to_bool(condition), x, y)
    return ew.select_n(condition, y, x)


@public
def clip(a=None, a_min=None, a_max=None, *, min=None, max=None, arr=None):
    """numpy.clip; JAX's spelling too: clip(arr, min=, max=)."""
    a = arr if a is None else a
    a_min = min if a_min is None else a_min
    a_max = max if a_max is None else a_max
    if a is None:
        raise TypeError(at_user_line("clip: the array to clip is missing"))
    if a_min is None and a_max is None:  # NumPy 2.1's clip leaves `a` as it is
        return unchanged(operands("clip", a)[0][0])
    # one promotion of all three, as numpy.clip: clip(bools, 0, float32) is float32, where
    # promoting pairwise (maximum, then minimum) would go through int64 to float64
    given = [as_operand(v) for v in (a, a_min, a_max) if v is not None]
    dtype, weak = result_type(*[aval_of(v, "clip") for v in given], name="clip")
    a, a_min, a_max = (None if v is None else convert(as_operand(v), dtype, weak) for v in (a, a_min, a_max))
    if a_min is not None:
        a = maximum(a, a_min)
    if a_max is not None:
        a = minimum(a, a_max)
    return a
