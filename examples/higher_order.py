"""Higher-order derivatives: nest grad to any depth, and Hessian-vector products.

1. d^n/dt^n of 0.3 sin(t) t**10 for n = 1..8 at t = 0.9, by nesting ft.grad,
   checked against the same derivatives computed exactly with the Leibniz rule.
2. A Hessian-vector product of a small network's loss, as jvp of grad (no
   Hessian is formed), checked against the full ft.hessian.

Run: python examples/higher_order.py
"""
from math import comb, factorial

import numpy as np

import ftrans as ft
import ftrans.numpy as fnp


def f(t):
    return 0.3 * fnp.sin(t) * t ** 10


def leibniz_derivative(n, t):
    """d^n/dt^n of 0.3 sin(t) t^10 = 0.3 sum_k C(n,k) sin^(k)(t) (t^10)^(n-k)."""
    def sin_derivative(k):
        return [np.sin, np.cos, lambda x: -np.sin(x), lambda x: -np.cos(x)][k % 4](t)

    def power_derivative(m):
        return factorial(10) // factorial(10 - m) * t ** (10 - m) if m <= 10 else 0.0
    return 0.3 * sum(comb(n, k) * sin_derivative(k) * power_derivative(n - k) for k in range(n + 1))


def loss(params, x, y):
    W1, b1, W2, b2 = params
    hidden = fnp.tanh(x @ W1 + b1)
    prediction = hidden @ W2 + b2
    return fnp.mean((prediction - y) ** 2)


def main():
    t = 0.9
    print("n   ftrans d^n f/dt^n        exact (Leibniz)        rel. error")
    derivative = f
    for n in range(1, 9):
        derivative = ft.grad(derivative)
        value, exact = float(derivative(t)), leibniz_derivative(n, t)
        error = abs(value - exact) / abs(exact)
        print(f"{n}   {value:22.12e}  {exact:22.12e}  {error:9.2e}")
        assert error < 1e-9, f"order {n} disagrees with the closed form"

    key_params, key_x, key_y, key_v = ft.random.split(ft.random.PRNGKey(0), 4)
    sizes = [(3, 4), (4,), (4, 1), (1,)]
    params = [ft.random.normal(k, s) * 0.5 for k, s in zip(ft.random.split(key_params, len(sizes)), sizes)]
    x, y = ft.random.normal(key_x, (8, 3)), ft.random.normal(key_y, (8, 1))

    def flat_loss(flat):  # the parameters as one vector, so the Hessian is one matrix
        pieces, start = [], 0
        for s in sizes:
            size = int(np.prod(s))
            pieces.append(fnp.reshape(flat[start:start + size], s))
            start += size
        return loss(pieces, x, y)

    flat = np.concatenate([p.ravel() for p in params])
    v = ft.random.normal(key_v, flat.shape)
    _, hvp = ft.jvp(ft.grad(flat_loss), (flat,), (v,))  # forward-over-reverse: H v
    H = ft.hessian(flat_loss)(flat)
    print(f"\nHessian-vector product of a {flat.size}-parameter tanh network (forward-over-reverse)")
    print("  |H v - hessian @ v| =", np.abs(hvp - H @ v).max())
    assert np.allclose(hvp, H @ v, rtol=1e-10, atol=1e-12)
    assert np.allclose(H, H.T, atol=1e-12), "a Hessian is symmetric"


if __name__ == "__main__":
    main()
