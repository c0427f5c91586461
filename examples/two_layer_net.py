"""The textbook two-layer network, x -> h = tanh(W x + b) -> y = V h + a, with the squared loss
L = 1/2 |y - t|^2 (averaged over a batch), drawn, checked and trained.

The network is an `ft.nn.Module` holding two `ft.nn.Linear` layers (with a batch of row
vectors, W x is x @ W). Its forward pass and its backward pass are drawn with `ft.draw`:
the gradient's picture shows the forward equations in blue, the backward (transposed) ones
in red and the residuals that cross from one to the other (h, kept for tanh's derivative
1 - h^2, among them). Written as SVG when Graphviz's `dot` is installed, DOT text otherwise.

Checks (each printed; the script exits non-zero when one fails):
  - ft.grad equals backpropagation written out by hand,
        dy = (y - t) / N,  dV = h^T dy,  da = sum of dy,
        dh = (dy V^T) * (1 - h^2),  dW = x^T dh,  db = sum of dh;
  - and finite differences (ft.check_grads, both modes, to second order);
  - the gradient's picture has forward and backward parts and marked residuals;
  - training with ft.nn + ft.optim (Adam, one jitted step) cuts the loss by a factor of 20.

Run: python examples/two_layer_net.py
"""
import pathlib
import re
import shutil
import tempfile

import numpy as np

import ftrans as ft
import ftrans.numpy as fnp
import ftrans.optim as optim
from ftrans import nn


class TwoLayerNet(nn.Module):
    hidden: nn.Linear   # W, b
    output: nn.Linear   # V, a

    def __init__(self, n_in, n_hidden, n_out, *, key):
        key_hidden, key_output = ft.random.split(key)
        self.hidden = nn.Linear(n_in, n_hidden, key=key_hidden)
        self.output = nn.Linear(n_hidden, n_out, key=key_output)

    def __call__(self, x):
        return self.output(fnp.tanh(self.hidden(x)))


def squared_loss(W, b, V, a, x, t):
    """The textbook formula, each parameter an argument (so the picture names them)."""
    h = fnp.tanh(x @ W + b)
    y = h @ V + a
    return 0.5 * fnp.mean(fnp.sum((y - t) ** 2, axis=1))


def loss(model, x, t):
    return 0.5 * fnp.mean(fnp.sum((model(x) - t) ** 2, axis=1))


def backprop_by_hand(model, x, t):
    """The gradient of `loss`, one layer at a time from the output back, in NumPy."""
    W, b = np.asarray(model.hidden.weight), np.asarray(model.hidden.bias)
    V, a = np.asarray(model.output.weight), np.asarray(model.output.bias)
    h = np.tanh(x @ W + b)
    y = h @ V + a
    dy = (y - t) / len(x)
    dh = (dy @ V.T) * (1 - h ** 2)
    return {"W": x.T @ dh, "b": dh.sum(axis=0), "V": h.T @ dy, "a": dy.sum(axis=0)}


def check(what, ok):
    print(f"  {'ok  ' if ok else 'FAIL'} {what}")
    if not ok:
        raise AssertionError(what)  # not `assert`: python -O would skip it


def write(graph, directory, name):
    """`graph` as name.svg if Graphviz is there, else as name.dot; returns the path."""
    if shutil.which("dot"):
        return graph.render(directory / f"{name}.svg")
    path = directory / f"{name}.dot"
    path.write_text(graph.source)
    return path


def make_data(key, n):
    """A smooth target in the plane: t = (sin(2 x1) cos(x2), x1 x2 / 2), at n points drawn from `key`."""
    x = np.asarray(ft.random.uniform(key, (n, 2), minval=-1.5, maxval=1.5))
    t = np.stack([np.sin(2 * x[:, 0]) * np.cos(x[:, 1]), 0.5 * x[:, 0] * x[:, 1]], axis=1)
    return x, t


def main(steps=400, hidden=16, samples=256, learning_rate=0.03, out_dir=None):
    key_data, key_model = ft.random.split(ft.random.PRNGKey(0))
    x, t = make_data(key_data, samples)
    model = TwoLayerNet(2, hidden, 2, key=key_model)
    print(nn.summary(model))

    print("gradients")
    grads = ft.grad(loss)(model, x, t)
    by_hand = backprop_by_hand(model, x, t)
    ours = {"W": grads.hidden.weight, "b": grads.hidden.bias, "V": grads.output.weight, "a": grads.output.bias}
    worst = max(float(np.max(np.abs(ours[k] - by_hand[k]))) for k in ours)
    check(f"ft.grad equals backprop by hand for W, b, V, a (largest difference {worst:.1e})", worst < 1e-12)
    ft.check_grads(loss, (model, x, t), order=2, modes=("fwd", "rev"))
    check("ft.grad and ft.jvp match finite differences (check_grads, order 2)", True)  # it raises otherwise

    print("pictures")
    directory = pathlib.Path(out_dir or tempfile.mkdtemp(prefix="two_layer_net_"))
    directory.mkdir(parents=True, exist_ok=True)
    params = (model.hidden.weight, model.hidden.bias, model.output.weight, model.output.bias)
    forward = ft.draw(squared_loss, *params, x, t)
    backward = ft.draw(ft.grad(squared_loss, argnums=(0, 1, 2, 3)), *params, x, t, optimize=True)
    check("the forward picture has inputs W, b, V, a, x, t and a tanh",
          all(f'[label="{name}"' in forward.source for name in "WbVaxt") and '[label="tanh"' in forward.source)
    check("the backward picture has forward and backward parts, residuals marked",
          "blue: forward" in backward.source and backward.source.count("residual") >= 2)
    tanh_node = re.search(r'^\s*(\w+) \[label="tanh"', backward.source, re.MULTILINE).group(1)
    check("h = tanh(W x + b) is a residual: the backward pass reads it for 1 - h^2",
          re.search(rf'^\s*{tanh_node} -> \w+ \[label="[^"]*residual', backward.source, re.MULTILINE) is not None)
    for name, graph in (("forward", forward), ("forward_and_backward", backward)):
        print(f"  {name:21s} {graph.num_nodes:3d} nodes {graph.num_edges:3d} edges -> {write(graph, directory, name)}")

    print(f"training: Adam({learning_rate}), {steps} full-batch steps of one jitted function")
    optimizer = optim.adam(learning_rate)
    state = optimizer.init(model)

    @ft.jit
    def step(model, state, x, t):
        value, grads = ft.value_and_grad(loss)(model, x, t)
        updates, state = optimizer.update(grads, state, model)
        return optim.apply_updates(model, updates), state, value

    first = float(loss(model, x, t))
    for i in range(steps):
        model, state, value = step(model, state, x, t)
        if (i + 1) % max(1, steps // 4) == 0:
            print(f"  step {i + 1:4d}  loss {float(value):.5f}")
    last = float(loss(model, x, t))
    check(f"the loss fell by a factor of {first / last:.0f} (from {first:.4f} to {last:.5f}), at least 20",
          first / last >= 20)
    check(f"the step was traced once ({step.trace_count})", step.trace_count == 1)
    check("the trained model is still a TwoLayerNet of the same shapes",
          type(model) is TwoLayerNet and model.hidden.weight.shape == (2, hidden))


if __name__ == "__main__":
    main()
