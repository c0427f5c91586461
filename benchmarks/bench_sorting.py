"""Sorting benchmark (issue 16), measured in one run, float64: jit of the gradient of a sort-based
loss (sum of the sorted values times weights, and a median), of lax.top_k, and of
ft.random.permutation, which before this branch were O(k n) rounds of a masked maximum
and an O(n^2) rank sort; against NumPy's own sort (no gradient: a floor) and JAX when it is
installed (/tmp/jaxenv/bin/python with PYTHONPATH=.).

Threads: ftrans's NumPy lowering is single-threaded here; JAX runs with
XLA_FLAGS=--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1 (set below,
before JAX is imported), so both use one core. Times are the best of several repeats
(the machine may be shared); each ratio compares two rows of this run.

Run: PYTHONPATH=. python benchmarks/bench_sorting.py
"""
import os
import time

os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")

import numpy as np  # noqa: E402

import ftrans as ft  # noqa: E402
import ftrans.numpy as fnp  # noqa: E402


def best_of(fun, *args, repeats=7):
    fun(*args)  # warm: compile, caches
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fun(*args)
        times.append(time.perf_counter() - start)
    return min(times)


def loss_with(xp):
    def loss(x, w):
        return xp.sum(xp.sort(x, axis=-1) * w) + xp.sum(xp.median(x, axis=-1))
    return loss


def main():
    rng = np.random.default_rng(0)
    try:
        import jax
        import jax.numpy as jnp
        jax.config.update("jax_enable_x64", True)
    except ImportError:
        jax = None
    for rows, n in ((64, 1000), (16, 100_000)):
        x = rng.standard_normal((rows, n))
        w = rng.standard_normal(n)
        print(f"x: {rows} x {n}")
        ft_grad = ft.jit(ft.grad(loss_with(fnp)))
        t_np = best_of(lambda a: np.sort(a, axis=-1), x)
        t_ft = best_of(ft_grad, x, w)
        print(f"  numpy sort (values only)        {t_np * 1e3:8.2f} ms")
        print(f"  ft.jit(ft.grad(sort loss))      {t_ft * 1e3:8.2f} ms   ({t_ft / t_np:.1f}x NumPy's sort)")
        k = 10
        ft_top = ft.jit(lambda a: ft.lax.top_k(a, k))
        t_top = best_of(ft_top, x)
        print(f"  ft.jit(lax.top_k, k={k})        {t_top * 1e3:8.2f} ms")
        key = ft.random.PRNGKey(0)
        ft_perm = ft.jit(lambda kk: ft.random.permutation(kk, n))
        t_perm = best_of(ft_perm, key)
        print(f"  ft.jit(random.permutation(n))   {t_perm * 1e3:8.2f} ms")
        if jax is None:
            print("  (JAX is not installed)")
            continue
        jax_grad = jax.jit(jax.grad(loss_with(jnp)))
        np.testing.assert_allclose(np.asarray(jax_grad(x, w)), np.asarray(ft_grad(x, w)), rtol=1e-12)
        t_jax = best_of(lambda a, b: jax_grad(a, b).block_until_ready(), x, w)
        print(f"  jax.jit(jax.grad(sort loss))    {t_jax * 1e3:8.2f} ms   (ft.jit {t_ft / t_jax:.2f}x JAX)")
        jax_top = jax.jit(lambda a: jax.lax.top_k(a, k))
        np.testing.assert_array_equal(np.asarray(jax_top(x)[1]), np.asarray(ft_top(x)[1]))
        t_jtop = best_of(lambda a: jax_top(a)[0].block_until_ready(), x)
        print(f"  jax.jit(lax.top_k)              {t_jtop * 1e3:8.2f} ms   (ft.jit {t_top / t_jtop:.2f}x JAX)")
        jax_perm = jax.jit(lambda kk: jax.random.permutation(kk, n))
        jkey = jax.random.PRNGKey(0)
        np.testing.assert_array_equal(np.asarray(jax_perm(jkey)), np.asarray(ft_perm(key)))
        t_jperm = best_of(lambda kk: jax_perm(kk).block_until_ready(), jkey)
        print(f"  jax.jit(random.permutation)     {t_jperm * 1e3:8.2f} ms   (ft.jit {t_perm / t_jperm:.2f}x JAX)")


if __name__ == "__main__":
    main()
