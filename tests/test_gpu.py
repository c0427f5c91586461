"""The CuPy backend: `jit(backend="cupy")` against eager NumPy, every template
on the device, and device placement.

Tests that need a GPU take the `cupy` fixture and skip cleanly without CuPy
or a device; the errors of device placement are checked on every machine.
"""
import numpy as np
import pytest

import ftrans as ft
import ftrans.numpy as fnp
from ftrans import _device
from interpreters import lowering_cupy
from ir.core import Array, ClosedJaxpr, Eqn, Jaxpr, ShapedArray, Var
from test_cuda_codegen import CASES, assert_matches
from test_fusion import gelu, mlp_loss


@pytest.fixture
def cupy():
    cupy = pytest.importorskip("cupy")
    if not _device.gpu_available():
        pytest.skip("no GPU: " + _device._gpu_problem())
    return cupy


class FakeCupyArray:
    """Looks like a cupy.ndarray to code that must not import CuPy."""
    __module__ = "cupy._core.core"
    __cuda_array_interface__ = {}
    shape, dtype = (3,), np.dtype(np.float32)


# -------------------- device placement, on every machine --------------------

def test_mixing_numpy_and_cupy_inputs_says_how_to_move_them():
    with pytest.raises(TypeError, match=r"ft\.device_put\(x, device='gpu'\)"):
        _device.resolve_backend([np.ones(3), FakeCupyArray(), 1.0], None)
    with pytest.raises(TypeError, match=r"ft\.device_put\(x, device='cpu'\)"):
        _device.resolve_backend([FakeCupyArray()], "numpy")


def test_the_backend_follows_the_inputs():
    assert _device.resolve_backend([np.ones(3), 2.0, np.float32(1)], None) == "numpy"
    assert _device.resolve_backend([], None) == "numpy"
    assert _device.resolve_backend([FakeCupyArray(), 2.0], None) == "cupy"
    with pytest.raises(ValueError, match="backend"):
        _device.resolve_backend([], "tpu")


def test_without_a_gpu_the_cupy_backend_is_a_runtime_error_that_says_so():
    if _device.gpu_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(RuntimeError, match="needs CuPy and an NVIDIA GPU"):
        _device.resolve_backend([np.ones(3)], "cupy")
    with pytest.raises(RuntimeError, match="needs CuPy and an NVIDIA GPU"):
        _device.device_put({"w": np.ones(3)}, device="gpu")


def test_device_put_to_the_cpu_leaves_numpy_trees_alone():
    tree = {"w": np.ones(3), "b": [np.float32(2), 3.0, None]}
    moved = _device.device_put(tree, device="cpu")
    # NumPy arrays become the Arrays ftrans hands out, viewing the same data (no copy)
    assert type(moved["w"]) is Array and np.shares_memory(moved["w"], tree["w"])
    assert type(moved["b"][0]) is Array and moved["b"][0].dtype == np.float32 and moved["b"][1:] == [3.0, None]
    with pytest.raises(ValueError, match="'cpu' or 'gpu'"):
        _device.device_put(tree, device="tpu")


def test_lowering_for_the_gpu_needs_no_device():
    assert _device.resolve_backend([np.ones(3)], "cupy", need_device=False) == "cupy"


def test_public_api_without_a_gpu():
    if _device.gpu_available():
        pytest.skip("this machine has a GPU")
    x = np.ones(3, np.float32)
    with pytest.raises(RuntimeError, match="needs CuPy and an NVIDIA GPU"):
        ft.jit(gelu, backend="cupy")(x)
    text = ft.jit(gelu, backend="cupy").lower(x).as_text()  # the CUDA source, all the same
    assert "gelu_k0: cupy.ElementwiseKernel" in text and "tanh(" in text
    np.testing.assert_array_equal(ft.jit(fnp.sin)(x), np.sin(x))


# -------------------- on the GPU --------------------

def _rng_args(*shapes, dtype=np.float32, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=shape).astype(dtype) for shape in shapes]


PROGRAMS = {  # name -> (function, arguments, relative tolerance)
    "gelu": (gelu, _rng_args(1000), 1e-5),
    "grad_sum_gelu": (ft.grad(lambda x: fnp.sum(gelu(x))), _rng_args(100_000), 1e-5),
    "value_and_grad_sum_gelu": (ft.value_and_grad(lambda x: fnp.sum(gelu(x))), _rng_args(100_000), 1e-4),
    "softmax": (lambda x: fnp.exp(x - fnp.logsumexp(x, axis=1, keepdims=True)),
                _rng_args((64, 10), dtype=np.float64), 1e-12),
    "numpy_semantics": (lambda x, y: (x // y, x % y, fnp.maximum(x, y * np.nan), fnp.minimum(x, 0.0)),
                        _rng_args(50, 50, dtype=np.float64), 0),
    "integers": (lambda i, j: (i // j, i % j, fnp.sign(i), fnp.abs(i), i ** 3, (i > j) & (i < 5)),
                 [np.arange(-20, 20, dtype=np.int32), np.array([3, -3, 0, 7] * 10, np.int32)], 0),
    "indexing": (lambda x, w: (x[np.array([2, 0, 2])] @ w, fnp.concatenate([x, x * 2]).T, x[1:3, ::2].sum()),
                 _rng_args((4, 6), (6, 3), dtype=np.float64), 1e-12),
    "scatter": (lambda x: fnp.at(x)[np.array([1, 1, 3])].add(2.0), _rng_args(5, dtype=np.float64), 0),
    "zeros_and_broadcasts": (lambda x, b: (fnp.zeros_like(x), x + b, fnp.ones((3, 4)) * b),
                             _rng_args((3, 4), 4), 0),
    "float16": (lambda x: fnp.tanh(x) * 2, _rng_args(10, dtype=np.float16), 1e-3),
    "mlp_grad": (ft.grad(mlp_loss), [[(w, b) for w, b in zip(_rng_args((4, 5), (5, 3)), _rng_args(5, 3))],
                                     *_rng_args((2, 4), (2, 3))], 1e-4),
}


def _assert_tree_close(got, want, rtol):
    got_leaves, want_leaves = ft.tree_util.tree_leaves(got), ft.tree_util.tree_leaves(want)
    assert len(got_leaves) == len(want_leaves)
    for g, w in zip(got_leaves, want_leaves):
        assert _device.is_cupy_array(g), type(g)
        np.testing.assert_allclose(g.get(), np.asarray(w), rtol=rtol, atol=rtol)


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_cupy_backend_matches_eager_numpy(cupy, name):
    f, args, rtol = PROGRAMS[name]
    _assert_tree_close(ft.jit(f, backend="cupy")(*args), f(*args), rtol)
    # CuPy inputs under backend=None run on the GPU too
    _assert_tree_close(ft.jit(f)(*ft.device_put(args, device="gpu")), f(*args), rtol)


def test_mixing_devices_is_a_type_error(cupy):
    with pytest.raises(TypeError, match="device_put"):
        ft.jit(lambda x, y: x + y)(np.ones(3), cupy.ones(3))


def test_device_put_round_trip(cupy):
    tree = {"w": np.arange(3.0), "n": [np.int32(4), 2.0]}
    on_gpu = ft.device_put(tree, device="gpu")
    assert _device.is_cupy_array(on_gpu["w"]) and on_gpu["n"][1] == 2.0
    back = ft.device_put(on_gpu, device="cpu")
    assert isinstance(back["w"], np.ndarray)
    np.testing.assert_array_equal(back["w"], tree["w"])


def test_no_recompilation_on_repeated_calls_or_a_new_jit(cupy):
    x = cupy.ones(1000, cupy.float32)
    ft.jit(gelu, backend="cupy")(x)
    built = len(lowering_cupy._KERNEL_CACHE)
    f = ft.jit(gelu, backend="cupy")
    f(x)
    f(x)
    assert len(lowering_cupy._KERNEL_CACHE) == built


def test_mlp_training_step(cupy):
    params = [(w, b) for w, b in zip(_rng_args((784, 512), (512, 512), (512, 10), seed=1),
                                      _rng_args(512, 512, 10, seed=2))]
    x, y = _rng_args((1024, 784), (1024, 10), seed=3)

    def loss(params, x, y):
        for w, b in params[:-1]:
            x = fnp.tanh(x @ w + b)
        w, b = params[-1]
        return fnp.mean((x @ w + b - y) ** 2)

    def step(params, x, y):
        value, grads = ft.value_and_grad(loss)(params, x, y)
        return value, ft.tree_util.tree_map(lambda p, g: p - 0.01 * g, params, grads)

    _assert_tree_close(ft.jit(step, backend="cupy")(ft.device_put(params), x, y), step(params, x, y), 2e-3)


# -------------------- eager and transformed, on CuPy arrays --------------------

def _sum_tanh(x, w):
    return fnp.sum(fnp.tanh(x @ w) ** 2)


# name -> (function, arguments): run on CuPy arrays, compared with the same on NumPy arrays. Only
# ftrans.numpy is called: operators and methods of concrete arrays are CuPy's (or NumPy's) own.
EAGER = {
    "elementwise": (lambda x, y: (fnp.sin(x), fnp.exp(y), fnp.multiply(x, y), fnp.divide(x, y), fnp.add(x, 1),
                                  fnp.maximum(x, y), fnp.power(x, 3), fnp.square(x), fnp.negative(x),
                                  fnp.where(fnp.greater(x, y), x, 0.5), fnp.clip(x, -0.5, 0.5),
                                  fnp.floor_divide(x, 0.25), fnp.mod(x, 0.5), fnp.sqrt(fnp.abs(y)),
                                  fnp.logical_and(fnp.greater(x, 0), fnp.less(y, 0)), fnp.tanh(x)),
                    _rng_args((3, 4), (3, 4), dtype=np.float64)),
    "reductions": (lambda x: (fnp.sum(x, axis=0), fnp.mean(x), fnp.max(x, axis=1, keepdims=True), fnp.min(x),
                              fnp.prod(x, axis=1), fnp.var(x), fnp.std(x, axis=0), fnp.argmax(x, axis=1),
                              fnp.argmin(x), fnp.logsumexp(x, axis=1)),
                   _rng_args((3, 4), dtype=np.float64)),
    "linear_algebra": (lambda a, b: (fnp.dot(a, b), fnp.matmul(a, b), fnp.einsum("ij,jk->ki", a, b),
                                     fnp.outer(a, a), fnp.tensordot(a, b, axes=1), fnp.inner(a, a)),
                       _rng_args((3, 4), (4, 2), dtype=np.float64)),
    "shapes": (lambda x: (fnp.reshape(x, (4, 3)), fnp.transpose(x), fnp.concatenate([x, x], axis=1),
                          fnp.stack([x, x]), fnp.split(x, 2, axis=1)[1], fnp.expand_dims(x, 0),
                          fnp.squeeze(fnp.expand_dims(x, 0)), fnp.broadcast_to(x, (2, 3, 4)), fnp.ravel(x)),
               _rng_args((3, 4), dtype=np.float64)),
    "indexing": (lambda x, i: (fnp.at(x)[1].get(), fnp.at(x)[i].get(), fnp.at(x)[:, i].get(),
                               fnp.at(x)[i, 0].get(), fnp.at(x)[np.array([2, 0])].get(), fnp.take(x, i, axis=1),
                               fnp.at(x)[1:3, ::-2].get(), fnp.at(x)[fnp.greater(x, 0)].get(),
                               fnp.at(x)[i].set(0.0), fnp.at(x)[i].add(1.0), fnp.at(x)[1, 2].set(5.0)),
                 [*_rng_args((3, 4), dtype=np.float64), np.array([2, 0, 2])]),
    "like": (lambda x: (fnp.zeros_like(x), fnp.ones_like(x), fnp.full_like(x, 2.5), fnp.zeros_like(x, np.int32),
                        fnp.asarray(x), fnp.asarray(x, np.float32), fnp.array(x)),
             _rng_args((3, 4), dtype=np.float64)),
}

TRANSFORMED = {  # name -> (function, arguments), as EAGER (here operators are ftrans's: the values are traced)
    "grad": (ft.grad(_sum_tanh, argnums=(0, 1)), _rng_args((3, 4), (4, 2), dtype=np.float64)),
    "value_and_grad": (ft.value_and_grad(lambda x: fnp.sum(gelu(x))), _rng_args(50, dtype=np.float64)),
    "jvp": (lambda x, t: ft.jvp(lambda x: fnp.sin(x) * x ** 2, (x,), (t,)), _rng_args(5, 5, dtype=np.float64)),
    "vjp": (lambda x, ct: ft.vjp(lambda x: fnp.exp(x) @ x.T, x)[1](ct), _rng_args((2, 3), (2, 2), dtype=np.float64)),
    "linearize": (lambda x, t: ft.linearize(lambda x: fnp.tanh(x) * fnp.exp(fnp.sum(x)), x)[1](t),  # a 0-d residual
                  _rng_args(4, 4, dtype=np.float64)),
    "vmap": (ft.vmap(lambda x, w: fnp.tanh(x @ w), in_axes=(0, None)), _rng_args((5, 3), (3, 2), dtype=np.float64)),
    "per_example_grads": (ft.vmap(ft.grad(_sum_tanh), in_axes=(0, None)),
                          _rng_args((5, 1, 3), (3, 2), dtype=np.float64)),
    "jacfwd": (ft.jacfwd(lambda x: fnp.sin(x) * fnp.sum(x)), _rng_args(3, dtype=np.float64)),
    "jacrev": (ft.jacrev(lambda x, w: fnp.tanh(x @ w), argnums=(0, 1)), _rng_args((2, 3), (3, 2), dtype=np.float64)),
    "hessian": (ft.hessian(lambda x: fnp.sum(fnp.sin(x) * x ** 3)), _rng_args(4, dtype=np.float64)),
    # rules that make arrays of their own: zeros to scatter into, iota masks, clamped indices
    "grad_of_indexing": (ft.grad(lambda x: fnp.sum(x[np.array([0, 2, 2])] ** 2) + fnp.max(x[1:])),
                         _rng_args(4, dtype=np.float64)),
    "grad_of_updates": (ft.grad(lambda x: fnp.sum(x.at[1].set(2.0) * x + x.at[0].add(x[2]))),
                        _rng_args(4, dtype=np.float64)),
    "grad_of_prod": (ft.grad(lambda x: fnp.prod(x, axis=1).sum()), _rng_args((2, 3), dtype=np.float64)),
    "grad_of_concatenate": (ft.grad(lambda x: fnp.sum(fnp.concatenate([x, 2.0 * x[:2], fnp.ones(1)]) ** 2)),
                            _rng_args(3, dtype=np.float64)),
}


def _assert_same_on_the_device(f, args, rtol=1e-12):
    """f on CuPy copies of `args` returns CuPy arrays equal to f on the NumPy arrays."""
    _assert_tree_close(f(*ft.device_put(args, device="gpu")), f(*args), rtol)


@pytest.mark.parametrize("name", sorted(EAGER))
def test_eager_ftrans_numpy_computes_with_cupy(cupy, name):
    _assert_same_on_the_device(*EAGER[name])


@pytest.mark.parametrize("name", sorted(TRANSFORMED))
def test_transformations_of_cupy_inputs(cupy, name):
    _assert_same_on_the_device(*TRANSFORMED[name])


@pytest.mark.parametrize("name", sorted(TRANSFORMED))
def test_jit_follows_cupy_inputs_through_transformations(cupy, name):
    f, args = TRANSFORMED[name]
    _assert_same_on_the_device(ft.jit(f), args, rtol=1e-10)


# arrays made from nothing are NumPy's eagerly (the user picks a device, as with CuPy); under jit they run on the GPU
@pytest.mark.parametrize("name", sorted(set(PROGRAMS) - {"zeros_and_broadcasts"}))
def test_programs_run_eagerly_on_cupy_inputs(cupy, name):
    f, args, rtol = PROGRAMS[name]
    _assert_same_on_the_device(f, args, rtol)


def test_check_grads_of_cupy_inputs(cupy):
    x = ft.device_put(_rng_args(5, dtype=np.float64)[0])
    ft.check_grads(lambda x: fnp.sum(fnp.sin(x) * x ** 2), (x,), order=2)


def test_creation_from_nothing_stays_numpy(cupy):
    """As in CuPy's world, the user picks the device of a new array."""
    assert isinstance(fnp.zeros(3), np.ndarray) and isinstance(fnp.arange(3), np.ndarray)
    assert isinstance(fnp.eye(2), np.ndarray) and isinstance(fnp.ones_like(np.ones(2)), np.ndarray)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_template_on_the_device(cupy, case):
    """Every template through CuPy's own compiler (NVRTC), on special values."""
    arrays = case.special_inputs()
    closed = _single_equation_jaxpr(case, arrays[0].size)
    (got,) = lowering_cupy.lower(closed, "case")(*arrays)
    # CUDA's math functions are within 2 ulps or so of correctly rounded, as libm's are
    assert_matches(got.get(), case.reference(*arrays), case.ulps, case.id)


def _single_equation_jaxpr(case, size):
    invars = [Var(ShapedArray((size,), d)) for d in case.dtypes]
    (out_aval,) = case.prim.abstract_eval([v.aval for v in invars], case.params)
    eqn = Eqn(case.prim, invars, [Var(out_aval)], case.params)
    return ClosedJaxpr(Jaxpr([], invars, [eqn], eqn.outvars), [])


def test_mlp_digits_example_trains_on_the_gpu(cupy, capsys):
    import importlib.util
    import pathlib
    path = pathlib.Path(__file__).parent.parent / "examples" / "mlp_digits.py"
    spec = importlib.util.spec_from_file_location("mlp_digits", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(device="gpu")  # asserts >= 95% test accuracy itself
    assert "on the GPU" in capsys.readouterr().out
