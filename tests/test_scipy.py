"""ftrans.scipy.special and ftrans.scipy.stats: one row per public name (a name without a row fails),
against closed forms (Python's math module) or SciPy where installed, eager and under jit, vmap against
a loop, and check_grads to order 2."""
import math

import numpy as np
import pytest

import ftrans as ft
import ftrans.scipy as fsp
import special_reference

SP, ST = fsp.special, fsp.stats
X = np.array([0.3, 1.2, 2.5, 4.0])          # positive points
U = np.array([0.1, 0.35, 0.6, 0.9])         # points in (0, 1)
Z = np.array([-2.0, -0.4, 0.3, 1.7])        # real points
M = np.array([[0.5, -1.0, 2.0], [1.5, 0.2, -0.3]])


def _vectorized(f):
    return lambda *xs: np.vectorize(f, otypes=[float])(*xs)


def _scipy(path):
    """A SciPy function, or a skip where SciPy is not installed (an optional reference)."""
    def reference(*args):
        scipy = pytest.importorskip("scipy")
        import scipy.special  # noqa: F401
        import scipy.stats  # noqa: F401
        fun = scipy
        for part in path.split("."):
            fun = getattr(fun, part)
        return fun(*args)
    return reference


_log_normal_pdf = lambda x: -0.5 * x * x - 0.5 * math.log(2 * math.pi)  # noqa: E731
_normal_cdf = lambda x: 0.5 * math.erfc(-x / math.sqrt(2))  # noqa: E731
_COV = np.array([[2.0, 0.3, 0.1], [0.3, 1.0, -0.2], [0.1, -0.2, 1.5]])


def _mvn_reference(x):
    diff = x - np.array([0.1, -0.2, 0.3])
    quad = np.einsum("...i,ij,...j->...", diff, np.linalg.inv(_COV), diff)
    return -0.5 * quad - 0.5 * np.log(np.linalg.det(2 * np.pi * _COV))


# name -> (ftrans function, reference, args)
ROWS = {
    "special.erf": (SP.erf, special_reference.erf, (Z,)),
    "special.erfc": (SP.erfc, special_reference.erfc, (Z,)),
    "special.erfinv": (SP.erfinv, special_reference.erf_inv, (U * 2 - 1,)),
    "special.expit": (SP.expit, lambda x: 1 / (1 + np.exp(-x)), (Z,)),
    "special.logit": (SP.logit, lambda p: np.log(p / (1 - p)), (U,)),
    "special.gammaln": (SP.gammaln, special_reference.lgamma, (X,)),
    "special.digamma": (SP.digamma, special_reference.digamma, (X,)),
    "special.psi": (SP.psi, special_reference.digamma, (X,)),
    "special.polygamma": (lambda x: SP.polygamma(2, x) + SP.polygamma(np.array([0, 1, 1, 3]), x),
                          lambda x: special_reference.polygamma(2, x) + np.array(
                              [special_reference.digamma(x[0]), *special_reference.polygamma(1, x[1:3]),
                               special_reference.polygamma(3, x[3])]), (X,)),
    "special.xlogy": (lambda x, y: SP.xlogy(x, y) + SP.xlogy(0.0, y * 0),
                      lambda x, y: x * np.log(y), (Z, X)),
    "special.xlog1py": (lambda x, y: SP.xlog1py(x, y) + SP.xlog1py(0.0, y * 0 - 1),
                        lambda x, y: x * np.log1p(y), (Z, X)),
    "special.logsumexp": (lambda x: SP.logsumexp(x, axis=1) + SP.logsumexp(x, b=np.array([0.5, 2.0, 1.0])),
                          lambda x: np.log(np.exp(x).sum(1)) + np.log((np.exp(x) * [0.5, 2.0, 1.0]).sum()), (M,)),
    "special.softmax": (lambda x: SP.softmax(x, axis=1), lambda x: np.exp(x) / np.exp(x).sum(1, keepdims=True),
                        (M,)),
    "special.log_softmax": (lambda x: SP.log_softmax(x, axis=0), lambda x: x - np.log(np.exp(x).sum(0)), (M,)),
    "special.betaln": (SP.betaln, _vectorized(lambda a, b: math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)),
                       (X, X[::-1])),
    "special.ndtr": (SP.ndtr, _vectorized(_normal_cdf), (Z,)),
    "special.log_ndtr": (lambda x: SP.log_ndtr(x) + SP.log_ndtr(x - 30),
                         _vectorized(lambda x: math.log(_normal_cdf(x)) + math.log(_normal_cdf(x - 30))), (Z,)),
    "special.ndtri": (SP.ndtri, lambda p: np.sqrt(2) * special_reference.erf_inv(2 * p - 1), (U,)),
    "stats.norm.logpdf": (lambda x: ST.norm.logpdf(x, 0.5, 2.0),
                          _vectorized(lambda x: _log_normal_pdf((x - 0.5) / 2) - math.log(2)), (Z,)),
    "stats.norm.pdf": (ST.norm.pdf, _vectorized(lambda x: math.exp(_log_normal_pdf(x))), (Z,)),
    "stats.norm.cdf": (lambda x: ST.norm.cdf(x, 1.0, 0.5), _vectorized(lambda x: _normal_cdf((x - 1) / 0.5)), (Z,)),
    "stats.norm.logcdf": (ST.norm.logcdf, _vectorized(lambda x: math.log(_normal_cdf(x))), (Z,)),
    "stats.norm.sf": (ST.norm.sf, _vectorized(lambda x: _normal_cdf(-x)), (Z,)),
    "stats.norm.logsf": (ST.norm.logsf, _vectorized(lambda x: math.log(_normal_cdf(-x))), (Z,)),
    "stats.norm.ppf": (lambda q: ST.norm.ppf(q, 1.0, 2.0),
                       lambda q: 1 + 2 * np.sqrt(2) * special_reference.erf_inv(2 * q - 1), (U,)),
    "stats.norm.isf": (ST.norm.isf, lambda q: -np.sqrt(2) * special_reference.erf_inv(2 * q - 1), (U,)),
    "stats.multivariate_normal.logpdf": (lambda x: ST.multivariate_normal.logpdf(x, np.array([0.1, -0.2, 0.3]), _COV),
                                         _mvn_reference, (M,)),
    "stats.multivariate_normal.pdf": (lambda x: ST.multivariate_normal.pdf(x, np.array([0.1, -0.2, 0.3]), _COV),
                                      lambda x: np.exp(_mvn_reference(x)), (M,)),
    "stats.t.logpdf": (lambda x: ST.t.logpdf(x, 3.5, 0.2, 1.5), lambda x: _scipy("stats.t.logpdf")(x, 3.5, 0.2, 1.5),
                       (Z,)),
    "stats.t.pdf": (lambda x: ST.t.pdf(x, 1.0), _vectorized(lambda x: 1 / (math.pi * (1 + x * x))), (Z,)),
    "stats.beta.logpdf": (lambda x: ST.beta.logpdf(x, 2.5, 1.5),
                          _vectorized(lambda x: 1.5 * math.log(x) + 0.5 * math.log(1 - x)
                                      - (math.lgamma(2.5) + math.lgamma(1.5) - math.lgamma(4.0))), (U,)),
    "stats.beta.pdf": (lambda x: ST.beta.pdf(x, 2.0, 2.0), lambda x: 6 * x * (1 - x), (U,)),
    "stats.gamma.logpdf": (lambda x: ST.gamma.logpdf(x, 2.5, 0.1, 2.0),
                           _vectorized(lambda x: 1.5 * math.log((x - 0.1) / 2) - (x - 0.1) / 2 - math.lgamma(2.5)
                                       - math.log(2)), (X,)),
    "stats.gamma.pdf": (lambda x: ST.gamma.pdf(x, 1.0), lambda x: np.exp(-x), (X,)),
    "stats.poisson.logpmf": (lambda mu: ST.poisson.logpmf(np.array([0.0, 1.0, 3.0, 7.0]), mu),
                             lambda mu: np.array([0.0, 1.0, 3.0, 7.0]) * np.log(mu) - mu
                             - np.array([0.0, 0.0, math.log(6), math.log(5040)]), (X,)),
    "stats.poisson.pmf": (lambda mu: ST.poisson.pmf(np.array([0.0, 1.0, 3.0, 7.0]), mu),
                          lambda mu: np.exp(np.array([0.0, 1.0, 3.0, 7.0]) * np.log(mu) - mu
                                            - np.array([0.0, 0.0, math.log(6), math.log(5040)])), (X,)),
}


def _public_names():
    names = {f"special.{n}" for n in SP.__all__}
    for module_name in ST.__all__:
        module = getattr(ST, module_name)
        names |= {f"stats.{module_name}.{n}" for n in module.__all__}
    return names


def test_every_public_name_has_a_row():
    names = _public_names()
    assert names == set(ROWS), (sorted(names - set(ROWS)), sorted(set(ROWS) - names))


@pytest.mark.parametrize("name", sorted(ROWS))
def test_eager_and_jit_match_the_reference(name):
    fun, reference, args = ROWS[name]
    want = np.asarray(reference(*args), np.float64)
    np.testing.assert_allclose(fun(*args), want, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(ft.jit(fun)(*args), fun(*args), rtol=1e-13, atol=1e-14)


@pytest.mark.parametrize("name", sorted(ROWS))
def test_vmap_matches_a_loop(name):
    fun, _, args = ROWS[name]
    examples = [[a * (1 + 0.01 * k) if a.ndim == 1 else a + 0.01 * k for a in args] for k in range(3)]
    got = ft.vmap(fun)(*[np.stack([e[i] for e in examples]) for i in range(len(args))])
    for k in range(3):
        np.testing.assert_allclose(got[k], fun(*examples[k]), rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("name", sorted(ROWS))
def test_check_grads_to_order_2(name):
    fun, _, args = ROWS[name]
    ft.check_grads(fun, args, order=2, modes=("fwd", "rev"), atol=1e-5, rtol=1e-5)


def test_xlogy_at_zero_has_a_zero_gradient_and_value():
    value, grads = ft.value_and_grad(lambda x, y: SP.xlogy(x, y), argnums=(0, 1))(0.0, 0.0)
    assert value == 0.0 and np.isfinite(grads[1]) and grads[1] == 0.0


def test_out_of_support_densities_are_zero():
    assert ST.gamma.logpdf(-1.0, 2.0) == -np.inf and ST.beta.pdf(1.5, 2.0, 2.0) == 0.0
    assert ST.poisson.logpmf(2.5, 1.0) == -np.inf


def test_log_ndtr_far_in_the_tail_and_its_gradient():
    x = np.array([-40.0, -100.0])
    want = np.array([-804.6084420137538, -5005.524208694205])  # mpmath: log(ndtr(x))
    np.testing.assert_allclose(SP.log_ndtr(x), want, rtol=1e-13)
    assert np.isfinite(ft.grad(lambda v: SP.log_ndtr(v).sum())(x)).all()
