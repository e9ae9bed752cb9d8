"""xai cluster: k-means on a layer's features and NEON heatmaps of each input's membership,
on the Clever Hans digits (the constructed case whose answer is known), its resumption,
reuse of a fit, and refusals."""

import csv
import json

import numpy as np
import pytest
from click.testing import CliRunner

import xai_cli
from conftest import FIXTURES
from xai_cli.cli import main

MODELS = FIXTURES.parents[1] / "models"
MARKED = MODELS / "digits_marked.keras"
THREES = MODELS / "digits_marked_test_x.npy"          # 51 threes, the first 25 of a permutation marked
MARK = np.load(MODELS / "digits_marked_test_mark.npy")


def run(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    records = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    return result, records


def rows(path):
    with open(path) as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def clustered(tmp_path_factory):
    out = tmp_path_factory.mktemp("cluster") / "out"
    result, records = run("cluster", MARKED, THREES, "--layer", "fc1", "-k", 2, "-o", out)
    assert result.exit_code == 0, result.stderr
    return out, result, records


def test_the_watermark_makes_a_cluster_and_explains_its_membership(clustered):
    """The threes split into the marked and the unmarked ones; every input's heatmap is for
    its own cluster, and the marked cluster's mean heatmap lies on the mark."""
    out, result, records = clustered
    table = rows(out / "clusters.csv")
    assert [r["image"] for r in table] == [f"digits_marked_test_x-{i:02d}" for i in range(51)]
    cluster = np.array([int(r["cluster"]) for r in table])
    assert (cluster == MARK).all() or (cluster != MARK).all()
    assert [r["target"] for r in records] == cluster.tolist() == [r["predicted"] for r in records]
    assert {r["target_label"] for r in records} == {"cluster 0", "cluster 1"}
    marked = int(cluster[MARK][0])
    maps = np.stack([np.load(out / f"digits_marked_test_x-{i:02d}.lrp.npy")[..., 0] for i in range(51)])
    mean = np.clip(maps[cluster == marked].mean(axis=0), 0, None)
    assert mean[1:5, 1:5].sum() / mean.sum() > 0.2          # 16 of 1024 pixels
    for k in (0, 1):
        assert (out / f"cluster_{k}_mean.png").exists() and (out / f"cluster_{k}_prototypes.png").exists()
    assert "51 inputs in 2 clusters of fc1" in result.stderr


def test_the_table_the_saved_model_and_the_records_agree(clustered):
    """clusters.csv's membership is the saved model's output for the input's cluster (the
    record's score), its log-odds beta times it, its distances the nearest centroid's
    smallest; the saved model explains as the job did."""
    out, _, records = clustered
    table = rows(out / "clusters.csv")
    fit = np.load(out / "centroids.npz")
    assert fit["centroids"].shape == (2, 64) and str(fit["layer"]) == "fc1" and int(fit["fitted_on"]) == 51
    for row, record in zip(table, records):
        membership = float(row["membership"])
        assert membership == pytest.approx(record["score"], rel=1e-4)
        assert float(row["log_odds"]) == pytest.approx(float(fit["beta"]) * membership, rel=1e-6)
        distances = [float(row[f"distance_{k}"]) for k in (0, 1)]
        assert int(row["cluster"]) == int(np.argmin(distances))
    images = np.load(THREES)[:3]
    again = xai_cli.explain(out / "clusters.keras", images)
    saved = np.load(out / "digits_marked_test_x-01.lrp.npy")
    np.testing.assert_allclose(again[1], saved, rtol=1e-5, atol=1e-6)
    page = (out / "index.html").read_text()
    assert "Clusters (k-means, NEON)" in page and "cluster_1_prototypes.png" in page


def test_a_fit_is_reused_and_a_cluster_can_be_targeted(clustered, tmp_path):
    out, _, _ = clustered
    first = rows(out / "clusters.csv")
    np.save(tmp_path / "few.npy", np.load(THREES)[:6])
    result, records = run("cluster", MARKED, tmp_path / "few.npy", "--layer", "fc1", "--centroids",
                          out / "centroids.npz", "--target-cluster", 0, "-o", tmp_path / "reused")
    assert result.exit_code == 0, result.stderr
    reused = rows(tmp_path / "reused" / "clusters.csv")
    assert [r["cluster"] for r in reused] == [r["cluster"] for r in first[:6]]
    assert {r["target"] for r in records} == {0}
    assert np.load(tmp_path / "reused" / "centroids.npz")["beta"] == np.load(out / "centroids.npz")["beta"]


def test_a_rerun_with_skip_existing_explains_nothing_again(clustered):
    out, _, _ = clustered
    before = (out / "clusters.csv").read_bytes()
    result, records = run("cluster", MARKED, THREES, "--layer", "fc1", "-k", 2, "-o", out, "--skip-existing")
    assert result.exit_code == 0, result.stderr
    assert "skipping 51 inputs whose outputs exist" in result.stderr and records == []
    assert (out / "clusters.csv").read_bytes() == before


def test_pooled_convolution_features_and_a_separate_fit(tmp_path):
    np.save(tmp_path / "fit.npy", np.load(THREES)[10:40])
    result, records = run("cluster", MARKED, THREES, "--layer", "conv3", "--pool", "max", "-k", 3,
                          "--fit", tmp_path / "fit.npy", "-o", tmp_path / "out")
    assert result.exit_code == 0, result.stderr
    fit = np.load(tmp_path / "out" / "centroids.npz")
    assert fit["centroids"].shape[0] == 3 and int(fit["fitted_on"]) == 30 and str(fit["pool"]) == "max"
    assert len(records) == 51 and len(rows(tmp_path / "out" / "clusters.csv")) == 51


def test_cluster_refusals_name_the_problem(clustered, tmp_path):
    out, _, _ = clustered
    for args, message in (
            (("--layer", "fc9", "-k", 2), "has no layer 'fc9'; its layers are conv1, conv2"),
            (("--layer", "fc1"), "give the number of clusters, -k K"),
            (("--layer", "fc1", "-k", 60), "k-means with 60 clusters needs at least as many inputs"),
            (("--layer", "fc1", "-k", 2, "--target", 3), "use --target-cluster C"),
            (("--layer", "fc1", "-k", 2, "--target-cluster", 2), "--target-cluster 2: there are 2 clusters"),
            (("--layer", "conv3", "--centroids", out / "centroids.npz"),
             "were fitted on layer 'fc1' pooled 'avg', not on 'conv3'"),
            (("--layer", "fc1", "--centroids", out / "centroids.npz", "--fit", THREES), "give one"),
    ):
        result, _ = run("cluster", MARKED, THREES, *args, "-o", tmp_path / "refused")
        assert result.exit_code == 2 and message in result.stderr, (args, result.stderr)
    signals = FIXTURES.parents[1] / "sample_signals"
    result, _ = run("cluster", MODELS / "gunpoint_cnn.keras", signals / "gun_0.npy", "--layer", "gap",
                    "-k", 2, "-o", tmp_path / "refused")
    assert result.exit_code == 2 and "xai cluster works on image models; for a signal model use xai " \
        "explain or xai evaluate" in result.stderr, result.stderr


def test_shards_fit_the_same_clusters_and_a_last_run_writes_the_summaries(clustered, tmp_path):
    out = tmp_path / "sharded"
    for shard in ("1/2", "2/2"):
        result, _ = run("cluster", MARKED, THREES, "--layer", "fc1", "-k", 2, "--shard", shard, "-o", out)
        assert result.exit_code == 0, result.stderr
        assert not (out / "clusters.csv").exists()
        np.testing.assert_array_equal(np.load(out / "centroids.npz")["centroids"],
                                      np.load(clustered[0] / "centroids.npz")["centroids"])
    result, records = run("cluster", MARKED, THREES, "--layer", "fc1", "-k", 2, "--skip-existing", "-o", out)
    assert result.exit_code == 0 and records == [], result.stderr
    assert (out / "clusters.csv").read_bytes() == (clustered[0] / "clusters.csv").read_bytes()
    assert (out / "cluster_1_mean.png").exists()
