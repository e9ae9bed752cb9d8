"""The explain job: batches of inputs through every requested method, to heatmap files
(word heatmaps for a text model's documents, see :mod:`~xai_cli.jobs.words`).

Batches are loaded in parallel while the device computes; files are rendered and
written on background threads, one per core, and each input's JSON record is printed
once its files are on disk, in input order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np

from ..engine.diagnostics import vanishing
from ..engine.methods import METHODS
from ..errors import XaiError
from ..io import render
from ..io.inputs import worker_threads
from ..io.outputs import BackgroundWriter, atomic_write, out_path, save_npy, save_png, save_thumbnail
from ..io.parts import chunks
from ..session import Report, Session
from . import words


@dataclass
class ExplainOptions:
    methods: tuple[str, ...] = ("lrp",)
    overlay: bool = False
    save_raw: bool = False
    grid: bool = False
    style: render.Style = render.Style()


def output_names(stem: str, options: ExplainOptions, text: bool = False) -> list[str]:
    """The files one input produces, so that --skip-existing can test for them."""
    if text:
        return words.output_names(stem, options.methods, options.save_raw)
    names = []
    for method in options.methods:
        names.append(f"{stem}.{method}.png")
        if options.overlay:
            names.append(f"{stem}.{method}.overlay.png")
        if options.save_raw:
            names.append(f"{stem}.{method}.npy")
    if options.grid:
        names.append(f"{stem}.grid.png")
    return [*names, f"thumbs/{stem}.jpg"]


def run(session: Session, options: ExplainOptions, report: Report,
        progress: Callable[[int], None] | None = None) -> None:
    """Explain every input of ``session``; problems with single inputs go to ``report``."""
    opts = session.options
    if session.reads_documents and (options.overlay or options.grid):
        raise XaiError(f"--{'overlay' if options.overlay else 'grid'} is for images; a text model's "
                       "documents get word heatmaps (HTML and PNG)")
    explainers = session.explainers(options.methods, report)
    done, todo = _resume(session, options)
    if done:
        report.note(f"skipping {len(done)} inputs whose outputs exist (--skip-existing)")
    opts.out.mkdir(parents=True, exist_ok=True)
    with BackgroundWriter(worker_threads()) as writer:  # records follow in input order
        for samples, index in session.loaded(report, todo, progress):
            _explain_batch(session, options, explainers, samples, index, writer, report, done)


def _resume(session: Session, options: ExplainOptions):
    """Inputs whose outputs all exist, and the inputs to run.

    Batches keep the composition they have in an uninterrupted run (a batch with any
    input left is run whole, writing only what is missing): convolutions round
    differently for other batch sizes, and a resumed job must write the same bytes.
    """
    opts = session.options
    if not opts.skip_existing:
        return set(), session.items
    done = {item for item in session.items if all(
        (opts.out / name).exists()
        for name in output_names(item.stem, options, session.reads_documents))}
    return done, [item for batch in chunks(session.items, opts.batch_size)
                  if not done.issuperset(batch) for item in batch]


def _explain_batch(session, options, explainers, samples, index, writer, report, done):
    x = np.stack([s.x for s in samples])
    mask = np.stack([s.mask for s in samples]) if session.reads_documents else None
    targets = np.full(len(samples), session.target, np.int32)
    results = {m: e.explain(x, targets, index, mask) for m, e in explainers.items()}
    first = next(iter(results.values()))
    for i, sample in enumerate(samples):
        if sample.item in done:
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
        if session.reads_documents:
            writer.submit(words.write, session.options.out, sample, maps, _caption(record),
                          options.save_raw, options.style, then=partial(_emit, report, record))
        else:
            writer.submit(_write, session.options.out, sample, maps, options,
                          then=partial(_emit, report, record))


def _caption(record: dict) -> str:
    def name(index, label):
        return f"{label} ({index})" if label is not None else f"class {index}"
    return (f"predicted {name(record['predicted'], record['predicted_label'])}, score "
            f"{record['score']:.4g}; explained {name(record['target'], record['target_label'])}, "
            f"score {record['explained_score']:.4g}")


def _record(session, sample, logits, target, maps) -> dict:
    predicted = int(np.argmax(logits))
    if session.reads_documents:
        source = words.record_fields(sample, maps, session.tokenizer)
    else:
        source = {"resize": sample.fit.mode, "source_size": list(sample.fit.source_size)}
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
        **source, **session.runs_on,
    }


def _write(out, sample, maps, options: ExplainOptions) -> list[str]:
    """Render and write one input's files (on a writer thread); returns their paths."""
    stem, written = sample.item.stem, []

    def save(suffix, saver, data):
        path = out_path(out, stem, suffix)
        saver(path, data)
        written.append(str(path))

    style, panels = options.style, []
    for method, relevance in maps.items():
        signed = METHODS[method].signed
        heat = render.heatmap(relevance, signed, style)
        save(f".{method}.png", save_png, heat)
        if options.overlay:
            save(f".{method}.overlay.png", save_png,
                 render.overlay(heat, sample.display, relevance, signed, style))
        if options.save_raw:
            save(f".{method}.npy", save_npy, relevance.astype(np.float32))
        panels.append(render.Panel(method, heat, signed, render.scale(relevance, style.clip),
                                   style.cmap(signed)))
    if options.grid:
        path = out_path(out, stem, ".grid.png")
        atomic_write(path, lambda f: render.grid(sample.display, panels, f, title=stem))
        written.append(str(path))
    written.append(save_thumbnail(out, stem, sample.display))
    return written


def _emit(report: Report, record: dict, written: list[str]) -> None:
    """The input's record with its files, once they are on disk (in input order)."""
    report.record({**record, "outputs": written})
