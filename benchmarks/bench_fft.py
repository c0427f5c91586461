"""FFT benchmark (issue 15), measured in one run: the gradient of a spectral loss
on 2^20 points,

    L(x) = sum over a band of |rfft(w * x)|^2 + sum(irfft(rfft(x) * h)^2)

(a windowed band energy plus a filtered signal's energy), float64:
ft.jit(ft.grad(L)) against a hand-written NumPy gradient (the same FFTs, the
adjoint written out) and jax.jit(jax.grad(L)) when JAX is installed. The
gradients are checked against each other before timing. Times are the best of
several repeats (the machine may be shared); each ratio compares two rows of
this run.

Threads: both libraries on one thread by default (NumPy's FFT, pocketfft, uses one;
XLA's CPU runtime is told the same through XLA_FLAGS, and BLAS through its
*_NUM_THREADS variables), set before NumPy or JAX are imported; FTRANS_BENCH_THREADS=k
gives XLA and BLAS k threads instead. The settings are printed.

Run: python benchmarks/bench_fft.py   (with JAX: /tmp/jaxenv/bin/python benchmarks/bench_fft.py)
"""
import os

THREADS = int(os.environ.get("FTRANS_BENCH_THREADS", "1"))
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, str(THREADS))
if THREADS == 1:
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false "
                               "intra_op_parallelism_threads=1").strip()

import platform  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

import ftrans as ft  # noqa: E402
import ftrans.numpy as fnp  # noqa: E402

N = 2 ** 20


def best_of(fun, *args, repeats=7):
    fun(*args)  # warm: compile, caches
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fun(*args)
        times.append(time.perf_counter() - start)
    return min(times)


def problem(n=N, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(n)
    w = np.hanning(n)
    m = n // 2 + 1
    band = np.zeros(m)
    band[m // 8: m // 4] = 1.0  # a mask, not an index: the same work in every library
    h = np.exp(-np.arange(m) / (m / 16)) * (1 - 0.3j)
    return x, w, band, h


def loss_with(xp_fft, xp):
    def loss(x, w, band, h):
        spectrum = xp_fft.rfft(w * x)
        filtered = xp_fft.irfft(xp_fft.rfft(x) * h, n=x.shape[0])
        return xp.sum(band * xp.real(spectrum * xp.conj(spectrum))) + xp.sum(filtered * filtered)
    return loss


def numpy_grad(x, w, band, h):
    """dL/dx by hand: the adjoint of rfft is Re(fft of the zero-padded cotangent), and of
    irfft(., n) a scaled, doubled rfft (conjugated): the rules ftrans's fft transposes follow."""
    n = x.shape[0]
    m = n // 2 + 1
    spectrum = np.fft.rfft(w * x)
    ct_spectrum = 2 * band * np.conj(spectrum)  # d/dS of band * |S|^2, JAX's convention
    padded = np.zeros(n, complex)
    padded[:m] = ct_spectrum
    grad = w * np.real(np.fft.fft(padded))
    filtered = np.fft.irfft(np.fft.rfft(x) * h, n=n)
    mask = np.full(m, 2.0)
    mask[0] = 1.0
    if n % 2 == 0:
        mask[-1] = 1.0
    ct_half = np.conj(np.fft.rfft(2 * filtered) * mask / n) * h
    padded[:] = 0
    padded[:m] = ct_half
    return grad + np.real(np.fft.fft(padded))


def main(n=N):
    args = problem(n)
    ft_grad = ft.jit(ft.grad(loss_with(fnp.fft, fnp)))
    got, want = ft_grad(*args), numpy_grad(*args)
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9 * np.max(np.abs(want)))
    print(f"jit(grad) of a spectral loss on {n} points, float64 | {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores; threads: {THREADS} (BLAS {os.environ['OPENBLAS_NUM_THREADS']}, "
          f"XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r})")
    t_numpy = best_of(numpy_grad, *args)
    t_ft = best_of(ft_grad, *args)
    print(f"  NumPy, hand-written gradient   {t_numpy * 1e3:8.1f} ms")
    print(f"  ft.jit(ft.grad)                {t_ft * 1e3:8.1f} ms   ({t_ft / t_numpy:.2f}x NumPy)")
    try:
        import jax
        import jax.numpy as jnp
        jax.config.update("jax_enable_x64", True)
        jax_grad = jax.jit(jax.grad(loss_with(jnp.fft, jnp)))
        np.testing.assert_allclose(np.asarray(jax_grad(*args)), want, rtol=1e-9, atol=1e-9 * np.max(np.abs(want)))
        t_jax = best_of(lambda *a: jax_grad(*a).block_until_ready(), *args)
        print(f"  jax.jit(jax.grad)              {t_jax * 1e3:8.1f} ms   (ft.jit {t_ft / t_jax:.2f}x JAX)")
    except ImportError:
        print("  jax.jit(jax.grad)              (JAX is not installed)")


if __name__ == "__main__":
    main()
