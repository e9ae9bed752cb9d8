"""The spray job: heatmaps of many images of one class, clustered (SpRAy).

Heatmaps are computed in batches as in explain; only their downsized forms are kept, so
memory grows by a few kilobytes per image. Writes clusters.csv, eigenvalues.csv,
eigengap.png, embedding.png, and per cluster its mean heatmap and a contact sheet.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import numpy as np

from ..engine.methods import METHODS
from ..errors import XaiError
from ..io import render
from ..io.outputs import atomic_write, save_csv, save_png, thumbnail_path
from ..io.parts import shards
from ..session import Report, SaveBatch, Session
from . import on_ray, spectral

THUMBNAIL = 48


def run(session: Session, method: str, clusters: int | str, report: Report,
        progress: Callable[[int], None] | None = None,
        style: render.Style = render.Style()) -> np.ndarray:
    """Cluster the heatmaps of every input of ``session`` for its (fixed) target class;
    returns the cluster of each input that was clustered.

    Each batch's features are kept as a part file (`xai_cli.io.parts`), so that a rerun with
    ``--skip-existing`` (after a kill, or to try another ``--clusters`` or ``style``)
    computes only the heatmaps it lacks: pictures are drawn from the stored maps."""
    if session.target < 0:
        raise XaiError("xai spray explains one class across images: give --target")
    spectral.require_sklearn()
    opts = session.options
    worker = Worker(session, report, method)   # on Ray: the set-up is checked here
    parts = session.parts("spray", {"method": method})
    sharded = shards(opts.out / "parts", "spray") if opts.skip_existing and opts.shard is None \
        else None
    if sharded is not None:   # a sharded job, finished: its features are gathered here
        report.note(f"took the features of {parts.adopt(*sharded)} batches from the "
                    f"{len(sharded[1])} spray shards in {opts.out / 'parts'}")
    if session.ray is None:
        for batch, index, save in session.unfinished(parts, report, progress):
            worker(batch, index, save, report)
    else:   # the features come back as parts; the clustering runs here, once
        on_ray.run(session, report, session.todo(parts, report, progress),
                   partial(Worker, method=method), parts, progress)
    kept, arrays = parts.gather(session.batches())
    signed = METHODS[method].signed
    result = spectral.spray(arrays.get("features", np.zeros((0, 1))), clusters, seed=opts.seed)
    maps = arrays["maps"].reshape(-1, THUMBNAIL, THUMBNAIL)
    _write(session, kept, result, maps, [render.heatmap(m, signed, style) for m in maps],
           signed, style)
    for item, cluster in zip(kept, result.labels):
        report.record({"input": item.source, "index": item.index, "status": "ok",
                       "outputs": [str(thumbnail_path(opts.out, item.stem))],
                       "target": session.target, "target_label": session.label(session.target),
                       "cluster": int(cluster)})
    return result.labels


class Worker:
    """Explains a batch at a time (here, or on a Ray actor) and keeps its heatmap features
    in its part; its thumbnails are written beside."""

    def __init__(self, session: Session, report: Report, method: str):
        self.session = session
        self.explainer = session.explainers((method,), report)[method]

    def __call__(self, batch, index: np.ndarray, save: SaveBatch, report: Report) -> None:
        session = self.session
        relevance = batch.explain(self.explainer, np.full(len(batch), session.target, np.int32),
                                  index).relevance
        finite = np.isfinite(relevance.reshape(len(batch), -1)).all(axis=1)
        for sample, ok in zip(batch.samples, finite):
            if ok:
                session.kind.thumbnails(session.options.out, sample)
            else:
                report.error(sample.item.source, "relevance contains NaN or Inf",
                             sample.item.index)
        relevance = session.kind.maps(relevance[finite])
        save([s.item for s, ok in zip(batch.samples, finite) if ok],
             {"features": spectral.prepare(relevance),
              "maps": spectral.prepare(relevance, size=THUMBNAIL)})

    def drain(self) -> None:
        """Nothing: a batch's files are written before it returns."""


def _write(session, items, result, maps, thumbs, signed, style):
    """The clusters' files; a shard's go to ``OUT/shards/<job>/``, leaving the top level to
    the run that gathers every shard's features."""
    out = session.options.out
    if session.options.shard is not None:
        out = out / "shards" / session.job("spray")
    out.mkdir(parents=True, exist_ok=True)
    dims = result.embedding.shape[1]
    save_csv(out / "clusters.csv", ["image", "cluster"] + [f"e{i}" for i in range(dims)],
             ([item.stem, int(c), *map(float, e)]
              for item, c, e in zip(items, result.labels, result.embedding)))
    save_csv(out / "eigenvalues.csv", ["index", "eigenvalue"],
             ((i, float(v)) for i, v in enumerate(result.eigenvalues)))
    atomic_write(out / "eigengap.png",
                 lambda f: spectral.plot_eigengap(result.eigenvalues, result.n_clusters, f))
    atomic_write(out / "embedding.png",
                 lambda f: spectral.plot_embedding(result.embedding, result.labels, f))
    for cluster in range(result.n_clusters):
        members = np.flatnonzero(result.labels == cluster)
        save_png(out / f"cluster_{cluster}_mean.png",
                 render.upscale(render.heatmap(maps[members].mean(axis=0), signed, style)))
        save_png(out / f"cluster_{cluster}_members.png",
                 spectral.contact_sheet([thumbs[i] for i in members]))
