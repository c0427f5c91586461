"""ft.tree_util's additions, ft.tree, and the top-level helpers of issue 16 point 5: one row per
public name (a name without a row fails `test_every_name_has_a_row`), each checked eagerly, under
jit and under vmap where a transformation applies."""
from __future__ import annotations

import collections
import dataclasses
import functools
import operator

import numpy as np
import pytest

import ftrans as ft
import ftrans.numpy as fnp
from ftrans import tree_util as tu

Point = collections.namedtuple("Point", "x y")


@tu.register_pytree_node_class
class Scaled:
    """A class registered by its own tree_flatten / tree_unflatten."""

    def __init__(self, value, scale):
        self.value, self.scale = value, scale

    def tree_flatten(self):
        return (self.value,), self.scale

    @classmethod
    def tree_unflatten(cls, scale, children):
        return cls(children[0], scale)


@tu.register_dataclass
@dataclasses.dataclass
class Layer:
    w: object
    b: object
    name: str = dataclasses.field(default="dense", metadata={"static": True})


@dataclasses.dataclass
class Explicit:
    a: object
    n: int


tu.register_dataclass(Explicit, data_fields=["a"], meta_fields=["n"])

TREE = {"layer": Layer(np.ones(2), np.zeros(2)), "pts": [Point(1.0, 2.0), (3.0,)], "none": None}


def check_register_pytree_node_class():
    leaves, treedef = tu.tree_flatten(Scaled(np.arange(3.0), 2.0))
    assert len(leaves) == 1 and treedef.unflatten(leaves).scale == 2.0
    out = ft.jit(lambda s: Scaled(s.value * s.scale, s.scale))(Scaled(np.arange(3.0), 2.0))
    np.testing.assert_array_equal(out.value, [0.0, 2.0, 4.0])
    g = ft.grad(lambda s: fnp.sum(s.value ** 2) * s.scale)(Scaled(np.arange(3.0), 2.0))
    np.testing.assert_array_equal(g.value, [0.0, 4.0, 8.0])


def check_register_dataclass():
    layer = Layer(np.ones(3), np.zeros(3), "first")
    leaves, treedef = tu.tree_flatten(layer)
    assert len(leaves) == 2 and treedef.unflatten(leaves) == layer
    out = ft.jit(lambda l: dataclasses.replace(l, w=l.w * 2))(layer)
    assert out.name == "first" and np.array_equal(out.w, 2 * np.ones(3))
    batched = ft.vmap(lambda l: fnp.sum(l.w) + l.b[0])(Layer(np.ones((4, 3)), np.zeros((4, 3)), "v"))
    np.testing.assert_array_equal(batched, [3.0] * 4)
    assert tu.tree_leaves(Explicit(np.ones(1), 5)) == [np.ones(1)]
    assert tu.tree_structure(Explicit(1.0, 5)) != tu.tree_structure(Explicit(1.0, 6))  # meta is structure
    with pytest.raises(ValueError, match="init fields"):
        tu.register_dataclass(Explicit, data_fields=["a"], meta_fields=[])


def check_partial():
    p = tu.Partial(operator.mul, np.arange(3.0))
    assert len(tu.tree_leaves(p)) == 1
    np.testing.assert_array_equal(ft.jit(lambda p, x: p(x))(p, 2.0), [0.0, 2.0, 4.0])
    np.testing.assert_array_equal(tu.Partial(tu.Partial(operator.add, 1.0), 2.0)(), 3.0)
    np.testing.assert_array_equal(ft.grad(lambda p: fnp.sum(p(3.0)))(p).args[0], [3.0, 3.0, 3.0])


def check_tree_reduce():
    assert tu.tree_reduce(operator.add, TREE["pts"]) == 6.0
    assert tu.tree_reduce(operator.add, [], 10) == 10
    with pytest.raises(TypeError, match="initializer"):
        tu.tree_reduce(operator.add, [])
    total = ft.jit(lambda t: tu.tree_reduce(lambda a, b: a + fnp.sum(b), t, 0.0))(TREE)
    assert total == 2.0 + 6.0


def check_tree_all():
    assert tu.tree_all([True, (1, {"a": True})]) and not tu.tree_all([True, (0,)]) and tu.tree_all([])


def check_tree_map_with_path():
    out = tu.tree_map_with_path(lambda p, x: tu.keystr(p), TREE)
    assert out["pts"] == [Point("['pts'][0].x", "['pts'][0].y"), ("['pts'][1][0]",)]
    assert out["layer"].w == "['layer'].w"
    doubled = tu.tree_map_with_path(lambda p, x, y: x + y, TREE["pts"], TREE["pts"])
    assert doubled == [Point(2.0, 4.0), (6.0,)]


def check_keystr():
    path = (tu.DictKey("a"), tu.SequenceKey(0), tu.GetAttrKey("w"), tu.FlattenedIndexKey(1))
    assert tu.keystr(path) == "['a'][0].w[<flat index 1>]"
    assert tu.keystr(path, simple=True, separator="/") == "a/0/w/1"


def check_tree_flatten_with_path():
    pairs, treedef = tu.tree_flatten_with_path(TREE)
    assert [leaf for _, leaf in pairs] == tu.tree_leaves(TREE)
    assert treedef == tu.tree_structure(TREE)
    assert pairs[-1][0] == (tu.DictKey("pts"), tu.SequenceKey(1), tu.SequenceKey(0))
    assert tu.tree_leaves_with_path(Scaled(1.0, 2.0)) == [((tu.FlattenedIndexKey(0),), 1.0)]


def check_tree_transpose():
    outer, inner = tu.tree_structure([0, 0, 0]), tu.tree_structure({"a": 0, "b": 0})
    rows = [{"a": 1, "b": 2}, {"a": 3, "b": 4}, {"a": 5, "b": 6}]
    assert tu.tree_transpose(outer, inner, rows) == {"a": [1, 3, 5], "b": [2, 4, 6]}
    assert tu.tree_transpose(outer, None, rows) == {"a": [1, 3, 5], "b": [2, 4, 6]}


def check_tree_namespace():
    leaves, treedef = ft.tree.flatten(TREE)
    assert ft.tree.unflatten(treedef, leaves)["pts"] == TREE["pts"]
    assert ft.tree.leaves(TREE) == leaves and ft.tree.structure(TREE) == treedef
    assert ft.tree.map(lambda x: x * 2, TREE["pts"]) == [Point(2.0, 4.0), (6.0,)]
    assert ft.tree.reduce(operator.add, [1, 2]) == 3 and ft.tree.all([1, True])
    assert ft.tree.map_with_path(lambda p, x: len(p), [1, [2]]) == [1, [2]]
    assert len(ft.tree.leaves_with_path(TREE)) == len(ft.tree.flatten_with_path(TREE)[0])
    assert ft.tree.transpose(ft.tree.structure([0, 0]), None, [(1, 2), (3, 4)]) == ([1, 3], [2, 4])


def check_eval_shape():
    def f(x, y, *, scale):
        return {"prod": x @ y * scale, "sum": fnp.sum(x, axis=0)}
    out = ft.eval_shape(f, ft.ShapeDtypeStruct((3, 4), np.float32), np.ones((4, 2), np.float32), scale=2.0)
    assert out == {"prod": ft.ShapeDtypeStruct((3, 2), np.float32), "sum": ft.ShapeDtypeStruct((4,), np.float32)}
    calls = []
    ft.eval_shape(lambda x: calls.append(type(x).__name__) or x, np.ones(2))
    assert calls and "ndarray" not in calls  # traced, not run


def check_shape_dtype_struct():
    s = ft.ShapeDtypeStruct([2, 3], "float32")
    assert s.shape == (2, 3) and s.dtype == np.float32 and s.ndim == 2 and s.size == 6
    assert hash(s) == hash(ft.ShapeDtypeStruct((2, 3), np.float32)) and "float32" in repr(s)
    assert str(ft.make_jaxpr(lambda x: x + 1.0)(s)).count("f32[2,3]") >= 1


def check_linear_transpose():
    a = np.arange(6.0).reshape(2, 3)

    def f(x, y):
        return a @ x + 2.0 * y
    transposed = ft.linear_transpose(f, ft.ShapeDtypeStruct((3,), np.float64), np.zeros(2))
    ct_x, ct_y = transposed(np.array([1.0, -1.0]))
    np.testing.assert_allclose(ct_x, a.T @ np.array([1.0, -1.0]))
    np.testing.assert_allclose(ct_y, [2.0, -2.0])
    via_jit = ft.jit(lambda c: transposed(c))(np.array([1.0, -1.0]))
    np.testing.assert_allclose(via_jit[0], ct_x)
    batched = ft.vmap(lambda c: transposed(c)[0])(np.eye(2))
    np.testing.assert_allclose(batched, a)
    rotate = ft.linear_transpose(lambda z: (1 + 2j) * z, np.zeros(2, np.complex128))
    np.testing.assert_allclose(rotate(np.array([1.0 + 0j, 1j]))[0], [1 + 2j, -2 + 1j])  # no conjugate, as JAX
    with pytest.raises(TypeError, match="floating-point"):
        ft.linear_transpose(lambda i: i, np.int32(1))


def check_block_until_ready():
    x = {"a": np.ones(2)}
    assert ft.block_until_ready(x) is x
    y = ft.jit(lambda v: v * 2)(np.ones(3))
    assert ft.block_until_ready(y) is y


def check_disable_jit():
    seen = []

    @ft.jit
    def f(x):
        seen.append(type(x).__name__)
        return x * 2
    f(np.ones(2))
    with ft.disable_jit():
        np.testing.assert_array_equal(f(np.ones(2)), 2 * np.ones(2))
        f(np.ones(2))
    assert seen[0] != "ndarray" and seen[1:] == ["ndarray", "ndarray"]
    f(np.ones(2))
    assert len(seen) == 3  # cached again once the context ends


def check_array():
    assert isinstance(fnp.ones(3), ft.Array) and not isinstance([1.0], ft.Array)
    traced = []
    ft.jit(lambda x: traced.append(isinstance(x, ft.Array)) or x)(np.ones(2))
    ft.grad(lambda x: traced.append(isinstance(x, ft.Array)) or x)(1.0)
    ft.vmap(lambda x: traced.append(isinstance(x, ft.Array)) or x)(np.ones(2))
    assert traced == [True, True, True]


def check_devices():
    cpus = ft.devices()
    assert cpus == [ft.Device("cpu", 0)] and cpus[0].platform == "cpu" and ft.local_devices() == cpus
    assert ft.default_backend() == "cpu"
    assert type(ft.device_put(np.ones(2), cpus[0])) is ft.Array
    with pytest.raises(ValueError, match="backend"):
        ft.devices("tpu")


def check_device_get():
    out = ft.device_get({"a": fnp.ones(2), "b": 3.0})
    assert isinstance(out["a"], np.ndarray) and out["b"] == 3.0
    with pytest.raises(TypeError, match="traced"):
        ft.jit(ft.device_get)(np.ones(2))


def check_default_backend():
    assert ft.default_backend() == "cpu"


def check_local_devices():
    assert ft.local_devices() == ft.devices()


def check_device():
    assert repr(ft.Device("cpu", 0)) == "CpuDevice(id=0)" and ft.Device("cpu", 0) < ft.Device("gpu", 0)


def check_key_classes():
    assert str(tu.DictKey(1)) == "[1]" and str(tu.SequenceKey(2)) == "[2]" and str(tu.GetAttrKey("q")) == ".q"


def check_typeof():
    assert ft.typeof(np.ones(3, np.float32)) == ft.ShapedArray((3,), np.float32)
    seen = []
    ft.jit(lambda x: seen.append(ft.typeof(x)) or x)(np.ones((2, 1)))
    assert seen == [ft.ShapedArray((2, 1), np.float64)]


def check_clear_caches():
    f = ft.jit(lambda x: x * 2)
    f(1.0)
    f(2.0)
    assert f.trace_count == 1
    ft.clear_caches()
    assert f(3.0) == 6.0 and f.trace_count == 2


def check_ensure_compile_time_eval():
    @ft.jit
    def f(x):
        with ft.ensure_compile_time_eval():
            y = fnp.sin(2.0) * fnp.ones(3)
            traced = x * 2  # a traced operand stages as usual
        return traced + y if float(y[0]) > 0 else traced  # a Python branch on a computed value
    np.testing.assert_allclose(f(np.ones(3)), 2 + np.sin(2.0))
    assert "sin" not in str(ft.make_jaxpr(f)(np.ones(3)))


def check_named_call():
    block = ft.named_call(lambda x: fnp.sin(x) * 2, name="my_block")
    assert block(1.0) == np.sin(1.0) * 2
    text = str(ft.make_jaxpr(lambda x: block(x) + 1)(1.0))
    assert "name=my_block" in text and "jit_call" in text
    np.testing.assert_allclose(ft.grad(lambda x: block(x))(0.3), 2 * np.cos(0.3))
    with pytest.raises(TypeError, match="name must be a string"):
        ft.named_call(fnp.sin, name=3)


def check_closure_convert():
    def outer(w):
        converted, hoisted = ft.closure_convert(lambda x: fnp.sin(x * w), 1.0)
        assert len(hoisted) == 1  # w, a tracer of grad
        return converted(2.0, *hoisted)
    np.testing.assert_allclose(ft.grad(outer)(0.5), 2 * np.cos(1.0))
    converted, hoisted = ft.closure_convert(lambda x: {"y": x * 3.0}, np.ones(2))
    assert hoisted == [] and np.array_equal(converted(np.arange(2.0))["y"], [0.0, 3.0])
    with pytest.raises(TypeError, match="takes 1 arguments"):
        converted(1.0, 2.0)


ROWS = {
    "register_pytree_node_class": check_register_pytree_node_class, "register_dataclass": check_register_dataclass,
    "Partial": check_partial, "tree_reduce": check_tree_reduce, "tree_all": check_tree_all,
    "tree_map_with_path": check_tree_map_with_path, "keystr": check_keystr,
    "tree_flatten_with_path": check_tree_flatten_with_path, "tree_leaves_with_path": check_tree_flatten_with_path,
    "tree_transpose": check_tree_transpose, "DictKey": check_key_classes, "SequenceKey": check_key_classes,
    "GetAttrKey": check_key_classes, "FlattenedIndexKey": check_keystr,
    "tree": check_tree_namespace, "eval_shape": check_eval_shape, "ShapeDtypeStruct": check_shape_dtype_struct,
    "linear_transpose": check_linear_transpose, "block_until_ready": check_block_until_ready,
    "disable_jit": check_disable_jit, "Array": check_array, "devices": check_devices, "device_get": check_device_get,
    "default_backend": check_default_backend, "local_devices": check_local_devices, "Device": check_device,
    "typeof": check_typeof, "clear_caches": check_clear_caches, "ensure_compile_time_eval": check_ensure_compile_time_eval,
    "named_call": check_named_call, "closure_convert": check_closure_convert,
}

# the names of issue 16 point 5 (and the helpers beside them)
NAMES = ["register_pytree_node_class", "register_dataclass", "Partial", "tree_reduce", "tree_all",
         "tree_map_with_path", "keystr", "tree_flatten_with_path", "tree_leaves_with_path", "tree_transpose",
         "DictKey", "SequenceKey", "GetAttrKey", "FlattenedIndexKey", "tree", "eval_shape", "ShapeDtypeStruct",
         "linear_transpose", "block_until_ready", "disable_jit", "Array", "devices", "device_get",
         "default_backend", "local_devices", "Device", "typeof", "clear_caches", "ensure_compile_time_eval",
         "named_call", "closure_convert"]


def test_every_name_has_a_row():
    assert sorted(set(NAMES) - set(ROWS)) == []
    for name in NAMES:
        assert hasattr(ft, name) or hasattr(tu, name), name
    new_in_tree_util = set(tu.__all__) - {"PyTreeDef", "register_pytree_node", "tree_flatten", "tree_leaves",
                                          "tree_map", "tree_structure", "tree_unflatten"}
    assert sorted(new_in_tree_util - set(ROWS)) == []


@pytest.mark.parametrize("name", sorted(ROWS))
def test_name(name):
    ROWS[name]()


def test_partial_is_a_functools_partial():
    p = tu.Partial(max, 1)
    assert isinstance(p, functools.partial) and p(3) == 3
