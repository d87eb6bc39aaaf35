import math

import numpy as np
import pytest

from rnnac.baselines import CharNGram, FrequencyTrie, PrefixRanker, events, fit_ngram
from rnnac.data import Vocab

WORDS = ["abc", "a", "cabba", "bb", "abcab", "ba", "cab", "acca"]


# ---- frequency trie ----


def test_trie_most_frequent_first_ties_alphabetical():
    trie = FrequencyTrie(["car", "cat", "cart", "dog", "care", "cab"], [5, 3, 2, 4, 3, 3])
    assert trie.rank_completions("c", 3) == ["car", "cab", "care"]  # cab, care, cat tie at 3: alphabetical
    assert trie.rank_completions("ca", 10) == ["car", "cab", "care", "cat", "cart"]
    assert trie.rank_completions("car", 2) == ["car", "care"]
    assert trie.rank_completions("cart", 5) == ["cart"]  # the prefix itself is a word
    assert trie.rank_completions("", 2) == ["car", "dog"]  # nothing typed: the most frequent words
    assert trie.rank_completions("x", 5) == [] and trie.rank_completions("carts", 5) == []
    assert trie.rank_many(["d", "ca"], 1) == [["dog"], ["car"]]


def test_trie_merges_repeated_words_and_defaults_to_alphabetical():
    assert FrequencyTrie(["b", "a", "b"]).rank_completions("", 2) == ["b", "a"]  # b counted twice
    assert FrequencyTrie(["b", "c", "a"]).rank_completions("", 3) == ["a", "b", "c"]  # no counts: all tie


def test_prefix_ranker_matches_brute_force():
    rng = np.random.default_rng(0)
    words = sorted({"".join(rng.choice(list("abc"), size=rng.integers(1, 6))) for _ in range(300)})
    scores = rng.integers(0, 5, size=len(words)).astype(float)  # many ties
    ranker = PrefixRanker(words, scores)
    for prefix in ["", "a", "b", "ab", "cc", "abc", "bca", "cccc", "d"]:
        for k in (1, 3, 7, 1000):
            expected = sorted((w for w in words if w.startswith(prefix)), key=lambda w: (-scores[words.index(w)], w))
            assert ranker.rank_completions(prefix, k) == expected[:k]


def test_prefix_ranker_rejects_bad_input():
    with pytest.raises(ValueError, match="distinct"):
        PrefixRanker(["a", "a"], [1, 2])
    with pytest.raises(ValueError, match="scores"):
        PrefixRanker(["a", "b"], [1])


# ---- character n-gram ----


def test_events_pad_the_start_and_predict_the_end():
    vocab = Vocab.from_words(["ab"])  # a = 1, b = 2, K = 3
    contexts, nexts, owner = events(["ab", "b"], vocab, 3)
    # contexts coded in base 3: [0, 0] -> 0, [0, a] -> 1, [a, b] -> 5, [0, b] -> 2
    assert contexts.tolist() == [0, 1, 5, 0, 2]
    assert nexts.tolist() == [1, 2, 0, 2, 0]
    assert owner.tolist() == [0, 0, 0, 1, 1]


def test_bigram_add_one_by_hand():
    vocab = Vocab.from_words(["ab"])  # K = 3
    ngram = CharNGram(vocab, 2, 1.0).fit(["ab", "b"])
    # after the boundary: a once, b once (2 events); after a: b once; after b: the end twice
    expected = math.log((1 + 1) / (2 + 3)) + math.log((1 + 1) / (1 + 3)) + math.log((2 + 1) / (2 + 3))
    assert ngram.word_logprobs(["ab"])[0] == pytest.approx(expected)
    assert np.exp(ngram.next_logprobs([[0]])[0]) == pytest.approx([1 / 5, 2 / 5, 2 / 5])
    unseen = Vocab.from_words(["abc"])  # c is in the vocabulary but never seen
    assert np.exp(CharNGram(unseen, 2, 0.5).fit(["ab"]).next_logprobs([[3]])[0]) == pytest.approx([0.25] * 4)


@pytest.mark.parametrize("order", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("add_k", [0.01, 1.0])
def test_ngram_next_char_probabilities_sum_to_one(order, add_k):
    vocab = Vocab.from_words(WORDS)
    ngram = CharNGram(vocab, order, add_k).fit(WORDS, weights=np.arange(1, len(WORDS) + 1))
    rng = np.random.default_rng(order)
    contexts = rng.integers(0, len(vocab), size=(50, order - 1))  # seen and unseen contexts
    contexts[0] = 0  # the start of a word
    logp = ngram.next_logprobs(contexts)  # (50, K)
    assert logp.shape == (50, len(vocab))
    np.testing.assert_allclose(np.exp(logp).sum(axis=1), 1.0, rtol=1e-12)


@pytest.mark.parametrize("order", [1, 2, 4])
def test_word_logprob_is_the_sum_of_next_char_logprobs(order):
    vocab = Vocab.from_words(WORDS)
    ngram = CharNGram(vocab, order, 0.1).fit(WORDS[:5])
    for word in ["cab", "ca", "bbbbbbb", "c"]:
        ids = [0] * (order - 1) + vocab.encode(word) + [0]
        expected = sum(ngram.next_logprobs([ids[t - order + 1 : t]])[0, ids[t]] for t in range(order - 1, len(ids)))
        assert ngram.word_logprobs([word])[0] == pytest.approx(expected)


def test_ngram_total_probability_of_all_words_is_one():
    """Words up to length L plus every (L+1)-letter prefix (each continuing somehow) cover all outcomes."""
    vocab = Vocab.from_words(["ab"])
    ngram = CharNGram(vocab, 3, 0.2).fit(["ab", "abb", "b", "ba"])
    L = 4
    strings = [""]
    total = 0.0
    for _ in range(L + 1):
        total += np.exp(ngram.word_logprobs(strings)).sum()
        strings = [s + ch for s in strings for ch in "ab"]
    def prefix_logprob(s):
        ids = [0, 0] + vocab.encode(s)
        return sum(ngram.next_logprobs([ids[t - 2 : t]])[0, ids[t]] for t in range(2, len(ids)))
    total += sum(math.exp(prefix_logprob(s)) for s in strings)
    assert total == pytest.approx(1.0)


def test_fit_ngram_picks_the_best_of_the_grid():
    # Words built from a 3-character cycle: order 3 sees the pattern, order 2 cannot.
    rng = np.random.default_rng(0)
    cycle = "abcacb"
    words = sorted({cycle[s:] + cycle * 2 for s in range(6)} | {"".join(cycle[(s + i) % 6] for i in range(n))
                                                             for s in range(6) for n in range(2, 9)})
    rng.shuffle(words)
    ngram, grid = fit_ngram(words, Vocab.from_words(words), orders=(2, 3), add_ks=(0.01, 1.0), tune_fraction=0.3)
    assert [(g["order"], g["add_k"]) for g in grid] == [(2, 0.01), (2, 1.0), (3, 0.01), (3, 1.0)]
    best = min(grid, key=lambda g: g["tune_nll_per_char"])
    assert (ngram.order, ngram.add_k) == (best["order"], best["add_k"]) and ngram.order == 3


def test_ngram_rejects_bad_settings():
    vocab = Vocab.from_words(["ab"])
    with pytest.raises(ValueError, match="order"):
        CharNGram(vocab, 0, 1.0)
    with pytest.raises(ValueError, match="add_k"):
        CharNGram(vocab, 2, 0.0)
    with pytest.raises(ValueError, match="two words"):
        fit_ngram(["ab"], vocab)
