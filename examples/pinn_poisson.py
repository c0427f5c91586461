"""A physics-informed network for the Poisson equation, trained with ft.jit(ft.grad(loss)).

    -Laplacian u = f  on the unit square,  u = 0 on its boundary,
    f(x, y) = 2 pi^2 sin(pi x) sin(pi y),  whose solution is u*(x, y) = sin(pi x) sin(pi y).

The network N (a small tanh MLP) enters as u(p) = x (1 - x) y (1 - y) N(p), which is 0
on the boundary, so the loss is the mean squared PDE residual (Laplacian u + f)^2 at
collocation points. ft.laplacian computes the Laplacian of u at each point by
collapsed Taylor mode (one 2-jet per input direction, their second-order
coefficients summed as they propagate: ft.make_jaxpr shows the program), ft.vmap
maps it over the points, and ft.grad differentiates the loss with respect to the
network's weights through all of it. Adam, written out below, takes the steps.
Each epoch prints the mean residual and the error against u* on a finer grid.

Run: python examples/pinn_poisson.py
"""
import numpy as np

import ftrans as ft
import ftrans.numpy as fnp

PI = np.pi


def init(key, sizes=(2, 16, 16, 1)):
    """Normal weights of variance 1/fan_in (ft.nn.initializers, as jax.nn's; W is (out, in), applied
    as W @ h) and zero biases."""
    weights = ft.nn.initializers.variance_scaling(1.0, "fan_in", "normal", in_axis=-1, out_axis=-2)
    return [(weights(k, (n, m)), np.zeros(n))
            for k, m, n in zip(ft.random.split(key, len(sizes) - 1), sizes[:-1], sizes[1:])]


def network(params, p):
    h = p
    for W, b in params[:-1]:
        h = fnp.tanh(W @ h + b)
    W, b = params[-1]
    return (W @ h + b)[0]


def u(params, p):
    """The trial solution at one point p = (x, y): zero on the boundary by construction."""
    x, y = p[0], p[1]
    return x * (1 - x) * y * (1 - y) * network(params, p)


def source(points):
    return 2 * PI ** 2 * fnp.sin(PI * points[:, 0]) * fnp.sin(PI * points[:, 1])


def exact(points):
    return np.sin(PI * points[:, 0]) * np.sin(PI * points[:, 1])


laplacian_u = ft.vmap(ft.laplacian(u, argnums=1), in_axes=(None, 0))  # at every point of a batch


def residual(params, points):
    return laplacian_u(params, points) + source(points)


def loss(params, points):
    return fnp.mean(residual(params, points) ** 2)


def grid(n, interior=True):
    ticks = (np.arange(n) + 0.5) / n if interior else np.linspace(0, 1, n)
    x, y = np.meshgrid(ticks, ticks)
    return np.stack([x.ravel(), y.ravel()], axis=1)


def adam(grad_loss, params, points, steps, state, lr=1e-2, b1=0.9, b2=0.999, eps=1e-8):
    tree_map = ft.tree_util.tree_map
    m, v, t = state
    for _ in range(steps):
        g = grad_loss(params, points)
        t += 1
        m = tree_map(lambda m, g: b1 * m + (1 - b1) * g, m, g)
        v = tree_map(lambda v, g: b2 * v + (1 - b2) * g * g, v, g)
        params = tree_map(lambda p, m, v: p - lr * (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + eps),
                          params, m, v)
    return params, (m, v, t)


def main(epochs=10, steps_per_epoch=100):
    params = init(ft.random.PRNGKey(0))
    points, test_points = grid(12), grid(33, interior=False)
    grad_loss = ft.jit(ft.grad(loss))
    mean_residual = ft.jit(lambda params, points: fnp.mean(fnp.abs(residual(params, points))))
    values = ft.jit(ft.vmap(u, in_axes=(None, 0)))
    zeros = ft.tree_util.tree_map(np.zeros_like, params)
    state = (zeros, zeros, 0)
    print(f"PINN for -Laplacian u = f on the unit square: {len(points)} collocation points, "
          f"error on a {len(test_points)}-point grid")
    first = mean_residual(params, points)
    print(f"epoch  0: mean |residual| {first:9.4f}")
    for epoch in range(1, epochs + 1):
        params, state = adam(grad_loss, params, points, steps_per_epoch, state)
        error = np.max(np.abs(values(params, test_points) - exact(test_points)))
        print(f"epoch {epoch:2d}: mean |residual| {mean_residual(params, points):9.4f}   "
              f"max |u - u*| {error:.4f}")
    last = mean_residual(params, points)
    assert last < first / 20, (first, last)
    assert error < 0.01, error  # u* is at most 1
    # the Laplacian ft.laplacian computes is the trace of the Hessian
    p = test_points[len(test_points) // 3]
    np.testing.assert_allclose(ft.laplacian(u, argnums=1)(params, p),
                               np.trace(ft.hessian(u, argnums=1)(params, p)), rtol=1e-9, atol=1e-9)


if __name__ == "__main__":
    main()
