"""Model coverage: every supported layer, nested models, and the Keras application CNNs.

For each model: the rewritten graph computes the same function as Keras, relevance is
finite and shaped like the input, and (with LRP-0 and biases out of the denominators)
relevance is conserved from the logit to the input.
"""

import keras
import numpy as np
import pytest

from conftest import autodiff_vjp, explain
from xai_cli.engine.graph import build_graph
from xai_cli.engine.propagation import Scorer

pytestmark = pytest.mark.backends   # run on every installed Keras backend

L = keras.layers
CONSERVING = ("canonizers: [merge-batchnorm]\n"
              "rules: [{match: {type: Pooling}, rule: zero}]\n"
              "default: {rule: zero, bias: false}\n")


def _check(model, x, conserve=True):
    graph = build_graph(model)
    expected = keras.ops.convert_to_numpy(model(x))
    ours = Scorer(graph)(x)
    if graph.softmax_stripped:
        ours = np.exp(ours - ours.max(1, keepdims=True))
        ours /= ours.sum(1, keepdims=True)
    np.testing.assert_allclose(ours, expected, rtol=1e-4, atol=1e-6 * np.abs(expected).max())
    for rules in ("epsilon-gamma-box", "lrp-epsilon"):
        result = explain(model, x, [-1] * len(x), rules=rules, preprocessing="raw")
        assert result.relevance.shape == x.shape and np.isfinite(result.relevance).all()
    result = explain(model, x, [-1] * len(x), rules=CONSERVING, preprocessing="raw")
    ratio = result.relevance.reshape(len(x), -1).sum(1) / result.logits[np.arange(len(x)), result.targets]
    if conserve:
        np.testing.assert_allclose(ratio, 1, rtol=0.01)
    return ratio


def _images(shape, n=2, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (n, *shape)).astype(np.float32)


def test_every_supported_layer():
    keras.utils.set_random_seed(1)
    inp = keras.Input((20, 20, 3))
    h = L.Rescaling(1 / 255)(inp)
    h = L.Normalization(mean=[0.5, 0.4, 0.3], variance=[0.1, 0.2, 0.3])(h)
    h = L.ZeroPadding2D(1)(h)
    h = L.Conv2D(8, 3, use_bias=False)(h)
    h = L.BatchNormalization(moving_mean_initializer="random_normal",
                             moving_variance_initializer="ones")(h)
    h = L.ReLU(6.0)(h)
    h = L.DepthwiseConv2D(3, padding="same", depth_multiplier=2, activation="relu")(h)
    h = L.SeparableConv2D(8, 3, padding="same")(h)
    h = L.LeakyReLU(0.1)(h)
    a = L.Cropping2D(1)(h)
    b = L.AveragePooling2D(3, strides=1)(h)
    h = L.Concatenate()([a, b])
    h = L.BatchNormalization(beta_initializer="random_normal")(h)   # not after a linear layer
    h = L.Activation("relu")(h)
    h = L.MaxPooling2D(2)(h)
    h = L.Dropout(0.5)(h)
    h = L.Reshape((-1, 16))(h)
    h = L.Conv1D(6, 3, padding="causal", activation="relu")(h)
    h = L.GlobalMaxPooling1D()(h)
    out = L.Dense(4, activation="softmax")(h)
    _check(keras.Model(inp, out), _images((20, 20, 3)), conserve=False)


def test_nested_models_are_flattened():
    keras.utils.set_random_seed(2)
    block_in = keras.Input((8, 8, 4))
    block = keras.Model(block_in, L.Add()([block_in, L.Conv2D(4, 3, padding="same",
                                                               activation="relu")(block_in)]))
    outer = keras.Sequential([keras.Input((8, 8, 3)), L.Conv2D(4, 1, activation="relu"), block,
                              L.GlobalAveragePooling2D(), L.Dense(3)])
    _check(outer, _images((8, 8, 3)))
    assert len(build_graph(outer).ops) == 7


def test_squeeze_excitation_gate_is_a_constant():
    keras.utils.set_random_seed(3)
    inp = keras.Input((8, 8, 3))
    h = L.Conv2D(6, 3, activation="relu")(inp)
    gate = L.Dense(6, activation="sigmoid")(L.GlobalAveragePooling2D(keepdims=True)(h))
    h = L.Multiply()([h, gate])
    out = L.Dense(3)(L.Flatten()(h))
    _check(keras.Model(inp, out), _images((8, 8, 3)))


def _gradient_is_autodiff(model, x):
    """The engine's gradient (the rules' structural and pooling steps use it) equals the
    backend's autodiff of the model."""
    ours = explain(model, x, [1] * len(x), method="gradient").relevance
    reference, _ = autodiff_vjp(model, x, np.eye(model.output_shape[-1], dtype=np.float32)[[1] * len(x)])
    np.testing.assert_allclose(ours, reference, rtol=1e-4, atol=1e-6 * np.abs(reference).max())


def test_every_3d_layer():
    """A clip model: Conv3D with BatchNormalization folded, 3D pooling, padding, cropping."""
    keras.utils.set_random_seed(5)
    inp = keras.Input((6, 10, 10, 2))
    h = L.ZeroPadding3D((0, 1, 1))(inp)
    h = L.Conv3D(6, 3, use_bias=False)(h)
    h = L.BatchNormalization(moving_mean_initializer="random_normal",
                             moving_variance_initializer="ones", beta_initializer="random_normal")(h)
    h = L.ReLU()(h)
    h = L.SpatialDropout3D(0.2)(h)
    a = L.MaxPooling3D((1, 2, 2))(h)
    b = L.AveragePooling3D((1, 2, 2))(h)
    h = L.Concatenate()([a, b])
    h = L.Conv3D(8, (3, 1, 1), activation="relu", padding="same")(h)
    h = L.Cropping3D((1, 0, 0))(h)
    c = L.GlobalAveragePooling3D()(h)
    d = L.GlobalMaxPooling3D()(h)
    out = L.Dense(4)(L.Concatenate()([c, d]))
    model = keras.Model(inp, out)
    x = _images((6, 10, 10, 2), n=3)
    _check(model, x)
    _gradient_is_autodiff(model, x)


@pytest.mark.parametrize("temporal", ["conv1d", "lstm"])
def test_signal_models(temporal):
    """A time series (T, C): Conv1D with BatchNormalization folded, 1D pooling, padding and
    cropping, or an LSTM over the steps, then pooling and a dense layer."""
    keras.utils.set_random_seed(7)
    inp = keras.Input((24, 3))
    h = L.ZeroPadding1D(1)(inp)
    h = L.Conv1D(6, 5, use_bias=False)(h)
    h = L.BatchNormalization(moving_mean_initializer="random_normal",
                             beta_initializer="random_normal")(h)
    h = L.ReLU()(h)
    h = L.Concatenate()([L.MaxPooling1D(2)(h), L.AveragePooling1D(2)(h)])
    h = L.Cropping1D((1, 0))(h)
    if temporal == "conv1d":
        h = L.GlobalAveragePooling1D()(L.Conv1D(8, 3, activation="relu")(h))
    else:
        h = L.LSTM(6)(h)
    model = keras.Model(inp, L.Dense(3)(h))
    x = _images((24, 3), n=3)
    _check(model, x, conserve=temporal == "conv1d")   # an LSTM's gates take no relevance
    _gradient_is_autodiff(model, x)


def _frame_cnn():
    """A 2D CNN applied to every frame of a clip: a nested model inside TimeDistributed."""
    frame = keras.Input((10, 10, 3))
    h = L.Conv2D(5, 3, activation="relu", name="frame_conv")(frame)
    h = L.MaxPooling2D(2)(h)
    return keras.Model(frame, L.Flatten()(h), name="frame_cnn")


@pytest.mark.parametrize("temporal", ["conv1d", "gru"])
def test_frame_wise_models(temporal):
    """TimeDistributed over layers and over a nested model, then a model of the frames'
    features over time; a convolution and a BatchNormalization in consecutive
    TimeDistributed layers fold into one."""
    keras.utils.set_random_seed(6)
    inp = keras.Input((5, 10, 10, 2))
    h = L.TimeDistributed(L.Conv2D(3, 1, use_bias=False, name="proj"), name="td_conv")(inp)
    h = L.TimeDistributed(L.BatchNormalization(moving_mean_initializer="random_normal",
                                               beta_initializer="random_normal", name="bn"),
                           name="td_bn")(h)
    h = L.TimeDistributed(_frame_cnn(), name="td_cnn")(h)
    h = L.TimeDistributed(L.Dense(6, activation="relu"), name="td_dense")(h)
    if temporal == "conv1d":
        h = L.GlobalAveragePooling1D()(L.Conv1D(6, 3, activation="relu")(h))
    else:
        h = L.GRU(6)(h)
    model = keras.Model(inp, L.Dense(3)(h))
    x = _images((5, 10, 10, 2), n=3)
    _check(model, x, conserve=temporal == "conv1d")   # a GRU's gates take no relevance
    _gradient_is_autodiff(model, x)
    from xai_cli.engine.canonizers import merge_batchnorm
    names = [op.name for op in merge_batchnorm(build_graph(model)).ops]
    assert "td_conv+td_bn" in names and "td_dense/activation" in names   # named as in summary()
    assert "frame_conv" in names   # a wrapped model's layers keep their names


def test_time_distributed_needs_a_fixed_number_of_frames_and_no_recurrence_inside():
    from xai_cli.errors import XaiError
    inp = keras.Input((None, 8, 8, 1))
    h = L.TimeDistributed(L.Conv2D(2, 3), name="frames")(inp)
    out = L.Dense(2)(L.GlobalAveragePooling3D()(h))
    with pytest.raises(XaiError, match=r"'frames' \(TimeDistributed\) takes any number of steps"):
        build_graph(keras.Model(inp, out))
    inp = keras.Input((4, 6, 3))
    h = L.TimeDistributed(L.LSTM(2, name="rows"), name="per_row")(inp)
    with pytest.raises(XaiError, match=r"'per_row' \(TimeDistributed\) wraps 'rows' \(LSTM\)"):
        build_graph(keras.Model(inp, L.Dense(2)(L.Flatten()(h))))


A = keras.applications
SLOW = pytest.mark.slow
ARCHITECTURES = [
    pytest.param(A.VGG16, 64, id="VGG16"),
    pytest.param(A.ResNet50, 64, id="ResNet50"),
    pytest.param(A.MobileNetV2, 64, id="MobileNetV2"),
    pytest.param(A.ResNet50V2, 64, id="ResNet50V2", marks=SLOW),
    pytest.param(A.MobileNet, 64, id="MobileNet", marks=SLOW),
    pytest.param(A.DenseNet121, 64, id="DenseNet121", marks=SLOW),
    pytest.param(A.InceptionV3, 75, id="InceptionV3", marks=SLOW),
    pytest.param(A.Xception, 71, id="Xception", marks=SLOW),
    pytest.param(A.EfficientNetB0, 64, id="EfficientNetB0", marks=SLOW),
    pytest.param(A.ConvNeXtTiny, 64, id="ConvNeXtTiny", marks=SLOW),
]


@pytest.mark.parametrize("architecture,size", ARCHITECTURES)
def test_keras_applications(architecture, size):
    keras.utils.set_random_seed(0)
    model = architecture(weights=None, input_shape=(size, size, 3), classes=10)
    relu_net = architecture not in (A.EfficientNetB0, A.ConvNeXtTiny)
    _check(model, _images((size, size, 3)), conserve=relu_net)


def test_layer_normalisation_is_linear_with_its_scale_held():
    """LRP through LayerNorm (Ali et al. 2022) against NumPy; gradients stay exact."""
    keras.utils.set_random_seed(4)
    inp = keras.Input((6,))
    h = L.Dense(5, use_bias=False, name="fc1")(inp)
    h = L.LayerNormalization(beta_initializer="zeros", gamma_initializer="random_normal")(h)
    out = L.Dense(3, use_bias=False, name="fc2")(h)
    model = keras.Model(inp, out)
    x = np.random.default_rng(0).normal(size=(4, 6)).astype(np.float32)
    config = "default: {rule: epsilon, epsilon: 1.0e-9}\n"
    W1, W2 = model.get_layer("fc1").get_weights()[0], model.get_layer("fc2").get_weights()[0]
    gamma = model.layers[2].get_weights()[0]
    a1 = x @ W1
    centred = a1 - a1.mean(1, keepdims=True)
    sigma = np.sqrt(a1.var(1, keepdims=True) + model.layers[2].epsilon)
    xhat = centred / sigma
    logits = (xhat * gamma) @ W2
    t = logits.argmax(1)
    R = np.eye(3)[t] * logits
    R = (xhat * gamma) * ((R / logits) @ W2.T)                     # fc2, epsilon -> 0
    R = xhat * ((R / (xhat * gamma)) * gamma)                      # the affine part
    s = R / xhat
    R = a1 * ((s - s.mean(1, keepdims=True)) / sigma)             # standardisation, sigma held
    R = x * ((R / a1) @ W1.T)                                      # fc1
    from xai_cli.engine import composites
    from xai_cli.engine.explainers import make_explainer
    from xai_cli.engine.methods import METHODS
    from xai_cli.io import preprocess
    graph = build_graph(model)
    ours = make_explainer(graph, METHODS["lrp"], composites.parse(config, "t"),
                          preprocess.resolve("unit")).explain(x, np.full(4, -1, np.int32))
    np.testing.assert_allclose(ours.relevance, R, rtol=1e-3, atol=1e-5 * np.abs(R).max())
    np.testing.assert_allclose(ours.relevance.sum(1), logits[np.arange(4), t], rtol=1e-3)
    reference, _ = autodiff_vjp(model, x, np.eye(graph.num_classes, dtype=np.float32)[[0] * 4])
    gradient = make_explainer(graph, METHODS["gradient"], None, None).explain(x, np.zeros(4, np.int32))
    np.testing.assert_allclose(gradient.relevance, reference, rtol=1e-4, atol=1e-6)


def test_unsupported_normalisation_axis_is_named():
    from xai_cli.errors import XaiError
    inp = keras.Input((8, 8, 3))
    h = L.LayerNormalization(axis=1, name="odd_norm")(L.Conv2D(4, 2)(inp))
    out = L.Dense(2)(L.GlobalAveragePooling2D()(h))
    with pytest.raises(XaiError, match=r"'odd_norm' \(LayerNormalization\) normalises axis \[1\]"):
        build_graph(keras.Model(inp, out))


def test_subclassed_models_are_refused_with_the_reason():
    from xai_cli.errors import XaiError

    class Net(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = L.Dense(2)

        def call(self, x):
            return self.dense(x)

    net = Net()
    net(np.zeros((1, 3), np.float32))
    with pytest.raises(XaiError, match="subclassed model \\(Net\\)"):
        build_graph(net)
