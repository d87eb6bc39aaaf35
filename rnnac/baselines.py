"""The baselines an RNN must beat: a frequency trie and a character n-gram model.

Both answer the questions evaluate.py asks of every model, in NumPy and plain Python:

    rank_completions(prefix, k) -> up to k whole words starting with `prefix`, most likely first
    word_logprobs(words) -> (N,) log P(word), natural log, over its characters and its end
                            (the n-gram only: a trie gives no probability to a word it never saw)

Character n-gram of order n with add-k smoothing, over the vocabulary of K tokens (id 0 the
word boundary). A word is padded with n-1 boundaries in front and one behind:

    P(x_t = c | x_{t-n+1} .. x_{t-1}) = (count(context, c) + k) / (count(context) + k K)

so the probabilities of the K next tokens sum to one in every context, seen or not.
Shape letters: N words or contexts, M (context, next token) events, K vocabulary.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence

import numpy as np

from rnnac.data import BOUNDARY, Vocab

ORDERS = (2, 3, 4, 5)
ADD_KS = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0)
_LAST_CHAR = "\U0010ffff"  # sorts after every character a word can hold


class PrefixRanker:
    """A fixed set of words with a score each; the top k words starting with a prefix.

    The words are kept sorted, so the words starting with a prefix are one slice found by
    bisection; the top k of the slice come from a partial sort. Ties go alphabetically.
    PrefixRanker(["ab", "ac", "b"], [1, 2, 5]).rank_completions("a", 5) -> ["ac", "ab"]
    """

    def __init__(self, words: Sequence[str], scores):
        scores = np.asarray(scores, dtype=np.float64)  # (N,)
        if scores.shape != (len(words),):
            raise ValueError(f"{len(words)} words but scores of shape {scores.shape}")
        if len(set(words)) != len(words):
            raise ValueError("a PrefixRanker's words must be distinct")
        order = sorted(range(len(words)), key=words.__getitem__)
        self.words = [words[i] for i in order]  # alphabetical
        self.scores = scores[order]  # (N,)
        self._cache: dict[tuple[str, int], list[str]] = {}

    def __len__(self) -> int:
        return len(self.words)

    def prefix_range(self, prefix: str) -> tuple[int, int]:
        """(lo, hi): self.words[lo:hi] are exactly the words starting with `prefix`."""
        lo = bisect.bisect_left(self.words, prefix)
        return lo, bisect.bisect_left(self.words, prefix + _LAST_CHAR, lo)

    def rank_completions(self, prefix: str, k: int) -> list[str]:
        """The k best-scored words starting with `prefix` (fewer if fewer exist)."""
        key = (prefix, k)
        if key not in self._cache:
            lo, hi = self.prefix_range(prefix)
            scores = self.scores[lo:hi]  # (n,)
            if len(scores) > k:
                # Everything at least as good as the k-th best, ties included, then a stable
                # sort: positions are alphabetical, so equal scores stay alphabetical.
                kth = np.partition(scores, len(scores) - k)[len(scores) - k]
                keep = np.flatnonzero(scores >= kth)  # (>= k,)
            else:
                keep = np.arange(len(scores))  # (n,)
            best = keep[np.argsort(-scores[keep], kind="stable")[:k]]
            self._cache[key] = [self.words[lo + i] for i in best]
        return self._cache[key]

    def rank_many(self, prefixes: Sequence[str], k: int) -> list[list[str]]:
        return [self.rank_completions(p, k) for p in prefixes]


class FrequencyTrie(PrefixRanker):
    """The most frequent training words that start with the prefix: what a plain
    autocompleter does. Counts of repeated words add up; ties go alphabetically.

    FrequencyTrie(["car", "cat", "dog"], [5, 3, 4]).rank_completions("ca", 1) -> ["car"]
    """

    def __init__(self, words: Sequence[str], counts=None):
        counts = np.ones(len(words)) if counts is None else np.asarray(counts, dtype=np.float64)  # (N,)
        merged: dict[str, float] = {}
        for word, count in zip(words, counts.tolist()):
            merged[word] = merged.get(word, 0.0) + count
        super().__init__(list(merged), list(merged.values()))


class CharNGram:
    """A character n-gram model with add-k smoothing over `vocab` (see the module docstring).

    Counts are kept sparse: each context of n-1 token ids is one integer in base K, and the
    (context, next token) pairs seen in training sit in a sorted array found by bisection.
    """

    def __init__(self, vocab: Vocab, order: int, add_k: float):
        if order < 1:
            raise ValueError(f"n-gram order must be at least 1, got {order}")
        if not add_k > 0:
            raise ValueError(f"add_k must be > 0, got {add_k}")
        self.vocab, self.order, self.add_k = vocab, order, float(add_k)
        self.K = len(vocab)
        self._pairs = self._contexts = np.zeros(0, dtype=np.int64)  # sorted codes seen in training
        self._pair_counts = self._context_counts = np.zeros(0)

    def fit(self, words: Sequence[str], weights=None) -> CharNGram:
        """Count the words' events; `weights` (N,) weighs each word (default 1 each)."""
        contexts, nexts, owner = events(words, self.vocab, self.order)  # (M,) each
        w = np.ones(len(owner)) if weights is None else np.asarray(weights, dtype=np.float64)[owner]  # (M,)
        self._pairs, self._pair_counts = _weighted_unique(contexts * self.K + nexts, w)
        self._contexts, self._context_counts = _weighted_unique(contexts, w)
        return self

    def counts(self, contexts: np.ndarray, nexts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(count(context, next), count(context)) for coded contexts and next ids, same shapes."""
        return (_lookup(self._pairs, self._pair_counts, contexts * self.K + nexts),
                _lookup(self._contexts, self._context_counts, contexts))

    def next_logprobs(self, contexts) -> np.ndarray:
        """log P(next token | context) for contexts of n-1 token ids: (N, n-1) ints -> (N, K)."""
        contexts = np.asarray(contexts, dtype=np.int64)  # (N, n-1)
        codes = encode_contexts(contexts if contexts.ndim == 2 else contexts[None, :], self.K)  # (N,)
        pair, total = self.counts(codes[:, None], np.arange(self.K)[None, :])  # (N, K), (N, 1)
        return np.log(pair + self.add_k) - np.log(total + self.add_k * self.K)  # (N, K)

    def word_logprobs(self, words: Sequence[str]) -> np.ndarray:
        """log P(word) (N,): the sum of log P(x_t | context) over its characters and its end."""
        contexts, nexts, owner = events(words, self.vocab, self.order)  # (M,) each
        pair, total = self.counts(contexts, nexts)  # (M,), (M,)
        logp = np.log(pair + self.add_k) - np.log(total + self.add_k * self.K)  # (M,)
        return np.bincount(owner, weights=logp, minlength=len(words))  # (N,)


def fit_ngram(words: Sequence[str], vocab: Vocab, weights=None, *, orders=ORDERS, add_ks=ADD_KS,
              tune_fraction: float = 0.1, seed: int = 0) -> tuple[CharNGram, list[dict]]:
    """Choose order and add-k on held-out training words, then fit the choice on all of them.

    1. Hold out `tune_fraction` of `words` (a seeded permutation; at least one word).
    2. For every order and add-k: fit on the rest, NLL per character (nats) on the held-out words,
       unweighted (each distinct word once, as `rnnac evaluate` scores words by default).
    3. Refit the best pair on all words, with `weights`.
    Returns (model, grid), grid a list of {"order", "add_k", "tune_nll_per_char"}.
    """
    words = list(words)
    if len(words) < 2:
        raise ValueError("fit_ngram needs at least two words, some to fit and some to tune on")
    weights = np.ones(len(words)) if weights is None else np.asarray(weights, dtype=np.float64)  # (N,)
    order_of_words = np.random.default_rng(seed).permutation(len(words))  # (N,)
    n_tune = min(max(1, round(tune_fraction * len(words))), len(words) - 1)
    tune, rest = order_of_words[:n_tune], order_of_words[n_tune:]
    tune_words = [words[i] for i in tune]
    grid = []
    for order in orders:
        # The counts do not depend on k: look them up once per order, then try every k.
        model = CharNGram(vocab, order, 1.0).fit([words[i] for i in rest], weights[rest])
        contexts, nexts, _ = events(tune_words, vocab, order)  # (M,) each
        pair, total = model.counts(contexts, nexts)  # (M,), (M,)
        for add_k in add_ks:
            nll = -np.mean(np.log(pair + add_k) - np.log(total + add_k * model.K))
            grid.append({"order": order, "add_k": add_k, "tune_nll_per_char": float(nll)})
    best = min(grid, key=lambda g: g["tune_nll_per_char"])
    return CharNGram(vocab, best["order"], best["add_k"]).fit(words, weights), grid


def events(words: Sequence[str], vocab: Vocab, order: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every (context, next token) of `words`: coded contexts (M,), next ids (M,), word index (M,).

    A word of n characters gives n + 1 events, the last one predicting the boundary.
    events(["a"], vocab, 2) -> contexts [0, a], nexts [a, 0], owners [0, 0]
    """
    encoded = [vocab.encode(w) for w in words]
    lengths = np.array([len(ids) for ids in encoded], dtype=np.int64)  # (N,)
    pad, steps = order - 1, int(lengths.max(initial=0)) + 1
    padded = np.full((len(words), pad + steps), BOUNDARY, dtype=np.int64)  # (N, n-1 + T)
    for row, ids in enumerate(encoded):
        padded[row, pad : pad + len(ids)] = ids
    windows = np.lib.stride_tricks.sliding_window_view(padded, pad + 1, axis=1)  # (N, T, n)
    valid = np.arange(steps)[None, :] <= lengths[:, None]  # (N, T): each word's letters and its end
    owner = np.broadcast_to(np.arange(len(words))[:, None], valid.shape)[valid]  # (M,)
    return encode_contexts(windows[valid][:, :pad], len(vocab)), windows[valid][:, pad], owner


def encode_contexts(contexts: np.ndarray, K: int) -> np.ndarray:
    """Each row of token ids (N, c) as one integer in base K, (N,): [x1, x2] -> x1 K + x2."""
    codes = np.zeros(len(contexts), dtype=np.int64)  # (N,)
    for column in contexts.T:
        codes = codes * K + column
    return codes


def _weighted_unique(codes: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct codes and the summed weight of each."""
    unique, inverse = np.unique(codes, return_inverse=True)
    return unique, np.bincount(inverse.reshape(-1), weights=weights, minlength=len(unique))


def _lookup(keys: np.ndarray, values: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """values[i] where keys[i] == query, else 0; keys sorted. Broadcasts over `queries`."""
    if len(keys) == 0:
        return np.zeros(queries.shape)
    position = np.minimum(np.searchsorted(keys, queries), len(keys) - 1)
    return np.where(keys[position] == queries, values[position], 0.0)
