"""Train two small video action classifiers on "motion digits" clips (scripts/motion_digits.py).

Clips: 16 frames of 40x40 grey, two hand-written digits, one of which ("the actor") may move
up and back down or right and back left during 6 of the 16 frames; classes still, up-down,
left-right. Inputs float32 (16, 40, 40, 1) in [0, 1].

- models/motion_c3d.keras: a 3D CNN (Conv3D, BatchNormalization, MaxPooling3D,
  GlobalMaxPooling3D, Dense);
- models/motion_frames.keras: a frame-wise 2D CNN (TimeDistributed Conv2D, MaxPooling2D,
  Flatten, Dense: a small feature vector per frame), then Conv1D over the frames,
  GlobalMaxPooling1D, Dense.

Training clips use the digits of the train split of digits_data.splits(), test clips those
of the test split only. Writes both models (without optimizer state),
models/motion_labels.txt, models/motion_test.npz (60 held-out clips, 20 per class,
compressed: ``clips`` uint8 (60, 16, 40, 40, 1), the model's input times 255; ``labels``
int64; ``motion`` bool (60, 16, 40, 40), the motion region) and sample_clips/: 2 held-out
clips per class that both models get right, as animated GIFs (16 frames, 100 ms each,
looping), one of them also as PNG frames.
Deterministic; a few minutes on 2 CPU cores.
Run: python scripts/train_motion_digits.py
"""

import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from motion_digits import DIGIT, LABELS, SIZE, T, digit_images, make_clips, unit
from PIL import Image, ImageSequence

ROOT = Path(__file__).resolve().parent.parent
N_TRAIN, N_TEST, N_SAVED = 3000, 600, 60
SHAPE = (T, SIZE, SIZE, 1)
FRAME_MS = 100
FRAME_FEATURES = 16


def build_c3d() -> keras.Model:
    layers = keras.layers
    inp = keras.Input(SHAPE, name="clip")
    h = layers.Conv3D(16, 3, padding="same", activation="relu", name="conv1")(inp)
    h = layers.MaxPooling3D((1, 2, 2), name="pool1")(h)
    h = layers.Conv3D(32, 3, padding="same", name="conv2")(h)
    h = layers.BatchNormalization(name="bn2")(h)
    h = layers.Activation("relu", name="relu2")(h)
    h = layers.MaxPooling3D(2, name="pool2")(h)
    h = layers.Conv3D(32, 3, padding="same", activation="relu", name="conv3")(h)
    h = layers.GlobalMaxPooling3D(name="global_pool")(h)
    h = layers.Dense(32, activation="relu", name="fc1")(h)
    h = layers.Dense(len(LABELS), name="fc2")(h)
    out = layers.Activation("softmax", name="softmax")(h)
    return keras.Model(inp, out, name="motion_c3d")


def build_frames(time_distributed=True) -> keras.Model:
    """The frame-wise model; ``time_distributed=False``: the same layers and weights, with the
    frames folded into the batch by reshapes instead of TimeDistributed (trains about 5x faster
    on CPU, where Keras 3's TimeDistributed loops over the 16 frames in Python)."""
    layers = keras.layers
    inp = keras.Input(SHAPE, name="clip")

    def frame(layer_class, name, *args, **kwargs):
        if time_distributed:
            return layers.TimeDistributed(layer_class(*args, **kwargs), name=name)
        return layer_class(*args, name=name, **kwargs)

    h = inp if time_distributed else keras.ops.reshape(inp, (-1, *SHAPE[1:]))
    h = frame(layers.Conv2D, "frame_conv1", 8, 3, padding="same", activation="relu")(h)
    h = frame(layers.MaxPooling2D, "frame_pool1", 2)(h)
    h = frame(layers.Conv2D, "frame_conv2", 16, 3, padding="same", activation="relu")(h)
    h = frame(layers.MaxPooling2D, "frame_pool2", 2)(h)
    h = frame(layers.Flatten, "frame_flatten")(h)
    h = frame(layers.Dense, "frame_fc", FRAME_FEATURES, activation="relu")(h)
    if not time_distributed:
        h = keras.ops.reshape(h, (-1, T, FRAME_FEATURES))
    h = layers.Conv1D(32, 3, padding="same", activation="relu", name="time_conv1")(h)
    h = layers.Conv1D(32, 3, padding="same", activation="relu", name="time_conv2")(h)
    h = layers.GlobalMaxPooling1D(name="time_pool")(h)
    h = layers.Dense(32, activation="relu", name="fc1")(h)
    h = layers.Dense(len(LABELS), name="fc2")(h)
    out = layers.Activation("softmax", name="softmax")(h)
    return keras.Model(inp, out, name="motion_frames")


def train(build, clips, labels, epochs, learning_rate=2e-3) -> keras.Model:
    """``build()`` trained with Adam on uint8 ``clips`` (scaled to [0, 1] batch by batch)."""
    keras.utils.set_random_seed(0)
    tf.config.experimental.enable_op_determinism()
    model = build()
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    data = tf.data.Dataset.from_tensor_slices((clips, labels)).shuffle(len(labels), seed=0) \
        .batch(32).map(lambda x, y: (tf.cast(x[..., None], tf.float32) / 255, y))
    model.fit(data, epochs=epochs, verbose=0)
    return model


def save_gif(frames: np.ndarray, path: Path):
    """uint8 (T, H, W) as a looping grey GIF, checked to read back exactly."""
    images = [Image.fromarray(f, mode="L") for f in frames]
    images[0].save(path, save_all=True, append_images=images[1:], duration=FRAME_MS, loop=0)
    with Image.open(path) as gif:
        back = np.stack([np.asarray(f.convert("L")) for f in ImageSequence.Iterator(gif)])
    if not np.array_equal(back, frames):
        raise RuntimeError(f"{path} does not read back as the frames written")


def main():
    train_digits, test_digits = digit_images()
    train_set = make_clips(train_digits, N_TRAIN, seed=0)
    test_set = make_clips(test_digits, N_TEST, seed=1)
    x_test = unit(test_set["x"])
    print(f"{N_TRAIN} training clips from {len(train_digits)} digits, {N_TEST} test clips from "
          f"{len(test_digits)} other digits; {DIGIT}x{DIGIT} digits on {SIZE}x{SIZE}, {T} frames")

    models = ROOT / "models"
    models.mkdir(exist_ok=True)
    predicted = {}
    runs = [("motion_c3d", build_c3d, build_c3d, 6),
            ("motion_frames", lambda: build_frames(time_distributed=False), build_frames, 10)]
    for name, build_for_training, build, epochs in runs:
        start = time.perf_counter()
        trained = train(build_for_training, train_set["x"], train_set["y"], epochs)
        seconds = time.perf_counter() - start
        model = build()  # without optimizer state; for motion_frames the TimeDistributed form
        model.set_weights(trained.get_weights())
        probabilities = model.predict(x_test, verbose=0)
        gap = np.abs(probabilities - trained.predict(x_test, verbose=0)).max()
        if gap > 1e-5:
            raise RuntimeError(f"{name}: the saved form differs from the trained one by {gap}")
        predicted[name] = probabilities.argmax(-1)
        right = predicted[name] == test_set["y"]
        per_class = ", ".join(f"{label} {right[test_set['y'] == c].mean():.3f}"
                              for c, label in enumerate(LABELS))
        print(f"{name}: test accuracy {right.mean():.4f} on {N_TEST} clips ({per_class}); "
              f"trained in {seconds:.0f} s ({epochs} epochs), {model.count_params()} parameters")
        model.save(models / f"{name}.keras")
        reloaded = keras.saving.load_model(models / f"{name}.keras")
        if not np.array_equal(reloaded.predict(x_test, verbose=0).argmax(-1), predicted[name]):
            raise RuntimeError(f"models/{name}.keras does not reload to the same predictions")
        model.summary()

    (models / "motion_labels.txt").write_text("\n".join(LABELS) + "\n")
    # the saved test clips: the first N_SAVED // 3 of each class, in test-set order
    saved = np.sort(np.concatenate([np.flatnonzero(test_set["y"] == c)[: N_SAVED // 3]
                                    for c in range(len(LABELS))]))
    np.savez_compressed(models / "motion_test.npz", clips=np.round(x_test[saved] * 255).astype(np.uint8),
                        labels=test_set["y"][saved], motion=test_set["mask"][saved])
    for name, p in predicted.items():
        print(f"{name}: {(p[saved] == test_set['y'][saved]).sum()} of {N_SAVED} saved test clips right")

    samples = ROOT / "sample_clips"
    samples.mkdir(exist_ok=True)
    for old in [*samples.glob("*.gif"), *samples.glob("*_frames/frame_*.png")]:
        old.unlink()
    both_right = np.all([p[saved] == test_set["y"][saved] for p in predicted.values()], axis=0)
    for c, label in enumerate(LABELS):
        chosen = np.flatnonzero((test_set["y"][saved] == c) & both_right)[:2]
        for k, index in enumerate(chosen):
            clip = test_set["x"][saved[index]]
            save_gif(clip, samples / f"{label}_{k}.gif")
            window = np.flatnonzero(test_set["frames"][saved[index]])
            frames = f"frames {window[0]}..{window[-1]}" if len(window) else "no motion"
            print(f"sample_clips/{label}_{k}.gif: motion_test.npz clip {index}, {frames}")
            if label == "left-right" and k == 0:
                folder = samples / "left-right_frames"
                folder.mkdir(exist_ok=True)
                for t, frame in enumerate(clip):
                    Image.fromarray(frame, mode="L").save(folder / f"frame_{t:02d}.png")


if __name__ == "__main__":
    main()
