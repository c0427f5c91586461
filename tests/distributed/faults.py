"""Run under `mpiexec -n 2` by tests/test_distributed.py, with a mode:
`mismatch`: ranks psum different shapes with debug_collectives on: a ValueError on every rank (eager and jit);
`timeout` (`timeout_large`: of 512 kB, which waits for the other ranks first, asleep, then spins on the
transfer): rank 1 never arrives (stuck): rank 0's collective raises TimeoutError after the timeout."""
import os
import sys
import time

import numpy as np

import ftrans as ft

mode = sys.argv[1]
if mode == "mismatch":
    ft.distributed.initialize(timeout=60)
    rank = ft.distributed.process_index()
    ft.config.update("debug_collectives", True)
    x = np.ones(3 + rank)
    for how, f in (("eager", ft.shard_map(lambda x: ft.lax.psum(x, "i"), axis_name="i")),
                   ("jit", ft.jit(ft.shard_map(lambda x: ft.lax.psum(x, "i"), axis_name="i")))):
        try:
            f(x)
        except ValueError as e:
            assert "rank 0: psum (3,) float64" in str(e) and "rank 1: psum (4,) float64" in str(e), str(e)
            print(f"rank {rank}: {how} mismatch detected")
        else:
            raise AssertionError("no error for mismatched shapes")
    # matching calls still work with the check on
    assert np.allclose(ft.shard_map(lambda x: ft.lax.psum(x, "i"), axis_name="i")(np.ones(2)), 2.0)
    print(f"rank {rank}: checked collectives ok")
elif mode in ("timeout", "timeout_large"):
    ft.distributed.initialize(timeout=2.0)
    rank = ft.distributed.process_index()
    if rank == 1:
        time.sleep(30)  # stuck: never reaches the collective
        os._exit(0)
    start = time.monotonic()
    try:
        ft.shard_map(lambda x: ft.lax.psum(x, "i"), axis_name="i")(np.ones(3 if mode == "timeout" else 2**16))
    except TimeoutError as e:
        print(f"rank 0: TimeoutError after {time.monotonic() - start:.1f} s: {e}", flush=True)
        from mpi4py import MPI
        # mpiexec forwards a rank's output a moment after it is written, and an abort ends the forwarding:
        # without the pause the line was lost now and then (an empty output with exit status 3)
        time.sleep(1.0)
        MPI.COMM_WORLD.Abort(3)  # the job cannot go on: end every rank
    else:
        raise AssertionError("no timeout")
