"""Helpers the Taylor-mode (`jet`) rules share, and the registrars of whole families.

A `taylor` rule takes ``(primals, series, **params)``: each operand's value
and its series, a list of K coefficients (arrays, or `Zero(aval)` where a
coefficient is known to be zero), and returns ``(primal_out, series_out)``
(a list of each, for a primitive with several results). Coefficients follow
JAX's jet convention, scaled as derivatives: a value moving along a curve as

    x(t) = x_0 + x_1 t + x_2 t^2 / 2! + ... + x_K t^K / K!

has the series ``[x_1, ..., x_K]``, x_k the k-th derivative of x(t) at 0.
Like jvp rules, taylor rules run one level out (in the jet trace's parent)
and are written with primitives, so they stage, batch and differentiate.

The families, each filling the `taylor` slot for its primitives:

- `taylor_from_jvp`: linear and piecewise-linear primitives (add, reshape,
  gather, select_n, max, ...), whose derivative is constant along the curve
  almost everywhere: the k-th output coefficient is the jvp rule applied to
  the k-th input coefficients.
- `zero_taylor`: integer, bool and piecewise-constant results.
- `bilinear_taylor`: mul and dot_general, by Leibniz's rule.
- `unary_taylor`: elementwise g(x), by Faà di Bruno's formula from the
  derivatives g', ..., g^(K) at x (each primitive declares how to compute
  them: a cycle for sin, polynomials in g for tanh, ...).
- `taylor_from_derivative`: any primitive whose jvp rule differentiates
  again: y' = J(x)[x'], so y's series is the (order K-1) jet of its jvp rule
  along x's derivative (JAX's `def_deriv`, for every operand at once).

Every output coefficient of order K is linear in the inputs' coefficients of
order K, with factors that depend on lower orders only (the leading Faà di
Bruno term g'(x_0) x_K, the Leibniz terms x_0 y_K and x_K y_0): the collapse
pass (ir/passes/collapse.py) relies on the rules writing it so.
"""
from __future__ import annotations

import math

from ir.markers import Zero, tangent_aval
from ir.primitive import PRIMITIVES
from ir.primitives.ad_util import instantiate, scalar_like
from ir.tracing import bind, get_aval

# NB: the primitive modules use these registrars while they are being declared,
# so this module reaches `mul` and `add` through the registry at call time (as ad_util does).

# The jet interpreter registers itself here (ir imports no interpreter):
# JET_OF_FUNCTION["jet"](fun, primals, series) -> (outs, series_out), where a series is
# None for a constant operand; used by `taylor_from_derivative`. See interpreters/taylor.py.
JET_OF_FUNCTION = {}


def is_zero(c):
    return type(c) is Zero


def zero_series(aval, order):
    """K zero coefficients of a value of `aval`."""
    return [Zero(tangent_aval(aval))] * order


def _mul(a, b):
    return bind(PRIMITIVES["mul"], a, b)


def scaled(c, x):
    """c * x for a Python number c (no equation when c is 1)."""
    return x if c == 1 else _mul(x, scalar_like(x, c))


def total(terms, aval):
    """The sum of `terms` (Zeros skipped), or Zero(aval) when there is none."""
    out = None
    for term in terms:
        if is_zero(term):
            continue
        out = term if out is None else bind(PRIMITIVES["add"], out, term)
    return Zero(aval) if out is None else out


# -------------------- linear and piecewise-linear: the jvp per coefficient --------------------

def taylor_from_jvp(prim):
    """The rule of a primitive linear (or linear by pieces) in its operands:
    out_k = J[x_k], the jvp rule applied to the k-th coefficients, for every k.
    (Exact wherever the Jacobian J is constant near x_0: everywhere for linear
    primitives, away from the kinks for abs, max, select_n and the like.)
    The jvp rule computes the primal output again for each nonzero order;
    staged, CSE merges those, and eagerly they are the price of reusing the rule."""
    def rule(primals, series, **params):
        order = len(series[0])
        out, coefficients = None, []
        for k in range(order):
            tangents = [s[k] for s in series]
            if all(is_zero(t) for t in tangents):
                coefficients.append(None)
                continue
            primal_out, tangent_out = prim.jvp(primals, tangents, **params)
            out = primal_out if out is None else out
            coefficients.append(tangent_out)
        if out is None:  # no nonzero coefficient at all (a jet trace does not ask for this)
            out = bind(prim, *primals, **params)
        return out, _fill_zeros(prim, out, coefficients)
    return rule


def _fill_zeros(prim, out, coefficients):
    """Per-order results (None for a zero order) as the rule's series: one list
    of coefficients (per output, when there are several)."""
    if not prim.multiple_results:
        zero = Zero(tangent_aval(get_aval(out)))
        return [zero if c is None else c for c in coefficients]
    return [[Zero(tangent_aval(get_aval(o))) if c is None else c[i] for c in coefficients]
            for i, o in enumerate(out)]


def zero_taylor(prim):
    """For integer and bool results, and piecewise-constant ones (floor, sign): no coefficient."""
    def rule(primals, series, **params):
        out = bind(prim, *primals, **params)
        order = len(series[0])
        if prim.multiple_results:
            return out, [zero_series(get_aval(o), order) for o in out]
        return out, zero_series(get_aval(out), order)
    return rule


# -------------------- bilinear: Leibniz's rule --------------------

def leibniz(product, x0, xs, y0, ys, k):
    """The terms of the k-th coefficient of B(x(t), y(t)) for a bilinear B:
    C(k, j) B(x_j, y_{k-j}) for j = 0..k (Zeros where a factor is zero)."""
    xs, ys = [x0, *xs], [y0, *ys]
    terms = []
    for j in range(k + 1):
        a, b = xs[j], ys[k - j]
        if not (is_zero(a) or is_zero(b)):
            terms.append(scaled(math.comb(k, j), product(a, b)))
    return terms


def bilinear_taylor(prim):
    """mul and dot_general: out_k = sum_j C(k, j) B(x_j, y_{k-j})."""
    def rule(primals, series, **params):
        (x, y), (xs, ys) = primals, series
        out = bind(prim, x, y, **params)
        aval = tangent_aval(get_aval(out))
        product = lambda a, b: bind(prim, a, b, **params)  # noqa: E731
        return out, [total(leibniz(product, x, xs, y, ys, k), aval) for k in range(1, len(xs) + 1)]
    return rule


# -------------------- elementwise g(x): Faà di Bruno's formula --------------------

def _partitions(n, largest=None):
    """The partitions of n, each a list of (part, multiplicity), larger parts first."""
    largest = n if largest is None else largest
    if n == 0:
        return [[]]
    found = []
    for part in range(min(n, largest), 0, -1):
        for count in range(n // part, 0, -1):
            for rest in _partitions(n - part * count, part - 1):
                found.append([(part, count)] + rest)
    return found


_PARTITIONS = {}


def partitions(n):
    """The partitions of n with their Faà di Bruno coefficients n! / prod(m! (part!)^m):
    [(coefficient, [(part, m), ...], number of parts)], cached (n is a Taylor order)."""
    if n not in _PARTITIONS:
        _PARTITIONS[n] = [
            (math.factorial(n) // math.prod(math.factorial(m) * math.factorial(part) ** m for part, m in p),
             p, sum(m for _, m in p))
            for p in _partitions(n)]
    return _PARTITIONS[n]


def derivative_orders_needed(xs):
    """The highest derivative of g that Faà di Bruno's formula meets with these
    coefficients: the most parts of a partition whose parts' coefficients are all nonzero."""
    needed = 0
    for k in range(1, len(xs) + 1):
        for _, parts, m in partitions(k):
            if all(not is_zero(xs[part - 1]) for part, _ in parts):
                needed = max(needed, m)
    return needed


def faa_di_bruno(derivatives, xs, aval):
    """The series of g(x(t)) from `derivatives` [g'(x_0), ..., g^(m)(x_0)]
    (arrays, rank-0 constants or Zeros; at least `derivative_orders_needed(xs)`
    of them) and x's series: y_k = sum over the partitions p of k of
    coefficient(p) * g^(|p|)(x_0) * prod_{part in p} x_part. Products of
    coefficients are shared between orders; y_k's leading term is g'(x_0) x_k."""
    powers = {}

    def power(part, m):  # x_part ** m, as m - 1 multiplications shared with lower powers
        key = (part, m)
        if key not in powers:
            powers[key] = xs[part - 1] if m == 1 else _mul(power(part, m - 1), xs[part - 1])
        return powers[key]

    series = []
    for k in range(1, len(xs) + 1):
        terms = []
        for coefficient, parts, m in partitions(k):
            if any(is_zero(xs[part - 1]) for part, _ in parts) or is_zero(derivatives[m - 1]):
                continue
            monomial = None
            for part, count in parts:
                factor = power(part, count)
                monomial = factor if monomial is None else _mul(monomial, factor)
            terms.append(_mul(scaled(coefficient, derivatives[m - 1]), monomial))
        series.append(total(terms, aval))
    return series


def unary_taylor(prim, derivatives):
    """The rule of elementwise g = prim, from ``derivatives(x, y, m, **params)``:
    [g'(x), ..., g^(m)(x)] at x, where y = g(x) (Zero or rank-0 constants
    allowed). Only as many as the coefficients need are asked for."""
    def rule(primals, series, **params):
        (x,), (xs,) = primals, series
        y = bind(prim, x, **params)
        needed = derivative_orders_needed(xs)
        ds = derivatives(x, y, needed, **params) if needed else []
        return y, faa_di_bruno(ds, xs, tangent_aval(get_aval(y)))
    return rule


def horner(coefficients, y):
    """sum_i coefficients[i] * y**i (Python numbers, lowest power first) at y, by Horner's scheme."""
    top = len(coefficients) - 1
    while top > 0 and coefficients[top] == 0:
        top -= 1
    if top == 0:
        return scalar_like(y, coefficients[0])  # a constant: rank-0, beside arrays of any shape
    value = scaled(coefficients[top], y)
    for i in range(top - 1, -1, -1):
        if coefficients[i] != 0:
            value = bind(PRIMITIVES["add"], value, scalar_like(y, coefficients[i]))
        if i > 0:
            value = _mul(value, y)
    return value


def polynomial_derivatives(ode):
    """`derivatives` for a g whose derivative is a polynomial in g itself,
    g' = Q(g) (`ode`: Q's coefficients, lowest power first): tanh' = 1 - tanh^2,
    tan' = 1 + tan^2, logistic' = logistic - logistic^2. Then g^(m) = P_m(g)
    with P_1 = Q and P_{m+1} = P_m' Q."""
    def derivatives(x, y, m):
        polynomials = [list(ode)]  # worked out on each call: a few small lists, and no shared state
        while len(polynomials) < m:
            slope = [i * c for i, c in enumerate(polynomials[-1])][1:]
            polynomials.append(_polynomial_product(slope, ode))
        return [horner(p, y) for p in polynomials[:m]]
    return derivatives


def _polynomial_product(p, q):
    out = [0] * (len(p) + len(q) - 1)
    for i, a in enumerate(p):
        for j, b in enumerate(q):
            out[i + j] += a * b
    return out


def powers_of(r, m):
    """[r, r^2, ..., r^m] by repeated multiplication."""
    out = [r]
    while len(out) < m:
        out.append(_mul(out[-1], r))
    return out


# -------------------- anything differentiable again: the jet of the jvp --------------------

def taylor_from_derivative(prim):
    """The rule of a primitive whose jvp rule is written with differentiable
    primitives: along the curve, y'(t) = J(x(t))[x'(t)], the jvp rule's tangent.
    So y's coefficients of order 1..K are those of order 0..K-1 of the jvp rule
    run on x's series truncated to K-1 and on the series of x' (x's shifted by
    one: x'_j = x_{j+1}). Exact wherever the jvp rule's own derivatives are."""
    def rule(primals, series, **params):
        order = len(series[0])
        n = len(primals)
        out = bind(prim, *primals, **params)
        first = [s[0] for s in series]
        if order == 1:
            _, tangent = prim.jvp(primals, first, **params)
            return out, _as_series(prim, out, [tangent])
        tangents, tangent_series = [], []
        for s in series:
            if all(is_zero(c) for c in s):
                tangents.append(s[0])  # a Zero: the jvp rule sees no tangent there
                tangent_series.append(None)
            else:
                tangents.append(instantiate(s[0]))
                tangent_series.append(list(s[1:]))
        inner_series = [None if all(is_zero(c) for c in s[:-1]) else list(s[:-1]) for s in series]

        def tangent_of(*args):
            tangent_out = prim.jvp(list(args[:n]), list(args[n:]), **params)[1]
            return list(tangent_out) if prim.multiple_results else [tangent_out]
        jet = JET_OF_FUNCTION["jet"]
        tangents_out, tangent_series_out = jet(tangent_of, [*primals, *tangents], [*inner_series, *tangent_series])
        per_output = [[t, *s] for t, s in zip(tangents_out, tangent_series_out, strict=True)]
        return out, (per_output if prim.multiple_results else per_output[0])
    return rule


def _as_series(prim, out, coefficients):
    """One order of coefficients (per output, when there are several) as the rule's series."""
    if prim.multiple_results:
        return [[c[i] for c in coefficients] for i in range(len(out))]
    return coefficients
