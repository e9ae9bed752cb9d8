"""Paired comparisons: the figures by hand, the interval's coverage, and evaluate's use of
them (comparisons.csv, the table, --require beats)."""

import csv

import numpy as np
import pytest
from click.testing import CliRunner

from conftest import FIXTURES
from xai_cli.cli import main
from xai_cli.measures import paired
from xai_cli.measures.faithfulness import EvaluateOptions, Tally


def test_difference_and_share_won_by_hand_ties_count_half():
    a, b = np.array([3.0, 1.0, 2.0, 5.0]), np.array([1.0, 2.0, 2.0, 1.0])
    result = paired.compare(a, b, np.random.default_rng(0))
    assert result.difference == pytest.approx(1.25) and result.count == 4
    assert result.won == pytest.approx((1 + 0 + 0.5 + 1) / 4)
    assert result.low <= result.difference <= result.high


def test_interval_is_the_percentiles_of_resampled_means():
    values = np.array([0.5, -1.0, 2.0, 0.25, 1.5])
    low, high = paired.bootstrap_interval(values, np.random.default_rng(1), resamples=2000)
    draws = np.random.default_rng(1).integers(0, 5, (2000, 5))   # the same draws, in one go
    means = values[draws].mean(axis=1)
    assert (low, high) == pytest.approx(tuple(np.quantile(means, [0.025, 0.975])))


def test_the_95_percent_interval_covers_the_true_mean_about_95_percent_of_the_time():
    rng = np.random.default_rng(2)
    covered = 0
    for _ in range(300):
        a = rng.normal(0.3, 1.0, 40)
        b = a - rng.normal(0.2, 0.5, 40)          # true mean difference 0.2
        result = paired.compare(a, b, rng, resamples=1000)
        covered += result.low <= 0.2 <= result.high
    assert 0.89 <= covered / 300 <= 0.98


def test_pairing_sees_what_separate_error_bars_hide():
    """Inputs differ far more than methods: the means' error bars overlap, yet the method
    that adds 0.1 on every input is ahead beyond noise."""
    rng = np.random.default_rng(3)
    b = rng.normal(0, 2.0, 30)
    a = b + 0.1 + rng.normal(0, 0.02, 30)
    assert abs(a.mean() - b.mean()) < a.std(ddof=1) / np.sqrt(30)
    assert paired.compare(a, b, rng).beats
    assert not paired.compare(b, a, rng).beats


def test_one_input_has_no_interval_and_none_has_no_figures():
    one = paired.compare(np.array([2.0]), np.array([1.0]), np.random.default_rng(0))
    assert one.difference == 1.0 and np.isnan(one.low) and np.isnan(one.high) and not one.beats
    none = paired.compare(np.array([]), np.array([]), np.random.default_rng(0))
    assert none.count == 0 and np.isnan(none.difference)


def test_tally_compares_every_pair_once_per_protocol_with_a_seeded_bootstrap():
    tally = Tally(EvaluateOptions(methods=("lrp", "sa"), replace=("blur", "uniform")))
    rng = np.random.default_rng(4)
    for key in [("aopc", m, r) for m in ("lrp", "sa", "random") for r in ("blur", "uniform")]:
        tally.values[key] = list(rng.normal(size=12))
    rows = tally.comparison_rows(seed=5)
    assert [(r["replace"], r["method"], r["versus"]) for r in rows] == [
        (r, a, b) for r in ("blur", "uniform") for a, b in
        (("lrp", "sa"), ("lrp", "random"), ("sa", "random"))]
    for row in rows:
        a = np.array(tally.values["aopc", row["method"], row["replace"]])
        b = np.array(tally.values["aopc", row["versus"], row["replace"]])
        assert row["aopc_difference"] == pytest.approx((a - b).mean())
        assert row["won"] == pytest.approx(np.mean(a > b))
    assert rows == tally.comparison_rows(seed=5)
    assert rows[0]["ci_low"] != tally.comparison_rows(seed=6)[0]["ci_low"]


def _evaluate(out, *args):
    return CliRunner().invoke(main, ["evaluate", str(FIXTURES / "digits.keras"),
                                     str(FIXTURES / "digits"), "-p", "unit", "--perturb", "7x7",
                                     "--steps", "8", "-m", "lrp", "-m", "sa", "--replace", "blur",
                                     *args, "-o", str(out)])


def test_evaluate_writes_comparisons_prints_them_and_gates_on_them(tmp_path):
    result = _evaluate(tmp_path / "out", "--require", "beats(lrp, random)",
                       "--require", "beats(random, lrp)", "--require", "won(sa, lrp) >= 0")
    assert result.exit_code == 3, result.stderr
    with open(tmp_path / "out" / "comparisons.csv") as f:
        rows = list(csv.DictReader(f))
    assert [(r["method"], r["versus"]) for r in rows] == [("lrp", "sa"), ("lrp", "random"),
                                                          ("sa", "random")]
    lrp_random = rows[1]
    low, high = float(lrp_random["ci_low"]), float(lrp_random["ci_high"])
    assert low > 0, "LRP beats random order on the digits"
    assert f"requirement met: beats(lrp, random): {low:.4g} > 0" in result.stderr
    assert f"requirement NOT met: beats(random, lrp): {-high:.4g} > 0" in result.stderr
    won = 1 - float(rows[0]["won"])
    assert f"requirement met: won(sa, lrp) >= 0: {won:.4g} >= 0" in result.stderr
    assert "paired on the same inputs" in result.stderr
    line = next(x for x in result.stderr.splitlines() if x.strip().startswith("lrp - random"))
    assert line.split()[-1] == "ahead"
    page = (tmp_path / "out" / "index.html").read_text()
    assert "Paired comparisons" in page and 'href="comparisons.csv"' in page


@pytest.mark.parametrize("require, message", [
    ("beats(lrp, lrp)", "compares two different methods"),
    ("beats(lrp)", "compares two different methods"),
    ("won(lrp, sa, uniform) > 0.5", "third argument is a --replace protocol"),
    ("beats(lrp, gradient)", "unknown argument 'gradient'"),
    ("aopc(lrp)", "missing comparison operator"),
])
def test_paired_requirements_that_cannot_hold_are_usage_errors(tmp_path, require, message):
    result = _evaluate(tmp_path / "o", "--require", require)
    assert result.exit_code == 2 and message in result.stderr
    assert not (tmp_path / "o").exists()
