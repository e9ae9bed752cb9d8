"""Zennit 0.5.1 (PyTorch) references for a Conv3D video model: tests/fixtures/oracle_video.

The video counterpart of the image oracle (tests/fixtures/oracle, made by the scripts in
its README): a small functional Keras model over clips (N, T, H, W, C) with fixed random
weights, and the relevance that Zennit computes on a float64 torch twin with the same
weights, for the same keys and Zennit settings as the image oracle.

Two steps, each on its own (neither imports xai, and xai does not import Zennit; what they
share with the Conv1D signal fixtures is in zennit_fixtures.py):

- ``keras``: builds the model (seeded weights; non-zero biases; BatchNormalization with
  non-trivial moving statistics, gamma and beta) and writes c3d.keras, the input batch
  c3d_inputs.npy (4 clips uniform in [0, 1), float32) and c3d_weights.npz (every weight
  under its Keras path, plus Keras' own logits for the port check, ``keras_logits``);
- ``zennit``: rebuilds the model in torch from c3d_weights.npz (Keras Conv3D kernels
  (kt, kh, kw, in, out) -> torch (out, in, kt, kh, kw), clips (N, T, H, W, C) ->
  (N, C, T, H, W)), checks the port against Keras' logits (max relative difference,
  must be < 1e-5) and writes c3d_refs.npz: ``logits``, ``targets`` (top-1 class) and one
  relevance array per key, channels last, the shape of the inputs.

Zennit's default layer types already cover the 3D modules (zennit.types.Convolution
includes Conv3d, AvgPool includes AvgPool3d and AdaptiveAvgPool3d, MaxPool3d is not
hooked, so it passes relevance to the winner as the gradient does), so the composites are
those of the image oracle. BatchNormalization is folded into the preceding convolution
here, as the image oracle's port does, rather than by Zennit's SequentialMergeBatchNorm:
that canonizer leaves the BatchNorm module computing x / sqrt(1 + eps) instead of x
(it resets the running variance to 1 but keeps eps = 1e-3), which moves the logits 5.1e-4
(relative) away from Keras' on this model.

    .venv/bin/python scripts/make_zennit_video_fixtures.py keras
    pip download zennit==0.5.1 --no-deps -d /tmp/zdl
    .venv/bin/pip install --no-deps --target /tmp/zennit-lib /tmp/zdl/zennit-0.5.1-py3-none-any.whl
    PYTHONPATH=/tmp/zennit-lib .venv/bin/python scripts/make_zennit_video_fixtures.py zennit
"""

from functools import partial
from pathlib import Path

import zennit_fixtures as zf

OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "oracle_video"
STEM = "c3d"
SHAPE = (8, 16, 16, 3)      # frames, height, width, channels
CLASSES = 10


def build_keras():
    import keras
    from keras import layers as L
    x = keras.Input(SHAPE, name="clip")
    h = L.Conv3D(8, 3, padding="same", use_bias=False, name="conv1")(x)
    h = L.BatchNormalization(epsilon=zf.BN_EPSILON, name="bn1")(h)
    h = L.ReLU(name="relu1")(h)
    h = L.MaxPooling3D(2, name="pool1")(h)
    h = L.Conv3D(16, 3, padding="same", activation="relu", name="conv2")(h)
    h = L.AveragePooling3D((1, 2, 2), name="pool2")(h)
    h = L.Conv3D(16, (3, 1, 1), activation="relu", name="conv3")(h)
    h = L.GlobalAveragePooling3D(name="gap")(h)
    y = L.Dense(CLASSES, name="logits")(h)
    return keras.Model(x, y, name="c3d")


def build_torch(weights, fold_batchnorm=True):
    """The torch twin in float64. With ``fold_batchnorm`` BatchNormalization is merged into
    conv1 (what Zennit's merge-batchnorm canonizer means); otherwise it is a BatchNorm3d."""
    from torch import nn
    return nn.Sequential(
        *zf.conv_batchnorm(weights, "conv1", "bn1", 1, fold_batchnorm), nn.ReLU(), nn.MaxPool3d(2),
        zf.conv(weights, "conv2", 1), nn.ReLU(), nn.AvgPool3d((1, 2, 2)),
        zf.conv(weights, "conv3", 0), nn.ReLU(),
        nn.AdaptiveAvgPool3d(1), nn.Flatten(), zf.dense(weights, "logits")).eval()


if __name__ == "__main__":
    zf.main({"keras": partial(zf.keras_step, build_keras, SHAPE, OUT, STEM),
             "zennit": partial(zf.zennit_step, build_torch, OUT, STEM)})
