"""Replacements imputed, at each step, from what has not been removed: ROAD's noisy linear
imputation for images, and linear interpolation across time for signals.

ROAD (Rong et al. 2022, "A consistent and efficient evaluation strategy for attribution
methods").

Replacing pixels by noise or a blur leaves a trace of where they were: the shape of the
removed region itself can move the score, so MoRF and LeRF can disagree about which
heatmap is better. ROAD fills each removed pixel with the weighted mean of its eight
neighbours (1/6 for the four direct ones, 1/12 for the diagonals, renormalised where
the image ends), removed neighbours included, which is one sparse linear system per
image over the removed pixels; a little Gaussian noise is then added so that the filled
values do not betray the region by being too smooth. Each connected region is solved
from the pixels around it, so the fill carries no information from inside.

The noise is 0.01 of each channel's standard deviation over the image: ROAD's 0.01 on
inputs normalised to unit variance, in the units of whatever input the model takes. It is
drawn once per image (seeded), like uniform replacement, so the curve depends neither
on batching nor on which other methods run.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# (row offset, column offset, weight); the weights of a pixel inside the image sum to 1
NEIGHBOURS = tuple((dy, dx, 1 / 6 if dy == 0 or dx == 0 else 1 / 12)
                   for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx)
NOISE = 0.01


def impute(image: np.ndarray, removed: np.ndarray) -> np.ndarray:
    """``image`` (H, W, C) with its ``removed`` (H, W) pixels replaced by the solution of
    ``x_i = sum_n w_n x_n / sum_n w_n`` over each removed pixel's neighbours n inside the
    image, without noise. With every pixel removed there is nothing to interpolate from:
    each channel's mean stands in (the system would be singular)."""
    from scipy.sparse import csc_matrix
    from scipy.sparse.linalg import splu
    height, width, channels = image.shape
    flat_removed = removed.ravel()
    unknown = np.flatnonzero(flat_removed)
    out = np.array(image, np.float64)
    if not len(unknown):
        return out
    if len(unknown) == flat_removed.size:
        return np.broadcast_to(out.mean(axis=(0, 1)), out.shape).copy()
    variable = np.full(flat_removed.size, -1)
    variable[unknown] = np.arange(len(unknown))
    pixels = out.reshape(-1, channels)
    row, column = np.divmod(unknown, width)
    diagonal = np.zeros(len(unknown))
    rhs = np.zeros((len(unknown), channels))
    equations, variables, weights = [], [], []
    for dy, dx, weight in NEIGHBOURS:
        y, x = row + dy, column + dx
        inside = np.flatnonzero((y >= 0) & (y < height) & (x >= 0) & (x < width))
        neighbour = y[inside] * width + x[inside]
        diagonal[inside] += weight
        known = ~flat_removed[neighbour]
        rhs[inside[known]] += weight * pixels[neighbour[known]]
        equations.append(inside[~known])
        variables.append(variable[neighbour[~known]])
        weights.append(np.full((~known).sum(), -weight))
    at = np.arange(len(unknown))
    system = csc_matrix((np.concatenate([diagonal, *weights]),
                         (np.concatenate([at, *equations]), np.concatenate([at, *variables]))),
                        shape=(len(unknown), len(unknown)))
    pixels[unknown] = splu(system).solve(rhs)
    return out


class NoisyLinearImputation:
    """ROAD replacement values for a batch: ``imputation(images, removed)`` gives, for each
    row, image ``images[k]`` of ``x`` with its ``removed[k]`` pixels imputed plus its
    noise (the values of kept pixels are those of the image)."""

    def __init__(self, x: np.ndarray, rngs: Sequence[np.random.Generator], noise: float = NOISE):
        if len(rngs) != len(x):
            raise ValueError(f"ROAD needs one generator per image: {len(rngs)} for {len(x)} "
                             "images")
        self.x = x
        scale = noise * x.std(axis=(1, 2), keepdims=True, dtype=np.float64)
        self.noise = np.stack([rng.standard_normal(x.shape[1:]) for rng in rngs]) * scale

    def __call__(self, images: np.ndarray, removed: np.ndarray) -> np.ndarray:
        return np.stack([impute(self.x[i], r) + np.where(r[..., None], self.noise[i], 0)
                         for i, r in zip(images, removed)]).astype(np.float32)


class LinearInterpolation:
    """A signal's removed steps as a straight line between the nearest steps still there,
    per channel, across each run of removed steps however many windows it spans (the line
    carries no value from inside the run); before the first or after the last step still
    there, that step's value. With every step removed, each channel's mean stands in.

    ``interpolation(inputs, removed)`` gives, for each row, signal ``inputs[k]`` of ``x``
    ``(N, T, C)`` with its ``removed[k]`` ``(T,)`` steps interpolated."""

    def __init__(self, x: np.ndarray):
        self.x = x

    def __call__(self, inputs: np.ndarray, removed: np.ndarray) -> np.ndarray:
        x = np.asarray(self.x[inputs], np.float64)                     # (B, T, C)
        rows, steps = np.indices(removed.shape)
        kept = ~removed
        # each step's nearest step still there, before and after it (-1, T: none)
        before = np.maximum.accumulate(np.where(kept, steps, -1), axis=1)
        after = np.minimum.accumulate(np.where(kept, steps, steps.shape[1])[:, ::-1], axis=1)[:, ::-1]
        low, high = np.maximum(before, 0), np.minimum(after, steps.shape[1] - 1)
        low = np.where(before < 0, high, low)      # before the first step still there: its value
        high = np.where(after >= steps.shape[1], low, high)   # after the last: the last's
        span = np.maximum(high - low, 1)
        share = ((steps - low) / span)[..., None]
        line = (1 - share) * x[rows, low] + share * x[rows, high]
        everything = ~kept.any(axis=1)             # nothing to draw from: each channel's mean
        line[everything] = x[everything].mean(axis=1, keepdims=True)
        return np.where(removed[..., None], line, x).astype(np.float32)
