"""optax's protocol: a GradientTransformation is a pair of pure functions,
`init(params) -> state` and `update(updates, state, params=None) -> (updates, state)`,
whose states are pytrees of arrays (NamedTuples, as optax's), so a whole
training step traces under `ft.jit` and its state passes in and out as arrays.
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple

import numpy as np

import ftrans.numpy as fnp
from ftrans.tree_util import tree_flatten, tree_unflatten
from ir.errors import api_boundary, at_user_line

__all__ = ["EmptyState", "GradientTransformation", "apply_updates", "chain", "global_norm", "identity",
           "safe_increment"]


class GradientTransformation(NamedTuple):
    """`init(params) -> state`; `update(updates, state, params=None) -> (updates, state)`."""
    init: Callable[[Any], Any]
    update: Callable[..., Any]


class EmptyState(NamedTuple):
    """The state of a transformation that keeps none (a pytree with no leaves)."""


def init_empty_state(params):
    del params
    return EmptyState()


def identity() -> GradientTransformation:
    """Passes the updates through unchanged."""
    return GradientTransformation(init_empty_state, lambda updates, state, params=None: (updates, state))


def chain(*transforms: GradientTransformation) -> GradientTransformation:
    """The transformations applied one after the other; the state is the tuple
    of their states, in order (as optax's `chain`)."""
    for i, t in enumerate(transforms):
        if not (hasattr(t, "init") and hasattr(t, "update")):
            raise TypeError(at_user_line(f"chain: argument {i} is {type(t).__name__}, not a GradientTransformation "
                                         "(an object with init and update)"))

    def init(params):
        return tuple(t.init(params) for t in transforms)

    def update(updates, state, params=None):
        if not isinstance(state, tuple) or len(state) != len(transforms):
            got = f"a tuple of {len(state)}" if isinstance(state, tuple) else type(state).__name__
            raise ValueError(at_user_line(f"chain of {len(transforms)} transformations: expected its state, a tuple of "
                                          f"{len(transforms)} states (what its init returned), got {got}"))
        new_state = []
        for t, s in zip(transforms, state, strict=True):
            updates, s = t.update(updates, s, params)
            new_state.append(s)
        return updates, tuple(new_state)
    return GradientTransformation(init, update)


@api_boundary
def apply_updates(params, updates):
    """`params + updates` leaf by leaf, each result in its parameter's dtype (as optax's)."""
    return map_trees(lambda p, u: fnp.asarray(p + u).astype(fnp.asarray(p).dtype), params, updates,
                     what="apply_updates", names=("params", "updates"))


def safe_increment(count):
    """`count + 1`, staying at its dtype's largest value instead of wrapping around."""
    largest = np.iinfo(np.dtype(count.dtype) if hasattr(count, "dtype") else np.int32).max
    return fnp.where(count < largest, count + 1, largest)


def global_norm(updates):
    """The l2 norm of all the leaves together, sqrt(sum of squares)."""
    leaves, _ = tree_flatten(updates)
    total = sum(fnp.sum(square(x)) for x in leaves)
    return fnp.sqrt(total)


def square(x):
    """|x|**2 of real leaves (complex parameters are refused, by name)."""
    if np.dtype(x.dtype).kind == "c":
        raise TypeError(at_user_line(f"ftrans.optim: a complex leaf ({np.dtype(x.dtype).name}); the optimizers "
                                     "take real parameters only"))
    return x * x


def map_trees(f, tree, *rest, what, names):
    """`f` leaf by leaf over trees of one structure; a ValueError naming the two
    trees (by `names`) and their structures when they differ."""
    leaves, treedef = tree_flatten(tree)
    others = []
    for name, other in zip(names[1:], rest, strict=True):
        other_leaves, other_def = tree_flatten(other)
        if other_def != treedef:
            raise ValueError(at_user_line(f"{what}: the {names[0]} have structure {treedef} but the {name} have "
                                          f"{other_def}; a state must come from init on params of this structure"))
        others.append(other_leaves)
    return tree_unflatten(treedef, [f(*xs) for xs in zip(leaves, *others, strict=True)])


def cast_tree(tree, dtype):
    """Each leaf as `dtype` (unchanged when dtype is None)."""
    if dtype is None:
        return tree
    leaves, treedef = tree_flatten(tree)
    return tree_unflatten(treedef, [fnp.asarray(x).astype(dtype) for x in leaves])


def canonical_dtype(dtype, what):
    if dtype is None:
        return None
    try:
        return np.dtype(dtype)
    except TypeError:
        raise TypeError(at_user_line(f"{what}: {dtype!r} is not a dtype")) from None
