"""Learning-rate schedules under optax's names: each a function of the step
count (a Python int, or the int32 count an optimizer keeps, traced under jit)
to a value, computed with optax's formulas."""
from __future__ import annotations

import math

import ftrans.numpy as fnp
from ir.errors import at_user_line

__all__ = ["constant_schedule", "cosine_decay_schedule", "exponential_decay", "join_schedules", "linear_schedule",
           "piecewise_constant_schedule", "polynomial_schedule", "warmup_constant_schedule",
           "warmup_cosine_decay_schedule", "warmup_exponential_decay_schedule"]


def constant_schedule(value):
    """`value` at every step."""
    return lambda count: value


def polynomial_schedule(init_value, end_value, power, transition_steps, transition_begin=0):
    """init_value for count < transition_begin, then
    (init - end) * (1 - (count - begin) / steps)**power + end, then end_value
    from begin + steps on. transition_steps <= 0 gives the constant init_value
    (a negative transition_begin counts as 0), as in optax."""
    if transition_steps <= 0:
        return constant_schedule(init_value)
    transition_begin = max(transition_begin, 0)

    def schedule(count):
        init, end = fnp.asarray(init_value), fnp.asarray(end_value)
        steps = fnp.clip(count - transition_begin, 0, transition_steps)
        fraction = 1 - steps / transition_steps
        return (init - end) * (fraction ** power) + end
    return schedule


def linear_schedule(init_value, end_value, transition_steps, transition_begin=0):
    """polynomial_schedule with power 1: a straight line from init_value to end_value."""
    return polynomial_schedule(init_value=init_value, end_value=end_value, power=1,
                               transition_steps=transition_steps, transition_begin=transition_begin)


def piecewise_constant_schedule(init_value, boundaries_and_scales=None):
    """init_value times every scale whose boundary step the count has reached."""
    if boundaries_and_scales is not None and not all(s >= 0.0 for s in boundaries_and_scales.values()):
        raise ValueError(at_user_line("piecewise_constant_schedule expects non-negative scale factors"))

    def schedule(count):
        value = init_value
        for threshold, factor in sorted((boundaries_and_scales or {}).items()):
            before = fnp.maximum(0.0, fnp.sign(threshold - count))  # 1 before the boundary, else 0
            value = value * before + (1 - before) * factor * value
        return value
    return schedule


def exponential_decay(init_value, transition_steps, decay_rate, transition_begin=0, staircase=False, end_value=None):
    """init_value * decay_rate**((count - begin) / transition_steps) once count >
    transition_begin (the exponent floored with staircase=True), held at
    end_value from there on if given (a lower bound when decay_rate < 1, else an
    upper one). transition_steps <= 0 or decay_rate == 0 give the constant
    init_value, as in optax."""
    if transition_steps <= 0 or decay_rate == 0:
        return constant_schedule(init_value)
    transition_begin = max(transition_begin, 0)
    bound = fnp.maximum if decay_rate < 1.0 else fnp.minimum

    def schedule(count):
        decreased = count - transition_begin
        exponent = decreased / transition_steps
        if staircase:
            exponent = fnp.floor(exponent)
        value = fnp.where(decreased <= 0, init_value, init_value * fnp.power(decay_rate, exponent))
        return value if end_value is None else bound(value, end_value)
    return schedule


def cosine_decay_schedule(init_value, decay_steps, alpha=0.0, exponent=1.0):
    """init_value * ((1 - alpha) * (0.5 * (1 + cos(pi * t / decay_steps)))**exponent + alpha),
    t = min(count, decay_steps) (Loshchilov & Hutter, SGDR)."""
    if not decay_steps > 0:
        raise ValueError(at_user_line(f"cosine_decay_schedule requires positive decay_steps, got {decay_steps!r}"))
    total = float(decay_steps) if isinstance(decay_steps, int) else decay_steps

    def schedule(count):
        count = float(count) if isinstance(count, int) else count
        t = fnp.minimum(count, total)
        decay = 0.5 * (1 + fnp.cos(math.pi * t / total))
        return init_value * ((1 - alpha) * decay ** exponent + alpha)
    return schedule


def join_schedules(schedules, boundaries):
    """schedules[0] before boundaries[0], then schedules[i + 1] counted from boundaries[i]."""
    schedules, boundaries = list(schedules), list(boundaries)
    if len(schedules) != len(boundaries) + 1:
        raise ValueError(at_user_line(f"join_schedules: {len(schedules)} schedules need {len(schedules) - 1} "
                                      f"boundaries, got {len(boundaries)}"))

    def schedule(step):
        output = schedules[0](step)
        for boundary, next_schedule in zip(boundaries, schedules[1:], strict=True):
            output = fnp.where(step < boundary, output, next_schedule(step - boundary))
        return output
    return schedule


def warmup_constant_schedule(init_value, peak_value, warmup_steps):
    """A linear warmup from init_value to peak_value, then peak_value."""
    return linear_schedule(init_value=init_value, end_value=peak_value, transition_steps=warmup_steps)


def warmup_cosine_decay_schedule(init_value, peak_value, warmup_steps, decay_steps, end_value=0.0, exponent=1.0):
    """A linear warmup from init_value to peak_value over warmup_steps, then a
    cosine decay to end_value; decay_steps counts the warmup too."""
    alpha = 0.0 if peak_value == 0.0 else end_value / peak_value
    return join_schedules([linear_schedule(init_value=init_value, end_value=peak_value, transition_steps=warmup_steps),
                           cosine_decay_schedule(init_value=peak_value, decay_steps=decay_steps - warmup_steps,
                                                 alpha=alpha, exponent=exponent)],
                          [warmup_steps])


def warmup_exponential_decay_schedule(init_value, peak_value, warmup_steps, transition_steps, decay_rate,
                                      transition_begin=0, staircase=False, end_value=None):
    """A linear warmup from init_value to peak_value, then exponential_decay from peak_value."""
    return join_schedules([linear_schedule(init_value=init_value, end_value=peak_value, transition_steps=warmup_steps),
                           exponential_decay(init_value=peak_value, transition_steps=transition_steps,
                                             decay_rate=decay_rate, transition_begin=transition_begin,
                                             staircase=staircase, end_value=end_value)],
                          [warmup_steps])
