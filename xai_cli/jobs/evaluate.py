"""The evaluate job: faithfulness over a whole run, stored per batch, written as tables.

`run` measures each batch with :func:`~xai_cli.measures.faithfulness.evaluate_batch` and
stores its curves as a part file the moment the batch is done (see
:mod:`xai_cli.io.parts`: a killed job resumes with ``--skip-existing``), then builds
``curves.csv``, ``summary.csv`` and ``curves.png`` from the parts, adding them up in a
`Tally`, with ``comparisons.csv``: the paired differences between methods on the same
inputs (:mod:`xai_cli.measures.paired`). `merge_shards` does the same for the parts of several
shards, and `table` prints the summary and the comparisons.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from ..engine.methods import METHODS
from ..engine.propagation import Scorer
from ..errors import InputError
from ..io import render
from ..io.outputs import (
    CsvRows,
    atomic_open,
    atomic_write,
    out_path,
    save_csv,
    save_png,
    text_table,
)
from ..io.parts import Parts, merged
from ..measures import localisation
from ..measures import perturbation as pa
from ..measures.faithfulness import (
    BatchResult,
    EvaluateOptions,
    Tally,
    measured,
)
from ..session import Report, SaveBatch, Session
from . import on_ray, sanity

CURVE_COLUMNS = ("image", "method", "replace", "order", "step", "fraction_perturbed", "score",
                 "relative_score")
SUMMARY_COLUMNS = ("method", "replace", "n_images", "aopc", "aopc_stderr", "aopc_vs_random",
                   "aopc_lerf", "aopc_lerf_stderr", "area", "area_stderr", "order", "perturb",
                   "steps", "seed", "n_masked", *(c for f in localisation.FIGURES
                                                   for c in (f, f"{f}_stderr")))
LOCALISATION_COLUMNS = ("image", "method", *localisation.FIGURES, "mask_fraction")
DECISION_COLUMNS = ("method", "replace", "order", "step", "n_documents", "still_explained_class")
COMPARISON_COLUMNS = ("replace", "method", "versus", "n_images", "aopc_difference", "ci_low",
                      "ci_high", "won", "resamples", "seed")
SANITY_COLUMNS = ("method", "step", "randomised_layers", "down_to", "n_images",
                  "rank_correlation", "rank_correlation_stderr", "abs_rank_correlation",
                  "abs_rank_correlation_stderr")


@dataclass(frozen=True)
class Results:
    """What a run measured, as the rows of summary.csv, sanity.csv (empty without
    ``--sanity``) and comparisons.csv."""

    summary: list[dict]
    sanity: list[dict]
    comparisons: list[dict]

    def table(self) -> str:
        """What the command prints on stderr (see `table`)."""
        return table(self.summary, self.sanity, self.comparisons)


def run(session: Session, options: EvaluateOptions, report: Report,
        progress: Callable[[int], None] | None = None,
        masks: localisation.Masks | None = None, heatmaps: bool = False) -> Results:
    """Evaluate every method of ``options`` on the inputs of ``session``; writes a part file
    per batch, then the CSVs and figures from all parts. ``masks`` adds the localisation
    scores; ``heatmaps`` keeps each method's heatmap of each input (``<stem>.<method>.png``,
    the relevance that was scored), which the report page shows on the input's card."""
    kind = session.kind
    options = kind.evaluation(options, masks is not None, heatmaps)
    steps = kind.steps(options)
    worker = Worker(session, report, options, masks, heatmaps)   # on Ray: the set-up is checked here
    cascade = worker.randomised and worker.randomised.steps
    parts = session.parts("evaluate", {**dataclasses.asdict(options), "steps": steps,
                                       "masks": masks and masks.spec,
                                       "sanity_steps": cascade and [
                                           [step.count, step.down_to] for step in cascade]})
    if session.ray is None:
        for batch, index, save in session.unfinished(parts, report, progress):
            worker(batch, index, save, report)
    else:
        on_ray.run(session, report, session.todo(parts, report, progress),
                   partial(Worker, options=options, masks=masks, heatmaps=heatmaps), parts, progress)
    return _finish(session, options, parts, steps, cascade, masks is not None)


class Worker:
    """Measures a batch at a time (here, or on a Ray actor): its curves (and localisation
    and sanity figures) go into its part, after its records and thumbnails."""

    def __init__(self, session: Session, report: Report, options: EvaluateOptions,
                 masks: localisation.Masks | None, heatmaps: bool):
        self.session, self.options, self.masks, self.heatmaps = session, options, masks, heatmaps
        self.explainers = session.explainers(options.methods, report)
        self.randomised = sanity.Randomised(session.graph, options.methods, session.explainer,
                                            session.options.seed) if options.sanity else None
        self.scorer = Scorer(session.graph)

    def __call__(self, batch, index: np.ndarray, save: SaveBatch, report: Report) -> None:
        session, kind, masks = self.session, self.session.kind, self.masks
        object_masks = {}
        if masks is not None:
            batch, index, object_masks = _with_masks(kind, batch, index, masks, report)
            if batch is None:
                return
        targets = np.full(len(batch), session.target, np.int32)
        result = kind.evaluate_batch(self.explainers, self.scorer, batch, targets, index,
                                     self.options, session.options.seed)
        for i, reason in result.faults.items():
            report.error(batch.samples[i].item.source, reason, batch.samples[i].item.index)
        kept = [batch.samples[i] for i in result.kept]
        arrays = result.arrays()
        if masks is not None:
            arrays.update(localisation.part_arrays(result.relevance,
                                                   [object_masks.get(s.item) for s in kept]))
        if self.randomised is not None:
            arrays.update(self.randomised.part_arrays(result.relevance, batch.x[result.kept],
                                                      result.targets, index[result.kept]))
        _record(session, kept, result, arrays, report, self.heatmaps)
        save([s.item for s in kept], arrays)   # last: a batch without its records is not done

    def drain(self) -> None:
        """Nothing: a batch's files are written before it returns."""


def _with_masks(kind, batch, index, masks: localisation.Masks, report: Report):
    """The batch of the inputs whose mask (if any) could be read (None: no input), their
    positions, and their masks; an unreadable mask is that input's error."""
    kept, found = [], {}
    for sample, position in zip(batch.samples, index):
        try:
            found[sample.item] = masks.mask(sample)
            kept.append((sample, position))
        except InputError as exc:
            report.error(sample.item.source, str(exc), sample.item.index)
    return kind.batch([s for s, _ in kept]) if kept else None, \
        np.array([p for _, p in kept], np.int64), found


def _finish(session: Session, options: EvaluateOptions, parts: Parts, steps: int,
            cascade: list[sanity.Step] | None, masked: bool) -> Results:
    """The run's results from its parts; a shard's go to ``OUT/shards/<job>/``, so that
    shards writing into one folder leave its top level to the merged results of
    `xai report`."""
    stored = (([item.stem for item in items], arrays)
              for items, arrays in parts.stored(session.batches()))
    out = session.options.out
    if session.options.shard is not None:
        out = out / "shards" / session.job("evaluate")
        out.mkdir(parents=True, exist_ok=True)
    return write_results(out, options, stored, steps, session.options.seed, cascade, masked)


def write_results(out: Path, options: EvaluateOptions, batches: Iterable, steps: int, seed: int,
                  sanity_steps: list | None, masked: bool) -> Results:
    """curves.csv, summary.csv, comparisons.csv, curves.png (and localisation.csv,
    sanity.csv, sanity.png) from stored batches ``(kept stems, arrays)`` in batch order;
    what this run did not measure is not left behind from an earlier run in the same
    folder."""
    tally = Tally(options)
    for name in (() if masked else ("localisation.csv",)) + \
            (() if sanity_steps else ("sanity.csv", "sanity.png")) + \
            (() if options.deletes_words else ("decisions.csv",)):
        (out / name).unlink(missing_ok=True)
    with atomic_open(out / "curves.csv", "w") as curves_file, \
            (atomic_open(out / "localisation.csv", "w") if masked else nullcontext()) as located:
        curves_out = CsvRows(curves_file, CURVE_COLUMNS)
        located_rows = CsvRows(located, LOCALISATION_COLUMNS) if masked else None
        for stems, arrays in batches:
            result = BatchResult.from_arrays(options, arrays)
            tally.add(result, {k: v for k, v in arrays.items()
                               if k.startswith(("loc/", "sanity/", "kept/"))})
            curves_out.write(curve_rows(stems, result))
            if masked:
                located_rows.write(_localisation_rows(stems, options.methods, arrays))
    summary = tally.rows(steps, seed)
    save_csv(out / "summary.csv", SUMMARY_COLUMNS,
             ([row[c] for c in SUMMARY_COLUMNS] for row in summary))
    comparisons = tally.comparison_rows(seed)
    save_csv(out / "comparisons.csv", COMPARISON_COLUMNS,
             ([row[c] for c in COMPARISON_COLUMNS] for row in comparisons))
    if options.deletes_words:
        save_csv(out / "decisions.csv", DECISION_COLUMNS,
                 ([row[c] for c in DECISION_COLUMNS] for row in tally.decision_rows()))
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
    return Results(summary, checked, comparisons)


def merge_shards(out: Path, identity: dict, folders: list[Path]) -> Results:
    """The results of an evaluate job run as shards (their part ``folders``, all with
    ``identity`` but for the shard): the files one unsharded run writes, byte for byte."""
    fields = {f.name for f in dataclasses.fields(EvaluateOptions)}
    options = EvaluateOptions(**{k: tuple(v) if isinstance(v, list) else v
                                 for k, v in identity.items() if k in fields})
    steps = [sanity.Step(count, down_to, None) for count, down_to in identity["sanity_steps"]] \
        if identity["sanity_steps"] else None
    batches = -(-identity["inputs"] // identity.get("window", identity["batch_size"]))
    return write_results(out, options, merged(folders, batches), options.steps,
                         identity["seed"], steps, identity["masks"] is not None)


def _localisation_rows(stems, methods, arrays):
    for i, stem in enumerate(stems):
        if np.isfinite(arrays["loc/mask_fraction"][i]):
            for method in methods:
                yield (stem, method, *(arrays[f"loc/{f}/{method}"][i]
                                            for f in localisation.FIGURES),
                       arrays["loc/mask_fraction"][i])


def curve_rows(stems: Iterable[str | int], result: BatchResult) -> Iterator[tuple[object, ...]]:
    """curves.csv rows of one batch, its inputs named by ``stems``."""
    for i, stem in enumerate(stems):
        for (method, replace, order), curves in result.curves.items():
            fractions = result.fractions[method, order][i]
            for k, score in enumerate(curves[i]):
                yield (stem, method, replace, order, k, fractions[k], score,
                       score / curves[i, 0])


def _record(session: Session, samples, result: BatchResult, arrays, report: Report,
            heatmaps: bool) -> None:
    """One JSON line per input, once its thumbnail (and with ``heatmaps`` its heatmaps) are
    written: AOPC of the first protocol, and of every protocol; with masks, each method's
    localisation scores."""
    aopc = result.aopc()
    out = session.options.out
    for i, sample in enumerate(samples):
        by_replace = {r: {m: float(v[i]) for m, v in by_method.items()}
                      for r, by_method in aopc.items()}
        target = int(result.targets[i])
        outputs = session.kind.thumbnails(out, sample)
        if heatmaps:
            outputs += [_save_heatmap(out, sample.item.stem, method, relevance[i])
                        for method, relevance in result.relevance.items()]
        record = {"input": sample.item.source, "index": sample.item.index, "status": "ok",
                  "outputs": outputs,
                  "target": target, "target_label": session.label(target),
                  "aopc": next(iter(by_replace.values())), "aopc_by_replace": by_replace,
                  **session.runs_on}
        fraction = arrays.get("loc/mask_fraction")
        if fraction is not None and np.isfinite(fraction[i]):
            record["localisation"] = {m: {f: float(arrays[f"loc/{f}/{m}"][i])
                                          for f in localisation.FIGURES}
                                      for m in result.relevance}
        report.record(record)


def _save_heatmap(out: Path, stem: str, method: str, relevance: np.ndarray) -> str:
    """``<stem>.<method>.png`` as `xai explain` draws it with its default style."""
    path = out_path(out, stem, f".{method}.png")
    save_png(path, render.heatmap(relevance, METHODS[method].signed))
    return str(path)


def _plot(out, tally: Tally, summary: list[dict]) -> None:
    if not summary[0]["n_images"]:
        return
    options, inputs = tally.options, measured(summary[0]["perturb"])
    kind = {"documents": f"word deletion, {options.unit} per step",
            "signals": f"time-window perturbation, windows of {options.unit} samples"
            }.get(inputs, f"region perturbation {options.unit}")
    title = (f"{kind}, {options.order}{' and lerf' if options.lerf else ''} "
             f"({summary[0]['n_images']} {inputs})")
    step = {"documents": "words deleted", "signals": "windows replaced"}.get(inputs, "patches replaced")
    atomic_write(out / "curves.png", lambda f: pa.plot_curves(tally.mean_curves(), f, title, step))


def table(summary: list[dict], sanity_rows: list[dict] = (), comparisons: list[dict] = ()) -> str:
    """The summary as aligned text, one block per protocol: AOPC ± stderr, its ratio to the
    random baseline's, and the LeRF-MoRF area where it was measured, then the paired
    comparisons of that protocol; then the localisation scores and the sanity check's last
    step, where measured."""
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
        inputs = measured(first["perturb"])
        perturb = first["perturb"]
        unit = {"documents": f"{perturb} per step",
                "signals": f"windows of {perturb} samples"}.get(inputs, f"{perturb} patches")
        lines.append(f"replace {replace} ({first['n_images']} {inputs}, {unit}, "
                     f"{first['steps']} steps, {first['order']}{' and lerf' if lerf else ''})")
        lines += [line(header)] + [line(cells[i]) for i in block]
        if any(summary[i]["aopc_vs_random"] is None for i in block):
            lines.append("  (no ratio: the random baseline's AOPC is not positive)")
        lines += _comparison_table([r for r in comparisons if r["replace"] == replace], decimals)
    return "\n".join(lines + _localisation_table(summary) + _sanity_table(sanity_rows))


def _comparison_table(rows: list[dict], decimals: int) -> list[str]:
    if not rows or rows[0]["n_images"] < 2:
        return []

    def signed(value):
        return f"{value:+.{decimals}f}"

    def verdict(row):
        return "ahead" if row["ci_low"] > 0 else "behind" if row["ci_high"] < 0 else "within noise"
    cells = [[f"{r['method']} - {r['versus']}", signed(r["aopc_difference"]),
              f"[{signed(r['ci_low'])}, {signed(r['ci_high'])}]", f"{r['won']:.0%}", verdict(r)]
             for r in rows]
    return ["  paired on the same inputs: AOPC difference, its 95% bootstrap CI, share won",
            text_table(cells, indent="    ")]


def _localisation_table(summary: list[dict]) -> list[str]:
    rows = [r for r in summary if r["replace"] == summary[0]["replace"]]
    if rows[0]["n_masked"] is None:
        return []
    header = ("method", *localisation.FIGURES)
    cells = [[r["method"], *(_plus_minus(r, f, 3) for f in localisation.FIGURES)] for r in rows]
    masked = rows[0]["n_masked"]
    return [f"localisation ({masked} input{'s' * (masked != 1)} with a mask; random: the mask's share "
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
