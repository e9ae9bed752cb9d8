"""Measure AttnLRP against CP-LRP, the gradient baselines and attention rollout, paired.

For a Transformer and its inputs (images: region perturbation in 8x8 patches; text with
--text: word deletion, 10 words, on a file of documents one a line) it runs (with
``--run``; otherwise it only reads what an earlier run left in ``--out``) ``xai
evaluate`` with the ``attnlrp`` config and
LRP, integrated gradients, gradient x input, rollout and sensitivity analysis, then
``xai evaluate -m lrp`` with the ``cp-lrp`` config (the same seed, so the same noise and
the same random order), and prints the README's Markdown table: AOPC per method and
protocol, and AttnLRP's paired differences with 95% bootstrap intervals.

    .venv/bin/python scripts/attention_faithfulness.py --model models/digits_vit.keras \\
        --inputs models/digits_test_x.npy --out out/faithfulness/vit --run
    .venv/bin/python scripts/attention_faithfulness.py --model models/text_transformer.keras \\
        --inputs sample_texts/heldout/documents.txt --text --out out/faithfulness/text --run
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from faithfulness_table import aopc, cell, difference, records, xai

BASELINES = ("integrated-gradients", "gradxinput", "rollout", "sa")
PROTOCOLS = {   # images: region perturbation, one token a patch; text: word deletion
    "image": ("uniform", "mean", "blur"),
    "text": ("zero", "unknown", "pad"),
}
MEASURES = {
    "image": ("--perturb", "8x8", "--steps", "16", "--batch-size", "50"),
    "text": ("--lines", "--steps", "10"),
}


def run(model: Path, inputs: Path, out: Path, kind: str) -> None:
    measure = (*MEASURES[kind], "--seed", "0", *(a for r in PROTOCOLS[kind] for a in ("--replace", r)))
    xai("evaluate", model, inputs, "-r", "attnlrp", "-m", "lrp",
        *(a for b in BASELINES for a in ("-m", b)), *measure, "-o", out / "attnlrp")
    xai("evaluate", model, inputs, "-r", "cp-lrp", "-m", "lrp", *measure, "-o", out / "cp-lrp")


def table(out: Path, protocols: tuple) -> str:
    inputs = sorted(records(out / "attnlrp", "evaluate"))
    methods = ("CP-LRP", "integrated gradients", "gradient x input", "rollout", "SA", "random")
    lines = [f"{len(inputs)} inputs; AOPC ± stderr; AttnLRP's paired differences with 95% "
             "bootstrap CI", "", "| protocol | AttnLRP | " + " | ".join(methods) + " | "
             + " | ".join(f"AttnLRP - {m}" for m in methods) + " |",
             "|---" * (2 + 2 * len(methods)) + "|"]
    for replace in protocols:
        attnlrp = aopc(out / "attnlrp", "lrp", replace, inputs)
        others = [aopc(out / "cp-lrp", "lrp", replace, inputs),
                  *(aopc(out / "attnlrp", m, replace, inputs) for m in (*BASELINES, "random"))]
        lines.append(f"| {replace} | {cell(attnlrp)} | " + " | ".join(cell(o) for o in others)
                     + " | " + " | ".join(difference(attnlrp, o) for o in others) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--inputs", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--text", action="store_true", help="a text model: word deletion on "
                        "the documents of a file, one a line")
    parser.add_argument("--run", action="store_true", help="run xai first (else only read)")
    args = parser.parse_args()
    kind = "text" if args.text else "image"
    if args.run:
        run(args.model, args.inputs, args.out, kind)
    print(table(args.out, PROTOCOLS[kind]))


if __name__ == "__main__":
    sys.exit(main())
