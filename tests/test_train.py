"""Training runs end to end: stopping rules, checkpoints between validations, the validation subset,
exact resume, Ctrl-C, the NaN guard, every optimizer."""

import json
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import rnnac_command, write_run_config

import rnnac
from rnnac.engine.model import RNN
from rnnac.engine.vocab import Vocab
from rnnac.errors import RnnacError, TrainingDiverged, TrainingInterrupted
from rnnac.storage.checkpoint import load_checkpoint
from rnnac.storage.wordlist import read_word_list, split_words
from rnnac.training import trainer as train_module
from rnnac.training.config import load_config
from rnnac.training.trainer import run
from columns import known_of

ROOT = Path(__file__).resolve().parent.parent
WORDS = "\n".join(["apple", "apply", "ample", "maple", "amble", "apt", "pal", "lap", "leap", "plea", "peal", "pale"]
                  * 3)


@pytest.fixture
def config_file(tmp_path):
    return write_run_config(tmp_path, WORDS + "\n")


def test_a_run_writes_checkpoints_metrics_and_the_config(config_file, tmp_path):
    summary = run(load_config(config_file), quiet=True)
    out = tmp_path / "out"
    assert "stopped at step 30 (max_steps)" in summary.text
    last = load_checkpoint(out / "last.npz")
    assert last.meta["step"] == 30 and last.meta["hidden_size"] == 8
    assert last.meta["chars"] == sorted(set(WORDS) - {"\n"})
    best = load_checkpoint(out / "best.npz")
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [10, 20, 30]
    assert all(r["val_loss"] is not None for r in records)
    assert best.meta["best_val_loss"] == pytest.approx(min(r["val_loss"] for r in records))
    assert set(records[0]) == {"step", "epoch", "train_loss", "val_loss", "lr", "grad_norm", "chars_per_sec", "elapsed"}
    assert load_config(out / "run-config.yaml").to_dict()["train"] == load_config(config_file).to_dict()["train"]


def test_a_second_run_does_not_overwrite_the_first(config_file):
    run(load_config(config_file), quiet=True)
    with pytest.raises(RnnacError, match="already holds a run"):
        run(load_config(config_file), quiet=True)
    run(load_config(config_file), quiet=True, force=True)


def interrupt_at(monkeypatch, n_batches):
    """Deliver a real SIGINT to this process while the n-th batch is being built."""
    real = train_module.make_batch
    calls = {"n": 0}

    def make_batch(words, vocab):
        calls["n"] += 1
        if calls["n"] == n_batches:
            os.kill(os.getpid(), signal.SIGINT)
        return real(words, vocab)

    monkeypatch.setattr(train_module, "make_batch", make_batch)


@pytest.mark.parametrize("weighting, average, dropout", [("uniform", None, 0), ("sqrt", None, 0), ("uniform", 0.9, 0.2)])
def test_interrupted_and_resumed_equals_straight_through(config_file, tmp_path, monkeypatch, weighting, average, dropout):
    tsv = tmp_path / "words.tsv"
    tsv.write_text("".join(f"{w}\t{i + 1}\n" for i, w in enumerate(sorted(set(WORDS.split())))))
    overrides = [f"data.path={tsv}", f"data.weighting={weighting}", "train.max_steps=37", f"train.average={average or 'null'}",
                 f"train.dropout={dropout}"]
    straight = load_config(config_file, overrides + [f"output.dir={tmp_path / 'a'}"])
    run(straight, quiet=True)

    resumed = load_config(config_file, overrides + [f"output.dir={tmp_path / 'b'}"])
    interrupt_at(monkeypatch, 13)
    with pytest.raises(TrainingInterrupted) as info:
        run(resumed, quiet=True)
    assert info.value.step == 12  # the first make_batch call built the validation batch
    assert load_checkpoint(tmp_path / "b" / "last.npz").meta["step"] == 12
    monkeypatch.undo()
    run(resumed, resume=True, quiet=True)

    a, b = load_checkpoint(tmp_path / "a" / "last.npz"), load_checkpoint(tmp_path / "b" / "last.npz")
    for name in a.params:
        assert np.array_equal(a.params[name], b.params[name]), name  # bit-identical
    assert set(a.optimizer_state) == set(b.optimizer_state)
    assert any(name.startswith("avg.") for name in a.optimizer_state) == (average is not None)
    for name in a.optimizer_state:
        assert np.array_equal(a.optimizer_state[name], b.optimizer_state[name]), name
    assert a.meta["best_val_loss"] == b.meta["best_val_loss"]
    def steps(run_dir):
        return [json.loads(line)["step"] for line in (tmp_path / run_dir / "metrics.jsonl").read_text().splitlines()]

    assert steps("a") == steps("b")  # metrics past the checkpoint were not duplicated


def test_resuming_a_finished_run_takes_no_step(config_file, tmp_path):
    run(load_config(config_file), quiet=True)
    before = (tmp_path / "out" / "last.npz").read_bytes()
    summary = run(load_config(config_file), resume=True, quiet=True)
    assert summary.text.startswith("nothing to resume") and "step 30 (max_steps)" in summary.text
    assert (tmp_path / "out" / "last.npz").read_bytes() == before


def test_resume_survives_a_metrics_line_torn_by_a_kill(config_file, tmp_path):
    run(load_config(config_file, ["train.max_steps=20"]), quiet=True)
    metrics = tmp_path / "out" / "metrics.jsonl"
    metrics.write_text(metrics.read_text() + '{"step": 2')  # what a SIGKILL mid-write leaves
    run(load_config(config_file, ["train.max_steps=30"]), resume=True, quiet=True)
    assert [json.loads(line)["step"] for line in metrics.read_text().splitlines()] == [10, 20, 30]


def test_resume_refuses_a_different_model(config_file, tmp_path):
    run(load_config(config_file), quiet=True)
    with pytest.raises(RnnacError, match="model.hidden_size"):
        run(load_config(config_file, ["model.hidden_size=9"]), resume=True, quiet=True)


def test_a_run_saved_before_accent_folding_existed_resumes_without_it(config_file, tmp_path):
    from rnnac.storage.checkpoint import save_checkpoint

    run(load_config(config_file, ["train.max_steps=20"]), quiet=True)
    last = load_checkpoint(tmp_path / "out" / "last.npz")
    del last.meta["config"]["data"]["fold_accents"]  # as an older rnnac saved it
    save_checkpoint(tmp_path / "out" / "last.npz", last.params, last.meta, last.optimizer_state, last.lexicon)
    with pytest.raises(RnnacError, match="data.fold_accents was false in that run, now true"):
        run(load_config(config_file, ["train.max_steps=30"]), resume=True, quiet=True)
    assert "step 30" in run(load_config(config_file, ["train.max_steps=30", "data.fold_accents=false"]), resume=True, quiet=True).text


def test_resume_without_a_checkpoint_is_an_error(config_file):
    with pytest.raises(RnnacError, match="does not exist"):
        run(load_config(config_file), resume=True, quiet=True)


def test_a_diverging_run_stops_and_keeps_the_last_good_checkpoint(config_file, tmp_path):
    cfg = load_config(config_file, ["train.optimizer=sgd", "train.learning_rate=1e6", "train.clip_norm=null",
                                    "model.activation=relu", "model.dtype=float32",
                                    "train.eval_every=1", "train.max_steps=100"])
    with pytest.raises(TrainingDiverged, match="learning_rate") as info:
        run(cfg, quiet=True)
    assert "last good checkpoint" in str(info.value)
    last = load_checkpoint(tmp_path / "out" / "last.npz")
    assert all(np.isfinite(p).all() for p in last.params.values())
    assert last.meta["step"] < 100


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adagrad", "rmsprop", "adam"])
def test_every_optimizer_lowers_the_loss(config_file, optimizer):
    lr = {"sgd": 0.5, "momentum": 0.1, "adagrad": 0.1, "rmsprop": 0.01, "adam": 0.02}[optimizer]
    cfg = load_config(config_file, [f"train.optimizer={optimizer}", f"train.learning_rate={lr}",
                                    "train.max_steps=150", "train.eval_every=150", "train.schedule=constant",
                                    "data.val_fraction=0"])
    run(cfg, quiet=True)
    final = load_checkpoint(Path(cfg.output.dir) / "last.npz")
    assert final.meta["train_loss_ema"] < np.log(len(final.meta["chars"]) + 1) - 0.7


@pytest.mark.parametrize("rule, override, reason", [
    ("target_loss", "train.target_loss=2.5", "target_loss"),
    ("max_epochs", "train.max_epochs=2", "max_epochs"),
    ("patience", "train.patience=1", "patience"),
])
def test_stop_rules(config_file, rule, override, reason):
    cfg = load_config(config_file, [override, "train.max_steps=2000", "train.eval_every=5", "train.learning_rate=0.05"])
    summary = run(cfg, quiet=True)
    assert f"({reason})" in summary.text
    meta = load_checkpoint(Path(cfg.output.dir) / "last.npz").meta
    steps = meta["step"]
    assert steps < 2000
    if rule == "max_epochs":  # 12 distinct words, 3 held out, 9 in batches of 4: 3 batches an epoch
        assert steps == 6 and meta["epoch"] == 2
    if rule == "target_loss":
        assert meta["train_loss_ema"] < 2.5
    if rule == "patience":  # stopped at the first validation that did not improve on the best
        assert meta["stale_validations"] == 1 and meta["best_step"] == steps - 5


def test_ctrl_c_in_a_real_process_saves_and_can_resume(config_file, tmp_path):
    cmd = rnnac_command() + ["train", str(config_file), "--set", "train.max_steps=1000000",
                             "--set", "model.hidden_size=64", "--set", "train.eval_every=100000"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    metrics = tmp_path / "out" / "metrics.jsonl"
    deadline = time.time() + 60
    while time.time() < deadline and not (metrics.exists() and metrics.stat().st_size > 0):
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert stdout == ""
    step = load_checkpoint(tmp_path / "out" / "last.npz").meta["step"]
    assert step >= 10
    assert stderr.splitlines()[-1] == (f"Interrupted at step {step}; saved {tmp_path / 'out' / 'last.npz'}. "
                                       f"Resume with: rnnac train --resume {tmp_path / 'out'}")
    assert "Traceback" not in stderr
    no_best = subprocess.run(rnnac_command() + ["complete", "-c", str(tmp_path / "out"), "ap"], capture_output=True, text=True,
                             timeout=60)  # Ctrl-C came before the first validation: last.npz only
    assert no_best.returncode == 1 and no_best.stdout == "" and f"-c {tmp_path / 'out' / 'last.npz'}" in no_best.stderr
    again = shlex.split(stderr.splitlines()[-1].partition("Resume with: ")[2])[1:]  # the command it gave, as given
    resumed = subprocess.run(rnnac_command() + again + ["--set", f"train.max_steps={step + 5}", "--quiet"],
                             capture_output=True, text=True, timeout=60)
    assert resumed.returncode == 0, resumed.stderr
    assert f"stopped at step {step + 5}" in resumed.stdout
    assert load_checkpoint(tmp_path / "out" / "last.npz").meta["config"]["model"]["hidden_size"] == 64  # the run's own


def test_resume_a_run_folder_with_its_own_settings(config_file, tmp_path, monkeypatch):
    """`rnnac train --resume RUN`: the settings saved in RUN, --set on top, continuing exactly."""
    from click.testing import CliRunner

    from rnnac.interfaces import cli

    def train(*args):
        return CliRunner().invoke(cli.cli, ["train", *args])

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(cli, "_ignore_stop_signals", lambda: None)  # what the CLI does on its way out, not here
    started = ["--set", "train.max_steps=37", "--set", "train.schedule=constant", "--set", "model.hidden_size=6"]
    assert train(str(config_file), *started, "--set", "output.dir=a", "-q").exit_code == 0  # straight through
    real_make_batch = train_module.make_batch
    interrupt_at(monkeypatch, 13)
    first = train(str(config_file), *started, "--set", "output.dir=b", "-q")
    assert first.exit_code == 130 and first.stdout == ""
    assert first.stderr == (f"Interrupted at step 12; saved {tmp_path / 'b' / 'last.npz'}. Resume with: rnnac train --resume b\n")
    monkeypatch.setattr(train_module, "make_batch", real_make_batch)

    resumed = train("--resume", "b")
    assert resumed.exit_code == 0, resumed.stderr
    assert resumed.stderr.splitlines()[0] == "the settings of the run in b (its run-config.yaml)"
    assert f"resuming {tmp_path / 'b' / 'last.npz'} at step 12" in resumed.stderr.splitlines()
    assert resumed.stdout.startswith("stopped at step 37 (max_steps)")
    a, b = load_checkpoint(tmp_path / "a" / "last.npz"), load_checkpoint(tmp_path / "b" / "last.npz")
    assert b.meta["hidden_size"] == 6 and all(np.array_equal(a.params[name], b.params[name]) for name in a.params)

    longer = train("--resume", "b", "--set", "train.max_steps=45", "-q")  # --set applies on top, and is kept
    assert longer.exit_code == 0 and longer.stdout.startswith("stopped at step 45 (max_steps)")
    assert load_config(tmp_path / "b" / "run-config.yaml").train.max_steps == 45
    finished = train("--resume", "b", "-q")
    assert finished.exit_code == 0 and finished.stdout.startswith(f"nothing to resume: {tmp_path / 'b' / 'last.npz'} "
                                                                  "already stopped at step 45 (max_steps)")
    refused = train("--resume", "b", "--set", "model.hidden_size=9")  # what a resume may not change, as ever
    assert refused.exit_code == 1 and refused.stderr.splitlines()[-1].startswith(
        f"Error: cannot resume {tmp_path / 'b' / 'last.npz'}: model.hidden_size was 6 in that run, now 9")


def test_the_shipped_tiny_config_trains_through_the_installed_script(tmp_path):
    config = ROOT / "configs" / "tiny.yaml"
    command = rnnac_command() + ["train", str(config), "--set", f"output.dir={tmp_path / 'tiny'}"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("stopped at step 60 (max_steps)")
    assert "names.txt: 300 words" in result.stderr
    assert load_checkpoint(tmp_path / "tiny" / "best.npz").meta["best_val_loss"] < np.log(27)


def test_config_errors_are_one_line_and_exit_1(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: {path: x.txt}\ntrain: {learning_rat: 0.1}\n")
    result = subprocess.run(rnnac_command() + ["train", str(bad)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith("Error: unknown key 'train.learning_rat'")
    assert "did you mean 'train.learning_rate'" in result.stderr
    assert result.stderr.count("\n") == 1


# ---- train.max_seconds, output.checkpoint_every, train.eval_words ----


def read_metrics(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_max_seconds_stops_a_run_on_time(config_file, tmp_path):
    # 50,000 steps take ~8 s here (~160 us a step); the clock must stop the run long before.
    cfg = load_config(config_file, ["train.max_steps=50000", "train.max_seconds=0.3", "train.eval_every=1000000"])
    started = time.perf_counter()
    summary = run(cfg, quiet=True)
    wall = time.perf_counter() - started
    assert "(max_seconds)" in summary.text
    meta = load_checkpoint(tmp_path / "out" / "last.npz").meta
    assert 0 < meta["step"] < 50000
    assert 0.3 <= meta["elapsed"] < 2.0  # stopped by the first update past the limit
    assert wall < 5.0
    assert read_metrics(tmp_path / "out")[-1]["step"] == meta["step"]


def test_checkpoint_every_saves_last_between_validations(config_file, tmp_path):
    """With no validation before the end, last.npz must still appear every 30 updates while the run goes."""
    last = tmp_path / "out" / "last.npz"
    seen, errors, done = [], [], threading.Event()

    def watch():  # records each step last.npz holds while the run is going
        try:
            while not done.is_set():
                if last.exists():
                    step = load_checkpoint(last).meta["step"]
                    if not seen or seen[-1] != step:
                        seen.append(step)
                time.sleep(0.001)
        except Exception as e:  # surfaced in the test below, not lost in the thread
            errors.append(e)

    cfg = load_config(config_file, ["train.max_steps=600", "train.eval_every=1000000", "output.checkpoint_every=30"])
    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        run(cfg, quiet=True)
    finally:
        done.set()
        watcher.join()
    assert not errors, errors
    final = load_checkpoint(last).meta["step"]
    assert final == 600
    during = [step for step in seen if step != final]
    assert during, "last.npz was only written when the run ended"
    assert all(step % 30 == 0 for step in during), during
    assert [r["step"] for r in read_metrics(tmp_path / "out") if r["val_loss"] is not None] == [600]


def validation_words(config) -> list[str]:
    """The held-out words of a run, in word-list order: the seeded split of rnnac.storage.wordlist."""
    words = read_word_list(config.data.path).words
    _, val_idx = split_words(len(words), config.data.val_fraction, config.train.seed)
    return [words[i] for i in val_idx]


def loss_by_hand(checkpoint, words: list[str]) -> float:
    """Mean nats per character (end included) over `words`, one RNN.step at a time."""
    vocab = Vocab(checkpoint.meta["chars"])
    model = RNN(checkpoint.params, checkpoint.meta["activation"])
    total, n = 0.0, 0
    for word in words:
        a, token = model.initial_state(1), 0
        for target in vocab.encode(word) + [0]:
            a, logp = model.step(a, np.array([token]))
            total -= logp[0, target]
            n += 1
            token = target
    return total / n


def test_eval_words_validates_on_the_first_words_only(config_file, tmp_path):
    logged = {}
    for eval_words in (2, None):
        out = tmp_path / f"eval_{eval_words}"
        cfg = load_config(config_file, [f"train.eval_words={'null' if eval_words is None else eval_words}",
                                        "train.max_steps=20", "train.eval_every=20", f"output.dir={out}"])
        val = validation_words(cfg)
        assert val == ["ample", "lap", "pale"]  # 3 of the 12 words, seed 3; every letter seen in training
        run(cfg, quiet=True)
        [record] = [r for r in read_metrics(out) if r["val_loss"] is not None]
        assert record["step"] == 20
        expected = loss_by_hand(load_checkpoint(out / "last.npz"), val[:eval_words])
        assert record["val_loss"] == pytest.approx(expected, rel=1e-10)
        logged[eval_words] = record["val_loss"]
    assert logged[2] != pytest.approx(logged[None], rel=1e-6)


def test_python_dash_m_rnnac_runs_the_cli():
    result = subprocess.run([sys.executable, "-m", "rnnac", "--version"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"rnnac, version {rnnac.__version__}\n"


def test_checkpoints_carry_the_list_and_the_fitted_mixture_weight(config_file, tmp_path):
    from rnnac.inference.completer import Completer
    from rnnac.inference.mixture import fit_for_list, rnn_word_logprobs
    from rnnac.training.data import load_data

    config = load_config(config_file)
    run(config, quiet=True)
    data = load_data(config)
    best, last = load_checkpoint(tmp_path / "out" / "best.npz"), load_checkpoint(tmp_path / "out" / "last.npz")
    assert best.lexicon.words == sorted(data.words) and len(best.lexicon.words) == 12
    held_out = {w for w, h in zip(best.lexicon.words, best.lexicon.held_out) if h}
    assert held_out == {w for w, h in zip(data.words, data.held_out) if h} and len(held_out) == 3
    np.testing.assert_array_equal(best.lexicon.counts, 3.0)  # each word three times in the plain list
    model = RNN(best.params, "tanh")
    expected = fit_for_list(model, data.vocab, data.words, data.counts, data.held_out).mixture_lambda
    assert best.meta["mixture_lambda"] == last.meta["mixture_lambda"] == pytest.approx(expected, abs=1e-12)
    assert 0 < expected < 1
    completer = Completer.load(tmp_path / "out" / "best.npz")
    assert completer.mixture_lambda == best.meta["mixture_lambda"]
    assert completer.lexicon.n_words == 12  # held-out words complete too
    assert known_of(completer.complete("ap"))[0]
    # Each word's log P_rnn under the best parameters, beside them only: last.npz holds the last step's.
    words = list(best.lexicon.words)
    np.testing.assert_allclose(best.lexicon.rnn_logp, rnn_word_logprobs(model, data.vocab, words), rtol=1e-6)
    assert last.lexicon.rnn_logp is None and completer.lexicon.has_word_logp


def test_an_interrupted_run_has_a_lexicon_but_no_fitted_weight(config_file, tmp_path, monkeypatch):
    interrupt_at(monkeypatch, 13)
    with pytest.raises(TrainingInterrupted):
        run(load_config(config_file), quiet=True)
    last = load_checkpoint(tmp_path / "out" / "last.npz")
    assert "mixture_lambda" not in last.meta and len(last.lexicon.words) == 12


# --- starting from a trained model (train.init_from), the summary, the log without a terminal --


def test_init_from_keeps_the_models_size_characters_and_weights(config_file, tmp_path):
    run(load_config(config_file), quiet=True)
    first = load_checkpoint(tmp_path / "out" / "best.npz")
    (tmp_path / "more.txt").write_text("pale\nplate\nmap\n")
    config = load_config(config_file, [f"data.path={tmp_path / 'more.txt'}", "model.hidden_size=64", "model.dtype=float32",
                                       f"train.init_from={tmp_path / 'out'}", f"output.dir={tmp_path / 'tuned'}"])
    lines = []
    started, vocab, params = train_module.starting_point(config, lines.append)
    assert (started.model.hidden_size, started.model.dtype) == (8, "float64")  # the checkpoint's, not the config's
    assert vocab.chars == first.meta["chars"] and lines == [
        f"starting from {tmp_path / 'out' / 'best.npz'}: its model (H=8, tanh, float64), its 8 characters "
        "and its folding (data.lowercase true, data.fold_accents true)"]
    trainer = train_module.Trainer(started, train_module.load_data(started, vocab), params)
    for name in first.params:
        np.testing.assert_array_equal(trainer.model.params[name], first.params[name])
    summary = run(config, quiet=True)
    assert summary.record["step"] == 30 and load_checkpoint(tmp_path / "tuned" / "best.npz").meta["chars"] == vocab.chars
    assert run(config, quiet=True, resume=True).text.startswith("nothing to resume")  # the same settings again


def test_init_from_refuses_a_list_with_characters_the_model_lacks(config_file, tmp_path):
    run(load_config(config_file), quiet=True)
    (tmp_path / "new.txt").write_text("apple\nzebra\ncafé\nmaple\n")
    config = load_config(config_file, [f"data.path={tmp_path / 'new.txt'}", f"train.init_from={tmp_path / 'out' / 'best.npz'}",
                                       f"output.dir={tmp_path / 'tuned'}"])
    with pytest.raises(RnnacError) as e:
        run(config, quiet=True)
    assert str(e.value) == (f"{tmp_path / 'new.txt'}: 2 of 4 words hold characters the model to start from does not know: "
                            "'c', 'f', 'r', 'z'; leave those words out with data.allowed_chars "  # café read as cafe
                            "(the model knows 'abelmpty'), or train from scratch")
    assert not (tmp_path / "tuned").exists()


def test_the_summary_record_and_the_log_without_a_terminal(config_file, tmp_path, monkeypatch):
    lines = []
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False, raising=False)
    summary = run(load_config(config_file), log=lines.append)
    assert summary.text.startswith("stopped at step 30 (max_steps)")
    record = json.loads(json.dumps(summary.record))
    assert record["run_dir"] == str(tmp_path / "out") and record["stop_reason"] == "max_steps" and record["step"] == 30
    assert record["best"] == str(tmp_path / "out" / "best.npz") and 0 <= record["mixture_lambda"] <= 1
    validations = [line for line in lines if line.startswith("step ")]
    assert [line.split(":")[0] for line in validations] == ["step 10/30", "step 20/30", "step 30/30"]
    assert all(" val loss " in line and "chars/s" in line and line.endswith(" s") for line in validations)
    assert f"run folder: {tmp_path / 'out'}" in lines


def test_a_resume_accepts_a_checkpoint_from_before_a_setting_existed(config_file, tmp_path):
    run(load_config(config_file, ["train.max_steps=10"]), quiet=True)
    last = load_checkpoint(tmp_path / "out" / "last.npz")
    del last.meta["config"]["data"]["format"]  # as rnnac 0.1 wrote it
    from rnnac.storage.checkpoint import save_checkpoint

    save_checkpoint(tmp_path / "out" / "last.npz", last.params, last.meta, last.optimizer_state, last.lexicon)
    assert "stopped at step 20" in run(load_config(config_file, ["train.max_steps=20"]), resume=True, quiet=True).text


def test_with_average_validation_scores_and_best_keeps_the_averaged_parameters(config_file, tmp_path):
    from rnnac.engine.bptt import Engine
    from rnnac.training.data import load_data
    from rnnac.training.trainer import validation_batches, validation_loss

    config = load_config(config_file, ["train.average=0.9", "train.eval_every=30"])  # one validation, at the end
    run(config, quiet=True)
    best, last = load_checkpoint(tmp_path / "out" / "best.npz"), load_checkpoint(tmp_path / "out" / "last.npz")
    t = int(last.optimizer_state["t"])
    assert t == 30 == best.meta["best_step"]
    for name in best.params:  # the bias-corrected moving average, not the last parameters
        np.testing.assert_allclose(best.params[name], last.optimizer_state[f"avg.{name}"] / (1 - 0.9**t), rtol=1e-12)
        assert not np.allclose(best.params[name], last.params[name])
    data = load_data(config)
    batches = validation_batches(data.val_words, data.vocab, None)
    assert best.meta["best_val_loss"] == pytest.approx(validation_loss(Engine(RNN(best.params, "tanh")), batches,
                                                                       "cross_entropy"), rel=1e-12)


def test_dropout_changes_training_and_is_seeded(config_file, tmp_path):
    def trained(dropout, seed, name):
        run(load_config(config_file, [f"train.dropout={dropout}", f"train.seed={seed}", f"output.dir={tmp_path / name}"]),
            quiet=True)
        return load_checkpoint(tmp_path / name / "last.npz").params["W"]

    plain, dropped, again = trained(0, 3, "a"), trained(0.5, 3, "b"), trained(0.5, 3, "c")
    assert not np.allclose(plain, dropped) and np.array_equal(dropped, again)


def test_each_update_draws_its_own_dropout_mask_and_a_resumed_run_the_same_ones(tmp_path, monkeypatch):
    """The masks come from (seed, step): a new one every update, and the same ones after a resume."""
    write_run_config(tmp_path, "\n".join(["apple", "apply", "ample", "maple", "amble", "table"] * 4) + "\n")
    masks = []
    real = train_module.dropout_mask

    def dropout_mask(*args, **kwargs):
        masks.append(real(*args, **kwargs))
        return masks[-1]

    monkeypatch.setattr(train_module, "dropout_mask", dropout_mask)
    overrides = ["train.dropout=0.5", "train.max_steps=20"]
    run(load_config(tmp_path / "run.yaml", overrides + [f"output.dir={tmp_path / 'a'}"]), quiet=True)
    straight, masks[:] = list(masks), []
    assert len(straight) == 20 and len({m.shape for m in straight}) == 1  # words of one length: one batch shape
    for step in range(19):
        assert not np.array_equal(straight[step], straight[step + 1]), step

    resumed = load_config(tmp_path / "run.yaml", overrides + [f"output.dir={tmp_path / 'b'}"])
    interrupt_at(monkeypatch, 8)  # the first make_batch call builds the validation batch
    monkeypatch.setattr(train_module, "dropout_mask", dropout_mask)
    with pytest.raises(TrainingInterrupted):
        run(resumed, quiet=True)
    run(resumed, resume=True, quiet=True)
    assert len(masks) == 20
    for step in range(20):
        assert np.array_equal(masks[step], straight[step]), step
