"""Several processes: each script of tests/distributed/ runs under `mpiexec -n 2` (started here, with a
timeout) and asserts on every rank; these tests skip when mpi4py or mpiexec is absent."""
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

pytest.importorskip("mpi4py")
MPIEXEC = shutil.which("mpiexec")
pytestmark = pytest.mark.skipif(MPIEXEC is None, reason="no mpiexec on PATH (pip install '.[mpi]')")
ROOT = pathlib.Path(__file__).resolve().parent.parent


def run_mpi(script, *args, n=2, timeout=240, env=None):
    # FTRANS_DEBUG: every primitive result checked against its abstract value, as in this suite
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "FTRANS_DEBUG": "1", "OMP_NUM_THREADS": "1",
                   "OPENBLAS_NUM_THREADS": "1", "FTRANS_JIT_THREADS": "1", **(env or {})}
    command = [MPIEXEC, "-n", str(n), sys.executable, str(ROOT / script), *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=environment, cwd=ROOT)
    return done.returncode, done.stdout + done.stderr


def assert_ok(script, *args, **kwargs):
    rc, output = run_mpi(script, *args, **kwargs)
    assert rc == 0, output
    return output


def test_collective_values_on_every_rank_eager_and_jit():
    output = assert_ok("tests/distributed/collectives_values.py")
    assert "rank 0: collectives ok" in output and "rank 1: collectives ok" in output


def test_shard_map_over_a_mesh_gives_the_unsharded_values_and_gradients():
    output = assert_ok("tests/distributed/shard_map_grad.py")
    assert "rank 1: shard_map gradients ok" in output


def test_mismatched_shapes_raise_on_every_rank_with_debug_collectives():
    output = assert_ok("tests/distributed/faults.py", "mismatch")
    for rank in (0, 1):
        assert f"rank {rank}: eager mismatch detected" in output and f"rank {rank}: jit mismatch detected" in output


@pytest.mark.parametrize("mode", ["timeout", "timeout_large"])
def test_a_stuck_rank_makes_the_others_fail_after_the_timeout(mode):
    import time
    start = time.monotonic()
    rc, output = run_mpi("tests/distributed/faults.py", mode, timeout=120)
    assert rc != 0 and "rank 0: TimeoutError after" in output and "restart it from a checkpoint" in output, output
    assert time.monotonic() - start < 25  # not the 30 s the stuck rank sleeps


def test_data_parallel_example_matches_one_process_training():
    output = assert_ok("examples/data_parallel.py")
    assert "final parameters vs one process on the concatenated batches" in output
    assert "rank 0: done" in output and "rank 1: done" in output


def test_docs_tensor_parallel_and_pipeline_examples():
    assert "rank 1: docs examples ok" in assert_ok("tests/distributed/docs_examples.py")


def test_two_dimensional_mesh_data_and_tensor_parallel_on_four_processes():
    assert "rank 3: 2-d mesh ok" in assert_ok("tests/distributed/mesh_2d.py", n=4)
