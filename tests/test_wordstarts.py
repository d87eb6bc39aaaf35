"""Word-start matching (rnnac.inference.wordstarts) against a brute force: every entry split at
its separators by hand, every choice of its words tried, each match scored from the definitions
with P_rnn read by model.step one character at a time."""

import itertools
import math
import os
import shutil
import tempfile

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rnnac
from rnnac.inference import completer as complete
from rnnac.inference.completer import Completer
from rnnac.inference.lexicons import with_stored_trie
from rnnac.inference.mixture import with_rnn_logp
from rnnac.inference.options import OptionError
from rnnac.inference.wordstarts import SEPARATORS, WordStarts, shown_offset, typed_words, word_offsets
from rnnac.storage.checkpoint import save_checkpoint
from rnnac.storage.lexicon import Lexicon, LexiconData, fold
from columns import flags

VOCAB = rnnac.Vocab(" -_./ab")  # every separator, and two letters
CATALOGUE = {"Apple iPhone 15": 10, "Samsung Galaxy S24": 8, "Samsung S24 case": 3, "apple-pie": 2, "S24 by Samsung": 1,
             "Google Pixel 8": 5, "./configure": 4}
CATALOGUE_VOCAB = rnnac.Vocab(" -./0123456789abcdefghijklmnopqrstuvwxyz")


def random_model(seed, vocab=VOCAB, scale=1.5, hidden_size=5):
    model = rnnac.RNN.init(len(vocab), hidden_size, seed=seed, dtype=np.float64)
    rng = np.random.default_rng(seed + 1)
    for p in model.params.values():
        p[:] = rng.normal(0, scale, p.shape)
    return model


def rnn_logp(model, vocab, word):
    """log P_rnn(word): its characters then its end, read from the boundary by model.step."""
    a, logp = model.step(model.initial_state(1), np.array([0]))
    total = 0.0
    for ch in word:
        token = vocab.index[ch]
        total += logp[0, token]
        a, logp = model.step(a, np.array([token]))
    return total + logp[0, 0]


def brute_force(model, vocab, entries, typed, mode, lam, exclude=()):
    """[(entry folded, log P(entry | typed), offset)], best first: each entry's words found by
    hand, every choice of len(typed words) of them in order tried, the earliest first word kept."""
    counts = {}
    for entry, count in entries.items():
        counts[entry.lower()] = counts.get(entry.lower(), 0) + count
    total = sum(counts.values())
    wanted = [w for w in "".join(" " if ch in SEPARATORS else ch for ch in typed.lower()).split(" ") if w]
    scored = []
    for entry, count in counts.items():
        starts = [i for i, ch in enumerate(entry) if ch not in SEPARATORS and (i == 0 or entry[i - 1] in SEPARATORS)]
        words = [(i, entry[i:next((j for j in range(i, len(entry)) if entry[j] in SEPARATORS), len(entry))]) for i in starts]
        offsets = [words[c[0]][0] if c else 0 for c in itertools.combinations(range(len(words)), len(wanted))
                   if all(words[j][1].startswith(q) for j, q in zip(c, wanted))]
        if offsets:
            p_rnn = math.exp(rnn_logp(model, vocab, entry))
            p = p_rnn if mode == "open" else lam * (count / total if total else 0.0) + (1 - lam) * p_rnn
            scored.append((entry, p, min(offsets)))
    z = sum(p for _, p, _ in scored)
    found = [(w, math.log(p / z), offset) for w, p, offset in scored if p > 0 and w not in exclude]
    return sorted(found, key=lambda row: -row[1])


def completer_of(model, entries, lam, stored=False, vocab=VOCAB):
    """A completer of `entries` ({entry: count}); `stored`: with each entry's log P_rnn, as a
    finished run's checkpoint carries them; "file": loaded from such a checkpoint, which stores
    the trie and the index of word starts too."""
    if not stored:
        lexicon = Lexicon(list(entries), vocab, counts=list(entries.values()))
        return Completer(model, vocab, lexicon=lexicon, mixture_lambda=lam)
    data = with_rnn_logp(model, vocab, True, LexiconData.from_unsorted(list(entries), list(entries.values()),
                                                                       [False] * len(entries)))
    if stored == "file":
        folder = tempfile.mkdtemp()
        path = os.path.join(folder, "run.npz")
        meta = {"chars": vocab.chars, "activation": "tanh", "hidden_size": model.hidden_size, "dtype": "float64",
                "config": {"data": {"lowercase": True}}, "step": 1, "epoch": 1, "best_val_loss": 1.0, "rng_state": {},
                "mixture_lambda": lam}
        save_checkpoint(path, model.params, meta, lexicon=with_stored_trie(data, vocab, True))
        completer = Completer.load(path)
        lexicon = completer.lexicons.whole()
        several = any(len(typed_words(entry)) > 1 for entry in entries)
        assert (completer.lexicons.stored_word_starts(lexicon) is not None) == several  # read now, stored if useful
        shutil.rmtree(folder)
        return completer
    completer = Completer(model, vocab, mixture_lambda=lam)
    completer.lexicon_words = data
    return completer


def found(result):
    """[(entry folded, log P, offset)] of a word-start result."""
    return [(fold(c.word, True), c.logprob, c.match) for c in result.completions]


def assert_same_matches(got, expected, k, atol=1e-9):
    """The top k of `expected` up to ties: the same log-probs in order, each entry distinct, a
    match with that log-prob itself and the same offset."""
    assert len(got) == min(k, len(expected)) and len({w for w, _, _ in got}) == len(got)
    np.testing.assert_allclose([lp for _, lp, _ in got], [lp for _, lp, _ in expected[:k]], rtol=0, atol=atol)
    truth = {w: (lp, offset) for w, lp, offset in expected}
    for w, lp, offset in got:
        assert w in truth and abs(truth[w][0] - lp) <= atol and truth[w][1] == offset, (w, lp, offset, truth.get(w))


entry_words = st.text("abAB", min_size=1, max_size=3)
entries_strategy = st.dictionaries(
    st.builds(lambda lead, words, seps, tail: lead + "".join(w + s for w, s in zip(words, seps))[:-1] + tail,
              st.sampled_from(["", "", "", ".", " "]), st.lists(entry_words, min_size=1, max_size=4),
              st.lists(st.sampled_from(list(SEPARATORS) + ["  ", "-_"]), min_size=4, max_size=4),
              st.sampled_from(["", "", "", " ", "/"])),
    st.integers(0, 50), min_size=1, max_size=12)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10**6), entries=entries_strategy, typed=st.text("abA -_./", max_size=6),
       mode=st.sampled_from(["open", "mixture", "known"]), lam=st.sampled_from([0.0, 0.5, 0.95, 1.0]) | st.floats(0, 1),
       k=st.integers(1, 8), stored=st.sampled_from([False, True, "file"]))
def test_word_start_matching_matches_the_brute_force(seed, entries, typed, mode, lam, k, stored):
    model = random_model(seed % 1000)
    completer = completer_of(model, entries, lam, stored)
    result = completer.complete(typed, k, match="word-start", **flags(mode))
    assert result.error is None and not result.truncated
    expected = brute_force(model, VOCAB, entries, typed, mode, lam)
    assert_same_matches(found(result), expected, k, atol=1e-5 if stored else 1e-9)  # a checkpoint stores float32
    assert all(c.known and c.edits == 0 and c.corrected == typed for c in result.completions)


@pytest.mark.parametrize("mode", ["open", "mixture"])
@pytest.mark.parametrize("lam", [0.0, 0.3, 0.95, 1.0])
def test_matches_on_a_catalogue(mode, lam):
    model = random_model(0, CATALOGUE_VOCAB, hidden_size=8)
    completer = completer_of(model, CATALOGUE, lam, vocab=CATALOGUE_VOCAB)
    for typed in ["iph", "gal", "app", "sam s24", "SAM S", "s24", "s24 sam", "conf", "", "8", "zz", "a p i"]:
        result = completer.complete(typed, 10, match="word-start", **flags(mode))
        expected = brute_force(model, CATALOGUE_VOCAB, CATALOGUE, typed, mode, lam)
        assert_same_matches(found(result), expected, 10)
        if expected and (mode == "open" or lam < 1):  # every match has P > 0: their probabilities add up to 1
            assert sum(c.prob for c in result.completions) == pytest.approx(1.0)
    shown = {typed: [(c.word, c.match) for c in completer.complete(typed, 10, match="word-start").completions]
             for typed in ["iph", "gal", "app", "sam s24", "conf"]}
    assert shown["iph"] == [("Apple iPhone 15", 6)]  # as the lexicon writes it, and where it matched
    assert shown["gal"] == [("Samsung Galaxy S24", 8)]
    assert {word for word, _ in shown["app"]} == {"Apple iPhone 15", "apple-pie"}  # the first word counts
    assert {word for word, _ in shown["sam s24"]} == {"Samsung Galaxy S24", "Samsung S24 case"}  # in order: not "S24 by Samsung"
    assert shown["conf"] == [("./configure", 2)]


def test_equal_scores_keep_the_lexicons_order():
    entries = {f"{a} {b}{c}": 1 for a, b, c in itertools.product(["ab", "ba", "b.a"], ["a", "ab", "b"], ["", "a", "ba", "b_a"])}
    completer = completer_of(random_model(0), entries, 1.0)  # every count 1, all the weight on them: all tie
    result = completer.complete("a", 100, match="word-start")
    words = [fold(c.word, True) for c in result.completions]
    assert len(words) == 30 and len({c.logprob for c in result.completions}) == 1
    lexicon = completer.lexicon
    assert words == sorted(words, key=lambda w: lexicon.walk(VOCAB.encode(w)))  # by node: the lexicon's order


@pytest.mark.parametrize("lam", [0.95, 1.0])
def test_an_entry_counted_0_has_the_models_share_only(lam):
    entries = {"ab a": 3, "b ab": 0, "a_b": 1}
    model = random_model(4, scale=0.3)
    result = completer_of(model, entries, lam).complete("a", 5, match="word-start")
    assert_same_matches(found(result), brute_force(model, VOCAB, entries, "a", "mixture", lam), 5)
    assert ("b ab" in [c.word for c in result.completions]) == (lam < 1)  # at lambda 1 its P(w) is 0: never proposed


def test_excluded_entries_are_not_proposed_but_keep_their_share():
    model = random_model(1, CATALOGUE_VOCAB, hidden_size=8)
    completer = completer_of(model, CATALOGUE, 0.5, vocab=CATALOGUE_VOCAB)
    blocked = ["samsung galaxy s24", "google"]
    for exclude in (blocked, Lexicon(blocked, CATALOGUE_VOCAB)):
        result = completer.complete("sam", 5, match="word-start", exclude=exclude)
        expected = brute_force(model, CATALOGUE_VOCAB, CATALOGUE, "sam", "mixture", 0.5, exclude={"samsung galaxy s24"})
        assert_same_matches(found(result), expected, 5)
        assert "Samsung Galaxy S24" not in [c.word for c in result.completions] and sum(c.prob for c in result.completions) < 1


def test_stored_log_p_rnn_are_used_and_agree(monkeypatch):
    """A checkpoint's entries with their log P_rnn: the model scores none of them again."""
    model = random_model(2, CATALOGUE_VOCAB, hidden_size=8)
    computed = completer_of(model, CATALOGUE, 0.4, vocab=CATALOGUE_VOCAB)
    stored = completer_of(model, CATALOGUE, 0.4, stored=True, vocab=CATALOGUE_VOCAB)
    scored, original = [], complete.rnn_word_logprobs
    monkeypatch.setattr(complete, "rnn_word_logprobs", lambda model, vocab, words: scored.extend(words) or original(model, vocab, words))
    for typed in ["", "sam", "s24", "a p"]:
        got, want = (c.complete(typed, 10, match="word-start") for c in (stored, computed))
        assert [c.word for c in got.completions] == [c.word for c in want.completions]
        np.testing.assert_allclose([c.logprob for c in got.completions], [c.logprob for c in want.completions], atol=1e-5)
    assert len(scored) == len(CATALOGUE)  # the completer without them scored each entry once, the stored one none


def test_typed_words_offsets_and_shown_offsets():
    assert typed_words("sam  s24-") == ["sam", "s24"] and typed_words(" -_./") == []
    assert word_offsets("./a b") == [2, 4] and word_offsets("O_RDONLY") == [0, 2]
    assert shown_offset("i\u0307stanbul airport", "İstanbul Airport", 10) == 9  # lowercasing İ makes two characters
    assert shown_offset("ab", "ab", 1) == 1  # not a word start: as it is


def test_the_offset_is_where_the_word_starts_as_shown():
    vocab = rnnac.Vocab(" abilnoprstu\u0307")
    given = Lexicon(["İstanbul Airport", "Airport"], vocab, counts=[1, 2])
    completer = Completer(random_model(0, vocab), vocab, lexicon=given)
    result = completer.complete("air", match="word-start")
    assert [(c.word, c.match) for c in result.completions] == [("Airport", 0), ("İstanbul Airport", 9)]


def test_the_index_of_a_list_of_single_words_is_its_words():
    lexicon = Lexicon(["b", "a", "ab"], VOCAB)
    starts = WordStarts(lexicon)
    assert starts.words == ["a", "ab", "b"] and len(starts.key) == 3
    assert starts.match(["a"])[0].tolist() == [0, 1]
    empty = WordStarts(Lexicon([], VOCAB))
    assert empty.match(["a"])[0].tolist() == [] and empty.match([])[0].tolist() == []


def test_word_start_options_and_errors():
    model = random_model(0, CATALOGUE_VOCAB, hidden_size=8)
    completer = completer_of(model, CATALOGUE, 0.5, vocab=CATALOGUE_VOCAB)
    with pytest.raises(OptionError, match="match word-start and max_edits cannot be used together"):
        completer.complete("sam", match="word-start", max_edits=1)
    with pytest.raises(OptionError, match="match word-start and beam cannot be used together"):
        completer.complete("sam", match="word-start", beam=2)
    with pytest.raises(OptionError, match="match must be prefix or word-start, got 'words'"):
        completer.complete("sam", match="words")
    with pytest.raises(OptionError, match="match word-start needs a lexicon: the completer carries none"):
        Completer(model, CATALOGUE_VOCAB).complete("sam", match="word-start", open=True)
    bad, fine = completer.complete_many(["sam!", "sam_s24"], match="word-start")  # "_" is outside the vocabulary, but a separator
    assert "'!'" in bad.error and not bad.completions
    assert fine.error is None and [c.word for c in fine.completions][:1] == ["Samsung Galaxy S24"]
    given = Lexicon(["New York", "York"], CATALOGUE_VOCAB)  # another lexicon for one call: its entries only
    assert {c.word for c in completer.complete("yo", match="word-start", lexicon=given).completions} == {"York", "New York"}


def test_prefix_completion_never_builds_the_index(monkeypatch):
    model = random_model(0, CATALOGUE_VOCAB, hidden_size=8)
    completer = completer_of(model, CATALOGUE, 0.5, stored=True, vocab=CATALOGUE_VOCAB)
    built = []
    init = WordStarts.__init__
    monkeypatch.setattr(WordStarts, "__init__", lambda self, *args: built.append(1) or init(self, *args))
    completer.complete_many(["sam", "s"], max_length=20)
    assert not built and all(c.match == 0 for c in completer.complete("s", max_length=20).completions)
    completer.complete_many(["sam", "s"], match="word-start")
    completer.complete("gal", match="word-start")
    assert built == [1]  # once per lexicon


def test_a_stored_index_is_checked_when_read_and_one_for_another_list_is_not_used(tmp_path):
    from rnnac.errors import CheckpointError
    from rnnac.storage.lexicon import WORD_STARTS_ENTRY_PREFIX
    from rnnac.storage.npz import open_npz

    model = random_model(3, CATALOGUE_VOCAB)
    data = with_rnn_logp(model, CATALOGUE_VOCAB, True, LexiconData.from_unsorted(
        list(CATALOGUE), list(CATALOGUE.values()), [False] * len(CATALOGUE)))
    stored = with_stored_trie(data, CATALOGUE_VOCAB, True)
    facts, arrays = stored.word_starts.facts, stored.word_starts.arrays
    built = WordStarts(Lexicon(list(CATALOGUE), CATALOGUE_VOCAB, counts=list(CATALOGUE.values())))
    assert facts["n_entries"] == len(CATALOGUE) and all(np.array_equal(arrays[n], built.arrays()[n]) for n in arrays)
    meta = {"chars": CATALOGUE_VOCAB.chars, "activation": "tanh", "hidden_size": 5, "dtype": "float64",
            "config": {"data": {"lowercase": True}}, "step": 1, "epoch": 1, "best_val_loss": 1.0, "rng_state": {},
            "mixture_lambda": 0.8}
    bad = dict(arrays, key=arrays["key"] + 1000 * facts["stride"])  # entries past the list's
    stored.word_starts.arrays = bad
    stored._entries = None
    path = tmp_path / "bad.npz"
    save_checkpoint(path, model.params, meta, lexicon=stored)
    with open_npz(path) as npz:
        assert WORD_STARTS_ENTRY_PREFIX + "key" in npz.members
    completer = Completer.load(path)
    assert completer.complete("iph", 3).completions  # prefix completion never reads the index
    with pytest.raises(CheckpointError, match="lexicon word starts: word-start keys must be entries below 7"):
        completer.complete("iph", 3, match="word-start")
    other = Completer(model, CATALOGUE_VOCAB, lexicon=Lexicon(["Apple iPhone 15"], CATALOGUE_VOCAB), mixture_lambda=0.5)
    assert other.lexicons.stored_word_starts(other.lexicon) is None  # given a lexicon: built, not read


def test_a_typed_accent_narrows_word_start_matches_to_the_entries_written_with_it():
    from rnnac.storage.folding import Folding

    vocab = rnnac.Vocab(" abcdefghijklmnopqrstuvwxyz")
    entries = {"Café Royal": 5, "Cafe Noir": 3, "Crème brûlée": 2, "café au lait": 1, "Royal Cafe": 4}
    folding = Folding(lowercase=True, accents=True)
    lexicon = Lexicon(list(entries), vocab, folding, counts=list(entries.values()))
    completer = Completer(random_model(5, vocab), vocab, folding, lexicon, mixture_lambda=0.7)

    def shown(typed):
        result = completer.complete(typed, 10, match="word-start")
        return {c.word: c.prob for c in result.completions}

    everything = shown("caf")
    assert set(everything) == {"Café Royal", "Cafe Noir", "café au lait", "Royal Cafe"}  # accents fold
    narrowed = shown("CAFÉ")
    assert set(narrowed) == {"Café Royal", "café au lait"} and sum(narrowed.values()) == pytest.approx(1.0)
    ratio = everything["Café Royal"] / everything["café au lait"]
    assert narrowed["Café Royal"] / narrowed["café au lait"] == pytest.approx(ratio)  # the same scores, renormalised
    assert set(shown("roy café")) == set() and set(shown("café roy")) == {"Café Royal"}  # in order
    assert set(shown("brû")) == set(shown("bru")) == {"Crème brûlée"}
    assert set(shown("crè brû")) == {"Crème brûlée"} and shown("cre bru") == shown("crè brû")
