"""Documents of a text model in length buckets: one compiled call per bucket.

A model whose sequence axis is None reads documents of any length. A batch of the job
(a window of several compiled calls' worth of documents, in input order) is sorted by
length and cut into buckets of ``rows`` documents of similar length; each bucket is padded
to its longest member, rounded up to one of a few lengths (:func:`bucket_length`) so that
a long job compiles a handful of shapes, and explained in one call. Results come back in
input order, each document's relevance at its own length.

Padding is exact only for a model whose layers skip it (the Embedding's ``mask_zero``
read by every layer that mixes positions, see :mod:`~xai_cli.engine.padding`); any other
model runs each document at its own length: its buckets hold documents of one length. So
do random methods (smoothgrad): their noise's scale and draws depend on the whole array,
padding included.

Sorting a window instead of bucketing each compiled call alone matters: on the CPU a
recurrent layer's cost is mostly per step, so a call of a few short documents costs
nearly as much as one of many (measured by ``xai bench`` on a model of any length).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from ..engine.propagation import Explainer, Result
from ..io.documents import PADDING, Document
from .base import Batch

WINDOW = 8          # compiled calls' worth of documents sorted together
SHORTEST = 8        # the shortest bucket


def bucket_length(length: int) -> int:
    """The length a bucket whose longest document has ``length`` tokens is padded to: 8,
    10, 12, 14, 16, 20, 24, 28, 32, 40 ... (four steps between powers of two), at most a
    quarter more than ``length``, so that a job compiles a few shapes (JAX compiles one
    per length; TensorFlow traces any length once)."""
    size = SHORTEST
    while size < length:
        size += 1 << max(size.bit_length() - 3, 0)
    return size


def buckets(lengths: Sequence[int], rows: int, exact: bool) -> Iterator[tuple[np.ndarray, int]]:
    """``(positions, padded length)`` of each bucket: documents sorted by length (input
    order among equals) and taken ``rows`` at a time; with ``exact``, a bucket holds
    documents of one length only."""
    lengths = np.asarray(lengths)
    order = np.argsort(lengths, kind="stable")
    groups = [order[lengths[order] == n] for n in dict.fromkeys(lengths[order].tolist())] \
        if exact else [order]
    for group in groups:
        for start in range(0, len(group), rows):
            members = group[start:start + rows]
            longest = int(lengths[members].max())
            yield members, longest if exact else bucket_length(longest)


def padded(documents: Sequence[Document], length: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The documents' embedding vectors ``(N, length, D)``, padding masks and token ids,
    padded at the end to ``length``."""
    def pad(array):
        return np.pad(array, [(0, length - len(array))] + [(0, 0)] * (array.ndim - 1))
    return (np.stack([pad(d.x) for d in documents]), np.stack([pad(d.mask) for d in documents]),
            np.stack([np.pad(d.ids, (0, length - len(d.ids)), constant_values=PADDING)
                      for d in documents]))


@dataclass
class Documents(Batch):
    """Documents of a model of any length: their arrays have no common shape (``x`` is
    None), so they are explained bucket by bucket, ``rows`` to a compiled call;
    ``exact`` when padding would change the model's output."""

    rows: int = 32
    exact: bool = False

    def buckets(self, exact: bool = False) -> Iterator[tuple[np.ndarray, int]]:
        return buckets([len(d.ids) for d in self.samples], self.rows, self.exact or exact)

    def explain(self, explainer: Explainer, targets: np.ndarray, index: np.ndarray) -> Result:
        """Relevance per document ``(T_i, D)`` at its own length, logits and targets, in
        input order."""
        relevance: list = [None] * len(self)
        logits, explained = None, np.empty(len(self), np.int32)
        for positions, length in self.buckets(exact=explainer.method.random):
            members = [self.samples[i] for i in positions]
            x, mask, _ = padded(members, length)
            result = explainer.explain(x, targets[positions], index[positions], {"mask": mask})
            if logits is None:
                logits = np.empty((len(self), result.logits.shape[1]), result.logits.dtype)
            logits[positions], explained[positions] = result.logits, result.targets
            for i, r, document in zip(positions, result.relevance, members):
                relevance[i] = r[:len(document.ids)]
        return Result(relevance, logits, explained)

    def arrays(self) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """The documents padded to the longest (exact for one document)."""
        x, mask, _ = padded(self.samples, max(len(d.ids) for d in self.samples))
        return x, {"mask": mask}

    def take(self, rows: np.ndarray) -> Documents:
        return Documents([self.samples[i] for i in rows], None, rows=self.rows, exact=self.exact)
