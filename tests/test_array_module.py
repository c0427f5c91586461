"""Implementations take their array module from their inputs (CuPy's on the
GPU), and on the CPU they compute exactly what NumPy did before.

CuPy is never needed here: a CuPy array is recognized by its type's module,
and `array_module` imports `cupy` only once it has seen one, so a stand-in
module in `sys.modules` shows which module was picked. tests/test_gpu.py runs
the same code on a real GPU.
"""
import sys
import types

import numpy as np
import pytest

import ir
from ir.core import Array, ShapedArray, array_module, common_arrays, concrete_aval, is_cupy_array
from ir.primitives import ad_util


class FakeCupyArray:
    """Looks like a cupy.ndarray to code that must not import CuPy."""
    __module__ = "cupy._core.core"
    __cuda_array_interface__ = {}
    shape, dtype = (3,), np.dtype(np.float32)


@pytest.fixture
def fake_cupy(monkeypatch):
    """A stand-in `cupy` module that records what it is asked to make."""
    module = types.ModuleType("cupy")
    module.asarray = lambda x: ("on the GPU", x)
    module.zeros = lambda shape, dtype: ("zeros on the GPU", shape, np.dtype(dtype))
    monkeypatch.setitem(sys.modules, "cupy", module)
    return module


def test_host_values_compute_with_numpy():
    host = [np.ones(2), np.float32(1), np.int64(2), np.bool_(True), 2.0, 3, True, None]
    assert array_module(*host) is np
    assert array_module() is np
    assert not any(is_cupy_array(x) for x in host)


def test_a_cupy_array_is_recognized_by_its_type_and_picks_cupy(fake_cupy):
    assert is_cupy_array(FakeCupyArray())
    assert array_module(np.ones(2), 2.0, FakeCupyArray()) is fake_cupy


def test_the_aval_of_a_cupy_array_is_its_shape_and_dtype():
    assert concrete_aval(FakeCupyArray()) is ShapedArray((3,), np.float32, weak_type=False)


def test_numpy_operands_follow_cupy_ones_to_the_gpu(fake_cupy):
    x, cupy_x = np.ones(2), FakeCupyArray()
    args = (x, np.float32(2), cupy_x)
    assert common_arrays(*args[:2]) == (np, args[:2])  # all NumPy: untouched
    xp, moved = common_arrays(*args)
    assert xp is fake_cupy and moved == [("on the GPU", x), np.float32(2), cupy_x]


def test_zeros_are_made_where_the_values_they_meet_are(fake_cupy):
    aval = ShapedArray((2, 3), np.float32)
    zeros = ad_util.zeros(aval, like=np.ones(3))
    assert type(zeros) is Array and zeros.dtype == np.float32
    np.testing.assert_array_equal(zeros, np.zeros((2, 3), np.float32))
    assert ad_util.zeros(aval, like=FakeCupyArray()) == ("zeros on the GPU", (2, 3), np.dtype(np.float32))
    assert ad_util.zeros(ShapedArray((2,), ir.core.float0), like=FakeCupyArray()).dtype == ir.core.float0


# -------------------- on the CPU, exactly what NumPy computed before --------------------

_F32 = np.arange(6, dtype=np.float32).reshape(2, 3) - 2
_ROWS = np.array([[1], [0], [5], [-1]])


def _broadcast(x, shape, dims):
    expanded = [1] * len(shape)
    for i, d in enumerate(dims):
        expanded[d] = np.shape(x)[i]
    return np.array(np.broadcast_to(np.reshape(x, expanded), shape))


def _scatter_add(operand, indices, updates):
    result, keep = operand.copy(), (indices[:, 0] >= 0) & (indices[:, 0] < len(operand))
    np.add.at(result, indices[keep, 0], updates[keep])
    return result


# (primitive, operands, params, what the implementation computed with NumPy alone), one per
# implementation that now asks for its array module; Python and NumPy scalars where they may come
IMPLS = [
    ("integer_pow", (2.0,), dict(y=3), np.power(np.asarray(2.0), 3.0)),
    ("integer_pow", (np.float32(1.5),), dict(y=2), np.power(np.asarray(np.float32(1.5)), np.float32(2))),
    ("integer_pow", (np.int32(3),), dict(y=2), np.power(np.asarray(np.int32(3)), np.int32(2))),
    ("integer_pow", (_F32,), dict(y=3), np.power(_F32, np.float32(3))),
    ("convert_element_type", (2.0,), dict(new_dtype=np.dtype(np.float32)), np.asarray(2.0).astype(np.float32)),
    ("convert_element_type", (np.float64(1.5),), dict(new_dtype=np.dtype(np.int32)), np.asarray(1.5).astype(np.int32)),
    ("convert_element_type", (_F32,), dict(new_dtype=np.dtype(np.float64)), _F32.astype(np.float64)),
    ("select_n", (np.True_, np.float32(1), np.float32(2)), {}, np.where(np.True_, np.float32(2), np.float32(1))),
    ("select_n", (_F32 > 0, _F32, -_F32), {}, np.where(_F32 > 0, -_F32, _F32)),
    ("broadcast_in_dim", (np.float32(0),), dict(shape=(), broadcast_dimensions=()), np.array(np.float32(0))),
    ("broadcast_in_dim", (np.float64(1),), dict(shape=(2, 3), broadcast_dimensions=()), np.ones((2, 3))),
    ("broadcast_in_dim", (_F32[0],), dict(shape=(2, 2, 3), broadcast_dimensions=(2,)),
     _broadcast(_F32[0], (2, 2, 3), (2,))),
    ("concatenate", (_F32, _F32 * 2), dict(dimension=1), np.concatenate([_F32, _F32 * 2], axis=1)),
    ("pad", (_F32, np.float32(9)), dict(padding_config=((1, 0, 1), (0, 2, 0))),
     np.array([[9] * 5, [-2, -1, 0, 9, 9], [9] * 5, [1, 2, 3, 9, 9]], np.float32)),
    ("pad", (np.float32(1), np.float32(0)), dict(padding_config=()), np.array(np.float32(1))),
    ("reduce_max", (_F32,), dict(axes=(0, 1)), np.max(_F32, axis=(0, 1), initial=-np.inf)),
    ("reduce_min", (_F32,), dict(axes=(1,)), np.min(_F32, axis=(1,), initial=np.inf)),
    ("reduce_max", (np.zeros((0, 2), np.int32),), dict(axes=(0,)), np.full(2, np.iinfo(np.int32).min, np.int32)),
    ("dot_general", (_F32[0], _F32[1]), dict(dimension_numbers=(((0,), (0,)), ((), ()))),
     np.matmul(_F32[0].reshape(1, 1, 3), _F32[1].reshape(1, 3, 1)).reshape(())),
    ("dot_general", (_F32, _F32), dict(dimension_numbers=(((1,), (1,)), ((), ()))), _F32 @ _F32.T),
    ("gather", (_F32[0], _ROWS), dict(mode="clip"), _F32[0][np.clip(_ROWS[:, 0], 0, 2)]),
    ("gather", (_F32[0], _ROWS), dict(mode="fill", fill_value=None), np.array([-1, -2, np.nan, np.nan], np.float32)),
    ("scatter_add", (_F32[0], _ROWS, np.ones(4, np.float32)), {},
     _scatter_add(_F32[0], _ROWS, np.ones(4, np.float32))),
    ("scatter", (_F32[0], _ROWS[:2], np.full(2, 7, np.float32)), {}, np.array([7, 7, 0], np.float32)),
]


@pytest.mark.parametrize("name, args, params, expected", IMPLS, ids=[row[0] for row in IMPLS])
def test_implementations_return_what_numpy_did(name, args, params, expected):
    out = ir.PRIMITIVES[name].impl(*args, **params)
    assert type(out) is type(expected) and out.dtype == expected.dtype
    np.testing.assert_array_equal(out, expected)
