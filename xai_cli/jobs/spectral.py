"""SpRAy (Lapuschkin et al. 2019): cluster a class's heatmaps to find the model's strategies.

Heatmaps are summed over channels, downsized by area averaging and scaled to unit
maximum; a symmetric k-nearest-neighbour graph over them is embedded with the
eigenvectors of its normalised Laplacian, and k-means in that embedding gives the
clusters. With ``clusters='auto'`` the number of clusters is where the eigengap
(the jump between consecutive eigenvalues, relative to the larger) is largest. scikit-learn and SciPy do the
linear algebra; they are an optional extra (``pip install 'xai[spray]'``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import BinaryIO

import numpy as np

from ..errors import XaiError


def require_sklearn() -> tuple[ModuleType, ModuleType]:
    """scikit-learn and SciPy's csgraph, or a message saying how to install them."""
    try:
        import sklearn.cluster
        import sklearn.neighbors
        from scipy.sparse import csgraph  # SciPy comes with scikit-learn
    except ImportError:
        raise XaiError("xai spray and xai cluster need scikit-learn: pip install 'xai[spray]'") from None
    return sklearn, csgraph


def _area_weights(n: int, size: int) -> np.ndarray:
    """(size, n): each output bin averages the input samples it overlaps, by overlap."""
    edges = np.linspace(0, n, size + 1)
    cells = np.arange(n)
    overlap = np.minimum(edges[1:, None], cells + 1) - np.maximum(edges[:-1, None], cells)
    weights = np.clip(overlap, 0, None)
    return weights / weights.sum(axis=1, keepdims=True)


def prepare(maps: np.ndarray, size: int = 16) -> np.ndarray:
    """(N, size*size) features of maps ``(N, H, W)``: area-averaged to size x size, max
    |value| = 1."""
    rows, cols = _area_weights(maps.shape[1], size), _area_weights(maps.shape[2], size)
    small = np.einsum("ih,nhw,jw->nij", rows, maps.astype(np.float64), cols)
    peak = np.abs(small).reshape(len(small), -1).max(axis=1, initial=0.0)
    peak[peak == 0] = 1
    return (small / peak[:, None, None]).reshape(len(small), -1)


@dataclass
class SprayResult:
    labels: np.ndarray        # (N,) cluster per heatmap, 0 = largest cluster
    embedding: np.ndarray     # (N, max(K, 3)) eigenvectors of the smallest eigenvalues
    eigenvalues: np.ndarray   # smallest eigenvalues of the normalised Laplacian, ascending
    n_clusters: int


def spray(features: np.ndarray, clusters: int | str = "auto", n_neighbors: int | None = None,
          max_clusters: int = 8, seed: int = 0) -> SprayResult:
    """Spectral clustering of heatmap features; ``clusters`` is a number or 'auto' (eigengap)."""
    sklearn, csgraph = require_sklearn()
    n = len(features)
    if n < 3:
        raise XaiError(f"SpRAy needs at least 3 heatmaps, got {n}")
    if clusters != "auto" and not 1 <= int(clusters) <= n:
        raise XaiError(f"--clusters must be 'auto' or between 1 and {n}, got {clusters}")
    k = n_neighbors or min(n - 1, max(5, int(np.sqrt(n))))
    graph = sklearn.neighbors.kneighbors_graph(features, k, mode="connectivity")
    laplacian = csgraph.laplacian(graph.maximum(graph.T).astype(np.float64), normed=True)
    shown = min(n, max(max_clusters + 1, 10))
    eigenvalues, eigenvectors = _smallest_eigenpairs(laplacian, shown, seed)
    if clusters == "auto":
        count = eigengap_count(eigenvalues, max_clusters)
    else:
        count = int(clusters)
    embedding = eigenvectors[:, :max(count, 3)]
    rows = embedding[:, :count] / np.maximum(np.linalg.norm(embedding[:, :count], axis=1,
                                                             keepdims=True), 1e-12)
    raw = sklearn.cluster.KMeans(count, n_init=10, random_state=seed).fit_predict(rows)
    return SprayResult(_by_size(raw), embedding, eigenvalues, count)


DENSE_LIMIT = 1000  # beyond this many heatmaps, a sparse solver for the few eigenpairs needed


def _smallest_eigenpairs(laplacian, count: int, seed: int):
    """The ``count`` smallest eigenvalues (ascending) and eigenvectors, signs fixed.

    Each eigenvector is flipped so that its largest entry is positive, so that the
    embedding does not depend on the solver's sign choice.
    """
    n = laplacian.shape[0]
    if n <= DENSE_LIMIT:
        values, vectors = np.linalg.eigh(laplacian.toarray())
        values, vectors = values[:count], vectors[:, :count]
    else:
        from scipy.sparse import identity
        from scipy.sparse.linalg import eigsh
        start = np.random.default_rng(seed).uniform(size=n)
        values, vectors = eigsh(identity(n) - laplacian, k=count, which="LA", v0=start)
        order = np.argsort(-values)
        values, vectors = 1 - values[order], vectors[:, order]
    peaks = vectors[np.abs(vectors).argmax(axis=0), np.arange(vectors.shape[1])]
    return values, vectors * np.where(peaks < 0, -1.0, 1.0)


def eigengap_count(eigenvalues: np.ndarray, max_clusters: int) -> int:
    """The K in 2..max_clusters with the largest relative gap (lambda_K - lambda_K-1) / lambda_K.

    K clusters with few edges between them give K eigenvalues near 0 and a jump after
    them. Relative to lambda_K, the jump out of ~0 scores ~1 however noisy the clusters
    are, while the absolute gap can be larger higher up the spectrum, among eigenvalues
    that no longer mean separate groups.
    """
    values = np.clip(eigenvalues[:max_clusters + 1], 0, None)
    if len(values) < 3:
        return 1
    relative = (values[2:] - values[1:-1]) / (values[2:] + 1e-9)
    return int(np.argmax(relative) + 2)


def _by_size(labels: np.ndarray) -> np.ndarray:
    """Renumber clusters by decreasing size, ties by first member, so output is stable."""
    ids = np.unique(labels)
    key = sorted(ids, key=lambda c: (-(labels == c).sum(), np.argmax(labels == c)))
    mapping = {old: new for new, old in enumerate(key)}
    return np.array([mapping[c] for c in labels])


def _figure(width, height):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    figure = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(figure)
    return figure


def plot_eigengap(eigenvalues: np.ndarray, n_clusters: int, file: str | Path | BinaryIO) -> None:
    """Eigenvalues in ascending order, the chosen gap marked."""
    figure = _figure(5, 3.5)
    axes = figure.add_subplot()
    axes.plot(np.arange(1, len(eigenvalues) + 1), eigenvalues, "o-")
    axes.axvline(n_clusters + 0.5, color="tab:red", linestyle="--",
                 label=f"largest gap: {n_clusters} clusters")
    axes.set_xlabel("eigenvalue index")
    axes.set_ylabel("eigenvalue of the normalised Laplacian")
    axes.legend()
    axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(file, format="png")


def plot_embedding(embedding: np.ndarray, labels: np.ndarray, file: str | Path | BinaryIO) -> None:
    """Heatmaps in the first two non-trivial spectral coordinates, coloured by cluster."""
    figure = _figure(5, 4.5)
    axes = figure.add_subplot()
    coords = embedding[:, 1:3]
    for cluster in np.unique(labels):
        members = labels == cluster
        axes.scatter(coords[members, 0], coords[members, 1], s=18,
                     label=f"cluster {cluster} ({members.sum()})")
    axes.set_xlabel("spectral coordinate 1")
    axes.set_ylabel("spectral coordinate 2")
    axes.legend()
    figure.tight_layout()
    figure.savefig(file, format="png")


def contact_sheet(images: list[np.ndarray], columns: int = 8, pad: int = 2) -> np.ndarray:
    """uint8 tiles (H, W, 3) in a grid on white."""
    h, w = images[0].shape[:2]
    rows = -(-len(images) // columns)
    columns = min(columns, len(images))
    sheet = np.full((rows * (h + pad) + pad, columns * (w + pad) + pad, 3), 255, np.uint8)
    for i, image in enumerate(images):
        r, c = divmod(i, columns)
        top, left = pad + r * (h + pad), pad + c * (w + pad)
        sheet[top:top + h, left:left + w] = image
    return sheet
