"""What a hostile user can do to a training run, and what rnnac does about it: two runs into one
folder, a folder with someone else's files in it, planted symbolic links, stop signals, a
changed word list on resume, corrupt metrics, a model too big for the machine, a closed pipe,
a full disk and a killed process. Real processes and signals where the fault is about them."""

import json
import os
import resource
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import rnnac_command, write_run_config

from rnnac import errors
from rnnac.interfaces.cli import cli
from rnnac.storage.checkpoint import load_checkpoint, save_checkpoint
from rnnac.training import trainer as train_module
from rnnac.training.config import load_config
from rnnac.training.trainer import run

WORDS = ["apple", "apply", "ample", "maple", "amble", "apt", "pal", "lap", "leap", "plea", "peal", "pale"]
RUN_FILES = ("last.npz", "best.npz", "metrics.jsonl", "run-config.yaml")


@pytest.fixture
def config_file(tmp_path):
    return write_run_config(tmp_path, "\n".join(WORDS) + "\n")


def train_command(config_file, *args) -> list[str]:
    return rnnac_command() + ["train", str(config_file), "--quiet", *args]


def start_training(config_file, *args) -> subprocess.Popen:
    """A run that goes on until stopped, once it is past its first metrics line (step 10)."""
    proc = subprocess.Popen(train_command(config_file, "--set", "train.max_steps=100000000", "--set", "model.hidden_size=32",
                                          "--set", "train.eval_every=100000000", *args),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    metrics = config_file.parent / "out" / "metrics.jsonl"
    deadline = time.time() + 60
    while time.time() < deadline and not (metrics.exists() and metrics.stat().st_size > 0):
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.01)
    return proc


def one_error_line(stderr: str) -> str:
    assert stderr.startswith("Error: ") and stderr.count("\n") == 1, stderr
    return stderr


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


# --- 1. one run per folder ----------------------------------------------------------------------------


def test_a_second_run_into_a_busy_folder_is_refused_naming_the_first(config_file, tmp_path):
    first = start_training(config_file)
    try:
        for extra in ([], ["--force"]):
            second = subprocess.run(train_command(config_file, "--set", "train.max_steps=5", *extra),
                                    capture_output=True, text=True, timeout=60)
            assert second.returncode == 1
            assert f"in use by another rnnac run (pid {first.pid})" in one_error_line(second.stderr)
        assert first.poll() is None  # untouched: still training
    finally:
        first.send_signal(signal.SIGINT)
        first.communicate(timeout=60)
    assert first.returncode == 130
    assert load_checkpoint(tmp_path / "out" / "last.npz").meta["step"] >= 10


# --- 2 and 3. what counts as a run, and whose files are whose ----------------------------------------


def test_a_run_without_last_npz_is_still_a_run(config_file, tmp_path):
    run(load_config(config_file), quiet=True)
    out = tmp_path / "out"
    (out / "last.npz").unlink()
    before = snapshot(out)
    with pytest.raises(errors.RunExistsError, match="already holds a run .*best.npz.*no last.npz to resume.*--force"):
        run(load_config(config_file), quiet=True)
    assert snapshot(out) == before  # best.npz not overwritten, metrics.jsonl not appended to
    run(load_config(config_file), quiet=True, force=True)
    assert [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()] == [10, 20, 30]


def test_an_output_dir_beside_the_config_keeps_the_users_own_files(tmp_path):
    (tmp_path / "words.txt").write_text("\n".join(WORDS) + "\n")
    user_config = tmp_path / "config.yaml"  # the user's own config, in the folder the run goes to
    user_config.write_text("data: {path: words.txt}\nmodel: {hidden_size: 8}\ntrain: {batch_size: 4, max_steps: 10}\n"
                           "output: {dir: .}\n")
    (tmp_path / "notes.txt").write_text("mine\n")
    before = snapshot(tmp_path)
    run(load_config(user_config), quiet=True)  # the user's files are not a run
    assert load_config(tmp_path / "run-config.yaml") == load_config(user_config)
    with pytest.raises(errors.RunExistsError):
        run(load_config(user_config), quiet=True)
    run(load_config(user_config), quiet=True, force=True)  # --force deletes rnnac's files only
    after = snapshot(tmp_path)
    assert {name: after[name] for name in before} == before
    assert set(after) - set(before) == {*RUN_FILES, ".rnnac.lock"}


def test_force_validates_everything_before_deleting_anything(config_file, tmp_path):
    run(load_config(config_file), quiet=True)
    out = tmp_path / "out"
    before = snapshot(out)
    for override in ("data.path=missing.txt", "model.hidden_size=1000000000"):
        with pytest.raises(Exception) as info:
            run(load_config(config_file, [override]), quiet=True, force=True)
        assert "\n" not in str(info.value)
        assert snapshot(out) == before, override


# --- 4. SIGTERM and SIGHUP are Ctrl-C ------------------------------------------------------------------


@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_sigterm_and_sighup_save_and_say_how_to_resume(config_file, tmp_path, signum, code):
    proc = start_training(config_file)
    proc.send_signal(signum)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == code
    assert stdout == "" and "Traceback" not in stderr
    assert f"Stopped by {signal.Signals(signum).name} at step" in stderr and "--resume" in stderr.splitlines()[-1]
    assert load_checkpoint(tmp_path / "out" / "last.npz").meta["step"] >= 10


def test_a_signal_ignored_by_the_caller_stays_ignored(config_file):
    proc = subprocess.Popen(train_command(config_file, "--set", "train.max_steps=100000000", "--set", "train.eval_every=1000"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN))  # as nohup starts it
    metrics = config_file.parent / "out" / "metrics.jsonl"
    while not (metrics.exists() and metrics.stat().st_size > 0):
        time.sleep(0.01)
    proc.send_signal(signal.SIGHUP)
    time.sleep(0.2)
    assert proc.poll() is None
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=60)
    assert proc.returncode == 130


# --- 5. links planted in the run folder ---------------------------------------------------------------


def test_links_planted_at_temporary_names_are_not_followed(config_file, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    out = tmp_path / "out"
    out.mkdir()
    for name in (".config.yaml.tmp", ".metrics.jsonl.tmp", ".run-config.yaml.tmp", ".last.npz.tmp"):
        (out / name).symlink_to(victim)
    run(load_config(config_file, ["train.max_steps=20"]), quiet=True)
    run(load_config(config_file), resume=True, quiet=True)  # rewrites metrics.jsonl through a temporary file
    assert victim.read_text() == "precious\n"


@pytest.mark.parametrize("name, resume", [("metrics.jsonl", False), ("metrics.jsonl", True), ("best.npz", False),
                                          ("last.npz", True), ("run-config.yaml", False), (".rnnac.lock", False)])
def test_a_linked_run_file_is_refused(config_file, tmp_path, name, resume):
    if resume:
        run(load_config(config_file), quiet=True)
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    (out / name).unlink(missing_ok=True)
    (out / name).symlink_to(victim)
    with pytest.raises(errors.RunFolderError, match=f"{out / name} is a symbolic link"):
        run(load_config(config_file, ["train.max_steps=40"]), resume=resume, force=not resume, quiet=True)
    assert victim.read_text() == "precious\n" and (out / name).is_symlink()


# --- 8. what a resume may not change ------------------------------------------------------------------


@pytest.mark.parametrize("override, name", [("train.seed=4", "train.seed"), ("train.batch_size=5", "train.batch_size"),
                                            ("train.optimizer=sgd", "train.optimizer")])
def test_resume_refuses_a_changed_seed_batch_size_or_optimizer(config_file, override, name):
    run(load_config(config_file, ["train.max_steps=20"]), quiet=True)
    with pytest.raises(errors.ConfigError, match=f"{name} was .* in that run, now") as info:
        run(load_config(config_file, [override]), resume=True, quiet=True)
    assert "\n" not in str(info.value)


def test_resume_refuses_a_reordered_word_list(config_file, tmp_path):
    run(load_config(config_file, ["train.max_steps=20"]), quiet=True)
    (tmp_path / "words.txt").write_text("\n".join(reversed(WORDS)) + "\n")  # the same words and characters
    with pytest.raises(errors.ConfigError, match="the word list data.path .* has changed since that run"):
        run(load_config(config_file), resume=True, quiet=True)


def test_resume_may_change_the_stopping_rules_and_update_settings(config_file, tmp_path):
    run(load_config(config_file, ["train.max_steps=20"]), quiet=True)
    changes = ["train.max_steps=40", "train.eval_every=7", "train.eval_words=2", "output.checkpoint_every=3",
               "train.patience=50", "train.max_seconds=100", "train.target_loss=0.01", "train.max_epochs=1000",
               "train.learning_rate=0.02", "train.clip_norm=1", "train.optimizer=adamw", "train.weight_decay=0.01"]
    warnings = []
    assert run(load_config(config_file, changes), resume=True, quiet=True, warn=warnings.append).text.startswith(
        "stopped at step 40 (max_steps)")
    assert len(warnings) == 1 and "learning rate goes back up" in warnings[0]


def test_extending_a_finished_cosine_schedule_warns_that_its_learning_rate_restarts(config_file, capsys):
    run(load_config(config_file), quiet=True)  # cosine to 0 at step 30
    capsys.readouterr()
    run(load_config(config_file, ["train.max_steps=60"]), resume=True, quiet=True)
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("Warning: train.max_steps was 30, now 60: the cosine schedule is stretched")
    assert "goes back up from 0 to 0.005 at step 30" in line
    run(load_config(config_file, ["train.max_steps=70", "train.schedule=constant"]), resume=True, quiet=True)
    assert capsys.readouterr().err == ""


def test_a_run_from_before_these_checks_still_resumes_with_a_warning(config_file, tmp_path):
    run(load_config(config_file, ["train.max_steps=20", "train.schedule=constant"]), quiet=True)
    out = tmp_path / "out"
    for name in ("last.npz", "best.npz"):  # as an older rnnac wrote them: no digest of the word list
        ckpt = load_checkpoint(out / name)
        meta = {k: v for k, v in ckpt.meta.items() if k not in ("data_sha256", "format_version")}
        save_checkpoint(out / name, ckpt.params, meta, ckpt.optimizer_state)
    (out / "run-config.yaml").rename(out / "config.yaml")  # and its name for the config as run
    (out / ".rnnac.lock").unlink()
    warnings = []
    summary = run(load_config(config_file, ["train.schedule=constant"]), resume=True, quiet=True, warn=warnings.append)
    assert summary.text.startswith("stopped at step 30 (max_steps)")
    assert len(warnings) == 1 and "holds no digest of its word list" in warnings[0]
    assert "data_sha256" in load_checkpoint(out / "last.npz").meta
    assert (out / "config.yaml").exists()  # an earlier version's file: rnnac no longer writes or deletes it


# --- 10. memory ---------------------------------------------------------------------------------------


def test_a_model_too_big_for_the_machine_is_one_line_before_any_allocation(config_file):
    result = subprocess.run(train_command(config_file, "--set", "model.hidden_size=1000000"),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert one_error_line(result.stderr).startswith("Error: model.hidden_size 1,000,000 with train.batch_size 4 needs about")
    assert not (config_file.parent / "out").exists()


def test_a_model_too_big_for_the_process_limit_is_one_line(config_file):
    limit = 1 << 30
    result = subprocess.run(train_command(config_file, "--set", "model.hidden_size=10000", "--set", "train.max_steps=1"),
                            capture_output=True, text=True, timeout=60,
                            preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS, (limit, limit)))
    assert result.returncode == 1
    line = one_error_line(result.stderr)
    assert "model.hidden_size 10,000" in line and "(ulimit -v)" in line


def test_memory_error_in_any_command_is_one_line(config_file, monkeypatch):
    def exhausted(config, vocab=None):
        raise MemoryError("Unable to allocate 7.28 TiB for an array with shape (1000000, 1000000) and data type float64")

    monkeypatch.setattr(train_module, "load_data", exhausted)
    result = CliRunner().invoke(cli, ["train", str(config_file)])
    assert result.exit_code == 1
    assert result.stderr == "Error: out of memory: Unable to allocate 7.28 TiB for an array with shape (1000000, 1000000) " \
                            "and data type float64\n"


# --- 11. corrupt metrics ------------------------------------------------------------------------------


def test_resume_survives_a_corrupt_metrics_file(config_file, tmp_path):
    run(load_config(config_file, ["train.max_steps=20", "train.schedule=constant"]), quiet=True)
    metrics = tmp_path / "out" / "metrics.jsonl"
    garbage = [bytes(np.random.default_rng(0).integers(0, 256, 200, dtype=np.uint8)), b'{"step": "x"}', b"[1, 2]",
               b'{"step": true}', b'{"step": 1e400}', b"[" * 100000]
    metrics.write_bytes(b"\n".join(garbage[:3]) + b"\n" + metrics.read_bytes() + b"\n".join(garbage[3:]) + b"\n")
    warnings = []
    run(load_config(config_file, ["train.schedule=constant"]), resume=True, quiet=True, warn=warnings.append)
    assert [json.loads(line)["step"] for line in metrics.read_text().splitlines()] == [10, 20, 30]
    assert len(warnings) == 1 and "dropped" in warnings[0] and "unreadable lines" in warnings[0]


# --- 14. Ctrl-C anywhere, a reader that leaves --------------------------------------------------------


def wait_until_asleep_in_a_read(pid: int) -> None:
    """Until the process sleeps in the read of a pipe. A signal that comes a moment before that read
    starts is noted by Python's C handler but never interrupts the read: a race in any Python
    program (one more Ctrl-C ends it), not what this test is after."""
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            wchan = Path(f"/proc/{pid}/wchan").read_text()
        except OSError:
            break
        if "pipe" in wchan:
            return
        if wchan in ("", "0"):  # a kernel that does not say: give the read time to start
            break
        time.sleep(0.002)
    time.sleep(0.2)


@pytest.mark.parametrize("presses", [1, 2])
def test_ctrl_c_while_the_word_list_loads_exits_130_quietly(tmp_path, presses):
    fifo = tmp_path / "words.txt"
    os.mkfifo(fifo)  # a list that never arrives: the run waits in load_data
    (tmp_path / "run.yaml").write_text("data: {path: words.txt}\noutput: {dir: out}\n")
    proc = subprocess.Popen(train_command(tmp_path / "run.yaml"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while True:  # opening the write end succeeds once the run has opened the read end
        try:
            writer = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            break
        except OSError:
            assert time.time() < deadline and proc.poll() is None
            time.sleep(0.005)
    wait_until_asleep_in_a_read(proc.pid)
    for _ in range(presses):
        proc.send_signal(signal.SIGINT)
        time.sleep(0.001)
    stdout, stderr = proc.communicate(timeout=60)
    os.close(writer)
    assert proc.returncode == 130
    assert stdout == "" and stderr.count("\n") <= 1 and "Traceback" not in stderr and "Aborted" not in stderr


def caught_signals(pid: int) -> set[int]:
    """The signals a process has handlers for, from /proc (SigCgt, a mask with bit n - 1 for signal n)."""
    status = Path(f"/proc/{pid}/status").read_text()
    mask = int(status.split("SigCgt:")[1].split()[0], 16)
    return {n for n in range(1, 65) if mask >> (n - 1) & 1}


def freeze(pid: int) -> None:
    """SIGSTOP, and wait until the process is stopped: until SIGCONT it runs no code and takes no signal."""
    os.kill(pid, signal.SIGSTOP)
    while Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "T":
        time.sleep(0.0001)


def run_until_it_saves_after_the_first_ctrl_c(pid: int, out: Path) -> bool:
    """Resume the frozen run a moment at a time until, frozen again, it is writing last.npz (the
    first Ctrl-C was taken, the update under way ended, the loop still runs); False if it got out
    of the training loop first (SIGTERM is caught only there)."""
    deadline = time.time() + 60
    while time.time() < deadline:
        os.kill(pid, signal.SIGCONT)
        time.sleep(0.0002)  # a moment to run: stopped again at once, a run may not be scheduled at all
        freeze(pid)
        if any(out.glob(".last.npz.*.tmp")):
            return True
        if signal.SIGTERM not in caught_signals(pid):
            return False
    raise AssertionError("the run neither saved nor left its loop within 60 s")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads process states from /proc")
def test_a_second_ctrl_c_in_the_training_loop_exits_130_at_once(config_file):
    """The second Ctrl-C comes while the run saves after the first one, however loaded the machine:
    the run is frozen (SIGSTOP) there, so no press lands after the loop, where Python's own
    handling (at exit: killed by SIGINT, -2) would take it. Should the run leave the loop within
    one moment's resumption, no second press is sent and the first one's exit is checked."""
    proc = start_training(config_file, "--set", "model.hidden_size=256")
    try:
        freeze(proc.pid)
        assert signal.SIGTERM in caught_signals(proc.pid)  # the training loop's handlers are in place
        proc.send_signal(signal.SIGINT)  # taken when the run resumes
        if run_until_it_saves_after_the_first_ctrl_c(proc.pid, config_file.parent / "out"):
            proc.send_signal(signal.SIGINT)  # taken as the run resumes, before it leaves the loop
        os.kill(proc.pid, signal.SIGCONT)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:  # a failed step above: no frozen run is left behind
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130
    assert stdout == "" and "Traceback" not in stderr and "Aborted" not in stderr


@pytest.mark.parametrize("args", [["info"], ["--help"], ["train", "--help"]])
def test_a_reader_that_leaves_the_pipe_ends_the_command_quietly(args):
    read_end, write_end = os.pipe()
    os.close(read_end)  # as `| head -1` does once it has its line
    proc = subprocess.run(rnnac_command() + args, stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=60)
    os.close(write_end)
    assert (proc.returncode, proc.stderr) == (0, "")


# --- 15. what a killed run or a full disk leaves behind -----------------------------------------------


def test_a_killed_run_leaves_its_lock_and_temporary_files_to_the_next(config_file, tmp_path):
    proc = start_training(config_file, "--set", "output.checkpoint_every=5")
    proc.kill()
    proc.communicate(timeout=60)
    out = tmp_path / "out"
    left = [".last.npz.k3j4x9.tmp", ".best.npz.a1.tmp", ".run-config.yaml.q.tmp", ".metrics.jsonl.tmp", ".config.yaml.tmp"]
    for name in left:  # what SIGKILL mid-save (and earlier versions' fixed names) leave
        (out / name).write_bytes(b"")
    (out / ".notes.tmp").write_text("mine\n")
    step = load_checkpoint(out / "last.npz").meta["step"]
    resumed = subprocess.run(train_command(config_file, "--set", f"train.max_steps={step + 5}", "--set", "model.hidden_size=32",
                                           "--set", "train.eval_every=100000000", "--resume"),
                             capture_output=True, text=True, timeout=60)
    assert resumed.returncode == 0, resumed.stderr
    assert not [name for name in left if (out / name).exists()]
    assert (out / ".notes.tmp").read_text() == "mine\n"


def test_a_full_disk_leaves_no_temporary_file(config_file, tmp_path):
    limit = 200  # bytes per file: the lock's pid fits, the config as run does not
    result = subprocess.run(train_command(config_file), capture_output=True, text=True, timeout=60,
                            preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit)))
    assert result.returncode == 1
    assert one_error_line(result.stderr) == f"Error: {tmp_path / 'out' / 'run-config.yaml'}: File too large\n"
    assert [p.name for p in (tmp_path / "out").iterdir() if p.name.endswith(".tmp")] == []
