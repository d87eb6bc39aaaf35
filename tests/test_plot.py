import json
import math
import sys

import pytest

from rnnac.errors import DataError, RnnacError
from rnnac.interfaces.plot import plot_run, read_metrics


def write_run(tmp_path, records, name="run"):
    run = tmp_path / name
    run.mkdir()
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return run


def record(step, train_loss, val_loss=None):
    return {"step": step, "epoch": 0, "train_loss": train_loss, "val_loss": val_loss, "lr": 0.003,
            "grad_norm": 1.0, "chars_per_sec": 1e5, "elapsed": step / 10}


RECORDS = [record(10, 3.2), record(20, 2.9, 3.0), record(30, None), record(40, 2.5, 2.7)]


def test_read_metrics(tmp_path):
    run = write_run(tmp_path, RECORDS)
    curves = read_metrics(run)
    assert curves.steps == [10, 20, 30, 40]
    assert curves.train_loss[:2] == [3.2, 2.9] and math.isnan(curves.train_loss[2])  # null: not finite
    assert (curves.val_steps, curves.val_loss) == ([20, 40], [3.0, 2.7])
    assert read_metrics(run / "metrics.jsonl").steps == curves.steps  # the file itself will do


def test_read_metrics_errors_name_the_file(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        read_metrics(tmp_path)
    (tmp_path / "metrics.jsonl").write_text('{"step": 1, "train_loss": 3.0}\nnot json\n')
    with pytest.raises(DataError, match="metrics.jsonl: line 2 is not JSON"):
        read_metrics(tmp_path)
    (tmp_path / "metrics.jsonl").write_text('{"train_loss": 3.0}\n')
    with pytest.raises(DataError, match="line 1 is not a metrics record"):
        read_metrics(tmp_path)
    (tmp_path / "metrics.jsonl").write_text("\n")
    with pytest.raises(DataError, match="holds no metrics"):
        read_metrics(tmp_path)


def test_plot_without_matplotlib_names_the_extra(tmp_path, monkeypatch):
    run = write_run(tmp_path, RECORDS)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib...` now raises ImportError
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(RnnacError, match=r"rnnac plot needs matplotlib: pip install 'rnnac\[plot\]'"):
        plot_run(run, tmp_path / "curve.png")
    assert not (tmp_path / "curve.png").exists()


def test_plot_writes_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    run = write_run(tmp_path, RECORDS)
    out = plot_run(run, tmp_path / "curve.png")
    assert out == tmp_path / "curve.png"
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    only_train = write_run(tmp_path, [record(1, 3.3), record(2, 3.1)], name="no_val")
    assert plot_run(only_train, tmp_path / "train.png").stat().st_size > 0


def test_ema_smooths_from_the_first_finite_value_and_skips_nan():
    from rnnac.interfaces.plot import ema

    assert ema([1.0, 3.0, 3.0], 0.5) == [1.0, 2.0, 2.5]
    smoothed = ema([math.nan, 4.0, math.nan, 2.0], 0.75)
    assert math.isnan(smoothed[0]) and smoothed[1:] == [4.0, 4.0, 3.5]
    assert ema([5.0, 1.0], 0.0) == [5.0, 1.0]  # no smoothing: the raw values


def test_plot_draws_the_raw_curve_faint_and_labels_the_unit(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure

    saved = []
    monkeypatch.setattr(Figure, "savefig", lambda fig, out: saved.append(fig))
    run = write_run(tmp_path, [record(i, 3.0 + (i % 2)) for i in range(1, 41)])
    plot_run(run, tmp_path / "curve.png")
    (ax,) = saved[0].axes
    raw, smooth = ax.lines[:2]
    assert raw.get_alpha() < 0.5 and smooth.get_alpha() is None  # raw points faint, the EMA solid
    assert max(smooth.get_ydata()) - min(smooth.get_ydata()[5:]) < 1  # the 3/4 zig-zag averaged out
    assert ax.get_ylabel() == "loss (nats/char)"
    (run / "run-config.yaml").write_text("train:\n  loss: squared_error\n")
    plot_run(run, tmp_path / "curve.png")
    assert saved[1].axes[0].get_ylabel() == "squared error per character"
