"""--labels imagenet: the 1,000 ILSVRC-2012 class names, built in, in every data command."""

import json

import keras
import numpy as np
import pytest
from click.testing import CliRunner

from conftest import FIXTURES
from xai_cli.cli import main


@pytest.fixture(scope="module")
def imagenet_sized(tmp_path_factory):
    """A tiny model with 1,000 outputs whose top class is espresso (967) on every input."""
    folder = tmp_path_factory.mktemp("labels")
    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3, activation="relu"),
                              keras.layers.Flatten(), keras.layers.Dense(1000)])
    kernel, bias = model.layers[-1].get_weights()
    bias[967] = 100.0
    model.layers[-1].set_weights([kernel, bias])
    model.save(folder / "m.keras")
    np.save(folder / "x.npy", np.random.default_rng(0).uniform(0, 1, (6, 8, 8, 3)).astype("f4"))
    return folder


def run(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result, [json.loads(line) for line in result.stdout.splitlines()]


def test_explain_names_the_class(imagenet_sized, tmp_path):
    result, records = run("explain", imagenet_sized / "m.keras", imagenet_sized / "x.npy",
                          "--labels", "imagenet", "-o", tmp_path)
    assert result.exit_code == 0, result.stderr
    assert {(r["predicted"], r["predicted_label"]) for r in records} == {(967, "espresso")}


def test_evaluate_and_spray_take_a_class_name(imagenet_sized, tmp_path):
    for command, extra in (("evaluate", ["--steps", "1", "--replace", "mean"]), ("spray", [])):
        result, records = run(command, imagenet_sized / "m.keras", imagenet_sized / "x.npy",
                              "--labels", "imagenet", "-t", "tabby", "-o", tmp_path / command,
                              *extra)
        assert result.exit_code == 0, result.stderr
        assert {(r["target"], r["target_label"]) for r in records} == {(281, "tabby")}


def test_the_list_is_the_standard_order():
    from importlib import resources
    names = resources.files("xai_cli.io").joinpath("labels/imagenet.txt").read_text().splitlines()
    assert len(names) == len(set(names)) == 1000
    assert (names[0], names[1], names[281], names[967], names[999]) == (
        "tench", "goldfish", "tabby", "espresso", "toilet tissue")


def test_a_model_with_other_classes_is_a_usage_error(tmp_path):
    result, _ = run("explain", FIXTURES / "digits.keras", FIXTURES / "digits", "--labels",
                    "imagenet", "-o", tmp_path / "out")
    assert result.exit_code == 2
    assert "built-in labels 'imagenet' has 1000 names but the model has 10 outputs" in result.stderr
    assert not (tmp_path / "out").exists()
