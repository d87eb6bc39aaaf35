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
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rnnac.engine.model import RNN
from rnnac.engine.vocab import Vocab, make_batch
from rnnac.storage.lexicon import Lexicon

SCORE_BATCH = 512  # words per target_logprobs call


def rnn_word_logprobs(model: RNN, vocab: Vocab, words: Sequence[str], batch_size: int = SCORE_BATCH) -> np.ndarray:
    """log P_rnn(word) (N,): the log-probabilities of each word's characters and its end."""
    logp = np.zeros(len(words))  # (N,)
    for rows, steps in rnn_step_logprobs(model, vocab, words, batch_size):
        logp[rows] = steps.sum(axis=1)  # (B,)
    return logp


def rnn_step_logprobs(model: RNN, vocab: Vocab, words: Sequence[str], batch_size: int = SCORE_BATCH):
    """The words read in batches of similar length (little padding): yields (rows, steps), rows
    the batch's indices into `words` and steps (B, T) the log y^_t of each one's characters then
    its end, 0 past it."""
    from rnnac.engine.bptt import Engine  # here: completing, which imports prefix_terms, never loads the training engine

    engine = Engine(model)
    by_length = sorted(range(len(words)), key=lambda i: len(words[i]))
    for start in range(0, len(words), batch_size):
        rows = by_length[start : start + batch_size]
        yield rows, engine.target_logprobs(make_batch([words[i] for i in rows], vocab))


def prefix_terms(lexicon: Lexicon, mixture_lambda: float, trie: np.ndarray, prefix_lp: np.ndarray):
    """The mixture's terms for prefixes s: (log lambda - log C, log lambda P_lex(s*) (G,),
    log (1 - lambda) P_rnn(s*) (G,)), from the prefixes' lexicon nodes trie (G,) (-1 off the
    lexicon: mass 0) and their RNN log-probs prefix_lp (G,); P(s*) is the sum of the last two."""
    with np.errstate(divide="ignore"):  # log 0 = -inf: a weight of 0
        log_lambda, log_rest = np.log(mixture_lambda), np.log1p(-mixture_lambda)
    log_total = np.log(lexicon.total) if lexicon.total > 0 else 0.0  # no mass: every lexicon term is -inf
    return log_lambda - log_total, log_lambda - log_total + lexicon.log_mass(trie), log_rest + prefix_lp


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


def fit_for_list(model: RNN, vocab: Vocab, words: Sequence[str], counts: np.ndarray,
                 held_out: np.ndarray) -> float | None:
    """lambda for a trained model and its word list: every scorable word weighted by its count,
    the held-out (validation) words outside the lexicon. None when no scorable word is held
    out: nothing shows how often a user types a word the list lacks."""
    counts, held_out = np.asarray(counts, dtype=np.float64), np.asarray(held_out, dtype=bool)
    scorable = np.array([vocab.unknown_char(w) is None for w in words], dtype=bool)  # (N,)
    if not held_out[scorable].any():
        return None
    known = ~held_out
    lex_logp = np.full(len(words), -np.inf)  # (N,)
    with np.errstate(divide="ignore"):
        lex_logp[known] = np.log(counts[known]) - np.log(counts[known].sum())
    rnn_logp = rnn_word_logprobs(model, vocab, [w for w, ok in zip(words, scorable) if ok])
    return fit_lambda(lex_logp[scorable], rnn_logp, counts[scorable])
