"""Train an MLP classifier with ft.jit(ft.value_and_grad(loss)).

On scikit-learn's bundled 8x8 digits when scikit-learn is installed; otherwise
on a synthetic set of 10 noisy prototype images of the same size (made here,
reproducibly). Trains to >= 95% test accuracy, printing a line per epoch.

Run: python examples/mlp_digits.py        (add --gpu to train on CuPy arrays:
the jitted step then follows its inputs onto the GPU)
"""
import sys

import numpy as np

import ftrans as ft
import ftrans.numpy as fnp


def load_data(key):
    """(train_x, train_y, test_x, test_y, source): 64 features in [0, 1], labels 0..9, as NumPy
    arrays; `key` (an ft.random key) draws the synthetic set and the train/test split."""
    key_prototypes, key_labels, key_flips, key_noise, key_order = ft.random.split(key, 5)
    try:
        from sklearn.datasets import load_digits
        digits = load_digits()
        x, y, source = digits.data / 16.0, digits.target, "scikit-learn digits"
    except ImportError:
        prototypes = np.asarray(ft.random.bernoulli(key_prototypes, 0.5, (10, 64)))
        y = np.asarray(ft.random.randint(key_labels, (1800,), 0, 10))
        flips = np.asarray(ft.random.bernoulli(key_flips, 0.2, (1800, 64)))  # each pixel flipped with probability 0.2
        x = (prototypes[y] ^ flips) + 0.1 * np.asarray(ft.random.normal(key_noise, (1800, 64)))
        source = "synthetic digits (scikit-learn is not installed)"
    order = np.asarray(ft.random.permutation(key_order, len(y)))
    x, y = x[order], y[order]
    split = int(0.8 * len(y))
    return x[:split], y[:split], x[split:], y[split:], source


def init(key, sizes=(64, 64, 10)):
    """LeCun-normal weights (variance 1/fan_in) and zero biases, drawn as jax.nn.initializers would."""
    keys = ft.random.split(key, len(sizes) - 1)
    weights = ft.nn.initializers.lecun_normal()
    return [(weights(k, (m, n)), np.zeros(n)) for k, m, n in zip(keys, sizes[:-1], sizes[1:])]


def logits(params, x):
    for W, b in params[:-1]:
        x = fnp.tanh(x @ W + b)
    W, b = params[-1]
    return x @ W + b


def loss(params, x, labels):
    """Cross-entropy of the softmax of the logits against the labels."""
    log_p = ft.nn.log_softmax(logits(params, x))
    return -fnp.mean(fnp.sum(ft.nn.one_hot(labels, 10) * log_p, axis=1))


def main(epochs=30, batch=64, learning_rate=0.3, device="cpu"):
    key_data, key = ft.random.split(ft.random.PRNGKey(0))
    train_x, train_y, test_x, test_y, source = load_data(key_data)
    print(f"data: {source}, {len(train_y)} train / {len(test_y)} test, on the {device.upper()}")
    params = ft.device_put(init(key), device)
    train_x, test_x, test_y = ft.device_put((train_x, test_x, test_y), device)
    step = ft.jit(ft.value_and_grad(loss))  # traced once (per batch shape), then cached
    accuracy_of = ft.jit(lambda params, x: fnp.argmax(logits(params, x), axis=1))
    for epoch in range(epochs):
        order = ft.random.permutation(ft.random.fold_in(key, epoch), len(train_y))  # a fresh order each epoch
        total = 0.0
        for start in range(0, len(order) - batch + 1, batch):
            idx = order[start:start + batch]
            value, grads = step(params, train_x[idx], train_y[idx])
            params = [(W - learning_rate * gW, b - learning_rate * gb) for (W, b), (gW, gb) in zip(params, grads)]
            total += float(value)
        accuracy = float((accuracy_of(params, test_x) == test_y).mean())
        print(f"epoch {epoch + 1:2d}  loss {total / (len(order) // batch):.4f}  test accuracy {accuracy:.3f}")
    assert accuracy >= 0.95, f"test accuracy {accuracy:.3f} < 0.95"
    print(f"traces of the training step: {step.trace_count}")


if __name__ == "__main__":
    main(device="gpu" if "--gpu" in sys.argv[1:] else "cpu")
