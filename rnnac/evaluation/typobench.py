"""The typo benchmark (`rnnac evaluate --typos RATE`): completing prefixes that hold typing errors.

Words are drawn from the evaluated list (by count with weighted=True, else evenly; words longer
than the `typed` characters only, as the completion table takes them), seeded. Each is mistyped
with probability RATE by one random Damerau edit inside its first `typed` characters: a
character replaced by another of the vocabulary, an extra one typed, one left out, or two
neighbours swapped (each kind equally likely; characters drawn evenly). The user types the
result a character at a time. Over the clean and the mistyped words apart and together:

    top-1, top-k        the word is first, among the first k, completing the `typed` characters
    keystroke savings   1 - keys / (len(w) + 1) summed over words, keys = i + 1 for the first i
                        typed characters whose top k holds the word (at most len(w) + 1: a
                        mistyped word may be longer), else len(w) + 1

for rnnac without and with --max-edits 1, a frequency trie (exact prefix) and a frequency trie
that takes every word with a prefix within one Damerau-Levenshtein edit of what was typed and
ranks them by frequency alone (what Elasticsearch's fuzzy completion suggester does).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from rnnac.evaluation.baselines import FrequencyTrie

KINDS = ("substitution", "insertion", "deletion", "transposition")
SUBSETS = ("clean", "mistyped", "all")
Ranker = Callable[[Sequence[str], int], list[list[str]]]  # prefixes, k -> each prefix's top k words


@dataclass
class TypoScores:
    n_words: int
    top1: float | None
    topk: float | None
    keystroke_savings: float | None


@dataclass
class TypoReport:
    rate: float
    typed: int
    k: int
    n_words: int  # drawn
    n_mistyped: int
    kinds: dict[str, int]  # how many of each kind of edit
    seed: int
    models: dict[str, dict[str, TypoScores]]  # model -> subset -> scores
    labels: dict[str, str]
    info: dict

    def to_dict(self) -> dict:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)


def mistype(word: str, rng: np.random.Generator, alphabet: Sequence[str], typed: int) -> tuple[str, str]:
    """`word` with one random Damerau edit inside its first `typed` characters, and its kind.
    A swap needs two different neighbours there; without any, the edit is a substitution."""
    kind = KINDS[rng.integers(len(KINDS))]
    span = min(typed, len(word))
    swappable = [p for p in range(span - 1) if word[p] != word[p + 1]]
    if kind == "transposition" and not swappable:
        kind = "substitution"
    if kind == "transposition":
        p = swappable[rng.integers(len(swappable))]
        return word[:p] + word[p + 1] + word[p] + word[p + 2 :], kind
    p = int(rng.integers(span))
    if kind == "deletion":
        return word[:p] + word[p + 1 :], kind
    if kind == "insertion":
        return word[:p] + alphabet[rng.integers(len(alphabet))] + word[p:], kind
    others = [ch for ch in alphabet if ch != word[p]]
    return word[:p] + others[rng.integers(len(others))] + word[p + 1 :], kind


class FuzzyTrie:
    """The most frequent training words having a prefix within one Damerau-Levenshtein edit of
    the typed prefix (the prefix itself included), ranked by frequency alone.

    FuzzyTrie(["car", "bat"], [1, 5], "abcrt").rank_many(["cat"], 2) -> [["bat", "car"]]
    """

    def __init__(self, words: Sequence[str], counts, alphabet: Sequence[str]):
        self.trie = FrequencyTrie(words, counts)
        self.count = dict(zip(self.trie.words, self.trie.scores.tolist()))
        self.alphabet = list(alphabet)

    def neighbours(self, prefix: str) -> set[str]:
        """Every string within one edit of `prefix`, itself included."""
        out = {prefix}
        for p in range(len(prefix) + 1):
            head, tail = prefix[:p], prefix[p:]
            out.update(head + ch + tail for ch in self.alphabet)  # a character left out by the typist
            if tail:
                out.add(head + tail[1:])  # an extra character typed
                out.update(head + ch + tail[1:] for ch in self.alphabet)  # one typed for another
            if len(tail) > 1:
                out.add(head + tail[1] + tail[0] + tail[2:])  # two swapped
        return out

    def rank_many(self, prefixes: Sequence[str], k: int) -> list[list[str]]:
        out = []
        for prefix in prefixes:
            found = {w for near in self.neighbours(prefix) for w in self.trie.rank_completions(near, k)}
            out.append(sorted(found, key=lambda w: (-self.count[w], w))[:k])  # top k of the union: top k of each part's
        return out


def draw_words(words: Sequence[str], counts, weighted: bool, n: int, typed: int, rng: np.random.Generator) -> list[str]:
    """n words longer than `typed` characters, drawn with replacement, by count if weighted."""
    pool = [i for i, w in enumerate(words) if len(w) > typed]
    if not pool:
        return []
    weights = np.asarray(counts, dtype=np.float64)[pool] if weighted else np.ones(len(pool))
    chosen = rng.choice(len(pool), size=n, p=weights / weights.sum())
    return [words[pool[i]] for i in chosen]


def typo_benchmark(rankers: dict[str, Ranker], words: Sequence[str], alphabet: Sequence[str], rate: float, k: int = 5,
                   typed: int = 4, seed: int = 0, labels: dict[str, str] | None = None, info: dict | None = None) -> TypoReport:
    """Score each ranker on the drawn `words` (see the module docstring), mistyped at `rate`."""
    noisy, kinds = _mistype_some(words, np.random.default_rng(seed), alphabet, rate, typed)
    mistyped = np.array([a != b for a, b in zip(words, noisy)])  # (N,)
    n_chars = np.array([len(w) + 1 for w in words], dtype=np.float64)  # (N,)
    prefixes = sorted({text[:i] for text in noisy for i in range(1, len(text) + 1)})
    subsets = {"clean": ~mistyped, "mistyped": mistyped, "all": np.ones(len(words), dtype=bool)}  # (N,) each
    models = {}
    for name, rank in rankers.items():
        at_typed, keys = _ranks_and_keys(rank, prefixes, words, noisy, k, typed)
        models[name] = {subset: _scores(mask, at_typed, keys, n_chars) for subset, mask in subsets.items()}
    return TypoReport(rate, typed, k, len(words), int(mistyped.sum()), kinds, seed, models, labels or {}, info or {})


def _mistype_some(words: Sequence[str], rng: np.random.Generator, alphabet: Sequence[str], rate: float,
                  typed: int) -> tuple[list[str], dict[str, int]]:
    """(each word as typed: mistyped by `mistype` with probability `rate`, else as it is; how many of each kind of edit)."""
    noisy, kinds = [], {kind: 0 for kind in KINDS}
    for w in words:
        if rng.random() < rate:
            text, kind = mistype(w, rng, alphabet, typed)
            noisy.append(text)
            kinds[kind] += 1
        else:
            noisy.append(w)
    return noisy, kinds


def _ranks_and_keys(rank: Ranker, prefixes: list[str], words: Sequence[str], noisy: list[str], k: int,
                    typed: int) -> tuple[np.ndarray, np.ndarray]:
    """For each word, typed as `noisy` says: its position (1-based) among the ranker's top k for
    the first `typed` characters, 0 if absent; and the keys to enter it. (N,) each."""
    position = {p: {w: r for r, w in enumerate(answer[:k], start=1)} for p, answer in zip(prefixes, rank(prefixes, k))}
    at_typed = np.array([position[t[:typed]].get(w, 0) for w, t in zip(words, noisy)])  # (N,)
    keys = np.array([next((min(i + 1, len(w) + 1) for i in range(1, len(t) + 1) if w in position[t[:i]]), len(w) + 1)
                     for w, t in zip(words, noisy)], dtype=np.float64)  # (N,)
    return at_typed, keys


def _scores(mask, rank, keys, n_chars) -> TypoScores:
    n = int(mask.sum())
    if not n:
        return TypoScores(0, None, None, None)
    return TypoScores(n, float((rank[mask] == 1).mean()), float((rank[mask] >= 1).mean()),
                      float(1.0 - keys[mask].sum() / n_chars[mask].sum()))


def format_typo_table(report: TypoReport) -> str:
    """The report as a plain table: one row per model, the three subsets side by side."""
    head = (f"Typo benchmark: {report.n_words:,} words {report.info.get('drawn', 'drawn')}, {report.typed} characters "
            f"typed, {report.rate:.0%} mistyped by one random edit ({report.n_mistyped:,} words: "
            + ", ".join(f"{n} {kind}s" for kind, n in report.kinds.items()) + f"); seed {report.seed}.")
    k = report.k
    width = max(len(label) for label in report.labels.values()) if report.labels else 8
    cols = f"{'top-1':>7} {f'top-{k}':>7} {'saved':>7}"
    lines = [head, "", f"{'':{width}}   " + "   ".join(f"{name:^23}" for name in SUBSETS),
             f"{'model':{width}}   " + "   ".join(cols for _ in SUBSETS)]
    for name, subsets in report.models.items():
        cells = "   ".join(" ".join(_pct(getattr(subsets[s], f)) for f in ("top1", "topk", "keystroke_savings"))
                           for s in SUBSETS)
        lines.append(f"{report.labels.get(name, name):{width}}   {cells}")
    return "\n".join(lines)


def typo_tsv(report: TypoReport) -> str:
    """One row per model and subset, with a header."""
    rows = ["model\tsubset\tn_words\ttop1\ttopk\tkeystroke_savings"]
    for name, subsets in report.models.items():
        for subset in SUBSETS:
            s = subsets[subset]
            rows.append("\t".join(str(v) if v is not None else "" for v in (name, subset, s.n_words, s.top1, s.topk, s.keystroke_savings)))
    return "\n".join(rows)


def _pct(x: float | None) -> str:
    return f"{'-':>7}" if x is None else f"{100 * x:6.1f}%"
