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

def picture(words, signed=True, width=600, hidden=0) -> np.ndarray:
    buffer = io.BytesIO()
    wordmaps.png(words, buffer, "document · lrp", signed, Style(clip=100), width=width, hidden=hidden)
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


# -- long documents --

def test_everything_up_to_the_limit_is_shown_and_what_follows_is_counted():
    words = [Word(f"w{i}", 1.0) for i in range(10)]
    assert wordmaps.shown(words) == list(range(10))
    assert wordmaps.shown(words, hidden=5) == [*range(10), wordmaps.Omitted(5, end=True)]
    assert wordmaps.Omitted(1234, end=True).text == "1,234 more words not shown"
    assert wordmaps.Omitted(1).text == "[… 1 word …]"


def test_a_long_document_is_shown_in_excerpts_around_its_strongest_words():
    rng = np.random.default_rng(0)
    words = [Word(f"w{i}", float(r)) for i, r in enumerate(rng.normal(0, 0.01, 50_000))]
    words[30_000], words[45_000], words[40_000] = Word("for", 5.0), Word("against", -4.0), Word("x", None)
    items = wordmaps.shown(words, hidden=7, limit=200)
    drawn = [i for i in items if isinstance(i, int)]
    assert drawn == sorted(drawn) and len(drawn) <= 200 + 2 * wordmaps.CONTEXT
    assert set(range(2 * wordmaps.CONTEXT + 1)) <= set(drawn)             # the opening
    for strong in (30_000, 45_000):
        assert set(range(strong - wordmaps.CONTEXT, strong + wordmaps.CONTEXT + 1)) <= set(drawn)
    gaps = [i for i in items if isinstance(i, wordmaps.Omitted)]
    assert gaps[-1].end and not any(g.end for g in gaps[:-1])
    assert len(drawn) + sum(g.count for g in gaps) == len(words) + 7      # every word counted once
    # the colours' scale is the excerpts': the strongest word drawn gets the strongest red
    page = wordmaps.html(words, "t", True, Style(clip=100), hidden=7)
    assert "[… " in page and ">-4<" not in page and ">5<" in page
    cut = [*words, *(Word(f"c{i}", None) for i in range(500))]   # read, then cut: its start is shown
    drawn = [i for i in wordmaps.shown(cut, limit=200) if isinstance(i, int)]
    assert set(range(50_000, 50_020)) <= set(drawn) and 50_020 not in drawn


def png_size(words, **kwargs) -> tuple[tuple[int, int], int]:
    buffer = io.BytesIO()
    wordmaps.png(words, buffer, "a long document · lrp", True, **kwargs)
    return Image.open(io.BytesIO(buffer.getvalue())).size, len(buffer.getvalue())


def test_a_document_of_200000_words_draws_a_small_picture_and_page():
    rng = np.random.default_rng(1)
    normal = [Word(f"word{i % 97}", float(r)) for i, r in enumerate(rng.normal(0, 1, 60))]
    (_, normal_height), normal_bytes = png_size(normal)
    read = [Word(f"word{i % 97}", float(r)) for i, r in enumerate(rng.normal(0, 1, 200_000))]
    cut = normal + [Word(f"word{i % 97}", None) for i in range(100)]     # a fixed-length model's
    for words, hidden in ((read, 0), (cut, 199_840)):
        (width, height), size = png_size(words, hidden=hidden)
        assert width == 900 and height <= 28 * (wordmaps.MAX_LINES + 6)
        assert size < 25 * normal_bytes
        page = wordmaps.html(words, "t", True, hidden=hidden)
        assert len(page) < 50 * len(wordmaps.html(normal, "t", True))
    assert png_size(cut, hidden=199_840)[0][1] < 4 * normal_height
    assert "199,840 more words not shown" in wordmaps.html(cut, "t", True, hidden=199_840)
    assert wordmaps.html(cut, "t", True).count('class="unread"') == 100   # the cut tail: grey


def test_a_picture_draws_at_most_max_lines_of_words_and_counts_the_rest():
    words = [Word("x" * 60, 1.0)] * wordmaps.SHOWN   # one word a line at width 300
    (_, height), _ = png_size(words, width=300)
    assert height <= 28 * (wordmaps.MAX_LINES + 6)
    lines = wordmaps.MAX_LINES
    np.testing.assert_array_equal(   # the same as the first lines' words and the rest counted
        picture(words, width=300), picture(words[:lines], width=300, hidden=len(words) - lines))


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
