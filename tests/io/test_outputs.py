"""Atomic files, CSV, JSON lines and the background writer."""

import io
import json
import threading
import time

import numpy as np
import pytest
from PIL import Image

from xai_cli.io import outputs


def test_atomic_write_replaces_and_creates_folders(tmp_path):
    path = tmp_path / "a" / "b.bin"
    outputs.atomic_write(path, lambda f: f.write(b"new"))
    assert path.read_bytes() == b"new" and list(path.parent.iterdir()) == [path]


def test_atomic_write_keeps_the_old_file_on_failure(tmp_path):
    path = tmp_path / "a.csv"
    path.write_text("old")

    def fail(f):
        f.write(b"half")
        raise RuntimeError("killed")
    with pytest.raises(RuntimeError, match="killed"):
        outputs.atomic_write(path, fail)
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["a.csv"]


def test_png_and_npy_round_trip(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, (4, 5, 3), dtype=np.uint8)
    outputs.save_png(tmp_path / "c.png", rgb)
    outputs.save_png(tmp_path / "g.png", rgb[..., 0])
    assert (np.asarray(Image.open(tmp_path / "c.png")) == rgb).all()
    assert (np.asarray(Image.open(tmp_path / "g.png")) == rgb[..., 0]).all()
    outputs.save_npy(tmp_path / "r.npy", rgb.astype(np.float32))
    assert (np.load(tmp_path / "r.npy") == rgb).all()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.png", "g.png", "r.npy"]


def test_csv_is_byte_identical_with_nine_digit_floats(tmp_path):
    rows = [("a", 0.1 + 0.2, 3), ("b,c", np.float32(1 / 3), np.int64(4))]
    for name in ("1.csv", "2.csv"):
        outputs.save_csv(tmp_path / name, ["name", "value", "n"], iter(rows))
    data = (tmp_path / "1.csv").read_bytes()
    assert data == (tmp_path / "2.csv").read_bytes()
    assert data == b'name,value,n\na,0.3,3\n"b,c",0.333333343,4\n'


def test_emit_writes_one_strict_json_line():
    stream = io.StringIO()
    outputs.emit({"x": float("nan"), "y": [1.0, float("-inf")], "z": np.float32(0.5),
                  "w": {"n": np.int64(2), "t": (np.inf,)}}, stream)
    line = stream.getvalue()
    assert line.count("\n") == 1 and line.endswith("\n") and " " not in line
    assert json.loads(line) == {"x": None, "y": [1.0, None], "z": 0.5, "w": {"n": 2, "t": [None]}}


def test_emit_defaults_to_stdout(capsys):
    outputs.emit({"b": 1, "a": 2})
    assert capsys.readouterr().out == '{"b":1,"a":2}\n'


def test_out_path_stays_in_the_folder(tmp_path):
    assert outputs.out_path(tmp_path, "a", ".png") == tmp_path / "a.png"
    for stem in ("../x", "sub/x", "/etc/x", ".."):
        with pytest.raises(ValueError):
            outputs.out_path(tmp_path, stem, "" if stem == ".." else ".png")


def test_background_writer_raises_the_first_failure():
    def boom(message):
        raise OSError(message)
    with pytest.raises(OSError, match="disk full"):
        with outputs.BackgroundWriter(workers=1) as writer:
            writer.submit(boom, "disk full")
            writer.submit(boom, "second")
    writer = outputs.BackgroundWriter()
    writer.submit(boom, "late")
    with pytest.raises(OSError, match="late"):
        writer.close()


def test_background_writer_lets_the_original_error_through_after_writing(tmp_path):
    with pytest.raises(KeyError):
        with outputs.BackgroundWriter() as writer:
            writer.submit(lambda: (time.sleep(0.05), (tmp_path / "f").write_text("x")))
            writer.submit(lambda: 1 / 0)
            raise KeyError("body")
    assert (tmp_path / "f").read_text() == "x"


def test_background_writer_blocks_when_full():
    gate, done = threading.Event(), []
    writer = outputs.BackgroundWriter(workers=1, max_pending=2)
    writer.submit(gate.wait)
    writer.submit(done.append, 1)
    third = threading.Thread(target=writer.submit, args=(done.append, 2))
    third.start()
    third.join(0.1)
    assert third.is_alive() and done == []
    gate.set()
    third.join(1)
    writer.close()
    assert not third.is_alive() and done == [1, 2]
