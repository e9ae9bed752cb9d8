"""xai explain / rules through the command line: outputs, JSON lines, exit codes."""

import csv
import json
import re
import subprocess
import sys

import keras
import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from conftest import FIXTURES
from xai_cli.cli import main

MODEL = str(FIXTURES / "digits.keras")
IMAGES = FIXTURES / "digits"


def run(*args, stdin=None):
    result = CliRunner().invoke(main, [str(a) for a in args], input=stdin)
    records = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    return result, records


def test_explain_writes_heatmaps_and_json_lines(tmp_path):
    result, records = run("explain", MODEL, IMAGES, "-m", "lrp", "-m", "sa", "--overlay",
                          "--save-raw", "--grid", "--labels", FIXTURES / "digits_labels.txt",
                          "-o", tmp_path)
    assert result.exit_code == 0, result.stderr
    assert [r["status"] for r in records] == ["ok"] * 3
    by_name = {r["input"].rsplit("/", 1)[-1]: r for r in records}
    three = by_name["digit_3_3.png"]
    assert three["predicted"] == 3 and three["predicted_label"] == "three"
    assert three["explained"] == "logit (softmax removed)"
    assert set(three["relevance_sum"]) == {"lrp", "sa"}
    for suffix in (".lrp.png", ".sa.png", ".lrp.overlay.png", ".lrp.npy", ".grid.png"):
        assert (tmp_path / f"digit_3_3{suffix}").is_file()
    assert Image.open(tmp_path / "digit_3_3.lrp.png").size == (32, 32)
    assert np.load(tmp_path / "digit_3_3.lrp.npy").shape == (32, 32, 1)
    assert "softmax" in result.stderr
    assert not list(tmp_path.glob(".*tmp"))


def test_relevance_sits_on_the_strokes(tmp_path):
    result, _ = run("explain", MODEL, IMAGES / "digit_7_13.png", "--save-raw", "-o", tmp_path)
    assert result.exit_code == 0, result.stderr
    relevance = np.abs(np.load(tmp_path / "digit_7_13.lrp.npy")[..., 0])
    ink = np.asarray(Image.open(IMAGES / "digit_7_13.png")) > 64
    share_on_ink = relevance[ink].sum() / relevance.sum()
    assert share_on_ink > max(0.8, 1.5 * ink.mean())


def test_npy_batch_gets_one_output_per_sample(tmp_path):
    batch = np.stack([np.asarray(Image.open(p), np.float32)[..., None] / 255
                      for p in sorted(IMAGES.glob("*.png"))] * 4)
    np.save(tmp_path / "batch.npy", batch)
    out = tmp_path / "out"
    result, records = run("explain", MODEL, tmp_path / "batch.npy", "-p", "unit", "-b", "5",
                          "-o", out)
    assert result.exit_code == 0, result.stderr
    assert [r["index"] for r in records] == list(range(12))
    assert sorted(p.name for p in out.glob("*.png")) == [f"batch-{i:02d}.lrp.png" for i in range(12)]


def test_npy_with_preprocess_none_needs_bounds_for_zbox(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((32, 32, 1), np.float32))
    result, _ = run("explain", MODEL, tmp_path / "x.npy", "-p", "none", "-o", tmp_path / "o")
    assert result.exit_code == 2
    assert "zbox" in result.stderr and "--preprocess" in result.stderr
    result, _ = run("explain", MODEL, tmp_path / "x.npy", "-p", "none", "-r", "lrp-epsilon",
                    "-o", tmp_path / "o")
    assert result.exit_code == 0, result.stderr


def test_bad_inputs_are_reported_and_the_rest_written(tmp_path):
    (tmp_path / "broken.png").write_text("not a png")
    result, records = run("explain", MODEL, IMAGES / "digit_0_5.png", tmp_path / "broken.png",
                          tmp_path / "missing.png", "-o", tmp_path / "out")
    assert result.exit_code == 1
    status = {r["input"].rsplit("/", 1)[-1]: r for r in records}
    assert status["digit_0_5.png"]["status"] == "ok"
    assert status["broken.png"]["error"] == "not a recognised image"
    assert status["missing.png"]["error"] == "no such file"
    assert (tmp_path / "out" / "digit_0_5.lrp.png").is_file()
    assert "Traceback" not in result.stderr


def test_bad_config_names_file_line_and_key(tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text("rules:\n  - match: {type: Dense}\n    rule: epsilon\n    epsilon: -1\n")
    result, _ = run("explain", MODEL, IMAGES, "-r", config, "-o", tmp_path / "out")
    assert result.exit_code == 2
    assert f"{config}:2: rules[0]: rule 'epsilon': epsilon must be >= 0" in result.stderr
    assert not (tmp_path / "out").exists()


def test_unsupported_layer_is_named_with_its_type(tmp_path):
    inp = keras.Input((8, 8, 1))
    h = keras.layers.Conv2D(2, 3)(inp)
    h = keras.layers.UnitNormalization(name="the_norm")(h)
    out = keras.layers.Dense(3)(keras.layers.Flatten()(h))
    keras.Model(inp, out).save(tmp_path / "m.keras")
    result, _ = run("explain", tmp_path / "m.keras", IMAGES, "-o", tmp_path / "out")
    assert result.exit_code == 2
    assert "'the_norm' (UnitNormalization)" in result.stderr


@pytest.mark.parametrize("target,expected", [("7", 7), ("seven", 7)])
def test_target_by_index_and_by_name(tmp_path, target, expected):
    result, records = run("explain", MODEL, IMAGES / "digit_3_3.png", "-t", target, "--labels",
                          FIXTURES / "digits_labels.txt", "-o", tmp_path)
    assert result.exit_code == 0, result.stderr
    assert records[0]["target"] == expected and records[0]["predicted"] == 3


@pytest.mark.parametrize("args,message", [
    (["-t", "10"], "out of range"),
    (["-t", "cat"], "--labels"),
    (["--shard", "3/2"], "invalid --shard"),
    (["-p", "nonsense"], "unknown preprocessing"),
    (["--param", "nope.steps=3"], "unknown method 'nope'"),
    (["--param", "integrated-gradients.step=3"], "has no parameter 'step' (it takes steps)"),
    (["--param", "integrated-gradients.steps=many"], "expected an integer, got 'many'"),
    (["--param", "smoothgrad.noise=-1"], "must be at least 0"),
    (["--param", "steps"], "expected METHOD.NAME=VALUE"),
])
def test_usage_errors_exit_2_before_writing(tmp_path, args, message):
    result, _ = run("explain", MODEL, IMAGES, *args, "-o", tmp_path / "out")
    assert result.exit_code == 2 and message in result.stderr
    assert not (tmp_path / "out").exists()


def test_config_methods_give_parameters_and_param_wins(tmp_path):
    config = tmp_path / "ig.yaml"
    config.write_text("default: {rule: epsilon}\nmethods:\n  integrated-gradients: {steps: 4}\n")
    image = IMAGES / "digit_0_5.png"

    def relevance(name, *args):
        result, records = run("explain", MODEL, image, "-m", "integrated-gradients", "--save-raw",
                              "-o", tmp_path / name, *args)
        assert result.exit_code == 0, result.stderr
        return np.load(tmp_path / name / "digit_0_5.integrated-gradients.npy"), records[0]

    default, record = relevance("default")
    four, four_record = relevance("four", "--param", "integrated-gradients.steps=4")
    configured, configured_record = relevance("configured", "-r", config)
    overridden, _ = relevance("overridden", "-r", config, "--param", "integrated-gradients.steps=32")
    assert not np.array_equal(default, four)
    np.testing.assert_array_equal(configured, four)
    np.testing.assert_array_equal(overridden, default)
    assert "parameters" not in record
    assert four_record["parameters"] == configured_record["parameters"] == \
        {"integrated-gradients": {"steps": 4}}


def test_parameters_are_part_of_what_evaluate_resumes(tmp_path):
    args = ("evaluate", MODEL, IMAGES / "digit_0_5.png", "-m", "integrated-gradients", "--steps", "2",
            "-o", tmp_path, "--skip-existing")
    assert run(*args)[0].exit_code == 0
    assert "parameters" not in json.loads((tmp_path / "parts" / "evaluate" / "job.json").read_text())
    result, _ = run(*args, "--param", "integrated-gradients.steps=4")
    assert result.exit_code == 2 and "with other parameters" in result.stderr


def test_skip_existing_resumes(tmp_path):
    run("explain", MODEL, IMAGES / "digit_0_5.png", "-o", tmp_path)
    result, records = run("explain", MODEL, IMAGES, "--skip-existing", "-o", tmp_path)
    assert result.exit_code == 0
    assert len(records) == 2 and "skipping 1" in result.stderr


def test_shards_partition_the_inputs(tmp_path):
    seen = []
    for k in (1, 2):
        _, records = run("explain", MODEL, IMAGES, "--shard", f"{k}/2", "-o", tmp_path)
        seen += [r["input"] for r in records]
    assert sorted(seen) == sorted(str(p) for p in IMAGES.glob("*.png"))


def test_paths_from_stdin(tmp_path):
    paths = "\n".join(str(p) for p in sorted(IMAGES.glob("*.png"))) + "\n"
    result, records = run("explain", MODEL, "-", "-o", tmp_path, stdin=paths)
    assert result.exit_code == 0 and len(records) == 3


def test_rules_prints_the_resolved_table_and_conservation():
    result, _ = run("rules", MODEL, "-r", "epsilon-gamma-box", "--check", IMAGES / "digit_3_3.png")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert any(line.startswith("conv1 ") and "zbox" in line for line in lines)
    assert any(line.startswith("conv2 ") and "gamma gamma=0.25" in line for line in lines)
    assert any(line.startswith("fc2 ") and "epsilon" in line for line in lines)
    assert "conservation on" in result.stdout


def test_what_the_layers_absorb_and_what_reaches_the_input_add_up_to_the_score(tmp_path):
    """Relevance only flows down: the explained logit = input relevance + everything the
    ops absorbed on the way, which the record's `conserved` and `rules --check` report."""
    result, _ = run("rules", MODEL, "-r", "lrp-epsilon", "--check", IMAGES / "digit_3_3.png")
    lines = result.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("op ") and "absorbed" in line)
    absorbed = sum(float(line.split()[-1]) for line in lines[header + 1:] if line.strip())
    reached = float(re.search(r"= ([-0-9.]+) x logit", result.stdout).group(1))
    assert reached + absorbed == pytest.approx(1.0, abs=2e-3)
    where = next(line for line in lines if line.startswith("where it goes:"))
    assert f"{reached:.1%} of the score reaches the input" in where
    _, records = run("explain", MODEL, IMAGES / "digit_3_3.png", "-r", "lrp-epsilon", "-m", "lrp",
                     "-m", "sa", "-o", tmp_path)
    record = records[0]
    assert set(record["conserved"]) == {"lrp"}      # gradients do not hand down a score
    assert record["conserved"]["lrp"] == pytest.approx(
        record["relevance_sum"]["lrp"] / record["explained_score"], rel=1e-6)
    assert record["conserved"]["lrp"] == pytest.approx(reached, abs=1e-3)


def test_help_documents_every_option():
    result, _ = run("explain", "--help")
    for option in ("--rules", "--preprocess", "--target", "--labels", "--batch-size", "--out",
                   "--shard", "--skip-existing", "--method", "--overlay", "--save-raw", "--grid",
                   "--param"):
        assert option in result.stdout


def test_legacy_h5_model_from_the_command_line(tmp_path):
    keras.saving.load_model(MODEL).save(tmp_path / "digits.h5")
    a, _ = run("explain", tmp_path / "digits.h5", IMAGES / "digit_3_3.png", "--save-raw",
               "-o", tmp_path / "a")
    b, _ = run("explain", MODEL, IMAGES / "digit_3_3.png", "--save-raw", "-o", tmp_path / "b")
    assert a.exit_code == b.exit_code == 0
    np.testing.assert_allclose(np.load(tmp_path / "a" / "digit_3_3.lrp.npy"),
                               np.load(tmp_path / "b" / "digit_3_3.lrp.npy"), rtol=1e-5, atol=1e-7)


def test_evaluate_with_probability_scores(tmp_path):
    np.save(tmp_path / "x.npy", np.stack([np.asarray(Image.open(p), np.float32)[..., None] / 255
                                          for p in sorted(IMAGES.glob("*.png"))]))
    result, records = run("evaluate", MODEL, tmp_path / "x.npy", "-p", "unit", "--score", "prob",
                          "--perturb", "8x8", "-o", tmp_path / "out")
    assert result.exit_code == 0, result.stderr
    scores = [float(r["score"]) for r in csv.DictReader(open(tmp_path / "out" / "curves.csv"))]
    assert all(0 <= s <= 1 for s in scores) and len(records) == 3


def test_pass_rule_on_a_layer_that_changes_shape_is_a_config_error(tmp_path):
    (tmp_path / "pass.yaml").write_text("default: {rule: pass}\n")
    result, _ = run("explain", MODEL, IMAGES, "-r", tmp_path / "pass.yaml", "-o", tmp_path / "out")
    assert result.exit_code == 2
    assert result.stderr.startswith(f"xai: error: {tmp_path / 'pass.yaml'}:1: rule pass on 'conv1' (Conv2D)")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["explain", "--help"],
                                  ["evaluate", "--help"], ["report", "--help"],
                                  ["rules", "--list"]])
def test_help_version_and_the_config_list_do_not_import_tensorflow(args):
    """They must answer at once; TensorFlow alone takes seconds to import."""
    code = ("import sys\nfrom click.testing import CliRunner\nfrom xai_cli.cli import main\n"
            f"result = CliRunner().invoke(main, {args!r})\n"
            "assert result.exit_code == 0, result.output\n"
            "print(result.output)\n"
            "print('tensorflow' in sys.modules, 'keras' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "False False"
    assert len(done.stdout.splitlines()) > 1
