"""Running a rule assignment over the explanation graph.

:class:`Propagator` is the rewritten model: a forward pass that keeps every
intermediate tensor, and a backward pass that walks the ops in reverse topological
order, applies each op's rule and sums relevance where branches merge.
:class:`Explainer` compiles a method over it into one function per (model, rules), on
the Keras backend at hand, that takes a whole batch of any size.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from keras import ops

from . import backends, core
from .baselines import baseline
from .context import RELU
from .graph import Graph
from .layers import ACTIVATION, CONSTANT, LINEAR, NORMALIZATION, POOLING, STRUCTURAL


class Propagator:
    """Forward and backward passes of ``graph`` with one rule per op.

    ``bounds`` maps an op index to the ``(low, high)`` box of its input (for zB).
    """

    def __init__(self, graph: Graph, rules: list, bounds: dict | None = None):
        self.graph = graph
        self.rules = rules
        self.bounds = bounds or {}
        nonnegative = nonnegative_tensors(graph)
        silent = silent_where_negative(graph, rules) if rules else set()
        constant = {op.output for op in graph.ops if op.kind == CONSTANT}
        self.facts = [core.Facts(all(t in nonnegative for t in op.inputs), i in silent,
                                 tuple(t in constant for t in op.inputs))
                      for i, op in enumerate(graph.ops)]

    def forward(self, x, named: Mapping | None = None) -> dict:
        """All tensors of the graph, by id, for input ``x`` and the graph's named inputs
        (a text model's padding mask); a named input not given takes its fill value."""
        named = named or {}
        values = {0: x}
        for name, spec in self.graph.named.items():
            values[spec.tensor] = named[name] if name in named \
                else ops.full((ops.shape(x)[0], *spec.shape), spec.fill, spec.dtype)
        for op in self.graph.ops:
            values[op.output] = op.forward([values[i] for i in op.inputs], op.params)
        return values

    def backward(self, values: dict, seed, record: list | None = None, until: int = 0,
                 start: int | None = None, reference: dict | None = None):
        """Relevance of tensor ``until`` (default: the input) for relevance ``seed`` of
        tensor ``start`` (default: the output).

        The walk stops once every consumer of ``until`` is done: the ops upstream of it
        do not run. With ``record`` a list, appends ``(op, relevance_out, relevance_in)``
        per op. ``reference``: every tensor's value for DeepLIFT's reference input (the
        :data:`~xai_cli.engine.rules.RESCALE` rule reads it).
        """
        graph_ops = self.graph.ops
        stop = min((i for i, op in enumerate(graph_ops) if until in op.inputs), default=len(graph_ops))
        relevance = {self.graph.output if start is None else start: seed}
        for index in reversed(range(stop, len(graph_ops))):
            op = graph_ops[index]
            r_out = relevance.pop(op.output, None)
            if r_out is None:
                continue
            inputs = [values[i] for i in op.inputs]
            r_ins = core.backward(op, self.rules[index], inputs, values[op.output], r_out,
                                  self.bounds.get(index), self.facts[index],
                                  reference and ([reference[i] for i in op.inputs],
                                                 reference[op.output]))
            if record is not None:
                record.append((op, r_out, r_ins))
            for tensor, r in zip(op.inputs, r_ins):
                if r is not None:
                    relevance[tensor] = relevance[tensor] + r if tensor in relevance else r
        return relevance.get(until, ops.zeros_like(values[until]))


_NONNEGATIVE_ACTIVATIONS = {"relu", "relu6", "sigmoid", "softmax", "hard_sigmoid", "softplus"}


def nonnegative_tensors(graph: Graph) -> set[int]:
    """Tensors that are >= 0 by construction: ReLU outputs and what pools or moves them."""
    found = set()
    for op in graph.ops:
        if op.kind == ACTIVATION and op.activation in _NONNEGATIVE_ACTIVATIONS:
            found.add(op.output)
        elif op.kind in (STRUCTURAL, POOLING) and op.keeps_nonnegative \
                and all(t in found for t in op.inputs):
            found.add(op.output)
    return found


def silent_where_negative(graph: Graph, rules: list) -> set[int]:
    """Ops whose output relevance is exactly zero wherever their output is <= 0.

    True when the output's only consumer is a ReLU and everything downstream of the ReLU
    weighs relevance by its input (``x * ...``) before the next non-structural op: a
    switched-off unit then holds no relevance.
    """
    consumers = {}
    for index, op in enumerate(graph.ops):
        for t in op.inputs:
            consumers.setdefault(t, []).append(index)

    def weighs_by_input(tensor):
        for i in consumers.get(tensor, []):
            op, rule = graph.ops[i], rules[i]
            if op.kind == STRUCTURAL and getattr(rule, "mode", None) == "gradient":
                if not weighs_by_input(op.output):
                    return False
            elif not (op.kind in (LINEAR, POOLING, NORMALIZATION)
                      and getattr(rule, "weighs_by_input", False)):
                return False
        return tensor != graph.output

    found = set()
    for index, op in enumerate(graph.ops):
        users = consumers.get(op.output, [])
        if op.kind in (LINEAR, POOLING) and len(users) == 1:
            relu = graph.ops[users[0]]
            if relu.kind == ACTIVATION and relu.activation in RELU \
                    and getattr(rules[users[0]], "mode", None) == "pass" \
                    and weighs_by_input(relu.output):
                found.add(index)
    return found


def output_relevance(logits, targets, scale_by_logit: bool):
    """Where a backward pass starts: ``one_hot(target)``, times the logit for LRP."""
    seed = ops.one_hot(targets, logits.shape[-1], dtype=logits.dtype)
    return seed * logits if scale_by_logit else seed


@dataclass
class Result:
    """One batch's explanation, as NumPy arrays."""

    relevance: np.ndarray   # (N, *input_shape)
    logits: np.ndarray      # (N, classes), pre-softmax
    targets: np.ndarray     # (N,) the explained class


def xla_requested() -> bool:
    """``XAI_XLA=1`` in the environment: compile explainers with XLA (TensorFlow; JAX
    always compiles with it).

    Off by default: on the CPU measured it made the forward pass and LRP about 6x
    slower; on a GPU it is often faster. ``xai bench --xla`` measures both on the machine at hand.
    """
    return os.environ.get("XAI_XLA", "0") == "1"


class Explainer:
    """One method, compiled once, applied to batches of any size.

    ``params`` are the method's parameters by name (the others take their defaults);
    ``valid_range`` the preprocessing's per-channel ``(low, high)`` or None (baselines);
    ``jit_compile`` (default: :func:`xla_requested`) compiles it with XLA, except for
    random methods (their noise would differ).
    """

    def __init__(self, graph: Graph, method, propagator: Propagator, seed: int = 0,
                 jit_compile: bool | None = None, params: Mapping | None = None,
                 valid_range: tuple | None = None):
        self.graph = graph
        self.method = method
        self.propagator = propagator
        self.seed = seed
        self.valid_range = valid_range   # the input's per-channel (low, high), for baselines
        self.params = method.bind(params or {})
        self.jit = (xla_requested() if jit_compile is None else jit_compile) and not method.random
        if method.host is not None:   # computed in NumPy around the compiled model
            self.scorer = Scorer(graph)
            return
        signature = [((), "int32"), ((), "int64"), *graph.signature]
        self._compiled = backends.current().compile(self._explain, signature, self.jit)

    @functools.cached_property
    def facts(self) -> dict | None:
        """What the method says of its maps beyond them (Grad-CAM: the layer it read), or None."""
        return self.method.facts(self) if self.method.facts else None

    def _explain(self, targets, index, x, *named):
        values = self.propagator.forward(x, dict(zip(self.graph.named, named)))
        logits = values[self.graph.output]
        targets = ops.where(targets < 0, ops.cast(ops.argmax(logits, -1), "int32"), targets)
        relevance = self.method.compute(self, x, values, targets, index)
        return relevance, logits, targets

    def explain(self, x: np.ndarray, targets: np.ndarray, index: np.ndarray | None = None,
                named: Mapping[str, np.ndarray] | None = None) -> Result:
        """Explain a batch; a target of -1 means the top-1 class.

        ``index`` numbers the inputs globally, so that seeded methods give every
        input the same noise whatever batch it lands in. ``named``: the graph's named
        inputs by name (a text model's ``mask``, see
        :meth:`~xai_cli.engine.tokens.TextInput.embed`); one not given takes its fill value.
        """
        if index is None:
            index = np.arange(len(x))
        inputs = _graph_inputs(self.graph, x, named)
        if self.method.host is not None:
            return self._host(inputs, np.asarray(targets), np.asarray(index))
        return Result(*self._compiled(targets, index, *inputs))

    def _host(self, inputs: list, targets: np.ndarray, index: np.ndarray) -> Result:
        """A method computed in NumPy: the scores first, the top-1 class where the target
        is -1, the baseline the method asks for, then the method."""
        x, named = np.asarray(inputs[0], np.float32), dict(zip(self.graph.named, inputs[1:]))
        logits = self.scorer(x, named)
        targets = np.where(targets < 0, logits.argmax(-1), targets).astype(np.int32)
        base = ops.convert_to_numpy(ops.zeros_like(x) + baseline(
            self.params["baseline"], ops.convert_to_tensor(x), self.valid_range))
        return Result(self.method.host(self, x, logits, targets, index, named, base), logits, targets)

    def propagate(self, values: dict, targets, scale_by_logit: bool, until: int = 0):
        """Backward pass from ``one_hot(target)``, times the logit for LRP, to tensor
        ``until`` (default: the input)."""
        return self.propagator.backward(
            values, output_relevance(values[self.graph.output], targets, scale_by_logit),
            until=until)

    def gradient_at(self, x, targets, values: dict):
        """The engine's gradient of the target score at ``x`` (a fresh forward pass, with
        the named inputs of ``values``, the forward pass of the input explained: methods
        move only ``x``)."""
        named = {name: values[spec.tensor] for name, spec in self.graph.named.items()}
        return self.propagate(self.propagator.forward(x, named), targets, scale_by_logit=False)


def _graph_inputs(graph: Graph, x, named: Mapping | None) -> list:
    """``x`` and the graph's named inputs in order, a missing one filled with its fill
    value; names the graph lacks are ignored (documents come with a padding mask, which
    a model that never reads it has no input for)."""
    named = named or {}
    return [x, *(named[name] if name in named else np.full((len(x), *spec.shape), spec.fill, spec.dtype)
                 for name, spec in graph.named.items())]


class Scorer:
    """The model's pre-softmax scores for batches of any size, compiled once."""

    def __init__(self, graph: Graph):
        propagator = Propagator(graph, [])
        self.graph = graph
        self._compiled = backends.current().compile(
            lambda x, *named: propagator.forward(x, dict(zip(graph.named, named)))[graph.output],
            graph.signature, jit=False)

    def __call__(self, x: np.ndarray, named: Mapping[str, np.ndarray] | None = None) -> np.ndarray:
        return self._compiled(*_graph_inputs(self.graph, x, named))
