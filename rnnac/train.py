"""Training: from a word list and a config to checkpoints that are never lost.

One update (`Trainer.step`): draw a batch of training words (bucketed by length), forward and
back-propagate through time (bptt.py), clip the gradient (seed 003), step the optimizer. Every
`train.eval_every` updates: the validation loss, `best.npz` when it improved, `last.npz`.

Nothing is lost: checkpoints are written atomically (checkpoint.py); Ctrl-C finishes the
update under way, saves `last.npz` and raises TrainingInterrupted; a NaN or infinite loss
stops the run before it can overwrite the last good checkpoint. `--resume` restores the
parameters, optimizer, sampler position and Progress, so an interrupted run ends bit-identical
to one run straight through.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import signal
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rnnac.bptt import Engine
from rnnac.checkpoint import load_checkpoint, save_checkpoint
from rnnac.config import Config
from rnnac.data import Vocab, make_batch
from rnnac.errors import CheckpointError, ConfigError, RunExistsError, TrainingDiverged, TrainingInterrupted
from rnnac.model import RNN
from rnnac.optim import clip_grads, learning_rate, make_optimizer
from rnnac.wordlist import BatchSampler, Data, load_data

VAL_BATCH = 512  # words per validation batch: large batches, few Python round trips
EMA = 0.95  # smoothing of the training loss that train.target_loss is compared with
LOG_EVERY = 10  # updates between metrics.jsonl lines (validations always get one)


@dataclass
class Progress:
    """The counters of a run besides parameters, optimizer and sampler. `to_meta` and `from_meta`
    are the only places that save and restore them: a new counter is a new field here."""

    step: int = 0
    best_val_loss: float = math.inf
    best_step: int = 0
    stale_validations: int = 0  # validations since the best, for train.patience
    train_loss_ema: float | None = None
    elapsed: float = 0.0  # seconds of training over every session of this run
    val_loss: float | None = None
    stop_reason: str = dataclasses.field(default="", metadata={"saved": False})  # set when the run ends

    def to_meta(self) -> dict:
        """The saved fields as JSON values (JSON has no inf or NaN: they become null)."""
        return {f.name: _json_float(getattr(self, f.name)) for f in _saved_fields()}

    @classmethod
    def from_meta(cls, meta: dict, origin: str) -> Progress:
        """The inverse of to_meta; CheckpointError naming `origin` for a missing or mistyped key."""
        values = {}
        for f in _saved_fields():
            if f.name not in meta:
                raise CheckpointError(f"cannot resume {origin}: meta has no {f.name!r}")
            value = meta[f.name]
            if value is None and f.default == math.inf:
                value = math.inf  # an infinite best_val_loss was written as null
            is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
            if not ((value is None and "None" in f.type) or (is_number and (f.type != "int" or isinstance(value, int)))):
                raise CheckpointError(f"cannot resume {origin}: meta {f.name} is {value!r}, not a number")
            values[f.name] = value
        return cls(**values)


def _saved_fields() -> list[dataclasses.Field]:
    return [f for f in dataclasses.fields(Progress) if f.metadata.get("saved", True)]


def validation_batches(words: list[str], vocab: Vocab, limit: int | None):
    """Fixed batches of similar-length words; the first `limit` words when given."""
    chosen = sorted(words[:limit] if limit else words, key=len)
    return [make_batch(chosen[i : i + VAL_BATCH], vocab) for i in range(0, len(chosen), VAL_BATCH)]


def validation_loss(engine: Engine, batches, loss: str) -> float:
    """Mean loss per validation target character (nats per character for cross-entropy)."""
    total = sum(engine.loss(b, loss) * b.n_targets for b in batches)
    return total / sum(b.n_targets for b in batches)


@dataclass
class StepResult:
    """What one update measured."""

    loss: float
    grad_norm: float
    lr: float
    chars: int  # target characters in the batch


class Trainer:
    """One run's model, optimizer, sampler and Progress, and the four things done to them:
    `step()`, `validate()`, `save(name)` and `stop_reason()`."""

    def __init__(self, config: Config, data: Data):
        settings = config.train
        self.config, self.data, self.out = config, data, Path(config.output.dir)
        self.model = RNN.init(len(data.vocab), config.model.hidden_size, config.model.activation, seed=settings.seed,
                              dtype=np.dtype(config.model.dtype))
        self.engine = Engine(self.model, threads=settings.threads)
        hyper = {"weight_decay": settings.weight_decay} | ({"momentum": settings.momentum} if settings.optimizer == "momentum" else {})
        self.optimizer = make_optimizer(settings.optimizer, self.model.params, **hyper)
        self.sampler = BatchSampler([len(w) for w in data.train_words], settings.batch_size, seed=settings.seed,
                                    scheme=config.data.weighting, counts=data.train_counts)
        self.progress = Progress()
        self.val_batches = validation_batches(data.val_words, data.vocab, settings.eval_words)

    def restore(self, path: Path) -> None:
        """Continue from the checkpoint at `path`, which must come from this config and word list."""
        if not path.exists():
            raise CheckpointError(f"cannot resume: {path} does not exist (start without --resume)")
        ckpt = load_checkpoint(path)
        saved, now = ckpt.meta["config"], self.config.to_dict()
        for section in ("data", "model"):
            for key, value in now[section].items():
                was = saved.get(section, {}).get(key)
                if was != value:
                    raise ConfigError(f"cannot resume {path}: {section}.{key} was {was!r} in that run, now {value!r}")
        if ckpt.meta["chars"] != self.data.vocab.chars:
            raise CheckpointError(f"cannot resume {path}: the vocabulary of the word list has changed")
        progress = Progress.from_meta(ckpt.meta, str(path))
        for name in self.model.params:
            self.model.params[name][...] = ckpt.params[name]
        self.optimizer.load_state_dict(ckpt.optimizer_state)
        self.sampler = BatchSampler.from_state(ckpt.meta["rng_state"], self.sampler.lengths, self.data.train_counts)
        self.progress = progress

    def step(self) -> StepResult:
        """One update; TrainingDiverged, before any parameter changes, if the loss or gradient is not finite."""
        settings, progress = self.config.train, self.progress
        # 1. The learning rate of this update, then one batch through BPTT.
        lr = learning_rate(progress.step, settings.learning_rate, settings.schedule, settings.warmup_steps, settings.max_steps,
                           settings.decay_every, settings.decay_rate, settings.min_lr)
        batch = make_batch([self.data.train_words[i] for i in self.sampler.next_batch()], self.data.vocab)
        loss, grads = self.engine.loss_and_grads(batch, settings.loss, settings.truncate)
        # 2. Refuse a non-finite loss or gradient: the last checkpoint on disk stays good.
        grad_norm = clip_grads(grads, settings.clip_norm, settings.clip_value)
        if not (math.isfinite(loss) and math.isfinite(grad_norm)):
            raise self._diverged(loss, grad_norm)
        # 3. The update, and the counters that follow it.
        self.optimizer.step(self.model.params, grads, lr)
        progress.step += 1
        ema = progress.train_loss_ema
        progress.train_loss_ema = loss if ema is None else EMA * ema + (1 - EMA) * loss
        return StepResult(loss, grad_norm, lr, batch.n_targets)

    def validate(self) -> None:
        """Record the validation loss; save best.npz when it improved (with no validation words,
        the latest model is the best)."""
        progress = self.progress
        if not self.val_batches:
            if progress.best_step < progress.step:
                progress.best_step = progress.step
                self.save("best.npz")
            return
        progress.val_loss = validation_loss(self.engine, self.val_batches, self.config.train.loss)
        if progress.val_loss < progress.best_val_loss:
            progress.best_val_loss, progress.best_step, progress.stale_validations = progress.val_loss, progress.step, 0
            self.save("best.npz")
        else:
            progress.stale_validations += 1

    def save(self, name: str) -> None:
        """Write the run's state atomically to output.dir/name."""
        model = self.model
        meta = {"chars": self.data.vocab.chars, "activation": model.activation, "hidden_size": model.hidden_size,
                "dtype": self.config.model.dtype, "config": self.config.to_dict(), "epoch": self.sampler.epoch,
                "rng_state": self.sampler.state_dict(), **self.progress.to_meta()}
        save_checkpoint(self.out / name, model.params, meta, self.optimizer.state_dict())

    def stop_reason(self, interrupted: threading.Event) -> str:
        """Why the run stops now, or "" to go on."""
        settings, progress = self.config.train, self.progress
        rules = (
            ("interrupted", interrupted.is_set()),
            ("max_steps", progress.step >= settings.max_steps),
            ("max_epochs", bool(settings.max_epochs) and self.sampler.epoch >= settings.max_epochs),
            ("max_seconds", bool(settings.max_seconds) and progress.elapsed >= settings.max_seconds),
            ("target_loss", bool(settings.target_loss) and progress.train_loss_ema is not None
             and progress.train_loss_ema < settings.target_loss),
            ("patience", bool(settings.patience) and progress.stale_validations >= settings.patience),
        )
        return next((reason for reason, applies in rules if applies), "")

    def _diverged(self, loss: float, grad_norm: float) -> TrainingDiverged:
        settings, last = self.config.train, self.out / "last.npz"
        what = f"the loss became {loss}" if not math.isfinite(loss) else f"the gradient norm became {grad_norm}"
        kept = f"the last good checkpoint is {last}" if last.exists() else "no checkpoint was saved yet"
        return TrainingDiverged(f"{what} at step {self.progress.step + 1}; {kept}. Try a lower train.learning_rate "
                                f"(now {settings.learning_rate:g}) or gradient clipping (train.clip_norm, now {settings.clip_norm})")


def run(config: Config, resume: bool = False, quiet: bool = False, force: bool = False, log=None) -> str:
    """Train as `config` says and return a one-line summary. Writes to config.output.dir:
    config.yaml (the config as run), metrics.jsonl, last.npz and best.npz."""
    log = log or (lambda msg: None if quiet else print(msg, file=sys.stderr))
    out = Path(config.output.dir)
    data = load_data(config)
    log(data.summary)
    trainer = Trainer(config, data)
    progress = trainer.progress
    if resume:
        trainer.restore(out / "last.npz")
        progress = trainer.progress
        log(f"resuming {out / 'last.npz'} at step {progress.step}")
        finished = trainer.stop_reason(threading.Event())
        if finished:
            return f"nothing to resume: {out / 'last.npz'} already stopped at step {progress.step} ({finished})"
    else:
        _claim_run_dir(out, force)
    _write_config(out, config)
    model, settings = trainer.model, config.train
    log(f"model: {model.n_params():,} parameters (H={model.hidden_size}, K={model.vocab_size}, "
        f"{config.model.activation}, {config.model.dtype}); {settings.optimizer}, lr {settings.learning_rate:g}")
    metrics = _Metrics(out / "metrics.jsonl", truncate_after=progress.step if resume else 0)
    with _deferred_interrupt() as interrupted, _progress_bar(settings.max_steps, progress.step, disable=quiet) as bar:
        _loop(trainer, metrics, bar, interrupted)
    if interrupted.is_set():
        raise TrainingInterrupted(progress.step, out / "last.npz")
    val = "no validation words"
    if trainer.val_batches:
        val = f"best validation loss {progress.best_val_loss:.4f} at step {progress.best_step}"
    return (f"stopped at step {progress.step} ({progress.stop_reason}) after {progress.elapsed:.2f} s: "
            f"train loss {progress.train_loss_ema:.4f}, {val}; checkpoints in {out}")


def _loop(trainer: Trainer, metrics: _Metrics, bar, interrupted: threading.Event) -> None:
    """Update until a stop rule fires: validate every eval_every updates and at the end, save
    last.npz then and every output.checkpoint_every updates, log every LOG_EVERY updates."""
    progress, settings = trainer.progress, trainer.config.train
    checkpoint_every = trainer.config.output.checkpoint_every
    started = time.perf_counter() - progress.elapsed
    speed = _Speed()
    # Overflow shows up as a non-finite loss or gradient, which Trainer.step refuses: no warning spam.
    with np.errstate(over="ignore", invalid="ignore"):
        while not progress.stop_reason:
            result = trainer.step()
            speed.add(result.chars)
            progress.elapsed = time.perf_counter() - started
            progress.stop_reason = trainer.stop_reason(interrupted)
            finished = bool(progress.stop_reason) and not interrupted.is_set()
            validate = progress.step % settings.eval_every == 0 or finished
            if validate:
                trainer.validate()
                if not progress.stop_reason:
                    progress.stop_reason = trainer.stop_reason(interrupted)  # patience counts this validation
            if validate or progress.stop_reason or (checkpoint_every and progress.step % checkpoint_every == 0):
                trainer.save("last.npz")
            if validate or finished or progress.step % LOG_EVERY == 0:
                chars_per_sec = speed.take()
                metrics.write(step=progress.step, epoch=trainer.sampler.epoch, train_loss=result.loss,
                              val_loss=progress.val_loss if validate and trainer.val_batches else None, lr=result.lr,
                              grad_norm=result.grad_norm, chars_per_sec=chars_per_sec, elapsed=progress.elapsed)
                bar.set_postfix_str(_postfix(progress, chars_per_sec), refresh=False)
            bar.update(1)


class _Speed:
    """Characters per second since the last reading."""

    def __init__(self):
        self.chars, self.since = 0, time.perf_counter()

    def add(self, chars: int) -> None:
        self.chars += chars

    def take(self) -> float:
        now = time.perf_counter()
        rate = self.chars / max(now - self.since, 1e-9)
        self.chars, self.since = 0, now
        return rate


def _claim_run_dir(out: Path, force: bool) -> None:
    if (out / "last.npz").exists() and not force:
        raise RunExistsError(f"{out} already holds a run (last.npz): resume it with --resume, "
                             f"start over with --force, or set output.dir")
    out.mkdir(parents=True, exist_ok=True)
    if force:
        for name in ("last.npz", "best.npz", "metrics.jsonl"):
            (out / name).unlink(missing_ok=True)


def _write_config(out: Path, config: Config) -> None:
    import yaml

    _replace_text(out / "config.yaml", yaml.safe_dump(config.to_dict(), sort_keys=False))


def _replace_text(path: Path, text: str) -> None:
    """Write `path` whole or not at all: a hidden temporary file beside it, then a rename."""
    tmp = path.with_name("." + path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


class _Metrics:
    """metrics.jsonl, one JSON object a line; on resume, lines past the checkpoint are dropped
    so the file reads as one uninterrupted run."""

    def __init__(self, path: Path, truncate_after: int):
        if truncate_after and path.exists():
            kept = [line for line in path.read_text().splitlines() if _step_of(line) <= truncate_after]
            _replace_text(path, "".join(line + "\n" for line in kept))
        self.file = open(path, "a")

    def write(self, **record) -> None:
        record = {k: _json_float(v) if isinstance(v, float) else v for k, v in record.items()}
        self.file.write(json.dumps(record) + "\n")
        self.file.flush()


def _step_of(line: str) -> float:
    """The step of a metrics line; a line torn by a killed process counts as past any checkpoint."""
    try:
        return json.loads(line)["step"]
    except (ValueError, KeyError, TypeError):
        return math.inf


def _json_float(x):
    """JSON has no inf or NaN: write them as None."""
    return None if x is None or not math.isfinite(x) else x


def _postfix(progress: Progress, speed: float) -> str:
    val = "-" if progress.val_loss is None else f"{progress.val_loss:.3f}"
    return f"loss {progress.train_loss_ema:.3f}, val {val}, {speed:,.0f} chars/s"


def _progress_bar(total: int, initial: int, disable: bool):
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, unit="step", file=sys.stderr, dynamic_ncols=True,
                disable=disable or not sys.stderr.isatty())


@contextmanager
def _deferred_interrupt():
    """The first Ctrl-C sets an event that the loop reads between updates, so a checkpoint is
    never taken of half-updated parameters; a second Ctrl-C interrupts at once."""
    interrupted = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield interrupted
        return

    def handler(signum, frame):
        if interrupted.is_set():
            raise KeyboardInterrupt
        interrupted.set()

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield interrupted
    finally:
        signal.signal(signal.SIGINT, previous)
