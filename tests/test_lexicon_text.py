"""A word list kept as one text: WordText, byte-wise order checks and prefix ranges,
the checkpoint's format 3 (words stored as they are, each word's log P_rnn beside them), and a
lexicon built in the background while parts of the list answer."""

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rnnac
from rnnac.errors import CheckpointError
from rnnac.inference.lexicons import Lexicons
from rnnac.storage.checkpoint import load_checkpoint, save_checkpoint
from rnnac.storage.lexicon import LexiconData, WordText, _words_problem, common_prefix
from rnnac.storage.sorted_words import line_of, prefix_lines
from test_checkpoint import make_checkpoint, rewrite_lexicon

WORDS = st.text(st.sampled_from("ab\u00e9\u4e2d\U0001f600"), max_size=5)


@settings(max_examples=200, deadline=None)
@given(a=st.lists(st.binary(min_size=0, max_size=20).map(lambda b: b.replace(b"\0", b"\1")), min_size=1, max_size=20),
       data=st.data())
def test_common_prefix_equals_a_byte_by_byte_comparison(a, data):
    b = [data.draw(st.sampled_from([x, x + b"z", x[: len(x) // 2], b"q" + x])) for x in a]
    text = b"".join(x + b"\0" for x in a + b) + bytes(8)
    starts = np.cumsum([0] + [len(x) + 1 for x in a + b])[:-1]
    got = common_prefix(np.frombuffer(text, np.uint8), starts[: len(a)], starts[len(a):])
    expected = [next((i for i, (p, q) in enumerate(zip(x, y)) if p != q), min(len(x), len(y))) for x, y in zip(a, b)]
    assert got.tolist() == expected


@settings(max_examples=200, deadline=None)
@given(words=st.lists(WORDS, max_size=30), prefix=WORDS)
def test_word_text_orders_and_prefix_lines_agree_with_python_strings(words, prefix):
    text = WordText.of(words)
    assert list(text) == words and len(text) == len(words) and [text[i] for i in range(-len(words), 0)] == words
    in_order = all(x < y for x, y in zip(words, words[1:]))
    assert (_words_problem(text) is None) == in_order == (_words_problem(words) is None)
    if in_order and words:
        first, lines = prefix_lines(text.data, prefix.encode())
        expected = [i for i, w in enumerate(words) if w.startswith(prefix)]
        assert [line.decode() for line in lines] == [words[i] for i in expected]
        assert not expected or list(range(first, first + len(lines))) == expected
        for i, w in enumerate(words):  # each word found where its line starts
            assert line_of(text.data, w.encode()) == text.starts[i]
        assert (line_of(text.data, prefix.encode()) is None) == (prefix not in words)


def test_format_3_stores_the_words_as_they_are_and_their_log_p_rnn(tmp_path):
    lexicon = LexiconData(["ab", "b", "ba"], [2.0, 1.0, 1.0], [False, True, False])
    lexicon.rnn_logp = np.array([-1.5, -0.25, -np.inf], dtype=np.float32)
    save_checkpoint(tmp_path / "m.npz", *make_checkpoint(), lexicon=lexicon)
    with np.load(tmp_path / "m.npz") as npz:
        assert npz["lexicon.words"].tobytes() == b"ab\nb\nba"
        assert npz["lexicon.rnn_logp"].dtype == np.dtype("<f4")
    read = load_checkpoint(tmp_path / "m.npz").lexicon
    assert read == lexicon and isinstance(read.words, WordText)
    np.testing.assert_array_equal(read.rnn_logp, lexicon.rnn_logp)
    lazily = load_checkpoint(tmp_path / "m.npz", verify_lexicon=False).lexicon
    lazily.check()  # the checks left for later pass on a whole file
    assert lazily == lexicon


@pytest.mark.parametrize("scores, fragment", [
    (np.array([np.nan, -1.0, -1.0], "<f4"), "NaN or log-probabilities above 0"),
    (np.array([0.5, -1.0, -1.0], "<f4"), "NaN or log-probabilities above 0"),
    (np.array([-1.0, -1.0], "<f4"), "lexicon.rnn_logp must be 3 float32"),
    (np.array([-1.0, -1.0, -1.0], "<f8"), "lexicon.rnn_logp must be 3 float32"),
])
def test_bad_word_scores_are_refused(tmp_path, scores, fragment):
    save_checkpoint(tmp_path / "m.npz", *make_checkpoint(), lexicon=LexiconData(["a", "b", "c"], [1, 1, 1], [0, 0, 0]))
    with np.load(tmp_path / "m.npz") as npz:
        entries = dict(npz)
    np.savez(tmp_path / "bad.npz", **entries, **{"lexicon.rnn_logp": scores})
    with pytest.raises(CheckpointError, match=fragment):
        load_checkpoint(tmp_path / "bad.npz")


def test_a_lazy_read_finds_a_forged_list_when_the_whole_list_is_first_used(tmp_path):
    save_checkpoint(tmp_path / "m.npz", *make_checkpoint(), lexicon=LexiconData(["a", "b"], [1, 1], [0, 0]))
    forged = rewrite_lexicon(tmp_path / "m.npz", tmp_path / "forged.npz", text=b"b\na")  # a matching sha256
    lexicon = load_checkpoint(forged, verify_lexicon=False).lexicon  # read: only its layout checked
    with pytest.raises(CheckpointError, match="not sorted and distinct"):
        lexicon.check()
    lexicons = Lexicons(rnnac.Vocab("ab"), True)
    lexicons.stored = load_checkpoint(forged, verify_lexicon=False).lexicon
    with pytest.raises(CheckpointError, match="not sorted and distinct"):
        lexicons.whole()


@pytest.mark.parametrize("text, prefixes, fragment", [
    (b"a\nb\nc", ["c"], "3 words and 2 counts, meta says 2 words"),  # a cold completion reads a line past the counts
    (b"a\nb\xfe", ["b"], "the words are not UTF-8"),  # or a line that is not UTF-8
    (b"ab", [*"abc", "aa", "ab", "ac", "ba", "bb", "bc", "ca", "cb", "cc", "aaa", "aab", "aac", "aba", "abb"], "1 words and 2 counts"),
])
def test_a_lazy_read_of_a_damaged_list_gives_a_one_line_error_when_it_reads_the_damage(tmp_path, text, prefixes, fragment):
    save_checkpoint(tmp_path / "m.npz", *make_checkpoint(), lexicon=LexiconData(["a", "b"], [1, 1], [0, 0]))
    bad = rewrite_lexicon(tmp_path / "m.npz", tmp_path / "bad.npz", text=text)
    lexicon = load_checkpoint(bad, verify_lexicon=False).lexicon  # its lines are counted later
    with pytest.raises(CheckpointError, match=fragment):
        lexicon.check()
    done = subprocess.run([sys.executable, "-m", "rnnac", "complete", "-c", str(bad), *prefixes],
                          capture_output=True, text=True)  # more than 16 prefixes: the whole list
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr.startswith(f"Error: cannot load checkpoint {bad}: lexicon: {fragment}") and done.stderr.count("\n") == 1


def test_while_the_whole_trie_is_built_in_the_background_parts_of_the_list_answer():
    vocab = rnnac.Vocab("abc")
    lexicons = Lexicons(vocab, True)
    lexicons.stored = LexiconData(["a", "ab", "abc", "b", "ca"], [5, 4, 3, 2, 1], [0, 0, 0, 0, 0])
    lexicons._building.acquire()  # as build_in_background holds it while the thread builds
    try:
        for _ in range(3):  # every call, not only the first, while the build runs
            part = lexicons.for_prefixes(["ab"], 1)
            assert part.n_words == 2 and part.total == 15.0  # the words below "ab", with the whole list's total
        assert lexicons.built is None
    finally:
        lexicons._building.release()
    thread = Lexicons(vocab, True)
    thread.stored = lexicons.stored
    thread.build_in_background().join()
    assert thread.built.n_words == 5 and thread.for_prefixes(["ab"], 1) is thread.built
