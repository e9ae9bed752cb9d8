"""Train the shipped demo model: a small CNN on scikit-learn's digits (32x32 grey, 'unit').

Writes models/digits.keras, models/digits.h5, models/digits_labels.txt, the test
split as models/digits_test_{x,y}.npy and one correctly classified test image per
class to sample_images/. Deterministic; about a minute on 2 CPU cores.
Run: python scripts/train_digits.py
"""

from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from digits_data import LABELS, SIZE, splits
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent


def build_model() -> keras.Model:
    layers = keras.layers
    inp = keras.Input((SIZE, SIZE, 1), name="image")
    h = layers.Conv2D(16, 3, padding="same", activation="relu", name="conv1")(inp)
    h = layers.Conv2D(16, 3, padding="same", activation="relu", name="conv2")(h)
    h = layers.MaxPooling2D(2, name="pool1")(h)
    h = layers.Conv2D(32, 3, padding="same", activation="relu", name="conv3")(h)
    h = layers.MaxPooling2D(2, name="pool2")(h)
    h = layers.Flatten(name="flatten")(h)
    h = layers.Dense(64, activation="relu", name="fc1")(h)
    h = layers.Dropout(0.25, name="dropout")(h)
    h = layers.Dense(10, name="fc2")(h)
    out = layers.Activation("softmax", name="softmax")(h)
    return keras.Model(inp, out, name="digits")


def train(x_train, y_train, epochs=30, build=build_model, learning_rate=2e-3) -> keras.Model:
    """``build()`` trained with Adam and random shifts, deterministically."""
    keras.utils.set_random_seed(0)
    tf.config.experimental.enable_op_determinism()
    model = build()
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    augment = keras.Sequential([keras.layers.RandomTranslation(0.08, 0.08, fill_mode="constant",
                                                               seed=0)])
    data = tf.data.Dataset.from_tensor_slices((x_train, y_train)).shuffle(2000, seed=0) \
        .batch(64).map(lambda x, y: (augment(x, training=True), y))
    model.fit(data, epochs=epochs, verbose=0)
    return model


def main():
    train_img, test_img, train_y, test_y = splits()
    x_train = train_img[..., None].astype(np.float32) / 255
    x_test = test_img[..., None].astype(np.float32) / 255
    model = train(x_train, train_y)
    predicted = model.predict(x_test, verbose=0).argmax(-1)
    print(f"test accuracy: {(predicted == test_y).mean():.4f} on {len(test_y)} images")
    models = ROOT / "models"
    models.mkdir(exist_ok=True)
    plain = build_model()  # without optimizer state: a third of the size
    plain.set_weights(model.get_weights())
    plain.save(models / "digits.keras")
    plain.save(models / "digits.h5")
    (models / "digits_labels.txt").write_text("\n".join(LABELS) + "\n")
    np.save(models / "digits_test_x.npy", x_test)
    np.save(models / "digits_test_y.npy", test_y.astype(np.int64))
    samples = ROOT / "sample_images"
    samples.mkdir(exist_ok=True)
    for label in range(10):
        index = next(i for i in range(len(test_y)) if test_y[i] == label == predicted[i])
        Image.fromarray(test_img[index], mode="L").save(samples / f"digit_{label}_{index}.png")


if __name__ == "__main__":
    main()
