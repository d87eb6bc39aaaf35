"""Training: from a word list and a config to checkpoints that are never lost.

One update (`Trainer.step`): draw a batch of training words (bucketed by length), forward and
back-propagate through time (bptt.py), clip the gradient (seed 003), step the optimizer. Every
`train.eval_every` updates: the validation loss, `best.npz` when it improved, `last.npz`. A run
starts from random weights, or from a trained model's with `train.init_from` (starting_point).

Nothing is lost: the memory a run needs is checked before the model is allocated (memory.py);
the run folder is locked for the whole run, and rnnac writes there only its own files, atomically
(rundir.py). Ctrl-C, SIGTERM or SIGHUP finishes the update under way, saves `last.npz` and
raises TrainingInterrupted; a NaN or infinite loss stops the run before it can overwrite the
last good checkpoint. `--resume` restores the parameters, optimizer, sampler position and
Progress, so an interrupted run ends bit-identical to one run straight through; it refuses a
changed model, word list, seed, batch size or optimizer.

Performance notes: validation scores VAL_BATCH words per batch, so that it makes few Python
round trips.
"""

from __future__ import annotations

import dataclasses
import hashlib
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
from typing import Any

import numpy as np

from rnnac.engine.bptt import Engine, dropout_mask
from rnnac.engine.model import RNN
from rnnac.engine.optim import OPTIMIZERS, ParamAverage, clip_grads, learning_rate, make_optimizer
from rnnac.engine.vocab import Vocab, make_batch
from rnnac.errors import CheckpointError, ConfigError, TrainingDiverged, TrainingInterrupted, quote, shown
from rnnac.inference.lexicons import with_stored_trie
from rnnac.inference.mixture import LambdaFit, fit_for_list, with_rnn_logp
from rnnac.storage.checkpoint import load_checkpoint, load_trained, save_checkpoint
from rnnac.storage.lexicon import LexiconData
from rnnac.storage.wordlist import BatchSampler
from rnnac.training.config import Config
from rnnac.training.data import Data, load_data
from rnnac.training.memory import check_memory
from rnnac.training.rundir import Metrics, RunFolder, json_float

VAL_BATCH = 512  # words per validation batch
EMA = 0.95  # smoothing of the training loss that train.target_loss is compared with
DROPOUT_STREAM = 1  # the third word of the dropout masks' seed, apart from the sampler's streams
LOG_EVERY = 10  # updates between metrics.jsonl lines (validations always get one)
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))
RESUME_FIXED = ("train.seed", "train.batch_size", "train.optimizer")  # with every data.* and model.* key
RAN_WITHOUT = {"data.fold_accents": False}  # settings an older rnnac did not have, as its runs ran: not the default


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
        return {f.name: json_float(getattr(self, f.name)) for f in _saved_fields()}

    @classmethod
    def from_meta(cls, meta: dict, origin: str) -> Progress:
        """The inverse of to_meta; CheckpointError naming `origin` for a missing or mistyped key."""
        return cls(**{f.name: _saved_value(f, meta, origin) for f in _saved_fields()})


def _saved_fields() -> list[dataclasses.Field]:
    return [f for f in dataclasses.fields(Progress) if f.metadata.get("saved", True)]


def _saved_value(f: dataclasses.Field, meta: dict, origin: str) -> Any:
    """meta's value of the Progress field `f`; CheckpointError naming `origin` if it is missing or not of f's type."""
    if f.name not in meta:
        raise CheckpointError(f"cannot resume {origin}: meta has no {f.name!r}")
    value = meta[f.name]
    if value is None and f.default == math.inf:
        value = math.inf  # an infinite best_val_loss was written as null
    is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ((value is None and "None" in f.type) or (is_number and (f.type != "int" or isinstance(value, int)))):
        raise CheckpointError(f"cannot resume {origin}: meta {f.name} is {shown(value)}, not a number")
    return value


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

    def __init__(self, config: Config, data: Data, params: dict[str, np.ndarray] | None = None):
        settings = config.train
        self.config, self.data, self.out = config, data, Path(config.output.dir)
        self.model = RNN.init(len(data.vocab), config.model.hidden_size, config.model.activation, seed=settings.seed,
                              dtype=np.dtype(config.model.dtype))
        for name, value in (params or {}).items():  # train.init_from: a trained model's weights
            self.model.params[name][...] = value
        self.engine = Engine(self.model, threads=settings.threads)
        hyper = {"weight_decay": settings.weight_decay} | ({"momentum": settings.momentum} if settings.optimizer == "momentum" else {})
        self.optimizer = make_optimizer(settings.optimizer, self.model.params, **hyper)
        # train.average: the moving average of the parameters is what validation scores and best.npz keeps
        self.average = ParamAverage(self.model.params, settings.average) if settings.average else None
        self.sampler = BatchSampler([len(w) for w in data.train_words], settings.batch_size, seed=settings.seed,
                                    scheme=config.data.weighting, counts=data.train_counts)
        self.progress = Progress()
        self.val_batches = validation_batches(data.val_words, data.vocab, settings.eval_words)
        self.data_sha256 = data_digest(data)
        # Every checkpoint carries the whole list as most often written ("Paris", shown so), validation
        # words marked (they stay out of held-out figures).
        self.lexicon = LexiconData.from_unsorted(data.written or data.words, data.counts, data.held_out)
        self.mixture_lambda: float | None = None  # fitted when the run ends (fit_mixture)
        self.mixture_fit: str | None = None  # how (LambdaFit.describe)

    def restore(self, path: Path, warn=lambda message: None) -> None:
        """Continue from the checkpoint at `path`, which must come from this word list and config:
        the same data.*, model.* and RESUME_FIXED settings (the others may change). `warn` gets a
        line for what the resume cannot check or may not expect."""
        if not path.exists():
            raise _nothing_to_resume(path)
        ckpt = load_checkpoint(path)
        saved = ckpt.meta["config"] if isinstance(ckpt.meta["config"], dict) else {}
        changed = _changed_setting(saved, self.config.to_dict())
        if changed:
            name, was, now = changed
            raise ConfigError(f"cannot resume {path}: {name} was {shown(was)} in that run, now {shown(now)}; "
                              "start a new run (--force or another output.dir) to change it")
        self._check_same_words(path, ckpt.meta.get("data_sha256"), warn)
        if ckpt.meta["chars"] != self.data.vocab.chars:
            raise CheckpointError(f"cannot resume {path}: the vocabulary of the word list has changed")
        progress = Progress.from_meta(ckpt.meta, str(path))
        for name in self.model.params:
            self.model.params[name][...] = ckpt.params[name]
        state = dict(ckpt.optimizer_state)
        averaged = {k: state.pop(k) for k in list(state) if k.startswith(ParamAverage.slot + ".")}
        if self.average is not None and averaged:  # else a train.average switched on now starts from here
            self.average.load_state_dict(averaged, int(state.get("t", 0)))
        self.optimizer.load_state_dict(state)
        self.sampler = BatchSampler.from_state(ckpt.meta["rng_state"], self.sampler.lengths, self.data.train_counts)
        self.progress = progress
        self._warn_if_the_schedule_restarts(saved.get("train", {}).get("max_steps"), warn)

    def _check_same_words(self, path: Path, saved_sha256: str | None, warn) -> None:
        if saved_sha256 is None:
            warn(f"{path} holds no digest of its word list, so a changed data.path file cannot be detected")
        elif saved_sha256 != self.data_sha256:
            raise ConfigError(f"cannot resume {path}: the word list data.path {quote(self.config.data.path)} has changed "
                              "since that run (its words, their order or their counts)")

    def _warn_if_the_schedule_restarts(self, saved_max_steps: Any, warn) -> None:
        """A cosine schedule spans train.max_steps: raising it on resume raises the learning rate again."""
        settings, step = self.config.train, self.progress.step
        if settings.schedule != "cosine" or not isinstance(saved_max_steps, int) or saved_max_steps == settings.max_steps:
            return
        was, now = self.learning_rate(step, saved_max_steps), self.learning_rate(step)
        if now > was:
            warn(f"train.max_steps was {saved_max_steps:,}, now {settings.max_steps:,}: the cosine schedule is stretched "
                 f"to the new length, so the learning rate goes back up from {was:.3g} to {now:.3g} at step {step:,}")

    def learning_rate(self, step: int, max_steps: int | None = None) -> float:
        """The learning rate of update `step` (0 for the first); `max_steps` in place of train.max_steps."""
        settings = self.config.train
        return learning_rate(step, settings.learning_rate, settings.schedule, settings.warmup_steps,
                             max_steps or settings.max_steps, settings.decay_every, settings.decay_rate, settings.min_lr)

    def step(self) -> StepResult:
        """One update; TrainingDiverged, before any parameter changes, if the loss or gradient is not finite."""
        settings, progress = self.config.train, self.progress
        lr = self.learning_rate(progress.step)
        batch = make_batch([self.data.train_words[i] for i in self.sampler.next_batch()], self.data.vocab)
        keep = None
        if settings.dropout:  # drawn from (seed, step), so a resumed run draws the same masks
            rng = np.random.default_rng([settings.seed, progress.step, DROPOUT_STREAM])
            keep = dropout_mask(rng, (*batch.inputs.shape, self.model.hidden_size), settings.dropout, self.model.dtype)
        loss, grads = self.engine.loss_and_grads(batch, settings.loss, settings.truncate, keep)
        # A non-finite loss or gradient is refused before the update: the last checkpoint on disk stays good.
        grad_norm = clip_grads(grads, settings.clip_norm, settings.clip_value)
        if not (math.isfinite(loss) and math.isfinite(grad_norm)):
            raise self._diverged(loss, grad_norm)
        self.optimizer.step(self.model.params, grads, lr)
        if self.average is not None:
            self.average.update(self.model.params)
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
                self.save("best.npz", None if self.average is None else self.average.params())
            return
        engine = self.engine if self.average is None else Engine(RNN(self.average.params(), self.model.activation))
        progress.val_loss = validation_loss(engine, self.val_batches, self.config.train.loss)
        if progress.val_loss < progress.best_val_loss:
            progress.best_val_loss, progress.best_step, progress.stale_validations = progress.val_loss, progress.step, 0
            self.save("best.npz", engine.model.params)
        else:
            progress.stale_validations += 1

    def save(self, name: str, params: dict[str, np.ndarray] | None = None) -> None:
        """Write the run's state atomically to output.dir/name; `params` in place of the model's
        own (the averaged ones, for best.npz)."""
        model = self.model
        meta = {"chars": self.data.vocab.chars, "activation": model.activation, "hidden_size": model.hidden_size,
                "dtype": self.config.model.dtype, "config": self.config.to_dict(), "epoch": self.sampler.epoch,
                "rng_state": self.sampler.state_dict(), "data_sha256": self.data_sha256, **self.progress.to_meta()}
        if self.mixture_lambda is not None:
            meta["mixture_lambda"] = self.mixture_lambda
        if self.mixture_fit is not None:
            meta["mixture_fit"] = self.mixture_fit
        state = self.optimizer.state_dict() | (self.average.state_dict() if self.average is not None else {})
        save_checkpoint(self.out / name, model.params if params is None else params, meta, state, self.lexicon)

    def fit_mixture(self) -> LambdaFit | None:
        """Fit the lexicon's weight lambda (rnnac.inference.mixture) with the best model and store it in best.npz
        and last.npz, so that completion with either uses it; None (nothing stored, completion
        then weighs both sides alike: TrainedModel.mixture_lambda) when no validation word shows how
        often new words come. A long list is fitted on a sample seeded by train.seed."""
        best = load_checkpoint(self.out / "best.npz")
        model = RNN(best.params, self.model.activation)
        fit = fit_for_list(model, self.data.vocab, self.data.words, self.data.counts, self.data.held_out,
                           seed=self.config.train.seed)
        # Each word's log P_rnn under the best parameters, saved beside them only (last.npz holds
        # others), and the trie of the list with them, which completion then reads instead of building.
        folding = self.config.data.folding
        lexicon = best.lexicon and with_stored_trie(with_rnn_logp(model, self.data.vocab, folding, best.lexicon),
                                                    self.data.vocab, folding)
        if fit is None:
            save_checkpoint(self.out / "best.npz", best.params, best.meta, best.optimizer_state, lexicon)
            return None
        self.mixture_lambda, self.mixture_fit = fit.mixture_lambda, fit.describe()
        save_checkpoint(self.out / "best.npz", best.params,
                        {**best.meta, "mixture_lambda": self.mixture_lambda, "mixture_fit": self.mixture_fit},
                        best.optimizer_state, lexicon)
        self.save("last.npz")
        return fit

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


def run(config: Config, resume: bool = False, quiet: bool = False, force: bool = False, log=None, warn=None) -> RunSummary:
    """Train as `config` says and return its summary (RunSummary). Writes to config.output.dir, locked
    meanwhile: run-config.yaml (the config as run), metrics.jsonl, last.npz and best.npz. `log`
    gets progress lines (none when `quiet`), `warn` warnings (stderr by default, quiet or not)."""
    log = log or (lambda msg: None if quiet else print(msg, file=sys.stderr))
    warn = warn or (lambda msg: print(f"Warning: {msg}", file=sys.stderr))
    out = Path(config.output.dir)
    if resume and not os.path.lexists(out / "last.npz"):
        raise _nothing_to_resume(out / "last.npz")
    if resume:
        _refuse_over_a_changed_list(out)
    # 1. Everything that can refuse the config or the word list, before the folder is touched.
    config, vocab, params = starting_point(config, log)
    data = load_data(config, vocab)
    log(data.summary)
    check_memory(config, data, VAL_BATCH)
    trainer = Trainer(config, data, params)
    # 2. The folder, locked until the run ends.
    with RunFolder(out) as folder:
        if resume:
            trainer.restore(out / "last.npz", warn)
            log(f"resuming {out / 'last.npz'} at step {trainer.progress.step}")
            finished = trainer.stop_reason(threading.Event())
            if finished:
                text = f"nothing to resume: {out / 'last.npz'} already stopped at step {trainer.progress.step} ({finished})"
                return RunSummary(text, {**_record(trainer), "stop_reason": finished, "nothing_to_resume": True})
        else:
            folder.claim(force)
        folder.write_config(config)
        log(f"run folder: {out}")
        return _train(trainer, resume, quiet, log, warn)


def starting_point(config: Config, log=lambda message: None) -> tuple[Config, Vocab | None, dict[str, np.ndarray] | None]:
    """(config, vocabulary, parameters) to start a run from: with train.init_from, the trained
    model's (its size, activation, dtype and folding, case and accents, replace the config's, and
    the log says so); else the config as given, and None, None: a vocabulary of the list, random
    weights."""
    if not config.train.init_from:
        return config, None, None
    trained = load_trained(config.train.init_from)
    model, vocab, folding = trained.model, trained.vocab, trained.folding
    kept = {"hidden_size": model.hidden_size, "activation": model.activation, "dtype": str(model.dtype)}
    config = dataclasses.replace(config, model=dataclasses.replace(config.model, **kept),
                                 data=dataclasses.replace(config.data, lowercase=folding.lowercase, fold_accents=folding.accents))
    log(f"starting from {trained.path}: its model (H={model.hidden_size}, {model.activation}, {model.dtype}), its "
        f"{len(vocab.chars)} characters and its folding (data.lowercase {str(folding.lowercase).lower()}, "
        f"data.fold_accents {str(folding.accents).lower()})")
    return config, vocab, model.params


@dataclass(frozen=True)
class RunSummary:
    """What `run` returns: the one-line summary `rnnac train` prints (its str), with its figures in
    `record` (a JSON-able dict, for `rnnac train --format json`)."""

    text: str
    record: dict

    def __str__(self) -> str:
        return self.text


def _record(trainer: Trainer) -> dict:
    progress, out = trainer.progress, trainer.out
    return {"version": 1, "run_dir": str(out), "step": progress.step, "stop_reason": progress.stop_reason,
            "elapsed": progress.elapsed, "train_loss": json_float(progress.train_loss_ema),
            "best_val_loss": json_float(progress.best_val_loss) if trainer.val_batches else None,
            "best_step": progress.best_step, "mixture_lambda": trainer.mixture_lambda,
            "best": str(out / "best.npz"), "last": str(out / "last.npz")}


def _train(trainer: Trainer, resume: bool, quiet: bool, log, warn) -> RunSummary:
    """The training loop of `run`, with its log lines, metrics file, signal handlers and progress
    bar; when stderr is not a terminal, a plain log line per validation takes the bar's place."""
    config, model, progress, out = trainer.config, trainer.model, trainer.progress, trainer.out
    settings = config.train
    log(f"model: {model.n_params():,} parameters (H={model.hidden_size}, K={model.vocab_size}, "
        f"{config.model.activation}, {config.model.dtype}); {settings.optimizer}, lr {settings.learning_rate:g}")
    plain_log = None if quiet or sys.stderr.isatty() else log
    with (Metrics(out / "metrics.jsonl", keep_until=progress.step if resume else 0, warn=warn) as metrics,
          _deferred_interrupt() as interrupted, _progress_bar(settings.max_steps, progress.step, disable=quiet) as bar):
        _loop(trainer, metrics, bar, interrupted, plain_log)
    if interrupted.is_set():
        raise TrainingInterrupted(progress.step, out / "last.npz", interrupted.signum)
    fit = trainer.fit_mixture()
    log(f"lexicon weight lambda {fit.mixture_lambda:.3f} ({fit.describe()})" if fit is not None
        else "lexicon weight lambda not fitted: no validation word shows how often new words come")
    val = "no validation words"
    if trainer.val_batches:
        val = f"best validation loss {progress.best_val_loss:.4f} at step {progress.best_step}"
    return RunSummary(f"stopped at step {progress.step} ({progress.stop_reason}) after {progress.elapsed:.2f} s: "
                      f"train loss {progress.train_loss_ema:.4f}, {val}; checkpoints in {out}", _record(trainer))


def _loop(trainer: Trainer, metrics: Metrics, bar, interrupted: threading.Event, plain_log=None) -> None:
    """Update until a stop rule fires: validate and save as `_validate_and_save` says, log every
    LOG_EVERY updates, each validation and the last update (`_log_update`)."""
    progress = trainer.progress
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
            validated = _validate_and_save(trainer, finished, interrupted)
            if validated or finished or progress.step % LOG_EVERY == 0:
                _log_update(trainer, result, speed.take(), validated, metrics, bar, plain_log)
            bar.update(1)


def _validate_and_save(trainer: Trainer, finished: bool, interrupted: threading.Event) -> bool:
    """After an update: validate every eval_every updates and when the run has finished, save
    last.npz then, when the run stops and every output.checkpoint_every updates. True if it validated."""
    progress, checkpoint_every = trainer.progress, trainer.config.output.checkpoint_every
    validate = progress.step % trainer.config.train.eval_every == 0 or finished
    if validate:
        trainer.validate()
        if not progress.stop_reason:
            progress.stop_reason = trainer.stop_reason(interrupted)  # patience counts this validation
    if validate or progress.stop_reason or (checkpoint_every and progress.step % checkpoint_every == 0):
        trainer.save("last.npz")
    return validate


def _log_update(trainer: Trainer, result: StepResult, chars_per_sec: float, validated: bool, metrics: Metrics, bar,
                plain_log=None) -> None:
    """A metrics.jsonl line and the progress bar's figures for this update; a line to `plain_log`
    when it validated."""
    progress = trainer.progress
    metrics.write(step=progress.step, epoch=trainer.sampler.epoch, train_loss=result.loss,
                  val_loss=progress.val_loss if validated and trainer.val_batches else None, lr=result.lr,
                  grad_norm=result.grad_norm, chars_per_sec=chars_per_sec, elapsed=progress.elapsed)
    bar.set_postfix_str(_postfix(progress, chars_per_sec), refresh=False)
    if validated and plain_log:
        plain_log(_validation_line(progress, trainer.config.train.max_steps, chars_per_sec))


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


def _refuse_over_a_changed_list(out: Path) -> None:
    """A run whose best.npz's word list was changed since training (`rnnac lexicon`, accepts in
    its journal) is not resumed: the run's end would write data.path's list over the changes."""
    best = out / "best.npz"
    if not best.exists():
        return
    from rnnac.storage.journal import journal_path, read_journal

    ckpt = load_checkpoint(best, verify_lexicon=False)
    edits = int((ckpt.meta.get("lexicon_edits") or {}).get("edits", 0))
    sha256 = ckpt.lexicon is not None and (ckpt.lexicon.summary or {}).get("sha256")
    logged = len(read_journal(journal_path(best), sha256)[0]) if sha256 else 0
    if edits or logged:
        changes = " and ".join(part for part in (edits and f"{edits:,} edits by rnnac lexicon",
                                                 logged and f"{logged:,} in its journal") if part)
        raise CheckpointError(
            f"cannot resume {out}: the word list of {best} was changed since training ({changes}), and the run's end "
            f"would replace it with data.path's; to train on with the changed list, start a run from the model: "
            f"rnnac lexicon list -c {out} > list.tsv && rnnac train list.tsv --init-from {best}")


def _nothing_to_resume(path: Path) -> CheckpointError:
    return CheckpointError(f"cannot resume: {path} does not exist (start without --resume)")


def data_digest(data: Data) -> str:
    """SHA-256 of the training words with their counts and the validation words, in order: the
    split is by position, so a word list edited, reordered or recounted gives another digest."""
    digest = hashlib.sha256(json.dumps([data.train_words, data.val_words]).encode())
    digest.update(np.ascontiguousarray(data.train_counts, dtype="<f8").tobytes())
    return digest.hexdigest()


def _changed_setting(saved: dict, now: dict) -> tuple[str, Any, Any] | None:
    """The first setting a resume may not change that differs between the saved config and this
    one, as (name, was, now); None when none does."""
    names = [f"{section}.{key}" for section in ("data", "model") for key in now[section]] + list(RESUME_FIXED)
    for name in names:
        section, key = name.split(".")
        saved_section = saved.get(section)
        if isinstance(saved_section, dict) and key not in saved_section and name not in RESUME_FIXED:
            if name not in RAN_WITHOUT:
                continue  # a setting the rnnac that saved it did not have: it ran as the default
            saved_section = {key: RAN_WITHOUT[name]}
        was = saved_section.get(key) if isinstance(saved_section, dict) else None
        if _canonical(was) != _canonical(now[section][key]):
            return name, was, now[section][key]
    return None


def _canonical(value: Any) -> Any:
    """An optimizer under the name its class gives it (a config written before aliases existed
    says adam where now adamw is read as adam too)."""
    return OPTIMIZERS[value].name if isinstance(value, str) and value in OPTIMIZERS else value


def _validation_line(progress: Progress, max_steps: int, speed: float) -> str:
    """'step 400/2,000: train loss 2.412, val loss 2.503, 61,000 chars/s, 12.3 s'."""
    val = "-" if progress.val_loss is None else f"{progress.val_loss:.3f}"
    return (f"step {progress.step:,}/{max_steps:,}: train loss {progress.train_loss_ema:.3f}, val loss {val}, "
            f"{speed:,.0f} chars/s, {progress.elapsed:.1f} s")


def _postfix(progress: Progress, speed: float) -> str:
    val = "-" if progress.val_loss is None else f"{progress.val_loss:.3f}"
    return f"loss {progress.train_loss_ema:.3f}, val {val}, {speed:,.0f} chars/s"


def _progress_bar(total: int, initial: int, disable: bool):
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, unit="step", file=sys.stderr, dynamic_ncols=True,
                disable=disable or not sys.stderr.isatty())


class _Interrupted(threading.Event):
    """Set by the first stop signal; `signum` says which one."""

    signum: int = signal.SIGINT


@contextmanager
def _deferred_interrupt():
    """The first Ctrl-C (SIGINT), SIGTERM or SIGHUP sets an event that the loop reads between
    updates, so a checkpoint is never taken of half-updated parameters; a second one interrupts
    at once (KeyboardInterrupt: exit 130), in the loop, during the save, or on the way out after
    it, so that it never meets the signal's default action (SIGTERM's would kill the process
    with 143 while it reports the save). A signal the caller ignores (nohup) stays ignored."""
    interrupted = _Interrupted()
    if threading.current_thread() is not threading.main_thread():
        yield interrupted
        return
    caught = [sig for sig in STOP_SIGNALS if signal.getsignal(sig) is not signal.SIG_IGN]

    def handler(signum, frame):
        if interrupted.is_set():
            for sig in caught:  # one KeyboardInterrupt is enough: a third signal must not interrupt its unwinding
                signal.signal(sig, signal.SIG_IGN)
            raise KeyboardInterrupt
        interrupted.signum = signum
        interrupted.set()

    def restore():
        for sig, old in previous.items():
            signal.signal(sig, signal.SIG_DFL if old is None else old)  # None: a handler not set from Python

    def second_after_the_loop(signum, frame):
        restore()
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, handler) for sig in caught}
    try:
        yield interrupted
    except BaseException:
        restore()
        raise
    if interrupted.is_set():  # stopping: the next stop signal still stops at once, then the old handlers are back
        for sig in caught:
            signal.signal(sig, second_after_the_loop)
    else:
        restore()
