"""Run under `mpiexec -n 4` by tests/test_distributed.py: a 2x2 mesh ("data", "model"), data and tensor
parallelism at once; collectives over one axis join a row or a column of processes; values and
gradients equal the unsharded ones."""
import numpy as np

import ftrans as ft
import ftrans.numpy as fnp
from ftrans.sharding import Mesh, PartitionSpec as P

ft.distributed.initialize(timeout=120)
rank = ft.distributed.process_index()
assert ft.distributed.process_count() == 4
mesh = Mesh(np.arange(4).reshape(2, 2), ("data", "model"))
close = dict(rtol=1e-12, atol=1e-12)

# coordinates: rank = 2 * data + model
where = ft.shard_map(lambda: fnp.stack([ft.lax.axis_index("data"), ft.lax.axis_index("model")]), mesh,
                     in_specs=(), out_specs=P())()
assert tuple(np.asarray(where)) == (rank // 2, rank % 2)
column = ft.shard_map(lambda: ft.lax.all_gather(ft.lax.axis_index("data") * 10 + ft.lax.axis_index("model"),
                                                "data"), mesh, in_specs=(), out_specs=P())()
assert np.asarray(column).tolist() == [rank % 2, 10 + rank % 2]
total = ft.shard_map(lambda: ft.lax.psum(ft.lax.axis_index("data") * 2 + ft.lax.axis_index("model"),
                                         ("data", "model")), mesh, in_specs=(), out_specs=P())()
assert int(total) == 0 + 1 + 2 + 3

rng = np.random.default_rng(3)
x, W1, W2 = rng.standard_normal((8, 5)), rng.standard_normal((5, 6)), rng.standard_normal((6, 3))


def local(x, W1, W2):  # x: a block of rows (data); W1: a block of columns, W2 of rows (model)
    y = ft.lax.psum(fnp.tanh(x @ W1) @ W2, "model")
    return ft.lax.pmean(fnp.mean(y ** 2), "data")


def full(x, W1, W2):
    return fnp.mean((fnp.tanh(x @ W1) @ W2) ** 2)


sharded = ft.shard_map(local, mesh, in_specs=(P("data"), P(None, "model"), P("model", None)), out_specs=P())
assert np.allclose(sharded(x, W1, W2), full(x, W1, W2), **close)
for got, expected in zip(ft.jit(ft.grad(sharded, argnums=(0, 1, 2)))(x, W1, W2),
                         ft.grad(full, argnums=(0, 1, 2))(x, W1, W2)):
    assert np.allclose(got, expected, **close)
# a 2-d sharded output: the global array on every process
blocks = ft.shard_map(lambda x: x * 2, mesh, in_specs=P("data", "model"), out_specs=P("data", "model"))
assert np.allclose(blocks(x[:, :4]), 2 * x[:, :4])
print(f"rank {rank}: 2-d mesh ok")
