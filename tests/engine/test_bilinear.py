"""Products of two tensors of the model (``a @ b``, einsum): AttnLRP's uniform rule, against
NumPy, and conservation through the product."""

import keras
import numpy as np
import pytest
from keras import ops
from test_numpy_reference import _stab, np_rule

from conftest import explain, relative_max_diff
from xai_cli.engine import composites
from xai_cli.engine.explainers import apply_composite
from xai_cli.engine.graph import build_graph
from xai_cli.engine.layers import BILINEAR
from xai_cli.engine.propagation import output_relevance
from xai_cli.errors import XaiError

pytestmark = pytest.mark.backends   # run on every installed Keras backend

L = keras.layers
T, D, H = 4, 3, 5


def _model(product, bias, seed=0):
    """x -> Dense -> two branches a, b -> a b^T -> Flatten -> Dense."""
    keras.utils.set_random_seed(seed)
    initializer = "random_normal" if bias else "zeros"
    dense = {"use_bias": bias, "bias_initializer": initializer}
    inp = keras.Input((T, D))
    h = L.Dense(H, name="embed", **dense)(inp)
    a, b = L.Dense(H, name="query", **dense)(h), L.Dense(H, name="key", **dense)(h)
    if product == "matmul":
        z = ops.matmul(a, ops.transpose(b, (0, 2, 1)))
    else:
        z = ops.einsum("btd,bsd->bts", a, b)
    return keras.Model(inp, L.Dense(3, name="head", **dense)(L.Flatten()(z)))


def _inputs(n=4):
    return np.random.default_rng(2).normal(size=(n, T, D)).astype(np.float32)


@pytest.mark.parametrize("product", ["matmul", "einsum"])
@pytest.mark.parametrize("bias", [True, False])
def test_uniform_rule_matches_numpy(product, bias):
    model, x = _model(product, bias), _inputs()
    result = explain(model, x, [-1] * len(x), rules="default: {rule: epsilon, epsilon: 0.01}\n")
    weights = {name: model.get_layer(name).get_weights() for name in ("embed", "query", "key", "head")}
    if not bias:
        weights = {k: (w[0], np.zeros(w[0].shape[1])) for k, w in weights.items()}
    h = x.astype(np.float64) @ weights["embed"][0] + weights["embed"][1]
    a, b = (h @ weights[k][0] + weights[k][1] for k in ("query", "key"))
    z = a @ b.transpose(0, 2, 1)
    flat = z.reshape(len(x), -1)
    logits = flat @ weights["head"][0] + weights["head"][1]
    R = np.eye(3)[result.targets] * logits
    R = np_rule("epsilon", flat, *weights["head"], R, epsilon=0.01).reshape(z.shape)
    g = R / _stab(z)
    r_a, r_b = a * (g @ b) / 2, b * (g.transpose(0, 2, 1) @ a) / 2   # each factor's epsilon rule, halved
    R = np_rule("epsilon", h, *weights["query"], r_a, epsilon=0.01) \
        + np_rule("epsilon", h, *weights["key"], r_b, epsilon=0.01)
    R = np_rule("epsilon", x.astype(np.float64), *weights["embed"], R, epsilon=0.01)
    assert relative_max_diff(result.relevance, R) < 1e-4


@pytest.mark.parametrize("product", ["matmul", "einsum"])
def test_relevance_is_conserved_through_the_product(product):
    """Each factor's share alone would hold all relevance: halved, they sum to it."""
    model, x = _model(product, bias=False), _inputs()
    graph = build_graph(model)
    applied = apply_composite(graph, composites.parse("default: {rule: zero, bias: false}\n", "t"))
    propagator = applied.propagator(None)
    values = propagator.forward(ops.convert_to_tensor(x))
    logits = values[graph.output]
    record = []
    relevance = propagator.backward(values, output_relevance(logits, ops.argmax(logits, -1), True), record)
    (r_out, (r_a, r_b)), = [(r_out, r_ins) for op, r_out, r_ins in record if op.kind == BILINEAR]
    total, half_a, half_b = (ops.convert_to_numpy(ops.sum(r, axis=(1, 2))) for r in (r_out, r_a, r_b))
    np.testing.assert_allclose(half_a, total / 2, rtol=1e-4)
    np.testing.assert_allclose(half_b, total / 2, rtol=1e-4)
    scores = ops.convert_to_numpy(ops.max(logits, -1))
    np.testing.assert_allclose(ops.convert_to_numpy(ops.sum(relevance, axis=(1, 2))), scores, rtol=1e-4)


def test_the_product_gets_the_uniform_rule_with_its_reason():
    graph = build_graph(_model("matmul", bias=False))
    assignments, _ = composites.load("lrp-epsilon").resolve(graph)
    (rule, source), = [(a.rule, a.source) for op, a in zip(graph.ops, assignments) if op.kind == BILINEAR]
    assert rule.describe() == "uniform" and "uniform rule, Achtibat et al. 2024" in source


def test_a_product_with_a_constant_is_refused():
    inp = keras.Input((T, D))
    z = ops.matmul(L.Dense(H)(inp), np.ones((H, 2), np.float32))
    with pytest.raises(XaiError, match=r"'matmul\w*' \(Matmul\) has 1 tensor input"):
        build_graph(keras.Model(inp, L.Dense(2)(L.Flatten()(z))))
