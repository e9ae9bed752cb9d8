"""Word deletion: the order words go in, what a deleted word becomes, and the curves."""

import numpy as np
import pytest

from xai_cli.engine.tokens import TextInput
from xai_cli.kinds import deletion

RNGS = [np.random.default_rng(i) for i in range(2)]


def test_ranks_put_padding_last_and_follow_the_order():
    scores = np.array([[0.5, -1.0, 2.0, 0.0, 9.0], [1.0, 1.0, 3.0, 0.0, 0.0]])
    tokens = np.array([[1, 1, 1, 1, 0], [1, 1, 1, 0, 0]], bool)
    morf = deletion.token_ranks(scores, tokens, "morf", RNGS)
    np.testing.assert_array_equal(morf, [[1, 3, 0, 2, 5], [1, 2, 0, 5, 5]])   # ties: earlier first
    lerf = deletion.token_ranks(scores, tokens, "lerf", RNGS)
    np.testing.assert_array_equal(lerf, [[2, 0, 3, 1, 5], [0, 1, 2, 5, 5]])
    random = deletion.token_ranks(scores, tokens, "random", RNGS)
    assert sorted(random[0][:4]) == [0, 1, 2, 3] and random[0][4] == 5
    with pytest.raises(ValueError):
        deletion.token_ranks(scores, tokens, "sideways", RNGS)


@pytest.mark.parametrize("replace, mask_zero, vector, masked", [
    ("zero", True, [0, 0], False), ("unknown", True, [1, 1], False), ("pad", True, [0.5, 0.5], True),
    ("pad", False, [0.5, 0.5], False)])
def test_a_deleted_word_becomes(replace, mask_zero, vector, masked):
    embeddings = np.array([[0.5, 0.5], [1, 1], [2, 2], [3, 3]], np.float32)
    front = TextInput(3, embeddings, mask_zero, None)
    x, mask = front.embed(np.array([[2, 3, 0]]))
    gone = np.array([[False, True, False]])
    out, out_mask = deletion.deleted(x, mask, gone, replace, front)
    np.testing.assert_array_equal(out[0, 1], vector)
    np.testing.assert_array_equal(out[0, [0, 2]], x[0, [0, 2]])
    assert out_mask[0, 1] == (0 if masked else mask[0, 1])


def test_curves_delete_words_cumulatively_in_chunks():
    """A linear 'model' (the sum of the embeddings' first entries): each step removes the
    next ranked word's value, whatever the chunking."""
    embeddings = np.array([[0, 0], [0, 0], [1, 0], [10, 0], [100, 0]], np.float32)
    front = TextInput(4, embeddings, True, None)
    x, mask = front.embed(np.array([[2, 3, 4, 0], [4, 2, 0, 0]]))
    ranks = np.array([[2, 1, 0, 4], [0, 1, 4, 4]])

    def score(copies, masks, documents):
        total = copies[..., 0].sum(axis=1)
        return total, total > 5

    for chunk in (1, 3, 100):
        got, kept = deletion.curves(score, x, mask, ranks, "zero", front, steps=4, words=1, chunk=chunk)
        np.testing.assert_array_equal(got, [[111, 11, 1, 0, 0], [101, 1, 0, 0, 0]])
        np.testing.assert_array_equal(kept, [[1, 1, 0, 0, 0], [1, 0, 0, 0, 0]])
    two, _ = deletion.curves(score, x, mask, ranks, "zero", front, steps=2, words=2, chunk=2)
    np.testing.assert_array_equal(two, [[111, 1, 0], [101, 0, 0]])
    tokens = np.array([[1, 1, 1, 0], [1, 1, 0, 0]], bool)
    np.testing.assert_allclose(deletion.fractions(ranks, tokens, 3, 1), [[0, 1 / 3, 2 / 3, 1], [0, .5, 1, 1]])
