"""XLA compilation (XAI_XLA=1): the same maps as without it; random methods never compiled."""

import numpy as np
import pytest

from conftest import relative_max_diff
from networks import resnet_like
from xai_cli.engine import composites
from xai_cli.engine.explainers import make_explainer
from xai_cli.engine.graph import build_graph
from xai_cli.engine.methods import METHODS
from xai_cli.io import preprocess

# epsilon 1e-6 (lrp-epsilon) divides by near-zero outputs of this random network, which
# amplifies XLA's different rounding to 1e-4 on some CPUs; 0.01 runs the same ops well-conditioned
EPSILON = "name: eps\ncanonizers: [merge-batchnorm]\ndefault: {rule: epsilon, epsilon: 0.01}\n"


def _config(rules):
    return composites.parse(rules, "test config") if "\n" in rules else composites.load(rules)


@pytest.mark.parametrize("method,rules", [("lrp", "epsilon-gamma-box"), ("lrp", EPSILON),
                                          ("integrated-gradients", "lrp-epsilon")])
def test_xla_gives_the_same_relevance(method, rules, monkeypatch):
    graph = build_graph(resnet_like())
    x = np.random.default_rng(0).uniform(0, 1, (3, 21, 21, 3)).astype(np.float32)
    targets = np.array([-1, 2, 4], np.int32)
    monkeypatch.setenv("XAI_XLA", "1")
    compiled = make_explainer(graph, METHODS[method], _config(rules), preprocess.resolve("unit"))
    monkeypatch.setenv("XAI_XLA", "0")
    plain = make_explainer(graph, METHODS[method], _config(rules), preprocess.resolve("unit"))
    assert compiled.jit and not plain.jit
    a, b = compiled.explain(x, targets), plain.explain(x, targets)
    assert np.abs(b.relevance).max() > 0
    assert relative_max_diff(a.relevance, b.relevance) < 1e-5


def test_random_methods_are_not_compiled(monkeypatch):
    monkeypatch.setenv("XAI_XLA", "1")
    explainer = make_explainer(build_graph(resnet_like()), METHODS["smoothgrad"],
                               composites.load("lrp-epsilon"), preprocess.resolve("unit"))
    assert not explainer.jit
