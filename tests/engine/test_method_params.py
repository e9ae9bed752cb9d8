"""Methods' parameters: one typed path (Parameter, Method.bind, method_params, the config's
``methods:``), and what the parameters do to integrated gradients and smoothgrad."""

import numpy as np
import pytest

from conftest import FIXTURES
from xai_cli.engine import composites
from xai_cli.engine.explainers import make_explainer
from xai_cli.engine.graph import build_graph
from xai_cli.engine.methods import METHODS, method_params
from xai_cli.errors import XaiError
from xai_cli.io import preprocess
from xai_cli.models.loading import load

CONFIG = "default: {rule: epsilon}\n"


@pytest.fixture(scope="module")
def digits():
    return build_graph(load(FIXTURES / "digits.keras")), np.load(FIXTURES / "digits_test_x.npy")[:4]


def _relevance(digits, method, params=None, config=CONFIG, x=None, targets=None):
    graph, digits_x = digits
    x = digits_x if x is None else x
    targets = np.full(len(x), -1, np.int32) if targets is None else targets
    explainer = make_explainer(graph, METHODS[method], composites.parse(config, "cfg.yaml"),
                               preprocess.resolve("unit"), params=params)
    return explainer.explain(x, targets)


def test_one_step_is_x_times_the_gradient_at_half_x(digits):
    ig = _relevance(digits, "integrated-gradients", {"steps": 1})
    x = digits[1]
    gradient = _relevance(digits, "gradient", x=x / 2, targets=ig.targets).relevance
    np.testing.assert_allclose(ig.relevance, x * gradient, rtol=1e-6, atol=1e-7)


def test_default_steps_are_the_explicit_default_bit_for_bit(digits):
    default = _relevance(digits, "integrated-gradients").relevance
    np.testing.assert_array_equal(default, _relevance(digits, "integrated-gradients",
                                                      {"steps": 32}).relevance)
    assert not np.array_equal(default, _relevance(digits, "integrated-gradients",
                                                  {"steps": "4"}).relevance)


def test_smoothgrad_samples_and_noise(digits):
    default = _relevance(digits, "smoothgrad").relevance
    for params in ({"samples": 4}, {"noise": 0.3}):
        assert not np.allclose(default, _relevance(digits, "smoothgrad", params).relevance)
    np.testing.assert_allclose(_relevance(digits, "smoothgrad", {"noise": 0}).relevance,
                               _relevance(digits, "gradient").relevance, rtol=1e-5, atol=1e-7)


def test_the_config_gives_parameters_and_explicit_ones_win(digits):
    config = CONFIG + "methods:\n  smoothgrad: {samples: 4, noise: 0.3}\n"
    explainer = make_explainer(digits[0], METHODS["smoothgrad"], composites.parse(config, "c"),
                               None, params={"noise": 0.0})
    assert explainer.params == {"samples": 4, "noise": 0.0}
    assert composites.parse(config, "c").methods == {"smoothgrad": {"samples": 4, "noise": 0.3}}


def test_bind_fills_in_defaults_and_types_values():
    assert METHODS["smoothgrad"].bind({"samples": "8"}) == {"samples": 8, "noise": 0.15}
    assert METHODS["smoothgrad"].bind({"noise": 1}) == {"samples": 32, "noise": 1.0}
    assert METHODS["lrp"].bind({}) == {}


@pytest.mark.parametrize("method,given,message", [
    ("integrated-gradients", {"step": 3}, "method integrated-gradients has no parameter 'step' "
                                         "(it takes steps)"),
    ("lrp", {"steps": 3}, "method lrp has no parameter 'steps' (it takes none)"),
    ("integrated-gradients", {"steps": 0}, "integrated-gradients.steps: must be at least 1, got 0"),
    ("integrated-gradients", {"steps": 2.5}, "integrated-gradients.steps: expected an integer, got 2.5"),
    ("integrated-gradients", {"steps": True}, "integrated-gradients.steps: expected an integer, got True"),
    ("smoothgrad", {"noise": "loud"}, "smoothgrad.noise: expected a number, got 'loud'"),
    ("smoothgrad", {"noise": "nan"}, "smoothgrad.noise: must be at least 0, got nan"),
])
def test_bind_errors_name_the_method_and_parameter(method, given, message):
    with pytest.raises(XaiError) as info:
        METHODS[method].bind(given)
    assert str(info.value).startswith(message)


def test_method_params_parses_command_line_text():
    assert method_params(["integrated-gradients.steps=64", "smoothgrad.noise=0.5",
                          "smoothgrad.samples=3"]) == {
        "integrated-gradients": {"steps": 64}, "smoothgrad": {"noise": 0.5, "samples": 3}}


@pytest.mark.parametrize("spec,message", [
    ("steps=3", "--param 'steps=3': expected METHOD.NAME=VALUE"),
    ("integrated-gradients.steps", "--param 'integrated-gradients.steps': expected METHOD.NAME"),
    ("nope.steps=3", "--param 'nope.steps=3': unknown method 'nope'; expected one of lrp"),
    ("smoothgrad.sample=3", "method smoothgrad has no parameter 'sample' (it takes samples, noise)"),
    ("smoothgrad.samples=many", "--param smoothgrad.samples: expected an integer, got 'many'"),
])
def test_method_params_errors(spec, message):
    with pytest.raises(XaiError) as info:
        method_params([spec])
    assert str(info.value).startswith(message)


@pytest.mark.parametrize("text,message", [
    ("methods:\n  lrp: {steps: 3}\n",
     "cfg.yaml:3: methods.lrp: unknown key; expected one of deeplift, gradcam, gradcam++, "
     "integrated-gradients, kernelshap, lime, occlusion, rise, smoothgrad"),
    ("methods:\n  smoothgrad:\n    samples: 0\n", "cfg.yaml:4: methods.smoothgrad.samples: must be "
                                                  "at least 1, got 0"),
    ("methods:\n  smoothgrad: {nois: 1}\n", "cfg.yaml:3: methods.smoothgrad.nois: unknown key"),
    ("methods: [smoothgrad]\n", "cfg.yaml:2: methods: expected a mapping"),
])
def test_config_errors_name_file_line_and_key(text, message):
    with pytest.raises(XaiError) as info:
        composites.parse(CONFIG + text, "cfg.yaml")
    assert str(info.value).startswith(message)
