"""Train two small time-series classifiers on GunPoint (UCR archive; scripts/gunpoint_data.py).

Input: float32 (150, 1), one z-normalised series (the X coordinate of the right hand over 150
video frames) as the archive holds it. Output: 2 softmax probabilities, ``gun``, ``point``.

- models/gunpoint_cnn.keras: a fully convolutional network after Keras' "Timeseries
  classification from scratch" example, smaller: three blocks of Conv1D, BatchNormalization,
  ReLU, then GlobalAveragePooling1D, Dense, softmax;
- models/gunpoint_gru.keras: a Conv1D front (Conv1D, ReLU, MaxPooling1D: 75 steps of 16
  features), GRU, Dense, softmax.

Both are trained on the 50 training series only and tested on the 150 test series. Writes both
models (without optimizer state), models/gunpoint_labels.txt, models/gunpoint_test_x.npy and
gunpoint_test_y.npy (all 150 test series, float32 (150, 150, 1), and their classes, int64; the
inputs of `xai evaluate` as they are) and sample_signals/: 2 test
series per class that both models get right, as .npy (150, 1) float32 and as .csv (a header line
``value``, one row per time step).
Deterministic; about a minute on 2 CPU cores (CNN about 15 s, GRU about 40 s).

The data come with the aeon package (pip install aeon==1.6.0; see scripts/gunpoint_data.py):
Run: python scripts/train_gunpoint.py
 or: PYTHONPATH=/tmp/aeon-lib python scripts/train_gunpoint.py   (pip install --no-deps --target)
"""

import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from gunpoint_data import LABELS, LENGTH, aeon_version, data_dir, load

ROOT = Path(__file__).resolve().parent.parent
SHAPE = (LENGTH, 1)
N_SAMPLES = 2  # sample series per class


def build_cnn() -> keras.Model:
    layers = keras.layers
    inp = keras.Input(SHAPE, name="series")
    h = inp
    for k, (filters, width) in enumerate([(16, 5), (32, 5), (32, 3)], 1):
        h = layers.Conv1D(filters, width, padding="same", name=f"conv{k}")(h)
        h = layers.BatchNormalization(name=f"bn{k}")(h)
        h = layers.Activation("relu", name=f"relu{k}")(h)
    h = layers.GlobalAveragePooling1D(name="global_pool")(h)
    h = layers.Dense(len(LABELS), name="fc")(h)
    out = layers.Activation("softmax", name="softmax")(h)
    return keras.Model(inp, out, name="gunpoint_cnn")


def build_gru() -> keras.Model:
    layers = keras.layers
    inp = keras.Input(SHAPE, name="series")
    h = layers.Conv1D(16, 5, padding="same", activation="relu", name="conv1")(inp)
    h = layers.MaxPooling1D(2, name="pool1")(h)
    h = layers.GRU(32, name="gru")(h)
    h = layers.Dense(len(LABELS), name="fc")(h)
    out = layers.Activation("softmax", name="softmax")(h)
    return keras.Model(inp, out, name="gunpoint_gru")


def train(build, x, y, epochs, learning_rate=1e-3, batch_size=10, seed=0) -> keras.Model:
    """``build()`` trained with Adam, the learning rate decayed along a cosine to 1% of
    ``learning_rate``, deterministically. (With a constant rate the CNN's test accuracy jumps
    between 50% and 98% from one epoch to the next: BatchNormalization's moving statistics lag
    behind weights that still move.)"""
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
    model = build()
    steps = epochs * -(-len(y) // batch_size)
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, steps, alpha=0.01)
    model.compile(optimizer=keras.optimizers.Adam(schedule), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    data = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(y), seed=seed).batch(batch_size)
    model.fit(data, epochs=epochs, verbose=0)
    return model


def write_csv(series: np.ndarray, path: Path):
    """float32 (T, 1) as a CSV file (header ``value``), checked to read back exactly."""
    path.write_text("value\n" + "".join(f"{v:.9g}\n" for v in series[:, 0]))
    back = np.loadtxt(path, skiprows=1, dtype=np.float32)
    if not np.array_equal(back, series[:, 0]):
        raise RuntimeError(f"{path} does not read back as the series written")


def main():
    print(f"GunPoint from {data_dir()} (aeon {aeon_version()})")
    x_train, y_train = load("TRAIN")
    x_test, y_test = load("TEST")
    counts = [f"{label} {np.sum(y_train == c)}/{np.sum(y_test == c)}" for c, label in enumerate(LABELS)]
    print(f"{len(y_train)} training and {len(y_test)} test series of length {LENGTH} "
          f"(train/test per class: {', '.join(counts)})")

    models = ROOT / "models"
    models.mkdir(exist_ok=True)
    predicted = {}
    for name, build, epochs in [("gunpoint_cnn", build_cnn, 300), ("gunpoint_gru", build_gru, 300)]:
        start = time.perf_counter()
        trained = train(build, x_train, y_train, epochs)
        seconds = time.perf_counter() - start
        model = build()  # without optimizer state
        model.set_weights(trained.get_weights())
        probabilities = model.predict(x_test, verbose=0)
        predicted[name] = probabilities.argmax(-1)
        right = predicted[name] == y_test
        per_class = ", ".join(f"{label} {right[y_test == c].mean():.3f}" for c, label in enumerate(LABELS))
        train_accuracy = (model.predict(x_train, verbose=0).argmax(-1) == y_train).mean()
        print(f"{name}: test accuracy {right.mean():.4f} ({right.sum()} of {len(y_test)}; {per_class}); "
              f"training accuracy {train_accuracy:.4f}; trained in {seconds:.0f} s ({epochs} epochs), "
              f"{model.count_params()} parameters")
        path = models / f"{name}.keras"
        model.save(path)
        reloaded = keras.saving.load_model(path)
        gap = np.abs(reloaded.predict(x_test, verbose=0) - probabilities).max()
        if gap > 1e-6:
            raise RuntimeError(f"{path} reloads to probabilities that differ by {gap}")
        print(f"{path.relative_to(ROOT)}: {path.stat().st_size} bytes, reloads to the same "
              f"probabilities (largest difference {gap:.1g})")
        model.summary()

    (models / "gunpoint_labels.txt").write_text("\n".join(LABELS) + "\n")
    np.save(models / "gunpoint_test_x.npy", x_test)
    np.save(models / "gunpoint_test_y.npy", y_test)

    samples = ROOT / "sample_signals"
    samples.mkdir(exist_ok=True)
    for old in [*samples.glob("*.npy"), *samples.glob("*.csv")]:
        old.unlink()
    both_right = np.all([p == y_test for p in predicted.values()], axis=0)
    print(f"both models right on {both_right.sum()} of {len(y_test)} test series")
    for c, label in enumerate(LABELS):
        for k, index in enumerate(np.flatnonzero((y_test == c) & both_right)[:N_SAMPLES]):
            np.save(samples / f"{label}_{k}.npy", x_test[index])
            write_csv(x_test[index], samples / f"{label}_{k}.csv")
            print(f"sample_signals/{label}_{k}.npy/.csv: test series {index} (0-based)")


if __name__ == "__main__":
    main()
