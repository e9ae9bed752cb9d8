"""What explain does for documents: word relevance, the top words, word heatmaps.

A token's relevance is the sum over its embedding vector (Arras et al. 2017); padding
gets none (with a masked model it has none; an unmasked one may give the padding
vectors some, which the record reports as ``padding_relevance``). Words are shown as
written, coloured by their token's relevance: those the model read and a bounded tail of
those it did not (:data:`~xai_cli.io.documents.TAIL`), so that however long a document,
what is drawn and written of it stays small.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..engine.methods import METHODS
from ..io import wordmaps
from ..io.documents import Document, Tokenizer
from ..io.outputs import atomic_write, out_path, save_npy
from ..io.render import Style

TOP_WORDS = 5


def token_relevance(document: Document, relevance: np.ndarray) -> np.ndarray:
    """Relevance per token position ``(T,)``; 0 on padding."""
    return np.where(document.ids != 0, relevance.sum(axis=-1), 0.0)


def words(document: Document, tokens: np.ndarray) -> list[wordmaps.Word]:
    return [wordmaps.Word(text, None if position is None else float(tokens[position]))
            for text, position in document.words]


@dataclass(frozen=True)
class WordRelevance:
    """One document's relevance as ``xai explain --save-raw`` writes it: ``words`` as
    written with their token's relevance (None: no token, or not read), those read and at
    most :data:`~xai_cli.io.documents.TAIL` more; the token ids the model read (``tokens``,
    with a fixed-length model's padding) and each one's ``relevance``; how many words were
    cut (``words_cut``) and how many come after those listed (``words_not_shown``); and the
    relevance per embedding dimension ``(T, D)`` (``embedding``, the ``.npy``)."""

    words: list[wordmaps.Word]
    tokens: list[int]
    relevance: list[float]
    words_cut: int
    words_not_shown: int
    embedding: np.ndarray

    @classmethod
    def of(cls, document: Document, relevance: np.ndarray) -> WordRelevance:
        """``document``'s words and tokens with their share of ``relevance`` ``(T, D)``."""
        tokens = token_relevance(document, relevance)
        return cls(words(document, tokens),
                   [int(t) for t in document.ids], tokens.tolist(), document.cut,
                   document.hidden, relevance)

    def json(self) -> dict:
        """The ``--save-raw`` JSON file's content."""
        return {"words": [[w.text, w.relevance] for w in self.words], "tokens": self.tokens,
                "relevance": self.relevance, "words_cut": self.words_cut,
                "words_not_shown": self.words_not_shown}


def output_names(stem: str, methods: Sequence[str], save_raw: bool) -> list[str]:
    names = []
    for method in methods:
        names += [f"{stem}.{method}.html", f"{stem}.{method}.png"]
        if save_raw:
            names += [f"{stem}.{method}.json", f"{stem}.{method}.npy"]
    return names


def record_fields(document: Document, maps: dict[str, np.ndarray], tokenizer: Tokenizer) -> dict:
    """The record's text fields: tokens, truncation, padding relevance and top words."""
    top, padding = {}, {}
    for method, relevance in maps.items():
        tokens = token_relevance(document, relevance)
        padding[method] = float(relevance[document.ids == 0].sum())
        top[method] = top_words(words(document, tokens), tokenizer, METHODS[method].signed)
    return {"tokens": int((document.ids != 0).sum()),
            "words_cut": document.cut, "padding_relevance": padding, "top_words": top}


def top_words(scored: list[wordmaps.Word], tokenizer: Tokenizer, signed: bool,
              n: int = TOP_WORDS) -> dict:
    """The ``n`` words that speak most for the class, and (signed methods) against it: each
    word once, as its token (lower-cased, without punctuation), with the relevance of all
    its occurrences added up."""
    totals: dict[str, float] = {}
    for word in scored:
        if word.relevance is not None:
            token = tokenizer.token(word.text)
            totals[token] = totals.get(token, 0.0) + word.relevance
    ranked = sorted(((t, r) for t, r in totals.items() if r), key=lambda tr: -tr[1])
    pick = [[t, round(r, 6)] for t, r in ranked if r > 0][:n]
    against = [[t, round(r, 6)] for t, r in reversed(ranked) if r < 0][:n]
    return {"for": pick, "against": against} if signed else {"most": pick}


def on_white(style: Style) -> Style:
    """``style`` with its sequential map reversed, to rise from white: magnitudes (``sa``)
    on text then leave unimportant words nearly plain, as on paper, instead of turning
    most of the page black."""
    name = style.sequential
    return dataclasses.replace(style, sequential=name[:-2] if name.endswith("_r") else name + "_r")


def write(out, document: Document, maps: dict[str, np.ndarray], caption: str, save_raw: bool,
          style: Style) -> list[str]:
    """Write one document's word heatmaps (on a writer thread); returns their paths."""
    stem, written, style = document.item.stem, [], on_white(style)
    if document.cut:
        caption += (f"; the model reads {int((document.ids != 0).sum())} tokens: the last "
                    f"{document.cut:,} words were cut and are not coloured")
    for method, relevance in maps.items():
        raw = WordRelevance.of(document, relevance)
        scored, signed = raw.words, METHODS[method].signed
        title = f"{document.item.source} · {method}"
        path = out_path(out, stem, f".{method}.html")
        page = wordmaps.html(scored, title, signed, style, caption, document.hidden)
        atomic_write(path, lambda f, page=page: f.write(page.encode("utf-8")))
        written.append(str(path))
        path = out_path(out, stem, f".{method}.png")
        atomic_write(path, lambda f, scored=scored, signed=signed, title=title:
                     wordmaps.png(scored, f, title, signed, style, hidden=document.hidden))
        written.append(str(path))
        if save_raw:
            path = out_path(out, stem, f".{method}.json")
            atomic_write(path, lambda f, raw=raw: f.write(json.dumps(raw.json()).encode("utf-8")))
            written.append(str(path))
            path = out_path(out, stem, f".{method}.npy")
            save_npy(path, relevance.astype(np.float32))
            written.append(str(path))
    return written
