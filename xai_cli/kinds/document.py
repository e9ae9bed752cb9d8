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

import dataclasses
import functools
from collections.abc import Sequence
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


def _texts(inputs) -> bool:
    """Whether the Python API's ``inputs`` are documents as text: strings in a list, a tuple
    or a 1-D array."""
    if isinstance(inputs, np.ndarray):
        return inputs.ndim == 1 and inputs.dtype.kind in "UO" and all(isinstance(t, str) for t in inputs)
    return isinstance(inputs, (list, tuple)) and bool(inputs) and all(isinstance(t, str) for t in inputs)


def _stacked(samples: list[documents.Document]) -> Batch:
    """Documents of one length as one array."""
    return Batch(samples, np.stack([s.x for s in samples]), {"mask": np.stack([s.mask for s in samples])})


class Document(InputKind):
    name = "document"
    plural = "documents"
    audience = "text models"
    options = ("lines", "vocab", "max_tokens")
    shape = "a text model's (token ids into an Embedding)"
    default_config = "text-epsilon"
    commands = ("explain", "evaluate")
    replacements = WORD_REPLACEMENTS

    def __init__(self, graph, others=()):
        super().__init__(graph, others)
        self.vocab, self.lines, self.max_tokens, self.rows = None, False, None, 32
        self._tokens: documents.Tokenizer | None = None

    @classmethod
    def fits(cls, graph) -> bool:
        return graph.text is not None

    @property
    def article(self) -> str:
        return "a text model"

    def prepare(self, options, composite) -> preprocess.Preprocessing:
        """Documents enter as embedding vectors: no preprocessing."""
        self.refuse_others_options(options)
        if options.max_tokens is not None and options.max_tokens < 1:
            raise XaiError(f"--max-tokens must be at least 1, got {options.max_tokens}")
        self.vocab, self.lines, self.max_tokens = options.vocab, options.lines, options.max_tokens
        self.rows, self._tokens = options.batch_size, None
        return preprocess.resolve("none")

    def window(self, batch_size: int) -> int:
        """A model of any length sorts several compiled calls' worth of documents by length."""
        return batch_size * buckets.WINDOW if self.graph.any_length else batch_size

    def discover(self, args, stdin):
        self.tokenizer()   # made now: a missing --vocab is said before anything runs
        return documents.discover(args, self.lines, stdin)

    def reader(self):
        return functools.partial(documents.load, tokens=self.tokenizer(), front=self.graph.text)

    def batch(self, samples) -> Batch:
        return self._batch(list(samples), self.rows)

    def _batch(self, samples: list, rows: int) -> Batch:
        if self.graph.any_length:
            return buckets.Documents(samples, None, rows=rows, exact=bool(self.graph.padding_mixers))
        return _stacked(samples)

    def convert(self, inputs, batch_size: int = 32) -> Batch:
        """The Python API's documents: a string or a sequence of strings, tokenised as the
        command line does (their relevance comes back per word); or token ids as the
        model's embedding takes them, ``(T,)``, ``(N, T)`` or for a model of any length a
        list of ``(T_i,)`` (per embedding dimension, unless the kind was given a
        vocabulary: then per word, named by it)."""
        if isinstance(inputs, str) or _texts(inputs):
            texts = [inputs] if isinstance(inputs, str) else list(inputs)
            self.tokenizer()
            samples = [self._load(InputItem(str(i), str(i), i, text)) for i, text in enumerate(texts)]
            return dataclasses.replace(self._batch(samples, batch_size), unbatched=isinstance(inputs, str),
                                       words=True)
        rows_of_ids, one = self._ids(inputs)
        return dataclasses.replace(self._batch(self._documents(rows_of_ids, self._names()), batch_size),
                                   unbatched=one, words=self.vocab is not None)

    def returned(self, batch: Batch, relevance) -> object:
        """Word relevance (:class:`~xai_cli.kinds.words.WordRelevance`) of documents given as
        words; else relevance per embedding dimension, ``(N, T, D)`` or one ``(T_i, D)`` per
        document of a ragged list."""
        if batch.words:
            relevance = [words.WordRelevance.of(d, r) for d, r in zip(batch.samples, relevance)]
        return super().returned(batch, relevance)

    def _load(self, item: InputItem) -> documents.Document:
        try:
            return self.load(item)
        except XaiError as exc:
            raise XaiError(f"document {item.index}: {exc}") from None

    def _ids(self, inputs) -> tuple[list[np.ndarray], bool]:
        """Rows of token ids, and whether one document was given without a batch axis."""
        if isinstance(inputs, (list, tuple)) and not inputs:
            raise XaiError("no documents given: give a string, a list of strings or token ids")
        length = self.graph.text.length
        expected = ("give a string or a list of strings (the documents), or token ids: one (T,) "
                    "or a batch (N, T) of integers, " + (f"T = {length}" if length else
                                                          "or a list of (T_i,) of any length"))
        ragged = length is None and isinstance(inputs, (list, tuple)) and inputs and all(
            np.ndim(row) == 1 for row in inputs)
        try:
            rows = [np.asarray(row) for row in inputs] if ragged else np.asarray(inputs)
        except (TypeError, ValueError):
            raise XaiError(f"inputs of type {type(inputs).__name__} do not fit the text model's "
                           f"input: {expected}") from None
        one = not ragged and rows.ndim == 1
        if one:
            rows = rows[None]
        if ragged:
            wrong = next((r for r in rows if r.dtype.kind not in "iu" or not len(r)), None)
        else:
            wrong = None if rows.ndim == 2 and length in (None, rows.shape[1]) and \
                rows.dtype.kind in "iu" and rows.shape[1] else rows
        if wrong is not None:
            raise XaiError(f"token ids of shape {wrong.shape} ({wrong.dtype}) do not fit the text "
                           f"model's input: {expected}")
        return list(rows), one

    def _names(self) -> tuple[str, ...]:
        """What a token id is called: its word in the model's vocabulary, or in --vocab."""
        text = self.graph.text
        if text.vectorizer is not None:
            return text.vectorizer.vocabulary
        return self.tokenizer().vocabulary if self.vocab is not None else ()

    def tokenizer(self) -> documents.Tokenizer:
        """The tokeniser of the model (or of --vocab), made when first needed: a model that
        takes token ids needs a vocabulary only to read text."""
        if self._tokens is None:
            self._tokens = documents.tokenizer(self.graph.text, self.vocab, self.max_tokens)
        return self._tokens

    def _documents(self, rows, names: Sequence[str] = ()) -> list[documents.Document]:
        """Documents of token id ``rows``, named by their position, their words the ids'
        ``names`` (else the ids)."""
        text = self.graph.text
        if any(row.min(initial=0) < 0 or row.max(initial=0) >= text.vocabulary_size
               for row in rows):
            raise XaiError(f"token ids must lie in [0, {text.vocabulary_size}), the rows of the "
                           "model's embedding")
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
        return _stacked(self._documents(self._mixed(count, rng, pad=True)))

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
        return words.record_fields(sample, maps, self.tokenizer())

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
        if options.perturb is not None:
            raise XaiError("--perturb is for images, clips and signals; a text model's documents "
                           "lose --words words per step")
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
