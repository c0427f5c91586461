"""vmap benchmark (issue 4): per-example gradients of an MLP.

Per-example gradients of the squared loss of a 32-64-64-1 tanh MLP over a batch
of 256 examples, float64:

1. ftrans `vmap(grad(loss), in_axes=(None, 0, 0))`: one batched pass;
2. ftrans, a Python loop of 256 `grad(loss)` calls (the target: vmap >= 20x faster);
3. JAX `vmap(grad(loss))`, without and with jit, when JAX is installed.

Every variant's result is checked against the loop before it is timed.

Run: python benchmarks/bench_vmap.py
"""
import platform
import timeit

import numpy as np

import ftrans as ft
import ftrans.numpy as fnp

SIZES = [32, 64, 64, 1]
BATCH = 256


def best_time(fun, number, repeat=7):
    return min(timeit.repeat(fun, number=number, repeat=repeat)) / number


def init(seed=0):
    rng = np.random.default_rng(seed)
    params = [(rng.normal(size=(m, n)) / np.sqrt(m), np.zeros(n)) for m, n in zip(SIZES[:-1], SIZES[1:])]
    return params, rng.normal(size=(BATCH, SIZES[0])), rng.normal(size=(BATCH, SIZES[-1]))


def loss(params, x, y, np_=fnp):
    for W, b in params[:-1]:
        x = np_.tanh(x @ W + b)
    W, b = params[-1]
    return np_.sum((x @ W + b - y) ** 2)


def check_close(got, expected, what):
    for g, e in zip(ft.tree_util.tree_leaves(got), ft.tree_util.tree_leaves(expected), strict=True):
        assert np.allclose(np.asarray(g), e, rtol=1e-10, atol=1e-12), what


def main():
    print(f"Python {platform.python_version()}, NumPy {np.__version__}, {platform.machine()}")
    print(f"per-example gradients: MLP {'-'.join(map(str, SIZES))} (tanh, squared loss), "
          f"batch {BATCH}, float64\n")
    params, xs, ys = init()
    grad_loss = ft.grad(loss)
    per_example = ft.vmap(grad_loss, in_axes=(None, 0, 0))

    def loop():
        grads = [grad_loss(params, x, y) for x, y in zip(xs, ys)]
        return ft.tree_util.tree_map(lambda *g: np.stack(g), *grads)

    expected = loop()
    check_close(per_example(params, xs, ys), expected, "ftrans vmap(grad)")
    rows = [("ftrans vmap(grad)", best_time(lambda: per_example(params, xs, ys), 20)),
            ("ftrans loop of grad", best_time(loop, 1, 5))]
    try:
        import jax
        import jax.numpy as jnp
        jax.config.update("jax_enable_x64", True)
        jax_loss = lambda p, x, y: loss(p, x, y, np_=jnp)
        jax_per_example = jax.vmap(jax.grad(jax_loss), in_axes=(None, 0, 0))
        jitted = jax.jit(jax_per_example)
        for name, fun in (("JAX vmap(grad), no jit", jax_per_example), ("JAX jit(vmap(grad))", jitted)):
            check_close(fun(params, xs, ys), expected, name)
            run = lambda fun=fun: jax.block_until_ready(fun(params, xs, ys))
            rows.append((name, best_time(run, 20)))
    except ImportError:
        print("(JAX is not installed: its rows are skipped)\n")

    vmap_time = rows[0][1]
    print(f"{'variant':<26}{'time per batch':>16}{'vs ftrans vmap':>16}")
    for name, seconds in rows:
        print(f"{name:<26}{seconds * 1e3:>13.3f} ms{seconds / vmap_time:>15.1f}x")
    speedup = rows[1][1] / vmap_time
    print(f"\nvmap(grad) is {speedup:.0f}x faster than the loop of grad calls (target: >= 20x)")


if __name__ == "__main__":
    main()
