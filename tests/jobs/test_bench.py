"""xai bench: the shape of its result and table (no timing thresholds: CI machines vary)."""

import json

import pytest
from click.testing import CliRunner

from conftest import FIXTURES
from xai_cli.cli import main
from xai_cli.engine.graph import build_graph
from xai_cli.jobs import bench
from xai_cli.models.loading import load

MODEL = str(FIXTURES / "digits.keras")  # small, and grayscale: the photos are converted


def test_bench_ratios_and_end_to_end_figures():
    result = bench.run(MODEL, None, 32, 2, ("lrp", "sa"), ("lrp-epsilon",), repeats=1,
                       evaluate_steps=2)
    methods = result["methods"]
    assert list(methods) == ["forward", "gradient", "lrp:lrp-epsilon", "sa"]
    forward = methods["forward"]["seconds"]
    assert methods["forward"]["ratio_to_forward"] == 1.0
    for figures in methods.values():
        ratio = figures["ratio_to_forward"]
        # both figures are rounded in the JSON: seconds to 5 decimals, ratios to 3
        assert ratio * forward == pytest.approx(figures["seconds"],
                                                abs=1e-5 * (ratio + 1) + 1e-3 * forward)
    job = result["end_to_end"]
    assert (job["method"], job["files"], job["photo_size"]) == ("lrp:lrp-epsilon", 8, [500, 375])
    for key in ("trivial_model", "model"):
        assert job[key]["seconds"] > 0 and job[key]["images_per_s"] > 0
    text = bench.table(result)
    assert "x forward" in text.splitlines()[1]
    assert "end to end, explain with lrp:lrp-epsilon on 8 JPEG/PNG files of 500x375:" in text
    assert "  trivial model: " in text and f"  {MODEL}: " in text


def test_bench_no_end_to_end_json():
    result = CliRunner().invoke(main, ["bench", MODEL, "-m", "sa", "-b", "2", "--repeats", "1",
                                       "--no-end-to-end", "--json"])
    assert result.exit_code == 0, result.stderr
    figures = json.loads(result.stdout)
    assert figures["end_to_end"] is None
    assert figures["methods"]["sa"]["ratio_to_forward"] > 0


def test_bench_xla_rows_time_the_same_methods_compiled():
    """--xla adds a compiled row per method, except random ones (smoothgrad's noise
    would differ), and the forward pass."""
    result = bench.run(MODEL, None, 32, 2, ("lrp", "smoothgrad"), ("lrp-epsilon",), repeats=1,
                       evaluate_steps=2, end_to_end=False, xla=True)
    assert list(result["methods"]) == ["forward", "gradient", "forward +xla", "lrp:lrp-epsilon",
                                       "lrp:lrp-epsilon +xla", "smoothgrad"]
    assert "lrp:lrp-epsilon +xla" in bench.table(result)


def test_bench_autodiff_rows_time_each_method_without_the_transposed_maps():
    result = bench.run(MODEL, None, 32, 2, ("lrp", "sa"), ("lrp-epsilon",), repeats=1,
                       evaluate_steps=2, end_to_end=False, autodiff=True)
    assert list(result["methods"]) == ["forward", "gradient", "lrp:lrp-epsilon",
                                       "lrp:lrp-epsilon +autodiff", "sa", "sa +autodiff"]
    assert all(f["images_per_s"] > 0 for f in result["methods"].values())


def test_without_transposes_leaves_no_transposed_map():
    graph = build_graph(load(MODEL))
    assert any(op.input_vjp is not None for op in graph.ops)
    assert all(op.input_vjp is None for op in bench._without_transposes(graph).ops)


def test_bench_times_a_text_model_on_full_length_documents(tmp_path):
    """Random known words as long as the model reads, with their mask: methods are timed,
    region perturbation and the photo job are not (they are for images)."""
    import keras
    keras.utils.set_random_seed(0)
    inputs = keras.Input((12,), dtype="int32")
    embedded = keras.layers.Embedding(30, 6, mask_zero=True)(inputs)
    x = keras.layers.Bidirectional(keras.layers.LSTM(4))(embedded)
    keras.Model(inputs, keras.layers.Dense(3)(x)).save(tmp_path / "text.keras")
    result = bench.run(str(tmp_path / "text.keras"), None, None, 4, ("lrp", "gradxinput"),
                       ("text-epsilon",), repeats=1)
    assert list(result["methods"]) == ["forward", "gradient", "lrp:text-epsilon", "gradxinput"]
    assert result["input_shape"] == [12, 6]
    assert result["evaluate"] is None and result["end_to_end"] is None
    assert "evaluate" not in bench.table(result)


def test_bench_times_a_signal_model_end_to_end_on_csv_signals():
    """The shipped GunPoint CNN: made-up signals of its shape, window perturbation, and the
    explain job on CSV files longer than the model's window."""
    model = str(FIXTURES.parents[1] / "models" / "gunpoint_cnn.keras")
    result = bench.run(model, None, None, 4, ("lrp",), ("signal-epsilon-alpha",), repeats=1,
                       evaluate_steps=2)
    assert list(result["methods"]) == ["forward", "gradient", "lrp:signal-epsilon-alpha"]
    assert result["input_shape"] == [150, 1] and result["inputs"] == "signals"
    assert result["evaluate"]["steps"] == 2
    job = result["end_to_end"]
    assert (job["files"], job["steps"]) == (16, 1000) and job["model"]["images_per_s"] > 0
    assert "on 16 CSV signals of 1000 rows:" in bench.table(result)
