"""Word heatmaps: the colours of words, the HTML page, the PNG, and the page in a real browser."""

import io
import os
import subprocess
from html.parser import HTMLParser

import numpy as np
import pytest
from matplotlib import colormaps
from PIL import Image

from xai_cli.io import wordmaps
from xai_cli.io.render import Style
from xai_cli.io.wordmaps import Word

CHROMIUM = "/usr/bin/chromium"
DOCUMENT = [Word("good", 1.0), Word("plain", 0.0), Word("--", None), Word("words", 0.1), Word("bad", -1.0)]


def unscored(words):
    return [Word(w.text, None) for w in words]


def reddish(picture: np.ndarray) -> np.ndarray:
    r, g, b = np.moveaxis(picture.astype(int), -1, 0)
    return (r > 200) & (g < 80) & (b < 80)


def bluish(picture: np.ndarray) -> np.ndarray:
    r, g, b = np.moveaxis(picture.astype(int), -1, 0)
    return (b > 200) & (r < 80) & (g < 80)


# -- colours --

def test_for_is_red_against_is_blue_and_zero_or_no_token_has_no_background():
    good, plain, dash, weak, bad = wordmaps.colours(DOCUMENT, True, Style(clip=100))
    assert good[0] > 200 and good[1] < 60 and good[2] < 60
    assert bad[2] > 200 and bad[0] < 60 and bad[1] < 60
    assert plain is None and dash is None
    assert weak[0] == 255 and 200 < weak[1] < 255   # a pale red: weak relevance, light colour


def test_the_scale_ignores_words_without_a_token():
    # at the 50th percentile, three words counted as zero would move the scale from 1.5 to 2
    scored = [Word("a", 1.0), Word("b", 2.0)]
    style = Style(clip=50)
    with_none = wordmaps.colours([*scored, *unscored(DOCUMENT[:3])], True, style)
    with_zeros = wordmaps.colours([*scored, Word("x", 0.0), Word("y", 0.0), Word("z", 0.0)], True, style)
    assert with_none[:2] == wordmaps.colours(scored, True, style) != with_zeros[:2]
    assert wordmaps.peak([*scored, Word("-", None)], 50) == 1.5


def test_unsigned_maps_magnitudes_on_the_sequential_map():
    words = [Word("a", 1.0), Word("b", 0.5), Word("c", -0.5)]
    top, half, negative = wordmaps.colours(words, False, Style(clip=100, sequential="afmhot"))
    expected = np.round(np.array(colormaps["afmhot"](0.5)[:3]) * 255)
    assert np.abs(np.array(half) - expected).max() <= 3
    assert negative == half != wordmaps.colours(words, True, Style(clip=100))[1]
    assert top == (255, 255, 255)   # afmhot rises to white (explain draws words with afmhot_r)


def test_text_is_white_on_dark_backgrounds_and_black_elsewhere():
    assert wordmaps.ink((0, 0, 160)) == (255, 255, 255)
    assert wordmaps.ink((255, 200, 200)) == wordmaps.ink(None) == (0, 0, 0)


def test_non_finite_relevance_is_refused():
    with pytest.raises(ValueError):
        wordmaps.colours([Word("a", float("nan"))], True)


# -- HTML --

class Spans(HTMLParser):
    """Each span's title and text, and the text outside spans of the document paragraph."""

    def __init__(self):
        super().__init__()
        self.spans, self.plain, self.stack = [], [], []

    def handle_starttag(self, tag, attrs):
        self.stack.append((tag, dict(attrs)))
        if tag == "span" and self.stack[-2][1].get("class") == "document":
            self.spans.append([dict(attrs), ""])

    def handle_endtag(self, tag):
        self.stack.pop()

    def handle_data(self, data):
        if self.stack and self.stack[-1][0] == "span" and self.stack[-2][1].get("class") == "document":
            self.spans[-1][1] += data
        elif self.stack and self.stack[-1][1].get("class") == "document":
            self.plain.append(data)


def test_the_page_escapes_text_and_shows_each_words_value_on_hover():
    words = [Word("<script>alert(1)</script>", 0.5), Word('"quoted"', -0.25), Word("&", None),
             Word("it's", 0.0)]
    page = wordmaps.html(words, "<b>doc</b> · lrp", True, Style(clip=100), caption="score 5 & 'x'")
    assert "<script>" not in page and "<b>" not in page
    assert "&lt;b&gt;doc&lt;/b&gt; · lrp" in page and "score 5 &amp; &#x27;x&#x27;" in page
    parser = Spans()
    parser.feed(page)
    assert [(s[0]["title"], s[1]) for s in parser.spans] == [
        ("+0.5", "<script>alert(1)</script>"), ("-0.25", '"quoted"'), ("+0", "it's")]
    red, blue, zero = (s[0].get("style", "") for s in parser.spans)
    assert "background:#ff0000;color:#ffffff" in red and "background:#8080ff;color:#000000" in blue
    assert zero == ""
    assert "&" in "".join(parser.plain)


def test_the_page_stands_alone():
    page = wordmaps.html(DOCUMENT, "t", True)
    assert page.startswith("<!DOCTYPE html>") and '<meta charset="utf-8">' in page
    assert not any(needle in page for needle in ("<script", "src=", "http", "@import", "url("))
    assert "linear-gradient" in page and ">-1<" in page and ">1<" in page   # the legend, -max..max
    assert "(empty document)" in wordmaps.html([], "t", True)


# -- PNG --

def picture(words, signed=True, width=600) -> np.ndarray:
    buffer = io.BytesIO()
    wordmaps.png(words, buffer, "document · lrp", signed, Style(clip=100), width=width)
    buffer.seek(0)
    return np.asarray(Image.open(buffer).convert("RGB"))


def test_the_png_has_red_where_the_positive_word_is_and_blue_where_the_negative_one_is():
    scored, blank = picture(DOCUMENT), picture(unscored(DOCUMENT))
    assert scored.shape == blank.shape and scored.shape[1] == 600
    words = (scored != blank).any(axis=-1)   # the backgrounds: the same text, the same legend strip
    red, blue = np.nonzero(words & reddish(scored)), np.nonzero(words & bluish(scored))
    assert len(red[1]) > 200 and len(blue[1]) > 200
    assert red[1].max() < blue[1].min()      # "good" is left of "bad", on the same line
    assert abs(red[0].mean() - blue[0].mean()) < 3


def test_long_words_narrow_pictures_and_empty_documents_are_drawn():
    long = [Word("x" * 300, 0.5), Word("short", -0.2)]
    for words, width in ((long, 600), (long, 40), ([], 600), ([Word("", 1.0)], 200)):
        drawn = picture(words, width=width)
        assert drawn.shape[1] == width and drawn.shape[0] > 50
    assert picture(long * 30).shape[0] > picture(long).shape[0]   # wrapped into more lines


def test_a_png_goes_to_a_path(tmp_path):
    wordmaps.png(DOCUMENT, tmp_path / "w.png", "t", False, width=300)
    assert Image.open(tmp_path / "w.png").size[0] == 300


# -- in a browser --

def screenshot(page: str, path) -> np.ndarray:
    path.with_suffix(".html").write_text(page, encoding="utf-8")
    subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    f"--screenshot={path}", "--window-size=900,400", path.with_suffix(".html").as_uri()],
                   check=True, capture_output=True, timeout=60)
    return np.asarray(Image.open(path).convert("RGB"))


def test_the_page_shows_red_and_blue_words_in_chromium(tmp_path):
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip("chromium not installed: apt-get install chromium")
    scored = screenshot(wordmaps.html(DOCUMENT, "t", True, Style(clip=100)), tmp_path / "scored.png")
    blank = screenshot(wordmaps.html(unscored(DOCUMENT), "t", True), tmp_path / "blank.png")
    # both pages have the legend strip; only the scored one has coloured words
    assert reddish(scored).sum() > reddish(blank).sum() + 200
    assert bluish(scored).sum() > bluish(blank).sum() + 200
