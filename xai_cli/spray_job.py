"""The spray job: heatmaps of many images of one class, clustered (SpRAy).

Heatmaps are computed in batches as in explain; only their downsized forms are kept, so
memory grows by a few kilobytes per image. Writes clusters.csv, eigenvalues.csv,
eigengap.png, embedding.png, and per cluster its mean heatmap and a contact sheet.
"""

from __future__ import annotations

import numpy as np

from . import render, spectral
from .errors import XaiError
from .explainers import make_explainer
from .methods import METHODS
from .outputs import atomic_write, save_csv, save_png
from .session import Report, Session

THUMBNAIL = 48


def _thumbnail(relevance: np.ndarray, signed: bool) -> np.ndarray:
    from PIL import Image
    heat = render.heatmap(relevance, signed)
    return np.asarray(Image.fromarray(heat).resize((THUMBNAIL, THUMBNAIL), Image.NEAREST))


def run(session: Session, method: str, clusters, report: Report, progress=None) -> None:
    """Cluster the heatmaps of every input of ``session`` for its (fixed) target class."""
    if session.target < 0:
        raise XaiError("xai spray explains one class across images: give --target")
    spectral.require_sklearn()
    explainer = make_explainer(session.graph, METHODS[method], session.composite,
                               session.preprocessing, session.options.seed)
    signed = METHODS[method].signed
    kept, features, maps, thumbs = [], [], [], []
    for samples, index in session.loaded(report, progress=progress):
        x = np.stack([s.x for s in samples])
        result = explainer.explain(x, np.full(len(x), session.target, np.int32), index)
        finite = np.isfinite(result.relevance.reshape(len(x), -1)).all(axis=1)
        for sample in np.asarray(samples, dtype=object)[~finite]:
            report.error(sample.item.source, "relevance contains NaN or Inf", sample.item.index)
        relevance = result.relevance[finite]
        kept.extend(s.item for s, ok in zip(samples, finite) if ok)
        features.extend(spectral.prepare(relevance))
        maps.extend(spectral.prepare(relevance, size=THUMBNAIL))
        thumbs.extend(_thumbnail(r, signed) for r in relevance)
    result = spectral.spray(np.stack(features) if features else np.zeros((0, 1)), clusters,
                            seed=session.options.seed)
    _write(session, kept, result, np.stack(maps), thumbs, signed)
    for item, cluster in zip(kept, result.labels):
        report.record({"input": item.source, "index": item.index, "status": "ok",
                       "cluster": int(cluster)})


def _write(session, items, result, maps, thumbs, signed):
    out = session.options.out
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
        mean = maps[members].mean(axis=0).reshape(THUMBNAIL, THUMBNAIL)
        save_png(out / f"cluster_{cluster}_mean.png", render.upscale(render.heatmap(mean, signed)))
        save_png(out / f"cluster_{cluster}_members.png",
                 spectral.contact_sheet([thumbs[i] for i in members]))
