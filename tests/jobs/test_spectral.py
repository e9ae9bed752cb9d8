"""SpRAy: spectral clustering of heatmaps, and the Clever Hans demo."""

import csv
import json
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from conftest import FIXTURES
from xai_cli.cli import main
from xai_cli.errors import XaiError
from xai_cli.jobs import spectral


def _blobs(counts, seed=0):
    """Heatmaps with a blob at a different place per group, plus noise."""
    rng = np.random.default_rng(seed)
    centres = [(4, 4), (16, 16), (4, 26)]
    maps, truth = [], []
    yy, xx = np.mgrid[:32, :32]
    for group, count in enumerate(counts):
        cy, cx = centres[group]
        for _ in range(count):
            blob = np.exp(-((yy - cy - rng.normal()) ** 2 + (xx - cx - rng.normal()) ** 2) / 8)
            maps.append(blob + 0.05 * rng.normal(size=(32, 32)))
            truth.append(group)
    return np.stack(maps), np.array(truth)


def _purity(labels, truth):
    return sum(np.bincount(truth[labels == c]).max() for c in np.unique(labels)) / len(labels)


@pytest.mark.parametrize("counts", [(30, 40), (20, 25, 30)])
def test_auto_finds_the_groups(counts):
    maps, truth = _blobs(counts)
    result = spectral.spray(spectral.prepare(maps), "auto")
    assert result.n_clusters == len(counts) and _purity(result.labels, truth) == 1.0
    assert np.bincount(result.labels).tolist() == sorted(counts, reverse=True)
    assert (np.diff(result.eigenvalues) >= -1e-9).all()


def test_forced_cluster_count_and_determinism():
    maps, _ = _blobs((15, 15, 15))
    a = spectral.spray(spectral.prepare(maps), 2, seed=1)
    b = spectral.spray(spectral.prepare(maps), 2, seed=1)
    assert a.n_clusters == 2 and (a.labels == b.labels).all()


def test_prepare_downsizes_and_normalises():
    features = spectral.prepare(np.stack([np.full((32, 32), 6.0), np.zeros((32, 32))]), size=8)
    assert features.shape == (2, 64)
    assert features[0].max() == pytest.approx(1) and not features[1].any()


def test_input_errors():
    with pytest.raises(XaiError, match="at least 3"):
        spectral.spray(np.zeros((2, 4)))
    with pytest.raises(XaiError, match="between 1 and 5"):
        spectral.spray(np.random.default_rng(0).normal(size=(5, 4)), clusters=9)


def test_missing_scikit_learn_is_a_clear_message(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn.cluster", None)
    with pytest.raises(XaiError, match=r"pip install 'xai\[spray\]'"):
        spectral.spray(np.zeros((5, 4)))


def test_contact_sheet_layout():
    sheet = spectral.contact_sheet([np.zeros((4, 5, 3), np.uint8)] * 5, columns=3, pad=1)
    assert sheet.shape == (2 * 5 + 1, 3 * 6 + 1, 3)


def test_spray_separates_watermarked_threes(tmp_path):
    """The Clever Hans demo: marked and unmarked threes land in different clusters."""
    result = CliRunner().invoke(main, [
        "spray", str(FIXTURES / "digits_marked.keras"), str(FIXTURES / "digits_marked_test_x.npy"),
        "-p", "unit", "-t", "3", "-r", "lrp-epsilon", "-o", str(tmp_path)])
    assert result.exit_code == 0, result.stderr
    marked = np.load(FIXTURES / "digits_marked_test_mark.npy")
    records = [json.loads(line) for line in result.stdout.splitlines()]
    labels = np.array([r["cluster"] for r in records])
    truth = marked[[r["index"] for r in records]].astype(int)
    assert len(np.unique(labels)) >= 2 and _purity(labels, truth) >= 0.9
    for name in ("clusters.csv", "eigenvalues.csv", "eigengap.png", "embedding.png",
                 "cluster_0_mean.png", "cluster_1_members.png"):
        assert (tmp_path / name).stat().st_size > 0
    rows = list(csv.DictReader(open(tmp_path / "clusters.csv")))
    assert len(rows) == len(marked) and {"image", "cluster", "e0", "e1", "e2"} <= set(rows[0])


def test_sparse_solver_agrees_with_dense(monkeypatch):
    maps, truth = _blobs((40, 50))
    features = spectral.prepare(maps)
    dense = spectral.spray(features, "auto")
    monkeypatch.setattr(spectral, "DENSE_LIMIT", 10)
    sparse = spectral.spray(features, "auto")
    np.testing.assert_allclose(sparse.eigenvalues, dense.eigenvalues, atol=1e-6)
    assert (sparse.labels == dense.labels).all() and _purity(sparse.labels, truth) == 1.0
