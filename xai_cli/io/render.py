"""Relevance arrays to pictures: heatmaps, overlays and side-by-side figures.

Colours come from look-up tables built once from matplotlib colormaps and indexed
with numpy, so thousands of heatmaps cost no figure. Signed relevance (LRP) uses a
diverging map centred on zero, red positive and blue negative as in the LRP papers;
magnitudes (sensitivity) use a sequential map rising from black.

The colour scale is set by a high percentile of ``|R|``, not its maximum: on photos a
handful of extreme pixels would otherwise take the whole scale and leave the rest of
the relevance nearly white. Pixels beyond it get the strongest colour.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import BinaryIO

import numpy as np

DIVERGING_MAPS = ("bwr", "seismic", "coolwarm", "RdBu_r", "PuOr_r")
SEQUENTIAL_MAPS = ("afmhot", "hot", "inferno", "viridis", "cividis", "gray")
COLOUR_BLIND_SAFE = ("RdBu_r", "PuOr_r", "viridis", "cividis", "inferno")
DEFAULT_CLIP = 99.5
DEFAULT_OPACITY = 0.85
_LUMA = np.array([0.299, 0.587, 0.114])
_DPI = 100
_PAD, _LABEL, _TITLE, _BAR = 0.1, 0.3, 0.35, 0.45  # inches: around, above each panel,
#                                                    above the figure, colour bar below


@dataclass(frozen=True)
class Style:
    """How relevance becomes colour: shared by every command that draws heatmaps.

    ``clip``: the percentile of ``|R|`` (as drawn) that gets the strongest colour
    (100: the maximum). ``diverging`` colours signed relevance, ``sequential`` magnitudes.
    ``opacity``: the overlay's opacity where relevance is strongest.
    """

    clip: float = DEFAULT_CLIP
    diverging: str = DIVERGING_MAPS[0]
    sequential: str = SEQUENTIAL_MAPS[0]
    opacity: float = DEFAULT_OPACITY

    def cmap(self, signed: bool) -> str:
        return self.diverging if signed else self.sequential

    @classmethod
    def choose(cls, clip: float = DEFAULT_CLIP, cmaps: tuple[str, ...] = (),
               opacity: float = DEFAULT_OPACITY) -> Style:
        """A style from command-line choices: each colour map replaces the default of its
        kind (diverging for signed methods, sequential for magnitudes)."""
        chosen = {}
        for name in cmaps:
            kind = "diverging" if name in DIVERGING_MAPS else "sequential"
            if chosen.get(kind, name) != name:
                raise ValueError(f"two {kind} colour maps given: {chosen[kind]} and {name}")
            chosen[kind] = name
        return cls(clip, **chosen, opacity=opacity)


@cache
def colour_table(name: str, signed: bool) -> np.ndarray:
    """The colour map ``name`` as uint8 RGB rows, from the most negative (or zero) to the
    strongest relevance; of odd length for a diverging map, so that zero has an entry of
    its own: its centre."""
    from matplotlib import colormaps
    n = 257 if signed else 256
    colours = colormaps[name].resampled(n)(np.arange(n))
    return np.round(colours[:, :3] * 255).astype(np.uint8)


def finite(relevance: np.ndarray) -> np.ndarray:
    """A map as float64, refused where it is not finite; each kind hands over what it draws
    (an image its channels summed)."""
    r = np.asarray(relevance, np.float64)
    if not np.isfinite(r).all():
        raise ValueError("relevance contains NaN or Inf")
    return r


def scale(relevance: np.ndarray, clip: float = DEFAULT_CLIP) -> float:
    """The ``|R|`` that gets the strongest colour: the ``clip`` percentile of ``|R|``,
    or the maximum where that percentile is zero (sparse maps)."""
    magnitude = np.abs(finite(relevance))
    peak = magnitude.max(initial=0.0)
    if clip >= 100 or peak == 0:
        return float(peak)
    return float(np.percentile(magnitude, clip)) or float(peak)


def _normalised(relevance: np.ndarray, signed: bool, clip: float) -> np.ndarray:
    r = finite(relevance)
    peak = scale(r, clip)
    r = np.clip(r / peak, -1, 1) if peak > 0 else np.zeros_like(r)
    return r if signed else np.abs(r)


def heatmap(relevance: np.ndarray, signed: bool, style: Style = Style()) -> np.ndarray:
    """Colour picture of a relevance map.

    Parameters
    ----------
    relevance : ndarray
        ``(H, W)`` as drawn (an image's channels summed, see :mod:`xai_cli.kinds.image`).
    signed : bool
        True: diverging map, zero at its centre (white for ``bwr``), positive red,
        negative blue. False: magnitudes on a sequential map, zero at its low end.
    style : Style
        Colour maps and the percentile that sets the scale (see :func:`scale`).

    Returns
    -------
    ndarray
        uint8 ``(H, W, 3)``. All-zero relevance gives the map's centre (signed) or low end.

    Raises
    ------
    ValueError
        If the relevance contains NaN or Inf.
    """
    lut = colour_table(style.cmap(signed), signed)
    r = _normalised(relevance, signed, style.clip)
    position = (r + 1) / 2 if signed else r
    return lut[np.rint(position * (len(lut) - 1)).astype(np.intp)]


def overlay(heat: np.ndarray, display: np.ndarray, relevance: np.ndarray,
            signed: bool, style: Style = Style()) -> np.ndarray:
    """A heatmap blended over a grey copy of the input, opaque where relevance is strong.

    Parameters
    ----------
    heat : ndarray
        uint8 ``(H, W, 3)`` from :func:`heatmap`.
    display : ndarray
        uint8 ``(H, W, 3)`` RGB input picture.
    relevance : ndarray
        The relevance ``heat`` was made from; its normalised magnitude ``m`` sets the
        opacity ``style.opacity * sqrt(m)``, so weak relevance leaves the image visible.
    signed : bool
        As for :func:`heatmap`.
    style : Style
        As for :func:`heatmap`.

    Returns
    -------
    ndarray
        uint8 ``(H, W, 3)``; where relevance is zero, the image's luma in all channels.
    """
    grey = (np.asarray(display, np.float64) @ _LUMA)[..., None]
    alpha = style.opacity * np.sqrt(np.abs(_normalised(relevance, signed, style.clip)))[..., None]
    return np.rint(grey * (1 - alpha) + heat * alpha).astype(np.uint8)


@dataclass(frozen=True)
class Panel:
    """One heatmap of a :func:`grid` figure, with what its colour bar needs."""

    name: str
    image: np.ndarray       # uint8 (H, W, 3) from heatmap()
    signed: bool
    peak: float             # |R| at the ends of the colour bar: scale(relevance, style.clip)
    cmap: str


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


def grid(display: np.ndarray, panels: list[Panel], file: str | Path | BinaryIO,
         title: str | None = None) -> None:
    """A PNG figure of the input and its heatmaps side by side, named above each, with
    each heatmap's colour bar and scale below it.

    Every panel shows the picture at an integer scale (see :func:`upscale`), pixel for
    pixel, so small inputs stay sharp. No pyplot state is touched, so it is safe to
    call from worker threads and leaves nothing open.

    Parameters
    ----------
    display : ndarray
        uint8 ``(H, W, 3)`` input picture.
    panels : list of Panel
        The heatmaps, in display order.
    file : str, Path or binary file object
        Where the PNG goes.
    title : str, optional
        Line above the figure, e.g. the input's name.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    images = [upscale(image) for image in [display, *(panel.image for panel in panels)]]
    height = max(image.shape[0] for image in images) / _DPI
    widths = [image.shape[1] / _DPI for image in images]
    top = _LABEL + (_TITLE if title else 0)
    size = (sum(widths) + _PAD * (len(images) + 1), height + top + _BAR + _PAD)
    figure = Figure(figsize=size, dpi=_DPI)
    FigureCanvasAgg(figure)
    bottom = _PAD + _BAR
    left = _PAD
    for panel, image, width in zip([None, *panels], images, widths):
        axes = figure.add_axes((left / size[0], bottom / size[1], width / size[0], height / size[1]))
        axes.imshow(image, interpolation="nearest")
        axes.set_title(panel.name if panel else "input", fontsize=10)
        axes.set_axis_off()
        if panel:
            bar = figure.add_axes((left / size[0], (_PAD + 0.25) / size[1], width / size[0],
                                   0.12 / size[1]))
            colour_bar(bar, panel)
        left += width + _PAD
    if title:
        figure.suptitle(title, fontsize=11, y=1 - 0.1 / size[1], va="top")
    figure.savefig(file, format="png")


def colour_strip(panel: Panel, size: tuple[int, int]) -> np.ndarray:
    """The panel's colour map from end to end as a picture ``size`` (width, height) pixels,
    uint8 ``(height, width, 3)``."""
    lut = colour_table(panel.cmap, panel.signed)
    return np.repeat(lut[np.linspace(0, len(lut) - 1, size[0]).round().astype(np.intp)][None],
                     size[1], axis=0)


def colour_bar(axes, panel: Panel) -> None:
    """The panel's colour map from end to end, labelled with the relevance at its ends."""
    lut = colour_table(panel.cmap, panel.signed)
    axes.imshow(lut[None], aspect="auto", interpolation="nearest", extent=(0, 1, 0, 1))
    ticks = (0, 0.5, 1) if panel.signed else (0, 1)
    labels = ([f"{-panel.peak:.2g}", "0", f"{panel.peak:.2g}"] if panel.signed
              else ["0", f"{panel.peak:.2g}"])
    axes.set_xticks(ticks, labels, fontsize=7)
    ends = axes.get_xticklabels()
    ends[0].set_horizontalalignment("left")    # inside the panel, clear of its neighbours
    ends[-1].set_horizontalalignment("right")
    axes.set_yticks([])
    axes.tick_params(length=2, pad=1)
