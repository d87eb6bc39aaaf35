"""The lexicon trie and the mixture search, against oracles: a dict-of-dicts trie, and every
string of a tiny alphabet scored by hand from model.step."""

import itertools
import math
import types
import unicodedata
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rnnac
from rnnac.inference import completer as complete
from rnnac.inference import search
from rnnac.inference.completer import Completer
from rnnac.inference.mixture import rnn_word_logprobs
from rnnac.storage.checkpoint import TrainedModel
from rnnac.storage.folding import Folding
from rnnac.storage.lexicon import Lexicon, LexiconData
from columns import counted, flags, known_of, pairs

VOCAB = rnnac.Vocab("abc")
MAX_LENGTH = 4
PREFIXES = ["", "a", "cb", "abc", "bbbb", "aaaaa"]  # "bbbb" is at the length bound, "aaaaa" over it
LEXICON = {"a": 50, "ab": 30, "abc": 2, "Abc": 7, "ba": 40, "bbb": 1, "cab": 12, "cabb": 3, "ccccc": 9, "xyz": 4}
LAMBDAS = [0.0, 0.3, 0.9, 1.0]


def random_model(seed, scale=1.0, hidden_size=5):
    """A float64 model with weights of about `scale`: from nearly uniform to very peaked."""
    model = rnnac.RNN.init(len(VOCAB), hidden_size, seed=seed, dtype=np.float64)
    rng = np.random.default_rng(seed + 1)
    for p in model.params.values():
        p[:] = rng.normal(0, scale, p.shape)
    return model


def rnn_probs(model, max_length):
    """P_rnn of every string up to max_length (and up to LEXICON's longest word, which no max_length
    cuts), read from the boundary by model.step one string at a time: {string: (P of its
    characters, P of its characters and its end)}."""
    out = {}
    for m in range(max(max_length, max(map(len, LEXICON))) + 1):
        for chars in itertools.product(VOCAB.chars, repeat=m):
            a, logp = model.step(model.initial_state(1), np.array([0]))
            lp = 0.0
            for ch in chars:
                token = VOCAB.index[ch]
                lp += logp[0, token]
                a, logp = model.step(a, np.array([token]))
            out["".join(chars)] = (math.exp(lp), math.exp(lp + logp[0, 0]))
    return out


def oracle(probs, counts, prefix, mode, lam, max_length, exclude=()):
    """[(word, log P(word | prefix))], best first, from the definitions: P(w) = lam c_w / C +
    (1 - lam) P_rnn(w), divided by Z(s) = lam P_lex(s*) + (1 - lam) P_rnn(s*). Strings off the
    lexicon are at most max_length characters; lexicon words are never cut."""
    total = sum(counts.values())
    lex_mass = sum(c for w, c in counts.items() if w.startswith(prefix))
    assert all(w in probs for w in counts if w.startswith(prefix)), "probs must reach the longest lexicon word"
    prefix_p = probs[prefix][0] if prefix in probs else 0.0
    words = [w for w in probs if w.startswith(prefix) and w and (len(w) <= max_length or w in counts) and w not in exclude]
    if mode == "open":
        scored = [(w, probs[w][1] / prefix_p) for w in words]
    else:
        z = lam * lex_mass / total + (1 - lam) * prefix_p
        if mode == "known":
            words = [w for w in words if w in counts]
        scored = [(w, (lam * counts.get(w, 0) / total + (1 - lam) * probs[w][1]) / z) for w in words] if z > 0 else []
    scored = [(w, math.log(p)) for w, p in scored if p > 0]
    return sorted(scored, key=lambda pair: -pair[1])


def folded_counts(lexicon_words):
    counts = {}
    for word, count in lexicon_words.items():
        word = word.lower()
        if VOCAB.unknown_char(word) is None:
            counts[word] = counts.get(word, 0) + count
    return counts


def assert_same_ranking(got, expected, k):
    """Same top-k log-probs to 1e-9; words equal except where two probabilities tie."""
    expected = expected[:k]
    assert len(got) == len(expected), (got, expected)
    np.testing.assert_allclose([lp for _, lp in got], [lp for _, lp in expected], rtol=0, atol=1e-9)
    for (w, lp), (w_exp, lp_exp) in zip(got, expected):
        assert w == w_exp or abs(lp - lp_exp) < 1e-12


def mixture_completer(model, lexicon_words, lam, scored=False):
    """A completer of `lexicon_words` ({word: count}); `scored`: its lexicon knows each word's log
    P_rnn, as a trained checkpoint's does (the search's tighter bound)."""
    words = list(lexicon_words)
    word_logp = None
    if scored:
        folded = [w.lower() for w in words]
        spellable = [i for i, w in enumerate(folded) if VOCAB.unknown_char(w) is None]
        word_logp = np.full(len(words), -np.inf)
        word_logp[spellable] = rnn_word_logprobs(model, VOCAB, [folded[i] for i in spellable])
    lexicon = Lexicon(words, VOCAB, counts=list(lexicon_words.values()), word_logp=word_logp)
    return Completer(model, VOCAB, lexicon=lexicon, mixture_lambda=lam)


@pytest.mark.parametrize("mode", ["open", "mixture", "known"])
@pytest.mark.parametrize("lam", LAMBDAS)
@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("scored", [False, True])
def test_exact_search_matches_the_definitions(mode, lam, seed, scored):
    model = random_model(seed, scale=1.5)
    probs, counts = rnn_probs(model, MAX_LENGTH + 1), folded_counts(LEXICON)
    completer = mixture_completer(model, LEXICON, lam, scored)
    for k in (1, 3, 200):
        results = completer.complete_many(PREFIXES, k, MAX_LENGTH, budget=10**6, **flags(mode))
        for prefix, result in zip(PREFIXES, results):
            assert not result.truncated and result.error is None
            assert_same_ranking(pairs(result), oracle(probs, counts, prefix, mode, lam, MAX_LENGTH), k)
            assert known_of(result) == [w in counts for w, _ in pairs(result)]


@pytest.mark.parametrize("mode", ["open", "mixture", "known"])
@pytest.mark.parametrize("lam", [0.0, 0.5, 1.0])
def test_excluded_words_are_never_proposed(mode, lam):
    model = random_model(3, scale=1.5)
    probs, counts = rnn_probs(model, MAX_LENGTH), folded_counts(LEXICON)
    completer = mixture_completer(model, LEXICON, lam)
    blocked = ["AB", "a", "cab", "bbbb", "acc", "xyz"]
    as_set = {w.lower() for w in blocked}
    for exclude in (blocked, Lexicon(blocked, VOCAB)):
        for prefix in ["", "a", "ca", "bbbb"]:
            got = completer.complete(prefix, 6, max_length=MAX_LENGTH, budget=10**6, **flags(mode), exclude=exclude)
            assert_same_ranking(pairs(got), oracle(probs, counts, prefix, mode, lam, MAX_LENGTH, as_set), 6)
    beam = pairs(completer.complete("", 6, max_length=MAX_LENGTH, beam=3, **flags(mode), exclude=blocked))
    assert not {w for w, _ in beam} & as_set


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10**6), scale=st.floats(0.1, 3.0), k=st.integers(1, 12), max_length=st.integers(1, 4),
       prefix=st.text("abc", max_size=3), mode=st.sampled_from(["open", "mixture", "known"]),
       lam=st.sampled_from(LAMBDAS) | st.floats(0, 1), data=st.data())
def test_exact_search_matches_the_definitions_on_random_models(seed, scale, k, max_length, prefix, mode, lam, data):
    model = random_model(seed, scale)
    every = ["".join(w) for m in range(1, 6) for w in itertools.product("abcAB", repeat=m)]
    chosen = data.draw(st.lists(st.sampled_from(every), min_size=1, max_size=25, unique=True))
    flat = data.draw(st.booleans())  # a plain list: every count 1, where only the word bound prunes
    lexicon_words = {w: 1 if flat else data.draw(st.integers(1, 1000)) for w in chosen}
    exclude = set(data.draw(st.lists(st.sampled_from(every[:120]), max_size=6)))
    probs, counts = rnn_probs(model, 5), folded_counts(lexicon_words)
    completer = mixture_completer(model, lexicon_words, lam, scored=data.draw(st.booleans()))
    got = completer.complete(prefix, k, max_length=max_length, budget=10**6, **flags(mode), exclude=exclude or None)
    expected = oracle(probs, counts, prefix, mode, lam, max_length, {w.lower() for w in exclude})
    assert_same_ranking(pairs(got), expected, k)


@pytest.mark.parametrize("width", [1, 2, 5])
@pytest.mark.parametrize("mode", ["mixture", "known"])
def test_beam_search_never_beats_exact_search(width, mode):
    model = random_model(1, scale=1.5)
    probs, counts = rnn_probs(model, MAX_LENGTH), folded_counts(LEXICON)
    completer = mixture_completer(model, LEXICON, 0.6)
    for prefix in ["", "a", "c", "ab"]:
        truth = dict(oracle(probs, counts, prefix, mode, 0.6, MAX_LENGTH))
        exact = pairs(completer.complete(prefix, 5, max_length=MAX_LENGTH, budget=10**6, **flags(mode)))
        beam = pairs(completer.complete(prefix, 5, max_length=MAX_LENGTH, beam=width, **flags(mode)))
        assert beam, "a beam search finds at least one word here"
        for (word, lp), (_, exact_lp) in zip(beam, exact):
            assert lp == pytest.approx(truth[word], abs=1e-9)  # its scores are the true ones
            assert lp <= exact_lp + 1e-9  # and its i-th word is never better than the exact i-th
        assert [lp for _, lp in beam] == sorted((lp for _, lp in beam), reverse=True)
    wide = pairs(completer.complete("a", 5, max_length=MAX_LENGTH, beam=3**MAX_LENGTH, **flags(mode)))
    assert_same_ranking(wide, oracle(probs, counts, "a", mode, 0.6, MAX_LENGTH), 5)


def test_without_weight_on_the_lexicon_results_are_the_models_bit_for_bit():
    model = random_model(2, scale=2.0)
    plain = Completer(model, VOCAB)
    with_lexicon = mixture_completer(model, LEXICON, 0.0)
    prefixes = ["".join(p) for n in range(4) for p in itertools.product("abc", repeat=n)]
    open_results = plain.complete_many(prefixes, 5, MAX_LENGTH + 2)
    assert all(known_of(r) == [False] * len(pairs(r)) for r in open_results)
    for mode in ("mixture", "open"):
        results = with_lexicon.complete_many(prefixes, 5, MAX_LENGTH + 2, **flags(mode))
        assert [pairs(r) for r in results] == [pairs(r) for r in open_results]
    for beam in (1, 3):
        assert (pairs(plain.complete("a", 5, max_length=6, beam=beam))
                == pairs(with_lexicon.complete("a", 5, max_length=6, beam=beam, **flags("mixture"))))
    # Ranking only a lexicon's words by the model, as `lexicon=` always did.
    known_only = plain.complete_many(prefixes, 5, 6, 2000, None, with_lexicon.lexicon)
    again = with_lexicon.complete_many(prefixes, 5, 6, known_only=True)
    assert [pairs(r) for r in known_only] == [pairs(r) for r in again]


def test_all_weight_on_the_lexicon_gives_its_frequencies():
    model = random_model(0)
    completer = mixture_completer(model, LEXICON, 1.0)
    result = completer.complete("ab", k=10, max_length=6)
    assert [w for w, _ in pairs(result)] == ["ab", "abc"]  # no word off the lexicon
    np.testing.assert_allclose(np.exp([lp for _, lp in pairs(result)]), [30 / 39, 9 / 39], rtol=1e-12)
    assert known_of(result) == [True, True]
    assert pairs(completer.complete("bc", max_length=6)) == []  # no lexicon word starts with "bc": Z = 0


def test_the_mixture_prefers_frequent_words_and_flags_them():
    model = random_model(4, scale=0.3)  # nearly uniform: the lexicon decides
    completer = mixture_completer(model, LEXICON, 0.9)
    result = completer.complete("", k=4, max_length=MAX_LENGTH)
    assert [w for w, _ in pairs(result)] == ["a", "ba", "ab", "cab"]
    assert known_of(result) == [True] * 4
    mixed = completer.complete("c", k=20, max_length=3)
    assert [w for w, _ in pairs(mixed)][0] == "cab" and not all(known_of(mixed)) and any(known_of(mixed))


def test_modes_and_options_are_checked():
    model = random_model(0)
    plain = Completer(model, VOCAB)
    with pytest.raises(ValueError, match="needs a lexicon"):
        plain.complete("a", known_only=False)
    with pytest.raises(ValueError, match="mode must be one of"), pytest.warns(DeprecationWarning):
        plain.complete("a", mode="closed")
    with pytest.raises(ValueError, match="mixture_lambda"):
        plain.complete("a", mixture_lambda=1.5)
    with pytest.raises(ValueError, match="mixture_lambda"):
        Completer(model, VOCAB, mixture_lambda=float("nan"))
    with pytest.raises(ValueError, match="lexicon built for"):
        plain.complete("a", lexicon=Lexicon(["ab"], rnnac.Vocab("ab")))
    with pytest.raises(ValueError, match="counts"):
        Lexicon(["a", "b"], VOCAB, counts=[1, -2])


def test_mode_is_a_deprecated_alias_of_the_flags():
    completer = mixture_completer(random_model(0, scale=1.5), LEXICON, 0.4)
    prefixes = ["", "a", "ca"]
    for mode in ("open", "known", "mixture"):
        with pytest.warns(DeprecationWarning, match="mode=.* is deprecated"):
            old = completer.complete_many(prefixes, 4, MAX_LENGTH, mode=mode)
        now = {"known_only": False} if mode == "mixture" else flags(mode)  # the mixture with its default cap of invented strings
        assert [r.completions for r in old] == [r.completions for r in completer.complete_many(prefixes, 4, MAX_LENGTH, **now)]
    lexicon = completer.lexicon  # a lexicon given without flags: its words only, as mode None always did
    assert ([r.completions for r in completer.complete_many(prefixes, 4, MAX_LENGTH, lexicon=lexicon)]
            == [r.completions for r in completer.complete_many(prefixes, 4, MAX_LENGTH, lexicon=lexicon, known_only=True)])


def test_known_mode_searches_only_the_lexicon():
    model = random_model(0, scale=0.3)  # nearly uniform: an open search would wander
    completer = mixture_completer(model, LEXICON, 0.0)
    result, evaluations = counted(completer, "", k=20, max_length=6, known_only=True)
    assert {w for w, _ in pairs(result)} == set(folded_counts(LEXICON)) and all(known_of(result))
    nodes = len({w[:i] for w in folded_counts(LEXICON) for i in range(1, len(w) + 1)})
    assert evaluations <= nodes  # no node off the lexicon is evaluated


def test_past_max_length_only_lexicon_words_complete():
    model = random_model(0)
    completer = mixture_completer(model, {"abcab": 5, "abc": 1}, 0.5)
    for mode in ("open", "mixture", "known"):
        for beam in (None, 2):
            assert pairs(completer.complete("ccccc", max_length=4, **flags(mode), beam=beam)) == []  # off the lexicon
            assert [w for w, _ in pairs(completer.complete("abcab", max_length=4, **flags(mode), beam=beam))] == ["abcab"]
            assert [w for w, _ in pairs(completer.complete("abca", max_length=3, **flags(mode), beam=beam))] == ["abcab"]
            words = [w for w, _ in pairs(completer.complete("abc", 10, max_length=3, **flags(mode), beam=beam))]
            assert sorted(words) == ["abc", "abcab"]  # at the bound: the prefix itself, and the lexicon's longer word


def test_prefixes_are_put_in_nfc():
    vocab = rnnac.Vocab("abcefé")  # é precomposed, as NFC text is
    model = rnnac.RNN.init(len(vocab), 4, seed=0, dtype=np.float64)
    lexicon = Lexicon(["cafe\u0301", "Café", "cab"], vocab)  # decomposed, and a case variant: one word
    assert lexicon.skipped == 0 and lexicon.count(lexicon.walk(vocab.encode("café"))) == 2
    completer = Completer(model, vocab, lexicon=lexicon, mixture_lambda=0.5)
    decomposed, precomposed = completer.complete_many(["cafe\u0301", "café"], k=3, max_length=6)
    assert decomposed.error is None and pairs(decomposed) == pairs(precomposed)
    assert pairs(decomposed)[0][0] == "café" and known_of(decomposed)[0]
    assert decomposed.prefix == "cafe\u0301"  # as given


def test_memory_splits_do_not_change_mixture_results(monkeypatch):
    model = random_model(5, scale=1.5)
    completer = mixture_completer(model, LEXICON, 0.7)
    prefixes = ["".join(p) for n in range(3) for p in itertools.product("abc", repeat=n)]
    alone = [pairs(completer.complete(p, k=4, max_length=5)) for p in prefixes]
    monkeypatch.setattr(complete, "SEARCH_BYTES", 6_000)
    monkeypatch.setattr(Completer, "_group_size", lambda self, budget, extra=0.0: 64)
    groups, init = [], search.ExactSearch.__init__
    monkeypatch.setattr(search.ExactSearch, "__init__",
                        lambda self, model, roots, *rest, **kw: groups.append(len(roots.a)) or init(self, model, roots, *rest, **kw))
    together = [pairs(r) for r in completer.complete_many(prefixes, k=4, max_length=5)]
    assert groups[:2] == [len(prefixes), len(prefixes) // 2]
    for a, b in zip(alone, together):
        assert [w for w, _ in a] == [w for w, _ in b]
        np.testing.assert_allclose([lp for _, lp in a], [lp for _, lp in b], rtol=0, atol=1e-12)


def test_budget_truncates_the_mixture_search():
    model = random_model(0, scale=0.3)
    completer = mixture_completer(model, LEXICON, 0.5)
    cut, evaluations = counted(completer, "", k=30, max_length=MAX_LENGTH, budget=5)
    assert cut.truncated and evaluations <= 5
    probs, counts = rnn_probs(model, MAX_LENGTH), folded_counts(LEXICON)
    truth = dict(oracle(probs, counts, "", "mixture", 0.5, MAX_LENGTH))
    assert all(lp == pytest.approx(truth[w], abs=1e-9) for w, lp in pairs(cut))  # real scores, in order
    assert [lp for _, lp in pairs(cut)] == sorted((lp for _, lp in pairs(cut)), reverse=True)


def test_load_takes_the_lexicon_and_weight_a_checkpoint_carries(monkeypatch):
    model = random_model(0)
    stored = LexiconData(["Ab", "abc", "b"], [3.0, 1.0, 2.0], [False, True, False])
    ckpt = types.SimpleNamespace(params=model.params, meta={"mixture_lambda": 0.25}, lexicon=stored)
    monkeypatch.setattr(complete, "load_trained", lambda path, **_: TrainedModel(model, VOCAB, True, ckpt, Path("any.npz")))
    completer = Completer.load("any.npz")
    assert completer.mixture_lambda == 0.25 and completer.lexicon.total == 6.0
    assert completer.lexicon.ends(completer.lexicon.walk(VOCAB.encode("abc")))  # held-out words too
    got = completer.complete("a", max_length=4)
    assert known_of(got) == [w in {"ab", "abc"} for w, _ in pairs(got)] and any(known_of(got))
    ckpt.meta["mixture_lambda"] = 1.5  # load_checkpoint refuses such a file (test_faults_input); the Completer too
    with pytest.raises(ValueError, match=r"mixture_lambda must be in \[0, 1\], got 1.5"):
        Completer.load("any.npz")
    older = types.SimpleNamespace(params=model.params, meta={}, lexicon=None)  # before checkpoints carried a lexicon
    monkeypatch.setattr(complete, "load_trained", lambda path, **_: TrainedModel(model, VOCAB, True, older, Path("any.npz")))
    assert Completer.load("any.npz").lexicon is None


def test_a_checkpoint_carrying_a_lexicon_completes_by_the_mixture(tmp_path):
    from rnnac.storage import checkpoint

    model = random_model(0, scale=1.5)
    meta = {"chars": VOCAB.chars, "activation": "tanh", "hidden_size": 5, "dtype": "float64", "step": 1, "epoch": 1,
            "config": {"data": {"lowercase": True}}, "best_val_loss": None, "rng_state": {}, "mixture_lambda": 0.6}
    words = sorted(w for w in LEXICON if w != "xyz")
    stored = checkpoint.LexiconData.from_unsorted(words, [LEXICON[w] for w in words], [w == "ba" for w in words])
    checkpoint.save_checkpoint(tmp_path / "m.npz", model.params, meta, lexicon=stored)
    loaded = Completer.load(tmp_path / "m.npz")
    expected = mixture_completer(model, {w: LEXICON[w] for w in words}, 0.6)
    for prefix in ["", "b", "ca"]:
        got, want = loaded.complete(prefix, 6, max_length=5), expected.complete(prefix, 6, max_length=5)
        assert pairs(got) == pairs(want) and known_of(got) == known_of(want)


# The lexicon trie against a plain dict-of-dicts trie.


def reference_trie(words, counts, vocab, lowercase=True, accents=False):
    """{folded word: count}, {folded word: its most frequent written form}, and how many words were skipped."""
    merged, forms, skipped = {}, {}, 0
    for word, count in zip(words, counts):
        folded = unicodedata.normalize("NFC", word)
        folded = folded.lower() if lowercase else folded
        if accents:  # marks dropped from the decomposed word; ß and ẞ (lowercased or not) are the letters in the list
            marks = "".join(ch for ch in unicodedata.normalize("NFD", folded) if not unicodedata.combining(ch))
            folded = unicodedata.normalize("NFC", marks).replace("ß", "ss").replace("ẞ", "SS")
        if vocab.unknown_char(folded) is not None:
            skipped += 1
        elif folded:
            merged[folded] = merged.get(folded, 0.0) + count
            forms.setdefault(folded, {})
            forms[folded][word] = forms[folded].get(word, 0.0) + count  # in the order given
    display = {folded: max(by_form, key=by_form.__getitem__) for folded, by_form in forms.items()}
    return merged, display, skipped


def check_against_reference(words, counts, vocab, lowercase=True, accents=False):
    folding = Folding(lowercase, accents)
    lexicon = Lexicon(words, vocab, folding, counts)
    merged, display, skipped = reference_trie(words, counts, vocab, lowercase, accents)
    assert lexicon.skipped == skipped
    nodes = {""}  # the reference trie's nodes, as the strings they spell
    for word in merged:
        nodes.update(word[:i] for i in range(1, len(word) + 1))
    children = {}  # dict of dicts: node -> {token: child}
    for node in nodes - {""}:
        children.setdefault(node[:-1], {})[vocab.index[node[-1]]] = node
    assert lexicon.n_nodes == len(nodes)
    assert (lexicon.child_rows(np.arange(lexicon.n_nodes)) >= 0).sum() == len(nodes) - 1
    assert lexicon.total == pytest.approx(sum(merged.values()))
    for node in nodes:
        i = lexicon.walk(vocab.encode(node))
        below = [c for w, c in merged.items() if w.startswith(node)]
        assert i >= 0 and bool(lexicon.ends(i)) == (node in merged)
        assert lexicon.count(i) == pytest.approx(merged.get(node, 0.0))
        assert lexicon.max_below(i) == max(below, default=0) and lexicon.mass(i) == pytest.approx(sum(below))
        assert {t for t in range(len(vocab)) if lexicon.child(i, t) >= 0} == set(children.get(node, {}))
        assert {t + 1 for t in np.flatnonzero(lexicon.child_rows(i) >= 0)} == set(children.get(node, {}))
        for t, child in children.get(node, {}).items():
            assert lexicon.child(i, t) == lexicon.walk(vocab.encode(child))
        if node in merged:
            assert lexicon.written[lexicon.display(i)] == display[node]
        else:
            assert lexicon.display(i) == -1
        runs = lexicon.words_below(i)  # their words, as the written forms they are shown in
        assert [display[w] for w in sorted((w for w in merged if w.startswith(node)), key=vocab.encode)] == [
            lexicon.written[lexicon.display(end)] for end in (lexicon.seg[runs + 1] - 1).tolist()]
    off = np.array([-1, -1])  # off the lexicon: no child, no word, no count
    assert (lexicon.child(off, [1, 2]) == -1).all() and (lexicon.child_rows(off) == -1).all()
    assert not lexicon.ends(off).any() and (lexicon.max_below(off) == 0).all() and (lexicon.mass(off) == 0).all()
    return lexicon


@settings(max_examples=60, deadline=None)
@given(words=st.lists(st.text("abcAB x", max_size=6), max_size=40),
       counts_seed=st.integers(0, 10), lowercase=st.booleans())
def test_lexicon_equals_a_dict_of_dicts_trie(words, counts_seed, lowercase):
    counts = np.random.default_rng(counts_seed).integers(0, 4, len(words)).astype(float)
    check_against_reference(words, counts, rnnac.Vocab("abcAB"), lowercase)


@settings(max_examples=60, deadline=None)
@given(words=st.lists(st.text("abcAB xsSáÁçßẞ", max_size=6), max_size=40),
       counts_seed=st.integers(0, 10), lowercase=st.booleans())
def test_a_lexicon_that_folds_accents_equals_a_dict_of_dicts_trie(words, counts_seed, lowercase):
    counts = np.random.default_rng(counts_seed).integers(0, 4, len(words)).astype(float)
    lexicon = check_against_reference(words, counts, rnnac.Vocab("abcABsS"), lowercase, accents=True)
    assert lexicon.words_below(-1).size == 0


def test_lexicon_edge_cases():
    check_against_reference([], [], VOCAB)
    empty = Lexicon(["", "xyz"], VOCAB)
    assert empty.skipped == 1 and empty.n_words == 0 and empty.total == 0 and empty.walk([1]) == -1
    check_against_reference(["a\nb", "ab", "a"], [1, 2, 3], VOCAB)  # a newline: never a word's character
    with_newline = Lexicon(["a\nb", "ab", "b"], rnnac.Vocab("\nab"))  # even in a vocabulary that has it
    assert with_newline.skipped == 1 and with_newline.ends(with_newline.walk([2, 3])) and with_newline.total == 2
    wide = rnnac.Vocab(chr(0x100 + i) for i in range(300))  # over 256 tokens: wider token rows
    rng = np.random.default_rng(0)
    words = ["".join(rng.choice(wide.chars[:20] + ["z"], size=rng.integers(1, 6))) for _ in range(200)]
    check_against_reference(words, rng.integers(1, 5, len(words)).astype(float), wide)
    assert Lexicon(["ab"], VOCAB).count(2).dtype == np.float64


def test_lexicon_keeps_the_most_frequent_written_form():
    vocab = rnnac.Vocab("abiprs")
    lexicon = Lexicon(["paris", "Paris", "PARIS", "Paris", "ab"], vocab, counts=[5, 4, 1, 3, 1])
    node = lexicon.walk(vocab.encode("paris"))
    assert lexicon.count(node) == 13 and lexicon.written[lexicon.display(node)] == "Paris"  # 4 + 3 > 5
    tie = Lexicon(["Ab", "ab", "AB"], VOCAB, counts=[2, 2, 1])
    assert tie.written[tie.display(tie.walk([1, 2]))] == "Ab"  # equally frequent: the first given


@pytest.mark.parametrize("lexicon_words", [
    {"a": 50, "ab": 30, "abc": 9, "ba": 40, "bbb": 1, "cab": 12, "cabb": 3},  # already folded: found by bisection
    LEXICON,  # "Abc" folds to "abc" and "xyz" is outside the vocabulary: found by folding every word
])
def test_a_few_prefixes_search_only_the_part_of_the_list_below_them(lexicon_words):
    from rnnac.storage.lexicon import LexiconData

    model = random_model(3, scale=1.5)
    stored = LexiconData.from_unsorted(list(lexicon_words), list(lexicon_words.values()), [False] * len(lexicon_words))
    whole = Completer(model, VOCAB, lexicon=Lexicon(stored.words, VOCAB, counts=stored.counts), mixture_lambda=0.6)

    def lazy_completer():
        lazy = Completer(model, VOCAB, mixture_lambda=0.6)
        lazy.lexicon_words = stored
        return lazy

    for prefixes in (["a"], ["ab", "c"], ["cab", "ca", "b"], ["cc"]):
        for mode, max_edits in itertools.product(("mixture", "known", "open"), (0, 1)):
            lazy = lazy_completer()  # a first call: a cold `rnnac complete`
            got = lazy.complete_many(prefixes, 3, MAX_LENGTH, **flags(mode), max_edits=max_edits)
            expected = whole.complete_many(prefixes, 3, MAX_LENGTH, **flags(mode), max_edits=max_edits)
            assert [(pairs(r), known_of(r)) for r in got] == [(pairs(r), known_of(r)) for r in expected]
            # never built whole for these few prefixes, unless a typo may have left out all of one
            assert (lazy.lexicons.built is None) == (min(map(len, prefixes)) > max_edits)
    lazy = lazy_completer()
    assert pairs(lazy.complete("", k=2, max_length=MAX_LENGTH)) == pairs(whole.complete("", k=2, max_length=MAX_LENGTH))
    assert lazy.lexicons.built is not None  # the empty prefix needs all of it
    lazy = lazy_completer()
    lazy.complete("a", max_length=MAX_LENGTH)
    assert lazy.lexicons.built is None
    assert pairs(lazy.complete("a", max_length=MAX_LENGTH)) == pairs(whole.complete("a", max_length=MAX_LENGTH))
    assert lazy.lexicons.built is not None  # called again: a running process builds it once


def test_a_plain_list_that_knows_its_words_log_p_rnn_searches_fewer_nodes():
    """Every count 1: the count bound is the same everywhere; the word bound tells nodes apart,
    with the same answers."""
    rng = np.random.default_rng(0)
    model = random_model(5, scale=1.5, hidden_size=8)
    words = sorted({"".join(rng.choice(list("abc"), size=rng.integers(3, 9))) for _ in range(400)})
    flat = dict.fromkeys(words, 1)
    prefixes = ["a", "b", "c", "ab", "ca", "bb", "abc", "cab"]
    answers, evaluations = [], []
    for scored in (False, True):
        completer = mixture_completer(model, flat, 0.99, scored)
        answers.append([pairs(r) for r in completer.complete_many(prefixes, 5, 12, budget=10**6, known_only=True)])
        evaluations.append(completer.evaluations)
    assert answers[0] == answers[1]
    assert evaluations[1] < 0.8 * evaluations[0], evaluations


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10**6), scale=st.floats(0.3, 3.0), prefix=st.text("abc", max_size=2),
       mode=st.sampled_from(["mixture", "known"]), lam=st.sampled_from(LAMBDAS) | st.floats(0, 1),
       flat=st.booleans(), data=st.data())
def test_every_bound_is_at_least_the_best_word_below_it(seed, scale, prefix, mode, lam, flat, data):
    """Scoring.bounds against the definitions, node by node, for a lexicon that knows its words'
    log P_rnn: no word below a child scores more than the child's bound (the search's exactness)."""
    max_length = 5
    model = random_model(seed, scale)
    every = ["".join(w) for m in range(1, max_length + 1) for w in itertools.product("abc", repeat=m)]
    chosen = data.draw(st.lists(st.sampled_from(every), min_size=1, max_size=30, unique=True))
    lexicon_words = {w: 1 if flat else data.draw(st.integers(1, 1000)) for w in chosen}
    lexicon = mixture_completer(model, lexicon_words, lam, scored=True).lexicon
    probs = rnn_probs(model, max_length)
    best = dict(oracle(probs, folded_counts(lexicon_words), prefix, mode, lam, max_length))  # word -> log P(w | s)
    with np.errstate(divide="ignore"):
        prefix_lp = np.log(probs[prefix][0])
    roots = search.Roots(None, None, np.array([len(prefix)]), np.array([lexicon.walk(VOCAB.encode(prefix))]),
                         np.array([0]), np.array([prefix_lp]))
    scoring = search.Scoring.of(roots, mode, lexicon, lam)
    assert scoring.word_offset is not None
    for below in [""] + [w[len(prefix):m] for w in chosen if w.startswith(prefix) for m in range(len(prefix) + 1, len(w))]:
        node = prefix + below
        with np.errstate(divide="ignore"):
            child_lp = np.log([probs[node + ch][0] for ch in VOCAB.chars]) - prefix_lp  # log P_rnn(u c | s)
        bounds = scoring.bounds(np.array([0]), child_lp[None, :], np.array([lexicon.walk(VOCAB.encode(node))]))[0]
        for ch, bound in zip(VOCAB.chars, bounds):
            words = [lp for w, lp in best.items() if w.startswith(node + ch)]
            assert bound >= max(words, default=-np.inf) - 1e-9, (node + ch, bound, max(words, default=None))


def test_a_word_with_a_newline_is_never_completed_even_where_a_space_is_a_character():
    lexicon = Lexicon(["a\nb", "ab"], rnnac.Vocab(" ab"))
    assert lexicon.skipped == 1 and lexicon.n_words == 1 and lexicon.walk([2, 1, 3]) == -1  # "a b" is no word


def capped(ranking, counts, new):
    """The oracle's ranking with at most `new` words outside the lexicon: the others leave their places."""
    out, invented = [], 0
    for word, lp in ranking:
        if word not in counts:
            invented += 1
            if invented > new:
                continue
        out.append((word, lp))
    return out


@pytest.mark.parametrize("new", [0, 1, 2])
@pytest.mark.parametrize("lam", [0.0, 0.3, 0.9])
@pytest.mark.parametrize("scored", [False, True])
def test_new_caps_the_invented_strings_of_a_top_k_exactly(new, lam, scored):
    model = random_model(1, scale=1.5)
    probs, counts = rnn_probs(model, MAX_LENGTH), folded_counts(LEXICON)
    completer = mixture_completer(model, LEXICON, lam, scored)
    for k in (1, 3, 8):
        for beam in (None, 4):
            results = completer.complete_many(PREFIXES, k, MAX_LENGTH, budget=10**6, beam=beam, new=new)
            for prefix, result in zip(PREFIXES, results):
                assert not result.truncated
                assert known_of(result).count(False) <= new
                if beam is None:
                    expected = capped(oracle(probs, counts, prefix, "mixture", lam, MAX_LENGTH), counts, new)
                    assert_same_ranking(pairs(result), expected, k)
                    assert known_of(result) == [w in counts for w, _ in pairs(result)]


def test_by_default_a_counted_list_allows_one_invented_string_and_a_flat_list_none():
    model = random_model(1, scale=1.5)
    counted_list = mixture_completer(model, LEXICON, 0.3)
    flat = mixture_completer(model, dict.fromkeys(folded_counts(LEXICON), 1), 0.3)
    assert (counted_list.default_new(), flat.default_new(), Completer(model, VOCAB).default_new()) == (1, 0, None)
    for prefix in PREFIXES:
        assert counted_list.complete(prefix, 6).completions == counted_list.complete(prefix, 6, new=1).completions
        assert flat.complete(prefix, 6).completions == flat.complete(prefix, 6, known_only=True).completions


def test_a_full_cap_prunes_the_search_off_the_lexicon():
    """Once the top holds its invented strings, nodes off the lexicon can only bring more: a
    nearly uniform model would otherwise wander through all of them (up to the budget)."""
    completer = mixture_completer(random_model(0, scale=0.1), LEXICON, 0.5)
    result, evaluations = counted(completer, "c", 10, max_length=8, budget=10**5, new=1)  # 3 lexicon words below c
    assert not result.truncated and known_of(result).count(False) == 1
    assert evaluations < 100  # not the 3,280 strings of up to 8 characters below c
