"""The rules against a plain NumPy implementation of their formulas (DESIGN.md section 4).

The network is a Conv -> ReLU -> Dense -> ReLU -> Dense stack; the convolution is turned
into its dense matrix by probing it with unit inputs, so every layer is a matrix product
and each rule is a few lines of NumPy, independent of the engine's mechanism.
"""

import keras
import numpy as np
import pytest

from conftest import explain, relative_max_diff

pytestmark = pytest.mark.backends   # run on every installed Keras backend

EPS = 1e-6


def _stab(z, eps=EPS):
    return z + eps * np.where(z >= 0, 1.0, -1.0)


def _pos(a):
    return np.maximum(a, 0)


def _neg(a):
    return np.minimum(a, 0)


def np_rule(name, a, W, b, R, low=None, high=None, **p):
    """Input relevance of one dense layer z = a @ W + b, for output relevance R."""
    if name == "epsilon":   # relative: epsilon is a share of each input's std of z
        z = a @ W + b
        eps = p["epsilon"] * z.std(axis=1, keepdims=True) if p.get("relative") else p["epsilon"]
        return a * ((R / _stab(z, eps)) @ W.T)
    if name == "zplus":
        s = R / _stab(_pos(a) @ _pos(W) + _neg(a) @ _neg(W) + _pos(b))
        return _pos(a) * (s @ _pos(W).T) + _neg(a) * (s @ _neg(W).T)
    if name == "alpha-beta":
        sp = R / _stab(_pos(a) @ _pos(W) + _neg(a) @ _neg(W) + _pos(b))
        sn = R / _stab(_pos(a) @ _neg(W) + _neg(a) @ _pos(W) + _neg(b))
        return p["alpha"] * (_pos(a) * (sp @ _pos(W).T) + _neg(a) * (sp @ _neg(W).T)) \
            - p["beta"] * (_pos(a) * (sn @ _neg(W).T) + _neg(a) * (sn @ _pos(W).T))
    if name == "gamma":
        g = p["gamma"]
        Wp, Wn, bp, bn = W + g * _pos(W), W + g * _neg(W), b + g * _pos(b), b + g * _neg(b)
        z = a @ W + b
        sp = (z > 0) * R / _stab(_pos(a) @ Wp + _neg(a) @ Wn + bp)
        sn = (z < 0) * R / _stab(_pos(a) @ Wn + _neg(a) @ Wp + bn)
        return _pos(a) * (sp @ Wp.T) + _neg(a) * (sp @ Wn.T) \
            + _pos(a) * (sn @ Wn.T) + _neg(a) * (sn @ Wp.T)
    if name == "zbox":
        lo, hi = np.full_like(a, low), np.full_like(a, high)
        s = R / _stab(a @ W + b - lo @ _pos(W) - _pos(b) - hi @ _neg(W) - _neg(b))
        return a * (s @ W.T) - lo * (s @ _pos(W).T) - hi * (s @ _neg(W).T)
    if name == "w2":
        return (R / _stab(np.ones_like(a) @ W ** 2 + b ** 2)) @ (W ** 2).T
    if name == "flat":  # ones on the layer's connections (a convolution's receptive fields)
        ones = (W != 0).astype(float)
        return (R / _stab(np.ones_like(a) @ ones)) @ ones.T
    raise ValueError(name)


FIRST_LAYERS = {   # the first layer's class, the input shape, and whether it is per frame
    "conv1d": (keras.layers.Conv1D, (9, 2), False),        # a signal's
    "conv2d": (keras.layers.Conv2D, (6, 6, 2), False),
    "conv3d": (keras.layers.Conv3D, (3, 5, 5, 2), False),
    "frames": (keras.layers.Conv2D, (3, 5, 5, 2), True),   # TimeDistributed(Conv2D)
}


def _first(first, **options):
    cls, _, per_frame = FIRST_LAYERS[first]
    layer = cls(3, (2, 3, 3) if cls is keras.layers.Conv3D else 3, **options)
    return keras.layers.TimeDistributed(layer) if per_frame else layer


def _model(seed=3, conv_activation="relu", first="conv2d"):
    keras.utils.set_random_seed(seed)
    inp = keras.Input(FIRST_LAYERS[first][1])
    h = _first(first, activation=conv_activation, bias_initializer="random_normal", name="conv")(inp)
    h = keras.layers.Flatten()(h)
    h = keras.layers.Dense(8, activation="relu", bias_initializer="random_normal", name="fc1")(h)
    out = keras.layers.Dense(4, bias_initializer="random_normal", name="fc2")(h)
    return keras.Model(inp, out)


def _dense_layers(model, x, conv_activation="relu", first="conv2d"):
    """(activation in, W, b) per layer, with the convolution as a dense matrix."""
    conv, dense1, dense2 = [layer for layer in model.layers if layer.weights]
    n_in = int(np.prod(x.shape[1:]))
    probe = np.eye(n_in, dtype=np.float32).reshape(n_in, *x.shape[1:])
    kernel, bias = conv.get_weights()
    linear = _first(first, use_bias=False)
    linear.build(x.shape)
    linear.set_weights([kernel])
    W1 = keras.ops.convert_to_numpy(linear(probe)).reshape(n_in, -1)
    b1 = np.tile(bias, W1.shape[1] // len(bias))
    a0 = x.reshape(len(x), -1).astype(np.float64)
    a1 = a0 @ W1 + b1
    if conv_activation == "relu":
        a1 = np.maximum(a1, 0)
    W2, b2 = dense1.get_weights()
    a2 = np.maximum(a1 @ W2 + b2, 0)
    W3, b3 = dense2.get_weights()
    return [(a0, W1, b1), (a1, W2, b2), (a2, W3, b3)]


CASES = {
    "epsilon": ("default: {rule: epsilon, epsilon: 0.1}", [{"epsilon": 0.1}] * 3),
    "epsilon-relative": ("default: {rule: epsilon, epsilon: 0.1, relative: true}",
                         [{"epsilon": 0.1, "relative": True}] * 3),
    "zplus": ("default: {rule: zplus}", [{}] * 3),
    "alpha2beta1": ("default: {rule: alpha-beta, alpha: 2, beta: 1}", [{"alpha": 2, "beta": 1}] * 3),
    "gamma": ("default: {rule: gamma, gamma: 0.5}", [{"gamma": 0.5}] * 3),
    "zbox-gamma-epsilon": (
        "rules:\n  - {match: {first: true}, rule: zbox, low: -1, high: 2}\n"
        "  - {match: {type: Dense, name: fc2}, rule: epsilon, epsilon: 0.01}\n"
        "default: {rule: gamma, gamma: 0.25}",
        [{"rule": "zbox", "low": -1, "high": 2}, {"gamma": 0.25, "rule": "gamma"},
         {"epsilon": 0.01, "rule": "epsilon"}]),
    "w2": ("rules:\n  - {match: {first: true}, rule: w2}\ndefault: {rule: epsilon, epsilon: 1.0e-6}",
           [{"rule": "w2"}, {"epsilon": EPS, "rule": "epsilon"}, {"epsilon": EPS, "rule": "epsilon"}]),
    "flat": ("rules:\n  - {match: {first: true}, rule: flat}\ndefault: {rule: zplus}",
             [{"rule": "flat"}, {"rule": "zplus"}, {"rule": "zplus"}]),
}


@pytest.mark.parametrize("conv_activation", ["relu", "linear"])
@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("first", list(FIRST_LAYERS))
def test_rules_match_numpy(case, conv_activation, first):
    """With a ReLU after the convolution, rules may skip what the ReLU silences; without
    one, the second layer sees negative inputs and the first's negative outputs count.
    The first layer is a signal's convolution (Conv1D), an image's, a clip's (Conv3D) or
    a frame's (TimeDistributed)."""
    config, per_layer = CASES[case]
    model = _model(conv_activation=conv_activation, first=first)
    x = np.random.default_rng(1).uniform(-1, 2, (5, *FIRST_LAYERS[first][1])).astype(np.float32)
    result = explain(model, x, [-1] * len(x), rules=config + "\n")
    layers = _dense_layers(model, x, conv_activation, first)
    logits = layers[-1][0] @ layers[-1][1] + layers[-1][2]
    R = np.eye(4)[result.targets] * logits
    rule_name = case.split("-")[0] if case != "alpha2beta1" else "alpha-beta"
    for (a, W, b), params in reversed(list(zip(layers, per_layer))):
        params = dict(params)
        name = params.pop("rule", rule_name)
        if name == "flat":
            b = np.zeros_like(b)
        R = np_rule(name, a, W, b, R, **params)
    assert relative_max_diff(result.relevance.reshape(len(x), -1), R) < 1e-4


@pytest.mark.parametrize("rule,params", [("zplus", {}), ("gamma", {"gamma": 0.5})])
def test_layer_normalisation_output_is_signed_after_a_relu(rule, params):
    """LayerNorm's standardisation centres its input: after a ReLU its output still has a
    negative part, which z+ and gamma on the layers it feeds must not drop."""
    keras.utils.set_random_seed(5)
    inp = keras.Input((6,))
    h = keras.layers.Dense(8, activation="relu", bias_initializer="random_normal", name="fc1")(inp)
    norm = keras.layers.LayerNormalization(beta_initializer="random_normal",
                                           gamma_initializer="random_normal")
    model = keras.Model(inp, keras.layers.Dense(4, bias_initializer="random_normal",
                                                name="fc2")(norm(h)))
    x = np.random.default_rng(1).uniform(-1, 2, (5, 6)).astype(np.float32)
    config = "default: {rule: " + rule + "".join(f", {k}: {v}" for k, v in params.items()) + "}\n"
    result = explain(model, x, [-1] * len(x), rules=config)
    (W1, b1), (W2, b2) = model.get_layer("fc1").get_weights(), model.get_layer("fc2").get_weights()
    scale, shift = norm.get_weights()
    a1 = np.maximum(x.astype(np.float64) @ W1 + b1, 0)
    sigma = np.sqrt(a1.var(1, keepdims=True) + norm.epsilon)
    standard = (a1 - a1.mean(1, keepdims=True)) / sigma
    assert (standard < 0).any()
    a2 = standard * scale + shift
    R = np.eye(4)[result.targets] * (a2 @ W2 + b2)
    R = np_rule(rule, a2, W2, b2, R, **params)
    R = np_rule(rule, standard, np.diag(scale), shift, R, **params)   # the learned affine map
    s = R / _stab(standard)                                            # standardisation, sigma held
    R = a1 * (s - s.mean(1, keepdims=True)) / sigma
    R = np_rule(rule, x.astype(np.float64), W1, b1, R, **params)
    assert relative_max_diff(result.relevance, R) < 1e-4
