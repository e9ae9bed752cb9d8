"""Train the shipped text classifiers on the Debian description corpus (scripts/text_corpus.py).

Writes models/text_cnn.keras (integer token ids in), models/text_lstm.keras (raw strings in:
the adapted TextVectorization layer is its first layer), models/text_vocab.txt and
models/text_labels.txt, and prints each model's accuracy on the test split (and, with
--samples, on the held-out sample and the per-class sample texts). Deterministic; about
2 minutes on 2 CPU cores.

Tokeniser (the convention xai reimplements): keras.layers.TextVectorization with its defaults
(standardize="lower_and_strip_punctuation", split="whitespace"), max_tokens=MAX_TOKENS,
output_sequence_length=T, adapted on the training texts. Id 0 = padding, 1 = out of
vocabulary; text_vocab.txt lists the tokens from id 2 on, one a line (the file format
TextVectorization(vocabulary=path) reads). Longer documents are truncated at the end.

Run: python scripts/text_corpus.py --lists /tmp/debian-lists --samples sample_texts &&
     python scripts/train_text.py --samples sample_texts   (see models/README.md)
"""

import argparse
import csv
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from text_corpus import SECTIONS  # noqa: E402  (class order = output order)

MAX_TOKENS = 15000  # about the training tokens seen twice or more (28.5k distinct in all)
T = 128             # tokens per document: about the 90th percentile of the training lengths
EMBED = 40                       # CNN word vectors (the embedding dominates the file size)
FILTERS, KERNEL = 100, 3
LSTM_EMBED, HIDDEN = 32, 32      # LSTM word vectors, units per direction


def read(path: Path):
    with path.open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    texts = np.array([r["text"] for r in rows])
    labels = np.array([SECTIONS.index(r["label"]) for r in rows], dtype=np.int64)
    return texts, labels


def packages(path: Path) -> dict:
    """{package: label} of a corpus file."""
    with path.open(encoding="utf-8") as f:
        return {r["package"]: r["label"]
                for r in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)}


def cnn(vocabulary: int) -> keras.Model:
    layers = keras.layers
    inp = keras.Input((T,), dtype="int32", name="tokens")
    h = layers.Embedding(vocabulary, EMBED, name="embedding")(inp)
    h = layers.Dropout(0.3, name="dropout1")(h)
    h = layers.Conv1D(FILTERS, KERNEL, activation="relu", padding="same", name="conv")(h)
    h = layers.GlobalMaxPooling1D(name="maxpool")(h)
    h = layers.Dropout(0.3, name="dropout2")(h)
    h = layers.Dense(len(SECTIONS), name="fc")(h)
    out = layers.Activation("softmax", name="softmax")(h)
    return keras.Model(inp, out, name="text_cnn")


def lstm_layers(vocabulary: int) -> list:
    layers = keras.layers
    # dropout on the LSTM's inputs during training only: no extra layer in the graph
    return [layers.Embedding(vocabulary, LSTM_EMBED, mask_zero=True, name="embedding"),
            layers.Bidirectional(layers.LSTM(HIDDEN, dropout=0.3), name="bilstm"),
            layers.Dense(len(SECTIONS), name="fc"),
            layers.Activation("softmax", name="softmax")]


def apply(stack: list, h):
    for layer in stack:
        h = layer(h)
    return h


def fit(model: keras.Model, x, y, epochs: int = 20, patience: int = 3):
    start = time.perf_counter()
    model.compile(optimizer=keras.optimizers.Adam(2e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    stop = keras.callbacks.EarlyStopping(monitor="val_accuracy", patience=patience,
                                         restore_best_weights=True)
    # the training rows are already in a seeded shuffled order: the last 10% validate
    history = model.fit(x, y, validation_split=0.1, epochs=epochs, batch_size=64,
                        callbacks=[stop], verbose=0)
    best = int(np.argmax(history.history["val_accuracy"]))
    print(f"  {model.name}: {len(history.history['loss'])} epochs, best {best + 1} "
          f"(validation accuracy {history.history['val_accuracy'][best]:.4f}), "
          f"{time.perf_counter() - start:.0f} s")


def confusion(y_true, y_pred) -> str:
    matrix = np.zeros((len(SECTIONS), len(SECTIONS)), dtype=int)
    np.add.at(matrix, (y_true, y_pred), 1)
    lines = [" " * 10 + " ".join(f"{s[:5]:>5s}" for s in SECTIONS) + "   (rows: true)"]
    for i, s in enumerate(SECTIONS):
        lines.append(f"{s:10s}" + " ".join(f"{v:5d}" for v in matrix[i]))
    return "\n".join(lines)


def check_lstm_reload(path: Path, texts) -> np.ndarray:
    """Load the saved string model in a fresh process; compare its outputs with ours."""
    code = ("import sys, numpy as np, keras; m = keras.saving.load_model(sys.argv[1]); "
            "x = np.array([[l.rstrip('\\n')] for l in open(sys.argv[2], encoding='utf-8')]); "
            "np.save(sys.argv[3], np.asarray(m(x)))")
    tmp = ROOT / "build" / "text_reload"
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "texts.txt").write_text("".join(t + "\n" for t in texts), encoding="utf-8")
    subprocess.run([sys.executable, "-c", code, str(path), str(tmp / "texts.txt"),
                    str(tmp / "probs.npy")], check=True, stderr=subprocess.DEVNULL)
    return np.load(tmp / "probs.npy")


def report_samples(directory: Path, test_labels: dict, classify: dict):
    """Accuracy on DIR/heldout/documents.txt and the verdicts on DIR/<package>.txt, for each model.

    classify: {model name: function(numpy array of texts) -> predicted class indices}."""
    lines = (directory / "heldout" / "documents.txt").read_text(encoding="utf-8").splitlines()
    truth = np.array([SECTIONS.index(line) for line in
                      (directory / "heldout" / "labels.txt").read_text().split()])
    for name, predict in classify.items():
        right = (predict(np.array(lines)) == truth).sum()
        print(f"{name} on {directory.name}/heldout/documents.txt: {right / len(truth):.4f} "
              f"({right} of {len(truth)})")
    for path in sorted(directory.glob("*.txt")):
        if path.stem not in test_labels:
            continue
        text = np.array([path.read_text(encoding="utf-8").strip()])
        verdicts = ", ".join(f"{name} {SECTIONS[predict(text)[0]]}"
                             for name, predict in classify.items())
        print(f"  {path.name}: true {test_labels[path.stem]}; {verdicts}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", type=Path, default=ROOT / "build" / "text_corpus")
    parser.add_argument("--models", type=Path, default=ROOT / "models")
    parser.add_argument("--samples", type=Path, default=None,
                        help="also report on DIR/heldout/documents.txt and DIR/<package>.txt")
    args = parser.parse_args()
    started = time.perf_counter()
    train_x, train_y = read(args.corpus / "train.tsv")
    test_x, test_y = read(args.corpus / "test.tsv")
    print(f"train {len(train_y)}, test {len(test_y)} documents, {len(SECTIONS)} classes")

    keras.utils.set_random_seed(0)
    tf.config.experimental.enable_op_determinism()
    vectorize = keras.layers.TextVectorization(max_tokens=MAX_TOKENS, output_sequence_length=T,
                                               name="vectorize")
    vectorize.adapt(train_x)
    vocabulary = vectorize.get_vocabulary()
    assert vocabulary[:2] == ["", "[UNK]"]
    size = len(vocabulary)
    train_ids = vectorize(train_x).numpy().astype(np.int32)
    test_ids = vectorize(test_x).numpy().astype(np.int32)
    lengths = (train_ids > 0).sum(1)
    print(f"vocabulary {size} ids (max_tokens {MAX_TOKENS}); T = {T}; training documents "
          f"truncated: {(lengths == T).sum()}; test tokens out of vocabulary: "
          f"{(test_ids == 1).sum() / (test_ids > 0).sum():.1%}")

    models = args.models
    models.mkdir(exist_ok=True)
    (models / "text_vocab.txt").write_text("".join(v + "\n" for v in vocabulary[2:]),
                                           encoding="utf-8")
    (models / "text_labels.txt").write_text("".join(s + "\n" for s in SECTIONS))
    reread = keras.layers.TextVectorization(vocabulary=str(models / "text_vocab.txt"),
                                            output_sequence_length=T)
    assert reread.get_vocabulary() == vocabulary
    assert np.array_equal(reread(test_x).numpy(), test_ids)
    assert np.array_equal(reread(train_x).numpy(), train_ids)

    # CNN over word vectors, integer ids in
    keras.utils.set_random_seed(0)
    model = cnn(size)
    fit(model, train_ids, train_y)
    plain = cnn(size)  # without optimizer state
    plain.set_weights(model.get_weights())
    predicted = plain.predict(test_ids, verbose=0).argmax(-1)
    print(f"text_cnn test accuracy: {(predicted == test_y).mean():.4f} on {len(test_y)} "
          f"documents\n{confusion(test_y, predicted)}")
    plain.save(models / "text_cnn.keras")

    # bidirectional LSTM: trained on ids, shipped behind the adapted TextVectorization
    keras.utils.set_random_seed(0)
    stack = lstm_layers(size)
    ids_in = keras.Input((T,), dtype="int32", name="tokens")
    trainer = keras.Model(ids_in, apply(stack, ids_in), name="text_lstm")
    fit(trainer, train_ids, train_y)
    fresh = lstm_layers(size)
    text_in = keras.Input((1,), dtype="string", name="text")
    shipped = keras.Model(text_in, apply(fresh, vectorize(text_in)), name="text_lstm")
    for new, old in zip(fresh, stack):
        new.set_weights(old.get_weights())
    # Keras 3 predict() refuses numpy string arrays (its data adapter wants numeric dtypes):
    # a tf.string tensor works, and so does calling the model on a numpy string array
    probs = shipped.predict(tf.constant(test_x[:, None]), verbose=0)
    assert np.allclose(probs, trainer.predict(test_ids, verbose=0), atol=1e-5)
    predicted = probs.argmax(-1)
    print(f"text_lstm test accuracy: {(predicted == test_y).mean():.4f} on {len(test_y)} "
          f"documents\n{confusion(test_y, predicted)}")
    shipped.save(models / "text_lstm.keras")
    reloaded = check_lstm_reload(models / "text_lstm.keras", test_x)
    print(f"text_lstm reloaded in a fresh process: largest difference "
          f"{np.abs(reloaded - probs).max():.2e}")
    assert np.allclose(reloaded, probs, atol=1e-5)

    if args.samples is not None:
        report_samples(args.samples, packages(args.corpus / "test.tsv"), {
            "text_cnn": lambda x: plain.predict(vectorize(x), verbose=0).argmax(-1),
            "text_lstm": lambda x: shipped.predict(tf.constant(x[:, None]),
                                                   verbose=0).argmax(-1)})
    for name in ("text_cnn.keras", "text_lstm.keras"):
        print(f"{name}: {(models / name).stat().st_size / 1e6:.2f} MB")
    print(f"total {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
