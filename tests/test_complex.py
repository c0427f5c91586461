"""Complex numbers: NEP 50 promotion, the elementwise functions against NumPy on complex64
and complex128 (special parts too), JAX's differentiation conventions on closed forms,
check_grads on holomorphic and non-holomorphic functions, vmap against loops, jit
against eager, and the printed IR read back."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import ftrans as ft
import ftrans.numpy as fnp
from conftest import jit_for

C64, C128 = np.dtype(np.complex64), np.dtype(np.complex128)


def _complexes(dtype, shape, lo=-2.0, hi=2.0):
    part = st.floats(lo, hi, width=4 * np.dtype(dtype).itemsize)
    return hnp.arrays(dtype, shape, elements=st.builds(complex, part, part))


# -------------------- dtypes and promotion --------------------

@pytest.mark.parametrize("x, y, want", [
    (np.ones(2, np.float32), 1j, C64), (np.ones(2), 1j, C128), (np.ones(2, np.int32), 1j, C128),
    (np.ones(2, C64), 2.0, C64), (np.ones(2, C64), np.ones(2), C128), (np.ones(2, C64), 3, C64),
    (np.float16(1), 1j, C64), (1.0, 2j, C128)])
def test_promotion_follows_nep_50(x, y, want):
    assert fnp.add(x, y).dtype == want == np.add(x, y).dtype
    closed = ft.make_jaxpr(lambda a: a * y)(np.asarray(x))
    assert closed.out_avals[0].dtype == want


def test_tracer_parts_and_predicates():
    z = np.array([1 + 2j, -3j])
    out = ft.jit(lambda z: (z.real, z.imag, z.conj(), fnp.iscomplexobj(z)))(z)
    np.testing.assert_array_equal(out[0], z.real)
    np.testing.assert_array_equal(out[1], z.imag)
    np.testing.assert_array_equal(out[2], z.conj())
    assert out[3] is True or out[3] == True  # noqa: E712 (a Python bool, returned as a 0-d array)


@pytest.mark.parametrize("name", ["floor", "ceil", "floor_divide", "mod"])
def test_functions_numpy_refuses_on_complex_are_type_errors(name):
    z = np.array([1 + 2j])
    fun = getattr(fnp, name)
    with pytest.raises(TypeError, match=name):
        fun(z) if name in ("floor", "ceil") else fun(z, z)


# -------------------- elementwise against NumPy, special parts included --------------------

_SPECIAL_PARTS = [0.0, -0.0, 1.0, -2.5, np.inf, -np.inf, np.nan]
UNARY = ["negative", "abs", "sqrt", "exp", "log", "sin", "cos", "tan", "tanh", "sinh", "cosh", "expm1", "log1p",
         "square", "reciprocal", "sign", "real", "imag", "conj", "angle"]
BINARY = ["add", "subtract", "multiply", "divide", "power", "equal", "not_equal", "maximum", "minimum",
          "less", "less_equal", "greater", "greater_equal"]


def _special(dtype):
    re, im = np.meshgrid(_SPECIAL_PARTS, _SPECIAL_PARTS)
    out = np.empty(re.size, dtype)
    out.real, out.imag = re.ravel(), im.ravel()
    return out


def _same(got, want, what):
    got, want = np.asarray(got), np.asarray(want)
    assert got.dtype == want.dtype, what
    np.testing.assert_allclose(got, want, rtol=1e-5 if want.dtype in (C64, np.float32) else 1e-12, equal_nan=True,
                               err_msg=what)


@pytest.mark.parametrize("dtype", [C64, C128])
@pytest.mark.parametrize("name", UNARY)
def test_unary_functions_match_numpy_at_special_parts(name, dtype):
    z = _special(dtype)
    with np.errstate(all="ignore"):
        want = getattr(np, name)(z)
    _same(getattr(fnp, name)(z), want, f"{name} eager")
    _same(ft.jit(getattr(fnp, name))(z), want, f"{name} jit")


@pytest.mark.parametrize("dtype", [C64, C128])
@pytest.mark.parametrize("name", BINARY)
def test_binary_functions_match_numpy_at_special_parts(name, dtype):
    z = _special(dtype)
    x, y = np.repeat(z, z.size), np.tile(z, z.size)
    with np.errstate(all="ignore"):
        want = getattr(np, name)(x, y)
    _same(getattr(fnp, name)(x, y), want, f"{name} eager")
    _same(ft.jit(getattr(fnp, name))(x, y), want, f"{name} jit")


# -------------------- differentiation: JAX's conventions --------------------

def test_grad_of_abs_squared_is_twice_the_conjugate():
    # JAX: grad(lambda z: abs(z)**2)(3+4j) == 6-8j
    np.testing.assert_allclose(ft.grad(lambda z: fnp.abs(z) ** 2)(3 + 4j), 6 - 8j)
    np.testing.assert_allclose(ft.jit(ft.grad(lambda z: fnp.abs(z) ** 2))(3 + 4j), 6 - 8j)
    np.testing.assert_allclose(ft.grad(lambda z: fnp.real(z * fnp.conj(z)))(3 + 4j), 6 - 8j)


def test_grad_of_a_real_function_is_df_dx_minus_i_df_dy():
    f = lambda z: fnp.real(z) ** 2 * fnp.imag(z) + fnp.imag(z) ** 3  # noqa: E731
    z = 0.7 - 1.3j
    x, y = z.real, z.imag
    np.testing.assert_allclose(ft.grad(f)(z), 2 * x * y - 1j * (x ** 2 + 3 * y ** 2))
    w = np.array(2 - 0.5j)  # Re(z w-bar) = a x + b y: the gradient a - ib is conj(w)
    np.testing.assert_allclose(ft.grad(lambda z: fnp.real(z * fnp.conj(w)))(z), np.conj(w))


def test_holomorphic_grad_is_the_complex_derivative():
    z = 0.3 + 0.8j
    np.testing.assert_allclose(ft.grad(fnp.exp, holomorphic=True)(z), np.exp(z))
    np.testing.assert_allclose(ft.grad(lambda z: fnp.sin(z) * z, holomorphic=True)(z), np.cos(z) * z + np.sin(z))
    np.testing.assert_allclose(ft.grad(ft.grad(lambda z: z ** 3, holomorphic=True), holomorphic=True)(z), 6 * z)
    value, g = ft.value_and_grad(fnp.log, holomorphic=True)(z)
    np.testing.assert_allclose((value, g), (np.log(z), 1 / z))


def test_grad_of_a_complex_output_points_to_holomorphic():
    with pytest.raises(TypeError, match="holomorphic=True"):
        ft.grad(fnp.exp)(1j)
    with pytest.raises(TypeError, match="holomorphic=True requires inputs with complex dtype"):
        ft.grad(fnp.exp, holomorphic=True)(1.0)
    with pytest.raises(TypeError, match="holomorphic=True requires outputs with complex dtype"):
        ft.grad(fnp.abs, holomorphic=True)(1j)
    with pytest.raises(TypeError, match="jacfwd requires real-valued inputs"):
        ft.jacfwd(fnp.exp)(np.array([1j]))
    with pytest.raises(TypeError, match="jacrev requires real-valued outputs"):
        ft.jacrev(fnp.exp)(np.array([1j]))


def test_holomorphic_jacobians_and_hessian():
    a = np.array([[1 + 1j, 2], [3j, 4 - 1j]])
    z = np.array([0.3 + 0.4j, 1 - 2j])
    f = lambda z: fnp.sin(a @ z)  # noqa: E731
    want = np.cos(a @ z)[:, None] * a
    np.testing.assert_allclose(ft.jacfwd(f, holomorphic=True)(z), want)
    np.testing.assert_allclose(ft.jacrev(f, holomorphic=True)(z), want)
    np.testing.assert_allclose(ft.hessian(lambda z: fnp.sum(z ** 3), holomorphic=True)(z), np.diag(6 * z))


def test_jacrev_of_a_real_function_of_complex_inputs_is_grads_convention():
    z = np.array([3 + 4j, 1 - 1j])
    np.testing.assert_allclose(ft.jacrev(lambda z: fnp.abs(z) ** 2)(z), np.diag(2 * np.conj(z)))


def test_jvp_is_complex_linear_in_the_tangent_and_vjp_takes_complex_cotangents():
    z, t = 0.5 - 0.2j, 1.5 + 2j
    _, tangent = ft.jvp(fnp.exp, (z,), (t,))
    np.testing.assert_allclose(tangent, np.exp(z) * t)
    _, tangent_i = ft.jvp(fnp.exp, (z,), (1j * t,))
    np.testing.assert_allclose(tangent_i, 1j * tangent)
    out, vjp_fn = ft.vjp(lambda z: z * (2 - 1j), z)
    np.testing.assert_allclose(vjp_fn(np.complex128(1j))[0], 1j * (2 - 1j))  # a transpose, not conjugated


_X = np.array([0.3 + 0.4j, -1.1 + 0.7j, 0.9 - 1.2j])
_W = np.array([0.5 - 1j, 2 + 0.1j, -0.3 + 0.3j])
CHECKED = {
    "abs_squared": lambda z: fnp.abs(z) ** 2,
    "re_z_wbar": lambda z: fnp.real(z * fnp.conj(_W)),
    "exp": fnp.exp,
    "sin_times_conj": lambda z: fnp.sin(z) * fnp.conj(z),
    "angle": fnp.angle,
    "sqrt_over_z": lambda z: fnp.sqrt(z) / z,
    "sum_abs": lambda z: fnp.sum(fnp.abs(z)),
    "log_tanh": lambda z: fnp.log(fnp.tanh(z) + 2),
    "power": lambda z: z ** (0.5 + 0.5j),
    "matmul": lambda z: fnp.outer(z, z) @ _W,
    "mean_var": lambda z: fnp.var(z) + fnp.mean(z),
    "vdot": lambda z: fnp.vdot(z, _W * z),
}


@pytest.mark.parametrize("name", sorted(CHECKED))
def test_check_grads_to_order_2_on_complex_inputs(name):
    ft.check_grads(CHECKED[name], (_X,), order=2, modes=("fwd", "rev"))


def test_check_grads_on_complex64_and_mixed_real_complex_arguments():
    ft.check_grads(lambda z: fnp.exp(z) * z, (_X.astype(C64),), order=1, atol=1e-2, rtol=1e-2)
    ft.check_grads(lambda x, z: fnp.abs(fnp.exp(1j * x) + z) ** 2, (np.array([0.3, 1.0, -0.4]), _X), order=2)


# -------------------- vmap, jit, printing --------------------

@given(z=_complexes(C128, (4, 3)))
def test_vmap_of_grad_matches_a_loop(z):
    g = ft.grad(lambda z: fnp.sum(fnp.abs(fnp.sin(z) * z) ** 2))
    batched = ft.vmap(g)(z)
    np.testing.assert_allclose(batched, np.stack([g(row) for row in z]), rtol=1e-10, atol=1e-12)


@given(z=_complexes(C64, (5,)), w=_complexes(C64, (5,)))
def test_jit_matches_eager_on_complex64(z, w):
    def f(z, w):
        return fnp.exp(z * w) + fnp.conj(w) * 0.5 - fnp.abs(z) + fnp.angle(w + 3)
    for backend in ("numpy",):
        got, want = jit_for(f, backend)(z, w), f(z, w)
        assert got.dtype == want.dtype == C64
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_printed_complex_programs_parse_back():
    def f(z, x):
        return fnp.exp(z * (1.5 - 2j)) + complex(-0.0, np.inf) * x, ft.grad(lambda z: fnp.abs(z) ** 2)(z[0])
    z, x = np.array([1 + 1j, 2j], np.complex64), np.array([0.5, -1.0], np.float32)
    closed = ft.make_jaxpr(f)(z, x)
    text = str(closed)
    assert "c64[2]" in text
    parsed = ft.parse_jaxpr(text)
    assert str(parsed) == text
    for a, b in zip(ft.jaxpr_as_fun(parsed)(z, x), ft.jaxpr_as_fun(closed)(z, x)):
        np.testing.assert_array_equal(a, b)


def test_cse_keys_complex_literals_by_value():
    closed = ft.make_jaxpr(lambda z: (z * (1 + 2j), z * (1 + 2j), z * (1 - 2j)), optimize=True)(np.ones(2, C128))
    assert sum(e.primitive.name == "mul" for e in closed.eqns) == 2


def test_complex_values_are_ordered_as_numpy_orders_them():
    """max, min, maximum, minimum and the comparisons: by real part, then imaginary part,
    NaN-propagating, eager and under jit and vmap; the max's gradient flows to the chosen element."""
    nan = np.nan
    z = np.array([[1 + 2j, 3 - 1j, 3 + 1j, -1j], [0j, complex(nan, 1), -1j, complex(1, nan)],
                  [2 + 0j, 2 - 0j, complex(2, -0.0), -5 + 5j]])
    w = np.array([3 + 0j, 1j, complex(3, 1), 0j])
    cases = [(fnp.max, np.max), (fnp.min, np.min), (lambda a: fnp.max(a, axis=1), lambda a: np.max(a, axis=1)),
             (lambda a: fnp.min(a, axis=0), lambda a: np.min(a, axis=0)),
             (lambda a: fnp.maximum(a, w), lambda a: np.maximum(a, w)),
             (lambda a: fnp.minimum(a, w), lambda a: np.minimum(a, w))]
    cases += [(lambda a, op=op: getattr(fnp, op)(a, w), lambda a, op=op: getattr(np, op)(a, w))
              for op in ("less", "less_equal", "greater", "greater_equal")]
    cases += [(lambda a: a < w, lambda a: a < w), (lambda a: a >= w, lambda a: a >= w)]
    with np.errstate(invalid="ignore"):
        for ours, numpy_f in cases:
            want = numpy_f(z)
            for got in (ours(z), ft.jit(ours)(z)):
                np.testing.assert_array_equal(np.asarray(got), want)
            rows = ft.vmap(ours)(np.stack([z, z[::-1]]))
            np.testing.assert_array_equal(np.asarray(rows[1]), numpy_f(z[::-1]))
    finite = z[0]
    grad = ft.grad(lambda a: fnp.real(fnp.max(a)))(finite)
    np.testing.assert_array_equal(grad, [0, 0, 1, 0])


@pytest.mark.parametrize("dtype", [C64, C128])
def test_sign_is_numpy_2_s_at_infinite_nan_and_subnormal_parts_signs_of_zeros_included(dtype):
    tiny = np.finfo(np.dtype(f"f{dtype.itemsize // 2}")).smallest_subnormal
    parts = [0.0, -0.0, 1.0, -2.5, np.inf, -np.inf, np.nan, tiny, -3 * tiny]
    re, im = np.meshgrid(parts, parts)
    z = np.empty(re.size, dtype)
    z.real, z.imag = re.ravel(), im.ravel()
    with np.errstate(all="ignore"):
        want = np.sign(z)
    for got in (fnp.sign(z), ft.jit(fnp.sign)(z)):
        np.testing.assert_allclose(got, want, rtol=1e-6, equal_nan=True)
        np.testing.assert_array_equal(np.signbit(got.real), np.signbit(want.real))
        np.testing.assert_array_equal(np.signbit(got.imag), np.signbit(want.imag))


def test_inverse_trigonometric_functions_on_branch_cuts_and_far_out_are_numpys():
    """As C99's (and NumPy's), the sign of a zero picks the side of a branch cut: arcsin(2 + 0j) had the
    imaginary part of arcsin(2 - 0j) (a complex product i z made -0 into +0); arcsin(1e300) was NaN - inf j
    (z^2 overflowed); arcsinh(1e-300) and arctanh(1e-300) were 0, arcsin(0.5 + 1e-10j).imag was 2.6e-7
    off (now Hull, Fairgrieve and Tang's algorithm); log2(0j) was -inf + NaN j. NaN inputs are left out:
    there the conventions differ (C99 keeps some parts exact beside a NaN)."""
    parts = np.array([0.0, -0.0, 1e-300, -1e-300, 1e-10, 0.5, 1.0, -1.0, 2.0, -2.0, 700.0, 1e300, -1e300,
                      np.inf, -np.inf])
    re, im = (v.ravel() for v in np.meshgrid(parts, parts))
    z = np.array([complex(a, b) for a, b in zip(re, im)])  # (re + 1j * im would lose -0s and make NaNs)
    for name in ("arcsin", "arccos", "arcsinh", "arccosh", "arctanh", "log2", "log10"):
        got = np.asarray(getattr(fnp, name)(z))
        with np.errstate(all="ignore"):
            want = getattr(np, name)(z)
            for part in (np.real, np.imag):
                g, w = part(got), part(want)
                same = (g == w) & (np.signbit(g) == np.signbit(w)) | (np.abs(g - w) <= 1e-14 * np.abs(w))
                same |= np.isnan(g) & np.isnan(w)
                assert same.all(), (name, z[~same][:4], g[~same][:4], w[~same][:4])
