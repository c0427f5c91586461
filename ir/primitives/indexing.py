"""Gather and scatter with integer index arrays.

`indices` has shape ``batch + (k,)``: each row names one element of the first
k dimensions of `operand`. ``gather`` returns ``operand[idx[..., 0], ...,
idx[..., k-1]]``, of shape ``batch + operand.shape[k:]``. ``ftrans.numpy``
moves the indexed axes to the front and back again, so this one normalized
form covers all of NumPy's integer-array indexing.

The scatters write `updates` at the index rows: ``scatter`` sets them,
``scatter_add`` adds them (repeated rows add up), ``scatter_mul``,
``scatter_min`` and ``scatter_max`` combine them with what is there (repeated
rows combine in turn): JAX's `.at[...]` updates, which ``ftrans.numpy`` builds on.

Out-of-range indices: gather clamps them (as JAX under jit) with
``mode="clip"``, or yields a fill value with ``mode="fill"`` (NaN for floats,
`fill_value`, or by default NaN for floats, the lowest integer, False); scatters
drop those updates. ``ftrans.numpy`` raises IndexError for concrete
out-of-range indices before any of this, unless `.at[...]` is given a `mode`.
"""
from __future__ import annotations

import math

import numpy as np

from ir.core import ShapedArray, array_module, common_arrays, is_cupy_array
from ir.markers import Zero, not_mapped
from ir.primitive import OneOf, Optional, Primitive, Scalar
from ir.primitives import elementwise as ew
from ir.primitives import structural
from ir.primitives.ad_util import aval_of, instantiate, is_undefined, jvp_from_derivatives, zeros
from ir.primitives.batch_util import batch_size, bdim_to, move_dim
from ir.primitives.taylor_util import is_zero, taylor_from_derivative, taylor_from_jvp
from ir.tracing import Tracer, bind, get_aval


def _index_depth(name, operand, indices):
    if operand.dtype.kind not in "fiubc":
        raise TypeError(f"{name} needs a numeric or bool operand, got {operand.str_short()}")
    if indices.dtype.kind not in "iu":
        raise TypeError(f"{name} needs integer indices, got {indices.str_short()}")
    if indices.ndim == 0 or not 1 <= indices.shape[-1] <= operand.ndim:
        raise TypeError(f"{name}: indices {indices.str_short()} must end in a dimension of size "
                        f"1..{operand.ndim} (the indexed axes of {operand.str_short()})")
    return indices.shape[-1]


GATHER_MODES = ("clip", "fill")


def _gather_abstract_eval(operand, indices, *, mode, fill_value=None):
    if mode not in GATHER_MODES:
        raise TypeError(f"gather: mode must be one of {GATHER_MODES}, got {mode!r}")
    k = _index_depth("gather", operand, indices)
    if mode == "clip" and 0 in operand.shape[:k] and 0 not in indices.shape[:-1]:
        raise TypeError(f"gather: mode='clip' has no element to clamp to in an empty axis of "
                        f"{operand.str_short()} (mode='fill' reads its fill value)")
    if fill_value is not None and not _holds(operand.dtype, fill_value):
        raise TypeError(f"gather: fill_value={fill_value!r} is not a value of {operand.str_short()}")
    return ShapedArray(indices.shape[:-1] + operand.shape[k:], operand.dtype, operand.weak_type)


def _holds(dtype, value):
    """Whether `value` (a Python scalar) is exactly a value of `dtype`: a fill
    value is written as it is, so it must not need rounding or wrapping."""
    if dtype.kind == "b":
        return type(value) is bool
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return type(value) in (bool, int) and info.min <= value <= info.max
    return True  # floats hold every bool, int and float (rounded, as any float literal is)


def _signed(indices):
    """uint64 indices as int64, values past int64's range saturated (they are out
    of range for every axis either way): NumPy promotes uint64 beside the int64
    bounds to float64, which cannot index."""
    if indices.dtype != np.uint64:
        return indices
    xp = array_module(indices)
    return xp.minimum(indices, np.uint64(2**63 - 1)).astype(np.int64)


def _index_tuple(operand_shape, indices):
    indices = _signed(indices)
    k = indices.shape[-1]
    upper = array_module(indices).array(operand_shape[:k]) - 1
    clamped = np.clip(indices, 0, np.maximum(upper, 0))
    return tuple(clamped[..., j] for j in range(k))


def fill_of(dtype, value):
    """`value` (0 or 1) as a gather's fill_value for `dtype`: a Python scalar of its kind (a complex
    dtype's is the real number, which it holds: the param schema takes bool, int and float)."""
    dtype = np.dtype(dtype)
    return value if dtype.kind == "c" else dtype.type(value).item()


def default_fill_value(dtype):
    if dtype.kind in "fc":
        return np.nan
    if dtype.kind == "b":
        return False
    return np.iinfo(dtype).min if dtype.kind == "i" else np.iinfo(dtype).max


def _gather_impl(operand, indices, *, mode, fill_value=None):
    xp, (operand, indices) = common_arrays(operand, indices)  # an iota operand, or indices, may be NumPy's
    k = indices.shape[-1]
    if mode == "fill" and 0 in operand.shape[:k]:  # every index is out of range: all fill
        fill = default_fill_value(operand.dtype) if fill_value is None else fill_value
        return xp.full(indices.shape[:-1] + operand.shape[k:], fill, dtype=operand.dtype)
    result = operand[_index_tuple(operand.shape, indices)]
    if mode == "fill":
        outside = ~_in_range_rows(operand.shape, indices)
        if outside.any():
            result = xp.array(result, copy=True)
            result[outside] = default_fill_value(operand.dtype) if fill_value is None else fill_value
    return result


def _clamped(indices, operand_shape):
    """The indices a clip-mode gather actually reads (for its transpose). The
    bounds are scalars, one per indexed axis: an array of them would be a NumPy
    constant, which CuPy indices cannot meet."""
    aval = aval_of(indices)
    # NB: no index of a narrow dtype (int8 into an axis of 1000) reaches past its dtype's maximum
    top = np.iinfo(aval.dtype).max
    last, bounds = aval.ndim - 1, [min(max(n - 1, 0), top) for n in operand_shape[:aval.shape[-1]]]

    def clamp(x, bound):
        return ew.max(ew.min(x, aval.dtype.type(bound)), aval.dtype.type(0))
    if len(set(bounds)) == 1:  # one indexed axis, or axes of one size
        return clamp(indices, bounds[0])
    columns = [structural.slice(indices, [0] * last + [j], aval.shape[:-1] + (j + 1,)) for j in range(len(bounds))]
    return structural.concatenate([clamp(c, b) for c, b in zip(columns, bounds, strict=True)], last)


def _gather_transpose(ct, operand, indices, *, mode, fill_value=None):
    if type(ct) is Zero:
        return [None, None]
    if is_undefined(indices):
        raise ValueError("gather is not linear in its indices")
    if mode == "clip":
        indices = _clamped(indices, operand.aval.shape)
    return [scatter_add(zeros(operand.aval), indices, ct), None]


gather_p = Primitive("gather", params={"mode": OneOf(*GATHER_MODES), "fill_value": Optional(Scalar())},
                     abstract_eval=_gather_abstract_eval, impl=_gather_impl, linear_in=(0,),
                     transpose=_gather_transpose)
def _gather_derivative(t, out, operand, indices, *, mode, fill_value=None):
    # the fill is a constant: an out-of-range index has a zero tangent, not the fill value (as JAX)
    fill = fill_value if mode == "clip" else fill_of(aval_of(t).dtype, 0)
    return bind(gather_p, t, indices, mode=mode, fill_value=fill)


gather_p.define(jvp=jvp_from_derivatives(gather_p, _gather_derivative, None))


def _with_example_column(indices, bdim):
    """Batched indices with the batch axis first and each row prefixed by its
    example's number, so that it indexes a batched operand's own example."""
    indices = move_dim(indices, bdim, 0)
    shape = get_aval(indices).shape
    column = structural.iota(get_aval(indices).dtype, shape[:-1] + (1,), 0)
    return structural.concatenate([column, indices], len(shape) - 1)


def _gather_batch(values, dims, *, mode, fill_value=None):
    """Operand batched only: its batch axis goes just after the k indexed axes,
    where gather keeps it. Indices batched only: the batch axis is one more
    axis of index rows. Both: each row also names its example (an iota column).
    `mode` and `fill_value` act on the same indices as before, so they mean the same."""
    (operand, indices), (operand_bdim, indices_bdim) = values, dims
    if indices_bdim is not_mapped:
        k = get_aval(indices).shape[-1]
        operand = move_dim(operand, operand_bdim, k)
        return gather(operand, indices, mode, fill_value), get_aval(indices).ndim - 1
    if operand_bdim is not_mapped:
        if indices_bdim == get_aval(indices).ndim - 1:  # the batch axis must not follow the index rows
            indices, indices_bdim = move_dim(indices, indices_bdim, 0), 0
        return gather(operand, indices, mode, fill_value), indices_bdim
    operand = move_dim(operand, operand_bdim, 0)
    return gather(operand, _with_example_column(indices, indices_bdim), mode, fill_value), 0


gather_p.define(batch=_gather_batch)


def _scatter_abstract_eval(name):
    def abstract_eval(operand, indices, updates):
        k = _index_depth(name, operand, indices)
        expected = indices.shape[:-1] + operand.shape[k:]
        if updates.shape != expected or updates.dtype != operand.dtype:
            raise TypeError(f"{name} into {operand.str_short()} at {indices.str_short()} needs updates "
                            f"{ShapedArray(expected, operand.dtype).str_short()}, got {updates.str_short()}")
        return operand
    return abstract_eval


def _in_range_rows(operand_shape, indices):
    indices = _signed(indices)
    k = indices.shape[-1]
    bounds = array_module(indices).array(operand_shape[:k])
    return np.all((indices >= 0) & (indices < bounds), axis=-1)


def _scalar_as_array(updates):
    """Rank-0 updates may be Python or NumPy scalars, which cannot be indexed."""
    return np.asarray(updates) if isinstance(updates, (bool, int, float, np.generic)) else updates


# Scatters take their array module from all operands: the zeros a transpose scatters into are NumPy's.
def _scatter_add_impl(operand, indices, updates):
    xp, (operand, indices, updates) = common_arrays(operand, indices, _scalar_as_array(updates))
    result = xp.array(operand, copy=True)
    keep = _in_range_rows(operand.shape, indices)
    xp.add.at(result, tuple(indices[keep][:, j] for j in range(indices.shape[-1])), updates[keep])
    return result


def _scatter_impl(operand, indices, updates):
    xp, (operand, indices, updates) = common_arrays(operand, indices, _scalar_as_array(updates))
    result = xp.array(operand, copy=True)
    keep = _in_range_rows(operand.shape, indices)
    result[tuple(indices[keep][:, j] for j in range(indices.shape[-1]))] = updates[keep]
    return result


def _scatter_jvp(prim):
    def jvp(primals, tangents):
        operand, indices, updates = primals
        out = bind(prim, operand, indices, updates)
        t_operand, _, t_updates = tangents
        if type(t_operand) is Zero and type(t_updates) is Zero:
            return out, Zero(aval_of(out))
        return out, bind(prim, instantiate(t_operand), indices, instantiate(t_updates))
    return jvp


def _updates_ct(ct, indices):
    """The cotangent each update receives: ct at its position (0 if it was dropped)."""
    return gather(ct, indices, mode="fill", fill_value=fill_of(aval_of(ct).dtype, 0))


def _scatter_add_transpose(ct, operand, indices, updates):
    if type(ct) is Zero:
        return [None, None, None]
    return [ct if is_undefined(operand) else None, None,
            _updates_ct(ct, indices) if is_undefined(updates) else None]


def _scatter_transpose(ct, operand, indices, updates):
    if type(ct) is Zero:
        return [None, None, None]
    ct_operand = None
    if is_undefined(operand):  # overwritten positions do not reach the operand
        ct_operand = scatter(ct, indices, zeros(aval_of(updates)))
    return [ct_operand, None, _updates_ct(ct, indices) if is_undefined(updates) else None]


scatter_add_p = Primitive("scatter_add", params={}, abstract_eval=_scatter_abstract_eval("scatter_add"),
                          impl=_scatter_add_impl, linear_in=(0, 2), transpose=_scatter_add_transpose)
def _beside(x, made):
    """`made`, an array a rule made from nothing (NumPy's, as iota's), where x
    lives (a CuPy array, eagerly): select_n, like the scatters, computes with
    the module of all it meets (ir.core.common_arrays); comparisons do not."""
    return ew.select_n(np.True_, zeros(aval_of(made), like=x), made)


def _scatter_set_jvp(primals, tangents):
    """Where an index repeats, one of its updates wins, unspecified which (as
    in JAX): scattering each update's row number the same way (NumPy assigns in
    index order both times) tells which did, and only the winner's tangent goes
    there (JAX's scheme: a scatter_add of masked tangents), so the derivative
    is that of the value computed."""
    operand, indices, updates = primals
    out = scatter(operand, indices, updates)
    t_operand, _, t_updates = tangents
    if type(t_operand) is Zero and type(t_updates) is Zero:
        return out, Zero(aval_of(out))
    batch, rows_aval = aval_of(indices).shape[:-1], ShapedArray(aval_of(operand).shape, np.int64)
    row_numbers = ew.add(structural.reshape(structural.iota(np.int64, (math.prod(batch),)), batch), np.int64(1))
    row_numbers = structural.broadcast_in_dim(row_numbers, aval_of(updates).shape, tuple(range(len(batch))))
    winners = scatter(zeros(rows_aval), indices, row_numbers)  # 0 where no update went
    won = ew.eq(_gathered(winners, indices, 0), _beside(winners, row_numbers))
    written = ew.ne(winners, np.int64(0))
    nil = aval_of(out).dtype.type(0)
    return out, scatter_add(ew.select_n(written, instantiate(t_operand), nil), indices,
                            ew.select_n(won, nil, instantiate(t_updates)))


scatter_add_p.define(jvp=_scatter_jvp(scatter_add_p))
scatter_p = Primitive("scatter", params={}, abstract_eval=_scatter_abstract_eval("scatter"), impl=_scatter_impl,
                      linear_in=(0, 2), transpose=_scatter_transpose, jvp=_scatter_set_jvp)


def _scatter_batcher(prim):
    """Shared indices: one scatter into an operand whose batch axis follows the
    k indexed axes, with updates batched just after their index-row axes.
    Batched indices: everything batched along axis 0, each index row prefixed
    by its example's number. The operand is broadcast when unbatched: every
    example writes into its own copy. Out-of-range rows stay out of range."""
    def batch(values, dims):
        (operand, indices, updates), (operand_bdim, indices_bdim, updates_bdim) = values, dims
        size = batch_size(values, dims)
        if indices_bdim is not_mapped:
            k = get_aval(indices).shape[-1]
            operand = bdim_to(operand, operand_bdim, size, k)
            updates = bdim_to(updates, updates_bdim, size, get_aval(indices).ndim - 1)
            return bind(prim, operand, indices, updates), k
        operand = bdim_to(operand, operand_bdim, size, 0)
        updates = bdim_to(updates, updates_bdim, size, 0)
        return bind(prim, operand, _with_example_column(indices, indices_bdim), updates), 0
    return batch


scatter_add_p.define(batch=_scatter_batcher(scatter_add_p))
scatter_p.define(batch=_scatter_batcher(scatter_p))


# -------------------- scatters that combine: multiply, min, max --------------------

def _combining_scatter_impl(combine):
    """`operand` with each in-range update combined into its position by
    `combine` (numpy.multiply, minimum or maximum), repeated positions in turn.
    Array operations only, for CuPy too (whose ufuncs have no `.at` for
    multiply): each round combines the first remaining update of each position,
    so there are as many rounds as the most repeated position has updates."""
    def impl(operand, indices, updates):
        xp, (operand, indices, updates) = common_arrays(operand, indices, _scalar_as_array(updates))
        result = xp.array(operand, copy=True)
        keep = _in_range_rows(operand.shape, indices)
        rows, values, k = indices[keep], updates[keep], indices.shape[-1]
        while rows.shape[0]:
            flat = xp.ravel_multi_index(tuple(rows[:, j] for j in range(k)), operand.shape[:k])
            _, first = xp.unique(flat, return_index=True)
            where = tuple(rows[first, j] for j in range(k))
            result[where] = combine(result[where], values[first])
            rest = xp.ones(rows.shape[0], dtype=bool)
            rest[first] = False
            rows, values = rows[rest], values[rest]
        return result
    return impl


def _scatter_mul_abstract_eval(operand, indices, updates):
    if operand.dtype.kind not in "fiuc":
        raise TypeError(f"scatter_mul needs numeric (non-bool) operands, got {operand.str_short()}")
    return _scatter_abstract_eval("scatter_mul")(operand, indices, updates)


def _gathered(x, indices, fill):
    """x at each index row, `fill` at rows out of range: the scatter that uses
    the result drops those rows again, so the fill only keeps the read defined
    (clip would read an empty axis) and free of NaN."""
    return gather(x, indices, mode="fill", fill_value=fill_of(aval_of(x).dtype, fill))


# -------------------- scatter_mul's derivative in its updates: the product of the others --------------------
# An update's derivative is the operand there times the product of the *other* updates at
# its position. Computing that as (product of all) / (this update) goes wrong wherever the
# division is inexact: 0/0 at a zero update, inf/inf at an infinite one, inf/x where the
# product of all overflows though the others' does not, 0/x where it underflows (two
# subnormal updates). So it is built from products only, and differentiates again exactly,
# to any order, by the rules of the primitives it is made of (JAX differentiates
# scatter_mul in its updates only for unique indices).
#
# The update rows are put in order of (position, row): each position's updates form a run,
# and an update's others are the product of the run before it times the product of the
# run after it, each a prefix product within runs by doubling (Hillis and Steele:
# ceil(log2(m - 1)) rounds of shifted products for runs of at most m; rounds past the need
# multiply by exactly 1, so any number of them gives the same bits). Out-of-range rows
# (which the scatter drops) are runs of their own, so their others are exactly 1.
#
# The order comes from the index values:
# - concrete indices (NumPy or CuPy arrays at trace time: under ft.jvp, jacfwd, hessian,
#   jet, vmap of grad): np.lexsort, with m known; none of this where every position has
#   one update.
# - traced indices: whenever the index is computed by staged code, which is the common
#   case, not the exception: eager grad stages each primitive's rule once per signature
#   (interpreters/ad_eager.py), and under jit `ftrans.numpy` computes the positions of
#   `x.at[i]` with a staged gather. ir has no sort primitive, so the keys
#   (position, row) are sorted by Batcher's bitonic network: log2(n) (log2(n) + 1) / 2
#   rounds of compare-exchange over n (the rows padded to a power of 2), a few array
#   operations each. O(K log^2 K) integer work on the indices only and O(K log K) products
#   per element of an update, with no size limit: a pairwise (K, K) mask would cost K^2 memory, and a
#   NotImplementedError past some K would reject ordinary eager programs. Concrete and
#   traced indices give the same order, hence the same bits.


class _Runs:
    """The update rows in order of position: `order`, the row at each place (index
    rows of shape (places, 1); rows past the real ones are padding, read as 1);
    `place`, each real row's place (the same form); `same_before(d)` /
    `same_after(d)`, where the place d before / after holds an update of the same
    in-range position (bool masks over the places); `rounds`, the doubling rounds
    the longest run needs."""
    __slots__ = ("order", "place", "same_before", "same_after", "rounds")

    def __init__(self, order, place, same_before, same_after, rounds):
        self.order, self.place, self.same_before, self.same_after, self.rounds = (
            order, place, same_before, same_after, rounds)


def _rounds_for(longest_run):
    """Doubling rounds that make a prefix product over runs of this length: the
    product before the last place covers longest_run - 1 updates."""
    return max(longest_run - 2, 0).bit_length()


def _concrete_rows(indices):
    """The index rows as a NumPy int64 array of shape (K, k), or None if they are traced."""
    value = indices.concrete_value() if isinstance(indices, Tracer) else indices
    if value is None:
        return None
    if is_cupy_array(value):
        value = value.get()  # one transfer, at trace time: the grouping is built on the host
    value = _signed(np.asarray(value))
    return value.reshape(-1, value.shape[-1]).astype(np.int64, copy=False)


def _runs_of_concrete(rows, operand_shape):
    """_Runs from index rows known now (NumPy), or None where every in-range
    position has at most one update (the product of no others: 1)."""
    count = rows.shape[0]
    kept = _in_range_rows(operand_shape, rows)
    positions = np.full(count, -1, np.int64)  # -1: dropped, each a run of its own
    positions[kept] = np.ravel_multi_index(tuple(rows[kept].T), operand_shape[:rows.shape[1]])
    _, run_lengths = np.unique(positions[kept], return_counts=True)
    if not run_lengths.size or run_lengths.max() < 2:
        return None
    order = np.lexsort((np.arange(count), positions))  # by position, then row
    place = np.empty(count, np.int64)
    place[order] = np.arange(count)
    in_order = positions[order]
    order, place = order[:, None], place[:, None]  # index rows, as gather takes them

    def same_at(d, after):
        near = np.zeros(count, bool)
        pairs = (in_order[d:] == in_order[:-d]) & (in_order[d:] >= 0)
        near[slice(None, -d) if after else slice(d, None)] = pairs
        return near
    return _Runs(order, place, lambda d: same_at(d, False), lambda d: same_at(d, True),
                 _rounds_for(int(run_lengths.max())))


def _runs_of_traced(indices, operand_shape):
    """_Runs from traced index rows, computed with primitives: keys
    (position, row), sorted by a bitonic network, read back as rows and positions."""
    batch, k = aval_of(indices).shape[:-1], aval_of(indices).shape[-1]
    count = math.prod(batch)
    size = 1 << max(count - 1, 0).bit_length()  # the network sorts a power of 2 of keys
    outside = math.prod(operand_shape[:k])  # the position of every dropped row (and padding)
    if (outside + 1) * size >= 2 ** 63:  # 2**31 updates into 2**31 positions still fit
        raise NotImplementedError(
            f"the derivative of scatter_mul in its updates at traced indices: {count} updates into "
            f"{outside} positions overflow its int64 sort keys (position * {size} + row)")
    rows = structural.reshape(indices, (count, k))
    if aval_of(rows).dtype != np.int64:  # uint64 past int64's range wraps to negative: out of range either way
        rows = ew.convert_element_type(rows, np.int64)
    position, in_range = None, None
    for j, axis_size in enumerate(operand_shape[:k]):
        column = structural.reshape(structural.slice(rows, (0, j), (count, j + 1)), (count,))
        inside = ew.bitwise_and(ew.ge(column, np.int64(0)), ew.lt(column, np.int64(axis_size)))
        column = ew.max(ew.min(column, np.int64(max(axis_size - 1, 0))), np.int64(0))
        position = column if position is None else ew.add(ew.mul(position, np.int64(axis_size)), column)
        in_range = inside if in_range is None else ew.bitwise_and(in_range, inside)
    position = ew.select_n(in_range, np.int64(outside), position)
    if size > count:
        position = structural.pad(position, np.int64(outside), [(0, size - count, 0)])
    row_numbers = _beside(position, structural.iota(np.int64, (size,)))
    keys = _bitonic_sort(ew.add(ew.mul(position, np.int64(size)), row_numbers))
    order = structural.reshape(ew.mod(keys, np.int64(size)), (size, 1))
    place = scatter(zeros(ShapedArray((size,), np.dtype(np.int64))), order, row_numbers)
    place = structural.reshape(structural.slice(place, (0,), (count,)), (count, 1))
    in_order = ew.floor_divide(keys, np.int64(size))
    kept = ew.lt(in_order, np.int64(outside))

    def same_at(d, after):
        neighbour = (_shifted_up if after else _shifted_down)(in_order, d, np.int64(-1))
        return ew.bitwise_and(ew.eq(in_order, neighbour), kept)
    return _Runs(order, place, lambda d: same_at(d, False), lambda d: same_at(d, True), _rounds_for(count))


def _bitonic_sort(keys):
    """Distinct integer `keys` (a power-of-2 number n of them) in ascending order, by
    Batcher's bitonic network, in the form whose comparators all put the smaller
    first: blocks of 2, 4, ..., n sorted in turn from sorted halves, each by a flip
    (element i of the block against its mirror image: two sorted halves make a
    bitonic sequence, which the flip splits into a low and a high half, both
    bitonic) and then half-cleaners on blocks of half, a quarter, ... the size."""
    n = aval_of(keys).shape[0]
    size = 2
    while size <= n:
        keys = _compare_halves(keys, size, mirrored=True)
        block = size // 2
        while block >= 2:
            keys = _compare_halves(keys, block, mirrored=False)
            block //= 2
        size *= 2
    return keys


def _compare_halves(keys, block, mirrored):
    """One round of the network: in each block of `block` keys, element i of the first
    half against element i of the second half (or, `mirrored`, against the one as far
    from the end of the block), the smaller one put first."""
    n = aval_of(keys).shape[0]
    halves = structural.reshape(keys, (n // block, 2, block // 2))
    first = structural.slice(halves, (0, 0, 0), (n // block, 1, block // 2))
    second = structural.slice(halves, (0, 1, 0), (n // block, 2, block // 2))
    if mirrored:
        second = structural.rev(second, (2,))
    low, high = ew.min(first, second), ew.max(first, second)
    if mirrored:
        high = structural.rev(high, (2,))
    return structural.reshape(structural.concatenate([low, high], 1), (n,))


def _shifted_down(x, d, fill):
    """x moved d places along axis 0 towards the end: x[i - d] at i, `fill` at the first d."""
    shape = aval_of(x).shape
    kept = structural.slice(x, (0,) * len(shape), (shape[0] - d,) + shape[1:])
    return structural.pad(kept, fill, [(d, 0, 0)] + [(0, 0, 0)] * (len(shape) - 1))


def _shifted_up(x, d, fill):
    """x moved d places along axis 0 towards the start: x[i + d] at i, `fill` at the last d."""
    shape = aval_of(x).shape
    kept = structural.slice(x, (d,) + (0,) * (len(shape) - 1), shape)
    return structural.pad(kept, fill, [(0, d, 0)] + [(0, 0, 0)] * (len(shape) - 1))


def _exclusive_run_products(values, runs, after):
    """At each place, the product of the values before it (after it, `after`) in its
    run: the neighbour's value (1 where the neighbour is in another run), then rounds
    that multiply in the partial product `step` places back (on), 1, 2, 4, ... as long
    as that place is in the same run: after round r each place holds the product of
    the 2**(r + 1) places before it, or of all of them since its run began."""
    shifted, same = (_shifted_up, runs.same_after) if after else (_shifted_down, runs.same_before)
    shape = aval_of(values).shape
    one = aval_of(values).dtype.type(1)

    def within_run(mask, x):  # x where `mask` (over places) holds, 1 elsewhere
        mask = mask if len(shape) == 1 else structural.broadcast_in_dim(mask, shape, (0,))
        return ew.select_n(mask, one, x)
    product = within_run(same(1), shifted(values, 1, one))
    step = 1
    for _ in range(runs.rounds):
        product = ew.mul(product, within_run(same(step), shifted(product, step, one)))
        step *= 2
    return product


def _product_of_the_others(operand, indices, updates):
    """For each update, the product of the other updates at its position (see above),
    shaped like `updates`; None where no position has two updates (all of them 1)."""
    batch = aval_of(indices).shape[:-1]
    count = math.prod(batch)
    if count < 2:
        return None
    operand_shape = aval_of(operand).shape
    rows = _concrete_rows(indices)
    runs = _runs_of_traced(indices, operand_shape) if rows is None else _runs_of_concrete(rows, operand_shape)
    if runs is None:
        return None
    window = aval_of(updates).shape[len(batch):]
    flat = structural.reshape(updates, (count,) + window)
    # padding places (past the real rows) read 1: a run of their own, multiplying nothing in
    in_order = gather(flat, runs.order, mode="fill", fill_value=fill_of(aval_of(flat).dtype, 1))
    others = ew.mul(_exclusive_run_products(in_order, runs, after=False),
                    _exclusive_run_products(in_order, runs, after=True))
    return structural.reshape(gather(others, runs.place), aval_of(updates).shape)


def _scatter_mul_jvp(primals, tangents):
    """out = operand * P, P the product of the updates at each position: linear in
    the operand; an update's tangent times the product of the others there."""
    operand, indices, updates = primals
    out = scatter_mul(operand, indices, updates)
    t_operand, _, t_updates = tangents
    if type(t_operand) is Zero and type(t_updates) is Zero:
        return out, Zero(aval_of(out))
    t_out = None if type(t_operand) is Zero else scatter_mul(t_operand, indices, updates)
    if type(t_updates) is not Zero:
        others = _product_of_the_others(operand, indices, updates)
        # the operand is gathered to each update, not multiplied after the scatter: at a
        # position no update reaches, the tangent is 0 even where the operand is inf
        weighted = t_updates if others is None else ew.mul(t_updates, others)
        per_update = ew.mul(_gathered(operand, indices, 0), weighted)
        term = scatter_add(zeros(aval_of(operand)), indices, per_update)
        t_out = term if t_out is None else ew.add(t_out, term)
    return out, t_out


def _scatter_mul_transpose(ct, operand, indices, updates):
    if is_undefined(updates):
        raise ValueError("scatter_mul is not linear in its updates")
    if type(ct) is Zero or not is_undefined(operand):
        return [None, None, None]
    return [scatter_mul(ct, indices, updates), None, None]


def _same(a, b):
    """a == b elementwise, NaN equal to NaN (a NaN is what min and max keep)."""
    return ew.bitwise_or(ew.eq(a, b), ew.bitwise_and(ew.ne(a, a), ew.ne(b, b)))


def _extremal_scatter_jvp(prim):
    """Each result element's tangent is the mean of the tangents of what it came
    from: the operand element and the updates there equal to it (ties share, as
    in JAX; a NaN is equal to a NaN). At least one of them is, so the count is >= 1."""
    def jvp(primals, tangents):
        operand, indices, updates = primals
        out = bind(prim, operand, indices, updates)
        t_operand, _, t_updates = tangents
        if type(t_operand) is Zero and type(t_updates) is Zero:
            return out, Zero(aval_of(out))
        aval = aval_of(out)
        nil = aval.dtype.type(0)
        kept, won = _same(operand, out), _same(updates, _gathered(out, indices, 0))
        count = ew.add(ew.convert_element_type(kept, aval.dtype),
                       scatter_add(zeros(aval), indices, ew.convert_element_type(won, aval.dtype)))
        total = ew.add(ew.select_n(kept, nil, instantiate(t_operand)),
                       scatter_add(zeros(aval), indices, ew.select_n(won, nil, instantiate(t_updates))))
        return out, ew.div(total, count)
    return jvp


scatter_mul_p = Primitive("scatter_mul", params={}, abstract_eval=_scatter_mul_abstract_eval,
                          impl=_combining_scatter_impl(np.multiply), linear_in=(0,),
                          jvp=_scatter_mul_jvp, transpose=_scatter_mul_transpose)
scatter_min_p = Primitive("scatter_min", params={}, abstract_eval=_scatter_abstract_eval("scatter_min"),
                          impl=_combining_scatter_impl(np.minimum))
scatter_max_p = Primitive("scatter_max", params={}, abstract_eval=_scatter_abstract_eval("scatter_max"),
                          impl=_combining_scatter_impl(np.maximum))
for _prim in (scatter_mul_p, scatter_min_p, scatter_max_p):
    _prim.define(batch=_scatter_batcher(_prim))
for _prim in (scatter_min_p, scatter_max_p):
    _prim.define(jvp=_extremal_scatter_jvp(_prim))
del _prim


# -------------------- Taylor mode (jet) --------------------
# gather and the scatters other than scatter_mul are linear in operand and updates, or
# linear by pieces (min and max: the winners' coefficients): each coefficient is the jvp
# of the coefficients. scatter_mul is linear in its operand; through its updates it is a
# product, whose series is the jet of its jvp (exact: that jvp is made of products and
# gathers only, see _product_of_the_others).

for _prim in (gather_p, scatter_add_p, scatter_p, scatter_min_p, scatter_max_p):
    _prim.define(taylor=taylor_from_jvp(_prim))
del _prim
_scatter_mul_in_operand, _scatter_mul_in_updates = taylor_from_jvp(scatter_mul_p), taylor_from_derivative(scatter_mul_p)
scatter_mul_p.define(taylor=lambda primals, series: (
    _scatter_mul_in_operand if all(is_zero(c) for c in series[2]) else _scatter_mul_in_updates)(primals, series))


def gather(operand, indices, mode="clip", fill_value=None):
    return bind(gather_p, operand, indices, mode=mode, fill_value=fill_value)


def scatter_add(operand, indices, updates):
    return bind(scatter_add_p, operand, indices, updates)


def scatter(operand, indices, updates):
    return bind(scatter_p, operand, indices, updates)


def scatter_mul(operand, indices, updates):
    return bind(scatter_mul_p, operand, indices, updates)


def scatter_min(operand, indices, updates):
    return bind(scatter_min_p, operand, indices, updates)


def scatter_max(operand, indices, updates):
    return bind(scatter_max_p, operand, indices, updates)
