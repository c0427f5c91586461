"""The usual optimizers, each a chain of building blocks exactly as optax
composes it (same names, keyword arguments and defaults)."""
from __future__ import annotations

from ftrans.optim._base import GradientTransformation, chain, identity
from ftrans.optim._transforms import (add_decayed_weights, scale_by_adam, scale_by_learning_rate, scale_by_rms,
                                      scale_by_rss, scale_by_stddev, trace)

__all__ = ["adagrad", "adam", "adamw", "rmsprop", "sgd"]


def sgd(learning_rate, momentum=None, nesterov=False, accumulator_dtype=None) -> GradientTransformation:
    """Stochastic gradient descent: chain(trace(momentum, nesterov) if momentum
    is not None, scale_by_learning_rate(learning_rate))."""
    return chain(trace(decay=momentum, nesterov=nesterov, accumulator_dtype=accumulator_dtype)
                 if momentum is not None else identity(),
                 scale_by_learning_rate(learning_rate))


def adam(learning_rate, b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0, mu_dtype=None, *,
         nesterov=False) -> GradientTransformation:
    """Adam (Kingma & Ba 2014): chain(scale_by_adam(...), scale_by_learning_rate(learning_rate))."""
    return chain(scale_by_adam(b1=b1, b2=b2, eps=eps, eps_root=eps_root, mu_dtype=mu_dtype, nesterov=nesterov),
                 scale_by_learning_rate(learning_rate))


def adamw(learning_rate, b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0, mu_dtype=None, weight_decay=1e-4, mask=None, *,
          nesterov=False) -> GradientTransformation:
    """AdamW (Loshchilov & Hutter 2019): Adam's step plus weight_decay * params,
    both scaled by the learning rate: chain(scale_by_adam(...),
    add_decayed_weights(weight_decay, mask), scale_by_learning_rate(learning_rate))."""
    return chain(scale_by_adam(b1=b1, b2=b2, eps=eps, eps_root=eps_root, mu_dtype=mu_dtype, nesterov=nesterov),
                 add_decayed_weights(weight_decay, mask),
                 scale_by_learning_rate(learning_rate))


def rmsprop(learning_rate, decay=0.9, eps=1e-8, initial_scale=0.0, eps_in_sqrt=True, centered=False, momentum=None,
            nesterov=False, bias_correction=False) -> GradientTransformation:
    """RMSProp (Tieleman & Hinton 2012; centered: Graves 2013):
    chain(scale_by_rms or, centered, scale_by_stddev, scale_by_learning_rate,
    trace(momentum, nesterov) if momentum is not None) -- the momentum acts
    after the learning rate, as in optax."""
    rescale = scale_by_stddev if centered else scale_by_rms
    return chain(rescale(decay=decay, eps=eps, initial_scale=initial_scale, eps_in_sqrt=eps_in_sqrt,
                         bias_correction=bias_correction),
                 scale_by_learning_rate(learning_rate),
                 trace(decay=momentum, nesterov=nesterov) if momentum is not None else identity())


def adagrad(learning_rate, initial_accumulator_value=0.1, eps=1e-7) -> GradientTransformation:
    """Adagrad (Duchi et al. 2011): chain(scale_by_rss(initial_accumulator_value,
    eps), scale_by_learning_rate(learning_rate))."""
    return chain(scale_by_rss(initial_accumulator_value=initial_accumulator_value, eps=eps),
                 scale_by_learning_rate(learning_rate))
