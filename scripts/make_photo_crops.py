"""Cut 224x224 photo crops for the ImageNet demo model from photos that ship in PyPI packages.

Sources (origin and licence as the packages state them: see sample_images/photos/README.md):
scikit-image's bundled ``skimage.data`` (astronaut, chelsea, coffee, rocket,
camera; not stereo_motorcycle, for which no licence is stated), scikit-learn's
``load_sample_image`` (china.jpg, flower.jpg) and matplotlib's sample data
(grace_hopper.jpg). Nothing is downloaded.

Each crop is a fixed square ``(x, y, side)`` in source pixels, resized to 224x224 with
Pillow's Lanczos filter and written as ``sample_images/photos/<photo>_<k>.jpg`` (JPEG
quality 95, no chroma subsampling).  The crop list was chosen by hand so that each crop
mostly shows one ImageNet-recognisable object, and kept only where EfficientNet-Lite0's
top-1 class is a plausible label.  After writing, the script runs
``models/efficientnet_lite0.keras`` (inputs pixel / 255, i.e. xai's ``--preprocess unit``)
on every crop and prints top-1 class, label and softmax probability.

Run from the repository root, in the porting virtualenv (see
scripts/port_efficientnet_lite.py; needs Pillow, scikit-image, scikit-learn, matplotlib,
and Keras + TensorFlow for the prediction table):

    /work/portenv/bin/pip install pillow scikit-image scikit-learn matplotlib
    /work/portenv/bin/python scripts/make_photo_crops.py

Deterministic: same package versions give byte-identical JPEGs.
"""

from __future__ import annotations

import argparse
import glob
import os

import numpy as np
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIZE = 224

# photo -> list of (x, y, side) squares in source pixel coordinates.  Candidates that were
# tried and dropped because the model's top-1 was implausible or near-uniform:
# astronaut (0,0,512) "bobsled", (330,0,182) shuttle model "fountain pen", (90,0,300)
# "crash helmet" p=0.03, (0,0,140) flag "pinwheel"; china (330,180,200) lake "boathouse"
# p=0.07; flower (200,120,200) "sea anemone", (260,340,87) tiny bud; grace_hopper
# (290,460,140) ribbons "container ship".
CROPS: dict[str, list[tuple[int, int, int]]] = {
    "astronaut": [(300, 0, 212), (270, 330, 182), (110, 330, 130)],
    "chelsea": [(75, 0, 300), (0, 0, 300), (151, 0, 300), (100, 50, 200), (120, 40, 240)],
    "coffee": [(100, 0, 400), (0, 0, 400), (200, 0, 400), (160, 0, 280), (300, 220, 130),
               (60, 40, 360)],
    "rocket": [(200, 100, 240), (220, 120, 200), (170, 0, 300), (106, 0, 427), (240, 110, 160)],
    "china": [(60, 20, 320), (40, 0, 400), (90, 20, 260), (0, 0, 427), (110, 0, 300)],
    "flower": [(150, 70, 310), (120, 40, 360), (106, 0, 427)],
    "grace_hopper": [(0, 0, 512), (0, 88, 512), (100, 0, 320), (150, 20, 230), (70, 300, 300)],
    "camera": [(0, 0, 512), (200, 100, 200), (180, 280, 232), (100, 50, 300)],
}


def load_photos() -> dict[str, Image.Image]:
    import matplotlib.cbook
    import skimage.data
    from sklearn.datasets import load_sample_image

    arrays = {
        "astronaut": skimage.data.astronaut(),
        "chelsea": skimage.data.chelsea(),
        "coffee": skimage.data.coffee(),
        "rocket": skimage.data.rocket(),
        "camera": skimage.data.camera(),
        "china": load_sample_image("china.jpg"),
        "flower": load_sample_image("flower.jpg"),
    }
    photos = {name: Image.fromarray(np.asarray(a, np.uint8)).convert("RGB")
              for name, a in arrays.items()}
    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as f:
        photos["grace_hopper"] = Image.open(f).convert("RGB")
    return photos


def make_crops(out_dir: str) -> list[str]:
    os.makedirs(out_dir, exist_ok=True)
    for old in glob.glob(os.path.join(out_dir, "*.jpg")):
        os.remove(old)
    photos = load_photos()
    paths = []
    for name, boxes in CROPS.items():
        img = photos[name]
        for k, (x, y, s) in enumerate(boxes):
            assert x >= 0 and y >= 0 and x + s <= img.width and y + s <= img.height, (name, k)
            crop = img.crop((x, y, x + s, y + s)).resize((SIZE, SIZE), Image.LANCZOS)
            path = os.path.join(out_dir, f"{name}_{k}.jpg")
            crop.save(path, quality=95, subsampling=0)
            paths.append(path)
    return paths


def predict(paths: list[str], model_path: str, labels_path: str) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    model = keras.saving.load_model(model_path, safe_mode=True)
    with open(labels_path, encoding="utf-8") as f:
        labels = [line.rstrip("\n") for line in f]
    x = np.stack([np.asarray(Image.open(p).convert("RGB"), np.float32) / 255.0 for p in paths])
    logits = np.asarray(model.predict(x, batch_size=16, verbose=0), np.float64)
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    print(f"{'crop':22s} {'class':>5s}  {'label':28s} {'p':>6s}   top-2 .. top-3")
    for p, pr in zip(paths, probs):
        top = np.argsort(-pr)[:3]
        rest = ", ".join(f"{labels[c]} {pr[c]:.2f}" for c in top[1:])
        print(f"{os.path.basename(p):22s} {top[0]:5d}  {labels[top[0]]:28s} {pr[top[0]]:6.3f}   {rest}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=os.path.join(ROOT, "sample_images", "photos"))
    ap.add_argument("--model", default=os.path.join(ROOT, "models", "efficientnet_lite0.keras"))
    ap.add_argument("--labels", default=os.path.join(ROOT, "xai_cli", "labels", "imagenet.txt"))
    ap.add_argument("--no-predict", action="store_true", help="only write the crops")
    args = ap.parse_args()
    paths = make_crops(args.out)
    print(f"wrote {len(paths)} crops to {args.out}")
    if not args.no_predict:
        predict(paths, args.model, args.labels)


if __name__ == "__main__":
    main()
