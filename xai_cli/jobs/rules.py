"""`xai rules`: the resolved layer -> rule table, and per-layer relevance conservation."""

from __future__ import annotations

import numpy as np
from keras import ops

from .. import kinds
from ..engine import composites
from ..engine.context import contexts
from ..engine.explainers import apply_composite
from ..engine.graph import build_graph
from ..engine.propagation import output_relevance
from ..errors import XaiError
from ..io.outputs import text_table
from ..models.loading import load
from ..session import Options, parse_target


def table(model_path: str, rules: str | None, check_image: str | None, preprocessing: str | None,
          target: str, vocab: str | None = None, max_tokens: int | None = None) -> str:
    """The rule table; with ``check_image``, also relevance in and out of every op."""
    graph = build_graph(load(model_path))
    kind = kinds.of(graph)
    composite = composites.load(rules or kind.default_config)
    applied = apply_composite(graph, composite)
    graph = applied.graph
    header = [f"model: {model_path} ({len(graph.ops)} ops; input {graph.input_shape}; "
              f"{graph.num_classes} outputs{', final softmax removed' if graph.softmax_stripped else ''})",
              f"rules: {composite.label}" + (f"; canonizers: {', '.join(composite.canonizers)}"
                                              if composite.canonizers else "")]
    context = contexts(graph)
    rows = [("op", "type", "feeds", "rule", "from")]
    rows += [(op.name, f"{op.activation} ({op.layer_type})" if op.activation else op.layer_type,
              context[i].describe() if i in context else "", a.rule.describe(), a.source)
             for i, (op, a) in enumerate(zip(graph.ops, applied.assignments))]
    text = "\n".join(header) + "\n\n" + text_table(rows)
    if applied.warnings:
        text += "\n\n" + "\n".join(f"warning: {w}" for w in applied.warnings)
    if check_image:
        options = Options(model_path, (check_image,), preprocess=preprocessing, vocab=vocab,
                          max_tokens=max_tokens)
        text += "\n\n" + _check(applied, kind, composite, options, target)
    return text


def _input(kind, composite, options: Options):
    """The input of --check as a batch of one, with its kind's preprocessing (zB's range)."""
    prep = kind.prepare(options, composite)
    path = options.images[0]
    items, problems = kind.discover([path], None)
    if problems or not items:
        raise XaiError(f"--check {path}: {problems[0][1] if problems else 'no input'}")
    return kind.batch([kind.load(items[0])]), prep


def _check(applied, kind, composite, options: Options, target) -> str:
    graph, rules = applied.graph, applied.rules
    batch, prep = _input(kind, composite, options)
    propagator = applied.propagator(prep)
    x, named = batch.arrays()
    values = propagator.forward(ops.convert_to_tensor(x),
                                {k: ops.convert_to_tensor(v) for k, v in named.items()})
    logits = ops.convert_to_numpy(values[graph.output][0])
    index = parse_target(target, None, graph.num_classes)
    index = int(np.argmax(logits)) if index < 0 else index
    record = []
    relevance = ops.convert_to_numpy(propagator.backward(
        values, output_relevance(values[graph.output], [index], scale_by_logit=True), record))
    score = np.float64(logits[index])   # a zero logit gives NaN shares, not a ZeroDivisionError
    rows = [("op", "rule", "relevance out", "relevance in", "in / out", "absorbed / score")]
    absorbed = {}
    for op, r_out, r_ins in record:
        out_sum = float(ops.sum(r_out))
        in_sum = sum(float(ops.sum(r)) for r in r_ins if r is not None)
        ratio = in_sum / out_sum if out_sum else float("nan")
        absorbed[op.name] = out_sum - in_sum
        rows.append((op.name, rules[graph.ops.index(op)].describe(), f"{out_sum:.6g}",
                     f"{in_sum:.6g}", f"{ratio:.4f}", f"{absorbed[op.name] / score:+.4f}"))
    total = float(relevance.sum())
    return (f"conservation on {options.images[0]} (class {index}, logit {score:.6g}; "
            f"input relevance {total:.6g} = {total / score:.4f} x logit)\n"
            + _where_it_goes(total, score, absorbed) + "\n\n" + text_table(rows))


def _where_it_goes(total: float, score: float, absorbed: dict[str, float], top: int = 5) -> str:
    """One line on where the explained score went: the share that reached the input, the
    ops that absorbed the most of the rest (biases and stabilisers take relevance that no
    input gets; with ``bias: false`` a layer's bias takes none) and those with a BatchNorm
    folded into them (``conv+bn``), whose shift is a bias."""
    largest = sorted(absorbed.items(), key=lambda kv: -kv[1])[:top]
    folded = sum(v for name, v in absorbed.items() if "+" in name)
    shown = ", ".join(f"{name} {value / score:.1%}" for name, value in largest)
    return (f"where it goes: {total / score:.1%} of the score reaches the input; "
            f"{sum(absorbed.values()) / score:.1%} is absorbed on the way, most by {shown}; "
            f"{folded / score:.1%} by the {sum('+' in n for n in absorbed)} ops with a folded "
            "BatchNorm (its shift is a bias)")
