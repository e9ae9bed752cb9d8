"""How faithful heatmaps are, one batch at a time: perturbation curves, AOPC, LeRF-MoRF area.

`evaluate_batch` is the core, without files, for any caller with a compiled explainer
(``xai evaluate``, ``xai tune``, the Python API): each method's relevance is computed once
per batch and then perturbed under every replacement protocol, in MoRF (or the chosen)
order, optionally in LeRF order too, and in random order as the baseline. Inputs whose
relevance or perturbed scores are not finite are left out of the result with the reason.
A `Tally` adds batches up into summary rows and mean curves. Randomness (uniform
replacement values, random order) is seeded per input from the seed, the input's position
and a fixed stream per purpose, so results depend neither on batching nor on which other
protocols run.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..engine.propagation import Explainer, Scorer
from ..errors import XaiError
from ..io.preprocess import Preprocessing
from . import localisation, paired
from . import perturbation as pa

RANDOM = "random"
FIGURES = ("aopc", "aopc_lerf", "area")   # per-image figures: BatchResult methods, summary columns
# Seed streams, fixed per purpose: a protocol's draws do not depend on the others asked for.
STREAMS = {"uniform": 0, "order": 1, "mean": 2, "blur": 3, "bootstrap": 4, "road": 5, "zero": 6,
           "noise": 7, "linear": 8}


@dataclass
class EvaluateOptions:
    """What to measure; checked on construction so that every caller gets the same errors."""

    methods: tuple[str, ...] = ("lrp",)
    perturb: tuple[int, ...] | None = None   # a patch (HxW, TxHxW, W); None: the kind's default
    steps: int | None = None
    order: str = "morf"
    replace: tuple[str, ...] = ("uniform",)
    score: str = "logit"
    lerf: bool = False
    chunk: int = 256
    baseline: bool = True   # add the random order (callers that measured it once turn it off)
    sanity: bool = False    # also the model-randomisation check (`xai_cli.jobs.sanity`)
    words: int = 1          # text models: words deleted per step (`xai_cli.kinds.deletion`)

    def __post_init__(self):
        if self.lerf and self.order != "morf":
            raise XaiError("--lerf adds least-relevant-first curves to the most-relevant-first "
                           f"ones: use it with --order morf (the default), not --order "
                           f"{self.order}")
        if self.words < 1:
            raise XaiError(f"--words must be at least 1, got {self.words}")
        known = tuple(dict.fromkeys(pa.REPLACEMENTS + pa.WORD_REPLACEMENTS + pa.SIGNAL_REPLACEMENTS))
        unknown = [r for r in self.replace if r not in known]
        if unknown:
            raise XaiError(f"--replace must be one or more of {', '.join(known)}, "
                           f"got {', '.join(self.replace)}")

    @property
    def deletes_words(self) -> bool:
        """Word deletion (a text model's documents), not region perturbation: the unit is
        words, not a patch (the kind leaves ``perturb`` unset)."""
        return self.perturb is None

    @property
    def unit(self) -> str:
        """What one step removes: a patch size, or a number of words."""
        if self.deletes_words:
            return f"{self.words} word{'s' if self.words > 1 else ''}"
        return "x".join(map(str, self.perturb))

    def with_lerf(self, method: str) -> bool:
        """Whether ``method`` also runs least relevant first (never the random baseline)."""
        return self.lerf and method != RANDOM

    def orders(self, method: str) -> tuple[str, ...]:
        """The orders ``method`` is perturbed in, its own first; the baseline's is random."""
        own = RANDOM if method == RANDOM else self.order
        return (own, "lerf") if self.with_lerf(method) else (own,)


def measured(unit: str) -> str:
    """What a run whose perturbation unit is ``unit`` (:attr:`EvaluateOptions.unit`,
    summary.csv's ``perturb``) measured, in messages: images, clips, signals or documents."""
    if "word" in unit:
        return "documents"
    return {0: "signals", 2: "clips"}.get(unit.count("x"), "images")


def checked_valid_range(preprocessing: Preprocessing, channels: int, options: EvaluateOptions
                        ) -> tuple[np.ndarray, np.ndarray] | None:
    """The input's valid range, which uniform replacement draws from (None if unknown)."""
    valid_range = preprocessing.valid_range(channels)
    if "uniform" in options.replace and valid_range is None:
        raise XaiError("--replace uniform draws from the input's valid range: choose a "
                       "--preprocess preset, or use --replace mean or blur")
    return valid_range


def steps_for(shape: tuple[int, ...], options: EvaluateOptions) -> int:
    """``--steps``, by default the number of patches of an input of ``shape`` (H, W or
    T, H, W; at most 100)."""
    _, patches = pa.patch_ids(shape, options.perturb)
    steps = min(patches, 100) if options.steps is None else options.steps
    if steps < 0:
        raise XaiError(f"--steps must be >= 0, got {steps}")
    return steps


@dataclass
class BatchResult:
    """One batch's perturbation curves, keyed (method, replace, order) in curves.csv order.

    ``fractions`` (share of pixels replaced per step) is keyed (method, order): it does not
    depend on the protocol. Per-image figures come as ``{replace: {method: (N,) array}}``.
    Rows are the inputs in ``kept`` (positions in the batch); ``faults`` gives the reason
    for each input left out.
    """

    options: EvaluateOptions
    targets: np.ndarray
    curves: dict[tuple[str, str, str], np.ndarray]
    fractions: dict[tuple[str, str], np.ndarray]
    kept: np.ndarray
    faults: dict[int, str] = field(default_factory=dict)
    relevance: dict[str, np.ndarray] = field(default_factory=dict)   # summed over channels
    extra: dict[str, np.ndarray] = field(default_factory=dict)       # part-file arrays, per row

    def subset(self, rows: np.ndarray, faults: dict[int, str]) -> BatchResult:
        """The result for ``rows`` (of this result) only; ``faults`` are by batch position."""
        return BatchResult(self.options, self.targets[rows],
                           {k: v[rows] for k, v in self.curves.items()},
                           {k: v[rows] for k, v in self.fractions.items()},
                           self.kept[rows], {**self.faults, **faults},
                           {k: v[rows] for k, v in self.relevance.items()},
                           {k: v[rows] for k, v in self.extra.items()})

    @classmethod
    def joined(cls, options: EvaluateOptions, parts: Sequence[tuple[np.ndarray, BatchResult]]
               ) -> BatchResult:
        """The result of a batch evaluated in parts, each given with the batch positions of
        its inputs (documents of one length bucket), in batch order. Relevance maps of
        different lengths are padded with zeros to the longest."""
        kept = np.concatenate([positions[r.kept] for positions, r in parts]).astype(np.int64)
        order = np.argsort(kept, kind="stable")
        measured = [r for _, r in parts if len(r.kept)]
        longest = max((v.shape[1] for r in measured for v in r.relevance.values()), default=0)

        def gather(name, pad=False):
            def rows(array):
                return np.pad(array, ((0, 0), (0, longest - array.shape[1]))) if pad else array
            return {key: np.concatenate([rows(getattr(r, name)[key]) for r in measured])[order]
                    for key in (getattr(measured[0], name) if measured else {})}

        faults = {int(positions[i]): why for positions, r in parts for i, why in r.faults.items()}
        return cls(options, np.concatenate([r.targets for _, r in parts])[order],
                   gather("curves"), gather("fractions"), kept[order], dict(sorted(faults.items())),
                   gather("relevance", pad=True), gather("extra"))

    def arrays(self) -> dict[str, np.ndarray]:
        """The result as named arrays, for a part file (`from_arrays` reads them back)."""
        return {"targets": self.targets,
                **{"curve/" + "/".join(k): v for k, v in self.curves.items()},
                **{"fraction/" + "/".join(k): v for k, v in self.fractions.items()},
                **self.extra}

    @classmethod
    def from_arrays(cls, options: EvaluateOptions, arrays: dict[str, np.ndarray]) -> BatchResult:
        def keyed(prefix):
            return {tuple(k.split("/")[1:]): v for k, v in arrays.items()
                    if k.startswith(prefix + "/")}
        targets = arrays["targets"]
        return cls(options, targets, keyed("curve"), keyed("fraction"), np.arange(len(targets)))

    def aopc(self) -> dict[str, dict[str, np.ndarray]]:
        """AOPC in each method's own order (``--order``; random for the baseline)."""
        return self._per_image(lambda m, r: pa.aopc(self.curves[m, r, self.options.orders(m)[0]]))

    def aopc_lerf(self) -> dict[str, dict[str, np.ndarray]]:
        """AOPC in LeRF order; empty without ``lerf``."""
        return self._per_image(lambda m, r: pa.aopc(self.curves[m, r, "lerf"]), lerf=True)

    def area(self) -> dict[str, dict[str, np.ndarray]]:
        """Area between the LeRF and MoRF curves, AOPC_morf - AOPC_lerf; empty without ``lerf``."""
        return self._per_image(lambda m, r: pa.area_between(self.curves[m, r, "morf"],
                                                            self.curves[m, r, "lerf"]), lerf=True)

    def _per_image(self, value, lerf: bool = False) -> dict[str, dict[str, np.ndarray]]:
        out: dict[str, dict[str, np.ndarray]] = {}
        for method, replace in dict.fromkeys((m, r) for m, r, _ in self.curves):
            if not lerf or self.options.with_lerf(method):
                out.setdefault(replace, {})[method] = value(method, replace)
        return out


def evaluate_batch(explainers: Mapping[str, Explainer], scorer: Scorer, x: np.ndarray,
                   targets: np.ndarray, index: np.ndarray, options: EvaluateOptions,
                   valid_range: tuple[float | np.ndarray, float | np.ndarray] | None = None,
                   seed: int = 0) -> BatchResult:
    """Perturbation curves of one batch for every method, protocol and order of ``options``.

    Parameters
    ----------
    explainers : method name -> compiled explainer; a random-order baseline is added.
    scorer : ``scorer(batch) -> (B, classes)`` pre-softmax scores, e.g. `Scorer`; it scores
        the perturbed copies.
    x : (N, H, W, C) preprocessed inputs, or clips (N, T, H, W, C).
    targets : (N,) class to explain and score, -1 for the top-1 class.
    index : (N,) positions of the inputs in the whole run; with ``seed`` they seed the
        randomness, so results do not depend on batching.
    options : what to measure.
    valid_range : (low, high) of the input, needed by uniform replacement.
    seed : as ``--seed``.

    Returns
    -------
    BatchResult, with the resolved targets and each method's relevance summed over
    channels; its ``aopc()``, ``aopc_lerf()`` and ``area()`` give per-image figures per
    protocol and method. Inputs whose relevance or perturbed scores are NaN or Inf are
    left out, with the reason in its ``faults``.
    """
    relevance, targets, rows, faults = explained(explainers, x, targets, index)
    x, index = x[rows], index[rows]
    if not len(rows):
        return BatchResult(options, targets, {}, {}, rows, faults)
    steps = steps_for(x.shape[1:-1], options)
    ids, patches = pa.patch_ids(x.shape[1:-1], options.perturb)
    by_patch = {m: pa.patch_scores(r, options.perturb) for m, r in relevance.items()}
    if options.baseline:
        by_patch[RANDOM] = np.zeros((len(x), patches))
    ranks = {(m, o): pa.pixel_ranks(pa.patch_order(s, o, seeded(seed, index, "order")), ids)
             for m, s in by_patch.items() for o in options.orders(m)}
    replacements = {r: pa.replacement_values(x, r, valid_range, seeded(seed, index, r),
                                             sigma=max(options.perturb) / 2)
                    for r in options.replace}

    def score(batch, image):
        return target_scores(scorer(batch), targets[image], options.score)

    curves = {(m, r, o): pa.perturbation_curves(score, x, ranks[m, o], replacements[r], steps,
                                                options.chunk)
              for m in by_patch for r in options.replace for o in options.orders(m)}
    fractions = {key: pa.fraction_perturbed(r, steps) for key, r in ranks.items()}
    result = BatchResult(options, targets, curves, fractions, rows, faults,
                         {m: r.sum(axis=-1) for m, r in relevance.items()})
    return without_non_finite_scores(result, "a perturbed copy")


def explained(explainers, x, targets, index, named=None):
    """Each method's relevance, once (the first explainer resolves top-1 targets), for the
    rows whose relevance is finite under every method: ``(relevance, targets, rows,
    faults)``, ``faults`` the reason for each row left out."""
    relevance = {}
    for method, explainer in explainers.items():
        result = explainer.explain(x, targets, index, named)
        relevance[method], targets = result.relevance, result.targets
    faults = _non_finite({m: r.reshape(len(x), -1) for m, r in relevance.items()},
                         "relevance contains NaN or Inf for {} (a zero denominator? try a "
                         "larger epsilon)")
    rows = np.array([i for i in range(len(x)) if i not in faults], np.int64)
    return {m: r[rows] for m, r in relevance.items()}, targets[rows], rows, faults


def without_non_finite_scores(result: BatchResult, copies: str) -> BatchResult:
    """``result`` without the inputs for which the model's score of some perturbed copy is
    NaN or Inf (``copies`` says what was scored), with the reason in its faults."""
    bad = _non_finite({" ".join(k): c for k, c in result.curves.items()},
                      f"the model's score of {copies} is NaN or Inf ({{}})")
    if not bad:
        return result
    return result.subset(np.array([i for i in range(len(result.kept)) if i not in bad], np.int64),
                         {int(result.kept[i]): why for i, why in bad.items()})


def _non_finite(rows_by_name: dict[str, np.ndarray], reason: str) -> dict[int, str]:
    """``{row: reason}`` for the rows that are not finite under some name (named in it)."""
    bad = {name: ~np.isfinite(rows).all(axis=1) for name, rows in rows_by_name.items()}
    count = len(next(iter(bad.values()))) if bad else 0
    return {i: reason.format(", ".join(n for n, b in bad.items() if b[i]))
            for i in range(count) if any(b[i] for b in bad.values())}


def seeded(seed: int, indices, purpose: str) -> list[np.random.Generator]:
    """One generator per input, from the seed, its position and a stream per purpose."""
    return [np.random.default_rng([seed, int(i), STREAMS[purpose]]) for i in indices]


def bootstrap_rng(seed: int) -> np.random.Generator:
    """The generator of a paired comparison's bootstrap: the same resamples for every pair
    of the same number of inputs, whatever else the run measures."""
    return np.random.default_rng([seed, STREAMS["bootstrap"]])


def target_scores(logits: np.ndarray, targets: np.ndarray, kind: str) -> np.ndarray:
    """Each row's logit (or, for ``prob``, softmax probability) of its target."""
    if kind == "prob":
        logits = np.exp(logits - logits.max(axis=1, keepdims=True))
        logits /= logits.sum(axis=1, keepdims=True)
    return logits[np.arange(len(logits)), targets]


@dataclass
class Tally:
    """Per-image figures and summed relative curves over a run, for summary.csv and curves.png."""

    options: EvaluateOptions
    values: dict = field(default_factory=lambda: defaultdict(list))   # (figure, method, replace)
    relative: dict = field(default_factory=dict)                      # (method, replace, order)
    extra: dict = field(default_factory=lambda: defaultdict(list))    # loc/..., sanity/...

    def add(self, result: BatchResult, extra: Mapping[str, np.ndarray] = ()) -> None:
        """Add a batch; ``extra`` are its localisation and sanity arrays (part-file names)."""
        for figure in FIGURES:
            for replace, by_method in getattr(result, figure)().items():
                for method, values in by_method.items():
                    self.values[figure, method, replace].extend(values)
        for key, curves in result.curves.items():
            self.relative[key] = self.relative.get(key, 0) + (curves / curves[:, :1]).sum(axis=0)
        for key in extra:
            self.extra[key].append(extra[key])

    def localisation(self, method: str) -> dict[str, tuple[float, float]] | None:
        """Mean and stderr of each localisation figure over the masked inputs (for the
        random baseline: the mask's share of the image); None without masks."""
        if "loc/mask_fraction" not in self.extra:
            return None
        def stat(key):
            values = np.concatenate(self.extra[key])
            return pa.mean_and_stderr(values[np.isfinite(values)])
        if method == RANDOM:
            return dict.fromkeys(localisation.FIGURES, stat("loc/mask_fraction"))
        return {f: stat(f"loc/{f}/{method}") for f in localisation.FIGURES}

    def decision_rows(self) -> list[dict]:
        """decisions.csv as dicts: per (method, replace, order) and step, the share of the
        documents still classified as the explained class (word deletion)."""
        rows = []
        for key, batches in self.extra.items():
            if not key.startswith("kept/"):
                continue
            method, replace, order = key.split("/")[1:]
            kept = np.concatenate(batches)
            rows += [{"method": method, "replace": replace, "order": order, "step": k,
                      "n_documents": len(kept), "still_explained_class": float(share)}
                     for k, share in enumerate(kept.mean(axis=0))]
        return rows

    def sanity_rows(self, steps: list) -> list[dict]:
        """sanity.csv as dicts: per method and cascade step, the mean rank correlations."""
        rows = []
        for method in self.options.methods:
            correlations = np.concatenate(self.extra[f"sanity/{method}"])   # (N, steps, 2)
            for s, step in enumerate(steps):
                signed, absolute = (pa.mean_and_stderr(correlations[:, s, k]) for k in (0, 1))
                rows.append({"method": method, "step": s + 1, "randomised_layers": step.count,
                             "down_to": step.down_to, "n_images": len(correlations),
                             "rank_correlation": signed[0], "rank_correlation_stderr": signed[1],
                             "abs_rank_correlation": absolute[0],
                             "abs_rank_correlation_stderr": absolute[1]})
        return rows

    def rows(self, steps: int, seed: int) -> list[dict]:
        """summary.csv as dicts: one per (method, replace), LeRF cells None where not run."""
        methods = (*self.options.methods, RANDOM)
        rows = [self._row(m, r) for m in methods for r in self.options.replace]
        random = {row["replace"]: row["aopc"] for row in rows if row["method"] == RANDOM}
        perturb = self.options.unit
        for row in rows:
            base = random[row["replace"]]
            row.update(aopc_vs_random=row["aopc"] / base if base > 0 else None,
                       order=self.options.orders(row["method"])[0], perturb=perturb,
                       steps=steps, seed=seed)
        return rows

    def _row(self, method: str, replace: str) -> dict:
        row = {"method": method, "replace": replace,
               "n_images": len(self.values["aopc", method, replace])}
        for figure in FIGURES:
            measured = figure == "aopc" or self.options.with_lerf(method)
            mean, stderr = (pa.mean_and_stderr(self.values[figure, method, replace]) if measured
                            else (None, None))
            row.update({figure: mean, f"{figure}_stderr": stderr})
        located = self.localisation(method)
        row["n_masked"] = None if located is None else int(np.isfinite(
            np.concatenate(self.extra["loc/mask_fraction"])).sum())
        for figure in localisation.FIGURES:
            mean, stderr = (None, None) if located is None else located[figure]
            row.update({figure: mean, f"{figure}_stderr": stderr})
        return row

    def comparison_rows(self, seed: int) -> list[dict]:
        """comparisons.csv as dicts: per protocol, every pair of methods (in the order asked
        for, the random baseline last) compared on the AOPC of the same inputs."""
        methods = (*self.options.methods, RANDOM)
        rows = []
        for replace in self.options.replace:
            for i, method in enumerate(methods):
                for versus in methods[i + 1:]:
                    result = paired.compare(self.values["aopc", method, replace],
                                            self.values["aopc", versus, replace],
                                            bootstrap_rng(seed))
                    rows.append({"replace": replace, "method": method, "versus": versus,
                                 "n_images": result.count, "aopc_difference": result.difference,
                                 "ci_low": result.low, "ci_high": result.high, "won": result.won,
                                 "resamples": paired.RESAMPLES, "seed": seed})
        return rows

    def mean_curves(self) -> dict[str, dict[tuple[str, str], np.ndarray]]:
        """Mean relative curve per protocol and (method, order), for `pa.plot_curves`."""
        panels: dict = {}
        for (method, replace, order), total in self.relative.items():
            count = len(self.values["aopc", method, replace])
            panels.setdefault(f"replace {replace}", {})[method, order] = total / count
        return panels
