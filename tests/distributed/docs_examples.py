"""Run under `mpiexec -n 2` by tests/test_distributed.py: docs/distributed.md's tensor-parallel MLP block
and pipeline, against the unsharded computations (values and gradients)."""
import numpy as np

import ftrans as ft
import ftrans.numpy as fnp
from ftrans.sharding import Mesh, PartitionSpec as P

ft.distributed.initialize(timeout=60)
rank, n = ft.distributed.process_index(), ft.distributed.process_count()
mesh = Mesh(np.arange(n), ("i",))
rng = np.random.default_rng(2)
close = dict(rtol=1e-12, atol=1e-12)


# -------------------- tensor parallel --------------------
def mlp_block(x, W1, W2):
    hidden = fnp.tanh(x @ W1)
    return ft.lax.psum(hidden @ W2, "i")


def mlp_block_sequence_sharded(x_rows, W1, W2):
    x = ft.lax.all_gather(x_rows, "i", axis=0, tiled=True)
    return ft.lax.psum_scatter(fnp.tanh(x @ W1) @ W2, "i", scatter_dimension=0, tiled=True)


x, W1, W2 = rng.standard_normal((4 * n, 5)), rng.standard_normal((5, 3 * n)), rng.standard_normal((3 * n, 5))
expected = np.tanh(x @ W1) @ W2
tp = ft.shard_map(mlp_block, mesh, in_specs=(P(), P(None, "i"), P("i", None)), out_specs=P())
assert np.allclose(tp(x, W1, W2), expected, **close)
sp = ft.shard_map(mlp_block_sequence_sharded, mesh, in_specs=(P("i"), P(None, "i"), P("i", None)),
                  out_specs=P("i"))
assert np.allclose(sp(x, W1, W2), expected, **close)
unsharded = lambda x, W1, W2: fnp.sum(fnp.sin(fnp.tanh(x @ W1) @ W2))
for f in (tp, sp):
    got = ft.grad(lambda *a: fnp.sum(fnp.sin(f(*a))), argnums=(0, 1, 2))(x, W1, W2)
    for g, e in zip(got, ft.grad(unsharded, argnums=(0, 1, 2))(x, W1, W2)):
        assert np.allclose(g, e, **close)


# -------------------- pipeline --------------------
def stage(W, h):
    return fnp.tanh(h @ W)


def pipeline(stage_params, microbatches):
    i = ft.lax.axis_index("i")
    forward = [(j, j + 1) for j in range(n - 1)]
    h = fnp.zeros_like(microbatches[0])
    outputs = []
    for tick in range(len(microbatches) + n - 1):
        feed = microbatches[min(tick, len(microbatches) - 1)]
        h = fnp.where(i == 0, feed, h)
        h = stage(stage_params, h)
        outputs.append(h)
        h = ft.lax.ppermute(h, "i", forward)
    return fnp.stack(outputs[n - 1:])


weights = rng.standard_normal((n, 4, 4))  # stage j's weights: weights[j]
microbatches = rng.standard_normal((3, 2, 4))
reference = microbatches
for j in range(n):
    reference = np.tanh(reference @ weights[j])
run = ft.shard_map(pipeline, axis_name="i")
out = run(weights[rank], microbatches)
if rank == n - 1:
    assert np.allclose(out, reference, **close)
# the gradient of the last stage's summed outputs with respect to each stage's weights: the backward pipeline
loss_on_last = lambda W, mb: fnp.sum(pipeline(W, mb)) * (ft.lax.axis_index("i") == n - 1)
g = ft.shard_map(ft.grad(loss_on_last), axis_name="i")(weights[rank], microbatches)


def full(ws):
    h = microbatches
    for j in range(n):
        h = fnp.tanh(h @ ws[j])
    return fnp.sum(h)


assert np.allclose(g, ft.grad(full)(weights)[rank], **close)
print(f"rank {rank}: docs examples ok")
