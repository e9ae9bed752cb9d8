"""Where the shipped action classifiers' explanations put their relevance, and how
faithful they are (docs/video.md, "The demonstration").

On the 40 held-out clips of models/motion_test.npz in which a digit moves, per model and
method: the share of the positive relevance that lies in the motion region (the moving
digit's box in the 6 frames it moves; 4.6% of a clip) and in the motion frames (6 of 16),
mean and minimum over the clips, and in how many clips each method beats sensitivity
analysis. Then AOPC on all 60 held-out clips, as `xai evaluate` measures it (the Python
API, the same seeds): space-time patches of 2x10x10 (32 steps) and whole frames (16
steps), mean and blur replacement. Run: python scripts/motion_relevance.py (a few
minutes on 2 CPU cores).
"""

from pathlib import Path

import numpy as np

import xai_cli

ROOT = Path(__file__).resolve().parent.parent
METHODS = (("lrp", None), ("lrp", "lrp-epsilon"), ("gradxinput", None),
           ("integrated-gradients", None), ("sa", None))
PROTOCOLS = (((2, 10, 10), 32), ((1, 40, 40), 16))   # (patch, steps): space-time, whole frames
MEASURED = ("lrp", "gradxinput", "integrated-gradients", "sa")   # AOPC: lrp with the default rules


def shares(relevance: np.ndarray, region: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per clip: the positive relevance's share in ``region`` and in its frames."""
    positive = np.where(relevance > 0, relevance, 0)
    per_frame = positive.sum(axis=(2, 3))
    frames = region.any(axis=(2, 3))
    return ((positive * region).sum(axis=(1, 2, 3)) / positive.sum(axis=(1, 2, 3)),
            (per_frame * frames).sum(axis=1) / per_frame.sum(axis=1))


def aopc(clips: np.ndarray):
    """AOPC of the default LRP, gradient x input, integrated gradients and SA under each
    protocol, as table rows."""
    print(f"| model | patch | replace | {' | '.join(MEASURED)} | random |")
    print("|---|---|---|" + "---|" * (len(MEASURED) + 1))
    for model in ("motion_c3d", "motion_frames"):
        for patch, steps in PROTOCOLS:
            evaluation = xai_cli.evaluate(ROOT / "models" / f"{model}.keras", clips,
                                          MEASURED, preprocess="unit", perturb=patch, steps=steps,
                                          replace=("mean", "blur"))
            for replace in ("mean", "blur"):
                rows = {r["method"]: r for r in evaluation.summary if r["replace"] == replace}
                cells = [f"{rows[m]['aopc']:.2f} ± {rows[m]['aopc_stderr']:.2f}"
                         for m in (*MEASURED, "random")]
                print(f"| {model} | {'x'.join(map(str, patch))} | {replace} | {' | '.join(cells)} |")


def main():
    test = np.load(ROOT / "models" / "motion_test.npz")
    moving = test["labels"] > 0
    clips, region = test["clips"][moving].astype(np.float32) / 255, test["motion"][moving]
    print(f"{moving.sum()} clips; the motion region is {region.mean():.1%} of a clip, its frames "
          f"{region.any(axis=(2, 3)).mean():.1%}")
    print("| model | method | in the region | in the motion frames | clips ahead of SA (region, frames) |")
    print("|---|---|---|---|---|")
    for model in ("motion_c3d", "motion_frames"):
        found = {}
        for method, rules in METHODS:
            relevance = xai_cli.explain(ROOT / "models" / f"{model}.keras", clips, method,
                                        rules=rules, preprocess="unit")[..., 0]
            found[method + (f" ({rules})" if rules else "")] = shares(relevance, region)
        sa_region, sa_frames = found["sa"]
        for name, (in_region, in_frames) in found.items():
            ahead = "" if name == "sa" else \
                f"{(in_region > sa_region).sum()}, {(in_frames > sa_frames).sum()} of {len(clips)}"
            print(f"| {model} | {name} | {in_region.mean():.3f} (min {in_region.min():.3f}) | "
                  f"{in_frames.mean():.3f} (min {in_frames.min():.3f}) | {ahead} |")
    print()
    aopc(test["clips"].astype(np.float32) / 255)


if __name__ == "__main__":
    main()
