"""The Python API: the engine and the measurements of the command line, for notebooks.

    import xai_cli
    relevance = xai_cli.explain(model, x)                      # (N, H, W, C), like x
    result = xai_cli.evaluate(model, x, methods=("lrp", "gradxinput"))
    print(result.table())                                      # as `xai evaluate` prints it

``model`` is a ``keras.Model`` or a ``.keras``/``.h5`` file; ``x`` holds inputs as the
model takes them, converted by the model's kind of input (:mod:`xai_cli.kinds`): for an
image model, already preprocessed (like ``.npy`` inputs on the command line), one
``(H, W, C)`` or a batch ``(N, H, W, C)``; for a text model, token ids ``(T,)`` or
``(N, T)``, whose relevance comes back per embedding dimension ``(N, T, D)``.
``preprocess`` names the range image inputs live in (``unit``, ``caffe``, ...; default:
the rule config's, else ``unit``), which ``zbox`` uses as bounds and uniform replacement
draws from. Everything runs on the functions the commands use (the same configs, rules,
explainers, the kind's ``evaluate_batch`` and `Tally`), so the
numbers are those ``xai explain --save-raw`` and ``xai evaluate`` write. Errors are
:class:`~xai_cli.errors.XaiError` with the command line's messages.

Compiling an explainer takes a few seconds: for repeated calls keep an `Explainer`.
"""

from __future__ import annotations

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
from .measures.faithfulness import EvaluateOptions, Tally
from .models.loading import load
from .session import Options

Target = str | int | Sequence[int] | np.ndarray


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
    """

    def __init__(self, model: keras.Model | str | Path, method: str = "lrp", *,
                 rules: str | None = None, preprocess: str | None = None, seed: int = 0,
                 params: Mapping[str, object] | None = None):
        if method not in METHODS:
            raise XaiError(f"unknown method '{method}'; expected one of {', '.join(METHODS)}")
        self.graph = _graph(model)
        self.kind = kinds.of(self.graph)
        self.composite = _composite(rules or self.kind.default_config)
        self.preprocessing = self.kind.prepare(Options(str(model), (), preprocess=preprocess),
                                               self.composite)
        self.method = method
        self._explainer = make_explainer(self.graph, METHODS[method], self.composite,
                                         self.preprocessing, seed, params=params)

    def explain(self, x: np.ndarray, target: Target = "top1", batch_size: int = 32) -> Result:
        """Relevance, pre-softmax scores and explained class of every input, in batches."""
        return self._explain(self.kind.convert(x), target, batch_size)

    def __call__(self, x: np.ndarray, target: Target = "top1", batch_size: int = 32) -> np.ndarray:
        """The relevance of ``x``; of one input given without a batch axis, that input's."""
        batch = self.kind.convert(x)
        relevance = self._explain(batch, target, batch_size).relevance
        return relevance[0] if batch.unbatched else relevance

    def _explain(self, batch: Batch, target: Target, batch_size: int) -> Result:
        targets = _targets(target, len(batch), self.graph.num_classes)
        parts = [self._explainer.explain(batch.x[i:i + batch_size], targets[i:i + batch_size],
                                         np.arange(i, min(i + batch_size, len(batch))),
                                         {k: v[i:i + batch_size] for k, v in batch.named.items()})
                 for i in range(0, len(batch), batch_size)]
        return Result(*(np.concatenate([getattr(p, f) for p in parts])
                        for f in ("relevance", "logits", "targets")))


def explain(model: keras.Model | str | Path, x: np.ndarray, method: str = "lrp", *,
            rules: str | None = None, target: Target = "top1", preprocess: str | None = None,
            batch_size: int = 32, seed: int = 0,
            params: Mapping[str, object] | None = None) -> np.ndarray:
    """The relevance of every input for its target class (``top1``, a class index, or one
    per input), shaped like ``x``: what ``xai explain --save-raw`` writes. See `Explainer`
    for the arguments."""
    return Explainer(model, method, rules=rules, preprocess=preprocess, seed=seed,
                     params=params)(x, target, batch_size)


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


def evaluate(model: keras.Model | str | Path, x: np.ndarray,
             methods: Sequence[str] = ("lrp",), *, rules: str | None = None,
             target: Target = "top1", preprocess: str | None = None,
             perturb: tuple[int, int] = (9, 9), steps: int | None = None, order: str = "morf",
             replace: Sequence[str] = (), lerf: bool = False, score: str = "logit",
             batch_size: int = 32, seed: int = 0,
             params: Mapping[str, Mapping[str, object]] | None = None) -> Evaluation:
    """Perturbation curves and AOPC of each method against the random order, as ``xai
    evaluate`` measures them (the same options; seeded, so the same numbers); ``replace``
    defaults to the kind's first protocol (uniform for images, zero for documents);
    ``params`` gives methods their parameters: ``{method: {name: value}}``."""
    params = params or {}
    unknown = set(params) - set(methods)
    if unknown:
        raise XaiError(f"params name {', '.join(sorted(unknown))}: not among the methods "
                       f"evaluated ({', '.join(methods)})")
    graph = _graph(model)
    explainers = {m: Explainer(graph, m, rules=rules, preprocess=preprocess, seed=seed,
                               params=params.get(m)) for m in dict.fromkeys(methods)}
    kind = next(iter(explainers.values())).kind
    options = kind.evaluation(EvaluateOptions(tuple(explainers), tuple(perturb), steps, order,
                                              tuple(dict.fromkeys(replace)), score, lerf))
    batch = kind.convert(x)
    targets = _targets(target, len(batch), graph.num_classes)
    steps = kind.steps(options)
    scorer, tally, curves, faults = Scorer(graph), Tally(options), [], {}
    compiled = {m: e._explainer for m, e in explainers.items()}
    for start in range(0, len(batch), batch_size):
        index = np.arange(start, min(start + batch_size, len(batch)))
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
