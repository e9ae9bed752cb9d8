"""Our relevance against the Zennit 0.5.1 references in fixtures/oracle (see its README)."""

import numpy as np
import pytest

from conftest import ORACLE, explain, relative_max_diff

pytestmark = pytest.mark.backends   # run on every installed Keras backend

MODELS = ["mlp", "vgg", "bn", "res", "concat", "softmax"]
TOLERANCE = 1e-3

# reference key -> built-in config that implements the same Zennit setting
BUILTIN = {
    "lrp_epsilon_1e-6": "lrp-epsilon",
    "lrp_alpha1beta0": "lrp-alpha1beta0",
    "lrp_alpha2beta1": "lrp-alpha2beta1",
    "lrp_zplus": "dtd-zplus",
    "epsilon_plus_flat": "epsilon-plus-flat",
    "epsilon_gamma_box": "epsilon-gamma-box",
    "wsquare_then_epsilon": "w2-first",
}
# settings with no built-in config, as config text
INLINE = {
    "lrp_epsilon_0.25": "default: {rule: epsilon, epsilon: 0.25}\ncanonizers: [merge-batchnorm]\n",
    "lrp_gamma_0.25": "default: {rule: gamma, gamma: 0.25}\ncanonizers: [merge-batchnorm]\n",
}
# Zennit's "first layer" is the first registered module: on 'concat' only conv2d_8, while
# xai's `first: true` means every layer fed by the input (conv2d_8 and conv2d_9). Matching
# the layer by name reproduces Zennit's convention.
FIRST_BY_NAME = {
    "epsilon_plus_flat": "rules:\n  - {match: {name: conv2d_8}, rule: flat}\n"
                         "  - {match: {type: Convolution}, rule: zplus}\n",
    "epsilon_gamma_box": "rules:\n  - {match: {name: conv2d_8}, rule: zbox}\n"
                         "  - {match: {type: Convolution}, rule: gamma, gamma: 0.25}\n",
    "wsquare_then_epsilon": "rules:\n  - {match: {name: conv2d_8}, rule: w2}\n",
}


def _config(model, key):
    if model == "concat" and key in FIRST_BY_NAME:
        return FIRST_BY_NAME[key] + "default: {rule: epsilon, epsilon: 1.0e-6}\n"
    return INLINE.get(key) or BUILTIN[key]


def _case(model):
    refs = np.load(ORACLE / f"{model}_refs.npz")
    return np.load(ORACLE / f"{model}_inputs.npy"), refs


@pytest.mark.parametrize("key", list(BUILTIN) + list(INLINE))
@pytest.mark.parametrize("model", MODELS)
def test_lrp_matches_zennit(model, key):
    x, refs = _case(model)
    result = explain(ORACLE / f"{model}.keras", x, refs["targets"], rules=_config(model, key))
    np.testing.assert_allclose(result.logits, refs["logits"], rtol=1e-4, atol=1e-5)
    assert relative_max_diff(result.relevance, refs[key]) < TOLERANCE


@pytest.mark.parametrize("method", ["gradient", "gradxinput"])
@pytest.mark.parametrize("model", MODELS)
def test_gradient_baselines_match_zennit(model, method):
    x, refs = _case(model)
    result = explain(ORACLE / f"{model}.keras", x, refs["targets"], method=method)
    assert relative_max_diff(result.relevance, refs[method]) < TOLERANCE


@pytest.mark.parametrize("model", MODELS)
def test_legacy_h5_gives_the_same_relevance(model):
    x, refs = _case(model)
    keras_file = explain(ORACLE / f"{model}.keras", x, refs["targets"], rules="epsilon-gamma-box")
    h5_file = explain(ORACLE / f"{model}.h5", x, refs["targets"], rules="epsilon-gamma-box")
    np.testing.assert_allclose(h5_file.relevance, keras_file.relevance, rtol=1e-5, atol=1e-7)


def test_top1_target_is_the_reference_target():
    x, refs = _case("vgg")
    result = explain(ORACLE / "vgg.keras", x, [-1] * len(x))
    np.testing.assert_array_equal(result.targets, refs["targets"])
    assert relative_max_diff(result.relevance, refs["lrp_epsilon_1e-6"]) < TOLERANCE
