"""Train the shipped text Transformer on Debian package descriptions, next to the LSTM.

The corpus is scripts/text_corpus.py's, built from the APT indexes on this machine. The
shipped LSTM was trained with the long descriptions from the Debian mirror's
Translation-en files (models/README.md). Those files cannot be fetched offline, so this
corpus holds the synopses only. To compare on the same data, this script also retrains the
LSTM's recipe (scripts/train_text.py) on it and prints both test accuracies. The synopsis
corpus splits its packages differently. A training synopsis that begins a held-out document
(sample_texts/heldout/documents.txt, full descriptions from the LSTM's test split) is left
out, so that both models also meet those 399 documents unseen.

Model: TextVectorization (max_tokens MAX_TOKENS, T tokens), Embedding with mask_zero plus
learned position embeddings (an Embedding over ids computed from the tokens' shape), two
post-norm encoder blocks (MultiHeadAttention with the padding mask, residual Add,
LayerNormalization, GELU MLP), masked mean pooling, Dense, softmax. Trained on ids; the
trained layers are then put behind the string input, as the LSTM's are.

Writes models/text_transformer.keras. Deterministic.
Run: python scripts/text_corpus.py --out build/text_synopses &&
     python scripts/train_text_transformer.py --corpus build/text_synopses
"""

import argparse
import sys
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from keras import layers, ops

sys.path.insert(0, str(Path(__file__).resolve().parent))
from text_corpus import SECTIONS
from train_text import MAX_TOKENS, apply, confusion, fit, lstm_layers, read

ROOT = Path(__file__).resolve().parent.parent
T, WIDTH, HEADS, BLOCKS, MLP = 64, 32, 4, 2, 64


class Stack:
    """The Transformer's layers, created once and applied to any ids tensor."""

    def __init__(self, vocabulary: int):
        self.embedding = layers.Embedding(vocabulary, WIDTH, mask_zero=True, name="embedding")
        self.position = layers.Embedding(T, WIDTH, name="position")
        self.blocks = [(layers.MultiHeadAttention(HEADS, WIDTH // HEADS, dropout=0.1,
                                                  name=f"block{i}_attention"),
                        layers.LayerNormalization(name=f"block{i}_ln1"),
                        layers.Dense(MLP, activation="gelu", name=f"block{i}_mlp1"),
                        layers.Dropout(0.1, name=f"block{i}_dropout"),
                        layers.Dense(WIDTH, name=f"block{i}_mlp2"),
                        layers.LayerNormalization(name=f"block{i}_ln2")) for i in range(BLOCKS)]
        self.head = [layers.GlobalAveragePooling1D(name="pool"), layers.Dense(len(SECTIONS), name="fc"),
                     layers.Activation("softmax", name="softmax")]

    def __call__(self, ids):
        positions = ops.cumsum(ops.ones_like(ids), axis=1) - 1
        x = layers.Add(name="with_position")([self.embedding(ids), self.position(positions)])
        for attention, ln1, mlp1, dropout, mlp2, ln2 in self.blocks:
            x = ln1(layers.Add()([x, attention(x, x)]))
            x = ln2(layers.Add()([x, mlp2(dropout(mlp1(x)))]))
        return apply(self.head, x)

    @property
    def all_layers(self) -> list:
        return [self.embedding, self.position, *(layer for block in self.blocks for layer in block),
                *self.head]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", type=Path, default=ROOT / "build" / "text_synopses")
    parser.add_argument("--models", type=Path, default=ROOT / "models")
    parser.add_argument("--heldout", type=Path, default=ROOT / "sample_texts" / "heldout")
    args = parser.parse_args()
    train_x, train_y = read(args.corpus / "train.tsv")
    test_x, test_y = read(args.corpus / "test.tsv")
    held_x = np.array((args.heldout / "documents.txt").read_text(encoding="utf-8").splitlines())
    held_y = np.array([SECTIONS.index(s) for s in (args.heldout / "labels.txt").read_text().split()])
    seen = np.array([any(h == t or h.startswith(t + " ") for h in held_x) for t in train_x])
    train_x, train_y = train_x[~seen], train_y[~seen]
    print(f"train {len(train_y)} ({seen.sum()} left out: they begin a held-out document), "
          f"test {len(test_y)} documents (synopses only)")
    keras.utils.set_random_seed(0)
    tf.config.experimental.enable_op_determinism()
    vectorize = layers.TextVectorization(max_tokens=MAX_TOKENS, output_sequence_length=T, name="vectorize")
    vectorize.adapt(train_x)
    size = len(vectorize.get_vocabulary())
    train_ids = vectorize(train_x).numpy().astype(np.int32)
    test_ids = vectorize(test_x).numpy().astype(np.int32)

    keras.utils.set_random_seed(0)
    lstm_in = keras.Input((T,), dtype="int32")
    lstm = keras.Model(lstm_in, apply(lstm_layers(size), lstm_in), name="text_lstm_synopses")
    fit(lstm, train_ids, train_y)
    lstm_accuracy = (lstm.predict(test_ids, verbose=0).argmax(-1) == test_y).mean()
    lstm_held = (lstm.predict(vectorize(held_x), verbose=0).argmax(-1) == held_y).mean()

    keras.utils.set_random_seed(0)
    stack = Stack(size)
    ids_in = keras.Input((T,), dtype="int32", name="tokens")
    trainer = keras.Model(ids_in, stack(ids_in), name="text_transformer")
    fit(trainer, train_ids, train_y, epochs=30, patience=5)
    fresh = Stack(size)
    text_in = keras.Input((1,), dtype="string", name="text")
    shipped = keras.Model(text_in, fresh(vectorize(text_in)), name="text_transformer")
    for new, old in zip(fresh.all_layers, stack.all_layers):
        new.set_weights(old.get_weights())
    probs = shipped.predict(tf.constant(test_x[:, None]), verbose=0)
    assert np.allclose(probs, trainer.predict(test_ids, verbose=0), atol=1e-5)
    predicted = probs.argmax(-1)
    held = (shipped.predict(tf.constant(held_x[:, None]), verbose=0).argmax(-1) == held_y).mean()
    print(f"test accuracy on {len(test_y)} synopses: text_transformer {(predicted == test_y).mean():.4f}, "
          f"the LSTM's recipe {lstm_accuracy:.4f}\n{confusion(test_y, predicted)}")
    print(f"on the {len(held_y)} held-out documents: text_transformer {held:.4f}, the LSTM's recipe "
          f"{lstm_held:.4f} (the shipped LSTM, trained with long descriptions: see models/README.md)")
    shipped.save(args.models / "text_transformer.keras")
    print(f"text_transformer.keras: {(args.models / 'text_transformer.keras').stat().st_size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
