"""Input vector-Jacobian products of linear ops as forward ops with the transposed kernel.

Every LINEAR op is linear in its input once the kernel is fixed (the bias does not
enter), so its VJP is the transposed map applied to the gradient: no autodiff needed. On
CPU, TensorFlow's ``Conv2DBackpropInput`` is several times slower than a forward
convolution for 1x1, strided and small-map convolutions (ResNet50 is mostly those); a
forward convolution of the gradient with the flipped, in/out-swapped kernel gives the
same VJP, exact to float32 rounding. Depthwise convolutions keep autodiff: TensorFlow's
depthwise backprop is as fast as a flipped depthwise convolution.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from keras import ops


@dataclass(frozen=True)
class Transpose:
    """A LINEAR op's input VJP: ``apply(grad, kernel(W), input_shape)``.

    ``kernel`` depends on the weights only (the engine computes it once, not per
    batch); ``input_shape`` is static but for the batch (and a sequence length known only
    at run time).
    """

    kernel: Callable
    apply: Callable


def _same(kernel):
    return kernel


def _matmul(grad, kernel, input_shape):
    """``grad @ W^T`` as ``(W @ grad^T)^T``: reading the large kernel along its rows is
    up to 4x faster on CPU than a matmul with a transposed kernel operand."""
    flat = ops.reshape(grad, (-1, grad.shape[-1]))
    return ops.reshape(ops.transpose(ops.matmul(kernel, ops.transpose(flat))),
                       (-1, *input_shape[1:]))


def _scale(grad, kernel, input_shape):
    return grad * kernel


DENSE = Transpose(_same, _matmul)                # grad @ W^T over the last axis
SCALE = Transpose(_same, _scale)                 # element-wise scaling is its own transpose


def conv2d_backprop(kernel_size, strides, padding) -> Transpose:
    """A 2-D convolution's input VJP as a transposed convolution, without autodiff: for
    few input channels (first layers on images) it beats a forward convolution with so
    few output channels."""
    def apply(grad, w, input_shape):
        # the rows a strided convolution never reached, which its output does not determine
        extra = [size - _transposed_size(out, k, s, padding) for size, out, k, s
                 in zip(input_shape[1:3], grad.shape[1:3], kernel_size, strides)]
        return ops.conv_transpose(grad, w, strides, padding, output_padding=extra)

    return Transpose(_same, apply)


def _transposed_size(size, kernel, stride, padding):
    """The size ``keras.ops.conv_transpose`` gives ``size`` rows without output padding."""
    return (size - 1) * stride + kernel - (2 * (kernel // 2) if padding == "same" else 0)


def conv2d(kernel_size, strides, padding) -> Transpose:
    """A 2-D convolution's (dilation 1, one group) input VJP as one forward convolution.

    Polyphase form: output phase ``r`` of a stride-``s`` transposed convolution is a
    stride-1 full convolution of the gradient with the flipped sub-kernel ``W[s*m + r]``;
    all phases are one convolution with the sub-kernels stacked on the output channels,
    interleaved back into space. Phases a kernel smaller than its stride does not reach
    (1x1 strided) are zeros, not computed. For stride 1 this is the flipped-kernel
    convolution over the gradient padded just enough for the input's size.
    """
    (kh, kw), (sh, sw) = kernel_size, strides
    taps = [math.ceil(kh / sh), math.ceil(kw / sw)]       # sub-kernel size
    phases = [min(kh, sh), min(kw, sw)]                    # phases the kernel reaches

    def kernel(w):
        channels, filters = w.shape[2], w.shape[3]
        if (sh, sw) == (1, 1):
            return ops.transpose(ops.flip(w, (0, 1)), [0, 1, 3, 2])
        w = ops.pad(w, [[0, taps[0] * sh - kh], [0, taps[1] * sw - kw], [0, 0], [0, 0]])
        w = ops.reshape(w, (taps[0], sh, taps[1], sw, channels, filters))
        w = ops.flip(w[:, :phases[0], :, :phases[1]], (0, 2))
        return ops.reshape(ops.transpose(w, [0, 2, 5, 1, 3, 4]),
                           (*taps, filters, phases[0] * phases[1] * channels))

    def apply(grad, w, input_shape):
        channels = input_shape[-1]
        pads, crops, spans = [], [], []
        for size, k, s, t in zip(input_shape[1:3], (kh, kw), (sh, sw), taps):
            out = -(-size // s) if padding == "same" else (size - k) // s + 1
            before = max((out - 1) * s + k - size, 0) // 2 if padding == "same" else 0
            first, last = before // s, -(-(before + size) // s)   # input rows in phase units
            pads.append([t - 1 - first, last - out])
            crops.append(before - s * first)
            spans.append(last - first)
        y = _conv_padded(grad, w, pads)
        if (sh, sw) == (1, 1):
            return y
        y = ops.reshape(y, (-1, *spans, *phases, channels))
        y = ops.pad(y, [[0, 0], [0, 0], [0, 0], [0, sh - phases[0]], [0, sw - phases[1]], [0, 0]])
        y = ops.reshape(ops.transpose(y, [0, 1, 3, 2, 4, 5]),
                        (-1, spans[0] * sh, spans[1] * sw, channels))
        return y[:, crops[0]:crops[0] + input_shape[1], crops[1]:crops[1] + input_shape[2]]

    return Transpose(kernel, apply)


def _conv_padded(x, w, pads):
    """A stride-1 convolution with explicit padding: "same" where that is what the pads
    are (no separate padding pass), else padded first."""
    if all(before == after == (k - 1) // 2 and k % 2 for (before, after), k in zip(pads, w.shape[:2])):
        return ops.conv(x, w, 1, "same")
    return ops.conv(ops.pad(x, [[0, 0], *pads, [0, 0]]), w, 1, "valid")
