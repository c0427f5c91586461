"""Special functions: erf, erfc, erf_inv, lgamma, digamma, polygamma, the incomplete gamma and beta
functions (elementwise, floats only).

Implementations are NumPy alone (ir/primitives/special_math.py). Derivatives:
erf' = 2/sqrt(pi) exp(-x^2), erf_inv' = sqrt(pi)/2 exp(erf_inv(x)^2),
lgamma' = digamma, digamma' = polygamma(1, .), polygamma(m, .)' = polygamma(m + 1, .).
Taylor rules by Faa di Bruno from those derivatives (erf's k-th derivative is a
Hermite polynomial times exp(-x^2)); erf_inv's by the jet of its jvp rule.

CUDA: erf, erfc, erfinv and lgamma are CUDA's own functions; digamma and
polygamma are `ft_digamma` and `ft_polygamma` of CUDA_HELPERS below, the
algorithms of special_math.py written in C (the kernel prelude includes them).
"""
from __future__ import annotations

import functools

import numpy as np

from ir.core import ShapedArray
from ir.primitive import Int, Primitive
from ir.primitives import special_math
from ir.primitives.ad_util import jvp_from_derivatives, scalar_like
from ir.primitives.batch_util import elementwise_batcher
from ir.primitives.elementwise import (FLOAT, _check_dtype, _same_dtype, add, div, elementwise_shape, exp, log, log1p,
                                       mul, neg, sub, unary)
from ir.primitives.taylor_util import taylor_from_derivative, unary_taylor
from ir.tracing import bind

# polygamma's order: its C helper keeps the coefficients of a polynomial of degree m + 1
MAX_POLYGAMMA_ORDER = 150


def _c(x, value):
    return scalar_like(x, value)


def _erf_slope(x):
    """2/sqrt(pi) exp(-x^2)."""
    return mul(_c(x, special_math.TWO_OVER_SQRT_PI), exp(neg(mul(x, x))))


def _erf_derivatives(x, y, m, sign=1):
    """erf^(n)(x) = (-1)^(n-1) H_(n-1)(x) erf'(x), H the physicists' Hermite polynomials
    (H_0 = 1, H_1 = 2x, H_(k+1) = 2x H_k - 2k H_(k-1)); erfc's are their negatives."""
    slope = _erf_slope(x)
    out, h_prev, h_now = [], None, None
    for n in range(1, m + 1):
        k = n - 1
        if k == 0:
            h_now = None  # H_0 = 1
        elif k == 1:
            h_prev, h_now = None, mul(_c(x, 2), x)
        else:
            two_x_h = mul(mul(_c(x, 2), x), h_now)
            below = _c(x, 2 * (k - 1)) if h_prev is None else mul(_c(x, 2 * (k - 1)), h_prev)
            h_prev, h_now = h_now, sub(two_x_h, below)
        factor = sign * (-1) ** k
        value = slope if h_now is None else mul(h_now, slope)
        out.append(value if factor == 1 else neg(value))
    return out


erf_p = unary("erf", special_math.erf, derivative=lambda t, out, x: mul(t, _erf_slope(x)), cuda_template="erf({0})")
erfc_p = unary("erfc", special_math.erfc, derivative=lambda t, out, x: neg(mul(t, _erf_slope(x))),
               cuda_template="erfc({0})")
erf_inv_p = unary("erf_inv", special_math.erf_inv, cuda_template="erfinv({0})",
                  derivative=lambda t, out, x: mul(t, mul(_c(x, special_math.SQRT_PI_OVER_2), exp(mul(out, out)))))
lgamma_p = unary("lgamma", special_math.lgamma, derivative=lambda t, out, x: mul(t, digamma(x)),
                 cuda_template="lgamma({0})")
digamma_p = unary("digamma", special_math.digamma, derivative=lambda t, out, x: mul(t, polygamma(x, 1)),
                  cuda_template="ft_digamma({0})")


def _polygamma_abstract_eval(x, *, m):
    _check_dtype("polygamma", x, FLOAT)
    return x


def _polygamma_impl(x, *, m):
    return special_math.polygamma(x, m)


def _polygamma_derivative(t, out, x, *, m):
    if m == MAX_POLYGAMMA_ORDER:
        raise NotImplementedError(f"derivatives of polygamma beyond order {MAX_POLYGAMMA_ORDER}")
    return mul(t, polygamma(x, m + 1))


polygamma_p = Primitive("polygamma", params={"m": Int(1, MAX_POLYGAMMA_ORDER)},
                        abstract_eval=_polygamma_abstract_eval, impl=_polygamma_impl, elementwise=True,
                        cuda_template=lambda *, m: f"ft_polygamma({m}, {{0}})")
polygamma_p.define(jvp=jvp_from_derivatives(polygamma_p, _polygamma_derivative),
                   batch=elementwise_batcher(polygamma_p))

erf_p.define(taylor=unary_taylor(erf_p, _erf_derivatives))
erfc_p.define(taylor=unary_taylor(erfc_p, functools.partial(_erf_derivatives, sign=-1)))
erf_inv_p.define(taylor=taylor_from_derivative(erf_inv_p))
lgamma_p.define(taylor=unary_taylor(lgamma_p, lambda x, y, m: [digamma(x)] + [polygamma(x, j) for j in range(1, m)]))
digamma_p.define(taylor=unary_taylor(digamma_p, lambda x, y, m: [polygamma(x, j) for j in range(1, m + 1)]))
polygamma_p.define(taylor=unary_taylor(
    polygamma_p, lambda x, y, n, *, m: [polygamma(x, m + j) for j in range(1, n + 1)]))


# -------------------- the incomplete gamma and beta functions --------------------
# igamma(a, x) = P(a, x), igammac = Q = 1 - P, igamma_grad_a = dP/da, random_gamma_grad =
# -(dP/da) / (dP/dx) (the derivative of a Gamma(a, 1) sample x in a, its quantile held),
# regularized_incomplete_beta(a, b, x) = I_x(a, b). Operands of one float dtype (rank-0 ones
# beside arrays of any shape), as jax.lax's. Derivatives: dP/dx = x^(a-1) e^-x / Gamma(a) and
# dP/da = igamma_grad_a, as JAX's; d igamma_grad_a / dx = dP/dx (log x - digamma(a)) and
# d random_gamma_grad / dx = digamma(a) - log x - random_gamma_grad ((a - 1)/x - 1) (JAX has
# neither; their derivatives in a, like JAX's, raise); betainc in x only: JAX does not
# differentiate it in a or b, and neither does this (a ValueError, as JAX's).


def _nary_float(name, arity):
    def abstract_eval(*avals):
        if len(avals) != arity:
            raise TypeError(f"{name} takes {arity} operands, got {len(avals)}")
        shape = elementwise_shape(name, *avals)
        dtype = _same_dtype(name, avals)
        for aval in avals:
            _check_dtype(name, aval, FLOAT)
        return ShapedArray(shape, dtype, all(a.weak_type for a in avals))
    return abstract_eval


def _special_nary(name, impl, arity, cuda_function):
    prim = Primitive(name, params={}, abstract_eval=_nary_float(name, arity), impl=impl, elementwise=True,
                     cuda_template=f"{cuda_function}({', '.join('{%d}' % i for i in range(arity))})")
    prim.define(batch=elementwise_batcher(prim))
    return prim


igamma_p = _special_nary("igamma", special_math.igamma, 2, "ft_igamma")
igammac_p = _special_nary("igammac", special_math.igammac, 2, "ft_igammac")
igamma_grad_a_p = _special_nary("igamma_grad_a", special_math.igamma_grad_a, 2, "ft_igamma_grad_a")
random_gamma_grad_p = _special_nary("random_gamma_grad", special_math.random_gamma_grad, 2, "ft_random_gamma_grad")
regularized_incomplete_beta_p = _special_nary("regularized_incomplete_beta", special_math.betainc, 3, "ft_betainc")


def _gamma_density(a, x):
    """dP/dx = exp((a - 1) log x - x - lgamma(a)) (JAX's igamma_gradx)."""
    return exp(sub(sub(mul(sub(a, _c(a, 1)), log(x)), x), lgamma(a)))


def _not_differentiable(name, operand, reason):
    def derivative(t, out, *primals):
        raise NotImplementedError(f"the derivative of {name} in {operand} is not implemented ({reason})")
    return derivative


def _betainc_in_a_or_b(t, out, a, b, x):
    raise ValueError("Betainc gradient with respect to a and b not supported (as in JAX: only x is differentiable)")


def _betainc_in_x(t, out, a, b, x):
    """I_x(a, b)' = x^(a-1) (1 - x)^(b-1) / B(a, b)."""
    log_beta = sub(add(lgamma(a), lgamma(b)), lgamma(add(a, b)))
    return mul(t, exp(sub(add(mul(sub(b, _c(b, 1)), log1p(neg(x))), mul(sub(a, _c(a, 1)), log(x))), log_beta)))


def _random_gamma_grad_in_x(t, out, a, x):
    return mul(t, sub(sub(digamma(a), log(x)), mul(out, sub(div(sub(a, _c(a, 1)), x), _c(x, 1)))))


igamma_p.define(jvp=jvp_from_derivatives(igamma_p, lambda t, out, a, x: mul(t, igamma_grad_a(a, x)),
                                         lambda t, out, a, x: mul(t, _gamma_density(a, x))))
igammac_p.define(jvp=jvp_from_derivatives(igammac_p, lambda t, out, a, x: neg(mul(t, igamma_grad_a(a, x))),
                                          lambda t, out, a, x: neg(mul(t, _gamma_density(a, x)))))
igamma_grad_a_p.define(jvp=jvp_from_derivatives(
    igamma_grad_a_p, _not_differentiable("igamma_grad_a", "a", "the second derivative of igamma in a; JAX has "
                                         "no derivative of igamma_grad_a either"),
    lambda t, out, a, x: mul(t, mul(_gamma_density(a, x), sub(log(x), digamma(a))))))
random_gamma_grad_p.define(jvp=jvp_from_derivatives(
    random_gamma_grad_p, _not_differentiable("random_gamma_grad", "a", "JAX has no derivative of "
                                             "random_gamma_grad either"),
    _random_gamma_grad_in_x))
regularized_incomplete_beta_p.define(jvp=jvp_from_derivatives(
    regularized_incomplete_beta_p, _betainc_in_a_or_b, _betainc_in_a_or_b, _betainc_in_x))
for _prim in (igamma_p, igammac_p, igamma_grad_a_p, random_gamma_grad_p, regularized_incomplete_beta_p):
    _prim.define(taylor=taylor_from_derivative(_prim))  # the jet of the jvp rule above


# -------------------- binders --------------------

def erf(x):
    return bind(erf_p, x)


def erfc(x):
    return bind(erfc_p, x)


def erf_inv(x):
    return bind(erf_inv_p, x)


def lgamma(x):
    return bind(lgamma_p, x)


def digamma(x):
    return bind(digamma_p, x)


def polygamma(x, m):
    """The m-th derivative of digamma (m >= 1, a Python int)."""
    return bind(polygamma_p, x, m=m)


def igamma(a, x):
    return bind(igamma_p, a, x)


def igammac(a, x):
    return bind(igammac_p, a, x)


def igamma_grad_a(a, x):
    return bind(igamma_grad_a_p, a, x)


def random_gamma_grad(a, x):
    return bind(random_gamma_grad_p, a, x)


def betainc(a, b, x):
    return bind(regularized_incomplete_beta_p, a, b, x)


# -------------------- C helpers (the kernel prelude includes them) --------------------

def _c_array(name, values):
    return f"FT_CONSTANT double {name}[{len(values)}] = {{{', '.join(map(repr, values))}}};"


def _c_helpers():
    sm = special_math
    bernoulli = _c_array("ft_bernoulli", sm.BERNOULLI)
    zeta = _c_array("ft_zeta_minus_one", sm.ZETA_MINUS_ONE)
    root = _c_array("ft_digamma_root_series", sm._ROOT_SERIES)
    return r"""
// Special functions: the algorithms of ir/primitives/special_math.py, in double.
#ifndef FT_CONSTANT
#define FT_CONSTANT __device__ static const
#endif
%(bernoulli)s
%(zeta)s
%(root)s
FT_FN double ft_hurwitz_zeta(int s, double q) {  // q > 0: Euler-Maclaurin, 10 terms summed
  double total = 0;
  for (int k = 0; k < 10; ++k) total += pow(q + k, -(double)s);
  double a = q + 10, inv = 1 / a, power = pow(a, -(double)s);
  total += power * a / (s - 1) + power / 2;
  double rising = s, term_power = power * inv, factorial = 1;
  for (int j = 1; j <= 11; ++j) {
    factorial *= (2 * j - 1) * (2 * j);
    total += ft_bernoulli[j - 1] / factorial * rising * term_power;
    rising *= (double)(s + 2 * j - 1) * (s + 2 * j);
    term_power *= inv * inv;
  }
  return total;
}
FT_FN double ft_digamma_near_2(double z) {
  double total = 0;
  for (int k = 61; k >= 2; --k) total = total * z + ((k & 1) ? -1 : 1) * ft_zeta_minus_one[k - 2];
  return (1 - %(gamma)r) + z * total;
}
FT_FN double ft_digamma_asymptotic(double x) {
  double inv2 = 1 / (x * x), series = 0;
  for (int k = 8; k >= 1; --k) series = series * inv2 + ft_bernoulli[k - 1] / (2 * k);
  return log(x) - 0.5 / x - series * inv2;
}
FT_FN double ft_digamma_positive(double x) {
  if (fabs(x - %(root_hi)r) <= 0.25) {
    double h = (x - %(root_hi)r) - %(root_lo)r, total = 0;
    for (int n = %(root_terms)d; n >= 1; --n) total = total * h + ft_digamma_root_series[n - 1];
    return h * total;
  }
  if (x < 0.5) return ft_digamma_near_2(x) - 1 / (x + 1) - 1 / x;
  if (x < 1.5) return ft_digamma_near_2(x - 1) - 1 / x;
  if (x < 2.5) return ft_digamma_near_2(x - 2);
  if (x < 10) {
    double total = 0;
    for (int k = 0; k < 8 && x < 10; ++k) { total += 1 / x; x += 1; }
    return ft_digamma_asymptotic(x) - total;
  }
  return ft_digamma_asymptotic(x);
}
FT_FN double ft_cot_pi(double x) {
  double r = x - rint(x);
  return cos(%(pi)r * r) / sin(%(pi)r * r);
}
FT_FN double ft_digamma(double x) {
  if (x != x) return x;
  if (x == 0) return signbit(x) ? %(inf)s : -%(inf)s;
  if (x < 0 && (x == floor(x) || isinf(x))) return %(nan)s;
  if (x > 0) return isinf(x) ? x : ft_digamma_positive(x);
  double a = 1 - x;  // digamma(1 - x) - digamma(x) = pi cot(pi x)
  return ft_digamma_positive(a) - %(pi)r * ft_cot_pi(x);
}
FT_FN float ft_digamma(float x) { return (float)ft_digamma((double)x); }
FT_FN double ft_polygamma(int m, double x) {
  double sign = (m & 1) ? 1 : -1, factorial = 1;
  for (int k = 2; k <= m; ++k) factorial *= k;
  if (x != x) return x;
  if (x == %(inf)s) return sign * 0.0;
  if (x <= 0 && (x == floor(x) || isinf(x))) return sign * %(inf)s;
  if (x > 0) return sign * factorial * ft_hurwitz_zeta(m + 1, x);
  // (-1)^m psi^(m)(1 - x) - psi^(m)(x) = pi^(m+1) P_m(cot(pi x)), P_0 = c, P_(k+1) = -(1 + c^2) P_k'
  double p[%(max_degree)d] = {0, 1};
  int degree = 1;
  for (int k = 0; k < m; ++k) {
    double q[%(max_degree)d];
    for (int i = 0; i <= degree + 1; ++i) q[i] = 0;
    for (int i = 1; i <= degree; ++i) { q[i - 1] -= i * p[i]; q[i + 1] -= i * p[i]; }
    degree += 1;
    for (int i = 0; i <= degree; ++i) p[i] = q[i];
  }
  double c = ft_cot_pi(x), poly = 0;
  for (int i = degree; i >= 0; --i) poly = poly * c + p[i];
  double value = sign * factorial * ft_hurwitz_zeta(m + 1, 1 - x);
  return ((m & 1) ? -value : value) - pow(%(pi)r, m + 1) * poly;
}
FT_FN float ft_polygamma(int m, float x) { return (float)ft_polygamma(m, (double)x); }
FT_FN double ft_lgamma_near_2(double z) {  // lgamma(2 + z), |z| <= 1/2
  double total = 0;
  for (int k = 61; k >= 2; --k) total = total * z + ((k & 1) ? -1 : 1) * ft_zeta_minus_one[k - 2] / k;
  return z * ((1 - %(gamma)r) + z * total);
}
FT_FN double ft_lgamma1p(double a) {  // lgamma(1 + a), a > 0, its zeros kept
  if (a <= 0.5) return ft_lgamma_near_2(a) - log1p(a);
  if (a <= 1.5) return ft_lgamma_near_2(a - 1);
  return lgamma(1 + a);
}
// The incomplete gamma and beta functions: special_math.py's algorithms, element by element.
// P's series: (sum, d sum/da) of sum_n c_n, c_0 = 1, c_n = c_(n-1) x / (a + n)
FT_FN void ft_p_series(double a, double x, bool derivative, double* s_out, double* ds_out) {
  double r = a, c = 1, s = 1, dc = 0, ds = 0;
  for (int n = 0; n < %(max_terms)d; ++n) {
    r += 1;
    dc = dc * (x / r) - c * x / (r * r);
    c *= x / r;
    s += c; ds += dc;
    if (c <= %(half_eps)r * s && (!derivative || fabs(dc) <= %(half_eps)r * fabs(ds))) break;
  }
  *s_out = s; *ds_out = ds;
}
// Q's continued fraction (Cephes' igamc recurrence, rescaled) and its derivative in a
FT_FN void ft_q_fraction(double a, double x, bool derivative, double* f_out, double* df_out) {
  double y = 1 - a, z = x + y + 1, c = 0, pkm2 = 1, qkm2 = x, pkm1 = x + 1, qkm1 = z * x;
  double dpkm2 = 0, dqkm2 = 0, dpkm1 = 0, dqkm1 = -x, ans = pkm1 / qkm1, dans = (dpkm1 - ans * dqkm1) / qkm1;
  for (int n = 0; n < %(max_terms)d; ++n) {
    c += 1; y += 1; z += 2;
    double yc = y * c, pk = pkm1 * z - pkm2 * yc, qk = qkm1 * z - qkm2 * yc;
    double dpk = dpkm1 * z - pkm1 - dpkm2 * yc + pkm2 * c, dqk = dqkm1 * z - qkm1 - dqkm2 * yc + qkm2 * c;
    double t = 1, previous = dans;
    if (qk != 0) { double r = pk / qk; t = fabs((ans - r) / r); ans = r; dans = (dpk - ans * dqk) / qk; }
    bool done = t <= %(half_eps)r && (!derivative || fabs(dans - previous) <= %(half_eps)r * fabs(dans));
    double scale = fabs(pk) > %(inv_eps)r ? %(eps)r : 1.0;
    pkm2 = pkm1 * scale; qkm2 = qkm1 * scale; pkm1 = pk * scale; qkm1 = qk * scale;
    dpkm2 = dpkm1 * scale; dqkm2 = dqkm1 * scale; dpkm1 = dpk * scale; dqkm1 = dqk * scale;
    if (done) break;
  }
  *f_out = ans; *df_out = dans;
}
FT_FN double ft_q_series(double a, double x) {  // Q for x <= 1.1, small a (DLMF 8.7.3)
  double fac = 1, s = 0;
  for (int n = 1; n < %(max_terms)d; ++n) {
    fac *= -x / n;
    double term = fac / (a + n);
    s += term;
    if (fabs(term) <= %(half_eps)r * fabs(s)) break;
  }
  double log_x = log(x);
  return -expm1(a * log_x - ft_lgamma1p(a)) - exp(a * log_x - lgamma(a)) * s;
}
FT_FN double ft_p_by_series(double a, double x) {  // 0 where the prefactor times a + 1 underflows
  double s, ds, log_prefactor = a * log(x) - x - (a <= 1.5 ? ft_lgamma1p(a) : lgamma(1 + a));
  if (log_prefactor + log1p(a) <= %(underflow)r) return 0;
  ft_p_series(a, x, false, &s, &ds);
  return s * exp(log_prefactor);
}
FT_FN double ft_minus_log1p(double u) {  // special_math._minus_log1p: u - log1p(u)
  if (fabs(u) >= 0.1) return u - log1p(u);
  double series = 0;
  for (int k = 30; k >= 2; --k) series = series * u + ((k & 1) ? -1.0 : 1.0) / k;
  return series * u * u;
}
FT_FN double ft_temme(double a, double x, bool upper) {  // special_math._temme: large a
  double u = x / a - 1, d = ft_minus_log1p(u);
  double eta = (u > 0 ? 1 : (u < 0 ? -1 : 0)) * sqrt(2 * d);
  double c0 = fabs(eta) < 1e-2 ? -1.0 / 3 + eta / 12 - 2 * eta * eta / 135 : 1 / u - 1 / eta;
  double r = exp(-a * d) / sqrt(2 * %(pi)r * a) * c0, root = eta * sqrt(a / 2);
  return upper ? erfc(root) / 2 + r : erfc(-root) / 2 - r;
}
FT_FN double ft_q_by_fraction(double a, double x) {  // 0 where the prefactor underflows
  double f, df, log_prefactor = a * log(x) - x - lgamma(a);
  if (log_prefactor <= %(underflow)r) return 0;
  ft_q_fraction(a, x, false, &f, &df);
  return f * exp(log_prefactor);
}
// nan, or the edge value (at x = 0, a = 0, x = inf, a = inf), or 2 for the interior
FT_FN double ft_igamma_edges(double a, double x, double at_zero, double at_a_zero, double at_inf, double at_a_inf) {
  if (a != a || x != x || a < 0 || x < 0 || (a == 0 && x == 0) || (isinf(a) && isinf(x))) return %(nan)s;
  if (x == 0) return at_zero;
  if (a == 0) return at_a_zero;
  if (isinf(x)) return at_inf;
  if (isinf(a)) return at_a_inf;
  return 2;
}
FT_FN double ft_igamma(double a, double x) {
  double edge = ft_igamma_edges(a, x, 0, 1, 1, 0);
  if (edge != 2) return edge;
  double p = a > %(large_a)r ? ft_temme(a, x, false)
           : x > 1 && x > a ? 1 - (x > 1.1 ? ft_q_by_fraction(a, x) : ft_q_series(a, x)) : ft_p_by_series(a, x);
  return p > 1 ? 1 : p;  // as special_math's: a sum of ~1 may round to 1 + ulp (NaN stays NaN)
}
FT_FN float ft_igamma(float a, float x) { return (float)ft_igamma((double)a, (double)x); }
FT_FN double ft_igammac(double a, double x) {
  double edge = ft_igamma_edges(a, x, 1, 0, 0, 1);
  if (edge != 2) return edge;
  double q;
  if (a > %(large_a)r) {
    q = ft_temme(a, x, true);
  } else if (x > 1.1) {
    q = x < a ? 1 - ft_p_by_series(a, x) : ft_q_by_fraction(a, x);
  } else {
    bool by_p = x <= 0.5 ? -0.4 / log(x) < a : x * 1.1 < a;
    q = by_p ? 1 - ft_p_by_series(a, x) : ft_q_series(a, x);
  }
  return q > 1 ? 1 : q;
}
FT_FN float ft_igammac(float a, float x) { return (float)ft_igammac((double)a, (double)x); }
// (log x - digamma(a + 1)) S + dS/da (series), or (log x - digamma(a)) F + dF/da (fraction, *by_fraction)
FT_FN double ft_gamma_derivative_part(double a, double x, bool* by_fraction) {
  double v, dv;
  *by_fraction = x > 1 && x > a;
  if (*by_fraction) { ft_q_fraction(a, x, true, &v, &dv); return (log(x) - ft_digamma(a)) * v + dv; }
  ft_p_series(a, x, true, &v, &dv);
  return (log(x) - ft_digamma(a + 1)) * v + dv;
}
FT_FN double ft_random_gamma_grad_large_a(double a, double x) {  // special_math's: Wilson-Hilferty, Temme
  double lam = x / a, u = lam - 1;
  if (fabs(u) > 0.01) return x > a ? lam * log(lam) / u : x * (log(x) - log(a)) / (x - a);
  double w = cbrt(lam), z = (w - 1 + 1 / (9 * a)) * 3 * sqrt(a), a_dw = 1 / (9 * a) - z / (6 * sqrt(a));
  return w * w * w + 3 * w * w * a_dw;
}
FT_FN double ft_igamma_grad_a(double a, double x) {
  if (a != a || x != x || a <= 0 || x < 0 || isinf(a)) return %(nan)s;
  if (x == 0 || isinf(x)) return 0;
  double log_prefactor = a * log(x) - x - lgamma(a);
  if (log_prefactor <= %(underflow)r) return 0;
  if (a > %(large_a)r) return -ft_random_gamma_grad_large_a(a, x) * exp(log_prefactor - log(x));
  bool by_fraction;
  double d = ft_gamma_derivative_part(a, x, &by_fraction);
  return by_fraction ? -exp(log_prefactor) * d : exp(log_prefactor - log(a)) * d;
}
FT_FN float ft_igamma_grad_a(float a, float x) { return (float)ft_igamma_grad_a((double)a, (double)x); }
FT_FN double ft_random_gamma_grad(double a, double x) {
  if (a != a || x != x || a <= 0 || x < 0 || isinf(a) || isinf(x)) return %(nan)s;
  if (x == 0) return 0;
  if (x >= %(far_tail)r * fmax(a, 1.0)) return (log(x) - ft_digamma(a)) * (1 + (a - 1) / x) + 1 / x;
  if (a > %(large_a)r) return ft_random_gamma_grad_large_a(a, x);
  bool by_fraction;
  double d = ft_gamma_derivative_part(a, x, &by_fraction);
  return by_fraction ? x * d : -x / a * d;
}
FT_FN float ft_random_gamma_grad(float a, float x) { return (float)ft_random_gamma_grad((double)a, (double)x); }
FT_FN double ft_beta_fraction(double a, double b, double x) {  // modified Lentz, DLMF 8.17.22
  double c = 1, d = 1 - (a + b) * x / (a + 1);
  d = 1 / (fabs(d) < %(tiny)r ? %(tiny)r : d);
  double h = d;
  for (int m = 1; m < %(max_terms)d; ++m) {
    double delta = 1;
    for (int half = 0; half < 2; ++half) {
      double numerator = half == 0 ? m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m))
                                   : -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1));
      d = 1 + numerator * d;
      d = 1 / (fabs(d) < %(tiny)r ? %(tiny)r : d);
      c = 1 + numerator / c;
      if (fabs(c) < %(tiny)r) c = %(tiny)r;
      delta = c * d;
      h *= delta;
    }
    if (!(fabs(delta - 1) > %(half_eps)r)) break;  // (a NaN stays NaN)
  }
  return h;
}
FT_FN double ft_stirling_correction(double x) {  // special_math._stirling_correction, x >= 10
  double inv = 1 / x, inv2 = inv * inv, series = 0;
  for (int k = 8; k >= 1; --k) series = series * inv2 + ft_bernoulli[k - 1] / (2 * k * (2 * k - 1));
  return series * inv;
}
FT_FN double ft_log_beta(double a, double b) {  // special_math._log_beta
  double large = fmax(a, b), small = fmin(a, b);
  if (large < 10) return lgamma(large) + lgamma(small) - lgamma(large + small);
  double ratio = small / large;
  double shared = ft_stirling_correction(large) - ft_stirling_correction(large + small) - (large - 0.5) * log1p(ratio);
  if (small >= 10)
    return shared + small * (log(ratio) - log1p(ratio)) + 0.5 * log(2 * %(pi)r / small) + ft_stirling_correction(small);
  return shared + lgamma(small) - small * (log(large) + log1p(ratio)) + small;
}
FT_FN double ft_beta_temme(double a, double b, double x) {  // special_math._beta_temme
  double scale = 1 + b / a, x0 = 1 / scale, y0 = 1 / (1 + a / b), d = x - x0;
  double half_eta2 = x0 * ft_minus_log1p(d / x0) + y0 * ft_minus_log1p(-d / y0);
  double eta = (d > 0 ? 1 : (d < 0 ? -1 : 0)) * sqrt(2 * half_eta2);
  double spread = sqrt(x0 * y0);
  double c0 = fabs(eta) < 1e-5 ? (y0 - x0) / (3 * spread) : 1 / eta - spread / d;
  double root_half_n = sqrt(a / 2) * sqrt(scale);
  double correction = exp(-(a * half_eta2) * scale) / (sqrt(2 * %(pi)r) * root_half_n * sqrt(2.0)) * c0;
  return erfc(-eta * root_half_n) / 2 + correction;
}
FT_FN double ft_betainc(double a, double b, double x) {
  bool at_0 = a == 0 || isinf(b), at_1 = b == 0 || isinf(a);
  if (a != a || b != b || x != x || a < 0 || b < 0 || x < 0 || x > 1 || (at_0 && at_1)) return %(nan)s;
  if (at_0) return x > 0 ? 1 : 0;
  if (at_1) return x < 1 ? 0 : 1;
  if (x == 0 || x == 1) return x;
  if (b >= %(beta_as_gamma)r * pow(fmax(a, 1.0), 1.5)) return ft_igamma(a, -(b + (a - 1) / 2) * log1p(-x));
  if (a >= %(beta_as_gamma)r * pow(fmax(b, 1.0), 1.5)) return ft_igammac(b, -(a + (b - 1) / 2) * log(x));
  if (fmin(a, b) >= %(beta_large)r && fmax(a, b) <= %(beta_large_ratio)r * fmin(a, b)) return ft_beta_temme(a, b, x);
  bool swap = x >= (a + 1) / (a + b + 2);
  double p = swap ? b : a, q = swap ? a : b, y = swap ? 1 - x : x;
  double front = exp(a * log(x) + b * log1p(-x) - ft_log_beta(a, b) - log(p));
  double value = front == 0 ? 0 : front * ft_beta_fraction(p, q, y);
  return swap ? 1 - value : value;
}
FT_FN float ft_betainc(float a, float b, float x) { return (float)ft_betainc((double)a, (double)b, (double)x); }
""" % dict(bernoulli=bernoulli, zeta=zeta, root=root, gamma=sm.EULER_GAMMA, root_hi=sm.DIGAMMA_ROOT_HI,
           root_lo=sm.DIGAMMA_ROOT_LO, root_terms=len(sm._ROOT_SERIES), pi=np.pi,
           inf="__longlong_as_double(0x7ff0000000000000LL)", nan="__longlong_as_double(0x7ff8000000000000LL)",
           max_degree=MAX_POLYGAMMA_ORDER + 3, max_terms=special_math.MAX_SERIES_TERMS,
           half_eps=special_math.EPS64 / 2, eps=special_math.EPS64, inv_eps=1 / special_math.EPS64,
           tiny=special_math.TINY, underflow=special_math.UNDERFLOW,
           large_a=special_math.LARGE_A, far_tail=special_math.FAR_TAIL, beta_as_gamma=special_math.BETA_AS_GAMMA,
           beta_large=special_math.BETA_LARGE, beta_large_ratio=float(special_math.BETA_LARGE_RATIO))


CUDA_HELPERS = _c_helpers()

# The host C++ build of the kernels (tests/test_cuda_codegen.py) has C's erf, erfc and lgamma
# but not CUDA's erfinv: this one solves erf(x) = y by Halley's steps, from special_math's guesses.
HOST_HELPERS = r"""
static inline double erfinv(double y) {
  if (y != y || fabs(y) > 1) return NAN;
  if (fabs(y) == 1) return copysign(INFINITY, y);
  double a = fabs(y), x;
  if (a <= 0.75) {
    double w = %(sqrt_pi_over_2)r * y, w2 = w * w, total = 0;
    static const double c[%(n)d] = {%(series)s};
    for (int k = %(n)d - 1; k >= 0; --k) total = total * w2 + c[k];
    x = w * total;
    for (int k = 0; k < 2; ++k) {
      double u = (erf(x) - y) / (%(two_over_sqrt_pi)r * exp(-x * x));
      x -= u / (1 + x * u);
    }
    return x;
  }
  double q = 1 - a, t = sqrt(-log(q));
  for (int k = 0; k < 3; ++k) t = sqrt(fmax(-log(q * t * 1.7724538509055160273), 0.25));
  for (int k = 0; k < 5; ++k) {
    double u = (q - erfc(t)) / (%(two_over_sqrt_pi)r * exp(-t * t));
    t -= u / (1 + t * u);
  }
  return copysign(t, y);
}
static inline float erfinv(float y) { return (float)erfinv((double)y); }
""" % dict(sqrt_pi_over_2=special_math.SQRT_PI_OVER_2, two_over_sqrt_pi=special_math.TWO_OVER_SQRT_PI,
           n=len(special_math._ERF_INV_SERIES), series=", ".join(map(repr, special_math._ERF_INV_SERIES)))

__all__ = ["erf_p", "erfc_p", "erf_inv_p", "lgamma_p", "digamma_p", "polygamma_p", "igamma_p", "igammac_p",
           "igamma_grad_a_p", "random_gamma_grad_p", "regularized_incomplete_beta_p",
           "erf", "erfc", "erf_inv", "lgamma", "digamma", "polygamma", "igamma", "igammac", "igamma_grad_a",
           "random_gamma_grad", "betainc", "CUDA_HELPERS", "HOST_HELPERS"]
