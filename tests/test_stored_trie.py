"""The trie stored in a checkpoint beside its words (LexiconData.trie): read back it is the trie
the words would build, a crafted one is refused or at worst wrong (never read out of its
arrays), and a file replaced since it was loaded makes the completer build the trie instead."""

import json
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rnnac
from rnnac.engine.vocab import Vocab
from rnnac.errors import CheckpointError
from rnnac.inference.completer import Completer
from rnnac.inference.lexicons import with_stored_trie
from rnnac.storage.checkpoint import load_checkpoint, save_checkpoint
from rnnac.storage.lexicon import TRIE_ENTRY_PREFIX, Lexicon, LexiconData, StoredTrie, WordText, trie_problem
from test_checkpoint import CHARS, make_checkpoint

VOCAB = Vocab("abcé")
SAVED = Vocab(CHARS)  # the vocabulary of make_checkpoint's model
WORDS = st.lists(st.text(st.sampled_from("abcéAÉd"), min_size=0, max_size=6), max_size=25)


def every_answer(lexicon: Lexicon) -> dict:
    """What each method of `lexicon` says of every node (-1 and the dead end included) and token."""
    nodes = np.arange(-1, lexicon.n_nodes + 1)
    tokens = np.arange(lexicon.K)
    grid_nodes, grid_tokens = np.meshgrid(nodes, tokens, indexing="ij")
    answers = {"child": lexicon.child(grid_nodes, grid_tokens), "child_rows": lexicon.child_rows(nodes),
               "ends": lexicon.ends(nodes), "count": lexicon.count(nodes), "max_below": lexicon.max_below(nodes),
               "mass": lexicon.mass(nodes), "display": lexicon.display(nodes), "total": lexicon.total,
               "skipped": lexicon.skipped, "written": list(lexicon.written), "longest": lexicon.longest}
    if lexicon.has_word_logp:
        answers["rnn_max_below"] = lexicon.rnn_max_below(nodes)
    return answers


def assert_same_answers(got: Lexicon, want: Lexicon):
    a, b = every_answer(got), every_answer(want)
    assert a.keys() == b.keys()
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


@settings(max_examples=150, deadline=None)
@given(words=WORDS, data=st.data())
def test_a_trie_read_back_from_its_arrays_answers_as_the_one_built(words, data):
    counts = data.draw(st.lists(st.sampled_from([0.0, 1.0, 2.5, 7.0]), min_size=len(words), max_size=len(words)))
    logp = data.draw(st.none() | st.lists(st.sampled_from([-np.inf, -3.0, -0.5, 0.0]),
                                          min_size=len(words), max_size=len(words)))
    lowercase = data.draw(st.booleans())
    built = Lexicon(words, VOCAB, lowercase, counts, word_logp=logp)
    assert trie_problem(built.arrays(), len(words), len(VOCAB)) is None
    read = Lexicon.from_arrays(built.arrays(), built.written, len(VOCAB), built.skipped, built.total, built.longest)
    assert_same_answers(read, built)


def small_trie():
    built = Lexicon(["ab", "AB", "abc", "Ac", "b", "ba", "bé"], VOCAB, counts=[1, 2, 3, 4, 5, 6, 7],
                    word_logp=[-1, -2, -3, -4, -5, -6, -7])
    return built, {name: array.copy() for name, array in built.arrays().items()}


def changed(arrays, name, at, value):
    arrays[name][at] = value
    return arrays


def dropped(arrays, name):
    del arrays[name]
    return arrays


def as_type(arrays, name, dtype):
    arrays[name] = arrays[name].astype(dtype)
    return arrays


@pytest.mark.parametrize("change, fragment", [
    (lambda a: dropped(a, "seg"), "are not"),
    (lambda a: as_type(a, "count", np.float32), "count must be 1-d <f8"),
    (lambda a: changed(a, "seg", -1, 99), "runs that do not fit"),
    (lambda a: changed(a, "seg", 1, 1), "runs that do not fit"),
    (lambda a: changed(a, "token", 2, 5), "tokens must be ids from 1 to 4"),
    (lambda a: changed(a, "token", 2, 0), "tokens must be ids"),
    (lambda a: changed(a, "branch_key", 0, -1), "increasing keys"),
    (lambda a: changed(a, "branch_child", 0, 10**6), "increasing keys and nodes"),
    (lambda a: changed(a, "branch_child", 1, 2), "a run's first node"),
    (lambda a: changed(a, "branch_key", -1, a["branch_key"][-1] + 1), "a run's first node"),
    (lambda a: changed(a, "piece_start", 1, 0), "pieces"),
    (lambda a: changed(a, "piece_mass", 0, np.nan), "finite and >= 0"),
    (lambda a: changed(a, "count", 0, -1.0), "finite and >= 0"),
    (lambda a: changed(a, "piece_rnn_max", 0, 0.5), "log-probabilities <= 0"),
    (lambda a: changed(a, "display", 0, 7), "display must give"),
])
def test_arrays_that_are_no_trie_are_refused(change, fragment):
    built, arrays = small_trie()
    arrays = change(arrays)
    assert fragment in trie_problem(arrays, 7, len(VOCAB))
    with pytest.raises(ValueError, match="trie"):
        Lexicon.from_arrays(arrays, built.written, len(VOCAB), 0, 1.0, 3)


@settings(max_examples=300, deadline=None)
@given(name=st.sampled_from(["seg", "token", "branch_key", "branch_child", "piece_start", "display"]), data=st.data())
def test_a_crafted_trie_that_passes_the_checks_never_reads_out_of_its_arrays(name, data):
    built, arrays = small_trie()
    at = data.draw(st.integers(0, len(arrays[name]) - 1))
    arrays[name][at] = data.draw(st.integers(0 if name == "token" else -3, 40))
    if trie_problem(arrays, 7, len(VOCAB)) is None:  # a wrong trie, maybe, but every answer is read within bounds
        every_answer(Lexicon.from_arrays(arrays, built.written, len(VOCAB), 0, 1.0, 3))


# --- in a checkpoint ---------------------------------------------------------------------


def lexicon_data():
    lexicon = LexiconData.from_unsorted(["ab", "abc", "Ac", "b", "ba", "bé", "cab", "x"], [1, 2, 3, 4, 5, 6, 7, 8],
                                        [False] * 7 + [True])
    lexicon.rnn_logp = -np.arange(1, 9, dtype=np.float32)
    return lexicon


def test_a_checkpoint_stores_the_trie_and_loading_reads_it_instead_of_building(tmp_path, monkeypatch):
    plain, stored = tmp_path / "plain.npz", tmp_path / "stored.npz"
    save_checkpoint(plain, *make_checkpoint(), lexicon=lexicon_data())
    save_checkpoint(stored, *make_checkpoint(), lexicon=with_stored_trie(lexicon_data(), SAVED, True))
    with np.load(stored) as npz:
        assert {name for name in npz.files if name.startswith(TRIE_ENTRY_PREFIX)} >= {TRIE_ENTRY_PREFIX + "seg"}
        assert json.loads(npz["meta"].item())["lexicon"]["trie"]["chars"] == "abc"
    want = Completer.load(plain)
    assert want.lexicon_words.trie is None
    expected = every_answer(want.lexicon)
    got = Completer.load(stored)
    monkeypatch.setattr(Lexicon, "__init__", lambda *a, **k: pytest.fail("the stored trie was built again"))
    assert_same_answers(got.lexicon, want.lexicon)
    assert every_answer(got.lexicon).keys() == expected.keys()
    monkeypatch.undo()
    prefixes = ["a", "b", "c", "x", "ab", "z"]
    assert [r.completions for r in got.complete_many(prefixes)] == [r.completions for r in want.complete_many(prefixes)]


def test_saving_a_loaded_checkpoint_keeps_its_stored_trie(tmp_path):
    first, second = tmp_path / "first.npz", tmp_path / "second.npz"
    save_checkpoint(first, *make_checkpoint(), lexicon=with_stored_trie(lexicon_data(), SAVED, True))
    save_checkpoint(second, *make_checkpoint(), lexicon=load_checkpoint(first).lexicon)
    assert_same_answers(Completer.load(second).lexicon, Completer.load(first).lexicon)


def test_a_trie_for_another_vocabulary_or_folding_is_not_used():
    trie = StoredTrie.of(Lexicon(["ab"], VOCAB), VOCAB, True)
    assert trie.lexicon(WordText.of(["ab"]), VOCAB, True) is not None
    assert trie.lexicon(WordText.of(["ab"]), VOCAB, False) is None
    assert trie.lexicon(WordText.of(["ab"]), Vocab("abcd"), True) is None


def test_a_checkpoint_replaced_after_loading_makes_the_completer_build_the_trie(tmp_path):
    path = tmp_path / "m.npz"
    save_checkpoint(path, *make_checkpoint(), lexicon=with_stored_trie(lexicon_data(), SAVED, True))
    completer = Completer.load(path)
    other = LexiconData.from_unsorted(["c"], [1.0], [False])
    save_checkpoint(path, *make_checkpoint(), lexicon=with_stored_trie(other, SAVED, True))  # atomically: a new file
    assert list(completer.lexicon.written) == list(lexicon_data().words)  # its own words, built, not the new file's trie
    assert completer.lexicon.n_words == 6 and completer.lexicon.skipped == 2  # bé and x: not in the vocabulary


def rewrite_trie(src, dst, meta_trie=None, **arrays):
    with np.load(src) as npz:
        entries = dict(npz)
    meta = json.loads(entries["meta"].item())
    if meta_trie is not None:
        meta["lexicon"]["trie"] = meta_trie
    entries["meta"] = np.array(json.dumps(meta))
    entries.update({TRIE_ENTRY_PREFIX + name: value for name, value in arrays.items()})
    np.savez(dst, **{name: value for name, value in entries.items() if value is not None})
    return dst


@pytest.fixture
def stored(tmp_path):
    path = tmp_path / "stored.npz"
    save_checkpoint(path, *make_checkpoint(), lexicon=with_stored_trie(lexicon_data(), SAVED, True))
    return path


@pytest.mark.parametrize("meta_trie, arrays, fragment", [
    ({"chars": "abc", "lowercase": True, "skipped": -1, "total": 36.0, "longest": 3}, {}, "meta lexicon trie needs"),
    ({"lowercase": True, "skipped": 0, "total": 36.0, "longest": 3}, {}, "meta lexicon trie needs"),
    ({"chars": "abc", "lowercase": True, "fold_accents": 1, "skipped": 0, "total": 36.0, "longest": 3}, {},
     "meta lexicon trie needs"),
    (None, {"seg": None}, "are not a trie's"),
    (None, {"count": np.zeros((2, 2))}, "lexicon.trie.count must be 1-d <f8"),
])
def test_a_trie_whose_layout_is_wrong_is_refused_at_load(stored, tmp_path, meta_trie, arrays, fragment):
    bad = rewrite_trie(stored, tmp_path / "bad.npz", meta_trie, **arrays)
    with pytest.raises(CheckpointError, match=fragment):
        load_checkpoint(bad, verify_lexicon=False)


def test_a_crafted_trie_gives_a_one_line_error_when_first_read(stored, tmp_path):
    with np.load(stored) as npz:
        child = npz[TRIE_ENTRY_PREFIX + "branch_child"].copy()
    child[0] = 10**6
    bad = rewrite_trie(stored, tmp_path / "bad.npz", branch_child=child)
    load_checkpoint(bad, verify_lexicon=False)  # the arrays are read when the whole trie is first needed
    prefixes = "".join(f"{a}{b}{c}\n" for a in "abc" for b in "abc" for c in "abc")  # more than a first call searches parts for
    done = subprocess.run([sys.executable, "-m", "rnnac", "complete", "-c", str(bad), "-"], input=prefixes,
                          capture_output=True, text=True)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.startswith(f"Error: cannot load checkpoint {bad}: lexicon trie: trie branch keys")
    assert done.stderr.count("\n") == 1


def test_a_finished_run_stores_the_trie_in_best_only(tmp_path):
    words = tmp_path / "words.txt"
    words.write_text("".join(f"{w}\n" for w in ["apple", "apply", "banana", "band", "bandana", "can", "candy", "cane"] * 3))
    run = tmp_path / "run"
    done = subprocess.run([sys.executable, "-m", "rnnac", "train", str(words), "--set", "model.hidden_size=4",
                           "--set", "train.max_steps=4", "--set", "train.eval_every=2", "--set", f"output.dir={run}",
                           "--quiet"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    best, last = load_checkpoint(run / "best.npz").lexicon, load_checkpoint(run / "last.npz").lexicon
    assert best.trie is not None and last.trie is None
    trained = rnnac.storage.checkpoint.load_trained(run / "best.npz")
    built = Lexicon(best.words, trained.vocab, trained.folding, best.counts, word_logp=best.rnn_logp)
    assert_same_answers_any_vocab(best.trie.lexicon(best.words, trained.vocab, trained.folding), built)
    assert best.trie.lexicon(best.words, trained.vocab, trained.folding.case) is None  # built for another folding


def assert_same_answers_any_vocab(got: Lexicon, want: Lexicon):
    nodes = np.arange(-1, want.n_nodes + 1)
    np.testing.assert_array_equal(got.child_rows(nodes), want.child_rows(nodes))
    for method in ("ends", "count", "max_below", "mass", "display", "rnn_max_below"):
        np.testing.assert_array_equal(getattr(got, method)(nodes), getattr(want, method)(nodes), err_msg=method)
    assert got.total == want.total

