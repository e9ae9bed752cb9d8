"""The evaluate job: perturbation curves, AOPC and the LeRF-MoRF area per method and protocol.

`evaluate_batch` is the core, without files, for any caller with a compiled explainer
(``xai evaluate`` here, ``xai tune`` next): each method's relevance is computed once per
batch and then perturbed under every replacement protocol, in MoRF (or the chosen) order,
optionally in LeRF order too, and in random order as the baseline. Inputs whose relevance
or perturbed scores are not finite are left out of the result with the reason.

`run` stores each batch's curves as a part file the moment the batch is done (see
:mod:`xai_cli.parts`: a killed job resumes with ``--skip-existing``), then builds
``curves.csv``, ``summary.csv`` and ``curves.png`` from the parts, adding them up in a
`Tally`; `table` prints the summary. Randomness (uniform replacement values, random order)
is seeded per input from ``--seed``, the input's position and a fixed stream per purpose,
so results depend neither on batching nor on which other protocols run.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Iterable, Mapping
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..engine.propagation import Explainer, Scorer
from ..errors import InputError, XaiError
from ..io.outputs import CsvRows, atomic_open, atomic_write, save_csv, save_thumbnail, text_table
from ..io.parts import Parts, merged
from ..session import Report, Session
from . import localisation, sanity
from . import perturbation as pa

CURVE_COLUMNS = ("image", "method", "replace", "order", "step", "fraction_perturbed", "score",
                 "relative_score")
SUMMARY_COLUMNS = ("method", "replace", "n_images", "aopc", "aopc_stderr", "aopc_vs_random",
                   "aopc_lerf", "aopc_lerf_stderr", "area", "area_stderr", "order", "perturb",
                   "steps", "seed", "n_masked", *(c for f in localisation.FIGURES
                                                   for c in (f, f"{f}_stderr")))
LOCALISATION_COLUMNS = ("image", "method", *localisation.FIGURES, "mask_fraction")
SANITY_COLUMNS = ("method", "step", "randomised_layers", "down_to", "n_images",
                  "rank_correlation", "rank_correlation_stderr", "abs_rank_correlation",
                  "abs_rank_correlation_stderr")
RANDOM = "random"
FIGURES = ("aopc", "aopc_lerf", "area")   # per-image figures: BatchResult methods, summary columns
# Seed streams, fixed per purpose: a protocol's draws do not depend on the others asked for.
STREAMS = {"uniform": 0, "order": 1, "mean": 2, "blur": 3}


@dataclass
class EvaluateOptions:
    """What to measure; checked on construction so that every caller gets the same errors."""

    methods: tuple[str, ...] = ("lrp",)
    perturb: tuple[int, int] = (9, 9)
    steps: int | None = None
    order: str = "morf"
    replace: tuple[str, ...] = ("uniform",)
    score: str = "logit"
    lerf: bool = False
    chunk: int = 256
    baseline: bool = True   # add the random order (callers that measured it once turn it off)
    sanity: bool = False    # also the model-randomisation check (`xai_cli.sanity`)

    def __post_init__(self):
        if self.lerf and self.order != "morf":
            raise XaiError("--lerf adds least-relevant-first curves to the most-relevant-first "
                           f"ones: use it with --order morf (the default), not --order "
                           f"{self.order}")
        unknown = [r for r in self.replace if r not in pa.REPLACEMENTS]
        if unknown or not self.replace:
            raise XaiError(f"--replace must be one or more of {', '.join(pa.REPLACEMENTS)}, "
                           f"got {', '.join(self.replace) or 'none'}")

    def with_lerf(self, method: str) -> bool:
        """Whether ``method`` also runs least relevant first (never the random baseline)."""
        return self.lerf and method != RANDOM

    def orders(self, method: str) -> tuple[str, ...]:
        """The orders ``method`` is perturbed in, its own first; the baseline's is random."""
        own = RANDOM if method == RANDOM else self.order
        return (own, "lerf") if self.with_lerf(method) else (own,)


def checked_valid_range(session: Session, options: EvaluateOptions):
    """The input's valid range, which uniform replacement draws from (None if unknown)."""
    valid_range = session.preprocessing.valid_range(session.graph.input_shape[-1])
    if "uniform" in options.replace and valid_range is None:
        raise XaiError("--replace uniform draws from the input's valid range: choose a "
                       "--preprocess preset, or use --replace mean or blur")
    return valid_range


def steps_for(shape_hw: tuple[int, int], options: EvaluateOptions) -> int:
    """``--steps``, by default the number of patches (at most 100)."""
    _, patches = pa.patch_ids(shape_hw, options.perturb)
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

    def subset(self, rows: np.ndarray, faults: dict[int, str]) -> BatchResult:
        """The result for ``rows`` (of this result) only; ``faults`` are by batch position."""
        return BatchResult(self.options, self.targets[rows],
                           {k: v[rows] for k, v in self.curves.items()},
                           {k: v[rows] for k, v in self.fractions.items()},
                           self.kept[rows], {**self.faults, **faults},
                           {k: v[rows] for k, v in self.relevance.items()})

    def arrays(self) -> dict[str, np.ndarray]:
        """The result as named arrays, for a part file (`from_arrays` reads them back)."""
        return {"targets": self.targets,
                **{"curve/" + "/".join(k): v for k, v in self.curves.items()},
                **{"fraction/" + "/".join(k): v for k, v in self.fractions.items()}}

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
                   valid_range=None, seed: int = 0) -> BatchResult:
    """Perturbation curves of one batch for every method, protocol and order of ``options``.

    Parameters
    ----------
    explainers : method name -> compiled explainer; a random-order baseline is added.
    scorer : ``scorer(batch) -> (B, classes)`` pre-softmax scores, e.g. `Scorer`; it scores
        the perturbed copies.
    x : (N, H, W, C) preprocessed inputs.
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
    relevance, targets = _relevance(explainers, x, targets, index)
    faults = _faults({m: r.reshape(len(x), -1) for m, r in relevance.items()},
                     "relevance contains NaN or Inf for {} (a zero denominator? try a larger "
                     "epsilon)")
    rows = np.array([i for i in range(len(x)) if i not in faults], np.int64)
    if faults:
        x, targets, index = x[rows], targets[rows], index[rows]
        relevance = {m: r[rows] for m, r in relevance.items()}
    if not len(rows):
        return BatchResult(options, targets, {}, {}, rows, faults)
    steps = steps_for(x.shape[1:3], options)
    ids, patches = pa.patch_ids(x.shape[1:3], options.perturb)
    by_patch = {m: pa.patch_scores(r, options.perturb) for m, r in relevance.items()}
    if options.baseline:
        by_patch[RANDOM] = np.zeros((len(x), patches))
    ranks = {(m, o): pa.pixel_ranks(pa.patch_order(s, o, _rngs(seed, index, "order")), ids)
             for m, s in by_patch.items() for o in options.orders(m)}
    replacements = {r: pa.replacement_values(x, r, valid_range, _rngs(seed, index, r),
                                             sigma=max(options.perturb) / 2)
                    for r in options.replace}
    score = _score_fn(scorer, targets, options.score)
    curves = {(m, r, o): pa.perturbation_curves(score, x, ranks[m, o], replacements[r], steps,
                                                options.chunk)
              for m in by_patch for r in options.replace for o in options.orders(m)}
    fractions = {key: pa.fraction_perturbed(r, steps) for key, r in ranks.items()}
    result = BatchResult(options, targets, curves, fractions, rows, faults,
                         {m: r.sum(axis=-1) for m, r in relevance.items()})
    bad_scores = _faults({" ".join(k): c for k, c in curves.items()},
                         "the model's score of a perturbed copy is NaN or Inf ({})")
    if bad_scores:
        return result.subset(np.array([i for i in range(len(x)) if i not in bad_scores], np.int64),
                             {int(rows[i]): why for i, why in bad_scores.items()})
    return result


def _relevance(explainers, x, targets, index):
    """Each method's relevance, once; the first explainer resolves top-1 targets."""
    relevance = {}
    for method, explainer in explainers.items():
        result = explainer.explain(x, targets, index)
        relevance[method], targets = result.relevance, result.targets
    return relevance, targets


def _faults(rows_by_name: dict[str, np.ndarray], reason: str) -> dict[int, str]:
    """``{row: reason}`` for the rows that are not finite under some name (named in it)."""
    bad = {name: ~np.isfinite(rows).all(axis=1) for name, rows in rows_by_name.items()}
    count = len(next(iter(bad.values()))) if bad else 0
    return {i: reason.format(", ".join(n for n, b in bad.items() if b[i]))
            for i in range(count) if any(b[i] for b in bad.values())}


def _rngs(seed: int, indices, purpose: str) -> list[np.random.Generator]:
    return [np.random.default_rng([seed, int(i), STREAMS[purpose]]) for i in indices]


def _score_fn(scorer, targets, kind: str):
    """``score(batch, image)``: each perturbed copy's logit (or probability) of its target."""
    def score(batch, image):
        logits = scorer(batch)
        if kind == "prob":
            logits = np.exp(logits - logits.max(axis=1, keepdims=True))
            logits /= logits.sum(axis=1, keepdims=True)
        return logits[np.arange(len(batch)), targets[image]]
    return score


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
        perturb = "x".join(map(str, self.options.perturb))
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

    def mean_curves(self) -> dict[str, dict[tuple[str, str], np.ndarray]]:
        """Mean relative curve per protocol and (method, order), for `pa.plot_curves`."""
        panels: dict = {}
        for (method, replace, order), total in self.relative.items():
            count = len(self.values["aopc", method, replace])
            panels.setdefault(f"replace {replace}", {})[method, order] = total / count
        return panels


def run(session: Session, options: EvaluateOptions, report: Report, progress=None,
        masks: localisation.Masks | None = None) -> tuple[list[dict], list[dict]]:
    """Evaluate every method of ``options`` on the inputs of ``session``; writes a part file
    per batch, then the CSVs and figures from all parts. ``masks`` adds the localisation
    scores. Returns the summary rows and the sanity rows (empty without ``sanity``)."""
    graph, opts = session.graph, session.options
    valid_range = checked_valid_range(session, options)
    steps = steps_for(graph.input_shape[:2], options)
    explainers = session.explainers(options.methods, report)
    randomised = sanity.Randomised(graph, options.methods, session.explainer, opts.seed) \
        if options.sanity else None
    parts = session.parts("evaluate", {**dataclasses.asdict(options), "steps": steps,
                                       "masks": masks and masks.spec,
                                       "sanity_steps": randomised and [
                                           [step.count, step.down_to] for step in randomised.steps]})
    scorer = Scorer(graph)
    for samples, index, save in session.unfinished(parts, report, progress):
        object_masks = {}
        if masks is not None:
            samples, index, object_masks = _with_masks(samples, index, masks, graph, report)
            if not samples:
                continue
        x = np.stack([s.x for s in samples])
        targets = np.full(len(x), session.target, np.int32)
        result = evaluate_batch(explainers, scorer, x, targets, index, options, valid_range,
                                opts.seed)
        for i, reason in result.faults.items():
            report.error(samples[i].item.source, reason, samples[i].item.index)
        kept = [samples[i] for i in result.kept]
        arrays = result.arrays()
        if masks is not None:
            arrays.update(localisation.part_arrays(result.relevance,
                                                   [object_masks.get(s.item) for s in kept]))
        if randomised is not None:
            arrays.update(randomised.part_arrays(result.relevance, x[result.kept],
                                                 result.targets, index[result.kept]))
        _record(session, kept, result, arrays, report)
        save([s.item for s in kept], arrays)   # last: a batch without its records is not done
    return _finish(session, options, parts, steps, randomised, masks is not None)


def _with_masks(samples, index, masks: localisation.Masks, graph, report: Report):
    """The samples whose mask (if any) could be read, their positions, and their masks;
    an unreadable mask is that input's error."""
    kept, found = [], {}
    for sample, position in zip(samples, index):
        try:
            found[sample.item] = masks.mask(sample)
            kept.append((sample, position))
        except InputError as exc:
            report.error(sample.item.source, str(exc), sample.item.index)
    return [s for s, _ in kept], np.array([p for _, p in kept], np.int64), found


def _finish(session: Session, options: EvaluateOptions, parts: Parts, steps: int,
            randomised: sanity.Randomised | None, masked: bool) -> tuple[list[dict], list[dict]]:
    """The run's results from its parts; a shard's go to ``OUT/shards/<job>/``, so that
    shards writing into one folder leave its top level to the merged results of
    `xai report`."""
    stored = (([item.stem for item in items], arrays)
              for items, arrays in parts.stored(session.batches()))
    out = session.options.out
    if session.options.shard is not None:
        out = out / "shards" / session.job("evaluate")
        out.mkdir(parents=True, exist_ok=True)
    return write_results(out, options, stored, steps, session.options.seed,
                         randomised and randomised.steps, masked)


def write_results(out: Path, options: EvaluateOptions, batches: Iterable, steps: int, seed: int,
                  sanity_steps: list | None, masked: bool) -> tuple[list[dict], list[dict]]:
    """curves.csv, summary.csv, curves.png (and localisation.csv, sanity.csv, sanity.png)
    from stored batches ``(kept stems, arrays)`` in batch order; what this run did not
    measure is not left behind from an earlier run in the same folder. Returns the
    summary rows and the sanity rows."""
    tally = Tally(options)
    for name in (() if masked else ("localisation.csv",)) + \
            (() if sanity_steps else ("sanity.csv", "sanity.png")):
        (out / name).unlink(missing_ok=True)
    with atomic_open(out / "curves.csv", "w") as curves_file, \
            (atomic_open(out / "localisation.csv", "w") if masked else nullcontext()) as located:
        curve_rows = CsvRows(curves_file, CURVE_COLUMNS)
        located_rows = CsvRows(located, LOCALISATION_COLUMNS) if masked else None
        for stems, arrays in batches:
            result = BatchResult.from_arrays(options, arrays)
            tally.add(result, {k: v for k, v in arrays.items()
                               if k.startswith(("loc/", "sanity/"))})
            curve_rows.write(_curve_rows(stems, result))
            if masked:
                located_rows.write(_localisation_rows(stems, options.methods, arrays))
    summary = tally.rows(steps, seed)
    save_csv(out / "summary.csv", SUMMARY_COLUMNS,
             ([row[c] for c in SUMMARY_COLUMNS] for row in summary))
    _plot(out, tally, summary)
    checked = []
    if sanity_steps and tally.values["aopc", options.methods[0], options.replace[0]]:
        checked = tally.sanity_rows(sanity_steps)
        save_csv(out / "sanity.csv", SANITY_COLUMNS, ([r[c] for c in SANITY_COLUMNS]
                                                      for r in checked))
        means = {m: np.array([[r["rank_correlation"], r["abs_rank_correlation"]]
                              for r in checked if r["method"] == m]) for m in options.methods}
        atomic_write(out / "sanity.png", lambda f: sanity.plot(
            sanity_steps, means, f, f"cascading randomisation ({checked[0]['n_images']} "
                                    "images)"))
    return summary, checked


def merge_shards(out: Path, identity: dict, folders: list[Path]) -> tuple[list[dict], list[dict]]:
    """The results of an evaluate job run as shards (their part ``folders``, all with
    ``identity`` but for the shard): the files one unsharded run writes, byte for byte."""
    fields = {f.name for f in dataclasses.fields(EvaluateOptions)}
    options = EvaluateOptions(**{k: tuple(v) if isinstance(v, list) else v
                                 for k, v in identity.items() if k in fields})
    steps = [sanity.Step(count, down_to, None) for count, down_to in identity["sanity_steps"]] \
        if identity["sanity_steps"] else None
    batches = -(-identity["inputs"] // identity["batch_size"])
    return write_results(out, options, merged(folders, batches), options.steps,
                         identity["seed"], steps, identity["masks"] is not None)


def _localisation_rows(stems, methods, arrays):
    for i, stem in enumerate(stems):
        if np.isfinite(arrays["loc/mask_fraction"][i]):
            for method in methods:
                yield (stem, method, *(arrays[f"loc/{f}/{method}"][i]
                                            for f in localisation.FIGURES),
                       arrays["loc/mask_fraction"][i])


def _curve_rows(stems, result: BatchResult):
    for i, stem in enumerate(stems):
        for (method, replace, order), curves in result.curves.items():
            fractions = result.fractions[method, order][i]
            for k, score in enumerate(curves[i]):
                yield (stem, method, replace, order, k, fractions[k], score,
                       score / curves[i, 0])


def _record(session: Session, samples, result: BatchResult, arrays, report: Report) -> None:
    """One JSON line per input, once its thumbnail is written: AOPC of the first protocol,
    and of every protocol; with masks, each method's localisation scores."""
    aopc = result.aopc()
    for i, sample in enumerate(samples):
        by_replace = {r: {m: float(v[i]) for m, v in by_method.items()}
                      for r, by_method in aopc.items()}
        target = int(result.targets[i])
        record = {"input": sample.item.source, "index": sample.item.index, "status": "ok",
                  "outputs": [save_thumbnail(session.options.out, sample.item.stem,
                                             sample.display)],
                  "target": target, "target_label": session.label(target),
                  "aopc": next(iter(by_replace.values())), "aopc_by_replace": by_replace}
        fraction = arrays.get("loc/mask_fraction")
        if fraction is not None and np.isfinite(fraction[i]):
            record["localisation"] = {m: {f: float(arrays[f"loc/{f}/{m}"][i])
                                          for f in localisation.FIGURES}
                                      for m in result.relevance}
        report.record(record)


def _plot(out, tally: Tally, summary: list[dict]) -> None:
    if not summary[0]["n_images"]:
        return
    options = tally.options
    title = (f"region perturbation {summary[0]['perturb']}, {options.order}"
             f"{' and lerf' if options.lerf else ''} ({summary[0]['n_images']} images)")
    atomic_write(out / "curves.png", lambda f: pa.plot_curves(tally.mean_curves(), f, title))


def table(summary: list[dict], sanity_rows: list[dict] = ()) -> str:
    """The summary as aligned text, one block per protocol: AOPC ± stderr, its ratio to the
    random baseline's, and the LeRF-MoRF area where it was measured; then the localisation
    scores and the sanity check's last step, where measured."""
    lerf = any(row["area"] is not None for row in summary)
    header = ("method", "aopc", "x random", "area")[:4 if lerf else 3]
    decimals = _decimals([row["aopc"] for row in summary])
    cells = [[row["method"], _plus_minus(row, "aopc", decimals),
              "n/a" if row["aopc_vs_random"] is None else f"{row['aopc_vs_random']:.2f}",
              _plus_minus(row, "area", decimals)][:len(header)] for row in summary]
    widths = [max(len(c[j]) for c in [header, *cells]) + 3 for j in range(len(header))]

    def line(values):
        return "  " + "".join(v.ljust(w) for v, w in zip(values, widths)).rstrip()

    lines = []
    for replace in dict.fromkeys(row["replace"] for row in summary):
        block = [i for i, row in enumerate(summary) if row["replace"] == replace]
        first = summary[block[0]]
        lines.append(f"replace {replace} ({first['n_images']} images, {first['perturb']} patches, "
                     f"{first['steps']} steps, {first['order']}{' and lerf' if lerf else ''})")
        lines += [line(header)] + [line(cells[i]) for i in block]
        if any(summary[i]["aopc_vs_random"] is None for i in block):
            lines.append("  (no ratio: the random baseline's AOPC is not positive)")
    return "\n".join(lines + _localisation_table(summary) + _sanity_table(sanity_rows))


def _localisation_table(summary: list[dict]) -> list[str]:
    rows = [r for r in summary if r["replace"] == summary[0]["replace"]]
    if rows[0]["n_masked"] is None:
        return []
    header = ("method", *localisation.FIGURES)
    cells = [[r["method"], *(_plus_minus(r, f, 3) for f in localisation.FIGURES)] for r in rows]
    return [f"localisation ({rows[0]['n_masked']} inputs with a mask; random: the mask's share "
            "of the image)", text_table([header, *cells], indent="  ")]


def _sanity_table(rows: list[dict]) -> list[str]:
    if not rows:
        return []
    last = [r for r in rows if r["step"] == max(q["step"] for q in rows)]
    header = ("method", "|rank corr|", "rank corr")
    cells = [[r["method"], _plus_minus(r, "abs_rank_correlation", 3),
              _plus_minus(r, "rank_correlation", 3)] for r in last]
    return [f"sanity: correlation with the original heatmaps once all {last[0]['randomised_layers']}"
            f" learned layers are randomised ({last[0]['n_images']} images; low is good)",
            text_table([header, *cells], indent="  ")]


def _plus_minus(row: dict, figure: str, decimals: int) -> str:
    if row[figure] is None:
        return ""
    return f"{row[figure]:.{decimals}f} ± {row[f'{figure}_stderr']:.{decimals}f}"


def _decimals(values) -> int:
    """Two decimals, more for small figures (probabilities), so three digits show."""
    top = max((abs(v) for v in values if v is not None and np.isfinite(v) and v != 0), default=1)
    return int(min(6, max(2, 2 - np.floor(np.log10(top)))))
