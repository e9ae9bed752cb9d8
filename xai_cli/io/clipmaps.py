"""A clip's relevance as pictures: a frame grid, animated heatmaps, relevance over time.

Every picture of one clip and method shares one colour scale over all its frames
(:func:`~xai_cli.io.render.heatmap` of the whole clip at once), so that a frame that
looks hotter is hotter. Relevance over time is the summed positive and negative
relevance of each frame, as Samek et al. (2017, Fig. 2 C) show it for an action video.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from . import render

CELL = (64, 128)      # pixels: a grid cell's shorter side at least, its longer side at most
ANIMATION_SIDE = 160  # pixels: an animated heatmap's frame, shorter side at least
FRAME_MS = 125.0      # time between frames of an animation when the clip does not say
GAP = 2               # pixels between the cells of a grid row
PAD, LABEL = 8, 18    # pixels: around the grid's parts; below each row (the frame numbers)
BAR = (140, 10)       # pixels: a row's colour bar
FAST_PNG = 1          # zlib level of the grid: at the default, encoding took as long as drawing


def cells(frames: np.ndarray, sizes: tuple[int, int] = CELL) -> np.ndarray:
    """Frames ``(T, H, W, 3)`` at a size that reads in a grid: small ones repeated pixel
    for pixel, large ones shrunk."""
    height, width = frames.shape[1:3]
    if min(height, width) < sizes[0]:
        return np.stack([render.upscale(f, sizes[0]) for f in frames])
    if max(height, width) <= sizes[1]:
        return frames
    factor = sizes[1] / max(height, width)
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    return np.stack([np.asarray(Image.fromarray(f).resize(size, Image.BILINEAR)) for f in frames])


def _row(frames: np.ndarray) -> np.ndarray:
    """Frames side by side with a white gap."""
    gap = np.full((frames.shape[1], GAP, 3), 255, np.uint8)
    return np.concatenate([part for f in frames for part in (f, gap)][:-1], axis=1)


@cache
def _font(size: int):
    """Matplotlib's DejaVu Sans at ``size`` pixels, as its figures write."""
    import matplotlib
    return ImageFont.truetype(str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"),
                              size)


def grid(display: np.ndarray, panels: Sequence[render.Panel], frames: Sequence[int],
         file: str | BinaryIO, title: str | None = None) -> None:
    """A PNG of the clip's frames in a row, numbered as in the clip, and below a row of
    heatmaps per method (``panel.image`` holds the method's heatmaps ``(T, H, W, 3)``),
    each row with its colour bar. Composed with Pillow, pixel for pixel: a figure library
    would take ten times longer, and the grid is written for every clip of a job."""
    rows = [_row(cells(display)), *(_row(cells(p.image)) for p in panels)]
    cell = cells(display[:1]).shape[2]
    font, small = _font(13), _font(10)
    names = ["clip", *(p.name for p in panels)]
    left = max(font.getbbox(n)[2] for n in names) + 2 * PAD
    top = (font.getbbox(title)[3] + 2 * PAD) if title else PAD
    height, width = rows[0].shape[:2]
    size = (left + width + 2 * PAD + BAR[0] + 2 * PAD, top + len(rows) * (height + LABEL) + PAD)
    canvas = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(canvas)
    if title:
        draw.text((size[0] / 2, PAD), title, fill="black", font=font, anchor="mt")
    for r, (image, name, panel) in enumerate(zip(rows, names, [None, *panels])):
        y = top + r * (height + LABEL)
        canvas.paste(Image.fromarray(image), (left, y))
        draw.text((left - PAD, y + height / 2), name, fill="black", font=font, anchor="rm")
        if panel is None:
            for i, frame in enumerate(frames):
                draw.text((left + (cell + GAP) * i + cell / 2, y + height + 2), str(frame),
                          fill="black", font=small, anchor="mt")
            continue
        x, middle = left + width + 2 * PAD, y + height / 2
        canvas.paste(Image.fromarray(render.colour_strip(panel, BAR)), (x, round(middle - BAR[1])))
        ends = ([f"{-panel.peak:.2g}", "0", f"{panel.peak:.2g}"] if panel.signed
                else ["0", f"{panel.peak:.2g}"])
        for text, at, anchor in zip(ends, np.linspace(x, x + BAR[0], len(ends)),
                                    ("lt", "mt", "rt") if panel.signed else ("lt", "rt")):
            draw.text((at, middle + 3), text, fill="black", font=small, anchor=anchor)
    canvas.save(file, format="PNG", compress_level=FAST_PNG)


def animation(frames: np.ndarray, file: str | BinaryIO, frame_ms: float | None = None,
              sizes: tuple[int, int] = (ANIMATION_SIDE, 4 * ANIMATION_SIDE)) -> None:
    """An animated GIF of ``frames`` ``(T, H, W, 3)``, looping, at ``sizes`` (see
    :func:`cells`). Colours are reduced by a fast octree, 80 times quicker than median cut
    at the same look for heatmaps, so that drawing keeps up with a GPU."""
    shown = cells(frames, sizes)
    pictures = [Image.fromarray(f).quantize(255, Image.Quantize.FASTOCTREE) for f in shown]
    pictures[0].save(file, format="GIF", save_all=True, append_images=pictures[1:],
                     duration=round(frame_ms or FRAME_MS), loop=0, disposal=1)


def side_by_side(display: np.ndarray, heat: np.ndarray) -> np.ndarray:
    """Each frame ``(T, H, W, 3)`` with its heatmap to its right."""
    gap = np.full((*display.shape[:2], GAP, 3), 255, np.uint8)
    return np.concatenate([display, gap, heat], axis=2)


def over_time(relevance: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each frame's summed positive and negative relevance, of ``(T, ...)``."""
    flat = np.asarray(relevance, np.float64).reshape(len(relevance), -1)
    return np.where(flat > 0, flat, 0).sum(axis=1), np.where(flat < 0, flat, 0).sum(axis=1)


def time_plot(curves: dict[str, tuple[np.ndarray, np.ndarray]], frames: Sequence[int],
              file: str | BinaryIO, title: str | None = None) -> None:
    """A PNG of relevance over time: per method (one panel each, stacked), the positive
    (red) and negative (blue) relevance of each frame, against the clip's frame numbers."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    height = 0.9 + 1.6 * len(curves)   # inches; margins fixed: tight_layout would draw twice
    figure = Figure(figsize=(6.4, height), dpi=100)
    FigureCanvasAgg(figure)
    figure.subplots_adjust(left=0.13, right=0.97, top=1 - 0.45 / height, bottom=0.5 / height,
                           hspace=0.15)
    axes = figure.subplots(len(curves), 1, sharex=True, squeeze=False)[:, 0]
    steps = np.arange(len(frames))
    for ax, (method, (positive, negative)) in zip(axes, curves.items()):
        ax.fill_between(steps, 0, positive, color="#d62728", alpha=0.35, step="mid")
        ax.plot(steps, positive, color="#d62728", drawstyle="steps-mid", label="positive")
        if negative.any():
            ax.fill_between(steps, 0, negative, color="#1f77b4", alpha=0.35, step="mid")
            ax.plot(steps, negative, color="#1f77b4", drawstyle="steps-mid", label="negative")
        ax.axhline(0, color="0.4", linewidth=0.6)
        ax.set_ylabel(method, fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper right")
    axes[-1].set_xticks(steps, [str(f) for f in frames], fontsize=7)
    axes[-1].set_xlabel("frame")
    if title:
        figure.suptitle(title, fontsize=10, y=1 - 0.12 / height, va="top")
    figure.savefig(file, format="png", pil_kwargs={"compress_level": FAST_PNG})
