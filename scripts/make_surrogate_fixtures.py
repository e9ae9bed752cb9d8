"""LIME reference coefficients from the ``lime`` package, for tests/engine/test_method_references.py.

The small CNN and inputs of ``tests/fixtures/methods`` (scripts/make_method_fixtures.py),
cut into SLIC superpixels as xai cuts them (stored, so the test can check its own cut),
explained by ``lime_image.LimeImageExplainer`` with hidden segments grey (0.5), its kernel
width 0.25, 300 samples and the random state xai seeds input ``i`` with (``i`` at
``--seed 0``), so that both draw the same coalitions. Run it where ``lime`` is installed
(not a dependency of xai), e.g. the reference environment of make_method_fixtures.py:

    /tmp/refenv/bin/pip install lime scikit-image
    /tmp/refenv/bin/python scripts/make_surrogate_fixtures.py
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
from lime import lime_image
from skimage.segmentation import slic

HERE = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "methods"
SEGMENTS, SAMPLES, WIDTH, GREY = 16, 300, 0.25, 0.5


def cut(image: np.ndarray) -> np.ndarray:
    """SLIC as xai's surrogates call it: the image scaled to [0, 1] as a whole."""
    low, high = image.min(), image.max()
    labels = slic(((image - low) / (high - low)).astype(np.float64), n_segments=SEGMENTS,
                  compactness=10, start_label=0, channel_axis=-1, convert2lab=True)
    return np.unique(labels, return_inverse=True)[1].reshape(labels.shape)


def main() -> None:
    model = keras.models.load_model(HERE / "cnn.keras")
    x = np.load(HERE / "inputs.npy")
    targets = np.load(HERE / "references.npz")["targets"]
    labels = np.stack([cut(image) for image in x])
    coefficients = np.full((len(x), labels.max() + 1), np.nan, np.float64)
    for i, (image, target) in enumerate(zip(x, targets)):
        explainer = lime_image.LimeImageExplainer(kernel_width=WIDTH, random_state=i)
        found = explainer.explain_instance(
            image.astype(np.float64), lambda batch: np.asarray(model.predict(batch, verbose=0), np.float64),
            labels=(int(target),), hide_color=GREY, top_labels=None, num_features=100_000,
            num_samples=SAMPLES, batch_size=50, segmentation_fn=lambda _, i=i: labels[i],
            random_seed=i)
        for segment, value in found.local_exp[int(target)]:
            coefficients[i, segment] = value
    np.savez_compressed(HERE / "surrogates.npz", segments=labels.astype(np.int32),
                        lime=coefficients.astype(np.float32))
    print("segments per input", [int(s.max()) + 1 for s in labels])


if __name__ == "__main__":
    main()
