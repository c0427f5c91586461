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


def _expm_reference(a):
    """exp(a) by its eigendecomposition (a diagonalizable: a real matrix with distinct eigenvalues)."""
    w, v = np.linalg.eig(a)
    return np.real(v @ np.diag(np.exp(w)) @ np.linalg.inv(v))


def _fix_signs(v):
    return v * np.sign(v[..., :1, :])


L, S = fnp.linalg, fsp.linalg
# name -> (ftrans function, reference, args, differentiable)
ROWS = {
    "numpy.linalg.cholesky": (L.cholesky, np.linalg.cholesky, (SPD,), True),
    "numpy.linalg.det": (L.det, np.linalg.det, (A,), True),
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
        np.testing.assert_allclose(np.asarray(g, np.float64), np.asarray(w, np.float64), rtol=rtol, atol=atol)


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
