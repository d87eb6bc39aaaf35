"""Folding text as a model reads it (rnnac.storage.folding), and accent folding end to end: a
completer over a small accented list against a brute-force ranking from the definitions over
folded strings, shown in the list's own spelling, a typed accent narrowing to the written forms."""

import itertools
import math
import unicodedata

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rnnac
from rnnac.inference.cases import case_like, shouting
from rnnac.inference.completer import Completer
from rnnac.storage.folding import LETTERS, Folding, fold
from rnnac.storage.lexicon import Lexicon, LexiconData, text_facts
from columns import flags, known_of, shown_of
from test_search import assert_same_ranking

ACCENTS = Folding(lowercase=True, accents=True)


@pytest.mark.parametrize("text, folded, kept_case", [
    ("Café Royal", "cafe royal", "Cafe Royal"), ("Škoda", "skoda", "Skoda"), ("Crème brûlée", "creme brulee", "Creme brulee"),
    ("Øresund", "oresund", "Oresund"), ("Łódź", "lodz", "Lodz"), ("Straße", "strasse", "Strasse"), ("ẞ", "ss", "SS"),
    ("smörgåsbord", "smorgasbord", "smorgasbord"), ("Æsir", "aesir", "AEsir"), ("Œuvre", "oeuvre", "OEuvre"),
    ("Đakovo", "dakovo", "Dakovo"), ("ǿ", "o", "o"),  # ø with an accent: the accent, then the letter
    ("cafe\u0301", "cafe", "cafe"),  # decomposed
    ("한국어", "한국어", "한국어"),  # Hangul decomposes into letters, not marks: unchanged
    ("naïve\nÉcole", "naive\necole", "naive\nEcole"),  # word by word across a newline
    ("plain ascii", "plain ascii", "plain ascii"),
])
def test_fold_drops_accents_and_writes_letters_that_do_not_decompose(text, folded, kept_case):
    assert fold(text, ACCENTS) == folded
    assert fold(text, Folding(lowercase=False, accents=True)) == kept_case


def test_a_bool_is_the_case_folding_alone():
    assert Folding.of(True) == Folding(True, False) and Folding.of(False) == Folding(False, False)
    assert Folding.of(ACCENTS) is ACCENTS and ACCENTS.case == Folding(True, False)
    assert fold("Café", True) == "café" and fold("Cafe\u0301", False) == "Café"  # NFC, accents kept


@settings(max_examples=200, deadline=None)
@given(words=st.lists(st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\n"), max_size=6), max_size=5),
       lowercase=st.booleans())
def test_folding_is_idempotent_word_by_word_and_leaves_no_accent(words, lowercase):
    folding = Folding(lowercase, accents=True)
    folded = [fold(w, folding) for w in words]
    assert fold("\n".join(words), folding) == "\n".join(folded)  # one call folds a whole list
    assert [fold(w, folding) for w in folded] == folded
    decomposed = unicodedata.normalize("NFD", "".join(folded))
    assert not any(unicodedata.combining(ch) for ch in decomposed) and not set(LETTERS) & set(decomposed)


def test_a_checkpoint_states_whether_accent_folding_leaves_its_words_alone():
    plain, accented = text_facts(b"apple\nParis"), text_facts("apple\nCaf\u00e9".encode())
    assert plain["unaccented"] and not accented["unaccented"] and accented["nfc"]
    assert ACCENTS.leaves(text_facts(b"apple\nparis")) and not ACCENTS.leaves(plain)  # Paris is not lowercase
    assert Folding(False, True).leaves(plain) and not Folding(False, True).leaves(accented)
    assert Folding(False, False).leaves(accented) and not ACCENTS.leaves({})  # no facts: fold them


# --- completion over an accented list, against the definitions -----------------------------

# Counts differ within every prefix, so that no two words tie even on the lexicon's side alone.
WRITTEN = {"Café Royal": 5, "cafe": 7, "CAFE": 1, "Cafetière": 10, "Škoda Octavia": 4, "skoda fan": 2, "Crème brûlée": 6,
           "creme": 1, "crème": 2, "Øresund": 12, "Łódź": 13, "Straße": 9, "smörgåsbord": 11}
PREFIXES = ["cafe", "CAFE", "Cafe", "café", "Café", "CAFÉ", "cafè", "sko", "ško", "Ško", "SKO", "cre", "crè", "crème",
            "CRÈME", "Crem", "ø", "Ø", "o", "ł", "Ł", "stras", "straß", "STRAẞ", "smö", "sm", "c", "s"]


def accented_setup(folding, seed=0):
    """A vocabulary of the list's folded words, a random float64 model over it, the lexicon's
    counts by folded word and each one's most frequent written form (the first given on a tie)."""
    counts, forms = {}, {}
    for written, count in WRITTEN.items():
        word = fold(written, folding)
        counts[word] = counts.get(word, 0) + count
        forms.setdefault(word, {})[written] = forms.get(word, {}).get(written, 0) + count
    display = {word: max(f, key=f.__getitem__) for word, f in forms.items()}
    vocab = rnnac.Vocab("".join(sorted(set("".join(counts)))))
    model = rnnac.RNN.init(len(vocab), 5, seed=seed, dtype=np.float64)
    rng = np.random.default_rng(seed + 1)
    for p in model.params.values():
        p[:] = rng.normal(0, 1.5, p.shape)
    return vocab, model, counts, display


class RnnProbs:
    """P_rnn of strings read from the boundary by model.step one character at a time, each
    string's state kept: (P of its characters, P of its characters and its end)."""

    def __init__(self, model, vocab):
        self.model, self.vocab = model, vocab
        a, logp = model.step(model.initial_state(1), np.array([0]))
        self.states = {"": (a, logp, 0.0)}

    def state(self, s):
        if s not in self.states:
            a, logp, lp = self.state(s[:-1])
            token = self.vocab.index[s[-1]]
            a2, logp2 = self.model.step(a, np.array([token]))
            self.states[s] = (a2, logp2, lp + logp[0, token])
        return self.states[s]

    def __call__(self, s):
        _, logp, lp = self.state(s)
        return math.exp(lp), math.exp(lp + logp[0, 0])


def oracle(probs, counts, display, typed, folding, mode, lam, max_length):
    """[(folded word, log P(word | prefix), a lexicon word)] best first, from the definitions
    (rnnac.inference.search) over folded strings: P(w) = lam c_w / C + (1 - lam) P_rnn(w), over
    Z(s) = lam P_lex(s*) + (1 - lam) P_rnn(s*). A prefix typed with an accent only completes to
    the words whose written form, case-folded, starts with it (known only, unless open), C still
    the whole list's total."""
    total, folded, marked = sum(counts.values()), fold(typed, folding), fold(typed, folding.case)
    lexicon = counts
    if marked != folded:
        lexicon = {w: c for w, c in counts.items() if fold(display[w], folding.case).startswith(marked)}
        mode = "open" if mode == "open" else "known"
    below = [w for w in lexicon if w.startswith(folded)]
    invented = [folded + "".join(tail) for m in range(max_length - len(folded) + 1)
                for tail in itertools.product(probs.vocab.chars, repeat=m)]
    words = below if mode == "known" else list(dict.fromkeys(below + [w for w in invented if w]))
    prefix_p = probs(folded)[0]
    if mode == "open":
        scored = [(w, probs(w)[1] / prefix_p) for w in words]
    else:
        z = lam * sum(lexicon[w] for w in below) / total + (1 - lam) * prefix_p
        scored = [(w, (lam * lexicon.get(w, 0) / total + (1 - lam) * probs(w)[1]) / z) for w in words] if z > 0 else []
    ranked = sorted([(w, math.log(p)) for w, p in scored if p > 0], key=lambda pair: -pair[1])
    return [(w, lp, w in lexicon) for w, lp in ranked]


def shown(typed, folded, word, known, display, folding):
    """How a completion is shown: a lexicon word in the list's own spelling (as it is when it has
    a case of its own, else in the case typed); other words as typed, then the rest."""
    written = display[word] if known else None
    if written is not None and written != word:
        return written if not folding.lowercase or written.lower() != written else case_like(typed, written)
    rest = word[len(folded):]
    if not folding.lowercase:
        return fold(typed, False) + rest
    return typed + (rest.upper() if shouting(typed) else rest)


@pytest.mark.parametrize("folding", [ACCENTS, Folding(lowercase=False, accents=True)])
@pytest.mark.parametrize("mode", ["mixture", "known", "open"])
@pytest.mark.parametrize("lam", [0.0, 0.6, 1.0])
def test_completions_match_the_definitions_over_folded_strings_in_the_lists_spelling(folding, mode, lam):
    vocab, model, counts, display = accented_setup(folding)
    probs = RnnProbs(model, vocab)
    lexicon = Lexicon(list(WRITTEN), vocab, folding, counts=list(WRITTEN.values()))
    completer = Completer(model, vocab, folding, lexicon, mixture_lambda=lam)
    for typed in PREFIXES:
        folded = fold(typed, folding)
        max_length = len(folded) + 2
        got = completer.complete(typed, 50, max_length=max_length, budget=10**6, **flags(mode))
        if vocab.unknown_char(folded) is not None:  # SKO for a model that keeps case: no K, no O in the list
            assert got.error is not None and not got.completions
            continue
        expected = oracle(probs, counts, display, typed, folding, mode, lam, max_length)[:50]
        assert got.error is None and not got.truncated
        assert_same_ranking([(fold(c.word, folding), c.logprob) for c in got.completions], [row[:2] for row in expected], 50)
        assert known_of(got) == [row[2] for row in expected]
        assert shown_of(got) == [shown(typed, folded, w, known, display, folding) for w, _, known in expected]


def test_answers_come_back_in_the_lists_spelling_and_a_typed_accent_narrows():
    vocab, model, _, _ = accented_setup(ACCENTS)
    lexicon = Lexicon(list(WRITTEN), vocab, ACCENTS, counts=list(WRITTEN.values()))
    completer = Completer(model, vocab, ACCENTS, lexicon, mixture_lambda=0.9)

    def top(typed, k=10):
        return [c.word for c in completer.complete(typed, k, known_only=True).completions]

    assert sorted(top("cafe")) == ["Cafetière", "Café Royal", "cafe"] and sorted(top("CAFE")) == ["CAFE", "Cafetière", "Café Royal"]
    assert top("café") == top("Café") == top("CAFÉ") == ["Café Royal"]  # not cafe, not Cafetière
    assert sorted(top("sko")) == ["skoda fan", "Škoda Octavia"] and top("ško") == ["Škoda Octavia"]
    assert sorted(top("cre")) == ["Crème brûlée", "crème"]  # creme and crème are one word, mostly written crème
    assert sorted(top("crè")) == ["Crème brûlée", "crème"] and sorted(top("CRÈ")) == ["CRÈME", "Crème brûlée"]
    assert top("ø") == top("o") == ["Øresund"] and top("Ł") == ["Łódź"] and top("straß") == top("stras") == ["Straße"]
    assert top("cafè") == []  # an accent no word is written with
    assert [c.word for c in completer.complete("café", 3, open=True).completions][0].startswith("café")  # the model alone
    typos = completer.complete("cafè", 3, max_edits=1, known_only=True)  # with typos the accent folds like the rest
    assert [c.word for c in typos.completions] and all(fold(c.word, ACCENTS).startswith("cafe") for c in typos.completions)


def test_a_cold_completion_of_the_stored_list_answers_as_the_whole_lexicon():
    vocab, model, _, _ = accented_setup(ACCENTS, seed=3)
    stored = LexiconData.from_unsorted(list(WRITTEN), list(WRITTEN.values()), [False] * len(WRITTEN))
    whole = Completer(model, vocab, ACCENTS, Lexicon(stored.words, vocab, ACCENTS, stored.counts), mixture_lambda=0.6)
    for prefixes in (["café"], ["cafe", "café", "Ško"], ["crè", "ø", "s"]):
        lazy = Completer(model, vocab, ACCENTS, mixture_lambda=0.6)
        lazy.lexicon_words = stored  # a first call: a cold `rnnac complete`
        got, expected = lazy.complete_many(prefixes, 4, max_length=6), whole.complete_many(prefixes, 4, max_length=6)
        assert [r.completions for r in got] == [r.completions for r in expected]
        assert lazy.lexicons.built is None  # only the part below them was built


def test_a_list_accent_folding_leaves_alone_stays_on_the_fast_path(tmp_path):
    from rnnac.storage.checkpoint import load_checkpoint, save_checkpoint

    vocab = rnnac.Vocab("abc")
    model = rnnac.RNN.init(len(vocab), 4, seed=0, dtype=np.float64)
    meta = {"chars": vocab.chars, "activation": "tanh", "hidden_size": 4, "dtype": "float64", "step": 1, "epoch": 0,
            "best_val_loss": 1.0, "rng_state": {}, "config": {"data": {"lowercase": True, "fold_accents": True}}}
    for words, fast in ((["ab", "abc", "ca"], True), (["ab", "abç", "ca"], False)):
        save_checkpoint(tmp_path / "m.npz", model.params, meta, lexicon=LexiconData.from_unsorted(words, [1, 2, 3], [False] * 3))
        completer = Completer.load(tmp_path / "m.npz")
        assert completer.folding == ACCENTS and len(completer.complete("ab", known_only=True).completions) == 2
        stored = load_checkpoint(tmp_path / "m.npz").lexicon
        assert stored.summary["unaccented"] is fast
        assert (completer.lexicons._folded() is completer.lexicons.stored.words) is fast  # not folded word by word
