"""ftrans.tree_util: pytrees of tuples, lists, dicts, None, namedtuples and registered classes."""
import collections

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ftrans import tree_util
from ftrans.tree_util import (PyTreeDef, register_pytree_node, tree_flatten, tree_leaves, tree_map,
                              tree_structure, tree_unflatten)

Pair = collections.namedtuple("Pair", ["first", "second"])
Triple = collections.namedtuple("Triple", "x y z")


class Box:
    """A registered pytree node with aux data (its label) and two children."""

    def __init__(self, label, left, right):
        self.label, self.left, self.right = label, left, right

    def __repr__(self):
        return f"Box({self.label!r}, {self.left!r}, {self.right!r})"


register_pytree_node(Box, lambda b: ((b.left, b.right), b.label),
                     lambda label, children: Box(label, *children))


class Leaf:
    """An unregistered class: a leaf, compared by identity."""

    def __init__(self, n):
        self.n = n

    def __repr__(self):
        return f"Leaf({self.n})"


# -------------------- a type-strict, iterative tree comparison --------------------

def assert_same_tree(a, b):
    """`a` and `b` have the same node types, dict keys (in the same order), aux
    data and leaves (compared with `is`, or `==` for numbers). Iterative, so it
    works on very deep trees (plain `==` on nested lists recurses); the path to
    a difference is built only when there is one."""
    stack = [(a, b, None)]  # link = (parent link, path segment)
    while stack:
        x, y, link = stack.pop()
        where = lambda: _path(link)  # noqa: E731
        assert type(x) is type(y), f"at {where()}: {type(x).__name__} vs {type(y).__name__}"
        if isinstance(x, dict):
            assert list(x) == list(y), f"at {where()}: keys {list(x)} vs {list(y)}"
            stack.extend((x[k], y[k], (link, f"[{k!r}]")) for k in x)
        elif isinstance(x, (list, tuple)):
            assert len(x) == len(y), f"at {where()}: lengths {len(x)} vs {len(y)}"
            stack.extend((u, v, (link, f"[{i}]")) for i, (u, v) in enumerate(zip(x, y)))
        elif isinstance(x, Box):
            assert x.label == y.label, f"at {where()}: labels {x.label!r} vs {y.label!r}"
            stack.extend([(x.left, y.left, (link, ".left")), (x.right, y.right, (link, ".right"))])
        elif x is None:
            pass
        elif isinstance(x, (int, float)):
            assert x == y, f"at {where()}: {x!r} vs {y!r}"
        else:
            assert x is y, f"at {where()}: {x!r} is not {y!r}"


def _path(link):
    segments = []
    while link is not None:
        link, segment = link
        segments.append(segment)
    return "".join(reversed(segments)) or "the root"


def count_leaves(tree):
    """Count leaves by hand, independently of tree_util (an explicit stack)."""
    n, stack = 0, [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, (list, tuple)):
            stack.extend(node)
        elif isinstance(node, Box):
            stack.extend([node.left, node.right])
        elif node is not None:
            n += 1
    return n


# -------------------- hypothesis: nested trees --------------------

leaves_st = st.one_of(st.integers(-5, 5), st.floats(allow_nan=False), st.builds(Leaf, st.integers(0, 9)))
keys_st = st.text(alphabet="abcdefgh", min_size=1, max_size=3)


def _children(inner):
    return st.one_of(
        st.lists(inner, max_size=4).map(tuple),
        st.lists(inner, max_size=4),
        st.dictionaries(keys_st, inner, max_size=4),
        st.builds(Pair, inner, inner),
        st.builds(Triple, inner, inner, inner),
        st.builds(Box, st.sampled_from(["p", "q", ("r", 1)]), inner, inner),
    )


trees_st = st.recursive(st.one_of(leaves_st, st.none()), _children, max_leaves=30)


@given(trees_st)
def test_flatten_unflatten_round_trip(tree):
    leaves, treedef = tree_flatten(tree)
    assert isinstance(treedef, PyTreeDef)
    assert len(leaves) == count_leaves(tree) == treedef.num_leaves
    assert all(leaf is not None for leaf in leaves)  # None is an empty node, never a leaf
    rebuilt = tree_unflatten(treedef, leaves)
    # dicts come back with sorted keys (as JAX's); otherwise exactly the same tree
    assert_same_tree(_sorted_dicts(tree), rebuilt)
    assert tree_structure(rebuilt) == treedef
    assert hash(tree_structure(rebuilt)) == hash(treedef)
    assert_same_tree(_sorted_dicts(tree), treedef.unflatten(leaves))


def _sorted_dicts(tree):
    """`tree` with every dict's keys in sorted order (built without tree_util)."""
    if isinstance(tree, dict):
        return {k: _sorted_dicts(tree[k]) for k in sorted(tree)}
    if isinstance(tree, tuple) and hasattr(tree, "_fields"):
        return type(tree)(*map(_sorted_dicts, tree))
    if isinstance(tree, (list, tuple)):
        return type(tree)(map(_sorted_dicts, tree))
    if isinstance(tree, Box):
        return Box(tree.label, _sorted_dicts(tree.left), _sorted_dicts(tree.right))
    return tree


@given(trees_st)
def test_unflatten_puts_new_leaves_in_flattening_order(tree):
    leaves, treedef = tree_flatten(tree)
    numbered = tree_unflatten(treedef, range(len(leaves)))
    assert tree_leaves(numbered) == list(range(len(leaves)))
    assert tree_structure(numbered) == treedef


@given(trees_st)
def test_tree_map_identity_and_structure(tree):
    mapped = tree_map(lambda x: x, tree)
    assert_same_tree(_sorted_dicts(tree), mapped)
    seen = []
    boxed = tree_map(lambda x: seen.append(x) or Leaf(x), tree)
    assert seen == tree_leaves(tree)  # f runs once per leaf, in flattening order
    assert [b.n for b in tree_leaves(boxed)] == seen
    assert tree_structure(boxed) == tree_structure(tree)


def test_leaf_order_is_depth_first_left_to_right():
    tree = ([1, (2, 3)], {"b": 5, "a": 4}, None, Pair(6, [7]), Box("lbl", 8, (9,)))
    assert tree_leaves(tree) == [1, 2, 3, 4, 5, 6, 7, 8, 9]


def test_scalars_arrays_and_none():
    x = np.arange(3.0)
    leaves, treedef = tree_flatten(x)
    assert leaves[0] is x and len(leaves) == 1 and tree_unflatten(treedef, [7]) == 7
    assert tree_flatten(None)[0] == []
    assert tree_unflatten(tree_structure(None), []) is None
    assert tree_flatten(())[0] == [] and tree_unflatten(tree_structure(()), []) == ()
    assert tree_flatten({})[0] == [] and tree_unflatten(tree_structure({}), []) == {}
    assert tree_leaves([None, [None, 1], (None,)]) == [1]


def test_dict_key_order():
    first = {"b": 1, "a": 2, "c": 3}
    second = {"c": 3, "a": 2, "b": 1}
    assert tree_leaves(first) == [2, 1, 3]  # sorted keys, not insertion order
    assert tree_leaves(second) == [2, 1, 3]
    assert tree_structure(first) == tree_structure(second)
    assert hash(tree_structure(first)) == hash(tree_structure(second))
    rebuilt = tree_unflatten(tree_structure(first), ["A", "B", "C"])
    assert rebuilt == {"a": "A", "b": "B", "c": "C"}
    assert list(rebuilt) == ["a", "b", "c"]
    assert tree_structure({"a": 1, "b": 2}) != tree_structure({"a": 1, "c": 2})
    assert tree_leaves({1: "one", 0: "zero", 2: "two"}) == ["zero", "one", "two"]


def test_structures_are_distinguished():
    one = tree_structure((1, 2))
    assert one != tree_structure([1, 2])
    assert one != tree_structure(Pair(1, 2))
    assert tree_structure(Pair(1, 2)) != tree_structure(collections.namedtuple("Other", "first second")(1, 2))
    assert one != tree_structure((1, (2,)))
    assert one != tree_structure((1, None))
    assert tree_structure(Box("p", 1, 2)) != tree_structure(Box("q", 1, 2))  # aux data counts
    assert tree_structure(Box("p", 1, 2)) == tree_structure(Box("p", "x", "y"))
    assert tree_structure([1, [2, 3]]) == tree_structure(["a", ["b", "c"]])


def test_namedtuple_round_trip_keeps_its_class():
    tree = Triple(1, Pair(2, None), [3])
    leaves, treedef = tree_flatten(tree)
    assert leaves == [1, 2, 3]
    rebuilt = tree_unflatten(treedef, [10, 20, 30])
    assert type(rebuilt) is Triple and type(rebuilt.y) is Pair
    assert rebuilt == Triple(10, Pair(20, None), [30])


def test_registered_class():
    tree = Box(("meta", 1), [1, 2], Box("inner", 3, None))
    leaves, treedef = tree_flatten(tree)
    assert leaves == [1, 2, 3]
    rebuilt = tree_unflatten(treedef, ["a", "b", "c"])
    assert isinstance(rebuilt, Box) and rebuilt.label == ("meta", 1)
    assert rebuilt.left == ["a", "b"] and isinstance(rebuilt.right, Box)
    assert rebuilt.right.label == "inner" and rebuilt.right.left == "c" and rebuilt.right.right is None
    assert "Box" in repr(treedef)


def test_register_pytree_node_turns_a_leaf_into_a_node():
    class Celsius:
        def __init__(self, degrees, unit):
            self.degrees, self.unit = degrees, unit

    value = Celsius(21.5, "C")
    assert tree_leaves([value]) == [value]  # before registration: a leaf
    calls = []

    def flatten(c):
        calls.append("flatten")
        return [c.degrees], c.unit

    def unflatten(unit, children):
        calls.append("unflatten")
        assert unit == "C"
        return Celsius(children[0], unit)

    register_pytree_node(Celsius, flatten, unflatten)
    try:
        leaves, treedef = tree_flatten([value])
        assert leaves == [21.5]
        doubled = tree_map(lambda d: d * 2, [value])
        assert isinstance(doubled[0], Celsius) and doubled[0].degrees == 43.0 and doubled[0].unit == "C"
        assert "flatten" in calls and "unflatten" in calls
    finally:
        tree_util._NODE_TYPES.pop(Celsius, None)


def test_is_leaf():
    tree = [(1, 2), [3, (4, 5)]]
    leaves = tree_leaves(tree, is_leaf=lambda x: isinstance(x, tuple))
    assert leaves == [(1, 2), 3, (4, 5)]
    assert tree_map(lambda t: sum(t) if isinstance(t, tuple) else t, tree,
                    is_leaf=lambda x: isinstance(x, tuple)) == [3, [3, 9]]


def test_tree_map_several_trees():
    xs = {"w": [1, 2], "b": (3,)}
    ys = {"b": (30,), "w": [10, 20]}  # same structure, other insertion order
    zs = {"w": [100, 200], "b": (300,)}
    out = tree_map(lambda x, y, z: x + y + z, xs, ys, zs)
    assert out == {"b": (333,), "w": [111, 222]}
    assert type(out["b"]) is tuple and type(out["w"]) is list
    arrays = tree_map(lambda a, b: a * b, [np.ones(2), Pair(np.arange(3.0), None)],
                      [np.full(2, 3.0), Pair(np.arange(3.0), None)])
    np.testing.assert_array_equal(arrays[0], [3.0, 3.0])
    np.testing.assert_array_equal(arrays[1].first, [0.0, 1.0, 4.0])
    assert arrays[1].second is None


@pytest.mark.parametrize("other", [
    [1, 2, 3],            # another length
    (1, 2),               # tuple vs list
    [1, [2]],             # a node where a leaf was
    [1, None],            # None is a node, not a leaf
    {"a": 1, "b": 2},     # dict vs list
])
def test_tree_map_structure_mismatch(other):
    with pytest.raises(ValueError, match="structure"):
        tree_map(lambda x, y: x, [1, 2], other)


def test_tree_map_mismatch_names_the_argument():
    with pytest.raises(ValueError) as info:
        tree_map(lambda x, y, z: x, {"a": 1}, {"a": 2}, {"b": 3})
    assert "argument 2" in str(info.value)


def test_unflatten_with_wrong_number_of_leaves():
    treedef = tree_structure([1, (2, 3)])
    with pytest.raises(ValueError, match="3 leaves"):
        tree_unflatten(treedef, [1, 2])
    with pytest.raises(ValueError):
        tree_unflatten(treedef, [1, 2, 3, 4])


def test_100000_deep_nested_list():
    depth = 100_000
    tree = "bottom"
    for _ in range(depth):
        tree = [tree]
    leaves, treedef = tree_flatten(tree)  # no RecursionError
    assert leaves == ["bottom"] and treedef.num_leaves == 1
    rebuilt = tree_unflatten(treedef, ["new"])
    node, n = rebuilt, 0
    while isinstance(node, list):
        assert len(node) == 1
        node, n = node[0], n + 1
    assert n == depth and node == "new"
    assert tree_structure(rebuilt) == treedef
    upper = tree_map(lambda s: s.upper(), tree)
    node = upper
    for _ in range(depth):
        node = node[0]
    assert node == "BOTTOM"
    repr(treedef)  # describing the structure is iterative too
    # a structure that differs only at the bottom is told apart
    other = ("bottom",)
    for _ in range(depth - 1):
        other = [other]
    assert tree_structure(other) != treedef
    with pytest.raises(ValueError):
        tree_map(lambda a, b: a, tree, other)


def test_deep_nested_dicts_and_tuples():
    depth = 30_000
    tree = 1
    for i in range(depth):
        tree = {"a": None, "k": tree} if i % 2 else (tree, 2)
    leaves, treedef = tree_flatten(tree)
    assert len(leaves) == 1 + depth // 2
    assert_same_tree(tree, tree_unflatten(treedef, leaves))


@given(trees_st)
def test_is_leaf_that_never_holds_gives_the_same_structure(tree):
    leaves, treedef = tree_flatten(tree, is_leaf=lambda x: False)
    assert (leaves, treedef) == tree_flatten(tree)
    assert hash(treedef) == hash(tree_structure(tree))


def test_structure_does_not_depend_on_the_kind_of_leaves():
    # arrays take a bulk path, other leaves one at a time: the structures must agree
    arrays = [np.ones(2), (np.float64(1.0), 2.5), {"a": np.int32(3), "b": [True]}]
    others = tree_map(Leaf, arrays)
    assert tree_structure(arrays) == tree_structure(others)
    assert hash(tree_structure(arrays)) == hash(tree_structure(others))
    assert tree_structure(arrays) != tree_structure([np.ones(2), (1.0, 2.5), {"a": 3, "b": [[True]]}])


def test_dict_with_keys_that_cannot_be_sorted_is_a_clear_type_error():
    with pytest.raises(TypeError, match="keys that cannot be sorted") as info:
        tree_flatten({1: 1.0, "a": 2.0})
    assert "int" in str(info.value) and "str" in str(info.value)
    with pytest.raises(TypeError, match="cannot be sorted"):
        tree_map(lambda x: x, [{(1,): 1.0, 2: 2.0}])


def test_register_pytree_node_checks_its_arguments():
    with pytest.raises(TypeError, match="node_type must be a class"):
        register_pytree_node("Box", lambda b: ((), None), lambda a, c: None)
    with pytest.raises(TypeError, match="callable"):
        register_pytree_node(Leaf, None, lambda a, c: None)


def test_wide_trees_flatten_and_compare_per_node():
    # 100,000 leaves in one list, tuple or dict: one structure record each
    n = 100_000
    values = [np.float64(i) for i in range(n)]
    for tree in (values, tuple(values), {f"k{i:06d}": v for i, v in enumerate(values)}):
        leaves, treedef = tree_flatten(tree)
        assert len(leaves) == n and leaves[1] is values[1] and treedef.num_leaves == n
        assert len(treedef.nodes) == 1
        rebuilt = tree_unflatten(treedef, leaves)
        assert type(rebuilt) is type(tree) and len(rebuilt) == n
        assert tree_structure(rebuilt) == treedef
