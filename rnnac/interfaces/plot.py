"""The learning curve of a run: training and validation loss against the update step.

Reads RUN_DIR/metrics.jsonl, one JSON object a line with the keys step, epoch, train_loss,
val_loss (null on lines without a validation), lr, grad_norm, chars_per_sec and elapsed.
Drawing needs matplotlib, an optional extra (`pip install 'rnnac[plot]'`); reading does not.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

from rnnac.errors import DataError, MissingExtraError, OutputError

METRICS_FILE = "metrics.jsonl"
CONFIG_FILE = "run-config.yaml"  # the config as run, beside the metrics: says which loss they are
SMOOTHING_WINDOW = (5, 1 / 20)  # the training curve's EMA spans about this many points, or this share of them


@dataclass
class Curves:
    """The losses of a run; NaN stands for a loss that was not finite (written as null)."""

    path: str  # the metrics file read
    steps: list[int]  # every logged step
    train_loss: list[float]  # (one per step)
    val_steps: list[int]  # the steps that validated
    val_loss: list[float]  # (one per validation step)


def read_metrics(run_dir: str | os.PathLike) -> Curves:
    """The curves of RUN_DIR/metrics.jsonl (or of a metrics file given directly).

    Raises DataError naming the file for a missing file, an empty one, or a line that is not a
    JSON object with a step.
    """
    path = Path(run_dir)
    if path.is_dir():
        path = path / METRICS_FILE
    curves = Curves(str(path), [], [], [], [])
    for number, line in enumerate(_lines(path, run_dir), start=1):
        if not line.strip():
            continue
        record = _record(line, path, number)
        curves.steps.append(record["step"])
        curves.train_loss.append(_loss(record.get("train_loss")))
        if record.get("val_loss") is not None:
            curves.val_steps.append(record["step"])
            curves.val_loss.append(_loss(record["val_loss"]))
    if not curves.steps:
        raise DataError(f"{path}: holds no metrics yet")
    return curves


def _lines(path: Path, run_dir) -> list[str]:
    """The lines of the metrics file; DataError naming it if it cannot be read."""
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise DataError(f"{path}: no such file (is {run_dir} a training run's folder?)") from None
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: cannot read ({getattr(e, 'strerror', None) or e})") from None


def _record(line: str, path: Path, number: int) -> dict:
    """Line `number` of the metrics file as a metrics record: a JSON object with an integer step."""
    try:
        record = json.loads(line)
    except ValueError:
        raise DataError(f"{path}: line {number} is not JSON") from None
    if not isinstance(record, dict) or not isinstance(record.get("step"), int):
        raise DataError(f"{path}: line {number} is not a metrics record (no integer step)")
    return record


def plot_run(run_dir: str | os.PathLike, out_path: str | os.PathLike) -> Path:
    """Draw the run's training and validation loss into `out_path` (PNG, or any format
    matplotlib knows from the suffix) and return the path written."""
    curves = read_metrics(run_dir)
    try:
        # The object API, not pyplot: no global backend to switch, no window, safe in a library.
        from matplotlib.figure import Figure
    except ImportError:
        raise MissingExtraError("rnnac plot needs matplotlib: pip install 'rnnac[plot]'") from None

    fig = Figure(figsize=(7.5, 4.5), dpi=120, layout="constrained")
    ax = fig.add_subplot()
    ax.plot(curves.steps, curves.train_loss, color="tab:blue", alpha=0.2, linewidth=0.8)
    window = max(SMOOTHING_WINDOW[0], SMOOTHING_WINDOW[1] * len(curves.steps))  # logged points
    smoothing = 1 - 1 / window
    ax.plot(curves.steps, ema(curves.train_loss, smoothing), color="tab:blue", linewidth=1.5,
            label="training (batches, smoothed)")
    if curves.val_steps:
        best = min(range(len(curves.val_loss)), key=lambda i: _sortable(curves.val_loss[i]))
        ax.plot(curves.val_steps, curves.val_loss, color="tab:orange", marker="o", markersize=3,
                linewidth=1.5, label="validation")
        if math.isfinite(curves.val_loss[best]):
            ax.annotate(f"best {curves.val_loss[best]:.4f}", (curves.val_steps[best], curves.val_loss[best]),
                        textcoords="offset points", xytext=(0, 8), ha="center", fontsize=8)
    ax.set_xlabel("update step")
    ax.set_ylabel(_unit(Path(curves.path).parent))
    ax.set_title(Path(curves.path).parent.name or curves.path)
    ax.grid(alpha=0.3)
    ax.legend()
    out = Path(out_path)
    try:
        fig.savefig(out)
    except (OSError, ValueError) as e:  # ValueError: a suffix matplotlib cannot write
        raise OutputError(f"cannot write {out}: {getattr(e, 'strerror', None) or e}") from None
    return out


def ema(values: list[float], smoothing: float) -> list[float]:
    """The exponential moving average of `values`, s_i = smoothing s_{i-1} + (1 - smoothing) x_i,
    starting from the first finite value; a NaN (a loss that was not finite) is skipped.

    ema([1, 3, 3], 0.5) -> [1, 2, 2.5]
    """
    smoothed, s = [], math.nan
    for x in values:
        if not math.isnan(x):
            s = x if math.isnan(s) else smoothing * s + (1 - smoothing) * x
        smoothed.append(s)
    return smoothed


def _unit(run_dir: Path) -> str:
    """The y axis: nats per character, unless the run's config says its loss was squared error."""
    try:
        squared = re.search(r"^\s+loss: squared_error\s*$", (run_dir / CONFIG_FILE).read_text(encoding="utf-8"), re.M)
    except (OSError, UnicodeDecodeError):
        squared = False
    return "squared error per character" if squared else "loss (nats/char)"


def _loss(value) -> float:
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else math.nan


def _sortable(x: float) -> float:
    return math.inf if math.isnan(x) else x
