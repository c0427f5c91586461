"""A fixed-point (deep equilibrium) layer trained with an implicit-function-theorem custom_vjp.

The layer's output is the fixed point z* = tanh(z* W + x U + b), found by iterating.
Differentiating through the iterations would store every one of them; the implicit
function theorem gives the gradient from z* alone: with f(params, z) = tanh(z W + x U + b),
the cotangent of the parameters is w f_params where w solves w = z*_bar + w f_z, itself a
fixed point (iterated in bwd). `ft.custom_vjp` tells reverse mode to use that rule.

The example checks the implicit gradient against differentiating the unrolled
iterations, trains the layer on a toy regression with ft.optim's adam, and checks
that the loss fell.

Run: python examples/implicit_layer.py
"""
from functools import partial

import numpy as np

import ftrans as ft
import ftrans.numpy as fnp


def iterate(step, z, iterations):
    for _ in range(iterations):
        z = step(z)
    return z


def cell(params, x, z):
    return fnp.tanh(z @ params["W"] + x @ params["U"] + params["b"])


@partial(ft.custom_vjp, nondiff_argnums=(3,))
def fixed_point_layer(params, x, z0, iterations):
    return iterate(lambda z: cell(params, x, z), z0, iterations)


def layer_fwd(params, x, z0, iterations):
    z_star = fixed_point_layer(params, x, z0, iterations)
    return z_star, (params, x, z_star)


def layer_bwd(iterations, residuals, z_bar):
    params, x, z_star = residuals
    _, vjp_inputs = ft.vjp(lambda p, x: cell(p, x, z_star), params, x)
    _, vjp_z = ft.vjp(lambda z: cell(params, x, z), z_star)
    w = iterate(lambda u: z_bar + vjp_z(u)[0], z_bar, iterations)  # w = z_bar (I - f_z)^-1
    params_bar, x_bar = vjp_inputs(w)
    return params_bar, x_bar, fnp.zeros_like(z_star)


fixed_point_layer.defvjp(layer_fwd, layer_bwd)


def predict(params, x, iterations):
    z = fixed_point_layer(params["layer"], x, fnp.zeros((x.shape[0], params["layer"]["W"].shape[0])), iterations)
    return z @ params["readout"]


def loss(params, x, y, iterations):
    return fnp.mean((predict(params, x, iterations) - y) ** 2)


def unrolled_loss(params, x, y, iterations):
    z = iterate(lambda z: cell(params["layer"], x, z), np.zeros((x.shape[0], params["layer"]["W"].shape[0])),
                iterations)
    return fnp.mean((z @ params["readout"] - y) ** 2)


def init(key, inputs, hidden):
    """Normal weights of variance scale / fan_in (ft.nn.initializers, as jax.nn's); W's scale 0.09
    (standard deviation 0.3 / sqrt(hidden)) makes the cell a contraction."""
    key_W, key_U, key_readout = ft.random.split(key, 3)
    fan_in_normal = ft.nn.initializers.variance_scaling(1.0, "fan_in", "normal")
    return {"layer": {"W": ft.nn.initializers.variance_scaling(0.09, "fan_in", "normal")(key_W, (hidden, hidden)),
                      "U": fan_in_normal(key_U, (inputs, hidden)),
                      "b": np.zeros(hidden)},
            "readout": fan_in_normal(key_readout, (hidden, 1))}


def main(steps=300, samples=128, hidden=16, iterations=30):
    key_x, key_init = ft.random.split(ft.random.PRNGKey(0))
    x = np.asarray(ft.random.uniform(key_x, (samples, 2), minval=-2, maxval=2))
    y = (np.sin(x[:, :1]) * np.cos(x[:, 1:]))
    params = init(key_init, 2, hidden)

    implicit = ft.grad(loss)(params, x, y, iterations)
    unrolled = ft.grad(unrolled_loss)(params, x, y, iterations)
    for got, want in zip(ft.tree_util.tree_flatten(implicit)[0], ft.tree_util.tree_flatten(unrolled)[0],
                         strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-9)
    print("the implicit gradient matches differentiating the unrolled iterations")

    optimizer = ft.optim.adam(1e-2)
    state = optimizer.init(params)

    @ft.jit
    def train_step(params, state, x, y):
        value, grads = ft.value_and_grad(loss)(params, x, y, iterations)
        updates, state = optimizer.update(grads, state, params)
        return ft.optim.apply_updates(params, updates), state, value

    first = float(loss(params, x, y, iterations))
    for step in range(steps):
        params, state, value = train_step(params, state, x, y)
        if step % max(steps // 5, 1) == 0:
            print(f"step {step:4d}: loss {float(value):.5f}")
    last = float(loss(params, x, y, iterations))
    print(f"loss {first:.5f} -> {last:.5f}")
    assert last < 0.5 * first, (first, last)
    z = fixed_point_layer(params["layer"], x, np.zeros((samples, hidden)), iterations)
    residual = np.max(np.abs(np.asarray(cell(params["layer"], x, z)) - z))
    print(f"the trained layer's fixed point holds to {residual:.1e}")
    assert residual < 1e-2  # 30 iterations of a contraction that training made slower


if __name__ == "__main__":
    main()
