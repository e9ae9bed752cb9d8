"""Measure the default rules against the baselines and against rule variants, paired.

For one model and one folder of photos it runs (with ``--run``; otherwise it only reads
what an earlier run left in ``--out``):

- ``xai evaluate`` with the default rules and LRP, integrated gradients and gradient x
  input, under uniform noise, a blurred copy and ROAD (9x9 patches, 50 steps, MoRF);
  its comparisons.csv pairs LRP with each baseline and with the random order;
- ``xai evaluate -m lrp`` once per variant config in ``docs/faithfulness/`` (the same
  seed, so the same noise and the same random order), paired here with the default's
  per-photo AOPC from the records;
- ``xai explain -m lrp`` per config, for the share of the explained score that reaches
  the input (the records' ``conserved``).

and prints the two Markdown tables of the README's "How faithful are the default rules".

    .venv/bin/python scripts/faithfulness_table.py --model models/efficientnet_lite0.keras \\
        --out out/faithfulness/lite0 --run
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from xai_cli.measures import paired
from xai_cli.measures.faithfulness import bootstrap_rng

ROOT = Path(__file__).resolve().parents[1]

PROTOCOLS = ("uniform", "blur", "road")
BASELINES = ("integrated-gradients", "gradxinput")
VARIANTS = sorted(p.stem for p in (ROOT / "docs" / "faithfulness").glob("*.yaml"))
MEASURE = ("--perturb", "9x9", "--steps", "50", "--seed", "0", "--batch-size", "12",
           *(a for r in PROTOCOLS for a in ("--replace", r)),
           "--skip-existing")   # a killed table resumes from the batches it stored


def xai(*args) -> None:
    command = [str(ROOT / ".venv" / "bin" / "xai"), *map(str, args)]
    print("$", " ".join(command), file=sys.stderr, flush=True)
    subprocess.run(command, check=False, stdout=subprocess.DEVNULL)


def run(model: Path, photos: Path, out: Path) -> None:
    xai("evaluate", model, photos, "-m", "lrp", *(a for b in BASELINES for a in ("-m", b)),
        *MEASURE, "-o", out / "default")
    xai("explain", model, photos, "-m", "lrp", "-o", out / "default-explain")
    for variant in VARIANTS:
        config = ROOT / "docs" / "faithfulness" / f"{variant}.yaml"
        xai("evaluate", model, photos, "-r", config, "-m", "lrp", *MEASURE, "-o", out / variant)
        xai("explain", model, photos, "-r", config, "-m", "lrp", "-o", out / f"{variant}-explain")


def records(folder: Path, command: str) -> dict[tuple, dict]:
    """The job's ok records by (input, index): the samples of one .npy batch share a path."""
    lines = (folder / "records" / f"{command}.jsonl").read_text().splitlines()
    return {(r["input"], r.get("index")): r for r in map(json.loads, lines) if r["status"] == "ok"}


def aopc(folder: Path, method: str, replace: str, inputs: list[tuple]) -> np.ndarray:
    found = records(folder, "evaluate")
    return np.array([found[i]["aopc_by_replace"][replace][method] for i in inputs])


def conserved(folder: Path) -> tuple[float, float]:
    shares = np.array([r["conserved"]["lrp"] for r in records(folder, "explain").values()])
    return float(np.median(shares)), float(np.mean(shares >= 0.5))


def cell(values: np.ndarray) -> str:
    return f"{values.mean():.2f} ± {values.std(ddof=1) / np.sqrt(len(values)):.2f}"


def difference(a: np.ndarray, b: np.ndarray) -> str:
    result = paired.compare(a, b, bootstrap_rng(0))   # as comparisons.csv with --seed 0
    return f"{result.difference:+.2f} [{result.low:+.2f}, {result.high:+.2f}]"


def tables(out: Path) -> str:
    default = out / "default"
    inputs = sorted(records(default, "evaluate"))
    lines = [f"{len(inputs)} photos; AOPC ± stderr; paired differences with 95% bootstrap CI",
             "", "| protocol | LRP (default) | integrated gradients | gradient x input | random "
             "| LRP - IG | LRP - gxi | LRP - random |", "|---" * 8 + "|"]
    for replace in PROTOCOLS:
        lrp, *others = (aopc(default, m, replace, inputs)
                        for m in ("lrp", *BASELINES, "random"))
        lines.append(f"| {replace} | {cell(lrp)} | "
                     + " | ".join(cell(o) for o in others) + " | "
                     + " | ".join(difference(lrp, o) for o in others) + " |")
    median, half = conserved(out / "default-explain")
    lines += ["", "| config | reaches the input (median) | photos with >= 50% | "
              + " | ".join(f"{r}: variant - default" for r in PROTOCOLS) + " |",
              "|---" * (3 + len(PROTOCOLS)) + "|",
              f"| default | {median:.1%} | {half:.0%} |" + " |" * len(PROTOCOLS)]
    for variant in VARIANTS:
        if not (out / variant / "records").is_dir():
            continue
        median, half = conserved(out / f"{variant}-explain")
        kept = sorted(set(inputs) & set(records(out / variant, "evaluate")))
        cells = [difference(aopc(out / variant, "lrp", r, kept), aopc(default, "lrp", r, kept))
                 for r in PROTOCOLS]
        lines.append(f"| {variant} | {median:.1%} | {half:.0%} | " + " | ".join(cells) + " |"
                     + ("" if len(kept) == len(inputs) else f" ({len(kept)} photos)"))
    return "\n".join(lines)


def arguments(doc: str, run_job) -> argparse.Namespace:
    """--model, --photos, --out and --run of a table script; runs ``run_job(model, photos,
    out)`` first with --run."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--photos", type=Path, default=ROOT / "sample_images" / "photos")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--run", action="store_true", help="run xai first (else only read)")
    args = parser.parse_args()
    if args.run:
        run_job(args.model, args.photos, args.out)
    return args


def main() -> None:
    print(tables(arguments(__doc__, run).out))


if __name__ == "__main__":
    main()
