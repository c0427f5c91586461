"""Random ftrans programs for property tests: a hypothesis strategy drawing a
straight-line program over float64 vectors from a menu of ftrans.numpy
operations that together reach every family of primitives."""
import numpy as np
from hypothesis import strategies as st

import ftrans as ft
import ftrans.numpy as fnp

N = 4  # every value in a program is a float64 vector of this length (or a scalar, briefly)

# name -> (number of operands, function of float64 vectors returning a float64 vector)
OPERATIONS = {
    "sin": (1, fnp.sin), "tanh": (1, fnp.tanh), "exp_neg_square": (1, lambda a: fnp.exp(-a * a)),
    "log1p_abs": (1, lambda a: fnp.log1p(fnp.abs(a))), "sqrt_sq": (1, lambda a: fnp.sqrt(a * a + 1.0)),
    "cube": (1, lambda a: a ** 3), "neg": (1, lambda a: -a), "scale": (1, lambda a: a * 0.5 + 1.0),
    "reverse": (1, lambda a: a[::-1]), "roll_by_slices": (1, lambda a: fnp.concatenate([a[1:], a[:1]])),
    "gather": (1, lambda a: a[np.array([3, 0, 0, 2])]),
    "scatter_add": (1, lambda a: fnp.at(a)[np.array([1, 1])].add(a[:2])),
    "cumulative_via_dot": (1, lambda a: np.tril(np.ones((N, N))) @ a),
    "outer_sum": (1, lambda a: fnp.sum(fnp.outer(a, a), axis=0) / N),
    "reshape_transpose": (1, lambda a: fnp.reshape(fnp.reshape(a, (2, 2)).T, (N,))),
    "softmax": (1, lambda a: fnp.exp(a - fnp.logsumexp(a))),
    "normalize": (1, lambda a: (a - fnp.mean(a)) / (fnp.std(a) + 1.0)),
    "max_broadcast": (1, lambda a: a - fnp.max(a) + fnp.min(a)),
    "prod_broadcast": (1, lambda a: a * fnp.prod(fnp.tanh(a) + 2.0)),
    "add": (2, lambda a, b: a + b), "sub": (2, lambda a, b: a - b), "mul": (2, lambda a, b: a * b),
    "div": (2, lambda a, b: a / (b * b + 1.0)), "maximum": (2, fnp.maximum), "minimum": (2, fnp.minimum),
    "where": (2, lambda a, b: fnp.where(a > b, a, b * 2.0)),
    "einsum": (2, lambda a, b: fnp.einsum("i,j->i", a, b) / N),
    "stack_sum": (2, lambda a, b: fnp.sum(fnp.stack([a, b]), axis=0)),
    "pow": (2, lambda a, b: (fnp.abs(a) + 1.0) ** fnp.tanh(b)),
    "float32_round_trip": (1, lambda a: a.astype(np.float32).astype(np.float64) if hasattr(a, "astype")
                           else np.asarray(a, np.float32).astype(np.float64)),
    # what the IR passes rewrite (tests/test_passes.py), and what they must not
    "identities": (1, lambda a: ((a * 1.0) / 1.0 - 0.0) + -0.0),
    "signed_zeros": (1, lambda a: (a + 0.0) - (0.0 - a) + (-0.0 - a) * (a * 0.0)),
    "negations": (2, lambda a, b: -(-a) * -b + a * -1.0 - -b),
    "small_powers": (1, lambda a: a ** 0 + a ** 1 - a ** 2 + (a * a + 1.0) ** -1),
    "power_of_two_division": (2, lambda a, b: a / 4.0 - b / 0.5 + a / 3.0),
    "double_transpose": (1, lambda a: fnp.reshape(fnp.reshape(a, (2, 2)).T.T, (N,))),
    "zeros_and_ones": (1, lambda a: fnp.zeros_like(a) + a * fnp.ones(N) + fnp.zeros(N) * 2.0),
    # a case that is infinite where it is not selected: reverse mode's zero cotangent meets it (nan, as JAX)
    "log_where_positive": (1, lambda a: fnp.where(a > 0.0, fnp.log(a), 0.0)),
    # kinks, ties and zeros: abs at 0, a maximum of equal values, a product with a zero factor
    "abs_times": (2, lambda a, b: fnp.abs(a) * b),
    "max_of_ties": (1, lambda a: fnp.maximum(a, fnp.abs(a)) + fnp.max(a * 0.0)),
    "prod_of_pairs": (1, lambda a: fnp.prod(fnp.reshape(a, (2, 2)), axis=1)[np.array([0, 1, 1, 0])]),
    "mod": (2, lambda a, b: fnp.mod(a, b * b + 1.0)),
    "pad_around_a_slice": (2, lambda a, b: ft.lax.pad(a[1:3], b[0], [(1, 1, 0)])),
    # control flow: one branch runs (the other's log of a negative value, or its derivative
    # 1/0, never meets the result), and a loop carrying a scalar along the elements
    "cond": (2, lambda a, b: ft.lax.cond(fnp.sum(a) > fnp.sum(b), lambda a, b: fnp.sin(a) * b,
                                         lambda a, b: a - b * b, a, b)),
    "safe_log": (1, lambda a: ft.lax.cond(fnp.min(a) > 0.0, fnp.log, lambda a: a * 0.0, a)),
    "scan": (2, lambda a, b: ft.lax.scan(lambda c, e: (c * 0.5 + e[0] * e[1], c + e[1]), 0.0,
                                         fnp.stack([a, b], axis=1))[1]),
}


@st.composite
def programs(draw, max_steps=8):
    """(function of two float64 vectors returning a list of vectors, description)."""
    steps = draw(st.lists(st.tuples(st.sampled_from(sorted(OPERATIONS)), st.integers(0, 100),
                                    st.integers(0, 100)), min_size=1, max_size=max_steps))
    return program_of(steps)


def program_of(steps):
    """The program of `programs` that runs `steps`, (operation name, i, j) each:
    the operation on values i and j (modulo the number of values so far)."""
    def program(x, y):
        values = [x, y]
        for name, i, j in steps:
            arity, op = OPERATIONS[name]
            args = [values[i % len(values)], values[j % len(values)]][:arity]
            values.append(op(*args))
        return values[2:]
    return program, [name for name, _, _ in steps]


def inputs(draw):
    floats = st.floats(-2.0, 2.0)
    return (np.array(draw(st.lists(floats, min_size=N, max_size=N))),
            np.array(draw(st.lists(floats, min_size=N, max_size=N))))


# where derivatives go wrong: signed zeros, infinities, nan, values whose squares overflow or underflow
SPECIAL_VALUES = (0.0, -0.0, np.inf, -np.inf, np.nan, 1e200, -1e200, 1e-200, 5e-324, 1.0, -1.0)


def special_floats():
    return st.one_of(st.sampled_from(SPECIAL_VALUES), st.floats(-2.0, 2.0))


def special_inputs(draw):
    """Two vectors, each element a special value or an ordinary one."""
    return tuple(np.array(draw(st.lists(special_floats(), min_size=N, max_size=N))) for _ in range(2))


# how a scalar program spreads its input over the two vectors a program takes
_SPREAD = (np.array([1.0, -0.5, 2.0, 0.25]), np.array([0.5, 1.0, -1.0, 3.0]))


@st.composite
def scalar_programs(draw, max_steps=6):
    """(function of a float64 scalar returning one, description): a program of
    `programs` on vectors spread from the scalar, its outputs summed."""
    return scalar_program_of(draw(programs(max_steps)))


def scalar_program_of(program_and_ops):
    program, ops = program_and_ops

    def scalar_program(s):
        outs = program(s * _SPREAD[0], s + _SPREAD[1])
        total = fnp.sum(outs[0])
        for out in outs[1:]:
            total = total + fnp.sum(out)
        return total
    return scalar_program, ops
