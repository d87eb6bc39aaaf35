"""Loss and gradients equal torch autograd's with the same weights, in float64 (when torch is installed)."""

import numpy as np
import pytest
from conftest import WORDS, tiny_model

import rnnac
from rnnac.engine.bptt import Engine
from rnnac.engine.model import PARAM_NAMES

torch = pytest.importorskip("torch")


def torch_loss_and_grads(model, batch, loss):
    """nn.RNN (or a plain loop for sigmoid, which nn.RNN lacks) + Linear + masked loss."""
    p = {k: torch.tensor(v, requires_grad=True) for k, v in model.params.items()}
    leaves = [p[k] for k in PARAM_NAMES]
    H, K = model.hidden_size, model.vocab_size
    x = torch.nn.functional.one_hot(torch.tensor(batch.inputs), K).double()  # (B, T, K)
    if model.activation == "sigmoid":
        a = torch.zeros(x.shape[0], H, dtype=torch.float64)
        states = []
        for t in range(x.shape[1]):
            a = torch.sigmoid(a @ p["W"].T + x[:, t] @ p["U"].T + p["b"])
            states.append(a)
        hidden = torch.stack(states, dim=1)  # (B, T, H)
    else:
        rnn = torch.nn.RNN(K, H, nonlinearity=model.activation, batch_first=True).double()
        with torch.no_grad():
            rnn.bias_hh_l0.zero_()
            for name, key in [("weight_ih_l0", "U"), ("weight_hh_l0", "W"), ("bias_ih_l0", "b")]:
                getattr(rnn, name).copy_(p[key])
        hidden, _ = rnn(x)  # (B, T, H)
        leaves[:3] = [rnn.weight_ih_l0, rnn.weight_hh_l0, rnn.bias_ih_l0]
    head = torch.nn.Linear(H, K).double()
    with torch.no_grad():
        head.weight.copy_(p["V"])
        head.bias.copy_(p["c"])
    leaves[3:] = [head.weight, head.bias]
    logits = head(hidden)  # (B, T, K)
    targets = torch.tensor(batch.targets)
    mask = torch.tensor(batch.mask)
    if loss == "cross_entropy":
        per_position = torch.nn.functional.cross_entropy(logits.transpose(1, 2), targets, reduction="none")
    else:
        err = torch.softmax(logits, dim=-1) - torch.nn.functional.one_hot(targets, K).double()
        per_position = 0.5 * (err * err).sum(-1)
    value = (per_position * mask).sum() / mask.sum()
    grads = torch.autograd.grad(value, leaves)
    return value.item(), dict(zip(PARAM_NAMES, (g.numpy() for g in grads)))


@pytest.mark.parametrize("activation", ["tanh", "relu", "sigmoid"])
@pytest.mark.parametrize("loss", ["cross_entropy", "squared_error"])
def test_matches_torch_autograd(vocab, activation, loss):
    batch = rnnac.make_batch(WORDS * 3, vocab)
    model = tiny_model(vocab, activation, hidden_size=16, seed=4)
    value, grads = Engine(model).loss_and_grads(batch, loss)
    t_value, t_grads = torch_loss_and_grads(model, batch, loss)
    assert value == pytest.approx(t_value, abs=1e-12)
    for name in PARAM_NAMES:
        np.testing.assert_allclose(grads[name], t_grads[name], rtol=0, atol=1e-10)
