"""Rule configs (YAML composites): which rule each layer gets, and why.

A config is read with PyYAML's safe loader and checked node by node, so that every
error names the file, the line and the key. :meth:`Composite.resolve` assigns a rule
to every op of a graph: linear layers from the config's entries (first match wins)
or its default; the other ops get the rule their kind calls for (:data:`RULES_BY_KIND`,
where a config may name pooling and recurrent layers). Entries match a
layer by type, name, being the first layer, and by graph context (what its output
feeds, see :mod:`xai_cli.engine.context`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from ..catalogue import builtin_config_text, builtin_configs
from ..errors import XaiError
from . import rules as R
from .attention import ATTNLRP
from .attention import MODES as ATTENTION_RULES
from .canonizers import CANONIZERS
from .context import ELEMENTWISE, FOLLOWERS, Context, contexts
from .graph import Graph
from .layers import (
    ACTIVATION,
    AFFINE,
    ATTENTION,
    BILINEAR,
    CONSTANT,
    DISTANCE,
    GATE,
    LINEAR,
    NORMALIZATION,
    POOLING,
    RECURRENT,
    STRUCTURAL,
)
from .methods import METHODS
from .recurrent import KINDS as RECURRENT_LAYERS

_CONVOLUTIONS = {"Conv1D", "Conv2D", "Conv3D", "DepthwiseConv1D", "DepthwiseConv2D",
                 "SeparableConv2D"}


def _depthwise(op) -> bool:
    return op.layer_type.startswith("DepthwiseConv") or op.name.endswith("/depthwise")


FAMILIES = {  # names a config can use in `type`, besides Keras layer class names
    "Convolution": lambda op: op.layer_type in _CONVOLUTIONS,
    "DepthwiseConvolution": _depthwise,            # one input channel per output channel
    "FullConvolution": lambda op: op.layer_type in _CONVOLUTIONS and not _depthwise(op),
    "Linear": lambda op: op.kind == LINEAR,        # every layer with weights
    "Pooling": lambda op: op.kind == POOLING,      # average pooling, Add: linear, no weights
    "Recurrent": lambda op: op.kind == RECURRENT,  # SimpleRNN, LSTM, GRU, in Bidirectional too
    "Attention": lambda op: op.kind == ATTENTION,  # a MultiHeadAttention's q, k, v -> context
    "Normalization": lambda op: op.kind == NORMALIZATION,  # LayerNormalization's standardisation
}

_NUMBER = (int, float)
_RULE_PARAMS = {
    "zero": {}, "zplus": {}, "w2": {}, "flat": {}, "pass": {}, "attnlrp": {}, "cp-lrp": {},
    "epsilon": {"epsilon": _NUMBER, "relative": (bool,)}, "gamma": {"gamma": _NUMBER},
    "alpha-beta": {"alpha": _NUMBER, "beta": _NUMBER},
    "zbox": {"low": (int, float, list), "high": (int, float, list)},
}
_TOP_KEYS = {"name", "description", "canonizers", "input", "rules", "default", "methods"}
_INPUT_KEYS = {"preprocess", "scale", "mean", "std"}
_MATCH_KEYS = {"first", "type", "name", "followed_by", "linear_output"}


@dataclass(frozen=True)
class Assignment:
    """The rule an op gets and where it came from (a config line or a built-in reason)."""

    rule: object
    source: str


@dataclass
class Entry:
    rule: object
    source: str
    first: bool | None = None
    types: tuple[str, ...] | None = None
    name: re.Pattern | None = None
    followed_by: frozenset[str] | None = None
    linear_output: bool | None = None

    def matches(self, op, is_first: bool, context: Context | None,
                explicit_only: bool = False) -> bool:
        if explicit_only and self.types is None and self.name is None:
            return False
        if isinstance(self.rule, R.AttentionRule) != (op.kind == ATTENTION) \
                and not (op.kind == NORMALIZATION and explicit_only):
            return False   # attention rules are for attention and normalisation only
        if self.first is not None and self.first != is_first:
            return False
        if self.types is not None and not any(_type_matches(t, op) for t in self.types):
            return False
        if self.followed_by is not None and not (context and context.followed_by(self.followed_by)):
            return False
        if self.linear_output is not None \
                and (context is None or context.linear_output != self.linear_output):
            return False
        return self.name is None or self.name.fullmatch(op.layer) is not None


def _type_matches(wanted: str, op) -> bool:
    """A family, the layer's class, or the class a Bidirectional layer wraps."""
    if wanted in FAMILIES:
        return FAMILIES[wanted](op)
    return op.layer_type == wanted or (op.cell is not None and RECURRENT_LAYERS.get(wanted) == op.cell.kind)


@dataclass
class Composite:
    """A parsed rule config."""

    name: str
    label: str
    description: str
    entries: list[Entry]
    default: Entry
    canonizers: list[str] = field(default_factory=list)
    preprocess: dict = field(default_factory=dict)
    methods: dict = field(default_factory=dict)   # method -> its parameters (``methods:``)
    warn_unused: bool = True   # built-in configs are general: an entry may fit no layer

    def fingerprint(self) -> dict:
        """What decides the heatmaps (rules, matches, canonizers), comparable across runs."""
        def entry(e: Entry) -> list:
            return [e.rule.describe(), e.first, e.types, e.name and e.name.pattern,
                    sorted(e.followed_by) if e.followed_by else None, e.linear_output]
        return {"rules": [entry(e) for e in self.entries], "default": entry(self.default),
                "canonizers": self.canonizers, **({"methods": self.methods} if self.methods else {})}

    def canonize(self, graph: Graph) -> Graph:
        for name in self.canonizers:
            graph = CANONIZERS[name](graph)
        return graph

    def resolve(self, graph: Graph) -> tuple[list[Assignment], list[str]]:
        """One assignment per op (by :data:`RULES_BY_KIND`), and warnings for entries
        that matched nothing."""
        first, context = first_layers(graph), contexts(graph)
        used, out = set(), []
        for index, op in enumerate(graph.ops):
            choose = RULES_BY_KIND.get(op.kind)
            if choose is None:
                raise XaiError(f"no rule for op '{op.name}' of layer '{op.layer}' "
                               f"({op.layer_type}, kind '{op.kind}')")
            assignment, entry = choose(self, op, index in first, context.get(index))
            if entry is not None:
                used.add(id(entry))
            out.append(assignment)
        warnings = [f"{e.source}: this rule applies to no layer (none matches, or earlier rules took them)"
                    for e in self.entries if id(e) not in used and self.warn_unused]
        return out, warnings

    def named_entry(self, op) -> Entry | None:
        """The first entry naming ``op``'s layer by type or name."""
        return next((e for e in self.entries if e.matches(op, False, None, explicit_only=True)), None)


def _configured(composite: Composite, op, first: bool, context: Context | None):
    """The config's first entry matching the op (by type, name, first layer, context),
    else its default."""
    entry = next((e for e in composite.entries if e.matches(op, first, context)), composite.default)
    if entry.rule is R.PASS and op.layer_type not in ELEMENTWISE:
        raise XaiError(f"{entry.source}: rule pass on '{op.name}' ({op.layer_type}): "
                       "pass suits element-wise layers only (" +
                       ", ".join(sorted(ELEMENTWISE)) + ")")
    return Assignment(entry.rule, entry.source), entry


def _named_or(rule, reason: str):
    """An entry naming the layer, else the built-in ``rule``."""
    def choose(composite: Composite, op, first, context):
        entry = composite.named_entry(op)
        return (Assignment(entry.rule, entry.source), entry) if entry else (Assignment(rule, reason), None)
    return choose


def _recurrent(composite: Composite, op, first, context):
    """An entry naming the layer (by type or name) gives its linear steps their rule;
    otherwise they take epsilon, as in Arras et al. 2017."""
    entry = composite.named_entry(op)
    if entry is None:
        return Assignment(R.recurrent(), "recurrent layer: epsilon "
                          f"{R.RECURRENT_EPSILON:g} (Arras et al. 2017)"), None
    if not isinstance(entry.rule, R.LinearRule) or entry.rule.needs_bounds:
        raise XaiError(f"{entry.source}: rule {entry.rule.describe()} on '{op.name}' "
                       f"({op.layer_type}): recurrent layers take a linear rule without "
                       "input bounds (epsilon, zero, gamma, alpha-beta, zplus, w2, flat)")
    return Assignment(R.recurrent(entry.rule), entry.source), entry


def _normalization(composite: Composite, op, first, context):
    """An entry naming the standardisation: ``attnlrp`` or ``cp-lrp`` (both hold the
    standard deviation constant) or a linear rule on it with the std held; otherwise the
    z-rule with the std held."""
    entry = composite.named_entry(op)
    if entry is None:
        return Assignment(R.norm(), "normalisation: standard deviation held constant, z-rule "
                                    "(Ali et al. 2022)"), None
    if isinstance(entry.rule, R.AttentionRule):
        return Assignment(entry.rule.normalization(), entry.source), entry
    return Assignment(entry.rule, entry.source), entry


def _builtin(rule, reason: str):
    """The same ``rule`` for every op of the kind; the config has no say."""
    return lambda composite, op, first, context: (Assignment(rule, reason), None)


# How the ops of each kind get their rule, and the reason `xai rules` shows for a built-in
# one: ``choose(composite, op, is_first, context) -> (Assignment, entry used or None)``.
# A new op kind needs a line here; an op of a kind missing here is an error.
RULES_BY_KIND = {
    LINEAR: _configured,
    POOLING: _named_or(R.norm(), "parameter-free linear map: z-rule"),
    RECURRENT: _recurrent,
    ATTENTION: _named_or(R.AttentionRule(ATTNLRP), "attention: AttnLRP (Achtibat et al. 2024)"),
    NORMALIZATION: _normalization,
    DISTANCE: _named_or(R.zero(), "neuralized k-means: midpoint rule (Kauffmann et al. 2019)"),
    ACTIVATION: _builtin(R.PASS, "activation: relevance passes through"),
    AFFINE: _builtin(R.PASS, "affine: relevance passes through"),
    GATE: _builtin(R.PASS, "gate: relevance passes through"),   # to the signal (rules.SIGNAL)
    STRUCTURAL: _builtin(R.GRADIENT, "structural: relevance follows the values"),
    CONSTANT: _builtin(R.NONE, "depends on the input's shape only (position ids): no relevance"),
    BILINEAR: _builtin(R.uniform(), "bilinear product: epsilon per factor, halved "
                                    "(uniform rule, Achtibat et al. 2024)"),
}


def first_layers(graph: Graph) -> set[int]:
    """Indices of linear ops fed by the model input with no layer with weights (linear or
    recurrent) in between."""
    tainted, first = set(), set()
    for index, op in enumerate(graph.ops):
        upstream = any(t in tainted for t in op.inputs)
        if op.kind == LINEAR and not upstream:
            first.add(index)
        if op.kind in (LINEAR, RECURRENT) or upstream:
            tainted.add(op.output)
    return first


def load(spec: str) -> Composite:
    """A config by built-in name or by file path (the default is the input kind's, see
    :mod:`xai_cli.kinds`)."""
    path = Path(spec)
    if path.is_file():
        return parse(path.read_text(encoding="utf-8"), str(path))
    if spec in builtin_configs():
        text = builtin_config_text(spec)
        config = parse(text, f"{spec}.yaml (built-in)")
        config.warn_unused = False
        return config
    raise XaiError(f"rule config '{spec}' is neither a file nor a built-in config "
                   f"({', '.join(builtin_configs())})")


class _Reader:
    """Walks the YAML node tree, turning problems into 'file:line: key: message'."""

    def __init__(self, label: str):
        self.label = label

    def error(self, node, key: str, message: str) -> XaiError:
        return XaiError(f"{self.where(node, key)}: {message}")

    def where(self, node, key: str) -> str:
        return f"{self.label}:{node.start_mark.line + 1}: {key}"

    def value(self, node, key: str, types: tuple):
        if not isinstance(node, yaml.ScalarNode) and list not in types:
            raise self.error(node, key, f"expected {_names(types)}")
        value = _construct(node)
        if (isinstance(value, bool) and bool not in types) or not isinstance(value, types):
            raise self.error(node, key, f"expected {_names(types)}, got {value!r}")
        return value

    def mapping(self, node, key: str, allowed: set[str]) -> dict:
        if not isinstance(node, yaml.MappingNode):
            raise self.error(node, key, "expected a mapping (key: value)")
        out = {}
        for k, v in node.value:
            name = _construct(k)
            if name not in allowed:
                raise self.error(k, f"{key}.{name}" if key else str(name),
                                 f"unknown key; expected one of {', '.join(sorted(allowed))}")
            out[name] = v
        return out

    def sequence(self, node, key: str) -> list:
        if isinstance(node, yaml.ScalarNode):
            return [node]
        if not isinstance(node, yaml.SequenceNode):
            raise self.error(node, key, "expected a list")
        return node.value


def _construct(node):
    return yaml.SafeLoader("").construct_object(node, deep=True)


def _names(types) -> str:
    words = {int: "a number", float: "a number", bool: "true or false", str: "a string",
             list: "a list"}
    return " or ".join(dict.fromkeys(words[t] for t in types))


def parse(text: str, label: str) -> Composite:
    """Parse and validate config ``text``; ``label`` names it in messages."""
    reader = _Reader(label)
    try:
        root = yaml.SafeLoader(text).get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise XaiError(f"{label}:{mark.line + 1}: {exc.problem or exc.context}") from exc
    except yaml.YAMLError as exc:
        raise XaiError(f"{label}: {exc}") from exc
    if root is None:
        raise XaiError(f"{label}: the config is empty")
    top = reader.mapping(root, "", _TOP_KEYS)
    if "default" not in top and "rules" not in top:
        raise XaiError(f"{label}: a config needs 'rules' or 'default'")
    entries = [_entry(reader, node, f"rules[{i}]")
               for i, node in enumerate(reader.sequence(top["rules"], "rules"))] \
        if "rules" in top else []
    default = _entry(reader, top["default"], "default", with_match=False) if "default" in top \
        else Entry(R.epsilon(), "built-in default: epsilon 1e-6")
    canonizers = []
    for node in reader.sequence(top.get("canonizers", yaml.SequenceNode("", [])), "canonizers"):
        name = reader.value(node, "canonizers", (str,))
        if name not in CANONIZERS:
            raise reader.error(node, "canonizers", f"unknown canonizer '{name}'; "
                               f"expected one of {', '.join(CANONIZERS)}")
        canonizers.append(name)
    preprocess = {}
    if "input" in top:
        fields = reader.mapping(top["input"], "input", _INPUT_KEYS)
        types = {"preprocess": (str,), "scale": _NUMBER, "mean": (list, *_NUMBER),
                 "std": (list, *_NUMBER)}
        preprocess = {k: reader.value(v, f"input.{k}", types[k]) for k, v in fields.items()}
    name = reader.value(top["name"], "name", (str,)) if "name" in top else label
    description = reader.value(top["description"], "description", (str,)) \
        if "description" in top else ""
    methods = _methods(reader, top["methods"]) if "methods" in top else {}
    return Composite(name, label, description, entries, default, canonizers, preprocess, methods)


def _methods(reader: _Reader, node) -> dict[str, dict]:
    """``methods:``: the parameters of the methods that take some, checked as ``--param``'s."""
    out = {}
    taking = {m.name: m for m in METHODS.values() if m.parameters}
    for name, fields in reader.mapping(node, "methods", set(taking)).items():
        method = taking[name]
        given = reader.mapping(fields, f"methods.{name}", {p.name for p in method.parameters})
        out[name] = {p: method.parameter(p).parse(_construct(v), reader.where(v, f"methods.{name}.{p}"))
                     for p, v in given.items()}
    return out


def _entry(reader: _Reader, node, key: str, with_match: bool = True) -> Entry:
    allowed = {"rule", "bias"} | {p for ps in _RULE_PARAMS.values() for p in ps}
    fields = reader.mapping(node, key, allowed | ({"match"} if with_match else set()))
    if "rule" not in fields:
        raise reader.error(node, key, "missing 'rule'")
    rule_name = reader.value(fields["rule"], f"{key}.rule", (str,))
    if rule_name not in _RULE_PARAMS:
        raise reader.error(fields["rule"], f"{key}.rule", f"unknown rule '{rule_name}'; expected "
                           f"one of {', '.join(_RULE_PARAMS)}")
    spec = _RULE_PARAMS[rule_name]
    params = {}
    for pname, pnode in fields.items():
        if pname in ("rule", "match"):
            continue
        if pname == "bias":
            params["bias"] = reader.value(pnode, f"{key}.bias", (bool,))
        elif pname not in spec:
            raise reader.error(pnode, f"{key}.{pname}", f"rule '{rule_name}' takes no parameter "
                               f"'{pname}'" + (f" (it takes {', '.join(spec)})" if spec else ""))
        else:
            params[pname] = reader.value(pnode, f"{key}.{pname}", spec[pname])
    _check_params(reader, node, key, rule_name, params)
    if rule_name in ATTENTION_RULES:
        if not with_match:
            raise reader.error(fields["rule"], f"{key}.rule", f"rule '{rule_name}' is for attention "
                               "and normalisation layers; give it in 'rules' with match: "
                               "{type: Attention} or {type: Normalization}")
        rule = R.AttentionRule(rule_name)
    else:
        rule = R.PASS if rule_name == "pass" else R.LINEAR_RULES[rule_name](**params)
    source = f"{reader.label}:{node.start_mark.line + 1}"
    entry = Entry(rule, source)
    if with_match and "match" in fields:
        match = reader.mapping(fields["match"], f"{key}.match", _MATCH_KEYS)
        if "first" in match:
            entry.first = reader.value(match["first"], f"{key}.match.first", (bool,))
        if "type" in match:
            entry.types = tuple(reader.value(n, f"{key}.match.type", (str,))
                                for n in reader.sequence(match["type"], f"{key}.match.type"))
        if "followed_by" in match:
            entry.followed_by = frozenset(_followers(reader, match["followed_by"],
                                                     f"{key}.match.followed_by"))
        if "linear_output" in match:
            entry.linear_output = reader.value(match["linear_output"],
                                               f"{key}.match.linear_output", (bool,))
        if "name" in match:
            pattern = reader.value(match["name"], f"{key}.match.name", (str,))
            try:
                entry.name = re.compile(pattern)
            except re.error as exc:
                raise reader.error(match["name"], f"{key}.match.name",
                                   f"invalid regular expression '{pattern}': {exc}") from exc
    return entry


def _followers(reader: _Reader, node, key: str) -> list[str]:
    names = []
    for item in reader.sequence(node, key):
        name = reader.value(item, key, (str,))
        if name not in FOLLOWERS:
            raise reader.error(item, key, f"unknown follower '{name}'; expected one of "
                               f"{', '.join(FOLLOWERS)}")
        names.append(name)
    return names


def _check_params(reader, node, key, rule_name, params):
    def bad(message):
        return reader.error(node, key, f"rule '{rule_name}': {message}")

    for pname in ("epsilon", "gamma", "beta"):
        if params.get(pname, 0) < 0:
            raise bad(f"{pname} must be >= 0, got {params[pname]}")
    if rule_name == "alpha-beta":
        alpha, beta = params.get("alpha", 1.0), params.get("beta", 0.0)
        if abs(alpha - beta - 1) > 1e-9:
            raise bad(f"alpha - beta must be 1, got alpha={alpha}, beta={beta}")
    for pname in ("low", "high"):
        values = params.get(pname)
        if isinstance(values, list) and not all(isinstance(v, _NUMBER) and not isinstance(v, bool)
                                                for v in values):
            raise bad(f"{pname} must be a number or a list of numbers (one per channel)")
    if "low" in params and "high" in params \
            and np.any(np.asarray(params["low"], float) >= np.asarray(params["high"], float)):
        raise bad("low must be below high")
