import ast
import json
import math
import os
import select
import subprocess
import sys
from pathlib import Path

import click
import numpy as np
import pytest
from click.testing import CliRunner
from conftest import rnnac_command

import rnnac
from rnnac.inference import completer as complete
from rnnac.interfaces.cli import cli
from rnnac.storage import checkpoint
from rnnac.storage.checkpoint import save_checkpoint
from columns import known_of, pairs, shown_of

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
    assert result.stdout == "".join(f"{w}\n" for w, _ in pairs(completer.complete("ab")))
    assert len(result.stdout.splitlines()) == 5 and result.stderr == ""


def test_several_prefixes_plain_and_top(ckpt, completer):
    result = run("complete", "a", "C", "-c", ckpt, "-k", "2")
    assert result.exit_code == 0 and result.stderr == ""
    expected = [f"{p}\t{w}" for p in ("a", "C") for w in shown_of(completer.complete(p, k=2))]
    assert result.stdout.splitlines() == expected
    assert result.stdout.splitlines()[2].startswith("C\tC")  # searched folded, shown in the case typed
    assert [w.lower() for w in shown_of(completer.complete("C", k=2))] == [w for w, _ in pairs(completer.complete("c", k=2))]


def test_tsv(ckpt, completer):
    result = run("complete", "b", "--format", "tsv", "-c", ckpt, "-k", "3")
    assert result.exit_code == 0 and result.stderr == ""
    rows = [line.split("\t") for line in result.stdout.splitlines()]
    assert [r[:3] for r in rows] == [["b", str(i + 1), w] for i, (w, _) in enumerate(pairs(completer.complete("b", k=3)))]
    for _, _, _, prob, logprob, known, edits, corrected, error, match in rows:
        assert float(prob) == pytest.approx(math.exp(float(logprob)), rel=1e-5)
        assert (known, edits, corrected, error, match) == ("false", "0", "b", "", "0")  # this model carries no lexicon


def test_json(ckpt, completer):
    result = run("complete", "ca", "", "--format", "json", "-c", ckpt)
    assert result.exit_code == 0 and result.stderr == ""
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [obj["prefix"] for obj in lines] == ["ca", ""]
    for obj in lines:
        assert set(obj) == {"version", "prefix", "completions", "truncated"} and obj["truncated"] is False
        assert obj["version"] == 1 and all(set(c) == {"word", "prob", "logprob", "known", "edits", "corrected", "match"}
                                       for c in obj["completions"])
        assert all((c["edits"], c["corrected"]) == (0, obj["prefix"]) for c in obj["completions"])
        expected = pairs(completer.complete(obj["prefix"]))
        assert [c["word"] for c in obj["completions"]] == [w for w, _ in expected]
        for c, (_, lp) in zip(obj["completions"], expected):
            assert c["logprob"] == pytest.approx(lp) and c["prob"] == pytest.approx(math.exp(lp))
    assert all(c["word"].startswith("ca") for c in lines[0]["completions"])  # the whole word


def test_empty_prefix_gives_the_most_likely_words(ckpt, completer):
    result = run("complete", "", "-c", ckpt, "-k", "3")
    assert result.exit_code == 0
    assert result.stdout.splitlines() == [w for w, _ in pairs(completer.complete("", k=3))]


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
    expected = [f"{p}\t{w}" for p in ("a", "b", "", "c") for w, _ in pairs(completer.complete(p, k=2))]
    assert result.stdout.splitlines() == expected
    no_dash = run("complete", "-c", ckpt, "-k", "2", input="a\r\nb\n\nc")  # stdin is not a terminal
    assert no_dash.stdout == result.stdout


def test_beam_budget_lexicon(ckpt, completer, tmp_path):
    beam = run("complete", "a", "--beam", "2", "-c", ckpt, "--format", "json")
    assert beam.exit_code == 0
    got = json.loads(beam.stdout)["completions"]
    assert [c["word"] for c in got] == [w for w, _ in pairs(completer.complete("a", beam=2))]
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
    code = ("import sys\nfrom rnnac.interfaces.cli import cli\n"
            f"try:\n    cli({args!r})\nexcept SystemExit:\n    pass\n"
            f"print([m for m in {modules!r} if m in sys.modules], file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    return done.stdout, ast.literal_eval(done.stderr)


@pytest.mark.parametrize("which", ["ckpt", "lexicon_ckpt"])
def test_complete_keeps_slow_imports_off_its_path(which, request):
    """yaml, tqdm and numpy.ma (pulled in by np.unique) would each cost cold-start time; so would
    the engine (bptt) and evaluate, which completing never needs."""
    ckpt = request.getfixturevalue(which)
    modules = ("yaml", "tqdm", "numpy.ma", "rnnac.engine.bptt", "rnnac.evaluation.evaluate", "rnnac.storage.wordlist")
    stdout, imported = run_cli_and_list_imports(["complete", "ab", "-c", ckpt, "--new", "5"], modules)
    assert imported == []
    assert len(stdout.splitlines()) == 5


@pytest.mark.parametrize("args", [["--version"], ["--help"], ["complete", "--help"]])
def test_help_and_version_do_not_import_numpy(args):
    """NumPy costs ~100 ms of start-up; nothing that only prints text should pay it."""
    stdout, imported = run_cli_and_list_imports(args, ("numpy", "yaml", "tqdm"))
    assert imported == []
    assert ("version" if args == ["--version"] else "Usage:") in stdout


def test_line_chunks_answer_what_has_arrived():
    from rnnac.interfaces.cli import _line_chunks

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
    verdict, savings = report["verdict"], {name: report["models"][name]["all"]["keystroke_savings"] for name in report["models"]}
    assert verdict["model"] == "mixture" and savings[verdict["baseline"]] == max(savings[b] for b in ("trie", "ngram", "kn"))
    assert verdict["keystroke_savings"] == {"model": savings["mixture"], "baseline": savings[verdict["baseline"]],
                                            "winner": verdict["keystroke_savings"]["winner"]}


def test_evaluate_gives_its_verdict_first(tiny_run, tmp_path):
    (tmp_path / "few.txt").write_text("emma\nolivia\nava\nzoe\nemily\n")
    result = run("evaluate", str(tmp_path / "few.txt"), "-c", str(tiny_run), "--baseline", "trie")
    assert result.exit_code == 0 and result.stderr == ""  # no bar: stderr is not a terminal
    first, second, blank, title = result.stdout.splitlines()[:4]
    assert first.startswith("rnnac ") and " vs trie " in first and first.endswith("(all words; the only baseline).")
    assert second.startswith("rnnac ") and " top-5 with 3 typed: " in second and blank == ""
    assert title.startswith("5 words (")


def test_evaluate_table_and_a_missing_list(tiny_run):
    result = run("evaluate", str(ROOT / "data" / "names.txt"), "-c", str(tiny_run / "best.npz"), "--no-baselines")
    assert result.exit_code == 0 and result.stdout.startswith("29,494 words")
    missing = run("evaluate", "nope.txt", "-c", str(tiny_run / "best.npz"))
    assert missing.exit_code == 1 and missing.stdout == ""
    assert missing.stderr.startswith("Error: ") and missing.stderr.count("\n") == 1


def test_evaluate_and_complete_take_a_shipped_list_by_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no data/ here
    result = run("evaluate", "identifiers", "--no-baselines", "-q", "--format", "json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["info"]["wordlist"] == str(ROOT / "data" / "identifiers.txt") and report["models"]["rnn"]["all"]["n_words"] == 389
    names = run("complete", "--lexicon", "names", "-k", "3", "--format", "json", "ma")
    assert names.exit_code == 0, names.stderr
    assert all(c["known"] and c["word"].startswith("ma") for c in json.loads(names.stdout)["completions"])
    Path("identifiers").write_text("open\nclose\n")  # a file of that name wins
    own = json.loads(run("evaluate", "identifiers", "--no-baselines", "-q", "--format", "json").stdout)
    assert own["info"]["wordlist"] == "identifiers" and own["models"]["rnn"]["all"]["n_words"] == 2


@pytest.mark.parametrize("args", [["evaluate", "wrods"], ["complete", "--lexicon", "nmaes", "ma"], ["init", "wrods"],
                                  ["evaluate", "identifiers", "--train-list", "wrods"]])
def test_a_list_name_that_nothing_has_names_the_shipped_lists(tmp_path, monkeypatch, args):
    monkeypatch.chdir(tmp_path)
    result = run(*args)
    assert result.exit_code == 1 and result.stdout == ""
    wrong = args[-1] if args[0] != "complete" else "nmaes"
    assert result.stderr == f"Error: {wrong}: no such file, nor a shipped word list: identifiers, names, words\n"


def read_all(fd: int) -> bytes:
    """Everything written to the other end of a pty, until it closes."""
    chunks = []
    while True:
        try:
            data = os.read(fd, 4096)
        except OSError:  # EIO: the other end closed
            break
        if not data:
            break
        chunks.append(data)
    return b"".join(chunks)


def test_evaluate_says_what_it_is_doing_on_a_terminal_only(tiny_run, tmp_path):
    import fcntl
    import pty
    import struct
    import termios

    (tmp_path / "few.txt").write_text("emma\nolivia\nava\nzoe\n")
    command = [*rnnac_command(), "evaluate", str(tmp_path / "few.txt"), "-c", str(tiny_run), "--format", "tsv"]
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a terminal 100 columns wide
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    shown = read_all(master).decode()
    os.close(master)
    assert proc.wait(120) == 0
    for stage in ("fitting the character n-gram", "fitting the Kneser-Ney n-gram", "scoring rnn", "scoring trie"):
        assert stage in shown, shown
    assert "[7/7] scoring mixture" in shown and "0/4 words [" in shown  # the words a model has scored, and the time left
    rows = [line.split("\t") for line in proc.stdout.read().decode().splitlines()]
    assert rows[0][:4] == ["model", "subset", "n_words", "nll_per_char"] and "top5_3_typed" in rows[0]
    assert {(r[0], r[1]) for r in rows[1:]} == {(m, s) for m in ("rnn", "mixture", "trie", "ngram", "kn")
                                                for s in ("all", "seen", "held_out")}
    assert all(len(r) == len(rows[0]) for r in rows)
    piped = subprocess.run(command, capture_output=True, timeout=120, check=False)
    assert piped.returncode == 0 and piped.stderr == b""  # no bar, no log when stderr is not a terminal


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
    from rnnac.evaluation import evaluate
    from rnnac.interfaces import cli

    assert cli.BASELINES == evaluate.BASELINES


@pytest.fixture
def lexicon_ckpt(tmp_path, model):
    """The model with a lexicon (held-out "cab" included) and a fitted lambda."""
    from rnnac.storage.lexicon import LexiconData

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
    assert [(c["word"], c["known"]) for c in obj["completions"]] == list(zip([w for w, _ in pairs(expected)], known_of(expected)))
    assert [c["word"] for c in obj["completions"]][:2] == ["abc", "acca"]  # the lexicon's counts lead
    for c, (_, lp) in zip(obj["completions"], pairs(expected)):
        assert c["logprob"] == pytest.approx(lp, rel=1e-9)


def test_complete_scoring_options(lexicon_ckpt, model, completer, tmp_path):
    def top(*args):
        (obj,) = words_of(run("complete", "a", "-k", "3", "--format", "json", "-c", lexicon_ckpt, *args))
        return [(c["word"], c["known"]) for c in obj["completions"]]

    longest = 4  # the checkpoint's lexicon's longest word: the default cap of invented strings
    assert top("--open") == [(w, False) for w, _ in pairs(completer.complete("a", k=3, max_length=longest))]
    assert all(known for _, known in top("--known-only"))
    assert top("--lambda", "0", "--new", "3") == [(w, w in {"abc", "abba", "acca"})
                                                  for w, _ in pairs(completer.complete("a", k=3, max_length=longest))]
    assert [known for _, known in top("--lambda", "0")].count(False) <= 1  # by default one invented string at most
    assert top("--open", "--max-length", "32") == [(w, False) for w, _ in pairs(completer.complete("a", k=3))]
    extra = tmp_path / "extra.tsv"
    extra.write_text("aaa\t1000\n")
    assert top("--lexicon", str(extra)) == [("aaa", True)]  # only the words of FILE
    assert top("--lexicon", str(extra), "--lexicon-mode", "add")[:2] == [("aaa", True), ("abc", True)]
    blocked = tmp_path / "blocked.txt"
    blocked.write_text("abc\n")
    assert "abc" not in [w for w, _ in top("--exclude", str(blocked))]
    result = run("complete", "a", "--open", "--known-only", "-c", lexicon_ckpt)
    assert result.exit_code == 2 and "cannot be used together" in result.stderr


def test_plain_output_marks_invented_strings_and_new_caps_them(lexicon_ckpt, tmp_path):
    def plain(*args):
        result = run("complete", "a", "-k", "5", "-c", lexicon_ckpt, *args)
        assert result.exit_code == 0, result.output
        return result.stdout.splitlines()

    def records(*args):
        (obj,) = words_of(run("complete", "a", "-k", "5", "--format", "json", "-c", lexicon_ckpt, *args))
        return [(c["word"], c["known"]) for c in obj["completions"]]

    for new in ("0", "1", "3"):
        shown, expected = plain("--new", new), records("--new", new)
        assert shown == [w if known else w + "*" for w, known in expected]
        assert [known for _, known in expected].count(False) == min(int(new), 5 - 3)  # 3 lexicon words start with a
    assert plain() == plain("--new", "1")  # a counted list: one invented string by default
    assert plain("--new", "0") == plain("--known-only")
    flat = tmp_path / "flat.txt"
    flat.write_text("abc\nabba\nacca\n")
    assert all(not w.endswith("*") for w in plain("--lexicon", str(flat), "--lexicon-mode", "replace"))
    assert plain("--open")[0].endswith("*")  # the model alone still says which words the list lacks


@pytest.mark.parametrize("args, why", [
    (["--known-only"], "(--known-only)"),
    (["--new", "0"], "(--new 0)"),
])
def test_a_prefix_with_no_lexicon_word_says_so_where_only_lexicon_words_may_come(lexicon_ckpt, args, why):
    result = run("complete", "bb", "ab", "-c", lexicon_ckpt, *args)
    assert result.exit_code == 0
    assert result.stderr == f"Note: 'bb': no word of the lexicon starts so {why}\n"
    assert result.stdout.startswith("ab\t")
    assert run("complete", "bb", "-c", lexicon_ckpt).stderr == ""  # the mixture proposes an invented string


def test_a_flat_list_proposes_only_its_words_by_default(tmp_path, model):
    from rnnac.storage.lexicon import LexiconData

    path = tmp_path / "flat.npz"
    meta = {"chars": VOCAB.chars, "activation": "tanh", "hidden_size": 8, "dtype": "float32",
            "config": {"data": {"lowercase": True}}, "step": 1, "epoch": 0, "best_val_loss": 1.5,
            "rng_state": {}, "mixture_lambda": 0.9}
    save_checkpoint(path, model.params, meta, lexicon=LexiconData(["abba", "abc", "acca"], [1.0] * 3, [False] * 3))
    result = run("complete", "a", "bb", "-c", str(path))
    assert result.exit_code == 0
    assert sorted(line.split("\t")[1] for line in result.stdout.splitlines()) == ["abba", "abc", "acca"]
    assert result.stderr == "Note: 'bb': no word of the lexicon starts so (a list without counts: --new N allows invented strings)\n"
    assert run("complete", "bb", "--new", "1", "-c", str(path)).stdout.endswith("*\n")


def test_known_only_needs_a_lexicon(ckpt):
    result = run("complete", "a", "--known-only", "-c", ckpt)
    assert result.exit_code == 2 and "carries no lexicon" in result.stderr


PHRASES = {"ab ca": 5.0, "Ca bb": 3.0, "b a": 2.0, "abc": 1.0, "c-ab a": 4.0}


@pytest.fixture
def phrases_ckpt(tmp_path):
    """A checkpoint whose lexicon holds entries of several words (its vocabulary has a space and a -)."""
    from rnnac.storage.lexicon import LexiconData

    vocab = rnnac.Vocab(" -abc")
    model = rnnac.RNN.init(len(vocab), 8, seed=1, dtype=np.float64)
    meta = {"chars": vocab.chars, "activation": "tanh", "hidden_size": 8, "dtype": "float64",
            "config": {"data": {"lowercase": True}}, "step": 1, "epoch": 1, "best_val_loss": None, "rng_state": {},
            "mixture_lambda": 0.7}
    lexicon = LexiconData.from_unsorted(list(PHRASES), list(PHRASES.values()), [False] * len(PHRASES))
    path = tmp_path / "phrases.npz"
    save_checkpoint(path, model.params, meta, lexicon=lexicon)
    return str(path), complete.Completer.load(path)


def test_complete_matches_word_starts(phrases_ckpt, tmp_path):
    path, completer = phrases_ckpt
    expected = {q: completer.complete(q, 3, match="word-start").completions for q in ("a", "B", "c a")}
    assert [c.word for c in expected["c a"]] == ["c-ab a"]  # a word starting c, then a later one starting a: not Ca bb
    plain = run("complete", "-c", path, "--match", "word-start", "-k", "3", "a", "B", "c a")
    assert plain.exit_code == 0 and plain.stderr == ""
    assert plain.stdout.splitlines() == [f"{q}\t{c.word}" for q, found in expected.items() for c in found]
    tsv = run("complete", "-c", path, "--match", "word-start", "-k", "3", "--format", "tsv", "B")
    rows = [line.split("\t") for line in tsv.stdout.splitlines()]
    assert [(r[2], r[5], r[7], r[9]) for r in rows] == [(c.word, "true", "B", str(c.match)) for c in expected["B"]]
    assert ("Ca bb", "3") in [(r[2], r[9]) for r in rows]  # the word that matched starts at 3
    (obj,) = words_of(run("complete", "-c", path, "--match", "word-start", "-k", "3", "--format", "json", "c a"))
    assert [(c["word"], c["match"]) for c in obj["completions"]] == [(c.word, c.match) for c in expected["c a"]]
    assert [c["logprob"] for c in obj["completions"]] == pytest.approx([c.logprob for c in expected["c a"]])
    given = tmp_path / "given.txt"
    given.write_text("bb aa\naa\n")
    only = run("complete", "-c", path, "--match", "word-start", "--lexicon", str(given), "a")
    assert only.exit_code == 0 and sorted(only.stdout.splitlines()) == ["aa", "bb aa"]
    bad = run("complete", "-c", path, "--match", "word-start", "a!", "a")
    assert bad.exit_code == 1 and bad.stderr == "Error: 'a!' holds '!', which is not in the vocabulary\n"
    assert bad.stdout.splitlines() == [f"a\t{c.word}" for c in completer.complete("a", match="word-start").completions]


@pytest.mark.parametrize("args, message", [
    (["--match", "words"], "Invalid value for '--match': 'words' is not one of 'prefix', 'word-start'"),
    (["--match", "word-start", "--max-edits", "1"], "--match word-start and --max-edits cannot be used together"),
    (["--match", "word-start", "--beam", "2"], "--match word-start and --beam cannot be used together"),
])
def test_match_usage_errors(phrases_ckpt, args, message):
    result = run("complete", "-c", phrases_ckpt[0], "a", *args)
    assert result.exit_code == 2 and message in result.stderr and result.stdout == ""


def test_word_starts_need_a_lexicon(ckpt):
    result = run("complete", "a", "--match", "word-start", "-c", ckpt)
    assert result.exit_code == 2 and "--match word-start needs a lexicon: this model carries none" in result.stderr


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
        assert [r[0] for r in rows] == ["ab", "ab", "ca!", "b", "b"] and all(len(r) == 10 for r in rows)
        assert rows[2] == ["ca!", "", "", "", "", "", "", "", "'ca!' holds '!', which is not in the vocabulary", ""]
    skipped = run("complete", "-", "--format", fmt, "-k", "2", "-c", ckpt, "--skip-unknown", input="ab\nca!\nb\n")
    assert skipped.exit_code == 0 and "ca!" not in skipped.stdout and skipped.stderr == ""


# --- one flag, one meaning, on every command ---------------------------------------------


def test_a_run_folder_stands_for_its_best_checkpoint(ckpt, tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    Path(ckpt).rename(run_dir / "best.npz")
    for args in (["complete", "ab", "-c", str(run_dir)], ["sample", "-n", "2", "-c", str(run_dir)],
                 ["info", "-c", str(run_dir)], ["info", str(run_dir)]):
        result = run(*args)
        assert result.exit_code == 0, (args, result.stderr)
    assert f"path: {run_dir / 'best.npz'}" in run("info", str(run_dir)).stdout.splitlines()
    empty = tmp_path / "empty"
    empty.mkdir()
    missing = run("complete", "ab", "-c", str(empty))
    assert missing.exit_code == 1 and missing.stderr == f"Error: cannot load checkpoint {empty / 'best.npz'}: no such file\n"


@pytest.mark.parametrize("command", [["complete", "ab"], ["sample", "-n", "2"], ["info"], ["score", "ab"]])
def test_a_run_folder_stopped_before_its_first_validation_names_its_last_checkpoint(ckpt, tmp_path, command):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    Path(ckpt).rename(run_dir / "last.npz")  # what Ctrl-C before the first validation leaves
    result = run(*command, "-c", str(run_dir))
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr == (f"Error: {run_dir} has no best.npz yet (its run stopped before its first validation), but it "
                             f"has {run_dir / 'last.npz'}: use that checkpoint (-c {run_dir / 'last.npz'}), or resume the "
                             f"run (rnnac train --resume {run_dir})\n")
    assert run(*command, "-c", str(run_dir / "last.npz")).exit_code == 0  # the fix it names
    from_env = run(*command, env={"RNNAC_CHECKPOINT": str(run_dir)})
    assert from_env.exit_code == 1 and from_env.stderr.startswith(f"Error: $RNNAC_CHECKPOINT: {run_dir} has no best.npz yet")


def test_info_takes_the_checkpoint_either_way_but_once(ckpt, tmp_path):
    positional, flag = run("info", ckpt), run("info", "-c", ckpt)
    assert positional.exit_code == flag.exit_code == 0 and positional.stdout == flag.stdout
    from_env = run("info", env={"RNNAC_CHECKPOINT": ckpt})
    assert from_env.stdout == flag.stdout
    over_env = run("info", ckpt, env={"RNNAC_CHECKPOINT": str(tmp_path / "nope.npz")})  # the argument wins
    assert over_env.exit_code == 0 and over_env.stdout == flag.stdout
    both = run("info", ckpt, "-c", ckpt)
    assert both.exit_code == 2 and "give the checkpoint once" in both.stderr and both.stdout == ""


@pytest.mark.parametrize("command", [["complete", "ab"], ["sample"], ["info"], ["evaluate", "words.txt"]])
def test_an_error_about_the_checkpoint_the_variable_names_says_so(command, tmp_path):
    result = run(*command, env={"RNNAC_CHECKPOINT": str(tmp_path / "nope.npz")})
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr == f"Error: $RNNAC_CHECKPOINT: cannot load checkpoint {tmp_path / 'nope.npz'}: no such file\n"
    given = run(*command, "-c", str(tmp_path / "nope.npz"))
    assert given.exit_code == 1 and given.stderr == f"Error: cannot load checkpoint {tmp_path / 'nope.npz'}: no such file\n"


def test_info_formats(ckpt):
    tsv = run("info", "-c", ckpt, "--format", "tsv")
    assert tsv.exit_code == 0 and tsv.stderr == ""
    rows = dict(line.split("\t") for line in tsv.stdout.splitlines())
    assert rows["chars"] == "abc" and rows["step"] == "42" and rows["config.data.lowercase"] == "true"
    plain = run("info", "-c", ckpt).stdout.splitlines()
    assert [line.split(": ", 1)[0] for line in plain] == list(rows)  # the same facts, in the same order
    as_json = run("info", "-c", ckpt, "--format", "json")
    assert json.loads(as_json.stdout)["step"] == 42 and as_json.stdout == run("info", "-c", ckpt, "--json").stdout


def test_sample_count_and_formats(ckpt):
    short = run("sample", "-n", "4", "--seed", "3", "-c", ckpt)
    long = run("sample", "--count", "4", "--seed", "3", "-c", ckpt, "--format", "tsv")
    assert short.exit_code == long.exit_code == 0 and short.stdout == long.stdout and len(short.stdout.splitlines()) == 4
    as_json = run("sample", "--count", "4", "--seed", "3", "-c", ckpt, "--format", "json")
    assert [json.loads(line) for line in as_json.stdout.splitlines()] == [
        {"version": 1, "word": w} for w in short.stdout.splitlines()]


def test_every_short_flag_has_a_long_form():
    for name, command in cli.commands.items():
        for param in command.params:
            if isinstance(param, click.Option):
                assert any(o.startswith("--") for o in param.opts), (name, param.opts)


# --- pipelines line up ---------------------------------------------------------------------


def test_tsv_header_names_the_columns(ckpt):
    result = run("complete", "ab", "c", "-c", ckpt, "-k", "2", "--format", "tsv", "--header")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0] == "prefix\trank\tword\tprob\tlogprob\tknown\tedits\tcorrected\terror\tmatch" and len(lines) == 5
    assert lines[1:] == run("complete", "ab", "c", "-c", ckpt, "-k", "2", "--format", "tsv").stdout.splitlines()
    wrong = run("complete", "ab", "-c", ckpt, "--header")
    assert wrong.exit_code == 2 and "--header goes with --format tsv" in wrong.stderr


def test_surrounding_whitespace_of_a_prefix_is_stripped(ckpt, completer):
    piped = run("complete", "-c", ckpt, "-k", "2", "--format", "json", input="  ab \t\r\n\tc\n")
    assert piped.exit_code == 0, piped.stderr
    records = words_of(piped)
    assert [r["prefix"] for r in records] == ["ab", "c"]
    assert [c["word"] for c in records[0]["completions"]] == [w for w, _ in pairs(completer.complete("ab", k=2))]
    assert run("complete", " ab ", "-c", ckpt, "-k", "2").stdout == run("complete", "ab", "-c", ckpt, "-k", "2").stdout


def test_complete_help_says_when_stdin_is_read():
    text = " ".join(run("complete", "--help").stdout.split())
    assert "with no PREFIX when stdin is not a terminal" in text and "Surrounding whitespace is stripped" in text


@pytest.mark.parametrize("fmt", ["json", "tsv"])
def test_a_pipeline_gets_one_record_per_input_line_in_order(ckpt, fmt):
    """A real pipe: a failing line in the middle keeps its place, so `paste`/`jq` line up."""
    lines = ["ab", "b", "ca!", "", "c", "zz", "a"]
    done = subprocess.run([*rnnac_command(), "complete", "-c", ckpt, "-k", "1", "--format", fmt],
                          input="\n".join(lines) + "\n", capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1
    assert done.stderr.splitlines() == [f"Error: {p!r} holds {p[-1]!r}, which is not in the vocabulary" for p in ("ca!", "zz")]
    if fmt == "json":
        prefixes = [json.loads(line)["prefix"] for line in done.stdout.splitlines()]
        errors = [("error" in json.loads(line)) for line in done.stdout.splitlines()]
    else:
        rows = [line.split("\t") for line in done.stdout.splitlines()]
        prefixes, errors = [r[0] for r in rows], [r[8] != "" for r in rows]
    assert prefixes == lines and errors == [p in ("ca!", "zz") for p in lines]


# --- help that teaches -----------------------------------------------------------------------


def test_each_command_summary_fits_and_its_help_ends_with_examples():
    text = run("--help").stdout
    listing = text[text.index("Commands:"):]
    assert "..." not in listing and max(map(len, text.splitlines())) <= 80
    for name, command in cli.commands.items():
        summary = command.help.split("\n")[0]
        assert summary.endswith(".") and len(summary) <= 60, name
        assert f"  {name}" in listing and summary[:-1] in " ".join(listing.split()), name
        text = run(name, "--help").stdout
        assert text.splitlines()[2].strip() == summary, name  # Usage, a blank line, the summary
        examples = text[text.index("Examples:"):text.index("Options:")].split("\n")[1:]
        assert 2 <= len([line for line in examples if line.strip().startswith("rnnac ")]) <= 4, name


def test_train_help_says_where_the_fields_are():
    text = " ".join(run("train", "--help").stdout.split())
    assert "`rnnac init`" in text and "WORDLIST" in text


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_shell_completion_scripts_as_the_readme_gives_them(shell):
    if not rnnac_command()[0].endswith("rnnac"):
        pytest.skip("needs the installed rnnac script: the variable is named after it")
    done = subprocess.run(rnnac_command(), env={**os.environ, "_RNNAC_COMPLETE": f"{shell}_source"},
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0 and "_RNNAC_COMPLETE" in done.stdout and done.stderr == ""
    readme = (ROOT / "README.md").read_text()
    assert f"_RNNAC_COMPLETE={shell}_source rnnac" in readme


def test_shell_completion_completes_commands_and_options():
    if not rnnac_command()[0].endswith("rnnac"):
        pytest.skip("needs the installed rnnac script")
    env = {**os.environ, "_RNNAC_COMPLETE": "bash_complete", "COMP_WORDS": "rnnac tr", "COMP_CWORD": "1"}
    done = subprocess.run(rnnac_command(), env=env, capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.splitlines() == ["plain,train"]
    env.update(COMP_WORDS="rnnac sample --co", COMP_CWORD="2")
    done = subprocess.run(rnnac_command(), env=env, capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.splitlines() == ["plain,--count"]


# --- training on a list, shipped configs, rnnac init ---------------------------------------


def test_train_a_word_list_directly(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("my list.txt").write_text("".join(f"{w}\n" for w in ("cab", "abc", "bca", "aab", "cca", "bab") * 5))
    result = run("train", "my list.txt", "--set", "train.max_steps=40")
    assert result.exit_code == 0, result.stderr
    assert result.stderr.splitlines()[0] == ("my list.txt: 6 words; sized to them: model.hidden_size 32, train.batch_size 32, "
                                             "train.max_steps 40, data.val_fraction 0.1 (change any with --set)")
    assert result.stdout.startswith("stopped at step 40 (max_steps)") and result.stdout.count("\n") == 1
    assert (tmp_path / "runs" / "my list" / "best.npz").exists()
    quiet = run("train", "my list.txt", "--force", "-q", "--set", "train.max_steps=20")
    assert quiet.exit_code == 0 and quiet.stderr == "" and "step 20" in quiet.stdout
    facts = json.loads(run("info", "-c", "runs/my list", "--format", "json").stdout)  # a flat list: fitted on typing
    assert facts["lexicon_counts"] == "flat" and facts["new_default"] == 0
    assert facts["mixture_fit"].startswith("flat list: fitted on what users type") and facts["mixture_lambda"] <= 0.95


def test_train_a_frequency_list_of_any_form(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("counts").write_text("     30 cab\n      2 abc\n      1 bca\n")  # sort | uniq -c | sort -rn
    result = run("train", "counts", "--set", "train.max_steps=10", "-q")
    assert result.exit_code == 0, result.stderr
    facts = json.loads(run("info", "-c", "runs/counts", "--format", "json").stdout)
    assert facts["lexicon_words"] == 3 and facts["config"]["data"]["weighting"] == "count"
    assert facts["lexicon_counts"] == "counted" and facts["new_default"] == 1
    Path("spreadsheet.csv").write_text("word,count\ncab,30\nabc,2\n")
    assert run("train", "spreadsheet.csv", "--set", "train.max_steps=10", "-q").exit_code == 0
    facts = json.loads(run("info", "-c", "runs/spreadsheet", "--format", "json").stdout)
    assert facts["lexicon_words"] == 2
    again = run("train", "counts", "-q")  # the folder holds a run
    assert again.exit_code == 1 and "already holds a run" in again.stderr


def test_train_on_a_shell_history_counts_each_command_once_a_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    commands = ["git push", "ls", "cd ", "git push", "cd", "git push", "make"]
    Path("hist").write_text("".join(f"{5000 + i:5d}  {c}\n" for i, c in enumerate(commands)))  # `history` output
    result = run("train", "hist", "--set", "train.max_steps=10", "--set", "data.val_fraction=0")
    assert result.exit_code == 0, result.stderr
    assert result.stderr.startswith("hist: 5 words; sized to them")
    lexicon = checkpoint.load_checkpoint("runs/hist/best.npz").lexicon
    assert dict(zip(lexicon.words, lexicon.counts.tolist())) == {"git push": 3.0, "ls": 1.0, "cd ": 1.0, "cd": 1.0,
                                                                  "make": 1.0}  # not 5000, 5001, ...
    facts = json.loads(run("info", "-c", "runs/hist", "--format", "json").stdout)
    assert facts["config"]["data"]["weighting"] == "count"  # drawn as often as typed


def test_train_a_shipped_config_by_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run("train", "tiny", "--set", "train.max_steps=10")
    assert result.exit_code == 0, result.stderr
    assert "shipped config 'tiny'" in result.stderr and f"checkpoints in {tmp_path / 'runs' / 'tiny'}" in result.stdout
    unknown = run("train", "tinyy")
    assert unknown.exit_code == 1 and unknown.stdout == ""
    assert unknown.stderr == ("Error: no file 'tinyy', nor a shipped config (default, en, identifiers, names, tiny) "
                              "or word list (identifiers, names, words)\n")


def test_train_a_shipped_word_list_by_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run("train", "words", "-q", "--set", "data.max_words=300", "--set", "train.max_steps=10")
    assert result.exit_code == 0, result.stderr
    assert f"checkpoints in {tmp_path / 'runs' / 'words'}" in result.stdout
    facts = json.loads(run("info", "-c", "runs/words", "--format", "json").stdout)
    assert facts["config"]["data"]["path"] == str(ROOT / "data" / "words.tsv") and facts["lexicon_words"] == 300
    Path("words").mkdir()  # a folder of that name is not a word list
    assert run("train", "words", "-q", "--force", "--set", "data.max_words=300", "--set", "train.max_steps=10").exit_code == 0
    Path("words").rmdir()
    Path("words").write_text("cab\nabc\nbca\n")  # a file of that name wins
    own = run("train", "words", "-q", "--force", "--set", "train.max_steps=10")
    assert own.exit_code == 0, own.stderr
    assert json.loads(run("info", "-c", "runs/words", "--format", "json").stdout)["lexicon_words"] == 3


@pytest.mark.parametrize("target", ["d", "runs/nope"])
def test_train_a_folder_that_holds_no_run_or_nothing(tmp_path, monkeypatch, target):
    monkeypatch.chdir(tmp_path)
    Path("d").mkdir()
    result = run("train", target, "--resume")
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr == {"d": "Error: d is a folder but not a run folder (it holds no run-config.yaml): give a word list, "
                                  "a config, a run folder or a shipped name\n",
                             "runs/nope": "Error: no file or run folder 'runs/nope'\n"}[target]


def test_train_errors_are_one_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    missing = run("train", "nope.txt")
    assert missing.exit_code == 1 and missing.stderr == "Error: nope.txt: no such file\n"
    Path("bad.tsv").write_text("a\t1\nb\tmany\n")
    bad = run("train", "bad.tsv")
    assert bad.exit_code == 1 and bad.stderr == "Error: bad.tsv: line 2: count 'many' is not a number\n"
    Path("list.txt").write_text("abc\n")
    override = run("train", "list.txt", "--set", "model.hiden_size=3")
    assert override.exit_code == 1 and "did you mean 'model.hidden_size'?" in override.stderr


def test_init_prints_or_writes_a_config(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    reference = run("init")
    assert reference.exit_code == 0 and reference.stderr == ""
    assert reference.stdout.startswith("# rnnac config: every field") and "\ndata:\n  path: words.txt" in reference.stdout
    keys = [line.split(":")[0] for line in reference.stdout.splitlines() if line.startswith("  ")]
    assert keys == [line.split(":")[0] for line in (ROOT / "configs" / "default.yaml").read_text().splitlines()
                    if line.startswith("  ")]
    Path("mylist.txt").write_text("cab\nabc\n")
    written = run("init", "mylist.txt", "-o", "my.yaml")
    assert written.exit_code == 0 and written.stdout == ""
    assert written.stderr == "Wrote my.yaml; train with: rnnac train my.yaml\n"
    assert "  path: mylist.txt" in Path("my.yaml").read_text()
    again = run("init", "mylist.txt", "-o", "my.yaml")
    assert again.exit_code == 1 and again.stderr == "Error: 'my.yaml' exists: choose another file, or --force to overwrite it\n"
    assert run("init", "mylist.txt", "-o", "my.yaml", "--force").exit_code == 0
    missing = run("init", "nope.txt")
    assert missing.exit_code == 1 and missing.stderr == "Error: nope.txt: no such file\n" and missing.stdout == ""


# --- watching a run, fine-tuning from the command line ----------------------------------------


def test_train_logs_each_validation_when_stderr_is_not_a_terminal(tmp_path):
    (tmp_path / "mylist.txt").write_text("".join(f"{w}\n" for w in ("cab", "abc", "bca", "aab", "cca", "bab") * 5))
    done = subprocess.run([*rnnac_command(), "train", "mylist.txt", "--set", "train.max_steps=60", "--format", "json"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert f"run folder: {tmp_path / 'runs' / 'mylist'}" in lines
    validations = [line for line in lines if line.startswith("step ")]
    assert [line.split(":")[0] for line in validations] == [f"step {n}/60" for n in (30, 60)]
    assert all("train loss" in line and "val loss" in line and "chars/s" in line for line in validations)
    summary = json.loads(done.stdout)
    assert summary["version"] == 1 and summary["step"] == 60 and summary["stop_reason"] == "max_steps"
    assert summary["run_dir"] == str(tmp_path / "runs" / "mylist") and summary["best"].endswith("best.npz")
    quiet = subprocess.run([*rnnac_command(), "train", "mylist.txt", "--force", "-q", "--set", "train.max_steps=30"],
                           cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False)
    assert quiet.returncode == 0 and quiet.stderr == "" and quiet.stdout.startswith("stopped at step 30")


def test_fine_tune_from_a_run_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("base.txt").write_text("".join(f"{w}\n" for w in ("cab", "abc", "bca", "aab", "cca", "bab") * 5))
    assert run("train", "base.txt", "-q", "--set", "train.max_steps=20", "--set", "model.hidden_size=12").exit_code == 0
    Path("more.txt").write_text("abba\ncabba\n")
    tuned = run("train", "more.txt", "--init-from", "runs/base", "--set", "train.max_steps=10")
    assert tuned.exit_code == 0, tuned.stderr
    assert tuned.stderr.startswith("more.txt: 2 words; sized to them: train.batch_size 32, train.max_steps 10")
    assert f"starting from {tmp_path / 'runs' / 'base' / 'best.npz'}: its model (H=12, tanh, float32)" in tuned.stderr
    facts = json.loads(run("info", "-c", "runs/more", "--format", "json").stdout)
    assert facts["hidden_size"] == 12 and facts["config"]["train"]["init_from"] == str(tmp_path / "runs" / "base")
    Path("other.txt").write_text("xyz\nabc\n")
    refused = run("train", "other.txt", "--init-from", "runs/base")
    assert refused.exit_code == 1 and refused.stdout == ""
    assert refused.stderr.splitlines()[-1] == (
        f"Error: {tmp_path / 'other.txt'}: 1 of 2 words hold characters the model to start from does not know: "
        "'x', 'y', 'z'; leave those words out with data.allowed_chars (the model knows 'abc'), or train from scratch")
    assert not Path("runs/other").exists()


# --- the case typed ----------------------------------------------------------------------------


def test_words_follow_the_case_typed(ckpt, completer):
    def words(*args):
        result = run("complete", *args, "-c", ckpt, "-k", "3", "--format", "json")
        assert result.exit_code == 0, result.stderr
        return [[c["word"] for c in obj["completions"]] for obj in words_of(result)]

    folded = [w for w, _ in pairs(completer.complete("ab", k=3))]
    assert words("ab", "AB", "Ab", "aB") == [folded, [w.upper() for w in folded], ["Ab" + w[2:] for w in folded],
                                             ["aB" + w[2:] for w in folded]]
    single = words("A")[0]
    assert single == ["A" + w[1:] for w, _ in pairs(completer.complete("a", k=3))]  # one capital: Record, not RECORD
    tsv = run("complete", "AB", "-c", ckpt, "-k", "1", "--format", "tsv").stdout.split("\t")
    assert tsv[0] == "AB" and tsv[2] == folded[0].upper() and tsv[7] == "AB"


def test_a_cased_form_in_the_lexicon_wins(ckpt, tmp_path):
    (tmp_path / "names.txt").write_text("Cab\nCab\ncab\nabba\nABC\n")
    result = run("complete", "ca", "CA", "ab", "AB", "-c", ckpt, "--lexicon", str(tmp_path / "names.txt"), "--format", "json")
    assert result.exit_code == 0, result.stderr
    shown = {obj["prefix"]: [c["word"] for c in obj["completions"]] for obj in words_of(result)}
    assert shown["ca"] == shown["CA"] == ["Cab"]  # the most frequent written form
    assert sorted(shown["ab"]) == ["ABC", "abba"] and sorted(shown["AB"]) == ["ABBA", "ABC"]


def test_a_model_trained_with_case_gives_its_words_as_they_are(tmp_path):
    from rnnac.storage.checkpoint import LexiconData

    vocab = rnnac.Vocab("DELNORSWY_cdeiort")
    model = rnnac.RNN.init(len(vocab), 8, seed=0, dtype=np.float32)
    meta = {"chars": vocab.chars, "activation": "tanh", "hidden_size": 8, "dtype": "float32",
            "config": {"data": {"lowercase": False}}, "step": 1, "epoch": 0, "best_val_loss": 1.0, "rng_state": {},
            "mixture_lambda": 1.0}
    lexicon = LexiconData.from_unsorted(["O_RDONLY", "O_WRONLY", "OrderedDict", "OSError"], [5.0, 3.0, 2.0, 1.0], [False] * 4)
    save_checkpoint(tmp_path / "ids.npz", model.params, meta, lexicon=lexicon)
    result = run("complete", "O_RD", "Ord", "OS", "-c", str(tmp_path / "ids.npz"), "--known-only", "-k", "1")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == ["O_RD\tO_RDONLY", "Ord\tOrderedDict", "OS\tOSError"]  # not OSERROR
    lower = run("complete", "o_rd", "-c", str(tmp_path / "ids.npz"), "--known-only")
    assert lower.exit_code == 0 and lower.stdout == ""  # no folding: o_rd is not O_RD


def test_a_list_trained_lowercase_still_shows_its_capitals(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("products.txt").write_text("iPhone\niPhone\niphone\nipad\nMacBook\nmagic\n" * 3)
    assert run("train", "products.txt", "-q", "--set", "train.max_steps=20", "--set", "data.val_fraction=0").exit_code == 0
    result = run("complete", "-c", "runs/products", "--known-only", "ip", "IP", "ma", "MA")
    assert result.exit_code == 0, result.stderr
    shown = {}
    for line in result.stdout.splitlines():
        prefix, word = line.split("\t")
        shown.setdefault(prefix, set()).add(word)
    assert shown == {"ip": {"iPhone", "ipad"}, "IP": {"iPhone", "IPAD"}, "ma": {"MacBook", "magic"}, "MA": {"MacBook", "MAGIC"}}


def test_an_accented_list_completes_in_its_own_spelling_and_a_typed_accent_narrows(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    written = {"Café Royal": 30, "cafe": 40, "cafeteria": 20, "Crème brûlée": 15, "creme": 5, "Škoda": 10, "skate": 8,
               "Straße": 6, "straw": 7, "Øresund": 3}
    Path("list.tsv").write_text("".join(f"{w}\t{c}\n" for w, c in written.items()))
    trained = run("train", "list.tsv", "-q", "--set", "train.max_steps=30", "--set", "data.val_fraction=0")
    assert trained.exit_code == 0, trained.stderr
    facts = json.loads(run("info", "-c", "runs/list", "--format", "json").stdout)
    assert facts["config"]["data"]["fold_accents"] is True and not set("éèûšßø") & set(facts["chars"])
    plain = run("complete", "-c", "runs/list", "-k", "10", "--known-only", "cafe")
    assert plain.exit_code == 0, plain.stderr
    assert "Café Royal" in plain.stdout.splitlines() and "cafe" in plain.stdout.splitlines()
    accented = run("complete", "-c", "runs/list", "-k", "10", "café")
    assert accented.exit_code == 0 and accented.stderr == ""
    assert accented.stdout.splitlines() == ["Café Royal"]  # not cafe, not cafeteria: only words written café...
    others = run("complete", "-c", "runs/list", "-k", "3", "--known-only", "sko", "ø", "straß", "CRÈ")
    assert others.stdout.splitlines() == ["sko\tŠkoda", "ø\tØresund", "straß\tStraße", "CRÈ\tCrème brûlée"]
    scored = [json.loads(line) for line in run("score", "-c", "runs/list", "--format", "json", "Crème", "creme").stdout.splitlines()]
    assert scored[0]["logprob"] == scored[1]["logprob"]  # read as the model reads it
