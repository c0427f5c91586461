"""JAX's smaller top-level helpers: eval_shape, ShapeDtypeStruct, linear_transpose,
block_until_ready, disable_jit, devices, device_get, typeof, clear_caches,
ensure_compile_time_eval, named_call and closure_convert."""
from __future__ import annotations

import contextlib
import functools

import numpy as np

from ftrans._api_util import check_callable, check_outputs, flatten_args, trace_flat
from ftrans._jaxpr_as_fun import jaxpr_as_fun
from ftrans._config import jit_disabled
from ftrans._device import _gpu_problem, _on_cpu, gpu_available
from ftrans.tree_util import tree_flatten, tree_map, tree_unflatten
from ir.core import ClosedJaxpr, ShapedArray, is_cupy_array
from ir.errors import api_boundary, at_user_line
from ir.primitives.call import clear_derived
from ir.tracing import Tracer, compile_time_eval, current_trace, get_aval, stage


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


# -------------------- typeof, clear_caches, compile-time evaluation, named calls --------------------

def typeof(x):
    """The abstract value of `x` (shape, dtype, weak type) as a ShapedArray, traced or not (jax.typeof)."""
    return get_aval(x)


def clear_caches():
    """Forget every jitted function's compiled programs and every memoized transformation of
    a sub-jaxpr: the next call traces and compiles again (jax.clear_caches)."""
    from ftrans._jit import LIVE_JITTED
    from interpreters import lowering_numpy
    for jitted in list(LIVE_JITTED):
        jitted._cache.clear()
    clear_derived()
    lowering_numpy.forget_lowered()


def ensure_compile_time_eval():
    """A context in which operations on concrete values are computed at once, even while a
    function is being traced (jax.ensure_compile_time_eval): their results are arrays,
    whose values Python code can branch on. Operations on traced values stage as usual.

        @ft.jit
        def f(x):
            with ft.ensure_compile_time_eval():
                y = fnp.sin(2.0)          # an array, computed now
            return x * y if y > 0 else x  # a Python branch on it
    """
    return compile_time_eval()


def named_call(fun, *, name=None):
    """`fun`, staged as one `jit_call` equation named `name` (default: fun's name) wherever
    it is traced, so the printed program shows it; called eagerly, it is just `fun`."""
    check_callable(fun, "named_call")
    name = fun.__name__ if name is None else name
    if not isinstance(name, str):
        raise TypeError(at_user_line(f"named_call: name must be a string, got {type(name).__name__}"))

    def renamed(*args, **kwargs):
        return fun(*args, **kwargs)
    renamed.__name__ = renamed.__qualname__ = name
    from ftrans._jit import jit
    staged = jit(renamed)

    @functools.wraps(fun)
    def call(*args, **kwargs):
        return fun(*args, **kwargs) if current_trace() is None else staged(*args, **kwargs)
    return call


def closure_convert(fun, *example_args):
    """(converted, hoisted): `converted(*args, *hoisted)` computes `fun(*args)`, with every traced
    value `fun` closes over (a tracer of an enclosing grad, vmap or jit) made an explicit
    argument (jax.closure_convert), as custom_vjp's fwd and bwd need of a closure."""
    check_callable(fun, "closure_convert")
    leaves, in_tree, avals = flatten_args(example_args, "closure_convert")
    closed, out_tree = trace_flat(fun, in_tree, avals, "closure_convert")
    jaxpr, consts = closed.jaxpr, list(closed.consts)
    hoisted_at = [i for i, c in enumerate(consts) if isinstance(c, Tracer)]
    hoisted = [consts[i] for i in hoisted_at]
    num_args = len(example_args)

    def converted(*args):
        if len(args) != num_args + len(hoisted):
            raise TypeError(at_user_line(f"closure_convert: the converted function takes {num_args} arguments "
                                         f"and {len(hoisted)} hoisted values, got {len(args)} values"))
        arg_leaves, tree = tree_flatten(tuple(args[:num_args]))
        if tree != in_tree:
            raise TypeError(at_user_line(f"closure_convert: the arguments' structure {tree} differs from the "
                                         f"example's {in_tree}"))
        values = list(consts)
        for i, value in zip(hoisted_at, args[num_args:]):
            values[i] = value
        outs = jaxpr_as_fun(ClosedJaxpr(jaxpr, values))(*arg_leaves)
        return tree_unflatten(out_tree, outs)
    return converted, hoisted
