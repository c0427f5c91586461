"""`check_grads`: derivatives checked against central finite differences, as JAX's.

Forward mode: the jvp along a random direction against the finite difference
along it. Reverse mode: the vjp of a random cotangent against that jvp by the
adjoint identity <u, J v> = <J^T u, v>. Higher orders check the jvp/vjp
functions themselves, recursively.

Complex arguments get complex directions (so the real and the imaginary
directions are both checked); the adjoint identity is JAX's for its transposes,
which pair c and t as Re(c t): Re<conj u, J v> = Re<v, conj(J^T conj u)>, with
<a, b> = sum(conj(a) b).

Arguments may be CuPy arrays: the random directions are drawn on the host and
put where the arguments are, and results are compared on the host.
"""
from __future__ import annotations

import numpy as np

from ftrans._api_util import check_callable
from ftrans._autodiff import jvp, vjp
from ftrans.tree_util import tree_flatten, tree_map
from ir.core import array_module, concrete_aval, is_cupy_array, real_dtype
from ir.errors import api_boundary, at_user_line
from ir.primitive import as_array

_DEFAULT_EPS = {np.dtype(np.float16): 1e-1, np.dtype(np.float32): 1e-3, np.dtype(np.float64): 1e-5}
_DEFAULT_TOL = {np.dtype(np.float16): 1e-1, np.dtype(np.float32): 2e-2, np.dtype(np.float64): 1e-5}


def _host(x, dtype=None):
    """`x` as a NumPy array (a CuPy array is copied from the GPU)."""
    return np.asarray(x.get() if is_cupy_array(x) else x, dtype)


def _float_leaves(tree):
    return [_host(x) for x in tree_flatten(tree)[0]]


def _widest_float(leaves):
    floats = [real_dtype(x.dtype) for x in leaves if x.dtype.kind in "fc"]
    return max(floats, key=lambda d: d.itemsize) if floats else np.dtype(np.float64)


def _random_like(tree, rng):
    def draw(x):
        aval = concrete_aval(x)
        if aval.dtype.kind not in "fc":
            return np.zeros(aval.shape, dtype=[("float0", np.void, 0)])
        direction = rng.standard_normal(aval.shape)
        if aval.dtype.kind == "c":
            direction = direction + 1j * rng.standard_normal(aval.shape)
        direction = direction.astype(aval.dtype)
        xp = array_module(x)
        return direction if xp is np else xp.asarray(direction)
    return tree_map(draw, tree)


# check_grads's own arithmetic (perturbing, differencing, inner products) is IEEE-silent
# as the rest of ftrans is; only the function checked runs in the caller's error state
def _silently():
    return np.errstate(all="ignore")


def _inner(xs, ys):
    """Re sum(conj(x) y) over the float and complex leaves."""
    with _silently():
        return sum(float(np.real(np.sum(np.conj(np.asarray(x, np.complex128)) * np.asarray(y, np.complex128))))
                   for x, y in zip(_float_leaves(xs), _float_leaves(ys), strict=True)
                   if np.asarray(x).dtype.kind in "fc")


def _conj(tree):
    return tree_map(lambda x: x.conj() if concrete_aval(x).dtype.kind == "c" else x, tree)


def _wide(x):
    """On the host in float64, or complex128 for complex values."""
    x = _host(x)
    return np.asarray(x, np.complex128 if x.dtype.kind == "c" else np.float64)


def _add_scaled(args, direction, scale):
    """The perturbed arguments, as ftrans hands out arrays (with `.at`, for the function to use)."""
    with _silently():
        return tree_map(lambda x, d: as_array(x + scale * d) if concrete_aval(x).dtype.kind in "fc" else x,
                        args, direction)


def _numerical_jvp(f, args, direction, eps):
    plus, minus = f(*_add_scaled(args, direction, eps)), f(*_add_scaled(args, direction, -eps))
    with _silently():
        return tree_map(lambda p, m: (_wide(p) - _wide(m)) / (2 * eps), plus, minus)


def _assert_close(actual, expected, atol, rtol, what):
    for a, e in zip(_float_leaves(actual), _float_leaves(expected), strict=True):
        if a.dtype.kind not in "fc":
            continue
        with _silently():
            np.testing.assert_allclose(_wide(a), e, atol=atol, rtol=rtol, err_msg=what)


def check_jvp(f, args, *, atol, rtol, eps, rng, what=""):
    direction = _random_like(args, rng)
    _, tangent = jvp(f, args, direction)
    _assert_close(tangent, _numerical_jvp(f, args, direction, eps), atol, rtol,
                  f"{what}jvp does not match central finite differences")


def check_vjp(f, args, *, atol, rtol, eps, rng, what=""):
    direction = _random_like(args, rng)
    out, vjp_fn = vjp(f, *args)
    cotangent = _random_like(out, rng)
    numerical = _numerical_jvp(f, args, direction, eps)
    pulled_back = _conj(vjp_fn(_conj(cotangent)))
    lhs, rhs = _inner(numerical, cotangent), _inner(direction, pulled_back)
    np.testing.assert_allclose(rhs, lhs, atol=atol, rtol=rtol,
                               err_msg=f"{what}vjp does not satisfy <u, J v> = <J^T u, v> "
                                       "against finite differences")


@api_boundary
def check_grads(f, args, order, modes=("fwd", "rev"), atol=None, rtol=None, eps=None):
    """Check the derivatives of `f` at `args` to `order`, in forward ("fwd") and/or
    reverse ("rev") mode, against central finite differences. Raises AssertionError."""
    check_callable(f, "check_grads")
    args, modes = _checked_arguments(args, order, modes)
    _check_tolerance("atol", atol, zero_allowed=True)
    _check_tolerance("rtol", rtol, zero_allowed=True)
    _check_tolerance("eps", eps, zero_allowed=False)  # the finite difference divides by it
    dtype = _widest_float(_float_leaves(args))
    eps = _DEFAULT_EPS.get(dtype, 1e-5) if eps is None else eps
    atol = _DEFAULT_TOL.get(dtype, 1e-5) if atol is None else atol
    rtol = _DEFAULT_TOL.get(dtype, 1e-5) if rtol is None else rtol
    rng = np.random.default_rng(0)
    tolerances = dict(atol=atol, rtol=rtol, eps=eps, rng=rng)

    pending = [(f, args, order, "")]
    while pending:
        fun, fun_args, remaining, what = pending.pop()
        if "fwd" in modes:
            check_jvp(fun, fun_args, what=what, **tolerances)
            if remaining > 1:
                pending.append((_jvp_of(fun), (fun_args, fun_args), remaining - 1, what + "jvp of "))
        if "rev" in modes:
            check_vjp(fun, fun_args, what=what, **tolerances)
            if remaining > 1:
                pending.append((_vjp_of(fun), fun_args, remaining - 1, what + "vjp of "))


def _checked_arguments(args, order, modes):
    """(args, modes) as tuples; a TypeError or ValueError naming whichever is wrong."""
    if not isinstance(args, (tuple, list)):
        raise TypeError(at_user_line(f"check_grads: args must be a tuple or list of arguments, got a "
                                     f"{type(args).__name__} (write (x,) for one argument)"))
    if not isinstance(order, (int, np.integer)) or isinstance(order, (bool, np.bool_)):
        raise TypeError(at_user_line(f"check_grads: order must be a positive int, got {order!r} "
                                     f"(a {type(order).__name__})"))
    if order < 1:
        raise ValueError(at_user_line(f"check_grads: order must be a positive int (1 checks first "
                                      f"derivatives), got {order}"))
    modes = (modes,) if isinstance(modes, str) else tuple(modes)
    unknown = [m for m in modes if m not in ("fwd", "rev")]
    if unknown or not modes:
        raise ValueError(at_user_line(f"check_grads: modes must name 'fwd' and/or 'rev', got {modes!r}"))
    return tuple(args), modes


def _check_tolerance(name, value, zero_allowed):
    if value is None:
        return
    least = "a non-negative" if zero_allowed else "a positive"
    if not isinstance(value, (int, float, np.integer, np.floating)) or isinstance(value, (bool, np.bool_)):
        raise TypeError(at_user_line(f"check_grads: {name} must be None or {least} number, got {value!r} "
                                     f"(a {type(value).__name__})"))
    if not (value > 0 or (zero_allowed and value == 0)):
        raise ValueError(at_user_line(f"check_grads: {name} must be None or {least} number, got {value!r}"))


def _jvp_of(fun):
    def fun_jvp(primals, tangents):
        return jvp(fun, primals, tangents)
    return fun_jvp


def _vjp_of(fun):
    def fun_vjp(*args):
        out, vjp_fn = vjp(fun, *args)
        return vjp_fn(out)
    return fun_vjp


