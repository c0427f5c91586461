"""Linear regression by gradient descent with ft.grad, printing the loss curve.

The data come from y = X w_true + b_true + noise; gradient descent on the mean
squared error must reach the least-squares solution (computed directly).

Run: python examples/linear_regression.py
"""
import numpy as np

import ftrans as ft
import ftrans.numpy as fnp


def loss(params, X, y):
    w, b = params
    residual = X @ w + b - y
    return fnp.mean(residual ** 2)


def main(steps=200, learning_rate=0.1):
    key_X, key_noise = ft.random.split(ft.random.PRNGKey(0))
    X = ft.random.normal(key_X, (100, 3))
    w_true, b_true = np.array([2.0, -3.0, 0.5]), 1.5
    y = X @ w_true + b_true + 0.1 * ft.random.normal(key_noise, (100,))

    params = (np.zeros(3), 0.0)
    value_and_grad = ft.value_and_grad(loss)
    curve = []
    for step in range(steps):
        value, (dw, db) = value_and_grad(params, X, y)
        params = (params[0] - learning_rate * dw, params[1] - learning_rate * db)
        curve.append(float(value))

    top = max(curve)
    print("loss curve (one bar per 10 steps)")
    for step in range(0, steps, 10):
        bar = "#" * max(1, int(50 * curve[step] / top))
        print(f"step {step:4d}  {curve[step]:10.5f}  {bar}")
    design = np.hstack([X, np.ones((100, 1))])
    exact = np.linalg.lstsq(design, y, rcond=None)[0]
    print("fitted w, b:", np.round(params[0], 4), round(float(params[1]), 4))
    print("least squares:", np.round(exact[:3], 4), round(float(exact[3]), 4))
    assert curve[-1] < curve[0] / 100, "the loss must fall"
    assert np.allclose(params[0], exact[:3], atol=1e-3) and abs(params[1] - exact[3]) < 1e-3


if __name__ == "__main__":
    main()
