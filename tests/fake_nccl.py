"""A stand-in for CuPy and `cupy.cuda.nccl` on machines with no GPU, so that the NCCL code path of
ftrans/_nccl.py runs in tests: "device" arrays are NumPy arrays of a type that ftrans takes for
CuPy's (`is_cupy_array`), and the fake NCCL reads and writes them through the raw pointers and
byte counts it is given, as NCCL does, checking that each range lies inside a buffer the fake CuPy
allocated. Every call is recorded (`FakeNccl.calls`, per communicator `FakeCommunicator.calls`).

The ranks meet through `exchange(obj) -> [every rank's obj]`: threads of one process
(`ThreadWorld`) or the processes of an MPI run (`comm.allgather`).
"""
from __future__ import annotations

import collections
import ctypes
import itertools
import queue
import threading
import types

import numpy as np


# -------------------- device arrays and the fake cupy module --------------------

class FakeDeviceArray(np.ndarray):
    """A NumPy array that ftrans takes for a CuPy array (its type's module is "cupy...")."""
    __module__ = "cupy.fake"

    @property
    def __cuda_array_interface__(self):
        return {"shape": self.shape, "typestr": self.dtype.str, "data": (self.ctypes.data, False), "version": 3}

    @property
    def data(self):  # cupy's MemoryPointer: .ptr is the address
        return types.SimpleNamespace(ptr=self.ctypes.data)


_allocations = {}  # address -> (bytes, the array, kept alive so that addresses stay unique)
_allocations_lock = threading.Lock()


def _device(a):
    a = np.asarray(a).view(FakeDeviceArray)
    with _allocations_lock:
        _allocations[a.ctypes.data] = (a.nbytes, a)
    return a


def check_range(pointer, nbytes):
    """That [pointer, pointer + nbytes) lies inside one buffer the fake CuPy allocated."""
    if nbytes == 0:
        return
    with _allocations_lock:
        for start, (size, _) in _allocations.items():
            if start <= pointer and pointer + nbytes <= start + size:
                return
    raise AssertionError(f"fake NCCL: {nbytes} bytes at {pointer:#x} are not inside a device buffer")


def host_view(pointer, nbytes, dtype):
    check_range(pointer, nbytes)
    if nbytes == 0:
        return np.empty(0, dtype)
    return np.ctypeslib.as_array((ctypes.c_uint8 * nbytes).from_address(pointer)).view(dtype)


class FakeEvent:
    def __init__(self, stream):
        self.stream = stream

    @property
    def done(self):
        return not self.stream.hangs


class FakeStream:
    def __init__(self, ptr):
        self.ptr, self.hangs = ptr, False

    def record(self):
        return FakeEvent(self)


def fake_cupy():
    """A module object with the parts of CuPy that ftrans/_nccl.py uses, on FakeDeviceArrays."""
    streams = {}  # thread -> its current stream (CuPy's is per thread too)
    devices = []

    def current_stream():
        key = threading.get_ident()
        if key not in streams:
            streams[key] = FakeStream(0x5000 + len(streams))
        return streams[key]

    class Device:
        def __init__(self, index):
            self.index = index

        def use(self):
            devices.append(self.index)

    cuda = types.SimpleNamespace(get_current_stream=current_stream, Device=Device, used_devices=devices,
                                 runtime=types.SimpleNamespace(getDeviceCount=lambda: 2))
    return types.SimpleNamespace(
        cuda=cuda,
        asarray=lambda a, dtype=None, order=None: a if (isinstance(a, FakeDeviceArray) and a.flags.c_contiguous
                                                        and dtype is None) else _device(np.array(a, dtype, order="C")),
        ascontiguousarray=lambda a: _device(np.ascontiguousarray(a)),
        empty=lambda shape, dtype: _device(np.empty(shape, dtype)),
        zeros=lambda shape, dtype: _device(np.zeros(shape, dtype)),
        moveaxis=lambda a, source, destination: np.moveaxis(a, source, destination),
        concatenate=lambda arrays, axis=0: _device(np.concatenate([np.asarray(a) for a in arrays], axis)),
    )


def to_device(a):
    return _device(np.array(a, order="C"))


# -------------------- the fake nccl module --------------------

TYPES = {0: np.int8, 1: np.uint8, 2: np.int32, 3: np.uint32, 4: np.int64, 5: np.uint64, 6: np.float16,
         7: np.float32, 8: np.float64}
OPS = {0: np.add, 1: np.multiply, 2: np.maximum, 3: np.minimum}


class ThreadWorld:
    """How `size` threads of one process meet: `exchange` (each contributes an object, each gets all),
    `post(source, destination, obj)` and `take(source, destination)` (point to point, in order)."""

    def __init__(self, size):
        self.size, self.slots, self.barrier = size, [None] * size, threading.Barrier(size, timeout=30)
        self.mailboxes = collections.defaultdict(queue.Queue)

    def exchange(self, rank, obj):
        self.slots[rank] = obj
        self.barrier.wait()
        everyone = list(self.slots)
        self.barrier.wait()  # nobody overwrites a slot before all have read it
        return everyone

    def post(self, source, destination, obj):
        self.mailboxes[source, destination].put(obj)

    def take(self, source, destination):
        return self.mailboxes[source, destination].get(timeout=30)


class MpiWorld:
    """The same over the processes of an MPI communicator (pickled objects)."""

    def __init__(self, comm):
        self.comm = comm

    def exchange(self, rank, obj):
        return self.comm.allgather(obj)

    def post(self, source, destination, obj):
        self.comm.isend(obj, dest=destination, tag=91)  # buffered by MPI: the receive completes it

    def take(self, source, destination):
        return self.comm.recv(source=source, tag=91)


class FakeNccl:
    """The module `cupy.cuda.nccl`, as far as ftrans uses it. `world(unique_id)` -> the ThreadWorld or
    MpiWorld of the ranks that join a communicator with that id."""
    NCCL_INT8, NCCL_UINT8, NCCL_INT32, NCCL_UINT32, NCCL_INT64, NCCL_UINT64 = 0, 1, 2, 3, 4, 5
    NCCL_FLOAT16, NCCL_FLOAT32, NCCL_FLOAT64 = 6, 7, 8
    NCCL_SUM, NCCL_PROD, NCCL_MAX, NCCL_MIN = 0, 1, 2, 3
    available = True

    def __init__(self, world):
        self.world, self.calls = world, []
        self._ids = itertools.count(1)
        self._group = threading.local()
        fake = self

        class NcclCommunicator(FakeCommunicator):
            def __init__(self, ndev, unique_id, rank):
                super().__init__(fake, ndev, unique_id, rank)
        self.NcclCommunicator = NcclCommunicator

    def get_unique_id(self):
        self.calls.append(("get_unique_id",))
        return (next(self._ids),) + tuple(np.random.default_rng().integers(0, 256, 127).tolist())

    def groupStart(self):
        if getattr(self._group, "pending", None) is not None:
            raise AssertionError("fake NCCL: nested groupStart")
        self._group.pending = []
        self.calls.append(("groupStart",))

    def groupEnd(self):
        pending, self._group.pending = self._group.pending, None
        self.calls.append(("groupEnd",))
        by_communicator = {}
        for communicator, op in pending:
            by_communicator.setdefault(id(communicator), (communicator, []))[1].append(op)
        for communicator, ops in by_communicator.values():
            communicator._run_point_to_point(ops)

    def in_group(self):
        return getattr(self._group, "pending", None) is not None


class FakeCommunicator:
    def __init__(self, nccl, ndev, unique_id, rank):
        self.nccl, self.size, self.rank, self.calls = nccl, ndev, rank, []
        self.world = nccl.world(unique_id)
        self.exchange = lambda obj: self.world.exchange(rank, obj)
        ids = self.exchange(unique_id)
        assert all(i == unique_id for i in ids) and len(ids) == ndev, "ranks joined with different unique ids"
        self.aborted = False
        nccl.calls.append(("NcclCommunicator", ndev, rank))

    def _record(self, *call):
        assert not self.aborted, "fake NCCL: a call on an aborted communicator"
        self.calls.append(call)
        self.nccl.calls.append(call)

    def rank_id(self):
        return self.rank

    def abort(self):
        self._record("abort")
        self.aborted = True

    def allReduce(self, sendbuf, recvbuf, count, datatype, op, stream):
        self._record("allReduce", count, datatype, op, stream)
        dtype = np.dtype(TYPES[datatype])
        mine = host_view(sendbuf, count * dtype.itemsize, dtype).copy()
        everyone = self.exchange(mine)
        host_view(recvbuf, count * dtype.itemsize, dtype)[...] = OPS[op].reduce(np.stack(everyone), axis=0)

    def allGather(self, sendbuf, recvbuf, count, datatype, stream):
        self._record("allGather", count, datatype, stream)
        dtype = np.dtype(TYPES[datatype])
        everyone = self.exchange(host_view(sendbuf, count * dtype.itemsize, dtype).copy())
        host_view(recvbuf, self.size * count * dtype.itemsize, dtype)[...] = np.concatenate(everyone)

    def reduceScatter(self, sendbuf, recvbuf, recvcount, datatype, op, stream):
        self._record("reduceScatter", recvcount, datatype, op, stream)
        dtype = np.dtype(TYPES[datatype])
        everyone = self.exchange(host_view(sendbuf, self.size * recvcount * dtype.itemsize, dtype).copy())
        total = OPS[op].reduce(np.stack(everyone), axis=0)
        host_view(recvbuf, recvcount * dtype.itemsize, dtype)[...] = total[self.rank * recvcount:
                                                                           (self.rank + 1) * recvcount]

    # a send or receive alone would block until its peer's call: NCCL's rings need them in a group
    def send(self, sendbuf, count, datatype, peer, stream):
        self._point_to_point("send", sendbuf, count, datatype, peer, stream)

    def recv(self, recvbuf, count, datatype, peer, stream):
        self._point_to_point("recv", recvbuf, count, datatype, peer, stream)

    def _point_to_point(self, kind, pointer, count, datatype, peer, stream):
        self._record(kind, count, datatype, peer, stream)
        assert 0 <= peer < self.size, f"fake NCCL: {kind} to peer {peer} of {self.size}"
        nbytes = count * np.dtype(TYPES[datatype]).itemsize
        check_range(pointer, nbytes)
        if not self.nccl.in_group():
            raise AssertionError(f"fake NCCL: {kind} outside groupStart/groupEnd (a ring of them deadlocks)")
        self.nccl._group.pending.append((self, (kind, pointer, nbytes, peer)))

    def _run_point_to_point(self, ops):
        """NCCL's group semantics: every send of the group is posted before any receive waits."""
        for kind, pointer, nbytes, peer in ops:
            if kind == "send":
                self.world.post(self.rank, peer, host_view(pointer, nbytes, np.uint8).copy())
        for kind, pointer, nbytes, peer in ops:
            if kind == "recv":
                data = self.world.take(peer, self.rank)
                assert data.nbytes == nbytes, f"fake NCCL: {data.nbytes} bytes sent, {nbytes} received"
                host_view(pointer, nbytes, np.uint8)[...] = data


def thread_worlds(size):
    """`world` for FakeNccl, and a bcast-capable fake MPI communicator per rank, over `size` threads."""
    worlds = {}
    lock = threading.Lock()
    bootstrap = ThreadWorld(size)

    def world(unique_id):
        with lock:
            return worlds.setdefault(unique_id[0], ThreadWorld(size))
    host_calls = []
    comms = [FakeMpiComm(rank, size, lambda obj, rank=rank: bootstrap.exchange(rank, obj), host_calls)
             for rank in range(size)]
    return world, comms


class FakeMpiComm:
    """The parts of an mpi4py communicator that the NCCL bootstrap uses."""

    def __init__(self, rank, size, exchange, host_calls):
        self.rank, self.size, self.exchange, self.broadcasts, self.host_calls = rank, size, exchange, [], host_calls

    def Get_rank(self):
        return self.rank

    def Get_size(self):
        return self.size

    def bcast(self, obj, root=0):
        value = self.exchange(obj)[root]
        self.broadcasts.append(value)
        return value

    # (and what ftrans.distributed's host path calls, implemented with NumPy, recorded in `host_calls`)
    def Split_type(self, kind):
        return self

    def py2f(self):
        return 0

    def allgather(self, obj):
        return self.exchange(obj)

    def _host(self, name, x, out, combine):
        self.host_calls.append((name, self.rank))
        out[...] = combine(self.exchange(np.array(x))).reshape(out.shape)
        return types.SimpleNamespace(Test=lambda: True)

    def Iallreduce(self, x, out, op):
        return self._host("Iallreduce", x, out, lambda xs: OPS[op].reduce(np.stack(xs), axis=0))

    def Iallgather(self, x, out):
        return self._host("Iallgather", x, out, lambda xs: np.concatenate([a.ravel() for a in xs]))


FAKE_MPI = types.SimpleNamespace(COMM_TYPE_SHARED=0, SUM=0, MAX=2, MIN=3)


def run_ranks(size, body):
    """body(rank) on `size` threads at once; the results by rank (an exception in one is raised)."""
    results, errors = [None] * size, []

    def run(rank):
        try:
            results[rank] = body(rank)
        except BaseException as error:  # re-raised in the caller
            errors.append(error)
    threads = [threading.Thread(target=run, args=(rank,)) for rank in range(size)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    if errors:
        raise errors[0]
    return results
