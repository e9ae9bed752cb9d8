"""DeepLIFT, Grad-CAM(++), occlusion, RISE, LIME and KernelSHAP from the command line and the API: every
command that takes a method takes them, Grad-CAM says where it read, bad settings exit 2."""

import csv
import json

import numpy as np
from click.testing import CliRunner
from PIL import Image

import xai_cli
from conftest import FIXTURES
from xai_cli.cli import main

MODEL = FIXTURES / "methods" / "cnn.keras"
INPUTS = FIXTURES / "methods" / "inputs.npy"
NEW = ("deeplift", "gradcam", "gradcam++", "occlusion", "rise", "lime", "kernelshap")


def run(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    records = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    return result, records


def test_explain_writes_every_new_method_and_says_where_gradcam_read(tmp_path):
    result, records = run("explain", MODEL, INPUTS, "-p", "none", *(a for m in NEW for a in ("-m", m)),
                          "--layer", "conv2", "--param", "rise.masks=50", "--param", "lime.samples=40",
                          "--param", "kernelshap.samples=40", "--save-raw", "-o", tmp_path)
    assert result.exit_code == 0, result.stderr
    assert len(records) == 4
    for record in records:
        assert record["maps_at"] == {"gradcam": {"layer": "conv2", "resolution": [20, 20]},
                                     "gradcam++": {"layer": "conv2", "resolution": [20, 20]}}
        assert record["parameters"]["rise"]["masks"] == 50
    for method in NEW:
        assert Image.open(tmp_path / f"inputs-0.{method}.png").size == (24, 24)
        saved = np.load(tmp_path / f"inputs-1.{method}.npy")
        assert saved.shape == (24, 24, 3) and np.abs(saved).max() > 0
    # the API gives what the command line wrote
    api = xai_cli.explain(MODEL, np.load(INPUTS), "occlusion", preprocess="none")
    np.testing.assert_allclose(api[1], np.load(tmp_path / "inputs-1.occlusion.npy"), rtol=1e-5,
                               atol=1e-7)


def test_evaluate_measures_the_new_methods_beside_lrp(tmp_path):
    result, _ = run("evaluate", MODEL, INPUTS, "-p", "unit", "-m", "lrp", "-m", "gradcam",
                    "-m", "occlusion", "-m", "deeplift", "--perturb", "4x4", "--steps", "4",
                    "-o", tmp_path)
    assert result.exit_code == 0, result.stderr
    with open(tmp_path / "summary.csv") as f:
        methods = {row["method"] for row in csv.DictReader(f)}
    assert {"lrp", "gradcam", "occlusion", "deeplift", "random"} <= methods


def test_help_groups_the_methods_by_family_with_their_papers():
    text = CliRunner().invoke(main, ["explain", "--help"]).output
    families = text[text.index("Methods, by family"):]
    for family, method, paper in (("propagation", "deeplift", "Shrikumar et al. 2017"),
                                  ("gradient", "gradcam++", "Chattopadhay et al. 2018"),
                                  ("perturbation", "rise", "Petsiuk et al. 2018")):
        assert family in families and method in families and paper in families
        assert families.index(family) < families.index(method)


def test_bad_settings_exit_2_and_say_why(tmp_path):
    result, _ = run("explain", MODEL, INPUTS, "-p", "none", "-m", "gradcam", "--layer", "nope",
                    "-o", tmp_path)
    assert result.exit_code == 2 and "no layer 'nope'" in result.stderr and "conv3" in result.stderr
    result, _ = run("explain", MODEL, INPUTS, "-p", "none", "-m", "occlusion",
                    "--param", "occlusion.baseline=pink", "-o", tmp_path)
    assert result.exit_code == 2
    assert "expected one of zero, grey, mean, blur, got 'pink'" in result.stderr
    result, _ = run("explain", MODEL, INPUTS, "-p", "none", "-m", "gradcam", "--layer", "logits",
                    "-o", tmp_path)
    assert result.exit_code == 2 and "'logits' gives (5,)" in result.stderr
