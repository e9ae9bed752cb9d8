"""Model-randomisation sanity check (Adebayo et al. 2018, "Sanity checks for saliency maps").

The learned layers are re-initialised from the top down, cumulatively (cascading): step 1
randomises the layer that computes the logits, the last step every learned layer. A
method whose heatmap hardly changes while the weights are destroyed explains the input,
not the model. Per image, method and step the Spearman rank correlation between the
original and the randomised heatmap (summed over channels) is reported, of the signed
values and of their absolute values; the explained class stays the original's.

Randomisation replaces kernel and bias of every linear op except the normalisations
(their statistics keep the activations in range), with normal values of the same
standard deviation as the weights they replace, seeded by ``--seed`` and the op; it works
on the explanation graph, so canonizers and rules apply to the randomised model as they
do to the original. At most ``MAX_STEPS`` cut points, spread evenly over the layers.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from ..engine.graph import Graph
from ..engine.layers import LINEAR

MAX_STEPS = 8
NOT_RANDOMISED = {"BatchNormalization", "LayerNormalization", "LayerScale"}


@dataclass
class Step:
    """The graph with its ``count`` top learned layers randomised, down to ``down_to``."""

    count: int
    down_to: str
    graph: Graph


def cascade(graph: Graph, seed: int, max_steps: int = MAX_STEPS) -> list[Step]:
    """Cumulatively randomised copies of ``graph``, top layer first, all layers last."""
    learned = [i for i in reversed(range(len(graph.ops)))
               if graph.ops[i].kind == LINEAR and graph.ops[i].layer_type not in NOT_RANDOMISED]
    counts = sorted({int(c) for c in np.round(np.linspace(1, len(learned),
                                                          min(max_steps, len(learned))))})
    steps = []
    for count in counts:
        ops = list(graph.ops)
        for i in learned[:count]:
            ops[i] = _randomised(ops[i], np.random.default_rng([seed, i, 11]))
        steps.append(Step(count, graph.ops[learned[count - 1]].layer,
                          dataclasses.replace(graph, ops=ops)))
    return steps


def _randomised(op, rng: np.random.Generator):
    params = dict(op.params)
    for name in ("kernel", "bias"):
        if name in params:
            value = np.asarray(params[name], np.float32)
            spread = float(value.std())
            if spread > 0:
                params[name] = rng.normal(0, spread, value.shape).astype(np.float32)
    return dataclasses.replace(op, params=params)


class Randomised:
    """Explainers of every method on every step of the cascade, built once per run."""

    def __init__(self, graph: Graph, methods, make_explainer, seed: int):
        self.steps = cascade(graph, seed)
        self.explainers = [{m: make_explainer(step.graph, m) for m in methods}
                           for step in self.steps]

    def part_arrays(self, relevance: dict[str, np.ndarray], x: np.ndarray, targets: np.ndarray,
                    index: np.ndarray) -> dict[str, np.ndarray]:
        """``sanity/<method>``: (N, steps, 2) correlations of a batch with its randomised
        heatmaps (``relevance``: the original ones, summed over channels)."""
        out = {f"sanity/{m}": np.zeros((len(x), len(self.steps), 2)) for m in relevance}
        for s, explainers in enumerate(self.explainers):
            for method, explainer in explainers.items():
                randomised = explainer.explain(x, targets, index).relevance.sum(axis=-1)
                out[f"sanity/{method}"][:, s] = correlations(relevance[method], randomised)
        return out


def rank_correlation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-row Spearman correlation of (N, ...) arrays, ties ranked by their mean rank;
    0 where a row is constant (it orders nothing), NaN where a row is not finite."""
    a, b = (x.reshape(len(x), -1) for x in (a, b))
    ra, rb = _ranks(a), _ranks(b)
    ra -= ra.mean(axis=1, keepdims=True)
    rb -= rb.mean(axis=1, keepdims=True)
    norm = np.sqrt((ra ** 2).sum(axis=1) * (rb ** 2).sum(axis=1))
    rho = np.divide((ra * rb).sum(axis=1), norm, out=np.zeros(len(ra)), where=norm > 0)
    rho[~(np.isfinite(a).all(axis=1) & np.isfinite(b).all(axis=1))] = np.nan
    return rho


def _ranks(rows: np.ndarray) -> np.ndarray:
    ranks = np.empty(rows.shape, np.float64)
    for i, row in enumerate(rows):
        order = np.argsort(row, kind="stable")
        ordered = row[order]
        starts = np.r_[0, np.flatnonzero(np.diff(ordered)) + 1]
        ends = np.r_[starts[1:], len(row)]
        mean_rank = np.repeat((starts + ends - 1) / 2, ends - starts)
        ranks[i, order] = mean_rank
    return ranks


def correlations(original: np.ndarray, randomised: np.ndarray) -> np.ndarray:
    """(N, 2): rank correlation of the signed and of the absolute heatmaps."""
    return np.stack([rank_correlation(original, randomised),
                     rank_correlation(np.abs(original), np.abs(randomised))], axis=1)


def plot(steps: list[Step], means: dict[str, np.ndarray], file: str | Path | BinaryIO,
         title: str) -> None:
    """sanity.png: mean rank correlation per step, absolute (solid) and signed (dashed).

    ``means`` maps method -> (steps, 2) mean correlations (signed, absolute).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    figure = Figure(figsize=(max(6.0, 0.9 * len(steps) + 3), 4.4), dpi=100)
    FigureCanvasAgg(figure)
    ax = figure.subplots()
    x = np.arange(len(steps) + 1)
    for k, (method, mean) in enumerate(means.items()):
        ax.plot(x, np.r_[1, mean[:, 1]], color=f"C{k}", marker="o", label=f"{method} |R|")
        ax.plot(x, np.r_[1, mean[:, 0]], color=f"C{k}", linestyle="--", label=f"{method} R")
    ax.set_xticks(x, ["original"] + [s.down_to for s in steps], rotation=45, ha="right",
                  fontsize=8)
    ax.set_xlabel("randomised from the top down to layer")
    ax.set_ylabel("rank correlation with the original heatmap")
    ax.axhline(0, color="grey", linewidth=0.8)
    ax.set_ylim(-1.05, 1.05)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title, fontsize=10)
    figure.tight_layout()
    figure.savefig(file, format="png")
