"""`ft.sharding`: JAX's `Mesh` and `PartitionSpec`, over processes.

Each process is one device (an MPI rank), so a mesh is an array of process
indices with a name per dimension: `Mesh(np.arange(ft.distributed.process_count()), ("i",))`,
or `Mesh(np.arange(4).reshape(2, 2), ("data", "model"))` (ranks row-major; a
collective over "model" joins the processes of one row).
A `PartitionSpec` names, for each dimension of an array, the mesh axis it is
split along (or None: not split); `P()` is an array every process holds whole.
"""
from __future__ import annotations

import numpy as np

from ir.errors import at_user_line


class PartitionSpec(tuple):
    """One entry per array dimension: a mesh axis name, or None (that dimension is not split)."""

    def __new__(cls, *partitions):
        for p in partitions:
            if p is not None and type(p) is not str:
                raise TypeError(at_user_line(f"PartitionSpec entries are mesh axis names (str) or None, got {p!r}"))
        return super().__new__(cls, partitions)

    def __repr__(self):
        return "PartitionSpec(" + ", ".join(map(repr, self)) + ")"


P = PartitionSpec


class Mesh:
    """Processes laid out on named axes; `devices` holds each process index once."""

    def __init__(self, devices, axis_names):
        from ftrans import distributed
        devices = np.asarray(devices)
        axis_names = (axis_names,) if isinstance(axis_names, str) else tuple(axis_names)
        if devices.ndim != len(axis_names) or not all(type(n) is str for n in axis_names):
            raise ValueError(at_user_line(f"Mesh: {devices.ndim}-dimensional devices need as many axis names (str), "
                                          f"got {axis_names!r}"))
        if len(set(axis_names)) != len(axis_names):
            raise ValueError(at_user_line(f"Mesh: repeated axis name in {axis_names!r}"))
        count = distributed.process_count()
        if np.ravel(devices).tolist() != list(range(count)):  # coordinates follow the ranks, row-major
            raise ValueError(at_user_line(f"Mesh: devices must be the {count} process indices in order "
                                          f"(np.arange({count}).reshape(shape)), got {devices.tolist()!r}"))
        self.devices = devices
        self.axis_names = axis_names
        self._communicators = None

    def communicators(self):
        """(one MPI communicator per axis, this process's coordinates); made once, by every process."""
        from ftrans import distributed
        if self._communicators is None:
            self._communicators = distributed.mesh_communicators(self.devices.shape)
        return self._communicators

    @property
    def shape(self):
        return dict(zip(self.axis_names, self.devices.shape))

    @property
    def size(self):
        return int(self.devices.size)

    def __repr__(self):
        return f"Mesh(axis_names={self.axis_names!r}, shape={self.devices.shape!r})"
