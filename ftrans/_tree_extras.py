"""The rest of jax.tree_util: key paths, registration helpers, Partial, reductions, transposition.

Key paths name where a leaf sits: ``DictKey('w')`` for a dict entry, ``SequenceKey(0)``
for a tuple or list item, ``GetAttrKey('x')`` for a namedtuple or dataclass field,
``FlattenedIndexKey(i)`` for the i-th child of another registered class; `keystr` prints
them as JAX does (``['w'][0].x``). Walks are loops over an explicit stack, as flattening is.
"""
from __future__ import annotations

import dataclasses
import functools
import operator

from ftrans import tree_util as _tu
from ftrans.tree_util import register_pytree_node, tree_flatten, tree_leaves, tree_structure, tree_unflatten
from ir.errors import api_boundary, at_user_line


# -------------------- keys --------------------

@dataclasses.dataclass(frozen=True)
class DictKey:
    key: object

    def __str__(self):
        return f"[{self.key!r}]"


@dataclasses.dataclass(frozen=True)
class SequenceKey:
    idx: int

    def __str__(self):
        return f"[{self.idx}]"


@dataclasses.dataclass(frozen=True)
class GetAttrKey:
    name: str

    def __str__(self):
        return f".{self.name}"


@dataclasses.dataclass(frozen=True)
class FlattenedIndexKey:
    key: int

    def __str__(self):
        return f"[<flat index {self.key}>]"


def _simple(key):
    if isinstance(key, DictKey):
        return str(key.key)
    if isinstance(key, SequenceKey):
        return str(key.idx)
    if isinstance(key, GetAttrKey):
        return key.name
    if isinstance(key, FlattenedIndexKey):
        return str(key.key)
    return str(key)


@api_boundary
def keystr(keys, *, simple=False, separator=""):
    """A key path as text: ``['w'][0].x`` (JAX's), or with `simple` the bare keys joined by `separator`."""
    return separator.join(_simple(k) if simple else str(k) for k in keys)


def _children_with_keys(node, is_leaf):
    """((key, child) pairs) of a pytree node, or None for a leaf."""
    if is_leaf is not None and is_leaf(node):
        return None
    node_type = type(node)
    split = _tu._split(node, node_type)
    if split is None:
        return None
    children, aux = split
    if node_type is dict:
        keys = [DictKey(k) for k in aux]
    elif _tu._is_namedtuple_type(node_type):
        keys = [GetAttrKey(name) for name in node_type._fields]
    elif node_type in (list, tuple):
        keys = [SequenceKey(i) for i in range(len(children))]
    elif node_type in _tu._CHILD_KEYS:
        keys = _tu._CHILD_KEYS[node_type](node, aux)
    else:
        keys = [FlattenedIndexKey(i) for i in range(len(children))]
    return list(zip(keys, children, strict=True))


@api_boundary
def tree_flatten_with_path(tree, is_leaf=None):
    """([(key path, leaf), ...], treedef), the leaves in tree_flatten's order."""
    pairs = []
    stack = [((), tree)]
    while stack:
        path, node = stack.pop()
        children = _children_with_keys(node, is_leaf)
        if children is None:
            pairs.append((path, node))
        else:
            stack.extend((path + (key,), child) for key, child in reversed(children))
    return pairs, tree_structure(tree, is_leaf)


@api_boundary
def tree_leaves_with_path(tree, is_leaf=None):
    return tree_flatten_with_path(tree, is_leaf)[0]


@api_boundary
def tree_map_with_path(f, tree, *rest, is_leaf=None):
    """tree_map whose `f` also gets each leaf's key path first: f(path, leaf, *other_leaves)."""
    pairs, treedef = tree_flatten_with_path(tree, is_leaf)
    others = []
    for i, other in enumerate(rest):
        leaves, other_def = tree_flatten(other, is_leaf)
        if other_def != treedef:
            raise ValueError(at_user_line(f"tree_map_with_path: argument {i + 1} has structure {other_def}, "
                                          f"but the first has {treedef}"))
        others.append(leaves)
    return tree_unflatten(treedef, [f(path, leaf, *xs) for (path, leaf), *xs in zip(pairs, *others, strict=True)])


# -------------------- reductions --------------------

_NO_INITIALIZER = object()


@api_boundary
def tree_reduce(function, tree, initializer=_NO_INITIALIZER, is_leaf=None):
    """functools.reduce of `function` over the leaves of `tree`."""
    leaves = tree_leaves(tree, is_leaf)
    if initializer is _NO_INITIALIZER:
        if not leaves:
            raise TypeError(at_user_line("tree_reduce of a tree with no leaves needs an initializer"))
        return functools.reduce(function, leaves)
    return functools.reduce(function, leaves, initializer)


@api_boundary
def tree_all(tree, *, is_leaf=None):
    """Whether every leaf is true (a traced leaf cannot be asked: its value is unknown)."""
    return all(tree_leaves(tree, is_leaf))


# -------------------- registration --------------------

@api_boundary
def register_pytree_node_class(cls):
    """Class decorator: `cls` flattens by its `tree_flatten()` method and rebuilds by its
    `tree_unflatten(aux_data, children)` classmethod."""
    if not isinstance(cls, type) or not hasattr(cls, "tree_flatten") or not hasattr(cls, "tree_unflatten"):
        raise TypeError(at_user_line(f"register_pytree_node_class: {cls!r} must be a class with a tree_flatten "
                                     f"method and a tree_unflatten classmethod"))
    register_pytree_node(cls, operator.methodcaller("tree_flatten"), cls.tree_unflatten)
    return cls


@api_boundary
def register_dataclass(nodetype=None, data_fields=None, meta_fields=None, drop_fields=()):
    """Register a dataclass (a decorator too): `data_fields` are its children, `meta_fields`
    (hashable) its static aux data. Without either, fields with ``metadata={'static': True}``
    are meta fields and the rest data fields."""
    if nodetype is None:
        return functools.partial(register_dataclass, data_fields=data_fields, meta_fields=meta_fields,
                                 drop_fields=drop_fields)
    if not isinstance(nodetype, type):
        raise TypeError(at_user_line(f"register_dataclass: {nodetype!r} is not a class"))
    if data_fields is None and meta_fields is None:
        if not dataclasses.is_dataclass(nodetype):
            raise TypeError(at_user_line(f"register_dataclass: {nodetype.__name__} is not a dataclass; pass "
                                         f"data_fields and meta_fields"))
        fields = [f for f in dataclasses.fields(nodetype) if f.init and f.name not in drop_fields]
        meta_fields = [f.name for f in fields if f.metadata.get("static", False)]
        data_fields = [f.name for f in fields if not f.metadata.get("static", False)]
    elif data_fields is None or meta_fields is None:
        raise TypeError(at_user_line("register_dataclass: pass both data_fields and meta_fields, or neither"))
    data_fields, meta_fields = tuple(data_fields), tuple(meta_fields)
    if dataclasses.is_dataclass(nodetype):
        init_fields = {f.name for f in dataclasses.fields(nodetype) if f.init} - set(drop_fields)
        if set(data_fields) | set(meta_fields) != init_fields:
            raise ValueError(at_user_line(
                f"register_dataclass: data_fields {data_fields} and meta_fields {meta_fields} must together be "
                f"the init fields of {nodetype.__name__}: {sorted(init_fields)}"))

    def flatten(node):
        return [getattr(node, name) for name in data_fields], tuple(getattr(node, name) for name in meta_fields)

    def unflatten(meta, children):
        return nodetype(**dict(zip(data_fields, children, strict=True)), **dict(zip(meta_fields, meta, strict=True)))
    register_pytree_node(nodetype, flatten, unflatten)
    _tu._CHILD_KEYS[nodetype] = lambda node, aux: [GetAttrKey(name) for name in data_fields]
    return nodetype


class Partial(functools.partial):
    """functools.partial as a pytree: its arguments are children (traced by transformations),
    the function is static aux data. Pass one to a jitted function as an ordinary argument."""

    def __new__(cls, func, *args, **kw):
        if isinstance(func, functools.partial):  # flatten nested partials, as JAX's does
            original = func
            func = func.func
            args = original.args + args
            kw = {**original.keywords, **kw}
        return super().__new__(cls, func, *args, **kw)


register_pytree_node(Partial, lambda p: ((p.args, p.keywords), p.func),
                     lambda func, children: Partial(func, *children[0], **children[1]))


# -------------------- structure up to a prefix, transposition --------------------

_SLOT = object()


def flatten_up_to(treedef, tree):
    """The subtrees of `tree` at the leaves of `treedef` (a prefix of tree's structure)."""
    pattern = tree_unflatten(treedef, [_SLOT] * treedef.num_leaves)
    out = []
    stack = [(pattern, tree)]
    while stack:
        shape, node = stack.pop()
        if shape is _SLOT:
            out.append(node)
            continue
        shape_split, node_split = _tu._split(shape, type(shape)), _tu._split(node, type(node))
        if type(shape) is not type(node) or node_split is None or shape_split[1] != node_split[1] \
                or len(shape_split[0]) != len(node_split[0]):
            raise ValueError(at_user_line(f"the tree {tree!r} does not have the structure {treedef} as a prefix"))
        stack.extend(reversed(list(zip(shape_split[0], node_split[0], strict=True))))
    return out


@api_boundary
def tree_transpose(outer_treedef, inner_treedef, pytree_to_transpose):
    """An outer tree of inner trees -> the inner tree of outer trees."""
    parts = flatten_up_to(outer_treedef, pytree_to_transpose)
    if inner_treedef is None:
        inner_treedef = tree_structure(parts[0]) if parts else tree_structure(None)
    rows = [flatten_up_to(inner_treedef, part) for part in parts]
    columns = [outer_treedef.unflatten([row[i] for row in rows]) for i in range(inner_treedef.num_leaves)]
    return inner_treedef.unflatten(columns)
