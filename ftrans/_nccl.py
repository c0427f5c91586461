"""Collectives on GPU (CuPy) buffers: NCCL through `cupy.cuda.nccl`.

`ftrans.distributed`'s process backend hands a collective to this transport
when its operand is a CuPy array (eagerly, or a library call of a jit with
backend "cupy"); NumPy operands stay on MPI. One `NcclTransport` per MPI
communicator (the world, or one axis of a mesh), made the first time a device
buffer meets a collective over it, which every rank of that communicator
reaches in the same program order:

- bootstrap: rank 0 asks NCCL for a unique id, MPI broadcasts it, and every
  rank joins `NcclCommunicator(size, id, rank)` on its current device
  (`initialize` made that device the process's local rank: one GPU per process);
- every call is enqueued on CuPy's current stream, so it runs after the kernels
  that produced its operand and before those that read its result, with no
  host synchronisation; with a timeout set, the host waits on an event after
  the call, and past the deadline aborts the communicator (NCCL's only way
  out of a collective whose peers never come) and raises TimeoutError;
- reductions use NCCL's element type; data movement (all_gather, ppermute,
  all_to_all) moves bytes, so it takes every dtype (bool, complex, int16);
- ppermute and all_to_all are point-to-point sends and receives inside one
  NCCL group (`groupStart`/`groupEnd`), which NCCL schedules together so a
  ring of sends cannot deadlock.

Layouts are those of the MPI backend: the gathered, scattered or exchanged
axis is made the leading one of a C-contiguous buffer, and moved back after.
"""
from __future__ import annotations

import time

import numpy as np

# NCCL's element types by NumPy dtype name (it has no int16, uint16, bool or complex reductions)
_REDUCTION_TYPES = {"int8": "NCCL_INT8", "uint8": "NCCL_UINT8", "int32": "NCCL_INT32", "uint32": "NCCL_UINT32",
                    "int64": "NCCL_INT64", "uint64": "NCCL_UINT64", "float16": "NCCL_FLOAT16",
                    "float32": "NCCL_FLOAT32", "float64": "NCCL_FLOAT64"}
_OPS = {"psum": "NCCL_SUM", "pmax": "NCCL_MAX", "pmin": "NCCL_MIN"}


def load_cupy_nccl():
    """(cupy, cupy.cuda.nccl); tests replace this with fakes."""
    try:
        import cupy
        from cupy.cuda import nccl
    except ImportError as error:
        raise RuntimeError("collectives on CuPy arrays need CuPy built with NCCL (pip install cupy-cuda12x; "
                           f"NCCL comes with it): {error}") from None
    if not getattr(nccl, "available", True):
        raise RuntimeError("collectives on CuPy arrays need NCCL, which this CuPy build lacks")
    return cupy, nccl


def _pointer(x):
    return x.data.ptr


class NcclTransport:
    """The collectives of one MPI communicator's processes, on device buffers, by NCCL."""

    def __init__(self, mpi_comm, cupy, nccl, timeout=None):
        self.xp, self.nccl = cupy, nccl
        self.rank, self.size = mpi_comm.Get_rank(), mpi_comm.Get_size()
        self.timeout = timeout
        unique_id = nccl.get_unique_id() if self.rank == 0 else None
        unique_id = mpi_comm.bcast(unique_id, root=0)
        self.comm = nccl.NcclCommunicator(self.size, unique_id, self.rank)

    # -------------------- streams, waiting --------------------

    def _stream(self):
        return self.xp.cuda.get_current_stream()

    def _finish(self, what, stream):
        """Nothing to wait for without a timeout (the result is ready in stream order); with one, wait
        for the call on the host, and abort the communicator past the deadline."""
        if self.timeout is None:
            return
        done = stream.record()
        deadline = time.monotonic() + self.timeout
        while not done.done:
            if time.monotonic() > deadline:
                self.comm.abort()
                raise TimeoutError(f"{what}: rank {self.rank} waited {self.timeout:g} s for the other processes "
                                   "on NCCL (one is dead, stuck, or calls a different collective); the NCCL "
                                   "communicator is aborted and the job cannot continue: restart it from a "
                                   "checkpoint")
            time.sleep(5e-5)

    def _reduction_type(self, what, x):
        name = _REDUCTION_TYPES.get(np.dtype(x.dtype).name)
        if name is None:
            raise TypeError(f"{what} over NCCL: NCCL has no {np.dtype(x.dtype).name} reduction "
                            "(convert to int32, float32 or float64 first)")
        return getattr(self.nccl, name)

    def _contiguous(self, x):
        # (a copy only when x is not C-contiguous; as NumPy's, it makes a 0-d array 1-d: shaped back)
        return self.xp.ascontiguousarray(x).reshape(x.shape)

    # -------------------- the collectives --------------------

    def allreduce(self, what, x):
        x = self._contiguous(x)
        out = self.xp.empty(x.shape, x.dtype)
        stream = self._stream()
        self.comm.allReduce(_pointer(x), _pointer(out), x.size, self._reduction_type(what, x),
                            getattr(self.nccl, _OPS[what]), stream.ptr)
        self._finish(what, stream)
        return out

    def all_gather(self, x, *, axis, tiled):
        x = self._contiguous(x)
        out = self.xp.empty((self.size,) + x.shape, x.dtype)
        stream = self._stream()
        self.comm.allGather(_pointer(x), _pointer(out), x.nbytes, self.nccl.NCCL_UINT8, stream.ptr)
        self._finish("all_gather", stream)
        if tiled:
            return self.xp.concatenate(list(out), axis=axis)
        return self.xp.moveaxis(out, 0, axis)

    def psum_scatter(self, x, *, scatter_dimension, tiled):
        blocks = self._contiguous(blocks_first(self.xp, x, scatter_dimension, self.size, tiled))
        out = self.xp.empty(blocks.shape[1:], x.dtype)
        stream = self._stream()
        self.comm.reduceScatter(_pointer(blocks), _pointer(out), out.size,
                                self._reduction_type("psum_scatter", x), self.nccl.NCCL_SUM, stream.ptr)
        self._finish("psum_scatter", stream)
        return out

    def _exchange(self, what, sends, receives):
        """Point-to-point transfers in one group: sends/receives are (buffer pointer, bytes, peer)."""
        stream = self._stream()
        self.nccl.groupStart()
        try:
            for pointer, count, peer in sends:
                self.comm.send(pointer, count, self.nccl.NCCL_UINT8, peer, stream.ptr)
            for pointer, count, peer in receives:
                self.comm.recv(pointer, count, self.nccl.NCCL_UINT8, peer, stream.ptr)
        finally:
            self.nccl.groupEnd()
        self._finish(what, stream)

    def ppermute(self, x, *, perm):
        x = self._contiguous(x)
        out = self.xp.zeros(x.shape, x.dtype)  # as JAX: a process no one sends to receives zeros
        self._exchange("ppermute", [(_pointer(x), x.nbytes, d) for s, d in perm if s == self.rank],
                       [(_pointer(out), out.nbytes, s) for s, d in perm if d == self.rank])
        return out

    def all_to_all(self, x, *, split_axis, concat_axis, tiled):
        send = self._contiguous(blocks_first(self.xp, x, split_axis, self.size, tiled))  # (destination, *block)
        received = self.xp.empty(send.shape, send.dtype)  # (source, *block)
        block = send.nbytes // self.size
        self._exchange("all_to_all", [(_pointer(send) + peer * block, block, peer) for peer in range(self.size)],
                       [(_pointer(received) + peer * block, block, peer) for peer in range(self.size)])
        if tiled:
            return self.xp.concatenate(list(received), axis=concat_axis)
        return self.xp.moveaxis(received, 0, concat_axis)


def blocks_first(xp, x, dim, count, tiled):
    """x with dimension `dim` split into `count` blocks (or, untiled, its entries) along a new leading axis."""
    if tiled:
        shape = x.shape[:dim] + (count, x.shape[dim] // count) + x.shape[dim + 1:]
        return xp.moveaxis(x.reshape(shape), dim, 0)
    return xp.moveaxis(x, dim, 0)
