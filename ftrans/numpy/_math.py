"""The rest of NumPy's elementwise math: inverse trigonometric and hyperbolic
functions, logarithms and exponentials in other bases, rounding, floating-point
classification and the closeness tests.

All but arctan2 are compositions of primitives, written so that they keep
NumPy's accuracy where a naive formula loses it (arcsin near 1 as an atan2 of
the exact (1 - x)(1 + x), arccosh near 1 through log1p, ...) and their
derivatives are those of the compositions: exact, and as JAX's where these
are compositions in JAX too (jnp.trunc, jnp.isnan, jnp.logaddexp, ...).
"""
from __future__ import annotations

import math

import numpy as np

from ftrans.numpy import _elementwise as el
from ftrans.numpy._core import as_operand, aval_of, convert, inexact_dtype, operands, public, unchanged
from ftrans.numpy._complex import imag, real
from ftrans.numpy._creation import array
from ir.errors import at_user_line
from ir.primitives import elementwise as ew
from ir.primitives import reductions

def _inexact(name, *xs):
    """`xs` promoted together and to NumPy's inexact dtype for them (sin's rule)."""
    xs, dtype, weak = operands(name, *xs)
    target = inexact_dtype(dtype, weak and dtype.kind != "b")
    if target != dtype:
        xs = [convert(x, target, weak and dtype.kind != "b") for x in xs]
    return xs, target


def _c(value, dtype):
    return convert(value, dtype)


def _real_float(name, dtype):
    if dtype.kind == "c":
        raise TypeError(at_user_line(f"{name} is not defined for complex numbers (numpy.{name} has no loop "
                                     f"for {dtype.name})"))


# -------------------- inverse trigonometric and hyperbolic --------------------

@public
def arctan2(x1, x2):
    """The angle of the point (x2, x1), in (-pi, pi], as numpy.arctan2 (reals only)."""
    (x1, x2), dtype = _inexact("arctan2", x1, x2)
    _real_float("arctan2", dtype)
    return ew.atan2(x1, x2)


def _one_minus_square(x, dtype):
    """1 - x^2 as (1 - x)(1 + x): exact near |x| = 1, where 1 - x*x cancels."""
    one = _c(1, dtype)
    return ew.mul(ew.sub(one, x), ew.add(one, x))


def _i_times(z):
    """i z, exactly: -Im z + i Re z (a complex product would turn -0 into +0, and move a value
    on a branch cut to its other side)."""
    return ew.complex(ew.neg(ew.imag(z)), ew.real(z))


def _minus_i_times(z):
    return ew.complex(ew.imag(z), ew.neg(ew.real(z)))


def _even_series(w, coefficients):
    """sum_k c_k w^(2k), by Horner's rule in w^2."""
    square, total = ew.mul(w, w), None
    for c in reversed(coefficients):
        term = _c(c, aval_of(w).dtype)
        total = term if total is None else ew.add(term, ew.mul(square, total))
    return total


def _series(w, coefficients):
    """sum_k c_k w^(2k+1)."""
    return ew.mul(w, _even_series(w, coefficients))


# atanh(w) = sum_k w^(2k+1) / (2k + 1), nine terms, for |w| < 0.1 (the rest is below 1e-19), where
# log1p of a complex (log(1 + w)) would lose eps / |w|
_ATANH_SERIES = [1 / (2 * k + 1) for k in range(9)]
_SERIES_RADIUS = 0.1


def _hull_parts(x, y, part):
    """For x, y >= 0 (finite, below _LARGE): (r, s, A, B, I) of Hull, Fairgrieve and Tang's asin and acos
    (ACM TOMS 23, 1997): r = |z + 1|, s = |z - 1|, A = (r + s)/2, B = x/A, and I = Im asin(z) =
    acosh(A), as log1p(A - 1 + sqrt((A - 1)(A + 1))) with A - 1 written without cancellation where
    A <= 1.5, and y / sqrt((1 - x)(1 + x)) where y is so small that (A - 1) would underflow."""
    one, half = _c(1, part), _c(0.5, part)
    r, s = hypot(ew.add(x, one), y), hypot(ew.sub(x, one), y)
    a = ew.add(ew.mul(half, r), ew.mul(half, s))
    b = ew.div(x, a)
    y2 = ew.mul(y, y)
    below_one = ew.lt(x, one)
    a_minus_1 = ew.mul(half, ew.add(ew.div(y2, ew.add(r, ew.add(x, one))),
                                     ew.select_n(below_one, ew.add(s, ew.sub(x, one)), ew.div(y2, ew.add(s, ew.sub(one, x))))))
    near = ew.le(a, _c(1.5, part))
    near_value = ew.log1p(ew.add(a_minus_1, ew.sqrt(ew.mul(a_minus_1, ew.add(a, one)))))
    far_a = ew.select_n(near, a, _c(2, part))
    far_value = ew.log(ew.add(far_a, ew.sqrt(ew.mul(ew.sub(far_a, one), ew.add(far_a, one)))))
    imag = ew.select_n(near, far_value, near_value)
    tiny = ew.bitwise_and(ew.lt(y, _c(_TINY[part], part)), below_one)
    safe_x = ew.select_n(tiny, _c(0, part), x)
    imag = ew.select_n(tiny, imag, ew.div(y, ew.sqrt(ew.mul(ew.sub(one, safe_x), ew.add(one, safe_x)))))
    return r, s, a, b, imag


_TINY = {np.dtype(np.float32): 2.0 ** -60, np.dtype(np.float64): 2.0 ** -500}  # (A - 1 ~ y^2 underflows)
_B_CROSS = 0.6417  # Hull et al.: below, asin(B) and acos(B) are accurate; above, their atan forms


def _complex_asin_or_acos(z, dtype, acos):
    """asin(z) or acos(z) by Hull, Fairgrieve and Tang's algorithm on |Re z|, |Im z|, the signs then
    restored (asin is odd, both are conj-symmetric; acos(-z) = pi - acos(z)), so that the sign of a zero
    picks the side of a cut (the real axis past +-1), as C99's casin and cacos. Past _LARGE, Re = the
    angle and |Im| = log 2|z| (the rest is below an ulp)."""
    part = _real_part_dtype(dtype)
    one, half, zero = _c(1, part), _c(0.5, part), _c(0, part)
    re, im = ew.real(z), ew.imag(z)
    x, y = ew.abs(re), ew.abs(im)
    large = ew.gt(ew.max(x, y), _c(_LARGE[part], part))
    mx, my = ew.select_n(large, x, half), ew.select_n(large, y, zero)
    r, s, a, b, imag = _hull_parts(mx, my, part)
    apx = ew.add(a, mx)
    below_one = ew.le(mx, one)
    # x <= 1: sqrt((A + x)/2 (y^2 / (r + x + 1) + s + 1 - x)); x > 1: y sqrt((A + x)/2 (1/(r + x + 1) + 1/(s + x - 1)))
    below_root = ew.sqrt(ew.mul(ew.mul(half, apx), ew.add(ew.div(ew.mul(my, my), ew.add(r, ew.add(mx, one))),
                                                           ew.add(s, ew.sub(one, mx)))))
    above_root = ew.mul(my, ew.sqrt(ew.mul(half, ew.add(ew.div(apx, ew.add(r, ew.add(mx, one))),
                                                         ew.div(apx, ew.add(s, ew.sub(mx, one)))))))
    root = ew.select_n(below_one, above_root, below_root)
    cross = ew.le(b, _c(_B_CROSS, part))
    safe_b = ew.select_n(cross, zero, b)
    if acos:
        middle_re = ew.select_n(cross, ew.atan2(root, mx), arccos(safe_b))
        large_re = ew.atan2(y, x)
    else:
        middle_re = ew.select_n(cross, ew.atan2(mx, root), arcsin(safe_b))
        large_re = ew.atan2(x, y)
    big = ew.select_n(large, one, hypot(x, y))
    large_im = ew.add(ew.log(big), _c(np.log(2.0), part))
    value_re = ew.select_n(large, middle_re, large_re)
    value_im = ew.select_n(large, imag, large_im)
    if acos:
        value_re = ew.select_n(_signbit(re, part), value_re, ew.sub(_c(np.pi, part), value_re))
        return ew.complex(value_re, ew.neg(_copysign(value_im, im, part)))
    return ew.complex(_copysign(value_re, re, part), _copysign(value_im, im, part))


def _complex_arctanh(z, dtype):
    """atanh(x + iy): Re = log1p(4x / ((1 - x)^2 + y^2)) / 4 and Im = atan2(2y, (1 - x)(1 + x) - y^2) / 2
    (no cancellation of log|1 + z| - log|1 - z|, and y's zero picks the side of the cut, the real axis
    past +-1); the series near 0; past _LARGE, Re = Re(1/z) and Im = +-pi/2 (the squares would overflow)."""
    part = _real_part_dtype(dtype)
    x, y = ew.real(z), ew.imag(z)
    size = ew.abs(z)
    small = ew.lt(size, _c(_SERIES_RADIUS, part))
    large = ew.gt(size, _c(_LARGE[part], part))
    one, zero = _c(1, part), _c(0, part)
    mx = ew.select_n(ew.bitwise_or(small, large), x, zero)
    my = ew.select_n(ew.bitwise_or(small, large), y, zero)
    below = ew.sub(one, mx)
    ax = ew.abs(mx)  # Re is odd in x: on |x|, 4|x| / ((1 - |x|)^2 + y^2) does not cancel against 1 in log1p
    a_below = ew.sub(one, ax)
    middle_re = ew.mul(_c(0.25, part), ew.log1p(ew.div(ew.mul(_c(4, part), ax),
                                                      ew.add(ew.mul(a_below, a_below), ew.mul(my, my)))))
    # near +-1, (1 - |x|)^2 + y^2 may underflow: there, in logarithms scaled by m = max(|1 - |x||, |y|)
    m = ew.max(ew.abs(a_below), ew.abs(my))
    tiny = ew.bitwise_and(ew.lt(m, _c(_TINY[part], part)), ew.gt(m, _c(0, part)))  # (at +-1 itself, +-inf)
    safe_m = ew.select_n(tiny, one, m)
    scaled = ew.add(ew.mul(ew.div(a_below, safe_m), ew.div(a_below, safe_m)), ew.mul(ew.div(my, safe_m), ew.div(my, safe_m)))
    tiny_re = ew.mul(_c(0.25, part), ew.sub(ew.sub(ew.log(ew.mul(_c(4, part), ew.select_n(tiny, one, ax))),
                                                   ew.mul(_c(2, part), ew.log(safe_m))), ew.log(scaled)))
    middle_re = _copysign(ew.select_n(tiny, middle_re, tiny_re), mx, part)
    middle_im = ew.mul(_c(0.5, part), ew.atan2(ew.add(my, my), ew.sub(ew.mul(below, ew.add(one, mx)), ew.mul(my, my))))
    big = ew.select_n(large, one, size)
    lx = ew.select_n(large, zero, x)
    infinite_x = isinf(lx)
    # x / |z|, with x infinite its sign (inf / inf would be NaN), then / |z|: Re(1/z), +-0 at infinity
    unit = ew.select_n(infinite_x, ew.div(lx, big), _copysign(one, lx, part))
    large_re = ew.div(unit, big)
    large_im = _copysign(_c(np.pi / 2, part), y, part)
    small_value = _series(ew.select_n(small, _c(0, dtype), z), _ATANH_SERIES)
    re = ew.select_n(large, ew.select_n(small, middle_re, ew.real(small_value)), large_re)
    im = ew.select_n(large, ew.select_n(small, middle_im, ew.imag(small_value)), large_im)
    return ew.complex(re, im)


@public
def arcsin(x):
    (x,), dtype = _inexact("arcsin", x)
    if dtype.kind == "c":
        return _complex_asin_or_acos(x, dtype, acos=False)
    return ew.atan2(x, ew.sqrt(_one_minus_square(x, dtype)))


@public
def arccos(x):
    (x,), dtype = _inexact("arccos", x)
    if dtype.kind == "c":
        return _complex_asin_or_acos(x, dtype, acos=True)
    return ew.atan2(ew.sqrt(_one_minus_square(x, dtype)), x)


def _real_part_dtype(dtype):
    return np.dtype(np.float32) if dtype == np.complex64 else np.dtype(np.float64)


_LARGE = {np.dtype(np.float16): 2.0 ** 7, np.dtype(np.float32): 2.0 ** 60, np.dtype(np.float64): 2.0 ** 500}


@public
def arcsinh(x):
    (x,), dtype = _inexact("arcsinh", x)
    if dtype.kind == "c":  # asinh(z) = -i asin(i z), both turns exact (a complex product would lose -0)
        return _minus_i_times(_complex_asin_or_acos(_i_times(x), dtype, acos=False))
    # sign(x) log1p(|x| + x^2 / (1 + sqrt(1 + x^2))): exact near 0; past sqrt(max), x^2 would
    # overflow and asinh(x) is log(2|x|) to the last bit
    one = _c(1, dtype)
    a = ew.abs(x)
    large = ew.gt(a, _c(_LARGE[dtype], dtype))
    safe = ew.select_n(large, a, one)
    square = ew.mul(safe, safe)
    small_value = ew.log1p(ew.add(safe, ew.div(square, ew.add(one, ew.sqrt(ew.add(one, square))))))
    large_value = ew.add(ew.log(ew.select_n(large, one, a)), _c(np.log(2.0), dtype))
    value = ew.select_n(large, small_value, large_value)
    return ew.select_n(ew.lt(x, _c(0, dtype)), value, ew.neg(value))


@public
def arccosh(x):
    (x,), dtype = _inexact("arccosh", x)
    if dtype.kind == "c":
        # +-i acos(z), the sign that makes the real part >= 0 (C99's cacosh): i acos(z) where acos's
        # imaginary part has its sign bit, -i acos(z) where not (the zeros' signs pick the cut's side)
        value = arccos(x)
        negative = _signbit(ew.imag(value), _real_part_dtype(dtype))
        return ew.select_n(negative, _minus_i_times(value), _i_times(value))
    # log1p((x - 1) + sqrt((x - 1)(x + 1))): exact near 1; log(2x) past sqrt(max)
    one = _c(1, dtype)
    large = ew.gt(x, _c(_LARGE[dtype], dtype))
    safe = ew.select_n(large, x, one)
    below = ew.sub(safe, one)
    small_value = ew.log1p(ew.add(below, ew.sqrt(ew.mul(below, ew.add(safe, one)))))
    large_value = ew.add(ew.log(ew.select_n(large, one, x)), _c(np.log(2.0), dtype))
    value = ew.select_n(large, small_value, large_value)
    # NaN below 1, as NumPy's: (x - 1)(x + 1) overflowed to +inf for x < -sqrt(max), and log1p(inf) is inf
    return ew.select_n(ew.lt(x, one), value, _c(np.nan, dtype))


@public
def arctanh(x):
    (x,), dtype = _inexact("arctanh", x)
    half = _c(0.5, dtype)
    if dtype.kind == "c":
        return _complex_arctanh(x, dtype)
    # 0.5 log1p(2x / (1 - x)): exact near 0, +-inf at +-1
    return ew.mul(half, ew.log1p(ew.div(ew.add(x, x), ew.sub(_c(1, dtype), x))))


# -------------------- logarithms and exponentials --------------------

def _scaled_log(name, base):
    @public
    def fun(x):
        (x,), dtype = _inexact(name, x)
        if dtype.kind == "c":  # each part divided by the real log(base): a complex quotient made -inf + NaN i of log 0
            value, scale = ew.log(x), _c(np.log(base), _real_part_dtype(dtype))
            return ew.complex(ew.div(ew.real(value), scale), ew.div(ew.imag(value), scale))
        return ew.div(ew.log(x), _c(np.log(base), dtype))
    fun.__name__ = fun.__qualname__ = name
    fun.__doc__ = f"Elementwise {name}, as numpy.{name}: log(x) / log({base})."
    return fun


log2 = _scaled_log("log2", 2.0)
log10 = _scaled_log("log10", 10.0)


@public
def exp2(x):
    """2 ** x, as numpy.exp2 (exact at integers: a power, not exp(x log 2), for real x)."""
    (x,), dtype = _inexact("exp2", x)
    if dtype.kind == "c":
        return ew.exp(ew.mul(x, _c(np.log(2.0), dtype)))
    return ew.pow(_c(2, dtype), x)


def _logaddexp(name, log1p_fn, exp_fn):
    @public
    def fun(x1, x2):
        (x1, x2), dtype = _inexact(name, x1, x2)
        _real_float(name, dtype)
        # max + log1p(exp(-|x1 - x2|)), which cannot overflow. At a tie the difference is taken
        # as 0 (equal infinities too, whose difference is NaN): the tail is then log(2), and the
        # maximum splits the derivative evenly, as JAX's
        big = ew.max(x1, x2)
        delta = ew.select_n(ew.eq(x1, x2), ew.sub(x1, x2), _c(0, dtype))
        value = ew.add(big, log1p_fn(exp_fn(ew.neg(ew.abs(delta)))))
        return ew.select_n(ew.ne(delta, delta), value, ew.add(x1, x2))  # a NaN operand: NaN
    fun.__name__ = fun.__qualname__ = name
    fun.__doc__ = f"{name}(x1, x2), as numpy.{name}, without overflow."
    return fun


logaddexp = _logaddexp("logaddexp", ew.log1p, ew.exp)


def _log2_1p(u):
    return ew.div(ew.log1p(u), convert(np.log(2.0), aval_of(u).dtype))


def _exp2(x):
    return ew.pow(convert(2, aval_of(x).dtype), x)


logaddexp2 = _logaddexp("logaddexp2", _log2_1p, _exp2)


@public
def hypot(x1, x2):
    """sqrt(x1^2 + x2^2) without overflow or underflow, as numpy.hypot (reals)."""
    (x1, x2), dtype = _inexact("hypot", x1, x2)
    _real_float("hypot", dtype)
    a, b = ew.abs(x1), ew.abs(x2)
    big, small = ew.max(a, b), ew.min(a, b)
    zero = ew.eq(big, _c(0, dtype))
    ratio = ew.div(small, ew.select_n(zero, big, _c(1, dtype)))
    value = ew.mul(big, ew.sqrt(ew.add(_c(1, dtype), ew.mul(ratio, ratio))))
    # an infinite operand gives inf even beside a NaN (IEEE's hypot)
    infinite = ew.bitwise_or(ew.eq(a, _c(np.inf, dtype)), ew.eq(b, _c(np.inf, dtype)))
    return ew.select_n(infinite, value, _c(np.inf, dtype))


# -------------------- rounding --------------------

def _float_kinds(name, x):
    (x,), dtype, _ = operands(name, x)
    return x, dtype


def _rint_real(x, dtype):
    """Round half to even: floor, and up where the rest is over a half or a half at an odd floor.
    x - floor(x) is exact, so this is NumPy's rint to the bit; a zero result keeps x's sign."""
    down = ew.floor(x)
    rest = ew.sub(x, down)
    half = _c(0.5, dtype)
    odd = ew.eq(ew.mod(down, _c(2, dtype)), _c(1, dtype))
    up = ew.bitwise_or(ew.gt(rest, half), ew.bitwise_and(ew.eq(rest, half), odd))
    rounded = ew.select_n(up, down, ew.add(down, _c(1, dtype)))
    return ew.select_n(ew.eq(rounded, _c(0, dtype)), rounded, ew.mul(x, _c(0, dtype)))


def _per_part(fun, x, dtype):
    """A rounding of a complex number: of its real and imaginary parts, as NumPy's."""
    if dtype.kind != "c":
        return fun(x, dtype)
    part = _real_part_dtype(dtype)
    return ew.complex(fun(real(x), part), fun(imag(x), part))


@public
def rint(x):
    x, dtype = _float_kinds("rint", x)
    if dtype.kind not in "fc":  # integers are their own rint, computed in NumPy's float for them
        return unchanged(convert(x, inexact_dtype(dtype)))
    return _per_part(_rint_real, x, dtype)


@public
def round(a, decimals=0, out=None):
    """numpy.round: half to even, at `decimals` places (as NumPy: rint(a * 10**d) / 10**d)."""
    if out is not None:
        raise TypeError(at_user_line("round: out= is not supported (arrays are immutable)"))
    decimals = int(decimals)
    a, dtype = _float_kinds("round", a)
    if dtype.kind == "b":  # NumPy rounds bools in float16
        a, dtype = convert(a, np.dtype(np.float16)), np.dtype(np.float16)
    if dtype.kind in "iu":
        if decimals >= 0:
            return unchanged(a)
        return _round_integer(a, dtype, -decimals)

    def rounded(x, part):
        if decimals == 0:
            return _rint_real(x, part)
        if decimals > 0:
            factor = _c(10.0 ** decimals, part)
            return ew.div(_rint_real(ew.mul(x, factor), part), factor)
        factor = _c(10.0 ** -decimals, part)
        return ew.mul(_rint_real(ew.div(x, factor), part), factor)
    return _per_part(rounded, a, dtype)


def _round_integer(a, dtype, places):
    """Integers to a negative number of decimals, half to even, as NumPy's."""
    factor = convert(10 ** places, dtype)
    down = ew.floor_divide(a, factor)
    rest = ew.sub(a, ew.mul(down, factor))
    twice = ew.mul(rest, convert(2, dtype))
    odd = ew.eq(ew.mod(down, convert(2, dtype)), convert(1, dtype))
    up = ew.bitwise_or(ew.gt(twice, factor), ew.bitwise_and(ew.eq(twice, factor), odd))
    return ew.mul(ew.select_n(up, down, ew.add(down, convert(1, dtype))), factor)


around = round


@public
def trunc(x):
    """Rounding toward zero, as numpy.trunc (and jnp.trunc: ceil below 0, floor above)."""
    x, dtype = _float_kinds("trunc", x)
    _real_float("trunc", dtype)
    if dtype.kind != "f":
        return unchanged(x)
    return ew.select_n(ew.lt(x, _c(0, dtype)), ew.floor(x), ew.ceil(x))


fix = trunc


@public
def fmod(x1, x2):
    """The remainder of C's fmod: the sign of x1 (numpy.fmod; jax.lax.rem)."""
    (x1, x2), dtype, _ = operands("fmod", x1, x2)
    _real_float("fmod", dtype)
    if dtype.kind == "b":
        (x1, x2), dtype = [convert(x1, np.dtype(np.int8)), convert(x2, np.dtype(np.int8))], np.dtype(np.int8)
    if dtype.kind == "u":
        return ew.mod(x1, x2)
    # |x1| mod |x2| is exact and of the sign of x1 once it takes that sign back
    magnitude = ew.mod(ew.abs(x1), ew.abs(x2))
    if dtype.kind == "i":
        return ew.select_n(ew.lt(x1, convert(0, dtype)), magnitude, ew.neg(magnitude))
    return _copysign(magnitude, x1, dtype)


@public
def copysign(x1, x2):
    (x1, x2), dtype = _inexact("copysign", x1, x2)
    _real_float("copysign", dtype)
    return _copysign(x1, x2, dtype)


def _copysign(magnitude, sign_of, dtype):
    a = ew.abs(magnitude)
    return ew.select_n(_signbit(sign_of, dtype), a, ew.neg(a))


def _signbit(x, dtype):
    """x < 0, and -0.0: 1 / -0.0 is -inf. NB: a NaN's sign bit is not seen (it counts as
    positive); JAX reads the bit itself."""
    zero = _c(0, dtype)
    at_zero = ew.eq(x, zero)
    reciprocal = ew.div(_c(1, dtype), ew.select_n(at_zero, _c(1, dtype), x))
    return ew.bitwise_or(ew.lt(x, zero), ew.bitwise_and(at_zero, ew.lt(reciprocal, zero)))


@public
def signbit(x):
    (x,), dtype, _ = operands("signbit", x)
    _real_float("signbit", dtype)
    if dtype.kind in "bu":  # never negative
        return ew.ne(x, x)
    if dtype.kind == "i":
        return ew.lt(x, convert(0, dtype))
    return _signbit(x, dtype)


@public
def heaviside(x1, x2):
    """0 below 0, x2 at 0, 1 above (NaN at NaN), as numpy.heaviside."""
    (x1, x2), dtype = _inexact("heaviside", x1, x2)
    _real_float("heaviside", dtype)
    zero = _c(0, dtype)
    step = ew.select_n(ew.gt(x1, zero), zero, _c(1, dtype))
    step = ew.select_n(ew.eq(x1, zero), step, x2)
    return ew.select_n(ew.ne(x1, x1), step, x1)


@public
def fabs(x):
    """|x| of real values, as numpy.fabs (integers become floats; complex values have no loop)."""
    (x,), dtype = _inexact("fabs", x)
    _real_float("fabs", dtype)
    return ew.abs(x)


@public
def positive(x):
    """+x, as numpy.positive: the values unchanged, -0.0 too (booleans have no loop)."""
    (x,), dtype, _ = operands("positive", x)
    if dtype.kind == "b":
        raise TypeError(at_user_line("positive is not defined for booleans (numpy.positive has no bool loop)"))
    return array(x)  # a new array, as NumPy's (a NumPy argument changed later does not show)


def _nan_ignoring(name, prefer_first):
    @public
    def fun(x1, x2):
        (x1, x2), dtype, _ = operands(name, x1, x2)
        if dtype.kind == "c":
            raise TypeError(at_user_line(f"{name} of complex numbers is not supported (ftrans compares reals)"))
        first = prefer_first(x1, x2)
        if dtype.kind == "f":  # a NaN loses to a number; two NaNs give NaN
            first = ew.bitwise_or(first, ew.ne(x2, x2))
        return ew.select_n(first, x2, x1)
    fun.__name__ = fun.__qualname__ = name
    fun.__doc__ = (f"Elementwise {name}, as numpy.{name}: the {'larger' if name == 'fmax' else 'smaller'} "
                   f"value, a NaN only where both are; x1 on ties (-0.0 and 0.0 too).")
    return fun


fmax = _nan_ignoring("fmax", ew.ge)
fmin = _nan_ignoring("fmin", ew.le)


@public
def float_power(x1, x2):
    """x1 ** x2 in float64 (complex128 for complex operands), as numpy.float_power."""
    (_, _), dtype, _ = operands("float_power", x1, x2)
    target = np.dtype(np.complex128) if dtype.kind == "c" else np.dtype(np.float64)
    # each operand converted by itself: a Python float must not be rounded to a float32 operand's type first
    return el.power(convert(as_operand(x1), target), convert(as_operand(x2), target))


@public
def divmod(x1, x2):
    """(floor_divide(x1, x2), mod(x1, x2)), as numpy.divmod."""
    return el.floor_divide(x1, x2), el.mod(x1, x2)


def _integer_operands(name, x1, x2):
    (x1, x2), dtype, _ = operands(name, x1, x2)
    if dtype.kind not in "iu":
        raise TypeError(at_user_line(f"{name} is defined for integers only (numpy.{name} has no loop for "
                                     f"{dtype.name})"))
    return x1, x2, dtype


def _euclid(a, b):
    """The greatest common divisors of |a| and |b|, elementwise: Euclid's algorithm in a while_loop that
    runs until every pair is done (at most 92 steps for 64-bit integers)."""
    from ftrans.lax import while_loop
    a, b = ew.abs(a), ew.abs(b)
    zero = _c(0, aval_of(a).dtype)

    def step(pair):
        x, y = pair
        going = ew.ne(y, zero)
        safe = ew.select_n(going, _c(1, aval_of(y).dtype), y)
        return ew.select_n(going, x, y), ew.select_n(going, zero, ew.mod(x, safe))  # (both >= 0: mod is the remainder)
    x, _ = while_loop(lambda pair: reductions.reduce_max(ew.ne(pair[1], zero), tuple(range(aval_of(pair[1]).ndim))),
                      step, (a, b))  # (the max of bools: whether any pair goes on)
    return x


@public
def gcd(x1, x2):
    """The greatest common divisor of |x1| and |x2|, elementwise, as numpy.gcd (integers; gcd(0, 0) is 0)."""
    x1, x2, _ = _integer_operands("gcd", x1, x2)
    return _euclid(x1, x2)


@public
def lcm(x1, x2):
    """The least common multiple of |x1| and |x2|, elementwise, as numpy.lcm (integers, wrapping as
    NumPy's does on overflow; 0 where either is 0)."""
    x1, x2, dtype = _integer_operands("lcm", x1, x2)
    divisor = _euclid(x1, x2)
    zero = _c(0, dtype)
    nonzero = ew.ne(divisor, zero)
    # as NumPy's: (|x1| / gcd) |x2|, which wraps on overflow (and may come out negative then)
    quotient = ew.floor_divide(ew.abs(x1), ew.select_n(nonzero, _c(1, dtype), divisor))
    return ew.select_n(nonzero, zero, ew.mul(quotient, ew.abs(x2)))


@public
def modf(x):
    """(fractional part, integral part), both of x's sign, as numpy.modf: modf(-0.5) is (-0.5, -0.0),
    modf(inf) (0.0, inf), modf(nan) (nan, nan)."""
    (x,), dtype = _inexact("modf", x)
    _real_float("modf", dtype)
    whole = trunc(x)
    infinite = isinf(x)
    fraction = _copysign(ew.select_n(infinite, ew.sub(x, whole), _c(0, dtype)), x, dtype)
    return ew.select_n(ew.ne(x, x), fraction, x), whole


@public
def cbrt(x):
    """The real cube root, as numpy.cbrt: exp(log|x| / 3) with x's sign, then one Newton step written
    y - (y - x / y^2) / 3 (y^3 would overflow near the largest floats); 0, inf and NaN as they are."""
    (x,), dtype = _inexact("cbrt", x)
    _real_float("cbrt", dtype)
    if dtype != np.float64:  # computed in float64 and rounded once, as NumPy's cbrtf is near-correctly rounded
        return convert(cbrt(convert(x, np.dtype(np.float64))), dtype)
    zero, one = _c(0, dtype), _c(1, dtype)
    a = ew.abs(x)
    special = ew.bitwise_or(ew.eq(a, zero), ew.bitwise_not(isfinite(x)))
    safe = ew.select_n(special, a, one)
    y = ew.exp(ew.div(ew.log(safe), _c(3, dtype)))
    y = ew.sub(y, ew.div(ew.sub(y, ew.div(safe, ew.mul(y, y))), _c(3, dtype)))
    return ew.select_n(special, _copysign(y, x, dtype), x)


# sin(u)/u = sum_k (-1)^k u^(2k) / (2k + 1)!: five terms where |u| < 1e-3 (the rest is below 1e-31), whose
# derivatives at 0 are sinc's (sin(u)/u's would be 0/0 there)
_SINC_SERIES = [(-1) ** k / math.factorial(2 * k + 1) for k in range(5)]


@public
def sinc(x):
    """sin(pi x) / (pi x), 1 at 0, as numpy.sinc; near 0 its series, so every derivative at 0 is right."""
    (x,), dtype, _ = operands("sinc", x)
    if dtype.kind not in "fc":  # NumPy's sinc multiplies by pi first: bools and integers become float64
        x, dtype = convert(x, np.dtype(np.float64)), np.dtype(np.float64)
    part = _real_part_dtype(dtype) if dtype.kind == "c" else dtype
    u = ew.mul(x, _c(np.pi, dtype))
    small = ew.lt(ew.abs(u), _c(1e-3, part))
    away = ew.select_n(small, u, _c(1, dtype))
    series = _even_series(ew.select_n(small, _c(0, dtype), u), _SINC_SERIES)
    return ew.select_n(small, ew.div(ew.sin(away), away), series)


# -------------------- classification --------------------

def _classify(name, real_test, combine):
    @public
    def fun(x):
        (x,), dtype, _ = operands(name, x)
        if dtype.kind in "biu":
            # integers and bools are finite, never NaN nor infinite
            return ew.eq(x, x) if combine is ew.bitwise_and else ew.ne(x, x)
        if dtype.kind == "c":
            return combine(real_test(real(x)), real_test(imag(x)))
        return real_test(x)
    fun.__name__ = fun.__qualname__ = name
    fun.__doc__ = f"Elementwise {name}, as numpy.{name} (complex: of either part)."
    return fun


def _isnan(x):
    return ew.ne(x, x)


def _isinf(x):
    return ew.eq(ew.abs(x), convert(np.inf, aval_of(x).dtype))


def _isfinite(x):
    return ew.lt(ew.abs(x), convert(np.inf, aval_of(x).dtype))


isnan = _classify("isnan", _isnan, ew.bitwise_or)
isinf = _classify("isinf", _isinf, ew.bitwise_or)
isfinite = _classify("isfinite", _isfinite, ew.bitwise_and)


@public
def isposinf(x):
    (x,), dtype, _ = operands("isposinf", x)
    _real_float("isposinf", dtype)
    return el.equal(x, np.inf)


@public
def isneginf(x):
    (x,), dtype, _ = operands("isneginf", x)
    _real_float("isneginf", dtype)
    return el.equal(x, -np.inf)


@public
def nan_to_num(x, copy=True, nan=0.0, posinf=None, neginf=None):
    """NaN -> `nan`, inf -> `posinf` (the dtype's max), -inf -> `neginf` (its min), as numpy.nan_to_num."""
    (x,), dtype, _ = operands("nan_to_num", x)
    if dtype.kind in "biu":
        return unchanged(x)
    if dtype.kind == "c":
        fix = lambda v: nan_to_num(v, nan=nan, posinf=posinf, neginf=neginf)  # noqa: E731
        return ew.complex(fix(real(x)), fix(imag(x)))
    info = np.finfo(dtype)
    big = info.max if posinf is None else posinf
    small = info.min if neginf is None else neginf
    out = ew.select_n(_isnan(x), x, _c(nan, dtype))
    out = ew.select_n(ew.eq(x, _c(np.inf, dtype)), out, _c(big, dtype))
    return ew.select_n(ew.eq(x, _c(-np.inf, dtype)), out, _c(small, dtype))


# -------------------- closeness --------------------

@public
def isclose(a, b, rtol=1e-05, atol=1e-08, equal_nan=False):
    """|a - b| <= atol + rtol |b|, infinities equal only to themselves, as numpy.isclose."""
    (a, b), dtype, weak = operands("isclose", a, b)
    if dtype.kind in "biu":
        (a, b), dtype = [convert(a, np.dtype(np.float64)), convert(b, np.dtype(np.float64))], np.dtype(np.float64)
    real_dtype = _real_part_dtype(dtype) if dtype.kind == "c" else dtype
    diff = ew.abs(ew.sub(a, b))
    bound = ew.add(_c(atol, real_dtype), ew.mul(_c(rtol, real_dtype), ew.abs(b)))
    finite = ew.bitwise_and(isfinite(a), isfinite(b))
    close = ew.bitwise_and(finite, ew.le(diff, bound))
    close = ew.bitwise_or(close, ew.bitwise_and(ew.bitwise_not(finite), ew.eq(a, b)))
    if equal_nan:
        close = ew.bitwise_or(close, ew.bitwise_and(isnan(a), isnan(b)))
    return close


@public
def allclose(a, b, rtol=1e-05, atol=1e-08, equal_nan=False):
    close = isclose(a, b, rtol=rtol, atol=atol, equal_nan=equal_nan)
    return _all(close)


def _all(mask):
    ndim = aval_of(mask).ndim
    return reductions.reduce_min(mask, tuple(range(ndim))) if ndim else unchanged(mask)


@public
def array_equal(a1, a2, equal_nan=False):
    """Whether a1 and a2 have one shape and equal elements, as numpy.array_equal
    (different shapes: False, a Python-level answer, as NumPy's and JAX's)."""
    (a1,), _, _ = operands("array_equal", a1)
    (a2,), _, _ = operands("array_equal", a2)
    if aval_of(a1).shape != aval_of(a2).shape:
        return unchanged(np.bool_(False))
    (a1, a2), dtype, _ = operands("array_equal", a1, a2)
    same = ew.eq(a1, a2)
    if equal_nan and dtype.kind in "fc":
        same = ew.bitwise_or(same, ew.bitwise_and(isnan(a1), isnan(a2)))
    return _all(same)


@public
def array_equiv(a1, a2):
    (a1, a2), _, _ = operands("array_equiv", a1, a2)
    return _all(ew.eq(a1, a2))


def _scaled_angle(name, x, factor):
    (x,), dtype = _inexact(name, x)
    _real_float(name, dtype)
    # the factor rounded to x's dtype first, as NumPy's loops compute pi/180 in their own type
    pi, half_turn = np.asarray(np.pi, dtype), np.asarray(180, dtype)
    return ew.mul(x, _c(pi / half_turn if factor == "to radians" else half_turn / pi, dtype))


@public
def deg2rad(x):
    """Degrees to radians, x * (pi/180) with pi/180 in x's dtype, as NumPy's."""
    return _scaled_angle("deg2rad", x, "to radians")


@public
def rad2deg(x):
    """Radians to degrees, x * (180/pi) with 180/pi in x's dtype, as NumPy's."""
    return _scaled_angle("rad2deg", x, "to degrees")


@public
def radians(x):
    return _scaled_angle("radians", x, "to radians")


@public
def degrees(x):
    return _scaled_angle("degrees", x, "to degrees")
