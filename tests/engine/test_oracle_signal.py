"""Our relevance on a Conv1D signal model against Zennit 0.5.1 references in
fixtures/oracle_signal (see its README; made by scripts/make_zennit_signal_fixtures.py):
the keys, configs and tolerance of the image oracle, test_oracle.py."""

import numpy as np
import pytest
from test_oracle import BUILTIN, INLINE, TOLERANCE

from conftest import FIXTURES, explain, relative_max_diff
from xai_cli.engine import composites
from xai_cli.engine.graph import build_graph
from xai_cli.models.loading import load

pytestmark = pytest.mark.backends   # run on every installed Keras backend

SIGNAL = FIXTURES / "oracle_signal"
MODEL = SIGNAL / "conv1d.keras"
X = np.load(SIGNAL / "conv1d_inputs.npy")       # (4, 64, 3): signals, time steps, channels
REFS = dict(np.load(SIGNAL / "conv1d_refs.npz"))


SIGNAL_DEFAULT = {"signal_epsilon_alpha": "signal-epsilon-alpha"}   # the signal models' default


@pytest.mark.parametrize("key", [*BUILTIN, *INLINE, *SIGNAL_DEFAULT, "gradient", "gradxinput"])
def test_matches_zennit(key):
    assert REFS[key].shape == X.shape
    if key in ("gradient", "gradxinput"):
        result = explain(MODEL, X, REFS["targets"], method=key)
    else:
        configs = {**BUILTIN, **SIGNAL_DEFAULT}
        result = explain(MODEL, X, REFS["targets"], rules=INLINE.get(key) or configs[key])
    np.testing.assert_allclose(result.logits, REFS["logits"], rtol=1e-4, atol=1e-5)
    assert relative_max_diff(result.relevance, REFS[key]) < TOLERANCE


@pytest.mark.parametrize("config", ["epsilon-plus-flat", "epsilon-gamma-box", "w2-first",
                                    "signal-epsilon-alpha"])
def test_first_layer_is_zennits_first_layer(config):
    """Zennit's first layer is the first Conv1d; xai's `first: true` is the first Conv1D
    alone (bn1 merged into it), so the built-in configs apply unchanged."""
    composite = composites.load(config)
    graph = composite.canonize(build_graph(load(MODEL)))
    assignments, _ = composite.resolve(graph)
    first = next(e for e in composite.entries if e.first)
    assert {op.layer for op, a in zip(graph.ops, assignments) if a.source == first.source} == {"conv1"}
    assert {graph.ops[i].layer for i in composites.first_layers(graph)} == {"conv1"}


def test_top1_target_is_the_reference_target():
    assert len(set(REFS["targets"].tolist())) > 1     # the batch's classes differ (0, 4, 0, 4)
    result = explain(MODEL, X, [-1] * len(X))
    np.testing.assert_array_equal(result.targets, REFS["targets"])
    assert relative_max_diff(result.relevance, REFS["lrp_epsilon_1e-6"]) < TOLERANCE
