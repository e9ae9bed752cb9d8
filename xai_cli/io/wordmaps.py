"""Word relevance as text: a document with each word on a background of its relevance.

This is the word heatmap of the LRP papers on text (Arras et al. 2017; Samek et al. 2017,
Fig. 2B): red where a word speaks for the explained class, blue where it speaks against,
stronger with more relevance. The colours are the image heatmaps' own (:func:`render.heatmap`
on the words' relevance, with its percentile scale), so a style chosen once reads the same on
pictures and on text. One function picks the colours; the HTML page and the PNG both use it,
so the two cannot disagree. The PNG uses the DejaVu font that ships with matplotlib, so it
looks the same on every machine and needs no system fonts.

Both stay small however long the document: at most :data:`SHOWN` words are drawn (a longer
document in excerpts around its strongest words, :func:`shown`), and the PNG at most
:data:`MAX_LINES` lines of them; what is left out is counted where it was.
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
SHOWN = 1000       # words drawn at most (a longer document: excerpts)
CONTEXT = 12       # words on each side of a strong word in an excerpt
MAX_LINES = 300    # lines of words a PNG draws at most: about 8,400 px


@dataclass(frozen=True)
class Word:
    """A word of the document as written, and its token's relevance.

    ``relevance`` is None where the word has no token: punctuation only, cut off after the
    model's length, or padding. Such words are shown without a background.
    """

    text: str
    relevance: float | None


@dataclass(frozen=True)
class Omitted:
    """``count`` words left out where this stands (``end``: after the last word drawn)."""

    count: int
    end: bool = False

    @property
    def text(self) -> str:
        noun = "word" if self.count == 1 else "words"
        return f"{self.count:,} more {noun} not shown" if self.end else f"[… {self.count:,} {noun} …]"


def shown(words: Sequence[Word], hidden: int = 0, limit: int = SHOWN) -> list[int | Omitted]:
    """What a heatmap draws of ``words``, in order: the index of each word drawn and an
    :class:`Omitted` for each run of words left out, the ``hidden`` words after the last
    one included. All of them, up to ``limit``; of a longer document, its opening and the
    words around its strongest ones (largest ``|R|``), :data:`CONTEXT` on each side, until
    about ``limit`` are drawn."""
    keep = np.ones(len(words), bool) if len(words) <= limit else _excerpts(words, limit)
    drawn = np.flatnonzero(keep)
    items: list[int | Omitted] = []
    after = -1
    for i in drawn.tolist():
        if i > after + 1:
            items.append(Omitted(i - after - 1))
        items.append(i)
        after = i
    rest = len(words) - after - 1 + hidden
    return [*items, Omitted(rest, end=True)] if rest else items


def _excerpts(words: Sequence[Word], limit: int) -> np.ndarray:
    """Which words to draw: the opening, the first words after the last one read (where
    the model stopped, up to a tenth of ``limit``), then windows around the strongest words."""
    strength = np.array([abs(w.relevance) if w.relevance else 0.0 for w in words])
    after = _last_read(words) + 1
    keep = np.zeros(len(words), bool)
    keep[:2 * CONTEXT + 1] = True
    keep[after:after + limit // 10] = True
    count = int(keep.sum())
    for i in np.argsort(-strength, kind="stable").tolist():
        if count >= limit or not strength[i]:
            break
        window = slice(max(i - CONTEXT, 0), i + CONTEXT + 1)
        count += int((~keep[window]).sum())
        keep[window] = True
    return keep


def _last_read(words: Sequence[Word]) -> int:
    """The index of the last word with a token read (-1: none): after it, the model stopped."""
    return max((i for i, w in enumerate(words) if w.relevance is not None), default=-1)


@dataclass(frozen=True)
class _Piece:
    """One thing drawn: a word the model read (``kind`` ``word``) on its ``background``, one
    it did not (``unread``, grey), or a run of ``count`` words left out (``omitted``)."""

    text: str
    kind: str = "word"
    background: Colour | None = None
    relevance: float | None = None
    count: int = 1


def _pieces(words: Sequence[Word], hidden: int, signed: bool, style: Style
            ) -> tuple[list[_Piece], int, float]:
    """What a heatmap draws of ``words`` (:func:`shown`), how many words after it are left
    out, and the ``|R|`` of the strongest colour: the scale is that of the words drawn, so
    that excerpts of a long document get its colours' full range."""
    items = shown(words, hidden)
    end = items.pop().count if items and isinstance(items[-1], Omitted) and items[-1].end else 0
    drawn = [words[i] for i in items if isinstance(i, int)]
    backgrounds = iter(colours(drawn, signed, style))
    last_read = _last_read(words)
    pieces = []
    for item in items:
        if isinstance(item, Omitted):
            pieces.append(_Piece(item.text, "omitted", count=item.count))
        else:
            word = words[item]
            pieces.append(_Piece(word.text, "word" if item <= last_read else "unread",
                                 next(backgrounds), word.relevance))
    return pieces, end, peak(drawn, style.clip)


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
p.empty, .omitted, .unread {{ color: #6e6e6e; }}
.omitted {{ font-style: italic; }}
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


def html(words: Sequence[Word], title: str, signed: bool, style: Style = Style(), caption: str = "",
         hidden: int = 0) -> str:
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
    hidden : int
        Words after ``words``, not given: counted at the end.

    Returns
    -------
    str
        The page. Each word with a token is a ``<span>`` whose ``title`` shows its relevance;
        all text is escaped. Of a long document, what :func:`shown` picks.
    """
    pieces, end, top = _pieces(words, hidden, signed, style)
    spans = [_span(piece) for piece in pieces]
    document = (f'<p class="document">{" ".join(spans)}</p>' if spans
                else f'<p class="document empty">{EMPTY}</p>')
    if end:
        document += f'\n<p class="omitted">{_html.escape(Omitted(end, end=True).text)}</p>'
    stops = _legend_colours(signed, style, _STOPS)
    gradient = ", ".join(f"{_hex(c)} {100 * i / (len(stops) - 1):g}%" for i, c in enumerate(stops))
    labels = "".join(f"<span>{_html.escape(label)}</span>"
                     for label in _legend_labels(signed, top))
    return _PAGE.format(title=_html.escape(title), bar=_BAR_WIDTH, bar_height=_BAR_HEIGHT,
                        caption=f'<p class="caption">{_html.escape(caption)}</p>\n' if caption else "",
                        document=document, gradient=gradient, labels=labels)


def _span(piece: _Piece) -> str:
    text = _html.escape(piece.text)
    if piece.kind != "word":
        return f'<span class="{piece.kind}">{text}</span>'
    if piece.relevance is None:
        return text
    colour = piece.background
    style = f' style="background:{_hex(colour)};color:{_hex(ink(colour))}"' if colour else ""
    return f'<span title="{value(piece.relevance)}"{style}>{text}</span>'


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
        style: Style = Style(), width: int = 900, hidden: int = 0) -> None:
    """The document's word heatmap as a PNG ``width`` pixels wide: the title, the words wrapped
    into lines on their backgrounds, and the colour scale below.

    Parameters
    ----------
    words, title, signed, style, hidden
        As for :func:`html`.
    file : str, Path or binary file object
        Where the PNG goes.
    width : int
        The picture's width in pixels; its height follows from the text, at most
        :data:`MAX_LINES` lines of words (the words after them are counted at the end).
    """
    from PIL import Image, ImageDraw
    font, heading, small = _font(FONT_SIZE), _font(FONT_SIZE, bold=True), _font(12)
    inner = max(width - 2 * _MARGIN - 2 * _PAD, 1)
    title_words = title.split()
    title_lines = _wrap(title_words, heading, inner)
    pieces, end, top = _pieces(words, hidden, signed, style)
    lines = _wrap([piece.text for piece in pieces], font, inner, _GAP) or [[]]
    for line in lines[MAX_LINES:]:
        end += sum(pieces[i].count for i, _ in line)
    lines = lines[:MAX_LINES] + ([[]] if end else [])
    bar_top = _MARGIN + _LINE * (len(title_lines) + len(lines)) + _LINE // 2
    image = Image.new("RGB", (width, bar_top + _BAR_HEIGHT + 20 + _MARGIN), _WHITE)
    draw = ImageDraw.Draw(image)
    left, y = _MARGIN + _PAD, _MARGIN
    for line in title_lines:
        for i, x in line:
            draw.text((left + x, y), title_words[i], fill=_BLACK, font=heading)
        y += _LINE
    if not words:
        draw.text((left, y + _PAD), EMPTY, fill=_GREY, font=font)
    for line in lines:
        for i, x in line:
            _word(draw, (left + x, y + _PAD), pieces[i], font)
        y += _LINE
    if end:
        draw.text((left, y - _LINE + _PAD), Omitted(end, end=True).text, fill=_GREY, font=font)
    _legend(draw, (_MARGIN, bar_top), min(_BAR_WIDTH, width - 2 * _MARGIN), signed, style, top,
            small)
    image.save(file, format="png")


def _word(draw, at: tuple[int, int], piece: _Piece, font) -> None:
    x, y = at
    background = piece.background
    if background is not None:
        ascent, descent = font.getmetrics()
        draw.rectangle((x - _PAD, y - _PAD, x + font.getlength(piece.text) + _PAD,
                        y + ascent + descent + _PAD - 1), fill=background)
    draw.text((x, y), piece.text, fill=ink(background) if piece.kind == "word" else _GREY, font=font)


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
