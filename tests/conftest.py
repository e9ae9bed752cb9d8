"""Shared helpers: fixture paths and a one-call explanation through the library API."""

from pathlib import Path

import numpy as np
import pytest

from xai_cli.engine import composites
from xai_cli.engine.explainers import make_explainer
from xai_cli.engine.graph import build_graph
from xai_cli.engine.methods import METHODS
from xai_cli.io import preprocess
from xai_cli.models.loading import load

FIXTURES = Path(__file__).parent / "fixtures"
ORACLE = FIXTURES / "oracle"


def explain(model, x, targets, method="lrp", rules="lrp-epsilon", preprocessing="unit"):
    """Relevance of ``model`` (a keras.Model or a file) for a batch, via the library API."""
    graph = build_graph(load(model) if isinstance(model, (str, Path)) else model)
    composite = composites.parse(rules, "test config") if "\n" in rules else composites.load(rules)
    explainer = make_explainer(graph, METHODS[method], composite,
                               preprocess.resolve(preprocessing))
    return explainer.explain(np.asarray(x, np.float32), np.asarray(targets, np.int32))


def relative_max_diff(actual, expected):
    return float(np.abs(actual - expected).max() / np.abs(expected).max())


@pytest.fixture
def rng():
    return np.random.default_rng(0)
