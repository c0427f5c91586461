"""ft.lax's windowed operations: conv_general_dilated and reduce_window (JAX's signatures).

Both are compositions of primitives that every transformation already has rules for, so
they differentiate (in every operand), batch, stage and lower like any other code:

- The padded (and, for lhs_dilation / base_dilation, interior-padded) input is read
  once per window position by a strided `slice`; a window of k positions gives k slices.
- conv stacks the k slices into patches (N, C, k, *out) and contracts them with the
  kernel (O, I, k) in one `dot_general` (im2col: BLAS does the work); feature groups
  and batch groups are a batch dimension of that dot_general.
- reduce_window combines the k slices with `computation` (lax.add, lax.max, ...),
  elementwise: its derivative is that of the elementwise ops (max pooling's picks the
  maximum, splitting ties as `maximum` does).
"""
from __future__ import annotations

import itertools
from typing import NamedTuple

import numpy as np

from ftrans.numpy._core import as_operand, aval_of, convert, result_type, static_int
from ir.errors import api_boundary, at_user_line
from ir.primitives import linalg, structural


class ConvDimensionNumbers(NamedTuple):
    """Where the batch, feature and spatial dimensions are: lhs_spec = (batch, feature, *spatial),
    rhs_spec = (out feature, in feature, *spatial), out_spec = (batch, feature, *spatial)."""
    lhs_spec: tuple
    rhs_spec: tuple
    out_spec: tuple


def _ints(values, name, what, length):
    if values is None:
        return (1,) * length
    if not hasattr(values, "__len__") or isinstance(values, (str, bytes)):
        raise TypeError(at_user_line(f"{name}: {what} must be a sequence of ints, got {values!r}"))
    ints = tuple(static_int(v, name, f"each entry of {what}") for v in values)
    if len(ints) != length:
        raise TypeError(at_user_line(f"{name}: {what} must have {length} entries (one per window dimension), "
                                     f"got {len(ints)}: {values!r}"))
    if any(n < 1 for n in ints):
        raise ValueError(at_user_line(f"{name}: each entry of {what} must be positive, got {values!r}"))
    return ints


@api_boundary
def padtype_to_pads(in_shape, window_shape, window_strides, padding):
    """(low, high) pads per dimension for padding 'SAME', 'SAME_LOWER' or 'VALID' (JAX's rule)."""
    if not isinstance(padding, str):
        raise TypeError(at_user_line(f"padtype_to_pads: padding must be 'SAME', 'SAME_LOWER' or 'VALID', "
                                     f"got {padding!r}"))
    kind = padding.upper()
    if kind == "VALID":
        return [(0, 0)] * len(in_shape)
    if kind not in ("SAME", "SAME_LOWER"):
        raise ValueError(at_user_line(f"padding must be 'SAME', 'SAME_LOWER' or 'VALID', got {padding!r}"))
    pads = []
    for size, window, stride in zip(in_shape, window_shape, window_strides, strict=True):
        out = -(-size // stride)
        total = max((out - 1) * stride + window - size, 0)
        low = total // 2 if kind == "SAME" else total - total // 2
        pads.append((low, total - low))
    return pads


def _pads(padding, in_shape, window_shape, strides, name):
    if isinstance(padding, str):
        return padtype_to_pads(in_shape, window_shape, strides, padding)
    if not hasattr(padding, "__len__") or len(padding) != len(in_shape) \
            or not all(hasattr(p, "__len__") and len(p) == 2 for p in padding):
        raise TypeError(at_user_line(f"{name}: padding must be 'SAME', 'VALID' or one (low, high) pair per "
                                     f"window dimension ({len(in_shape)}), got {padding!r}"))
    return [tuple(static_int(n, name, "each padding entry") for n in p) for p in padding]


def _padded(x, value, pads, dilation, spatial):
    """x with (low, high) padding (negative: cropping) and dilation - 1 holes along `spatial` axes."""
    aval = aval_of(x)
    config = [(0, 0, 0)] * aval.ndim
    for axis, (low, high), d in zip(spatial, pads, dilation):
        config[axis] = (max(low, 0), max(high, 0), d - 1)
    if any(c != (0, 0, 0) for c in config):
        x = structural.pad(x, value, config)
    if any(low < 0 or high < 0 for low, high in pads):
        shape = aval_of(x).shape
        starts, limits = [0] * aval.ndim, list(shape)
        for axis, (low, high) in zip(spatial, pads):
            starts[axis], limits[axis] = max(-low, 0), shape[axis] - max(-high, 0)
        x = structural.slice(x, starts, limits)
    return x


def _window_slices(x, window, strides, dilation, spatial):
    """One strided slice of x per window position (row-major over the window), and the output shape."""
    shape = aval_of(x).shape
    out = []
    for axis, k, s, d in zip(spatial, window, strides, dilation):
        span = (k - 1) * d + 1
        if shape[axis] < span:
            raise ValueError(at_user_line(f"the window (dilated size {span}) does not fit the padded input "
                                          f"(size {shape[axis]}) along axis {axis}"))
        out.append((shape[axis] - span) // s + 1)
    slices = []
    for position in itertools.product(*(range(k) for k in window)):
        starts, limits, steps = [0] * len(shape), list(shape), [1] * len(shape)
        for axis, p, s, d, n in zip(spatial, position, strides, dilation, out):
            starts[axis] = p * d
            limits[axis] = p * d + (n - 1) * s + 1
            steps[axis] = s
        slices.append(structural.slice(x, starts, limits, steps))
    return slices, out


# -------------------- reduce_window --------------------

@api_boundary
def reduce_window(operand, init_value, computation, window_dimensions, window_strides, padding,
                  base_dilation=None, window_dilation=None):
    """Reduce each window of `operand` with `computation` (lax.add for sum pooling, lax.max for max
    pooling; divide a sum by the window size for average pooling), starting from `init_value`,
    which also fills the padding and the holes of `base_dilation`."""
    x = as_operand(operand)
    aval = aval_of(x, "reduce_window")
    if not callable(computation):
        raise TypeError(at_user_line(f"reduce_window: computation must be a function of two arrays "
                                     f"(lax.add, lax.max, ...), got {computation!r}"))
    ndim = aval.ndim
    window = _ints(window_dimensions, "reduce_window", "window_dimensions", ndim)
    strides = _ints(window_strides, "reduce_window", "window_strides", ndim)
    base = _ints(base_dilation, "reduce_window", "base_dilation", ndim)
    wdil = _ints(window_dilation, "reduce_window", "window_dilation", ndim)
    init = convert(init_value, aval.dtype) if aval_of(init_value).ndim == 0 else None
    if init is None:
        raise TypeError(at_user_line(f"reduce_window: init_value must be a scalar, got {aval_of(init_value)}"))
    dilated = [(n - 1) * b + 1 if n else 0 for n, b in zip(aval.shape, base)]
    spans = [(k - 1) * d + 1 for k, d in zip(window, wdil)]
    pads = _pads(padding, dilated, spans, strides, "reduce_window")
    axes = tuple(range(ndim))
    x = _padded(x, init, pads, base, axes)
    slices, out_shape = _window_slices(x, window, strides, wdil, axes)
    result = slices[0]
    for piece in slices[1:]:
        result = computation(result, piece)
    if not _is_identity(init_value, computation, aval.dtype):
        result = computation(structural.broadcast_in_dim(init, tuple(out_shape), ()), result)
    return result


def _is_identity(value, computation, dtype):
    """Whether init_value is known to leave `computation` unchanged (0 for add, -inf for max, ...)."""
    from ftrans import lax
    from ftrans import numpy as fnp
    from ftrans.numpy._core import concrete_or_none
    value = concrete_or_none(value)
    if value is None:
        return False
    value = np.asarray(value, dtype)
    info = np.finfo(dtype) if dtype.kind == "f" else np.iinfo(dtype) if dtype.kind in "iu" else None
    lowest = -np.inf if dtype.kind == "f" else (info.min if info is not None else False)
    highest = np.inf if dtype.kind == "f" else (info.max if info is not None else True)
    identities = {lax.add: 0, fnp.add: 0, lax.mul: 1, fnp.multiply: 1,
                  lax.max: lowest, fnp.maximum: lowest, lax.min: highest, fnp.minimum: highest}
    for fun, identity in identities.items():
        if computation is fun:
            return bool(value == identity)
    return False


# -------------------- conv_general_dilated --------------------

def _spec_of_strings(lhs, rhs, out):
    for spec, needs, what in ((lhs, "NC", "lhs"), (rhs, "OI", "rhs"), (out, "NC", "out")):
        if not isinstance(spec, str) or any(spec.count(c) != 1 for c in needs) or len(set(spec)) != len(spec):
            raise ValueError(at_user_line(f"conv_general_dilated: the {what} spec {spec!r} must name each of "
                                          f"{needs[0]}, {needs[1]} and the spatial dimensions once"))
    spatial = [c for c in rhs if c not in "OI"]
    for spec, what in ((lhs, "lhs"), (out, "out")):
        if sorted(c for c in spec if c not in "NC") != sorted(spatial):
            raise ValueError(at_user_line(f"conv_general_dilated: the {what} spec {spec!r} must have the "
                                          f"spatial dimensions of the rhs spec {rhs!r}"))
    return ConvDimensionNumbers(tuple(lhs.index(c) for c in "NC" + "".join(spatial)),
                                tuple(rhs.index(c) for c in "OI" + "".join(spatial)),
                                tuple(out.index(c) for c in "NC" + "".join(spatial)))


@api_boundary
def conv_dimension_numbers(lhs_shape, rhs_shape, dimension_numbers):
    """ConvDimensionNumbers from None (NC..., OI..., NC...), three spec strings ('NHWC', 'HWIO',
    'NHWC') or a ConvDimensionNumbers, checked against the operands' ranks."""
    ndim = len(lhs_shape)
    if len(rhs_shape) != ndim:
        raise TypeError(at_user_line(f"conv_general_dilated: lhs and rhs must have one rank, got shapes "
                                     f"{tuple(lhs_shape)} and {tuple(rhs_shape)}"))
    if ndim < 2:
        raise TypeError(at_user_line(f"conv_general_dilated: operands need a batch and a feature dimension, "
                                     f"got rank {ndim}"))
    if dimension_numbers is None:
        iota = tuple(range(ndim))
        return ConvDimensionNumbers(iota, iota, iota)
    if isinstance(dimension_numbers, ConvDimensionNumbers):
        specs = dimension_numbers
    elif isinstance(dimension_numbers, (tuple, list)) and len(dimension_numbers) == 3:
        if all(isinstance(s, str) for s in dimension_numbers):
            specs = _spec_of_strings(*dimension_numbers)
        else:
            specs = ConvDimensionNumbers(*(tuple(static_int(d, "conv_general_dilated", "a dimension number")
                                                 for d in s) for s in dimension_numbers))
    else:
        raise TypeError(at_user_line(f"conv_general_dilated: dimension_numbers must be None, three spec strings "
                                     f"or a ConvDimensionNumbers, got {dimension_numbers!r}"))
    for spec in specs:
        if sorted(spec) != list(range(ndim)):
            raise ValueError(at_user_line(f"conv_general_dilated: dimension numbers {tuple(specs)} must each be "
                                          f"a permutation of the {ndim} dimensions"))
    return ConvDimensionNumbers(*(tuple(s) for s in specs))


@api_boundary
def conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation=None, rhs_dilation=None,
                         dimension_numbers=None, feature_group_count=1, batch_group_count=1,
                         precision=None, preferred_element_type=None):
    """N-d convolution (cross-correlation, as XLA's), JAX's signature and semantics."""
    name = "conv_general_dilated"
    lhs, rhs = as_operand(lhs), as_operand(rhs)
    lhs_aval, rhs_aval = aval_of(lhs, name), aval_of(rhs, name)
    dtype, weak = result_type(lhs_aval, rhs_aval, name=name)
    if dtype.kind not in "fiu":
        raise TypeError(at_user_line(f"{name}: operands must be numeric, got {lhs_aval.str_short()} and "
                                     f"{rhs_aval.str_short()}"))
    lhs, rhs = convert(lhs, dtype, weak), convert(rhs, dtype, weak)
    dnums = conv_dimension_numbers(lhs_aval.shape, rhs_aval.shape, dimension_numbers)
    nspatial = lhs_aval.ndim - 2
    strides = _ints(window_strides, name, "window_strides", nspatial)
    lhs_dil = _ints(lhs_dilation, name, "lhs_dilation", nspatial)
    rhs_dil = _ints(rhs_dilation, name, "rhs_dilation", nspatial)
    groups = static_int(feature_group_count, name, "feature_group_count")
    batch_groups = static_int(batch_group_count, name, "batch_group_count")
    # logical layouts: lhs (N, C, *spatial), rhs (O, I, *window)
    lhs = structural.transpose(lhs, dnums.lhs_spec) if dnums.lhs_spec != tuple(range(lhs_aval.ndim)) else lhs
    rhs = structural.transpose(rhs, dnums.rhs_spec) if dnums.rhs_spec != tuple(range(rhs_aval.ndim)) else rhs
    (n, c, *spatial), (o, i, *window) = aval_of(lhs).shape, aval_of(rhs).shape
    _check_groups(name, n, c, o, i, groups, batch_groups)
    spans = [(k - 1) * d + 1 for k, d in zip(window, rhs_dil)]
    pads = _pads(padding, spatial, spans, strides, name)
    lhs = _padded(lhs, convert(0, dtype), pads, lhs_dil, range(2, lhs_aval.ndim))
    slices, out_spatial = _window_slices(lhs, window, strides, rhs_dil, range(2, lhs_aval.ndim))
    k = len(slices)
    patches = structural.concatenate([structural.reshape(s, (n, c, 1, *out_spatial)) for s in slices], 2) \
        if k > 1 else structural.reshape(slices[0], (n, c, 1, *out_spatial))
    kernel = structural.reshape(rhs, (o, i, k))
    out_dims = tuple(range(len(out_spatial)))
    if groups == 1 and batch_groups == 1:
        out = linalg.dot_general(patches, kernel, (((1, 2), (1, 2)), ((), ())))  # (N, *out, O)
        out = structural.transpose(out, (0, len(out_spatial) + 1) + tuple(d + 1 for d in out_dims))
    elif groups > 1:
        patches = structural.reshape(patches, (n, groups, i, k, *out_spatial))
        kernel = structural.reshape(kernel, (groups, o // groups, i, k))
        out = linalg.dot_general(patches, kernel, (((2, 3), (2, 3)), ((1,), (0,))))  # (G, N, *out, O/G)
        last = len(out_spatial) + 2
        out = structural.transpose(out, (1, 0, last) + tuple(d + 2 for d in out_dims))  # (N, G, O/G, *out)
        out = structural.reshape(out, (n, o, *out_spatial))
    else:
        patches = structural.reshape(patches, (batch_groups, n // batch_groups, c, k, *out_spatial))
        kernel = structural.reshape(kernel, (batch_groups, o // batch_groups, i, k))
        out = linalg.dot_general(patches, kernel, (((2, 3), (2, 3)), ((0,), (0,))))  # (B, N/B, *out, O/B)
        last = len(out_spatial) + 2
        out = structural.transpose(out, (1, 0, last) + tuple(d + 2 for d in out_dims))  # (N/B, B, O/B, *out)
        out = structural.reshape(out, (n // batch_groups, o, *out_spatial))
    inverse = tuple(int(a) for a in np.argsort(dnums.out_spec))
    if inverse != tuple(range(len(inverse))):
        out = structural.transpose(out, inverse)
    if preferred_element_type is not None:
        out = convert(out, np.dtype(preferred_element_type))
    return out


def _check_groups(name, n, c, o, i, groups, batch_groups):
    if groups < 1 or batch_groups < 1:
        raise ValueError(at_user_line(f"{name}: feature_group_count and batch_group_count must be positive"))
    if groups > 1 and batch_groups > 1:
        raise ValueError(at_user_line(f"{name}: at most one of feature_group_count ({groups}) and "
                                      f"batch_group_count ({batch_groups}) may exceed 1"))
    if c != i * groups:
        raise ValueError(at_user_line(f"{name}: lhs has {c} features, which must equal the rhs's input features "
                                      f"({i}) times feature_group_count ({groups})"))
    if o % (groups * batch_groups):
        raise ValueError(at_user_line(f"{name}: rhs's {o} output features must be a multiple of "
                                      f"feature_group_count * batch_group_count ({groups * batch_groups})"))
    if n % batch_groups:
        raise ValueError(at_user_line(f"{name}: lhs batch size {n} must be a multiple of batch_group_count "
                                      f"({batch_groups})"))


@api_boundary
def conv(lhs, rhs, window_strides, padding, precision=None, preferred_element_type=None):
    """conv_general_dilated with NC.../OI... layouts and no dilation."""
    return conv_general_dilated(lhs, rhs, window_strides, padding, precision=precision,
                                preferred_element_type=preferred_element_type)


@api_boundary
def conv_with_general_padding(lhs, rhs, window_strides, padding, lhs_dilation, rhs_dilation,
                              precision=None, preferred_element_type=None):
    return conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation, rhs_dilation,
                                precision=precision, preferred_element_type=preferred_element_type)

