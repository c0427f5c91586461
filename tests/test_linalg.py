"""ftrans.numpy.linalg and ftrans.scipy.linalg: one row per public name (a name without a row fails),
each against numpy.linalg or a closed form, eager and under jit, vmap against a loop, and check_grads
to order 2 where the function is differentiable."""
import numpy as np
import pytest

import ftrans as ft
import ftrans.numpy as fnp
import ftrans.scipy as fsp

RNG = np.random.default_rng(0)
A = RNG.normal(size=(3, 3)) + 3 * np.eye(3)          # well conditioned, distinct singular values
SPD = A @ A.T + np.eye(3)                            # distinct eigenvalues
TALL = RNG.normal(size=(4, 3))
B = RNG.normal(size=(3, 2))
V = RNG.normal(size=3)
LOWER = np.tril(A)


def _p_l_u(a):
    """P, L, U with a = P L U, by Doolittle with partial pivoting (closed-form reference for lu)."""
    n = a.shape[0]
    u, perm = a.astype(float).copy(), list(range(n))
    l = np.zeros((n, n))
    for k in range(n):
        p = k + int(np.argmax(np.abs(u[k:, k])))
        u[[k, p]], l[[k, p]], perm[k], perm[p] = u[[p, k]], l[[p, k]], perm[p], perm[k]
        l[k + 1:, k] = u[k + 1:, k] / u[k, k]
        u[k + 1:] -= np.outer(l[k + 1:, k], u[k])
    p_matrix = np.zeros((n, n))
    p_matrix[perm, range(n)] = 1
    return p_matrix, l + np.eye(n), np.triu(u)


def _expm_reference(a, complex_result=False):
    """exp(a) by its eigendecomposition (a diagonalizable: a matrix with distinct eigenvalues)."""
    w, v = np.linalg.eig(a)
    out = v @ np.diag(np.exp(w)) @ np.linalg.inv(v)
    return out if complex_result else np.real(out)


def _fix_signs(v):
    return v * np.sign(v[..., :1, :])


L, S = fnp.linalg, fsp.linalg
# name -> (ftrans function, reference, args, differentiable)
ROWS = {
    "numpy.linalg.cholesky": (L.cholesky, np.linalg.cholesky, (SPD,), True),
    "numpy.linalg.det": (L.det, np.linalg.det, (A,), True),
    "numpy.linalg.eig": (lambda a: list(L.eig(a)), lambda a: list(np.linalg.eig(a)), (A,), True),
    "numpy.linalg.eigvals": (L.eigvals, np.linalg.eigvals, (A,), True),
    "numpy.linalg.eigh": (lambda a: [L.eigh(a)[0], _fix_signs(L.eigh(a)[1])],
                          lambda a: [np.linalg.eigh(a)[0], _fix_signs(np.linalg.eigh(a)[1])], (SPD,), True),
    "numpy.linalg.eigvalsh": (L.eigvalsh, np.linalg.eigvalsh, (SPD,), True),
    "numpy.linalg.inv": (L.inv, np.linalg.inv, (A,), True),
    "numpy.linalg.lstsq": (lambda a, b: L.lstsq(a, b)[0], lambda a, b: np.linalg.lstsq(a, b)[0], (TALL, V @ TALL.T),
                           True),
    "numpy.linalg.matrix_power": (lambda a: L.matrix_power(a, 3) + L.matrix_power(a, -2),
                                  lambda a: np.linalg.matrix_power(a, 3) + np.linalg.matrix_power(a, -2), (A,), True),
    "numpy.linalg.matrix_rank": (L.matrix_rank, np.linalg.matrix_rank, (TALL @ TALL.T,), False),
    "numpy.linalg.norm": (lambda a: fnp.stack([L.norm(a, o) for o in (None, "fro", "nuc", 1, -1, 2, -2, np.inf)]
                                              + [L.norm(a, o, axis=0)[0] for o in (None, 1, 3, np.inf)]),
                          lambda a: np.stack([np.linalg.norm(a, o) for o in (None, "fro", "nuc", 1, -1, 2, -2, np.inf)]
                                             + [np.linalg.norm(a, o, axis=0)[0] for o in (None, 1, 3, np.inf)]),
                          (A,), False),
    "numpy.linalg.pinv": (L.pinv, np.linalg.pinv, (TALL,), True),
    "numpy.linalg.qr": (lambda a: list(L.qr(a)), lambda a: list(np.linalg.qr(a)), (TALL,), True),
    "numpy.linalg.slogdet": (lambda a: list(L.slogdet(a)), lambda a: list(np.linalg.slogdet(a)), (A,), True),
    "numpy.linalg.solve": (L.solve, np.linalg.solve, (A, B), True),
    "numpy.linalg.svd": (lambda a: [L.svd(a, full_matrices=False)[1], _fix_signs(L.svd(a, full_matrices=False)[0])],
                         lambda a: [np.linalg.svd(a)[1], _fix_signs(np.linalg.svd(a, full_matrices=False)[0])],
                         (TALL,), True),
    "numpy.linalg.svdvals": (L.svdvals, lambda a: np.linalg.svd(a, compute_uv=False), (TALL,), True),
    "scipy.linalg.cho_factor": (lambda a: S.cho_factor(a, lower=True)[0], np.linalg.cholesky, (SPD,), True),
    "scipy.linalg.cho_solve": (lambda a, b: S.cho_solve(S.cho_factor(a), b), np.linalg.solve, (SPD, B), True),
    "scipy.linalg.cholesky": (S.cholesky, lambda a: np.linalg.cholesky(a).T, (SPD,), True),
    "scipy.linalg.det": (S.det, np.linalg.det, (A,), True),
    "scipy.linalg.eigh": (lambda a: S.eigh(a, eigvals_only=True), np.linalg.eigvalsh, (SPD,), True),
    "scipy.linalg.expm": (S.expm, _expm_reference, (A * 0.5,), True),
    "scipy.linalg.inv": (S.inv, np.linalg.inv, (A,), True),
    "scipy.linalg.lu": (lambda a: list(S.lu(a)), lambda a: list(_p_l_u(a)), (A,), True),
    "scipy.linalg.lu_factor": (lambda a: S.lu_factor(a)[0],
                               lambda a: np.tril(_p_l_u(a)[1], -1) + _p_l_u(a)[2], (A,), True),
    "scipy.linalg.lu_solve": (lambda a, b: S.lu_solve(S.lu_factor(a), b), np.linalg.solve, (A, B), True),
    "scipy.linalg.qr": (lambda a: S.qr(a, mode="economic")[1], lambda a: np.linalg.qr(a)[1], (TALL,), True),
    "scipy.linalg.solve": (lambda a, b: S.solve(a, b) + S.solve(a @ a.T, b, assume_a="pos"),
                           lambda a, b: np.linalg.solve(a, b) + np.linalg.solve(a @ a.T, b), (A, B), True),
    "scipy.linalg.solve_triangular": (lambda a, b: S.solve_triangular(a, b, lower=True)
                                      + S.solve_triangular(a.T, b, trans="T"),
                                      lambda a, b: 2 * np.linalg.solve(np.tril(a), b), (LOWER, B), True),
    "scipy.linalg.svd": (lambda a: S.svd(a, compute_uv=False), lambda a: np.linalg.svd(a, compute_uv=False),
                         (TALL,), True),
}


def test_every_public_name_has_a_row():
    names = {f"numpy.linalg.{n}" for n in fnp.linalg.__all__} | {f"scipy.linalg.{n}" for n in fsp.linalg.__all__}
    assert names == set(ROWS), (sorted(names - set(ROWS)), sorted(set(ROWS) - names))


def _close(got, want, rtol=1e-10, atol=1e-10):
    got_leaves, want_leaves = ft.tree_util.tree_leaves(got), ft.tree_util.tree_leaves(want)
    assert len(got_leaves) == len(want_leaves)
    for g, w in zip(got_leaves, want_leaves, strict=True):
        dtype = np.complex128 if np.iscomplexobj(g) or np.iscomplexobj(w) else np.float64
        np.testing.assert_allclose(np.asarray(g, dtype), np.asarray(w, dtype), rtol=rtol, atol=atol)


@pytest.mark.parametrize("name", sorted(ROWS))
def test_eager_and_jit_match_the_reference(name):
    fun, reference, args, _ = ROWS[name]
    _close(fun(*args), reference(*args))
    _close(ft.jit(fun)(*args), fun(*args), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", sorted(ROWS))
def test_vmap_matches_a_loop(name):
    fun, _, args, _ = ROWS[name]
    perturbed = [[a * (1 + 0.01 * k) for a in args] for k in range(3)]
    batched = [np.stack([p[i] for p in perturbed]) for i in range(len(args))]
    want = [fun(*p) for p in perturbed]
    got = ft.vmap(fun)(*batched)
    for k in range(3):
        _close(ft.tree_util.tree_map(lambda x: x[k], got), want[k])


@pytest.mark.parametrize("name", sorted(n for n, row in ROWS.items() if row[3]))
def test_check_grads_to_order_2(name):
    fun, _, args, _ = ROWS[name]
    ft.check_grads(fun, args, order=2, modes=("fwd", "rev"), atol=1e-5, rtol=1e-5)


def test_batched_leading_dimensions_as_numpy():
    stack = RNG.normal(size=(2, 2, 3, 3)) + 3 * np.eye(3)
    _close(L.inv(stack), np.linalg.inv(stack))
    _close(L.det(stack), np.linalg.det(stack))
    b = RNG.normal(size=(2, 1, 3, 2))  # batch dims broadcast, as NumPy's
    _close(L.solve(stack, b), np.linalg.solve(stack, np.broadcast_to(b, (2, 2, 3, 2))))
    spd = stack @ np.swapaxes(stack, -1, -2)
    _close(L.cholesky(spd), np.linalg.cholesky(spd))
    _close(L.eigh(spd)[0], np.linalg.eigh(spd)[0])


def test_non_positive_definite_cholesky_is_nan_as_jax():
    assert np.isnan(L.cholesky(-np.eye(2))).all()


def test_degenerate_eigenvalues_give_jax_s_derivatives():
    """eigh at the identity: eigenvalue tangents finite, eigenvector tangents not (JAX's rule)."""
    (w, v), (w_dot, v_dot) = ft.jvp(L.eigh, (np.eye(2),), (np.array([[1.0, 2.0], [2.0, 3.0]]),))
    assert np.isfinite(w_dot).all() and not np.isfinite(v_dot).all()


def test_bad_input_errors_name_the_function():
    with pytest.raises(ValueError, match="square"):
        L.inv(np.ones((2, 3)))
    with pytest.raises(ValueError, match="two-dimensional"):
        L.det(np.ones(3))
    with pytest.raises(ValueError, match="mode"):
        L.qr(A, mode="bad")
    with pytest.raises(ValueError, match="order"):
        L.norm(A, "bad")


def test_expm_takes_as_many_squarings_as_the_norm_needs_and_nan_past_max_squarings():
    rotation = np.array([[0.0, 1.0], [-1.0, 0.0]]) * 40.0  # 1-norm 40: 3 squarings
    want = np.array([[np.cos(40), np.sin(40)], [-np.sin(40), np.cos(40)]])
    _close(S.expm(rotation), want, rtol=1e-11, atol=1e-11)
    assert np.isnan(S.expm(np.eye(2) * 1e6)).all()  # 2^18 > 2^16: as JAX's max_squarings


# -------------------- complex matrices: against numpy, check_grads, and the complex conventions --------------------

def _complex(*shape):
    return RNG.normal(size=shape) + 1j * RNG.normal(size=shape)


CA = _complex(3, 3) + 3 * np.eye(3)
HPD = CA @ CA.conj().T + np.eye(3)                   # Hermitian positive definite, distinct eigenvalues
CTALL = _complex(4, 3)
CB = _complex(3, 2)


def _hermitian(a):
    return (a + fnp.conj(fnp.swapaxes(a, -1, -2))) / 2


def _phase_free(v):
    """|v|^2 entrywise: eigen- and singular vectors of complex matrices are unique up to a phase per column."""
    return fnp.abs(v) ** 2


# name -> (ftrans function, numpy reference, args); every one checked against numpy, under jit, and by check_grads
COMPLEX_ROWS = {
    "cholesky": (L.cholesky, np.linalg.cholesky, (HPD,)),
    "eigh": (lambda a: [L.eigh(a)[0], _phase_free(L.eigh(a)[1])],
             lambda a: [np.linalg.eigh(a)[0], np.abs(np.linalg.eigh(a)[1]) ** 2], (HPD,)),
    "eigh_upper": (lambda a: L.eigh(a, UPLO="U", symmetrize_input=False)[0], lambda a: np.linalg.eigh(a, "U")[0],
                   (HPD,)),
    "eig": (lambda a: list(L.eig(a)), lambda a: list(np.linalg.eig(a)), (CA,)),
    "eigvals": (L.eigvals, np.linalg.eigvals, (CA,)),
    "svd": (lambda a: [L.svd(a, full_matrices=False)[1], _phase_free(L.svd(a, full_matrices=False)[0]),
                       L.svd(a, full_matrices=False)[0] @ L.svd(a, full_matrices=False)[2]],
            lambda a: [np.linalg.svd(a)[1], np.abs(np.linalg.svd(a, full_matrices=False)[0]) ** 2,
                       np.linalg.svd(a, full_matrices=False)[0] @ np.linalg.svd(a, full_matrices=False)[2]],
            (CTALL,)),
    "svd_wide": (lambda a: L.svd(a, full_matrices=False)[0] @ L.svd(a, full_matrices=False)[2],
                 lambda a: np.linalg.svd(a, full_matrices=False)[0] @ np.linalg.svd(a, full_matrices=False)[2],
                 (CTALL.T,)),
    "qr": (lambda a: list(L.qr(a)), lambda a: list(np.linalg.qr(a)), (CTALL,)),
    "inv": (L.inv, np.linalg.inv, (CA,)),
    "solve": (L.solve, np.linalg.solve, (CA, CB)),
    "det": (L.det, np.linalg.det, (CA,)),
    "slogdet": (lambda a: list(L.slogdet(a)), lambda a: list(np.linalg.slogdet(a)), (CA,)),
    "pinv": (L.pinv, np.linalg.pinv, (CTALL,)),
    "norm": (lambda a: fnp.stack([L.norm(a, o) for o in (None, "nuc", 1, 2, np.inf)]),
             lambda a: np.stack([np.linalg.norm(a, o) for o in (None, "nuc", 1, 2, np.inf)]), (CA,)),
    "lu": (lambda a: list(S.lu(a)), lambda a: list(_p_l_u_complex(a)), (CA,)),
    "solve_triangular": (lambda a, b: S.solve_triangular(a, b, lower=True) + S.solve_triangular(a, b, trans="C"),
                         lambda a, b: np.linalg.solve(np.tril(a), b) + np.linalg.solve(np.triu(a).conj().T, b),
                         (CA, CB)),
    "cho_solve": (lambda a, b: S.cho_solve(S.cho_factor(a), b) + S.cho_solve(S.cho_factor(a, lower=True), b),
                  lambda a, b: 2 * np.linalg.solve(a, b), (HPD, CB)),
    "expm": (S.expm, lambda a: _expm_reference(a, complex_result=True), (CA * 0.3,)),
}


def _p_l_u_complex(a):
    """P, L, U as LAPACK's getrf gives them for a complex matrix: pivoting on |re| + |im|."""
    n = a.shape[0]
    u, perm, l = a.copy(), list(range(n)), np.zeros((n, n), complex)
    for k in range(n):
        p = k + int(np.argmax(np.abs(u[k:, k].real) + np.abs(u[k:, k].imag)))
        u[[k, p]], l[[k, p]], perm[k], perm[p] = u[[p, k]], l[[p, k]], perm[p], perm[k]
        l[k + 1:, k] = u[k + 1:, k] / u[k, k]
        u[k + 1:] -= np.outer(l[k + 1:, k], u[k])
    p_matrix = np.zeros((n, n))
    p_matrix[perm, range(n)] = 1
    return p_matrix, l + np.eye(n), np.triu(u)


@pytest.mark.parametrize("name", sorted(COMPLEX_ROWS))
def test_complex_matrices_match_numpy_eager_and_under_jit(name):
    fun, reference, args = COMPLEX_ROWS[name]
    _close(fun(*args), reference(*args))
    _close(ft.jit(fun)(*args), fun(*args), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", sorted(COMPLEX_ROWS))
def test_check_grads_on_complex_matrices(name):
    fun, _, args = COMPLEX_ROWS[name]
    ft.check_grads(fun, args, order=2, modes=("fwd", "rev"), atol=1e-5, rtol=1e-5)


def test_complex_matrices_vmap_as_a_loop():
    stack = np.stack([CA * (1 + 0.1j * k) for k in range(3)])
    for fun in (L.eigvals, L.inv, L.det, lambda a: L.svd(a, compute_uv=False), lambda a: L.qr(a)[1]):
        _close(ft.vmap(fun)(stack), np.stack([fun(m) for m in stack]))


def test_complex64_decompositions_keep_their_dtypes():
    a = CA.astype(np.complex64)
    assert L.eig(a).eigenvectors.dtype == np.complex64 and L.eigvals(A.astype(np.float32)).dtype == np.complex64
    assert L.eigh(HPD.astype(np.complex64)).eigenvalues.dtype == np.float32
    assert L.svd(a, compute_uv=False).dtype == np.float32
    _close(L.inv(a), np.linalg.inv(a), rtol=1e-4, atol=1e-4)
    _close(L.cholesky(HPD.astype(np.complex64)), np.linalg.cholesky(HPD), rtol=1e-4, atol=1e-4)


def test_grad_of_a_real_function_of_a_complex_matrix_is_jax_s_conjugate_convention():
    """grad f = df/dx - i df/dy entrywise (the cookbook's convention), which for f = Re g, g holomorphic,
    is g': here f(a) = log |det a| = Re log det a, and (log det)' = inv(a)^T."""
    got = ft.grad(lambda a: L.slogdet(a)[1])(CA)
    _close(got, np.linalg.inv(CA).T)
    # f = |g|^2: the gradient is 2 conj(g) g' (|z|^2's 2 conj(z), by the chain rule), here 2 |det a|^2 inv(a)^T
    _close(ft.grad(lambda a: fnp.abs(L.det(a)) ** 2)(CA), 2 * np.abs(np.linalg.det(CA)) ** 2 * np.linalg.inv(CA).T)
    # and the holomorphic derivative of det: det(a) inv(a)^T
    _close(ft.grad(L.det, holomorphic=True)(CA), np.linalg.det(CA) * np.linalg.inv(CA).T)


# -------------------- eig: what LAPACK's normalization and the left eigenvectors mean --------------------

def test_eig_eigenvectors_are_normalized_as_lapack_and_left_ones_solve_the_left_problem():
    from ir.primitives import decompositions as dec
    for a in (A, CA):
        w, vl, vr = dec.eig(a)
        np.testing.assert_allclose(a @ vr, vr * w, atol=1e-12)
        np.testing.assert_allclose(vl.conj().T @ a, w[:, None] * vl.conj().T, atol=1e-12)
        for v in (vl, vr):
            np.testing.assert_allclose(np.linalg.norm(v, axis=0), 1, rtol=1e-12)
            largest = v[np.argmax(np.abs(v), axis=0), range(3)]
            np.testing.assert_allclose(largest.imag, 0, atol=1e-14)


def test_eigenvalue_derivative_is_jax_s_closed_form():
    """w_i' = (V^-1 A' V)_ii; for a triangular matrix the eigenvalues are the diagonal, so their
    gradient (summed) is the identity."""
    upper = np.triu(A)
    _close(ft.jacfwd(lambda a: fnp.real(fnp.sum(L.eigvals(a))))(upper), np.eye(3))
    t = RNG.normal(size=(3, 3))
    w, v = np.linalg.eig(A)
    _close(ft.jvp(L.eigvals, (A,), (t,))[1], np.diag(np.linalg.solve(v, t @ v)))


def test_eig_of_defective_or_left_eigenvector_derivatives_errors_are_clear():
    from ir.primitives import decompositions as dec
    with pytest.raises(NotImplementedError, match="left eigenvectors"):
        ft.jvp(lambda a: dec.eig(a)[1], (A,), (A,))
    with pytest.raises(ValueError, match="square"):
        L.eig(np.ones((2, 3)))
    with pytest.raises(TypeError, match="eig"):
        from ir.primitives import decompositions as dec
        dec.eig(np.ones((2, 2), np.int32))
    assert np.isnan(L.eigvals(np.array([[np.nan, 1.0], [0.0, 1.0]]))).all()
