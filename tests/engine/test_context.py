"""Graph context: what each linear op feeds, and configs that match by it."""

import pytest

from networks import inverted_residual_net
from xai_cli.engine import composites
from xai_cli.engine.context import contexts
from xai_cli.errors import XaiError


@pytest.fixture(scope="module")
def graph():
    return inverted_residual_net()


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
