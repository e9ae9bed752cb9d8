"""Flattening a Keras model into the explanation graph.

The graph is a topologically ordered list of :class:`~xai_cli.engine.layers.Op`; nested
models are inlined and a final softmax is removed, so that explanations are of the
pre-softmax score.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import keras
from keras import ops
from keras.src.models.functional import Functional

from ..errors import XaiError
from . import padding
from .layers import ACTIVATION, CONSTANT, Builder, Op
from .tokens import TextInput, text_input


@dataclass(frozen=True)
class NamedInput:
    """An input of the graph besides the explained one: its tensor id, its shape and
    dtype (without the batch) and ``fill``, its value where a caller gives none.
    Methods move only the explained input; named inputs stay as given."""

    tensor: int
    shape: tuple[int, ...]
    dtype: str
    fill: float


@dataclass
class Graph:
    """A model as ops in topological order; tensor 0 is the input.

    A text model's input is its embedding's output ``(T, D)``: ``text`` says how
    documents get there. ``named`` holds the graph's other inputs, in the order compiled
    functions take them: a text model's padding mask ``(T,)`` is ``named["mask"]``
    (1 for a token, 0 for padding; all ones where not given). A text model of any length
    has ``T`` None; ``padding_mixers`` names its layers that see padded positions (none:
    padding a document changes nothing, see :mod:`~xai_cli.engine.padding`).
    """

    model: keras.Model
    ops: list[Op]
    output: int
    input_shape: tuple[int, ...]
    num_classes: int
    softmax_stripped: bool
    text: TextInput | None = None
    named: dict[str, NamedInput] = field(default_factory=dict)
    padding_mixers: list[str] = field(default_factory=list)

    @property
    def any_length(self) -> bool:
        """Whether the model takes sequences of any length (its sequence axis is None)."""
        return self.text is not None and self.text.length is None

    @property
    def signature(self) -> list[tuple[tuple[int, ...], str]]:
        """Shapes and dtypes of the graph's inputs (but the batch): the input, then the
        named inputs in order."""
        return [(self.input_shape, "float32"), *((n.shape, n.dtype) for n in self.named.values())]

    def tensor_of(self, layer: str) -> int:
        """The output tensor of the Keras layer named ``layer`` (its last op)."""
        found = [op.output for op in self.ops if op.layer == layer]
        if not found:
            names = list(dict.fromkeys(op.layer for op in self.ops))
            raise XaiError(f"model '{self.model.name}' has no layer '{layer}' in its explanation "
                           f"graph; its layers include {', '.join(names[:8])}"
                           + (", ..." if len(names) > 8 else ""))
        return found[-1]

    def consumers(self, tensor: int) -> list[Op]:
        return [op for op in self.ops if tensor in op.inputs]

    def producer(self, tensor: int) -> Op | None:
        return next((op for op in self.ops if op.output == tensor), None)


def build_graph(model: keras.Model) -> Graph:
    """Flatten ``model`` (Sequential or functional, nested models inlined) into ops."""
    functional = _functional(model)
    if len(functional.inputs) != 1 or len(functional.outputs) != 1:
        raise XaiError(f"model '{model.name}' has {len(functional.inputs)} inputs and "
                       f"{len(functional.outputs)} outputs; xai explains single-input, "
                       "single-output classifiers")
    builder = Builder()
    (output,) = _inline(functional, [0], builder)
    if builder.unsupported:
        raise XaiError(f"model '{model.name}' has layers the explanation engine does not "
                       f"support: {', '.join(builder.unsupported)}")
    text = _cut_text_front(builder)
    ops, output, stripped = _strip_softmax(builder.ops, output)
    input_shape = tuple(functional.inputs[0].shape[1:])
    if text is not None:
        input_shape = (text.length, text.embeddings.shape[1])
    if any(d is None for d in input_shape[text is not None:]):
        raise XaiError(f"model '{model.name}' has input shape {input_shape}; "
                       "xai needs a fixed input size")
    num_classes = functional.outputs[0].shape[-1]
    named = {} if builder.mask is None else \
        {"mask": NamedInput(builder.mask, (input_shape[0],), "float32", 1.0)}
    mixers = padding.mixing_layers(builder.nodes, builder.mask) \
        if text is not None and text.length is None else []
    return Graph(model, ops, output, input_shape, num_classes, stripped, text, named, mixers)


def _cut_text_front(builder: Builder) -> TextInput | None:
    """Cut a text model's TextVectorization and Embedding off the graph, whose input
    becomes the embedding's output (tensor 0)."""
    if builder.embedding is None:
        if builder.vectorizer is not None:
            raise XaiError(f"layer '{builder.vectorizer[0].name}' (TextVectorization) does not "
                           "feed an Embedding; xai explains text models at their embedding")
        return None
    layer, source, embedded = builder.embedding
    front = {0}
    if builder.vectorizer is not None:
        vectorizer, vectorizer_source, tokens = builder.vectorizer
        if vectorizer_source != 0:
            raise XaiError(f"layer '{vectorizer.name}' (TextVectorization) is not fed by the "
                           "model input")
        front.add(tokens)
    if source not in front:
        raise XaiError(f"layer '{layer.name}' (Embedding) is not fed by the model input; xai "
                       "explains text models whose first layer embeds the tokens")
    if builder.mask is not None and (builder.mask_source not in front or not layer.mask_zero):
        raise XaiError("the model compares tensors (NotEqual) other than as its Embedding's "
                       "padding mask (mask_zero); xai does not explain that")
    for op in builder.ops:
        if op.kind == CONSTANT and op.inputs == [source]:
            op.inputs, op.forward = [embedded], _on_stand_in_ids(op.forward)
    if any(t in front for op in builder.ops for t in op.inputs):
        raise XaiError("the model's token ids feed layers other than its Embedding; xai explains "
                       "text models whose tokens only enter through the embedding")
    for op in builder.ops:
        op.inputs = [0 if t == embedded else t for t in op.inputs]
    return text_input(layer, builder.vectorizer and builder.vectorizer[0], layer.output.shape[1])


def _on_stand_in_ids(forward):
    """``forward`` of a shape-only op on the token ids (``ops.ones_like(ids)`` for position
    ids), run on zeros shaped like the ids: the graph's input is their embedding."""
    def run(xs, params):
        return forward([ops.zeros(ops.shape(xs[0])[:-1], "int32")], params)
    return run


def _functional(model):
    if isinstance(model, keras.Sequential):
        inner = getattr(model, "_functional", None)
        if inner is None:
            raise XaiError(f"Sequential model '{model.name}' is not built: give its first "
                           "layer an input shape before saving")
        return inner
    if isinstance(model, Functional):
        return model
    raise XaiError(f"model '{model.name}' is a subclassed model ({type(model).__name__}) "
                   "without a layer graph; save it as a functional or Sequential model")


def _inline(model, input_ids: list[int], builder: Builder) -> list[int]:
    model = _functional(model)
    ids = {id(t): i for t, i in zip(model.inputs, input_ids)}
    for depth in sorted(model._nodes_by_depth, reverse=True):
        for node in model._nodes_by_depth[depth]:
            layer = node.operation
            if isinstance(layer, keras.layers.InputLayer):
                continue
            inputs = [ids[id(t)] for t in node.input_tensors]
            if isinstance(layer, keras.Model):
                outputs = _inline(layer, inputs, builder)
            elif isinstance(layer, keras.layers.TimeDistributed):
                outputs = [_time_distributed(layer, inputs[0], node, builder)]
            else:
                outputs = [builder.add_layer(layer, inputs, node)]
                builder.nodes.append(padding.Node(layer, inputs, outputs, [
                    len(t.shape) > 1 and t.shape[1] is None for t in node.outputs]))
            if len(node.outputs) != len(outputs):
                raise XaiError(f"layer '{layer.name}' ({type(layer).__name__}) has "
                               f"{len(node.outputs)} outputs; only single-output layers are supported")
            ids.update({id(t): o for t, o in zip(node.outputs, outputs)})
    return [ids[id(t)] for t in model.outputs]


def _time_distributed(layer, source: int, node, builder: Builder) -> int:
    """``TimeDistributed(inner)``: the inner layer's (or model's) ops, each run on every
    step as on a batch of its own (:meth:`Builder.per_step`)."""
    steps = node.input_tensors[0].shape[1]
    if steps is None:
        raise XaiError(f"layer '{layer.name}' (TimeDistributed) takes any number of steps; "
                       "xai needs a fixed input size")
    start, inner = len(builder.ops), layer.layer
    if isinstance(inner, keras.Model):
        (out,) = _inline(inner, [source], builder)
    else:
        out = builder.add_layer(inner, [source])
    builder.per_step(layer, start, steps, named=not isinstance(inner, keras.Model))
    return out


def _strip_softmax(ops: list[Op], output: int):
    last = ops[-1] if ops else None
    if last is not None and last.output == output and last.kind == ACTIVATION \
            and last.activation == "softmax":
        return ops[:-1], last.inputs[0], True
    return ops, output, False
