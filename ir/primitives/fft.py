"""The fast Fourier transform: one primitive, `fft[fft_type fft_lengths]`, as JAX's lax.fft.

It transforms the trailing len(fft_lengths) axes of its operand (the others
are batch axes): "FFT" and "IFFT" complex to complex (IFFT with NumPy's 1/n),
"RFFT" real to the halved complex spectrum (last axis n // 2 + 1), "IRFFT" that
spectrum back to real values of the lengths given. ftrans.numpy.fft moves the
axes it is asked for to the end, pads or crops to `n`, and scales for `norm`.

Every type is linear. Transposes pair c with t as Re(c t), as JAX's do (and so
as its complex gradients): the DFT matrix is symmetric, so FFT and IFFT are
their own transposes; RFFT's is the real part of the FFT of its cotangent
zero-padded to the full length (the transpose of "FFT, then keep the first
n // 2 + 1 entries"), computed as an IRFFT; IRFFT's is JAX's: the conjugate of RFFT of the
cotangent, the entries that stand for two (all but the zero frequency and, for
even n, the Nyquist one) doubled, all scaled by 1/n.
"""
from __future__ import annotations

import math

import numpy as np

from ir.core import ShapedArray, array_module, complex_dtype, real_dtype
from ir.markers import Zero, not_mapped
from ir.primitive import OneOf, Primitive, TupleOf, POSITIVE_INT
from ir.primitives import elementwise as ew
from ir.primitives import structural
from ir.primitives.ad_util import linear_jvp
from ir.primitives.batch_util import move_dim
from ir.primitives.taylor_util import taylor_from_jvp
from ir.tracing import bind, get_aval

FFT_TYPES = ("FFT", "IFFT", "RFFT", "IRFFT")


def _fft_abstract_eval(x, *, fft_type, fft_lengths):
    k = len(fft_lengths)
    if not 1 <= k <= 3 or k > x.ndim:
        raise TypeError(f"fft: {len(fft_lengths)} transformed axes (1 to 3, at most the rank) for {x.str_short()}")
    lead, tail = x.shape[:x.ndim - k], tuple(x.shape[x.ndim - k:])
    if fft_type in ("FFT", "IFFT"):
        if x.dtype.kind != "c" or tail != fft_lengths:
            raise TypeError(f"fft: {fft_type} of lengths {fft_lengths} needs a complex operand ending in those "
                            f"dimensions, got {x.str_short()}")
        return ShapedArray(x.shape, x.dtype)
    if fft_type == "RFFT":
        if x.dtype.kind != "f" or x.dtype.itemsize < 4 or tail != fft_lengths:
            raise TypeError(f"fft: RFFT of lengths {fft_lengths} needs a float32 or float64 operand ending in "
                            f"those dimensions, got {x.str_short()}")
        return ShapedArray(lead + fft_lengths[:-1] + (fft_lengths[-1] // 2 + 1,), complex_dtype(x.dtype))
    halved = fft_lengths[:-1] + (fft_lengths[-1] // 2 + 1,)
    if x.dtype.kind != "c" or tail != halved:
        raise TypeError(f"fft: IRFFT of lengths {fft_lengths} needs a complex operand ending in {halved}, "
                        f"got {x.str_short()}")
    return ShapedArray(lead + fft_lengths, real_dtype(x.dtype))


def _fft_impl(x, *, fft_type, fft_lengths):
    xp = array_module(x)
    x = xp.asarray(x)
    axes = tuple(range(x.ndim - len(fft_lengths), x.ndim))
    out_dtype = _fft_abstract_eval(ShapedArray(x.shape, x.dtype), fft_type=fft_type, fft_lengths=fft_lengths).dtype
    if fft_type == "FFT":
        out = xp.fft.fftn(x, axes=axes)
    elif fft_type == "IFFT":
        out = xp.fft.ifftn(x, axes=axes)
    elif fft_type == "RFFT":
        out = xp.fft.rfftn(x, axes=axes)
    else:
        out = xp.fft.irfftn(x, s=fft_lengths, axes=axes)
    return out.astype(out_dtype, copy=False)  # NumPy's pocketfft keeps float32, older ones gave complex128


def fft(x, fft_type, fft_lengths):
    return bind(fft_p, x, fft_type=fft_type, fft_lengths=tuple(fft_lengths))


def _rfft_transpose(ct, fft_lengths):
    """Re(FFT(ct zero-padded along the last axis to n)), the transpose of FFT-then-crop, computed by an
    IRFFT (a real-output transform: about a third of the full complex FFT's time): the sum over the kept
    entries of Re(ct_j e^(-i theta j)) is N irfft(y), y = conj(ct) with the entries irfft counts twice
    (all but the zero frequency and an even n's Nyquist one) halved."""
    aval = get_aval(ct)
    m, odd = aval.shape[-1], fft_lengths[-1] % 2
    # the weights from an iota, not an array constant: the program prints without constants
    index = structural.iota(np.int64, aval.shape, aval.ndim - 1)
    counted_once = ew.eq(index, np.int64(0))
    if not odd:
        counted_once = ew.bitwise_or(counted_once, ew.eq(index, np.int64(m - 1)))
    total = math.prod(fft_lengths)
    part = real_dtype(aval.dtype).type
    weights = ew.select_n(counted_once, part(total / 2), part(total))
    # the parts weighted one by one: a complex product with (w + 0j) would make inf * 0 = nan of an inf part
    y = ew.complex(ew.mul(ew.real(ct), weights), ew.neg(ew.mul(ew.imag(ct), weights)))
    return fft(y, "IRFFT", fft_lengths)


def _irfft_transpose(ct, fft_lengths):
    """JAX's: conj(RFFT(ct) * mask / n), mask 2 on the entries that stand for a pair of frequencies."""
    x = fft(ct, "RFFT", fft_lengths)
    aval = get_aval(x)
    m, odd = aval.shape[-1], fft_lengths[-1] % 2
    mask = np.concatenate([[1.0], np.full(m - 2 + odd, 2.0), np.ones(1 - odd)]) / math.prod(fft_lengths)
    mask = structural.broadcast_in_dim(np.asarray(mask, aval.dtype), aval.shape, (aval.ndim - 1,))
    return ew.conj(ew.mul(x, mask))


def _fft_transpose(ct, x, *, fft_type, fft_lengths):
    if type(ct) is Zero:
        return [None]
    if fft_type == "RFFT":
        return [_rfft_transpose(ct, fft_lengths)]
    if fft_type == "IRFFT":
        return [_irfft_transpose(ct, fft_lengths)]
    return [fft(ct, fft_type, fft_lengths)]  # the DFT matrix is symmetric


def _fft_batch(args, dims, *, fft_type, fft_lengths):
    (x,), (d,) = args, dims
    if d is not_mapped:
        return fft(x, fft_type, fft_lengths), not_mapped
    return fft(move_dim(x, d, 0), fft_type, fft_lengths), 0  # the leading axes are batch axes already


fft_p = Primitive("fft", params={"fft_type": OneOf(*FFT_TYPES),
                                 "fft_lengths": TupleOf(POSITIVE_INT, max_length=3)},
                  abstract_eval=_fft_abstract_eval, impl=_fft_impl, linear_in=(0,),
                  transpose=_fft_transpose, batch=_fft_batch)
fft_p.define(jvp=linear_jvp(fft_p), taylor=taylor_from_jvp(fft_p))
