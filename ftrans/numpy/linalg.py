"""ftrans.numpy.linalg: numpy.linalg's functions (JAX's jnp.linalg), on real and complex matrices.

Decompositions are primitives (ir/primitives/decompositions.py: cholesky,
triangular_solve, lu, eigh, svd, qr, eig, each with JAX's JVP rule); the rest are
compositions of them (solve, inv, det and slogdet through lu; lstsq, pinv, the
spectral norms through svd). Every function maps over leading dimensions, as
NumPy's do. Results are named tuples under NumPy 2's names (EighResult, ...).
Symmetric means Hermitian for complex matrices (cholesky, eigh).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ftrans.numpy import _elementwise as ew
from ftrans.numpy import _reductions as red
from ftrans.numpy._core import (ShapeMismatchError, as_operand, aval_of, convert, inexact_dtype, public,
                                result_type, static_int)
from ftrans.numpy._linalg import matmul
from ftrans.numpy._shape import broadcast_to, expand_dims, reshape, transpose
from ir.core import real_dtype
from ir.errors import at_user_line
from ir.primitives import decompositions as dec
from ftrans._unavailable import missing_name_hook as _missing_name_hook

__all__ = ["cholesky", "det", "eig", "eigh", "eigvals", "eigvalsh", "inv", "lstsq", "matrix_power", "matrix_rank", "norm",
           "pinv", "qr", "slogdet", "solve", "svd", "svdvals"]


class EigResult(NamedTuple):
    eigenvalues: object
    eigenvectors: object


class EighResult(NamedTuple):
    eigenvalues: object
    eigenvectors: object


class SVDResult(NamedTuple):
    U: object
    S: object
    Vh: object


class QRResult(NamedTuple):
    Q: object
    R: object


class SlogdetResult(NamedTuple):
    sign: object
    logabsdet: object


def _matrix(a, name, square=True):
    """`a` as a float or complex array of rank >= 2 (square matrices if `square`)."""
    a = as_operand(a)
    aval = aval_of(a, name)
    if aval.ndim < 2:
        raise ValueError(at_user_line(f"{name}: {aval.ndim}-dimensional array given; array must be at least "
                                      f"two-dimensional"))
    if square and aval.shape[-1] != aval.shape[-2]:
        raise ValueError(at_user_line(f"{name}: last 2 dimensions of the array must be square, got {aval.shape}"))
    dtype = inexact_dtype(aval.dtype)
    return convert(a, dtype) if dtype != aval.dtype or aval.weak_type else a


def _symmetrize(a):
    """(a + a^H) / 2, as JAX's symmetrize_input."""
    return ew.multiply(ew.add(a, dec.adjoint(a)), 0.5)


def _shape(x):
    return aval_of(x).shape


# -------------------- decompositions --------------------

@public
def cholesky(a, *, upper=False, symmetrize_input=True):
    """L with a = L L^H (upper=True: U with a = U^H U). NaN where a is not positive definite, as JAX."""
    a = _matrix(a, "cholesky")
    l = dec.cholesky(_symmetrize(a) if symmetrize_input else a)
    return dec.adjoint(l) if upper else l


@public
def eigh(a, UPLO=None, symmetrize_input=True):
    """Eigenvalues (ascending) and eigenvectors of symmetric matrices. With symmetrize_input
    (JAX's default) the input is (a + a^T) / 2; else the triangle UPLO ('L' or 'U') is read."""
    a = _matrix(a, "eigh")
    if UPLO not in (None, "L", "U"):
        raise ValueError(at_user_line(f"eigh: UPLO must be 'L' or 'U', got {UPLO!r}"))
    if symmetrize_input:
        a = _symmetrize(a)
    elif UPLO == "U":
        a = dec.adjoint(a)  # the primitive reads the lower triangle: a's upper one, mirrored
    v, w = dec.eigh(a)
    return EighResult(w, v)


@public
def eig(a):
    """Eigenvalues and right eigenvectors (columns, unit norm, largest entry real: LAPACK's) of general
    square matrices, always complex, as JAX's (numpy.linalg.eig gives real arrays when they are real).
    Differentiable where the eigenvalues are distinct."""
    a = _matrix(a, "eig")
    w, v = dec.eig(a, compute_left_eigenvectors=False, compute_right_eigenvectors=True)
    return EigResult(w, v)


@public
def eigvals(a):
    a = _matrix(a, "eigvals")
    return dec.eig(a, compute_left_eigenvectors=False, compute_right_eigenvectors=False)[0]


@public
def eigvalsh(a, UPLO="L", symmetrize_input=True):
    return eigh(a, UPLO, symmetrize_input).eigenvalues


@public
def svd(a, full_matrices=True, compute_uv=True, hermitian=False):
    """U, S, Vh with a = U diag(S) Vh (S descending). Differentiable with full_matrices=False
    or square matrices (JAX's limits)."""
    a = _matrix(a, "svd", square=False)
    m, n = _shape(a)[-2:]
    s, u, vt = dec.svd(a, full_matrices=full_matrices and compute_uv and m != n)
    if not compute_uv:
        return s
    return SVDResult(u, s, vt)


@public
def svdvals(x):
    return svd(x, compute_uv=False)


@public
def qr(a, mode="reduced"):
    """Q, R (mode 'reduced' or 'complete'), or R alone (mode 'r')."""
    a = _matrix(a, "qr", square=False)
    if mode not in ("reduced", "complete", "r"):
        raise ValueError(at_user_line(f"qr: unrecognized mode {mode!r} (takes 'reduced', 'complete' or 'r')"))
    m, n = _shape(a)[-2:]
    q, r = dec.qr(a, full_matrices=mode == "complete" and m != n)
    return r if mode == "r" else QRResult(q, r)


# -------------------- solving --------------------

def _broadcast_batch(a, b, name, b_is_vector):
    a_shape, b_shape = _shape(a), _shape(b)
    b_batch = b_shape[:-1] if b_is_vector else b_shape[:-2]
    try:
        batch = np.broadcast_shapes(a_shape[:-2], b_batch)
    except ValueError:
        raise ShapeMismatchError(at_user_line(f"{name}: batch dimensions of {a_shape} and {b_shape} do not "
                                              "broadcast")) from None
    a = broadcast_to(a, batch + a_shape[-2:]) if a_shape[:-2] != batch else a
    tail = b_shape[-1:] if b_is_vector else b_shape[-2:]
    b = broadcast_to(b, batch + tail) if b_batch != batch else b
    return a, b


def lu_solve_factored(lu_, permutation, b):
    """x with a x = b from lu(a) (b a stack of matrices, batch dims equal to lu's)."""
    pb = dec.permute_rows(b, permutation)
    y = dec.triangular_solve(lu_, pb, left_side=True, lower=True, unit_diagonal=True)
    return dec.triangular_solve(lu_, y, left_side=True, lower=False)


@public
def solve(a, b):
    """x with a x = b; b a vector (1-D) or a stack of matrices, batch dims broadcast (NumPy 2's rule)."""
    a = _matrix(a, "solve")
    b = as_operand(b)
    dtype, _ = result_type(aval_of(a), aval_of(b, "solve"), name="solve")
    dtype = inexact_dtype(dtype)
    a, b = convert(a, dtype), convert(b, dtype)
    n = _shape(a)[-1]
    vector = aval_of(b).ndim == 1
    if (_shape(b)[-1] if vector else _shape(b)[-2] if aval_of(b).ndim >= 2 else None) != n:
        raise ShapeMismatchError(at_user_line(f"solve: b of shape {_shape(b)} does not fit a of shape {_shape(a)}"))
    a, b = _broadcast_batch(a, b, "solve", vector)
    if vector:
        b = expand_dims(b, -1)
    lu_, _, permutation = dec.lu(a)
    x = lu_solve_factored(lu_, permutation, b)
    return reshape(x, _shape(x)[:-1]) if vector else x


@public
def inv(a):
    a = _matrix(a, "inv")
    shape = _shape(a)
    identity = broadcast_to(np.eye(shape[-1], dtype=aval_of(a).dtype), shape)
    lu_, _, permutation = dec.lu(a)
    return lu_solve_factored(lu_, permutation, identity)


def _lu_sign_and_diagonal(a):
    lu_, pivots, _ = dec.lu(a)
    n = _shape(a)[-1]
    swaps = red.sum(ew.not_equal(pivots, np.arange(n, dtype=np.int32)), axis=-1)
    parity = ew.subtract(1.0, ew.multiply(2.0, ew.mod(swaps, 2)))
    return convert(parity, aval_of(a).dtype), dec.diagonal(lu_)


@public
def det(a):
    a = _matrix(a, "det")
    parity, diag = _lu_sign_and_diagonal(a)
    return ew.multiply(parity, red.prod(diag, axis=-1))


@public
def slogdet(a):
    """(sign, log |det a|): sign 0 and logabsdet -inf for a singular matrix."""
    a = _matrix(a, "slogdet")
    parity, diag = _lu_sign_and_diagonal(a)
    sign = ew.multiply(parity, red.prod(ew.sign(diag), axis=-1))
    return SlogdetResult(sign, red.sum(ew.log(ew.abs(diag)), axis=-1))


def _default_rtol(a):
    m, n = _shape(a)[-2:]
    return max(m, n) * np.finfo(aval_of(a).dtype).eps


def _cutoff(s, rtol):
    return ew.multiply(rtol, red.max(s, axis=-1, keepdims=True))


@public
def pinv(a, rtol=None, hermitian=False, *, rcond=None):
    """The Moore-Penrose pseudo-inverse, by the SVD: singular values below rtol * max(s) count as 0."""
    a = _matrix(a, "pinv", square=False)
    if rcond is not None:
        rtol = rcond
    rtol = _default_rtol(a) if rtol is None else rtol
    u, s, vt = svd(a, full_matrices=False)
    keep = ew.greater(s, _cutoff(s, rtol))
    s_inv = ew.where(keep, ew.divide(1.0, ew.where(keep, s, 1.0)), 0.0)
    return matmul(dec.adjoint(vt), ew.multiply(expand_dims(s_inv, -1), dec.adjoint(u)))


@public
def matrix_rank(M, rtol=None, *, tol=None):
    M = _matrix(M, "matrix_rank", square=False)
    s = svd(M, compute_uv=False)
    cutoff = tol if tol is not None else _cutoff(s, _default_rtol(M) if rtol is None else rtol)
    return red.sum(ew.greater(s, cutoff), axis=-1)


@public
def lstsq(a, b, rcond=None):
    """(x, residuals, rank, s) minimizing |a x - b|, by the SVD (one matrix a, as NumPy).
    residuals: the squared norms of the columns of a x - b when m > n (else empty)."""
    a = _matrix(a, "lstsq", square=False)
    if aval_of(a).ndim != 2:
        raise ValueError(at_user_line(f"lstsq: a must be a matrix, got shape {_shape(a)}"))
    b = convert(as_operand(b), aval_of(a).dtype)
    vector = aval_of(b).ndim == 1
    m, n = _shape(a)
    if _shape(b)[0] != m:
        raise ShapeMismatchError(at_user_line(f"lstsq: b of shape {_shape(b)} does not fit a of shape {_shape(a)}"))
    u, s, vt = svd(a, full_matrices=False)
    rtol = np.finfo(aval_of(a).dtype).eps * max(m, n) if rcond is None else rcond
    keep = ew.greater(s, _cutoff(s, rtol))
    s_inv = ew.where(keep, ew.divide(1.0, ew.where(keep, s, 1.0)), 0.0)
    b2 = expand_dims(b, -1) if vector else b
    x = matmul(dec.adjoint(vt), ew.multiply(expand_dims(s_inv, -1), matmul(dec.adjoint(u), b2)))
    rank = red.sum(keep)
    if m > n:
        residuals = red.sum(_abs_squared(ew.subtract(matmul(a, x), b2)), axis=0)
    else:
        residuals = np.zeros((0,), real_dtype(aval_of(a).dtype))
    if vector:
        x = reshape(x, (n,))
    return x, residuals, rank, s


@public
def matrix_power(a, n):
    """a^n by repeated squaring (n an int; negative: powers of inv(a))."""
    a = _matrix(a, "matrix_power")
    n = static_int(n, "matrix_power", "n")
    if n == 0:
        return broadcast_to(np.eye(_shape(a)[-1], dtype=aval_of(a).dtype), _shape(a))
    if n < 0:
        a, n = inv(a), -n
    result, power = None, a
    while n:
        if n & 1:
            result = power if result is None else matmul(result, power)
        n >>= 1
        if n:
            power = matmul(power, power)
    return result


# -------------------- norms --------------------

def _abs_squared(x):
    """|x|^2, real for complex x."""
    return ew.square(ew.abs(x)) if aval_of(x).dtype.kind == "c" else ew.multiply(x, x)


def _vector_norm(x, ord, axis, keepdims):
    absolute = ew.abs(x)
    if ord is None or ord == 2:
        return ew.sqrt(red.sum(_abs_squared(x), axis=axis, keepdims=keepdims))
    if ord == np.inf:
        return red.max(absolute, axis=axis, keepdims=keepdims)
    if ord == -np.inf:
        return red.min(absolute, axis=axis, keepdims=keepdims)
    if ord == 0:
        return convert(red.sum(ew.not_equal(x, 0), axis=axis, keepdims=keepdims), real_dtype(aval_of(x).dtype))
    if ord == 1:
        return red.sum(absolute, axis=axis, keepdims=keepdims)
    if isinstance(ord, str):
        raise ValueError(at_user_line(f"norm: invalid order {ord!r} for vectors"))
    p = float(ord)
    return ew.power(red.sum(ew.power(absolute, p), axis=axis, keepdims=keepdims), 1.0 / p)


def _matrix_norm(x, ord, axes, keepdims):
    row, col = axes
    ndim = aval_of(x).ndim
    if ord is None or ord == "fro":
        out = ew.sqrt(red.sum(_abs_squared(x), axis=axes))
    elif ord in (1, -1):
        sums = red.sum(ew.abs(x), axis=row)
        out = (red.max if ord == 1 else red.min)(sums, axis=col - 1 if col > row else col)
    elif ord in (np.inf, -np.inf):
        sums = red.sum(ew.abs(x), axis=col)
        out = (red.max if ord == np.inf else red.min)(sums, axis=row - 1 if row > col else row)
    elif ord in (2, -2, "nuc"):
        moved = [d for d in range(ndim) if d not in axes] + [row, col]
        s = svd(transpose(x, moved), compute_uv=False)
        out = red.sum(s, axis=-1) if ord == "nuc" else (red.max if ord == 2 else red.min)(s, axis=-1)
    else:
        raise ValueError(at_user_line(f"norm: invalid order {ord!r} for matrices"))
    if keepdims:
        out = expand_dims(out, tuple(sorted(axes)))
    return out


@public
def norm(x, ord=None, axis=None, keepdims=False):
    """numpy.linalg.norm: vector norms (ord None/2, 1, inf, -inf, 0, any p) over one axis,
    matrix norms (None/'fro', 'nuc', 1, -1, 2, -2, inf, -inf) over two."""
    x = as_operand(x)
    aval = aval_of(x, "norm")
    if aval.dtype.kind not in "fc":
        x = convert(x, inexact_dtype(aval.dtype))
        aval = aval_of(x)
    ndim = aval.ndim
    if axis is None:
        if ord is None:
            out = ew.sqrt(red.sum(_abs_squared(x)))
            return reshape(out, (1,) * ndim) if keepdims else out
        if ndim == 1:
            axis = 0
        elif ndim == 2:
            axis = (0, 1)
        else:
            raise ValueError(at_user_line("norm: improper number of dimensions to norm (give axis)"))
    if isinstance(axis, (tuple, list)):
        axes = tuple(static_int(a, "norm", "axis") % ndim for a in axis)
        if len(axes) == 1:
            return _vector_norm(x, ord, axes[0], keepdims)
        if len(axes) != 2 or axes[0] == axes[1]:
            raise ValueError(at_user_line(f"norm: axis must name one or two distinct axes, got {axis!r}"))
        return _matrix_norm(x, ord, axes, keepdims)
    return _vector_norm(x, ord, static_int(axis, "norm", "axis") % ndim, keepdims)



__getattr__ = _missing_name_hook(__name__)  # a JAX name not ported yet says so
