"""Text models from the command line: word heatmaps, records, word deletion, and refusals."""

import csv
import json
import subprocess
import sys

import keras
import numpy as np
import pytest
from PIL import Image

L = keras.layers
DOCS = ["the cat sat on the mat and purred", "dogs bark loudly at night in the park",
        "a quiet cat sleeps on a warm mat", "loud dogs run and bark in the park",
        "cats purr and dogs bark", "the night sky over the park was loud"]
LABELS = np.array([0, 1, 0, 1, 0, 1])
LENGTH = 10


def xai(*args, stdin=None):
    return subprocess.run([sys.executable, "-m", "xai_cli", *map(str, args)], capture_output=True,
                          text=True, input=stdin, timeout=600)


def records(result):
    return [json.loads(line) for line in result.stdout.splitlines()]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """A bidirectional LSTM that tokenises its strings itself, and a Conv1D over token ids
    with a vocabulary file, both trained a little on cats and dogs."""
    import tensorflow as tf
    keras.utils.set_random_seed(0)
    folder = tmp_path_factory.mktemp("text-models")
    vectorizer = L.TextVectorization(max_tokens=40, output_sequence_length=LENGTH)
    vectorizer.adapt(DOCS)
    strings = keras.Input((1,), dtype="string")
    x = L.Embedding(40, 8, mask_zero=True)(vectorizer(strings))
    lstm = keras.Model(strings, L.Dense(2, activation="softmax")(L.Bidirectional(L.LSTM(6))(x)))
    lstm.compile("adam", "sparse_categorical_crossentropy")
    lstm.fit(tf.constant(DOCS)[:, None], LABELS, epochs=40, verbose=0)
    lstm.save(folder / "lstm.keras")
    ids = keras.Input((LENGTH,), dtype="int32")
    y = L.Conv1D(6, 3, padding="same", activation="relu")(L.Embedding(40, 8)(ids))
    cnn = keras.Model(ids, L.Dense(2)(L.GlobalMaxPooling1D()(y)))
    cnn.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    cnn.fit(np.asarray(vectorizer(tf.constant(DOCS))), LABELS, epochs=40, verbose=0)
    cnn.save(folder / "cnn.keras")
    (folder / "vocab.txt").write_text("\n".join(vectorizer.get_vocabulary()[2:]) + "\n")
    (folder / "labels.txt").write_text("cats\ndogs\n")
    docs = folder / "docs"
    docs.mkdir()
    (docs / "cat.txt").write_text("The cat sat, purring, on the mat! <b>&amp;</b>")
    (docs / "dogs.txt").write_text("Dogs bark at night in the park.")
    return folder


def test_explain_writes_word_heatmaps_and_records(models, tmp_path):
    result = xai("explain", models / "lstm.keras", models / "docs", "-m", "lrp", "-m", "sa",
                 "--labels", models / "labels.txt", "--save-raw", "-o", tmp_path)
    assert result.returncode == 0, result.stderr
    cat, dogs = records(result)
    assert cat["predicted_label"] == "cats" and dogs["predicted_label"] == "dogs"
    assert cat["tokens"] == 8 and cat["words_cut"] == 0   # '<b>&amp;</b>' is the token 'bampb'
    for method in ("lrp", "sa"):
        for suffix in ("html", "png", "json", "npy"):
            assert (tmp_path / f"cat.{method}.{suffix}").is_file()
    page = (tmp_path / "cat.lrp.html").read_text()
    assert "purring," in page and "<b>" not in page and "&lt;b&gt;" in page
    raw = json.loads((tmp_path / "cat.lrp.json").read_text())
    relevance = np.load(tmp_path / "cat.lrp.npy")
    assert relevance.shape == (LENGTH, 8)
    np.testing.assert_allclose(sum(r for _, r in raw["words"] if r is not None),
                               cat["relevance_sum"]["lrp"], rtol=1e-4)
    assert cat["padding_relevance"]["lrp"] == 0     # masked: padding holds none
    assert raw["words"][3] == ["purring,", raw["relevance"][3]]
    top = cat["top_words"]["lrp"]
    assert set(top) == {"for", "against"} and top["for"]
    assert set(cat["top_words"]["sa"]) == {"most"}
    picture = np.asarray(Image.open(tmp_path / "cat.lrp.png").convert("RGB"))
    assert picture.shape[1] > 200


def test_a_document_of_200000_words_writes_outputs_of_a_normal_size(models, tmp_path):
    """Issue 37: such a document wrote a PNG of 900 x 373,458 pixels. The model reads LENGTH
    tokens; the heatmaps show those, a short uncoloured tail and the count of the rest."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "normal.txt").write_text(DOCS[0])
    (docs / "book.txt").write_text(" ".join([DOCS[1]] * 25_000))   # 200,000 words
    result = xai("explain", models / "lstm.keras", docs, "-m", "lrp", "--save-raw", "-o", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    book, _ = records(result)
    assert book["words_cut"] == 200_000 - LENGTH and book["tokens"] == LENGTH
    out = tmp_path / "out"
    for suffix in ("html", "png", "json"):
        size, usual = ((out / f"{stem}.lrp.{suffix}").stat().st_size for stem in ("book", "normal"))
        assert size < 8 * usual, suffix
    width, height = Image.open(out / "book.lrp.png").size
    assert width == 900 and height < 3 * Image.open(out / "normal.lrp.png").size[1]
    raw = json.loads((out / "book.lrp.json").read_text())
    assert len(raw["tokens"]) == len(raw["relevance"]) == LENGTH
    assert raw["words_cut"] == 200_000 - LENGTH
    assert len(raw["words"]) + raw["words_not_shown"] == 200_000
    assert all(r is None for _, r in raw["words"][LENGTH:])
    assert "more words not shown" in (out / "book.lrp.html").read_text()


def test_token_ids_model_with_vocabulary_lines_and_stdin(models, tmp_path):
    result = xai("explain", models / "cnn.keras", "-", "--lines", "--vocab", models / "vocab.txt",
                 "-m", "gradxinput", "-o", tmp_path, stdin="the cat purred\n\ndogs bark loudly\n")
    assert result.returncode == 0, result.stderr
    first, second = records(result)
    assert (first["input"], second["input"]) == ("-:1", "-:3")
    assert (tmp_path / "stdin_3.gradxinput.html").is_file()
    assert "padding_relevance" in first


@pytest.mark.parametrize("args, message", [
    (("cnn.keras", "docs"), "--vocab FILE"),
    (("lstm.keras", "docs", "--vocab", "vocab.txt"), "leave --vocab out"),
    (("lstm.keras", "docs", "--grid"), "--grid is for images"),
])
def test_text_usage_errors_exit_2(models, tmp_path, args, message):
    result = xai("explain", *[models / a if (models / a).exists() else a for a in args], "-o", tmp_path)
    assert result.returncode == 2 and message in result.stderr
    assert not list(tmp_path.glob("*.html"))


def test_unsupported_text_layer_is_named(tmp_path):
    inputs = keras.Input((LENGTH,), dtype="int32")
    x = L.Embedding(40, 8)(inputs)
    x = L.GroupQueryAttention(4, 2, 1, name="gqa")(x, x)
    keras.Model(inputs, L.Dense(2)(L.GlobalAveragePooling1D()(x))).save(tmp_path / "attention.keras")
    result = xai("explain", tmp_path / "attention.keras", tmp_path, "-o", tmp_path / "out")
    assert result.returncode == 2
    assert "'gqa' (GroupedQueryAttention)" in result.stderr


def test_word_deletion_writes_the_evaluate_files(models, tmp_path):
    lines = tmp_path / "docs.txt"
    lines.write_text("\n".join(DOCS) + "\n")
    result = xai("evaluate", models / "lstm.keras", lines, "--lines", "-m", "lrp", "-m", "sa",
                 "--replace", "zero", "--replace", "pad", "--steps", "5", "-o", tmp_path / "out",
                 "--require", "n_images == 6")
    assert result.returncode == 0, result.stderr
    assert "replace zero (6 documents, 1 word per step, 5 steps, morf)" in result.stderr
    curves = np.genfromtxt(tmp_path / "out" / "curves.csv", delimiter=",", names=True, dtype=None,
                           encoding="utf-8")
    assert set(curves["replace"]) == {"zero", "pad"}
    assert set(curves["method"]) == {"lrp", "sa", "random"}
    first = curves[(curves["image"] == "docs_1") & (curves["method"] == "lrp")
                   & (curves["replace"] == "zero")]
    np.testing.assert_allclose(first["fraction_perturbed"], np.arange(6) / 8)   # 8 words
    summary = (tmp_path / "out" / "summary.csv").read_text()
    assert "lrp,zero,6," in summary and ",1 word," in summary
    assert (tmp_path / "out" / "curves.png").is_file()
    decisions = np.genfromtxt(tmp_path / "out" / "decisions.csv", delimiter=",", names=True,
                              dtype=None, encoding="utf-8")
    assert len(decisions) == 3 * 2 * 6 and set(decisions["n_documents"]) == {6}
    assert (decisions["still_explained_class"][decisions["step"] == 0] == 1).all()
    lrp = decisions[(decisions["method"] == "lrp") & (decisions["replace"] == "pad")]
    assert lrp["still_explained_class"][-1] < 1   # five of its best words gone: decisions flip


def test_image_protocols_are_refused_for_documents(models, tmp_path):
    result = xai("evaluate", models / "lstm.keras", models / "docs", "--replace", "blur", "-o", tmp_path)
    assert result.returncode == 2 and "--replace blur is for images" in result.stderr


def test_image_options_are_refused_for_documents(models, tmp_path):
    result = xai("evaluate", models / "lstm.keras", models / "docs", "--save-heatmaps", "-o", tmp_path)
    assert result.returncode == 2 and "--save-heatmaps is for images" in result.stderr


def test_image_commands_refuse_text_models(models, tmp_path):
    result = xai("spray", models / "lstm.keras", models / "docs", "--target", "0", "-o", tmp_path)
    assert result.returncode == 2 and "xai spray works on image models" in result.stderr


def test_magnitudes_on_text_rise_from_white():
    """sa's words: the sequential map reversed, so unimportant words stay nearly plain."""
    from xai_cli.io.render import Style
    from xai_cli.kinds.words import on_white
    assert on_white(Style(sequential="afmhot")).sequential == "afmhot_r"
    assert on_white(Style(sequential="viridis_r")).sequential == "viridis"


def test_the_python_api_takes_token_ids_as_the_command_line_does(models, tmp_path):
    """The document kind converts token ids for the API: their relevance is the CLI's
    --save-raw relevance of the same documents, and evaluate deletes words."""
    import xai_cli
    result = xai("explain", models / "cnn.keras", models / "docs", "--vocab", models / "vocab.txt",
                 "--save-raw", "-o", tmp_path)
    assert result.returncode == 0, result.stderr
    ids = np.array([json.loads((tmp_path / f"{s}.lrp.json").read_text())["tokens"]
                    for s in ("cat", "dogs")])
    relevance = xai_cli.explain(models / "cnn.keras", ids)
    assert relevance.shape == (2, LENGTH, 8)
    for row, stem in zip(relevance, ("cat", "dogs")):
        np.testing.assert_allclose(row, np.load(tmp_path / f"{stem}.lrp.npy"), rtol=1e-5,
                                   atol=1e-7)
    np.testing.assert_allclose(xai_cli.explain(models / "cnn.keras", ids[1]), relevance[1],
                               rtol=1e-5, atol=1e-7)
    evaluation = xai_cli.evaluate(models / "cnn.keras", ids, ("lrp",), steps=3)
    assert {(r["method"], r["replace"], r["n_images"]) for r in evaluation.summary} == \
        {("lrp", "zero", 2), ("random", "zero", 2)}


def test_the_python_api_takes_documents_and_gives_what_save_raw_writes(models, tmp_path):
    """Issue 37: text in, per-word relevance out, equal to --save-raw's JSON and .npy; token
    ids with a vocabulary likewise, their words named by it."""
    import xai_cli
    texts = [(models / "docs" / f"{stem}.txt").read_text() for stem in ("cat", "dogs")]
    for model, extra in (("lstm.keras", ()), ("cnn.keras", ("--vocab", models / "vocab.txt"))):
        out = tmp_path / model
        result = xai("explain", models / model, models / "docs", "-m", "lrp", "-m", "sa",
                     "--save-raw", *extra, "-o", out)
        assert result.returncode == 0, result.stderr
        vocab = models / "vocab.txt" if extra else None
        for method in ("lrp", "sa"):
            explained = xai_cli.explain(models / model, texts, method, vocab=vocab)
            assert [type(w).__name__ for w in explained] == ["WordRelevance"] * 2
            for stem, document in zip(("cat", "dogs"), explained):
                written = json.loads((out / f"{stem}.{method}.json").read_text())
                assert document.json() == written
                np.testing.assert_array_equal(document.embedding.astype(np.float32),
                                              np.load(out / f"{stem}.{method}.npy"))
    one = xai_cli.explain(models / "lstm.keras", texts[0])   # one string: one document back
    assert [w.text for w in one.words][:3] == ["The", "cat", "sat,"] and one.words_cut == 0
    ids = np.array(json.loads((tmp_path / "cnn.keras" / "cat.lrp.json").read_text())["tokens"])
    named = xai_cli.explain(models / "cnn.keras", ids, vocab=models / "vocab.txt")
    assert [w.text for w in named.words] == ["the", "cat", "sat", "[UNK]", "on", "the", "mat", "[UNK]"]
    assert [w.relevance for w in named.words] == pytest.approx(named.relevance[:8])
    assert named.relevance == pytest.approx(xai_cli.explain(models / "cnn.keras", texts[0],
                                                            vocab=models / "vocab.txt").relevance)


def test_the_python_api_evaluates_documents_as_the_command_line_does(models, tmp_path):
    import xai_cli
    lines = tmp_path / "docs.txt"
    lines.write_text("\n".join(DOCS) + "\n")
    result = xai("evaluate", models / "lstm.keras", lines, "--lines", "-m", "lrp", "--steps", "4",
                 "-o", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    written = {r["method"]: float(r["aopc"])
               for r in csv.DictReader(open(tmp_path / "out" / "summary.csv"))}
    evaluation = xai_cli.evaluate(models / "lstm.keras", DOCS, ("lrp",), steps=4)
    assert {r["method"]: r["aopc"] for r in evaluation.summary} == pytest.approx(written, rel=1e-6)


@pytest.mark.parametrize("inputs, message", [
    ([1.5, 2.0], "do not fit the text model's input: give a string or a list of strings"),
    ([], "no documents given"),
    (["fine", ""], "document 1: the document has no words"),
    ([{"a": 1}], "give a string or a list of strings"),
])
def test_the_python_api_refuses_what_is_not_a_document_in_words(models, inputs, message):
    import xai_cli
    from xai_cli.errors import XaiError
    with pytest.raises(XaiError, match=message):
        xai_cli.explain(models / "lstm.keras", inputs)


def test_the_python_api_needs_a_vocabulary_to_read_text_for_a_model_of_token_ids(models):
    import xai_cli
    from xai_cli.errors import XaiError
    with pytest.raises(XaiError, match="--vocab FILE"):
        xai_cli.explain(models / "cnn.keras", ["the cat"])
