"""--clip, --cmap, --opacity and --resize from the command line, on a real portrait photo
(matplotlib's Grace Hopper, 128x150) that is not square like the model's input."""

import json

import numpy as np
from click.testing import CliRunner
from PIL import Image

from conftest import FIXTURES
from xai_cli.cli import main
from xai_cli.io import render
from xai_cli.kinds import image

PHOTO = str(FIXTURES / "grace_hopper_128x150.jpg")
MODEL = str(FIXTURES / "digits.keras")


def _run(*args):
    result = CliRunner().invoke(main, [*map(str, args)])
    records = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    return result, records


def test_clip_and_colour_maps_shape_the_pictures_not_the_raw_relevance(tmp_path):
    result, (record,) = _run("explain", MODEL, PHOTO, "-m", "lrp", "-m", "sa", "--save-raw",
                             "--clip", "99", "--cmap", "RdBu_r", "--cmap", "viridis",
                             "-o", tmp_path)
    assert result.exit_code == 0, result.output
    style = render.Style(99, "RdBu_r", "viridis")
    for method, signed in (("lrp", True), ("sa", False)):
        raw = np.load(tmp_path / f"grace_hopper_128x150.{method}.npy")
        drawn = image.pixels(raw)
        assert np.abs(drawn).max() > render.scale(drawn, 99)   # the .npy is not clipped
        png = np.asarray(Image.open(tmp_path / f"grace_hopper_128x150.{method}.png"))
        np.testing.assert_array_equal(png, render.heatmap(drawn, signed, style))
    assert record["resize"] == "squash" and record["source_size"] == [128, 150]


def test_pad_centres_the_portrait_on_black(tmp_path):
    result, (record,) = _run("explain", MODEL, PHOTO, "-m", "gradxinput", "--save-raw",
                             "--overlay", "--opacity", "0", "--resize", "pad", "-o", tmp_path)
    assert result.exit_code == 0, result.output
    assert record["resize"] == "pad"
    # 128x150 -> 27x32 on the 32x32 input, columns 2..28: outside, black pixels and
    # gradient x input exactly zero
    raw = np.load(tmp_path / "grace_hopper_128x150.gradxinput.npy")
    assert (raw[:, :2] == 0).all() and (raw[:, 29:] == 0).all() and raw[:, 2:29].any()
    overlay = np.asarray(Image.open(tmp_path / "grace_hopper_128x150.gradxinput.overlay.png"))
    assert (overlay[:, :2] == 0).all() and overlay[:, 2:29].any()   # opacity 0: the grey input


def test_crop_shows_the_centre(tmp_path):
    outputs = {}
    for resize in ("squash", "crop"):
        result, (record,) = _run("explain", MODEL, PHOTO, "-m", "gradxinput", "--save-raw",
                                 "--resize", resize, "-o", tmp_path / resize)
        assert result.exit_code == 0 and record["resize"] == resize
        outputs[resize] = np.load(tmp_path / resize / "grace_hopper_128x150.gradxinput.npy")
    assert not np.allclose(outputs["squash"], outputs["crop"])


def test_two_maps_of_one_kind_are_a_usage_error(tmp_path):
    result, _ = _run("explain", MODEL, PHOTO, "--cmap", "bwr", "--cmap", "PuOr_r", "-o", tmp_path)
    assert result.exit_code == 2
    assert "--cmap: two diverging colour maps given: bwr and PuOr_r" in result.output
    assert not (tmp_path / "grace_hopper_128x150.lrp.png").exists()


def test_a_resumed_evaluate_with_another_resize_is_refused(tmp_path):
    args = ["evaluate", MODEL, PHOTO, "-m", "sa",
            "--steps", "2", "--perturb", "7x7", "-o", tmp_path]
    assert _run(*args, "--resize", "crop")[0].exit_code == 0
    result, _ = _run(*args, "--resize", "pad", "--skip-existing")
    assert result.exit_code == 2 and "holds the parts of a run with other resize;" in result.output
