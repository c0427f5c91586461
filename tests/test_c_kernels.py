"""jit's C kernels on the CPU (interpreters/lowering_c.py), against NumPy.

- Every elementwise primitive with a c_template, on every dtype the C target takes: one
  kernel per case, all in one translation unit (one compile), fed special values (NaN,
  infinities, signed zeros, subnormals, integer extremes, zero divisors, MIN and -1) and
  hypothesis inputs; bit for bit but for transcendentals, which are within
  lowering_c.TRANSCENDENTAL_ULPS of NumPy's.
- float16 (where the compiler has _Float16; skipped elsewhere): the same cases in float16,
  every half for unary ones (transcendentals within lowering_c.FLOAT16_TRANSCENDENTAL_ULPS at
  at most FLOAT16_MISMATCHES halves, all else bit for bit), random bit patterns for binary
  ones, conversions from float64 and float32 where rounding through float would differ, a
  group of float16 and float32 values, and what stays NumPy calls (reductions, pow).
- Reductions against NumPy within the documented bound, and bit for bit across thread counts.
- Broadcasting loads, multi-output groups, jit with kernels against eager.
- A parsed program with hostile-looking names and literals gives C with only generated
  identifiers and numbers; a 10,000-equation program compiles once.
"""
import dataclasses
import os
import re
import select

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import ftrans as ft
import ftrans.numpy as fnp
from conftest import c_compiler_problem, c_kernels
from interpreters import c_compiler, lowering_c
from ir.core import Eqn, Jaxpr, ShapedArray, Var
from ir.errors import KernelCompileError
from ir.passes import fusion
from ir.passes.fusion import ElementwiseGroup, plan_fusion
from ir.primitive import PRIMITIVES
from test_cuda_codegen import _elements, _square_and_multiply, assert_matches, special_values, within_bounds

pytestmark = pytest.mark.skipif(c_compiler_problem() is not None, reason=f"no C compiler: {c_compiler_problem()}")

TARGET = lowering_c.c_target()  # fusion.C_FLOAT16 where the compiler has _Float16, else fusion.C
C_DTYPES = sorted(TARGET.dtypes, key=lambda d: d.name)
F16 = np.dtype(np.float16)
needs_float16 = pytest.mark.skipif(F16 not in TARGET.dtypes, reason="the C compiler has no _Float16: float16 "
                                   "stays NumPy calls")
SIZE = 64  # the kernels' nominal length; a one-dimensional kernel runs on any length n
TRANSCENDENTAL = {"sin", "cos", "tan", "atan", "sinh", "cosh", "tanh", "exp", "log", "log1p", "expm1", "pow",
                  "atan2", "logistic"}
# bounds of the random inputs of a transcendental (what is tested is the kernel, not libm far out)
BOUNDS = {"sin": 100, "cos": 100, "tan": 1.5, "exp": (-80, 80), "expm1": (-80, 80), "sinh": 80, "cosh": 80}
# the elementwise primitives the C kernels leave to NumPy (no c_template): complex parts, which are
# complex values; special functions, whose NumPy versions are ftrans's own (ir/primitives/special_math.py),
# not libm's; reduce_precision, which is bit twiddling of XLA's
LEFT_TO_NUMPY = {"real", "imag", "conj", "complex", "erf", "erfc", "erf_inv", "lgamma", "digamma", "polygamma",
                 "igamma", "igammac", "igamma_grad_a", "random_gamma_grad", "regularized_incomplete_beta",
                 "reduce_precision"}
# and on float16 (but for the integer-only ones): pow, whose NumPy float16 loop passes signaling NaNs to
# powf (pow(sNaN, 0) is NaN there; the kernels load halves quiet, and powf gives 1)
FLOAT16_LEFT_TO_NUMPY = {"pow"}


class Case:
    def __init__(self, name, dtypes, params=None):
        self.name, self.dtypes, self.params = name, [np.dtype(d) for d in dtypes], params or {}
        self.prim = PRIMITIVES[name]
        self.ulps = 0
        if name in TRANSCENDENTAL and self.dtypes[0].kind == "f":
            self.ulps = (lowering_c.FLOAT16_TRANSCENDENTAL_ULPS if self.dtypes[0] == F16
                         else lowering_c.TRANSCENDENTAL_ULPS)
        bound = BOUNDS.get(name)
        if name == "pow":
            self.bounds = [(0, 100), (-10, 10)] if self.dtypes[0].kind == "f" else [None, (0, 40)]
        elif name in ("shift_left", "shift_right_logical"):
            self.bounds = [None, (-2, 70)]
        elif name == "convert_element_type" and self.dtypes[0].kind == "f" and params["new_dtype"].kind in "iu":
            # random floats within the integer type's range; out of it (NaN too) NumPy warns, and its
            # answer depends on where the element is (its SIMD loop and its scalar tail differ): the
            # special values check that the kernels give its SIMD loop's (see `reference`)
            info, f, largest = np.iinfo(params["new_dtype"]), self.dtypes[0].type, float(np.finfo(self.dtypes[0]).max)
            with np.errstate(over="ignore"):  # (a half is at most 65504: int32's range is all of them)
                high = float(np.nextafter(f(info.max + 1), f(0)))
            self.bounds = [(max(float(info.min), -largest), high)]
        else:
            self.bounds = [bound if d.kind == "f" else None for d in self.dtypes]
        invars = [Var(ShapedArray((SIZE,), d)) for d in self.dtypes]
        (out_aval,) = self.prim.abstract_eval([v.aval for v in invars], self.params)
        self.out_dtype = out_aval.dtype
        eqn = Eqn(self.prim, invars, [Var(out_aval)], self.params)
        (group,) = plan_fusion(Jaxpr([], invars, [eqn], eqn.outvars), TARGET).steps
        assert isinstance(group, ElementwiseGroup)
        self.id = "-".join([name] + [d.name for d in self.dtypes] + [f"{k}{v}" for k, v in self.params.items()])
        self.kernel = lowering_c.elementwise_kernel(group, "case_" + re.sub(r"\W", "_", self.id))

    def reference(self, *arrays):
        with np.errstate(all="ignore"):
            if self.name == "integer_pow":  # what jit computes: multiplications (ir/passes/integer_pow.py)
                return _square_and_multiply(arrays[0], self.params["y"])
            if self.name == "convert_element_type" and self.dtypes[0].kind == "f" and self.out_dtype.kind in "iu":
                # NumPy's SIMD loop's answer out of range, not its scalar tail's: the elements lead a long array
                (x,) = arrays
                return np.asarray(self.prim.impl(np.concatenate([x] * 16), **self.params))[:x.size]
            return np.asarray(self.prim.impl(*arrays, **self.params)).astype(self.out_dtype, copy=False)

    def special_inputs(self):
        columns = [within_bounds(special_values(d), bound) for d, bound in zip(self.dtypes, self.bounds)]
        if all(d.kind == "f" for d in self.dtypes):  # subnormals too
            columns = [np.concatenate([c, np.array([np.finfo(d).smallest_subnormal, -np.finfo(d).tiny / 3], d)])
                       for c, d in zip(columns, self.dtypes)]
        if self.dtypes[-1] == F16:  # halves near the overflow: 65504 + 16 is 65520, inf; 65504 + 15 is not
            columns[-1] = within_bounds(np.concatenate([columns[-1], np.array([15, 16, 32768, 2048], F16)]),
                                        self.bounds[-1])
        return [g.ravel() for g in np.meshgrid(*columns, indexing="ij")]


def _accepts(prim, dtypes, params):
    try:
        prim.abstract_eval([ShapedArray((SIZE,), d) for d in dtypes], params)
        return True
    except TypeError:
        return False


def _cases():
    cases = []
    for name, prim in sorted(PRIMITIVES.items()):
        if not prim.elementwise or prim.c_template is None:
            continue
        dtypes = [d for d in C_DTYPES if d != F16 or name not in FLOAT16_LEFT_TO_NUMPY]
        if name == "select_n":
            cases += [Case(name, [np.dtype(bool), d, d]) for d in dtypes]
        elif name == "convert_element_type":
            cases += [Case(name, [a], {"new_dtype": b, "weak_type": False}) for a in dtypes for b in dtypes]
        elif name == "integer_pow":
            cases += [Case(name, [d], {"y": y}) for d in dtypes for y in (0, 1, 2, 3, 5, 7, -1, -2, -3)
                      if _accepts(prim, [d], {"y": y})]
        else:
            cases += [Case(name, [d] * _arity(prim)) for d in dtypes if _accepts(prim, [d] * _arity(prim), {})]
    return cases


def _arity(prim):
    return 2 if _accepts(prim, [np.dtype("float64")] * 2, {}) or _accepts(prim, [np.dtype("int32")] * 2, {}) else 1


CASES = _cases()


@pytest.fixture(scope="module")
def library():
    """Every case's kernel in one translation unit: one compile."""
    return c_compiler.load_library(lowering_c.translation_unit([case.kernel for case in CASES]))


def run_kernel(library, kernel, arrays, threads=1):
    function = getattr(library, kernel.name)
    function.argtypes, function.restype = kernel.signature()
    arrays = [np.ascontiguousarray(a, d) for a, (d, _) in zip(arrays, kernel.inputs, strict=True)]
    n = arrays[0].size
    outs = [np.empty(n, d) for d in kernel.outputs]
    function(*[a.ctypes.data for a in arrays + outs], n, threads)
    return outs


def check_case(library, case, arrays):
    (got,) = run_kernel(library, case.kernel, arrays)
    want = case.reference(*arrays)
    context = f"{case.id} on {[a.tolist() for a in arrays]}\ngot  {got.tolist()}\nwant {want.tolist()}"
    assert_matches(got, want, case.ulps, context)


def test_every_elementwise_primitive_has_a_c_template_or_is_left_to_numpy():
    elementwise = {name for name, prim in PRIMITIVES.items() if prim.elementwise}
    with_template = {name for name in elementwise if PRIMITIVES[name].c_template is not None}
    assert with_template | LEFT_TO_NUMPY == elementwise and not with_template & LEFT_TO_NUMPY
    assert {case.name for case in CASES} == with_template
    assert fusion.C.dtypes == {np.dtype(d) for d in ("float32", "float64", "int8", "int16", "int32", "int64",
                                                     "uint8", "uint16", "uint32", "uint64", "bool")}
    # on float16: every one that takes floats, but those left to NumPy; loads (broadcast_in_dim) too
    on_floats = {name for name in with_template if _accepts(PRIMITIVES[name], [F16] * _arity(PRIMITIVES[name]), {})
                 or name in ("select_n", "convert_element_type", "integer_pow")}
    assert fusion.FLOAT16_KERNEL_PRIMITIVES == (on_floats - FLOAT16_LEFT_TO_NUMPY) | {"broadcast_in_dim"}
    assert fusion.C_FLOAT16.dtypes == fusion.C.dtypes | {F16}
    if F16 in TARGET.dtypes:
        assert {case.name for case in CASES if F16 in case.dtypes} == on_floats - FLOAT16_LEFT_TO_NUMPY


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_kernel_on_special_values(library, case):
    check_case(library, case, case.special_inputs())


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
@settings(max_examples=8)
@given(data=st.data())
def test_kernel_on_random_values(library, case, data):
    size = data.draw(st.integers(1, 3 * SIZE))
    arrays = [_draw_array(data, d, bound, size) for d, bound in zip(case.dtypes, case.bounds, strict=True)]
    check_case(library, case, arrays)


def _draw_array(data, dtype, bound, size):
    """An array of `size` random values of `dtype` within `bound`. Halves: bit patterns where there
    is no bound, else float32 values within it rounded to half (hypothesis's width-16 floats filter
    out most of what they draw, failing its health check on arrays)."""
    if dtype != F16:
        return data.draw(hnp.arrays(dtype, size, elements=_elements(dtype, bound)))
    if bound is None:
        return data.draw(hnp.arrays(np.uint16, size)).view(np.float16)
    return data.draw(hnp.arrays(np.float32, size, elements=_elements(np.dtype(np.float32), bound))).astype(F16)


def _ulps(got, want):
    finite = np.isfinite(want) & np.isfinite(got)
    return np.abs(got[finite].astype(np.float64) - want[finite]) / np.spacing(
        np.maximum(np.abs(want[finite]), np.finfo(want.dtype).tiny))


def test_the_documented_ulp_bound_of_transcendentals_is_what_is_measured(library):
    """On dense samples of each function's range (a million points per case), glibc's
    libm/libmvec in the kernels stay within TRANSCENDENTAL_ULPS of NumPy's loops; the bound
    is not loose by more than a factor 4 either (it is what was measured)."""
    rng = np.random.default_rng(1)
    worst = 0.0
    for case in CASES:
        if case.ulps == 0 or case.dtypes[0] == F16:  # (every half: test_float16_transcendentals_on_every_half)
            continue
        arrays = []
        for d, bound in zip(case.dtypes, case.bounds):
            low, high = (-1e3, 1e3) if bound is None else ((-bound, bound) if np.isscalar(bound) else bound)
            if case.name in ("log", "log1p"):
                low = 0 if case.name == "log" else -1
            arrays.append(rng.uniform(low, high, 1_000_000).astype(d))
        (got,) = run_kernel(library, case.kernel, arrays, threads=2)
        error = _ulps(got, case.reference(*arrays))
        assert error.max(initial=0) <= lowering_c.TRANSCENDENTAL_ULPS, (case.id, error.max())
        worst = max(worst, error.max(initial=0))
    assert worst > lowering_c.TRANSCENDENTAL_ULPS / 4


# -------------------- float16 --------------------

EVERY_HALF = np.arange(2 ** 16, dtype=np.uint16).view(np.float16)
# integer operands small enough to take every value of
EVERY_VALUE = {np.dtype(d): np.arange(np.iinfo(d).min, np.iinfo(d).max + 1).astype(d)
               for d in ("int8", "uint8", "int16", "uint16")}
EVERY_VALUE[np.dtype(bool)] = np.array([False, True])
UNARY_FLOAT16_CASES = [c for c in CASES if len(c.dtypes) == 1 and c.dtypes[0] in EVERY_VALUE | {F16: None}
                       and F16 in (c.dtypes[0], c.out_dtype)]
BINARY_FLOAT16_CASES = [c for c in CASES if len(c.dtypes) >= 2 and c.dtypes[-1] == F16]


def _differing(got, want):
    """Where two float16 results differ: NaN against NaN is no difference (NaN payloads aside)."""
    both_nan = np.isnan(got) & np.isnan(want)
    return ~both_nan & (got.view(np.uint16) != want.view(np.uint16))


def _every_value_check(library, case):
    x = EVERY_HALF if case.dtypes[0] == F16 else EVERY_VALUE[case.dtypes[0]]
    (got,) = run_kernel(library, case.kernel, [x])
    want = case.reference(x)
    if case.ulps == 0:
        assert_matches(got, want, 0, f"{case.id}: every value")
        return 0, 0
    assert_matches(got, want, case.ulps, f"{case.id}: every half")
    differing = _differing(got, want)
    error = np.abs(got[differing].astype(np.float64) - want[differing]) / np.spacing(np.abs(want[differing]))
    return int(differing.sum()), float(error.max(initial=0))


@needs_float16
@pytest.mark.parametrize("case", UNARY_FLOAT16_CASES, ids=lambda c: c.id)
def test_float16_unary_kernels_on_every_value(library, case):
    """Every half (every value of a small integer or bool converted to half): bit for bit but for
    transcendentals, which differ from NumPy's at FLOAT16_MISMATCHES halves at most."""
    mismatches, _ = _every_value_check(library, case)
    assert mismatches <= lowering_c.FLOAT16_MISMATCHES, (case.id, mismatches)


@needs_float16
def test_the_documented_float16_bounds_of_transcendentals_are_what_is_measured(library):
    """Over every half, glibc's float functions rounded to half are NumPy's float16 results but
    at a few halves, each 1 ulp of half off: the bounds hold and are reached (not loose)."""
    measured = {case.id: _every_value_check(library, case) for case in UNARY_FLOAT16_CASES if case.ulps}
    assert measured and max(n for n, _ in measured.values()) <= lowering_c.FLOAT16_MISMATCHES, measured
    assert max(e for _, e in measured.values()) == lowering_c.FLOAT16_TRANSCENDENTAL_ULPS, measured
    assert max(n for n, _ in measured.values()) > lowering_c.FLOAT16_MISMATCHES / 4, measured


@needs_float16
@pytest.mark.parametrize("case", BINARY_FLOAT16_CASES, ids=lambda c: c.id)
@settings(max_examples=10)
@given(data=st.data())
def test_float16_binary_kernels_on_random_bit_patterns(library, case, data):
    """Halves drawn as bit patterns: NaNs (signaling ones too), infinities, subnormals, zeros."""
    size = data.draw(st.integers(1, 3 * SIZE))
    halves = [data.draw(hnp.arrays(np.uint16, size)).view(np.float16) for d in case.dtypes if d == F16]
    predicate = [data.draw(hnp.arrays(np.bool_, size))] if case.dtypes[0] == np.dtype(bool) else []
    check_case(library, case, predicate + halves)


def _midpoints(dtype):
    """The midpoints between neighbouring finite halves (and beyond 65504, the overflow threshold
    65520), as `dtype`, and the values of `dtype` just above and below each."""
    low = np.arange(0, 0x7BFF, dtype=np.uint16).view(np.float16).astype(np.float64)
    high = np.arange(1, 0x7C00, dtype=np.uint16).view(np.float16).astype(np.float64)
    middle = np.concatenate([(low + high) / 2, [65520.0]]).astype(dtype)  # exact in float32 and float64
    values = np.concatenate([middle, np.nextafter(middle, dtype.type(0)), np.nextafter(middle, dtype.type(np.inf))])
    return np.concatenate([values, -values])


@needs_float16
@pytest.mark.parametrize("source", ["float64", "float32"])
def test_float16_conversions_round_once_as_numpys(library, source):
    """float64 to float16 rounds the double directly (npy_double_to_half): at a midpoint's
    neighbour, rounding to float first would land on the midpoint and round to even."""
    source = np.dtype(source)
    (case,) = [c for c in CASES if c.name == "convert_element_type" and c.dtypes == [source] and c.out_dtype == F16]
    x = _midpoints(source)
    (got,) = run_kernel(library, case.kernel, [x])
    with np.errstate(over="ignore"):
        want = x.astype(np.float16)
        through_float = x.astype(np.float32).astype(np.float16)
    _bits_equal(got, want)
    assert np.isinf(got[np.abs(x) >= 65520]).all() and np.isfinite(got[np.abs(x) < 65520]).all()
    if source == np.float64:
        assert (through_float != want).sum() > 10_000  # so the test tells a double rounding apart


@needs_float16
def test_a_group_of_float16_and_float32_values_is_one_kernel_equal_to_numpys():
    def f(h, s):
        a = fnp.tanh(h) * h + fnp.float16(1.5)
        b = a.astype(np.float32) * s - fnp.sqrt(s)
        c = fnp.maximum(h, -a) / (h * h + fnp.float16(0.25))
        return a, b, (c > 1) & (b < 0.5), (c // fnp.float16(0.75)).astype(np.float64), (s * 3e4).astype(np.float16)
    h = np.linspace(-9, 9, 5001).astype(np.float16)
    h[:4] = [np.nan, np.inf, -0.0, 6e-8]
    s = np.linspace(-1, 3, 5001).astype(np.float32)
    text = jit_c(f).lower(h, s).as_text()
    assert text.count("void ft_f_k") == 1 and "_Float16" in text and "tanhf(" in text
    with np.errstate(all="ignore"):
        got, want = jit_c(f)(h, s), f(h, s)
    for g, w in zip(got, want, strict=True):
        _bits_equal(g, w)


@needs_float16
def test_float16_reductions_and_pow_stay_numpy_calls():
    """NumPy's float16 sums accumulate in float32 and round once; a reduction kernel would not: the
    reduction of halves is a library call, while a float32 reduction's map may compute halves."""
    h = np.linspace(-2, 2, 5000).astype(np.float16)
    plan, _ = lowering_c.kernel_plan(ft.make_jaxpr(lambda h: (fnp.sum(h * h), h ** h), optimize=True)(h), "f")
    assert {s.eqn.primitive.name for s in plan.steps if isinstance(s, fusion.LibraryCall)} == {"reduce_sum", "pow"}
    closed = ft.make_jaxpr(lambda h: fnp.sum((h * h).astype(np.float32)), optimize=True)(h)
    (reduction,) = lowering_c.kernel_plan(closed, "f")[0].steps
    assert isinstance(reduction, fusion.ReductionGroup) and reduction.reduction.invars[0].aval.dtype == np.float32
    assert [e.outvars[0].aval.dtype for e in reduction.eqns] == [F16, np.float32]  # h * h, its conversion
    with np.errstate(all="ignore"):
        got, want = jit_c(lambda h: (fnp.sum(h * h), h ** h))(h), (np.sum(h * h), h ** h)
    for g, w in zip(got, want):
        _bits_equal(g, w)


def test_without_float16_in_the_compiler_float16_stays_numpy_calls(monkeypatch):
    monkeypatch.setattr(c_compiler, "_status", dataclasses.replace(c_compiler.compiler_status(), float16=False))
    assert lowering_c.c_target() is fusion.C
    h = np.linspace(-2, 2, 5000).astype(np.float16)
    closed = ft.make_jaxpr(lambda h: fnp.tanh(h) * h + fnp.float16(1), optimize=True)(h)
    plan, kernels = lowering_c.kernel_plan(closed, "f")
    assert all(isinstance(s, fusion.LibraryCall) for s in plan.steps) and kernels == []
    assert not hasattr(lowering_c.lower(closed, "f"), "c_source")  # NumPy code: no C
    # and a program without halves has none of the float16 text
    x = h.astype(np.float32)
    lowered = lowering_c.lower(ft.make_jaxpr(lambda x: fnp.tanh(x) * x + 1, optimize=True)(x), "f")
    assert "_Float16" not in lowered.c_source and "float16" not in lowered.c_source


def test_literals_are_numbers_in_their_dtype():
    c = lowering_c.c_literal
    assert c(0.5, "float32") == "(0x1.0000000000000p-1f)" and c(3.0, "float64") == "(0x1.8000000000000p+1)"
    assert c(-0.0, "float64") == "(-0x0.0p+0)" and c(-np.inf, "float32") == "(-__builtin_inff())"
    assert c(np.nan, "float64") == "ft_f64_bits(0x7ff8000000000000ULL)"
    assert c(np.float32(0.1), "float32") == f"({float(np.float32(0.1)).hex()}f)"
    assert c(np.iinfo(np.int64).min, "int64") == "((int64_t)(-9223372036854775807LL - 1))"
    assert c(255, "uint8") == "((uint8_t)255ULL)" and c(-7, "int8") == "((int8_t)-7LL)" and c(True, "bool") == "((bool)1)"
    # float16: the half value (rounded from the double) as a float literal: kernels compute halves in float
    with np.errstate(over="ignore"):  # (65520 rounds to inf)
        assert c(0.1, "float16") == f"({float(np.float16(0.1)).hex()}f)"
        assert c(65520.0, "float16") == "(__builtin_inff())"
    assert c(np.float16(np.nan), "float16") == "ft_f32_bits(0x7fc00000U)"
    assert c(-6e-8, "float16") == "(-0x1.0000000000000p-24f)"  # the smallest subnormal half
    with pytest.raises(TypeError, match="one value"):
        c(np.zeros(2), "float64")


# -------------------- through jit: groups, broadcasting, reductions --------------------

def jit_c(fun):
    jitted = ft.jit(fun)

    def call(*args):
        with c_kernels():
            return jitted(*args)
    call.lower = lambda *args: _lower_c(jitted, *args)
    return call


def _lower_c(jitted, *args):
    with c_kernels():
        return jitted.lower(*args)


def _bits_equal(got, want):
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape and got.dtype == want.dtype
    if want.dtype.kind == "f":
        bits = np.dtype(f"u{want.dtype.itemsize}")
        np.testing.assert_array_equal(got.view(bits), want.view(bits))
    else:
        np.testing.assert_array_equal(got, want)


def test_jit_runs_a_group_as_one_c_kernel_and_shows_its_source():
    def f(x):
        return 0.5 * x * (1.0 + fnp.tanh(0.7978845608 * (x + 0.044715 * x * x * x)))
    x = np.linspace(-6, 6, 10_001)
    text = jit_c(f).lower(x).as_text()
    assert text.count("kernel") >= 1 and "void ft_f_k0(" in text and "tanh(" in text
    assert text.count("void ft_f_k") == 1  # one group, one kernel
    got, want = np.asarray(jit_c(f)(x)), np.asarray(f(x))
    # tanh within its ulps of NumPy's; where 1 + tanh cancels (x near -6) that error is
    # 0.5 |x| times the tanh's, not relative to the tiny result
    tanh_error = lowering_c.TRANSCENDENTAL_ULPS * 2.2e-16
    assert np.all(np.abs(got - want) <= 4 * tanh_error * (np.abs(want) + 0.5 * np.abs(x)))


@pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "uint8"])
def test_broadcasting_loads_read_each_operand_in_place(dtype):
    rng = np.random.default_rng(2)
    x = rng.integers(0, 50, (5, 6, 7)).astype(dtype)
    row, column, middle = x[0, 0], x[:, :1, :1].copy(), x[:1, :, :1].copy()

    def f(x, row, column, middle):
        return x * row + column - middle * x + fnp.asarray(3, dtype), x * column
    got = jit_c(f)(x, row, column, middle)
    text = jit_c(f).lower(x, row, column, middle).as_text()
    assert "ft_f_k0" in text and "broadcast_to" not in text  # the loads broadcast, no materialized copies
    for g, w in zip(got, f(x, row, column, middle)):
        _bits_equal(g, w)


def test_a_group_with_several_outputs_writes_each():
    def f(x, y):
        s = fnp.sin(x) * y
        return s + 1.0, s * s, fnp.maximum(x, y) > 0.5
    x, y = np.linspace(-3, 3, 999), np.linspace(2, -1, 999)
    lowered = jit_c(f).lower(x, y)
    plan, kernels = lowering_c.kernel_plan(lowered.jaxpr, "f")
    groups = [s for s in plan.steps if isinstance(s, ElementwiseGroup)]
    assert len(groups) == 1 and len(groups[0].outputs) == 3
    for g, w in zip(jit_c(f)(x, y), f(x, y)):
        np.testing.assert_allclose(g, w, rtol=1e-14, atol=1e-14)  # sin: a few ulps of NumPy's
        assert np.asarray(g).dtype == np.asarray(w).dtype


def _sum_bound(x, axis):
    """The documented bound of lowering_c's sums plus NumPy's own pairwise one, in eps * sum(|x|)."""
    n = x.size // max(np.sum(x, axis=axis).size, 1)
    eps = np.finfo(x.dtype).eps / 2
    return (43 + np.log2(max(n, 2))) * 2 * eps * np.sum(np.abs(x.astype(np.float64)), axis=axis)


@pytest.mark.parametrize("shape,axes", [((300_000,), (0,)), ((37, 4100), (1,)), ((4100, 37), (0,)),
                                        ((6, 50, 9), (0, 2)), ((3, 0, 4), (1,)), ((7,), (0,))])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_sums_are_within_the_documented_bound_of_numpys(shape, axes, dtype):
    rng = np.random.default_rng(3)
    x = rng.normal(size=shape).astype(dtype) * 100 + 1
    f = lambda x: fnp.sum(x * 2.0, axis=axes)  # noqa: E731  (a map the reduction absorbs)
    got = np.asarray(jit_c(f)(x))
    want = np.sum(x * np.asarray(2.0, dtype), axis=axes)
    assert got.dtype == want.dtype and got.shape == want.shape
    assert np.all(np.abs(got.astype(np.float64) - want) <= _sum_bound(x * 2, axes) + 1e-30)


@pytest.mark.parametrize("name", ["sum", "prod", "max", "min"])
@pytest.mark.parametrize("dtype", ["float64", "float32", "int32", "uint8"])
def test_reductions_equal_numpys(name, dtype):
    rng = np.random.default_rng(4)
    x = (rng.uniform(0.9, 1.1, (9, 3000)) if name == "prod" else rng.normal(size=(9, 3000)) * 50).astype(dtype) \
        if dtype.startswith("f") else rng.integers(0, 200, (9, 3000)).astype(dtype)
    if dtype.startswith("f") and name in ("max", "min"):
        x[4, 17] = np.nan  # propagated, as NumPy's max and min do
    f = lambda x: getattr(fnp, name)(x, axis=1)  # noqa: E731
    got, want = np.asarray(jit_c(f)(x)), np.asarray(f(x))
    if name in ("max", "min") or not dtype.startswith("f"):
        _bits_equal(got, want)  # exact: no rounding (integers wrap as NumPy's do)
    else:
        np.testing.assert_allclose(got, want, rtol=(60 if dtype == "float64" else 60) * np.finfo(dtype).eps)


def test_reductions_do_not_depend_on_the_thread_count(monkeypatch):
    rng = np.random.default_rng(5)
    x = rng.normal(size=(3, 400_000)).astype(np.float32)
    closed = ft.make_jaxpr(lambda x: (fnp.sum(fnp.exp(x) * x, axis=1), fnp.sum(x)), optimize=True)(x)
    monkeypatch.setattr(lowering_c, "PARALLEL_MIN_WORK", 1)  # every loop a parallel one
    results = []
    for threads in (1, 2):
        monkeypatch.setattr(c_compiler, "kernel_threads", lambda: threads)
        results.append(lowering_c.lower(closed, "threads").function(x))
    assert "num_threads(threads)" in lowering_c.lower(closed, "threads").c_source
    for a, b in zip(*results):
        _bits_equal(a, b)


@pytest.mark.parametrize("shape,axes", [((128, 512), (0,)), ((9000, 70), (0,)), ((60, 50, 90), (1,)),
                                        ((50, 3, 130), (0, 1)), ((20000, 2), (0,))])
@pytest.mark.parametrize("dtype", ["float32", "float64", "int32"])
def test_column_reductions_give_the_bits_of_one_output_at_a_time(shape, axes, dtype, monkeypatch):
    """A reduction over rows of a contiguous kept axis runs COLUMN_BLOCK outputs at once, each
    output's pairwise tree in a SIMD lane: the same trees as one output at a time, the same bits."""
    rng = np.random.default_rng(7)
    x = (rng.normal(size=shape) * 100).astype(dtype)
    column, row = rng.normal(size=shape[-1:]).astype(dtype), rng.normal(size=(*shape[:-1], 1)).astype(dtype)
    closed = ft.make_jaxpr(lambda x, c, r: (fnp.sum(x * c + r, axis=axes), fnp.max(x * x - r, axis=axes),
                                            fnp.prod(x * 0 + c, axis=axes)), optimize=True)(x, column, row)
    results = {}
    for columns in (True, False):
        monkeypatch.setattr(lowering_c, "COLUMN_REDUCTIONS", columns)
        lowered = lowering_c.lower(closed, "columns")
        assert ("_rows(" in lowered.c_source) == columns
        with np.errstate(all="ignore"):
            results[columns] = lowered.function(x, column, row)
    for by_columns, one_at_a_time in zip(results[True], results[False]):
        _bits_equal(by_columns, one_at_a_time)
    want = np.sum(x * column + row, axis=axes)
    if dtype.startswith("f"):
        assert np.all(np.abs(np.asarray(results[True][0], np.float64) - want) <= _sum_bound(x * column + row, axes))
    else:
        _bits_equal(results[True][0], want)


def test_large_kernel_intermediates_are_written_into_scratch_buffers():
    """A kernel's outputs that the function does not return take lowering_numpy's scratch
    buffers (no allocation per call); never an operand's buffer (the kernels' pointers are restrict)."""
    rng = np.random.default_rng(8)
    w, x = rng.normal(size=(64, 64)), rng.normal(size=(128, 64))

    def f(w, x):
        h = fnp.tanh(x @ w + 1.0) * x  # a kernel whose output the second product reads
        return fnp.tanh(h @ w - h) + h
    text = jit_c(f).lower(w, x).as_text()
    calls = re.findall(r"= impl_\w+_k\d+\(([^)]*), out=\(([^)]*)\)\)", text)
    assert calls, text
    for operands, buffers in calls:
        assert not {o.strip() for o in operands.split(",")} & {b.strip() for b in buffers.split(",") if b.strip()}
    for _ in range(3):  # the buffers are reused call after call
        np.testing.assert_allclose(jit_c(f)(w, x), f(w, x), rtol=1e-13, atol=1e-13)


def test_jit_with_kernels_equals_eager_on_a_program_of_every_step_kind():
    rng = np.random.default_rng(6)
    w, x = rng.normal(size=(64, 32)), rng.normal(size=(128, 64))

    def loss(w, x):
        h = fnp.tanh(x @ w + 0.1)
        return fnp.mean((h - 0.5) ** 2) + 1e-3 * fnp.sum(w * w)
    grad = ft.grad(loss)
    np.testing.assert_allclose(jit_c(grad)(w, x), grad(w, x), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(jit_c(loss)(w, x), loss(w, x), rtol=1e-12)


# -------------------- safety and scale --------------------

_C_WORDS = {"int64_t", "int32_t", "int16_t", "int8_t", "uint8_t", "uint16_t", "uint32_t", "uint64_t", "float",
            "double", "bool", "const", "restrict", "for", "if", "return", "static", "inline", "void", "int",
            "sizeof", "malloc", "free", "pragma", "omp", "parallel", "simd", "num_threads", "schedule", "dynamic",
            "buffer", "parts", "task", "tile", "row", "lo", "hi", "len", "res", "threads", "n", "n2", "a", "b",
            "i", "j", "r", "o", "static", "__builtin_inf", "__builtin_inff", "fabs", "fabsf"}
_GENERATED_NAME = re.compile(r"(ft_[a-z0-9_]+|(in|out|p|q|x|v|c|e)\d+|[ceo]rest)$")


def _identifiers(kernel_text):
    """The names in C text, numbers (hexadecimal floats, integers with their suffixes) taken out."""
    kernel_text = re.sub(r"//[^\n]*", " ", kernel_text)  # comments: the kernel's name, shape and primitive
    without_numbers = re.sub(r"\b0x[0-9a-fA-F.]+(p[+-]?\d+)?[fFuUlL]*|\b\d+[uUlL]*\b", " ", kernel_text)
    return set(re.findall(r"[A-Za-z_][A-Za-z_0-9]*", without_numbers))


def test_a_parsed_program_with_hostile_names_and_literals_gives_only_generated_c():
    text = ("{ lambda ; system:f64[300] exit:f64[300]. let "
            "main:f64[300] = add system 1e308:f64[]; "
            "include:f64[300] = mul main -0.0:f64[]; "
            "asm:f64[300] = max include nan:f64[]; "
            "define:f64[300] = sub asm -inf:f64[]; "
            "printf:bool[300] = lt define exit; "
            "x:f64[300] = select_n printf define exit; "
            "y:i64[300] = convert_element_type[new_dtype=int64 weak_type=False] x; "
            "z:i64[300] = add y -9223372036854775808:i64[] "
            "in (x, z) }")
    parsed = ft.parse_jaxpr(text)
    plan, kernels = lowering_c.kernel_plan(parsed, "system(); //")
    (kernel,) = [k for k in kernels if k is not None]
    assert kernel.name == "ft_system_______k0"  # "system(); //" with each non-identifier character an underscore
    assert not {"system", "exit", "main", "include", "asm", "define", "printf"} & _identifiers(kernel.text)
    for word in _identifiers(kernel.text) - _C_WORDS:
        assert _GENERATED_NAME.match(word), word
    assert "#" not in kernel.text.replace("#pragma omp", "")  # no preprocessor text but the pragmas
    # and it runs, as NumPy does
    x, e = np.linspace(-3, 3, 300), np.linspace(3, -3, 300)
    lowered = lowering_c.lower(parsed, "hostile")
    from interpreters.eval import eval_closed_jaxpr
    with np.errstate(all="ignore"):
        for g, w in zip(lowered.function(x, e), eval_closed_jaxpr(parsed, x, e)):
            _bits_equal(g, w)


def test_ten_thousand_equations_compile_as_one_translation_unit():
    """Many groups (a chain of elementwise steps cut by reshapes and reductions), one compile."""
    def f(x):
        for k in range(1000):  # 10 equations a round: 7 elementwise, a sum, its broadcast, a reshape
            y = fnp.sin(x) * (1.5 + k % 25 * 0.01) + fnp.cos(x) - x * 0.25
            x = (y - fnp.sum(y) * 1e-4).reshape(x.shape[::-1])
        return x
    x = np.linspace(0, 1, 600).reshape(20, 30)
    closed = ft.make_jaxpr(f, optimize=True)(x)
    assert len(closed.jaxpr.eqns) >= 10_000
    before = c_compiler.compile_count()
    with c_kernels():  # groups of every size in C
        lowered = lowering_c.lower(closed, "many")
        plan, kernels = lowering_c.kernel_plan(closed, "many")
    assert sum(k is not None for k in kernels) >= 1000
    assert c_compiler.compile_count() - before <= 1  # one translation unit (cached already: none)
    assert lowered.c_source.count("#include <math.h>") == 1
    # the rounds' kernels repeat (the constant's 25 values, the two shapes): each function is compiled once
    functions = re.findall(r"^(?:void|int) ft_many_k\d+\(", lowered.c_source, re.MULTILINE)
    assert 50 <= len(functions) <= 60
    np.testing.assert_allclose(lowered.function(x)[0], f(x), rtol=1e-9, atol=1e-12)


def test_kernels_that_differ_only_in_their_names_share_one_function():
    def f(x):
        y = x
        for scale in (1.5, 2.5, 1.5, 1.5):  # the second step differs in a constant
            y = fnp.tanh(y * scale + 0.5) - y
            y = y - fnp.sum(y, axis=0) * 0.125  # a reduction kernel with its helpers, then an elementwise one
        return y, fnp.exp(x)
    x = np.linspace(-2.0, 2.0, 6000).reshape(60, 100)
    with c_kernels():
        closed = ft.make_jaxpr(f)(x)
        plan, kernels = lowering_c.kernel_plan(closed, "shared")
        lowered = lowering_c.lower(closed, "shared")
    texts = [k.text.replace(k.name, "@") for k in kernels if k is not None]
    functions = re.findall(r"^(?:void|int) (ft_shared_k\d+)\(", lowered.c_source, re.MULTILINE)
    assert len(functions) == len(set(texts)) < len(texts)
    for got, want in zip(lowered.function(x), f(x), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-13)


def _program_with_bodies(x):
    def body(c, e):
        return fnp.tanh(c * 1.5 + e) * c + 0.25, fnp.exp(-c * c) * 2.0 - c
    c, ys = ft.lax.scan(body, x, fnp.arange(3.0))
    y = ft.lax.cond(c.sum() > 0, lambda c: fnp.sin(c) * c + 1.0 - c * c, lambda c: fnp.cos(c) * 2.0 + c, c)
    return y * 3.0 + fnp.tanh(y) - 1.0, ys


def test_the_kernels_of_loop_bodies_and_branches_join_their_programs_translation_unit():
    x = np.linspace(-1, 1, 5000)
    c_compiler.compiler_status()  # the probe, compiled before counting
    before = c_compiler.compile_count()
    jitted = jit_c(_program_with_bodies)
    got = jitted(x)
    assert c_compiler.compile_count() - before <= 1  # one translation unit (cached already: none)
    text = jitted.lower(x).as_text()
    assert text.count("#include <math.h>") == 1
    assert re.search(r"void ft_body\d+_k\d+\(", text) and len(re.findall(r"void ft_branch\d+_k\d+\(", text)) == 2
    for g, w in zip(ft.tree_util.tree_leaves(got), ft.tree_util.tree_leaves(_program_with_bodies(x)), strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-13, atol=1e-13)


def test_a_program_whose_unit_does_not_compile_runs_numpy_code_in_its_bodies_too(monkeypatch, caplog):
    def refuse(source):
        raise KernelCompileError("the test's compiler refuses")
    monkeypatch.setattr(c_compiler, "load_library", refuse)
    x = np.linspace(-1, 1, 5000)
    with c_kernels(enabled=None):  # auto: a failed compile falls back
        jitted = ft.jit(_program_with_bodies)
        got = jitted(x)
        text = jitted.lower(x).as_text()
    assert "impl_ft_" not in text and "the C kernels" not in text
    for g, w in zip(ft.tree_util.tree_leaves(got), ft.tree_util.tree_leaves(_program_with_bodies(x)), strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-13, atol=1e-13)
    with c_kernels(enabled=True), pytest.raises(KernelCompileError, match="refuses"):
        ft.jit(_program_with_bodies)(x)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork here")
def test_kernels_run_in_a_child_of_fork():
    """libgomp's threads do not survive a fork: in the child, kernels run on one thread."""
    f = jit_c(lambda x: fnp.tanh(x) * 2.0 + 1.0)
    x = np.linspace(-1, 1, 300_000)
    want = np.asarray(f(x))  # the parent's thread pool exists now
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its answer through the pipe, then out (no pytest teardown)
        try:
            os.write(write, np.asarray(f(x)).tobytes())
        finally:
            os._exit(0)
    os.close(write)
    ready, _, _ = select.select([read], [], [], 60)
    assert ready, "the child's kernel did not finish in 60 s"
    data = b""
    while len(data) < want.nbytes:
        chunk = os.read(read, want.nbytes - len(data))
        if not chunk:
            break
        data += chunk
    os.close(read)
    os.waitpid(pid, 0)
    _bits_equal(np.frombuffer(data, want.dtype), want)


def test_a_failed_compile_falls_back_to_numpy_code_unless_kernels_are_required(monkeypatch):
    def failing(source):
        raise KernelCompileError("the C compiler failed (exit status 1) on kernels.c")
    monkeypatch.setattr(c_compiler, "load_library", failing)
    f = lambda x: fnp.tanh(x) * 2.0 + 1.0  # noqa: E731
    x = np.linspace(-1, 1, 10_000)
    with c_kernels(None):  # the default: kernels where a compiler works
        lowered = ft.jit(f).lower(x)
        assert "the C kernels" not in lowered.as_text()
        np.testing.assert_array_equal(ft.jit(f)(x), f(x))
    with c_kernels(True), pytest.raises(KernelCompileError, match="exit status 1"):
        ft.jit(f)(x)


@pytest.mark.parametrize("n", [1, 7, 9, 5000])
def test_a_sum_of_negative_zeros_is_positive_zero_as_numpys(n):
    """NumPy's reductions start from their identity: 0.0 + -0.0 is +0.0."""
    x = np.full(n, -0.0)
    got = np.asarray(jit_c(lambda x: fnp.sum(x * 1.0))(x))
    _bits_equal(got, np.sum(x))
    _bits_equal(np.asarray(jit_c(lambda x: fnp.max(x + 0.0 * x))(x)), np.max(x + 0.0 * x))
