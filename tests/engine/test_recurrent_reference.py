"""Tests of the NumPy recurrent LRP reference itself (recurrent_reference.py): its forward
pass is Keras' (masking and Bidirectional alignment included), relevance is conserved
where the rules conserve it, masked tokens get none, relevance respects the direction of
time, and a 1-unit LSTM / GRU matches a computation by hand."""

import math

import keras
import numpy as np
import pytest
from recurrent_reference import forward, lrp

L = keras.layers
T, V, D, H = 6, 12, 4, 3
N_CLASSES = 3


def _randomize(model, seed, zero_biases=False):
    rng = np.random.default_rng(seed)
    for weight in model.weights:
        if "embeddings" in weight.path:
            value = rng.normal(0, 1.0, weight.shape)
        elif "bias" in weight.path:
            value = np.zeros(weight.shape) if zero_biases else rng.normal(0, 0.4, weight.shape)
        else:
            value = rng.normal(0, 0.6, weight.shape)
        weight.assign(value.astype("float32"))


def build(body, mask_zero=True, head="dense-softmax", seed=0, zero_biases=False, functional=True,
          hidden_relu=False):
    """Embedding -> body layers -> [Dense relu] -> Dense head, with random weights.

    head: "dense-softmax" (Dense(C, softmax)), "activation-softmax" (Dense + Activation),
    "softmax-layer" (Dense + Softmax), "linear" (Dense only)."""
    keras.utils.set_random_seed(seed)
    layers = [L.Embedding(V, D, mask_zero=mask_zero), *body]
    if hidden_relu:
        layers.append(L.Dense(5, activation="relu", use_bias=not zero_biases))
    use_bias = not zero_biases
    if head == "dense-softmax":
        layers.append(L.Dense(N_CLASSES, activation="softmax", use_bias=use_bias))
    else:
        layers.append(L.Dense(N_CLASSES, use_bias=use_bias))
        if head == "activation-softmax":
            layers.append(L.Activation("softmax"))
        elif head == "softmax-layer":
            layers.append(L.Softmax())
    if functional:
        inputs = keras.Input((T,), dtype="int32")
        x = inputs
        for layer in layers:
            x = layer(x)
        model = keras.Model(inputs, x)
    else:
        model = keras.Sequential([keras.Input((T,), dtype="int32"), *layers])
    _randomize(model, seed + 100, zero_biases)
    return model


def tokens(n=6, seed=1):
    ids = np.random.default_rng(seed).integers(1, V, (n, T)).astype(np.int32)
    ids[1, 3:] = 0                  # padded at the end
    ids[2, :4] = 0                  # padded at the start
    ids[3, [1, 3]] = 0              # holes in the middle
    ids[4, 1:] = 0                  # a single token
    return ids


def keras_logits(model, ids):
    """Keras' pre-softmax output: the model up to the last Dense, plus that Dense's affine map."""
    dense_index = max(i for i, la in enumerate(model.layers) if isinstance(la, L.Dense))
    head = model.layers[dense_index]
    features = keras.Model(model.inputs, model.layers[dense_index - 1].output).predict(ids, verbose=0)
    w = [np.asarray(a, np.float64) for a in head.get_weights()]
    z = features.astype(np.float64) @ w[0] + (w[1] if head.use_bias else 0.0)
    assert _act(head) in ("softmax", "linear")
    return z


def _act(layer):
    return layer.activation.__name__


def _softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def rel_diff(actual, expected):
    return float(np.abs(actual - expected).max() / np.abs(expected).max())


ZOO = {
    "lstm": lambda: [L.LSTM(H)],
    "gru": lambda: [L.GRU(H)],
    "gru-reset-before": lambda: [L.GRU(H, reset_after=False)],
    "lstm-no-bias": lambda: [L.LSTM(H, use_bias=False)],
    "lstm-backwards": lambda: [L.LSTM(H, go_backwards=True)],
    "gru-backwards": lambda: [L.GRU(H, go_backwards=True)],
    "lstm-seq-max": lambda: [L.LSTM(H, return_sequences=True), L.GlobalMaxPooling1D()],
    "lstm-seq-avg": lambda: [L.LSTM(H, return_sequences=True), L.GlobalAveragePooling1D()],
    "gru-seq-avg": lambda: [L.GRU(H, return_sequences=True), L.GlobalAveragePooling1D()],
    "gru-reset-before-seq-max": lambda: [L.GRU(H, return_sequences=True, reset_after=False),
                                         L.GlobalMaxPooling1D()],
    "lstm-backwards-seq-avg": lambda: [L.LSTM(H, return_sequences=True, go_backwards=True),
                                       L.GlobalAveragePooling1D()],
    "gru-backwards-seq-max": lambda: [L.GRU(H, return_sequences=True, go_backwards=True),
                                      L.GlobalMaxPooling1D()],
    "bi-lstm-concat": lambda: [L.Bidirectional(L.LSTM(H))],
    "bi-gru-sum": lambda: [L.Bidirectional(L.GRU(H), merge_mode="sum")],
    "bi-lstm-sum-seq-max": lambda: [L.Bidirectional(L.LSTM(H, return_sequences=True), merge_mode="sum"),
                                    L.GlobalMaxPooling1D()],
    "bi-gru-concat-seq-avg": lambda: [L.Bidirectional(L.GRU(H, return_sequences=True, reset_after=False)),
                                      L.GlobalAveragePooling1D()],
    "stacked": lambda: [L.SpatialDropout1D(0.3), L.LSTM(H, return_sequences=True, go_backwards=True),
                        L.Dropout(0.5), L.GRU(H, return_sequences=True), L.GlobalMaxPooling1D()],
    "stacked-bidirectional": lambda: [
        L.Bidirectional(L.LSTM(H, return_sequences=True), merge_mode="sum"), L.Dropout(0.2),
        L.Bidirectional(L.GRU(2, return_sequences=True)), L.Bidirectional(L.GRU(2))],
    # the wrapped layer may run backwards only with an explicit backward layer (which then runs forwards)
    "bi-explicit-backward-layer": lambda: [
        L.Bidirectional(L.LSTM(H, return_sequences=True, go_backwards=True),
                        backward_layer=L.LSTM(H, return_sequences=True)), L.GlobalAveragePooling1D()],
    "stacked-seq-avg": lambda: [L.GRU(H, return_sequences=True),
                                L.Bidirectional(L.LSTM(2, return_sequences=True), merge_mode="concat"),
                                L.GlobalAveragePooling1D()],
}


@pytest.mark.parametrize("name", ZOO)
@pytest.mark.parametrize("mask_zero", [True, False])
def test_forward_is_keras_predict_without_softmax(name, mask_zero):
    model = build(ZOO[name](), mask_zero=mask_zero, hidden_relu=name.startswith("stacked"))
    ids = tokens()
    logits = forward(model, ids)
    assert logits.shape == (len(ids), N_CLASSES) and logits.dtype == np.float64
    assert rel_diff(logits, keras_logits(model, ids)) < 1e-5
    assert rel_diff(_softmax(logits), model.predict(ids, verbose=0)) < 1e-5


@pytest.mark.parametrize("head", ["activation-softmax", "softmax-layer", "linear"])
@pytest.mark.parametrize("functional", [True, False])
def test_forward_heads_and_model_kinds(head, functional):
    model = build([L.Bidirectional(L.GRU(H, return_sequences=True)), L.GlobalMaxPooling1D()],
                  head=head, functional=functional, seed=3)
    ids = tokens()
    logits = forward(model, ids)
    assert rel_diff(logits, keras_logits(model, ids)) < 1e-5
    expected = model.predict(ids, verbose=0)
    assert rel_diff(logits if head == "linear" else _softmax(logits), expected) < 1e-5


def test_masked_steps_are_keras_semantics():
    """The sequence output itself: carried output at masked steps for a plain layer (in
    processing order with go_backwards), zeros inside Bidirectional, backward half in time order."""
    from recurrent_reference import _rnn_output, _run

    ids = tokens()
    mask = ids != 0
    for body in ([L.LSTM(H, return_sequences=True)], [L.GRU(H, return_sequences=True, go_backwards=True)],
                 [L.Bidirectional(L.LSTM(H, return_sequences=True))],
                 [L.Bidirectional(L.GRU(H, return_sequences=True), merge_mode="sum")],
                 [L.Bidirectional(L.LSTM(H, return_sequences=True, go_backwards=True),
                                  backward_layer=L.LSTM(H, return_sequences=True))]):
        model = build([*body, L.GlobalMaxPooling1D()])
        rnn = model.layers[2]
        expected = keras.Model(model.inputs, rnn.output).predict(ids, verbose=0)
        _, embedded, trace = _run(model, ids)
        assert trace[0][0] is rnn
        if isinstance(rnn, L.Bidirectional):
            y, y_rev = trace[0][3][:2]
            seq = np.concatenate([y, y_rev], -1) if rnn.merge_mode == "concat" else y + y_rev
            # zeros at masked steps; a forward layer that runs backwards (explicit backward
            # layer) emits in processing order and the backward half is flipped: both reversed
            zero_at = ~mask if not rnn.forward_layer.go_backwards else ~mask[:, ::-1]
            assert np.all(seq[zero_at] == 0)
        else:
            seq = _rnn_output(rnn, embedded, mask)[0]
            order = seq if not rnn.go_backwards else seq[:, ::-1]      # back to time order
            for n, t in zip(*np.nonzero(~mask)):
                prev = t - 1 if not rnn.go_backwards else t + 1
                carried = order[n, prev] if 0 <= prev < T else 0.0
                np.testing.assert_array_equal(order[n, t], carried)   # the previous output
        assert rel_diff(seq, expected) < 1e-5


# --------------------------------------------------------------------------------------------
# relevance


CONSERVING = {
    "lstm": lambda: [L.LSTM(H)],
    "gru": lambda: [L.GRU(H)],
    "gru-reset-before": lambda: [L.GRU(H, reset_after=False)],
    "lstm-backwards-seq-max": lambda: [L.LSTM(H, return_sequences=True, go_backwards=True),
                                       L.GlobalMaxPooling1D()],
    "gru-seq-max": lambda: [L.GRU(H, return_sequences=True), L.GlobalMaxPooling1D()],
    "bi-lstm-concat-seq-max": lambda: [L.Bidirectional(L.LSTM(H, return_sequences=True)),
                                       L.GlobalMaxPooling1D()],
    "bi-gru-concat": lambda: [L.Bidirectional(L.GRU(H, reset_after=False))],
    "stacked": lambda: [L.LSTM(H, return_sequences=True), L.Dropout(0.5),
                        L.Bidirectional(L.GRU(2, return_sequences=True)),
                        L.GlobalMaxPooling1D()],
}


def _explained_logits(model, ids, target):
    return forward(model, ids)[np.arange(len(ids)), target]


@pytest.mark.parametrize("name", CONSERVING)
@pytest.mark.parametrize("mask_zero", [True, False])
def test_conservation_without_biases(name, mask_zero):
    model = build(CONSERVING[name](), mask_zero=mask_zero, zero_biases=True, head="linear",
                  hidden_relu=name == "stacked")
    ids = tokens()
    target = np.arange(len(ids)) % N_CLASSES
    R = lrp(model, ids, target, epsilon=1e-9)
    assert R.shape == (len(ids), T, D)
    np.testing.assert_allclose(R.sum((1, 2)), _explained_logits(model, ids, target), rtol=1e-6, atol=0)


@pytest.mark.parametrize("name", ["lstm", "gru", "bi-lstm-concat-seq-max", "stacked"])
def test_bias_false_conserves_with_biases(name):
    """With bias=False the denominators leave the biases out, so nothing is absorbed."""
    model = build(CONSERVING[name](), hidden_relu=name == "stacked", seed=5)
    ids = tokens()
    target = np.full(len(ids), 1)
    logit = _explained_logits(model, ids, target)
    # (epsilon 1e-12: in "stacked" some GRU pre-activations are ~1e-4, where 1e-9 leaks 1e-5)
    R = lrp(model, ids, target, epsilon=1e-12, bias=False)
    np.testing.assert_allclose(R.sum((1, 2)), logit, rtol=1e-6, atol=0)
    # with the biases in the denominators they absorb relevance
    R_bias = lrp(model, ids, target, epsilon=1e-9)
    assert np.abs(R_bias.sum((1, 2)) - logit).max() > 1e-3


def test_average_pooling_and_sum_merge_conserve_up_to_their_epsilon():
    model = build([L.Bidirectional(L.LSTM(H, return_sequences=True), merge_mode="sum"),
                   L.GlobalAveragePooling1D()], zero_biases=True, head="linear", seed=7)
    ids = tokens()
    target = np.zeros(len(ids), int)
    R = lrp(model, ids, target, epsilon=1e-9)
    np.testing.assert_allclose(R.sum((1, 2)), _explained_logits(model, ids, target), rtol=1e-3)


@pytest.mark.parametrize("name", ["lstm-seq-avg", "gru-backwards-seq-max", "bi-gru-sum", "stacked",
                                  "stacked-bidirectional", "lstm-backwards",
                                  "bi-explicit-backward-layer"])
def test_masked_tokens_get_no_relevance(name):
    ids = tokens()
    model = build(ZOO[name](), mask_zero=True, hidden_relu=name.startswith("stacked"))
    R = lrp(model, ids, np.full(len(ids), 2), epsilon=1e-3)
    assert np.all(R[ids == 0] == 0.0)
    # (not necessarily in every row: a layer after a go_backwards sequence reads it with the
    # unreversed mask, so it may see only the zero outputs of the masked steps)
    assert np.abs(R[ids != 0]).sum() > 0
    # without the mask, token 0 is a word like any other
    unmasked = build(ZOO[name](), mask_zero=False, hidden_relu=name.startswith("stacked"))
    assert np.abs(lrp(unmasked, ids, np.full(len(ids), 2))[ids == 0]).sum() > 0


def test_relevance_depends_on_target_and_epsilon():
    model = build(ZOO["gru"](), seed=2)
    ids = tokens()
    R0 = lrp(model, ids, np.zeros(len(ids), int))
    R1 = lrp(model, ids, np.ones(len(ids), int))
    assert np.abs(R0 - R1).max() > 1e-3
    assert np.abs(lrp(model, ids, np.zeros(len(ids), int), epsilon=1.0) - R0).max() > 1e-4


@pytest.mark.parametrize("kind", ["bidirectional-forward-half", "bidirectional-backward-half",
                                  "forwards", "go-backwards"])
def test_relevance_respects_the_direction_of_time(kind):
    """A 1-unit sequence output -> max pooling -> a Dense reading one channel: an output at
    time p of a layer running forwards depends on tokens <= p only, one of a layer running
    backwards on tokens >= p only, so relevance must be zero on the other side and nonzero at
    p. (A go_backwards layer's sequence is in processing order: index k is time T-1-k.)"""
    keras.utils.set_random_seed(11)
    inputs = keras.Input((T,), dtype="int32")
    embedded = L.Embedding(V, D)(inputs)
    if kind.startswith("bidirectional"):
        seq = L.Bidirectional(L.LSTM(1, return_sequences=True))(embedded)
    else:
        seq = L.GRU(1, return_sequences=True, go_backwards=kind == "go-backwards")(embedded)
    model = keras.Model(inputs, L.Dense(1, use_bias=False)(L.GlobalMaxPooling1D()(seq)))
    _randomize(model, 12)
    read = 1 if kind == "bidirectional-backward-half" else 0
    kernel = np.zeros(model.layers[-1].kernel.shape, "float32")
    kernel[read] = 1.0
    model.layers[-1].kernel.assign(kernel)
    ids = np.random.default_rng(4).integers(0, V, (8, T))
    p = keras.Model(inputs, seq).predict(ids, verbose=0)[:, :, read].argmax(1)
    if kind == "go-backwards":
        p = T - 1 - p
    runs_backwards = kind in ("bidirectional-backward-half", "go-backwards")
    R = lrp(model, ids, np.zeros(len(ids), int)).sum(-1)
    for n in range(len(ids)):
        dead = np.arange(T) < p[n] if runs_backwards else np.arange(T) > p[n]
        assert np.all(R[n, dead] == 0)
        assert R[n, p[n]] != 0


# --------------------------------------------------------------------------------------------
# by hand


def _sig(x):
    return 1 / (1 + math.exp(-x))


def _f32(values):
    """The float32 values Keras stores, as Python floats (so the hand computation is exact)."""
    return [float(np.float32(v)) for v in values]


def _stab(z, eps):
    return z + (eps if z >= 0 else -eps)


def _lstm_model(mask_zero=False):
    inputs = keras.Input((2,), dtype="int32")
    h = L.LSTM(1)(L.Embedding(3, 1, mask_zero=mask_zero)(inputs))
    model = keras.Model(inputs, L.Dense(2)(h))
    emb = _f32([0.0, 0.7, -1.3])
    Wk = _f32([0.5, -0.4, 1.2, 0.3])          # [i, f, g, o]
    Uk = _f32([-0.6, 0.8, 0.9, -0.2])
    bk = _f32([0.1, 0.2, -0.3, 0.05])
    model.set_weights([np.array(emb, "float32")[:, None], np.array([Wk], "float32"),
                       np.array([Uk], "float32"), np.array(bk, "float32"),
                       np.array([[0.4, -1.1]], "float32"), np.array([0.25, -0.5], "float32")])
    return model, emb, Wk, Uk, bk, tuple(_f32([-1.1, -0.5]))


@pytest.mark.parametrize("bias", [True, False])
def test_lstm_by_hand(bias):
    model, emb, Wk, Uk, bk, (w_out, b_out) = _lstm_model()
    eps = 0.01
    xs = [emb[1], emb[2]]             # tokens [1, 2], explain class 1

    def step(x, h, c):
        i, f, o = (_sig(x * Wk[k] + h * Uk[k] + bk[k]) for k in (0, 1, 3))
        pre_g = x * Wk[2] + h * Uk[2] + bk[2]
        g = math.tanh(pre_g)
        c_new = f * c + i * g
        return dict(i=i, f=f, g=g, o=o, pre_g=pre_g, c=c_new, h=o * math.tanh(c_new), h_prev=h, c_prev=c)

    s0 = step(xs[0], 0.0, 0.0)
    s1 = step(xs[1], s0["h"], s0["c"])
    logit = s1["h"] * w_out + b_out
    b = 1.0 if bias else 0.0
    # Dense
    R_h1 = s1["h"] * w_out * logit / _stab(s1["h"] * w_out + b * b_out, eps)
    # step 1: all to c1; c1 = f c0 + i g
    R_c1 = R_h1
    R_c0 = s1["f"] * s1["c_prev"] * R_c1 / _stab(s1["c"], eps)
    R_g1 = s1["i"] * s1["g"] * R_c1 / _stab(s1["c"], eps)
    zg1 = xs[1] * Wk[2] + s1["h_prev"] * Uk[2] + b * bk[2]
    R_x1 = xs[1] * Wk[2] * R_g1 / _stab(zg1, eps)
    R_h0 = s1["h_prev"] * Uk[2] * R_g1 / _stab(zg1, eps)
    # step 0: carries in
    R_c0_total = R_c0 + R_h0
    R_g0 = s0["i"] * s0["g"] * R_c0_total / _stab(s0["c"], eps)   # c_prev = 0
    zg0 = xs[0] * Wk[2] + b * bk[2]
    R_x0 = xs[0] * Wk[2] * R_g0 / _stab(zg0, eps)

    assert forward(model, np.array([[1, 2]]))[0, 1] == pytest.approx(logit, rel=1e-12)
    R = lrp(model, np.array([[1, 2]]), np.array([1]), epsilon=eps, bias=bias)
    assert R.shape == (1, 2, 1)
    np.testing.assert_allclose(R[0, :, 0], [R_x0, R_x1], rtol=1e-10)


def test_lstm_by_hand_masked_last_step():
    """Tokens [1, 0] with mask_zero: the output is h0, all relevance goes through step 0."""
    model, emb, Wk, _, bk, (w_out, b_out) = _lstm_model(mask_zero=True)
    eps = 0.01
    x = emb[1]
    i, o = _sig(x * Wk[0] + bk[0]), _sig(x * Wk[3] + bk[3])
    pre_g = x * Wk[2] + bk[2]
    g = math.tanh(pre_g)
    c = i * g
    h = o * math.tanh(c)
    logit = h * w_out + b_out
    R_h = h * w_out * logit / _stab(logit, eps)
    R_g = i * g * R_h / _stab(c, eps)
    R_x = x * Wk[2] * R_g / _stab(pre_g, eps)
    ids = np.array([[1, 0]])
    assert forward(model, ids)[0, 1] == pytest.approx(logit, rel=1e-12)
    assert model.predict(ids, verbose=0)[0, 1] == pytest.approx(logit, rel=1e-5)
    np.testing.assert_allclose(lrp(model, ids, np.array([1]), epsilon=eps)[0, :, 0], [R_x, 0.0], rtol=1e-10)


@pytest.mark.parametrize("reset_after", [True, False])
def test_gru_by_hand(reset_after):
    inputs = keras.Input((2,), dtype="int32")
    h_out = L.GRU(1, reset_after=reset_after)(L.Embedding(3, 1)(inputs))
    model = keras.Model(inputs, L.Dense(1)(h_out))
    emb = _f32([0.0, 0.9, -0.8])
    Wk = _f32([0.5, -0.7, 1.3])               # [z, r, n]
    Uk = _f32([0.4, 0.6, -1.1])
    b_in = _f32([0.1, -0.2, 0.3])
    b_rec = _f32([0.05, 0.15, -0.25] if reset_after else [0.0, 0.0, 0.0])
    bias = np.array([b_in, b_rec] if reset_after else b_in, "float32")
    w_out, b_out = _f32([0.8, 0.1])
    model.set_weights([np.array(emb, "float32")[:, None], np.array([Wk], "float32"),
                       np.array([Uk], "float32"), bias, np.array([[w_out]], "float32"),
                       np.array([b_out], "float32")])
    eps = 0.01

    def step(x, h):
        z = _sig(x * Wk[0] + b_in[0] + h * Uk[0] + b_rec[0])
        r = _sig(x * Wk[1] + b_in[1] + h * Uk[1] + b_rec[1])
        if reset_after:
            pre_n = x * Wk[2] + b_in[2] + r * (h * Uk[2] + b_rec[2])
        else:
            pre_n = x * Wk[2] + (r * h) * Uk[2] + b_in[2]
        n = math.tanh(pre_n)
        return dict(z=z, r=r, n=n, pre_n=pre_n, h=z * h + (1 - z) * n, h_prev=h)

    xs = [emb[2], emb[1]]               # tokens [2, 1]
    s0 = step(xs[0], 0.0)
    s1 = step(xs[1], s0["h"])
    logit = s1["h"] * w_out + b_out
    R_h1 = s1["h"] * w_out * logit / _stab(logit, eps)
    R_h0 = s1["z"] * s1["h_prev"] * R_h1 / _stab(s1["h"], eps)
    R_n1 = (1 - s1["z"]) * s1["n"] * R_h1 / _stab(s1["h"], eps)
    R_x1 = xs[1] * Wk[2] * R_n1 / _stab(s1["pre_n"], eps)
    R_h0 += s1["r"] * s0["h"] * Uk[2] * R_n1 / _stab(s1["pre_n"], eps)     # same form for both variants
    R_n0 = (1 - s0["z"]) * s0["n"] * R_h0 / _stab(s0["h"], eps)
    R_x0 = xs[0] * Wk[2] * R_n0 / _stab(s0["pre_n"], eps)

    ids = np.array([[2, 1]])
    assert forward(model, ids)[0, 0] == pytest.approx(logit, rel=1e-12)
    assert model.predict(ids, verbose=0)[0, 0] == pytest.approx(logit, rel=1e-5)
    np.testing.assert_allclose(lrp(model, ids, np.array([0]), epsilon=eps)[0, :, 0], [R_x0, R_x1], rtol=1e-10)


def test_pooling_by_hand():
    """Embedding -> pooling -> Dense: max pooling gives each channel's relevance to the first
    maximum (repeated tokens tie exactly), average pooling follows m_t a_t / n / stab'(z)."""
    ids = np.array([[3, 5, 3, 3, 0, 5], [0, 2, 0, 2, 4, 0]])
    target = np.array([1, 2])
    eps = 0.3
    for pooling in ("max", "avg"):
        inputs = keras.Input((T,), dtype="int32")
        emb = L.Embedding(V, D, mask_zero=True)
        pooled = (L.GlobalMaxPooling1D() if pooling == "max" else L.GlobalAveragePooling1D())(emb(inputs))
        model = keras.Model(inputs, L.Dense(N_CLASSES)(pooled))
        _randomize(model, 22)
        table = np.asarray(emb.get_weights()[0], np.float64)
        W, b = (np.asarray(w, np.float64) for w in model.layers[-1].get_weights())
        R = lrp(model, ids, target, epsilon=eps)
        for n in range(len(ids)):
            a = table[ids[n]]                                    # (T, D)
            m = (ids[n] != 0).astype(float)
            if pooling == "max":
                p = a.max(0)                                     # the mask is ignored
                first = np.array([np.flatnonzero(a[:, j] == p[j])[0] for j in range(D)])
            else:
                p = (m[:, None] * a).sum(0) / m.sum()
            logit = p @ W[:, target[n]] + b[target[n]]
            R_p = p * W[:, target[n]] * logit / (logit + (eps if logit >= 0 else -eps))
            expected = np.zeros((T, D))
            if pooling == "max":
                expected[first, np.arange(D)] = R_p
            else:
                expected = m[:, None] * a / m.sum() * (R_p / (p + np.where(p >= 0, 1e-6, -1e-6)))
            np.testing.assert_allclose(R[n], expected, rtol=1e-10, atol=1e-15)
        if pooling == "max":        # repeats of an earlier token (ties) get nothing
            assert np.all(R[0, [2, 3, 5]] == 0) and np.all(R[1, 3] == 0)


def test_bidirectional_sum_by_hand():
    """One time step, 1-unit GRU both ways, merge "sum": the split uses eps 1e-6, the rest epsilon."""
    inputs = keras.Input((1,), dtype="int32")
    seq = L.Bidirectional(L.GRU(1), merge_mode="sum")(L.Embedding(2, 1)(inputs))
    model = keras.Model(inputs, L.Dense(1)(seq))
    _randomize(model, 31)
    eps = 0.5
    x = float(model.layers[1].get_weights()[0][1, 0])
    w_out, b_out = (float(np.ravel(v)[0]) for v in model.layers[-1].get_weights())

    def direction(layer):
        Wk, _, bias = (np.asarray(v, np.float64) for v in layer.get_weights())     # h_prev = 0
        z = _sig(x * Wk[0, 0] + bias[0, 0] + bias[1, 0])
        pre_n = x * Wk[0, 2] + bias[0, 2] + _sig(x * Wk[0, 1] + bias[0, 1] + bias[1, 1]) * bias[1, 2]
        n = math.tanh(pre_n)
        h = (1 - z) * n
        return h, lambda R: x * Wk[0, 2] * (h * R / _stab(h, eps)) / _stab(pre_n, eps)

    bi = model.layers[2]
    y_f, back_f = direction(bi.forward_layer)
    y_b, back_b = direction(bi.backward_layer)
    y = y_f + y_b
    logit = w_out * y + b_out
    R_y = w_out * y * logit / _stab(logit, eps)
    expected = back_f(y_f / _stab(y, 1e-6) * R_y) + back_b(y_b / _stab(y, 1e-6) * R_y)
    ids = np.array([[1]])
    assert forward(model, ids)[0, 0] == pytest.approx(logit, rel=1e-12)
    assert lrp(model, ids, np.array([0]), epsilon=eps)[0, 0, 0] == pytest.approx(expected, rel=1e-10)
