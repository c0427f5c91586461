"""Control-flow benchmarks (issue 12), measured in one run:

(a) jit(grad) of a tanh RNN by scan: h = tanh(h W + x_t) over T = 1,000 steps,
    hidden 128, batch 32, float32, loss the mean square of every state;
    ft.jit(ft.grad(loss)) against jax.jit(jax.grad(loss)) of the same program
    with jax.lax.scan (when JAX is installed). The aim: at most 1.5x JAX.
(b) staging cost of ft.jit(ft.grad(loss)) of that scan: tracing, the passes
    and the generation of code (`lower`, which runs nothing), at T = 100 and
    T = 10,000. The aim: the same within 10% (the body is traced, optimized
    and lowered once, whatever the trip count).
(c) reverse mode through while_loop of 100,000 iterations on a 1,000-element
    carry, under jit(grad): checkpoints=100 against the tape of every carry.
    The aims: peak memory (tracemalloc during the call, less its output) at
    most 1/20 of the tape's, time at most 3x the tape's.
(d) the RNN of (a) under jit(grad) with scan(..., checkpoints=k) for several k
    against the plain scan (which stacks every iteration's residuals): peak
    memory (as in (c)) and time, and the gradient equal to the plain one.

Times are the best of several repeats (the machine may be shared); each ratio
compares two rows of this run. Both libraries run on one core: BLAS through
OPENBLAS/OMP/MKL_NUM_THREADS=1, XLA through XLA_FLAGS
(--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1), ftrans's
chunked runs through FTRANS_JIT_THREADS=1 (they do not arise at these sizes
anyway), unless the environment sets them otherwise: on a shared machine
spinning threads measure the neighbours' load more than the code.

Run: python benchmarks/bench_control_flow.py
"""
import os

for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "FTRANS_JIT_THREADS"):
    os.environ.setdefault(_variable, "1")  # before NumPy loads its BLAS
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")

import platform  # noqa: E402
import time  # noqa: E402
import timeit  # noqa: E402

import numpy as np  # noqa: E402

import ftrans as ft  # noqa: E402
import ftrans.numpy as fnp  # noqa: E402

try:
    import jax
    import jax.numpy as jnp
except ImportError:
    jax = jnp = None

T, HIDDEN, BATCH = 1000, 128, 32


def best_time(fun, number, repeat=7):
    return min(timeit.repeat(fun, number=number, repeat=repeat)) / number


def row(name, seconds, unit="ms"):
    scale = {"ms": 1e3, "us": 1e6, "s": 1.0}[unit]
    print(f"   {name:52s} {seconds * scale:9.2f} {unit}")


def ratio(text, numerator, denominator, aim):
    print(f"   {text:52s} {numerator / denominator:9.2f}    (aim: {aim})")


# -------------------- the RNN --------------------

def rnn_loss(w, h0, xs, lax=ft.lax, np_=fnp):
    def step(h, x):
        h = np_.tanh(h @ w + x)
        return h, h
    _, hs = lax.scan(step, h0, xs)
    return np_.mean(hs * hs)


def rnn_inputs(length, seed=0):
    rng = np.random.default_rng(seed)
    w = (rng.normal(size=(HIDDEN, HIDDEN)) / np.sqrt(HIDDEN)).astype(np.float32)
    h0 = np.zeros((BATCH, HIDDEN), np.float32)
    xs = rng.normal(size=(length, BATCH, HIDDEN)).astype(np.float32)
    return w, h0, xs


def rnn_grad_numpy(w, h0, xs):
    """The gradient in w by hand (forward loop, then backpropagation through time): the reference."""
    hs, h = [], h0
    for x in xs:
        h = np.tanh(h @ w + x)
        hs.append(h)
    scale = np.float32(2.0 / (len(xs) * h0.size))
    grad, ct = np.zeros_like(w), np.zeros_like(h0)
    for t in reversed(range(len(xs))):
        ct = (ct + scale * hs[t]) * (1 - hs[t] * hs[t])
        grad += (hs[t - 1] if t else h0).T @ ct
        ct = ct @ w.T
    return grad


def bench_rnn():
    print(f"(a) jit(grad) of a tanh RNN by scan: T = {T}, hidden {HIDDEN}, batch {BATCH}, float32")
    w, h0, xs = rnn_inputs(T)
    reference = rnn_grad_numpy(w, h0, xs)
    step = ft.jit(ft.grad(rnn_loss))
    np.testing.assert_allclose(step(w, h0, xs), reference, rtol=2e-3, atol=1e-6)
    ours = best_time(lambda: step(w, h0, xs), number=3)
    row("ftrans jit(grad)", ours)
    if jax is None:
        print("   (JAX is not installed: pip install jax jaxlib)")
        return
    jax_step = jax.jit(jax.grad(lambda w, h0, xs: rnn_loss(w, h0, xs, jax.lax, jnp)))
    device = [jnp.asarray(a) for a in (w, h0, xs)]
    np.testing.assert_allclose(np.asarray(jax_step(*device)), reference, rtol=2e-3, atol=1e-6)
    theirs = best_time(lambda: jax_step(*device).block_until_ready(), number=3)
    row(f"jax.jit(jax.grad) (JAX {jax.__version__})", theirs)
    ratio("ftrans / JAX", ours, theirs, "<= 1.5")


# -------------------- staging cost --------------------

def staging_times(lengths, repeat=21):
    """The best time of tracing, optimizing and lowering jit(grad(loss)) for each of `lengths`
    steps; nothing runs (the arrays are zeros the OS maps lazily). The lengths take turns, so
    that a shared machine's load falls on all of them alike."""
    w, h0 = rnn_inputs(1)[:2]
    inputs = {n: np.zeros((n, BATCH, HIDDEN), np.float32) for n in lengths}
    times = {n: [] for n in lengths}
    for _ in range(repeat):
        for n in lengths:
            jitted = ft.jit(ft.grad(rnn_loss))  # a new one each time: nothing cached
            start = time.perf_counter()
            jitted.lower(w, h0, inputs[n])
            times[n].append(time.perf_counter() - start)
    return [min(times[n]) for n in lengths]


def bench_staging():
    print("\n(b) staging jit(grad) of the RNN (trace, passes, code generation; nothing runs)")
    short, long = staging_times([100, 10_000])
    row("T = 100", short)
    row("T = 10,000", long)
    ratio("T = 10,000 / T = 100", long, short, "1.00 +- 0.10")


# -------------------- while_loop --------------------

WHILE_STEPS, WHILE_SIZE, WHILE_CHECKPOINTS = 100_000, 1000, 100


def while_loss(x, checkpoints, steps=WHILE_STEPS):
    """A while_loop of `steps` iterations of a cheap nonlinear body on a carry like x
    (the trip count known only when it stops, to reverse mode as to JAX)."""
    def body(carry):
        i, v = carry
        return i + 1, v * np.float32(0.9999) + fnp.sin(v) * np.float32(1e-4)
    _, v = ft.lax.while_loop(lambda carry: carry[0] < steps, body, (0, x), checkpoints=checkpoints)
    return fnp.sum(v * v)


def peak_bytes(fun, *args):
    """The peak of what `fun(*args)` allocated (tracemalloc, which NumPy reports to) beyond what
    is still held when it returns (its outputs)."""
    import tracemalloc
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        out = fun(*args)
        current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    del out
    return peak - max(current, base)


def bench_while(steps=WHILE_STEPS):
    print(f"\n(c) reverse mode through while_loop: {steps:,} iterations, a {WHILE_SIZE}-element f32 carry, "
          f"jit(grad)")
    x = np.random.default_rng(0).normal(size=WHILE_SIZE).astype(np.float32)
    tape = ft.jit(ft.grad(lambda x: while_loss(x, None, steps)))
    checkpointed = ft.jit(ft.grad(lambda x: while_loss(x, WHILE_CHECKPOINTS, steps)))
    np.testing.assert_allclose(checkpointed(x), tape(x), rtol=1e-6)  # the same gradient (to rounding)
    tape_time = best_time(lambda: tape(x), number=1, repeat=3)
    checkpoint_time = best_time(lambda: checkpointed(x), number=1, repeat=3)
    tape_memory, checkpoint_memory = peak_bytes(tape, x), peak_bytes(checkpointed, x)
    row("tape: time", tape_time, "s")
    row(f"checkpoints={WHILE_CHECKPOINTS}: time", checkpoint_time, "s")
    print(f"   {'tape: peak memory':52s} {tape_memory / 2**20:9.1f} MiB")
    print(f"   {f'checkpoints={WHILE_CHECKPOINTS}: peak memory':52s} {checkpoint_memory / 2**20:9.1f} MiB")
    ratio("checkpoints / tape, memory", checkpoint_memory, tape_memory, "<= 0.05")
    ratio("checkpoints / tape, time", checkpoint_time, tape_time, "<= 3")


# -------------------- scan with checkpoints --------------------

SCAN_CHECKPOINTS = (10, 32, 100)


def bench_scan_checkpoints():
    print(f"\n(d) jit(grad) of the RNN of (a) with scan(..., checkpoints=k): T = {T}, hidden {HIDDEN}, "
          f"batch {BATCH}, float32")
    w, h0, xs = rnn_inputs(T)

    def loss(w, k):
        def step(h, x):
            h = fnp.tanh(h @ w + x)
            return h, fnp.mean(h * h)
        _, energies = ft.lax.scan(step, h0, xs, checkpoints=k)
        return fnp.mean(energies)
    plain = ft.jit(ft.grad(lambda w: loss(w, None)))
    want = plain(w)
    plain_time, plain_memory = best_time(lambda: plain(w), number=1, repeat=5), peak_bytes(plain, w)
    row("no checkpoints: time", plain_time)
    print(f"   {'no checkpoints: peak memory':52s} {plain_memory / 2**20:9.2f} MiB   "
          f"(one carry: {h0.nbytes / 2**10:.0f} KiB)")
    for k in SCAN_CHECKPOINTS:
        checkpointed = ft.jit(ft.grad(lambda w, k=k: loss(w, k)))
        np.testing.assert_allclose(checkpointed(w), want, rtol=1e-5, atol=1e-8)  # the same gradient (to rounding)
        seconds, memory = best_time(lambda: checkpointed(w), number=1, repeat=5), peak_bytes(checkpointed, w)
        row(f"checkpoints={k}: time", seconds)
        print(f"   {f'checkpoints={k}: peak memory':52s} {memory / 2**20:9.2f} MiB   "
              f"({memory / h0.nbytes:.0f}x one carry)")
        ratio(f"checkpoints={k} / none, memory", memory, plain_memory, "O(k) carries")
        ratio(f"checkpoints={k} / none, time", seconds, plain_time, "a few forward passes more")


def main():
    print(f"Python {platform.python_version()}, NumPy {np.__version__}, {platform.machine()}; threads: "
          f"BLAS {os.environ['OPENBLAS_NUM_THREADS']}, ftrans {os.environ['FTRANS_JIT_THREADS']}, "
          f"XLA_FLAGS={os.environ['XLA_FLAGS']!r}\n")
    bench_rnn()
    bench_staging()
    bench_while()
    bench_scan_checkpoints()


if __name__ == "__main__":
    main()
