"""Layers: Linear, MLP, Conv (Conv1d, Conv2d), LayerNorm, BatchNorm, Dropout, Embedding, Sequential.

Each is a Module (a pytree: arrays are leaves, sizes and flags static) built from an `ft.random`
key with Flax's defaults: kernels drawn with `lecun_normal` (a truncated normal of variance
1/fan_in), biases zero, normalization scales one. Layouts are Flax's: features last, any number
of leading batch dimensions (convolutions: channels last).
"""
from __future__ import annotations

import functools
import inspect
import math
from typing import NamedTuple

import numpy as np

import ftrans.numpy as fnp
import ftrans.random as random
from ftrans import lax
from ftrans.nn import initializers
from ftrans.nn._functions import relu
from ftrans.nn._module import Lambda, Module, _short, field, is_array
from ir.errors import at_user_line

__all__ = ["BatchNorm", "BatchNormState", "Conv", "Conv1d", "Conv2d", "Dropout", "Embedding", "LayerNorm", "Linear",
           "MLP", "Sequential"]


def _dtype(dtype):
    return np.dtype(np.float64 if dtype is None else dtype)


def _positive_int(value, layer, what):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(at_user_line(f"{layer}: {what} must be a positive int, got {value!r}"))
    return int(value)


def _ints(value, n, layer, what):
    """A tuple of n positive ints from an int or a sequence of n ints."""
    values = (value,) * n if isinstance(value, (int, np.integer)) else tuple(value)
    if len(values) != n:
        raise ValueError(at_user_line(f"{layer}: {what} must be an int or {n} ints, got {value!r}"))
    return tuple(_positive_int(v, layer, what) for v in values)


def _shape_of(x):
    return tuple(fnp.shape(x))


def _input(x, layer):
    if not (is_array(x) or isinstance(x, (int, float, list, tuple))):
        raise TypeError(at_user_line(f"{layer}: the input must be an array, got {type(x).__name__}"))
    return fnp.asarray(x)


# -------------------- Linear, MLP --------------------

class Linear(Module):
    """y = x @ weight + bias, over the last axis of x (any leading batch axes).

    `weight` has shape (in_features, out_features) (Flax's Dense kernel; Equinox stores the
    transpose) and is drawn with `lecun_normal()` (Flax's default: a truncated normal of
    variance 1/in_features); `bias`, of shape (out_features,), starts at zero (Flax's default).
    `use_bias=False` leaves it out (`bias` is then None)."""
    weight: object
    bias: object
    in_features: int
    out_features: int
    use_bias: bool

    def __init__(self, in_features, out_features, use_bias=True, *, key, dtype=None,
                 kernel_init=initializers.lecun_normal(), bias_init=initializers.zeros):
        self.in_features = _positive_int(in_features, "Linear", "in_features")
        self.out_features = _positive_int(out_features, "Linear", "out_features")
        self.use_bias = bool(use_bias)
        dtype = _dtype(dtype)
        weight_key, bias_key = random.split(key)
        self.weight = kernel_init(weight_key, (self.in_features, self.out_features), dtype)
        self.bias = bias_init(bias_key, (self.out_features,), dtype) if self.use_bias else None

    def __call__(self, x, *, key=None):
        x = _input(x, self.describe())
        shape = _shape_of(x)
        if not shape or shape[-1] != self.in_features:
            raise ValueError(at_user_line(f"{self.describe()}: the input's last axis must have {self.in_features} "
                                          f"features, got an input of shape {shape}"))
        y = x @ self.weight
        return y + self.bias if self.use_bias else y

    def describe(self):
        return f"Linear({self.in_features} -> {self.out_features}{'' if self.use_bias else ', no bias'})"


def identity(x):
    return x


class MLP(Module):
    """`depth` hidden Linear layers of `width_size` with `activation` after each, then a Linear to
    `out_size` followed by `final_activation` (Equinox's MLP; `depth=0` is one Linear). Each
    Linear is initialized as Flax's Dense (lecun_normal kernel, zero bias)."""
    layers: tuple
    in_size: int
    out_size: int
    width_size: int
    depth: int
    activation: object = field(static=True)
    final_activation: object = field(static=True)

    def __init__(self, in_size, out_size, width_size, depth, activation=relu, final_activation=identity,
                 use_bias=True, *, key, dtype=None):
        self.in_size = _positive_int(in_size, "MLP", "in_size")
        self.out_size = _positive_int(out_size, "MLP", "out_size")
        self.width_size = _positive_int(width_size, "MLP", "width_size")
        if isinstance(depth, bool) or not isinstance(depth, (int, np.integer)) or depth < 0:
            raise ValueError(at_user_line(f"MLP: depth must be a non-negative int, got {depth!r}"))
        self.depth = int(depth)
        if not callable(activation) or not callable(final_activation):
            raise TypeError(at_user_line("MLP: activation and final_activation must be functions"))
        self.activation, self.final_activation = activation, final_activation
        sizes = [self.in_size] + [self.width_size] * self.depth + [self.out_size]
        keys = random.split(key, len(sizes) - 1)
        self.layers = tuple(Linear(m, n, use_bias, key=k, dtype=dtype)
                            for k, m, n in zip(keys, sizes[:-1], sizes[1:], strict=True))

    def __call__(self, x, *, key=None):
        for layer in self.layers[:-1]:
            x = self.activation(layer(x))
        return self.final_activation(self.layers[-1](x))

    def describe(self):
        return (f"MLP({self.in_size} -> {self.out_size}, width {self.width_size}, depth {self.depth}, "
                f"{_short(self.activation)})")


# -------------------- convolutions --------------------

def _padding(padding, n, layer):
    """'SAME', 'VALID', or n (low, high) pairs, from a string, an int, n ints or n pairs."""
    if isinstance(padding, str):
        if padding.upper() not in ("SAME", "VALID"):
            raise ValueError(at_user_line(f"{layer}: padding must be 'SAME', 'VALID', an int, {n} ints or {n} "
                                          f"(low, high) pairs, got {padding!r}"))
        return padding.upper()
    if isinstance(padding, (int, np.integer)):
        padding = (padding,) * n
    padding = tuple(padding)
    if len(padding) != n:
        raise ValueError(at_user_line(f"{layer}: padding needs one entry per spatial dimension ({n}), "
                                      f"got {padding!r}"))
    pairs = tuple((p, p) if isinstance(p, (int, np.integer)) else tuple(p) for p in padding)
    if any(len(p) != 2 or not all(isinstance(v, (int, np.integer)) for v in p) for p in pairs):
        raise ValueError(at_user_line(f"{layer}: padding entries must be ints or (low, high) pairs of ints, "
                                      f"got {padding!r}"))
    return tuple((int(lo), int(hi)) for lo, hi in pairs)


class Conv(Module):
    """An N-d convolution (cross-correlation, through `lax.conv_general_dilated`) with Flax's
    layout: the input is (*batch, *spatial, in_channels), channels last, with any number of
    leading batch axes (none: one example); the output is (*batch, *spatial', out_channels).

    `weight` has shape (*kernel_size, in_channels // groups, out_channels) (Flax's kernel, layout
    "HWIO") and is drawn with `lecun_normal()` (Flax's default: fan_in = in_channels // groups
    times the kernel's size); `bias`, of shape (out_channels,), starts at zero. `padding` is
    "SAME" (Flax's default), "VALID", an int or per-dimension ints or (low, high) pairs;
    `stride`, `dilation` (of the kernel) are ints or one per dimension; `groups` splits the
    channels as `feature_group_count` does."""
    weight: object
    bias: object
    num_spatial_dims: int
    in_channels: int
    out_channels: int
    kernel_size: tuple
    stride: tuple
    padding: object
    dilation: tuple
    groups: int
    use_bias: bool

    def __init__(self, num_spatial_dims, in_channels, out_channels, kernel_size, stride=1, padding="SAME",
                 dilation=1, groups=1, use_bias=True, *, key, dtype=None,
                 kernel_init=initializers.lecun_normal(), bias_init=initializers.zeros):
        name = self._name(num_spatial_dims)
        self.num_spatial_dims = n = _positive_int(num_spatial_dims, name, "num_spatial_dims")
        self.in_channels = _positive_int(in_channels, name, "in_channels")
        self.out_channels = _positive_int(out_channels, name, "out_channels")
        self.kernel_size = _ints(kernel_size, n, name, "kernel_size")
        self.stride = _ints(stride, n, name, "stride")
        self.dilation = _ints(dilation, n, name, "dilation")
        self.padding = _padding(padding, n, name)
        self.groups = _positive_int(groups, name, "groups")
        if self.in_channels % self.groups or self.out_channels % self.groups:
            raise ValueError(at_user_line(f"{name}: in_channels ({self.in_channels}) and out_channels "
                                          f"({self.out_channels}) must be multiples of groups ({self.groups})"))
        self.use_bias = bool(use_bias)
        dtype = _dtype(dtype)
        weight_key, bias_key = random.split(key)
        self.weight = kernel_init(weight_key, self.kernel_size + (self.in_channels // self.groups,
                                                                  self.out_channels), dtype)
        self.bias = bias_init(bias_key, (self.out_channels,), dtype) if self.use_bias else None

    @staticmethod
    def _name(n):
        return f"Conv{n}d" if n in (1, 2, 3) else "Conv"

    def __call__(self, x, *, key=None):
        name = self.describe()
        x = _input(x, name)
        shape, n = _shape_of(x), self.num_spatial_dims
        if len(shape) < n + 1 or shape[-1] != self.in_channels:
            raise ValueError(at_user_line(
                f"{name}: the input must be (*batch, {n} spatial dims, {self.in_channels} channels), channels "
                f"last, got shape {shape}"))
        batch, rest = shape[:len(shape) - n - 1], shape[len(shape) - n - 1:]
        x = fnp.reshape(x, (math.prod(batch),) + rest)
        # logical (N, C, *spatial) / (O, I, *window) positions of the channels-last layouts
        lhs_spec = (0, n + 1) + tuple(range(1, n + 1))
        rhs_spec = (n + 1, n) + tuple(range(n))
        y = lax.conv_general_dilated(x, self.weight, self.stride, self.padding, rhs_dilation=self.dilation,
                                     dimension_numbers=(lhs_spec, rhs_spec, lhs_spec),
                                     feature_group_count=self.groups)
        if self.use_bias:
            y = y + self.bias
        return fnp.reshape(y, batch + _shape_of(y)[1:])

    def describe(self):
        extras = [f"kernel {'x'.join(map(str, self.kernel_size))}"]
        if any(s != 1 for s in self.stride):
            extras.append(f"stride {self.stride}")
        extras.append(f"padding {self.padding}")
        if any(d != 1 for d in self.dilation):
            extras.append(f"dilation {self.dilation}")
        if self.groups != 1:
            extras.append(f"groups {self.groups}")
        if not self.use_bias:
            extras.append("no bias")
        return f"{self._name(self.num_spatial_dims)}({self.in_channels} -> {self.out_channels}, {', '.join(extras)})"


class Conv1d(Conv):
    """Conv with one spatial dimension: input (*batch, length, in_channels)."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding="SAME", dilation=1, groups=1,
                 use_bias=True, *, key, dtype=None, kernel_init=initializers.lecun_normal(),
                 bias_init=initializers.zeros):
        super().__init__(1, in_channels, out_channels, kernel_size, stride, padding, dilation, groups, use_bias,
                         key=key, dtype=dtype, kernel_init=kernel_init, bias_init=bias_init)


class Conv2d(Conv):
    """Conv with two spatial dimensions: input (*batch, height, width, in_channels)."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding="SAME", dilation=1, groups=1,
                 use_bias=True, *, key, dtype=None, kernel_init=initializers.lecun_normal(),
                 bias_init=initializers.zeros):
        super().__init__(2, in_channels, out_channels, kernel_size, stride, padding, dilation, groups, use_bias,
                         key=key, dtype=dtype, kernel_init=kernel_init, bias_init=bias_init)


# -------------------- normalization --------------------

def _normalized_shape(shape, layer):
    shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
    return tuple(_positive_int(s, layer, "shape") for s in shape)


class LayerNorm(Module):
    """y = (x - mean) / sqrt(var + epsilon) * weight + bias, with the mean and (biased) variance
    over the last len(shape) axes of x, which must be `shape` (an int: the last axis).

    `weight` starts at one and `bias` at zero, and epsilon is 1e-6 (Flax's defaults);
    `use_weight=False` / `use_bias=False` leave them out."""
    weight: object
    bias: object
    shape: tuple
    epsilon: float
    use_weight: bool
    use_bias: bool

    def __init__(self, shape, epsilon=1e-6, use_weight=True, use_bias=True, *, dtype=None):
        self.shape = _normalized_shape(shape, "LayerNorm")
        self.epsilon = float(epsilon)
        self.use_weight, self.use_bias = bool(use_weight), bool(use_bias)
        dtype = _dtype(dtype)
        self.weight = fnp.ones(self.shape, dtype) if self.use_weight else None
        self.bias = fnp.zeros(self.shape, dtype) if self.use_bias else None

    def __call__(self, x, *, key=None):
        x = _input(x, self.describe())
        shape, k = _shape_of(x), len(self.shape)
        if shape[len(shape) - k:] != self.shape or len(shape) < k:
            raise ValueError(at_user_line(f"{self.describe()}: the input's last {k} axes must be {self.shape}, "
                                          f"got an input of shape {shape}"))
        axes = tuple(range(len(shape) - k, len(shape)))
        mean = fnp.mean(x, axis=axes, keepdims=True)
        centred = x - mean
        var = fnp.mean(centred * centred, axis=axes, keepdims=True)
        y = centred * lax.rsqrt(var + self.epsilon)
        if self.use_weight:
            y = y * self.weight
        return y + self.bias if self.use_bias else y

    def describe(self):
        return f"LayerNorm({self.shape}, epsilon={self.epsilon:g})"


class BatchNormState(NamedTuple):
    """BatchNorm's running statistics (a pytree, passed in and returned explicitly)."""
    mean: object
    var: object


class BatchNorm(Module):
    """Batch normalization over every axis of x but the last (the features, Flax's layout):

        state = bn.initial_state()                 # mean 0, var 1
        y, state = bn(x, state)                    # training: the batch's statistics, state updated
        y, _ = bn(x, state, inference=True)        # the running statistics, state unchanged

    y = (x - mean) / sqrt(var + epsilon) * weight + bias, the variance biased (divided by the
    number of values); the running statistics move as
    running = momentum * running + (1 - momentum) * batch. Defaults are Flax's: momentum 0.99,
    epsilon 1e-5, weight one, bias zero. The batch statistics come from the batch in x itself,
    so call the layer on a batch (not per example under `vmap`)."""
    weight: object
    bias: object
    num_features: int
    momentum: float
    epsilon: float
    inference: bool

    def __init__(self, num_features, momentum=0.99, epsilon=1e-5, inference=False, *, dtype=None):
        self.num_features = _positive_int(num_features, "BatchNorm", "num_features")
        if not 0.0 <= float(momentum) <= 1.0:
            raise ValueError(at_user_line(f"BatchNorm: momentum must be in [0, 1], got {momentum!r}"))
        self.momentum, self.epsilon, self.inference = float(momentum), float(epsilon), bool(inference)
        dtype = _dtype(dtype)
        self.weight = fnp.ones((self.num_features,), dtype)
        self.bias = fnp.zeros((self.num_features,), dtype)

    def initial_state(self):
        """Running mean zero and running variance one (Flax's)."""
        dtype = fnp.asarray(self.weight).dtype
        return BatchNormState(fnp.zeros((self.num_features,), dtype), fnp.ones((self.num_features,), dtype))

    def __call__(self, x, state=None, *, inference=None, key=None):
        name = self.describe()
        if not isinstance(state, BatchNormState):
            raise TypeError(at_user_line(f"{name}: pass its state, `y, state = bn(x, state)` with "
                                         f"`state = bn.initial_state()` to start (got {type(state).__name__}); a "
                                         f"Sequential cannot hold a BatchNorm, call it yourself"))
        x = _input(x, name)
        shape = _shape_of(x)
        if len(shape) < 2 or shape[-1] != self.num_features:
            raise ValueError(at_user_line(f"{name}: the input must be (batch..., {self.num_features} features) "
                                          f"with at least one batch axis, got shape {shape}"))
        inference = self.inference if inference is None else inference
        if inference:
            mean, var = state.mean, state.var
        else:
            axes = tuple(range(len(shape) - 1))
            mean = fnp.mean(x, axis=axes)
            var = fnp.mean((x - mean) * (x - mean), axis=axes)
            state = BatchNormState(self.momentum * state.mean + (1 - self.momentum) * mean,
                                   self.momentum * state.var + (1 - self.momentum) * var)
        y = (x - mean) * (lax.rsqrt(var + self.epsilon) * self.weight) + self.bias
        return y, state

    def describe(self):
        return f"BatchNorm({self.num_features}, momentum={self.momentum:g}, epsilon={self.epsilon:g})"


# -------------------- Dropout, Embedding --------------------

class Dropout(Module):
    """Zeros each value with probability `rate` and scales the rest by 1 / (1 - rate), with the
    randomness of `key` (an ft.random key: the same key drops the same values); with
    `inference=True` (a field, or the call's keyword) the input passes through unchanged and
    no key is needed. `ft.nn.inference_mode(model)` sets the field in a whole model."""
    rate: float
    inference: bool

    def __init__(self, rate=0.5, inference=False):
        rate = float(rate)
        if not 0.0 <= rate <= 1.0:
            raise ValueError(at_user_line(f"Dropout: rate must be in [0, 1], got {rate!r}"))
        self.rate, self.inference = rate, bool(inference)

    def __call__(self, x, *, key=None, inference=None):
        inference = self.inference if inference is None else inference
        if inference or self.rate == 0.0:
            return x
        if key is None:
            raise ValueError(at_user_line(f"{self.describe()}: training needs a key (`dropout(x, key=key)`), or "
                                          f"pass inference=True"))
        x = _input(x, self.describe())
        if self.rate == 1.0:
            return fnp.zeros_like(x)
        keep = random.bernoulli(key, 1.0 - self.rate, _shape_of(x))
        return fnp.where(keep, x / (1.0 - self.rate), fnp.zeros_like(x))

    def describe(self):
        return f"Dropout({self.rate:g}{', inference' if self.inference else ''})"


class Embedding(Module):
    """weight[ids]: one learned vector of `features` numbers per id in range(num_embeddings).

    `weight` has shape (num_embeddings, features) and is drawn as Flax's Embed draws it
    (`variance_scaling(1.0, "fan_in", "normal", out_axis=0)`: a normal of variance 1/features).
    Concrete out-of-range ids raise IndexError; traced ones clamp (as ftrans's indexing)."""
    weight: object
    num_embeddings: int
    features: int

    def __init__(self, num_embeddings, features, *, key, dtype=None,
                 embedding_init=initializers.variance_scaling(1.0, "fan_in", "normal", out_axis=0)):
        self.num_embeddings = _positive_int(num_embeddings, "Embedding", "num_embeddings")
        self.features = _positive_int(features, "Embedding", "features")
        self.weight = embedding_init(key, (self.num_embeddings, self.features), _dtype(dtype))

    def __call__(self, ids, *, key=None):
        ids = _input(ids, self.describe())
        if np.dtype(ids.dtype).kind not in "iu":
            raise TypeError(at_user_line(f"{self.describe()}: ids must be integers, got an array of "
                                         f"{np.dtype(ids.dtype).name}"))
        return fnp.take(self.weight, ids, axis=0)  # NB: not weight[ids], which NumPy would do for a NumPy weight

    def describe(self):
        return f"Embedding({self.num_embeddings}, {self.features})"


# -------------------- Sequential --------------------

@functools.lru_cache(maxsize=None)
def _takes_key(layer_type):
    """Whether a layer class's __call__ has a `key` parameter (or **kwargs)."""
    try:
        parameters = inspect.signature(layer_type.__call__).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == "key" or p.kind is p.VAR_KEYWORD for p in parameters)


class Sequential(Module):
    """Layers applied in order: `Sequential([Linear(...), relu, Linear(...)])(x)`. A plain function
    among them is wrapped in a `Lambda`. With `key=`, each layer whose call takes a `key` gets
    its own split of it (Dropout needs one); the others, and all without `key=`, are called
    as layer(x)."""
    layers: tuple

    def __init__(self, layers):
        layers = tuple(layers)
        for i, layer in enumerate(layers):
            if isinstance(layer, BatchNorm):
                raise TypeError(at_user_line(f"Sequential: layer {i} is a BatchNorm, whose state is passed "
                                             f"explicitly: call it yourself"))
            if not callable(layer):
                raise TypeError(at_user_line(f"Sequential: layer {i} ({layer!r}) is not callable"))
        self.layers = tuple(layer if isinstance(layer, Module) else Lambda(layer) for layer in layers)

    def __call__(self, x, *, key=None):
        if key is None:
            for layer in self.layers:
                x = layer(x)
            return x
        for layer, k in zip(self.layers, random.split(key, len(self.layers)), strict=True):
            x = layer(x, key=k) if _takes_key(type(layer)) else layer(x)
        return x

    def __getitem__(self, i):
        return Sequential(self.layers[i]) if isinstance(i, slice) else self.layers[i]

    def __len__(self):
        return len(self.layers)

    def __iter__(self):
        return iter(self.layers)

    def describe(self):
        return f"Sequential({len(self.layers)} layers)"
