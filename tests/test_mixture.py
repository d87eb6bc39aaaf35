"""The mixture weight lambda: EM against closed forms and brute force, and the words it is fitted on."""

import numpy as np
import pytest
from conftest import WORDS, tiny_model

import rnnac
from rnnac.inference import mixture
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
    fit = fit_for_list(model, vocab, WORDS, counts, held_out)
    lam = fit.mixture_lambda
    assert (fit.n_known, fit.n_new, fit.n_drawn) == (3, 2, None)  # every word scored: no sample
    known = ~held_out
    lex = np.where(known, np.log(np.where(known, counts, 1) / counts[known].sum()), -np.inf)
    assert lam == pytest.approx(fit_lambda(lex, rnn_word_logprobs(model, vocab, WORDS), counts), abs=1e-12)
    assert 0 < lam < 1


def test_fit_for_list_without_scorable_held_out_words_cannot_fit(vocab):
    model = tiny_model(vocab)
    assert fit_for_list(model, vocab, WORDS, np.ones(5), np.zeros(5, dtype=bool)) is None
    other = rnnac.Vocab.from_words(["xyz"])
    assert fit_for_list(tiny_model(other), other, WORDS, np.ones(5), np.ones(5, dtype=bool)) is None


def zipf_list(n: int, seed: int = 0) -> tuple[list[str], np.ndarray, np.ndarray]:
    """n distinct words of 'ab' (n <= 2 ** 8), Zipf counts, every tenth word held out."""
    words = [format(i, "08b").replace("0", "a").replace("1", "b") for i in range(n)]
    counts = np.floor(1000.0 / np.arange(1, n + 1)) + 1  # (n,)
    return words, counts, np.arange(n) % 10 == 3


def test_fit_for_list_samples_only_above_max_words(monkeypatch):
    vocab = rnnac.Vocab.from_words(["ab"])
    model = tiny_model(vocab)
    words, counts, held_out = zipf_list(200)
    exact = fit_for_list(model, vocab, words, counts, held_out)
    assert exact.n_drawn is None and exact == fit_for_list(model, vocab, words, counts, held_out, max_words=180)
    asked = []
    monkeypatch.setattr(mixture, "rnn_word_logprobs",
                        lambda model, vocab, ws: asked.append(list(ws)) or rnn_word_logprobs(model, vocab, ws))
    sampled = fit_for_list(model, vocab, words, counts, held_out, max_words=50, seed=1)
    assert (sampled.n_known, sampled.n_new, sampled.n_drawn) == (180, 20, 50)
    assert "a sample of 50 of 180 words drawn by count, the 20 validation words as new ones" in sampled.describe()
    assert len(asked) == 1 and len(asked[0]) <= 50 and not {words[i] for i in np.flatnonzero(held_out)} & set(asked[0])
    assert sampled == fit_for_list(model, vocab, words, counts, held_out, max_words=50, seed=1)  # seeded
    assert sampled.mixture_lambda == pytest.approx(exact.mixture_lambda, abs=0.05)


def test_sample_for_fit_weighs_the_known_words_by_count_and_the_new_ones_exactly():
    counts = np.array([1.0, 3.0, 0.0, 2.0, 4.0])
    known, new = np.array([True, True, True, False, False]), np.array([False, False, False, True, True])
    rows, weights = mixture._sample_for_fit(counts, known, new, 1000, np.random.default_rng(0))
    assert rows[-1] == -1 and weights[-1] == 6.0  # the new words: one term, their whole count
    assert set(rows[:-1]) == {0, 1}  # a word without count is never drawn
    assert weights[:-1].sum() == pytest.approx(4.0)  # the known words' whole count
    assert weights[1] / weights[0] == pytest.approx(3.0, rel=0.15)  # drawn by count


# --- a flat list: fitted on what users type --------------------------------------------------


def typed_loglik(model, vocab, words, known, lam: float) -> float:
    """By hand: sum over every word w (each once) and its first PREFIX_CHARS prefixes s of
    log P(w | s) = log P(w) - log P(s*), with P(x) = lam P_lex(x) + (1 - lam) P_rnn(x), the
    lexicon the known words, each 1 / N_known; P_rnn from the model a character at a time."""
    lexicon = [w for w, k in zip(words, known) if k]
    total = 0.0
    for word, is_known in zip(words, known):
        a, logp = model.step(model.initial_state(1), np.zeros(1, dtype=int))
        prefix_rnn = []
        for token in vocab.encode(word):
            prefix_rnn.append((prefix_rnn[-1] if prefix_rnn else 0.0) + logp[0, token])
            a, logp = model.step(a, np.array([token]))
        word_p = lam * is_known / len(lexicon) + (1 - lam) * np.exp(prefix_rnn[-1] + logp[0, 0])
        for j in range(1, min(len(word), mixture.PREFIX_CHARS) + 1):
            below = sum(w.startswith(word[:j]) for w in lexicon)
            total += np.log(word_p) - np.log(lam * below / len(lexicon) + (1 - lam) * np.exp(prefix_rnn[j - 1]))
    return total


@pytest.mark.parametrize("seed", range(3))
def test_a_flat_lists_lambda_is_the_argmax_of_what_users_type(seed):
    rng = np.random.default_rng(seed)
    words = sorted({"".join(rng.choice(list("abc"), size=rng.integers(2, 14))) for _ in range(60)})
    vocab = rnnac.Vocab("abc")
    model = tiny_model(vocab)
    held_out = rng.random(len(words)) < 0.3
    fit = fit_for_list(model, vocab, words, np.ones(len(words)), held_out)
    assert fit.on_prefixes and (fit.n_known, fit.n_new, fit.n_drawn) == (int((~held_out).sum()), int(held_out.sum()), None)
    assert 0 <= fit.mixture_lambda <= 1 - mixture.RNN_FLOOR
    grid = np.linspace(0, 1 - mixture.RNN_FLOOR, 400)
    scores = [typed_loglik(model, vocab, words, ~held_out, lam) for lam in grid]
    best = max(scores)
    assert typed_loglik(model, vocab, words, ~held_out, fit.mixture_lambda) >= best - 1e-6 * abs(best)
    assert "flat list: fitted on what users type" in fit.describe()


def test_a_flat_list_keeps_the_rnns_floor_where_the_list_explains_everything():
    vocab = rnnac.Vocab("ab")
    words = [format(i, "08b").replace("0", "a").replace("1", "b") for i in range(200)]
    held_out = np.zeros(200, dtype=bool)
    held_out[7] = True  # one word in 200 is new: the list is nearly everything users type
    fit = fit_for_list(tiny_model(vocab), vocab, words, np.ones(200), held_out)
    assert fit.mixture_lambda == pytest.approx(1 - mixture.RNN_FLOOR)


def test_a_flat_list_samples_what_it_scores_above_max_words():
    vocab = rnnac.Vocab("ab")
    words = [format(i, "08b").replace("0", "a").replace("1", "b") for i in range(256)]
    held_out = np.arange(256) % 8 == 0
    exact = fit_for_list(tiny_model(vocab), vocab, words, np.ones(256), held_out)
    sampled = fit_for_list(tiny_model(vocab), vocab, words, np.ones(256), held_out, max_words=100, seed=2)
    assert sampled.n_drawn == 100 and "a sample of 100 of the 224 words" in sampled.describe()
    assert sampled.mixture_lambda == pytest.approx(exact.mixture_lambda, abs=0.1)
