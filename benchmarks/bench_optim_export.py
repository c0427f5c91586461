"""ft.optim and ft.export benchmarks (issue 19, points 3 and 4), measured in one run:

(a) one Adam training step of a 784-256-256-10 tanh MLP with softmax
    cross-entropy (float32, batch 128), the whole step one jit:
    ft.jit(grad + ft.optim.adam update + apply_updates) against the same step
    with plain SGD (what the optimizer adds), and against jax.jit of the same
    step with Adam written out in jax.numpy (optax's rule; optax itself is not
    installed) when JAX is installed;
(b) exporting that model's predictor, loading it (in this process, and in a
    fresh one: interpreter start, import ftrans, load, first call), and a call
    of the loaded function under ft.jit against ft.jit of the original.

Times are the best of several repeats (the machine may be shared); each ratio
compares two rows of this run. BLAS and XLA run on one core (as with
bench_jit.py --cores 1), so ftrans and JAX run at the same thread settings.

Run: python benchmarks/bench_optim_export.py
"""
import os

for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")  # before NumPy loads its BLAS
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")

import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import timeit  # noqa: E402

import numpy as np  # noqa: E402

import ftrans as ft  # noqa: E402
import ftrans.numpy as fnp  # noqa: E402
import ftrans.optim as optim  # noqa: E402

try:
    import jax
    import jax.numpy as jnp
except ImportError:
    jax = jnp = None

SIZES, BATCH = (784, 256, 256, 10), 128


def best_time(fun, number, repeat=7):
    return min(timeit.repeat(fun, number=number, repeat=repeat)) / number


def row(name, seconds):
    print(f"  {name:<58s} {seconds * 1e3:9.3f} ms")
    return seconds


def init(rng):
    return [{"w": (rng.normal(size=(m, n)) / np.sqrt(m)).astype(np.float32), "b": np.zeros(n, np.float32)}
            for m, n in zip(SIZES[:-1], SIZES[1:])]


def make_loss(numpy):
    def logits(params, x):
        for layer in params[:-1]:
            x = numpy.tanh(x @ layer["w"] + layer["b"])
        return x @ params[-1]["w"] + params[-1]["b"]

    def loss(params, x, one_hot):
        z = logits(params, x)
        shifted = z - numpy.max(z, axis=1, keepdims=True)
        log_softmax = shifted - numpy.log(numpy.sum(numpy.exp(shifted), axis=1, keepdims=True))
        return -numpy.mean(numpy.sum(one_hot * log_softmax, axis=1))
    return logits, loss


def training_steps(rng, x, one_hot):
    print("(a) one training step, float32, batch 128, 784-256-256-10 tanh MLP")
    params = init(rng)
    _, loss = make_loss(fnp)
    adam, sgd = optim.adam(1e-3), optim.sgd(1e-2)

    def step_with(optimizer):
        @ft.jit
        def step(params, state, x, y):
            grads = ft.grad(loss)(params, x, y)
            updates, state = optimizer.update(grads, state, params)
            return optim.apply_updates(params, updates), state
        return step

    times = {}
    for name, optimizer in (("adam", adam), ("sgd", sgd)):
        step, state = step_with(optimizer), optimizer.init(params)
        carry = [params, state]

        def run():
            carry[0], carry[1] = step(carry[0], carry[1], x, one_hot)
        run()
        times[name] = row(f"ft.jit(grad + ft.optim.{name} update + apply_updates)", best_time(run, 20))
    print(f"  ratio adam / sgd step (what Adam's update adds), ftrans: {times['adam'] / times['sgd']:.2f}")
    if jax is None:
        print("  (JAX is not installed: no jax.jit row)")
        return
    _, jax_loss = make_loss(jnp)
    b1, b2, eps, lr = 0.9, 0.999, 1e-8, 1e-3

    @jax.jit
    def jax_step(params, state, x, y):
        count, mu, nu = state
        grads = jax.grad(jax_loss)(params, x, y)
        count = count + 1
        mu = jax.tree.map(lambda g, m: (1 - b1) * g + b1 * m, grads, mu)
        nu = jax.tree.map(lambda g, v: (1 - b2) * g * g + b2 * v, grads, nu)
        mu_hat = jax.tree.map(lambda m: m / (1 - b1 ** count).astype(m.dtype), mu)
        nu_hat = jax.tree.map(lambda v: v / (1 - b2 ** count).astype(v.dtype), nu)
        params = jax.tree.map(lambda p, m, v: p - lr * m / (jnp.sqrt(v) + eps), params, mu_hat, nu_hat)
        return params, (count, mu, nu)

    zeros = jax.tree.map(jnp.zeros_like, params)
    carry = [jax.tree.map(jnp.asarray, params), (jnp.zeros((), jnp.int32), zeros, zeros)]
    jx, jy = jnp.asarray(x), jnp.asarray(one_hot)

    def run_jax():
        carry[0], carry[1] = jax_step(carry[0], carry[1], jx, jy)
        jax.block_until_ready(carry[0])
    run_jax()
    jax_time = row("jax.jit(grad + Adam written in jax.numpy)", best_time(run_jax, 20))
    print(f"  ratio ftrans / jax, Adam step: {times['adam'] / jax_time:.2f}")


SERVER = r"""
import sys, time
start = time.perf_counter()
import numpy as np
import ftrans as ft
imported = time.perf_counter()
model = ft.load(sys.argv[1])
loaded = time.perf_counter()
model(np.load(sys.argv[2]))
called = time.perf_counter()
print(imported - start, loaded - imported, called - loaded)
"""


def export_and_load(rng, x):
    print("(b) export and load of the predictor (the weights are its constants)")
    params = init(rng)
    logits, _ = make_loss(fnp)

    def predict(x):
        return logits(params, x)

    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "model")
        start = time.perf_counter()
        ft.export(predict, x, path=path)
        row("ft.export (trace, optimize, write text + .npz + manifest)", time.perf_counter() - start)
        row("ft.load in this process", best_time(lambda: ft.load(path), 1, repeat=5))
        np.save(os.path.join(directory, "x.npy"), x)
        env = {**os.environ, "PYTHONPATH": os.path.dirname(os.path.dirname(os.path.abspath(ft.__file__)))}
        best = None
        for _ in range(3):
            out = subprocess.run([sys.executable, "-c", SERVER, path, os.path.join(directory, "x.npy")],
                                 capture_output=True, text=True, env=env, check=True).stdout.split()
            times = [float(t) for t in out]
            best = times if best is None or sum(times) < sum(best) else best
        row("fresh process: import numpy + ftrans", best[0])
        row("fresh process: ft.load", best[1])
        row("fresh process: first call (generates and compiles the code)", best[2])
        loaded = ft.jit(ft.load(path))
        original = ft.jit(predict)
        loaded(x), original(x)
        t_loaded = row("ft.jit(loaded)(x), cached", best_time(lambda: loaded(x), 50))
        t_original = row("ft.jit(original)(x), cached", best_time(lambda: original(x), 50))
        np.testing.assert_allclose(loaded(x), original(x), rtol=1e-6)
        print(f"  ratio loaded / original, jitted call: {t_loaded / t_original:.2f}")


def main():
    print(f"ftrans {ft.__version__}, NumPy {np.__version__}"
          + (f", JAX {jax.__version__}" if jax is not None else ", no JAX")
          + "; BLAS and XLA on one thread; a shared, possibly loaded machine")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(BATCH, SIZES[0])).astype(np.float32)
    one_hot = np.eye(SIZES[-1], dtype=np.float32)[rng.integers(0, SIZES[-1], size=BATCH)]
    training_steps(rng, x, one_hot)
    export_and_load(rng, x)


if __name__ == "__main__":
    main()
