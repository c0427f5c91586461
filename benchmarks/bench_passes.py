"""IR pass benchmarks (issue 5), measured in one run:

1. equation counts of the n-th nested derivative, n = 1..8, before and after
   `optimize=True`: grad of tanh, and the jvp derivative
   d = lambda f: (lambda t: ft.jvp(f, (t,), (1.0,))[1]) of 0.3 sin(t) t**10
   (targets at n = 8: at most 100 and 300). For comparison, the other
   derivative of each function, and how many distinct values the optimized
   nested grad of tanh computes (a floor for any exact pass: see below). A
   grad of a scalar function of a scalar whose linear map is a sum of products
   runs that map forward on the cotangent (a 1x1 map is its own transpose:
   interpreters/ad.py, forward_is_transpose), so nested grads of tanh are
   forward mode's programs, which CSE shares;
2. the time of each pass and of `optimize` on a 120,000-equation program.

Run: python benchmarks/bench_passes.py
"""
import platform
import time

import numpy as np

import ftrans as ft
import ftrans.numpy as fnp
from interpreters.eval import eval_closed_jaxpr
from ir import passes
from ir.core import Literal


def nested(f, n, derivative):
    for _ in range(n):
        f = derivative(f)
    return f


def jvp_derivative(f):
    return lambda t: ft.jvp(f, (t,), (1.0,))[1]


def power_sin(t):
    return 0.3 * fnp.sin(t) * t ** 10


def counts(f, n, derivative, x=0.5):
    closed = ft.make_jaxpr(nested(f, n, derivative))(x)
    return len(closed.eqns), len(passes.optimize(closed).eqns)


def distinct_values(closed, points=(0.3, -0.7, 1.1)):
    """How many different functions of the input the equations compute (to 9
    digits, at a few points): no exact rewrite can merge two of them."""
    env_per_point = []
    for x in points:
        env = {closed.jaxpr.invars[0]: np.float64(x)}
        read = lambda a: a.value if type(a) is Literal else env[a]
        for eqn in closed.jaxpr.eqns:
            env[eqn.outvars[0]] = eqn.primitive.impl(*map(read, eqn.invars), **eqn.params)
        env_per_point.append(env)
    return len({tuple(round(float(env[e.outvars[0]]), 9) for env in env_per_point)
                for e in closed.jaxpr.eqns})


def equation_count_table():
    print("   n | grad tanh      | jvp 0.3 sin(t) t^10 "
          "|| jvp tanh      | grad 0.3 sin(t) t^10 | grad tanh")
    print("     | before  after  | before   after      "
          "|| before  after | before   after       | distinct values")
    for n in range(1, 9):
        grad_tanh = counts(fnp.tanh, n, ft.grad)
        jvp_power = counts(power_sin, n, jvp_derivative)
        jvp_tanh = counts(fnp.tanh, n, jvp_derivative)
        grad_power = counts(power_sin, n, ft.grad)
        distinct = distinct_values(ft.make_jaxpr(nested(fnp.tanh, n, ft.grad), optimize=True)(0.5))
        print(f"   {n} | {grad_tanh[0]:6d} {grad_tanh[1]:6d}  | {jvp_power[0]:6d} {jvp_power[1]:7d}      "
              f"|| {jvp_tanh[0]:6d} {jvp_tanh[1]:6d} | {grad_power[0]:6d} {grad_power[1]:7d}       "
              f"| {distinct:6d}")


STEPS = 10_000


def long_program(x):
    """12 equations a step, half of them redundant: a duplicate sin (CSE), x*1 and
    -(-x) (simplify), ones*0.5 (folding), x**2 (lowering), /4 (to *0.25)."""
    for _ in range(STEPS):
        s, t = fnp.sin(x), fnp.sin(x)
        x = (s * 1.0 + -(-t)) * (fnp.ones(3) * 0.5) + x ** 2 / 4.0
    return x


def best_time(fun, repeat=3):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        result = fun()
        times.append(time.perf_counter() - start)
    return min(times), result


def pass_timings():
    x = np.array([0.3, -1.2, 2.5])
    closed = ft.make_jaxpr(long_program)(x)
    n = len(closed.eqns)
    print(f"   input: {n} equations")
    for name in ("dce", "cse", "fold_constants", "simplify", "lower_integer_pow", "optimize"):
        seconds, out = best_time(lambda: getattr(passes, name)(closed))
        print(f"   {name:18s} {seconds:6.2f} s  ({seconds / n * 1e6:5.1f} us/equation) "
              f"-> {len(out.eqns)} equations")
    optimized = passes.optimize(closed)
    same = np.array_equal(eval_closed_jaxpr(closed, x)[0], eval_closed_jaxpr(optimized, x)[0])
    print(f"   results bitwise equal before and after: {same}")


def main():
    print(f"Python {platform.python_version()}, NumPy {np.__version__}, {platform.machine()}")
    print("\n1. equations in make_jaxpr of the n-th derivative, before and after optimize=True")
    print("   (targets at n = 8: grad tanh <= 100, jvp 0.3 sin(t) t^10 <= 300)")
    equation_count_table()
    print("\n2. passes on a long program")
    pass_timings()


if __name__ == "__main__":
    main()
