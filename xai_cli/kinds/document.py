"""Documents of a text model: text files (or lines) in, word heatmaps out.

Documents are tokenised as the model's TextVectorization does, or with ``--vocab``
(:mod:`~xai_cli.io.documents`), and enter the graph at the embedding's output with their
padding mask as the graph's named input ``mask``. A word's relevance is the sum over its
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
from . import deletion, words
from .base import Batch, ExplainOptions, InputKind


class Document(InputKind):
    name = "document"
    plural = "documents"
    audience = "text models"
    shape = "a text model's (token ids into an Embedding)"
    default_config = "text-epsilon"
    commands = ("explain", "evaluate")
    replacements = WORD_REPLACEMENTS

    @classmethod
    def fits(cls, graph) -> bool:
        return graph.text is not None

    @property
    def article(self) -> str:
        return "a text model"

    def prepare(self, options, composite) -> preprocess.Preprocessing:
        """Documents enter as embedding vectors: no preprocessing."""
        self.vocab, self.lines = options.vocab, options.lines
        return preprocess.resolve("none")

    def discover(self, args, stdin):
        self.tokenizer = documents.tokenizer(self.graph.text, self.vocab)
        items, problems, self.texts = documents.discover(args, self.lines, stdin)
        return items, problems

    def load(self, item: InputItem) -> documents.Document:
        return documents.load(item, self.texts[item], self.tokenizer, self.graph.text)

    def batch(self, samples) -> Batch:
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
        if ids.ndim != 2 or ids.shape[1] != length or ids.dtype.kind not in "iu":
            raise XaiError(f"token ids of shape {ids.shape} ({ids.dtype}) do not fit the text "
                           f"model's input: give one (T,) or a batch (N, T) of integers, T = "
                           f"{length}")
        if ids.min(initial=0) < 0 or ids.max(initial=0) >= self.graph.text.vocabulary_size:
            raise XaiError(f"token ids must lie in [0, {self.graph.text.vocabulary_size}), the "
                           "rows of the model's embedding")
        x, mask = self.graph.text.embed(ids)
        vectorizer = self.graph.text.vectorizer
        names = vectorizer.vocabulary if vectorizer is not None else ()
        samples = [documents.Document(
            InputItem(str(i), str(i), i), x[i], mask[i], row,
            [(names[t] if t < len(names) else str(t), p) for p, t in enumerate(row) if t], 0)
            for i, row in enumerate(ids)]
        return Batch(samples, x, {"mask": mask}, one)

    def synthetic(self, count: int, rng: np.random.Generator) -> Batch:
        """Documents of random known words, as long as the model reads."""
        text = self.graph.text
        return self.convert(rng.integers(2, text.vocabulary_size, (count, text.length)))

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
        return deletion.steps_for(self.graph.input_shape[0], options)

    def evaluate_batch(self, explainers, scorer, batch: Batch, targets, index, options, seed):
        return deletion.evaluate_batch(explainers, scorer, batch.samples, targets, index, options,
                                       self.graph.text, seed)
