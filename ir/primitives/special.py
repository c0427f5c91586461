"""Special functions: erf, erfc, erf_inv, lgamma, digamma, polygamma (elementwise, floats only).

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

from ir.primitive import Int, Primitive
from ir.primitives import special_math
from ir.primitives.ad_util import jvp_from_derivatives, scalar_like
from ir.primitives.batch_util import elementwise_batcher
from ir.primitives.elementwise import FLOAT, _check_dtype, exp, mul, neg, sub, unary
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
""" % dict(bernoulli=bernoulli, zeta=zeta, root=root, gamma=sm.EULER_GAMMA, root_hi=sm.DIGAMMA_ROOT_HI,
           root_lo=sm.DIGAMMA_ROOT_LO, root_terms=len(sm._ROOT_SERIES), pi=np.pi,
           inf="__longlong_as_double(0x7ff0000000000000LL)", nan="__longlong_as_double(0x7ff8000000000000LL)",
           max_degree=MAX_POLYGAMMA_ORDER + 3)


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

__all__ = ["erf_p", "erfc_p", "erf_inv_p", "lgamma_p", "digamma_p", "polygamma_p",
           "erf", "erfc", "erf_inv", "lgamma", "digamma", "polygamma", "CUDA_HELPERS", "HOST_HELPERS"]
