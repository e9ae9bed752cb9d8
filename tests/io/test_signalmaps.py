"""Signal pictures: relevance colours, the waveform plot, the spectrogram, the top windows, the thumbnail."""

import io
import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from xai_cli.io import signalmaps
from xai_cli.io.render import Style

WIDTH = int(signalmaps.WIDTH * signalmaps.DPI)


def png(draw, *args, **kwargs) -> np.ndarray:
    """What ``draw`` writes, opened as a PNG: RGB ``(H, W, 3)``."""
    file = io.BytesIO()
    draw(*args, file, **kwargs)
    file.seek(0)
    with Image.open(file) as picture:
        assert picture.format == "PNG"
        return np.asarray(picture.convert("RGB"))


def reddish(picture: np.ndarray) -> np.ndarray:
    r, g, b = np.moveaxis(picture.astype(int), -1, 0)
    return (r > 200) & (g < 90) & (b < 90)


def bluish(picture: np.ndarray) -> np.ndarray:
    r, g, b = np.moveaxis(picture.astype(int), -1, 0)
    return (b > r + 60) & (b > g + 60)


def panels(picture: np.ndarray) -> np.ndarray:
    """The picture above the time axis and the colour bar."""
    below = (signalmaps.PAD + signalmaps.BAR + signalmaps.AXIS) * signalmaps.DPI
    return picture[:len(picture) - round(below)]


def signal(steps=400, channels=1, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(steps)[:, None]
    return np.sin(t / 7 + np.arange(channels)) + 0.1 * rng.normal(size=(steps, channels))


# -- colours --

def test_for_is_red_against_is_blue_and_zero_is_transparent():
    against, zero, weak, strong = signalmaps.colours(np.array([-2.0, 0.0, 0.5, 2.0]), True, Style(clip=100))
    assert strong[0] > 0.9 and strong[1] < 0.1 and strong[2] < 0.1 and strong[3] == Style().opacity
    assert against[2] > 0.9 and against[0] < 0.1 and against[1] < 0.1
    assert zero[3] == 0 and 0 < weak[3] < strong[3]
    assert weak[0] == 1 and 0.4 < weak[1] < 1   # a pale red


def test_one_scale_for_all_channels():
    relevance = np.array([[1.0, 0.25], [0.0, 0.0]])
    colours = signalmaps.colours(relevance, True, Style(clip=100))
    assert colours.shape == (2, 2, 4)
    assert colours[0, 0, 1] < 0.1 and colours[0, 1, 1] > 0.5   # the weaker channel is paler, not as red
    assert colours[0, 1, 3] == pytest.approx(Style().opacity * 0.5)


def test_magnitudes_are_never_blue():
    relevance = np.random.default_rng(0).normal(size=(200, 3))
    rgb = signalmaps.colours(relevance, False)[..., :3]
    assert (rgb[..., 2] <= rgb[..., 0]).all()
    same = signalmaps.colours(np.abs(relevance), False)
    assert np.array_equal(signalmaps.colours(relevance, False), same)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_relevance_is_refused(bad):
    relevance = np.zeros((50, 2))
    relevance[3, 1] = bad
    for draw in (lambda: signalmaps.colours(relevance, True),
                 lambda: signalmaps.plot(np.zeros((50, 2)), relevance, io.BytesIO(), signed=True),
                 lambda: signalmaps.spectrogram(np.zeros((50, 2)), relevance, 100, io.BytesIO(), signed=True),
                 lambda: signalmaps.top_windows(relevance, 5)):
        with pytest.raises(ValueError, match="relevance contains NaN or Inf"):
            draw()


# -- the waveform plot --

def test_the_line_is_red_where_relevance_is_for_and_blue_where_against():
    values = signal()
    relevance = np.where(np.arange(400) < 200, 1.0, -1.0)[:, None]
    picture = panels(png(signalmaps.plot, values, relevance, signed=True))
    red, blue = np.nonzero(reddish(picture))[1], np.nonzero(bluish(picture))[1]
    middle = (signalmaps.LEFT + (signalmaps.WIDTH - signalmaps.LEFT - signalmaps.RIGHT) / 2) * signalmaps.DPI
    assert len(red) > 500 and len(blue) > 500
    assert red.max() < middle + 3 and blue.min() > middle - 3


def test_only_relevant_steps_are_coloured():
    relevance = np.zeros((400, 1))
    relevance[300:350] = 1.0
    picture = panels(png(signalmaps.plot, signal(), relevance, signed=True))
    red = np.nonzero(reddish(picture))[1]
    left = signalmaps.LEFT * signalmaps.DPI
    step = (signalmaps.WIDTH - signalmaps.LEFT - signalmaps.RIGHT) * signalmaps.DPI / 399
    assert not bluish(picture).any()
    assert left + 298 * step < red.min() and red.max() < left + 352 * step


def test_magnitudes_draw_no_blue():
    relevance = np.random.default_rng(1).normal(size=(400, 3))
    picture = png(signalmaps.plot, signal(channels=3), np.abs(relevance), signed=False)
    assert not bluish(picture).any()


@pytest.mark.parametrize("channels", [1, 3, 8, 9, 64])
def test_any_number_of_channels_draws(channels):
    values = signal(300, channels)
    relevance = np.random.default_rng(2).normal(size=values.shape)
    names = [f"E{c}" for c in range(channels)]
    picture = png(signalmaps.plot, values, relevance, signed=True, rate=100.0, channels=names, title="x")
    assert picture.shape[1] == WIDTH
    assert reddish(picture).any() and bluish(picture).any()


def test_more_channels_make_taller_figures_and_a_title_its_line():
    heights = [png(signalmaps.plot, signal(100, c), signal(100, c, 1), signed=True).shape[0]
               for c in (1, 3, 64)]
    assert heights[0] < heights[1] < heights[2]
    titled = png(signalmaps.plot, signal(100), signal(100, 1, 1), signed=True, title="a signal")
    assert titled.shape[0] == heights[0] + round(signalmaps.TITLE * signalmaps.DPI)


def test_dense_signals_draw_their_envelope_with_the_same_colours():
    values = np.sin(np.arange(20000) / 3.0)
    relevance = np.where(np.arange(20000) < 10000, 1.0, -1.0)
    picture = panels(png(signalmaps.plot, values, relevance, signed=True, rate=8000.0))
    red, blue = np.nonzero(reddish(picture))[1], np.nonzero(bluish(picture))[1]
    assert red.max() <= blue.min() + 1   # the pixel column where they meet may hold both


def test_shapes_and_names_must_fit():
    with pytest.raises(ValueError, match="must both be"):
        signalmaps.plot(np.zeros((10, 2)), np.zeros((10, 3)), io.BytesIO(), signed=True)
    with pytest.raises(ValueError, match="names"):
        signalmaps.plot(np.zeros((10, 2)), np.zeros((10, 2)), io.BytesIO(), signed=True, channels=["a"])


def test_flat_signals_and_zero_relevance_draw():
    png(signalmaps.plot, np.ones(10), np.zeros(10), signed=True)
    png(signalmaps.plot, np.zeros((2, 1)), np.zeros((2, 1)), signed=False)


# -- the time axis --

def test_time_in_samples_from_the_start():
    assert signalmaps.times(3, start=40).tolist() == [40, 41, 42]
    ticks, labels, name = signalmaps.time_ticks(40, 1039)
    assert name == "sample"
    assert labels == [str(int(t)) for t in ticks] and ticks[0] >= 40 and ticks[-1] <= 1039
    assert np.all(np.diff(ticks) > 0) and 3 <= len(ticks) <= 7


def test_time_in_seconds_from_start_over_rate():
    x = signalmaps.times(500, rate=50.0, start=1000)
    assert x[0] == 20.0 and x[-1] == pytest.approx(29.98)
    ticks, labels, name = signalmaps.time_ticks(x[0], x[-1], rate=50.0)
    assert name == "time (s)" and labels[0] == "20" and all(20 <= t <= 29.98 for t in ticks)
    ticks, labels, _ = signalmaps.time_ticks(0.0, 0.999875, rate=8000.0)
    assert labels == ["0.0", "0.2", "0.4", "0.6", "0.8"]
    assert signalmaps.time_ticks(0.0, 0.0099, rate=8000.0)[1][1] == "0.002"


# -- the spectrogram --

def test_a_tones_strongest_row_is_its_frequency():
    rate, tone = 8000.0, 1000.0
    t = np.arange(8000) / rate
    values = np.column_stack([np.sin(2 * np.pi * tone * t), 0.01 * np.sin(2 * np.pi * 3000 * t)])
    s = signalmaps.stft(values, np.zeros_like(values), rate)
    step = s.frequencies[1] - s.frequencies[0]
    assert abs(s.frequencies[s.decibels.mean(axis=1).argmax()] - tone) <= step / 2
    assert s.decibels.max() - s.decibels.min() <= signalmaps.DB_RANGE


def test_columns_split_the_relevance_and_start_at_the_signal():
    rng = np.random.default_rng(3)
    relevance = rng.normal(size=(4001, 2))
    s = signalmaps.stft(rng.normal(size=(4001, 2)), relevance, 8000.0, start=8000)
    assert s.relevance.sum() == pytest.approx(relevance.sum())
    assert s.times[0] == 1.0 and s.times[-1] < 1.5 and np.allclose(np.diff(s.times), s.hop / 8000)
    assert s.decibels.shape == (len(s.frequencies), len(s.times))
    one = np.zeros_like(relevance)
    one[2000, 0] = 5.0
    column = signalmaps.stft(np.zeros_like(relevance), one, 8000.0)
    assert column.relevance[round(2000 / column.hop)] == 5.0 and column.relevance.sum() == 5.0


def test_long_audio_keeps_a_bounded_number_of_columns():
    s = signalmaps.stft(np.zeros(16000 * 300), np.zeros(16000 * 300), 16000.0)
    assert len(s.times) <= signalmaps.MAX_FRAMES


@pytest.mark.parametrize("signed", [True, False])
def test_the_spectrogram_draws(signed):
    rate = 8000.0
    t = np.arange(8000) / rate
    values = np.sin(2 * np.pi * (200 * t + 1500 * t ** 2))
    relevance = np.where((t > 0.4) & (t < 0.6), 1.0, -0.2 if signed else 0.0)
    picture = png(signalmaps.spectrogram, values, relevance, rate, signed=signed, title="chirp")
    assert picture.shape[1] == WIDTH
    assert bluish(picture).any() == signed
    assert reddish(picture).any() or not signed


# -- top windows --

def test_top_windows_on_hand_made_relevance():
    r = np.array([0, 1, 2, 0, 0, 3, 0], float)
    assert signalmaps.top_windows(r, 2) == [(1, 3, 3.0), (4, 6, 3.0)]   # ties: the earlier first
    assert signalmaps.top_windows(r, 2, count=1) == [(1, 3, 3.0)]
    assert signalmaps.top_windows(r, 1, count=5) == [(5, 6, 3.0), (2, 3, 2.0), (1, 2, 1.0)]
    assert signalmaps.top_windows(np.array([1.0, -5.0, 2.0]), 10) == [(0, 3, 3.0)]   # wider than T
    assert signalmaps.top_windows(np.array([2.0, -10.0, 2.0]), 3) == [(0, 3, 4.0)]   # against counts 0
    assert signalmaps.top_windows(-np.ones((6, 2)), 2) == []
    assert signalmaps.top_windows(np.zeros(6), 2) == []
    channels = np.array([[1.0, 2.0], [0.0, 0.0], [0.5, 0.5]])
    assert signalmaps.top_windows(channels, 1) == [(0, 1, 3.0), (2, 3, 1.0)]
    with pytest.raises(ValueError, match="at least one step"):
        signalmaps.top_windows(r, 0)


def brute_force(relevance, width, count):
    """Greedy over every window's directly summed positive relevance (``(T,)``), ties
    (within rounding) to the earlier window."""
    positive = np.maximum(relevance, 0)
    width = min(width, len(positive))
    sums = {first: positive[first:first + width].sum() for first in range(len(positive) - width + 1)}
    found = []
    while len(found) < count:
        free = {f: s for f, s in sums.items() if all(f + width <= a or b <= f for a, b, _ in found)}
        if not free or max(free.values()) <= 0:
            break
        best = min(f for f, s in free.items() if s >= max(free.values()) - 1e-9)   # rounding ties too
        found.append((best, best + width, free[best]))
    return found


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(-4, 4), min_size=1, max_size=40), st.integers(1, 45), st.integers(1, 6))
def test_top_windows_are_the_greedy_choice_and_do_not_overlap(values, width, count):
    relevance = np.array(values, float)
    found = signalmaps.top_windows(relevance, width, count)
    assert found == brute_force(relevance, width, count)
    spans = sorted((first, stop) for first, stop, _ in found)
    assert all(stop <= first for (_, stop), (first, _) in itertools.pairwise(spans))
    assert all(0 <= first < stop <= len(relevance) for first, stop in spans)
    assert [s for *_, s in found] == sorted((s for *_, s in found), reverse=True)


def test_top_windows_on_random_real_relevance():
    rng = np.random.default_rng(4)
    for _ in range(50):
        relevance = rng.normal(size=(int(rng.integers(5, 300)), 2))
        width, count = int(rng.integers(1, 40)), int(rng.integers(1, 5))
        found = signalmaps.top_windows(relevance, width, count)
        expected = brute_force(np.maximum(relevance, 0).sum(axis=1), width, count)   # each step's own share
        assert [(f, s) for f, s, _ in found] == [(f, s) for f, s, _ in expected]
        assert [r for *_, r in found] == pytest.approx([r for *_, r in expected])


# -- thumbnail --

@pytest.mark.parametrize("shape", [(400,), (400, 3), (3000, 64), (100000, 1)])
def test_the_thumbnail_is_small_and_drawn(shape):
    values = np.random.default_rng(5).normal(size=shape).cumsum(axis=0)
    picture = png(signalmaps.thumbnail, values)
    assert picture.shape == (signalmaps.THUMBNAIL[1], signalmaps.THUMBNAIL[0], 3)
    assert (picture.sum(axis=-1) < 150).any() and (picture == 255).all(axis=-1).any()
