"""What the Zennit 0.5.1 fixture scripts share (make_zennit_video_fixtures.py for Conv3D,
make_zennit_signal_fixtures.py for Conv1D): the seeded weights, the two steps' common
work, the torch twin's layers, and the Zennit settings per key, which are those of the
image oracle (tests/fixtures/oracle, zennit_refs.py).

A script gives its output folder, its file stem, its Keras model (input channels last)
and its torch twin (float64, channels first); everything else is here, independent of
the number of spatial dimensions (1 for signals, 3 for clips). Neither step imports xai.
"""

import os
import sys

import numpy as np

BATCH = 4
BN_EPSILON = 1e-3           # Keras' BatchNormalization default
SEED = 7
KEYS = ["lrp_epsilon_1e-6", "lrp_epsilon_0.25", "lrp_zplus", "lrp_alpha1beta0", "lrp_alpha2beta1",
        "lrp_gamma_0.25", "epsilon_plus_flat", "epsilon_gamma_box", "wsquare_then_epsilon"]


# ---------------------------------------------------------------------------- Keras step

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


def keras_step(build, shape, out, stem, seed=SEED):
    """Builds ``build()`` with weights seeded by ``seed`` and writes <stem>.keras, the input batch
    <stem>_inputs.npy (BATCH samples of ``shape`` uniform in [0, 1), float32) and
    <stem>_weights.npz (every weight under its Keras path, and Keras' own logits for the
    port check, ``keras_logits``)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    model = build()
    randomize(model, rng)
    inputs = rng.uniform(0, 1, (BATCH, *shape)).astype("float32")
    out.mkdir(parents=True, exist_ok=True)
    model.save(out / f"{stem}.keras")
    np.save(out / f"{stem}_inputs.npy", inputs)
    logits = np.asarray(model.predict(inputs, verbose=0))
    np.savez(out / f"{stem}_weights.npz", keras_logits=logits,
             **{w.path.replace("/", "__"): np.asarray(w) for w in model.weights})
    print("keras", keras.__version__, "backend", keras.backend.backend(),
          "logits", logits.shape, "top1", logits.argmax(1).tolist())


# ---------------------------------------------------------------- the torch twin's layers

def _tensor(weights, key):
    import torch
    return torch.tensor(weights[key].astype("float64"))


def conv(weights, name, padding):
    """Keras Conv1D/2D/3D ``name`` as torch Conv1d/2d/3d: kernel (*k, in, out) -> (out, in, *k);
    zero bias where Keras has none."""
    import torch
    from torch import nn
    kernel = _tensor(weights, f"{name}__kernel")
    n = kernel.ndim
    c = getattr(nn, f"Conv{n - 2}d")(kernel.shape[-2], kernel.shape[-1], tuple(kernel.shape[:-2]),
                                     padding=padding)
    c.weight.data = kernel.permute(n - 1, n - 2, *range(n - 2)).contiguous()
    key = f"{name}__bias"
    c.bias.data = _tensor(weights, key) if key in weights else torch.zeros(kernel.shape[-1])
    return c


def conv_batchnorm(weights, conv_name, bn_name, padding, fold):
    """The convolution ``conv_name`` and the BatchNormalization ``bn_name`` after it: with
    ``fold`` one convolution with the BatchNormalization merged in (what Zennit's
    merge-batchnorm canonizer means), otherwise the convolution and a torch BatchNorm."""
    import torch
    from torch import nn
    c = conv(weights, conv_name, padding)
    gamma, beta = _tensor(weights, f"{bn_name}__gamma"), _tensor(weights, f"{bn_name}__beta")
    mean, var = _tensor(weights, f"{bn_name}__moving_mean"), _tensor(weights, f"{bn_name}__moving_variance")
    if fold:
        scale = gamma / torch.sqrt(var + BN_EPSILON)
        c.weight.data = c.weight.data * scale.reshape(-1, *[1] * (c.weight.ndim - 1))
        c.bias.data = (c.bias.data - mean) * scale + beta
        return [c]
    bn = getattr(nn, f"BatchNorm{c.weight.ndim - 2}d")(len(gamma), eps=BN_EPSILON)
    bn.weight.data, bn.bias.data, bn.running_mean.data, bn.running_var.data = gamma, beta, mean, var
    return [c, bn]


def dense(weights, name):
    """Keras Dense ``name`` as torch Linear (kernel transposed)."""
    from torch import nn
    d = nn.Linear(*weights[f"{name}__kernel"].shape)
    d.weight.data = _tensor(weights, f"{name}__kernel").T.contiguous()
    d.bias.data = _tensor(weights, f"{name}__bias")
    return d


# ---------------------------------------------------------------------------- Zennit step

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


def first_then(first, conv_rule, dense_rule):
    """Zennit's composite of one rule on the first linear layer, one on the other
    convolutions and one on the dense layers."""
    import torch
    from zennit.composites import SpecialFirstLayerMapComposite, layer_map_base
    from zennit.types import Convolution
    return SpecialFirstLayerMapComposite(
        layer_map=[*layer_map_base(), (Convolution, conv_rule), (torch.nn.Linear, dense_rule)],
        first_map=[((Convolution, torch.nn.Linear), first)])


def composites():
    """Zennit settings per key, exactly as the image oracle's zennit_refs.py."""
    import torch
    from zennit.composites import LayerMapComposite, layer_map_base
    from zennit.rules import AlphaBeta, Epsilon, Flat, Gamma, WSquare, ZBox, ZPlus
    from zennit.types import Convolution

    def everywhere(rule):
        return LayerMapComposite(layer_map=[*layer_map_base(), ((Convolution, torch.nn.Linear), rule)])

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


def zennit_step(build_torch, out, stem, extra=dict):
    """Rebuilds the model in torch from <stem>_weights.npz (``build_torch(weights,
    fold_batchnorm)``), checks the port against Keras' logits (folded and with a torch
    BatchNorm; max relative difference must be < 1e-5) and writes <stem>_refs.npz:
    ``logits``, ``targets`` (top-1 class) and one relevance array per key (with
    ``gradient`` and ``gradxinput``, and the keys of the model's own settings, ``extra()``:
    key -> composite maker), channels last, the shape of the inputs."""
    from importlib.metadata import version

    import torch
    zennit_without_torchvision()
    torch.set_default_dtype(torch.float64)
    weights = dict(np.load(out / f"{stem}_weights.npz"))
    keras_logits = weights.pop("keras_logits").astype("float64")
    model = build_torch(weights)
    unfolded = build_torch(weights, fold_batchnorm=False)
    xk = np.load(out / f"{stem}_inputs.npy").astype("float64")
    n = xk.ndim
    x = torch.tensor(xk).permute(0, n - 1, *range(1, n - 1)).contiguous()      # channels first
    with torch.no_grad():
        logits = model(x)
        logits_bn = unfolded(x)

    def port(y):
        return float(np.abs(y.numpy() - keras_logits).max() / np.abs(keras_logits).max())

    print(f"port check, max |keras - torch| / max |logit|: folded {port(logits):.2e}, "
          f"BatchNorm{n - 2}d {port(logits_bn):.2e}")
    assert port(logits) < 1e-5 and port(logits_bn) < 1e-5, "the torch twin is not the Keras model"
    targets = logits.argmax(1)
    assert (targets.numpy() == keras_logits.argmax(1)).all()

    def channels_last(r):
        return r.detach().permute(0, *range(2, n), 1).numpy()

    refs = {"logits": logits.numpy(), "targets": targets.numpy()}
    g = attribute(model, x, targets)
    refs["gradient"] = channels_last(g)
    refs["gradxinput"] = channels_last(g * x)
    settings = {**composites(), **extra()}
    for key, make in settings.items():
        refs[key] = channels_last(attribute(model, x, targets, make()))
    assert list(refs)[4:] == list(settings) and all(refs[k].shape == xk.shape for k in settings)
    explained = logits[torch.arange(len(targets)), targets].numpy()
    conservation = {k: round(float(np.abs(refs[k].reshape(len(xk), -1).sum(1) / explained - 1).max()), 4)
                    for k in settings}
    # the maps in float32 (rounding 6e-8, far below the tests' 1e-3): half the size of float64
    store = {k: v.astype("float32") if v.shape == xk.shape else v for k, v in refs.items()}
    np.savez_compressed(out / f"{stem}_refs.npz", **store)
    print("torch", torch.__version__, "zennit", version("zennit"), "targets", targets.tolist())
    print("max |sum R / logit - 1|:", conservation)


def main(steps):
    """Runs the step named on the command line (``keras`` or ``zennit``)."""
    if len(sys.argv) != 2 or sys.argv[1] not in steps:
        raise SystemExit(f"usage: {sys.argv[0]} {'|'.join(steps)}")
    steps[sys.argv[1]]()
