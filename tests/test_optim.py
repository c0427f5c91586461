"""ftrans.optim against optax's update rules written out by hand in NumPy.

Each optimizer runs a few steps on a fixed sequence of gradients; the
reference below is the textbook rule with optax's conventions (bias correction
1 - b**t with t counted from 1, eps outside or inside the root where optax puts
it, momentum after the learning rate in rmsprop, ...), computed step by step in
plain NumPy. Float64 at a tight tolerance, float32 too (results stay float32),
a jitted step against the eager one, schedules against their closed forms.
"""
import inspect
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import ftrans as ft
import ftrans.numpy as fnp
import ftrans.optim as optim

STEPS = 5


def gradient_sequence(dtype, steps=STEPS, seed=0):
    rng = np.random.default_rng(seed)
    return [{"w": rng.normal(size=(3, 2)).astype(dtype), "b": rng.normal(size=(2,)).astype(dtype)}
            for _ in range(steps)]


def initial_params(dtype):
    return {"w": np.linspace(-1, 1, 6).reshape(3, 2).astype(dtype), "b": np.array([0.5, -0.25], dtype)}


def run(optimizer, params, grads):
    """The params after each step, eagerly."""
    state = optimizer.init(params)
    history = []
    for g in grads:
        updates, state = optimizer.update(g, state, params)
        params = optim.apply_updates(params, updates)
        history.append(params)
    return history


def run_by_hand(rule, params, grads):
    """`rule(g, p, memory, t) -> update` per leaf, t = 1, 2, ...; memory a dict kept per leaf."""
    memories = {k: {} for k in params}
    history = []
    for t, g in enumerate(grads, start=1):
        params = {k: params[k] + rule(g[k], params[k], memories[k], t) for k in params}
        history.append(params)
    return history


def sgd_rule(lr, momentum=None, nesterov=False):
    def rule(g, p, memory, t):
        if momentum is None:
            return -lr * g
        trace = g + momentum * memory.get("trace", np.zeros_like(g))
        memory["trace"] = trace
        return -lr * (g + momentum * trace if nesterov else trace)
    return rule


def adam_rule(lr, b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0, nesterov=False, weight_decay=None):
    def rule(g, p, memory, t):
        m = (1 - b1) * g + b1 * memory.get("m", np.zeros_like(g))
        v = (1 - b2) * (g * g) + b2 * memory.get("v", np.zeros_like(g))
        memory["m"], memory["v"] = m, v
        if nesterov:  # Dozat's Nadam, as optax writes it
            m_hat = b1 * (m / (1 - b1 ** (t + 1))) + (1 - b1) * (g / (1 - b1 ** t))
        else:
            m_hat = m / (1 - b1 ** t)
        v_hat = v / (1 - b2 ** t)
        direction = m_hat / (np.sqrt(v_hat + eps_root) + eps)
        if weight_decay is not None:
            direction = direction + weight_decay * p
        return -lr * direction
    return rule


def rmsprop_rule(lr, decay=0.9, eps=1e-8, initial_scale=0.0, eps_in_sqrt=True, centered=False, momentum=None,
                 nesterov=False, bias_correction=False):
    def rule(g, p, memory, t):
        v = (1 - decay) * (g * g) + decay * memory.get("v", np.full_like(g, initial_scale))
        m = (1 - decay) * g + decay * memory.get("m", np.zeros_like(g))
        memory["v"], memory["m"] = v, m
        if bias_correction:
            v, m = v / (1 - decay ** t), m / (1 - decay ** t)
        second = v - m * m if centered else v
        scaled = g / np.sqrt(second + eps) if eps_in_sqrt else g / (np.sqrt(second) + eps)
        update = -lr * scaled
        if momentum is not None:  # optax puts the momentum after the learning rate
            trace = update + momentum * memory.get("trace", np.zeros_like(g))
            memory["trace"] = trace
            update = update + momentum * trace if nesterov else trace
        return update
    return rule


def adagrad_rule(lr, initial_accumulator_value=0.1, eps=1e-7):
    def rule(g, p, memory, t):
        s = memory.get("s", np.full_like(g, initial_accumulator_value)) + g * g
        memory["s"] = s
        return -lr * (g / np.sqrt(s + eps))
    return rule


CASES = [
    ("sgd", lambda: optim.sgd(0.1), sgd_rule(0.1)),
    ("sgd momentum", lambda: optim.sgd(0.05, momentum=0.9), sgd_rule(0.05, 0.9)),
    ("sgd nesterov", lambda: optim.sgd(0.05, momentum=0.8, nesterov=True), sgd_rule(0.05, 0.8, True)),
    ("adam", lambda: optim.adam(0.01), adam_rule(0.01)),
    ("adam b1 b2 eps eps_root", lambda: optim.adam(0.02, b1=0.8, b2=0.99, eps=1e-3, eps_root=1e-4),
     adam_rule(0.02, 0.8, 0.99, 1e-3, 1e-4)),
    ("adam nesterov", lambda: optim.adam(0.01, nesterov=True), adam_rule(0.01, nesterov=True)),
    ("adamw", lambda: optim.adamw(0.01, weight_decay=0.1), adam_rule(0.01, weight_decay=0.1)),
    ("adamw default decay", lambda: optim.adamw(0.01), adam_rule(0.01, weight_decay=1e-4)),
    ("rmsprop", lambda: optim.rmsprop(0.01), rmsprop_rule(0.01)),
    ("rmsprop initial_scale eps outside", lambda: optim.rmsprop(0.01, initial_scale=1.0, eps_in_sqrt=False),
     rmsprop_rule(0.01, initial_scale=1.0, eps_in_sqrt=False)),
    ("rmsprop centered momentum", lambda: optim.rmsprop(0.01, centered=True, momentum=0.9),
     rmsprop_rule(0.01, centered=True, momentum=0.9)),
    ("rmsprop nesterov bias_correction", lambda: optim.rmsprop(0.01, momentum=0.5, nesterov=True, bias_correction=True),
     rmsprop_rule(0.01, momentum=0.5, nesterov=True, bias_correction=True)),
    ("rmsprop centered bias_correction", lambda: optim.rmsprop(0.01, decay=0.8, centered=True, bias_correction=True),
     rmsprop_rule(0.01, decay=0.8, centered=True, bias_correction=True)),
    ("adagrad", lambda: optim.adagrad(0.1), adagrad_rule(0.1)),
    ("adagrad options", lambda: optim.adagrad(0.1, initial_accumulator_value=0.5, eps=1e-3),
     adagrad_rule(0.1, 0.5, 1e-3)),
]


def assert_history_close(got, want, rtol, dtype):
    for step, (g, w) in enumerate(zip(got, want, strict=True)):
        for k in w:
            assert g[k].dtype == dtype, (step, k, g[k].dtype)
            np.testing.assert_allclose(g[k], w[k], rtol=rtol, atol=0, err_msg=f"step {step + 1}, leaf {k}")


@pytest.mark.parametrize("name,make,rule", CASES, ids=[c[0] for c in CASES])
def test_optimizer_matches_its_update_rule_float64(name, make, rule):
    grads, params = gradient_sequence(np.float64), initial_params(np.float64)
    assert_history_close(run(make(), params, grads), run_by_hand(rule, params, grads), 1e-13, np.float64)


@pytest.mark.parametrize("name,make,rule", CASES, ids=[c[0] for c in CASES])
def test_optimizer_matches_its_update_rule_float32(name, make, rule):
    grads, params = gradient_sequence(np.float32), initial_params(np.float32)
    assert_history_close(run(make(), params, grads), run_by_hand(rule, params, grads), 2e-6, np.float32)


def training_step(optimizer):
    """One step of `optimizer` on a small tanh regression loss: (params, state) -> (params, state)."""
    x = np.linspace(-1, 1, 12).reshape(4, 3)

    def loss(p):
        return fnp.sum(fnp.tanh(x @ p["w"] + p["b"]) ** 2)

    def step(p, state):
        updates, state = optimizer.update(ft.grad(loss)(p), state, p)
        return optim.apply_updates(p, updates), state
    return step


@pytest.mark.parametrize("name,make,rule", CASES, ids=[c[0] for c in CASES])
def test_jitted_training_step_equals_eager(name, make, rule):
    optimizer = make()
    params = initial_params(np.float64)
    step = training_step(optimizer)

    jitted = ft.jit(step)
    eager_p, eager_s = params, optimizer.init(params)
    jit_p, jit_s = eager_p, eager_s
    for _ in range(4):
        eager_p, eager_s = step(eager_p, eager_s)
        jit_p, jit_s = jitted(jit_p, jit_s)
    eager_leaves, eager_tree = ft.tree_util.tree_flatten((eager_p, eager_s))
    jit_leaves, jit_tree = ft.tree_util.tree_flatten((jit_p, jit_s))
    assert eager_tree == jit_tree
    for e, j in zip(eager_leaves, jit_leaves, strict=True):
        assert np.asarray(e).dtype == np.asarray(j).dtype
        np.testing.assert_allclose(j, e, rtol=1e-12, atol=1e-15)
    assert jitted.trace_count == 1  # the state's structure and types do not change from step to step


def test_state_is_a_pytree_of_namedtuples_with_an_int32_count():
    state = optim.adam(0.1).init(initial_params(np.float32))
    adam_state, lr_state = state
    assert isinstance(adam_state, optim.ScaleByAdamState) and isinstance(lr_state, optim.EmptyState)
    assert adam_state.count.dtype == np.int32 and adam_state.count.shape == ()
    assert adam_state.mu["w"].dtype == np.float32
    _, (adam_state, _) = optim.adam(0.1).update(gradient_sequence(np.float32)[0], state)
    assert adam_state.count == 1 and adam_state.count.dtype == np.int32
    leaves = ft.tree_util.tree_leaves(state)
    assert len(leaves) == 5  # count, mu (2 leaves), nu (2 leaves)


def test_mu_dtype_and_accumulator_dtype():
    params = initial_params(np.float64)
    grads = gradient_sequence(np.float64)
    state = optim.adam(0.1, mu_dtype=np.float32).init(params)
    assert state[0].mu["w"].dtype == np.float32 and state[0].nu["w"].dtype == np.float64
    _, state = optim.adam(0.1, mu_dtype=np.float32).update(grads[0], state)
    assert state[0].mu["w"].dtype == np.float32
    state = optim.sgd(0.1, momentum=0.9, accumulator_dtype="float32").init(params)
    _, state = optim.sgd(0.1, momentum=0.9, accumulator_dtype="float32").update(grads[0], state)
    assert state[0].trace["b"].dtype == np.float32


def test_learning_rate_schedule_is_evaluated_at_the_step_count():
    schedule = optim.exponential_decay(0.1, transition_steps=1, decay_rate=0.5)
    grads, params = gradient_sequence(np.float64), initial_params(np.float64)
    got = run(optim.sgd(schedule), params, grads)
    want = params
    for t, g in enumerate(grads):
        want = {k: want[k] - 0.1 * 0.5 ** t * g[k] for k in want}
        np.testing.assert_allclose(got[t]["w"], want["w"], rtol=1e-14)


def test_clip_by_global_norm_matches_its_rule():
    clip = optim.clip_by_global_norm(1.0)
    small = {"a": np.array([0.3, 0.4]), "b": np.array([[0.0]])}
    updates, _ = clip.update(small, clip.init(small))
    np.testing.assert_array_equal(updates["a"], small["a"])  # norm 0.5 < 1: unchanged
    big = {"a": np.array([3.0, 4.0]), "b": np.array([[12.0]])}  # norm 13
    updates, _ = clip.update(big, clip.init(big))
    np.testing.assert_allclose(updates["a"], np.array([3.0, 4.0]) / 13.0, rtol=1e-15)
    np.testing.assert_allclose(updates["b"], np.array([[12.0]]) / 13.0, rtol=1e-15)
    np.testing.assert_allclose(optim.global_norm(updates), 1.0, rtol=1e-15)
    f32 = {"a": np.array([3.0, 4.0], np.float32)}
    assert clip.update(f32, clip.init(f32))[0]["a"].dtype == np.float32


def test_chain_of_clipping_and_adam_equals_the_rules_composed():
    grads, params = gradient_sequence(np.float64), initial_params(np.float64)
    max_norm = 1.0
    clipped = []
    for g in grads:
        norm = math.sqrt(sum(float(np.sum(x * x)) for x in g.values()))
        clipped.append(g if norm < max_norm else {k: v / norm * max_norm for k, v in g.items()})
    got = run(optim.chain(optim.clip_by_global_norm(max_norm), optim.adam(0.01)), params, grads)
    assert_history_close(got, run_by_hand(adam_rule(0.01), params, clipped), 1e-13, np.float64)


def test_building_blocks_compose_as_optax_composes_them():
    """adam == chain(scale_by_adam(), scale_by_learning_rate(lr)) and
    sgd(momentum) == chain(trace(momentum), scale(-lr)), number for number."""
    grads, params = gradient_sequence(np.float64), initial_params(np.float64)
    pairs = [(optim.adam(0.01), optim.chain(optim.scale_by_adam(), optim.scale_by_learning_rate(0.01))),
             (optim.sgd(0.1, momentum=0.9), optim.chain(optim.trace(0.9), optim.scale(-0.1))),
             (optim.rmsprop(0.1), optim.chain(optim.scale_by_rms(), optim.scale_by_learning_rate(0.1))),
             (optim.adagrad(0.1), optim.chain(optim.scale_by_rss(), optim.scale_by_schedule(lambda c: -0.1))),
             (optim.adamw(0.01, weight_decay=0.5),
              optim.chain(optim.scale_by_adam(), optim.add_decayed_weights(0.5), optim.scale_by_learning_rate(0.01)))]
    for a, b in pairs:
        for x, y in zip(run(a, params, grads), run(b, params, grads), strict=True):
            for k in x:
                np.testing.assert_array_equal(x[k], y[k])


def test_adamw_mask_skips_decay_on_masked_out_leaves():
    grads, params = gradient_sequence(np.float64), initial_params(np.float64)
    with_mask = run(optim.adamw(0.01, weight_decay=0.5, mask={"w": True, "b": False}), params, grads)
    masked_by_function = run(optim.adamw(0.01, weight_decay=0.5, mask=lambda p: {"w": True, "b": False}), params, grads)
    decayed = run_by_hand(adam_rule(0.01, weight_decay=0.5), params, grads)
    plain = run_by_hand(adam_rule(0.01), params, grads)
    for got in (with_mask, masked_by_function):
        for step in range(STEPS):
            np.testing.assert_allclose(got[step]["w"], decayed[step]["w"], rtol=1e-13)
            np.testing.assert_allclose(got[step]["b"], plain[step]["b"], rtol=1e-13)


def test_scale_by_learning_rate_flip_sign_and_none():
    g = {"a": np.array([1.0, -2.0])}
    t = optim.scale_by_learning_rate(0.5, flip_sign=False)
    np.testing.assert_array_equal(t.update(g, t.init(g))[0]["a"], [0.5, -1.0])
    t = optim.scale_by_learning_rate(None)
    assert t.update(g, t.init(g))[0] is g


def test_hyperparameters_may_be_traced_arguments_of_a_jitted_step():
    params = {"w": np.array([1.0, 2.0])}

    @ft.jit
    def step(p, lr):
        optimizer = optim.sgd(lr, momentum=0.9)
        updates, _ = optimizer.update({"w": p["w"]}, optimizer.init(p), p)
        return optim.apply_updates(p, updates)

    np.testing.assert_allclose(step(params, 0.25)["w"], [0.75, 1.5])
    np.testing.assert_allclose(step(params, 0.5)["w"], [0.5, 1.0])


@given(shape=st.sampled_from([(), (1,), (3,), (2, 3)]),
       values=st.lists(st.floats(-10, 10, allow_nan=False, width=32), min_size=6, max_size=6),
       b1=st.floats(0.0, 0.99), b2=st.floats(0.5, 0.9999))
def test_adam_rule_over_shapes_and_values(shape, values, b1, b2):
    size = int(np.prod(shape))
    g = np.resize(np.array(values), shape).astype(np.float64) if size else np.zeros(shape)
    grads = [{"x": g * (k + 1)} for k in range(3)]
    params = {"x": np.zeros(shape)}
    got = run(optim.adam(0.1, b1=b1, b2=b2), params, grads)
    want = run_by_hand(adam_rule(0.1, b1=b1, b2=b2), params, grads)
    for x, y in zip(got, want, strict=True):
        np.testing.assert_allclose(x["x"], y["x"], rtol=1e-12, atol=1e-300)


# -------------------- optax's names, keywords and defaults --------------------

OPTAX_SIGNATURES = {  # optax's documented signatures (defaults included)
    optim.sgd: "(learning_rate, momentum=None, nesterov=False, accumulator_dtype=None)",
    optim.adam: "(learning_rate, b1=0.9, b2=0.999, eps=1e-08, eps_root=0.0, mu_dtype=None, *, nesterov=False)",
    optim.adamw: "(learning_rate, b1=0.9, b2=0.999, eps=1e-08, eps_root=0.0, mu_dtype=None, weight_decay=0.0001, "
                 "mask=None, *, nesterov=False)",
    optim.rmsprop: "(learning_rate, decay=0.9, eps=1e-08, initial_scale=0.0, eps_in_sqrt=True, centered=False, "
                   "momentum=None, nesterov=False, bias_correction=False)",
    optim.adagrad: "(learning_rate, initial_accumulator_value=0.1, eps=1e-07)",
    optim.clip_by_global_norm: "(max_norm)",
    optim.scale_by_adam: "(b1=0.9, b2=0.999, eps=1e-08, eps_root=0.0, mu_dtype=None, *, nesterov=False)",
    optim.scale_by_rms: "(decay=0.9, eps=1e-08, initial_scale=0.0, eps_in_sqrt=True, bias_correction=False)",
    optim.scale_by_rss: "(initial_accumulator_value=0.1, eps=1e-07)",
    optim.trace: "(decay, nesterov=False, accumulator_dtype=None)",
    optim.exponential_decay: "(init_value, transition_steps, decay_rate, transition_begin=0, staircase=False, "
                             "end_value=None)",
    optim.cosine_decay_schedule: "(init_value, decay_steps, alpha=0.0, exponent=1.0)",
    optim.warmup_cosine_decay_schedule: "(init_value, peak_value, warmup_steps, decay_steps, end_value=0.0, "
                                        "exponent=1.0)",
    optim.linear_schedule: "(init_value, end_value, transition_steps, transition_begin=0)",
}


@pytest.mark.parametrize("fun", list(OPTAX_SIGNATURES), ids=lambda f: f.__name__)
def test_signature_is_optax_s(fun):
    signature = inspect.signature(fun).replace(return_annotation=inspect.Signature.empty)
    assert str(signature) == OPTAX_SIGNATURES[fun]


# -------------------- schedules against their closed forms --------------------

def test_constant_schedule():
    assert optim.constant_schedule(0.3)(0) == 0.3 and optim.constant_schedule(0.3)(1000) == 0.3


def test_linear_and_polynomial_schedules():
    s = optim.linear_schedule(1.0, 0.1, transition_steps=10, transition_begin=5)
    for t in range(25):
        fraction = min(max(t - 5, 0), 10) / 10
        np.testing.assert_allclose(s(t), 1.0 + fraction * (0.1 - 1.0), rtol=1e-14)
    p = optim.polynomial_schedule(1.0, 0.01, power=2, transition_steps=100)
    np.testing.assert_allclose([p(0), p(50), p(100), p(200)], [1.0, 0.99 * 0.25 + 0.01, 0.01, 0.01], rtol=1e-14)
    assert optim.linear_schedule(2.0, 0.0, transition_steps=0)(7) == 2.0  # no transition: held at init_value


def test_exponential_decay():
    s = optim.exponential_decay(0.5, transition_steps=4, decay_rate=0.3, transition_begin=2)
    for t in range(12):
        want = 0.5 if t <= 2 else 0.5 * 0.3 ** ((t - 2) / 4)
        np.testing.assert_allclose(s(t), want, rtol=1e-14)
    stairs = optim.exponential_decay(0.5, transition_steps=4, decay_rate=0.3, staircase=True, end_value=0.1)
    for t in range(20):
        np.testing.assert_allclose(stairs(t), max(0.5 * 0.3 ** (t // 4), 0.1), rtol=1e-14)
    growing = optim.exponential_decay(1.0, transition_steps=1, decay_rate=2.0, end_value=5.0)
    np.testing.assert_allclose([growing(t) for t in range(5)], [1.0, 2.0, 4.0, 5.0, 5.0])


def test_cosine_decay_schedule():
    s = optim.cosine_decay_schedule(0.2, decay_steps=10, alpha=0.1, exponent=2.0)
    for t in range(15):
        c = 0.5 * (1 + math.cos(math.pi * min(t, 10) / 10))
        np.testing.assert_allclose(s(t), 0.2 * ((1 - 0.1) * c ** 2 + 0.1), rtol=1e-14)
    with pytest.raises(ValueError, match="positive decay_steps"):
        optim.cosine_decay_schedule(0.2, decay_steps=0)


def test_warmup_cosine_decay_schedule():
    s = optim.warmup_cosine_decay_schedule(0.0, 1.0, warmup_steps=4, decay_steps=14, end_value=0.1)
    for t in range(20):
        if t < 4:
            want = t / 4
        else:
            c = 0.5 * (1 + math.cos(math.pi * min(t - 4, 10) / 10))
            want = 1.0 * ((1 - 0.1) * c + 0.1)
        np.testing.assert_allclose(s(t), want, rtol=1e-14, atol=1e-16)


def test_warmup_exponential_decay_and_join_and_piecewise():
    s = optim.warmup_exponential_decay_schedule(0.0, 1.0, warmup_steps=2, transition_steps=1, decay_rate=0.5)
    np.testing.assert_allclose([s(t) for t in range(6)], [0.0, 0.5, 1.0, 0.5, 0.25, 0.125])
    p = optim.piecewise_constant_schedule(1.0, {3: 0.5, 5: 0.1})
    np.testing.assert_allclose([p(t) for t in range(7)], [1, 1, 1, 0.5, 0.5, 0.05, 0.05], rtol=1e-14)
    w = optim.warmup_constant_schedule(0.0, 2.0, warmup_steps=4)
    np.testing.assert_allclose([w(t) for t in range(6)], [0, 0.5, 1, 1.5, 2, 2])


def test_schedules_trace_under_jit_on_the_int32_count():
    for schedule in (optim.warmup_cosine_decay_schedule(0.0, 1.0, 4, 14, end_value=0.1),
                     optim.exponential_decay(0.5, 4, 0.3, transition_begin=2, staircase=True),
                     optim.linear_schedule(1.0, 0.1, 10, 5), optim.piecewise_constant_schedule(1.0, {3: 0.5})):
        jitted = ft.jit(schedule)
        for t in range(0, 20, 3):
            np.testing.assert_allclose(jitted(np.int32(t)), schedule(t), rtol=1e-14)


# -------------------- errors --------------------

def test_bad_learning_rate_is_a_type_error_naming_it():
    with pytest.raises(TypeError, match="learning_rate must be a number or a schedule"):
        optim.adam("0.1")
    with pytest.raises(TypeError, match="learning_rate must be a number or a schedule"):
        optim.sgd(np.ones(3))


def test_wrong_state_says_which_transformation_and_what_to_pass():
    params = initial_params(np.float64)
    with pytest.raises(ValueError, match="chain of 2 transformations: expected its state"):
        optim.adam(0.1).update(params, optim.sgd(0.1, momentum=0.9).init(params)[0])
    with pytest.raises(TypeError, match="scale_by_adam: the state is TraceState"):
        optim.adam(0.1).update(params, optim.sgd(0.1, momentum=0.9).init(params))


def test_mismatched_structures_name_both_trees():
    state = optim.adam(0.1).init(initial_params(np.float64))
    with pytest.raises(ValueError, match="scale_by_adam: the updates have structure"):
        optim.adam(0.1).update({"w": np.ones((3, 2))}, state)


def test_weight_decay_without_params_says_to_pass_them():
    params = initial_params(np.float64)
    optimizer = optim.adamw(0.1)
    with pytest.raises(ValueError, match=r"add_decayed_weights needs the parameters: call update\(updates, state, "
                                         r"params\)"):
        optimizer.update(params, optimizer.init(params))


def test_complex_parameters_are_refused_by_name():
    """A TypeError that says complex (ftrans.numpy's own while it has no complex
    dtypes; the optimizers' "complex leaf" once it does), never a wrong answer."""
    params = {"z": np.array([1 + 1j])}
    optimizer = optim.adam(0.1)
    with pytest.raises(TypeError, match="complex"):
        optimizer.update(params, optimizer.init(params))


def test_count_saturates_at_the_int32_maximum():
    top = np.array(np.iinfo(np.int32).max, np.int32)
    assert optim.safe_increment(top) == top and optim.safe_increment(top).dtype == np.int32
    assert optim.safe_increment(np.array(41, np.int32)) == 42
    state = optim.ScaleByScheduleState(count=top)
    _, state = optim.scale_by_schedule(lambda c: 1.0).update({"a": np.ones(1)}, state)
    assert state.count == top


def test_vmap_of_the_update_over_an_ensemble_is_a_loop():
    """Four models trained side by side (their params stacked on a leading axis)
    under ft.vmap of the whole step: each is the model trained alone."""
    optimizer = optim.adam(0.05)
    step = training_step(optimizer)

    members = [{"w": np.full((3, 2), 0.1 * k), "b": np.full(2, -0.2 * k)} for k in range(4)]
    stacked = ft.tree_util.tree_map(lambda *xs: np.stack(xs), *members)
    stacked_state = ft.vmap(optimizer.init)(stacked)
    batched_step = ft.jit(ft.vmap(step))
    alone = [(m, optimizer.init(m)) for m in members]
    for _ in range(3):
        stacked, stacked_state = batched_step(stacked, stacked_state)
        alone = [step(p, s) for p, s in alone]
    for k, (p, _) in enumerate(alone):
        np.testing.assert_allclose(stacked["w"][k], p["w"], rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(stacked["b"][k], p["b"], rtol=1e-12, atol=1e-15)


def test_scheduled_weight_decay_counts_its_steps():
    decay = optim.add_decayed_weights(lambda count: 0.1 * (count + 1))
    params = {"a": np.array([2.0, -4.0])}
    state = decay.init(params)
    zero = {"a": np.zeros(2)}
    for t in range(3):
        updates, state = decay.update(zero, state, params)
        np.testing.assert_allclose(updates["a"], 0.1 * (t + 1) * params["a"], rtol=1e-15)
    assert state.count == 3


def test_clip_and_a_mask_given_as_a_prefix():
    clip = optim.clip(0.5)
    np.testing.assert_array_equal(clip.update({"a": np.array([-2.0, 0.1, 3.0])}, clip.init(None))[0]["a"],
                                  [-0.5, 0.1, 0.5])
    params = {"encoder": {"w": np.ones(2), "b": np.ones(1)}, "head": [np.ones(3)]}
    grads = ft.tree_util.tree_map(lambda p: 2 * p, params)
    only_encoder = optim.masked(optim.scale(-0.5), {"encoder": True, "head": False})
    updates, _ = only_encoder.update(grads, only_encoder.init(params), params)
    np.testing.assert_array_equal(updates["encoder"]["w"], [-1.0, -1.0])
    np.testing.assert_array_equal(updates["head"][0], grads["head"][0])  # passed through unchanged
    with pytest.raises(ValueError, match="the mask must have the structure of the params"):
        optim.masked(optim.scale(2.0), {"encoder": True}).init(params)
