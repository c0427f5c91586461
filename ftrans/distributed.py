"""`ft.distributed`: several processes running one SPMD program, meeting in collectives.

    import ftrans as ft
    ft.distributed.initialize()            # MPI through mpi4py; rank and size from the launcher
    ft.distributed.process_index()         # this process's rank
    ft.shard_map(step, axis_name="i")(x)   # psum(x, "i") inside step is an MPI Allreduce

Launched as `mpiexec -n 2 python script.py`. `initialize` installs the process
backend of ir/primitives/collectives.py: while `shard_map`/`pmap` bind an axis
with kind "process", each collective over it is one MPI call on NumPy buffers
(Allreduce, Allgather, Reduce_scatter_block, point-to-point sends for ppermute,
Alltoall), and on CuPy buffers one NCCL call (ftrans/_nccl.py: the operand's
type picks the transport; `initialize` gives each process the GPU of its local
rank). Under `jit` a collective is a call of its implementation in the
generated code, in program order, so every rank issues the same calls in the
same order and no reordering can deadlock.

Faults: `ft.config.update("debug_collectives", True)` exchanges each
collective's signature (primitive, shape, dtype, params) first and raises a
ValueError on every rank when they differ, instead of a hang or garbage; with
`initialize(timeout=seconds)` (or env FTRANS_COLLECTIVE_TIMEOUT) every
collective (a nonblocking request, polled) has a deadline, and a rank
whose peers never arrive (dead, or stuck) raises a TimeoutError. MPI itself
cannot recover the job after that (docs/distributed.md): the error is there so
the job fails and is restarted from a checkpoint rather than hangs.
"""
from __future__ import annotations

import hashlib
import os
import sys
import time

import numpy as np

from ftrans import _nccl
from ir import axis_env
from ir import config as _ir_config
from ir.core import is_cupy_array
from ir.errors import at_user_line
from ir.primitives import collectives

_state = None  # the _MpiBackend once initialize() has run
# collectives of RENDEZVOUS_BYTES to RENDEZVOUS_MAX_BYTES: wait for every rank asleep, then spin (_run)
RENDEZVOUS_BYTES, RENDEZVOUS_MAX_BYTES = 2**16, 2**24
TRANSFER_SPIN = 2e-3  # seconds a transfer is spun on once every rank has arrived, before polling asleep


def _mpi():
    try:
        from mpi4py import MPI
    except ImportError:
        raise ImportError("ft.distributed needs mpi4py and an MPI library: pip install 'ftrans[mpi]' "
                          "(mpi4py and mpich wheels)") from None
    return MPI


def initialize(timeout=None):
    """Join the processes the launcher started (mpiexec); idempotent.

    `timeout`: seconds a collective may wait for its peers before a TimeoutError (None: wait forever,
    the fastest; default from env FTRANS_COLLECTIVE_TIMEOUT).
    """
    global _state
    if timeout is None and os.environ.get("FTRANS_COLLECTIVE_TIMEOUT"):
        timeout = float(os.environ["FTRANS_COLLECTIVE_TIMEOUT"])
    if timeout is not None and not (isinstance(timeout, (int, float)) and timeout > 0):
        raise ValueError(at_user_line(f"initialize: timeout must be a positive number of seconds, got {timeout!r}"))
    if _state is None:
        MPI = _mpi()
        _state = _MpiBackend(MPI, MPI.COMM_WORLD)
        collectives.process_backend = _state
        _use_local_gpu(_state.local_rank)
    _state.timeout = None if timeout is None else float(timeout)
    return None


def _use_local_gpu(local_rank):
    """One GPU per process: the process of local rank r (its index among the processes of its host)
    computes on GPU r (modulo the host's GPUs), so NCCL joins distinct devices. Only where CuPy is
    installed: others never import it."""
    import importlib.util
    if importlib.util.find_spec("cupy") is None:
        return
    from ftrans._device import gpu_available
    if gpu_available():
        import cupy
        cupy.cuda.Device(local_rank % cupy.cuda.runtime.getDeviceCount()).use()


def is_initialized():
    return _state is not None


def _backend(what):
    if _state is None:
        raise RuntimeError(at_user_line(f"{what}: call ft.distributed.initialize() first (under mpiexec)"))
    return _state


def process_index():
    """This process's rank (0 before initialize, as JAX's single process)."""
    return 0 if _state is None else _state.rank


def process_count():
    return 1 if _state is None else _state.size


def set_timeout(timeout):
    """Seconds a collective waits for its peers (None: forever)."""
    _backend("set_timeout").timeout = None if timeout is None else float(timeout)


def bind_process_axis(name, what, comm=None):
    """The axis binding of `name` over the processes of `comm` (default: all), remembered so that a
    collective run after the binding has ended (a jitted call, a backward pass) still finds it."""
    backend = _backend(what)
    comm = backend.comm if comm is None else comm
    backend.axes[name] = axis_env.BoundAxis(name, comm.Get_size(), "process")
    backend.comms[name] = comm
    return axis_env.binding(name, comm.Get_size(), "process")


def mesh_communicators(shape):
    """One communicator per axis of a process mesh of `shape` (row-major over the ranks): axis k's
    joins the processes whose other coordinates are equal. Returns (communicators, this rank's coordinates)."""
    backend = _backend("Mesh")
    coords = tuple(int(c) for c in np.unravel_index(backend.rank, shape))
    comms = []
    for k in range(len(shape)):
        others = coords[:k] + coords[k + 1:]
        color = int(np.ravel_multi_index(others, shape[:k] + shape[k + 1:])) if others else 0
        comms.append(backend.comm if len(shape) == 1 else backend.comm.Split(color, coords[k]))
    return comms, coords


class CollectiveMismatchError(ValueError):
    """Ranks called different collectives (shapes, dtypes or params differ)."""


class _MpiBackend:
    """One method per collective primitive, each on NumPy buffers: `method(x, bound_axis=BoundAxis, **params)`."""

    def __init__(self, MPI, comm):
        self.MPI, self.comm = MPI, comm
        self.rank, self.size = comm.Get_rank(), comm.Get_size()
        # this process's index among those of its host (one GPU each)
        self.local_rank = comm.Split_type(MPI.COMM_TYPE_SHARED).Get_rank()
        self.timeout = None
        self._nccl = {}  # (axis name, communicator handle) -> NcclTransport, made on first use
        self.axes = {}   # axis name -> BoundAxis
        self.comms = {}  # axis name -> its communicator (a mesh axis: a part of the world)
        self._spares = {}  # (shape, dtype) -> a large output buffer, reused once nothing else holds it

    def _output(self, shape, dtype):
        """An output buffer: a fresh one, or for large ones the previous result of that shape when no one
        holds it any more (a 100 MB np.empty costs its page faults on every call, ~20% of an Allreduce)."""
        shape, dtype = tuple(shape), np.dtype(dtype)
        if int(np.prod(shape)) * dtype.itemsize < 2**20:
            return np.empty(shape, dtype)
        key = (shape, dtype.str)
        spare = self._spares.get(key)
        # references: the dict, `spare`, getrefcount's argument; a view or any other holder adds one
        if spare is not None and sys.getrefcount(spare) == 3:
            return spare
        if len(self._spares) >= 8:
            self._spares.pop(next(iter(self._spares)))
        self._spares[key] = out = np.empty(shape, dtype)
        return out

    def registered_axis(self, name):
        return self.axes.get(name)

    def _comm(self, bound_axis):
        return self.comms.get(bound_axis.name, self.comm)

    # -------------------- waiting, checking --------------------

    def _wait(self, request, what, deadline=None):
        """Wait for a nonblocking request, polling (after a short spin, with sleeps that give the core to
        the other ranks: on an oversubscribed machine that is faster than MPI's own spinning wait, and
        than a spin of 1000 tests, by 5-10% of a data-parallel step at load 10 on 2 cores), or raise
        TimeoutError past the deadline (`deadline`, or the timeout from now)."""
        if deadline is None and self.timeout is not None:
            deadline = time.monotonic() + self.timeout
        spins = 0
        while not request.Test():
            spins += 1
            if spins > 50:
                time.sleep(5e-5)
                if deadline is not None and time.monotonic() > deadline:
                    raise TimeoutError(f"{what}: rank {self.rank} waited {self.timeout:g} s for the other "
                                       "processes (one is dead, stuck, or calls a different collective); the "
                                       "job cannot continue: restart it from a checkpoint")

    def _run(self, what, nonblocking, *args, **kwargs):
        """One collective, `nonblocking` (a method of the communicator) on `args` (the send buffer first).
        A large one (RENDEZVOUS_BYTES to RENDEZVOUS_MAX_BYTES) waits for the other ranks first, asleep
        (an Ibarrier), and then spins on the transfer (yielding the core to any process waiting for
        one) for up to TRANSFER_SPIN seconds: the transfer is many exchanges through shared memory, each of which
        waits for the peer's next test, and a peer that sleeps between tests slows each. The late rank's
        time in the gradients' Allreduce of the data-parallel benchmark (2.4 MB, its peer 2 ms early):
        0.73-0.78 ms against 1.08-1.14 ms, best of 60 interleaved, medians alike, at load 6.7. Larger
        transfers are long and bound by memory bandwidth: polled asleep, a psum of 100 MB takes what
        mpi4py's blocking Allreduce does, and spinning them only took cores from other processes
        (3-15 ms more at load 6)."""
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        if not RENDEZVOUS_BYTES <= getattr(args[0], "nbytes", 0) <= RENDEZVOUS_MAX_BYTES:
            self._wait(nonblocking(*args, **kwargs), what, deadline)
            return
        self._wait(nonblocking.__self__.Ibarrier(), what, deadline)
        request = nonblocking(*args, **kwargs)
        spin_until = time.perf_counter() + TRANSFER_SPIN
        while not request.Test():
            os.sched_yield()  # the core to a process that waits for one (the peer, on a loaded machine)
            if time.perf_counter() > spin_until:
                self._wait(request, what, deadline)
                return

    def _check(self, what, comm, x, params):
        """With debug_collectives on: every rank's signature equal, else a ValueError on every rank."""
        if not _ir_config.debug_collectives:
            return
        where = "device" if is_cupy_array(x) else "host"
        signature = f"{what} {tuple(x.shape)} {x.dtype} on {where} {sorted(params.items())}"
        digest = np.frombuffer(hashlib.sha256(signature.encode()).digest()[:8], np.int64).copy()
        digests = np.empty(comm.Get_size(), np.int64)
        self._run(what, comm.Iallgather, digest, digests)
        if np.all(digests == digests[0]):
            return
        signatures = comm.allgather(signature)  # every rank is here: the digests arrived
        lines = "\n".join(f"  rank {r}: {s}" for r, s in enumerate(signatures))
        raise CollectiveMismatchError(f"{what}: the processes called different collectives (debug_collectives):\n"
                                      f"{lines}")

    def _device(self, bound_axis, x):
        """The NCCL transport for a CuPy operand (made on first use: every rank of the communicator gets
        here in the same program order), None for host buffers, which MPI moves."""
        if not is_cupy_array(x):
            return None
        comm = self._comm(bound_axis)
        key = (bound_axis.name, comm.py2f())
        transport = self._nccl.get(key)
        if transport is None:
            cupy, nccl = _nccl.load_cupy_nccl()
            transport = self._nccl[key] = _nccl.NcclTransport(comm, cupy, nccl)
        transport.timeout = self.timeout
        return transport

    def _allreduce(self, what, bound_axis, x, op, params):
        comm = self._comm(bound_axis)
        self._check(what, comm, x, params)  # first: a device operand's first call makes its communicator
        device = self._device(bound_axis, x)
        if device is not None:
            return device.allreduce(what, x)
        x = np.asarray(x, order="C")
        out = self._output(x.shape, x.dtype)
        self._run(what, comm.Iallreduce, x, out, op=op)
        return out

    # -------------------- the collectives --------------------

    def psum(self, x, *, bound_axis):
        return self._allreduce("psum", bound_axis, x, self.MPI.SUM, {})

    def pmax(self, x, *, bound_axis):
        return self._allreduce("pmax", bound_axis, x, self.MPI.MAX, {})

    def pmin(self, x, *, bound_axis):
        return self._allreduce("pmin", bound_axis, x, self.MPI.MIN, {})

    def all_gather(self, x, *, bound_axis, **params):
        where, tiled = params["axis"], params["tiled"]
        comm = self._comm(bound_axis)
        self._check("all_gather", comm, x, params)
        device = self._device(bound_axis, x)
        if device is not None:
            return device.all_gather(x, axis=where, tiled=tiled)
        x = np.asarray(x, order="C")
        out = self._output((comm.Get_size(),) + x.shape, x.dtype)
        self._run("all_gather", comm.Iallgather, x, out)
        if tiled:
            return np.concatenate(list(out), axis=where)
        return np.moveaxis(out, 0, where)

    def psum_scatter(self, x, *, bound_axis, **params):
        dim, tiled = params["scatter_dimension"], params["tiled"]
        comm = self._comm(bound_axis)
        self._check("psum_scatter", comm, x, params)
        device = self._device(bound_axis, x)
        if device is not None:
            return device.psum_scatter(x, scatter_dimension=dim, tiled=tiled)
        # blocks along dim, moved first: (size, block, rest)
        blocks = np.asarray(_nccl.blocks_first(np, np.asarray(x), dim, comm.Get_size(), tiled), order="C")
        out = np.empty(blocks.shape[1:], x.dtype)
        self._run("psum_scatter", comm.Ireduce_scatter_block, blocks, out,
                  op=self.MPI.SUM)
        return out

    def ppermute(self, x, *, bound_axis, **params):
        perm = params["perm"]
        comm = self._comm(bound_axis)
        self._check("ppermute", comm, x, params)
        device = self._device(bound_axis, x)
        if device is not None:
            return device.ppermute(x, perm=perm)
        x = np.asarray(x, order="C")
        out = np.zeros_like(x)  # as JAX: a process no one sends to receives zeros
        me = comm.Get_rank()
        requests = [comm.Isend(x, dest=d, tag=7) for s, d in perm if s == me]
        requests += [comm.Irecv(out, source=s, tag=7) for s, d in perm if d == me]
        for request in requests:
            self._wait(request, "ppermute")
        return out

    def all_to_all(self, x, *, bound_axis, **params):
        split, concat, tiled = params["split_axis"], params["concat_axis"], params["tiled"]
        comm = self._comm(bound_axis)
        self._check("all_to_all", comm, x, params)
        device = self._device(bound_axis, x)
        if device is not None:
            return device.all_to_all(x, split_axis=split, concat_axis=concat, tiled=tiled)
        # (destination, *block)
        send = np.asarray(_nccl.blocks_first(np, np.asarray(x), split, comm.Get_size(), tiled), order="C")
        received = np.empty_like(send)  # (source, *block)
        self._run("all_to_all", comm.Ialltoall, send, received)
        if tiled:
            return np.concatenate(list(received), axis=concat)
        return np.moveaxis(received, 0, concat)

    def axis_index(self, *, bound_axis):
        return np.asarray(self._comm(bound_axis).Get_rank(), np.int32)
