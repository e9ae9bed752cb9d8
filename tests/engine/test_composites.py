"""Rule configs: parsing, error messages with file:line:key, and layer matching."""

import dataclasses

import pytest

from conftest import ORACLE
from xai_cli.catalogue import builtin_config_text, builtin_configs, list_configs
from xai_cli.engine import composites
from xai_cli.engine.graph import build_graph
from xai_cli.errors import XaiError
from xai_cli.models.loading import load


def _error(text):
    with pytest.raises(XaiError) as info:
        composites.parse(text, "cfg.yaml")
    return str(info.value)


@pytest.mark.parametrize("text,expected", [
    ("rules: [\n", "cfg.yaml:2:"),
    ("default: {rule: magic}\n", "cfg.yaml:1: default.rule: unknown rule 'magic'"),
    ("default: {rule: epsilon, epsilon: fast}\n", "default.epsilon: expected a number, got 'fast'"),
    ("default: {rule: epsilon, epsilon: -0.1}\n", "epsilon must be >= 0"),
    ("default: {rule: alpha-beta, alpha: 2, beta: 0}\n", "alpha - beta must be 1"),
    ("default: {rule: gamma, epsilon: 1}\n", "rule 'gamma' takes no parameter 'epsilon'"),
    ("default: {rule: zbox, low: 1, high: 0}\n", "low must be below high"),
    ("default: {rule: epsilon, bias: maybe}\n", "default.bias: expected true or false"),
    ("rules:\n  - match: {name: '(['}\n    rule: zplus\n",
     "cfg.yaml:2: rules[0].match.name: invalid regular expression"),
    ("rules:\n  - match: {kind: Dense}\n    rule: zplus\n", "rules[0].match.kind: unknown key"),
    ("canonizers: [fold-everything]\ndefault: {rule: zero}\n", "unknown canonizer 'fold-everything'"),
    ("default: !!python/object/apply:os.system ['true']\n", "cfg.yaml:1:"),
    ("colour: red\ndefault: {rule: zero}\n", "cfg.yaml:1: colour: unknown key"),
    ("", "the config is empty"),
])
def test_errors_name_line_and_key(text, expected):
    assert expected in _error(text)


def test_every_builtin_config_loads_by_name():
    names = builtin_configs()
    for expected in ("lrp-0", "lrp-epsilon", "lrp-alpha1beta0", "lrp-alpha2beta1", "dtd-zplus",
                     "dtd-zbox", "epsilon-plus-flat", "epsilon-gamma-box", "w2-first"):
        assert expected in names
    listed = dict(line.split(None, 1) for line in list_configs().splitlines())
    for name in names:
        config = composites.load(name)
        assert config.name == name and listed[name] == config.description


def test_unknown_config_lists_the_builtins():
    with pytest.raises(XaiError, match="epsilon-gamma-box"):
        composites.load("no-such-config")


def test_first_match_wins_and_unused_entries_warn():
    graph = build_graph(load(ORACLE / "vgg.keras"))
    config = composites.parse(
        "rules:\n"
        "  - {match: {first: true}, rule: flat}\n"
        "  - {match: {type: Conv2D, name: 'conv2d_[12]'}, rule: gamma, gamma: 0.5}\n"
        "  - {match: {type: Conv2D}, rule: zplus}\n"
        "  - {match: {type: Conv3D}, rule: zplus}\n"
        "default: {rule: epsilon, epsilon: 0.25}\n", "cfg.yaml")
    assignments, warnings = config.resolve(graph)
    rules = {op.name: a.rule.describe() for op, a in zip(graph.ops, assignments)}
    assert rules["conv2d"] == "flat"
    assert rules["conv2d_1"] == "gamma gamma=0.5"
    assert rules["conv2d_2"] == "gamma gamma=0.5"
    assert rules["dense_3"] == "epsilon epsilon=0.25"
    assert rules["average_pooling2d"] == "norm"
    assert rules["conv2d/activation"] == "pass"
    assert [w.split(": ")[0] for w in warnings] == ["cfg.yaml:4", "cfg.yaml:5"]


def test_first_layers_are_all_layers_fed_by_the_input():
    graph = build_graph(load(ORACLE / "concat.keras"))
    first = {graph.ops[i].name for i in composites.first_layers(graph)}
    assert first == {"conv2d_8", "conv2d_9"}


def test_builtin_configs_do_not_warn_about_entries_a_model_does_not_need():
    graph = build_graph(load(ORACLE / "vgg.keras"))
    default = composites.load("context-gamma-box")      # its linear-bottleneck entry fits no VGG layer
    assert default.resolve(default.canonize(graph))[1] == []
    same_file = composites.parse(builtin_config_text("context-gamma-box"), "mine.yaml")
    assert [w.split(": ")[0] for w in same_file.resolve(same_file.canonize(graph))[1]] \
        == ["mine.yaml:12"]


def test_an_op_kind_without_a_rule_is_an_error_naming_the_op():
    graph = build_graph(load(ORACLE / "mlp.keras"))
    op = graph.ops[0]
    graph.ops[0] = dataclasses.replace(op, kind="bar")
    with pytest.raises(XaiError, match=rf"no rule for op '{op.name}' of layer '{op.layer}' "
                                       rf"\({op.layer_type}, kind 'bar'\)"):
        composites.load("lrp-epsilon").resolve(graph)
