"""Products under NumPy's names, all lowered to the one `dot_general` primitive."""
from __future__ import annotations

import functools

import numpy as np

from ftrans.numpy import _elementwise as elementwise
from ftrans.numpy._core import (ShapeMismatchError, as_operand, aval_of, broadcast_shapes, convert,
                                normalize_axis, public, result_type, unchanged)
from ftrans.numpy._reductions import sum as reduce_sum
from ftrans.numpy._shape import broadcast_to, moveaxis, ravel, reshape, transpose
from ir.errors import at_user_line
from ir.primitives import indexing, structural
from ir.primitives.linalg import dot_general


def _check_sizes(name, a, b, a_dims, b_dims):
    for i, j in zip(a_dims, b_dims):
        if a.shape[i] != b.shape[j]:
            raise ShapeMismatchError(at_user_line(
                f"{name}: shapes {a.shape} and {b.shape} are not aligned: dimension {i} of the "
                f"first ({a.shape[i]}) != dimension {j} of the second ({b.shape[j]})"))


def _bools_stay_bools(fun):
    """NumPy's products of bool arrays are bool (an `or` of `and`s), but dot_general
    takes numbers: `_promote_all` multiplies bools as integers, and here the count
    of true products is compared with 0."""
    @functools.wraps(fun)
    def product(*args, **kwargs):
        out = fun(*args, **kwargs)
        arrays = args[1:] if isinstance(args[0], str) else args[:2]  # _einsum(subscripts, *operands)
        if result_type(*[aval_of(as_operand(a), fun.__name__) for a in arrays], name=fun.__name__)[0].kind == "b":
            out = elementwise.not_equal(out, 0)
        return out
    return product


def _ensure_numeric(a, b, name):
    """Promote a and b to one numeric dtype without broadcasting them."""
    return _promote_all([a, b], name)


@public
@_bools_stay_bools
def dot(a, b):
    return _dot(a, b, "dot")


def _dot(a, b, name):
    """numpy.dot, reporting shape errors as `name` (matmul of 2-D operands comes here too)."""
    a, b = _ensure_numeric(a, b, name)
    av, bv = aval_of(a), aval_of(b)
    if av.ndim == 0 or bv.ndim == 0:
        return elementwise.multiply(a, b)
    b_axis = max(bv.ndim - 2, 0)
    _check_sizes(name, av, bv, [av.ndim - 1], [b_axis])
    return dot_general(a, b, (((av.ndim - 1,), (b_axis,)), ((), ())))


@public
@_bools_stay_bools
def matmul(a, b):
    a, b = _ensure_numeric(a, b, "matmul")
    av, bv = aval_of(a), aval_of(b)
    if av.ndim == 0 or bv.ndim == 0:
        raise ValueError(at_user_line("matmul: input operand does not have enough dimensions "
                                      "(0-d arrays: use multiply or *)"))
    if av.ndim <= 2 and bv.ndim <= 2:  # no batch dimensions: exactly numpy.dot
        return _dot(a, b, "matmul")
    a_vector, b_vector = av.ndim == 1, bv.ndim == 1
    if a_vector:
        a = reshape(a, (1, av.shape[0]))
        av = aval_of(a)
    if b_vector:
        b = reshape(b, (bv.shape[0], 1))
        bv = aval_of(b)
    _check_sizes("matmul", av, bv, [av.ndim - 1], [bv.ndim - 2])
    batch = broadcast_shapes("matmul", [av.shape[:-2], bv.shape[:-2]])
    if av.shape[:-2] != batch:
        a = broadcast_to(a, batch + av.shape[-2:])
    if bv.shape[:-2] != batch:
        b = broadcast_to(b, batch + bv.shape[-2:])
    nb = len(batch)
    out = dot_general(a, b, (((nb + 1,), (nb,)), (tuple(range(nb)), tuple(range(nb)))))
    if a_vector or b_vector:
        shape = aval_of(out).shape
        keep = [n for i, n in enumerate(shape)
                if not ((a_vector and i == nb) or (b_vector and i == len(shape) - 1))]
        out = reshape(out, keep)
    return out


@public
def vdot(a, b):
    a, b = _one_dtype([a, b], "vdot")  # before ravel, as in outer
    if aval_of(a).dtype.kind == "c":  # as NumPy: the first argument is conjugated
        from ftrans.numpy._complex import conj
        a = conj(a)
    return dot(ravel(a), ravel(b))


@public
@_bools_stay_bools
def vecdot(x1, x2, /, *, axis=-1):
    """sum(conj(x1) * x2) along `axis`, the other axes broadcast, as numpy.vecdot."""
    x1, x2 = _one_dtype([x1, x2], "vecdot")
    n1, n2 = aval_of(x1).ndim, aval_of(x2).ndim
    if n1 == 0 or n2 == 0:
        raise ValueError(at_user_line("vecdot: the arguments need at least one axis"))
    if aval_of(x1).dtype.kind == "c":
        from ftrans.numpy._complex import conj
        x1 = conj(x1)
    a, b = moveaxis(x1, axis, -1), moveaxis(x2, axis, -1)
    if aval_of(a).shape[-1] != aval_of(b).shape[-1]:
        raise ShapeMismatchError(at_user_line(f"vecdot: axis {axis} has {aval_of(a).shape[-1]} elements in x1 and "
                                              f"{aval_of(b).shape[-1]} in x2"))
    shape = broadcast_shapes("vecdot", [aval_of(a).shape, aval_of(b).shape])
    return reduce_sum(elementwise.multiply(broadcast_to(a, shape), broadcast_to(b, shape)), axis=-1)


@public
@_bools_stay_bools
def inner(a, b):
    a, b = _ensure_numeric(a, b, "inner")
    av, bv = aval_of(a), aval_of(b)
    if av.ndim == 0 or bv.ndim == 0:
        return elementwise.multiply(a, b)
    _check_sizes("inner", av, bv, [av.ndim - 1], [bv.ndim - 1])
    return dot_general(a, b, (((av.ndim - 1,), (bv.ndim - 1,)), ((), ())))


@public
def outer(a, b):
    # promoted before ravel, which would make an eager Python scalar a (strong) array
    a, b = (ravel(x) for x in _one_dtype([a, b], "outer"))
    return elementwise.multiply(reshape(a, (-1, 1)), reshape(b, (1, -1)))


@public
@_bools_stay_bools
def tensordot(a, b, axes=2):
    a, b = _ensure_numeric(a, b, "tensordot")
    av, bv = aval_of(a), aval_of(b)
    if isinstance(axes, (int, np.integer)):
        n = int(axes)
        if n < 0 or n > min(av.ndim, bv.ndim):
            raise ValueError(at_user_line(f"tensordot: axes={n} does not fit ranks {av.ndim} and {bv.ndim}"))
        a_axes, b_axes = tuple(range(av.ndim - n, av.ndim)), tuple(range(n))
    else:
        if not (isinstance(axes, (tuple, list)) and len(axes) == 2):
            raise TypeError(at_user_line(f"tensordot: axes must be an int or a pair of axis sequences, got {axes!r}"))
        a_axes, b_axes = ((x,) if isinstance(x, (int, np.integer)) else tuple(x) if isinstance(x, (tuple, list))
                          else None for x in axes)
        if a_axes is None or b_axes is None:
            raise TypeError(at_user_line(f"tensordot: axes must be an int or a pair of axis sequences, got {axes!r}"))
        if len(a_axes) != len(b_axes):
            raise ValueError(at_user_line("tensordot: the two axes lists must have the same length"))
        a_axes = tuple(normalize_axis(x, av.ndim) for x in a_axes)
        b_axes = tuple(normalize_axis(x, bv.ndim) for x in b_axes)
    _check_sizes("tensordot", av, bv, a_axes, b_axes)
    return dot_general(a, b, ((a_axes, b_axes), ((), ())))


# -------------------- einsum --------------------

def _parse_subscripts(subscripts, operands_avals):
    subscripts = subscripts.replace(" ", "")
    if "->" in subscripts:
        inputs, output = subscripts.split("->")
    else:
        inputs, output = subscripts, None
    terms = inputs.split(",")
    if len(terms) != len(operands_avals):
        raise ValueError(at_user_line(f"einsum: {len(terms)} subscripts for {len(operands_avals)} operands"))
    if "." in subscripts:
        used = set(c for c in subscripts if c.isalpha())
        spare = [c for c in "ZYXWVUTSRQPONMLKJIHGFEDCBA" if c not in used]
        widest = 0
        expanded = []
        for term, aval in zip(terms, operands_avals):
            if "..." in term:
                n = aval.ndim - (len(term) - 3)
                widest = max(widest, n)
                term = term.replace("...", "".join(spare[:n][::-1]) if n else "")
            expanded.append(term)
        terms = expanded
        ellipsis_letters = "".join(spare[:widest][::-1])
        if output is not None:
            output = output.replace("...", ellipsis_letters)
    else:
        ellipsis_letters = ""
    for term, aval in zip(terms, operands_avals):
        if len(term) != aval.ndim or not all(c.isalpha() for c in term):
            raise ValueError(at_user_line(f"einsum: subscript {term!r} does not match an operand of rank {aval.ndim}"))
    if output is None:
        counts = {}
        for c in "".join(terms):
            counts[c] = counts.get(c, 0) + 1
        output = ellipsis_letters + "".join(sorted(c for c, n in counts.items() if n == 1 and c not in ellipsis_letters))
    return terms, output


def _take_diagonals(x, term):
    """Repeated letters in one operand ('ii') select its diagonal, as NumPy does."""
    while len(set(term)) != len(term):
        letter = next(c for c in term if term.count(c) > 1)
        first, second = term.index(letter), term.index(letter, term.index(letter) + 1)
        shape = aval_of(x).shape
        others = [i for i in range(len(term)) if i not in (first, second)]
        x = transpose(x, [first, second] + others)
        n = shape[first]
        diag_index = structural.iota(np.int64, (n, 2), 0)
        x = indexing.gather(x, diag_index)
        term = letter + "".join(term[i] for i in others)
    return x, term


def _sum_letters(x, term, keep):
    drop = [i for i, c in enumerate(term) if c not in keep]
    if drop:
        x = reduce_sum(x, axis=tuple(drop), dtype=aval_of(x).dtype)  # einsum keeps int32 as int32
        term = "".join(c for c in term if c in keep)
    return x, term


@public
def einsum(*args, optimize=None):
    """numpy.einsum for explicit and implicit subscripts (with '...'), given as a string
    (`einsum("ij,jk", a, b)`) or as sublists (`einsum(a, [0, 1], b, [1, 2], [0, 2])`);
    contracted pairwise left to right (`optimize` is accepted and has no effect)."""
    if not args:
        raise TypeError(at_user_line("einsum needs subscripts and operands"))
    if isinstance(args[0], str):
        return _einsum(*args)
    pairs = len(args) // 2
    if not pairs:
        raise ValueError(at_user_line("einsum: the sublist form takes (operand, sublist) pairs and an "
                                      "optional output sublist"))
    operands_, sublists = args[0:2 * pairs:2], args[1:2 * pairs:2]
    output = args[-1] if len(args) % 2 else None
    inputs = ",".join(_sublist_subscripts(sub) for sub in sublists)
    subscripts = inputs if output is None else f"{inputs}->{_sublist_subscripts(output)}"
    return _einsum(subscripts, *operands_)


def _sublist_subscripts(sublist):
    """A sublist (ints in [0, 52) and Ellipsis) as subscript letters, as NumPy maps them:
    0..25 -> A..Z, 26..51 -> a..z."""
    if isinstance(sublist, str) or not hasattr(sublist, "__iter__"):
        raise TypeError(at_user_line(f"einsum: a sublist must be a list of ints and Ellipsis, got {sublist!r}"))
    letters = []
    for label in sublist:
        if label is Ellipsis:
            letters.append("...")
        elif not isinstance(label, (int, np.integer)) or isinstance(label, (bool, np.bool_)):
            raise TypeError(at_user_line(f"einsum: each subscript in a sublist must be an int or Ellipsis, "
                                         f"got {label!r}"))
        elif not 0 <= label < 52:
            raise ValueError(at_user_line(f"einsum: subscript {label} is not within the valid range [0, 52)"))
        else:
            letters.append(chr(ord("A") + label) if label < 26 else chr(ord("a") + label - 26))
    return "".join(letters)


@_bools_stay_bools
def _einsum(subscripts, *operands_):
    promoted = _promote_all(operands_, "einsum")
    terms, output = _parse_subscripts(subscripts, [aval_of(x) for x in promoted])
    for c in output:
        if output.count(c) > 1 or not any(c in t for t in terms):
            raise ValueError(at_user_line(f"einsum: output subscript {c!r} is repeated or unknown"))
    sizes = {}
    for term, x in zip(terms, promoted):
        for c, n in zip(term, aval_of(x).shape):
            if sizes.setdefault(c, n) != n:
                if 1 not in (sizes[c], n):
                    raise ShapeMismatchError(at_user_line(f"einsum: letter {c!r} has sizes {sizes[c]} and {n}"))
                sizes[c] = max(sizes[c], n)
    # size-1 dimensions broadcast, as in NumPy (e.g. the '...' of '...ij,...jk->...ik')
    promoted = [broadcast_to(x, [sizes[c] for c in term]) for x, term in zip(promoted, terms)]
    pending = [_take_diagonals(x, t) for x, t in zip(promoted, terms)]
    x, term = pending[0]
    for i in range(1, len(pending) + 1):
        later = output + "".join(t for _, t in pending[i:])
        x, term = _sum_letters(x, term, later)
        if i == len(pending):
            break
        y, y_term = _sum_letters(*pending[i], later + term)
        batch = [c for c in term if c in y_term and c in later]
        contract = [c for c in term if c in y_term and c not in later]
        dims = (((tuple(term.index(c) for c in contract), tuple(y_term.index(c) for c in contract)),
                 (tuple(term.index(c) for c in batch), tuple(y_term.index(c) for c in batch))))
        x = dot_general(x, y, dims)
        term = ("".join(batch) + "".join(c for c in term if c not in batch and c not in contract)
                + "".join(c for c in y_term if c not in batch and c not in contract))
    return transpose(x, [term.index(c) for c in output]) if term != output else unchanged(x)


def _promote_all(xs, name):
    """One dtype for all operands, without broadcasting them against each other
    (bools multiply as integers, as in NumPy)."""
    return _one_dtype(xs, name, bools_as=np.dtype(np.int64))


def _one_dtype(xs, name, bools_as=None):
    """The operands in one dtype, promoted as a ufunc promotes (NEP 50: a Python scalar
    is weak), with bools as `bools_as` where given.
    NB: NumPy's products take their operands with asarray, which makes a Python scalar
    a strong float64 (np.dot(float32_array, 2.0) is float64); ftrans keeps it weak in
    every function (SPEC 2), as fnp.multiply does."""
    xs = [as_operand(x) for x in xs]
    dtype, weak = result_type(*[aval_of(x, name) for x in xs], name=name)
    if dtype.kind == "b" and bools_as is not None:
        dtype, weak = bools_as, False
    return [convert(x, dtype, weak) for x in xs]
