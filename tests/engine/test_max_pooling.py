"""Max pooling's gradient against NumPy: each window's output gradient goes to the
window's maximum. TensorFlow's own max_pool3d gradient misroutes on some CPUs (TF 2.21 on
AMD EPYC), which the engine's separable MaxPooling3D avoids."""

import itertools

import keras
import numpy as np
import pytest

from conftest import explain

pytestmark = pytest.mark.backends   # run on every installed Keras backend

SHAPE = (16, 40, 40, 16)   # where TensorFlow's max_pool3d gradient misrouted on AMD EPYC


def _windows(size, pool, stride, padding):
    """The (start, stop) of every window along one axis, as Keras pads it."""
    if padding == "valid":
        count, start = (size - pool) // stride + 1, 0
    else:
        count = -(-size // stride)
        start = -(max((count - 1) * stride + pool - size, 0) // 2)
    return [(max(start + i * stride, 0), min(start + i * stride + pool, size)) for i in range(count)]


def _routed(x, grad, pool, strides, padding):
    """The gradient of a max pooling of ``x`` (one input, channels last) for output
    gradient ``grad``: each window's gradient added at its maximum."""
    result = np.zeros_like(x)
    axes = [_windows(n, p, s, padding) for n, p, s in zip(x.shape[:3], pool, strides)]
    for index in itertools.product(*(range(len(a)) for a in axes)):
        box = tuple(slice(*a[i]) for a, i in zip(axes, index))
        window = x[box].reshape(-1, x.shape[-1])
        for channel, flat in enumerate(window.argmax(0)):
            at = np.unravel_index(flat, x[box].shape[:3])
            result[(*(s.start + o for s, o in zip(box, at)), channel)] += grad[(*index, channel)]
    return result


@pytest.mark.parametrize("pool, strides, padding", [((1, 2, 2), None, "valid"),
                                                    ((2, 2, 2), None, "valid"),
                                                    ((3, 3, 3), (2, 2, 2), "same")])
def test_max_pooling_3d_routes_the_gradient_to_each_window_maximum(pool, strides, padding):
    inputs = keras.Input(SHAPE)
    pooled = keras.layers.MaxPooling3D(pool, strides, padding)(inputs)
    outputs = keras.layers.Dense(3, use_bias=False)(keras.layers.Flatten()(pooled))
    model = keras.Model(inputs, outputs)
    x = np.random.default_rng(0).normal(size=(1, *SHAPE)).astype(np.float32)
    result = explain(model, x, [1], method="gradient")
    grad = model.layers[-1].get_weights()[0][:, 1].reshape(pooled.shape[1:])
    expected = _routed(x[0], grad, pool, strides or pool, padding)
    np.testing.assert_allclose(result.relevance[0], expected, atol=1e-6)
