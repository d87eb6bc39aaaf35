"""Bad input, round three: what slipped through the earlier batteries. A config written over a
link, options at the limits of their types, closed standard streams, complex YAML keys, JSON
nested too deep, weights that overflow, a meta `info` read more kindly than `complete`, a sample
that built every word before printing one, an empty exclusion list, two stop signals, and a FIFO
where a checkpoint should be. Real processes where the fault is about them; each under an
address-space limit, so that a command that tries to allocate a fortune fails fast instead of
taking the machine with it."""

import os
import resource
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import rnnac_command, tiny_model, write_run_config
from test_checkpoint import rewrite

import rnnac
from rnnac.errors import RnnacError
from rnnac.inference.completer import Completer
from rnnac.interfaces.cli import cli
from rnnac.storage.checkpoint import load_checkpoint, save_checkpoint
from rnnac.storage.lexicon import LexiconData

VOCAB = rnnac.Vocab("abc")
GiB = 2**30
LIMIT = 3 * GiB  # the address space each command gets here: far above what a sound query needs
WORDS = ["ab", "abc", "ba", "cab", "acab", "bca"]


def limited():
    resource.setrlimit(resource.RLIMIT_AS, (LIMIT, LIMIT))


def rnnac_run(*args, input=None, timeout=60, shell_redirect="", cwd=None) -> subprocess.CompletedProcess:
    """`rnnac ARGS` in a real process under LIMIT; `shell_redirect` (say `<&-`) closes a standard
    stream the way a shell does, so the process starts with that descriptor closed."""
    if shell_redirect:
        command = " ".join(f"'{a}'" for a in [*rnnac_command(), *map(str, args)]) + " " + shell_redirect
        return subprocess.run(["bash", "-c", command], capture_output="2>&-" not in shell_redirect,
                              stdout=subprocess.PIPE if "2>&-" in shell_redirect else None, text=True,
                              timeout=timeout, preexec_fn=limited, cwd=cwd, check=False)
    return subprocess.run([*rnnac_command(), *map(str, args)], input=input, stdin=None if input else subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=timeout, preexec_fn=limited, cwd=cwd, check=False)


def one_error_line(stderr: str) -> str:
    assert stderr.startswith("Error: ") and stderr.count("\n") == 1 and "Traceback" not in stderr, stderr
    return stderr


def usage_error(result) -> str:
    """Click's usage error: exit 2, a usage line, a hint, and the `Error: ...` line last."""
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    last = result.stderr.rstrip("\n").splitlines()[-1]
    assert last.startswith("Error: "), result.stderr
    return last


@pytest.fixture(scope="module")
def model():
    """A float32 model over 'abc' (float32: its largest value is within reach of finite weights)."""
    return rnnac.RNN({name: p.astype(np.float32) for name, p in tiny_model(VOCAB, hidden_size=8).params.items()}, "tanh")


def meta_for(**more):
    return {"chars": VOCAB.chars, "activation": "tanh", "hidden_size": 8, "dtype": "float32",
            "config": {"data": {"lowercase": True}}, "step": 42, "epoch": 3, "best_val_loss": 1.5, "rng_state": {}} | more


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory, model):
    """A tiny model over 'abc' with a lexicon of WORDS."""
    folder = tmp_path_factory.mktemp("ckpt")
    path, words = folder / "model.npz", folder / "words.txt"
    words.write_text("\n".join(WORDS) + "\n")
    lexicon = LexiconData.from_unsorted(WORDS, [6.0, 5.0, 4.0, 3.0, 2.0, 1.0], [False] * 6)
    meta = meta_for(mixture_lambda=0.5, config={"data": {"path": str(words), "lowercase": True}})
    save_checkpoint(path, model.params, meta, lexicon=lexicon)
    return str(path)


# --- 1. init -o writes atomically and refuses links ----------------------------------------------


def test_init_refuses_to_write_through_a_link(tmp_path):
    (tmp_path / "outside").mkdir()
    target = tmp_path / "outside" / "target.txt"
    target.write_text("precious\n")
    (tmp_path / "work").mkdir()
    (tmp_path / "work" / "my.yaml").symlink_to("../outside/target.txt")
    result = rnnac_run("init", "-o", "my.yaml", "--force", cwd=tmp_path / "work")
    assert result.returncode == 1
    assert "link" in one_error_line(result.stderr) and "my.yaml" in result.stderr
    assert target.read_text() == "precious\n" and (tmp_path / "work" / "my.yaml").is_symlink()


def test_init_on_a_full_disk_keeps_the_old_file(tmp_path):
    old = "# my own settings\n" * 3
    (tmp_path / "my.yaml").write_text(old)
    limit = 1024  # bytes per file: less than the annotated config
    result = subprocess.run([*rnnac_command(), "init", "-o", "my.yaml", "--force"], cwd=tmp_path, capture_output=True,
                            text=True, timeout=60, check=False,
                            preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit)))
    assert result.returncode == 1
    assert "File too large" in one_error_line(result.stderr)
    assert (tmp_path / "my.yaml").read_text() == old
    assert sorted(p.name for p in tmp_path.iterdir()) == ["my.yaml"]  # no temporary file left


def test_init_still_writes_a_new_file_and_overwrites_with_force(tmp_path):
    first = rnnac_run("init", "-o", "my.yaml", cwd=tmp_path)
    assert first.returncode == 0 and "Wrote my.yaml" in first.stderr
    text = (tmp_path / "my.yaml").read_text()
    (tmp_path / "my.yaml").write_text("# changed\n")
    assert rnnac_run("init", "-o", "my.yaml", cwd=tmp_path).returncode == 1  # exists, no --force
    assert rnnac_run("init", "-o", "my.yaml", "--force", cwd=tmp_path).returncode == 0
    assert (tmp_path / "my.yaml").read_text() == text


# --- 2. counts and lengths are capped before anything is allocated --------------------------------


@pytest.mark.parametrize("args", [
    ["complete", "ab", "-k", "2147483648"],
    ["complete", "ab", "-k", "99999999999999999999"],
    ["evaluate", "WORDS", "-k", "99999999999999999999"],
    ["sample", "-n", "99999999999999999999"],
])
def test_huge_counts_are_usage_errors(args, ckpt, tmp_path):
    (tmp_path / "words.txt").write_text("\n".join(WORDS) + "\n")
    args = [str(tmp_path / "words.txt") if a == "WORDS" else a for a in args]
    result = rnnac_run(*args, "-c", ckpt)
    assert "is not in the range" in usage_error(result)


def test_the_library_refuses_sizes_beyond_the_limits_before_allocating(ckpt):
    completer = Completer.load(ckpt)
    with pytest.raises(RnnacError, match="k"):
        completer.complete_many(["ab"], k=10**12)
    with pytest.raises(RnnacError, match="memory|max_length|long"):
        completer.complete_many(["ab"], k=5, max_length=10**12)


# --- 3. closed standard streams ---------------------------------------------------------------------


def test_a_closed_stdin_is_one_error_line(ckpt):
    result = rnnac_run("complete", "-", "-c", ckpt, shell_redirect="<&-")
    assert result.returncode == 1 and "standard input" in one_error_line(result.stderr)


def test_a_closed_stdout_is_one_error_line(ckpt):
    result = rnnac_run("complete", "ab", "-c", ckpt, shell_redirect=">&-")
    assert result.returncode == 1 and "standard output" in one_error_line(result.stderr)


# --- 4. a config with a complex key -------------------------------------------------------------------


@pytest.mark.parametrize("text", [
    "data: {path: words.txt}\ntrain:\n  ? [a, b]\n  : 3\n",
    "data: {path: words.txt}\n? [a, b]\n: 3\n",
    "data: {path: words.txt, ? {x: 1} : 2}\n",
])
def test_a_config_with_a_complex_key_is_one_error_line(tmp_path, text):
    (tmp_path / "words.txt").write_text("\n".join(WORDS) + "\n")
    (tmp_path / "run.yaml").write_text(text)
    result = rnnac_run("train", tmp_path / "run.yaml", "--quiet")
    assert result.returncode == 1 and "key" in one_error_line(result.stderr)
    assert not (tmp_path / "runs").exists()


# --- 5. the server: JSON nested too deep ---------------------------------------------------------------


def test_json_nested_too_deep_is_a_400(ckpt):
    pytest.importorskip("starlette", reason="the serve extra is not installed: pip install 'rnnac[serve]'")
    from starlette.testclient import TestClient

    from rnnac.interfaces.serve import Served, create_app

    with TestClient(create_app({"tiny": Served.load("tiny", ckpt)})) as client:
        for body in (b"[" * 100_000 + b"]" * 100_000, b'{"prefixes": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"):
            response = client.post("/complete", content=body)
            assert response.status_code == 400, response.text
            assert set(response.json()) == {"error"} and "deep" in response.json()["error"]
        assert client.post("/complete", content=b'{"prefixes": ["ab"]}').status_code == 200


# --- 6. weights that overflow -------------------------------------------------------------------------


def huge_checkpoint(tmp_path, model):
    path = tmp_path / "huge.npz"
    params = {name: np.full_like(p, 3e38) for name, p in model.params.items()}
    save_checkpoint(path, params, meta_for())
    return path


@pytest.mark.parametrize("command", [["complete", "ab"], ["score", "ab"], ["sample", "-n", "3"]])
def test_weights_that_overflow_are_refused_in_one_line(tmp_path, model, command):
    path = huge_checkpoint(tmp_path, model)
    result = rnnac_run(*command, "-c", path)
    assert result.returncode == 1 and result.stdout == ""
    assert "overflow" in one_error_line(result.stderr) and str(path) in result.stderr


def test_the_library_refuses_weights_that_overflow(tmp_path, model):
    with pytest.raises(RnnacError, match="overflow"):
        Completer.load(huge_checkpoint(tmp_path, model))


# --- 7. info checks what load checks -------------------------------------------------------------------


@pytest.mark.parametrize("value", [2.0, -0.5])
def test_info_refuses_the_mixture_weight_complete_refuses(tmp_path, ckpt, value):
    bad = rewrite(ckpt, tmp_path / "bad.npz", {"mixture_lambda": value})
    completing = rnnac_run("complete", "ab", "-c", bad)
    informing = rnnac_run("info", bad)
    assert completing.returncode == informing.returncode == 1
    assert "mixture_lambda" in one_error_line(informing.stderr)
    assert one_error_line(completing.stderr) == informing.stderr


# --- 8. sample streams ------------------------------------------------------------------------------


def test_sample_streams_its_words(ckpt):
    """A billion words would not fit in LIMIT: a sample that built them all before printing would
    fail; one that streams prints at once, and stops quietly when the reader leaves."""
    proc = subprocess.Popen([*rnnac_command(), "sample", "-n", "1000000000", "-c", ckpt], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, preexec_fn=limited)
    try:
        first = proc.stdout.readline()
        assert first.strip() and set(first.strip().decode()) <= set("abc"), proc.stderr.read() if not first else first
        assert proc.poll() is None  # still drawing
        proc.stdout.close()  # as `| head -1` does
        assert proc.wait(60) == 0
        assert proc.stderr.read() == b""
    finally:
        proc.kill()
        proc.wait()


def test_sample_in_chunks_draws_what_sample_draws(model):
    from rnnac.inference.sampling import sample, sample_chunks

    assert sum(sample_chunks(model, VOCAB, 2500, rng=7), []) == sample(model, VOCAB, 2500, rng=7)
    chunks = list(sample_chunks(model, VOCAB, 2500, rng=7, chunk=1000))
    rng = np.random.default_rng(7)  # one generator: each chunk is the next draw of its size
    assert chunks == [sample(model, VOCAB, size, rng=rng) for size in (1000, 1000, 500)]
    with pytest.raises(ValueError):
        sample_chunks(model, VOCAB, 5, temperature=-1.0)  # checked at the call, before any chunk is asked for


# --- 9. an empty exclusion list -----------------------------------------------------------------------


def test_an_empty_exclude_list_excludes_nothing(ckpt, tmp_path):
    (tmp_path / "empty.txt").write_text("")
    plain = CliRunner().invoke(cli, ["complete", "a", "-c", ckpt])
    empty = CliRunner().invoke(cli, ["complete", "a", "-c", ckpt, "--exclude", str(tmp_path / "empty.txt")])
    assert plain.exit_code == empty.exit_code == 0, empty.output
    assert empty.stdout == plain.stdout and empty.stderr == ""


# --- 10. two stop signals -------------------------------------------------------------------------------


def test_a_second_stop_signal_after_the_save_still_ends_with_130_not_a_kill():
    """The first signal is taken; the loop saves and leaves; a second one on the way out ends the
    command at once with 130 (as the README says), never by the signal's default action."""
    script = textwrap.dedent("""
        import os, signal, sys, time
        from rnnac.training.trainer import _deferred_interrupt
        try:
            with _deferred_interrupt() as interrupted:
                os.kill(os.getpid(), signal.SIGTERM)
                while not interrupted.is_set():
                    time.sleep(0.001)
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(30)
        except KeyboardInterrupt:
            sys.exit(130)
        sys.exit(0)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 130, (done.returncode, done.stderr)


def test_two_sigterms_20_ms_apart_under_load(tmp_path):
    config = write_run_config(tmp_path, "\n".join(WORDS * 3) + "\n")
    load = [subprocess.Popen([sys.executable, "-c", "while 1: pass"]) for _ in range(2)]
    try:
        proc = subprocess.Popen([*rnnac_command(), "train", str(config), "--quiet", "--set", "train.max_steps=100000000",
                                 "--set", "train.eval_every=100000000", "--set", "model.hidden_size=64"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        metrics = tmp_path / "out" / "metrics.jsonl"
        deadline = time.time() + 120
        while not (metrics.exists() and metrics.stat().st_size > 0):
            assert time.time() < deadline and proc.poll() is None, proc.communicate()
            time.sleep(0.01)
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.02)
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        for p in load:
            p.kill()
            p.wait()
    assert proc.returncode in (130, 143), (proc.returncode, stderr)  # never killed by the signal (-15)
    assert stdout == "" and "Traceback" not in stderr and "Aborted" not in stderr
    out = tmp_path / "out"
    if proc.returncode == 143:  # the second came after the run said how to resume: the first one's exit
        assert "Stopped by SIGTERM at step" in stderr
        assert load_checkpoint(out / "last.npz").meta["step"] >= 10
    elif (out / "last.npz").exists():  # the second stopped the save, or came after it: a whole file or none
        assert load_checkpoint(out / "last.npz").meta["step"] >= 10
    assert not [p.name for p in out.iterdir() if p.name.endswith(".tmp")]


# --- 11. a FIFO where a file should be ---------------------------------------------------------------------


@pytest.mark.parametrize("command", [["info", "FIFO"], ["complete", "ab", "-c", "FIFO"], ["score", "ab", "-c", "FIFO"],
                                     ["sample", "-c", "FIFO"]])
def test_a_fifo_where_a_checkpoint_should_be_is_refused_before_it_is_opened(tmp_path, command):
    """A checkpoint is a zip read by seeking: a FIFO can never be one, and opening it would wait
    forever for a writer. (Word lists may come from FIFOs: `--exclude <(grep ...)` is a fine use.)"""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    result = rnnac_run(*(str(fifo) if a == "FIFO" else a for a in command), timeout=30)
    assert result.returncode == 1 and "not a regular file" in one_error_line(result.stderr)
    assert str(fifo) in result.stderr


# --- the battery: every command, its counts at their limits, and closed standard streams --------------------


COMMANDS = {  # each command as a user runs it on the tiny model; WORDS: a word list file, RUN: a tiny run's config
    "complete": ["complete", "ab"],
    "complete-stdin": ["complete", "-"],
    "score": ["score", "ab"],
    "sample": ["sample", "-n", "3", "--seed", "1"],
    "info": ["info"],
    "evaluate": ["evaluate", "WORDS", "--no-baselines"],
    "evaluate-typos": ["evaluate", "WORDS", "--no-baselines", "--typos", "0.1"],
    "init": ["init"],
    "train": ["train", "RUN", "--quiet", "--force", "--set", "train.max_steps=5"],
}
READS_STDIN = {"complete-stdin"}
NO_CHECKPOINT = {"init", "train"}
# `serve` runs until stopped, and `plot` draws a finished run's curves: tests/test_serve.py and
# tests/test_plot.py cover them; the battery runs every command that answers and exits.


@pytest.fixture
def words_file(tmp_path):
    path = tmp_path / "words.txt"
    path.write_text("\n".join(WORDS) + "\n")
    return path


def command_args(name, ckpt, words_file, *extra):
    run_config = words_file.parent / "run.yaml"
    if name == "train" and not run_config.exists():
        write_run_config(words_file.parent, "\n".join(WORDS) + "\n")
    args = [{"WORDS": str(words_file), "RUN": str(run_config)}.get(a, a) for a in COMMANDS[name]]
    return args + ([] if name in NO_CHECKPOINT else ["-c", ckpt]) + list(extra)


LIMITS = {  # option: (smallest and largest value accepted, the commands that take it)
    "-k": (1, 1000, ["complete", "evaluate"]),
    "--beam": (1, 1000, ["complete"]),
    "-n": (0, 1_000_000_000, ["sample"]),
    "--max-length": (1, 1000, ["complete", "sample"]),
    "--budget": (1, 1_000_000, ["complete"]),
    "--typo-words": (1, 1_000_000, ["evaluate-typos"]),
    "--typed": (1, 1000, ["evaluate-typos"]),
}


@pytest.mark.parametrize("option, command, value", [
    (option, command, value)
    for option, (bottom, top, commands) in LIMITS.items() for command in commands
    for value in (bottom - 1, top + 1, 10**20)
])
def test_counts_beyond_their_limits_are_usage_errors(option, command, value, ckpt, words_file):
    result = rnnac_run(*command_args(command, ckpt, words_file, option, str(value)))
    assert "is not in the range" in usage_error(result) and result.stdout == ""


def same_answer(stdout: str, name: str) -> str:
    """stdout without what differs between two runs: a training run's timing."""
    return stdout.split(" after ")[0] if name == "train" else stdout


@pytest.mark.parametrize("name", sorted(set(COMMANDS) - {"evaluate-typos"}))
@pytest.mark.parametrize("stream", ["stdin", "stdout", "stderr"])
def test_every_command_with_a_closed_standard_stream(name, stream, ckpt, words_file):
    args = command_args(name, ckpt, words_file)
    fine = rnnac_run(*args, input="ab\n" if name in READS_STDIN else None)
    assert fine.returncode == 0, fine.stderr
    redirect = {"stdin": "<&-", "stdout": ">&-", "stderr": "2>&-"}[stream]
    if name in READS_STDIN and stream != "stdin":
        redirect += " <<< ab"
    closed = rnnac_run(*args, shell_redirect=redirect)
    if stream == "stdout" or (stream == "stdin" and name in READS_STDIN):
        assert closed.returncode == 1
        assert f"standard {'output' if stream == 'stdout' else 'input'}" in one_error_line(closed.stderr)
    elif stream == "stdin":
        assert (closed.returncode, same_answer(closed.stdout, name)) == (0, same_answer(fine.stdout, name))
        assert closed.stderr == fine.stderr
    else:  # nowhere to report anything: the same answer and exit code all the same
        assert (closed.returncode, same_answer(closed.stdout, name)) == (0, same_answer(fine.stdout, name))
