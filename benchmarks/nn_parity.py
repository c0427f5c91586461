"""ftrans.nn against jax.nn: values and derivatives of each function at ordinary and extreme inputs
(+-1000, +-1, 0, ...), and the initializers' draws for one key. With JAX installed it prints each
mismatch; `--literals` prints JAX's numbers in the form tests/test_nn.py holds them.

    PYTHONPATH=. python benchmarks/nn_parity.py [--literals]
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

import ftrans as ft
import ftrans.numpy as fnp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from nn_cases import ELEMENTWISE, INITIALIZERS, POINTS, VECTOR  # noqa: E402


def values(nn, transforms, xp, key):
    """{name: (f(points), f'(points))} for the elementwise functions; the vector ones' values and
    the gradient of their first output's sum; the initializers' draws."""
    grad, vmap = transforms
    points = xp.asarray(POINTS)
    out = {}
    for name, f in ELEMENTWISE.items():
        fun = lambda x, f=f: f(nn, x)  # noqa: E731
        out[name] = (np.asarray(fun(points)), np.asarray(vmap(grad(fun))(points)))
    for name, (f, x) in VECTOR.items():
        x = xp.asarray(x)
        fun = lambda x, f=f: f(nn, x)  # noqa: E731
        out[name] = (np.asarray(fun(x)), np.asarray(grad(lambda x: xp.sum(fun(x)[..., :1] ** 2))(x)))
    for name, f in INITIALIZERS.items():
        out[name] = (np.asarray(f(nn.initializers, key)), None)
    return out


def ftrans_values():
    return values(ft.nn, (ft.grad, ft.vmap), fnp, ft.random.PRNGKey(0))


def jax_values():
    import jax
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    return values(jax.nn, (jax.grad, jax.vmap), jnp, jax.random.PRNGKey(0))


def _text(a):
    if a is None:
        return "None"
    text = np.array2string(a, separator=", ", precision=17, floatmode="unique", threshold=10**6, max_line_width=88)
    return text.replace("\n", "\n        ")


def main():
    try:
        theirs = jax_values()
    except ImportError:
        print("jax is not installed: nothing to compare with")
        return 0
    if "--literals" in sys.argv:
        print("EXPECTED = {")
        for name, (value, derivative) in theirs.items():
            print(f"    {name!r}: ({_text(value)},\n        {_text(derivative)}),")
        print("}")
        return 0
    bad = 0
    for name, (value, derivative) in ftrans_values().items():
        want_value, want_derivative = theirs[name]
        for what, got, want in (("value", value, want_value), ("derivative", derivative, want_derivative)):
            # squareplus' derivative at -1000 cancels (x + sqrt(x^2 + b)): its last digits are rounding
            rtol = 1e-9 if name == "squareplus" else 1e-13
            if want is not None and not np.allclose(got, want, rtol=rtol, atol=1e-300, equal_nan=True):
                print(f"MISMATCH {name} {what}:\n  ftrans {got!r}\n  jax    {want!r}")
                bad += 1
    print(f"{len(theirs)} functions against jax: {bad} mismatches")
    return bad


if __name__ == "__main__":
    sys.exit(1 if main() else 0)
