"""How jit's NumPy code writes dot_general (interpreters/lowering_numpy_dot.py):
one numpy.matmul or one broadcasting numpy.multiply on views of the operands,
a product read by a transpose written straight into the transpose's array,
and in every case exactly what the primitive's implementation computes.

Random dimension numbers (batch, contracting and free dims of sizes 1 to 3, in
any order in each operand) are lowered with and without a transpose after the
product, as a result or read by an elementwise operation, with the buffer
threshold lowered so that small arrays take the buffered paths too; the
results must equal eager evaluation bit for bit (the same BLAS calls on the
same matrices) and be fresh arrays.
"""
import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import ftrans as ft
import ftrans.numpy as fnp
from ftrans import lax
from interpreters import lowering_numpy, lowering_numpy_dot
from interpreters.eval import eval_closed_jaxpr
from test_codegen import small_thresholds


@st.composite
def products(draw):
    """(lhs shape, rhs shape, dimension_numbers, dtype) of a random dot_general."""
    counts = draw(st.lists(st.integers(0, 2), min_size=4, max_size=4).filter(lambda c: sum(c) <= 4))
    batch, contract, lhs_free, rhs_free = counts
    sizes = lambda n: draw(st.lists(st.integers(1, 3), min_size=n, max_size=n))  # noqa: E731
    batch_sizes, contract_sizes = sizes(batch), sizes(contract)
    shared = [("b", i) for i in range(batch)] + [("c", i) for i in range(contract)]
    lhs_dims = shared + [("l", i) for i in range(lhs_free)]
    rhs_dims = shared + [("r", i) for i in range(rhs_free)]
    lhs_dims, rhs_dims = draw(st.permutations(lhs_dims)), draw(st.permutations(rhs_dims))
    if not lhs_dims or not rhs_dims:  # rank-0 operands keep the implementation's call: not what this tests
        lhs_dims, rhs_dims = lhs_dims or [("l", 0)], rhs_dims or [("r", 0)]
    free = {("l", i): s for i, s in enumerate(sizes(lhs_free + 1))}
    free.update({("r", i): s for i, s in enumerate(sizes(rhs_free + 1))})
    size = lambda d: {"b": batch_sizes, "c": contract_sizes}[d[0]][d[1]] if d[0] in "bc" else free[d]  # noqa: E731
    dims = (((tuple(lhs_dims.index(("c", i)) for i in range(contract)),
              tuple(rhs_dims.index(("c", i)) for i in range(contract))),
             (tuple(lhs_dims.index(("b", i)) for i in range(batch)),
              tuple(rhs_dims.index(("b", i)) for i in range(batch)))))
    dtype = draw(st.sampled_from([np.float64, np.float32, np.int64]))
    return tuple(map(size, lhs_dims)), tuple(map(size, rhs_dims)), dims, dtype


def operand(shape, dtype, seed):
    values = np.random.default_rng(seed).normal(size=shape) * 3
    return values.astype(dtype)


@given(products(), st.data())
def test_lowered_products_equal_the_implementation(product, data):
    lhs_shape, rhs_shape, dims, dtype = product
    lhs, rhs = operand(lhs_shape, dtype, 0), operand(rhs_shape, dtype, 1)
    out_ndim = lax.dot_general(lhs, rhs, dims).ndim
    permutation = tuple(data.draw(st.permutations(range(out_ndim)))) if out_ndim else ()
    reader = data.draw(st.sampled_from(["none", "transpose", "transpose then add"]))

    def f(lhs, rhs):
        p = lax.dot_general(lhs, rhs, dims)
        if reader == "none":
            return p, lhs
        t = lax.transpose(p, permutation)
        return (t, t + 1) if reader == "transpose then add" else (t, fnp.sum(t))

    with small_thresholds(buffer_min=data.draw(st.sampled_from([1, 8, 4096]))):
        closed = ft.jit(f).lower(lhs, rhs).jaxpr
        lowered = lowering_numpy.lower(closed)
        got = lowered(lhs, rhs)
    assert "impl_dot_general" not in lowered.source
    expected = eval_closed_jaxpr(closed, lhs, rhs)
    for g, e in zip(got, expected, strict=True):
        assert g.shape == e.shape and g.dtype == e.dtype
    np.testing.assert_array_equal(got[0], expected[0])
    # a sum's rounding depends on the layout it reads: the transpose's is C-ordered when written into
    np.testing.assert_allclose(got[1], expected[1], rtol=1e-5 if dtype == np.float32 else 1e-12)
    arrays = [np.asarray(g) for g in got]
    for i, g in enumerate(arrays):  # fresh: no result shares memory with an input or another result
        assert not np.shares_memory(g, lhs) and not np.shares_memory(g, rhs)
        assert not any(np.shares_memory(g, h) for h in arrays[i + 1:])


def loss(params, x, y):
    (w1, b1), (w2, b2) = params
    h = fnp.tanh(x @ w1 + b1)
    return fnp.sum((h @ w2 + b2 - y) ** 2)


@given(products(), st.data())
def test_a_product_writes_into_a_transposed_array_exactly_when_numpy_makes_that_a_view(product, data):
    """`writes_into` (static, from shapes) against NumPy: matmul's (B, M, N) grouping of
    the transposed array is a view, or a multiply, which takes any view."""
    lhs_shape, rhs_shape, dims, dtype = product
    lhs, rhs = operand(lhs_shape, dtype, 0), operand(rhs_shape, dtype, 1)
    closed = ft.jit(lambda a, b: lax.dot_general(a, b, dims)).lower(lhs, rhs).jaxpr
    (eqn,) = closed.jaxpr.eqns
    lowered = lowering_numpy_dot.product(eqn)
    shape = eqn.outvars[0].aval.shape
    permutation = tuple(data.draw(st.permutations(range(len(shape)))))
    dest = np.empty([shape[p] for p in permutation], dtype)
    view = dest.transpose(np.argsort(permutation))
    if lowered.outer:
        assert lowered.writes_into(permutation)
    else:
        assert lowered.writes_into(permutation) == np.shares_memory(view.reshape(lowered.matmul_shape), dest)


def per_example_gradients(params, x, y):
    return ft.vmap(ft.grad(loss), in_axes=(None, 0, 0))(params, x, y)


def test_per_example_weight_gradients_are_one_multiply_into_their_result():
    """vmap(grad) makes each weight gradient an outer product per example, then
    transposes it: one broadcasting multiply writes it, transposed, straight into
    the array returned (no matmul of contractions of size 1, no copy of a view)."""
    rng = np.random.default_rng(0)
    params = [(rng.normal(size=(16, 32)), rng.normal(size=32)), (rng.normal(size=(32, 1)), rng.normal(size=1))]
    x, y = rng.normal(size=(128, 16)), rng.normal(size=(128, 1))
    jitted = ft.jit(per_example_gradients)
    source = jitted.lower(params, x, y).as_text()
    assert "impl_dot_general" not in source and "numpy.array(" not in source
    assert "numpy.matmul" in source  # the forward pass
    assert len([line for line in source.splitlines() if "numpy.multiply(" in line and ".transpose(" in line]) >= 2
    (g1, gb1), (g2, gb2) = jitted(params, x, y)
    for i in (0, 77):
        expected = ft.grad(loss)(params, x[i], y[i])  # one example at a time, eagerly
        np.testing.assert_allclose(g1[i], expected[0][0], rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(g2[i], expected[1][0], rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(gb1[i], expected[0][1], rtol=1e-12, atol=1e-12)
    assert g1.flags.c_contiguous and g1.flags.writeable
