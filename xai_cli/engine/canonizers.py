"""Model rewrites applied before the rules: the explained function stays the same.

``merge-batchnorm`` folds an inference-mode BatchNormalization into the linear layer
that feeds it, so that the rules see one linear layer (Montavon et al. 2019).
"""

from __future__ import annotations

import dataclasses

from keras import ops

from .graph import Graph
from .layers import LINEAR


def _is_batchnorm(op) -> bool:
    return op.layer_type == "BatchNormalization"


def _channel_scale(op, scale):
    """``scale`` shaped to multiply the output channels of ``op``'s kernel."""
    kernel = op.params["kernel"]
    if op.layer_type.startswith("Depthwise") or op.name.endswith("/depthwise"):
        return ops.reshape(scale, kernel.shape[-2:])
    return scale


def merge_batchnorm(graph: Graph) -> Graph:
    """Fold every BatchNormalization that directly follows a linear op used only by it."""
    rewritten = list(graph.ops)
    merged = 0
    for bn in [op for op in rewritten if _is_batchnorm(op)]:
        producer = graph.producer(bn.inputs[0])
        if producer is None or producer.kind != LINEAR or _is_batchnorm(producer) \
                or len(graph.consumers(producer.output)) != 1:
            continue
        scale, shift = bn.params["kernel"], bn.params["bias"]
        kernel = ops.convert_to_tensor(producer.params["kernel"])
        bias = ops.convert_to_tensor(producer.params.get("bias", ops.zeros_like(shift)))
        folded = dataclasses.replace(
            producer, name=f"{producer.name}+{bn.name}", output=bn.output,
            params={"kernel": kernel * _channel_scale(producer, scale),
                    "bias": bias * scale + shift})
        rewritten[rewritten.index(producer)] = folded
        rewritten.remove(bn)
        merged += 1
    return dataclasses.replace(graph, ops=rewritten) if merged else graph


CANONIZERS = {"merge-batchnorm": merge_batchnorm}
