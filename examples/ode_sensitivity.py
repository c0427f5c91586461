"""Sensitivities of an adaptive-step ODE solution by reverse mode through ft.lax.while_loop.

The Lotka-Volterra equations y' = (a y0 - b y0 y1, d y0 y1 - c y1) are integrated
from t = 0 to T by an embedded Heun-Euler pair whose step size adapts to a
tolerance: a step whose error estimate exceeds the tolerance is rejected and
retried smaller. The step loop is one `while_loop`; how many iterations it runs
depends on the tolerance and on the parameters, and is known only when it stops.
JAX refuses reverse mode through such a loop; ftrans keeps the loop's carries
(all of them, or `checkpoints=k` of them) and runs the transposed body backwards.

The gradient of a loss of y(T) with respect to (a, b, c, d) is checked against
central finite differences, under jit too, and with checkpoints.

Run: python examples/ode_sensitivity.py
"""
import numpy as np

import ftrans as ft
import ftrans.numpy as fnp

T = 4.0
Y0 = np.array([1.0, 0.5])
TARGET = np.array([0.6, 1.2])


def rhs(y, theta):
    a, b, c, d = theta[0], theta[1], theta[2], theta[3]
    return fnp.stack([a * y[0] - b * y[0] * y[1], d * y[0] * y[1] - c * y[1]])


def solve(theta, tol, checkpoints=None):
    """(y(T), the number of attempted steps): Heun's method, Euler's as the error estimate."""
    def keep_going(state):
        t, _, _, _ = state
        return t < T

    def step(state):
        t, y, h, count = state
        h = fnp.minimum(h, T - t)  # land on T exactly
        k1 = rhs(y, theta)
        k2 = rhs(y + h * k1, theta)
        y_new = y + 0.5 * h * (k1 + k2)
        error = fnp.max(fnp.abs(0.5 * h * (k2 - k1))) + 1e-300
        accept = error <= tol
        factor = fnp.minimum(fnp.maximum(0.9 * fnp.sqrt(tol / error), 0.2), 5.0)
        return (fnp.where(accept, t + h, t), fnp.where(accept, y_new, y), h * factor, count + 1)

    _, y, _, count = ft.lax.while_loop(keep_going, step, (0.0, Y0 * theta[4], 0.01, 0), checkpoints=checkpoints)
    return y, count


def loss(theta, tol, checkpoints=None):
    y, _ = solve(theta, tol, checkpoints)
    return fnp.sum((y - TARGET) ** 2)


def main():
    theta = np.array([1.1, 0.9, 0.8, 1.0, 1.0])  # a, b, c, d, and a scale of the initial state
    for tol in (1e-3, 1e-5):
        print(f"tol={tol:g}: {int(solve(theta, tol)[1])} steps")
    tol = 1e-5
    grad = ft.grad(loss)(theta, tol)  # eagerly: the loop runs as Python, its carries kept
    eps = 1e-6
    jitted_loss = ft.jit(loss, static_argnums=1)
    fd = np.array([(jitted_loss(theta + eps * e, tol) - jitted_loss(theta - eps * e, tol)) / (2 * eps)
                   for e in np.eye(5)])
    print("reverse mode:       ", np.round(grad, 6))
    print("finite differences: ", np.round(fd, 6))
    np.testing.assert_allclose(grad, fd, rtol=1e-4, atol=1e-6)
    jitted = ft.jit(ft.grad(loss), static_argnums=(1, 2))
    np.testing.assert_allclose(jitted(theta, tol), grad, rtol=1e-12)
    np.testing.assert_allclose(jitted(theta, tol, 20), grad, rtol=1e-12)  # at most 20 carries kept
    print("jit(grad) and checkpoints=20 agree with the eager gradient")


if __name__ == "__main__":
    main()
