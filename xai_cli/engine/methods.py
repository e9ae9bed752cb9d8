"""The explanation methods: LRP and the gradient baselines, all on one engine.

A method says which rule every op gets (LRP from the composite; the gradient family
follow the gradient, with guided backprop and deconvnet changing only the ReLUs) and
how the backward passes are combined into a relevance map.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from keras import ops

from ..catalogue import IG_STEPS, METHOD_NAMES, SMOOTHGRAD_SAMPLES
from . import backends
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
    never XLA-compiled on TensorFlow, so that their maps do not depend on the setting.
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
    return ops.square(_gradient(e, x, values, targets, index))


def _integrated_gradients(e, x, values, targets, index):
    """Riemann sum (midpoints) of the gradient on the straight path from 0 to ``x``
    (a loop in the compiled function, not one copy of the model per step)."""
    def step(i, total):
        alpha = (ops.cast(i, x.dtype) + 0.5) / IG_STEPS
        return total + e.gradient_at(alpha * x, targets, values)

    return x * ops.fori_loop(0, IG_STEPS, step, ops.zeros_like(x)) / IG_STEPS


def _smoothgrad(e, x, values, targets, index):
    """Mean gradient over noisy copies; the noise of input ``i`` depends only on (seed, i)."""
    axes = tuple(range(1, len(x.shape)))
    spread = ops.max(x, axes, keepdims=True) - ops.min(x, axes, keepdims=True)
    sigma = SMOOTHGRAD_NOISE * spread
    normal = backends.current().normal

    def sample(i, total):
        noise = normal(tuple(x.shape[1:]), index, e.seed, i)
        return total + e.gradient_at(x + sigma * noise, targets, values)

    return ops.fori_loop(0, SMOOTHGRAD_SAMPLES, sample, ops.zeros_like(x)) / SMOOTHGRAD_SAMPLES


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
