"""Long files of documents are read as the job goes: memory stays flat in the file's size."""

import io
import tracemalloc

import keras
import numpy as np
import pytest

from xai_cli.session import Options, Report, open_session

WORDS = "cats dogs bark purr on the mat in park at night".split()


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("streaming")
    ids = keras.Input((None,), dtype="int32")
    x = keras.layers.Embedding(len(WORDS) + 2, 4, mask_zero=True)(ids)
    keras.Model(ids, keras.layers.Dense(2)(keras.layers.LSTM(3)(x))).save(folder / "lstm.keras")
    (folder / "vocab.txt").write_text("\n".join(WORDS) + "\n")
    return folder


def corpus(path, lines):
    rng = np.random.default_rng(0)
    with open(path, "w") as f:
        for n in rng.integers(1, 9, lines):
            f.write(" ".join(rng.choice(WORDS, n)) + "\n")
    return path


def loaded_peak(model, path, tmp_path):
    """Documents loaded, and the peak of Python's allocations from discovery to the last
    batch, as every job loads them."""
    tracemalloc.start()
    try:
        session = open_session(Options(str(model / "lstm.keras"), (str(path),), lines=True,
                                       vocab=str(model / "vocab.txt"), out=tmp_path))
        count = sum(len(batch) for batch, _ in session.loaded(Report(io.StringIO(), io.StringIO())))
        return count, session.count, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_file_of_100000_lines_loads_in_the_memory_of_1000(model, tmp_path):
    small = loaded_peak(model, corpus(tmp_path / "small.txt", 1_000), tmp_path)
    large = loaded_peak(model, corpus(tmp_path / "large.txt", 100_000), tmp_path)
    assert small[:2] == (1_000, 1_000) and large[:2] == (100_000, 100_000)
    # a list of 100,000 items (and their texts) alone would take over 20 MB more
    assert large[2] < small[2] + 2 * 2**20, (small[2], large[2])
