"""ftrans.optim: optimizers with optax's protocol, names, defaults and update rules.

    import ftrans as ft, ftrans.optim as optim
    optimizer = optim.adam(1e-3)
    state = optimizer.init(params)

    @ft.jit
    def step(params, state, x, y):
        grads = ft.grad(loss)(params, x, y)
        updates, state = optimizer.update(grads, state, params)
        return optim.apply_updates(params, updates), state

A GradientTransformation is the pair `init(params) -> state`,
`update(updates, state, params=None) -> (updates, state)`; `chain` composes
them; states are NamedTuples of arrays, so a whole step jits. A learning rate
is a number or a schedule (a function of the int32 step count).
"""
from ftrans.optim._aliases import adagrad, adam, adamw, rmsprop, sgd
from ftrans.optim._base import (EmptyState, GradientTransformation, apply_updates, chain, global_norm, identity,
                                safe_increment)
from ftrans.optim._schedules import (constant_schedule, cosine_decay_schedule, exponential_decay, join_schedules,
                                     linear_schedule, piecewise_constant_schedule, polynomial_schedule,
                                     warmup_constant_schedule, warmup_cosine_decay_schedule,
                                     warmup_exponential_decay_schedule)
from ftrans.optim._transforms import (AddDecayedWeightsState, MaskedNode, MaskedState, ScaleByAdamState,
                                      ScaleByRmsState, ScaleByRmsWithCountState, ScaleByRssState,
                                      ScaleByRStdDevState, ScaleByRStdDevWithCountState, ScaleByScheduleState,
                                      TraceState, WeightDecaySchedule, add_decayed_weights, clip,
                                      clip_by_global_norm, masked, scale, scale_by_adam, scale_by_learning_rate,
                                      scale_by_rms, scale_by_rss, scale_by_schedule, scale_by_stddev, trace)

__all__ = ["AddDecayedWeightsState", "EmptyState", "GradientTransformation", "MaskedNode", "MaskedState",
           "ScaleByAdamState", "ScaleByRStdDevState", "ScaleByRStdDevWithCountState", "ScaleByRmsState",
           "ScaleByRmsWithCountState", "ScaleByRssState", "ScaleByScheduleState", "TraceState", "WeightDecaySchedule",
           "adagrad", "adam", "adamw", "add_decayed_weights", "apply_updates", "chain", "clip", "clip_by_global_norm",
           "constant_schedule", "cosine_decay_schedule", "exponential_decay", "global_norm", "identity",
           "join_schedules", "linear_schedule", "masked", "piecewise_constant_schedule", "polynomial_schedule",
           "rmsprop", "safe_increment", "scale", "scale_by_adam", "scale_by_learning_rate", "scale_by_rms",
           "scale_by_rss", "scale_by_schedule", "scale_by_stddev", "sgd", "trace", "warmup_constant_schedule",
           "warmup_cosine_decay_schedule", "warmup_exponential_decay_schedule"]
