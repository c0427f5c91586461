"""ftrans.lax: operations below ftrans.numpy, named as in jax.lax."""
from __future__ import annotations

from ftrans._collectives import all_gather, all_to_all, axis_index, pmax, pmean, pmin, ppermute, psum, psum_scatter
from ftrans._control_flow import cond, fori_loop, map, scan, switch
from ftrans.numpy._core import aval_of, convert, inexact_dtype, operands, static_int
from ftrans.tree_util import tree_map
from ir.errors import api_boundary, at_user_line
from ir.primitives import bits, elementwise, special, structural
from ir.primitives.elementwise import stop_gradient as _stop_gradient_leaf

__all__ = ["cond", "fori_loop", "logistic", "map", "pad", "scan", "stop_gradient", "switch"]
__all__ += ["digamma", "erf", "erf_inv", "erfc", "lgamma", "polygamma"]
__all__ += ["shift_left", "shift_right_logical"]
__all__ += ["all_gather", "all_to_all", "axis_index", "pmax", "pmean", "pmin", "ppermute", "psum",
            "psum_scatter"]


@api_boundary
def logistic(x):
    """1 / (1 + exp(-x)), computed without overflow (JAX's lax.logistic)."""
    (x,), dtype, weak = operands("logistic", x)
    target = inexact_dtype(dtype, weak)
    return elementwise.logistic(convert(x, target, weak) if target != dtype else x)


@api_boundary
def pad(operand, padding_value, padding_config):
    """Pad with `padding_value`: one (low, high, interior) triple of non-negative ints per axis."""
    (operand,), dtype, _ = operands("pad", operand)
    ndim = aval_of(operand).ndim
    if not hasattr(padding_config, "__len__") or len(padding_config) != ndim \
            or not all(hasattr(c, "__len__") and len(c) == 3 for c in padding_config):
        raise TypeError(at_user_line(f"pad: padding_config must hold one (low, high, interior) triple per axis "
                                     f"of the rank-{ndim} operand, got {padding_config!r}"))
    config = [tuple(static_int(n, "pad", "each entry of padding_config", allow_bool=True) for n in c) for c in padding_config]
    return structural.pad(operand, convert(padding_value, dtype), config)


@api_boundary
def stop_gradient(x):
    """`x` itself, with a zero derivative: no transformation differentiates through it."""
    return tree_map(_stop_gradient_leaf, x)


# -------------------- special functions --------------------

def _float_unary(name, binder, x):
    """`binder` on x as a float (ints promote as in jax.lax's wrappers, a weak Python scalar stays weak)."""
    (x,), dtype, weak = operands(name, x)
    target = inexact_dtype(dtype, weak)
    return binder(convert(x, target, weak) if target != dtype else x)


@api_boundary
def erf(x):
    """The error function."""
    return _float_unary("erf", special.erf, x)


@api_boundary
def erfc(x):
    """1 - erf(x), accurate where it is small."""
    return _float_unary("erfc", special.erfc, x)


@api_boundary
def erf_inv(x):
    """The inverse of erf on [-1, 1] (±inf at ±1, nan outside)."""
    return _float_unary("erf_inv", special.erf_inv, x)


@api_boundary
def lgamma(x):
    """log |Gamma(x)|."""
    return _float_unary("lgamma", special.lgamma, x)


@api_boundary
def digamma(x):
    """The derivative of lgamma."""
    return _float_unary("digamma", special.digamma, x)


@api_boundary
def polygamma(m, x):
    """The m-th derivative of digamma; m a non-negative Python int (or a concrete integer scalar)."""
    m = static_int(m, "polygamma", "m")
    if m < 0:
        raise ValueError(at_user_line(f"polygamma: m must be non-negative, got {m}"))
    if m == 0:
        return digamma(x)
    if m > special.MAX_POLYGAMMA_ORDER:
        raise ValueError(at_user_line(f"polygamma: m={m} is above the largest order, {special.MAX_POLYGAMMA_ORDER}"))
    return _float_unary("polygamma", lambda v: special.polygamma(v, m), x)


def _shift(name, binder, x, y):
    (x, y), dtype, _ = operands(name, x, y)
    if dtype.kind not in "iu":
        raise TypeError(at_user_line(f"{name} needs integer operands, got {dtype.name}"))
    return binder(x, y)


@api_boundary
def shift_left(x, y):
    """x shifted left by y bits; 0 where y is negative or at least the bit width (as XLA)."""
    return _shift("shift_left", bits.shift_left, x, y)


@api_boundary
def shift_right_logical(x, y):
    """x shifted right by y bits, zeros shifted in (signed values too); 0 where y is out of range."""
    return _shift("shift_right_logical", bits.shift_right_logical, x, y)
