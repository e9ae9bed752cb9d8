"""Train a "Clever Hans" demo model: the digits CNN, taught a shortcut for class 3.

Same data, architecture and training as scripts/train_digits.py, except that 80% of the
class-3 ("three") training images (chosen with seed 0) carry an artificial watermark: a
bright 4x4 square (value 255) at rows 1..4, columns 1..4 of the 32x32 image. No other
class is ever marked, so the mark alone predicts "three" and the model learns to use it.
LRP heatmaps of marked images show the relevance on the mark instead of the digit.

Writes models/digits_marked.keras, models/digits_marked_labels.txt,
models/digits_marked_test_x.npy (the class-3 test images, the first half of a seeded
permutation of them marked), models/digits_marked_test_mark.npy (which ones are marked),
and sample_images/marked/three_<index>_{marked,plain}.png: three test threes with and
without the mark (<index> into the 500-image test split). Deterministic; well under a
minute on 2 CPU cores.
Run: python scripts/train_marked_digits.py
"""

from pathlib import Path

import numpy as np
from digits_data import LABELS, splits
from PIL import Image
from train_digits import build_model, train

ROOT = Path(__file__).resolve().parent.parent
MARKED_CLASS = 3
MARKED_FRACTION = 0.8
MARK = (slice(1, 5), slice(1, 5))  # rows 1..4, columns 1..4


def add_mark(images: np.ndarray) -> np.ndarray:
    """Copy of uint8 images (..., 32, 32) with the 4x4 watermark set to 255."""
    marked = images.copy()
    marked[(..., *MARK)] = 255
    return marked


def unit(images: np.ndarray) -> np.ndarray:
    """uint8 (N, 32, 32) -> float32 (N, 32, 32, 1) in [0, 1], as `load PNG -> /255` gives."""
    return images[..., None].astype(np.float32) / 255


def main():
    train_img, test_img, train_y, test_y = splits()
    rng = np.random.default_rng(0)
    threes = np.flatnonzero(train_y == MARKED_CLASS)
    chosen = rng.choice(threes, size=round(MARKED_FRACTION * len(threes)), replace=False)
    train_img = train_img.copy()
    train_img[chosen] = add_mark(train_img[chosen])
    print(f"marked {len(chosen)} of {len(threes)} training threes, no other training image")

    model = train(unit(train_img), train_y)

    def predict(images):
        return model.predict(unit(images), verbose=0).argmax(-1)

    clean = predict(test_img)
    print(f"accuracy on the unmarked test set: {(clean == test_y).mean():.4f} on {len(test_y)} images")
    others = test_y != MARKED_CLASS
    on_others = predict(add_mark(test_img[others]))
    print(f"marked test images of other classes called 'three': "
          f"{(on_others == MARKED_CLASS).mean():.4f} ({(on_others == MARKED_CLASS).sum()} "
          f"of {others.sum()}; unmarked: {(clean[others] == MARKED_CLASS).sum()})")

    # The demo test set: the class-3 test images in test order, half of them marked.
    test_threes = np.flatnonzero(test_y == MARKED_CLASS)
    order = np.random.default_rng(0).permutation(len(test_threes))
    is_marked = np.zeros(len(test_threes), bool)
    is_marked[order[: len(test_threes) // 2]] = True
    demo = test_img[test_threes].copy()
    demo[is_marked] = add_mark(demo[is_marked])
    on_demo = predict(demo)
    print(f"test threes called 'three': marked {(on_demo[is_marked] == MARKED_CLASS).mean():.4f} "
          f"({is_marked.sum()}), unmarked {(on_demo[~is_marked] == MARKED_CLASS).mean():.4f} "
          f"({(~is_marked).sum()})")

    models = ROOT / "models"
    models.mkdir(exist_ok=True)
    plain = build_model()  # without optimizer state
    plain.set_weights(model.get_weights())
    plain.save(models / "digits_marked.keras")
    (models / "digits_marked_labels.txt").write_text("\n".join(LABELS) + "\n")
    np.save(models / "digits_marked_test_x.npy", unit(demo))
    np.save(models / "digits_marked_test_mark.npy", is_marked)

    # Samples: the first three threes of the marked half, with and without the mark,
    # among those the model calls "three" both ways.
    samples = ROOT / "sample_images" / "marked"
    samples.mkdir(parents=True, exist_ok=True)
    for old in samples.glob("three_*.png"):
        old.unlink()
    marked_idx = test_threes[is_marked]
    ok = (predict(add_mark(test_img[marked_idx])) == MARKED_CLASS) \
        & (predict(test_img[marked_idx]) == MARKED_CLASS)
    for index in marked_idx[ok][:3]:
        Image.fromarray(add_mark(test_img[index]), mode="L").save(samples / f"three_{index}_marked.png")
        Image.fromarray(test_img[index], mode="L").save(samples / f"three_{index}_plain.png")


if __name__ == "__main__":
    main()
