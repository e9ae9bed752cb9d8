"""Keras 2 `.h5` fixtures for xai's legacy loader, made by Keras 2 itself.

Keras 3 cannot read many `.h5` files that tf.keras 2.14/2.15 wrote (a MobileNetV2 fails
with "Unrecognized keyword arguments passed to DepthwiseConv2D: {'groups': 1}"), so
`xai_cli.legacy_h5` rewrites their configs. These fixtures are what it is tested on: they
must come from real Keras 2, not from Keras 3 imitating it. Run this script in its own
virtual environment (it does not import xai):

    python3 -m venv /work/keras2-venv
    /work/keras2-venv/bin/pip install tensorflow-cpu==2.15.1    # or 2.14.1
    /work/keras2-venv/bin/python scripts/make_keras2_fixtures.py            # small, committed
    /work/keras2-venv/bin/python scripts/make_keras2_fixtures.py --full DIR # full size

Every model has random weights (fixed seeds), 10 classes and `weights=None` (nothing is
downloaded). Biases, BatchNormalization scales and offsets and an un-adapted
Normalization's statistics are drawn too, and BatchNormalization's moving statistics are
those of a calibration batch, so that a weight loaded into the wrong place shows in the
outputs and the logits depend on the input. Each model is saved with
`model.save("<name>.h5")` (Keras 2's HDF5 format) beside `<name>.npz` with `x` (4 inputs
in the range the model expects), `preprocess` (the xai preset of that range: `unit` for
[0, 1], `raw` for [0, 255]), `outputs` (the model's outputs as they are: softmax
probabilities where the model ends in a softmax), `logits` (the pre-softmax scores, which
xai explains: Keras 2 runs the same model with its last layer's activation set to linear;
equal to `outputs` where there is no softmax) and `final_activation`.

Small models (`tests/fixtures/keras2/`): a Sequential CNN with BatchNormalization; a
functional model with Rescaling, Normalization, DepthwiseConv2D, SeparableConv2D,
Concatenate, Add and global pooling; reduced MobileNetV2, EfficientNet, DenseNet, ResNet
and ResNetV2 made by Keras 2's own application builders (so that their configs carry the
same quirks as the full networks), the reduced EfficientNet also nested in a Sequential;
an Xception-like model with Xception's layer pattern; and three models that must be
refused (only the `.h5`): with a Lambda layer, with a custom layer class, and with a
TensorFlow function called on a Keras tensor (Keras 2's TFOpLambda).
Full size (`--full DIR`, not committed): MobileNetV2, EfficientNetB0, DenseNet121,
ResNet50, Xception and the Sequential CNN, at the smallest input each accepts (224 for
the Sequential CNN).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import keras as keras_package
import numpy as np
import tensorflow as tf
from keras.src.applications import densenet, efficientnet, resnet

keras = tf.keras
layers = keras.layers
CLASSES = 10
SMALL_DIR = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "keras2"


def sequential_bn(size=32):
    return keras.Sequential([
        layers.InputLayer(input_shape=(size, size, 3)),
        layers.Normalization(mean=[0.4, 0.5, 0.6], variance=[0.05, 0.08, 0.1]),
        layers.Conv2D(16, 3, padding="same", use_bias=False,
                      kernel_regularizer=keras.regularizers.L2(1e-4),
                      kernel_constraint=keras.constraints.MaxNorm(3.0)),
        layers.BatchNormalization(),
        layers.ReLU(),
        layers.MaxPooling2D(),
        layers.SpatialDropout2D(0.1),
        layers.Conv2D(32, 3, padding="same", kernel_initializer="he_normal"),
        layers.BatchNormalization(),
        layers.Activation("relu"),
        layers.AveragePooling2D(),
        layers.Flatten(),
        layers.Dropout(0.3),
        layers.Dense(32, activation="relu", bias_regularizer=keras.regularizers.L1L2(1e-5, 1e-4)),
        layers.Dense(CLASSES, activation="softmax"),
    ], name="sequential_bn")


def functional_mix():
    """Rescaling with a per-channel list (as EfficientNet's ImageNet stem) and an adapted
    Normalization, then parallel depthwise / separable branches joined by Concatenate and Add."""
    inputs = keras.Input((24, 24, 3))
    x = layers.Rescaling([2.0, 1.5, 1.0], offset=-0.5)(inputs)
    norm = layers.Normalization(axis=-1)
    norm.adapt(np.random.default_rng(1).normal(0.3, 0.7, (64, 24, 24, 3)).astype("float32"))
    x = norm(x)
    x = layers.Conv2D(12, 3, padding="same", activation="relu", name="stem")(x)
    a = layers.DepthwiseConv2D(3, padding="same", depth_multiplier=2, use_bias=False)(x)
    a = layers.BatchNormalization()(a)
    a = layers.ReLU(6.0)(a)
    b = layers.SeparableConv2D(12, 3, padding="same", activation="relu")(x)
    x2 = layers.Concatenate()([a, b])
    x2 = layers.Conv2D(12, 1)(x2)
    x = layers.Add()([x, x2])
    x = layers.GlobalAveragePooling2D()(x)
    outputs = layers.Dense(CLASSES)(x)
    return keras.Model(inputs, outputs, name="functional_mix")


def xception_like(size=32):
    """Xception's pattern at a small width: a strided entry, one block with a strided
    1x1-conv residual and max pooling, one middle block with an identity residual."""
    axis = -1
    inputs = keras.Input((size, size, 3))
    x = layers.Conv2D(16, 3, strides=2, use_bias=False, name="block1_conv1")(inputs)
    x = layers.BatchNormalization(axis=axis, name="block1_conv1_bn")(x)
    x = layers.Activation("relu", name="block1_conv1_act")(x)
    residual = layers.Conv2D(32, 1, strides=2, padding="same", use_bias=False)(x)
    residual = layers.BatchNormalization(axis=axis)(residual)
    x = layers.SeparableConv2D(32, 3, padding="same", use_bias=False, name="block2_sepconv1")(x)
    x = layers.BatchNormalization(axis=axis, name="block2_sepconv1_bn")(x)
    x = layers.Activation("relu", name="block2_sepconv2_act")(x)
    x = layers.SeparableConv2D(32, 3, padding="same", use_bias=False, name="block2_sepconv2")(x)
    x = layers.BatchNormalization(axis=axis, name="block2_sepconv2_bn")(x)
    x = layers.MaxPooling2D(3, strides=2, padding="same", name="block2_pool")(x)
    x = layers.add([x, residual])
    residual = x
    for i in (1, 2):
        x = layers.Activation("relu", name=f"block3_sepconv{i}_act")(x)
        x = layers.SeparableConv2D(32, 3, padding="same", use_bias=False,
                                   name=f"block3_sepconv{i}")(x)
        x = layers.BatchNormalization(axis=axis, name=f"block3_sepconv{i}_bn")(x)
    x = layers.add([x, residual])
    x = layers.SeparableConv2D(64, 3, padding="same", use_bias=False, name="block14_sepconv1")(x)
    x = layers.BatchNormalization(axis=axis, name="block14_sepconv1_bn")(x)
    x = layers.Activation("relu", name="block14_sepconv1_act")(x)
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    outputs = layers.Dense(CLASSES, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name="xception_like")


def lambda_model():
    inputs = keras.Input((8, 8, 1))
    x = layers.Conv2D(2, 3, name="conv")(inputs)
    x = layers.Lambda(lambda t: t * 2.0, name="double")(x)
    outputs = layers.Dense(CLASSES)(layers.Flatten()(x))
    return keras.Model(inputs, outputs, name="with_lambda")


def tf_op_model():
    """Keras 2 wraps a TensorFlow function called on a Keras tensor in a TFOpLambda layer."""
    inputs = keras.Input((8, 8, 1))
    x = tf.nn.relu(layers.Conv2D(2, 3, name="conv")(inputs))
    outputs = layers.Dense(CLASSES)(layers.Flatten()(x))
    return keras.Model(inputs, outputs, name="with_tf_op")


@keras.saving.register_keras_serializable(package="fixtures")
class Scale(layers.Layer):
    """A user-defined layer: its code is not in the file, only its name."""

    def call(self, inputs):
        return inputs * 3.0


def custom_layer_model():
    inputs = keras.Input((8, 8, 1))
    x = Scale(name="triple")(layers.Conv2D(2, 3, name="conv")(inputs))
    outputs = layers.Dense(CLASSES)(layers.Flatten()(x))
    return keras.Model(inputs, outputs, name="with_custom_layer")


def efficientnet_small(size=32):
    return efficientnet.EfficientNet(0.1, 0.1, size, model_name="efficientnet_small",
                                     weights=None, input_shape=(size, size, 3), classes=CLASSES)


def densenet_small(size=32):
    return densenet.DenseNet([1, 2, 1, 1], weights=None, input_shape=(size, size, 3),
                             classes=CLASSES)


def nested_efficientnet(size=32):
    """The transfer-learning pattern: a whole application model as one layer of a Sequential."""
    base = efficientnet.EfficientNet(0.1, 0.1, size, model_name="base", include_top=False,
                                     weights=None, input_shape=(size, size, 3))
    return keras.Sequential([base, layers.GlobalAveragePooling2D(),
                             layers.Dense(CLASSES, activation="softmax")], name="nested")


def resnet_small(size=32):
    def stack_fn(x):
        x = resnet.stack1(x, 8, 1, stride1=1, name="conv2")
        x = resnet.stack1(x, 16, 2, name="conv3")
        return resnet.stack1(x, 32, 1, name="conv4")
    return resnet.ResNet(stack_fn, False, True, "resnet_small", weights=None,
                         input_shape=(size, size, 3), classes=CLASSES)


def resnet_v2_small(size=32):
    def stack_fn(x):
        x = resnet.stack2(x, 8, 2, name="conv2")
        return resnet.stack2(x, 16, 2, stride1=1, name="conv3")
    return resnet.ResNet(stack_fn, True, True, "resnet_v2_small", weights=None,
                         input_shape=(size, size, 3), classes=CLASSES)


def application(name, size):
    def build():
        return getattr(keras.applications, name)(weights=None, input_shape=(size, size, 3),
                                                  classes=CLASSES)
    return build


# name -> (builder, the xai preset whose input range the model expects: EfficientNet
# rescales [0, 255] itself, the others take inputs in [0, 1]).
SMALL = {
    "sequential_bn": (sequential_bn, "unit"),
    "functional_mix": (functional_mix, "unit"),
    "mobilenet_v2_035": (lambda: keras.applications.MobileNetV2(
        (32, 32, 3), alpha=0.35, weights=None, classes=CLASSES), "unit"),
    "efficientnet_small": (efficientnet_small, "raw"),
    "densenet_small": (densenet_small, "unit"),
    "resnet_small": (resnet_small, "unit"),
    "resnet_v2_small": (resnet_v2_small, "unit"),
    "xception_like": (xception_like, "unit"),
    "nested_efficientnet": (nested_efficientnet, "raw"),
}
REFUSED = {"lambda_layer": (lambda_model, "unit"), "custom_layer": (custom_layer_model, "unit"),
           "tf_op_layer": (tf_op_model, "unit")}
FULL = {
    "mobilenet_v2": (application("MobileNetV2", 32), "unit"),
    "efficientnet_b0": (application("EfficientNetB0", 32), "raw"),
    "densenet121": (application("DenseNet121", 32), "unit"),
    "resnet50": (application("ResNet50", 32), "unit"),
    "xception": (application("Xception", 71), "unit"),
    "sequential_bn_224": (lambda: sequential_bn(224), "unit"),
}
RANGES = {"unit": 1.0, "raw": 255.0}


def leaf_layers(model):
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from leaf_layers(layer)
        else:
            yield layer


def randomise(model, rng, calibration):
    """Draw every bias, BatchNormalization scale and offset and the statistics of an
    un-adapted Normalization (the initialisers leave them at 0 or 1, where a misplaced
    weight would not show), then set each BatchNormalization's moving statistics to those
    of its input on a calibration batch, so that activations neither vanish nor explode
    through the depth of a random network and the logits depend on the input."""
    for layer in leaf_layers(model):
        if isinstance(layer, layers.Normalization) and layer.is_adapted:
            continue
        values = []
        for weight in layer.weights:
            name = weight.name.split("/")[-1].split(":")[0]
            if name == "mean":  # Normalization of pixels in [0, 1]
                values.append(rng.uniform(0.4, 0.6, weight.shape))
            elif name == "variance":
                values.append(rng.uniform(0.04, 0.09, weight.shape))
            elif name in ("beta", "bias"):
                values.append(rng.normal(0.0, 0.5, weight.shape))
            elif name == "gamma":  # small against beta: a deep random network stays well
                values.append(rng.uniform(0.2, 0.5, weight.shape))  # conditioned (see images)
            else:
                values.append(weight.numpy())
        layer.set_weights(values)
        layer.finalize_state()  # Normalization computes its mean and variance from the weights
    batchnorms = [layer for layer in leaf_layers(model)
                  if isinstance(layer, layers.BatchNormalization)]
    for layer in batchnorms:
        layer.momentum = 0.0  # one training step copies the batch statistics
    model(calibration, training=True)
    for layer in batchnorms:
        layer.momentum = 0.99


def images(rng, n, shape, high):
    """Random images with structure at every scale: 4x4 blocks of random colour plus pixel
    noise. (I.i.d. pixel noise averages out over a deep layer's receptive field, so deep
    features would hardly vary between inputs, and BatchNormalization calibrated on them
    would subtract nearly equal numbers, amplifying rounding far beyond 1e-5.)"""
    height, width, channels = shape
    coarse = rng.uniform(0, 1, (n, 4, 4, channels))
    blocks = coarse[:, np.arange(height) * 4 // height][:, :, np.arange(width) * 4 // width]
    return ((0.75 * blocks + 0.25 * rng.uniform(0, 1, (n, *shape))) * high).astype("float32")


def record(model, out_dir: Path, name: str, x, preset: str):
    path = out_dir / f"{name}.h5"
    model.save(path)  # the .h5 suffix selects Keras 2's HDF5 format
    if name in REFUSED:
        print(f"{name}: {path.stat().st_size / 1e6:.2f} MB, to be refused")
        return
    outputs = model(x, training=False).numpy()
    last = model.layers[-1]
    final_activation = getattr(getattr(last, "activation", None), "__name__", "none")
    logits = outputs
    if final_activation == "softmax":
        last.activation = keras.activations.linear
        logits = model(x, training=False).numpy()
        last.activation = keras.activations.softmax
    np.savez(out_dir / f"{name}.npz", x=x, outputs=outputs, logits=logits,
             final_activation=final_activation, preprocess=preset)
    scale = np.abs(logits).max()
    top2 = np.sort(logits, axis=1)[:, -2:]
    print(f"{name}: {path.stat().st_size / 1e6:.2f} MB, {model.count_params()} parameters, "
          f"input {model.input_shape[1:]}, final activation {final_activation}, "
          f"max |logit| {scale:.3g}, spread over inputs {logits.std(0).max() / scale:.2e}, "
          f"top-2 margin {np.min(top2[:, 1] - top2[:, 0]) / scale:.2e}, "
          f"top-1 {logits.argmax(1).tolist()}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=SMALL_DIR, help="folder for the small models")
    parser.add_argument("--full", type=Path, metavar="DIR",
                        help="make the full-size models in DIR instead of the small ones")
    args = parser.parse_args()
    builders = FULL if args.full else {**SMALL, **REFUSED}
    out_dir = args.full or args.out
    out_dir.mkdir(parents=True, exist_ok=True)
    print(f"TensorFlow {tf.__version__}, Keras {keras_package.__version__}")
    for seed, (name, (build, preset)) in enumerate(builders.items()):
        keras.utils.set_random_seed(seed)
        model = build()
        rng = np.random.default_rng(seed)
        shape = model.input_shape[1:]
        calibration, x = (images(rng, n, shape, RANGES[preset]) for n in (32, 4))
        randomise(model, rng, calibration)
        record(model, out_dir, name, x, preset)


if __name__ == "__main__":
    main()
