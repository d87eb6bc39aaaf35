"""The vanilla (Elman) RNN: parameters, initialisation, activations, the recurrence.

    z_t = W a_{t-1} + U x_t + b      a_t = h(z_t)      (a_0 = 0)
    o_t = V a_t + c                  y^_t = softmax(o_t)

Shapes: U (H, K), W (H, H), b (H,), V (K, H), c (K,); H hidden units, K vocabulary
size (the word boundary, id 0, included), n sequences (rows) stepped together. x_t is one-hot,
so `U x_t` is a column of U. `RNN.hidden` is the one statement of the recurrence: inference
steps with it, rtrl.py builds on it, and bptt.py's time-major forward is tested against it.
Training maths lives in bptt.py (reverse mode, seed 004) and rtrl.py (forward mode, seed 000).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

PARAM_NAMES = ("U", "W", "b", "V", "c")
FLOAT_DTYPES = ("float32", "float64")  # the dtypes a model may have


@dataclass(frozen=True)
class Activation:
    """h and its derivative. Both write into `out` (which may be their input) and return it;
    the derivative is computed from a = h(z), which is what BPTT keeps."""

    h: Callable[[np.ndarray, np.ndarray], np.ndarray]  # h(z, out) -> a
    dh: Callable[[np.ndarray, np.ndarray], np.ndarray]  # dh(a, out) -> h'(z)


def _sigmoid(z: np.ndarray, out: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):  # exp(-z) -> inf for z << 0 gives the right limit, 0
        np.negative(z, out=out)
        np.exp(out, out=out)
    out += 1
    return np.reciprocal(out, out=out)


def _tanh_grad(a: np.ndarray, out: np.ndarray) -> np.ndarray:
    np.multiply(a, a, out=out)
    return np.subtract(1, out, out=out)  # 1 - tanh^2


def _sigmoid_grad(a: np.ndarray, out: np.ndarray) -> np.ndarray:
    np.subtract(1, a, out=out)
    return np.multiply(out, a, out=out)  # s (1 - s)


def _relu_grad(a: np.ndarray, out: np.ndarray) -> np.ndarray:
    return np.greater(a, 0, out=out)  # 1 where z > 0 (bool written as 0.0 / 1.0)


# The one table of activations: config.py offers its keys, every engine reads h and h' here.
ACTIVATIONS = {
    "tanh": Activation(lambda z, out: np.tanh(z, out=out), _tanh_grad),
    "sigmoid": Activation(_sigmoid, _sigmoid_grad),
    "relu": Activation(lambda z, out: np.maximum(z, 0, out=out), _relu_grad),
}


def log_softmax(o: np.ndarray, axis: int = -1) -> np.ndarray:
    """log softmax(o) along `axis`, stable: subtracts the max before exponentiating."""
    shifted = o - o.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def xavier(rng: np.random.Generator, fan_out: int, fan_in: int, dtype) -> np.ndarray:
    """Glorot/Xavier uniform: U(-r, r), r = sqrt(6 / (fan_in + fan_out)) (seed 000)."""
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, size=(fan_out, fan_in)).astype(dtype)


class RNN:
    """A character RNN over a vocabulary of K tokens with H hidden units.

    RNN.init(30, 64).params["W"].shape -> (64, 64)
    """

    def __init__(self, params: dict[str, np.ndarray], activation: str = "tanh"):
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {', '.join(ACTIVATIONS)}, got {activation!r}")
        missing = set(PARAM_NAMES) - set(params)
        if missing:
            raise ValueError(f"params lack {sorted(missing)}")
        self.params = params
        self.activation = activation

    @classmethod
    def init(cls, vocab_size: int, hidden_size: int, activation: str = "tanh", seed: int = 0,
             dtype=np.float32) -> RNN:
        """Xavier-initialised weights from `np.random.default_rng(seed)`; zero biases."""
        rng = np.random.default_rng(seed)
        K, H = vocab_size, hidden_size
        params = {
            "U": xavier(rng, H, K, dtype),  # (H, K)
            "W": xavier(rng, H, H, dtype),  # (H, H)
            "b": np.zeros(H, dtype=dtype),  # (H,)
            "V": xavier(rng, K, H, dtype),  # (K, H)
            "c": np.zeros(K, dtype=dtype),  # (K,)
        }
        return cls(params, activation)

    @property
    def hidden_size(self) -> int:
        return self.params["W"].shape[0]

    @property
    def vocab_size(self) -> int:
        return self.params["V"].shape[0]

    @property
    def dtype(self) -> np.dtype:
        return self.params["W"].dtype

    def initial_state(self, n: int) -> np.ndarray:
        return np.zeros((n, self.hidden_size), dtype=self.dtype)  # (n, H)

    def hidden(self, a_prev: np.ndarray, token_ids: np.ndarray) -> np.ndarray:
        """a_t = h(W a_{t-1} + U x_t + b) for n sequences: a_prev (n, H), token_ids (n,) -> (n, H)."""
        p = self.params
        z = a_prev @ p["W"].T  # (n, H)
        z += p["U"].T[token_ids]  # U x_t: the column of U for each token
        z += p["b"]
        return ACTIVATIONS[self.activation].h(z, out=z)  # (n, H)

    def step(self, a_prev: np.ndarray, token_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Feed one token to n independent sequences: (a (n, H), log y^ of the next token (n, K))."""
        a = self.hidden(a_prev, token_ids)  # (n, H)
        logp = log_softmax(a @ self.params["V"].T + self.params["c"])  # (n, K)
        return a, logp

    def n_params(self) -> int:
        return sum(self.params[name].size for name in PARAM_NAMES)
