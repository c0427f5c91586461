"""Pytrees: nested tuples, lists, dicts, None and registered classes of leaves.

Flattening is iterative (an explicit stack), so deep trees need no recursion.
The public functions are api boundaries (their errors show the user's frames),
except `tree_flatten` and `tree_unflatten`: every transformation calls them on
every call, where a boundary's cost would show, and their own errors (a dict
whose keys cannot be sorted, a wrong number of leaves) say what is wrong.

Every transformation flattens its arguments on every call, and a cached `jit`
call does little else, so flattening avoids per-leaf Python work: a node whose
children are all leaves (a list of arrays, a dict of parameters) hands them
over in one C-level `extend`, and its structure is one record, so that
comparing and hashing two structures costs per node, not per leaf.
"""
from __future__ import annotations

from ir.core import HOST_TYPES
from ir.errors import api_boundary, at_user_line
from ftrans._unavailable import missing_name_hook as _missing_name_hook

__all__ = ["DictKey", "FlattenedIndexKey", "GetAttrKey", "Partial", "PyTreeDef", "SequenceKey", "keystr",
           "register_dataclass", "register_pytree_node", "register_pytree_node_class", "tree_all", "tree_flatten",
           "tree_flatten_with_path", "tree_leaves", "tree_leaves_with_path", "tree_map", "tree_map_with_path",
           "tree_reduce", "tree_structure", "tree_transpose", "tree_unflatten"]


def _sorted_keys(d):
    """The keys of a dict in flattening order: sorted, as JAX sorts them."""
    try:
        return tuple(sorted(d))
    except TypeError:
        kinds = sorted({type(k).__name__ for k in d})
        raise TypeError(at_user_line(
            f"a dict in a pytree has keys that cannot be sorted (keys of types {', '.join(kinds)}): "
            "a pytree orders a dict's entries by sorting its keys, as JAX does; use keys of one "
            "type (e.g. all str)")) from None


def _flatten_dict(d):
    keys = _sorted_keys(d)
    return list(map(d.__getitem__, keys)), keys


# type -> (flatten: node -> (children, aux), unflatten: (aux, children) -> node)
_NODE_TYPES = {
    tuple: (lambda t: (t, None), lambda _, children: tuple(children)),
    list: (lambda l: (l, None), lambda _, children: list(children)),
    dict: (_flatten_dict, lambda keys, children: dict(zip(keys, children, strict=True))),
    type(None): (lambda _: ((), None), lambda _, children: None),
}


# NumPy arrays and scalars and Python numbers: leaves, told apart from nodes by one C-level check
_ARRAY_TYPES = set(HOST_TYPES)


@api_boundary
def register_pytree_node(node_type, flatten_func, unflatten_func):
    """Register `node_type`: flatten_func(node) -> (children, aux_data);
    unflatten_func(aux_data, children) -> node (as JAX)."""
    if not isinstance(node_type, type):
        raise TypeError(at_user_line(f"register_pytree_node: node_type must be a class, got {node_type!r}"))
    if not callable(flatten_func) or not callable(unflatten_func):
        raise TypeError(at_user_line("register_pytree_node: flatten_func and unflatten_func must be callable"))
    _NODE_TYPES[node_type] = (flatten_func, unflatten_func)
    _ARRAY_TYPES.discard(node_type)
    _CHILD_KEYS.pop(node_type, None)


def _is_namedtuple_type(node_type):
    return issubclass(node_type, tuple) and hasattr(node_type, "_fields")


def _node_entry(node):
    """(flatten, unflatten) of a pytree node; None for a leaf."""
    entry = _NODE_TYPES.get(type(node))
    if entry is None and _is_namedtuple_type(type(node)):
        return (lambda t: (tuple(t), None), lambda _, children, cls=type(node): cls(*children))
    return entry


def _split(node, node_type):
    """(children, aux) of a pytree node, or None for a leaf."""
    if node_type is list or node_type is tuple:
        return node, None
    if node_type is dict:
        return _flatten_dict(node)
    entry = _NODE_TYPES.get(node_type)
    if entry is not None:
        children, aux = entry[0](node)
        return (children if type(children) in (list, tuple) else list(children)), aux
    if _is_namedtuple_type(node_type):
        return node, None
    return None


def _is_leaf_type(node_type):
    return node_type not in _NODE_TYPES and not _is_namedtuple_type(node_type)


# PyTreeDef.nodes: post-order, one entry per node: _LEAF for a leaf, else the
# record (node_type, aux, number of children, whether the children are all
# leaves). Leaf children of an all-leaves node have no entries of their own, so
# the structure of a list of 100,000 arrays is one record.
_LEAF = None


class PyTreeDef:
    """The structure of a pytree: node types, aux data and where the leaves go."""
    __slots__ = ("nodes", "num_leaves", "_hash")

    def __init__(self, nodes, num_leaves):
        self.nodes = tuple(nodes)
        self.num_leaves = num_leaves
        self._hash = None

    def __eq__(self, other):
        return self is other or (isinstance(other, PyTreeDef) and self.num_leaves == other.num_leaves
                                 and self.nodes == other.nodes)

    def unflatten(self, leaves):
        """The pytree of this structure holding `leaves` (JAX's `treedef.unflatten`)."""
        return tree_unflatten(self, leaves)

    def flatten_up_to(self, tree):
        """The subtrees of `tree` where this structure has its leaves."""
        from ftrans._tree_extras import flatten_up_to
        return flatten_up_to(self, tree)

    def __hash__(self):
        if self._hash is None:
            try:
                self._hash = hash(self.nodes)
            except TypeError:  # aux data of a registered class that cannot be hashed
                self._hash = hash(tuple(r if r is _LEAF else (r[0], _hashable(r[1]), r[2], r[3])
                                        for r in self.nodes))
        return self._hash

    def __repr__(self):
        return f"PyTreeDef({self._describe()})"

    def _describe(self):
        """The structure as text, e.g. ``({'a': *, 'b': [*, None]},)``.

        Linear in the size of the tree: the post-order node list is turned
        into child lists, then written out in pre-order from an explicit stack
        (building nested strings bottom-up would copy the deep parts again at
        every level)."""
        children_of, pending = [], []  # a child is a node's index, or "*" for a leaf child
        for i, record in enumerate(self.nodes):
            if record is _LEAF:
                children_of.append([])
            elif record[3]:
                children_of.append(["*"] * record[2])
            else:
                n = record[2]
                children_of.append(pending[len(pending) - n:] if n else [])
                del pending[len(pending) - n:]
            pending.append(i)
        out = []
        work = list(reversed(_joined(pending, ", ")))
        while work:
            item = work.pop()
            if isinstance(item, str):
                out.append(item)
                continue
            record = self.nodes[item]
            if record is _LEAF:
                out.append("*")
                continue
            node_type, aux, n, _ = record
            children = children_of[item]
            if node_type is type(None):
                parts = ["None"]
            elif node_type is tuple:
                parts = ["(", *_joined(children, ", "), "," if n == 1 else "", ")"]
            elif node_type is list:
                parts = ["[", *_joined(children, ", "), "]"]
            elif node_type is dict:
                items = []
                for k, child in zip(aux, children, strict=True):
                    items.extend([", " if items else "", f"{k!r}: ", child])
                parts = ["{", *items, "}"]
            else:
                parts = [f"{node_type.__name__}(", *_joined(children, ", "), ")"]
            work.extend(reversed(parts))
        return "".join(out)

    def unflatten(self, leaves):
        return tree_unflatten(self, leaves)


def _joined(items, separator):
    """items with `separator` strings between them."""
    out = []
    for item in items:
        if out:
            out.append(separator)
        out.append(item)
    return out


def _hashable(aux):
    try:
        hash(aux)
        return aux
    except TypeError:
        return repr(aux)


# On the flattening stack: the children of the innermost open node are all flattened
_CLOSE = object()


_TUPLE_OF_LEAVES_DEFS = {}  # n -> the treedef of a tuple of n leaves (the arguments of most calls)
_MAX_TUPLE_OF_LEAVES_DEFS = 256  # distinct n kept; past that the cache starts over


def _tuple_of_leaves_def(n):
    treedef = _TUPLE_OF_LEAVES_DEFS.get(n)
    if treedef is None:
        if len(_TUPLE_OF_LEAVES_DEFS) >= _MAX_TUPLE_OF_LEAVES_DEFS:
            _TUPLE_OF_LEAVES_DEFS.clear()
        treedef = _TUPLE_OF_LEAVES_DEFS[n] = PyTreeDef([(tuple, None, n, True)], n)
    return treedef


def tree_flatten(tree, is_leaf=None):
    """(leaves, treedef): leaves in order (dict keys sorted), treedef to rebuild the tree.
    `is_leaf(x)` true makes a node `x` a leaf."""
    tree_type = type(tree)
    if is_leaf is None:  # fast paths: one value, and the arguments of most calls
        if tree_type is tuple:
            if _ARRAY_TYPES.issuperset(map(type, tree)):
                return list(tree), _tuple_of_leaves_def(len(tree))
        elif _is_leaf_type(tree_type):
            return [tree], _LEAF_DEF
    leaves, nodes = [], []
    closing = []  # the records of the nodes whose children are on the stack, innermost last
    stack = [tree]
    pop, push, extend = stack.pop, stack.append, stack.extend  # NB: bound once, for the per-node loop
    while stack:
        node = pop()
        node_type = type(node)
        if node is _CLOSE:
            record = closing.pop()
            n = record[2]
            # the children are all leaves exactly when the last n entries are leaves (a child
            # that is a node ends with its own record): then they become one record
            if nodes[-1] is _LEAF and nodes[len(nodes) - n:].count(_LEAF) == n:
                del nodes[len(nodes) - n:]
                record = (record[0], record[1], n, True)
            nodes.append(record)
            continue
        if is_leaf is not None and is_leaf(node):
            split = None
        elif node_type is list or node_type is tuple:
            split = node, None
        elif node_type is dict:
            split = _flatten_dict(node)
        else:
            split = None if node_type in _ARRAY_TYPES else _split(node, node_type)
        if split is None:
            leaves.append(node)
            nodes.append(_LEAF)
            continue
        children, aux = split
        if not children or (is_leaf is None and _ARRAY_TYPES.issuperset(map(type, children))):
            leaves.extend(children)
            nodes.append((node_type, aux, len(children), True))
        else:
            closing.append((node_type, aux, len(children), False))
            push(_CLOSE)
            extend(reversed(children))
    return leaves, PyTreeDef(nodes, len(leaves))


def tree_unflatten(treedef: PyTreeDef, leaves):
    leaves = list(leaves)
    if len(leaves) != treedef.num_leaves:
        raise ValueError(f"tree_unflatten: the structure {treedef} has {treedef.num_leaves} "
                         f"leaves, got {len(leaves)}")
    nodes = treedef.nodes
    if len(nodes) == 1:  # fast path: a leaf, or one node of leaves (a tuple of arguments)
        return leaves[0] if nodes[0] is _LEAF else _build(nodes[0], leaves)
    stack = []
    position = 0
    for record in nodes:
        if record is _LEAF:
            stack.append(leaves[position])
            position += 1
            continue
        n = record[2]
        if record[3]:
            children = leaves[position:position + n]
            position += n
        elif n:
            children = stack[len(stack) - n:]
            del stack[len(stack) - n:]
        else:
            children = []
        stack.append(_build(record, children))
    return stack[0]


def _build(record, children):
    """The node of `record` holding `children` (a fresh list, which a list node keeps)."""
    node_type, aux = record[0], record[1]
    if node_type is tuple:
        return tuple(children)
    if node_type is list:
        return children
    entry = _NODE_TYPES.get(node_type)
    if entry is not None:
        return entry[1](aux, children)
    return node_type(*children)  # a namedtuple


@api_boundary
def tree_leaves(tree, is_leaf=None):
    return tree_flatten(tree, is_leaf)[0]


@api_boundary
def tree_structure(tree, is_leaf=None):
    return tree_flatten(tree, is_leaf)[1]


@api_boundary
def tree_map(f, tree, *rest, is_leaf=None):
    """Apply `f` leaf by leaf; `rest` must have the structure of `tree`."""
    leaves, treedef = tree_flatten(tree, is_leaf)
    others = []
    for i, other in enumerate(rest):
        other_leaves, other_def = tree_flatten(other, is_leaf)
        if other_def != treedef:
            raise ValueError(f"tree_map: argument {i + 1} has structure {other_def}, "
                             f"but the first has {treedef}")
        others.append(other_leaves)
    return tree_unflatten(treedef, [f(*xs) for xs in zip(leaves, *others, strict=True)])


_LEAF_DEF = PyTreeDef([_LEAF], 1)

# node type -> how its children are named in key paths (a function of (node, aux) returning keys);
# types not listed get SequenceKey for tuples and lists, FlattenedIndexKey for registered classes
_CHILD_KEYS = {}

from ftrans._tree_extras import (DictKey, FlattenedIndexKey, GetAttrKey, Partial, SequenceKey,  # noqa: E402
                                 keystr, register_dataclass, register_pytree_node_class, tree_all,
                                 tree_flatten_with_path, tree_leaves_with_path, tree_map_with_path, tree_reduce,
                                 tree_transpose)


__getattr__ = _missing_name_hook(__name__)  # a JAX name not ported yet says so
