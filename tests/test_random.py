"""ftrans.random: Threefry's known answers, JAX's bits for the same calls, the structure of split and
fold_in, jit and vmap against eager and loops, distributions (moments and Kolmogorov-Smirnov on
10^5 draws with fixed seeds), gradients through reparameterized samplers, and errors."""
from __future__ import annotations

import math

import numpy as np
import pytest

import ftrans as ft
import ftrans.numpy as fnp
import ftrans.random as random
import ir
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
