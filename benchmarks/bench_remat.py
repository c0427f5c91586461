"""Rematerialization benchmark (issue 13), measured in one run.

An MLP of 16 layers h = tanh(h W_k) of width 1,024 at batch 256, float32, loss the
sum of the squares of the last layer; its gradient in the parameters, without
checkpoint and with each layer checkpointed (ft.checkpoint, policy
nothing_saveable). Printed for both:

(a) the bytes of the residuals reverse mode stores (the total print_saved_residuals
    lists), all of them and those that are not arguments: the arguments (the
    parameters and the input) are stored whatever the policy, the others are what
    reverse mode adds. The aim: with checkpoints at most 0.6x of those without.
(b) the peak memory of one call of ft.jit(ft.grad(loss)) (tracemalloc, which sees
    NumPy's allocations: the parameters and the input exist before the call), minus
    the gradients it returns: its first run after `lower`, when the generated code allocates
    the scratch buffers it keeps for later calls.
(c) the time of ft.jit(ft.grad(loss)), best of a few repeats. The aim: with
    checkpoints at most 1.5x the time without (the recomputation repeats each
    layer's forward matmul: 64 matmuls instead of 48).

BLAS runs on one thread (OPENBLAS/OMP/MKL_NUM_THREADS=1 unless set): the machine
may be shared, and the ratios compare two rows of this run.

Run: python benchmarks/bench_remat.py
"""
import os

for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "FTRANS_JIT_THREADS"):
    os.environ.setdefault(_variable, "1")  # before NumPy loads its BLAS

import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import tracemalloc  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import ftrans as ft  # noqa: E402
import ftrans.numpy as fnp  # noqa: E402

LAYERS, WIDTH, BATCH = 16, 1024, 256


def layer(w, h):
    return fnp.tanh(h @ w)


def loss_of(layer_fn):
    def loss(params, x):
        h = x
        for w in params:
            h = layer_fn(w, h)
        return fnp.sum(h * h)
    return loss


def residual_bytes(loss, params, x):
    listed = ft.ad_checkpoint.saved_residuals(loss, params, x)
    total = sum(a.size * a.dtype.itemsize for a, _ in listed)
    not_arguments = sum(a.size * a.dtype.itemsize for a, where in listed if not where.startswith("from the argument"))
    return total, not_arguments, len(listed)


def peak_bytes(fun, *args):
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        out = fun(*args)
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    return peak, out


def best_time(fun, *args, repeats=3):
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fun(*args)
        best = min(best, time.perf_counter() - start)
    return best


def main(layers=LAYERS, width=WIDTH, batch=BATCH, repeats=3):
    rng = np.random.default_rng(0)
    params = [(rng.standard_normal((width, width)) / np.sqrt(width)).astype(np.float32) for _ in range(layers)]
    x = rng.standard_normal((batch, width)).astype(np.float32)
    plain, remat = loss_of(layer), loss_of(ft.checkpoint(layer))
    print(f"MLP: {layers} layers of width {width}, batch {batch}, float32; {platform.machine()}, "
          f"Python {platform.python_version()}, NumPy {np.__version__}, one BLAS thread")
    # tracemalloc counts what the call allocates: the parameters and the input exist before it,
    # the gradients it returns are taken off
    fixed = sum(w.nbytes for w in params)
    rows = {}
    for name, loss in (("no checkpoint", plain), ("each layer checkpointed", remat)):
        total, added, count = residual_bytes(loss, params, x)
        grad = ft.jit(ft.grad(loss))
        grad.lower(params, x)  # traces, optimizes and generates the code, running nothing
        # the first run: the generated code's scratch buffers are allocated then, and kept for later calls
        peak, grads = peak_bytes(grad, params, x)
        seconds = best_time(grad, params, x, repeats=repeats)
        rows[name] = (total, added, peak - fixed, seconds, grads)
        print(f"{name:>24}: {count:3d} residuals, {total / 2**20:7.1f} MiB ({added / 2**20:6.1f} MiB not arguments); "
              f"jit(grad) peak {max(peak - fixed, 0) / 2**20:7.1f} MiB beyond parameters, input and gradients; "
              f"{seconds * 1e3:8.1f} ms")
    (t0, a0, p0, s0, g0), (t1, a1, p1, s1, g1) = rows["no checkpoint"], rows["each layer checkpointed"]
    for got, want in zip(g1, g0, strict=True):
        np.testing.assert_allclose(got, want, rtol=2e-4, atol=1e-6)
    print(f"checkpointed / not: residuals {t1 / t0:.2f}x of all, {a1 / a0:.2f}x of those not arguments "
          f"(aim <= 0.6x); jit(grad) peak {p1 / p0:.2f}x; time {s1 / s0:.2f}x (aim <= 1.5x); gradients agree")


if __name__ == "__main__":
    main()
