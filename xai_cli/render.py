"""Relevance arrays to pictures: heatmaps, overlays and side-by-side figures.

Colours come from look-up tables built once from matplotlib colormaps and indexed
with numpy, so thousands of heatmaps cost no figure. Signed relevance (LRP) uses a
diverging map centred on zero, red positive and blue negative as in the LRP papers;
magnitudes (sensitivity) use a sequential map rising from black.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

DIVERGING = "bwr"
SEQUENTIAL = "afmhot"
_LUMA = np.array([0.299, 0.587, 0.114])
_DPI = 100
_PAD, _LABEL, _TITLE = 0.1, 0.3, 0.35  # inches around, above each panel, above the figure


@lru_cache(maxsize=None)
def _lut(signed: bool) -> np.ndarray:
    # odd length for the diverging map, so that zero has an entry of its own: pure white
    from matplotlib import colormaps
    n = 257 if signed else 256
    colours = colormaps[DIVERGING if signed else SEQUENTIAL].resampled(n)(np.arange(n))
    return np.round(colours[:, :3] * 255).astype(np.uint8)


def _normalised(relevance: np.ndarray, signed: bool) -> np.ndarray:
    r = np.asarray(relevance, np.float64)
    if r.ndim == 3:
        r = r.sum(axis=-1)
    if not np.isfinite(r).all():
        raise ValueError("relevance contains NaN or Inf")
    peak = np.abs(r).max(initial=0.0)
    r = r / peak if peak > 0 else np.zeros_like(r)
    return r if signed else np.abs(r)


def heatmap(relevance: np.ndarray, signed: bool) -> np.ndarray:
    """Colour picture of a relevance map.

    Parameters
    ----------
    relevance : ndarray
        ``(H, W, C)`` or ``(H, W)``; channels are summed first.
    signed : bool
        True: diverging map scaled by the largest ``|R|``, zero white, positive red,
        negative blue. False: magnitudes on a sequential map, zero black, largest white.

    Returns
    -------
    ndarray
        uint8 ``(H, W, 3)``. All-zero relevance gives white (signed) or black.

    Raises
    ------
    ValueError
        If the relevance contains NaN or Inf.
    """
    lut = _lut(signed)
    r = _normalised(relevance, signed)
    position = (r + 1) / 2 if signed else r
    return lut[np.rint(position * (len(lut) - 1)).astype(np.intp)]


def overlay(heat: np.ndarray, display: np.ndarray, relevance: np.ndarray,
            signed: bool) -> np.ndarray:
    """A heatmap blended over a grey copy of the input, opaque where relevance is strong.

    Parameters
    ----------
    heat : ndarray
        uint8 ``(H, W, 3)`` from :func:`heatmap`.
    display : ndarray
        uint8 ``(H, W, 3)`` RGB input picture.
    relevance : ndarray
        The relevance ``heat`` was made from; its normalised magnitude ``m`` sets the
        opacity ``0.85 * sqrt(m)``, so weak relevance leaves the image visible.
    signed : bool
        As for :func:`heatmap`.

    Returns
    -------
    ndarray
        uint8 ``(H, W, 3)``; where relevance is zero, the image's luma in all channels.
    """
    grey = (np.asarray(display, np.float64) @ _LUMA)[..., None]
    alpha = 0.85 * np.sqrt(np.abs(_normalised(relevance, signed)))[..., None]
    return np.rint(grey * (1 - alpha) + heat * alpha).astype(np.uint8)


def upscale(image: np.ndarray, min_side: int = 256) -> np.ndarray:
    """Repeat pixels by the smallest integer factor that makes both sides ``>= min_side``.

    Parameters
    ----------
    image : ndarray
        ``(H, W)`` or ``(H, W, C)``.
    min_side : int
        Target length of the shorter side; larger images are returned unchanged.

    Returns
    -------
    ndarray
        Nearest-neighbour enlargement, same dtype.
    """
    factor = max(1, -(-min_side // min(image.shape[:2])))
    return image.repeat(factor, axis=0).repeat(factor, axis=1)


def grid(display: np.ndarray, panels: list[tuple[str, np.ndarray]], file,
         title: str | None = None) -> None:
    """A PNG figure of the input and its heatmaps side by side, named above each.

    Every panel shows the picture at an integer scale (see :func:`upscale`), pixel for
    pixel, so small inputs stay sharp. No pyplot state is touched, so it is safe to
    call from worker threads and leaves nothing open.

    Parameters
    ----------
    display : ndarray
        uint8 ``(H, W, 3)`` input picture.
    panels : list of (str, ndarray)
        Method name and uint8 ``(H, W, 3)`` heatmap, in display order.
    file : str, Path or binary file object
        Where the PNG goes.
    title : str, optional
        Line above the figure, e.g. the input's name.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    images = [upscale(image) for image in [display, *(image for _, image in panels)]]
    names = ["input", *(name for name, _ in panels)]
    height = max(image.shape[0] for image in images) / _DPI
    widths = [image.shape[1] / _DPI for image in images]
    top = _LABEL + (_TITLE if title else 0)
    size = (sum(widths) + _PAD * (len(images) + 1), height + top + _PAD)
    figure = Figure(figsize=size, dpi=_DPI)
    FigureCanvasAgg(figure)
    left = _PAD
    for name, image, width in zip(names, images, widths):
        axes = figure.add_axes((left / size[0], _PAD / size[1], width / size[0], height / size[1]))
        axes.imshow(image, interpolation="nearest")
        axes.set_title(name, fontsize=10)
        axes.set_axis_off()
        left += width + _PAD
    if title:
        figure.suptitle(title, fontsize=11, y=1 - 0.1 / size[1], va="top")
    figure.savefig(file, format="png")
