"""The reverse-mode engine against finite differences, brute-force masking and hand-worked facts."""

import numpy as np
import pytest
from conftest import WORDS, tiny_model

import rnnac
from rnnac.engine.bptt import Engine
from rnnac.engine.model import ACTIVATIONS, PARAM_NAMES

ACTS = list(ACTIVATIONS)
LOSSES = ["cross_entropy", "squared_error"]


def centred_differences(f, params, eps=1e-5):
    """d f / d params[name][i] for every entry, by (f(p + eps) - f(p - eps)) / 2 eps."""
    grads = {}
    for name in PARAM_NAMES:
        p = params[name]
        g = np.zeros_like(p)
        for i in np.ndindex(p.shape):
            old = p[i]
            p[i] = old + eps
            up = f()
            p[i] = old - eps
            down = f()
            p[i] = old
            g[i] = (up - down) / (2 * eps)
        grads[name] = g
    return grads


def relative_error(a, b):
    return np.linalg.norm(a - b) / max(np.linalg.norm(a) + np.linalg.norm(b), 1e-300)


def truncated_surrogate(model, batch, loss, tau, frozen_states):
    """The loss whose exact gradient truncated BPTT computes: L_t sees the parameters only
    through steps t-tau..t; the state entering step t-tau is held at its unperturbed value."""
    p = model.params
    h = ACTIVATIONS[model.activation].h
    B, T = batch.inputs.shape
    K = model.vocab_size
    total = 0.0
    for t in range(T):
        start = max(0, t - tau)
        a = frozen_states[start]  # a_{start-1} computed with the unperturbed parameters
        for s in range(start, t + 1):
            a = h(a @ p["W"].T + p["U"].T[batch.inputs[:, s]] + p["b"], out=np.empty_like(a))
        logp = rnnac.engine.model.log_softmax(a @ p["V"].T + p["c"])  # (B, K)
        if loss == "cross_entropy":
            loss_t = -logp[np.arange(B), batch.targets[:, t]]
        else:
            err = np.exp(logp) - np.eye(K)[batch.targets[:, t]]
            loss_t = 0.5 * (err * err).sum(axis=1)
        total += (loss_t * batch.mask[:, t]).sum()
    return total / batch.mask.sum()


def hidden_states(model, batch):
    """[a_0 = 0, a_1, ..., a_T] for the batch, computed step by step."""
    a = model.initial_state(batch.inputs.shape[0])
    states = [a]
    for t in range(batch.inputs.shape[1]):
        a, _ = model.step(a, batch.inputs[:, t])
        states.append(a)
    return states


@pytest.mark.parametrize("activation", ACTS)
@pytest.mark.parametrize("loss", LOSSES)
def test_full_bptt_matches_finite_differences(vocab, batch, activation, loss):
    model = tiny_model(vocab, activation)
    value, grads = Engine(model).loss_and_grads(batch, loss)
    numeric = centred_differences(lambda: Engine(model).loss(batch, loss), model.params)
    for name in PARAM_NAMES:
        assert grads[name].shape == model.params[name].shape
        assert relative_error(grads[name], numeric[name]) < 1e-6, name
    assert value == pytest.approx(Engine(model).loss(batch, loss), rel=1e-14)


@pytest.mark.parametrize("activation", ACTS)
@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("tau", [0, 2])
def test_truncated_bptt_matches_finite_differences_of_its_surrogate(vocab, batch, activation, loss, tau):
    model = tiny_model(vocab, activation)
    _, grads = Engine(model).loss_and_grads(batch, loss, truncate=tau)
    frozen = [a.copy() for a in hidden_states(model, batch)]
    numeric = centred_differences(lambda: truncated_surrogate(model, batch, loss, tau, frozen), model.params)
    for name in PARAM_NAMES:
        assert relative_error(grads[name], numeric[name]) < 1e-6, name


@pytest.mark.parametrize("loss", LOSSES)
def test_a_window_one_step_short_of_the_batch_still_truncates(vocab, batch, loss):
    """tau = T - 2 is the longest window that truncates: only L_T loses a step, z_1 (the two longest
    words reach step T, so the cut is seen). z_1 reads U x_1 + b and W a_0 = 0: dU and db change."""
    model = tiny_model(vocab)
    T = batch.inputs.shape[1]
    assert batch.mask[:, T - 1].any()
    _, grads = Engine(model).loss_and_grads(batch, loss, truncate=T - 2)
    frozen = [a.copy() for a in hidden_states(model, batch)]
    numeric = centred_differences(lambda: truncated_surrogate(model, batch, loss, T - 2, frozen), model.params)
    _, full = Engine(model).loss_and_grads(batch, loss)
    for name in PARAM_NAMES:
        assert relative_error(grads[name], numeric[name]) < 1e-6, name
    for name in ("U", "b"):
        assert not np.allclose(grads[name], full[name], rtol=1e-9, atol=0), name


def test_truncation_changes_only_the_recurrent_gradients(vocab, batch):
    model = tiny_model(vocab)
    _, full = Engine(model).loss_and_grads(batch)
    _, long_window = Engine(model).loss_and_grads(batch, truncate=batch.inputs.shape[1] - 1)
    _, short = Engine(model).loss_and_grads(batch, truncate=1)
    for name in PARAM_NAMES:
        np.testing.assert_allclose(long_window[name], full[name], rtol=1e-12, atol=1e-15)
    for name in ("V", "c"):  # the output layer does not look back in time
        np.testing.assert_allclose(short[name], full[name], rtol=1e-12, atol=1e-15)
    for name in ("U", "W", "b"):
        assert not np.allclose(short[name], full[name])


@pytest.mark.parametrize("loss", LOSSES)
def test_padding_is_invisible(vocab, loss):
    """A padded batch's loss and gradient are the target-count-weighted mean of each word's own."""
    model = tiny_model(vocab)
    value, grads = Engine(model).loss_and_grads(rnnac.make_batch(WORDS, vocab), loss)
    counts = np.array([len(w) + 1 for w in WORDS], dtype=float)
    singles = [Engine(model).loss_and_grads(rnnac.make_batch([w], vocab), loss) for w in WORDS]
    assert value == pytest.approx(sum(n * v for n, (v, _) in zip(counts, singles)) / counts.sum(), rel=1e-12)
    for name in PARAM_NAMES:
        expected = sum(n * g[name] for n, (_, g) in zip(counts, singles)) / counts.sum()
        np.testing.assert_allclose(grads[name], expected, rtol=1e-10, atol=1e-14)


def test_loss_at_init_is_close_to_log_k():
    vocab = rnnac.Vocab("abcdefghijklmnopqrstuvwxyz")
    batch = rnnac.make_batch(["hello", "world", "recurrent", "network"], vocab)
    model = rnnac.RNN.init(len(vocab), 64, seed=3)
    assert Engine(model).loss(batch) == pytest.approx(np.log(27), abs=0.15)


def test_float32_follows_float64(vocab, batch):
    model64 = tiny_model(vocab, hidden_size=8)
    model32 = rnnac.RNN({k: v.astype(np.float32) for k, v in model64.params.items()})
    v64, g64 = Engine(model64).loss_and_grads(batch)
    v32, g32 = Engine(model32).loss_and_grads(batch)
    assert v32 == pytest.approx(v64, rel=1e-5)
    for name in PARAM_NAMES:
        assert g32[name].dtype == np.float32
        np.testing.assert_allclose(g32[name], g64[name], rtol=1e-3, atol=1e-5)


def test_target_logprobs_sum_to_the_loss(vocab, batch):
    model = tiny_model(vocab)
    logp = Engine(model).target_logprobs(batch)
    assert logp.shape == batch.inputs.shape
    assert np.all(logp[batch.mask == 0] == 0)
    assert -logp.sum() / batch.mask.sum() == pytest.approx(Engine(model).loss(batch), rel=1e-12)


def test_step_follows_the_batched_forward(vocab, batch):
    model = tiny_model(vocab)
    a = model.initial_state(len(WORDS))
    rows = np.arange(len(WORDS))
    for t in range(batch.inputs.shape[1]):
        a, logp = model.step(a, batch.inputs[:, t])
        np.testing.assert_allclose(np.exp(logp).sum(axis=1), 1, rtol=1e-12)
        expected = Engine(model).target_logprobs(batch)[:, t]
        valid = batch.mask[:, t] == 1
        np.testing.assert_allclose(logp[rows, batch.targets[:, t]][valid], expected[valid], rtol=1e-12)


def entropy_floor(words):
    """The lowest mean loss any model can reach on `words`: -log of the empirical next-character
    frequency given the prefix, averaged over every target (brute force over the prefix tree)."""
    following = {}
    for w in words:
        for i in range(len(w) + 1):
            nxt = w[i] if i < len(w) else ""
            following.setdefault(w[:i], []).append(nxt)
    total = sum(-np.log(nexts.count(n) / len(nexts)) for nexts in following.values() for n in nexts)
    return total / sum(len(w) + 1 for w in words)


def test_plain_sgd_learns_five_words_down_to_the_entropy_floor():
    words = ["cat", "dog", "bird", "fish", "horse"]
    vocab = rnnac.Vocab.from_words(words)
    batch = rnnac.make_batch(words, vocab)
    model = rnnac.RNN.init(len(vocab), 32, seed=0, dtype=np.float64)
    first = Engine(model).loss(batch)
    for _ in range(1500):
        _, grads = Engine(model).loss_and_grads(batch)
        for name in PARAM_NAMES:
            model.params[name] -= 0.5 * grads[name]  # the seeds' update, theta -= alpha dL/dtheta
    floor = entropy_floor(words)  # log 5 at each first letter, everything else determined
    assert floor == pytest.approx(5 * np.log(5) / sum(len(w) + 1 for w in words))
    assert first - floor > 1.5
    assert Engine(model).loss(batch) - floor < 0.01


@pytest.mark.parametrize("activation", ACTS)
@pytest.mark.parametrize("truncate", [None, 1])
def test_dropout_gradients_match_finite_differences_for_a_fixed_mask(vocab, batch, activation, truncate):
    from rnnac.engine.bptt import dropout_mask

    model = tiny_model(vocab, activation)
    B, T = batch.inputs.shape
    keep = dropout_mask(np.random.default_rng(0), (B, T, model.hidden_size), 0.3, np.float64)
    assert set(np.unique(keep)) == {0.0, 1 / 0.7}
    value, grads = Engine(model).loss_and_grads(batch, truncate=truncate, keep=keep)
    if truncate is None:
        numeric = centred_differences(lambda: Engine(model).loss_and_grads(batch, keep=keep)[0], model.params)
        for name in PARAM_NAMES:
            assert relative_error(grads[name], numeric[name]) < 1e-6, name
    ones = np.ones_like(keep)  # keeping everything is no dropout at all
    plain_value, plain = Engine(model).loss_and_grads(batch, truncate=truncate)
    kept_value, kept = Engine(model).loss_and_grads(batch, truncate=truncate, keep=ones)
    assert kept_value == pytest.approx(plain_value, rel=1e-14)
    for name in PARAM_NAMES:
        np.testing.assert_allclose(kept[name], plain[name], rtol=1e-13, atol=1e-15)
        assert not np.allclose(grads[name], plain[name])  # the mask matters
