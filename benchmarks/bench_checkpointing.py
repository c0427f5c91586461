"""Reverse sweep of a long loop with k stored carries against a full tape (issue 12, point 4).

The loop: n = 100,000 iterations of carry = tanh(carry * w + b) on a 1,000-element float64
carry, run forward and then pulled back (the cotangent of the first carry), by
interpreters/checkpointing.py directly, as `while_loop(..., checkpoints=100)` will run it:

- tape: each iteration's residual (its output, for 1 - y^2) kept, n of them;
- checkpoints=100: at most 100 carries, the rest recomputed, on the online schedule (the trip
  count unknown until the loop stops);
- checkpoints=100 with length=n: the placement of the offline optimum (a scan's case).

Printed: time (best of 3, without tracemalloc), peak memory (tracemalloc's peak during the
forward and reverse sweep, minus the final carry and the cotangent, which are outputs), the
steps recomputed and the offline optimum for them, and the ratios against the tape.
The issue's figure for the eventual while_loop: memory at most 1/20 of the tape's, time at most 3x.

Run: python benchmarks/bench_checkpointing.py [trip_count]
"""
import os
import platform
import sys
import time
import tracemalloc

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from a checkout

import numpy as np  # noqa: E402

from interpreters import checkpointing  # noqa: E402

SIZE = 1000
CHECKPOINTS = 100


def make_loop(size=SIZE):
    # w just under 1 and b = 0: the cotangent shrinks, but stays a normal float over 100,000
    # iterations; a map that contracts faster takes it into subnormal numbers, whose
    # arithmetic is many times slower and would swamp what is measured here
    rng = np.random.default_rng(0)
    w = rng.uniform(0.9995, 1.0, size)
    b = np.zeros(size)

    def step(i, x):
        return np.tanh(x * w + b)

    def linearize(i, x):
        y = np.tanh(x * w + b)
        return y, y

    def pullback(i, y, ct):
        return ct * (1.0 - y * y) * w
    return step, linearize, pullback, rng.normal(size=size)


def sweep(trip_count, checkpoints, length=None):
    """Forward then reverse; returns (final carry, cotangent of the first carry, record)."""
    step, linearize, pullback, x0 = make_loop()
    record = checkpointing.LoopRecord(step, linearize, checkpoints, length=length)
    carry = x0
    for _ in range(trip_count):  # the loop's predicate: the trip count, unknown to the record
        carry = record.step(carry)
    return carry, record.reverse(np.ones_like(carry), pullback), record


def timed(trip_count, checkpoints, length=None, repeat=3):
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        sweep(trip_count, checkpoints, length)
        best = min(best, time.perf_counter() - start)
    return best


def peak_memory(trip_count, checkpoints, length=None):
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        final, ct, record = sweep(trip_count, checkpoints, length)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak - final.nbytes - ct.nbytes, record, ct


def main(trip_count=100_000):
    print(f"reverse sweep of {trip_count:,} iterations of tanh(x * w + b), x float64[{SIZE}]; "
          f"{platform.python_implementation()} {platform.python_version()}, NumPy {np.__version__}")
    rows = [("tape", None, None), (f"checkpoints={CHECKPOINTS}", CHECKPOINTS, None),
            (f"checkpoints={CHECKPOINTS}, length=n", CHECKPOINTS, trip_count)]
    results = {}
    for name, checkpoints, length in rows:
        memory, record, ct = peak_memory(trip_count, checkpoints, length)
        results[name] = (timed(trip_count, checkpoints, length), memory, record, ct)
    tape_time, tape_memory, _, tape_ct = results["tape"]
    optimum = checkpointing.optimal_cost(trip_count, CHECKPOINTS)
    print(f"{'':32s} {'time':>8s} {'x tape':>7s} {'peak MB':>9s} {'/ tape':>8s} "
          f"{'recomputed':>11s} {'optimum':>8s} {'stored':>7s}")
    for name, (seconds, memory, record, ct) in results.items():
        identical = np.array_equal(ct, tape_ct)
        recomputed = "-" if record.checkpoints is None else f"{record.recomputed_steps:,}"
        best = "-" if record.checkpoints is None else f"{optimum:,}"
        print(f"{name:32s} {seconds:7.2f}s {seconds / tape_time:6.2f}x {memory / 2**20:9.1f} "
              f"{memory / tape_memory:8.4f} {recomputed:>11s} {best:>8s} {record.peak_stored:>7,d}"
              + ("" if identical else "   GRADIENT DIFFERS FROM THE TAPE'S"))
    seconds, memory = results[f"checkpoints={CHECKPOINTS}"][:2]
    print(f"online schedule, k={CHECKPOINTS}: memory 1/{tape_memory / memory:.0f} of the tape's "
          f"(figure: at least 1/20), time {seconds / tape_time:.2f}x the tape's (figure: at most 3x)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
