"""The engine against the authors' own LRP for LSTMs (Arras et al.'s ``LRP_for_LSTM``),
run outside the project on a small bidirectional LSTM: see tests/fixtures/arras_lstm/README.md."""

from pathlib import Path

import keras
import numpy as np
import pytest

from xai_cli.engine import composites
from xai_cli.engine.explainers import make_explainer
from xai_cli.engine.graph import build_graph
from xai_cli.engine.methods import METHODS

pytestmark = pytest.mark.backends
FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "arras_lstm"


def test_default_text_rules_match_arras_lrp_with_bias_factor_0():
    """xai's default for text (epsilon 0.001 on every linear step and on the cell-state sum,
    biases in the denominators, gates none) is their ``lrp(eps=0.001, bias_factor=0.0)``."""
    model = keras.saving.load_model(FIXTURE / "model.keras")
    graph = build_graph(model)
    tokens = np.load(FIXTURE / "tokens.npy")
    x, mask = graph.text.embed(tokens)
    explainer = make_explainer(graph, METHODS["lrp"], composites.load("text-epsilon"), None)
    result = explainer.explain(x, np.full(len(x), -1, np.int32), named={"mask": mask})
    np.testing.assert_array_equal(result.targets, np.load(FIXTURE / "target.npy"))
    np.testing.assert_allclose(result.logits, np.load(FIXTURE / "scores.npy"), atol=1e-5)
    expected = np.load(FIXTURE / "relevance_bias0.npy")
    scale = np.abs(expected).max()
    np.testing.assert_allclose(result.relevance, expected, rtol=0, atol=1e-5 * scale)
    # their bias_factor=1 spreads the biases' share over the inputs: a different heatmap
    assert np.abs(result.relevance - np.load(FIXTURE / "relevance_bias1.npy")).max() > 1e-2 * scale
