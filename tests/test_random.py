"""ftrans.random: Threefry's known answers, JAX's bits for the same calls, the structure of split and
fold_in, jit and vmap against eager and loops, distributions (moments and Kolmogorov-Smirnov on
10^5 draws with fixed seeds), gradients through reparameterized samplers, and errors."""
from __future__ import annotations

import functools
import math

import numpy as np
import pytest

import ftrans as ft
import ftrans.numpy as fnp
import ftrans.random as random
import ir
import random_reference as R
from random_cases import CASES, EXPECTED, SEED, ULPS

U32 = np.uint32

# -------------------- Threefry-2x32 known answers --------------------

# Random123's kat_vectors for threefry2x32_20: (key, counter) -> output
KNOWN_ANSWERS = [
    ((0x00000000, 0x00000000), (0x00000000, 0x00000000), (0x6B200159, 0x99BA4EFE)),
    ((0xFFFFFFFF, 0xFFFFFFFF), (0xFFFFFFFF, 0xFFFFFFFF), (0x1CB996FC, 0xBB002BE7)),
    ((0x13198A2E, 0x03707344), (0x243F6A88, 0x85A308D3), (0xC4923A9C, 0x483DF7A0)),
]


@pytest.mark.parametrize("key, counter, expected", KNOWN_ANSWERS)
def test_threefry2x32_known_answers(key, counter, expected):
    threefry = ir.PRIMITIVES["threefry2x32"]
    out = ir.bind(threefry, *map(U32, key), *map(U32, counter))
    assert [int(o) for o in out] == list(expected)
    jitted = ft.jit(lambda k, c: random.threefry_2x32(k, c))(np.array(key, U32), np.array(counter, U32))
    np.testing.assert_array_equal(jitted, expected)


def test_threefry_2x32_of_an_odd_count_as_jax():
    # jax._src.random.threefry2x32.threefry_2x32(uint32[0x13198a2e, 0x03707344], arange(5)), JAX 0.10.2
    out = random.threefry_2x32(np.array([0x13198A2E, 0x03707344], U32), np.arange(5, dtype=U32))
    np.testing.assert_array_equal(out, [2319929243, 3637777754, 547490127, 4059551135, 3871567085])


# -------------------- the same bits as jax.random --------------------

def _ulps_apart(got, want):
    spacing = np.spacing(np.maximum(np.abs(got), np.abs(want)).astype(want.dtype)).astype(np.float64)
    return np.max(np.abs(got.astype(np.float64) - want.astype(np.float64)) / spacing, initial=0)


@pytest.mark.parametrize("name", sorted(CASES))
def test_same_numbers_as_jax(name):
    values, dtype = EXPECTED[name]
    want = np.array(values, dtype=dtype)
    got = CASES[name](random, fnp, random.PRNGKey(SEED))
    assert type(got) is ft.Array and got.shape == want.shape and got.dtype == want.dtype, (got.shape, got.dtype)
    if name in ULPS:
        assert _ulps_apart(got, want) <= ULPS[name], (got, want)
    else:
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("name", sorted(CASES))
def test_jit_equals_eager_bit_for_bit(name):
    key = random.PRNGKey(SEED)
    eager = CASES[name](random, fnp, key)
    np.testing.assert_array_equal(ft.jit(lambda k: CASES[name](random, fnp, k))(key), eager)


@pytest.mark.parametrize("name", sorted(n for n in CASES if not n.startswith("PRNGKey")))
def test_vmap_over_keys_equals_a_loop(name):
    keys = random.split(random.PRNGKey(SEED), 3)
    fun = lambda k: CASES[name](random, fnp, k)  # noqa: E731
    looped = np.stack([fun(k) for k in keys])
    np.testing.assert_array_equal(ft.vmap(fun)(keys), looped)
    np.testing.assert_array_equal(ft.jit(ft.vmap(fun))(keys), looped)


def test_vmap_over_seeds_equals_a_loop():
    seeds = np.array([0, 1, -1, 2**40 + 5])
    np.testing.assert_array_equal(ft.vmap(random.PRNGKey)(seeds), np.stack([random.PRNGKey(int(s)) for s in seeds]))
    np.testing.assert_array_equal(ft.jit(random.PRNGKey)(np.int64(-1)), [2**32 - 1, 2**32 - 1])


def test_keys_split_in_a_loop_match_a_python_loop():
    def step(i, carry):
        key, total = carry
        key, sub = random.split(key)
        return key, total + random.uniform(sub, (2,))
    key, total = ft.lax.fori_loop(0, 4, step, (random.PRNGKey(3), fnp.zeros(2)))
    expected_key, expected = random.PRNGKey(3), np.zeros(2)
    for _ in range(4):
        expected_key, sub = random.split(expected_key)
        expected = expected + random.uniform(sub, (2,))
    np.testing.assert_array_equal(key, expected_key)
    np.testing.assert_array_equal(total, expected)
    jitted = ft.jit(lambda k: ft.lax.fori_loop(0, 4, step, (k, fnp.zeros(2))))(random.PRNGKey(3))
    np.testing.assert_array_equal(jitted[1], expected)


# -------------------- keys, split and fold_in --------------------

def test_keys_are_uint32_pairs():
    key = random.PRNGKey(SEED)
    assert key.dtype == U32 and key.shape == (2,)
    np.testing.assert_array_equal(random.key(SEED), key)
    np.testing.assert_array_equal(random.key_data(key), key)
    np.testing.assert_array_equal(random.wrap_key_data(random.split(key, 4)), random.split(key, 4))
    np.testing.assert_array_equal(random.PRNGKey(2**64 - 1), [2**32 - 1, 2**32 - 1])


def test_split_structure():
    key = random.PRNGKey(SEED)
    keys = random.split(key, 6)
    assert keys.shape == (6, 2) and keys.dtype == U32
    assert len({tuple(k) for k in keys.tolist()} | {tuple(key.tolist())}) == 7  # distinct, and not the parent
    # the i-th key of a split is a function of i alone: a longer split extends a shorter one
    np.testing.assert_array_equal(random.split(key, 2), keys[:2])
    np.testing.assert_array_equal(random.split(key, (2, 3)).reshape(6, 2), keys)
    assert random.split(key, 0).shape == (0, 2)
    np.testing.assert_array_equal(random.split(key), random.split(key))  # pure: the same key, the same keys


def test_fold_in_structure():
    key = random.PRNGKey(SEED)
    folded = [tuple(random.fold_in(key, i).tolist()) for i in range(50)]
    assert len(set(folded)) == 50 and tuple(key.tolist()) not in folded
    np.testing.assert_array_equal(random.fold_in(key, np.uint32(7)), random.fold_in(key, 7))
    np.testing.assert_array_equal(random.fold_in(key, -1), random.fold_in(key, 2**32 - 1))  # 32 bits of data
    np.testing.assert_array_equal(ft.vmap(lambda i: random.fold_in(key, i))(np.arange(50)), np.array(folded))


# -------------------- distributions --------------------

N = 100_000
# Kolmogorov-Smirnov: P(sqrt(n) D > 1.95) is 0.001 for a sample of the distribution
KS_BOUND = 1.95 / math.sqrt(N)


def _ks_bound(n):
    return 1.95 / math.sqrt(n)


def _ks_statistic(samples, cdf):
    x = np.sort(np.asarray(samples, np.float64))
    f = cdf(x)
    n = len(x)
    return max(np.max(np.arange(1, n + 1) / n - f), np.max(f - np.arange(n) / n))


_erf = np.vectorize(math.erf)


def _normal_cdf(x):
    return 0.5 * (1 + _erf(x / math.sqrt(2)))


def _truncated_moments(a, b):
    """Mean and variance of N(0, 1) truncated to [a, b]."""
    pdf = lambda t: math.exp(-t * t / 2) / math.sqrt(2 * math.pi)  # noqa: E731
    z = _normal_cdf(b) - _normal_cdf(a)
    mean = (pdf(a) - pdf(b)) / z
    return mean, 1 + (a * pdf(a) - b * pdf(b)) / z - mean**2


CONTINUOUS = {  # sampler -> (CDF, mean, variance or None where infinite)
    "normal": (lambda k: random.normal(k, (N,)), _normal_cdf, 0.0, 1.0),
    "normal f32": (lambda k: random.normal(k, (N,), np.float32), _normal_cdf, 0.0, 1.0),
    "truncated_normal": (lambda k: random.truncated_normal(k, -1.0, 2.0, (N,)),
                         lambda x: (_normal_cdf(x) - _normal_cdf(-1.0)) / (_normal_cdf(2.0) - _normal_cdf(-1.0)),
                         *_truncated_moments(-1.0, 2.0)),
    "uniform": (lambda k: random.uniform(k, (N,)), lambda x: np.clip(x, 0, 1), 0.5, 1 / 12),
    "uniform range": (lambda k: random.uniform(k, (N,), minval=-2.0, maxval=3.0),
                      lambda x: np.clip((x + 2) / 5, 0, 1), 0.5, 25 / 12),
    "uniform f32": (lambda k: random.uniform(k, (N,), np.float32), lambda x: np.clip(x, 0, 1), 0.5, 1 / 12),
    "exponential": (lambda k: random.exponential(k, (N,)), lambda x: 1 - np.exp(-x), 1.0, 1.0),
    "gumbel": (lambda k: random.gumbel(k, (N,)), lambda x: np.exp(-np.exp(-x)), np.euler_gamma, np.pi**2 / 6),
    "gumbel high": (lambda k: random.gumbel(k, (N,), mode="high"), lambda x: np.exp(-np.exp(-x)), np.euler_gamma,
                    np.pi**2 / 6),
    "laplace": (lambda k: random.laplace(k, (N,)),
                lambda x: np.where(x < 0, 0.5 * np.exp(x), 1 - 0.5 * np.exp(-x)), 0.0, 2.0),
    "logistic": (lambda k: random.logistic(k, (N,)), lambda x: 1 / (1 + np.exp(-x)), 0.0, np.pi**2 / 3),
    "cauchy": (lambda k: random.cauchy(k, (N,)), lambda x: 0.5 + np.arctan(x) / np.pi, None, None),
}


@pytest.mark.parametrize("name", sorted(CONTINUOUS))
def test_continuous_distributions(name):
    sample, cdf, mean, variance = CONTINUOUS[name]
    x = np.asarray(sample(random.PRNGKey(0)), np.float64)
    assert x.shape == (N,) and np.all(np.isfinite(x))
    assert _ks_statistic(x, cdf) < KS_BOUND
    if mean is not None:  # 5 standard errors
        assert abs(x.mean() - mean) < 5 * math.sqrt(variance / N)
        # the variance's standard error, with a generous fourth moment (9 sigma^4 covers these tails)
        assert abs(x.var() - variance) < 5 * math.sqrt(9 * variance**2 / N)


def test_the_ks_bound_fails_a_wrong_distribution():
    x = random.exponential(random.PRNGKey(0), (N,)) * 1.03  # a 3% error in the scale
    assert _ks_statistic(x, lambda t: 1 - np.exp(-t)) > KS_BOUND


def test_bernoulli_frequencies():
    p = np.array([0.05, 0.3, 0.5, 0.9])
    draws = random.bernoulli(random.PRNGKey(1), p, (N, 4))
    assert draws.dtype == np.bool_
    np.testing.assert_array_less(np.abs(draws.mean(axis=0) - p), 5 * np.sqrt(p * (1 - p) / N))
    high = random.bernoulli(random.PRNGKey(1), 0.3, (N,), mode="high")
    assert abs(high.mean() - 0.3) < 5 * math.sqrt(0.21 / N)


def _chi_square_of_counts(draws, probabilities):
    counts = np.bincount(np.asarray(draws).ravel(), minlength=len(probabilities))
    expected = len(np.asarray(draws).ravel()) * np.asarray(probabilities)
    return np.sum((counts - expected) ** 2 / expected), len(probabilities) - 1


def _chi_square_bound(dof):
    """About the 0.999 quantile of chi-square with `dof` degrees of freedom (Wilson-Hilferty)."""
    z = 3.09
    return dof * (1 - 2 / (9 * dof) + z * math.sqrt(2 / (9 * dof))) ** 3


@pytest.mark.parametrize("low, high, dtype", [(0, 10, np.int64), (-5, 3, np.int32), (250, 256, np.uint8)])
def test_randint_is_uniform_on_its_range(low, high, dtype):
    draws = random.randint(random.PRNGKey(2), (N,), low, high, dtype)
    assert draws.dtype == dtype and draws.min() == low and draws.max() == high - 1
    statistic, dof = _chi_square_of_counts(draws.astype(np.int64) - low, np.full(high - low, 1 / (high - low)))
    assert statistic < _chi_square_bound(dof)


def test_categorical_frequencies_and_rademacher():
    p = np.array([0.1, 0.2, 0.3, 0.4])
    draws = random.categorical(random.PRNGKey(4), np.log(p), shape=(N,))
    statistic, dof = _chi_square_of_counts(draws, p)
    assert statistic < _chi_square_bound(dof)
    signs = random.rademacher(random.PRNGKey(5), (N,))
    assert set(np.unique(signs)) == {-1, 1} and abs(signs.mean()) < 5 / math.sqrt(N)


def test_permutations_are_uniform_and_choice_follows_p():
    keys = random.split(random.PRNGKey(9), 6000)
    perms = np.asarray(ft.jit(ft.vmap(lambda k: random.permutation(k, 4)))(keys))
    assert all(sorted(row) == [0, 1, 2, 3] for row in perms[:50])
    codes = perms @ np.array([64, 16, 4, 1])  # each of the 24 orders equally likely
    _, counts = np.unique(codes, return_counts=True)
    assert len(counts) == 24
    statistic = np.sum((counts - 250) ** 2 / 250)
    assert statistic < _chi_square_bound(23)
    p = np.array([0.1, 0.2, 0.3, 0.4])
    statistic, dof = _chi_square_of_counts(random.choice(random.PRNGKey(10), 4, (N,), p=p), p)
    assert statistic < _chi_square_bound(dof)
    firsts = ft.vmap(lambda k: random.choice(k, 4, (2,), replace=False, p=p))(keys)
    assert np.all(firsts[:, 0] != firsts[:, 1])
    statistic, dof = _chi_square_of_counts(firsts[:, 0], p)  # the first draw follows p
    assert statistic < _chi_square_bound(dof)


def test_grad_through_permutation_and_choice():
    key = random.PRNGKey(11)
    x = np.arange(5.0)
    order = random.permutation(key, 5)
    g = ft.grad(lambda x: fnp.sum(random.permutation(key, x) * np.arange(5.0)))(x)
    np.testing.assert_array_equal(g[order], np.arange(5.0))


def test_bits_are_uniform_bit_by_bit():
    draws = random.bits(random.PRNGKey(6), (N,), np.uint32)
    ones = np.array([(draws >> np.uint32(b)) & np.uint32(1) for b in range(32)]).mean(axis=1)
    np.testing.assert_array_less(np.abs(ones - 0.5), 5 * 0.5 / math.sqrt(N))


# -------------------- distributions of the gamma-based, rejection and transformed samplers --------------------

def test_reference_cdfs_agree_with_scipy():
    # scipy.special.gammainc and betainc (SciPy 1.17.1), by hand: the in-house series reproduce them
    np.testing.assert_allclose(R.gamma_cdf(0.3, np.array([0.01, 1.0, 7.0])),
                               [0.27924099635901484, 0.9156741562411086, 0.9999283358061504], rtol=1e-13)
    np.testing.assert_allclose(R.gamma_cdf(10.0, np.array([2.5, 10.0, 20.0])),
                               [2.773520946208362e-04, 5.420702855281478e-01, 9.950045876916924e-01], rtol=1e-13)
    np.testing.assert_allclose(R.gamma_cdf(0.01, log_x=np.array([-100.0])), [0.3699787556871928], rtol=1e-13)
    np.testing.assert_allclose(R.beta_cdf(0.5, 2.0, np.array([0.01, 0.5, 0.99])),
                               [0.14949999999999997, 0.8838834764831843, 0.9999623742921531], rtol=1e-13)
    np.testing.assert_allclose(R.beta_cdf(5.0, 1.5, np.array([0.2, 0.7, 0.999])),
                               [7.9066357444397637e-04, 2.9180564480614557e-01, 9.9971533794914713e-01], rtol=1e-13)
    x = np.array([1e-30, 0.02, 1.0, 9.0])
    np.testing.assert_allclose(R.gamma_quantile(0.3, R.gamma_cdf(0.3, x)), x, rtol=1e-9)  # 1 - u = 5e-5 at 9


def _gamma_fn(x):
    return math.gamma(x)


_GN_P = 1.5
_TRIANGLE = (0.0, 0.3, 1.0)


def _triangular_cdf(x):
    a, c, b = _TRIANGLE
    x = np.clip(x, a, b)
    return np.where(x < c, (x - a) ** 2 / ((b - a) * (c - a)), 1 - (b - x) ** 2 / ((b - a) * (b - c)))


def _symmetric(cdf_of_abs):
    return lambda x: 0.5 + 0.5 * np.sign(x) * cdf_of_abs(np.abs(x))


SAMPLERS = {  # name -> (N draws from PRNGKey(0), CDF, mean, variance)
    "gamma a=2.5": (lambda k: random.gamma(k, 2.5, (N,)), lambda x: R.gamma_cdf(2.5, x), 2.5, 2.5),
    "gamma a=0.3": (lambda k: random.gamma(k, 0.3, (N,)), lambda x: R.gamma_cdf(0.3, x), 0.3, 0.3),
    "gamma a=30": (lambda k: random.gamma(k, 30.0, (N,)), lambda x: R.gamma_cdf(30.0, x), 30.0, 30.0),
    "gamma a=1 f32": (lambda k: random.gamma(k, np.float32(1.0), (N,), np.float32), lambda x: R.gamma_cdf(1.0, x),
                      1.0, 1.0),
    # log Gamma(0.01): mean digamma(0.01), variance trigamma(0.01) (scipy.special.polygamma, by hand)
    "loggamma a=0.01": (lambda k: random.loggamma(k, 0.01, (N,)), lambda y: R.gamma_cdf(0.01, log_x=y),
                        -100.56088545786868, 10001.621213528311),
    "beta 0.5 2": (lambda k: random.beta(k, 0.5, 2.0, (N,)), lambda x: R.beta_cdf(0.5, 2.0, x), 0.2,
                   0.5 * 2 / (2.5**2 * 3.5)),
    "beta 0.2 0.7": (lambda k: random.beta(k, 0.2, 0.7, (N,)), lambda x: R.beta_cdf(0.2, 0.7, x), 0.2 / 0.9,
                     0.2 * 0.7 / (0.9**2 * 1.9)),
    "chisquare 3": (lambda k: random.chisquare(k, 3.0, (N,)), lambda x: R.gamma_cdf(1.5, x / 2), 3.0, 6.0),
    "t 5": (lambda k: random.t(k, 5.0, (N,)), lambda x: R.t_cdf(5.0, x), 0.0, 5 / 3),
    "f 3 12": (lambda k: random.f(k, 3.0, 12.0, (N,)), lambda x: R.f_cdf(3.0, 12.0, x), 1.2,
               2 * 144 * 13 / (3 * 100 * 8)),
    "generalized_normal 1.5": (lambda k: random.generalized_normal(k, _GN_P, (N,)),
                               _symmetric(lambda x: R.gamma_cdf(1 / _GN_P, x**_GN_P)), 0.0,
                               _gamma_fn(3 / _GN_P) / _gamma_fn(1 / _GN_P)),
    "weibull_min 2 1.5": (lambda k: random.weibull_min(k, 2.0, 1.5, (N,)), lambda x: 1 - np.exp(-(x / 2) ** 1.5),
                          2 * _gamma_fn(1 + 1 / 1.5), 4 * (_gamma_fn(1 + 2 / 1.5) - _gamma_fn(1 + 1 / 1.5) ** 2)),
    "pareto 5": (lambda k: random.pareto(k, 5.0, (N,)), lambda x: 1 - x**-5.0, 5 / 4, 5 / 48),
    "maxwell": (lambda k: random.maxwell(k, (N,)), lambda x: R.gamma_cdf(1.5, x * x / 2), 2 * math.sqrt(2 / math.pi),
                (3 * math.pi - 8) / math.pi),
    "double_sided_maxwell 1 2": (lambda k: random.double_sided_maxwell(k, 1.0, 2.0, (N,)),
                                 lambda x: _symmetric(lambda y: R.gamma_cdf(1.5, y * y / 2))((x - 1) / 2), 1.0, 12.0),
    "rayleigh 2": (lambda k: random.rayleigh(k, 2.0, (N,)), lambda x: 1 - np.exp(-x * x / 8),
                   2 * math.sqrt(math.pi / 2), (4 - math.pi) / 2 * 4),
    "wald 1.5": (lambda k: random.wald(k, 1.5, (N,)), lambda x: R.wald_cdf(1.5, x), 1.5, 1.5**3),
    "triangular": (lambda k: random.triangular(k, *_TRIANGLE, (N,)), _triangular_cdf, sum(_TRIANGLE) / 3,
                   (0.3**2 + 1 - 0.3) / 18),
    "lognormal 0.5": (lambda k: random.lognormal(k, 0.5, (N,)), lambda x: R.normal_cdf(np.log(x) / 0.5),
                      math.exp(0.125), (math.exp(0.25) - 1) * math.exp(0.25)),
}


def _check_moments(x, mean, variance):
    """The sample mean within 5 standard errors of `mean`, the sample variance within 5 of its own
    (estimated from the sample's fourth central moment: the tails differ from sampler to sampler)."""
    assert abs(x.mean() - mean) < 5 * math.sqrt(variance / len(x)), (x.mean(), mean)
    fourth = np.mean((x - x.mean()) ** 4)
    assert abs(x.var() - variance) < 5 * math.sqrt((fourth - x.var() ** 2) / len(x)), (x.var(), variance)


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_gamma_based_and_transformed_distributions(name):
    _, cdf, mean, variance = SAMPLERS[name]
    x = _draws(name)
    assert x.shape == (N,) and np.all(np.isfinite(x))
    assert _ks_statistic(x, cdf) < KS_BOUND
    _check_moments(x, mean, variance)


@functools.cache
def _draws(name):
    return np.asarray(SAMPLERS[name][0](random.PRNGKey(0)), np.float64)


def test_the_ks_bound_fails_a_wrong_gamma_or_beta():
    assert _ks_statistic(_draws("gamma a=2.5"), lambda t: R.gamma_cdf(2.6, t)) > KS_BOUND  # a 4% error in a
    assert _ks_statistic(_draws("beta 0.5 2"), lambda t: R.beta_cdf(0.5, 2.1, t)) > KS_BOUND


def test_loggamma_is_the_log_of_gamma():
    key, a = random.PRNGKey(3), np.array([0.05, 0.5, 1.0, 4.0, 40.0])
    np.testing.assert_allclose(fnp.exp(random.loggamma(key, a, (50, 5))), random.gamma(key, a, (50, 5)), rtol=1e-12)
    tiny = random.loggamma(key, 1e-4, (1000,))  # gamma's draws underflow to 0 here; loggamma's stay finite
    assert np.all(np.isfinite(tiny)) and np.min(tiny) < -1000 and np.any(random.gamma(key, 1e-4, (1000,)) == 0)


def test_dirichlet_marginals_are_betas():
    alpha, n = np.array([0.2, 1.0, 3.0]), N // 3  # N gamma draws in all
    x = np.asarray(random.dirichlet(random.PRNGKey(0), alpha, (n,)))
    assert x.shape == (n, 3)
    np.testing.assert_allclose(x.sum(axis=-1), 1.0, rtol=1e-14)
    total = alpha.sum()
    for i, a in enumerate(alpha):
        assert _ks_statistic(x[:, i], lambda t, a=a: R.beta_cdf(a, total - a, t)) < _ks_bound(n)
        _check_moments(x[:, i], a / total, a * (total - a) / (total**2 * (total + 1)))


def test_ball_is_uniform_in_the_p_ball():
    d, n = 3, N // 3  # N gamma draws in all
    for p in (2, 1.5):
        x = np.asarray(random.ball(random.PRNGKey(int(p == 2)), d, p, (n // 2,)))
        assert x.shape == (n // 2, d)
        radius = np.sum(np.abs(x) ** p, axis=-1) ** (1 / p)
        assert np.all(radius < 1)
        assert _ks_statistic(radius**d, lambda t: np.clip(t, 0, 1)) < _ks_bound(n // 2)  # P(r <= s) = s^d
        assert abs(np.mean(x[:, 0])) < 5 * math.sqrt(np.var(x[:, 0]) / (n // 2))  # and symmetric


@pytest.mark.parametrize("method", ["cholesky", "eigh", "svd"])
def test_multivariate_normal_moments_and_projections(method):
    mean = np.array([1.0, -2.0, 0.5])
    factor = np.array([[1.0, 0.0, 0.0], [0.6, 0.8, 0.0], [-0.3, 0.5, 1.2]])
    cov = factor @ factor.T
    x = np.asarray(random.multivariate_normal(random.PRNGKey(0), mean, cov, (N,), method=method))
    assert x.shape == (N, 3)
    standard_error = np.sqrt(np.diag(cov) / N)
    np.testing.assert_array_less(np.abs(x.mean(axis=0) - mean), 5 * standard_error)
    centered = x - mean
    sample_cov = centered.T @ centered / N
    # Var(x_i x_j) = cov_ii cov_jj + cov_ij^2 for a centered normal
    np.testing.assert_array_less(np.abs(sample_cov - cov),
                                 5 * np.sqrt((np.outer(np.diag(cov), np.diag(cov)) + cov**2) / N))
    w = np.array([0.3, -1.0, 0.7])  # a projection is N(w.mean, w cov w)
    projected = (x @ w - w @ mean) / math.sqrt(w @ cov @ w)
    assert _ks_statistic(projected, R.normal_cdf) < KS_BOUND


def test_multivariate_normal_of_a_singular_cov():
    cov = np.array([[1.0, 1.0], [1.0, 1.0]])  # rank 1: x0 = x1
    for method in ("eigh", "svd"):
        x = np.asarray(random.multivariate_normal(random.PRNGKey(1), np.zeros(2), cov, (1000,), method=method))
        np.testing.assert_allclose(x[:, 0], x[:, 1], atol=1e-7)
        assert abs(np.var(x[:, 0]) - 1) < 5 * math.sqrt(2 / 1000)


def test_orthogonal_is_haar_on_o2_and_orthonormal():
    n_draws = 20_000
    q = np.asarray(random.orthogonal(random.PRNGKey(0), 2, (n_draws,)))
    assert q.shape == (n_draws, 2, 2)
    np.testing.assert_allclose(np.einsum("bji,bjk->bik", q, q), np.broadcast_to(np.eye(2), q.shape), atol=1e-14)
    # Haar on O(2): the first column's angle is uniform, and det = +1 or -1 equally often
    angle = np.arctan2(q[:, 1, 0], q[:, 0, 0])
    assert _ks_statistic(angle, lambda t: np.clip((t + np.pi) / (2 * np.pi), 0, 1)) < _ks_bound(n_draws)
    assert abs(np.mean(np.sign(np.linalg.det(q)))) < 5 / math.sqrt(n_draws)
    wide = random.orthogonal(random.PRNGKey(1), 3, (), np.float32, 5)
    assert wide.shape == (3, 5) and wide.dtype == np.float32
    np.testing.assert_allclose(wide @ wide.T, np.eye(3), atol=1e-6)  # orthonormal rows
    tall = random.orthogonal(random.PRNGKey(1), 5, (), None, 3)
    np.testing.assert_allclose(tall.T @ tall, np.eye(3), atol=1e-14)  # orthonormal columns
    kernel = ft.nn.initializers.orthogonal(scale=2.0)(random.PRNGKey(2), (4, 6))
    np.testing.assert_allclose(kernel @ kernel.T, 4 * np.eye(4), atol=1e-13)


def _discrete_ks(draws, cdf_at):
    """The Kolmogorov-Smirnov statistic of integer draws against the CDF at the integers (exact pmf
    sums): max over k of |F_n(k) - F(k)|, conservative for a discrete law."""
    x = np.sort(np.asarray(draws).astype(np.int64))
    k = np.arange(min(x[0], 0), x[-1] + 1)
    empirical = np.searchsorted(x, k, side="right") / len(x)
    return np.max(np.abs(empirical - cdf_at(k)))


DISCRETE = {  # name -> (N draws from PRNGKey(0), dtype, pmf on 0..kmax, kmax, mean, variance)
    "poisson 3 (Knuth)": (lambda k: random.poisson(k, 3.0, (N,)), np.int64, lambda k: R.poisson_pmf(3.0, k), 3.0, 3.0),
    "poisson 0.5 int32": (lambda k: random.poisson(k, 0.5, (N,), np.int32), np.int32,
                          lambda k: R.poisson_pmf(0.5, k), 0.5, 0.5),
    "poisson 40 (rejection)": (lambda k: random.poisson(k, 40.0, (N,)), np.int64, lambda k: R.poisson_pmf(40.0, k),
                               40.0, 40.0),
    "poisson 1e4 (rejection)": (lambda k: random.poisson(k, 1e4, (N,)), np.int64, lambda k: R.poisson_pmf(1e4, k),
                                1e4, 1e4),
    "binomial 10 0.3 (inversion)": (lambda k: random.binomial(k, 10.0, 0.3, (N,)), np.float64,
                                    lambda k: R.binomial_pmf(10, 0.3, k), 3.0, 2.1),
    "binomial 30 0.95 (inversion of 1-p)": (lambda k: random.binomial(k, 30.0, 0.95, (N,)), np.float64,
                                            lambda k: R.binomial_pmf(30, 0.95, k), 28.5, 30 * 0.95 * 0.05),
    "binomial 1000 0.4 (BTRS)": (lambda k: random.binomial(k, 1000.0, 0.4, (N,)), np.float64,
                                 lambda k: R.binomial_pmf(1000, 0.4, k), 400.0, 240.0),
    "binomial 200 0.9 (BTRS of 1-p)": (lambda k: random.binomial(k, 200.0, 0.9, (N,), np.float32), np.float32,
                                       lambda k: R.binomial_pmf(200, 0.9, k), 180.0, 18.0),
    "geometric 0.3": (lambda k: random.geometric(k, 0.3, (N,)), np.int64,
                      lambda k: np.where(k >= 1, 0.3 * 0.7 ** (k - 1.0), 0.0), 1 / 0.3, 0.7 / 0.09),
}


@pytest.mark.parametrize("name", sorted(DISCRETE))
def test_discrete_distributions(name):
    sample, dtype, pmf, mean, variance = DISCRETE[name]
    x = sample(random.PRNGKey(0))
    assert x.shape == (N,) and x.dtype == dtype
    x = np.asarray(x, np.float64)
    assert np.all(x == np.round(x)) and np.all(x >= 0)
    kmax = int(x.max())
    cdf = np.cumsum(pmf(np.arange(kmax + 1)))
    assert _discrete_ks(x, lambda k: np.where(k < 0, 0.0, cdf[np.clip(k, 0, kmax)])) < KS_BOUND
    _check_moments(x, mean, variance)


def test_the_discrete_ks_bound_fails_a_wrong_rate():
    x = random.poisson(random.PRNGKey(0), 40.0, (N,))
    cdf = np.cumsum(R.poisson_pmf(40.6, np.arange(int(x.max()) + 1)))
    assert _discrete_ks(x, lambda k: np.where(k < 0, 0.0, cdf[np.clip(k, 0, len(cdf) - 1)])) > KS_BOUND


def test_poisson_and_binomial_edge_values():
    key = random.PRNGKey(2)
    lam = np.array([0.0, 0.0, 1e-3, 9.99, 10.0])
    draws = random.poisson(key, lam, (2000, 5))
    assert np.all(draws[:, :2] == 0) and draws.dtype == np.int64
    b = random.binomial(key, np.array([5.0, -1.0, np.inf, 0.0, 7.0]), np.array([0.3, 0.3, 0.3, 0.3, 1.0]))
    assert b[0] in range(6) and np.isnan(b[1]) and b[2] == np.inf and b[3] == 0 and b[4] == 7
    assert np.isnan(random.binomial(key, 5.0, np.nan)) and np.isnan(random.binomial(key, 5.0, -0.1))


# -------------------- the new samplers: shapes, dtypes, jit, vmap, loops --------------------

def test_shapes_dtypes_and_broadcasting_of_parameters():
    key = random.PRNGKey(0)
    a = np.array([0.5, 1.0, 2.0])
    assert random.gamma(key, a).shape == (3,) and random.gamma(key, a).dtype == np.float64
    assert random.gamma(key, a, (2, 3)).shape == (2, 3)
    assert random.gamma(key, 2, dtype=np.float32).dtype == np.float32  # an integer a is converted
    assert random.loggamma(key, a[:, None], (3, 4), np.float32).dtype == np.float32
    assert random.beta(key, np.ones((2, 1)), a).shape == (2, 3)
    assert random.dirichlet(key, np.ones((2, 3))).shape == (2, 3)
    assert random.dirichlet(key, np.ones(3), (4, 2)).shape == (4, 2, 3)
    assert random.poisson(key, a).dtype == np.int64 and random.poisson(key, a, (2, 3)).shape == (2, 3)
    assert random.poisson(key, 3.0, (4,), np.int32).dtype == np.int32
    mvn = random.multivariate_normal(key, np.zeros(2, np.float32), np.eye(2, dtype=np.float32))
    assert mvn.shape == (2,) and mvn.dtype == np.float32  # dtype follows mean and cov
    assert random.multivariate_normal(key, np.zeros((4, 1, 2)), np.eye(2)[None].repeat(3, 0)).shape == (4, 3, 2)
    # dtype= is the normal draws' dtype; added to a float64 mean they are float64, as in JAX
    assert random.multivariate_normal(key, np.zeros(2), np.eye(2), (5,), np.float32).dtype == np.float64
    assert random.chisquare(key, a, (2, 3)).shape == (2, 3) and random.t(key, 3.0, (4,), np.float32).dtype == np.float32
    assert random.f(key, np.ones((2, 1)), a).shape == (2, 3)
    assert random.binomial(key, 10.0, a / 4).dtype == np.float64 and random.geometric(key, 0.5, (3,)).dtype == np.int64
    assert random.ball(key, 4, 1.0, (2, 3)).shape == (2, 3, 4) and random.maxwell(key, (2,)).shape == (2,)
    assert random.triangular(key, 0.0, a / 3, 1.0).shape == (3,) and random.lognormal(key).shape == ()
    # as JAX's: shape + the parameters' broadcast shape
    assert random.double_sided_maxwell(key, np.zeros(2), 1.0, (3,)).shape == (3, 2)
    assert random.gamma(key, 1.0, (0, 3)).shape == (0, 3)
    assert random.poisson(key, 1.0, (0,)).shape == (0,)


def test_bad_arguments_of_the_new_samplers_name_them():
    key = random.PRNGKey(0)
    with pytest.raises(ValueError, match=r"gamma: the parameter shapes \(a \(3,\)\).*shape \(4,\)"):
        random.gamma(key, np.ones(3), (4,))
    with pytest.raises(ValueError, match=r"beta: the parameter shapes \(a \(2,\), b \(3,\)\) do not broadcast"):
        random.beta(key, np.ones(2), np.ones(3))
    with pytest.raises(TypeError, match="gamma only accepts floating-point dtypes"):
        random.gamma(key, 1.0, dtype=np.int32)
    with pytest.raises(TypeError, match="gamma: a must be real numbers"):
        random.gamma(key, np.array([1j]))
    with pytest.raises(TypeError, match=r"gamma \(a\): str"):
        random.gamma(key, "one")
    with pytest.raises(ValueError, match="dirichlet requires alpha.ndim >= 1"):
        random.dirichlet(key, 1.0)
    with pytest.raises(ValueError, match=r"dirichlet: the parameter shapes \(alpha.shape\[:-1\] \(2,\)\)"):
        random.dirichlet(key, np.ones((2, 3)), (3,))
    with pytest.raises(TypeError, match="poisson only accepts integer dtypes"):
        random.poisson(key, 1.0, dtype=np.float32)
    with pytest.raises(ValueError, match=r"poisson: lam of shape \(3,\) does not broadcast to shape \(2,\)"):
        random.poisson(key, np.ones(3), (2,))
    with pytest.raises(ValueError, match=r"requires cov.shape == \(..., n, n\) for n=3"):
        random.multivariate_normal(key, np.zeros(3), np.eye(2))
    with pytest.raises(ValueError, match="requires mean.ndim >= 1"):
        random.multivariate_normal(key, 0.0, np.eye(2))
    with pytest.raises(ValueError, match="method must be one of"):
        random.multivariate_normal(key, np.zeros(2), np.eye(2), method="qr")
    with pytest.raises(ValueError, match=r"mean.shape\[:-1\] \(2,\), cov.shape\[:-2\] \(3,\)"):
        random.multivariate_normal(key, np.zeros((2, 2)), np.ones((3, 2, 2)))
    with pytest.raises(ValueError, match="cannot safely cast argument df of type float64 to float32"):
        random.t(key, np.ones(2), dtype=np.float32)
    with pytest.raises(ValueError, match="cannot safely cast argument sigma of type float64 to float32"):
        random.lognormal(key, np.float64(1.0), dtype=np.float32)  # a NumPy scalar is not weak, as in JAX
    assert random.t(key, np.int64(3), dtype=np.float32).dtype == np.float32  # integers convert to any float
    assert random.lognormal(key, 0.5, dtype=np.float16).dtype == np.float16  # a Python float is weak
    with pytest.raises(TypeError, match="ball: d must be an integer"):
        random.ball(key, 2.5)
    with pytest.raises(TypeError, match="orthogonal: m must be an integer"):
        random.orthogonal(key, 3, m=2.0)
    with pytest.raises(TypeError, match="uint32"):
        random.gamma(np.zeros(2), 1.0)


NEW_SAMPLERS = {  # name -> a function of (key, parameter): vmapped over both, and looped
    "gamma": lambda k, a: random.gamma(k, a, (3,)),
    "loggamma": lambda k, a: random.loggamma(k, a, (3,)),
    "beta": lambda k, a: random.beta(k, a, 2.0, (3,)),
    "dirichlet": lambda k, a: random.dirichlet(k, fnp.stack([a, 1.0 + 0 * a, 2 * a])),
    "poisson": lambda k, a: random.poisson(k, 20 * a, (3,)),
    "binomial": lambda k, a: random.binomial(k, 40.0, a / 3, (3,)),
    "multivariate_normal": lambda k, a: random.multivariate_normal(k, fnp.stack([a, -a]),
                                                                   fnp.array([[2.0, 0.5], [0.5, 1.0]]) * a),
    "t": lambda k, a: random.t(k, a, (3,)),
}


@pytest.mark.parametrize("name", sorted(NEW_SAMPLERS))
def test_vmap_over_keys_and_parameters_equals_a_loop(name):
    fun = NEW_SAMPLERS[name]
    keys = random.split(random.PRNGKey(4), 3)
    params = np.array([0.3, 1.0, 2.5])
    looped = np.stack([fun(k, a) for k, a in zip(keys, params)])
    np.testing.assert_array_equal(ft.vmap(fun)(keys, params), looped)
    np.testing.assert_array_equal(ft.jit(ft.vmap(fun))(keys, params), looped)
    key = keys[0]
    np.testing.assert_array_equal(ft.vmap(fun, in_axes=(None, 0))(key, params),
                                  np.stack([fun(key, a) for a in params]))


def test_rejection_samplers_inside_loops():
    def step(i, carry):
        key, total = carry
        key, sub = random.split(key)
        return key, total + random.gamma(sub, 0.5 + i, (2,)) + random.poisson(sub, 15.0, (2,))
    init = (random.PRNGKey(5), fnp.zeros(2))
    key, total = ft.lax.fori_loop(0, 3, step, init)
    expected_key, expected = init
    for i in range(3):
        expected_key, expected = step(i, (expected_key, expected))
    np.testing.assert_array_equal(total, expected)
    np.testing.assert_array_equal(ft.jit(lambda c: ft.lax.fori_loop(0, 3, step, c))(init)[1], expected)
    scanned = ft.lax.scan(lambda c, k: (c, random.beta(k, 0.5, 0.5, (2,))), 0.0, random.split(key, 4))[1]
    np.testing.assert_array_equal(scanned, np.stack([random.beta(k, 0.5, 0.5, (2,)) for k in random.split(key, 4)]))


# -------------------- gradients --------------------

def test_grad_of_uniform_in_its_bounds():
    key = random.PRNGKey(7)
    u = random.uniform(key, (5,))
    f = lambda lo, hi: fnp.sum(random.uniform(key, (5,), minval=lo, maxval=hi) ** 2)  # noqa: E731
    lo, hi = -1.0, 2.0
    x = lo + u * (hi - lo)
    d_lo, d_hi = ft.grad(f, argnums=(0, 1))(lo, hi)
    np.testing.assert_allclose(d_lo, np.sum(2 * x * (1 - u)), rtol=1e-12)
    np.testing.assert_allclose(d_hi, np.sum(2 * x * u), rtol=1e-12)
    ft.check_grads(lambda lo, hi: random.uniform(key, (3,), minval=lo, maxval=hi), (lo, hi), order=2)


def test_grad_through_normal_and_truncated_normal():
    key = random.PRNGKey(8)
    z = random.normal(key, (4,))
    # the reparameterization mu + sigma z: d/dmu = 1, d/dsigma = z, per draw
    f = lambda mu, sigma: mu + sigma * random.normal(key, (4,))  # noqa: E731
    np.testing.assert_array_equal(ft.jacfwd(f, argnums=1)(0.3, 2.0), z)
    ft.check_grads(f, (0.3, 2.0), order=2)
    # truncated_normal moves with its bounds: the draw is the inverse CDF of a fixed uniform
    g = lambda lo, hi: random.truncated_normal(key, lo, hi, (3,))  # noqa: E731
    ft.check_grads(g, (-0.5, 1.5), order=1, modes=("fwd", "rev"), atol=1e-6, rtol=1e-6)
    draws = g(-0.5, 1.5)
    assert np.all((draws > -0.5) & (draws < 1.5))
    ft.jit(g)(-0.5, 1.5)  # traced bounds: clipped to the closed interval


def _implicit_derivative(a, x, eps=1e-4):
    """dx/da with u = P(a, x) held fixed, by central differences of the in-house quantile function."""
    u = R.gamma_cdf(a, x)
    return (R.gamma_quantile(a + eps, u) - R.gamma_quantile(a - eps, u)) / (2 * eps)


def test_grad_through_gamma_is_the_implicit_one():
    # JAX's gradient: the draw x = P^-1(a, u) moves with a at its fixed quantile u. (Not the derivative of
    # Marsaglia-Tsang's d (1 + c z)^3 at a fixed key, a different pathwise derivative, which also jumps
    # where a acceptance changes: finite differences of the draw itself do not give JAX's gradient.)
    key = random.PRNGKey(13)
    a = np.broadcast_to(np.array([0.3, 1.0, 4.0, 30.0]), (3, 4))
    x, dx = ft.jvp(lambda a: random.gamma(key, a), (a,), (np.ones_like(a),))
    np.testing.assert_array_equal(x, random.gamma(key, a))
    for j in range(4):
        np.testing.assert_allclose(dx[:, j], _implicit_derivative(a[0, j], np.asarray(x[:, j])), rtol=1e-6)
    grad = ft.grad(lambda a: fnp.sum(random.gamma(key, a)))
    np.testing.assert_allclose(grad(a), dx, rtol=1e-14)
    np.testing.assert_array_equal(ft.jit(grad)(a), grad(a))
    # loggamma: d log x = dx / x; chisquare's 2 Gamma(df / 2)
    log_x, dlog_x = ft.jvp(lambda a: random.loggamma(key, a), (a,), (np.ones_like(a),))
    np.testing.assert_allclose(dlog_x, dx / x, rtol=1e-9)
    _, dchi = ft.jvp(lambda df: random.chisquare(key, df), (2 * a,), (np.ones_like(a),))
    np.testing.assert_allclose(dchi, dx, rtol=1e-9)  # d(2 G(df / 2)) / d df = dG / da


def _per_draw_derivative(fun, a, tangent):
    return ft.jvp(fun, (a,), (tangent,))


def _mean_within(values, expected):
    values = np.asarray(values)
    assert abs(values.mean() - expected) < 5 * values.std() / math.sqrt(len(values)), (values.mean(), expected)


def test_grads_through_gamma_beta_and_dirichlet_are_unbiased():
    # d/da E[f(x)] = E[f'(x) dx/da]: the mean of the per-draw derivatives over n draws, within 5 standard errors
    n, key = 20_000, random.PRNGKey(14)
    a = np.full(n, 2.5)
    x, dx = _per_draw_derivative(lambda a: random.gamma(key, a), a, np.ones(n))
    _mean_within(dx, 1.0)  # E[x] = a
    _mean_within(2 * x * dx, 2 * 2.5 + 1)  # E[x^2] = a (a + 1)
    small = np.full(n, 0.3)
    _, dx = _per_draw_derivative(lambda a: random.gamma(key, a), small, np.ones(n))
    _mean_within(dx, 1.0)
    # beta(0.5, 2): E[x] = a / (a + b)
    a, b = np.full(n, 0.5), np.full(n, 2.0)
    _, dx_da = _per_draw_derivative(lambda a: random.beta(key, a, b), a, np.ones(n))
    _, dx_db = _per_draw_derivative(lambda b: random.beta(key, a, b), b, np.ones(n))
    _mean_within(dx_da, 2.0 / 2.5**2)
    _mean_within(dx_db, -0.5 / 2.5**2)
    # dirichlet([0.2, 1, 3]): E[x_i] = alpha_i / alpha_0
    alpha = np.broadcast_to(np.array([0.2, 1.0, 3.0]), (n // 2, 3))
    _, dx = _per_draw_derivative(lambda alpha: random.dirichlet(key, alpha), alpha,
                                 np.broadcast_to(np.array([1.0, 0.0, 0.0]), alpha.shape))
    total = 4.2
    for i, expected in enumerate([(total - 0.2) / total**2, -1.0 / total**2, -3.0 / total**2]):
        _mean_within(dx[:, i], expected)
    np.testing.assert_allclose(np.sum(dx, axis=-1), 0.0, atol=1e-12)  # the draws stay on the simplex


def test_grad_of_beta_is_the_chain_rule_of_its_gammas():
    key, a, b = random.PRNGKey(15), np.array([0.2, 0.5, 3.0]), np.array([0.7, 2.0, 3.0])
    key_a, key_b = random.split(key)
    log_ga, dlog_ga = ft.jvp(lambda a: random.loggamma(key_a, a), (a,), (np.ones(3),))
    log_gb = random.loggamma(key_b, b)
    ga, gb = np.exp(log_ga), np.exp(log_gb)
    _, dx = ft.jvp(lambda a: random.beta(key, a, b), (a,), (np.ones(3),))
    np.testing.assert_allclose(dx, ga * dlog_ga * gb / (ga + gb) ** 2, rtol=1e-10)
    np.testing.assert_allclose(ft.jit(ft.grad(lambda a: fnp.sum(random.beta(key, a, b))))(a), dx, rtol=1e-12)
    alpha = np.array([0.2, 1.0, 3.0])  # forward and reverse mode agree through dirichlet's softmax of loggammas
    dirichlet = lambda alpha: random.dirichlet(key, alpha)  # noqa: E731
    np.testing.assert_allclose(ft.jacrev(dirichlet)(alpha), ft.jacfwd(dirichlet)(alpha), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("method", ["cholesky", "eigh", "svd"])
def test_grad_through_multivariate_normal_in_mean_and_cov(method):
    key = random.PRNGKey(12)
    mean = np.array([0.5, -1.0])
    cov = np.array([[2.0, 0.3], [0.3, 1.0]])
    f = lambda m, c: random.multivariate_normal(key, m, c, (3,), method=method)  # noqa: E731
    ft.check_grads(f, (mean, cov), order=1, modes=("fwd", "rev"), atol=1e-6, rtol=1e-6)
    # reparameterized: d/dmean is the identity per draw; with cholesky, x = mean + L z
    np.testing.assert_allclose(ft.jacfwd(lambda m: f(m, cov))(mean), np.broadcast_to(np.eye(2), (3, 2, 2)))
    if method == "cholesky":
        z = random.normal(key, (3, 2))
        scale = lambda s: random.multivariate_normal(key, mean, s * s * cov, (3,))  # noqa: E731  x = mean + s L z
        np.testing.assert_allclose(ft.jacfwd(scale)(1.0), z @ np.linalg.cholesky(cov).T, rtol=1e-12)


# -------------------- errors --------------------

def test_bad_keys_and_arguments_raise_clear_errors():
    key = random.PRNGKey(0)
    with pytest.raises(TypeError, match="uint32"):
        random.uniform(np.array([1.0, 2.0]), (3,))
    with pytest.raises(TypeError, match="single key.*vmap"):
        random.split(random.split(key, 3))
    with pytest.raises(TypeError, match="scalar seed"):
        random.PRNGKey(np.array([1, 2]))
    with pytest.raises(TypeError, match="integer"):
        random.PRNGKey(1.5)
    with pytest.raises(TypeError, match="floating"):
        random.uniform(key, (2,), np.int64)
    with pytest.raises(TypeError, match="integer dtypes"):
        random.randint(key, (2,), 0, 3, np.float64)
    with pytest.raises(ValueError, match="broadcast"):
        random.uniform(key, (3,), minval=np.zeros(4))
    with pytest.raises(TypeError, match="fold_in accepts a scalar"):
        random.fold_in(key, np.arange(3))
    with pytest.raises(ValueError, match="threefry2x32"):
        random.PRNGKey(0, impl="rbg")
