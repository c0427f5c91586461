"""Run under `mpiexec -n 2` by tests/test_distributed.py: each collective's value on every rank,
eagerly and under jit, against the same collective under vmap(axis_name=...) on one process."""
import numpy as np

import ftrans as ft
import ftrans.numpy as fnp

ft.distributed.initialize(timeout=60)
rank, n = ft.distributed.process_index(), ft.distributed.process_count()
rng = np.random.default_rng(0)
everyone = rng.standard_normal((n, 4, 6))  # row r: rank r's local value
mine = everyone[rank]

cases = {
    "psum": lambda x: ft.lax.psum(x, "i"),
    "psum_scalar": lambda x: ft.lax.psum(x[0, 0], "i"),
    "pmean": lambda x: ft.lax.pmean(x, "i"),
    "pmax": lambda x: ft.lax.pmax(x, "i"),
    "pmin": lambda x: ft.lax.pmin(x, "i"),
    "all_gather": lambda x: ft.lax.all_gather(x, "i", axis=1),
    "all_gather_tiled": lambda x: ft.lax.all_gather(x, "i", axis=1, tiled=True),
    "psum_scatter": lambda x: ft.lax.psum_scatter(x[:n], "i"),
    "psum_scatter_tiled": lambda x: ft.lax.psum_scatter(x, "i", scatter_dimension=1, tiled=True),
    "ppermute": lambda x: ft.lax.ppermute(x, "i", [(j, (j + 1) % n) for j in range(n)]),
    "ppermute_partial": lambda x: ft.lax.ppermute(x, "i", [(0, 1)]),
    "all_to_all": lambda x: ft.lax.all_to_all(x[:n], "i", 0, 1),
    "all_to_all_tiled": lambda x: ft.lax.all_to_all(x, "i", 1, 0, tiled=True),
    "axis_index": lambda x: x * ft.lax.axis_index("i"),
}
for name, f in cases.items():
    expected = np.asarray(ft.vmap(f, axis_name="i")(everyone))[rank]
    eager = np.asarray(ft.shard_map(f, axis_name="i")(mine))
    jitted = np.asarray(ft.jit(ft.shard_map(f, axis_name="i"))(mine))
    inner_jit = np.asarray(ft.shard_map(ft.jit(f), axis_name="i")(mine))
    for got, how in ((eager, "eager"), (jitted, "jit"), (inner_jit, "jit inside")):
        assert got.shape == expected.shape and np.allclose(got, expected, rtol=1e-12, atol=1e-12), (name, how)
    # float32 keeps its dtype
    got32 = ft.shard_map(f, axis_name="i")(mine.astype(np.float32))
    assert name == "axis_index" or np.asarray(got32).dtype == np.float32, name

# vmap inside the process axis: psum over processes of a batch
batched = ft.shard_map(ft.vmap(lambda x: ft.lax.psum(x, "i")), axis_name="i")(mine)
assert np.allclose(batched, everyone.sum(0))
# grad of a per-process function through psum (as JAX's pmap: psum's transpose is psum)
g = ft.shard_map(ft.grad(lambda x: fnp.sum(ft.lax.psum(x, "i") ** 2)), axis_name="i")(mine)
assert np.allclose(g, n * 2 * everyone.sum(0))
# pmap over processes: leading axis of one (this process's device)
out = ft.pmap(lambda x: ft.lax.psum(x, "p"), axis_name="p")(mine[None])
assert out.shape == (1, 4, 6) and np.allclose(out[0], everyone.sum(0))
scaled = ft.jit(ft.pmap(lambda x, c: ft.lax.pmean(x * c, "p"), axis_name="p", in_axes=(0, None)))(mine[None], 3.0)
assert np.allclose(scaled[0], 3.0 * everyone.mean(0))
g = ft.pmap(ft.grad(lambda x: ft.lax.psum(fnp.sum(x ** 2), "p")), axis_name="p")(mine[None])
assert np.allclose(g[0], n * 2 * mine)  # as JAX's pmap: psum's transpose is psum
try:
    ft.pmap(lambda x: x, axis_name="p")(everyone)
except ValueError as e:
    assert "size 1 along axis 0" in str(e)
else:
    raise AssertionError("pmap took a leading axis other than the local device count")
# a large result's buffer is reused only once nothing holds the previous result (ftrans/distributed.py)
big = ft.shard_map(lambda v: ft.lax.psum(v, "i"), axis_name="i")
ones = np.ones(2**18)
a, b = big(ones), big(ones)
assert a is not b and np.all(a == n) and np.all(b == n)
del a
c = big(2 * ones)
assert np.all(b == n) and np.all(c == 2 * n)
view = c[:10]
del c
d = big(3 * ones)
assert np.all(view == 2 * n) and np.all(d == 3 * n)
# a pytree over processes: one fused Allreduce per dtype, split back into the leaves' shapes
tree = {"w": everyone[:, :2, :3], "b": everyone[:, 0], "s": everyone[:, 0, 0], "f": everyone[:, 1].astype(np.float32)}
for reduce in (ft.lax.psum, ft.lax.pmean, ft.lax.pmax):
    expected = ft.vmap(lambda t: reduce(t, "i"), axis_name="i")(tree)
    mine_tree = {k: v[rank] for k, v in tree.items()}
    for run in (ft.shard_map(lambda t: reduce(t, "i"), axis_name="i"),
                ft.jit(ft.shard_map(lambda t: reduce(t, "i"), axis_name="i"))):
        got = run(mine_tree)
        for k in tree:
            want = np.asarray(expected[k])[rank]
            assert np.asarray(got[k]).dtype == want.dtype and np.shape(got[k]) == want.shape, (reduce, k)
            assert np.allclose(got[k], want, rtol=1e-6), (reduce, k)
# pmean of a pytree under jit: one Allreduce, and each leaf's division writes the array returned (no
# slice of the reduced buffer is copied out)
grads = {"w": np.ones((4, 3)), "b": np.ones(3)}
text = ft.jit(ft.shard_map(lambda t: ft.lax.pmean(t, "i"), axis_name="i")).lower(grads).as_text()
assert text.count("impl_psum(") == 1, text
returned = [line for line in text.splitlines() if "result = (" in line or line.strip().startswith("return (")]
assert returned and "numpy.array(" not in returned[-1], text
print(f"rank {rank}: collectives ok")
