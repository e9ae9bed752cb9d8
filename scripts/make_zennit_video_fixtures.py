"""Zennit 0.5.1 (PyTorch) references for a Conv3D video model: tests/fixtures/oracle_video.

The video counterpart of the image oracle (tests/fixtures/oracle, made by the scripts in
its README): a small functional Keras model over clips (N, T, H, W, C) with fixed random
weights, and the relevance that Zennit computes on a float64 torch twin with the same
weights, for the same keys and Zennit settings as the image oracle.

Two steps, each on its own (neither imports xai, and xai does not import Zennit):

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

import os
import sys
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "oracle_video"
SHAPE = (8, 16, 16, 3)      # frames, height, width, channels
BATCH = 4
CLASSES = 10
BN_EPSILON = 1e-3           # Keras' BatchNormalization default
SEED = 7


# ---------------------------------------------------------------------------- Keras step

def build_keras():
    import keras
    from keras import layers as L
    x = keras.Input(SHAPE, name="clip")
    h = L.Conv3D(8, 3, padding="same", use_bias=False, name="conv1")(x)
    h = L.BatchNormalization(epsilon=BN_EPSILON, name="bn1")(h)
    h = L.ReLU(name="relu1")(h)
    h = L.MaxPooling3D(2, name="pool1")(h)
    h = L.Conv3D(16, 3, padding="same", activation="relu", name="conv2")(h)
    h = L.AveragePooling3D((1, 2, 2), name="pool2")(h)
    h = L.Conv3D(16, (3, 1, 1), activation="relu", name="conv3")(h)
    h = L.GlobalAveragePooling3D(name="gap")(h)
    y = L.Dense(CLASSES, name="logits")(h)
    return keras.Model(x, y, name="c3d")


def randomize(model, rng):
    """He-normal kernels, small non-zero biases, BatchNormalization far from the identity
    (as the image oracle's make_zoo.py)."""
    for layer in model.layers:
        new = []
        for w in layer.weights:
            name, shape = w.path.split("/")[-1], tuple(w.shape)
            if name == "kernel":
                v = rng.normal(0, np.sqrt(2.0 / np.prod(shape[:-1])), shape)
            elif name == "bias":
                v = rng.normal(0, 0.05, shape)
            elif name == "gamma":
                v = rng.uniform(0.5, 1.5, shape)
            elif name == "beta":
                v = rng.normal(0, 0.1, shape)
            elif name == "moving_mean":
                v = rng.normal(0, 0.2, shape)
            elif name == "moving_variance":
                v = rng.uniform(0.5, 2.0, shape)
            else:
                raise ValueError(w.path)
            new.append(v.astype("float32"))
        if new:
            layer.set_weights(new)


def keras_step():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    keras.utils.set_random_seed(SEED)
    rng = np.random.default_rng(SEED)
    model = build_keras()
    randomize(model, rng)
    inputs = rng.uniform(0, 1, (BATCH, *SHAPE)).astype("float32")
    OUT.mkdir(parents=True, exist_ok=True)
    model.save(OUT / "c3d.keras")
    np.save(OUT / "c3d_inputs.npy", inputs)
    logits = np.asarray(model.predict(inputs, verbose=0))
    np.savez(OUT / "c3d_weights.npz", keras_logits=logits,
             **{w.path.replace("/", "__"): np.asarray(w) for w in model.weights})
    print("keras", keras.__version__, "backend", keras.backend.backend(),
          "logits", logits.shape, "top1", logits.argmax(1).tolist())


# ---------------------------------------------------------------------------- Zennit step

KEYS = ["lrp_epsilon_1e-6", "lrp_epsilon_0.25", "lrp_zplus", "lrp_alpha1beta0", "lrp_alpha2beta1",
        "lrp_gamma_0.25", "epsilon_plus_flat", "epsilon_gamma_box", "wsquare_then_epsilon"]


def build_torch(weights, fold_batchnorm=True):
    """The torch twin in float64. With ``fold_batchnorm`` BatchNormalization is merged into
    conv1 (what Zennit's merge-batchnorm canonizer means); otherwise it is a BatchNorm3d."""
    import torch
    from torch import nn

    def tensor(key):
        return torch.tensor(weights[key].astype("float64"))

    def conv(name, padding):
        kernel = tensor(f"{name}__kernel")                  # kt kh kw in out
        c = nn.Conv3d(kernel.shape[3], kernel.shape[4], tuple(kernel.shape[:3]), padding=padding)
        c.weight.data = kernel.permute(4, 3, 0, 1, 2).contiguous()
        key = f"{name}__bias"
        c.bias.data = tensor(key) if key in weights else torch.zeros(kernel.shape[4])
        return c

    gamma, beta = tensor("bn1__gamma"), tensor("bn1__beta")
    mean, var = tensor("bn1__moving_mean"), tensor("bn1__moving_variance")
    conv1 = conv("conv1", 1)
    if fold_batchnorm:
        scale = gamma / torch.sqrt(var + BN_EPSILON)
        conv1.weight.data = conv1.weight.data * scale[:, None, None, None, None]
        conv1.bias.data = (conv1.bias.data - mean) * scale + beta
        first = [conv1]
    else:
        bn = nn.BatchNorm3d(len(gamma), eps=BN_EPSILON)
        bn.weight.data, bn.bias.data, bn.running_mean.data, bn.running_var.data = gamma, beta, mean, var
        first = [conv1, bn]
    dense = nn.Linear(*weights["logits__kernel"].shape)
    dense.weight.data = tensor("logits__kernel").T.contiguous()
    dense.bias.data = tensor("logits__bias")
    return nn.Sequential(
        *first, nn.ReLU(), nn.MaxPool3d(2),
        conv("conv2", 1), nn.ReLU(), nn.AvgPool3d((1, 2, 2)),
        conv("conv3", 0), nn.ReLU(),
        nn.AdaptiveAvgPool3d(1), nn.Flatten(), dense).eval()


def zennit_without_torchvision():
    """Makes ``zennit.composites`` and ``zennit.rules`` importable without torchvision:
    zennit/__init__.py imports zennit.torchvision (ResNet and VGG canonizers, not used
    here), which needs torchvision; a bare package module skips that __init__."""
    import importlib.util
    import types
    spec = importlib.util.find_spec("zennit")
    if spec is None:
        raise SystemExit("zennit is not importable: put zennit 0.5.1 on PYTHONPATH (see the docstring)")
    package = types.ModuleType("zennit")
    package.__path__ = list(spec.submodule_search_locations)
    sys.modules.setdefault("zennit", package)


def composites():
    """Zennit settings per key, exactly as the image oracle's zennit_refs.py."""
    import torch
    from zennit.composites import LayerMapComposite, SpecialFirstLayerMapComposite, layer_map_base
    from zennit.rules import AlphaBeta, Epsilon, Flat, Gamma, WSquare, ZBox, ZPlus
    from zennit.types import Convolution

    linear = (Convolution, torch.nn.Linear)

    def everywhere(rule):
        return LayerMapComposite(layer_map=[*layer_map_base(), (linear, rule)])

    def first_then(first, conv_rule, dense_rule):
        return SpecialFirstLayerMapComposite(
            layer_map=[*layer_map_base(), (Convolution, conv_rule), (torch.nn.Linear, dense_rule)],
            first_map=[(linear, first)])

    return {
        "lrp_epsilon_1e-6": lambda: everywhere(Epsilon(1e-6)),
        "lrp_epsilon_0.25": lambda: everywhere(Epsilon(0.25)),
        "lrp_zplus": lambda: everywhere(ZPlus()),
        "lrp_alpha1beta0": lambda: everywhere(AlphaBeta(1.0, 0.0)),
        "lrp_alpha2beta1": lambda: everywhere(AlphaBeta(2.0, 1.0)),
        "lrp_gamma_0.25": lambda: everywhere(Gamma(0.25)),
        "epsilon_plus_flat": lambda: first_then(Flat(), ZPlus(), Epsilon(1e-6)),
        "epsilon_gamma_box": lambda: first_then(ZBox(0.0, 1.0), Gamma(0.25), Epsilon(1e-6)),
        "wsquare_then_epsilon": lambda: first_then(WSquare(), Epsilon(1e-6), Epsilon(1e-6)),
    }


def attribute(model, x, targets, composite=None):
    """Gradient of the target logit (no composite), or LRP from one-hot times the logit."""
    import torch
    x = x.clone().requires_grad_(True)
    if composite is None:
        out = model(x)
        (g,) = torch.autograd.grad(out, x, torch.eye(out.shape[1], dtype=out.dtype)[targets])
        return g
    with composite.context(model) as hooked:
        out = hooked(x)
        seed = torch.eye(out.shape[1], dtype=out.dtype)[targets] * out
        (r,) = torch.autograd.grad(out, x, seed)
    return r


def zennit_step():
    from importlib.metadata import version

    import torch
    zennit_without_torchvision()
    torch.set_default_dtype(torch.float64)
    weights = dict(np.load(OUT / "c3d_weights.npz"))
    keras_logits = weights.pop("keras_logits").astype("float64")
    model = build_torch(weights)
    unfolded = build_torch(weights, fold_batchnorm=False)
    xk = np.load(OUT / "c3d_inputs.npy").astype("float64")
    x = torch.tensor(xk).permute(0, 4, 1, 2, 3).contiguous()       # N C T H W
    with torch.no_grad():
        logits = model(x)
        logits_bn = unfolded(x)

    def port(y):
        return float(np.abs(y.numpy() - keras_logits).max() / np.abs(keras_logits).max())

    print(f"port check, max |keras - torch| / max |logit|: folded {port(logits):.2e}, "
          f"BatchNorm3d {port(logits_bn):.2e}")
    assert port(logits) < 1e-5 and port(logits_bn) < 1e-5, "the torch twin is not the Keras model"
    targets = logits.argmax(1)
    assert (targets.numpy() == keras_logits.argmax(1)).all()

    def channels_last(r):
        return r.detach().permute(0, 2, 3, 4, 1).numpy()

    refs = {"logits": logits.numpy(), "targets": targets.numpy()}
    g = attribute(model, x, targets)
    refs["gradient"] = channels_last(g)
    refs["gradxinput"] = channels_last(g * x)
    for key, make in composites().items():
        refs[key] = channels_last(attribute(model, x, targets, make()))
    assert list(refs)[4:] == KEYS and all(refs[k].shape == xk.shape for k in KEYS)
    explained = logits[torch.arange(len(targets)), targets].numpy()
    conservation = {k: round(float(np.abs(refs[k].reshape(len(xk), -1).sum(1) / explained - 1).max()), 4)
                    for k in KEYS}
    # the maps in float32 (rounding 6e-8, far below the tests' 1e-3): half the size of float64
    store = {k: v.astype("float32") if v.shape == xk.shape else v for k, v in refs.items()}
    np.savez_compressed(OUT / "c3d_refs.npz", **store)
    print("torch", torch.__version__, "zennit", version("zennit"), "targets", targets.tolist())
    print("max |sum R / logit - 1|:", conservation)


if __name__ == "__main__":
    steps = {"keras": keras_step, "zennit": zennit_step}
    if len(sys.argv) != 2 or sys.argv[1] not in steps:
        raise SystemExit(f"usage: {sys.argv[0]} keras|zennit")
    steps[sys.argv[1]]()
