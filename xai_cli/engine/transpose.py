"""Input vector-Jacobian products of linear ops as forward ops with the transposed kernel.

Every LINEAR op is linear in its input once the kernel is fixed (the bias does not
enter), so its VJP is the transposed map applied to the gradient: no tape needed. On
CPU, TensorFlow's ``Conv2DBackpropInput`` is several times slower than a forward
convolution for 1x1, strided and small-map convolutions (ResNet50 is mostly those); a
forward convolution of the gradient with the flipped, in/out-swapped kernel gives the
same VJP, exact to float32 rounding. Depthwise convolutions keep the tape: TensorFlow's
depthwise backprop is as fast as a flipped depthwise convolution.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import tensorflow as tf


@dataclass(frozen=True)
class Transpose:
    """A LINEAR op's input VJP: ``apply(grad, kernel(W), input_shape)``.

    ``kernel`` depends on the weights only (the engine computes it once, not per
    batch); ``input_shape`` is static but for the batch.
    """

    kernel: Callable
    apply: Callable


def _same(kernel):
    return kernel


def _matmul(grad, kernel, input_shape):
    """``grad @ W^T`` as ``(W @ grad^T)^T``: reading the large kernel along its rows is
    up to 4x faster on CPU than a matmul with a transposed kernel operand."""
    flat = tf.reshape(grad, (-1, grad.shape[-1]))
    return tf.reshape(tf.transpose(tf.matmul(kernel, flat, transpose_b=True)),
                      (-1, *input_shape[1:]))


def _scale(grad, kernel, input_shape):
    return grad * kernel


DENSE = Transpose(_same, _matmul)                # grad @ W^T over the last axis
SCALE = Transpose(_same, _scale)                 # element-wise scaling is its own transpose


def conv2d_backprop(strides, padding) -> Transpose:
    """A 2-D convolution's input VJP by TensorFlow's own backprop kernel, without a tape:
    for few input channels (first layers on images) it beats a forward convolution with
    so few output channels."""
    def apply(grad, w, input_shape):
        shape = tf.concat([tf.shape(grad)[:1], tf.constant(list(input_shape[1:]), tf.int32)], 0)
        return tf.nn.conv2d_transpose(grad, w, shape, strides, padding.upper())

    return Transpose(_same, apply)


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
            return tf.transpose(tf.reverse(w, [0, 1]), [0, 1, 3, 2])
        w = tf.pad(w, [[0, taps[0] * sh - kh], [0, taps[1] * sw - kw], [0, 0], [0, 0]])
        w = tf.reshape(w, (taps[0], sh, taps[1], sw, channels, filters))
        w = tf.reverse(w[:, :phases[0], :, :phases[1]], [0, 2])
        return tf.reshape(tf.transpose(w, [0, 2, 5, 1, 3, 4]),
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
        y = tf.nn.conv2d(grad, w, 1, [[0, 0], *pads, [0, 0]])
        if (sh, sw) == (1, 1):
            return y
        y = tf.reshape(y, (-1, *spans, *phases, channels))
        y = tf.pad(y, [[0, 0], [0, 0], [0, 0], [0, sh - phases[0]], [0, sw - phases[1]], [0, 0]])
        y = tf.reshape(tf.transpose(y, [0, 1, 3, 2, 4, 5]),
                       (-1, spans[0] * sh, spans[1] * sw, channels))
        return y[:, crops[0]:crops[0] + input_shape[1], crops[1]:crops[1] + input_shape[2]]

    return Transpose(kernel, apply)
