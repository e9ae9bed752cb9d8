"""The transposed maps that replace autodiff for linear ops (xai_cli/engine/transpose.py).

Each formulation is checked against the Keras backend's own gradient of the op's forward pass,
through the op the layer converter emits (so strides and padding are wired as Keras
reads them); a small ResNet-like model gives the same LRP relevance with and without them.
"""

import dataclasses
import itertools

import keras
import numpy as np
import pytest
from keras import ops

from conftest import autodiff_vjp, relative_max_diff
from networks import resnet_like
from xai_cli.engine import composites
from xai_cli.engine.explainers import make_explainer
from xai_cli.engine.graph import build_graph
from xai_cli.engine.layers import Builder
from xai_cli.engine.methods import METHODS
from xai_cli.io import preprocess

pytestmark = pytest.mark.backends   # run on every installed Keras backend

L = keras.layers
TOLERANCE = 1e-5


def _ops(layer, input_shape):
    """The ops the converter emits for ``layer`` on an input of ``input_shape`` (no batch)."""
    layer(keras.Input(input_shape))
    builder = Builder()
    builder.add_layer(layer, [0])
    return builder.ops


def _check(op, x, seed=0):
    """``op.input_vjp`` against autodiff, for a random output gradient."""
    expected, grad = autodiff_vjp(lambda t: op.forward([t], op.params), x.astype(np.float32))
    kernel = op.input_vjp.kernel(ops.convert_to_tensor(op.params["kernel"]))
    actual = ops.convert_to_numpy(op.input_vjp.apply(ops.convert_to_tensor(grad), kernel, x.shape))
    assert actual.shape == expected.shape
    assert relative_max_diff(actual, expected) < TOLERANCE


@pytest.mark.parametrize("kernel,strides,padding", [
    *itertools.product([1, 3, 5], [1, 2], ["same", "valid"]),
    ((2, 2), 2, "same"), ((4, 4), 1, "same"), ((3, 1), (2, 1), "valid"), ((1, 3), 3, "same"),
])
@pytest.mark.parametrize("size", [(9, 11), (8, 7)])
def test_conv2d_equals_the_tape(kernel, strides, padding, size):
    keras.utils.set_random_seed(0)
    (op,) = _ops(L.Conv2D(12, kernel, strides=strides, padding=padding,
                          bias_initializer="random_normal"), (*size, 9))
    _check(op, np.random.default_rng(1).normal(size=(3, *size, 9)))


@pytest.mark.parametrize("shape", [(13,), (5, 13)])
def test_dense_equals_the_tape(shape):
    keras.utils.set_random_seed(0)
    (op,) = _ops(L.Dense(7, bias_initializer="random_normal"), shape)
    _check(op, np.random.default_rng(1).normal(size=(3, *shape)))


@pytest.mark.parametrize("layer", [
    lambda: L.BatchNormalization(moving_mean_initializer="random_normal",
                                 gamma_initializer="random_normal"),
    lambda: L.LayerNormalization(gamma_initializer="random_normal"),
])
def test_channel_scaling_equals_the_tape(layer):
    keras.utils.set_random_seed(0)
    op = _ops(layer(), (5, 6, 10))[-1]
    _check(op, np.random.default_rng(1).normal(size=(3, 5, 6, 10)))


def test_separable_pointwise_equals_the_tape():
    keras.utils.set_random_seed(0)
    depthwise, pointwise = _ops(L.SeparableConv2D(11, 3, depth_multiplier=2), (9, 7, 5))
    assert depthwise.input_vjp is None  # the tape is as fast as a flipped depthwise conv
    _check(pointwise, np.random.default_rng(1).normal(size=(3, 7, 5, 10)))


@pytest.mark.parametrize("layer,shape", [
    (lambda: L.Conv2D(8, 3, dilation_rate=2), (9, 9, 12)),
    (lambda: L.Conv2D(9, 3, groups=3), (9, 9, 12)),
    (lambda: L.Conv1D(8, 3), (9, 12)),
    (lambda: L.DepthwiseConv2D(3), (9, 9, 12)),
])
def test_other_convolutions_keep_the_tape(layer, shape):
    (op,) = _ops(layer(), shape)
    assert op.input_vjp is None


@pytest.mark.parametrize("kernel,strides,padding", [(3, 1, "same"), (7, 2, "valid"),
                                                    (4, 2, "same")])
def test_first_layers_use_the_backprop_kernel_without_a_tape(kernel, strides, padding):
    """Few input channels (3 here): a transposed convolution, called directly."""
    keras.utils.set_random_seed(0)
    (op,) = _ops(L.Conv2D(8, kernel, strides=strides, padding=padding), (13, 12, 3))
    kernel = ops.convert_to_tensor(op.params["kernel"])
    assert np.array_equal(ops.convert_to_numpy(op.input_vjp.kernel(kernel)),
                          ops.convert_to_numpy(kernel))  # the kernel as it is
    _check(op, np.random.default_rng(1).normal(size=(3, 13, 12, 3)))




@pytest.mark.parametrize("method,rules", [("lrp", "lrp-epsilon"), ("lrp", "epsilon-gamma-box"),
                                          ("gradient", "lrp-epsilon")])
def test_relevance_is_that_of_the_tape(method, rules):
    graph = build_graph(resnet_like())
    assert sum(op.input_vjp is not None for op in graph.ops) >= 10
    tape = dataclasses.replace(graph, ops=[dataclasses.replace(op, input_vjp=None)
                                           for op in graph.ops])
    x = np.random.default_rng(0).uniform(0, 1, (3, 21, 21, 3)).astype(np.float32)
    targets = np.array([-1, 2, 4], np.int32)
    fast, slow = (make_explainer(g, METHODS[method], composites.load(rules),
                                 preprocess.resolve("unit")).explain(x, targets)
                  for g in (graph, tape))
    assert np.abs(slow.relevance).max() > 0
    assert relative_max_diff(fast.relevance, slow.relevance) < TOLERANCE
