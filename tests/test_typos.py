"""Typo-tolerant completion against brute force: every edit path written out one operation at a
time, every candidate prefix and every word of a tiny alphabet scored from the definitions."""

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_search import LEXICON, VOCAB, folded_counts, mixture_completer, random_model, rnn_probs

from rnnac.inference.completer import Completer
from rnnac.inference.typos import Channel, _adjacent, _substitutions, candidates, spell_all
from rnnac.inference.options import MAX_K
from columns import corrected_of, counted, edits_of, flags, pairs, shown_of

OUTSIDE = "#"  # a character the vocabulary "abc" does not hold


def spell(found, node: int, chars) -> str:
    """The string of a node of the candidate trie `found`."""
    return str(spell_all(found.parent, found.token, found.depth, np.array(["", *chars]))[node])


def path_logprobs(s: list[int], t: list[int], costs, max_edits: int) -> list[float]:
    """The best log P(t | s) for each number of edits, by writing out every edit path: match,
    substitution, left out, extra character, swap. A path must end on a typed character."""
    best = [-math.inf] * (max_edits + 1)

    def go(i, j, e, lp, typed_last):
        if e > max_edits:
            return
        if i == len(s) and j == len(t) and (typed_last or not s):
            best[e] = max(best[e], lp)
        if i < len(s) and j < len(t):
            go(i + 1, j + 1, e + (s[i] != t[j]), lp + (costs.ok if s[i] == t[j] else costs.sub[s[i], t[j]]), True)
        if i < len(s):
            go(i + 1, j, e + 1, lp + costs.delete, False)
        if j < len(t):
            go(i, j + 1, e + 1, lp + costs.ins[t[j]], True)
        if i + 1 < len(s) and j + 1 < len(t) and s[i] == t[j + 1] and s[i + 1] == t[j] and s[i] != s[i + 1]:
            go(i + 2, j + 2, e + 1, lp + costs.trans, True)

    go(0, 0, 0, 0.0, False)
    return best


def brute_candidates(typed: list[int], costs, max_edits: int, chars: str, max_length: int) -> dict[str, tuple[float, int]]:
    """{intended prefix: (log P(t | s), edits)} over every string up to len(t) + max_edits characters."""
    out = {}
    for n in range(min(len(typed) + max_edits, max_length) + 1):
        for s in itertools.product(range(1, len(chars) + 1), repeat=n):
            best = path_logprobs(list(s), typed, costs, max_edits)
            if max(best) > -math.inf:
                out["".join(chars[c - 1] for c in s)] = (max(best), int(np.argmax(best)))
    return out


def ids(text: str, chars: str) -> list[int]:
    return [chars.index(ch) + 1 if ch in chars else len(chars) + 1 for ch in text]


@pytest.mark.parametrize("chars", ["abc", "asq"])  # a, s and q sit next to each other on a keyboard
@pytest.mark.parametrize("keyboard", ["qwerty", "none"])
def test_candidates_are_every_prefix_within_the_edits_with_its_best_path(chars, keyboard):
    rng = np.random.default_rng(len(chars) + len(keyboard))
    channels = [Channel(keyboard=keyboard), Channel(0.05, 0.02, 0.03, 0.04, keyboard), Channel(0.1, 0.0, 0.0, 0.2, keyboard)]
    for trial in range(40):
        costs = channels[trial % 3].costs(list(chars))
        max_edits, m = int(rng.integers(0, 3)), int(rng.integers(0, 5))
        typed = [int(x) for x in rng.integers(1, len(chars) + 2, size=m)]  # len(chars) + 1: outside the vocabulary
        max_length = int(rng.integers(1, 6))
        got = candidates(typed, costs, max_edits, max_length)
        found = {spell(got, n, chars): (got.channel[n], got.edits[n]) for n in np.flatnonzero(got.channel > -np.inf)}
        expected = brute_candidates(typed, costs, max_edits, chars, max_length)
        assert found.keys() == expected.keys(), (typed, max_edits)
        for s, (lp, edits) in expected.items():
            assert found[s][0] == pytest.approx(lp, abs=1e-12) and found[s][1] == edits, s
        spelled = [spell(got, n, chars) for n in range(len(got.parent))]
        assert len(set(spelled)) == len(spelled) and all(len(s) <= max_length for s in spelled)  # a trie


def typo_oracle(probs, counts, typed, mode, lam, max_length, max_edits, costs):
    """[(word, log P, {(edits, corrected)})] best first, strings off the lexicon at most max_length
    characters (lexicon words are never cut): a word w scores max over its candidate
    prefixes s of P(w) P(t | s), divided by Z(t) = sum over candidates of P(s*) P(t | s); P is the
    mixture (the RNN alone when open). Prefixes whose channels tie (to 1e-12: sums of the same
    costs in another order differ in the last bits) may each be the one reported. In log space:
    an edit probability may be as small as 5e-324."""
    total = sum(counts.values())
    cands = brute_candidates(ids(typed, "abc"), costs, max_edits, "abc", len(typed) + max_edits)  # lexicon words are never cut

    def log(x):
        return math.log(x) if x > 0 else -math.inf

    def prefix_mass(s):
        rnn = probs[s][0]
        if mode == "open":
            return rnn
        return lam * sum(c for w, c in counts.items() if w.startswith(s)) / total + (1 - lam) * rnn

    terms = [log(prefix_mass(s)) + lp for s, (lp, _) in cands.items()]
    top = max(terms, default=-math.inf)
    log_z = top + math.log(sum(math.exp(t - top) for t in terms)) if top > -math.inf else -math.inf
    out = []
    for w in probs:
        if not w or (len(w) > max_length and w not in counts) or (mode == "known" and w not in counts):
            continue
        p = probs[w][1] if mode == "open" else lam * counts.get(w, 0) / total + (1 - lam) * probs[w][1]
        scored = [(log(p) + cands[w[:n]][0], w[:n]) for n in range(len(w) + 1) if w[:n] in cands]
        best = max((score for score, _ in scored), default=-math.inf)
        if best > -math.inf and log_z > -math.inf:
            tied = {(cands[s][1], s) for score, s in scored if score >= best - 1e-12}
            out.append((w, best - log_z, tied))
    return sorted(out, key=lambda row: -row[1])


def assert_same_typo_ranking(result, expected, k):
    got = list(zip((w for w, _ in pairs(result)), (lp for _, lp in pairs(result)), edits_of(result), corrected_of(result)))
    expected = expected[:k]
    assert len(got) == len(expected), (got, expected)
    np.testing.assert_allclose([row[1] for row in got], [row[1] for row in expected], rtol=0, atol=1e-9)
    for row, want in zip(got, expected):
        if abs(row[1] - want[1]) > 1e-12 or row[0] == want[0]:  # a tie may order two words either way
            assert row[0] == want[0] and (row[2], row[3]) in want[2], (row, want)
    assert len({row[0] for row in got}) == len(got)  # one row per word: its best path


TYPED = ["", "a", "ab", "ca", "bca", "a" + OUTSIDE, "cabb"]


@pytest.mark.parametrize("mode", ["open", "mixture", "known"])
@pytest.mark.parametrize("lam", [0.0, 0.4, 1.0])
@pytest.mark.parametrize("max_edits", [1, 2])
@pytest.mark.parametrize("scored", [False, True])
def test_typo_completion_matches_brute_force(mode, lam, max_edits, scored):
    """scored: the lexicon knows its words' log P_rnn, whose bound holds root by root too."""
    model = random_model(5, scale=1.5)
    max_length = 4
    probs, counts = rnn_probs(model, max(map(len, TYPED)) + max_edits), folded_counts(LEXICON)  # every candidate's
    completer = mixture_completer(model, LEXICON, lam, scored)
    channel = Channel(0.08, 0.03, 0.05, 0.04, "none")  # frequent errors: typo paths win often
    costs = channel.costs(list(VOCAB.chars))
    for k in (1, 4, 500):
        results = completer.complete_many(TYPED, k, max_length, budget=10**6, **flags(mode), max_edits=max_edits, channel=channel)
        for typed, result in zip(TYPED, results):
            assert result.error is None and not result.truncated
            assert_same_typo_ranking(result, typo_oracle(probs, counts, typed, mode, lam, max_length, max_edits, costs), k)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10**6), scale=st.floats(0.1, 3.0), k=st.integers(1, 8), typed=st.text("abc#", max_size=3),
       mode=st.sampled_from(["open", "mixture", "known"]), lam=st.floats(0, 1),
       rates=st.tuples(*[st.floats(0.0, 0.2)] * 4), scored=st.booleans())
def test_typo_completion_matches_brute_force_on_random_models(seed, scale, k, typed, mode, lam, rates, scored):
    model = random_model(seed, scale)
    probs, counts = rnn_probs(model, 4), folded_counts(LEXICON)
    channel = Channel(*rates, keyboard="none")
    result = mixture_completer(model, LEXICON, lam, scored).complete(typed, k, max_length=4, budget=10**6, **flags(mode), max_edits=1,
                                                              channel=channel)
    if typed.count(OUTSIDE) > 1:
        assert result.error is not None and not pairs(result)
        return
    expected = typo_oracle(probs, counts, typed, mode, lam, 4, 1, channel.costs(list(VOCAB.chars)))
    assert_same_typo_ranking(result, expected, k)


def test_no_edits_and_edits_that_never_happen_give_todays_answers():
    model = random_model(2, scale=1.5)
    completer = mixture_completer(model, LEXICON, 0.4)
    never = Channel(0.0, 0.0, 0.0, 0.0)
    for mode in ("open", "mixture", "known"):
        today = completer.complete_many(TYPED[:-2], 6, 4, budget=10**6, **flags(mode))
        for max_edits, channel in ((0, None), (2, never)):
            again = completer.complete_many(TYPED[:-2], 6, 4, budget=10**6, **flags(mode), max_edits=max_edits, channel=channel)
            for a, b in zip(today, again):
                assert [w for w, _ in pairs(a)] == [w for w, _ in pairs(b)]
                np.testing.assert_allclose([lp for _, lp in pairs(b)], [lp for _, lp in pairs(a)], rtol=0, atol=1e-12)
                assert edits_of(b) == [0] * len(pairs(b)) and corrected_of(b) == [b.prefix] * len(pairs(b))


def test_a_typo_is_corrected_and_shown_in_the_case_typed():
    model = random_model(4, scale=2.0)
    lexicon = {"cabba": 1000, "abc": 1}
    completer = mixture_completer(model, lexicon, 0.99)
    result = completer.complete("CBAB", 1, max_length=6, max_edits=1, channel=Channel(keyboard="none"))  # ab swapped
    assert (shown_of(result), edits_of(result), corrected_of(result)) == (["CABBA"], [1], ["CABB"])
    result = completer.complete("Cbab", 1, max_length=6, max_edits=1, channel=Channel(keyboard="none"))
    assert (shown_of(result), corrected_of(result)) == (["Cabba"], ["Cabb"])
    assert pairs(completer.complete("Cbab", 1, max_length=6))[0][0] != "cabba"  # no edits: no correction


def test_characters_outside_the_vocabulary_count_as_edits():
    completer = mixture_completer(random_model(1), LEXICON, 0.5)
    result = completer.complete("c#ab", 3, max_length=5, max_edits=1)
    assert result.error is None and pairs(result) and all(e >= 1 for e in edits_of(result))
    assert "#" not in "".join(corrected_of(result))
    assert "'#'" in completer.complete("c##ab", 3, max_length=5, max_edits=1).error  # two of them need two edits
    assert completer.complete("c##ab", 3, max_length=5, max_edits=2).error is None


def test_the_budget_truncates_a_typo_search():
    completer = mixture_completer(random_model(0, scale=0.2), LEXICON, 0.0)
    cut, evaluations = counted(completer, "abc", 50, max_length=6, budget=20, max_edits=1, new=MAX_K)  # every invented string: many to find
    assert cut.truncated and evaluations <= 20 + 3 * len(VOCAB.chars)  # the last depth may pass it
    assert not completer.complete("abc", 5, max_length=6, budget=10**6, max_edits=1).truncated


def test_typo_options_are_checked():
    completer = mixture_completer(random_model(0), LEXICON, 0.5)
    with pytest.raises(ValueError, match="max_edits"):
        completer.complete("ab", max_edits=4)
    with pytest.raises(ValueError, match="beam"):
        completer.complete("ab", max_edits=1, beam=3)


def test_channel_probabilities():
    assert Channel.parse(["0.08"]).sub == pytest.approx(0.032)  # the defaults (4 %, 40 % substitutions) scaled to 8 %
    c = Channel.parse(["sub=0.05", "del=0.01", "trans=0"], keyboard="none")
    assert (c.sub, c.delete, c.trans, c.ins, c.keyboard) == (0.05, 0.01, 0.0, Channel.ins, "none")
    for bad in (["x"], ["oops=0.1"], ["sub=1.5"], ["0.5", "sub=0.9"], ["1"], ["sub=nan"]):
        with pytest.raises(ValueError):
            Channel.parse(bad)
    with pytest.raises(ValueError, match="keyboard"):
        Channel(keyboard="dvorak")
    assert math.exp(Channel(0.01, 0.02, 0.03, 0.04).costs(["a"]).ok) == pytest.approx(0.9)


@pytest.mark.parametrize("chars, keyboard", [("abc", "none"), ("abc", "qwerty"), ("asqzp", "qwerty"), ("ab", "none")])
@pytest.mark.parametrize("rates", [(0.016, 0.008, 0.008, 0.008), (0.05, 0.2, 0.03, 0.04), (0.1, 0.3, 0.0, 0.2)])
def test_every_way_to_type_an_intended_character_sums_to_one(chars, keyboard, rates):
    """The module docstring's channel, read back one typed string at a time: the first character x
    of the intended s = xy (the vocabulary's first two) is typed right, as each other character d
    of the vocabulary, left out, swapped with y (p_trans for both), or preceded by an extra
    character d. With the rest typed right (p_ok each), P(t | s) of these typed strings t sums to
    p_ok + p_sub + p_del + p_trans + p_ins = 1, as q(. | x) and u sum to 1 over the vocabulary."""
    p_sub, p_ins, p_del, p_trans = rates
    p_ok = 1 - p_sub - p_ins - p_del - p_trans
    costs = Channel(*rates, keyboard=keyboard).costs(list(chars))
    x, y = chars[:2]

    def p(typed: str) -> float:
        got = candidates(ids(typed, chars), costs, max_edits=1, max_length=2)
        found = {spell(got, n, chars): math.exp(got.channel[n]) for n in range(len(got.parent))}
        return found.get(x + y, 0.0)  # not in the trie: a kind of error that never happens

    ways = {
        "typed right": p(x + y) / p_ok,
        "typed as another": sum(p(d + y) for d in chars if d != x) / p_ok,
        "left out": p(y) / p_ok,
        "swapped": p(y + x),
        "an extra one first": sum(p(d + x + y) for d in chars) / p_ok**2,
    }
    assert ways == pytest.approx({"typed right": p_ok, "typed as another": p_sub, "left out": p_del, "swapped": p_trans,
                                  "an extra one first": p_ins}, rel=1e-12, abs=1e-300)
    assert sum(ways.values()) == pytest.approx(1.0, rel=1e-12)


def test_substitutions_favour_neighbouring_keys():
    chars = list("abcdefghijklmnopqrstuvwxyz")
    near = _adjacent(chars)
    assert [chars[j] for j in np.flatnonzero(near[chars.index("g")])] == list("bfhtvy")
    assert [chars[j] for j in np.flatnonzero(near[chars.index("q")])] == ["a", "w"]
    assert (near == near.T).all()
    for keyboard in ("qwerty", "none"):
        q = _substitutions(chars, keyboard)
        g = chars.index("g") + 1
        assert q[1:27, 1:].sum(axis=1) == pytest.approx(np.ones(26) + q[1:27, 27])  # the outside share is extra
        assert q[g, g] == 0
        if keyboard == "qwerty":
            assert q[g, chars.index("h") + 1] == pytest.approx(0.6 / 6) and q[g, chars.index("p") + 1] == pytest.approx(0.4 / 19)
        else:
            assert q[g, chars.index("h") + 1] == q[g, chars.index("p") + 1] == pytest.approx(1 / 25)


def test_the_bundled_model_corrects_common_typos():
    completer = Completer.load()
    for typed, word in [("wrold", "world"), ("teh", "the"), ("beleiv", "believe"), ("probelm", "problem"), ("xomputer", "computer")]:
        result = completer.complete(typed, 3, max_edits=1)
        assert pairs(result)[0][0] == word and edits_of(result)[0] == 1, (typed, result)
    clean = completer.complete("recor", 5, max_edits=1)
    assert edits_of(clean) == [0] * 5 and [w for w, _ in pairs(clean)] == [w for w, _ in pairs(completer.complete("recor", 5))]


def run(*args, input=None):
    from click.testing import CliRunner

    from rnnac.interfaces.cli import cli

    return CliRunner().invoke(cli, ["complete", *args], input=input)


def test_complete_command_shows_edits_and_corrections():
    tsv = run("--max-edits", "1", "--format", "tsv", "-k", "2", "wrold", "recor")
    assert tsv.exit_code == 0 and tsv.stderr == ""
    rows = [line.split("\t") for line in tsv.stdout.splitlines()]
    assert [(r[0], r[2], r[6], r[7]) for r in rows] == [("wrold", "world", "1", "world"), ("wrold", "world's", "1", "world"),
                                                       ("recor", "record", "0", "recor"), ("recor", "records", "0", "recor")]
    record = __import__("json").loads(run("--max-edits", "1", "--format", "json", "-k", "1", "Teh").stdout)
    assert record["completions"][0] | {"prob": 0, "logprob": 0} == {"word": "The", "prob": 0, "logprob": 0, "known": True,
                                                                     "edits": 1, "corrected": "The", "match": 0}
    clean = __import__("json").loads(run("--format", "json", "-k", "1", "teh").stdout)["completions"][0]
    assert (clean["edits"], clean["corrected"]) == (0, "teh")
    streamed = run("--max-edits", "1", "-", input="wrold\nrec\n")
    assert streamed.stdout.splitlines()[0] == "wrold\tworld" and streamed.exit_code == 0


def test_edit_options_change_the_channel():
    base = run("--max-edits", "1", "--format", "tsv", "-k", "1", "xomputer").stdout.split("\t")
    flat = run("--max-edits", "1", "--format", "tsv", "-k", "1", "--keyboard", "none", "xomputer").stdout.split("\t")
    assert base[2] == flat[2] == "computer"  # every path to it substitutes x for c: the same share either way
    never = run("--max-edits", "1", "--format", "tsv", "-k", "1", "--edit-prob", "0", "xomputer").stdout.split("\t")
    assert never[6] == "0"  # no errors happen: the prefix as typed


@pytest.mark.parametrize("args, message", [
    (["--max-edits", "1", "--beam", "3", "ab"], "--beam and --max-edits"),
    (["--max-edits", "4", "ab"], "--max-edits"),
    (["--max-edits", "1", "--edit-prob", "sub=1.2", "ab"], "edit probabilities"),
    (["--max-edits", "1", "--edit-prob", "swap=0.1", "ab"], "KIND"),
    (["--max-edits", "1", "--keyboard", "azerty", "ab"], "--keyboard"),
])
def test_typo_usage_errors(args, message):
    result = run(*args)
    assert result.exit_code == 2 and message in result.stderr


def test_memory_splits_do_not_change_typo_results(monkeypatch):
    from rnnac.inference import completer as complete

    model = random_model(6, scale=1.5)
    typed = ["".join(p) for n in range(4) for p in itertools.product("abc", repeat=n)]  # 40 prefixes
    completer = mixture_completer(model, LEXICON, 0.4)
    alone = [completer.complete(p, 4, max_length=5, max_edits=1) for p in typed]
    monkeypatch.setattr(complete, "SEARCH_BYTES", 30_000)  # a group of all 40 outgrows it: halves, quarters, ...
    groups, init = [], complete.ExactSearch.__init__
    monkeypatch.setattr(complete.ExactSearch, "__init__", lambda self, *args, **kw: groups.append(kw["groups"]) or init(self, *args, **kw))
    together = mixture_completer(model, LEXICON, 0.4).complete_many(typed, 4, max_length=5, max_edits=1)
    assert len(groups) > 1 and max(groups) < len(typed)
    for a, b in zip(alone, together):
        assert [w for w, _ in pairs(a)] == [w for w, _ in pairs(b)] and edits_of(a) == edits_of(b)
        np.testing.assert_allclose([lp for _, lp in pairs(a)], [lp for _, lp in pairs(b)], rtol=0, atol=1e-12)


def test_too_many_candidates_is_an_error_record_for_that_prefix_only():
    completer = Completer.load()
    results = completer.complete_many(["recommen", "teh"], 3, max_edits=2)
    assert "more than 50,000 candidate prefixes" in results[0].error and not pairs(results[0])
    assert results[1].error is None and pairs(results[1])[0][0] == "the"


def test_a_bare_rate_scales_the_defaults_whatever_came_before():
    assert Channel.parse(["0", "0.04"]) == Channel()
    assert Channel.parse(["sub=0.3", "0.08"]).sub == pytest.approx(2 * Channel.sub)


def test_a_case_sensitive_models_corrections_keep_their_case():
    from rnnac import Vocab
    from rnnac.storage.lexicon import Lexicon

    vocab = Vocab("aAbc")
    model = __import__("rnnac").RNN.init(len(vocab), 5, seed=0, dtype=np.float64)
    lexicon = Lexicon(["aAbc", "cab"], vocab, folding=False, counts=[1000, 1])
    completer = Completer(model, vocab, folding=False, lexicon=lexicon, mixture_lambda=0.99)
    result = completer.complete("Aab", 1, max_length=6, max_edits=1, channel=Channel(keyboard="none"))  # aA swapped
    assert (shown_of(result), edits_of(result), corrected_of(result)) == (["aAbc"], [1], ["aAb"])


def test_reading_a_candidate_late_costs_no_budget():
    """A candidate root read when the search reaches it (a leaf of the candidate trie) is no search
    step: the same budget gives the same exact answer as reading every candidate first would."""
    completer = mixture_completer(random_model(350573, 0.3), LEXICON, 0)
    channel = Channel(0, 0.1, 0, 0, keyboard="none")
    result, evaluations = counted(completer, "bac", 2, max_length=2, budget=1, open=True, max_edits=2, channel=channel)
    probs, counts = rnn_probs(random_model(350573, 0.3), 2), folded_counts(LEXICON)
    expected = typo_oracle(probs, counts, "bac", "open", 0, 2, 2, channel.costs(list(VOCAB.chars)))
    assert not result.truncated and evaluations == 0
    assert_same_typo_ranking(result, expected, 2)


def test_a_vanishing_edit_probability_is_still_exact():
    """p_ins = 5e-324, the smallest double: in linear space every score would underflow to 0."""
    model = random_model(0, 1.0)
    probs, counts = rnn_probs(model, 4), folded_counts(LEXICON)
    channel = Channel(0.0, 5e-324, 0.0, 0.0, keyboard="none")
    result = mixture_completer(model, LEXICON, 0.0).complete("#", 3, max_length=4, budget=10**6, open=True,
                                                              max_edits=1, channel=channel)
    assert pairs(result) and edits_of(result) == [1] * len(pairs(result))
    assert_same_typo_ranking(result, typo_oracle(probs, counts, "#", "open", 0.0, 4, 1, channel.costs(list(VOCAB.chars))), 3)
