"""jit benchmarks (issue 5), measured in one run:

(a) gelu_tanh 0.5 x (1 + tanh(0.79788 (x + 0.044715 x^3))) on 10^7 values, float64
    and float32: ft.jit (on its threads, and on one) against NumPy eager, a
    hand-written chunked NumPy version, and jax.jit when JAX is installed;
(b) the gradient of sum(gelu(x)) at 10^6 values: ft.jit(ft.grad(...)) against a
    hand-written chunked NumPy gradient;
(c) one SGD training step of a 784-512-512-10 tanh MLP with softmax cross-entropy
    (float32, batch 128): ft.jit of the step against hand-written NumPy backprop,
    and jax.jit when JAX is installed;
(d) compile time: the first call of ft.jit(ft.grad(lambda x: chain_K(x).sum())),
    chain_K alternating sin, * 1.0001 and + 0.1, K operations on a 100-vector;
(e) cached dispatch of a jitted scalar function, against jax.jit;
(f) a cached call over one pytree of 100,000 0-d arrays (a list, a tuple, a
    dict, and a list of (array, {"a": array}) pairs), per leaf: flattening and
    the signature check, the cost a large parameter tree pays on every call.

Times are the best of several repeats (the machine may be shared); each ratio
compares two rows of this run. BLAS and XLA run on one core unless the
environment says otherwise: on a shared machine their spinning threads measure
the neighbours' load more than the code. ft.jit runs its large elementwise runs
on the threads the header line shows (FTRANS_JIT_THREADS=1: one; see
interpreters/lowering_numpy_runtime.py); NumPy's ufuncs use one core anyway. JAX (CPU)
is optional: `pip install jax jaxlib`.

Run: python benchmarks/bench_jit.py
"""
import os

for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")  # before NumPy loads its BLAS
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")

import platform  # noqa: E402
import time  # noqa: E402
import timeit  # noqa: E402

import numpy as np  # noqa: E402

import ftrans as ft  # noqa: E402
import ftrans.numpy as fnp  # noqa: E402
from interpreters import lowering_numpy_runtime  # noqa: E402

try:
    import jax
    import jax.numpy as jnp
    jax.config.update("jax_enable_x64", True)
except ImportError:
    jax = jnp = None

C0, C1 = 0.7978845608028654, 0.044715
CHUNK_BYTES = 512 * 1024  # of the hand-written chunked versions: what ftrans uses too


def best_time(fun, number, repeat=7):
    return min(timeit.repeat(fun, number=number, repeat=repeat)) / number


def row(name, seconds, unit="ms"):
    scale = {"ms": 1e3, "us": 1e6, "s": 1.0}[unit]
    print(f"   {name:44s} {seconds * scale:9.2f} {unit}")


def ratio(text, numerator, denominator, aim):
    print(f"   {text:44s} {numerator / denominator:9.2f}    (aim: {aim})")


# -------------------- (a) gelu --------------------

def gelu(x):
    return 0.5 * x * (1 + fnp.tanh(C0 * (x + C1 * x ** 3)))


def numpy_gelu(x):
    return 0.5 * x * (1 + np.tanh(C0 * (x + C1 * x ** 3)))


def chunked_numpy_gelu(x):
    """gelu a cache-sized chunk at a time, in two reused temporaries."""
    out = np.empty_like(x)
    chunk = CHUNK_BYTES // x.itemsize
    t, u = np.empty(chunk, x.dtype), np.empty(chunk, x.dtype)
    c0, c1, half, one = (x.dtype.type(c) for c in (C0, C1, 0.5, 1.0))
    for lo in range(0, x.size, chunk):
        xs = x[lo:lo + chunk]
        ts, us = t[:len(xs)], u[:len(xs)]
        np.multiply(xs, xs, out=ts)
        np.multiply(ts, xs, out=ts)
        np.multiply(ts, c1, out=ts)
        np.add(ts, xs, out=ts)
        np.multiply(ts, c0, out=ts)
        np.tanh(ts, out=ts)
        np.add(ts, one, out=ts)
        np.multiply(xs, half, out=us)
        np.multiply(us, ts, out=out[lo:lo + chunk])
    return out


def gelu_input(dtype, n=10 ** 7):
    return np.random.default_rng(0).normal(size=n).astype(dtype)


def gelu_timings(dtype):
    x = gelu_input(dtype)
    jitted = ft.jit(gelu)
    np.testing.assert_allclose(jitted(x), numpy_gelu(x), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(chunked_numpy_gelu(x), numpy_gelu(x), rtol=1e-5, atol=1e-6)
    return {"ft.jit": best_time(lambda: jitted(x), 3),
            "ft.jit, one thread": one_thread(lambda: best_time(lambda: jitted(x), 3)),
            "NumPy eager": best_time(lambda: numpy_gelu(x), 1, 3),
            "NumPy, hand-chunked": best_time(lambda: chunked_numpy_gelu(x), 3)}


def one_thread(measure):
    """`measure()` with ft.jit's chunked runs on the calling thread only."""
    threads, lowering_numpy_runtime.THREADS = lowering_numpy_runtime.THREADS, 1
    try:
        return measure()
    finally:
        lowering_numpy_runtime.THREADS = threads


# -------------------- (b) grad of sum(gelu) --------------------

def chunked_numpy_gelu_grad(x):
    """d/dx sum(gelu(x)) = 0.5 (1 + t) + 0.5 x (1 - t^2) c0 (1 + 3 c1 x^2), t = tanh(c0 (x + c1 x^3)),
    a chunk at a time in three reused temporaries."""
    out = np.empty_like(x)
    chunk = CHUNK_BYTES // x.itemsize
    t1, t2, t3 = (np.empty(chunk, x.dtype) for _ in range(3))
    for lo in range(0, x.size, chunk):
        xs = x[lo:lo + chunk]
        a, t, b = t1[:len(xs)], t2[:len(xs)], t3[:len(xs)]
        np.multiply(xs, xs, out=a)           # x^2
        np.multiply(a, xs, out=t)            # x^3
        np.multiply(t, C1, out=t)
        np.add(t, xs, out=t)
        np.multiply(t, C0, out=t)
        np.tanh(t, out=t)                    # t
        np.multiply(a, 3 * C1, out=a)
        np.add(a, 1.0, out=a)
        np.multiply(a, C0, out=a)            # c0 (1 + 3 c1 x^2)
        np.multiply(t, t, out=b)
        np.subtract(1.0, b, out=b)
        np.multiply(b, a, out=b)
        np.multiply(b, xs, out=b)            # x (1 - t^2) c0 (1 + 3 c1 x^2)
        np.add(t, 1.0, out=t)
        np.add(t, b, out=t)
        np.multiply(t, 0.5, out=out[lo:lo + chunk])
    return out


def gelu_grad_timings(n=10 ** 6):
    x = np.random.default_rng(1).normal(size=n)
    jitted = ft.jit(ft.grad(lambda x: fnp.sum(gelu(x))))
    np.testing.assert_allclose(jitted(x), chunked_numpy_gelu_grad(x), rtol=1e-12, atol=1e-14)
    return {"ft.jit(ft.grad)": best_time(lambda: jitted(x), 10),
            "NumPy, hand-chunked gradient": best_time(lambda: chunked_numpy_gelu_grad(x), 10)}


# -------------------- (c) MLP training step --------------------

SIZES, BATCH, LEARNING_RATE = (784, 512, 512, 10), 128, 0.01


def mlp_problem():
    rng = np.random.default_rng(2)
    params = [((rng.normal(size=(m, n)) / np.sqrt(m)).astype(np.float32), np.zeros(n, np.float32))
              for m, n in zip(SIZES[:-1], SIZES[1:])]
    x = rng.normal(size=(BATCH, SIZES[0])).astype(np.float32)
    y = np.eye(SIZES[-1], dtype=np.float32)[rng.integers(0, SIZES[-1], BATCH)]
    return params, x, y


def make_step(np_module, grad):
    """The SGD step of softmax cross-entropy, written against `np_module`
    (ftrans.numpy or jax.numpy) and differentiated by `grad`."""
    def loss(params, x, y):
        h = x
        for w, b in params[:-1]:
            h = np_module.tanh(h @ w + b)
        w, b = params[-1]
        logits = h @ w + b
        z = logits - np_module.max(logits, axis=1, keepdims=True)
        log_probabilities = z - np_module.log(np_module.sum(np_module.exp(z), axis=1, keepdims=True))
        return -np_module.mean(np_module.sum(y * log_probabilities, axis=1))

    def step(params, x, y):
        grads = grad(loss)(params, x, y)
        return [(w - LEARNING_RATE * gw, b - LEARNING_RATE * gb) for (w, b), (gw, gb) in zip(params, grads)]
    return step


def numpy_step(params, x, y):
    """The same step, backpropagated by hand (y one-hot)."""
    (w1, b1), (w2, b2), (w3, b3) = params
    h1 = np.tanh(x @ w1 + b1)
    h2 = np.tanh(h1 @ w2 + b2)
    logits = h2 @ w3 + b3
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    d3 = (p - y) / np.float32(len(x))
    d2 = (d3 @ w3.T) * (1 - h2 * h2)
    d1 = (d2 @ w2.T) * (1 - h1 * h1)
    lr = np.float32(LEARNING_RATE)
    return [(w1 - lr * (x.T @ d1), b1 - lr * d1.sum(0)),
            (w2 - lr * (h1.T @ d2), b2 - lr * d2.sum(0)),
            (w3 - lr * (h2.T @ d3), b3 - lr * d3.sum(0))]


def mlp_timings():
    params, x, y = mlp_problem()
    jitted = ft.jit(make_step(fnp, ft.grad))
    for (w, b), (w_ref, b_ref) in zip(jitted(params, x, y), numpy_step(params, x, y)):
        np.testing.assert_allclose(w, w_ref, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(b, b_ref, rtol=1e-4, atol=1e-6)
    return {"ft.jit": best_time(lambda: jitted(params, x, y), 20),
            "NumPy, hand-written backprop": best_time(lambda: numpy_step(params, x, y), 20)}


# -------------------- (d) compile time --------------------

def chain(x, k):
    """k operations: sin, * 1.0001, + 0.1, sin, ..."""
    for i in range(k):
        if i % 3 == 0:
            x = fnp.sin(x)
        elif i % 3 == 1:
            x = x * 1.0001
        else:
            x = x + 0.1
    return x


def first_call_time(k, x):
    jitted = ft.jit(ft.grad(lambda x: chain(x, k).sum()))
    start = time.perf_counter()
    jitted(x)
    return time.perf_counter() - start


def compile_timings(ks=(1000, 10000, 30000)):
    x = np.linspace(0.0, 1.0, 100)
    return {k: min(first_call_time(k, x) for _ in range(3 if k < 30000 else 2)) for k in ks}


# -------------------- (e) dispatch --------------------

def dispatch_timings():
    jitted = ft.jit(scalar_function)
    jitted(1.5)
    return {"ft.jit": best_time(lambda: jitted(1.5), 20000)}


def scalar_function(x):
    return x * 2.0 + 1.0


# -------------------- (f) large pytrees --------------------

TREE_LEAVES = 100_000


def pytree_timings():
    leaves = [np.array(float(i)) for i in range(TREE_LEAVES)]
    trees = {"list": leaves, "tuple": tuple(leaves), "dict": {f"k{i:06d}": x for i, x in enumerate(leaves)},
             "list of (x, {'a': x})": [(x, {"a": x}) for x in leaves[:TREE_LEAVES // 2]]}
    times = {}
    for name, tree in trees.items():
        jitted = ft.jit(lambda tree: ft.tree_util.tree_leaves(tree)[0] * 2.0)
        jitted(tree)
        times[name] = best_time(lambda: jitted(tree), 3, repeat=5)
    return times


# -------------------- JAX --------------------

def jax_call_timings(fun, *args):
    """Per-call times of jax.jit(fun) on device-resident arguments and on NumPy
    arguments with a NumPy result (the copies in and out that ft.jit never makes)."""
    jitted = jax.jit(fun)
    on_device = [jax.device_put(a) for a in args]
    jax.block_until_ready(jitted(*on_device))
    return {"jax.jit, arrays on device": best_time(lambda: jax.block_until_ready(jitted(*on_device)), 3),
            "jax.jit, NumPy in and out": best_time(lambda: jax.tree_util.tree_map(np.asarray, jitted(*args)), 3)}


def add_jax_timings(results):
    """JAX's rows, measured after every other: once started, its thread pool
    slows OpenBLAS down (several times over on a 2-core machine)."""
    jax_gelu = lambda x: 0.5 * x * (1 + jnp.tanh(C0 * (x + C1 * x ** 3)))  # noqa: E731
    for dtype in (np.float64, np.float32):
        results["gelu", dtype].update(jax_call_timings(jax_gelu, gelu_input(dtype)))
    results["mlp"].update(jax_call_timings(make_step(jnp, jax.grad), *mlp_problem()))
    jitted = jax.jit(scalar_function)
    jax.block_until_ready(jitted(1.5))
    results["dispatch"]["jax.jit"] = best_time(lambda: jitted(1.5), 20000)


def main():
    print(f"Python {platform.python_version()}, NumPy {np.__version__}, {platform.machine()}"
          + (f", JAX {jax.__version__}" if jax is not None else ", JAX not installed (its rows are skipped)")
          + f"; BLAS threads: {os.environ['OPENBLAS_NUM_THREADS']}; ft.jit threads: {lowering_numpy_runtime.thread_count()}")
    results = {("gelu", dtype): gelu_timings(dtype) for dtype in (np.float64, np.float32)}
    results["grad"] = gelu_grad_timings()
    results["mlp"] = mlp_timings()
    results["compile"] = compile_timings()
    results["dispatch"] = dispatch_timings()
    results["pytree"] = pytree_timings()
    if jax is not None:
        add_jax_timings(results)

    for dtype in (np.float64, np.float32):
        print(f"\n(a) gelu_tanh on 10^7 {np.dtype(dtype).name} values, per call")
        times = results["gelu", dtype]
        for name, seconds in times.items():
            row(name, seconds)
        ratio("NumPy eager / ft.jit", times["NumPy eager"], times["ft.jit"], ">= 20")
        ratio("ft.jit one thread / ft.jit", times["ft.jit, one thread"], times["ft.jit"], "reference")
        ratio("ft.jit / NumPy hand-chunked", times["ft.jit"], times["NumPy, hand-chunked"], "reference")
        jax_ratios(times, "<= 0.7")

    print("\n(b) grad of sum(gelu(x)) at 10^6 float64 values, per call")
    times = results["grad"]
    for name, seconds in times.items():
        row(name, seconds)
    ratio("ft.jit / NumPy hand-chunked", times["ft.jit(ft.grad)"], times["NumPy, hand-chunked gradient"],
          "<= 1.2")

    print(f"\n(c) MLP {'-'.join(map(str, SIZES))} SGD step, float32, batch {BATCH}, per step")
    times = results["mlp"]
    for name, seconds in times.items():
        row(name, seconds)
    ratio("ft.jit / NumPy hand-written", times["ft.jit"], times["NumPy, hand-written backprop"], "<= 1.1")
    jax_ratios(times, "compare")

    print("\n(d) first call of ft.jit(ft.grad(lambda x: chain_K(x).sum())), 100-vector")
    for k, seconds in results["compile"].items():
        print(f"   K = {k:6d}   {seconds:7.3f} s   {seconds / k * 1e6:7.1f} us per K")
    print("   (aim: linear in K, <= 3 s at K = 30000)")

    print("\n(e) cached dispatch of ft.jit(lambda x: x * 2.0 + 1.0)(1.5), per call")
    times = results["dispatch"]
    for name, seconds in times.items():
        row(name, seconds, "us")
    if "jax.jit" in times:
        ratio("ft.jit / jax.jit", times["ft.jit"], times["jax.jit"], "<= 1")

    print(f"\n(f) cached ft.jit call over a pytree of {TREE_LEAVES:,} 0-d arrays, per call and per leaf")
    for name, seconds in results["pytree"].items():
        print(f"   {name:30s} {seconds * 1e3:9.2f} ms {seconds / TREE_LEAVES * 1e9:9.0f} ns per leaf")
    print("   (aim: well under 1 us per leaf)")


def jax_ratios(times, aim):
    for where in ("arrays on device", "NumPy in and out"):
        if f"jax.jit, {where}" in times:
            ratio(f"ft.jit / jax.jit ({where})", times["ft.jit"], times[f"jax.jit, {where}"], aim)


if __name__ == "__main__":
    main()
