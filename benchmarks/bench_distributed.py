"""Distributed benchmarks (issue 20), under MPI:

1. ftrans's psum of a 100 MB float32 array (eager, and jitted, inside shard_map) against raw mpi4py
   `Allreduce` into a preallocated buffer: the best of several calls each (aim: within 1.1x);
2. data-parallel training step throughput (examples/data_parallel.py's step, a wider MLP): each of
   the processes takes a block of `--batch` examples and pmean's the gradients (one fused Allreduce of
   all of them), against one process
   taking one block alone (rank 0 while the other ranks sleep). Throughput = examples per second;
   aim: 2 processes >= 1.6x one on a 2-core machine, every process with BLAS and jit threads pinned to
   one (this script sets OMP/OPENBLAS/MKL_NUM_THREADS and FTRANS_JIT_THREADS to 1 before NumPy loads).

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


def best_of(fun, repeat, comm):
    from mpi4py import MPI
    times = []
    for _ in range(repeat):
        comm.Barrier()
        start = time.perf_counter()
        fun()
        times.append(time.perf_counter() - start)
    # the slowest rank's time is the collective's
    return comm.allreduce(min(times), op=MPI.MAX)


def psum_figures(comm, megabytes, repeat):
    from mpi4py import MPI
    x = np.random.default_rng(comm.Get_rank()).standard_normal(megabytes * 2**20 // 4).astype(np.float32)
    out = np.empty_like(x)
    raw = best_of(lambda: comm.Allreduce(x, out, op=MPI.SUM), repeat, comm)
    eager_psum = ft.shard_map(lambda v: ft.lax.psum(v, "i"), axis_name="i")
    jit_psum = ft.jit(eager_psum)
    jit_psum(x)  # traced once
    eager = best_of(lambda: eager_psum(x), repeat, comm)
    jitted = best_of(lambda: jit_psum(x), repeat, comm)
    assert np.array_equal(np.asarray(eager_psum(x)), out)
    return raw, eager, jitted


def init(rng, sizes):
    return [(rng.normal(size=(m, n)) / np.sqrt(m), np.zeros(n)) for m, n in zip(sizes[:-1], sizes[1:])]


def loss(params, x, one_hot):
    for W, b in params[:-1]:
        x = fnp.tanh(x @ W + b)
    W, b = params[-1]
    z = x @ W + b
    return -fnp.mean(fnp.sum(one_hot * (z - fnp.logsumexp(z, axis=1, keepdims=True)), axis=1))


def step_figures(comm, batch, width, seconds):
    """(one process's examples/s, all processes' examples/s, per-rank profile of the parallel step)."""
    from mpi4py import MPI

    from ftrans import distributed
    rank, count = comm.Get_rank(), comm.Get_size()
    rng = np.random.default_rng(0)
    params = init(rng, (64, width, width, 10))
    x = rng.standard_normal((batch, 64))
    one_hot = np.eye(10)[rng.integers(0, 10, batch)]
    alone = ft.jit(ft.value_and_grad(loss))
    # pmean of the (loss, gradients) pytree: one fused Allreduce of every leaf (ftrans/_collectives.py)
    parallel = ft.jit(ft.shard_map(lambda p, x, y: ft.lax.pmean(ft.value_and_grad(loss)(p, x, y), "i"),
                                   axis_name="i"))

    def rate(step, steps=None):
        step(params, x, one_hot)  # traced
        n, start = 0, time.perf_counter()
        while (steps is None and time.perf_counter() - start < seconds) or (steps is not None and n < steps):
            step(params, x, one_hot)
            n += 1
        return n, time.perf_counter() - start

    one_rate = None
    if rank == 0:
        n, elapsed = rate(alone)
        one_rate = n * batch / elapsed
    request = comm.Ibarrier()  # the other ranks wait without spinning on a core
    while not request.Test():
        time.sleep(0.01)
    one_rate = comm.bcast(one_rate)
    steps = comm.bcast(max(5, int(seconds * one_rate / batch)))
    comm.Barrier()
    # where a rank's step goes: the collectives' time (its Allreduce and the wait for the last rank to
    # arrive), counted around the backend's calls
    in_collectives = [0.0, 0]
    run = distributed._MpiBackend._run

    def counted(self, *args, **kwargs):
        start = time.perf_counter()
        try:
            return run(self, *args, **kwargs)
        finally:
            in_collectives[0] += time.perf_counter() - start
            in_collectives[1] += 1
    distributed._MpiBackend._run = counted
    try:
        n, elapsed = rate(parallel, steps)
    finally:
        distributed._MpiBackend._run = run
    calls = (in_collectives[1] - 1) / (n + 1)  # (the tracing call counted too)
    profile = comm.gather((elapsed / n, in_collectives[0] / (n + 1), calls), root=0)
    # both ranks computing the same step alone at once: what the machine gives two processes
    comm.Barrier()
    n_both, elapsed_both = rate(alone, max(3, steps // 2))
    concurrent = comm.gather(elapsed_both / n_both, root=0)
    elapsed = comm.allreduce(elapsed, op=MPI.MAX)
    return one_rate, count * n * batch / elapsed, (profile, concurrent)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--megabytes", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=7)
    # 1024: the step's compute (~0.1 s on one core) large next to its one rendezvous of the ranks
    parser.add_argument("--batch", type=int, default=1024, help="examples per process per step")
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    ft.distributed.initialize()
    from mpi4py import MPI
    comm = MPI.COMM_WORLD
    rank, count = comm.Get_rank(), comm.Get_size()
    raw, eager, jitted = psum_figures(comm, args.megabytes, args.repeat)
    one, many, (profile, concurrent) = step_figures(comm, args.batch, args.width, args.seconds)
    if rank == 0:
        print(f"{count} processes ({MPI.Get_library_version().splitlines()[0].strip()}), {os.cpu_count()} cores; "
              "BLAS and jit threads pinned to 1")
        print(f"psum of {args.megabytes} MB float32: raw mpi4py Allreduce into a preallocated buffer "
              f"{raw * 1e3:.1f} ms, ftrans eager {eager * 1e3:.1f} ms ({eager / raw:.2f}x), "
              f"jit {jitted * 1e3:.1f} ms ({jitted / raw:.2f}x)")
        print(f"data-parallel step (MLP 64-{args.width}-{args.width}-10, {args.batch} examples per process): "
              f"1 process {one:.0f} examples/s, {count} processes {many:.0f} examples/s ({many / one:.2f}x)")
        print(f"  one process alone: {args.batch / one * 1e3:.1f} ms a step")
        for r, ((step, waiting, calls), both) in enumerate(zip(profile, concurrent)):
            print(f"  rank {r}: parallel step {step * 1e3:.1f} ms = {(step - waiting) * 1e3:.1f} ms computing "
                  f"(the same step with no collective, all ranks at once: {both * 1e3:.1f} ms) + "
                  f"{waiting * 1e3:.1f} ms in {calls:.0f} collective call(s) a step (Allreduce and waiting "
                  "for the last rank)")
        print(f"  load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")


if __name__ == "__main__":
    main()
