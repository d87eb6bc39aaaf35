"""Scoring whole words: how probable a model finds each word, character by character.

The RNN gives log P_rnn(w), the sum of log y^_t over w's characters and its end (seed 004's
L for one word, negated). With the mixture a completion ranks by (rnnac.inference.search), a word scores
P(w) = lambda c_w / total + (1 - lambda) P_rnn(w), and character t's surprisal is

    -log P(s_<=t *) + log P(s_<t *)     P(s*) = lambda P_lex(s*) + (1 - lambda) P_rnn(s*)

the mass of the words starting with the longer prefix over that of the shorter, then the end's
-log P(w) + log P(w*): the surprisals sum to -log P(w) either way. Per character divides by
the word's length + 1, the end included, as rnnac.evaluation.evaluate does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from rnnac.engine.vocab import Vocab
from rnnac.errors import UnknownCharError
from rnnac.inference.mixture import prefix_terms, rnn_step_logprobs, word_logprobs
from rnnac.storage.folding import fold
from rnnac.storage.lexicon import Lexicon


@dataclass
class WordScore:
    """One word's score: log P(word), and each character's surprisal then the end's (nats)."""

    word: str  # as given
    logprob: float = float("nan")
    surprisal: list[float] = field(default_factory=list)  # len(folded word) + 1 values, summing to -logprob
    chars: str = ""  # the word as the model reads it (NFC, case and accents folded): surprisal[i] is chars[i]'s
    error: str | None = None  # why it was not scored (a character outside the vocabulary)

    @property
    def nats_per_char(self) -> float:
        return -self.logprob / len(self.surprisal) if self.surprisal else float("nan")


def score_words(completer, words: Sequence[str], lexicon: Lexicon | None = None, mixture_lambda: float | None = None) -> list[WordScore]:
    """One WordScore per word, in order: the RNN's, or with a lexicon the mixture's (weight
    mixture_lambda, default the completer's)."""
    results = [WordScore(w) for w in words]
    folded = [fold(w, completer.folding) for w in words]
    todo = _scorable(results, folded, completer.vocab)
    if mixture_lambda is None:
        mixture_lambda = completer.mixture_lambda
    if lexicon is not None and not 0.0 <= mixture_lambda < 1.0:  # at 1 a word off the lexicon is impossible: -inf
        raise ValueError(f"mixture_lambda must be in [0, 1) to score words, got {mixture_lambda}")
    words = [folded[i] for i in todo]
    for rows, steps in rnn_step_logprobs(completer.model, completer.vocab, words):  # (B, T) each character, then the end
        for row, lp in zip(rows, steps):
            i, w = todo[row], words[row]
            lp = lp[: len(w) + 1]
            if lexicon is not None:
                lp = _mixture_steps(lexicon, completer.vocab.encode(w), lp, mixture_lambda)
            results[i].surprisal, results[i].chars = (-lp).tolist(), w
            results[i].logprob = float(lp.sum())
    return results


def _scorable(results: list[WordScore], folded: list[str], vocab: Vocab) -> list[int]:
    """The indices of the words the model can score; each other result gets its error."""
    todo = []
    for i, (result, w) in enumerate(zip(results, folded)):
        char = vocab.unknown_char(w)
        if not w:
            result.error = "the empty word is not a word"
        elif char is not None:
            result.error = str(UnknownCharError(result.word, char))
        else:
            todo.append(i)
    return todo


def _mixture_steps(lexicon: Lexicon, ids: list[int], rnn_steps: np.ndarray, mixture_lambda: float) -> np.ndarray:
    """Each character's and the end's log-prob under the mixture (len(ids) + 1,), from the RNN's."""
    nodes = [0]
    for token in ids:  # the lexicon node of each prefix; -1 (its dead end, mass 0) once off it
        nodes.append(int(lexicon.child(nodes[-1], token)))
    rnn_prefix = np.concatenate([[0.0], np.cumsum(rnn_steps[:-1])])  # (n + 1,) log P_rnn(s*), s the first t characters
    _, lex, rnn = prefix_terms(lexicon, mixture_lambda, np.array(nodes), rnn_prefix)  # (n + 1,) each
    prefix = np.logaddexp(lex, rnn)  # (n + 1,) log P(s*)
    whole = word_logprobs(lexicon, mixture_lambda, np.array(nodes[-1:]), rnn_prefix[-1:] + rnn_steps[-1])  # (1,) log P(w)
    return np.diff(np.concatenate([prefix, whole]))
