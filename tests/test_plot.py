import json
import math
import sys

import pytest

from rnnac.errors import DataError, RnnacError
from rnnac.plot import plot_run, read_metrics


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
