"""Distributed benchmarks (issue 20), under MPI:

1. ftrans's psum of a 100 MB float32 array (eager, and jitted, inside shard_map) against raw mpi4py
   `Allreduce` into a preallocated buffer: the best of several calls each (aim: within 1.1x);
2. data-parallel training step throughput, weak scaling (examples/data_parallel.py's step, a wider
   MLP): each of the processes takes its own block of `--batch` examples a step and pmean's the
   gradients (one fused Allreduce of all of them), against one process taking one block alone (rank 0
   while the other ranks sleep). Throughput = examples per second; aim: 2 processes >= 1.6x one on a
   2-core machine, every process with BLAS and jit threads pinned to one (this script sets
   OMP/OPENBLAS/MKL_NUM_THREADS and FTRANS_JIT_THREADS to 1 before NumPy loads).

The machine may be shared: every measurement is repeated in `--repeat` interleaved rounds (each
round's one-process and all-process phases back to back, under the same load), the psum ratio is best
against best, the step ratio the median of the rounds' ratios, and the load average is printed with
each round. The last two lines sum the two ratios up against their aims.

Run: mpiexec -n 2 python benchmarks/bench_distributed.py
"""
import os

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "FTRANS_JIT_THREADS"):
    os.environ.setdefault(_name, "1")

import argparse  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

import ftrans as ft  # noqa: E402
import ftrans.numpy as fnp  # noqa: E402


def timed(fun, comm):
    """One call of `fun` on every rank, started together; the slowest rank's time (the collective's)."""
    from mpi4py import MPI
    comm.Barrier()
    start = time.perf_counter()
    fun()
    return comm.allreduce(time.perf_counter() - start, op=MPI.MAX)


def psum_figures(comm, megabytes, repeat):
    """(raw, eager, jit) seconds of a psum of `megabytes` of float32: the three interleaved, `repeat`
    calls each; each a list of the calls' times."""
    from mpi4py import MPI
    x = np.random.default_rng(comm.Get_rank()).standard_normal(megabytes * 2**20 // 4).astype(np.float32)
    out = np.empty_like(x)
    eager_psum = ft.shard_map(lambda v: ft.lax.psum(v, "i"), axis_name="i")
    jit_psum = ft.jit(eager_psum)
    jit_psum(x)  # traced once
    runs = {"raw": lambda: comm.Allreduce(x, out, op=MPI.SUM), "eager": lambda: eager_psum(x),
            "jit": lambda: jit_psum(x)}
    times = {name: [] for name in runs}
    for _ in range(repeat):
        for name, run in runs.items():
            times[name].append(timed(run, comm))
    assert np.array_equal(np.asarray(eager_psum(x)), out) and np.array_equal(np.asarray(jit_psum(x)), out)
    return times


def init(rng, sizes):
    return [(rng.normal(size=(m, n)) / np.sqrt(m), np.zeros(n)) for m, n in zip(sizes[:-1], sizes[1:])]


def loss(params, x, one_hot):
    for W, b in params[:-1]:
        x = fnp.tanh(x @ W + b)
    W, b = params[-1]
    z = x @ W + b
    return -fnp.mean(fnp.sum(one_hot * (z - fnp.logsumexp(z, axis=1, keepdims=True)), axis=1))


def step_figures(comm, batch, width, seconds, repeat):
    """Weak scaling: every process takes its own block of `batch` examples a step. `repeat` rounds,
    each of three phases run back to back (so that each round's phases see the same machine load):
    one process alone (rank 0, while the other ranks wait asleep), all processes in the data-parallel
    step (gradients pmean'd: one fused Allreduce), and all processes each running the step alone at
    once (no collective: what the machine gives concurrent processes). Returns a dict of lists (one
    entry a round) of seconds a step, and the per-rank time in the collectives."""
    from mpi4py import MPI

    from ftrans import distributed
    rank = comm.Get_rank()
    rng = np.random.default_rng(0)
    params = init(rng, (64, width, width, 10))
    x = rng.standard_normal((batch, 64))
    one_hot = np.eye(10)[rng.integers(0, 10, batch)]
    alone = ft.jit(ft.value_and_grad(loss))
    # pmean of the (loss, gradients) pytree: one fused Allreduce of every leaf (ftrans/_collectives.py)
    parallel = ft.jit(ft.shard_map(lambda p, x, y: ft.lax.pmean(ft.value_and_grad(loss)(p, x, y), "i"),
                                   axis_name="i"))
    alone(params, x, one_hot)  # traced
    parallel(params, x, one_hot)
    # steps a phase: `seconds` of one process's steps, measured once
    start = time.perf_counter()
    for _ in range(3):
        alone(params, x, one_hot)
    steps = comm.bcast(max(5, int(seconds / ((time.perf_counter() - start) / 3))))

    def per_step(step, together=True):
        if together:
            comm.Barrier()
        start = time.perf_counter()
        for _ in range(steps):
            step(params, x, one_hot)
        return time.perf_counter() - start

    # a rank's time in the collectives: its Allreduce and its wait for the last rank to arrive,
    # counted around the backend's calls
    in_collectives = [0.0, 0]
    run = distributed._MpiBackend._run

    def counted(self, *args, **kwargs):
        begin = time.perf_counter()
        try:
            return run(self, *args, **kwargs)
        finally:
            in_collectives[0] += time.perf_counter() - begin
            in_collectives[1] += 1

    figures = {"one": [], "parallel": [], "concurrent": [], "load": []}
    for _ in range(repeat):
        figures["load"].append(os.getloadavg()[0])
        one = per_step(alone, together=False) / steps if rank == 0 else None
        request = comm.Ibarrier()  # the other ranks wait without spinning on a core
        while not request.Test():
            time.sleep(0.01)
        figures["one"].append(comm.bcast(one))
        distributed._MpiBackend._run = counted
        try:
            elapsed = per_step(parallel)
        finally:
            distributed._MpiBackend._run = run
        figures["parallel"].append(comm.allreduce(elapsed, op=MPI.MAX) / steps)
        figures["concurrent"].append(comm.allreduce(per_step(alone), op=MPI.MAX) / steps)
    collective_share = comm.gather((in_collectives[0] / (repeat * steps), in_collectives[1] / (repeat * steps)),
                                   root=0)
    return figures, collective_share


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--megabytes", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=7, help="interleaved rounds of each measurement")
    # 1024: the step's compute (~40 ms on one core) large next to its one rendezvous of the ranks
    parser.add_argument("--batch", type=int, default=1024, help="examples per process per step")
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--seconds", type=float, default=1.0, help="of one process's steps, a phase of a round")
    args = parser.parse_args()
    ft.distributed.initialize()
    from mpi4py import MPI
    comm = MPI.COMM_WORLD
    rank, count = comm.Get_rank(), comm.Get_size()
    load_before = os.getloadavg()
    psum = psum_figures(comm, args.megabytes, args.repeat)
    steps, collective_share = step_figures(comm, args.batch, args.width, args.seconds, args.repeat)
    if rank != 0:
        return
    ms = "{:.1f} ms".format
    print(f"{count} processes ({MPI.Get_library_version().splitlines()[0].strip()}), {os.cpu_count()} cores; "
          f"BLAS and jit threads pinned to 1; {args.repeat} interleaved rounds of each measurement")
    print("load average before: {:.2f} {:.2f} {:.2f}".format(*load_before))
    raw, eager, jitted = (psum[k] for k in ("raw", "eager", "jit"))
    print(f"psum of {args.megabytes} MB float32 (min / median of the rounds): raw mpi4py Allreduce into a "
          f"preallocated buffer {ms(min(raw) * 1e3)} / {ms(np.median(raw) * 1e3)}, ftrans eager "
          f"{ms(min(eager) * 1e3)} / {ms(np.median(eager) * 1e3)}, jit {ms(min(jitted) * 1e3)} / "
          f"{ms(np.median(jitted) * 1e3)}")
    one, parallel, concurrent = (np.array(steps[k]) for k in ("one", "parallel", "concurrent"))
    # throughput ratio of a round: count blocks of `batch` in a parallel step against one block alone
    ratios = count * one / parallel
    print(f"data-parallel step, weak scaling (MLP 64-{args.width}-{args.width}-10, {args.batch} examples per "
          f"process a step: 1 process {args.batch}, {count} processes {count * args.batch} examples a step)")
    for r in range(args.repeat):
        print(f"  round {r}: 1 process {ms(one[r] * 1e3)} a step ({args.batch / one[r]:.0f} examples/s), "
              f"{count} processes {ms(parallel[r] * 1e3)} ({count * args.batch / parallel[r]:.0f} examples/s): "
              f"{ratios[r]:.2f}x; the same step alone on all {count} at once {ms(concurrent[r] * 1e3)}; "
              f"load {steps['load'][r]:.2f}")
    for r, (waiting, calls) in enumerate(collective_share):
        print(f"  rank {r}: {ms(waiting * 1e3)} a parallel step in {calls:.0f} collective call(s) (the Allreduce "
              "and the wait for the last rank)")
    best_possible = count * np.median(one / concurrent)
    print(f"  medians: 1 process {ms(np.median(one) * 1e3)}, {count} processes {ms(np.median(parallel) * 1e3)}, "
          f"all at once alone {ms(np.median(concurrent) * 1e3)} (best possible {best_possible:.2f}x with "
          "collectives free)")
    print("load average after: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    psum_ratio = min(jitted) / min(raw)
    eager_ratio = min(eager) / min(raw)
    print(f"SUMMARY psum {args.megabytes} MB: ftrans/raw Allreduce {psum_ratio:.2f}x jit, {eager_ratio:.2f}x eager "
          f"(best of {args.repeat} each) -- aim <= 1.10x: "
          f"{'met' if max(psum_ratio, eager_ratio) <= 1.1 else 'NOT met'}")
    ratio = float(np.median(ratios))
    print(f"SUMMARY data-parallel throughput {count} processes / 1 process: {ratio:.2f}x (median of {args.repeat} "
          f"rounds; {count * min(one) / min(parallel):.2f}x best against best; the same step run by all "
          f"processes at once with no collective: {best_possible:.2f}x; load {np.median(steps['load']):.1f}) "
          "-- aim >= 1.60x: "
          f"{'met' if ratio >= 1.6 else 'NOT met'}")


if __name__ == "__main__":
    main()
