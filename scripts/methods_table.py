"""Measure the default LRP against every other method in one evaluation, paired.

For one model and one folder of photos it runs (with ``--run``; otherwise it only reads
what an earlier run left in ``--out``) ``xai evaluate`` with the default rules' LRP and
every other method for images, under uniform noise, a blurred copy and ROAD (9x9 patches,
50 steps, MoRF, seed 0), and prints the README's table: each method's AOPC and LRP's
paired difference to it with its 95% bootstrap interval (as comparisons.csv has them).

    .venv/bin/python scripts/methods_table.py --model models/efficientnet_lite0.keras \\
        --out out/methods/lite0 --run
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from faithfulness_table import MEASURE, PROTOCOLS, ROOT, aopc, arguments, cell, difference, records, xai

OTHERS = ("deeplift", "gradcam", "gradcam++", "occlusion", "rise", "lime", "kernelshap",
          "integrated-gradients", "smoothgrad", "gradxinput", "sa", "guided-backprop")
MASKS = ROOT / "sample_images" / "photo_masks"


def run(model: Path, photos: Path, out: Path) -> None:
    xai("evaluate", model, photos, *(a for m in ("lrp", *OTHERS) for a in ("-m", m)), *MEASURE,
        "--masks", MASKS, "-o", out)


def table(out: Path, network: str) -> str:
    inputs = sorted(records(out, "evaluate"))
    lines = [f"{network}: {len(inputs)} photos; AOPC ± stderr, and LRP's paired difference with "
             "its 95% bootstrap interval (bold: beyond noise)", "",
             "| method | " + " | ".join(PROTOCOLS) + " | " + " | ".join(f"LRP - method, {p}"
                                                             for p in PROTOCOLS) + " |",
             "|---" * (1 + 2 * len(PROTOCOLS)) + "|"]
    lrp = {p: aopc(out, "lrp", p, inputs) for p in PROTOCOLS}
    lines.append("| lrp (default) | " + " | ".join(cell(lrp[p]) for p in PROTOCOLS) + " |"
                 + " |" * len(PROTOCOLS))
    for method in (*OTHERS, "random"):
        scores = {p: aopc(out, method, p, inputs) for p in PROTOCOLS}
        lines.append(f"| {method} | " + " | ".join(cell(scores[p]) for p in PROTOCOLS) + " | "
                     + " | ".join(_bold(difference(lrp[p], scores[p])) for p in PROTOCOLS) + " |")
    return "\n".join(lines)


def pointing_table(out: Path, network: str) -> str:
    """The pointing game on the photos with a hand-drawn mask (localisation.csv): per method
    the mean of each figure, and LRP's paired difference in relevance mass; a random map
    scores the mask's share of the image on all three."""
    with open(out / "localisation.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    figures = ("pointing", "mass", "rank_accuracy")

    def values(method, figure):
        column = "mask_fraction" if method == "random" else figure
        return np.array([float(r[column]) for r in rows if r["method"] == ("lrp" if method == "random"
                                                                          else method)])

    lines = [f"{network}: pointing game on the {len(values('lrp', 'mass'))} photos with a mask "
             "(mean ± stderr)", "",
             "| method | " + " | ".join(figures) + " | LRP - method, mass |", "|---" * 5 + "|"]
    for method in ("lrp", *OTHERS, "random"):
        paired = "" if method == "lrp" else _bold(difference(values("lrp", "mass"), values(method, "mass")))
        lines.append(f"| {method} | " + " | ".join(cell(values(method, f)) for f in figures)
                     + f" | {paired} |")
    return "\n".join(lines)


def _bold(text: str) -> str:
    """The difference in bold where its interval excludes 0 (ahead or behind)."""
    low, high = (float(v) for v in text[text.index("[") + 1:-1].split(", "))
    return f"**{text}**" if low > 0 or high < 0 else text


def main() -> None:
    args = arguments(__doc__, run)
    print(table(args.out, args.model.stem))
    print()
    print(pointing_table(args.out, args.model.stem))


if __name__ == "__main__":
    main()
