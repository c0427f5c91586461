"""vmap: every primitive's batching rule against a loop over examples, composition
with autodiff, errors, and the IR it stages (no needless broadcasting).

The property (a): for a primitive applied with drawn shapes and params,
``vmap(f, in_axes, out_axes)(*batched)`` equals ``np.stack([f(*example) for
each example], out_axes)``, with in_axes drawn per operand (negative, or None:
the operand is shared), batch sizes 1..3, and out_axes drawn over the output;
and so does ``jit(vmap(f, ...))``, on every jit backend.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import custom_rows
import ftrans as ft
import ftrans.numpy as fnp
import ir
from conftest import NamedAxisCase, collective_examples, jit_for, share_of_profile, under_named_axis
from interpreters.eval import eval_closed_jaxpr
from ir.core import Array
from ir.primitives.callback import HostCallback

F64 = np.dtype(np.float64)


def _bind(name, **params):
    prim = ir.PRIMITIVES[name]
    return lambda *operands: ir.bind(prim, *operands, **params)


def _shape(draw, min_dims=0, max_dims=3):
    return draw(hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=1, max_side=3))


def _floats(shape, lo=-2.0, hi=2.0, dtype=F64):
    return hnp.arrays(dtype, shape, elements=st.floats(lo, hi, width=8 * np.dtype(dtype).itemsize))


def _ties(shape):
    """Floats from a few values, so that comparisons, max and argmax meet ties."""
    return hnp.arrays(F64, shape, elements=st.sampled_from([-1.0, 0.0, 0.5, 1.0]))


def _complexes(shape, lo=-2.0, hi=2.0, dtype=np.complex128):
    part = st.floats(lo, hi, width=4 * np.dtype(dtype).itemsize)
    return hnp.arrays(dtype, shape, elements=st.builds(complex, part, part))


def _complexes64(shape):
    return _complexes(shape, dtype=np.complex64)


def _ints(shape, lo=-1, hi=3, unique=False):
    return hnp.arrays(np.int64, shape, elements=st.integers(lo, hi), unique=unique)


def _bools(shape):
    return hnp.arrays(np.bool_, shape)


# -------------------- one case per primitive --------------------
# A case draws shapes and params, and returns (function of the operands of one
# example, one strategy per operand drawing that example's operand).

def _unary(name, lo=-2.0, hi=2.0, values=None, **params):
    def case(draw):
        shape = _shape(draw)
        return _bind(name, **params), [values(shape) if values else _floats(shape, lo, hi)]
    return case


def _binary(name, values=_floats, right=None):
    """Two operands of one shape, or one of them rank-0 beside the other."""
    def case(draw):
        shape = _shape(draw)
        layout = draw(st.sampled_from(["same", "left scalar", "right scalar"]))
        left_shape = () if layout == "left scalar" else shape
        right_shape = () if layout == "right scalar" else shape
        return _bind(name), [values(left_shape), (right or values)(right_shape)]
    return case


def _integer_pow(draw):
    return _bind("integer_pow", y=draw(st.sampled_from([-2, -1, 0, 1, 2, 3]))), [_floats(_shape(draw), 0.5, 2.0)]


def _convert(draw):
    dtype = np.dtype(draw(st.sampled_from([np.float32, np.int64, np.bool_])))
    return _bind("convert_element_type", new_dtype=dtype, weak_type=False), [_floats(_shape(draw), -3.0, 3.0)]


def _select_n(draw):
    shape = _shape(draw)
    shapes = [draw(st.sampled_from([shape, ()])) for _ in range(3)]
    return _bind("select_n"), [_bools(shapes[0]), _floats(shapes[1]), _floats(shapes[2])]


def _broadcast_in_dim(draw):
    x_shape = _shape(draw, max_dims=2)
    out_shape, dims = [], []
    for n in x_shape:
        if draw(st.booleans()):
            out_shape.append(draw(st.integers(1, 3)))  # a new axis
        dims.append(len(out_shape))
        out_shape.append(draw(st.sampled_from([1, 2])) if n == 1 else n)
    if draw(st.booleans()):
        out_shape.append(draw(st.integers(1, 3)))
    return _bind("broadcast_in_dim", shape=tuple(out_shape), broadcast_dimensions=tuple(dims)), [_floats(x_shape)]


def _reshape(draw):
    shape = _shape(draw)
    size = int(np.prod(shape))
    new_sizes = draw(st.sampled_from([(size,), shape[::-1], shape + (1,), (1,) + shape]))
    return _bind("reshape", new_sizes=tuple(new_sizes)), [_floats(shape)]


def _transpose(draw):
    shape = _shape(draw)
    return _bind("transpose", permutation=tuple(draw(st.permutations(range(len(shape)))))), [_floats(shape)]


def _squeeze(draw):
    shape = list(_shape(draw, max_dims=2))
    ones = sorted(draw(st.sets(st.integers(0, len(shape)), min_size=1, max_size=2)), reverse=True)
    for position in ones:
        shape.insert(position, 1)
    dimensions = tuple(d for d, n in enumerate(shape) if n == 1 and draw(st.booleans())) or (shape.index(1),)
    return _bind("squeeze", dimensions=dimensions), [_floats(tuple(shape))]


def _concatenate(draw):
    shape = _shape(draw, min_dims=1)
    dimension = draw(st.integers(0, len(shape) - 1))
    shapes = [shape[:dimension] + (draw(st.integers(1, 3)),) + shape[dimension + 1:]
              for _ in range(draw(st.integers(1, 3)))]
    return _bind("concatenate", dimension=dimension), [_floats(s) for s in shapes]


def _slice(draw):
    shape = _shape(draw, min_dims=1)
    start = [draw(st.integers(0, n)) for n in shape]
    limit = [draw(st.integers(s, n)) for s, n in zip(start, shape)]
    strides = draw(st.none() | st.tuples(*[st.integers(1, 2) for _ in shape]))
    return (_bind("slice", start_indices=tuple(start), limit_indices=tuple(limit), strides=strides),
            [_floats(shape)])


def _pad(draw):
    shape = _shape(draw, max_dims=2)
    config = tuple((draw(st.integers(0, 2)), draw(st.integers(0, 2)), draw(st.integers(0, 1))) for _ in shape)
    return _bind("pad", padding_config=config), [_floats(shape), _floats(())]


def _rev(draw):
    shape = _shape(draw)
    dimensions = tuple(sorted(draw(st.sets(st.integers(0, len(shape) - 1))))) if shape else ()
    return _bind("rev", dimensions=dimensions), [_floats(shape)]


def _iota(draw):
    shape = _shape(draw, min_dims=1)
    dtype = np.dtype(draw(st.sampled_from([np.int64, np.float64])))
    iota = _bind("iota", dtype=dtype, shape=shape, dimension=draw(st.integers(0, len(shape) - 1)))
    return (lambda x: iota()), [_floats(())]  # no operands: the same for every example


def _jit_call(draw):
    shape = _shape(draw)
    aval = ir.ShapedArray(shape, F64)
    E = ir.primitives.elementwise
    body = ir.stage(lambda a, b: [E.add(E.mul(E.sin(a), 2.0), b)], [aval, aval])
    jit_call_p = ir.PRIMITIVES["jit_call"]
    return (lambda x, y: ir.bind(jit_call_p, x, y, jaxpr=body, name="f")[0]), [_floats(shape), _floats(shape)]


def _unary_bound(prim_name, **params):
    def case(draw):
        shape = _shape(draw)
        prim = ir.PRIMITIVES[prim_name]
        return (lambda x: ir.bind(prim, x, **params)), [_floats(shape)]
    return case


def _custom(name, params_of, cotangent=False):
    """A custom rule's equation on f(x, y) = sin(x) * y (tests/custom_rows.py); for custom_lin,
    its transpose (bwd) batched, through the vjp of custom_vjp_call."""
    def case(draw):
        shape = _shape(draw)
        aval = ir.ShapedArray(shape, F64)
        prim = ir.PRIMITIVES[name]
        if cotangent:
            p = custom_rows.vjp_params(aval)
            vjp_p = ir.PRIMITIVES["custom_vjp_call"]
            return (lambda x, y, g: ft.vjp(lambda a, b: ir.bind(vjp_p, a, b, **p)[0], x, y)[1](g)[0]), \
                [_floats(shape), _floats(shape), _floats(shape)]
        params = params_of(aval)
        return (lambda x, y: ir.bind(prim, x, y, **params)[0]), [_floats(shape), _floats(shape)]
    return case


def _cond(draw):
    """The index batched (a select of every branch per example) or shared (one branch)."""
    shape = _shape(draw)
    aval = ir.ShapedArray(shape, F64)
    E = ir.primitives.elementwise
    branches = tuple(ir.stage(body, [aval, aval]) for body in (lambda a, b: [E.mul(E.sin(a), b)],
                                                              lambda a, b: [E.sub(a, b)],
                                                              lambda a, b: [E.mul(a, 2.0)]))
    cond_p = ir.PRIMITIVES["cond"]
    index = hnp.arrays(np.int32, (), elements=st.integers(-1, 3))
    return (lambda i, x, y: ir.bind(cond_p, i, x, y, branches=branches)[0]), [index, _floats(shape), _floats(shape)]


def _scan(draw):
    """Consts, carry and xs batched or shared (the carry batched by fixpoint when the
    body makes it so); the result depends on the final carry and the ys."""
    shape, length = _shape(draw, max_dims=2), draw(st.integers(1, 3))
    aval = ir.ShapedArray(shape, F64)
    E, R = ir.primitives.elementwise, ir.primitives.reductions
    body = ir.stage(lambda w, c, x: [E.add(E.mul(c, w), E.sin(x)), E.mul(c, x)], [aval] * 3)
    params = {"jaxpr": body, "num_consts": 1, "num_carry": 1, "length": length, "reverse": draw(st.booleans()),
              "unroll": 1}
    scan_p = ir.PRIMITIVES["scan"]

    def fun(w, c, xs):
        carry, ys = ir.bind(scan_p, w, c, xs, **params)
        return E.add(carry, R.reduce_sum(ys, (0,)))
    return fun, [_floats(shape, -1.0, 1.0), _floats(shape), _floats((length, *shape))]


def _while_params(aval):
    """cond (n, i, x) -> i < min(n, 4); body (w, i, x) -> (i + 1, x * w + sin x);
    bwd (w, i, x, g) -> g * (w + cos x)."""
    E = ir.primitives.elementwise
    i32 = ir.ShapedArray((), np.dtype(np.int32))
    cond = ir.stage(lambda n, i, x: [E.lt(i, E.min(n, np.int32(4)))], [i32, i32, aval])
    body = ir.stage(lambda w, i, x: [E.add(i, np.int32(1)), E.add(E.mul(x, w), E.sin(x))], [aval, i32, aval])
    bwd = ir.stage(lambda w, i, x, g: [E.mul(g, E.add(w, E.cos(x)))], [aval, i32, aval, aval])
    return {"cond_jaxpr": cond, "body_jaxpr": body, "cond_nconsts": 1, "body_nconsts": 1, "checkpoints": None}, bwd


def _trip_bound():
    return hnp.arrays(np.int32, (), elements=st.integers(0, 5))


def _while(draw):
    """The bound n batched or shared: lanes whose loops run different numbers of iterations."""
    shape = _shape(draw, max_dims=2)
    params, _ = _while_params(ir.ShapedArray(shape, F64))
    while_p = ir.PRIMITIVES["while"]

    def fun(n, w, x):
        return ir.bind(while_p, n, w, np.int32(0), x, **params)[1]
    return fun, [_trip_bound(), _floats(shape, -1.0, 1.0), _floats(shape)]


def _while_reverse(draw):
    """As _while, and a reverse sweep over the iterations each lane ran."""
    shape = _shape(draw, max_dims=2)
    params, bwd = _while_params(ir.ShapedArray(shape, F64))
    params = {**params, "bwd_jaxpr": bwd, "bwd_nconsts": 1, "checkpoints": draw(st.sampled_from([None, 2])),
              "transforms": ()}
    reverse_p = ir.PRIMITIVES["while_reverse"]

    def fun(n, w, x, g):
        return ir.bind(reverse_p, n, w, w, np.int32(0), x, g, **params)[0]
    return fun, [_trip_bound(), _floats(shape, -1.0, 1.0), _floats(shape), _floats(shape)]


def _reduction(name, values=_floats):
    def case(draw):
        shape = _shape(draw)
        axes = tuple(sorted(draw(st.sets(st.integers(0, len(shape) - 1))))) if shape else ()
        return _bind(name, axes=axes), [values(shape)]
    return case


def _arg_reduction(name):
    def case(draw):
        shape = _shape(draw, min_dims=1)
        return (_bind(name, axes=(draw(st.integers(0, len(shape) - 1)),), index_dtype=np.dtype(np.int64)),
                [_ties(shape)])
    return case


def _sort(draw):
    """Two operands of one shape (ties likely), sorted by the first or by both; the results stacked."""
    shape = _shape(draw, min_dims=1)
    params = dict(dimension=draw(st.integers(0, len(shape) - 1)), is_stable=True, num_keys=draw(st.integers(1, 2)))
    return (lambda a, b: fnp.stack(ir.bind(ir.PRIMITIVES["sort"], a, b, **params)), [_ties(shape), _ties(shape)])


def _cumulative(name):
    def case(draw):
        shape = _shape(draw, min_dims=1)
        return (_bind(name, axis=draw(st.integers(0, len(shape) - 1)), reverse=draw(st.booleans())),
                [_ties(shape) if name in ("cummax", "cummin") else _floats(shape)])
    return case


def _dot_general(draw):
    """Batch, contracting and free dimensions in random order in each operand."""
    counts = {"b": draw(st.integers(0, 1)), "c": draw(st.integers(0, 2)), "f": draw(st.integers(0, 1))}
    sizes = {kind: [draw(st.integers(1, 3)) for _ in range(n)] for kind, n in counts.items()}
    rhs_free = [draw(st.integers(1, 3)) for _ in range(draw(st.integers(0, 1)))]

    def layout(free_sizes):
        dims = [("b", i) for i in range(counts["b"])] + [("c", i) for i in range(counts["c"])]
        dims += [("f", i) for i in range(len(free_sizes))]
        dims = draw(st.permutations(dims))
        shape = tuple(free_sizes[i] if kind == "f" else sizes[kind][i] for kind, i in dims)
        return shape, {d: position for position, d in enumerate(dims)}
    lhs_shape, lhs_at = layout(sizes["f"])
    rhs_shape, rhs_at = layout(rhs_free)
    contract = (tuple(lhs_at["c", i] for i in range(counts["c"])), tuple(rhs_at["c", i] for i in range(counts["c"])))
    batch = (tuple(lhs_at["b", i] for i in range(counts["b"])), tuple(rhs_at["b", i] for i in range(counts["b"])))
    return _bind("dot_general", dimension_numbers=(contract, batch)), [_floats(lhs_shape), _floats(rhs_shape)]


def _gather(draw):
    shape = _shape(draw, min_dims=1)
    k = draw(st.integers(1, len(shape)))
    index_batch = _shape(draw, max_dims=2)
    mode = draw(st.sampled_from(["clip", "fill"]))
    fill_value = draw(st.sampled_from([None, 7.0])) if mode == "fill" else None
    # indices -1 and 3 fall outside some axes: clip and fill must act the same batched
    return (_bind("gather", mode=mode, fill_value=fill_value),
            [_floats(shape), _ints(index_batch + (k,))])


def _scatter(name):
    def case(draw):
        shape = _shape(draw, min_dims=1)
        if name == "scatter":  # which duplicate wins is unspecified: distinct rows only
            k, index_batch = 1, draw(st.sampled_from([(), (2,), (3,)]))
        else:
            k, index_batch = draw(st.integers(1, len(shape))), _shape(draw, max_dims=2)
        indices = _ints(index_batch + (k,), unique=name == "scatter")
        return _bind(name), [_floats(shape), indices, _floats(index_batch + shape[k:])]
    return case


def _uint32s(shape):
    return hnp.arrays(np.uint32, shape, elements=st.integers(0, 2**32 - 1))


def _threefry2x32(draw):
    """Keys and counts each of the case's shape or rank-0 (a key beside counts); both words, xored."""
    shape = _shape(draw)
    shapes = [draw(st.sampled_from([(), shape])) for _ in range(4)]
    E = ir.primitives.elementwise

    def fun(*operands):
        return E.bitwise_xor(*ir.bind(ir.PRIMITIVES["threefry2x32"], *operands))
    return fun, [_uint32s(s) for s in shapes]


def _spd_matrices(shape):
    """Symmetric positive definite n x n matrices (shape's last two sides equal), as a strategy."""
    n = shape[-1]
    return _floats(shape, -1.0, 1.0).map(lambda a: a @ np.swapaxes(a, -1, -2) + n * np.eye(n))


def _all_outputs(name, **params):
    """The primitive's outputs, flattened and joined into one float vector (complex ones as their parts)."""
    bound = _bind(name, **params)
    if not ir.PRIMITIVES[name].multiple_results:
        return bound

    def parts(out):
        return [fnp.real(out), fnp.imag(out)] if fnp.iscomplexobj(out) else [out]
    return lambda *operands: fnp.concatenate([fnp.ravel(p).astype(np.float64) for out in bound(*operands)
                                              for p in parts(out)])


def _decomposition(name, square=True, **params):
    def case(draw):
        n = draw(st.integers(1, 3))
        shape = _shape(draw, max_dims=1) + (n, n if square else draw(st.integers(1, 3)))
        return _all_outputs(name, **params), [_spd_matrices(shape) if square else _floats(shape)]
    return case


def _triangular_solve(draw):
    n, k = draw(st.integers(1, 3)), draw(st.integers(1, 2))
    batch = _shape(draw, max_dims=1)
    left_side = draw(st.booleans())
    params = dict(left_side=left_side, lower=draw(st.booleans()), transpose_a=draw(st.booleans()),
                  unit_diagonal=draw(st.booleans()))
    return _bind("triangular_solve", **params), [_spd_matrices(batch + (n, n)),
                                                 _floats(batch + ((n, k) if left_side else (k, n)))]


def _fft_case(kind):
    def case(draw):
        lengths = tuple(draw(st.lists(st.integers(1, 4), min_size=1, max_size=2)))
        lead = _shape(draw, max_dims=1) if draw(st.booleans()) else ()
        if kind == "IRFFT":
            shape = lead + lengths[:-1] + (lengths[-1] // 2 + 1,)
        else:
            shape = lead + lengths
        values = _floats(shape) if kind == "RFFT" else _complexes(shape)
        return _bind("fft", fft_type=kind, fft_lengths=lengths), [values]
    return case


_positive = dict(lo=0.2, hi=2.0)


def _ternary_incomplete_beta(draw):
    """a, b and x of one shape, or some of them rank-0."""
    shape = _shape(draw)
    shapes = [draw(st.sampled_from([(), shape])) for _ in range(3)]
    return _bind("regularized_incomplete_beta"), [_floats(shapes[0], 0.2, 6.0), _floats(shapes[1], 0.2, 6.0),
                                                  _floats(shapes[2], 0.0, 1.0)]


def _pure_callback(draw):
    """sin(x) * y computed by Python, under each vmap_method (one call per example, or one call on
    whole batches whose unbatched operands get a leading axis of 1 or of the batch size)."""
    shape = _shape(draw)
    method = draw(st.sampled_from(["sequential", "expand_dims", "broadcast_all"]))
    callback = HostCallback(lambda x, y: [np.sin(x) * y], "sin_times")
    return (lambda x, y: ir.bind(ir.PRIMITIVES["pure_callback"], x, y, callback=callback,
                                 result_avals=((shape, F64),), vmap_method=method)[0]), \
        [_floats(shape), _floats(shape)]


def _debug_callback(draw):
    """A debug callback beside a computation: vmap calls it once per example (test_debug.py checks the
    values it sees); the result is the computation's."""
    shape = _shape(draw)
    callback = HostCallback(lambda x: None, "ignore")

    def fun(x):
        ir.bind(ir.PRIMITIVES["debug_callback"], x, callback=callback)
        return ir.primitives.elementwise.sin(x)
    return fun, [_floats(shape)]


def _named_axis_case(per_example):
    def case(draw):
        return under_named_axis(per_example), [_floats(_shape(draw), -1.2, 1.2)]
    return case


CASES = {
    **{name: _unary(name) for name in ["neg", "sign", "abs", "floor", "ceil", "sin", "cos", "atan", "sinh",
                                       "cosh", "tanh", "exp", "expm1", "logistic", "stop_gradient"]},
    "tan": _unary("tan", -1.2, 1.2),
    **{name: _unary(name, -3.0, 3.0) for name in ["erf", "erfc"]},
    "erf_inv": _unary("erf_inv", -0.9, 0.9),
    **{name: _decomposition(name) for name in ("cholesky", "eigh", "lu")},
    "svd": _decomposition("svd", square=False, full_matrices=False),
    "qr": _decomposition("qr", square=False, full_matrices=False),
    "eig": _decomposition("eig", compute_left_eigenvectors=True, compute_right_eigenvectors=True),
    "triangular_solve": _triangular_solve,
    **{name: _unary(name, **_positive) for name in ["lgamma", "digamma"]},
    "polygamma": _unary("polygamma", m=2, **_positive),
    **{name: _binary(name, values=lambda s: _floats(s, 0.2, 6.0))
       for name in ("igamma", "igammac", "igamma_grad_a", "random_gamma_grad")},
    "regularized_incomplete_beta": _ternary_incomplete_beta,
    **{name: _unary(name, **_positive) for name in ["log", "log1p", "sqrt"]},
    "not": _unary("not", values=_bools),
    "integer_pow": _integer_pow,
    "convert_element_type": _convert,
    **{name: _binary(name) for name in ["add", "sub", "mul", "max", "min"]},
    "div": _binary("div", right=lambda s: _floats(s, 0.5, 2.0)),
    "pow": _binary("pow", values=lambda s: _floats(s, 0.5, 2.0)),
    "atan2": _binary("atan2"),
    "floor_divide": _binary("floor_divide", right=lambda s: _floats(s, 0.5, 2.0)),
    "mod": _binary("mod", right=lambda s: _floats(s, 0.5, 2.0)),
    **{name: _binary(name, values=_bools) for name in ["and", "or"]},
    "xor": _binary("xor", values=lambda s: _ints(s, -4, 4)),
    **{name: _binary(name, values=lambda s: _ints(s, -70, 70), right=lambda s: _ints(s, -2, 66))
       for name in ["shift_left", "shift_right_logical"]},
    "threefry2x32": _threefry2x32,
    **{name: _binary(name, values=_ties) for name in ["eq", "ne", "lt", "le", "gt", "ge"]},
    "select_n": _select_n,
    **{name: _unary(name, values=_complexes) for name in ["real", "imag", "conj"]},
    "complex": _binary("complex"),
    "fft": _fft_case("FFT"),
    **{f"fft ({kind})": _fft_case(kind) for kind in ("IFFT", "RFFT", "IRFFT")},
    # complex operands of the elementwise primitives that NumPy defines on them
    **{f"{name} (complex)": _unary(name, values=_complexes) for name in ["neg", "abs", "sin", "exp", "sqrt", "log",
                                                                         "tanh"]},
    **{f"{name} (complex)": _binary(name, values=_complexes) for name in ["add", "mul", "max", "lt", "eq"]},
    "div (complex64)": _binary("div", values=_complexes64),
    "broadcast_in_dim": _broadcast_in_dim,
    "reshape": _reshape,
    "transpose": _transpose,
    "squeeze": _squeeze,
    "concatenate": _concatenate,
    "slice": _slice,
    "pad": _pad,
    "rev": _rev,
    "iota": _iota,
    "jit_call": _jit_call,
    "cond": _cond,
    "scan": _scan,
    "while": _while,
    "while_reverse": _while_reverse,
    "reduce_sum": _reduction("reduce_sum"),
    "reduce_prod": _reduction("reduce_prod"),
    "reduce_max": _reduction("reduce_max", _ties),
    "reduce_min": _reduction("reduce_min", _ties),
    "argmax": _arg_reduction("argmax"),
    "argmin": _arg_reduction("argmin"),
    "dot_general": _dot_general,
    "sort": _sort,
    **{name: _cumulative(name) for name in ["cumsum", "cumprod", "cummax", "cummin"]},
    "gather": _gather,
    "scatter_add": _scatter("scatter_add"),
    "scatter": _scatter("scatter"),
    **{name: _scatter(name) for name in ["scatter_mul", "scatter_min", "scatter_max"]},
    "pure_callback": _pure_callback,
    "reduce_precision": _unary("reduce_precision", -1e3, 1e3, exponent_bits=5, mantissa_bits=3),
    "debug_callback": _debug_callback,
    "custom_jvp_call": _custom("custom_jvp_call", custom_rows.call_params),
    "custom_vjp_call": _custom("custom_vjp_call", custom_rows.vjp_params),
    "custom_lin": _custom("custom_lin", None, cotangent=True),
    "checkpoint": _custom("checkpoint", custom_rows.checkpoint_params),
    "name": _unary_bound("name", name="x"),  # checkpoint_name
    # the collectives, over an axis that vmap(axis_name="i") binds: the vmap under test runs inside it
    # (conftest.under_named_axis, _inside_the_named_axis), where each collective's batch rule runs
    **{name: _named_axis_case(fun) for name, fun in collective_examples(ft.lax, fnp).items()},
}


def _test_only_primitives():
    return {name for name in ir.PRIMITIVES if name.startswith("test_")}


def test_every_primitive_has_a_batch_rule_and_a_case():
    names = set(ir.PRIMITIVES) - _test_only_primitives()
    assert not [name for name in sorted(names) if ir.PRIMITIVES[name].batch is None]
    assert {name.split(" (")[0] for name in CASES} == names


def _assert_same(got, expected):
    got = np.asarray(got)
    assert got.shape == expected.shape and got.dtype == expected.dtype, (got.shape, got.dtype, expected.shape)
    if expected.dtype.kind == "f":
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-13)
    else:
        np.testing.assert_array_equal(got, expected)


def _draw_batched_case(name, data):
    """(vmap of the case's function with drawn in_axes, out_axes and axis_size, the batched
    operands, the expected result: the loop over the examples, stacked along out_axes)."""
    fun, strategies = CASES[name](data.draw)
    size = data.draw(st.integers(1, 3), label="batch size")
    in_axes, batched, examples = [], [], []
    for strategy in strategies:
        values = [data.draw(strategy) for _ in range(size)]
        ndim = values[0].ndim
        axis = data.draw(st.none() | st.integers(-(ndim + 1), ndim), label="in_axis")
        in_axes.append(axis)
        batched.append(values[0] if axis is None else np.stack(values, axis=axis))
        examples.append([values[0]] * size if axis is None else values)
    outs = [np.asarray(fun(*[operand[b] for operand in examples])) for b in range(size)]
    out_axis = data.draw(st.integers(-(outs[0].ndim + 1), outs[0].ndim), label="out_axis")
    expected = np.stack(outs, axis=out_axis)
    unmapped = all(a is None for a in in_axes)
    axis_size = size if unmapped else data.draw(st.sampled_from([None, size]))
    if isinstance(fun, NamedAxisCase):
        return _inside_the_named_axis(fun, tuple(in_axes), out_axis, axis_size, expected.ndim), batched, expected
    vmapped = ft.vmap(fun, in_axes=tuple(in_axes), out_axes=out_axis, axis_size=axis_size)
    return vmapped, batched, expected


def _inside_the_named_axis(case, in_axes, out_axis, axis_size, ndim):
    """vmap(case) of the batched operands, with the vmap under test inside the one that binds the
    collectives' axis: the named axis is a new leading axis of each operand (case.stack), and the
    result's axes are laid out as the loop over vmap(case) stacks them (named axis first, the tested
    batch axis at out_axis)."""
    out_axis %= ndim
    named_out, inner_out = (1, 0) if out_axis == 0 else (0, out_axis - 1)

    def vmapped(*batched):
        inner = lambda f: ft.vmap(f, in_axes=in_axes, out_axes=inner_out, axis_size=axis_size)  # noqa: E731
        return case.inside(inner, *[case.stack(b) for b in batched], out_axes=named_out)
    return vmapped


@pytest.mark.parametrize("name", sorted(CASES))
@given(data=st.data())
def test_vmap_of_each_primitive_matches_a_loop(name, data):
    vmapped, batched, expected = _draw_batched_case(name, data)
    _assert_same(vmapped(*batched), expected)
    # staged, the batched equations type-check (debug mode) and compute the same
    closed = ft.make_jaxpr(vmapped)(*batched)
    _assert_same(eval_closed_jaxpr(closed, *batched)[0], expected)


@pytest.mark.parametrize("name", sorted(CASES))
@share_of_profile(1 / 2)
@given(data=st.data())
def test_jit_of_vmap_of_each_primitive_matches_a_loop(name, data, jit_backend):
    vmapped, batched, expected = _draw_batched_case(name, data)
    got = jit_for(vmapped, jit_backend)(*batched)
    assert type(got) is Array, f"jit of vmap gave a {type(got).__name__}"
    _assert_same(got, expected)


# -------------------- in_axes and out_axes --------------------

def test_in_axes_prefixes_with_dicts_tuples_and_none():
    rng = np.random.default_rng(0)
    params = {"w": rng.normal(size=(3, 2)), "b": rng.normal(size=(4, 2))}  # b batched along axis 0
    xs = rng.normal(size=(3, 4))  # the examples along axis 1
    f = lambda p, x: x @ p["w"] + p["b"]
    out = ft.vmap(f, in_axes=({"w": None, "b": 0}, 1))(params, xs)
    expected = np.stack([xs[:, i] @ params["w"] + params["b"][i] for i in range(4)])
    np.testing.assert_allclose(out, expected, rtol=1e-12)
    # a list at the top level is a tuple over the arguments (as JAX)
    np.testing.assert_allclose(ft.vmap(f, in_axes=[{"w": None, "b": 0}, -1])(params, xs), expected, rtol=1e-12)


def test_out_axes_prefix_none_and_keyword_arguments():
    xs = np.arange(6.0).reshape(2, 3)
    w = np.array([1.0, 2.0, 3.0])

    def f(x, scale):
        return {"per_example": x * scale, "shared": fnp.sin(w)}, fnp.sum(x)
    vmapped = ft.vmap(f, in_axes=(0,), out_axes=({"per_example": 1, "shared": None}, 0))
    out, total = vmapped(xs, scale=np.array([2.0, 3.0]))  # keyword arguments are mapped over axis 0
    np.testing.assert_allclose(out["per_example"], (xs * np.array([[2.0], [3.0]])).T)
    np.testing.assert_allclose(out["shared"], np.sin(w))
    np.testing.assert_allclose(total, xs.sum(1))
    assert all(type(v) is Array for v in (out["per_example"], out["shared"], total))


def test_unbatched_outputs_are_broadcast_and_axis_size_maps_nothing():
    out = ft.vmap(lambda x, y: (x * 2.0, y + 1.0), in_axes=(0, None))(np.arange(3.0), 5.0)
    np.testing.assert_array_equal(out[1], np.full(3, 6.0))
    ones = ft.vmap(lambda: fnp.ones(2), axis_size=4)()
    assert ones.shape == (4, 2)


def test_python_control_flow_on_a_batched_value_is_a_concretization_error():
    with pytest.raises(ft.ConcretizationError, match="vmap"):
        ft.vmap(lambda x: x if x > 0 else -x)(np.arange(3.0))


def test_float32_stays_float32():
    rng = np.random.default_rng(1)
    xs, w = rng.normal(size=(4, 3)).astype(np.float32), rng.normal(size=(3, 2)).astype(np.float32)
    out = ft.vmap(lambda x: fnp.tanh(x @ w) * 2.0)(xs)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, np.tanh(xs @ w) * 2.0, rtol=1e-6)
    grads = ft.vmap(ft.grad(lambda x: fnp.sum(fnp.tanh(x @ w))))(xs)
    assert grads.dtype == np.float32
    np.testing.assert_allclose(grads, (1 - np.tanh(xs @ w) ** 2) @ w.T, rtol=1e-5)


# -------------------- composition --------------------

def _mlp_loss(params, x, y):
    W1, b1, W2, b2 = params
    hidden = fnp.tanh(x @ W1 + b1)
    return fnp.sum((hidden @ W2 + b2 - y) ** 2)


def _mlp_data(seed=0, n=5):
    rng = np.random.default_rng(seed)
    params = (rng.normal(size=(3, 4)), rng.normal(size=4), rng.normal(size=(4, 2)), rng.normal(size=2))
    return params, rng.normal(size=(n, 3)), rng.normal(size=(n, 2))


def _assert_trees_close(got, expected, rtol=1e-12):
    got_leaves, got_tree = ft.tree_util.tree_flatten(got)
    expected_leaves, expected_tree = ft.tree_util.tree_flatten(expected)
    assert got_tree == expected_tree
    for g, e in zip(got_leaves, expected_leaves, strict=True):
        np.testing.assert_allclose(g, e, rtol=rtol, atol=1e-12)


def _stack_trees(trees, axis=0):
    return ft.tree_util.tree_map(lambda *xs: np.stack(xs, axis), *trees)


def test_vmap_of_vmap_with_different_in_axes():
    rng = np.random.default_rng(2)
    xs, ys = rng.normal(size=(4, 3, 2)), rng.normal(size=(2, 3))
    f = lambda x, y: fnp.sin(x) @ y + fnp.sum(x)  # x: (2,), y: (2, 3) -> (3,)
    # inner: map x's axis 0 (size 3 after the outer map removed axis 0) against shared y
    inner = ft.vmap(f, in_axes=(0, None))
    out = ft.vmap(inner, in_axes=(0, None), out_axes=1)(xs, ys)
    expected = np.stack([np.stack([f(xs[i, j], ys) for j in range(3)]) for i in range(4)], axis=1)
    np.testing.assert_allclose(out, expected, rtol=1e-12)
    # the inner map over x's last axis (negative in_axes) and y's rows; the outer one shares y
    g = ft.vmap(ft.vmap(lambda x, y: x * y, in_axes=(-1, 0)), in_axes=(0, None))
    out = g(xs, ys)
    expected = np.stack([np.stack([xs[i, :, j] * ys[j] for j in range(2)]) for i in range(4)])
    np.testing.assert_allclose(out, expected, rtol=1e-12)


def test_per_example_gradients_vmap_of_grad():
    params, xs, ys = _mlp_data()
    per_example = ft.vmap(ft.grad(_mlp_loss), in_axes=(None, 0, 0))(params, xs, ys)
    expected = _stack_trees([ft.grad(_mlp_loss)(params, x, y) for x, y in zip(xs, ys)])
    _assert_trees_close(per_example, expected)


def test_grad_of_a_mean_over_vmap():
    params, xs, ys = _mlp_data(1)
    batched = lambda p: ft.vmap(_mlp_loss, (None, 0, 0))(p, xs, ys).mean()
    looped = lambda p: sum(_mlp_loss(p, x, y) for x, y in zip(xs, ys)) / len(xs)
    _assert_trees_close(ft.grad(batched)(params), ft.grad(looped)(params))
    assert np.isclose(batched(params), looped(params))


def test_jvp_and_linearize_in_both_orders():
    rng = np.random.default_rng(3)
    xs, vs = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
    f = lambda x: fnp.sin(x) * fnp.sum(x ** 2)
    # jvp of vmap: one jvp of the batched function
    out, tangent = ft.jvp(ft.vmap(f), (xs,), (vs,))
    loop = [ft.jvp(f, (x,), (v,)) for x, v in zip(xs, vs)]
    np.testing.assert_allclose(out, np.stack([o for o, _ in loop]), rtol=1e-12)
    np.testing.assert_allclose(tangent, np.stack([t for _, t in loop]), rtol=1e-12)
    # vmap of jvp
    out, tangent = ft.vmap(lambda x, v: ft.jvp(f, (x,), (v,)))(xs, vs)
    np.testing.assert_allclose(tangent, np.stack([t for _, t in loop]), rtol=1e-12)
    # linearize of vmap, and vmap of a linearized function over tangents
    _, f_jvp = ft.linearize(ft.vmap(f), xs)
    np.testing.assert_allclose(f_jvp(vs), np.stack([t for _, t in loop]), rtol=1e-12)
    _, f_jvp_one = ft.linearize(f, xs[0])
    np.testing.assert_allclose(ft.vmap(f_jvp_one)(vs), np.stack([ft.jvp(f, (xs[0],), (v,))[1] for v in vs]),
                               rtol=1e-12)
    # vmap of linearize
    out = ft.vmap(lambda x, v: ft.linearize(f, x)[1](v))(xs, vs)
    np.testing.assert_allclose(out, np.stack([t for _, t in loop]), rtol=1e-12)


def test_grad_through_vmap_closing_over_the_differentiated_value():
    xs = np.array([0.5, -1.0, 2.0])
    g = ft.grad(lambda w: fnp.sum(ft.vmap(lambda x: fnp.sin(w * x))(xs)))(0.3)
    assert np.isclose(g, np.sum(xs * np.cos(0.3 * xs)), rtol=1e-12)


def _jacobian_case():
    rng = np.random.default_rng(4)
    A = rng.normal(size=(2, 3))
    f = lambda p, c: {"y": fnp.tanh(A @ p["x"]) * c, "z": fnp.sum(p["x"] ** 2) * p["s"]}
    p = {"x": rng.normal(size=3), "s": np.array(0.7)}
    return f, p, 1.5


def test_jacfwd_and_jacrev_against_loops_of_jvp_and_vjp():
    f, p, c = _jacobian_case()
    leaves, tree = ft.tree_util.tree_flatten(p)
    out, f_vjp = ft.vjp(lambda p: f(p, c), p)
    # jacfwd: column j is the jvp along basis vector j of the inputs
    for jac in (ft.jacfwd(f)(p, c), ft.jacrev(f)(p, c)):
        for out_key in ("y", "z"):
            out_shape = np.shape(out[out_key])
            for in_key, leaf in p.items():
                block = jac[out_key][in_key]
                assert block.shape == out_shape + np.shape(leaf)
                for j in range(np.size(leaf)):
                    tangent = {k: np.zeros_like(v) for k, v in p.items()}
                    tangent[in_key] = np.eye(np.size(leaf))[j].reshape(np.shape(leaf))
                    _, column = ft.jvp(lambda p: f(p, c), (p,), (tangent,))
                    np.testing.assert_allclose(block.reshape(out_shape + (-1,))[..., j], column[out_key], rtol=1e-12)
                for i in range(int(np.prod(out_shape))):
                    ct = {k: np.zeros_like(v) for k, v in out.items()}
                    ct[out_key] = np.eye(int(np.prod(out_shape)))[i].reshape(out_shape)
                    (row,) = f_vjp(ct)
                    np.testing.assert_allclose(block.reshape((-1,) + np.shape(leaf))[i], row[in_key], rtol=1e-12)
    # argnums as a tuple: one block per argument
    jac = ft.jacrev(f, argnums=(0, 1))(p, c)
    assert isinstance(jac["y"], tuple) and jac["y"][1].shape == (2,)
    np.testing.assert_allclose(jac["y"][1], out["y"] / c, rtol=1e-12)  # dy/dc = tanh(A x)


def test_hessian_of_a_batched_function():
    rng = np.random.default_rng(5)
    A, xs = rng.normal(size=(3, 3)), rng.normal(size=(4, 3))
    f = lambda x: fnp.sum(fnp.tanh(A @ x) ** 2) + x @ x
    per_example = ft.vmap(ft.hessian(f))(xs)
    np.testing.assert_allclose(per_example, np.stack([ft.hessian(f)(x) for x in xs]), rtol=1e-12, atol=1e-12)
    # the Hessian of a sum over a vmap is block diagonal, one block per example
    total = ft.hessian(lambda xs: fnp.sum(ft.vmap(f)(xs)))(xs)
    assert total.shape == (4, 3, 4, 3)
    for i in range(4):
        np.testing.assert_allclose(total[i, :, i], per_example[i], rtol=1e-12, atol=1e-12)
        for j in set(range(4)) - {i}:
            np.testing.assert_array_equal(total[i, :, j], np.zeros((3, 3)))


def test_jacobians_of_empty_and_scalar_inputs():
    assert ft.jacfwd(lambda x: fnp.sin(x) * 2.0)(0.5) == pytest.approx(2 * np.cos(0.5))
    assert ft.jacrev(lambda x: fnp.sin(x) * 2.0)(0.5) == pytest.approx(2 * np.cos(0.5))
    empty = np.zeros((0,))
    assert ft.jacfwd(lambda x: fnp.sum(x) + 1.0)(empty).shape == (0,)
    assert ft.jacrev(lambda x: x * 2.0)(empty).shape == (0, 0)


def test_jacobians_reject_integer_outputs():
    with pytest.raises(TypeError, match="jacfwd requires floating-point outputs"):
        ft.jacfwd(lambda x: fnp.argmax(x))(np.ones(3))
    with pytest.raises(TypeError, match="jacrev requires floating-point outputs"):
        ft.jacrev(lambda x: fnp.argmax(x))(np.ones(3))


# -------------------- errors --------------------

def test_mismatched_sizes_list_every_argument():
    with pytest.raises(ValueError, match=r"(?s)different sizes.*argument 0: size 3.*argument 1\['b'\]: size 4"):
        ft.vmap(lambda x, d: x + d["b"])(np.ones(3), {"b": np.ones(4)})
    with pytest.raises(ValueError, match=r"(?s)argument 0: size 3.*axis_size: 2"):
        ft.vmap(lambda x: x, axis_size=2)(np.ones(3))


def test_in_axes_out_of_range_names_the_argument():
    with pytest.raises(ValueError, match=r"in_axes=2 is out of range for argument 1, of rank 2"):
        ft.vmap(lambda x, y: x, in_axes=(0, 2))(np.ones(3), np.ones((3, 3)))
    with pytest.raises(ValueError, match=r"in_axes=-2 is out of range for argument 0\[1\], of rank 1"):
        ft.vmap(lambda t: t[0], in_axes=-2)((np.ones((3, 3)), np.ones(3)))
    with pytest.raises(ValueError, match=r"in_axes=0 is out of range for argument 0, of rank 0"):
        ft.vmap(lambda x: x)(1.0)


def test_in_axes_structure_mismatch_names_the_argument():
    with pytest.raises(ValueError, match=r"does not match the structure of argument 1: .*\['a'\].*\['a', 'b'\]"):
        ft.vmap(lambda x, d: x, in_axes=(0, {"a": 0}))(np.ones(3), {"a": np.ones(3), "b": np.ones(3)})
    with pytest.raises(ValueError, match=r"in_axes does not match the structure of argument 0\['w'\]"):
        ft.vmap(lambda d: d, in_axes=({"w": (0, 0)},))({"w": np.ones(3)})
    with pytest.raises(ValueError, match=r"tuple of 1 entries.*2 positional arguments"):
        ft.vmap(lambda x, y: x, in_axes=(0,))(np.ones(3), np.ones(3))
    with pytest.raises(TypeError, match="in_axes must be an int, None"):
        ft.vmap(lambda x: x, in_axes="0")
    with pytest.raises(TypeError, match="one entry per positional argument"):
        ft.vmap(lambda d: d["a"], in_axes={"a": 0})  # as JAX: wrap it, in_axes=({"a": 0},)


def test_out_axes_errors():
    with pytest.raises(ValueError, match=r"out_axes=3 is out of range for output\[1\].*\[-2, 1\]"):
        ft.vmap(lambda x: (x, x), out_axes=(0, 3))(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"out_axes does not match the structure of output"):
        ft.vmap(lambda x: (x, x), out_axes=(0, 0, 0))(np.ones((2, 3)))
    with pytest.raises(ValueError, match="out_axes is None for output leaf 0"):
        ft.vmap(lambda x: x * 2.0, out_axes=None)(np.ones(3))


@pytest.mark.parametrize("kwargs, error, match", [
    ({"axis_size": True}, TypeError, r"axis_size must be a non-negative int or None, got True \(a bool\)"),
    ({"axis_size": 2.5}, TypeError, r"axis_size must be a non-negative int or None, got 2.5 \(a float\)"),
    ({"axis_size": "3"}, TypeError, "axis_size must be a non-negative int or None"),
    ({"axis_size": -1}, ValueError, "axis_size must be a non-negative int or None, got -1"),
    ({"in_axes": 1.5}, TypeError, "in_axes must be an int, None"),
    ({"in_axes": (0, [None, "x"])}, TypeError, "in_axes must be an int, None"),
    ({"in_axes": True}, TypeError, "in_axes must be an int, None"),
    ({"out_axes": 0.0}, TypeError, "out_axes must be an int, None"),
    ({"out_axes": {"a": "b"}}, TypeError, "out_axes must be an int, None"),
])
def test_bad_axes_and_axis_size_fail_when_vmap_is_called(kwargs, error, match):
    with pytest.raises(error, match=match):
        ft.vmap(lambda x: x, **kwargs)


def test_nothing_mapped_needs_axis_size():
    with pytest.raises(ValueError, match="at least one mapped argument.*axis_size"):
        ft.vmap(lambda x: x, in_axes=None)(np.ones(3))


def test_missing_batch_rule_names_vmap_and_the_primitive():
    prim = ir.Primitive("test_no_batch_rule", params={}, abstract_eval=lambda x: x, impl=lambda x: x)
    try:
        with pytest.raises(NotImplementedError, match="vmap of test_no_batch_rule"):
            ft.vmap(lambda x: ir.bind(prim, x))(np.ones(3))
    finally:
        del ir.PRIMITIVES[prim.name]


# -------------------- the staged IR: no needless broadcasting --------------------

def _eqns(closed):
    return [(eqn.primitive.name, [v.aval.shape for v in eqn.outvars]) for eqn in closed.eqns]


def test_values_that_do_not_depend_on_the_batch_stay_unbatched():
    w = np.array([0.1, 0.2, 0.3])
    closed = ft.make_jaxpr(ft.vmap(lambda x: x * fnp.sin(w)))(np.ones((5, 3)))
    text = str(closed)
    assert "f64[3] = sin" in text  # computed once, on w itself
    assert [name for name, _ in _eqns(closed)] == ["sin", "broadcast_in_dim", "mul"]
    # a shared rank-0 value meets the batch as it is: no broadcast at all
    closed = ft.make_jaxpr(ft.vmap(lambda x: fnp.sum(x) + fnp.sum(fnp.cos(w))))(np.ones((5, 3)))
    assert "broadcast_in_dim" not in str(closed)
    assert ("cos", [(3,)]) in _eqns(closed)


def test_batched_matmul_against_shared_weights_is_one_dot_general():
    W = np.ones((3, 2))
    closed = ft.make_jaxpr(ft.vmap(lambda x: fnp.tanh(x @ W)))(np.ones((7, 3)))
    assert [name for name, _ in _eqns(closed)] == ["dot_general", "tanh"]
    assert _eqns(closed)[0][1] == [(7, 2)]


def test_per_example_gradients_stage_batched_equations_once():
    params, xs, ys = _mlp_data(n=6)
    closed = ft.make_jaxpr(ft.vmap(ft.grad(_mlp_loss), in_axes=(None, 0, 0)))(params, xs, ys)
    names = [name for name, _ in _eqns(closed)]
    unbatched = [name for name, _ in _eqns(ft.make_jaxpr(ft.grad(_mlp_loss))(params, xs[0], ys[0]))]
    # the same program on batches: only broadcasts of shared values are added
    without_broadcasts = lambda names: sorted(n for n in names if n != "broadcast_in_dim")
    assert without_broadcasts(names) == without_broadcasts(unbatched)
    leaves = ft.tree_util.tree_leaves((params, xs, ys))
    expected = ft.vmap(ft.grad(_mlp_loss), in_axes=(None, 0, 0))(params, xs, ys)
    for got, want in zip(eval_closed_jaxpr(closed, *leaves), ft.tree_util.tree_leaves(expected), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-12)


def test_jacfwd_does_the_primal_work_once():
    closed = ft.make_jaxpr(ft.jacfwd(fnp.sin))(np.ones(4))
    shapes = dict((name, shape) for name, shape in _eqns(closed))
    assert shapes["sin"] == [(4,)] and shapes["cos"] == [(4,)]


def test_batch_jaxpr_turns_a_jaxpr_into_its_batched_jaxpr():
    from interpreters.batching import batch_jaxpr
    w = np.array([1.0, 2.0, 3.0])
    f = lambda x, y: (fnp.sin(x) * y, fnp.cos(y))
    closed = ft.make_jaxpr(f)(np.ones(3), np.ones(3))
    batched, out_dims = batch_jaxpr(closed, [1, None], 4)
    assert out_dims == [0, None]  # the cosine of the shared y is computed once, unbatched
    assert [v.aval.shape for v in batched.jaxpr.invars] == [(3, 4), (3,)]
    xs = np.arange(12.0).reshape(3, 4)
    out, shared = eval_closed_jaxpr(batched, xs, w)
    np.testing.assert_allclose(out, np.sin(xs.T) * w, rtol=1e-12)
    np.testing.assert_allclose(shared, np.cos(w), rtol=1e-12)
    assert closed.jaxpr.invars[0].aval.shape == (3,)  # the original is left alone
