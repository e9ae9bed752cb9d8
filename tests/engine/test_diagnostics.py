"""Relevance that vanishes is reported in the JSON record, not hidden in a white heatmap."""

import json

import keras
import numpy as np
import pytest
from click.testing import CliRunner

from xai_cli.cli import main
from xai_cli.engine.diagnostics import vanishing
from xai_cli.engine.methods import METHODS


def _tiny_logit_model(path, scale):
    """conv + ReLU + dense whose logits are ``scale`` times those of a plain model."""
    L = keras.layers
    model = keras.Sequential([keras.Input((8, 8, 1)), L.Conv2D(4, 3, activation="relu"),
                              L.Flatten(), L.Dense(3)])
    rng = np.random.default_rng(0)
    conv, dense = model.layers[0], model.layers[2]
    conv.set_weights([rng.uniform(0, 1, conv.kernel.shape), np.zeros(4)])
    dense.set_weights([rng.normal(size=dense.kernel.shape) * scale, np.zeros(3)])
    model.save(path)
    return path


def _explain(tmp_path, model, *args):
    x = np.random.default_rng(1).uniform(0, 1, (2, 8, 8, 1)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    result = CliRunner().invoke(main, ["explain", str(model), str(tmp_path / "x.npy"), "-p", "unit",
                                       "-o", str(tmp_path / "out"), *map(str, args)])
    return result, [json.loads(line) for line in result.stdout.splitlines()]


def test_absorbed_relevance_warns_in_the_record_and_once_on_stderr(tmp_path):
    model = _tiny_logit_model(tmp_path / "tiny.keras", 1e-12)
    result, records = _explain(tmp_path, model, "-r", "lrp-epsilon", "-m", "lrp", "-m", "gradient")
    assert result.exit_code == 0, result.stderr
    assert all("lrp: relevance vanishes" in r["warning"] for r in records)
    assert all("gradient" not in r["warning"] for r in records)   # tiny but not zero: no verdict
    assert result.stderr.count("relevance vanishes") == 1
    assert "smaller epsilon" in records[0]["warning"]


def test_healthy_relevance_carries_no_warning(tmp_path):
    model = _tiny_logit_model(tmp_path / "plain.keras", 1.0)
    result, records = _explain(tmp_path, model, "-r", "lrp-epsilon", "-m", "lrp")
    assert result.exit_code == 0, result.stderr
    assert all("warning" not in r for r in records)


def test_a_config_that_absorbs_all_relevance_warns(tmp_path):
    model = _tiny_logit_model(tmp_path / "plain.keras", 1.0)
    config = tmp_path / "absorbing.yaml"
    config.write_text("default: {rule: epsilon, epsilon: 1.0e+9}\n")
    result, records = _explain(tmp_path, model, "-r", config, "-m", "lrp")
    assert result.exit_code == 0, result.stderr
    assert all("lrp: relevance vanishes" in r["warning"] for r in records)


@pytest.mark.parametrize("relevance,score,expected", [
    (np.zeros((4, 4, 1)), 2.0, "relevance is zero everywhere: the rule config passes no relevance"),
    (np.full((4, 4, 1), 1e-9), 2.0, "relevance vanishes"),
    (np.full((4, 4, 1), 0.1), 2.0, None),
    (np.ones((4, 4, 1)), 0.0, "the explained score is 0"),
])
def test_vanishing_verdicts_for_lrp(relevance, score, expected):
    warning = vanishing(METHODS["lrp"], relevance, score)
    assert (warning is None) if expected is None else expected in warning


def test_zero_gradient_is_named_for_gradient_methods():
    assert "gradient is zero everywhere" in vanishing(METHODS["sa"], np.zeros((2, 2, 1)), 1.0)
    assert vanishing(METHODS["sa"], np.full((2, 2, 1), 1e-30), 1.0) is None
