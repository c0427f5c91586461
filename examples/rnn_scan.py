"""Train a small recurrent network with ft.jit(ft.value_and_grad(loss)) of a ft.lax.scan.

The task: read a noisy sine wave one value at a time and predict the next
value. The recurrence h = tanh(h W + x U + b) is one `scan` (traced once,
whatever the sequence length; jit makes it a Python loop around the body's
generated code), and its gradient is a reversed `scan` of the transposed
body. The trained network must predict three times better than repeating
the last value seen; the gradient is checked against finite differences first.

Run: python examples/rnn_scan.py
"""
import numpy as np

import ftrans as ft
import ftrans.numpy as fnp

HIDDEN = 16


def sequences(key, count, length):
    """`count` noisy sine waves of `length` + 1 steps, of random phase and frequency, drawn from `key`."""
    key_phase, key_frequency, key_noise = ft.random.split(key, 3)
    t = np.arange(length + 1)
    phase = ft.random.uniform(key_phase, (count, 1), minval=0, maxval=2 * np.pi)
    frequency = ft.random.uniform(key_frequency, (count, 1), minval=0.1, maxval=0.3)
    waves = np.asarray(np.sin(frequency * t + phase) + 0.02 * ft.random.normal(key_noise, (count, length + 1)))
    return waves[:, :-1].T[..., None], waves[:, 1:].T  # inputs (time, batch, 1), targets (time, batch)


def init(key):
    """Normal weights of variance scale / fan_in (ft.nn.initializers, as jax.nn's: W's scale 0.25 keeps
    the recurrence contracting at first), a read-out V of variance 1 / HIDDEN, zero biases."""
    key_W, key_U, key_V = ft.random.split(key, 3)
    return {"W": ft.nn.initializers.variance_scaling(0.25, "fan_in", "normal")(key_W, (HIDDEN, HIDDEN)),
            "U": ft.nn.initializers.variance_scaling(1.0, "fan_in", "normal")(key_U, (1, HIDDEN)),
            "b": np.zeros(HIDDEN), "V": ft.random.normal(key_V, (HIDDEN,)) / np.sqrt(HIDDEN), "c": np.zeros(())}


def predictions(params, xs):
    """One prediction per step: a linear read-out of the state after each input."""
    def step(h, x):
        h = fnp.tanh(h @ params["W"] + x @ params["U"] + params["b"])
        return h, h @ params["V"] + params["c"]
    h0 = fnp.zeros((xs.shape[1], HIDDEN))
    return ft.lax.scan(step, h0, xs)[1]


def loss(params, xs, targets):
    return fnp.mean((predictions(params, xs) - targets) ** 2)


def main(epochs=15, steps_per_epoch=25, learning_rate=0.1):
    key_init, key_check, key_test, key_train = ft.random.split(ft.random.PRNGKey(0), 4)
    params = init(key_init)
    xs, targets = sequences(key_check, 32, 40)
    ft.check_grads(loss, (params, xs[:5], targets[:5]), order=1, modes=("rev",))
    step = ft.jit(ft.value_and_grad(loss))
    test_xs, test_targets = sequences(key_test, 64, 40)
    persistence = float(np.mean((test_xs[..., 0] - test_targets) ** 2))  # predict the last value seen
    print(f"predicting the last value seen: test loss {persistence:.4f}")
    for epoch in range(epochs):
        total = 0.0
        for index in range(steps_per_epoch):  # a fresh batch of waves each step
            xs, targets = sequences(ft.random.fold_in(key_train, epoch * steps_per_epoch + index), 32, 40)
            value, grads = step(params, xs, targets)
            params = ft.tree_util.tree_map(lambda p, g: p - learning_rate * g, params, grads)
            total += float(value)
        test = float(ft.jit(loss)(params, test_xs, test_targets))
        print(f"epoch {epoch + 1:2d}  train loss {total / steps_per_epoch:.4f}  test loss {test:.4f}")
    assert test < persistence / 3, f"test loss {test:.4f} is not below a third of {persistence:.4f}"
    print(f"traces of the training step: {step.trace_count}")


if __name__ == "__main__":
    main()
