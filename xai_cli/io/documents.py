"""Documents for text models: finding them, and turning them into token ids.

A document is a text file, or one line of a file with ``--lines``; ``-`` reads stdin.
Tokens are made as Keras' ``TextVectorization`` makes them with its defaults: ASCII
letters lower-cased, the ASCII punctuation of its ``lower_and_strip_punctuation``
removed, split on ASCII whitespace. Standardising only removes characters and
lower-cases, so the words of the document as written map one to one onto its tokens
(a word of punctuation only has none), and heatmaps can show the text as written.
"""

from __future__ import annotations

import glob
import io
import os
import re
import shutil
import tempfile
import weakref
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TextIO

import numpy as np

from ..errors import InputError, XaiError
from . import storage
from .inputs import InputItem, Listing, sanitise, unique_stem

_WHITESPACE = re.compile(r"[ \t\n\r\f\v]+")
_PUNCTUATION = re.compile(r'[!"#$%&()\*\+,-\./:;<=>?@\[\\\]^_`{|}~\']')
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
PADDING, UNKNOWN = 0, 1    # the ids Keras' TextVectorization gives padding and unknown words
_SPECIAL = ("", "[UNK]")   # how TextVectorization.get_vocabulary() names them
TAIL = 100                 # words kept after the last one the model reads, to show where it stopped
LONGEST_WORD = 64          # characters of a word kept to show it (a longer one ends in "…")
LONGEST_READ = 100_000     # tokens a model of any length reads of a document unless --max-tokens says


@dataclass(frozen=True)
class Tokenizer:
    """Documents to token ids with ``vocabulary`` (index order, padding and unknown first)
    and a TextVectorization standardisation: at most ``limit`` tokens (None: all), padded
    to ``pad_to`` (a fixed-length model's length; None: not padded)."""

    vocabulary: tuple[str, ...]
    limit: int | None
    standardize: str | None = "lower_and_strip_punctuation"
    pad_to: int | None = None

    def token(self, word: str) -> str:
        if self.standardize in ("lower", "lower_and_strip_punctuation"):
            word = word.translate(_ASCII_LOWER)
        if self.standardize in ("strip_punctuation", "lower_and_strip_punctuation"):
            word = _PUNCTUATION.sub("", word)
        return word

    def words(self, text: str) -> tuple[list[tuple[str, int | None]], int, int]:
        """The document's words as written (at most :data:`LONGEST_WORD` characters each),
        each with the position of its token (None: no token, or one beyond the limit); how
        many words with a token were cut (beyond the limit); and how many words are left
        out: those after the first :data:`TAIL` words beyond the last one read. What is
        kept is bounded by the limit however long the document is."""
        out, position, cut, hidden, tail = [], 0, 0, 0, 0
        for word in _WHITESPACE.split(text.strip()):
            if not word:
                continue
            has_token = self.token(word) != ""
            read = has_token and (self.limit is None or position < self.limit)
            cut += has_token and not read
            position += has_token
            if not read and self.limit is not None and position > self.limit:
                if tail == TAIL:
                    hidden += 1
                    continue
                tail += 1
            out.append((_shortened(word), position - 1 if read else None))
        return out, cut, hidden

    def ids(self, text: str) -> np.ndarray:
        """Token ids: unknown words 1, and padding 0 after the last token up to ``pad_to``."""
        index = self._lookup
        tokens = [t for t in (self.token(w) for w in _WHITESPACE.split(text.strip())) if t]
        ids = [index.get(t, UNKNOWN) for t in tokens[:self.limit]]
        return np.array(ids + [PADDING] * ((self.pad_to or 0) - len(ids)), np.int32)

    @cached_property
    def _lookup(self) -> dict[str, int]:
        return {t: i for i, t in enumerate(self.vocabulary) if i >= len(_SPECIAL)}


def _shortened(word: str) -> str:
    return word if len(word) <= LONGEST_WORD else word[:LONGEST_WORD - 1] + "…"


def tokenizer(text, vocab: str | None, max_tokens: int | None = None) -> Tokenizer:
    """The tokeniser of a text model's :class:`~xai_cli.engine.tokens.TextInput` ``text``:
    its own (a TextVectorization), or one from a vocabulary file; documents are cut at
    ``max_tokens`` and at the model's length, whichever comes first."""
    limit = read_limit(text.length, max_tokens)
    if text.vectorizer is not None:
        if vocab is not None:
            raise XaiError("--vocab: the model tokenises its text itself (TextVectorization); "
                           "leave --vocab out")
        return Tokenizer(text.vectorizer.vocabulary, limit, text.vectorizer.standardize,
                         text.length)
    if vocab is None:
        raise XaiError("the model takes token ids: give its vocabulary with --vocab FILE (one "
                       "token per line in index order, from index 2: 0 pads, 1 is unknown)")
    vocabulary = _SPECIAL + read_vocabulary(vocab)
    if len(vocabulary) > text.vocabulary_size:
        raise XaiError(f"--vocab {vocab}: {len(vocabulary) - 2} tokens and the 2 special ids "
                       f"are more than the model's embedding has rows ({text.vocabulary_size})")
    return Tokenizer(vocabulary, limit, pad_to=text.length)


def read_limit(length: int | None, max_tokens: int | None) -> int | None:
    """How many tokens of a document are read: the model's length or ``max_tokens``,
    whichever comes first (None: all)."""
    limits = [n for n in (length, max_tokens) if n is not None]
    return min(limits) if limits else None


def read_vocabulary(path: str) -> tuple[str, ...]:
    """Tokens of a vocabulary file from index 2, the format ``TextVectorization(vocabulary=
    path)`` reads; leading padding and unknown lines, as ``get_vocabulary()`` lists them,
    are dropped."""
    try:
        lines = Path(path).read_text(encoding="utf-8").split("\n")
    except (OSError, UnicodeDecodeError) as exc:
        raise XaiError(f"cannot read vocabulary file '{path}': {exc}") from exc
    if lines and lines[-1] == "":
        lines.pop()
    for special in _SPECIAL:
        if lines and lines[0] == special:
            lines.pop(0)
    return tuple(lines)


def discover(args: Sequence[str], lines: bool, stdin: TextIO | None
             ) -> tuple[Listing, list[tuple[str, str]]]:
    """Documents (items) and problems ``(source, reason)``.

    Arguments are text files, folders (their ``*.txt``, sorted) or glob patterns; ``-``
    is stdin. With ``lines`` every non-empty line is a document (``index`` its line
    number, from 1), read as the job goes (:class:`Lines`); else every file is one, read
    when it is loaded (stdin at once).
    """
    problems: list[tuple[str, str]] = []
    sources = list(_sources(args, stdin, problems))
    bases: set[str] = set()
    named = [(source, path, unique_stem(sanitise("stdin" if source == "-" else Path(source).stem),
                                        bases)) for source, path in sources]
    if lines:
        return Lines(named, problems), problems
    return [InputItem(source, stem, text=path.read() if source == "-" else None)
            for source, path, stem in named], problems


def _sources(args, stdin, problems) -> Iterator[tuple[str, Path | TextIO]]:
    """``(source, path)`` of every file the arguments name; stdin itself for ``-``."""
    for arg in args:
        if arg == "-":
            yield "-", stdin if stdin is not None else io.StringIO()
            continue
        if storage.is_url(arg):
            problems.append((arg, "documents are read from local files only: copy them here"))
            continue
        path = Path(arg)
        paths = sorted(path.glob("*.txt")) if path.is_dir() else [path] if path.exists() else \
            sorted(Path(p) for p in glob.glob(arg) if os.path.isfile(p)) if glob.has_magic(arg) else []
        if not paths:
            problems.append((arg, "no such file, folder or matching pattern"))
        yield from ((str(found), found) for found in paths)


class Lines:
    """Every non-empty line of text files as a document, read as the job goes: memory
    stays flat in the files' size. Counted once here (a file that is not UTF-8 text is a
    problem before anything runs); stdin (``-``) is copied to a temporary file first, so
    that it too can be read again (a resumed job skips what is done, then runs the rest).
    Stems are ``<file stem>_<line number>``."""

    def __init__(self, named: Sequence[tuple[str, Path | TextIO, str]],
                 problems: list[tuple[str, str]]):
        self._files, self._count = [], 0
        for source, path, stem in named:
            try:
                if source == "-":
                    path = self._spooled(path)
                with open(path, encoding="utf-8") as handle:
                    count = sum(1 for line in handle if line.strip())
            except (OSError, UnicodeDecodeError) as exc:
                problems.append((source, f"cannot read as UTF-8 text: {exc}"))
                continue
            self._files.append((source, path, stem))
            self._count += count

    def _spooled(self, stream: TextIO) -> Path:
        handle = tempfile.NamedTemporaryFile("w", encoding="utf-8", suffix=".txt", delete=False)
        with handle:
            shutil.copyfileobj(stream, handle)
        weakref.finalize(self, os.unlink, handle.name)
        return Path(handle.name)

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[InputItem]:
        for source, path, stem in self._files:
            with open(path, encoding="utf-8") as handle:
                for number, line in enumerate(handle, 1):
                    if line.strip():
                        yield InputItem(f"{source}:{number}", f"{stem}_{number}", number,
                                        line.rstrip("\r\n"))


@dataclass(frozen=True)
class Document:
    """A loaded document: the model's input ``x`` (embedding vectors) and ``mask``, its
    token ``ids`` (padded to a fixed-length model's length), its words as written with
    their token positions (those read and at most :data:`TAIL` more), how many words were
    ``cut`` (beyond the model's length or --max-tokens), and how many are ``hidden``:
    after the words kept, counted only."""

    item: InputItem
    x: np.ndarray
    mask: np.ndarray
    ids: np.ndarray
    words: list[tuple[str, int | None]]
    cut: int
    hidden: int = 0


def load(item: InputItem, tokens: Tokenizer, front) -> Document:
    """The document ``item`` (its text, or the file it names) as the input of the model
    whose :class:`~xai_cli.engine.tokens.TextInput` is ``front``."""
    text = item.text
    if text is None:
        try:
            text = Path(item.source).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"cannot read as UTF-8 text: {exc}") from exc
    words, cut, hidden = tokens.words(text)
    if not any(position is not None for _, position in words):
        raise InputError("the document has no words")
    ids = tokens.ids(text)
    if tokens.limit is None and len(ids) > LONGEST_READ:
        raise InputError(f"{len(ids):,} tokens: a model of any length reads a document whole, and "
                         f"one of more than {LONGEST_READ:,} tokens may not fit in memory; give "
                         "--max-tokens N to read its first N tokens (or more, to read it whole)")
    x, mask = front.embed(ids[None])
    return Document(item, x[0], mask[0], ids, words, cut, hidden)
