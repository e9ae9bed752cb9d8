"""The evaluate job: its core on a linear model by hand, protocols, LeRF, summary and table."""

import csv
import json
from types import SimpleNamespace

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from conftest import FIXTURES
from xai_cli.cli import main
from xai_cli.errors import XaiError
from xai_cli.jobs.evaluate import table
from xai_cli.measures import perturbation as pa
from xai_cli.measures.faithfulness import EvaluateOptions, Tally, evaluate_batch


class LinearModel:
    """Score of class 0 is sum(w * x), class 1 is 0; its exact relevance is w * x."""

    def __init__(self, w):
        self.w, self.calls = w, 0

    def scorer(self, batch):
        return np.stack([(batch * self.w).sum(axis=(1, 2, 3)), np.zeros(len(batch))], axis=1)

    def explain(self, x, targets, index, named=None):
        self.calls += 1
        return SimpleNamespace(relevance=self.w * x, targets=np.where(targets < 0, 0, targets))


def _linear(seed=0, n=4, shape=(6, 6, 2)):
    rng = np.random.default_rng(seed)
    return LinearModel(rng.normal(size=shape)), rng.uniform(0, 1, (n, *shape)).astype(np.float32)


def _batch(model, x, seed=0, **options):
    options = EvaluateOptions(methods=("linear",), **{"perturb": (9, 9), **options})
    return evaluate_batch({"linear": model}, model.scorer, x, np.full(len(x), -1, np.int32),
                          np.arange(len(x)), options, valid_range=(0.0, 1.0), seed=seed)


def test_inputs_with_non_finite_relevance_or_scores_are_left_out_with_the_reason():
    model, x = _linear(n=5)
    x[1, 0, 0, 0] = np.inf                         # relevance w * x is not finite
    x[3, 5, 5, 1] = 0.125                          # marks the third image's copies

    def scorer(batch):                             # ... whose perturbed copies score NaN
        scores = model.scorer(batch)
        perturbed = (batch != x[3]).reshape(len(batch), -1).any(axis=1)
        scores[(batch[:, 5, 5, 1] == 0.125) & perturbed] = np.nan
        return scores

    options = EvaluateOptions(methods=("linear",), perturb=(2, 2), replace=("mean",), steps=2)
    result = evaluate_batch({"linear": model}, scorer, x, np.full(5, -1, np.int32), np.arange(5),
                            options)
    assert result.kept.tolist() == [0, 2, 4]
    assert sorted(result.faults) == [1, 3]
    assert "relevance contains NaN or Inf for linear" in result.faults[1]
    assert "perturbed copy is NaN or Inf (linear mean morf" in result.faults[3]
    clean = _batch(model, x[[0, 2, 4]], perturb=(2, 2), replace=("mean",), steps=2)
    assert all(curves.shape == (3, 3) for curves in result.curves.values())
    np.testing.assert_allclose(result.curves["linear", "mean", "morf"],
                               clean.curves["linear", "mean", "morf"])


def test_area_is_aopc_morf_minus_aopc_lerf_by_hand():
    """Mean replacement on a linear model: step k removes the k first patches' contribution
    and adds their share of the mean image, so both curves and both AOPCs are sums."""
    model, x = _linear()
    result = _batch(model, x, perturb=(2, 3), replace=("mean",), lerf=True)
    _, count = pa.patch_ids((6, 6), (2, 3))
    expected = {"morf": [], "lerf": []}
    for n in range(len(x)):
        contribution = pa.patch_scores((model.w * x[n])[None], (2, 3))[0]
        mean_part = pa.patch_scores((model.w * x[n].mean(axis=(0, 1)))[None], (2, 3))[0]
        for order, ranking in (("morf", -contribution), ("lerf", contribution)):
            drop = (contribution - mean_part)[np.argsort(ranking, kind="stable")]
            expected[order].append(np.mean(np.r_[0, np.cumsum(drop)]))   # f(x_0) - f(x_k)
    aopc, lerf, area = (f()["mean"]["linear"] for f in (result.aopc, result.aopc_lerf, result.area))
    np.testing.assert_allclose(aopc, expected["morf"], rtol=1e-5)
    np.testing.assert_allclose(lerf, expected["lerf"], rtol=1e-5)
    np.testing.assert_allclose(area, np.subtract(expected["morf"], expected["lerf"]), rtol=1e-5)
    assert (area > 0).all()
    assert result.curves["linear", "mean", "morf"].shape == (len(x), count + 1)
    assert set(result.area()["mean"]) == {"linear"}        # no area for the random baseline
    assert _batch(model, x, perturb=(2, 3), replace=("mean",)).area() == {}


def test_relevance_once_per_batch_and_protocols_independent():
    model, x = _linear(1)
    both = _batch(model, x, seed=4, replace=("blur", "mean", "uniform"), lerf=True, perturb=(2, 2))
    assert model.calls == 1
    alone = _batch(model, x, seed=4, replace=("uniform",), lerf=True, perturb=(2, 2))
    for key in [("linear", "uniform", "morf"), ("linear", "uniform", "lerf"),
                ("random", "uniform", "random")]:
        np.testing.assert_array_equal(both.curves[key], alone.curves[key])
    assert list(both.aopc()) == ["blur", "mean", "uniform"]
    assert not np.array_equal(both.curves["random", "blur", "random"],
                              both.curves["random", "mean", "random"])


@pytest.mark.parametrize("kwargs,message", [
    ({"lerf": True, "order": "lerf"}, "--order morf"),
    ({"lerf": True, "order": "random"}, "--order morf"),
    ({"replace": ("hiss",)}, "hiss"),
    ({"words": 0}, "--words"),
])
def test_options_are_checked_for_every_caller(kwargs, message):
    with pytest.raises(XaiError, match=message):
        EvaluateOptions(**kwargs)


def test_no_ratio_when_the_random_baseline_does_not_fall():
    """A model blind to its input: random AOPC is 0, so no ratio, and the table says so."""
    model, x = _linear(2)
    options = EvaluateOptions(methods=("linear",), replace=("mean", "blur"), perturb=(3, 3))
    tally = Tally(options)
    tally.add(evaluate_batch({"linear": model}, lambda batch: np.ones((len(batch), 2)), x,
                             np.zeros(len(x), np.int32), np.arange(len(x)), options))
    rows = tally.rows(steps=4, seed=0)
    assert [(r["method"], r["replace"]) for r in rows] == [
        ("linear", "mean"), ("linear", "blur"), ("random", "mean"), ("random", "blur")]
    assert all(r["aopc"] == 0 and r["aopc_vs_random"] is None for r in rows)
    assert all(r["aopc_lerf"] is None and r["area"] is None for r in rows)
    text = table(rows)
    assert text.count("no ratio: the random baseline's AOPC is not positive") == 2
    assert "n/a" in text and "area" not in text


def test_table_is_aligned_across_protocols():
    def row(method, replace, aopc, ratio, area=None):
        return {"method": method, "replace": replace, "n_images": 30, "aopc": aopc,
                "aopc_stderr": 0.3, "aopc_vs_random": ratio, "area": area,
                "area_stderr": None if area is None else 0.21, "order": "morf", "perturb": "9x9",
                "steps": 100, "n_masked": None}

    text = table([row("lrp", "uniform", 2.71, 1.2844, 1.93), row("integrated-gradients", "uniform",
                                                                  12.5, 5.92, -0.5),
                  row("random", "uniform", 2.11, 1.0), row("lrp", "blur", 0.5, 2.0, 0.25),
                  row("random", "blur", 0.25, 1.0)])
    lines = text.splitlines()
    assert lines[0] == "replace uniform (30 images, 9x9 patches, 100 steps, morf and lerf)"
    assert lines[2].split() == ["lrp", "2.71", "±", "0.30", "1.28", "1.93", "±", "0.21"]
    assert lines[4].split() == ["random", "2.11", "±", "0.30", "1.00"]
    assert lines[5].startswith("replace blur (")
    header = lines[1]
    columns = [header.index(name) for name in ("aopc", "x random", "area")]
    assert lines[6] == header                                 # same widths in every block
    for line in lines[2:5] + lines[7:9]:                      # each cell starts under its name
        assert all(line[c - 1] == " " != line[c] for c in columns if c < len(line))
    assert len(lines[3]) > columns[2] > len(lines[4])         # the random row has no area


def _evaluate(out, *args, images=5):
    x = out.parent / "x.npy"
    np.save(x, np.load(FIXTURES / "digits_test_x.npy")[:images])
    result = CliRunner().invoke(main, ["evaluate", str(FIXTURES / "digits.keras"), str(x), "-p",
                                       "unit", "--perturb", "8x8", "--steps", "4", *args,
                                       "-o", str(out)])
    assert result.exit_code == 0, result.stderr
    with open(out / "curves.csv") as f:
        curves = list(csv.DictReader(f))
    with open(out / "summary.csv") as f:
        summary = list(csv.DictReader(f))
    return result, curves, summary


def test_protocols_and_lerf_rows_columns_json_and_table(tmp_path):
    result, curves, summary = _evaluate(tmp_path / "out", "-m", "lrp", "-m", "sa", "--replace",
                                        "mean", "--replace", "blur", "--lerf", images=4)
    assert list(curves[0]) == ["image", "method", "replace", "order", "step", "fraction_perturbed",
                               "score", "relative_score"]
    assert list(summary[0]) == ["method", "replace", "n_images", "aopc", "aopc_stderr",
                                "aopc_vs_random", "aopc_lerf", "aopc_lerf_stderr", "area",
                                "area_stderr", "order", "perturb", "steps", "seed", "n_masked",
                                "pointing", "pointing_stderr", "mass", "mass_stderr",
                                "rank_accuracy", "rank_accuracy_stderr"]
    assert all(row["n_masked"] == row["pointing"] == "" for row in summary)   # no --masks
    assert [(r["method"], r["replace"]) for r in summary] == [
        (m, r) for m in ("lrp", "sa", "random") for r in ("mean", "blur")]
    assert len(curves) == 4 * (2 * 2 * 2 + 2) * 5          # images x curves x steps 0..4
    orders = {(r["method"], r["replace"]): set() for r in summary}
    for row in curves:
        orders[row["method"], row["replace"]].add(row["order"])
    assert orders == {(m, r): {"morf", "lerf"} if m != "random" else {"random"}
                      for m, r in orders}
    for row in summary:
        lerf_cells = [row[c] for c in ("aopc_lerf", "aopc_lerf_stderr", "area", "area_stderr")]
        if row["method"] == "random":
            assert lerf_cells == [""] * 4 and row["order"] == "random"
        else:
            assert float(row["area"]) == pytest.approx(float(row["aopc"]) - float(row["aopc_lerf"]),
                                                       rel=1e-6, abs=1e-7)
            assert row["order"] == "morf"
    records = [json.loads(line) for line in result.stdout.splitlines()]   # stdout: JSON only
    assert len(records) == 4
    for record in records:
        assert list(record["aopc_by_replace"]) == ["mean", "blur"]
        assert record["aopc"] == record["aopc_by_replace"]["mean"]
        assert set(record["aopc"]) == {"lrp", "sa", "random"}
    mean_lrp = np.mean([r["aopc_by_replace"]["blur"]["lrp"] for r in records])
    assert float(summary[1]["aopc"]) == pytest.approx(mean_lrp, rel=1e-6)
    assert "replace mean (4 images, 8x8 patches, 4 steps, morf and lerf)" in result.stderr
    assert "replace blur (" in result.stderr
    assert any(line.split()[:1] == ["sa"] and len(line.split()) == 8
               for line in result.stderr.splitlines())


def test_adding_a_protocol_keeps_the_uniform_rows_and_the_ratio(tmp_path):
    _, curves, summary = _evaluate(tmp_path / "a", "--replace", "uniform", "--seed", "2")
    result, curves2, summary2 = _evaluate(tmp_path / "b", "--replace", "blur", "--replace",
                                          "uniform", "--seed", "2")
    assert curves == [r for r in curves2 if r["replace"] == "uniform"]
    assert summary == [r for r in summary2 if r["replace"] == "uniform"]
    assert {r["order"] for r in curves} == {"morf", "random"}
    assert all(r["aopc_lerf"] == r["area"] == "" for r in summary)
    for rows in (summary, summary2):
        random = {r["replace"]: float(r["aopc"]) for r in rows if r["method"] == "random"}
        assert all(v > 0 for v in random.values())
        for row in rows:
            assert float(row["aopc_vs_random"]) == pytest.approx(
                float(row["aopc"]) / random[row["replace"]], rel=1e-6)
    lines = result.stderr.splitlines()
    notes, table = lines[:2], lines[2:]
    assert notes == ["xai: the model ends in a softmax: explaining the pre-softmax score (logit)",
                     f"xai: report: {tmp_path / 'b' / 'index.html'}"]
    assert [line.split()[0] for line in table] == [
        "replace", "method", "lrp", "random", "paired", "lrp"] * 2
    assert all(json.loads(line)["status"] == "ok" for line in result.stdout.splitlines())


@pytest.mark.parametrize("order", ["lerf", "random"])
def test_lerf_with_another_order_is_a_usage_error(tmp_path, order):
    result = CliRunner().invoke(main, ["evaluate", str(FIXTURES / "digits.keras"),
                                       str(FIXTURES / "digits"), "--lerf", "--order", order,
                                       "-o", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "--lerf" in result.stderr and f"not --order {order}" in result.stderr
    assert result.stdout == "" and not (tmp_path / "out").exists()


def test_saved_heatmaps_are_those_explain_draws_and_the_records_name_them(tmp_path):
    images = FIXTURES / "digits"
    args = [str(FIXTURES / "digits.keras"), str(images), "-p", "unit", "-m", "lrp", "-m", "sa"]
    result = CliRunner().invoke(main, ["evaluate", *args, "--perturb", "7x7", "--steps", "3",
                                       "--replace", "mean", "--save-heatmaps",
                                       "-o", str(tmp_path / "ev")])
    assert result.exit_code == 0, result.stderr
    explained = CliRunner().invoke(main, ["explain", *args, "-o", str(tmp_path / "ex")])
    assert explained.exit_code == 0, explained.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    stems = sorted(p.stem for p in images.glob("*.png"))
    assert len(records) == len(stems) == 3
    for record in records:
        stem = record["input"].rsplit("/", 1)[-1][:-4]
        assert record["outputs"][1:] == [str(tmp_path / "ev" / f"{stem}.{m}.png")
                                         for m in ("lrp", "sa")]
    for stem in stems:
        for method in ("lrp", "sa"):
            saved = np.asarray(Image.open(tmp_path / "ev" / f"{stem}.{method}.png"))
            drawn = np.asarray(Image.open(tmp_path / "ex" / f"{stem}.{method}.png"))
            assert np.abs(saved.astype(int) - drawn).max() <= 1, (stem, method)
    page = (tmp_path / "ev" / "index.html").read_text()
    assert f"{stems[0]}.lrp.png" in page

