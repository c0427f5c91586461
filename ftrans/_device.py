"""Where arrays live: `device_put` between NumPy (CPU) and CuPy (GPU), and the
choice of jit's backend from its inputs.

CuPy is imported only when a GPU is asked for; CuPy arrays are recognized by
their type's module, so that looking at arguments never imports it.
"""
from __future__ import annotations

import functools

import numpy as np

from ftrans.tree_util import tree_map
from interpreters.lowering_cupy import CUPY_NOT_INSTALLED
from ir.core import HOST_TYPES, is_cupy_array
from ir.errors import api_boundary, at_user_line
from ir.primitive import as_array

BACKENDS = (None, "numpy", "cupy")
_MOVE_HINT = ("move them to one device first: ft.device_put(x, device='gpu') for CuPy, "
              "ft.device_put(x, device='cpu') for NumPy")


def _is_numpy_array(x) -> bool:
    return isinstance(x, (np.ndarray, np.generic))


@functools.cache
def _gpu_problem():
    """Why no GPU can be used (None when one can): CuPy missing or no device."""
    try:
        import cupy
    except ImportError:
        return CUPY_NOT_INSTALLED
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as error:  # CuPy raises its CUDARuntimeError when there is no driver
        return f"CUDA reports no usable device ({type(error).__name__}: {error})"
    return None if count > 0 else "CUDA finds no GPU on this machine"


def gpu_available() -> bool:
    return _gpu_problem() is None


def _require_gpu(what):
    problem = _gpu_problem()
    if problem is not None:
        raise RuntimeError(at_user_line(f"{what} needs CuPy and an NVIDIA GPU: {problem}"))
    import cupy
    return cupy


@api_boundary
def device_put(x, device="gpu"):
    """`x` (a pytree) with its arrays on `device`: "gpu" copies NumPy arrays to
    CuPy arrays, "cpu" copies CuPy arrays to NumPy arrays (Arrays, as ftrans
    returns them; NumPy arrays there become Arrays viewing their data). Arrays
    already on the GPU, Python scalars and None stay as they are. A Device of
    ft.devices() names its platform."""
    platform = getattr(device, "platform", None)
    if isinstance(platform, str) and not isinstance(device, str):
        device = "gpu" if platform == "gpu" else "cpu"
    if device == "gpu":
        cupy = _require_gpu("device_put(x, device='gpu')")
        return tree_map(lambda leaf: cupy.asarray(leaf) if _is_numpy_array(leaf) else leaf, x)
    if device == "cpu":
        return tree_map(_on_cpu, x)
    raise ValueError(at_user_line(f"device_put: device must be 'cpu' or 'gpu', got {device!r}"))


def _on_cpu(leaf):
    if is_cupy_array(leaf):
        return as_array(leaf.get())
    return as_array(leaf) if _is_numpy_array(leaf) else leaf


def resolve_backend(leaves, backend=None, need_device=True) -> str:
    """"numpy" or "cupy": `backend` when given, else the one the array leaves
    live on (NumPy when there are none). Mixing NumPy and CuPy arrays under
    backend=None, or CuPy arrays under backend="numpy", is a TypeError that
    says how to move them. backend="cupy" without CuPy or a GPU is a
    RuntimeError, unless `need_device` is false (lowering, which only
    generates code, needs neither)."""
    if backend is None or backend == "numpy":
        for leaf in leaves:  # the common case, on every call: all on the host
            if type(leaf) not in HOST_TYPES:
                break
        else:
            return "numpy"
    elif backend == "cupy":
        if need_device:
            _require_gpu("jit(backend='cupy')")
        return "cupy"
    else:
        raise ValueError(at_user_line(f"jit: backend must be one of {BACKENDS}, got {backend!r}"))
    on_gpu = [i for i, leaf in enumerate(leaves) if is_cupy_array(leaf)]
    if not on_gpu:
        return "numpy"
    if backend == "numpy":
        raise TypeError(at_user_line(f"jit(backend='numpy') got CuPy arrays (leaves {on_gpu} of the "
                                     f"arguments): {_MOVE_HINT}"))
    on_cpu = [i for i, leaf in enumerate(leaves) if isinstance(leaf, np.ndarray)]
    if on_cpu:
        raise TypeError(at_user_line(f"jit got NumPy arrays (leaves {on_cpu} of the arguments) and CuPy "
                                     f"arrays (leaves {on_gpu}) together: {_MOVE_HINT}"))
    return "cupy"
