"""The generated CUDA, checked without a GPU.

- Every generated kernel (the programs below, and one kernel per elementwise
  primitive and dtype) compiles with nvcc as a standalone `__global__`
  kernel with the identical body, when nvcc is on the machine.
- The numerics of every elementwise template: the same kernel, compiled as
  host C++ with g++ into one harness per session, is fed special values and
  hypothesis inputs and compared with the primitive's NumPy implementation.
"""
import math
import shutil
import struct
import subprocess

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import ftrans as ft
import ftrans.numpy as fnp
from interpreters import lowering_cupy
from ir.core import Eqn, Jaxpr, ShapedArray, Var
from ir.passes.fusion import KERNEL_DTYPES, plan_fusion
from ir.primitive import PRIMITIVES
from test_fusion import GOLDEN_PROGRAMS

F32, F64, I8, I32, I64, U8, U32, U64, BOOL, C64, C128 = map(np.dtype, (
    "float32", "float64", "int8", "int32", "int64", "uint8", "uint32", "uint64", "bool", "complex64", "complex128"))
COMPLEX = (C64, C128)
FLOATS, INTS = (F32, F64), (I8, I32, I64, U8, U32)
SIZE = 64  # the kernels' nominal length; the harness runs them on any length (their loads are unbroadcast)


class Case:
    """One primitive on operands of given dtypes: `ulps` is the tolerance
    (0: bit for bit, NaN payloads aside), `bounds` per operand limits the
    random inputs (libm accuracy is not what is tested)."""

    def __init__(self, name, dtypes, params=None, ulps=0, bounds=None):
        self.name, self.dtypes, self.params = name, [np.dtype(d) for d in dtypes], params or {}
        self.ulps, self.bounds = ulps, bounds or [None] * len(dtypes)
        self.prim = PRIMITIVES[name]
        invars = [Var(ShapedArray((SIZE,), d)) for d in self.dtypes]
        (out_aval,) = self.prim.abstract_eval([v.aval for v in invars], self.params)
        eqn = Eqn(self.prim, invars, [Var(out_aval)], self.params)
        (group,) = plan_fusion(Jaxpr([], invars, [eqn], eqn.outvars)).steps
        self.id = "-".join([name] + [d.name for d in self.dtypes] + [f"{k}{v}" for k, v in self.params.items()])
        self.source = lowering_cupy.elementwise_source(group, f"case_{self.id.replace('-', '_')}")
        self.out_dtype = out_aval.dtype
        # NaN and infinities have no integer value: C leaves their conversion undefined
        self.finite_only = name == "convert_element_type" and self.out_dtype.kind in "iu"

    def special_inputs(self):
        """Every combination of the operands' special values, within bounds."""
        columns = [within_bounds(special_values(d, finite=self.ulps > 0), bound, self.finite_only)
                   for d, bound in zip(self.dtypes, self.bounds, strict=True)]
        return [g.ravel() for g in np.meshgrid(*columns, indexing="ij")]

    def reference(self, *arrays):
        with np.errstate(all="ignore"):
            if self.name == "integer_pow":  # what jit computes: multiplications, not np.power
                return _square_and_multiply(arrays[0], self.params["y"])
            return np.asarray(self.prim.impl(*arrays, **self.params)).astype(self.out_dtype, copy=False)


def _square_and_multiply(x, y):
    """x**y with the multiplications of ir/passes/integer_pow.py, in its order."""
    acc, power, k = None, x, abs(y)
    while k > 0:
        if k & 1:
            acc = power if acc is None else acc * power
        k >>= 1
        if k > 0:
            power = power * power
    if acc is None:
        return np.ones_like(x)
    return acc if y > 0 else x.dtype.type(1) / acc


def _cases():
    unary = {name: FLOATS for name in ("floor", "ceil", "sqrt")}
    unary.update({name: FLOATS + (I8, I32, I64, U8) for name in ("neg", "sign", "abs")})
    unary.update({"not": (BOOL, I32, U8), "stop_gradient": (F32, I32, BOOL)})
    cases = [Case(name, [d]) for name, dtypes in unary.items() for d in dtypes]
    moderate = {"sin": 100, "cos": 100, "tan": 1.5, "atan": None, "tanh": None, "log": None, "log1p": None,
                "logistic": None}
    cases += [Case(name, [d], ulps=8, bounds=[bound]) for name, bound in moderate.items() for d in FLOATS]
    # special functions; lgamma above 2.5: C's lgamma (what the host build calls) loses digits near its
    # zeros 1 and 2, where ftrans's keeps them, and for x < 0 both lose them near the zeros
    cases += [Case(name, [d], ulps=8, bounds=[bound]) for name, bound in
              (("erf", None), ("erfc", None), ("erf_inv", None), ("lgamma", (2.5, 2.0 ** 100)), ("digamma", None))
              for d in FLOATS]
    cases += [Case("polygamma", [d], {"m": m}, ulps=8) for d in FLOATS for m in (1, 2, 5)]
    # the incomplete gamma and beta functions: special_math.py's algorithms in C. The prefactor is exp of
    # a log x - x - lgamma(a), up to ~745 in size, and C's lgamma (the host build's) is not special_math's:
    # their results differ by ~|exponent| ulps in float64 (4096 ulps: 1e-12 relative); float32 rounds those
    incomplete_ulps = {F32: 4, F64: 4096}
    cases += [Case(name, [d, d], ulps=incomplete_ulps[d], bounds=[(-1, 40), (-1, 80)])
              for name in ("igamma", "igammac", "igamma_grad_a", "random_gamma_grad") for d in FLOATS]
    cases += [Case("regularized_incomplete_beta", [d, d, d], ulps=incomplete_ulps[d],
                   bounds=[(-1, 30), (-1, 30), (-0.5, 1.5)]) for d in FLOATS]
    cases += [Case(name, [d], ulps=8, bounds=[80 if d == F32 else 700])
              for name in ("exp", "expm1", "sinh", "cosh") for d in FLOATS]
    for d in FLOATS:
        cases += [Case("integer_pow", [d], {"y": y}) for y in (0, 1, 2, 3, 5, -1, -2, -3)]
    cases += [Case("integer_pow", [d], {"y": y}) for d in (I32, U8) for y in (0, 1, 2, 3, 7)]
    cases += [Case("reduce_precision", [d], {"exponent_bits": e, "mantissa_bits": m})
              for d in FLOATS for e, m in ((8, 7), (5, 10), (8, 23), (11, 52), (5, 0), (1, 3), (11, 10))]
    cases += [Case(name, [d, d]) for name in ("add", "sub", "mul") for d in FLOATS + INTS]
    cases += [Case("div", [d, d]) for d in FLOATS]
    cases += [Case("atan2", [d, d], ulps=4) for d in FLOATS]
    cases += [Case(name, [d, d]) for name in ("floor_divide", "mod") for d in FLOATS + INTS + (U64,)]
    cases += [Case("pow", [d, d], ulps=8, bounds=[(0, 100), (-10, 10)]) for d in FLOATS]
    cases += [Case("pow", [d, d], bounds=[None, (0, 40)]) for d in (I32, U8)]
    cases += [Case(name, [d, d]) for name in ("max", "min") for d in FLOATS + (I32, U8, BOOL)]
    cases += [Case(name, [d, d]) for name in ("and", "or", "xor") for d in (BOOL, I32, U8)]
    # shift amounts from below 0 to past the width: XLA's 0 there, not C's undefined behaviour
    cases += [Case(name, [d, d], bounds=[None, (-2, 70)]) for name in ("shift_left", "shift_right_logical")
              for d in (I8, I32, I64, U8, U32, U64)]
    cases += [Case(name, [d, d]) for name in ("eq", "ne", "lt", "le", "gt", "ge")
              for d in FLOATS + (I32, U8, BOOL)]
    cases += [Case("select_n", [BOOL, d, d]) for d in (F32, I32, BOOL)]
    conversions = [(F32, F64, None), (F64, F32, None), (F32, I32, (-2e9, 2e9)), (F64, I64, (-9e18, 9e18)),
                   (F64, U8, (0, 255)), (I32, F32, None), (I64, F64, None), (I64, I32, None), (I32, U8, None),
                   (U8, I32, None), (BOOL, F32, None), (F32, BOOL, None), (I32, BOOL, None)]
    cases += [Case("convert_element_type", [a], {"new_dtype": b, "weak_type": False}, bounds=[bound])
              for a, b, bound in conversions]
    return cases + _complex_cases()


def _complex_cases():
    """complex<T> kernels (std::complex on the host, thrust's in CuPy): moving parts is bit for bit, NaN and
    infinities included; arithmetic and functions to a few ulps per part on finite values (C++'s complex
    multiplication and division follow C99's Annex G at infinities, NumPy's do not)."""
    cases = [Case(name, [d]) for name in ("real", "imag", "conj", "neg", "stop_gradient") for d in COMPLEX]
    cases += [Case("complex", [d, d]) for d in FLOATS]
    cases += [Case("select_n", [BOOL, d, d]) for d in COMPLEX]
    # ordered as NumPy orders complex values: by real part, then imaginary part (NaN-propagating max/min)
    cases += [Case(name, [d, d]) for name in ("lt", "le", "gt", "ge", "max", "min") for d in COMPLEX]
    cases += [Case(name, [d], ulps=8, bounds=[5]) for name in ("abs", "sin", "cos", "tan", "sinh", "cosh", "tanh",
                                                                 "exp", "log", "sqrt") for d in COMPLEX]
    cases += [Case(name, [d, d], ulps=8, bounds=[100, 100]) for name in ("add", "sub", "mul", "eq", "ne")
              for d in COMPLEX]
    # divisors away from 0 (where Annex G gives infinities, NumPy NaNs)
    cases += [Case("div", [d, d], ulps=8, bounds=[100, (0.25, 100)]) for d in COMPLEX]
    cases += [Case("pow", [d, d], ulps=64, bounds=[(0.5, 4), (-2, 2)]) for d in COMPLEX]
    cases += [Case("integer_pow", [d], {"y": y}, ulps=8, bounds=[4 if y >= 0 else (0.25, 4)])
              for d in COMPLEX for y in (0, 2, 3, -1, -2)]
    conversions = [(F64, C128), (F32, C64), (I32, C128), (BOOL, C64), (C128, C64), (C64, C128), (C128, F64),
                   (C64, F32), (C128, F32)]
    cases += [Case("convert_element_type", [a], {"new_dtype": b, "weak_type": False}) for a, b in conversions]
    return cases


CASES = _cases()


REDUCTION_PROGRAMS = {  # (function, input dtype): reductions and reduction maps, on a 5x7 input
    "sum_f32": (lambda x: fnp.sum(x, axis=1), F32), "sum_i32": (lambda x: fnp.sum(x, axis=0), I32),
    "prod_f64": (lambda x: fnp.prod(x, axis=1), F64), "max_f32": (lambda x: fnp.max(x, axis=1), F32),
    "min_f64": (lambda x: fnp.min(x), F64), "max_bool": (lambda x: fnp.max(x, axis=0), BOOL),
    "min_u8": (lambda x: fnp.min(x, axis=1), U8),
    "max_c128": (lambda x: fnp.max(x, axis=1), np.dtype(np.complex128)),
    "min_c64": (lambda x: fnp.min(x, axis=0), np.dtype(np.complex64)),
    "sum_of_map": (lambda x: fnp.sum(fnp.sin(x) * 2.0 + x, axis=1), F64),
}


def _reduction_kernel(name):
    f, dtype = REDUCTION_PROGRAMS[name]
    (step,) = plan_fusion(ft.make_jaxpr(f, optimize=True)(np.ones((5, 7), dtype))).steps
    return lowering_cupy.reduction_source(step, f"reduction_{name}")


REDUCTIONS = {name: _reduction_kernel(name) for name in REDUCTION_PROGRAMS}


def test_every_elementwise_primitive_and_fusible_dtype_is_covered():
    covered = {case.name for case in CASES}
    assert covered == {name for name, prim in PRIMITIVES.items() if prim.elementwise}
    assert KERNEL_DTYPES <= set(lowering_cupy.C_TYPES)


# -------------------- nvcc --------------------

def _program_kernels():
    kernels = []
    for name, program in sorted(GOLDEN_PROGRAMS.items()):
        kernels += lowering_cupy.lower(program(), name).kernels
    return kernels


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc is not installed")
def test_every_generated_kernel_compiles_with_nvcc(tmp_path):
    kernels = _program_kernels() + [case.source for case in CASES] + list(REDUCTIONS.values())
    source = lowering_cupy.CUDA_HEADER + lowering_cupy.PRELUDE + lowering_cupy.SPECIAL_PRELUDE + "\n" + "\n".join(
        lowering_cupy.standalone_cuda(k) for k in kernels)
    (tmp_path / "kernels.cu").write_text(source)
    # --ptx: compile for the virtual architecture only, which needs no GPU and no linker
    result = subprocess.run(["nvcc", "--ptx", "-o", "kernels.ptx", "kernels.cu"], cwd=tmp_path,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-4000:]
    ptx = (tmp_path / "kernels.ptx").read_text()
    assert all(f".entry {k.name}(" in ptx for k in kernels)


# -------------------- host C++: the numerics of every template --------------------

def _harness_source(sources):
    """One program holding every kernel as a host function, and a loop reading
    requests from stdin: (case, number of output elements, number of input
    elements) as three int64, then the inputs' bytes; it answers with the
    outputs' bytes."""
    calls, table = [], []
    for k, source in enumerate(sources):
        args = [f"(const {lowering_cupy.C_TYPES[d]}*)in[{j}]" for j, (d, _) in enumerate(source.inputs)]
        args += [f"({lowering_cupy.C_TYPES[d]}*)out[{j}]" for j, d in enumerate(source.outputs)]
        calls.append(f"static void call{k}(long long size, char** in, char** out) "
                     f"{{ {source.name}({', '.join(args + ['size'])}); }}")
        sizes = lambda dtypes: "{" + ", ".join(str(d.itemsize) for d in dtypes) + "}"
        table.append(f"  {{{len(source.inputs)}, {sizes([d for d, _ in source.inputs])}, "
                     f"{len(source.outputs)}, {sizes(source.outputs)}, call{k}}},")
    functions = "\n".join(lowering_cupy.host_cpp(s) for s in sources)
    main = r"""
#include <cstdio>
#include <vector>
struct Case { int n_in; int in_size[3]; int n_out; int out_size[2]; void (*call)(long long, char**, char**); };
static const Case cases[] = {
%s
};
int main() {
  long long request[3];
  while (fread(request, sizeof request, 1, stdin) == 1) {
    const Case& c = cases[request[0]];
    std::vector<std::vector<char> > ins(c.n_in), outs(c.n_out);
    char* in[3]; char* out[2];
    for (int j = 0; j < c.n_in; ++j) {
      ins[j].resize(request[2] * c.in_size[j] + 8);
      if (fread(ins[j].data(), c.in_size[j], request[2], stdin) != (size_t)request[2]) return 1;
      in[j] = ins[j].data();
    }
    for (int j = 0; j < c.n_out; ++j) { outs[j].resize(request[1] * c.out_size[j] + 8); out[j] = outs[j].data(); }
    c.call(request[1], in, out);
    for (int j = 0; j < c.n_out; ++j) fwrite(out[j], c.out_size[j], request[1], stdout);
    fflush(stdout);
  }
  return 0;
}
""" % "\n".join(table)
    return "\n".join([lowering_cupy.HOST_HEADER, lowering_cupy.PRELUDE, lowering_cupy.SPECIAL_PRELUDE, functions, *calls, main])


class Harness:
    def __init__(self, sources, directory):
        self.index = {id(s): k for k, s in enumerate(sources)}
        (directory / "harness.cpp").write_text(_harness_source(sources))
        # -fwrapv: signed overflow wraps, as it does on the GPU and in NumPy
        subprocess.run(["g++", "-std=c++17", "-O1", "-fwrapv", "-o", "harness", "harness.cpp"],
                       cwd=directory, check=True, capture_output=True)
        self.process = subprocess.Popen([str(directory / "harness")], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE)

    def run(self, source, arrays, out_size=None):
        """The kernel's outputs on `arrays` (one per input, C-contiguous)."""
        in_size = arrays[0].size if arrays else 0
        out_size = in_size if out_size is None else out_size
        request = struct.pack("3q", self.index[id(source)], out_size, in_size)
        self.process.stdin.write(request + b"".join(np.ascontiguousarray(a).tobytes() for a in arrays))
        self.process.stdin.flush()
        return [np.frombuffer(self.process.stdout.read(out_size * d.itemsize), d) for d in source.outputs]

    def close(self):
        self.process.stdin.close()
        self.process.wait()
        self.process.stdout.close()


@pytest.fixture(scope="module")
def harness(tmp_path_factory):
    if shutil.which("g++") is None:
        pytest.skip("g++ is not installed")
    sources = [case.source for case in CASES] + list(REDUCTIONS.values())
    harness = Harness(sources, tmp_path_factory.mktemp("harness"))
    yield harness
    harness.close()


def special_values(dtype, finite=False):
    if dtype.kind == "c":  # every pair of the parts' special values (finite ones only, if asked)
        parts = special_values(np.dtype(f"f{dtype.itemsize // 2}"))
        if finite:
            parts = parts[np.isfinite(parts) & (np.abs(parts) < 1e20) & ((np.abs(parts) > 1e-20) | (parts == 0))]
        re, im = np.meshgrid(parts, parts, indexing="ij")
        values = np.empty(re.size, dtype)
        values.real, values.imag = re.ravel(), im.ravel()
        return values
    if dtype.kind == "f":
        info = np.finfo(dtype)
        with np.errstate(over="ignore"):  # -1e30 is -inf in float16, as meant
            return np.array([0.0, -0.0, 1.0, -1.0, 0.5, -2.5, 3.0, 7.0, -7.0, 1e-30, -1e30, info.max, info.tiny,
                             np.inf, -np.inf, np.nan], dtype)
    if dtype.kind == "b":
        return np.array([False, True])
    info = np.iinfo(dtype)
    values = [0, 1, 2, 3, 7, info.max, info.max - 1]
    if dtype.kind == "i":
        values += [-1, -2, -7, info.min, info.min + 1]
    return np.array(values, dtype)


def within_bounds(values, bound, finite_only=False):
    """`values` without those outside `bound` ((low, high), or a magnitude);
    NaN and the infinities stay, unless `finite_only`."""
    keep = np.ones(values.shape, bool)
    if bound is not None and values.dtype.kind == "c":  # each part within the bound
        low, high = (-bound, bound) if np.isscalar(bound) else bound
        keep = (values.real >= low) & (values.real <= high) & (values.imag >= low) & (values.imag <= high)
        return values[keep]
    if bound is not None and values.dtype.kind in "fiu":
        low, high = (-bound, bound) if np.isscalar(bound) else bound
        keep = (values >= low) & (values <= high)
        if values.dtype.kind == "f":
            keep |= ~np.isfinite(values)
    if finite_only and values.dtype.kind == "f":
        keep &= np.isfinite(values)
    return values[keep]


def assert_matches(got, want, ulps, context):
    assert got.shape == want.shape and got.dtype == want.dtype, context
    if want.dtype.kind == "c":  # part by part; a few ulps of the larger part (a tiny part's error is relative to it)
        if ulps:
            scale = np.maximum(np.abs(want.real), np.abs(want.imag))
            for part in (np.real, np.imag):
                g, w = part(got).astype(np.float64), part(want)
                np.testing.assert_array_equal(np.isnan(g), np.isnan(w), err_msg=f"NaN positions differ: {context}")
                np.testing.assert_array_equal(g[np.isinf(w)], w[np.isinf(w)], err_msg=context)
                finite = np.isfinite(w)
                part_scale = np.where(np.isfinite(scale), scale, np.abs(w))[finite]  # beside an infinite part
                tolerance = ulps * np.spacing(np.maximum(part_scale, np.finfo(w.dtype).tiny))
                assert np.all(np.abs(g[finite] - w[finite]) <= tolerance), context
            return
        assert_matches(np.ascontiguousarray(got.real), np.ascontiguousarray(want.real), 0, context)
        assert_matches(np.ascontiguousarray(got.imag), np.ascontiguousarray(want.imag), 0, context)
        return
    if want.dtype.kind != "f":
        np.testing.assert_array_equal(got, want, err_msg=context)
        return
    nan = np.isnan(want)
    np.testing.assert_array_equal(np.isnan(got), nan, err_msg=f"NaN positions differ: {context}")
    got, want = got[~nan], want[~nan]
    if ulps == 0:  # bit for bit: signed zeros included
        bits = np.dtype(f"u{want.dtype.itemsize}")
        np.testing.assert_array_equal(got.view(bits), want.view(bits), err_msg=context)
        return
    infinite = np.isinf(want)
    np.testing.assert_array_equal(got[infinite], want[infinite], err_msg=context)
    error = np.abs(got[~infinite].astype(np.float64) - want[~infinite])
    tolerance = ulps * np.spacing(np.maximum(np.abs(want[~infinite]), np.finfo(want.dtype).tiny))
    assert np.all(error <= tolerance), f"{context}: off by {np.max(error / tolerance) * ulps:.1f} ulps"


def check_case(harness, case, arrays):
    with np.errstate(all="ignore"):
        (got,) = harness.run(case.source, arrays)
    want = case.reference(*arrays)
    context = f"{case.id} on {[a.tolist() for a in arrays]}\ngot  {got.tolist()}\nwant {want.tolist()}"
    assert_matches(got, want, case.ulps, context)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_template_on_special_values(harness, case):
    """Every combination of the dtype's special values (NaN, infinities,
    signed zeros, extremes, zero divisors, MIN and -1)."""
    check_case(harness, case, case.special_inputs())


def _elements(dtype, bound):
    if dtype.kind == "c":
        low, high = (-1e3, 1e3) if bound is None else (-bound, bound) if np.isscalar(bound) else bound
        part = st.floats(low, high, width=dtype.itemsize * 4)
        return st.builds(complex, part, part)
    if dtype.kind == "f":
        if bound is None:
            return st.floats(width=dtype.itemsize * 8)
        low, high = (-bound, bound) if np.isscalar(bound) else bound
        return st.floats(low, high, width=dtype.itemsize * 8)
    if dtype.kind == "b":
        return st.booleans()
    if bound is None:
        return None  # hypothesis's own choice: the dtype's whole range
    low, high = (-bound, bound) if np.isscalar(bound) else bound
    return st.integers(max(low, np.iinfo(dtype).min), min(high, np.iinfo(dtype).max))


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
@settings(max_examples=12)
@given(data=st.data())
def test_template_on_random_values(harness, case, data):
    size = data.draw(st.integers(1, SIZE))
    arrays = [data.draw(hnp.arrays(d, size, elements=_elements(d, bound)))
              for d, bound in zip(case.dtypes, case.bounds, strict=True)]
    check_case(harness, case, arrays)


@pytest.mark.parametrize("name", sorted(REDUCTION_PROGRAMS))
def test_reduction_templates(harness, name):
    """Identity and combine (NaN propagation too), and a map, against NumPy."""
    source, (f, dtype) = REDUCTIONS[name], REDUCTION_PROGRAMS[name]
    rng = np.random.default_rng(0)
    x = (rng.integers(0, 2, (5, 7)) if dtype == BOOL else rng.integers(0, 200, (5, 7)) if dtype.kind in "iu"
         else rng.normal(size=(5, 7))).astype(dtype)
    if dtype.kind == "c":  # equal real parts, so the imaginary parts decide
        x = (rng.integers(-2, 3, (5, 7)) + 1j * rng.normal(size=(5, 7))).astype(dtype)
    if dtype.kind in "fc":
        x[2, 3] = np.nan  # max and min propagate it, as NumPy's do
    want = np.asarray(ft.jit(f)(x))
    (got,) = harness.run(source, [x], out_size=max(want.size, 1))
    assert_matches(got.reshape(want.shape), want, ulps=0 if name.startswith(("max", "min")) or dtype.kind != "f"
                   else 16, context=name)


def test_literals_are_written_in_their_dtype():
    c = lowering_cupy.c_literal
    assert [c(0.5, F32), c(-0.5, F32), c(0.5, F64), c(3, I32), c(-3, I64), c(3, U32), c(True, BOOL)] == [
        "0.5f", "(-0.5f)", "0.5", "3", "(-3LL)", "3U", "true"]
    assert c(np.iinfo(np.int32).min, I32) == "(-2147483647 - 1)"
    assert c(-np.inf, F32) == "(-__int_as_float(0x7f800000))" and c(-0.0, F64) == "(-0.0)"
    # 0.1 in float32 is not 0.1 in float64: the text is float32's shortest, read back as float32
    assert c(0.1, F32) == "0.1f" and float(np.float32(0.1)) != 0.1
    assert math.isnan(float(np.float32(np.nan))) and c(np.nan, F32) == "__int_as_float(0x7fc00000)"
