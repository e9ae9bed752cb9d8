"""Bad input never costs work, never crashes, never escapes the output folder."""

import json
import os
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from conftest import FIXTURES
from xai_cli.cli import main

MODEL = str(FIXTURES / "digits.keras")
GOOD = FIXTURES / "digits" / "digit_3_3.png"


def run(*args, stdin=None):
    result = CliRunner().invoke(main, [str(a) for a in args], input=stdin)
    records = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    return result, records


def _faulty_inputs(folder):
    """One file per kind of per-input fault, with the reason the user should see."""
    folder.mkdir()
    (folder / "empty.png").write_bytes(b"")
    (folder / "text.jpg").write_text("this is not a JPEG")
    png = (folder / "cut.png")
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 40), np.uint8)).save(png)
    png.write_bytes(png.read_bytes()[:200])
    np.save(folder / "wrong_shape.npy", np.zeros((5, 5, 1), np.float32))
    np.save(folder / "nan.npy", np.full((32, 32, 1), np.nan, np.float32))
    return {"empty.png": "empty file", "text.jpg": "not a recognised image",
            "cut.png": "truncated or corrupt", "wrong_shape.npy": "does not match the model input",
            "nan.npy": "NaN or Inf"}


def test_every_fault_is_reported_and_the_good_input_is_written(tmp_path):
    expected = _faulty_inputs(tmp_path / "bad")
    result, records = run("explain", MODEL, GOOD, tmp_path / "bad", tmp_path / "missing.png",
                          "-p", "unit", "-o", tmp_path / "out")
    assert result.exit_code == 1 and "Traceback" not in result.stderr
    errors = {r["input"].rsplit("/", 1)[-1]: r["error"] for r in records if r["status"] == "error"}
    for name, reason in expected.items():
        assert reason in errors[name]
        assert f"{name}: " in result.stderr
    assert errors["missing.png"] == "no such file"
    ok = [r for r in records if r["status"] == "ok"]
    assert len(ok) == 1 and os.path.getsize(ok[0]["outputs"][0]) > 0


def test_fail_fast_stops_at_the_first_fault(tmp_path):
    _faulty_inputs(tmp_path / "bad")
    result, records = run("explain", MODEL, tmp_path / "bad", GOOD, "--fail-fast", "-p", "unit",
                          "-o", tmp_path / "out")
    assert result.exit_code == 1 and "--fail-fast" in result.stderr
    assert [r["status"] for r in records] == ["error"]


def test_non_finite_relevance_is_an_error_not_a_black_png(tmp_path):
    inp = keras.Input((4, 4, 1))
    keras.Model(inp, keras.layers.Dense(2, use_bias=False)(keras.layers.Flatten()(inp))).save(
        tmp_path / "m.keras")
    np.save(tmp_path / "zeros.npy", np.zeros((4, 4, 1), np.float32))
    (tmp_path / "eps0.yaml").write_text("default: {rule: epsilon, epsilon: 0}\n")  # 0 / 0
    result, records = run("explain", tmp_path / "m.keras", tmp_path / "zeros.npy", "-p", "unit",
                          "-r", tmp_path / "eps0.yaml", "-o", tmp_path / "out")
    assert result.exit_code == 1
    assert "NaN or Inf" in records[0]["error"]
    assert not list((tmp_path / "out").glob("*.png"))


def test_lambda_model_is_refused_with_the_reason(tmp_path):
    inp = keras.Input((4,))
    keras.Model(inp, keras.layers.Lambda(lambda t: t * 2)(inp)).save(tmp_path / "l.keras")
    result, _ = run("explain", tmp_path / "l.keras", GOOD, "-o", tmp_path / "out")
    assert result.exit_code == 2 and "Lambda" in result.stderr and "safe mode" in result.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04 not really a zip"])
def test_corrupt_model_files(tmp_path, content):
    (tmp_path / "m.keras").write_bytes(content)
    result, _ = run("explain", tmp_path / "m.keras", GOOD, "-o", tmp_path / "out")
    assert result.exit_code == 2 and "cannot load model" in result.stderr
    assert "Traceback" not in result.stderr


def test_labels_must_match_the_model(tmp_path):
    (tmp_path / "labels.txt").write_text("cat\ndog\n")
    result, _ = run("explain", MODEL, GOOD, "--labels", tmp_path / "labels.txt", "-o", tmp_path / "o")
    assert result.exit_code == 2 and "has 2 names but the model has 10 outputs" in result.stderr


def test_names_cannot_escape_the_output_folder(tmp_path):
    (tmp_path / "in" / "sub").mkdir(parents=True)
    odd = tmp_path / "in" / "..odd name\twith tab.png"
    odd.write_bytes(GOOD.read_bytes())
    out = tmp_path / "in" / "sub" / "out"
    result, records = run("explain", MODEL, "-", "-o", out, stdin=f"{odd}\n{out}/../../{GOOD.name}\n")
    assert result.exit_code == 1, result.stderr  # one input was missing
    outputs = [p for r in records for p in r.get("outputs", [])]
    assert [os.path.relpath(p, out) for p in outputs] == [
        "odd_name_with_tab.lrp.png", os.path.join("thumbs", "odd_name_with_tab.jpg")]
    assert [r["error"] for r in records if r["status"] == "error"] == ["no such file"]


def test_debug_shows_the_traceback(tmp_path):
    result = CliRunner().invoke(main, ["--debug", "explain", str(tmp_path / "none.keras"), str(GOOD)])
    assert result.exit_code == 2 and "Traceback" in result.stderr


def _explain_cmd(inputs, out, *extra):
    return [sys.executable, "-m", "xai_cli", "explain", MODEL, str(inputs), "-p", "unit", "-b", "4",
            "--save-raw", "-o", str(out), *extra]


@pytest.mark.backends
def test_killed_job_resumes_to_identical_outputs(tmp_path):
    batch = np.load(FIXTURES / "digits_test_x.npy")[:200]
    np.save(tmp_path / "x.npy", batch)
    subprocess.run(_explain_cmd(tmp_path / "x.npy", tmp_path / "full"), check=True,
                   capture_output=True)
    job = subprocess.Popen(_explain_cmd(tmp_path / "x.npy", tmp_path / "killed"),
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and len(list((tmp_path / "killed").glob("*.png"))) < 20:
        time.sleep(0.05)
    job.send_signal(signal.SIGKILL)
    job.wait()
    partial = len(list((tmp_path / "killed").glob("*.png")))
    assert 0 < partial < 200, f"{partial} of 200 heatmaps written when the job was killed"
    resumed_run = subprocess.run(_explain_cmd(tmp_path / "x.npy", tmp_path / "killed",
                                              "--skip-existing"), capture_output=True, text=True)
    assert resumed_run.returncode == 0, resumed_run.stderr
    def outputs(root):   # not the records and the page: they say what each run did
        return sorted(p.relative_to(root) for p in root.rglob("*") if p.is_file()
                      and not p.name.startswith(".") and p.parent.name != "records"
                      and p.name != "index.html")
    full, resumed = outputs(tmp_path / "full"), outputs(tmp_path / "killed")
    assert resumed == full   # a write cut by the kill leaves only a hidden .tmp file
    assert all(p.name.endswith(".tmp") for p in (tmp_path / "killed").glob(".*"))
    for name in full:
        assert (tmp_path / "full" / name).read_bytes() == (tmp_path / "killed" / name).read_bytes()


CONFIG_TEXT = st.text(alphabet=st.sampled_from(list("abcdefghilmnoprstuyz{}[]:,-_.!/ 0123456789\n")),
                      max_size=120)
RULES = st.sampled_from(["zero", "epsilon", "gamma", "alpha-beta", "zplus", "zbox", "w2", "flat",
                         "pass", "magic"])
PARAM = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-3, 3),
                  st.booleans(), st.text(max_size=5))
ENTRY = st.fixed_dictionaries({"rule": RULES}, optional={
    "epsilon": PARAM, "gamma": PARAM, "alpha": PARAM, "beta": PARAM, "low": PARAM, "high": PARAM,
    "bias": PARAM, "match": st.fixed_dictionaries({}, optional={
        "first": PARAM, "type": st.sampled_from(["Dense", "Conv2D", "Pooling", ["Dense"], 3]),
        "name": st.sampled_from(["fc.*", "(", "conv1", ""])})})


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(config=st.one_of(CONFIG_TEXT, st.fixed_dictionaries(
    {"rules": st.lists(ENTRY, max_size=3)}, optional={"default": ENTRY}).map(json.dumps)))
def test_random_configs_never_crash(tmp_path, config):
    path = tmp_path / "random.yaml"
    path.write_text(config)
    result, _ = run("explain", MODEL, GOOD, "-r", path, "-o", tmp_path / "out")
    assert result.exit_code in (0, 1, 2), result.stderr
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
    if result.exit_code == 2:
        assert result.stderr.startswith("xai: error: ")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.one_of(st.binary(max_size=300),
                      st.binary(max_size=300).map(lambda b: GOOD.read_bytes()[:60] + b)))
def test_random_image_bytes_never_crash(tmp_path, data):
    path = tmp_path / "random.png"
    path.write_bytes(data)
    result, records = run("explain", MODEL, path, "-o", tmp_path / "out")
    assert result.exit_code in (0, 1), result.stderr
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
    assert records and records[0]["status"] in ("ok", "error")


def test_interrupt_finishes_pending_writes_and_exits_130(tmp_path):
    # enough inputs that an idle machine cannot finish them all before the signal lands
    np.save(tmp_path / "x.npy", np.tile(np.load(FIXTURES / "digits_test_x.npy"), (8, 1, 1, 1)))
    # a suite started in the background (`make test &`) passes SIGINT on ignored: undo that
    job = subprocess.Popen(_explain_cmd(tmp_path / "x.npy", tmp_path / "out"),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 120
    while time.time() < deadline and len(list((tmp_path / "out").glob("*.png"))) < 20:
        time.sleep(0.05)
    job.send_signal(signal.SIGINT)
    stdout, stderr = job.communicate(timeout=120)
    assert job.returncode == 130 and "interrupted" in stderr
    assert not list((tmp_path / "out").glob(".*"))
    written = [p for line in stdout.splitlines() for p in json.loads(line)["outputs"]]
    assert all(os.path.getsize(p) > 0 for p in written)
