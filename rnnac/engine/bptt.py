"""Reverse-mode back-propagation through time over a padded batch (seed 004, eqs. 84-88).

Forward, time-major, a_0 = 0:
    z_t = W a_{t-1} + U x_t + b      a_t = h(z_t)      o_t = V a_t + c      y^_t = softmax(o_t)
Loss, the mean over valid targets (mask m): L = sum_t m_t L_t / sum_t m_t, with
    L_t = -log y^_t[y_t]                   cross-entropy (seeds 000, 004), nats per character
    L_t = 1/2 ||y^_t - onehot(y_t)||^2     squared error on the softmax outputs (seeds 002, 003)
Backward, t = T..1, carrying the gradient da_next = W^T dz_{t+1} into step t:
    do_t = dL/do_t                                (84) dc = sum_t do_t
    da_t = V^T do_t + da_next                     (86) dV = sum_t do_t a_t^T
    dz_t = da_t * h'(z_t)                         (85) db = sum_t dz_t
    (87) dW = sum_t dz_t a_{t-1}^T                (88) dU = sum_t dz_t x_t^T
Padding sits after each word's end, so it never feeds a valid position: masking do_t is enough.

Shape letters: T time, B batch, TB = T*B positions, H hidden, K vocabulary. Only W a_{t-1} and its
backward product are inside the time loops; everything else is one GEMM or array op over all TB.
An Engine owns what the maths does not: reusable buffers and the BLAS thread count, one per step.

    engine = Engine(model)
    value, grads = engine.loss_and_grads(batch)   # grads: {"U": dU, "W": dW, "b": db, "V": dV, "c": dc}

Performance notes: forward is RNN.hidden and RNN.step laid out time-major over the whole batch,
in place in buffers reused across steps (Workspace), which spares large runs a page fault per
step. U x_t + b is a gather of table rows, not a one-hot product, and the in-loop GEMM reads a
contiguous W^T. o_t = V a_t for all t is one (TB, H) x (H, K) GEMM with a contiguous V^T, which
BLAS runs 8-30% faster than V A^T; one copy then gives the (K, TB) layout whose column
reductions the softmax vectorises across positions. The softmax's normalisation and the loss
weight are one pass over O. Backward, h'(z_t) is one array op over all t, (87) one GEMM, and
(88) a GEMM with the one-hot inputs (7-11x faster than a scatter with np.add.at), whose row sums
give (85): each position has exactly one input token. One BLAS thread count serves a whole step:
mixing counts across its phases was no faster than the better single count.
"""

from __future__ import annotations

import math

import numpy as np

from rnnac.engine import blas
from rnnac.engine.model import ACTIVATIONS, RNN
from rnnac.engine.vocab import Batch

LOSSES = ("cross_entropy", "squared_error")


class Workspace:
    """Flat buffers reused across steps, so large runs do not pay page faults every step."""

    def __init__(self):
        self.buffers: dict[tuple, np.ndarray] = {}  # (name, dtype) -> flat buffer
        self.views: dict[tuple, np.ndarray] = {}  # (name, shape, dtype) -> its view, a hit costs one lookup

    def get(self, name: str, shape: tuple, dtype) -> np.ndarray:
        view = self.views.get((name, shape, dtype))
        if view is not None:
            return view
        size = math.prod(shape)
        key = (name, np.dtype(dtype))
        buf = self.buffers.get(key)
        if buf is None or buf.size < size:
            buf = self.buffers[key] = np.empty(size, dtype=dtype)
            self.views = {k: v for k, v in self.views.items() if k[0] != name}  # they see the old buffer
        view = self.views[(name, shape, dtype)] = buf[:size].reshape(shape)
        return view


def _time_major(batch: Batch, dtype):
    inputs = np.ascontiguousarray(batch.inputs.T)  # (T, B)
    targets = np.ascontiguousarray(batch.targets.T).reshape(-1)  # (TB,)
    mask = np.ascontiguousarray(batch.mask.T, dtype=dtype).reshape(-1)  # (TB,)
    return inputs, targets, mask


def forward(model, inputs: np.ndarray, ws: Workspace, keep: np.ndarray | None = None):
    """Hidden states A (T, B, H), A[t] after reading input t, and logits O (K, TB). `keep` (T, B, H),
    when given, is a dropout mask m_t (0, or 1 / (1 - p)) on the states the output layer reads.
    RNN.hidden and RNN.step, time-major over the whole batch: tests/test_model.py checks the two agree."""
    p, dtype = model.params, model.dtype
    h = ACTIVATIONS[model.activation].h
    T, B = inputs.shape
    H, K = model.hidden_size, model.vocab_size
    table = p["U"].T + p["b"]  # (K, H): row k is U e_k + b, so b is folded into the gather
    A = ws.get("A", (T, B, H), dtype)
    np.take(table, inputs, axis=0, mode="clip", out=A)  # U x_t + b for every t, (T, B, H)
    WT = np.ascontiguousarray(p["W"].T)  # (H, H)
    Wa = ws.get("Wa", (B, H), dtype)
    a = list(A)  # the per-step views a_t, made once
    h(a[0], out=a[0])  # a_0 = 0, so z_1 = U x_1 + b
    for t in range(1, T):
        np.dot(a[t - 1], WT, out=Wa)  # W a_{t-1}  (B, H)
        a[t] += Wa  # z_t
        h(a[t], out=a[t])  # a_t = h(z_t)
    logits = ws.get("logits", (T * B, K), dtype)
    read = A if keep is None else A * keep  # dropout: o_t = V (m_t * a_t) + c; the recurrence keeps a_t whole
    np.dot(read.reshape(T * B, H), np.ascontiguousarray(p["V"].T), out=logits)  # V a_t for all t, (TB, K)
    O = ws.get("O", (K, T * B), dtype)
    np.add(logits.T, p["c"][:, None], out=O)  # o_t = V a_t + c, (K, TB)
    return A, O


def softmax_loss(O: np.ndarray, targets: np.ndarray, mask: np.ndarray, loss: str, need_grad: bool):
    """Mean loss over masked positions; with need_grad, O is overwritten by dL/do (K, TB)."""
    TB = O.shape[1]
    cols = np.arange(TB)
    n_valid = mask.sum(dtype=np.float64)
    O -= O.max(axis=0)  # stable softmax: the largest logit becomes 0
    flat, at_target = O.reshape(-1), targets * TB + cols  # O[y_t, t] = flat[at_target[t]]
    shifted_target = flat[at_target]  # (TB,)
    np.exp(O, out=O)
    total = O.sum(axis=0)  # (TB,)
    if loss == "cross_entropy":
        logp = shifted_target - np.log(total)  # log y^[y], exact even where y^[y] underflows
        value = -np.dot(mask, logp.astype(np.float64)) / n_valid
        if need_grad:
            weight = (mask / n_valid).astype(O.dtype)  # (TB,) m_t / sum m
            O *= weight / total  # y^ = exp / total, times m_t / sum m
            flat[at_target] -= weight  # (84) dL/do = (y^ - onehot(y)) m_t / sum m
    else:
        O /= total  # y^ (K, TB)
        err = O.copy()  # (K, TB)
        err[targets, cols] -= 1  # y^ - onehot(y)
        value = 0.5 * np.dot(mask, (err * err).sum(axis=0).astype(np.float64)) / n_valid
        if need_grad:
            err -= (O * err).sum(axis=0)  # back through softmax: J^T e = y^ * (e - <y^, e>)
            O *= err
            O *= (mask / n_valid).astype(O.dtype)
    return float(value)


def backward(model, inputs, A, dO, truncate, ws: Workspace, keep: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Gradients of the loss from the cached states A (T, B, H) and dL/do (K, TB); `keep` is
    forward's dropout mask, if any."""
    p, dtype = model.params, model.dtype
    T, B, H = A.shape
    TB, K = T * B, model.vocab_size
    read = A if keep is None else A * keep  # what the output layer read, m_t * a_t
    dc = dO.sum(axis=1)  # (84)  (K,)
    dV = np.dot(dO, read.reshape(TB, H))  # (86)  (K, H)
    dZ = ws.get("dZ", (T, B, H), dtype)
    np.dot(dO.T, p["V"], out=dZ.reshape(TB, H))  # V^T do_t for all t, (T, B, H)
    if keep is not None:
        dZ *= keep  # back through the dropout mask: da_t from the output is m_t * V^T do_t
    if truncate is None or truncate >= T - 1:
        _backward_full(model, A, dZ, ws)
    else:
        _backward_truncated(model, A, dZ, truncate, ws)
    dZ2 = dZ.reshape(TB, H)
    dW = np.dot(dZ[1:].reshape(-1, H).T, A[:-1].reshape(-1, H))  # (87)  (H, H); a_{t-1} = 0 at t = 1 adds nothing
    X = ws.get("X", (TB, K), dtype)
    X.fill(0)
    X.reshape(-1)[np.arange(0, TB * K, K) + inputs.reshape(-1)] = 1  # one-hot x_t, (TB, K)
    dU = np.dot(dZ2.T, X)  # (88)  (H, K)
    db = dU.sum(axis=1)  # (85)  (H,): one input token a position, so (88) summed over tokens sums dz_t over positions
    return {"U": dU, "W": dW, "b": db, "V": dV, "c": dc}


def _backward_full(model, A, dZ, ws):
    """dZ holds V^T do_t on entry and dL/dz_t on return (full BPTT)."""
    T, B, H = A.shape
    W = model.params["W"]
    da_next = ws.get("da_next", (B, H), A.dtype)
    hprime = ACTIVATIONS[model.activation].dh(A, out=ws.get("hprime", (T, B, H), A.dtype))  # (T, B, H)
    dz, hp = list(dZ), list(hprime)  # per-step views made once, as in forward()
    dz[T - 1] *= hp[T - 1]  # no step after the last: dz_T = V^T do_T * h'(z_T)
    for t in range(T - 2, -1, -1):
        np.dot(dz[t + 1], W, out=da_next)  # da_next = W^T dz_{t+1}
        dz[t] += da_next  # da_t = V^T do_t + da_next
        dz[t] *= hp[t]  # dz_t = da_t * h'(z_t): back through h


def _backward_truncated(model, A, dZ, tau, ws):
    """As _backward_full, but the gradient of each L_s reaches back only to z_{s-tau} (seed 002).

    da_by_age[k] carries the part of da_t that comes from L_{t+k}, k = 0..tau; ages past tau are dropped.
    """
    T, B, H = A.shape
    W = model.params["W"]
    hprime = ACTIVATIONS[model.activation].dh(A, out=ws.get("hprime", (T, B, H), A.dtype))  # (T, B, H)
    da_by_age = np.zeros((tau + 1, B, H), dtype=A.dtype)  # da_t by the age of the loss it comes from
    dz_by_age = np.zeros((tau + 1, B, H), dtype=A.dtype)  # dz_t by age
    for t in range(T - 1, -1, -1):
        if tau > 0:
            np.dot(dz_by_age[:tau], W, out=da_by_age[1:])  # W^T dz_{t+1}, each one step older
        da_by_age[0] = dZ[t]  # V^T do_t: L_t's own part, age 0
        np.multiply(da_by_age, hprime[t], out=dz_by_age)  # back through h, every age
        dz_by_age.sum(axis=0, out=dZ[t])  # dz_t, summed over the ages kept


class Engine:
    """Reverse-mode BPTT for one model, with the buffers it reuses across steps and its BLAS
    threads (None: chosen by the size of the in-loop GEMM, see blas.auto_threads)."""

    def __init__(self, model: RNN, threads: int | None = None):
        self.model, self.threads = model, threads
        self.ws = Workspace()

    def loss_and_grads(self, batch: Batch, loss: str = "cross_entropy", truncate: int | None = None,
                       keep: np.ndarray | None = None):
        """Mean loss over the batch's valid targets and its gradient, a dict with the params' keys.

        `truncate=tau` lets each loss L_t reach back only to z_{t-tau} (seed 002); None is full
        back-propagation through time. `keep` (B, T, H) is a dropout mask on the states the output
        layer reads (see dropout_mask); the gradient is exact for that mask.
        """
        check_options(loss, truncate)
        inputs, targets, mask = _time_major(batch, self.model.dtype)
        keep = None if keep is None else np.ascontiguousarray(keep.transpose(1, 0, 2), dtype=self.model.dtype)  # (T, B, H)
        with blas.limit(self._threads(inputs.shape[1])):
            A, O = forward(self.model, inputs, self.ws, keep)
            value = softmax_loss(O, targets, mask, loss, need_grad=True)
            return value, backward(self.model, inputs, A, O, truncate, self.ws, keep)

    def loss(self, batch: Batch, loss: str = "cross_entropy") -> float:
        """Mean loss over the batch's valid targets, forward only."""
        check_options(loss, None)
        inputs, targets, mask = _time_major(batch, self.model.dtype)
        with blas.limit(self._threads(inputs.shape[1])):
            _, O = forward(self.model, inputs, self.ws)
        return softmax_loss(O, targets, mask, loss, need_grad=False)

    def target_logprobs(self, batch: Batch) -> np.ndarray:
        """log y^_t[y_t] at each position, (B, T) float64, 0.0 where the mask is 0."""
        inputs, targets, mask = _time_major(batch, self.model.dtype)
        T, B = inputs.shape
        with blas.limit(self._threads(B)):
            _, O = forward(self.model, inputs, self.ws)
        O = O.astype(np.float64)  # (K, TB)
        O -= O.max(axis=0)
        logp = O[targets, np.arange(T * B)] - np.log(np.exp(O).sum(axis=0))  # (TB,)
        return (logp * (mask != 0)).reshape(T, B).T.copy()  # (B, T)

    def _threads(self, batch_size: int) -> int | None:
        """BLAS threads for a whole step: the Engine's own, else blas.auto_threads for its in-loop GEMM."""
        if self.threads is not None:
            return self.threads
        return blas.auto_threads(self.model.hidden_size, batch_size)


def dropout_mask(rng: np.random.Generator, shape: tuple[int, ...], p: float, dtype=np.float32) -> np.ndarray:
    """Inverted dropout: each entry 0 with probability p, else 1 / (1 - p), so its mean is 1."""
    keep = (rng.random(shape) >= p).astype(dtype)
    keep /= 1 - p
    return keep


def check_options(loss: str, truncate: int | None) -> None:
    """ValueError unless `loss` is one of LOSSES and `truncate` None or an integer >= 0."""
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {', '.join(LOSSES)}, got {loss!r}")
    is_int = isinstance(truncate, (int, np.integer)) and not isinstance(truncate, bool)
    if truncate is not None and (not is_int or truncate < 0):
        raise ValueError(f"truncate must be None or an integer >= 0, got {truncate!r}")
