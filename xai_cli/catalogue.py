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
}
METHOD_NAMES = tuple(METHOD_DESCRIPTIONS)

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
