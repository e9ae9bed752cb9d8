"""Recurrent layers and text models in the engine: exact forward passes on every backend,
conservation, padding, batch independence, and clear refusals."""

import keras
import numpy as np
import pytest

from xai_cli.engine import composites
from xai_cli.engine.explainers import make_explainer
from xai_cli.engine.graph import build_graph
from xai_cli.engine.methods import METHODS
from xai_cli.engine.propagation import Propagator, Scorer
from xai_cli.errors import XaiError

pytestmark = pytest.mark.backends

T, V, D, H = 7, 20, 5, 4
L = keras.layers


def text_model(*layers, mask_zero=True, seed=0, zero_biases=False):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((T,), dtype="int32")
    x = L.Embedding(V, D, mask_zero=mask_zero)(inputs)
    for layer in layers:
        x = layer(x)
    model = keras.Model(inputs, L.Dense(3, use_bias=not zero_biases)(x))
    rng = np.random.default_rng(seed + 1)
    for weight in model.weights:
        if "bias" in weight.path:
            weight.assign(np.zeros(weight.shape) if zero_biases else rng.normal(0, 0.3, weight.shape))
        elif "embeddings" in weight.path:
            weight.assign(rng.normal(0, 1.0, weight.shape))
    return model


ZOO = {
    "lstm": lambda: [L.LSTM(H)],
    "gru": lambda: [L.GRU(H)],
    "gru-reset-before": lambda: [L.GRU(H, reset_after=False)],
    "simple-rnn": lambda: [L.SimpleRNN(H)],
    "bidirectional-lstm": lambda: [L.Bidirectional(L.LSTM(H))],
    "bidirectional-gru-sum-sequences": lambda: [
        L.Bidirectional(L.GRU(H, return_sequences=True), merge_mode="sum"), L.GlobalAveragePooling1D()],
    "stacked-backwards": lambda: [L.LSTM(H, return_sequences=True, go_backwards=True), L.Dropout(0.5),
                                  L.GRU(H, return_sequences=True), L.GlobalMaxPooling1D()],
    "conv1d": lambda: [L.Conv1D(6, 3, padding="same", activation="relu"), L.GlobalMaxPooling1D()],
}


def tokens():
    ids = np.random.default_rng(3).integers(2, V, (5, T)).astype(np.int32)
    ids[1, 4:] = 0     # padded at the end
    ids[2, :] = 0
    ids[2, :2] = [5, 6]
    return ids


def explain(model, method="lrp", rules="text-epsilon", ids=None):
    graph = build_graph(model)
    ids = tokens() if ids is None else ids
    x, mask = graph.text.embed(ids)
    explainer = make_explainer(graph, METHODS[method], composites.load(rules), None)
    return graph, explainer.explain(x, np.full(len(x), -1, np.int32), named={"mask": mask})


@pytest.mark.parametrize("name", ZOO)
@pytest.mark.parametrize("mask_zero", [True, False])
def test_forward_pass_is_the_keras_model(name, mask_zero):
    model = text_model(*ZOO[name](), mask_zero=mask_zero)
    graph = build_graph(model)
    x, mask = graph.text.embed(tokens())
    expected = keras.ops.convert_to_numpy(model(tokens()))
    np.testing.assert_allclose(Scorer(graph)(x, {"mask": mask}), expected, rtol=1e-5, atol=1e-6)


def test_padding_mask_is_a_named_input_filled_with_ones():
    model = text_model(*ZOO["lstm"]())
    graph = build_graph(model)
    spec = graph.named["mask"]
    assert (spec.shape, spec.dtype, spec.fill) == ((T,), "float32", 1.0)
    assert graph.signature == [((T, D), "float32"), ((T,), "float32")]
    x, _ = graph.text.embed(tokens())
    ones = {"mask": np.ones((len(x), T), np.float32)}
    np.testing.assert_array_equal(Scorer(graph)(x), Scorer(graph)(x, ones))
    values = Propagator(graph, []).forward(keras.ops.convert_to_tensor(x))
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(values[spec.tensor]), ones["mask"])
    explainer = make_explainer(graph, METHODS["lrp"], composites.load("text-epsilon"), None)
    targets = np.full(len(x), -1, np.int32)
    np.testing.assert_array_equal(explainer.explain(x, targets).relevance,
                                  explainer.explain(x, targets, named=ones).relevance)


TINY_EPSILON = """
name: tiny
description: epsilon 1e-9 everywhere
rules:
  - match: {type: Recurrent}
    rule: epsilon
    epsilon: 1.0e-9
default: {rule: epsilon, epsilon: 1.0e-9}
"""


@pytest.mark.parametrize("name", ["lstm", "gru", "gru-reset-before", "simple-rnn", "bidirectional-lstm",
                                  "stacked-backwards"])
def test_relevance_is_conserved_without_biases(name, tmp_path):
    """Gates take nothing and sums split in proportion: with no biases and epsilon -> 0 the
    input relevance adds up to the explained logit."""
    config = tmp_path / "tiny.yaml"
    config.write_text(TINY_EPSILON)
    model = text_model(*ZOO[name](), zero_biases=True)
    _, result = explain(model, rules=str(config))
    explained = result.logits[np.arange(len(result.targets)), result.targets]
    np.testing.assert_allclose(result.relevance.sum(axis=(1, 2)), explained, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("name", ["lstm", "bidirectional-gru-sum-sequences", "stacked-backwards"])
def test_masked_padding_gets_no_relevance(name):
    _, result = explain(text_model(*ZOO[name]()))
    padding = tokens() == 0
    assert np.abs(result.relevance[padding]).max() == 0
    assert np.abs(result.relevance[~padding]).max() > 0


@pytest.mark.parametrize("method", ["lrp", "gradxinput"])
def test_relevance_does_not_depend_on_the_batch(method):
    model = text_model(*ZOO["bidirectional-lstm"]())
    ids = tokens()
    _, together = explain(model, method, ids=ids)
    for i in range(len(ids)):
        _, alone = explain(model, method, ids=ids[i:i + 1])
        np.testing.assert_allclose(alone.relevance[0], together.relevance[i], rtol=1e-5, atol=1e-7)


def test_gradient_methods_see_the_mask():
    """Integrated gradients interpolates the embeddings, not the mask."""
    _, result = explain(text_model(*ZOO["lstm"]()), "integrated-gradients")
    assert np.abs(result.relevance[tokens() == 0]).max() == 0


def test_rule_config_reaches_recurrent_layers(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("name: c\ndescription: d\nrules:\n  - match: {type: LSTM}\n    rule: zplus\n"
                      "default: {rule: epsilon}\n")
    graph = build_graph(text_model(*ZOO["bidirectional-lstm"]()))
    assignments, _ = composites.load(str(config)).resolve(graph)
    recurrent = [a for op, a in zip(graph.ops, assignments) if op.kind == "recurrent"]
    assert len(recurrent) == 2 and all(a.rule.linear.name == "zplus" for a in recurrent)
    default = composites.load("text-epsilon").resolve(graph)[0]
    assert [a.rule.linear.params for op, a in zip(graph.ops, default) if op.kind == "recurrent"] \
        == [{"epsilon": 1e-3}] * 2


def test_unsupported_text_layers_are_named():
    with pytest.raises(XaiError, match="merges with 'mul'"):
        build_graph(text_model(L.Bidirectional(L.LSTM(H), merge_mode="mul")))
    inputs = keras.Input((T,), dtype="int32")
    x = L.Embedding(V, D)(inputs)
    x = L.GlobalAveragePooling1D()(L.GroupQueryAttention(4, 2, 1)(x, x))
    with pytest.raises(XaiError, match=r"'grouped_query_attention\w*' \(GroupedQueryAttention\)"):
        build_graph(keras.Model(inputs, L.Dense(3)(x)))


def test_tokens_must_only_enter_through_the_embedding():
    inputs = keras.Input((T,), dtype="int32")
    embedded = L.GlobalAveragePooling1D()(L.Embedding(V, D)(inputs))
    other = L.Dense(D)(L.Rescaling(1.0)(inputs))   # the ids as numbers, beside the embedding
    model = keras.Model(inputs, L.Dense(3)(L.Add()([embedded, other])))
    with pytest.raises(XaiError, match="token ids feed layers other than its Embedding"):
        build_graph(model)


BIAS_FREE = """
name: bias-free
description: epsilon 0.001 with the biases left out of every denominator
rules:
  - match: {type: Recurrent}
    rule: epsilon
    epsilon: 1.0e-3
    bias: false
default: {rule: epsilon, epsilon: 1.0e-3, bias: false}
"""


@pytest.mark.parametrize("name", [n for n in ZOO if n not in ("conv1d", "simple-rnn")])
@pytest.mark.parametrize("mask_zero", [True, False])
def test_lrp_matches_the_numpy_reference(name, mask_zero):
    """The engine against tests/engine/recurrent_reference.py, written from the paper's
    equations apart from the engine, in float64."""
    import recurrent_reference
    model = text_model(*ZOO[name](), mask_zero=mask_zero)
    _, result = explain(model)
    expected = recurrent_reference.lrp(model, tokens(), result.targets, epsilon=1e-3)
    np.testing.assert_allclose(result.relevance, expected, rtol=0,
                               atol=2e-5 * np.abs(expected).max())


@pytest.mark.parametrize("name", ["bidirectional-lstm", "gru-reset-before"])
def test_lrp_without_biases_in_the_denominators_matches_the_reference(name, tmp_path):
    import recurrent_reference
    config = tmp_path / "bias-free.yaml"
    config.write_text(BIAS_FREE)
    model = text_model(*ZOO[name]())
    _, result = explain(model, rules=str(config))
    expected = recurrent_reference.lrp(model, tokens(), result.targets, epsilon=1e-3, bias=False)
    np.testing.assert_allclose(result.relevance, expected, rtol=0,
                               atol=2e-5 * np.abs(expected).max())


def test_a_layer_after_a_recurrent_one_is_not_a_first_layer():
    """zB's `first: true` means the layer that sees the input: a Dense after an LSTM does not."""
    graph = build_graph(text_model(*ZOO["lstm"]()))
    assert composites.first_layers(graph) == set()
    conv = build_graph(text_model(*ZOO["conv1d"]()))
    assert [conv.ops[i].layer_type for i in composites.first_layers(conv)] == ["Conv1D"]
