"""The typo benchmark: its random edits, the Levenshtein-1 trie against brute force, and the
scores of hand-made rankers worked out by hand."""

import itertools

import numpy as np
import pytest
from click.testing import CliRunner

from rnnac.evaluation.typobench import KINDS, FuzzyTrie, draw_words, mistype, typo_benchmark
from rnnac.interfaces.cli import cli


def damerau_distance(a: str, b: str) -> int:
    """Optimal string alignment distance by the textbook table."""
    d = [[max(i, j) if min(i, j) == 0 else 0 for j in range(len(b) + 1)] for i in range(len(a) + 1)]
    for i, j in itertools.product(range(1, len(a) + 1), range(1, len(b) + 1)):
        d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] != b[j - 1]))
        if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
            d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
    return d[len(a)][len(b)]


def test_mistype_makes_one_edit_inside_the_typed_characters():
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(400):
        word = "".join(rng.choice(list("abcd"), size=int(rng.integers(2, 8))))
        noisy, kind = mistype(word, rng, "abcd", 3)
        seen.add(kind)
        assert damerau_distance(word, noisy) == 1
        assert noisy.endswith(word[3:])  # the edit lies in the first three characters
    assert seen == set(KINDS)
    for seed in range(20):  # nothing to swap: another kind
        assert mistype("aaaa", np.random.default_rng(seed), "ab", 4)[1] != "transposition"


def test_fuzzy_trie_matches_brute_force():
    rng = np.random.default_rng(3)
    words = sorted({"".join(rng.choice(list("abc"), size=int(rng.integers(1, 6)))) for _ in range(80)})
    counts = rng.integers(1, 50, size=len(words))
    fuzzy = FuzzyTrie(words, counts, "abc")
    count = dict(zip(words, counts.tolist()))
    for typed in ["", "a", "ab", "cba", "abca", "ccc"]:
        near = [w for w in words if any(damerau_distance(typed, w[:n]) <= 1 for n in range(len(w) + 1))]
        expected = sorted(near, key=lambda w: (-count[w], w))[:4]
        assert fuzzy.rank_many([typed], 4) == [expected], typed


def test_scores_of_hand_made_rankers():
    words = ["apple", "apply", "banana"]  # mistyped at rate 1/2, seed 0: the same draws as the benchmark's

    def perfect(prefixes, k):  # the word whose noisy text starts with the prefix, known in advance
        return [[w for w, t in zip(words, noisy) if t.startswith(p)][:k] for p in prefixes]

    def nothing(prefixes, k):
        return [[] for _ in prefixes]

    rng = np.random.default_rng(0)
    noisy = [mistype(w, rng, "abcdeilnpy", 3)[0] if rng.random() < 0.5 else w for w in words]
    report = typo_benchmark({"perfect": perfect, "nothing": nothing}, words, "abcdeilnpy", 0.5, k=2, typed=3, seed=0)
    mistyped = [w != t for w, t in zip(words, noisy)]
    assert report.n_mistyped == sum(mistyped) and sum(report.kinds.values()) == sum(mistyped)
    none = report.models["nothing"]
    assert (none["all"].top1, none["all"].topk, none["all"].keystroke_savings) == (0.0, 0.0, 0.0)
    best = report.models["perfect"]["all"]
    assert best.topk == 1.0 and best.keystroke_savings == pytest.approx(1 - sum(2 for _ in words) / sum(len(w) + 1 for w in words))
    assert report.models["perfect"]["clean"].n_words == len(words) - sum(mistyped)


def test_draw_words_follows_counts():
    rng = np.random.default_rng(0)
    drawn = draw_words(["abcde", "fghij", "ab"], [1, 9, 1000], True, 5000, 4, rng)
    assert "ab" not in drawn and 0.85 < drawn.count("fghij") / len(drawn) < 0.95
    assert draw_words(["ab"], [1], False, 10, 4, rng) == []


def test_evaluate_typos_command():
    result = CliRunner().invoke(cli, ["evaluate", "data/words.tsv", "--weighted", "--typos", "0.5", "--typo-words", "40",
                                      "--format", "tsv"])
    assert result.exit_code == 0, result.output
    rows = [line.split("\t") for line in result.stdout.splitlines()]
    assert rows[0] == ["model", "subset", "n_words", "top1", "topk", "keystroke_savings"]
    assert {r[0] for r in rows[1:]} == {"rnnac", "rnnac_edits", "trie", "trie_lev1"}
    by = {(r[0], r[1]): r for r in rows[1:]}
    assert int(by["rnnac", "clean"][2]) + int(by["rnnac", "mistyped"][2]) == 40
    assert float(by["rnnac_edits", "mistyped"][4]) > float(by["rnnac", "mistyped"][4])  # typos forgiven
    plain = CliRunner().invoke(cli, ["evaluate", "data/words.tsv", "--typos", "0.5", "--typo-words", "20"])
    assert plain.exit_code == 0 and "rnnac --max-edits 1" in plain.stdout and "Levenshtein" in plain.stdout


@pytest.mark.parametrize("args, message", [
    (["--typos", "0.3", "--no-baselines"], "drop --no-baselines"),
    (["--typos", "0.3", "--search", "known"], "drop --search"),
    (["--typed", "3"], "--typed goes with --typos"),
])
def test_typo_options_are_checked(args, message):
    result = CliRunner().invoke(cli, ["evaluate", "data/words.tsv", *args])
    assert result.exit_code == 2 and message in result.stderr
