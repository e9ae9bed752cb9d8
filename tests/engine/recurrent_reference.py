"""A plain-NumPy reference of LRP for Keras text classifiers with recurrent layers.

Written from the equations of Arras et al. (2017), "Explaining Recurrent Neural Network
Predictions in Sentiment Analysis" (epsilon rule for the linear maps, "signal-take-all"
for the gates), independently of the engine, so that the engine can be tested against it.
Everything runs in float64 with loops over time steps; clarity over speed.

Public functions
----------------
``forward(model, tokens) -> (N, C)``
    The model's pre-softmax output (a final ``Dense(..., activation="softmax")`` is made
    linear, a trailing ``Activation("softmax")`` / ``Softmax`` layer is dropped).
``lrp(model, tokens, target, epsilon=1e-3, bias=True) -> (N, T, D)``
    Relevance at the embedding output, starting from ``one_hot(target) * logit``.
    Word relevance is ``R.sum(-1)``.

Supported chain: ``Input((T,), int)`` -> ``Embedding(mask_zero=True|False)`` -> any of
``Dropout`` / ``SpatialDropout1D`` (identity), ``LSTM``, ``GRU`` (``reset_after`` True or
False), ``Bidirectional(LSTM|GRU, merge_mode="concat"|"sum")``, ``GlobalMaxPooling1D``,
``GlobalAveragePooling1D``, ``Dense`` (linear or relu; softmax only at the end),
``Activation("linear"|"relu")``.

Keras masking semantics (Keras 3.15, TensorFlow 2.21 backend on CPU), found by experiment
and by reading ``keras/src/backend/tensorflow/rnn.py`` and ``layers/rnn/bidirectional.py``;
``forward`` reproduces ``model.predict`` for all of them (see test_recurrent_reference.py):

* The mask is ``tokens != 0`` from ``Embedding(mask_zero=True)``. ``Dropout``,
  ``SpatialDropout1D``, ``Dense`` and ``Activation`` pass it on unchanged; an RNN with
  ``return_sequences=True`` passes its *input* mask on unchanged (also with
  ``go_backwards=True``, although that layer's output sequence is in reversed time order,
  so the mask is then misaligned with it: Keras does it this way and so does ``forward``);
  an RNN with ``return_sequences=False`` and the global poolings consume it.
* RNN step on a masked time step: the cell is evaluated but its result is discarded; every
  state (h, and c for LSTM) is carried over unchanged from the previous step.
* RNN output at a masked step (``return_sequences=True``): with the default
  ``zero_output_for_mask=False`` it is the previous step's *output* (in processing
  order), i.e. the carried h, and zeros before the first unmasked step (initial output is
  zero). With ``zero_output_for_mask=True`` it is zero.
* ``return_sequences=False``: the output is that of the last processed step, i.e. the
  carried h = the state after the last *unmasked* step (for ``zero_output_for_mask=True``
  it would be zero if the last processed step is masked).
* ``go_backwards=True``: the layer processes time T-1 ... 0, and its
  ``return_sequences=True`` output is in *processing* order (index k holds the output after
  processing time T-1-k); it is NOT reversed back.
* ``Bidirectional``: the backward layer is a copy of the wrapped layer with
  ``go_backwards=True`` (set, not flipped: wrapping a layer that already has
  ``go_backwards=True`` raises ValueError unless an explicit ``backward_layer`` that runs
  forwards is given; ``forward`` handles that case too, by the same rules). Its
  constructor forces ``zero_output_for_mask = return_sequences`` on both sub-layers, so with
  ``return_sequences=True`` BOTH directions output zeros at masked steps (not the carried
  output). The backward layer's sequence output is flipped with ``ops.flip`` (a plain
  reversal over all T steps, not a per-sequence ``reverse_sequence``), so it is back in
  time order: position t holds the backward state after processing T-1 ... t. With
  ``return_sequences=False`` the backward half is the backward layer's final state: the
  state after processing time 0 (the state after its last unmasked step: the first
  unmasked token in time order), and the forward half the state after its last unmasked
  step. Merge ``concat`` is ``[forward, backward]`` on the last axis, ``sum`` adds them.
  The wrapper's own sequence output is not flipped: a wrapped layer running backwards
  (explicit ``backward_layer`` case) emits in processing order.
* ``GlobalMaxPooling1D`` ignores the mask (Keras warns that it "does not support masking";
  the max runs over all T steps, masked steps included: their outputs are carried values or
  zeros, see above; directly after the Embedding, masked tokens' vectors take part).
  ``GlobalAveragePooling1D`` uses it: ``sum_t m_t a_t / sum_t m_t``.
* Not followed here: on a GPU with cuDNN, for right-padded masks, Keras' fused kernels give
  zeros (not the carried output) at padded steps for plain layers with
  ``return_sequences=True`` (``_cudnn_lstm`` / ``_cudnn_gru``); ``forward`` follows the
  CPU / generic-loop semantics above.

LRP conventions (the contract), ``stab(z) = z + eps * (+1 if z >= 0 else -1)``:

* Linear maps (Dense, the LSTM cell input g, the GRU candidate n): epsilon rule
  ``R_j = sum_k a_j w_jk R_k / stab(z_k)`` with the bias in z (``bias=False``: z without
  the bias). Relu: relevance passes unchanged.
* Max pooling: each channel's relevance to the first time step holding the maximum.
  Average pooling: ``R_t = (m_t a_t / n) / stab'(z) R`` with eps 1e-6. Bidirectional sum:
  ``a / stab'(a + b) R`` and ``b / stab'(a + b) R`` with eps 1e-6; concat: split.
* LSTM, backwards over processing steps with carries R_h, R_c: ``R_h_t = upstream_t +
  carry``; all of it to c_t; ``c_t = f c_prev + i g`` split with ``stab(c_t)``; g's share
  to ``pre_g = x W_g + h_prev U_g + b_g`` by the epsilon rule; gates get nothing.
* GRU: ``h_t = z h_prev + (1 - z) n`` split with ``stab(h_t)``; n's share to pre_n
  (linear in x and h_prev with r held constant; for ``reset_after=False`` the relevance of
  ``r * h_prev`` all goes to h_prev); gates get nothing.
* Masked step: no relevance to x_t; the state is carried unchanged, so R_h_t (upstream at t
  plus the h carry) becomes the h carry of the previous step, and the c carry passes as it
  is (R_h_t is NOT also added into c there: that would count it twice and break
  conservation). Upstream relevance at a masked step is kept: with a carried output it is
  the relevance of the carried state; with a zero output it is zero anyway.
  What reaches the (zero) initial state is dropped.
"""

import keras
import numpy as np

EPS_POOL = 1e-6   # the fixed epsilon of average pooling and of the Bidirectional sum merge


def stab(z, eps):
    """``z + eps * sign(z)`` with sign(0) = +1."""
    return z + np.where(z >= 0, eps, -eps)


def _act_name(fn):
    return getattr(fn, "__name__", str(fn))


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _apply_act(name, x):
    if name == "tanh":
        return np.tanh(x)
    if name == "sigmoid":
        return _sigmoid(x)
    if name == "relu":
        return np.maximum(x, 0.0)
    if name == "linear":
        return x
    raise NotImplementedError(f"activation {name!r}")


# ---------------------------------------------------------------------------------------------
# the chain of layers


def _chain(model):
    """The model's layers in order, without the input layer and without a final softmax.

    Returns ``(layers, last_dense_linear)``: the second is True when the last Dense's
    softmax is to be treated as linear."""
    layers = [la for la in model.layers if not isinstance(la, keras.layers.InputLayer)]
    for la in layers:
        if isinstance(la, keras.Model):
            raise NotImplementedError("nested models")
    last_linear = False
    while layers:
        last = layers[-1]
        if isinstance(last, keras.layers.Softmax) or (
                isinstance(last, keras.layers.Activation) and _act_name(last.activation) == "softmax"):
            layers = layers[:-1]
            continue
        break
    if layers and isinstance(layers[-1], keras.layers.Dense) \
            and _act_name(layers[-1].activation) == "softmax":
        last_linear = True
    return layers, last_linear


def _dense_params(layer):
    w = layer.get_weights()
    kernel = np.asarray(w[0], np.float64)
    b = np.asarray(w[1], np.float64) if layer.use_bias else np.zeros(kernel.shape[1])
    return kernel, b


def _cell_params(layer):
    """Kernel, recurrent kernel, bias (or None) of an LSTM / GRU layer, float64."""
    cell = layer.cell
    w = [np.asarray(a, np.float64) for a in layer.get_weights()]
    if _act_name(cell.activation) != "tanh" or _act_name(cell.recurrent_activation) != "sigmoid":
        raise NotImplementedError("only tanh / sigmoid recurrent cells")
    kernel, recurrent = w[0], w[1]
    bias = w[2] if cell.use_bias else None
    return kernel, recurrent, bias


# ---------------------------------------------------------------------------------------------
# recurrent layers: forward with a record of every step, and the backward relevance pass


def _order(layer, T):
    return list(range(T - 1, -1, -1)) if layer.go_backwards else list(range(T))


def _lstm_forward(layer, x, mask):
    """Run an LSTM over x (N, T, D) in float64. Returns (outputs in Keras' order (N, T, H),
    last output (N, H), record) where record[k] holds the quantities of processing step k."""
    N, T, _ = x.shape
    W, U, b = _cell_params(layer)
    H = layer.cell.units
    if b is None:
        b = np.zeros(4 * H)
    h = np.zeros((N, H))
    c = np.zeros((N, H))
    out_prev = np.zeros((N, H))
    outs, record = [], []
    for t in _order(layer, T):
        xt = x[:, t]
        z = xt @ W + h @ U + b
        i = _sigmoid(z[:, :H])
        f = _sigmoid(z[:, H:2 * H])
        pre_g = z[:, 2 * H:3 * H]
        g = np.tanh(pre_g)
        o = _sigmoid(z[:, 3 * H:])
        c_new = f * c + i * g
        h_new = o * np.tanh(c_new)
        m = np.ones(N, bool) if mask is None else mask[:, t]
        record.append(dict(t=t, x=xt, h_prev=h, c_prev=c, i=i, f=f, g=g, pre_g=pre_g, c=c_new, m=m))
        mm = m[:, None]
        masked_out = np.zeros((N, H)) if layer.zero_output_for_mask else out_prev
        out = np.where(mm, h_new, masked_out)
        h = np.where(mm, h_new, h)
        c = np.where(mm, c_new, c)
        outs.append(out)
        out_prev = out
    return np.stack(outs, 1), outs[-1], record


def _gru_forward(layer, x, mask):
    N, T, _ = x.shape
    W, U, b = _cell_params(layer)
    H = layer.cell.units
    reset_after = layer.cell.reset_after
    if b is None:
        b = np.zeros((2, 3 * H)) if reset_after else np.zeros(3 * H)
    b_in, b_rec = (b[0], b[1]) if reset_after else (b, np.zeros(3 * H))
    h = np.zeros((N, H))
    out_prev = np.zeros((N, H))
    outs, record = [], []
    for t in _order(layer, T):
        xt = x[:, t]
        xz = xt @ W + b_in
        hz = h @ U[:, :2 * H] + b_rec[:2 * H]
        z = _sigmoid(xz[:, :H] + hz[:, :H])
        r = _sigmoid(xz[:, H:2 * H] + hz[:, H:2 * H])
        if reset_after:
            pre_n = xz[:, 2 * H:] + r * (h @ U[:, 2 * H:] + b_rec[2 * H:])
        else:
            pre_n = xz[:, 2 * H:] + (r * h) @ U[:, 2 * H:]
        n = np.tanh(pre_n)
        h_new = z * h + (1 - z) * n
        m = np.ones(N, bool) if mask is None else mask[:, t]
        record.append(dict(t=t, x=xt, h_prev=h, z=z, r=r, n=n, pre_n=pre_n, h=h_new, m=m))
        mm = m[:, None]
        masked_out = np.zeros((N, H)) if layer.zero_output_for_mask else out_prev
        out = np.where(mm, h_new, masked_out)
        h = np.where(mm, h_new, h)
        outs.append(out)
        out_prev = out
    return np.stack(outs, 1), outs[-1], record


def _rnn_forward(layer, x, mask):
    if isinstance(layer, keras.layers.LSTM):
        return _lstm_forward(layer, x, mask)
    if isinstance(layer, keras.layers.GRU):
        return _gru_forward(layer, x, mask)
    raise NotImplementedError(type(layer).__name__)


def _rnn_output(layer, x, mask):
    """Keras' output of a plain LSTM / GRU layer (sequence in processing order, or last)."""
    seq, last, record = _rnn_forward(layer, x, mask)
    return (seq if layer.return_sequences else last), record


def _lstm_relevance(layer, record, R_up, T, D, epsilon, bias):
    """R_up: (N, K, H) upstream relevance per processing step k (zeros where none)."""
    W, U, b = _cell_params(layer)
    H = layer.cell.units
    Wg, Ug = W[:, 2 * H:3 * H], U[:, 2 * H:3 * H]
    bg = b[2 * H:3 * H] if (b is not None and bias) else np.zeros(H)
    N = R_up.shape[0]
    R_x = np.zeros((N, T, D))
    R_h = np.zeros((N, H))
    R_c = np.zeros((N, H))
    for k in range(len(record) - 1, -1, -1):
        s = record[k]
        R_h_t = R_up[:, k] + R_h
        R_c_t = R_c + R_h_t                     # h = o * tanh(c): all to c
        q = R_c_t / stab(s["c"], epsilon)
        R_c_prev = s["f"] * s["c_prev"] * q
        R_g = s["i"] * s["g"] * q               # i gets none
        z_g = s["x"] @ Wg + s["h_prev"] @ Ug + bg
        q = R_g / stab(z_g, epsilon)
        R_xt = s["x"] * (q @ Wg.T)
        R_h_prev = s["h_prev"] * (q @ Ug.T)
        mm = s["m"][:, None]
        R_x[:, s["t"]] = np.where(mm, R_xt, 0.0)
        # masked step: (h, c) carried unchanged, so R_h_t stays with h and R_c with c (R_h_t
        # is not moved into c there: that would count it twice)
        R_h = np.where(mm, R_h_prev, R_h_t)
        R_c = np.where(mm, R_c_prev, R_c)
    return R_x


def _gru_relevance(layer, record, R_up, T, D, epsilon, bias):
    W, U, b = _cell_params(layer)
    H = layer.cell.units
    reset_after = layer.cell.reset_after
    Wn, Un = W[:, 2 * H:], U[:, 2 * H:]
    if b is None or not bias:
        b_in_n, b_rec_n = np.zeros(H), np.zeros(H)
    elif reset_after:
        b_in_n, b_rec_n = b[0, 2 * H:], b[1, 2 * H:]
    else:
        b_in_n, b_rec_n = b[2 * H:], np.zeros(H)
    N = R_up.shape[0]
    R_x = np.zeros((N, T, D))
    R_h = np.zeros((N, H))
    for k in range(len(record) - 1, -1, -1):
        s = record[k]
        R_h_t = R_up[:, k] + R_h
        q = R_h_t / stab(s["h"], epsilon)
        R_h_prev = s["z"] * s["h_prev"] * q
        R_n = (1 - s["z"]) * s["n"] * q          # z and r get none
        x, h_prev, r = s["x"], s["h_prev"], s["r"]
        if reset_after:
            z_n = x @ Wn + b_in_n + r * (h_prev @ Un + b_rec_n)
            q = R_n / stab(z_n, epsilon)
            R_xt = x * (q @ Wn.T)
            R_h_prev = R_h_prev + h_prev * ((r * q) @ Un.T)
        else:
            z_n = x @ Wn + (r * h_prev) @ Un + b_in_n
            q = R_n / stab(z_n, epsilon)
            R_xt = x * (q @ Wn.T)
            R_h_prev = R_h_prev + (r * h_prev) * (q @ Un.T)
        mm = s["m"][:, None]
        R_x[:, s["t"]] = np.where(mm, R_xt, 0.0)
        R_h = np.where(mm, R_h_prev, R_h_t)
    return R_x


def _rnn_relevance(layer, record, R_out, T, D, epsilon, bias):
    """Relevance of the input (N, T, D) (time order) from that of the layer's Keras output."""
    H = layer.cell.units
    N = R_out.shape[0]
    if layer.return_sequences:
        R_up = R_out                           # already in processing order
    else:
        R_up = np.zeros((N, len(record), H))
        R_up[:, -1] = R_out
    fn = _lstm_relevance if isinstance(layer, keras.layers.LSTM) else _gru_relevance
    return fn(layer, record, R_up, T, D, epsilon, bias)


# ---------------------------------------------------------------------------------------------
# the whole model


def _check_bidirectional(layer):
    if layer.merge_mode not in ("concat", "sum"):
        raise NotImplementedError(f"Bidirectional merge_mode {layer.merge_mode!r}")
    if layer.return_state:
        raise NotImplementedError("return_state")


def _run(model, tokens):
    """Forward pass in float64 with a record of what each layer needs for relevance.

    Returns (logits (N, C), embedding output (N, T, D), trace) where trace is a list of
    ``(layer, kind, input, info)`` in forward order."""
    tokens = np.asarray(tokens)
    layers, last_linear = _chain(model)
    if not layers or not isinstance(layers[0], keras.layers.Embedding):
        raise NotImplementedError("the chain must start with an Embedding")
    emb = layers[0]
    table = np.asarray(emb.get_weights()[0], np.float64)
    a = table[tokens]
    emb_out = a
    mask = (tokens != 0) if emb.mask_zero else None
    trace = []
    for idx, layer in enumerate(layers[1:], start=1):
        a_in = a
        if isinstance(layer, (keras.layers.Dropout, keras.layers.SpatialDropout1D)):
            trace.append((layer, "identity", a_in, None))
        elif isinstance(layer, keras.layers.Activation):
            name = _act_name(layer.activation)
            if name not in ("linear", "relu"):
                raise NotImplementedError(f"Activation {name!r}")
            a = _apply_act(name, a)
            trace.append((layer, "identity", a_in, None))
        elif isinstance(layer, keras.layers.Dense):
            kernel, b = _dense_params(layer)
            name = "linear" if (idx == len(layers) - 1 and last_linear) else _act_name(layer.activation)
            if name not in ("linear", "relu"):
                raise NotImplementedError(f"Dense activation {name!r}")
            a = _apply_act(name, a @ kernel + b)
            trace.append((layer, "dense", a_in, (kernel, b)))
        elif isinstance(layer, (keras.layers.LSTM, keras.layers.GRU)):
            if layer.return_state:
                raise NotImplementedError("return_state")
            a, record = _rnn_output(layer, a_in, mask)
            trace.append((layer, "rnn", a_in, record))
            if not layer.return_sequences:
                mask = None
        elif isinstance(layer, keras.layers.Bidirectional):
            _check_bidirectional(layer)
            fwd, bwd = layer.forward_layer, layer.backward_layer
            y, rec_f = _rnn_output(fwd, a_in, mask)
            y_rev, rec_b = _rnn_output(bwd, a_in, mask)
            if layer.return_sequences:
                y_rev = y_rev[:, ::-1]
            a = np.concatenate([y, y_rev], -1) if layer.merge_mode == "concat" else y + y_rev
            trace.append((layer, "bidirectional", a_in, (y, y_rev, rec_f, rec_b)))
            if not layer.return_sequences:
                mask = None
        elif isinstance(layer, keras.layers.GlobalMaxPooling1D):
            if layer.data_format != "channels_last" or layer.keepdims:
                raise NotImplementedError("GlobalMaxPooling1D options")
            idx_max = np.argmax(a_in, axis=1)          # first on ties; the mask is ignored
            a = a_in.max(axis=1)
            trace.append((layer, "maxpool", a_in, idx_max))
            mask = None
        elif isinstance(layer, keras.layers.GlobalAveragePooling1D):
            if layer.data_format != "channels_last" or layer.keepdims:
                raise NotImplementedError("GlobalAveragePooling1D options")
            m = np.ones(a_in.shape[:2]) if mask is None else mask.astype(np.float64)
            n = m.sum(1, keepdims=True)
            a = (a_in * m[:, :, None]).sum(1) / n
            trace.append((layer, "avgpool", a_in, (m, n)))
            mask = None
        else:
            raise NotImplementedError(f"layer {type(layer).__name__}")
    if a.ndim != 2:
        raise NotImplementedError("the model's output must be (N, C)")
    return a, emb_out, trace


def forward(model, tokens):
    """The model's logits (N, C), float64: ``model.predict`` without the final softmax."""
    return _run(model, tokens)[0]


def _dense_relevance(a, kernel, b, R, epsilon, bias):
    z = a @ kernel + (b if bias else 0.0)
    return a * ((R / stab(z, epsilon)) @ kernel.T)


def lrp(model, tokens, target, epsilon=1e-3, bias=True):
    """Epsilon-LRP relevance (N, T, D) at the embedding output for the logits ``target``."""
    logits, emb_out, trace = _run(model, tokens)
    target = np.asarray(target).reshape(-1)
    N = len(logits)
    R = np.zeros_like(logits)
    R[np.arange(N), target] = logits[np.arange(N), target]
    for layer, kind, a_in, info in reversed(trace):
        if kind == "identity":
            pass                                        # dropout; relu: unchanged
        elif kind == "dense":
            kernel, b = info
            R = _dense_relevance(a_in, kernel, b, R, epsilon, bias)
        elif kind == "maxpool":
            R_in = np.zeros_like(a_in)
            n_idx, c_idx = np.meshgrid(np.arange(a_in.shape[0]), np.arange(a_in.shape[2]), indexing="ij")
            R_in[n_idx, info, c_idx] = R
            R = R_in
        elif kind == "avgpool":
            m, n = info
            contrib = a_in * m[:, :, None] / n[:, :, None]
            z = contrib.sum(1)
            R = contrib * (R / stab(z, EPS_POOL))[:, None, :]
        elif kind == "rnn":
            T, D = a_in.shape[1:]
            R = _rnn_relevance(layer, info, R, T, D, epsilon, bias)
        elif kind == "bidirectional":
            y, y_rev, rec_f, rec_b = info
            if layer.merge_mode == "concat":
                H = y.shape[-1]
                R_f, R_b = R[..., :H], R[..., H:]
            else:
                s = stab(y + y_rev, EPS_POOL)
                R_f, R_b = y / s * R, y_rev / s * R
            if layer.return_sequences:
                R_b = R_b[:, ::-1]                      # back to the backward layer's order
            T, D = a_in.shape[1:]
            R = (_rnn_relevance(layer.forward_layer, rec_f, R_f, T, D, epsilon, bias)
                 + _rnn_relevance(layer.backward_layer, rec_b, R_b, T, D, epsilon, bias))
        else:
            raise AssertionError(kind)
    assert R.shape == emb_out.shape
    return R
