"""The mixture weight lambda: EM against closed forms and brute force, and the words it is fitted on."""

import numpy as np
import pytest
from conftest import WORDS, tiny_model

import rnnac
from rnnac.inference.mixture import fit_for_list, fit_lambda, rnn_word_logprobs


def mixture_loglik(mixture_lambda: float, lex_logp: np.ndarray, rnn_logp: np.ndarray, weights: np.ndarray) -> float:
    """sum_i w_i log(mixture_lambda e^lex_i + (1 - mixture_lambda) e^rnn_i), the objective fit_lambda maximises."""
    with np.errstate(divide="ignore"):
        terms = np.logaddexp(np.log(mixture_lambda) + lex_logp, np.log1p(-mixture_lambda) + rnn_logp)  # (N,)
    return float(np.dot(weights, terms))


def test_fit_lambda_matches_the_closed_form():
    # 0.5 log(0.5 l + 0.1 (1 - l)) + 0.5 log(0.1 (1 - l)) is largest where 0.4 (1 - l) = 0.1 + 0.4 l.
    lam = fit_lambda(np.array([np.log(0.5), -np.inf]), np.log([0.1, 0.1]), np.ones(2))
    assert lam == pytest.approx(0.375, abs=1e-8)


@pytest.mark.parametrize("seed", range(5))
def test_fit_lambda_is_the_argmax_over_a_fine_grid(seed):
    rng = np.random.default_rng(seed)
    n = 200
    lex = np.log(rng.dirichlet(np.ones(n)))
    lex[rng.random(n) < 0.3] = -np.inf  # words outside the lexicon
    rnn = np.log(rng.dirichlet(np.ones(n)))
    weights = rng.integers(1, 50, n).astype(float)
    lam = fit_lambda(lex, rnn, weights)
    grid = np.linspace(1e-6, 1 - 1e-6, 20001)
    best = grid[np.argmax([mixture_loglik(g, lex, rnn, weights) for g in grid])]
    assert lam == pytest.approx(best, abs=1e-4)
    assert mixture_loglik(lam, lex, rnn, weights) >= max(mixture_loglik(g, lex, rnn, weights) for g in (best, 0.5))


def test_fit_lambda_goes_to_the_ends_when_one_side_explains_everything():
    rnn = np.log(np.full(4, 0.01))
    assert fit_lambda(np.log(np.full(4, 0.25)), rnn, np.ones(4)) > 0.999  # the lexicon is 25x likelier
    assert fit_lambda(np.full(4, -np.inf), rnn, np.ones(4)) < 1e-6  # no word in the lexicon


def test_rnn_word_logprobs_sum_the_steps(vocab):
    model = tiny_model(vocab)
    expected = []
    for word in WORDS:
        a, logp = model.step(model.initial_state(1), np.zeros(1, dtype=int))  # read the boundary
        total = 0.0
        for token in vocab.encode(word):
            total += logp[0, token]
            a, logp = model.step(a, np.array([token]))
        expected.append(total + logp[0, 0])  # and the end
    np.testing.assert_allclose(rnn_word_logprobs(model, vocab, WORDS, batch_size=2), expected, rtol=1e-12)


def test_fit_for_list_leaves_held_out_words_outside_the_lexicon(vocab):
    model = tiny_model(vocab)
    counts = np.array([5.0, 1.0, 2.0, 3.0, 4.0])
    held_out = np.array([False, True, False, False, True])
    lam = fit_for_list(model, vocab, WORDS, counts, held_out)
    known = ~held_out
    lex = np.where(known, np.log(np.where(known, counts, 1) / counts[known].sum()), -np.inf)
    assert lam == pytest.approx(fit_lambda(lex, rnn_word_logprobs(model, vocab, WORDS), counts), abs=1e-12)
    assert 0 < lam < 1


def test_fit_for_list_without_scorable_held_out_words_cannot_fit(vocab):
    model = tiny_model(vocab)
    assert fit_for_list(model, vocab, WORDS, np.ones(5), np.zeros(5, dtype=bool)) is None
    other = rnnac.Vocab.from_words(["xyz"])
    assert fit_for_list(tiny_model(other), other, WORDS, np.ones(5), np.ones(5, dtype=bool)) is None
