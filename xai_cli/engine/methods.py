"""The explanation methods: LRP and the gradient baselines, all on one engine.

A method says which rule every op gets (LRP from the composite; the gradient family
follow the gradient, with guided backprop and deconvnet changing only the ReLUs) and
how the backward passes are combined into a relevance map.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import tensorflow as tf

from ..catalogue import IG_STEPS, METHOD_NAMES, SMOOTHGRAD_SAMPLES
from .layers import ACTIVATION
from .rules import DECONVNET, GRADIENT, GUIDED

SMOOTHGRAD_NOISE = 0.15  # noise standard deviation, as a fraction of each input's value range


@dataclass(frozen=True)
class Method:
    """``compute(explainer, x, values, targets, index)`` -> relevance, shaped like ``x``.

    ``signed`` says whether the map has a meaningful sign (diverging colormap) or is a
    magnitude (sequential colormap); ``activation_rule`` is the rule ReLUs get in the
    gradient family (``None`` for LRP, whose rules come from the composite). ``random``
    methods draw noise, which XLA draws differently from TensorFlow's kernels: they are
    never XLA-compiled, so that their maps do not depend on the setting.
    """

    name: str
    compute: Callable
    signed: bool = True
    activation_rule: object = GRADIENT
    random: bool = False

    @property
    def uses_composite(self) -> bool:
        return self.activation_rule is None

    def rules(self, graph) -> list:
        """Rules of the gradient family (LRP's come from a composite)."""
        return [self.activation_rule if op.kind == ACTIVATION else GRADIENT for op in graph.ops]


def _lrp(e, x, values, targets, index):
    return e.propagate(values, targets, scale_by_logit=True)


def _gradient(e, x, values, targets, index):
    return e.propagate(values, targets, scale_by_logit=False)


def _gradxinput(e, x, values, targets, index):
    return x * _gradient(e, x, values, targets, index)


def _sensitivity(e, x, values, targets, index):
    return tf.square(_gradient(e, x, values, targets, index))


def _integrated_gradients(e, x, values, targets, index):
    """Riemann sum (midpoints) of the gradient on the straight path from 0 to ``x``."""
    total = tf.zeros_like(x)
    for step in tf.range(IG_STEPS):
        alpha = (tf.cast(step, x.dtype) + 0.5) / IG_STEPS
        total += e.gradient_at(alpha * x, targets)
    return x * total / IG_STEPS


def _smoothgrad(e, x, values, targets, index):
    """Mean gradient over noisy copies; the noise of input ``i`` depends only on (seed, i)."""
    axes = list(range(1, len(x.shape)))
    spread = tf.reduce_max(x, axes, keepdims=True) - tf.reduce_min(x, axes, keepdims=True)
    sigma = SMOOTHGRAD_NOISE * spread
    total = tf.zeros_like(x)
    for sample in tf.range(SMOOTHGRAD_SAMPLES):
        seeds = tf.stack([index, tf.fill(tf.shape(index), tf.cast(e.seed, tf.int64) * 1_000_003
                                         + tf.cast(sample, tf.int64))], axis=1)
        noise = tf.map_fn(lambda s: tf.random.stateless_normal(tf.shape(x)[1:], s),
                          seeds, fn_output_signature=x.dtype)
        total += e.gradient_at(x + sigma * noise, targets)
    return total / SMOOTHGRAD_SAMPLES


METHODS = {m.name: m for m in (
    Method("lrp", _lrp, activation_rule=None),
    Method("sa", _sensitivity, signed=False),
    Method("gradient", _gradient),
    Method("gradxinput", _gradxinput),
    Method("integrated-gradients", _integrated_gradients),
    Method("smoothgrad", _smoothgrad, random=True),
    Method("guided-backprop", _gradient, activation_rule=GUIDED),
    Method("deconvnet", _gradient, activation_rule=DECONVNET),
)}
assert tuple(METHODS) == METHOD_NAMES   # the catalogue lists them for the command line
