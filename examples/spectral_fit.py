"""Fit a damped oscillator to a noisy signal through a loss on its spectrum.

The model x(t) = A exp(-gamma t) cos(omega t + phi) is sampled on n points; the
loss compares its FFT with the FFT of the measured signal over the band of
frequencies around the resonance, |X_model(f) - X_data(f)|^2, a real function of
complex intermediates. Its gradient goes back through rfft (the transpose of the
FFT, JAX's rule for the halved spectrum) and through the complex arithmetic;
`ft.jit(ft.value_and_grad(loss))` compiles it once and Adam (ftrans.optim) fits
the four parameters, from a start 10-30% off, to the true ones within the noise.

Run: python examples/spectral_fit.py
"""
import numpy as np

import ftrans as ft
import ftrans.numpy as fnp
from ftrans import optim

TRUE = {"amplitude": 1.5, "damping": 0.8, "omega": 2 * np.pi * 3.0, "phase": 0.4}


def oscillator(params, t):
    return params["amplitude"] * fnp.exp(-params["damping"] * t) * fnp.cos(params["omega"] * t + params["phase"])


def main(n=1024, steps=600, seed=0):
    t = np.linspace(0.0, 4.0, n, endpoint=False)
    signal = oscillator(TRUE, t) + 0.05 * ft.random.normal(ft.random.PRNGKey(seed), (n,))
    frequencies = np.fft.rfftfreq(n, t[1] - t[0])
    band = np.flatnonzero((frequencies > 0.5) & (frequencies < 8.0))  # around the 3 Hz resonance
    measured = np.fft.rfft(signal)[band]

    def loss(params):
        residual = fnp.fft.rfft(oscillator(params, t))[band] - measured
        return fnp.sum(fnp.real(residual * fnp.conj(residual))) / n

    start = {"amplitude": 1.2, "damping": 1.0, "omega": 2 * np.pi * 2.8, "phase": 0.2}
    params = {k: np.float64(v) for k, v in start.items()}
    optimizer = optim.adam(optim.exponential_decay(0.05, steps, 0.05))
    state = optimizer.init(params)
    step = ft.jit(ft.value_and_grad(loss))
    first, _ = step(params)
    for _ in range(steps):
        value, grads = step(params)
        updates, state = optimizer.update(grads, state, params)
        params = optim.apply_updates(params, updates)

    # the gradient through the FFT against central finite differences, at the fitted point
    ft.check_grads(loss, (params,), order=1, modes=("rev",), atol=1e-4, rtol=1e-4)
    print(f"spectral loss {float(first):.4f} -> {float(value):.6f} after {steps} Adam steps (n = {n})")
    print(f"{'parameter':>10}  {'true':>8}  {'start':>8}  {'fitted':>8}")
    for name in TRUE:
        print(f"{name:>10}  {TRUE[name]:8.4f}  {start[name]:8.4f}  {float(params[name]):8.4f}")
        assert abs(float(params[name]) - TRUE[name]) < 0.05 * max(1.0, abs(TRUE[name])), name
    return params


if __name__ == "__main__":
    main()
