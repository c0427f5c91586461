"""Collectives on device (CuPy) buffers over NCCL (ftrans/_nccl.py), on machines with no GPU: the fake
CuPy and NCCL of tests/fake_nccl.py, with ranks as threads, run the real code path (bootstrap,
pointers and byte counts, streams, groups, timeouts) and the dispatch of ftrans.distributed's
process backend (CuPy operands to NCCL, NumPy ones to MPI). With two GPUs and CuPy, the same
programs run on real NCCL under `mpiexec -n 2` (skipped otherwise)."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

import ftrans as ft
import ftrans.numpy as fnp
from fake_nccl import FAKE_MPI, FakeDeviceArray, FakeNccl, fake_cupy, run_ranks, thread_worlds, to_device
from ftrans import _nccl, distributed
from ir import axis_env
from ir import config as ir_config

lax = ft.lax


def _transports(size, timeout=None):
    """(the fake nccl module, the fake cupy, one communicator per rank): rank 0's unique id broadcast."""
    world, comms = thread_worlds(size)
    nccl, cupy = FakeNccl(world), fake_cupy()
    transports = run_ranks(size, lambda rank: _nccl.NcclTransport(comms[rank], cupy, nccl, timeout))
    return nccl, cupy, comms, transports


# name -> (the transport's call, the same collective of ftrans.lax over a vmap axis "i", the examples' shape
# for n ranks)
CASES = {
    "psum": (lambda t, x: t.allreduce("psum", x), lambda v: lax.psum(v, "i"), lambda n: (3, 2)),
    "psum_scalar": (lambda t, x: t.allreduce("psum", x), lambda v: lax.psum(v, "i"), lambda n: ()),
    "pmax": (lambda t, x: t.allreduce("pmax", x), lambda v: lax.pmax(v, "i"), lambda n: (4,)),
    "pmin": (lambda t, x: t.allreduce("pmin", x), lambda v: lax.pmin(v, "i"), lambda n: (4,)),
    "all_gather": (lambda t, x: t.all_gather(x, axis=1, tiled=False), lambda v: lax.all_gather(v, "i", axis=1),
                   lambda n: (2, 3)),
    "all_gather_tiled": (lambda t, x: t.all_gather(x, axis=1, tiled=True),
                         lambda v: lax.all_gather(v, "i", axis=1, tiled=True), lambda n: (2, 3)),
    "psum_scatter": (lambda t, x: t.psum_scatter(x, scatter_dimension=0, tiled=False),
                     lambda v: lax.psum_scatter(v, "i"), lambda n: (n, 2)),
    "psum_scatter_tiled": (lambda t, x: t.psum_scatter(x, scatter_dimension=1, tiled=True),
                           lambda v: lax.psum_scatter(v, "i", scatter_dimension=1, tiled=True),
                           lambda n: (2, 2 * n)),
    "ppermute_ring": (lambda t, x: t.ppermute(x, perm=tuple((j, (j + 1) % t.size) for j in range(t.size))),
                      lambda v: lax.ppermute(v, "i", [(j, (j + 1) % v.shape[0]) for j in range(v.shape[0])]),
                      lambda n: (n, 3)),
    "ppermute_partial": (lambda t, x: t.ppermute(x, perm=((0, 1),)), lambda v: lax.ppermute(v, "i", [(0, 1)]),
                         lambda n: (2, 2)),
    "all_to_all": (lambda t, x: t.all_to_all(x, split_axis=0, concat_axis=1, tiled=False),
                   lambda v: lax.all_to_all(v, "i", 0, 1), lambda n: (n, 3)),
    "all_to_all_tiled": (lambda t, x: t.all_to_all(x, split_axis=1, concat_axis=0, tiled=True),
                         lambda v: lax.all_to_all(v, "i", 1, 0, tiled=True), lambda n: (2, 2 * n)),
}


@pytest.mark.parametrize("size", [2, 3])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", sorted(CASES))
def test_each_collective_over_nccl_equals_the_collective_over_a_vmap_axis(name, dtype, size):
    call, reference, shape = CASES[name]
    everyone = np.random.default_rng(size).standard_normal((size,) + shape(size)).astype(dtype)
    if name == "ppermute_ring":  # the reference's perm needs the axis size: the leading dimension is size
        want = ft.vmap(lambda v: lax.ppermute(v, "i", [(j, (j + 1) % size) for j in range(size)]),
                       axis_name="i")(everyone)
    else:
        want = ft.vmap(reference, axis_name="i")(everyone)
    _, _, _, transports = _transports(size)
    got = run_ranks(size, lambda rank: call(transports[rank], to_device(everyone[rank])))
    for rank in range(size):
        assert isinstance(got[rank], FakeDeviceArray), "results stay on the device"
        assert got[rank].dtype == dtype and got[rank].shape == want[rank].shape
        np.testing.assert_allclose(np.asarray(got[rank]), np.asarray(want[rank]), rtol=1e-6 if dtype == np.float32
                                   else 1e-15)


def test_bootstrap_broadcasts_rank_zeros_unique_id_and_every_rank_joins_with_it():
    nccl, _, comms, transports = _transports(3)
    assert [c for c in nccl.calls if c[0] == "get_unique_id"] == [("get_unique_id",)]  # rank 0 only
    assert sorted(c for c in nccl.calls if c[0] == "NcclCommunicator") == [("NcclCommunicator", 3, r)
                                                                           for r in range(3)]
    ids = [comm.broadcasts[0] for comm in comms]
    assert len(ids[0]) == 128 and ids[1] == ids[0] and ids[2] == ids[0]
    assert [t.rank for t in transports] == [0, 1, 2] and all(t.size == 3 for t in transports)


def test_allreduce_is_one_call_on_the_current_stream_with_the_element_type_and_count():
    nccl, cupy, _, transports = _transports(2)
    streams = run_ranks(2, lambda rank: (transports[rank].allreduce("pmax", to_device(np.ones((5, 7),
                                                                                         np.float32))),
                                         cupy.cuda.get_current_stream().ptr)[1])
    for rank in range(2):
        assert transports[rank].comm.calls == [("allReduce", 35, nccl.NCCL_FLOAT32, nccl.NCCL_MAX, streams[rank])]


def test_point_to_point_collectives_are_one_group_of_sends_and_receives():
    nccl, _, _, transports = _transports(3)
    run_ranks(3, lambda rank: transports[rank].all_to_all(to_device(np.zeros((3, 4), np.float64)), split_axis=0,
                                                          concat_axis=0, tiled=False))
    for t in transports:
        assert [c[0] for c in t.comm.calls] == ["send"] * 3 + ["recv"] * 3
        assert [c[1] for c in t.comm.calls] == [4 * 8] * 6 and [c[3] for c in t.comm.calls] == [0, 1, 2] * 2
    assert [c[0] for c in nccl.calls if c[0].startswith("group")] == ["groupStart", "groupEnd"] * 3


def test_data_movement_takes_every_dtype_and_reductions_name_the_one_nccl_lacks():
    _, _, _, transports = _transports(2)
    flags = np.array([[True, False], [False, False]])
    got = run_ranks(2, lambda rank: transports[rank].all_gather(to_device(flags[rank]), axis=0, tiled=False))
    np.testing.assert_array_equal(np.asarray(got[1]), flags)
    z = np.array([[1 + 2j], [3 - 1j]])
    got = run_ranks(2, lambda rank: transports[rank].ppermute(to_device(z[rank]), perm=((0, 1), (1, 0))))
    np.testing.assert_array_equal(np.asarray(got[0]), z[1])
    with pytest.raises(TypeError, match="NCCL has no int16 reduction"):
        transports[0].allreduce("psum", to_device(np.ones(3, np.int16)))


def test_a_peer_that_never_comes_aborts_the_communicator_after_the_timeout():
    world, comms = thread_worlds(1)
    nccl, cupy = FakeNccl(world), fake_cupy()
    transport = _nccl.NcclTransport(comms[0], cupy, nccl, timeout=0.05)
    cupy.cuda.get_current_stream().hangs = True  # the call never completes on the device
    with pytest.raises(TimeoutError, match="restart it from a checkpoint"):
        transport.allreduce("psum", to_device(np.ones(2)))
    assert transport.comm.calls[-1] == ("abort",)


# -------------------- dispatch: ftrans.distributed's process backend --------------------

def _backends(size, monkeypatch):
    world, comms = thread_worlds(size)
    nccl, cupy = FakeNccl(world), fake_cupy()
    monkeypatch.setattr(_nccl, "load_cupy_nccl", lambda: (cupy, nccl))
    return nccl, comms, [distributed._MpiBackend(FAKE_MPI, comm) for comm in comms]


def test_device_buffers_go_to_nccl_and_host_buffers_to_mpi(monkeypatch):
    nccl, comms, backends = _backends(2, monkeypatch)
    axis = axis_env.BoundAxis("i", 2, "process")
    x = np.arange(6.0).reshape(2, 3)

    def step(rank):
        on_device = backends[rank].psum(to_device(x * (rank + 1)), bound_axis=axis)
        gathered = backends[rank].all_gather(to_device(x[rank]), bound_axis=axis, axis=0, tiled=False)
        on_host = backends[rank].psum(x * (rank + 1), bound_axis=axis)
        return on_device, gathered, on_host
    results = run_ranks(2, step)
    for on_device, gathered, on_host in results:
        assert isinstance(on_device, FakeDeviceArray) and type(on_host) is np.ndarray
        np.testing.assert_array_equal(np.asarray(on_device), 3 * x)
        np.testing.assert_array_equal(np.asarray(gathered), x)
        np.testing.assert_array_equal(on_host, 3 * x)
    assert sorted(comms[0].host_calls) == [("Iallreduce", 0), ("Iallreduce", 1)]  # only the host psum
    assert [c[0] for c in nccl.calls if c[0] in ("allReduce", "allGather")] == ["allReduce"] * 2 + ["allGather"] * 2
    # one NCCL communicator per axis, made on first use and kept
    assert [len(b._nccl) for b in backends] == [1, 1] and len([c for c in nccl.calls
                                                               if c[0] == "NcclCommunicator"]) == 2


def test_debug_collectives_catches_a_device_and_a_host_buffer_meeting(monkeypatch):
    _, _, backends = _backends(2, monkeypatch)
    axis = axis_env.BoundAxis("i", 2, "process")
    monkeypatch.setattr(ir_config, "debug_collectives", True)

    def step(rank):
        x = np.ones(3)
        try:
            backends[rank].psum(to_device(x) if rank == 0 else x, bound_axis=axis)
        except distributed.CollectiveMismatchError as error:
            return str(error)
    messages = run_ranks(2, step)
    for message in messages:
        assert "on device" in message and "on host" in message


def test_eager_shard_map_on_device_buffers_reaches_nccl(monkeypatch):
    """The primitive's implementation (as a jit with backend "cupy" calls it) hands a CuPy operand
    of a process axis to NCCL; one rank here (the others are the mpiexec tests)."""
    nccl, comms, backends = _backends(1, monkeypatch)
    monkeypatch.setattr(distributed, "_state", backends[0])
    from ir.primitives import collectives
    monkeypatch.setattr(collectives, "process_backend", backends[0])
    x = to_device(np.arange(4.0))
    out = ft.shard_map(lambda v: lax.psum(v, "i"), axis_name="i")(x)
    assert isinstance(out, FakeDeviceArray)
    np.testing.assert_array_equal(np.asarray(out), np.arange(4.0))
    assert [c[0] for c in nccl.calls][-1] == "allReduce" and comms[0].host_calls == []


# -------------------- under mpiexec: fake NCCL over MPI; real NCCL on two GPUs --------------------

def _gpu_count():
    try:
        import cupy
        return cupy.cuda.runtime.getDeviceCount()
    except Exception:  # no CuPy, no driver: CuPy raises its own CUDARuntimeError
        return 0


def _mpiexec(mode):
    pytest.importorskip("mpi4py")
    if shutil.which("mpiexec") is None:
        pytest.skip("no mpiexec on PATH (pip install '.[mpi]')")
    from test_distributed import assert_ok
    return assert_ok("tests/distributed/nccl_values.py", mode)


def test_two_processes_through_the_fake_nccl_over_mpi():
    output = _mpiexec("fake")
    assert "rank 0: nccl collectives ok" in output and "rank 1: nccl collectives ok" in output


@pytest.mark.skipif(_gpu_count() < 2, reason="needs CuPy and at least two GPUs")
def test_two_processes_on_two_gpus_through_real_nccl():
    output = _mpiexec("gpu")
    assert "rank 0: nccl collectives ok" in output and "rank 1: nccl collectives ok" in output


# -------------------- one fused collective for a pytree over processes --------------------

def _one_process(monkeypatch):
    nccl, comms, backends = _backends(1, monkeypatch)
    monkeypatch.setattr(distributed, "_state", backends[0])
    from ir.primitives import collectives
    monkeypatch.setattr(collectives, "process_backend", backends[0])
    return comms[0]


def test_pmean_of_a_pytree_over_processes_is_one_allreduce_per_dtype(monkeypatch):
    comm = _one_process(monkeypatch)
    tree = {"w": np.arange(6.0).reshape(2, 3), "b": np.ones(3), "s": np.float64(2.5),
            "n": np.arange(4, dtype=np.float32), "m": np.ones((2, 2), np.float32)}
    step = ft.shard_map(lambda t: lax.pmean(t, "i"), axis_name="i")
    closed = ft.make_jaxpr(step)(tree)
    assert [e.primitive.name for e in closed.jaxpr.eqns].count("psum") == 2  # float64 and float32
    for how in (step, ft.jit(step)):
        comm.host_calls.clear()
        got = how(tree)
        assert len(comm.host_calls) == 2
        for k in tree:
            assert np.asarray(got[k]).dtype == np.asarray(tree[k]).dtype and np.shape(got[k]) == np.shape(tree[k])
            np.testing.assert_array_equal(got[k], tree[k])
    # and its derivative is the per-leaf one: pmean's transpose (one process: the identity)
    grads = ft.grad(lambda t: sum(fnp.sum(v * v) for v in ft.tree_util.tree_leaves(step(t))))(tree)
    for k in tree:
        np.testing.assert_allclose(grads[k], 2 * np.asarray(tree[k]), rtol=1e-6)


def test_over_a_vmap_axis_a_pytree_keeps_one_collective_per_leaf():
    tree = (np.ones((3, 2)), np.ones((3, 4)))
    jaxpr = ft.make_jaxpr(ft.vmap(lambda t: lax.psum(t, "i"), axis_name="i"))(tree).jaxpr
    assert "concatenate" not in [e.primitive.name for e in jaxpr.eqns]
