"""A signal's relevance as pictures: the waveform coloured by relevance, a spectrogram, a thumbnail.

A signal is ``(T, C)``: T time steps of C channels (audio, accelerometers, ECG, EEG), and
its relevance has the same shape. It is drawn as Becker et al. (2018) draw audio: the
waveform with relevance as the colour of the line, red where it speaks for the class and
blue against (a diverging map centred on zero; methods that give magnitudes use the
sequential map). The colours are the image heatmaps' own (:mod:`~xai_cli.io.render`'s maps
and percentile scale), and one scale covers the whole signal, all channels: a channel that
looks hotter is hotter.

A line alone reads badly on white: the diverging map is white at zero, the sequential maps
end in white or pale yellow. So the signal is drawn twice, a wider line (grey; dark grey for
magnitudes, whose maps rise from black) and over it a thinner one in relevance colours whose
opacity rises with ``|R|`` (as :func:`render.overlay` blends a heatmap over a photo): weak
relevance leaves a plain signal, strong relevance stands out in colour with an outline, and
the waveform's shape is never lost. A colour band under the line shows the same colours at
full strength, for the reader who compares steps without following the line.

More steps than pixel columns (audio) are drawn as each column's envelope (its minimum and
maximum) in the colour of its strongest relevance, line and band alike: long recordings
cost little, and a one-sample spike is not lost between pixels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import BinaryIO, NamedTuple

import numpy as np

from . import render

FAST_PNG = 1          # zlib level: at the default, encoding took as long as drawing
DPI = 100
WIDTH = 8.0           # inches, every figure but the thumbnail
MANY = 8              # more channels than this: one heat strip per channel (see plot)
THUMBNAIL = (160, 64)  # pixels
LANES = 4             # channels at most that a thumbnail gives a lane of their own
RIM = {True: "0.6", False: "0.15"}  # the signal under its relevance colours: grey, or for
#                                      magnitudes near the sequential maps' dark low end
DB_RANGE = 80.0       # dB below the loudest bin that the spectrogram still tells apart
WASH = 0.6            # the spectrogram's colour wash at most this share of the style's opacity
FRAME_S = 0.032       # seconds: the spectrogram's window, about the 20-40 ms of speech analysis
MAX_FRAMES = 2000     # spectrogram columns at most: more only costs time at this width
# inches: around, the title's line, left of the panels (y ticks and label), right of them,
# a line panel (0.1 less for each further channel, MIN_PANEL at least), between panels,
# the time axis below the last panel, the colour bar's block (bar, its numbers, its label)
PAD, TITLE, LEFT, RIGHT, PANEL, MIN_PANEL, GAP, AXIS, BAR = 0.1, 0.35, 0.9, 0.3, 1.3, 0.9, 0.1, 0.42, 0.55
BAND = (0.03, 0.15)   # the colour band's bottom and top as shares of a line panel's height
STRIP = (0.16, 0.05)  # inches: a channel's heat strip at most and at least (many channels)
LABEL_ROW = 0.09      # inches: a strip's name at least this far from the next one shown


def _pair(values: np.ndarray, relevance: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Values and relevance as float64 ``(T, C)`` (a ``(T,)`` signal is one channel)."""
    v = np.asarray(values, np.float64)
    r = render.finite(relevance)
    v, r = (a[:, None] if a.ndim == 1 else a for a in (v, r))
    if v.ndim != 2 or v.shape != r.shape:
        raise ValueError(f"values {v.shape} and relevance {r.shape} must both be (T, C)")
    if len(v) < 2:
        raise ValueError(f"a signal needs at least two steps, not {len(v)}")
    return v, r


def _rgba(relevance: np.ndarray, signed: bool, style: render.Style, peak: float) -> np.ndarray:
    """Colours at a given scale ``peak`` (the ``|R|`` of the strongest colour)."""
    m = np.clip(relevance / peak, -1, 1) if peak > 0 else np.zeros_like(relevance)
    lut = render.colour_table(style.cmap(signed), signed)
    position = (m + 1) / 2 if signed else np.abs(m)
    rgb = lut[np.rint(position * (len(lut) - 1)).astype(np.intp)] / 255
    alpha = style.opacity * np.sqrt(np.abs(m))
    return np.concatenate([rgb, alpha[..., None]], axis=-1)


def colours(relevance: np.ndarray, signed: bool, style: render.Style = render.Style()) -> np.ndarray:
    """RGBA in ``[0, 1]``, ``relevance.shape + (4,)``: the colour map's colour of each
    step on one scale for the whole array (:func:`render.scale`), and an opacity
    ``style.opacity * sqrt(|R| / scale)``, zero where relevance is zero. :func:`plot` draws
    the line in these colours and the band in them at full opacity."""
    r = render.finite(relevance)
    return _rgba(r, signed, style, render.scale(r, style.clip))


def _strongest(relevance: np.ndarray, bins: int) -> np.ndarray:
    """``(T, ...)`` in ``bins`` runs of steps, each the value of its largest ``|R|``
    (unchanged when ``T <= bins``)."""
    if len(relevance) <= bins:
        return relevance
    first = np.linspace(0, len(relevance), bins + 1).astype(np.intp)[:-1]
    high = np.maximum.reduceat(relevance, first, axis=0)
    low = np.minimum.reduceat(relevance, first, axis=0)
    return np.where(high >= -low, high, low)


def _envelope(x: np.ndarray, v: np.ndarray, r: np.ndarray, bins: int):
    """A dense line as the minimum and maximum of each of ``bins`` runs of steps (at the
    run's middle), each point with the run's strongest relevance."""
    first = np.linspace(0, len(v), bins + 1).astype(np.intp)
    middle = (x[first[:-1]] + x[first[1:] - 1]) / 2
    low, high = np.minimum.reduceat(v, first[:-1]), np.maximum.reduceat(v, first[:-1])
    strongest = _strongest(r, bins)
    return middle.repeat(2), np.column_stack([low, high]).ravel(), strongest.repeat(2)


def times(length: int, rate: float | None = None, start: int = 0) -> np.ndarray:
    """Where each step is on the time axis: seconds ``(start + t) / rate`` with a rate,
    else the sample number ``start + t``."""
    steps = start + np.arange(length, dtype=np.float64)
    return steps / rate if rate else steps


def time_ticks(first: float, last: float, rate: float | None = None,
               count: int = 6) -> tuple[np.ndarray, list[str], str]:
    """The time axis from ``first`` to ``last`` (in its unit, see :func:`times`): tick
    positions at round values, their labels, and the axis' name (seconds with a rate,
    else samples, whose ticks are whole)."""
    from matplotlib.ticker import MaxNLocator
    ticks = MaxNLocator(count, integer=not rate, min_n_ticks=2).tick_values(first, last)
    slack = 1e-9 * max(abs(first), abs(last), 1)
    ticks = ticks[(ticks >= first - slack) & (ticks <= last + slack)]
    decimals = next(d for d in range(10) if np.allclose(np.round(ticks, d), ticks, rtol=0, atol=slack))
    labels = [f"{t:.{decimals}f}" for t in np.round(ticks, decimals) + 0.0]   # + 0.0: no "-0"
    return ticks, labels, "time (s)" if rate else "sample"


def _time_axis(axes, first: float, last: float, rate: float | None) -> None:
    ticks, labels, name = time_ticks(first, last, rate)
    axes.set_xticks(ticks, labels, fontsize=7)
    axes.set_xlabel(name, fontsize=8, labelpad=2)


def _figure(height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    figure = Figure(figsize=(WIDTH, height), dpi=DPI)
    FigureCanvasAgg(figure)
    return figure


def _axes(figure, left: float, bottom: float, height: float):
    """Axes at inches from the figure's left and bottom, as wide as the figure allows."""
    width, total = figure.get_size_inches()
    return figure.add_axes((left / width, bottom / total, (width - left - RIGHT) / width, height / total))


def _colour_bar(figure, peak: float, signed: bool, style: render.Style, label: str = "relevance") -> None:
    """The colour map at the bottom middle, its ends' relevance below it, ``label`` under
    them and, for signed methods, which end speaks for the class and which against."""
    width, height = figure.get_size_inches()
    bar = figure.add_axes(((width - 2.6) / 2 / width, (PAD + 0.34) / height, 2.6 / width, 0.12 / height))
    render.colour_bar(bar, render.Panel(label, np.zeros((0, 0, 3), np.uint8), signed, peak,
                                        style.cmap(signed)))
    bar.set_xlabel(label, fontsize=8, labelpad=2)
    if signed:
        bar.text(-0.03, 0.5, "against", transform=bar.transAxes, ha="right", va="center", fontsize=8)
        bar.text(1.03, 0.5, "for", transform=bar.transAxes, ha="left", va="center", fontsize=8)


def _title(figure, title: str | None) -> None:
    if title:
        figure.suptitle(title, fontsize=11, y=1 - PAD / figure.get_size_inches()[1], va="top")


def _line(axes, x: np.ndarray, v: np.ndarray, r: np.ndarray, signed: bool, style: render.Style,
          peak: float, bins: int) -> None:
    """One channel: the signal in its rim colour, over it the line in relevance colours,
    the colour band under it (inside the panel's bottom), limits that leave room for it."""
    from matplotlib.collections import LineCollection
    from matplotlib.ticker import MaxNLocator
    band = _rgba(_strongest(r, bins), signed, style, peak)[..., :3]
    ends, cells = (x[0], x[-1]), _cells(x)
    if len(v) > 2 * bins:
        x, v, r = _envelope(x, v, r, bins)
    points = np.column_stack([x, v])
    segments = np.stack([points[:-1], points[1:]], axis=1)
    stronger = np.where(np.abs(r[1:]) > np.abs(r[:-1]), r[1:], r[:-1])   # a spike colours both sides
    axes.plot(x, v, color=RIM[signed], linewidth=1.9, solid_capstyle="round", solid_joinstyle="round")
    axes.add_collection(LineCollection(segments, colors=_rgba(stronger, signed, style, peak),
                                       linewidths=1.2, capstyle="round", joinstyle="round"))
    axes.imshow(band[None], aspect="auto", interpolation="nearest", extent=(*cells, *BAND),
                transform=axes.get_xaxis_transform())
    low, high = (float(f(v)) if np.isfinite(v).any() else 0.0 for f in (np.nanmin, np.nanmax))
    span = (high - low) or max(abs(high), 1.0)
    share = BAND[1] + 0.04    # of the panel's height below the signal's lowest value
    axes.set_ylim(low - span * share / (1 - share - 0.06), high + span * 0.06 / (1 - share - 0.06))
    axes.set_xlim(*ends)
    axes.yaxis.set_major_locator(MaxNLocator(3))
    axes.tick_params(labelsize=7, length=2, pad=1)


def _cells(x: np.ndarray) -> tuple[float, float]:
    """The extent of an image whose columns are the steps at ``x`` (or equal runs of
    them): half a step before the first to half a step after the last."""
    half = (x[1] - x[0]) / 2
    return x[0] - half, x[-1] + half


def _names(channels: Sequence[str], count: int) -> list[str]:
    if channels and len(channels) != count:
        raise ValueError(f"{len(channels)} channel names for {count} channels")
    return list(channels) or [f"channel {c}" for c in range(count)]


def plot(values: np.ndarray, relevance: np.ndarray, file: str | BinaryIO, *, signed: bool,
         style: render.Style = render.Style(), rate: float | None = None, start: int = 0,
         channels: Sequence[str] = (), title: str | None = None) -> None:
    """A PNG of the signal ``(T, C)`` drawn in its relevance ``(T, C)``.

    Up to :data:`MANY` channels: one panel per channel, stacked on a shared time axis,
    the channel's values as a line in relevance colours (see the module) with a colour
    band under it, the channel's name as the panel's label. More channels (EEG's 64):
    a line per channel would leave each a few pixels, so each channel is a heat strip
    instead (an image, a row per channel, named on the left), and under the strips the
    line of the most relevant channel (largest summed ``|R|``, its name in bold), which
    is the one a reader wants to see the waveform of; the first channel is an accident
    of the montage.

    Parameters
    ----------
    values, relevance : ndarray
        ``(T, C)``, or ``(T,)`` for one channel.
    file : str or binary file object
        Where the PNG goes.
    signed : bool
        True: diverging map centred on zero, red for the class, blue against. False:
        magnitudes on the sequential map.
    style : Style
        Colour maps, the percentile that sets the one scale of all channels, the line's
        opacity where relevance is strongest.
    rate : float, optional
        Steps per second: the time axis in seconds, from ``start / rate``; without it,
        in samples from ``start``.
    start : int
        The first step's number in the whole recording (a window cut from it).
    channels : sequence of str
        The channels' names, default ``channel 0``, ``channel 1``, ...
    title : str, optional
        Line above the figure, e.g. the input's name and class.

    Raises
    ------
    ValueError
        If the relevance contains NaN or Inf, or its shape is not the values'.
    """
    v, r = _pair(values, relevance)
    names = _names(channels, v.shape[1])
    peak = render.scale(r, style.clip)
    x = times(len(v), rate, start)
    many = v.shape[1] > MANY
    strip = min(STRIP[0], max(STRIP[1], 6.0 / v.shape[1]))
    panel = max(MIN_PANEL, PANEL - 0.1 * max(0, v.shape[1] - 1))
    top = PAD + (TITLE if title else 0)
    body = (v.shape[1] * strip + GAP + PANEL) if many else v.shape[1] * panel + (v.shape[1] - 1) * GAP
    figure = _figure(top + body + AXIS + BAR + PAD)
    left = max(LEFT, 0.25 + 0.055 * max(map(len, names))) if many else LEFT
    bins = int((WIDTH - left - RIGHT) * DPI)
    bottom = PAD + BAR + AXIS
    if many:
        chosen = int(np.abs(r).sum(axis=0).argmax())
        line = _axes(figure, left, bottom, PANEL)
        _line(line, x, v[:, chosen], r[:, chosen], signed, style, peak, bins)
        line.set_ylabel(names[chosen], fontsize=8, fontweight="bold")
        strips = _axes(figure, left, bottom + PANEL + GAP, v.shape[1] * strip)
        image = _rgba(_strongest(r, bins), signed, style, peak)[..., :3].transpose(1, 0, 2)
        strips.imshow(image, aspect="auto", interpolation="nearest",
                      extent=(*_cells(x), v.shape[1] - 0.5, -0.5))
        strips.set_xlim(x[0], x[-1])
        shown = np.arange(0, v.shape[1], max(1, int(np.ceil(LABEL_ROW / strip))))
        strips.set_yticks(shown, [names[c] for c in shown], fontsize=6)
        strips.tick_params(axis="y", length=1.5, pad=1)
        for c, label in zip(shown, strips.get_yticklabels()):
            label.set_fontweight("bold" if c == chosen else "normal")
        strips.set_xticks(time_ticks(x[0], x[-1], rate)[0])
        strips.tick_params(axis="x", labelbottom=False, length=2)
        _time_axis(line, x[0], x[-1], rate)
    else:
        axes = [_axes(figure, left, bottom + (v.shape[1] - 1 - c) * (panel + GAP), panel)
                for c in range(v.shape[1])]
        for c, ax in enumerate(axes):
            _line(ax, x, v[:, c], r[:, c], signed, style, peak, bins)
            ax.set_ylabel(names[c], fontsize=8)
            if c < len(axes) - 1:
                ax.tick_params(labelbottom=False)
        for ax in axes:
            ax.set_xticks(time_ticks(x[0], x[-1], rate)[0])
        _time_axis(axes[-1], x[0], x[-1], rate)
    _colour_bar(figure, peak, signed, style)
    _title(figure, title)
    figure.savefig(file, format="png", pil_kwargs={"compress_level": FAST_PNG})


class Spectrogram(NamedTuple):
    """What :func:`spectrogram` draws: the input's spectrogram and relevance per column."""

    frequencies: np.ndarray   # (F,) Hz, the rows' centres
    times: np.ndarray         # (N,) seconds, the columns' centres, from start / rate
    decibels: np.ndarray      # (F, N) magnitude, at most DB_RANGE below the loudest bin
    relevance: np.ndarray     # (N,) the relevance of the steps nearest each column's centre
    hop: int                  # steps between columns


def stft(values: np.ndarray, relevance: np.ndarray, rate: float, start: int = 0) -> Spectrogram:
    """The spectrogram of the signal (its channels averaged) and its relevance per column.

    Hann windows of about :data:`FRAME_S` (a power of two of steps), a column every
    quarter window (fewer where more than :data:`MAX_FRAMES` would be), the signal padded
    with zeros at both ends so that the first column is centred on the first step. Each
    column's relevance is the sum over all channels of the steps nearer its centre than
    any other's: the columns split the signal, so together they hold all its relevance.
    """
    from scipy.signal import stft as _stft
    v, r = _pair(values, relevance)
    length = len(v)
    window = int(min(length, max(16, 2 ** round(np.log2(max(rate * FRAME_S, 1))))))
    hop = max(1, window // 4, -(-length // MAX_FRAMES))
    window = max(window, hop)
    frequencies, _, spectrum = _stft(v.mean(axis=1), fs=rate, window="hann", nperseg=window,
                                     noverlap=window - hop, boundary="zeros", padded=True)
    count = (length - 1) // hop + 1     # the columns centred on a step of the signal
    magnitude = 20 * np.log10(np.abs(spectrum[:, :count]) + 1e-12)
    decibels = np.maximum(magnitude, magnitude.max() - DB_RANGE)
    edges = np.clip(np.arange(count + 1) * hop - hop // 2, 0, length)
    edges[-1] = length
    per_column = np.add.reduceat(r.sum(axis=1), edges[:-1])
    return Spectrogram(frequencies, (start + np.arange(count) * hop) / rate, decibels, per_column, hop)


def spectrogram(values: np.ndarray, relevance: np.ndarray, rate: float, file: str | BinaryIO, *,
                signed: bool, style: render.Style = render.Style(), start: int = 0,
                title: str | None = None) -> None:
    """A PNG for audio: the input's spectrogram in grey (dark where loud), each column
    washed in the colour of its relevance, and under it a strip of the same colours.

    The relevance is a waveform's, so it says when, not at what frequency; it is drawn per
    column (:func:`stft`), not as a relevance spectrogram spread over frequency in
    proportion to the input's energy: that picture would be the input's own spectrum in
    relevance colours and look like a frequency attribution that the method never made.
    The wash is translucent (at most :data:`WASH` of the style's opacity) so the
    spectrogram reads through it; the strip shows the colours at full strength. The
    colour scale is the columns' (:func:`render.scale` of the per-column sums).

    Parameters as for :func:`plot`; ``rate`` (steps per second) is required here.
    Frequencies are in Hz, in kHz where the axis goes above 2 kHz.
    """
    s = stft(values, relevance, rate, start)
    peak = render.scale(s.relevance, style.clip)
    heat = render.heatmap(s.relevance[None], signed, style)
    db = s.decibels
    grey = np.rint(255 * (db.max() - db) / ((db.max() - db.min()) or 1)).astype(np.uint8)
    wash = replace(style, opacity=style.opacity * WASH)
    picture = render.overlay(np.broadcast_to(heat, (*db.shape, 3)), np.repeat(grey[..., None], 3, axis=-1),
                             np.broadcast_to(s.relevance, db.shape), signed, wash)
    khz = rate / 2 > 2000
    unit = 1000 if khz else 1
    step = s.frequencies[1] - s.frequencies[0]
    length = len(np.asarray(values))
    first, last = start / rate, (start + length) / rate
    half = s.hop / 2 / rate
    extent = (s.times[0] - half, s.times[-1] + half)
    title_space = TITLE if title else 0
    high, strip = 2.6, 0.22
    figure = _figure(PAD + title_space + high + GAP + strip + AXIS + BAR + PAD)
    bottom = PAD + BAR + AXIS
    below = _axes(figure, LEFT, bottom, strip)
    above = _axes(figure, LEFT, bottom + strip + GAP, high)
    rows = ((s.frequencies[0] - step / 2) / unit, (s.frequencies[-1] + step / 2) / unit)
    above.imshow(picture, aspect="auto", origin="lower", interpolation="antialiased", extent=(*extent, *rows))
    above.set_ylim(0, rate / 2 / unit)
    above.set_ylabel("frequency (kHz)" if khz else "frequency (Hz)", fontsize=8)
    above.tick_params(labelsize=7, length=2, pad=1, labelbottom=False)
    below.imshow(heat, aspect="auto", interpolation="nearest", extent=(*extent, 0, 1))
    below.set_yticks([])
    below.set_ylabel("relevance", fontsize=7, rotation=0, ha="right", va="center", labelpad=4)
    below.tick_params(length=2, pad=1)
    for ax in (above, below):
        ax.set_xlim(first, last)
        ax.set_xticks(time_ticks(first, last, rate)[0])
    _time_axis(below, first, last, rate)
    _colour_bar(figure, peak, signed, style, f"relevance per {1000 * s.hop / rate:.3g} ms")
    _title(figure, title)
    figure.savefig(file, format="png", pil_kwargs={"compress_level": FAST_PNG})


def top_windows(relevance: np.ndarray, width: int, count: int = 3) -> list[tuple[int, int, float]]:
    """The ``count`` most relevant non-overlapping windows of ``width`` steps.

    Each window is ``(first, stop, relevance)``: steps ``first`` to ``stop - 1`` of the
    model's input, and the positive relevance (evidence for the class) summed over them
    and all channels; negative relevance counts as zero, not against (LRP's relevance of
    audio alternates in sign with the waveform and would cancel out). Most relevant first,
    ties (sums equal up to rounding) to the earlier window; windows with nothing positive
    are left out, so there may be fewer than ``count``. A ``width`` of ``T`` or more is
    the whole signal.

    Greedy on the sliding-window sums (a cumulative sum; O(T) per window): the strongest
    window, then the strongest of those that do not overlap it, and so on; windows start
    anywhere, not on a grid.

    Raises
    ------
    ValueError
        If ``width`` is not positive or the relevance contains NaN or Inf.
    """
    if width < 1:
        raise ValueError(f"a window is at least one step wide, not {width}")
    r = render.finite(relevance)
    positive = np.maximum(r.reshape(len(r), int(np.prod(r.shape[1:]))), 0).sum(axis=1)
    if not len(positive):
        return []
    width = min(width, len(positive))
    cumulative = np.concatenate([[0.0], np.cumsum(positive)])
    sums = cumulative[width:] - cumulative[:-width]
    rounding = 1e-12 * cumulative[-1]   # sums that differ by no more are ties: the earlier wins
    found = []
    for _ in range(count):
        best = sums.max()
        if best <= 0:
            break
        first = int(np.argmax(sums >= best - rounding))
        found.append((first, first + width, float(sums[first])))
        sums[max(0, first - width + 1):first + width] = -np.inf
    return found


def thumbnail(values: np.ndarray, file: str | BinaryIO) -> None:
    """A small PNG (:data:`THUMBNAIL` pixels) of the signal for the job's report page, no
    axes: up to :data:`LANES` channels each in a lane of its own, scaled to its height
    (black, the others dark grey); more channels overlaid at full height, the first black
    over the others in light grey (a 64-channel EEG in one-pixel lanes would be a smudge)."""
    v = np.asarray(values, np.float64)
    v = v[:, None] if v.ndim == 1 else v
    figure = _figure(1)
    figure.set_size_inches(THUMBNAIL[0] / DPI, THUMBNAIL[1] / DPI)
    axes = figure.add_axes((0, 0, 1, 1))
    axes.set_axis_off()
    x = np.arange(len(v), dtype=np.float64)
    lanes = v.shape[1] <= LANES
    for c in reversed(range(v.shape[1])):
        xs, channel = x, v[:, c]
        if len(channel) > 2 * THUMBNAIL[0]:
            xs, channel, _ = _envelope(x, channel, np.zeros_like(channel), THUMBNAIL[0])
        low, high = np.nanmin(channel), np.nanmax(channel)
        shown = (channel - low) / ((high - low) or 1)
        if lanes:
            shown = v.shape[1] - 1 - c + 0.1 + 0.8 * shown
        colour = ("0.1" if c == 0 else "0.35") if lanes else ("0.1" if c == 0 else "0.7")
        axes.plot(xs, shown, color=colour, linewidth=0.8 if c == 0 or lanes else 0.5)
    axes.set_xlim(x[0], max(x[-1], 1))
    axes.set_ylim(-0.06, v.shape[1] + 0.06 if lanes else 1.06)
    figure.savefig(file, format="png", pil_kwargs={"compress_level": FAST_PNG})
