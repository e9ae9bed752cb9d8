"""Long evaluate and spray jobs: killed and resumed, per-input faults, reused features."""

import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from click.testing import CliRunner

from conftest import FIXTURES
from xai_cli import session
from xai_cli.cli import main

MODEL = str(FIXTURES / "digits.keras")
MARKED = str(FIXTURES / "digits_marked.keras")


def run(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    records = [json.loads(line) for line in result.stdout.splitlines()]
    return result, records


def _evaluate_cmd(inputs, out, *extra):
    return [sys.executable, "-m", "xai_cli", "evaluate", MODEL, str(inputs), "-p", "unit",
            "-b", "4", "-m", "lrp", "-m", "sa", "--perturb", "4x4", "--steps", "20",
            "--replace", "uniform", "--replace", "blur", "--lerf", "-o", str(out), *extra]


def test_killed_evaluate_resumes_to_identical_csvs(tmp_path):
    np.save(tmp_path / "x.npy", np.load(FIXTURES / "digits_test_x.npy")[:120])
    subprocess.run(_evaluate_cmd(tmp_path / "x.npy", tmp_path / "full"), check=True,
                   capture_output=True)
    job = subprocess.Popen(_evaluate_cmd(tmp_path / "x.npy", tmp_path / "killed"),
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    parts = tmp_path / "killed" / "parts" / "evaluate"
    deadline = time.time() + 120
    while time.time() < deadline and len(list(parts.glob("batch-*.npz"))) < 3:
        time.sleep(0.02)
    job.send_signal(signal.SIGKILL)
    job.wait()
    stored = len(list(parts.glob("batch-*.npz")))
    assert 0 < stored < 30, f"{stored} of 30 batches stored when the job was killed"
    assert not (tmp_path / "killed" / "summary.csv").exists()
    resumed = subprocess.run(_evaluate_cmd(tmp_path / "x.npy", tmp_path / "killed",
                                           "--skip-existing"), capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert f"{4 * stored} inputs were done by an earlier run" in resumed.stderr
    assert len(resumed.stdout.splitlines()) == 120 - 4 * stored   # records of the new ones
    for name in ("curves.csv", "summary.csv", "comparisons.csv"):
        assert (tmp_path / "full" / name).read_bytes() == (tmp_path / "killed" / name).read_bytes()


def test_resuming_with_other_options_is_refused(tmp_path):
    x = tmp_path / "x.npy"
    np.save(x, np.load(FIXTURES / "digits_test_x.npy")[:4])
    common = ("evaluate", MODEL, x, "-p", "unit", "--perturb", "8x8", "-o", tmp_path / "out")
    assert run(*common, "--steps", "3")[0].exit_code == 0
    result, _ = run(*common, "--steps", "4", "--skip-existing")
    assert result.exit_code == 2
    assert "holds the parts of a run with other steps" in result.stderr
    result, records = run(*common, "--steps", "3", "--skip-existing")   # same question: reused
    assert result.exit_code == 0 and records == []
    assert "4 inputs were done by an earlier run; computing the other 0" in result.stderr


def test_a_nan_input_in_evaluate_is_one_error_and_the_rest_complete(tmp_path):
    x = np.load(FIXTURES / "digits_test_x.npy")[:6].copy()
    x[2] *= 1e38           # overflows float32 in the dense layers: NaN relevance
    np.save(tmp_path / "x.npy", x)
    result, records = run("evaluate", MODEL, tmp_path / "x.npy", "-p", "none", "-r", "lrp-epsilon", "-b", "4",
                          "--replace", "mean", "--perturb", "8x8", "--steps", "3",
                          "-o", tmp_path / "out")
    assert result.exit_code == 1, result.stderr
    errors = [r for r in records if r["status"] == "error"]
    assert [(e["index"], e["input"]) for e in errors] == [(2, str(tmp_path / "x.npy"))]
    assert "NaN or Inf" in errors[0]["error"] and "NaN or Inf" in result.stderr
    assert sorted(r["index"] for r in records if r["status"] == "ok") == [0, 1, 3, 4, 5]
    curves = (tmp_path / "out" / "curves.csv").read_text().splitlines()[1:]
    assert sorted({line.split(",")[0] for line in curves}) == [f"x-{i}" for i in (0, 1, 3, 4, 5)]
    summary = (tmp_path / "out" / "summary.csv").read_text().splitlines()
    assert all(line.split(",")[2] == "5" for line in summary[1:])     # n_images
    assert "replace mean (5 images" in result.stderr


def test_spray_reuses_its_features_for_another_cluster_count(tmp_path):
    x = tmp_path / "x.npy"
    np.save(x, np.load(FIXTURES / "digits_marked_test_x.npy")[:24])
    common = ("spray", MARKED, x, "-p", "unit", "-t", "3", "-b", "8", "-o", tmp_path / "out")
    first, records = run(*common, "--clusters", "2")
    assert first.exit_code == 0, first.stderr
    assert {r["cluster"] for r in records} == {0, 1}
    mean = (tmp_path / "out" / "cluster_0_mean.png").read_bytes()
    again, records = run(*common, "--clusters", "3", "--skip-existing")
    assert again.exit_code == 0, again.stderr
    assert "24 inputs were done by an earlier run; computing the other 0" in again.stderr
    assert {r["cluster"] for r in records} == {0, 1, 2} and len(records) == 24
    back, _ = run(*common, "--clusters", "2", "--skip-existing")
    assert back.exit_code == 0, back.stderr
    assert (tmp_path / "out" / "cluster_0_mean.png").read_bytes() == mean
    other, _ = run(*common, "--clusters", "2", "-m", "sa", "--skip-existing")
    assert other.exit_code == 2 and "with other method" in other.stderr


def test_evaluate_and_spray_print_the_configs_warnings(tmp_path):
    config = tmp_path / "rules.yaml"
    config.write_text("rules:\n  - match: {type: Dense}\n    rule: epsilon\n"
                      "  - match: {name: nothing.*}\n    rule: zplus\n")
    x = tmp_path / "x.npy"
    np.save(x, np.load(FIXTURES / "digits_test_x.npy")[:4])
    explain, _ = run("explain", MODEL, x, "-p", "unit", "-r", config, "-o", tmp_path / "a")
    warnings = [line for line in explain.stderr.splitlines() if "warning" in line]
    assert len(warnings) == 1 and "rules.yaml:4: this rule applies to no layer" in warnings[0]
    evaluate, _ = run("evaluate", MODEL, x, "-p", "unit", "-r", config, "--steps", "2",
                      "-o", tmp_path / "b")
    spray, _ = run("spray", MODEL, x, "-p", "unit", "-r", config, "-t", "3",
                   "-o", tmp_path / "c")
    for result in (evaluate, spray):
        assert [line for line in result.stderr.splitlines() if "warning" in line] == warnings


@pytest.mark.parametrize("command, extra", [
    ("explain", ["--grid"]),
    ("evaluate", ["--steps", "1", "--replace", "mean"]),
    ("spray", ["--clusters", "2"]),
    ("tune", ["--perturb", "8x8", "--steps", "2", "--replace", "mean"]),
])
def test_every_shared_option_is_read_by_every_command_that_offers_it(tmp_path, monkeypatch,
                                                                     command, extra):
    """An option that is offered and never looked at does nothing: a bug (evaluate once
    accepted --skip-existing and started from zero)."""
    read = set()
    fields = set(session.Options.__dataclass_fields__)

    class Watched(session.Options):
        def __getattribute__(self, name):
            if name in fields:
                read.add(name)
            return super().__getattribute__(name)

    monkeypatch.setattr(session, "Options", Watched)
    x = tmp_path / "x.npy"
    np.save(x, np.load(FIXTURES / "digits_test_x.npy")[:8])
    result, _ = run(command, MODEL, x, "-r", "epsilon-gamma-box", "-p", "unit", "-t", "3",
                    "--labels", FIXTURES / "digits_labels.txt", "-b", "4", "--shard", "1/1",
                    "--skip-existing", "--fail-fast", "--seed", "1", "-o", tmp_path / "out",
                    *extra)
    assert result.exit_code == 0, result.stderr
    offered = {p.name for p in main.commands[command].params}
    assert offered >= fields
    assert fields - read == set()
