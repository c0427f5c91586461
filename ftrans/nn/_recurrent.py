"""Recurrent cells with Flax's call convention, `cell(carry, x) -> (carry, y)`, which is the body
`lax.scan` takes as it is:

    cell = ft.nn.GRUCell(3, 16, key=key)
    carry, ys = ft.lax.scan(cell, cell.initialize_carry(), xs)   # xs: (time, 3)
"""
from __future__ import annotations

import ftrans.numpy as fnp
import ftrans.random as random
from ftrans.nn import initializers
from ftrans.nn._functions import sigmoid
from ftrans.nn._layers import _dtype, _input, _positive_int, _shape_of
from ftrans.nn._module import Module
from ir.errors import at_user_line

__all__ = ["GRUCell", "LSTMCell"]


def _check(cell, x, hs):
    """x (..., input_size) and each carry part h (..., hidden_size) with one batch shape."""
    name = cell.describe()
    x = _input(x, name)
    shape = _shape_of(x)
    if not shape or shape[-1] != cell.input_size:
        raise ValueError(at_user_line(f"{name}: the input's last axis must have {cell.input_size} features, "
                                      f"got an input of shape {shape}"))
    for h in hs:
        h_shape = _shape_of(h)
        if not h_shape or h_shape[-1] != cell.hidden_size or h_shape[:-1] != shape[:-1]:
            raise ValueError(at_user_line(
                f"{name}: the carry must be (*batch, {cell.hidden_size}) with the input's batch shape "
                f"{shape[:-1]}, got {h_shape} (cell.initialize_carry(batch_shape) makes one)"))
    return x



def _gate_kernels(init, key, rows, hidden_size, gates, dtype):
    """[W_1 ... W_gates] side by side, each gate's (rows, hidden_size) block drawn on its own
    key, as Flax's separate Dense layers are."""
    return fnp.concatenate([init(k, (rows, hidden_size), dtype) for k in random.split(key, gates)], axis=1)


class GRUCell(Module):
    """A gated recurrent unit, Flax's equations (biases where Flax has them):

        r = sigmoid(x W_ir + b_ir + h W_hr)
        z = sigmoid(x W_iz + b_iz + h W_hz)
        n = tanh(x W_in + b_in + r * (h W_hn + b_hn))
        h' = (1 - z) * n + z * h            ->  (carry h', output h')

    `input_weight` is [W_ir W_iz W_in] (input_size, 3 hidden_size), `hidden_weight` is
    [W_hr W_hz W_hn] (hidden_size, 3 hidden_size), `input_bias` [b_ir b_iz b_in] and
    `hidden_bias` b_hn. Kernels are drawn with `lecun_normal()` and biases start at zero
    (Flax's defaults, but for the recurrent kernel, which Flax draws with `orthogonal()`:
    pass `recurrent_kernel_init=ft.nn.initializers.orthogonal()` for Flax's)."""
    input_weight: object
    hidden_weight: object
    input_bias: object
    hidden_bias: object
    input_size: int
    hidden_size: int

    def __init__(self, input_size, hidden_size, *, key, dtype=None, kernel_init=initializers.lecun_normal(),
                 recurrent_kernel_init=initializers.lecun_normal(), bias_init=initializers.zeros):
        self.input_size = _positive_int(input_size, "GRUCell", "input_size")
        self.hidden_size = h = _positive_int(hidden_size, "GRUCell", "hidden_size")
        dtype = _dtype(dtype)
        k_input, k_hidden, k_bias = random.split(key, 3)
        self.input_weight = _gate_kernels(kernel_init, k_input, self.input_size, h, 3, dtype)
        self.hidden_weight = _gate_kernels(recurrent_kernel_init, k_hidden, h, h, 3, dtype)
        k_input_bias, k_hidden_bias = random.split(k_bias)
        self.input_bias = bias_init(k_input_bias, (3 * h,), dtype)
        self.hidden_bias = bias_init(k_hidden_bias, (h,), dtype)

    def initialize_carry(self, batch_shape=()):
        """Zeros of shape (*batch_shape, hidden_size) (Flax's initial carry)."""
        return fnp.zeros(tuple(batch_shape) + (self.hidden_size,), fnp.asarray(self.input_weight).dtype)

    def __call__(self, carry, x):
        x = _check(self, x, [carry])
        h = self.hidden_size
        xs = x @ self.input_weight + self.input_bias
        hs = carry @ self.hidden_weight
        r = sigmoid(xs[..., :h] + hs[..., :h])
        z = sigmoid(xs[..., h:2 * h] + hs[..., h:2 * h])
        n = fnp.tanh(xs[..., 2 * h:] + r * (hs[..., 2 * h:] + self.hidden_bias))
        new = (1 - z) * n + z * carry
        return new, new

    def describe(self):
        return f"GRUCell({self.input_size} -> {self.hidden_size})"


class LSTMCell(Module):
    """A long short-term memory cell, Flax's equations; the carry is (c, h):

        i = sigmoid(x W_ii + h W_hi + b_i)      f = sigmoid(x W_if + h W_hf + b_f)
        g = tanh(x W_ig + h W_hg + b_g)         o = sigmoid(x W_io + h W_ho + b_o)
        c' = f * c + i * g,   h' = o * tanh(c')  ->  (carry (c', h'), output h')

    `input_weight` is [W_ii W_if W_ig W_io] (input_size, 4 hidden_size), `hidden_weight`
    [W_hi W_hf W_hg W_ho] (hidden_size, 4 hidden_size), `bias` [b_i b_f b_g b_o]. Kernels are
    drawn with `lecun_normal()` and the bias starts at zero (Flax's defaults, the forget gate's
    included; Flax draws the recurrent kernel with `orthogonal()`: pass
    `recurrent_kernel_init=ft.nn.initializers.orthogonal()` for Flax's)."""
    input_weight: object
    hidden_weight: object
    bias: object
    input_size: int
    hidden_size: int

    def __init__(self, input_size, hidden_size, *, key, dtype=None, kernel_init=initializers.lecun_normal(),
                 recurrent_kernel_init=initializers.lecun_normal(), bias_init=initializers.zeros):
        self.input_size = _positive_int(input_size, "LSTMCell", "input_size")
        self.hidden_size = h = _positive_int(hidden_size, "LSTMCell", "hidden_size")
        dtype = _dtype(dtype)
        k_input, k_hidden, k_bias = random.split(key, 3)
        self.input_weight = _gate_kernels(kernel_init, k_input, self.input_size, h, 4, dtype)
        self.hidden_weight = _gate_kernels(recurrent_kernel_init, k_hidden, h, h, 4, dtype)
        self.bias = bias_init(k_bias, (4 * h,), dtype)

    def initialize_carry(self, batch_shape=()):
        """(c, h), zeros of shape (*batch_shape, hidden_size) each (Flax's initial carry)."""
        zeros = fnp.zeros(tuple(batch_shape) + (self.hidden_size,), fnp.asarray(self.input_weight).dtype)
        return zeros, zeros

    def __call__(self, carry, x):
        if not (isinstance(carry, (tuple, list)) and len(carry) == 2):
            raise TypeError(at_user_line(f"{self.describe()}: the carry must be a pair (c, h), got "
                                         f"{type(carry).__name__} (cell.initialize_carry() makes one)"))
        c, h_prev = carry
        x = _check(self, x, [c, h_prev])
        h = self.hidden_size
        gates = x @ self.input_weight + h_prev @ self.hidden_weight + self.bias
        i, f = sigmoid(gates[..., :h]), sigmoid(gates[..., h:2 * h])
        g, o = fnp.tanh(gates[..., 2 * h:3 * h]), sigmoid(gates[..., 3 * h:])
        new_c = f * c + i * g
        new_h = o * fnp.tanh(new_c)
        return (new_c, new_h), new_h

    def describe(self):
        return f"LSTMCell({self.input_size} -> {self.hidden_size})"

