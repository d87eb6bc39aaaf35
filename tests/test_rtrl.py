"""Seed 000's forward-mode derivation and seed 004's reverse-mode one give the same gradients."""

import numpy as np
import pytest
from conftest import tiny_model

from rnnac.engine import rtrl
from rnnac.engine.bptt import Engine
from rnnac.engine.model import ACTIVATIONS, PARAM_NAMES


@pytest.mark.parametrize("activation", list(ACTIVATIONS))
@pytest.mark.parametrize("loss", ["cross_entropy", "squared_error"])
@pytest.mark.parametrize("truncate", [None, 0, 1, 3])
def test_rtrl_equals_bptt(vocab, batch, activation, loss, truncate):
    model = tiny_model(vocab, activation, hidden_size=5)
    value_b, grads_b = Engine(model).loss_and_grads(batch, loss, truncate)
    value_r, grads_r = rtrl.loss_and_grads(model, batch, loss, truncate)
    assert value_r == pytest.approx(value_b, abs=1e-12)
    for name in PARAM_NAMES:
        assert grads_r[name].shape == grads_b[name].shape
        np.testing.assert_allclose(grads_r[name], grads_b[name], rtol=0, atol=1e-10)


def test_rtrl_gradient_is_not_trivially_zero(vocab, batch):
    _, grads = rtrl.loss_and_grads(tiny_model(vocab), batch)
    assert all(np.abs(grads[name]).max() > 1e-4 for name in PARAM_NAMES)


def test_bad_options_are_refused(vocab, batch):
    model = tiny_model(vocab)
    for fn in (Engine(model).loss_and_grads, lambda *a, **kw: rtrl.loss_and_grads(model, *a, **kw)):
        with pytest.raises(ValueError, match="loss"):
            fn(batch, loss="hinge")
        with pytest.raises(ValueError, match="truncate"):
            fn(batch, truncate=-1)
