"""ft.lax's structured control flow: cond, switch, scan, fori_loop, map (JAX's signatures).

With no trace open they run as Python code on arrays: `cond` calls the one
branch its predicate picks, `scan` is a Python loop. Under any trace (jit,
make_jaxpr, vmap, jvp, grad's tape) they trace their functions into closed
jaxprs (closure conversion: what a function closes over becomes an operand)
and stage one `cond` or `scan` equation (ir/primitives/control_flow.py), which
every transformation carries through: a cond still runs one branch under jit
and under differentiation, and only vmap with a batched predicate runs them all.

Types are checked as JAX checks them, naming both types and the pytree path:
a body's carry must come back with the structure, shapes and dtypes it went in
with, every branch must return the same types, the xs must agree in length. A
weakly typed value (a Python scalar) takes the type of what it meets, as JAX's
do: an initial carry of 0.0 beside a float32 body is a float32 carry.
"""
from __future__ import annotations

import numpy as np

from ftrans._api_util import _leaf_path, check_callable, check_outputs, trace_flat, with_output_types
from ftrans.numpy._core import aval_of, concrete_or_none
from ftrans.tree_util import tree_flatten, tree_unflatten
from ir.errors import api_boundary, at_user_line
from ir.primitive import as_array
from ir.primitives import control_flow
from ir.primitives import elementwise as ew
from ir.primitives.call import call_form
from ir.tracing import Tracer, current_trace

_I32 = np.dtype(np.int32)


# -------------------- tracing a function into a jaxpr --------------------

def _avals_of(leaves):
    return [aval_of(x) for x in leaves]


def _joined_type(avals):
    """The one type values of `avals` (one per branch) take: all equal in shape
    and dtype (strong unless all are weak), or weakly typed ones meeting a strong
    dtype they promote to (NEP 50: 0.0 beside f32 is f32). Else None: a mismatch,
    which the caller reports."""
    shapes = {a.shape for a in avals}
    strong = {a.dtype for a in avals if not a.weak_type}
    if len(shapes) != 1 or len(strong) > 1:
        return None
    if not strong:
        return avals[0] if len({a.dtype for a in avals}) == 1 else None
    (dtype,) = strong
    if any(a.weak_type and np.result_type(_WEAK_LIKE[a.dtype.kind], dtype) != dtype for a in avals):
        return None
    return avals[0].update(dtype=dtype, weak_type=False)


def _carry_type(a, b):
    """The type a carry takes whose initial value is of type `a` and which the
    body returns as `b`, as JAX's scan decides it, or None (a mismatch). A
    weakly typed initial value takes the body's type (the body is traced again
    with it); a weakly typed result takes the carry's."""
    if a.shape != b.shape:
        return None
    if a.dtype == b.dtype:
        return a.update(weak_type=False) if a.weak_type and not b.weak_type else a
    if a.weak_type:
        like_b = _WEAK_LIKE[b.dtype.kind] if b.weak_type else b.dtype
        promoted = np.result_type(_WEAK_LIKE[a.dtype.kind], like_b)
        return b if promoted == b.dtype else None
    if b.weak_type and np.result_type(_WEAK_LIKE[b.dtype.kind], a.dtype) == a.dtype:
        return a
    return None


_WEAK_LIKE = {"b": False, "i": 0, "u": 0, "f": 0.0, "c": 0j}  # a weakly typed value promotes as this Python scalar


# -------------------- cond and switch --------------------

@api_boundary
def cond(pred, true_fun, false_fun, *operands):
    """`true_fun(*operands)` if `pred` else `false_fun(*operands)`, for a scalar bool
    or integer `pred` (an integer is true where it is not 0), as JAX's lax.cond.

    Only the branch the predicate picks runs: eagerly, under jit (the generated
    code is a Python `if`) and under grad and jvp (the derivatives of a cond are
    conds). Under vmap with a batched predicate every branch runs on every
    example and a select picks each example's, as in JAX. Both branches must
    return the same structure, shapes and dtypes.
    """
    check_callable(true_fun, "cond (true_fun)")
    check_callable(false_fun, "cond (false_fun)")
    pred_aval = aval_of(pred, "cond")
    if pred_aval.shape != ():
        raise TypeError(at_user_line(f"cond: the predicate must be a scalar, got {pred_aval.str_short()}"))
    if pred_aval.dtype.kind not in "biu":
        raise TypeError(at_user_line(f"cond: the predicate must be a bool or an integer, got "
                                     f"{pred_aval.str_short()} (compare it first, e.g. x > 0)"))
    if current_trace() is None:
        return _arrays((true_fun if bool(np.asarray(pred)) else false_fun)(*operands))
    if pred_aval.dtype.kind != "b":
        pred = ew.ne(pred, pred_aval.dtype.type(0))
    index = ew.convert_element_type(pred, _I32)
    return _staged_switch(index, [false_fun, true_fun], ["false_fun", "true_fun"], operands, "cond")


@api_boundary
def switch(index, branches, *operands):
    """`branches[index](*operands)`, the index clamped into range (as JAX's
    lax.switch: below 0 is branch 0, past the end the last branch). One branch
    runs, as for `cond`."""
    try:
        branches = list(branches)
    except TypeError:
        raise TypeError(at_user_line(f"switch: branches must be a sequence of functions, "
                                     f"got a {type(branches).__name__}")) from None
    if not branches:
        raise ValueError(at_user_line("switch: branches is empty; give at least one function"))
    for k, branch in enumerate(branches):
        check_callable(branch, f"switch (branch {k})")
    index_aval = aval_of(index, "switch")
    if index_aval.shape != () or index_aval.dtype.kind not in "iu":
        raise TypeError(at_user_line(f"switch: the index must be an integer scalar, got {index_aval.str_short()}"))
    value = concrete_or_none(index)
    if current_trace() is None:
        return _arrays(branches[control_flow.branch_index(value, len(branches))](*operands))
    if not isinstance(index, Tracer):  # a Python or NumPy integer: clamped here
        index = np.int32(control_flow.branch_index(value, len(branches)))
    else:
        dtype = index_aval.dtype
        index = ew.max(ew.min(index, dtype.type(len(branches) - 1)), dtype.type(0))
        index = ew.convert_element_type(index, _I32) if dtype != _I32 else index
    return _staged_switch(index, branches, [f"branch {k}" for k in range(len(branches))], operands, "switch")


def _staged_switch(index, funs, names, operands, what):
    leaves, in_tree = tree_flatten(operands)
    in_avals = _avals_of(leaves)
    traced = [trace_flat(fun, in_tree, in_avals, "ft.lax") for fun in funs]
    out_tree = traced[0][1]
    for name, (_, tree) in zip(names[1:], traced[1:]):
        if tree != out_tree:
            raise TypeError(at_user_line(f"{what}: {names[0]} and {name} must return the same structure, but "
                                         f"{names[0]} returns {out_tree} and {name} returns {tree}"))
    avals_per_branch = [closed.out_avals for closed, _ in traced]
    targets = []
    for i, avals in enumerate(zip(*avals_per_branch)):
        joined = _joined_type(list(avals))
        if joined is None:
            k = next(k for k, a in enumerate(avals) if (a.shape, a.dtype) != (avals[0].shape, avals[0].dtype))
            kind = "shapes" if avals[k].shape != avals[0].shape else "dtypes"
            path = _leaf_path(_example(out_tree), i)
            raise TypeError(at_user_line(
                f"{what}: {names[0]} and {names[k]} must return the same types, but output{path or ''} is "
                f"{avals[0].str_short()} in {names[0]} and {avals[k].str_short()} in {names[k]}, so the "
                f"{kind} do not match"))
        targets.append(joined)
    branches = [call_form(with_output_types(closed, targets)) for closed, _ in traced]
    joined_branches, consts = control_flow.join_consts(branches)
    outs = control_flow.cond(index, [*consts, *leaves], joined_branches)
    return tree_unflatten(out_tree, outs)


def _example(tree):
    """A pytree of that structure (with 0s for leaves), to name a leaf's path."""
    return tree_unflatten(tree, [0] * tree.num_leaves)


def _arrays(tree):
    """What an eager branch or loop returned, its leaves as users get results: Arrays."""
    leaves, treedef = tree_flatten(tree)
    check_outputs(leaves, "ft.lax")
    return tree_unflatten(treedef, [as_array(x) for x in leaves])


# -------------------- scan --------------------

@api_boundary
def scan(f, init, xs=None, length=None, reverse=False, unroll=1, *, checkpoints=None):
    """Loop `f(carry, x) -> (carry, y)` over the leading axis of `xs`, as JAX's
    lax.scan: returns the final carry and the ys stacked along a new leading
    axis. `xs` may be None (then `length` says how many times), and carry, xs
    and ys are pytrees. With `reverse` the loop runs from the last x to the
    first (the ys keep their positions). `unroll` (an int >= 1, or a bool) is
    JAX's performance hint: recorded in the IR, it changes nothing here.

    Eagerly a Python loop; under a trace one `scan` equation, whose body is
    traced once whatever the length (staging cost does not grow with it).
    Reverse mode stacks the residuals of every iteration and runs the
    transposed body backwards. With `checkpoints=k` (a positive int; beyond
    JAX, as while_loop's) reverse mode keeps O(k) carries instead: the loop is
    nested scans whose bodies are checkpoints (`_checkpointed_scan`), and what
    they did not keep is recomputed; the gradients are those of the plain scan."""
    check_callable(f, "scan")
    checkpoints = _checkpoints(checkpoints, "scan")
    xs_leaves, xs_tree = tree_flatten(xs)
    init_leaves, init_tree = tree_flatten(init)
    length = _scan_length(xs, xs_leaves, length)
    unroll = _unroll(unroll, length)
    if current_trace() is None and length > 0:  # no reverse mode can see it: nothing to keep
        return _eager_scan(f, init, init_leaves, init_tree, xs_leaves, xs_tree, length, bool(reverse))
    if checkpoints is not None and length > 0:
        return _checkpointed_scan(f, init, xs, length, bool(reverse), checkpoints)
    return _staged_scan(f, init, init_leaves, init_tree, xs_leaves, xs_tree, length, bool(reverse), unroll)


def _checkpoints(checkpoints, what):
    if checkpoints is not None and (isinstance(checkpoints, (bool, np.bool_))
                                    or not isinstance(checkpoints, (int, np.integer)) or checkpoints < 1):
        raise TypeError(at_user_line(f"{what}: checkpoints must be None or a positive int, got {checkpoints!r}"))
    return None if checkpoints is None else int(checkpoints)


def checkpoint_levels(length, checkpoints):
    """(levels d, segments s per level) of a checkpointed scan: the fewest levels whose s = k // d
    segments each (at least 2) cover the length (s**d >= n), so that the carries kept, at most about
    s per level, stay within k; where k is too small for that, segments of 2 and as many levels as it takes."""
    d = 1
    while True:
        s = checkpoints // d
        if s < 2:
            break
        if s ** d >= length:
            return d, s
        d += 1
    d = 1
    while 2 ** d < length:
        d += 1
    return d, 2


def _checkpointed_scan(f, init, xs, length, reverse, checkpoints):
    """The scan as nested scans (multilevel checkpointing): at the top, s segments of about n/s
    iterations, each one a checkpoint (reverse mode keeps its initial carry only, and runs it again
    when it reaches it) holding the scan of its segment split the same way, down to scans of single
    iterations that are checkpoints themselves. Reverse mode keeps about s carries per level (d
    levels, s * d <= k where k allows, see checkpoint_levels) and the residuals of one iteration,
    and runs the forward iterations d + 1 times. The arithmetic is the plain scan's, so its
    gradients are too (to rounding)."""
    from ftrans._checkpoint import checkpoint
    from ftrans.tree_util import tree_map
    if reverse:  # the last x first: the same loop over the flipped xs, its ys flipped back
        carry, ys = _checkpointed_scan(f, init, tree_map(lambda x: x[::-1], xs), length, False, checkpoints)
        return carry, tree_map(lambda y: y[::-1], ys)
    levels, segments = checkpoint_levels(length, checkpoints)

    def nested(carry, xs, n, level):
        if level == 0 or n == 1:  # each iteration a checkpoint: its carry kept, its residuals recomputed
            return scan(checkpoint(f), carry, xs, length=n)
        size = -(-n // segments)  # iterations per segment (the last part may be shorter)
        full = n // size
        inner = checkpoint(lambda c, seg: nested(c, seg, size, level - 1))
        split = tree_map(lambda x: x[:full * size].reshape((full, size, *x.shape[1:])), xs)
        carry, ys = scan(inner, carry, split, length=full)
        ys = tree_map(lambda y: y.reshape((full * size, *y.shape[2:])), ys)
        rest = n - full * size
        if rest:
            carry, rest_ys = nested(carry, tree_map(lambda x: x[full * size:], xs), rest, level - 1)
            ys = tree_map(lambda a, b: _concatenate(a, b), ys, rest_ys)
        return carry, ys
    return nested(init, xs, length, levels - 1)


def _concatenate(a, b):
    import ftrans.numpy as fnp
    return fnp.concatenate([a, b])


def _scan_length(xs, xs_leaves, length):
    lengths = []
    for i, x in enumerate(xs_leaves):
        aval = aval_of(x, "scan")
        if not aval.shape:
            raise ValueError(at_user_line(f"scan got a value with no leading axis to scan over: "
                                          f"xs{_leaf_path(xs, i)} is {aval.str_short()}"))
        lengths.append(aval.shape[0])
    if length is not None:
        value = concrete_or_none(length)
        if value is None or np.ndim(value) != 0 or np.asarray(value).dtype.kind not in "iu":
            raise TypeError(at_user_line(f"scan: length must be a concrete int, got {length!r}"))
        length = int(value)
        if length < 0:
            raise ValueError(at_user_line(f"scan: length must not be negative, got {length}"))
        if any(n != length for n in lengths):
            raise ValueError(at_user_line(f"scan got length={length}, which disagrees with the leading axis "
                                          f"sizes of the xs: {_sizes(xs, lengths)}"))
        return length
    if not lengths:
        raise ValueError(at_user_line("scan got no values to scan over (xs is None or empty) and no length: "
                                      "pass length="))
    if len(set(lengths)) > 1:
        raise ValueError(at_user_line(f"scan got xs with different leading axis sizes: {_sizes(xs, lengths)}"))
    return lengths[0]


def _sizes(xs, lengths):
    return ", ".join(f"xs{_leaf_path(xs, i)}.shape[0] = {n}" for i, n in enumerate(lengths))


def _unroll(unroll, length):
    if isinstance(unroll, (bool, np.bool_)):  # JAX: True unrolls fully, False not at all
        return max(length, 1) if unroll else 1
    if not isinstance(unroll, (int, np.integer)) or unroll < 1:
        raise TypeError(at_user_line(f"scan: unroll must be a positive int or a bool, got {unroll!r}"))
    return int(unroll)


def _pair(out):
    if not (isinstance(out, (tuple, list)) and len(out) == 2):
        described = f"a {type(out).__name__} of {len(out)} values" if isinstance(out, (tuple, list)) \
            else f"a {type(out).__name__}"
        raise TypeError(at_user_line(f"scan: the body function must return a pair (carry, y), but it "
                                     f"returned {described}"))
    return out


def _check_carry(init, init_tree, carry_tree, in_avals, out_avals):
    """The types the carry takes (see _carry_type), or a TypeError naming the
    leaf, both types and the user's line, as JAX's."""
    if carry_tree != init_tree:
        raise TypeError(at_user_line(
            f"scan: the body function's carry output must have the structure of its carry input, but the "
            f"input carry is {init_tree} and the output carry is {carry_tree}"))
    joined = []
    for i, (a, b) in enumerate(zip(in_avals, out_avals, strict=True)):
        aval = _carry_type(a, b)
        if aval is None:
            kind = "shapes" if a.shape != b.shape else "dtypes"
            raise TypeError(at_user_line(
                f"scan: the body function's carry output must have the types of its carry input, but the "
                f"input carry component carry{_leaf_path(init, i)} is {a.str_short()} and the output "
                f"carry component is {b.str_short()}, so the {kind} do not match"))
        joined.append(aval)
    return joined


def _traced_body(f, init, init_tree, carry_avals, x_avals, xs_tree):
    """(the body traced, its carry types, the structure of its ys): traced again
    once if a weakly typed initial carry takes the type of the body's output."""
    num_carry = len(carry_avals)
    trees = {}

    def check_out(out):
        carry, y = _pair(out)
        trees["carry"], trees["y"] = tree_flatten(carry)[1], tree_flatten(y)[1]
        return (carry, y)

    in_tree = tree_flatten((init, _example(xs_tree)))[1]
    for _ in range(2):
        closed, _ = trace_flat(f, in_tree, [*carry_avals, *x_avals], "ft.lax", check_out)
        joined = _check_carry(init, init_tree, trees["carry"], carry_avals, closed.out_avals[:num_carry])
        if all(a is j for a, j in zip(carry_avals, joined)):
            return with_output_types(closed, [*joined, *closed.out_avals[num_carry:]]), joined, trees["y"]
        carry_avals = joined
    raise TypeError(at_user_line("scan: the carry's type keeps changing: give the initial carry the "
                                 "dtype the body function returns"))


def _staged_scan(f, init, init_leaves, init_tree, xs_leaves, xs_tree, length, reverse, unroll):
    x_avals = [a.update(shape=a.shape[1:]) for a in _avals_of(xs_leaves)]
    closed, carry_avals, y_tree = _traced_body(f, init, init_tree, _avals_of(init_leaves), x_avals, xs_tree)
    init_leaves = [_converted(x, a) for x, a in zip(init_leaves, carry_avals, strict=True)]
    body, consts = call_form(closed)
    outs = control_flow.scan(body, consts, init_leaves, xs_leaves, length, reverse, unroll)
    return tree_unflatten(init_tree, outs[:len(carry_avals)]), tree_unflatten(y_tree, outs[len(carry_avals):])


def _converted(x, aval):
    """An initial carry value of the type the loop carries (a weak scalar promoted)."""
    x_aval = aval_of(x)
    if x_aval.dtype == aval.dtype and x_aval.weak_type == aval.weak_type:
        return x
    return ew.convert_element_type(x, aval.dtype, weak_type=aval.weak_type)


def _eager_scan(f, init, init_leaves, init_tree, xs_leaves, xs_tree, length, reverse):
    carry_avals = _avals_of(init_leaves)
    if any(a.weak_type for a in carry_avals):  # a Python scalar carry: take the type the loop gives it
        x_avals = [a.update(shape=a.shape[1:]) for a in _avals_of(xs_leaves)]
        _, carry_avals, _ = _traced_body(f, init, init_tree, carry_avals, x_avals, xs_tree)
        init = tree_unflatten(init_tree, [as_array(_converted(x, a)) for x, a in zip(init_leaves, carry_avals)])
    carry, ys, y_tree, y_avals = init, [None] * length, None, None
    for i in (range(length - 1, -1, -1) if reverse else range(length)):
        x = tree_unflatten(xs_tree, [as_array(leaf[i]) for leaf in xs_leaves])
        carry, y = _pair(f(carry, x))
        carry_leaves, carry_tree = tree_flatten(carry)
        check_outputs(carry_leaves, "scan")
        carry_avals = _check_carry(init, init_tree, carry_tree, carry_avals, _avals_of(carry_leaves))
        y_leaves, tree = tree_flatten(y)
        check_outputs(y_leaves, "scan")
        avals = _avals_of(y_leaves)
        if y_tree is None:
            y_tree, y_avals = tree, avals
        joined = [_joined_type([a, b]) for a, b in zip(y_avals, avals)] if tree == y_tree else [None]
        if None in joined:
            raise TypeError(at_user_line(
                f"scan: the body function returned a y of types {tree} {[a.str_short() for a in avals]} "
                f"after one of types {y_tree} {[a.str_short() for a in y_avals]}"))
        y_avals, ys[i] = joined, y_leaves
    stacked = [as_array(np.stack([np.asarray(y[j], aval.dtype) for y in ys])) for j, aval in enumerate(y_avals)]
    return _arrays(carry), tree_unflatten(y_tree, stacked)


# -------------------- while_loop --------------------

@api_boundary
def while_loop(cond_fun, body_fun, init_val, *, checkpoints=None):
    """`val = body_fun(val)` as long as `cond_fun(val)` holds, from `init_val`
    (a pytree), as JAX's lax.while_loop; returns the last `val`. `cond_fun`
    returns a scalar bool, `body_fun` a value of `init_val`'s structure,
    shapes and dtypes.

    Eagerly a Python loop; under a trace one `while` equation, whose functions
    are traced once. Unlike JAX, reverse mode works through it: the trip count
    is known only when the loop runs, and the carries of every iteration are
    kept (see ir/primitives/control_flow.py). With `checkpoints=k` (a positive
    int; ftrans's, not JAX's) reverse mode keeps at most k carries and
    recomputes the others from the nearest kept one, on an online schedule
    (interpreters/checkpointing.py): memory O(k * carry) instead of O(n * carry),
    the same gradients to rounding."""
    check_callable(cond_fun, "while_loop (cond_fun)")
    check_callable(body_fun, "while_loop (body_fun)")
    init_leaves, init_tree = tree_flatten(init_val)
    check_outputs(init_leaves, "while_loop")
    checkpoints = _checkpoints(checkpoints, "while_loop")
    if current_trace() is None:
        val = init_val
        while _eager_predicate(cond_fun(val)):
            new_val = body_fun(val)
            _check_while_output(val, new_val)
            val = new_val
        return _arrays(val)
    return _staged_while(cond_fun, body_fun, init_val, init_leaves, init_tree, checkpoints)


def _eager_predicate(pred):
    aval = aval_of(pred, "while_loop")
    _check_predicate(aval)
    return bool(np.asarray(pred))


def _check_predicate(aval):
    if aval.shape != () or aval.dtype.kind != "b":
        raise TypeError(at_user_line(f"while_loop: cond_fun must return a boolean scalar, but it returned "
                                     f"{aval.str_short()}"))


def _check_while_output(val, new_val):
    """A TypeError in while_loop's words where body_fun's output does not fit its input."""
    in_leaves, in_tree = tree_flatten(val)
    out_leaves, out_tree = tree_flatten(new_val)
    if in_tree != out_tree:
        raise TypeError(at_user_line(f"while_loop: body_fun must return a value structured as its input, but "
                                     f"the input carry is {in_tree} and body_fun returned {out_tree}"))
    check_outputs(out_leaves, "while_loop")
    for i, (a, b) in enumerate(zip(_avals_of(in_leaves), _avals_of(out_leaves))):
        if _carry_type(a, b) is None:
            kind = "shapes" if a.shape != b.shape else "dtypes"
            raise TypeError(at_user_line(
                f"while_loop: body_fun must return a value of the types of its input, but the input carry "
                f"component carry{_leaf_path(val, i)} is {a.str_short()} and body_fun returned "
                f"{b.str_short()} there, so the {kind} do not match"))


def _staged_while(cond_fun, body_fun, init_val, init_leaves, init_tree, checkpoints):
    in_tree = tree_flatten((init_val,))[1]
    carry_avals = _avals_of(init_leaves)
    trees = {}

    def check_body(out):
        trees["carry"] = tree_flatten(out)[1]
        return out
    for _ in range(3):  # again (at most twice) if weakly typed initial carries take the body's types
        body, _ = trace_flat(body_fun, in_tree, carry_avals, "while_loop", check_body)
        if trees["carry"] != init_tree:
            raise TypeError(at_user_line(
                f"while_loop: body_fun must return a value structured as its input, but the input carry is "
                f"{init_tree} and body_fun returned {trees['carry']}"))
        joined = []
        for i, (a, b) in enumerate(zip(carry_avals, body.out_avals, strict=True)):
            aval = _carry_type(a, b)
            if aval is None:
                kind = "shapes" if a.shape != b.shape else "dtypes"
                raise TypeError(at_user_line(
                    f"while_loop: body_fun must return a value of the types of its input, but the input carry "
                    f"component carry{_leaf_path(init_val, i)} is {a.str_short()} and body_fun returned "
                    f"{b.str_short()} there, so the {kind} do not match"))
            joined.append(aval)
        if all(a is j for a, j in zip(carry_avals, joined)):
            break
        carry_avals = joined
    else:
        raise TypeError(at_user_line("while_loop: the carry's type keeps changing: give init_val the dtype "
                                     "body_fun returns"))
    body = with_output_types(body, carry_avals)
    cond, out_tree = trace_flat(cond_fun, in_tree, carry_avals, "while_loop")
    if out_tree.num_leaves != 1:
        raise TypeError(at_user_line(f"while_loop: cond_fun must return a boolean scalar, but it returned "
                                     f"{out_tree}"))
    _check_predicate(cond.out_avals[0])
    init_leaves = [_converted(x, a) for x, a in zip(init_leaves, carry_avals, strict=True)]
    cond_jaxpr, cond_consts = call_form(cond)
    body_jaxpr, body_consts = call_form(body)
    outs = control_flow.while_loop(cond_jaxpr, body_jaxpr, cond_consts, body_consts, init_leaves, checkpoints)
    return tree_unflatten(init_tree, outs)


# -------------------- fori_loop and map --------------------

@api_boundary
def fori_loop(lower, upper, body_fun, init_val):
    """`val = body_fun(i, val)` for i from `lower` up to `upper` (excluded), as
    JAX's lax.fori_loop. With concrete bounds (Python ints, or concrete
    integer scalars) it is a scan of upper - lower steps, as in JAX; eagerly a
    Python loop. Bounds known only at run time make it a while_loop, as in JAX."""
    check_callable(body_fun, "fori_loop")
    bounds = []
    for name, bound in (("lower", lower), ("upper", upper)):
        aval = aval_of(bound, "fori_loop")
        if aval.shape != () or aval.dtype.kind not in "iu":
            raise TypeError(at_user_line(f"fori_loop: {name} must be an integer scalar, got {aval.str_short()}"))
        bounds.append(concrete_or_none(bound))
    if None in bounds:  # a bound known only at run time: a while loop, as in JAX
        return _fori_while(lower, upper, body_fun, init_val)
    start, stop = (int(b) for b in bounds)
    if type(lower) is int and type(upper) is int:
        counter = start  # a Python int: weakly typed, as JAX's
    else:
        counter = np.asarray(start, np.result_type(*(b if type(b) is int else aval_of(b).dtype
                                                      for b in (lower, upper))))
    if current_trace() is None:
        for i in range(start, stop):
            new_val = body_fun(i if type(counter) is int else as_array(counter.dtype.type(i)), init_val)
            _check_fori_output(init_val, new_val)
            init_val = new_val
        return _arrays(init_val)

    def step(carry, _):
        i, val = carry
        new_val = body_fun(i, val)
        _check_fori_output(val, new_val)
        return (i + 1, new_val), None
    (_, val), _ = scan(step, (counter, init_val), None, length=max(stop - start, 0))
    return val


def _fori_while(lower, upper, body_fun, init_val):
    from ftrans.numpy import asarray
    dtype = np.result_type(*(b if type(b) is int else aval_of(b).dtype for b in (lower, upper)))
    lower, upper = asarray(lower, dtype), asarray(upper, dtype)

    def body(carry):
        i, stop, val = carry
        new_val = body_fun(i, val)
        _check_fori_output(val, new_val)
        return i + dtype.type(1), stop, new_val
    return while_loop(lambda carry: carry[0] < carry[1], body, (lower, upper, init_val))[2]


def _check_fori_output(val, new_val):
    """A TypeError in fori_loop's words where body_fun's output does not fit its input."""
    in_leaves, in_tree = tree_flatten(val)
    out_leaves, out_tree = tree_flatten(new_val)
    if in_tree != out_tree:
        raise TypeError(at_user_line(f"fori_loop: body_fun must return a value structured as init_val, but "
                                     f"init_val is {in_tree} and body_fun returned {out_tree}"))
    check_outputs(out_leaves, "fori_loop")
    for i, (a, b) in enumerate(zip(_avals_of(in_leaves), _avals_of(out_leaves))):
        if _carry_type(a, b) is None:
            kind = "shapes" if a.shape != b.shape else "dtypes"
            raise TypeError(at_user_line(f"fori_loop: body_fun must return a value of the types of init_val, "
                                         f"but init_val{_leaf_path(val, i)} is {a.str_short()} and body_fun "
                                         f"returned {b.str_short()} there, so the {kind} do not match"))


@api_boundary
def map(f, xs, *, batch_size=None):
    """`f` applied to each slice of `xs` along its leading axis, the results
    stacked (JAX's lax.map: a scan). With `batch_size`, `f` is vmapped over
    batches of that many slices (the rest in one last batch), as in JAX."""
    check_callable(f, "map")
    if batch_size is None:
        return scan(lambda carry, x: (carry, f(x)), (), xs)[1]
    if isinstance(batch_size, (bool, np.bool_)) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise TypeError(at_user_line(f"map: batch_size must be a positive int, got {batch_size!r}"))
    from ftrans._vmap import vmap
    from ftrans.numpy import concatenate, reshape
    from ftrans.tree_util import tree_map
    leaves, tree = tree_flatten(xs)
    n = _scan_length(xs, leaves, None)
    full = n - n % batch_size
    batched = vmap(f)
    outs = []
    if full:
        blocks = tree_map(lambda x: reshape(x[:full], (full // batch_size, batch_size, *aval_of(x).shape[1:])), xs)
        ys = scan(lambda carry, x: (carry, batched(x)), (), blocks)[1]
        outs.append(tree_map(lambda y: reshape(y, (full, *aval_of(y).shape[2:])), ys))
    if full < n:
        outs.append(batched(tree_map(lambda x: x[full:], xs)))
    if len(outs) == 1:
        return outs[0]
    return tree_map(lambda a, b: concatenate([a, b]), outs[0], outs[1])
