"""ftrans.numpy.fft against numpy.fft (n, axis/axes, s, norm, dtypes), round trips, Parseval,
gradients of spectral losses against closed forms and finite differences, the transposes of
every fft type, vmap against loops and jit against eager."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import ftrans as ft
import ftrans.numpy as fnp
from conftest import jit_for
from ir.primitives.fft import fft as fft_primitive

RNG = np.random.default_rng(0)
X = RNG.standard_normal((3, 6, 5))
Z = X + 1j * RNG.standard_normal((3, 6, 5))

ONE_DIMENSIONAL = ["fft", "ifft", "rfft", "irfft", "hfft", "ihfft"]
N_DIMENSIONAL = ["fft2", "ifft2", "rfft2", "irfft2", "fftn", "ifftn", "rfftn", "irfftn"]


def _input(name, dtype=np.float64):
    x = X.astype(dtype)
    return x if name.startswith(("rfft", "ihfft")) else (x + 1j * X[::-1].astype(dtype))


@pytest.mark.parametrize("name", ONE_DIMENSIONAL)
@pytest.mark.parametrize("kwargs", [{}, {"n": 7}, {"n": 3, "axis": 0}, {"norm": "ortho"},
                                    {"norm": "forward", "axis": 1}, {"norm": "backward", "n": 1}])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_one_dimensional_transforms_match_numpy(name, kwargs, dtype):
    a = _input(name, dtype)
    want = getattr(np.fft, name)(a, **kwargs)
    for fun in (getattr(fnp.fft, name), ft.jit(lambda a: getattr(fnp.fft, name)(a, **kwargs))):
        got = fun(a, **kwargs) if fun is getattr(fnp.fft, name) else fun(a)
        assert got.dtype == want.dtype
        np.testing.assert_allclose(got, want, rtol=1e-4 if dtype == np.float32 else 1e-12, atol=1e-5)


@pytest.mark.parametrize("name", N_DIMENSIONAL)
@pytest.mark.parametrize("kwargs", [{}, {"axes": (0, 2)}, {"s": (4, 8), "axes": (0, 1)}, {"norm": "ortho"},
                                    {"axes": (2, 0, 1)}])
def test_n_dimensional_transforms_match_numpy(name, kwargs):
    a = _input(name)
    if name.endswith("2") and len(kwargs.get("axes", ())) == 3:
        kwargs = {"axes": (2, 0)}
    want = getattr(np.fft, name)(a, **kwargs)
    got = getattr(fnp.fft, name)(a, **kwargs)
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_frequencies_and_shifts_match_numpy():
    for n, d in [(1, 1.0), (7, 0.1), (8, 2.5)]:
        np.testing.assert_allclose(fnp.fft.fftfreq(n, d), np.fft.fftfreq(n, d))
        np.testing.assert_allclose(fnp.fft.rfftfreq(n, d), np.fft.rfftfreq(n, d))
    for axes in (None, 0, (1, 2), (-1,)):
        np.testing.assert_array_equal(fnp.fft.fftshift(X, axes), np.fft.fftshift(X, axes))
        np.testing.assert_array_equal(fnp.fft.ifftshift(X, axes), np.fft.ifftshift(X, axes))
    np.testing.assert_array_equal(ft.jit(fnp.fft.fftshift)(X), np.fft.fftshift(X))


def test_bad_arguments_are_errors_naming_the_function():
    with pytest.raises(ValueError, match="norm"):
        fnp.fft.fft(Z, norm="unitary")
    with pytest.raises(ValueError, match="invalid number of data points"):
        fnp.fft.fft(Z, n=0)
    with pytest.raises(TypeError, match="rfft takes real input"):
        fnp.fft.rfft(Z)
    with pytest.raises(ValueError, match="s and axes"):
        fnp.fft.fftn(Z, s=(2, 3), axes=(0,))


@given(x=hnp.arrays(np.float64, st.tuples(st.integers(1, 3), st.integers(1, 9)),
                    elements=st.floats(-10, 10)))
def test_round_trips_and_parseval(x):
    n = x.shape[-1]
    np.testing.assert_allclose(fnp.fft.irfft(fnp.fft.rfft(x), n=n), x, atol=1e-9)
    np.testing.assert_allclose(fnp.fft.ifft(fnp.fft.fft(x)), x, atol=1e-9)
    energy = fnp.sum(fnp.abs(fnp.fft.fft(x, norm="ortho")) ** 2, axis=-1)
    np.testing.assert_allclose(energy, np.sum(x ** 2, axis=-1), rtol=1e-9, atol=1e-9)


def test_gradient_of_a_band_energy_is_its_closed_form():
    # L(x) = sum_{k in band} |X_k|^2, X = rfft(x): dL/dx_j = sum_k 2 Re(conj(X_k) e^{-2 pi i k j / n})
    x = RNG.standard_normal(16)
    band = slice(2, 5)
    loss = lambda x: fnp.sum(fnp.abs(fnp.fft.rfft(x)[band]) ** 2)  # noqa: E731
    n, k = 16, np.arange(2, 5)
    spectrum = np.fft.rfft(x)[band]
    twiddle = np.exp(-2j * np.pi * np.outer(k, np.arange(n)) / n)
    want = np.sum(2 * np.real(np.conj(spectrum)[:, None] * twiddle), axis=0)
    np.testing.assert_allclose(ft.grad(loss)(x), want, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ft.jit(ft.grad(loss))(x), want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kind, lengths", [("FFT", (5,)), ("IFFT", (2, 3)), ("RFFT", (6,)), ("RFFT", (5,)),
                                           ("IRFFT", (6,)), ("IRFFT", (5,)), ("IRFFT", (2, 4)), ("RFFT", (2, 3, 3))])
def test_every_fft_type_satisfies_check_grads_to_order_2(kind, lengths):
    lead = (2,)
    if kind == "RFFT":
        arg = RNG.standard_normal(lead + lengths)
    else:
        shape = lead + (lengths if kind != "IRFFT" else lengths[:-1] + (lengths[-1] // 2 + 1,))
        arg = RNG.standard_normal(shape) + 1j * RNG.standard_normal(shape)
        if kind == "IRFFT":  # a spectrum of a real signal: irfft ignores the imaginary parts NumPy drops
            arg = np.fft.rfftn(np.fft.irfftn(arg, s=lengths, axes=range(1, 1 + len(lengths))),
                               axes=range(1, 1 + len(lengths)))
    ft.check_grads(lambda a: fft_primitive(a, kind, lengths), (arg,), order=2)


@pytest.mark.parametrize("name", ["fft", "rfft", "irfft", "fft2", "rfftn"])
@pytest.mark.parametrize("norm", [None, "ortho", "forward"])
def test_check_grads_of_public_transforms(name, norm):
    a = _input(name)[0]
    ft.check_grads(lambda a: getattr(fnp.fft, name)(a, norm=norm), (a,), order=1)


def test_vmap_matches_a_loop():
    f = lambda x: fnp.fft.irfft(fnp.fft.rfft(x) * fnp.exp(-1j * fnp.fft.rfftfreq(x.shape[-1])), n=5)  # noqa: E731
    for in_axes in (0, 1, 2):
        got = ft.vmap(f, in_axes=in_axes)(X)
        want = np.stack([f(np.take(X, i, axis=in_axes)) for i in range(X.shape[in_axes])])
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    g = ft.vmap(ft.grad(lambda x: fnp.sum(fnp.abs(fnp.fft.fft(x, axis=0)[1]) ** 2)))
    np.testing.assert_allclose(g(X), np.stack([ft.grad(lambda x: fnp.sum(fnp.abs(fnp.fft.fft(x, axis=0)[1]) ** 2))(r)
                                               for r in X]), rtol=1e-12, atol=1e-12)


def test_jit_of_a_spectral_loss_matches_eager(jit_backend):
    def loss(x, w):
        spectrum = fnp.fft.rfft(x * w)
        return fnp.sum(fnp.abs(spectrum[..., 1:4]) ** 2) + fnp.sum(fnp.fft.fftshift(fnp.real(fnp.fft.ifft(spectrum))))
    x, w = X[0], np.linspace(0.5, 1.5, 5)
    value_and_grad = ft.value_and_grad(loss, argnums=(0, 1))
    eager = value_and_grad(x, w)
    jitted = jit_for(value_and_grad, jit_backend)(x, w)
    for a, b in zip(ft.tree_util.tree_leaves(jitted), ft.tree_util.tree_leaves(eager)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_printed_fft_programs_parse_back():
    closed = ft.make_jaxpr(ft.grad(lambda x: fnp.sum(fnp.abs(fnp.fft.rfft2(x)) ** 2)))(X[0])
    text = str(closed)
    assert "fft[" in text and "RFFT" in text
    parsed = ft.parse_jaxpr(text)
    assert str(parsed) == text
    np.testing.assert_allclose(ft.jaxpr_as_fun(parsed)(X[0])[0], ft.jaxpr_as_fun(closed)(X[0])[0])


@pytest.mark.parametrize("name", ["hfft", "ihfft"])
def test_hermitian_transforms_round_trip_grad_and_vmap(name):
    """ihfft inverts hfft (odd n given); their gradients against finite differences; vmap as a loop."""
    z = np.fft.ihfft(X[0, 0])  # a Hermitian half-spectrum
    np.testing.assert_allclose(fnp.fft.ihfft(fnp.fft.hfft(z, n=5)), z, atol=1e-12)
    a = _input(name)[0]
    ft.check_grads(lambda a: fnp.abs(getattr(fnp.fft, name)(a, n=7, norm="ortho")) ** 2, (a[0],), order=2,
                   modes=("fwd", "rev"))
    batched = ft.vmap(getattr(fnp.fft, name))(a)
    np.testing.assert_allclose(batched, np.stack([getattr(np.fft, name)(row) for row in a]), atol=1e-12)
