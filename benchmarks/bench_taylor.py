"""Taylor-mode benchmarks (issue 14), measured in one run, on the network of
Dangel et al., "Collapsing Taylor Mode Automatic Differentiation" (2025): a
tanh MLP 50-768-768-512-512-1, float64, a batch of 32 points.

(a) The exact Laplacian of the network at each point, all under jit and vmap:
    ft.laplacian (collapsed Taylor mode), standard (uncollapsed) Taylor mode
    (ft.laplacian(collapse=False)), ftrans's nested trace(hessian), and, where
    installed, jax.jit of trace(jax.hessian) and folx's forward Laplacian.
(b) The stochastic biharmonic with 16 Gaussian directions: ft.biharmonic
    (collapsed 4-jets) against nested 4th-order jvps (jvp of jvp of jvp of
    jvp along each direction), both under ft.jit (its CSE on), and jax.jit of
    the nested jvps where installed. It also prints the rows each variant pushes
    through the hidden layers' matmuls (1 + 3R + 1 against CSE's 1 + 4R per
    layer), which bound the speed-up on this matmul-dominated network.

Per datum: time (best of several repeats / 32) and peak memory (the largest
extra NumPy memory one call allocates, tracemalloc's peak above what was
allocated before it, / 32). Memory is measured for ftrans only: JAX's buffers
live outside Python's allocator. Each ratio compares two rows of this run.
BLAS and XLA run on one core unless the environment says otherwise, as with
bench_jit.py --cores 1 (on a shared machine spinning threads measure the neighbours'
load more than the code), and the process runs on one CPU (see below), so
JAX's XLA runs on one thread too; the header says what each library uses.

Run: python benchmarks/bench_taylor.py   (add --quick for a smaller network)
"""
import os

# One core for everything, before NumPy, BLAS and XLA start their threads: XLA's CPU
# client ignores the thread flags bench_jit.py sets (it ran on both cores of a 2-core
# machine), but sizes its pool to the CPUs the process may use. FTRANS_BENCH_CPUS=all
# keeps every CPU (then BLAS still runs on one thread unless its variables say otherwise).
if os.environ.get("FTRANS_BENCH_CPUS", "one") != "all" and hasattr(os, "sched_setaffinity"):
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")  # before NumPy loads its BLAS
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")

import platform  # noqa: E402
import sys  # noqa: E402
import timeit  # noqa: E402
import tracemalloc  # noqa: E402

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

try:
    import folx
except ImportError:
    folx = None

WIDTHS = (50, 768, 768, 512, 512, 1)
BATCH = 32
DIRECTIONS = 16


def network(widths, seed=0):
    rng = np.random.default_rng(seed)
    return [(rng.normal(size=(n_out, n_in)) / np.sqrt(n_in), rng.normal(size=n_out) * 0.1)
            for n_in, n_out in zip(widths[:-1], widths[1:])]


def mlp(params, x, np_=fnp):
    """The network at one point x, a scalar; `np_` is ftrans.numpy or jax.numpy."""
    for W, b in params[:-1]:
        x = np_.tanh(W @ x + b)
    W, b = params[-1]
    return (W @ x + b)[0]


def best_time(fun, number=1, repeat=5):
    fun()  # warm: tracing, lowering, JAX's compilation
    return min(timeit.repeat(fun, number=number, repeat=repeat)) / number


def peak_memory(fun):
    """The most memory one call of `fun` allocates beyond what was allocated before it."""
    fun()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        fun()
        return tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()


def row(name, seconds, memory=None):
    shown = f"{seconds / BATCH * 1e3:9.3f} ms" + (f"  {memory / BATCH / 2 ** 20:8.2f} MiB" if memory else "")
    print(f"   {name:48s} {shown}")


def ratio(text, numerator, denominator, aim=None):
    print(f"   {text:48s} {numerator / denominator:9.2f}x" + (f"   (aim: {aim})" if aim else ""))


# -------------------- (a) the Laplacian --------------------

def laplacians(params, points):
    in_axes = (None, 0)
    collapsed = ft.jit(ft.vmap(ft.laplacian(mlp, argnums=1), in_axes=in_axes))
    standard = ft.jit(ft.vmap(ft.laplacian(mlp, argnums=1, collapse=False), in_axes=in_axes))
    nested = ft.jit(ft.vmap(lambda p, x: fnp.einsum("ii->", ft.hessian(mlp, argnums=1)(p, x)), in_axes=in_axes))
    variants = {"ft.laplacian (collapsed Taylor)": collapsed, "standard Taylor (collapse=False)": standard,
                "ftrans nested trace(hessian)": nested}
    expected = nested(params, points)
    for name, fun in variants.items():
        np.testing.assert_allclose(fun(params, points), expected, rtol=1e-8, atol=1e-10, err_msg=name)
    times = {name: best_time(lambda fun=fun: fun(params, points)) for name, fun in variants.items()}
    memory = {name: peak_memory(lambda fun=fun: fun(params, points)) for name, fun in variants.items()}
    if jax is not None:
        jax_params = [(jnp.asarray(W), jnp.asarray(b)) for W, b in params]
        jax_points = jnp.asarray(points)
        jax_mlp = lambda p, x: mlp(p, x, jnp)  # noqa: E731
        jax_nested = jax.jit(jax.vmap(lambda p, x: jnp.trace(jax.hessian(jax_mlp, argnums=1)(p, x)),
                                      in_axes=(None, 0)))
        np.testing.assert_allclose(np.asarray(jax_nested(jax_params, jax_points)), expected, rtol=1e-8, atol=1e-10)
        times["jax.jit trace(jax.hessian)"] = best_time(
            lambda: jax_nested(jax_params, jax_points).block_until_ready())
        if folx is not None:
            forward = jax.jit(jax.vmap(lambda p, x: folx.forward_laplacian(lambda x: jax_mlp(p, x))(x).laplacian,
                                       in_axes=(None, 0)))
            np.testing.assert_allclose(np.asarray(forward(jax_params, jax_points)), expected, rtol=1e-8, atol=1e-10)
            times["folx forward_laplacian, jax.jit"] = best_time(
                lambda: forward(jax_params, jax_points).block_until_ready())
    return times, memory


# -------------------- (b) the stochastic biharmonic --------------------

def nested_fourth_derivative(f, x, v):
    """d^4 f(x)[v, v, v, v] by four nested jvps along v."""
    g = f
    for _ in range(4):
        g = (lambda g: lambda x: ft.jvp(g, (x,), (v,))[1])(g)
    return g(x)


def biharmonics(params, points, directions):
    in_axes = (None, 0)
    collapsed = ft.jit(ft.vmap(ft.biharmonic(mlp, argnums=1, directions=directions), in_axes=in_axes))

    def by_nested_jvps(p, x):
        per_direction = ft.vmap(lambda v: nested_fourth_derivative(lambda x: mlp(p, x), x, v))(directions)
        return fnp.mean(per_direction) / 3
    nested = ft.jit(ft.vmap(by_nested_jvps, in_axes=in_axes))
    np.testing.assert_allclose(collapsed(params, points), nested(params, points), rtol=1e-7, atol=1e-9)
    variants = {"ft.biharmonic, 16 directions (collapsed)": collapsed, "nested 4th-order jvps, 16 directions": nested}
    times = {name: best_time(lambda fun=fun: fun(params, points)) for name, fun in variants.items()}
    memory = {name: peak_memory(lambda fun=fun: fun(params, points)) for name, fun in variants.items()}
    if jax is not None:
        jax_params = [(jnp.asarray(W), jnp.asarray(b)) for W, b in params]
        jax_points, jax_directions = jnp.asarray(points), jnp.asarray(directions)
        jax_mlp = lambda p, x: mlp(p, x, jnp)  # noqa: E731

        def jax_fourth_derivative(f, x, v):
            g = f
            for _ in range(4):
                g = (lambda g: lambda x: jax.jvp(g, (x,), (v,))[1])(g)
            return g(x)
        jax_nested = jax.jit(jax.vmap(lambda p, x: jnp.mean(jax.vmap(
            lambda v: jax_fourth_derivative(lambda x: jax_mlp(p, x), x, v))(jax_directions)) / 3,
            in_axes=(None, 0)))
        np.testing.assert_allclose(np.asarray(jax_nested(jax_params, jax_points)), collapsed(params, points),
                                   rtol=1e-7, atol=1e-9)
        times["jax.jit nested 4th-order jvps"] = best_time(
            lambda: jax_nested(jax_params, jax_points).block_until_ready())
    return times, memory


def matmul_rows(fun, params, point):
    """Rows multiplied by each hidden layer's weights, summed over layers: the
    multiply-adds of the matmuls, which dominate this network, in units of one
    vector through the network. Read from the optimized program."""
    jaxpr = ft.jit(fun).lower(params, point).jaxpr
    rows = 0
    for eqn in jaxpr.jaxpr.eqns:
        if eqn.primitive.name == "dot_general" and eqn.outvars[0].aval.shape[-1] > 1:
            shape = eqn.outvars[0].aval.shape
            rows += int(np.prod(shape[:-1])) if len(shape) > 1 else 1
    return rows


def main(widths=WIDTHS):
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"Python {platform.python_version()}, NumPy {np.__version__}, {platform.machine()}; "
          f"{cpus} CPU(s) for this process, BLAS threads {os.environ.get('OPENBLAS_NUM_THREADS')}, "
          f"ftrans jit threads {lowering_numpy_runtime.thread_count()}"
          + (f"; JAX {jax.__version__} (XLA_FLAGS={os.environ.get('XLA_FLAGS')})" if jax else "; JAX not installed")
          + ("; folx " + folx.__version__ if folx else "; folx not installed"))
    print(f"tanh MLP {'-'.join(map(str, widths))}, float64, batch {BATCH}; per datum: time, peak memory")
    params = network(widths)
    rng = np.random.default_rng(1)
    points = rng.normal(size=(BATCH, widths[0]))

    print("\n(a) exact Laplacian")
    times, memory = laplacians(params, points)
    for name in times:
        row(name, times[name], memory.get(name))
    collapsed, standard, nested = (times[k] for k in ("ft.laplacian (collapsed Taylor)",
                                                      "standard Taylor (collapse=False)",
                                                      "ftrans nested trace(hessian)"))
    ratio("collapsed / nested trace(hessian), time", collapsed, nested, "<= 0.5")
    ratio("collapsed / standard Taylor, time", collapsed, standard, "<= 0.7")
    ratio("collapsed / nested trace(hessian), memory", memory["ft.laplacian (collapsed Taylor)"],
          memory["ftrans nested trace(hessian)"], "<= 0.6")
    if "jax.jit trace(jax.hessian)" in times:
        ratio("collapsed / jax.jit trace(jax.hessian), time", collapsed, times["jax.jit trace(jax.hessian)"],
              "<= 0.6")
    if "folx forward_laplacian, jax.jit" in times:
        ratio("collapsed / folx forward_laplacian, time", collapsed, times["folx forward_laplacian, jax.jit"],
              "<= 1.0")

    print(f"\n(b) stochastic biharmonic, {DIRECTIONS} Gaussian directions")
    directions = rng.normal(size=(DIRECTIONS, widths[0]))
    times, memory = biharmonics(params, points, directions)
    for name in times:
        row(name, times[name], memory.get(name))
    ratio("nested jvps / collapsed, time (speed-up)", times["nested 4th-order jvps, 16 directions"],
          times["ft.biharmonic, 16 directions (collapsed)"], ">= 1.5")
    ratio("collapsed / nested jvps, memory", memory["ft.biharmonic, 16 directions (collapsed)"],
          memory["nested 4th-order jvps, 16 directions"])
    if "jax.jit nested 4th-order jvps" in times:
        ratio("jax.jit nested jvps / collapsed, time (speed-up)", times["jax.jit nested 4th-order jvps"],
              times["ft.biharmonic, 16 directions (collapsed)"])
    # Why the speed-up over nested jvps has a ceiling near 1.3 here: CSE merges the
    # nested jvps' 2^4 tangent streams per direction into 4 (those along equal
    # direction subsets are equal), so both variants push through each layer's
    # matmul 1 + 4R rows against collapsed Taylor's 1 + 3R + 1.
    point = points[0]
    collapsed_rows = matmul_rows(ft.biharmonic(mlp, argnums=1, directions=directions), params, point)
    nested_rows = matmul_rows(lambda p, x: fnp.mean(ft.vmap(
        lambda v: nested_fourth_derivative(lambda x: mlp(p, x), x, v))(directions)) / 3, params, point)
    print(f"   matmul rows through the hidden layers: collapsed {collapsed_rows}, nested {nested_rows}, "
          f"a ceiling of {nested_rows / collapsed_rows:.2f}x on the matmuls' share")


if __name__ == "__main__":
    main((50, 64, 64, 32, 32, 1) if "--quick" in sys.argv else WIDTHS)
