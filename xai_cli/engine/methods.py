"""The explanation methods: LRP and the gradient baselines, all on one engine.

A method says which rule every op gets (LRP from the composite; the gradient family
follow the gradient, with guided backprop and deconvnet changing only the ReLUs) and
how the backward passes are combined into a relevance map. A method's parameters (IG's
steps, smoothgrad's samples and noise) are typed by :class:`Parameter`, the one path the
command line (``--param``), the rule config (``methods:``) and the API take.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from numbers import Integral, Real

from keras import ops

from ..catalogue import (
    IG_STEPS,
    LIME_SAMPLES,
    LIME_WIDTH,
    METHOD_NAMES,
    OCCLUSION_SHARE,
    RISE_CELLS,
    RISE_MASKS,
    SEGMENTS,
    SHAP_SAMPLES,
    SMOOTHGRAD_NOISE,
    SMOOTHGRAD_SAMPLES,
)
from ..errors import XaiError
from . import attention, backends, cam, perturbing, surrogates
from .baselines import BASELINES, baseline
from .layers import ACTIVATION, ATTENTION, CONSTANT, LINEAR, STRUCTURAL
from .propagation import Propagator, output_relevance
from .rules import DECONVNET, GRADIENT, GUIDED, NONE, PASS, RESCALE, flat


@dataclass(frozen=True)
class Parameter:
    """A method's parameter: its type (``int``, ``float`` or ``str``), default, lowest value
    and, for a text, the values it may take (any where ``choices`` is empty).

    :meth:`parse` takes a value of the type, or the text the command line gives.
    """

    name: str
    type: type
    default: object
    help: str
    minimum: float | None = None
    choices: tuple[str, ...] = ()

    def parse(self, value, where: str):
        """``value`` as ``type``; ``where`` starts the message of an error (the method and
        parameter, and the config line where there is one)."""
        if self.type is str:
            if not isinstance(value, str) or (self.choices and value not in self.choices):
                expected = f"one of {', '.join(self.choices)}" if self.choices else "a name"
                raise XaiError(f"{where}: expected {expected}, got {value!r}")
            return value
        words, kind = {int: ("an integer", Integral), float: ("a number", Real)}[self.type]
        try:
            if isinstance(value, str):
                value = self.type(value)
            elif isinstance(value, bool) or not isinstance(value, kind):
                raise ValueError
        except ValueError:
            raise XaiError(f"{where}: expected {words}, got {value!r}") from None
        if self.minimum is not None and not value >= self.minimum:
            raise XaiError(f"{where}: must be at least {self.minimum:g}, got {value!r}")
        return self.type(value)


@dataclass(frozen=True)
class Method:
    """``compute(explainer, x, values, targets, index)`` -> relevance, shaped like ``x``,
    inside the compiled function; or, for a method that fits a model to many scores,
    ``host(explainer, x, logits, targets, index, named, baseline)`` in NumPy around the
    compiled model (``compute`` None).

    ``signed`` says whether the map has a meaningful sign (diverging colormap) or is a
    magnitude (sequential colormap); ``activation_rule`` is the rule ReLUs get in the
    gradient family (``None`` for LRP, whose rules come from the composite). ``random``
    methods draw noise, which XLA draws differently from TensorFlow's kernels: they are
    never XLA-compiled on TensorFlow, so that their maps do not depend on the setting.
    ``silent`` says what a map of zeros means; ``facts``, where set, what the record says
    of the maps beyond them (Grad-CAM's layer).
    """

    name: str
    compute: Callable | None
    signed: bool = True
    activation_rule: object = GRADIENT
    random: bool = False
    parameters: tuple[Parameter, ...] = ()
    silent: str = "the gradient is zero everywhere (saturated or dead units)"
    facts: Callable | None = None   # facts(explainer) -> what the record says of the map
    host: Callable | None = None

    @property
    def uses_composite(self) -> bool:
        return self.activation_rule is None

    def rules(self, graph) -> list:
        """Rules of the gradient family (LRP's come from a composite)."""
        return [self.activation_rule if op.kind == ACTIVATION else NONE if op.kind == CONSTANT
                else GRADIENT for op in graph.ops]

    def parameter(self, name: str) -> Parameter:
        for p in self.parameters:
            if p.name == name:
                return p
        takes = f"it takes {', '.join(p.name for p in self.parameters)}" if self.parameters \
            else "it takes none"
        raise XaiError(f"method {self.name} has no parameter '{name}' ({takes})")

    def bind(self, given: Mapping[str, object]) -> dict:
        """Every parameter's value: those ``given``, checked, and the others' defaults."""
        for name in given:
            self.parameter(name)
        return {p.name: p.parse(given[p.name], f"{self.name}.{p.name}") if p.name in given
                else p.default for p in self.parameters}


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
    steps = e.params["steps"]

    def step(i, total):
        alpha = (ops.cast(i, x.dtype) + 0.5) / steps
        return total + e.gradient_at(alpha * x, targets, values)

    return x * ops.fori_loop(0, steps, step, ops.zeros_like(x)) / steps


def _smoothgrad(e, x, values, targets, index):
    """Mean gradient over noisy copies; the noise of input ``i`` depends only on (seed, i)."""
    axes = tuple(range(1, len(x.shape)))
    spread = ops.max(x, axes, keepdims=True) - ops.min(x, axes, keepdims=True)
    sigma = e.params["noise"] * spread
    normal = backends.current().normal

    def sample(i, total):
        noise = normal(tuple(ops.shape(x)[1:]), index, e.seed, i)
        return total + e.gradient_at(x + sigma * noise, targets, values)

    samples = e.params["samples"]
    return ops.fori_loop(0, samples, sample, ops.zeros_like(x)) / samples


def _rollout(e, x, values, targets, index):
    """Attention rollout over the tokens, spread over the inputs that make each token (a
    patch's pixels, a word's embedding) uniformly (:func:`receptive_field_rules`)."""
    graph = e.graph
    layers = [op for op in graph.ops if op.kind == ATTENTION]
    if not layers:
        raise XaiError(f"method rollout explains attention models; model '{graph.model.name}' "
                       "has no MultiHeadAttention")
    for op in layers:
        q, k = (values[t] for t in op.inputs[:2])
        if len(q.shape) != 4 or q.shape[1] != k.shape[1]:
            raise XaiError(f"method rollout needs self-attention over one axis; '{op.layer}' "
                           f"attends from {q.shape[1]} to {k.shape[1]} positions")
    last = e.propagate(values, targets, scale_by_logit=False, until=layers[-1].output)
    read = ops.cast(ops.sum(ops.abs(last), axis=(2, 3)) > 0, last.dtype)
    tokens = attention.rollout(layers, values, read)
    source = graph.producer(layers[0].inputs[2]).inputs[0]   # the first value projection's input
    seed = ops.expand_dims(tokens, -1) * ops.ones_like(values[source]) / values[source].shape[-1]
    mapping = Propagator(graph, receptive_field_rules(graph))
    return mapping.backward(values, seed, start=source)


def _deeplift(e, x, values, targets, index):
    """DeepLIFT (Rescale rule): ``(x - x0)`` times the multipliers from the target score
    down, each activation's the secant between its values for ``x`` and for the
    baseline ``x0``; the map sums to ``f(x) - f(x0)`` on networks of ReLUs and linear layers."""
    x0 = ops.zeros_like(x) + baseline(e.params["baseline"], x, e.valid_range, e.params["sigma"])
    named = {name: values[spec.tensor] for name, spec in e.graph.named.items()}
    seed = output_relevance(values[e.graph.output], targets, scale_by_logit=False)
    reference = e.propagator.forward(x0, named)
    return (x - x0) * e.propagator.backward(values, seed, reference=reference)


def receptive_field_rules(graph) -> list:
    """Rules that spread a relevance over what each value is made of, whatever its weights:
    flat on linear layers, routing on structural ops, element-wise ops passing it on, none
    to constants (position embeddings)."""
    by_kind = {LINEAR: flat(), STRUCTURAL: GRADIENT, CONSTANT: NONE}
    return [by_kind.get(op.kind, PASS) for op in graph.ops]


METHODS = {m.name: m for m in (
    Method("lrp", _lrp, activation_rule=None),
    Method("sa", _sensitivity, signed=False),
    Method("gradient", _gradient),
    Method("gradxinput", _gradxinput),
    Method("integrated-gradients", _integrated_gradients, parameters=(
        Parameter("steps", int, IG_STEPS, "Riemann steps on the path from 0 to the input", 1),)),
    Method("smoothgrad", _smoothgrad, random=True, parameters=(
        Parameter("samples", int, SMOOTHGRAD_SAMPLES, "noisy copies averaged", 1),
        Parameter("noise", float, SMOOTHGRAD_NOISE,
                  "noise standard deviation, as a share of each input's value range", 0))),
    Method("guided-backprop", _gradient, activation_rule=GUIDED),
    Method("deconvnet", _gradient, activation_rule=DECONVNET),
    Method("rollout", _rollout, signed=False),
    Method("deeplift", _deeplift, activation_rule=RESCALE, parameters=(
        Parameter("baseline", str, "zero", "the reference input", choices=BASELINES),
        Parameter("sigma", float, 0.0, "the blur baseline's sigma in pixels (0: a 22nd of the "
                                        "longest side)", 0))),
    *(Method(name, compute, signed=False, parameters=(
        Parameter("layer", str, "", "the layer whose maps are weighted (default: the last with "
                                    "the input's rank and more than one position)"),),
             silent="no position of the layer's weighted maps speaks for the class",
             facts=cam.facts)
      for name, compute in (("gradcam", cam.gradcam), ("gradcam++", cam.gradcampp))),
    Method("occlusion", perturbing.occlusion, parameters=(
        Parameter("patch", int, 0, f"the patch's side (0: a {OCCLUSION_SHARE}th of the longest "
                                   "side)", 0),
        Parameter("stride", int, 0, "the step between patches (0: half the patch's side)", 0),
        Parameter("baseline", str, "grey", "what a patch turns into", choices=BASELINES)),
        silent="no patch changes the score"),
    Method("rise", perturbing.rise, parameters=(
        Parameter("masks", int, RISE_MASKS, "random masks", 1),
        Parameter("cells", int, RISE_CELLS, "cells a side of each mask's grid", 1),
        Parameter("keep", float, 0.5, "the share of cells a mask keeps", 0.01),
        Parameter("baseline", str, "zero", "what a masked position turns into",
                  choices=BASELINES))),
    *(Method(name, None, host=host, parameters=(
        Parameter("samples", int, samples, "hidden copies scored", 1),
        Parameter("segments", int, SEGMENTS, "superpixels (SLIC) an image is cut into; windows "
                                             "of a signal", 1),
        *extra,
        Parameter("baseline", str, "grey", "what a hidden segment turns into", choices=BASELINES)))
      for name, host, samples, extra in (
          ("lime", surrogates.lime, LIME_SAMPLES, (
              Parameter("width", float, LIME_WIDTH, "the kernel's width on the cosine distance to "
                                                    "the whole input", 0.001),)),
          ("kernelshap", surrogates.kernelshap, SHAP_SAMPLES, ()))),
)}
assert tuple(METHODS) == METHOD_NAMES   # the catalogue lists them for the command line


def method_params(specs: Iterable[str]) -> dict[str, dict[str, object]]:
    """``METHOD.NAME=VALUE`` texts (``--param``) as ``{method: {name: value}}``, typed."""
    out: dict[str, dict[str, object]] = {}
    for spec in specs:
        key, equals, value = spec.partition("=")
        method, dot, name = key.partition(".")
        if not (equals and dot and method and name):
            raise XaiError(f"--param '{spec}': expected METHOD.NAME=VALUE, e.g. "
                           "integrated-gradients.steps=64")
        if method not in METHODS:
            raise XaiError(f"--param '{spec}': unknown method '{method}'; expected one of "
                           f"{', '.join(METHODS)}")
        out.setdefault(method, {})[name] = METHODS[method].parameter(name).parse(value, f"--param {key}")
    return out
