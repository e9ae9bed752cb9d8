"""Putting a method, a rule config and the input preprocessing together into an Explainer."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
from keras import ops

from ..errors import XaiError
from .composites import Assignment, Composite
from .graph import Graph
from .layers import LINEAR
from .methods import Method
from .propagation import Explainer, Propagator


@dataclass
class AppliedComposite:
    """A rule config applied to a model: the canonized graph and each op's rule."""

    graph: Graph
    assignments: list[Assignment]
    warnings: list[str]

    @property
    def rules(self) -> list:
        return [a.rule for a in self.assignments]

    def propagator(self, preprocessing) -> Propagator:
        """The LRP propagator; zB bounds come from ``preprocessing`` unless the config sets them."""
        rules = self.rules
        return Propagator(self.graph, rules, zbox_bounds(self.graph, rules, preprocessing))


def apply_composite(graph: Graph, composite: Composite) -> AppliedComposite:
    graph = composite.canonize(graph)
    assignments, warnings = composite.resolve(graph)
    return AppliedComposite(graph, assignments, warnings)


def make_explainer(graph: Graph, method: Method, composite: Composite | None, preprocessing,
                   seed: int = 0, warn: Callable[[str], None] | None = None,
                   jit_compile: bool | None = None, params: Mapping | None = None) -> Explainer:
    """An Explainer for ``method``; LRP takes its rules and canonizers from ``composite``.

    ``warn`` receives the config's warnings (rules that apply to no layer);
    ``jit_compile`` is :class:`~xai_cli.engine.propagation.Explainer`'s; ``params`` (the
    method's parameters) win over those the config's ``methods:`` gives, one by one.
    """
    configured = composite.methods.get(method.name, {}) if composite is not None else {}
    params = {**configured, **(params or {})}
    valid = preprocessing.valid_range(graph.input_shape[-1]) if preprocessing else None
    if not method.uses_composite:
        return Explainer(graph, method, Propagator(graph, method.rules(graph)), seed, jit_compile,
                         params, valid)
    applied = apply_composite(graph, composite)
    for warning in applied.warnings if warn else ():
        warn(warning)
    return Explainer(applied.graph, method, applied.propagator(preprocessing), seed, jit_compile,
                     params, valid)


def zbox_bounds(graph: Graph, rules: list, preprocessing) -> dict:
    """``(low, high)`` of the input of every op whose rule needs bounds.

    Bounds given in the config are used as they are; otherwise the preprocessing's
    valid input range is pushed through the parameter-free layers (Rescaling,
    Normalization, padding) in front of the op.
    """
    bounds = {}
    for index, rule in enumerate(rules):
        if not getattr(rule, "needs_bounds", False):
            continue
        op = graph.ops[index]
        low, high = rule.params.get("low"), rule.params.get("high")
        if low is not None and high is not None:
            bounds[index] = (ops.convert_to_tensor(low, "float32"), ops.convert_to_tensor(high, "float32"))
            continue
        valid = preprocessing.valid_range(graph.input_shape[-1]) if preprocessing else None
        if valid is None:
            raise XaiError(f"rule zbox on layer '{op.layer}' needs the input's value range: "
                           "give low and high in the rule config, or for images choose a "
                           "--preprocess preset (e.g. unit); a signal's values have no range")
        bounds[index] = _propagate_range(graph, op.inputs[0], *valid)
    return bounds


def _propagate_range(graph: Graph, tensor: int, low: np.ndarray, high: np.ndarray):
    needed = _ancestors(graph, tensor)
    if any(graph.ops[i].kind == LINEAR for i in needed):
        raise XaiError(f"rule zbox on the layer fed by '{graph.producer(tensor).layer}' needs "
                       "explicit low and high in the rule config: its input is not the model input")
    images = np.stack([np.broadcast_to(np.asarray(v, np.float32), graph.input_shape)
                       for v in (low, high)])
    values = {0: ops.convert_to_tensor(images)}
    for i in sorted(needed):
        op = graph.ops[i]
        values[op.output] = op.forward([values[t] for t in op.inputs], op.params)
    pair = values[tensor]
    return ops.minimum(pair[0], pair[1])[None], ops.maximum(pair[0], pair[1])[None]


def _ancestors(graph: Graph, tensor: int) -> set[int]:
    found, todo = set(), [tensor]
    while todo:
        op = graph.producer(todo.pop())
        if op is not None:
            index = graph.ops.index(op)
            if index not in found:
                found.add(index)
                todo.extend(op.inputs)
    return found
