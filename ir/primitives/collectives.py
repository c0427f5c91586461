"""Collectives over a named axis: psum, pmax, pmin, all_gather, psum_scatter,
ppermute, all_to_all and axis_index, with JAX's semantics.

A collective names an axis (`axis_name`) that something binds (ir/axis_env):
`vmap(f, axis_name="i")` binds it to the examples of a batch, and there each
collective is a batching rule (`collective_batch`: psum over the examples is
a sum over the batch axis); a distributed run binds it to the processes, and
there the implementation calls the process backend (MPI) that
`ftrans.distributed` installs. Under a trace that does not bind its axis a
collective is batched like an elementwise operation of the example axis.

Every primitive here is linear except pmax, pmin and axis_index, so their AD
rules are the transposes JAX uses: psum's transpose is psum (under vmap,
every example receives every example's cotangent), all_gather and
psum_scatter transpose to each other, ppermute to the inverse permutation,
all_to_all to itself with the axes exchanged.
"""
from __future__ import annotations

import numpy as np

from ir import axis_env
from ir.core import ShapedArray
from ir.markers import Zero, not_mapped
from ir.primitive import AXIS, BOOL, NON_NEGATIVE_INT, POSITIVE_INT, STR, Primitive, Tuple, TupleOf
from ir.primitives import elementwise as ew
from ir.primitives import indexing, reductions, structural
from ir.primitives.ad_util import jvp_from_derivatives, linear_jvp, scalar_like, zero_jvp
from ir.primitives.batch_util import bdim_to, move_dim
from ir.primitives.taylor_util import taylor_from_jvp, zero_taylor
from ir.tracing import bind, get_aval

# The process backend (ftrans.distributed installs it): an object with one method
# per collective, named as the primitive, taking the operand, bound_axis= (the BoundAxis; all_gather has a
# param `axis`) and the params, and `registered_axis(name)`: the BoundAxis a shard_map or pmap bound.
process_backend = None

MAX_AXIS_SIZE = 2**31 - 1
AXIS_SIZE = POSITIVE_INT
PERMUTATION = TupleOf(Tuple(NON_NEGATIVE_INT, NON_NEGATIVE_INT), max_length=MAX_AXIS_SIZE,
                      description="a tuple of (source, destination) pairs of non-negative ints")


def unbound_axis_error(axis_name, what):
    bound = [a.name for a in axis_env.bound_axes()]
    where = f"the bound axis names are {bound}" if bound else "no axis name is bound"
    return NameError(f"{what}: unbound axis name {axis_name!r} ({where}). A collective needs an axis that "
                     "vmap(..., axis_name=...), shard_map or pmap binds")


def _impl(name):
    def impl(*operands, axis_name, **params):
        axis = axis_env.bound_axis(axis_name)
        if axis is None and process_backend is not None:
            # a jitted call or a backward pass run after shard_map's binding ended: the axis it bound
            axis = process_backend.registered_axis(axis_name)
        if axis is None or axis.kind != "process" or process_backend is None:
            # a vmap axis is handled by the batch trace before any implementation runs
            raise unbound_axis_error(axis_name, name)
        return getattr(process_backend, name)(*operands, bound_axis=axis, **params)
    return impl


def _check_float_or_int(name, x):
    if x.dtype.kind not in "fiu":
        raise TypeError(f"{name} does not take {x.str_short()}")


# -------------------- abstract evaluation --------------------

def _same_aval(name):
    def abstract_eval(x, *, axis_name):
        _check_float_or_int(name, x)
        return x
    return abstract_eval


def _all_gather_aval(x, *, axis_name, axis, tiled, axis_size):
    if not 0 <= axis <= x.ndim - (1 if tiled else 0):
        raise TypeError(f"all_gather: axis {axis} is out of range for {x.str_short()}")
    shape = list(x.shape)
    if tiled:
        shape[axis] *= axis_size
    else:
        shape.insert(axis, axis_size)
    return ShapedArray(shape, x.dtype, x.weak_type)


def _psum_scatter_aval(x, *, axis_name, scatter_dimension, tiled, axis_size):
    _check_float_or_int("psum_scatter", x)
    if not 0 <= scatter_dimension < x.ndim:
        raise TypeError(f"psum_scatter: scatter_dimension {scatter_dimension} is out of range for {x.str_short()}")
    shape = list(x.shape)
    size = shape[scatter_dimension]
    if (tiled and size % axis_size) or (not tiled and size != axis_size):
        need = "a multiple of" if tiled else "equal to"
        raise TypeError(f"psum_scatter: dimension {scatter_dimension} of {x.str_short()} must be {need} the size "
                        f"{axis_size} of axis {axis_name!r}")
    if tiled:
        shape[scatter_dimension] //= axis_size
    else:
        del shape[scatter_dimension]
    return ShapedArray(shape, x.dtype, x.weak_type)


def _ppermute_aval(x, *, axis_name, perm, axis_size):
    sources, destinations = [s for s, _ in perm], [d for _, d in perm]
    if len(set(sources)) != len(sources) or len(set(destinations)) != len(destinations):
        raise TypeError(f"ppermute: perm {perm} has a repeated source or destination")
    if any(i >= axis_size for i in sources + destinations):
        raise TypeError(f"ppermute: perm {perm} names an index outside axis {axis_name!r} of size {axis_size}")
    return x


def _all_to_all_aval(x, *, axis_name, split_axis, concat_axis, tiled, axis_size):
    if not (0 <= split_axis < x.ndim and 0 <= concat_axis < x.ndim):
        raise TypeError(f"all_to_all: split_axis {split_axis} or concat_axis {concat_axis} is out of range "
                        f"for {x.str_short()}")
    shape = list(x.shape)
    if tiled:
        if shape[split_axis] % axis_size:
            raise TypeError(f"all_to_all: dimension {split_axis} of {x.str_short()} is not a multiple of the size "
                            f"{axis_size} of axis {axis_name!r}")
        shape[split_axis] //= axis_size
        shape[concat_axis] *= axis_size
        return ShapedArray(shape, x.dtype, x.weak_type)
    if shape[split_axis] != axis_size:
        raise TypeError(f"all_to_all: dimension {split_axis} of {x.str_short()} must equal the size {axis_size} "
                        f"of axis {axis_name!r} (or pass tiled=True)")
    del shape[split_axis]
    shape.insert(concat_axis, axis_size)
    return ShapedArray(shape, x.dtype, x.weak_type)


def _axis_index_aval(*, axis_name):
    return ShapedArray((), np.dtype(np.int32))


psum_p = Primitive("psum", params={"axis_name": STR}, abstract_eval=_same_aval("psum"), impl=_impl("psum"),
                   linear_in=(0,))
pmax_p = Primitive("pmax", params={"axis_name": STR}, abstract_eval=_same_aval("pmax"), impl=_impl("pmax"))
pmin_p = Primitive("pmin", params={"axis_name": STR}, abstract_eval=_same_aval("pmin"), impl=_impl("pmin"))
all_gather_p = Primitive("all_gather", params={"axis_name": STR, "axis": AXIS, "tiled": BOOL,
                                               "axis_size": AXIS_SIZE},
                         abstract_eval=_all_gather_aval, impl=_impl("all_gather"), linear_in=(0,))
psum_scatter_p = Primitive("psum_scatter", params={"axis_name": STR, "scatter_dimension": AXIS, "tiled": BOOL,
                                                   "axis_size": AXIS_SIZE},
                           abstract_eval=_psum_scatter_aval, impl=_impl("psum_scatter"), linear_in=(0,))
ppermute_p = Primitive("ppermute", params={"axis_name": STR, "perm": PERMUTATION, "axis_size": AXIS_SIZE},
                       abstract_eval=_ppermute_aval, impl=_impl("ppermute"), linear_in=(0,))
all_to_all_p = Primitive("all_to_all", params={"axis_name": STR, "split_axis": AXIS, "concat_axis": AXIS,
                                               "tiled": BOOL, "axis_size": AXIS_SIZE},
                         abstract_eval=_all_to_all_aval, impl=_impl("all_to_all"), linear_in=(0,))
axis_index_p = Primitive("axis_index", params={"axis_name": STR}, abstract_eval=_axis_index_aval,
                         impl=_impl("axis_index"))
COLLECTIVES = (psum_p, pmax_p, pmin_p, all_gather_p, psum_scatter_p, ppermute_p, all_to_all_p, axis_index_p)


# -------------------- binders --------------------

def _size_of(axis_name, what):
    axis = axis_env.bound_axis(axis_name)
    if axis is None:
        raise unbound_axis_error(axis_name, what)
    return axis.size


def psum(x, axis_name):
    _size_of(axis_name, "psum")
    return bind(psum_p, x, axis_name=axis_name)


def pmax(x, axis_name):
    _size_of(axis_name, "pmax")
    return bind(pmax_p, x, axis_name=axis_name)


def pmin(x, axis_name):
    _size_of(axis_name, "pmin")
    return bind(pmin_p, x, axis_name=axis_name)


def all_gather(x, axis_name, axis=0, tiled=False):
    return bind(all_gather_p, x, axis_name=axis_name, axis=axis, tiled=tiled,
                axis_size=_size_of(axis_name, "all_gather"))


def psum_scatter(x, axis_name, scatter_dimension=0, tiled=False):
    return bind(psum_scatter_p, x, axis_name=axis_name, scatter_dimension=scatter_dimension, tiled=tiled,
                axis_size=_size_of(axis_name, "psum_scatter"))


def ppermute(x, axis_name, perm):
    return bind(ppermute_p, x, axis_name=axis_name, perm=perm, axis_size=_size_of(axis_name, "ppermute"))


def all_to_all(x, axis_name, split_axis, concat_axis, tiled=False):
    return bind(all_to_all_p, x, axis_name=axis_name, split_axis=split_axis, concat_axis=concat_axis, tiled=tiled,
                axis_size=_size_of(axis_name, "all_to_all"))


def axis_index(axis_name):
    _size_of(axis_name, "axis_index")
    return bind(axis_index_p, axis_name=axis_name)


# -------------------- AD --------------------

def _extremum_derivative(t, out, x, *, axis_name):
    """The tangent of the example(s) holding the extremum; ties share it equally (as reduce_max)."""
    chosen = ew.convert_element_type(ew.eq(x, out), get_aval(t).dtype)
    return ew.div(bind(psum_p, ew.mul(t, chosen), axis_name=axis_name), bind(psum_p, chosen, axis_name=axis_name))


def _transposed_by(make):
    def transpose(ct, x, **params):
        return [None if type(ct) is Zero else make(ct, **params)]
    return transpose


def _inverse(perm):
    return tuple((d, s) for s, d in perm)


for _prim in (psum_p, all_gather_p, psum_scatter_p, ppermute_p, all_to_all_p):
    _prim.define(jvp=linear_jvp(_prim), taylor=taylor_from_jvp(_prim))
for _prim in (pmax_p, pmin_p):
    _prim.define(jvp=jvp_from_derivatives(_prim, _extremum_derivative), taylor=taylor_from_jvp(_prim))
axis_index_p.define(jvp=zero_jvp(axis_index_p), taylor=zero_taylor(axis_index_p))

psum_p.define(transpose=_transposed_by(lambda ct, axis_name: bind(psum_p, ct, axis_name=axis_name)))
all_gather_p.define(transpose=_transposed_by(
    lambda ct, axis_name, axis, tiled, axis_size: bind(psum_scatter_p, ct, axis_name=axis_name, scatter_dimension=axis,
                                                       tiled=tiled, axis_size=axis_size)))
psum_scatter_p.define(transpose=_transposed_by(
    lambda ct, axis_name, scatter_dimension, tiled, axis_size: bind(all_gather_p, ct, axis_name=axis_name,
                                                                    axis=scatter_dimension, tiled=tiled,
                                                                    axis_size=axis_size)))
ppermute_p.define(transpose=_transposed_by(
    lambda ct, axis_name, perm, axis_size: bind(ppermute_p, ct, axis_name=axis_name, perm=_inverse(perm),
                                                axis_size=axis_size)))
all_to_all_p.define(transpose=_transposed_by(
    lambda ct, axis_name, split_axis, concat_axis, tiled, axis_size: bind(
        all_to_all_p, ct, axis_name=axis_name, split_axis=concat_axis, concat_axis=split_axis, tiled=tiled,
        axis_size=axis_size)))


# -------------------- vmap over another axis: the example axis is one more array axis --------------------

def _elementwise_batch(prim):
    def batch(values, dims, **params):
        return bind(prim, *values, **params), dims[0]
    return batch


def _batch_with_axes_shifted(prim, *axis_params):
    """The batch axis moved first, the collective's own axes one further."""
    def batch(values, dims, **params):
        x = move_dim(values[0], dims[0], 0)
        shifted = {k: params[k] + 1 for k in axis_params}
        return bind(prim, x, **{**params, **shifted}), 0
    return batch


for _prim in (psum_p, pmax_p, pmin_p, ppermute_p):
    _prim.define(batch=_elementwise_batch(_prim))
# (no operands, so never batched: it is the same for every example of another axis)
axis_index_p.define(batch=lambda values, dims, **params: (bind(axis_index_p, **params), not_mapped))
all_gather_p.define(batch=_batch_with_axes_shifted(all_gather_p, "axis"))
psum_scatter_p.define(batch=_batch_with_axes_shifted(psum_scatter_p, "scatter_dimension"))
all_to_all_p.define(batch=_batch_with_axes_shifted(all_to_all_p, "split_axis", "concat_axis"))


# -------------------- vmap over the named axis: the collective acts on the batch axis --------------------
# (values, dims, size, **params) -> (out, out_dim), `size` the axis's; an operand may be unbatched (the same in
# every example)

def _merge_dims(x, first):
    """Axes `first` and `first + 1` of x made one (the first one major)."""
    shape = get_aval(x).shape
    return structural.reshape(x, shape[:first] + (shape[first] * shape[first + 1],) + shape[first + 2:])


def _split_dim(x, dim, major):
    """Axis `dim` of x split in two, the first of size `major`."""
    shape = get_aval(x).shape
    return structural.reshape(x, shape[:dim] + (major, shape[dim] // major) + shape[dim + 1:])


def _summed(x, dim, size):
    if dim is not_mapped:
        return ew.mul(x, scalar_like(x, size))
    return reductions.reduce_sum(x, (dim,))


def _psum_named(values, dims, size, *, axis_name):
    return _summed(values[0], dims[0], size), not_mapped


def _extremum_named(reduce):
    def rule(values, dims, size, *, axis_name):
        x, d = values[0], dims[0]
        return (x if d is not_mapped else reduce(x, (d,))), not_mapped
    return rule


def _all_gather_named(values, dims, size, *, axis_name, axis, tiled, axis_size):
    gathered = bdim_to(values[0], dims[0], size, axis)
    return (_merge_dims(gathered, axis) if tiled else gathered), not_mapped


def _psum_scatter_named(values, dims, size, *, axis_name, scatter_dimension, tiled, axis_size):
    total = _summed(values[0], dims[0], size)  # one example's shape
    if tiled:
        total = _split_dim(total, scatter_dimension, size)
    return total, scatter_dimension


def _ppermute_named(values, dims, size, *, axis_name, perm, axis_size):
    """One gather with constant indices: example dst reads example source_of[dst]; a destination no
    one sends to reads an index past the end, whose fill is zero (as JAX: it receives zeros)."""
    x, d = values[0], dims[0]
    if d is not_mapped:
        x, d = bdim_to(x, d, size, 0), 0
    x = move_dim(x, d, 0)
    source_of = dict((dst, src) for src, dst in perm)
    sources = np.array([[source_of.get(dst, size)] for dst in range(size)], np.int32)
    zero = get_aval(x).dtype.type(0).item()
    return indexing.gather(x, sources, "fill", zero), 0


def _all_to_all_named(values, dims, size, *, axis_name, split_axis, concat_axis, tiled, axis_size):
    stacked = bdim_to(values[0], dims[0], size, 0)  # [source example, *example dims]
    if tiled:
        stacked = _split_dim(stacked, split_axis + 1, size)
    exchanged = move_dim(stacked, split_axis + 1, 0)   # [destination, source, *rest]
    exchanged = move_dim(exchanged, 1, 1 + concat_axis)  # the source examples along concat_axis
    return (_merge_dims(exchanged, 1 + concat_axis) if tiled else exchanged), 0


def _axis_index_named(values, dims, size, *, axis_name):
    return structural.iota(np.dtype(np.int32), (size,), 0), 0


psum_p.define(collective_batch=_psum_named)
pmax_p.define(collective_batch=_extremum_named(reductions.reduce_max))
pmin_p.define(collective_batch=_extremum_named(reductions.reduce_min))
all_gather_p.define(collective_batch=_all_gather_named)
psum_scatter_p.define(collective_batch=_psum_scatter_named)
ppermute_p.define(collective_batch=_ppermute_named)
all_to_all_p.define(collective_batch=_all_to_all_named)
axis_index_p.define(collective_batch=_axis_index_named)
