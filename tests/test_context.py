"""Graph context: what each linear op feeds, and configs that match by it."""

import keras
import pytest

from xai_cli.engine import composites
from xai_cli.engine.context import contexts
from xai_cli.engine.graph import build_graph
from xai_cli.errors import XaiError


def _inverted_residual_net():
    """Stem conv + ReLU6, an inverted residual block (expand, depthwise, linear project,
    Add), a VGG-style conv + BN + ReLU + max pooling, and a dense head."""
    L = keras.layers
    x = inputs = keras.Input((12, 12, 3))
    x = L.Conv2D(8, 3, padding="same", name="stem")(x)
    x = L.ReLU(6.0, name="stem_relu6")(x)
    skip = x
    x = L.Conv2D(16, 1, name="expand", activation="relu6")(x)
    x = L.ZeroPadding2D(1, name="pad")(x)
    x = L.DepthwiseConv2D(3, name="dwconv")(x)
    x = L.BatchNormalization(name="dw_bn")(x)
    x = L.ReLU(6.0, name="dw_relu6")(x)
    x = L.Conv2D(8, 1, name="project")(x)
    x = L.BatchNormalization(name="project_bn")(x)
    x = L.Add(name="add")([skip, x])
    x = L.Conv2D(8, 3, padding="same", name="plain")(x)
    x = L.BatchNormalization(name="plain_bn")(x)
    x = L.Activation("relu", name="plain_relu")(x)
    x = L.MaxPooling2D(name="pool")(x)
    x = L.SeparableConv2D(4, 3, name="sep", activation="tanh")(x)
    x = L.GlobalAveragePooling2D(name="gap")(x)
    x = L.Dense(5, name="logits")(x)
    return build_graph(keras.Model(inputs, x))


@pytest.fixture(scope="module")
def graph():
    return _inverted_residual_net()


def _by_op(graph, canonize=True):
    if canonize:
        graph = composites.load("epsilon-gamma-box").canonize(graph)
    return graph, {graph.ops[i].layer: c for i, c in contexts(graph).items()}


def test_followers_and_linear_output(graph):
    canonized, ctx = _by_op(graph)
    assert ctx["stem"].followers == (frozenset({"relu", "activation"}),)
    assert not ctx["stem"].linear_output
    assert ctx["expand"].followed_by({"relu"})          # fused relu6 activation
    assert ctx["dwconv"].followed_by({"relu"})          # folded BN, then ReLU6
    assert ctx["project"].followers == (frozenset({"add"}),)
    assert ctx["project"].linear_output                 # Add, then the next conv: no rectifier
    assert ctx["plain"].followed_by({"relu"}) and not ctx["plain"].linear_output
    assert ctx["sep"].followed_by({"activation"}) and not ctx["sep"].followed_by({"relu"})
    assert ctx["logits"].followers == (frozenset({"output"}),) and ctx["logits"].linear_output
    # the depthwise half of a separable convolution feeds its pointwise half
    depthwise = next(c for i, c in contexts(canonized).items()
                     if canonized.ops[i].name == "sep/depthwise")
    assert depthwise.followers == (frozenset({"linear"}),) and depthwise.linear_output


def test_unfolded_batchnorm_is_looked_through(graph):
    _, ctx = _by_op(graph, canonize=False)
    assert ctx["project"].followers == (frozenset({"add"}),)   # through project_bn
    assert ctx["plain"].followed_by({"relu"})                  # through plain_bn
    assert ctx["project_bn"].linear_output


def test_a_skip_connection_feeding_two_paths_needs_both_to_match(graph):
    _, ctx = _by_op(graph)
    stem = ctx["stem"]
    assert stem.followed_by({"relu"})
    # the stem's ReLU6 output feeds the expand conv and the Add; the conv itself only the ReLU
    assert not stem.followed_by({"add"})


CONTEXT_CONFIG = """\
canonizers: [merge-batchnorm]
rules:
  - match: {first: true}
    rule: flat
  - match: {type: DepthwiseConvolution}
    rule: epsilon
    epsilon: 0.5
  - match: {type: Convolution, followed_by: relu}
    rule: gamma
    gamma: 0.25
  - match: {type: Convolution, linear_output: true}
    rule: epsilon
    epsilon: 0.25
  - match: {followed_by: [output, add]}
    rule: zero
default: {rule: zplus}
"""


def test_configs_match_by_context(graph):
    config = composites.parse(CONTEXT_CONFIG, "ctx.yaml")
    canonized = config.canonize(graph)
    assignments, warnings = config.resolve(canonized)
    got = {op.name.split("+")[0]: a.source for op, a in zip(canonized.ops, assignments)
           if op.kind == "linear"}
    assert got == {"stem": "ctx.yaml:3", "expand": "ctx.yaml:8", "dwconv": "ctx.yaml:5",
                   "project": "ctx.yaml:11", "plain": "ctx.yaml:8",
                   "sep/depthwise": "ctx.yaml:5", "sep/pointwise": "ctx.yaml:16",
                   "logits": "ctx.yaml:14"}
    assert warnings == []


def test_full_convolution_family_excludes_depthwise(graph):
    config = composites.parse("rules:\n  - {match: {type: FullConvolution}, rule: zplus}\n"
                              "default: {rule: epsilon}\n", "f.yaml")
    canonized = config.canonize(graph)
    assignments, _ = config.resolve(canonized)
    zplus = {op.name for op, a in zip(canonized.ops, assignments) if a.source == "f.yaml:2"}
    assert zplus == {"stem", "expand", "project", "plain", "sep/pointwise"}


@pytest.mark.parametrize("text,expected", [
    ("rules:\n  - match: {followed_by: softmax}\n    rule: zplus\n",
     "cfg.yaml:2: rules[0].match.followed_by: unknown follower 'softmax'; expected one of relu,"),
    ("rules:\n  - match:\n      followed_by: [relu, 3]\n    rule: zplus\n",
     "cfg.yaml:3: rules[0].match.followed_by: expected a string, got 3"),
    ("rules:\n  - match: {linear_output: yes please}\n    rule: zplus\n",
     "cfg.yaml:2: rules[0].match.linear_output: expected true or false"),
])
def test_context_errors_name_line_and_key(text, expected):
    with pytest.raises(XaiError) as info:
        composites.parse(text, "cfg.yaml")
    assert expected in str(info.value)
