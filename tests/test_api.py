"""The Python API gives what the command line writes: the same relevance, the same AOPC."""

import csv
import subprocess
import sys

import keras
import numpy as np
import pytest
from click.testing import CliRunner

import xai_cli
from conftest import FIXTURES, relative_max_diff
from xai_cli.catalogue import builtin_config_text
from xai_cli.cli import main
from xai_cli.errors import XaiError

MODEL = FIXTURES / "digits.keras"


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    """Six preprocessed digits, and the same as an .npy file for the command line."""
    x = np.load(FIXTURES / "digits_test_x.npy")[:6]
    path = tmp_path_factory.mktemp("api") / "six.npy"
    np.save(path, x)
    return x, path


def _cli(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code == 0, result.stderr
    return result


@pytest.mark.parametrize("method,rules", [("lrp", None), ("lrp", "lrp-epsilon"),
                                          ("integrated-gradients", None)])
def test_explain_gives_what_save_raw_writes(digits, tmp_path, method, rules):
    x, path = digits
    _cli("explain", MODEL, path, "-p", "unit", "-m", method, "--save-raw", "-o", tmp_path,
         *(("-r", rules) if rules else ()))
    written = np.stack([np.load(tmp_path / f"six-{i}.{method}.npy") for i in range(len(x))])
    relevance = xai_cli.explain(MODEL, x, method, rules=rules, preprocess="unit")
    assert relevance.shape == x.shape and np.abs(relevance).max() > 0
    np.testing.assert_array_equal(relevance, written)


def test_params_give_what_param_writes(digits, tmp_path):
    x, path = digits
    _cli("explain", MODEL, path, "-p", "unit", "-m", "integrated-gradients", "--save-raw",
         "--param", "integrated-gradients.steps=4", "-o", tmp_path)
    written = np.stack([np.load(tmp_path / f"six-{i}.integrated-gradients.npy") for i in range(len(x))])
    relevance = xai_cli.explain(MODEL, x, "integrated-gradients", preprocess="unit",
                                params={"steps": 4})
    np.testing.assert_array_equal(relevance, written)
    assert not np.array_equal(relevance, xai_cli.explain(MODEL, x, "integrated-gradients",
                                                         preprocess="unit"))


def test_evaluate_gives_the_summary_evaluate_writes(digits, tmp_path):
    x, path = digits
    _cli("evaluate", MODEL, path, "-p", "unit", "-m", "lrp", "-m", "sa", "--steps", "6",
         "--replace", "uniform", "--replace", "blur", "--lerf", "-o", tmp_path)
    written = list(csv.DictReader(open(tmp_path / "summary.csv")))
    result = xai_cli.evaluate(keras.saving.load_model(MODEL), x, ("lrp", "sa"), preprocess="unit",
                              steps=6, replace=("uniform", "blur"), lerf=True)
    assert [(r["method"], r["replace"]) for r in result.summary] == \
        [(r["method"], r["replace"]) for r in written]
    for ours, theirs in zip(result.summary, written):
        for column in ("aopc", "aopc_stderr", "aopc_lerf", "area"):
            if theirs[column]:
                assert ours[column] == pytest.approx(float(theirs[column]), rel=1e-6), column  # CSV: 8 digits
    curves = list(csv.DictReader(open(tmp_path / "curves.csv")))
    assert len(result.curves) == len(curves)
    assert [float(r["score"]) for r in curves] == pytest.approx([r["score"] for r in result.curves])
    assert "replace blur (6 images, 9x9 patches, 6 steps, morf and lerf)" in result.table()
    paired = list(csv.DictReader(open(tmp_path / "comparisons.csv")))
    assert [(r["replace"], r["method"], r["versus"]) for r in result.comparisons] == \
        [(r["replace"], r["method"], r["versus"]) for r in paired]
    for ours, theirs in zip(result.comparisons, paired):
        for column in ("aopc_difference", "ci_low", "ci_high", "won"):
            assert ours[column] == pytest.approx(float(theirs[column]), rel=1e-6), column
    assert "lrp - sa" in result.table()
    assert result.faults == {}


def test_one_input_targets_and_a_kept_explainer(digits):
    x, _ = digits
    explainer = xai_cli.Explainer(MODEL, "gradxinput", preprocess="unit")
    single = explainer(x[0])
    assert single.shape == x[0].shape
    result = explainer.explain(x[:3], target=[1, 2, 3])
    assert result.targets.tolist() == [1, 2, 3] and result.logits.shape == (3, 10)
    assert relative_max_diff(explainer(x[0], target=1), result.relevance[0]) < 1e-5
    top1 = explainer.explain(x[:3])
    assert top1.targets.tolist() == top1.logits.argmax(axis=1).tolist()
    # batching does not change the values
    assert relative_max_diff(explainer(x, batch_size=4), explainer(x, batch_size=6)) < 1e-5


@pytest.mark.parametrize("call,message", [
    (lambda x: xai_cli.explain(MODEL, x[:, :16]), "do not fit the model's input"),
    (lambda x: xai_cli.explain(MODEL, ["a cat"]), "an image model takes arrays"),
    (lambda x: xai_cli.explain(MODEL, [{"a": 1}]), "inputs of type list do not fit"),
    (lambda x: xai_cli.explain(MODEL, x, vocab="v.txt"), "--vocab is for text models"),
    (lambda x: xai_cli.explain(MODEL, x, "saliency"), "unknown method 'saliency'"),
    (lambda x: xai_cli.explain(MODEL, x, target=10), "out of range"),
    (lambda x: xai_cli.explain(MODEL, x, target=[1, 2]), "2 targets for 6 inputs"),
    (lambda x: xai_cli.explain(MODEL, x, target="cat"), "target must be 'top1'"),
    (lambda x: xai_cli.explain(MODEL, x, rules="no-such-config"), "no-such-config"),
    (lambda x: xai_cli.evaluate(MODEL, x, ("sa",), preprocess="none"), "valid range"),
    (lambda x: xai_cli.explain(MODEL, x, "smoothgrad", params={"noise": "loud"}),
     "smoothgrad.noise: expected a number, got 'loud'"),
    (lambda x: xai_cli.evaluate(MODEL, x, ("sa",), params={"smoothgrad": {"samples": 2}}),
     "params name smoothgrad: not among the methods evaluated"),
])
def test_bad_arguments_are_errors_with_the_command_lines_words(digits, call, message):
    with pytest.raises(XaiError, match=message):
        call(digits[0])


def test_yaml_text_as_rules(digits):
    x = digits[0][:2]
    text = builtin_config_text("lrp-epsilon")
    np.testing.assert_array_equal(xai_cli.explain(MODEL, x, rules=text),
                                  xai_cli.explain(MODEL, x, rules="lrp-epsilon"))
    larger = text.replace("epsilon: 1.0e-6", "epsilon: 1.0")
    assert larger != text
    assert relative_max_diff(xai_cli.explain(MODEL, x, rules=larger),
                             xai_cli.explain(MODEL, x, rules="lrp-epsilon")) > 0.01


def test_importing_the_package_does_not_import_tensorflow():
    code = "import sys, xai_cli; assert 'tensorflow' not in sys.modules; xai_cli.Explainer"
    subprocess.run([sys.executable, "-c", code], check=True)
