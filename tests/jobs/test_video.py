"""Video models from the command line and the Python API: clips in, a frame grid, animated
heatmaps and relevance over time out; space-time perturbation and frame deletion."""

import csv
import json

import keras
import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import xai_cli
from conftest import FIXTURES
from xai_cli.cli import main

L = keras.layers
SHAPE = (6, 16, 16, 1)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """A Conv3D model and a frame-wise one (TimeDistributed CNN, Conv1D over frames)."""
    folder = tmp_path_factory.mktemp("video")
    keras.utils.set_random_seed(0)
    inp = keras.Input(SHAPE)
    h = L.Conv3D(4, 3, activation="relu", padding="same")(inp)
    h = L.MaxPooling3D((1, 2, 2))(h)
    h = L.Conv3D(6, 3, activation="relu")(h)
    out = L.Dense(3, activation="softmax")(L.GlobalAveragePooling3D()(h))
    keras.Model(inp, out).save(folder / "c3d.keras")
    inp = keras.Input(SHAPE)
    h = L.TimeDistributed(L.Conv2D(4, 3, activation="relu"))(inp)
    h = L.TimeDistributed(L.GlobalAveragePooling2D())(h)
    h = L.Conv1D(5, 3, activation="relu")(h)
    out = L.Dense(3)(L.Flatten()(h))
    keras.Model(inp, out).save(folder / "frames.keras")
    return folder / "c3d.keras", folder / "frames.keras"


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """A GIF of a square moving down over 9 frames, and two clips in one array."""
    folder = tmp_path_factory.mktemp("clips")
    frames = []
    for t in range(9):
        frame = np.zeros((20, 24), np.uint8)
        frame[2 + t:8 + t, 6:12] = 255
        frames.append(Image.fromarray(frame))
    frames[0].save(folder / "square.gif", save_all=True, append_images=frames[1:], duration=90,
                   loop=0)
    np.save(folder / "two.npy", np.random.default_rng(0).uniform(0, 1, (2, 8, 16, 16, 1)).astype(np.float32))
    return folder


def run(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result, [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]


@pytest.mark.parametrize("model", [0, 1], ids=["c3d", "frames"])
def test_explain_writes_a_frame_grid_animations_and_relevance_over_time(models, clips, tmp_path, model):
    result, records = run("explain", models[model], clips / "square.gif", clips / "two.npy",
                          "-m", "lrp", "-m", "sa", "--overlay", "--save-raw", "-o", tmp_path)
    assert result.exit_code == 0, result.stderr
    assert [r["status"] for r in records] == ["ok"] * 3
    square = records[0]
    assert square["frames"] == [0, 2, 3, 5, 6, 8] and square["source_frames"] == 9
    assert square["source_size"] == [24, 20]
    assert set(square["top_frames"]) == {"lrp", "sa"}
    assert set(square["top_frames"]["lrp"]) <= set(square["frames"])
    for suffix in (".grid.png", ".time.png", ".time.csv", ".lrp.gif", ".sa.gif",
                   ".lrp.overlay.gif", ".lrp.npy"):
        assert (tmp_path / f"square{suffix}").is_file(), suffix
    with Image.open(tmp_path / "square.lrp.gif") as gif:
        assert gif.n_frames == 6 and gif.info["duration"] == 90
    with Image.open(tmp_path / "thumbs" / "square.gif") as thumb:
        assert thumb.n_frames == 6
    relevance = np.load(tmp_path / "square.lrp.npy")
    assert relevance.shape == SHAPE
    with open(tmp_path / "square.time.csv") as f:
        rows = [r for r in csv.DictReader(f) if r["method"] == "lrp"]
    assert [int(r["frame"]) for r in rows] == square["frames"]
    per_frame = relevance.reshape(len(relevance), -1)
    np.testing.assert_allclose([float(r["positive"]) for r in rows],
                               np.where(per_frame > 0, per_frame, 0).sum(1), rtol=1e-5, atol=1e-12)
    np.testing.assert_allclose(sum(float(r["positive"]) + float(r["negative"]) for r in rows),
                               square["relevance_sum"]["lrp"], rtol=1e-4)
    best = max(rows, key=lambda r: float(r["positive"]))
    assert square["top_frames"]["lrp"][0] == int(best["frame"])
    assert [r["input"] for r in records[1:]] == [str(clips / "two.npy")] * 2
    assert records[1]["frames"] == [0, 1, 3, 4, 6, 7]   # 8 frames spread over the model's 6
    page = (tmp_path / "index.html").read_text()
    assert "square.lrp.gif" in page and "square.time.png" in page


def test_frames_and_stride_choose_the_frames(models, clips, tmp_path):
    result, records = run("explain", models[0], clips / "square.gif", "--frames", "1:",
                          "--stride", "2", "-o", tmp_path)
    assert result.exit_code == 0, result.stderr
    assert records[0]["frames"] == [1, 3, 5, 7, 7, 7]


def test_python_api_explains_clips(models, clips):
    x = np.load(clips / "two.npy")[:, :6]
    relevance = xai_cli.explain(models[1], x, "lrp", preprocess="unit")
    assert relevance.shape == x.shape and np.abs(relevance).max() > 0
    one = xai_cli.explain(models[1], x[0], "lrp", preprocess="unit")
    np.testing.assert_allclose(one, relevance[0], rtol=1e-5, atol=1e-7 * np.abs(relevance).max())


def test_evaluate_perturbs_space_time_patches_and_whole_frames(models, clips, tmp_path):
    result, _ = run("evaluate", models[0], clips / "two.npy", "-p", "unit", "-m", "lrp",
                    "--replace", "mean", "-o", tmp_path / "patches")
    assert result.exit_code == 0, result.stderr
    with open(tmp_path / "patches" / "summary.csv") as f:
        summary = list(csv.DictReader(f))
    assert {r["perturb"] for r in summary} == {"2x9x9"}   # the clip's default patch
    assert {r["steps"] for r in summary} == {"12"}        # 3 x 2 x 2 patches of 6 x 16 x 16
    assert "2 clips" in result.stderr
    result, _ = run("evaluate", models[0], clips / "two.npy", "-p", "unit", "-m", "lrp",
                    "--perturb", "1x16x16", "--replace", "blur", "-o", tmp_path / "frames")
    assert result.exit_code == 0, result.stderr
    with open(tmp_path / "frames" / "curves.csv") as f:
        curves = [r for r in csv.DictReader(f) if r["method"] == "lrp" and r["image"] == "two-0"]
    assert [float(r["fraction_perturbed"]) for r in curves] == pytest.approx(
        [k / 6 for k in range(7)])   # a frame a step: the whole clip after six


def test_clip_options_are_checked(models, clips, tmp_path):
    digits = FIXTURES / "digits.keras"
    for args, message in (
            (("evaluate", models[0], clips / "two.npy", "--perturb", "9x9"),
             "--perturb 9x9 does not fit clips: theirs is TxHxW"),
            (("explain", digits, FIXTURES / "digits", "--stride", "2"),
             "--stride is for video models; model input shape (32, 32, 1) is an image model's"),
            (("explain", models[1], clips / "two.npy", "--vocab", "v.txt"),
             "--vocab is for text models; model input shape (6, 16, 16, 1) is a video model's"),
            (("evaluate", models[0], clips / "two.npy", "--replace", "road"), "road is for images"),
            (("explain", models[0], clips / "square.gif", "--frames", "5:2"), "holds no frame"),
            (("spray", models[0], clips / "two.npy", "--target", "0"),
             "xai spray works on image models; for a video model use xai explain or xai evaluate"),
    ):
        result, _ = run(*args, "-o", tmp_path)
        assert result.exit_code == 2 and message in result.stderr, result.stderr


ROOT = FIXTURES.parents[1]


@pytest.mark.parametrize("model", ["motion_c3d", "motion_frames"])
def test_the_demonstration_puts_relevance_on_the_moving_digit_while_it_moves(model):
    """The shipped action classifiers on their 40 held-out moving clips: LRP's positive
    relevance lies in the motion region (the actor's box in the 6 frames it moves, 4.6% of
    the clip) and in those frames more than sensitivity analysis's (README, "Video")."""
    test = np.load(ROOT / "models" / "motion_test.npz")
    moving = test["labels"] > 0
    clips, region = test["clips"][moving].astype(np.float32) / 255, test["motion"][moving]
    frames = region.any(axis=(2, 3))

    def shares(method):
        relevance = xai_cli.explain(ROOT / "models" / f"{model}.keras", clips, method,
                                    preprocess="unit")[..., 0]
        positive = np.where(relevance > 0, relevance, 0)
        per_frame = positive.sum(axis=(2, 3))
        return ((positive * region).sum(axis=(1, 2, 3)) / positive.sum(axis=(1, 2, 3)),
                (per_frame * frames).sum(axis=1) / per_frame.sum(axis=1))

    (lrp_region, lrp_frames), (sa_region, sa_frames) = shares("lrp"), shares("sa")
    assert lrp_region.mean() > 8 * region.mean() and lrp_frames.mean() > 1.8 * frames.mean()
    assert lrp_region.mean() > sa_region.mean() + 0.04 and (lrp_region > sa_region).mean() >= 0.7
    assert lrp_frames.mean() > sa_frames.mean() + 0.03 and (lrp_frames > sa_frames).mean() >= 0.7
