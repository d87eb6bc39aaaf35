"""`rnnac score` and rnnac.inference.score: word log-probabilities by hand from model.step, the mixture's
per-character surprisals from prefix masses, and the command's records and exit codes."""

import json
import math

import numpy as np
import pytest
from click.testing import CliRunner

import rnnac
from rnnac.inference.completer import Completer
from rnnac.inference.score import score_words
from rnnac.interfaces.cli import cli
from rnnac.storage.checkpoint import save_checkpoint
from rnnac.storage.folding import Folding
from rnnac.storage.lexicon import Lexicon, LexiconData

VOCAB = rnnac.Vocab("abc")
LEXICON = {"ab": 30, "abc": 5, "ba": 40, "cab": 12}
TRAINING = {"step": 42, "epoch": 3, "best_val_loss": 1.5, "rng_state": {}}  # what a checkpoint's meta must hold


@pytest.fixture(scope="module")
def model():
    model = rnnac.RNN.init(len(VOCAB), 6, seed=2, dtype=np.float64)
    rng = np.random.default_rng(7)
    for p in model.params.values():
        p[:] = rng.normal(0, 1.0, p.shape)
    return model


def by_hand(model, word):
    """The log-prob of each character of `word`, then of its end, one model.step at a time."""
    a, logp = model.step(model.initial_state(1), np.array([0]))
    steps = []
    for ch in word:
        token = VOCAB.index[ch]
        steps.append(logp[0, token])
        a, logp = model.step(a, np.array([token]))
    return [*steps, logp[0, 0]]


def test_the_models_score_is_the_sum_of_its_steps(model):
    completer = Completer(model, VOCAB)
    words = ["abc", "a", "cabbac", "Bb", "bbbbbbbbbbbb"]
    for result, word in zip(score_words(completer, words), words):
        steps = by_hand(model, word.lower())
        assert result.logprob == pytest.approx(sum(steps), abs=1e-12)
        assert result.surprisal == pytest.approx([-s for s in steps], abs=1e-12)
        assert result.nats_per_char == pytest.approx(-sum(steps) / (len(word) + 1), abs=1e-12)
        assert result.chars == word.lower() and result.word == word


def test_the_mixtures_surprisals_are_ratios_of_prefix_masses(model):
    lam = 0.3
    lexicon = Lexicon(list(LEXICON), VOCAB, counts=list(LEXICON.values()))
    completer = Completer(model, VOCAB, lexicon=lexicon, mixture_lambda=lam)
    total = sum(LEXICON.values())

    def mass(prefix):  # P(prefix*) by the definitions
        lex = sum(c for w, c in LEXICON.items() if w.startswith(prefix)) / total
        return lam * lex + (1 - lam) * math.exp(sum(by_hand(model, prefix)[:-1]))

    for word in ["abc", "ab", "cab", "ccc", "b"]:
        result = score_words(completer, [word], lexicon)[0]
        whole = lam * LEXICON.get(word, 0) / total + (1 - lam) * math.exp(sum(by_hand(model, word)))
        assert result.logprob == pytest.approx(math.log(whole), abs=1e-12)
        masses = [mass(word[:t]) for t in range(len(word) + 1)] + [whole]
        assert result.surprisal == pytest.approx([-math.log(b / a) for a, b in zip(masses, masses[1:])], abs=1e-12)
    with pytest.raises(ValueError, match="mixture_lambda"):
        score_words(completer, ["ab"], lexicon, mixture_lambda=1.0)


def test_unknown_characters_are_errors_not_scores(model):
    results = score_words(Completer(model, VOCAB), ["ab", "axb", ""])
    assert results[0].error is None and "'x'" in results[1].error and math.isnan(results[1].logprob)
    assert results[2].error == "the empty word is not a word"


def test_a_model_that_folds_accents_scores_a_word_as_it_reads_it(model):
    folding = Folding(lowercase=True, accents=True)
    accented = score_words(Completer(model, VOCAB, folding), ["Cáb", "ÀBÇ", "Bb"])
    plain = score_words(Completer(model, VOCAB), ["cab", "abc", "bb"])
    assert [(r.logprob, r.surprisal, r.chars) for r in accented] == [(r.logprob, r.surprisal, r.chars) for r in plain]
    assert "'á'" in score_words(Completer(model, VOCAB), ["Cáb"])[0].error  # a model that reads accents as they are


@pytest.fixture
def ckpt(tmp_path, model):
    path = tmp_path / "model.npz"
    stored = LexiconData.from_unsorted(list(LEXICON), list(LEXICON.values()), [False] * len(LEXICON))
    meta = {"chars": VOCAB.chars, "activation": "tanh", "hidden_size": 6, "dtype": "float64",
            "config": {"data": {"lowercase": True}}, "mixture_lambda": 0.25, **TRAINING}
    save_checkpoint(path, model.params, meta, lexicon=stored)
    return str(path)


def run(*args, input=None):
    return CliRunner().invoke(cli, ["score", *args], input=input)


def test_score_command_formats(ckpt, model):
    plain = run("-c", ckpt, "abc", "ba")
    assert plain.exit_code == 0 and plain.stderr == ""
    rows = [line.split("\t") for line in plain.stdout.splitlines()]
    assert [r[0] for r in rows] == ["abc", "ba"]
    assert float(rows[0][1]) == pytest.approx(-sum(by_hand(model, "abc")) / 4, abs=1e-3)

    tsv = run("-c", ckpt, "--format", "tsv", "--header", "--chars", "abc")
    header, row = tsv.stdout.splitlines()
    assert header.split("\t") == ["word", "nats_per_char", "logprob", "prob", "chars", "error"]
    word, per_char, logprob, prob, chars, error = row.split("\t")
    assert (word, error) == ("abc", "") and float(logprob) == pytest.approx(sum(by_hand(model, "abc")), abs=1e-6)
    assert float(prob) == pytest.approx(math.exp(float(logprob)), rel=1e-5)
    assert [float(x) for x in chars.split()] == pytest.approx([-s for s in by_hand(model, "abc")], abs=1e-3)

    record = json.loads(run("-c", ckpt, "--format", "json", "--chars", "--mixture", "ab").stdout)
    lam, total = 0.25, sum(LEXICON.values())
    assert record["logprob"] == pytest.approx(math.log(lam * 30 / total + (1 - lam) * math.exp(sum(by_hand(model, "ab")))))
    assert [c["char"] for c in record["chars"]] == ["a", "b", ""]
    assert sum(c["nats"] for c in record["chars"]) == pytest.approx(-record["logprob"])
    again = json.loads(run("-c", ckpt, "--format", "json", "--mixture", "--lambda", "0", "ab").stdout)
    assert again["logprob"] == pytest.approx(sum(by_hand(model, "ab"))) and "chars" not in again


def test_score_reads_stdin_and_reports_bad_words(ckpt):
    result = run("-c", ckpt, "--format", "tsv", "-", input="abc\naz\n\n  ba \n")  # a blank line is no word: skipped
    assert result.exit_code == 1
    rows = [line.split("\t") for line in result.stdout.splitlines()]
    assert [r[0] for r in rows] == ["abc", "az", "ba"] and rows[1][1:4] == ["", "", ""] and "'z'" in rows[1][4]
    assert result.stderr.count("Error:") == 1 and "'z'" in result.stderr
    assert run("-c", ckpt, "--format", "json", "az").stdout.startswith('{"version": 1, "word": "az", "error":')


@pytest.mark.parametrize("args, message", [
    (["--lambda", "0.5", "ab"], "--lambda goes with --mixture"),
    (["--header", "ab"], "--header goes with --format tsv"),
    (["--mixture", "--lambda", "1", "ab"], "--lambda"),
    (["-", "ab"], "cannot be mixed"),
])
def test_score_usage_errors(ckpt, args, message):
    result = run("-c", ckpt, *args)
    assert result.exit_code == 2 and message in result.stderr


def test_mixture_needs_a_lexicon(tmp_path, model):
    path = tmp_path / "bare.npz"
    save_checkpoint(path, model.params, {"chars": VOCAB.chars, "activation": "tanh", "hidden_size": 6, "dtype": "float64",
                                         "config": {"data": {"lowercase": True}}, **TRAINING})
    result = run("-c", str(path), "--mixture", "ab")
    assert result.exit_code == 2 and "no lexicon" in result.stderr
    assert run("-c", str(path), "ab").exit_code == 0
