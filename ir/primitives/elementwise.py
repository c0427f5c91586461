"""Elementwise primitives: unary, binary, comparisons, select, dtype conversion.

Operands have one shape and one dtype; a rank-0 operand (a scalar constant,
printed as a literal) may stand beside arrays of any shape. The output is
weakly typed only when every operand is.
"""
from __future__ import annotations

import builtins
import functools
import math

import numpy as np

from ir.core import (HOST_TYPES, ShapedArray, check_supported_dtype, common_arrays, complex_dtype, is_cupy_array,
                     real_dtype)
from ir.markers import Zero, tangent_aval
from ir.primitive import BOOL, INT, PRIMITIVES, DType, Primitive
from ir.primitives.ad_util import (is_undefined, jvp_from_derivatives, linear_jvp, scalar_like, unbroadcast,
                                   zero_jvp)
from ir.primitives.batch_util import elementwise_batcher
from ir.primitives.taylor_util import (bilinear_taylor, derivative_orders_needed, faa_di_bruno, horner, is_zero, leibniz,
                                       polynomial_derivatives, powers_of, scaled, taylor_from_derivative,
                                       taylor_from_jvp, total,
                                       unary_taylor, zero_taylor)
from ir.tracing import bind, get_aval

FLOAT = "f"
INEXACT = "fc"       # float or complex: NumPy's sin, exp, sqrt, true division
NUMBER = "fiu"       # real numbers: what NumPy orders arithmetically (sign, floor_divide, mod)
NUMERIC = "fiuc"
INTEGER_OR_BOOL = "biu"
INTEGER = "iu"
ANY = "fiubc"
COMPLEX = "c"
# A c_template dict's key for float16 operands, beside its str keys of kinds: the C kernels
# compute halves in float and round each equation's value to half (interpreters/lowering_c.py);
# where NumPy's float16 result rounds inside the expression too, the template for halves says so
# with HALF_ROUNDED
FLOAT16 = np.dtype(np.float16)
HALF_ROUNDED = "(float)(_Float16)({})"


def _check_dtype(name, aval, kinds):
    check_supported_dtype(name, aval.dtype)  # complex256 is of kind "c" too
    if aval.dtype.kind not in kinds:
        wanted = {FLOAT: "real floating-point", INEXACT: "floating-point or complex", NUMBER: "real numeric",
                  NUMERIC: "numeric (non-bool)", COMPLEX: "complex", INTEGER: "integer",
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


def unary(name, impl, kinds=INEXACT, derivative=None, abstract_eval=None, **rules):
    """An elementwise unary primitive (it takes no params). `derivative(t, out, x)`
    is the tangent of the output along the input tangent t. The output has the
    operand's type unless `abstract_eval` says otherwise."""
    def same_type(x):
        _check_dtype(name, x, kinds)
        return x
    abstract_eval = abstract_eval or same_type
    prim = Primitive(name, params={}, abstract_eval=abstract_eval, impl=impl, elementwise=True, **rules)
    if derivative is not None and "jvp" not in rules:
        prim.define(jvp=jvp_from_derivatives(prim, derivative))
    if "batch" not in rules:
        prim.define(batch=elementwise_batcher(prim))
    return prim


def binary(name, impl, kinds=NUMBER, out_dtype=None, commutative=False, derivatives=None, abstract_eval=None,
           **rules):
    """An elementwise binary primitive (it takes no params); `derivatives` holds one function per operand."""
    def same_type(x, y):
        shape = elementwise_shape(name, x, y)
        dtype = _same_dtype(name, [x, y])
        _check_dtype(name, x, kinds)
        return ShapedArray(shape, out_dtype or dtype, x.weak_type and y.weak_type and out_dtype is None)
    abstract_eval = abstract_eval or same_type
    prim = Primitive(name, params={}, abstract_eval=abstract_eval, impl=impl, elementwise=True,
                     commutative=commutative, **rules)
    if derivatives is not None and "jvp" not in rules:
        prim.define(jvp=jvp_from_derivatives(prim, *derivatives))
    if out_dtype is not None:  # comparisons: bool results have no tangent
        prim.define(jvp=zero_jvp(prim))
    if "batch" not in rules:
        prim.define(batch=elementwise_batcher(prim))
    return prim


_PYTHON_SCALARS = frozenset({bool, int, float, complex})


def array_if_python_scalar(x):
    """A Python scalar operand as a 0-d array, for implementations that read its dtype or
    shape or index it (NumPy scalars and arrays have all of those); anything else as it is.
    One type look-up: implementations run on every eager bind."""
    return np.asarray(x) if type(x) in _PYTHON_SCALARS else x


def _logistic_impl(x):
    x = array_if_python_scalar(x)  # its dtype sets the result's
    # exp of -|x| never overflows; the two branches are the same function
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)


def _c(x, value):
    return scalar_like(x, value)


# -------------------- unary --------------------


def _abs_abstract_eval(x):
    _check_dtype("abs", x, NUMERIC)
    return x.update(dtype=real_dtype(x.dtype)) if x.dtype.kind == "c" else x


def _abs_derivative(t, out, x):
    if get_aval(x).dtype.kind != "c":  # NB: as JAX, d|x|/dx is +1 at 0
        return select_n(ge(x, _c(x, 0)), neg(t), t)
    # d|z| = Re(conj(z) dz) / |z|, taken as 0 at z = 0 (JAX's choice: |z| replaced by 1 there)
    magnitude = convert_element_type(out, get_aval(x).dtype)
    safe = select_n(eq(magnitude, _c(magnitude, 0)), magnitude, _c(magnitude, 1))
    return real(mul(t, div(conj(x), safe)))

neg_p = unary("neg", np.negative, NUMERIC, derivative=lambda t, out, x: neg(t), cuda_template="-{0}",
              c_template="-{0}", transpose=lambda ct, x: [neg(ct) if type(ct) is not Zero else ct])
# NB: NumPy gives sign(-0.0) = 0.0 and sign(nan) = nan
_SIGN = "{0} > 0 ? 1 : ({0} < 0 ? -1 : ({0} == 0 ? 0 : {0}))"
sign_p = unary("sign", np.sign, NUMBER, cuda_template=_SIGN, c_template=_SIGN)
sign_p.define(jvp=zero_jvp(sign_p))
# NB: as JAX, d|x|/dx is +1 at 0
abs_p = unary("abs", np.abs, NUMERIC, derivative=_abs_derivative, abstract_eval=_abs_abstract_eval,
              cuda_template={"f": "fabs({0})", "iu": "{0} < 0 ? -{0} : {0}", "c": "abs({0})"},
              c_template={"f": "fabs{f}({0})", "iu": "{0} < 0 ? -{0} : {0}"})
floor_p = unary("floor", np.floor, FLOAT, cuda_template="floor({0})", c_template="floor{f}({0})")
floor_p.define(jvp=zero_jvp(floor_p))
ceil_p = unary("ceil", np.ceil, FLOAT, cuda_template="ceil({0})", c_template="ceil{f}({0})")
ceil_p.define(jvp=zero_jvp(ceil_p))
sin_p = unary("sin", np.sin, derivative=lambda t, out, x: mul(t, cos(x)), cuda_template="sin({0})",
               c_template="sin{f}({0})")
cos_p = unary("cos", np.cos, derivative=lambda t, out, x: neg(mul(t, sin(x))), cuda_template="cos({0})",
               c_template="cos{f}({0})")
# Squares in derivatives are mul(y, y), not integer_pow(y, 2): nested, mul's JVP gives two
# products that CSE merges, where integer_pow's scales by a literal 2 that keeps equal
# values apart (the 8th grad of tanh optimizes to 79 equations, not 101).
tan_p = unary("tan", np.tan, derivative=lambda t, out, x: mul(t, add(_c(x, 1), mul(out, out))),
              cuda_template="tan({0})",
               c_template="tan{f}({0})")
atan_p = unary("atan", np.arctan, derivative=lambda t, out, x: div(t, add(_c(x, 1), mul(x, x))),
               cuda_template="atan({0})",
               c_template="atan{f}({0})")
sinh_p = unary("sinh", np.sinh, derivative=lambda t, out, x: mul(t, cosh(x)), cuda_template="sinh({0})",
               c_template="sinh{f}({0})")
cosh_p = unary("cosh", np.cosh, derivative=lambda t, out, x: mul(t, sinh(x)), cuda_template="cosh({0})",
               c_template="cosh{f}({0})")
tanh_p = unary("tanh", np.tanh, derivative=lambda t, out, x: mul(t, sub(_c(x, 1), mul(out, out))),
               cuda_template="tanh({0})",
               c_template="tanh{f}({0})")
exp_p = unary("exp", np.exp, derivative=lambda t, out, x: mul(t, out), cuda_template="exp({0})",
               c_template="exp{f}({0})")
log_p = unary("log", np.log, derivative=lambda t, out, x: div(t, x), cuda_template="log({0})",
               c_template="log{f}({0})")
log1p_p = unary("log1p", np.log1p, derivative=lambda t, out, x: div(t, add(_c(x, 1), x)),
                cuda_template="log1p({0})",
               c_template="log1p{f}({0})")
expm1_p = unary("expm1", np.expm1, derivative=lambda t, out, x: mul(t, add(out, _c(x, 1))),
                cuda_template="expm1({0})",
               c_template="expm1{f}({0})")
sqrt_p = unary("sqrt", np.sqrt, derivative=lambda t, out, x: div(t, mul(_c(x, 2), out)),
               cuda_template="sqrt({0})",
               c_template="sqrt{f}({0})")
def _logistic_float16_template():
    """_logistic_impl on halves: exp of -|x| and 1 + e each rounded to half, as NumPy's ops."""
    e = {branch: HALF_ROUNDED.format(f"expf({branch}{{0}})") for branch in ("-", "")}
    one_plus = {branch: HALF_ROUNDED.format(f"1 + {e[branch]}") for branch in e}
    return f"{{0}} >= 0 ? 1 / {one_plus['-']} : {e['']} / {one_plus['']}"


logistic_p = unary("logistic", _logistic_impl, FLOAT,
                   derivative=lambda t, out, x: mul(t, mul(out, sub(_c(x, 1), out))),
                   # the two branches of _logistic_impl: exp never overflows
                   cuda_template="{0} >= 0 ? 1 / (1 + exp(-{0})) : exp({0}) / (1 + exp({0}))",
                   c_template={FLOAT16: _logistic_float16_template(),
                               "f": "{0} >= 0 ? 1 / (1 + exp{f}(-{0})) : exp{f}({0}) / (1 + exp{f}({0}))"})
not_p = unary("not", np.invert, INTEGER_OR_BOOL, cuda_template={"b": "!{0}", "iu": "~{0}"},
              c_template={"b": "!{0}", "iu": "~{0}"})
not_p.define(jvp=zero_jvp(not_p))


def _stop_gradient_jvp(primals, tangents):
    (x,), _ = primals, tangents
    # bound again on the primal, so that enclosing differentiations stop here too
    out = stop_gradient(x)
    return out, Zero(get_aval(out))


# the identity, with a zero derivative: what `ft.lax.stop_gradient` binds
stop_gradient_p = unary("stop_gradient", lambda x: x, ANY, jvp=_stop_gradient_jvp, cuda_template="{0}",
                      c_template="{0}")


def _integer_pow_abstract_eval(x, *, y):
    _check_dtype("integer_pow", x, NUMERIC)
    if y < 0 and x.dtype.kind not in "fc":
        raise TypeError(f"integer_pow: integers to negative powers ({x.str_short()} ** {y}) are not allowed")
    if x.dtype.kind in "iu" and y > np.iinfo(x.dtype).max:  # as NumPy: the exponent is a value of x's dtype
        raise TypeError(f"integer_pow: the exponent {y} is out of range for {x.str_short()}")
    return x


def _integer_pow_impl(x, *, y):
    if type(x) in HOST_TYPES or not is_cupy_array(x):  # np.asarray raises on CuPy arrays
        x = np.asarray(x)  # a Python scalar too: results are arrays (or NumPy scalars), never Python numbers
    return np.power(x, x.dtype.type(y))


def _integer_pow_derivative(t, out, x, *, y):
    if y == 0:  # x**0 is 1 everywhere (0, inf and nan included): 0 * x**-1 would be nan at 0
        return Zero(get_aval(t))
    if y == 1:
        return t
    power_below = x if y == 2 else integer_pow(x, y - 1)
    return mul(t, mul(_c(x, y), power_below))


integer_pow_p = Primitive("integer_pow", params={"y": INT}, abstract_eval=_integer_pow_abstract_eval,
                          impl=_integer_pow_impl, elementwise=True)
integer_pow_p.define(jvp=jvp_from_derivatives(integer_pow_p, _integer_pow_derivative),
                     batch=elementwise_batcher(integer_pow_p))


def _integer_pow_cuda_template(*, y, product=lambda a, b: f"({a} * {b})"):
    """x**y as the multiplications of ir/passes/integer_pow.py, in its order
    (square and multiply; a negative y the reciprocal), as one expression."""
    if y == 0:
        return "1"
    acc, power, k = None, "{0}", abs(y)
    while k > 0:
        if k & 1:
            acc = power if acc is None else product(acc, power)
        k >>= 1
        if k > 0:
            power = product(power, power)
    return acc if y > 0 else f"{{out_type}}(1) / {acc}"  # typed: std::complex has no int / complex


def _integer_pow_c_template(*, y):
    """The CUDA template's multiplications; C casts where C++ constructs. On halves each
    product is rounded to half, as the multiplications jit computes (ir/passes/integer_pow.py)."""
    template = _integer_pow_cuda_template(y=y).replace("{out_type}(1)", "({out_type})1")
    halves = _integer_pow_cuda_template(y=y, product=lambda a, b: HALF_ROUNDED.format(f"{a} * {b}"))
    return {FLOAT16: halves.replace("{out_type}(1)", "({out_type})1"), "fiu": template}


integer_pow_p.define(cuda_template=_integer_pow_cuda_template, c_template=_integer_pow_c_template)

# -------------------- binary --------------------


def _add_transpose(ct, x, y):
    return [unbroadcast(ct, x.aval) if is_undefined(x) else None,
            unbroadcast(ct, y.aval) if is_undefined(y) else None]


def _sub_transpose(ct, x, y):
    return [unbroadcast(ct, x.aval) if is_undefined(x) else None,
            unbroadcast(neg(ct), y.aval) if is_undefined(y) and type(ct) is not Zero else None]


def _mul_transpose(ct, x, y):
    if is_undefined(x) and is_undefined(y):
        raise ValueError("mul is linear in one operand at a time, not both")
    if type(ct) is Zero:
        return [None, None]
    if is_undefined(x):
        return [unbroadcast(mul(ct, y), x.aval), None]
    return [None, unbroadcast(mul(x, ct), y.aval)]


def _div_transpose(ct, x, y):
    if is_undefined(y):
        raise ValueError("div is linear in its numerator only")
    return [None if type(ct) is Zero else unbroadcast(div(ct, y), x.aval), None]


def _shaped_like(t, out):
    """A derivative that is the operand's tangent itself, as a tangent of `out`: a
    rank-0 operand's tangent beside arrays is broadcast to the output's shape."""
    shape = get_aval(out).shape
    if get_aval(t).shape == shape:
        return t
    return bind(PRIMITIVES["broadcast_in_dim"], t, shape=shape, broadcast_dimensions=())


def _balanced_weight(x, out, other):
    """1 where x alone is the max/min, 0.5 on a tie, 0 elsewhere (JAX's convention)."""
    return select_n(eq(x, out), _c(x, 0), select_n(eq(other, out), _c(x, 1), _c(x, 0.5)))


def _pow_base_derivative(t, out, x, y):
    # NB: y * x**(y-1) is 0 where y == 0, for every x (x**0 is 1 even at 0, inf and nan;
    # y * x**(y-1) would be 0 * inf or 0 * nan there). As JAX's for integer exponents.
    at_zero = eq(y, _c(y, 0))
    exponent = select_n(at_zero, sub(y, _c(y, 1)), _c(y, 1))
    return mul(t, select_n(at_zero, mul(y, pow(x, exponent)), _c(y, 0)))


def _pow_exponent_derivative(t, out, x, y):
    # log(x) * x**y, with log(0) replaced by 0 so that 0**y does not give NaN
    safe_x = select_n(eq(x, _c(x, 0)), x, _c(x, 1))
    return mul(t, mul(log(safe_x), out))


add_p = binary("add", np.add, NUMERIC, commutative=True, transpose=_add_transpose, cuda_template="{0} + {1}", c_template="{0} + {1}",
               derivatives=(lambda t, out, x, y: _shaped_like(t, out), lambda t, out, x, y: _shaped_like(t, out)))
sub_p = binary("sub", np.subtract, NUMERIC, transpose=_sub_transpose, cuda_template="{0} - {1}", c_template="{0} - {1}",
               derivatives=(lambda t, out, x, y: _shaped_like(t, out), lambda t, out, x, y: neg(_shaped_like(t, out))))
mul_p = binary("mul", np.multiply, NUMERIC, commutative=True, transpose=_mul_transpose, linear_in=(0, 1),
               cuda_template="{0} * {1}", c_template="{0} * {1}",
               derivatives=(lambda t, out, x, y: mul(t, y), lambda t, out, x, y: mul(x, t)))
div_p = binary("div", np.true_divide, INEXACT, transpose=_div_transpose, linear_in=(0,), cuda_template="{0} / {1}",
               c_template="{0} / {1}",
               derivatives=(lambda t, out, x, y: div(t, y), lambda t, out, x, y: neg(mul(t, div(out, y)))))
# NB: NumPy's `//`, not JAX's truncating div; ft_floor_divide (interpreters/lowering_cupy.py) is NumPy's
floor_divide_p = binary("floor_divide", np.floor_divide, cuda_template="ft_floor_divide({0}, {1})",
                        c_template="ft_floor_divide_{t}({0}, {1})")
floor_divide_p.define(jvp=zero_jvp(floor_divide_p))
# NB: NumPy's `%` (sign of the divisor), not JAX's C-style rem; x % y = x - floor(x / y) * y
mod_p = binary("mod", np.mod, cuda_template="ft_mod({0}, {1})", c_template="ft_mod_{t}({0}, {1})",
               derivatives=(lambda t, out, x, y: _shaped_like(t, out),
                                           lambda t, out, x, y: neg(mul(t, floor_divide(x, y)))))
# NB: integers to negative powers raise in NumPy; a kernel cannot raise, so it truncates 1/x**-y as C does
pow_p = binary("pow", np.power, NUMERIC, derivatives=(_pow_base_derivative, _pow_exponent_derivative),
               cuda_template={"fc": "pow({0}, {1})", "iu": "ft_integer_pow({0}, {1})"},
               c_template={"f": "pow{f}({0}, {1})", "iu": "ft_integer_pow_{t}({0}, {1})"})
def _lexicographic(op):
    """A comparison of complex<T> values as NumPy's: by real part, then by imaginary
    part, where a NaN imaginary part makes the real parts' order count for nothing
    (complex<T> itself has no ordering)."""
    strict = op.rstrip("=")
    real_x, imag_x, real_y, imag_y = "({0}).real()", "({0}).imag()", "({1}).real()", "({1}).imag()"
    return (f"(({real_x} {strict} {real_y} && {imag_x} == {imag_x} && {imag_y} == {imag_y}) || "
            f"({real_x} == {real_y} && {imag_x} {op} {imag_y}))")


def _extremum_template(op):
    """max (op ">") or min ("<"), NaN-propagating as np.maximum/np.minimum; complex values
    ordered as NumPy's, which keeps the first operand on ties (np.maximum(0j, -0j) is 0j)."""
    return {"fiub": f"({{0}} {op} {{1}} || {{0}} != {{0}}) ? {{0}} : {{1}}",
            "c": f"({_lexicographic(op + '=')} || {{0}} != {{0}}) ? {{0}} : {{1}}"}


def _real_only(template):
    """A CUDA template without its complex case: the C kernels leave complex values to NumPy."""
    return {kinds: text for kinds, text in template.items() if kinds != "c"}


def _extremum_c_template(op):
    """The real cases, and float16's: NumPy's float16 maximum (minimum) keeps the first
    operand on ties (npy_half_ge), its float32 and float64 ones the second."""
    return {FLOAT16: f"({{0}} {op}= {{1}} || {{0}} != {{0}}) ? {{0}} : {{1}}", **_real_only(_extremum_template(op))}


# NaN-propagating, like NumPy's maximum (which returns the second operand on ties: max(0.0, -0.0) = -0.0)
max_p = binary("max", np.maximum, ANY, commutative=True, cuda_template=_extremum_template(">"),
               c_template=_extremum_c_template(">"),
               derivatives=(lambda t, out, x, y: mul(t, _balanced_weight(x, out, y)),
                            lambda t, out, x, y: mul(t, _balanced_weight(y, out, x))))
min_p = binary("min", np.minimum, ANY, commutative=True, cuda_template=_extremum_template("<"),
               c_template=_extremum_c_template("<"),
               derivatives=(lambda t, out, x, y: mul(t, _balanced_weight(x, out, y)),
                            lambda t, out, x, y: mul(t, _balanced_weight(y, out, x))))


def _atan2_derivatives():
    """atan2(a, b) is the angle of the point (b, a): d = (b da - a db) / (a^2 + b^2)
    (NaN at the origin, as JAX's)."""
    def radius2(a, b):
        return add(mul(a, a), mul(b, b))
    return (lambda t, out, a, b: mul(t, div(b, radius2(a, b))),
            lambda t, out, a, b: neg(mul(t, div(a, radius2(a, b)))))


atan2_p = binary("atan2", np.arctan2, FLOAT, derivatives=_atan2_derivatives(), cuda_template="atan2({0}, {1})",
                 c_template="atan2{f}({0}, {1})")
and_p = binary("and", np.bitwise_and, INTEGER_OR_BOOL, commutative=True, cuda_template="{0} & {1}",
               c_template="{0} & {1}")
or_p = binary("or", np.bitwise_or, INTEGER_OR_BOOL, commutative=True, cuda_template="{0} | {1}",
               c_template="{0} | {1}")
xor_p = binary("xor", np.bitwise_xor, INTEGER_OR_BOOL, commutative=True, cuda_template="{0} ^ {1}",
               c_template="{0} ^ {1}")
for _prim in (and_p, or_p, xor_p):
    _prim.define(jvp=zero_jvp(_prim))

_BOOL = np.dtype(np.bool_)
eq_p = binary("eq", np.equal, ANY, out_dtype=_BOOL, commutative=True, cuda_template="{0} == {1}",
              c_template="{0} == {1}")
ne_p = binary("ne", np.not_equal, ANY, out_dtype=_BOOL, commutative=True, cuda_template="{0} != {1}",
              c_template="{0} != {1}")
lt_p = binary("lt", np.less, ANY, out_dtype=_BOOL, cuda_template={"fiub": "{0} < {1}", "c": _lexicographic("<")},
              c_template="{0} < {1}")
le_p = binary("le", np.less_equal, ANY, out_dtype=_BOOL,
              cuda_template={"fiub": "{0} <= {1}", "c": _lexicographic("<=")},
              c_template="{0} <= {1}")
gt_p = binary("gt", np.greater, ANY, out_dtype=_BOOL, cuda_template={"fiub": "{0} > {1}", "c": _lexicographic(">")},
              c_template="{0} > {1}")
ge_p = binary("ge", np.greater_equal, ANY, out_dtype=_BOOL,
              cuda_template={"fiub": "{0} >= {1}", "c": _lexicographic(">=")},
              c_template="{0} >= {1}")

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
    # a mask a rule made (from iota, say) is NumPy's even where the cases are CuPy's
    xp, (which, on_false, on_true) = common_arrays(which, on_false, on_true)
    return xp.where(which, on_true, on_false)


def _select_n_jvp(primals, tangents):
    which, on_false, on_true = primals
    out = select_n(which, on_false, on_true)
    _, t_false, t_true = tangents
    if type(t_false) is Zero and type(t_true) is Zero:
        return out, Zero(get_aval(out))
    zero = _c(out, 0)
    tangent = select_n(which, zero if type(t_false) is Zero else t_false, zero if type(t_true) is Zero else t_true)
    return out, _shaped_like(tangent, out)  # rank-0 where an array case has no tangent


def _select_n_transpose(ct, which, on_false, on_true):
    if is_undefined(which):
        raise ValueError("select_n is not linear in its predicate")
    if type(ct) is Zero:
        return [None, None, None]
    zero = _c(ct, 0)
    return [None,
            unbroadcast(select_n(which, ct, zero), on_false.aval) if is_undefined(on_false) else None,
            unbroadcast(select_n(which, zero, ct), on_true.aval) if is_undefined(on_true) else None]


# NB: as JAX's select_n: case 0 where the predicate is False, case 1 where it is True
select_n_p = Primitive("select_n", params={}, abstract_eval=_select_n_abstract_eval, impl=_select_n_impl,
                       elementwise=True, linear_in=(1, 2), jvp=_select_n_jvp, transpose=_select_n_transpose)
select_n_p.define(batch=elementwise_batcher(select_n_p), cuda_template="{0} ? {2} : {1}",
                  c_template="{0} ? {2} : {1}")


def _convert_abstract_eval(x, *, new_dtype, weak_type=False):
    check_supported_dtype("convert_element_type", new_dtype)
    if x.dtype.kind not in ANY:
        raise TypeError(f"convert_element_type needs a numeric or bool operand, got {x.str_short()}")
    return ShapedArray(x.shape, new_dtype, weak_type)


def _convert_impl(x, *, new_dtype, weak_type=False):
    if type(x) in HOST_TYPES or not is_cupy_array(x):  # np.asarray raises on CuPy arrays
        x = np.asarray(x)  # results are arrays: scalars become 0-d arrays
    if x.dtype.kind == "c" and new_dtype.kind != "c":
        x = x.real  # as JAX (and XLA): complex to real keeps the real part, without NumPy's ComplexWarning
    return x.astype(new_dtype)


def _convert_jvp(primals, tangents, *, new_dtype, weak_type):
    (x,), (t,) = primals, tangents
    out = convert_element_type(x, new_dtype, weak_type)
    if type(t) is Zero or new_dtype.kind not in "fc" or get_aval(x).dtype.kind not in "fc":
        return out, Zero(tangent_aval(get_aval(out)))
    return out, convert_element_type(t, new_dtype, weak_type)


def _convert_transpose(ct, x, *, new_dtype, weak_type):
    if type(ct) is Zero or x.aval.dtype.kind not in "fc":
        return [None]
    if x.aval.dtype.kind == "f" and get_aval(ct).dtype.kind == "c":  # x -> x + 0j pairs with Re(ct), as JAX
        ct = real(ct)
    return [convert_element_type(ct, x.aval.dtype, x.aval.weak_type)]


convert_element_type_p = Primitive("convert_element_type", params={"new_dtype": DType(ANY), "weak_type": BOOL},
                                   abstract_eval=_convert_abstract_eval, impl=_convert_impl, elementwise=True, linear_in=(0,),
                                   jvp=_convert_jvp, transpose=_convert_transpose)
def _convert_cuda_template(*, new_dtype, weak_type):
    """A cast, by the operand's kind; complex results are constructed (complex<T>(x)), complex operands
    give their real part to a real result (as convert_element_type's impl)."""
    if new_dtype.kind == "c":
        return "{out_type}({0})"
    return {"c": "static_cast<{out_type}>(({0}).real())", "fiub": "static_cast<{out_type}>({0})"}


def _convert_c_template(*, new_dtype, weak_type):
    """Real to real only (the C kernels leave complex values to NumPy): C's casts, but for
    floats to integers, NumPy's (helpers of interpreters/lowering_c.py, defined out of range too).
    To float16 the value itself: the kernel's rounding of the equation to half converts it, from
    a double directly (as NumPy's npy_double_to_half); integers and bool through float, as
    NumPy's casts to half."""
    if new_dtype.kind in "iu":
        return {"f": "ft_{t}_to_%s({0})" % new_dtype.name, "iub": "({out_type})({0})"}
    if new_dtype == FLOAT16:
        return {"f": "{0}", "iub": "(float)({0})"}
    return "({out_type})({0})"


convert_element_type_p.define(batch=elementwise_batcher(convert_element_type_p),
                              cuda_template=_convert_cuda_template, c_template=_convert_c_template)

# -------------------- complex parts --------------------
# Transposes pair a cotangent c with a tangent t as Re(c t), without conjugation, as JAX's do
# (so that grad of a real function is the conjugate of df/dz-bar times 2: JAX's convention).


def _real_part_aval(name):
    def abstract_eval(x):
        _check_dtype(name, x, COMPLEX)
        return x.update(dtype=real_dtype(x.dtype))
    return abstract_eval


def _complex_abstract_eval(x, y):
    shape = elementwise_shape("complex", x, y)
    dtype = _same_dtype("complex", [x, y])
    _check_dtype("complex", x, FLOAT)
    return ShapedArray(shape, complex_dtype(dtype), x.weak_type and y.weak_type)


def _complex_impl(x, y):
    xp, (x, y) = common_arrays(array_if_python_scalar(x), array_if_python_scalar(y))
    x, y = xp.broadcast_arrays(x, y)
    out = xp.empty(x.shape, complex_dtype(x.dtype))
    out.real, out.imag = x, y  # each part as it is: x + 1j * y would turn a NaN part into two
    return out


def _real_impl(x):
    return array_if_python_scalar(x).real.copy()


def _imag_impl(x):
    return array_if_python_scalar(x).imag.copy()


def _complex_transpose(ct, x, y):
    if type(ct) is Zero:
        return [None, None]
    return [unbroadcast(real(ct), x.aval) if is_undefined(x) else None,
            unbroadcast(neg(imag(ct)), y.aval) if is_undefined(y) else None]


real_p = Primitive("real", params={}, abstract_eval=_real_part_aval("real"), impl=_real_impl, elementwise=True,
                   linear_in=(0,), cuda_template="{0}.real()")
imag_p = Primitive("imag", params={}, abstract_eval=_real_part_aval("imag"), impl=_imag_impl, elementwise=True,
                   linear_in=(0,), cuda_template="{0}.imag()")
conj_p = unary("conj", np.conjugate, COMPLEX, linear_in=(0,), cuda_template="conj({0})")
complex_p = binary("complex", _complex_impl, FLOAT, linear_in=(0, 1), transpose=_complex_transpose,
                   abstract_eval=_complex_abstract_eval, cuda_template="{out_type}({0}, {1})")
real_p.define(transpose=lambda ct, x: [None if type(ct) is Zero else complex(ct, _c(ct, 0))])
imag_p.define(transpose=lambda ct, x: [None if type(ct) is Zero else complex(_c(ct, 0), neg(ct))])
conj_p.define(transpose=lambda ct, x: [None if type(ct) is Zero else conj(ct)])
for _prim in (real_p, imag_p, conj_p, complex_p):
    _prim.define(jvp=linear_jvp(_prim), batch=elementwise_batcher(_prim))

# -------------------- Taylor mode (jet) --------------------
# Unary functions by Faa di Bruno's formula: each gives its derivatives g', ..., g^(m) at x
# (y = g(x)); see ir/primitives/taylor_util.py for the convention and the families.


def _cycle(*values):
    """Derivatives that repeat with a period (sin: cos, -sin, -cos, sin, ...)."""
    return lambda m: [values[i % len(values)] for i in range(m)]


def _sin_derivatives(x, y, m):
    c = cos(x)
    return _cycle(c, neg(y), neg(c), y)(m)


def _cos_derivatives(x, y, m):
    s = sin(x)
    return _cycle(neg(s), neg(y), s, y)(m)


def _log_derivatives(r, m):
    """log's derivatives at u, from r = 1/u: (-1)^(j-1) (j-1)! r^j."""
    return [scaled((-1) ** (j - 1) * math.factorial(j - 1), p) for j, p in enumerate(powers_of(r, m), 1)]


def _sqrt_derivatives(x, y, m):
    """c_j y^(1-2j), c_j = (1/2)(1/2 - 1)...(1/2 - j + 1): powers of 1/y, infinite at 0 as the jvp's 1/(2y)."""
    s = div(_c(y, 1), y)
    odd = [s]
    if m > 1:
        odd += [mul(s, p) for p in powers_of(mul(s, s), m - 1)]
    return [scaled(math.prod(0.5 - i for i in range(j)), p) for j, p in enumerate(odd, 1)]


def _atan_derivatives(x, y, m):
    """atan^(j) = Q_j(x) h^j with h = 1/(1 + x^2): Q_1 = 1, Q_{j+1} = Q_j' (1 + x^2) - 2 j x Q_j."""
    h = div(_c(x, 1), add(_c(x, 1), mul(x, x)))
    q, out = [1], []
    for j, h_j in enumerate(powers_of(h, m), 1):
        out.append(h_j if q == [1] else mul(horner(q, x), h_j))
        slope = [i * c for i, c in enumerate(q)][1:]
        q = _polynomial_sum(_polynomial_sum(slope, [0, 0] + slope), [0] + [-2 * j * c for c in q])
    return out


def _polynomial_sum(p, q):
    """p + q, coefficient lists lowest power first."""
    n = builtins.max(len(p), len(q))
    return [(p[i] if i < len(p) else 0) + (q[i] if i < len(q) else 0) for i in range(n)]


def _integer_pow_derivatives(x, m, n):
    """(x^n)^(j) = n (n-1) ... (n-j+1) x^(n-j); Zero where that factor is 0 (x^n is a polynomial)."""
    out, falling = [], 1
    for j in range(1, m + 1):
        falling *= n - j + 1
        if falling == 0:
            out.append(Zero(tangent_aval(get_aval(x))))
        elif n == j:
            out.append(_c(x, falling))  # a constant, rank-0 beside arrays
        else:
            out.append(scaled(falling, x if n - j == 1 else integer_pow(x, n - j)))
    return out


for _prim, _derivatives in (
        (sin_p, _sin_derivatives), (cos_p, _cos_derivatives),
        (sinh_p, lambda x, y, m: _cycle(cosh(x), y)(m)), (cosh_p, lambda x, y, m: _cycle(sinh(x), y)(m)),
        (exp_p, lambda x, y, m: [y] * m), (expm1_p, lambda x, y, m: [add(y, _c(y, 1))] * m),
        (log_p, lambda x, y, m: _log_derivatives(div(_c(x, 1), x), m)),
        (log1p_p, lambda x, y, m: _log_derivatives(div(_c(x, 1), add(_c(x, 1), x)), m)),
        (sqrt_p, _sqrt_derivatives), (atan_p, _atan_derivatives),
        (tanh_p, polynomial_derivatives([1, 0, -1])),     # tanh' = 1 - tanh^2
        (tan_p, polynomial_derivatives([1, 0, 1])),       # tan' = 1 + tan^2
        (logistic_p, polynomial_derivatives([0, 1, -1]))):  # logistic' = logistic - logistic^2
    _prim.define(taylor=unary_taylor(_prim, _derivatives))
integer_pow_p.define(taylor=unary_taylor(integer_pow_p, lambda x, out, m, *, y: _integer_pow_derivatives(x, m, y)))
for _prim in (neg_p, add_p, sub_p, mod_p, max_p, min_p, select_n_p, convert_element_type_p,
              real_p, imag_p, conj_p, complex_p):
    _prim.define(taylor=taylor_from_jvp(_prim))  # linear, or linear by pieces
for _prim in (sign_p, floor_p, ceil_p, not_p, stop_gradient_p, floor_divide_p, and_p, or_p, xor_p,
              eq_p, ne_p, lt_p, le_p, gt_p, ge_p):
    _prim.define(taylor=zero_taylor(_prim))
mul_p.define(taylor=bilinear_taylor(mul_p))
atan2_p.define(taylor=taylor_from_derivative(atan2_p))  # its jvp is rational in a and b
_abs_real_taylor = taylor_from_jvp(abs_p)


def _abs_taylor(primals, series):
    """Real operands: linear by pieces. Complex ones: |z| = sqrt(re^2 + im^2), composed from those rules
    (|z| is smooth away from 0, not linear by pieces)."""
    (x,), (xs,) = primals, series
    if get_aval(x).dtype.kind != "c":
        return _abs_real_taylor(primals, series)
    re, re_s = real_p.taylor((x,), (xs,))
    im, im_s = imag_p.taylor((x,), (xs,))
    re2, re2_s = mul_p.taylor((re, re), (re_s, re_s))
    im2, im2_s = mul_p.taylor((im, im), (im_s, im_s))
    sum2, sum2_s = add_p.taylor((re2, im2), (re2_s, im2_s))
    return sqrt_p.taylor((sum2,), (sum2_s,))


abs_p.define(taylor=_abs_taylor)


def _div_taylor(primals, series):
    """z = x / y, so x = z y: z_k = (x_k - sum_{j=1..k} C(k, j) y_j z_{k-j}) / y_0."""
    (x, y), (xs, ys) = primals, series
    z = div(x, y)
    aval = tangent_aval(get_aval(z))
    zs = [z]
    for k in range(1, len(xs) + 1):
        known = total([scaled(math.comb(k, j), mul(ys[j - 1], zs[k - j]))
                       for j in range(1, k + 1) if not (is_zero(ys[j - 1]) or is_zero(zs[k - j]))], aval)
        x_k = xs[k - 1]
        if is_zero(known):
            numerator = x_k
        else:
            numerator = neg(known) if is_zero(x_k) else sub(x_k, known)
        zs.append(numerator if is_zero(numerator) else div(numerator, y))
    return z, zs[1:]


def _pow_taylor(primals, series):
    """A constant exponent: Faa di Bruno in x, with the jvp's care where y (y-1)...
    is 0 (x**2 has no third derivative, even at 0). A varying one: x**y =
    exp(y log x), the series of y log x then exp's (log 0 taken as 0, as the jvp does)."""
    (x, y), (xs, ys) = primals, series
    out = pow(x, y)
    aval = tangent_aval(get_aval(out))
    if all(is_zero(c) for c in ys):
        derivatives, falling = [], None
        for j in range(1, derivative_orders_needed(xs) + 1):
            factor = y if j == 1 else sub(y, _c(y, j - 1))
            falling = factor if falling is None else mul(falling, factor)
            value = mul(falling, pow(x, sub(y, _c(y, j))))
            derivatives.append(select_n(eq(falling, _c(falling, 0)), value, _c(out, 0)))
        return out, faa_di_bruno(derivatives, xs, aval)
    log_x = log(select_n(eq(x, _c(x, 0)), x, _c(x, 1)))
    if all(is_zero(c) for c in xs):
        log_series = [Zero(aval)] * len(xs)
    else:
        log_series = faa_di_bruno(_log_derivatives(div(_c(x, 1), x), derivative_orders_needed(xs)), xs,
                                  tangent_aval(get_aval(x)))
    exponent = [total(leibniz(mul, y, ys, log_x, log_series, k), aval) for k in range(1, len(xs) + 1)]
    return out, faa_di_bruno([out] * derivative_orders_needed(exponent), exponent, aval)


div_p.define(taylor=_div_taylor)
pow_p.define(taylor=_pow_taylor)

# -------------------- binders (what rules and ftrans.numpy call) --------------------


def _binder(prim):
    # a partial, not a closure: binders sit on the hottest path, and a partial adds no Python frame
    return functools.partial(bind, prim)


neg, sign, abs, floor, ceil = map(_binder, (neg_p, sign_p, abs_p, floor_p, ceil_p))
sin, cos, tan, atan, sinh, cosh, tanh = map(_binder, (sin_p, cos_p, tan_p, atan_p, sinh_p, cosh_p, tanh_p))
exp, log, log1p, expm1, sqrt, logistic = map(_binder, (exp_p, log_p, log1p_p, expm1_p, sqrt_p, logistic_p))
bitwise_not = _binder(not_p)
add, sub, mul, div, pow = map(_binder, (add_p, sub_p, mul_p, div_p, pow_p))
floor_divide, mod, max, min = map(_binder, (floor_divide_p, mod_p, max_p, min_p))
atan2 = _binder(atan2_p)
bitwise_and, bitwise_or, bitwise_xor = map(_binder, (and_p, or_p, xor_p))
eq, ne, lt, le, gt, ge = map(_binder, (eq_p, ne_p, lt_p, le_p, gt_p, ge_p))


stop_gradient = _binder(stop_gradient_p)
real, imag, conj, complex = map(_binder, (real_p, imag_p, conj_p, complex_p))


def integer_pow(x, y):
    return bind(integer_pow_p, x, y=y)


def select_n(which, *cases):
    return bind(select_n_p, which, *cases)


def convert_element_type(x, new_dtype, weak_type=False):
    return bind(convert_element_type_p, x, new_dtype=np.dtype(new_dtype), weak_type=weak_type)
