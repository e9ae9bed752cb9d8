"""Relevance arrays to pictures: heatmaps, overlays and side-by-side grids.

Colour maps are looked up in a 256-entry table built once from matplotlib, so that
thousands of heatmaps cost no figure creation. Signed relevance uses a diverging map
centred on zero (red positive, blue negative, as in the LRP papers); magnitudes use
a sequential map.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

DIVERGING = "bwr"
SEQUENTIAL = "afmhot"


@lru_cache(maxsize=None)
def _lut(name: str) -> np.ndarray:
    from matplotlib import colormaps
    return (colormaps[name](np.linspace(0, 1, 256))[:, :3] * 255).round().astype(np.uint8)


def normalise(relevance: np.ndarray, signed: bool) -> np.ndarray:
    """Channel sum scaled to [-1, 1] (signed) or [0, 1] (magnitude), by the max |value|."""
    r = np.asarray(relevance, np.float64)
    if r.ndim == 3:
        r = r.sum(axis=-1)
    if not np.all(np.isfinite(r)):
        raise ValueError("relevance contains NaN or Inf")
    peak = np.abs(r).max()
    r = r / peak if peak > 0 else np.zeros_like(r)
    return r if signed else np.abs(r)


def heatmap(relevance: np.ndarray, signed: bool) -> np.ndarray:
    """uint8 (H, W, 3) picture of relevance (H, W) or (H, W, C)."""
    r = normalise(relevance, signed)
    position = (r + 1) / 2 if signed else r
    return _lut(DIVERGING if signed else SEQUENTIAL)[np.round(position * 255).astype(np.int64)]


def overlay(heat: np.ndarray, display: np.ndarray, relevance: np.ndarray, signed: bool) -> np.ndarray:
    """The heatmap over a grey copy of the image, opaque where relevance is strong."""
    grey = np.asarray(display, np.float64).mean(axis=-1, keepdims=True).repeat(3, axis=-1)
    alpha = (np.sqrt(np.abs(normalise(relevance, signed))) * 0.85)[..., None]
    return np.round(grey * (1 - alpha) + heat * alpha).astype(np.uint8)


def upscale(image: np.ndarray, min_side: int = 256) -> np.ndarray:
    """Nearest-neighbour integer upscaling so that small inputs are visible in figures."""
    factor = max(1, -(-min_side // min(image.shape[:2])))
    return image.repeat(factor, axis=0).repeat(factor, axis=1)


def grid(display: np.ndarray, panels: list, file, title: str | None = None) -> None:
    """One PNG figure: the image, then each ``(name, heatmap)``, side by side."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    images = [("input", display)] + list(panels)
    figure = Figure(figsize=(2.4 * len(images), 2.7 if title else 2.5), dpi=100)
    FigureCanvasAgg(figure)
    for i, (name, image) in enumerate(images):
        axes = figure.add_subplot(1, len(images), i + 1)
        axes.imshow(upscale(image), interpolation="nearest")
        axes.set_title(name, fontsize=10)
        axes.set_axis_off()
    if title:
        figure.suptitle(title, fontsize=11)
    figure.tight_layout(rect=(0, 0, 1, 0.9) if title else None)
    figure.savefig(file, format="png")
