"""NumPy's API, traceable: every function works on NumPy arrays and on traced
values alike, with NumPy 2 semantics (broadcasting, NEP 50 promotion).

On concrete arrays outside any transformation, each call computes with NumPy
and returns a `numpy.ndarray`. Inside a transformation it is recorded.
"""
from numpy import dtype, e, inf, nan, newaxis, pi

from ftrans.numpy._scalar_types import (bool_, complex64, complex128, float16, float32, float64, int8,
                                        int16, int32, int64, uint8, uint16, uint32, uint64)

from ftrans.numpy._complex import (angle, conj, conjugate, imag, iscomplex, iscomplexobj, isreal, isrealobj,
                                   isscalar, real)
from ftrans.numpy._creation import (arange, array, asarray, astype, copy, empty, empty_like, eye, full,
                                    full_like, identity, linspace, ones, ones_like, zeros, zeros_like)
from ftrans.numpy._elementwise import (abs, absolute, add, arctan, bitwise_and, bitwise_not,
                                       bitwise_or, bitwise_xor, ceil, clip, cos, cosh, divide,
                                       equal, exp, expm1, floor, floor_divide, greater,
                                       greater_equal, invert, less, less_equal, log, log1p,
                                       logical_and, logical_not, logical_or, logical_xor, maximum,
                                       minimum, mod, multiply, negative, not_equal, power,
                                       reciprocal, remainder, sign, sin, sinh, sqrt, square,
                                       subtract, tan, tanh, true_divide, where)
from ftrans.numpy._indexing import at, take
from ftrans.numpy._linalg import dot, einsum, inner, matmul, outer, tensordot, vdot, vecdot
from ftrans.numpy import linalg
from ftrans.numpy._methods import install_tracer_methods
from ir.core import Array as ndarray  # jax.numpy.ndarray is jax.Array: isinstance holds for tracers too
from ftrans.numpy._reductions import (amax, amin, argmax, argmin, average, logsumexp, max, mean, min, prod, std,
                                      sum, var)
from ftrans.numpy._shape import (broadcast_arrays, broadcast_shapes, broadcast_to, concatenate, expand_dims,
                                 matrix_transpose, moveaxis, ndim, ravel, reshape, shape, size, split, squeeze,
                                 stack, swapaxes, transpose)

from ftrans.numpy import fft  # noqa: E402  (a submodule, as numpy.fft)
from ftrans.numpy._arrange import (append, apply_along_axis, apply_over_axes, array_split, atleast_1d,
                                   atleast_2d, atleast_3d, block, c_, column_stack, diag, diag_indices,
                                   diag_indices_from, diagflat, diagonal, diff, dsplit, dstack, ediff1d,
                                   fill_diagonal, flip, fliplr, flipud, fromfunction, hsplit, hstack, indices,
                                   ix_, kron, meshgrid, pad, r_, ravel_multi_index, repeat, resize, roll, rot90,
                                   row_stack, tile, trace, tri, tril, tril_indices, tril_indices_from, triu,
                                   triu_indices, triu_indices_from, unravel_index, vander, vsplit, vstack)
from ftrans.numpy._creation import geomspace, logspace
from ftrans.numpy._dtypes import can_cast, finfo, iinfo, issubdtype, promote_types, result_type
from ftrans.numpy._logical_reductions import (all, any, count_nonzero, nanargmax, nanargmin, nanmax, nanmean,
                                              nanmin, nanprod, nanstd, nansum, nanvar)
from ftrans.numpy._math import (allclose, arccos, arccosh, arcsin, arcsinh, arctan2, arctanh, around,
                                array_equal, array_equiv, cbrt, copysign, deg2rad, divmod, degrees, exp2, fabs, fix,
                                float_power, fmax, fmin, fmod, gcd, heaviside, hypot, isclose, isfinite, isinf,
                                isnan, isneginf, isposinf, lcm, log10, log2, logaddexp, logaddexp2, nan_to_num,
                                modf, positive, rad2deg, radians, rint, round, signbit, sinc, trunc)
from ftrans.numpy._signal import (bartlett, blackman, convolve, corrcoef, correlate, cov, cross, hamming,
                                  hanning, interp, piecewise, polyadd, polyder, polyint, polymul, polysub,
                                  polyval, select, trapezoid)
from ftrans.numpy._sorting import (argpartition, argsort, argwhere, bincount, cummax, cummin, cumprod, cumsum,
                                   cumulative_prod, cumulative_sum, digitize, flatnonzero, lexsort, median,
                                   nancumprod, nancumsum, nanmedian, nonzero, partition, percentile, quantile,
                                   searchsorted, sort, sort_complex, take_along_axis, unique, unwrap)
from numpy import (complexfloating, floating, generic, inexact, integer, number, signedinteger,  # noqa: E402
                   unsignedinteger)
from ftrans._unavailable import missing_name_hook as _missing_name_hook

# NumPy 2's (and the array API's) spellings of the same functions
acos, acosh, asin, asinh, atan, atan2, atanh = arccos, arccosh, arcsin, arcsinh, arctan, arctan2, arctanh
concat, permute_dims = concatenate, transpose

install_tracer_methods()
del install_tracer_methods

__all__ = [name for name in dir() if not name.startswith("_")]


__getattr__ = _missing_name_hook(__name__)  # a JAX name not ported yet says so
