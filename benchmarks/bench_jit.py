"""jit benchmarks (issues 5 and 18), every workload against jax.jit when JAX is
installed, measured in one run:

(a) gelu_tanh 0.5 x (1 + tanh(0.79788 (x + 0.044715 x^3))) on 10^7 values,
    float64 and float32 (also against NumPy eager and hand-chunked NumPy);
(b) a cheap chain of 7 multiplies and adds on 8 x 10^6 float32 values, bound
    by memory bandwidth once fused;
(c) jit(grad(sum(gelu(x)))) at 10^6 float64 values (also against a
    hand-chunked NumPy gradient);
(d) one SGD training step of a 784-512-512-10 tanh MLP with softmax
    cross-entropy, float32, batch 128 (also against hand-written NumPy backprop);
(e) jit(vmap(grad)): per-example gradients of the squared loss of a
    32-64-64-1 tanh MLP, batch 256, float64;
(f) cached dispatch of a jitted scalar function;
(g) compile time: the first call of ft.jit(ft.grad(lambda x: chain_K(x).sum())),
    chain_K alternating sin, * 1.0001 and + 0.1, K operations on a 100-vector
    (ftrans only: XLA takes minutes on such programs);
(h) a cached call over one pytree of 100,000 0-d arrays (a list, a tuple, a
    dict, and a list of (array, {"a": array}) pairs), per leaf: flattening and
    the signature check, the cost a large parameter tree pays on every call
    (ftrans only).

Threads, the same for both libraries, printed in the header:
- by default, every library at its defaults: OpenBLAS and XLA use every CPU
  the process may run on, ft.jit's chunked runs the threads
  interpreters/lowering_numpy_runtime.py picks (FTRANS_JIT_THREADS);
- `--cores N`: the whole process is pinned to N CPUs (its affinity mask, set
  before NumPy and JAX start their threads), and OpenBLAS and ft.jit are told
  to use N threads (XLA sizes its pool by the CPUs it finds; with N = 1 its
  multi-threaded Eigen is turned off too), so every library runs on the same
  cores.

The header names the kernels OpenBLAS picked: version 0.3.31 takes AMD's Zen 5
for a Haswell (AVX2), while XLA's matrix products use AVX-512, which is most of
the MLP step's gap; `--openblas-coretype SkylakeX` gives NumPy the AVX-512 kernels.

When ft.config has the "cpu_kernels" option (issue 18: fused C kernels for the
CPU), every ft.jit row is measured with the kernels on and off.

Times are the best of several repeats (the machine may be shared); each ratio
compares two rows of this run, and JAX's rows come from arguments already on
its device (block_until_ready). JAX (CPU) is optional: `pip install jax jaxlib`.

Run: python benchmarks/bench_jit.py [--cores N] [--openblas-coretype NAME] [--quick]
"""
import argparse
import os
import sys


def _parse_arguments():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cores", type=int, default=None,
                        help="pin the process to N CPUs and every library to N threads (default: their defaults)")
    parser.add_argument("--openblas-coretype", default=None, metavar="NAME",
                        help="OPENBLAS_CORETYPE for NumPy's BLAS (e.g. SkylakeX: OpenBLAS 0.3.31 takes AMD Zen 5 "
                             "for a Haswell and runs AVX2 kernels, where XLA uses AVX-512)")
    parser.add_argument("--quick", action="store_true", help="fewer repeats, for a smoke test")
    parser.add_argument("--no-jax", action="store_true", help="skip JAX's rows even if it is installed")
    return parser.parse_args()


def _pin(cores):
    """Pin this process and every library's threads to `cores` CPUs: before NumPy
    and JAX load (they size their thread pools at start)."""
    if cores < 1:
        sys.exit("--cores takes a positive number")
    cpus = sorted(os.sched_getaffinity(0))
    if cores > len(cpus):
        sys.exit(f"--cores {cores}: this process may run on {len(cpus)} CPUs only")
    os.sched_setaffinity(0, cpus[:cores])
    for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "FTRANS_JIT_THREADS"):
        os.environ[variable] = str(cores)
    if cores == 1:
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false").strip()


ARGUMENTS = _parse_arguments() if __name__ == "__main__" else argparse.Namespace(
    cores=None, quick=False, no_jax=True, openblas_coretype=None)
if ARGUMENTS.cores is not None:
    _pin(ARGUMENTS.cores)
if ARGUMENTS.openblas_coretype:
    os.environ["OPENBLAS_CORETYPE"] = ARGUMENTS.openblas_coretype  # read when NumPy loads OpenBLAS

import ctypes  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402
import timeit  # noqa: E402

import numpy as np  # noqa: E402

import ftrans as ft  # noqa: E402
import ftrans.numpy as fnp  # noqa: E402
from interpreters import lowering_numpy_runtime  # noqa: E402

jax = jnp = None
if not ARGUMENTS.no_jax:
    try:
        import jax
        import jax.numpy as jnp
        jax.config.update("jax_enable_x64", True)
    except ImportError:
        pass

C0, C1 = 0.7978845608028654, 0.044715
CHUNK_BYTES = 512 * 1024  # of the hand-written chunked versions: what ftrans uses too
KERNEL_OPTION = "cpu_kernels"  # issue 18's switch, where this ftrans has it
HAS_KERNELS = KERNEL_OPTION in dir(ft.config)


def best_time(fun, number, repeat=7):
    if ARGUMENTS.quick:
        number, repeat = max(1, number // 10), min(repeat, 3)
    return min(timeit.repeat(fun, number=number, repeat=repeat)) / number


def row(name, seconds, unit="ms"):
    scale = {"ms": 1e3, "us": 1e6, "s": 1.0}[unit]
    print(f"   {name:44s} {seconds * scale:9.2f} {unit}")


def ratio(text, numerator, denominator, aim):
    print(f"   {text:44s} {numerator / denominator:9.2f}    (aim: {aim})")


# -------------------- ft.jit with and without C kernels --------------------

def ft_variants():
    """The ft.jit configurations measured: (row suffix, cpu_kernels value or None)."""
    return [(", C kernels", True), (", NumPy code", False)] if HAS_KERNELS else [("", None)]


def ft_rows(make, args, number, repeat=7, check=None):
    """{"ft.jit<suffix>": seconds} for each configuration of ft_variants(): a
    fresh ft.jit(make()) under that configuration, checked by `check` first."""
    times = {}
    for suffix, kernels in ft_variants():
        with cpu_kernels(kernels):
            jitted = ft.jit(make())
            result = jitted(*args)
            if check is not None:
                check(result)
            times[f"ft.jit{suffix}"] = best_time(lambda: jitted(*args), number, repeat)
    return times


class cpu_kernels:
    """Sets ft.config's cpu_kernels for a block (nothing when None)."""

    def __init__(self, value):
        self.value = value

    def __enter__(self):
        if self.value is not None:
            self.saved = getattr(ft.config, KERNEL_OPTION)
            ft.config.update(KERNEL_OPTION, self.value)

    def __exit__(self, *exc):
        if self.value is not None:
            ft.config.update(KERNEL_OPTION, self.saved)


def ft_jit_names():
    return [f"ft.jit{suffix}" for suffix, _ in ft_variants()]


# -------------------- (a) gelu --------------------

def gelu(x, np_module=fnp):
    return 0.5 * x * (1 + np_module.tanh(C0 * (x + C1 * x ** 3)))


def numpy_gelu(x):
    return gelu(x, np)


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


def gelu_workload(dtype):
    x = gelu_input(dtype)
    expected = numpy_gelu(x)
    check = lambda result: np.testing.assert_allclose(result, expected, rtol=1e-5, atol=1e-6)  # noqa: E731
    check(chunked_numpy_gelu(x))
    times = ft_rows(lambda: gelu, (x,), 3, check=check)
    if ARGUMENTS.cores is None and lowering_numpy_runtime.thread_count() > 1:
        with cpu_kernels(False if HAS_KERNELS else None):
            jitted = ft.jit(gelu)
            jitted(x)
            times["ft.jit, NumPy code, one thread"] = one_thread(lambda: best_time(lambda: jitted(x), 3))
    times["NumPy eager"] = best_time(lambda: numpy_gelu(x), 1, 3)
    times["NumPy, hand-chunked"] = best_time(lambda: chunked_numpy_gelu(x), 3)
    return Workload(f"(a) gelu_tanh on 10^7 {np.dtype(dtype).name} values, per call", times,
                    jax_fun=lambda: lambda x: gelu(x, jnp), jax_args=(x,), check=check, number=3,
                    aim="<= 0.65" if dtype == np.float64 else "<= 0.7",
                    references=[("NumPy eager", "reference"), ("NumPy, hand-chunked", "reference")])


def one_thread(measure):
    """`measure()` with ft.jit's chunked runs on the calling thread only."""
    threads, lowering_numpy_runtime.THREADS = lowering_numpy_runtime.THREADS, 1
    try:
        return measure()
    finally:
        lowering_numpy_runtime.THREADS = threads


# -------------------- (b) a cheap chain --------------------

CHAIN_SIZE = 8 * 10 ** 6


def cheap_chain(x):
    """7 operations, each one cheap: alternating multiplies and adds."""
    return (((x * 1.5 + 0.5) * 0.75 + 0.25) * 2.0 + 1.0) * 0.5


def chain_workload():
    x = np.random.default_rng(4).normal(size=CHAIN_SIZE).astype(np.float32)
    expected = cheap_chain(x)  # NumPy, in float32 too (NEP 50: Python floats are weak)
    # XLA contracts a * b + c into FMAs: near the chain's zeros that differs in the last bits
    check = lambda result: np.testing.assert_allclose(result, expected, rtol=1e-6, atol=1e-6)  # noqa: E731
    times = ft_rows(lambda: cheap_chain, (x,), 5, check=check)
    times["NumPy eager"] = best_time(lambda: cheap_chain(x), 3, 5)
    return Workload(f"(b) a chain of 7 multiplies and adds on {CHAIN_SIZE:,} float32 values, per call", times,
                    jax_fun=lambda: cheap_chain, jax_args=(x,), check=check, number=5, aim="<= 1.2",
                    references=[("NumPy eager", "reference")])


# -------------------- (c) grad of sum(gelu) --------------------

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


def gelu_grad_workload(n=10 ** 6):
    x = np.random.default_rng(1).normal(size=n)
    expected = chunked_numpy_gelu_grad(x)
    check = lambda result: np.testing.assert_allclose(result, expected, rtol=1e-12, atol=1e-14)  # noqa: E731
    times = ft_rows(lambda: ft.grad(lambda x: fnp.sum(gelu(x))), (x,), 10, check=check)
    times["NumPy, hand-chunked gradient"] = best_time(lambda: chunked_numpy_gelu_grad(x), 10)
    return Workload("(c) jit(grad(sum(gelu(x)))) at 10^6 float64 values, per call", times,
                    jax_fun=lambda: jax.grad(lambda x: jnp.sum(gelu(x, jnp))), jax_args=(x,), check=check,
                    number=10, aim="<= 1.6", references=[("NumPy, hand-chunked gradient", "<= 1.2")])


# -------------------- (d) MLP training step --------------------

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


def close_trees(rtol, atol):
    """A check that a result pytree equals `expected`'s leaves."""
    def check_against(expected):
        def check(result):
            leaves = [np.asarray(leaf) for leaf in ft.tree_util.tree_leaves(result)]
            for got, want in zip(leaves, ft.tree_util.tree_leaves(expected), strict=True):
                np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)
        return check
    return check_against


def mlp_workload():
    params, x, y = mlp_problem()
    check = close_trees(1e-4, 1e-6)(numpy_step(params, x, y))
    times = ft_rows(lambda: make_step(fnp, ft.grad), (params, x, y), 20, check=check)
    times["NumPy, hand-written backprop"] = best_time(lambda: numpy_step(params, x, y), 20)
    return Workload(f"(d) MLP {'-'.join(map(str, SIZES))} SGD step, float32, batch {BATCH}, per step", times,
                    jax_fun=lambda: make_step(jnp, jax.grad), jax_args=(params, x, y), check=check, number=20,
                    aim="<= 1.1", references=[("NumPy, hand-written backprop", "<= 1.1")])


# -------------------- (e) per-example gradients --------------------

PER_EXAMPLE_SIZES, PER_EXAMPLE_BATCH = (32, 64, 64, 1), 256


def per_example_problem():
    rng = np.random.default_rng(3)
    params = [(rng.normal(size=(m, n)) / np.sqrt(m), np.zeros(n))
              for m, n in zip(PER_EXAMPLE_SIZES[:-1], PER_EXAMPLE_SIZES[1:])]
    xs = rng.normal(size=(PER_EXAMPLE_BATCH, PER_EXAMPLE_SIZES[0]))
    ys = rng.normal(size=(PER_EXAMPLE_BATCH, PER_EXAMPLE_SIZES[-1]))
    return params, xs, ys


def make_per_example_grads(np_module, grad, vmap):
    """vmap(grad(squared loss)) over the examples, written against `np_module`."""
    def loss(params, x, y):
        for w, b in params[:-1]:
            x = np_module.tanh(x @ w + b)
        w, b = params[-1]
        return np_module.sum((x @ w + b - y) ** 2)
    return vmap(grad(loss), in_axes=(None, 0, 0))


def per_example_workload():
    params, xs, ys = per_example_problem()
    # the reference: grad, one example at a time, stacked
    one = ft.jit(make_per_example_grads(fnp, ft.grad, lambda f, in_axes: f))
    expected = ft.tree_util.tree_map(lambda *g: np.stack(g), *[one(params, x, y) for x, y in zip(xs, ys)])
    check = close_trees(1e-10, 1e-12)(expected)
    times = ft_rows(lambda: make_per_example_grads(fnp, ft.grad, ft.vmap), (params, xs, ys), 20, check=check)
    return Workload(f"(e) jit(vmap(grad)): per-example gradients, MLP {'-'.join(map(str, PER_EXAMPLE_SIZES))}, "
                    f"batch {PER_EXAMPLE_BATCH}, float64", times,
                    jax_fun=lambda: make_per_example_grads(jnp, jax.grad, jax.vmap), jax_args=(params, xs, ys),
                    check=check, number=20, aim="<= 1.2")


# -------------------- (f) dispatch --------------------

def scalar_function(x):
    return x * 2.0 + 1.0


def dispatch_workload():
    times = ft_rows(lambda: scalar_function, (1.5,), 20000)
    return Workload("(f) cached dispatch of jit(lambda x: x * 2.0 + 1.0)(1.5), per call", times,
                    jax_fun=lambda: scalar_function, jax_args=(1.5,), number=20000, aim="<= 1.2", unit="us",
                    jax_on_device=False)


# -------------------- (g) compile time --------------------

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
    if ARGUMENTS.quick:
        ks = ks[:2]
    return {k: min(first_call_time(k, x) for _ in range(3 if k < 30000 else 2)) for k in ks}


# -------------------- (h) large pytrees --------------------

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


# -------------------- JAX, and the report --------------------

class Workload:
    """One workload's rows: ftrans's (measured when made) and, from `add_jax`,
    jax.jit's of `jax_fun()` on `jax_args` (on its device unless `jax_on_device`
    is False: a Python scalar is what the dispatch workload passes both)."""

    def __init__(self, title, times, jax_fun, jax_args, number, aim, check=None, unit="ms",
                 references=(), jax_on_device=True):
        self.title, self.times, self.aim, self.unit, self.references = title, times, aim, unit, references
        self.jax_fun, self.jax_args, self.number, self.check = jax_fun, jax_args, number, check
        self.jax_on_device = jax_on_device

    def add_jax(self):
        jitted = jax.jit(self.jax_fun())
        args = jax.device_put(self.jax_args) if self.jax_on_device else self.jax_args
        result = jax.block_until_ready(jitted(*args))
        if self.check is not None:
            self.check(result)
        self.times["jax.jit"] = best_time(lambda: jax.block_until_ready(jitted(*args)), self.number)

    def report(self):
        print(f"\n{self.title}")
        for name, seconds in self.times.items():
            row(name, seconds, self.unit)
        for name in ft_jit_names():
            if "jax.jit" in self.times:
                ratio(f"{name} / jax.jit", self.times[name], self.times["jax.jit"], self.aim)
            for reference, aim in self.references:
                ratio(f"{name} / {reference}", self.times[name], self.times[reference], aim)
        if HAS_KERNELS:
            ratio("ft.jit: C kernels / NumPy code", self.times["ft.jit, C kernels"], self.times["ft.jit, NumPy code"],
                  "reference")


def openblas_query(symbols, restype=ctypes.c_int):
    """Ask the OpenBLAS NumPy loaded (the first of `symbols` it has); None if not found."""
    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "openblas" in line.lower() and ".so" in line}
    except OSError:
        return None
    for path in sorted(paths):
        library = ctypes.CDLL(path)
        for symbol in symbols:
            if hasattr(library, symbol):
                function = getattr(library, symbol)
                function.restype = restype
                return function()
    return None


def openblas_threads():
    return openblas_query(("scipy_openblas_get_num_threads64_", "openblas_get_num_threads64_",
                           "openblas_get_num_threads"))


def openblas_core():
    core = openblas_query(("scipy_openblas_get_corename64_", "openblas_get_corename64_", "openblas_get_corename"),
                          ctypes.c_char_p)
    return core.decode() if core else "?"


def thread_settings():
    cpus = len(os.sched_getaffinity(0))
    blas = openblas_threads()
    where = (f"pinned: the process to {cpus} CPU(s), every library to {cpus} thread(s)"
             if ARGUMENTS.cores is not None else f"defaults, on the {cpus} CPU(s) this process may run on")
    return (f"threads {where}: OpenBLAS {blas if blas is not None else '?'} (its {openblas_core()} kernels), "
            f"ft.jit chunked runs {lowering_numpy_runtime.thread_count()}, "
            f"XLA {'one (no multi-threaded Eigen)' if ARGUMENTS.cores == 1 else f'its pool over {cpus} CPU(s)'}")


def c_kernel_settings():
    """Which path the rows "C kernels" take: the compiler found, OpenMP and libmvec, threads."""
    from interpreters import c_compiler
    status = c_compiler.compiler_status()
    if not status.available:
        return f"C kernels: none ({status.reason}): the 'C kernels' rows run NumPy code"
    return (f"C kernels: {status.version or ' '.join(status.command)}, OpenMP {'yes' if status.openmp else 'no'}, "
            f"libmvec {'yes' if status.libmvec else 'no'}, {c_compiler.kernel_threads()} thread(s) per kernel")


def main():
    print(f"Python {platform.python_version()}, NumPy {np.__version__}, {platform.machine()}"
          + (f", JAX {jax.__version__}" if jax is not None else ", JAX not installed (its rows are skipped)")
          + (", ft.config has cpu_kernels (rows with and without)" if HAS_KERNELS else ""))
    print(thread_settings())
    if HAS_KERNELS:
        print(c_kernel_settings())
    workloads = [gelu_workload(np.float64), gelu_workload(np.float32), chain_workload(), gelu_grad_workload(),
                 mlp_workload(), per_example_workload(), dispatch_workload()]
    compile_times = compile_timings()
    pytree_times = pytree_timings()
    if jax is not None:
        # JAX's rows after every other: once started, its thread pool spins on the
        # cores OpenBLAS uses and slows it down (several times over on 2 cores)
        for workload in workloads:
            workload.add_jax()
    for workload in workloads:
        workload.report()

    print("\n(g) first call of ft.jit(ft.grad(lambda x: chain_K(x).sum())), 100-vector")
    for k, seconds in compile_times.items():
        print(f"   K = {k:6d}   {seconds:7.3f} s   {seconds / k * 1e6:7.1f} us per K")
    print("   (aim: linear in K, <= 3 s at K = 30000)")

    print(f"\n(h) cached ft.jit call over a pytree of {TREE_LEAVES:,} 0-d arrays, per call and per leaf")
    for name, seconds in pytree_times.items():
        print(f"   {name:30s} {seconds * 1e3:9.2f} ms {seconds / TREE_LEAVES * 1e9:9.0f} ns per leaf")
    print("   (aim: well under 1 us per leaf)")


if __name__ == "__main__":
    main()
