"""jax.nn's activation and normalization functions, with JAX's formulas and derivative conventions.

Where JAX fixes a derivative by a custom rule (relu's 0 at 0, relu6's 0 at 0 and 6), the same
value comes out of a `where` on the strict comparison, whose untaken branch has no derivative.
softmax and log_softmax shift by the maximum behind stop_gradient, so large inputs neither
overflow nor give a derivative through the maximum.
"""
from __future__ import annotations

import numpy as np

import ftrans.numpy as fnp
from ftrans import lax
from ftrans.lax import logistic, stop_gradient
from ftrans.numpy._core import aval_of, normalize_axes, static_int
from ftrans.random._public import public_returning_arrays as public
from ir.errors import at_user_line
from ir.primitives import structural


def _inexact(name, x):
    """x as an array of a float dtype (integers and bools become float64, as NumPy's true division)."""
    x = fnp.asarray(x)
    return x if x.dtype.kind == "f" else x.astype(np.float64)


def _c(x, value):
    """`value` as a scalar of x's dtype: NEP 50 keeps a float32 x float32."""
    return x.dtype.type(value)


@public
def relu(x):
    """max(x, 0); its derivative is 0 at 0, as JAX's (and NaN stays NaN)."""
    x = fnp.asarray(x)
    return fnp.where((x > 0) | (x != x), x, _c(x, 0))


@public
def relu6(x):
    """min(max(x, 0), 6), with derivative 0 at 0 and at 6, as JAX's."""
    x = fnp.asarray(x)
    return fnp.where(x >= 6, _c(x, 6), relu(x))


@public
def sigmoid(x):
    """1 / (1 + exp(-x)), without overflow."""
    return logistic(x)


@public
def softplus(x):
    """log(1 + exp(x)) = logaddexp(x, 0), stable for large |x|."""
    x = _inexact("softplus", x)
    # max(x, 0) + log1p(exp(-|x|)), with each piece's derivative taken on one side of 0, so that
    # the derivative at 0 is sigmoid(0) = 1/2 (max's 1/2 at a tie and abs's +1 would make it 0)
    positive = x > 0
    return fnp.where(positive, x, _c(x, 0)) + fnp.log1p(fnp.exp(fnp.where(positive, -x, x)))


@public
def log_sigmoid(x):
    """log(sigmoid(x)) = -softplus(-x)."""
    x = _inexact("log_sigmoid", x)
    return -softplus(-x)


@public
def silu(x):
    """x * sigmoid(x) (also called swish)."""
    x = _inexact("silu", x)
    return x * sigmoid(x)


swish = silu


@public
def gelu(x, approximate=True):
    """The Gaussian error linear unit: x * Phi(x), or JAX's tanh approximation (the default)."""
    x = _inexact("gelu", x)
    if approximate:
        # tanh is +-1 far before 1e10; clipped there, x^3 cannot overflow, nor its derivative meet 0 * inf
        xc = fnp.clip(x, -1e10, 1e10)
        inner = _c(x, np.sqrt(2 / np.pi)) * (xc + _c(x, 0.044715) * (xc ** 3))
        return x * (_c(x, 0.5) * (_c(x, 1.0) + fnp.tanh(inner)))
    return _c(x, 0.5) * x * lax.erfc(-x * _c(x, np.sqrt(0.5)))


@public
def elu(x, alpha=1.0):
    """x for x > 0, alpha (exp(x) - 1) otherwise."""
    x = _inexact("elu", x)
    return fnp.where(x > 0, x, alpha * fnp.expm1(fnp.where(x > 0, _c(x, 0), x)))


@public
def celu(x, alpha=1.0):
    """max(x, 0) + alpha (exp(min(x, 0) / alpha) - 1)."""
    x = _inexact("celu", x)
    return fnp.maximum(x, _c(x, 0)) + alpha * fnp.expm1(fnp.minimum(x, _c(x, 0)) / alpha)


_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


@public
def selu(x):
    """scale * elu(x, alpha) with the self-normalizing constants."""
    x = _inexact("selu", x)
    return _c(x, _SELU_SCALE) * elu(x, _c(x, _SELU_ALPHA))


@public
def leaky_relu(x, negative_slope=1e-2):
    """x for x >= 0, negative_slope * x otherwise."""
    x = _inexact("leaky_relu", x)
    return fnp.where(x >= 0, x, negative_slope * x)


@public
def hard_tanh(x):
    """x clipped to [-1, 1] (derivative 0 outside)."""
    x = fnp.asarray(x)
    return fnp.where(x > 1, _c(x, 1), fnp.where(x < -1, _c(x, -1), x))


@public
def hard_sigmoid(x):
    """relu6(x + 3) / 6."""
    x = _inexact("hard_sigmoid", x)
    return relu6(x + 3.0) / 6.0


@public
def hard_silu(x):
    """x * hard_sigmoid(x) (also called hard_swish)."""
    x = _inexact("hard_silu", x)
    return x * hard_sigmoid(x)


hard_swish = hard_silu


@public
def soft_sign(x):
    """x / (|x| + 1)."""
    x = _inexact("soft_sign", x)
    return x / (fnp.abs(x) + 1)


@public
def squareplus(x, b=4):
    """(x + sqrt(x^2 + b)) / 2; for x < 0 as b / (2 (sqrt(x^2 + b) - x)), the same without the
    cancellation (squareplus(-800) lost 6 digits, squareplus(-1e300) was inf), sqrt(x^2 + b) as
    hypot(x, sqrt b), which does not overflow."""
    x = _inexact("squareplus", x)
    negative = x < 0
    below, above = fnp.where(negative, x, _c(x, 0)), fnp.where(negative, _c(x, 0), x)  # each branch's side
    root_b = fnp.sqrt(_c(x, b))
    return fnp.where(negative, _c(x, b) / (2 * (fnp.hypot(below, root_b) - below)),
                     (above + fnp.hypot(above, root_b)) / 2)


@public
def mish(x):
    """x * tanh(softplus(x))."""
    x = _inexact("mish", x)
    return x * fnp.tanh(softplus(x))


@public
def glu(x, axis=-1):
    """The gated linear unit: the first half of `axis` times the sigmoid of the second."""
    x = fnp.asarray(x)
    size = x.shape[axis]
    if size % 2:
        raise ValueError(at_user_line(f"glu: the size of axis {axis} must be even, got {size}"))
    first, second = fnp.split(x, 2, axis)
    return first * sigmoid(second)


def _max_behind_stop_gradient(x, axis):
    """The maximum over `axis` (kept), behind stop_gradient, with infinite ones replaced by 0:
    the shift that keeps exp from overflowing and leaves a row of -inf a row of -inf."""
    shift = stop_gradient(fnp.max(x, axis=axis, keepdims=True))
    return fnp.where(fnp.abs(shift) < np.inf, shift, _c(x, 0))


@public
def softmax(x, axis=-1, where=None):
    """exp(x) / sum(exp(x)) over `axis`, computed as JAX does (shifted by the maximum)."""
    x = _inexact("softmax", x)
    if where is not None:
        x = fnp.where(where, x, _c(x, -np.inf))
    unnormalized = fnp.exp(x - _max_behind_stop_gradient(x, axis))
    result = unnormalized / fnp.sum(unnormalized, axis=axis, keepdims=True)
    return result if where is None else fnp.where(where, result, _c(x, 0))


@public
def log_softmax(x, axis=-1, where=None):
    """x - logsumexp(x) over `axis`; -inf where `where` is False."""
    x = _inexact("log_softmax", x)
    if where is not None:
        x = fnp.where(where, x, _c(x, -np.inf))
    shifted = x - _max_behind_stop_gradient(x, axis)
    result = shifted - fnp.log(fnp.sum(fnp.exp(shifted), axis=axis, keepdims=True))
    return result if where is None else fnp.where(where, result, _c(x, -np.inf))


@public
def logsumexp(a, axis=None, b=None, keepdims=False, return_sign=False):
    """log(sum(b * exp(a))) over `axis`, stably (jax.nn.logsumexp, which is jax.scipy.special's)."""
    a = _inexact("logsumexp", a)
    if b is None and not return_sign:
        return fnp.logsumexp(a, axis=axis, keepdims=keepdims)
    shift = _max_behind_stop_gradient(a, axis)
    terms = fnp.exp(a - shift) if b is None else b * fnp.exp(a - shift)
    total = fnp.sum(terms, axis=axis, keepdims=True)
    sign = fnp.sign(total)
    out = fnp.log(fnp.abs(total)) + shift
    if not keepdims:
        axes = normalize_axes(axis, a.ndim)
        out, sign = structural.squeeze(out, axes), structural.squeeze(sign, axes)
    return (out, sign) if return_sign else fnp.where(sign < 0, _c(out, np.nan), out)


@public
def logmeanexp(x, axis=None, keepdims=False):
    """log(mean(exp(x))) over `axis`."""
    x = _inexact("logmeanexp", x)
    count = np.prod([x.shape[a] for a in normalize_axes(axis, x.ndim)])
    return logsumexp(x, axis=axis, keepdims=keepdims) - _c(x, np.log(count))


@public
def standardize(x, axis=-1, mean=None, variance=None, epsilon=1e-5, where=None):
    """(x - mean) / sqrt(variance + epsilon), the moments over `axis` unless given."""
    x = _inexact("standardize", x)
    if where is not None:
        raise NotImplementedError("standardize(where=...): ftrans.numpy's mean has no where= yet")
    if mean is None:
        mean = fnp.mean(x, axis=axis, keepdims=True)
    if variance is None:
        variance = fnp.mean(fnp.square(x - mean), axis=axis, keepdims=True)
    return (x - mean) / fnp.sqrt(variance + epsilon)


@public
def one_hot(x, num_classes, *, dtype=None, axis=-1):
    """1 where an index of x equals the class along a new `axis`, else 0; out-of-range indices give zeros."""
    num_classes = static_int(num_classes, "one_hot", "num_classes")
    x = fnp.asarray(x)
    ndim = aval_of(x).ndim
    if not -(ndim + 1) <= axis <= ndim:
        raise ValueError(at_user_line(f"one_hot: axis {axis} is out of range for a result of rank {ndim + 1}"))
    axis = axis % (ndim + 1)
    classes_shape = [1] * ndim
    classes_shape.insert(axis, num_classes)
    classes = structural.iota(x.dtype if x.dtype.kind in "iuf" else np.dtype(np.int64), tuple(classes_shape), axis)
    return (fnp.expand_dims(x, axis) == classes).astype(np.float64 if dtype is None else dtype)
