"""Run under `mpiexec -n 2` by tests/test_distributed.py: shard_map with a mesh over the processes gives,
on every rank, the values and the gradients of the unsharded function (eagerly, under jit, jvp, vmap)."""
import numpy as np

import ftrans as ft
import ftrans.numpy as fnp
from ftrans.sharding import Mesh, PartitionSpec as P

ft.distributed.initialize(timeout=60)
rank, n = ft.distributed.process_index(), ft.distributed.process_count()
mesh = Mesh(np.arange(n), ("i",))
rng = np.random.default_rng(1)  # the same global values on every rank
w = rng.standard_normal((3, 2))
x = rng.standard_normal((4 * n, 3))


def local_loss(w, x):  # x: this process's block of rows
    return ft.lax.pmean(fnp.mean(fnp.tanh(x @ w) ** 2), "i")


def full_loss(w, x):
    return fnp.mean(fnp.tanh(x @ w) ** 2)


sharded = ft.shard_map(local_loss, mesh, in_specs=(P(), P("i")), out_specs=P())
close = dict(rtol=1e-12, atol=1e-13)
assert np.allclose(sharded(w, x), full_loss(w, x), **close)
for how, g in (("eager", ft.grad(sharded, argnums=(0, 1))), ("jit", ft.jit(ft.grad(sharded, argnums=(0, 1)))),
               ("grad of jit", ft.grad(ft.jit(sharded), argnums=(0, 1)))):
    gw, gx = g(w, x)
    ew, ex = ft.grad(full_loss, argnums=(0, 1))(w, x)
    assert np.allclose(gw, ew, **close) and np.allclose(gx, ex, **close), how
# forward mode: the unsharded directional derivative
t = rng.standard_normal(w.shape)
_, tangent = ft.jvp(lambda w: sharded(w, x), (w,), (t,))
assert np.allclose(tangent, ft.jvp(lambda w: full_loss(w, x), (w,), (t,))[1], **close)

# a sharded output (out_specs P("i")) is the global array on every rank, and so is its gradient
rows = ft.shard_map(lambda w, x: fnp.tanh(x @ w), mesh, in_specs=(P(), P("i")), out_specs=P("i"))
assert np.allclose(rows(w, x), np.tanh(x @ w), **close)
g_rows = ft.grad(lambda w: fnp.sum(rows(w, x) ** 3))(w)
assert np.allclose(g_rows, ft.grad(lambda w: fnp.sum(fnp.tanh(x @ w) ** 3))(w), **close)
# vmap over a batch of weights around the sharded loss
ws = rng.standard_normal((5, 3, 2))
assert np.allclose(ft.vmap(sharded, in_axes=(0, None))(ws, x), [full_loss(v, x) for v in ws], **close)
# the unbound name is a trace-time error, naming the axis
try:
    ft.shard_map(lambda x: ft.lax.psum(x, "j"), mesh, in_specs=P("i"), out_specs=P())(x)
except NameError as e:
    assert "'j'" in str(e)
else:
    raise AssertionError("no error for an unbound axis name")
print(f"rank {rank}: shard_map gradients ok")
