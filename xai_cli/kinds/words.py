"""What explain does for documents: word relevance, the top words, word heatmaps.

A token's relevance is the sum over its embedding vector (Arras et al. 2017); padding
gets none (with a masked model it has none; an unmasked one may give the padding
vectors some, which the record reports as ``padding_relevance``). Words are shown as
written, coloured by their token's relevance.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence

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
                    f"{document.cut} words were cut and are not coloured")
    for method, relevance in maps.items():
        tokens = token_relevance(document, relevance)
        scored, signed = words(document, tokens), METHODS[method].signed
        title = f"{document.item.source} · {method}"
        path = out_path(out, stem, f".{method}.html")
        page = wordmaps.html(scored, title, signed, style, caption)
        atomic_write(path, lambda f, page=page: f.write(page.encode("utf-8")))
        written.append(str(path))
        path = out_path(out, stem, f".{method}.png")
        atomic_write(path, lambda f, scored=scored, signed=signed, title=title:
                     wordmaps.png(scored, f, title, signed, style))
        written.append(str(path))
        if save_raw:
            path = out_path(out, stem, f".{method}.json")
            raw = {"words": [[w.text, w.relevance] for w in scored],
                   "tokens": [int(t) for t in document.ids], "relevance": tokens.tolist()}
            atomic_write(path, lambda f, raw=raw: f.write(json.dumps(raw).encode("utf-8")))
            written.append(str(path))
            path = out_path(out, stem, f".{method}.npy")
            save_npy(path, relevance.astype(np.float32))
            written.append(str(path))
    return written
