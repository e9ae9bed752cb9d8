"""Input discovery, stems, sharding, decoding of awkward images and arrays, batching."""

import io
import os
import struct
import threading
import time
import zlib

import numpy as np
import pytest
from PIL import Image

from xai_cli.errors import InputError, XaiError
from xai_cli.io import inputs, preprocess

UNIT = preprocess.resolve("unit")


def _image(path, mode="RGB", size=(20, 10), color=128, **save):
    Image.new(mode, size, color).save(path, **save)
    return str(path)


def _load(path, shape=(8, 8, 3), preprocessing=UNIT, index=None):
    return inputs.load(inputs.InputItem(str(path), "x", index), shape, preprocessing)


def _stems(args, stdin=None):
    items, problems = inputs.discover([str(a) for a in args], stdin)
    return [i.stem for i in items], problems


def test_discover_folders_globs_stdin_and_problems(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "empty").mkdir()
    for name in ("b.png", "a.jpg", "notes.txt", "sub/C.PNG", "sub/d.npy"):
        (tmp_path / name).write_bytes(b"x")
    np.save(tmp_path / "sub" / "d.npy", np.zeros((2, 2, 3)))
    items, problems = inputs.discover(
        [str(tmp_path), str(tmp_path / "*.png"), "-", str(tmp_path / "missing.png"),
         str(tmp_path / "empty"), str(tmp_path / "*.gif")],
        io.StringIO(f"{tmp_path / 'a.jpg'}\n\n   \n{tmp_path / 'sub' / '..' / 'b.png'}\r\n"))
    assert [os.path.relpath(i.source, tmp_path) for i in items] == ["a.jpg", "b.png", "sub/C.PNG",
                                                                    "sub/d.npy"]
    assert [i.stem for i in items] == ["a", "b", "C", "d"]
    assert problems == [(str(tmp_path / "missing.png"), "no such file"),
                        (str(tmp_path / "empty"), "no images in directory"),
                        (str(tmp_path / "*.gif"), "no files match this pattern")]


def test_discover_keeps_argument_order_and_recursive_globs(tmp_path):
    (tmp_path / "deep" / "er").mkdir(parents=True)
    paths = [_image(tmp_path / n) for n in ("z.png", "deep/y.png", "deep/er/x.png")]
    assert _stems([paths[0], tmp_path / "**" / "*.png"]) == (["z", "x", "y"], [])
    os.symlink(paths[0], tmp_path / "link.png")
    assert _stems([tmp_path / "link.png", paths[0]])[0] == ["link"]


def test_stdin_lines_keep_spaces(tmp_path):
    path = _image(tmp_path / " spaced name .png")
    assert _stems(["-"], io.StringIO(path + "\n")) == (["_spaced_name_"], [])


def test_stems_are_safe(tmp_path):
    assert inputs.sanitise("../../etc/passwd\nx") == "_.._etc_passwd_x"
    assert inputs.sanitise("..") == inputs.sanitise("") == "input"
    assert inputs.sanitise(".hidden") == "hidden"
    assert inputs.sanitise("é" * 300) == "_" * 100
    (tmp_path / "sub").mkdir()
    odd = _image(tmp_path / "a\nb;$(rm).png")
    dotted = _image(tmp_path / "...png", format="PNG")
    stems, _ = _stems(["-", odd, dotted], io.StringIO(f"{tmp_path}/sub/../../{tmp_path.name}/...png"))
    assert stems == ["input", "a_b___rm_"]
    assert all(os.path.basename(s) == s and not s.startswith(".") for s in stems)


def test_same_stems_get_unique_suffixes(tmp_path):
    for folder in ("a", "b", "c", "d"):
        (tmp_path / folder).mkdir()
    paths = [_image(tmp_path / n) for n in ("a/cat.png", "b/cat__2.png", "c/cat.jpg", "d/CAT.png")]
    assert _stems(paths)[0] == ["cat", "cat__2", "cat__3", "CAT__4"]
    assert _stems(paths)[0] == _stems(paths)[0]


@pytest.mark.parametrize("n,first,last", [(12, "batch-00", "batch-11"), (1, "batch-0", "batch-0"),
                                          (101, "batch-000", "batch-100")])
def test_npy_batches_become_numbered_inputs(tmp_path, n, first, last):
    np.save(tmp_path / "batch.npy", np.zeros((n, 4, 4, 1), np.float32))
    items, _ = inputs.discover([str(tmp_path / "batch.npy")] * 2)
    stems = [i.stem for i in items]
    assert (stems[0], stems[-1], len(stems)) == (first, last, n)
    assert stems == sorted(stems) and [i.index for i in items] == list(range(n))


def test_bad_npy_files_are_problems(tmp_path):
    np.save(tmp_path / "flat.npy", np.zeros((4, 4)))
    np.save(tmp_path / "none.npy", np.zeros((0, 4, 4, 3)))
    (tmp_path / "junk.npy").write_bytes(b"not an array")
    np.save(tmp_path / "one.npy", np.zeros((4, 4, 3)))
    items, problems = inputs.discover([str(tmp_path)])
    assert [(i.stem, i.index) for i in items] == [("one", None)]
    assert [(os.path.basename(p), r.split(":")[0]) for p, r in problems] == [
        ("flat.npy", "expected (H,W,C) or (N,H,W,C) array, got shape (4, 4)"),
        ("junk.npy", "not a readable .npy array"),
        ("none.npy", "expected (H,W,C) or (N,H,W,C) array, got shape (0, 4, 4, 3)")]


def shard(items, spec, size=1):
    return [item for _, window in inputs.windows(items, size, inputs.parse_shard(spec))
            for _, item in window]


def test_shards_are_disjoint_and_complete():
    items = [inputs.InputItem(str(i), str(i)) for i in range(10)]
    shards = [shard(items, f"{k}/3") for k in (1, 2, 3)]
    assert [len(s) for s in shards] == [4, 3, 3]
    assert [inputs.shard_size(10, 1, (k, 3)) for k in (1, 2, 3)] == [4, 3, 3]
    assert sorted([i for s in shards for i in s], key=lambda i: int(i.stem)) == items
    assert shard(items, "2/3")[:2] == [items[1], items[4]]
    assert shard(items, None) == shard(items, "1/1") == items
    assert shard(items, "12/12") == [] and inputs.shard_size(10, 1, (12, 12)) == 0


def test_shards_take_whole_windows_numbered_in_the_whole_job():
    items = [inputs.InputItem(str(i), str(i)) for i in range(10)]
    shards = [shard(items, f"{k}/2", size=3) for k in (1, 2)]
    assert [[int(i.stem) for i in s] for s in shards] == [[0, 1, 2, 6, 7, 8], [3, 4, 5, 9]]
    assert [inputs.shard_size(10, 3, (k, 2)) for k in (1, 2)] == [6, 4]
    second = list(inputs.windows(iter(items), 3, (2, 2)))   # any iterable, read as it goes
    assert [(n, [p for p, _ in w]) for n, w in second] == [(1, [3, 4, 5]), (3, [9])]


@pytest.mark.parametrize("bad", ["0/3", "4/3", "a/b", "1-3", "", "1/0", "-1/2", "1/2/3", "1.0/2"])
def test_bad_shard_specs(bad):
    with pytest.raises(XaiError, match=f"invalid --shard '{bad}': expected K/N"):
        inputs.parse_shard(bad)


@pytest.mark.parametrize("mode,ext", [("RGB", "png"), ("L", "png"), ("RGBA", "png"), ("LA", "png"),
                                      ("P", "gif"), ("CMYK", "jpg"), ("I;16", "png"), ("1", "bmp"),
                                      ("RGB", "bmp"), ("RGB", "webp"), ("F", "tif"), ("I", "tif")])
def test_image_modes_load_as_rgb_or_grey(tmp_path, mode, ext):
    path = tmp_path / f"x.{ext}"
    Image.new(mode, (20, 10)).save(path)
    for shape in ((8, 6, 3), (8, 6, 1)):
        sample = _load(path, shape)
        assert sample.x.shape == shape and sample.x.dtype == np.float32
        assert sample.display.shape == (8, 6, 3) and sample.display.dtype == np.uint8
        assert 0 <= sample.x.min() and sample.x.max() <= 1


def test_pixels_are_resized_and_preprocessed(tmp_path):
    path = _image(tmp_path / "c.png", color=(10, 20, 30))
    sample = _load(path, (5, 7, 3), preprocess.resolve("caffe"))
    np.testing.assert_allclose(sample.x, np.broadcast_to([30 - 103.939, 20 - 116.779, 10 - 123.68],
                                                         (5, 7, 3)), rtol=1e-5)
    assert (sample.display == [10, 20, 30]).all()
    gradient = np.tile(np.arange(0, 200, 10, np.uint8), (10, 1))
    Image.fromarray(gradient).save(tmp_path / "g.png")
    expected = np.asarray(Image.fromarray(gradient).resize((4, 3), Image.BILINEAR), np.float32)
    np.testing.assert_allclose(_load(tmp_path / "g.png", (3, 4, 1)).x[..., 0], expected / 255)
    assert (_load(tmp_path / "g.png", (10, 20, 1)).x[..., 0] * 255).round().tolist() == gradient.tolist()


def test_transparency_is_composited_on_black(tmp_path):
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[0] = (255, 0, 0, 255)
    rgba[1] = (255, 255, 255, 0)
    Image.fromarray(rgba).save(tmp_path / "a.png")
    assert _load(tmp_path / "a.png", (2, 2, 3)).display.tolist() == [[[255, 0, 0]] * 2, [[0, 0, 0]] * 2]
    palette = Image.new("P", (2, 1))
    palette.putpalette([0, 0, 0, 255, 255, 255])
    palette.putpixel((1, 0), 1)
    palette.save(tmp_path / "p.png", transparency=1)
    assert _load(tmp_path / "p.png", (1, 2, 3)).display.max() == 0


def test_sixteen_bit_png_is_scaled_not_clipped(tmp_path):
    path = tmp_path / "deep.png"
    Image.fromarray(np.array([[65535, 257 * 100, 0]], np.uint16)).save(path)
    assert Image.open(path).mode.startswith("I;16")
    np.testing.assert_allclose(_load(path, (1, 3, 1)).x.ravel() * 255, [255, 100, 0], atol=1e-4)


def test_cmyk_jpeg_becomes_rgb(tmp_path):
    path = _image(tmp_path / "c.jpg", "CMYK", color=(0, 255, 255, 0))
    red = _load(path, (4, 4, 3)).display
    assert (red[..., 0] > 240).all() and (red[..., 1:] < 15).all()


@pytest.mark.parametrize("content,reason", [
    (b"", "empty file"),
    (b"hello, I am text", "not a recognised image"),
    (None, "cannot read: No such file or directory"),
])
def test_broken_files_give_one_line_reasons(tmp_path, content, reason):
    path = tmp_path / "bad.jpg"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(InputError, match=reason):
        _load(path)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated_images_are_reported(tmp_path, fmt):
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)).save(buffer, fmt)
    path = tmp_path / f"cut.{fmt.lower()}"
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    with pytest.raises(InputError, match=r"^truncated or corrupt image: "):
        _load(path)


def _claimed_size_png(path, width, height):
    """A tiny PNG whose header claims ``width`` x ``height`` pixels."""
    _image(path, size=(1, 1))
    data = bytearray(path.read_bytes())
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("width,height,message", [
    (9000, 8000, "image is 9000 x 8000 pixels, larger than the 64-megapixel limit"),
    (10_000, 10_000, "larger than the 64-megapixel limit"),
    (100_000, 100_000, "larger than the 64-megapixel limit"),
])
@pytest.mark.filterwarnings("error::PIL.Image.DecompressionBombWarning")
def test_huge_images_are_refused_before_decoding(tmp_path, width, height, message):
    path = _claimed_size_png(tmp_path / "bomb.png", width, height)
    with pytest.raises(InputError, match=message):
        _load(path)


def test_pixel_limit_is_a_module_constant(tmp_path, monkeypatch):
    monkeypatch.setattr(inputs, "MAX_PIXELS", 100)
    path = _image(tmp_path / "big.png", size=(20, 10))
    with pytest.raises(InputError, match=r"image is 20 x 10 pixels, larger than the 0\.0001-megapixel"):
        _load(path)


def test_images_need_one_or_three_channels_and_a_preset(tmp_path):
    path = _image(tmp_path / "x.png")
    with pytest.raises(XaiError, match="4-channel"):
        _load(path, (8, 8, 4))
    with pytest.raises(XaiError, match=r"only for \.npy inputs"):
        _load(path, preprocessing=preprocess.resolve("none"))


@pytest.mark.parametrize("array,reason", [
    (np.zeros((4, 4, 2), np.float32), r"array shape \(4, 4, 2\) does not match the model input \(4, 4, 3\)"),
    (np.array([[["a"] * 3] * 4] * 4), "array dtype <U1 is not a real number type"),
    (np.zeros((4, 4, 3), bool), "not a real number type"),
    (np.zeros((4, 4, 3), complex), "not a real number type"),
    (np.full((4, 4, 3), np.nan, np.float32), "NaN or Inf"),
    (np.full((4, 4, 3), -np.inf), "NaN or Inf"),
])
def test_bad_arrays(tmp_path, array, reason):
    np.save(tmp_path / "a.npy", array)
    with pytest.raises(InputError, match=reason):
        _load(tmp_path / "a.npy", (4, 4, 3))


def test_arrays_are_used_as_they_are(tmp_path):
    batch = np.random.default_rng(0).uniform(-1, 1, (3, 4, 4, 3)).astype(np.float16)
    np.save(tmp_path / "b.npy", batch)
    tf = preprocess.resolve("tf")
    sample = _load(tmp_path / "b.npy", (4, 4, 3), tf, index=2)
    assert sample.x.dtype == np.float32 and sample.x.flags.writeable
    np.testing.assert_array_equal(sample.x, batch[2])
    np.testing.assert_allclose(sample.display, tf.invert(batch[2].astype(np.float32)), atol=0.51)


def test_array_display_for_none_and_grey(tmp_path):
    np.save(tmp_path / "g.npy", np.array([[[-5], [5]]], np.int16))
    display = _load(tmp_path / "g.npy", (1, 2, 1), preprocess.resolve("none")).display
    assert display.tolist() == [[[0, 0, 0], [255, 255, 255]]]
    np.save(tmp_path / "c.npy", np.full((2, 2, 3), 7.0))
    assert _load(tmp_path / "c.npy", (2, 2, 3), preprocess.resolve("none")).display.max() == 0
    np.save(tmp_path / "two.npy", np.full((2, 2, 2), 0.4))
    assert (_load(tmp_path / "two.npy", (2, 2, 2)).display == 102).all()


def test_batches_keep_order_and_capture_errors():
    def load(item):
        time.sleep(0.01 * (int(item.stem) % 3))
        if item.stem == "3":
            raise InputError("bad")
        return item.stem
    items = [inputs.InputItem(str(i), str(i)) for i in range(7)]
    tagged = list(inputs.batches(zip("abc", [items[:3], items[3:6], items[6:]]), load))
    assert [tag for tag, _ in tagged] == ["a", "b", "c"]
    batches = [group for _, group in tagged]
    assert [len(b) for b in batches] == [3, 3, 1]
    assert [item for batch in batches for item, _ in batch] == items
    flat = [value for batch in batches for _, value in batch]
    assert flat[:3] == ["0", "1", "2"] and isinstance(flat[3], InputError) and flat[4:] == ["4", "5", "6"]
    assert list(inputs.batches([], load)) == []


def test_batches_propagate_other_errors():
    def load(item):
        raise ValueError("bug")
    with pytest.raises(ValueError, match="bug"):
        list(inputs.batches([(0, [inputs.InputItem("0", "0")])], load))


def test_batches_load_a_bounded_number_ahead():
    started, lock = [], threading.Lock()

    def load(item):
        with lock:
            started.append(item)
        return item
    items = [inputs.InputItem(str(i), str(i)) for i in range(100)]
    pairs = ((i, items[i:i + 2]) for i in range(0, len(items), 2))
    for k, _ in enumerate(inputs.batches(pairs, load, workers=8)):
        time.sleep(0.002)
        assert len(started) <= 2 * (k + 3)


def _thirds(path, size=(60, 30)):
    """A wide picture: red, green and blue vertical thirds."""
    width, height = size
    pixels = np.zeros((height, width, 3), np.uint8)
    for third, channel in enumerate((0, 1, 2)):
        pixels[:, third * width // 3:(third + 1) * width // 3, channel] = 255
    Image.fromarray(pixels).save(path)
    return path


def _load_fit(path, resize, shape=(12, 12, 3)):
    return inputs.load(inputs.InputItem(str(path), "x"), shape, UNIT, resize)


def test_squash_keeps_the_whole_picture_distorted(tmp_path):
    sample = _load_fit(_thirds(tmp_path / "w.png"), "squash")
    assert sample.fit.mode == "squash" and sample.fit.source_size == (60, 30)
    row = sample.display[6]
    assert row[0].tolist() == [255, 0, 0] and row[6].tolist() == [0, 255, 0] \
        and row[-1].tolist() == [0, 0, 255]


def test_crop_keeps_the_centre_at_the_right_aspect(tmp_path):
    sample = _load_fit(_thirds(tmp_path / "w.png"), "crop")
    # shorter side 30 -> 12: the centre 30x30 (x 15..45) of the picture; green is x 20..40
    assert sample.fit.box == (15.0, 0.0, 45.0, 30.0)
    row = sample.display[6]
    assert row[0][0] > 200 and row[-1][2] > 200            # a sliver of red and blue
    assert (row[3:9] == [0, 255, 0]).all()                   # the middle two thirds: green
    assert (sample.display == sample.display[:1]).all()      # rows undistorted, identical


def test_pad_keeps_everything_on_black(tmp_path):
    sample = _load_fit(_thirds(tmp_path / "w.png"), "pad")
    # longer side 60 -> 12: the picture becomes 12x6 on rows 3..8
    assert sample.fit.frame == (0, 3, 12, 9)
    assert (sample.display[:3] == 0).all() and (sample.display[9:] == 0).all()
    assert sample.display[6, 0].tolist() == [255, 0, 0] and sample.display[6, -1].tolist() == [0, 0, 255]
    assert (sample.x[:3] == 0).all()                         # black after preprocessing too


@pytest.mark.parametrize("resize", ["squash", "crop", "pad"])
def test_square_pictures_fit_the_same_way_in_every_mode(tmp_path, resize):
    gradient = np.tile(np.arange(0, 240, 10, np.uint8), (24, 1))
    Image.fromarray(gradient).save(tmp_path / "g.png")
    expected = _load_fit(tmp_path / "g.png", "squash", (12, 12, 1)).x
    np.testing.assert_array_equal(_load_fit(tmp_path / "g.png", resize, (12, 12, 1)).x, expected)


def test_tall_pictures_crop_and_pad_vertically(tmp_path):
    Image.fromarray(np.rot90(np.asarray(Image.open(_thirds(tmp_path / "w.png")))).copy()).save(
        tmp_path / "t.png")                                  # 30 wide, 60 tall
    cropped = _load_fit(tmp_path / "t.png", "crop")
    assert cropped.fit.box == (0.0, 15.0, 30.0, 45.0)
    padded = _load_fit(tmp_path / "t.png", "pad")
    assert padded.fit.frame == (3, 0, 9, 12) and (padded.display[:, :3] == 0).all()


def test_fit_maps_picture_coordinates_like_the_pixels():
    fit = inputs.Fit.of("crop", (60, 30), (12, 12))
    x, y = fit.to_input(np.array([15.0, 45.0, 30.0]), np.array([0.0, 30.0, 15.0]))
    np.testing.assert_allclose(x, [0, 12, 6])
    np.testing.assert_allclose(y, [0, 12, 6])
    with pytest.raises(XaiError, match="unknown resize mode 'stretch'"):
        inputs.Fit.of("stretch", (60, 30), (12, 12))


def test_arrays_are_not_resized(tmp_path):
    np.save(tmp_path / "a.npy", np.zeros((8, 8, 3), np.float32))
    assert _load(tmp_path / "a.npy").fit.mode == "none"
