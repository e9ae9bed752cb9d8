"""Where the shipped GunPoint classifiers' explanations put their relevance (docs/signals.md,
"The GunPoint demonstration").

Each of the 150 test series (models/gunpoint_test_x.npy) is cut into the phases of the
motion, found from the series itself: the rise is where the hand first goes above the
middle of the series' range, the fall where it last does. "Leaving the hip" is the 20 steps
before the rise and 5 after it (drawing the gun from the holster), "returning" the 5 steps
before the fall and 20 after it (putting it back), the plateau between them (pointing) and
the rest before and after. Per model, method and class: the share of the positive relevance
for the true class in each phase, and in brackets the share of the series' time the phase
takes (relevance spread evenly would match it). Run: python scripts/gunpoint_relevance.py
(about 20 s on 2 CPU cores).
"""

from pathlib import Path

import numpy as np

import xai_cli

ROOT = Path(__file__).resolve().parent.parent
MODELS = ("gunpoint_cnn", "gunpoint_gru")
METHODS = ("lrp", "sa")
CLASSES = ("gun", "point")
LEAD, TRAIL = 20, 5   # steps of a move before and after the hand crosses the middle


def phases(series: np.ndarray) -> dict[str, np.ndarray]:
    """Masks (N, T) of the motion's phases of each series (N, T)."""
    middle = (series.max(axis=1, keepdims=True) + series.min(axis=1, keepdims=True)) / 2
    above = series > middle
    rise = above.argmax(axis=1)[:, None]
    fall = (series.shape[1] - 1 - above[:, ::-1].argmax(axis=1))[:, None]
    t = np.arange(series.shape[1])[None]
    return {"rest before": t < rise - LEAD,
            "leaving the hip": (t >= rise - LEAD) & (t < rise + TRAIL),
            "plateau": (t >= rise + TRAIL) & (t <= fall - TRAIL),
            "returning": (t > fall - TRAIL) & (t <= fall + LEAD),
            "rest after": t > fall + LEAD}


def main() -> None:
    x = np.load(ROOT / "models" / "gunpoint_test_x.npy")
    y = np.load(ROOT / "models" / "gunpoint_test_y.npy")
    masks = phases(x[..., 0])
    for model in MODELS:
        for method in METHODS:
            relevance = xai_cli.explain(ROOT / "models" / f"{model}.keras", x, method,
                                        target=[int(c) for c in y])[..., 0]
            positive = np.clip(relevance, 0, None)
            for number, name in enumerate(CLASSES):
                rows = y == number
                total = positive[rows].sum(axis=1).mean()
                cells = [f"{phase} {(positive[rows] * mask[rows]).sum(axis=1).mean() / total:.2f} "
                         f"({mask[rows].mean():.2f})" for phase, mask in masks.items()]
                print(f"{model:13} {method:4} {name:6}", " | ".join(cells))


if __name__ == "__main__":
    main()
