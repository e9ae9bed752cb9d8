"""The Python API: the engine and the measurements of the command line, for notebooks.

    import xai_cli
    relevance = xai_cli.explain(model, x)                      # (N, H, W, C), like x
    result = xai_cli.evaluate(model, x, methods=("lrp", "gradxinput"))
    print(result.table())                                      # as `xai evaluate` prints it

``model`` is a ``keras.Model`` or a ``.keras``/``.h5`` file; ``x`` holds inputs as the
model takes them, converted by the model's kind of input (:mod:`xai_cli.kinds`): for an
image model, already preprocessed (like ``.npy`` inputs on the command line), one
``(H, W, C)`` or a batch ``(N, H, W, C)``. A text model takes documents as the command
line reads them, a string or a list of strings, and gives back each one's word relevance
(:class:`~xai_cli.kinds.words.WordRelevance`: what ``--save-raw`` writes in its JSON); or
token ids ``(T,)`` or ``(N, T)`` (a list of ``(T_i,)`` for a model of any length), whose
relevance comes back per embedding dimension ``(N, T, D)``, or per word with ``vocab``.
``preprocess`` names the range image inputs live in (``unit``, ``caffe``, ...; default:
the rule config's, else ``unit``), which ``zbox`` uses as bounds and uniform replacement
draws from. Everything runs on the functions the commands use (the same configs, rules,
explainers, the kind's ``evaluate_batch`` and `Tally`), so the
numbers are those ``xai explain --save-raw`` and ``xai evaluate`` write. Errors are
:class:`~xai_cli.errors.XaiError` with the command line's messages.

Compiling an explainer takes a few seconds: for repeated calls keep an `Explainer`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np

from . import kinds
from .engine import composites
from .engine.explainers import make_explainer
from .engine.graph import Graph, build_graph
from .engine.methods import METHODS
from .engine.propagation import Result, Scorer
from .errors import XaiError
from .jobs.evaluate import CURVE_COLUMNS, curve_rows, table
from .kinds.base import Batch
from .kinds.words import WordRelevance
from .measures.faithfulness import EvaluateOptions, Tally
from .models.loading import load
from .session import Options

Target = str | int | Sequence[int] | np.ndarray
__all__ = ["Evaluation", "Explainer", "WordRelevance", "evaluate", "explain"]
Inputs = np.ndarray | str | Sequence[str] | Sequence[np.ndarray]


class Explainer:
    """One method with one rule config on one model, compiled once, for many calls.

    Parameters
    ----------
    model : keras.Model, or the path of a ``.keras`` / ``.h5`` file.
    method : one of ``xai rules --list``'s methods: ``lrp``, ``sa``, ``gradient``,
        ``gradxinput``, ``integrated-gradients``, ``smoothgrad``, ``guided-backprop``,
        ``deconvnet``.
    rules : rule config for ``lrp``: a built-in name, a YAML file, or YAML text; default
        ``context-gamma-box`` for images, ``text-epsilon`` for text models.
    preprocess : the preprocessing preset the inputs were made with (their valid range).
    seed : seeds the noise of ``smoothgrad``.
    params : the method's parameters by name, as ``--param`` sets them (``{"steps": 64}``
        for ``integrated-gradients``; ``samples`` and ``noise`` for ``smoothgrad``); they
        win over the rule config's ``methods:``, the others keep their defaults.
    vocab : a text model's vocabulary file, as ``--vocab`` gives it: needed to read text
        when the model takes token ids; with token ids, their relevance comes back per word.
    max_tokens : read at most this many tokens of each document given as text, as
        ``--max-tokens``.
    """

    def __init__(self, model: keras.Model | str | Path, method: str = "lrp", *,
                 rules: str | None = None, preprocess: str | None = None, seed: int = 0,
                 params: Mapping[str, object] | None = None, vocab: str | Path | None = None,
                 max_tokens: int | None = None):
        if method not in METHODS:
            raise XaiError(f"unknown method '{method}'; expected one of {', '.join(METHODS)}")
        self.graph = _graph(model)
        self.kind = kinds.of(self.graph)
        self.composite = _composite(rules or self.kind.default_config)
        options = Options(str(model), (), preprocess=preprocess,
                          vocab=None if vocab is None else str(vocab), max_tokens=max_tokens)
        self.preprocessing = self.kind.prepare(options, self.composite)
        self.method = method
        self._explainer = make_explainer(self.graph, METHODS[method], self.composite,
                                         self.preprocessing, seed, params=params)

    def explain(self, x: Inputs, target: Target = "top1", batch_size: int = 32) -> Result:
        """Relevance (as :meth:`__call__` gives it, for every input), pre-softmax scores
        and explained class of every input, in batches."""
        batch = self.kind.convert(x, batch_size)
        result = self._explain(batch, target, batch_size)
        relevance = self.kind.returned(dataclasses.replace(batch, unbatched=False), result.relevance)
        return Result(relevance, result.logits, result.targets)

    def __call__(self, x: Inputs, target: Target = "top1", batch_size: int = 32):
        """The relevance of ``x``; of one input given without a batch axis, that input's."""
        batch = self.kind.convert(x, batch_size)
        return self.kind.returned(batch, self._explain(batch, target, batch_size).relevance)

    def _explain(self, batch: Batch, target: Target, batch_size: int) -> Result:
        """Every input's relevance (stacked where they share a shape), logits and targets,
        a batch of the job (:meth:`InputKind.window`) at a time."""
        targets = _targets(target, len(batch), self.graph.num_classes)
        window = self.kind.window(batch_size)
        parts = [batch.take(index).explain(self._explainer, targets[index], index)
                 for index in (np.arange(i, min(i + window, len(batch)))
                               for i in range(0, len(batch), window))]
        relevance = [r for part in parts for r in part.relevance]
        shapes = {r.shape for r in relevance}
        return Result(np.stack(relevance) if len(shapes) == 1 else relevance,
                      *(np.concatenate([getattr(p, f) for p in parts]) for f in ("logits", "targets")))


def explain(model: keras.Model | str | Path, x: Inputs, method: str = "lrp", *,
            rules: str | None = None, target: Target = "top1", preprocess: str | None = None,
            batch_size: int = 32, seed: int = 0, params: Mapping[str, object] | None = None,
            vocab: str | Path | None = None, max_tokens: int | None = None):
    """The relevance of every input for its target class (``top1``, a class index, or one
    per input): what ``xai explain --save-raw`` writes; for images shaped like ``x``, for
    documents given as text a :class:`~xai_cli.kinds.words.WordRelevance` each. See
    `Explainer` for the arguments."""
    return Explainer(model, method, rules=rules, preprocess=preprocess, seed=seed,
                     params=params, vocab=vocab, max_tokens=max_tokens)(x, target, batch_size)


@dataclass
class Evaluation:
    """Region perturbation results: the rows of ``summary.csv``, ``curves.csv`` and
    ``comparisons.csv``.

    ``curves`` name each input by its position in ``x``; ``faults`` gives the position and
    reason of every input left out (NaN or Inf relevance or scores).
    """

    summary: list[dict]
    curves: list[dict]
    comparisons: list[dict]
    faults: dict[int, str] = field(default_factory=dict)

    def table(self) -> str:
        """The summary and the comparisons as ``xai evaluate`` prints them."""
        return table(self.summary, comparisons=self.comparisons)


def evaluate(model: keras.Model | str | Path, x: Inputs,
             methods: Sequence[str] = ("lrp",), *, rules: str | None = None,
             target: Target = "top1", preprocess: str | None = None,
             perturb: tuple[int, ...] | None = None, steps: int | None = None, order: str = "morf",
             replace: Sequence[str] = (), lerf: bool = False, score: str = "logit",
             batch_size: int = 32, seed: int = 0,
             params: Mapping[str, Mapping[str, object]] | None = None,
             vocab: str | Path | None = None, max_tokens: int | None = None) -> Evaluation:
    """Perturbation curves and AOPC of each method against the random order, as ``xai
    evaluate`` measures them (the same options; seeded, so the same numbers); ``perturb``
    defaults to the kind's patch (9x9 for images, 2x9x9 for clips), ``replace`` to its
    first protocol (uniform for images and clips, zero for documents);
    ``params`` gives methods their parameters: ``{method: {name: value}}``."""
    params = params or {}
    unknown = set(params) - set(methods)
    if unknown:
        raise XaiError(f"params name {', '.join(sorted(unknown))}: not among the methods "
                       f"evaluated ({', '.join(methods)})")
    graph = _graph(model)
    explainers = {m: Explainer(graph, m, rules=rules, preprocess=preprocess, seed=seed,
                               params=params.get(m), vocab=vocab, max_tokens=max_tokens)
                  for m in dict.fromkeys(methods)}
    kind = next(iter(explainers.values())).kind
    options = kind.evaluation(EvaluateOptions(tuple(explainers), perturb and tuple(perturb), steps, order,
                                              tuple(dict.fromkeys(replace)), score, lerf))
    batch = kind.convert(x, batch_size)
    targets = _targets(target, len(batch), graph.num_classes)
    steps = kind.steps(options)
    scorer, tally, curves, faults = Scorer(graph), Tally(options), [], {}
    compiled = {m: e._explainer for m, e in explainers.items()}
    window = kind.window(batch_size)
    for start in range(0, len(batch), window):
        index = np.arange(start, min(start + window, len(batch)))
        result = kind.evaluate_batch(compiled, scorer, batch.take(index), targets[index], index,
                                     options, seed)
        faults.update({int(index[i]): why for i, why in result.faults.items()})
        tally.add(result)
        curves += [dict(zip(CURVE_COLUMNS, row))
                   for row in curve_rows([int(i) for i in index[result.kept]], result)]
    return Evaluation(tally.rows(steps, seed), curves, tally.comparison_rows(seed), faults)


def _graph(model: keras.Model | str | Path | Graph) -> Graph:
    if isinstance(model, Graph):
        return model
    return build_graph(model if isinstance(model, keras.Model) else load(model))


def _composite(rules: str) -> composites.Composite:
    if "\n" in rules:
        return composites.parse(rules, "rules")
    return composites.load(rules)


def _targets(target: Target, count: int, classes: int) -> np.ndarray:
    """One class per input, -1 for top-1."""
    if isinstance(target, str):
        if target != "top1":
            raise XaiError(f"target must be 'top1', a class index or one per input, got '{target}'")
        return np.full(count, -1, np.int32)
    try:
        targets = np.broadcast_to(np.asarray(target), (count,)).astype(np.int32)
    except ValueError:
        raise XaiError(f"{np.size(target)} targets for {count} inputs: give one class for "
                       "all or one per input") from None
    if np.any((targets < 0) | (targets >= classes)):
        raise XaiError(f"target {target} is out of range: the model has {classes} classes")
    return targets
