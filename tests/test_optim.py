import math

import numpy as np
import pytest

from rnnac.engine.optim import OPTIMIZERS, clip_grads, learning_rate, make_optimizer
from rnnac.errors import CheckpointError, ConfigError

# Two steps on one parameter p0 with gradients g1 then g2 at lr 0.1; eps=1e-8 moves results by < 1e-6.
P0, G1, G2, LR = [1.0, -2.0], [0.5, -1.0], [0.25, 0.5], 0.1


def two_steps(name, **hyper):
    params = {"W": np.array(P0)}
    opt = make_optimizer(name, params, **hyper)
    opt.step(params, {"W": np.array(G1)}, LR)
    p1 = params["W"].copy()
    opt.step(params, {"W": np.array(G2)}, LR)
    return p1, params["W"]


def adam_second_step(p1):
    m = 0.9 * 0.1 * np.array(G1) + 0.1 * np.array(G2)  # [0.07, -0.04]
    v = 0.999 * 0.001 * np.square(G1) + 0.001 * np.square(G2)  # [0.00031225, 0.001249]
    m_hat, v_hat = m / (1 - 0.9**2), v / (1 - 0.999**2)  # / 0.19, / 0.001999
    return p1 - LR * m_hat / np.sqrt(v_hat)


HAND_WORKED = {
    # p -= lr g
    "sgd": ({}, [0.95, -1.9], [0.925, -1.95]),
    # v1 = g1; v2 = 0.9 v1 + g2 = [0.7, -0.4]; p -= lr v
    "momentum": ({}, [0.95, -1.9], [0.88, -1.86]),
    # p1 = p0 - lr (g1 + 0.9 v1) = p0 - 0.19 g1; p2 = p1 - lr (g2 + 0.9 v2) = p1 - 0.1 [0.88, 0.14]
    "nesterov": ({"nesterov": True}, [0.905, -1.81], [0.817, -1.824]),
    # s1 = g1^2, so step 1 moves lr * sign(g1); s2 = [0.3125, 1.25], and g2 / sqrt(s2) = 1/sqrt(5) both
    "adagrad": ({}, [0.9, -1.9], [0.9 - 0.1 / math.sqrt(5), -1.9 - 0.1 / math.sqrt(5)]),
    # s1 = 0.01 g1^2 = [0.0025, 0.01], g1 / sqrt(s1) = [10, -10]; s2 = [0.0031, 0.0124]
    "rmsprop": ({}, [0.0, -1.0], [-0.1 * 0.25 / math.sqrt(0.0031), -1 - 0.1 * 0.5 / math.sqrt(0.0124)]),
    # bias correction makes step 1 exactly lr * sign(g1)
    "adam": ({}, [0.9, -1.9], adam_second_step(np.array([0.9, -1.9]))),
}


@pytest.mark.parametrize("case", HAND_WORKED)
def test_first_two_steps_by_hand(case):
    hyper, p1, p2 = HAND_WORKED[case]
    got1, got2 = two_steps("momentum" if case == "nesterov" else case, **hyper)
    np.testing.assert_allclose(got1, p1, rtol=0, atol=1e-6)
    np.testing.assert_allclose(got2, p2, rtol=0, atol=1e-6)


def test_adamw_decay_is_decoupled():
    # p1 = p0 (1 - lr wd) - lr sign(g1) = [0.99 - 0.1, -1.98 + 0.1]; then the same decay again, and Adam's step
    p1, p2 = two_steps("adam", weight_decay=0.1)
    np.testing.assert_allclose(p1, [0.89, -1.88], rtol=0, atol=1e-6)
    np.testing.assert_allclose(p2, adam_second_step(p1 * 0.99), rtol=0, atol=1e-6)


def shapes_of_an_rnn(rng, dtype=np.float64):
    H, K = 3, 4
    shapes = {"U": (H, K), "W": (H, H), "b": (H,), "V": (K, H), "c": (K,)}
    return {k: rng.standard_normal(s).astype(dtype) for k, s in shapes.items()}


@pytest.mark.parametrize("name", OPTIMIZERS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_updates_in_place_keep_dtype(name, dtype):
    rng = np.random.default_rng(0)
    params = shapes_of_an_rnn(rng, dtype)
    arrays = dict(params)
    opt = make_optimizer(name, params)
    opt.step(params, shapes_of_an_rnn(rng, np.float64), 0.01)  # float64 gradients on float32 parameters
    for k, p in params.items():
        assert p is arrays[k] and p.dtype == dtype
    for key, a in opt.state_dict().items():
        assert a.dtype == (np.int64 if key == "t" else dtype)


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_state_dict_round_trip_continues_identically(name, tmp_path):
    rng = np.random.default_rng(1)
    params = shapes_of_an_rnn(rng)
    grads = [shapes_of_an_rnn(rng) for _ in range(5)]
    opt = make_optimizer(name, params)
    for g in grads[:3]:
        opt.step(params, g, 0.05)
    np.savez(tmp_path / "opt.npz", **opt.state_dict())
    with np.load(tmp_path / "opt.npz", allow_pickle=False) as saved:
        state = dict(saved)
    assert int(state["t"]) == 3 and state["t"].shape == ()

    resumed_params = {k: p.copy() for k, p in params.items()}
    resumed = make_optimizer(name, resumed_params)
    resumed.load_state_dict(state)
    for g in grads[3:]:
        opt.step(params, g, 0.05)
        resumed.step(resumed_params, g, 0.05)
    for k in params:
        np.testing.assert_array_equal(resumed_params[k], params[k])


def test_state_dict_keys():
    params = {"U": np.zeros(2), "b": np.zeros(1)}
    assert sorted(make_optimizer("adam", params).state_dict()) == ["m.U", "m.b", "t", "v.U", "v.b"]
    assert sorted(make_optimizer("sgd", params).state_dict()) == ["t"]


def test_load_state_dict_rejects_foreign_state():
    params = {"U": np.zeros((2, 3))}
    adam_state = make_optimizer("adam", params).state_dict()
    with pytest.raises(CheckpointError, match="does not fit rmsprop: missing \\['mean_sq.U'\\]"):
        make_optimizer("rmsprop", params).load_state_dict(adam_state)
    with pytest.raises(CheckpointError, match="m.U has shape \\(2, 3\\), expected \\(3, 3\\)"):
        make_optimizer("adam", {"U": np.zeros((3, 3))}).load_state_dict(adam_state)


def test_bad_names_and_hyperparameters():
    valid = "sgd, momentum, adagrad, rmsprop, adam"
    with pytest.raises(ConfigError, match=f"unknown optimizer 'adamw'; choose one of {valid}"):
        make_optimizer("adamw", {})
    with pytest.raises(ConfigError, match="optimizer sgd has no hyperparameter 'momentum'; it has weight_decay"):
        make_optimizer("sgd", {}, momentum=0.9)


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_every_optimizer_lowers_a_quadratic(name):
    # loss = 1/2 sum (p - target)^2 over all five arrays; its gradient is p - target
    rng = np.random.default_rng(2)
    params, target = shapes_of_an_rnn(rng), shapes_of_an_rnn(rng)
    loss = lambda: sum(0.5 * np.sum((params[k] - target[k]) ** 2) for k in params)  # noqa: E731
    start = loss()
    opt = make_optimizer(name, params)
    for _ in range(50):
        opt.step(params, {k: params[k] - target[k] for k in params}, 0.05)
    assert loss() < 0.5 * start


# --- clipping ----------------------------------------------------------------


def three_four():
    return {"U": np.array([3.0, 0.0]), "b": np.array([0.0, -4.0], dtype=np.float32)}  # global norm 5


def test_clip_by_norm_scales_everything_the_same():
    grads = three_four()
    assert clip_grads(grads, max_norm=1.0) == 5.0
    np.testing.assert_allclose(grads["U"], [0.6, 0.0])
    np.testing.assert_allclose(grads["b"], [0.0, -0.8])
    assert grads["b"].dtype == np.float32


def test_clip_by_norm_leaves_small_gradients():
    grads = three_four()
    assert clip_grads(grads, max_norm=5.0) == 5.0
    np.testing.assert_array_equal(grads["U"], [3.0, 0.0])


def test_clip_by_value():
    grads = three_four()
    assert clip_grads(grads, max_value=2.0) == 5.0  # the norm from before clipping
    np.testing.assert_array_equal(grads["U"], [2.0, 0.0])
    np.testing.assert_array_equal(grads["b"], [0.0, -2.0])


def test_clip_by_value_then_norm():
    grads = three_four()  # by value: [2, 0], [0, -2], norm 2 sqrt 2; then to norm 1
    assert clip_grads(grads, max_norm=1.0, max_value=2.0) == 5.0
    np.testing.assert_allclose(grads["U"], [1 / math.sqrt(2), 0.0], rtol=1e-7)
    np.testing.assert_allclose(grads["b"], [0.0, -1 / math.sqrt(2)], rtol=1e-7)


def test_norm_is_computed_in_float64():
    grads = {"W": np.full(4, 1e20, dtype=np.float32)}  # squares overflow float32
    assert clip_grads(grads, max_norm=1.0) == pytest.approx(2e20, rel=1e-6)
    np.testing.assert_allclose(grads["W"], 0.5, rtol=1e-6)


def test_non_finite_norm_is_returned_untouched():
    grads = {"W": np.array([np.inf, 1.0])}
    assert clip_grads(grads, max_norm=1.0) == math.inf
    np.testing.assert_array_equal(grads["W"], [np.inf, 1.0])


# --- schedules ---------------------------------------------------------------


def test_warmup_is_linear_from_zero():
    lr = lambda step: learning_rate(step, 0.4, "constant", warmup_steps=3)  # noqa: E731
    assert [lr(s) for s in range(5)] == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.4])


def test_cosine():
    lr = lambda step: learning_rate(step, 1.0, "cosine", warmup_steps=10, total_steps=110, min_lr=0.2)  # noqa: E731
    assert lr(0) == pytest.approx(1.0 / 11)  # warm-up start
    assert lr(10) == 1.0  # warm-up end: the full rate
    assert lr(60) == pytest.approx((1.0 + 0.2) / 2)  # midpoint
    assert lr(35) == pytest.approx(0.2 + 0.8 * (1 + math.cos(math.pi / 4)) / 2)
    assert lr(110) == pytest.approx(0.2) and lr(500) == pytest.approx(0.2)  # then min_lr for good


def test_step_decay_boundaries():
    lr = lambda step: learning_rate(step, 0.8, "step", decay_every=100, decay_rate=0.5, min_lr=0.15)  # noqa: E731
    assert [lr(s) for s in (0, 99, 100, 199, 200, 299, 300)] == [0.8, 0.8, 0.4, 0.4, 0.2, 0.2, 0.15]


def test_constant_and_unknown():
    assert learning_rate(10_000, 0.3) == 0.3
    with pytest.raises(ConfigError, match="unknown schedule 'linear'; choose one of constant, step, cosine"):
        learning_rate(0, 0.3, "linear")


def test_param_average_is_the_bias_corrected_ema_by_hand():
    from rnnac.engine.optim import ParamAverage

    params = {"W": np.array([1.0, 2.0])}
    avg = ParamAverage(params, decay=0.5)
    for value in (1.0, 3.0, 5.0):
        params["W"][:] = [value, 2 * value]
        avg.update(params)
    # avg_3 = 0.5^2 (0.5) 1 + 0.5 (0.5) 3 + 0.5 5 = 0.125 + 0.75 + 2.5 = 3.375; / (1 - 0.5^3) = 3.857...
    np.testing.assert_allclose(avg.params()["W"], [3.375 / 0.875, 6.75 / 0.875])
    again = ParamAverage(params, decay=0.5)
    again.load_state_dict(avg.state_dict(), t=3)
    np.testing.assert_array_equal(again.params()["W"], avg.params()["W"])
    with pytest.raises(ConfigError):
        ParamAverage(params, decay=1.0)
