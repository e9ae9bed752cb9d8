"""Signal models from the command line and the Python API: .npy, CSV and WAV signals in,
plots of the signal coloured by its relevance out; time-window perturbation; refusals."""

import csv
import json
import wave

import keras
import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import xai_cli
from conftest import FIXTURES
from xai_cli.cli import main

ROOT = FIXTURES.parents[1]
GUNPOINT = ROOT / "models" / "gunpoint_cnn.keras"
SAMPLES = ROOT / "sample_signals"
L = keras.layers


def run(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    records = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    return result, records


@pytest.fixture(scope="module")
def audio(tmp_path_factory):
    """A Conv1D model of 0.5 s of 8 kHz audio, and a 1 s 16 kHz stereo WAV of a tone."""
    folder = tmp_path_factory.mktemp("audio")
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4000, 1)), L.Conv1D(4, 9, strides=4, activation="relu"),
                              L.MaxPooling1D(4), L.Conv1D(4, 5, activation="relu"),
                              L.GlobalAveragePooling1D(), L.Dense(3)])
    model.save(folder / "audio.keras")
    t = np.arange(16000) / 16000
    tone = (0.5 * np.sin(2 * np.pi * 440 * t) * 32767).astype(np.int16)
    with wave.open(str(folder / "tone.wav"), "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes(np.stack([tone, tone // 2], axis=1).tobytes())
    return folder / "audio.keras", folder / "tone.wav"


def test_gunpoint_signals_explain_into_plots_records_and_raw_relevance(tmp_path):
    """The README's command: .npy and CSV of the same series give the same relevance, which
    the API gives too; a plot, a thumbnail and the raw relevance per signal and method."""
    result, records = run("explain", GUNPOINT, SAMPLES / "gun_0.npy", SAMPLES / "gun_0.csv",
                          "--labels", ROOT / "models" / "gunpoint_labels.txt", "-m", "lrp",
                          "-m", "sa", "--save-raw", "-o", tmp_path)
    assert result.exit_code == 0, result.stderr
    assert [r["target_label"] for r in records] == ["gun", "gun"]
    record = records[0]
    assert record["samples"] == [0, 150] and record["channels"] == ["signal"]
    windows = record["top_windows"]["lrp"]
    assert 1 <= len(windows) <= 3 and all(w["steps"][1] - w["steps"][0] == 6 for w in windows)
    assert windows == sorted(windows, key=lambda w: -w["positive"])
    lrp = np.load(tmp_path / "gun_0.lrp.npy")
    np.testing.assert_allclose(np.load(tmp_path / "gun_0__2.lrp.npy"), lrp, rtol=1e-5, atol=1e-7)
    api = xai_cli.explain(GUNPOINT, np.load(SAMPLES / "gun_0.npy"))
    np.testing.assert_allclose(api, lrp, rtol=1e-5, atol=1e-7)
    assert api.shape == (150, 1)
    best = windows[0]["steps"]
    assert np.clip(lrp[best[0]:best[1]], 0, None).sum() == pytest.approx(windows[0]["positive"], rel=1e-5)
    with open(tmp_path / "gun_0.lrp.csv") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["sample", "signal"] and len(rows) == 151
    np.testing.assert_allclose([float(r[1]) for r in rows[1:]], lrp[:, 0], rtol=1e-6)
    for name in ("gun_0.lrp.png", "gun_0.sa.png", "thumbs/gun_0.png"):
        assert Image.open(tmp_path / name).size[0] > 100
    assert not list(tmp_path.glob("*spectrogram*"))   # no sample rate: no spectrogram


def test_the_recurrent_model_explains_from_the_command_line(tmp_path):
    """The Conv1D+GRU demonstration model, CSV signals: plots and the API's relevance."""
    model = ROOT / "models" / "gunpoint_gru.keras"
    result, records = run("explain", model, SAMPLES / "point_0.csv", SAMPLES / "gun_1.csv",
                          "--labels", ROOT / "models" / "gunpoint_labels.txt", "--save-raw",
                          "-o", tmp_path)
    assert result.exit_code == 0, result.stderr
    assert [r["target_label"] for r in records] == ["point", "gun"]
    assert Image.open(tmp_path / "point_0.lrp.png").size[0] > 100
    api = xai_cli.explain(model, np.stack([np.load(SAMPLES / f"{n}.npy") for n in ("point_0", "gun_1")]))
    assert api.shape == (2, 150, 1) and np.abs(api).sum(axis=(1, 2)).min() > 0
    np.testing.assert_allclose(api[1], np.load(tmp_path / "gun_1.lrp.npy"), rtol=1e-5, atol=1e-7)


def test_audio_is_resampled_cut_and_drawn_over_a_spectrogram(audio, tmp_path):
    model, tone = audio
    result, records = run("explain", model, tone, "--sample-rate", 8000, "--offset", 0.25,
                          "--save-raw", "-o", tmp_path)
    assert result.exit_code == 0, result.stderr
    record = records[0]
    assert record["sample_rate"] == 8000 and record["source_rate"] == 16000
    assert record["samples"] == [2000, 6000] and record["seconds"] == [0.25, 0.75]
    assert record["mixed_channels"] == 2
    assert Image.open(tmp_path / "tone.lrp.spectrogram.png").size[0] > 100
    assert np.load(tmp_path / "tone.lrp.npy").shape == (4000, 1)
    result, records = run("explain", model, tone, "--sample-rate", 8000, "--offset", 0.75,
                          "-o", tmp_path / "late")
    assert result.exit_code == 1 and records[0]["status"] == "error"
    assert "the model takes 4000" in records[0]["error"]


def test_time_window_perturbation_through_evaluate(tmp_path):
    """Every signal protocol on 12 held-out GunPoint series; windows of 10 steps, 15 steps
    to remove them all; the paired comparisons and --require work as for images."""
    x = np.load(ROOT / "models" / "gunpoint_test_x.npy")[:12]
    np.save(tmp_path / "series.npy", x)
    result, records = run("evaluate", GUNPOINT, tmp_path / "series.npy", "-m", "lrp", "-m", "sa",
                          "--perturb", 10, "--replace", "linear", "--replace", "mean",
                          "--replace", "zero", "--replace", "noise", "-o", tmp_path / "out",
                          "--require", "ratio(lrp) > 1")
    assert result.exit_code == 0, result.stderr
    assert len(records) == 12 and "12 signals" in result.stderr
    with open(tmp_path / "out" / "summary.csv") as f:
        summary = list(csv.DictReader(f))
    assert {(r["method"], r["replace"]) for r in summary} == {
        (m, r) for m in ("lrp", "sa", "random") for r in ("linear", "mean", "zero", "noise")}
    assert {r["perturb"] for r in summary} == {"10"} and {r["steps"] for r in summary} == {"15"}
    with open(tmp_path / "out" / "curves.csv") as f:
        curves = [r for r in csv.DictReader(f) if r["method"] == "lrp" and r["replace"] == "zero"]
    assert float(curves[15]["fraction_perturbed"]) == 1.0
    assert (tmp_path / "out" / "curves.png").exists() and (tmp_path / "out" / "comparisons.csv").exists()


def test_signal_refusals_name_the_problem(tmp_path, audio):
    keras.utils.set_random_seed(0)
    any_length = keras.Sequential([keras.Input((None, 2)), L.Conv1D(3, 3),
                                   L.GlobalAveragePooling1D(), L.Dense(2)])
    any_length.save(tmp_path / "any.keras")
    flat = keras.Sequential([keras.Input((150,)), L.Dense(2)])
    flat.save(tmp_path / "flat.keras")
    np.save(tmp_path / "s.npy", np.zeros((150, 1), np.float32))
    digits = FIXTURES / "digits.keras"
    for args, message in (
            (("explain", tmp_path / "any.keras", tmp_path / "s.npy"),
             "has input shape (None, 2); xai needs a fixed input size"),
            (("explain", tmp_path / "flat.keras", tmp_path / "s.npy"),
             "model input shape (150,) is not an image (H, W, C), a text model's"),
            (("explain", GUNPOINT, tmp_path / "s.npy", "--overlay"), "--overlay is for images"),
            (("evaluate", GUNPOINT, tmp_path / "s.npy", "--replace", "uniform"),
             "--replace uniform is for images; signals take linear, mean, zero, noise"),
            (("evaluate", GUNPOINT, tmp_path / "s.npy", "--perturb", "3x3"),
             "--perturb 3x3 does not fit signals: theirs is W (time steps) (6 by default)"),
            (("evaluate", GUNPOINT, tmp_path / "s.npy", "--sanity"), "--sanity is for image models"),
            (("explain", digits, tmp_path / "s.npy", "--sample-rate", 8000),
             "--sample-rate is for signal models"),
            (("spray", GUNPOINT, tmp_path / "s.npy"), "xai spray works on image models"),
    ):
        result, _ = run(*args, "-o", tmp_path / "out")
        assert result.exit_code == 2 and message in result.stderr, (args, result.stderr)


def test_per_channel_preprocessing_is_applied_to_every_format(tmp_path):
    """--mean/--std per channel: the model sees (value - mean) / std, as the API given the
    preprocessed series does; the plot draws the values as they are in the file."""
    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((40, 2)), L.Conv1D(3, 5, activation="relu"),
                              L.GlobalAveragePooling1D(), L.Dense(2)])
    model.save(tmp_path / "two.keras")
    values = np.random.default_rng(2).normal(size=(40, 2)).astype(np.float32) * [1, 10] + [0, 100]
    np.savetxt(tmp_path / "s.csv", values, delimiter=",", header="left,right", comments="")
    result, records = run("explain", tmp_path / "two.keras", tmp_path / "s.csv", "--mean", "0,100",
                          "--std", "1,10", "--save-raw", "-o", tmp_path / "out")
    assert result.exit_code == 0, result.stderr
    assert records[0]["channels"] == ["left", "right"]
    expected = xai_cli.explain(tmp_path / "two.keras", (values - [0, 100]) / [1, 10])
    np.testing.assert_allclose(np.load(tmp_path / "out" / "s.lrp.npy"), expected, rtol=1e-4, atol=1e-6)
    with open(tmp_path / "out" / "s.lrp.csv") as f:
        assert next(csv.reader(f)) == ["sample", "left", "right"]
