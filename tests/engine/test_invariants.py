"""The analytic invariants of DESIGN.md section 5, on models built here."""

import keras
import numpy as np
import pytest

from conftest import autodiff_vjp, explain

pytestmark = pytest.mark.backends   # run on every installed Keras backend


def _relu_net(bias=True, seed=0):
    """Conv/max-pool/avg-pool/Add/Concatenate/Dense: every structure the rules meet."""
    keras.utils.set_random_seed(seed)
    init = "random_normal" if bias else "zeros"
    inp = keras.Input((12, 12, 3))
    a = keras.layers.Conv2D(6, 3, padding="same", activation="relu", bias_initializer=init)(inp)
    b = keras.layers.Conv2D(6, 1, activation="relu", bias_initializer=init)(inp)
    h = keras.layers.Add()([a, b])
    h = keras.layers.MaxPooling2D(2)(h)
    c = keras.layers.Conv2D(4, 3, padding="same", activation="relu", bias_initializer=init)(h)
    h = keras.layers.Concatenate()([h, c])
    h = keras.layers.AveragePooling2D(2)(h)
    h = keras.layers.Flatten()(h)
    h = keras.layers.Dense(16, activation="relu", bias_initializer=init)(h)
    out = keras.layers.Dense(5, bias_initializer=init)(h)
    return keras.Model(inp, out)


def _inputs(n=6, seed=1):
    return np.random.default_rng(seed).uniform(0, 1, (n, 12, 12, 3)).astype(np.float32)


@pytest.mark.parametrize("config", [
    "default: {rule: epsilon, epsilon: 1.0e-9, bias: false}",
    "default: {rule: zplus, bias: false}",
    "default: {rule: gamma, gamma: 0.25, bias: false}",
])
def test_conservation_without_biases(config):
    x = _inputs()
    result = explain(_relu_net(bias=False), x, [-1] * len(x), rules=config + "\n")
    explained = result.logits[np.arange(len(x)), result.targets]
    np.testing.assert_allclose(result.relevance.sum(axis=(1, 2, 3)), explained, rtol=1e-3)


def test_biases_absorb_relevance_when_included():
    x = _inputs()
    result = explain(_relu_net(bias=True), x, [-1] * len(x), rules="lrp-epsilon")
    explained = result.logits[np.arange(len(x)), result.targets]
    assert not np.allclose(result.relevance.sum(axis=(1, 2, 3)), explained, rtol=1e-3)


def test_lrp0_equals_gradient_times_input_on_relu_nets():
    x = _inputs()
    model = _relu_net(bias=True)
    lrp = explain(model, x, [2] * len(x), rules="lrp-0").relevance
    gxi = explain(model, x, [2] * len(x), method="gradxinput").relevance
    # LRP-0 divides by z unstabilised: near-zero z amplifies the backend's rounding
    np.testing.assert_allclose(lrp, gxi, rtol=1e-3, atol=5e-4 * np.abs(gxi).max())


@pytest.mark.parametrize("rules", ["dtd-zplus", "lrp-alpha1beta0"])
def test_zplus_relevance_has_the_sign_of_the_explained_score(rules):
    x = _inputs()
    result = explain(_relu_net(), x, [-1] * len(x), rules=rules)
    explained = result.logits[np.arange(len(x)), result.targets]
    signed = result.relevance * np.sign(explained)[:, None, None, None]
    assert signed.min() >= 0 and signed.max() > 0


@pytest.mark.parametrize("method,rules", [("lrp", "epsilon-gamma-box"), ("lrp", "dtd-zbox"),
                                          ("sa", "lrp-epsilon"), ("smoothgrad", "lrp-epsilon"),
                                          ("integrated-gradients", "lrp-epsilon")])
def test_results_do_not_depend_on_batch_size(method, rules):
    from xai_cli.engine import composites
    from xai_cli.engine.explainers import make_explainer
    from xai_cli.engine.graph import build_graph
    from xai_cli.engine.methods import METHODS
    from xai_cli.io import preprocess
    x = _inputs(7)
    explainer = make_explainer(build_graph(_relu_net()), METHODS[method], composites.load(rules),
                               preprocess.resolve("unit"), seed=5)
    targets = np.full(7, -1, np.int32)
    whole = explainer.explain(x, targets).relevance
    parts = [explainer.explain(x[i:j], targets[i:j], np.arange(i, j)).relevance
             for i, j in ((0, 3), (3, 4), (4, 7))]
    np.testing.assert_allclose(np.concatenate(parts), whole, rtol=1e-5,
                               atol=1e-6 * np.abs(whole).max())


def test_engine_gradient_equals_the_backends_autodiff():
    x = _inputs()
    model = _relu_net()
    ours = explain(model, x, [1] * len(x), method="gradient").relevance
    reference, _ = autodiff_vjp(model, x, np.eye(model.output_shape[-1], dtype=np.float32)[[1] * len(x)])
    np.testing.assert_allclose(ours, reference, rtol=1e-5, atol=1e-7)


def test_guided_backprop_and_deconvnet_differ_from_the_gradient():
    x = _inputs()
    model = _relu_net()
    maps = {m: explain(model, x, [0] * len(x), method=m).relevance
            for m in ("gradient", "guided-backprop", "deconvnet")}
    assert not np.allclose(maps["guided-backprop"], maps["gradient"])
    assert not np.allclose(maps["deconvnet"], maps["gradient"])


def test_integrated_gradients_is_complete():
    """IG sums to f(x) - f(0) (up to the Riemann sum's error)."""
    x = _inputs(3)
    model = _relu_net()
    result = explain(model, x, [0] * 3, method="integrated-gradients")
    baseline = keras.ops.convert_to_numpy(model(np.zeros_like(x)))[:, 0]
    np.testing.assert_allclose(result.relevance.sum(axis=(1, 2, 3)),
                               result.logits[:, 0] - baseline, rtol=0.05)
