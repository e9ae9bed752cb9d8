"""Text models of any length (sequence axis None): which models pad exactly, and that a
document's relevance is the same alone, in any batch and in any length bucket, and the
same as a fixed-length copy's, for every method, on every backend."""

import keras
import numpy as np
import pytest

from xai_cli.engine import composites
from xai_cli.engine.explainers import make_explainer
from xai_cli.engine.graph import build_graph
from xai_cli.engine.methods import METHODS
from xai_cli.io.documents import Document
from xai_cli.io.inputs import InputItem
from xai_cli.kinds.buckets import Documents, bucket_length, buckets

pytestmark = pytest.mark.backends

V, D, H = 30, 6, 5
L = keras.layers
METHOD_NAMES = ("lrp", "sa", "gradxinput", "integrated-gradients", "smoothgrad")
# token counts of the documents: two share a length, one is longer than the fixed copy
LENGTHS = (3, 9, 5, 9, 14, 1)


def text_model(length, layers, mask_zero=True):
    """Embedding, ``layers`` and a Dense head, seeded: the same weights at any ``length``."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((length,), dtype="int32")
    x = L.Embedding(V, D, mask_zero=mask_zero)(inputs)
    for layer in layers():
        x = layer(x)
    model = keras.Model(inputs, L.Dense(3)(x))
    rng = np.random.default_rng(1)
    for weight in model.weights:
        weight.assign(rng.normal(0, 0.5, weight.shape))
    return model


ARCHITECTURES = {
    "bilstm": lambda: [L.Bidirectional(L.LSTM(H))],
    "stacked-gru": lambda: [L.GRU(H, return_sequences=True), L.GRU(H)],
    "lstm-average": lambda: [L.LSTM(H, return_sequences=True), L.Dense(4, activation="relu"),
                             L.GlobalAveragePooling1D()],
}


def documents(lengths, front):
    rng = np.random.default_rng(2)
    made = []
    for i, n in enumerate(lengths):
        ids = rng.integers(2, V, n).astype(np.int32)
        x, mask = front.embed(ids[None])
        made.append(Document(InputItem(str(i), str(i), i), x[0], mask[0], ids, [], 0))
    return made


def explainer(graph, method):
    return make_explainer(graph, METHODS[method], composites.load("text-epsilon"), None)


def alone(explaining, document, index):
    """One document explained on its own, at its own length."""
    return explaining.explain(document.x[None], np.array([-1], np.int32), np.array([index]),
                              {"mask": document.mask[None]}).relevance[0]


@pytest.mark.parametrize("architecture", sorted(ARCHITECTURES))
def test_a_masked_model_pads_exactly_in_any_bucket_and_matches_a_fixed_length_copy(architecture):
    graph = build_graph(text_model(None, ARCHITECTURES[architecture]))
    assert graph.any_length and graph.input_shape == (None, D) and not graph.padding_mixers
    fixed = build_graph(text_model(16, ARCHITECTURES[architecture]))
    docs = documents(LENGTHS, graph.text)
    index = np.arange(len(docs))
    for method in METHOD_NAMES:
        explaining, reference = explainer(graph, method), explainer(fixed, method)
        single = [alone(explaining, d, i) for i, d in enumerate(docs)]
        for rows in (2, 6):   # buckets of other sizes and lengths
            batch = Documents(docs, None, rows=rows)
            result = batch.explain(explaining, np.full(len(docs), -1, np.int32), index)
            for got, expected in zip(result.relevance, single):
                np.testing.assert_allclose(got, expected, atol=2e-6, err_msg=f"{method}, {rows} rows")
        if METHODS[method].random:
            continue   # smoothgrad's noise depends on the padding: a fixed length differs
        x = np.stack([np.pad(d.x, ((0, 16 - len(d.x)), (0, 0))) for d in docs])
        mask = np.stack([np.pad(d.mask, (0, 16 - len(d.mask))) for d in docs])
        padded = reference.explain(x, np.full(len(docs), -1, np.int32), index, {"mask": mask})
        for got, expected, d in zip(padded.relevance, single, docs):
            np.testing.assert_allclose(got[:len(d.ids)], expected, atol=2e-6, err_msg=method)
            assert not got[len(d.ids):].any()


def test_an_unmasked_model_runs_every_document_at_its_own_length():
    graph = build_graph(text_model(None, ARCHITECTURES["bilstm"], mask_zero=False))
    assert [m.split(" ")[-1] for m in graph.padding_mixers] == ["(Bidirectional)"]
    docs = documents(LENGTHS, graph.text)
    explaining = explainer(graph, "lrp")
    single = [alone(explaining, d, i) for i, d in enumerate(docs)]
    result = Documents(docs, None, rows=4, exact=True).explain(
        explaining, np.full(len(docs), -1, np.int32), np.arange(len(docs)))
    for got, expected in zip(result.relevance, single):
        np.testing.assert_allclose(got, expected, atol=2e-6)
    # the check can fail: padding the shortest document changes its relevance
    short = docs[-1]
    x, mask = np.pad(short.x, ((0, 7), (0, 0)))[None], np.pad(short.mask, (0, 7))[None]
    pads = explaining.explain(x, np.array([-1], np.int32), np.array([5]), {"mask": mask})
    assert np.abs(pads.relevance[0][:1] - single[-1]).max() > 1e-4


@pytest.mark.parametrize("layers, mixer", [
    (lambda: [L.Conv1D(4, 3, padding="same"), L.GlobalMaxPooling1D()], "Conv1D"),
    (lambda: [L.Dense(4), L.GlobalMaxPooling1D()], "GlobalMaxPooling1D"),
    (lambda: [L.LSTM(H, return_sequences=True), L.GlobalMaxPooling1D()], "GlobalMaxPooling1D"),
])
def test_layers_that_see_the_padding_are_named(layers, mixer):
    graph = build_graph(text_model(None, layers))
    assert graph.padding_mixers and graph.padding_mixers[0].endswith(f"({mixer})")


def test_buckets_sort_by_length_and_round_up_to_a_few_lengths():
    assert [bucket_length(n) for n in (1, 8, 9, 17, 33, 100, 200)] == [8, 8, 10, 20, 40, 112, 224]
    assert all(n <= bucket_length(n) <= max(8, 1.25 * n) for n in range(1, 3000))
    lengths = [50, 3, 120, 3, 60, 7]
    got = [(rows.tolist(), n) for rows, n in buckets(lengths, 2, exact=False)]
    assert got == [([1, 3], 8), ([5, 0], 56), ([4, 2], 128)]
    exact = [(rows.tolist(), n) for rows, n in buckets(lengths, 2, exact=True)]
    assert exact == [([1, 3], 3), ([5], 7), ([0], 50), ([4], 60), ([2], 120)]
