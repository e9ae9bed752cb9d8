"""Input discovery, sharding, decoding of awkward images, and preprocessing presets."""

import io

import numpy as np
import pytest
from PIL import Image

from xai_cli import inputs, preprocess
from xai_cli.errors import InputError, XaiError

UNIT = preprocess.resolve("unit")


def _png(path, mode="RGB", size=(20, 10), value=128):
    Image.new(mode, size, value if mode in ("L", "I;16", "P") else (value,) * len(mode)).save(path)
    return path


def test_discover_folders_globs_stdin_and_problems(tmp_path):
    for name in ("b.png", "a.jpg", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "empty").mkdir()
    items, problems = inputs.discover([str(tmp_path), str(tmp_path / "*.png"), "-",
                                       str(tmp_path / "missing.png"), str(tmp_path / "empty")],
                                      io.StringIO(f"{tmp_path / 'a.jpg'}\n\n"))
    assert [i.stem for i in items] == ["a", "b"]
    assert problems == [(str(tmp_path / "missing.png"), "no such file"),
                        (str(tmp_path / "empty"), "no images in directory")]


def test_stems_are_safe_and_unique(tmp_path):
    (tmp_path / "x").mkdir()
    a, b = _png(tmp_path / "cat.png"), _png(tmp_path / "x" / "cat.png")
    items, _ = inputs.discover([str(a), str(b)])
    assert [i.stem for i in items] == ["cat", "cat__2"]
    assert inputs.sanitise("../../etc/passwd\nx") == "_.._etc_passwd_x"
    assert inputs.sanitise("..") == "input"


def test_npy_batches_become_numbered_inputs(tmp_path):
    np.save(tmp_path / "batch.npy", np.zeros((12, 4, 4, 1), np.float32))
    items, _ = inputs.discover([str(tmp_path / "batch.npy")])
    assert [i.stem for i in items][:3] == ["batch-00", "batch-01", "batch-02"]
    assert items[-1].index == 11


def test_shards_are_disjoint_and_complete():
    items = [inputs.InputItem(str(i), str(i)) for i in range(10)]
    shards = [inputs.shard(items, f"{k}/3") for k in (1, 2, 3)]
    assert sorted(sum(shards, []), key=lambda i: int(i.stem)) == items
    for bad in ("0/3", "4/3", "a/b", "1-3"):
        with pytest.raises(XaiError):
            inputs.shard(items, bad)


@pytest.mark.parametrize("mode", ["RGB", "L", "RGBA", "LA", "P", "CMYK", "I;16", "1"])
def test_image_modes_load_as_rgb_or_grey(tmp_path, mode):
    path = tmp_path / ("x.jpg" if mode == "CMYK" else "x.png")
    Image.new(mode, (20, 10)).save(path)
    for shape in ((8, 8, 3), (8, 8, 1)):
        sample = inputs.load(inputs.InputItem(str(path), "x"), shape, UNIT)
        assert sample.x.shape == shape and sample.display.shape == (8, 8, 3)
        assert 0 <= sample.x.min() and sample.x.max() <= 1


def test_sixteen_bit_png_is_scaled_not_clipped(tmp_path):
    path = tmp_path / "deep.png"
    Image.fromarray(np.full((4, 4), 65535, np.uint16)).save(path)
    assert inputs.load(inputs.InputItem(str(path), "d"), (4, 4, 1), UNIT).x.max() == pytest.approx(1)


@pytest.mark.parametrize("content,reason", [
    (b"", "empty file"),
    (b"hello, I am text", "not a recognised image"),
])
def test_broken_files_give_one_line_reasons(tmp_path, content, reason):
    path = tmp_path / "bad.jpg"
    path.write_bytes(content)
    with pytest.raises(InputError, match=reason):
        inputs.load(inputs.InputItem(str(path), "bad"), (8, 8, 3), UNIT)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated_images_are_reported(tmp_path, fmt):
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)).save(buffer, fmt)
    path = tmp_path / f"cut.{fmt.lower()}"
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    with pytest.raises(InputError, match="truncated or corrupt"):
        inputs.load(inputs.InputItem(str(path), "cut"), (8, 8, 3), UNIT)


def test_huge_images_are_refused_before_decoding(tmp_path, monkeypatch):
    monkeypatch.setattr(inputs, "MAX_PIXELS", 100)
    path = _png(tmp_path / "big.png", size=(20, 10))
    with pytest.raises(InputError, match="larger than"):
        inputs.load(inputs.InputItem(str(path), "big"), (8, 8, 3), UNIT)


@pytest.mark.parametrize("array,reason", [
    (np.zeros((4, 4, 2), np.float32), "does not match the model input"),
    (np.array([[["a"] * 3] * 4] * 4), "not a real number type"),
    (np.full((4, 4, 3), np.nan, np.float32), "NaN or Inf"),
])
def test_bad_arrays(tmp_path, array, reason):
    np.save(tmp_path / "a.npy", array)
    with pytest.raises(InputError, match=reason):
        inputs.load(inputs.InputItem(str(tmp_path / "a.npy"), "a"), (4, 4, 3), UNIT)


def test_batches_keep_order_and_capture_errors():
    def load(item):
        if item.stem == "3":
            raise InputError("bad")
        return item.stem
    items = [inputs.InputItem(str(i), str(i)) for i in range(7)]
    batches = list(inputs.batches(items, load, 3))
    assert [len(b) for b in batches] == [3, 3, 1]
    flat = [value for batch in batches for _, value in batch]
    assert flat[:3] == ["0", "1", "2"] and isinstance(flat[3], InputError)


@pytest.mark.parametrize("name,low,high", [
    ("unit", [0, 0, 0], [1, 1, 1]), ("tf", [-1, -1, -1], [1, 1, 1]),
    ("raw", [0, 0, 0], [255, 255, 255]),
    ("caffe", [-103.939, -116.779, -123.68], [151.061, 138.221, 131.32]),
    ("torch", [-0.485 / 0.229, -0.456 / 0.224, -0.406 / 0.225],
     [0.515 / 0.229, 0.544 / 0.224, 0.594 / 0.225]),
])
def test_presets_and_their_valid_range(name, low, high):
    p = preprocess.resolve(name)
    lo, hi = p.valid_range(3)
    np.testing.assert_allclose(lo, low, rtol=1e-5)
    np.testing.assert_allclose(hi, high, rtol=1e-5)
    pixels = np.random.default_rng(0).uniform(0, 255, (2, 4, 4, 3)).astype(np.float32)
    np.testing.assert_allclose(p.invert(p.apply(pixels)), pixels, rtol=1e-4, atol=1e-3)


def test_caffe_swaps_to_bgr():
    x = preprocess.resolve("caffe").apply(np.array([[255.0, 0.0, 0.0]], np.float32))
    np.testing.assert_allclose(x, [[-103.939, -116.779, 255 - 123.68]], rtol=1e-5)


def test_explicit_preprocessing_and_errors():
    p = preprocess.resolve(scale=1 / 255, mean=(0.5,), std=(0.25,))
    assert p.name == "custom"
    np.testing.assert_allclose(p.valid_range(1)[0], [-2])
    assert preprocess.resolve("none").valid_range(3) is None
    with pytest.raises(XaiError):
        preprocess.resolve("imagenet")
    with pytest.raises(XaiError):
        preprocess.resolve(std=(0.0,))
