"""The cluster job: k-means on a layer's features, and why each input is in its cluster
(NEON, Kauffmann et al. 2019; the membership layer is :mod:`~xai_cli.models.kmeans`).

1. Features: the classifier cut at ``--layer`` and pooled over positions, for every input
   of the whole job (also under ``--shard``, so that every shard fits the same k-means)
   and for the ``--fit`` inputs.
2. k-means (scikit-learn, seeded, 10 starts) on the fit features, unless ``--centroids``
   reuses an earlier run's.
3. The classifier with the membership layer on those features, saved as
   ``OUT/clusters.keras``: its classes are the clusters, ``xai explain`` explains it too.
4. The explain job on it: each input's heatmap for its own cluster (or
   ``--target-cluster``), resumable with ``--skip-existing`` and shardable as explain is.
5. ``clusters.csv`` (each input's cluster, membership evidence, log-odds and distances),
   ``centroids.npz``, and per cluster its mean heatmap and its prototypes (the inputs
   nearest its centroid). Not per shard: a last run without ``--shard`` (with
   ``--skip-existing``, which explains nothing again) writes them over the whole job.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
from PIL import Image

from ..engine.graph import build_graph
from ..engine.methods import METHODS
from ..errors import XaiError
from ..io import inputs, render
from ..io.outputs import atomic_open, out_path, save_csv, save_png, thumbnail_path
from ..kinds.base import ExplainOptions
from ..models import kmeans
from ..session import Report, Session
from . import explain, spectral

PROTOTYPES = 8   # the inputs nearest each centroid that its prototypes sheet shows
TILE = 64        # pixels: a prototype's side on the sheet


@dataclass(frozen=True)
class ClusterOptions:
    """What ``xai cluster`` fits and explains (see the module docstring)."""

    layer: str
    clusters: int | None = None
    pool: str = "avg"
    beta: float | None = None
    fit: tuple[str, ...] = ()
    centroids: str | None = None
    target_cluster: int | None = None
    method: str = "lrp"
    style: render.Style = render.Style()


@dataclass
class Fit:
    """Centroids ``(K, D)``, the soft minimum's stiffness, and how many inputs they were
    fitted on (None: reused from a file)."""

    centroids: np.ndarray
    beta: float
    fitted_on: int | None


def run(session: Session, settings: ClusterOptions, report: Report,
        progress: Callable[[int], None] | None = None) -> str:
    """Fit, explain and summarise (the module docstring); returns a line for stderr."""
    if session.options.target != "top1":
        raise XaiError("xai cluster explains why an input is in its cluster: --target names a "
                       "class of the model; use --target-cluster C for cluster C")
    try:
        features = kmeans.features(session.graph.model, settings.layer, settings.pool)
    except ValueError as exc:
        raise XaiError(str(exc)) from None
    with open(os.devnull, "w") as null:
        quiet = Report(null, null)   # an input that fails here is reported by the explain pass
        items, vectors = _features(session, features, session.listing, quiet)
        if not items:
            raise XaiError("no input could be read: nothing to cluster")
        fit = _fit(session, settings, features, vectors, report)
    if settings.target_cluster is not None and settings.target_cluster >= len(fit.centroids):
        raise XaiError(f"--target-cluster {settings.target_cluster}: there are "
                       f"{len(fit.centroids)} clusters (0 to {len(fit.centroids) - 1})")
    out = session.options.out
    out.mkdir(parents=True, exist_ok=True)
    _save_fit(out, settings, fit)
    model = keras.Model(features.inputs, kmeans.KMeansMembership(len(fit.centroids), fit.beta,
                                                                 fit.centroids)(features.output),
                        name="clusters")
    _save_model(out / "clusters.keras", model)
    labels = [f"cluster {k}" for k in range(len(fit.centroids))]
    clustered = dataclasses.replace(
        session, graph=build_graph(model), labels=labels,
        target=-1 if settings.target_cluster is None else settings.target_cluster)
    explain.run(clustered, ExplainOptions((settings.method,), save_raw=True, style=settings.style),
                report, progress)
    squared = kmeans.squared_distances(vectors, fit.centroids)
    assigned = squared.argmin(axis=1)
    sizes = np.bincount(assigned, minlength=len(fit.centroids))
    if session.options.shard is None:
        _summaries(out, settings, fit, items, squared, assigned)
    return (f"xai: {len(items)} inputs in {len(sizes)} clusters of {settings.layer} "
            f"(sizes {', '.join(map(str, sizes))}; beta {fit.beta:.4g})")


def _features(session: Session, features: keras.Model, listing, report: Report
              ) -> tuple[list[inputs.InputItem], np.ndarray]:
    """The items of ``listing`` that load, and their feature vectors ``(N, D)`` (float64)."""
    every = dataclasses.replace(session, listing=listing, options=dataclasses.replace(
        session.options, shard=None))
    items, vectors = [], []
    for batch, _ in every.loaded(report):
        items += [sample.item for sample in batch.samples]
        vectors.append(keras.ops.convert_to_numpy(features(batch.x)).astype(np.float64))
    return items, (np.concatenate(vectors) if vectors else np.zeros((0, 0)))


def _fit(session: Session, settings: ClusterOptions, features, vectors, report) -> Fit:
    """k-means on the fit inputs' features (the inputs', without ``--fit``), or the
    centroids of ``--centroids``; ``--beta``, else the paper's heuristic."""
    if settings.centroids:
        if settings.fit:
            raise XaiError("--fit fits new centroids and --centroids reuses fitted ones: give one")
        return _reused(settings, vectors.shape[1])
    if settings.clusters is None:
        raise XaiError("give the number of clusters, -k K, or the centroids of an earlier run, "
                       "--centroids OUT/centroids.npz")
    if settings.fit:
        listing, problems = session.kind.discover(settings.fit, None)
        for source, reason in problems:
            report.error(source, reason)
        fit_items, vectors = _features(session, features, listing, report)
        if not fit_items:
            raise XaiError(f"--fit {' '.join(settings.fit)}: no input could be read")
    if len(vectors) < settings.clusters:
        raise XaiError(f"k-means with {settings.clusters} clusters needs at least as many inputs "
                       f"to fit on; {len(vectors)} could be read")
    sklearn, _ = spectral.require_sklearn()
    fitted = sklearn.cluster.KMeans(settings.clusters, n_init=10,
                                    random_state=session.options.seed).fit(vectors)
    centroids = fitted.cluster_centers_
    try:
        beta = settings.beta or kmeans.beta_heuristic(vectors, centroids)
    except ValueError as exc:
        raise XaiError(f"{exc}; give --beta") from None
    return Fit(centroids, beta, len(vectors))


def _reused(settings: ClusterOptions, dims: int) -> Fit:
    """The fit in ``--centroids``, checked against this run's layer, pooling and features."""
    try:
        with np.load(settings.centroids, allow_pickle=False) as stored:
            centroids, beta = stored["centroids"], float(stored["beta"])
            layer, pool = str(stored["layer"]), str(stored["pool"])
    except (OSError, ValueError, KeyError) as exc:
        raise XaiError(f"--centroids {settings.centroids}: not the centroids.npz of an xai "
                       f"cluster run ({exc})") from None
    if (layer, pool) != (settings.layer, settings.pool):
        raise XaiError(f"--centroids {settings.centroids} were fitted on layer '{layer}' pooled "
                       f"'{pool}', not on '{settings.layer}' pooled '{settings.pool}'")
    if centroids.ndim != 2 or centroids.shape[1] != dims:
        raise XaiError(f"--centroids {settings.centroids} have shape {centroids.shape}; the "
                       f"features of '{layer}' have {dims} values")
    if settings.clusters not in (None, len(centroids)):
        raise XaiError(f"-k {settings.clusters}: --centroids {settings.centroids} hold "
                       f"{len(centroids)} clusters")
    return Fit(centroids, settings.beta or beta, None)


def _save_fit(out: Path, settings: ClusterOptions, fit: Fit) -> None:
    with atomic_open(out / "centroids.npz") as f:
        np.savez(f, centroids=fit.centroids, beta=fit.beta, layer=settings.layer,
                 pool=settings.pool, fitted_on=-1 if fit.fitted_on is None else fit.fitted_on)


def _save_model(path: Path, model: keras.Model) -> None:
    """``model`` saved whole, or not at all (Keras writes a zip it names itself)."""
    partial = path.with_name(f".{path.stem}.partial.keras")
    model.save(partial)
    os.replace(partial, path)


def _summaries(out: Path, settings: ClusterOptions, fit: Fit, items, squared, assigned) -> None:
    """clusters.csv, and per cluster its mean heatmap and prototypes sheet, from the
    features and the heatmaps the explain pass saved."""
    rows = np.arange(len(items))
    others = np.where(np.arange(len(fit.centroids))[None] == assigned[:, None], np.inf,
                      squared - squared[rows, assigned][:, None])
    evidence = -np.log(np.exp(-fit.beta * others).sum(axis=1)) / fit.beta
    count = len(fit.centroids)
    save_csv(out / "clusters.csv",
             ["image", "source", "cluster", "membership", "log_odds",
              *(f"distance_{k}" for k in range(count))],
             ([item.stem, item.source, int(c), float(e), float(fit.beta * e),
               *map(float, np.sqrt(d))]
              for item, c, e, d in zip(items, assigned, evidence, squared)))
    signed = METHODS[settings.method].signed
    for cluster in range(count):
        members = np.flatnonzero(assigned == cluster)
        maps = [np.load(path).sum(axis=-1) for path in
                (out_path(out, items[i].stem, f".{settings.method}.npy") for i in members)
                if path.exists()]
        if maps:
            save_png(out / f"cluster_{cluster}_mean.png",
                     render.upscale(render.heatmap(np.mean(maps, axis=0), signed, settings.style)))
        nearest = members[np.argsort(squared[members, cluster], kind="stable")][:PROTOTYPES]
        tiles = [_tile(thumbnail_path(out, items[i].stem)) for i in nearest]
        tiles = [t for t in tiles if t is not None]
        if tiles:
            save_png(out / f"cluster_{cluster}_prototypes.png", spectral.contact_sheet(tiles))


def _tile(path: Path) -> np.ndarray | None:
    """An input's thumbnail as a square tile, None where the explain pass wrote none."""
    if not path.exists():
        return None
    with Image.open(path) as picture:
        return np.asarray(picture.convert("RGB").resize((TILE, TILE), Image.BILINEAR))
