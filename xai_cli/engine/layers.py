"""Keras layers as explanation-graph operations.

Every supported layer becomes one or more :class:`Op`: a forward function that can be
re-run with modified parameters, and a *kind* that tells the rules what the operation
is. Activations are split off Dense/Conv layers so that rules see pure linear maps.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field

import keras
from keras import ops

from ..errors import XaiError
from ..models import kmeans
from . import attention, backends, recurrent, transpose

LINEAR = "linear"          # z = f(x; kernel, bias), affine in x: the LRP rules apply
POOLING = "pooling"        # parameter-free linear map (average pooling, Add): z-rule split
ACTIVATION = "activation"  # element-wise non-linearity: relevance passes through
AFFINE = "affine"          # input rescaling (Rescaling, Normalization): relevance passes
STRUCTURAL = "structural"  # moves values around (max pooling, reshape, concat): gradient
GATE = "gate"              # element-wise product, first input the signal, others constant
BILINEAR = "bilinear"      # product of two tensors, linear in each (a @ b): uniform split
RECURRENT = "recurrent"    # one direction of a recurrent layer: the rules of recurrent.py
CONSTANT = "constant"      # depends on the input's shape only (position ids): no relevance
ATTENTION = "attention"    # scaled dot-product attention (q, k, v -> context): attention.py
NORMALIZATION = "normalization"  # LayerNormalization's standardisation: std held for LRP
DISTANCE = "distance"      # neuralized k-means' differences of squared distances: NEON's rule

Forward = Callable[[list, dict], object]   # tensors in, a tensor out


@dataclass(eq=False)
class Op:
    """One node of the explanation graph.

    ``forward(inputs, params)`` recomputes the output; rules call it with modified
    inputs and parameters.  ``inputs``/``output`` are tensor ids in the graph.
    ``layer`` is the Keras layer's name (rule configs match it); ``name`` tells apart
    the ops of one layer (``conv/activation``) and shows folded layers.
    ``linear_forward``, where set, is the op as a linear map around the current input
    (LayerNormalization with its scale held constant) for the LRP rules, while gradient
    methods differentiate ``forward``.
    ``input_vjp``, where set, is a LINEAR op's input VJP as the transposed map
    (:class:`~xai_cli.engine.transpose.Transpose`); it replaces the backend's autodiff,
    which is slower on TensorFlow's CPU kernels.
    ``cell``, for a RECURRENT op, describes the recurrent layer's direction;
    ``mechanism``, for an ATTENTION op, the attention layer's.
    ``keeps_nonnegative``: non-negative inputs give a non-negative output, so that rules
    may skip the terms of negative inputs downstream; false where a STRUCTURAL or
    POOLING op subtracts (Subtract, LayerNormalization's centring).
    """

    layer: str
    name: str
    layer_type: str
    kind: str
    forward: Forward
    inputs: list[int]
    output: int
    params: dict = field(default_factory=dict)
    activation: str | None = None
    linear_forward: Forward | None = None
    input_vjp: transpose.Transpose | None = None
    cell: recurrent.Cell | None = None
    keeps_nonnegative: bool = True
    mechanism: attention.Mechanism | None = None


def _per_step(forward: Forward, steps: int) -> Forward:
    """``forward`` on tensors ``(N, steps, ...)``, run on ``(N * steps, ...)``."""
    def run(xs, params):
        z = forward([ops.reshape(x, (-1, *x.shape[2:])) for x in xs], params)
        return ops.reshape(z, (-1, steps, *z.shape[1:]))
    return run


def _with_bias(linear: Callable) -> Forward:
    """``linear(x, kernel)`` plus the bias."""
    def forward(xs, params):
        z = linear(xs[0], params["kernel"])
        if "bias" in params:
            z = ops.add(z, params["bias"])
        return z
    return forward


def _dense(layer):
    def matmul(x, kernel):
        if len(x.shape) == 2:
            return ops.matmul(x, kernel)
        return ops.tensordot(x, kernel, axes=1)
    return matmul


def _conv(layer):
    padding = layer.padding
    pad = None
    if padding == "causal":
        pad = layer._compute_causal_padding()
        padding = "valid"

    def conv(x, kernel):
        if pad is not None:
            x = ops.pad(x, pad)
        return ops.conv(x, kernel, strides=list(layer.strides), padding=padding,
                              dilation_rate=layer.dilation_rate, data_format="channels_last")
    return conv


def _depthwise(layer):
    def conv(x, kernel):
        return ops.depthwise_conv(x, kernel, strides=layer.strides, padding=layer.padding,
                                        dilation_rate=layer.dilation_rate,
                                        data_format="channels_last")
    return conv


def _pointwise(x, kernel):
    return ops.conv(x, kernel, strides=1, padding="valid", data_format="channels_last")


def _call(layer, node=None) -> Forward:
    """Forward of a parameter-free layer: the layer itself, in inference mode.

    Merge layers take a list; bare operations recorded in a functional graph (``a + b``
    is a ``keras.ops`` Add node, ``x[:, 0]`` a GetItem) take the arguments of their call
    (``node``), tensors replaced by the graph's values.
    """
    def forward(xs, params):
        if not isinstance(layer, keras.layers.Layer):
            args, kwargs = node.arguments.fill_in({id(t): x for t, x in zip(node.input_tensors, xs)})
            return layer(*args, **kwargs)
        return layer(xs if len(xs) > 1 else xs[0])
    return forward


def _activation_name(fn) -> str:
    return getattr(fn, "__name__", type(fn).__name__)


class Builder:
    """Emits ops for layers, handing out tensor ids.

    A text model's Embedding (and the TextVectorization in front of it) emit no op: they
    are recorded in ``embedding`` and ``vectorizer`` as ``(layer, input id, output id)``
    and :mod:`~xai_cli.engine.graph` cuts them off, so that the graph's input is the
    embedding's output. Keras records the padding mask of ``mask_zero`` as a NotEqual
    node on the token ids, an input of the layers that read it (recurrent layers, average
    pooling): ``mask`` is its output id, ``mask_source`` its input's. ``nodes`` lists the
    layer calls, for :mod:`~xai_cli.engine.padding`; ``node`` is the Keras node of the
    layer call being converted. ``constant`` holds the tensors that depend on the input's
    shape only: what shape-only ops (OnesLike) make, and any layer or op of them, such as
    the position ids of a learned position embedding (``ops.cumsum(ops.ones_like(ids),
    1) - 1``) and the Embedding that looks them up.
    """

    def __init__(self):
        self.ops: list[Op] = []
        self.unsupported: list[str] = []
        self.embedding: tuple | None = None
        self.vectorizer: tuple | None = None
        self.mask: int | None = None
        self.mask_source: int | None = None
        self.nodes: list = []
        self.node = None
        self.constant: set[int] = set()
        self._next_id = 1  # id 0 is the model input

    def tensor(self) -> int:
        self._next_id += 1
        return self._next_id - 1

    def emit(self, layer, kind, forward, inputs, params=None, suffix="", activation=None,
             linear_forward=None, input_vjp=None, cell=None, keeps_nonnegative=True,
             mechanism=None) -> int:
        out = self.tensor()
        constant = backends.current().constant
        params = {k: constant(v) for k, v in (params or {}).items()}
        self.ops.append(Op(layer.name, layer.name + suffix, type(layer).__name__, kind, forward,
                           list(inputs), out, params, activation, linear_forward, input_vjp, cell,
                           keeps_nonnegative, mechanism))
        return out

    def per_step(self, layer, start: int, steps: int, named: bool) -> None:
        """Make the ops from ``start`` on, those of the layer inside the TimeDistributed
        ``layer``, take and give tensors with a time axis ``(N, steps, ...)``: each op folds
        the steps into the batch, runs as on a batch of its own, and unfolds them again.
        The graph's tensors keep one row per input, so that the rules' statistics of an
        input (a relative epsilon) are the clip's, and a convolution and its
        BatchNormalization meet to be folded into one. With ``named``, the ops take the
        TimeDistributed layer's name, the one a model summary shows (a wrapped model's
        layers keep theirs)."""
        for op in self.ops[start:]:
            if op.kind in (RECURRENT, ATTENTION, CONSTANT):
                raise XaiError(f"layer '{layer.name}' (TimeDistributed) wraps '{op.layer}' "
                               f"({op.layer_type}); xai explains TimeDistributed layers without "
                               "recurrent or attention layers inside")
            if named:
                op.name, op.layer = layer.name + op.name[len(op.layer):], layer.name
            op.forward = _per_step(op.forward, steps)
            if op.linear_forward is not None:
                op.linear_forward = _per_step(op.linear_forward, steps)
            op.input_vjp = None

    def add_layer(self, layer, inputs: list[int], node=None) -> int:
        """Emit the ops of one Keras layer; returns the output tensor id. ``node`` is the
        Keras node of the call (its arguments), for layers whose call takes options."""
        _check_layout(layer)
        self.node = node
        name = type(layer).__name__
        if name in _SHAPE_ONLY or (inputs and all(t in self.constant for t in inputs)):
            out = self.emit(layer, CONSTANT, _call(layer, node), inputs)
            self.constant.add(out)
            return out
        converter = _CONVERTERS.get(name)
        if converter is None:
            self.unsupported.append(f"'{layer.name}' ({name})")
            return self.tensor()
        out = converter(self, layer, inputs)
        activation = getattr(layer, "activation", None)
        if name not in _ACTIVATION_LAYERS and name not in recurrent.KINDS and activation is not None \
                and _activation_name(activation) != "linear":
            out = self.emit(layer, ACTIVATION, lambda xs, p, fn=activation: fn(xs[0]), [out],
                            suffix="/activation", activation=_activation_name(activation))
        return out


def _check_layout(layer):
    if getattr(layer, "data_format", "channels_last") != "channels_last":
        raise XaiError(f"layer '{layer.name}' ({type(layer).__name__}) uses data_format "
                       f"'{layer.data_format}'; only channels_last is supported")
    if type(layer).__name__ == "BatchNormalization" \
            and layer.axis not in (-1, _last_axis(layer)):
        raise XaiError(f"layer '{layer.name}' (BatchNormalization) normalises axis {layer.axis}; "
                       "only the channel axis (last) is supported")


def _last_axis(layer) -> int:
    """The index of the layer's last axis, the batch included. A layer inside a
    TimeDistributed was never called on a tensor of the model: its input spec knows."""
    try:
        return len(layer.output.shape) - 1
    except AttributeError:
        return getattr(layer.input_spec, "ndim", 0) - 1


def _conv_transpose(layer):
    """The transposed map of a Conv2D; a transposed convolution for fewer than 8
    input channels (first layers on images), where it beats a forward convolution with
    so few output channels; None (autodiff) for dilated, grouped and other ranks."""
    if len(layer.kernel_size) != 2 or layer.padding not in ("same", "valid") \
            or tuple(layer.dilation_rate) != (1, 1) or layer.groups != 1:
        return None
    if layer.kernel.shape[2] < 8:
        return transpose.conv2d_backprop(layer.kernel_size, layer.strides, layer.padding)
    return transpose.conv2d(layer.kernel_size, layer.strides, layer.padding)


def _linear(fn_factory, transpose_of=lambda layer: None):
    def convert(b: Builder, layer, inputs):
        params = {"kernel": layer.kernel}
        if getattr(layer, "use_bias", False):
            params["bias"] = layer.bias
        return b.emit(layer, LINEAR, _with_bias(fn_factory(layer)), inputs, params,
                      input_vjp=transpose_of(layer))
    return convert


def _separable(b: Builder, layer, inputs):
    mid = b.emit(layer, LINEAR, _with_bias(_depthwise(layer)), inputs,
                 {"kernel": layer.depthwise_kernel}, suffix="/depthwise")
    params = {"kernel": layer.pointwise_kernel}
    if layer.use_bias:
        params["bias"] = layer.bias
    return b.emit(layer, LINEAR, _with_bias(_pointwise), [mid], params, suffix="/pointwise",
                  input_vjp=transpose.conv2d((1, 1), (1, 1), "valid"))


def batchnorm_affine(layer):
    """The (scale, shift) of an inference-mode BatchNormalization."""
    constant = backends.current().constant
    scale = ops.rsqrt(constant(layer.moving_variance) + layer.epsilon)
    if layer.scale:
        scale = scale * constant(layer.gamma)
    shift = -constant(layer.moving_mean) * scale
    if layer.center:
        shift = shift + constant(layer.beta)
    return scale, shift


def _scale(x, kernel):
    return x * kernel


def _batchnorm(b: Builder, layer, inputs):
    scale, shift = batchnorm_affine(layer)
    return b.emit(layer, LINEAR, _with_bias(_scale), inputs, {"kernel": scale, "bias": shift},
                  input_vjp=transpose.SCALE)


def _standardise(epsilon, hold_scale: bool) -> Forward:
    def forward(xs, params):
        x = xs[0]
        mean, variance = ops.moments(x, axes=[-1], keepdims=True)
        scale = ops.rsqrt(variance + epsilon)
        return (x - mean) * (ops.stop_gradient(scale) if hold_scale else scale)
    return forward


def _layernorm(b: Builder, layer, inputs):
    """Standardisation (linear once its scale is held constant, Ali et al. 2022), then
    the learned element-wise affine map as a linear layer."""
    axis = layer.axis if isinstance(layer.axis, int) else tuple(layer.axis)
    if axis not in (-1, _last_axis(layer), (-1,), (_last_axis(layer),)) \
            or layer.rms_scaling:
        raise XaiError(f"layer '{layer.name}' (LayerNormalization) normalises axis {layer.axis}"
                       f"{' with RMS scaling' if layer.rms_scaling else ''}; only plain "
                       "normalisation over the channel axis (last) is supported")
    out = b.emit(layer, NORMALIZATION, _standardise(layer.epsilon, False), inputs,
                 suffix="/standardise", linear_forward=_standardise(layer.epsilon, True),
                 keeps_nonnegative=False)
    params = {"kernel": layer.gamma} if layer.scale else {"kernel": ops.ones(layer.output.shape[-1])}
    if layer.center:
        params["bias"] = layer.beta
    return b.emit(layer, LINEAR, _with_bias(_scale), [out], params, input_vjp=transpose.SCALE)


def _layer_scale(b: Builder, layer, inputs):
    return b.emit(layer, LINEAR, _with_bias(_scale), inputs, {"kernel": layer.gamma},
                  input_vjp=transpose.SCALE)


def _kind(kind, keeps_nonnegative=True):
    def convert(b: Builder, layer, inputs):
        return b.emit(layer, kind, _call(layer, b.node), inputs, keeps_nonnegative=keeps_nonnegative)
    return convert


def _identity(b: Builder, layer, inputs):
    return b.emit(layer, STRUCTURAL, lambda xs, p: xs[0], inputs)


def _activation(b: Builder, layer, inputs):
    fn = getattr(layer, "activation", None)
    label = _activation_name(fn) if fn is not None else type(layer).__name__.lower()
    if label == "relu" and (getattr(layer, "negative_slope", 0) or getattr(layer, "threshold", 0) < 0):
        label = "leaky_relu"
    return b.emit(layer, ACTIVATION, _call(layer, b.node), inputs, activation=label)


def _multiply(b: Builder, layer, inputs):
    if len(inputs) != 2:
        raise XaiError(f"layer '{layer.name}' (Multiply) has {len(inputs)} inputs; "
                       "only a signal times one gate is supported")
    return b.emit(layer, GATE, lambda xs, p: xs[0] * xs[1], inputs)


def _bilinear(b: Builder, layer, inputs):
    """``a @ b`` or an einsum of two tensors of the model; a constant factor is a weight,
    whose place is a Dense layer."""
    if len(inputs) != 2:
        raise XaiError(f"operation '{layer.name}' ({type(layer).__name__}) has {len(inputs)} "
                       "tensor input(s); xai explains products of two tensors of the model")
    return b.emit(layer, BILINEAR, _call(layer, b.node), inputs)


def _einsum(equation):
    def einsum(x, kernel):
        return ops.einsum(equation, x, kernel)
    return einsum


def _einsum_op(b: Builder, owner, dense, inputs, suffix="", scale=1.0):
    """The EinsumDense ``dense`` as a linear op of layer ``owner`` (itself, or the attention
    layer it projects for, ``scale`` folded into its kernel and bias)."""
    params = {"kernel": ops.convert_to_numpy(dense.kernel) * scale}
    if dense.bias is not None:
        params["bias"] = ops.convert_to_numpy(dense.bias) * scale
    return b.emit(owner, LINEAR, _with_bias(_einsum(dense.equation)), inputs, params, suffix=suffix)


def _einsum_dense(b: Builder, layer, inputs):
    return _einsum_op(b, layer, layer, inputs)


_ATTENTION_PARTS = ("_query_dense", "_key_dense", "_value_dense", "_output_dense",
                    "_dot_product_equation", "_combine_equation", "_masked_softmax",
                    "_compute_attention_mask", "_inverse_sqrt_key_dim")


def _multi_head_attention(b: Builder, layer, inputs):
    """Projections of the query, key and value, one ATTENTION op (see
    :mod:`~xai_cli.engine.attention`), the output projection."""
    def refuse(why):
        raise XaiError(f"layer '{layer.name}' (MultiHeadAttention) {why}; xai explains "
                       "self- and cross-attention with padding (mask_zero) and causal masks")
    missing = [part for part in _ATTENTION_PARTS if not hasattr(layer, part)]
    if missing:
        refuse(f"lacks {', '.join(missing)} in this Keras version")
    if getattr(layer, "_use_gate", False):
        refuse("is gated (use_gate=True)")
    call = _call_arguments(layer, b.node)
    if call.get("return_attention_scores"):
        refuse("returns its attention scores (return_attention_scores=True)")
    given = call.get("attention_mask")
    if isinstance(given, keras.KerasTensor):
        refuse("takes an attention_mask computed in the model (give its Embedding "
               "mask_zero=True for a padding mask, or use_causal_mask=True)")
    ids = {id(t): i for t, i in zip(b.node.input_tensors, inputs)}
    query, value = call["query"], call["value"]
    key = call.get("key")
    masked = tuple(getattr(t, "_keras_mask", None) is not None for t in (query, value, key))
    if any(masked):
        if b.embedding is None or not b.embedding[0].mask_zero:
            refuse("reads a Keras mask that is not an Embedding's padding mask (mask_zero)")
        if b.mask is None:
            b.mask, b.mask_source = b.tensor(), b.embedding[1]
    parts = [_einsum_op(b, layer, layer._query_dense, [ids[id(query)]], "/query",
                        float(layer._inverse_sqrt_key_dim)),
             _einsum_op(b, layer, layer._key_dense, [ids[id(key if key is not None else value)]],
                        "/key"),
             _einsum_op(b, layer, layer._value_dense, [ids[id(value)]], "/value")]
    mechanism = attention.Mechanism(layer, masked, bool(call.get("use_causal_mask")),
                                    None if given is None else ops.convert_to_numpy(given))
    context = b.emit(layer, ATTENTION, mechanism.forward, parts + ([b.mask] if any(masked) else []),
                     suffix="/attention", mechanism=mechanism, keeps_nonnegative=False)
    return _einsum_op(b, layer, layer._output_dense, [context], "/output")


def _call_arguments(layer, node) -> dict:
    """The arguments of a layer's call, by name (positional ones too)."""
    bound = inspect.signature(layer.call).bind(*node.arguments.args, **node.arguments.kwargs)
    return dict(bound.arguments)


def _recurrent(b: Builder, layer, inputs, direction=None, suffix="", align=False):
    """A recurrent layer, or one ``direction`` of a Bidirectional ``layer``, as one op."""
    cell, params = recurrent.cell_of(direction or layer, align)
    return b.emit(layer, RECURRENT, recurrent.forward(cell), inputs, params, suffix=suffix, cell=cell)


_MERGES = {"concat": (STRUCTURAL, lambda xs, p: ops.concatenate(xs, -1)),
           "sum": (POOLING, lambda xs, p: xs[0] + xs[1]),
           "ave": (POOLING, lambda xs, p: (xs[0] + xs[1]) / 2)}


def _bidirectional(b: Builder, layer, inputs):
    """Each direction an op (the backward one's sequence flipped back into time order, as
    Keras does), merged by a concatenation or a sum."""
    if layer.merge_mode not in _MERGES:
        raise XaiError(f"layer '{layer.name}' (Bidirectional) merges with {layer.merge_mode!r}; "
                       f"xai explains the merge modes {', '.join(_MERGES)}")
    for sub in (layer.forward_layer, layer.backward_layer):
        if type(sub).__name__ not in recurrent.KINDS:
            raise XaiError(f"layer '{layer.name}' (Bidirectional) wraps {type(sub).__name__}; "
                           f"xai explains {', '.join(recurrent.KINDS)}")
    outputs = [_recurrent(b, layer, inputs, layer.forward_layer, "/forward"),
               _recurrent(b, layer, inputs, layer.backward_layer, "/backward", align=True)]
    kind, merge = _MERGES[layer.merge_mode]
    return b.emit(layer, kind, merge, outputs, suffix="/merge")


def _kmeans_membership(b: Builder, layer, inputs):
    """Neuralized k-means (:mod:`~xai_cli.models.kmeans`): each pair's shift by its midpoint,
    the differences of squared distances (a linear map without bias, whose z-rule is NEON's
    midpoint rule) and the soft minimum over the competitors (relevance follows its
    gradient: the soft-min weights)."""
    kernel, midpoints = (ops.convert_to_numpy(t).astype("float32")
                         for t in kmeans.pairwise(ops.convert_to_numpy(layer.centroids)))
    pairs = b.emit(layer, STRUCTURAL, lambda xs, p: kmeans.shifted(xs[0], p["midpoints"]), inputs,
                   {"midpoints": midpoints}, suffix="/pairs", keeps_nonnegative=False)
    h = b.emit(layer, DISTANCE, lambda xs, p: kmeans.differences(xs[0], p["kernel"]), [pairs],
               {"kernel": kernel}, suffix="/differences", keeps_nonnegative=False)
    return b.emit(layer, STRUCTURAL, lambda xs, p, beta=layer.beta: kmeans.soft_min(xs[0], beta), [h],
                  suffix="/soft-min", keeps_nonnegative=False)


def _max_pooling_3d(b: Builder, layer, inputs):
    """MaxPooling3D as a 2D max pooling of every frame, then one over the frames: the
    same maxima (a box's maximum is separable) and gradients routed to them. TensorFlow's
    own max_pool3d gradient misroutes on some CPUs (TF 2.21 on AMD EPYC: off by 1.08 on
    a random 16x40x40x16 clip), so it is not used."""
    (depth, height, width), (step, down, across) = layer.pool_size, layer.strides

    def forward(xs, params):
        x = xs[0]
        _, frames, rows, columns, channels = ops.shape(x)
        pooled = ops.max_pool(ops.reshape(x, (-1, rows, columns, channels)), (height, width),
                              (down, across), layer.padding)
        _, rows, columns, _ = ops.shape(pooled)
        pooled = ops.max_pool(ops.reshape(pooled, (-1, frames, rows * columns, channels)),
                              (depth, 1), (step, 1), layer.padding)
        return ops.reshape(pooled, (-1, ops.shape(pooled)[1], rows, columns, channels))
    return b.emit(layer, STRUCTURAL, forward, inputs)


def _global_average_1d(b: Builder, layer, inputs):
    """Masked average pooling (a second input, the mask) averages the unmasked steps only."""
    if len(inputs) == 1:
        return b.emit(layer, POOLING, _call(layer, b.node), inputs)
    return b.emit(layer, POOLING, lambda xs, p: layer(xs[0], mask=xs[1] > 0.5), inputs)


def _front(role: str):
    """Embedding and TextVectorization: recorded for the graph to cut off (see Builder)."""
    def convert(b: Builder, layer, inputs):
        if getattr(b, role) is not None:
            raise XaiError(f"model has two {type(layer).__name__} layers ('{getattr(b, role)[0].name}' "
                           f"and '{layer.name}'); xai explains models with one text input")
        out = b.tensor()
        setattr(b, role, (layer, inputs[0], out))
        return out
    return convert


def _padding_mask(b: Builder, layer, inputs):
    """The NotEqual node of an Embedding's ``mask_zero`` (see Builder); the same mask as
    an attention layer's, which reads it from its inputs' Keras masks."""
    if b.mask is not None and b.mask_source == inputs[0]:
        return b.mask
    if b.mask is not None:
        raise XaiError("model computes two masks (NotEqual); xai explains models with one "
                       "text input and its padding mask")
    b.mask, b.mask_source = b.tensor(), inputs[0]
    return b.mask


def _merged_mask(b: Builder, layer, inputs):
    """Keras merging the Keras masks of a merge layer's inputs (LogicalAnd, LogicalOr): of
    one padding mask with itself, that mask."""
    if b.mask is None or any(t != b.mask for t in inputs):
        raise XaiError(f"operation '{layer.name}' ({type(layer).__name__}) combines masks other "
                       "than the Embedding's padding mask; xai explains models with one padding mask")
    return b.mask


_SHAPE_ONLY = {"OnesLike", "ZerosLike"}

_ACTIVATION_LAYERS = {"Activation", "ReLU", "LeakyReLU", "ELU", "PReLU", "Softmax",
                      "Gelu", "Relu", "Sigmoid", "Tanh", "Silu"}   # the last: bare keras.ops

_CONVERTERS = {
    "Dense": _linear(_dense, lambda layer: transpose.DENSE), "EinsumDense": _einsum_dense,
    "MultiHeadAttention": _multi_head_attention,
    "Conv1D": _linear(_conv), "Conv2D": _linear(_conv, _conv_transpose), "Conv3D": _linear(_conv),
    "DepthwiseConv2D": _linear(_depthwise), "DepthwiseConv1D": _linear(_depthwise),
    "SeparableConv2D": _separable,
    "BatchNormalization": _batchnorm,
    "AveragePooling1D": _kind(POOLING), "AveragePooling2D": _kind(POOLING),
    "AveragePooling3D": _kind(POOLING), "GlobalAveragePooling1D": _global_average_1d,
    "GlobalAveragePooling2D": _kind(POOLING), "GlobalAveragePooling3D": _kind(POOLING),
    "Add": _kind(POOLING), "Average": _kind(POOLING),
    "Subtract": _kind(POOLING, keeps_nonnegative=False),
    "MaxPooling1D": _kind(STRUCTURAL), "MaxPooling2D": _kind(STRUCTURAL),
    "MaxPooling3D": _max_pooling_3d, "GlobalMaxPooling1D": _kind(STRUCTURAL),
    "GlobalMaxPooling2D": _kind(STRUCTURAL), "GlobalMaxPooling3D": _kind(STRUCTURAL),
    "Concatenate": _kind(STRUCTURAL), "Flatten": _kind(STRUCTURAL), "Reshape": _kind(STRUCTURAL),
    "Permute": _kind(STRUCTURAL), "ZeroPadding1D": _kind(STRUCTURAL),
    "ZeroPadding2D": _kind(STRUCTURAL), "ZeroPadding3D": _kind(STRUCTURAL),
    "Cropping1D": _kind(STRUCTURAL), "Cropping2D": _kind(STRUCTURAL),
    "Cropping3D": _kind(STRUCTURAL), "UpSampling2D": _kind(STRUCTURAL),
    "Transpose": _kind(STRUCTURAL), "GetItem": _kind(STRUCTURAL),
    "Matmul": _bilinear, "Einsum": _bilinear,
    "Dropout": _identity, "SpatialDropout1D": _identity, "SpatialDropout2D": _identity,
    "SpatialDropout3D": _identity, "GaussianNoise": _identity, "GaussianDropout": _identity,
    "AlphaDropout": _identity, "ActivityRegularization": _identity, "Identity": _identity,
    "Rescaling": _kind(AFFINE), "Normalization": _kind(AFFINE),
    "Multiply": _multiply, "KMeansMembership": _kmeans_membership,
    "LayerNormalization": _layernorm, "LayerScale": _layer_scale,
    **{name: _recurrent for name in recurrent.KINDS}, "Bidirectional": _bidirectional,
    "Embedding": _front("embedding"), "TextVectorization": _front("vectorizer"),
    "NotEqual": _padding_mask, "LogicalAnd": _merged_mask, "LogicalOr": _merged_mask,
    **{name: _activation for name in _ACTIVATION_LAYERS},
}
