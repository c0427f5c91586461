"""How `lowering_numpy` writes a dot_general: one NumPy call on views of its
operands, never a Python loop, computing exactly what the primitive's
implementation (ir/primitives/linalg.py) computes.

- A product that sums over something is one `numpy.matmul` (BLAS for floats):
  of matrices `(M, K) @ (K, N)` with no batch dimensions, else of stacks
  `(B, M, K) @ (B, K, N)`. A plain matrix operand enters transposed as `x.T`
  (a view: BLAS reads either layout).
- A product that sums over nothing (contracting dimensions of size 1, or none:
  the outer products of per-example gradients) is one broadcasting
  `numpy.multiply` of the operands as views in the result's dimensions.

Each can write into `out=`, an array of the result's shape that may be a
strided view: so a product read only by a transpose (reverse-mode AD makes
them) is written straight into the transpose's C-ordered array, through the
inverse permutation of it (`lowering_numpy._BufferedBody`). `writes_into`
says whether a given permutation of the result can be such an `out=`: a
multiply takes any view, matmul only one whose (B, M, N) grouping is a view too.

Operands of rank 0 keep the implementation's call: the generated function may
receive them as Python scalars, which have no `transpose`.
"""
from __future__ import annotations

import math


class Product:
    """The lowering of one dot_general equation."""

    def __init__(self, eqn):
        lhs, rhs = (x.aval for x in eqn.invars)
        (lc, rc), (lb, rb) = eqn.params["dimension_numbers"]
        lf = [d for d in range(lhs.ndim) if d not in lc and d not in lb]
        rf = [d for d in range(rhs.ndim) if d not in rc and d not in rb]
        self.shape = tuple(eqn.outvars[0].aval.shape)
        self.batch = [lhs.shape[d] for d in lb]
        lhs_free, rhs_free = [lhs.shape[d] for d in lf], [rhs.shape[d] for d in rf]
        self.groups = [len(lb), len(lf), len(rf)]  # the result's dims: batch, lhs free, rhs free
        contract = math.prod(lhs.shape[d] for d in lc)
        self.outer = contract == 1
        if self.outer:
            # each operand in the result's dims, size 1 where the other's free dims go
            self.lhs = _view(lhs.shape, [*lb, *lf, *lc], [*self.batch, *lhs_free, *[1] * len(rf)])
            self.rhs = _view(rhs.shape, [*rb, *rf, *rc], [*self.batch, *[1] * len(lf), *rhs_free])
        else:
            m, n = math.prod(lhs_free), math.prod(rhs_free)
            stack = [math.prod(self.batch)] if lb else []
            self.matmul_shape = (*stack, m, n)
            self.lhs = _view(lhs.shape, [*lb, *lf, *lc], [*stack, m, contract], matrix=not lb)
            self.rhs = _view(rhs.shape, [*rb, *rc, *rf], [*stack, contract, n], matrix=not lb)

    def text(self, lhs, rhs, out=None):
        """The expression computing the product of the operand texts `lhs` and
        `rhs`, into the array text `out` (of the result's shape) if given."""
        operands = [self.lhs(lhs), self.rhs(rhs)]
        if self.outer:
            return f"numpy.multiply({', '.join(operands + ([f'out={out}'] if out else []))})"
        reshaped = self.matmul_shape != self.shape
        if out:
            operands.append(f"out={out}.reshape({self.matmul_shape})" if reshaped else f"out={out}")
        call = f"numpy.matmul({', '.join(operands)})"
        return f"{call}.reshape({self.shape})" if reshaped else call

    def writes_into(self, permutation):
        """Whether the product can write into `dest.transpose(inverse)`, `dest` a
        C-ordered array of the product transposed by `permutation`."""
        if self.outer:
            return True
        inverse = sorted(range(len(permutation)), key=permutation.__getitem__)
        dest_strides = _c_strides([self.shape[p] for p in permutation])
        strides = [dest_strides[inverse[d]] for d in range(len(self.shape))]
        return _groups_are_views(self.shape, strides, self.groups)


def product(eqn):
    """The Product lowering `eqn`, or None where the implementation's call stays."""
    if eqn.primitive.name != "dot_general" or any(x.aval.ndim == 0 for x in eqn.invars):
        return None
    return Product(eqn)


def transposed_out(out, permutation):
    """The text of the view of `out` (a C-ordered array of a product transposed
    by `permutation`) in the product's own dims."""
    if tuple(permutation) == (1, 0):
        return f"{out}.T"
    inverse = tuple(sorted(range(len(permutation)), key=permutation.__getitem__))
    return f"{out}.transpose({inverse})"


def _view(shape, order, target, matrix=False):
    """A function of an operand's text: the operand with its dims in `order`,
    reshaped to `target` (`.T` for a transposed matrix when `matrix`)."""
    shape, order, target = tuple(shape), tuple(order), tuple(target)
    permuted = tuple(shape[d] for d in order)

    def text(x):
        if order != tuple(range(len(order))):
            x = f"{x}.T" if matrix and order == (1, 0) and permuted == target else f"{x}.transpose({order})"
        return x if permuted == target else f"{x}.reshape({target})"
    return text


def _c_strides(shape):
    strides, step = [0] * len(shape), 1
    for d in reversed(range(len(shape))):
        strides[d] = step
        step *= shape[d]
    return strides


def _groups_are_views(shape, strides, groups):
    """Whether merging each group of consecutive dims (`groups`: their counts)
    is a view: within a group every dim of size > 1 steps by the size of the
    next such dim times its stride."""
    start = 0
    for size in groups:
        dims = [d for d in range(start, start + size) if shape[d] != 1]
        for outer, inner in zip(dims, dims[1:]):
            if strides[outer] != strides[inner] * shape[inner]:
                return False
        start += size
    return True
