"""Surrogate methods: a linear model of the score over segments of the input, fitted to
the scores of copies with some segments hidden. LIME (Ribeiro et al. 2016) and
KernelSHAP (Lundberg & Lee 2017).

Segments are superpixels for images (scikit-image's SLIC, the same for both methods),
equal windows for signals and single tokens for text. Drawing coalitions, segmenting and
fitting are NumPy, per input and seeded by ``(seed, input index)``, so an input gets the
same map in any batch; the hidden copies go through the compiled model (a
:class:`~xai_cli.engine.propagation.Scorer`) in chunks. Every position of a segment gets
the segment's coefficient, shared by its channels (a pixel's channel sum, a word's
relevance, is the coefficient).
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import XaiError

SCORED_VALUES = 2 ** 22   # about how many input values one forward pass of copies holds


def segments(x: np.ndarray, count: int, tokens: bool) -> list[np.ndarray]:
    """Per input, a label ``0 .. M-1`` for every position of its grid (the axes between the
    batch and the channels)."""
    shape = x.shape[1:-1]
    if tokens:
        return [np.arange(shape[0])] * len(x)
    if len(shape) == 1:
        return [np.minimum(np.arange(shape[0]) * count // shape[0], count - 1)] * len(x)
    if len(shape) != 2:
        raise XaiError(f"lime and kernelshap explain images, signals and text; this input has "
                       f"{len(shape)} axes of positions")
    try:
        from skimage.segmentation import slic
    except ImportError:
        raise XaiError("lime and kernelshap segment images with scikit-image: pip install "
                       "'xai[surrogates]'") from None
    found = []
    for image in x:
        low, high = image.min(), image.max()
        scaled = (image - low) / (high - low) if high > low else np.zeros_like(image)
        labels = slic(scaled.astype(np.float64), n_segments=count, compactness=10, start_label=0,
                      channel_axis=-1, convert2lab=image.shape[-1] == 3)
        found.append(np.unique(labels, return_inverse=True)[1].reshape(labels.shape))
    return found


def scores(scorer, x: np.ndarray, baseline: np.ndarray, labels: np.ndarray, coalitions: np.ndarray,
           target: int, named: dict) -> np.ndarray:
    """The target's score for one input with each coalition's hidden segments (0s) taken
    from ``baseline``."""
    size = max(1, SCORED_VALUES // x.size)
    out = []
    for start in range(0, len(coalitions), size):
        kept = coalitions[start:start + size][:, labels][..., None]    # (K, *grid, 1)
        copies = (x[None] * kept + baseline[None] * (1 - kept)).astype(np.float32)
        names = {k: np.repeat(v[None], len(copies), axis=0) for k, v in named.items()}
        out.append(scorer(copies, names)[:, target])
    return np.concatenate(out)


def lime_coalitions(count: int, samples: int, rng: np.random.RandomState) -> np.ndarray:
    """LIME's: every segment kept with probability 1/2, the first sample keeps them all
    (drawn as the ``lime`` package draws them)."""
    data = rng.randint(0, 2, samples * count).reshape(samples, count)
    data[0] = 1
    return data


def lime_weights(coalitions: np.ndarray, width: float) -> np.ndarray:
    """``sqrt(exp(-d^2 / width^2))`` of the cosine distance to the whole input (``lime``'s)."""
    norms = np.linalg.norm(coalitions, axis=1) * math.sqrt(coalitions.shape[1])
    cosine = np.divide(coalitions.sum(axis=1), norms, out=np.zeros(len(coalitions)), where=norms > 0)
    return np.sqrt(np.exp(-((1 - cosine) ** 2) / width ** 2))


def ridge(features: np.ndarray, targets: np.ndarray, weights: np.ndarray, alpha: float) -> np.ndarray:
    """Weighted ridge regression with an intercept (scikit-learn's ``Ridge``): the
    coefficients."""
    total = weights.sum()
    mean_x, mean_y = weights @ features / total, weights @ targets / total
    centred = features - mean_x
    gram = centred.T @ (weights[:, None] * centred) + alpha * np.eye(features.shape[1])
    return np.linalg.solve(gram, centred.T @ (weights * (targets - mean_y)))


def shapley_coalitions(count: int, samples: int, rng: np.random.RandomState
                       ) -> tuple[np.ndarray, np.ndarray]:
    """KernelSHAP's coalitions (neither empty nor full) and their weights: all of them with
    the Shapley kernel's weights where ``samples`` allows (then the fit gives the exact
    Shapley values), else sizes drawn by the kernel, members uniformly, each coalition with
    its complement, all weighted alike."""
    if count < 2:
        return np.zeros((0, count)), np.zeros(0)
    sizes = np.arange(1, count)
    kernel = (count - 1) / (sizes * (count - sizes))
    if 2 ** count - 2 <= samples:
        every = (np.arange(1, 2 ** count - 1)[:, None] >> np.arange(count)) & 1
        size = every.sum(axis=1)
        return every, kernel[size - 1] / np.array([math.comb(count, k) for k in size])
    half = samples // 2
    drawn = rng.choice(sizes, size=half, p=kernel / kernel.sum())
    order = np.argsort(rng.random((half, count)), axis=1)
    chosen = (order < drawn[:, None]).astype(np.int64)
    return np.concatenate([chosen, 1 - chosen]), np.ones(2 * half)


def constrained_fit(coalitions: np.ndarray, weights: np.ndarray, values: np.ndarray, empty: float,
                    full: float) -> np.ndarray:
    """The weighted least-squares Shapley values with ``phi_0 = f(empty)`` and
    ``sum(phi) = f(full) - f(empty)``: the last segment's value eliminated, as ``shap`` does."""
    count = coalitions.shape[1]
    if count == 1 or len(values) == 0:
        return np.full(count, (full - empty) / count)
    last = coalitions[:, -1:]
    features = coalitions[:, :-1] - last
    targets = values - empty - last[:, 0] * (full - empty)
    root = np.sqrt(weights)[:, None]
    phi = np.linalg.lstsq(root * features, root[:, 0] * targets, rcond=None)[0]
    return np.append(phi, full - empty - phi.sum())


def fitting(fit):
    """A host method (see :class:`~xai_cli.engine.methods.Method`) that cuts each input into
    segments and gives every position its segment's coefficient from ``fit(params, count,
    rng, score, full)``: ``score`` scores coalitions ``(K, count)`` of 0/1, ``full`` is
    the whole input's score."""
    def explain(e, x, logits, targets, index, named, baseline):
        out = np.zeros_like(x)
        for i, labels in enumerate(segments(x, e.params["segments"], e.graph.text is not None)):
            rng = np.random.RandomState((e.seed * 1_000_003 + int(index[i])) % 2 ** 32)
            one = {k: v[i] for k, v in named.items()}

            def score(coalitions, i=i, labels=labels, one=one):
                return scores(e.scorer, x[i], baseline[i], labels, coalitions, targets[i], one)

            found = fit(e.params, int(labels.max()) + 1, rng, score, logits[i, targets[i]])
            out[i] = found[labels][..., None] / x.shape[-1]
        return out
    return explain


def _lime(params, count, rng, score, full):
    coalitions = lime_coalitions(count, params["samples"], rng)
    return ridge(coalitions, score(coalitions), lime_weights(coalitions, params["width"]), 1.0)


def _kernelshap(params, count, rng, score, full):
    coalitions, weights = shapley_coalitions(count, params["samples"], rng)
    scored = score(np.concatenate([np.zeros((1, count), np.int64), coalitions]))
    return constrained_fit(coalitions, weights, scored[1:], scored[0], full)


lime = fitting(_lime)
kernelshap = fitting(_kernelshap)
