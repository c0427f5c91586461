"""Matrix decompositions and triangular solves: cholesky, triangular_solve, lu, eigh, svd, qr, eig.

Each acts on the last two axes and maps over any leading ones (their batch rule
moves the batch axis to the front). The JVP rules are JAX's
(jax/_src/lax/linalg.py): Cholesky's from Murray (arXiv:1602.07527), eigh's and
svd's by first-order perturbation (so degenerate eigen- or singular values give
infinite or NaN tangents, as JAX's), QR's from Townsend's note. Each takes real
and complex matrices (complex ones Hermitian where the decomposition needs it), with
JAX's complex rules: conjugate transposes in place of transposes, and the gauge
terms JAX adds (svd's dU, qr's diagonal). eig (general matrices, complex results)
is JAX's too for its eigenvalues, and differentiates its eigenvectors as well,
normalized as LAPACK normalizes them. Implementations
use numpy.linalg where it has the decomposition; a matrix it cannot decompose
(not positive definite, NaN entries) gives NaNs, as JAX's do, not an error.
Taylor rules are the jet of the JVP rule (every rule is written with
differentiable primitives, so derivatives of any order follow).
"""
from __future__ import annotations

import numpy as np

from ir.core import ShapedArray, array_module, complex_dtype, is_cupy_array, real_dtype
from ir.markers import Zero, not_mapped, tangent_aval
from ir.primitive import BOOL, Primitive
from ir.primitives import structural
from ir.primitives.ad_util import is_undefined, scalar_like
from ir.primitives.batch_util import bdim_to
from ir.primitives import elementwise as ew
from ir.primitives.elementwise import (add, conj, convert_element_type, div, eq, ge, imag, le, mul, neg, real,
                                      select_n, sub)
from ir.primitives.linalg import dot_general
from ir.primitives.taylor_util import taylor_from_derivative
from ir.tracing import bind, get_aval

# -------------------- helpers written with primitives (what the rules use) --------------------


def _c(x, value):
    return scalar_like(x, value)


def matrix_transpose(x):
    ndim = get_aval(x).ndim
    return structural.transpose(x, tuple(range(ndim - 2)) + (ndim - 1, ndim - 2))


def _is_complex(x):
    return get_aval(x).dtype.kind == "c"


def adjoint(x):
    """The conjugate transpose of each matrix (the transpose of a real one)."""
    t = matrix_transpose(x)
    return conj(t) if _is_complex(t) else t


def _as_dtype_of(x, like):
    """x (real) in like's dtype: what a complex rule multiplies by real factors."""
    dtype = get_aval(like).dtype
    return x if get_aval(x).dtype == dtype else convert_element_type(x, dtype)


def matmul(a, b):
    """a @ b over the last two axes, with equal leading (batch) axes."""
    nb = get_aval(a).ndim - 2
    return dot_general(a, b, (((nb + 1,), (nb,)), (tuple(range(nb)), tuple(range(nb)))))


def _index_grid(x, k):
    """(rows, cols + k compared): iota masks of x's shape for the triangles."""
    aval = get_aval(x)
    rows = structural.iota(np.int64, aval.shape, aval.ndim - 2)
    cols = structural.iota(np.int64, aval.shape, aval.ndim - 1)
    return rows, cols if k == 0 else sub(cols, np.int64(k))


def tril(x, k=0):
    """x with the entries above the k-th diagonal zeroed."""
    rows, cols = _index_grid(x, k)
    return select_n(ge(rows, cols), _c(x, 0), x)


def triu(x, k=0):
    rows, cols = _index_grid(x, k)
    return select_n(le(rows, cols), _c(x, 0), x)


def symmetric_from_lower(x):
    """The symmetric (Hermitian, for complex x) matrix whose lower triangle is x's: what cholesky and eigh
    read of their operand (as LAPACK, they ignore the imaginary part of a complex diagonal)."""
    if not _is_complex(x):
        return add(tril(x), matrix_transpose(tril(x, -1)))
    strictly_lower = tril(x, -1)
    real_diagonal = _as_dtype_of(real(mul(x, eye_like(x))), x)
    return add(add(strictly_lower, real_diagonal), adjoint(strictly_lower))


def eye_like(x):
    """The identity, broadcast to x's shape (square matrices)."""
    rows, cols = _index_grid(x, 0)
    return select_n(eq(rows, cols), _c(x, 0), _c(x, 1))


def diagonal(x):
    """The diagonal of each (square) matrix: x's shape without its last axis."""
    return _reduce_last(mul(x, eye_like(x)))


def _reduce_last(x):
    return bind(_reduce_sum_p(), x, axes=(get_aval(x).ndim - 1,))


def _reduce_rows(x):
    """The sum over each matrix's rows (axis -2): one value per column."""
    return bind(_reduce_sum_p(), x, axes=(get_aval(x).ndim - 2,))


def _reduce_sum_p():
    from ir.primitive import PRIMITIVES
    return PRIMITIVES["reduce_sum"]


def _expand_last(v, shape):
    """A vector per matrix (shape[:-1]) as a row broadcast over the matrix: v[..., None, :]."""
    ndim = len(shape)
    return structural.broadcast_in_dim(v, shape, tuple(range(ndim - 2)) + (ndim - 1,))


def _expand_rows(v, shape):
    """v[..., :, None] broadcast over the matrix."""
    ndim = len(shape)
    return structural.broadcast_in_dim(v, shape, tuple(range(ndim - 1)))


# -------------------- shared declarations --------------------

def _matrix_aval(name, a, square=True):
    if a.dtype.kind not in "fc":
        raise TypeError(f"{name} needs a floating-point or complex operand, got {a.str_short()}")
    if a.ndim < 2:
        raise TypeError(f"{name} needs a matrix (rank >= 2), got {a.str_short()}")
    if square and a.shape[-1] != a.shape[-2]:
        raise TypeError(f"{name} needs square matrices, got {a.str_short()}")


def _batch_leading(prim):
    """Batch rule: the batch axis moved to the front; every operand then has it
    (an unbatched one broadcast), and so does every output."""
    def batch(values, dims, **params):
        size = next(get_aval(x).shape[d] for x, d in zip(values, dims, strict=True) if d is not not_mapped)
        operands = [bdim_to(x, d, size, 0) for x, d in zip(values, dims, strict=True)]
        out = bind(prim, *operands, **params)
        return (out, [0] * len(out)) if prim.multiple_results else (out, 0)
    return batch


def _nan_where_failed(fun, a, outs_like):
    """numpy.linalg's `fun` over a stack of matrices, with NaN results for the ones it
    cannot decompose (NaN entries, not positive definite, no convergence): JAX's behaviour.
    A matrix with an inf or NaN entry never reaches LAPACK, whose SVD can loop forever on one."""
    xp = array_module(a)
    finite = xp.isfinite(a).all(axis=(-2, -1))
    if finite.all():
        try:
            with np.errstate(all="ignore"):
                return fun(a)
        except np.linalg.LinAlgError:
            pass
    flat = a.reshape((-1,) + a.shape[-2:])
    results = []
    for matrix, is_finite in zip(flat, finite.reshape(-1)):
        if not is_finite:
            results.append(tuple(xp.full(shape, np.nan, a.dtype) for shape in outs_like(matrix)))
            continue
        try:
            with np.errstate(all="ignore"):
                out = fun(matrix)
            results.append(out if isinstance(out, tuple) else (out,))
        except np.linalg.LinAlgError:
            results.append(tuple(xp.full(shape, np.nan, a.dtype) for shape in outs_like(matrix)))
    stacked = [xp.stack([r[i] for r in results]).reshape(a.shape[:-2] + results[0][i].shape)
               for i in range(len(results[0]))]
    return tuple(stacked) if len(stacked) > 1 else stacked[0]


def _real_values(x, dtype):
    """Singular values or eigh's eigenvalues in the real dtype of `dtype` (for a complex matrix
    _nan_where_failed fills a failed one's with complex NaNs)."""
    return (x.real if x.dtype.kind == "c" else x).astype(real_dtype(dtype), copy=False)


def _dtype(a):
    return a.dtype if hasattr(a, "dtype") else np.asarray(a).dtype


def _as_array(a):
    """a as an array numpy.linalg takes: float16 computed in float32 (results go back to a's dtype)."""
    a = array_module(a).asarray(a)
    return a.astype(np.float32) if a.dtype == np.float16 else a


# -------------------- cholesky --------------------

def _cholesky_impl(a):
    dtype, a = _dtype(a), _as_array(a)
    if a.size == 0:
        return a.astype(dtype)
    return _nan_where_failed(np.linalg.cholesky, a, lambda m: [m.shape]).astype(dtype, copy=False)


def _cholesky_abstract_eval(a):
    _matrix_aval("cholesky", a)
    return ShapedArray(a.shape, a.dtype)


def _cholesky_jvp(primals, tangents):
    """L' = L phi(L^-1 A' L^-H), phi: the lower triangle with its diagonal halved."""
    (a,), (a_dot,) = primals, tangents
    l = cholesky(a)
    if type(a_dot) is Zero:
        return l, Zero(get_aval(l))
    a_dot = symmetric_from_lower(a_dot)  # the upper triangle is not read
    l_conj = conj(l) if _is_complex(l) else l
    tmp = triangular_solve(l_conj, a_dot, left_side=False, lower=True, transpose_a=True)
    inner = triangular_solve(l, tmp, left_side=True, lower=True, transpose_a=False)
    phi = mul(tril(inner), sub(_c(inner, 1), mul(_c(inner, 0.5), eye_like(inner))))
    return l, matmul(l, phi)


# NB: reads the lower triangle only (as numpy.linalg.cholesky); ftrans.numpy.linalg symmetrizes first, as JAX
cholesky_p = Primitive("cholesky", params={}, abstract_eval=_cholesky_abstract_eval, impl=_cholesky_impl,
                       jvp=_cholesky_jvp)


def cholesky(a):
    return bind(cholesky_p, a)


# -------------------- triangular_solve --------------------

def _triangle(a, lower, unit_diagonal, xp):
    n = a.shape[-1]
    mask = np.tril(np.ones((n, n), bool)) if lower else np.triu(np.ones((n, n), bool))
    if unit_diagonal:
        mask &= ~np.eye(n, dtype=bool)
    t = xp.where(xp.asarray(mask), a, 0)
    if unit_diagonal:
        t = t + xp.asarray(np.eye(n, dtype=a.dtype))
    return t


def _substitute(t, b, lower):
    """Solve t x = b (t triangular, stacks of matrices) row by row: no error at a zero
    pivot (inf/nan follow, as JAX's)."""
    xp = array_module(t, b)
    n = t.shape[-1]
    x = xp.zeros(np.broadcast_shapes(t.shape[:-2], b.shape[:-2]) + b.shape[-2:], np.result_type(t, b))
    order = range(n) if lower else range(n - 1, -1, -1)
    with np.errstate(all="ignore"):
        for i in order:
            done = slice(0, i) if lower else slice(i + 1, n)
            known = xp.matmul(t[..., i:i + 1, done], x[..., done, :])[..., 0, :]
            x[..., i, :] = (b[..., i, :] - known) / t[..., i, i:i + 1]
    return x


def _triangular_solve_impl(a, b, *, left_side, lower, transpose_a, unit_diagonal):
    xp = array_module(a, b)
    a, b = xp.asarray(a), xp.asarray(b)
    dtype = b.dtype
    # substitution accumulates rounding row after row: float32 and float16 work in float64 (complex64 in complex128)
    work = np.complex128 if dtype.kind == "c" else np.float64
    a, b = a.astype(work, copy=False), b.astype(work, copy=False)
    t = _triangle(a, lower, unit_diagonal, xp)
    if transpose_a:
        t, lower = xp.swapaxes(t, -1, -2), not lower
    if left_side:  # t x = b
        return _substitute(t, b, lower).astype(dtype, copy=False)
    # x t = b  <=>  t^T x^T = b^T
    return xp.swapaxes(_substitute(xp.swapaxes(t, -1, -2), xp.swapaxes(b, -1, -2), not lower), -1, -2).astype(
        dtype, copy=False)


def _triangular_solve_abstract_eval(a, b, *, left_side, lower, transpose_a, unit_diagonal):
    _matrix_aval("triangular_solve", a)
    if b.dtype != a.dtype or b.ndim != a.ndim:
        raise TypeError(f"triangular_solve needs a and b of one dtype and rank, got {a.str_short()} and "
                        f"{b.str_short()}")
    n = a.shape[-1]
    if b.shape[:-2] != a.shape[:-2] or (b.shape[-2] if left_side else b.shape[-1]) != n:
        raise TypeError(f"triangular_solve: b {b.str_short()} does not fit a {a.str_short()} "
                        f"(left_side={left_side})")
    return ShapedArray(b.shape, b.dtype)


def _triangular_solve_jvp(primals, tangents, **params):
    (a, b), (a_dot, b_dot) = primals, tangents
    x = bind(triangular_solve_p, a, b, **params)
    out = None
    if type(b_dot) is not Zero:
        out = bind(triangular_solve_p, a, b_dot, **params)
    if type(a_dot) is not Zero:
        # only the triangle the solve reads has a tangent (not the unit diagonal)
        k = 1 if params["unit_diagonal"] else 0
        a_dot = tril(a_dot, -k) if params["lower"] else triu(a_dot, k)
        op_a_dot = matrix_transpose(a_dot) if params["transpose_a"] else a_dot
        rhs = matmul(op_a_dot, x) if params["left_side"] else matmul(x, op_a_dot)
        term = neg(bind(triangular_solve_p, a, rhs, **params))
        out = term if out is None else add(out, term)
    return x, Zero(get_aval(x)) if out is None else out


def _triangular_solve_transpose(ct, a, b, *, left_side, lower, transpose_a, unit_diagonal):
    if is_undefined(a):
        raise ValueError("triangular_solve is linear in b only")
    if type(ct) is Zero:
        return [None, None]
    return [None, bind(triangular_solve_p, a, ct, left_side=left_side, lower=lower,
                       transpose_a=not transpose_a, unit_diagonal=unit_diagonal)]


triangular_solve_p = Primitive(
    "triangular_solve", params={"left_side": BOOL, "lower": BOOL, "transpose_a": BOOL, "unit_diagonal": BOOL},
    abstract_eval=_triangular_solve_abstract_eval, impl=_triangular_solve_impl, linear_in=(1,),
    jvp=_triangular_solve_jvp, transpose=_triangular_solve_transpose)


def triangular_solve(a, b, *, left_side=False, lower=False, transpose_a=False, conjugate_a=False,
                     unit_diagonal=False):
    """x with op(a) x = b (left_side) or x op(a) = b, op(a) = a, a^T or (conjugate_a) conj(a), a^H;
    a's other triangle is not read. (JAX's defaults: a right-side solve with an upper a.)"""
    if conjugate_a and _is_complex(a):
        a = conj(a)
    return bind(triangular_solve_p, a, b, left_side=left_side, lower=lower, transpose_a=transpose_a,
                unit_diagonal=unit_diagonal)


# -------------------- lu --------------------

def _lu_impl(a):
    """Gaussian elimination with partial pivoting, every matrix of the stack at once:
    (lu, pivots, permutation) as jax.lax.linalg.lu, L's unit diagonal implicit."""
    xp = array_module(a)
    lu = xp.array(a, copy=True)
    n = lu.shape[-1]
    batch = lu.shape[:-2]
    flat = lu.reshape((-1, n, n))
    count = flat.shape[0]
    pivots = xp.zeros((count, n), np.int32)
    permutation = xp.broadcast_to(xp.arange(n, dtype=np.int32), (count, n)).copy()
    rows = xp.arange(count)
    # LAPACK's getrf (and so JAX) pivots a complex column on |re| + |im|
    magnitude = (lambda c: xp.abs(c.real) + xp.abs(c.imag)) if lu.dtype.kind == "c" else xp.abs
    with np.errstate(all="ignore"):
        for k in range(n):
            p = k + xp.argmax(magnitude(flat[:, k:, k]), axis=1)
            pivots[:, k] = p
            row_k, row_p = flat[rows, k].copy(), flat[rows, p].copy()
            flat[rows, k], flat[rows, p] = row_p, row_k
            perm_k, perm_p = permutation[rows, k].copy(), permutation[rows, p].copy()
            permutation[rows, k], permutation[rows, p] = perm_p, perm_k
            if k + 1 < n:
                flat[:, k + 1:, k] /= flat[:, k:k + 1, k]
                flat[:, k + 1:, k + 1:] -= flat[:, k + 1:, k:k + 1] * flat[:, k:k + 1, k + 1:]
    return [flat.reshape(lu.shape), pivots.reshape(batch + (n,)), permutation.reshape(batch + (n,))]


def _lu_abstract_eval(a):
    _matrix_aval("lu", a)
    index = ShapedArray(a.shape[:-1], np.dtype(np.int32))
    return [ShapedArray(a.shape, a.dtype), index, index]


def _lu_jvp(primals, tangents):
    """As JAX: with P A = L U, L^-1 P A' U^-1 = L^-1 L' + U' U^-1 splits into its
    strictly lower part (L's) and its upper part (U's)."""
    (a,), (a_dot,) = primals, tangents
    lu_, pivots, permutation = lu(a)
    outs = [lu_, pivots, permutation]
    zeros = [Zero(tangent_aval(get_aval(pivots))), Zero(tangent_aval(get_aval(permutation)))]
    if type(a_dot) is Zero:
        return outs, [Zero(get_aval(lu_))] + zeros
    x = permute_rows(a_dot, permutation)
    l = add(tril(lu_, -1), eye_like(lu_))
    u = triu(lu_)
    la = triangular_solve(l, x, left_side=True, lower=True, unit_diagonal=True)
    lau = triangular_solve(u, la, left_side=False, lower=False)
    lu_dot = add(matmul(l, tril(lau, -1)), matmul(triu(lau), u))
    return outs, [lu_dot] + zeros


def permute_rows(x, permutation):
    """x[..., permutation, :] per matrix: a one-hot matrix (from the permutation) times x."""
    aval = get_aval(x)
    n = aval.shape[-2]
    shape = aval.shape[:-2] + (n, n)
    cols = structural.iota(np.int32, shape, len(shape) - 1)
    chosen = _expand_rows(permutation, shape)
    one_hot = select_n(eq(cols, chosen), _c(x, 0), _c(x, 1))
    return matmul(one_hot, x)


lu_p = Primitive("lu", params={}, abstract_eval=_lu_abstract_eval, impl=_lu_impl, multiple_results=True,
                 jvp=_lu_jvp)


def lu(a):
    """(lu, pivots, permutation): P A = L U, L unit lower (below lu's diagonal), U upper,
    A[permutation] = P A; pivots[k] the row swapped with row k at step k (int32, as JAX)."""
    return bind(lu_p, a)


# -------------------- eigh --------------------

def _eigh_impl(a):
    dtype, a = _dtype(a), _as_array(a)
    n = a.shape[-1]
    if a.size == 0:
        return [a.astype(dtype), array_module(a).zeros(a.shape[:-1], real_dtype(dtype))]
    w, v = _nan_where_failed(np.linalg.eigh, a, lambda m: [(n,), (n, n)])
    return [v.astype(dtype, copy=False), _real_values(w, dtype)]


def _eigh_abstract_eval(a):
    _matrix_aval("eigh", a)
    return [ShapedArray(a.shape, a.dtype), ShapedArray(a.shape[:-1], real_dtype(a.dtype))]


def _eigh_jvp(primals, tangents):
    """w' = Re diag(V^H A' V); V' = V (F * V^H A' V), F_ij = 1 / (w_j - w_i) off the diagonal, 0 on it
    (inf where two eigenvalues are equal, as JAX's). A complex V' keeps diag(V^H V') = 0, JAX's gauge: a
    function of complex eigenvectors has a derivative where it does not depend on their phases."""
    (a,), (a_dot,) = primals, tangents
    v, w = eigh(a)
    if type(a_dot) is Zero:
        return [v, w], [Zero(get_aval(v)), Zero(get_aval(w))]
    a_dot = symmetric_from_lower(a_dot)  # the upper triangle is not read
    shape = get_aval(v).shape
    gaps = sub(_expand_last(w, shape), _expand_rows(w, shape))
    identity = eye_like(gaps)
    f = _as_dtype_of(sub(div(_c(w, 1), add(identity, gaps)), identity), v)
    vh_adot_v = matmul(matmul(adjoint(v), a_dot), v)
    w_dot = diagonal(vh_adot_v)
    return [v, w], [matmul(v, mul(f, vh_adot_v)), real(w_dot) if _is_complex(w_dot) else w_dot]


# NB: reads the lower triangle (numpy's UPLO='L'); ftrans.numpy.linalg symmetrizes first, as JAX
eigh_p = Primitive("eigh", params={}, abstract_eval=_eigh_abstract_eval, impl=_eigh_impl, multiple_results=True,
                   jvp=_eigh_jvp)


def eigh(a):
    """(v, w): eigenvectors (columns) and eigenvalues in ascending order, JAX's order of outputs."""
    return bind(eigh_p, a)


# -------------------- svd --------------------

def _svd_impl(a, *, full_matrices):
    dtype, a = _dtype(a), _as_array(a)
    m, n = a.shape[-2:]
    k = min(m, n)
    um, vn = (m, n) if full_matrices else (k, k)
    if a.size == 0:
        xp = array_module(a)
        eye = lambda size, cols: xp.broadcast_to(xp.eye(size, cols, dtype=dtype), a.shape[:-2] + (size, cols))
        return [xp.zeros(a.shape[:-2] + (k,), real_dtype(dtype)), eye(m, um).copy(), eye(vn, n).copy()]
    u, s, vt = _nan_where_failed(lambda x: np.linalg.svd(x, full_matrices=full_matrices), a,
                                 lambda x: [(m, um), (k,), (vn, n)])
    return [_real_values(s, dtype), u.astype(dtype, copy=False), vt.astype(dtype, copy=False)]


def _svd_abstract_eval(a, *, full_matrices):
    _matrix_aval("svd", a, square=False)
    m, n = a.shape[-2:]
    k = min(m, n)
    batch = a.shape[:-2]
    um, vn = (m, n) if full_matrices else (k, k)
    return [ShapedArray(batch + (k,), real_dtype(a.dtype)), ShapedArray(batch + (m, um), a.dtype),
            ShapedArray(batch + (vn, n), a.dtype)]


def _svd_jvp(primals, tangents, *, full_matrices):
    """JAX's rule: ds = Re diag(U^H dA V), and dU, dV from F_ij = 1 / (s_j^2 - s_i^2); for complex
    matrices dU also gets JAX's term for the phases, i Im(dS_ii) / s_i on the diagonal of U^H dU."""
    (a,), (a_dot,) = primals, tangents
    s, u, vt = svd(a, full_matrices=full_matrices)
    if type(a_dot) is Zero:
        return [s, u, vt], [Zero(get_aval(s)), Zero(get_aval(u)), Zero(get_aval(vt))]
    if full_matrices:
        raise NotImplementedError("the derivative of svd with full_matrices=True (as in JAX)")
    m, n = get_aval(a).shape[-2:]
    ut, v = adjoint(u), adjoint(vt)
    ds_mat = matmul(matmul(ut, a_dot), v)
    ds = diagonal(ds_mat)
    square = get_aval(ds_mat).shape
    s_row, s_col = _expand_last(s, square), _expand_rows(s, square)
    identity = eye_like(s_row)
    s_diffs = mul(add(s_row, s_col), sub(s_row, s_col))
    f = _as_dtype_of(sub(div(_c(s, 1), add(s_diffs, identity)), identity), a)
    dss = mul(_as_dtype_of(s_row, a), ds_mat)
    sds = mul(_as_dtype_of(s_col, a), ds_mat)
    du_inner = mul(f, add(dss, adjoint(dss)))
    if _is_complex(a):
        ds = real(ds)
        s_zeros = _as_dtype_of(eq(s, _c(s, 0)), s)
        s_inv = sub(div(_c(s, 1), add(s, s_zeros)), s_zeros)  # 1 / s, 0 where s is 0
        phases = mul(mul(sub(ds_mat, adjoint(ds_mat)), _c(ds_mat, 0.5)),
                     _as_dtype_of(mul(_expand_last(s_inv, square), identity), a))
        du_inner = add(du_inner, phases)
    du = matmul(u, du_inner)
    dv = matmul(v, mul(f, add(sds, adjoint(sds))))
    if m > n:
        dav = matmul(a_dot, v)
        rest = sub(dav, matmul(u, matmul(ut, dav)))
        du = add(du, div(rest, _as_dtype_of(_expand_last(s, get_aval(rest).shape), a)))
    if n > m:
        dahu = matmul(adjoint(a_dot), u)
        rest = sub(dahu, matmul(v, matmul(vt, dahu)))
        dv = add(dv, div(rest, _as_dtype_of(_expand_last(s, get_aval(rest).shape), a)))
    return [s, u, vt], [ds, du, adjoint(dv)]


svd_p = Primitive("svd", params={"full_matrices": BOOL}, abstract_eval=_svd_abstract_eval, impl=_svd_impl,
                  multiple_results=True, jvp=_svd_jvp)


def svd(a, full_matrices=False):
    """(s, u, vt): a = u diag(s) vt, s descending (JAX's order of outputs)."""
    return bind(svd_p, a, full_matrices=full_matrices)


# -------------------- qr --------------------

def _qr_impl(a, *, full_matrices):
    dtype, a = _dtype(a), _as_array(a)
    q, r = np.linalg.qr(a, mode="complete" if full_matrices else "reduced")
    return [q.astype(dtype, copy=False), r.astype(dtype, copy=False)]


def _qr_abstract_eval(a, *, full_matrices):
    _matrix_aval("qr", a, square=False)
    m, n = a.shape[-2:]
    k = m if full_matrices else min(m, n)
    batch = a.shape[:-2]
    return [ShapedArray(batch + (m, k), a.dtype), ShapedArray(batch + (k, n), a.dtype)]


def _qr_jvp(primals, tangents, *, full_matrices):
    """JAX's rule (Townsend): with C = Q^H dA R^-1 and O = tril(C, -1) - tril(C, -1)^H,
    dQ = Q (O - C) + dA R^-1 and dR = (C - O) R; for complex matrices O also holds i Im(C_ii) on its
    diagonal (as JAX's), so that R's diagonal stays real, as LAPACK makes it."""
    (a,), (a_dot,) = primals, tangents
    q, r = qr(a, full_matrices=full_matrices)
    if type(a_dot) is Zero:
        return [q, r], [Zero(get_aval(q)), Zero(get_aval(r))]
    m, n = get_aval(a).shape[-2:]
    if m < n or (full_matrices and m != n):
        raise NotImplementedError("the derivative of qr of a wide matrix, or complete with m > n (as in JAX)")
    dx_rinv = triangular_solve(r, a_dot)  # dA R^-1
    qt_dx_rinv = matmul(adjoint(q), dx_rinv)
    lower = tril(qt_dx_rinv, -1)
    do = sub(lower, adjoint(lower))
    if _is_complex(a):
        imaginary_diagonal = sub(qt_dx_rinv, _as_dtype_of(real(qt_dx_rinv), qt_dx_rinv))
        do = add(do, mul(eye_like(do), imaginary_diagonal))
    dq = add(matmul(q, sub(do, qt_dx_rinv)), dx_rinv)
    dr = matmul(sub(qt_dx_rinv, do), r)
    return [q, r], [dq, dr]


qr_p = Primitive("qr", params={"full_matrices": BOOL}, abstract_eval=_qr_abstract_eval, impl=_qr_impl,
                 multiple_results=True, jvp=_qr_jvp)


def qr(a, full_matrices=False):
    return bind(qr_p, a, full_matrices=full_matrices)


# -------------------- eig --------------------

def _lapack_normalized(v, xp):
    """Columns scaled to unit 2-norm, their largest entry (the first of equal ones) real and positive
    for complex columns: LAPACK's geev's normalization (so numpy.linalg.eig's and JAX's)."""
    v = v / xp.linalg.norm(v, axis=-2, keepdims=True)
    largest = xp.take_along_axis(v, xp.argmax(xp.abs(v), axis=-2)[..., None, :], axis=-2)
    return v * (xp.conj(largest) / xp.abs(largest))


def _eig_impl(a, *, compute_left_eigenvectors, compute_right_eigenvectors):
    """numpy.linalg.eig (LAPACK's geev): on the host for CuPy arrays, since CuPy has no general
    eigensolver. Left eigenvectors are the rows of V^-1, conjugated and normalized as geev's."""
    on_device = is_cupy_array(a)
    xp_out = array_module(a)
    host = a.get() if on_device else np.asarray(a)
    dtype = complex_dtype(host.dtype)
    host = _as_array(host)
    n = host.shape[-1]
    if host.size == 0:
        w, v = np.zeros(host.shape[:-1], dtype), np.zeros(host.shape, dtype)
    else:
        w, v = _nan_where_failed(np.linalg.eig, host, lambda m: [(n,), (n, n)])
        w, v = w.astype(dtype, copy=False), v.astype(dtype, copy=False)
    outs = [w]
    if compute_left_eigenvectors:
        with np.errstate(all="ignore"):
            # a NaN (failed) or defective V has no inverse: NaN left eigenvectors, not an error
            vl = np.conj(np.swapaxes(_nan_where_failed(np.linalg.inv, v, lambda m: [m.shape]), -1, -2)) \
                if v.size else v
            outs.append(_lapack_normalized(vl, np).astype(dtype, copy=False) if v.size else vl)
    if compute_right_eigenvectors:
        outs.append(v)
    return [xp_out.asarray(x) for x in outs] if on_device else outs


def _eig_abstract_eval(a, *, compute_left_eigenvectors, compute_right_eigenvectors):
    _matrix_aval("eig", a)
    dtype = complex_dtype(a.dtype)
    vectors = [ShapedArray(a.shape, dtype)] * (int(compute_left_eigenvectors) + int(compute_right_eigenvectors))
    return [ShapedArray(a.shape[:-1], dtype)] + vectors


def _solve(a, b):
    """x with a x = b (square a, matrices b): the LU factorization and two triangular solves."""
    lu_, _, permutation = lu(a)
    y = triangular_solve(lu_, permute_rows(b, permutation), left_side=True, lower=True, unit_diagonal=True)
    return triangular_solve(lu_, y, left_side=True, lower=False)


def _eig_jvp(primals, tangents, *, compute_left_eigenvectors, compute_right_eigenvectors):
    """JAX's eigenvalue rule (Giles, eq. 4.60 of arXiv:1701.00392): w' = diag(V^-1 A' V). Eigenvectors
    (which JAX does not differentiate): V' = V (F * V^-1 A' V), F_ij = 1 / (w_j - w_i) off the diagonal
    and 0 on it, then each column's multiple of itself set so that it keeps LAPACK's normalization:
    unit norm (Re v^H v' = 0) and its largest entry real (Im v'_j = 0). Equal eigenvalues give
    infinite or NaN tangents, as eigh's."""
    if compute_left_eigenvectors:
        raise NotImplementedError("the derivative of eig's left eigenvectors (JAX differentiates none of "
                                  "eig's eigenvectors; ftrans its eigenvalues and right eigenvectors)")
    (a,), (a_dot,) = primals, tangents
    w, v = eig(a, compute_left_eigenvectors=False, compute_right_eigenvectors=True)
    outs = [w, v] if compute_right_eigenvectors else [w]
    if type(a_dot) is Zero:
        return outs, [Zero(get_aval(x)) for x in outs]
    vinv_adot_v = _solve(v, matmul(_as_dtype_of(a_dot, v), v))
    w_dot = diagonal(vinv_adot_v)
    if not compute_right_eigenvectors:
        return outs, [w_dot]
    shape = get_aval(v).shape
    identity = eye_like(v)
    gaps = sub(_expand_last(w, shape), _expand_rows(w, shape))
    f = sub(div(_c(v, 1), add(identity, gaps)), identity)
    v_dot = matmul(v, mul(f, vinv_adot_v))
    norm_part = real(_reduce_rows(mul(conj(v), v_dot)))
    largest = _largest_entry_mask(v)
    phase_part = imag(div(_reduce_rows(mul(v_dot, largest)), _reduce_rows(mul(v, largest))))
    v_dot = sub(v_dot, mul(v, _expand_last(ew.complex(norm_part, phase_part), shape)))
    return outs, [w_dot, v_dot]


def _largest_entry_mask(v):
    """1 at each column's largest entry in magnitude (the first of equal ones, as LAPACK), 0 elsewhere."""
    from ir.primitives.reductions import argmax  # reductions' module imports come after this one's
    aval = get_aval(v)
    rows = structural.iota(np.int64, aval.shape, aval.ndim - 2)
    largest = _expand_last(argmax(ew.abs(v), aval.ndim - 2), aval.shape)
    return select_n(eq(rows, largest), _c(v, 0), _c(v, 1))


eig_p = Primitive("eig", params={"compute_left_eigenvectors": BOOL, "compute_right_eigenvectors": BOOL},
                  abstract_eval=_eig_abstract_eval, impl=_eig_impl, multiple_results=True, jvp=_eig_jvp)


def eig(a, *, compute_left_eigenvectors=True, compute_right_eigenvectors=True):
    """[w, vl, vr] as jax.lax.linalg.eig (vl, vr only as asked): the eigenvalues, in LAPACK's order, and
    left and right eigenvectors (columns: vl^H a = w vl^H, a vr = vr w), all complex."""
    return bind(eig_p, a, compute_left_eigenvectors=compute_left_eigenvectors,
                compute_right_eigenvectors=compute_right_eigenvectors)


for _prim in (cholesky_p, triangular_solve_p, lu_p, eigh_p, svd_p, qr_p, eig_p):
    _prim.define(batch=_batch_leading(_prim), taylor=taylor_from_derivative(_prim))
del _prim
