"""shard_map, pmap, Mesh and PartitionSpec in one process: their argument errors (tests/test_distributed.py
runs them across processes)."""
import numpy as np
import pytest

import ftrans as ft
from ftrans.sharding import Mesh, PartitionSpec as P


def test_partition_spec_entries_are_names_or_none():
    assert P("i", None) == ("i", None) and repr(P("i")) == "PartitionSpec('i')"
    with pytest.raises(TypeError, match="mesh axis names"):
        P(0)


def test_mesh_names_one_axis_over_the_processes():
    mesh = Mesh(np.arange(ft.distributed.process_count()), ("i",))
    assert mesh.shape == {"i": 1} and mesh.size == 1
    with pytest.raises(ValueError, match="as many axis names"):
        Mesh(np.arange(1), ("i", "j"))
    with pytest.raises(ValueError, match="process indices in order"):
        Mesh(np.arange(3), ("i",))
    assert Mesh(np.arange(1).reshape(1, 1), ("data", "model")).shape == {"data": 1, "model": 1}
    with pytest.raises(ValueError, match="repeated axis name"):
        Mesh(np.arange(1).reshape(1, 1), ("i", "i"))


def test_shard_map_argument_errors():
    with pytest.raises(TypeError, match="expected a callable"):
        ft.shard_map(3, axis_name="i")
    with pytest.raises(TypeError, match="either mesh"):
        ft.shard_map(lambda x: x, Mesh(np.arange(1), "i"), P(), P(), axis_name="i")
    with pytest.raises(TypeError, match="needs mesh"):
        ft.shard_map(lambda x: x, Mesh(np.arange(1), "i"))


def test_shard_map_before_initialize_says_so(monkeypatch):
    monkeypatch.setattr(ft.distributed, "_state", None)  # (examples/data_parallel.py initializes, in test_examples)
    with pytest.raises(RuntimeError, match="initialize"):
        ft.shard_map(lambda x: ft.lax.psum(x, "i"), axis_name="i")(np.ones(3))


def test_collective_outside_any_binding_is_a_trace_time_name_error():
    with pytest.raises(NameError, match="unbound axis name 'i'"):
        ft.jit(lambda x: ft.lax.psum(x, "i"))(np.ones(3))
