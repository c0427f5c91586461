"""How the IR's stages scale with program size: microseconds per equation.

    python benchmarks/bench_tracing.py [--sizes 10000 100000]

For a straight-line chain of `sin`, `mul`, `add` equations it times, at each
size: tracing (`ft.make_jaxpr`), printing (`str`), parsing the printed text
back (`ir.parser.parse`), type checking (`ir.check`) and evaluating
(`interpreters.eval.eval_closed_jaxpr`). Every stage should be linear in the
number of equations, so the per-equation cost at the largest size divided by
that at the smallest (the "ratio" column) should be about 1; a ratio above
1.5 is flagged as superlinear.

Timings are the best of 3 runs at sizes up to 10,000 equations, and the best
of 2 (or 1, for a stage whose first run took over 10 s) above that, with
`time.perf_counter`. Debug checks are off, as in normal use.
"""
from __future__ import annotations

import argparse
import gc
import os
import platform
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from a checkout

import numpy as np  # noqa: E402

import ftrans as ft  # noqa: E402
import ftrans.numpy as fnp  # noqa: E402
import ir  # noqa: E402
import ir.config  # noqa: E402
from interpreters.eval import eval_closed_jaxpr  # noqa: E402

STAGES = ("trace", "print", "parse", "check", "eval")
SUPERLINEAR = 1.5
SLOW_RUN_S = 10.0
_GC_OFF = False


def chain_function(num_eqns):
    """x -> sin -> * 1.0001 -> + 0.1 -> sin -> ...: exactly `num_eqns` equations."""
    def chain(x):
        for i in range(num_eqns):
            step = i % 3
            if step == 0:
                x = fnp.sin(x)
            elif step == 1:
                x = x * 1.0001
            else:
                x = x + 0.1
        return x
    return chain


def best_time(fun, repeats):
    """(best seconds, last result) over up to `repeats` runs; a run over SLOW_RUN_S ends the series."""
    best, result = float("inf"), None
    for _ in range(repeats):
        result = None  # free the previous run's result before timing the next
        gc.collect()
        if _GC_OFF:
            gc.disable()
        try:
            start = time.perf_counter()
            result = fun()
            elapsed = time.perf_counter() - start
        finally:
            gc.enable()
        best = min(best, elapsed)
        if elapsed > SLOW_RUN_S:
            break
    return best, result


def measure(num_eqns, repeats):
    from ir.parser import parse

    x = np.linspace(-1.0, 1.0, 3)
    fun = chain_function(num_eqns)
    seconds = {}
    seconds["trace"], closed = best_time(lambda: ft.make_jaxpr(fun)(x), repeats)
    n = len(closed.eqns)
    seconds["print"], text = best_time(lambda: str(closed), repeats)
    seconds["parse"], parsed = best_time(lambda: parse(text), repeats)
    seconds["check"], _ = best_time(lambda: ir.check(closed), repeats)
    seconds["eval"], out = best_time(lambda: eval_closed_jaxpr(closed, x), repeats)
    # the stages must agree with each other, or the timings mean nothing
    assert len(parsed.eqns) == n
    np.testing.assert_allclose(eval_closed_jaxpr(parsed, x)[0], out[0])
    return n, seconds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000],
                        help="numbers of equations (default: 10000 100000)")
    parser.add_argument("--gc-off", action="store_true",
                        help="disable Python's cyclic garbage collector while timing (its full "
                             "collections walk the whole heap, which grows with the program)")
    args = parser.parse_args(argv)
    ir.config.debug = False
    global _GC_OFF
    _GC_OFF = args.gc_off

    print(f"ftrans {ft.__version__}: trace / print / parse / check / eval of a sin-mul-add chain")
    print(f"Python {platform.python_version()} ({platform.python_implementation()}), "
          f"NumPy {np.__version__}, {platform.platform()}, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs; recursion limit {sys.getrecursionlimit()}; "
          f"garbage collector {'off' if args.gc_off else 'on'} while timing")
    print()

    results = []
    for size in args.sizes:
        repeats = 3 if size <= 10_000 else 2
        start = time.perf_counter()
        n, seconds = measure(size, repeats)
        results.append((n, seconds))
        print(f"  measured {n:,} equations (best of {repeats}) in {time.perf_counter() - start:.1f} s",
              flush=True)
    print()

    header = f"{'stage':<7}" + "".join(f"{f'{n:,} eqns':>16}" for n, _ in results)
    if len(results) > 1:
        header += f"{'ratio':>9}"
    print("microseconds per equation" + ("; ratio = per-equation cost at the largest size / "
                                         "at the smallest (1 = linear)" if len(results) > 1 else ""))
    print(header)
    print("-" * len(header))
    flagged = []
    for stage in STAGES:
        per_eqn = [seconds[stage] / n * 1e6 for n, seconds in results]
        row = f"{stage:<7}" + "".join(f"{us:>16.2f}" for us in per_eqn)
        if len(results) > 1:
            ratio = per_eqn[-1] / per_eqn[0]
            row += f"{ratio:>9.2f}"
            if ratio > SUPERLINEAR:
                row += "   <- superlinear"
                flagged.append((stage, ratio))
        print(row)
    print("-" * len(header))
    totals = "".join(f"{f'{sum(s.values()):.2f} s':>16}" for _, s in results)
    print(f"{'total':<7}{totals}   (seconds for all five stages)")
    print()
    if flagged:
        for stage, ratio in flagged:
            print(f"SUPERLINEAR: {stage} costs {ratio:.1f}x more per equation at "
                  f"{results[-1][0]:,} equations than at {results[0][0]:,}")
    elif len(results) > 1:
        print(f"every stage scales linearly (ratio <= {SUPERLINEAR})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
