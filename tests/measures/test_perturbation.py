"""Region perturbation: hand-checkable cases on a linear model, and the SA-vs-LRP result."""

import csv
import io

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from conftest import FIXTURES
from xai_cli.cli import main
from xai_cli.measures import perturbation as pa


def _rngs(seed, n):
    return [np.random.default_rng([seed, i]) for i in range(n)]


def _linear_case(seed=0, n=3, shape=(6, 6, 1)):
    """Per-image weights: score of image i is sum(w[i] * x), its relevance w[i] * x."""
    rng = np.random.default_rng(seed)
    w = rng.normal(size=(n, *shape))
    x = rng.uniform(0, 1, (n, *shape)).astype(np.float32)
    return w, x, lambda batch, image: (batch * w[image]).sum(axis=(1, 2, 3))


def _ranks(relevance, patch, order, rngs=()):
    ids, _ = pa.patch_ids(relevance.shape[1:3], patch)
    return pa.pixel_ranks(pa.patch_order(pa.patch_scores(relevance, patch), order, rngs), ids)


def test_patch_scores_clip_edge_patches():
    r = np.arange(100, dtype=float).reshape(1, 10, 10)
    scores = pa.patch_scores(r, (3, 3))
    assert scores.shape == (1, 16)
    assert scores[0, 0] == r[0, :3, :3].sum()
    assert scores[0, 3] == r[0, :3, 9].sum()      # 3x1 patch at the right edge
    assert scores[0, 12] == r[0, 9, :3].sum()     # 1x3 patch at the bottom edge
    assert scores[0, 15] == r[0, 9, 9]            # 1x1 corner patch
    assert scores.sum() == r.sum()
    channels = np.stack([r, 2 * r], axis=-1)      # channels are summed first
    np.testing.assert_array_equal(pa.patch_scores(channels, (3, 3)), 3 * scores)
    with pytest.raises(ValueError, match="positive"):
        pa.patch_ids((10, 10), (0, 3))


def test_orders_and_deterministic_ties():
    scores = np.array([[1.0, 3.0, 3.0, 0.0]])
    assert pa.patch_order(scores, "morf", []).tolist() == [[1, 2, 0, 3]]
    assert pa.patch_order(scores, "lerf", []).tolist() == [[3, 0, 1, 2]]
    a = pa.patch_order(scores, "random", _rngs(1, 1))
    assert sorted(a[0]) == [0, 1, 2, 3]
    assert (a == pa.patch_order(scores, "random", _rngs(1, 1))).all()
    with pytest.raises(ValueError, match="one generator per image"):
        pa.patch_order(scores, "random", [])
    with pytest.raises(ValueError, match="unknown order"):
        pa.patch_order(scores, "best", [])


def test_pixel_ranks_follow_the_order():
    ids, _ = pa.patch_ids((3, 4), (2, 2))          # 2x2 grid, bottom row of height 1
    ranks = pa.pixel_ranks(np.array([[2, 0, 3, 1]]), ids)
    assert ranks[0].tolist() == [[1, 1, 3, 3], [1, 1, 3, 3], [0, 0, 2, 2]]


def test_morf_curve_of_a_linear_model_by_hand():
    """Step k replaces the k patches of largest contribution by the image mean."""
    w, x, score = _linear_case()
    relevance = w * x
    _, count = pa.patch_ids((6, 6), (2, 3))
    replacement = pa.replacement_values(x, "mean", None, [], sigma=1)
    curves = pa.perturbation_curves(score, x, _ranks(relevance, (2, 3), "morf"), replacement,
                                    steps=count + 2, chunk=4)
    for n in range(3):
        contributions = pa.patch_scores(relevance[n:n + 1], (2, 3))[0]
        mean_part = pa.patch_scores((w[n] * x[n].mean())[None], (2, 3))[0]
        order = np.argsort(-contributions, kind="stable")
        expected = [contributions.sum() - contributions[order[:k]].sum()
                    + mean_part[order[:k]].sum() for k in range(count + 1)]
        np.testing.assert_allclose(curves[n, :count + 1], expected, rtol=1e-5)
        assert (curves[n, count:] == curves[n, count]).all()   # beyond the last patch: flat
    lerf = pa.perturbation_curves(score, x, _ranks(relevance, (2, 3), "lerf"), replacement,
                                  steps=count + 2)
    assert (pa.aopc(curves) > pa.aopc(lerf)).all()


def test_morf_beats_random_beats_lerf_when_removing_to_zero():
    """Positive contributions replaced by 0 (a constant range): exact curves, ordered AOPCs."""
    x = np.random.default_rng(0).permutation(np.arange(1, 17, dtype=np.float32)).reshape(1, 4, 4, 1)
    score = lambda batch, image: batch.sum(axis=(1, 2, 3))  # noqa: E731
    zero = pa.replacement_values(x, "uniform", (0.0, 0.0), _rngs(0, 1), sigma=1)
    curves = {o: pa.perturbation_curves(score, x, _ranks(x, (1, 1), o, _rngs(0, 1)), zero, 16)
              for o in pa.ORDERS}
    total = 136.0
    np.testing.assert_allclose(curves["morf"][0], total - np.r_[0, np.cumsum(np.arange(16, 0, -1))])
    np.testing.assert_allclose(curves["lerf"][0], total - np.r_[0, np.cumsum(np.arange(1, 17))])
    assert (curves["morf"] <= curves["random"]).all() and (curves["random"] <= curves["lerf"]).all()
    aopc = {order: pa.aopc(c)[0] for order, c in curves.items()}
    assert aopc["morf"] > aopc["random"] > aopc["lerf"]
    assert aopc["morf"] == pytest.approx(np.r_[0, np.cumsum(np.arange(16, 0, -1))].mean())


def test_each_step_replaces_one_more_patch_with_fixed_values():
    """Values are drawn once per image: step k+1 is step k plus the next patch."""
    w, x, _ = _linear_case(2, n=2, shape=(5, 5, 2))
    ids, count = pa.patch_ids((5, 5), (2, 2))
    order = pa.patch_order(pa.patch_scores(w * x, (2, 2)), "morf", [])
    replacement = pa.replacement_values(x, "uniform", (0.0, 1.0), _rngs(0, 2), sigma=1)
    seen = []
    pa.perturbation_curves(lambda b, i: (seen.append((b.copy(), i.copy())), np.zeros(len(b)))[1],
                           x, pa.pixel_ranks(order, ids), replacement, count, chunk=7)
    batch = np.concatenate([b for b, _ in seen]).reshape(2, count + 1, 5, 5, 2)
    assert np.concatenate([i for _, i in seen]).tolist() == [0] * (count + 1) + [1] * (count + 1)
    assert max(len(b) for b, _ in seen) <= 7
    np.testing.assert_array_equal(batch[:, 0], x)
    np.testing.assert_array_equal(batch[:, -1], replacement)
    for n in range(2):
        for k in range(count):
            changed = (batch[n, k + 1] != batch[n, k]).any(axis=-1)
            assert not (changed & (ids != order[n, k])).any()
            np.testing.assert_array_equal(batch[n, k + 1][ids == order[n, k]],
                                          replacement[n][ids == order[n, k]])


def test_zero_steps_and_chunk_size_do_not_change_results():
    w, x, score = _linear_case(1)
    ranks = _ranks(w * x, (2, 2), "morf")
    replacement = pa.replacement_values(x, "uniform", (np.zeros(1), np.ones(1)), _rngs(0, 3), 1)
    one, many = (pa.perturbation_curves(score, x, ranks, replacement, 5, c) for c in (1, 1000))
    np.testing.assert_array_equal(one, many)
    unperturbed = pa.perturbation_curves(score, x, ranks, replacement, 0)
    assert unperturbed.shape == (3, 1)
    np.testing.assert_allclose(unperturbed[:, 0], score(x, np.arange(3)))
    assert (pa.aopc(unperturbed) == 0).all()


def test_same_seed_same_results_and_per_image_generators():
    _, x, score = _linear_case(3, n=4, shape=(6, 6, 3))
    valid = (np.array([-1.0, 0.0, 10.0]), np.array([1.0, 0.5, 10.5]))

    def run(seed):
        replacement = pa.replacement_values(x, "uniform", valid, _rngs(seed, 4), sigma=1)
        ranks = _ranks(np.zeros(x.shape[:3]), (2, 2), "random", _rngs(seed, 4))
        return replacement, pa.perturbation_curves(score, x, ranks, replacement, 9)

    (r1, c1), (r2, c2), (r3, _) = run(5), run(5), run(6)
    np.testing.assert_array_equal(r1, r2)
    np.testing.assert_array_equal(c1, c2)
    assert not np.array_equal(r1, r3)
    assert r1.dtype == np.float32
    assert ((r1 >= valid[0]) & (r1 <= valid[1])).all()     # per channel
    assert (r1[..., 0].min() < -0.5) and (r1[..., 2].min() >= 10)
    half = pa.replacement_values(x[2:], "uniform", valid, _rngs(5, 4)[2:], sigma=1)
    np.testing.assert_array_equal(half, r1[2:])            # independent of batching
    with pytest.raises(ValueError, match="valid range"):
        pa.replacement_values(x, "uniform", None, _rngs(5, 4), sigma=1)
    with pytest.raises(ValueError, match="unknown replacement"):
        pa.replacement_values(x, "hiss", None, [], sigma=1)


def test_mean_and_blur_replacements():
    x = np.full((1, 7, 5, 2), 0.3, np.float32)
    np.testing.assert_allclose(pa.replacement_values(x, "blur", None, [], sigma=2), x, rtol=1e-6)
    np.testing.assert_allclose(pa.replacement_values(x, "blur", None, [], sigma=9), x, rtol=1e-6)
    _, y, _ = _linear_case(4, n=2, shape=(4, 3, 2))
    mean = pa.replacement_values(y, "mean", None, [], sigma=1)
    np.testing.assert_allclose(mean[1, 2, 1], y[1].mean(axis=(0, 1)), rtol=1e-6)
    delta = np.zeros((1, 21, 21, 1))
    delta[0, 10, 10] = 1
    g = np.exp(-0.5 * (np.arange(-3, 4) / 1.0) ** 2)
    g /= g.sum()
    blurred = pa.replacement_values(delta, "blur", None, [], sigma=1.0)[0, ..., 0]
    expected = np.zeros((21, 21))
    expected[7:14, 7:14] = np.outer(g, g)                  # separable, far from the edges
    np.testing.assert_allclose(blurred, expected, atol=1e-7)


def test_fraction_perturbed_counts_pixels_of_clipped_patches():
    ids, count = pa.patch_ids((7, 5), (3, 3))               # 3x2 grid, edges 1 high, 2 wide
    ranks = pa.pixel_ranks(np.array([np.arange(count), np.arange(count)[::-1]]), ids)
    fractions = pa.fraction_perturbed(ranks, count + 2)
    assert fractions.shape == (2, count + 3)
    assert fractions[0, 1] == 9 / 35 and fractions[1, 1] == 2 / 35   # first: full vs corner patch
    assert (fractions[:, 0] == 0).all() and (fractions[:, count:] == 1).all()
    assert (np.diff(fractions, axis=1) >= 0).all()


def test_aopc_by_hand():
    curves = np.array([[4.0, 2.0, 1.0], [2.0, 2.0, 2.0]])
    np.testing.assert_allclose(pa.aopc(curves), [(0 + 2 + 3) / 3, 0])
    mean, stderr = pa.mean_and_stderr(pa.aopc(curves))
    assert mean == pytest.approx(5 / 6)
    assert stderr == pytest.approx(np.std([5 / 3, 0], ddof=1) / np.sqrt(2))
    assert pa.mean_and_stderr([0.25]) == (0.25, 0.0)


def test_plot_curves_writes_a_png_with_a_panel_per_protocol(tmp_path):
    curves = {("lrp", "morf"): np.linspace(1, 0.2, 11), ("lrp", "lerf"): np.linspace(1, 0.9, 11),
              ("random", "random"): np.linspace(1, 0.8, 11)}
    pa.plot_curves({"replace mean": curves}, tmp_path / "curves.png", "test")
    buffer = io.BytesIO()
    pa.plot_curves({"replace mean": curves, "replace blur": curves}, buffer, "test")
    with Image.open(tmp_path / "curves.png") as one, Image.open(buffer) as two:
        assert one.format == two.format == "PNG" and one.size[0] > 100
        assert two.size[0] > one.size[0] * 1.4             # side by side


def _evaluate(tmp_path, *args):
    result = CliRunner().invoke(main, ["evaluate", *map(str, args), "-o", str(tmp_path)])
    assert result.exit_code == 0, result.stderr
    with open(tmp_path / "summary.csv") as f:
        return {row["method"]: row for row in csv.DictReader(f)}


def test_lrp_beats_sa_beats_random_on_the_digits_model(tmp_path):
    """Samek et al. 2017: on 120 test digits, LRP's curve falls fastest."""
    np.save(tmp_path / "x.npy", np.load(FIXTURES / "digits_test_x.npy")[:120])
    summary = _evaluate(tmp_path / "out", FIXTURES / "digits.keras", tmp_path / "x.npy", "-p", "unit",
                        "-m", "lrp", "-m", "sa", "--perturb", "4x4", "--steps", "16",
                        "--replace", "mean")
    aopc = {m: float(row["aopc"]) for m, row in summary.items()}
    assert int(summary["lrp"]["n_images"]) == 120
    assert aopc["lrp"] > aopc["sa"] > aopc["random"]
    assert (tmp_path / "out" / "curves.png").stat().st_size > 0


def test_same_seed_gives_byte_identical_csvs(tmp_path):
    np.save(tmp_path / "x.npy", np.load(FIXTURES / "digits_test_x.npy")[:7])
    args = (FIXTURES / "digits.keras", tmp_path / "x.npy", "-p", "unit", "-m", "lrp",
            "--perturb", "5x5", "--steps", "52", "--seed", "3")
    _evaluate(tmp_path / "a", *args, "-b", "3")
    _evaluate(tmp_path / "b", *args, "-b", "3")
    for name in ("curves.csv", "summary.csv"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    _evaluate(tmp_path / "c", *args, "-b", "7")   # other batching: same values up to float32
    rows = list(csv.DictReader(open(tmp_path / "a" / "curves.csv")))
    other = list(csv.DictReader(open(tmp_path / "c" / "curves.csv")))
    np.testing.assert_allclose([float(r["score"]) for r in rows], [float(r["score"]) for r in other],
                               rtol=1e-4)
    assert len(rows) == 7 * 2 * 53    # lrp and the random baseline, steps 0..52
    assert float(rows[48]["fraction_perturbed"]) < 1.0    # 7 x 7 = 49 patches (edges clipped)
    assert float(rows[49]["fraction_perturbed"]) == 1.0   # then everything is replaced
    assert [r["method"] for r in rows[52:54]] == ["lrp", "random"]


def test_uniform_replacement_needs_a_range(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((2, 32, 32, 1), np.float32))
    result = CliRunner().invoke(main, ["evaluate", str(FIXTURES / "digits.keras"),
                                       str(tmp_path / "x.npy"), "-p", "none", "-r", "lrp-epsilon",
                                       "-o", str(tmp_path / "o")])
    assert result.exit_code == 2 and "valid range" in result.stderr
