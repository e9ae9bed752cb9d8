"""Word relevance as text: a document with each word on a background of its relevance.

This is the word heatmap of the LRP papers on text (Arras et al. 2017; Samek et al. 2017,
Fig. 2B): red where a word speaks for the explained class, blue where it speaks against,
stronger with more relevance. The colours are the image heatmaps' own (:func:`render.heatmap`
on the words' relevance, with its percentile scale), so a style chosen once reads the same on
pictures and on text. One function picks the colours; the HTML page and the PNG both use it,
so the two cannot disagree. The PNG uses the DejaVu font that ships with matplotlib, so it
looks the same on every machine and needs no system fonts.
"""

from __future__ import annotations

import html as _html
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import BinaryIO

import numpy as np

from .render import Style, heatmap, scale

Colour = tuple[int, int, int]
FONT_SIZE = 16
_MARGIN, _PAD, _LINE = 16, 3, 28      # px: around the page, around a word, from line to line
_GAP = 2 * _PAD + 2                   # px: at least, from word to word, so backgrounds stay apart
_BAR_WIDTH, _BAR_HEIGHT = 300, 12     # px: the legend's colour strip
_STOPS = 17                           # colours of the HTML legend's gradient
_WHITE, _BLACK, _GREY = (255, 255, 255), (0, 0, 0), (110, 110, 110)
EMPTY = "(empty document)"


@dataclass(frozen=True)
class Word:
    """A word of the document as written, and its token's relevance.

    ``relevance`` is None where the word has no token: punctuation only, cut off after the
    model's length, or padding. Such words are shown without a background.
    """

    text: str
    relevance: float | None


def peak(words: Sequence[Word], clip: float) -> float:
    """The ``|R|`` that gets the strongest colour (:func:`render.scale` over the words that
    have a token); 0 where there are none or all are zero."""
    return scale(np.array([w.relevance for w in words if w.relevance is not None], np.float64), clip)


def colours(words: Sequence[Word], signed: bool, style: Style = Style()) -> list[Colour | None]:
    """The background of each word: the colour map's entry at its normalised relevance
    (signed: -1..1 on the diverging map, zero at its centre; unsigned: magnitudes on the
    sequential map), or None where its relevance is zero or None.

    Raises
    ------
    ValueError
        If a relevance is NaN or Inf.
    """
    scored = [w.relevance for w in words if w.relevance is not None]
    picked = iter(heatmap(np.array(scored, np.float64).reshape(1, -1), signed, style)[0])
    backgrounds: list[Colour | None] = []
    for word in words:
        colour = None if word.relevance is None else next(picked)
        backgrounds.append(_rgb(colour) if word.relevance else None)
    return backgrounds


def _rgb(colour: np.ndarray) -> Colour:
    r, g, b = (int(c) for c in colour)
    return r, g, b


def _luma(colour: Colour) -> float:
    r, g, b = colour
    return 0.299 * r + 0.587 * g + 0.114 * b


def ink(background: Colour | None) -> Colour:
    """Black text, or white on a dark background (luma below 128)."""
    return _WHITE if background is not None and _luma(background) < 128 else _BLACK


def _legend_colours(signed: bool, style: Style, n: int) -> list[Colour]:
    """``n`` colours evenly along the map, from -peak (signed) or 0 to +peak."""
    ramp = np.linspace(-1.0 if signed else 0.0, 1.0, n)[None]
    return [_rgb(c) for c in heatmap(ramp, signed, replace(style, clip=100))[0]]


def _legend_labels(signed: bool, top: float) -> list[str]:
    end = f"{top:.2g}"
    return [f"-{end}" if top else end, "0", end] if signed else ["0", end]


def value(relevance: float) -> str:
    """A word's relevance as its tooltip shows it, e.g. ``+0.0312``."""
    return f"{relevance:+.3g}"


# -- HTML --

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
body {{ font-family: "DejaVu Sans", Verdana, sans-serif; margin: 1.5em; color: #000; background: #fff;
       max-width: 60em; }}
h1 {{ font-size: 1.2em; font-weight: bold; overflow-wrap: anywhere; }}
p.caption {{ color: #555; margin-top: -0.5em; }}
p.document {{ font-size: 16px; line-height: 1.9; overflow-wrap: anywhere; }}
p.document span {{ padding: 2px 3px; border-radius: 2px; }}
p.empty {{ color: #6e6e6e; }}
.legend {{ font-size: 12px; color: #333; width: {bar}px; margin-top: 1.5em; }}
.legend .bar {{ height: {bar_height}px; background: linear-gradient(to right, {gradient}); }}
.legend .labels {{ display: flex; justify-content: space-between; }}
</style>
</head>
<body>
<h1>{title}</h1>
{caption}{document}
<div class="legend" title="relevance">
<div class="bar"></div>
<div class="labels">{labels}</div>
</div>
</body>
</html>
"""


def html(words: Sequence[Word], title: str, signed: bool, style: Style = Style(), caption: str = "") -> str:
    """A self-contained UTF-8 page (no script, nothing fetched) of the document's word heatmap.

    Parameters
    ----------
    words : sequence of Word
        The document, in order; shown joined by spaces.
    title : str
        The page's heading, e.g. the document's name and the method.
    signed : bool
        True: diverging map, red for the class and blue against it. False: magnitudes on the
        sequential map.
    style : Style
        Colour maps and the percentile of ``|R|`` that sets the scale.
    caption : str
        A line under the title, e.g. the prediction and the class explained.

    Returns
    -------
    str
        The page. Each word with a token is a ``<span>`` whose ``title`` shows its relevance;
        all text is escaped.
    """
    spans = [_span(w, c) for w, c in zip(words, colours(words, signed, style))]
    document = (f'<p class="document">{" ".join(spans)}</p>' if spans
                else f'<p class="document empty">{EMPTY}</p>')
    stops = _legend_colours(signed, style, _STOPS)
    gradient = ", ".join(f"{_hex(c)} {100 * i / (len(stops) - 1):g}%" for i, c in enumerate(stops))
    labels = "".join(f"<span>{_html.escape(label)}</span>"
                     for label in _legend_labels(signed, peak(words, style.clip)))
    return _PAGE.format(title=_html.escape(title), bar=_BAR_WIDTH, bar_height=_BAR_HEIGHT,
                        caption=f'<p class="caption">{_html.escape(caption)}</p>\n' if caption else "",
                        document=document, gradient=gradient, labels=labels)


def _span(word: Word, colour: Colour | None) -> str:
    text = _html.escape(word.text)
    if word.relevance is None:
        return text
    style = f' style="background:{_hex(colour)};color:{_hex(ink(colour))}"' if colour else ""
    return f'<span title="{value(word.relevance)}"{style}>{text}</span>'


def _hex(colour: Colour) -> str:
    return "#{:02x}{:02x}{:02x}".format(*colour)


# -- PNG --

@cache
def _font(size: int, bold: bool = False):
    from matplotlib import font_manager
    from PIL import ImageFont
    path = font_manager.findfont(font_manager.FontProperties(family="DejaVu Sans",
                                                             weight="bold" if bold else "normal"))
    return ImageFont.truetype(path, size)


def _wrap(texts: Sequence[str], font, width: int, gap: float = 0) -> list[list[tuple[int, int]]]:
    """Lines of ``(index, x)``: the texts laid out left to right within ``width`` pixels, a space
    (at least ``gap``) apart; a text wider than the line gets a line of its own (and overflows it)."""
    space = max(font.getlength(" "), gap)
    lines: list[list[tuple[int, int]]] = [[]]
    x = 0.0
    for i, text in enumerate(texts):
        length = font.getlength(text)
        if lines[-1] and x + length > width:
            lines.append([])
            x = 0.0
        lines[-1].append((i, round(x)))
        x += length + space
    return lines if lines[0] else []


def png(words: Sequence[Word], file: str | Path | BinaryIO, title: str, signed: bool,
        style: Style = Style(), width: int = 900) -> None:
    """The document's word heatmap as a PNG ``width`` pixels wide: the title, the words wrapped
    into lines on their backgrounds, and the colour scale below.

    Parameters
    ----------
    words, title, signed, style
        As for :func:`html`.
    file : str, Path or binary file object
        Where the PNG goes.
    width : int
        The picture's width in pixels; its height follows from the text.
    """
    from PIL import Image, ImageDraw
    font, heading, small = _font(FONT_SIZE), _font(FONT_SIZE, bold=True), _font(12)
    inner = max(width - 2 * _MARGIN - 2 * _PAD, 1)
    title_words = title.split()
    title_lines = _wrap(title_words, heading, inner)
    texts = [w.text for w in words]
    lines = _wrap(texts, font, inner, _GAP) or [[]]
    bar_top = _MARGIN + _LINE * (len(title_lines) + len(lines)) + _LINE // 2
    image = Image.new("RGB", (width, bar_top + _BAR_HEIGHT + 20 + _MARGIN), _WHITE)
    draw = ImageDraw.Draw(image)
    left, top = _MARGIN + _PAD, _MARGIN
    for line in title_lines:
        for i, x in line:
            draw.text((left + x, top), title_words[i], fill=_BLACK, font=heading)
        top += _LINE
    backgrounds = colours(words, signed, style)
    if not texts:
        draw.text((left, top + _PAD), EMPTY, fill=_GREY, font=font)
    for line in lines:
        for i, x in line:
            _word(draw, (left + x, top + _PAD), texts[i], backgrounds[i], font)
        top += _LINE
    _legend(draw, (_MARGIN, bar_top), min(_BAR_WIDTH, width - 2 * _MARGIN), signed, style,
            peak(words, style.clip), small)
    image.save(file, format="png")


def _word(draw, at: tuple[int, int], text: str, background: Colour | None, font) -> None:
    x, y = at
    if background is not None:
        ascent, descent = font.getmetrics()
        draw.rectangle((x - _PAD, y - _PAD, x + font.getlength(text) + _PAD, y + ascent + descent + _PAD - 1),
                       fill=background)
    draw.text((x, y), text, fill=ink(background), font=font)


def _legend(draw, at: tuple[int, int], length: int, signed: bool, style: Style, top: float, font) -> None:
    """The colour map as a strip ``length`` pixels long, with the relevance at its ends (and 0)."""
    x0, y0 = at
    length = max(length, 2)
    for x, colour in enumerate(_legend_colours(signed, style, length)):
        draw.line((x0 + x, y0, x0 + x, y0 + _BAR_HEIGHT - 1), fill=colour)
    labels = _legend_labels(signed, top)
    for label, where in zip(labels, np.linspace(0, 1, len(labels))):
        anchor = "la" if where == 0 else "ra" if where == 1 else "ma"
        draw.text((x0 + where * (length - 1), y0 + _BAR_HEIGHT + 3), label, fill=_BLACK, font=font,
                  anchor=anchor)
