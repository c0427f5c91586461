"""The NumPy code jit generates: buffer reuse, chunked elementwise runs (on
several threads when large), matrix products, and what must hold whatever the
plan (inputs never written, fresh results, thread safety, readable source).

Most tests shrink the thresholds (a buffer from 8 elements, chunks of 64 bytes,
threads from 512 bytes), so that small arrays take every path: a chunk boundary
anywhere, a last partial chunk, buffers reused across a handful of equations,
chunks shared between threads.
"""
import contextlib
import os
import re
import subprocess
import sys
import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ftrans as ft
import ftrans.numpy as fnp
import ir
from interpreters import lowering_numpy, lowering_numpy_runtime
from interpreters.eval import eval_closed_jaxpr
from ir.core import Array
from test_primitives import ROWS


@contextlib.contextmanager
def small_thresholds(buffer_min=8, chunk_bytes=64, recycle_min_bytes=64, chunk_min_bytes=128):
    names = ("BUFFER_MIN_ELEMENTS", "CHUNK_BYTES", "RECYCLE_MIN_BYTES", "CHUNK_MIN_BYTES")
    saved = [getattr(lowering_numpy, name) for name in names]
    for name, value in zip(names, (buffer_min, chunk_bytes, recycle_min_bytes, chunk_min_bytes), strict=True):
        setattr(lowering_numpy, name, value)
    try:
        yield
    finally:
        for name, value in zip(names, saved, strict=True):
            setattr(lowering_numpy, name, value)


def lowered(f, *args, **kwargs):
    """(the optimized jaxpr jit runs, its LoweredNumpy)."""
    closed = ft.jit(f).lower(*args).jaxpr
    return closed, lowering_numpy.lower(closed, **kwargs)


def read_only(*arrays):
    copies = [np.array(a) for a in arrays]
    for a in copies:
        a.setflags(write=False)
    return copies


def gelu(x):
    return 0.5 * x * (1.0 + fnp.tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)))


# -------------------- random programs over (m, n) arrays --------------------

# name -> (operands, shape-preserving function of (m, n) arrays): elementwise chains with
# literals and 0-d operands, broadcasts, views, matrix products with transposed operands
OPERATIONS = {
    "sin": (1, fnp.sin), "tanh": (1, fnp.tanh), "exp_neg_square": (1, lambda a: fnp.exp(-a * a)),
    "scale": (1, lambda a: a * 0.5 + 1.0), "add": (2, lambda a, b: a + b), "mul": (2, lambda a, b: a * b),
    "sub": (2, lambda a, b: a - b), "div": (2, lambda a, b: a / (b * b + 1.0)),
    "where": (2, lambda a, b: fnp.where(a > b, a, b * 2.0)),
    "times_a_sum": (2, lambda a, b: a * (fnp.sum(b) / b.size)),
    "minus_column_means": (1, lambda a: a - fnp.mean(a, axis=0)),
    "transposed_twice": (1, lambda a: (a.T * 2.0).T),
    "roll_rows": (1, lambda a: fnp.concatenate([a[1:], a[:1]])),
    "through_a_vector": (1, lambda a: fnp.reshape(fnp.reshape(a, (-1,)) * 3.0, a.shape)),
    "gram_product": (2, lambda a, b: a @ (b.T @ b) / b.shape[0]),
}


# the operations that sum (reductions, matrix products): their rounding depends on the layout
SUMMING = {"times_a_sum", "minus_column_means", "gram_product"}


@st.composite
def programs(draw, max_steps=7):
    """(function of two arrays returning some of the values it computes, or its
    inputs, description). What is not returned may live in scratch buffers."""
    steps = draw(st.lists(st.tuples(st.sampled_from(sorted(OPERATIONS)), st.integers(0, 100),
                                    st.integers(0, 100)), min_size=1, max_size=max_steps))
    returned = draw(st.lists(st.integers(0, 100), min_size=1, max_size=3))

    def program(x, y):
        values = [x, y]
        for name, i, j in steps:
            arity, op = OPERATIONS[name]
            values.append(op(*[values[i % len(values)], values[j % len(values)]][:arity]))
        return [values[-1]] + [values[k % len(values)] for k in returned]
    return program, [name for name, _, _ in steps] + [f"returns {returned}"]


@st.composite
def operands(draw):
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    shape = (draw(st.integers(1, 9)), draw(st.integers(1, 9)))
    x, y = (np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1))).uniform(-2, 2, shape).astype(dtype)
            for _ in range(2))
    return x, y


def assert_fresh(results, *others):
    for i, a in enumerate(results):
        assert type(a) is Array and a.flags.writeable
        for b in [*results[:i], *others]:
            assert not np.shares_memory(a, b)


@given(programs(), operands())
def test_random_programs_equal_the_unbuffered_program_and_eager(program_and_ops, xy):
    program, ops = program_and_ops
    x, y = read_only(*xy)  # writing into an argument would raise
    with small_thresholds():
        closed, lowered_program = lowered(program, x, y)
        got = lowered_program(x, y)
    want = eval_closed_jaxpr(closed, x, y)  # the same optimized program, one impl call per equation
    rtol = 1e-5 if x.dtype == np.float32 else 1e-12
    for g, w in zip(got, want, strict=True):
        assert g.dtype == w.dtype
        if SUMMING.isdisjoint(ops):
            np.testing.assert_array_equal(g, w, err_msg=str(ops))
        else:  # buffers are C-ordered where NumPy keeps a transposed operand's order: sums may round apart
            np.testing.assert_allclose(g, w, rtol=rtol, atol=rtol, err_msg=str(ops))
    for g, w in zip(got, program(x, y), strict=True):  # eager, with no passes
        np.testing.assert_allclose(g, w, rtol=rtol, atol=rtol, err_msg=str(ops))
    np.testing.assert_array_equal(x, xy[0])
    np.testing.assert_array_equal(y, xy[1])
    again = lowered_program(x, y)
    assert_fresh(got, x, y, *again)
    again_copies = [np.array(a) for a in again]
    del got, g  # large results may now be recycled: nothing refers to the first call's
    third = lowered_program(x, y)
    assert_fresh(third, x, y, *again)
    for a, copy in zip(again, again_copies, strict=True):
        np.testing.assert_array_equal(a, copy)  # the third call wrote nothing into results still held
    for a, copy in zip(third, again_copies, strict=True):
        np.testing.assert_array_equal(a, copy)


# -------------------- buffers --------------------

def long_chain(x):
    for _ in range(10):
        x = fnp.sin(x) * 1.5 + 0.25
    return x


def test_a_long_chain_on_large_arrays_reuses_a_few_buffers():
    x = np.linspace(-1.0, 1.0, 10 ** 4)
    closed, lowered_chain = lowered(long_chain, x)
    intermediates = len(closed.eqns) - 1  # every result but the returned one
    assert intermediates == 29
    assert len(lowered_chain.scratch) <= 2 and "out=buf0" in lowered_chain.source
    np.testing.assert_array_equal(lowered_chain(x)[0], eval_closed_jaxpr(closed, x)[0])


def test_small_arrays_stay_plain_calls():
    x = np.linspace(-1.0, 1.0, 100)
    _, lowered_chain = lowered(long_chain, x)
    assert lowered_chain.scratch == () and "out=" not in lowered_chain.source


def test_results_are_never_scratch_buffers():
    x = np.linspace(-1.0, 1.0, 10 ** 4)
    # a chained result, a product, a view of what would otherwise be scratch, a 0-d result
    jitted = ft.jit(lambda x: (long_chain(x), fnp.sin(x) * 2.0, fnp.reshape(x * 3.0, (100, 100)), fnp.sum(x * x)))
    first = jitted(x)
    first_copies = [np.array(a) for a in first]
    second = jitted(x + 1.0)
    assert_fresh(list(first), x, *second)
    for a, copy in zip(first, first_copies, strict=True):  # the second call wrote nothing into the first results
        np.testing.assert_array_equal(a, copy)
    for a in first:
        a[...] = 0.0  # results are the caller's: writing into them changes nothing the next call computes
    for a, b in zip(jitted(x + 1.0), second, strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_chunked_run_never_overwrites_what_it_reads():
    def f(x):
        a = fnp.sin(x)  # a buffer: its last reader is the run below, which reads it to the last chunk
        s = fnp.sum(a)
        b = fnp.tanh(a * s) + 1.0  # a run whose result lives on in a buffer of a's shape
        return fnp.sum(b * b) + s
    x = np.linspace(-1.0, 1.0, 1000)  # not a multiple of the chunk: the last chunk overlaps
    with small_thresholds(chunk_bytes=96):
        closed, lowered_f = lowered(f, x)
    assert "for lo_ in starts_:" in lowered_f.source
    np.testing.assert_array_equal(lowered_f(x)[0], eval_closed_jaxpr(closed, x)[0])


def test_a_buffer_stays_busy_while_a_view_of_it_lives():
    def f(x):
        u = fnp.sin(x)  # in a buffer; its last reader is the reshape
        v = fnp.reshape(u, (100, 100))  # a view of that buffer, read after w is computed
        w = fnp.cos(x)  # of u's shape and dtype: it must not take u's buffer
        return fnp.sum(v, axis=0) + fnp.sum(w)
    x = np.linspace(-1.0, 1.0, 10 ** 4)
    closed, lowered_f = lowered(f, x)
    assert "out=buf0" in lowered_f.source
    np.testing.assert_array_equal(lowered_f(x)[0], eval_closed_jaxpr(closed, x)[0])


def test_never_writes_into_constants():
    w = np.linspace(0.0, 1.0, 10 ** 4)
    x = np.linspace(-1.0, 1.0, 10 ** 4)
    closed, lowered_program = lowered(lambda x: fnp.tanh(x * w + w) * w, x)
    for const in closed.consts:
        const.setflags(write=False)
    np.testing.assert_array_equal(lowered_program(x)[0], eval_closed_jaxpr(closed, x)[0])


def test_scratch_pool_gives_each_call_in_flight_its_own_buffers():
    pool = lowering_numpy_runtime.ScratchPool([((3,), np.dtype(np.float64)), ((2, 2), np.dtype(np.float32))])
    first, second = pool.take(), pool.take()  # as a re-entrant call, or another thread, would
    assert [b.shape for b in first] == [(3,), (2, 2)] and not np.shares_memory(first[0], second[0])
    pool.give(first)
    assert pool.take() is first


def test_a_large_result_is_recycled_once_nothing_refers_to_it():
    jitted = ft.jit(lambda x: fnp.tanh(x) * 2.0)
    x = np.linspace(-1.0, 1.0, 1000)
    with small_thresholds():
        assert ".take()" in jitted.lower(x).as_text()
    first = jitted(x)
    address = first.__array_interface__["data"][0]
    second = jitted(x)  # `first` is held: a new array
    assert not np.shares_memory(first, second)
    view = first[10:]
    del first
    third = jitted(x)  # a view of `first` is held: still not free
    assert not np.shares_memory(third, view) and not np.shares_memory(third, second)
    del view, third
    fourth = jitted(x)  # the first array again: nothing refers to it
    assert fourth.__array_interface__["data"][0] == address
    np.testing.assert_array_equal(fourth, np.tanh(x) * 2.0)
    np.testing.assert_array_equal(jitted(fourth), np.tanh(np.tanh(x) * 2.0) * 2.0)  # never into an argument


def test_recycled_result_hands_an_array_to_one_holder_at_a_time():
    result = lowering_numpy_runtime.RecycledResult((4,), np.dtype(np.float64))
    first, second, third = result.take(), result.take(), result.take()  # all held: three arrays
    assert len({id(first), id(second), id(third)}) == 3
    del third  # allocated beyond the KEPT two: gone for good
    kept_ids = {id(first), id(second)}
    del first
    fourth = result.take()
    assert id(fourth) in kept_ids and fourth is not second


# -------------------- chunked runs --------------------

@given(st.integers(1, 2000), st.sampled_from([np.float32, np.float64]), st.sampled_from([64, 200, 1024]),
       st.integers(0, 2 ** 32 - 1))
def test_chunked_runs_equal_the_unchunked_program(size, dtype, chunk_bytes, seed):
    rng = np.random.default_rng(seed)
    x, y = (rng.uniform(-2, 2, size).astype(dtype) for _ in range(2))
    scale = dtype(rng.uniform(0.5, 2.0))  # a 0-d operand beside the chunked arrays, as are the literals
    f = lambda x, y, s: (gelu(x) * s + y, fnp.exp(-y * y) / (x * x + 1.0), fnp.tanh(x) > y * 0.5)  # noqa: E731
    with small_thresholds(chunk_bytes=chunk_bytes):
        closed, lowered_f = lowered(f, x, y, scale)
        chunk = chunk_bytes // np.dtype(dtype).itemsize
        assert ("for lo_ in starts_:" in lowered_f.source) == (size >= 2 * chunk)  # worth a loop
        got = lowered_f(*read_only(x, y, scale))
    for g, w in zip(got, eval_closed_jaxpr(closed, x, y, scale), strict=True):
        np.testing.assert_array_equal(g, w)
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    for g, w in zip(got, f(x, y, scale), strict=True):
        np.testing.assert_allclose(g, w, rtol=rtol, atol=rtol)


def test_chunked_run_at_the_default_sizes():
    x = np.random.default_rng(0).normal(size=(1000, 601))  # 4.6 MiB: 9.2 chunks of 65536 float64
    closed, lowered_gelu = lowered(gelu, x)
    assert "hi_ = lo_ + 65536" in lowered_gelu.source
    assert re.search(r"def run\d+_chunks\(starts_, tmp0, tmp1(, tmp2)?\):", lowered_gelu.source)  # chunk-sized
    assert lowered_gelu.scratch == ()  # no full-size buffer
    np.testing.assert_array_equal(lowered_gelu(x)[0], eval_closed_jaxpr(closed, x)[0])


def test_a_non_contiguous_argument_is_read_correctly():
    x = np.random.default_rng(1).normal(size=(120, 300))
    with small_thresholds(chunk_bytes=1024):
        jitted = ft.jit(lambda x: fnp.tanh(x * 2.0) + x)
        np.testing.assert_allclose(jitted(x.T), np.tanh(x.T * 2.0) + x.T, rtol=1e-15)
        np.testing.assert_allclose(jitted(x[::2, ::3]), np.tanh(x[::2, ::3] * 2.0) + x[::2, ::3], rtol=1e-15)


# -------------------- chunked runs on several threads --------------------

@pytest.fixture
def threaded_runs(monkeypatch):
    """Chunked runs of 512 bytes or more on 4 threads. Returns the list of
    the jobs handed to the pool, as they are."""
    monkeypatch.setattr(lowering_numpy_runtime, "THREADS", 4)
    monkeypatch.setattr(lowering_numpy_runtime, "THREAD_MIN_BYTES", 512)
    jobs, run = [], lowering_numpy_runtime._WorkerPool.run
    monkeypatch.setattr(lowering_numpy_runtime._WorkerPool, "run",
                        lambda pool, job, helpers: jobs.append(job) or run(pool, job, helpers))
    return jobs


def chunk_program(x, y, s):
    return gelu(x) * s + y, fnp.exp(-y * y) / (x * x + 1.0), fnp.tanh(x) > y * 0.5


def chunk_operands(size, dtype, seed=0):
    rng = np.random.default_rng(seed)
    x, y = (rng.uniform(-2, 2, size).astype(dtype) for _ in range(2))
    return read_only(x, y, dtype(1.5))


@pytest.mark.parametrize("size, dtype", [(63, np.float64), (64, np.float64), (65, np.float64),
                                         (97, np.float64), (1001, np.float64), (127, np.float32),
                                         (128, np.float32), (999, np.float32)])
def test_threaded_runs_equal_the_unthreaded_ones_bit_for_bit(size, dtype, threaded_runs, monkeypatch):
    args = chunk_operands(size, dtype)  # sizes about the threshold (512 bytes), odd ones, a last lone chunk (97)
    with small_thresholds():
        _, lowered_f = lowered(chunk_program, *args)
    threaded = lowered_f(*args)
    assert bool(threaded_runs) == (size * np.dtype(dtype).itemsize >= 512)
    monkeypatch.setattr(lowering_numpy_runtime, "THREADS", 1)
    for got, want in zip(threaded, lowered_f(*args), strict=True):
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)


def test_tasks_write_disjoint_slices_that_cover_the_array():
    for size in range(16, 200):
        run = lowering_numpy_runtime.ChunkedRun(size, 8, [], size * 8)
        written = [{lo + i for lo in task for i in range(8)} for task in run.tasks]
        assert sum(map(len, written)) == size and set().union(*written) == set(range(size))
        assert [lo for task in run.tasks for lo in task] == list(run.starts)


def test_a_run_completes_with_no_worker_free(threaded_runs, monkeypatch):
    # a pool whose workers never come, as when every one is busy: the caller runs every chunk
    monkeypatch.setattr(lowering_numpy_runtime, "_POOL", lowering_numpy_runtime._WorkerPool())
    monkeypatch.setattr(lowering_numpy_runtime._WorkerPool, "_start", lambda pool, count: None)
    args = chunk_operands(1001, np.float64)
    with small_thresholds():
        closed, lowered_f = lowered(chunk_program, *args)
    for got, want in zip(lowered_f(*args), eval_closed_jaxpr(closed, *args), strict=True):
        np.testing.assert_array_equal(got, want)
    assert threaded_runs


def test_an_error_in_a_worker_reaches_the_caller(threaded_runs, monkeypatch):
    args = chunk_operands(1001, np.float64)
    with small_thresholds():
        closed, lowered_f = lowered(chunk_program, *args)
    caller, a_worker_failed, tanh = threading.current_thread(), threading.Event(), np.tanh

    def tanh_failing_in_workers(*args, **kwargs):
        if threading.current_thread() is not caller:
            a_worker_failed.set()
            raise FloatingPointError("in a worker")
        a_worker_failed.wait(timeout=10)  # the caller holds its first task until a worker has failed
        return tanh(*args, **kwargs)

    monkeypatch.setattr(np, "tanh", tanh_failing_in_workers)  # what the generated code calls
    with pytest.raises(FloatingPointError, match="in a worker"):
        lowered_f(*args)
    monkeypatch.setattr(np, "tanh", tanh)
    for got, want in zip(lowered_f(*args), eval_closed_jaxpr(closed, *args), strict=True):  # the pool still works
        np.testing.assert_array_equal(got, want)


def test_ftrans_jit_threads_1_turns_threads_off(monkeypatch):
    program = """if True:
        import threading
        import numpy as np
        import ftrans as ft
        import ftrans.numpy as fnp
        from interpreters import lowering_numpy_runtime
        x = np.linspace(-1.0, 1.0, 10 ** 6)  # 8 MB: a run worth threads
        ft.jit(lambda x: fnp.tanh(x * 2.0) + x)(x)
        print(lowering_numpy_runtime.THREADS, threading.active_count())"""
    two = min(2, lowering_numpy_runtime._available_cpus())  # never more threads than CPUs
    for setting, threads in (("1", 1), ("2", two)):
        # the NumPy code's chunked runs (C kernels, by default on where a compiler works, use OpenMP's threads)
        env = {**os.environ, "FTRANS_JIT_THREADS": setting, "FTRANS_CPU_KERNELS": "0"}
        done = subprocess.run([sys.executable, "-c", program], env=env,
                              cwd=os.path.dirname(os.path.dirname(__file__)), capture_output=True, text=True,
                              check=True)
        assert done.stdout.split() == [str(threads), str(threads)]  # the caller and threads - 1 workers
    for bad in ("0", "two"):
        monkeypatch.setenv("FTRANS_JIT_THREADS", bad)
        with pytest.raises(ValueError, match="FTRANS_JIT_THREADS"):
            lowering_numpy_runtime._thread_setting()


# -------------------- matrix products and broadcasts --------------------

def mlp_loss(params, x):
    (w1, b1), (w2, b2) = params
    h = fnp.tanh(x @ w1 + b1)
    return fnp.sum((h @ w2 + b2) ** 2)


def test_training_gradients_are_matmuls_written_in_the_layout_their_readers_want():
    rng = np.random.default_rng(2)
    params = [(rng.normal(size=(64, 128)), rng.normal(size=128)), (rng.normal(size=(128, 32)), rng.normal(size=32))]
    x = rng.normal(size=(96, 64))
    step = lambda params, x: [(w - 0.1 * gw, b - 0.1 * gb)  # noqa: E731
                              for (w, b), (gw, gb) in zip(params, ft.grad(mlp_loss)(params, x))]
    closed, lowered_step = lowered(step, params, x)
    source = lowered_step.source
    assert "impl_dot_general" not in source
    assert re.search(r"= numpy\.matmul\(\w+, \w+\.T, out=buf\d+\)", source)  # the backpropagated error
    # a weight gradient, transposed by AD: its product writes into the transpose's C-ordered buffer
    assert re.search(r"= numpy\.matmul\(\w+\.T, \w+, out=buf\d+\.T\)", source)
    assert "numpy.broadcast_to(" in source  # the biases, read by an add only
    leaves = ft.tree_util.tree_leaves((params, x))
    for g, w in zip(lowered_step(*leaves), eval_closed_jaxpr(closed, *leaves), strict=True):
        np.testing.assert_array_equal(g, w)


@pytest.mark.parametrize("then", ["returned", "scaled"])
def test_gradients_raveled_into_one_buffer_are_written_into_their_slices(then):
    """As psum/pmean of a pytree over processes ravels the gradients: each weight gradient's product
    writes into its slice of the concatenation (through its transpose), the rest are copied in; a
    product also read elsewhere, or an operand given twice, is copied."""
    rng = np.random.default_rng(4)
    params = [(rng.normal(size=(64, 128)), rng.normal(size=128)), (rng.normal(size=(128, 32)), rng.normal(size=32))]
    x, v = rng.normal(size=(96, 64)), rng.normal(size=64)

    def step(params, x, v):
        grads = ft.tree_util.tree_leaves(ft.grad(mlp_loss)(params, x))
        w = params[0][0]
        matvec = w.T @ v  # a 1-D product
        shared = x @ w  # read twice: copied
        flat = fnp.concatenate([g.reshape(-1) for g in grads] + [matvec, shared.reshape(-1), shared.reshape(-1),
                                                                 fnp.ones(3)])
        return (flat, fnp.sum(shared)) if then == "returned" else (flat * 2.0,)

    closed, lowered_step = lowered(step, params, x, v)
    source = lowered_step.source
    assert "impl_concatenate" not in source
    assert len(re.findall(r"= numpy\.matmul\([^\n]*out=\w+\[\d+:\d+\]\.reshape\(\(\d+, \d+\)\)\.T\)", source)) == 2
    assert re.search(r"= numpy\.matmul\([^\n]*out=\w+\[\d+:\d+\]\.reshape\(\(128,\)\)", source)
    leaves = ft.tree_util.tree_leaves((params, x, v))
    for _ in range(2):  # the second call reuses the buffers
        for g, w in zip(lowered_step(*leaves), eval_closed_jaxpr(closed, *leaves), strict=True):
            np.testing.assert_array_equal(g, w)
    if then == "returned":
        flat = lowered_step(*leaves)[0]
        assert flat.flags.owndata or flat.base is not None and flat.base.size == flat.size  # not scratch-sized


def test_a_returned_broadcast_is_materialized():
    x = np.arange(5000.0)
    jitted = ft.jit(lambda x: (fnp.broadcast_to(x, (2, 5000)), fnp.broadcast_to(x, (2, 5000)) + 1.0))
    tiled, shifted = jitted(x)
    assert tiled.flags.writeable and not np.shares_memory(tiled, x)
    np.testing.assert_array_equal(shifted, np.broadcast_to(x, (2, 5000)) + 1.0)


# -------------------- what holds everywhere --------------------

def test_only_view_primitives_return_views_of_their_operands():
    """Buffer reuse and fresh results rest on VIEW_PRIMITIVES naming every
    primitive whose implementation may return (a view of) an operand."""
    @settings(max_examples=10)  # per primitive, of 50-odd
    @given(st.data())
    def check(prim, row, data):
        args, params = row.draw(data.draw)
        out = prim.impl(*args, **params)
        for result in (out if prim.multiple_results else [out]):
            for arg in args:
                if isinstance(arg, np.ndarray) and isinstance(result, np.ndarray):
                    assert not np.shares_memory(arg, result), prim.name

    for name, row in sorted(ROWS.items()):  # (a branch or a loop body may pass an operand through)
        if name not in lowering_numpy.VIEW_PRIMITIVES and name not in lowering_numpy.PASSTHROUGH_OUTPUTS:
            check(ir.PRIMITIVES[name], row)


def test_threads_share_one_jitted_function(threaded_runs):
    jitted = ft.jit(lambda x, w: fnp.tanh(x @ w) * 0.5 + gelu(x @ w))
    w = np.random.default_rng(3).normal(size=(300, 300)) / 15
    inputs = [np.random.default_rng(seed).normal(size=(300, 300)) for seed in range(4)]
    with small_thresholds(chunk_bytes=4096):  # 176 chunks: 44 tasks
        text = jitted.lower(inputs[0], w).as_text()
    assert "for lo_ in starts_:" in text and ".take()" in text  # buffers, a chunked run, a recycled result
    want = [np.tanh(x @ w) * 0.5 + gelu_numpy(x @ w) for x in inputs]
    start, failures = threading.Barrier(4), []

    def work(i):
        start.wait()
        for _ in range(10):
            got = jitted(inputs[i], w)
            if not np.allclose(got, want[i], rtol=1e-12, atol=1e-12):
                failures.append(i)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert len(threaded_runs) == 40  # every call shared its chunked run with the pool


def gelu_numpy(x):
    return 0.5 * x * (1.0 + np.tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)))


# -------------------- readable source --------------------

def test_source_is_one_line_per_equation_named_as_printed():
    text = ft.jit(lambda x, y: fnp.tanh(x * 2.0 + y) * x).lower(np.ones(3), np.ones(3)).as_text()
    assert text == (
        "def jitted(a, b):\n"
        "    c = numpy.multiply(a, lit1)\n"
        "    d = numpy.add(c, b)\n"
        "    e = numpy.tanh(d)\n"
        "    f = numpy.multiply(e, a)\n"
        "    return (f.view(Array),)\n")


def test_chunked_source_reads_like_the_jaxpr():
    x = np.ones(20)
    with small_thresholds(recycle_min_bytes=2 ** 30):  # the result a plain new array
        closed, lowered_f = lowered(lambda x, y: fnp.tanh(x * 2.0 + y) * x, x, x)
    assert str(closed).splitlines()[1:5] == [
        "    c:f64[20] = mul a 2.0:f64[]", "    d:f64[20] = add c b",
        "    e:f64[20] = tanh d", "    f:f64[20] = mul e a"]
    assert lowered_f.source == (
        "def jitted(a, b):\n"
        "    f = numpy.empty((20,), numpy.float64)\n"
        "    a_flat = a.reshape(-1)\n"
        "    b_flat = b.reshape(-1)\n"
        "    f_flat = f.reshape(-1)\n"
        "\n"
        "    def run2_chunks(starts_, tmp0):\n"
        "        for lo_ in starts_:\n"
        "            hi_ = lo_ + 8\n"
        "            a_ = a_flat[lo_:hi_]\n"
        "            b_ = b_flat[lo_:hi_]\n"
        "            c = numpy.multiply(a_, lit1, out=tmp0)\n"
        "            d = numpy.add(c, b_, out=tmp0)\n"
        "            e = numpy.tanh(d, out=tmp0)\n"
        "            f_ = numpy.multiply(e, a_, out=f_flat[lo_:hi_])\n"
        "    run2(run2_chunks)  # on several threads when large\n"
        "    return (f.view(Array),)\n")
    assert lowered_f.function.__globals__["run2"].starts == (0, 8, 12)  # the last chunk overlaps


def test_plain_lowering_returns_what_it_computes_as_it_is():
    x = np.linspace(-1.0, 1.0, 10 ** 4)
    closed = ft.make_jaxpr(lambda x: (x, fnp.sum(x), long_chain(x)))(x)
    plain = lowering_numpy.lower(closed, copy_outputs=False)
    assert plain.scratch == () and "out=" not in plain.source and "for " not in plain.source
    same, total, chained = plain(x)
    assert same is x and isinstance(total, np.generic)
    np.testing.assert_array_equal(chained, eval_closed_jaxpr(closed, x)[2])
    fresh_same, fresh_total, _ = lowering_numpy.lower(closed)(x)
    assert not np.shares_memory(fresh_same, x) and type(fresh_total) is Array


def test_a_function_named_like_a_global_of_its_code():
    def numpy(x):
        return x * 2.0
    np.testing.assert_array_equal(ft.jit(numpy)(np.ones(2)), [2.0, 2.0])


# -------------------- dispatch --------------------

def test_cached_calls_still_check_their_arguments():
    jitted = ft.jit(lambda x: x * 2.0)
    jitted(1.0)
    leaked = []
    ft.jit(lambda x: leaked.append(x) or x)(1.0)
    with pytest.raises(ft.UnexpectedTracerError, match="escaped"):
        jitted(leaked[0])  # a float64[] like the cached signature, but a leaked tracer
    with pytest.raises(TypeError, match="argument 0 is a str"):
        jitted("1.0")
    assert jitted.trace_count == 1


# -------------------- scalar operands --------------------

# the forms a scalar argument takes; generated code must take each of them wherever it takes arrays
SCALAR_FORMS = {"python float": float, "numpy scalar": np.float64, "0-d array": np.array}


def _scalar_paths(f, s, form):
    """f's value and derivative at `s` by every path that runs generated code: jit's own
    call, a jit_call under jvp/vjp/grad/linearize/vmap, and the eager grad tape's
    lowered backward functions; name -> (value or None, derivative or None)."""
    jitted = ft.jit(f)
    one = form(1.0)
    linear_value, f_jvp = ft.linearize(jitted, s)
    vjp_value, f_vjp = ft.vjp(jitted, s)
    eager_value, f_eager_vjp = ft.vjp(f, s)
    batched = ft.vmap(lambda scale, s: jitted(s) * scale, in_axes=(0, None))(np.ones(2), s)
    return {
        "jit": (jitted(s), None),
        "jit of grad": (None, ft.jit(ft.grad(f))(s)),
        "grad of jit": ft.value_and_grad(jitted)(s),
        "jvp of jit": ft.jvp(jitted, (s,), (one,)),
        "vjp of jit": (vjp_value, f_vjp(one)[0]),
        "linearize of jit": (linear_value, f_jvp(one)),
        "vmap of jit, in_axes=None": (batched, None),  # two equal rows: compared with the value
        "eager grad (the tape's backward functions)": ft.value_and_grad(f)(s),
        "eager vjp": (eager_value, f_eager_vjp(one)[0]),
    }


def _check_scalar_paths(f, value, derivative, s, form):
    for path, (got_value, got_derivative) in _scalar_paths(f, form(s), form).items():
        for got, want in ((got_value, value), (got_derivative, derivative)):
            if got is not None:
                assert type(got) is Array, f"{path}: a {type(got).__name__}"
                np.testing.assert_allclose(got, want, rtol=1e-12, err_msg=path)


@pytest.mark.parametrize("form", SCALAR_FORMS)
@pytest.mark.parametrize("size", [3, 4096, 5000])
def test_scalar_operands_work_in_every_path_that_runs_generated_code(size, form):
    big = np.linspace(0.5, 1.5, size)  # from 4096 elements: buffers, broadcast views
    f = lambda s: fnp.sum(fnp.sin(big * s) * s)  # noqa: E731
    s = 0.7
    value = np.sum(np.sin(big * s) * s)
    derivative = np.sum(np.cos(big * s) * big * s + np.sin(big * s))
    _check_scalar_paths(f, value, derivative, s, SCALAR_FORMS[form])


@pytest.mark.parametrize("form", SCALAR_FORMS)
def test_scalar_operands_of_a_chunked_run(form):
    """Rank-0 operands inside a chunked run (which rules bind beside arrays)."""
    E = ir.primitives.elementwise
    big = np.linspace(0.5, 1.5, 1000)
    f = lambda s: ir.primitives.reductions.reduce_sum(E.add(E.sin(E.mul(big, s)), s), (0,))  # noqa: E731
    s = 0.7
    with small_thresholds():
        assert "for lo_ in starts_:" in ft.jit(f).lower(SCALAR_FORMS[form](s)).as_text()
        _check_scalar_paths(f, np.sum(np.sin(big * s) + s), np.sum(np.cos(big * s) * big) + big.size, s,
                            SCALAR_FORMS[form])


def test_scalar_operands_at_the_default_chunk_sizes():
    E = ir.primitives.elementwise
    big = np.linspace(0.5, 1.5, 2 ** 20)  # 8 MiB: chunked, on threads where there are several CPUs
    f = lambda s: ir.primitives.reductions.reduce_sum(E.mul(E.sin(E.mul(big, s)), s), (0,))  # noqa: E731
    assert "for lo_ in starts_:" in ft.jit(f).lower(0.7).as_text()
    for form in SCALAR_FORMS.values():
        np.testing.assert_allclose(ft.jit(f)(form(0.7)), np.sum(np.sin(big * 0.7) * 0.7), rtol=1e-12)
        np.testing.assert_allclose(ft.grad(ft.jit(f))(form(0.7)),
                                   np.sum(np.cos(big * 0.7) * big * 0.7 + np.sin(big * 0.7)), rtol=1e-12)
