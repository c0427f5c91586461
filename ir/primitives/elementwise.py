"""Elementwise primitives: unary, binary, comparisons, select, dtype conversion.

Operands have one shape and one dtype; a rank-0 operand (a scalar constant,
printed as a literal) may stand beside arrays of any shape. The output is
weakly typed only when every operand is.
"""
from __future__ import annotations

import numpy as np

from ir.core import ShapedArray, short_dtype_name
from ir.primitive import Primitive
from ir.tracing import bind

FLOAT = "f"
NUMBER = "fiu"
INTEGER_OR_BOOL = "biu"
ANY = "fiub"


def _check_dtype(name, aval, kinds):
    if aval.dtype.kind not in kinds:
        wanted = {FLOAT: "floating-point", NUMBER: "numeric (non-bool)",
                  INTEGER_OR_BOOL: "integer or bool", ANY: "numeric or bool"}[kinds]
        raise TypeError(f"{name} needs {wanted} operands, got {aval.str_short()}")


def elementwise_shape(name, *avals):
    """The common shape of elementwise operands (rank-0 operands stand aside)."""
    shapes = {a.shape for a in avals if a.shape != ()}
    if len(shapes) > 1:
        listed = ", ".join(a.str_short() for a in avals)
        raise TypeError(f"{name} needs operands of one shape, got {listed}")
    return shapes.pop() if shapes else ()


def _same_dtype(name, avals):
    if len({a.dtype for a in avals}) > 1:
        listed = ", ".join(a.str_short() for a in avals)
        raise TypeError(f"{name} needs operands of one dtype, got {listed}")
    return avals[0].dtype


def unary(name, impl, kinds=FLOAT, **rules):
    def abstract_eval(x):
        _check_dtype(name, x, kinds)
        return x
    return Primitive(name, abstract_eval=abstract_eval, impl=impl, elementwise=True, **rules)


def binary(name, impl, kinds=NUMBER, out_dtype=None, commutative=False, **rules):
    def abstract_eval(x, y):
        shape = elementwise_shape(name, x, y)
        dtype = _same_dtype(name, [x, y])
        _check_dtype(name, x, kinds)
        return ShapedArray(shape, out_dtype or dtype, x.weak_type and y.weak_type and out_dtype is None)
    return Primitive(name, abstract_eval=abstract_eval, impl=impl, elementwise=True,
                     commutative=commutative, **rules)


def _logistic_impl(x):
    # exp of -|x| never overflows; the two branches are the same function
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)


def _sign_impl(x):
    return np.sign(x)


# -------------------- unary --------------------

neg_p = unary("neg", np.negative, NUMBER)
sign_p = unary("sign", _sign_impl, NUMBER)
abs_p = unary("abs", np.abs, NUMBER)
floor_p = unary("floor", np.floor)
ceil_p = unary("ceil", np.ceil)
sin_p = unary("sin", np.sin)
cos_p = unary("cos", np.cos)
tan_p = unary("tan", np.tan)
atan_p = unary("atan", np.arctan)
sinh_p = unary("sinh", np.sinh)
cosh_p = unary("cosh", np.cosh)
tanh_p = unary("tanh", np.tanh)
exp_p = unary("exp", np.exp)
log_p = unary("log", np.log)
log1p_p = unary("log1p", np.log1p)
expm1_p = unary("expm1", np.expm1)
sqrt_p = unary("sqrt", np.sqrt)
logistic_p = unary("logistic", _logistic_impl)
not_p = unary("not", np.invert, INTEGER_OR_BOOL)


def _integer_pow_abstract_eval(x, *, y):
    _check_dtype("integer_pow", x, NUMBER)
    if not isinstance(y, int):
        raise TypeError(f"integer_pow needs an int exponent, got {y!r}")
    if y < 0 and x.dtype.kind != "f":
        raise TypeError(f"integer_pow: integers to negative powers ({x.str_short()} ** {y}) are not allowed")
    return x


def _integer_pow_impl(x, *, y):
    return np.power(x, x.dtype.type(y)) if hasattr(x, "dtype") else x ** y


integer_pow_p = Primitive("integer_pow", abstract_eval=_integer_pow_abstract_eval,
                          impl=_integer_pow_impl, elementwise=True)

# -------------------- binary --------------------

add_p = binary("add", np.add, commutative=True)
sub_p = binary("sub", np.subtract)
mul_p = binary("mul", np.multiply, commutative=True)
div_p = binary("div", np.true_divide, FLOAT)
floor_divide_p = binary("floor_divide", np.floor_divide)  # NB: NumPy's `//`, not JAX's truncating div
mod_p = binary("mod", np.mod)  # NB: NumPy's `%` (sign of the divisor), not JAX's C-style rem
pow_p = binary("pow", np.power)
max_p = binary("max", np.maximum, ANY, commutative=True)  # NaN-propagating, like NumPy's maximum
min_p = binary("min", np.minimum, ANY, commutative=True)
and_p = binary("and", np.bitwise_and, INTEGER_OR_BOOL, commutative=True)
or_p = binary("or", np.bitwise_or, INTEGER_OR_BOOL, commutative=True)
xor_p = binary("xor", np.bitwise_xor, INTEGER_OR_BOOL, commutative=True)

_BOOL = np.dtype(np.bool_)
eq_p = binary("eq", np.equal, ANY, out_dtype=_BOOL, commutative=True)
ne_p = binary("ne", np.not_equal, ANY, out_dtype=_BOOL, commutative=True)
lt_p = binary("lt", np.less, ANY, out_dtype=_BOOL)
le_p = binary("le", np.less_equal, ANY, out_dtype=_BOOL)
gt_p = binary("gt", np.greater, ANY, out_dtype=_BOOL)
ge_p = binary("ge", np.greater_equal, ANY, out_dtype=_BOOL)

# -------------------- select and conversion --------------------


def _select_n_abstract_eval(which, *cases):
    if which.dtype != _BOOL:
        raise TypeError(f"select_n needs a bool predicate, got {which.str_short()}")
    if len(cases) != 2:
        raise TypeError(f"select_n takes two cases, got {len(cases)}")
    shape = elementwise_shape("select_n", which, *cases)
    dtype = _same_dtype("select_n", list(cases))
    return ShapedArray(shape, dtype, all(c.weak_type for c in cases))


def _select_n_impl(which, on_false, on_true):
    return np.where(which, on_true, on_false)


# NB: as JAX's select_n: case 0 where the predicate is False, case 1 where it is True
select_n_p = Primitive("select_n", abstract_eval=_select_n_abstract_eval, impl=_select_n_impl,
                       elementwise=True)


def _convert_abstract_eval(x, *, new_dtype, weak_type=False):
    short_dtype_name(new_dtype)  # rejects unsupported dtypes
    return ShapedArray(x.shape, new_dtype, weak_type)


def _convert_impl(x, *, new_dtype, weak_type=False):
    return np.asarray(x).astype(new_dtype)


convert_element_type_p = Primitive("convert_element_type", abstract_eval=_convert_abstract_eval,
                                   impl=_convert_impl, elementwise=True)

# -------------------- binders (what rules and ftrans.numpy call) --------------------


def _binder(prim):
    def apply(*args, **params):
        return bind(prim, *args, **params)
    apply.__name__ = prim.name
    return apply


neg, sign, abs, floor, ceil = map(_binder, (neg_p, sign_p, abs_p, floor_p, ceil_p))
sin, cos, tan, atan, sinh, cosh, tanh = map(_binder, (sin_p, cos_p, tan_p, atan_p, sinh_p, cosh_p, tanh_p))
exp, log, log1p, expm1, sqrt, logistic = map(_binder, (exp_p, log_p, log1p_p, expm1_p, sqrt_p, logistic_p))
bitwise_not = _binder(not_p)
add, sub, mul, div, pow = map(_binder, (add_p, sub_p, mul_p, div_p, pow_p))
floor_divide, mod, max, min = map(_binder, (floor_divide_p, mod_p, max_p, min_p))
bitwise_and, bitwise_or, bitwise_xor = map(_binder, (and_p, or_p, xor_p))
eq, ne, lt, le, gt, ge = map(_binder, (eq_p, ne_p, lt_p, le_p, gt_p, ge_p))


def integer_pow(x, y):
    return bind(integer_pow_p, x, y=y)


def select_n(which, *cases):
    return bind(select_n_p, which, *cases)


def convert_element_type(x, new_dtype, weak_type=False):
    return bind(convert_element_type_p, x, new_dtype=np.dtype(new_dtype), weak_type=weak_type)
