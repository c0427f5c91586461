"""Tracers have the ndarray methods ftrans.numpy implements: under jit, grad and vmap a method
call gives what NumPy's method gives eagerly. One row per method (a method without a row fails);
a method whose ftrans.numpy function is not there yet says so in its AttributeError."""
from __future__ import annotations

import numpy as np
import pytest

import ftrans as ft
import ftrans.numpy as fnp
from ftrans.numpy._methods import NUMPY_NAMED_METHODS
from ir.tracing import Tracer

X = np.array([[3.0, -1.5, 2.0], [0.5, 4.0, -2.5]])
IDX = np.array([2, 0])

# method -> (args, kwargs, what NumPy computes from X)
ROWS = {
    "sum": ((1,), {}, lambda x: x.sum(1)), "prod": ((), {"axis": 0}, lambda x: x.prod(0)),
    "mean": ((), {}, lambda x: x.mean()), "max": ((0,), {}, lambda x: x.max(0)), "min": ((), {}, lambda x: x.min()),
    "var": ((), {"axis": 1}, lambda x: x.var(1)), "std": ((), {}, lambda x: x.std()),
    "argmax": ((1,), {}, lambda x: x.argmax(1)), "argmin": ((), {}, lambda x: x.argmin()),
    "reshape": ((3, 2), {}, lambda x: x.reshape(3, 2)), "transpose": ((), {}, lambda x: x.transpose()),
    "squeeze": ((), {}, lambda x: x.squeeze()), "ravel": ((), {}, lambda x: x.ravel()),
    "flatten": ((), {}, lambda x: x.flatten()), "swapaxes": ((0, 1), {}, lambda x: x.swapaxes(0, 1)),
    "dot": ((X.T,), {}, lambda x: x.dot(X.T)), "clip": ((-1.0, 1.0), {}, lambda x: x.clip(-1.0, 1.0)),
    "astype": ((np.float32,), {}, lambda x: x.astype(np.float32)),
    "take": ((IDX,), {"axis": 1}, lambda x: x.take(IDX, 1)),
    "copy": ((), {}, lambda x: x.copy()),
    "all": ((), {}, lambda x: x.all()), "any": ((), {"axis": 0}, lambda x: x.any(0)),
    "argsort": ((), {"axis": 1}, lambda x: x.argsort(1)), "sort": ((), {"axis": 0}, lambda x: np.sort(x, 0)),
    "cumsum": ((), {"axis": 1}, lambda x: x.cumsum(1)), "cumprod": ((0,), {}, lambda x: x.cumprod(0)),
    "round": ((), {}, lambda x: x.round()), "repeat": ((2,), {"axis": 0}, lambda x: x.repeat(2, 0)),
    "diagonal": ((), {}, lambda x: x.diagonal()), "trace": ((), {}, lambda x: x.trace()),
    "nonzero": ((), {"size": X.size}, lambda x: x.nonzero()), "conj": ((), {}, lambda x: x.conj()),
    "conjugate": ((), {}, lambda x: x.conjugate()), "ptp": ((), {}, lambda x: np.ptp(x)),
    "searchsorted": ((0.0,), {}, lambda x: np.sort(x.ravel()).searchsorted(0.0)),
    "compress": ((np.array([True, False]),), {"axis": 0}, lambda x: x.compress([True, False], 0)),
    "partition": ((1,), {}, lambda x: np.partition(x, 1)), "argpartition": ((1,), {}, lambda x: np.argpartition(x, 1)),
    "choose": (([X, -X],), {}, None), "nansum": ((), {}, lambda x: np.nansum(x)),
    "cummax": ((), {"axis": 1}, lambda x: np.maximum.accumulate(x, 1)),
    "cummin": ((), {"axis": 1}, lambda x: np.minimum.accumulate(x, 1)),
}
PROPERTIES = {"T": lambda x: x.T, "mT": lambda x: np.swapaxes(x, -1, -2), "shape": lambda x: x.shape,
              "ndim": lambda x: x.ndim, "size": lambda x: x.size, "dtype": lambda x: x.dtype,
              "nbytes": lambda x: x.nbytes, "itemsize": lambda x: x.itemsize}
CONCRETE_ONLY = {"item": lambda x: x[0, 0].item(), "tolist": lambda x: x.tolist()}


def _installed(name):
    return name in Tracer.__dict__


def test_every_method_of_tracers_has_a_row():
    methods = [n for n, v in Tracer.__dict__.items() if not n.startswith("_") and callable(v)
               and hasattr(np.ndarray, n)]
    assert sorted(set(methods) - set(ROWS) - set(CONCRETE_ONLY)) == []
    assert sorted(set(NUMPY_NAMED_METHODS) - set(ROWS)) == []


def _arg(name):
    x = X
    if name == "searchsorted":
        x = np.sort(X.ravel())
    if name in ("all", "any"):
        x = X > 0
    if name == "choose":
        x = np.array([[0, 1, 0], [1, 1, 0]])
    return x


@pytest.mark.parametrize("name", sorted(ROWS))
def test_method_under_jit_matches_numpy(name):
    if not _installed(name):
        pytest.skip(f"ftrans.numpy has no {name} yet")
    args, kwargs, ref = ROWS[name]
    x = _arg(name)
    want = getattr(x, name)(*args, **kwargs) if ref is None or name in ("searchsorted", "choose") else ref(x)
    got = ft.jit(lambda v: getattr(v, name)(*args, **kwargs))(x)
    for g, w in zip(got if isinstance(want, tuple) else [got], want if isinstance(want, tuple) else [want]):
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=1e-6)
        assert np.asarray(g).dtype == np.asarray(w).dtype or name in ("argmax", "argmin", "argsort", "nonzero")


@pytest.mark.parametrize("name", sorted(n for n in ROWS if n not in ("nonzero", "compress", "choose")))
def test_method_under_vmap_matches_loop(name):
    if not _installed(name):
        pytest.skip(f"ftrans.numpy has no {name} yet")
    args, kwargs, _ = ROWS[name]
    if name in ("reshape", "dot", "take", "repeat", "swapaxes", "diagonal", "trace", "cumsum", "cumprod", "sort",
                "argsort", "partition", "argpartition", "cummax", "cummin", "any", "all", "max", "sum", "prod",
                "var", "argmax", "searchsorted"):
        pytest.skip("these rows' arguments name axes of the unbatched array")
    xs = np.stack([_arg(name), 2 * _arg(name)])
    got = ft.vmap(lambda v: getattr(v, name)(*args, **kwargs))(xs)
    want = np.stack([np.asarray(ft.jit(lambda v: getattr(v, name)(*args, **kwargs))(x)) for x in xs])
    np.testing.assert_allclose(got, want, rtol=1e-12)


@pytest.mark.parametrize("name", sorted(PROPERTIES))
def test_properties_under_jit(name):
    seen = []
    ft.jit(lambda v: seen.append(getattr(v, name)) or v)(X)
    got, want = seen[0], PROPERTIES[name](X)
    if isinstance(got, Tracer):
        got = ft.jit(lambda v: getattr(v, name))(X)
    np.testing.assert_array_equal(np.asarray(got), np.asarray(want))


@pytest.mark.parametrize("name", sorted(CONCRETE_ONLY))
def test_concrete_only_methods(name):
    want = CONCRETE_ONLY[name](X)
    seen = []
    ft.grad(lambda v: seen.append(getattr(v if name == "tolist" else v[0, 0], name)()) or fnp.sum(v))(X)
    assert seen[0] == want
    with pytest.raises(TypeError, match="traced value"):
        ft.jit(lambda v: getattr(v, name)())(X)


def test_methods_differentiate():
    g = ft.grad(lambda v: v.clip(-1.0, 1.0).sum() + v.take(IDX, axis=1).mean() + v.mT.dot(v).trace()
                if _installed("trace") else v.clip(-1.0, 1.0).sum() + v.take(IDX, axis=1).mean())(X)
    assert g.shape == X.shape


def test_a_method_not_there_yet_says_so():
    missing = [n for n in NUMPY_NAMED_METHODS if not _installed(n)]
    if not missing:
        pytest.skip("every method is there")

    def probe(v):
        getattr(v, missing[0])
    with pytest.raises(AttributeError, match=f"no `.{missing[0]}\\(\\)` yet"):
        ft.jit(probe)(X)
    with pytest.raises(AttributeError, match="immutable"):
        ft.jit(lambda v: v.fill(0.0))(X)
