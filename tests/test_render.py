"""Heatmap colours, overlays and figures."""

import gc
import io
import weakref

import matplotlib.figure
import numpy as np
import pytest
from PIL import Image

from xai_cli import render


def test_diverging_map_is_white_at_zero_red_positive_blue_negative():
    blue, white, red, half = render.heatmap(np.array([[-2.0, 0.0, 2.0, 1.0]]), True)[0].astype(int)
    assert (white == 255).all()
    assert red[0] > 200 and red[2] < 60 and blue[2] > 200 and blue[0] < 60
    assert half[0] == 255 and red[1] < half[1] < 255


def test_sequential_map_rises_from_black():
    brightness = render.heatmap(np.linspace(0, 1, 9)[None], False)[0].astype(int).sum(axis=-1)
    assert brightness[0] == 0 and np.all(np.diff(brightness) > 0)


def test_channels_are_summed():
    r = np.random.default_rng(0).normal(size=(4, 5, 3))
    for signed in (True, False):
        assert (render.heatmap(r, signed) == render.heatmap(r.sum(axis=-1), signed)).all()


def test_all_zero_relevance_gives_the_centre_or_lowest_colour():
    with np.errstate(all="raise"):
        assert (render.heatmap(np.zeros((2, 3, 3)), True) == 255).all()
        assert (render.heatmap(np.zeros((2, 3)), False) == 0).all()


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_relevance_is_refused(bad):
    with pytest.raises(ValueError, match="relevance contains NaN or Inf"):
        render.heatmap(np.array([[1.0, bad]]), True)


def test_overlay_is_the_grey_image_where_relevance_is_zero():
    display = np.random.default_rng(1).integers(0, 256, (3, 4, 3), dtype=np.uint8)
    r = np.zeros((3, 4))
    r[0, 0] = 1.0
    out = render.overlay(render.heatmap(r, True), display, r, True)
    assert out.shape == (3, 4, 3) and out.dtype == np.uint8
    grey = np.rint(display @ [0.299, 0.587, 0.114]).astype(np.uint8)
    assert (out[1:] == grey[1:, :, None]).all()
    assert out[0, 0, 0] > out[0, 0, 2]


def test_upscale_by_an_integer_factor():
    image = np.arange(6, dtype=np.uint8).reshape(2, 3)
    big = render.upscale(image, min_side=5)
    assert big.shape == (6, 9) and (big[::3, ::3] == image).all()
    assert render.upscale(np.zeros((300, 400, 3)), 256).shape == (300, 400, 3)


def test_grid_writes_a_png_and_frees_its_figures(monkeypatch):
    figures = []

    class Tracked(matplotlib.figure.Figure):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            figures.append(weakref.ref(self))
    monkeypatch.setattr(matplotlib.figure, "Figure", Tracked)
    heat = render.heatmap(np.random.default_rng(0).normal(size=(32, 32)), True)
    display = np.zeros((32, 32, 3), np.uint8)
    for title in ("x", None):
        buffer = io.BytesIO()
        render.grid(display, [("lrp", heat), ("sa", heat)], buffer, title=title)
        png = Image.open(io.BytesIO(buffer.getvalue()))
        assert png.format == "PNG" and png.size[0] > 3 * 256 and png.size[1] > 256
    gc.collect()
    assert len(figures) == 2 and all(ref() is None for ref in figures)
    import matplotlib.pyplot as plt
    assert plt.get_fignums() == []


def test_grid_writes_to_a_path(tmp_path):
    heat = render.heatmap(np.ones((8, 8)), False)
    render.grid(np.zeros((8, 8, 3), np.uint8), [("sa", heat)], tmp_path / "g.png")
    assert Image.open(tmp_path / "g.png").size[1] > 256
