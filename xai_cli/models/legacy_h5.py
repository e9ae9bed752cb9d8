"""Loading the Keras 2 `.h5` files that Keras 3 refuses.

tf.keras 2.x wrote configs that Keras 3 rejects: `groups=1` on depthwise, separable and
transposed convolutions, unused kernel_* arguments on separable convolutions, arguments
SpatialDropout no longer takes, BatchNormalization's axis as a one-element list, layer
names with '/' (DenseNet); and it named a depthwise kernel differently. Keras 3's own
loader stops at the first of these, so MobileNetV2, EfficientNet, DenseNet and Xception
saved by TF 2.15 do not load. Here the config JSON is read from the file, rewritten by
the tables below and built by Keras 3 (in safe mode), and the weights are assigned by
layer and variable name, so that a value that matches no variable stops the load instead
of landing in the wrong place.

Nothing in the file is run: the config is checked before anything is built, and
Lambda layers or classes that are not Keras 3 layers (custom classes, Keras 2's
TFOpLambda) are refused by class and layer name.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import h5py
import keras
from keras.src.saving.serialization_lib import SafeModeScope

from ..errors import XaiError

# Keyword arguments Keras 2 writes that the Keras 3 class does not take, with the value
# that leaves the layer unchanged (any other value is refused), or ANY where Keras 2 itself
# ignored the argument (the kernel_* of separable convolutions, which use depthwise_* and
# pointwise_*; SpatialDropout's noise_shape) or it has no effect on outputs (trainable).
ANY = object()
_IGNORED_KERNEL = {"kernel_initializer": ANY, "kernel_regularizer": ANY, "kernel_constraint": ANY}
DROPPED = {
    **{cls: {"groups": 1} for cls in ("DepthwiseConv1D", "DepthwiseConv2D", "Conv1DTranspose",
                                      "Conv2DTranspose", "Conv3DTranspose")},
    **{cls: {"groups": 1, **_IGNORED_KERNEL} for cls in ("SeparableConv1D", "SeparableConv2D")},
    **{f"SpatialDropout{n}D": {"trainable": ANY, "noise_shape": ANY} for n in (1, 2, 3)},
}
# Arguments Keras 2 writes as a one-element list where Keras 3 takes the element: an
# axis, and the single input or output of a functional model (Keras 3 would return a
# one-element list from a nested model where Keras 2 returned the tensor).
UNWRAPPED = {"BatchNormalization": ("axis",),
             "Functional": ("input_layers", "output_layers"),
             "Model": ("input_layers", "output_layers")}
# Variables Keras 3 names differently: (class, Keras 2 name) -> Keras 3 name.
RENAMED_WEIGHTS = {("DepthwiseConv1D", "depthwise_kernel"): "kernel",
                   ("DepthwiseConv2D", "depthwise_kernel"): "kernel"}
# Layers that would run code from the file (or, for Keras 2's op wrappers, a function
# named in it), with why they are refused.
REFUSED = {
    "Lambda": "runs Python code stored in the file",
    "TFOpLambda": "calls a TensorFlow function named in the file (Keras 2 wraps tf.* calls "
                  "on Keras tensors in it; use Keras layers instead)",
    "SlicingOpLambda": "slices tensors by code stored in the file (Keras 2 wraps x[...] on "
                       "Keras tensors in it; use Cropping or Reshape layers instead)",
}
MODELS = {"Functional": keras.Model, "Model": keras.Model, "Sequential": keras.Sequential}


def load(path: str | Path) -> keras.Model | None:
    """The model in a Keras 2 `.h5` file, or None if the file holds no Keras 2 model.

    The model gets an attribute ``legacy_h5_rewrites``: what was changed, one line per kind
    of change with how often (its presence says this loader was used). Raises XaiError for
    a layer that cannot be loaded safely or faithfully.
    """
    try:
        with h5py.File(path, "r") as file:
            version = _text(file.attrs.get("keras_version", ""))
            if not version.startswith("2.") or "model_config" not in file.attrs:
                return None
            config = json.loads(_text(file.attrs["model_config"]))
            rewrites = Counter()
            _rewrite(config, set(), rewrites)
            model = _build(config)
            _load_weights(model, file["model_weights"], rewrites)
    except OSError:  # not an HDF5 file
        return None
    except XaiError as error:
        raise XaiError(f"Keras 2 model '{path}': {error}") from error
    model.legacy_h5_rewrites = tuple(f"{change} ({n}x)" for change, n in rewrites.items())
    return model


def _text(value) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _keras3_name(name: str) -> str:
    """Keras 3 forbids '/' in layer names; Keras 2's DenseNet used it ('conv1/conv')."""
    return name.replace("/", "_")


def _rewrite(entry: dict, siblings: set, rewrites: Counter):
    """Rewrite one layer or model config in place (a model's layers too), after refusing
    what must not be built; ``siblings`` are the names of the layers beside it."""
    _check(entry)
    cls, config = entry["class_name"], entry["config"]
    for argument, unused in DROPPED.get(cls, {}).items():
        if argument in config:
            if unused is not ANY and config[argument] != unused:
                raise XaiError(f"layer '{config['name']}' ({cls}) has {argument}="
                               f"{config[argument]}, which Keras 3 does not support")
            del config[argument]
            rewrites[f"{cls}: dropped {argument}"] += 1
    for argument in UNWRAPPED.get(cls, ()):
        value = config.get(argument)
        if isinstance(value, list) and len(value) == 1:
            config[argument] = value[0]
            rewrites[f"{cls}: {argument} taken out of its one-element list"] += 1
    new = _keras3_name(config["name"])
    if new != config["name"]:
        if new in siblings:
            raise XaiError(f"layer '{config['name']}' cannot be renamed to '{new}' for "
                           "Keras 3 (no '/' in names): that name is taken")
        rewrites["'/' in layer names replaced by '_'"] += 1
        config["name"] = new
    if "name" in entry:  # a functional model's layer
        entry["name"] = _keras3_name(entry["name"])
    _rename_references(entry.get("inbound_nodes", []))
    if cls in MODELS:
        names = {layer["config"]["name"] for layer in config["layers"]}
        for layer in config["layers"]:
            _rewrite(layer, names, rewrites)
        for key in ("input_layers", "output_layers"):
            _rename_references(config.get(key, []))


def _check(entry: dict):
    cls, name = entry["class_name"], entry["config"].get("name", "?")
    if cls in REFUSED:
        raise XaiError(f"layer '{name}' is a {cls} layer, which {REFUSED[cls]}; xai never "
                       "runs code from a model file. Rebuild the model without it")
    layer_class = MODELS.get(cls) or getattr(keras.layers, cls, None)
    built_in = isinstance(layer_class, type) and issubclass(layer_class, keras.layers.Layer) \
        and entry.get("registered_name") in (None, cls) \
        and str(entry.get("module", "keras")).startswith("keras")
    if not built_in:
        raise XaiError(f"layer '{name}' has class '{cls}', which is not a Keras 3 layer (a "
                       "custom class, or one Keras 3 removed); xai loads only built-in layers "
                       "and never runs code from a model file")


def _rename_references(nodes):
    """Keras 2 refers to a layer output as [layer_name, node_index, tensor_index(, kwargs)]."""
    if isinstance(nodes, list):
        if len(nodes) >= 3 and isinstance(nodes[0], str) and isinstance(nodes[1], int):
            nodes[0] = _keras3_name(nodes[0])
        else:
            for item in nodes:
                _rename_references(item)


def _build(config: dict) -> keras.Model:
    if config["class_name"] not in MODELS:
        raise XaiError(f"a {config['class_name']} is not a Sequential or functional model; "
                       "it cannot be rebuilt from its config")
    try:
        with SafeModeScope(True):
            return MODELS[config["class_name"]].from_config(config["config"])
    except Exception as exc:  # Keras raises TypeError or ValueError with the whole config
        reason = str(exc).rsplit("Exception encountered:", 1)[-1].strip().splitlines()[0]
        raise XaiError(f"Keras 3 cannot rebuild it: {reason}") from exc


def _leaves(layer):
    if isinstance(layer, keras.Model):
        for inner in layer.layers:
            yield from _leaves(inner)
    else:
        yield layer


def _load_weights(model: keras.Model, group: h5py.Group, rewrites: Counter):
    """Assign every saved variable to the Keras 3 variable of the same layer and name;
    Keras 2 keeps a layer's values in `model_weights/<layer>/` under the names listed in
    its `weight_names` attribute (`<layer>/<variable>:0`, `<inner layer>/...` in a nested
    model)."""
    expected = {layer.name: layer for layer in model.layers if layer.weights}
    for saved_name in group.attrs["layer_names"]:
        layer_group = group[_text(saved_name)]
        weight_names = [_text(n) for n in layer_group.attrs.get("weight_names", [])]
        if not weight_names:
            continue
        layer = expected.pop(_keras3_name(_text(saved_name)), None)
        if layer is None:
            raise XaiError(f"it has weights for a layer '{_text(saved_name)}' that its config "
                           "does not build")
        leaves = {leaf.name: leaf for leaf in _leaves(layer)}
        unset = {(leaf.name, v.name): v for leaf in leaves.values() for v in leaf.weights}
        for weight_name in weight_names:
            owner_name, _, variable_name = re.sub(r":\d+$", "", weight_name).rpartition("/")
            owner = leaves.get(_keras3_name(owner_name)) if isinstance(layer, keras.Model) \
                else layer
            key = (type(owner).__name__, variable_name)
            if key in RENAMED_WEIGHTS:
                variable_name = RENAMED_WEIGHTS[key]
                rewrites[f"{key[0]}: weight {key[1]} loaded as {variable_name}"] += 1
            variable = unset.pop((getattr(owner, "name", None), variable_name), None)
            value = layer_group[weight_name][()]
            if variable is None or tuple(variable.shape) != value.shape:
                raise XaiError(f"saved weight '{weight_name}' {value.shape} of layer "
                               f"'{_text(saved_name)}' matches no variable of the Keras 3 layer")
            variable.assign(value)
        if unset:
            raise XaiError(f"no saved value for {', '.join('/'.join(key) for key in unset)}")
        for leaf in leaves.values():
            if hasattr(leaf, "finalize_state"):  # Normalization: mean and variance from weights
                leaf.finalize_state()
    if expected:
        raise XaiError(f"no saved weights for {', '.join(expected)}")
