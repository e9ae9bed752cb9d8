"""Neuralized k-means (NEON, Kauffmann et al. 2019, "From clustering to cluster explanations
via neural networks"): cluster membership as layers that LRP explains.

The evidence that a point ``a`` belongs to cluster ``c`` of centroids ``mu`` is

    f_c(a) = smin_beta over k != c of  h_ck(a),   h_ck(a) = ||a - mu_k||^2 - ||a - mu_c||^2,

where ``smin_beta(h) = -(1/beta) log sum_k exp(-beta h_k)`` is a soft minimum of stiffness
``beta``; ``beta * f_c`` is the log-odds ``log(P(c|a) / (1 - P(c|a)))`` of the soft
assignment ``P(c|a) = softmax_c(-beta ||a - mu_c||^2)``. Each difference is linear in
``a``: ``h_ck = w_ck . (a - m_ck)`` with ``w_ck = 2 (mu_c - mu_k)`` and the midpoint
``m_ck = (mu_c + mu_k) / 2``. :class:`KMeansMembership` computes ``f`` for every cluster
as three steps, which the graph takes as three ops whose rules are NEON's:

1. ``a - m_ck`` for every pair (a structural op: relevance follows the gradient, which
   sums each pair's share back onto ``a``);
2. ``h_ck = w_ck . (a - m_ck)``, a linear map without bias: the z-rule on it is NEON's
   midpoint rule, ``R_i = sum_k w_cki (a_i - m_cki) / h_ck R_ck``, conservative because the
   midpoint absorbs the bias;
3. the soft minimum over ``k``: relevance follows its gradient, ``R_ck = R_c p_ck`` with
   ``p_ck = softmin_k(beta h_ck)``, the paper's min-pooling rule.

Below the features (the network that made them) the rule config explains as usual.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops


def competitors(count: int) -> np.ndarray:
    """``(K, K-1)``: the clusters ``k != c`` of each cluster ``c``, in increasing order."""
    return np.array([[k for k in range(count) if k != c] for c in range(count)]).reshape(count, -1)


def pairwise(centroids):
    """The weights ``w`` and midpoints ``m`` ``(K, K-1, D)`` of the differences ``h_ck``
    (NumPy arrays or tensors alike)."""
    others = ops.take(centroids, competitors(centroids.shape[0]), axis=0)
    own = ops.expand_dims(centroids, 1)
    return 2 * (own - others), (own + others) / 2


def soft_min(h, beta: float):
    """``-(1/beta) log sum exp(-beta h)`` over the last axis."""
    return -ops.logsumexp(-beta * h, axis=-1) / beta


def shifted(a, midpoints):
    """``a - m_ck`` for every cluster and competitor: ``(N, D) -> (N, K, K-1, D)``."""
    return a[:, None, None, :] - midpoints


def differences(x, kernel):
    """``h_ck = w_ck . x_ck``: ``(N, K, K-1, D) -> (N, K, K-1)``."""
    return ops.sum(x * kernel, axis=-1)


def squared_distances(features: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """``||a - mu_k||^2`` of every point and centroid, ``(N, K)``, in float64."""
    a, mu = np.asarray(features, np.float64), np.asarray(centroids, np.float64)
    return ((a[:, None] - mu[None]) ** 2).sum(-1)


def beta_heuristic(features: np.ndarray, centroids: np.ndarray) -> float:
    """The paper's stiffness: one over the mean, over ``features``, of the (hard) minimum
    difference of each point's own cluster, so that ``beta * f`` is of order one."""
    distances = squared_distances(features, centroids)
    own = distances.argmin(1)
    margin = np.where(np.arange(distances.shape[1])[None] == own[:, None], np.inf, distances).min(1) \
        - distances[np.arange(len(distances)), own]
    mean = margin.mean()
    if not mean > 0:
        raise ValueError("beta_heuristic needs points that are nearer one centroid than the others")
    return float(1 / mean)


@keras.saving.register_keras_serializable(package="xai")
class KMeansMembership(keras.layers.Layer):
    """Features ``(N, D)`` to the evidence ``f_c`` of every cluster ``(N, K)`` (the module
    docstring): k-means as a layer, to stack on a network's (pooled) features.

    ``centroids`` ``(K, D)`` are stored as (non-trainable) weights; ``beta`` is the soft
    minimum's stiffness (:func:`beta_heuristic`)."""

    def __init__(self, clusters: int, beta: float, centroids: np.ndarray | None = None, **kwargs):
        super().__init__(**kwargs)
        if clusters < 2:
            raise ValueError(f"k-means membership needs at least 2 clusters, got {clusters}")
        if not beta > 0:
            raise ValueError(f"beta must be positive, got {beta}")
        self.clusters, self.beta = int(clusters), float(beta)
        self._initial = None if centroids is None else np.asarray(centroids, np.float32)

    def build(self, input_shape):
        initial = self._initial
        if initial is not None and initial.shape != (self.clusters, input_shape[-1]):
            raise ValueError(f"centroids of shape {initial.shape} do not fit {self.clusters} "
                             f"clusters of features {input_shape[-1]}")
        self.centroids = self.add_weight(
            shape=(self.clusters, input_shape[-1]), trainable=False, name="centroids",
            initializer="zeros" if initial is None else keras.initializers.Constant(initial))

    def call(self, features):
        kernel, midpoints = pairwise(ops.convert_to_tensor(self.centroids))
        return soft_min(differences(shifted(features, midpoints), kernel), self.beta)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.clusters)

    def get_config(self):
        return {**super().get_config(), "clusters": self.clusters, "beta": self.beta}


POOLS = ("avg", "max", "none")   # how a layer's map of features becomes one vector per input


def features(model: keras.Model, layer: str, pool: str = "avg") -> keras.Model:
    """``model`` cut at ``layer``: its output per input as one vector ``(N, D)``, a map of
    features ``(N, ..., C)`` averaged or maxed over its positions (``pool``), or flattened
    (``none``)."""
    try:
        found = model.get_layer(layer)
    except ValueError:
        names = [item.name for item in model.layers if not isinstance(item, keras.layers.InputLayer)]
        raise ValueError(f"model '{model.name}' has no layer '{layer}'; its layers are "
                         f"{', '.join(names[:12])}" + (", ..." if len(names) > 12 else "")) from None
    if pool not in POOLS:
        raise ValueError(f"unknown pooling '{pool}'; expected one of {', '.join(POOLS)}")
    output = found.output
    positions = len(output.shape) - 2   # the axes between the batch and the channels
    if positions > 3:
        raise ValueError(f"layer '{layer}' gives maps of {positions} axes; xai pools 1 to 3")
    if positions and pool == "none":
        output = keras.layers.Flatten()(output)
    elif positions:
        kind = "Average" if pool == "avg" else "Max"
        output = getattr(keras.layers, f"Global{kind}Pooling{positions}D")()(output)
    return keras.Model(model.inputs, output, name=f"{model.name}_{layer}")
