"""The explain job: batches of inputs through every requested method, to the files the
input's kind draws (heatmap pictures for images, word heatmaps for documents).

Batches are loaded in parallel while the device computes; files are rendered and
written on background threads, one per core, and each input's JSON record is printed
once its files are on disk, in input order.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import numpy as np

from ..engine.diagnostics import vanishing
from ..engine.methods import METHODS
from ..io.inputs import InputItem, worker_threads
from ..io.outputs import BackgroundWriter
from ..kinds.base import ExplainOptions
from ..session import Report, Session
from . import on_ray

__all__ = ["ExplainOptions", "run"]


def run(session: Session, options: ExplainOptions, report: Report,
        progress: Callable[[int], None] | None = None) -> None:
    """Explain every input of ``session``; problems with single inputs go to ``report``."""
    opts = session.options
    session.kind.check_explain(options)
    written = _written(session, options)
    windows = session.windows()
    if opts.skip_existing:
        done = sum(1 for _, window in session.windows() for _, item in window if written(item))
        if done:
            report.note(f"skipping {done} inputs whose outputs exist (--skip-existing)")
        windows = (w for w in windows if not all(written(item) for _, item in w[1]))
    with Worker(session, report, options) as worker:   # on Ray: the set-up is checked here
        opts.out.mkdir(parents=True, exist_ok=True)
        if session.ray is not None:
            on_ray.run(session, report, windows, partial(Worker, options=options),
                       progress=progress)
            return
        for batch, index in session.loaded(report, windows, progress):
            worker(batch, index, None, report)


class Worker:
    """Explains a batch at a time (here, or on a Ray actor), rendering and writing its
    files on background threads (``--ray``: the actor's); each input's record is said
    once its files are on disk, in input order."""

    def __init__(self, session: Session, report: Report, options: ExplainOptions):
        self.session, self.options = session, options
        self.explainers = session.explainers(options.methods, report)
        self.written = _written(session, options)
        self.writer = BackgroundWriter(worker_threads())

    def __call__(self, batch, index: np.ndarray, save: None, report: Report) -> None:
        _explain_batch(self.session, self.options, self.explainers, batch, index, self.writer,
                       report, self.written)

    def drain(self) -> None:
        """Wait until the batches' files are written and their records said."""
        self.writer.drain()

    def __enter__(self) -> Worker:
        return self

    def __exit__(self, *exc) -> None:
        self.writer.__exit__(*exc)


def _written(session: Session, options: ExplainOptions) -> Callable[[InputItem], bool]:
    """Whether an input's outputs all exist and --skip-existing keeps them.

    Batches keep the composition they have in an uninterrupted run (a batch with any
    input left is run whole, writing only what is missing): convolutions round
    differently for other batch sizes, and a resumed job must write the same bytes.
    """
    opts = session.options
    if not opts.skip_existing:
        return lambda item: False
    return lambda item: all((opts.out / name).exists()
                            for name in session.kind.output_names(item.stem, options))


def _explain_batch(session, options, explainers, batch, index, writer, report, written):
    targets = np.full(len(batch), session.target, np.int32)
    results = {m: batch.explain(e, targets, index) for m, e in explainers.items()}
    first = next(iter(results.values()))
    # the parameters of the methods given some (--param, the config's methods:); records of
    # runs without any stay as they were
    given = {m: e.params for m, e in explainers.items()
             if m in session.params or m in session.composite.methods}
    read_at = {m: e.facts for m, e in explainers.items() if e.facts}
    for i, sample in enumerate(batch.samples):
        if written(sample.item):
            continue
        maps = {m: r.relevance[i] for m, r in results.items()}
        bad = [m for m, r in maps.items() if not np.all(np.isfinite(r))]
        if bad:
            report.error(sample.item.source, "relevance contains NaN or Inf for "
                         f"{', '.join(bad)} (a zero denominator? try a larger epsilon)",
                         sample.item.index)
            continue
        record = _record(session, sample, first.logits[i], int(first.targets[i]), maps)
        warnings = {m: w for m, r in maps.items()
                    if (w := vanishing(METHODS[m], r, record["explained_score"])) is not None}
        if warnings:
            record["warning"] = "; ".join(warnings.values())
            for method, warning in warnings.items():
                report.warn_once(method, warning)
        if given:
            record["parameters"] = given
        if read_at:   # class activation maps: where they were read, at what resolution
            record["maps_at"] = read_at
        writer.submit(session.kind.write, session.options.out, sample, maps, options,
                      _caption(record), then=partial(_emit, report, record))


def _caption(record: dict) -> str:
    def name(index, label):
        return f"{label} ({index})" if label is not None else f"class {index}"
    return (f"predicted {name(record['predicted'], record['predicted_label'])}, score "
            f"{record['score']:.4g}; explained {name(record['target'], record['target_label'])}, "
            f"score {record['explained_score']:.4g}")


def _record(session, sample, logits, target, maps) -> dict:
    predicted = int(np.argmax(logits))
    return {
        "input": sample.item.source, "index": sample.item.index, "status": "ok",
        "outputs": [], "predicted": predicted, "predicted_label": session.label(predicted),
        "score": float(logits[predicted]), "target": target,
        "target_label": session.label(target), "explained_score": float(logits[target]),
        "explained": "logit (softmax removed)" if session.graph.softmax_stripped else "model output",
        "relevance_sum": {m: float(r.sum()) for m, r in maps.items()},
        # LRP hands the explained score down: the share that reaches the input (the rest
        # went to biases and stabilisers; `xai rules --check` says which layers took it)
        "conserved": {m: float(r.sum() / logits[target]) if logits[target] else None
                      for m, r in maps.items() if METHODS[m].uses_composite},
        **session.kind.record_fields(sample, maps), **session.runs_on,
    }


def _emit(report: Report, record: dict, written: list[str]) -> None:
    """The input's record with its files, once they are on disk (in input order)."""
    report.record({**record, "outputs": written})
