"""Small Keras networks that tests in several folders build (random weights, seeded where values matter)."""

import keras
from keras import layers as L

from xai_cli.engine.graph import build_graph


def inverted_residual_net():
    """Stem conv + ReLU6, an inverted residual block (expand, depthwise, linear project,
    Add), a VGG-style conv + BN + ReLU + max pooling, and a dense head."""
    L = keras.layers
    x = inputs = keras.Input((12, 12, 3))
    x = L.Conv2D(8, 3, padding="same", name="stem")(x)
    x = L.ReLU(6.0, name="stem_relu6")(x)
    skip = x
    x = L.Conv2D(16, 1, name="expand", activation="relu6")(x)
    x = L.ZeroPadding2D(1, name="pad")(x)
    x = L.DepthwiseConv2D(3, name="dwconv")(x)
    x = L.BatchNormalization(name="dw_bn")(x)
    x = L.ReLU(6.0, name="dw_relu6")(x)
    x = L.Conv2D(8, 1, name="project")(x)
    x = L.BatchNormalization(name="project_bn")(x)
    x = L.Add(name="add")([skip, x])
    x = L.Conv2D(8, 3, padding="same", name="plain")(x)
    x = L.BatchNormalization(name="plain_bn")(x)
    x = L.Activation("relu", name="plain_relu")(x)
    x = L.MaxPooling2D(name="pool")(x)
    x = L.SeparableConv2D(4, 3, name="sep", activation="tanh")(x)
    x = L.GlobalAveragePooling2D(name="gap")(x)
    x = L.Dense(5, name="logits")(x)
    return build_graph(keras.Model(inputs, x))


def resnet_like():
    """Strided and 1x1 convolutions, BatchNorm and residual Adds, seeded."""
    keras.utils.set_random_seed(4)
    inp = keras.Input((21, 21, 3))
    h = L.ZeroPadding2D(2)(inp)
    h = L.Conv2D(16, 5, strides=2)(h)
    h = L.BatchNormalization(moving_mean_initializer="random_normal",
                             gamma_initializer="random_normal")(h)
    h = L.Activation("relu")(h)
    for filters, stride in ((16, 1), (24, 2)):
        short = L.Conv2D(filters * 2, 1, strides=stride)(h)
        b = L.Conv2D(filters, 1, strides=stride, activation="relu")(h)
        b = L.Conv2D(filters, 3, padding="same", activation="relu")(b)
        b = L.Conv2D(filters * 2, 1)(b)
        b = L.BatchNormalization(beta_initializer="random_normal")(b)
        h = L.Activation("relu")(L.Add()([short, b]))
    h = L.GlobalAveragePooling2D()(h)
    return keras.Model(inp, L.Dense(5, bias_initializer="random_normal")(h))
