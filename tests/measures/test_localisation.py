"""Localisation scores by hand, masks from folders and boxes, the watermark as the object,
the model-randomisation sanity check, and --require gates with exit code 3."""

import csv
import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from conftest import FIXTURES
from xai_cli.cli import main
from xai_cli.engine.graph import build_graph
from xai_cli.errors import InputError, XaiError
from xai_cli.io.inputs import Fit, InputItem, Sample
from xai_cli.jobs import sanity
from xai_cli.measures import localisation
from xai_cli.models.loading import load

MARKED = FIXTURES / "digits_marked.keras"
MODEL = FIXTURES / "digits.keras"


def test_scores_by_hand():
    relevance = np.array([[[0.0, 3.0], [1.0, -2.0]],     # max inside
                          [[5.0, 1.0], [1.0, 0.0]],      # max outside
                          [[2.0, 2.0], [2.0, 2.0]],      # constant: points nowhere
                          [[-1.0, -1.0], [-3.0, -2.0]]])  # no positive relevance
    masks = np.array([[[False, True], [True, False]]] * 4)
    got = localisation.scores(relevance, masks)
    np.testing.assert_array_equal(got["pointing"], [1, 0, 0, 1])
    np.testing.assert_allclose(got["mass"], [4 / 4, 2 / 7, 4 / 8, 0])
    # K = 2 mask pixels; the two most relevant: {3, 1 (first of the tied 1s)}, {5, 1}, ...
    np.testing.assert_allclose(got["rank_accuracy"], [1.0, 0.5, 0.5, 0.5])
    np.testing.assert_allclose(localisation.mask_fraction(masks), [0.5] * 4)


def _sample(stem, size=(64, 32), source=None, resize="squash", input_size=(8, 8)):
    return Sample(InputItem(source or f"/data/{stem}.png", stem), np.zeros((8, 8, 1)),
                  np.zeros((8, 8, 3), np.uint8), Fit.of(resize, size, input_size))


def test_boxes_are_mapped_like_the_picture(tmp_path):
    boxes = tmp_path / "boxes.csv"
    boxes.write_text("image,x0,y0,x1,y1\ncat.png,0,0,16,8\ncat,48,24,64,32\ndog,30,10,31,11\n")
    masks = localisation.Masks(str(boxes))
    cat = masks.mask(_sample("cat"))                     # 64x32 picture squashed to 8x8
    expected = np.zeros((8, 8), bool)
    expected[0:2, 0:2] = True                            # x 0..16 -> columns 0, 1; y 0..8 -> rows 0, 1
    expected[6:8, 6:8] = True                            # the second row of the same image
    np.testing.assert_array_equal(cat, expected)
    dog = masks.mask(_sample("dog"))                     # smaller than a pixel: its centre's pixel
    assert dog.sum() == 1 and dog[2, 3]
    assert masks.mask(_sample("bird")) is None


def test_boxes_follow_crop_and_pad(tmp_path):
    (tmp_path / "boxes.csv").write_text("image,x0,y0,x1,y1\ncat,16,0,32,16\nedge,0,0,8,32\n")
    masks = localisation.Masks(str(tmp_path / "boxes.csv"))
    # crop: the 64x32 picture's centre 32x32 (x 16..48) scaled by 1/4 onto 8x8
    cropped = masks.mask(_sample("cat", resize="crop"))
    expected = np.zeros((8, 8), bool)
    expected[0:4, 0:4] = True
    np.testing.assert_array_equal(cropped, expected)
    with pytest.raises(InputError, match="marks no pixel"):   # cut off by the crop
        masks.mask(_sample("edge", resize="crop"))
    # pad: the picture scaled by 1/8 to 8x4, placed on rows 2..5
    padded = masks.mask(_sample("cat", resize="pad"))
    expected = np.zeros((8, 8), bool)
    expected[2:4, 2:4] = True
    np.testing.assert_array_equal(padded, expected)


@pytest.mark.parametrize("text, message", [
    ("name,x0,y0,x1,y1\n", "boxes.csv:1: the header must be image,x0,y0,x1,y1"),
    ("image,x0,y0,x1,y1\ncat,1,2,3\n", "boxes.csv:2: expected an image and four numbers"),
    ("image,x0,y0,x1,y1\ncat,1,2,3,4\ncat,5,2,3,4\n", "boxes.csv:3: a box needs 0 <= x0 < x1"),
])
def test_malformed_boxes_name_the_line(tmp_path, text, message):
    (tmp_path / "boxes.csv").write_text(text)
    with pytest.raises(XaiError, match=message):
        localisation.Masks(str(tmp_path / "boxes.csv"))


def test_mask_folder_images_and_arrays(tmp_path):
    Image.fromarray(np.kron(np.eye(2, dtype=np.uint8) * 255, np.ones((8, 8), np.uint8))).save(
        tmp_path / "a.png")
    np.save(tmp_path / "b.npy", np.zeros((4, 4)))
    masks = localisation.Masks(str(tmp_path))
    a = masks.mask(_sample("a", size=(16, 16), input_size=(4, 4)))
    np.testing.assert_array_equal(a, np.kron(np.eye(2, dtype=bool), np.ones((2, 2), bool)))
    # a 16x16 mask (object: columns 4..7) of a 32x16 picture, at any resolution
    stripe = np.zeros((16, 16), np.uint8)
    stripe[:, 4:8] = 255
    Image.fromarray(stripe).save(tmp_path / "w.png")
    squashed = masks.mask(_sample("w", size=(32, 16), input_size=(4, 4)))
    assert squashed.all(axis=0).tolist() == [False, True, False, False]
    # crop keeps the picture's centre half, mask columns 4..11: the stripe is its left half
    cropped = masks.mask(_sample("w", size=(32, 16), resize="crop", input_size=(4, 4)))
    assert cropped.all(axis=0).tolist() == [True, True, False, False]
    assert not cropped.any(axis=0)[2:].any()
    with pytest.raises(InputError, match="marks no pixel"):
        masks.mask(_sample("b", size=(16, 16), input_size=(4, 4)))
    assert masks.mask(_sample("c", input_size=(4, 4))) is None


def _marked(tmp_path, marked: bool, n=12):
    flags = np.load(FIXTURES / "digits_marked_test_mark.npy")
    x = np.load(FIXTURES / "digits_marked_test_x.npy")[flags == marked][:n]
    np.save(tmp_path / "x.npy", x)
    with open(tmp_path / "boxes.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image", "x0", "y0", "x1", "y1"])
        writer.writerows([f"x-{i:02d}", 1, 1, 5, 5] for i in range(n))   # the watermark
    return tmp_path / "x.npy", tmp_path / "boxes.csv"


def _evaluate(*args):
    result = CliRunner().invoke(main, ["evaluate", *map(str, args)])
    return result, [json.loads(line) for line in result.stdout.splitlines()]


def test_the_watermark_is_where_lrp_points_on_marked_threes(tmp_path):
    x, boxes = _marked(tmp_path, marked=True)
    result, records = _evaluate(MARKED, x, "-p", "unit", "-t", "3", "-r", "lrp-epsilon",
                                "-m", "lrp", "-m", "gradient", "--masks", boxes, "--steps", "2",
                                "--replace", "mean", "-o", tmp_path / "out",
                                "--require", "pointing(lrp) >= 0.8",
                                "--require", "mass(lrp) > 2 * mass(random)")
    assert result.exit_code == 0, result.stderr
    assert "requirement met: pointing(lrp) >= 0.8" in result.stderr
    assert "localisation (12 inputs with a mask;" in result.stderr
    summary = {r["method"]: r for r in csv.DictReader(open(tmp_path / "out" / "summary.csv"))}
    assert float(summary["lrp"]["pointing"]) >= 0.8 and summary["lrp"]["n_masked"] == "12"
    assert float(summary["random"]["mass"]) == pytest.approx(16 / 1024)
    rows = list(csv.DictReader(open(tmp_path / "out" / "localisation.csv")))
    assert len(rows) == 24 and {r["method"] for r in rows} == {"lrp", "gradient"}
    assert np.mean([float(r["pointing"]) for r in rows if r["method"] == "lrp"]) == \
        pytest.approx(float(summary["lrp"]["pointing"]))
    assert set(records[0]["localisation"]) == {"lrp", "gradient"}


def test_on_plain_threes_the_same_gate_fails_with_exit_3(tmp_path):
    x, boxes = _marked(tmp_path, marked=False)
    result, records = _evaluate(MARKED, x, "-p", "unit", "-t", "3", "-r", "lrp-epsilon",
                                "--masks", boxes, "--steps", "2", "--replace", "mean",
                                "-o", tmp_path / "out", "--require", "pointing(lrp) >= 0.8")
    assert result.exit_code == 3, result.stderr
    assert "requirement NOT met: pointing(lrp) >= 0.8: " in result.stderr
    assert (tmp_path / "out" / "summary.csv").is_file() and len(records) == 12


def test_randomisation_cascade_replaces_weights_top_down():
    graph = build_graph(load(MODEL))
    steps = sanity.cascade(graph, seed=0)
    learned = [op for op in graph.ops if op.kind == "linear"]
    assert [s.count for s in steps] == list(range(1, len(learned) + 1))   # 5 layers, 5 steps
    assert [s.down_to for s in steps] == [op.layer for op in reversed(learned)]
    first = steps[0].graph
    changed = [a.name for a, b in zip(graph.ops, first.ops) if a.params is not b.params]
    assert changed == [learned[-1].name]
    assert not np.allclose(np.asarray(first.ops[-1].params["kernel"]),
                           np.asarray(graph.ops[-1].params["kernel"]))


def test_rank_correlation_with_ties():
    a = np.array([[1.0, 2.0, 2.0, 3.0], [1.0, 1.0, 1.0, 1.0]])
    b = np.array([[10.0, 20.0, 20.0, 30.0], [1.0, 2.0, 3.0, 4.0]])
    np.testing.assert_allclose(sanity.rank_correlation(a, b), [1.0, 0.0])
    np.testing.assert_allclose(sanity.rank_correlation(a[:1], -b[:1]), [-1.0])


def test_sanity_drives_the_gradients_correlation_down(tmp_path):
    x = tmp_path / "x.npy"
    np.save(x, np.load(FIXTURES / "digits_test_x.npy")[:8])
    result, _ = _evaluate(MODEL, x, "-p", "unit", "-m", "gradient", "-m", "lrp", "--sanity",
                          "--steps", "1", "--replace", "mean", "-o", tmp_path / "out",
                          "--require", "sanity(gradient) < 0.5",
                          "--require", "sanity_mean(gradient) > sanity(gradient)")
    assert result.exit_code == 0, result.stderr
    assert result.stderr.count("requirement met") == 2
    rows = list(csv.DictReader(open(tmp_path / "out" / "sanity.csv")))
    gradient = [float(r["abs_rank_correlation"]) for r in rows if r["method"] == "gradient"]
    assert len(gradient) == 5 and gradient[-1] < 0.5 and gradient[-1] < gradient[0]
    assert (tmp_path / "out" / "sanity.png").stat().st_size > 0


@pytest.mark.parametrize("require, message", [
    ("pointing(lrp) > 0.5", "pointing() needs --masks"),
    ("sanity(lrp) < 0.5", "sanity() needs --sanity"),
    ("area(lrp) > 0", "area() needs --lerf"),
    ("aopc(lrp, blur) > 0", "second argument is a --replace protocol"),
    ("aopc(lrp) >", "position"),
])
def test_requirements_that_cannot_hold_are_usage_errors(tmp_path, require, message):
    result, _ = _evaluate(MODEL, FIXTURES / "digits", "--require", require, "-o", tmp_path / "o")
    assert result.exit_code == 2 and message in result.stderr
    assert not (tmp_path / "o").exists()


def test_spray_gate_on_the_clever_hans_split(tmp_path):
    x = tmp_path / "x.npy"
    np.save(x, np.load(FIXTURES / "digits_marked_test_x.npy"))
    result = CliRunner().invoke(main, ["spray", str(MARKED), str(x), "-p", "unit", "-t", "3",
                                       "-r", "lrp-epsilon", "-o", str(tmp_path / "out"),
                                       "--require", "clusters <= 1"])
    assert result.exit_code == 3, result.stderr
    assert "requirement NOT met: clusters <= 1: 2 <= 1" in result.stderr
