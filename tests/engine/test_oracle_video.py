"""Our relevance on a Conv3D video model against Zennit 0.5.1 references in
fixtures/oracle_video (see its README; made by scripts/make_zennit_video_fixtures.py)."""

import numpy as np
import pytest
from test_oracle import BUILTIN, INLINE, TOLERANCE  # the same keys, configs and tolerance

from conftest import FIXTURES, explain, relative_max_diff
from xai_cli.engine import composites
from xai_cli.engine.graph import build_graph
from xai_cli.models.loading import load

pytestmark = pytest.mark.backends   # run on every installed Keras backend

VIDEO = FIXTURES / "oracle_video"
MODEL = VIDEO / "c3d.keras"


def _case():
    return np.load(VIDEO / "c3d_inputs.npy"), np.load(VIDEO / "c3d_refs.npz")


@pytest.mark.parametrize("key", list(BUILTIN) + list(INLINE))
def test_lrp_matches_zennit(key):
    x, refs = _case()
    assert refs[key].shape == x.shape
    result = explain(MODEL, x, refs["targets"], rules=INLINE.get(key) or BUILTIN[key])
    np.testing.assert_allclose(result.logits, refs["logits"], rtol=1e-4, atol=1e-5)
    assert relative_max_diff(result.relevance, refs[key]) < TOLERANCE


@pytest.mark.parametrize("method", ["gradient", "gradxinput"])
def test_gradient_baselines_match_zennit(method):
    x, refs = _case()
    result = explain(MODEL, x, refs["targets"], method=method)
    np.testing.assert_allclose(result.logits, refs["logits"], rtol=1e-4, atol=1e-5)
    assert relative_max_diff(result.relevance, refs[method]) < TOLERANCE


@pytest.mark.parametrize("config", ["epsilon-plus-flat", "epsilon-gamma-box", "w2-first"])
def test_first_layer_is_zennits_first_layer(config):
    """Zennit's first layer is the first Conv3d; xai's `first: true` (every layer fed by
    the input, after merging the BatchNormalization) is that Conv3D alone, so the built-in
    configs apply unchanged."""
    composite = composites.load(config)
    graph = composite.canonize(build_graph(load(MODEL)))
    assignments, _ = composite.resolve(graph)
    first_entry = next(e for e in composite.entries if e.first)
    assert {op.layer for op, a in zip(graph.ops, assignments) if a.source == first_entry.source} == {"conv1"}
    assert {graph.ops[i].layer for i in composites.first_layers(graph)} == {"conv1"}


def test_top1_target_is_the_reference_target():
    x, refs = _case()
    result = explain(MODEL, x, [-1] * len(x))
    np.testing.assert_array_equal(result.targets, refs["targets"])
    assert relative_max_diff(result.relevance, refs["lrp_epsilon_1e-6"]) < TOLERANCE
