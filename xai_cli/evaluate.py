"""The evaluate job: perturbation curves and AOPC per method, with a random-order baseline.

For each batch, every method's relevance is computed once; the perturbed copies of all
its images and steps then go through the compiled model in large chunks. Curves are
streamed to ``curves.csv``; ``summary.csv`` and ``curves.png`` are written at the end.
Randomness (uniform replacement values, random order) is seeded per input from
``--seed`` and the input's position, so results do not depend on batching.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import perturbation as pa
from .engine import Scorer
from .errors import XaiError
from .explainers import make_explainer
from .methods import METHODS
from .outputs import CsvRows, atomic_open, atomic_write, save_csv
from .session import Report, Session

CURVE_COLUMNS = ("image", "method", "step", "fraction_perturbed", "score", "relative_score")
SUMMARY_COLUMNS = ("method", "n_images", "aopc", "aopc_stderr", "order", "perturb", "steps",
                   "replace", "seed")
RANDOM = "random"


@dataclass
class EvaluateOptions:
    methods: tuple[str, ...] = ("lrp",)
    perturb: tuple[int, int] = (9, 9)
    steps: int | None = None
    order: str = "morf"
    replace: str = "uniform"
    score: str = "logit"
    chunk: int = 256


class _Tally:
    """Per-method AOPC values and running sums of the relative curves."""

    def __init__(self, steps: int):
        self.aopc: list[float] = []
        self.relative = np.zeros(steps + 1)

    def add(self, curves: np.ndarray) -> None:
        self.aopc.extend(pa.aopc(curves))
        self.relative += (curves / curves[:, :1]).sum(axis=0)


def _steps(session: Session, options: EvaluateOptions) -> int:
    _, patches = pa.patch_ids(session.graph.input_shape[:2], options.perturb)
    steps = min(patches, 100) if options.steps is None else options.steps
    if steps < 0:
        raise XaiError(f"--steps must be >= 0, got {steps}")
    return steps


def run(session: Session, options: EvaluateOptions, report: Report, progress=None) -> None:
    """Evaluate every method of ``options`` on the inputs of ``session``."""
    graph, opts = session.graph, session.options
    valid_range = session.preprocessing.valid_range(graph.input_shape[-1])
    if options.replace == "uniform" and valid_range is None:
        raise XaiError("--replace uniform draws from the input's valid range: choose a "
                       "--preprocess preset, or use --replace mean or blur")
    steps = _steps(session, options)
    explainers = {m: make_explainer(graph, METHODS[m], session.composite, session.preprocessing,
                                    opts.seed) for m in options.methods}
    methods = list(options.methods) + [RANDOM]
    tallies = {m: _Tally(steps) for m in methods}
    scorer = Scorer(graph)
    opts.out.mkdir(parents=True, exist_ok=True)
    with atomic_open(opts.out / "curves.csv", "w") as handle:
        rows = CsvRows(handle, CURVE_COLUMNS)
        for samples, index in session.loaded(report, progress=progress):
            _evaluate_batch(session, options, explainers, scorer, samples, index, steps,
                            valid_range, tallies, rows, report)
    _write_summary(session, options, steps, tallies)


def _rngs(seed: int, indices, stream: int) -> list[np.random.Generator]:
    return [np.random.default_rng([seed, int(i), stream]) for i in indices]


def _evaluate_batch(session, options, explainers, scorer, samples, index, steps, valid_range,
                    tallies, rows, report):
    seed = session.options.seed
    x = np.stack([s.x for s in samples])
    targets = np.full(len(x), session.target, np.int32)
    relevance = {}
    for method, explainer in explainers.items():
        result = explainer.explain(x, targets, index)
        relevance[method], targets = result.relevance, result.targets
    bad = [m for m, r in relevance.items() if not np.all(np.isfinite(r))]
    if bad:
        raise XaiError(f"relevance contains NaN or Inf for {', '.join(bad)}")
    replacement = pa.replacement_values(x, options.replace, valid_range, _rngs(seed, index, 0),
                                        sigma=max(options.perturb) / 2)
    ids, patches = pa.patch_ids(x.shape[1:3], options.perturb)

    def score(batch, image):
        logits = scorer(batch)
        if options.score == "prob":
            logits = np.exp(logits - logits.max(axis=1, keepdims=True))
            logits /= logits.sum(axis=1, keepdims=True)
        return logits[np.arange(len(batch)), targets[image]]

    per_image, curves_of, fractions_of = {}, {}, {}
    for method in tallies:
        order = RANDOM if method == RANDOM else options.order
        scores = pa.patch_scores(relevance[method], options.perturb) if method in relevance \
            else np.zeros((len(x), patches))
        ranks = pa.pixel_ranks(pa.patch_order(scores, order, _rngs(seed, index, 1)), ids)
        curves = pa.perturbation_curves(score, x, ranks, replacement, steps, options.chunk)
        tallies[method].add(curves)
        curves_of[method], fractions_of[method] = curves, pa.fraction_perturbed(ranks, steps)
        per_image[method] = pa.aopc(curves)
    rows.write((s.item.stem, m, k, fractions_of[m][i, k], curves_of[m][i, k],
                curves_of[m][i, k] / curves_of[m][i, 0])
               for i, s in enumerate(samples) for m in tallies for k in range(steps + 1))
    for i, sample in enumerate(samples):
        report.record({"input": sample.item.source, "index": sample.item.index, "status": "ok",
                       "target": int(targets[i]), "target_label": session.label(int(targets[i])),
                       "aopc": {m: float(v[i]) for m, v in per_image.items()}})


def _write_summary(session, options, steps, tallies):
    out, perturb = session.options.out, "x".join(map(str, options.perturb))
    rows = []
    for method, tally in tallies.items():
        mean, stderr = pa.mean_and_stderr(tally.aopc)
        order = RANDOM if method == RANDOM else options.order
        rows.append((method, len(tally.aopc), mean, stderr, order, perturb, steps, options.replace,
                     session.options.seed))
    save_csv(out / "summary.csv", SUMMARY_COLUMNS, rows)
    curves = {m: t.relative / max(len(t.aopc), 1) for m, t in tallies.items() if t.aopc}
    if curves:
        title = f"region perturbation {perturb}, {options.order}, {options.replace} " \
                f"({len(next(iter(tallies.values())).aopc)} images)"
        atomic_write(out / "curves.png", lambda f: pa.plot_curves(curves, f, title))
