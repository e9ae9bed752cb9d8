"""Word deletion (Arras et al. 2017): how fast a text model's score falls as relevant words go.

The text counterpart of region perturbation: each method's token relevance (summed over
the embedding) ranks a document's tokens, and at step k the ``k * words`` first-ranked
tokens are deleted (most relevant first; least relevant first and random orders too).
Padding is never deleted; once a document has no words left its curve stays flat.
What deleting a word means is a protocol (``--replace``), and they are different
experiments:

- ``zero``: its embedding vector becomes zero, as Arras et al. and their code do;
- ``unknown``: it becomes the unknown token (id 1), as an unseen word would;
- ``pad``: it becomes padding (id 0), which a model with ``mask_zero`` skips: the word
  is removed from the sequence the recurrent layers read.

The curves, AOPC and summary are those of region perturbation
(:class:`~xai_cli.measures.faithfulness.BatchResult`), so ``xai evaluate`` writes the same
files for documents as for images; and after every step, whether each document is still
classified as the explained class (``decisions.csv``: the accuracy of Arras et al. where
the explained class is the true one).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from ..engine.propagation import Explainer, Scorer
from ..engine.tokens import TextInput
from ..io.documents import PADDING, UNKNOWN
from ..measures import perturbation as pa
from ..measures.faithfulness import (
    RANDOM,
    BatchResult,
    EvaluateOptions,
    explained,
    seeded,
    target_scores,
    without_non_finite_scores,
)

MAX_STEPS = 100


def steps_for(length: int | None, options: EvaluateOptions) -> int:
    """``--steps``, by default enough to delete the longest document the model reads
    (``length``; None: any length), at most :data:`MAX_STEPS`."""
    if options.steps is not None:
        return options.steps
    return MAX_STEPS if length is None else min(-(-length // options.words), MAX_STEPS)


def token_ranks(scores: np.ndarray, tokens: np.ndarray, order: str,
                rngs: Sequence[np.random.Generator]) -> np.ndarray:
    """Step rank of every position ``(N, T)``: tokens in ``order`` from 0, padding last
    (rank T, never deleted). Ties go to the earlier position. A random order draws one key
    per position, so that a document's order does not depend on the padding after it
    (its length bucket)."""
    n, length = scores.shape
    if order == "random":
        keys = np.stack([rng.random(length) for rng in rngs])
    elif order in ("morf", "lerf"):
        keys = -scores if order == "morf" else scores.astype(np.float64)
    else:
        raise ValueError(f"unknown order '{order}'; expected one of {', '.join(pa.ORDERS)}")
    keys = np.where(tokens, keys, np.inf)
    ranks = np.empty((n, length), np.int64)
    np.put_along_axis(ranks, np.argsort(keys, axis=1, kind="stable"), np.arange(length)[None], 1)
    return np.where(tokens, ranks, length)


def deleted(x: np.ndarray, mask: np.ndarray, gone: np.ndarray, replace: str, front: TextInput):
    """Copies of ``x`` and ``mask`` with the positions ``gone`` ``(B, T)`` deleted."""
    if replace == "zero":
        vector = np.zeros(x.shape[-1], x.dtype)
    else:
        vector = front.embeddings[UNKNOWN if replace == "unknown" else PADDING]
    x = np.where(gone[..., None], vector, x)
    if replace == "pad" and front.mask_zero:
        mask = np.where(gone, 0.0, mask).astype(mask.dtype)
    return x, mask


def curves(score, x, mask, ranks, replace: str, front: TextInput, steps: int, words: int,
           chunk: int) -> tuple[np.ndarray, np.ndarray]:
    """Scores ``(N, steps + 1)`` of the documents with 0, words, 2 words... deleted, and
    whether each copy is still classified as the explained class, built and scored
    ``chunk`` copies at a time. ``score(copies, masks, documents)`` returns both."""
    n = len(x)
    document, step = np.divmod(np.arange(n * (steps + 1)), steps + 1)
    scores, kept = np.empty(n * (steps + 1), np.float64), np.empty(n * (steps + 1), bool)
    for start in range(0, len(scores), chunk):
        rows = slice(start, start + chunk)
        gone = ranks[document[rows]] < (step[rows] * words)[:, None]
        copies, masks = deleted(x[document[rows]], mask[document[rows]], gone, replace, front)
        scores[rows], kept[rows] = score(copies, masks, document[rows])
    return scores.reshape(n, steps + 1), kept.reshape(n, steps + 1)


def fractions(ranks: np.ndarray, tokens: np.ndarray, steps: int, words: int) -> np.ndarray:
    """Share of each document's tokens deleted after each step ``(N, steps + 1)``."""
    count = np.maximum(tokens.sum(axis=1, keepdims=True), 1)
    done = np.minimum(np.arange(steps + 1)[None] * words, count)
    return done / count


def evaluate_batch(explainers: Mapping[str, Explainer], scorer: Scorer, x: np.ndarray,
                   mask: np.ndarray, ids: np.ndarray, targets: np.ndarray, index: np.ndarray,
                   options: EvaluateOptions, front: TextInput, steps: int,
                   seed: int = 0) -> BatchResult:
    """Word-deletion curves over ``steps`` steps of documents of one length (embedding
    vectors ``x``, padding ``mask`` and token ``ids``) for every method, protocol and order
    of ``options`` (see :func:`~xai_cli.measures.faithfulness.evaluate_batch`, its image twin)."""
    tokens = ids != PADDING
    relevance, targets, rows, faults = explained(explainers, x, targets, index, {"mask": mask})
    x, mask, tokens, index = x[rows], mask[rows], tokens[rows], index[rows]
    if not len(rows):
        return BatchResult(options, targets, {}, {}, rows, faults)
    scores = {m: np.where(tokens, r.sum(axis=-1), 0.0) for m, r in relevance.items()}
    if options.baseline:
        scores[RANDOM] = np.zeros(tokens.shape)
    ranks = {(m, o): token_ranks(s, tokens, o, seeded(seed, index, "order"))
             for m, s in scores.items() for o in options.orders(m)}

    def score(copies, masks, document):
        logits = scorer(copies, {"mask": masks})
        return (target_scores(logits, targets[document], options.score),
                logits.argmax(axis=1) == targets[document])

    measured = {(m, r, o): curves(score, x, mask, ranks[m, o], r, front, steps, options.words,
                                  options.chunk)
                for m in scores for r in options.replace for o in options.orders(m)}
    shares = {key: fractions(r, tokens, steps, options.words) for key, r in ranks.items()}
    result = BatchResult(options, targets, {k: v[0] for k, v in measured.items()}, shares, rows,
                         faults, {m: s for m, s in scores.items() if m != RANDOM},
                         {"kept/" + "/".join(k): v[1].astype(np.uint8) for k, v in measured.items()})
    return without_non_finite_scores(result, "a document with words deleted")
