"""The RNN's parameters and its inference step, against a plain loop written from the equations."""

import numpy as np
import pytest
from conftest import tiny_model

from rnnac.engine.model import RNN, log_softmax

ACTIVATIONS = ["tanh", "sigmoid", "relu"]
# h in a_t = h(z_t), written out independently of rnnac.engine.model.ACTIVATIONS.
H_BY_HAND = {
    "tanh": np.tanh,
    "sigmoid": lambda z: 1.0 / (1.0 + np.exp(-z)),
    "relu": lambda z: np.where(z > 0, z, 0.0),
}

# ---- init ----


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_init_shapes_and_dtype(dtype):
    K, H = 7, 5
    model = RNN.init(K, H, "tanh", seed=0, dtype=dtype)
    shapes = {name: p.shape for name, p in model.params.items()}
    assert shapes == {"U": (H, K), "W": (H, H), "b": (H,), "V": (K, H), "c": (K,)}
    assert all(p.dtype == dtype for p in model.params.values())
    assert (model.hidden_size, model.vocab_size, model.dtype) == (H, K, dtype)


def test_xavier_bound_is_reached_and_never_passed():
    K, H = 30, 64
    model = RNN.init(K, H, "tanh", seed=1, dtype=np.float64)
    for name, fan_in, fan_out in [("U", K, H), ("W", H, H), ("V", H, K)]:
        weights = model.params[name]
        r = np.sqrt(6.0 / (fan_in + fan_out))  # U(-r, r): r = sqrt(6/94) for U and V, sqrt(6/128) for W
        assert np.abs(weights).max() <= r, name
        # With >= 1,920 uniform draws, both ends of (-r, r) are approached within 5%,
        # and the variance is r^2 / 3 to within a few percent.
        assert weights.max() > 0.95 * r and weights.min() < -0.95 * r, name
        assert weights.var() == pytest.approx(r * r / 3, rel=0.1), name
    assert not model.params["b"].any() and not model.params["c"].any()  # biases start at zero


def test_init_is_seeded():
    a, b, c = (RNN.init(6, 4, seed=s, dtype=np.float64) for s in (3, 3, 4))
    for name in ("U", "W", "V"):
        np.testing.assert_array_equal(a.params[name], b.params[name])
        assert not np.array_equal(a.params[name], c.params[name]), name


def test_init_does_not_touch_the_global_random_state():
    np.random.seed(0)
    expected = np.random.rand()
    np.random.seed(0)
    RNN.init(6, 4, seed=9)
    assert np.random.rand() == expected


def test_n_params_by_hand():
    K, H = 7, 5
    # U: H*K = 35, W: H*H = 25, b: 5, V: K*H = 35, c: 7
    assert RNN.init(K, H).n_params() == 107


# ---- errors ----


def test_unknown_activation_is_an_error():
    params = RNN.init(4, 3).params
    with pytest.raises(ValueError, match="activation must be one of tanh, sigmoid, relu, got 'softplus'"):
        RNN(params, "softplus")


@pytest.mark.parametrize("missing", ["U", "W", "b", "V", "c"])
def test_missing_parameter_is_an_error(missing):
    params = {name: p for name, p in RNN.init(4, 3).params.items() if name != missing}
    with pytest.raises(ValueError, match=f"params lack \\['{missing}'\\]"):
        RNN(params, "tanh")


# ---- one inference step ----


def step_by_hand(params, activation, a_prev, token):
    """One sequence, one token: the equations of rnnac/engine/model.py's docstring, a loop over rows."""
    U, W, b, V, c = (params[name] for name in ("U", "W", "b", "V", "c"))
    H, K = U.shape
    x = np.zeros(K)
    x[token] = 1.0  # one-hot x_t
    z = np.array([sum(W[i, j] * a_prev[j] for j in range(H)) + sum(U[i, k] * x[k] for k in range(K)) + b[i]
                  for i in range(H)])  # z_t = W a_{t-1} + U x_t + b
    a = H_BY_HAND[activation](z)  # a_t = h(z_t)
    o = np.array([sum(V[k, j] * a[j] for j in range(H)) + c[k] for k in range(K)])  # o_t = V a_t + c
    logp = o - np.log(np.sum(np.exp(o)))  # log softmax(o_t)
    return a, logp


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_step_matches_the_equations(vocab, activation):
    model = tiny_model(vocab, activation, hidden_size=4, seed=2)
    words = ["abc", "cab", "b"]
    # Feed each word from the boundary on, all three sequences at once, as the search does.
    T = max(len(w) for w in words) + 1
    tokens = np.zeros((len(words), T), dtype=np.int64)  # (N, T), padded with the boundary
    for row, w in enumerate(words):
        tokens[row, 1 : len(w) + 1] = vocab.encode(w)
    a = model.initial_state(len(words))  # (N, H)
    assert a.shape == (3, 4) and not a.any()  # a_0 = 0
    by_hand = [np.zeros(4) for _ in words]
    for t in range(T):
        a, logp = model.step(a, tokens[:, t])
        for row in range(len(words)):
            by_hand[row], expected = step_by_hand(model.params, activation, by_hand[row], tokens[row, t])
            np.testing.assert_allclose(a[row], by_hand[row], rtol=1e-12, atol=1e-14)
            np.testing.assert_allclose(logp[row], expected, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(np.exp(logp).sum(axis=1), 1.0, rtol=1e-12)


def test_step_leaves_its_input_state_alone(vocab):
    model = tiny_model(vocab, "tanh", hidden_size=4)
    a0, _ = model.step(model.initial_state(2), np.array([1, 2]))
    kept = a0.copy()
    model.step(a0, np.array([3, 0]))
    np.testing.assert_array_equal(a0, kept)  # a search expands one state into several children


def test_log_softmax_by_hand_and_stable():
    o = np.array([[0.0, np.log(3.0)], [1000.0, 1000.0 + np.log(3.0)]])  # softmax [1/4, 3/4] in both rows
    np.testing.assert_allclose(log_softmax(o), np.log([[0.25, 0.75], [0.25, 0.75]]), rtol=1e-12)
