"""Zennit 0.5.1 (PyTorch) references for a Conv1D signal model: tests/fixtures/oracle_signal.

The signal counterpart of the video oracle (make_zennit_video_fixtures.py, whose steps,
Zennit settings and checks it shares through zennit_fixtures.py): a small functional
Keras model over time series (N, T, C) with fixed random weights, and the relevance that
Zennit computes on a float64 torch twin with the same weights, for the same keys and
Zennit settings as the image oracle.

Two steps, each on its own (neither imports xai, and xai does not import Zennit):

- ``keras``: builds the model (seeded weights; non-zero biases; BatchNormalization with
  non-trivial moving statistics, gamma and beta) and writes conv1d.keras, the input batch
  conv1d_inputs.npy (4 signals uniform in [0, 1), float32) and conv1d_weights.npz (every
  weight under its Keras path, plus Keras' own logits for the port check, ``keras_logits``);
- ``zennit``: rebuilds the model in torch from conv1d_weights.npz (Keras Conv1D kernels
  (k, in, out) -> torch (out, in, k), signals (N, T, C) -> (N, C, T)), checks the port
  against Keras' logits (max relative difference, must be < 1e-5) and writes
  conv1d_refs.npz: ``logits``, ``targets`` (top-1 class) and one relevance array per key,
  channels last, the shape of the inputs.

Zennit's default layer types cover the 1D modules as they do the 3D ones (Convolution
includes Conv1d, AvgPool includes AvgPool1d and AdaptiveAvgPool1d, MaxPool1d is not
hooked), so the composites are those of the image oracle. BatchNormalization is folded
into conv1 by hand, as in the video oracle (Zennit's SequentialMergeBatchNorm keeps eps
in the BatchNorm it leaves behind).

    .venv/bin/python scripts/make_zennit_signal_fixtures.py keras
    pip download zennit==0.5.1 --no-deps -d /tmp/zdl
    .venv/bin/pip install --no-deps --target /tmp/zennit-lib /tmp/zdl/zennit-0.5.1-py3-none-any.whl
    PYTHONPATH=/tmp/zennit-lib .venv/bin/python scripts/make_zennit_signal_fixtures.py zennit
"""

from functools import partial
from pathlib import Path

import zennit_fixtures as zf

OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "oracle_signal"
STEM = "conv1d"
SHAPE = (64, 3)             # time steps, channels
CLASSES = 5
# weights and inputs; 13 rather than the video's 7 so that the batch's top-1 classes differ
# (0, 4, 0, 4, smallest top-1 margin 0.02): under 7 all four signals are class 3
SEED = 13


def build_keras():
    import keras
    from keras import layers as L
    x = keras.Input(SHAPE, name="signal")
    h = L.Conv1D(8, 5, padding="same", use_bias=False, name="conv1")(x)
    h = L.BatchNormalization(epsilon=zf.BN_EPSILON, name="bn1")(h)
    h = L.ReLU(name="relu1")(h)
    h = L.MaxPooling1D(2, name="pool1")(h)
    h = L.Conv1D(16, 3, padding="same", activation="relu", name="conv2")(h)
    h = L.AveragePooling1D(2, name="pool2")(h)
    h = L.Conv1D(16, 3, activation="relu", name="conv3")(h)
    h = L.GlobalAveragePooling1D(name="gap")(h)
    y = L.Dense(CLASSES, name="logits")(h)
    return keras.Model(x, y, name="conv1d")


def signal_composites():
    """The default rules for signal models (configs/signal-epsilon-alpha.yaml) as Zennit's
    composite: epsilon 1e-3 on the first layer and the dense layer, alpha1beta0 on the
    other convolutions."""
    from zennit.rules import AlphaBeta, Epsilon
    return {"signal_epsilon_alpha": lambda: zf.first_then(Epsilon(1e-3), AlphaBeta(1.0, 0.0), Epsilon(1e-3))}


def build_torch(weights, fold_batchnorm=True):
    """The torch twin in float64. With ``fold_batchnorm`` BatchNormalization is merged into
    conv1 (what Zennit's merge-batchnorm canonizer means); otherwise it is a BatchNorm1d."""
    from torch import nn
    return nn.Sequential(
        *zf.conv_batchnorm(weights, "conv1", "bn1", 2, fold_batchnorm), nn.ReLU(), nn.MaxPool1d(2),
        zf.conv(weights, "conv2", 1), nn.ReLU(), nn.AvgPool1d(2),
        zf.conv(weights, "conv3", 0), nn.ReLU(),
        nn.AdaptiveAvgPool1d(1), nn.Flatten(), zf.dense(weights, "logits")).eval()


if __name__ == "__main__":
    zf.main({"keras": partial(zf.keras_step, build_keras, SHAPE, OUT, STEM, SEED),
             "zennit": partial(zf.zennit_step, build_torch, OUT, STEM, signal_composites)})
