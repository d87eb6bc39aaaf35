import itertools
import json
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rnnac
from rnnac.engine.bptt import Engine
from rnnac.errors import CheckpointError
from rnnac.inference import completer as complete
from rnnac.inference import sampling, search
from rnnac.inference.completer import Completer
from rnnac.inference.options import MAX_K
from rnnac.storage import checkpoint
from rnnac.storage.checkpoint import save_checkpoint
from rnnac.storage.folding import Folding
from rnnac.storage.lexicon import Lexicon, LexiconData
from columns import counted, pairs
from test_checkpoint import CHARS, make_checkpoint

VOCAB = rnnac.Vocab("abc")
MAX_LENGTH = 6
PREFIXES = ["", "a", "cb", "abca", "bbbbbb"]


def peaked_model(activation="tanh", seed=0, dtype=np.float64, hidden_size=6):
    """Random weights large enough that probabilities differ a lot, as in a trained model."""
    model = rnnac.RNN.init(len(VOCAB), hidden_size, activation, seed=seed, dtype=dtype)
    rng = np.random.default_rng(seed + 1)
    for p in model.params.values():
        p[:] = rng.normal(0, 1.0, p.shape)
    return model


def brute_force(model, prefix, max_length=MAX_LENGTH, allowed=None):
    """log P(word | prefix) of every word up to max_length, best first, by scoring them all."""
    words = [prefix + "".join(tail) for m in range(max_length - len(prefix) + 1)
             for tail in itertools.product(VOCAB.chars, repeat=m)]
    words = [w for w in words if w and (allowed is None or w in allowed)]
    if not words:
        return []
    logprobs = Engine(model).target_logprobs(rnnac.make_batch(words, VOCAB))  # (B, T)
    # The prefix's own characters are given: only targets from position len(prefix) on count.
    scores = logprobs[:, len(prefix):].sum(axis=1)
    order = np.argsort(-scores, kind="stable")
    return [(words[i], float(scores[i])) for i in order]


def assert_same_ranking(got, expected, k):
    """Same top-k log-probs; words equal except where two probabilities tie."""
    expected = expected[:k]
    assert len(got) == len(expected)
    np.testing.assert_allclose([lp for _, lp in got], [lp for _, lp in expected], rtol=0, atol=1e-9)
    for (w, lp), (w_exp, lp_exp) in zip(got, expected):
        assert w == w_exp or abs(lp - lp_exp) < 1e-12


@pytest.mark.parametrize("activation", ["tanh", "sigmoid", "relu"])
@pytest.mark.parametrize("seed", [0, 1])
def test_exact_search_matches_brute_force(activation, seed):
    model = peaked_model(activation, seed)
    completer = Completer(model, VOCAB)
    for k in (1, 5, 40):
        results = completer.complete_many(PREFIXES, k=k, max_length=MAX_LENGTH, budget=10**6)
        for prefix, result in zip(PREFIXES, results):
            assert not result.truncated and result.error is None
            assert all(w.startswith(prefix) and len(w) <= MAX_LENGTH for w, _ in pairs(result))
            assert_same_ranking(pairs(result), brute_force(model, prefix), k)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10**6), k=st.integers(1, 12), max_length=st.integers(1, 5),
       prefix=st.text("abc", max_size=3), scale=st.floats(0.1, 3.0), lexicon_seed=st.none() | st.integers(0, 99))
def test_exact_search_matches_brute_force_on_random_models(seed, k, max_length, prefix, scale, lexicon_seed):
    model = rnnac.RNN.init(len(VOCAB), 5, seed=seed, dtype=np.float64)
    rng = np.random.default_rng(seed)
    for p in model.params.values():
        p[:] = rng.normal(0, scale, p.shape)  # from nearly uniform to very peaked
    allowed, lexicon = None, None
    if lexicon_seed is not None:
        every = [w for w, _ in brute_force(model, "", max_length=5)]
        allowed = set(np.random.default_rng(lexicon_seed).choice(every, size=20, replace=False))
        lexicon = Lexicon(allowed, VOCAB)
    got = Completer(model, VOCAB).complete(prefix, k=k, max_length=max_length, budget=10**6, lexicon=lexicon)
    longest = max_length if allowed is None else max(max_length, 5)  # lexicon words are never cut
    expected = brute_force(model, prefix, max_length=longest, allowed=allowed)  # none for a longer prefix off the lexicon
    assert_same_ranking(pairs(got), expected, k)


def test_all_words_up_to_the_length_bound_when_k_is_large():
    model = peaked_model()
    result = Completer(model, VOCAB).complete("ab", k=MAX_K, max_length=5, budget=10**6)  # k > the 40 words
    expected = brute_force(model, "ab", max_length=5)
    assert len(pairs(result)) == len(expected) == 1 + 3 + 9 + 27
    assert_same_ranking(pairs(result), expected, len(expected))
    # Every word once, and the probabilities of all words up to the bound sum to at most 1.
    assert len({w for w, _ in pairs(result)}) == len(expected)
    assert np.exp([lp for _, lp in pairs(result)]).sum() <= 1 + 1e-12


def test_a_prefix_at_the_length_bound_is_its_own_only_candidate():
    model = peaked_model()
    [(word, lp)] = pairs(Completer(model, VOCAB).complete("bbbbbb", k=5, max_length=6))
    assert word == "bbbbbb"
    assert lp == pytest.approx(brute_force(model, "bbbbbb")[0][1], abs=1e-12)


def test_the_empty_prefix_gives_the_most_likely_words():
    model = peaked_model(seed=1)
    result = Completer(model, VOCAB).complete("", k=5, max_length=MAX_LENGTH)
    assert all(w for w, _ in pairs(result))  # the empty word is never a completion
    assert_same_ranking(pairs(result), brute_force(model, ""), 5)


@pytest.mark.parametrize("width", [1, 2, 3, 8])
def test_beam_search_never_beats_exact_search(width):
    model = peaked_model(seed=1)
    completer = Completer(model, VOCAB)
    for prefix in PREFIXES:
        truth = dict(brute_force(model, prefix))
        exact = pairs(completer.complete(prefix, k=5, max_length=MAX_LENGTH, budget=10**6))
        beam = pairs(completer.complete(prefix, k=5, max_length=MAX_LENGTH, beam=width))
        assert beam, "a beam search finds at least one word here"
        for (word, lp), (_, exact_lp) in zip(beam, exact):
            assert lp == pytest.approx(truth[word], abs=1e-9)  # its scores are true probabilities
            assert lp <= exact_lp + 1e-9  # and its i-th word is never better than the exact i-th
        assert [lp for _, lp in beam] == sorted((lp for _, lp in beam), reverse=True)


def test_wide_beam_search_is_exact():
    """With a beam wider than all nodes of a depth, beam search examines every word."""
    model = peaked_model(seed=0)
    completer = Completer(model, VOCAB)
    beam = pairs(completer.complete("a", k=5, max_length=5, beam=3**4))
    assert_same_ranking(beam, brute_force(model, "a", max_length=5), 5)


def test_lexicon_restricts_completions_and_keeps_the_ranking():
    model = peaked_model(seed=1)
    words = ["ab", "abc", "abcabc", "b", "cab", "cc", "a", "aaaaaaa", "AC", "xyz", "ab"]
    lexicon = Lexicon(words, VOCAB, folding=True)
    assert lexicon.skipped == 1  # "xyz" can never be completed; "AC" folds to "ac"
    completer = Completer(model, VOCAB)
    allowed = {w.lower() for w in words}
    for prefix in ["", "a", "ab", "c"]:
        got = pairs(completer.complete(prefix, k=4, max_length=MAX_LENGTH, lexicon=lexicon))
        assert {w for w, _ in got} <= allowed
        assert_same_ranking(got, brute_force(model, prefix, max_length=7, allowed=allowed), 4)
        beam = pairs(completer.complete(prefix, k=4, max_length=MAX_LENGTH, lexicon=lexicon, beam=2))
        assert {w for w, _ in beam} <= allowed
    # "aaaaaaa" is longer than max_length, but a lexicon word: never cut; no lexicon word starts with "bb".
    assert [w for w, _ in pairs(completer.complete("aaa", lexicon=lexicon, max_length=MAX_LENGTH))] == ["aaaaaaa"]
    assert pairs(completer.complete("bb", lexicon=lexicon)) == []


def test_lexicon_from_file_reads_plain_and_tsv(tmp_path):
    (tmp_path / "words.txt").write_text("ab\nCab\n")
    (tmp_path / "words.tsv").write_text("ab\t10\ncab\t3\n")
    for name in ("words.txt", "words.tsv"):
        lexicon = Lexicon.from_file(tmp_path / name, VOCAB)
        assert lexicon.walk(VOCAB.encode("cab")) > 0 and lexicon.ends(lexicon.walk(VOCAB.encode("cab")))
        assert not lexicon.ends(lexicon.walk(VOCAB.encode("ca")))
        assert lexicon.walk(VOCAB.encode("b")) == -1


def test_unknown_characters_and_case_folding():
    model = peaked_model()
    results = Completer(model, VOCAB, folding=True).complete_many(["aB", "ax", "ab", "", "ax"], k=3)
    assert results[0].error is None and pairs(results[0]) == pairs(results[2])
    assert all(w.startswith("ab") for w, _ in pairs(results[0]))  # words are folded
    assert results[0].prefix == "aB"
    for bad in (results[1], results[4]):
        assert pairs(bad) == [] and "'ax'" in bad.error and "'x'" in bad.error
    assert pairs(results[3])  # the others are still answered
    strict = Completer(model, VOCAB, folding=False).complete("aB")
    assert "'B'" in strict.error


def test_budget_truncates_and_says_so():
    model = peaked_model()
    completer = Completer(model, VOCAB)
    cut, evaluations = counted(completer, "", k=40, max_length=MAX_LENGTH, budget=10)
    assert cut.truncated and evaluations <= 10
    # What was found is real, and in order, but not necessarily the true top 40.
    truth = dict(brute_force(model, ""))
    assert all(lp == pytest.approx(truth[w], abs=1e-9) for w, lp in pairs(cut))
    full, evaluations = counted(completer, "", k=40, max_length=MAX_LENGTH, budget=10**6)
    assert not full.truncated and evaluations > 10
    beam_cut, evaluations = counted(completer, "", k=5, max_length=MAX_LENGTH, beam=4, budget=5)
    assert beam_cut.truncated and evaluations <= 5


def test_batching_and_memory_splits_do_not_change_results(monkeypatch):
    model = peaked_model(dtype=np.float32, hidden_size=8)
    prefixes = ["".join(p) for n in range(4) for p in itertools.product("abc", repeat=n)]  # 40 prefixes
    alone = [pairs(Completer(model, VOCAB).complete(p, k=5, max_length=7)) for p in prefixes]
    # One group of all 40 outgrows a tiny memory cap: it is retried in halves, quarters, ...
    monkeypatch.setattr(complete, "SEARCH_BYTES", 20_000)
    monkeypatch.setattr(Completer, "_group_size", lambda self, budget, extra=0.0: 64)
    groups, init = [], search.ExactSearch.__init__
    monkeypatch.setattr(search.ExactSearch, "__init__",
                        lambda self, model, roots, *rest, **kw: groups.append(len(roots.a)) or init(self, model, roots, *rest, **kw))
    together = [pairs(r) for r in Completer(model, VOCAB).complete_many(prefixes, k=5, max_length=7)]
    assert groups[:3] == [40, 20, 10]
    for a, b in zip(alone, together):
        assert [w for w, _ in a] == [w for w, _ in b]
        np.testing.assert_allclose([lp for _, lp in a], [lp for _, lp in b], rtol=0, atol=1e-5)


def test_sample_words():
    model = peaked_model(seed=1)
    words = sampling.sample(model, VOCAB, 300, prefix="Ab", rng=np.random.default_rng(0), max_length=6)
    assert len(words) == 300 and all(w.startswith("ab") and 2 <= len(w) <= 6 for w in words)
    assert words == sampling.sample(model, VOCAB, 300, prefix="ab", rng=0, max_length=6)  # a seed repeats
    assert all(sampling.sample(model, VOCAB, 50, rng=1))  # never an empty word
    greedy = sampling.sample(model, VOCAB, 3, temperature=0, prefix="a")
    assert len(set(greedy)) == 1


def test_samples_follow_the_model():
    """The most likely word comes up as often as its probability says (within 5 sigma)."""
    model = peaked_model(seed=0)
    (best, lp), = pairs(Completer(model, VOCAB).complete("c", k=1, max_length=8))
    n, p = 20_000, np.exp(lp)
    hits = sampling.sample(model, VOCAB, n, prefix="c", rng=3, max_length=8).count(best)
    assert abs(hits - n * p) < 5 * np.sqrt(n * p * (1 - p))


def save_tiny(path, model=None, lowercase=True):
    model = model or peaked_model(dtype=np.float32)
    meta = {"chars": VOCAB.chars, "activation": model.activation, "hidden_size": model.hidden_size,
            "dtype": str(model.dtype), "config": {"data": {"lowercase": lowercase}}, "step": 7, "epoch": 1,
            "best_val_loss": 1.25, "rng_state": {}}
    save_checkpoint(path, model.params, meta)
    return model


def test_loading_follows_flag_then_environment_then_bundled(tmp_path, monkeypatch):
    flagged, env = tmp_path / "flag.npz", tmp_path / "env.npz"
    save_tiny(flagged, lowercase=False)
    save_tiny(env, lowercase=True)
    monkeypatch.setenv("RNNAC_CHECKPOINT", str(env))
    assert checkpoint.resolve_checkpoint(flagged) == flagged
    assert Completer.load(flagged).lowercase is False
    assert Completer.load().lowercase is True
    monkeypatch.delenv("RNNAC_CHECKPOINT")
    bundled = tmp_path / "models" / "en.npz"
    monkeypatch.setattr(checkpoint, "BUNDLED_MODEL", bundled)
    with pytest.raises(CheckpointError, match="no bundled model; train one"):
        Completer.load()
    bundled.parent.mkdir()
    save_tiny(bundled, lowercase=False)
    assert checkpoint.resolve_checkpoint() == bundled
    assert Completer.load().lowercase is False  # no flag, no variable: the bundled model


# What the bundled model answered before accent folding existed (rnnac 0.2.0 as of issue 19):
# trained without it, it must answer the same. Retraining the bundled model changes these.
BUNDLED_BEFORE_ACCENTS = [
    ("rec", [("record", -2.407284337086524), ("received", -2.525412803721652), ("recent", -2.791738420643236),
             ("recently", -2.845644024255295), ("records", -3.1175538658326483)]),
    ("REC", [("RECORD", -2.407284337086524), ("RECEIVED", -2.525412803721652), ("RECENT", -2.791738420643236),
             ("RECENTLY", -2.845644024255295), ("RECORDS", -3.1175538658326483)]),
    ("pari", [("paris", -0.4856620409904582), ("parish", -2.0700269094915766), ("parity", -3.6308833408052363),
              ("parishes", -3.7962422435669505), ("parisian", -4.019131207809201)]),
    ("strasse", [("strassed", -0.062476628459990025), ("strasser", -3.793562412261963), ("strasses", -4.632018476724625),
                 ("strassers", -5.061617601662874), ("strasse", -5.573556423187256)]),
]


def test_the_bundled_model_reads_accents_as_it_did_before_accent_folding():
    completer = Completer.load(checkpoint.BUNDLED_MODEL)
    assert completer.folding == Folding(lowercase=True, accents=False)  # its config has no data.fold_accents
    for prefix, expected in BUNDLED_BEFORE_ACCENTS:
        got = [(c.word, c.logprob) for c in completer.complete(prefix, 5, new=MAX_K).completions]
        assert [w for w, _ in got] == [w for w, _ in expected]
        np.testing.assert_allclose([lp for _, lp in got], [lp for _, lp in expected], rtol=0, atol=1e-6)
    for accented, char in (("café", "é"), ("naïve", "ï"), ("Zürich", "ü")):  # no letter of its own: an error, as before
        assert completer.complete(accented).error == f"{accented!r} holds {char!r}, which is not in the vocabulary"
    typo = completer.complete("cafè", 3, max_edits=1)  # the accent is one edit, not folded away
    assert [(c.word, c.corrected) for c in typo.completions] == [("cafe", "caf"), ("caffeine", "caff"), ("cafeteria", "caf")]


def test_a_checkpoint_without_fold_accents_completes_as_before(tmp_path):
    vocab = rnnac.Vocab("abcefé")
    model = rnnac.RNN.init(len(vocab), 6, seed=1, dtype=np.float64)
    words, counts = ["café", "cafe", "Caféb", "abc"], [3.0, 5.0, 2.0, 1.0]
    lexicon = LexiconData.from_unsorted(words, counts, [False] * 4)
    meta = {"chars": vocab.chars, "activation": "tanh", "hidden_size": 6, "dtype": "float64", "step": 7, "epoch": 1,
            "best_val_loss": 1.25, "rng_state": {}, "config": {"data": {"lowercase": True}}, "mixture_lambda": 0.7}
    save_checkpoint(tmp_path / "old.npz", model.params, meta, lexicon=lexicon)
    loaded = Completer.load(tmp_path / "old.npz")
    assert loaded.folding == Folding(True, False)
    before = Completer(model, vocab, True, rnnac.Lexicon(words, vocab, True, counts), mixture_lambda=0.7)
    prefixes = ["caf", "café", "cafe", "CAFÉ", "a"]
    for got, expected in zip(loaded.complete_many(prefixes, 6, max_length=6), before.complete_many(prefixes, 6, max_length=6)):
        assert got.completions == expected.completions
    assert [c.word for c in loaded.complete("cafe", 6, known_only=True).completions] == ["cafe"]  # café is another word
    folding = Completer(model, vocab, Folding(True, True), rnnac.Lexicon(words, vocab, Folding(True, True), counts), 0.7)
    assert [c.word for c in folding.complete("cafe", 6, known_only=True).completions] != ["cafe"]


def test_the_shipped_bundled_model_completes_common_words():
    completer = Completer.load(checkpoint.BUNDLED_MODEL)
    words = [w for w, _ in pairs(completer.complete("rec", k=5))]
    assert len(words) == 5 and all(w.startswith("rec") for w in words)
    assert "record" in words


def test_unusable_checkpoints_are_checkpoint_errors(tmp_path):
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(CheckpointError, match="not a valid .npz"):
        Completer.load(tmp_path / "junk.npz")
    with pytest.raises(CheckpointError, match="no such file"):
        Completer.load(tmp_path / "missing.npz")
    model = peaked_model(dtype=np.float32)
    save_tiny(tmp_path / "odd.npz", model)
    raw = dict(np.load(tmp_path / "odd.npz"))
    meta = json.loads(raw["meta"].item())
    meta["activation"] = "swish"
    raw["meta"] = np.array(json.dumps(meta))
    np.savez(tmp_path / "odd.npz", **raw)
    with pytest.raises(CheckpointError, match="activation"):
        Completer.load(tmp_path / "odd.npz")


def test_describe(tmp_path):
    model = save_tiny(tmp_path / "m.npz")
    facts = checkpoint.describe(tmp_path / "m.npz")
    assert facts["chars"] == "abc" and facts["vocab_size"] == 4 and facts["hidden_size"] == 6
    assert facts["parameters"] == model.n_params() == 6 * 4 + 36 + 6 + 4 * 6 + 4
    assert facts["step"] == 7 and facts["best_val_loss"] == 1.25
    assert facts["config"] == {"data": {"lowercase": True}}


@pytest.mark.parametrize("typed, written, lowercase, shown", [
    ("rec", None, True, "record"), ("REC", None, True, "RECORD"), ("Rec", None, True, "Record"),
    ("R", None, True, "Record"), ("rEC", None, True, "rECord"), ("REC", "record", True, "RECORD"),
    ("rec", "Record", True, "Record"), ("REC", "ReCord", True, "ReCord"),  # the lexicon's own case wins
    ("rec", None, False, "record"), ("rec", "record", False, "record"),  # a model that keeps case: as found
])
def test_as_typed(typed, written, lowercase, shown):
    from rnnac.inference.cases import as_typed

    assert as_typed(typed, typed.lower() if lowercase else typed, "record", written, lowercase) == shown


@pytest.mark.parametrize("typed, folded, word, written, lowercase, shown", [
    ("cafe", "cafe", "cafe royal", "Café Royal", True, "Café Royal"),  # the list's own case and accents
    ("CAFE", "cafe", "cafe royal", "Café Royal", True, "Café Royal"),
    ("cre", "cre", "creme", "crème", True, "crème"),  # accents alone: in the case typed
    ("CRE", "cre", "creme", "crème", True, "CRÈME"), ("Cre", "cre", "creme", "crème", True, "Crème"),
    ("crè", "cre", "crexy", None, True, "crèxy"), ("CRÈ", "cre", "crexy", None, True, "CRÈXY"),  # no written form: as typed
    ("Sko", "Sko", "Skoda", "Škoda", False, "Škoda"), ("Šk", "Sk", "Skxy", None, False, "Škxy"),  # a model that keeps case
    ("stras", "stras", "strasse", "straße", True, "straße"), ("straß", "strass", "strassex", None, True, "straßex"),
])
def test_as_typed_shows_the_lists_accents(typed, folded, word, written, lowercase, shown):
    from rnnac.inference.cases import as_typed

    assert as_typed(typed, folded, word, written, lowercase) == shown


# --- lexicon words are never cut -----------------------------------------------------------


def test_lexicon_words_longer_than_32_characters_complete_and_set_the_default_cap(tmp_path):
    long_word = "abc" * 14  # 42 characters
    lexicon = LexiconData.from_unsorted([long_word, "ab", "ba"], [5.0, 1.0, 1.0], [False, False, False])
    path = tmp_path / "long.npz"
    save_checkpoint(path, *make_checkpoint(), lexicon=lexicon)
    assert json.loads(np.load(path)["meta"].item())["lexicon"]["longest"] == 42
    completer = Completer.load(path)
    assert completer.max_length() == 42 and Completer(completer.model, completer.vocab).max_length() == 32
    for known_only in (False, True):
        done = subprocess.run([sys.executable, "-m", "rnnac", "complete", "-c", str(path), "abcabc",
                               *(["--known-only"] if known_only else [])], capture_output=True, text=True)
        assert done.returncode == 0 and long_word in done.stdout.split(), done.stderr
    invented = [c.word for c in completer.complete("abca", 20, max_length=6).completions if c.word != long_word]
    assert invented and max(map(len, invented)) <= 6  # a cap given still holds for invented strings
    short = Completer(completer.model, completer.vocab, lexicon=Lexicon(["ab", "ba"], rnnac.Vocab(CHARS)))
    assert short.max_length() == 2 and all(len(c.word) <= 2 for c in short.complete("a", 20).completions)
