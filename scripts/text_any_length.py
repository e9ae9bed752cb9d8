"""Copies of the shipped LSTM (models/text_lstm.keras) that read documents of any length.

Writes, into the folder given (default: the current one):

- ``text_lstm_any.keras``: raw strings in, through a TextVectorization with the shipped
  vocabulary and no ``output_sequence_length`` (the saved layer pads each batch to its
  longest document);
- ``text_lstm_any_ids.keras``: token ids in, ``keras.Input(shape=(None,), dtype="int32")``,
  as Keras' own text examples build it (give it ``--vocab models/text_vocab.txt``).

Both have the shipped model's weights, so on documents of at most 128 tokens (or with
``--max-tokens 128``) xai gives them the shipped model's word relevances; see
docs/text.md, "Documents of any length". A few seconds on 2 CPU cores.

Run: python scripts/text_any_length.py [FOLDER]
"""

import sys
from pathlib import Path

import keras

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ("embedding", "bilstm", "fc")


def copy(shipped, strings: bool) -> keras.Model:
    """The shipped LSTM's layers behind an input of any length."""
    if strings:
        inputs = keras.Input((1,), dtype="string", name="text")
        vocabulary = shipped.get_layer("vectorize").get_vocabulary()[2:]
        tokens = keras.layers.TextVectorization(vocabulary=vocabulary, name="vectorize")(inputs)
    else:
        inputs = tokens = keras.Input((None,), dtype="int32", name="ids")
    embedded = keras.layers.Embedding(*shipped.get_layer("embedding").embeddings.shape,
                                      mask_zero=True, name="embedding")(tokens)
    state = keras.layers.Bidirectional(keras.layers.LSTM(32), name="bilstm")(embedded)
    logits = keras.layers.Dense(8, name="fc")(state)
    model = keras.Model(inputs, keras.layers.Activation("softmax", name="softmax")(logits))
    for name in LAYERS:
        model.get_layer(name).set_weights(shipped.get_layer(name).get_weights())
    return model


def main() -> None:
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else Path.cwd()
    folder.mkdir(parents=True, exist_ok=True)
    shipped = keras.saving.load_model(ROOT / "models" / "text_lstm.keras")
    for name, strings in (("text_lstm_any.keras", True), ("text_lstm_any_ids.keras", False)):
        copy(shipped, strings).save(folder / name)
        print(folder / name)


if __name__ == "__main__":
    main()
