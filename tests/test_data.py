"""Vocabulary and padded batches, checked against answers worked out by hand."""

import numpy as np
import pytest

from rnnac.engine.vocab import Batch, Vocab, make_batch
from rnnac.errors import UnknownCharError

# ---- Vocab ----


def test_vocab_is_the_sorted_distinct_characters_after_the_boundary():
    vocab = Vocab.from_words(["tac", "cat", "act", "z"])
    assert vocab.chars == ["a", "c", "t", "z"]
    assert len(vocab) == 5  # 4 characters + the boundary, id 0


def test_encode_by_hand():
    vocab = Vocab.from_words(["cart", "dog"])  # a c d g o r t -> ids 1..7
    assert vocab.encode("cart") == [2, 1, 6, 7]
    assert vocab.encode("dog") == [3, 5, 4]
    assert vocab.encode("") == []


def test_decode_by_hand_keeps_the_order_and_drops_boundaries():
    vocab = Vocab.from_words(["cart", "dog"])
    assert vocab.decode([2, 1, 6, 7]) == "cart"
    assert vocab.decode([0, 3, 5, 4, 0, 0]) == "dog"  # boundary tokens, as in a padded row
    assert vocab.decode(np.array([7, 1, 2])) == "tac"
    assert vocab.decode([]) == ""


@pytest.mark.parametrize("word", ["cart", "trac", "a", "dogcart", "ttcca", "ab" * 20])
def test_decode_inverts_encode(word):
    vocab = Vocab.from_words(["cart", "dog", "b"])
    assert vocab.decode(vocab.encode(word)) == word


def test_unknown_characters():
    vocab = Vocab.from_words(["abc"])
    assert vocab.unknown_char("cab") is None
    assert vocab.unknown_char("cxayb") == "x"  # the first one
    with pytest.raises(UnknownCharError) as info:
        vocab.encode("abz")
    assert info.value.char == "z" and "'z'" in str(info.value)


@pytest.mark.parametrize("chars", [["a", "b", "a"], ["a", "bc"], [""]])
def test_vocab_refuses_repeated_or_non_single_characters(chars):
    with pytest.raises(ValueError, match="distinct single characters"):
        Vocab(chars)


def test_vocab_equality_is_by_characters():
    assert Vocab.from_words(["ba"]) == Vocab(["a", "b"])
    assert Vocab(["a", "b"]) != Vocab(["b", "a"])  # same set, other ids
    assert Vocab(["a"]) != ["a"]


# ---- make_batch ----


def test_make_batch_by_hand():
    vocab = Vocab.from_words(["ab"])  # a=1, b=2
    batch = make_batch(["ab", "b", "bab"], vocab)
    # B = 3 words, T = longest (3) + 1. Input [0, w], target [w, 0], then padding (0, mask 0).
    np.testing.assert_array_equal(batch.inputs, [[0, 1, 2, 0],
                                                 [0, 2, 0, 0],
                                                 [0, 2, 1, 2]])
    np.testing.assert_array_equal(batch.targets, [[1, 2, 0, 0],
                                                  [2, 0, 0, 0],
                                                  [2, 1, 2, 0]])
    np.testing.assert_array_equal(batch.mask, [[1, 1, 1, 0],
                                               [1, 1, 0, 0],
                                               [1, 1, 1, 1]])
    assert batch.inputs.dtype.kind == "i" and batch.targets.dtype.kind == "i"
    assert batch.n_targets == 3 + 2 + 4  # each word's letters plus its end
    assert isinstance(batch.n_targets, int)


def test_each_row_decodes_back_to_its_word():
    words = ["apple", "pal", "l", "leap", "applepal"]
    vocab = Vocab.from_words(words)
    batch = make_batch(words, vocab)
    for row, word in enumerate(words):
        assert vocab.decode(batch.inputs[row]) == word
        assert vocab.decode(batch.targets[row][batch.mask[row] > 0]) == word
        # The input is the target shifted right by one, behind the boundary.
        n = len(word) + 1
        np.testing.assert_array_equal(batch.inputs[row, 1:n], batch.targets[row, : n - 1])


def test_one_letter_words_and_a_single_word():
    vocab = Vocab.from_words(["x"])
    batch = make_batch(["x"], vocab)
    assert batch.inputs.tolist() == [[0, 1]] and batch.targets.tolist() == [[1, 0]]
    assert batch.mask.tolist() == [[1.0, 1.0]] and batch.n_targets == 2


def test_n_targets_counts_the_mask():
    batch = Batch(np.zeros((2, 3), int), np.zeros((2, 3), int), np.array([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]]))
    assert batch.n_targets == 3


def test_make_batch_errors():
    vocab = Vocab.from_words(["ab"])
    with pytest.raises(ValueError, match="at least one word"):
        make_batch([], vocab)
    with pytest.raises(UnknownCharError):
        make_batch(["ab", "abc"], vocab)
