"""Quickstart: write NumPy-style code against ftrans.numpy, run it, and read its jaxpr.

Run: python examples/quickstart.py
"""
import numpy as np

import ftrans as ft
import ftrans.numpy as fnp


def scaled_sum(a, b, c):
    return c * (a + b)


def shared_subexpression(x, y):
    return (x + y) + x * (x + y)


def cubic_minus_log(x):
    return x ** 3 - fnp.log(x)


def two_layer_net(params, x):
    W, b, V, a = params
    return V @ fnp.tanh(W @ x + b) + a


def main():
    # random numbers from keys, as jax.random: one key split into one per array drawn
    key_x, key_W, key_b, key_V, key_a = ft.random.split(ft.random.PRNGKey(0), 5)
    x3 = ft.random.uniform(key_x, (3,), minval=0.5, maxval=2.0)
    params = (ft.random.normal(key_W, (4, 3)), ft.random.normal(key_b, (4,)), ft.random.normal(key_V, (2, 4)),
              ft.random.normal(key_a, (2,)))

    examples = [
        ("c * (a + b)", scaled_sum, (np.float64(1.0), np.float64(2.0), np.float64(3.0))),
        ("(x + y) + x * (x + y)", shared_subexpression, (x3, 2 * x3)),
        ("x**3 - log(x)", cubic_minus_log, (x3,)),
        ("V tanh(W x + b) + a", two_layer_net, (params, x3)),
    ]
    for title, fun, args in examples:
        print(f"# {title}")
        print("value:", fun(*args))  # eager: plain NumPy arrays in, NumPy arrays out
        print(ft.make_jaxpr(fun)(*args))
        print()


if __name__ == "__main__":
    main()
