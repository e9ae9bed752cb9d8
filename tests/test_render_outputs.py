"""Heatmap colours, overlays, figures, atomic writes and JSON lines."""

import io
import json

import numpy as np
import pytest
from PIL import Image

from xai_cli import outputs, render


def test_diverging_map_is_centred_on_zero():
    r = np.array([[-2.0, 0.0, 2.0, 1.0]])
    blue, white, red, half = render.heatmap(r, signed=True)[0].astype(int)
    assert white.min() > 240
    assert red[0] > 200 and red[2] < 60 and blue[2] > 200 and blue[0] < 60
    assert half[0] > half[2] and half.min() > red.min()


def test_sequential_map_grows_with_magnitude_and_sums_channels():
    r = np.stack([np.linspace(0, 1, 5)[None]] * 3, axis=-1)  # (1, 5, 3)
    brightness = render.heatmap(r, signed=False)[0].astype(int).sum(axis=-1)
    assert np.all(np.diff(brightness) > 0)


def test_zero_and_non_finite_relevance():
    assert render.heatmap(np.zeros((2, 2)), signed=True).min() > 240
    with pytest.raises(ValueError, match="NaN"):
        render.heatmap(np.array([[np.nan]]), signed=True)


def test_overlay_keeps_the_image_where_relevance_is_zero():
    display = np.full((2, 2, 3), 100, np.uint8)
    r = np.array([[0.0, 1.0], [0.0, 0.0]])
    out = render.overlay(render.heatmap(r, True), display, r, True)
    assert (out[0, 0] == 100).all() and out[0, 1, 0] > out[0, 1, 2]


def test_grid_writes_a_png():
    buffer = io.BytesIO()
    heat = render.heatmap(np.random.default_rng(0).normal(size=(8, 8)), True)
    render.grid(np.zeros((8, 8, 3), np.uint8), [("lrp", heat), ("sa", heat)], buffer, title="x")
    assert Image.open(io.BytesIO(buffer.getvalue())).size[0] > 3 * 8


def test_atomic_write_keeps_the_old_file_on_failure(tmp_path):
    path = tmp_path / "a.csv"
    path.write_text("old")

    def fail(f):
        f.write(b"half")
        raise RuntimeError("killed")
    with pytest.raises(RuntimeError):
        outputs.atomic_write(path, fail)
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["a.csv"]


def test_csv_is_byte_identical_and_json_lines_are_strict(tmp_path):
    rows = [("a", 0.1 + 0.2, 3), ("b", np.float32(1 / 3), 4)]
    outputs.save_csv(tmp_path / "1.csv", ["name", "value", "n"], rows)
    outputs.save_csv(tmp_path / "2.csv", ["name", "value", "n"], rows)
    assert (tmp_path / "1.csv").read_bytes() == (tmp_path / "2.csv").read_bytes()
    stream = io.StringIO()
    outputs.emit({"x": float("nan"), "y": [1.0, float("inf")]}, stream)
    assert json.loads(stream.getvalue()) == {"x": None, "y": [1.0, None]}
    assert stream.getvalue().count("\n") == 1


def test_out_path_refuses_to_leave_the_folder(tmp_path):
    assert outputs.out_path(tmp_path, "a", ".png") == tmp_path / "a.png"
    with pytest.raises(ValueError):
        outputs.out_path(tmp_path, "../a", ".png")


def test_background_writer_reports_failures():
    def boom():
        raise OSError("disk full")
    with pytest.raises(OSError, match="disk full"):
        with outputs.BackgroundWriter() as writer:
            writer.submit(boom)
