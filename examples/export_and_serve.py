"""Train a small model with ft.optim, export it, and serve it from a fresh process.

A two-hidden-layer MLP learns y = sin(3 x0) cos(2 x1) on [-1, 1]^2 with
ft.optim's adam under a warmup-cosine learning-rate schedule, its gradients
clipped by global norm, the whole step one ft.jit. The trained predictor
(one example in, one number out; the weights become the program's constants)
is written with ft.export; then a new Python process, which imports only
ftrans and NumPy and never sees this file, loads it with ft.load and predicts
the test set with ft.jit(ft.vmap(model)), and its input gradients with
ft.vmap(ft.grad(model)). This process compares both with the original.

Run: python examples/export_and_serve.py
"""
import os
import subprocess
import sys
import tempfile

import numpy as np

import ftrans as ft
import ftrans.numpy as fnp
import ftrans.optim as optim

SERVER = r"""
import sys
import numpy as np
import ftrans as ft

directory = sys.argv[1]
model = ft.load(f"{directory}/model")
x = np.load(f"{directory}/test_x.npy")
predictions = ft.jit(ft.vmap(model))(x)
input_gradients = ft.vmap(ft.grad(model))(x)
np.save(f"{directory}/predictions.npy", predictions)
np.save(f"{directory}/input_gradients.npy", input_gradients)
print(f"server: loaded {model.__name__} ({len(model.jaxpr.eqns)} equations, "
      f"{len(model.jaxpr.consts)} constants), predicted {len(predictions)} examples")
"""


def target(x):
    return np.sin(3 * x[:, 0]) * np.cos(2 * x[:, 1])


def init(key, sizes=(2, 32, 32, 1)):
    """LeCun-normal weights (variance 1/fan_in) and zero biases, as jax.nn.initializers draws them."""
    weights = ft.nn.initializers.lecun_normal()
    return [{"w": weights(k, (m, n)), "b": np.zeros(n)}
            for k, m, n in zip(ft.random.split(key, len(sizes) - 1), sizes[:-1], sizes[1:])]


def mlp(params, x):
    for layer in params[:-1]:
        x = fnp.tanh(x @ layer["w"] + layer["b"])
    return x @ params[-1]["w"] + params[-1]["b"]


def loss(params, x, y):
    return fnp.mean((mlp(params, x)[:, 0] - y) ** 2)


def train(steps, key):
    key_x, key_init = ft.random.split(key)
    train_x = np.asarray(ft.random.uniform(key_x, (256, 2), minval=-1, maxval=1))
    train_y = target(train_x)
    schedule = optim.warmup_cosine_decay_schedule(0.0, 0.02, warmup_steps=max(1, steps // 10), decay_steps=steps,
                                                  end_value=1e-4)
    optimizer = optim.chain(optim.clip_by_global_norm(1.0), optim.adam(schedule))
    params = init(key_init)
    state = optimizer.init(params)

    @ft.jit
    def step(params, state, x, y):
        value, grads = ft.value_and_grad(loss)(params, x, y)
        updates, state = optimizer.update(grads, state, params)
        return optim.apply_updates(params, updates), state, value

    first = float(loss(params, train_x, train_y))
    for _ in range(steps):
        params, state, value = step(params, state, train_x, train_y)
    last = float(loss(params, train_x, train_y))
    print(f"trained {steps} adam steps (warmup-cosine schedule, clipped by global norm): "
          f"training loss {first:.4f} -> {last:.4f}; the step was traced {step.trace_count} time(s)")
    assert step.trace_count == 1, "the optimizer state must keep its types from step to step"
    assert last < first / 5, f"training did not reduce the loss enough ({first:.4f} -> {last:.4f})"
    return params


def serve_in_a_fresh_process(directory):
    package_root = os.path.dirname(os.path.dirname(os.path.abspath(ft.__file__)))
    env = {**os.environ, "PYTHONPATH": package_root + os.pathsep + os.environ.get("PYTHONPATH", "")}
    result = subprocess.run([sys.executable, "-c", SERVER, directory], cwd=directory, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"the server process failed:\n{result.stderr[-3000:]}"
    print(result.stdout.strip())


def main(steps=400):
    key_train, key_test = ft.random.split(ft.random.PRNGKey(0))
    params = train(steps, key_train)
    test_x = np.asarray(ft.random.uniform(key_test, (200, 2), minval=-1, maxval=1))

    def predict(x):  # one example -> one number; the trained weights are constants of the exported program
        return mlp(params, x[None, :])[0, 0]

    with tempfile.TemporaryDirectory() as directory:
        closed = ft.export(predict, test_x[0], path=os.path.join(directory, "model"))
        sizes = {name: os.path.getsize(os.path.join(directory, "model", name))
                 for name in sorted(os.listdir(os.path.join(directory, "model")))}
        print(f"exported: {len(closed.eqns)} equations, {len(closed.consts)} constants; files {sizes}")
        np.save(os.path.join(directory, "test_x.npy"), test_x)
        serve_in_a_fresh_process(directory)
        served = np.load(os.path.join(directory, "predictions.npy"))
        served_gradients = np.load(os.path.join(directory, "input_gradients.npy"))

    here = mlp(params, test_x)[:, 0]
    here_gradients = np.stack([ft.grad(predict)(x) for x in test_x])
    prediction_gap = float(np.max(np.abs(served - here)))
    gradient_gap = float(np.max(np.abs(served_gradients - here_gradients)))
    test_mse = float(np.mean((served - target(test_x)) ** 2))
    print(f"check: served predictions equal the original model's (max difference {prediction_gap:.1e})")
    print(f"check: served input gradients equal grad of the original (max difference {gradient_gap:.1e})")
    print(f"served test mean squared error {test_mse:.4f} (the target's variance is "
          f"{float(np.var(target(test_x))):.4f})")
    assert prediction_gap <= 1e-12, f"served predictions differ by {prediction_gap}"
    assert gradient_gap <= 1e-12, f"served gradients differ by {gradient_gap}"
    assert test_mse < 0.5 * float(np.var(target(test_x))), f"the served model did not learn (test MSE {test_mse:.4f})"
    print("all checks passed")


if __name__ == "__main__":
    main()
