"""Preprocessing presets: the Keras applications' formulas, their inverses and ranges."""

import numpy as np
import pytest

from xai_cli.errors import XaiError
from xai_cli.io import preprocess

PIXELS = np.random.default_rng(0).uniform(0, 255, (2, 3, 4, 4, 3)).astype(np.float32)


@pytest.mark.parametrize("name,formula", [
    ("caffe", lambda p: p[..., ::-1] - [103.939, 116.779, 123.68]),
    ("tf", lambda p: p / 127.5 - 1),
    ("torch", lambda p: (p / 255 - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225]),
    ("unit", lambda p: p / 255),
    ("raw", lambda p: p),
    ("none", lambda p: p),
])
def test_presets_match_keras_applications_and_invert(name, formula):
    p = preprocess.resolve(name)
    x = p.apply(PIXELS)
    assert x.dtype == np.float32 and x.shape == PIXELS.shape
    np.testing.assert_allclose(x, formula(PIXELS.astype(np.float64)), rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(p.invert(x), PIXELS, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("name,low,high", [
    ("unit", [0, 0, 0], [1, 1, 1]),
    ("tf", [-1, -1, -1], [1, 1, 1]),
    ("raw", [0, 0, 0], [255, 255, 255]),
    ("caffe", [-103.939, -116.779, -123.68], [151.061, 138.221, 131.32]),
    ("torch", [-0.485 / 0.229, -0.456 / 0.224, -0.406 / 0.225],
     [0.515 / 0.229, 0.544 / 0.224, 0.594 / 0.225]),
])
def test_valid_range_is_the_image_of_0_and_255(name, low, high):
    lo, hi = preprocess.resolve(name).valid_range(3)
    assert lo.shape == hi.shape == (3,)
    np.testing.assert_allclose(lo, low, rtol=1e-5)
    np.testing.assert_allclose(hi, high, rtol=1e-5)


def test_caffe_swaps_to_bgr_and_back():
    p = preprocess.resolve("caffe")
    red = np.array([[255.0, 0.0, 0.0]], np.float32)
    np.testing.assert_allclose(p.apply(red), [[-103.939, -116.779, 255 - 123.68]], rtol=1e-5)
    np.testing.assert_allclose(p.invert(p.apply(red)), red, atol=1e-4)


def test_invert_clips_to_pixel_range():
    np.testing.assert_allclose(preprocess.resolve("unit").invert(np.array([-1.0, 0.5, 2.0])),
                               [0, 127.5, 255])


def test_one_channel_models_use_the_average_mean_and_std():
    for name in ("caffe", "torch"):
        p = preprocess.resolve(name)
        mean, std = np.mean(p.mean), np.mean(p.std or (1.0,))
        grey = PIXELS[..., :1]
        np.testing.assert_allclose(p.apply(grey), (grey * p.scale - mean) / std, rtol=1e-5, atol=1e-4)
        np.testing.assert_allclose(p.invert(p.apply(grey)), grey, rtol=1e-4, atol=1e-3)
        assert p.valid_range(1)[0].shape == (1,)


def test_mismatched_channel_counts_are_config_errors():
    with pytest.raises(XaiError, match="3 channel values but the model input has 4"):
        preprocess.resolve("torch").apply(np.zeros((2, 2, 4)))
    np.testing.assert_allclose(preprocess.resolve("unit").valid_range(5)[1], np.ones(5))


def test_explicit_values_make_a_custom_preprocessing():
    p = preprocess.resolve(scale=1 / 255, mean=(0.5,), std=(0.25,))
    assert p == preprocess.Preprocessing("custom", 1 / 255, (0.5,), (0.25,))
    np.testing.assert_allclose(p.valid_range(1), [[-2], [2]])
    assert preprocess.resolve(mean=[1, 2, 3]).mean == (1.0, 2.0, 3.0)
    assert preprocess.resolve(std=2).std == (2.0,)
    override = preprocess.resolve("caffe", mean=(0, 0, 0))
    assert override.name == "custom" and override.bgr
    np.testing.assert_allclose(override.apply(np.array([1.0, 2.0, 3.0])), [3, 2, 1])


@pytest.mark.parametrize("kwargs,message", [
    ({"name": "imagenet"}, "expected one of caffe, tf, torch, unit, raw, none"),
    ({"std": (1.0, 0.0, 1.0)}, "must not be 0"),
    ({"scale": 0.0}, "must not be 0"),
    ({"mean": (float("nan"),)}, "finite"),
    ({"mean": "a,b"}, "must be numbers"),
    ({"scale": [1, 2]}, "must be numbers"),
    ({"name": "none", "scale": 2.0}, "cannot be combined"),
])
def test_resolve_errors(kwargs, message):
    with pytest.raises(XaiError, match=message):
        preprocess.resolve(**kwargs)


def test_none_has_no_range_and_keeps_arrays():
    p = preprocess.resolve("none")
    assert p.valid_range(3) is None
    assert p.apply(PIXELS) is PIXELS
