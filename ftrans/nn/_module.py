"""Modules as pytrees, in the manner of Equinox: a module is a frozen dataclass whose array
fields are the pytree's leaves and whose other fields (sizes, strides, activation functions,
flags) are static, so a module goes through `grad`, `jit` and `vmap` as it is:

    class Affine(ft.nn.Module):
        weight: object          # an array: a leaf, traced and differentiated
        bias: object
        scale: float = 1.0      # a Python number: static, part of the tree's structure

        def __call__(self, x):
            return self.scale * (x @ self.weight + self.bias)

    grads = ft.grad(lambda m, x: fnp.sum(m(x)))(model, x)   # an Affine of gradients

Which fields are leaves is decided once, when `__init__` finishes: a field holding an array
(NumPy, CuPy or traced), a module, or a list/tuple/dict holding one, is a leaf (or a subtree);
anything else is static. `field(static=True)` or `field(static=False)` decides it for a field
instead. The decision is kept by flattening and unflattening, so `tree_map(lambda x: x > 0, m)`
or a tree of `in_axes` has the structure of `m` whatever it puts in the leaves.

A class may write its own `__init__` (it sets each field once, as `self.name = value`) or let
the dataclass generate one. After `__init__`, assigning a field raises: `tree_at` makes a
modified copy.
"""
from __future__ import annotations

import dataclasses
import functools
import math

import numpy as np

from ftrans import tree_util
from ir.core import is_cupy_array
from ir.errors import api_boundary, at_user_line
from ir.tracing import Tracer

__all__ = ["Lambda", "Module", "count_params", "field", "inference_mode", "summary", "tree_at"]


def field(*, static=None, **kwargs):
    """dataclasses.field with `static`: True makes the field part of the tree's structure (never
    traced), False makes it a leaf (a Python float to differentiate, say), None (the default)
    decides from the value given to `__init__` (arrays and modules are leaves, the rest static)."""
    metadata = dict(kwargs.pop("metadata", None) or {})
    if static is not None:
        metadata["static"] = bool(static)
    return dataclasses.field(metadata=metadata, **kwargs)


def is_array(x):
    """Whether `x` is an array a transformation traces: NumPy's, CuPy's or a tracer."""
    return isinstance(x, (np.ndarray, np.generic, Tracer)) or is_cupy_array(x)


def _holds_arrays(value):
    """Whether a field's value is a leaf or subtree of the module's pytree."""
    if isinstance(value, Module) or is_array(value):
        return True
    if isinstance(value, (list, tuple, dict)):
        leaves = tree_util.tree_leaves(value, is_leaf=lambda x: isinstance(x, Module))
        return any(isinstance(x, Module) or is_array(x) for x in leaves)
    return False


# ids of the modules whose __init__ is running: only they may set their fields
_INITIALIZING = set()


def _has_custom_init(cls):
    for klass in cls.__mro__:
        if klass is Module:
            return False
        init = klass.__dict__.get("__init__")
        if init is not None and not getattr(init, "_ft_generated", False):
            return True
    return False


def _wrap_init(init, generated):
    @functools.wraps(init)
    def __init__(self, *args, **kwargs):
        outermost = id(self) not in _INITIALIZING  # a subclass's __init__ calling super().__init__ is not
        if outermost:
            _INITIALIZING.add(id(self))
        try:
            init(self, *args, **kwargs)
        finally:
            if outermost:
                _INITIALIZING.discard(id(self))
        if outermost:
            _finish_init(self)
    __init__._ft_generated = generated
    return __init__


def _finish_init(module):
    cls = type(module)
    values = module.__dict__
    missing = [name for name in cls._ft_fields if name not in values]
    if missing:
        raise TypeError(at_user_line(f"{cls.__name__}.__init__ did not set the field(s) {', '.join(missing)}: "
                                     f"a module sets every field it declares"))
    dynamic, static = [], []
    for f in dataclasses.fields(cls):
        is_leaf = f.metadata.get("static")
        is_leaf = _holds_arrays(values[f.name]) if is_leaf is None else not is_leaf
        (dynamic if is_leaf else static).append(f.name)
    values["_ft_layout"] = (tuple(dynamic), tuple(static))


def _flatten(module):
    values = module.__dict__
    dynamic, static = values["_ft_layout"]
    return [values[name] for name in dynamic], (values["_ft_layout"], tuple(values[name] for name in static))


def _child_keys(module, aux):
    return [tree_util.GetAttrKey(name) for name in aux[0][0]]


def _unflatten(cls, aux, children):
    # NB: as Equinox's, unflattening does not call __init__: the children may be tracers, None or
    # anything a tree_map put there
    layout, static_values = aux
    module = object.__new__(cls)
    values = module.__dict__
    values.update(zip(layout[0], children, strict=True))
    values.update(zip(layout[1], static_values, strict=True))
    values["_ft_layout"] = layout
    return module


def _short(value):
    if is_array(value) and hasattr(value, "shape"):
        dtype = np.dtype(value.dtype)
        return f"{_DTYPE_SHORT.get(dtype.name, dtype.name)}[{','.join(map(str, value.shape))}]"
    if callable(value) and hasattr(value, "__name__"):
        return value.__name__
    return repr(value)


_DTYPE_SHORT = {"float16": "f16", "float32": "f32", "float64": "f64", "complex64": "c64", "complex128": "c128",
                "int8": "i8", "int16": "i16", "int32": "i32", "int64": "i64", "uint8": "u8", "uint32": "u32",
                "uint64": "u64", "bool": "bool"}


class Module:
    """The base class of ftrans.nn's layers: subclasses are frozen dataclasses registered as
    pytrees (array fields are leaves, the rest static; see the module docstring)."""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        custom_init = _has_custom_init(cls)
        # not frozen=True: a frozen dataclass cannot set its fields in a hand-written __init__;
        # __setattr__ below freezes it instead
        dataclasses.dataclass(cls, init=not custom_init, repr=False, eq=False)
        cls._ft_fields = tuple(f.name for f in dataclasses.fields(cls))
        cls.__init__ = _wrap_init(cls.__init__, generated=not custom_init)
        tree_util.register_pytree_node(cls, _flatten, functools.partial(_unflatten, cls))
        # key paths name the fields (GetAttrKey('weight')), as register_dataclass's do
        tree_util._CHILD_KEYS[cls] = _child_keys

    def __setattr__(self, name, value):
        if id(self) in _INITIALIZING and name in type(self)._ft_fields:
            object.__setattr__(self, name, value)
            return
        if name in type(self)._ft_fields:
            raise dataclasses.FrozenInstanceError(
                f"cannot assign to field {name!r} of a {type(self).__name__}: modules are immutable pytrees; "
                f"ft.nn.tree_at(lambda m: m.{name}, module, new_value) makes a modified copy")
        raise AttributeError(f"{type(self).__name__} has no field {name!r}: declare it in the class body "
                             f"(fields are set in __init__ only)")

    def __delattr__(self, name):
        raise dataclasses.FrozenInstanceError(f"cannot delete field {name!r} of a {type(self).__name__}")

    def __repr__(self):
        parts = [f"{name}={_short(getattr(self, name))}" for name in type(self)._ft_fields]
        return f"{type(self).__name__}({', '.join(parts)})"

    def describe(self):
        """One line saying what this layer is (its static fields), for `summary`."""
        _, static = self.__dict__["_ft_layout"]
        return f"{type(self).__name__}({', '.join(f'{n}={_short(getattr(self, n))}' for n in static)})"


class Lambda(Module):
    """A function of one input as a layer of a `Sequential` (the function is a static field)."""
    fn: object = field(static=True)

    def __call__(self, x, *, key=None):
        return self.fn(x)

    def describe(self):
        return f"Lambda({_short(self.fn)})"


# -------------------- out-of-place edits --------------------

class _Position:
    """Stands for a leaf of the tree that `tree_at`'s `where` is shown."""
    __slots__ = ("path",)

    def __init__(self, path):
        self.path = path


def _children(node, is_leaf):
    """(children, treedef) one level down, or None for a leaf."""
    if is_leaf is not None and is_leaf(node):
        return None
    leaves, treedef = tree_util.tree_flatten(node, is_leaf=lambda child: child is not node)
    if treedef.num_leaves == 1 and len(leaves) == 1 and leaves[0] is node:
        return None
    return leaves, treedef


def _mirror(node, path, is_leaf, positions, keep):
    """A copy of `node` whose leaves are _Positions; `positions` maps the id of each of its nodes
    (subtrees and leaves) to its path."""
    split = _children(node, is_leaf)
    if split is None:
        copy = _Position(path)
    else:
        children, treedef = split
        copy = treedef.unflatten([_mirror(c, path + (i,), is_leaf, positions, keep)
                                  for i, c in enumerate(children)])
    keep.append(copy)  # alive until tree_at returns, so that ids stay unique
    if copy is not node:  # None and () rebuild as themselves: shared objects, not positions
        positions.setdefault(id(copy), path)
    return copy


def _rebuild(node, path, replacements, is_leaf):
    if path in replacements:
        return replacements[path](node)
    split = _children(node, is_leaf)
    if split is None:
        return node
    children, treedef = split
    return treedef.unflatten([_rebuild(c, path + (i,), replacements, is_leaf) for i, c in enumerate(children)])


_NOTHING = object()


@api_boundary
def tree_at(where, pytree, replace=_NOTHING, replace_fn=_NOTHING, is_leaf=None):
    """A copy of `pytree` with the node(s) `where(pytree)` picks replaced (Equinox's tree_at):

        model = ft.nn.tree_at(lambda m: m.layers[0].bias, model, new_bias)
        model = ft.nn.tree_at(lambda m: (m.weight, m.bias), model, replace_fn=lambda x: 0 * x)

    `where` returns one node (a leaf or a subtree) or a tuple/list of them; `replace` gives the
    new value (a sequence of them when `where` returns several), `replace_fn` maps the old value
    to the new one. Only nodes of the pytree can be replaced: a module's static fields are part
    of its structure (build a new module to change them)."""
    if (replace is _NOTHING) == (replace_fn is _NOTHING):
        raise TypeError(at_user_line("tree_at: pass exactly one of replace and replace_fn"))
    positions, keep = {}, []
    mirror = _mirror(pytree, (), is_leaf, positions, keep)
    picked = where(mirror)
    if id(picked) in positions:
        nodes, several = [picked], False
    elif isinstance(picked, (tuple, list)) and all(id(p) in positions for p in picked):
        nodes, several = list(picked), True
    else:
        raise ValueError(at_user_line(
            "tree_at: `where` must return nodes of the pytree (leaves or subtrees), or a tuple/list of them; "
            f"it returned {picked!r}, which is not one (a static field of a module, such as a size or an "
            "activation function, is not a node: build a new module to change it)"))
    paths = [positions[id(node)] for node in nodes]
    if len(set(paths)) != len(paths):
        raise ValueError(at_user_line("tree_at: `where` returned the same node twice"))
    if replace is not _NOTHING:
        values = list(replace) if several else [replace]
        if len(values) != len(paths):
            raise ValueError(at_user_line(f"tree_at: `where` picked {len(paths)} nodes but `replace` has "
                                          f"{len(values)} values"))
        replacements = {path: (lambda _, v=v: v) for path, v in zip(paths, values, strict=True)}
    else:
        replacements = dict.fromkeys(paths, replace_fn)
    return _rebuild(pytree, (), replacements, is_leaf)


# -------------------- walking modules --------------------

def _submodules(module):
    """(name, value) of a module's direct submodules and direct parameters, in field order; names
    like "layers[0]"."""
    dynamic, _ = module.__dict__["_ft_layout"]
    for name in dynamic:
        pairs, _ = tree_util.tree_flatten_with_path(module.__dict__[name], is_leaf=lambda x: isinstance(x, Module))
        for path, value in pairs:
            yield name + tree_util.keystr(path), value


def _replace_modules(tree, fn):
    """`tree` with every module m (innermost first) replaced by fn(m)."""
    def visit(node):
        if isinstance(node, Module):
            leaves, treedef = tree_util.tree_flatten(node, is_leaf=lambda x: x is not node and isinstance(x, Module))
            node = treedef.unflatten([visit(x) for x in leaves])
            return fn(node)
        if isinstance(node, (list, tuple, dict)):
            leaves, treedef = tree_util.tree_flatten(node, is_leaf=lambda x: isinstance(x, Module))
            return treedef.unflatten([visit(x) if isinstance(x, Module) else x for x in leaves])
        return node
    return visit(tree)


def _with_static(module, **changes):
    """A copy of `module` with static fields changed (the layout kept)."""
    copy = object.__new__(type(module))
    copy.__dict__.update(module.__dict__)
    copy.__dict__.update(changes)
    return copy


@api_boundary
def inference_mode(tree, value=True):
    """`tree` with every module that has an `inference` field (Dropout, BatchNorm) set to `value`:
    Dropout then passes its input through and BatchNorm uses its running statistics."""
    def switch(module):
        if "inference" in type(module)._ft_fields:
            if "inference" in module.__dict__["_ft_layout"][0]:
                raise TypeError(at_user_line(f"inference_mode: {type(module).__name__}.inference is a leaf"))
            return _with_static(module, inference=bool(value))
        return module
    return _replace_modules(tree, switch)


@api_boundary
def count_params(tree):
    """The number of numbers in the array leaves of `tree` (a module or any pytree)."""
    return sum(int(math.prod(np.shape(x))) for x in tree_util.tree_leaves(tree) if is_array(x))


@api_boundary
def summary(tree):
    """A table, one line per module (indented by depth): its path, what it is, the shapes of its
    own parameters and the number of parameters under it; and the total. Print it."""
    rows = []

    def visit(name, module, depth):
        own = [f"{n}:{_short(v)}" for n, v in _submodules(module) if not isinstance(v, Module)]
        rows.append(("  " * depth + name, module.describe(), " ".join(own), count_params(module)))
        for n, v in _submodules(module):
            if isinstance(v, Module):
                visit(n, v, depth + 1)

    pairs, _ = tree_util.tree_flatten_with_path(tree, is_leaf=lambda x: isinstance(x, Module))
    for path, value in pairs:
        if isinstance(value, Module):
            visit(tree_util.keystr(path) or type(value).__name__, value, 0)
    if not rows:
        return f"no modules; {count_params(tree):,} parameters"
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = [f"{a:<{widths[0]}}  {b:<{widths[1]}}  {c:<{widths[2]}}  {n:>12,}".rstrip() for a, b, c, n in rows]
    lines.append(f"total: {count_params(tree):,} parameters")
    return "\n".join(lines)
