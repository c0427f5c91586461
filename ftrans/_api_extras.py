"""JAX's smaller top-level helpers: eval_shape, ShapeDtypeStruct, linear_transpose,
block_until_ready, disable_jit, devices and device_get."""
from __future__ import annotations

import contextlib
import functools

import numpy as np

from ftrans._api_util import check_callable, check_outputs, flatten_args
from ftrans._config import jit_disabled
from ftrans._device import _gpu_problem, _on_cpu, gpu_available
from ftrans.tree_util import tree_flatten, tree_map, tree_unflatten
from ir.core import ShapedArray, is_cupy_array
from ir.errors import api_boundary, at_user_line
from ir.tracing import Tracer, stage


class ShapeDtypeStruct:
    """A shape and a dtype standing for an array: what eval_shape returns, and what it
    (and linear_transpose, make_jaxpr) may take in place of an array."""
    __slots__ = ("shape", "dtype", "weak_type")

    def __init__(self, shape, dtype, weak_type=False, sharding=None):
        self.shape = tuple(int(n) for n in shape)
        self.dtype = np.dtype(dtype)
        self.weak_type = bool(weak_type)

    @property
    def ndim(self):
        return len(self.shape)

    @property
    def size(self):
        return int(np.prod(self.shape, dtype=np.int64))

    def __eq__(self, other):
        return (isinstance(other, ShapeDtypeStruct) and self.shape == other.shape and self.dtype == other.dtype
                and self.weak_type == other.weak_type)

    def __hash__(self):
        return hash((self.shape, self.dtype, self.weak_type))

    def __repr__(self):
        weak = ", weak_type=True" if self.weak_type else ""
        return f"ShapeDtypeStruct(shape={self.shape}, dtype={self.dtype.name}{weak})"


def _struct_of(aval):
    return ShapeDtypeStruct(aval.shape, aval.dtype, aval.weak_type)


@api_boundary
def eval_shape(fun, *args, **kwargs):
    """The shapes and dtypes `fun(*args, **kwargs)` would return (a pytree of ShapeDtypeStruct),
    found by tracing, without computing anything. Arguments may be arrays or ShapeDtypeStructs."""
    check_callable(fun, "eval_shape")
    leaves, in_tree, in_avals = flatten_args(args, "eval_shape", kwargs=kwargs or None)
    in_avals = [ShapedArray(a.shape, a.dtype, getattr(leaf, "weak_type", False)) if isinstance(leaf, ShapeDtypeStruct)
                else a for a, leaf in zip(in_avals, leaves, strict=True)]
    out_trees = []

    def flat_fun(*tracers):
        values = tree_unflatten(in_tree, tracers)
        call_args, call_kwargs = values if kwargs else (values, {})
        out_leaves, out_tree = tree_flatten(fun(*call_args, **call_kwargs))
        check_outputs(out_leaves, "eval_shape")
        out_trees.append(out_tree)
        return out_leaves
    closed = stage(flat_fun, in_avals)
    return tree_unflatten(out_trees[0], [_struct_of(v.aval) for v in closed.jaxpr.outvars])


@api_boundary
def linear_transpose(fun, *primals, reduce_axes=()):
    """The transpose of the linear function `fun` at arguments shaped like `primals` (arrays or
    ShapeDtypeStructs): a function of an output cotangent returning the tuple of input cotangents."""
    check_callable(fun, "linear_transpose")
    from ftrans._autodiff import vjp
    zeros = tree_map(lambda p: np.zeros(p.shape, p.dtype) if isinstance(p, ShapeDtypeStruct)
                     else np.zeros(np.shape(p), np.result_type(p)), primals)
    for leaf in tree_flatten(zeros)[0]:
        if leaf.dtype.kind not in "fc":
            raise TypeError(at_user_line(f"linear_transpose: arguments must be floating-point or complex, got {leaf.dtype}"))
    out, pullback = vjp(fun, *zeros)
    out_tree = tree_flatten(out)[1]

    @api_boundary
    def transposed(*cotangent):
        ct = cotangent[0] if len(cotangent) == 1 else cotangent
        if tree_flatten(ct)[1] != out_tree:
            raise TypeError(at_user_line(f"linear_transpose: the cotangent must have the output's structure "
                                         f"{out_tree}, got {tree_flatten(ct)[1]}"))
        return pullback(ct)
    return transposed


@api_boundary
def block_until_ready(x):
    """`x`, once every array in it is computed: NumPy computes at once; CuPy's stream is synchronized."""
    if any(is_cupy_array(leaf) for leaf in tree_flatten(x)[0]):
        import cupy
        cupy.cuda.get_current_stream().synchronize()
    return x


# -------------------- disable_jit --------------------

@contextlib.contextmanager
def disable_jit(disable=True):
    """Within it, jitted functions run their Python code eagerly (to print, or step through)."""
    token = jit_disabled.set(bool(disable))
    try:
        yield
    finally:
        jit_disabled.reset(token)


# -------------------- devices --------------------

@functools.total_ordering
class Device:
    """A device arrays live on: the CPU (NumPy) or a GPU (CuPy)."""
    __slots__ = ("platform", "id")

    def __init__(self, platform, id):  # noqa: A002 (JAX's attribute)
        self.platform, self.id = platform, id

    @property
    def device_kind(self):
        return "cpu" if self.platform == "cpu" else "NVIDIA GPU"

    def __eq__(self, other):
        return isinstance(other, Device) and (self.platform, self.id) == (other.platform, other.id)

    def __lt__(self, other):
        return (self.platform, self.id) < (other.platform, other.id)

    def __hash__(self):
        return hash((self.platform, self.id))

    def __repr__(self):
        return f"{'CpuDevice' if self.platform == 'cpu' else 'CudaDevice'}(id={self.id})"


@api_boundary
def devices(backend=None):
    """The devices of `backend`: 'cpu' (the default: ftrans computes with NumPy unless told
    otherwise) or 'gpu' (one per CUDA device CuPy sees)."""
    if backend in (None, "cpu"):
        return [Device("cpu", 0)]
    if backend in ("gpu", "cuda"):
        if not gpu_available():
            raise RuntimeError(at_user_line(f"devices('gpu'): no GPU can be used: {_gpu_problem()}"))
        import cupy
        return [Device("gpu", i) for i in range(cupy.cuda.runtime.getDeviceCount())]
    raise ValueError(at_user_line(f"devices: backend must be 'cpu' or 'gpu', got {backend!r}"))


@api_boundary
def local_devices(process_index=None, backend=None):
    return devices(backend)


@api_boundary
def default_backend():
    return "cpu"


@api_boundary
def device_get(x):
    """`x` (a pytree) with its arrays as host (NumPy) arrays: CuPy arrays are copied over."""
    def get(leaf):
        if isinstance(leaf, Tracer):
            raise TypeError(at_user_line("device_get of a traced value: its value is not known while tracing"))
        return _on_cpu(leaf)
    return tree_map(get, x)
