"""The baselines an RNN must beat: a frequency trie and two character n-gram models.

They answer the questions evaluate.py asks of every model, in NumPy and plain Python:

    rank_completions(prefix, k) -> up to k whole words starting with `prefix`, most likely first
    word_logprobs(words) -> (N,) log P(word), natural log, over its characters and its end
                            (the n-grams only: a trie gives no probability to a word it never saw)

Character n-gram of order n with add-k smoothing, over the vocabulary of K tokens (id 0 the
word boundary). A word is padded with n-1 boundaries in front and one behind:

    P(x_t = c | x_{t-n+1} .. x_{t-1}) = (count(context, c) + k) / (count(context) + k K)

so the probabilities of the K next tokens sum to one in every context, seen or not.
KneserNey is the strong n-gram: interpolated modified Kneser-Ney over the same events, each
distinct word counted once (its formula is in the class docstring).
Shape letters: N words or contexts, M (context, next token) events, K vocabulary, G n-grams.

Performance notes: fitting counts the events FIT_CHUNK words at a time and merges each chunk's
sorted distinct codes into the running table (merge_counts), so a fit holds the table and one
chunk's events, never every event of a long list at once; a list of at most FIT_CHUNK words is
one chunk, counted exactly as a single pass would.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rnnac.engine.vocab import BOUNDARY, Vocab
from rnnac.storage.sorted_words import prefix_range
from rnnac.storage.wordlist import split_words

ORDERS = (2, 3, 4, 5)
ADD_KS = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0)
KN_ORDERS = (2, 3, 4, 5, 6, 7)
FALLBACK_DISCOUNTS = (0.5, 1.0, 1.5)  # D1, D2, D3+ where count-of-counts cannot give them (kenlm's)
CACHE_SIZE = 100_000  # answers a PrefixRanker remembers (repeated prefixes, as typed ones repeat)
FIT_CHUNK = 50_000  # words whose events a fit holds at once (a few MB per word of length 10)


class PrefixRanker:
    """A fixed set of words with a score each; the top k words starting with a prefix.

    The words are kept sorted, so the words starting with a prefix are one slice found by
    bisection; the top k of the slice come from a partial sort. Ties go alphabetically, or with
    shorter_first to the shorter word, then alphabetically.
    PrefixRanker(["ab", "ac", "b"], [1, 2, 5]).rank_completions("a", 5) -> ["ac", "ab"]
    """

    def __init__(self, words: Sequence[str], scores, shorter_first: bool = False):
        scores = np.asarray(scores, dtype=np.float64)  # (N,)
        if scores.shape != (len(words),):
            raise ValueError(f"{len(words)} words but scores of shape {scores.shape}")
        if len(set(words)) != len(words):
            raise ValueError("a PrefixRanker's words must be distinct")
        order = sorted(range(len(words)), key=words.__getitem__)
        self.words = [words[i] for i in order]  # alphabetical
        self.scores = scores[order]  # (N,)
        self.lengths = np.array([len(w) for w in self.words]) if shorter_first else None  # (N,)
        self._cache: dict[tuple[str, int], list[str]] = {}  # at most CACHE_SIZE answers, then emptied

    def __len__(self) -> int:
        return len(self.words)

    def prefix_range(self, prefix: str) -> tuple[int, int]:
        """(lo, hi): self.words[lo:hi] are exactly the words starting with `prefix`."""
        return prefix_range(self.words, prefix)

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
            if self.lengths is None:
                best = keep[np.argsort(-scores[keep], kind="stable")[:k]]
            else:  # by score, then length, then position (alphabetical)
                best = keep[np.lexsort((keep, self.lengths[lo:hi][keep], -scores[keep]))[:k]]
            if len(self._cache) >= CACHE_SIZE:  # memory stays bounded over millions of prefixes
                self._cache.clear()
            self._cache[key] = [self.words[lo + i] for i in best]
        return self._cache[key]

    def rank_many(self, prefixes: Sequence[str], k: int) -> list[list[str]]:
        return [self.rank_completions(p, k) for p in prefixes]


class FrequencyTrie(PrefixRanker):
    """The most frequent training words that start with the prefix: what a plain
    autocompleter does. Counts of repeated words add up; ties go to the shorter word, then
    alphabetically (a list without counts: by length, then alphabet, the usual closed-list
    completer).

    FrequencyTrie(["car", "cat", "dog"], [5, 3, 4]).rank_completions("ca", 1) -> ["car"]
    """

    def __init__(self, words: Sequence[str], counts=None):
        counts = np.ones(len(words)) if counts is None else np.asarray(counts, dtype=np.float64)  # (N,)
        merged: dict[str, float] = {}
        for word, count in zip(words, counts.tolist()):
            merged[word] = merged.get(word, 0.0) + count
        super().__init__(list(merged), list(merged.values()), shorter_first=True)


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

    def fit(self, words: Sequence[str], weights=None, chunk: int = FIT_CHUNK) -> CharNGram:
        """Count the words' events, `chunk` words at a time; `weights` (N,) weighs each word (default 1 each)."""
        weights = np.ones(len(words)) if weights is None else np.asarray(weights, dtype=np.float64)  # (N,)
        pairs = contexts = (np.zeros(0, dtype=np.int64), np.zeros(0))  # (codes, summed weights), growing
        for start in range(0, len(words), chunk):
            context, nexts, owner = events(words[start : start + chunk], self.vocab, self.order)  # (m,) each
            w = weights[start + owner]  # (m,)
            pairs = merge_counts(*pairs, *_weighted_unique(context * self.K + nexts, w))
            contexts = merge_counts(*contexts, *_weighted_unique(context, w))
        (self._pairs, self._pair_counts), (self._contexts, self._context_counts) = pairs, contexts
        return self

    @property
    def label(self) -> str:
        """The fitted settings, as tables name this model: "ngram (order 5, add-0.01)"."""
        return f"ngram (order {self.order}, add-{self.add_k:g})"

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
    rest, tune = split_words(len(words), tune_fraction, seed)  # the n-grams fit on rest, choose on tune
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


class KneserNey:
    """Interpolated modified Kneser-Ney character n-gram (Chen & Goodman 1998) over `vocab`.

    Events and padding are CharNGram's: n-1 boundaries in front, the boundary (id 0) as the end.
    For an n-gram w_{i-n+1}^i, in Chen & Goodman's notation:

        p_KN(w_i | w_{i-n+1}^{i-1}) = max(c(w_{i-n+1}^i) - D(c(w_{i-n+1}^i)), 0) / sum_{w_i} c(w_{i-n+1}^i)
                                      + gamma(w_{i-n+1}^{i-1}) p_KN(w_i | w_{i-n+2}^{i-1})
        gamma(w_{i-n+1}^{i-1}) = (D1 N1(w_{i-n+1}^{i-1} .) + D2 N2(w_{i-n+1}^{i-1} .) + D3+ N3+(w_{i-n+1}^{i-1} .))
                                 / sum_{w_i} c(w_{i-n+1}^i)
        D(0) = 0, D(1) = D1, D(2) = D2, D(c) = D3+ for c >= 3
        Y = n1 / (n1 + 2 n2),  D1 = 1 - 2 Y n2 / n1,  D2 = 2 - 3 Y n3 / n2,  D3+ = 3 - 4 Y n4 / n3

    N_k(h .) counts the tokens that follow context h exactly k times (N3+: 3 or more), n_k the
    n-grams of one order with count k; each order m has its own D1, D2, D3+. The count c is the
    raw count at the highest order and the continuation count N1+(. w_{i-m+1}^i), the number of
    distinct tokens seen before it, at every lower order m; the unigrams interpolate with the
    uniform 1/K. Two details of the character setting:
    - An m-gram that starts with the boundary starts inside the padding, so its only left
      extension is another boundary; like kenlm's n-grams that start with <s>, it keeps its raw count.
    - A context never seen (sum c = 0) passes all its mass to the lower order; an order whose
      count-of-counts give no discounts with 0 < D_k < k (tiny corpora) uses FALLBACK_DISCOUNTS.
    The K next-token probabilities of every context sum to one, seen or not.
    """

    def __init__(self, vocab: Vocab, order: int):
        K = len(vocab)
        if order < 1:
            raise ValueError(f"n-gram order must be at least 1, got {order}")
        if K**order >= 2**63:
            raise ValueError(f"order {order} over {K} tokens: n-gram codes K^order overflow int64")
        self.vocab, self.order, self.K = vocab, order, K
        # Level m (1..order) holds the m-grams: index m - 1 of each list.
        self._grams: list[np.ndarray] = []  # (G_m,) sorted codes of the m-grams seen
        self._counts: list[np.ndarray] = []  # (G_m,) their counts c (raw or continuation)
        self._contexts: list[np.ndarray] = []  # (C_m,) sorted codes of their (m-1)-token contexts
        self._totals: list[np.ndarray] = []  # (C_m,) sum_{w_i} c(h w_i)
        self._masses: list[np.ndarray] = []  # (C_m,) D1 N1(h .) + D2 N2(h .) + D3+ N3+(h .), gamma's numerator
        self.discounts = np.zeros((order, 3))  # (n, 3): row m - 1 is D1, D2, D3+ of order m

    @property
    def label(self) -> str:
        """The fitted settings, as tables name this model: "kn (order 6, modified KN)"."""
        return f"kn (order {self.order}, modified KN)"

    def fit(self, words: Sequence[str], chunk: int = FIT_CHUNK) -> KneserNey:
        """Count the events of the distinct `words` (a repeated word counts once), `chunk` words at a time."""
        words = list(dict.fromkeys(words))
        n, K = self.order, self.K
        # The raw count of every n-gram, coded in base K (context * K + next); every lower count derives from them.
        raw_grams, raw_counts = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)  # (G_n,) each, growing
        for start in range(0, len(words), chunk):
            contexts, nexts, _ = events(words[start : start + chunk], self.vocab, n)  # (m,) each
            raw_grams, raw_counts = merge_counts(raw_grams, raw_counts,
                                                 *np.unique(contexts * K + nexts, return_counts=True))
        self._grams, self._counts, self._contexts, self._totals, self._masses = [], [], [], [], []
        raw = raw_counts  # (G_m,) the raw counts of level m's m-grams, level by level down
        for m in range(n, 0, -1):
            # 1. The counts c of the m-grams: raw at the highest order; below it, the number of
            #    distinct (m+1)-grams that end with the m-gram (its continuation count), except
            #    for m-grams starting with the boundary, which keep their raw count.
            if m == n:
                grams, counts = raw_grams, raw_counts  # (G_m,) each
            else:
                # An m-gram ending an event also ends that event's (m+1)-gram: both levels hold the
                # same m-grams, and an m-gram's raw count sums those of the (m+1)-grams ending with it.
                grams, suffix, continuation = np.unique(self._grams[0] % K**m, return_inverse=True,
                                                        return_counts=True)  # (G_m,), (G_{m+1},), (G_m,)
                raw = np.bincount(suffix.reshape(-1), weights=raw, minlength=len(grams)).astype(np.int64)  # (G_m,)
                counts = np.where(grams < K ** (m - 1), raw, continuation) if m > 1 else continuation  # (G_m,)
            # 2. D1, D2, D3+ from n1..n4, the m-grams with count 1..4.
            self.discounts[m - 1] = modified_kn_discounts(np.bincount(np.minimum(counts, 5), minlength=6)[1:5])
            # 3. Per context h: sum_{w_i} c(h w_i), and gamma's numerator, the sum of the discounts taken.
            discount = np.concatenate([[0.0], self.discounts[m - 1]])[np.minimum(counts, 3)]  # (G_m,) D(c)
            # The grams are sorted, so their contexts are too: each new context starts a run (no sort needed).
            context = grams // K  # (G_m,) sorted
            starts = np.concatenate([[True], context[1:] != context[:-1]])  # (G_m,) bool
            context_codes, owner = context[starts], np.cumsum(starts) - 1  # (C_m,), (G_m,)
            del context, starts
            self._grams.insert(0, grams)
            self._counts.insert(0, counts.astype(np.float64))
            self._contexts.insert(0, context_codes)
            self._totals.insert(0, np.bincount(owner, weights=counts, minlength=len(context_codes)))
            self._masses.insert(0, np.bincount(owner, weights=discount, minlength=len(context_codes)))
        return self

    def probs(self, grams: np.ndarray) -> np.ndarray:
        """p_KN(w_i | w_{i-n+1}^{i-1}) for n-grams coded in base K (context * K + next), same shape."""
        grams = np.asarray(grams, dtype=np.int64)  # (...)
        p = np.full(grams.shape, 1.0 / self.K)  # (...) below the unigrams: uniform
        for m in range(1, self.order + 1):
            # 1. The m-gram ending each query and its context of m - 1 tokens.
            gram = grams % self.K**m  # (...)
            context = gram // self.K  # (...)
            # 2. Its count c and discount D(c) (both 0 for an unseen m-gram), its context's sum of c
            #    and gamma's numerator (both 0 for an unseen context).
            count = _lookup(self._grams[m - 1], self._counts[m - 1], gram)  # (...)
            discount = np.concatenate([[0.0], self.discounts[m - 1]])[np.minimum(count, 3).astype(np.int64)]  # (...)
            total = _lookup(self._contexts[m - 1], self._totals[m - 1], context)  # (...)
            mass = _lookup(self._contexts[m - 1], self._masses[m - 1], context)  # (...)
            # 3. p_m = (c - D(c)) / total + gamma p_{m-1}, gamma = mass / total; an unseen context keeps p_{m-1}.
            seen = total > 0  # (...)
            p = np.where(seen, (count - discount + mass * p) / np.where(seen, total, 1.0), p)  # (...)
        return p

    def next_logprobs(self, contexts) -> np.ndarray:
        """log P(next token | context) for contexts of n-1 token ids: (N, n-1) ints -> (N, K)."""
        contexts = np.asarray(contexts, dtype=np.int64)  # (N, n-1)
        codes = encode_contexts(contexts if contexts.ndim == 2 else contexts[None, :], self.K)  # (N,)
        return np.log(self.probs(codes[:, None] * self.K + np.arange(self.K)[None, :]))  # (N, K)

    def word_logprobs(self, words: Sequence[str]) -> np.ndarray:
        """log P(word) (N,): the sum of log p_KN(x_t | context) over its characters and its end."""
        contexts, nexts, owner = events(words, self.vocab, self.order)  # (M,) each
        logp = np.log(self.probs(contexts * self.K + nexts))  # (M,)
        return np.bincount(owner, weights=logp, minlength=len(words))  # (N,)


def modified_kn_discounts(count_of_counts) -> np.ndarray:
    """(D1, D2, D3+) from n1..n4, the number of n-grams seen exactly 1..4 times (Chen & Goodman):

        Y = n1 / (n1 + 2 n2),  D_k = k - (k + 1) Y n_{k+1} / n_k  for k = 1, 2, 3

    FALLBACK_DISCOUNTS when some n_k is 0 or some D_k falls outside (0, k).
    modified_kn_discounts([4, 2, 1, 1]) -> [0.5, 1.25, 1.0]
    """
    n1, n2, n3, n4 = (float(x) for x in count_of_counts)
    if min(n1, n2, n3, n4) <= 0:
        return np.array(FALLBACK_DISCOUNTS)
    y = n1 / (n1 + 2 * n2)
    discounts = np.array([1 - 2 * y * n2 / n1, 2 - 3 * y * n3 / n2, 3 - 4 * y * n4 / n3])  # (3,)
    if np.all((discounts > 0) & (discounts < [1, 2, 3])):
        return discounts
    return np.array(FALLBACK_DISCOUNTS)


def fit_kn(words: Sequence[str], vocab: Vocab, *, orders=KN_ORDERS, tune_fraction: float = 0.1,
           seed: int = 0) -> tuple[KneserNey, list[dict]]:
    """Choose the Kneser-Ney order on held-out training words, then fit it on all of them.

    1. Keep each distinct word once; hold out `tune_fraction` of them as fit_ngram does.
    2. For every order: fit on the rest, NLL per character (nats) on the held-out words.
    3. Refit the best order on all words.
    Returns (model, grid), grid a list of {"order", "tune_nll_per_char"}.
    """
    words = list(dict.fromkeys(words))
    if len(words) < 2:
        raise ValueError("fit_kn needs at least two distinct words, some to fit and some to tune on")
    rest, tune = split_words(len(words), tune_fraction, seed)  # the n-grams fit on rest, choose on tune
    tune_words, rest_words = [words[i] for i in tune], [words[i] for i in rest]
    n_chars = sum(len(w) + 1 for w in tune_words)
    grid = [{"order": order, "tune_nll_per_char": float(-KneserNey(vocab, order).fit(rest_words)
                                                       .word_logprobs(tune_words).sum() / n_chars)}
            for order in orders]
    best = min(grid, key=lambda g: g["tune_nll_per_char"])
    return KneserNey(vocab, best["order"]).fit(words), grid


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
    windows = np.lib.stride_tricks.sliding_window_view(padded, pad + 1, axis=1)  # (N, T, n), a view
    valid = np.arange(steps)[None, :] <= lengths[:, None]  # (N, T): each word's letters and its end
    owner = np.broadcast_to(np.arange(len(words))[:, None], valid.shape)[valid]  # (M,)
    # For memory, the contexts are coded a column at a time (encode_contexts' sum) rather than
    # from a copy of every window, (M, n): one (M,) array at a time beside the codes.
    contexts = np.zeros(len(owner), dtype=np.int64)  # (M,)
    for j in range(pad):
        contexts = contexts * len(vocab) + windows[:, :, j][valid]
    return contexts, windows[:, :, pad][valid], owner


def encode_contexts(contexts: np.ndarray, K: int) -> np.ndarray:
    """Each row of token ids (N, c) as one integer in base K, (N,): [x1, x2] -> x1 K + x2."""
    codes = np.zeros(len(contexts), dtype=np.int64)  # (N,)
    for column in contexts.T:
        codes = codes * K + column
    return codes


def merge_counts(keys: np.ndarray, counts: np.ndarray, more_keys: np.ndarray,
                 more_counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two tables of sorted distinct keys with a count each, as one: the union of the keys, the
    counts of a key in both added. Holds the result and arrays the size of the second table only.
    merge_counts([1, 3], [5, 6], [3, 4], [1, 1]) -> ([1, 3, 4], [5, 7, 1])
    """
    if len(keys) == 0:
        return more_keys, more_counts
    position = np.searchsorted(keys, more_keys)  # (g,) where each new key is or would go
    found = position < len(keys)
    found[found] = keys[position[found]] == more_keys[found]  # (g,) the key is in both tables
    counts = counts.copy()  # (G,) the caller's table stays as it was
    counts[position[found]] += more_counts[found]
    new = ~found  # (g,)
    return np.insert(keys, position[new], more_keys[new]), np.insert(counts, position[new], more_counts[new])


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
