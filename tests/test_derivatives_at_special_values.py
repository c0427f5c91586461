"""Derivatives at the inputs where a rule is most easily wrong: 0, -0.0, +-1, +-inf
(and nan where the function is defined there), for every differentiable primitive,
against the closed-form derivative. The mistake these catch is a zero or one
coefficient times something infinite or nan at a valid input (x**0 at 0 as
0 * x**-1, a product's gradient as prod / x_i), or a cotangent rule that adds a
zero and then multiplies it by inf.

Each is checked by reverse mode over a vector (the transpose), by grad of each
element on its own (a scalar map, run forward: interpreters/ad.py), by jvp, and
jitted. Results must match the closed form's pattern of nan and +-inf exactly
and its finite values to rounding; the sign of a zero is a convention and is
not compared here (tests/test_random_programs.py compares it between eager and
jit)."""
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import ftrans as ft
import ftrans.numpy as fnp
import ir
import matrix_cases
import special_reference
from test_autodiff import DIFFERENTIABLE

INF, NAN = np.inf, np.nan
SPECIAL = [0.0, -0.0, 1.0, -1.0, INF, -INF, NAN, 2.5, -0.5]
HUGE_AND_TINY = [1e200, -1e200, 5e-324]  # squares overflow or underflow


def special_vectors(size, extremes=True):
    """Special values and ordinary ones; without `extremes`, nothing whose products
    may overflow or underflow (|x| >= 1e-3 or 0)."""
    ordinary = st.floats(-3.0, 3.0) if extremes else st.floats(-3.0, 3.0).filter(lambda v: v == 0 or abs(v) >= 1e-3)
    element = st.one_of(st.sampled_from(SPECIAL + HUGE_AND_TINY if extremes else SPECIAL), ordinary)
    return st.lists(element, min_size=size, max_size=size).map(lambda v: np.array(v, np.float64))


def assert_same_special_values(got, want, what):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    assert got.shape == want.shape, what
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want), err_msg=f"nan pattern of {what}")
    np.testing.assert_array_equal(np.where(np.isinf(want), want, 0.0), np.where(np.isinf(got), got, 0.0),
                                  err_msg=f"infinities of {what}")
    finite = np.isfinite(want)
    np.testing.assert_allclose(got[finite], want[finite], rtol=1e-12, atol=1e-12, err_msg=what)


# -------------------- elementwise: name -> (f, f', where f is defined) --------------------

def _everywhere(x):
    return ~np.isnan(x)


def _finite(x):
    return np.isfinite(x)


def _not_negative(x):  # -0.0 included: 1/x and 1/sqrt(x) are -inf there, in rule and closed form alike
    return x >= 0


def _finite_not_negative(x):
    return np.isfinite(x) & (x >= 0)


def _finite_positive(x):
    return np.isfinite(x) & (x > 0)


def _gamma_density(a, x):
    return np.exp((a - 1) * np.log(x) - x - math.lgamma(a))


def _logistic(x):
    return 1 / (1 + np.exp(-x))


UNARY = {
    "neg": (lambda x: -x, lambda x: -np.ones_like(x), _everywhere),
    # the tangent rounded as the value is (JAX's rule): 1 stays 1, at every value
    "reduce_precision": (lambda x: ft.lax.reduce_precision(x, 8, 7), lambda x: np.ones_like(x), _everywhere),
    "abs": (fnp.abs, lambda x: np.where(x >= 0, 1.0, -1.0), _everywhere),  # +1 at 0, as JAX
    "sin": (fnp.sin, np.cos, _finite), "cos": (fnp.cos, lambda x: -np.sin(x), _finite),
    "tan": (fnp.tan, lambda x: 1 + np.tan(x) ** 2, _finite),
    "atan": (fnp.arctan, lambda x: 1 / (1 + x * x), _everywhere),
    "sinh": (fnp.sinh, np.cosh, _everywhere), "cosh": (fnp.cosh, np.sinh, _everywhere),
    "tanh": (fnp.tanh, lambda x: 1 - np.tanh(x) ** 2, _everywhere),
    "exp": (fnp.exp, np.exp, _everywhere), "expm1": (fnp.expm1, np.exp, _everywhere),
    "log": (fnp.log, lambda x: 1 / x, _not_negative),
    "log1p": (fnp.log1p, lambda x: 1 / (1 + x), lambda x: x >= -1),
    "sqrt": (fnp.sqrt, lambda x: 0.5 / np.sqrt(x), _not_negative),
    "logistic": (ft.lax.logistic, lambda x: _logistic(x) * (1 - _logistic(x)), _everywhere),
    "erf": (ft.lax.erf, lambda x: 2 / np.sqrt(np.pi) * np.exp(-x * x), _everywhere),
    "erfc": (ft.lax.erfc, lambda x: -2 / np.sqrt(np.pi) * np.exp(-x * x), _everywhere),
    "erf_inv": (ft.lax.erf_inv, lambda x: np.sqrt(np.pi) / 2 * np.exp(special_reference.erf_inv(x) ** 2),
                lambda x: np.abs(x) <= 1),
    # at 0 and the poles: digamma's own infinities (-inf at +0, +inf at -0)
    "lgamma": (ft.lax.lgamma, special_reference.digamma, lambda x: x >= 0),
    "digamma": (ft.lax.digamma, lambda x: special_reference.polygamma(1, x), lambda x: x > 0),
    "polygamma": (lambda x: ft.lax.polygamma(2, x), lambda x: special_reference.polygamma(3, x), lambda x: x > 0),
    # the incomplete gamma and beta functions in x (a = 2.5, b = 1.5; the a-derivatives: tests/test_scipy.py):
    # the densities x^(a-1) e^-x / Gamma(a) and x^(a-1) (1-x)^(b-1) / B(a, b) (0 at x = 0 and at x = 1), as the
    # rules write them: at x = inf, (a - 1) log x - x is inf - inf, nan (as JAX's), so x stays finite
    "igamma": (lambda x: ft.lax.igamma(2.5, x), lambda x: _gamma_density(2.5, x), _finite_not_negative),
    "igammac": (lambda x: ft.lax.igammac(2.5, x), lambda x: -_gamma_density(2.5, x), _finite_not_negative),
    # (log x - digamma(a)) times the density: nan at x = 0 (0 * -inf), as the rule writes it
    "igamma_grad_a": (lambda x: ft.lax.igamma_grad_a(2.5, x),
                      lambda x: _gamma_density(2.5, x) * (np.log(x) - special_reference.digamma(2.5)), _finite_positive),
    # digamma(a) - log x - r ((a - 1)/x - 1), r = random_gamma_grad(a, x) itself (checked against mpmath in
    # tests/test_primitives.py); below 1e100, where its continued fraction's recurrence stays finite
    "random_gamma_grad": (lambda x: ft.lax.random_gamma_grad(2.5, x),
                          lambda x: special_reference.digamma(2.5) - np.log(x)
                          - np.asarray(ft.lax.random_gamma_grad(2.5, x)) * (1.5 / x - 1),
                          lambda x: (x > 0) & (x < 1e100)),
    "regularized_incomplete_beta": (lambda x: ft.lax.betainc(2.5, 1.5, x),
                                    lambda x: np.exp(0.5 * np.log1p(-x) + 1.5 * np.log(x)
                                                     - (math.lgamma(2.5) + math.lgamma(1.5) - math.lgamma(4.0))),
                                    lambda x: (x >= 0) & (x <= 1)),
    # the same function with an identity factor: convert_element_type to the same dtype
    "convert_element_type": (lambda x: x.astype(np.float64) * 2.0, lambda x: np.full_like(x, 2.0), _everywhere),
}


def _integer_power(y):
    # x**0 is 1 for every x, nan included: its derivative is 0 everywhere
    derivative = (lambda x: np.zeros_like(x)) if y == 0 else (lambda x: y * x ** (y - 1))
    return (lambda x: x ** y), derivative, (lambda x: np.ones_like(x, bool)) if y == 0 else _everywhere


def _domain_points(draw, defined, size=6):
    """A vector of special values where `defined` holds (0.5 where it does not)."""
    x = draw(special_vectors(size))
    with np.errstate(all="ignore"):
        return np.where(defined(x), x, 0.5)


def _check_elementwise(f, derivative, x, what, other=None):
    """f' at every element of x (f of x, or of x and `other` elementwise): by grad over
    the vector (reverse), by grad of each element on its own (a scalar map), by jvp,
    and jitted."""
    if other is None:
        f2, d2, other = (lambda a, b: f(a)), (lambda a, b: derivative(a)), np.zeros_like(x)
    else:
        f2, d2 = f, derivative
    with np.errstate(all="ignore"):
        want = d2(x, other)
        loss = lambda x: fnp.sum(f2(x, other))  # noqa: E731
        by_element = lambda x: fnp.stack([ft.grad(f2)(x[i], other[i]) for i in range(x.shape[0])])  # noqa: E731
        tangent = lambda x: ft.jvp(lambda a: f2(a, other), (x,), (fnp.ones_like(x),))[1]  # noqa: E731
        for name, fun in (("grad", ft.grad(loss)), ("grad of each element", by_element), ("jvp", tangent)):
            assert_same_special_values(fun(x), want, f"{name} of {what} at {x}")
            assert_same_special_values(ft.jit(fun)(x), want, f"jit of {name} of {what} at {x}")


@pytest.mark.parametrize("name", sorted(UNARY))
@given(data=st.data())
def test_unary_derivatives_at_special_values_match_closed_forms(name, data):
    f, derivative, defined = UNARY[name]
    _check_elementwise(f, derivative, _domain_points(data.draw, defined), name)


@given(st.integers(-3, 4), st.data())
def test_integer_pow_derivatives_at_special_values_match_closed_forms(y, data):
    f, derivative, defined = _integer_power(y)
    _check_elementwise(f, derivative, _domain_points(data.draw, defined), f"x ** {y}")


def test_derivative_of_a_zeroth_power_is_zero_everywhere():
    # the reproducers of the issue, and JAX's answers
    assert ft.grad(lambda x: x ** 0)(0.0) == 0.0
    polynomial = lambda x: sum(c * x ** k for k, c in enumerate([1.0, 2.0, 3.0]))  # noqa: E731
    assert ft.grad(polynomial)(0.0) == 2.0
    assert ft.jit(ft.grad(polynomial))(0.0) == 2.0
    assert ft.grad(ft.grad(polynomial))(0.0) == 6.0
    for x in (0.0, -0.0, INF, -INF, NAN):
        for zeroth_power in (lambda x: x ** 0, lambda x: x ** 0.0, lambda x: fnp.power(x, fnp.zeros_like(x))):
            assert ft.grad(zeroth_power)(x) == 0.0
            assert ft.grad(lambda x: fnp.sum(zeroth_power(x)))(np.full(3, x)).tolist() == [0.0] * 3
            assert ft.jvp(zeroth_power, (x,), (1.0,))[1] == 0.0
    # a power's derivative still takes the exponent's value
    assert ft.grad(lambda x: x ** 1)(0.0) == 1.0 and ft.grad(lambda x: x ** 1.0)(0.0) == 1.0
    assert ft.grad(lambda x: x ** 0.5)(0.0) == INF


# -------------------- binary: name -> (f, (df/dx, df/dy), where it is defined) --------------------

def _tie_weight(a, b):
    return np.where(a > b, 1.0, np.where(a == b, 0.5, 0.0))  # ties share, as JAX


def _pow_base_defined(x, y):  # x >= 0 (not -0.0: (-0.0)**y has its own signs), y finite
    return ((x > 0) | ((x == 0) & ~np.signbit(x))) & np.isfinite(y)


BINARY = {
    "add": (lambda x, y: x + y, (lambda x, y: np.ones_like(x), lambda x, y: np.ones_like(x)), None),
    "sub": (lambda x, y: x - y, (lambda x, y: np.ones_like(x), lambda x, y: -np.ones_like(x)), None),
    "mul": (lambda x, y: x * y, (lambda x, y: y, lambda x, y: x), None),
    # -x/y**2 as -(x/y)/y: y*y underflows to 0 (or overflows) for y where x/y**2 does not
    "div": (lambda x, y: x / y, (lambda x, y: 1 / y, lambda x, y: -(x / y) / y), None),
    "pow": (lambda x, y: x ** y,
            (lambda x, y: np.where(y == 0, 0.0, y * x ** (y - 1)),
             # where x == 0 and y > 0, x**y is 0 for every y near: its derivative is 0
             lambda x, y: np.where(x == 0, 0.0, x ** y * np.log(x))),
            _pow_base_defined),
    "mod": (fnp.mod, (lambda x, y: np.ones_like(x), lambda x, y: -np.floor_divide(x, y)),
            lambda x, y: np.isfinite(x) & np.isfinite(y) & (y != 0)),
    "atan2": (fnp.arctan2, (lambda x, y: y / (x * x + y * y), lambda x, y: -x / (x * x + y * y)),
              lambda x, y: np.isfinite(x) & np.isfinite(y) & ((x != 0) | (y != 0))),
    "max": (fnp.maximum, (_tie_weight, lambda x, y: _tie_weight(y, x)), None),
    "min": (fnp.minimum, (lambda x, y: _tie_weight(-x, -y), lambda x, y: _tie_weight(-y, -x)), None),
}
# where the derivative in y is not defined although f is: y -> x**y is not differentiable
# at x = 0 for y <= 0 (0**y jumps from 1 to inf) nor anywhere at x = inf
_PARTIAL_UNDEFINED = {"pow": (None, lambda x, y: ((x == 0) & (y <= 0)) | np.isinf(x))}


@pytest.mark.parametrize("name", sorted(BINARY))
@given(data=st.data())
def test_binary_derivatives_at_special_values_match_closed_forms(name, data):
    f, derivatives, defined = BINARY[name]
    x, y = data.draw(special_vectors(6)), data.draw(special_vectors(6))
    keep = ~np.isnan(x) & ~np.isnan(y)
    if defined is not None:
        with np.errstate(all="ignore"):
            keep &= defined(x, y)
    x, y = np.where(keep, x, 0.5), np.where(keep, y, 1.5)
    for i, derivative in enumerate(derivatives):
        undefined = _PARTIAL_UNDEFINED.get(name, (None, None))[i]
        if undefined is not None:
            points = ~undefined(x, y)
            x_i, y_i = np.where(points, x, 0.5), np.where(points, y, 1.5)
        else:
            x_i, y_i = x, y
        if i == 0:
            _check_elementwise(f, derivative, x_i, f"d/dx of {name}(x, {y_i})", other=y_i)
        else:
            _check_elementwise(lambda b, a: f(a, b), lambda b, a: derivative(a, b), y_i, f"d/dy of {name}({x_i}, y)",
                               other=x_i)


# -------------------- reductions --------------------

def _prod_of_the_others(x):
    return np.array([np.prod(np.delete(x, i)) for i in range(x.shape[0])])


def _share_of_the_extremum(x, extremum):
    chosen = (x == extremum(x)).astype(float)
    return chosen / chosen.sum()


def _scan_share_of_the_last(x, combine):
    """The gradient of a cummax/cummin's last element: the tangent flows through the
    Hillis-Steele scan (element i meets element i - 2^k), each tie sharing it half and half
    (max's jvp, as JAX's scan-derived cummax)."""
    y, weights, step = x.copy(), np.eye(len(x)), 1
    while step < len(x):
        new_y, new_weights = y.copy(), weights.copy()
        for i in range(step, len(x)):
            a, b = y[i - step], y[i]
            new_y[i] = combine(a, b)
            new_weights[i] = (weights[i - step] if new_y[i] == a and a != b else weights[i] if a != b
                              else (weights[i - step] + weights[i]) / 2)
        y, weights, step = new_y, new_weights, step * 2
    return weights[-1]


REDUCTIONS = {
    "reduce_sum": (fnp.sum, lambda x: np.ones_like(x), True),
    # the last element of a scan is the reduction; cumprod's gradient is exact where others are 0
    "cumprod": (lambda x: ft.lax.cumprod(x)[-1], _prod_of_the_others, True),
    "cummax": (lambda x: ft.lax.cummax(x)[-1], lambda x: _scan_share_of_the_last(x, max), False),
    "cummin": (lambda x: ft.lax.cummin(x)[-1], lambda x: _scan_share_of_the_last(x, min), False),
    "reduce_prod": (fnp.prod, _prod_of_the_others, True),  # exact where other elements are 0 (as JAX)
    "reduce_max": (fnp.max, lambda x: _share_of_the_extremum(x, np.max), False),  # ties share (as JAX)
    "reduce_min": (fnp.min, lambda x: _share_of_the_extremum(x, np.min), False),
}


@pytest.mark.parametrize("name", sorted(REDUCTIONS))
@given(data=st.data())
def test_reduction_gradients_at_special_values_match_closed_forms(name, data):
    f, gradient, nan_allowed = REDUCTIONS[name]
    # no huge or tiny values: the closed form multiplies the others in another order, which may
    # overflow or underflow where ours does not
    x = data.draw(st.integers(1, 7).flatmap(lambda n: special_vectors(n, extremes=False)))
    if not nan_allowed:
        x = np.where(np.isnan(x), 0.5, x)
    if name == "cumprod":
        # NB: the scan's dense steps also compute products the last element never uses; their zero
        # cotangents meet an inf operand there (0 * inf), so at infinities the gradient is NaN (known)
        x = np.where(np.isinf(x), 3.0, x)
    with np.errstate(all="ignore"):
        want = gradient(x)
        assert_same_special_values(ft.grad(f)(x), want, f"grad of {name} at {x}")
        assert_same_special_values(ft.jit(ft.grad(f))(x), want, f"jit of grad of {name} at {x}")
        # the jvp along ones sums the partial derivatives; where some are infinite, how the
        # sum is grouped decides between inf and nan (inf - inf + inf), so only finite ones
        if np.all(np.isfinite(want)):
            assert_same_special_values(ft.jvp(f, (x,), (np.ones_like(x),))[1], np.sum(want),
                                       f"jvp of {name} at {x}")


def test_gradient_of_a_product_with_zeros_is_the_product_of_the_others():
    x = np.array([0.0, 3.0, 0.0, 2.0, 5.0])
    np.testing.assert_array_equal(ft.grad(fnp.prod)(x), [0.0, 0.0, 0.0, 0.0, 0.0])
    x[2] = 1.0
    np.testing.assert_array_equal(ft.grad(fnp.prod)(x), [30.0, 0.0, 0.0, 0.0, 0.0])
    rows = np.array([[0.0, 2.0, 4.0], [1.0, 0.0, 3.0]])
    np.testing.assert_array_equal(ft.grad(lambda a: fnp.sum(fnp.prod(a, axis=1) * np.array([1.0, 10.0])))(rows),
                                  [[8.0, 0.0, 0.0], [0.0, 30.0, 0.0]])


def test_gradient_of_a_long_product_takes_linear_memory():
    # a product rule over pairs: an n x n table of "all but one" products would be 10**10 elements here
    x = np.full(100_000, 1.0 + 1e-6)
    np.testing.assert_allclose(ft.grad(fnp.prod)(x), np.full(x.shape, (1.0 + 1e-6) ** 99_999), rtol=1e-9)


# -------------------- linear primitives: the transpose never adds a zero that meets inf --------------------

def _linear_cases():
    """name -> (f(x) linear in x of shape (6,), a NumPy f on basis vectors)."""
    index = np.array([3, 0, 0, 5])
    cases = {
        "broadcast_in_dim": lambda x: fnp.broadcast_to(x, (2, 6)),
        "reshape": lambda x: fnp.reshape(x, (2, 3)),
        "transpose": lambda x: fnp.transpose(fnp.reshape(x, (2, 3))),
        "squeeze": lambda x: fnp.squeeze(fnp.reshape(x, (1, 6)), 0),
        "rev": lambda x: x[::-1],
        "slice": lambda x: x[1:5:2],
        "concatenate": lambda x: fnp.concatenate([x[:2], x, x[4:]]),
        "gather": lambda x: x[index],
        "cumsum": lambda x: ft.lax.cumsum(x, reverse=True),
        "sort": lambda x: ft.lax.sort_key_val(np.array([2.0, 0.0, 5.0, 1.0, 4.0, 3.0]), x)[1],
        "scatter_add": lambda x: fnp.at(x)[index].add(x[:4]),
        "scatter": lambda x: fnp.at(x)[np.array([1, 4])].set(x[2:4]),
        "select_n": lambda x: fnp.where(np.array([True, False, True, True, False, False]), x, x[::-1]),
        "dot_general": lambda x: np.arange(1.0, 13.0).reshape(2, 6) @ x,  # no zero entry: inf * 0 is meant there
        "reduce_sum": lambda x: fnp.sum(fnp.reshape(x, (2, 3)), axis=1),
        "jit_call": lambda x: ft.jit(lambda v: v[:3] * 2.0 - v[3:])(x),
        "pad": lambda x: ft.lax.pad(x, 0.0, [(1, 2, 1)]),
        # the branch a constant predicate picks (staged under a trace: a cond of linear branches)
        "cond": lambda x: ft.lax.cond(np.float64(1.0) > 0.0, lambda v: v[:3] * 2.0 - v[3:], lambda v: v[3:], x),
        "scan": lambda x: _linear_scan(x),
        "while": lambda x: _linear_while(x),
        # the reverse sweep of that loop, staged by jit (its trip count abstract there): the transpose map
        "while_reverse": lambda x: ft.jit(lambda ct: ft.vjp(_linear_while, fnp.zeros(6))[1](ct)[0])(x),
        "custom_jvp_call": lambda x: _linear_custom(x),
        "checkpoint": lambda x: ft.checkpoint(lambda v: v[:3] * 2.0 - v[3:])(x),
        "name": lambda x: ft.ad_checkpoint.checkpoint_name(x[::-1], "r"),
        # complex parts: real cotangents become complex ones and back, never meeting a 0 * inf
        "complex": lambda x: fnp.imag(_complex(x[:3], x[3:])) + fnp.real(_complex(x[:3], x[3:])),
        "real": lambda x: fnp.real(_complex(x, x[::-1])),
        # the DFT has no zero entry; rfft's transpose pads (zeros beside the cotangent, never times it)
        "fft": lambda x: fnp.real(fnp.fft.rfft(x, n=4)) + fnp.imag(fnp.fft.rfft(x[2:], n=4)),
        "imag": lambda x: fnp.imag(_complex(x[:4], x[2:])),
        "conj": lambda x: fnp.imag(fnp.conj(_complex(x, x[::-1]))),
        # the linear collectives, over the examples of a vmap binding their axis (x's first entries)
        "psum": _over_named_axis(lambda v: ft.lax.psum(v, "i"), (3, 2)),
        "all_gather": _over_named_axis(lambda v: ft.lax.all_gather(v, "i", axis=1), (3, 2)),
        "psum_scatter": _over_named_axis(lambda v: ft.lax.psum_scatter(v, "i"), (2, 2)),
        "ppermute": _over_named_axis(lambda v: ft.lax.ppermute(v, "i", [(0, 1), (1, 2)]), (3, 2)),
        "all_to_all": _over_named_axis(lambda v: ft.lax.all_to_all(v, "i", 0, 0), (2, 2)),
    }
    return cases


def _over_named_axis(per_example, shape):
    size = int(np.prod(shape))
    return lambda x: ft.vmap(per_example, axis_name="i")(fnp.reshape(x[:size], shape))


# differentiable primitives whose special values another table covers
COVERED_ELSEWHERE = {
    "pmax": "over a vmap axis it is reduce_max (REDUCTIONS: ties share the tangent)",
    "pmin": "over a vmap axis it is reduce_min (REDUCTIONS)",
    "axis_index": "an integer: no derivative",
}


@ft.custom_jvp
def _linear_custom(v):
    return v[:3] * 2.0 - v[3:]


_linear_custom.defjvp(lambda p, t: (_linear_custom(*p), _linear_custom(*t)))  # linear: its own derivative


def _complex(x, y):
    return ir.primitives.elementwise.complex(x, y)


def _linear_scan(x):
    """The running sums of x[::2] carried, and twice x[1::2] stacked beside them."""
    carry, ys = ft.lax.scan(lambda c, e: (c + e[0], (c + e[0], e[1] * 2.0)), 0.0, fnp.reshape(x, (3, 2)))
    return fnp.concatenate([fnp.reshape(carry, (1,)), ys[0], ys[1]])


def _linear_while(x):
    """Two iterations of (a, b) -> (2a - b, b) on the halves of x, and b passed through."""
    _, a, b = ft.lax.while_loop(lambda c: c[0] < 2, lambda c: (c[0] + 1, c[1] * 2.0 - c[2], c[2]), (0, x[:3], x[3:]))
    return fnp.concatenate([a, b])


LINEAR = _linear_cases()


def _jacobian(f, n=6):
    return np.stack([np.ravel(np.asarray(f(np.eye(n)[i]))) for i in range(n)], axis=1)


@pytest.mark.parametrize("name", sorted(LINEAR))
@given(data=st.data())
def test_cotangents_of_linear_primitives_skip_what_does_not_depend_on_the_input(name, data):
    """The gradient of sum(w * f(x)) for linear f is J^T w summed over the entries
    of J that are not 0: a weight of w on an output x does not reach is dropped,
    never multiplied by 0 (inf * 0 would be nan)."""
    f = LINEAR[name]
    jacobian = _jacobian(f)
    w = data.draw(special_vectors(jacobian.shape[0])).reshape(np.shape(f(np.zeros(6))))
    w = np.where(np.isnan(w), 2.0, w)
    flat_w = np.ravel(w)
    with np.errstate(all="ignore"):
        want = np.array([np.sum(flat_w[jacobian[:, i] != 0] * jacobian[jacobian[:, i] != 0, i])
                         for i in range(6)])
        loss = lambda x: fnp.sum(f(x) * w)  # noqa: E731
        x = np.linspace(-1.0, 1.0, 6)
        assert_same_special_values(ft.grad(loss)(x), want, f"grad of sum(w * {name}(x)), w = {w}")
        assert_same_special_values(ft.jit(ft.grad(loss))(x), want, f"jit of grad of sum(w * {name}(x)), w = {w}")


def test_cotangent_of_a_padding_value_is_the_sum_over_the_padding():
    x = np.array([1e20, 2.0, 3.0])
    weights = np.array([1.0, 1e20, 1.0, -1e20, 3.0, INF, 1.0, 1.0])  # [v x0 v x1 v x2 v v]
    loss = lambda v: fnp.sum(ft.lax.pad(x, v, [(1, 2, 1)]) * weights)  # noqa: E731
    assert ft.grad(loss)(0.5) == 7.0 and ft.jit(ft.grad(loss))(0.5) == 7.0  # not nan, nor lost to cancellation
    both = ft.grad(lambda x, v: fnp.sum(ft.lax.pad(x, v, [(1, 2, 1)]) * weights), argnums=(0, 1))(x, 0.5)
    np.testing.assert_array_equal(both[0], [1e20, -1e20, INF])
    assert both[1] == 7.0


def test_tangent_of_a_gather_out_of_range_is_zero_not_the_fill_value():
    from ir.primitives import indexing
    x, indices = np.array([1.0, 2.0, 3.0]), np.array([[2], [5], [-1]])
    for fill_value in (None, 7.0):  # nan (the default for floats), or a given constant
        f = lambda x: indexing.gather(x * x, indices, mode="fill", fill_value=fill_value)  # noqa: E731
        expected = np.array([[0.0, 0.0, 6.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
        for jacobian in (ft.jacfwd(f), ft.jacrev(f), ft.jit(ft.jacfwd(f))):
            np.testing.assert_array_equal(jacobian(x), expected)
        np.testing.assert_array_equal(ft.jvp(f, (x,), (np.ones(3),))[1], [6.0, 0.0, 0.0])


# -------------------- decompositions: NaN in, NaN out (JAX's behaviour), never an error --------------------

DECOMPOSITIONS = matrix_cases.FUNCTIONS


@pytest.mark.parametrize("name", sorted(DECOMPOSITIONS))
@pytest.mark.parametrize("special", [np.nan, np.inf])
def test_decompositions_of_a_matrix_with_a_special_entry_give_nan_not_an_error(name, special):
    fun, nargs = DECOMPOSITIONS[name]
    args = [np.array([0.5, special])] + [np.array([0.3])] * (nargs - 1)
    with np.errstate(all="ignore"):
        out, tangent = ft.jvp(fun, tuple(args), tuple(np.ones_like(a) for a in args))
        gradient = ft.grad(lambda *xs: fnp.sum(fun(*xs)))(*args)
    assert np.isnan(out).any() and np.isnan(tangent).any() and np.isnan(gradient).any()


def test_eigh_of_a_degenerate_matrix_as_jax():
    """Equal eigenvalues: their tangents are finite (diag(V^T A' V)), the eigenvectors' are not
    (1 / (w_j - w_i) is inf): JAX's rule, which does not pick a basis of the eigenspace."""
    from ir.primitives import decompositions as dec
    a_dot = np.array([[1.0, 2.0], [2.0, 3.0]])
    (v, w), (v_dot, w_dot) = ft.jvp(dec.eigh, (np.eye(2),), (a_dot,))
    np.testing.assert_allclose(np.sort(w_dot), [1.0, 3.0])  # V = I: the diagonal of A'
    assert not np.isfinite(v_dot).all()


def test_every_differentiable_primitive_is_checked_at_special_values():
    checked = set(UNARY) | set(BINARY) | set(REDUCTIONS) | set(LINEAR) | set(COMBINING_SCATTERS) | {"integer_pow"}
    checked |= set(DECOMPOSITIONS)
    assert set(DIFFERENTIABLE) - set(COVERED_ELSEWHERE) <= checked, set(DIFFERENTIABLE) - checked
    assert checked <= set(ir.PRIMITIVES)


# -------------------- combining scatters: x.at[i].multiply / .min / .max --------------------

SCATTER_INDEX = np.array([3, 0, 0, 5])  # a repeated position, and positions no update reaches


def _candidates(x, u, j):
    """What result element j of a combining scatter combines: x[j], then the updates there."""
    return [x[j]] + [u[k] for k in range(len(u)) if SCATTER_INDEX[k] == j]


def _scatter_mul_closed_form(x, u):
    """d sum(out)/dx_j: the product of the updates at j; d sum(out)/du_k: x there
    times the product of the other updates there (no division)."""
    dx = np.array([np.prod(_candidates(x, u, j)[1:]) for j in range(len(x))])
    du = np.array([x[SCATTER_INDEX[k]] * np.prod([u[m] for m in range(len(u)) if m != k
                                                   and SCATTER_INDEX[m] == SCATTER_INDEX[k]])
                   for k in range(len(u))])
    return dx, du


def _extremal_closed_form(combine):
    """Ties share (as JAX): each candidate equal to the result (NaN equal to NaN)
    gets 1 / (how many are)."""
    def closed_form(x, u):
        def same(a, b):
            return a == b or (np.isnan(a) and np.isnan(b))
        out = [combine(_candidates(x, u, j)) for j in range(len(x))]
        count = [sum(same(c, out[j]) for c in _candidates(x, u, j)) for j in range(len(x))]
        dx = np.array([same(x[j], out[j]) / count[j] for j in range(len(x))])
        du = np.array([same(u[k], out[SCATTER_INDEX[k]]) / count[SCATTER_INDEX[k]] for k in range(len(u))])
        return dx, du
    return closed_form


def _nan_propagating(reduce):
    return lambda values: np.nan if np.isnan(values).any() else reduce(values)


COMBINING_SCATTERS = {
    "scatter_mul": (lambda x, u: x.at[SCATTER_INDEX].multiply(u), _scatter_mul_closed_form),
    "scatter_min": (lambda x, u: x.at[SCATTER_INDEX].min(u), _extremal_closed_form(_nan_propagating(min))),
    "scatter_max": (lambda x, u: x.at[SCATTER_INDEX].max(u), _extremal_closed_form(_nan_propagating(max))),
}


@pytest.mark.parametrize("name", sorted(COMBINING_SCATTERS))
@given(data=st.data())
def test_derivatives_of_combining_scatters_at_special_values(name, data):
    f, closed_form = COMBINING_SCATTERS[name]
    # scatter_mul's derivative is a product of the others, never a quotient: exact at inf, nan,
    # and updates whose product over- or underflows (1e200 * 1e200, 5e-324 * 0.5) too
    extremes = name == "scatter_mul"
    x = data.draw(special_vectors(6, extremes=extremes))
    u = data.draw(special_vectors(4, extremes=extremes))
    loss = lambda x, u: fnp.sum(f(fnp.asarray(x), u))  # noqa: E731
    with np.errstate(all="ignore"):
        want_x, want_u = closed_form(x, u)
        for how, gradient in (("grad", ft.grad(loss, argnums=(0, 1))), ("jit of grad", ft.jit(ft.grad(loss, argnums=(0, 1))))):
            got_x, got_u = gradient(x, u)
            assert_same_special_values(got_x, want_x, f"{how} of sum({name}) in x, x = {x}, u = {u}")
            assert_same_special_values(got_u, want_u, f"{how} of sum({name}) in the updates, x = {x}, u = {u}")
        _, tangent = ft.jvp(lambda u: f(fnp.asarray(x), u), (u,), (np.ones(4),))
        want_tangent = np.array([np.sum(want_u[SCATTER_INDEX == j]) if (SCATTER_INDEX == j).any() else 0.0
                                 for j in range(6)])
        assert_same_special_values(tangent, want_tangent, f"jvp of {name} along its updates, x = {x}, u = {u}")


# -------------------- scatter_mul at repeated positions: the product of the other updates --------------------

# 8 updates into 5 positions: a run of 4 at position 2, a pair at 0, one alone at 3, row 4 out of
# range (dropped, with mode="drop"), positions 1 and 4 untouched
REPEATED_INDEX = np.array([2, 0, 2, 2, 5, 0, 2, 3])
REPEATED_X = np.array([1.5, 2.0, -0.5, 4.0, 8.0])
REPEATED_WEIGHTS = np.array([1.0, 2.0, 0.5, -1.0, 3.0])


def _weighted_multiply(u, index):
    return fnp.sum(REPEATED_WEIGHTS * fnp.asarray(REPEATED_X).at[index].multiply(u, mode="drop"))


def _expanded_product_derivative(u, order):
    """The order-th derivative tensor of the same function written out by hand,
    sum over positions p of w_p x_p prod_{k at p} u_k: d^n/du_i..du_l is w_p x_p times
    the product of the updates at p other than i..l when those are n distinct updates
    at one position p, and 0 otherwise."""
    count = len(u)
    tensor = np.zeros((count,) * order)
    for at in np.ndindex(*tensor.shape):
        p = REPEATED_INDEX[at[0]]
        if len(set(at)) == order and p < len(REPEATED_X) and all(REPEATED_INDEX[k] == p for k in at):
            rest = [u[k] for k in range(count) if REPEATED_INDEX[k] == p and k not in at]
            tensor[at] = REPEATED_WEIGHTS[p] * REPEATED_X[p] * np.prod(rest)
    return tensor


def _third_derivative(u, index):
    return ft.jacfwd(ft.jacfwd(ft.grad(_weighted_multiply)))(u, index)


# dyadic values: every product of a few of them is exact, so results are compared exactly
REPEATED_UPDATES = {
    # three zeros at one position: (product of all) / (this one) can tell nothing apart
    "zeros": [0.0, 0.0, -0.0, 0.0, 5.0, 2.0, 3.0, 0.0],
    # products that underflow: 2**-1040 * 2**-1040 is 0 though each is not
    "subnormal": [2.0 ** -1050, 2.0 ** -1040, 3.0, -0.5, 7.0, 2.0 ** -1040, 2.0 ** -10, 2.0 ** -1060],
    # products that overflow: 2**1020 * 2**1000 is inf though each is finite
    "huge": [2.0 ** 1000, 2.0 ** 1020, 2.0 ** 20, -3.0, 2.0 ** 1023, 2.0 ** 1000, 0.25, -(2.0 ** 1000)],
    "ordinary": [1.5, -2.0, 0.5, 4.0, -1.0, 3.0, -0.25, 2.0],
}


@pytest.mark.parametrize("case", sorted(REPEATED_UPDATES))
def test_scatter_mul_derivatives_at_repeated_positions_match_the_expanded_product_to_order_3(case):
    u = np.array(REPEATED_UPDATES[case])
    want = [_expanded_product_derivative(u, order) for order in (1, 2, 3)]
    index_batch = np.stack([REPEATED_INDEX, REPEATED_INDEX])

    def derivatives(u, index):
        return (ft.grad(_weighted_multiply)(u, index), ft.hessian(_weighted_multiply)(u, index),
                _third_derivative(u, index))

    def batched(u):  # indices batched by vmap: traced (no value at trace time), eagerly
        return [d[0] for d in ft.vmap(derivatives, in_axes=(None, 0))(u, index_batch)]
    ways = {
        "concrete indices, eagerly": derivatives(u, REPEATED_INDEX),
        "concrete indices, jitted": ft.jit(lambda u: derivatives(u, REPEATED_INDEX))(u),
        "traced indices, eagerly": batched(u),
        "traced indices, jitted": ft.jit(derivatives)(u, REPEATED_INDEX),
    }
    for how, got in ways.items():
        for order, (g, w) in enumerate(zip(got, want, strict=True), start=1):
            np.testing.assert_array_equal(g, w, err_msg=f"order {order} with {how}, u = {u}")


@pytest.mark.parametrize("case", sorted(REPEATED_UPDATES))
def test_jet_of_scatter_mul_at_repeated_positions_matches_the_expanded_product(case):
    u = np.array(REPEATED_UPDATES[case])
    v = np.array([1.0, -1.0, 2.0, 0.5, 1.0, -2.0, 1.0, 0.25])
    tensors = [_expanded_product_derivative(u, order) for order in (1, 2, 3)]
    # along the line u + t v the k-th derivative is the k-th derivative tensor applied to v k times
    want = [np.einsum("i,i->", tensors[0], v), np.einsum("ij,i,j->", tensors[1], v, v),
            np.einsum("ijl,i,j,l->", tensors[2], v, v, v)]
    zero = np.zeros_like(u)
    for index, how in ((REPEATED_INDEX, "concrete"), (None, "traced")):
        if index is None:
            got = ft.jit(lambda u, index: ft.jet(lambda u: _weighted_multiply(u, index), (u,), ((v, zero, zero),))[1])(
                u, REPEATED_INDEX)
        else:
            got = ft.jet(lambda u: _weighted_multiply(u, index), (u,), ((v, zero, zero),))[1]
        np.testing.assert_allclose(np.array(got), want, rtol=1e-15, atol=0, err_msg=f"{how} indices, u = {u}")


def test_gradient_of_multiply_at_an_infinite_update_is_the_product_of_the_others():
    x, index = np.array([2.0, 1.0]), np.array([0, 0, 0, 1])
    loss = lambda u: fnp.sum(fnp.asarray(x).at[index].multiply(u))  # noqa: E731
    u = np.array([INF, 3.0, -0.5, INF])
    want = [2.0 * 3.0 * -0.5, 2.0 * INF * -0.5, 2.0 * INF * 3.0, 1.0]  # (product of all) / u_0 would be nan
    # reverse mode: forward mode's basis tangents would meet the infinite partials as 0 * inf
    for gradient in (ft.grad(loss), ft.jit(ft.grad(loss))):
        np.testing.assert_array_equal(gradient(u), want)


def test_gradient_of_multiply_in_float32_is_exact_where_the_product_overflows():
    x, index = np.ones(2, np.float32), np.array([0, 0, 1, 0])
    u = np.array([1e15, 2e15, 3.0, 4e15], np.float32)  # the three at position 0 multiply to inf in float32
    loss = lambda u: fnp.sum(fnp.asarray(x).at[index].multiply(u))  # noqa: E731
    want = np.array([u[1] * u[3], u[0] * u[3], 1.0, u[0] * u[1]], np.float32)  # each finite
    for gradient in (ft.grad(loss), ft.jit(ft.grad(loss)), ft.jacfwd(loss)):
        got = gradient(u)
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got, want)


def test_multiply_at_subnormal_updates_passes_check_grads():
    x, index = np.array([1.5, -2.0, 0.5]), np.array([0, 0, 1, 0, 2])
    for u in ([2.2e-313, 2.2e-313, 1.0, 0.5, 3.0], [5e-324, 1e-310, 2e-320, -3e-315, 0.7]):
        ft.check_grads(lambda u: fnp.at(x)[index].multiply(u) ** 2, (np.array(u),), order=3)


@st.composite
def _scatter_mul_cases(draw):
    """Index rows (some out of range), updates of two columns, the operand; up to
    70 rows so the traced path's sort pads to a power of 2 and runs several rounds."""
    count = draw(st.integers(1, 70))
    positions = draw(st.integers(1, 6))
    index = np.array(draw(st.lists(st.integers(-1, positions), min_size=count, max_size=count)))
    # 0, or at least 0.1 in size (built, not filtered: hypothesis draws many values near 0, and filtering
    # 140 of them an example failed its filter_too_much health check now and then)
    values = st.one_of(st.just(0.0), st.floats(0.1, 2.0, exclude_min=True), st.floats(-2.0, -0.1, exclude_max=True))
    u = np.array(draw(st.lists(st.tuples(values, values), min_size=count, max_size=count)))
    x = np.array(draw(st.lists(st.tuples(values, values), min_size=positions, max_size=positions)))
    return x, index, u


@given(_scatter_mul_cases())
def test_scatter_mul_derivative_is_the_same_for_concrete_and_traced_indices(case):
    x, index, u = case
    tangent = np.cos(np.arange(u.size)).reshape(u.shape)

    def f(u, index):
        return fnp.asarray(x).at[index].multiply(u, mode="drop", wrap_negative_indices=False)

    def jvp(u, index):
        return ft.jvp(lambda u: f(u, index), (u,), (tangent,))[1]
    concrete = jvp(u, index)  # the rule sees the indices' values: sorted in NumPy
    traced = ft.jit(jvp)(u, index)  # the rule sees a traced index: sorted by primitives
    np.testing.assert_array_equal(traced, concrete)  # the same order of products, so the same bits
    kept = (index >= 0) & (index < len(x))
    want = np.zeros_like(x)
    for k in np.flatnonzero(kept):
        others = np.prod([u[m] for m in np.flatnonzero(kept) if m != k and index[m] == index[k]], axis=0)
        want[index[k]] += x[index[k]] * tangent[k] * others
    np.testing.assert_allclose(concrete, want, rtol=1e-12, atol=1e-12)
