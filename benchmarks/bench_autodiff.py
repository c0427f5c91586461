"""Autodiff benchmarks (issue 3), measured in one run:

1. per-call time of grad(f)(x) for the scalar f(x) = sin(x) x^2 + exp(-x), against
   plain NumPy evaluation of f and, when installed, autograd and JAX without jit;
2. the cheap-gradient ratio time(grad of sum(gelu(x))) / time(sum(gelu(x))) at 10^6 elements;
3. equation counts of make_jaxpr of the n-th nested derivative of tanh and of
   0.3 sin(t) t**10, n = 1..8.

Run: python benchmarks/bench_autodiff.py
"""
import platform
import timeit

import numpy as np

import ftrans as ft
import ftrans.numpy as fnp


def best_time(fun, number, repeat=7):
    return min(timeit.repeat(fun, number=number, repeat=repeat)) / number


def scalar_grad_timings():
    x = 0.7
    f = lambda x: fnp.sin(x) * x ** 2 + fnp.exp(-x)
    numpy_f = lambda x: np.sin(x) * x ** 2 + np.exp(-x)
    rows = [("NumPy f(x)", best_time(lambda: numpy_f(x), 20000))]
    grad_f = ft.grad(f)
    rows.append(("ftrans grad(f)(x)", best_time(lambda: grad_f(x), 2000)))
    try:
        import autograd
        import autograd.numpy as anp
        autograd_f = autograd.grad(lambda x: anp.sin(x) * x ** 2 + anp.exp(-x))
        rows.append(("autograd grad(f)(x)", best_time(lambda: autograd_f(x), 2000)))
    except ImportError:
        pass
    try:
        import jax
        import jax.numpy as jnp
        jax.config.update("jax_enable_x64", True)
        jax_f = jax.grad(lambda x: jnp.sin(x) * x ** 2 + jnp.exp(-x))
        jax_f(x)
        rows.append(("JAX grad(f)(x), no jit", best_time(lambda: jax_f(x), 200)))
    except ImportError:
        pass
    return rows


def gelu(x):
    return 0.5 * x * (1.0 + fnp.tanh(0.7978845608028654 * (x + 0.044715 * x ** 3)))


def cheap_gradient_ratio(n=10 ** 6):
    x = np.random.default_rng(0).normal(size=n)
    forward = lambda: fnp.sum(gelu(x))
    gradient = ft.grad(lambda x: fnp.sum(gelu(x)))
    return best_time(forward, 3, 5), best_time(lambda: gradient(x), 3, 5)


def nested(f, n, derivative):
    for _ in range(n):
        f = derivative(f)
    return f


def equation_counts():
    tanh_grad = lambda f: ft.grad(f)
    power = lambda t: 0.3 * fnp.sin(t) * t ** 10
    rows = []
    for n in range(1, 9):
        tanh_count = len(ft.make_jaxpr(nested(fnp.tanh, n, tanh_grad))(0.5).eqns)
        power_count = len(ft.make_jaxpr(nested(power, n, tanh_grad))(0.5).eqns)
        rows.append((n, tanh_count, power_count))
    return rows


def main():
    print(f"Python {platform.python_version()}, NumPy {np.__version__}, {platform.machine()}")
    print("\n1. grad of a scalar function, per call")
    rows = scalar_grad_timings()
    autograd_time = dict(rows).get("autograd grad(f)(x)")
    ftrans_time = dict(rows)["ftrans grad(f)(x)"]
    for name, seconds in rows:
        print(f"   {name:26s} {seconds * 1e6:9.1f} us")
    if autograd_time:
        print(f"   ftrans / autograd = {ftrans_time / autograd_time:.2f}  (aim: <= 0.5)")

    forward, gradient = cheap_gradient_ratio()
    print(f"\n2. sum(gelu(x)) at 10^6 elements: forward {forward * 1e3:.1f} ms, grad {gradient * 1e3:.1f} ms, "
          f"ratio {gradient / forward:.2f}  (aim: <= 4)")

    print("\n3. equations in make_jaxpr of the n-th derivative (no optimization)")
    print("   n   tanh   0.3 sin(t) t^10")
    for n, tanh_count, power_count in equation_counts():
        print(f"   {n}  {tanh_count:6d}  {power_count:8d}")


if __name__ == "__main__":
    main()
