"""Data-parallel training: the MLP of examples/mlp_digits.py, each process taking its share
of every batch, gradients averaged across processes by `ft.lax.pmean` (an MPI Allreduce).

Every global batch of 64 examples is split in equal blocks, one per process; each
process computes the gradient on its block, and `pmean` over the process axis gives
all of them the gradient of the whole batch, so they take the same step. At the end
rank 0 trains again in one process on the concatenated batches and prints how close
the two sets of parameters are (the same to rounding: only the order of additions
differs). Rank 0 prints the progress.

Run: python examples/data_parallel.py
(one process; across processes: mpiexec -n 2 python examples/data_parallel.py, which
needs mpi4py: pip install '.[mpi]'; without mpi4py the example runs as one process)
"""
import os
import sys

import numpy as np

import ftrans as ft
import ftrans.numpy as fnp

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mlp_digits import init, load_data, logits, loss  # noqa: E402  (the same model and data)

AXIS = "batch"


def spmd(f):
    """f run on every process with the process axis bound (one process without mpi4py)."""
    if ft.distributed.is_initialized():
        return ft.shard_map(f, axis_name=AXIS)
    # the same program on one process: a batch of one example bound to the name
    one = ft.vmap(f, axis_name=AXIS)
    return lambda *args: ft.tree_util.tree_map(lambda v: v[0], one(*ft.tree_util.tree_map(lambda v: v[None], args)))


def local_step(params, x, labels):
    value, grads = ft.value_and_grad(loss)(params, x, labels)
    return ft.lax.pmean((value, grads), AXIS)  # the whole batch's loss and gradient, on every process


def sgd(params, grads, learning_rate):
    return [(W - learning_rate * gW, b - learning_rate * gb) for (W, b), (gW, gb) in zip(params, grads)]


def train(step, params, train_x, train_y, epochs, batch, learning_rate, block, log):
    """SGD over the same global batches; `block(idx)` picks this process's part of a batch."""
    key = ft.random.PRNGKey(1)  # the same batch order on every process
    for epoch in range(epochs):
        order = np.asarray(ft.random.permutation(ft.random.fold_in(key, epoch), len(train_y)))
        total, steps = 0.0, 0
        for start in range(0, len(order) - batch + 1, batch):
            idx = block(order[start:start + batch])
            value, grads = step(params, train_x[idx], train_y[idx])
            params = sgd(params, grads, learning_rate)
            total, steps = total + float(value), steps + 1
        log(epoch, total / steps, params)
    return params


def main(epochs=10, batch=64, learning_rate=0.3):
    try:
        ft.distributed.initialize()
    except ImportError:
        print("mpi4py is not installed: training in one process")
    rank, count = ft.distributed.process_index(), ft.distributed.process_count()
    if batch % count:
        raise ValueError(f"the batch of {batch} does not split into {count} equal blocks")
    key_data, key_init = ft.random.split(ft.random.PRNGKey(0))
    train_x, train_y, test_x, test_y, source = load_data(key_data)
    params0 = init(key_init)  # the same initial parameters on every process
    accuracy_of = ft.jit(lambda params, x: fnp.argmax(logits(params, x), axis=1))

    def log(epoch, mean_loss, params):
        if rank == 0:
            accuracy = float((np.asarray(accuracy_of(params, test_x)) == test_y).mean())
            print(f"epoch {epoch + 1:2d}  loss {mean_loss:.4f}  test accuracy {accuracy:.3f}", flush=True)

    if rank == 0:
        print(f"data: {source}; {count} process(es), {batch // count} examples of each batch of {batch} per process")
    step = ft.jit(spmd(local_step))
    share = batch // count
    params = train(step, params0, train_x, train_y, epochs, batch, learning_rate,
                   lambda idx: idx[rank * share:(rank + 1) * share], log)
    accuracy = float((np.asarray(accuracy_of(params, test_x)) == test_y).mean())
    assert accuracy >= 0.9, f"test accuracy {accuracy:.3f} < 0.9"
    if rank == 0:  # the reference: one process, the concatenated batches
        reference = train(ft.jit(ft.value_and_grad(loss)), params0, train_x, train_y, epochs, batch,
                          learning_rate, lambda idx: idx, lambda *args: None)
        leaves = [np.asarray(v) for pair in params for v in pair]
        ref_leaves = [np.asarray(v) for pair in reference for v in pair]
        difference = max(float(np.max(np.abs(a - b))) for a, b in zip(leaves, ref_leaves))
        scale = max(float(np.max(np.abs(b))) for b in ref_leaves)
        print(f"final parameters vs one process on the concatenated batches: max |difference| {difference:.2e} "
              f"(largest parameter {scale:.2f})")
        assert difference < 1e-9 * scale, difference
    print(f"rank {rank}: done, test accuracy {accuracy:.3f}", flush=True)
    return params


if __name__ == "__main__":
    main()
