"""Lower a jaxpr to C kernels on the CPU: jit's fused elementwise groups and reductions.

`lower(closed, name)` plans the fusion with the planner the CUDA path uses
(ir/passes/fusion.py, for the target `fusion.C`), writes one C function per
kernel step, all of them in one translation unit per program (one compile,
however many groups: a 10,000-equation program compiles once; kernels whose
functions would be the same but for their names share one). Each kernel step
then becomes one equation of a rewritten jaxpr (of a `_KernelPrimitive`, whose
impl converts the operands, allocates the outputs and makes one ctypes call),
which interpreters/lowering_numpy.py lowers as any other: everything else
(dot_general, gather, scatter, control flow, ...) stays its NumPy calls, with
its scratch buffers, products written into their transposes and chunked runs.
Groups of fewer than C_MIN_ELEMENTS elements and C_MIN_EQUATIONS equations stay
NumPy calls (a kernel call costs some microseconds more than a ufunc call), so a
program of small arrays lowers exactly as without kernels. `as_text()` of a
lowering shows the Python, then the C source. A failed compile falls back to
the NumPy code (a warning) unless ft.config's cpu_kernels is True.

What runs in C (`fusion.C`): the elementwise primitives with a `c_template`,
on float32, float64, the integers and bool; complex values are left to NumPy
calls (NumPy's complex functions are its own, not C99's). float16 runs in C
too (`fusion.C_FLOAT16`) where the compiler has `_Float16` (c_compiler's probe,
status.float16; without it float16 stays NumPy calls): see Float16 below.

Kernels. An elementwise group of shape S is one loop nest over S with its
dimensions merged where every operand allows (a broadcast operand stands
still along the dimensions it is broadcast on): the innermost loop reads each
operand contiguously or as one value, `#pragma omp simd`, and the outer loop
runs over tiles of at most TILE elements, `#pragma omp parallel for` on
`threads` threads (interpreters/c_compiler.kernel_threads(); one in a child of
fork, where libgomp's threads are gone) when the group has at least
PARALLEL_MIN_WORK / (its number of equations) elements. The schedule is dynamic, a tile at a time: on a
busy machine a thread the OS descheduled does not hold the others up (static
schedules ran 2-4x slower there); which thread computes a tile changes no value.
Its body is one `const` local per equation, of the equation's dtype, from its
primitive's `c_template`: every value is rounded to its dtype as NumPy rounds
it (a float32 kernel computes in float32).

Reductions. The reduced elements of each output are split into chunks of
REDUCTION_CHUNK (4096) elements in a fixed order; each chunk is reduced by
NumPy's own pairwise algorithm (8 accumulators over blocks of at most 128
elements, blocks halved down to that), and the chunk results of one output
are combined by the same pairwise algorithm. The (output, chunk) pairs run in
parallel; no sum depends on the thread count, nor on the machine's vector
width (the 8 accumulators are explicit). Where the innermost kept axis is
contiguous (a sum over a batch), COLUMN_BLOCK outputs are reduced at once, one
per SIMD lane, each by the same tree: the same bits, without strided gathers
(5x faster on a (128, 512) float32 sum over axis 0). Error bound: every term of a sum
passes through at most 16 + 3 additions in its block, log2(4096/128) = 5
halvings in its chunk, and 19 + ceil(log2(chunks / 128)) more combining the
chunks, so |computed - exact| <= (43 + log2(n)) * eps * sum(|x|) (eps the
dtype's unit roundoff): of the order of NumPy's own pairwise bound (NumPy's
sums are exact pairwise only along a contiguous axis). tests/test_c_kernels.py
checks sums against NumPy with this bound and across thread counts bit for bit.

Semantics (all checked by tests/test_c_kernels.py): compiled without
-ffast-math (interpreters/c_compiler.py: -fno-math-errno, -ffp-contract=off
so no multiply-add is contracted into an FMA, -fwrapv so signed integers wrap
as NumPy's do), the arithmetic, comparisons, select and conversions are
NumPy's bit for bit: NaN, infinities and signed zeros included; integer
floor division and remainder are Python's (a zero divisor gives 0, as NumPy's
integers do), floats' are NumPy's npy_divmod; floats convert to integers as
NumPy's casts do on x86-64, out of range too (`ft_float64_to_uint32`...).
Transcendentals (exp, log, tanh, ...) are glibc's: the scalar libm or, where
the loop vectorizes, libmvec's vector variants, which `#pragma omp declare
simd notinbranch` on their declarations lets GCC call (`_ZGVdN4v_tanh`,
`_ZGVeN16v_expf`) without -ffast-math: IEEE semantics stay, and they are
within TRANSCENDENTAL_ULPS of NumPy's (measured in the test).

Float16, as NumPy's float16 loops compute it: each operand converted to float,
the float function (tanhf, expf, fmodf, ...; float arithmetic) and the result
rounded to half after every operation. So halves are stored as `_Float16`,
loaded into float locals (`(float)p0[j]`), each equation's value is its float
template's rounded to half (`(float)(_Float16)(...)`), stored as `_Float16`.
A conversion from float64 rounds the double to half directly (C's
`(_Float16)double`, which the probe checks: NumPy's npy_double_to_half, no
double rounding through float); from integers and bool through float, as
NumPy's casts; to integers NumPy's C casts of the float (FLOAT16_HELPERS).
Where NumPy's float16 result rounds inside one primitive too (logistic's exp
and 1 + e, integer_pow's products) or differs from float32's (maximum and
minimum keep the first operand on ties), the c_template has a float16 entry.
Comparisons, select, bool, NaN, infinities, signed zeros, subnormal halves and
overflow to inf (65520) are NumPy's bit for bit; signaling NaNs are loaded
quiet (the F16C conversion), which changes no NaN into a number but in pow,
so pow stays NumPy calls on float16. Transcendentals: glibc's float functions
rounded to half give NumPy's half (whose float16 loops call SVML's on AVX-512)
for all but at most FLOAT16_MISMATCHES of the 65536 halves per function, and
those are FLOAT16_TRANSCENDENTAL_ULPS off (measured, tests/test_c_kernels.py).
Left to NumPy: reductions of float16 (NumPy's half sums accumulate in float32
over its own pairwise blocks and round once, which the C reductions do not),
and pow. GCC 12 does not vectorize _Float16 loads without AVX512-FP16: float16
kernels run a scalar loop (per tile, in parallel as the others).

Safety: the C text holds nothing of the IR but numbers formatted here from
validated values (literals as exact hexadecimal floats, `0x1.8p+1`, or
integers; NaNs by their bits) and identifiers made here (k0, in0, v3, ...),
so a parsed or loaded program cannot put code into it.
"""
from __future__ import annotations

import contextvars
import ctypes
import functools
import math
import os
import re

import numpy as np

from ir.core import ClosedJaxpr, Eqn, Jaxpr, Var
from ir.errors import KernelCompileError
from ir.passes import fusion
from ir.passes.fusion import ElementwiseGroup, LibraryCall, ReductionGroup, plan_fusion

# (OpenMP's threads sleep after each kernel: c_compiler starts the runtime with OMP_WAIT_POLICY=passive)

C_TYPES = {
    np.dtype("float32"): "float", np.dtype("float64"): "double",
    np.dtype("int8"): "int8_t", np.dtype("int16"): "int16_t", np.dtype("int32"): "int32_t",
    np.dtype("int64"): "int64_t", np.dtype("uint8"): "uint8_t", np.dtype("uint16"): "uint16_t",
    np.dtype("uint32"): "uint32_t", np.dtype("uint64"): "uint64_t", np.dtype("bool"): "bool",
    np.dtype("float16"): "_Float16",
}
FLOAT16 = np.dtype("float16")
# float16 values are held in float locals (every half is a float) and computed in float: the
# type of a kernel's locals where it is not the storage type
_COMPUTE_TYPES = {**C_TYPES, FLOAT16: "float"}
_FLOAT_SUFFIX = {np.dtype("float32"): "f", np.dtype("float64"): "", FLOAT16: "f"}

# Elementwise loops split into tiles of this many elements (one tile per task of the parallel loop)
TILE = 16384
# Kernels of at least this much work (elements times equations) run on several threads (OpenMP).
# Below it one thread is about as fast, and a parallel region beside BLAS calls (whose threads
# spin after each product) waits at its closing barrier for a core: the MLP step of
# benchmarks/bench_jit.py ran 2x slower with regions from 262144 elements (its 2-equation SGD
# updates of 400,000 weights) than with none, on 2 busy cores; gelu at 10^7, the cheap chain
# at 8 x 10^6 and the gelu gradient at 10^6 (18 equations) are well above it
PARALLEL_MIN_WORK = 4_000_000


def _parallel_min_elements(equations):
    """The fewest elements for which a kernel of `equations` equations runs on several threads."""
    return -(-PARALLEL_MIN_WORK // max(equations, 1))
# Reductions split each output's elements into chunks of this many, combined in a fixed order
REDUCTION_CHUNK = 4096
# A reduction along rows of a contiguous kept axis (interpreters/lowering_c._column_layout)
# reduces this many outputs at a time, one per SIMD lane; False: one output at a time always
COLUMN_BLOCK = 64
COLUMN_REDUCTIONS = True
# Groups smaller than this stay NumPy calls, unless they have C_MIN_EQUATIONS equations or more:
# a kernel call (its operands' conversions and pointers, the ctypes call) costs about 5 us more
# than a ufunc call's 0.5-1 us (measured on 1 to 1024 elements: x * 2 + 1 took 9 us in C, 3.4-5 us
# as two ufuncs; gelu's 9 equations 7.5-9.5 us in C, 9.2-10.8 us as ufuncs), and a scalar
# function's cached dispatch must not get slower
C_MIN_ELEMENTS = 4096
C_MIN_EQUATIONS = 8
# glibc's libm and libmvec against NumPy's own loops (NumPy has SIMD versions of its own), in units
# in the last place: at most 5 measured on a million points per function and dtype (logf near 1;
# most are within 0-3), tests/test_c_kernels.py; 8 leaves room for what random inputs find
TRANSCENDENTAL_ULPS = 8
# float16: glibc's float functions rounded to half against NumPy's float16 loops, over all 65536
# halves per function (tests/test_c_kernels.py): at most 4 halves differ (exp; sin, cos, tan,
# atan, cosh and logistic 2, expm1 1, tanh, sinh, log, log1p none), each by 1 ulp of half; atan2
# none at 2 million random pairs
FLOAT16_TRANSCENDENTAL_ULPS = 1
FLOAT16_MISMATCHES = 8


# -------------------- literals --------------------

def c_literal(value, dtype) -> str:
    """`value` as a C literal of `dtype`, parenthesized: made from the number (a Python int, or
    float.hex of a float, or a NaN's bits), never from text, so it holds nothing else. A
    float16 literal is its half value as a float literal (kernels compute halves in float)."""
    dtype = np.dtype(dtype)
    if dtype not in C_TYPES:
        raise TypeError(f"no C literal of dtype {dtype}")
    scalar = np.asarray(value).astype(dtype, copy=False)
    if scalar.shape != ():
        raise TypeError(f"a C literal needs one value, got shape {scalar.shape}")
    if dtype == FLOAT16:
        return c_literal(scalar.astype(np.float32), np.float32)  # exact, a NaN's payload too
    if dtype.kind == "b":
        return "((bool)1)" if bool(scalar) else "((bool)0)"
    if dtype.kind == "f":
        number = float(scalar)
        if math.isnan(number):
            bits = int(scalar.view(np.uint32 if dtype.itemsize == 4 else np.uint64))
            return f"ft_f32_bits(0x{bits:08x}U)" if dtype.itemsize == 4 else f"ft_f64_bits(0x{bits:016x}ULL)"
        if math.isinf(number):
            text = "__builtin_inff()" if dtype.itemsize == 4 else "__builtin_inf()"
            return f"(-{text})" if number < 0 else f"({text})"
        return f"({number.hex()}{'f' if dtype.itemsize == 4 else ''})"  # exact: float32 values are doubles
    number = int(scalar)
    ctype = C_TYPES[dtype]
    if dtype.kind == "u":
        return f"(({ctype}){number}ULL)"
    if number == -2**63:
        return f"(({ctype})(-9223372036854775807LL - 1))"
    return f"(({ctype}){number}LL)"


# -------------------- the prelude --------------------

# Math functions with vector variants in glibc's libmvec (glibc >= 2.35 has all of these, in double
# and float): declared `omp declare simd` so that GCC may call them on vectors without -ffast-math.
VECTOR_MATH = ("sin", "cos", "tan", "atan", "sinh", "cosh", "tanh", "exp", "log", "log1p", "expm1")
VECTOR_MATH_2 = ("pow", "atan2")


def _prelude():
    lines = ["// ftrans C kernels: generated by interpreters/lowering_c.py",
             "#include <stdint.h>", "#include <stdbool.h>", "#include <stdlib.h>", "#include <string.h>",
             "#include <math.h>", "",
             "// glibc's vector variants (libmvec) of these, with IEEE semantics: no -ffast-math needed"]
    for name in VECTOR_MATH:
        lines += ["#pragma omp declare simd notinbranch", f"double {name}(double);",
                  "#pragma omp declare simd notinbranch", f"float {name}f(float);"]
    for name in VECTOR_MATH_2:
        lines += ["#pragma omp declare simd notinbranch", f"double {name}(double, double);",
                  "#pragma omp declare simd notinbranch", f"float {name}f(float, float);"]
    return "\n".join(lines) + "\n" + _HELPERS


_HELPERS = r"""
static inline float ft_f32_bits(uint32_t bits) { float f; memcpy(&f, &bits, sizeof f); return f; }
static inline double ft_f64_bits(uint64_t bits) { double d; memcpy(&d, &bits, sizeof d); return d; }

// Floor division and remainder of floats as NumPy's npy_divmod: the remainder takes the
// divisor's sign, the quotient is the integer nearest (a - mod) / b; a zero divisor gives
// a / b and fmod's NaN.
#define FT_FLOAT_DIVMOD(T, NAME, SUFFIX) \
static inline T ft_divmod_##NAME(T a, T b, T* mod_out) { \
  T mod = fmod##SUFFIX(a, b); \
  if (b == 0) { *mod_out = mod; return a / b; } \
  T div = (a - mod) / b; \
  if (mod != 0) { \
    if ((b < 0) != (mod < 0)) { mod += b; div -= 1; } \
  } else { \
    mod = copysign##SUFFIX((T)0, b); \
  } \
  T quotient; \
  if (div != 0) { \
    quotient = floor##SUFFIX(div); \
    if (div - quotient > (T)0.5) quotient += 1; \
  } else { \
    quotient = copysign##SUFFIX((T)0, a / b); \
  } \
  *mod_out = mod; \
  return quotient; \
} \
static inline T ft_floor_divide_##NAME(T a, T b) { T m; return ft_divmod_##NAME(a, b, &m); } \
static inline T ft_mod_##NAME(T a, T b) { T m; ft_divmod_##NAME(a, b, &m); return m; }
FT_FLOAT_DIVMOD(float, float32, f)
FT_FLOAT_DIVMOD(double, float64, )

// Integers: Python's floor division and remainder. NumPy gives 0 for a zero divisor, and
// MIN // -1 wraps to MIN (C leaves both undefined). Powers by squaring, wrapping as NumPy's.
#define FT_INTEGER(T, NAME, SIGNED) \
static inline T ft_floor_divide_##NAME(T a, T b) { \
  if (b == 0) return 0; \
  if (SIGNED && b == (T)-1) return (T)(0ULL - (unsigned long long)a); \
  T q = a / b; \
  if (a % b != 0 && ((a < 0) != (b < 0))) q -= 1; \
  return q; \
} \
static inline T ft_mod_##NAME(T a, T b) { \
  if (b == 0 || (SIGNED && b == (T)-1)) return 0; \
  T r = a % b; \
  if (r != 0 && ((r < 0) != (b < 0))) r += b; \
  return r; \
} \
static inline T ft_integer_pow_##NAME(T a, T b) { \
  if (SIGNED && b < 0) return a == 1 ? 1 : (a == (T)-1 ? ((b & 1) ? (T)-1 : 1) : 0); \
  unsigned long long result = 1, base = (unsigned long long)a; \
  for (; b != 0; b >>= 1) { \
    if (b & 1) result *= base; \
    base *= base; \
  } \
  return (T)result; \
}
FT_INTEGER(int8_t, int8, 1) FT_INTEGER(int16_t, int16, 1) FT_INTEGER(int32_t, int32, 1)
FT_INTEGER(int64_t, int64, 1) FT_INTEGER(uint8_t, uint8, 0) FT_INTEGER(uint16_t, uint16, 0)
FT_INTEGER(uint32_t, uint32, 0) FT_INTEGER(uint64_t, uint64, 0)

// Floats to integers as NumPy's casts on x86-64, out of range too: int32 and int64 as cvttsd2si,
// whose out-of-range (and NaN) value is the type's MIN, written out (a C cast out of range is
// undefined, and GCC folds constants so); the narrow types through int32; unsigned 32 and 64
// bits through the signed conversion of x, or of x - 2^31 (2^63) with the top bit flipped back.
#define FT_TO_INTEGERS(T, NAME) \
static inline int32_t ft_##NAME##_to_int32(T x) { \
  return x >= (T)-2147483648.0 && x < (T)2147483648.0 ? (int32_t)x : INT32_MIN; \
} \
static inline int64_t ft_##NAME##_to_int64(T x) { \
  return x >= (T)-9223372036854775808.0 && x < (T)9223372036854775808.0 ? (int64_t)x : INT64_MIN; \
} \
static inline int8_t ft_##NAME##_to_int8(T x) { return (int8_t)ft_##NAME##_to_int32(x); } \
static inline int16_t ft_##NAME##_to_int16(T x) { return (int16_t)ft_##NAME##_to_int32(x); } \
static inline uint8_t ft_##NAME##_to_uint8(T x) { return (uint8_t)ft_##NAME##_to_int32(x); } \
static inline uint16_t ft_##NAME##_to_uint16(T x) { return (uint16_t)ft_##NAME##_to_int32(x); } \
static inline uint32_t ft_##NAME##_to_uint32(T x) { \
  return x >= (T)2147483648.0 ? (uint32_t)ft_##NAME##_to_int32(x - (T)2147483648.0) ^ 0x80000000U \
                              : (uint32_t)ft_##NAME##_to_int32(x); \
} \
static inline uint64_t ft_##NAME##_to_uint64(T x) { \
  return x >= (T)9223372036854775808.0 ? (uint64_t)ft_##NAME##_to_int64(x - (T)9223372036854775808.0) ^ (1ULL << 63) \
                                       : (uint64_t)ft_##NAME##_to_int64(x); \
}
FT_TO_INTEGERS(float, float32)
FT_TO_INTEGERS(double, float64)
"""

PRELUDE = _prelude()

# What kernels on float16 use besides PRELUDE (only a translation unit with float16 kernels has
# it: _Float16 may not exist, and the other units stay as they were). Halves are computed in
# float, as NumPy's float16 loops do (npy_half_to_float, the float function, npy_float_to_half):
# floor division and remainder are float32's; conversions to integers are NumPy's C casts of
# the float (`(npy_int)npy_half_to_float(x)`, compiled as on x86-64: the narrow types through
# int32, uint32 through int64, int64 and uint64 as float32's).
FLOAT16_HELPERS = r"""
// float16: stored as _Float16, held in float locals, rounded to half after every operation
static inline float ft_floor_divide_float16(float a, float b) { return ft_floor_divide_float32(a, b); }
static inline float ft_mod_float16(float a, float b) { return ft_mod_float32(a, b); }
static inline int8_t ft_float16_to_int8(float x) { return ft_float32_to_int8(x); }
static inline int16_t ft_float16_to_int16(float x) { return ft_float32_to_int16(x); }
static inline int32_t ft_float16_to_int32(float x) { return ft_float32_to_int32(x); }
static inline int64_t ft_float16_to_int64(float x) { return ft_float32_to_int64(x); }
static inline uint8_t ft_float16_to_uint8(float x) { return ft_float32_to_uint8(x); }
static inline uint16_t ft_float16_to_uint16(float x) { return ft_float32_to_uint16(x); }
static inline uint32_t ft_float16_to_uint32(float x) { return (uint32_t)ft_float32_to_int64(x); }
static inline uint64_t ft_float16_to_uint64(float x) { return ft_float32_to_uint64(x); }
"""


# -------------------- expressions --------------------

def template_text(template, dtype):
    """A c_template's text for operands of `dtype`: a str, or a dict's entry for the dtype
    itself (a np.dtype key: float16's own, where rounding to half inside the expression is
    NumPy's) or else for its kind (a str key of kinds, "fiub")."""
    if not isinstance(template, dict):
        return template
    if dtype in template:
        return template[dtype]
    return next(text for kinds, text in template.items() if isinstance(kinds, str) and dtype.kind in kinds)


def _expression(eqn, operands):
    """The C expression of one elementwise equation, from its primitive's c_template."""
    template = eqn.primitive.c_template
    if callable(template):
        template = template(**eqn.params)
    first = eqn.invars[0].aval.dtype
    return template_text(template, first).format(*operands, out_type=_COMPUTE_TYPES[eqn.outvars[0].aval.dtype],
                                                 f=_FLOAT_SUFFIX.get(first, ""), t=first.name)


def _body(eqns, inputs, results):
    """C statements computing `eqns` from the loaded inputs (their values named x0, x1, ...):
    one const local per equation (fusion.kernel_statements). Returns the statements and the
    C expression of each of `results`."""
    def statement(eqn, name, operands):
        dtype = eqn.outvars[0].aval.dtype
        expression = _expression(eqn, operands)
        if dtype == FLOAT16:  # rounded from the expression's type: a double directly
            return f"const float {name} = (float)(_Float16)({expression});"
        return f"const {_COMPUTE_TYPES[dtype]} {name} = ({_COMPUTE_TYPES[dtype]})({expression});"
    return fusion.kernel_statements(eqns, inputs, results, lambda k: f"x{k}", c_literal, statement)


def _load(k, dtype, element):
    """The statement loading input k's element (C text) into x`k`: a half into a float."""
    if dtype == FLOAT16:
        return f"const float x{k} = (float){element};"
    return f"const {C_TYPES[dtype]} x{k} = {element};"


def _store(k, dtype, value):
    return f"q{k}[j] = (_Float16){value};" if dtype == FLOAT16 else f"q{k}[j] = {value};"


# -------------------- loop layouts --------------------

def _load_strides(load_shape_, shape):
    """Per dimension of `shape`: the stride (in elements) of a C-contiguous input viewed with
    `load_shape_` (its own shape with 1s where it broadcasts, or () for a rank-0 input), 0
    where it broadcasts."""
    if load_shape_ == ():
        return [0] * len(shape)
    strides, stride = [0] * len(shape), 1
    for dim in reversed(range(len(shape))):
        if load_shape_[dim] != 1:
            strides[dim] = stride
            stride *= load_shape_[dim]
    return strides


def _merged(dims):
    """`dims`, [(size, [stride per operand])] outer to inner, without dimensions of size 1 and
    with neighbours merged where every operand steps through both as through one."""
    merged = []
    for size, strides in dims:
        if size == 1:
            continue
        if merged and all(outer == inner * size for outer, inner in zip(merged[-1][1], strides)):
            merged[-1] = (merged[-1][0] * size, list(strides))
        else:
            merged.append((size, list(strides)))
    return merged


def _coordinates(dims, counter, prefix):
    """Statements giving each dimension of `dims` its coordinate in the row-major index
    `counter`, as `prefix`0, `prefix`1, ...; returns (statements, names)."""
    if not dims:
        return [], []
    names = [f"{prefix}{d}" for d in range(len(dims))]
    if len(dims) == 1:
        return [f"const int64_t {names[0]} = {counter};"], names
    lines = [f"int64_t {prefix}rest = {counter};"]
    for d in reversed(range(1, len(dims))):
        lines.append(f"const int64_t {names[d]} = {prefix}rest % {dims[d][0]}LL; {prefix}rest /= {dims[d][0]}LL;")
    lines.append(f"const int64_t {names[0]} = {prefix}rest;")
    return lines, names


def _offset(dims, names, k):
    terms = [f"{name} * {strides[k]}LL" for (size, strides), name in zip(dims, names) if strides[k]]
    return " + ".join(terms) or "0"


def _indexed(pointer, stride, index):
    if stride == 0:
        return f"{pointer}[0]"
    return f"{pointer}[{index}]" if stride == 1 else f"{pointer}[{index} * {stride}LL]"


def _indent(lines, depth):
    return [" " * depth + line for line in lines]


# -------------------- kernels --------------------

class Kernel:
    """One generated C function: `name`, `inputs` [(dtype, load shape)], `outputs` [dtype],
    `shape` (of its loop: the group's shape, or the reduced operand's), `size` (output
    elements), `text` (the C function), `float16` (whether it computes on halves)."""

    def __init__(self, name, inputs, outputs, shape, size, text, returns_status=False, float16=False):
        self.name, self.inputs, self.outputs, self.shape = name, inputs, outputs, tuple(shape)
        self.size, self.text, self.returns_status, self.float16 = size, text, returns_status, float16

    def signature(self):
        return ([ctypes.c_void_p] * (len(self.inputs) + len(self.outputs)) + [ctypes.c_int64, ctypes.c_int],
                ctypes.c_int if self.returns_status else None)


def _parameters(inputs, outputs):
    params = [f"const {C_TYPES[d]}* restrict in{k}" for k, (d, _) in enumerate(inputs)]
    params += [f"{C_TYPES[d]}* restrict out{k}" for k, d in enumerate(outputs)]
    return ", ".join(params + ["int64_t n", "int threads"])


def elementwise_kernel(group: ElementwiseGroup, name) -> Kernel:
    shape = tuple(group.shape)
    size = math.prod(shape)
    inputs = [(l.var.aval.dtype, l.shape) for l in group.inputs]
    outputs = [v.aval.dtype for v in group.outputs]
    lines, results = _body(group.eqns, group.inputs, group.outputs)
    operand_strides = [_load_strides(s, shape) for _, s in inputs] + [_load_strides(shape, shape)] * len(outputs)
    dims = _merged([(shape[d], [strides[d] for strides in operand_strides]) for d in range(len(shape))])
    if not dims:
        dims = [(1, [0] * len(operand_strides))]
    *outer, (inner, inner_strides) = dims
    rows = math.prod(size for size, _ in outer)
    if outer:
        tiles_per_row = -(-inner // TILE)
        tiles, tiles_per_row, inner = f"{rows * tiles_per_row}LL", f"{tiles_per_row}LL", f"{inner}LL"
    else:  # one loop over n elements (= its size): the kernel runs on any length
        tiles, tiles_per_row, inner = f"((n + {TILE - 1}LL) / {TILE}LL)", f"((n + {TILE - 1}LL) / {TILE}LL)", "n"
    coordinates, names = _coordinates(outer, "row", "c")
    pointers = [f"const {C_TYPES[d]}* restrict p{k} = in{k} + {_offset(outer, names, k)};"
                for k, (d, _) in enumerate(inputs)]
    pointers += [f"{C_TYPES[d]}* restrict q{k} = out{k} + row * {inner};" for k, d in enumerate(outputs)]
    loads = [_load(k, d, _indexed(f"p{k}", inner_strides[k], "j")) for k, (d, _) in enumerate(inputs)]
    stores = [_store(k, d, r) for k, (d, r) in enumerate(zip(outputs, results))]
    text = [f"// {name}: elementwise over {shape}: {len(group.eqns)} equations",
            f"void {name}({_parameters(inputs, outputs)}) {{",
            f"  #pragma omp parallel for num_threads(threads) schedule(dynamic, 1) "
            f"if(n >= {_parallel_min_elements(len(lines))}LL)",
            f"  for (int64_t tile = 0; tile < {tiles}; tile++) {{",
            f"    const int64_t row = tile / {tiles_per_row}, lo = (tile % {tiles_per_row}) * {TILE}LL;",
            f"    const int64_t hi = lo + {TILE}LL < {inner} ? lo + {TILE}LL : {inner};"]
    text += _indent(coordinates + pointers, 4)
    text += ["    #pragma omp simd", "    for (int64_t j = lo; j < hi; j++) {"]
    text += _indent(loads + lines + stores, 6)
    text += ["    }", "  }", "}"]
    return Kernel(name, inputs, outputs, shape, size, "\n".join(text), float16=_has_float16(group.eqns, inputs))


def reduction_kernel(group: ReductionGroup, name) -> Kernel:
    red = group.reduction
    operand, dtype = red.invars[0], red.outvars[0].aval.dtype
    shape, axes = tuple(operand.aval.shape), tuple(red.params["axes"])
    ctype = C_TYPES[dtype]
    inputs = [(l.var.aval.dtype, l.shape) for l in group.inputs]
    template = red.primitive.c_template
    identity = template["identity"](dtype) if callable(template["identity"]) else template["identity"]
    combine = template_text(template["combine"], dtype)
    kept = [d for d in range(len(shape)) if d not in axes]
    reduced = [d for d in range(len(shape)) if d in axes]
    outputs_count = math.prod(shape[d] for d in kept)
    count = math.prod(shape[d] for d in reduced)
    strides = [_load_strides(s, shape) for _, s in inputs]
    outer = _merged([(shape[d], [s[d] for s in strides]) for d in kept])
    inner = _merged([(shape[d], [s[d] for s in strides]) for d in reduced])
    chunks = max(-(-count // REDUCTION_CHUNK), 1)
    op, pairwise = f"{name}_op", f"{name}_pairwise"
    text = [f"// {name}: {red.primitive.name} over axes {axes} of {shape}: a map of {len(group.eqns)} equations",
            f"static inline {ctype} {op}({ctype} a, {ctype} b) {{ return ({ctype})({combine.format('a', 'b')}); }}",
            # NumPy's pairwise summation (numpy/_core/src/umath/loops_utils.h.src), with the combine
            f"static {ctype} {pairwise}(const {ctype}* restrict a, int64_t n) {{",
            "  if (n < 8) {",
            f"    {ctype} res = a[0];",
            f"    for (int64_t i = 1; i < n; i++) res = {op}(res, a[i]);",
            "    return res;",
            "  }",
            "  if (n <= 128) {",
            f"    {ctype} r[8];",
            "    for (int j = 0; j < 8; j++) r[j] = a[j];",
            "    int64_t i;",
            "    for (i = 8; i < n - (n % 8); i += 8)",
            f"      for (int j = 0; j < 8; j++) r[j] = {op}(r[j], a[i + j]);",
            f"    {ctype} res = {op}({op}({op}(r[0], r[1]), {op}(r[2], r[3])), {op}({op}(r[4], r[5]), {op}(r[6], r[7])));",
            f"    for (; i < n; i++) res = {op}(res, a[i]);",
            "    return res;",
            "  }",
            "  int64_t n2 = n / 2;",
            "  n2 -= n2 % 8;",
            f"  return {op}({pairwise}(a, n2), {pairwise}(a + n2, n - n2));",
            "}",
            f"int {name}({_parameters(inputs, [dtype])}) {{"]
    if count == 0 or outputs_count == 0:
        text += [f"  for (int64_t o = 0; o < {outputs_count}LL; o++) out0[o] = {c_literal(identity, dtype)};",
                 "  return 0;", "}"]
        return Kernel(name, inputs, [dtype], shape, outputs_count, "\n".join(text), returns_status=True)
    columns = _column_layout(outer) if COLUMN_REDUCTIONS else None
    if columns is not None:
        rest, (width, width_strides) = columns
        text[-1:-1] = _column_functions(name, ctype, op, group, inputs, inner, width_strides, operand)
        text += _column_tasks(name, ctype, op, group, inputs, outputs_count, count, chunks, rest, width, identity)
        return Kernel(name, inputs, [dtype], shape, outputs_count, "\n".join(text), returns_status=True,
                      float16=_has_float16(group.eqns, inputs))
    tasks = outputs_count * chunks
    direct = not group.eqns and len(inner) == 1 and inner[0][1][0] == 1  # the operand itself, contiguous
    text += _parallel_tasks(ctype, outputs_count, chunks, tasks, outputs_count * count, len(group.eqns) + 1)
    text += [f"    const int64_t o = task / {chunks}LL, lo = (task % {chunks}LL) * {REDUCTION_CHUNK}LL;",
             f"    const int64_t len = {count}LL - lo < {REDUCTION_CHUNK}LL ? {count}LL - lo : {REDUCTION_CHUNK}LL;"]
    coordinates, names = _coordinates(outer, "o", "c")
    text += _indent(coordinates, 4)
    text += _indent([f"const {C_TYPES[d]}* restrict p{k} = in{k} + {_offset(outer, names, k)};"
                     for k, (d, _) in enumerate(inputs)], 4)
    # the identity combined first, as NumPy's reductions start from it (a sum of -0.0s is +0.0)
    identity_text = c_literal(identity, dtype)
    first = (lambda total: f"{op}({identity_text}, {total})") if chunks == 1 else (lambda total: total)
    if direct:
        text += ["    parts[task] = " + first(f"{pairwise}(p0 + lo, len)") + ";", "  }"]
    else:
        lines, (result,) = _body(group.eqns, group.inputs, [operand])
        if len(inner) == 1:
            loads = [_load(k, d, _indexed(f"p{k}", inner[0][1][k], "r")) for k, (d, _) in enumerate(inputs)]
            index_lines = []
        else:
            index_lines, rnames = _coordinates(inner, "r", "e")
            loads = [_load(k, d, f"p{k}[{_offset(inner, rnames, k)}]") for k, (d, _) in enumerate(inputs)]
        text += [f"    {ctype} buffer[{REDUCTION_CHUNK}];", "    #pragma omp simd",
                 "    for (int64_t i = 0; i < len; i++) {", "      const int64_t r = lo + i;"]
        text += _indent(index_lines + loads + lines + [f"buffer[i] = {result};"], 6)
        text += ["    }", f"    parts[task] = {first(f'{pairwise}(buffer, len)')};", "  }"]
    if chunks > 1:
        text += [f"  for (int64_t o = 0; o < {outputs_count}LL; o++) "
                 f"out0[o] = {op}({identity_text}, {pairwise}(parts + o * {chunks}LL, {chunks}LL));", "  free(parts);"]
    text += ["  return 0;", "}"]
    return Kernel(name, inputs, [dtype], shape, outputs_count, "\n".join(text), returns_status=True,
                  float16=_has_float16(group.eqns, inputs))


def _has_float16(eqns, inputs):
    """Whether a kernel of `eqns` reading `inputs` has float16 values (it needs FLOAT16_HELPERS)."""
    return any(d == FLOAT16 for d, _ in inputs) or any(v.aval.dtype == FLOAT16 for e in eqns for v in e.outvars)


def _parallel_tasks(ctype, outputs_count, chunks, tasks, work, equations):
    """The opening of a reduction's task loop: `parts`, the chunk results (out0 itself when
    each output is one chunk), and the parallel loop over `tasks`."""
    text = [f"  {ctype}* parts = out0;"]
    if chunks > 1:
        text += [f"  parts = ({ctype}*)malloc({outputs_count * chunks}LL * sizeof({ctype}));", "  if (!parts) return 1;"]
    return text + [f"  #pragma omp parallel for num_threads(threads) schedule(dynamic, 1) "
                   f"if({work}LL >= {_parallel_min_elements(equations)}LL)",
                   f"  for (int64_t task = 0; task < {tasks}LL; task++) {{"]


def _column_layout(outer):
    """For a reduction whose innermost kept dimension every operand reads contiguously (or
    broadcasts along): the other kept dimensions and that one, else None. Such a reduction
    (a bias gradient: a sum over the batch) runs COLUMN_BLOCK outputs at a time, the
    pairwise tree of each computed in SIMD lanes across the block: the same tree, so the
    same bits, as one output at a time, without the strided gathers."""
    if not outer:
        return None
    *rest, (width, strides) = outer
    if width < 2 or any(stride not in (0, 1) for stride in strides) or 1 not in strides:
        return None
    return rest, (width, strides)


def _column_functions(name, ctype, op, group, inputs, inner, width_strides, operand):
    """The C functions of a column reduction: `<name>_value(p.., r, c)`, the mapped value
    at reduced index r of column c, and `<name>_rows`, NumPy's pairwise algorithm over the
    rows lo..lo+n of columns c0..c0+w at once (w <= COLUMN_BLOCK), into res[0..w)."""
    value, rows, block = f"{name}_value", f"{name}_rows", COLUMN_BLOCK
    pointers = ", ".join(f"const {C_TYPES[d]}* restrict p{k}" for k, (d, _) in enumerate(inputs))
    passed = ", ".join(f"p{k}" for k in range(len(inputs)))
    index_lines, rnames = _coordinates(inner, "r", "e")
    loads = [_load(k, d, f"p{k}[{_offset(inner, rnames, k)} + {'c' if width_strides[k] else '0'}]")
             for k, (d, _) in enumerate(inputs)]
    lines, (result,) = _body(group.eqns, group.inputs, [operand])

    def over_block(statement):
        return ["#pragma omp simd", f"for (int64_t c = 0; c < w; c++) {statement}"]

    def at(row):
        return f"{value}({passed}, {row}, c0 + c)"
    text = [f"static inline __attribute__((always_inline)) {ctype} {value}({pointers}, int64_t r, int64_t c) {{"]
    text += _indent(index_lines + loads + lines + [f"return {result};"], 2) + ["}"]
    text += [f"static void {rows}({pointers}, int64_t lo, int64_t n, int64_t c0, int64_t w, {ctype}* restrict res) {{",
             "  if (n < 8) {"]
    text += _indent(over_block(f"res[c] = {at('lo')};"), 4)
    text += ["    for (int64_t i = 1; i < n; i++) {"]
    text += _indent(over_block(f"res[c] = {op}(res[c], {at('lo + i')});"), 6)
    text += ["    }", "    return;", "  }", "  if (n <= 128) {", f"    {ctype} r[8][{block}];",
             "    for (int j = 0; j < 8; j++) {"]
    text += _indent(over_block(f"r[j][c] = {at('lo + j')};"), 6)
    text += ["    }", "    int64_t i;", "    for (i = 8; i < n - (n % 8); i += 8) {", "      for (int j = 0; j < 8; j++) {"]
    text += _indent(over_block(f"r[j][c] = {op}(r[j][c], {at('lo + i + j')});"), 8)
    text += ["      }", "    }"]
    text += _indent(over_block(f"res[c] = {op}({op}({op}(r[0][c], r[1][c]), {op}(r[2][c], r[3][c])), "
                               f"{op}({op}(r[4][c], r[5][c]), {op}(r[6][c], r[7][c])));"), 4)
    text += ["    for (; i < n; i++) {"]
    text += _indent(over_block(f"res[c] = {op}(res[c], {at('lo + i')});"), 6)
    text += ["    }", "    return;", "  }", "  int64_t n2 = n / 2;", "  n2 -= n2 % 8;", f"  {ctype} right[{block}];",
             f"  {rows}({passed}, lo, n2, c0, w, res);", f"  {rows}({passed}, lo + n2, n - n2, c0, w, right);"]
    text += _indent(over_block(f"res[c] = {op}(res[c], right[c]);"), 2)
    return text + ["}"]


def _column_tasks(name, ctype, op, group, inputs, outputs_count, count, chunks, rest, width, identity):
    """The task loop of a column reduction: a task is (the other kept coordinates, a block of
    columns, a chunk of rows); chunk results combine as in the one-output-at-a-time loop."""
    blocks = -(-width // COLUMN_BLOCK)
    tasks = math.prod(size for size, _ in rest) * blocks * chunks
    identity_text = c_literal(identity, group.reduction.outvars[0].aval.dtype)
    text = _parallel_tasks(ctype, outputs_count, chunks, tasks, outputs_count * count, len(group.eqns) + 1)
    text += [f"    const int64_t outer = task / {blocks * chunks}LL, block = (task / {chunks}LL) % {blocks}LL;",
             f"    const int64_t lo = (task % {chunks}LL) * {REDUCTION_CHUNK}LL;",
             f"    const int64_t len = {count}LL - lo < {REDUCTION_CHUNK}LL ? {count}LL - lo : {REDUCTION_CHUNK}LL;",
             f"    const int64_t c0 = block * {COLUMN_BLOCK}LL;",
             f"    const int64_t w = {width}LL - c0 < {COLUMN_BLOCK}LL ? {width}LL - c0 : {COLUMN_BLOCK}LL;"]
    coordinates, names = _coordinates(rest, "outer", "d")
    text += _indent(coordinates, 4)
    text += _indent([f"const {C_TYPES[d]}* restrict p{k} = in{k} + {_offset(rest, names, k)};"
                     for k, (d, _) in enumerate(inputs)], 4)
    passed = ", ".join(f"p{k}" for k in range(len(inputs)))
    text += [f"    {ctype} res[{COLUMN_BLOCK}];", f"    {name}_rows({passed}, lo, len, c0, w, res);",
             "    for (int64_t c = 0; c < w; c++) {", f"      const int64_t o = outer * {width}LL + c0 + c;"]
    # the identity combined first, as NumPy's reductions start from it (a sum of -0.0s is +0.0)
    text += [f"      parts[o] = {op}({identity_text}, res[c]);" if chunks == 1 else
             f"      parts[o * {chunks}LL + task % {chunks}LL] = res[c];", "    }", "  }"]
    if chunks > 1:
        text += [f"  for (int64_t o = 0; o < {outputs_count}LL; o++) "
                 f"out0[o] = {op}({identity_text}, {name}_pairwise(parts + o * {chunks}LL, {chunks}LL));",
                 "  free(parts);"]
    return text + ["  return 0;", "}"]


def translation_unit(kernels) -> str:
    """The C source of a program's kernels: the prelude (FLOAT16_HELPERS too where a kernel
    computes on float16), then each kernel."""
    kernels = list(kernels)
    helpers = FLOAT16_HELPERS if any(k.float16 for k in kernels) else ""
    return PRELUDE + helpers + "\n" + "\n\n".join(k.text for k in kernels) + "\n"


# -------------------- lowering --------------------

def _goes_to_c(step):
    """Whether a kernel step runs in C: large enough, or long enough, that a ctypes call pays."""
    if isinstance(step, ElementwiseGroup):
        size, count = math.prod(step.shape), len(step.eqns)
    else:
        size, count = math.prod(step.reduction.invars[0].aval.shape), len(step.eqns) + 1
    return size >= C_MIN_ELEMENTS or (size > 0 and count >= C_MIN_EQUATIONS)


def c_target():
    """The fusion target of the C kernels: float16 too where the compiler has _Float16."""
    from interpreters import c_compiler
    return fusion.C_FLOAT16 if c_compiler.compiler_status().float16 else fusion.C


def kernel_plan(closed, name="jitted", first=0):
    """The fusion plan for C, and a Kernel for each kernel step that runs in C (None for those
    that stay NumPy calls), in step order, numbered from `first` (`<name>_k<first>`, ...)."""
    plan = plan_fusion(closed, c_target())
    name = _c_identifier(name)
    kernels, n = [], first
    for step in plan.steps:
        if isinstance(step, LibraryCall):
            continue
        if not _goes_to_c(step):
            kernels.append(None)
            continue
        make = elementwise_kernel if isinstance(step, ElementwiseGroup) else reduction_kernel
        kernels.append(make(step, f"{name}_k{n}"))
        n += 1
    return plan, kernels


class _TranslationUnit:
    """The kernels of one jitted program and of every loop body and branch in it, compiled
    as one source: their launchers are bound to the library once the whole program is
    lowered (a body is lowered while the program that holds it is)."""

    def __init__(self):
        self.kernels, self.launchers = [], []


# the unit of the program being lowered (None: none is); _NO_KERNELS: lowering NumPy code only
_open_unit = contextvars.ContextVar("ftrans_c_translation_unit", default=None)
_NO_KERNELS = "no kernels"


def lower(closed, name="jitted", body=False):
    """`closed` lowered to a LoweredNumpy whose function calls C kernels (a body's: None
    when no kernel step of its own is large enough to run in C, and lowering_numpy then
    lowers it as it does).

    Each kernel step becomes one equation of a kernel "primitive" of its own (its impl
    converts the operands, allocates the outputs and calls the kernel); the jaxpr of those
    and of the plan's other equations is lowered by lowering_numpy as any other, with its
    buffer reuse, its products written into their transposes and its chunked runs. The
    kernels of loop bodies and branches join their program's translation unit: a program
    compiles once, however many bodies it holds."""
    from interpreters import c_compiler, lowering_numpy

    unit = _open_unit.get()
    if unit is _NO_KERNELS:
        return None
    if unit is not None:  # a body of a program being lowered: its kernels join the program's
        return _lowered_with_kernels(closed, name, body, unit)
    unit = _TranslationUnit()
    token = _open_unit.set(unit)
    try:
        lowered = _lowered_with_kernels(closed, name, body, unit)
        if lowered is None:  # no kernel of its own: those of its bodies may still join the unit
            lowered = lowering_numpy.lower(closed, name, body=body, c_kernels=False)
    finally:
        _open_unit.reset(token)
    if not unit.kernels:
        return lowered
    distinct, functions = _distinct_functions(unit.kernels)
    c_source = translation_unit(distinct)
    try:
        library = c_compiler.load_library(c_source)
    except KernelCompileError as error:
        if c_compiler.cpu_kernels_setting() is True:  # required: the error says what failed
            raise
        # asked for by default only: the NumPy code computes the same, so the program still runs
        c_compiler.log.warning("C kernels of %s not compiled, running NumPy code instead: %s", name, error)
        token = _open_unit.set(_NO_KERNELS)
        try:
            return lowering_numpy.lower(closed, name, body=body, c_kernels=False)
        finally:
            _open_unit.reset(token)
    for launcher in unit.launchers:
        launcher.bind(library, functions[launcher.kernel.name])
    lowered.source += f"\n// the C kernels of {name}: one translation unit\n{c_source}"
    lowered.c_source, lowered.library = c_source, library
    return lowered


def _distinct_functions(kernels):
    """The kernels whose C functions differ, in order, and {kernel name: the function it
    calls}: kernels whose generated text is the same but for their names (the steps of a
    loop that Python unrolled, the layers of one shape) share the first one's function,
    compiled once."""
    first_of, distinct, functions = {}, [], {}
    for kernel in kernels:
        # a kernel's text names itself and its helpers (`<name>_op`); never another kernel
        text = re.sub(re.escape(kernel.name) + r"(?![0-9])", "@", kernel.text)
        first = first_of.setdefault(text, kernel)
        if first is kernel:
            distinct.append(kernel)
        functions[kernel.name] = first.name
    return distinct, functions


def _lowered_with_kernels(closed, name, body, unit):
    """`closed` lowered with its kernel steps as calls of launchers, its kernels added to
    `unit`; None when no step of its own runs in C (its bodies' kernels are in `unit` then)."""
    from interpreters import c_compiler, lowering_numpy

    plan, kernels = kernel_plan(closed, name, first=len(unit.kernels))
    if not any(k is not None for k in kernels):
        return None
    unit.kernels += [k for k in kernels if k is not None]
    threads = max(int(c_compiler.kernel_threads()), 1)
    jaxpr = closed.jaxpr
    results = {x for x in jaxpr.outvars if type(x) is Var}
    defined = set(jaxpr.constvars) | set(jaxpr.invars)
    eqns, kernel_steps = [], iter(kernels)
    for step in plan.steps:
        if isinstance(step, LibraryCall):
            members = [step.eqn]
        else:
            kernel = next(kernel_steps)
            members = step.eqns + ([step.reduction] if isinstance(step, ReductionGroup) else [])
            if kernel is not None:
                outvars = step.outputs if isinstance(step, ElementwiseGroup) else step.reduction.outvars
                launch = _Launcher(kernel, outvars, results, threads)
                unit.launchers.append(launch)
                members = [Eqn(_KernelPrimitive(kernel.name, launch), [load.var for load in step.inputs],
                               list(outvars), {})]
        for eqn in members:
            if eqn.outvars and all(v in defined for v in eqn.outvars):
                continue  # computed already (a reduction's map recomputes what a group also writes)
            eqns.append(eqn)
            defined.update(eqn.outvars)
    rewritten = ClosedJaxpr(Jaxpr(jaxpr.constvars, jaxpr.invars, eqns, jaxpr.outvars), closed.consts)
    # its bodies are lowered here, their kernels joining `unit`
    return lowering_numpy.lower(rewritten, name, body=body, c_kernels=False)


# In a child of fork, libgomp's thread pool is gone (its threads were the parent's) and a
# parallel region would wait for them: kernels there run on the calling thread alone.
_forked = False


def _after_fork_in_child():
    global _forked
    _forked = True


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class _KernelPrimitive:
    """What lowering_numpy needs of a primitive, for one C kernel: its name (that of the
    kernel: the generated code calls `impl_<name>`), its impl (the launcher), and that it
    has several results (a list)."""
    multiple_results = True
    elementwise = False
    effectful = False
    takes_out_buffers = True  # lowering_numpy passes scratch buffers for its large intermediates

    def __init__(self, name, impl):
        self.name, self.impl = name, impl

    def __repr__(self):
        return self.name


class _Launcher:
    """The Python side of one kernel, called as its impl: operands as C-contiguous arrays
    of their dtypes, the outputs written into the scratch buffers lowering_numpy passes as
    `out` (a tuple, None where an output has none), else allocated (a large result of the
    function recycled, as lowering_numpy's are), one ctypes call into the function that
    `bind` took from the compiled library."""

    def __init__(self, kernel, outvars, results, threads):
        from interpreters import lowering_numpy
        self.kernel, self.threads, self.function = kernel, threads, None
        self.in_dtypes = [dtype for dtype, _ in kernel.inputs]
        self.allocators = []
        for var in outvars:
            aval = var.aval
            if var in results and aval.size * aval.dtype.itemsize >= lowering_numpy.RECYCLE_MIN_BYTES:
                self.allocators.append(lowering_numpy.RecycledResult(aval.shape, aval.dtype).take)
            else:
                self.allocators.append(functools.partial(np.empty, aval.shape, aval.dtype))

    def bind(self, library, function_name):
        function = getattr(library, function_name)
        function.argtypes, function.restype = self.kernel.signature()
        self.function = function

    def __call__(self, *operands, out=None):
        threads = self.threads if not _forked else 1  # libgomp's threads do not survive a fork
        # named (alive) until the call returns: a converted copy is what the kernel reads
        arrays = [np.ascontiguousarray(x, d) for x, d in zip(operands, self.in_dtypes)]
        if out is None:
            outs = [allocate() for allocate in self.allocators]
        else:  # scratch buffers (C-contiguous, of the outputs' shapes and dtypes) where given
            outs = [allocate() if buffer is None else buffer for buffer, allocate in zip(out, self.allocators)]
        if self.kernel.size:
            status = self.function(*[a.ctypes.data for a in arrays], *[o.ctypes.data for o in outs],
                                   self.kernel.size, threads)
            if self.kernel.returns_status and status:
                raise MemoryError(f"the C reduction kernel {self.kernel.name} could not allocate its partial results")
        return outs


def _c_identifier(name):
    """A C identifier made from `name` (a jitted function's Python name): ASCII letters, digits, _."""
    cleaned = "".join(ch if (ch.isascii() and (ch.isalnum() or ch == "_")) else "_" for ch in name)
    return "ft_" + cleaned[:40]


