"""Region perturbation (Samek et al. 2017): how fast the score falls as relevant patches go.

Relevance is summed over channels and over non-overlapping patches (edge patches
clipped); patches are ranked (most relevant first for MoRF), and at step k the k
first-ranked patches hold their replacement values. The replacement values of an image
are drawn once, so step k+1 is step k with one more patch replaced. Perturbed copies
are built chunk by chunk, so memory is bounded by the chunk, not by images x steps.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

ORDERS = ("morf", "lerf", "random")
REPLACEMENTS = ("uniform", "mean", "blur")


def patch_ids(shape_hw: tuple[int, int], patch: tuple[int, int]) -> tuple[np.ndarray, int]:
    """(H, W) map of patch ids (row-major over the patch grid) and the number of patches."""
    (h, w), (ph, pw) = shape_hw, patch
    columns = -(-w // pw)
    ids = (np.arange(h)[:, None] // ph) * columns + np.arange(w)[None, :] // pw
    return ids, (-(-h // ph)) * columns


def patch_scores(relevance: np.ndarray, patch: tuple[int, int]) -> np.ndarray:
    """(N, P) relevance summed over channels and over each patch."""
    r = relevance.sum(axis=-1) if relevance.ndim == 4 else relevance
    ids, count = patch_ids(r.shape[1:], patch)
    offsets = (np.arange(len(r)) * count)[:, None, None] + ids[None]
    return np.bincount(offsets.ravel(), weights=r.astype(np.float64).ravel(),
                       minlength=len(r) * count).reshape(len(r), count)


def patch_order(scores: np.ndarray, order: str, rngs: list[np.random.Generator]) -> np.ndarray:
    """(N, P) patch ids, first perturbed first; ties broken by patch id."""
    if order == "morf":
        return np.argsort(-scores, axis=1, kind="stable")
    if order == "lerf":
        return np.argsort(scores, axis=1, kind="stable")
    return np.stack([rng.permutation(scores.shape[1]) for rng in rngs])


def pixel_ranks(order: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """(N, H, W): the step at which each pixel's patch is perturbed (0 = first)."""
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(order.shape[1])[None], axis=1)
    return ranks[:, ids]


def _gaussian_blur(x: np.ndarray, sigma: float) -> np.ndarray:
    radius = max(1, int(3 * sigma))
    kernel = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    kernel /= kernel.sum()
    for axis in (1, 2):
        pad = [(0, 0)] * x.ndim
        pad[axis] = (radius, radius)
        padded = np.pad(x, pad, mode="reflect" if x.shape[axis] > radius else "edge")
        length = x.shape[axis]
        x = sum(w * np.take(padded, np.arange(i, i + length), axis=axis)
                for i, w in enumerate(kernel))
    return x


def replacement_values(x: np.ndarray, mode: str, valid_range, rngs: list[np.random.Generator],
                       sigma: float) -> np.ndarray:
    """(N, H, W, C) values that perturbed pixels take, drawn once per image."""
    if mode == "uniform":
        if valid_range is None:
            raise ValueError("uniform replacement needs the input's valid range: choose a "
                             "preprocessing preset")
        low, high = (np.asarray(v, np.float32) for v in valid_range)
        return np.stack([rng.uniform(low, high, x.shape[1:]) for rng in rngs]).astype(np.float32)
    if mode == "mean":
        return np.broadcast_to(x.mean(axis=(1, 2), keepdims=True), x.shape).astype(np.float32)
    return _gaussian_blur(x.astype(np.float64), sigma).astype(np.float32)


def perturbation_curves(score_fn: Callable[[np.ndarray, np.ndarray], np.ndarray], x: np.ndarray,
                        ranks: np.ndarray, replacement: np.ndarray, steps: int,
                        chunk: int = 256) -> np.ndarray:
    """(N, steps + 1) scores; column k after the k first patches were replaced.

    ``score_fn(batch, image_index)`` scores rows of perturbed copies, ``image_index``
    saying which image each row belongs to. Steps beyond the number of patches repeat the
    fully perturbed input.
    """
    n = len(x)
    pairs = np.stack(np.meshgrid(np.arange(n), np.arange(steps + 1), indexing="ij"), -1).reshape(-1, 2)
    scores = np.empty(len(pairs), np.float64)
    for start in range(0, len(pairs), chunk):
        image, step = pairs[start:start + chunk].T
        mask = (ranks[image] < step[:, None, None])[..., None]
        scores[start:start + chunk] = score_fn(np.where(mask, replacement[image], x[image]), image)
    return scores.reshape(n, steps + 1)


def fraction_perturbed(ranks: np.ndarray, steps: int) -> np.ndarray:
    """(N, steps + 1) share of pixels replaced at each step."""
    k = np.arange(steps + 1)
    return (ranks.reshape(len(ranks), -1, 1) < k).mean(axis=1)


def aopc(curves: np.ndarray) -> np.ndarray:
    """Per image: mean over steps k = 0..L of f(x_0) - f(x_k) (Samek et al. 2017)."""
    return (curves[:, :1] - curves).mean(axis=1)


def mean_and_stderr(values: np.ndarray) -> tuple[float, float]:
    values = np.asarray(values, np.float64)
    if len(values) < 2:
        return float(values.mean()) if len(values) else float("nan"), 0.0
    return float(values.mean()), float(values.std(ddof=1) / np.sqrt(len(values)))


def plot_curves(mean_relative: dict[str, np.ndarray], file, title: str) -> None:
    """curves.png: mean relative score per step, one line per method."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    figure = Figure(figsize=(6, 4.2), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for method, curve in mean_relative.items():
        axes.plot(np.arange(len(curve)), curve, label=method,
                  linestyle="--" if method == "random" else "-")
    axes.set_xlabel("perturbation step (patches replaced)")
    axes.set_ylabel("mean score / unperturbed score")
    axes.set_title(title, fontsize=10)
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(file, format="png")
