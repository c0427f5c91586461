"""GPU benchmarks of the CuPy backend (issue 6), measured in one run:

1. gelu (tanh form) on 10^8 float32: ftrans `jit(backend="cupy")` against a
   device-to-device copy of the same array (target: within 1.15x), against
   eager CuPy (target: at least 4x faster) and, when JAX with a GPU is
   importable, against jax.jit (target: within 1.1x);
2. grad of sum(gelu) at 10^8: the kernels the plan launches (target: at most
   2 fused kernels and a reduction), and time against jax.jit(jax.grad)
   (target: within 1.2x);
3. one SGD step of an MLP 784-512-512-10 at batch 1024 (value_and_grad and the
   update) against jax.jit (target: within 1.3x).

Run: python benchmarks/bench_gpu.py
Writes benchmarks/results/gpu_<gpu name>.txt; without a GPU it says so and exits.
"""
import pathlib
import re
import sys

import numpy as np

import ftrans as ft
import ftrans.numpy as fnp
from ftrans._device import _gpu_problem

N = 10 ** 8
RESULTS = pathlib.Path(__file__).parent / "results"


def gpu_time(fun, repeat=20, warmup=3):
    """Seconds per call, by CUDA events around `repeat` back-to-back calls:
    launches are asynchronous, so host overhead hides behind the GPU's work
    as it does in a real loop."""
    import cupy
    for _ in range(warmup):
        fun()
    start, end = cupy.cuda.Event(), cupy.cuda.Event()
    start.record()
    for _ in range(repeat):
        fun()
    end.record()
    end.synchronize()
    return cupy.cuda.get_elapsed_time(start, end) / 1e3 / repeat


def jax_gpu():
    """jax, when it is installed and sees a GPU; else None."""
    try:
        import jax
        return jax if jax.default_backend() == "gpu" else None
    except Exception:  # JAX without CUDA raises several kinds of errors on start
        return None


def gelu(x, np_=fnp):
    return 0.5 * x * (1.0 + np_.tanh(0.7978845608 * (x + 0.044715 * x ** 3)))


def kernel_counts(lowered_text):
    """(elementwise kernels, reduction kernels) in the host plan of `as_text()`."""
    plan = lowered_text.split("\n\n")[0]
    return len(re.findall(r"# elementwise ", plan)), len(re.findall(r"# reduce_\w+\[", plan))


def row(lines, label, seconds):
    note(lines, f"{label:<48} {seconds * 1e3:9.3f} ms")


def note(lines, text):
    print(text)
    lines.append(text)


def bench_gelu(lines, cupy, jax):
    x = cupy.random.standard_normal(N, dtype=cupy.float32)
    out = cupy.empty_like(x)
    copy = gpu_time(lambda: cupy.copyto(out, x))
    row(lines, "device-to-device copy, 10^8 float32", copy)
    fused = ft.jit(gelu, backend="cupy")
    ours = gpu_time(lambda: fused(x))
    row(lines, "ftrans jit(gelu), backend=cupy", ours)
    note(lines, f"  ftrans / copy = {ours / copy:.2f}x (target <= 1.15x)")
    eager = gpu_time(lambda: gelu(x, cupy))
    row(lines, "eager CuPy gelu", eager)
    note(lines, f"  eager CuPy / ftrans = {eager / ours:.2f}x (target >= 4x)")
    if jax is not None:
        jx = jax.device_put(x.get())
        jitted = jax.jit(lambda x: gelu(x, jax.numpy))
        theirs = gpu_time(lambda: jitted(jx).block_until_ready())
        row(lines, "jax.jit(gelu)", theirs)
        note(lines, f"  ftrans / jax = {ours / theirs:.2f}x (target <= 1.1x)")


def bench_grad(lines, cupy, jax):
    x = cupy.random.standard_normal(N, dtype=cupy.float32)
    grad = ft.jit(ft.grad(lambda x: fnp.sum(gelu(x))), backend="cupy")
    fused, reductions = kernel_counts(grad.lower(x).as_text())
    note(lines, f"grad of sum(gelu): {fused} fused kernels + {reductions} reductions (target <= 2 + 1)")
    ours = gpu_time(lambda: grad(x))
    row(lines, "ftrans jit(grad(sum(gelu))), backend=cupy", ours)
    if jax is not None:
        jx = jax.device_put(x.get())
        jitted = jax.jit(jax.grad(lambda x: jax.numpy.sum(gelu(x, jax.numpy))))
        theirs = gpu_time(lambda: jitted(jx).block_until_ready())
        row(lines, "jax.jit(jax.grad(sum(gelu)))", theirs)
        note(lines, f"  ftrans / jax = {ours / theirs:.2f}x (target <= 1.2x)")


def mlp_step(params, x, y, np_, value_and_grad, tree_map):
    def loss(params, x, y):
        for w, b in params[:-1]:
            x = np_.tanh(x @ w + b)
        w, b = params[-1]
        return np_.mean((x @ w + b - y) ** 2)
    value, grads = value_and_grad(loss)(params, x, y)
    return value, tree_map(lambda p, g: p - 0.01 * g, params, grads)


def bench_mlp(lines, cupy, jax):
    rng = np.random.default_rng(0)
    sizes = [784, 512, 512, 10]
    params = [(rng.normal(size=(m, n)).astype(np.float32) / np.sqrt(m), np.zeros(n, np.float32))
              for m, n in zip(sizes[:-1], sizes[1:])]
    x = rng.normal(size=(1024, 784)).astype(np.float32)
    y = rng.normal(size=(1024, 10)).astype(np.float32)
    step = ft.jit(lambda p, x, y: mlp_step(p, x, y, fnp, ft.value_and_grad, ft.tree_util.tree_map), backend="cupy")
    gpu_args = ft.device_put((params, x, y), device="gpu")
    ours = gpu_time(lambda: step(*gpu_args))
    row(lines, "ftrans MLP 784-512-512-10 step, batch 1024", ours)
    if jax is not None:
        jitted = jax.jit(lambda p, x, y: mlp_step(p, x, y, jax.numpy, jax.value_and_grad, jax.tree_util.tree_map))
        jax_args = jax.device_put((params, x, y))
        theirs = gpu_time(lambda: jax.block_until_ready(jitted(*jax_args)))
        row(lines, "jax.jit MLP step", theirs)
        note(lines, f"  ftrans / jax = {ours / theirs:.2f}x (target <= 1.3x)")


def main():
    problem = _gpu_problem()
    if problem is not None:
        print(f"bench_gpu: no GPU to measure on ({problem}); nothing to do.")
        return 0
    import cupy
    name = cupy.cuda.runtime.getDeviceProperties(0)["name"]
    name = name.decode() if isinstance(name, bytes) else name
    jax = jax_gpu()
    lines = []
    jax_version = jax.__version__ if jax else "not available on the GPU"
    note(lines, f"GPU: {name}; CuPy {cupy.__version__}; JAX: {jax_version}")
    for bench in (bench_gelu, bench_grad, bench_mlp):
        bench(lines, cupy, jax)
        cupy.get_default_memory_pool().free_all_blocks()
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"gpu_{re.sub(r'[^A-Za-z0-9]+', '_', name).strip('_')}.txt"
    path.write_text("\n".join(lines) + "\n")
    print(f"written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
