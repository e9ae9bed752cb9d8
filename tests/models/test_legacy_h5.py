"""Keras 2 `.h5` files load: Keras 2's own logits are reproduced and the models can be
explained; Lambda layers, Keras 2's TFOpLambda and custom classes are refused by name.

The fixtures in `fixtures/keras2` were written by TF 2.15 / Keras 2.15 with
`scripts/make_keras2_fixtures.py`, each `.h5` with an `.npz` of inputs and Keras 2's
outputs and pre-softmax logits.
"""

import json
import os
from pathlib import Path

import keras
import numpy as np
import pytest
from click.testing import CliRunner

from conftest import FIXTURES, relative_max_diff
from xai_cli.cli import main
from xai_cli.engine.graph import build_graph
from xai_cli.engine.propagation import Scorer
from xai_cli.errors import XaiError
from xai_cli.models.loading import load

pytestmark = pytest.mark.backends   # run on every installed Keras backend

KERAS2 = FIXTURES / "keras2"
MODELS = sorted(path.stem for path in KERAS2.glob("*.npz"))
REFUSED = {"lambda_layer": ("'double'", "Lambda"), "custom_layer": ("'triple'", "fixtures>Scale"),
           "tf_op_layer": ("'tf.nn.relu'", "TFOpLambda")}
FULL = ("mobilenet_v2", "efficientnet_b0", "densenet121", "resnet50", "xception",
        "sequential_bn_224")
FULL_DIR = "XAI_KERAS2_FULL"
KERAS3_LOADS = ("resnet_small", "resnet_v2_small")   # Keras 3's own loader reads these


def check_against_keras2(path: Path):
    """Keras 2's recorded logits (those xai explains) and outputs, within 1e-5 of their
    largest magnitude, and the same top-1 class."""
    model = load(path)
    recorded = np.load(path.with_suffix(".npz"))
    graph = build_graph(model)
    logits = Scorer(graph)(recorded["x"])
    assert relative_max_diff(logits, recorded["logits"]) < 1e-5
    assert (logits.argmax(1) == recorded["logits"].argmax(1)).all()
    assert relative_max_diff(keras.ops.convert_to_numpy(model(recorded["x"])), recorded["outputs"]) < 1e-5
    assert graph.softmax_stripped == (str(recorded["final_activation"]) == "softmax")


def test_the_fixtures_are_there():
    assert len(MODELS) == 9 and all((KERAS2 / f"{name}.h5").is_file() for name in REFUSED)


@pytest.mark.parametrize("name", MODELS)
def test_keras2_logits_are_reproduced(name):
    check_against_keras2(KERAS2 / f"{name}.h5")


@pytest.mark.parametrize("name", MODELS)
def test_keras2_model_is_explained_from_the_command_line(name, tmp_path):
    recorded = np.load(KERAS2 / f"{name}.npz")
    np.save(tmp_path / "x.npy", recorded["x"])
    result = CliRunner().invoke(main, ["explain", str(KERAS2 / f"{name}.h5"),
                                       str(tmp_path / "x.npy"), "-p", str(recorded["preprocess"]),
                                       "-o", str(tmp_path / "out")])
    assert result.exit_code == 0, result.stderr
    legacy = name not in KERAS3_LOADS
    assert ("xai: a Keras 2 .h5 file: loaded by rewriting its config" in result.stderr) == legacy
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["status"] for r in records] == ["ok"] * 4
    assert [r["predicted"] for r in records] == recorded["logits"].argmax(1).tolist()
    assert sorted(p.name for p in (tmp_path / "out").glob("*.lrp.png")) == \
        [f"x-{i}.lrp.png" for i in range(4)]


def test_mobilenet_v2_goes_through_the_rewrites():
    path = KERAS2 / "mobilenet_v2_035.h5"
    try:
        keras.saving.load_model(path, compile=False)
        pytest.skip("this Keras loads Keras 2's MobileNetV2 itself")
    except Exception as exc:
        assert "groups" in str(exc)
    rewrites = load(path).legacy_h5_rewrites
    assert "DepthwiseConv2D: dropped groups (17x)" in rewrites
    assert "DepthwiseConv2D: weight depthwise_kernel loaded as kernel (17x)" in rewrites


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_code_and_unknown_classes_are_refused_by_name(name):
    layer, cls = REFUSED[name]
    with pytest.raises(XaiError) as error:
        load(KERAS2 / f"{name}.h5")
    assert layer in str(error.value) and cls in str(error.value)


def test_lambda_is_refused_from_the_command_line(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((8, 8, 1), np.float32))
    result = CliRunner().invoke(main, ["explain", str(KERAS2 / "lambda_layer.h5"),
                                       str(tmp_path / "x.npy"), "-o", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "layer 'double' is a Lambda layer" in result.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
@pytest.mark.parametrize("name", FULL)
def test_full_size_keras2_applications(name):
    if not os.environ.get(FULL_DIR):
        pytest.skip(f"set {FULL_DIR} to a folder made by `scripts/make_keras2_fixtures.py "
                    "--full DIR` under TF 2.15 (the models are 10-100 MB, not committed)")
    check_against_keras2(Path(os.environ[FULL_DIR]) / f"{name}.h5")
