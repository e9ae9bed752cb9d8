"""Region perturbation (Samek et al. 2017): how fast the score falls as relevant patches go.

A heatmap is judged by the model, not by eye: relevance is summed over channels and over
non-overlapping patches (edge patches clipped), patches are ranked (most relevant first
for MoRF), and at step k the k first-ranked patches hold their replacement values. The
replacement values of an image are drawn once, so step k+1 is step k with one more patch
replaced and the curve is monotone in what it removes. Randomness comes from one
generator per image, so results do not depend on how images are batched. Perturbed
copies are built chunk by chunk, so memory is bounded by the chunk, not images x steps.
ROAD's replacement (:mod:`xai_cli.measures.imputation`) is the exception that depends on the
step: it is imputed from the pixels still there, for each step's region anew.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import BinaryIO

import numpy as np

from ..catalogue import REPLACEMENTS, SIGNAL_REPLACEMENTS, WORD_REPLACEMENTS  # noqa: F401 (protocols)
from ..engine import grids
from .imputation import LinearInterpolation, NoisyLinearImputation

ORDERS = ("morf", "lerf", "random")


def patch_ids(shape: tuple[int, ...], patch: tuple[int, ...]) -> tuple[np.ndarray, int]:
    """Map every position to its patch.

    Parameters
    ----------
    shape : (H, W) of an image, or (T, H, W) of a clip.
    patch : patch size, one per axis of ``shape`` (ph, pw or pt, ph, pw), tiled from the
        first position; edge patches are clipped.

    Returns
    -------
    ids : int array of ``shape``, the patch id in row-major order over the patch grid
        (``row * ncols + col`` for an image).
    count : number of patches, the product of ``ceil(size / patch)`` over the axes.
    """
    if len(shape) != len(patch):
        raise ValueError(f"patch {'x'.join(map(str, patch))} does not tile a {len(shape)}-D input")
    if min(patch) < 1:
        raise ValueError(f"patch size must be positive, got {'x'.join(map(str, patch))}")
    grid = tuple(-(-n // p) for n, p in zip(shape, patch))
    cells = np.meshgrid(*(np.arange(n) // p for n, p in zip(shape, patch)), indexing="ij")
    return np.ravel_multi_index(cells, grid), int(np.prod(grid))


def patch_scores(relevance: np.ndarray, patch: tuple[int, ...]) -> np.ndarray:
    """Relevance per patch.

    Parameters
    ----------
    relevance : (N, *shape, C) or (N, *shape) array (shape (H, W) or (T, H, W)); summed
        over channels first.
    patch : patch size, as in `patch_ids`.

    Returns
    -------
    (N, P) float64 array of relevance summed over each patch.
    """
    r = relevance.sum(axis=-1) if relevance.ndim == len(patch) + 2 else relevance
    ids, count = patch_ids(r.shape[1:], patch)
    offsets = (np.arange(len(r)) * count).reshape(-1, *[1] * ids.ndim) + ids[None]
    return np.bincount(offsets.ravel(), weights=r.astype(np.float64).ravel(),
                       minlength=len(r) * count).reshape(len(r), count)


def patch_order(scores: np.ndarray, order: str,
                rngs: Sequence[np.random.Generator]) -> np.ndarray:
    """Patch ids in the order they are perturbed.

    Parameters
    ----------
    scores : (N, P) patch scores from `patch_scores`.
    order : 'morf' (decreasing score), 'lerf' (increasing) or 'random'.
    rngs : one generator per image, used only by 'random' (a permutation each).

    Returns
    -------
    (N, P) patch ids, first perturbed first. Ties are broken by patch id (stable sort).
    """
    if order == "morf":
        return np.argsort(-scores, axis=1, kind="stable")
    if order == "lerf":
        return np.argsort(scores, axis=1, kind="stable")
    if order != "random":
        raise ValueError(f"unknown order '{order}'; expected one of {', '.join(ORDERS)}")
    if len(rngs) != len(scores):
        raise ValueError(f"random order needs one generator per image: {len(rngs)} for "
                         f"{len(scores)} images")
    return np.stack([rng.permutation(scores.shape[1]) for rng in rngs])


def pixel_ranks(order: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Step at which each pixel is perturbed: pixel is replaced at step k iff rank < k.

    Parameters
    ----------
    order : (N, P) patch ids from `patch_order`.
    ids : patch id map from `patch_ids`, (H, W) or (T, H, W).

    Returns
    -------
    (N, *ids.shape) int array, the rank of each pixel's patch in ``order`` (0 = first).
    """
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(order.shape[1])[None], axis=1)
    return ranks[:, ids]


def _gaussian_blur(x: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur over height and width, the axes before the channels (each
    frame of a clip on its own; truncated at 3 sigma, reflect padding)."""
    for axis in (x.ndim - 3, x.ndim - 2):
        x = np.moveaxis(np.tensordot(grids.gaussian_blur(x.shape[axis], sigma), x, axes=(1, axis)), 0, axis)
    return x


def replacement_values(x: np.ndarray, mode: str,
                       valid_range: tuple[float | np.ndarray, float | np.ndarray] | None,
                       rngs: Sequence[np.random.Generator],
                       sigma: float) -> np.ndarray | NoisyLinearImputation | LinearInterpolation:
    """Values that perturbed pixels (or time steps) take, drawn once per input.

    Parameters
    ----------
    x : (N, H, W, C) inputs, clips (N, T, H, W, C) or signals (N, T, C).
    mode : 'uniform' (per pixel and channel, uniform in the channel's valid range),
        'mean' (per-input per-channel mean), 'blur' (Gaussian-blurred copy of ``x``, frame
        by frame), 'road' (noisy linear imputation from the pixels that are not
        removed; images only); for signals also 'zero', 'noise' (Gaussian, with each
        channel's own mean and standard deviation over the signal) and 'linear' (a
        straight line across each run of removed steps, from the steps that are left).
    valid_range : (low, high), scalars or (C,) arrays; needed by 'uniform' only.
    rngs : one generator per input, used by 'uniform', 'noise' and 'road' only.
    sigma : standard deviation of the blur in pixels (> 0); used by 'blur' only.

    Returns
    -------
    float32 array shaped like ``x``; for 'road' a `NoisyLinearImputation` and for 'linear'
    a `LinearInterpolation`, which give the values for the positions removed at a step.
    """
    if mode == "uniform":
        if valid_range is None:
            raise ValueError("uniform replacement needs the input's valid range: choose a "
                             "preprocessing preset")
        if len(rngs) != len(x):
            raise ValueError(f"uniform replacement needs one generator per image: {len(rngs)} "
                             f"for {len(x)} images")
        low, high = (np.asarray(v, np.float64) for v in valid_range)
        return np.stack([rng.uniform(low, high, x.shape[1:]) for rng in rngs]).astype(np.float32)
    axes = tuple(range(1, x.ndim - 1))   # all but the input and the channel
    if mode == "mean":
        return np.broadcast_to(x.mean(axis=axes, keepdims=True, dtype=np.float64),
                               x.shape).astype(np.float32)
    if mode == "zero":
        return np.zeros_like(x, np.float32)
    if mode == "noise":
        if len(rngs) != len(x):
            raise ValueError(f"noise replacement needs one generator per input: {len(rngs)} "
                             f"for {len(x)} inputs")
        mean = x.mean(axis=axes, keepdims=True, dtype=np.float64)
        std = x.std(axis=axes, keepdims=True, dtype=np.float64)
        draws = np.stack([rng.standard_normal(x.shape[1:]) for rng in rngs])
        return (mean + std * draws).astype(np.float32)
    if mode == "linear":
        return LinearInterpolation(x)
    if mode == "blur":
        if sigma <= 0:
            raise ValueError(f"blur sigma must be positive, got {sigma}")
        return _gaussian_blur(x.astype(np.float64), sigma).astype(np.float32)
    if mode == "road":
        return NoisyLinearImputation(x, rngs)
    raise ValueError(f"unknown replacement '{mode}'; expected one of "
                     f"{', '.join(dict.fromkeys(REPLACEMENTS + SIGNAL_REPLACEMENTS))}")


def perturbation_curves(score_fn: Callable[[np.ndarray, np.ndarray], np.ndarray], x: np.ndarray,
                        ranks: np.ndarray, replacement: np.ndarray | NoisyLinearImputation,
                        steps: int, chunk: int = 256) -> np.ndarray:
    """Scores of the inputs as their patches are replaced one by one.

    Parameters
    ----------
    score_fn : ``score_fn(batch, image_index) -> (B,)`` scores a batch of perturbed
        copies; ``image_index`` (B,) says which image of ``x`` each row is from, so the
        caller can score each image's own target.
    x : (N, H, W, C) inputs, or clips (N, T, H, W, C).
    ranks : (N, H, W) or (N, T, H, W) pixel ranks from `pixel_ranks`.
    replacement : values shaped like ``x`` from `replacement_values`, or a callable (a
        `NoisyLinearImputation`, a `LinearInterpolation`) that gives them for each step's
        removed pixels.
    steps : number of perturbation steps L >= 0. Steps beyond the number of patches
        repeat the fully perturbed input, so the curve always has L + 1 columns.
    chunk : rows per ``score_fn`` call; bounds the memory of the perturbed copies.

    Returns
    -------
    (N, steps + 1) float64 array; column 0 scores the unperturbed input and column k the
    input whose k first-ranked patches were replaced.
    """
    n = len(x)
    image = np.repeat(np.arange(n), steps + 1)
    step = np.tile(np.arange(steps + 1), n)
    scores = np.empty(len(image), np.float64)
    for start in range(0, len(image), chunk):
        i, k = image[start:start + chunk], step[start:start + chunk]
        removed = ranks[i] < k.reshape(-1, *[1] * (ranks.ndim - 1))
        values = replacement(i, removed) if callable(replacement) else replacement[i]
        scores[start:start + chunk] = score_fn(np.where(removed[..., None], values, x[i]), i)
    return scores.reshape(n, steps + 1)


def fraction_perturbed(ranks: np.ndarray, steps: int) -> np.ndarray:
    """Share of pixels replaced at each step (edge patches are smaller).

    Parameters
    ----------
    ranks : (N, H, W) or (N, T, H, W) pixel ranks from `pixel_ranks`.
    steps : number of steps L, as in `perturbation_curves`.

    Returns
    -------
    (N, steps + 1) array, 0 at step 0 and 1 once every patch is replaced.
    """
    n, pixels = len(ranks), ranks[0].size
    count = int(ranks.max()) + 1
    flat = ranks.reshape(n, pixels) + (np.arange(n) * count)[:, None]
    sizes = np.bincount(flat.ravel(), minlength=n * count).reshape(n, count)
    replaced = np.concatenate([np.zeros((n, 1), np.int64), sizes.cumsum(axis=1)], axis=1)
    return replaced[:, np.minimum(np.arange(steps + 1), count)] / pixels


def aopc(curves: np.ndarray) -> np.ndarray:
    """Area over the perturbation curve of each image (Samek et al. 2017).

    Parameters
    ----------
    curves : (N, L + 1) scores from `perturbation_curves`.

    Returns
    -------
    (N,) array, ``1 / (L + 1) * sum_{k=0..L} (f(x_0) - f(x_k))``; average it over
    images (with `mean_and_stderr`) for the paper's AOPC.
    """
    return (curves[:, :1] - curves).mean(axis=1)


def area_between(morf: np.ndarray, lerf: np.ndarray) -> np.ndarray:
    """Area between the LeRF and the MoRF curve of each image.

    Harder to game than AOPC alone: AOPC rewards a heatmap that finds the few most relevant
    patches even if it ranks the rest at random, while the area also asks that removing the
    patches ranked least relevant leaves the score high (LeRF), so it needs the whole
    ranking right.

    Parameters
    ----------
    morf, lerf : (N, L + 1) scores from `perturbation_curves` in MoRF and LeRF order.

    Returns
    -------
    (N,) array, ``1 / (L + 1) * sum_k (f(x_k^lerf) - f(x_k^morf))``, which equals
    AOPC_morf - AOPC_lerf (both curves start at the same f(x_0)).
    """
    return (lerf - morf).mean(axis=1)


def mean_and_stderr(values: Sequence[float] | np.ndarray) -> tuple[float, float]:
    """Mean and standard error over images.

    Parameters
    ----------
    values : per-image values, e.g. from `aopc`.

    Returns
    -------
    mean : NaN for no values.
    stderr : ``std(ddof=1) / sqrt(N)``, 0 for fewer than two values.
    """
    values = np.asarray(values, np.float64)
    if len(values) < 2:
        return (float(values[0]) if len(values) else float("nan")), 0.0
    return float(values.mean()), float(values.std(ddof=1) / np.sqrt(len(values)))


LINESTYLES = {"morf": "-", "lerf": ":", "random": "--"}


def plot_curves(panels: dict[str, dict[tuple[str, str], np.ndarray]], file: str | BinaryIO,
                title: str, step: str = "patches replaced") -> None:
    """Draw curves.png: mean relative score (score / unperturbed score) per step.

    Parameters
    ----------
    panels : panel title (one per replacement protocol, side by side) ->
        (method, order) -> (L + 1,) curve. A method keeps its colour across orders;
        the line style tells the order (MoRF solid, LeRF dotted, random dashed).
    file : path or binary file object the PNG is written to (atomicity is the caller's).
    title : figure title.
    step : what a step does, for the x axis.
    """
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    figure = Figure(figsize=(max(6, 4.5 * len(panels)), 4.4), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, len(panels), sharey=True, squeeze=False)[0]
    methods = list(dict.fromkeys(method for curves in panels.values() for method, _ in curves))
    # ten methods take matplotlib's ten default colours; more take the 20 of tab20
    palette = [f"C{i}" for i in range(10)] if len(methods) <= 10 else \
        [matplotlib.colormaps["tab20"](i) for i in range(20)]
    colours = {method: palette[i % len(palette)] for i, method in enumerate(methods)}
    for ax, (name, curves) in zip(axes, panels.items()):
        for (method, order), curve in curves.items():
            ax.plot(np.arange(len(curve)), curve, color=colours[method], linestyle=LINESTYLES[order],
                    label=f"{method} lerf" if order == "lerf" else method)
        ax.set_xlabel(f"perturbation step ({step})")
        ax.set_title(name, fontsize=10)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8 if len(methods) <= 10 else 7)
    axes[0].set_ylabel("mean score / unperturbed score")
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    figure.savefig(file, format="png")
