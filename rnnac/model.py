"""The vanilla (Elman) RNN: parameters, initialisation, activations, one inference step.

    z_t = W a_{t-1} + U x_t + b      a_t = h(z_t)      (a_0 = 0)
    o_t = V a_t + c                  y^_t = softmax(o_t)

Shapes: U (H, K), W (H, H), b (H,), V (K, H), c (K,); H hidden units, K vocabulary
size (the word boundary, id 0, included). x_t is one-hot, so `U x_t` is a column of U.
Training maths lives in bptt.py (reverse mode, seed 004) and rtrl.py (forward mode, seed 000).
"""

from __future__ import annotations

import numpy as np

from rnnac.data import Batch

PARAM_NAMES = ("U", "W", "b", "V", "c")
LOSSES = ("cross_entropy", "squared_error")
ENGINES = ("bptt", "rtrl")


def _sigmoid(z: np.ndarray, out: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):  # exp(-z) -> inf for z << 0 gives the right limit, 0
        np.negative(z, out=out)
        np.exp(out, out=out)
    out += 1
    return np.reciprocal(out, out=out)


# name -> h, applied as h(z, out); its derivative, from a = h(z), is bptt.DERIVATIVES[name]
ACTIVATIONS = {
    "tanh": lambda z, out: np.tanh(z, out=out),
    "sigmoid": _sigmoid,
    "relu": lambda z, out: np.maximum(z, 0, out=out),
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
        self.threads: int | None = None  # BLAS threads for training steps; None picks by size
        self._workspace = None  # bptt's reusable buffers, made on first use

    @classmethod
    def init(cls, vocab_size: int, hidden_size: int, activation: str = "tanh", seed: int = 0,
             dtype=np.float32) -> "RNN":
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

    def loss_and_grads(self, batch: Batch, loss: str = "cross_entropy", truncate: int | None = None,
                       engine: str = "bptt"):
        """Mean loss over the batch's valid targets and its gradient, a dict with the params' keys.

        engine="bptt" is the fast reverse-mode engine (seed 004); "rtrl" is seed 000's forward-mode
        reference, O(H^4) per step, for small models and tests. `truncate=tau` lets each loss L_t
        reach back only to z_{t-tau} (seed 002); None is full back-propagation through time.
        """
        _check_options(loss, truncate, engine)
        if engine == "rtrl":
            from rnnac import rtrl

            return rtrl.loss_and_grads(self.params, self.activation, batch, loss, truncate)
        from rnnac import bptt

        return bptt.loss_and_grads(self, batch, loss, truncate)

    def loss(self, batch: Batch, loss: str = "cross_entropy") -> float:
        """Mean loss over the batch's valid targets, forward only."""
        _check_options(loss, None, "bptt")
        from rnnac import bptt

        return bptt.loss_only(self, batch, loss)

    def target_logprobs(self, batch: Batch) -> np.ndarray:
        """log P(target_t | x_1..x_t) at each position, (B, T); 0.0 where the mask is 0."""
        from rnnac import bptt

        return bptt.target_logprobs(self, batch)

    def initial_state(self, n: int) -> np.ndarray:
        return np.zeros((n, self.hidden_size), dtype=self.dtype)  # (N, H)

    def step(self, a_prev: np.ndarray, token_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Feed one token to N independent sequences: (a (N, H), log y^ of the next token (N, K))."""
        p = self.params
        h = ACTIVATIONS[self.activation]
        z = a_prev @ p["W"].T  # (N, H)
        z += p["U"].T[token_ids]  # U x_t: the column of U for each token
        z += p["b"]
        a = h(z, out=z)  # (N, H)
        logp = log_softmax(a @ p["V"].T + p["c"])  # (N, K)
        return a, logp

    def n_params(self) -> int:
        return sum(self.params[name].size for name in PARAM_NAMES)


def _check_options(loss: str, truncate: int | None, engine: str) -> None:
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {', '.join(LOSSES)}, got {loss!r}")
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    is_int = isinstance(truncate, (int, np.integer)) and not isinstance(truncate, bool)
    if truncate is not None and (not is_int or truncate < 0):
        raise ValueError(f"truncate must be None or an integer >= 0, got {truncate!r}")
