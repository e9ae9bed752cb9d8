"""Documents and tokens: xai's tokeniser is Keras' TextVectorization, word for word."""

import io
from pathlib import Path

import keras
import numpy as np
import pytest

from xai_cli.engine.tokens import TextInput, Vectorizer
from xai_cli.errors import InputError, XaiError
from xai_cli.io import documents
from xai_cli.io.inputs import InputItem

TRICKY = [
    "The CAT sat, on the mat!",
    "e-mail: a.b@example.org (don't) -- ok?",
    "Ünïcode WORDS stay Ünïcode; ÄBC lower-cases only ASCII",
    "tabs\tand\nnewlines   and  spaces",
    "non\u00a0breaking space and \u2014 dashes",
    "...!!! ,,, ''",
    "one two three four five six seven eight nine ten eleven twelve",
]


@pytest.fixture(scope="module")
def vectorizer():
    layer = keras.layers.TextVectorization(max_tokens=60, output_sequence_length=8)
    layer.adapt(TRICKY)
    return layer


def test_ids_are_those_of_text_vectorization(vectorizer):
    tokens = documents.Tokenizer(tuple(vectorizer.get_vocabulary()), 8, pad_to=8)
    texts = [*TRICKY, "unseen zzz qqq"]
    expected = np.asarray(vectorizer(np.array(texts, dtype=object)))
    got = np.stack([tokens.ids(t) for t in texts])
    np.testing.assert_array_equal(got, expected)
    assert (got[-1][:3] == 1).all()   # unknown words


def test_words_keep_the_text_as_written_and_map_onto_tokens(vectorizer):
    tokens = documents.Tokenizer(tuple(vectorizer.get_vocabulary()), 8, pad_to=8)
    words, cut, hidden = tokens.words("The CAT sat, -- on the mat!")
    assert [w for w, _ in words] == ["The", "CAT", "sat,", "--", "on", "the", "mat!"]
    assert [p for _, p in words] == [0, 1, 2, None, 3, 4, 5]
    assert cut == hidden == 0
    long, cut, hidden = tokens.words(TRICKY[-1])
    assert [p for _, p in long][7:] == [7, None, None, None, None]
    assert cut == 4 and hidden == 0


def test_what_is_kept_of_a_long_document_is_bounded():
    """The words read, then TAIL more; the rest counted, and words shortened."""
    tokens = documents.Tokenizer(("", "[UNK]", "w"), 8)
    text = " ".join(["w"] * 8 + ["--"] + ["w", "!"] * 100_000 + ["x" * 1000])
    words, cut, hidden = tokens.words(text)
    assert len(words) == 8 + 1 + documents.TAIL
    assert [p for _, p in words[:9]] == [*range(8), None]
    assert cut == 100_001 and hidden == 200_001 - documents.TAIL
    whole, cut, hidden = documents.Tokenizer(("", "[UNK]", "w"), None).words(text)
    assert len(whole) == 200_010 and cut == hidden == 0
    assert whole[-1][0] == "x" * (documents.LONGEST_WORD - 1) + "…"


def test_vocabulary_file_in_text_vectorization_format(tmp_path, vectorizer):
    path = tmp_path / "vocab.txt"
    path.write_text("\n".join(vectorizer.get_vocabulary()[2:]) + "\n", encoding="utf-8")
    assert documents.read_vocabulary(str(path)) == tuple(vectorizer.get_vocabulary()[2:])
    listed = tmp_path / "listed.txt"   # as get_vocabulary() lists it: padding and unknown first
    listed.write_text("\n".join(vectorizer.get_vocabulary()), encoding="utf-8")
    assert documents.read_vocabulary(str(listed)) == tuple(vectorizer.get_vocabulary()[2:])
    front = TextInput(8, np.zeros((60, 3), np.float32), True, None)
    tokens = documents.tokenizer(front, str(path))
    np.testing.assert_array_equal(tokens.ids(TRICKY[0]), np.asarray(vectorizer(np.array([TRICKY[0]],
                                                                                         dtype=object)))[0])


def test_vocabulary_problems_are_clear(tmp_path):
    front = TextInput(8, np.zeros((5, 3), np.float32), True, None)
    with pytest.raises(XaiError, match="--vocab FILE"):
        documents.tokenizer(front, None)
    big = tmp_path / "big.txt"
    big.write_text("\n".join(f"w{i}" for i in range(10)))
    with pytest.raises(XaiError, match="more than the model's embedding has rows"):
        documents.tokenizer(front, str(big))
    with pytest.raises(XaiError, match="cannot read vocabulary"):
        documents.tokenizer(front, str(tmp_path / "missing.txt"))
    own = TextInput(8, np.zeros((5, 3), np.float32), True, Vectorizer(("", "[UNK]", "a"), "lower"))
    with pytest.raises(XaiError, match="leave --vocab out"):
        documents.tokenizer(own, str(big))


def test_discover_files_folders_lines_and_stdin(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "b.txt").write_text("second doc")
    (tmp_path / "docs" / "a.txt").write_text("first doc")
    (tmp_path / "docs" / "skip.md").write_text("not a txt")
    (tmp_path / "bad.txt").write_bytes(b"\xff\xfe\xfa not utf-8")
    lines = tmp_path / "lines.txt"
    lines.write_text("one\n\ntwo words\n")
    items, problems = documents.discover(
        [str(tmp_path / "docs"), str(tmp_path / "bad.txt"), str(tmp_path / "nope.txt")], False, None)
    assert [Path(i.source).name for i in items] == ["a.txt", "b.txt", "bad.txt"]
    assert [p[0] for p in problems] == [str(tmp_path / "nope.txt")]
    tokens = documents.Tokenizer(("", "[UNK]", "first", "doc"), 4, pad_to=4)
    front = TextInput(4, np.zeros((4, 2), np.float32), True, None)
    assert documents.load(items[0], tokens, front).ids.tolist() == [2, 3, 0, 0]
    with pytest.raises(InputError, match="cannot read as UTF-8 text"):
        documents.load(items[2], tokens, front)   # reported when loaded, as a failed input
    items, problems = documents.discover([str(lines), str(tmp_path / "bad.txt"), "-"], True,
                                         io.StringIO("from stdin\nand more\n"))
    assert len(items) == 4 and [p[0] for p in problems] == [str(tmp_path / "bad.txt")]
    assert [(i.source.rsplit("/", 1)[-1], i.stem, i.text) for i in items] == [
        ("lines.txt:1", "lines_1", "one"), ("lines.txt:3", "lines_3", "two words"),
        ("-:1", "stdin_1", "from stdin"), ("-:2", "stdin_2", "and more")]


def test_a_model_of_any_length_refuses_a_document_too_long_to_read_whole(monkeypatch):
    """Reading it would take memory in proportion (the shipped LSTM: about 19 kB a token);
    --max-tokens reads it cut, or whole."""
    monkeypatch.setattr(documents, "LONGEST_READ", 10)
    front = TextInput(None, np.zeros((5, 3), np.float32), True, None)
    item = InputItem("long.txt", "long", text=" ".join(["w"] * 11))
    with pytest.raises(InputError, match=r"11 tokens: a model of any length .* give --max-tokens N"):
        documents.load(item, documents.Tokenizer(("", "[UNK]", "w"), None), front)
    for limit in (5, 11):
        loaded = documents.load(item, documents.Tokenizer(("", "[UNK]", "w"), limit), front)
        assert len(loaded.ids) == limit and loaded.cut == 11 - limit
