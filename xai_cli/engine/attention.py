"""Scaled dot-product attention as one explanation-graph op, and its LRP rules.

A Keras ``MultiHeadAttention`` layer becomes its four projections (LINEAR ops, any
linear rule applies) around one ATTENTION op: ``context = A v`` with the attention
weights ``A = softmax(q k^T)`` (the query's projection carries the ``1/sqrt(d)``
scale). The op reuses the layer's own equations, masked softmax and mask logic, so its
forward pass is the layer's. Two rules propagate relevance through it:

- ``attnlrp`` (Achtibat et al. 2024): the product ``A v`` takes the uniform rule (each
  factor its epsilon share with the other held constant, halved); the softmax takes
  its Taylor decomposition with bias, ``R_s = s (R_A - A sum(R_A))`` over the normalised
  axes; the product ``q k^T`` the uniform rule again. The values get half of the
  relevance; the softmax's bias term absorbs part of the other half.
- ``cp-lrp`` (Ali et al. 2022): the attention weights are held constant, so ``A v`` is
  linear in ``v``, which takes all of the relevance (conserved); queries and keys none.
"""

from __future__ import annotations

from dataclasses import dataclass

from keras import ops

from . import backends
from .rules import stabilise

ATTNLRP = "attnlrp"
CP_LRP = "cp-lrp"
MODES = (ATTNLRP, CP_LRP)
LARGE_NEGATIVE = -1e9   # what Keras puts in place of a masked float32 score


@dataclass(frozen=True, eq=False)
class Mechanism:
    """The attention of one Keras ``MultiHeadAttention`` layer, given its projections.

    ``masked``: whether the query, value and key read the padding mask (they carry the
    Embedding's ``mask_zero`` mask); ``causal``: the call's ``use_causal_mask``;
    ``given``: an ``attention_mask`` given as a constant (a NumPy array), or None.
    The op's inputs are ``[q, k, v]``, then the padding mask ``(N, T)`` where any reads it.
    """

    layer: object
    masked: tuple[bool, bool, bool]
    causal: bool
    given: object = None

    def scores(self, q, k):
        return ops.einsum(self.layer._dot_product_equation, k, q)

    @property
    def fused(self) -> bool:
        """Whether the layer runs ``ops.dot_product_attention`` (no dropout, one attention
        axis): a query whose keys are all masked then attends to every key alike, where
        the layer's own masked softmax gives it zero weights."""
        return not self.layer._dropout and len(self.layer._attention_axes) == 1

    def weights(self, scores, q, v, padding=None):
        """The attention weights (softmax over the key axes, masked as the layer masks)."""
        if padding is None and not self.causal and self.given is None:
            return self.layer._masked_softmax(scores)
        query, value, key = (padding > 0.5 if m and padding is not None else None
                             for m in self.masked)
        given = None if self.given is None else ops.convert_to_tensor(self.given)
        mask = self.layer._compute_attention_mask(q, v, query_mask=query, value_mask=value,
                                                  key_mask=key, attention_mask=given,
                                                  use_causal_mask=self.causal)
        if not self.fused:
            return self.layer._masked_softmax(scores, mask)
        for _ in range(len(scores.shape) - len(mask.shape)):
            mask = ops.expand_dims(mask, -len(self.layer._attention_axes) * 2 - 1)
        return self.layer._softmax(ops.where(mask, scores, LARGE_NEGATIVE))

    def combine(self, weights, v):
        return ops.einsum(self.layer._combine_equation, weights, v)

    @property
    def softmax_axes(self) -> tuple[int, ...]:
        axis = self.layer._softmax.axis
        return tuple(axis) if isinstance(axis, (tuple, list)) else (axis,)

    def forward(self, xs, params):
        q, k, v = xs[:3]
        return self.combine(self.weights(self.scores(q, k), q, v, *xs[3:]), v)


def relevance(mechanism: Mechanism, mode: str, epsilon: float, inputs: list, relevance_out) -> list:
    """Relevance of ``[q, k, v, (mask)]`` for the context's relevance, by ``mode``."""
    q, k, v = inputs[:3]
    padding = inputs[3:]
    scores = mechanism.scores(q, k)
    weights = mechanism.weights(scores, q, v, *padding)
    vjp = backends.current().vjp
    context, combine_vjp = vjp(lambda ts: mechanism.combine(*ts), [weights, v])
    grad_weights, grad_v = combine_vjp(relevance_out / stabilise(context, epsilon))
    nothing = [None] * len(padding)
    if mode == CP_LRP:
        return [None, None, v * grad_v, *nothing]
    relevance_weights = weights * grad_weights / 2
    # the softmax rule s (R_A - A sum R_A), divided by s for the uniform rule of q k^T
    # that follows: computed without the division, which a score near 0 would spoil
    grad_scores = relevance_weights - weights * ops.sum(
        relevance_weights, axis=mechanism.softmax_axes, keepdims=True)
    _, scores_vjp = vjp(lambda ts: mechanism.scores(*ts), [q, k])
    grad_q, grad_k = scores_vjp(grad_scores)
    return [q * grad_q / 2, k * grad_k / 2, v * grad_v / 2, *nothing]


def rollout(attention_ops: list, values: dict, read) -> object:
    """Attention rollout (Abnar & Zuidema 2020) over the tokens of the first attention
    layer's input: ``(N, S)``.

    Each layer's weights, averaged over the heads, with the residual connection as an
    identity (``0.5 A + 0.5 I``, rows renormalised), multiplied from the first layer to
    the last; the rows of the tokens the output reads (``read``, ``(N, T)``, 1 where the
    explained score depends on the last layer's token) averaged.
    """
    flow = None
    for op in attention_ops:
        q, k, v = (values[t] for t in op.inputs[:3])
        padding = [values[t] for t in op.inputs[3:]]
        weights = op.mechanism.weights(op.mechanism.scores(q, k), q, v, *padding)
        mixed = ops.mean(weights, axis=1)   # (N, T, S): the heads averaged
        mixed = 0.5 * mixed + 0.5 * ops.eye(mixed.shape[-1], dtype=mixed.dtype)
        mixed = mixed / ops.sum(mixed, axis=-1, keepdims=True)
        flow = mixed if flow is None else ops.matmul(mixed, flow)
    rows = read / ops.maximum(ops.sum(read, axis=-1, keepdims=True), 1.0)
    return ops.einsum("nt,nts->ns", rows, flow)
