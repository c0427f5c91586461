"""Convolution, interpolation, polynomials, cross products and the selecting
functions (select, piecewise), under NumPy's names.

convolve and correlate read each output's window of the zero-padded longer
operand with one gather of positions NumPy-computed from the shapes, and
contract it with the other operand: both operands differentiate and batch.
"""
from __future__ import annotations

import numpy as np

from ftrans.numpy import _elementwise as el
from ftrans.numpy._complex import conj, imag, real
from ftrans.numpy._core import aval_of, convert, normalize_axis, operands, public, result_type
from ftrans.numpy._creation import zeros_like
from ftrans.numpy._indexing import getitem
from ftrans.numpy._linalg import matmul
from ftrans.numpy._logical_reductions import any as _any
from ftrans.numpy._reductions import average, sum as _sum
from ftrans.numpy._shape import broadcast_to, concatenate, moveaxis, reshape, stack, swapaxes
from ir.primitive import as_array
from ftrans.numpy._sorting import argsort, searchsorted
from ir.errors import at_user_line
from ir.primitives import elementwise as ew
from ir.primitives import structural

_INT64, _FLOAT64 = np.dtype(np.int64), np.dtype(np.float64)


def _vector(name, a, scalars=False):
    (a,), _, _ = operands(name, a)
    if scalars and aval_of(a).ndim == 0:  # NumPy's convolve and polyval take a scalar as one element
        a = reshape(a, (1,))
    if aval_of(a).ndim != 1:
        raise ValueError(at_user_line(f"{name}: expected 1-d arrays, got {aval_of(a).str_short()}"))
    return a


def _promoted(name, a, v):
    """a and v in one dtype (Python scalars weak, as NumPy's convolve promotes them)."""
    (a,), _, _ = operands(name, a)
    (v,), _, _ = operands(name, v)
    dtype, weak = result_type(aval_of(a), aval_of(v), name=name)
    return convert(a, dtype, weak), convert(v, dtype, weak)


def _full_convolution(a, v):
    """out[k] = sum_j a[j] v[k - j], k in [0, n + m - 1), for 1-d a (length n) and v (length m)."""
    n, m = aval_of(a).shape[0], aval_of(v).shape[0]
    padded = structural.pad(a, convert(0, aval_of(a).dtype), [(m - 1, m - 1, 0)])
    windows = np.arange(n + m - 1)[:, None] + np.arange(m)[None, :]  # padded[k + i] meets v[m - 1 - i]
    return matmul(getitem(padded, windows), structural.rev(v, (0,)))


def _mode_part(full, n, m, mode):
    if mode == "full":
        return full
    if mode == "same":
        start = (min(n, m) - 1) // 2
        return full[start:start + max(n, m)]
    if mode == "valid":
        return full[min(n, m) - 1:max(n, m)]
    raise ValueError(at_user_line(f"mode must be one of 'full', 'same', 'valid', got {mode!r}"))


@public
def convolve(a, v, mode="full", *, precision=None, preferred_element_type=None):
    """The discrete convolution of 1-d a and v, as numpy.convolve (JAX's precision and
    preferred_element_type are accepted; ftrans computes in the operands' dtype)."""
    a, v = _promoted("convolve", a, v)
    a, v = _vector("convolve", a, True), _vector("convolve", v, True)
    n, m = aval_of(a).shape[0], aval_of(v).shape[0]
    if n == 0 or m == 0:
        raise ValueError(at_user_line("convolve: inputs cannot be empty"))
    return _mode_part(_full_convolution(a, v), n, m, mode)


@public
def correlate(a, v, mode="valid", *, precision=None, preferred_element_type=None):
    """c[k] = sum_n a[n + k] conj(v[n]), as numpy.correlate."""
    a, v = _promoted("correlate", a, v)
    a, v = _vector("correlate", a), _vector("correlate", v)
    n, m = aval_of(a).shape[0], aval_of(v).shape[0]
    if n == 0 or m == 0:
        raise ValueError(at_user_line("correlate: inputs cannot be empty"))
    full = _full_convolution(a, structural.rev(conj(v), (0,)))
    if mode == "same" and m > n:
        # NumPy correlates the swapped operands and reverses that: the window of `same` then
        # sits where the reversed window of the swapped correlation sits
        start = (n + m - 1) - (n - 1) // 2 - m
        return full[start:start + m]
    return _mode_part(full, n, m, mode)


@public
def interp(x, xp, fp, left=None, right=None, period=None):
    """Piecewise-linear interpolation, as numpy.interp (xp increasing); differentiable in
    x, xp and fp."""
    # NumPy's dtypes: float64, or complex128 for complex fp
    target = _FLOAT64
    (x,), _, _ = operands("interp", x)
    (xp,), _, _ = operands("interp", xp)
    x, xp = convert(x, target), convert(xp, target)
    (fp,), fp_dtype, _ = operands("interp", fp)
    fp = convert(fp, np.dtype(np.complex128) if fp_dtype.kind == "c" else target)
    xp, fp = _vector("interp", xp), _vector("interp", fp)
    if aval_of(xp).shape != aval_of(fp).shape:
        raise ValueError(at_user_line("interp: fp and xp are not of the same length"))
    if aval_of(xp).shape[0] == 0:
        raise ValueError(at_user_line("interp: array of sample points is empty"))
    if period is not None:
        if left is not None or right is not None:
            raise ValueError(at_user_line("interp: left and right do not apply with a period"))
        period = el.abs(period)
        x = el.mod(x, period)
        xp = el.mod(xp, period)
        order = argsort(xp)
        xp, fp = getitem(xp, order), getitem(fp, order)
        xp = concatenate([el.subtract(xp[-1:], period), xp, el.add(xp[0:1], period)])
        fp = concatenate([fp[-1:], fp, fp[0:1]])
    n = aval_of(xp).shape[0]
    if n == 1:
        result = broadcast_to(fp[0], aval_of(x).shape)
    else:
        i = el.clip(searchsorted(xp, x, side="right"), 1, n - 1)
        x0, x1 = getitem(xp, el.subtract(i, 1)), getitem(xp, i)
        f0, f1 = getitem(fp, el.subtract(i, 1)), getitem(fp, i)
        step = el.subtract(x1, x0)
        flat = el.equal(step, 0)
        slope = el.true_divide(el.subtract(f1, f0), el.where(flat, convert(1, target), step))
        result = el.add(el.multiply(slope, el.subtract(x, x0)), f0)  # NumPy's: slope * (x - xp[j]) + fp[j]
        result = el.where(flat, f1, result)
        result = el.where(el.equal(x, xp[-1]), fp[-1], result)
    if period is None:
        result = el.where(el.less(x, xp[0]), fp[0] if left is None else left, result)
        result = el.where(el.greater(x, xp[-1]), fp[-1] if right is None else right, result)
    return result


@public
def polyval(p, x, *, unroll=16):
    """p[0] x^(n-1) + ... + p[n-1], by Horner's rule, as numpy.polyval (JAX's `unroll` is
    accepted: the loop is always unrolled, p's length being static)."""
    (p,), _, _ = operands("polyval", p)
    (x,), _, _ = operands("polyval", x)
    if aval_of(p).ndim != 1:  # NumPy iterates over p
        raise TypeError(at_user_line(f"polyval: p must be 1-d coefficients, got {aval_of(p).str_short()}"))
    dtype, weak = result_type(aval_of(p), aval_of(x), name="polyval")
    p, x = convert(p, dtype, weak), convert(x, dtype, weak)
    p_shape = aval_of(p).shape
    y = zeros_like(x)  # NumPy's start: 0 of x's dtype, promoted by the first coefficient
    for i in range(p_shape[0]):
        y = el.add(el.multiply(y, x), getitem(p, i))
    return y


@public
def cross(a, b, axisa=-1, axisb=-1, axisc=-1, axis=None):
    """The cross product of 2- or 3-component vectors along the given axes, as numpy.cross."""
    (a,), _, _ = operands("cross", a)
    (b,), _, _ = operands("cross", b)
    if axis is not None:
        axisa = axisb = axisc = axis
    a = moveaxis(a, normalize_axis(axisa, aval_of(a).ndim), -1)
    b = moveaxis(b, normalize_axis(axisb, aval_of(b).ndim), -1)
    na, nb = aval_of(a).shape[-1], aval_of(b).shape[-1]
    if na not in (2, 3) or nb not in (2, 3):
        raise ValueError(at_user_line("cross: incompatible dimensions for cross product "
                                      "(dimension must be 2 or 3)"))
    ax, ay, az = (a[..., i] if i < na else None for i in range(3))
    bx, by, bz = (b[..., i] if i < nb else None for i in range(3))
    z = _minus(_times(ax, by), _times(ay, bx))
    if na == 2 and nb == 2:
        return z
    x = _minus(_times(ay, bz), _times(az, by))
    y = _minus(_times(az, bx), _times(ax, bz))
    (x, y, z), _, _ = operands("cross", x, y, z)
    out = stack([x, y, z], axis=-1)
    return moveaxis(out, -1, normalize_axis(axisc, aval_of(out).ndim))


def _times(p, q):
    """p q, where None stands for a missing third component (0)."""
    return None if p is None or q is None else el.multiply(p, q)


def _minus(p, q):
    if q is None:
        return p
    return el.negative(q) if p is None else el.subtract(p, q)


@public
def select(condlist, choicelist, default=0):
    """The choice of the first condition that holds, elementwise (`default` where none does)."""
    condlist, choicelist = list(condlist), list(choicelist)
    if len(condlist) != len(choicelist):
        raise ValueError(at_user_line("select: list of cases must be same length as list of conditions"))
    if not condlist:
        raise ValueError(at_user_line("select with an empty condition list is not possible"))
    for c in condlist:
        if aval_of(operands("select", c)[0][0]).dtype.kind != "b":
            raise TypeError(at_user_line("select: invalid entry in condlist: should be boolean ndarray"))
    (*choices, default), _, _ = operands("select", *choicelist, default)
    result = default
    for cond, choice in zip(reversed(condlist), reversed(choices), strict=True):
        result = el.where(cond, choice, result)
    return result


@public
def piecewise(x, condlist, funclist, *args, **kw):
    """numpy.piecewise: funclist[i] (a function of x, or a value) where condlist[i]
    holds, later conditions winning; one more function is the 'otherwise'. Each function
    is evaluated on the whole of x (as JAX's), then selected."""
    (x,), dtype, _ = operands("piecewise", x)
    if not isinstance(condlist, (list, tuple)):  # one condition, as an array
        condlist = [condlist]
    condlist = list(condlist)
    funclist = list(funclist)
    if len(funclist) == len(condlist) + 1:
        otherwise = el.logical_not(_any(stack([broadcast_to(c, aval_of(x).shape) for c in condlist]), axis=0)) \
            if condlist else True
        condlist.append(otherwise)
    elif len(funclist) != len(condlist):
        raise ValueError(at_user_line(f"piecewise: with {len(condlist)} condition(s), either {len(condlist)} or "
                                      f"{len(condlist) + 1} functions are expected"))
    result = zeros_like(x)
    for cond, fun in zip(condlist, funclist, strict=True):
        value = fun(x, *args, **kw) if callable(fun) else fun
        result = el.where(cond, convert(operands("piecewise", value)[0][0], dtype), result)
    return result



@public
def trapezoid(y, x=None, dx=1.0, axis=-1):
    """The integral of y along `axis` by the trapezoidal rule, as numpy.trapezoid: at the points x (of
    y's shape, or 1-d along axis), else spaced dx apart."""
    (y,), _, _ = operands("trapezoid", y)
    y = moveaxis(y, axis, -1)
    pairs = el.add(getitem(y, (Ellipsis, slice(1, None))), getitem(y, (Ellipsis, slice(None, -1))))
    if x is None:
        return el.multiply(_sum(el.multiply(pairs, 0.5), axis=-1), dx)
    (x,), _, _ = operands("trapezoid", x)
    if aval_of(x).ndim > 1:
        x = moveaxis(x, axis, -1)
    steps = el.subtract(getitem(x, (Ellipsis, slice(1, None))), getitem(x, (Ellipsis, slice(None, -1))))
    return _sum(el.multiply(el.multiply(pairs, steps), 0.5), axis=-1)


# -------------------- polynomial arithmetic (coefficients highest power first, as NumPy's) --------------------

def _coefficients(name, p):
    (p,), _, _ = operands(name, p)
    if aval_of(p).ndim != 1:
        raise ValueError(at_user_line(f"{name}: coefficients must be 1-d, got {aval_of(p).str_short()}"))
    return p


def _padded_front(p, length):
    n = aval_of(p).shape[0]
    if n == length:
        return p
    return concatenate([zeros_like(broadcast_to(getitem(p, 0), (length - n,))), p])


@public
def polyadd(a1, a2):
    """The sum of two polynomials, as numpy.polyadd: the shorter padded with leading zeros."""
    a1, a2 = _coefficients("polyadd", a1), _coefficients("polyadd", a2)
    length = max(aval_of(a1).shape[0], aval_of(a2).shape[0])
    return el.add(_padded_front(a1, length), _padded_front(a2, length))


@public
def polysub(a1, a2):
    """The difference of two polynomials, as numpy.polysub."""
    a1, a2 = _coefficients("polysub", a1), _coefficients("polysub", a2)
    length = max(aval_of(a1).shape[0], aval_of(a2).shape[0])
    return el.subtract(_padded_front(a1, length), _padded_front(a2, length))


@public
def polymul(a1, a2):
    """The product of two polynomials (the convolution of their coefficients), as numpy.polymul."""
    return convolve(_coefficients("polymul", a1), _coefficients("polymul", a2))


@public
def polyder(p, m=1):
    """The m-th derivative of a polynomial, as numpy.polyder (a constant's has no coefficients)."""
    p = _coefficients("polyder", p)
    if not isinstance(m, int) or m < 0:
        raise ValueError(at_user_line(f"polyder: the order of the derivative must be a non-negative int, got {m!r}"))
    for _ in range(m):
        n = aval_of(p).shape[0]
        p = el.multiply(getitem(p, slice(0, max(n - 1, 0))), np.arange(n - 1, 0, -1))
    return p


@public
def polyint(p, m=1, k=None):
    """The m-th antiderivative of a polynomial, as numpy.polyint: the integration constants k (a scalar
    for each of the m integrations, or a list of m; 0 by default), the first of k the innermost's."""
    p = _coefficients("polyint", p)
    if not isinstance(m, int) or m < 0:
        raise ValueError(at_user_line(f"polyint: the order of the antiderivative must be a non-negative int, got {m!r}"))
    constants = [0] * m if k is None else (list(k) if isinstance(k, (list, tuple, np.ndarray)) else [k] * m)
    if len(constants) != m:
        raise ValueError(at_user_line(f"polyint: k must have the length of m ({m}), got {len(constants)}"))
    p = el.multiply(p, 1.0)  # (as NumPy's: the coefficients become floats)
    for constant in constants:
        n = aval_of(p).shape[0]
        p = concatenate([el.true_divide(p, np.arange(n, 0, -1)), el.add(zeros_like(getitem(p, slice(0, 1))),
                                                                       constant)])
    return p


# -------------------- windows (static lengths, NumPy's values) --------------------

def _window(name, numpy_window):
    @public
    def fun(M):
        if isinstance(M, bool) or not isinstance(M, (int, np.integer)):
            raise TypeError(at_user_line(f"{name}: M must be an int (the window's length), got {type(M).__name__}"))
        return as_array(numpy_window(int(M)))
    fun.__name__ = fun.__qualname__ = name
    fun.__doc__ = f"The {name} window of M points, as numpy.{name} (M static: the window is a constant)."
    return fun


hamming = _window("hamming", np.hamming)
hanning = _window("hanning", np.hanning)
bartlett = _window("bartlett", np.bartlett)
blackman = _window("blackman", np.blackman)


# -------------------- covariance --------------------

@public
def cov(m, y=None, rowvar=True, bias=False, ddof=None, fweights=None, aweights=None, *, dtype=None):
    """The covariance matrix of the variables in m's rows (rowvar) or columns, and y's, as numpy.cov:
    ddof 1 unless `bias` (0) or given; fweights (integer counts) and aweights (weights) as NumPy's."""
    (m,), m_dtype, _ = operands("cov", m)
    if aval_of(m).ndim > 2:
        raise ValueError(at_user_line(f"cov: m has more than 2 dimensions ({aval_of(m).ndim})"))
    target = np.result_type(m_dtype, np.float64) if dtype is None else np.dtype(dtype)
    x = reshape(m, (1, -1)) if aval_of(m).ndim < 2 else m
    if not rowvar and aval_of(x).shape[0] != 1:
        x = swapaxes(x, 0, 1)
    if y is not None:
        (y,), y_dtype, _ = operands("cov", y)
        target = np.result_type(target, y_dtype)
        y = reshape(y, (1, -1)) if aval_of(y).ndim < 2 else y
        if not rowvar and aval_of(y).shape[0] != 1:
            y = swapaxes(y, 0, 1)
        x = concatenate([convert(x, target), convert(y, target)], axis=0)
    x = convert(x, target)
    if ddof is None:
        ddof = 0 if bias else 1
    n = aval_of(x).shape[1]
    w = None
    for weights, name in ((fweights, "fweights"), (aweights, "aweights")):
        if weights is None:
            continue
        (weights,), _, _ = operands("cov", weights)
        if aval_of(weights).shape != (n,):
            raise ValueError(at_user_line(f"cov: {name} must be 1-d of the observations' number ({n}), "
                                          f"got shape {aval_of(weights).shape}"))
        weights = convert(weights, np.float64)
        w = weights if w is None else el.multiply(w, weights)
    if w is None:
        average_x = average(x, axis=1)
        fact = convert(n - ddof, np.float64)
    else:
        average_x, w_sum = average(x, axis=1, weights=w, returned=True)
        w_sum = getitem(w_sum, 0)
        if ddof == 0:
            fact = w_sum
        elif aweights is None:
            fact = el.subtract(w_sum, ddof)
        else:
            (aw,), _, _ = operands("cov", aweights)
            fact = el.subtract(w_sum, el.true_divide(el.multiply(ddof, _sum(el.multiply(w, aw))), w_sum))
    fact = el.maximum(fact, 0.0)
    centered = el.subtract(x, reshape(average_x, (-1, 1)))
    weighted = centered if w is None else el.multiply(centered, w)
    c = el.true_divide(matmul(weighted, swapaxes(conj(centered), 0, 1)), fact)
    return reshape(c, ()) if aval_of(c).shape == (1, 1) else c


@public
def corrcoef(x, y=None, rowvar=True, *, dtype=None):
    """The correlation coefficients, cov(x, y) / sqrt(outer(its diagonal)), as numpy.corrcoef (the real
    parts clipped to [-1, 1], as NumPy's)."""
    from ftrans.numpy._arrange import diag
    c = cov(x, y, rowvar, dtype=dtype)
    if aval_of(c).ndim == 0:
        return el.true_divide(c, c)
    d = diag(c)
    stddev = el.sqrt(real(d))
    c = el.true_divide(el.true_divide(c, reshape(stddev, (-1, 1))), reshape(stddev, (1, -1)))
    if aval_of(c).dtype.kind == "c":
        return ew.complex(el.clip(real(c), -1, 1), el.clip(imag(c), -1, 1))
    return el.clip(c, -1, 1)
