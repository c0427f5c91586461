"""Functions of any float array through each decomposition primitive, for the
per-primitive tables (test_autodiff, test_taylor): x moves a fixed well-conditioned
3x3 matrix along a smooth curve, and the decomposition's outputs come back flat
(eigenvector and singular-vector signs fixed by their first entries, as
numpy.linalg's are not unique)."""
import numpy as np

import ftrans.numpy as fnp
from ir.primitives import decompositions as dec

SPD = np.array([[4.0, 1.0, 0.5], [1.0, 3.0, 0.2], [0.5, 0.2, 2.0]])    # eigenvalues apart
GENERAL = np.array([[2.0, 0.5, -1.0], [0.3, 1.5, 0.4], [-0.2, 0.7, 3.0]])
ROTATING = np.array([[1.0, -2.0, 0.3], [2.5, 1.0, 0.5], [0.1, -0.4, 3.0]])  # a complex pair, entries apart
WIDE = np.array([[2.0, 0.5, -1.0, 0.4], [0.3, 1.5, 0.4, -0.6], [-0.2, 0.7, 3.0, 0.1]])
DIRECTION = np.array([[0.3, -0.2, 0.1], [0.4, 0.2, -0.3], [0.1, 0.5, -0.1]])


def matrix_of(x, base=GENERAL, symmetric=False):
    """base + mean(sin x) D / 4 + mean(x^2) D' / 10 (D padded to base's shape, D' it mirrored): a short
    curve, so that the matrix stays well conditioned for x in [-2, 2]."""
    d = np.zeros(base.shape)
    d[:3, :3] = DIRECTION
    m = base + fnp.mean(fnp.sin(x)) * 0.25 * d + fnp.mean(x * x) * 0.1 * np.ascontiguousarray(d[:, ::-1])
    return (m + fnp.transpose(m)) * 0.5 if symmetric else m


def _flat(*xs):
    return fnp.concatenate([fnp.reshape(x, (-1,)) for x in xs])


def _signs_by_first_row(v):
    return v * fnp.sign(v[:1, :])


def cholesky(x):
    return _flat(dec.cholesky(matrix_of(x, SPD, symmetric=True)))


def triangular_solve(x, y):
    a, b = matrix_of(x), matrix_of(y, SPD)
    return _flat(dec.triangular_solve(a, b, left_side=True, lower=True),
                 dec.triangular_solve(a, b, left_side=False, lower=False, transpose_a=True, unit_diagonal=True))


def lu(x):
    return _flat(dec.lu(matrix_of(x))[0])


def eigh(x):
    v, w = dec.eigh(matrix_of(x, SPD, symmetric=True))
    return _flat(_signs_by_first_row(v), w)


def svd(x):
    s, u, vt = dec.svd(matrix_of(x, WIDE))
    return _flat(s, _signs_by_first_row(u), fnp.transpose(_signs_by_first_row(fnp.transpose(vt))))


def qr(x):
    q, r = dec.qr(matrix_of(x, np.concatenate([GENERAL, WIDE[:, :3]])))
    return _flat(q, r)


def eig(x):
    """Real and imaginary parts of the eigenvalues and eigenvectors (a complex pair among them; each
    column's largest entry is at least 0.05 above the next along the whole curve, so LAPACK's
    normalization, which makes it real, is smooth there)."""
    w, v = dec.eig(matrix_of(x, ROTATING), compute_left_eigenvectors=False)
    return _flat(fnp.real(w), fnp.imag(w), fnp.real(v), fnp.imag(v))


FUNCTIONS = {"cholesky": (cholesky, 1), "triangular_solve": (triangular_solve, 2), "lu": (lu, 1),
             "eigh": (eigh, 1), "svd": (svd, 1), "qr": (qr, 1),
             "eig": (eig, 1)}
