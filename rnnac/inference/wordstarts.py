"""Word-start matching: the lexicon entries with a word that starts with what was typed, for
lists of multi-word entries (product names, commands): `iph` finds `Apple iPhone 15`, `gal`
finds `Samsung Galaxy S24`, and `app` finds `Apple iPhone 15` too (the first word counts).

Words. An entry's words are its runs of characters between separators (SEPARATORS: space,
`-`, `_`, `/` and `.`): `O_RDONLY` has the words `O` and `RDONLY`, `./configure` the word
`configure`; a change of case (`basicConfig`) starts no word. What was typed is split the same
way into typed words q_1 .. q_m (empty pieces dropped), and an entry matches when it has words
w_i1, ..., w_im with i1 < ... < im that start with q_1, ..., q_m: each typed word on a word of
its own, in order, so `sam s24` matches `Samsung Galaxy S24` and not `S24 by Samsung`. Typing
nothing (or separators only) matches every entry. Both sides are read as the model reads text
(NFC, lowercased and accents folded by a model trained so): `IPH` matches `iPhone`, and `skod`
matches `Škoda Octavia`, for such a model.

Scores. Only lexicon entries are proposed, each matching entry w scored by the mixture of
rnnac.inference.search, P(w) = lambda c_w / total + (1 - lambda) P_rnn(w) (P_rnn(w) alone in
"open" mode), and normalised over the entries that match the typed text t:

    P(w | t) = P(w) / sum over the entries v matching t of P(v)

so the probabilities of all of t's matches add up to 1. "known" and "mixture" are the same here
(the entries are the lexicon's either way). An entry with P(w) = 0 (a count of 0 at lambda = 1)
is never proposed. A blocked entry (exclude) is not proposed but keeps its share of the sum, as
a blocked word keeps its share of Z(s) in prefix completion. Equal scores keep the lexicon's
order of its words. Each match says where in the entry the first typed word matched: the
earliest word on which a whole match starts (taking each typed word on the first word after the
previous one's that it starts finds a match whenever there is one, the earliest).

The index (WordStarts). Every word of every entry, sorted, with the entries (and offsets) where
it occurs: the words starting with a typed word are one run of it, found by bisection
(rnnac.storage.sorted_words.prefix_range), and a match with several typed words is followed word
by word over those runs' occurrences, sorted by (entry, offset). A finished run stores it in
its checkpoint beside the trie when some entry has several words (arrays(); StoredWordStarts,
read when a word-start query first needs it: 0.25 s for a million package names, of which 1.9
million words); otherwise it is built from the Lexicon then (0.04 s for the bundled 50,000
words, 1.5 s for that million), and kept by the completer; prefix completion never reads or
builds it. The entries' log P_rnn come from
the checkpoint when it stored them (a finished run's LexiconData.rnn_logp), else the model
scores each query's matches, each entry once (fine for small lists; a short query over a large
list without them scores many).

Shapes: N entries (the lexicon's distinct folded words), M word occurrences in them, W
distinct words; n entries matching a query.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from functools import cached_property
from typing import NamedTuple

import numpy as np

from rnnac.storage.folding import Folding, fold
from rnnac.storage.lexicon import Lexicon
from rnnac.storage.sorted_words import prefix_range

SEPARATORS = " -_/."  # characters between an entry's words, and between typed words
_WORD = re.compile(f"[^{re.escape(SEPARATORS)}\n]+")  # a word: a run of other characters


def typed_words(text: str) -> list[str]:
    """The words of `text`, in order, between separators: typed_words("sam  s24-") -> ["sam", "s24"]."""
    return _WORD.findall(text)


def word_offsets(text: str) -> list[int]:
    """Where each word of `text` starts: word_offsets("./a b") -> [2, 4]."""
    return [m.start() for m in _WORD.finditer(text)]


class Match(NamedTuple):
    """One entry matching a query."""

    entry: int  # index into WordStarts.entries
    logprob: float  # log P(entry | typed text)
    offset: int  # where the first typed word matched, in the folded entry


class WordStarts:
    """The words of a lexicon's entries, sorted, each with where it occurs (module docstring).

    WordStarts(Lexicon(["New York"], Vocab(" eknorwy"))).match(["yo"]) -> entries [0], offsets [4]
    """

    def __init__(self, lexicon: Lexicon, folding: Folding | bool = True, written_logp: np.ndarray | None = None,
                 stored: dict[str, np.ndarray] | None = None):
        """`folding`: as the model reads text (a bool: lowercase or not). `written_logp` (N_in,):
        each word of lexicon.written's log P_rnn, when known (a checkpoint's LexiconData.rnn_logp);
        else the model scores entries as they match. `stored`: the arrays() of this lexicon's
        index, read from its checkpoint (StoredWordStarts), taken instead of building them."""
        self.lexicon, self.folding = lexicon, Folding.of(folding)
        self.node = lexicon.seg[1:].astype(np.int64) - 1  # (N,) the lexicon node each entry ends at
        self.written = lexicon.display(self.node)  # (N,) its most frequent written form, an index into lexicon.written
        self.rnn_logp = np.full(len(self.node), np.nan)  # (N,) each entry's log P_rnn, NaN until known
        if written_logp is not None:
            self.rnn_logp[:] = np.asarray(written_logp, dtype=np.float64)[self.written]
        if stored is not None:
            text = stored["words"].tobytes().decode("utf-8", "surrogatepass")
            self.words = text.split("\n") if text else []
            self.first, self.key, self.stride = stored["first"], stored["key"], int(stored["stride"])
            return
        joined = self._joined()
        self.stride = max(map(len, self.entries), default=0) + 1  # an (entry, offset) pair as one key: entry * stride + offset
        codes = np.frombuffer(joined.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)  # (chars,)
        apart = np.isin(codes, [ord(ch) for ch in SEPARATORS + "\n"])  # (chars,) separators and the entries' ends
        inside = np.concatenate([[True], apart, [True]])  # (chars + 2,) framed by separators
        start = np.flatnonzero(~inside[1:-1] & inside[:-2])  # (M,) where each word starts
        end = np.flatnonzero(~inside[1:-1] & inside[2:]) + 1  # (M,) and ends
        line = np.concatenate([[0], np.flatnonzero(codes == ord("\n")) + 1])  # (N,) where each entry starts
        entry = np.searchsorted(line, start, side="right") - 1  # (M,)
        words = [joined[a:b] for a, b in zip(start.tolist(), end.tolist())]  # (M,)
        self.words = sorted(set(words))  # (W,) distinct, sorted: a typed word's words are one run
        rank = dict(zip(self.words, range(len(self.words))))
        word = np.fromiter(map(rank.__getitem__, words), dtype=np.int64, count=len(words))  # (M,)
        order = np.argsort(word, kind="stable")  # (M,) grouped by word, each group by (entry, offset) as found
        self.first = np.searchsorted(word[order], np.arange(len(self.words) + 1))  # (W + 1,) word i's occurrences: first[i]:first[i + 1]
        self.key = (entry * self.stride + start - line[entry])[order]  # (M,) int64 entry * stride + offset

    def _joined(self) -> str:
        """The entries as the model reads them, one a line, folded in one call (as Lexicon folds); kept as entries."""
        forms = list(self.lexicon.written)  # one decode and split of a WordText, not a decode per word
        joined = fold("\n".join(forms[i] for i in self.written.tolist()), self.folding)
        self.__dict__["entries"] = joined.split("\n") if len(self.node) else []
        return joined

    @cached_property
    def entries(self) -> list[str]:
        """(N,) the entries as the model reads them; folded when first needed when the index was read."""
        self._joined()
        return self.__dict__["entries"]

    def arrays(self) -> dict[str, np.ndarray]:
        """The index as arrays (StoredWordStarts): what a checkpoint stores beside the trie."""
        words = np.frombuffer("\n".join(self.words).encode("utf-8", "surrogatepass"), dtype=np.uint8)
        return {"words": words, "first": np.asarray(self.first, dtype=np.int64), "key": np.asarray(self.key, dtype=np.int64)}

    def written_matches(self, entry: int, typed: Sequence[str]) -> bool:
        """Whether the written form of `entry`, case folded as the model folds case but with its
        accents, has words starting with the typed words (so folded too), in order."""
        words = typed_words(fold(self.lexicon.written[int(self.written[entry])], self.folding.case))
        at = 0
        for q in typed:
            at = next((j + 1 for j in range(at, len(words)) if words[j].startswith(q)), None)
            if at is None:
                return False
        return True

    @property
    def several_words(self) -> bool:
        """Some entry holds more than one word: matching word starts differs from matching prefixes."""
        return bool(len(self.key)) and int(np.bincount(self.key // self.stride).max()) > 1

    def match(self, typed: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """The entries matching the typed words (n,), in order, and where the first typed word
        matched in each (n,): the earliest offset a whole match starts at. No typed word: every
        entry, at 0."""
        if not typed:
            return np.arange(len(self.node)), np.zeros(len(self.node), dtype=np.int64)
        keys = [self._occurrences(q) for q in typed]  # each (m_j,) sorted
        entry = np.unique(keys[0] // self.stride)  # (n,)
        first = keys[0][np.searchsorted(keys[0], entry * self.stride)] - entry * self.stride  # (n,) earliest offset
        at = first  # (n,) the offset the previous typed word matched
        for key in keys[1:]:
            i = np.searchsorted(key, entry * self.stride + at + 1)  # (n,) its first occurrence after that word, if in the entry
            found = i < len(key)  # (n,)
            found[found] = key[i[found]] // self.stride == entry[found]
            entry, first, at = entry[found], first[found], key[i[found]] - entry[found] * self.stride
        return entry, first

    def _occurrences(self, typed_word: str) -> np.ndarray:
        """The (entry, offset) keys (m,) of the words starting with `typed_word`, sorted."""
        lo, hi = prefix_range(self.words, typed_word)
        return np.sort(self.key[self.first[lo] : self.first[hi]])

    def rnn_logp_of(self, entry: np.ndarray, score: Callable[[list[str]], np.ndarray]) -> np.ndarray:
        """log P_rnn (n,) of distinct entries (n,); score(folded words) -> (n',) gives those not
        known yet, which are kept."""
        missing = entry[np.isnan(self.rnn_logp[entry])]  # (n',)
        if len(missing):
            self.rnn_logp[missing] = score([self.entries[i] for i in missing.tolist()])
        return self.rnn_logp[entry]


def best_matches(starts: WordStarts, typed: Sequence[str], k: int, entry_logp: Callable[[np.ndarray], np.ndarray],
                 blocked: Callable[[str], bool] | None = None, accents: Sequence[str] | None = None) -> list[Match]:
    """The k most probable entries matching the typed words, best first (module docstring):
    entry_logp(entries (n,)) -> log P(w) (n,); blocked(folded entry) says whether it is excluded.
    `accents`: the typed words with their accents (case folded), for a model that folds them: only
    the entries whose written form has words starting so match (a typed accent narrows), and
    the probabilities are normalised over them."""
    entry, offset = starts.match(typed)  # (n,) each
    if accents is not None:
        keep = np.array([starts.written_matches(e, accents) for e in entry.tolist()], dtype=bool)  # (n,)
        entry, offset = entry[keep], offset[keep]
    logp = entry_logp(entry)  # (n,)
    log_z = np.logaddexp.reduce(logp) if len(logp) else -np.inf
    found: list[Match] = []
    if log_z == -np.inf:
        return found
    for i in np.lexsort((entry, -logp)).tolist():  # best first; on a tie, in the lexicon's order
        if len(found) == k or logp[i] == -np.inf:
            break
        if blocked is None or not blocked(starts.entries[entry[i]]):
            found.append(Match(int(entry[i]), float(logp[i] - log_z), int(offset[i])))
    return found


def shown_offset(folded: str, shown: str, offset: int) -> int:
    """Where the word at `offset` in a folded entry starts in the entry as shown (its written
    form, whose folding may differ in length: NFC, İ -> i̇); `offset` where they do not line up."""
    folded_at, shown_at = word_offsets(folded), word_offsets(shown)
    if offset in folded_at and len(folded_at) == len(shown_at):
        return shown_at[folded_at.index(offset)]
    return offset
