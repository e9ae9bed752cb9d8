"""A Vision Transformer built from Keras layers, saved and explained from the command line
with the attention rule configs, on every backend."""

import json
from pathlib import Path

import keras
import numpy as np
import pytest
from keras import layers as L

from conftest import FIXTURES
from test_cli import run

pytestmark = pytest.mark.backends

IMAGES = FIXTURES / "digits"


def _vit(path, bias_seed=None):
    """32x32 digits in 8x8 patches: a patch embedding (Conv2D with stride = kernel, then
    Reshape), two pre-norm encoder blocks, mean pooling over the tokens."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((32, 32, 1))
    x = L.Reshape((16, 24))(L.Conv2D(24, 8, strides=8, name="patches")(inputs))
    for block in range(2):
        a = L.LayerNormalization(name=f"ln{block}a")(x)
        a = L.MultiHeadAttention(3, 8, name=f"mha{block}")(a, a)
        x = L.Add()([x, a])
        m = L.LayerNormalization(name=f"ln{block}b")(x)
        m = L.Dense(24)(L.Dense(48, activation="gelu")(m))
        x = L.Add()([x, m])
    outputs = L.Dense(10, activation="softmax")(L.GlobalAveragePooling1D()(L.LayerNormalization()(x)))
    model = keras.Model(inputs, outputs)
    model.save(path)
    return path


@pytest.mark.parametrize("config", ["attnlrp", "cp-lrp"])
def test_a_vit_explains_from_the_command_line(tmp_path, config):
    model = _vit(tmp_path / "vit.keras")
    result, records = run("explain", model, IMAGES, "-r", config, "-m", "lrp", "-m", "gradxinput",
                          "--save-raw", "-o", tmp_path / "out")
    assert result.exit_code == 0, result.stderr
    assert [r["status"] for r in records] == ["ok"] * 3
    for record in records:
        relevance = np.load(tmp_path / "out" / (record["input"].rsplit("/", 1)[-1][:-4] + ".lrp.npy"))
        assert relevance.shape == (32, 32, 1) and np.isfinite(relevance).all()
        total, score = record["relevance_sum"]["lrp"], record["explained_score"]
        if config == "cp-lrp":   # zero biases: CP-LRP conserves the logit
            assert abs(total - score) < 1e-3 * abs(score)
        else:   # AttnLRP's softmax rule keeps a share: less reaches the input
            assert abs(total) < abs(score) * 1.5 and abs(total - score) > 1e-4 * abs(score)


def test_xai_rules_names_the_attention_rules_and_checks_conservation(tmp_path):
    model = _vit(tmp_path / "vit.keras")
    result, _ = run("rules", model, "-r", "attnlrp", "--check", IMAGES / "digit_3_3.png")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert any(line.startswith("mha0/attention ") and "attnlrp" in line for line in lines)
    assert any(line.startswith("ln0a/standardise ") and "attnlrp" in line for line in lines)
    assert any(line.startswith("mha1/query ") and "epsilon" in line for line in lines)
    assert "conservation on" in result.stdout


def test_an_unsupported_attention_layer_stops_with_its_name(tmp_path):
    inputs = keras.Input((32, 32, 1))
    x = L.Reshape((16, 24))(L.Conv2D(24, 8, strides=8)(inputs))
    x = L.GroupQueryAttention(4, 2, 1, name="gqa")(x, x)
    keras.Model(inputs, L.Dense(10)(L.GlobalAveragePooling1D()(x))).save(tmp_path / "gqa.keras")
    result, records = run("explain", tmp_path / "gqa.keras", IMAGES, "-o", tmp_path / "out")
    assert result.exit_code == 2 and not records
    assert "'gqa' (GroupedQueryAttention)" in result.stderr


def test_rollout_gives_each_patch_of_the_shipped_vit_one_value(tmp_path):
    """Rollout scores tokens: every pixel of an 8x8 patch shares its token's score."""
    model = Path(__file__).resolve().parents[2] / "models" / "digits_vit.keras"
    result, records = run("explain", model, IMAGES, "-m", "rollout", "--save-raw", "-o", tmp_path)
    assert result.exit_code == 0, result.stderr
    assert [r["status"] for r in records] == ["ok"] * 3
    for path in tmp_path.glob("*.rollout.npy"):
        patches = np.load(path)[..., 0].reshape(4, 8, 4, 8)
        assert (patches >= 0).all() and patches.max() > 0
        assert np.allclose(patches, patches[:, :1, :, :1], rtol=1e-5)


def test_rollout_on_a_model_without_attention_is_a_usage_error(tmp_path):
    result, records = run("explain", FIXTURES / "digits.keras", IMAGES, "-m", "rollout", "-o", tmp_path)
    assert result.exit_code == 2 and not records
    assert "method rollout explains attention models" in result.stderr


def test_the_shipped_text_transformer_explains_documents_word_by_word(tmp_path):
    root = Path(__file__).resolve().parents[2]
    result, records = run("explain", root / "models" / "text_transformer.keras",
                          root / "sample_texts" / "tuxguitar-jack.txt", "--labels",
                          root / "models" / "text_labels.txt", "-r", "attnlrp", "-m", "lrp",
                          "-m", "rollout", "--save-raw", "-o", tmp_path)
    assert result.exit_code == 0, result.stderr
    (record,) = records
    assert record["status"] == "ok" and record["predicted_label"] == "sound"
    for method in ("lrp", "rollout"):
        assert (tmp_path / f"tuxguitar-jack.{method}.html").is_file()
        assert (tmp_path / f"tuxguitar-jack.{method}.png").is_file()
    words = json.loads((tmp_path / "tuxguitar-jack.rollout.json").read_text())
    assert min(words["relevance"]) >= 0 and len(words["relevance"]) == len(words["tokens"])
    lrp = json.loads((tmp_path / "tuxguitar-jack.lrp.json").read_text())["words"]
    assert max(lrp, key=lambda pair: pair[1])[0].lower() in {"tuxguitar", "sound", "midi", "jack."}


def test_the_python_api_explains_both_shipped_transformers():
    import xai_cli
    models = Path(__file__).resolve().parents[2] / "models"
    x = np.load(models / "digits_test_x.npy")[:4]
    for method in ("lrp", "rollout"):
        relevance = xai_cli.explain(models / "digits_vit.keras", x, method, rules="attnlrp")
        assert relevance.shape == x.shape and np.isfinite(relevance).all()
    (words,) = xai_cli.explain(models / "text_transformer.keras", ["a plugin for midi sound playback"],
                               rules="cp-lrp")
    assert [w for w, _ in words.json()["words"]] == ["a", "plugin", "for", "midi", "sound", "playback"]
    assert max(words.json()["words"], key=lambda pair: pair[1])[0] in {"midi", "sound", "playback"}
