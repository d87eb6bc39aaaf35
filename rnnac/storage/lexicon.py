"""The lexicon: the words a model was trained on, with their counts, as a checkpoint carries
them (LexiconData) and as the trie a search walks (Lexicon).

LexiconData is the list itself: distinct words as written, sorted, with their counts and the
run's validation words marked. In a checkpoint it is three entries (`lexicon_entries`, read back
by `read_lexicon`; checkpoint.py lists them): the UTF-8 words joined by newlines and the float64
counts, each zlib-compressed, and the indices of the held-out words; meta["lexicon"] gives their
number, total count and a sha256 of the three uncompressed.

Lexicon is a trie over the words a completion may be, vectorised for the search (search.py):
words put in NFC and case-folded as the model was trained, with counts, each subtree's largest
count and total count, and each word's most frequent written form.

Shapes: a lexicon built from N_in words as given holds N distinct folded words in n trie nodes;
L is its longest word; K is the vocabulary size (id 0 is the word boundary).

Performance notes: building the trie of a large list is dominated by fresh memory (page faults),
hence the small dtypes (uint8 code points and token ids when they fit) and one pass over all the
words: they are joined by newlines and folded in one C call, mapped to token ids through a lookup
table and scattered into rows at once. Words already sorted (a checkpoint's, which mostly stay
so once folded) skip the sort. Index arrays, not boolean masks, select nodes: numpy gathers by
index faster than by a random boolean mask.
"""

from __future__ import annotations

import operator
import os
import unicodedata
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np

from rnnac.engine.vocab import Vocab
from rnnac.errors import quote

if TYPE_CHECKING:
    from rnnac.storage.npz import Npz

LEXICON_ENTRIES = ("lexicon.words", "lexicon.counts", "lexicon.held_out")
LEXICON_BYTES_PER_WORD = 64  # on average, "\n" included; the words text may inflate to this + 4 KiB


# --- the word list, as a checkpoint carries it ---------------------------------------------


@dataclass(eq=False)
class LexiconData:
    """The word list a model was trained on, validation words included and marked.

    LexiconData.from_unsorted(["b", "a"], [2, 1], [False, True]).words -> ["a", "b"]

    A value: saving it once compresses and hashes it once (a run saves the same list at every
    validation), so do not change it in place.
    """

    words: list[str]  # distinct, as written (case kept), sorted by Python str order
    counts: np.ndarray  # (N,) float64, finite, >= 0 (a plain list: 1.0 each)
    held_out: np.ndarray  # (N,) bool, True for the run's validation words
    _entries: tuple | None = field(default=None, init=False, repr=False)  # lexicon_entries' answer, once made

    def __post_init__(self):
        self.counts = np.asarray(self.counts, dtype=np.float64)  # (N,)
        self.held_out = np.asarray(self.held_out, dtype=bool)  # (N,)

    @classmethod
    def from_unsorted(cls, words, counts, held_out) -> LexiconData:
        """Sorted by word; ValueError if lengths disagree, a word repeats, or a count is negative or not finite."""
        words, counts, held_out = list(words), np.asarray(counts, dtype=np.float64), np.asarray(held_out, dtype=bool)
        if not len(words) == len(counts) == len(held_out):
            raise ValueError(f"lexicon of {len(words):,} words with {len(counts):,} counts and {len(held_out):,} held_out flags")
        order = sorted(range(len(words)), key=words.__getitem__)
        lexicon = cls([words[i] for i in order], counts[order], held_out[order])
        problem = lexicon._problem()
        if problem:
            raise ValueError(f"lexicon: {problem}")
        return lexicon

    def _problem(self) -> str | None:
        """Why this lexicon cannot be saved, or None."""
        n_words = len(self.words)
        if self.counts.shape != (n_words,) or self.held_out.shape != (n_words,):
            return f"{n_words:,} words, but counts of shape {self.counts.shape} and held_out of shape {self.held_out.shape}"
        try:
            joined = "".join(self.words)
        except TypeError:
            return "words must be strings"
        if "\n" in joined:
            return "a word holds a newline"
        return _words_problem(self.words) or _counts_problem(self.counts)

    def __eq__(self, other):
        if not isinstance(other, LexiconData):
            return NotImplemented
        return (self.words == other.words and np.array_equal(self.counts, other.counts)
                and np.array_equal(self.held_out, other.held_out))


def _words_problem(words: list[str]) -> str | None:
    if all(map(operator.lt, words, words[1:])):  # strictly increasing: sorted and distinct, in C
        return None
    bad = next(i for i in range(len(words) - 1) if not words[i] < words[i + 1])
    return f"words are not sorted and distinct: {quote(words[bad])} before {quote(words[bad + 1])}"


def _counts_problem(counts: np.ndarray) -> str | None:
    return None if (np.isfinite(counts) & (counts >= 0)).all() else "counts must be finite and >= 0"


def lexicon_entries(lexicon: LexiconData) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The lexicon's .npz entries and meta["lexicon"]; ValueError if it cannot be saved."""
    if lexicon._entries is not None:
        return lexicon._entries
    problem = lexicon._problem()
    if problem:
        raise ValueError(f"checkpoint lexicon: {problem}")
    try:
        text = "\n".join(lexicon.words).encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("checkpoint lexicon: a word is not valid Unicode (a lone surrogate?)") from None
    counts = lexicon.counts.astype("<f8").tobytes()
    held_out = np.flatnonzero(lexicon.held_out).astype("<i4")  # (n_held_out,)
    entries = {"lexicon.words": np.frombuffer(zlib.compress(text), dtype=np.uint8),
               "lexicon.counts": np.frombuffer(zlib.compress(counts), dtype=np.uint8),
               "lexicon.held_out": held_out}
    summary = {"n_words": len(lexicon.words), "sha256": _sha256(text, counts, held_out.tobytes()),
               "total_count": float(lexicon.counts.sum()), "text_bytes": len(text)}
    lexicon._entries = entries, summary
    return lexicon._entries


def _sha256(text: bytes, counts: bytes, held_out: bytes) -> str:
    """meta["lexicon"]["sha256"]: of the uncompressed words, counts and held-out indices, in that order."""
    import hashlib  # here: only checkpoints with a lexicon need it

    digest = hashlib.sha256(text)
    digest.update(counts)
    digest.update(held_out)
    return digest.hexdigest()


def read_lexicon(npz: Npz, n_words: int, sha256: str, text_bytes: int | None = None) -> tuple[LexiconData | None, str | None]:
    """The lexicon of `n_words` words in the entries LEXICON_ENTRIES of `npz`, whose headers the caller
    checked, and that hashes to `sha256`; or why it cannot be read (NpzError if an entry inflates
    to more than it may: LEXICON_BYTES_PER_WORD a word, or `text_bytes`, the words' size meta
    states, when larger; the file's whole inflation budget bounds both)."""
    text = npz.inflate("lexicon.words", max(LEXICON_BYTES_PER_WORD * n_words + 4096, text_bytes or 0))
    counts = npz.inflate("lexicon.counts", 8 * n_words)
    held_out = npz.read_bytes("lexicon.held_out")
    if _sha256(text, counts, held_out) != sha256:
        return None, "the lexicon's sha256 does not match (the file is damaged)"
    lexicon, problem = _decode(text, counts, held_out, n_words)
    return lexicon, problem and f"lexicon: {problem}"


def _decode(text: bytes, counts: bytes, held_out: bytes, n_words: int) -> tuple[LexiconData | None, str | None]:
    """The LexiconData the checked bytes hold, or why they cannot be one."""
    try:
        words = text.decode("utf-8").split("\n") if n_words or text else []
    except UnicodeDecodeError:
        return None, "the words are not UTF-8"
    if len(words) != n_words or len(counts) != 8 * n_words:
        return None, f"{len(words):,} words and {len(counts) // 8:,} counts, meta says {n_words:,} words"
    mask = _held_out_mask(held_out, n_words)
    if mask is None:
        return None, f"held_out is not increasing indices below {n_words:,}"
    lexicon = LexiconData(words, np.frombuffer(counts, dtype="<f8").astype(np.float64), mask)
    return lexicon, _words_problem(words) or _counts_problem(lexicon.counts)


def _held_out_mask(held_out: bytes, n_words: int) -> np.ndarray | None:
    """The held-out flags (N,) bool from the bytes of their increasing indices, or None if they are not that."""
    index = np.frombuffer(held_out, dtype="<i4")  # (n_held_out,)
    if index.size and (index[0] < 0 or index[-1] >= n_words or (np.diff(index) <= 0).any()):
        return None
    mask = np.zeros(n_words, dtype=bool)  # (N,)
    mask[index] = True
    return mask


# --- the trie a search walks ------------------------------------------------------------


class Lexicon:
    """A trie over the words a completion may be, with their counts. Node 0 is the root (the
    empty string); the last node is a dead end that index -1 (no node) reaches, so a walk off the
    lexicon reads no children, no word and count 0 there.

        children (n, K) int32       the child by token id, -1 for none
        ends (n,) bool              a word ends at the node
        count (n,) float64          that word's count, 0 where none ends
        max_below (n,) float64      the largest count of a word in the node's subtree, its own included
        mass (n,) float64           the total count of the words in the subtree: P_lex(s*) = mass / total
        total                       the total count of the lexicon's words
        display (n,) int32          index into `written` (the words as given) of the most frequent
                                    written form of the word ending at the node ("Paris" for
                                    "paris"), -1 where none ends

    Words are put in Unicode NFC and case-folded as the model was trained; words that fold
    together are merged and their counts added. A word holding a character outside the
    vocabulary can never be completed: it is left out and counted in `skipped`.

    `total` overrides the total count, for a Lexicon holding part of a larger list.

    lex = Lexicon(["Ab", "ab", "b"], Vocab("ab"), counts=[1, 2, 5]); lex.count[lex.walk([1, 2])] -> 3.0
    """

    def __init__(self, words: Iterable[str], vocab: Vocab, lowercase: bool = True, counts=None,
                 total: float | None = None):
        self.written = list(words)  # the words as given
        n_given = len(self.written)
        counts = np.ones(n_given) if counts is None else np.asarray(counts, dtype=np.float64)  # (N_in,)
        if counts.shape != (n_given,) or not (counts >= 0).all():  # NaN fails >= 0 too
            raise ValueError(f"counts must be {n_given} non-negative numbers, one per word")
        rows, lengths, in_vocab = _token_rows(self.written, vocab, lowercase)  # (N_in, L), (N_in,), (N_in,)
        self.skipped = int(n_given - in_vocab.sum())
        keep = np.flatnonzero(in_vocab & (lengths > 0))  # the empty word is never a completion
        order, first, lcp = _sort_words(rows[keep])  # (N_kept,), (N,), (N,)
        entry = keep[order]  # (N_kept,) the words kept, sorted: runs of equal folded words start at `first`
        display = _most_frequent_forms(self.written, entry, counts[entry], first)  # (N,)
        word = entry[first]  # (N,) one entry per distinct folded word
        self._build(rows[word], lengths[word], lcp, _run_sums(counts[entry], first), display, len(vocab))
        if total is not None:  # a part of a larger lexicon: shares are of the whole one's total
            self.total = float(total)

    def _build(self, rows, lengths, lcp, counts, display, K):
        """The arrays, from the distinct folded words in order (N, L), their lengths, lcp, counts and
        display forms (N,) each."""
        parent, token, word_node, depth_start = _number_nodes(rows, lengths, lcp)
        dead_end = len(parent)  # the nodes before it are real, the root included
        self.children = np.full((dead_end + 1, K), -1, dtype=np.int32)  # (n, K)
        edges = parent[1:] * K + token[1:]  # (n - 2,) flat positions in children
        self.children.reshape(-1)[edges] = np.arange(1, dead_end, dtype=np.int32)  # every edge in one assignment
        self.ends = np.zeros(dead_end + 1, dtype=bool)  # (n,)
        self.ends[word_node] = True
        self.count = np.zeros(dead_end + 1)  # (n,)
        self.count[word_node] = counts
        self.display = np.full(dead_end + 1, -1, dtype=np.int32)  # (n,)
        self.display[word_node] = display
        self.max_below, self.mass = _subtree_max_and_sum(self.count, parent, depth_start)  # (n,) each
        self.total = float(counts.sum())

    @classmethod
    def from_file(cls, path: str | os.PathLike, vocab: Vocab, lowercase: bool = True,
                  plus: LexiconData | None = None, allow_empty: bool = False) -> Lexicon:
        """A word list file (one word a line, or a frequency list), as rnnac.storage.wordlist reads it; a
        plain list counts each line once. `plus` adds another list's words (counts of a word in
        both are added). An empty file is a DataError, or with `allow_empty` a Lexicon of no words."""
        from rnnac.storage.wordlist import read_word_list

        listing = read_word_list(path, lowercase=False, allow_empty=allow_empty)  # folded here, keeping the written forms
        words, counts = list(listing.words), listing.counts
        if plus is not None:
            words += plus.words
            counts = np.concatenate([counts, plus.counts])  # (N_in,)
        return cls(words, vocab, lowercase, counts)

    def walk(self, ids: Sequence[int]) -> int:
        """The node the token ids lead to from the root, or -1 if no lexicon word starts so."""
        node = 0
        for token in ids:
            node = int(self.children[node, token])
            if node < 0:
                return -1
        return node

    @cached_property
    def log_count(self) -> np.ndarray:
        return _log(self.count)  # (n,), -inf where no word ends

    @cached_property
    def log_max_below(self) -> np.ndarray:
        return _log(self.max_below)  # (n,)

    @cached_property
    def log_mass(self) -> np.ndarray:
        return _log(self.mass)  # (n,)


def _log(x: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):  # log 0 = -inf: an absent term
        return np.log(x)


def _token_rows(words: list[str], vocab: Vocab, lowercase: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The words in NFC, lowercased if asked, as token ids (N_in, L) padded with 0 (the boundary,
    below every character); their lengths (N_in,); and whether all their characters are in the
    vocabulary (N_in,). A newline never is: it separates the words.

    The words are joined by newlines and folded together (a newline is a starter that composes
    with nothing and is not cased, so neither NFC nor lower(), final sigma included, acts across
    it), read as one byte a character when all are below 256, mapped to token ids through a
    lookup table and scattered into the rows."""
    codes = _folded_code_points("\n".join(words), lowercase)  # (chars,) the words, newline-separated
    breaks = np.flatnonzero(codes == ord("\n"))  # (N_in-1,) unless a word holds a newline
    if len(breaks) != max(len(words) - 1, 0):  # one does: make it a character outside the vocabulary
        outside = next(ch for ch in map(chr, range(1, 0x110000)) if ch not in vocab.index and ch != "\n")
        codes = _folded_code_points("\n".join(word.replace("\n", outside) for word in words), lowercase)
        breaks = np.flatnonzero(codes == ord("\n"))
    starts = np.concatenate([[0], breaks + 1])[: len(words)]  # (N_in,)
    lengths = np.diff(np.append(starts, len(codes) + 1)) - 1  # (N_in,)
    table = np.zeros(max(int(codes.max(initial=0)), max(map(ord, vocab.chars), default=0)) + 1,
                     dtype=np.uint8 if len(vocab) <= 256 else np.int32)  # code point -> token id, 0 for none
    table[[ord(ch) for ch in vocab.chars]] = np.arange(1, len(vocab))
    table[ord("\n")] = 0
    ids = table[codes]  # (chars,)
    unknown = np.flatnonzero((ids == 0) & (codes != ord("\n")))  # (bad chars,)
    in_vocab = np.ones(len(words), dtype=bool)  # (N_in,)
    in_vocab[np.searchsorted(starts, unknown, side="right") - 1] = False
    # Character j of word i, and the newline after it (j = length_i, a 0 there pads), go to
    # i (L + 1) + j: its position in `codes` plus i (L + 1) - (the word's start).
    L = int(lengths.max(initial=0))
    rows = np.zeros((len(words), L + 1), dtype=table.dtype)  # (N_in, L + 1)
    index = np.int32 if rows.size < 2**31 else np.int64
    target = np.repeat((np.arange(len(words), dtype=index) * (L + 1) - starts).astype(index), lengths + 1)[: len(codes)]
    target += np.arange(len(codes), dtype=index)  # (chars,)
    rows.reshape(-1)[target] = ids
    return rows[:, :L], lengths, in_vocab


def fold(text: str, lowercase: bool) -> str:
    """`text` as the model reads it: in Unicode NFC, lowercased if the model was trained so."""
    if not unicodedata.is_normalized("NFC", text):
        text = unicodedata.normalize("NFC", text)
    return text.lower() if lowercase else text


def _folded_code_points(text: str, lowercase: bool) -> np.ndarray:
    """The code points (chars,) of `text` in NFC, lowercased if asked: uint8 when all are below
    256, else uint32."""
    text = fold(text, lowercase)
    try:
        return np.frombuffer(text.encode("latin-1"), dtype=np.uint8)
    except UnicodeEncodeError:
        return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)


def _sort_words(rows):
    """Sort words (N_in, L) by their tokens, stably. Returns the order (N_in,); where each run of equal
    words starts in it, first (N,); and for each distinct word lcp (N,), the length of the prefix
    it shares with the one before (0 for the first)."""
    if not len(rows):
        none = np.zeros(0, dtype=np.int64)
        return none, none, none
    order = np.arange(len(rows))  # (N_in,)
    shared, distinct, increasing = _neighbours(rows)
    if not increasing:
        order = np.lexsort(rows.T[::-1])
        shared, distinct, _ = _neighbours(rows[order])
    lcp = np.concatenate([[0], np.where(distinct, shared, rows.shape[1])])  # (N_in,)
    first = np.flatnonzero(np.concatenate([[True], distinct]))  # (N,)
    return order, first, lcp[first]


def _neighbours(rows):
    """How each word (N_in, L) compares with the one before: the first position where they differ
    (N_in-1,), whether they differ at all (N_in-1,), and whether the words are in increasing order."""
    differ = rows[1:] != rows[:-1]  # (N_in-1, L)
    shared = differ.argmax(axis=1)  # (N_in-1,), 0 where equal
    pairs = np.arange(len(shared))  # (N_in-1,)
    distinct = differ[pairs, shared]  # (N_in-1,)
    increasing = bool((rows[1:][pairs, shared] >= rows[:-1][pairs, shared]).all())
    return shared, distinct, increasing


def _run_sums(values: np.ndarray, first: np.ndarray) -> np.ndarray:
    """The sums (N,) of the runs of values (N_in,) that start at first (N,)."""
    return np.add.reduceat(values, first) if len(first) else values[:0]


def _most_frequent_forms(written: list[str], index: np.ndarray, counts: np.ndarray, first: np.ndarray) -> np.ndarray:
    """For each run of equal folded words (runs of index (N_in,) into `written`, starting at first
    (N,)), the index of its most frequent written form (N,): counts (N_in,) of equal forms added, the
    first given on a tie. Runs of one word, nearly all of them, are not looked at."""
    best = index[first].astype(np.int32)  # (N,)
    size = np.diff(np.append(first, len(index)))  # (N,)
    for run in np.flatnonzero(size > 1):
        totals: dict[str, float] = {}  # written form -> count, in the order given (the sort is stable)
        at: dict[str, int] = {}
        span = slice(first[run], first[run] + size[run])
        for i, count in zip(index[span].tolist(), counts[span].tolist()):
            totals[written[i]] = totals.get(written[i], 0.0) + count
            at.setdefault(written[i], i)
        best[run] = at[max(totals, key=totals.__getitem__)]  # max keeps the first of equal counts
    return best


def _number_nodes(rows, lengths, lcp):
    """Number the trie's nodes depth by depth, from sorted distinct words (N, L): word i adds a node
    at each depth d with lcp_i < d <= length_i, and above that shares its predecessor's node.
    Returns each node's parent (n,) (-1 at the root) and token (n,), the node where each
    word ends (N,), and depth_start: the nodes of depth d are depth_start[d]:depth_start[d + 1]."""
    parent, token, depth_start = [np.array([-1])], [np.zeros(1, dtype=rows.dtype)], [0, 1]
    word_node = np.zeros(len(rows), dtype=np.int32)  # (N,)
    words = np.arange(len(rows))  # (N_d,) the words at least d characters long
    node = np.zeros(len(rows), dtype=np.int64)  # (N_d,) their nodes at depth d - 1
    for d in range(1, rows.shape[1] + 1):
        long_enough = np.flatnonzero(lengths[words] >= d)
        if not len(long_enough):
            break
        words, node = words[long_enough], node[long_enough]
        new = lcp[words] < d  # (N_d,) the word differs from its predecessor by depth d: a new node
        fresh = np.flatnonzero(new)
        parent.append(node[fresh])
        token.append(rows.T[d - 1][words[fresh]])
        # A word without a new node shares its predecessor's, which is in `words` (it is at least
        # lcp >= d long) and numbered just before: new nodes are numbered in word order.
        node = np.cumsum(new) + (depth_start[-1] - 1)  # (N_d,)
        depth_start.append(depth_start[-1] + len(fresh))
        ending = np.flatnonzero(lengths[words] == d)
        word_node[words[ending]] = node[ending]
    return np.concatenate(parent), np.concatenate(token), word_node, depth_start


def _subtree_max_and_sum(count, parent, depth_start):
    """max_below and mass (n,): each node's count folded into its parent's, deepest depth
    first. The nodes of a depth are numbered in their parents' order, so each parent's children
    are one run, and one reduceat per depth folds them all."""
    max_below, mass = count.copy(), count.copy()  # (n,) each
    for lo, hi in reversed(list(zip(depth_start[1:-1], depth_start[2:]))):
        up = parent[lo:hi]  # (n_d,) non-decreasing
        first = np.flatnonzero(np.concatenate([[True], up[1:] != up[:-1]]))  # (runs,)
        up = up[first]
        max_below[up] = np.maximum(max_below[up], np.maximum.reduceat(max_below[lo:hi], first))
        mass[up] += np.add.reduceat(mass[lo:hi], first)
    return max_below, mass
