"""Transformer blocks (MultiHeadAttention, LayerNormalization, GELU, residuals) against a plain
NumPy implementation of AttnLRP (Achtibat et al. 2024) and CP-LRP (Ali et al. 2022), written
from the papers' equations; conservation where the rules promise it."""

import math

import keras
import numpy as np
import pytest
from keras import ops
from test_numpy_reference import _stab, np_rule

from conftest import autodiff_vjp, relative_max_diff
from xai_cli.engine import composites
from xai_cli.engine.explainers import apply_composite, make_explainer
from xai_cli.engine.graph import build_graph
from xai_cli.engine.layers import ATTENTION
from xai_cli.engine.methods import METHODS
from xai_cli.engine.propagation import output_relevance
from xai_cli.errors import XaiError
from xai_cli.io import preprocess

pytestmark = pytest.mark.backends   # run on every installed Keras backend

L = keras.layers
T, D, HEADS, KEY_DIM, CLASSES, VOCABULARY = 5, 6, 2, 3, 3, 12
LN_EPS = 1e-3


def config(mode):
    return (f"rules:\n  - {{match: {{type: Attention}}, rule: {mode}}}\n"
            "default: {rule: epsilon, epsilon: 1.0e-6}\n")


BAND = np.abs(np.subtract.outer(np.arange(T), np.arange(T))) <= 1   # a constant attention_mask


def _block(x, cross=False, causal=False, bias=True, band=False, tanh_gelu=False):
    """A pre-norm encoder block: LN, attention, residual, LN, GELU MLP, residual."""
    a = L.LayerNormalization(epsilon=LN_EPS, name="ln1")(x)
    attention = L.MultiHeadAttention(HEADS, KEY_DIM, use_bias=bias, name="mha")
    masks = {"use_causal_mask": causal, **({"attention_mask": BAND[None]} if band else {})}
    if cross:   # queries from a projection of the tokens, keys and values from the tokens
        a = attention(L.Dense(D, name="queries")(a), a, **masks)
    else:
        a = attention(a, a, **masks)
    x = L.Add(name="res1")([x, a])
    m = L.LayerNormalization(epsilon=LN_EPS, name="ln2")(x)
    if tanh_gelu:   # GELU's tanh form, a bare keras.ops call
        m = ops.gelu(L.Dense(8, name="fc1")(m), approximate=True)
    else:
        m = L.Dense(8, activation="gelu", name="fc1")(m)
    return L.Add(name="res2")([x, L.Dense(D, name="fc2")(m)])


def _randomise(model, seed):
    """Random weights everywhere (biases and LayerNorm's scale and shift too), so that no
    term of the rules vanishes by accident."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        layer.set_weights([rng.normal(0, 0.6, w.shape).astype(np.float32) + ("gamma" in v.path)
                           for w, v in zip(layer.get_weights(), layer.weights)])


def _model(cross=False, causal=False, bias=True, band=False, tanh_gelu=False, seed=0):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((T, D))
    x = _block(inputs, cross, causal, bias, band, tanh_gelu)
    model = keras.Model(inputs, L.Dense(CLASSES, name="head")(L.GlobalAveragePooling1D()(x)))
    _randomise(model, seed)
    return model


def _text_model(seed=0):
    keras.utils.set_random_seed(seed)
    tokens = keras.Input((T,), dtype="int32")
    x = _block(L.Embedding(VOCABULARY, D, mask_zero=True, name="embedding")(tokens))
    model = keras.Model(tokens, L.Dense(CLASSES, name="head")(L.Flatten()(x)))
    _randomise(model, seed)
    return model


# ---- the reference: forward and relevance in float64 NumPy ------------------------------

def _weights(model, name):
    return [w.astype(np.float64) for w in model.get_layer(name).get_weights()]


def _dense(x, W, b):
    return x @ W + b


def _dense_relevance(x, W, b, R, eps=1e-6):
    """The epsilon rule of a position-wise dense layer on (N, T, D) inputs."""
    shape = x.shape[:-1]
    return np_rule("epsilon", x.reshape(-1, x.shape[-1]), W, b, R.reshape(-1, R.shape[-1]),
                   epsilon=eps).reshape(*shape, x.shape[-1])


def _layernorm(x, gamma, beta):
    centred = x - x.mean(-1, keepdims=True)
    std = np.sqrt((centred ** 2).mean(-1, keepdims=True) + LN_EPS)
    return centred / std, centred / std * gamma + beta


def _layernorm_relevance(x, gamma, beta, R):
    """Affine part: epsilon rule per element; standardisation with std held constant: the
    z-rule of the centring x -> x - mean(x) (Ali et al. 2022; AttnLRP's identity rule)."""
    standard, y = _layernorm(x, gamma, beta)
    R = standard * gamma * R / _stab(y)
    # z_i = sum_j M_ij x_j with M = (I - 1/D) / std: R_j = x_j sum_i M_ij R_i / z_i
    std = np.sqrt(((x - x.mean(-1, keepdims=True)) ** 2).mean(-1, keepdims=True) + LN_EPS)
    s = R / _stab(standard)
    return x * (s - s.mean(-1, keepdims=True)) / std


def _heads(x, W, b):
    """(N, T, D) @ (D, HEADS, KEY_DIM) + (HEADS, KEY_DIM) -> (N, T, HEADS, KEY_DIM)."""
    return np.einsum("ntd,dhk->nthk", x, W) + b


def _attention_forward(model, query_in, value_in, causal, band, padding):
    Wq, bq, Wk, bk, Wv, bv, Wo, bo = _mha_weights(model)
    q, k, v = _heads(query_in, Wq, bq) / np.sqrt(KEY_DIM), _heads(value_in, Wk, bk), _heads(value_in, Wv, bv)
    scores = np.einsum("nthk,nshk->nhts", q, k)
    allowed = np.ones(scores.shape, bool)
    if causal:
        allowed &= np.tril(np.ones((T, T), bool))
    if band:
        allowed &= BAND
    if padding is not None:   # query and value masks, as Keras' MultiHeadAttention ANDs them
        allowed &= (padding[:, None, :, None] > 0) & (padding[:, None, None, :] > 0)
    masked = np.where(allowed, scores, -1e9)   # float32 rounds scores - 1e9 to -1e9
    weights = np.exp(masked - masked.max(-1, keepdims=True))
    weights /= weights.sum(-1, keepdims=True)
    context = np.einsum("nhts,nshk->nthk", weights, v)
    out = np.einsum("nthk,hkd->ntd", context, Wo) + bo
    return dict(q=q, k=k, v=v, scores=scores, weights=weights, context=context, out=out)


def _mha_weights(model):
    weights = _weights(model, "mha")
    if len(weights) == 4:   # no biases
        Wq, Wk, Wv, Wo = weights
        return Wq, 0.0, Wk, 0.0, Wv, 0.0, Wo, 0.0
    return weights


def _attention_relevance(model, f, query_in, value_in, R_out, mode):
    Wq, bq, Wk, bk, Wv, bv, Wo, _ = _mha_weights(model)
    g = R_out / _stab(f["out"])
    R_context = f["context"] * np.einsum("ntd,hkd->nthk", g, Wo)
    g = R_context / _stab(f["context"])
    share = 1.0 if mode == "cp-lrp" else 0.5            # CP-LRP: the weights are constants
    R_v = share * f["v"] * np.einsum("nhts,nthk->nshk", f["weights"], g)
    R_query, R_value = np.zeros_like(query_in), np.zeros_like(value_in)
    if mode == "attnlrp":
        R_weights = 0.5 * f["weights"] * np.einsum("nthk,nshk->nhts", g, f["v"])
        R_scores = f["scores"] * (R_weights - f["weights"] * R_weights.sum(-1, keepdims=True))
        gs = R_scores / _stab(f["scores"])
        R_q = 0.5 * f["q"] * np.einsum("nhts,nshk->nthk", gs, f["k"])
        R_k = 0.5 * f["k"] * np.einsum("nhts,nthk->nshk", gs, f["q"])
        R_query = _projection_relevance(query_in, Wq / np.sqrt(KEY_DIM), bq / np.sqrt(KEY_DIM), R_q)
        R_value = _projection_relevance(value_in, Wk, bk, R_k)
    return R_query, R_value + _projection_relevance(value_in, Wv, bv, R_v)


def _projection_relevance(x, W, b, R):
    z = _heads(x, W, b)
    return x * np.einsum("nthk,dhk->ntd", R / _stab(z), W)


def _add_relevance(a, b, R):
    s = R / _stab(a + b)
    return a * s, b * s


def _gelu(x, tanh_form):
    if tanh_form:
        return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))
    return 0.5 * x * (1 + np.vectorize(math.erf)(x / np.sqrt(2)))


def _reference(model, x, targets, mode, cross=False, causal=False, band=False, tanh_gelu=False,
               padding=None, pool="mean"):
    x = x.astype(np.float64)
    ln1 = _weights(model, "ln1")
    a = _layernorm(x, *ln1)[1]
    query_in = _dense(a, *_weights(model, "queries")) if cross else a
    f = _attention_forward(model, query_in, a, causal, band, padding)
    h = x + f["out"]
    ln2 = _weights(model, "ln2")
    m_in = _layernorm(h, *ln2)[1]
    pre = _dense(m_in, *_weights(model, "fc1"))
    gelu = _gelu(pre, tanh_gelu)
    m = _dense(gelu, *_weights(model, "fc2"))
    out = h + m
    W, b = _weights(model, "head")
    features = out.mean(1) if pool == "mean" else out.reshape(len(x), -1)
    logits = features @ W + b
    R = np.eye(CLASSES)[targets] * logits
    R = np_rule("epsilon", features, W, b, R, epsilon=1e-6)
    R = (out / T * (R / _stab(features))[:, None, :]) if pool == "mean" else R.reshape(out.shape)
    R_h, R_m = _add_relevance(h, m, R)
    R_gelu = _dense_relevance(gelu, *_weights(model, "fc2"), R_m)
    R_m_in = _dense_relevance(m_in, *_weights(model, "fc1"), R_gelu)   # GELU: identity rule
    R_h = R_h + _layernorm_relevance(h, *ln2, R_m_in)
    R_x, R_attention = _add_relevance(x, f["out"], R_h)
    R_query_in, R_a = _attention_relevance(model, f, query_in, a, R_attention, mode)
    if cross:
        R_a = R_a + _dense_relevance(a, *_weights(model, "queries"), R_query_in)
    else:
        R_a = R_a + R_query_in
    return logits, R_x + _layernorm_relevance(x, *ln1, R_a)


def _inputs(n=4, seed=1):
    return np.random.default_rng(seed).normal(size=(n, T, D)).astype(np.float32)


# ---- the tests ------------------------------------------------------------------------------

def _explain(model, x, mode, named=None, method="lrp"):
    explainer = make_explainer(build_graph(model), METHODS[method], composites.parse(config(mode), "t"),
                               preprocess.resolve("none"))
    return explainer.explain(x, np.full(len(x), -1, np.int32), named=named)


@pytest.mark.parametrize("mode", ["attnlrp", "cp-lrp"])
@pytest.mark.parametrize("variant", ["self", "cross", "causal", "no-bias", "attention-mask", "tanh-gelu"])
def test_attention_rules_match_numpy(mode, variant):
    cross, causal, bias = variant == "cross", variant == "causal", variant != "no-bias"
    band, tanh_gelu = variant == "attention-mask", variant == "tanh-gelu"
    model, x = _model(cross, causal, bias, band, tanh_gelu), _inputs()
    result = _explain(model, x, mode)
    logits, expected = _reference(model, x, result.targets, mode, cross, causal, band, tanh_gelu)
    np.testing.assert_allclose(result.logits, logits, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(result.logits, ops.convert_to_numpy(model(x)), rtol=1e-4, atol=1e-4)
    assert relative_max_diff(result.relevance, expected) < 1e-4


@pytest.mark.parametrize("mode", ["attnlrp", "cp-lrp"])
def test_a_padding_mask_hides_the_padded_tokens(mode):
    """The Embedding's mask_zero masks queries and keys, as in the Keras layer."""
    model = _text_model()
    ids = np.array([[3, 5, 7, 0, 0], [1, 2, 3, 4, 5], [9, 0, 0, 0, 0]], np.int32)
    graph = build_graph(model)
    x, mask = graph.text.embed(ids)
    explainer = make_explainer(graph, METHODS["lrp"], composites.parse(config(mode), "t"),
                               preprocess.resolve("none"))
    result = explainer.explain(x, np.full(len(x), -1, np.int32), named={"mask": mask})
    np.testing.assert_allclose(result.logits, ops.convert_to_numpy(model(ids)), rtol=1e-4, atol=1e-4)
    logits, expected = _reference(model, x, result.targets, mode, padding=mask, pool="flatten")
    np.testing.assert_allclose(result.logits, logits, rtol=1e-4, atol=1e-4)
    assert relative_max_diff(result.relevance, expected) < 1e-4


def _attention_record(model, x, mode):
    graph = build_graph(model)
    applied = apply_composite(graph, composites.parse(config(mode), "t"))
    propagator = applied.propagator(None)
    values = propagator.forward(ops.convert_to_tensor(x))
    logits = values[graph.output]
    record = []
    propagator.backward(values, output_relevance(logits, ops.argmax(logits, -1), True), record)
    (r_out, r_ins), = [(r_out, r_ins) for op, r_out, r_ins in record if op.kind == ATTENTION]
    return [None if r is None else ops.convert_to_numpy(ops.sum(r, axis=(1, 2, 3)))
            for r in (r_out, *r_ins)]


def test_cp_lrp_gives_the_values_all_of_the_relevance():
    total, query, key, value = _attention_record(_model(bias=False), _inputs(), "cp-lrp")
    assert query is None and key is None
    np.testing.assert_allclose(value, total, rtol=1e-4)


def test_attnlrp_gives_the_values_half_and_the_softmax_keeps_its_bias_share():
    """The values take half (the uniform rule); queries and keys take equal shares of
    what the softmax passes on, sum_i s_i (R_i - A_i sum R), which is not the other half."""
    total, query, key, value = _attention_record(_model(bias=False), _inputs(), "attnlrp")
    np.testing.assert_allclose(value, total / 2, rtol=1e-4)
    np.testing.assert_allclose(query, key, rtol=1e-3, atol=1e-6)
    assert np.all(np.abs(query + key - total / 2) > 1e-4 * np.abs(total))


def test_the_rules_are_named_in_xai_rules_with_their_source():
    graph = build_graph(_model())
    assignments, _ = composites.parse(config("cp-lrp"), "t.yaml").resolve(graph)
    by_op = {op.name: (a.rule.describe(), a.source) for op, a in zip(graph.ops, assignments)}
    assert by_op["mha/attention"] == ("cp-lrp", "t.yaml:2")
    assert by_op["mha/query"][0] == "epsilon epsilon=1e-06"
    assert by_op["ln1/standardise"][0] == "norm"
    default, _ = composites.load("lrp-epsilon").resolve(graph)
    assert [a.rule.describe() for op, a in zip(graph.ops, default) if op.kind == ATTENTION] == ["attnlrp"]


def test_attention_rules_on_normalisation_hold_the_std():
    graph = build_graph(_model())
    text = "rules:\n  - {match: {type: Normalization}, rule: cp-lrp}\ndefault: {rule: epsilon}\n"
    assignments, warnings = composites.parse(text, "t").resolve(graph)
    assert not warnings
    held = {a.rule.describe() for op, a in zip(graph.ops, assignments) if "standardise" in op.name}
    assert held == {"cp-lrp"}


def test_an_attention_rule_cannot_be_the_default():
    with pytest.raises(XaiError, match=r"t:1: default.rule: rule 'attnlrp' is for attention"):
        composites.parse("default: {rule: attnlrp}\n", "t")


def test_gradient_methods_differentiate_the_layer():
    """Gradient x input through the engine equals the backend's autodiff of the model."""
    model, x = _model(), _inputs()
    result = _explain(model, x, "attnlrp", method="gradxinput")
    targets = np.eye(CLASSES)[result.targets].astype(np.float32)
    gradient, _ = autodiff_vjp(model, x, targets)
    assert relative_max_diff(result.relevance, gradient * x) < 1e-4


@pytest.mark.parametrize("build,what", [
    (lambda a: L.MultiHeadAttention(2, 3, use_gate=True, name="gated")(a, a), "is gated"),
    (lambda a: L.MultiHeadAttention(2, 3, name="scores")(a, a, return_attention_scores=True)[0],
     "returns its attention scores"),
    (lambda a: L.MultiHeadAttention(2, 3, name="computed")(
        a, a, attention_mask=ops.sum(a, -1, keepdims=True) > 0), "takes an attention_mask computed"),
])
def test_unsupported_attention_variants_are_refused_by_name(build, what):
    inputs = keras.Input((T, D))
    try:
        out = build(inputs)
    except TypeError:
        pytest.skip("this Keras version lacks the variant")
    model = keras.Model(inputs, L.Dense(2)(L.Flatten()(out)))
    with pytest.raises(XaiError, match=r"\(MultiHeadAttention\) " + what):
        build_graph(model)


def _two_axes():
    inputs = keras.Input((3, 4, D))
    x = L.MultiHeadAttention(HEADS, KEY_DIM, attention_axes=(1, 2), use_bias=False)(inputs, inputs)
    return keras.Model(inputs, L.Dense(CLASSES, use_bias=False)(L.Flatten()(x))), (3, 4, D)


def _separate_key():
    inputs = keras.Input((T, D))
    query, key = L.Dense(D, use_bias=False)(inputs), L.Dense(D, use_bias=False)(inputs)
    x = L.MultiHeadAttention(HEADS, KEY_DIM, use_bias=False)(query, inputs, key=key)
    return keras.Model(inputs, L.Dense(CLASSES, use_bias=False)(L.Flatten()(x))), (T, D)


@pytest.mark.parametrize("build", [_two_axes, _separate_key])
def test_attention_over_two_axes_and_with_its_own_key_matches_keras_and_cp_lrp_conserves(build):
    keras.utils.set_random_seed(0)
    model, shape = build()
    x = np.random.default_rng(0).normal(size=(3, *shape)).astype(np.float32)
    result = _explain(model, x, "cp-lrp")
    np.testing.assert_allclose(result.logits, ops.convert_to_numpy(model(x)), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(result.relevance.reshape(3, -1).sum(1), result.logits.max(1),
                               rtol=1e-4, atol=1e-5)


def test_masked_mean_pooling_after_attention_skips_the_padding_as_keras_does():
    """Keras merges the padding mask of a residual's inputs (LogicalOr) and hands it to the
    pooling: the engine reads the same mask, and CP-LRP conserves the logit."""
    keras.utils.set_random_seed(0)
    tokens = keras.Input((T,), dtype="int32")
    x = L.Embedding(VOCABULARY, D, mask_zero=True)(tokens)
    attended = L.MultiHeadAttention(HEADS, KEY_DIM, use_bias=False)(x, x)
    x = L.LayerNormalization(center=False)(L.Add()([x, attended]))
    model = keras.Model(tokens, L.Dense(CLASSES, use_bias=False)(L.GlobalAveragePooling1D()(x)))
    ids = np.array([[3, 5, 7, 0, 0], [1, 2, 3, 4, 5], [9, 0, 0, 0, 0]], np.int32)
    graph = build_graph(model)
    x, mask = graph.text.embed(ids)
    explainer = make_explainer(graph, METHODS["lrp"], composites.parse(config("cp-lrp"), "t"),
                               preprocess.resolve("none"))
    result = explainer.explain(x, np.full(len(x), -1, np.int32), named={"mask": mask})
    np.testing.assert_allclose(result.logits, ops.convert_to_numpy(model(ids)), rtol=1e-4, atol=1e-5)
    assert np.abs(result.relevance[mask == 0]).max() == 0   # padding takes none
    np.testing.assert_allclose(result.relevance.sum((1, 2)), result.logits.max(1), rtol=1e-3)


def _positions(tokens):
    """Position ids from the input's shape: how a functional model of Keras layers holds a
    learned position embedding (Keras' own examples use a custom layer)."""
    return ops.cumsum(ops.ones_like(tokens), axis=1) - 1


def test_a_learned_position_embedding_is_a_constant_that_takes_its_share():
    """Tokens plus an Embedding over the positions: the position embedding depends on the
    input's shape only, takes its share of the sum (z-rule) and passes nothing on."""
    keras.utils.set_random_seed(0)
    tokens = keras.Input((T,), dtype="int32")
    embedded = L.Embedding(VOCABULARY, D, name="embedding")(tokens)
    x = embedded + L.Embedding(T, D, name="pos")(_positions(tokens))
    model = keras.Model(tokens, L.Dense(CLASSES, name="head")(L.GlobalAveragePooling1D()(_block(x))))
    _randomise(model, 0)
    ids = np.array([[3, 5, 7, 1, 2], [1, 2, 3, 4, 5]], np.int32)
    graph = build_graph(model)
    assert [op.kind for op in graph.ops[:4]] == ["constant"] * 4
    x, _ = graph.text.embed(ids)
    result = _explain(model, x, "attnlrp")
    np.testing.assert_allclose(result.logits, ops.convert_to_numpy(model(ids)), rtol=1e-4, atol=1e-4)
    position = _weights(model, "pos")[0][None]
    logits, R = _reference(model, x + position, result.targets, "attnlrp")
    np.testing.assert_allclose(result.logits, logits, rtol=1e-4, atol=1e-4)
    assert relative_max_diff(result.relevance, x * R / _stab(x + position)) < 1e-4
    gradient = _explain(model, x, "attnlrp", method="gradient").relevance
    assert np.isfinite(gradient).all() and np.abs(gradient).max() > 0


def test_a_class_token_is_a_constant_looked_up_and_read_back_by_slicing():
    """ViT's class token: an Embedding of a constant id, concatenated before the patches;
    the head reads the first token (``x[:, 0]``)."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((T, D))
    cls = L.Embedding(1, D, name="cls")(ops.zeros_like(inputs[:, :1, 0], dtype="int32"))
    x = L.Concatenate(axis=1)([cls, inputs])
    x = x + L.Embedding(T + 1, D)(ops.cumsum(ops.ones_like(x[..., 0], dtype="int32"), axis=1) - 1)
    model = keras.Model(inputs, L.Dense(CLASSES)(_block(x)[:, 0]))
    x = _inputs()
    result = _explain(model, x, "cp-lrp")
    np.testing.assert_allclose(result.logits, ops.convert_to_numpy(model(x)), rtol=1e-4, atol=1e-4)
    assert np.isfinite(result.relevance).all() and np.abs(result.relevance).max() > 0


def _rolled(model, x):
    """Abnar & Zuidema's rollout of the one block's attention, (N, T, T), in NumPy."""
    a = _layernorm(x.astype(np.float64), *_weights(model, "ln1"))[1]
    weights = _attention_forward(model, a, a, False, False, None)["weights"].mean(1)
    return 0.5 * weights + 0.5 * np.eye(weights.shape[-1])


def test_rollout_of_a_mean_pooled_model_averages_every_row_over_the_features():
    model, x = _model(), _inputs()
    relevance = _explain(model, x, "attnlrp", method="rollout").relevance
    expected = _rolled(model, x).mean(1)[..., None] / D * np.ones(D)
    assert relative_max_diff(relevance, expected) < 1e-5


def test_rollout_of_a_class_token_model_reads_its_row_and_leaves_the_constants_out():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((T - 1, D))
    cls = L.Embedding(1, D, name="cls")(ops.zeros_like(inputs[:, :1, 0], dtype="int32"))
    x = L.Concatenate(axis=1)([cls, inputs])
    ids = ops.cumsum(ops.ones_like(x[..., 0], dtype="int32"), 1) - 1
    x = L.Add()([x, L.Embedding(T, D, name="pos")(ids)])
    model = keras.Model(inputs, L.Dense(CLASSES)(_block(x)[:, 0]))
    x = _inputs()[:, 1:]
    relevance = _explain(model, x, "attnlrp", method="rollout").relevance
    tokens = np.concatenate([_weights(model, "cls")[0][None].repeat(len(x), 0), x], 1) \
        + _weights(model, "pos")[0]
    expected = _rolled(model, tokens)[:, 0, 1:, None] / D * np.ones(D)
    assert relative_max_diff(relevance, expected) < 1e-5


def test_rollout_needs_attention():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((T, D))
    model = keras.Model(inputs, L.Dense(CLASSES)(L.Flatten()(inputs)))
    with pytest.raises(XaiError, match="method rollout explains attention models"):
        _explain(model, _inputs(), "attnlrp", method="rollout")
