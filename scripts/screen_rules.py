"""Screen candidate LRP rule configs on EfficientNet-Lite0: the table in the README's
"Faithful by default" section.

Every candidate, gradient x input and one shared random order are measured with the
evaluate core (`evaluate_batch`) on every third photo crop (12 of 36), 9x9 patches,
50 steps, uniform noise and a blurred copy. About 5 minutes on 2 CPU cores:

    .venv/bin/python scripts/screen_rules.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from xai_cli.engine import composites
from xai_cli.engine.explainers import make_explainer
from xai_cli.engine.methods import METHODS
from xai_cli.engine.propagation import Scorer
from xai_cli.jobs import tune
from xai_cli.measures.faithfulness import EvaluateOptions
from xai_cli.session import Options, Report, open_session

ROOT = Path(__file__).resolve().parents[1]
ZBOX = "{match: {first: true}, rule: zbox}"
CANDIDATES = {
    "epsilon-gamma-box": [ZBOX, "{match: {type: Convolution}, rule: gamma, gamma: 0.25}"],
    "lrp-epsilon": [],
    "zB first, epsilon above": [ZBOX],
    "gamma on full convolutions feeding a ReLU":
        [ZBOX, "{match: {type: FullConvolution, followed_by: relu}, rule: gamma, gamma: 0.25}"],
    "gamma on depthwise convolutions":
        [ZBOX, "{match: {type: DepthwiseConvolution}, rule: gamma, gamma: 0.25}"],
    "gamma on convolutions feeding a ReLU":
        [ZBOX, "{match: {type: Convolution, followed_by: relu}, rule: gamma, gamma: 0.25}"],
}


def config(entries: list[str]) -> str:
    return ("canonizers: [merge-batchnorm]\nrules:\n" + "".join(f"  - {e}\n" for e in entries)
            + "default: {rule: epsilon, epsilon: 1.0e-6}\n") if entries else \
        "canonizers: [merge-batchnorm]\ndefault: {rule: epsilon, epsilon: 1.0e-6}\n"


def main() -> None:
    session = open_session(Options(model=str(ROOT / "models" / "efficientnet_lite0.keras"),
                                   images=(str(ROOT / "sample_images" / "photos"),),
                                   batch_size=16))
    data = tune.load_all(session, Report())
    data = data.take(np.arange(0, len(data.x), 3))
    explainers = {name: make_explainer(session.graph, METHODS["lrp"],
                                       composites.parse(config(entries), name),
                                       session.preprocessing)
                  for name, entries in CANDIDATES.items()}
    explainers["gradxinput"] = make_explainer(session.graph, METHODS["gradxinput"],
                                              session.composite, session.preprocessing)
    options = EvaluateOptions(perturb=(9, 9), steps=50, replace=("uniform", "blur"))
    tally = tune.measure(explainers, Scorer(session.graph), data, -1, options,
                           session.kind, seed=0, batch_size=16)
    print(f"{len(data.x)} crops, 9x9 patches, 50 steps; AOPC +- standard error")
    print(f"{'candidate':45s} {'uniform':>16s} {'blur':>16s}")
    for name in [*explainers, "random"]:
        cells = [f"{v.mean():7.2f} +- {v.std(ddof=1) / np.sqrt(len(v)):.2f}"
                 for v in (np.asarray(tally.values["aopc", name, r]) for r in options.replace)]
        print(f"{name:45s} {cells[0]:>16s} {cells[1]:>16s}")


if __name__ == "__main__":
    main()
