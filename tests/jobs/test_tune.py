"""xai tune: the search space from graph context, coordinate ascent, outputs, resuming."""

import csv
import json

import numpy as np
import pytest
from click.testing import CliRunner

from conftest import FIXTURES
from networks import inverted_residual_net
from xai_cli.cli import main
from xai_cli.engine import composites
from xai_cli.engine.graph import build_graph
from xai_cli.jobs import tune
from xai_cli.models.loading import load

MODEL = FIXTURES / "digits.keras"
FAST = ["--perturb", "8x8", "--steps", "6", "--replace", "mean", "-p", "unit", "-b", "16"]


def _inputs(tmp_path, n=12):
    path = tmp_path / "x.npy"
    np.save(path, np.load(FIXTURES / "digits_test_x.npy")[:n])
    return path


def _tune(tmp_path, out, *args, n=12):
    result = CliRunner().invoke(main, ["tune", str(MODEL), str(_inputs(tmp_path, n)), *FAST,
                                       "-o", str(out), *map(str, args)])
    records = [json.loads(line) for line in result.stdout.splitlines()]
    return result, records


def test_slots_follow_the_graph():
    graph = build_graph(load(MODEL))
    assert [s.name for s in tune.used_slots(graph)] == ["first", "conv-relu", "dense"]


@pytest.mark.parametrize("graph", ["digits", "inverted residual"])
def test_the_search_starts_at_the_default_config(graph):
    graph = build_graph(load(MODEL)) if graph == "digits" else inverted_residual_net()
    start = composites.parse(tune.config_text({s.name: s.options[0] for s in tune.SLOTS},
                                              tune.SLOTS), "start")
    default = composites.load("context-gamma-box")
    rules = [[a.rule.describe() for a in c.resolve(c.canonize(graph))[0]]
             for c in (start, default)]
    assert rules[0] == rules[1]


def test_coordinate_ascent_moves_only_for_a_gain_beyond_noise_on_the_same_images():
    """Per image: y adds 0.5 to x everywhere (beyond noise); z has the higher mean but
    wins on one image only (within noise); q ties with p; then r beats p by less than
    s does, and both beyond noise."""
    slots = [tune.Slot("a", {}, ({"rule": "x"}, {"rule": "y"}, {"rule": "z"})),
             tune.Slot("b", {}, ({"rule": "p"}, {"rule": "q"}, {"rule": "r"}, {"rule": "s"}))]
    base = np.random.default_rng(0).normal(0, 3, 20)
    spike = np.zeros(20)
    spike[7] = 40.0
    value = {("x", "p"): base, ("y", "p"): base + 0.5, ("z", "p"): base + spike,
             ("y", "q"): base + 0.5, ("y", "r"): base + 0.7, ("y", "s"): base + 0.9}
    calls = []

    def score(choice, round_, slot):
        calls.append((choice["a"]["rule"], choice["b"]["rule"], slot))
        return value[choice["a"]["rule"], choice["b"]["rule"]]

    assert value["z", "p"].mean() > value["y", "p"].mean()
    best = tune.search(slots, score, rounds=1)
    assert best == {"a": {"rule": "y"}, "b": {"rule": "s"}}
    assert calls == [("x", "p", "a"), ("y", "p", "a"), ("z", "p", "a"),
                     ("y", "p", "b"), ("y", "q", "b"), ("y", "r", "b"), ("y", "s", "b")]
    value["y", "s"] = base + 0.5
    value["y", "r"] = base + 0.5 + np.where(np.arange(20) < 10, 1.0, -1.0)   # as many lost
    assert tune.search(slots, score, rounds=1)["b"] == {"rule": "p"}


def test_config_text_round_trips_through_the_parser():
    graph = build_graph(load(MODEL))
    slots = tune.used_slots(graph)
    choice = {"first": {"rule": "flat"}, "conv-relu": {"rule": "gamma", "gamma": 0.5},
              "dense": {"rule": "epsilon", "epsilon": 0.25}}
    text = tune.config_text(choice, slots, {"preprocess": "unit"}, "# header\n")
    config = composites.parse(text, "best.yaml")
    assignments, warnings = config.resolve(config.canonize(graph))
    rules = {op.name: a.rule.describe() for op, a in zip(graph.ops, assignments)
             if op.kind == "linear"}
    assert rules == {"conv1": "flat", "conv2": "gamma gamma=0.5", "conv3": "gamma gamma=0.5",
                     "fc1": "epsilon epsilon=0.25", "fc2": "epsilon epsilon=0.25"}
    assert warnings == [] and config.preprocess == {"preprocess": "unit"}


def test_tune_writes_a_usable_best_config_and_is_deterministic(tmp_path):
    result, records = _tune(tmp_path, tmp_path / "a")
    assert result.exit_code == 0, result.stderr
    candidates, final = records[:-1], records[-1]
    assert [c["candidate"] for c in candidates] == list(range(len(candidates)))
    # start + 3 more first-layer rules + 6 more conv rules + 2 more dense epsilons
    assert len(candidates) == 1 + 3 + 6 + 2
    assert final["train_images"] == 6 and final["held_out_images"] == 6
    rows = list(csv.DictReader(open(tmp_path / "a" / "candidates.csv")))
    assert [float(r["objective"]) for r in rows] == pytest.approx([c["objective"] for c in candidates])
    start = np.array(rows[0]["per_image"].split(), float)
    assert len(start) == 6 and float(rows[0]["gain"]) == 0
    for row, record in zip(rows, candidates):
        values = np.array(row["per_image"].split(), float)
        assert float(row["objective"]) == pytest.approx(values.mean())
        assert float(row["gain"]) == pytest.approx((values - start).mean())
        assert record["gain_over_start"]["low"] == pytest.approx(float(row["gain_low"]))
        assert float(row["gain_low"]) <= float(row["gain"]) <= float(row["gain_high"])
    holdout = {r["config"]: r for r in csv.DictReader(open(tmp_path / "a" / "holdout.csv"))}
    assert set(holdout) == {"tuned", "context-gamma-box (default)", "random"}
    assert float(holdout["context-gamma-box (default)"]["gain_over_default"]) == 0
    assert "held-out images (6)" in result.stderr
    again, _ = _tune(tmp_path, tmp_path / "b")
    assert again.exit_code == 0, again.stderr
    for name in ("best.yaml", "candidates.csv", "holdout.csv"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    explained = CliRunner().invoke(main, ["explain", str(MODEL), str(FIXTURES / "digits"),
                                          "-r", str(tmp_path / "a" / "best.yaml"),
                                          "-o", str(tmp_path / "explained")])
    assert explained.exit_code == 0, explained.stderr
    assert len(list((tmp_path / "explained").glob("*.lrp.png"))) == 3


def test_tune_resumes_from_its_candidates_table(tmp_path):
    out = tmp_path / "run"
    _tune(tmp_path, out)
    full = (out / "candidates.csv").read_text()
    lines = full.splitlines(keepends=True)
    (out / "candidates.csv").write_text("".join(lines[:5]))     # killed after 4 candidates
    result, records = _tune(tmp_path, out, "--skip-existing")
    assert result.exit_code == 0, result.stderr
    assert [r["candidate"] for r in records[:-1]] == list(range(4, len(lines) - 1))
    assert (out / "candidates.csv").read_text() == full


def test_resuming_from_a_table_of_other_columns_is_refused(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "candidates.csv").write_text("candidate,round,slot,first,objective\n0,0,first,zbox,1.0\n")
    result, _ = _tune(tmp_path, out, "--skip-existing")
    assert result.exit_code == 2 and "has other columns" in result.stderr


def test_held_out_check_adds_the_rules_config(tmp_path):
    result, records = _tune(tmp_path, tmp_path / "r", "-r", "lrp-epsilon", n=8)
    assert result.exit_code == 0, result.stderr
    holdout = list(csv.DictReader(open(tmp_path / "r" / "holdout.csv")))
    assert [r["config"] for r in holdout] == ["tuned", "context-gamma-box (default)",
                                              "lrp-epsilon (--rules)", "random"]
    gain = {r["config"]: float(r["gain_over_default"]) for r in holdout}
    aopc = {r["config"]: float(r["aopc"]) for r in holdout}
    assert gain["lrp-epsilon (--rules)"] == pytest.approx(
        aopc["lrp-epsilon (--rules)"] - aopc["context-gamma-box (default)"])
    assert set(records[-1]["held_out"]) == {"tuned", "context-gamma-box (default)",
                                            "lrp-epsilon (--rules)", "random"}


def test_resuming_with_other_options_is_refused(tmp_path):
    out = tmp_path / "run"
    _tune(tmp_path, out, n=8)
    result, _ = _tune(tmp_path, out, "--skip-existing", "--seed", "3", n=8)
    assert result.exit_code == 2
    assert "holds a tune run with other seed" in result.stderr


def test_too_few_images_for_the_split_is_a_usage_error(tmp_path):
    result, _ = _tune(tmp_path, tmp_path / "one", n=1)
    assert result.exit_code == 2
    assert "--holdout 0.5 leaves" in result.stderr


def test_uniform_noise_without_a_known_input_range_is_a_usage_error(tmp_path):
    result = CliRunner().invoke(main, ["tune", str(MODEL), str(_inputs(tmp_path)), "-p", "none",
                                       "--replace", "uniform", "-o", str(tmp_path / "none")])
    assert result.exit_code == 2
    assert "--replace uniform draws from the input's valid range" in result.stderr
