"""Training: from a word list and a config to checkpoints that are never lost.

One update: draw a batch of training words (bucketed by length), forward and back-propagate
through time (bptt.py), clip the gradient (seed 003), step the optimizer. Every
`train.eval_every` updates: the validation loss, `best.npz` when it improved, `last.npz`.

Nothing is lost: checkpoints are written atomically (checkpoint.py); Ctrl-C finishes the
update under way, saves `last.npz` and raises TrainingInterrupted; a NaN or infinite loss
stops the run before it can overwrite the last good checkpoint. `--resume` restores the
parameters, optimizer, sampler position and counters, so an interrupted run ends bit-identical
to one run straight through.
"""

from __future__ import annotations

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

from rnnac.checkpoint import load_checkpoint, save_checkpoint
from rnnac.config import Config
from rnnac.data import Vocab, make_batch
from rnnac.errors import CheckpointError, ConfigError, RnnacError, TrainingDiverged
from rnnac.model import RNN
from rnnac.optim import clip_grads, learning_rate, make_optimizer
from rnnac.wordlist import BatchSampler, read_word_list, split_words

VAL_BATCH = 512  # words per validation batch: large batches, few Python round trips
EMA = 0.95  # smoothing of the training loss that train.target_loss is compared with


class TrainingInterrupted(RnnacError):
    """Ctrl-C: the run saved last.npz and stopped; `--resume` continues it."""

    def __init__(self, step: int, path: Path):
        super().__init__(f"interrupted at step {step}; saved {path}")
        self.step, self.path = step, path


@dataclass
class Progress:
    """The counters a checkpoint carries besides parameters and optimizer state."""

    step: int = 0
    best_val_loss: float = math.inf
    best_step: int = 0
    stale_validations: int = 0  # validations since the best, for train.patience
    train_loss_ema: float | None = None
    elapsed: float = 0.0  # seconds of training over every session of this run
    stop_reason: str = ""
    val_loss: float | None = None


@dataclass
class Data:
    vocab: Vocab
    train_words: list[str]
    train_counts: np.ndarray
    val_words: list[str]
    summary: str


def load_data(config: Config) -> Data:
    """Read, filter and split the word list; the vocabulary comes from the training words."""
    d = config.data
    words = read_word_list(d.path, lowercase=d.lowercase, allowed_chars=d.allowed_chars,
                           min_length=d.min_length, max_length=d.max_length, max_words=d.max_words)
    train_idx, val_idx = split_words(len(words.words), d.val_fraction, config.train.seed)
    train_words = [words.words[i] for i in train_idx]
    vocab = Vocab.from_words(train_words)
    val_all = [words.words[i] for i in val_idx]
    val_words = [w for w in val_all if vocab.unknown_char(w) is None]  # unscorable otherwise
    summary = f"{words.summary()}; {len(train_words):,} training and {len(val_words):,} validation words"
    if len(val_words) < len(val_all):
        summary += f" ({len(val_all) - len(val_words):,} held-out words with unseen characters skipped)"
    return Data(vocab, train_words, words.counts[train_idx], val_words, summary)


def validation_batches(words: list[str], vocab: Vocab, limit: int | None):
    """Fixed batches of similar-length words; the first `limit` words when given."""
    chosen = sorted(words[:limit] if limit else words, key=len)
    return [make_batch(chosen[i : i + VAL_BATCH], vocab) for i in range(0, len(chosen), VAL_BATCH)]


def validation_loss(model: RNN, batches, loss: str) -> float:
    """Mean loss per validation target character (nats per character for cross-entropy)."""
    total = sum(model.loss(b, loss) * b.n_targets for b in batches)
    return total / sum(b.n_targets for b in batches)


def run(config: Config, resume: bool = False, quiet: bool = False, force: bool = False, log=None) -> str:
    """Train as `config` says and return a one-line summary. Writes to config.output.dir:
    config.yaml (the config as run), metrics.jsonl, last.npz and best.npz."""
    log = log or (lambda msg: None if quiet else print(msg, file=sys.stderr))
    t, out = config.train, Path(config.output.dir)
    data = load_data(config)
    log(data.summary)

    model = RNN.init(len(data.vocab), config.model.hidden_size, config.model.activation, seed=t.seed,
                     dtype=np.dtype(config.model.dtype))
    model.threads = t.threads
    hyper = {"weight_decay": t.weight_decay} | ({"momentum": t.momentum} if t.optimizer == "momentum" else {})
    optimizer = make_optimizer(t.optimizer, model.params, **hyper)
    sampler = BatchSampler([len(w) for w in data.train_words], t.batch_size, seed=t.seed,
                           scheme=config.data.weighting, counts=data.train_counts)
    progress = Progress()
    if resume:
        sampler, progress = _restore(out / "last.npz", config, data, model, optimizer, sampler)
        log(f"resuming {out / 'last.npz'} at step {progress.step}")
        finished = _stop_reason(config, progress, sampler.epoch, threading.Event())
        if finished:
            return f"nothing to resume: {out / 'last.npz'} already stopped at step {progress.step} ({finished})"
    else:
        _claim_run_dir(out, force)
    _write_config(out, config)
    val_batches = validation_batches(data.val_words, data.vocab, t.eval_words)
    log(f"model: {model.n_params():,} parameters (H={model.hidden_size}, K={model.vocab_size}, "
        f"{config.model.activation}, {config.model.dtype}); {t.optimizer}, lr {t.learning_rate:g}")

    def checkpoint(name: str):
        meta = {
            "chars": data.vocab.chars, "activation": model.activation, "hidden_size": model.hidden_size,
            "dtype": config.model.dtype, "config": config.to_dict(), "step": progress.step,
            "epoch": sampler.epoch, "best_val_loss": _json_float(progress.best_val_loss),
            "rng_state": sampler.state_dict(), "best_step": progress.best_step,
            "stale_validations": progress.stale_validations, "val_loss": _json_float(progress.val_loss),
            "train_loss_ema": progress.train_loss_ema, "elapsed": progress.elapsed,
        }
        save_checkpoint(out / name, model.params, meta, optimizer.state_dict())

    metrics = _Metrics(out / "metrics.jsonl", truncate_after=progress.step if resume else 0)
    bar = _progress_bar(t.max_steps, progress.step, disable=quiet)
    started, chars_done, window_start = time.perf_counter() - progress.elapsed, 0, time.perf_counter()
    grad_norm = lr = loss_value = math.nan
    # Overflow shows up as a non-finite loss or gradient, which step 2 refuses: no warning spam.
    with _deferred_interrupt() as interrupted, bar, np.errstate(over="ignore", invalid="ignore"):
        while not progress.stop_reason:
            # 1. The learning rate of this update, then one batch through BPTT.
            lr = learning_rate(progress.step, t.learning_rate, t.schedule, t.warmup_steps, t.max_steps,
                               t.decay_every, t.decay_rate, t.min_lr)
            batch = make_batch([data.train_words[i] for i in sampler.next_batch()], data.vocab)
            loss_value, grads = model.loss_and_grads(batch, t.loss, t.truncate)
            # 2. Refuse a non-finite loss or gradient: the last checkpoint on disk stays good.
            grad_norm = clip_grads(grads, t.clip_norm, t.clip_value)
            if not (math.isfinite(loss_value) and math.isfinite(grad_norm)):
                raise _diverged(loss_value, grad_norm, progress.step + 1, out / "last.npz", t)
            # 3. The update.
            optimizer.step(model.params, grads, lr)
            progress.step += 1
            chars_done += batch.n_targets
            ema = progress.train_loss_ema
            progress.train_loss_ema = loss_value if ema is None else EMA * ema + (1 - EMA) * loss_value
            progress.elapsed = time.perf_counter() - started
            # 4. Stop conditions, then validation and checkpoints.
            progress.stop_reason = _stop_reason(config, progress, sampler.epoch, interrupted)
            validate = progress.step % t.eval_every == 0 or (progress.stop_reason and not interrupted.is_set())
            if validate and val_batches:
                _record_validation(progress, validation_loss(model, val_batches, t.loss), t.patience)
                if progress.best_step == progress.step:
                    checkpoint("best.npz")
            elif validate and progress.best_step < progress.step and not val_batches:
                progress.best_step = progress.step  # no validation words: the latest is the best
                checkpoint("best.npz")
            saving = validate or progress.stop_reason or (
                config.output.checkpoint_every and progress.step % config.output.checkpoint_every == 0)
            if saving:
                checkpoint("last.npz")
            if validate or progress.step % 10 == 0 or (progress.stop_reason and not interrupted.is_set()):
                now = time.perf_counter()
                speed = chars_done / max(now - window_start, 1e-9)
                chars_done, window_start = 0, now
                metrics.write(step=progress.step, epoch=sampler.epoch, train_loss=loss_value,
                              val_loss=progress.val_loss if validate else None, lr=lr, grad_norm=grad_norm,
                              chars_per_sec=speed, elapsed=progress.elapsed)
                bar.set_postfix_str(_postfix(progress, speed), refresh=False)
            bar.update(1)
    if interrupted.is_set():
        raise TrainingInterrupted(progress.step, out / "last.npz")
    val = "no validation words"
    if val_batches:
        val = f"best validation loss {progress.best_val_loss:.4f} at step {progress.best_step}"
    return (f"stopped at step {progress.step} ({progress.stop_reason}) after {progress.elapsed:.2f} s: "
            f"train loss {progress.train_loss_ema:.4f}, {val}; checkpoints in {out}")


def _diverged(loss_value: float, grad_norm: float, step: int, last: Path, t) -> TrainingDiverged:
    what = f"the loss became {loss_value}" if not math.isfinite(loss_value) else f"the gradient norm became {grad_norm}"
    kept = f"the last good checkpoint is {last}" if last.exists() else "no checkpoint was saved yet"
    return TrainingDiverged(f"{what} at step {step}; {kept}. Try a lower train.learning_rate (now {t.learning_rate:g})"
                            f" or gradient clipping (train.clip_norm, now {t.clip_norm})")


def _stop_reason(config: Config, progress: Progress, epoch: int, interrupted: threading.Event) -> str:
    t = config.train
    if interrupted.is_set():
        return "interrupted"
    if progress.step >= t.max_steps:
        return "max_steps"
    if t.max_epochs and epoch >= t.max_epochs:
        return "max_epochs"
    if t.max_seconds and progress.elapsed >= t.max_seconds:
        return "max_seconds"
    if t.target_loss and progress.train_loss_ema is not None and progress.train_loss_ema < t.target_loss:
        return "target_loss"
    if t.patience and progress.stale_validations >= t.patience:
        return "patience"
    return ""


def _record_validation(progress: Progress, val_loss: float, patience: int | None) -> None:
    progress.val_loss = val_loss
    if val_loss < progress.best_val_loss:
        progress.best_val_loss, progress.best_step, progress.stale_validations = val_loss, progress.step, 0
    else:
        progress.stale_validations += 1
    if patience and progress.stale_validations >= patience and not progress.stop_reason:
        progress.stop_reason = "patience"


def _restore(path: Path, config: Config, data: Data, model: RNN, optimizer, sampler):
    """Load last.npz into model and optimizer; check it belongs to this config and data."""
    if not path.exists():
        raise CheckpointError(f"cannot resume: {path} does not exist (start without --resume)")
    ckpt = load_checkpoint(path)
    saved = ckpt.meta["config"]
    now = config.to_dict()
    for section in ("data", "model"):
        for key, value in now[section].items():
            if saved.get(section, {}).get(key) != value:
                raise ConfigError(f"cannot resume {path}: {section}.{key} was {saved.get(section, {}).get(key)!r} "
                                  f"in that run, now {value!r}")
    if ckpt.meta["chars"] != data.vocab.chars:
        raise CheckpointError(f"cannot resume {path}: the vocabulary of the word list has changed")
    for name in model.params:
        model.params[name][...] = ckpt.params[name]
    optimizer.load_state_dict(ckpt.optimizer_state)
    sampler = BatchSampler.from_state(ckpt.meta["rng_state"], sampler.lengths, data.train_counts)
    meta = ckpt.meta
    progress = Progress(step=meta["step"], best_val_loss=_float(meta["best_val_loss"]), best_step=meta["best_step"],
                        stale_validations=meta["stale_validations"], train_loss_ema=meta["train_loss_ema"],
                        elapsed=meta["elapsed"], val_loss=_float(meta["val_loss"]))
    return sampler, progress


def _claim_run_dir(out: Path, force: bool) -> None:
    if (out / "last.npz").exists() and not force:
        raise RnnacError(f"{out} already holds a run (last.npz): resume it with --resume, "
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
    return None if x is None or not math.isfinite(x) else float(x)


def _float(x):
    return math.inf if x is None else float(x)


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
