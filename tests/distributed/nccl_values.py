"""Run under `mpiexec -n 2` by tests/test_nccl.py: collectives on device buffers go to NCCL, with the
values of the same collectives under vmap(axis_name=...). Mode "fake": tests/fake_nccl.py's CuPy and
NCCL, its ranks meeting through MPI (no GPU needed); mode "gpu": CuPy arrays on one GPU per process
and real NCCL, eagerly and under jit with backend "cupy"."""
import pathlib
import sys

import numpy as np

import ftrans as ft
from ftrans import _nccl

mode = sys.argv[1]
ft.distributed.initialize(timeout=60)
rank, n = ft.distributed.process_index(), ft.distributed.process_count()
if mode == "fake":
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
    from mpi4py import MPI

    import fake_nccl
    fake = fake_nccl.FakeNccl(lambda unique_id: fake_nccl.MpiWorld(MPI.COMM_WORLD))
    _nccl.load_cupy_nccl = lambda: (fake_nccl.fake_cupy(), fake)
    to_device, to_host = fake_nccl.to_device, np.asarray
else:
    import cupy
    assert cupy.cuda.Device().id == rank % cupy.cuda.runtime.getDeviceCount(), "one GPU per process"
    to_device, to_host = cupy.asarray, cupy.asnumpy

rng = np.random.default_rng(0)
everyone = rng.standard_normal((n, n, 6))  # row r: rank r's local value
cases = {
    "psum": lambda x: ft.lax.psum(x, "i"),
    "pmax": lambda x: ft.lax.pmax(x, "i"),
    "pmin": lambda x: ft.lax.pmin(x, "i"),
    "all_gather": lambda x: ft.lax.all_gather(x, "i", axis=1),
    "all_gather_tiled": lambda x: ft.lax.all_gather(x, "i", axis=1, tiled=True),
    "psum_scatter": lambda x: ft.lax.psum_scatter(x, "i"),
    "psum_scatter_tiled": lambda x: ft.lax.psum_scatter(x, "i", scatter_dimension=1, tiled=True),
    "ppermute": lambda x: ft.lax.ppermute(x, "i", [(j, (j + 1) % n) for j in range(n)]),
    "ppermute_partial": lambda x: ft.lax.ppermute(x, "i", [(0, 1)]),
    "all_to_all": lambda x: ft.lax.all_to_all(x, "i", 0, 1),
    "all_to_all_tiled": lambda x: ft.lax.all_to_all(x, "i", 1, 0, tiled=True),
}
if mode == "gpu":  # with kernels around the collectives: CuPy does those
    cases["pmean_of_sin"] = lambda x: ft.lax.pmean(ft.numpy.sin(x) * 2.0, "i")
    cases["axis_index"] = lambda x: x * ft.lax.axis_index("i")
for dtype in (np.float64, np.float32):
    for name, f in cases.items():
        expected = np.asarray(ft.vmap(f, axis_name="i")(everyone.astype(dtype)))[rank]
        mine = to_device(everyone[rank].astype(dtype))
        runs = {"eager": ft.shard_map(f, axis_name="i")}
        if mode == "gpu":
            runs["jit"] = ft.jit(ft.shard_map(f, axis_name="i"), backend="cupy")
        for how, run in runs.items():
            got = run(mine)
            assert type(got) is type(mine), (name, how, type(got))
            got = to_host(got)
            assert got.dtype == dtype and got.shape == expected.shape, (name, how, got.dtype, got.shape)
            assert np.allclose(got, expected, rtol=1e-6, atol=1e-6), (name, how)
if mode == "gpu":  # a gradient through psum on the device: the sum over processes of the local gradients
    grad = ft.grad(lambda w, x: ft.lax.psum(ft.numpy.sum(ft.numpy.tanh(w * x)), "i"))
    w = to_device(np.float64(0.3))
    got = float(to_host(ft.shard_map(grad, axis_name="i")(w, to_device(everyone[rank]))))
    want = sum(float(np.sum(everyone[r] * (1 - np.tanh(0.3 * everyone[r]) ** 2))) for r in range(n))
    assert abs(got - want) < 1e-9 * max(1.0, abs(want)), (got, want)
print(f"rank {rank}: nccl collectives ok", flush=True)
