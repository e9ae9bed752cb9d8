"""Reference LRP heatmaps for a small bidirectional LSTM, made by the authors' own code.

The reference is `ArrasL/LRP_for_LSTM` (L. Arras et al., "Explaining Recurrent Neural
Network Predictions in Sentiment Analysis", WASSA 2017), a NumPy implementation. Its code
is not part of this repository: check it out somewhere else and point `--arras` at the
folder holding `LSTM_bidi.py` and `LRP_linear_layer.py`, e.g.

    git clone https://github.com/ArrasL/LRP_for_LSTM /tmp/arras
    .venv/bin/python scripts/make_arras_fixtures.py --arras /tmp/arras/code/LSTM

Their code is run unmodified. Their `LSTM_bidi.py` imports its helper as
`from code.LSTM.LRP_linear_layer import *`, and `code` is also a standard-library module,
so this script loads both files by path and registers the `code`/`code.LSTM` package names
in `sys.modules` only while `LSTM_bidi.py` is being imported (the previous entries are put
back afterwards). `LSTM_bidi.__init__` reads a pickled model from disk; this script skips it
(`LSTM_bidi.__new__`) and sets the same attributes (`E`, `Wxh_Left`, ...) directly, which
is what their DOC.md suggests ("adapt the `__init__` ... methods").

It draws seeded random weights, builds the same network in Keras 3
(Embedding -> Bidirectional(LSTM, concat) -> Dense without bias), checks that Keras' logits
equal theirs, and writes `tests/fixtures/arras_lstm/` (see the README there). Not run by
the tests.
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import types
from pathlib import Path

import numpy as np

OUT_DIR = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "arras_lstm"

V, E_DIM, H, C, T, N = 30, 5, 4, 3, 7, 6
SEED = 20170621
EPS = 0.001


def load_arras(folder: Path):
    """Import their LRP_linear_layer.py and LSTM_bidi.py from `folder`, unmodified."""
    saved = {k: sys.modules.get(k) for k in ("code", "code.LSTM", "code.LSTM.LRP_linear_layer")}
    try:
        pkg = types.ModuleType("code")
        pkg.__path__ = [str(folder.parent)]
        sub = types.ModuleType("code.LSTM")
        sub.__path__ = [str(folder)]
        pkg.LSTM = sub
        sys.modules["code"] = pkg
        sys.modules["code.LSTM"] = sub
        spec = importlib.util.spec_from_file_location(
            "code.LSTM.LRP_linear_layer", folder / "LRP_linear_layer.py")
        lin = importlib.util.module_from_spec(spec)
        sys.modules["code.LSTM.LRP_linear_layer"] = lin
        spec.loader.exec_module(lin)
        spec = importlib.util.spec_from_file_location("arras_LSTM_bidi", folder / "LSTM_bidi.py")
        bidi = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(bidi)
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v
    return bidi


def draw_weights(rng):
    """Their layout: W* (4H, .) with gates stacked as i, g, f, o; Why (C, H)."""
    w = {"E": rng.normal(size=(V, E_DIM))}
    for side in ("Left", "Right"):
        w[f"Wxh_{side}"] = rng.normal(size=(4 * H, E_DIM)) * 0.5
        w[f"bxh_{side}"] = rng.normal(size=(4 * H,)) * 0.5
        w[f"Whh_{side}"] = rng.normal(size=(4 * H, H)) * 0.5
        w[f"bhh_{side}"] = rng.normal(size=(4 * H,)) * 0.5
        w[f"Why_{side}"] = rng.normal(size=(C, H))
    return w


def their_net(bidi_module, w):
    net = bidi_module.LSTM_bidi.__new__(bidi_module.LSTM_bidi)  # skip the pickle-reading __init__
    for k, v in w.items():
        setattr(net, k, np.asarray(v, dtype=np.float64))
    return net


def to_keras_gates(m):
    """Rows stacked i, g, f, o (theirs) -> i, f, g(=c), o (Keras), along axis 0."""
    i, g, f, o = np.split(m, 4, axis=0)
    return np.concatenate([i, f, g, o], axis=0)


def keras_model(w):
    import keras

    inp = keras.Input((T,), dtype="int32")
    x = keras.layers.Embedding(V, E_DIM, mask_zero=False, name="embedding")(inp)
    x = keras.layers.Bidirectional(keras.layers.LSTM(H), merge_mode="concat", name="bilstm")(x)
    out = keras.layers.Dense(C, use_bias=False, name="logits")(x)
    model = keras.Model(inp, out, name="arras_bilstm")

    model.get_layer("embedding").set_weights([w["E"].astype(np.float32)])
    bi = model.get_layer("bilstm")
    for layer, side in ((bi.forward_layer, "Left"), (bi.backward_layer, "Right")):
        kernel = to_keras_gates(w[f"Wxh_{side}"]).T                 # (E, 4H)
        recurrent = to_keras_gates(w[f"Whh_{side}"]).T              # (H, 4H)
        bias = to_keras_gates(w[f"bxh_{side}"] + w[f"bhh_{side}"])  # (4H,)
        layer.set_weights([kernel.astype(np.float32), recurrent.astype(np.float32),
                           bias.astype(np.float32)])
    dense = np.concatenate([w["Why_Left"].T, w["Why_Right"].T], axis=0)  # (2H, C)
    model.get_layer("logits").set_weights([dense.astype(np.float32)])
    return model


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--arras", type=Path, required=True,
                        help="folder with their LSTM_bidi.py and LRP_linear_layer.py")
    parser.add_argument("--out", type=Path, default=OUT_DIR)
    args = parser.parse_args()
    folder = args.arras.resolve()
    bidi = load_arras(folder)
    try:
        commit = subprocess.run(["git", "-C", str(folder), "rev-parse", "HEAD"],
                                capture_output=True, text=True, check=True).stdout.strip()
    except Exception:
        commit = "(not a git checkout)"
    print("their code:", folder, "commit:", commit)

    rng = np.random.default_rng(SEED)
    w = draw_weights(rng)
    tokens = rng.integers(1, V, size=(N, T)).astype(np.int32)  # no padding, no 0
    net = their_net(bidi, w)

    scores, targets = [], []
    rel = {0.0: [], 1.0: []}
    rest = {0.0: [], 1.0: []}
    pre_min, pre_max = np.inf, -np.inf
    for n in range(N):
        seq = tokens[n].astype(np.int64)
        net.set_input(seq)
        s = net.forward()
        pre = np.concatenate([net.gates_pre_Left, net.gates_pre_Right])
        pre_min, pre_max = min(pre_min, pre.min()), max(pre_max, pre.max())
        target = int(np.argmax(s))
        scores.append(s)
        targets.append(target)
        for bf in (0.0, 1.0):
            Rx, Rx_rev, R_rest = net.lrp(seq, target, eps=EPS, bias_factor=bf)
            # lrp returns Rx_rev already flipped back (Rx_rev[::-1]): both in original order.
            rel[bf].append(Rx + Rx_rev)
            rest[bf].append(R_rest)
    scores = np.array(scores)
    targets = np.array(targets, dtype=np.int64)
    print(f"gate pre-activations in [{pre_min:.3f}, {pre_max:.3f}]")

    model = keras_model(w)
    k_scores = np.asarray(model.predict(tokens, verbose=0), dtype=np.float64)
    diff = np.abs(k_scores - scores).max()
    print(f"max |keras - theirs| on scores: {diff:.3e}")
    assert diff < 1e-5, diff

    print("targets:", targets.tolist())
    for bf in (0.0, 1.0):
        R = np.array(rel[bf])
        r = np.array(rest[bf])
        s_t = scores[np.arange(N), targets]
        tot = R.sum(axis=(1, 2)) + r
        print(f"bias_factor={bf}: s[target]={np.round(s_t, 6).tolist()}")
        print(f"  sum(R_input)={np.round(R.sum(axis=(1, 2)), 6).tolist()}  rest={np.round(r, 6).tolist()}")
        print(f"  max |sum(R_input)+rest - s[target]| = {np.abs(tot - s_t).max():.3e}")

    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    model.save(out / "model.keras")
    np.save(out / "tokens.npy", tokens)
    np.save(out / "scores.npy", scores.astype(np.float32))
    np.save(out / "target.npy", targets)
    for bf, tag in ((0.0, "0"), (1.0, "1")):
        np.save(out / f"relevance_bias{tag}.npy", np.array(rel[bf]).astype(np.float32))
        np.save(out / f"rest_bias{tag}.npy", np.array(rest[bf]).astype(np.float32))
    print("wrote", sorted(p.name for p in out.iterdir()))


if __name__ == "__main__":
    main()
