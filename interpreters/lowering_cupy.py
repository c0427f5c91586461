"""Lower a jaxpr to CuPy: fused elementwise and reduction kernels, and CuPy
calls for the rest.

`lower(closed, name)` plans the fusion (ir/passes/fusion.py) and generates
each kernel's CUDA source from the `cuda_template` of its primitives. It needs
no GPU and no CuPy: `LoweredCupy.source` shows the host-side plan and every
kernel. Calling the result imports CuPy, builds each kernel once (through a
cache shared by every lowering), and runs the plan.

A kernel's body is one C statement per equation, each result a `const`
local of the equation's dtype, so every value is rounded to its dtype as
NumPy rounds it (a float32 kernel computes in float32) and literals are
written in that dtype (`0.5f`). Templates are format strings: `{0}`, `{1}`,
... are the operands (a local, an input or a literal), `{out_type}` the
result's C type. A template may be a dict from dtype kinds ("f", "iu", "b")
to strings, chosen by the first operand's dtype, or a function of the
equation's params returning one. Where NumPy's semantics take more than an
expression (floor division, remainder, integer powers), templates call the
helpers of `PRELUDE`, which every kernel includes.

Control flow runs on the host: a `cond` reads its index back from the GPU and
runs the plan of the branch it picks (a `while` reads its predicate back once
per iteration), a `scan` is a Python loop around the
plan of its body (`HOST_CONTROL_FLOW`), each sub-plan lowered once with its own
fused kernels and shown, indented, after the host plan that calls it.

The same body also compiles outside CuPy: `standalone_cuda` wraps it in an
`extern "C" __global__` kernel (for nvcc), `host_cpp` in a plain C++ loop
(for g++, to test the numerics against NumPy on machines with no GPU).
"""
from __future__ import annotations

import collections
import functools
import hashlib
import math
import threading

import numpy as np

from interpreters.lowering_numpy import fresh_outputs
from ir.core import ClosedJaxpr, Literal
from ir.passes.fusion import ElementwiseGroup, LibraryCall, ReductionGroup, kernel_statements, plan_fusion
from ir.primitives import collectives
from ir.primitives import elementwise as ew
from ir.primitives import indexing, reductions, special, structural
from ir.primitives.control_flow import (branch_index, loop_limit, scan_loop, while_loop_run,
                                        while_reverse_run)

C_TYPES = {
    np.dtype("float32"): "float", np.dtype("float64"): "double",
    np.dtype("int8"): "signed char", np.dtype("int16"): "short",
    np.dtype("int32"): "int", np.dtype("int64"): "long long",
    np.dtype("uint8"): "unsigned char", np.dtype("uint16"): "unsigned short",
    np.dtype("uint32"): "unsigned int", np.dtype("uint64"): "unsigned long long",
    np.dtype("bool"): "bool",
    # CuPy's complex types are thrust::complex, named complex<T> in its kernels; std::complex on the host
    np.dtype("complex64"): "complex<float>", np.dtype("complex128"): "complex<double>",
}

PRELUDE = r"""// ftrans kernel prelude: NumPy's semantics where C's differ
#ifndef FT_FN
#define FT_FN __device__ __forceinline__
#endif

// Floor division and remainder of floats as NumPy computes them (npy_divmod):
// the remainder takes the divisor's sign, the quotient is the integer nearest
// (a - mod) / b, and a zero divisor gives a / b and fmod's NaN.
template <typename T> FT_FN T ft_float_divmod(T a, T b, T* mod_out) {
  T mod = fmod(a, b);
  if (b == 0) { *mod_out = mod; return a / b; }
  T div = (a - mod) / b;
  if (mod != 0) {
    if ((b < 0) != (mod < 0)) { mod += b; div -= 1; }
  } else {
    mod = copysign(T(0), b);
  }
  T quotient;
  if (div != 0) {
    quotient = floor(div);
    if (div - quotient > T(0.5)) quotient += 1;
  } else {
    quotient = copysign(T(0), a / b);
  }
  *mod_out = mod;
  return quotient;
}
FT_FN float ft_floor_divide(float a, float b) { float m; return ft_float_divmod(a, b, &m); }
FT_FN double ft_floor_divide(double a, double b) { double m; return ft_float_divmod(a, b, &m); }
FT_FN float ft_mod(float a, float b) { float m; ft_float_divmod(a, b, &m); return m; }
FT_FN double ft_mod(double a, double b) { double m; ft_float_divmod(a, b, &m); return m; }

// Integers: Python's floor division and remainder. NumPy gives 0 for a zero
// divisor, and MIN // -1 wraps to MIN (C leaves both undefined).
template <typename T> FT_FN T ft_floor_divide(T a, T b) {
  if (b == 0) return 0;
  if (T(-1) < T(0) && b == T(-1)) return T(0ULL - (unsigned long long)a);
  T q = a / b;
  if (a % b != 0 && ((a < 0) != (b < 0))) q -= 1;
  return q;
}
template <typename T> FT_FN T ft_mod(T a, T b) {
  if (b == 0 || (T(-1) < T(0) && b == T(-1))) return 0;
  T r = a % b;
  if (r != 0 && ((r < 0) != (b < 0))) r += b;
  return r;
}

// Integer powers by squaring, wrapping on overflow as NumPy's do. NumPy
// refuses negative exponents; a kernel cannot raise, so it gives what C's
// 1 / a**-b truncates to.
template <typename T> FT_FN T ft_integer_pow(T a, T b) {
  if (T(-1) < T(0) && b < T(0)) return a == T(1) ? T(1) : (a == T(-1) ? ((b & 1) ? T(-1) : T(1)) : T(0));
  unsigned long long result = 1, base = (unsigned long long)a;
  for (; b != 0; b >>= 1) {
    if (b & 1) result *= base;
    base *= base;
  }
  return T(result);
}

// XLA's ReducePrecision on the bits of a float of E exponent and M mantissa bits (U: its
// unsigned twin): the mantissa rounded to m bits (to nearest, ties to even), then overflow
// to a signed infinity and values below the smallest normal of e exponent bits to a signed zero.
template <typename U, int E, int M> FT_FN U ft_reduce_precision_bits(U bits, int e, int m) {
  if (m < M) {
    U last = U(1) << (M - m);
    bits = (bits + ((bits & last) >> (M - m)) + ((last >> 1) - 1)) & ~(last - 1);
  }
  if (e < E) {
    U sign = U(1) << (8 * sizeof(U) - 1), exponent_mask = ((U(1) << E) - 1) << M;
    U bias = (U(1) << (E - 1)) - 1, reduced_bias = (U(1) << (e - 1)) - 1, exponent = bits & exponent_mask;
    if (exponent > ((bias + reduced_bias) << M)) bits = (bits & sign) | exponent_mask;
    else if (exponent <= ((bias - reduced_bias) << M)) bits = bits & sign;
  }
  return bits;
}
FT_FN float ft_reduce_precision(float x, int e, int m) {
  if (x != x) return m > 0 ? x : __int_as_float(0x7f800000);
  if (e >= 8 && m >= 23) return x;
  return __int_as_float((int)ft_reduce_precision_bits<unsigned int, 8, 23>((unsigned int)__float_as_int(x), e, m));
}
FT_FN double ft_reduce_precision(double x, int e, int m) {
  if (x != x) return m > 0 ? x : __longlong_as_double(0x7ff0000000000000LL);
  if (e >= 11 && m >= 52) return x;
  return __longlong_as_double((long long)ft_reduce_precision_bits<unsigned long long, 11, 52>(
      (unsigned long long)__double_as_longlong(x), e, m));
}
"""

# digamma, polygamma and the incomplete gamma and beta functions, which CUDA does not have: only kernels that call them include these
SPECIAL_PRELUDE = special.CUDA_HELPERS
SPECIAL_FUNCTIONS = ("ft_digamma(", "ft_polygamma(", "ft_igamma(", "ft_igammac(", "ft_igamma_grad_a(",
                     "ft_random_gamma_grad(", "ft_betainc(")


def prelude_for(*bodies):
    """The prelude kernels with these bodies need."""
    if any(name in body for body in bodies for name in SPECIAL_FUNCTIONS):
        return PRELUDE + SPECIAL_PRELUDE
    return PRELUDE


# What `standalone_cuda` output needs before the prelude: the complex<T> CuPy's kernels have (CuPy's own
# copy of thrust::complex, from cupy/complex.cuh), here thrust's.
CUDA_HEADER = r"""#include <thrust/complex.h>
using thrust::complex;
"""

# What `host_cpp` output needs before the prelude: the CUDA intrinsics that
# literals use, and the math functions overloaded for float as CUDA has them
# (and CUDA's erfinv, which C does not have).
HOST_HEADER = r"""#include <cmath>
#include <complex>
#include <cstring>
using namespace std;
#define FT_FN inline
#define FT_CONSTANT static const
static inline float __int_as_float(int bits) { float f; memcpy(&f, &bits, sizeof f); return f; }
static inline double __longlong_as_double(long long bits) { double d; memcpy(&d, &bits, sizeof d); return d; }
static inline int __float_as_int(float f) { int bits; memcpy(&bits, &f, sizeof bits); return bits; }
static inline long long __double_as_longlong(double d) { long long bits; memcpy(&bits, &d, sizeof bits); return bits; }
""" + special.HOST_HELPERS

_FLOAT_BITS = {  # (C function, bits of +inf, bits of the quiet NaN)
    np.dtype("float32"): ("__int_as_float", "0x7f800000", "0x7fc00000"),
    np.dtype("float64"): ("__longlong_as_double", "0x7ff0000000000000LL", "0x7ff8000000000000LL"),
}
_INTEGER_SUFFIXES = {np.dtype("int64"): "LL", np.dtype("uint32"): "U", np.dtype("uint64"): "ULL"}


def c_literal(value, dtype) -> str:
    """`value` as a C literal of `dtype` (0.5f for float32): an operand
    parenthesized when negative, so it can stand anywhere in a template."""
    dtype = np.dtype(dtype)
    value = dtype.type(value)
    if dtype.kind == "b":
        return "true" if value else "false"
    if dtype.kind == "c":
        part = np.dtype(f"f{dtype.itemsize // 2}")
        return f"{C_TYPES[dtype]}({c_literal(value.real, part)}, {c_literal(value.imag, part)})"
    if dtype.kind == "f":
        function, inf_bits, nan_bits = _FLOAT_BITS[dtype]
        if np.isnan(value):
            return f"{function}({nan_bits})"
        if np.isinf(value):
            text = f"{function}({inf_bits})"
        else:
            text = str(abs(value)) + ("f" if dtype == np.float32 else "")  # NumPy's shortest round trip
        return f"(-{text})" if np.signbit(value) else text
    suffix = _INTEGER_SUFFIXES.get(dtype, "")
    if dtype.kind == "i" and value == np.iinfo(dtype).min:  # -2147483648 would be minus a too-large literal
        return f"(-{-(int(value) + 1)}{suffix} - 1)"
    return f"({int(value)}{suffix})" if value < 0 else f"{int(value)}{suffix}"


def _expression(eqn, operands):
    """The C expression of one elementwise equation, from its primitive's template."""
    template = eqn.primitive.cuda_template
    if callable(template):
        template = template(**eqn.params)
    if isinstance(template, dict):
        kind = eqn.invars[0].aval.dtype.kind
        template = next(text for kinds, text in template.items() if kind in kinds)
    return template.format(*operands, out_type=C_TYPES[eqn.outvars[0].aval.dtype])


# -------------------- kernel sources --------------------

class KernelSource:
    """One generated kernel: its CuPy parameters and body, and what its
    standalone forms need (the shapes its loads broadcast from)."""

    def __init__(self, name, inputs, outputs, body, shape):
        self.name = name
        self.inputs = inputs      # [(dtype, load shape)], named in0, in1, ...
        self.outputs = outputs    # [dtype], named out0, ...
        self.body = body          # C statements
        self.shape = tuple(shape)

    @property
    def in_params(self):
        return ", ".join(f"{dtype.name} in{k}" for k, (dtype, _) in enumerate(self.inputs))

    @property
    def out_params(self):
        return ", ".join(f"{dtype.name} out{k}" for k, dtype in enumerate(self.outputs))

    @property
    def dtypes(self):
        return tuple(d.name for d, _ in self.inputs) + tuple(d.name for d in self.outputs)


class ElementwiseSource(KernelSource):
    kind = "elementwise"

    def text(self):
        return (f"// {self.name}: cupy.ElementwiseKernel\n//   in_params:  {self.in_params}\n"
                f"//   out_params: {self.out_params}\n{self.body}")


class ReductionSource(KernelSource):
    """`body` defines the map function (empty when the map reads in0 as it is)."""
    kind = "reduction"

    def __init__(self, name, inputs, output, body, shape, map_expr, combine, identity, axes):
        super().__init__(name, inputs, [output], body, shape)
        self.map_expr, self.combine, self.identity, self.axes = map_expr, combine, identity, tuple(axes)

    @property
    def reduce_type(self):
        return C_TYPES[self.outputs[0]]

    def text(self):
        text = (f"// {self.name}: cupy.ReductionKernel over axes {self.axes} of {self.shape}\n"
                f"//   in_params:  {self.in_params}\n//   out_params: {self.out_params}\n"
                f"//   map_expr: {self.map_expr}\n//   reduce_expr: {self.combine}\n"
                f"//   identity: {self.identity}\n//   post_map_expr: out0 = a")
        return f"{text}\n{self.body}" if self.body else text


def _body(eqns, inputs, results):
    """C statements computing `eqns` from the kernel inputs (named in0, in1, ...): one const
    local per equation (fusion.kernel_statements). Returns the statements and the C
    expression of each of `results`."""
    def statement(eqn, name, operands):
        return f"const {C_TYPES[eqn.outvars[0].aval.dtype]} {name} = {_expression(eqn, operands)};"
    return kernel_statements(eqns, inputs, results, lambda k: f"in{k}", c_literal, statement)


def elementwise_source(group: ElementwiseGroup, name) -> ElementwiseSource:
    lines, results = _body(group.eqns, group.inputs, group.outputs)
    lines += [f"out{k} = {r};" for k, r in enumerate(results)]
    return ElementwiseSource(name, [(l.var.aval.dtype, l.shape) for l in group.inputs],
                             [v.aval.dtype for v in group.outputs], "\n".join(lines), group.shape)


def reduction_source(group: ReductionGroup, name) -> ReductionSource:
    red = group.reduction
    operand, dtype = red.invars[0], red.outvars[0].aval.dtype
    inputs = [(l.var.aval.dtype, l.shape) for l in group.inputs]
    body, map_expr = "", "in0"
    if group.eqns:  # the map runs as a device function: CuPy's map_expr is one expression
        lines, (result,) = _body(group.eqns, group.inputs, [operand])
        params = ", ".join(f"const {C_TYPES[d]} in{k}" for k, (d, _) in enumerate(inputs))
        statements = "".join(f"  {line}\n" for line in lines)
        body = f"FT_FN {C_TYPES[dtype]} {name}_map({params}) {{\n{statements}  return {result};\n}}"
        map_expr = f"{name}_map({', '.join(f'in{k}' for k in range(len(inputs)))})"
    template = red.primitive.cuda_template
    identity = template["identity"](dtype) if callable(template["identity"]) else template["identity"]
    combine = template["combine"]
    if isinstance(combine, dict):
        combine = next(text for kinds, text in combine.items() if dtype.kind in kinds)
    return ReductionSource(name, inputs, dtype, body, operand.aval.shape, map_expr,
                           combine.format("a", "b"), c_literal(identity, dtype),
                           red.params["axes"])


# -------------------- standalone forms: nvcc and g++ --------------------

def standalone_cuda(source: KernelSource) -> str:
    """The kernel as an `extern "C" __global__` CUDA function over raw pointers
    (C-contiguous inputs), with the identical body; it needs CUDA_HEADER and PRELUDE first."""
    return _standalone(source, host=False)


def host_cpp(source: KernelSource) -> str:
    """The kernel as a host C++ function, with the identical body; it needs
    HOST_HEADER and PRELUDE first."""
    return _standalone(source, host=True)


def _standalone(source, host):
    params = [f"const {C_TYPES[d]}* __restrict__ in{k}_data" for k, (d, _) in enumerate(source.inputs)]
    params += [f"{C_TYPES[d]}* __restrict__ out{k}_data" for k, d in enumerate(source.outputs)]
    params.append("long long size")  # the number of output elements
    if host:
        head, first, step = 'extern "C" void', "0", "1"
    else:
        head = 'extern "C" __global__ void'
        first, step = "blockIdx.x * (long long)blockDim.x + threadIdx.x", "(long long)gridDim.x * blockDim.x"
    if source.kind == "elementwise":
        prefix, loop_body = "", _elementwise_loop_body(source)
    else:
        prefix, loop_body = source.body + "\n" if source.body else "", _reduction_loop_body(source)
    return (f"{prefix}{head} {source.name}({', '.join(params)}) {{\n"
            f"  for (long long index = {first}; index < size; index += {step}) {{\n{loop_body}  }}\n}}\n")


def _indented(lines, depth):
    return "".join(" " * depth + line + "\n" for line in lines)


def _load_lines(source, coordinates):
    return [f"const {C_TYPES[d]} in{k} = in{k}_data[{_offset(s, coordinates)}];"
            for k, (d, s) in enumerate(source.inputs)]


def _elementwise_loop_body(source):
    shape = source.shape
    coordinates = _coordinates(shape, range(len(shape)), "index")
    loads = [f"const {C_TYPES[d]} in{k} = in{k}_data[{'index' if s == shape else _offset(s, coordinates)}];"
             for k, (d, s) in enumerate(source.inputs)]
    outputs = [f"{C_TYPES[d]}& out{k} = out{k}_data[index];" for k, d in enumerate(source.outputs)]
    return _indented(loads + outputs + source.body.splitlines(), 4)


def _reduction_loop_body(source):
    """One thread per output element and a serial loop over the reduced ones:
    simple rather than fast, it is there to compile and test the pieces."""
    shape, axes, reduce_type = source.shape, source.axes, source.reduce_type
    kept = [d for d in range(len(shape)) if d not in axes]
    coordinates = {**_coordinates(shape, kept, "index"), **_coordinates(shape, axes, "r")}
    inner = _load_lines(source, coordinates) + [f"const {reduce_type} b = {source.map_expr};",
                                                f"a = {source.combine};"]
    return (_indented([f"{reduce_type} a = {source.identity};",
                       f"for (long long r = 0; r < {math.prod(shape[d] for d in axes)}LL; ++r) {{"], 4)
            + _indented(inner, 6) + _indented(["}", "out0_data[index] = a;"], 4))


def _coordinates(shape, dims, counter):
    """Per dimension in `dims` (of `shape`), its coordinate in the row-major
    enumeration `counter` of those dimensions."""
    coordinates, inner = {}, 1
    for position, dim in reversed(list(enumerate(dims))):
        term = counter if inner == 1 else f"({counter} / {inner}LL)"
        coordinates[dim] = term if position == 0 else f"({term} % {shape[dim]}LL)"
        inner *= shape[dim]
    return coordinates


def _offset(load_shape, coordinates):
    """The element of a C-contiguous input viewed with `load_shape` (1s where it
    broadcasts) at the given coordinates."""
    terms, stride = [], 1
    for dim in reversed(range(len(load_shape))):
        if load_shape[dim] != 1:
            terms.append(coordinates[dim] if stride == 1 else f"{coordinates[dim]} * {stride}LL")
            stride *= load_shape[dim]
    return " + ".join(reversed(terms)) or "0"


# -------------------- lowering --------------------

class LoweredCupy:
    """A jaxpr lowered to CuPy: `plan`, `kernels` (one source per kernel step,
    in step order), `nested` (for each control-flow step of the plan, by its
    equation: the LoweredCupy of each sub-jaxpr, a loop's body or a cond's
    branches), `source` (the host plan, the nested plans, and the CUDA
    sources, as text). Calling it runs on the GPU: NumPy inputs are copied
    there first, and the results are fresh CuPy arrays."""

    def __init__(self, closed: ClosedJaxpr, plan, kernels, name, nested):
        self.jaxpr, self.plan, self.kernels, self.name, self.nested = closed, plan, kernels, name, nested
        texts = [plan.pretty(name, [k.name for k in kernels])]
        for eqn, subs in nested.items():  # each sub-jaxpr's plan, indented under the loop that runs it
            texts += ["\n".join("    " + line for line in sub.source.rstrip("\n").split("\n")) for sub in subs]
        texts += [k.text() for k in kernels]
        if any("ft_" in k.body for k in kernels):
            texts.append(prelude_for(*[k.body for k in kernels]))
        self.source = "\n\n".join(texts) + "\n"
        self.function = self.__call__  # as LoweredNumpy has it
        self._launchers = None
        self._device_consts = None

    def __call__(self, *args):
        cupy = import_cupy()
        if self._launchers is None:
            self._launchers = [_launcher(cupy, k) for k in self.kernels]
            self._device_consts = [cupy.asarray(c) for c in self.jaxpr.consts]
        invars = self.jaxpr.jaxpr.invars
        args = [cupy.asarray(x, dtype=v.aval.dtype) for x, v in zip(args, invars, strict=True)]
        return execute(self.plan, self._device_consts + args, cupy, self._launchers, self.nested,
                       lambda sub, values: sub(*values))


def lower(closed: ClosedJaxpr, name="jitted") -> LoweredCupy:
    """Plan the fusion of `closed` and generate its kernels' sources; no CuPy needed.
    A cond or a loop is a step of the host plan, which runs the plans of its
    sub-jaxprs (lowered here, once) around their own fused kernels."""
    plan = plan_fusion(closed)
    kernels = []
    for n, step in enumerate(plan.kernels):
        make = elementwise_source if isinstance(step, ElementwiseGroup) else reduction_source
        kernels.append(make(step, f"{name}_k{n}"))
    nested = {}
    for n, step in enumerate(s for s in plan.steps if isinstance(s, LibraryCall) and s.eqn.primitive.name in
                             HOST_CONTROL_FLOW):
        prim = step.eqn.primitive.name
        subs = [value for value in step.eqn.params.values() for value in
                (value if isinstance(value, tuple) else (value,)) if isinstance(value, ClosedJaxpr)]
        nested[step.eqn] = [lower(sub, f"{name}_{prim}{n}_{k}") for k, sub in enumerate(subs)]
    return LoweredCupy(closed, plan, kernels, name, nested)


# what to do without CuPy (ftrans/_device.py says it too); the extras are pyproject.toml's
CUPY_NOT_INSTALLED = ("CuPy is not installed: install ftrans with the extra for your CUDA, "
                      "pip install '.[gpu]' for CUDA 12 (CuPy's wheels cupy-cuda12x) or "
                      "pip install '.[gpu-cuda13]' for CUDA 13 (cupy-cuda13x)")


def import_cupy():
    try:
        import cupy
    except ImportError:
        raise RuntimeError(f"the CuPy backend needs CuPy and an NVIDIA GPU: {CUPY_NOT_INSTALLED}") from None
    return cupy


def execute(plan, args, xp, launchers, nested=None, run_nested=None):
    """Run `plan` on `args` (constants first), with array module `xp` and one
    launcher per kernel step: `launch(*inputs) -> outputs`. A control-flow step
    runs `run_nested(lowered sub-jaxpr, values) -> outputs` on the entries of
    `nested` (LoweredCupy's) for its equation, on the host."""
    jaxpr = plan.jaxpr
    env = dict(zip(jaxpr.constvars + jaxpr.invars, args, strict=True))
    read = lambda x: x.value if type(x) is Literal else env[x]
    fresh = set()  # values the plan computed into new arrays (not views, inputs or constants)
    launchers = iter(launchers)
    for step in plan.steps:
        if isinstance(step, LibraryCall):
            outvars = step.eqn.outvars
            operands = [read(x) for x in step.eqn.invars]
            control_flow = HOST_CONTROL_FLOW.get(step.eqn.primitive.name)
            if control_flow is not None:
                subs = [functools.partial(run_nested, sub) for sub in nested[step.eqn]]
                outs = control_flow(xp, step.eqn, operands, subs)
            else:
                outs = library_call(xp, step.eqn, operands)
            fresh.update(fresh_outputs(step.eqn))
        else:
            outvars = step.outputs if isinstance(step, ElementwiseGroup) else step.reduction.outvars
            outs = next(launchers)(*[read(load.var).reshape(load.shape) for load in step.inputs])
            fresh.update(outvars)
        env.update(zip(outvars, outs, strict=True))
    results, returned = [], set()
    for x in jaxpr.outvars:
        value = xp.asarray(read(x))
        if type(x) is Literal or x not in fresh or x in returned:
            value = value.copy()  # never hand out an input, a constant, a view of one, or one array twice
        else:
            returned.add(x)
        results.append(value)
    return results


# -------------------- control flow: on the host, around the kernels --------------------

def _host_cond(xp, eqn, operands, branches):
    """The branch the index picks (read back from the device: one synchronization)."""
    index, *rest = operands
    return list(branches[branch_index(index, len(branches))](rest))


def _host_scan(xp, eqn, operands, bodies):
    """A Python loop around the body's plan: its kernels run once per iteration."""
    (body,), params = bodies, eqn.params
    return scan_loop(lambda values: list(body(values)), operands, num_consts=params["num_consts"],
                     num_carry=params["num_carry"], length=params["length"], reverse=params["reverse"],
                     y_avals=params["jaxpr"].out_avals[params["num_carry"]:], xp=xp)


def _host_while(xp, eqn, operands, subs):
    """A Python loop around the body's plan; the predicate is read back once per iteration."""
    (cond, body), params = subs, eqn.params
    return while_loop_run(lambda values: bool(cond(values)[0]), lambda values: list(body(values)), operands,
                          cond_nconsts=params["cond_nconsts"], body_nconsts=params["body_nconsts"],
                          limit=loop_limit(params["cond_jaxpr"]))


def _host_while_reverse(xp, eqn, operands, subs):
    """The loop as _host_while, keeping its carries on the device, then the bwd plan run backwards over them."""
    (cond, body, bwd), params = subs, eqn.params
    if params["transforms"]:  # transformed on the host once its trip count is known (control_flow.py)
        return eqn.primitive.impl(*operands, **params)
    return while_reverse_run(lambda values: bool(cond(values)[0]), lambda values: list(body(values)),
                             lambda values: list(bwd(values)), operands, cond_nconsts=params["cond_nconsts"],
                             body_nconsts=params["body_nconsts"], bwd_nconsts=params["bwd_nconsts"],
                             num_carry=len(params["body_jaxpr"].out_avals), checkpoints=params["checkpoints"],
                             limit=loop_limit(params["cond_jaxpr"]))


# primitive name -> (xp, eqn, operands, one callable per sub-jaxpr: values -> outputs) -> outputs
HOST_CONTROL_FLOW = {"cond": _host_cond, "scan": _host_scan, "while": _host_while,
                     "while_reverse": _host_while_reverse}


# -------------------- running on CuPy --------------------

# Built kernels, shared by every lowering, so that repeated calls and new jits
# of an identical kernel compile nothing: keyed by (kind, parameters and body
# text, dtypes). The generated text holds everything the compiled code depends
# on (the parameters' dtypes, the body, the reduction's expressions); shapes
# and strides are not part of it, CuPy handles them per call. The readable
# name in the plan (`gelu_k0`) is not part of the key either: a kernel is
# compiled under a name made from its key, so identical kernels of two
# differently named functions are one. Bounded: the least recently used go first
# (CuPy keeps the compiled binaries on disk, so one built again needs no nvcc).
class _KernelCache:
    def __init__(self, capacity):
        self.capacity = capacity
        self._kernels = collections.OrderedDict()
        self._lock = threading.Lock()

    def get(self, key):
        with self._lock:
            kernel = self._kernels.get(key)
            if kernel is not None:
                self._kernels.move_to_end(key)
            return kernel

    def __setitem__(self, key, kernel):
        with self._lock:
            self._kernels[key] = kernel
            self._kernels.move_to_end(key)
            while len(self._kernels) > self.capacity:
                self._kernels.popitem(last=False)

    def __len__(self):
        return len(self._kernels)


_KERNEL_CACHE = _KernelCache(capacity=1024)


def _compiled_name(key):
    return "ftrans_" + hashlib.sha1(repr(key).encode()).hexdigest()[:16]


def _launcher(cupy, source):
    if source.kind == "elementwise":
        key = ("elementwise", source.in_params, source.out_params, source.body, source.dtypes)
        kernel = _KERNEL_CACHE.get(key)
        if kernel is None:
            kernel = _KERNEL_CACHE[key] = cupy.ElementwiseKernel(
                source.in_params, source.out_params, source.body, _compiled_name(key), preamble=prelude_for(source.body))
        shape, out_dtypes = source.shape, source.outputs

        def launch(*inputs):
            outs = [cupy.empty(shape, dtype) for dtype in out_dtypes]
            kernel(*inputs, *outs)
            return outs
        return launch
    # the map function is named after the kernel: renamed, so that the key holds no name
    body, map_expr = (text.replace(f"{source.name}_map(", "map_of_kernel(") for text in (source.body, source.map_expr))
    key = ("reduction", source.in_params, source.out_params, body, map_expr, source.combine, source.identity,
           source.reduce_type, source.dtypes)
    kernel = _KERNEL_CACHE.get(key)
    if kernel is None:
        kernel = _KERNEL_CACHE[key] = cupy.ReductionKernel(
            source.in_params, source.out_params, map_expr, source.combine, "out0 = a",
            source.identity, _compiled_name(key), reduce_type=source.reduce_type, preamble=prelude_for(body) + body)
    axes = source.axes
    return lambda *inputs: [kernel(*inputs, axis=axes)]


def library_call(xp, eqn, args):
    """One equation that no kernel computes, on arrays of module `xp`. Most
    implementations reach CuPy through NumPy's dispatch (`__array_ufunc__`,
    `__array_function__`); those that build NumPy arrays have a version here."""
    prim = eqn.primitive
    own = _ARRAY_MODULE_IMPLS.get(prim)
    outs = own(xp, *args, **eqn.params) if own else prim.impl(*args, **eqn.params)
    return list(outs) if prim.multiple_results else [outs]


def _iota(xp, *, dtype, shape, dimension):
    expanded = [1] * len(shape)
    expanded[dimension] = shape[dimension]
    return xp.broadcast_to(xp.arange(shape[dimension], dtype=dtype).reshape(expanded), shape).copy()


def _broadcast_in_dim(xp, x, *, shape, broadcast_dimensions):
    expanded = [1] * len(shape)
    for size, dim in zip(xp.shape(x), broadcast_dimensions, strict=True):
        expanded[dim] = size
    return xp.broadcast_to(xp.asarray(x).reshape(expanded), shape).copy()


def _pad(xp, x, padding_value, *, padding_config):
    shape = [lo + hi + n + max(n - 1, 0) * interior for n, (lo, hi, interior) in zip(x.shape, padding_config)]
    result = xp.empty(shape, dtype=x.dtype)
    result[...] = padding_value
    result[tuple(slice(lo, lo + n + max(n - 1, 0) * interior, interior + 1)
                 for n, (lo, _, interior) in zip(x.shape, padding_config))] = x
    return result


def _in_range_rows(xp, operand_shape, indices):
    bounds = xp.asarray(operand_shape[:indices.shape[-1]], dtype=indices.dtype)
    return xp.all((indices >= 0) & (indices < bounds), axis=-1)


def _gather(xp, operand, indices, *, mode, fill_value=None):
    k = indices.shape[-1]
    out_shape = indices.shape[:-1] + operand.shape[k:]
    fill = indexing.default_fill_value(operand.dtype) if fill_value is None else fill_value
    if 0 in operand.shape[:k]:  # every index is out of range
        return xp.full(out_shape, fill, dtype=operand.dtype)
    upper = xp.asarray([n - 1 for n in operand.shape[:k]], dtype=indices.dtype)
    clamped = xp.minimum(xp.maximum(indices, 0), upper)
    result = operand[tuple(clamped[..., j] for j in range(k))]
    if mode == "fill":
        inside = _in_range_rows(xp, operand.shape, indices)
        inside = inside.reshape(inside.shape + (1,) * (operand.ndim - k))
        result = xp.where(inside, result, xp.asarray(fill, dtype=operand.dtype))
    return result


def _scatter_rows(xp, operand, indices, updates):
    keep = _in_range_rows(xp, operand.shape, indices)
    rows = indices[keep]
    return tuple(rows[:, j] for j in range(indices.shape[-1])), updates[keep]


def _scatter_add(xp, operand, indices, updates):
    result = operand.copy()
    where, values = _scatter_rows(xp, operand, indices, updates)
    xp.add.at(result, where, values)
    return result


def _scatter(xp, operand, indices, updates):
    result = operand.copy()
    where, values = _scatter_rows(xp, operand, indices, updates)
    result[where] = values
    return result


def _extremum(prim, xp_name):
    identity = prim.cuda_template["identity"]

    def impl(xp, x, *, axes):
        if any(x.shape[a] == 0 for a in axes):  # NumPy's initial=identity, which CuPy's max lacks
            return xp.full([n for i, n in enumerate(x.shape) if i not in axes], identity(x.dtype), x.dtype)
        return getattr(xp, xp_name)(x, axis=axes)
    return impl


_ARRAY_MODULE_IMPLS = {
    structural.iota_p: _iota,
    structural.broadcast_in_dim_p: _broadcast_in_dim,
    structural.pad_p: _pad,
    indexing.gather_p: _gather,
    indexing.scatter_add_p: _scatter_add,
    indexing.scatter_p: _scatter,
    # float16 only: the other dtypes fuse
    ew.convert_element_type_p: lambda xp, x, *, new_dtype, weak_type=False: xp.asarray(x).astype(new_dtype),
    ew.integer_pow_p: lambda xp, x, *, y: xp.power(x, x.dtype.type(y)),
    reductions.reduce_max_p: _extremum(reductions.reduce_max_p, "max"),
    reductions.reduce_min_p: _extremum(reductions.reduce_min_p, "min"),
    # the process backend answers with a host scalar; the other collectives keep their operand's module
    collectives.axis_index_p: lambda xp, **params: xp.asarray(collectives.axis_index_p.impl(**params)),
}
