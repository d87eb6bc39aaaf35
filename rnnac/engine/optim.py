"""Update rules, gradient clipping and learning-rate schedules.

Parameters, gradients and optimizer state are dicts of arrays keyed by parameter name
(U, W, b, V, c). Every update works in place and keeps each parameter's dtype:

    opt = make_optimizer("adam", model.params)
    clip_grads(grads, max_norm=5.0)
    opt.step(model.params, grads, lr=learning_rate(step, 0.003, "cosine", total_steps=2000))

Optimizer state is a flat dict of arrays ("m.U", "v.U", ..., "t") that goes straight
into an .npz file and back (`state_dict`, `load_state_dict`).
"""

import inspect
import math

import numpy as np

from rnnac.errors import CheckpointError, ConfigError

Params = dict[str, np.ndarray]


class Optimizer:
    """An update rule with per-parameter state arrays named `slots` ("m", "v", ...).

    Subclasses set `name` and `slots` and implement `_update(p, g, lr, state)`, which
    changes the parameter p in place; state maps each slot to that parameter's array.
    """

    name = ""
    slots: tuple[str, ...] = ()

    def __init__(self, params: Params, weight_decay: float = 0.0):
        self.weight_decay = weight_decay  # decoupled: p -= lr * weight_decay * p, apart from the gradient
        self.t = 0  # number of steps taken
        self.state = {slot: {k: np.zeros_like(p) for k, p in params.items()} for slot in self.slots}

    def step(self, params: Params, grads: Params, lr: float) -> None:
        """Update every parameter in place from its gradient."""
        self.t += 1
        for k, p in params.items():
            if self.weight_decay:
                p -= (lr * self.weight_decay) * p  # AdamW's decay: shrink towards 0, untouched by the gradient scaling
            self._update(p, grads[k], lr, {slot: arrays[k] for slot, arrays in self.state.items()})

    def _update(self, p: np.ndarray, g: np.ndarray, lr: float, state: dict[str, np.ndarray]) -> None:
        raise NotImplementedError

    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of the state, flat: {"m.U": ..., "v.U": ..., "t": 0-d int array}."""
        d = {f"{slot}.{k}": a.copy() for slot, arrays in self.state.items() for k, a in arrays.items()}
        d["t"] = np.array(self.t, dtype=np.int64)
        return d

    def load_state_dict(self, d: dict[str, np.ndarray]) -> None:
        """Restore state saved by `state_dict` of the same optimizer on parameters of the same shapes."""
        expected = {f"{slot}.{k}" for slot, arrays in self.state.items() for k in arrays} | {"t"}
        if set(d) != expected:
            missing, extra = sorted(expected - set(d)), sorted(set(d) - expected)
            raise CheckpointError(f"optimizer state does not fit {self.name}: missing {missing}, unexpected {extra}")
        for slot, arrays in self.state.items():
            for k, a in arrays.items():
                saved = np.asarray(d[f"{slot}.{k}"])
                if saved.shape != a.shape:
                    raise CheckpointError(f"optimizer state {slot}.{k} has shape {saved.shape}, expected {a.shape}")
                a[...] = saved  # copy into our own array, which keeps the parameter's dtype
        self.t = int(d["t"])


class SGD(Optimizer):
    """p -= lr * g, the update of the seeds."""

    name = "sgd"

    def _update(self, p, g, lr, state):
        p -= lr * g


class Momentum(Optimizer):
    """Heavy ball: velocity v = momentum * v + g, then p -= lr * v (PyTorch's form).

    nesterov=True steps with the look-ahead g + momentum * v instead of v.
    """

    name = "momentum"
    slots = ("velocity",)

    def __init__(self, params: Params, momentum: float = 0.9, nesterov: bool = False, weight_decay: float = 0.0):
        super().__init__(params, weight_decay)
        self.momentum, self.nesterov = momentum, nesterov

    def _update(self, p, g, lr, state):
        v = state["velocity"]
        v *= self.momentum
        v += g
        p -= lr * (g + self.momentum * v if self.nesterov else v)


class Adagrad(Optimizer):
    """Sum the squared gradients; each entry's step shrinks as its sum grows."""

    name = "adagrad"
    slots = ("sum_sq",)

    def __init__(self, params: Params, eps: float = 1e-8, weight_decay: float = 0.0):
        super().__init__(params, weight_decay)
        self.eps = eps

    def _update(self, p, g, lr, state):
        s = state["sum_sq"]
        s += g * g
        p -= lr * g / (np.sqrt(s) + self.eps)


class RMSprop(Optimizer):
    """Like Adagrad, with a running mean of squared gradients in place of the sum."""

    name = "rmsprop"
    slots = ("mean_sq",)

    def __init__(self, params: Params, decay: float = 0.99, eps: float = 1e-8, weight_decay: float = 0.0):
        super().__init__(params, weight_decay)
        self.decay, self.eps = decay, eps

    def _update(self, p, g, lr, state):
        s = state["mean_sq"]
        s *= self.decay
        s += (1 - self.decay) * g * g
        p -= lr * g / (np.sqrt(s) + self.eps)


class Adam(Optimizer):
    """Running means of g (m) and g*g (v), bias-corrected; AdamW when weight_decay > 0."""

    name = "adam"
    slots = ("m", "v")

    def __init__(
        self, params: Params, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8, weight_decay: float = 0.0
    ):
        super().__init__(params, weight_decay)
        self.beta1, self.beta2, self.eps = beta1, beta2, eps

    def _update(self, p, g, lr, state):
        m, v = state["m"], state["v"]
        m *= self.beta1
        m += (1 - self.beta1) * g
        v *= self.beta2
        v += (1 - self.beta2) * g * g
        # m and v start at 0, so early on they underestimate; divide by 1 - beta**t to undo that
        m_hat = m / (1 - self.beta1**self.t)
        v_hat = v / (1 - self.beta2**self.t)
        p -= lr * m_hat / (np.sqrt(v_hat) + self.eps)


OPTIMIZERS = {cls.name: cls for cls in (SGD, Momentum, Adagrad, RMSprop, Adam)}
OPTIMIZER_ALIASES = {"adamw": "adam"}  # AdamW is adam with weight_decay > 0; a config may name it either way


def make_optimizer(name: str, params: Params, **hyper) -> Optimizer:
    """The optimizer `name` with state shaped like `params`.

    make_optimizer("momentum", params, momentum=0.8, nesterov=True)
    """
    if name not in OPTIMIZERS:
        raise ConfigError(f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZERS)}")
    cls = OPTIMIZERS[name]
    known = [h for h in inspect.signature(cls).parameters if h != "params"]
    unknown = sorted(set(hyper) - set(known))
    if unknown:
        raise ConfigError(f"optimizer {name} has no hyperparameter {unknown[0]!r}; it has {', '.join(known)}")
    return cls(params, **hyper)


class ParamAverage:
    """Polyak averaging: an exponential moving average of the parameters over the updates,

        avg_t = decay * avg_{t-1} + (1 - decay) * p_t,   avg_0 = 0,   averaged = avg_t / (1 - decay^t)

    (the division undoes the start at 0, as Adam's bias correction does). The average of the
    last ~1 / (1 - decay) updates often scores better than the last parameters: it smooths out
    the noise of the final steps. Its state is {"avg.U": ..., ...}, stored beside the optimizer's.
    """

    slot = "avg"

    def __init__(self, params: Params, decay: float):
        if not 0.0 < decay < 1.0:
            raise ConfigError(f"the average's decay must be in (0, 1), got {decay}")
        self.decay = decay
        self.t = 0
        self.avg = {k: np.zeros_like(p) for k, p in params.items()}

    def update(self, params: Params) -> None:
        self.t += 1
        for k, p in params.items():
            a = self.avg[k]
            a *= self.decay
            a += (1 - self.decay) * p

    def params(self) -> Params:
        """The bias-corrected averages, each in its parameter's dtype (the parameters themselves before any update)."""
        scale = 1.0 / (1.0 - self.decay**self.t) if self.t else 0.0
        return {k: (a * scale).astype(a.dtype) for k, a in self.avg.items()}

    def state_dict(self) -> dict[str, np.ndarray]:
        return {f"{self.slot}.{k}": a.copy() for k, a in self.avg.items()}

    def load_state_dict(self, d: dict[str, np.ndarray], t: int) -> None:
        """Restore from state_dict() after `t` updates (the optimizer's count)."""
        for k, a in self.avg.items():
            saved = np.asarray(d[f"{self.slot}.{k}"])
            if saved.shape != a.shape:
                raise CheckpointError(f"average {self.slot}.{k} has shape {saved.shape}, expected {a.shape}")
            a[...] = saved
        self.t = t


def clip_grads(grads: Params, max_norm: float | None = None, max_value: float | None = None) -> float:
    """Clip gradients in place; return their global L2 norm from before clipping.

    max_value clips each entry to [-max_value, max_value]; then, if the global norm over
    all arrays exceeds max_norm, every array is scaled by the same max_norm / norm so
    the direction is kept (seed 003). A non-finite norm is returned without scaling:
    the caller decides what a diverged run does.
    """
    norm = clipped_norm = _global_norm(grads)
    if max_value is not None:
        for g in grads.values():
            np.clip(g, -max_value, max_value, out=g)
        clipped_norm = _global_norm(grads)
    if max_norm is not None and math.isfinite(clipped_norm) and clipped_norm > max_norm:
        for g in grads.values():
            g *= max_norm / clipped_norm
    return norm


def _global_norm(arrays: Params) -> float:
    """sqrt of the sum of squares of all entries, in float64: float32 squares of large gradients overflow."""
    return math.sqrt(sum(float(np.sum(np.square(a, dtype=np.float64))) for a in arrays.values()))


SCHEDULES = ("constant", "step", "cosine")


def learning_rate(
    step: int,
    base_lr: float,
    schedule: str = "constant",
    warmup_steps: int = 0,
    total_steps: int = 1,
    decay_every: int = 1000,
    decay_rate: float = 0.5,
    min_lr: float = 0.0,
) -> float:
    """Learning rate of update number `step` (0 for the first update).

    learning_rate(1000, 0.1, "step", decay_every=1000) -> 0.05
    """
    if schedule not in SCHEDULES:
        raise ConfigError(f"unknown schedule {schedule!r}; choose one of {', '.join(SCHEDULES)}")
    # 1) linear warm-up: the line from 0 at step -1 to base_lr at step warmup_steps, so no step has lr 0
    if step < warmup_steps:
        return base_lr * (step + 1) / (warmup_steps + 1)
    # 2) constant: base_lr from then on
    if schedule == "constant":
        return base_lr
    # 3) step: multiply by decay_rate every decay_every steps, counted from step 0; never below min_lr
    if schedule == "step":
        return max(min_lr, base_lr * decay_rate ** (step // decay_every))
    # 4) cosine: from base_lr right after warm-up down to min_lr at total_steps, then stay there
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))  # 0 .. 1
    return min_lr + 0.5 * (1 + math.cos(math.pi * progress)) * (base_lr - min_lr)
