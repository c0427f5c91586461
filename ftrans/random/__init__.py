"""Random numbers with JAX's keys and bits (Threefry-2x32): `ft.random.uniform(key, shape)` gives the
numbers `jax.random.uniform` gives for the same key, shape and dtype (JAX with 64-bit types on).
The samplers built on rejection loops and gamma draws (gamma, beta, dirichlet, poisson, binomial, ...)
and multivariate_normal run JAX's algorithms step for step, so they give its draws too, to the last
places of the transcendental functions involved (tests/random_cases.py)."""
from ftrans.random._keys import PRNGKey, bits, fold_in, key, key_data, split, threefry_2x32, wrap_key_data
from ftrans.random._permutations import choice, permutation, shuffle
from ftrans.random._samplers import (bernoulli, categorical, cauchy, exponential, gumbel, laplace, logistic, normal,
                                     rademacher, randint, truncated_normal, uniform)
from ftrans.random._gamma import (ball, beta, chisquare, dirichlet, f, gamma, generalized_normal, loggamma,
                                  t)
from ftrans.random._counts import binomial, geometric, poisson
from ftrans.random._transformed import (double_sided_maxwell, lognormal, maxwell, multivariate_normal, orthogonal,
                                        pareto, rayleigh, triangular, wald, weibull_min)
from ftrans._unavailable import missing_name_hook as _missing_name_hook

__all__ = ["PRNGKey", "bernoulli", "bits", "categorical", "cauchy", "choice", "exponential", "fold_in", "gumbel", "key",
           "key_data", "laplace", "logistic", "normal", "permutation", "rademacher", "randint", "shuffle", "split",
           "threefry_2x32", "truncated_normal", "uniform", "wrap_key_data"]
__all__ += ["ball", "beta", "binomial", "chisquare", "dirichlet", "double_sided_maxwell", "f", "gamma",
            "generalized_normal", "geometric", "loggamma", "lognormal", "maxwell", "multivariate_normal", "orthogonal",
            "pareto", "poisson", "rayleigh", "t", "triangular", "wald", "weibull_min"]


__getattr__ = _missing_name_hook(__name__)  # a JAX name not ported yet says so
