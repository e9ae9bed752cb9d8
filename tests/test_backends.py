"""The same heatmaps on every installed Keras backend, and a clear error for one that is not.

Each backend runs ``xai explain`` in its own process (Keras picks its backend once, at
import) and its raw relevance is compared with TensorFlow's. The per-rule tests (oracle,
NumPy reference, invariants) run on every backend through ``make test``; this checks the
whole command, on the small digits network and on the real EfficientNet-Lite0.
"""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import FIXTURES

ROOT = Path(__file__).resolve().parents[1]
OTHERS = [b for b in ("jax", "torch") if importlib.util.find_spec(b) is not None]
PHOTOS = [ROOT / "sample_images" / "photos" / f for f in ("chelsea_0.jpg", "rocket_1.jpg")]


def _xai(backend, *args, prelude=""):
    code = f"{prelude}from xai_cli.cli import main; main()"
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True,
                          text=True, env={**os.environ, "KERAS_BACKEND": backend}, timeout=600)


def _explain(backend, out, model, images, *options):
    done = _xai(backend, "explain", model, *images, "--save-raw", "--out", out, *options)
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in done.stdout.splitlines()]
    maps = {p.name: np.load(p) for p in sorted(Path(out).glob("*.npy"))}
    maps.update((p.name, np.array(json.loads(p.read_text())["relevance"]))   # documents
                for p in sorted(Path(out).glob("*.json")))
    assert records and maps
    return records, maps


def _relative(a, b, norm):
    return norm(a - b) / norm(b)


@pytest.fixture(scope="module")
def tensorflow_digits(tmp_path_factory):
    out = tmp_path_factory.mktemp("tensorflow")
    return _explain("tensorflow", out, FIXTURES / "digits.keras", [FIXTURES / "digits"],
                    "-m", "lrp", "-m", "gradient", "-m", "integrated-gradients",
                    "-r", "epsilon-gamma-box")


@pytest.mark.parametrize("backend", OTHERS)
def test_digits_explained_alike_on_every_backend(backend, tensorflow_digits, tmp_path):
    records, maps = _explain(backend, tmp_path, FIXTURES / "digits.keras", [FIXTURES / "digits"],
                             "-m", "lrp", "-m", "gradient", "-m", "integrated-gradients",
                             "-r", "epsilon-gamma-box")
    reference_records, reference = tensorflow_digits
    assert maps.keys() == reference.keys()
    for name, relevance in maps.items():
        assert np.abs(reference[name]).max() > 0
        assert _relative(relevance, reference[name], lambda d: np.abs(d).max()) < 1e-5, name
    for record, expected in zip(records, reference_records):
        assert (record["backend"], record["device"]) == (backend, "cpu")
        assert expected["backend"] == "tensorflow"
        assert record["predicted"] == expected["predicted"]
        assert record["score"] == pytest.approx(expected["score"], rel=1e-5)


@pytest.mark.parametrize("backend", OTHERS)
def test_efficientnet_lite0_explained_alike_on_every_backend(backend, tmp_path):
    """The real network with the default rules: the maps agree to float32 rounding, which
    the epsilon rules of the upper layers amplify (README, "Backends")."""
    model = ROOT / "models" / "efficientnet_lite0.keras"
    _, reference = _explain("tensorflow", tmp_path / "tf", model, PHOTOS, "--labels", "imagenet")
    _, maps = _explain(backend, tmp_path / backend, model, PHOTOS, "--labels", "imagenet")
    for name, relevance in maps.items():
        assert _relative(relevance, reference[name], np.linalg.norm) < 1e-3, name
        assert _relative(relevance, reference[name], lambda d: np.abs(d).max()) < 2e-2, name


@pytest.mark.parametrize("model,inputs", [
    ("digits_vit.keras", FIXTURES / "digits"),
    ("text_transformer.keras", ROOT / "sample_texts" / "msmtp-mta.txt")])
@pytest.mark.parametrize("backend", OTHERS)
def test_the_shipped_transformers_are_explained_alike_on_every_backend(backend, model, inputs, tmp_path):
    """The trained ViT (class token, position embeddings, three blocks) and text
    Transformer (padding mask, position embeddings) with AttnLRP, gradient x input and
    rollout."""
    model, options = ROOT / "models" / model, ("-r", "attnlrp", "-m", "lrp", "-m", "gradxinput",
                                               "-m", "rollout")
    _, reference = _explain("tensorflow", tmp_path / "tf", model, [inputs], *options)
    _, maps = _explain(backend, tmp_path / backend, model, [inputs], *options)
    assert maps.keys() == reference.keys() and len(maps) % 3 == 0
    for name, relevance in maps.items():
        assert _relative(relevance, reference[name], lambda d: np.abs(d).max()) < 1e-4, name


def test_a_backend_that_is_not_installed_is_a_clear_error(tmp_path):
    done = _xai("jax", "explain", FIXTURES / "digits.keras", FIXTURES / "digits", "--out", tmp_path,
                prelude="import sys; sys.modules['jax'] = None; ")   # as if jax were not installed
    assert done.returncode == 2
    assert "Keras backend 'jax' is not installed" in done.stderr
    assert "pip install 'xai[jax]'" in done.stderr
    assert "Traceback" not in done.stderr and not list(tmp_path.iterdir())


def test_an_unknown_backend_is_a_clear_error(tmp_path):
    done = _xai("numpy", "explain", FIXTURES / "digits.keras", FIXTURES / "digits", "--out", tmp_path)
    assert done.returncode == 2
    assert "KERAS_BACKEND=numpy: xai runs on tensorflow, jax, torch" in done.stderr


@pytest.mark.parametrize("model", ["motion_c3d.keras", "motion_frames.keras"])
@pytest.mark.parametrize("backend", OTHERS)
def test_the_shipped_video_models_are_explained_alike_on_every_backend(backend, model, tmp_path):
    """The action classifiers (Conv3D with BatchNormalization; TimeDistributed CNN and
    Conv1D over frames) on a GIF clip and a folder of frames, with the default rules and
    gradient x input."""
    model, clips = ROOT / "models" / model, ROOT / "sample_clips"
    inputs, options = [clips / "up-down_0.gif", clips / "left-right_frames"], ("-m", "lrp", "-m",
                                                                            "gradxinput")
    _, reference = _explain("tensorflow", tmp_path / "tf", model, inputs, *options)
    _, maps = _explain(backend, tmp_path / backend, model, inputs, *options)
    assert maps.keys() == reference.keys() and len(maps) == 4
    for name, relevance in maps.items():
        assert _relative(relevance, reference[name], lambda d: np.abs(d).max()) < 1e-4, name
