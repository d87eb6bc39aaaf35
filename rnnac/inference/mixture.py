"""The lexicon-RNN mixture: its weight lambda, fitted once at the end of training.

A completion ranks whole words w by

    P(w) = lambda P_lex(w) + (1 - lambda) P_rnn(w)

where P_lex(w) = c_w / C is w's share of the lexicon's counts (0 for a word not in it) and
P_rnn(w) the RNN's probability of w's characters and its end. lambda is the weight that makes
the list itself most likely when the lexicon cannot know every word: over every word of the
list, weighted by its count, with the run's validation words left out of the lexicon so that
they play the words a user types that the list lacks,

    lambda* = argmax_lambda  sum_w c_w log(lambda P_lex(w) + (1 - lambda) P_rnn(w)).

The log-likelihood is concave in lambda, and EM climbs it monotonically: with
r_w = lambda P_lex(w) / P(w) the share of w explained by the lexicon, lambda <- sum c_w r_w / sum c_w.
(Fitting on validation words alone would give lambda = 0: none of them is in the lexicon.)
On a long list, the known words' sum is estimated from a sample drawn by count (fit_for_list),
which bounds the RNN's work: a few seconds whatever the list's length.

A flat list (every count alike: package names, a catalogue without sales) makes that fit say
nothing: P_lex(w) = 1/N dwarfs P_rnn(w) for every listed word, so each known word is all
lexicon (r_w = 1), each new one all RNN (r_w = 0), and lambda* is the known words' share,
1 - the validation share, whatever the model knows. There lambda is fitted instead on what
users type (fit_on_prefixes): each word, known or held out as new, typed character by character,
and the likelihood of the word given each typed prefix s,

    P(w | s) = P(w) / P(s*),   P(s*) = lambda P_lex(s*) + (1 - lambda) P_rnn(s*),

which is what completion ranks by: lambda now trades how often the typed word is one of the
list's below s against the RNN's say. lambda is kept at most 1 - RNN_FLOOR, so the RNN can
still propose.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from rnnac.engine.model import RNN
from rnnac.engine.vocab import Vocab, make_batch
from rnnac.storage.folding import Folding, fold
from rnnac.storage.lexicon import Lexicon, LexiconData

SCORE_BATCH = 512  # words per target_logprobs call
# Scoring runs its GEMMs on one BLAS thread, as searches do: on a 2-core VM measured here, OpenBLAS's
# second thread cost 8 ms a GEMM (a (512, 64) x (64, 64) takes 41 us on one), 20 times the work.
FIT_WORDS = 20_000  # known words the lambda fit scores at most: above, a sample of this many draws
RNN_FLOOR = 0.05  # the least weight the RNN keeps in a flat list's fit (fit_on_prefixes)
PREFIX_CHARS = 12  # typed prefixes a flat list's fit follows per word, at most (the first ones)


def rnn_word_logprobs(model: RNN, vocab: Vocab, words: Sequence[str], batch_size: int = SCORE_BATCH) -> np.ndarray:
    """log P_rnn(word) (N,): the log-probabilities of each word's characters and its end."""
    logp = np.zeros(len(words))  # (N,)
    for rows, steps in rnn_step_logprobs(model, vocab, words, batch_size):
        logp[rows] = steps.sum(axis=1)  # (B,)
    return logp


def with_rnn_logp(model: RNN, vocab: Vocab, folding: Folding | bool, lexicon: LexiconData) -> LexiconData:
    """The lexicon with each word's log P_rnn under `model` (LexiconData.rnn_logp, float32), read
    as the model reads it (folded); -inf for a word it cannot spell. Saved beside the parameters
    that scored them, they bound the search where counts tie (rnnac.inference.search)."""
    folded = fold("\n".join(lexicon.words), folding).split("\n") if len(lexicon.words) else []
    if set("".join(folded)) <= set(vocab.chars):  # the usual case: only the empty word is out
        ok = [i for i, w in enumerate(folded) if w]
    else:
        ok = [i for i, w in enumerate(folded) if w and vocab.unknown_char(w) is None]
    logp = np.full(len(folded), -np.inf, dtype=np.float32)  # (N,)
    logp[ok] = rnn_word_logprobs(model, vocab, [folded[i] for i in ok])
    scored = LexiconData(lexicon.words, lexicon.counts, lexicon.held_out)
    scored.rnn_logp = np.minimum(logp, 0.0)  # float32 rounding never makes a log-probability positive
    return scored


def rnn_step_logprobs(model: RNN, vocab: Vocab, words: Sequence[str], batch_size: int = SCORE_BATCH):
    """The words read in batches of similar length (little padding): yields (rows, steps), rows
    the batch's indices into `words` and steps (B, T) the log y^_t of each one's characters then
    its end, 0 past it."""
    from rnnac.engine.bptt import Engine  # here: completing, which imports prefix_terms, never loads the training engine

    engine = Engine(model, threads=1)  # one BLAS thread: see SCORE_BATCH
    by_length = sorted(range(len(words)), key=lambda i: len(words[i]))
    for start in range(0, len(words), batch_size):
        rows = by_length[start : start + batch_size]
        yield rows, engine.target_logprobs(make_batch([words[i] for i in rows], vocab))


def prefix_terms(lexicon: Lexicon, mixture_lambda: float, trie: np.ndarray, prefix_lp: np.ndarray):
    """The mixture's terms for prefixes s: (log lambda - log C, log lambda P_lex(s*) (G,),
    log (1 - lambda) P_rnn(s*) (G,)), from the prefixes' lexicon nodes trie (G,) (-1 off the
    lexicon: mass 0) and their RNN log-probs prefix_lp (G,); P(s*) is the sum of the last two."""
    lex_weight, rnn_weight = _log_weights(lexicon, mixture_lambda)
    return lex_weight, lex_weight + lexicon.log_mass(trie), rnn_weight + prefix_lp


def word_logprobs(lexicon: Lexicon, mixture_lambda: float, node: np.ndarray, rnn_logp: np.ndarray) -> np.ndarray:
    """log P(w) (n,) = log(lambda c_w / C + (1 - lambda) P_rnn(w)) of the words ending at the
    lexicon nodes `node` (n,) (-1, or a node no word ends at: count 0), from their log P_rnn(w) (n,)."""
    lex_weight, rnn_weight = _log_weights(lexicon, mixture_lambda)
    return np.logaddexp(lex_weight + lexicon.log_count(node), rnn_weight + rnn_logp)


def _log_weights(lexicon: Lexicon, mixture_lambda: float) -> tuple[float, float]:
    """(log lambda - log C, log (1 - lambda)): what multiplies a count, and P_rnn, in P(w)."""
    with np.errstate(divide="ignore"):  # log 0 = -inf: a weight of 0
        log_lambda, log_rest = np.log(mixture_lambda), np.log1p(-mixture_lambda)
    log_total = np.log(lexicon.total) if lexicon.total > 0 else 0.0  # no mass: every lexicon term is -inf
    return log_lambda - log_total, log_rest


def fit_lambda(lex_logp: np.ndarray, rnn_logp: np.ndarray, weights: np.ndarray, tol: float = 1e-10,
               max_iter: int = 10_000) -> float:
    """The lambda in [0, 1] that maximises sum_i w_i log(lambda e^lex_i + (1 - lambda) e^rnn_i), by EM.

    lex_logp may be -inf (a word outside the lexicon); rnn_logp is finite.
    fit_lambda([log 0.5, -inf], [log 0.1, log 0.1], [1, 1]) -> 0.375 (solve d/dlambda = 0 by hand)
    """
    lex_logp, rnn_logp = np.asarray(lex_logp, dtype=np.float64), np.asarray(rnn_logp, dtype=np.float64)
    weights = np.asarray(weights, dtype=np.float64) / np.sum(weights)  # (N,)
    # Only the ratio matters: P_lex / P_rnn, kept finite by working with the difference of logs.
    log_ratio = lex_logp - rnn_logp  # (N,) -inf outside the lexicon
    mixture_lambda = 0.5
    for _ in range(max_iter):
        # r_i = lambda q_i / (lambda q_i + 1 - lambda), q_i = P_lex / P_rnn, computed as a logistic in log space
        with np.errstate(over="ignore"):
            r = 1.0 / (1.0 + np.exp(np.log1p(-mixture_lambda) - np.log(mixture_lambda) - log_ratio))  # (N,)
        new = float(np.dot(weights, r))
        if abs(new - mixture_lambda) < tol:
            return new
        mixture_lambda = min(max(new, 1e-12), 1 - 1e-12)  # stay inside (0, 1), where the logs are defined
    return mixture_lambda


class LambdaFit(NamedTuple):
    """A fitted lambda and the words it was fitted on."""

    mixture_lambda: float
    n_known: int  # the list's scorable words in the lexicon
    n_new: int  # its scorable held-out words, outside the lexicon
    n_drawn: int | None  # draws of the known words scored by the RNN; None: every known word was
    on_prefixes: bool = False  # a flat list's fit, on typed prefixes (fit_on_prefixes)

    def describe(self) -> str:
        """How it was fitted, for the run's log and `rnnac info` (meta mixture_fit): "fitted on the
        list by count, ...", on a sample, or on a flat list's typed prefixes."""
        if self.on_prefixes:
            scored = "every" if self.n_drawn is None else f"a sample of {self.n_drawn:,} of the"
            return (f"flat list: fitted on what users type, {scored} {self.n_known:,} words and the {self.n_new:,} "
                    f"validation words as new ones typed a character at a time, the RNN's weight at least {RNN_FLOOR:g}")
        if self.n_drawn is None:
            return "fitted on the list by count, validation words as new ones"
        return (f"fitted on a sample of {self.n_drawn:,} of {self.n_known:,} words drawn by count, "
                f"the {self.n_new:,} validation words as new ones")


def fit_for_list(model: RNN, vocab: Vocab, words: Sequence[str], counts: np.ndarray, held_out: np.ndarray,
                 max_words: int = FIT_WORDS, seed: int = 0) -> LambdaFit | None:
    """lambda for a trained model and its word list: every scorable word weighted by its count,
    the held-out (validation) words outside the lexicon. None when no scorable word is held
    out: nothing shows how often a user types a word the list lacks.

    With more than `max_words` scorable words in the lexicon, the RNN scores a sample instead
    (_sample_for_fit, seeded by `seed`), so the fit takes about as long whatever the list's size.
    """
    counts, held_out = np.asarray(counts, dtype=np.float64), np.asarray(held_out, dtype=bool)
    scorable = np.array([vocab.unknown_char(w) is None for w in words], dtype=bool)  # (N,)
    if not held_out[scorable].any():
        return None
    known = ~held_out
    n_known, n_new = int((scorable & known).sum()), int((scorable & held_out).sum())
    if counts[known].size and counts[known].min() == counts[known].max():
        return fit_on_prefixes(model, vocab, words, known, scorable, max_words, np.random.default_rng(seed))
    lex_logp = np.full(len(words), -np.inf)  # (N,)
    with np.errstate(divide="ignore"):
        lex_logp[known] = np.log(counts[known]) - np.log(counts[known].sum())
    if n_known > max_words:
        rows, weights = _sample_for_fit(counts, scorable & known, scorable & held_out, max_words,
                                        np.random.default_rng(seed))
        rnn_logp = np.zeros(len(rows))  # (S + 1,); the last row, the new words, needs none (below)
        rnn_logp[:-1] = rnn_word_logprobs(model, vocab, [words[i] for i in rows[:-1]])
        lex = np.append(lex_logp[rows[:-1]], -np.inf)  # (S + 1,)
        return LambdaFit(fit_lambda(lex, rnn_logp, weights), n_known, n_new, max_words)
    rnn_logp = rnn_word_logprobs(model, vocab, [w for w, ok in zip(words, scorable) if ok])
    return LambdaFit(fit_lambda(lex_logp[scorable], rnn_logp, counts[scorable]), n_known, n_new, None)


def fit_on_prefixes(model: RNN, vocab: Vocab, words: Sequence[str], known: np.ndarray, scorable: np.ndarray,
                    max_words: int = FIT_WORDS, rng: np.random.Generator | None = None) -> LambdaFit:
    """A flat list's lambda (every known word's count alike; see the module's docstring): the
    lambda in [0, 1 - RNN_FLOOR] that maximises the mean over typed words w and their first
    PREFIX_CHARS prefixes s of log P(w | s), the known words (in the lexicon) and the held-out
    ones (outside it) each typed once. Above `max_words` of either, a uniform sample of that many
    stands for them, weighted up to their number. known, scorable (N,) bool."""
    rng = rng or np.random.default_rng(0)
    lexicon = sorted(words[i] for i in np.flatnonzero(known))  # P_lex(s*) = (words below s) / N
    groups = [np.flatnonzero(scorable & known), np.flatnonzero(scorable & ~known)]
    drawn = [g if len(g) <= max_words else np.sort(rng.choice(g, size=max_words, replace=False)) for g in groups]
    typed = [words[i] for i in np.concatenate(drawn)]  # (S,)
    weight = np.concatenate([np.full(len(d), len(g) / max(len(d), 1)) for g, d in zip(groups, drawn)])  # (S,)
    in_lexicon = np.concatenate([np.ones(len(drawn[0]), dtype=bool), np.zeros(len(drawn[1]), dtype=bool)])
    # Per typed word: log P_rnn(w), and per prefix s of it log P_rnn(s*) and log P_lex(s*).
    word_rnn, word_lex = np.zeros(len(typed)), np.where(in_lexicon, -np.log(len(lexicon)), -np.inf)  # (S,) each
    rows, prefix_rnn, prefix_lex = [], [], []
    for batch, steps in rnn_step_logprobs(model, vocab, typed):
        running = np.cumsum(steps, axis=1)  # (B, T): log P_rnn of the first t + 1 characters
        for r, row in zip(batch, running):
            word = typed[r]
            word_rnn[r] = row[len(word)]  # its characters and its end
            n = min(len(word), PREFIX_CHARS)
            below = [bisect_right(lexicon, word[:j] + "\U0010ffff") - bisect_left(lexicon, word[:j]) for j in range(1, n + 1)]
            with np.errstate(divide="ignore"):
                prefix_lex.append(np.log(below) - np.log(len(lexicon)))
            prefix_rnn.append(row[:n])
            rows.append(np.full(n, r))
    rows, prefix_rnn, prefix_lex = np.concatenate(rows), np.concatenate(prefix_rnn), np.concatenate(prefix_lex)  # (P,) each
    typed_weight = weight[rows]  # (P,)

    def loglik(lam: float) -> float:
        """sum over typed (w, s) of weight log P(w | s)."""
        with np.errstate(divide="ignore"):
            log_lam, log_rest = np.log(lam), np.log1p(-lam)
        word = np.logaddexp(log_lam + word_lex, log_rest + word_rnn)[rows]  # (P,)
        prefix = np.logaddexp(log_lam + prefix_lex, log_rest + prefix_rnn)  # (P,)
        return float(np.dot(typed_weight, word - prefix))

    # One-dimensional and smooth: a grid even in log(1 - lambda), then the best point's neighbours.
    grid = np.concatenate([[0.0], 1.0 - np.geomspace(1.0, RNN_FLOOR, 120)[1:]])  # (120,) from 0 to 1 - RNN_FLOOR
    scores = [loglik(lam) for lam in grid]
    best = int(np.argmax(scores))
    fine = np.linspace(grid[max(best - 1, 0)], grid[min(best + 1, len(grid) - 1)], 41)
    lam = max(fine, key=loglik)
    return LambdaFit(float(lam), len(groups[0]), len(groups[1]),
                     None if all(len(g) == len(d) for g, d in zip(groups, drawn)) else max_words, on_prefixes=True)


def _sample_for_fit(counts: np.ndarray, known: np.ndarray, new: np.ndarray, draws: int,
                    rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A sample standing for the whole list in fit_lambda's objective: (rows (S + 1,), weights (S + 1,)).

    1. The known words: `draws` draws with replacement, each word with probability c_w / C_known
       (evenly when no known word has a count); rows[:-1] are the S distinct words drawn, each
       weighing (times drawn) C_known / draws, so the sum over them estimates sum_w c_w f(w).
    2. The new words (held out): outside the lexicon r_w = 0 whatever P_rnn(w), so all of them
       make one term of weight C_new, exactly, and need no RNN; rows[-1] is -1, a placeholder.
    counts (N,); known, new (N,) bool.
    """
    rows = np.flatnonzero(known)  # (n,)
    mass = counts[rows].sum()
    drawn = rng.choice(rows, size=draws, p=counts[rows] / mass if mass > 0 else None)  # (draws,)
    rows, times = np.unique(drawn, return_counts=True)  # (S,) each
    weights = np.append(times * (mass / draws if mass > 0 else 1.0), counts[new].sum())  # (S + 1,)
    return np.append(rows, -1), weights
