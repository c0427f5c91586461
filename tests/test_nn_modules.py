"""ftrans.nn's modules: pytrees (flatten/unflatten, static fields never traced, jit/grad/vmap of
module calls), each layer against a NumPy reference written out here (convolution as a direct
loop, LayerNorm and BatchNorm by their formulas, GRU and LSTM by their equations), Flax's
initial values and their statistics, check_grads through every layer, BatchNorm's state,
Dropout's key, tree_at, parameter counts, summaries, and errors that name the layer."""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import ftrans as ft
import ftrans.numpy as fnp
from ftrans import nn

KEY = ft.random.PRNGKey(0)
RNG = np.random.default_rng(0)


def _normal(*shape, dtype=np.float64):
    return RNG.normal(size=shape).astype(dtype)


def _perturbed(module, scale=0.5):
    """The module with every parameter moved off its initial value (zero biases, unit scales
    would hide a wrong formula)."""
    leaves, treedef = ft.tree_util.tree_flatten(module)
    return treedef.unflatten([x + scale * _normal(*np.shape(x), dtype=np.asarray(x).dtype) for x in leaves])


# name -> (module, a batched input, how to call it); the same cases feed every pytree test
def _bn_call(m, x):
    return m(x, m.initial_state())[0]


def _gru_call(m, x):
    return m(fnp.tanh(x[..., :4]), x)[0]


def _lstm_call(m, x):
    return m((x[..., :4], fnp.sin(x[..., :4])), x)[0][1]


def _scan_call(m, x):
    return ft.lax.scan(m, m.initialize_carry(), x)[1]


def _call(m, x):
    return m(x)


CASES = {
    "Linear": (lambda: nn.Linear(5, 3, key=KEY), (4, 5), _call),
    "Linear_no_bias": (lambda: nn.Linear(5, 3, use_bias=False, key=KEY), (4, 5), _call),
    "MLP": (lambda: nn.MLP(5, 2, 6, 2, activation=fnp.tanh, key=KEY), (4, 5), _call),
    "Conv1d": (lambda: nn.Conv1d(2, 3, 3, key=KEY), (2, 7, 2), _call),
    "Conv2d": (lambda: nn.Conv2d(2, 4, (3, 2), stride=(2, 1), padding="VALID", key=KEY), (2, 6, 5, 2), _call),
    "LayerNorm": (lambda: nn.LayerNorm(5), (4, 5), _call),
    "BatchNorm": (lambda: nn.BatchNorm(5), (6, 5), _bn_call),
    "Embedding": (lambda: nn.Embedding(7, 3, key=KEY), None, _call),
    "Sequential": (lambda: nn.Sequential([nn.Linear(5, 4, key=KEY), fnp.tanh, nn.LayerNorm(4),
                                          nn.Linear(4, 2, key=ft.random.PRNGKey(1))]), (4, 5), _call),
    "GRUCell": (lambda: nn.GRUCell(5, 4, key=KEY), (3, 5), _gru_call),
    "LSTMCell": (lambda: nn.LSTMCell(5, 4, key=KEY), (3, 5), _lstm_call),
    "GRUCell_scan": (lambda: nn.GRUCell(5, 4, key=KEY), (6, 5), _scan_call),
}
IDS = sorted(CASES)
EMBEDDING_IDS = np.array([[0, 3, 6], [2, 2, 5]])


def _case(name, dtype=np.float64):
    make, shape, call = CASES[name]
    module = _perturbed(make())
    if dtype != np.float64:
        module = ft.tree_util.tree_map(lambda w: w.astype(dtype), module)
    x = EMBEDDING_IDS if shape is None else _normal(*shape, dtype=dtype)
    return module, x, call


def _close(got, want, rtol=1e-12, atol=1e-12):
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=rtol, atol=atol)


def _trees_close(got, want, rtol=1e-12, atol=1e-12):
    assert ft.tree_util.tree_structure(got) == ft.tree_util.tree_structure(want)
    for g, w in zip(ft.tree_util.tree_leaves(got), ft.tree_util.tree_leaves(want), strict=True):
        _close(g, w, rtol, atol)


# -------------------- pytrees --------------------

@pytest.mark.parametrize("name", IDS)
def test_flatten_unflatten_round_trip(name):
    module, x, call = _case(name)
    leaves, treedef = ft.tree_util.tree_flatten(module)
    assert leaves and all(isinstance(leaf, np.ndarray) for leaf in leaves), "only arrays are leaves"
    rebuilt = treedef.unflatten(leaves)
    assert type(rebuilt) is type(module) and rebuilt is not module
    assert ft.tree_util.tree_structure(rebuilt) == treedef
    _close(call(rebuilt, x), call(module, x), 0, 0)
    # a tree of anything in the leaves keeps the structure (masks, in_axes)
    assert ft.tree_util.tree_structure(ft.tree_util.tree_map(lambda leaf: True, module)) == treedef
    # built again with the same configuration: the same structure (what jit's cache looks up)
    assert ft.tree_util.tree_structure(CASES[name][0]()) == treedef


def test_key_paths_name_the_fields():
    model = nn.MLP(2, 3, 4, 1, key=KEY)
    paths = [ft.tree_util.keystr(path) for path, _ in ft.tree_util.tree_flatten_with_path(model)[0]]
    assert paths == [".layers[0].weight", ".layers[0].bias", ".layers[1].weight", ".layers[1].bias"]


def test_structure_holds_the_static_fields():
    a, b = nn.Conv2d(2, 3, 3, key=KEY), nn.Conv2d(2, 3, 3, stride=2, key=KEY)
    assert [np.shape(x) for x in ft.tree_util.tree_leaves(a)] == [np.shape(x) for x in ft.tree_util.tree_leaves(b)]
    assert ft.tree_util.tree_structure(a) != ft.tree_util.tree_structure(b)


class Repeat(nn.Module):
    """Its output's shape depends on `times`: tracing it would fail."""
    weight: object
    times: int
    scale: float = 2.0
    offset: object = nn.field(static=False, default=0.5)  # a Python float made a leaf

    def __call__(self, x):
        assert type(self.times) is int and type(self.scale) is float, "a static field was traced"
        return fnp.concatenate([x * self.weight * self.scale + self.offset] * self.times)


def test_static_fields_are_never_traced():
    module, x = Repeat(np.array([1.0, -2.0]), 3), np.array([0.5, 0.25])
    want = np.tile(x * module.weight * 2.0 + 0.5, 3)
    _close(module(x), want)
    _close(ft.jit(lambda m, x: m(x))(module, x), want)
    _close(ft.vmap(lambda m, x: m(x), in_axes=(None, 0))(module, np.stack([x, x])), np.stack([want, want]))
    grads = ft.grad(lambda m: fnp.sum(m(x)))(module)
    assert type(grads) is Repeat and grads.times == 3 and grads.scale == 2.0
    _close(grads.weight, 3 * 2.0 * x)
    _close(grads.offset, 6.0)  # field(static=False): a leaf, differentiated
    closed = ft.make_jaxpr(lambda m: m(x))(module)
    assert len(closed.jaxpr.invars) == 2, "the jaxpr's inputs are the two leaves, not the static fields"


def test_modules_are_frozen():
    module = nn.Linear(2, 3, key=KEY)
    with pytest.raises(dataclasses.FrozenInstanceError, match="tree_at"):
        module.weight = np.zeros((2, 3))
    with pytest.raises(AttributeError, match="no field 'extra'"):
        module.extra = 1
    assert dataclasses.is_dataclass(module)
    assert [f.name for f in dataclasses.fields(module)][:2] == ["weight", "bias"]


def test_generated_init_and_unset_fields():
    assert Repeat(np.ones(2), 2).scale == 2.0

    class Forgets(nn.Module):
        weight: object
        size: int

        def __init__(self):
            self.weight = np.ones(2)

    with pytest.raises(TypeError, match="did not set the field.* size"):
        Forgets()


@pytest.mark.parametrize("name", IDS)
def test_jit_grad_and_vmap_of_module_calls(name):
    module, x, call = _case(name)
    want = call(module, x)
    jitted = ft.jit(call)
    _close(jitted(module, x), want)
    jitted(CASES[name][0](), x)
    assert jitted.trace_count == 1, "another module of the same configuration is a cache hit"
    if name != "Embedding":
        loss = lambda m, x: fnp.sum(fnp.sin(call(m, x)))  # noqa: E731
        grads = ft.grad(loss)(module, x)
        assert type(grads) is type(module)
        assert ft.tree_util.tree_structure(grads) == ft.tree_util.tree_structure(module)
        _trees_close(ft.jit(ft.grad(loss))(module, x), grads, 1e-10, 1e-12)
    if name in ("BatchNorm", "GRUCell_scan"):
        return  # batch statistics / a sequence: not a function of each example alone
    per_example = ft.vmap(lambda x: call(module, x[None])[0])(x)
    _close(per_example, want, 1e-12, 1e-12)


@pytest.mark.parametrize("name", ["Linear", "Conv2d", "MLP", "LSTMCell"])
def test_vmap_over_a_stack_of_modules(name):
    """An ensemble: modules drawn under vmap from a batch of keys, called under vmap, as a loop."""
    make, shape, call = CASES[name]
    keys = ft.random.split(KEY, 3)
    constructor = {"Linear": lambda k: nn.Linear(5, 3, key=k), "Conv2d": lambda k: nn.Conv2d(2, 4, 3, key=k),
                   "MLP": lambda k: nn.MLP(5, 2, 6, 2, key=k), "LSTMCell": lambda k: nn.LSTMCell(5, 4, key=k)}[name]
    stacked = ft.vmap(constructor)(keys)
    x = _normal(3, *shape)
    got = ft.vmap(call)(stacked, x)
    for i in range(3):
        _close(got[i], call(constructor(keys[i]), x[i]), 1e-12, 1e-12)
    # a shared bias (in_axes None on one field), the weights stacked
    if name == "Linear":
        shared = nn.tree_at(lambda m: m.bias, stacked, np.arange(3.0))
        axes = nn.tree_at(lambda m: m.bias, ft.tree_util.tree_map(lambda _: 0, stacked), None)
        got = ft.vmap(call, in_axes=(axes, 0))(shared, x)
        for i in range(3):
            _close(got[i], x[i] @ stacked.weight[i] + np.arange(3.0))


# -------------------- each layer against NumPy --------------------

def _conv_reference(x, w, stride, pads, dilation, groups):
    """Channels-last convolution, one output value at a time."""
    n = x.ndim - 2
    x = np.pad(x, [(0, 0)] + list(pads) + [(0, 0)])
    kernel, c_group, out_c = w.shape[:n], w.shape[n], w.shape[-1]
    out_spatial = [(x.shape[1 + d] - (kernel[d] - 1) * dilation[d] - 1) // stride[d] + 1 for d in range(n)]
    y = np.zeros((x.shape[0], *out_spatial, out_c), x.dtype)
    for b in range(x.shape[0]):
        for position in np.ndindex(*out_spatial):
            for o in range(out_c):
                g = o // (out_c // groups)
                total = 0.0
                for offset in np.ndindex(*kernel):
                    at = tuple(position[d] * stride[d] + offset[d] * dilation[d] for d in range(n))
                    total += x[(b, *at, slice(g * c_group, (g + 1) * c_group))] @ w[(*offset, slice(None), o)]
                y[(b, *position, o)] = total
    return y


def _same_pads(size, kernel, stride, dilation):
    span = (kernel - 1) * dilation + 1
    out = -(-size // stride)
    total = max((out - 1) * stride + span - size, 0)
    return total // 2, total - total // 2


@st.composite
def conv_configs(draw):
    n = draw(st.integers(1, 2))
    groups = draw(st.sampled_from([1, 2]))
    in_c, out_c = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(n))
    stride = tuple(draw(st.integers(1, 2)) for _ in range(n))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(n))
    spatial = tuple(draw(st.integers((k - 1) * d + 1, 6)) for k, d in zip(kernel, dilation))
    padding = draw(st.sampled_from(["SAME", "VALID", "pairs"]))
    if padding == "pairs":
        padding = tuple((draw(st.integers(0, 2)), draw(st.integers(0, 2))) for _ in range(n))
    return n, groups, in_c, out_c, kernel, stride, dilation, spatial, padding


@given(conv_configs(), st.sampled_from([np.float64, np.float32]), st.integers(1, 2))
def test_conv_is_a_direct_loop(config, dtype, batch):
    n, groups, in_c, out_c, kernel, stride, dilation, spatial, padding = config
    conv = _perturbed(nn.Conv(n, in_c, out_c, kernel, stride, padding, dilation, groups, key=KEY, dtype=dtype))
    x = _normal(batch, *spatial, in_c, dtype=dtype)
    if padding == "SAME":
        pads = [_same_pads(s, k, st_, d) for s, k, st_, d in zip(spatial, kernel, stride, dilation)]
    elif padding == "VALID":
        pads = [(0, 0)] * n
    else:
        pads = list(padding)
    want = _conv_reference(x.astype(np.float64), np.asarray(conv.weight, np.float64), stride, pads, dilation,
                           groups) + np.asarray(conv.bias, np.float64)
    got = conv(x)
    assert got.dtype == dtype and got.shape == want.shape
    tol = 1e-12 if dtype == np.float64 else 2e-5
    _close(got, want, tol, tol)
    _close(conv(x[0]), want[0], tol, tol)  # one example: no batch axis


def test_linear_mlp_and_embedding_formulas():
    linear, x = _case("Linear")[:2]
    _close(linear(x), x @ np.asarray(linear.weight) + linear.bias)
    _close(nn.Linear(5, 3, use_bias=False, key=KEY)(x), x @ np.asarray(nn.Linear(5, 3, key=KEY).weight))
    mlp, x, _ = _case("MLP")
    h = x
    for layer in mlp.layers[:-1]:
        h = np.tanh(h @ np.asarray(layer.weight) + layer.bias)
    _close(mlp(x), h @ np.asarray(mlp.layers[-1].weight) + mlp.layers[-1].bias)
    relu_mlp = nn.MLP(3, 2, 4, 1, key=KEY)
    x = _normal(2, 3)
    h = np.maximum(x @ np.asarray(relu_mlp.layers[0].weight) + relu_mlp.layers[0].bias, 0)
    _close(relu_mlp(x), h @ np.asarray(relu_mlp.layers[1].weight) + relu_mlp.layers[1].bias)
    assert len(nn.MLP(3, 2, 4, 0, key=KEY).layers) == 1
    embedding = _case("Embedding")[0]
    _close(embedding(EMBEDDING_IDS), np.asarray(embedding.weight)[EMBEDDING_IDS], 0, 0)


@given(st.lists(st.integers(1, 3), max_size=2), st.sampled_from([np.float64, np.float32]))
def test_any_leading_batch_shape(batch, dtype):
    """Linear, LayerNorm and the cells take any leading batch axes, as NumPy's formulas do."""
    batch = tuple(batch)
    tol = 1e-12 if dtype == np.float64 else 1e-5
    linear = ft.tree_util.tree_map(lambda w: w.astype(dtype), _perturbed(nn.Linear(3, 2, key=KEY)))
    x = _normal(*batch, 3, dtype=dtype)
    y = linear(x)
    assert y.shape == batch + (2,) and y.dtype == dtype
    _close(y, x @ linear.weight + linear.bias, tol, tol)
    norm = nn.LayerNorm(3, dtype=dtype)
    centred = x - x.mean(-1, keepdims=True)
    _close(norm(x), centred / np.sqrt((centred ** 2).mean(-1, keepdims=True) + 1e-6), 10 * tol, 10 * tol)
    cell = nn.GRUCell(3, 2, key=KEY, dtype=dtype)
    carry, out = cell(cell.initialize_carry(batch), x)
    assert carry.shape == batch + (2,) and carry.dtype == dtype
    flat_carry, _ = cell(np.zeros((math.prod(batch), 2), dtype), x.reshape(-1, 3))
    _close(carry, flat_carry.reshape(carry.shape), tol, tol)
    ids = RNG.integers(0, 7, size=batch)
    embedding = nn.Embedding(7, 2, key=KEY, dtype=dtype)
    _close(embedding(ids), np.asarray(embedding.weight)[ids], 0, 0)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_layer_norm_formula(dtype):
    norm = _perturbed(nn.LayerNorm((3, 4), epsilon=1e-3, dtype=dtype))
    x = _normal(2, 3, 4, dtype=dtype)
    x64 = x.astype(np.float64)
    mean = x64.mean(axis=(1, 2), keepdims=True)
    var = ((x64 - mean) ** 2).mean(axis=(1, 2), keepdims=True)
    want = (x64 - mean) / np.sqrt(var + 1e-3) * norm.weight + norm.bias
    got = norm(x)
    assert got.dtype == dtype
    _close(got, want, 1e-12 if dtype == np.float64 else 1e-5, 1e-12 if dtype == np.float64 else 1e-5)
    bare = nn.LayerNorm(4, use_weight=False, use_bias=False)
    assert ft.tree_util.tree_leaves(bare) == []
    _close(bare(x64[0]), (x64[0] - x64[0].mean(-1, keepdims=True)) / np.sqrt(x64[0].var(-1, keepdims=True) + 1e-6))


def test_batch_norm_formula_and_state_update():
    bn = _perturbed(nn.BatchNorm(3, momentum=0.9, epsilon=1e-4))
    x = 2.0 + 3.0 * _normal(4, 5, 3)
    state = bn.initial_state()
    _close(state.mean, np.zeros(3), 0, 0)
    _close(state.var, np.ones(3), 0, 0)
    y, new_state = bn(x, state)
    mean, var = x.mean(axis=(0, 1)), x.var(axis=(0, 1))  # the biased variance
    _close(y, (x - mean) / np.sqrt(var + 1e-4) * bn.weight + bn.bias)
    _close(new_state.mean, 0.9 * 0 + 0.1 * mean)
    _close(new_state.var, 0.9 * 1 + 0.1 * var)
    # a second step moves from the first
    y2, state2 = bn(x[:2], new_state)
    _close(state2.mean, 0.9 * new_state.mean + 0.1 * x[:2].mean(axis=(0, 1)))
    # inference: the running statistics, the state returned as it was
    y_inf, same = bn(x, state2, inference=True)
    _close(y_inf, (x - state2.mean) / np.sqrt(state2.var + 1e-4) * bn.weight + bn.bias)
    assert same is state2
    y_inf2, _ = nn.inference_mode(bn)(x, state2)
    _close(y_inf2, y_inf)
    # jitted, with the state as a pytree argument and result
    y_jit, state_jit = ft.jit(lambda m, x, s: m(x, s))(bn, x, state)
    _close(y_jit, y)
    _trees_close(state_jit, new_state)
    # the gradient flows through the batch statistics
    ft.check_grads(lambda x: bn(x, state)[0], (x,), order=1, modes=("fwd", "rev"))


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


def test_gru_equations():
    cell, x, _ = _case("GRUCell")
    h = np.tanh(_normal(3, 4))
    W_i, W_h = np.asarray(cell.input_weight), np.asarray(cell.hidden_weight)
    b_i, b_hn = np.asarray(cell.input_bias), np.asarray(cell.hidden_bias)
    W_ir, W_iz, W_in = np.split(W_i, 3, axis=1)
    W_hr, W_hz, W_hn = np.split(W_h, 3, axis=1)
    b_ir, b_iz, b_in = np.split(b_i, 3)
    r = _sigmoid(x @ W_ir + b_ir + h @ W_hr)
    z = _sigmoid(x @ W_iz + b_iz + h @ W_hz)
    n = np.tanh(x @ W_in + b_in + r * (h @ W_hn + b_hn))
    new, out = cell(h, x)
    _close(new, (1 - z) * n + z * h)
    _close(out, new, 0, 0)


def test_lstm_equations():
    cell, x, _ = _case("LSTMCell")
    c, h = _normal(3, 4), np.tanh(_normal(3, 4))
    W_ii, W_if, W_ig, W_io = np.split(np.asarray(cell.input_weight), 4, axis=1)
    W_hi, W_hf, W_hg, W_ho = np.split(np.asarray(cell.hidden_weight), 4, axis=1)
    b_i, b_f, b_g, b_o = np.split(np.asarray(cell.bias), 4)
    i = _sigmoid(x @ W_ii + h @ W_hi + b_i)
    f = _sigmoid(x @ W_if + h @ W_hf + b_f)
    g = np.tanh(x @ W_ig + h @ W_hg + b_g)
    o = _sigmoid(x @ W_io + h @ W_ho + b_o)
    (new_c, new_h), out = cell((c, h), x)
    _close(new_c, f * c + i * g)
    _close(new_h, o * np.tanh(f * c + i * g))
    _close(out, new_h, 0, 0)


@pytest.mark.parametrize("cell_type", [nn.GRUCell, nn.LSTMCell])
def test_cells_under_scan_are_a_python_loop(cell_type):
    cell = _perturbed(cell_type(3, 4, key=KEY))
    xs = _normal(5, 2, 3)  # time, batch, features
    carry = cell.initialize_carry((2,))
    final, ys = ft.lax.scan(cell, carry, xs)
    loop_ys = []
    for x in xs:
        carry, y = cell(carry, x)
        loop_ys.append(y)
    _close(ys, np.stack(loop_ys))
    _trees_close(final, carry)
    loss = lambda cell: fnp.sum(ft.lax.scan(cell, cell.initialize_carry((2,)), xs)[1] ** 2)  # noqa: E731
    ft.check_grads(loss, (cell,), order=1, modes=("fwd", "rev"))


def test_dropout_with_a_key():
    dropout, x = nn.Dropout(0.3), 1.0 + np.abs(_normal(200, 50))
    key = ft.random.PRNGKey(7)
    y = dropout(x, key=key)
    kept = y != 0
    _close(y[kept], x[kept] / 0.7)
    _close(y, np.where(np.asarray(ft.random.bernoulli(key, 0.7, x.shape)), x / 0.7, 0.0))
    share = kept.mean()
    assert abs(share - 0.7) < 4 * math.sqrt(0.7 * 0.3 / x.size), share  # four standard errors
    _close(dropout(x, key=key), y, 0, 0)  # the same key drops the same values
    assert (dropout(x, key=ft.random.PRNGKey(8)) != y).any()
    _close(dropout(x, inference=True), x, 0, 0)
    _close(nn.Dropout(0.3, inference=True)(x), x, 0, 0)
    _close(nn.Dropout(0.0)(x), x, 0, 0)
    _close(nn.Dropout(1.0)(x, key=key), np.zeros_like(x), 0, 0)
    _close(ft.jit(lambda x, k: dropout(x, key=k))(x, key), y)
    grad = ft.grad(lambda x: fnp.sum(dropout(x, key=key)))(x)
    _close(grad, np.where(kept, 1 / 0.7, 0.0))
    model = nn.Sequential([nn.Linear(50, 50, key=KEY), nn.Dropout(0.5)])
    assert (model(x, key=key) == 0).any()
    _close(nn.inference_mode(model)(x, key=key), model.layers[0](x))
    with pytest.raises(ValueError, match=r"Dropout\(0.3\): training needs a key"):
        dropout(x)


def test_sequential_passes_keys_and_indexes():
    first, second = nn.Linear(3, 4, key=KEY), nn.Linear(4, 2, key=ft.random.PRNGKey(1))
    model = nn.Sequential([first, nn.relu, second])
    x = _normal(5, 3)
    _close(model(x), second(np.maximum(first(x), 0)))
    assert len(model) == 3 and model[0] is first and isinstance(model[1], nn.Lambda)
    _close(model[:2](x), np.maximum(first(x), 0))
    assert [type(m).__name__ for m in model] == ["Linear", "Lambda", "Linear"]

    class Scale(nn.Module):  # a call without a key: called as layer(x) under Sequential(key=...)
        factor: object

        def __call__(self, x):
            return self.factor * x

    noisy = nn.Sequential([Scale(np.array(3.0)), nn.Dropout(0.5)])
    key = ft.random.PRNGKey(2)
    _close(noisy(x, key=key), nn.Dropout(0.5)(3.0 * x, key=ft.random.split(key, 2)[1]))


# -------------------- initial values --------------------

def test_initial_values_are_flax_s():
    weight_key = ft.random.split(KEY)[0]
    linear = nn.Linear(6, 4, key=KEY)
    _close(linear.weight, nn.initializers.lecun_normal()(weight_key, (6, 4)), 0, 0)
    _close(linear.bias, np.zeros(4), 0, 0)
    conv = nn.Conv2d(3, 5, (2, 3), key=KEY)
    assert conv.weight.shape == (2, 3, 3, 5)
    _close(conv.weight, nn.initializers.lecun_normal()(weight_key, (2, 3, 3, 5)), 0, 0)
    _close(conv.bias, np.zeros(5), 0, 0)
    norm, bn = nn.LayerNorm(4), nn.BatchNorm(4)
    for layer in (norm, bn):
        _close(layer.weight, np.ones(4), 0, 0)
        _close(layer.bias, np.zeros(4), 0, 0)
    assert norm.epsilon == 1e-6 and bn.epsilon == 1e-5 and bn.momentum == 0.99
    embedding = nn.Embedding(5, 3, key=KEY)
    _close(embedding.weight, nn.initializers.variance_scaling(1.0, "fan_in", "normal", out_axis=0)(KEY, (5, 3)),
           0, 0)
    gru = nn.GRUCell(3, 4, key=KEY)
    _close(gru.input_bias, np.zeros(12), 0, 0)
    _close(gru.hidden_bias, np.zeros(4), 0, 0)
    assert nn.Linear(6, 4, key=KEY, dtype=np.float32).weight.dtype == np.float32


@pytest.mark.parametrize("make, fan_in", [
    (lambda k: nn.Linear(400, 300, key=k).weight, 400),
    (lambda k: nn.Conv2d(16, 64, 5, key=k).weight, 16 * 25),
    (lambda k: nn.Conv1d(8, 32, 3, groups=2, key=k).weight, 4 * 3),
    (lambda k: nn.GRUCell(100, 200, key=k).input_weight, 100),
    (lambda k: nn.LSTMCell(30, 200, key=k).hidden_weight, 200),
])
def test_lecun_normal_statistics(make, fan_in):
    """Variance 1/fan_in, mean zero, and nothing beyond the truncation at two standard deviations
    of the underlying normal (whose deviation is sqrt(1/fan_in) / 0.8796...)."""
    w = np.asarray(make(ft.random.PRNGKey(3))).ravel()
    variance = 1.0 / fan_in
    assert abs(w.var() / variance - 1) < 5 * math.sqrt(2 / w.size) + 0.01, w.var() * fan_in
    assert abs(w.mean()) < 5 * math.sqrt(variance / w.size)
    assert np.abs(w).max() <= 2 * math.sqrt(variance) / 0.87962566103423978 * (1 + 1e-12)


def test_embedding_statistics():
    w = np.asarray(nn.Embedding(1000, 50, key=KEY).weight)
    assert abs(w.var() * 50 - 1) < 5 * math.sqrt(2 / w.size)
    assert np.abs(w).max() > 2.5 / math.sqrt(50), "a normal, not a truncated one"


# -------------------- check_grads --------------------

@pytest.mark.parametrize("name", [n for n in IDS if n != "Embedding"])
def test_check_grads_through_the_layer(name):
    module, x, call = _case(name)
    ft.check_grads(lambda m, x: call(m, x), (module, x), order=2, modes=("fwd", "rev"))


def test_check_grads_through_embedding_and_float32():
    embedding = _case("Embedding")[0]
    ft.check_grads(lambda m: fnp.sin(m(EMBEDDING_IDS)), (embedding,), order=2, modes=("fwd", "rev"))
    module, x, call = _case("Conv2d", np.float32)
    assert call(module, x).dtype == np.float32
    grads = ft.grad(lambda m: fnp.sum(call(m, x)))(module)
    assert all(g.dtype == np.float32 for g in ft.tree_util.tree_leaves(grads))


# -------------------- tree_at, count_params, summary --------------------

def test_tree_at_edits_out_of_place():
    model = nn.MLP(3, 2, 4, 1, key=KEY)
    bias = np.arange(4.0)
    edited = nn.tree_at(lambda m: m.layers[0].bias, model, bias)
    _close(edited.layers[0].bias, bias, 0, 0)
    _close(model.layers[0].bias, np.zeros(4), 0, 0)  # the original is unchanged
    _close(edited.layers[1].weight, model.layers[1].weight, 0, 0)
    assert ft.tree_util.tree_structure(edited) == ft.tree_util.tree_structure(model)
    both = nn.tree_at(lambda m: (m.layers[0].weight, m.layers[1].bias), model, replace_fn=lambda w: 2 * w + 1)
    _close(both.layers[0].weight, 2 * np.asarray(model.layers[0].weight) + 1)
    _close(both.layers[1].bias, np.ones(2))
    swapped = nn.tree_at(lambda m: m.layers[1], model, nn.Linear(4, 2, use_bias=False, key=KEY))
    assert swapped.layers[1].bias is None and swapped.layers[1].use_bias is False
    _close(swapped(np.ones(3)), np.maximum(model.layers[0](np.ones(3)), 0) @ np.asarray(swapped.layers[1].weight))
    tree = {"model": model, "lr": np.array(0.1)}
    assert nn.tree_at(lambda t: t["lr"], tree, 0.2)["lr"] == 0.2
    with pytest.raises(ValueError, match="static field"):
        nn.tree_at(lambda m: m.activation, model, fnp.tanh)
    with pytest.raises(ValueError, match="picked 2 nodes but `replace` has 1"):
        nn.tree_at(lambda m: (m.layers[0].weight, m.layers[0].bias), model, (bias,))
    with pytest.raises(TypeError, match="exactly one of replace and replace_fn"):
        nn.tree_at(lambda m: m.layers[0].bias, model)


def test_count_params_and_summary():
    model = nn.Sequential([nn.Conv2d(1, 4, 3, key=KEY), nn.relu, nn.Lambda(lambda x: fnp.reshape(x, (-1,))),
                           nn.Linear(4 * 8 * 8, 10, key=KEY)])
    counts = [3 * 3 * 1 * 4 + 4, 0, 0, 256 * 10 + 10]
    assert nn.count_params(model) == sum(counts)
    assert nn.count_params({"a": model, "b": [np.zeros((2, 3))]}) == sum(counts) + 6
    lines = nn.summary(model).splitlines()
    assert len(lines) == 1 + 4 + 1, lines  # the Sequential, its 4 layers, the total
    assert lines[-1] == f"total: {sum(counts):,} parameters"
    for line, layer, count in zip(lines[1:5], model.layers, counts, strict=True):
        assert layer.describe() in line and line.rstrip().endswith(f"{count:,}"), line
    assert "Conv2d(1 -> 4, kernel 3x3, padding SAME)" in lines[1] and "weight:f64[3,3,1,4]" in lines[1]
    assert "Linear(256 -> 10)" in lines[4]
    assert "Linear(weight=f64[256,10]" in repr(model.layers[3])


# -------------------- errors --------------------

def test_errors_for_bad_shapes_name_the_layer():
    with pytest.raises(ValueError, match=r"Linear\(5 -> 3\): the input's last axis must have 5 features, got an "
                                         r"input of shape \(4, 6\)"):
        nn.Linear(5, 3, key=KEY)(np.ones((4, 6)))
    with pytest.raises(ValueError, match=r"Conv2d\(2 -> 4, .*\): the input must be \(\*batch, 2 spatial dims, 2 "
                                         r"channels\), channels last, got shape \(1, 2, 6, 6\)"):
        nn.Conv2d(2, 4, 3, key=KEY)(np.ones((1, 2, 6, 6)))
    with pytest.raises(ValueError, match=r"Conv1d.*got shape \(5,\)"):
        nn.Conv1d(2, 4, 3, key=KEY)(np.ones(5))
    with pytest.raises(ValueError, match=r"LayerNorm\(\(3,\).*last 1 axes must be \(3,\)"):
        nn.LayerNorm(3)(np.ones((2, 4)))
    with pytest.raises(ValueError, match=r"BatchNorm\(3.*at least one batch axis, got shape \(3,\)"):
        bn = nn.BatchNorm(3)
        bn(np.ones(3), bn.initial_state())
    with pytest.raises(TypeError, match="BatchNorm.*pass its state"):
        nn.BatchNorm(3)(np.ones((2, 3)))
    with pytest.raises(TypeError, match=r"Embedding\(5, 2\): ids must be integers"):
        nn.Embedding(5, 2, key=KEY)(np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"GRUCell\(3 -> 4\): the carry must be \(\*batch, 4\)"):
        cell = nn.GRUCell(3, 4, key=KEY)
        cell(np.zeros(5), np.ones(3))
    with pytest.raises(ValueError, match=r"LSTMCell\(3 -> 4\): the input's last axis must have 3 features"):
        cell = nn.LSTMCell(3, 4, key=KEY)
        cell(cell.initialize_carry(), np.ones(2))
    with pytest.raises(TypeError, match=r"LSTMCell.*the carry must be a pair"):
        nn.LSTMCell(3, 4, key=KEY)(np.zeros(4), np.ones(3))
    with pytest.raises(ValueError, match="Linear: in_features must be a positive int, got 0"):
        nn.Linear(0, 3, key=KEY)
    with pytest.raises(ValueError, match=r"Conv2d: kernel_size must be an int or 2 ints, got \(3, 3, 3\)"):
        nn.Conv2d(1, 1, (3, 3, 3), key=KEY)
    with pytest.raises(ValueError, match="Conv1d: in_channels .3. and out_channels .4. must be multiples of groups"):
        nn.Conv1d(3, 4, 3, groups=2, key=KEY)
    with pytest.raises(ValueError, match=r"Dropout: rate must be in \[0, 1\]"):
        nn.Dropout(1.5)
    with pytest.raises(TypeError, match="Sequential: layer 1 is a BatchNorm"):
        nn.Sequential([nn.Linear(2, 2, key=KEY), nn.BatchNorm(2)])


def test_a_shape_error_under_jit_names_the_layer():
    model = nn.MLP(4, 2, 3, 1, key=KEY)
    with pytest.raises(ValueError, match=r"Linear\(4 -> 3\)"):
        ft.jit(lambda m, x: m(x))(model, np.ones((2, 5)))
