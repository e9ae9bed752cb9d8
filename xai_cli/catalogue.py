"""What the command line lists without importing Keras: methods and built-in configs.

``xai --help``, ``xai explain --help`` and ``xai rules --list`` read only this module, so
they answer at once; the implementations (`methods`, `composites`) take their names and
descriptions from here.
"""

from __future__ import annotations

from importlib import resources

import yaml

# the methods' parameter defaults (`engine.methods` declares the parameters with them)
IG_STEPS = 32
SMOOTHGRAD_SAMPLES = 32
SMOOTHGRAD_NOISE = 0.15
OCCLUSION_SHARE = 7       # occlusion's patch: a 7th of the longest side (32 px at 224), at half its stride
RISE_MASKS = 1000
RISE_CELLS = 7
SEGMENTS = 50             # LIME's and KernelSHAP's superpixels per image (SLIC)
LIME_SAMPLES = 1000       # as the lime package's images
LIME_WIDTH = 0.25
SHAP_SAMPLES = 1000

METHOD_DESCRIPTIONS = {
    "lrp": "layer-wise relevance propagation with the rule config (--rules)",
    "sa": "sensitivity analysis: squared gradient (its channel sum is shown)",
    "gradient": "gradient of the explained score",
    "gradxinput": "gradient times input",
    "integrated-gradients": f"integrated gradients from a zero baseline, {IG_STEPS} steps",
    "smoothgrad": f"mean gradient over {SMOOTHGRAD_SAMPLES} noisy copies (seeded)",
    "guided-backprop": "gradient with only positive signals through ReLUs",
    "deconvnet": "gradient with ReLU applied to the backward signal",
    "rollout": "attention rollout (Transformers): attention weights multiplied through the layers",
    "deeplift": "DeepLIFT, Rescale rule: the difference to a baseline (zero or blurred), propagated",
    "gradcam": "Grad-CAM: the last convolutional block's maps weighted by their mean gradient",
    "gradcam++": "Grad-CAM++: as Grad-CAM, with higher-order weights of the positive gradients",
    "occlusion": f"the score's drop when a patch (a {OCCLUSION_SHARE}th of the side) turns grey",
    "rise": f"{RISE_MASKS} random masks of {RISE_CELLS}x{RISE_CELLS} cells, weighted by the score (seeded)",
    "lime": f"a weighted linear fit of the score over {SEGMENTS} superpixels, {LIME_SAMPLES} "
            "random copies with some grey (seeded)",
    "kernelshap": f"Shapley values of {SEGMENTS} superpixels, fitted on {SHAP_SAMPLES} copies "
                  "(exact where that many cover every coalition; seeded)",
}
METHOD_NAMES = tuple(METHOD_DESCRIPTIONS)

# the methods by family, each with its cost for one input and its paper (xai explain --help)
METHOD_FAMILIES = {
    "propagation (one backward pass)": {
        "lrp": "Bach et al. 2015; Montavon et al. 2017, 2019",
        "deeplift": "Shrikumar et al. 2017 (+ one forward pass of the baseline)",
        "rollout": "Abnar & Zuidema 2020",
    },
    "gradient (one backward pass each)": {
        "sa": "Simonyan et al. 2014",
        "gradient": "Simonyan et al. 2014",
        "gradxinput": "Shrikumar et al. 2016",
        "integrated-gradients": f"Sundararajan et al. 2017 ({IG_STEPS} passes)",
        "smoothgrad": f"Smilkov et al. 2017 ({SMOOTHGRAD_SAMPLES} passes)",
        "guided-backprop": "Springenberg et al. 2015",
        "deconvnet": "Zeiler & Fergus 2014",
        "gradcam": "Selvaraju et al. 2017 (to the chosen layer)",
        "gradcam++": "Chattopadhay et al. 2018 (to the chosen layer)",
    },
    "perturbation (forward passes only)": {
        "occlusion": "Zeiler & Fergus 2014 (one pass per patch: 169 at 224x224)",
        "rise": f"Petsiuk et al. 2018 ({RISE_MASKS} passes)",
    },
    "surrogate (forward passes, then a linear fit)": {
        "lime": f"Ribeiro et al. 2016 ({LIME_SAMPLES} passes)",
        "kernelshap": f"Lundberg & Lee 2017 ({SHAP_SAMPLES} passes)",
    },
}
assert sorted(m for family in METHOD_FAMILIES.values() for m in family) == sorted(METHOD_NAMES)


def layer_params(layer: str | None) -> tuple[str, ...]:
    """``--layer NAME`` as the ``--param`` texts it stands for (Grad-CAM's and Grad-CAM++'s)."""
    return () if layer is None else tuple(f"{m}.layer={layer}" for m in ("gradcam", "gradcam++"))


def methods_by_family() -> str:
    """The methods grouped by family, with their costs and papers, for ``--help``."""
    lines = []
    for family, methods in METHOD_FAMILIES.items():
        lines.append(f"{family}:")
        lines += [f"  {name:21s}{paper}" for name, paper in methods.items()]
    return "\n".join(lines)

REPLACEMENTS = ("uniform", "mean", "blur", "road")   # what replaces a perturbed image region
WORD_REPLACEMENTS = ("zero", "unknown", "pad")    # what a deleted word becomes (text models)
CLIP_REPLACEMENTS = REPLACEMENTS[:3]               # a clip's space-time patch: ROAD is images'
SIGNAL_REPLACEMENTS = ("linear", "mean", "zero", "noise")   # what replaces a window of a signal



def builtin_configs() -> list[str]:
    """Names of the rule configs shipped in ``configs/``."""
    return sorted(p.name[:-5] for p in resources.files("xai_cli.configs").iterdir()
                  if p.name.endswith(".yaml"))


def builtin_config_text(name: str) -> str:
    return resources.files("xai_cli.configs").joinpath(f"{name}.yaml").read_text("utf-8")


def list_configs() -> str:
    """One line per built-in config: its name and description."""
    return "\n".join(f"{name:20s} {yaml.safe_load(builtin_config_text(name))['description']}"
                     for name in builtin_configs())
