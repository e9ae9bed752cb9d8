"""Whether padding a document changes what a text model of any length computes.

Documents of a model whose sequence axis is ``None`` are batched by length and padded to
a bucket's length (:mod:`~xai_cli.kinds.buckets`). That is exact only where every layer
that mixes positions skips the padding: recurrent layers and average pooling that read the
Embedding's ``mask_zero`` mask. A layer that mixes positions without it (a convolution, max
pooling, an unmasked LSTM) sees the pads, and such a model must run every document at
its own length. The layers that act on each position alone (Dense on a sequence,
activations, normalisation over the features, element-wise merges) pass the padded
positions on without mixing them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

# layers that compute each sequence position from that position alone
POSITION_WISE = frozenset({
    "Dense", "Activation", "ReLU", "LeakyReLU", "ELU", "PReLU", "Softmax",
    "Dropout", "SpatialDropout1D", "GaussianNoise", "GaussianDropout", "AlphaDropout",
    "ActivityRegularization", "Identity", "Rescaling", "Normalization", "BatchNormalization",
    "LayerNormalization", "LayerScale", "Add", "Subtract", "Multiply", "Average", "Maximum",
    "Minimum", "Embedding", "TextVectorization", "NotEqual", "Gelu", "Relu", "Sigmoid", "Tanh", "Silu",
})


@dataclass(frozen=True)
class Node:
    """One layer call of the model: its layer, input and output tensor ids, and whether
    each output still has the (unknown-length) sequence axis."""

    layer: object
    inputs: Sequence[int]
    outputs: Sequence[int]
    sequential: Sequence[bool]


def mixing_layers(nodes: Sequence[Node], mask: int | None) -> list[str]:
    """The layers (``'name' (Type)``) that mix padded sequence positions without reading the
    padding mask (tensor ``mask``); none means that padding changes nothing."""
    padded, found = {0}, []
    for node in nodes:
        if not any(t in padded for t in node.inputs):
            continue
        padded.update(t for t, seq in zip(node.outputs, node.sequential) if seq)
        name = type(node.layer).__name__
        if mask is not None and mask in node.inputs:
            continue
        if (name in POSITION_WISE and all(node.sequential)) or _concatenates_features(node):
            continue
        found.append(f"'{node.layer.name}' ({name})")
    return found


def _concatenates_features(node: Node) -> bool:
    axis = getattr(node.layer, "axis", None)
    return type(node.layer).__name__ == "Concatenate" and axis == -1 and all(node.sequential)
