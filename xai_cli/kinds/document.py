"""Documents of a text model: text files (or lines) in, word heatmaps out.

Documents are tokenised as the model's TextVectorization does, or with ``--vocab``
(:mod:`~xai_cli.io.documents`), and enter the graph at the embedding's output with their
padding mask as the graph's named input ``mask``. A model of any length reads each
document whole (or its first ``--max-tokens``), in length buckets
(:mod:`~xai_cli.kinds.buckets`). A word's relevance is the sum over its
embedding vector (:mod:`~xai_cli.kinds.words`). The perturbation unit of ``xai evaluate``
is a word (word deletion, :mod:`~xai_cli.kinds.deletion`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..catalogue import WORD_REPLACEMENTS
from ..errors import XaiError
from ..io import documents, preprocess
from ..io.inputs import InputItem
from ..measures.faithfulness import BatchResult
from . import buckets, deletion, words
from .base import Batch, ExplainOptions, InputKind

BENCH_LENGTHS = (10, 200)   # xai bench's documents for a model of any length: tokens


class Document(InputKind):
    name = "document"
    plural = "documents"
    audience = "text models"
    shape = "a text model's (token ids into an Embedding)"
    default_config = "text-epsilon"
    commands = ("explain", "evaluate")
    replacements = WORD_REPLACEMENTS

    def __init__(self, graph, others=()):
        super().__init__(graph, others)
        self.vocab, self.lines, self.max_tokens, self.rows = None, False, None, 32

    @classmethod
    def fits(cls, graph) -> bool:
        return graph.text is not None

    @property
    def article(self) -> str:
        return "a text model"

    def prepare(self, options, composite) -> preprocess.Preprocessing:
        """Documents enter as embedding vectors: no preprocessing."""
        self.vocab, self.lines, self.max_tokens = options.vocab, options.lines, options.max_tokens
        self.rows = options.batch_size
        return preprocess.resolve("none")

    def window(self, batch_size: int) -> int:
        """A model of any length sorts several compiled calls' worth of documents by length."""
        return batch_size * buckets.WINDOW if self.graph.any_length else batch_size

    def discover(self, args, stdin):
        self.tokenizer = documents.tokenizer(self.graph.text, self.vocab, self.max_tokens)
        return documents.discover(args, self.lines, stdin)

    def load(self, item: InputItem) -> documents.Document:
        return documents.load(item, self.tokenizer, self.graph.text)

    def batch(self, samples) -> Batch:
        if self.graph.any_length:
            return buckets.Documents(list(samples), None, rows=self.rows,
                                     exact=bool(self.graph.padding_mixers))
        return Batch(list(samples), np.stack([s.x for s in samples]),
                     {"mask": np.stack([s.mask for s in samples])})

    def convert(self, inputs) -> Batch:
        """Token ids ``(T,)`` or ``(N, T)``, as the model's embedding takes them; each
        becomes a document named by its position, its words the ids' tokens where the
        model has its own vocabulary (else the ids)."""
        ids = np.asarray(inputs)
        one = ids.ndim == 1
        if one:
            ids = ids[None]
        length = self.graph.text.length
        if ids.ndim != 2 or length not in (None, ids.shape[1]) or ids.dtype.kind not in "iu":
            raise XaiError(f"token ids of shape {ids.shape} ({ids.dtype}) do not fit the text "
                           f"model's input: give one (T,) or a batch (N, T) of integers, "
                           + (f"T = {length}" if length else "T any length"))
        samples = self._documents(ids)
        return Batch(samples, np.stack([d.x for d in samples]),
                     {"mask": np.stack([d.mask for d in samples])}, one)

    def _documents(self, rows) -> list[documents.Document]:
        """Documents of token id ``rows``, named by their position."""
        text = self.graph.text
        if any(row.min(initial=0) < 0 or row.max(initial=0) >= text.vocabulary_size
               for row in rows):
            raise XaiError(f"token ids must lie in [0, {text.vocabulary_size}), the rows of the "
                           "model's embedding")
        names = text.vectorizer.vocabulary if text.vectorizer is not None else ()
        made = []
        for i, row in enumerate(rows):
            x, mask = text.embed(row[None])
            made.append(documents.Document(
                InputItem(str(i), str(i), i), x[0], mask[0], row,
                [(names[t] if t < len(names) else str(t), p) for p, t in enumerate(row) if t], 0))
        return made

    def synthetic(self, count: int, rng: np.random.Generator) -> Batch:
        """Documents of random known words, as long as the model reads; for a model of any
        length, of :data:`BENCH_LENGTHS` tokens, padded to the longest."""
        return self.convert(self._mixed(count, rng, pad=True))

    def bucketing(self, count: int, rng: np.random.Generator, rows: int
                  ) -> tuple[Batch, Batch, dict] | None:
        """``count`` made-up documents of :data:`BENCH_LENGTHS` tokens in length buckets,
        and the same padded to the longest (a model of any length)."""
        if not self.graph.any_length:
            return None
        mixed = self._documents(self._mixed(count, rng, pad=False))
        longest = max(len(d.ids) for d in mixed)
        padded = self._documents([np.pad(d.ids, (0, longest - len(d.ids))) for d in mixed])
        exact = bool(self.graph.padding_mixers)
        lengths = [len(d.ids) for d in mixed]
        return (buckets.Documents(mixed, None, rows=rows, exact=exact),
                buckets.Documents(padded, None, rows=rows, exact=True),
                {"lengths": [min(lengths), longest]})

    def _mixed(self, count: int, rng: np.random.Generator, pad: bool):
        """Token ids of random known words: rows of the model's length, or for a model of
        any length, ``count`` documents of :data:`BENCH_LENGTHS` (padded to the longest
        with ``pad``)."""
        text = self.graph.text
        if text.length is not None:
            return rng.integers(2, text.vocabulary_size, (count, text.length))
        lengths = rng.integers(BENCH_LENGTHS[0], BENCH_LENGTHS[1] + 1, count)
        rows = [rng.integers(2, text.vocabulary_size, n) for n in lengths]
        if not pad:
            return rows
        return np.stack([np.pad(r, (0, lengths.max() - len(r))) for r in rows])

    def check_explain(self, options: ExplainOptions) -> None:
        if options.overlay or options.grid:
            raise XaiError(f"--{'overlay' if options.overlay else 'grid'} is for images; a text "
                           "model's documents get word heatmaps (HTML and PNG)")

    def output_names(self, stem: str, options: ExplainOptions) -> list[str]:
        return words.output_names(stem, options.methods, options.save_raw)

    def record_fields(self, sample: documents.Document, maps) -> dict:
        return words.record_fields(sample, maps, self.tokenizer)

    def write(self, out: Path, sample: documents.Document, maps, options: ExplainOptions,
              caption: str) -> list[str]:
        return words.write(out, sample, maps, caption, options.save_raw, options.style)

    def thumbnails(self, out: Path, sample) -> list[str]:
        return []

    def evaluation(self, options, masks=False, heatmaps=False):
        if masks:
            raise XaiError("--masks is for images: a text model's documents have no object masks")
        if heatmaps:
            raise XaiError("--save-heatmaps is for images: `xai explain` writes a document's "
                           "word heatmaps")
        if options.sanity:
            raise XaiError("--sanity is for image models")
        return super().evaluation(options)

    def steps(self, options) -> int:
        return deletion.steps_for(documents.read_limit(self.graph.text.length, self.max_tokens),
                                  options)

    def evaluate_batch(self, explainers, scorer, batch: Batch, targets, index, options, seed):
        """Word deletion bucket by bucket (for a model of any length; else the whole batch
        at once), joined back into batch order."""
        steps = self.steps(options)
        if isinstance(batch, buckets.Documents):
            groups = [(rows, buckets.padded([batch.samples[i] for i in rows], length))
                      for rows, length in batch.buckets()]
        else:
            groups = [(np.arange(len(batch)), (batch.x, batch.named["mask"],
                                                np.stack([s.ids for s in batch.samples])))]
        return BatchResult.joined(options, [
            (rows, deletion.evaluate_batch(explainers, scorer, *arrays, targets[rows], index[rows],
                                           options, self.graph.text, steps, seed))
            for rows, arrays in groups])
