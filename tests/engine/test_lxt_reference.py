"""xai against LXT, the authors' own AttnLRP code: a Transformer block explained by LXT 2.1
in PyTorch (tests/fixtures/lxt, made by scripts/make_lxt_fixtures.py) and by xai in Keras
with the same weights, on every backend."""

import numpy as np
import pytest
from keras import ops
from test_attention import _model

from conftest import FIXTURES, explain, relative_max_diff

pytestmark = pytest.mark.backends

REFERENCE = np.load(FIXTURES / "lxt" / "encoder.npz")


def _with_lxt_weights():
    model = _model()
    weights = {k.split(":", 1)[1]: REFERENCE[k] for k in REFERENCE.files if k.startswith("weight:")}
    for variable in model.weights:
        variable.assign(weights[variable.path])
    return model


@pytest.mark.parametrize("mode,reference", [("attnlrp", "explicit_attnlrp"),
                                            ("attnlrp", "efficient_attnlrp"),
                                            ("cp-lrp", "efficient_cp_lrp")])
def test_xai_matches_lxt(mode, reference):
    """The built-in configs. LXT's explicit mode is epsilon-LRP (1e-6 on linear layers, 1e-8
    on sums); its efficient mode is gradient x input, LRP-0 with the biases in the
    denominators. xai splits sums with Zennit's 1e-6: where a residual sum is near 0 that
    differs, by at most 8.3e-5 of the largest relevance on this block."""
    model, x = _with_lxt_weights(), REFERENCE["x"]
    result = explain(model, x, [-1] * len(x), rules=mode, preprocessing="none")
    np.testing.assert_allclose(result.logits, REFERENCE["logits"], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ops.convert_to_numpy(model(x)), REFERENCE["logits"], rtol=1e-5, atol=1e-5)
    assert (result.targets == REFERENCE["targets"]).all()
    assert relative_max_diff(result.relevance, REFERENCE[reference]) < 1e-4
