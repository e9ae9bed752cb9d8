"""Reference Grad-CAM, Grad-CAM++, Occlusion and DeepLIFT maps from Captum and pytorch-grad-cam.

xai's own implementations of these methods are checked against the established toolboxes:
Captum 0.9 (LayerGradCam, LayerAttribution.interpolate, Occlusion, DeepLift) and the
``grad-cam`` package 1.5.x (jacobgil/pytorch-grad-cam: GradCAMPlusPlus). Both run on
PyTorch only, so a small Keras CNN with seeded weights is rebuilt as a PyTorch twin with the
very same weights (NHWC to NCHW), its logits asserted equal to Keras' (TensorFlow backend),
and the references computed on the twin, then returned to NHWC.

Model: Input (24, 24, 3) -> conv1 Conv2D(6, 3, relu) -> conv2 Conv2D(8, 3, relu) -> pool
AveragePooling2D(2) -> conv3 Conv2D(8, 3, relu) [8x8x8] -> gap GlobalAveragePooling2D ->
logits Dense(5), no softmax; every convolution 'valid'. All maps explain the target class's
pre-softmax logit.

The reference toolboxes are no dependency of xai: run this in a virtual environment of its
own, which holds Keras and TensorFlow too (one stage, nothing crosses environments):

    python3 -m venv /tmp/refenv
    /tmp/refenv/bin/pip install captum==0.9.0 grad-cam torch numpy scipy keras tensorflow
    /tmp/refenv/bin/python scripts/make_method_fixtures.py

Writes tests/fixtures/methods/: cnn.keras (the model), inputs.npy (4, 24, 24, 3),
references.npz (the maps, the blur baseline, logits and targets) and README.md (versions,
measured checks and the conventions each toolbox follows). Every convention stated in the
README is asserted here against an independent NumPy re-implementation.
"""

import os
import platform
import sys
from importlib.metadata import version
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")   # a framework other than the twin's
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import torch
import torch.nn.functional as F
from scipy.ndimage import gaussian_filter
from torch import nn

try:
    import cv2
    from captum.attr import DeepLift, LayerAttribution, LayerGradCam, Occlusion
    from pytorch_grad_cam import GradCAMPlusPlus
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
except ImportError as error:    # the project's venv has neither toolbox
    sys.exit(f"{error}: run this in the reference venv (see the module docstring)")

OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "methods"
SEED = 0
N, SIZE, CHANNELS, CLASSES = 4, 24, 3, 5
CONVS = (("conv1", 3, 6), ("conv2", 6, 8), ("conv3", 8, 8))   # name, in, out; all 3x3
BLOB_CENTRES = ((6, 7), (17, 6), (7, 17), (16, 15))
RUNNER_UP, THIRD = 2, 3          # these images explain their second / third-highest class
OCCLUSIONS = ((4, 4), (5, 3), (6, 2))   # (window p, stride s) in both spatial axes
OCCLUSION_BASELINE = 0.5
BLUR_SIGMA = 3.0
TOL_TWIN = 1e-5          # twin logits against Keras', absolute
TOL_REF = 1e-5           # a toolbox against its NumPy re-implementation, relative to max |map|
TOL_DELTA = 1e-4         # DeepLIFT summation-to-delta, absolute


# ------------------------------------------------------------------------------ model

def make_weights(rng) -> dict:
    """Keras layouts: conv kernels (kh, kw, in, out), the dense kernel (in, out). Glorot
    uniform kernels, small random biases, mostly positive so that few units are dead."""
    def glorot(shape, fan_in, fan_out):
        limit = np.sqrt(6.0 / (fan_in + fan_out))
        return rng.uniform(-limit, limit, shape).astype(np.float32)

    weights = {}
    for name, cin, cout in CONVS:
        weights[f"{name}/kernel"] = glorot((3, 3, cin, cout), 9 * cin, 9 * cout)
        weights[f"{name}/bias"] = rng.uniform(-0.02, 0.08, cout).astype(np.float32)
    weights["logits/kernel"] = glorot((8, CLASSES), 8, CLASSES)
    weights["logits/bias"] = rng.uniform(-0.05, 0.05, CLASSES).astype(np.float32)
    return weights


def build_keras(weights):
    import keras
    from keras import layers

    inputs = keras.Input((SIZE, SIZE, CHANNELS))
    x = layers.Conv2D(6, 3, padding="valid", activation="relu", name="conv1")(inputs)
    x = layers.Conv2D(8, 3, padding="valid", activation="relu", name="conv2")(x)
    x = layers.AveragePooling2D(2, name="pool")(x)
    x = layers.Conv2D(8, 3, padding="valid", activation="relu", name="conv3")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = layers.Dense(CLASSES, name="logits")(x)
    model = keras.Model(inputs, outputs, name="cnn")
    for name in ("conv1", "conv2", "conv3", "logits"):
        model.get_layer(name).set_weights([weights[f"{name}/kernel"], weights[f"{name}/bias"]])
    return model


class ConvReLU(nn.Sequential):
    """Keras' Conv2D(activation='relu'): the block's output is the post-ReLU tensor, as the
    Keras layer's is, so hooks on the block (Captum, pytorch-grad-cam) see what Keras shows."""

    def __init__(self, cin, cout):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3)
        self.relu = nn.ReLU()       # a module of its own: Captum's DeepLift hooks nn.ReLU


class TwinCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = ConvReLU(3, 6)
        self.conv2 = ConvReLU(6, 8)
        self.pool = nn.AvgPool2d(2)
        self.conv3 = ConvReLU(8, 8)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.logits = nn.Linear(8, CLASSES)

    def forward(self, x):
        x = self.conv3(self.pool(self.conv2(self.conv1(x))))
        return self.logits(self.gap(x).flatten(1))


def build_twin(weights) -> TwinCNN:
    twin = TwinCNN().eval()
    with torch.no_grad():
        for name, _, _ in CONVS:
            conv = getattr(twin, name).conv
            conv.weight.copy_(torch.from_numpy(weights[f"{name}/kernel"].transpose(3, 2, 0, 1)))
            conv.bias.copy_(torch.from_numpy(weights[f"{name}/bias"]))
        twin.logits.weight.copy_(torch.from_numpy(weights["logits/kernel"].T))
        twin.logits.bias.copy_(torch.from_numpy(weights["logits/bias"]))
    return twin


def alive_fractions(twin, x) -> dict:
    """Share of positive post-ReLU activations of each conv block on the inputs."""
    found, h = {}, x
    with torch.no_grad():
        for name in ("conv1", "conv2", "pool", "conv3"):
            h = getattr(twin, name)(h)
            if name != "pool":
                found[name] = float((h > 0).float().mean())
    return found


# ------------------------------------------------------------------------------ data

def make_inputs(rng) -> np.ndarray:
    """Blurred uniform noise (sigma 1 px) stretched to [0, 0.7] with a bright coloured
    Gaussian blob, at a different place in each image; clipped to [0, 1]."""
    noise = rng.uniform(0.0, 1.0, (N, SIZE, SIZE, CHANNELS))
    smooth = gaussian_filter(noise, sigma=(0, 1.0, 1.0, 0), mode="reflect")
    smooth = (smooth - smooth.min()) / (smooth.max() - smooth.min())
    rows, cols = np.mgrid[0:SIZE, 0:SIZE]
    images = []
    for image, (r, c) in zip(smooth, BLOB_CENTRES):
        blob = np.exp(-((rows - r) ** 2 + (cols - c) ** 2) / (2 * 2.5 ** 2))
        colour = rng.uniform(0.0, 0.8, CHANNELS)
        images.append(0.7 * image + blob[..., None] * colour)
    return np.clip(np.stack(images), 0.0, 1.0).astype(np.float32)


def pick_targets(logits) -> np.ndarray:
    """The top class of each image, but image RUNNER_UP explains its second-highest class
    and image THIRD its third-highest (its lowest classes' Grad-CAM maps are all zero)."""
    targets = logits.argmax(axis=1)
    targets[RUNNER_UP] = np.argsort(logits[RUNNER_UP])[-2]
    targets[THIRD] = np.argsort(logits[THIRD])[-3]
    return targets.astype(np.int64)


def blur_baseline(x) -> np.ndarray:
    """Each channel blurred on its own as xai's blur baseline does it: a Gaussian of sigma 3 px
    truncated at 3 sigma, borders reflected about the edge pixels (scipy's 'mirror')."""
    return gaussian_filter(x.astype(np.float64), sigma=(0, BLUR_SIGMA, BLUR_SIGMA, 0),
                           mode="mirror", truncate=3).astype(np.float32)


def nchw(x) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))


def nhwc(t) -> np.ndarray:
    return t.detach().numpy().transpose(0, 2, 3, 1).astype(np.float32)


def close(found, expected, tol=TOL_REF) -> float:
    """The largest difference relative to max |expected|; asserted below tol."""
    found, expected = np.asarray(found, np.float64), np.asarray(expected, np.float64)
    error = float(np.abs(found - expected).max() / max(np.abs(expected).max(), 1e-12))
    assert error <= tol, f"relative difference {error:.3g} > {tol}"
    return error


# ------------------------------------------------------------------------------ Grad-CAM

def conv3_activations_and_gradients(twin, x, targets):
    """conv3's post-ReLU output A (N, 8, 8, 8) and d logit[target] / dA, float64 numpy."""
    store = {}
    hook = twin.conv3.register_forward_hook(lambda m, i, o: store.update(a=o))
    try:
        logits = twin(x)
    finally:
        hook.remove()
    score = logits.gather(1, torch.from_numpy(targets)[:, None]).sum()
    (grad,) = torch.autograd.grad(score, store["a"])
    return store["a"].detach().double().numpy(), grad.double().numpy()


def bilinear_half_pixel(maps, size) -> np.ndarray:
    """Bilinear resize of (N, h, w) maps with half-pixel centres (align_corners=False):
    source coordinate (dst + 0.5) * in / out - 0.5, clamped below at 0, the upper neighbour
    clamped to the last row/column."""
    def axis(n_in, n_out):
        src = np.maximum((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0.0)
        low = np.minimum(np.floor(src).astype(int), n_in - 1)
        high = np.minimum(low + 1, n_in - 1)
        return low, high, src - low

    r0, r1, fr = axis(maps.shape[1], size)
    c0, c1, fc = axis(maps.shape[2], size)
    rows = maps[:, r0] * (1 - fr)[None, :, None] + maps[:, r1] * fr[None, :, None]
    return rows[:, :, c0] * (1 - fc) + rows[:, :, c1] * fc


def differs(found, other) -> bool:
    """Whether two maps differ by more than 1% of max |found| somewhere."""
    return float(np.abs(np.asarray(found) - np.asarray(other)).max()) > 1e-2 * float(np.abs(found).max())


def gradcam(twin, x, targets, acts, grads) -> dict:
    """Captum's LayerGradCam on conv3 (ReLU'd) and its bilinear upsampling to the input."""
    import keras

    layer = LayerGradCam(twin, twin.conv3).attribute(
        x, target=torch.from_numpy(targets), relu_attributions=True)
    up = LayerAttribution.interpolate(layer, (SIZE, SIZE), interpolate_mode="bilinear")
    # Grad-CAM: channel weights = spatial mean of the gradient, ReLU of the weighted sum
    expected = np.maximum((grads.mean(axis=(2, 3), keepdims=True) * acts).sum(axis=1), 0)
    checks = {"gradcam_layer_vs_numpy": close(layer[:, 0].detach().numpy(), expected),
              "gradcam_up_vs_half_pixel": close(up[:, 0].detach().numpy(),
                                                bilinear_half_pixel(expected, SIZE))}
    resized = keras.ops.image.resize(layer.detach().numpy().transpose(0, 2, 3, 1), (SIZE, SIZE),
                                     interpolation="bilinear")
    checks["gradcam_up_vs_keras_resize"] = close(np.asarray(resized)[..., 0], up[:, 0].detach().numpy())
    corners = F.interpolate(layer, (SIZE, SIZE), mode="bilinear", align_corners=True)
    assert differs(up.detach().numpy(), corners.detach().numpy()), "align_corners=True: same map"
    return {"gradcam_layer": layer[:, 0].detach().numpy().astype(np.float32),
            "gradcam": up[:, 0].detach().numpy().astype(np.float32), "checks": checks}


def gradcampp_weights(acts, grads) -> np.ndarray:
    """pytorch-grad-cam 1.5.7 GradCAMPlusPlus.get_cam_weights, written out: (N, K)."""
    g2, g3 = grads ** 2, grads ** 3
    sum_a = acts.sum(axis=(2, 3), keepdims=True)
    alpha = g2 / (2 * g2 + sum_a * g3 + 1e-6)
    alpha = np.where(grads != 0, alpha, 0.0)
    return (np.maximum(grads, 0) * alpha).sum(axis=(2, 3))


def gradcampp_layer(acts, grads) -> np.ndarray:
    """The weighted sum and ReLU of BaseCAM.get_cam_image and compute_cam_per_layer, at the
    layer's resolution, before any normalisation."""
    weights = gradcampp_weights(acts, grads)
    return np.maximum((weights[:, :, None, None] * acts).sum(axis=1), 0)


def package_scaling(cam) -> np.ndarray:
    """scale_cam_image as BaseCAM applies it to one target layer: per-image min-max (1e-7 in
    the denominator), cv2.resize to the input (INTER_LINEAR), then min-max once more
    (aggregate_multi_layers)."""
    def minmax(img):
        img = img - img.min()
        return img / (1e-7 + img.max())

    resized = [cv2.resize(np.float32(minmax(c)), (SIZE, SIZE)) for c in cam]
    return np.float32([minmax(np.maximum(r, 0)) for r in resized])


def gradcampp(twin, x, targets, acts, grads) -> dict:
    """pytorch-grad-cam's GradCAMPlusPlus on the conv3 block (post-ReLU), its normalised
    24x24 output, and the raw layer map by the package's formula, checked against it."""
    with GradCAMPlusPlus(model=twin, target_layers=[twin.conv3]) as cam:
        package = cam(input_tensor=x, targets=[ClassifierOutputTarget(int(t)) for t in targets])
        weights = cam.get_cam_weights(x, [twin.conv3], None, acts, grads)
    raw = gradcampp_layer(acts, grads)
    checks = {"gradcampp_weights_vs_package": close(gradcampp_weights(acts, grads), weights),
              "gradcampp_scaled_vs_package": close(package_scaling(raw), package),
              "cv2_linear_vs_half_pixel": close(
                  [cv2.resize(np.float32(r), (SIZE, SIZE)) for r in raw],
                  bilinear_half_pixel(raw, SIZE))}
    return {"gradcampp": np.float32(package), "gradcampp_layer": np.float32(raw), "checks": checks}


# ------------------------------------------------------------------------------ occlusion

def window_starts(p, s, clamp=False) -> list:
    """Captum: ceil((size - p) / s) + 1 windows per axis at 0, s, 2s, ...; the last one may
    overhang the edge and is cut there. clamp=True: the alternative of moving it back inside."""
    starts = [i * s for i in range(int(np.ceil((SIZE - p) / s)) + 1)]
    return sorted({min(v, SIZE - p) for v in starts}) if clamp else starts


def occlusion_numpy(twin, x, targets, p, s, clamp=False) -> np.ndarray:
    """Each element's attribution: sum over the windows that cover it of
    f(x) - f(x with the window set to the baseline), divided by their number. NHWC."""
    def score(batch):
        with torch.no_grad():
            out = twin(nchw(batch.astype(np.float32))).double().numpy()
        return out[np.arange(len(batch)), targets]

    base = score(x)
    total, count = np.zeros(x.shape), np.zeros(x.shape)
    for r in window_starts(p, s, clamp):
        for c in window_starts(p, s, clamp):
            occluded = x.copy()
            occluded[:, r:r + p, c:c + p, :] = OCCLUSION_BASELINE
            total[:, r:r + p, c:c + p, :] += (base - score(occluded))[:, None, None, None]
            count[:, r:r + p, c:c + p, :] += 1
    return total / count


def occlusion(twin, x, x_nhwc, targets) -> dict:
    """Captum's Occlusion, windows (3, p, p), strides (3, s, s), baseline 0.5."""
    result, checks = {}, {}
    for p, s in OCCLUSIONS:
        attr = Occlusion(twin).attribute(x, sliding_window_shapes=(3, p, p), strides=(3, s, s),
                                         baselines=OCCLUSION_BASELINE, target=torch.from_numpy(targets))
        key = f"occlusion_p{p}_s{s}"
        result[key] = nhwc(attr)
        checks[f"{key}_vs_numpy"] = close(result[key], occlusion_numpy(twin, x_nhwc, targets, p, s))
    clamped = occlusion_numpy(twin, x_nhwc, targets, 5, 3, clamp=True)
    assert differs(result["occlusion_p5_s3"], clamped), "a clamped last window gives the same map"
    result["checks"] = checks
    return result


# ------------------------------------------------------------------------------ DeepLIFT

def rescale_numpy(twin, x, baseline, targets) -> np.ndarray:
    """DeepLIFT Rescale by hand: each ReLU's multiplier (relu(z) - relu(z0)) / (z - z0),
    the plain gradient 1[z > 0] where |z - z0| < 1e-10; every other layer linear (its own
    gradient); attribution (x - x0) * multiplier chain. float64, NHWC."""
    def relu_rescaled(z, z0):
        dz = (z - z0).detach()
        slope = torch.where(dz.abs() < 1e-10, (z > 0).double(), (F.relu(z) - F.relu(z0)) / dz)
        return F.relu(z0) + slope.detach() * (z - z0)

    twin64 = build_twin_like(twin).double()
    xi = nchw(x).double().requires_grad_(True)
    x0 = nchw(baseline).double()
    h, h0 = xi, x0
    for name in ("conv1", "conv2", "pool", "conv3"):
        block = getattr(twin64, name)
        if name == "pool":
            h, h0 = block(h), block(h0)
            continue
        z0 = block.conv(h0).detach()
        h, h0 = relu_rescaled(block.conv(h), z0), F.relu(z0)
    out = twin64.logits(twin64.gap(h).flatten(1))
    score = out.gather(1, torch.from_numpy(targets)[:, None]).sum()
    (grad,) = torch.autograd.grad(score, xi)
    return nhwc((xi - x0) * grad)


def build_twin_like(twin) -> TwinCNN:
    copy = TwinCNN().eval()
    copy.load_state_dict(twin.state_dict())
    return copy


def deeplift(twin, x_nhwc, targets, baseline, key) -> dict:
    """Captum's DeepLift (Rescale, multiply_by_inputs=True) with its convergence delta."""
    attr, delta = DeepLift(twin, multiply_by_inputs=True).attribute(
        nchw(x_nhwc), baselines=nchw(baseline), target=torch.from_numpy(targets),
        return_convergence_delta=True)
    found = nhwc(attr)
    delta = delta.detach().numpy().astype(np.float32)
    assert np.abs(delta).max() < TOL_DELTA, f"{key}: summation-to-delta off by {delta}"
    checks = {f"{key}_vs_numpy": close(found, rescale_numpy(twin, x_nhwc, baseline, targets)),
              f"{key}_max_abs_delta": float(np.abs(delta).max())}
    return {key: found, f"{key}_delta": delta, "checks": checks}


# ------------------------------------------------------------------------------ README

README = """\
# Reference Grad-CAM, Grad-CAM++, Occlusion and DeepLIFT maps (Captum, pytorch-grad-cam)

Made by `scripts/make_method_fixtures.py` in a virtual environment of its own (the reference
toolboxes are no dependency of xai):

    python3 -m venv /tmp/refenv
    /tmp/refenv/bin/pip install captum==0.9.0 grad-cam torch numpy scipy keras tensorflow
    /tmp/refenv/bin/python scripts/make_method_fixtures.py

Versions used: {versions}.
The Keras logits come from the TensorFlow backend; every reference is computed on a PyTorch
twin with the same weights (float32, CPU).

## Files
- `cnn.keras`: Input (24, 24, 3) -> `conv1` Conv2D(6, 3, relu) -> `conv2` Conv2D(8, 3, relu)
  -> `pool` AveragePooling2D(2) -> `conv3` Conv2D(8, 3, relu) [8x8x8] -> `gap`
  GlobalAveragePooling2D -> `logits` Dense(5), no softmax; all convolutions 'valid'.
  Weights from `numpy.random.default_rng({seed})`: Glorot-uniform kernels, biases uniform in
  [-0.02, 0.08] (dense: [-0.05, 0.05]). Positive post-ReLU activations on the inputs: {alive}.
- `inputs.npy`: (4, 24, 24, 3) float32 in [0, 1]: uniform noise blurred (sigma 1 px) and
  stretched to [0, 0.7], plus a coloured Gaussian blob (sigma 2.5 px) centred at (row, col)
  {blobs}.
- `references.npz` (float32, NHWC; spatial maps (4, H, W)):

| key | shape | what |
|---|---|---|
| logits | (4, 5) | Keras' logits on the inputs |
| targets | (4,) int64 | explained class: {targets}; argmax, but image {runner_up} explains its \
second-highest class and image {third} its third-highest |
| gradcam_layer | (4, 8, 8) | Captum `LayerGradCam(model, model.conv3)`, `relu_attributions=True` |
| gradcam | (4, 24, 24) | `LayerAttribution.interpolate(gradcam_layer, (24, 24), \
interpolate_mode='bilinear')` |
| gradcampp | (4, 24, 24) | pytorch-grad-cam `GradCAMPlusPlus(target_layers=[conv3])`, \
`ClassifierOutputTarget(t)`: its own normalised, resized output |
| gradcampp_layer | (4, 8, 8) | the same map raw: no normalisation, layer resolution |
| occlusion_p4_s4, occlusion_p5_s3, occlusion_p6_s2 | (4, 24, 24, 3) | Captum `Occlusion`, \
`sliding_window_shapes=(3, p, p)`, `strides=(3, s, s)`, `baselines=0.5` |
| blur_baseline | (4, 24, 24, 3) | the inputs blurred: scipy.ndimage.gaussian_filter, sigma 3 px \
per channel, mode 'mirror', truncate 3 (xai's blur) |
| deeplift_zero, deeplift_blur | (4, 24, 24, 3) | Captum `DeepLift` (Rescale), \
`multiply_by_inputs=True`, baseline 0 / `blur_baseline` |
| deeplift_zero_delta, deeplift_blur_delta | (4,) | Captum's convergence delta |

## Checks (asserted by the script)
- Twin logits against Keras': max |difference| {twin_diff:.2e}.
- Each convention below is re-implemented in NumPy/plain torch and compared with the
  toolbox (largest difference relative to the map's max |value|; the `*_max_abs_delta` lines
  are Captum's convergence deltas, absolute):
{checks}

## Conventions found
All maps explain the target's pre-softmax logit S = logits[target].

**Twin / target layer.** Keras fuses the ReLU into `conv3`, so the Keras layer's output is
post-ReLU. In the twin `conv3` is a block `Sequential(conv=Conv2d, relu=ReLU)` and both Captum
(`LayerGradCam(model, model.conv3)`) and pytorch-grad-cam (`target_layers=[model.conv3]`) hook
that block, i.e. they see the post-ReLU activations A and dS/dA (hooking `conv3.relu` is the
same; hooking the bare Conv2d would give pre-activation values, which is not Keras' layer).
Here dS/dA is spatially constant: W_dense[k, t] / 64.

**Grad-CAM (Captum).** weights alpha_k = mean over the 8x8 positions of dS/dA_k; map =
ReLU(sum_k alpha_k A_k) (`relu_attributions=True`), no normalisation.
`LayerAttribution.interpolate` is `torch.nn.functional.interpolate(attr, (24, 24),
mode='bilinear')` with align_corners left at None, i.e. **align_corners=False** (half-pixel
centres): source coordinate (dst + 0.5) * 8 / 24 - 0.5, clamped below at 0, the upper neighbour
clamped to index 7, no antialiasing (Captum's own default mode would be 'nearest'). This
equals `keras.ops.image.resize(m, (24, 24), interpolation='bilinear')` (antialias=False, its
default; asserted on the TensorFlow backend, and by hand also on torch and JAX) and cv2's
INTER_LINEAR (asserted); align_corners=True differs (asserted).

**Grad-CAM++ (pytorch-grad-cam {gradcam_version}, `grad_cam_plusplus.py`).** With G = dS/dA
(the raw logit's first-order gradient: the package takes no exp(S) and no second/third
derivatives, only powers of G, as in eq. 19 of arXiv 1710.11063):

    alpha_kij = G^2 / (2 G^2 + (sum_ij A_kij) * G^3 + 1e-6)
    alpha_kij = 0 where G == 0
    w_k       = sum_ij ReLU(G_kij) * alpha_kij
    map       = ReLU(sum_k w_k A_k)                 -> gradcampp_layer

The eps 1e-6 is added to every denominator; sum_ij A_kij is the plain spatial sum of the
channel's (post-ReLU) activations. The package's output (`gradcampp`) is then
`scale_cam_image` twice: per image minmax(m) = (m - min m) / (max(m - min m) + 1e-7), then
cv2.resize to (24, 24) with INTER_LINEAR (half-pixel, as above); then, in
`aggregate_multi_layers`, ReLU, mean over the one target layer and the same minmax again. So
gradcampp = minmax(resize(minmax(gradcampp_layer))) (ReLU a no-op there); an all-zero raw map
stays all zero.

**Occlusion (Captum).** Per spatial axis the window of size p is placed at 0, s, 2s, ...,
ceil((24 - p) / s) * s: **ceil((24 - p) / s) + 1 positions**. When (24 - p) is not a multiple of
s the last window **overhangs** the edge and is cut there (not moved back inside): for p=5, s=3,
8 positions 0, 3, ..., 21, the last covering rows 21-23 only. (p=4, s=4: 6 positions, 0..20;
p=6, s=2: 10 positions, 0..18; both fit exactly.) The channel window (3, stride 3) covers all
channels at once, so the three channels of a pixel get the same value. The occluded elements
are set to the baseline 0.5. Attribution of an element = sum over the windows covering it of
(S(x) - S(x with that window occluded)), **divided by the number of windows covering it**
(Captum's `use_weights`). Checked against a NumPy loop for all three (p, s); for (5, 3) the
clamped alternative (last window moved back to start 19) differs and is ruled out.

**DeepLIFT (Captum `DeepLift`, Rescale).** Captum runs input and baseline as one batch and
overrides the gradient only of the nonlinear modules it knows (here each `nn.ReLU`; the
convolutions, the average pooling, the global average pooling and the final Dense are linear
and keep their ordinary gradients; the Dense's and the convolutions' biases cancel in the
differences). Each ReLU's multiplier is (ReLU(z) - ReLU(z0)) / (z - z0) with z, z0 its
pre-activations at the input and the baseline; where |z - z0| < 1e-10 (Captum's eps) it falls
back to the ordinary gradient at the input, 1[z > 0]. Attribution = (x - x0) * (chained
multipliers) (`multiply_by_inputs=True`). Convergence delta = sum(attribution) - (S(x) -
S(x0)), per image; here at most {delta_max:.2e} (zero baseline) and {delta_blur:.2e} (blur
baseline). The output is the target logit; no softmax is involved.
"""


def versions() -> str:
    names = ("captum", "grad-cam", "torch", "keras", "tensorflow", "numpy", "scipy",
             "opencv-python-headless")
    found = []
    for name in names:
        try:
            found.append(f"{name} {version(name)}")
        except Exception:        # opencv may come as another distribution
            continue
    return f"Python {platform.python_version()}, " + ", ".join(found)


def write_readme(facts):
    checks = "\n".join(f"  - {name}: {value:.2e}" for name, value in facts["checks"].items())
    text = README.format(checks=checks, **{k: v for k, v in facts.items() if k != "checks"})
    (OUT / "README.md").write_text(text)


# ------------------------------------------------------------------------------ main

def main():
    rng = np.random.default_rng(SEED)
    weights = make_weights(rng)
    x_nhwc = make_inputs(rng)
    keras_model = build_keras(weights)
    logits = np.asarray(keras_model.predict(x_nhwc, verbose=0), np.float32)
    targets = pick_targets(logits)

    twin = build_twin(weights)
    x = nchw(x_nhwc)
    with torch.no_grad():
        twin_diff = float(np.abs(twin(x).numpy() - logits).max())
    assert twin_diff < TOL_TWIN, f"twin logits differ from Keras' by {twin_diff}"
    alive = alive_fractions(twin, x)
    assert min(alive.values()) > 0.2, f"too many dead units: {alive}"

    acts, grads = conv3_activations_and_gradients(twin, x, targets)
    baseline = blur_baseline(x_nhwc)
    parts = [gradcam(twin, x, targets, acts, grads), gradcampp(twin, x, targets, acts, grads),
             occlusion(twin, x, x_nhwc, targets),
             deeplift(twin, x_nhwc, targets, np.zeros_like(x_nhwc), "deeplift_zero"),
             deeplift(twin, x_nhwc, targets, baseline, "deeplift_blur")]
    refs, checks = {"logits": logits, "targets": targets, "blur_baseline": baseline}, {}
    for part in parts:
        checks.update(part.pop("checks"))
        refs.update(part)
    for key in ("gradcam_layer", "gradcampp_layer"):
        assert (refs[key].reshape(N, -1).max(axis=1) > 0).all(), f"{key}: an all-zero map"

    OUT.mkdir(parents=True, exist_ok=True)
    keras_model.save(OUT / "cnn.keras")
    np.save(OUT / "inputs.npy", x_nhwc)
    np.savez_compressed(OUT / "references.npz", **refs)
    write_readme({
        "versions": versions(), "seed": SEED, "gradcam_version": version("grad-cam"),
        "alive": ", ".join(f"{k} {v:.0%}" for k, v in alive.items()),
        "blobs": ", ".join(map(str, BLOB_CENTRES)), "targets": targets.tolist(),
        "runner_up": RUNNER_UP, "third": THIRD, "twin_diff": twin_diff, "checks": checks,
        "delta_max": float(np.abs(refs["deeplift_zero_delta"]).max()),
        "delta_blur": float(np.abs(refs["deeplift_blur_delta"]).max())})
    for name, value in checks.items():
        print(f"{name}: {value:.2e}")
    print(f"twin logits max |diff| {twin_diff:.2e}; targets {targets.tolist()}; alive {alive}")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
