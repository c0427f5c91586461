"""The building blocks, under optax's names and with its defaults and update
rules: each is a GradientTransformation whose state is a NamedTuple of arrays.

The arithmetic is optax's, operation for operation (`(1 - b1) * g + b1 * mu`,
then `mu / (1 - b1**count)`, ...), so that the same calls give the same
numbers; counts are int32, as optax's. One difference: optax's
`jax.lax.rsqrt(x)` is written here as `1 / sqrt(x)` (ftrans has no rsqrt
primitive), which can differ from it in the last bit.
"""
from __future__ import annotations

import numbers
from typing import Any, NamedTuple

import numpy as np

import ftrans.numpy as fnp
from ftrans.optim._base import (EmptyState, GradientTransformation, cast_tree, canonical_dtype, global_norm,
                                identity, init_empty_state, map_trees, safe_increment, square)
from ftrans.tree_util import tree_flatten, tree_unflatten
from ir.errors import at_user_line

__all__ = ["AddDecayedWeightsState", "MaskedNode", "MaskedState", "ScaleByAdamState", "ScaleByRStdDevState",
           "ScaleByRStdDevWithCountState", "ScaleByRmsState", "ScaleByRmsWithCountState", "ScaleByRssState",
           "ScaleByScheduleState", "TraceState", "WeightDecaySchedule",
           "add_decayed_weights", "clip", "clip_by_global_norm", "masked", "scale", "scale_by_adam",
           "scale_by_learning_rate", "scale_by_rms", "scale_by_rss", "scale_by_schedule", "scale_by_stddev", "trace"]


def _zero_count():
    return np.zeros((), np.int32)


def _zeros_like(params, dtype=None):
    return map_trees(lambda p: fnp.zeros_like(p, dtype=dtype), params, what="init", names=("params",))


def _full_like(params, value):
    return map_trees(lambda p: fnp.full_like(p, value), params, what="init", names=("params",))


def _update_moment(updates, moments, decay, what):
    """The exponential moving average of the updates: (1 - decay) * g + decay * m."""
    return map_trees(lambda g, m: (1 - decay) * g + decay * m, updates, moments, what=what,
                     names=("updates", "first moments in the state"))


def _update_moment_of_squares(updates, moments, decay, what):
    """The exponential moving average of the squared updates: (1 - decay) * g**2 + decay * v."""
    return map_trees(lambda g, v: (1 - decay) * square(g) + decay * v, updates, moments, what=what,
                     names=("updates", "second moments in the state"))


def _bias_correction(moment, decay, count):
    """moment / (1 - decay**count): 1 - decay**count in float64 (decay a Python
    float, count int32, as JAX with x64 promotes them), then cast to each leaf's
    dtype before dividing, as optax does."""
    correction = 1 - decay ** count
    leaves, treedef = tree_flatten(moment)
    return tree_unflatten(treedef, [t / fnp.asarray(correction).astype(t.dtype) for t in leaves])


def _check_state(state, expected, what):
    if not isinstance(state, expected):
        names = " or ".join(e.__name__ for e in (expected if isinstance(expected, tuple) else (expected,)))
        raise TypeError(at_user_line(f"{what}: the state is {type(state).__name__}, expected {names} (pass the state "
                                     "that this transformation's init, or its last update, returned)"))


def _check_scalar(value, name, what):
    """A TypeError unless `value` is a number: a Python or NumPy scalar, or a
    0-d array (traced, too: a hyperparameter may be an argument of a jitted step)."""
    shape = getattr(value, "shape", None)
    is_number = isinstance(value, numbers.Number) if shape is None else len(shape) == 0
    if not is_number or isinstance(value, bool):
        raise TypeError(at_user_line(f"{what}: {name} must be a number, got {value!r}"))


def _check_learning_rate(value, what):
    if not callable(value):
        try:
            _check_scalar(value, "learning_rate", what)
        except TypeError:
            raise TypeError(at_user_line(f"{what}: learning_rate must be a number or a schedule (a function of "
                                         f"the step count), got {value!r}")) from None


# -------------------- scaling by a number or a schedule --------------------

class ScaleByScheduleState(NamedTuple):
    count: Any  # i32[]: the number of updates so far


def scale(step_size) -> GradientTransformation:
    """Multiplies the updates by the number `step_size`."""
    _check_scalar(step_size, "step_size", "scale")

    def update(updates, state, params=None):
        leaves, treedef = tree_flatten(updates)
        return tree_unflatten(treedef, [step_size * g for g in leaves]), state
    return GradientTransformation(init_empty_state, update)


def scale_by_schedule(step_size_fn) -> GradientTransformation:
    """Multiplies the updates by `step_size_fn(count)`, cast to each update's
    dtype; count starts at 0 and goes up by one per update."""
    if not callable(step_size_fn):
        raise TypeError(at_user_line(f"scale_by_schedule: step_size_fn must be a function of the step count, "
                                     f"got {step_size_fn!r}"))

    def init(params):
        return ScaleByScheduleState(count=_zero_count())

    def update(updates, state, params=None):
        _check_state(state, ScaleByScheduleState, "scale_by_schedule")
        step_size = step_size_fn(state.count)
        leaves, treedef = tree_flatten(updates)
        scaled = [fnp.asarray(step_size, dtype=g.dtype) * g for g in leaves]
        return tree_unflatten(treedef, scaled), ScaleByScheduleState(count=safe_increment(state.count))
    return GradientTransformation(init, update)


def scale_by_learning_rate(learning_rate, *, flip_sign=True) -> GradientTransformation:
    """Multiplies the updates by -learning_rate (by +learning_rate with
    flip_sign=False); a learning rate is a number or a schedule; None is identity."""
    if learning_rate is None:
        return identity()
    _check_learning_rate(learning_rate, "scale_by_learning_rate")
    sign = -1 if flip_sign else 1
    if callable(learning_rate):
        return scale_by_schedule(lambda count: sign * learning_rate(count))
    return scale(sign * learning_rate)


# -------------------- momentum --------------------

class TraceState(NamedTuple):
    trace: Any


def trace(decay, nesterov=False, accumulator_dtype=None) -> GradientTransformation:
    """Momentum: trace = g + decay * trace, and the update is the new trace
    (g + decay * new trace with nesterov=True)."""
    _check_scalar(decay, "decay", "trace")
    accumulator_dtype = canonical_dtype(accumulator_dtype, "trace")

    def init(params):
        return TraceState(trace=_zeros_like(params, accumulator_dtype))

    def update(updates, state, params=None):
        _check_state(state, TraceState, "trace")
        step = lambda g, t: g + decay * t  # noqa: E731
        new_trace = map_trees(step, updates, state.trace, what="trace", names=("updates", "trace in the state"))
        if nesterov:
            updates = map_trees(step, updates, new_trace, what="trace", names=("updates", "trace"))
        else:
            updates = new_trace
        return updates, TraceState(trace=cast_tree(new_trace, accumulator_dtype))
    return GradientTransformation(init, update)


# -------------------- adaptive scalings --------------------

class ScaleByAdamState(NamedTuple):
    count: Any  # i32[]
    mu: Any
    nu: Any


def scale_by_adam(b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0, mu_dtype=None, *, nesterov=False) -> GradientTransformation:
    """Adam's rescaling: mu_hat / (sqrt(nu_hat + eps_root) + eps), the moments
    bias-corrected by 1 - b**count; with nesterov=True, Nadam's (Dozat 2016)
    mu_hat = b1 * mu / (1 - b1**(count+1)) + (1 - b1) * g / (1 - b1**count)."""
    for name, value in (("b1", b1), ("b2", b2), ("eps", eps), ("eps_root", eps_root)):
        _check_scalar(value, name, "scale_by_adam")
    mu_dtype = canonical_dtype(mu_dtype, "scale_by_adam")

    def init(params):
        return ScaleByAdamState(count=_zero_count(), mu=_zeros_like(params, mu_dtype), nu=_zeros_like(params))

    def update(updates, state, params=None):
        _check_state(state, ScaleByAdamState, "scale_by_adam")
        mu = _update_moment(updates, state.mu, b1, "scale_by_adam")
        nu = _update_moment_of_squares(updates, state.nu, b2, "scale_by_adam")
        count = safe_increment(state.count)
        if nesterov:
            mu_hat = map_trees(lambda m, g: b1 * m + (1 - b1) * g,
                               _bias_correction(mu, b1, safe_increment(count)),
                               _bias_correction(updates, b1, count), what="scale_by_adam", names=("mu", "updates"))
        else:
            mu_hat = _bias_correction(mu, b1, count)
        nu_hat = _bias_correction(nu, b2, count)
        updates = map_trees(lambda m, v: m / (fnp.sqrt(v + eps_root) + eps), mu_hat, nu_hat,
                            what="scale_by_adam", names=("mu", "nu"))
        nu = map_trees(lambda v, old: fnp.asarray(v).astype(old.dtype), nu, state.nu,
                       what="scale_by_adam", names=("nu", "nu in the state"))
        return updates, ScaleByAdamState(count=count, mu=cast_tree(mu, mu_dtype), nu=nu)
    return GradientTransformation(init, update)


class ScaleByRmsState(NamedTuple):
    nu: Any


class ScaleByRmsWithCountState(NamedTuple):
    count: Any  # i32[]
    nu: Any


def _inverse_root(eps, eps_in_sqrt):
    if eps_in_sqrt:
        return lambda n: 1 / fnp.sqrt(n + eps)
    return lambda n: 1 / (fnp.sqrt(n) + eps)


def scale_by_rms(decay=0.9, eps=1e-8, initial_scale=0.0, eps_in_sqrt=True,
                 bias_correction=False) -> GradientTransformation:
    """RMSProp's rescaling: g / sqrt(nu + eps) (g / (sqrt(nu) + eps) with
    eps_in_sqrt=False), nu the moving average of g**2 from `initial_scale`;
    with bias_correction=True nu is divided by 1 - decay**count first."""
    for name, value in (("decay", decay), ("eps", eps), ("initial_scale", initial_scale)):
        _check_scalar(value, name, "scale_by_rms")
    inverse_root = _inverse_root(eps, eps_in_sqrt)
    state_type = ScaleByRmsWithCountState if bias_correction else ScaleByRmsState

    def init(params):
        nu = _full_like(params, initial_scale)
        return ScaleByRmsWithCountState(count=_zero_count(), nu=nu) if bias_correction else ScaleByRmsState(nu=nu)

    def update(updates, state, params=None):
        _check_state(state, state_type, "scale_by_rms")
        nu = _update_moment_of_squares(updates, state.nu, decay, "scale_by_rms")
        if bias_correction:
            count = safe_increment(state.count)
            nu_hat = _bias_correction(nu, decay, count)
        else:
            nu_hat = nu
        updates = map_trees(lambda n, g: inverse_root(n) * g, nu_hat, updates, what="scale_by_rms",
                            names=("nu", "updates"))
        return updates, (ScaleByRmsWithCountState(count=count, nu=nu) if bias_correction else ScaleByRmsState(nu=nu))
    return GradientTransformation(init, update)


class ScaleByRStdDevState(NamedTuple):
    mu: Any
    nu: Any


class ScaleByRStdDevWithCountState(NamedTuple):
    count: Any  # i32[]
    mu: Any
    nu: Any


def scale_by_stddev(decay=0.9, eps=1e-8, initial_scale=0.0, eps_in_sqrt=True,
                    bias_correction=False) -> GradientTransformation:
    """Centered RMSProp's rescaling: g / sqrt(nu - mu**2 + eps), mu and nu the
    moving averages of g and g**2 (nu from `initial_scale`)."""
    for name, value in (("decay", decay), ("eps", eps), ("initial_scale", initial_scale)):
        _check_scalar(value, name, "scale_by_stddev")
    inverse_root = _inverse_root(eps, eps_in_sqrt)
    state_type = ScaleByRStdDevWithCountState if bias_correction else ScaleByRStdDevState

    def init(params):
        mu, nu = _zeros_like(params), _full_like(params, initial_scale)
        if bias_correction:
            return ScaleByRStdDevWithCountState(count=_zero_count(), mu=mu, nu=nu)
        return ScaleByRStdDevState(mu=mu, nu=nu)

    def update(updates, state, params=None):
        _check_state(state, state_type, "scale_by_stddev")
        mu = _update_moment(updates, state.mu, decay, "scale_by_stddev")
        nu = _update_moment_of_squares(updates, state.nu, decay, "scale_by_stddev")
        if bias_correction:
            count = safe_increment(state.count)
            mu_hat, nu_hat = _bias_correction(mu, decay, count), _bias_correction(nu, decay, count)
        else:
            mu_hat, nu_hat = mu, nu
        scaling = map_trees(lambda m, n: inverse_root(n - square(m)), mu_hat, nu_hat, what="scale_by_stddev",
                            names=("mu", "nu"))
        updates = map_trees(lambda s, g: s * g, scaling, updates, what="scale_by_stddev", names=("state", "updates"))
        if bias_correction:
            return updates, ScaleByRStdDevWithCountState(count=count, mu=mu, nu=nu)
        return updates, ScaleByRStdDevState(mu=mu, nu=nu)
    return GradientTransformation(init, update)


class ScaleByRssState(NamedTuple):
    sum_of_squares: Any


def scale_by_rss(initial_accumulator_value=0.1, eps=1e-7) -> GradientTransformation:
    """Adagrad's rescaling: g / sqrt(s + eps), s the sum of all g**2 so far
    (from `initial_accumulator_value`), and 0 where s is 0."""
    for name, value in (("initial_accumulator_value", initial_accumulator_value), ("eps", eps)):
        _check_scalar(value, name, "scale_by_rss")

    def init(params):
        return ScaleByRssState(sum_of_squares=_full_like(params, initial_accumulator_value))

    def update(updates, state, params=None):
        _check_state(state, ScaleByRssState, "scale_by_rss")
        sums = map_trees(lambda g, t: square(g) + t, updates, state.sum_of_squares, what="scale_by_rss",
                         names=("updates", "sum_of_squares in the state"))
        inverse = map_trees(lambda t: fnp.where(t > 0, 1 / fnp.sqrt(t + eps), 0.0), sums, what="scale_by_rss",
                            names=("sums",))
        updates = map_trees(lambda s, g: s * g, inverse, updates, what="scale_by_rss", names=("sums", "updates"))
        return updates, ScaleByRssState(sum_of_squares=sums)
    return GradientTransformation(init, update)


# -------------------- weight decay, clipping, masks --------------------

AddDecayedWeightsState = EmptyState


class WeightDecaySchedule(NamedTuple):
    count: Any  # i32[]


def _require_params(params, what):
    if params is None:
        raise ValueError(at_user_line(f"{what} needs the parameters: call update(updates, state, params)"))


def add_decayed_weights(weight_decay=0.0, mask=None) -> GradientTransformation:
    """updates + weight_decay * params (decoupled weight decay, as in AdamW);
    `weight_decay` may be a schedule; `mask` (a pytree of bools like the params,
    or a function of the params returning one) limits it to some leaves."""
    if not callable(weight_decay):
        _check_scalar(weight_decay, "weight_decay", "add_decayed_weights")

    def init(params):
        return WeightDecaySchedule(count=_zero_count()) if callable(weight_decay) else EmptyState()

    def update(updates, state, params=None):
        _require_params(params, "add_decayed_weights")
        if callable(weight_decay):
            _check_state(state, WeightDecaySchedule, "add_decayed_weights")
            rate, state = weight_decay(state.count), WeightDecaySchedule(count=safe_increment(state.count))
        else:
            rate = weight_decay
        updates = map_trees(lambda g, p: g + rate * p, updates, params, what="add_decayed_weights",
                            names=("updates", "params"))
        return updates, state
    transform = GradientTransformation(init, update)
    return transform if mask is None else masked(transform, mask)


def clip(max_delta) -> GradientTransformation:
    """Each update clipped elementwise to [-max_delta, max_delta]."""
    _check_scalar(max_delta, "max_delta", "clip")

    def update(updates, state, params=None):
        leaves, treedef = tree_flatten(updates)
        return tree_unflatten(treedef, [fnp.clip(g, -max_delta, max_delta) for g in leaves]), state
    return GradientTransformation(init_empty_state, update)


def clip_by_global_norm(max_norm) -> GradientTransformation:
    """The updates scaled by max_norm / their global norm when that norm is
    max_norm or more: (g / norm) * max_norm, computed in that order (as optax)."""
    _check_scalar(max_norm, "max_norm", "clip_by_global_norm")

    def update(updates, state, params=None):
        norm = global_norm(updates)
        keep = norm < max_norm
        leaves, treedef = tree_flatten(updates)
        clipped = [fnp.where(keep, g, (g / fnp.asarray(norm).astype(g.dtype)) * max_norm) for g in leaves]
        return tree_unflatten(treedef, clipped), state
    return GradientTransformation(init_empty_state, update)


class MaskedNode(NamedTuple):
    """Stands where a masked-out leaf was: a pytree node with no leaves."""


class MaskedState(NamedTuple):
    inner_state: Any


def masked(inner: GradientTransformation, mask) -> GradientTransformation:
    """`inner` applied to the leaves where `mask` is True; the other updates pass
    through unchanged. `mask` is a pytree of Python bools with the structure of
    the params (or a prefix of it: a bool for a whole subtree), or a function
    of the params that returns one."""

    def mask_leaves(tree):
        mask_tree = mask(tree) if callable(mask) else mask
        leaves, treedef = tree_flatten(tree)
        flags = _broadcast_mask(mask_tree, tree)
        if len(flags) != len(leaves):
            raise ValueError(at_user_line(f"masked: the mask covers {len(flags)} leaves, the tree has {len(leaves)}"))
        return leaves, treedef, flags

    def keep_masked(tree):
        leaves, treedef, flags = mask_leaves(tree)
        return tree_unflatten(treedef, [x if f else MaskedNode() for x, f in zip(leaves, flags, strict=True)])

    def init(params):
        return MaskedState(inner_state=inner.init(keep_masked(params)))

    def update(updates, state, params=None):
        _check_state(state, MaskedState, "masked")
        leaves, treedef, flags = mask_leaves(updates)
        inner_updates = tree_unflatten(treedef, [x if f else MaskedNode() for x, f in zip(leaves, flags, strict=True)])
        new_inner, inner_state = inner.update(inner_updates, state.inner_state,
                                              None if params is None else keep_masked(params))
        new_leaves = iter(tree_flatten(new_inner)[0])
        merged = [next(new_leaves) if f else x for x, f in zip(leaves, flags, strict=True)]
        return tree_unflatten(treedef, merged), MaskedState(inner_state=inner_state)
    return GradientTransformation(init, update)


def _broadcast_mask(mask_tree, tree):
    """The mask's flag for each leaf of `tree`, in flattening order: a bool in
    the mask covers the whole subtree at its place."""
    flags, stack = [], [(mask_tree, tree)]
    while stack:
        m, t = stack.pop()
        if isinstance(m, (bool, np.bool_)):
            flags.extend([bool(m)] * len(tree_flatten(t)[0]))
            continue
        if isinstance(m, dict) and isinstance(t, dict) and set(m) == set(t):
            keys = sorted(t)
            stack.extend(reversed([(m[k], t[k]) for k in keys]))
        elif isinstance(m, (list, tuple)) and isinstance(t, (list, tuple)) and len(m) == len(t):
            stack.extend(reversed(list(zip(m, t))))
        elif m is None and t is None:
            continue
        else:
            raise ValueError(at_user_line(f"masked: the mask must have the structure of the params (or a prefix of "
                                          f"it) with Python bools for leaves; got {type(m).__name__} where the params "
                                          f"have {type(t).__name__}"))
    return flags
