import ast
import json
import math
import os
import select
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import rnnac
from rnnac import checkpoint, complete
from rnnac.checkpoint import save_checkpoint
from rnnac.cli import cli

from conftest import rnnac_command

VOCAB = rnnac.Vocab("abc")


@pytest.fixture(scope="module")
def model():
    model = rnnac.RNN.init(len(VOCAB), 8, seed=0, dtype=np.float32)
    rng = np.random.default_rng(5)
    for p in model.params.values():
        p[:] = rng.normal(0, 1.0, p.shape)
    return model


@pytest.fixture
def ckpt(tmp_path, model):
    path = tmp_path / "model.npz"
    meta = {"chars": VOCAB.chars, "activation": "tanh", "hidden_size": 8, "dtype": "float32",
            "config": {"data": {"lowercase": True}}, "step": 42, "epoch": 3, "best_val_loss": 1.5,
            "rng_state": {}}
    save_checkpoint(path, model.params, meta)
    return str(path)


@pytest.fixture
def completer(model):
    return complete.Completer(model, VOCAB)


def run(*args, input=None, env=None):
    return CliRunner().invoke(cli, list(args), input=input, env=env)


def test_one_prefix_plain(ckpt, completer):
    result = run("complete", "ab", "-c", ckpt)
    assert result.exit_code == 0, result.output
    assert result.stdout == "".join(f"{w}\n" for w, _ in completer.complete("ab").completions)
    assert len(result.stdout.splitlines()) == 5 and result.stderr == ""


def test_several_prefixes_plain_and_top(ckpt, completer):
    result = run("complete", "a", "C", "-c", ckpt, "-k", "2")
    assert result.exit_code == 0 and result.stderr == ""
    expected = [f"{p}\t{w}" for p in ("a", "C") for w, _ in completer.complete(p, k=2).completions]
    assert result.stdout.splitlines() == expected
    assert result.stdout.splitlines()[2].startswith("C\tc")  # case folded, prefix as given


def test_tsv(ckpt, completer):
    result = run("complete", "b", "--format", "tsv", "-c", ckpt, "-k", "3")
    assert result.exit_code == 0 and result.stderr == ""
    rows = [line.split("\t") for line in result.stdout.splitlines()]
    assert [r[:3] for r in rows] == [["b", str(i + 1), w] for i, (w, _) in enumerate(completer.complete("b", k=3).completions)]
    for _, _, _, prob, logprob, known, edits, corrected, error in rows:
        assert float(prob) == pytest.approx(math.exp(float(logprob)), rel=1e-5)
        assert (known, edits, corrected, error) == ("false", "0", "b", "")  # this model carries no lexicon


def test_json(ckpt, completer):
    result = run("complete", "ca", "", "--format", "json", "-c", ckpt)
    assert result.exit_code == 0 and result.stderr == ""
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [obj["prefix"] for obj in lines] == ["ca", ""]
    for obj in lines:
        assert set(obj) == {"version", "prefix", "completions", "truncated"} and obj["truncated"] is False
        assert obj["version"] == 1 and all(set(c) == {"word", "prob", "logprob", "known"} for c in obj["completions"])
        expected = completer.complete(obj["prefix"]).completions
        assert [c["word"] for c in obj["completions"]] == [w for w, _ in expected]
        for c, (_, lp) in zip(obj["completions"], expected):
            assert c["logprob"] == pytest.approx(lp) and c["prob"] == pytest.approx(math.exp(lp))
    assert all(c["word"].startswith("ca") for c in lines[0]["completions"])  # the whole word


def test_empty_prefix_gives_the_most_likely_words(ckpt, completer):
    result = run("complete", "", "-c", ckpt, "-k", "3")
    assert result.exit_code == 0
    assert result.stdout.splitlines() == [w for w, _ in completer.complete("", k=3).completions]


def test_unknown_characters(ckpt):
    result = run("complete", "ab", "a$b", "c", "-c", ckpt, "-k", "1")
    assert result.exit_code == 1
    assert [line.split("\t")[0] for line in result.stdout.splitlines()] == ["ab", "c"]
    assert result.stderr.count("\n") == 1 and "'a$b'" in result.stderr and "'$'" in result.stderr
    assert result.stderr.startswith("Error: ")
    skipped = run("complete", "ab", "a$b", "c", "-c", ckpt, "-k", "1", "--skip-unknown")
    assert skipped.exit_code == 0 and skipped.stderr == "" and skipped.stdout == result.stdout


def test_stdin_lines(ckpt, completer):
    result = run("complete", "-", "-c", ckpt, "-k", "2", input="a\r\nb\n\nc")
    assert result.exit_code == 0 and result.stderr == ""
    expected = [f"{p}\t{w}" for p in ("a", "b", "", "c") for w, _ in completer.complete(p, k=2).completions]
    assert result.stdout.splitlines() == expected
    no_dash = run("complete", "-c", ckpt, "-k", "2", input="a\r\nb\n\nc")  # stdin is not a terminal
    assert no_dash.stdout == result.stdout


def test_beam_budget_lexicon(ckpt, completer, tmp_path):
    beam = run("complete", "a", "--beam", "2", "-c", ckpt, "--format", "json")
    assert beam.exit_code == 0
    got = json.loads(beam.stdout)["completions"]
    assert [c["word"] for c in got] == [w for w, _ in completer.complete("a", beam=2).completions]
    cut = run("complete", "", "--budget", "2", "-c", ckpt, "--format", "json")
    assert cut.exit_code == 0 and json.loads(cut.stdout)["truncated"] is True
    assert "budget" in cut.stderr and cut.stderr.startswith("Warning: ")
    (tmp_path / "lex.txt").write_text("abc\nab\nbca\nxyz\n")
    lex = run("complete", "ab", "b", "--lexicon", str(tmp_path / "lex.txt"), "-c", ckpt)
    assert lex.exit_code == 0
    assert sorted(lex.stdout.splitlines()) == ["ab\tab", "ab\tabc", "b\tbca"]
    assert "1 lexicon words" in lex.stderr


def test_checkpoint_from_environment_and_errors(ckpt, tmp_path, monkeypatch):
    result = run("complete", "a", env={"RNNAC_CHECKPOINT": ckpt})
    assert result.exit_code == 0 and len(result.stdout.splitlines()) == 5
    missing = run("complete", "a", "-c", str(tmp_path / "nope.npz"))
    assert missing.exit_code == 1 and missing.stdout == ""
    assert missing.stderr == f"Error: cannot load checkpoint {tmp_path / 'nope.npz'}: no such file\n"
    (tmp_path / "bad.npz").write_bytes(b"garbage")
    bad = run("complete", "a", "-c", str(tmp_path / "bad.npz"))
    assert bad.exit_code == 1 and bad.stderr.count("\n") == 1 and "not a valid .npz" in bad.stderr
    np.savez(tmp_path / "pickled.npz", meta=np.array([{"a": 1}], dtype=object))
    pickled = run("complete", "a", "-c", str(tmp_path / "pickled.npz"))
    assert pickled.exit_code == 1 and pickled.stderr.count("\n") == 1 and "pickle" in pickled.stderr
    monkeypatch.setattr(checkpoint, "BUNDLED_MODEL", tmp_path / "models" / "en.npz")
    none = run("complete", "a", env={"RNNAC_CHECKPOINT": ""})
    assert none.exit_code == 1 and none.stderr.startswith("Error: no bundled model; train one")


def test_usage_errors(ckpt):
    assert run("complete", "a", "-k", "0", "-c", ckpt).exit_code == 2
    assert run("complete", "a", "-", "-c", ckpt).exit_code == 2
    assert run("complete", "a", "--format", "xml", "-c", ckpt).exit_code == 2


def test_sample(ckpt):
    first = run("sample", "-n", "20", "--seed", "1", "-c", ckpt, "--prefix", "B", "--temperature", "0.8")
    assert first.exit_code == 0 and first.stderr == ""
    words = first.stdout.splitlines()
    assert len(words) == 20 and all(w.startswith("b") for w in words)
    assert run("sample", "-n", "20", "--seed", "1", "-c", ckpt, "--prefix", "b", "-t", "0.8").stdout == first.stdout
    bad = run("sample", "--prefix", "x", "-c", ckpt)
    assert bad.exit_code == 1 and "'x'" in bad.stderr


def test_info(ckpt):
    plain = run("info", ckpt)
    assert plain.exit_code == 0 and plain.stderr == ""
    lines = plain.stdout.splitlines()
    for expected in ("chars: abc", "vocab_size: 4", "hidden_size: 8", "parameters: 140", "step: 42",
                     "best_val_loss: 1.5", "config.data.lowercase: true"):
        assert expected in lines
    facts = json.loads(run("info", ckpt, "--json").stdout)
    assert facts["parameters"] == 8 * 4 + 64 + 8 + 4 * 8 + 4 and facts["config"] == {"data": {"lowercase": True}}


# --- the installed script, in real processes ---------------------------------------------


def test_stdin_streams_answers_before_input_ends(ckpt):
    proc = subprocess.Popen([*rnnac_command(), "complete", "-", "-c", ckpt, "-k", "1"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        proc.stdin.write(b"ab\n")
        proc.stdin.flush()
        ready, _, _ = select.select([proc.stdout], [], [], 20)
        assert ready, "no answer while stdin was still open"
        assert proc.stdout.readline().startswith(b"ab\tab")
        proc.stdin.write(b"c\n")
        proc.stdin.flush()
        assert proc.stdout.readline().startswith(b"c\tc")
        proc.stdin.close()
        assert proc.wait(20) == 0
        assert proc.stderr.read() == b""
    finally:
        proc.kill()
        proc.wait()


def test_head_closes_the_pipe_quietly(ckpt, tmp_path):
    big = tmp_path / "big.txt"
    big.write_text("a\nb\nc\nab\n" * 20_000)
    command = " ".join(rnnac_command())
    shell = f"set -o pipefail; {command} complete - -c {ckpt} < {big} 2> {tmp_path / 'err'} | head -1"
    done = subprocess.run(["bash", "-c", shell], capture_output=True, timeout=60, check=False)
    assert done.stdout.count(b"\n") == 1 and done.stdout.startswith(b"a\ta")
    assert (tmp_path / "err").read_bytes() == b""  # no traceback, no "Exception ignored"
    assert done.returncode == 0


def run_cli_and_list_imports(args: list[str], modules: tuple[str, ...]) -> tuple[str, list[str]]:
    """(stdout, which of `modules` were imported) after `rnnac ARGS` in a fresh interpreter."""
    code = ("import sys\nfrom rnnac.cli import cli\n"
            f"try:\n    cli({args!r})\nexcept SystemExit:\n    pass\n"
            f"print([m for m in {modules!r} if m in sys.modules], file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    return done.stdout, ast.literal_eval(done.stderr)


def test_complete_keeps_slow_imports_off_its_path(ckpt):
    """yaml, tqdm and numpy.ma (pulled in by np.unique) would each cost cold-start time."""
    stdout, imported = run_cli_and_list_imports(["complete", "ab", "-c", ckpt], ("yaml", "tqdm", "numpy.ma"))
    assert imported == []
    assert len(stdout.splitlines()) == 5


@pytest.mark.parametrize("args", [["--version"], ["--help"], ["complete", "--help"]])
def test_help_and_version_do_not_import_numpy(args):
    """NumPy costs ~100 ms of start-up; nothing that only prints text should pay it."""
    stdout, imported = run_cli_and_list_imports(args, ("numpy", "yaml", "tqdm"))
    assert imported == []
    assert ("version" if args == ["--version"] else "Usage:") in stdout


def test_line_chunks_answer_what_has_arrived():
    from rnnac.cli import _line_chunks

    read_fd, write_fd = os.pipe()
    with open(read_fd, "rb", buffering=0) as reader:
        chunks = _line_chunks(reader)
        os.write(write_fd, b"ab\nc\r\nd")  # "d" is not a whole line yet
        assert next(chunks) == ["ab", "c"]
        os.write(write_fd, "é\n".encode() + b"x\n")
        assert next(chunks) == ["dé", "x"]
        os.write(write_fd, b"last")
        os.close(write_fd)
        assert list(chunks) == [["last"]]


# --- evaluate and plot on a model trained here ---------------------------------------------


ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny")
    result = run("train", str(ROOT / "configs" / "tiny.yaml"), "--set", f"output.dir={out}", "--quiet")
    assert result.exit_code == 0, result.output
    return out


def test_evaluate_json_holds_every_figure(tiny_run):
    names = ROOT / "data" / "names.txt"
    result = run("evaluate", str(names), "-c", str(tiny_run / "best.npz"), "--json", "-k", "3")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    rnn = report["models"]["rnn"]
    assert set(rnn) == {"all", "seen", "held_out"}
    assert rnn["seen"]["n_words"] == 270 and rnn["all"]["n_words"] == 29494
    assert rnn["all"]["perplexity"] == pytest.approx(math.exp(rnn["all"]["nll_per_char"]))
    assert set(report["models"]) == {"rnn", "mixture", "trie", "ngram", "kn"}
    assert report["labels"]["mixture"].startswith("mixture (lambda ")


def test_evaluate_table_and_a_missing_list(tiny_run):
    result = run("evaluate", str(ROOT / "data" / "names.txt"), "-c", str(tiny_run / "best.npz"), "--no-baselines")
    assert result.exit_code == 0 and result.stdout.startswith("29,494 words")
    missing = run("evaluate", "nope.txt", "-c", str(tiny_run / "best.npz"))
    assert missing.exit_code == 1 and missing.stdout == ""
    assert missing.stderr.startswith("Error: ") and missing.stderr.count("\n") == 1


def test_plot_writes_a_picture_or_names_the_extra(tiny_run, tmp_path):
    result = run("plot", str(tiny_run), "-o", str(tmp_path / "curve.png"))
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert result.exit_code == 1 and "pip install 'rnnac[plot]'" in result.stderr
    else:
        assert result.exit_code == 0, result.stderr
        assert (tmp_path / "curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_an_output_dir_that_cannot_be_made_is_one_line(tmp_path):
    (tmp_path / "afile").write_text("")
    result = run("train", str(ROOT / "configs" / "tiny.yaml"), "--set", f"output.dir={tmp_path / 'afile'}", "-q")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: ") and str(tmp_path / "afile") in result.stderr
    assert result.stderr.count("\n") == 1


def test_the_cli_offers_every_baseline_evaluate_knows():
    from rnnac import cli, evaluate

    assert cli.BASELINES == evaluate.BASELINES


@pytest.fixture
def lexicon_ckpt(tmp_path, model):
    """The model with a lexicon (held-out "cab" included) and a fitted lambda."""
    from rnnac.checkpoint import LexiconData

    path = tmp_path / "lex.npz"
    meta = {"chars": VOCAB.chars, "activation": "tanh", "hidden_size": 8, "dtype": "float32",
            "config": {"data": {"lowercase": True}}, "step": 42, "epoch": 3, "best_val_loss": 1.5,
            "rng_state": {}, "mixture_lambda": 0.8}
    lexicon = LexiconData.from_unsorted(["abc", "abba", "cab", "acca"], [50.0, 5.0, 1.0, 20.0], [False, False, True, False])
    save_checkpoint(path, model.params, meta, lexicon=lexicon)
    return str(path)


def words_of(result):
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_complete_mixes_the_lexicon_and_the_model(lexicon_ckpt, model):
    lexicon = rnnac.Lexicon(["abc", "abba", "cab", "acca"], VOCAB, counts=[50.0, 5.0, 1.0, 20.0])
    expected = complete.Completer(model, VOCAB, lexicon=lexicon, mixture_lambda=0.8).complete("a", k=4)
    (obj,) = words_of(run("complete", "a", "-k", "4", "--format", "json", "-c", lexicon_ckpt))
    assert [(c["word"], c["known"]) for c in obj["completions"]] == list(zip([w for w, _ in expected.completions], expected.known))
    assert [c["word"] for c in obj["completions"]][:2] == ["abc", "acca"]  # the lexicon's counts lead
    for c, (_, lp) in zip(obj["completions"], expected.completions):
        assert c["logprob"] == pytest.approx(lp, rel=1e-9)


def test_complete_scoring_options(lexicon_ckpt, model, completer, tmp_path):
    def top(*args):
        (obj,) = words_of(run("complete", "a", "-k", "3", "--format", "json", "-c", lexicon_ckpt, *args))
        return [(c["word"], c["known"]) for c in obj["completions"]]

    assert top("--open") == [(w, False) for w, _ in completer.complete("a", k=3).completions]
    assert all(known for _, known in top("--known-only"))
    assert top("--lambda", "0") == [(w, w in {"abc", "abba", "acca"}) for w, _ in completer.complete("a", k=3).completions]
    extra = tmp_path / "extra.tsv"
    extra.write_text("aaa\t1000\n")
    assert top("--lexicon", str(extra)) == [("aaa", True)]  # only the words of FILE
    assert top("--lexicon", str(extra), "--lexicon-mode", "add")[:2] == [("aaa", True), ("abc", True)]
    blocked = tmp_path / "blocked.txt"
    blocked.write_text("abc\n")
    assert "abc" not in [w for w, _ in top("--exclude", str(blocked))]
    result = run("complete", "a", "--open", "--known-only", "-c", lexicon_ckpt)
    assert result.exit_code == 2 and "cannot be used together" in result.stderr


def test_known_only_needs_a_lexicon(ckpt):
    result = run("complete", "a", "--known-only", "-c", ckpt)
    assert result.exit_code == 2 and "carries no lexicon" in result.stderr


@pytest.mark.parametrize("fmt", ["json", "tsv"])
def test_a_failed_prefix_keeps_its_place_in_the_stream(ckpt, fmt):
    result = run("complete", "-", "--format", fmt, "-k", "2", "-c", ckpt, input="ab\nca!\nb\n")
    assert result.exit_code == 1
    assert result.stderr == "Error: 'ca!' holds '!', which is not in the vocabulary\n"
    if fmt == "json":
        records = words_of(result)
        assert [r["prefix"] for r in records] == ["ab", "ca!", "b"]
        assert records[1] == {"version": 1, "prefix": "ca!", "error": "'ca!' holds '!', which is not in the vocabulary"}
    else:
        rows = [line.split("\t") for line in result.stdout.splitlines()]
        assert [r[0] for r in rows] == ["ab", "ab", "ca!", "b", "b"] and all(len(r) == 9 for r in rows)
        assert rows[2] == ["ca!", "", "", "", "", "", "", "", "'ca!' holds '!', which is not in the vocabulary"]
    skipped = run("complete", "-", "--format", fmt, "-k", "2", "-c", ckpt, "--skip-unknown", input="ab\nca!\nb\n")
    assert skipped.exit_code == 0 and "ca!" not in skipped.stdout and skipped.stderr == ""
