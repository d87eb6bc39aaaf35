import functools
import math
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rnnac.engine.vocab import Vocab
from rnnac.evaluation import baselines
from rnnac.evaluation.baselines import (
    FALLBACK_DISCOUNTS,
    CharNGram,
    FrequencyTrie,
    KneserNey,
    PrefixRanker,
    events,
    fit_kn,
    fit_ngram,
    merge_counts,
    modified_kn_discounts,
)
from rnnac.storage.wordlist import read_word_list, split_words

WORDS = ["abc", "a", "cabba", "bb", "abcab", "ba", "cab", "acca"]
WORDS_TSV = Path(__file__).resolve().parent.parent / "data" / "words.tsv"


@functools.cache
def english_words(n: int) -> list[str]:
    """The n most frequent words of data/words.tsv."""
    return read_word_list(WORDS_TSV).words[:n]


# ---- frequency trie ----


def test_trie_most_frequent_first_ties_shorter_then_alphabetical():
    trie = FrequencyTrie(["car", "cat", "cart", "dog", "care", "cab"], [5, 3, 2, 4, 3, 3])
    assert trie.rank_completions("c", 3) == ["car", "cab", "cat"]  # cab, care, cat tie at 3: shorter, then alphabetical
    assert trie.rank_completions("ca", 10) == ["car", "cab", "cat", "care", "cart"]
    assert trie.rank_completions("car", 2) == ["car", "care"]
    assert trie.rank_completions("cart", 5) == ["cart"]  # the prefix itself is a word
    assert trie.rank_completions("", 2) == ["car", "dog"]  # nothing typed: the most frequent words
    assert trie.rank_completions("x", 5) == [] and trie.rank_completions("carts", 5) == []
    assert trie.rank_many(["d", "ca"], 1) == [["dog"], ["car"]]


def test_trie_merges_repeated_words_and_defaults_to_length_then_alphabet():
    assert FrequencyTrie(["b", "a", "b"]).rank_completions("", 2) == ["b", "a"]  # b counted twice
    assert FrequencyTrie(["bb", "c", "a", "ab"]).rank_completions("", 4) == ["a", "c", "ab", "bb"]  # no counts: all tie


def test_prefix_ranker_finds_words_past_the_last_code_point():
    """A word holding U+10FFFF right after the prefix sorts after prefix + U+10FFFF, yet starts with the prefix."""
    assert PrefixRanker(["a", "a\U0010ffffb", "ab"], [1, 5, 2]).rank_completions("a", 5) == ["a\U0010ffffb", "ab", "a"]


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
@pytest.mark.parametrize("make", [lambda v, n: CharNGram(v, n, 0.1), KneserNey], ids=["add-k", "kn"])
def test_word_logprob_is_the_sum_of_next_char_logprobs(order, make):
    vocab = Vocab.from_words(WORDS)
    ngram = make(vocab, order).fit(WORDS[:5])
    for word in ["cab", "ca", "bbbbbbb", "c"]:
        ids = [0] * (order - 1) + vocab.encode(word) + [0]
        expected = sum(ngram.next_logprobs([ids[t - order + 1 : t]])[0, ids[t]] for t in range(order - 1, len(ids)))
        assert ngram.word_logprobs([word])[0] == pytest.approx(expected)


@pytest.mark.parametrize("make", [lambda v, n: CharNGram(v, n, 0.2), KneserNey], ids=["add-k", "kn"])
def test_ngram_total_probability_of_all_words_is_one(make):
    """Words up to length L plus every (L+1)-letter prefix (each continuing somehow) cover all outcomes."""
    vocab = Vocab.from_words(["ab"])
    ngram = make(vocab, 3).fit(["ab", "abb", "b", "ba"])
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


def test_ngram_label_names_the_fitted_settings():
    assert CharNGram(Vocab.from_words(["ab"]), 5, 0.01).label == "ngram (order 5, add-0.01)"
    assert KneserNey(Vocab.from_words(["ab"]), 6).label == "kn (order 6, modified KN)"


# ---- counting a chunk at a time ----


@given(st.lists(st.lists(st.integers(0, 30), max_size=20), min_size=1, max_size=6))
def test_merge_counts_matches_one_count_of_everything(chunks):
    keys, counts = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    for chunk in chunks:
        before = counts.copy()
        keys, counts = merge_counts(keys, counts, *np.unique(np.array(chunk, dtype=np.int64), return_counts=True))
        assert len(before) == 0 or not np.shares_memory(before, counts)
    expected = np.unique(np.array([x for chunk in chunks for x in chunk], dtype=np.int64), return_counts=True)
    np.testing.assert_array_equal(keys, expected[0])
    np.testing.assert_array_equal(counts, expected[1])


def test_merge_counts_by_hand():
    keys, counts = merge_counts(np.array([1, 3]), np.array([5.0, 6.0]), np.array([0, 3, 4]), np.array([2.0, 1.0, 1.0]))
    np.testing.assert_array_equal(keys, [0, 1, 3, 4])
    np.testing.assert_array_equal(counts, [2.0, 5.0, 7.0, 1.0])


@pytest.mark.parametrize("order", [1, 3, 5])
def test_ngram_fit_a_chunk_at_a_time_counts_as_one_pass(order):
    words = english_words(400)
    vocab = Vocab.from_words(words)
    weights = np.arange(len(words)) % 4 + 1.0  # integer weights: sums exact in any order
    whole, chunked = (CharNGram(vocab, order, 0.1).fit(words, weights, chunk=c) for c in (len(words), 37))
    for name in ("_pairs", "_pair_counts", "_contexts", "_context_counts"):
        np.testing.assert_array_equal(getattr(chunked, name), getattr(whole, name))
    np.testing.assert_array_equal(chunked.word_logprobs(words[:50]), whole.word_logprobs(words[:50]))


@pytest.mark.parametrize("order", [1, 2, 4, 7])
def test_kn_fit_a_chunk_at_a_time_counts_as_one_pass(order):
    words = english_words(400)
    vocab = Vocab.from_words(words)
    whole, chunked = (KneserNey(vocab, order).fit(words, chunk=c) for c in (len(words), 37))
    for name in ("_grams", "_counts", "_contexts", "_totals", "_masses"):
        for a, b in zip(getattr(chunked, name), getattr(whole, name), strict=True):
            np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(chunked.discounts, whole.discounts)
    np.testing.assert_array_equal(chunked.word_logprobs(words[:50]), whole.word_logprobs(words[:50]))


# ---- interpolated modified Kneser-Ney ----


def reference_kn(words, vocab, order):
    """p_KN(x | h) by Chen & Goodman's recursion, with tuples and dicts: the oracle for KneserNey."""
    K = len(vocab)
    raw = Counter()  # every m-gram ending an event, m = 1..order, as a tuple of ids
    for word in set(words):
        ids = [0] * (order - 1) + vocab.encode(word) + [0]
        for t in range(order - 1, len(ids)):
            for m in range(1, order + 1):
                raw[tuple(ids[t - m + 1 : t + 1])] += 1
    left = defaultdict(set)  # m-gram -> the tokens seen just before it
    for gram in raw:
        if len(gram) > 1:
            left[gram[1:]].add(gram[0])

    def count(gram):  # raw at the top order and for m-grams starting in the padding, else N1+(. gram)
        return raw[gram] if len(gram) == order or gram[0] == 0 and len(gram) > 1 else len(left[gram])

    discounts = {}
    for m in range(1, order + 1):
        n = Counter(count(g) for g in raw if len(g) == m)
        n1, n2, n3, n4 = n[1], n[2], n[3], n[4]
        d = FALLBACK_DISCOUNTS
        if min(n1, n2, n3, n4) > 0:
            y = n1 / (n1 + 2 * n2)
            d = (1 - 2 * y * n2 / n1, 2 - 3 * y * n3 / n2, 3 - 4 * y * n4 / n3)
            if not (0 < d[0] < 1 and 0 < d[1] < 2 and 0 < d[2] < 3):
                d = FALLBACK_DISCOUNTS
        discounts[m] = d

    def p(x, h):
        lower = p(x, h[1:]) if h else 1 / K
        counts = [count(h + (y,)) for y in range(K)]
        D = [0.0, *discounts[len(h) + 1]]
        total = sum(counts)
        if total == 0:
            return lower
        gamma = sum(D[min(c, 3)] for c in counts) / total
        return (counts[x] - D[min(counts[x], 3)]) / total + gamma * lower

    return p


def test_kn_unigram_by_hand():
    # "abcc", "bc", "c": counts a 1, b 2, end 3, c 4, so n1 = n2 = n3 = n4 = 1 and
    # Y = 1/3, D1 = 1 - 2Y = 1/3, D2 = 2 - 3Y = 1, D3+ = 3 - 4Y = 5/3.
    vocab = Vocab.from_words(["abc"])  # K = 4
    kn = KneserNey(vocab, 1).fit(["abcc", "bc", "c"])
    np.testing.assert_allclose(kn.discounts, [[1 / 3, 1, 5 / 3]])
    # sum c = 10; gamma = (D1 + D2 + 2 D3+) / 10 = (14/3) / 10; each token also gets gamma / K
    uniform = (14 / 3) / 4
    expected = [(3 - 5 / 3 + uniform) / 10, (1 - 1 / 3 + uniform) / 10, (2 - 1 + uniform) / 10, (4 - 5 / 3 + uniform) / 10]
    assert expected == pytest.approx([15 / 60, 11 / 60, 13 / 60, 21 / 60])  # end, a, b, c
    np.testing.assert_allclose(np.exp(kn.next_logprobs(np.zeros((1, 0), dtype=int))[0]), expected, rtol=1e-12)
    assert kn.word_logprobs(["bc"])[0] == pytest.approx(math.log(13 / 60 * 21 / 60 * 15 / 60))


def test_kn_trigram_by_hand():
    # "ab", "b", "bb" at order 3, ids: end 0, a 1, b 2. Every order has some n_k = 0: D = 0.5, 1, 1.5.
    vocab = Vocab.from_words(["ab"])
    kn = KneserNey(vocab, 3).fit(["ab", "b", "bb"])
    np.testing.assert_allclose(kn.discounts, [FALLBACK_DISCOUNTS] * 3)
    # Unigrams, by continuation count: a follows {0}, b follows {0, a, b}, the end follows {b}:
    #   c = 1 (end), 1 (a), 3 (b); sum 5; gamma = (D1 + D1 + D3+) / 5 = 2.5 / 5
    p1 = {0: (1 - 0.5 + 2.5 / 3) / 5, 1: (1 - 0.5 + 2.5 / 3) / 5, 2: (3 - 1.5 + 2.5 / 3) / 5}
    assert list(p1.values()) == pytest.approx([4 / 15, 4 / 15, 7 / 15])
    # Bigrams after the boundary keep raw counts (the padding has no other left extension):
    #   "0 a" once, "0 b" twice (its continuation count would be 1); sum 3, gamma = (0.5 + 1) / 3
    p_b_after_0 = (2 - 1 + 1.5 * p1[2]) / 3
    # Trigrams: after "0 0", a once and b twice: sum 3, gamma = 1.5 / 3
    p_b_after_00 = (2 - 1 + 1.5 * p_b_after_0) / 3
    assert p_b_after_00 == pytest.approx(37 / 60)
    # The end after "b b": trigram "b b 0" once; bigrams after b, by continuation: "b 0" 3 ({a, 0, b}), "b b" 1
    p_end_after_b = (3 - 1.5 + (1.5 + 0.5) * p1[0]) / 4
    p_end_after_bb = (1 - 0.5 + 0.5 * p_end_after_b) / 1
    assert p_end_after_bb == pytest.approx(181 / 240)
    # "b a" was never a context: all its mass goes to the bigram after a ("a b" once, sum 1, gamma 0.5)
    p_b_after_ba = (1 - 0.5 + 0.5 * p1[2]) / 1
    probs = np.exp(kn.next_logprobs([[0, 0], [2, 2], [2, 1]]))  # (3, K)
    assert (probs[0, 2], probs[1, 0], probs[2, 2]) == pytest.approx((p_b_after_00, p_end_after_bb, p_b_after_ba), rel=1e-12)
    # "b" ends after "0 b": trigrams "0 b 0" and "0 b b" once each, sum 2, gamma = (0.5 + 0.5) / 2
    p_end_after_0b = (1 - 0.5 + 1.0 * p_end_after_b) / 2
    assert kn.word_logprobs(["b"])[0] == pytest.approx(math.log(p_b_after_00 * p_end_after_0b))


def test_modified_kn_discounts_by_hand():
    # n = 4, 2, 1, 1: Y = 4 / 8, D1 = 1 - 2 Y 2/4, D2 = 2 - 3 Y 1/2, D3+ = 3 - 4 Y 1/1
    np.testing.assert_allclose(modified_kn_discounts([4, 2, 1, 1]), [0.5, 1.25, 1.0])
    np.testing.assert_allclose(modified_kn_discounts([4, 2, 0, 1]), FALLBACK_DISCOUNTS)  # n3 = 0
    np.testing.assert_allclose(modified_kn_discounts([1, 1, 9, 1]), FALLBACK_DISCOUNTS)  # D2 = 2 - 9 < 0


@pytest.mark.parametrize("order", [1, 2, 3, 4, 5, 6, 7])
def test_kn_next_token_probabilities_sum_to_one(order):
    words = english_words(400)
    vocab = Vocab.from_words(words)
    kn = KneserNey(vocab, order).fit(words)
    contexts, _, _ = events(words, vocab, order)  # every context seen, coded in base K
    seen = np.unique(contexts)  # (C,)
    ids = (seen[:, None] // len(vocab) ** np.arange(order - 2, -1, -1)[None, :]) % len(vocab)  # (C, n-1)
    unseen = np.random.default_rng(order).integers(0, len(vocab), size=(20, order - 1))  # mostly unseen
    for contexts in (ids, unseen):
        probs = np.exp(kn.next_logprobs(contexts))  # (C, K)
        assert probs.shape == (len(contexts), len(vocab)) and np.all(probs > 0)
        np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=0, atol=1e-9)


@pytest.mark.parametrize("order", [2, 3, 5])
def test_kn_matches_the_dict_reference(order):
    words = english_words(300)
    vocab = Vocab.from_words(words)
    kn = KneserNey(vocab, order).fit(words)
    reference = reference_kn(words, vocab, order)
    strings = ("th", "ing", "e", vocab.chars[-1] * 4)  # seen contexts, then (at order 3 and up) an unseen one
    contexts = [[0] * (order - 1)] + [([0] * order + vocab.encode(w))[-(order - 1) :] for w in strings]
    probs = np.exp(kn.next_logprobs(contexts))  # (5, K)
    expected = [[reference(x, tuple(h)) for x in range(len(vocab))] for h in contexts]
    np.testing.assert_allclose(probs, expected, rtol=1e-12)
    assert not np.allclose(kn.discounts[-1], FALLBACK_DISCOUNTS)  # the top order's discounts come from n1..n4


def test_kn_counts_each_distinct_word_once():
    vocab = Vocab.from_words(WORDS)
    once, twice = KneserNey(vocab, 3).fit(WORDS), KneserNey(vocab, 3).fit(WORDS + WORDS[:3])
    np.testing.assert_array_equal(once.word_logprobs(WORDS), twice.word_logprobs(WORDS))


def test_fit_kn_picks_the_order_with_the_lowest_held_back_loss():
    words = english_words(1500)
    vocab = Vocab.from_words(words)
    kn, grid = fit_kn(words, vocab, orders=(2, 3, 4, 5), tune_fraction=0.2, seed=1)
    # Brute force: the same held-back words (the first 20% of a seed-1 permutation), every order.
    order_of_words = np.random.default_rng(1).permutation(len(words))
    tune = [words[i] for i in order_of_words[:300]]
    rest = [words[i] for i in order_of_words[300:]]
    n_chars = sum(len(w) + 1 for w in tune)
    losses = {n: -KneserNey(vocab, n).fit(rest).word_logprobs(tune).sum() / n_chars for n in (2, 3, 4, 5)}
    assert [g["order"] for g in grid] == [2, 3, 4, 5]
    assert [g["tune_nll_per_char"] for g in grid] == pytest.approx(list(losses.values()), rel=1e-12)
    assert kn.order == min(losses, key=losses.get) and len(set(losses.values())) == 4
    # ... refitted on every word
    np.testing.assert_allclose(kn.word_logprobs(tune), KneserNey(vocab, kn.order).fit(words).word_logprobs(tune))


def test_kn_beats_add_k_on_held_out_words():
    words = english_words(3000)
    train_idx, val_idx = split_words(len(words), 0.2, 0)
    train, held_out = [words[i] for i in train_idx], [words[i] for i in val_idx]
    vocab = Vocab.from_words(train)
    held_out = [w for w in held_out if vocab.unknown_char(w) is None]
    n_chars = sum(len(w) + 1 for w in held_out)
    add_k, _ = fit_ngram(train, vocab)
    kn, _ = fit_kn(train, vocab)
    add_k_nll = -add_k.word_logprobs(held_out).sum() / n_chars
    kn_nll = -kn.word_logprobs(held_out).sum() / n_chars
    assert kn_nll < add_k_nll - 0.05, (kn_nll, add_k_nll)


def test_kn_rejects_bad_settings():
    vocab = Vocab.from_words(["ab"])
    with pytest.raises(ValueError, match="order"):
        KneserNey(vocab, 0)
    with pytest.raises(ValueError, match="overflow"):
        KneserNey(Vocab.from_words([chr(0x4E00 + i) for i in range(1000)]), 7)
    with pytest.raises(ValueError, match="two distinct words"):
        fit_kn(["ab", "ab"], vocab)


def test_a_ranker_remembers_a_bounded_number_of_answers(monkeypatch):
    monkeypatch.setattr(baselines, "CACHE_SIZE", 3)
    words = ["ab", "abc", "b", "ba", "bab", "c"]
    ranker, fresh = PrefixRanker(words, np.arange(6.0)), PrefixRanker(words, np.arange(6.0))
    prefixes = ["a", "ab", "b", "ba", "c", "a", "b", ""] * 2
    answers = ranker.rank_many(prefixes, 2)
    assert len(ranker._cache) <= 3
    assert answers == [fresh.rank_completions(p, 2) for p in prefixes]
