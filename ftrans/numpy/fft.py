"""ftrans.numpy.fft: NumPy's discrete Fourier transforms, traceable and differentiable.

Each transform is the `fft` primitive (ir/primitives/fft.py, JAX's lax.fft) on
the axes asked for, moved to the end: `n`/`s` crop or zero-pad them first (for
the inverse real transforms, the halved spectrum), and `norm` ("backward", the
default, "ortho" or "forward") scales as NumPy does. Results have NumPy's
dtypes: complex64 from float32 or complex64, complex128 otherwise.
"""
from __future__ import annotations

import math

import numpy as np

from ftrans.numpy._core import aval_of, convert, normalize_axis, operands, public, static_int
from ftrans.numpy._creation import arange
from ftrans.numpy._shape import concatenate
from ir.core import complex_dtype, real_dtype
from ir.errors import at_user_line
from ir.primitives import elementwise as ew
from ir.primitives import structural
from ir.primitives.fft import fft as _fft
from ftrans._unavailable import missing_name_hook as _missing_name_hook

__all__ = ["fft", "ifft", "rfft", "irfft", "fft2", "ifft2", "rfft2", "irfft2", "fftn", "ifftn", "rfftn", "irfftn",
           "hfft", "ihfft", "fftfreq", "rfftfreq", "fftshift", "ifftshift"]

_NORMS = (None, "backward", "ortho", "forward")


def _as_inexact(name, a, real):
    """`a` as the dtype the transform computes in: complex (real=False) or real floating-point (real=True)."""
    (a,), dtype, weak = operands(name, a)
    if real:
        if dtype.kind == "c":
            raise TypeError(at_user_line(f"{name} takes real input, got {dtype.name} (use fft for complex input)"))
        target = dtype if dtype in (np.float32, np.float64) else np.dtype(np.float64)
    else:
        target = complex_dtype(real_dtype(dtype)) if dtype.kind in "fc" and dtype != np.float16 else (
            np.dtype(np.complex64) if dtype == np.float16 else np.dtype(np.complex128))
    if target != dtype or weak:
        a = convert(a, target)
    if aval_of(a).ndim == 0:
        raise ValueError(at_user_line(f"{name} needs an array of at least one dimension, got a scalar"))
    return a


def _axes_and_sizes(name, a, s, axes, default_axes):
    ndim = aval_of(a).ndim
    if axes is None:
        axes = default_axes(ndim) if s is None else tuple(range(ndim - len(s), ndim))
    axes = tuple(normalize_axis(ax, ndim, "axes") for ax in axes)
    if len(set(axes)) != len(axes):
        raise ValueError(at_user_line(f"{name}: repeated axes {axes}"))
    if s is None:
        sizes = None
    else:
        sizes = tuple(static_int(n, name, "each entry of s") for n in s)
        if len(sizes) != len(axes):
            raise ValueError(at_user_line(f"{name}: s and axes have different lengths ({len(sizes)} and {len(axes)})"))
    if not axes:
        raise ValueError(at_user_line(f"{name}: no axes to transform"))
    return axes, sizes


def _resized(name, x, axis, n):
    """`x` cropped or zero-padded along `axis` to `n` (NumPy's `n`)."""
    if n < 1:
        raise ValueError(at_user_line(f"{name}: invalid number of data points ({n}) specified"))
    aval = aval_of(x)
    have = aval.shape[axis]
    if n < have:
        return structural.slice(x, [0] * aval.ndim, [n if d == axis else m for d, m in enumerate(aval.shape)])
    if n > have:
        config = [(0, n - have if d == axis else 0, 0) for d in range(aval.ndim)]
        return structural.pad(x, aval.dtype.type(0), config)
    return x


def _scale(x, factor):
    return x if factor == 1 else ew.mul(x, convert(factor, aval_of(x).dtype))


def _norm_factor(name, norm, n, inverse):
    """What the unnormalized transform (the inverse one with 1/n) is multiplied by for `norm`."""
    if norm not in _NORMS:
        raise ValueError(at_user_line(f'{name}: invalid norm value {norm!r}; should be "backward", "ortho" or '
                                      f'"forward"'))
    if norm in (None, "backward"):
        return 1
    if norm == "ortho":
        return math.sqrt(n) if inverse else 1 / math.sqrt(n)
    return n if inverse else 1 / n


def _transform(name, a, s, axes, norm, kind, default_axes):
    """The n-dimensional transform `kind` (FFT, IFFT, RFFT, IRFFT) of `a` over `axes`, sizes `s`."""
    a = _as_inexact(name, a, real=kind == "RFFT")
    axes, sizes = _axes_and_sizes(name, a, s, axes, default_axes)
    shape = aval_of(a).shape
    if kind == "IRFFT":
        lengths = list(sizes) if sizes is not None else [shape[ax] for ax in axes[:-1]] + [2 * (shape[axes[-1]] - 1)]
        for ax, n in zip(axes[:-1], lengths[:-1]):
            a = _resized(name, a, ax, n)
        a = _resized(name, a, axes[-1], lengths[-1] // 2 + 1)  # the halved spectrum of the last length
    else:
        lengths = list(sizes) if sizes is not None else [shape[ax] for ax in axes]
        for ax, n in zip(axes, lengths):
            a = _resized(name, a, ax, n)
    inverse = kind in ("IFFT", "IRFFT")
    total = math.prod(lengths)
    factor = _norm_factor(name, norm, total, inverse)
    # one primitive transforms at most 3 trailing axes: more go in groups, the last group last (rfft's halving)
    groups = [tuple(range(max(0, i - 3), i)) for i in range(len(axes), 0, -3)][::-1]
    kinds = [("IFFT" if inverse else "FFT")] * (len(groups) - 1) + [kind]
    if kind == "IRFFT":  # the complex axes first, then the real transform of the last group
        kinds = ["IFFT"] * (len(groups) - 1) + ["IRFFT"]
    elif kind == "RFFT":  # the real transform first: its halved axis is the last one
        groups, kinds = groups[::-1], ["RFFT"] + ["FFT"] * (len(groups) - 1)
    for group, step in zip(groups, kinds, strict=True):
        group_axes = [axes[i] for i in group]
        ndim = aval_of(a).ndim
        order = [d for d in range(ndim) if d not in group_axes] + group_axes  # the transformed axes last
        moved = a if order == list(range(ndim)) else structural.transpose(a, order)
        out = _fft(moved, step, [lengths[i] for i in group])
        a = out if order == list(range(ndim)) else structural.transpose(out, [int(i) for i in np.argsort(order)])
    return _scale(a, factor)


def _last_axis(ndim):
    return (ndim - 1,)


def _last_two_axes(ndim):
    return (ndim - 2, ndim - 1)


def _every_axis(ndim):
    return tuple(range(ndim))


def _one_dimensional(name, kind):
    @public
    def transform(a, n=None, axis=-1, norm=None):
        return _transform(name, a, None if n is None else (n,), (axis,), norm, kind, _last_axis)
    transform.__name__ = transform.__qualname__ = name
    transform.__doc__ = f"numpy.fft.{name}: n, axis and norm as NumPy's."
    return transform


def _n_dimensional(name, kind, default_axes, defaults=None):
    @public
    def transform(a, s=None, axes=defaults, norm=None):
        return _transform(name, a, s, axes, norm, kind, default_axes)
    transform.__name__ = transform.__qualname__ = name
    transform.__doc__ = f"numpy.fft.{name}: s, axes and norm as NumPy's."
    return transform


fft = _one_dimensional("fft", "FFT")
ifft = _one_dimensional("ifft", "IFFT")
rfft = _one_dimensional("rfft", "RFFT")
irfft = _one_dimensional("irfft", "IRFFT")
fft2 = _n_dimensional("fft2", "FFT", _last_two_axes, (-2, -1))
ifft2 = _n_dimensional("ifft2", "IFFT", _last_two_axes, (-2, -1))
rfft2 = _n_dimensional("rfft2", "RFFT", _last_two_axes, (-2, -1))
irfft2 = _n_dimensional("irfft2", "IRFFT", _last_two_axes, (-2, -1))
fftn = _n_dimensional("fftn", "FFT", _every_axis)
ifftn = _n_dimensional("ifftn", "IFFT", _every_axis)
rfftn = _n_dimensional("rfftn", "RFFT", _every_axis)
irfftn = _n_dimensional("irfftn", "IRFFT", _every_axis)


# hfft and ihfft are irfft and rfft of the conjugate with the norm's direction swapped (as NumPy's)
_SWAPPED_NORMS = {None: "forward", "backward": "forward", "ortho": "ortho", "forward": "backward"}


def _swapped(name, norm):
    if norm not in _NORMS:
        _norm_factor(name, norm, 1, False)  # the error for a bad norm
    return _SWAPPED_NORMS[norm]


@public
def hfft(a, n=None, axis=-1, norm=None):
    """numpy.fft.hfft: the real spectrum of a signal with Hermitian symmetry given by its first half."""
    from ftrans.numpy._complex import conj
    return _transform("hfft", conj(a), None if n is None else (n,), (axis,), _swapped("hfft", norm), "IRFFT",
                      _last_axis)


@public
def ihfft(a, n=None, axis=-1, norm=None):
    """numpy.fft.ihfft: the inverse of hfft, the first half of a real signal's (Hermitian) spectrum."""
    from ftrans.numpy._complex import conj
    return conj(_transform("ihfft", a, None if n is None else (n,), (axis,), _swapped("ihfft", norm), "RFFT",
                           _last_axis))


@public
def fftfreq(n, d=1.0):
    """The sample frequencies of fft of n points of spacing d, as numpy.fft.fftfreq."""
    n = static_int(n, "fftfreq", "n")
    if n < 1:
        raise ValueError(at_user_line(f"fftfreq: n must be positive, got {n}"))
    k = np.concatenate([np.arange(0, (n - 1) // 2 + 1), np.arange(-(n // 2), 0)])
    return ew.div(convert(k.astype(np.float64), np.dtype(np.float64)), _spacing_times(n, d, "fftfreq"))


@public
def rfftfreq(n, d=1.0):
    """The sample frequencies of rfft of n points of spacing d, as numpy.fft.rfftfreq."""
    n = static_int(n, "rfftfreq", "n")
    if n < 1:
        raise ValueError(at_user_line(f"rfftfreq: n must be positive, got {n}"))
    return ew.div(arange(n // 2 + 1, dtype=np.float64), _spacing_times(n, d, "rfftfreq"))


def _spacing_times(n, d, name):
    (d,), dtype, _ = operands(name, d)
    if dtype.kind == "c":
        raise TypeError(at_user_line(f"{name}: d must be real, got {dtype.name}"))
    return ew.mul(convert(d, np.dtype(np.float64)), convert(float(n), np.dtype(np.float64)))


def _roll(x, shifts, axes):
    for shift, axis in zip(shifts, axes, strict=True):
        n = aval_of(x).shape[axis]
        shift %= n if n else 1
        if shift:
            ndim = aval_of(x).ndim
            start = [0] * ndim
            limit = list(aval_of(x).shape)
            head_limit = list(limit)
            head_limit[axis] = n - shift
            tail_start = list(start)
            tail_start[axis] = n - shift
            x = concatenate([structural.slice(x, tail_start, limit), structural.slice(x, start, head_limit)], axis)
    return x


def _shift(name, x, axes, inverse):
    (x,), _, _ = operands(name, x)
    ndim = aval_of(x).ndim
    if axes is None:
        axes = tuple(range(ndim))
    elif isinstance(axes, (int, np.integer)):
        axes = (axes,)
    axes = tuple(normalize_axis(ax, ndim, "axes") for ax in axes)
    shape = aval_of(x).shape
    shifts = [-(shape[ax] // 2) if inverse else shape[ax] // 2 for ax in axes]
    return _roll(x, shifts, axes)


@public
def fftshift(x, axes=None):
    """The zero frequency moved to the middle, as numpy.fft.fftshift."""
    return _shift("fftshift", x, axes, inverse=False)


@public
def ifftshift(x, axes=None):
    """The inverse of fftshift, as numpy.fft.ifftshift."""
    return _shift("ifftshift", x, axes, inverse=True)


__getattr__ = _missing_name_hook(__name__)  # a JAX name not ported yet says so
