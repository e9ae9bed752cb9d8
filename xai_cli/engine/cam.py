"""Class activation maps: Grad-CAM (Selvaraju et al. 2017) and Grad-CAM++ (Chattopadhay
et al. 2018).

Both weigh a layer's feature maps by the gradient of the explained score and keep the
positive part: a class-discriminative map at the layer's resolution, not a relevance
of pixels. It is upsampled to the input as the authors do (bilinear, half-pixel
centres, PyTorch's ``interpolate`` and TensorFlow's ``resize``) and spread evenly over
the input's channels, so that the channel sum the pictures show is the map itself.
"""

from __future__ import annotations

from keras import ops

from ..errors import XaiError
from . import backends, grids
from .perturbing import spread

EPSILON = 1e-6   # Grad-CAM++'s denominator guard, as pytorch-grad-cam's


def layer(graph, values: dict, name: str) -> int:
    """The tensor Grad-CAM reads: the output of layer ``name``, or by default the last
    tensor with the input's rank and more than one position (the last convolutional
    block's output, before global pooling or flattening)."""
    rank = len(values[0].shape)
    if name:
        tensor = graph.tensor_of(name)
        shape = tuple(values[tensor].shape[1:])
        if len(shape) != rank - 1:
            raise XaiError(f"Grad-CAM needs a layer with a map like the input's, (positions..., "
                           f"channels); '{name}' gives {shape}")
        return tensor
    for op in reversed(graph.ops):
        shape = values[op.output].shape
        if len(shape) == rank and any(side > 1 for side in shape[1:-1]):
            return op.output
    raise XaiError(f"model '{graph.model.name}' has no layer with a spatial map for Grad-CAM; "
                   "name one with --param gradcam.layer=NAME")


def facts(e) -> dict:
    """The layer a class activation map is read at and its resolution, for the record: the
    map is the class's evidence at that layer, upsampled, not a relevance of pixels."""
    with backends.current().outside_trace():
        values = e.propagator.forward(ops.zeros((1, *e.graph.input_shape)))
    tensor = layer(e.graph, values, e.params["layer"])
    return {"layer": e.graph.producer(tensor).layer, "resolution": list(values[tensor].shape[1:-1])}


def layer_gradients(e, values: dict, targets):
    """The chosen layer's activations and the gradient of the target score at them."""
    tensor = layer(e.graph, values, e.params["layer"])
    return values[tensor], e.propagate(values, targets, scale_by_logit=False, until=tensor)


def gradcam_weights(a, g):
    """Grad-CAM: each channel's gradient averaged over the positions."""
    return ops.mean(g, axis=tuple(range(1, len(g.shape) - 1)), keepdims=True)


def gradcampp_weights(a, g):
    """Grad-CAM++: the positive gradients weighted by ``g^2 / (2 g^2 + sum(A) g^3)``, the
    closed form for an exponential of the score, summed over the positions."""
    positions = tuple(range(1, len(g.shape) - 1))
    g2 = ops.square(g)
    alpha = g2 / (2 * g2 + ops.sum(a, axis=positions, keepdims=True) * g2 * g + EPSILON)
    alpha = ops.where(g != 0, alpha, ops.zeros_like(alpha))
    return ops.sum(alpha * ops.relu(g), axis=positions, keepdims=True)


def class_activation_map(weights, e, x, values, targets):
    """``relu(sum_c w_c A_c)`` upsampled to ``x`` and spread over its channels."""
    a, g = layer_gradients(e, values, targets)
    cam = ops.relu(ops.sum(weights(a, g) * a, axis=-1))
    return spread(grids.along(cam, [grids.linear_resize(s, t)
                                    for s, t in zip(cam.shape[1:], x.shape[1:-1])]), x)


def gradcam(e, x, values, targets, index):
    return class_activation_map(gradcam_weights, e, x, values, targets)


def gradcampp(e, x, values, targets, index):
    return class_activation_map(gradcampp_weights, e, x, values, targets)
