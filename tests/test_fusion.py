"""The fusion planner (ir/passes/fusion.py) and the CuPy lowering's host side,
on machines without a GPU: plans of hand-written and traced jaxprs, golden
snapshots of plans and CUDA sources, the kernel cache, and every plan run
with NumPy standing in for the kernels, against eager evaluation."""
import os
import pathlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ftrans as ft
import ftrans.numpy as fnp
from interpreters import lowering_cupy
from ir import passes
from ir.passes import fusion
from ir.core import Eqn, Jaxpr, Literal, ShapedArray, Var
from ir.parser import parse
from ir.passes.fusion import (ElementwiseGroup, LibraryCall, Load, ReductionGroup, load_shape,
                              plan_fusion)
from ir.passes.inline import inline_calls
from ir.primitives import elementwise as ew
from ir.primitives import indexing, linalg, reductions, structural
from random_programs import programs

GOLDEN = pathlib.Path(__file__).parent / "golden"


def optimized(f, *args):
    """The jaxpr `jit` lowers: traced, inlined, optimized as jit optimizes."""
    return passes.optimize(inline_calls(ft.make_jaxpr(f)(*args)), exact_powers=False)


def gelu(x):
    return 0.5 * x * (1.0 + fnp.tanh(0.7978845608 * (x + 0.044715 * x ** 3)))


def mlp_loss(params, x, y):
    (w1, b1), (w2, b2) = params
    h = fnp.tanh(x @ w1 + b1)
    return fnp.mean((h @ w2 + b2 - y) ** 2)


def mlp_args(dtype=np.float32, seed=0):
    rng = np.random.default_rng(seed)
    normal = lambda *shape: rng.normal(size=shape).astype(dtype)
    return ([(normal(4, 5), normal(5)), (normal(5, 3), normal(3))], normal(2, 4), normal(2, 3))


def kinds(plan):
    return [type(step).__name__ for step in plan.steps]


# -------------------- hand-written jaxprs --------------------

def test_a_chain_of_elementwise_equations_is_one_kernel():
    plan = plan_fusion(parse("{ lambda ; a:f32[8]. let b:f32[8] = sin a; c:f32[8] = mul b 2.0:f32[];"
                             " d:f32[8] = exp c in (d,) }"))
    (step,) = plan.steps
    assert isinstance(step, ElementwiseGroup) and len(step.eqns) == 3
    assert [l.var for l in step.inputs] == plan.jaxpr.invars and step.outputs == plan.jaxpr.outvars


def test_intermediates_read_outside_become_extra_outputs():
    closed = parse("{ lambda ; a:f64[4]. let b:f64[4] = sin a; c:f64[4] = cos b; d:f64[4] = mul b c"
                   " in (b, d) }")
    (step,) = plan_fusion(closed).steps
    b, d = closed.jaxpr.outvars
    assert step.outputs == [b, d]


def test_one_output_shape_per_group():
    plan = plan_fusion(parse("{ lambda ; a:f32[4] b:f32[3]. let c:f32[4] = sin a; d:f32[3] = sin b;"
                             " e:f32[4] = exp c; f:f32[3] = exp d in (e, f) }"))
    assert kinds(plan) == ["ElementwiseGroup", "ElementwiseGroup"]
    assert sorted(step.shape for step in plan.steps) == [(3,), (4,)]


def test_no_group_forms_a_cycle_through_a_library_call():
    # d reads b both directly and through the dot: fusing it with b would need
    # the dot's result before the kernel computing b has run
    closed = parse("{ lambda ; a:f32[3] w:f32[3,3]. let b:f32[3] = sin a;"
                   " c:f32[3] = dot_general[dimension_numbers=(((0,), (0,)), ((), ()))] b w;"
                   " d:f32[3] = add b c in (d,) }")
    plan = plan_fusion(closed)
    assert kinds(plan) == ["ElementwiseGroup", "LibraryCall", "ElementwiseGroup"]
    assert_topological(plan)


def test_groups_on_either_side_of_an_independent_call_merge():
    # the dot reads neither group: both run as one kernel, after it
    closed = parse("{ lambda ; a:f32[3] w:f32[3,3] v:f32[3]. let b:f32[3] = sin a;"
                   " c:f32[3] = dot_general[dimension_numbers=(((0,), (0,)), ((), ()))] v w;"
                   " d:f32[3] = exp c; e:f32[] = reduce_sum[axes=(0,)] d;"
                   " f:f32[3] = mul b e in (f,) }")
    plan = plan_fusion(closed)
    assert kinds(plan) == ["LibraryCall", "ReductionGroup", "ElementwiseGroup"]
    assert [e.primitive.name for e in plan.steps[2].eqns] == ["sin", "mul"]


def test_a_scalar_computed_late_joins_the_group_that_reads_it():
    closed = optimized(lambda x: fnp.sin(x) / (fnp.sum(x) + 1.0), np.ones(4))
    plan = plan_fusion(closed)
    assert kinds(plan) == ["ReductionGroup", "ElementwiseGroup", "ElementwiseGroup"]
    assert [step.shape for step in plan.steps[1:]] == [(), (4,)]


def test_broadcasts_of_inputs_become_broadcasting_loads():
    closed = parse("{ lambda ; a:f32[2,3] b:f32[3]. let"
                   " c:f32[2,3] = broadcast_in_dim[broadcast_dimensions=(1,) shape=(2, 3)] b;"
                   " d:f32[2,3] = add a c in (d,) }")
    (step,) = plan_fusion(closed).steps
    a, b = closed.jaxpr.invars
    assert step.inputs == [Load(b, (1, 3)), Load(a, (2, 3))]
    source = lowering_cupy.lower(closed, "f").kernels[0]
    assert source.body == "const float v0 = in1 + in0;\nout0 = v0;"


def test_a_broadcast_read_across_a_library_call_is_loaded_by_each_kernel_not_written_out():
    closed = parse("{ lambda ; a:f32[2,3] b:f32[3] w:f32[3,3]. let"
                   " c:f32[2,3] = broadcast_in_dim[broadcast_dimensions=(1,) shape=(2, 3)] b;"
                   " d:f32[2,3] = add a c;"
                   " e:f32[2,3] = dot_general[dimension_numbers=(((1,), (0,)), ((), ()))] d w;"
                   " f:f32[2,3] = mul e c in (f,) }")
    a, b, w = closed.jaxpr.invars
    first, call, second = plan_fusion(closed).steps
    assert isinstance(call, LibraryCall)
    assert first.outputs == [closed.jaxpr.eqns[1].outvars[0]]  # d only: the broadcast c is not written out
    assert Load(b, (1, 3)) in first.inputs and Load(b, (1, 3)) in second.inputs
    args = [np.ones((2, 3), np.float32), np.arange(3, dtype=np.float32), np.arange(9, dtype=np.float32).reshape(3, 3)]
    assert_topological(plan_fusion(closed))
    (got,), (want,) = run_on_numpy(closed, *args), closed(*args)
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_a_broadcast_of_a_broadcast_is_read_not_taken_into_a_kernel_of_another_shape():
    closed = parse("{ lambda ; a:f32[4] h:f32[3,4]. let"
                   " r:f32[1,4] = broadcast_in_dim[broadcast_dimensions=(1,) shape=(1, 4)] a;"
                   " s:f32[1,4] = mul r r;"
                   " t:f32[3,4] = broadcast_in_dim[broadcast_dimensions=(0, 1) shape=(3, 4)] r;"
                   " u:f32[3,4] = mul t h in (s, u) }")
    plan = plan_fusion(closed)
    assert_topological(plan)
    assert sorted(step.shape for step in plan.steps) == [(1, 4), (3, 4)]
    args = [np.arange(4, dtype=np.float32), np.arange(12, dtype=np.float32).reshape(3, 4)]
    for got, want in zip(run_on_numpy(closed, *args), closed(*args), strict=True):
        np.testing.assert_array_equal(got, want)


def test_a_reduction_absorbs_the_group_that_computes_its_operand():
    closed = parse("{ lambda ; a:f32[8]. let b:f32[8] = sin a; c:f32[8] = mul b b;"
                   " d:f32[] = reduce_sum[axes=(0,)] c in (d,) }")
    (step,) = plan_fusion(closed).steps
    assert isinstance(step, ReductionGroup)
    assert [e.primitive.name for e in step.eqns] == ["sin", "mul"]
    assert step.inputs == [Load(closed.jaxpr.invars[0], (8,))]


def test_a_reduction_reads_an_operand_that_is_written_out_anyway():
    closed = parse("{ lambda ; a:f32[8]. let b:f32[8] = sin a;"
                   " c:f32[] = reduce_sum[axes=(0,)] b in (b, c) }")
    group, reduction = plan_fusion(closed).steps
    b = closed.jaxpr.outvars[0]
    assert group.outputs == [b] and reduction.eqns == [] and reduction.inputs == [Load(b, (8,))]


def test_a_reduction_whose_map_inputs_would_not_span_its_operand_reads_it():
    # the map would read only the scalar a: CuPy could not tell the reduced shape from its inputs
    closed = parse("{ lambda ; a:f32[]. let b:f32[8] = broadcast_in_dim[broadcast_dimensions=() shape=(8,)] a;"
                   " c:f32[8] = exp b; d:f32[] = reduce_sum[axes=(0,)] c in (d,) }")
    group, reduction = plan_fusion(closed).steps
    assert isinstance(group, ElementwiseGroup) and reduction.eqns == []


def test_float16_is_left_to_library_calls():
    plan = plan_fusion(parse("{ lambda ; a:f16[8]. let b:f16[8] = sin a; c:f16[8] = exp b in (c,) }"))
    assert kinds(plan) == ["LibraryCall", "LibraryCall"]
    assert kinds(plan_fusion(parse("{ lambda ; a:f16[8]. let b:f16[8] = sin a in (b,) }"), fusion.C)) == ["LibraryCall"]


def test_the_c_target_with_float16_fuses_halves_but_not_their_reductions_nor_pow():
    closed = parse("{ lambda ; a:f16[8] s:f32[]. let b:f16[8] = sin a; c:f16[8] = broadcast_in_dim["
                   "broadcast_dimensions=() shape=(8,)] 2.0:f16[]; d:f16[8] = mul b c;"
                   " e:f32[8] = convert_element_type[new_dtype=float32 weak_type=False] d;"
                   " f:f32[8] = mul e s; g:f16[] = reduce_sum[axes=(0,)] d; h:f16[8] = pow a d in (f, g, h) }")
    plan = plan_fusion(closed, fusion.C_FLOAT16)
    assert kinds(plan) == ["ElementwiseGroup", "LibraryCall", "LibraryCall"]
    group = plan.steps[0]
    assert [e.primitive.name for e in group.eqns] == ["sin", "broadcast_in_dim", "mul", "convert_element_type", "mul"]
    assert {s.eqn.primitive.name for s in plan.steps[1:]} == {"reduce_sum", "pow"}


# -------------------- traced programs --------------------

def test_grad_of_sum_of_gelu_is_one_kernel_computing_forward_and_derivative():
    closed = optimized(ft.grad(lambda x: fnp.sum(gelu(x))), np.ones(8, np.float32))
    (step,) = plan_fusion(closed).steps
    assert isinstance(step, ElementwiseGroup)
    assert "tanh" in [e.primitive.name for e in step.eqns]  # the forward value, inside the same kernel


def test_value_and_grad_of_sum_of_gelu_is_a_kernel_and_a_reduction():
    closed = optimized(ft.value_and_grad(lambda x: fnp.sum(gelu(x))), np.ones(8, np.float32))
    plan = plan_fusion(closed)
    assert kinds(plan) == ["ElementwiseGroup", "ReductionGroup"]
    assert "tanh" in [e.primitive.name for e in plan.steps[1].eqns]  # the sum recomputes gelu


def test_sum_of_gelu_is_one_reduction_kernel():
    plan = plan_fusion(optimized(lambda x: fnp.sum(gelu(x)), np.ones(8, np.float32)))
    assert kinds(plan) == ["ReductionGroup"]


def test_mlp_gradient_plan():
    plan = plan_fusion(optimized(ft.grad(mlp_loss), *mlp_args()))
    assert len(plan.kernels) == 5
    assert {step.eqn.primitive.name for step in plan.steps if isinstance(step, LibraryCall)} == {
        "dot_general", "transpose"}
    assert_topological(plan)


# -------------------- golden snapshots --------------------

GOLDEN_PROGRAMS = {
    "gelu": lambda: optimized(gelu, np.ones(1000, np.float32)),
    "grad_sum_gelu": lambda: optimized(ft.grad(lambda x: fnp.sum(gelu(x))), np.ones(1000, np.float32)),
    "value_and_grad_sum_gelu": lambda: optimized(ft.value_and_grad(lambda x: fnp.sum(gelu(x))),
                                                 np.ones(1000, np.float32)),
    "mlp_grad": lambda: optimized(ft.grad(mlp_loss), *mlp_args()),
    "softmax": lambda: optimized(lambda x: fnp.exp(x - fnp.logsumexp(x, axis=1, keepdims=True)),
                                 np.ones((16, 10))),
    "numpy_semantics": lambda: optimized(
        lambda x, k: (fnp.maximum(x, 0.0) // 3.0, x % -2.0, k // 4, k % 3, fnp.sign(k), x.astype(np.int32)),
        np.ones(5, np.float32), np.ones(5, np.int64)),
}


@pytest.mark.parametrize("name", sorted(GOLDEN_PROGRAMS))
def test_golden_plan_and_cuda_source(name):
    """The host plan and kernel sources, verbatim. After an intended change,
    FTRANS_UPDATE_GOLDEN=1 rewrites tests/golden/."""
    source = lowering_cupy.lower(GOLDEN_PROGRAMS[name](), name).source
    path = GOLDEN / f"{name}.txt"
    if os.environ.get("FTRANS_UPDATE_GOLDEN"):
        path.write_text(source)
    assert source == path.read_text()


# -------------------- the host side, with NumPy standing in for the GPU --------------------

def numpy_kernel(step):
    """A kernel step evaluated with NumPy implementations, from the same Loads
    the CuPy kernel gets: checks the plan's data flow, not the CUDA code."""
    def launch(*inputs):
        loaded = dict(zip(step.inputs, inputs, strict=True))
        env = {}

        def read(x, shape=None):
            if type(x) is Literal:
                return x.value
            return env[x] if x in env else loaded[Load(x, x.aval.shape if shape is None else shape)]

        for eqn in step.eqns:
            if eqn.primitive is structural.broadcast_in_dim_p:
                value = np.broadcast_to(read(eqn.invars[0], load_shape(eqn)).reshape(load_shape(eqn)),
                                        eqn.params["shape"])
            else:
                with np.errstate(all="ignore"):  # a kernel computes IEEE results silently, as ftrans does
                    value = eqn.primitive.impl(*[read(x) for x in eqn.invars], **eqn.params)
            env[eqn.outvars[0]] = value
        if isinstance(step, ElementwiseGroup):
            return [np.array(env[v]) for v in step.outputs]
        operand = step.reduction.invars[0]
        value = env[operand] if step.eqns else np.broadcast_to(inputs[0], operand.aval.shape)
        return [np.asarray(step.reduction.primitive.impl(value, **step.reduction.params))]
    return launch


def run_on_numpy(closed, *args):
    lowered = lowering_cupy.lower(closed)
    leaves = [np.asarray(x, v.aval.dtype) for x, v in zip(args, closed.jaxpr.invars, strict=True)]
    return run_lowered_on_numpy(lowered, leaves)


def run_lowered_on_numpy(lowered, args):
    """A LoweredCupy's host plan run with NumPy kernels; the plans of loop bodies and
    branches run so too, from the host loop or branch that calls them."""
    return lowering_cupy.execute(lowered.plan, list(lowered.jaxpr.consts) + list(args), np,
                                 [numpy_kernel(step) for step in lowered.plan.kernels], lowered.nested,
                                 run_lowered_on_numpy)


def assert_topological(plan):
    defined = set(plan.jaxpr.constvars + plan.jaxpr.invars)
    for step in plan.steps:
        if isinstance(step, LibraryCall):
            reads, writes = step.eqn.invars, step.eqn.outvars
        else:
            reads = [load.var for load in step.inputs]
            writes = step.outputs if isinstance(step, ElementwiseGroup) else step.reduction.outvars
            members = step.eqns if isinstance(step, ElementwiseGroup) else step.eqns + [step.reduction]
            assert len({e.outvars[0].aval.shape for e in step.eqns}) <= 1  # one shape per kernel
            assert all(e.primitive.elementwise or e.primitive is structural.broadcast_in_dim_p
                       for e in step.eqns)
            assert set(writes) <= {v for e in members for v in e.outvars}
        assert all(type(x) is Literal or x in defined for x in reads)
        defined.update(writes)
    assert all(type(x) is Literal or x in defined for x in plan.jaxpr.outvars)


@settings(max_examples=30)
@given(programs(), st.data())
def test_every_plan_runs_like_eager_evaluation(program_and_ops, data):
    program, _ = program_and_ops
    x, y = (np.asarray(data.draw(st.lists(st.floats(-2, 2), min_size=4, max_size=4))) for _ in range(2))
    for f in (program, ft.grad(lambda x, y: sum(fnp.sum(v * v) for v in program(x, y)))):
        closed = optimized(f, x, y)
        assert_topological(plan_fusion(closed))
        expected = ft.tree_util.tree_leaves(f(x, y))
        for got, want in zip(run_on_numpy(closed, x, y), expected, strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_mlp_gradient_runs_like_eager_evaluation():
    args = mlp_args(np.float64)
    closed = optimized(ft.grad(mlp_loss), *args)
    got = run_on_numpy(closed, *ft.tree_util.tree_leaves(args))
    for g, w in zip(got, ft.tree_util.tree_leaves(ft.grad(mlp_loss)(*args)), strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-12)


def test_library_calls_that_build_arrays_have_array_module_versions():
    """gather, scatter, pad, iota, ...: the versions CuPy runs, run with NumPy,
    equal the primitives' own implementations."""
    rng = np.random.default_rng(1)
    operand, updates = rng.normal(size=(5, 3)), rng.normal(size=(4, 3))
    indices = np.array([[0], [7], [-1], [0]])
    cases = [
        (structural.iota_p, [], dict(dtype=np.dtype(np.int32), shape=(2, 3), dimension=1)),
        (structural.broadcast_in_dim_p, [rng.normal(size=3)], dict(shape=(2, 3), broadcast_dimensions=(1,))),
        (structural.pad_p, [operand, np.float64(-1)], dict(padding_config=((1, 2, 1), (0, 1, 0)))),
    ]
    cases += [(indexing.gather_p, [operand, indices], dict(mode=mode, fill_value=None))
              for mode in ("clip", "fill")]
    cases += [(p, [operand, np.array([[1], [1], [9]]), updates[:3]], {})
              for p in (indexing.scatter_add_p, indexing.scatter_p)]
    cases += [(p, [operand], dict(axes=axes)) for p in (reductions.reduce_max_p, reductions.reduce_min_p)
              for axes in ((0,), (0, 1))]
    cases += [(ew.convert_element_type_p, [operand], dict(new_dtype=np.dtype(np.float16), weak_type=False)),
              (ew.integer_pow_p, [operand], dict(y=3))]
    for prim, args, params in cases:
        eqn = Eqn(prim, [], [], params)
        (got,) = lowering_cupy.library_call(np, eqn, args)
        np.testing.assert_array_equal(got, prim.impl(*args, **params), err_msg=prim.name)


# -------------------- lowering without CuPy, and the kernel cache --------------------

def test_lower_needs_no_cupy_and_calling_without_it_says_what_is_missing():
    lowered = lowering_cupy.lower(optimized(gelu, np.ones(8, np.float32)), "gelu")
    assert "gelu_k0: cupy.ElementwiseKernel" in lowered.source
    try:
        import cupy  # noqa: F401 (only whether it imports)
    except ImportError:
        with pytest.raises(RuntimeError, match="CuPy"):
            lowered(np.ones(8, np.float32))


class FakeCupy:
    """Enough of CuPy's API to run a plan's host side and count kernel builds."""

    def __init__(self):
        self.built = []
        self.asarray, self.empty = np.asarray, np.empty
        fake = self

        class Kernel:
            def __init__(self, *args, **kwargs):
                fake.built.append(args)

            def __call__(self, *args, axis=None):
                return np.zeros(())

        self.ElementwiseKernel = self.ReductionKernel = Kernel


def test_kernels_are_built_once_per_source_and_dtypes(monkeypatch):
    fake = FakeCupy()
    monkeypatch.setattr(lowering_cupy, "import_cupy", lambda: fake)
    monkeypatch.setattr(lowering_cupy, "_KERNEL_CACHE", {})
    f = ft.value_and_grad(lambda x: fnp.sum(gelu(x)))
    x = np.ones(8, np.float32)
    first = lowering_cupy.lower(optimized(f, x), "g")
    first(x)
    first(x)
    assert len(fake.built) == 2  # an elementwise kernel and a reduction, built on the first call
    lowering_cupy.lower(optimized(f, x), "g")(x)  # a new lowering of identical kernels
    lowering_cupy.lower(optimized(f, x), "other_name")(x)  # the same kernels in another function
    assert len(fake.built) == 2
    lowering_cupy.lower(optimized(f, x.astype(np.float64)), "g")(x.astype(np.float64))
    assert len(fake.built) == 4  # other dtypes: other kernels


def test_large_programs_plan_without_recursion_or_quadratic_time():
    """A 30,000-equation chain is one kernel; 10,000 layers of tanh and dot
    alternate kernels and calls (each plans in well under a second)."""
    x, w = Var(ShapedArray((4, 4), np.float32)), Var(ShapedArray((4, 4), np.float32))
    eqns, value = [], x
    for k in range(30_000):
        out = Var(x.aval)
        eqns.append(Eqn(ew.sin_p, [value], [out], {}) if k % 2 else Eqn(ew.add_p, [value, w], [out], {}))
        value = out
    (step,) = plan_fusion(Jaxpr([], [x, w], eqns, [value])).steps
    assert len(step.eqns) == 30_000
    eqns, value = [], x
    for _ in range(10_000):
        a, b = Var(x.aval), Var(x.aval)
        eqns += [Eqn(ew.tanh_p, [value], [a], {}),
                 Eqn(linalg.dot_general_p, [a, w], [b], {"dimension_numbers": (((1,), (0,)), ((), ()))})]
        value = b
    assert kinds(plan_fusion(Jaxpr([], [x, w], eqns, [value]))) == ["ElementwiseGroup", "LibraryCall"] * 10_000
