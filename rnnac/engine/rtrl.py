"""Forward-mode gradients: real-time recurrent learning, the derivation of seed 000.

Instead of running backward through time, carry the sensitivities of the hidden state
forward with it. From z_t = W a_{t-1} + U x_t + b and a_t = h(z_t):

    da_t/dW[j,k] = h'(z_t) * (e_j a_{t-1}[k] + W da_{t-1}/dW[j,k])
    da_t/dU[j,k] = h'(z_t) * (e_j x_t[k]     + W da_{t-1}/dU[j,k])
    da_t/db[j]   = h'(z_t) * (e_j            + W da_{t-1}/db[j])

starting from da_0/d. = 0, and dL_t/dtheta = (V^T do_t) . da_t/dtheta. The output layer needs no
recursion: dV = sum_t do_t a_t^T, dc = sum_t do_t. This is O(H^4) memory-light but slow work per
step: a reference for small models, written plainly, against which bptt.py is tested.

Truncation (seed 002): the sensitivity is kept split by how many steps ago each term entered;
terms older than tau steps are dropped, so L_t reaches back to z_{t-tau} as in bptt.py.
Shape letters: B batch, H hidden, K vocabulary.
"""

from __future__ import annotations

import numpy as np

from rnnac.engine.bptt import check_options
from rnnac.engine.model import ACTIVATIONS, RNN, log_softmax
from rnnac.engine.vocab import Batch


def _output_grad(o: np.ndarray, target: np.ndarray, loss: str):
    """Per-position loss (B,) and its gradient dL_t/do_t (B, K), written out plainly."""
    B, K = o.shape
    y_hat = np.exp(log_softmax(o))  # (B, K)
    y = np.eye(K)[target]  # one-hot targets (B, K)
    if loss == "cross_entropy":
        return -log_softmax(o)[np.arange(B), target], y_hat - y
    err = y_hat - y  # (B, K)
    # softmax Jacobian: d y^_i / d o_j = y^_i (delta_ij - y^_j)
    jacobian = y_hat[:, :, None] * (np.eye(K)[None] - y_hat[:, None, :])  # (B, K, K)
    return 0.5 * (err * err).sum(axis=1), np.einsum("bi,bij->bj", err, jacobian)


def loss_and_grads(model: RNN, batch: Batch, loss: str = "cross_entropy", truncate: int | None = None):
    """Same contract as bptt.Engine.loss_and_grads: mean loss over valid targets and its gradient."""
    check_options(loss, truncate)
    params = model.params
    U, W, V, c = params["U"], params["W"], params["V"], params["c"]
    dh = ACTIVATIONS[model.activation].dh
    H, K = U.shape
    B, T = batch.inputs.shape
    mask = batch.mask.astype(U.dtype)
    n_valid = mask.sum()
    eye_H = np.eye(H, dtype=U.dtype)

    a_prev = np.zeros((B, H), dtype=U.dtype)
    # Sensitivities of a_{t-1}, one entry per age (how many steps ago the term entered).
    ages: list[dict[str, np.ndarray]] = []
    grads = {name: np.zeros_like(p) for name, p in params.items()}
    total_loss = 0.0
    for t in range(T):
        x = np.eye(K, dtype=U.dtype)[batch.inputs[:, t]]  # one-hot x_t (B, K)
        a = model.hidden(a_prev, batch.inputs[:, t])  # a_t = h(W a_{t-1} + U x_t + b)  (B, H)
        hprime = dh(a, np.empty_like(a))[:, :, None, None]  # (B, H, 1, 1)

        # The direct terms: dz_t[i]/dW[j,k] = delta_ij a_{t-1}[k], and likewise for U and b.
        direct = {
            "W": np.einsum("ij,bk->bijk", eye_H, a_prev),  # (B, H, H, H)
            "U": np.einsum("ij,bk->bijk", eye_H, x),  # (B, H, H, K)
            "b": np.broadcast_to(eye_H, (B, H, H))[..., None].copy(),  # (B, H, H, 1)
        }
        # Older terms pass through W once more; then everything goes through h'(z_t).
        older = [{name: np.einsum("il,bl...->bi...", W, s) for name, s in age.items()} for age in ages]
        ages = [{name: hprime * s for name, s in age.items()} for age in [direct] + older]
        if truncate is None:
            ages = [{name: sum(age[name] for age in ages) for name in direct}]  # full RTRL carries the total
        else:
            ages = ages[: truncate + 1]
        sensitivity = {name: sum(age[name] for age in ages) for name in direct}  # da_t/dtheta

        o = a @ V.T + c  # (B, K)
        loss_t, do = _output_grad(o, batch.targets[:, t], loss)
        weight = (mask[:, t] / n_valid)[:, None]  # (B, 1): mean over valid targets
        do = do * weight  # (B, K)
        total_loss += float((loss_t * mask[:, t]).sum() / n_valid)
        grads["V"] += do.T @ a
        grads["c"] += do.sum(axis=0)
        da = do @ V  # dL_t/da_t  (B, H)
        grads["W"] += np.einsum("bi,bijk->jk", da, sensitivity["W"])
        grads["U"] += np.einsum("bi,bijk->jk", da, sensitivity["U"])
        grads["b"] += np.einsum("bi,bij->j", da, sensitivity["b"][..., 0])
        a_prev = a
    return total_loss, grads
