"""Pytrees: nested tuples, lists, dicts, None and registered classes of leaves.

Flattening is iterative (an explicit stack), so deep trees need no recursion.
"""
from __future__ import annotations

__all__ = ["PyTreeDef", "register_pytree_node", "tree_flatten", "tree_leaves", "tree_map",
           "tree_structure", "tree_unflatten"]

# type -> (flatten: node -> (children, aux), unflatten: (aux, children) -> node)
_NODE_TYPES = {
    tuple: (lambda t: (t, None), lambda _, children: tuple(children)),
    list: (lambda l: (l, None), lambda _, children: list(children)),
    dict: (lambda d: ([d[k] for k in sorted(d)], tuple(sorted(d))),
           lambda keys, children: dict(zip(keys, children, strict=True))),
    type(None): (lambda _: ((), None), lambda _, children: None),
}


def register_pytree_node(node_type, flatten_func, unflatten_func):
    """Register `node_type`: flatten_func(node) -> (children, aux_data);
    unflatten_func(aux_data, children) -> node (as JAX)."""
    _NODE_TYPES[node_type] = (flatten_func, unflatten_func)


def _node_entry(node):
    entry = _NODE_TYPES.get(type(node))
    if entry is None and isinstance(node, tuple) and hasattr(node, "_fields"):
        return (lambda t: (tuple(t), None), lambda _, children, cls=type(node): cls(*children))
    return entry


class PyTreeDef:
    """The structure of a pytree: node types, aux data and where the leaves go.

    Stored as a post-order list of (node_type, aux, num_children, unflatten);
    a leaf is (None, None, 0, None).
    """
    __slots__ = ("nodes", "num_leaves", "_hash")

    def __init__(self, nodes):
        self.nodes = tuple(nodes)
        self.num_leaves = sum(1 for n in self.nodes if n[0] is None)
        self._hash = hash(tuple((n[0], _hashable(n[1]), n[2]) for n in self.nodes))

    def __eq__(self, other):
        return (isinstance(other, PyTreeDef) and len(self.nodes) == len(other.nodes)
                and all(a[0] is b[0] and a[1] == b[1] and a[2] == b[2]
                        for a, b in zip(self.nodes, other.nodes)))

    def __hash__(self):
        return self._hash

    def __repr__(self):
        return f"PyTreeDef({self._describe()})"

    def _describe(self):
        """The structure as text, e.g. ``({'a': *, 'b': [*, None]},)``.

        Linear in the size of the tree: the post-order node list is turned
        into child lists, then written out in pre-order from an explicit stack
        (building nested strings bottom-up would copy the deep parts again at
        every level)."""
        children_of, pending = [], []
        for i, (_, _, n, _) in enumerate(self.nodes):
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
            node_type, aux, n, _ = self.nodes[item]
            children = children_of[item]
            if node_type is None:
                parts = ["*"]
            elif node_type is type(None):
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


def _is_plain_leaf(x):
    return type(x) not in _NODE_TYPES and not isinstance(x, tuple)


_LEAF_NODE = (None, None, 0, None)
_TUPLE_OF_LEAVES_DEFS = {}  # n -> the treedef of a tuple of n leaves
_MAX_TUPLE_OF_LEAVES_DEFS = 256  # distinct n kept; past that the cache starts over (each holds n nodes)


def _tuple_of_leaves_def(n):
    treedef = _TUPLE_OF_LEAVES_DEFS.get(n)
    if treedef is None:
        if len(_TUPLE_OF_LEAVES_DEFS) >= _MAX_TUPLE_OF_LEAVES_DEFS:
            _TUPLE_OF_LEAVES_DEFS.clear()
        treedef = _TUPLE_OF_LEAVES_DEFS[n] = PyTreeDef([_LEAF_NODE] * n + [(tuple, None, n, _NODE_TYPES[tuple][1])])
    return treedef


def tree_flatten(tree, is_leaf=None):
    """(leaves, treedef): leaves in order (dict keys sorted), treedef to rebuild the tree."""
    if is_leaf is None:  # fast paths: every transformation flattens its arguments on every call
        if _is_plain_leaf(tree):
            return [tree], _LEAF_DEF
        if type(tree) is tuple and all(_is_plain_leaf(x) for x in tree):
            return list(tree), _tuple_of_leaves_def(len(tree))
    leaves, nodes = [], []
    stack = [(tree, False)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            nodes.append(node)
            continue
        entry = None if (is_leaf is not None and is_leaf(node)) else _node_entry(node)
        if entry is None:
            leaves.append(node)
            nodes.append((None, None, 0, None))
            continue
        flatten, unflatten = entry
        children, aux = flatten(node)
        children = list(children)
        stack.append(((type(node), aux, len(children), unflatten), True))
        stack.extend((child, False) for child in reversed(children))
    return leaves, PyTreeDef(nodes)


def tree_unflatten(treedef: PyTreeDef, leaves):
    leaves = list(leaves)
    if len(leaves) != treedef.num_leaves:
        raise ValueError(f"tree_unflatten: the structure {treedef} has {treedef.num_leaves} "
                         f"leaves, got {len(leaves)}")
    nodes = treedef.nodes
    if len(nodes) == len(leaves) + 1 and nodes[-1][0] is tuple:  # fast path: a tuple of leaves
        return tuple(leaves)
    if treedef is _LEAF_DEF:
        return leaves[0]
    leaves.reverse()
    stack = []
    for node_type, aux, n, unflatten in treedef.nodes:
        if node_type is None:
            stack.append(leaves.pop())
            continue
        children = stack[len(stack) - n:] if n else []
        del stack[len(stack) - n:]
        stack.append(unflatten(aux, children))
    return stack[0]


def tree_leaves(tree, is_leaf=None):
    return tree_flatten(tree, is_leaf)[0]


def tree_structure(tree, is_leaf=None):
    return tree_flatten(tree, is_leaf)[1]


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


_LEAF_DEF = PyTreeDef([_LEAF_NODE])
