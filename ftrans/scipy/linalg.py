"""ftrans.scipy.linalg: scipy.linalg's functions as jax.scipy.linalg has them (real and complex matrices)."""
from __future__ import annotations

import numpy as np

from ftrans import lax
from ftrans.numpy import _elementwise as ew
from ftrans.numpy import _reductions as red
from ftrans.numpy import linalg as fla
from ftrans.numpy._core import as_operand, aval_of, convert, inexact_dtype, public, result_type, static_int
from ftrans.numpy._linalg import matmul
from ftrans.numpy._shape import broadcast_to, expand_dims, reshape
from ir.errors import at_user_line
from ir.primitives import decompositions as dec
from ftrans._unavailable import missing_name_hook as _missing_name_hook

__all__ = ["cho_factor", "cho_solve", "cholesky", "det", "eigh", "expm", "inv", "lu", "lu_factor", "lu_solve",
           "qr", "solve", "solve_triangular", "svd"]


def _rhs(b, a, name):
    """b in a's dtype, as a stack of matrices (a 1-D b or one with a's batch dims and one dim less: a vector)."""
    b = as_operand(b)
    dtype = inexact_dtype(result_type(aval_of(a), aval_of(b, name), name=name)[0])  # a real a with a complex b
    a, b = convert(a, dtype), convert(b, dtype)
    vector = aval_of(b).ndim == aval_of(a).ndim - 1
    if vector:
        b = expand_dims(b, -1)
    if aval_of(b).shape[-2] != aval_of(a).shape[-1]:
        raise ValueError(at_user_line(f"{name}: b of shape {aval_of(b).shape} does not fit a of shape "
                                      f"{aval_of(a).shape}"))
    batch = np.broadcast_shapes(aval_of(a).shape[:-2], aval_of(b).shape[:-2])
    return (broadcast_to(a, batch + aval_of(a).shape[-2:]), broadcast_to(b, batch + aval_of(b).shape[-2:]),
            vector)


def _unvector(x, vector):
    return reshape(x, aval_of(x).shape[:-1]) if vector else x


@public
def solve_triangular(a, b, trans=0, lower=False, unit_diagonal=False, overwrite_b=False, debug=None,
                     check_finite=True):
    """x with op(a) x = b, op by `trans`: 0 or 'N' (a), 1 or 'T' (a^T); 2 or 'C' (a^H, a^T for real a)."""
    a = fla._matrix(a, "solve_triangular")
    transpose = {0: False, "N": False, 1: True, "T": True, 2: True, "C": True}.get(trans)
    if transpose is None:
        raise ValueError(at_user_line(f"solve_triangular: trans must be 0, 1, 2, 'N', 'T' or 'C', got {trans!r}"))
    a, b, vector = _rhs(b, a, "solve_triangular")
    x = dec.triangular_solve(a, b, left_side=True, lower=lower, transpose_a=transpose, conjugate_a=trans in (2, "C"),
                             unit_diagonal=unit_diagonal)
    return _unvector(x, vector)


@public
def cholesky(a, lower=False, overwrite_a=False, check_finite=True):
    """SciPy's default: the upper factor U, a = U^H U."""
    return fla.cholesky(a, upper=not lower)


@public
def cho_factor(a, lower=False, overwrite_a=False, check_finite=True):
    """(c, lower): c holds the factor in the triangle `lower` names; the other triangle is zero
    (SciPy leaves it unspecified)."""
    return cholesky(a, lower=lower), lower


@public
def cho_solve(c_and_lower, b, overwrite_b=False, check_finite=True):
    c, lower = c_and_lower
    c = fla._matrix(c, "cho_solve")
    c, b, vector = _rhs(b, c, "cho_solve")
    # a = L L^H: L y = b, then L^H x = y (with U = L^H: U^H y = b, U x = y)
    y = dec.triangular_solve(c, b, left_side=True, lower=lower, transpose_a=not lower, conjugate_a=not lower)
    x = dec.triangular_solve(c, y, left_side=True, lower=lower, transpose_a=lower, conjugate_a=lower)
    return _unvector(x, vector)


def _permutation_matrix(permutation, dtype):
    """P with P[permutation[i], i] = 1, so that a = P L U when a[permutation] = L U."""
    n = aval_of(permutation).shape[-1]
    rows = np.arange(n).reshape(n, 1)
    return convert(ew.equal(expand_dims(permutation, -2), rows), dtype)


@public
def lu(a, permute_l=False, overwrite_a=False, check_finite=True):
    """(p, l, u) with a = p @ l @ u (square matrices), or (p @ l, u) with permute_l."""
    a = fla._matrix(a, "lu")
    lu_, _, permutation = dec.lu(a)
    l = ew.add(dec.tril(lu_, -1), dec.eye_like(lu_))
    u = dec.triu(lu_)
    p = _permutation_matrix(permutation, aval_of(a).dtype)
    return (matmul(p, l), u) if permute_l else (p, l, u)


@public
def lu_factor(a, overwrite_a=False, check_finite=True):
    """(lu, piv): L below lu's diagonal (unit diagonal implied), U on and above; row i was swapped with piv[i]."""
    a = fla._matrix(a, "lu_factor")
    lu_, pivots, _ = dec.lu(a)
    return lu_, pivots


def _permutation_from_pivots(pivots):
    """The permutation the row swaps of `pivots` make (concrete pivots, or traced ones by a loop of selects)."""
    n = aval_of(pivots).shape[-1]
    permutation = broadcast_to(np.arange(n, dtype=np.int32), aval_of(pivots).shape)
    index = np.arange(n, dtype=np.int32)
    for k in range(n):
        p = expand_dims(pivots[..., k], -1)
        at_k = expand_dims(permutation[..., k], -1)
        at_p = red.sum(ew.where(ew.equal(index, p), permutation, 0), axis=-1, keepdims=True, dtype=np.int32)
        permutation = ew.where(ew.equal(index, k), at_p, ew.where(ew.equal(index, p), at_k, permutation))
    return permutation


@public
def lu_solve(lu_and_piv, b, trans=0, overwrite_b=False, check_finite=True):
    lu_, pivots = lu_and_piv
    lu_ = fla._matrix(lu_, "lu_solve")
    if trans not in (0, "N"):
        raise NotImplementedError(at_user_line("lu_solve: only trans=0 is implemented"))
    lu_, b, vector = _rhs(b, lu_, "lu_solve")
    permutation = _permutation_from_pivots(convert(pivots, np.dtype(np.int32)))
    return _unvector(fla.lu_solve_factored(lu_, permutation, b), vector)


@public
def solve(a, b, lower=False, overwrite_a=False, overwrite_b=False, debug=False, check_finite=True,
          assume_a="gen"):
    """x with a x = b: by Cholesky for assume_a='pos', else by LU."""
    if assume_a == "pos":
        return cho_solve(cho_factor(a, lower=lower), b)
    a = fla._matrix(a, "solve")
    a, b, vector = _rhs(b, a, "solve")
    lu_, _, permutation = dec.lu(a)
    return _unvector(fla.lu_solve_factored(lu_, permutation, b), vector)


@public
def inv(a, overwrite_a=False, check_finite=True):
    return fla.inv(a)


@public
def det(a, overwrite_a=False, check_finite=True):
    return fla.det(a)


@public
def eigh(a, b=None, lower=True, eigvals_only=False, overwrite_a=False, overwrite_b=False, turbo=True,
         eigvals=None, type=1, check_finite=True):
    """(w, v), or w with eigvals_only; the standard problem only (b=None)."""
    if b is not None:
        raise NotImplementedError(at_user_line("eigh: the generalized problem (b given) is not implemented"))
    w, v = fla.eigh(a, UPLO="L" if lower else "U", symmetrize_input=False)
    return w if eigvals_only else (w, v)


@public
def svd(a, full_matrices=True, compute_uv=True, overwrite_a=False, check_finite=True, lapack_driver="gesdd"):
    return fla.svd(a, full_matrices=full_matrices, compute_uv=compute_uv)


@public
def qr(a, overwrite_a=False, lwork=None, mode="full", pivoting=False, check_finite=True):
    """mode 'full' (Q m x m), 'economic' (Q m x k) or 'r'."""
    if pivoting:
        raise NotImplementedError(at_user_line("qr: pivoting is not implemented"))
    numpy_mode = {"full": "complete", "economic": "reduced", "r": "r"}.get(mode)
    if numpy_mode is None:
        raise ValueError(at_user_line(f"qr: mode must be 'full', 'economic' or 'r', got {mode!r}"))
    out = fla.qr(a, mode=numpy_mode)
    return (out,) if mode == "r" else tuple(out)


# -------------------- expm --------------------

# Pade approximant of degree 13 (Higham 2005, "The scaling and squaring method for the matrix
# exponential revisited"): b_k of its numerator p(x) (the denominator is p(-x)), and theta_13,
# the largest 1-norm for which it is accurate to double precision without scaling
_PADE_13 = [64764752532480000.0, 32382376266240000.0, 7771770303897600.0, 1187353796428800.0,
            129060195264000.0, 10559470521600.0, 670442572800.0, 33522128640.0, 1323241920.0,
            40840800.0, 960960.0, 16380.0, 182.0, 1.0]
_THETA_13 = 5.371920351148152


@public
def expm(A, *, upper_triangular=False, max_squarings=16):
    """exp(A) by scaling and squaring with a degree-13 Pade approximant, as JAX's: A / 2^s with s from
    A's 1-norm, then s squarings (at most max_squarings; NaN where more would be needed)."""
    A = fla._matrix(A, "expm")
    max_squarings = static_int(max_squarings, "expm", "max_squarings")
    dtype = aval_of(A).dtype
    norm = red.max(red.sum(ew.abs(A), axis=-2), axis=-1)
    # the squarings that bring the 1-norm to theta_13 (0 for a zero matrix: log 0 is -inf; NaN stays)
    s = ew.maximum(0.0, ew.ceil(ew.divide(ew.log(ew.divide(norm, _THETA_13)), np.log(2.0))))
    scaled = ew.divide(A, expand_dims(expand_dims(ew.power(2.0, s), -1), -1))
    identity = broadcast_to(np.eye(aval_of(A).shape[-1], dtype=dtype), aval_of(A).shape)
    a2 = matmul(scaled, scaled)
    a4 = matmul(a2, a2)
    a6 = matmul(a4, a2)
    b = _PADE_13
    u_inner = ew.add(ew.add(ew.multiply(b[13], a6), ew.multiply(b[11], a4)), ew.multiply(b[9], a2))
    u = matmul(scaled, ew.add(ew.add(ew.add(ew.add(matmul(a6, u_inner), ew.multiply(b[7], a6)),
                                            ew.multiply(b[5], a4)), ew.multiply(b[3], a2)),
                              ew.multiply(b[1], identity)))
    v_inner = ew.add(ew.add(ew.multiply(b[12], a6), ew.multiply(b[10], a4)), ew.multiply(b[8], a2))
    v = ew.add(ew.add(ew.add(ew.add(matmul(a6, v_inner), ew.multiply(b[6], a6)), ew.multiply(b[4], a4)),
                      ew.multiply(b[2], a2)), ew.multiply(b[0], identity))
    r = solve(ew.subtract(v, u), ew.add(v, u))
    squarings = convert(ew.where(ew.equal(s, s), ew.minimum(s, max_squarings + 1.0), 0.0), np.dtype(np.int32))
    steps = expand_dims(expand_dims(squarings, -1), -1)

    def square(i, r):
        return ew.where(ew.less(i, steps), matmul(r, r), r)
    r = lax.fori_loop(0, max_squarings, square, r)
    too_many = expand_dims(expand_dims(ew.greater(squarings, max_squarings), -1), -1)
    return ew.where(too_many, np.nan, r)



__getattr__ = _missing_name_hook(__name__)  # a JAX name not ported yet says so
