"""Argument handling shared by the transformations: checking what a transformation
is given (a function, argnums, argnames), static arguments, pytree flattening,
checking that every leaf is an array (naming the one that is not), and pausing
the garbage collector while a large program is built."""
from __future__ import annotations

import contextlib
import gc
import inspect
import reprlib

import numpy as np

from ftrans.tree_util import _node_entry, tree_flatten, tree_unflatten
from ir.core import HOST_TYPES, ClosedJaxpr, Eqn, Jaxpr, Var, concrete_aval, concrete_avals
from ir.errors import at_user_line
from ir.primitives import elementwise as ew
from ir.tracing import Tracer, get_aval, leaked_tracer_error, stage

# -------------------- what a transformation is given --------------------


def check_callable(fun, what):
    """A transformation of something that is not a function fails at once, as in JAX."""
    if not callable(fun):
        raise TypeError(at_user_line(f"{what} expects a callable function as its first argument, "
                                     f"got {reprlib.repr(fun)} (a {type(fun).__name__})"))


def is_index(x):
    """Whether `x` is one int (a NumPy integer too), as an argnums of a single argument is."""
    return isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_))


def ensure_index_tuple(value, name, what):
    """`value` (an int or a sequence of ints, as JAX's *_argnums) as a tuple of ints."""
    if is_index(value):
        return (int(value),)
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise TypeError(at_user_line(f"{what}: {name} must be an int or a tuple of ints, "
                                     f"got {reprlib.repr(value)} (a {type(value).__name__})"))
    items = tuple(value)
    bad = [x for x in items if not is_index(x)]
    if bad:
        raise TypeError(at_user_line(f"{what}: {name} must be an int or a tuple of ints, got {items!r}: "
                                     f"{bad[0]!r} is a {type(bad[0]).__name__}"))
    return tuple(int(x) for x in items)


def ensure_str_tuple(value, name, what):
    """`value` (a str or a sequence of str, as JAX's *_argnames) as a tuple of str."""
    if isinstance(value, str):
        return (value,)
    if not hasattr(value, "__iter__") or isinstance(value, bytes):
        raise TypeError(at_user_line(f"{what}: {name} must be a str or a tuple of str, "
                                     f"got {reprlib.repr(value)} (a {type(value).__name__})"))
    items = tuple(value)
    bad = [x for x in items if not isinstance(x, str)]
    if bad:
        raise TypeError(at_user_line(f"{what}: {name} must be a str or a tuple of str, got {items!r}: "
                                     f"{bad[0]!r} is a {type(bad[0]).__name__}"))
    return items


def differentiation_argnums(argnums, what):
    """`argnums` of grad & co checked when the transformation is made: an int or a
    tuple of distinct ints (the results follow its order)."""
    nums = ensure_index_tuple(argnums, "argnums", what)
    _check_distinct(nums, argnums, what)
    return nums


def resolve_argnums(nums, num_args, what, argnums=None):
    """Differentiated positions for a call with `num_args` positional arguments:
    negative ones counted from the end, in the order given."""
    resolved = []
    for i in nums:
        if not -num_args <= i < num_args:
            raise ValueError(at_user_line(
                f"{what}: argnums={argnums if argnums is not None else nums!r} refers to positional "
                f"argument {i}, but the function was called with {num_args} positional arguments"))
        resolved.append(i % num_args)
    _check_distinct(resolved, argnums if argnums is not None else nums, what)
    return tuple(resolved)


def _check_distinct(positions, argnums, what):
    if len(set(positions)) != len(positions):
        twice = next(i for i in positions if positions.count(i) > 1)
        raise ValueError(at_user_line(
            f"{what}: argnums={argnums!r} names positional argument {twice} more than once; "
            "list each argument to differentiate once"))


def normalize_argnums(argnums, num_args, what="static_argnums"):
    """`argnums` (e.g. static_argnums) as the sorted set of positions it names in a
    call with `num_args` positional arguments."""
    nums = ensure_index_tuple(argnums, what, what)
    normalized = []
    for i in nums:
        if not -num_args <= i < num_args:
            raise ValueError(at_user_line(f"{what}={argnums!r} refers to positional argument {i}, but "
                                          f"the function was called with {num_args} positional arguments"))
        normalized.append(i % num_args)
    return tuple(sorted(set(normalized)))


def signature_of(fun):
    """inspect.signature(fun), or None where Python cannot tell it (some builtins)."""
    try:
        return inspect.signature(fun)
    except (TypeError, ValueError):
        return None


_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


def infer_argnums_and_argnames(signature, argnums, argnames, kind, what):
    """(argnums, argnames) of `kind` ("static", "donate"): as JAX, when only one is
    given the other is inferred from the signature (a parameter that may be passed
    either way is named in both), and both are checked against it."""
    nums = () if argnums is None else ensure_index_tuple(argnums, f"{kind}_argnums", what)
    names = () if argnames is None else ensure_str_tuple(argnames, f"{kind}_argnames", what)
    if signature is None:
        return nums, names
    parameters = list(signature.parameters.values())
    either_way = inspect.Parameter.POSITIONAL_OR_KEYWORD
    if argnums is not None and argnames is None:
        names = tuple(p.name for i, p in enumerate(parameters) if p.kind == either_way and i in nums)
    elif argnames is not None and argnums is None:
        nums = tuple(i for i, p in enumerate(parameters) if p.kind == either_way and p.name in names)
    _check_argnums_fit(parameters, nums, f"{kind}_argnums", what)
    _check_argnames_fit(parameters, names, f"{kind}_argnames", what)
    return nums, names


def _check_argnums_fit(parameters, nums, name, what):
    if not nums or any(p.kind == inspect.Parameter.VAR_POSITIONAL for p in parameters):
        return
    count = sum(1 for p in parameters if p.kind in _POSITIONAL)
    bad = [i for i in nums if not -count <= i < count]
    if bad:
        raise ValueError(at_user_line(f"{what}: {name}={nums!r} refers to positional argument {bad[0]}, "
                                      f"but the function takes {count} positional arguments"))


def _check_argnames_fit(parameters, names, name, what):
    positional_only = {p.name for p in parameters if p.kind == inspect.Parameter.POSITIONAL_ONLY}
    bad = [n for n in names if n in positional_only]
    if bad:
        raise ValueError(at_user_line(f"{what}: {name} lists {bad[0]!r}, a positional-only parameter"))
    if any(p.kind == inspect.Parameter.VAR_KEYWORD for p in parameters):
        return
    known = {p.name for p in parameters if p.kind not in (inspect.Parameter.VAR_POSITIONAL,)}
    bad = [n for n in names if n not in known]
    if bad:
        raise ValueError(at_user_line(f"{what}: {name} lists {bad[0]!r}, but the function has no "
                                      f"parameter of that name (it has {sorted(known)})"))


# -------------------- static arguments --------------------

def split_static(args, static_argnums):
    """(dynamic args, a function putting dynamic values back among the static ones)."""
    dynamic = [a for i, a in enumerate(args) if i not in static_argnums]

    def merge(dynamic_values):
        values = iter(dynamic_values)
        return [a if i in static_argnums else next(values) for i, a in enumerate(args)]
    return dynamic, merge


# -------------------- flattening and naming leaves --------------------

def _leaf_path(tree, index):
    """A readable path to leaf `index` of `tree` (in flattening order), e.g. ``[1]['w']``.

    Walks the tree as `tree_flatten` does (registered classes and namedtuples
    included), keeping parent links and building only the one path asked for,
    so deep trees cost linear time and no recursion.
    """
    stack = [(tree, None)]  # (node, link); link = (parent link, path segment)
    count = 0
    while stack:
        node, link = stack.pop()
        entry = _node_entry(node)
        if entry is None:
            if count == index:
                segments = []
                while link is not None:
                    link, segment = link
                    segments.append(segment)
                return "".join(reversed(segments))
            count += 1
            continue
        children, aux = entry[0](node)
        children = list(children)
        segments = child_path_segments(node, aux, len(children))
        stack.extend((child, (link, segment))
                     for child, segment in zip(reversed(children), reversed(segments), strict=True))
    return None


def child_path_segments(node, aux, count):
    """How each child of a pytree node is named in an error path: ``['k']``, ``.field`` or ``[i]``."""
    if isinstance(node, dict):
        return [f"[{k!r}]" for k in aux]
    if isinstance(node, tuple) and hasattr(node, "_fields"):
        return [f".{name}" for name in node._fields]
    return [f"[{i}]" for i in range(count)]


def flatten_args(args, what, positions=None, kwargs=None):
    """Flatten positional args (and keyword args, when given: then the structure
    is that of ``(args, kwargs)``); check every leaf is an array-like value.

    `positions` are the numbers of `args` among the caller's arguments (they
    differ when static arguments were taken out), used to name a bad leaf.
    """
    tree = (tuple(args), kwargs) if kwargs else tuple(args)
    leaves, treedef = tree_flatten(tree)
    if HOST_TYPES.issuperset(map(type, leaves)):  # NumPy values and Python numbers only: no tracers
        return leaves, treedef, list(concrete_avals(leaves))
    avals = []
    for i, leaf in enumerate(leaves):
        if isinstance(leaf, Tracer) and not leaf._trace.alive:
            raise leaked_tracer_error(leaf)
        try:
            avals.append(get_aval(leaf) if isinstance(leaf, Tracer) else concrete_aval(_as_array_leaf(leaf)))
        except TypeError:
            where = _name_of_leaf(args, kwargs, i, positions)
            raise TypeError(at_user_line(
                f"{what}: {where} is a {type(leaf).__name__}, not an array. Arguments must be "
                "pytrees of arrays or numbers; mark other arguments static with static_argnums "
                "(static_argnames for keyword arguments)")) from None
    return leaves, treedef, avals


def _name_of_leaf(args, kwargs, index, positions):
    """``argument 1['w']`` or ``keyword argument 'y'[0]`` for flat leaf `index`."""
    start = len(tree_flatten(tuple(args))[0])
    if index < start:
        path = _leaf_path(tuple(args), index)
        return f"leaf {index}" if path is None else _argument_path(path, positions)
    for key in sorted(kwargs):  # flattening order
        count = len(tree_flatten(kwargs[key])[0])
        if index < start + count:
            return f"keyword argument {key!r}{_leaf_path(kwargs[key], index - start)}"
        start += count
    return f"leaf {index}"


def _argument_path(path, positions=None):
    """``[1]['w']`` (a path into the tuple of arguments) -> ``argument 1['w']``."""
    number, rest = path[1:].split("]", 1)
    if positions is not None:
        number = positions[int(number)]
    return f"argument {number}{rest}"


def _as_array_leaf(leaf):
    if isinstance(leaf, (bool, int, float, np.ndarray, np.generic)):
        return leaf
    if hasattr(leaf, "shape") and hasattr(leaf, "dtype"):
        return leaf
    raise TypeError(type(leaf).__name__)


def check_outputs(leaves, what):
    for i, leaf in enumerate(leaves):
        if not isinstance(leaf, Tracer):
            try:
                _as_array_leaf(leaf)
            except TypeError:
                raise TypeError(at_user_line(f"{what}: output leaf {i} is a {type(leaf).__name__}, "
                                             "not an array; return pytrees of arrays")) from None


@contextlib.contextmanager
def gc_paused():
    """Tracing, optimizing and lowering a large program allocate millions of
    objects that all stay alive: the cyclic GC would walk them again and again
    (a third of the compile time at 60,000 equations) and free nothing."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def trace_flat(fun, in_tree, in_avals, what, check_out=None):
    """(ClosedJaxpr of `fun` on the leaves of `in_tree`, the structure of its output).
    `check_out(out)`, if given, turns what `fun` returned into its output's tree."""
    out_trees = []

    def flat_fun(*leaves):
        out = fun(*tree_unflatten(in_tree, leaves))
        out_leaves, out_tree = tree_flatten(out if check_out is None else check_out(out))
        check_outputs(out_leaves, what)
        out_trees.append(out_tree)
        return out_leaves
    closed = stage(flat_fun, in_avals)
    return closed, out_trees[0]


def with_output_types(closed: ClosedJaxpr, avals) -> ClosedJaxpr:
    """`closed` whose outputs are converted (dtype or weak type only) to `avals`: what control flow
    and custom rules need, whose sub-jaxprs must return exactly the types they declare."""
    jaxpr = closed.jaxpr
    eqns, outvars = list(jaxpr.eqns), []
    for out, aval in zip(jaxpr.outvars, avals, strict=True):
        if out.aval == aval and out.aval.weak_type == aval.weak_type:
            outvars.append(out)
            continue
        converted = Var(aval)
        eqns.append(Eqn(ew.convert_element_type_p, [out], [converted],
                        {"new_dtype": aval.dtype, "weak_type": aval.weak_type}))
        outvars.append(converted)
    if len(eqns) == len(jaxpr.eqns):
        return closed
    return ClosedJaxpr(Jaxpr(jaxpr.constvars, jaxpr.invars, eqns, outvars), closed.consts)
