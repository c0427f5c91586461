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


# mpmath at 40 digits: P(2.5, (X - 0.1)/2) and Q; I_y(2.5, 1.5), y = (U + 0.05)/1.1, and 1 - I; the chi2 with
# df = 3.5, loc = 0.1, scale = 1.5: P(1.75, y/2) and Q, y = (X - 0.1)/1.5, and its log density
_GAMMA_CDF = np.array([0.0008861387888124424, 0.04589632397225037, 0.20852587940567532, 0.4360983958483127])
_GAMMA_SF = np.array([0.9991138612111875, 0.9541036760277496, 0.7914741205943246, 0.5639016041516872])
_BETA_CDF = np.array([0.013288256139184378, 0.13957694018530833, 0.41333671435989056, 0.8494899501533704])
_BETA_SF = np.array([0.9867117438608156, 0.8604230598146917, 0.5866632856401095, 0.15051004984662963])
_CHI2_CDF = np.array([0.00521305467558571, 0.08542447156596474, 0.2580733273035655, 0.4542881315649564])
_CHI2_SF = np.array([0.9947869453244143, 0.9145755284340352, 0.7419266726964345, 0.5457118684350436])
_CHI2_LOGPDF = np.array([-3.1119154851409485, -2.1333544159621294, -1.9815688311332815, -2.117437969297006])

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
    # the incomplete gamma and beta functions, and the distributions built on them: mpmath's values at
    # 40 digits (mpmath.gammainc(a, 0, x, regularized=True), gammainc(a, x, inf, ...) and betainc(a, b, 0, x,
    # regularized=True)), rounded to float64; X spans P's series (x < a) and Q's continued fraction
    "special.gammainc": (lambda x: SP.gammainc(1.7, x),
                         lambda x: [0.06941884661897428, 0.4345834209280688, 0.7844611562767896, 0.9380424057621112],
                         (X,)),
    # a = 0.2: Q's own series at x = 0.3 (where P is near 1) and the continued fraction above 1.1
    "special.gammaincc": (lambda x: SP.gammaincc(0.2, x),
                          lambda x: [0.18347320566634728, 0.038861521733649096, 0.006860404163334159,
                                     0.0011263185698743394], (X,)),
    # x on both sides of (a + 1)/(a + b + 2) = 0.5, where the symmetry swaps a and b
    "special.betainc": (lambda x: SP.betainc(1.5, 2.5, x),
                        lambda x: [0.0978806429413798, 0.49613212142563545, 0.8260723420634901, 0.993792604279552],
                        (U,)),
    "stats.gamma.cdf": (lambda x: ST.gamma.cdf(x, 2.5, 0.1, 2.0), lambda x: _GAMMA_CDF, (X,)),
    "stats.gamma.logcdf": (lambda x: ST.gamma.logcdf(x, 2.5, 0.1, 2.0), lambda x: np.log(_GAMMA_CDF), (X,)),
    "stats.gamma.sf": (lambda x: ST.gamma.sf(x, 2.5, 0.1, 2.0), lambda x: _GAMMA_SF, (X,)),
    "stats.gamma.logsf": (lambda x: ST.gamma.logsf(x, 2.5, 0.1, 2.0), lambda x: np.log(_GAMMA_SF), (X,)),
    "stats.beta.cdf": (lambda x: ST.beta.cdf(x, 2.5, 1.5, -0.05, 1.1), lambda x: _BETA_CDF, (U,)),
    "stats.beta.logcdf": (lambda x: ST.beta.logcdf(x, 2.5, 1.5, -0.05, 1.1), lambda x: np.log(_BETA_CDF), (U,)),
    "stats.beta.sf": (lambda x: ST.beta.sf(x, 2.5, 1.5, -0.05, 1.1), lambda x: _BETA_SF, (U,)),
    "stats.beta.logsf": (lambda x: ST.beta.logsf(x, 2.5, 1.5, -0.05, 1.1), lambda x: np.log(_BETA_SF), (U,)),
    "stats.chi2.logpdf": (lambda x: ST.chi2.logpdf(x, 3.5, 0.1, 1.5), lambda x: _CHI2_LOGPDF, (X,)),
    "stats.chi2.pdf": (lambda x: ST.chi2.pdf(x, 3.5, 0.1, 1.5), lambda x: np.exp(_CHI2_LOGPDF), (X,)),
    "stats.chi2.cdf": (lambda x: ST.chi2.cdf(x, 3.5, 0.1, 1.5), lambda x: _CHI2_CDF, (X,)),
    "stats.chi2.logcdf": (lambda x: ST.chi2.logcdf(x, 3.5, 0.1, 1.5), lambda x: np.log(_CHI2_CDF), (X,)),
    "stats.chi2.sf": (lambda x: ST.chi2.sf(x, 3.5, 0.1, 1.5), lambda x: _CHI2_SF, (X,)),
    "stats.chi2.logsf": (lambda x: ST.chi2.logsf(x, 3.5, 0.1, 1.5), lambda x: np.log(_CHI2_SF), (X,)),
    # sum_{j <= k} e^-mu mu^j / j! (mpmath), differentiable in mu
    "stats.poisson.cdf": (lambda mu: ST.poisson.cdf(np.array([0.0, 1.0, 3.0, 7.0]), mu),
                          lambda mu: [0.7408182206817179, 0.6626272662068446, 0.7575761331330659, 0.9488663842071526],
                          (X,)),
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
    # the upper tail, where ndtr(x) rounds to 1 (its log was 0): mpmath's log1p(-ndtr(-x)) at 60 digits
    x = np.array([3.0, 8.3, 13.75, 30.0, 37.5])
    want = np.array([-0.0013508099647481938, -5.2055697448902542e-17, -2.546476315973957e-43,
                     -4.9067139271481871e-198, -4.6053530095819548e-308])
    np.testing.assert_allclose(SP.log_ndtr(x), want, rtol=1e-13)
    # d/dx log ndtr = pdf / ndtr, on both sides of each branch's edge
    x = np.array([-20.0 - 1e-9, -20.0 + 1e-9, -1e-9, 1e-9, 0.0, 5.0, 40.0])
    pdf = np.exp(-x * x / 2) / np.sqrt(2 * np.pi)
    np.testing.assert_allclose(ft.vmap(ft.grad(SP.log_ndtr))(x), pdf / SP.ndtr(x), rtol=1e-10)


def test_betaln_for_large_arguments():
    """lgamma(a) + lgamma(b) - lgamma(a + b) cancels for large arguments (and was NaN past 1e305):
    Stirling's form there. mpmath's loggamma at 340 digits."""
    a = np.array([1e6, 0.13, 30.0, 5.0524222379493845e300, 12.5])
    b = np.array([2e6, 513.5, 1e12, 8.613219287320651e298, 11.0])
    want = [-1909548.290968533, 1.1670201455386282, -757.67359451112344, -4.3757011322010759e299, -16.194734020007191]
    np.testing.assert_allclose(SP.betaln(a, b), want, rtol=1e-14)
    np.testing.assert_allclose(SP.betaln(b, a), want, rtol=1e-14)
    big = np.array([10.0, 1e3, 1e20, 1e300, 1.7e308])
    np.testing.assert_allclose(SP.betaln(big, 1.0), -np.log(big), rtol=1e-15)  # B(a, 1) = 1/a
    # the derivatives, digamma(a) - digamma(a + b), on both sides of the switch at 10
    a, b = np.array([9.999, 10.0, 10.001, 25.0, 3.0]), np.array([10.0, 10.0, 2.5, 40.0, 12.0])
    grads = ft.vmap(ft.grad(SP.betaln, argnums=(0, 1)))(a, b)
    np.testing.assert_allclose(grads[0], special_reference.digamma(a) - special_reference.digamma(a + b), rtol=1e-12)
    np.testing.assert_allclose(grads[1], special_reference.digamma(b) - special_reference.digamma(a + b), rtol=1e-12)


def test_log_probabilities_near_one_are_log1p_of_the_complement():
    """log of a CDF or SF that rounds to 1 (or to 1 - a few ulps) was 0 or a few ulps; mpmath's
    log1p(-complement) at 50 digits."""
    got = [ST.gamma.logcdf(40.0, 2.0), ST.gamma.logcdf(50.0, 2.0), ST.gamma.logsf(0.001, 2.0),
           ST.chi2.logsf(0.001, 3.0), ST.beta.logcdf(0.9, 2.0, 3.0), ST.beta.logcdf(1 - 1e-12, 2.0, 3.0),
           ST.beta.logsf(1e-5, 2.0, 3.0)]
    want = [-1.7418252446695516e-16, -9.8366242246159807e-21, -4.9966691646683319e-7, -8.4079544047957309e-6,
            -0.0037068619313264752, -3.9997345452279449e-36, -5.999920002099952e-10]  # (at the float 1 - 1e-12)
    np.testing.assert_allclose(np.array(got, dtype=float), want, rtol=1e-13)
    # their gradients stay finite on both sides of the switch at 1/2
    for fun in (lambda x: ST.gamma.logcdf(x, 2.0), lambda x: ST.gamma.logsf(x, 2.0)):
        assert np.isfinite(ft.vmap(ft.grad(fun))(np.array([1.5, 1.6783469900166608, 1.7, 30.0]))).all()


def test_ndtri_in_the_tails_and_its_derivatives():
    """sqrt(2) erfinv(2p - 1) rounds small p away (ndtri(1e-20) was -inf): the tails take Newton's
    steps on log_ndtr instead. Values: mpmath's root of log ndtr(z) = log p at 50 digits."""
    p = np.array([1e-320, 1e-300, 1e-100, 1e-20, 1e-9, 1e-3, 0.0999999])
    want = np.array([-38.26912534303265, -37.0470962993612, -21.273453560965326, -9.262340089798407,
                     -5.9978070150076865, -3.0902323061678136, -1.2815521353507942])
    np.testing.assert_allclose(SP.ndtri(p), want, rtol=1e-14)
    q = 1 - p[4:]
    np.testing.assert_allclose(SP.ndtri(q), -SP.ndtri(1 - q), rtol=1e-14)  # the mirror (1 - q is exact)
    np.testing.assert_allclose(ST.norm.isf(p), -want, rtol=1e-14)
    np.testing.assert_array_equal(SP.ndtri(np.array([0.0, 1.0, -0.1, 1.1, np.nan])), [-np.inf, np.inf] + [np.nan] * 3)
    # round trip, and the derivatives of the inverse: 1 / pdf(z), then z / pdf(z)^2
    p = np.concatenate([10.0 ** -np.linspace(1, 290, 40), np.linspace(0.05, 0.95, 19)])
    z = SP.ndtri(p)
    # to what z's last bit allows: d log ndtr / dz ~ -z, so an ulp of z moves ndtr by ~z^2 eps
    assert np.all(np.abs(SP.ndtr(z) / p - 1) <= 4 * np.finfo(float).eps * (1 + z * z))
    pdf = np.exp(-z * z / 2) / np.sqrt(2 * np.pi)
    np.testing.assert_allclose(ft.vmap(ft.grad(SP.ndtri))(p) * pdf, 1.0, rtol=1e-12)
    moderate = p > 1e-100  # (below, z / pdf^2 overflows)
    np.testing.assert_allclose(ft.vmap(ft.grad(ft.grad(SP.ndtri)))(p[moderate]) * pdf[moderate] ** 2,
                               z[moderate], rtol=1e-10, atol=1e-12)
    ft.check_grads(SP.ndtri, (np.array([0.02, 0.05, 0.3, 0.97]),), order=2, modes=("fwd", "rev"), rtol=1e-5)


# -------------------- the incomplete gamma and beta functions --------------------

# mpmath at 40 digits (as above) at points that stress each method: tiny a and x, P near 1, Q's
# tail, a ~ x large (the series' slow convergence), tiny a with x = 1 (Q's own series), 5e-28.
_HARD_GAMMA = [(1e-3, 1e-3), (0.5, 30.0), (30.0, 10.0), (30.0, 60.0), (100.0, 100.0), (1e-10, 1.0), (5.0, 1e-5),
               (200.0, 150.0)]
_HARD_P = [0.9936876467088603, 0.9999999999999906, 2.5099512015279076e-07, 0.9999931237350312, 0.5132987982791487,
           0.9999999999780617, 8.333263889186511e-28, 5.7096885742082446e-05]
_HARD_Q = [0.00631235329113971, 9.485737571073848e-15, 0.9999997490048799, 6.876264968732097e-06, 0.48670120172085135,
           2.1938393441796778e-11, 1.0, 0.9999429031142579]
_HARD_BETA = [(0.5, 0.5, 0.999), (10.0, 200.0, 0.01), (200.0, 10.0, 0.97), (1e-3, 2.0, 0.5), (3.0, 1e-3, 0.5),
              (50.0, 50.0, 0.45)]
_HARD_I = [0.9798649583666225, 5.807789831248462e-05, 0.8994916476285513, 0.9998067465369478, 6.821516304182144e-05,
           0.15865219893709884]
# dP/da by mpmath.diff at 40 digits, and -(dP/da) / (x^(a-1) e^-x / Gamma(a))
_GRAD_POINTS = [(0.7, 0.4), (1.7, 3.0), (5.0, 2.0), (5.0, 12.0), (0.05, 2.0), (20.0, 25.0)]
_DP_DA = [-0.625517591579575, -0.17082564422069346, -0.05691325064457105, -0.008232769172088636,
          -0.056690986497682776, -0.046727804534347564]
_RGG = [0.9201709615113776, 1.444916932040433, 0.6308028026778547, 1.5508363766251059, 15.756121767485816,
        1.125050146577857]


def test_incomplete_gamma_and_beta_at_hard_points():
    a, x = np.array(_HARD_GAMMA).T
    # a up to 200: the prefactor x^a e^-x / Gamma(a) is exp of a sum of terms ~1000, so 1e-13 relative
    np.testing.assert_allclose(ft.lax.igamma(a, x), _HARD_P, rtol=1e-13, atol=0)
    np.testing.assert_allclose(ft.lax.igammac(a, x), _HARD_Q, rtol=1e-13, atol=0)
    a, b, x = np.array(_HARD_BETA).T
    np.testing.assert_allclose(ft.lax.betainc(a, b, x), _HARD_I, rtol=1e-12, atol=0)
    a, x = np.array(_GRAD_POINTS).T
    np.testing.assert_allclose(ft.lax.igamma_grad_a(a, x), _DP_DA, rtol=1e-13, atol=0)
    np.testing.assert_allclose(ft.lax.random_gamma_grad(a, x), _RGG, rtol=1e-13, atol=0)


def test_incomplete_gamma_and_beta_edge_values_are_scipys():
    nan, inf = np.nan, np.inf
    a = np.array([0.0, 0.0, 0.0, 1.0, 1.0, 1.0, -1.0, 2.0, nan, inf, 2.0])
    x = np.array([0.0, 1.0, inf, 0.0, inf, -1.0, 1.0, nan, 1.0, 1.0, 1e300])
    # scipy.special.gammainc(a, x) and gammaincc(a, x) (SciPy 1.x), by hand
    np.testing.assert_array_equal(ft.lax.igamma(a, x), [nan, 1, 1, 0, 1, nan, nan, nan, nan, 0, 1])
    np.testing.assert_array_equal(ft.lax.igammac(a, x), [nan, 0, 0, 1, 0, nan, nan, nan, nan, 1, 0])
    # JAX's igamma_grad_a / random_gamma_grad: nan for a <= 0, x < 0, nan; 0 at x = 0
    np.testing.assert_array_equal(ft.lax.igamma_grad_a([0.0, -1.0, 2.0, 2.0, 2.0], [1.0, 1.0, -1.0, 0.0, nan]),
                                  [nan, nan, nan, 0, nan])
    np.testing.assert_array_equal(ft.lax.random_gamma_grad([0.0, 2.0, 2.0, 2.0], [1.0, -1.0, 0.0, nan]),
                                  [nan, nan, 0, nan])
    a = np.array([0.0, 0.0, 1.0, 1.0, inf, 1.0, 2.0, -1.0, 1.0, 0.0, inf, 1.0, 0.5])
    b = np.array([0.0, 1.0, 0.0, inf, 1.0, 1.0, 2.0, 1.0, -1.0, inf, 0.0, 1.0, 0.5])
    x = np.array([0.5, 0.5, 0.5, 0.5, 0.5, 0.0, 1.0, 0.5, 0.5, 0.5, 0.5, 1.5, 0.0])
    # scipy.special.betainc(a, b, x) and jax.lax.betainc agree on these, by hand
    np.testing.assert_array_equal(ft.lax.betainc(a, b, x), [nan, 1, 0, 1, 0, 0, 1, nan, nan, 1, 0, nan, 0])


def test_incomplete_gamma_identities():
    rng = np.random.default_rng(0)
    a = np.exp(rng.uniform(np.log(0.01), np.log(80), 400))
    x = a * np.exp(rng.uniform(-3, 1.5, 400))
    p, q = ft.lax.igamma(a, x), ft.lax.igammac(a, x)
    np.testing.assert_allclose(p + q, 1.0, rtol=0, atol=1e-15)
    # P(a + 1, x) = P(a, x) - x^a e^-x / Gamma(a + 1)
    step = np.exp(a * np.log(x) - x - special_reference.lgamma(a + 1))
    np.testing.assert_allclose(ft.lax.igamma(a + 1, x), p - step, rtol=1e-12, atol=1e-15)
    # Q(1, x) = e^-x, P(1/2, x) = erf(sqrt x) (x up to ~300: exp of a log x - x to ~1e-13 relative)
    np.testing.assert_allclose(ft.lax.igammac(1.0, x), np.exp(-x), rtol=1e-13, atol=0)
    np.testing.assert_allclose(ft.lax.igamma(0.5, x), special_reference.erf(np.sqrt(x)), rtol=1e-14, atol=0)


def test_incomplete_beta_identities():
    rng = np.random.default_rng(1)
    a, b = np.exp(rng.uniform(np.log(0.05), np.log(50), (2, 400)))
    x = rng.uniform(0, 1, 400)
    np.testing.assert_allclose(ft.lax.betainc(a, b, x), 1 - ft.lax.betainc(b, a, 1 - x), rtol=0, atol=1e-14)
    # I_x(a, 1) = x^a, I_x(1, b) = 1 - (1 - x)^b
    np.testing.assert_allclose(ft.lax.betainc(a, 1.0, x), x ** a, rtol=1e-13, atol=1e-300)
    np.testing.assert_allclose(ft.lax.betainc(1.0, b, x), -np.expm1(b * np.log1p(-x)), rtol=1e-13, atol=1e-300)
    # I_x(a, b) = I_x(a + 1, b) + x^a (1 - x)^b / (a B(a, b))
    lbeta = special_reference.lgamma(a) + special_reference.lgamma(b) - special_reference.lgamma(a + b)
    step = np.exp(a * np.log(x) + b * np.log1p(-x) - lbeta) / a
    np.testing.assert_allclose(ft.lax.betainc(a, b, x), ft.lax.betainc(a + 1, b, x) + step, rtol=1e-11, atol=1e-15)


def test_incomplete_gamma_functions_keep_their_ranges_over_all_of_float64():
    """P and Q in [0, 1] (P(1e-20, 1) was 1 + ulp), dP/da <= 0, the sample's derivative >= 0 (or
    +inf, where it overflows: a tiny a) and finite otherwise, on a grid from 5e-324 to 1.79e308."""
    values = np.array([5e-324, 1e-300, 1e-100, 1e-20, 1e-8, 0.01, 0.5, 1, 2, 10, 100, 1e4, 1e6, 9.9e6, 1.01e7,
                       1e8, 1e12, 1e20, 1e100, 1e300, 1.79e308])
    a, x = (v.ravel() for v in np.meshgrid(values, values))
    for p in (ft.lax.igamma(a, x), ft.lax.igammac(a, x)):
        assert np.all((p >= 0) & (p <= 1)), list(zip(a[~((p >= 0) & (p <= 1))], x[~((p >= 0) & (p <= 1))]))[:5]
    assert np.all(ft.lax.igamma_grad_a(a, x) <= 0)
    sample_derivative = ft.lax.random_gamma_grad(a, x)
    assert np.all(sample_derivative >= 0)
    assert np.all(np.isfinite(sample_derivative[a >= 1e-100]))
    assert ft.lax.igamma(1e-20, 1.0) <= 1.0


def test_random_gamma_grad_in_the_far_upper_tail():
    """The continued fraction's recurrence overflowed from x ~ 5e15 (NaN), and Wilson-Hilferty's
    quantile (a > 1e7) turned negative from x = 27a; the derivative is positive everywhere and tends to
    log x - digamma(a), which the asymptotic series gives from x = 1e8 max(a, 1)."""
    x = np.logspace(0.1, 308, 1000)
    for a in (1e-3, 0.5, 3.0, 1e6, 1e7, 1.1e7, 1e8, 1e20, 1e300):
        got = ft.lax.random_gamma_grad(np.full_like(x, a), x)[x > a]
        assert np.all(got > 0), (a, x[x > a][~(got > 0)][:5])
    # each side of the switches: continued fraction | series (x = 1e8 max(a, 1)), and at a = 1e7
    for a in (1e-3, 0.5, 3.0, 2e3):
        edge = 1e8 * max(a, 1)
        np.testing.assert_allclose(ft.lax.random_gamma_grad(a, np.nextafter(edge, 0)),
                                   ft.lax.random_gamma_grad(a, edge), rtol=1e-13)
    lam = np.array([1.005, 1.0101, 1.05, 3.0, 27.0, 1e3, 1e6, 9.9e7, 1.01e8, 1e9])
    below, above = np.nextafter(1e7, 0), np.nextafter(1e7, 2e7)
    np.testing.assert_allclose(ft.lax.random_gamma_grad(above, lam * 1e7), ft.lax.random_gamma_grad(below, lam * 1e7),
                               rtol=3e-8)  # the large-a forms err by ~0.17 / a
    np.testing.assert_allclose(ft.lax.random_gamma_grad(2.0, 1e300), np.log(1e300) - special_reference.digamma(2.0),
                               rtol=1e-15)


# I_x(a, b) with large parameters: Lentz's continued fraction in mpmath at 60 digits (its front by
# mpmath's loggamma), where mpmath's own betainc does not converge
_LARGE_BETA = [(1e6, 1e6, 0.5007, 0.97614260049096126235), (2e7, 3e7, 0.40005, 0.76475962390307054072),
               (1e6, 5e7, 0.0196, 0.34321316323074023147), (3.0, 1e9, 3e-9, 0.57680992055347003815),
               (1e9, 2.5, 1 - 2e-9, 0.54941593466354207938), (4e6, 9e6, 0.3075, 0.066495635686596701264)]


def test_incomplete_beta_with_large_parameters():
    """Past the continued fraction's reach: the incomplete gamma limit where one parameter dwarfs the
    other, Temme's expansion where both are large; within [0, 1], finite, and fast, up to float64's largest."""
    a, b, x, want = np.array(_LARGE_BETA).T
    np.testing.assert_allclose(ft.lax.betainc(a, b, x), want, rtol=1e-11, atol=0)
    # closed forms: I_x(a, 1) = x^a, I_x(1, b) = 1 - (1 - x)^b, I_1/2(a, a) = 1/2, I_x(1/2, b) -> erf(sqrt(b x))
    big = np.array([1e9, 1e12, 1e20, 1e300, 1.7e308])
    x = np.array([1 - 1e-9, 1 - 3e-12, 1 - 2e-20, 0.5, 1e-10])
    with np.errstate(over="ignore"):
        power = big * np.log(x)  # -inf at 1.7e308
    np.testing.assert_allclose(ft.lax.betainc(big, 1.0, x), np.exp(power), rtol=1e-14, atol=1e-300)
    np.testing.assert_allclose(ft.lax.betainc(1.0, big, 1 - x), -np.expm1(power), rtol=1e-14, atol=1e-300)
    np.testing.assert_array_equal(ft.lax.betainc(np.array([1e6, 3e7, 1e20, 1e300, 1.7e308]), np.array(
        [1e6, 3e7, 1e20, 1e300, 1.7e308]), 0.5), 0.5)
    t = np.array([0.25, 1.0, 4.0])
    np.testing.assert_allclose(ft.lax.betainc(np.float32(0.5), np.float32(3.4028235e38), np.float32(t / 3.4028235e38)),
                               special_reference.erf(np.sqrt(t)).astype(np.float32), rtol=1e-6)  # was -inf
    # every regime, float64's extremes included: a value in [0, 1], the two sides' symmetry
    values = np.array([0.5, 2.0, 1e3, 1e6, 1e7, 3e8, 1e12, 1e20, 1e100, 1e300, 1.7e308])
    a, b = (v.ravel() for v in np.meshgrid(values, values))
    for z in (2.0 ** -1000, 2.0 ** -100, 2.0 ** -30, 0.25, 0.5, 0.75, 1 - 2.0 ** -30):
        got = ft.lax.betainc(a, b, np.full_like(a, z))
        outside = ~((got >= 0) & (got <= 1))
        assert not outside.any(), (a[outside], b[outside], z)
        if z >= 2.0 ** -30:  # where 1 - z is exact
            np.testing.assert_allclose(got, 1 - ft.lax.betainc(b, a, np.full_like(a, 1 - z)), rtol=0, atol=1e-9)


def test_incomplete_beta_is_continuous_across_its_asymptotic_switches():
    """Each side of a switch (the gamma limit from b = 1e8 max(a, 1)^1.5, Temme's expansion from
    min(a, b) = 1e6 up to a ratio of 100) gives the same values, to what each method holds."""
    step = 1 + 1e-12
    switches = [((4.0, 8e8 / step), (4.0, 8e8 * step), 1e-8),  # (below, above, relative spread of x)
                ((1e6 / step, 1e6), (1e6 * step, 1e6), 1e-3),
                ((1e6, 1e8 * step), (1e6, 1e8 / step), 1e-4),
                ((1e6 / step, 3e6), (1e6 * step, 3e6), 1e-3)]
    for (a_below, b_below), (a_above, b_above), spread in switches:
        x = a_below / (a_below + b_below) * (1 + np.array([-6.0, -2.0, 0.0, 1.0, 4.0]) * spread)
        np.testing.assert_allclose(ft.lax.betainc(a_below, b_below, x), ft.lax.betainc(a_above, b_above, x),
                                   rtol=1e-7, atol=1e-300)  # (1e-17 six widths out)


@pytest.mark.parametrize("name", ["igamma", "igammac", "igamma_grad_a", "random_gamma_grad", "betainc"])
def test_incomplete_gamma_and_beta_in_float32_are_float64_rounded(name):
    rng = np.random.default_rng(2)
    args = [rng.uniform(0.1, 20, 200), rng.uniform(0.1, 20, 200)]
    if name == "betainc":
        args.append(rng.uniform(0, 1, 200))
    single = [v.astype(np.float32) for v in args]
    fun = getattr(ft.lax, name)
    got = fun(*single)
    assert got.dtype == np.float32 and ft.jit(fun)(*single).dtype == np.float32
    want = fun(*[v.astype(np.float64) for v in single])  # the same float32 operands, in float64
    np.testing.assert_array_equal(got, want.astype(np.float32))
    # weak Python scalars do not widen: float32 stays float32, as in jax.lax
    assert fun(*([1.5] + single[1:])).dtype == np.float32


def test_incomplete_gamma_and_beta_jit_and_vmap():
    a, x = np.array([0.3, 1.7, 5.0, 20.0]), np.array([0.2, 3.0, 4.0, 30.0])
    for fun in (ft.lax.igamma, ft.lax.igammac, ft.lax.igamma_grad_a, ft.lax.random_gamma_grad):
        np.testing.assert_allclose(ft.jit(fun)(a, x), fun(a, x), rtol=1e-15, atol=0)
        looped = np.stack([fun(a, x * s) for s in (0.5, 1.0, 2.0)])
        np.testing.assert_allclose(ft.vmap(fun, in_axes=(None, 0))(a, np.stack([x * s for s in (0.5, 1.0, 2.0)])),
                                   looped, rtol=1e-15, atol=0)
    b, u = np.array([2.0, 0.5, 3.0, 9.0]), np.array([0.1, 0.5, 0.7, 0.95])
    looped = np.stack([ft.lax.betainc(a, b * s, u) for s in (0.5, 1.0, 2.0)])
    np.testing.assert_allclose(ft.vmap(ft.lax.betainc, in_axes=(None, 0, None))(a, np.stack([b * s for s in (0.5, 1.0, 2.0)]), u),
                               looped, rtol=1e-15, atol=0)
    np.testing.assert_allclose(ft.jit(ft.lax.betainc)(a, b, u), ft.lax.betainc(a, b, u), rtol=1e-15, atol=0)


def test_incomplete_gamma_derivatives_in_a():
    """Order 1 in a (igamma_grad_a has no derivative in a, as in JAX); random_gamma_grad against
    -(dP/da) / (dP/dx) from ftrans's own grads; the sample x(a) = P^-1(a, u) moves as it says."""
    a, x = np.array(_GRAD_POINTS).T
    for fun in (SP.gammainc, SP.gammaincc):
        ft.check_grads(lambda a: fun(a, x), (a,), order=1, modes=("fwd", "rev"), atol=1e-6, rtol=1e-6)
    ft.check_grads(lambda a, x: SP.gammainc(a, x) * SP.gammaincc(a, x * 0.5), (a, x), order=1, modes=("fwd", "rev"))
    da = ft.vmap(ft.grad(SP.gammainc, argnums=0))(a, x)
    dx = ft.vmap(ft.grad(SP.gammainc, argnums=1))(a, x)
    np.testing.assert_allclose(da, _DP_DA, rtol=1e-13)
    np.testing.assert_allclose(ft.lax.random_gamma_grad(a, x), -da / dx, rtol=1e-13)
    # implicit differentiation: P(a + h, x + h * rgg) = P(a, x) to second order in h
    h = 1e-5
    moved = SP.gammainc(a + h, x + h * ft.lax.random_gamma_grad(a, x))
    np.testing.assert_allclose(moved, SP.gammainc(a, x), rtol=0, atol=1e-9)
    # the x-derivatives of igamma_grad_a and random_gamma_grad (closed forms) to order 2
    ft.check_grads(lambda x: ft.lax.igamma_grad_a(a, x), (x,), order=2, modes=("fwd", "rev"))
    ft.check_grads(lambda x: ft.lax.random_gamma_grad(a, x), (x,), order=2, modes=("fwd", "rev"))


def test_derivatives_that_jax_does_not_have_raise():
    with pytest.raises(ValueError, match="Betainc gradient with respect to a and b not supported"):
        ft.grad(lambda a: SP.betainc(a, 2.0, 0.3))(1.5)
    with pytest.raises(ValueError, match="Betainc gradient with respect to a and b not supported"):
        ft.jvp(lambda b: SP.betainc(1.5, b, 0.3), (2.0,), (1.0,))
    with pytest.raises(NotImplementedError, match="derivative of igamma_grad_a in a"):
        ft.grad(ft.grad(lambda a: SP.gammainc(a, 2.0)))(1.5)
    with pytest.raises(NotImplementedError, match="derivative of random_gamma_grad in a"):
        ft.grad(lambda a: ft.lax.random_gamma_grad(a, 2.0))(1.5)
    # the derivative in x is there: the density
    np.testing.assert_allclose(ft.grad(lambda x: SP.betainc(1.5, 2.5, x))(0.3), ST.beta.pdf(0.3, 1.5, 2.5), rtol=1e-14)


@pytest.mark.parametrize("dist, args, xs", [
    ("gamma", (2.5, 0.1, 2.0), X), ("gamma", (0.6,), X), ("beta", (2.5, 1.5, -0.05, 1.1), U),
    ("beta", (0.7, 3.0), U), ("chi2", (3.5, 0.1, 1.5), X), ("chi2", (1.0,), X)])
def test_grad_of_a_cdf_is_the_pdf(dist, args, xs):
    module = getattr(ST, dist)
    pdf = module.pdf(xs, *args)
    np.testing.assert_allclose(ft.vmap(ft.grad(lambda x: module.cdf(x, *args)))(xs), pdf, rtol=1e-13)
    np.testing.assert_allclose(ft.vmap(ft.grad(lambda x: module.sf(x, *args)))(xs), -pdf, rtol=1e-13)
    np.testing.assert_allclose(ft.vmap(ft.grad(lambda x: module.logcdf(x, *args)))(xs),
                               pdf / module.cdf(xs, *args), rtol=1e-12)
    np.testing.assert_allclose(module.cdf(xs, *args) + module.sf(xs, *args), 1.0, rtol=0, atol=1e-15)


def test_cdfs_outside_the_support_and_their_derivatives():
    assert ST.gamma.cdf(-1.0, 0.5) == 0.0 and ST.gamma.sf(-1.0, 0.5) == 1.0 and ST.gamma.cdf(np.inf, 2.0) == 1.0
    assert ST.beta.cdf(-0.5, 0.5, 0.5) == 0.0 and ST.beta.cdf(1.5, 0.5, 0.5) == 1.0 and ST.beta.sf(1.5, 2.0, 2.0) == 0.0
    assert ST.chi2.cdf(-1.0, 1.0) == 0.0 and ST.chi2.logpdf(-1.0, 3.0) == -np.inf
    assert ST.poisson.cdf(-1.0, 2.0) == 0.0 and ST.gamma.logcdf(-1.0, 2.0) == -np.inf
    # zero, not nan (the density of a < 1 or b < 1 is infinite at the edge of the support)
    for fun in (lambda x: ST.gamma.cdf(x, 0.5), lambda x: ST.gamma.sf(x, 0.5), lambda x: ST.beta.cdf(x, 0.5, 0.5),
                lambda x: ST.beta.sf(x, 0.5, 0.5), lambda x: ST.chi2.cdf(x, 1.0)):
        grads = ft.vmap(ft.grad(fun))(np.array([-1.0, 1.5]))
        assert np.isfinite(grads).all() and (grads[0] == 0.0), grads
    # the a-derivative of the cdf: igamma_grad_a; poisson's in mu: -pmf(k)
    np.testing.assert_allclose(ft.grad(lambda a: ST.gamma.cdf(2.0, a))(5.0), _DP_DA[2], rtol=1e-13)
    k = np.array([0.0, 1.0, 3.0, 7.0])
    np.testing.assert_allclose(ft.vmap(ft.grad(lambda m, k: ST.poisson.cdf(k, m)))(X, k), -ST.poisson.pmf(k, X),
                               rtol=1e-13)


def test_incomplete_gamma_for_large_a_is_continuous_across_the_asymptotic_switch():
    """Below 1e7 the series and continued fraction, above Temme's expansion (P, Q) and Wilson-Hilferty's
    quantile (the derivatives): on both sides of the switch the same values, to what each method holds."""
    below, above = np.nextafter(1e7, 0), np.nextafter(1e7, 2e7)
    x = 1e7 + np.array([-6e3, -1e3, 0.0, 2e3, 9e3])  # z from -1.9 to 2.8
    for fun, rtol in ((ft.lax.igamma, 1e-7), (ft.lax.igammac, 1e-7), (ft.lax.random_gamma_grad, 1e-7),
                      (ft.lax.igamma_grad_a, 1e-6)):
        np.testing.assert_allclose(fun(above, x), fun(below, x), rtol=rtol, atol=0)
    np.testing.assert_allclose(ft.lax.igamma(above, x) + ft.lax.igammac(above, x), 1.0, rtol=0, atol=1e-15)
