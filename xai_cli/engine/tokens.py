"""The front of a text model: token ids to the embedding vectors the engine explains.

A text classifier's Embedding (and a TextVectorization in front of it) is cut off the
explanation graph (see :mod:`~xai_cli.engine.graph`): relevance is computed at the
embedding's output, and a token's relevance is the sum over its vector, as in Arras et
al. 2017. The lookup runs before the compiled explainer, in NumPy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import XaiError
from ..io.documents import PADDING

STANDARDIZE = ("lower_and_strip_punctuation", "lower", "strip_punctuation", None)


@dataclass(frozen=True)
class Vectorizer:
    """A TextVectorization layer's settings, for :mod:`~xai_cli.io.documents` to
    tokenise as the layer does: its vocabulary in index order (padding and unknown
    first) and its standardisation."""

    vocabulary: tuple[str, ...]
    standardize: str | None


@dataclass(frozen=True)
class TextInput:
    """How documents enter a text model: ``length`` token ids (None: any number), embedded
    by ``embeddings`` ``(V, D)``; id 0 pads, and with ``mask_zero`` is masked from the
    recurrent layers. ``vectorizer`` is the model's own tokeniser, where it has one."""

    length: int | None
    embeddings: np.ndarray
    mask_zero: bool
    vectorizer: Vectorizer | None

    @property
    def vocabulary_size(self) -> int:
        return len(self.embeddings)

    def embed(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The embedding vectors ``(N, T, D)`` of token ids ``(N, T)`` and the padding mask
        ``(N, T)`` (1 for a token, 0 for padding; all 1 without ``mask_zero``)."""
        ids = np.asarray(ids)
        mask = (ids != PADDING) if self.mask_zero else np.ones(ids.shape, bool)
        return self.embeddings[ids], mask.astype(np.float32)


def text_input(embedding, vectorizer, length) -> TextInput:
    """The :class:`TextInput` of an Embedding layer and the TextVectorization before it."""
    return TextInput(None if length is None else int(length), np.asarray(embedding.embeddings, np.float32),
                     bool(embedding.mask_zero), vectorizer and _vectorizer(vectorizer))


def _vectorizer(layer) -> Vectorizer:
    config = layer.get_config()
    problems = []
    if config.get("output_mode") != "int":
        problems.append(f"output_mode {config.get('output_mode')!r} (xai needs 'int')")
    if config.get("split") != "whitespace":
        problems.append(f"split {config.get('split')!r} (xai tokenises on 'whitespace')")
    if config.get("standardize") not in STANDARDIZE:
        problems.append(f"standardize {config.get('standardize')!r}")
    if config.get("ngrams"):
        problems.append(f"ngrams {config.get('ngrams')!r}")
    if problems:
        raise XaiError(f"layer '{layer.name}' (TextVectorization) uses {', '.join(problems)}; "
                       f"xai reproduces the standardisations {', '.join(map(str, STANDARDIZE))} "
                       "with whitespace splitting into single words")
    return Vectorizer(tuple(layer.get_vocabulary()), config.get("standardize"))
