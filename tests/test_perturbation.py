"""Region perturbation: hand-checkable cases on a linear model, and the SA-vs-LRP result."""

import csv

import numpy as np
import pytest
from click.testing import CliRunner

from conftest import FIXTURES
from xai_cli import perturbation as pa
from xai_cli.cli import main


def test_patch_scores_clip_edge_patches():
    r = np.arange(100, dtype=float).reshape(1, 10, 10)
    scores = pa.patch_scores(r, (3, 3))
    assert scores.shape == (1, 16)
    assert scores[0, 0] == r[0, :3, :3].sum()
    assert scores[0, 3] == r[0, :3, 9].sum()      # 3x1 patch at the right edge
    assert scores[0, 15] == r[0, 9, 9]            # 1x1 corner patch
    assert scores.sum() == r.sum()


def test_orders_and_deterministic_ties():
    scores = np.array([[1.0, 3.0, 3.0, 0.0]])
    assert pa.patch_order(scores, "morf", []).tolist() == [[1, 2, 0, 3]]
    assert pa.patch_order(scores, "lerf", []).tolist() == [[3, 0, 1, 2]]
    a = pa.patch_order(scores, "random", [np.random.default_rng([1, 0])])
    b = pa.patch_order(scores, "random", [np.random.default_rng([1, 0])])
    assert sorted(a[0]) == [0, 1, 2, 3] and (a == b).all()


def _linear_case(seed=0):
    rng = np.random.default_rng(seed)
    w = rng.normal(size=(6, 6, 1))
    x = rng.uniform(0, 1, (3, 6, 6, 1)).astype(np.float32)
    return w, x


def test_morf_curve_of_a_linear_model_by_hand():
    """score = sum(w * x), relevance = w * x: step k removes the k largest patch sums."""
    w, x = _linear_case()
    relevance = w * x
    ids, count = pa.patch_ids((6, 6), (2, 3))
    ranks = pa.pixel_ranks(pa.patch_order(pa.patch_scores(relevance, (2, 3)), "morf", []), ids)
    replacement = pa.replacement_values(x, "mean", None, [], sigma=1)
    curves = pa.perturbation_curves(lambda b, i: (b * w).sum(axis=(1, 2, 3)), x, ranks,
                                    replacement, steps=count + 2, chunk=4)
    for n in range(3):
        contributions = pa.patch_scores(relevance[n:n + 1], (2, 3))[0]
        mean_part = pa.patch_scores((w * x[n].mean())[None], (2, 3))[0]
        order = np.argsort(-contributions, kind="stable")
        expected = [contributions.sum() - contributions[order[:k]].sum() + mean_part[order[:k]].sum()
                    for k in range(count + 1)]
        np.testing.assert_allclose(curves[n, :count + 1], expected, rtol=1e-5)
        assert (curves[n, count:] == curves[n, count]).all()   # beyond the last patch: flat
    lerf = pa.perturbation_curves(
        lambda b, i: (b * w).sum(axis=(1, 2, 3)), x,
        pa.pixel_ranks(pa.patch_order(pa.patch_scores(relevance, (2, 3)), "lerf", []), ids),
        replacement, steps=count + 2)
    assert (pa.aopc(curves) > pa.aopc(lerf)).all()


def test_chunk_size_does_not_change_results():
    w, x = _linear_case(1)
    ids, _ = pa.patch_ids((6, 6), (2, 2))
    ranks = pa.pixel_ranks(pa.patch_order(pa.patch_scores(w * x, (2, 2)), "morf", []), ids)
    rngs = [np.random.default_rng([0, i]) for i in range(3)]
    replacement = pa.replacement_values(x, "uniform", (np.zeros(1), np.ones(1)), rngs, sigma=1)
    assert 0 <= replacement.min() and replacement.max() <= 1
    score = lambda b, i: (b * w).sum(axis=(1, 2, 3))  # noqa: E731
    np.testing.assert_array_equal(pa.perturbation_curves(score, x, ranks, replacement, 5, chunk=1),
                                  pa.perturbation_curves(score, x, ranks, replacement, 5, chunk=999))


def test_blur_of_a_constant_image_is_the_constant_and_fractions_count_pixels():
    x = np.full((1, 7, 5, 2), 0.3, np.float32)
    np.testing.assert_allclose(pa.replacement_values(x, "blur", None, [], sigma=2), x, rtol=1e-6)
    ids, count = pa.patch_ids((7, 5), (3, 3))
    ranks = pa.pixel_ranks(np.arange(count)[None], ids)
    fractions = pa.fraction_perturbed(ranks, count)
    assert fractions[0, 0] == 0 and fractions[0, -1] == 1 and fractions[0, 1] == 9 / 35


def test_aopc_by_hand():
    curves = np.array([[4.0, 2.0, 1.0], [2.0, 2.0, 2.0]])
    np.testing.assert_allclose(pa.aopc(curves), [(0 + 2 + 3) / 3, 0])
    mean, stderr = pa.mean_and_stderr(pa.aopc(curves))
    assert mean == pytest.approx(5 / 6) and stderr == pytest.approx(np.std([5 / 3, 0], ddof=1) / np.sqrt(2))


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
