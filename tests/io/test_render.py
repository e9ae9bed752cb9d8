"""Heatmap colours, overlays and figures."""

import gc
import io
import weakref

import matplotlib.figure
import numpy as np
import pytest
from PIL import Image

from xai_cli.io import render
from xai_cli.kinds import image


def test_diverging_map_is_white_at_zero_red_positive_blue_negative():
    blue, white, red, half = render.heatmap(np.array([[-2.0, 0.0, 2.0, 1.0]]), True)[0].astype(int)
    assert (white == 255).all()
    assert red[0] > 200 and red[2] < 60 and blue[2] > 200 and blue[0] < 60
    assert half[0] == 255 and red[1] < half[1] < 255


def test_sequential_map_rises_from_black():
    brightness = render.heatmap(np.linspace(0, 1, 9)[None], False)[0].astype(int).sum(axis=-1)
    assert brightness[0] == 0 and np.all(np.diff(brightness) > 0)


def test_an_images_channels_are_summed():
    r = np.random.default_rng(0).normal(size=(4, 5, 3))
    for signed in (True, False):
        assert (render.heatmap(image.pixels(r), signed) == render.heatmap(r.sum(axis=-1), signed)).all()


def test_all_zero_relevance_gives_the_centre_or_lowest_colour():
    with np.errstate(all="raise"):
        assert (render.heatmap(np.zeros((2, 3)), True) == 255).all()
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
        panels = [render.Panel(n, heat, True, 1.0, "bwr") for n in ("lrp", "sa")]
        render.grid(display, panels, buffer, title=title)
        png = Image.open(io.BytesIO(buffer.getvalue()))
        assert png.format == "PNG" and png.size[0] > 3 * 256 and png.size[1] > 256
    gc.collect()
    assert len(figures) == 2 and all(ref() is None for ref in figures)
    import matplotlib.pyplot as plt
    assert plt.get_fignums() == []


def test_grid_writes_to_a_path(tmp_path):
    heat = render.heatmap(np.ones((8, 8)), False)
    render.grid(np.zeros((8, 8, 3), np.uint8), [render.Panel("sa", heat, False, 1.0, "afmhot")],
                tmp_path / "g.png")
    assert Image.open(tmp_path / "g.png").size[1] > 256


def test_the_scale_is_a_percentile_so_outliers_do_not_pale_the_map():
    r = np.full((20, 20), 0.1)
    r[0, 0] = 100.0                                          # one extreme pixel
    assert render.scale(r, 100) == 100.0
    assert render.scale(r, 99.5) == pytest.approx(0.1)
    pale = render.heatmap(r, False, render.Style(clip=100))
    clipped = render.heatmap(r, False, render.Style(clip=99.5))
    assert pale[5, 5].sum() < 60                             # near black: 0.1 % of the scale
    assert (clipped[5, 5] == clipped[0, 0]).all()            # at the scale, as strong as the outlier
    assert clipped[0, 0].tolist() == render.colour_table("afmhot", False)[-1].tolist()


def test_sparse_maps_fall_back_to_the_maximum():
    r = np.zeros((20, 20))
    r[3, 4] = -2.0                                           # the 99.5th percentile is zero
    assert render.scale(r, 99.5) == 2.0
    assert render.heatmap(r, True)[3, 4].tolist() == render.colour_table("bwr", True)[0].tolist()


def test_clipping_is_symmetric_for_signed_maps():
    r = np.linspace(-1, 1, 201)[None] ** 3
    heat = render.heatmap(r, True, render.Style(clip=90))
    lut = render.colour_table("bwr", True)
    beyond = np.abs(r[0]) >= render.scale(r, 90)
    assert (heat[0][beyond & (r[0] > 0)] == lut[-1]).all()
    assert (heat[0][beyond & (r[0] < 0)] == lut[0]).all()


def test_colour_maps_replace_the_default_of_their_kind():
    style = render.Style.choose(99.5, ("viridis", "PuOr_r"))
    assert (style.diverging, style.sequential) == ("PuOr_r", "viridis")
    assert render.Style.choose(99.5, ("cividis",)).diverging == "bwr"
    with pytest.raises(ValueError, match="two diverging colour maps given: bwr and RdBu_r"):
        render.Style.choose(99.5, ("bwr", "RdBu_r"))
    r = np.linspace(0, 1, 9)[None]
    low, high = render.heatmap(r, False, style)[0, [0, -1]].tolist()
    assert low == render.colour_table("viridis", False)[0].tolist() != [0, 0, 0]
    assert high == render.colour_table("viridis", False)[-1].tolist()


def test_overlay_opacity():
    display = np.full((2, 2, 3), 100, np.uint8)
    r = np.array([[1.0, 0.0], [0.0, 0.0]])
    heat = render.heatmap(r, True)
    hidden = render.overlay(heat, display, r, True, render.Style(opacity=0))
    assert (hidden == 100).all()
    opaque = render.overlay(heat, display, r, True, render.Style(opacity=1))
    assert opaque[0, 0].tolist() == heat[0, 0].tolist()


def test_grid_draws_a_colour_bar_per_heatmap(tmp_path):
    white = render.heatmap(np.zeros((32, 32)), True)         # no blue in the heatmap itself
    panel = render.Panel("lrp", white, True, 0.5, "bwr")
    render.grid(np.zeros((32, 32, 3), np.uint8), [panel], tmp_path / "g.png")
    pixels = np.asarray(Image.open(tmp_path / "g.png").convert("RGB")).astype(int)
    blue = (pixels[..., 2] > 200) & (pixels[..., 0] < 40) & (pixels[..., 1] < 40)
    rows = np.flatnonzero(blue.any(axis=1))
    assert len(rows) > 0 and rows.min() > 256                # below the 256-pixel panels
