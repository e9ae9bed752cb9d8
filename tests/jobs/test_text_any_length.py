"""Text models of any length from the command line: the same word relevances and deletion
curves as a fixed-length copy, --max-tokens, records in input order across length
buckets, resume, shards, and bucketing's figure in xai bench."""

import json

import keras
import numpy as np
import pytest
from test_text import DOCS, LABELS, records, xai

L = keras.layers
LENGTH = 12
LONG = "the cat sat on the mat " * 5   # 30 tokens: longer than the fixed copy reads


def _lstm(vectorizer, inputs):
    x = L.Embedding(40, 8, mask_zero=True, name="embedding")(vectorizer(inputs) if vectorizer else inputs)
    return keras.Model(inputs, L.Dense(2, activation="softmax", name="head")(
        L.Bidirectional(L.LSTM(6), name="bilstm")(x)))


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """A bidirectional LSTM that tokenises strings of any length (a TextVectorization
    without output_sequence_length), trained a little; the same weights taking token ids
    of any length (Input((None,))) and of a fixed length; an unmasked CNN of any length."""
    import tensorflow as tf
    keras.utils.set_random_seed(0)
    folder = tmp_path_factory.mktemp("any-length-models")
    vectorizer = L.TextVectorization(max_tokens=40)
    vectorizer.adapt(DOCS)
    vocabulary = vectorizer.get_vocabulary()
    strings = _lstm(vectorizer, keras.Input((1,), dtype="string"))
    strings.compile("adam", "sparse_categorical_crossentropy")
    strings.fit(tf.constant(DOCS)[:, None], LABELS, epochs=30, verbose=0)
    strings.save(folder / "strings.keras")
    for name, length in (("ids.keras", None), ("fixed.keras", LENGTH)):
        copy = _lstm(None, keras.Input((length,), dtype="int32"))
        for layer in ("embedding", "bilstm", "head"):
            copy.get_layer(layer).set_weights(strings.get_layer(layer).get_weights())
        copy.save(folder / name)
    ids = keras.Input((None,), dtype="int32")
    y = L.Conv1D(6, 3, padding="same", activation="relu")(L.Embedding(40, 8)(ids))
    keras.Model(ids, L.Dense(2)(L.GlobalMaxPooling1D()(y))).save(folder / "cnn.keras")
    (folder / "vocab.txt").write_text("\n".join(vocabulary[2:]) + "\n")
    docs = folder / "docs"
    docs.mkdir()
    for i, text in enumerate([*DOCS, "Cats purr, dogs bark!", LONG]):
        (docs / f"doc{i}.txt").write_text(text)
    lines = folder / "lines.txt"   # lengths 1 to 30 tokens, shuffled
    rng = np.random.default_rng(0)
    words = " ".join(DOCS).split()
    lines.write_text("".join(" ".join(rng.choice(words, n)) + "\n"
                             for n in rng.permutation(np.arange(1, 31))))
    return folder


def words(folder, stem, method="lrp"):
    return json.loads((folder / f"{stem}.{method}.json").read_text())["words"]


def explain(models, model, out, *args):
    vocab = ("--vocab", models / "vocab.txt") if model != "strings.keras" else ()
    result = xai("explain", models / model, models / "docs", "-m", "lrp", "-m", "gradxinput",
                 "--save-raw", "-o", out, *vocab, *args)
    assert result.returncode == 0, result.stderr
    return records(result)


def test_any_length_models_explain_as_their_fixed_length_copy(models, tmp_path):
    fixed = explain(models, "fixed.keras", tmp_path / "fixed", "--max-tokens", LENGTH)
    for model in ("strings.keras", "ids.keras"):
        out = tmp_path / model
        got = explain(models, model, out, "--max-tokens", LENGTH)
        assert [r["input"] for r in got] == [r["input"] for r in fixed]
        for record, reference in zip(got, fixed):
            stem = record["outputs"][0].split("/")[-1].split(".")[0]
            for method in ("lrp", "gradxinput"):
                mine, theirs = words(out, stem, method), words(tmp_path / "fixed", stem, method)
                assert [w for w, _ in mine] == [w for w, _ in theirs]
                np.testing.assert_allclose([r or 0 for _, r in mine], [r or 0 for _, r in theirs],
                                           atol=1e-5)
            assert record["words_cut"] == reference["words_cut"]
            assert record["predicted"] == reference["predicted"]


def test_a_model_of_any_length_reads_a_long_document_whole_unless_cut(models, tmp_path):
    whole = {r["input"]: r for r in explain(models, "strings.keras", tmp_path / "whole")}
    long = whole[str(models / "docs" / "doc7.txt")]
    assert long["tokens"] == 30 and long["words_cut"] == 0
    cut = {r["input"]: r for r in explain(models, "strings.keras", tmp_path / "cut",
                                          "--max-tokens", 8)}
    long = cut[str(models / "docs" / "doc7.txt")]
    assert long["tokens"] == 8 and long["words_cut"] == 22
    assert "the last 22 words were cut" in (tmp_path / "cut" / "doc7.lrp.html").read_text()
    assert sum(r is not None for _, r in words(tmp_path / "cut", "doc7")) == 8


def test_an_unmasked_model_explains_each_document_as_if_alone(models, tmp_path):
    """The CNN's max pooling sees padding, so each document runs at its own length: in a
    batch of documents of every length it gets what it gets alone."""
    lines = models / "lines.txt"
    together = xai("explain", models / "cnn.keras", lines, "--lines", "--vocab",
                   models / "vocab.txt", "-m", "lrp", "--save-raw", "-b", "4", "-o", tmp_path / "all")
    assert together.returncode == 0, together.stderr
    seventh = lines.read_text().splitlines()[6]
    (tmp_path / "one.txt").write_text(seventh)
    alone = xai("explain", models / "cnn.keras", tmp_path / "one.txt", "--vocab",
                models / "vocab.txt", "-m", "lrp", "--save-raw", "-o", tmp_path / "one")
    assert alone.returncode == 0, alone.stderr
    np.testing.assert_allclose([r for _, r in words(tmp_path / "all", "lines_7")],
                               [r for _, r in words(tmp_path / "one", "one")], atol=1e-6)


def test_records_keep_input_order_across_length_buckets(models, tmp_path):
    result = xai("explain", models / "strings.keras", models / "lines.txt", "--lines", "-b", "2",
                 "-m", "sa", "-o", tmp_path)
    assert result.returncode == 0, result.stderr
    assert [r["index"] for r in records(result)] == list(range(1, 31))
    lengths = [r["tokens"] for r in records(result)]
    assert lengths == [len(line.split()) for line in (models / "lines.txt").read_text().splitlines()]


def test_word_deletion_matches_the_fixed_length_copy_and_resumes(models, tmp_path):
    def evaluate(model, out, *args):
        vocab = ("--vocab", models / "vocab.txt") if model != "strings.keras" else ()
        return xai("evaluate", models / model, models / "docs", "-m", "lrp", "--steps", "6",
                   "--replace", "zero", "--replace", "pad", "--max-tokens", LENGTH, "-b", "2",
                   "-o", out, *vocab, *args)
    fixed = evaluate("fixed.keras", tmp_path / "fixed")
    any_length = evaluate("strings.keras", tmp_path / "any")
    assert fixed.returncode == 0 and any_length.returncode == 0, any_length.stderr
    reference = np.genfromtxt(tmp_path / "fixed" / "curves.csv", delimiter=",", names=True, dtype=None)
    got = np.genfromtxt(tmp_path / "any" / "curves.csv", delimiter=",", names=True, dtype=None)
    assert [tuple(r)[:4] for r in got] == [tuple(r)[:4] for r in reference]
    np.testing.assert_allclose(got["score"], reference["score"], atol=1e-5)
    before = (tmp_path / "any" / "curves.csv").read_bytes()
    again = evaluate("strings.keras", tmp_path / "any", "--skip-existing")
    assert again.returncode == 0 and "were done by an earlier run" in again.stderr
    assert (tmp_path / "any" / "curves.csv").read_bytes() == before


def test_shards_of_an_any_length_job_merge_into_the_unsharded_results(models, tmp_path):
    def evaluate(out, *args):
        return xai("evaluate", models / "strings.keras", models / "lines.txt", "--lines", "-m",
                   "lrp", "--steps", "4", "-b", "2", "-o", out, *args)
    assert evaluate(tmp_path / "whole").returncode == 0
    for k in (1, 2):
        assert evaluate(tmp_path / "sharded", "--shard", f"{k}/2").returncode == 0
    merged = xai("report", tmp_path / "sharded")
    assert merged.returncode == 0, merged.stderr
    assert (tmp_path / "sharded" / "curves.csv").read_bytes() == \
        (tmp_path / "whole" / "curves.csv").read_bytes()


def test_bench_times_bucketing_against_padding_to_the_longest(models):
    result = xai("bench", models / "ids.keras", "-m", "lrp", "-r", "text-epsilon", "-b", "4",
                 "--repeats", "1", "--no-end-to-end", "--json")
    assert result.returncode == 0, result.stderr
    mix = json.loads(result.stdout)["bucketing"]
    assert mix["documents"] == 32 and 10 <= mix["lengths"][0] < mix["lengths"][1] <= 200
    assert mix["bucketed"]["documents_per_s"] > 0 and mix["padded_to_longest"]["documents_per_s"] > 0
    assert mix["speedup"] == pytest.approx(
        mix["padded_to_longest"]["seconds"] / mix["bucketed"]["seconds"], rel=0.01)


def test_max_tokens_is_for_text_models(tmp_path):
    from conftest import FIXTURES
    result = xai("explain", FIXTURES / "digits.keras", FIXTURES / "digits", "--max-tokens", "5",
                 "-o", tmp_path)
    assert result.returncode == 2 and "--max-tokens is for text models" in result.stderr


def test_rules_check_conserves_on_a_document_of_any_length(models):
    result = xai("rules", models / "strings.keras", "--check", models / "docs" / "doc7.txt")
    assert result.returncode == 0, result.stderr
    assert "conservation on" in result.stdout and "bilstm/forward" in result.stdout
    cut = xai("rules", models / "strings.keras", "--check", models / "docs" / "doc7.txt",
              "--max-tokens", "3")
    assert cut.returncode == 0, cut.stderr
    assert cut.stdout != result.stdout   # three tokens read, not thirty


def test_the_python_api_explains_token_ids_of_any_length(models):
    import xai_cli
    ids = np.array([[3, 4, 5, 0, 0], [6, 7, 8, 9, 3]], np.int32)
    relevance = xai_cli.explain(str(models / "ids.keras"), ids, "lrp", rules="text-epsilon")
    assert relevance.shape == (2, 5, 8) and not relevance[0, 3:].any()


def test_the_python_api_takes_documents_of_any_length_in_buckets(models, tmp_path):
    """Text of mixed lengths, bucketed as the command line buckets it, gives its JSON; a
    ragged list of token ids gives one (T_i, D) array each, or words with the vocabulary."""
    import xai_cli
    stems = [f"doc{i}" for i in range(len(DOCS) + 2)]
    result = xai("explain", models / "strings.keras", models / "docs", "-b", "2", "--save-raw",
                 "-o", tmp_path)
    assert result.returncode == 0, result.stderr
    texts = [(models / "docs" / f"{stem}.txt").read_text() for stem in stems]
    explained = xai_cli.explain(models / "strings.keras", texts, batch_size=2)
    for stem, document in zip(stems, explained):
        assert document.json() == json.loads((tmp_path / f"{stem}.lrp.json").read_text()), stem
    ids = [np.array(document.tokens, np.int32) for document in explained]
    assert len({len(row) for row in ids}) > 2
    relevance = xai_cli.explain(models / "ids.keras", ids, batch_size=2)
    assert [r.shape for r in relevance] == [(len(row), 8) for row in ids]
    named = xai_cli.explain(models / "ids.keras", ids, vocab=models / "vocab.txt", batch_size=2)
    for document, ours, array in zip(explained, named, relevance):
        np.testing.assert_allclose(ours.relevance, document.relevance, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(array.sum(axis=-1), ours.relevance, rtol=1e-5, atol=1e-7)
        assert [w.text for w in ours.words] == [w.text.lower().strip(",!") for w in document.words
                                                if w.relevance is not None]
