"""Clips: discovery (folders of frames, GIFs, videos, arrays), frame selection, decoding."""

import numpy as np
import pytest
from PIL import Image

from xai_cli.errors import InputError, XaiError
from xai_cli.io import clips, preprocess
from xai_cli.io.inputs import InputItem

UNIT = preprocess.resolve("unit")
SHAPE = (4, 8, 8, 1)   # the model's (T, H, W, C)


def _frames(count, size=(12, 10)):
    """Grey frames whose value is 20 times their number: which frame a step shows is read
    back from its pixels."""
    return [Image.new("L", size, 20 * i) for i in range(count)]


def _gif(path, count, duration=70):
    frames = _frames(count)
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=duration, loop=0)
    return str(path)


def _folder(path, count):
    path.mkdir()
    for i, frame in enumerate(_frames(count)):
        frame.save(path / f"frame_{i}.png")   # frame_10 after frame_9: numbers compare as numbers
    return str(path)


def _load(source, selection=None, shape=SHAPE, index=None):
    return clips.load(InputItem(str(source), "x", index), shape, UNIT, selection or clips.Selection())


def _shown(clip):
    """The frame number each step shows, read from its pixels."""
    return [round(float(v)) for v in clip.x.reshape(len(clip.x), -1).mean(1) * 255 / 20]


@pytest.mark.parametrize("spec,stride,count,expected", [
    (None, None, 12, [0, 4, 7, 11]),        # spread evenly over the clip
    (None, None, 4, [0, 1, 2, 3]),
    (None, None, 2, [0, 1, 1, 1]),          # too short: the last frame repeated
    ("6", None, 12, [0, 2, 3, 5]),          # the first 6
    ("3:", 2, 12, [3, 5, 7, 9]),            # from frame 3, every other
    (":5", 3, 12, [0, 3, 3, 3]),
    ("2:4", None, 12, [2, 3, 3, 3]),
    (None, 5, 12, [0, 5, 10, 10]),
])
def test_selection_chooses_the_frames_each_step_sees(spec, stride, count, expected):
    assert clips.Selection.parse(spec, stride).indices(count, 4) == expected


@pytest.mark.parametrize("spec", ["", ":", "a", "3:1", "2:2", "-1", "1:2:3"])
def test_a_bad_frame_range_is_refused(spec):
    with pytest.raises(XaiError, match="--frames"):
        clips.Selection.parse(spec, None)


def test_a_range_past_the_clip_fails_that_clip_only():
    with pytest.raises(InputError, match="the clip has 5 frames; --frames starts at frame 7"):
        clips.Selection.parse("7:", None).indices(5, 4)


def test_gif_folder_and_array_give_the_same_clip(tmp_path):
    gif = _load(_gif(tmp_path / "c.gif", 12))
    folder = _load(_folder(tmp_path / "frames", 12))
    frames = np.stack([np.asarray(f, np.float32)[..., None] / 255 for f in _frames(12)])
    np.save(tmp_path / "c.npy", frames)
    array = clips.load(InputItem(str(tmp_path / "c.npy"), "x"), (4, 10, 12, 1), UNIT,
                       clips.Selection())
    assert _shown(gif) == _shown(folder) == [0, 4, 7, 11]
    assert gif.frames == folder.frames == array.frames == [0, 4, 7, 11]
    assert gif.source_frames == folder.source_frames == array.source_frames == 12
    assert gif.frame_ms == 70 and folder.frame_ms is None
    assert gif.x.shape == SHAPE and gif.display.shape == (4, 8, 8, 3)
    assert gif.fit.source_size == (12, 10)
    np.testing.assert_allclose(array.x[:, 0, 0, 0], [0, 80 / 255, 140 / 255, 220 / 255], atol=1e-6)


def test_discovery_finds_clips_and_one_clip_per_array_row(tmp_path):
    _gif(tmp_path / "b.gif", 3)
    _folder(tmp_path / "a_frames", 3)
    (tmp_path / "nested").mkdir()
    np.save(tmp_path / "nested" / "batch.npy", np.zeros((2, 5, 8, 8, 1), np.float32))
    (tmp_path / "notes.txt").write_text("not a clip")
    items, problems = clips.discover([str(tmp_path)])
    assert [i.stem for i in items] == ["a_frames", "b", "batch-0", "batch-1"]
    assert [i.index for i in items] == [None, None, 0, 1]
    assert problems == []
    items, problems = clips.discover([str(tmp_path / "a_frames"), str(tmp_path / "none.gif")])
    assert [i.stem for i in items] == ["a_frames"] and problems == [(str(tmp_path / "none.gif"),
                                                                    "no such file")]
    np.save(tmp_path / "flat.npy", np.zeros((8, 8, 1)))
    assert clips.discover([str(tmp_path / "flat.npy")])[1] == [
        (str(tmp_path / "flat.npy"), "expected (T,H,W,C) or (N,T,H,W,C) array, got shape (8, 8, 1)")]


def test_video_files_are_decoded_by_the_bundled_ffmpeg(tmp_path):
    ffmpeg = pytest.importorskip("imageio_ffmpeg")
    writer = ffmpeg.write_frames(str(tmp_path / "v.mp4"), (32, 16), fps=10, macro_block_size=16)
    writer.send(None)
    for i in range(10):
        writer.send(np.full((16, 32, 3), 20 * i, np.uint8).tobytes())
    writer.close()
    clip = _load(tmp_path / "v.mp4", clips.Selection(stride=3))
    assert clip.frames == [0, 3, 6, 9] and clip.source_frames == 10 and clip.frame_ms == 100
    assert _shown(clip) == [0, 3, 6, 9]   # lossy coding of flat grey frames keeps their level
    (tmp_path / "broken.mp4").write_bytes(b"not a video")
    with pytest.raises(InputError, match="not a readable video"):
        _load(tmp_path / "broken.mp4")


def test_bad_clips_fail_alone_with_the_reason(tmp_path):
    (tmp_path / "empty.gif").write_bytes(b"")
    with pytest.raises(InputError, match=r"empty file|not a readable animation"):
        _load(tmp_path / "empty.gif")
    np.save(tmp_path / "wrong.npy", np.zeros((5, 9, 8, 1), np.float32))
    with pytest.raises(InputError, match=r"does not hold frames of the model input \(8, 8, 1\)"):
        _load(tmp_path / "wrong.npy")
    folder = tmp_path / "mixed"
    folder.mkdir()
    Image.new("L", (8, 8)).save(folder / "1.png")
    Image.new("L", (9, 8)).save(folder / "2.png")
    with pytest.raises(InputError, match="the frames differ in size"):
        _load(folder)


def test_pictures_with_preprocessing_none_are_refused_for_the_job(tmp_path):
    with pytest.raises(XaiError, match=r"--preprocess none is only for \.npy inputs"):
        clips.load(InputItem(_gif(tmp_path / "c.gif", 3), "x"), SHAPE, preprocess.resolve("none"),
                   clips.Selection())
