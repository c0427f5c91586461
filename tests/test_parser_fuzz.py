"""Hostile IR text: mutations of printed jaxprs of real programs.

Whatever the text, parsing and checking raise JaxprParseError or
JaxprTypeError, or give a jaxpr that evaluates, on random inputs of its
declared types, to exactly its declared output types. Two kinds of mutation:
of the text (tokens deleted, duplicated, replaced, swapped; dtypes and numbers
changed), which mostly makes text the parser must reject, and of the program
(a param or an input type changed, and every type after it derived again by
abstract evaluation), which makes well-typed programs at the edges of what
each primitive takes. The `ci` profile runs 500 of each (a few seconds);
FTRANS_HYPOTHESIS_PROFILE=heavy runs 10^5 of each.
"""
import os
import re
import warnings

import numpy as np
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

import ftrans as ft
import ftrans.numpy as fnp
import ir
from interpreters.eval import eval_jaxpr
from ir.core import DTYPE_FROM_SHORT_NAME, ClosedJaxpr, Jaxpr, Literal, ShapedArray, Var, float0
from ir.parser import JaxprParseError, parse
from ir.primitive import PRIMITIVES
from ir.primitives import call, elementwise as E
from test_parser import PROGRAMS as EVERY_PRIMITIVE, stage as stage_program

HEAVY = os.environ.get("FTRANS_HYPOTHESIS_PROFILE") == "heavy"
FUZZ_EXAMPLES = 100_000 if HEAVY else 20 * settings().max_examples  # ci: 500 each, a second or two
MAX_ELEMENTS = 10**5  # evaluation allocates every declared array: keep hostile shapes small

# -------------------- the corpus: printed jaxprs of real programs --------------------

_X = np.linspace(-1.0, 1.0, 6).reshape(2, 3)
_W = np.linspace(0.5, 1.5, 12).reshape(3, 4)


def _mlp_loss(x):
    return fnp.sum(fnp.tanh(x @ _W) ** 2)


def _softmax(r):
    return fnp.exp(r - fnp.max(r)) / fnp.sum(fnp.exp(r - fnp.max(r)))


def _many_ops(x):
    return (x[1:, ::2], x[np.array([1, 0])], fnp.argmax(x, axis=1), fnp.argmin(x, axis=0),
            fnp.concatenate([x, x]), fnp.stack([x, x], axis=2), fnp.expand_dims(x, 0), x.T.reshape(6),
            fnp.where(x > 0, x, 0.0), fnp.clip(x, -0.5, 0.5), fnp.mean(x, 0), fnp.var(x),
            fnp.floor(x).astype(np.int32) // 2, fnp.abs(x).astype(np.float32) ** 3, fnp.sqrt(fnp.abs(x)),
            (x > 0) & (x < 0.5), fnp.prod(x, axis=1), fnp.min(x), fnp.logsumexp(x, axis=1),
            fnp.einsum("ij,kj->ik", x, x), fnp.outer(x[0], x[1]), fnp.take(x, np.array([2, 0]), axis=1))


def _nested_jit_calls():
    """A jit_call inside a jit_call (jit itself inlines nested calls)."""
    f64 = ir.ShapedArray((3,), np.float64)
    inner = ir.stage(lambda x: [E.sin(x)], [f64])
    middle = ir.stage(lambda x: call.jit_call(inner, [E.mul(x, 2.0)], "inner"), [f64])
    return ir.stage(lambda x: [*call.jit_call(middle, [x], "middle"), E.neg(x)], [f64])


def _rnn_loss(w, xs):
    """A scan of a tanh RNN under a cond: loops and branches, their derivatives and batches."""
    def step(h, x):
        h = fnp.tanh(h @ w + x)
        return h, ft.lax.cond(fnp.sum(h) > 0, lambda h: fnp.sum(h * h), lambda h: -fnp.sum(h), h)
    return fnp.sum(ft.lax.scan(step, xs[0], xs)[1])


def _control_flow(i, x):
    # every scan here has xs, whose declared shape bounds the trip count a mutation can ask for
    # (max_elements): a scan of no xs runs `length` times, whatever the text says
    return (ft.lax.switch(i, [fnp.sin, lambda x: x * 2.0, fnp.cos], x),
            ft.lax.scan(lambda c, e: (c + e, c * e), 0.0, x, reverse=True))


def _halving(x):
    """A while_loop whose trip count depends on the values (halve until every |x| < 1), its gradient staged."""
    return fnp.sum(ft.lax.while_loop(lambda v: fnp.max(fnp.abs(v)) > 1.0, lambda v: v * 0.5 + fnp.sin(v) * 0.1, x))


@pytest.fixture(autouse=True)
def _small_loop_limit():
    """Mutated loops may never stop: a limit that stops them quickly (the default allows 10 million iterations)."""
    old = ft.config.max_loop_iterations
    ft.config.update("max_loop_iterations", 10_000)
    yield
    ft.config.update("max_loop_iterations", old)


def _corpus():
    x = _X
    return [str(closed) for closed in [
        ft.make_jaxpr(_mlp_loss)(x),
        ft.make_jaxpr(ft.grad(_mlp_loss))(x),
        ft.make_jaxpr(ft.vmap(_softmax))(x),
        ft.make_jaxpr(ft.vmap(ft.grad(lambda r: fnp.sum(_softmax(r) ** 2))))(x),
        ft.make_jaxpr(_many_ops)(x),
        ft.make_jaxpr(lambda x: ft.jit(lambda y: fnp.sin(y) * 2)(x) + 1)(x),
        ft.make_jaxpr(ft.grad(lambda x: fnp.sum(ft.jit(lambda y: fnp.sin(y) * x)(x))))(x),
        ft.make_jaxpr(ft.vmap(ft.jit(lambda r: fnp.dot(r, _W))))(x),
        ft.make_jaxpr(lambda i, x: (i * 3 - 1, i % 2, x[i], ~(i > 0)))(np.arange(2), x),
        _nested_jit_calls(),
        ft.make_jaxpr(_control_flow)(1, x[0]),
        ft.make_jaxpr(ft.grad(_rnn_loss))(_W[:, :3], x),
        ft.make_jaxpr(ft.vmap(ft.grad(_rnn_loss), in_axes=(None, 0)))(_W[:, :3], np.stack([x, x])),
        ft.make_jaxpr(_halving)(x[0] * 10.0),
        ft.make_jaxpr(ft.grad(_halving))(x[0] * 10.0),
        ft.make_jaxpr(ft.vmap(ft.grad(_halving)))(x * 10.0),
    ]] + [str(stage_program(name)) for name in sorted(EVERY_PRIMITIVE)]  # the rest, each primitive in one


CORPUS = _corpus()

# -------------------- mutations --------------------

_PIECE_RE = re.compile(r"\s+|[A-Za-z_][A-Za-z0-9_]*|-?[0-9]+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?|.", re.DOTALL)
_DTYPE_WORDS = sorted(DTYPE_FROM_SHORT_NAME) + ["float16", "float32", "float64", "int8", "int32", "int64",
                                                "uint8", "uint64", "bool", "float0", "void"]
_NUMBERS = ["0", "1", "-1", "2", "3", "7", "63", "64", "65", "255", "256", "1.5", "-0.0", "0.0", "nan", "-inf",
            "inf", "1e308", "1e400", "2147483648", "4294967296", "9223372036854775807",
            "9223372036854775808", "18446744073709551616", "-9223372036854775809", "100000", "1000000"]
_WORDS = ["True", "False", "None", "in", "let", "lambda", "a", "b", "c", "zz", "jitted", "clip", "fill", "wrap",
          "where=False", "dtype=float32", "y=2", "axes=(0,)", "fill_value=nan", "fill_value=1e300",
          "name=None", "jaxpr={ lambda ; . let  in () }", "{weak}", "(0,)", "()", "((), ())", "(True,)",
          "(0.0,)", "(1, 0)", "(0, 0)", "(-1,)"]
_PUNCTUATION = list("{}[]():;,=.") + ["\n"]
_POOL = sorted(set(_DTYPE_WORDS + _NUMBERS + _WORDS + _PUNCTUATION + sorted(PRIMITIVES)))


def _pieces(text):
    return _PIECE_RE.findall(text)


@st.composite
def mutated_texts(draw):
    pieces = _pieces(draw(st.sampled_from(CORPUS)))
    for _ in range(draw(st.integers(1, 4))):
        tokens = [i for i, p in enumerate(pieces) if not p.isspace()]
        i = draw(st.sampled_from(tokens))
        piece = pieces[i]
        kind = draw(st.sampled_from(["delete", "duplicate", "replace", "insert", "swap", "retype", "renumber"]))
        if kind == "delete":
            pieces[i] = ""
        elif kind == "duplicate":
            pieces[i] = piece + " " + piece
        elif kind == "replace":
            pieces[i] = draw(st.sampled_from(_POOL))
        elif kind == "insert":
            pieces[i] = draw(st.sampled_from(_POOL)) + " " + piece
        elif kind == "swap":
            j = draw(st.sampled_from(tokens))
            pieces[i], pieces[j] = pieces[j], piece
        elif kind == "retype":
            dtypes = [j for j in tokens if pieces[j] in _DTYPE_WORDS] or tokens
            pieces[draw(st.sampled_from(dtypes))] = draw(st.sampled_from(_DTYPE_WORDS))
        else:  # renumber: shapes, params and literals
            numbers = [j for j in tokens if pieces[j][-1:].isdigit()] or tokens
            pieces[draw(st.sampled_from(numbers))] = draw(st.sampled_from(_NUMBERS))
    return "".join(pieces)


# -------------------- evaluation on random inputs --------------------

def random_value(rng, aval):
    dtype = aval.dtype
    if dtype == float0:
        return np.zeros(aval.shape, float0)
    if dtype.kind == "c":
        part = np.dtype(f"f{dtype.itemsize // 2}")
        parts = ir.ShapedArray(aval.shape, part)
        out = np.empty(aval.shape, dtype)
        out.real, out.imag = random_value(rng, parts), random_value(rng, parts)  # 1j * inf would be nan + infj
        return out
    if dtype.kind == "f":
        values = rng.standard_normal(aval.shape) * 3
        return np.where(rng.random(aval.shape) < 0.1, rng.choice([0.0, -0.0, np.inf, -np.inf, np.nan]), values
                        ).astype(dtype)
    if dtype.kind == "b":
        return rng.random(aval.shape) < 0.5
    info = np.iinfo(dtype)
    return rng.integers(max(info.min, -5), min(info.max, 5), aval.shape, endpoint=True).astype(dtype)


def assert_evaluates_to_declared_types(closed, seed):
    rng = np.random.default_rng(seed)
    jaxpr = closed.jaxpr
    consts = closed.consts if closed.consts is not None else [random_value(rng, v.aval) for v in jaxpr.constvars]
    args = [random_value(rng, v.aval) for v in jaxpr.invars]
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("error")  # e.g. NumPy's "uninitialized memory" warning
        try:
            outs = eval_jaxpr(jaxpr, consts, *args)
        except ValueError as error:  # the one error that depends on values, and says so (NumPy's)
            if "Integers to negative integer powers are not allowed" not in str(error):
                raise
            return
        except NameError as error:  # a collective, run where nothing binds its axis name
            if "unbound axis name" not in str(error):
                raise
            return
        except RuntimeError as error:  # a while loop read from text that would not stop: the loop limit stops it
            if "max_loop_iterations" not in str(error):
                raise
            return
        except TypeError as error:  # custom_lin: a custom_vjp function's linear map is only ever transposed
            if "forward-mode autodiff" not in str(error) or "custom_lin" not in str(closed):
                raise
            return
    assert len(outs) == len(jaxpr.outvars)
    for out, aval in zip(outs, closed.out_avals, strict=True):
        assert (np.shape(out), np.asarray(out).dtype) == (aval.shape, aval.dtype), (out, aval)


def parse_and_check(text):
    """The checked jaxpr `text` writes, or None if it is rejected (cleanly)."""
    try:
        closed = parse(text, max_elements=MAX_ELEMENTS)
        ir.check(closed)
    except (JaxprParseError, ir.JaxprTypeError):
        return None
    return closed


def test_the_corpus_parses_and_evaluates():
    assert any(text.count("jit_call") >= 2 for text in CORPUS)  # a jit_call within a jit_call
    used = {eqn.primitive.name for text in CORPUS for eqn in parse(text).eqns}
    parsable = {name for name, prim in PRIMITIVES.items() if not prim.runs_host_code}  # host callbacks never parse
    assert used == parsable, "a primitive the fuzz tests do not reach: add a program using it"
    for seed, text in enumerate(CORPUS):
        closed = parse_and_check(text)
        assert closed is not None, text
        assert_evaluates_to_declared_types(closed, seed)


@settings(max_examples=FUZZ_EXAMPLES, deadline=None)
@given(mutated_texts(), st.integers(0, 2**32 - 1))
def test_mutated_printed_jaxprs_are_rejected_or_evaluate_to_their_declared_types(text, seed):
    closed = parse_and_check(text)
    event("rejected" if closed is None else "parsed and evaluated")
    if closed is not None:
        assert_evaluates_to_declared_types(closed, seed)


# -------------------- mutations of the program: params and input types --------------------

_DTYPES = [np.dtype(d) for d in ("float16", "float32", "float64", "int8", "int32", "int64", "uint8", "uint64",
                                 "bool")] + [float0]
_SPECIAL_VALUES = [0, 1, 2, 3, -1, 63, 64, 2**31, 2**63, -2**63 - 1, True, False, 1.0, 0.5, float("nan"),
                   float("inf"), None, "clip", "fill", "jitted", (), (0,), (1, 0), ((), ()), np.dtype("float32")]


def mutated_value(draw, value):
    """A value near `value` (same structure, other numbers) or of another kind."""
    if draw(st.integers(0, 3)) == 0:
        return draw(st.sampled_from(_SPECIAL_VALUES + _DTYPES))
    if type(value) is bool:
        return not value
    if type(value) is int:
        return draw(st.sampled_from([value + 1, value - 1, 0, 2 * value + 1, -value - 1]))
    if type(value) is tuple and value and draw(st.booleans()):
        i = draw(st.integers(0, len(value) - 1))
        return value[:i] + (mutated_value(draw, value[i]),) + value[i + 1:]
    if type(value) is tuple:
        choice = draw(st.integers(0, 2))
        if choice == 0 and value:
            return value[:-1]
        return value + (value[-1] if value and choice == 1 else draw(st.integers(0, 4)),)
    if isinstance(value, np.dtype):
        return draw(st.sampled_from(_DTYPES))
    if isinstance(value, ClosedJaxpr):
        return parse(draw(st.sampled_from(CORPUS)))  # another program: its types must match
    return draw(st.sampled_from(_SPECIAL_VALUES))


def mutated_aval(draw, aval):
    choice = draw(st.integers(0, 3))
    if choice == 0:
        return ShapedArray(aval.shape, draw(st.sampled_from(_DTYPES)), aval.weak_type)
    if choice == 1 and aval.shape:
        i = draw(st.integers(0, aval.ndim - 1))
        shape = list(aval.shape)
        shape[i] = draw(st.sampled_from([0, 1, shape[i] + 1, max(shape[i] - 1, 0)]))
        return aval.update(shape=shape)
    if choice == 2:
        return aval.update(shape=aval.shape + (draw(st.integers(1, 3)),))
    return aval.update(shape=aval.shape[1:], weak_type=draw(st.booleans()))


def retyped(jaxpr, in_avals, changed):
    """`jaxpr` on inputs of `in_avals`, with the params `changed` holds (equation
    index -> params), every output typed by abstract evaluation. None if a changed
    equation is rejected by its primitive; an equation after it that no longer
    fits (or reads an output a changed equation no longer has) ends the program
    there, with the outputs of every equation before as its outputs."""
    new = {}
    constvars = [Var(v.aval) for v in jaxpr.constvars]
    invars = [Var(a) for a in in_avals]
    new.update(zip(jaxpr.constvars + jaxpr.invars, constvars + invars))
    eqns = []
    for i, eqn in enumerate(jaxpr.eqns):
        if any(isinstance(x, Var) and x not in new for x in eqn.invars):
            break
        operands = [x if isinstance(x, Literal) else new[x] for x in eqn.invars]
        params = changed.get(i, eqn.params)
        try:
            eqn.primitive.check_params(params)
            avals = eqn.primitive.abstract_eval([x.aval for x in operands], params)
        except (TypeError, ValueError):
            if i in changed:
                return None
            break
        if any(a.size > MAX_ELEMENTS for a in avals):
            return None
        outvars = [Var(a) for a in avals]
        new.update(zip(eqn.outvars, outvars))  # a changed sub-jaxpr may give another number of them
        eqns.append(eqn.replace(invars=operands, outvars=outvars, params=params))
    else:
        if all(isinstance(x, Literal) or x in new for x in jaxpr.outvars):
            return Jaxpr(constvars, invars, eqns, [x if isinstance(x, Literal) else new[x] for x in jaxpr.outvars])
    return Jaxpr(constvars, invars, eqns, [v for e in eqns for v in e.outvars])


_WITH_EQUATIONS = [text for text in CORPUS if parse(text).eqns]


@st.composite
def mutated_programs(draw):
    """(the text of a well-typed mutation of a corpus program, or None if the mutation is ill-typed)."""
    jaxpr = parse(draw(st.sampled_from(_WITH_EQUATIONS))).jaxpr
    in_avals = list(jaxpr.in_avals)
    changed = {}
    for _ in range(draw(st.integers(1, 2))):
        if jaxpr.invars and draw(st.integers(0, 3)) == 0:
            i = draw(st.integers(0, len(in_avals) - 1))
            in_avals[i] = mutated_aval(draw, in_avals[i])
            continue
        i = draw(st.integers(0, len(jaxpr.eqns) - 1))
        params = dict(changed.get(i, jaxpr.eqns[i].params))
        if params and draw(st.integers(0, 5)):
            key = draw(st.sampled_from(sorted(params)))
            params[key] = mutated_value(draw, params[key])
        elif params and draw(st.booleans()):
            del params[draw(st.sampled_from(sorted(params)))]
        else:
            params[draw(st.sampled_from(["axes", "y", "dtype", "where", "shape", "name"]))] = (
                draw(st.sampled_from(_SPECIAL_VALUES)))
        changed[i] = params
    program = retyped(jaxpr, in_avals, changed)
    return None if program is None else str(program)


@settings(max_examples=FUZZ_EXAMPLES, deadline=None)
@given(mutated_programs(), st.integers(0, 2**32 - 1))
def test_well_typed_mutations_of_params_and_types_evaluate_to_their_declared_types(text, seed):
    event("ill-typed (rejected by abstract evaluation)" if text is None else "parsed and evaluated")
    if text is not None:
        closed = parse(text, max_elements=MAX_ELEMENTS)  # well-typed: it must parse
        ir.check(closed)
        assert str(closed) == text
        assert_evaluates_to_declared_types(closed, seed)
