"""Neuralized k-means (NEON): the membership layer against the soft assignment it stands
for, NEON's rules against a NumPy reference written from the paper's equations, and
conservation from the membership evidence down to the features and, on a bias-free
network, down to the pixels."""

import json

import keras
import numpy as np
import pytest
from click.testing import CliRunner

from conftest import FIXTURES, explain, relative_max_diff
from xai_cli.cli import main
from xai_cli.models.kmeans import KMeansMembership, beta_heuristic, competitors
from xai_cli.models.loading import load

pytestmark = pytest.mark.backends   # run on every installed Keras backend


def _case(seed=0, clusters=4, dims=5, points=12):
    """Points scattered around well separated centroids, float64."""
    rng = np.random.default_rng(seed)
    centroids = rng.normal(size=(clusters, dims)) * 3
    points = centroids[rng.integers(0, clusters, points)] + rng.normal(size=(points, dims))
    return points, centroids


def _head(centroids, beta):
    return keras.Sequential([keras.Input((centroids.shape[1],)),
                             KMeansMembership(len(centroids), beta, centroids)])


def _squared_distances(points, centroids):
    return ((points[:, None] - centroids[None]) ** 2).sum(-1)


def neon_reference(points, centroids, beta, targets):
    """NEON in float64 from the paper's equations, one point at a time: f_c the soft
    minimum over k != c of h_k = d_k - d_c; R_k = f_c softmin_k(beta h); each h_k split
    over the features by the midpoint rule, w_k (x - (mu_c + mu_k) / 2) / h_k."""
    distances = _squared_distances(points, centroids)
    relevance = np.zeros_like(points)
    for n, c in enumerate(targets):
        others = [k for k in range(len(centroids)) if k != c]
        h = distances[n, others] - distances[n, c]
        weights = np.exp(-beta * (h - h.min()))
        weights /= weights.sum()
        evidence = -np.log(np.exp(-beta * h).sum()) / beta
        for share, k, h_k in zip(evidence * weights, others, h):
            contribution = 2 * (centroids[c] - centroids[k]) * (points[n] - (centroids[c] + centroids[k]) / 2)
            relevance[n] += contribution / h_k * share
    return relevance


def test_the_layer_is_the_log_odds_of_the_soft_assignment():
    """beta f_c = log(P(c|x) / (1 - P(c|x))), P(c|x) = softmax_c(-beta ||x - mu_c||^2)."""
    points, centroids = _case()
    beta = beta_heuristic(points, centroids)
    evidence = keras.ops.convert_to_numpy(_head(centroids, beta)(points.astype(np.float32)))
    logits = -beta * _squared_distances(points, centroids)
    probabilities = np.exp(logits - logits.max(1, keepdims=True))
    probabilities /= probabilities.sum(1, keepdims=True)
    expected = np.log(probabilities / (1 - probabilities)) / beta
    np.testing.assert_allclose(evidence, expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())
    assert (evidence.argmax(1) == _squared_distances(points, centroids).argmin(1)).all()


@pytest.mark.parametrize("target", ["own", 2])
def test_neon_matches_the_numpy_reference_and_conserves(target):
    """Whatever the rule config says about other layers, the head takes NEON's rules: its
    relevance equals the reference and sums to the evidence it explains (float32: squared
    distances of hundreds, and for a far cluster large shares that cancel, within 5e-4 of
    the largest relevance)."""
    points, centroids = _case(1)
    beta = beta_heuristic(points, centroids)
    targets = [-1] * len(points) if target == "own" else [target] * len(points)
    for rules in ("lrp-epsilon", "lrp-alpha1beta0"):
        result = explain(_head(centroids, beta), points, targets, rules=rules)
        expected = neon_reference(points, centroids, beta, result.targets)
        assert np.abs(result.relevance - expected).max() < 5e-4 * np.abs(expected).max()
        evidence = result.logits[np.arange(len(points)), result.targets]
        np.testing.assert_allclose(result.relevance.sum(1), evidence, rtol=1e-4,
                                   atol=5e-4 * np.abs(evidence).max())
    if target == "own":
        assert (result.targets == _squared_distances(points, centroids).argmin(1)).all()


def test_relevance_reaches_the_pixels_but_for_what_the_head_gives_to_silent_features():
    """Conv (no bias), ReLU, global average pooling, k-means on the pooled features, with
    LRP-0: the pixels' relevance sums to the membership evidence less what the head gives
    to features that are zero on the input (a channel the ReLU silences everywhere). NEON's
    midpoint rule gives a feature relevance for its distance from the midpoint, also where
    its value is 0, and the layers below have nothing to pass it to."""
    rng = np.random.default_rng(3)
    kernel = rng.normal(size=(3, 3, 2, 6))
    kernel[..., 5] = -np.abs(kernel[..., 5])          # channel 5 is off on every input >= 0
    features = keras.Sequential([keras.Input((8, 8, 2)),
                                 keras.layers.Conv2D(6, 3, use_bias=False, activation="relu"),
                                 keras.layers.GlobalAveragePooling2D()])
    features.layers[0].set_weights([kernel.astype(np.float32)])
    images = rng.uniform(0, 1, (10, 8, 8, 2)).astype(np.float32)
    pooled = keras.ops.convert_to_numpy(features(images)).astype(np.float64)
    assert (pooled[:, 5] == 0).all() and (pooled[:, :5] > 0).all()
    centroids = pooled[:3] + rng.normal(size=(3, 6)) * 0.1
    head = KMeansMembership(3, beta_heuristic(pooled, centroids), centroids)
    model = keras.Sequential([features, head])
    result = explain(model, images, [-1] * 10, rules="lrp-0")
    at_features = explain(keras.Sequential([keras.Input((6,)), head]), pooled, result.targets, rules="lrp-0")
    evidence = result.logits[np.arange(10), result.targets]
    # float32: a conv unit whose inputs' products nearly cancel (z near 0) conserves less
    # exactly: the tolerance is 2e-4 of the largest evidence, the lost relevance 25 times that
    tolerance = 2e-4 * np.abs(evidence).max()
    assert np.abs(at_features.relevance[:, 5]).min() > 25 * tolerance   # it is lost
    np.testing.assert_allclose(result.relevance.sum(axis=(1, 2, 3)), evidence - at_features.relevance[:, 5],
                               rtol=0, atol=tolerance)


def test_a_model_with_the_head_saves_loads_and_explains_from_the_command_line(tmp_path):
    keras.utils.set_random_seed(5)
    features = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(4, 3, activation="relu"),
                                 keras.layers.GlobalAveragePooling2D()])
    images = np.random.default_rng(6).uniform(0, 1, (3, 8, 8, 1)).astype(np.float32)
    pooled = keras.ops.convert_to_numpy(features(images))
    model = keras.Sequential([features, KMeansMembership(3, 2.0, pooled)])
    model.save(tmp_path / "clusters.keras")
    np.save(tmp_path / "images.npy", images)
    result = CliRunner().invoke(main, ["explain", str(tmp_path / "clusters.keras"),
                                       str(tmp_path / "images.npy"), "--save-raw",
                                       "-o", str(tmp_path / "out")])
    assert result.exit_code == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["target"] for r in records] == [0, 1, 2]   # each image is its own cluster's centroid
    saved = np.load(tmp_path / "out" / "images-1.lrp.npy")
    expected = explain(model, images[1:2], [1], rules="context-gamma-box").relevance[0]
    np.testing.assert_allclose(saved, expected, rtol=1e-5, atol=1e-6 * np.abs(expected).max())


def test_the_layer_refuses_what_is_not_k_means():
    with pytest.raises(ValueError, match="at least 2 clusters"):
        KMeansMembership(1, 1.0)
    with pytest.raises(ValueError, match="beta must be positive"):
        KMeansMembership(3, 0.0)
    with pytest.raises(ValueError, match=r"centroids of shape \(3, 4\) do not fit 3 clusters of features 5"):
        keras.Sequential([keras.Input((5,)), KMeansMembership(3, 1.0, np.zeros((3, 4)))])
    assert competitors(3).tolist() == [[1, 2], [0, 2], [0, 1]]


REFERENCE = dict(np.load(FIXTURES / "neon" / "neon_refs.npz"))   # the authors' demo (README there)


@pytest.mark.parametrize("case", ["wine", "random"])
def test_matches_the_authors_demo(case):
    """Kauffmann et al.'s neon_demo on the same points and centroids: the same clusters,
    the same differences, and its relevance scaled from its hard-min start to xai's
    soft-min one (the fixture's README, "Conventions")."""
    ref = {k.split("/")[1]: v for k, v in REFERENCE.items() if k.startswith(case + "/")}
    head = _head(ref["centroids"], float(ref["beta"]))
    result = explain(head, ref["features"], [-1] * len(ref["features"]))
    np.testing.assert_array_equal(result.targets, ref["clusters"])
    np.testing.assert_allclose(result.logits[np.arange(len(ref["clusters"])), ref["clusters"]],
                               ref["soft_min"], rtol=1e-4, atol=1e-5 * np.abs(ref["soft_min"]).max())
    expected = ref["relevance"] * (ref["soft_min"] / ref["hard_min"])[:, None]
    assert relative_max_diff(result.relevance, expected) < 1e-4
    if case == "random":   # every point is stored: the demo's beta heuristic over the same points
        beta = beta_heuristic(ref["features"], ref["centroids"])
        assert beta == pytest.approx(float(ref["beta"]), rel=1e-12)


def test_clusters_of_watermarked_digits_are_explained_by_the_watermark():
    """The constructed case: the Clever Hans digits model's 51 test threes, half of them
    watermarked (a 4x4 square, 1.6% of the image), clustered in two on the first dense
    layer's features: the clusters are the marked and the unmarked threes, and the marked
    cluster's membership puts a fifth of its positive relevance on the mark on average, more
    than a tenth in 80% of the marked threes (the unmarked cluster's almost none)."""
    from sklearn.cluster import KMeans
    root = FIXTURES.parents[1] / "models"
    net = load(root / "digits_marked.keras")
    images, marked = np.load(root / "digits_marked_test_x.npy"), np.load(root / "digits_marked_test_mark.npy")
    features = keras.Model(net.input, net.get_layer("fc1").output)
    pooled = keras.ops.convert_to_numpy(features(images)).astype(np.float64)
    kmeans = KMeans(2, n_init=10, random_state=0).fit(pooled)
    assert (kmeans.labels_ == marked).all() or (kmeans.labels_ != marked).all()
    head = KMeansMembership(2, beta_heuristic(pooled, kmeans.cluster_centers_), kmeans.cluster_centers_)
    result = explain(keras.Model(net.input, head(features.output)), images, [-1] * len(images),
                     rules="context-gamma-box")
    positive = np.clip(result.relevance[..., 0], 0, None)
    on_mark = positive[:, 1:5, 1:5].sum(axis=(1, 2)) / positive.sum(axis=(1, 2))
    assert on_mark[marked].mean() > 0.2 and (on_mark[marked] > 0.1).mean() >= 0.8
    assert on_mark[~marked].mean() < 0.02
