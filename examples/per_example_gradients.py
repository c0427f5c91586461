"""Per-example gradients with vmap(grad): one batched backward pass instead of a loop.

Per-example gradient norms are what differentially private SGD clips, and what
importance sampling and data debugging look at. `ft.grad` of the loss of one
example, vectorized over the batch with `ft.vmap`, gives all of them in one
pass; the parameters are shared (in_axes None), the examples are mapped.

The result is checked against a Python loop of `ft.grad` calls.

Run: python examples/per_example_gradients.py
"""
import numpy as np

import ftrans as ft
import ftrans.numpy as fnp


def init_params(key, sizes):
    """A list of (W, b) per layer, LeCun-normal weights so that tanh units start unsaturated."""
    keys = ft.random.split(key, len(sizes) - 1)
    weights = ft.nn.initializers.lecun_normal()
    return [(weights(k, (m, n)), np.zeros(n)) for k, m, n in zip(keys, sizes[:-1], sizes[1:])]


def predict(params, x):
    for W, b in params[:-1]:
        x = fnp.tanh(x @ W + b)
    W, b = params[-1]
    return x @ W + b


def loss(params, x, y):
    """Squared error of one example (x: features, y: targets)."""
    return fnp.sum((predict(params, x) - y) ** 2)


def global_norm(grads):
    """The norm of all of one example's gradient leaves together."""
    return np.sqrt(sum(np.sum(g ** 2) for g in ft.tree_util.tree_leaves(grads)))


def main():
    params_key, x_key, y_key = ft.random.split(ft.random.PRNGKey(0), 3)
    params = init_params(params_key, [8, 16, 16, 1])
    xs, ys = ft.random.normal(x_key, (64, 8)), ft.random.normal(y_key, (64, 1))

    per_example = ft.vmap(ft.grad(loss), in_axes=(None, 0, 0))(params, xs, ys)
    # every leaf gains a leading batch axis: W1 is (64, 8, 16), b1 is (64, 16), ...
    norms = np.sqrt(sum(np.sum(g.reshape(len(xs), -1) ** 2, axis=1)
                        for g in ft.tree_util.tree_leaves(per_example)))

    looped = [ft.grad(loss)(params, x, y) for x, y in zip(xs, ys)]
    for i, grads in enumerate(looped):
        for batched, single in zip(ft.tree_util.tree_leaves(per_example), ft.tree_util.tree_leaves(grads),
                                   strict=True):
            assert np.allclose(batched[i], single, rtol=1e-12, atol=1e-12)
    assert np.allclose(norms, [global_norm(g) for g in looped], rtol=1e-12)

    print(f"per-example gradients of a {[8, 16, 16, 1]} tanh MLP, batch of {len(xs)}")
    for i in range(5):
        print(f"  example {i}: loss {float(loss(params, xs[i], ys[i])):8.4f}   |grad| {norms[i]:8.4f}")
    print(f"  ... largest |grad| {norms.max():.4f} (example {norms.argmax()}), mean {norms.mean():.4f}")
    print("matches a loop of ft.grad calls: OK")


if __name__ == "__main__":
    main()
