"""Relevance of an intermediate tensor: the backward pass stopped at a layer's output."""

import keras
import numpy as np
import pytest
from keras import ops

from conftest import autodiff_vjp
from xai_cli.engine import composites
from xai_cli.engine.explainers import make_explainer
from xai_cli.engine.graph import build_graph
from xai_cli.engine.methods import METHODS
from xai_cli.engine.propagation import output_relevance
from xai_cli.errors import XaiError
from xai_cli.io import preprocess

pytestmark = pytest.mark.backends   # run on every installed Keras backend

L = keras.layers


def _cnn(seed=0):
    """A ReLU CNN as two nested parts (flattened by the engine), so that the back part
    gives the gradient at the front part's output."""
    keras.utils.set_random_seed(seed)
    front = keras.Sequential([keras.Input((8, 8, 2)), L.Conv2D(4, 3, activation="relu", name="conv1"),
                              L.MaxPooling2D(2), L.Conv2D(4, 2, activation="relu", name="conv2")])
    back = keras.Sequential([keras.Input((2, 2, 4)), L.Flatten(name="flat"),
                             L.Dense(6, activation="relu", name="fc1"), L.Dense(3, name="fc2")])
    for layer in (*front.layers, *back.layers):
        if getattr(layer, "bias", None) is not None:
            layer.bias.assign(np.random.default_rng(1).normal(0, 0.1, layer.bias.shape))
    return keras.Sequential([front, back]), front, back


def _run(model, config, x):
    graph = build_graph(model)
    explainer = make_explainer(graph, METHODS["lrp"], composites.load(config), preprocess.resolve("unit"))
    values = explainer.propagator.forward(ops.convert_to_tensor(x))
    targets = ops.argmax(values[graph.output], -1)
    return graph, explainer, values, targets


def _inputs():
    return np.random.default_rng(0).uniform(0, 1, (3, 8, 8, 2)).astype(np.float32)


def test_relevance_at_a_layer_input_is_the_recorded_one():
    model, _, _ = _cnn()
    graph, explainer, values, targets = _run(model, "epsilon-gamma-box", _inputs())
    dense = next(op for op in graph.ops if op.layer == "fc1")
    record = []
    explainer.propagator.backward(values, output_relevance(values[graph.output], targets, True), record)
    recorded = next(r_ins[0] for op, _, r_ins in record if op is dense)
    until = explainer.propagate(values, targets, True, until=graph.tensor_of("flat"))
    assert graph.tensor_of("flat") == dense.inputs[0]
    np.testing.assert_array_equal(ops.convert_to_numpy(until), ops.convert_to_numpy(recorded))


def test_lrp0_at_a_relu_output_is_activation_times_gradient():
    model, front, back = _cnn()
    x = _inputs()
    graph, explainer, values, targets = _run(model, "lrp-0", x)
    record = []
    relevance = explainer.propagator.backward(
        values, output_relevance(values[graph.output], targets, True), record, until=graph.tensor_of("conv2"))
    activation = ops.convert_to_numpy(front(x))
    gradient, _ = autodiff_vjp(back, activation, np.eye(3, dtype=np.float32)[ops.convert_to_numpy(targets)])
    expected = activation * gradient
    np.testing.assert_allclose(ops.convert_to_numpy(relevance), expected, rtol=1e-4,
                               atol=1e-5 * np.abs(expected).max())
    assert {op.layer for op, _, _ in record} == {"flat", "fc1", "fc2"}   # none upstream


def test_unknown_layer_names_some_layers():
    graph = build_graph(_cnn()[0])
    with pytest.raises(XaiError, match=r"no layer 'nope'.* include conv1, max_pooling2d\w*, conv2, flat"):
        graph.tensor_of("nope")
