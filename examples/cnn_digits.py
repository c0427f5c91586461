"""A small convolutional network on 8x8 digit images, built from ft.nn modules and trained
with ft.optim.

    conv 3x3, 1 -> 16, relu, 2x2 max pool      (8x8 -> 4x4)
    conv 3x3, 16 -> 32, relu, 2x2 max pool     (4x4 -> 2x2)
    linear 128 -> 10, softmax cross-entropy

The convolutions are `ft.nn.Conv2d` (through `lax.conv_general_dilated`, channels last), the
pooling is `lax.reduce_window` with `lax.max`. On scikit-learn's bundled digits when
scikit-learn is installed (to at least 97% test accuracy), otherwise on a synthetic set of 10
noisy, randomly shifted prototype images of the same size (made here, reproducibly). One
jitted function is the whole training step (forward, backward, Adam with a cosine-decayed
learning rate); a progress bar per
epoch comes from tqdm when it is installed, a plain line per epoch otherwise.

Run: python examples/cnn_digits.py
"""
import os

for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    # before NumPy loads its BLAS: the matrices here are small (at most 512 x 144 x 32), where
    # several BLAS threads cost more than they give, many times more on a shared 2-core machine
    os.environ.setdefault(_variable, "1")

import time  # noqa: E402

import numpy as np  # noqa: E402

import ftrans as ft  # noqa: E402
import ftrans.numpy as fnp  # noqa: E402
import ftrans.optim as optim  # noqa: E402
from ftrans import lax, nn  # noqa: E402

SKLEARN_DIGITS = "scikit-learn digits"


def load_data(key):
    """(train_x, train_y, test_x, test_y, source): images (N, 8, 8, 1) in [0, 1], labels 0..9, as
    NumPy arrays; `key` (an ft.random key) draws the synthetic set and the train/test split."""
    key_prototypes, key_labels, key_shifts, key_flips, key_noise, key_order = ft.random.split(key, 6)
    try:
        from sklearn.datasets import load_digits
        digits = load_digits()
        x, y, source = digits.images / 16.0, digits.target, SKLEARN_DIGITS
    except ImportError:
        prototypes = np.asarray(ft.random.bernoulli(key_prototypes, 0.4, (10, 8, 8))).astype(float)
        y = np.asarray(ft.random.randint(key_labels, (1800,), 0, 10))
        # up to one pixel each way: where convolutions help
        shifts = np.asarray(ft.random.randint(key_shifts, (1800, 2), -1, 2))
        x = np.stack([np.roll(prototypes[label], tuple(shift), axis=(0, 1)) for label, shift in zip(y, shifts)])
        flips = np.asarray(ft.random.bernoulli(key_flips, 0.1, x.shape))
        x = np.abs(x - flips) + 0.1 * np.asarray(ft.random.normal(key_noise, x.shape))
        source = "synthetic digits (scikit-learn is not installed)"
    x = x[..., None]  # one channel, channels last
    order = np.asarray(ft.random.permutation(key_order, len(y)))
    x, y = x[order], y[order]
    split = int(0.8 * len(y))
    return x[:split], y[:split], x[split:], y[split:], source


def max_pool(x):
    """2x2 max pooling with stride 2 over the spatial axes of (N, H, W, C)."""
    return lax.reduce_window(x, -np.inf, lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")


class CNN(nn.Module):
    conv1: nn.Conv2d
    conv2: nn.Conv2d
    head: nn.Linear

    def __init__(self, *, key):
        k1, k2, k3 = ft.random.split(key, 3)
        self.conv1 = nn.Conv2d(1, 16, 3, key=k1)
        self.conv2 = nn.Conv2d(16, 32, 3, key=k2)
        self.head = nn.Linear(32 * 2 * 2, 10, key=k3)

    def __call__(self, x):
        x = max_pool(nn.relu(self.conv1(x)))
        x = max_pool(nn.relu(self.conv2(x)))
        return self.head(fnp.reshape(x, (x.shape[0], -1)))


def loss(model, x, labels):
    """Mean cross-entropy of the softmax of the logits."""
    log_p = nn.log_softmax(model(x))
    return -fnp.mean(fnp.sum(nn.one_hot(labels, 10) * log_p, axis=1))


def batches_with_progress(starts, description):
    """The batch offsets of one epoch, through a tqdm bar when tqdm is installed."""
    try:
        from tqdm import tqdm
    except ImportError:
        return starts, None
    bar = tqdm(starts, desc=description, unit="batch", leave=False)
    return bar, bar


def check(what, ok):
    print(f"  {'ok  ' if ok else 'FAIL'} {what}")
    if not ok:
        raise AssertionError(what)  # not `assert`: python -O would skip it


def main(epochs=15, batch=32, learning_rate=3e-3, min_accuracy=None):
    """Train for `epochs`; require `min_accuracy` on the test set (by default 97% on
    scikit-learn's digits and 90% on the synthetic ones)."""
    key_data, key = ft.random.split(ft.random.PRNGKey(0))
    train_x, train_y, test_x, test_y, source = load_data(key_data)
    if min_accuracy is None:
        min_accuracy = 0.97 if source == SKLEARN_DIGITS else 0.90
    print(f"data: {source}, {len(train_y)} train / {len(test_y)} test images of 8x8")
    model = CNN(key=key)
    print(nn.summary(model))
    starts = range(0, len(train_y) - batch + 1, batch)  # whole batches only: one shape, one trace
    optimizer = optim.adam(optim.cosine_decay_schedule(learning_rate, epochs * len(starts)))
    state = optimizer.init(model)

    @ft.jit
    def step(model, state, x, labels):
        value, grads = ft.value_and_grad(loss)(model, x, labels)
        updates, state = optimizer.update(grads, state, model)
        return optim.apply_updates(model, updates), state, value

    predict = ft.jit(lambda model, x: fnp.argmax(model(x), axis=1))
    losses, seconds = [], []
    for epoch in range(epochs):
        began = time.perf_counter()
        order = np.asarray(ft.random.permutation(ft.random.fold_in(key, epoch), len(train_y)))
        total = 0.0
        progress, bar = batches_with_progress(starts, f"epoch {epoch + 1}/{epochs}")
        for start in progress:
            idx = order[start:start + batch]
            model, state, value = step(model, state, train_x[idx], train_y[idx])
            total += float(value)
            if bar is not None:
                bar.set_postfix(loss=f"{float(value):.3f}")
        losses.append(total / len(starts))
        accuracy = float((predict(model, test_x) == test_y).mean())
        seconds.append(time.perf_counter() - began)
        print(f"epoch {epoch + 1:2d}/{epochs}  loss {losses[-1]:.4f}  test accuracy {accuracy:.3f}  "
              f"({seconds[-1]:.2f} s)")
    print(f"{np.mean(seconds[1:] or seconds):.2f} s per epoch after the first (which traces and compiles)")
    check(f"test accuracy {accuracy:.3f} >= {min_accuracy:.2f}", accuracy >= min_accuracy)
    check(f"the training loss fell ({losses[0]:.3f} in epoch 1, {losses[-1]:.3f} in epoch {epochs})",
          epochs == 1 or losses[-1] < losses[0])
    check(f"the training step was traced once ({step.trace_count})", step.trace_count == 1)


if __name__ == "__main__":
    main()
