"""The lexicon: the words a model was trained on, with their counts, as a checkpoint carries
them (LexiconData) and as the trie a search walks (Lexicon).

LexiconData is the list itself: distinct words as written, sorted, with their counts and the
run's validation words marked. In a checkpoint it is three entries (`lexicon_entries`, read back
by `read_lexicon`; checkpoint.py lists them): the UTF-8 words joined by newlines, as they are
(zlib-compressed in format 2), the float64 counts, zlib-compressed, and the indices of the
held-out words; meta["lexicon"] gives their number, total count, a sha256 of the three
uncompressed, and facts a cold start would otherwise read every word for (text_facts). A
fourth, optional entry holds each word's log P_rnn under the parameters saved with it, and
optional entries the whole trie built from all that (StoredTrie), which a process that needs it
reads instead of building again. Read from a checkpoint, the words are a WordText: one text, a
word decoded when it is read.

Lexicon is a trie over the words a completion may be, vectorised for the search (search.py):
words folded as the model was trained (rnnac.storage.folding: NFC, case, accents), with counts,
each subtree's largest count and total count, and each word's most frequent written form; its
layout is in its docstring.

Shapes: a lexicon built from N_in words as given holds N distinct folded words in n trie nodes
and P pieces; K is the vocabulary size (id 0 is the word boundary).

Performance notes: building the trie of a large list is dominated by fresh memory (page faults)
and random access, hence the small dtypes (uint8 token ids, int32 node ids when they fit) and
passes over all the words at once: they are joined by newlines and folded in one C call, mapped
to token ids through a lookup table, and compared 8 bytes at a time. Words already sorted (a
checkpoint's, which mostly stay so once folded) skip the sort. Index arrays, not boolean masks,
select nodes: numpy gathers by index faster than by a random boolean mask.
"""

from __future__ import annotations

import operator
import os
import unicodedata
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np

from rnnac.engine.vocab import Vocab
from rnnac.errors import quote
from rnnac.storage.folding import Folding, fold

if TYPE_CHECKING:
    from rnnac.storage.npz import Npz

LEXICON_ENTRIES = ("lexicon.words", "lexicon.counts", "lexicon.held_out")
RNN_LOGP_ENTRY = "lexicon.rnn_logp"  # optional, beside them: LexiconData.rnn_logp
TRIE_ENTRY_PREFIX = "lexicon.trie."  # optional, beside them: LexiconData.trie's arrays, lexicon.trie.<name>
WORD_STARTS_ENTRY_PREFIX = "lexicon.wordstarts."  # optional: LexiconData.word_starts's arrays
WORD_STARTS_ARRAYS = {"words": "|u1", "first": "<i8", "key": "<i8"}  # name -> dtype (StoredWordStarts)
MAX_CHARS_SAVED = 1024  # meta lexicon chars lists at most this many distinct characters
LEXICON_BYTES_PER_WORD = 64  # on average, "\n" included; the words text may inflate to this + 4 KiB


# --- the word list, as a checkpoint carries it ---------------------------------------------


@dataclass(eq=False)
class LexiconData:
    """The word list a model was trained on, validation words included and marked.

    LexiconData.from_unsorted(["b", "a"], [2, 1], [False, True]).words -> ["a", "b"]

    A value: saving it once compresses and hashes it once (a run saves the same list at every
    validation), so do not change it in place.
    """

    words: Sequence[str]  # distinct, as written (case kept), sorted by Python str order: a list, or a WordText
    counts: np.ndarray  # (N,) float64, finite, >= 0 (a plain list: 1.0 each)
    held_out: np.ndarray  # (N,) bool, True for the run's validation words
    _entries: tuple | None = field(default=None, init=False, repr=False)  # lexicon_entries' answer, once made
    _deferred: Callable[[], None] | None = field(default=None, init=False, repr=False)  # checks left for later (read_lexicon)
    summary: dict[str, Any] | None = field(default=None, compare=False, repr=False)  # meta["lexicon"] when read from a checkpoint
    # (N,) float32 each word's log P_rnn under the parameters saved with it, or None: derived from
    # the model, so outside equality and the sha256; see rnnac.inference.mixture.with_rnn_logp
    rnn_logp: np.ndarray | None = field(default=None, compare=False, repr=False)
    # The trie of these words, counts and rnn_logp, stored beside them (StoredTrie), or None: derived too
    trie: StoredTrie | None = field(default=None, compare=False, repr=False)
    # The index of the words of its entries (StoredWordStarts), for a list of entries of several words, or None
    word_starts: StoredWordStarts | None = field(default=None, compare=False, repr=False)

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

    def check(self) -> None:
        """Run the checks a lazy read left for later (read_lexicon's verify=False), once; they
        raise what the read would have."""
        deferred, self._deferred = self._deferred, None
        if deferred is not None:
            deferred()

    def _problem(self) -> str | None:
        """Why this lexicon cannot be saved, or None."""
        n_words = len(self.words)
        if self.counts.shape != (n_words,) or self.held_out.shape != (n_words,):
            return f"{n_words:,} words, but counts of shape {self.counts.shape} and held_out of shape {self.held_out.shape}"
        if isinstance(self.words, WordText):  # strings without newlines by construction
            return _words_problem(self.words) or _counts_problem(self.counts)
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
        return (list(self.words) == list(other.words) and np.array_equal(self.counts, other.counts)
                and np.array_equal(self.held_out, other.held_out))


def _words_problem(words: Sequence[str]) -> str | None:
    """Why the words are not sorted and distinct, or None; a WordText is checked on its bytes."""
    if isinstance(words, WordText) and b"\0" not in words.data:
        bad = _first_out_of_order(words)
    elif all(map(operator.lt, words, words[1:])):  # strictly increasing: sorted and distinct, in C
        return None
    else:
        bad = next(i for i in range(len(words) - 1) if not words[i] < words[i + 1])
    return None if bad is None else f"words are not sorted and distinct: {quote(words[bad])} before {quote(words[bad + 1])}"


def _first_out_of_order(words: WordText) -> int | None:
    """The first i where words[i] >= words[i + 1], or None: compared as UTF-8 bytes (whose order is
    the code points'), 8 at a time. The words must hold no NUL: a word's end reads as one."""
    if len(words) < 2:
        return None
    buffer = np.zeros(len(words.data) + 9, dtype=np.uint8)  # (bytes + 9,) 0 after each word and past the last
    text = buffer[: len(words.data)]
    text[:] = np.frombuffer(words.data, dtype=np.uint8)
    text[text == ord("\n")] = 0
    starts = words.starts[:-1]  # (N,)
    lcp = common_prefix(buffer, starts[:-1], starts[1:])  # (N-1,)
    bad = np.flatnonzero(buffer[starts[:-1] + lcp] >= buffer[starts[1:] + lcp])  # equal, or a smaller byte after
    return int(bad[0]) if len(bad) else None


def common_prefix(buffer: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The length (M,) of the common prefix of the strings that start at a (M,) and b (M,) in
    `buffer` (uint8, each string ending at a 0 byte, then at least 8 zero bytes after the last).

    Eight bytes at a time: an unaligned uint64 window at every offset, where the first zero byte
    of a window, or the first byte where two differ, stops the pair.
    common_prefix(np.frombuffer(b"abc\0abd\0" + bytes(8), np.uint8), np.array([0]), np.array([4])) -> [2]
    """
    windows = np.ndarray((len(buffer) - 7,), dtype="<u8", buffer=buffer, strides=(1,))  # windows[i]: bytes i..i+7
    ones, lows, highs = np.uint64(0x0101010101010101), np.uint64(0x7F7F7F7F7F7F7F7F), np.uint64(0x8080808080808080)
    lcp = np.zeros(len(a), dtype=np.int64)  # (M,)
    pair, depth = np.arange(len(a)), 0  # the pairs equal so far
    while len(pair):
        x, y = windows[a[pair] + depth], windows[b[pair] + depth]
        diff = x ^ y
        # The high bit of each byte that is 0 in x (the lowest flag is exact), or that differs.
        stop = ((x - ones) & ~x & highs) | ((((diff & lows) + lows) | diff) & highs)
        done = stop != 0
        first = stop[done] & (~stop[done] + np.uint64(1))  # the lowest flag alone: 2^(8 j + 7) for byte j
        lcp[pair[done]] = depth + (np.log2(first.astype(np.float64)).astype(np.int64) >> 3)
        pair, depth = pair[~done], depth + 8
    return lcp


def _counts_problem(counts: np.ndarray) -> str | None:
    return None if (np.isfinite(counts) & (counts >= 0)).all() else "counts must be finite and >= 0"


def lexicon_entries(lexicon: LexiconData) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The lexicon's .npz entries and meta["lexicon"]; ValueError if it cannot be saved."""
    if lexicon._entries is not None:
        return lexicon._entries
    problem = lexicon._problem()
    if not problem and lexicon.rnn_logp is not None and np.shape(lexicon.rnn_logp) != (len(lexicon.words),):
        problem = f"{len(lexicon.words):,} words, but rnn_logp of shape {np.shape(lexicon.rnn_logp)}"
    if problem:
        raise ValueError(f"checkpoint lexicon: {problem}")
    try:
        text = lexicon.words.data if isinstance(lexicon.words, WordText) else "\n".join(lexicon.words).encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("checkpoint lexicon: a word is not valid Unicode (a lone surrogate?)") from None
    counts = lexicon.counts.astype("<f8").tobytes()
    held_out = np.flatnonzero(lexicon.held_out).astype("<i4")  # (n_held_out,)
    entries = {"lexicon.words": np.frombuffer(text, dtype=np.uint8),  # as it is: a cold start reads it without inflating
               "lexicon.counts": np.frombuffer(zlib.compress(counts), dtype=np.uint8),
               "lexicon.held_out": held_out}
    summary = {"n_words": len(lexicon.words), "sha256": _sha256(text, counts, held_out.tobytes()),
               "total_count": float(lexicon.counts.sum()), "text_bytes": len(text), **text_facts(text)}
    if lexicon.rnn_logp is not None:
        entries[RNN_LOGP_ENTRY] = np.asarray(lexicon.rnn_logp, dtype="<f4")
    trie_arrays = lexicon.trie and (lexicon.trie.arrays if lexicon.trie.arrays is not None else lexicon.trie.read())
    if trie_arrays:  # None: read from a file since replaced, so not stored again
        entries |= {TRIE_ENTRY_PREFIX + name: array.astype(array.dtype.newbyteorder("<"), copy=False)
                    for name, array in trie_arrays.items()}
        summary["trie"] = lexicon.trie.facts
    starts = lexicon.word_starts and (lexicon.word_starts.arrays if lexicon.word_starts.arrays is not None
                                      else lexicon.word_starts.read())
    if starts:
        entries |= {WORD_STARTS_ENTRY_PREFIX + name: array.astype(WORD_STARTS_ARRAYS[name], copy=False)
                    for name, array in starts.items()}
        summary["wordstarts"] = lexicon.word_starts.facts
    lexicon._entries = entries, summary
    return lexicon._entries


def text_facts(text: bytes) -> dict[str, Any]:
    """What a cold start would otherwise learn by reading every word (rnnac.inference.lexicons,
    Folding.leaves): whether the words are in NFC already (nfc), and as a lowercasing model reads
    them (lower), and as an accent-folding one reads them, case kept (unaccented); their
    distinct characters (chars; None beyond MAX_CHARS_SAVED of them), and the longest word's
    characters (longest)."""
    words = text.decode("utf-8", "surrogatepass")
    nfc = unicodedata.is_normalized("NFC", words)
    chars = "".join(sorted(set(words) - {"\n"})) if text.isascii() else None
    if chars is None and len(distinct := set(words) - {"\n"}) <= MAX_CHARS_SAVED:
        chars = "".join(sorted(distinct))
    unaccented = nfc and (text.isascii() or fold(words, Folding(lowercase=False, accents=True)) == words)
    return {"nfc": nfc, "lower": nfc and words.lower() == words, "unaccented": unaccented, "chars": chars,
            "longest": longest_line(text)}


def longest_line(text: bytes) -> int:
    """The most characters on one line of the UTF-8 `text` (0 for none)."""
    codes = _code_points(text.decode("utf-8", "surrogatepass")) if not text.isascii() else np.frombuffer(text, np.uint8)
    ends = np.concatenate([[-1], np.flatnonzero(codes == ord("\n")), [len(codes)]])  # (lines + 1,)
    return int(np.diff(ends).max()) - 1


def _sha256(text: bytes, counts: bytes, held_out: bytes) -> str:
    """meta["lexicon"]["sha256"]: of the uncompressed words, counts and held-out indices, in that order."""
    import hashlib  # here: only checkpoints with a lexicon need it

    digest = hashlib.sha256(text)
    digest.update(counts)
    digest.update(held_out)
    return digest.hexdigest()


def read_lexicon(npz: Npz, summary: dict[str, Any], verify: bool = True,
                 words_zlib: bool = False) -> tuple[LexiconData | None, str | None]:
    """The lexicon in the entries LEXICON_ENTRIES of `npz`, whose headers the caller checked, that
    meta["lexicon"] `summary` describes: n_words words that hash to sha256; or why it cannot be
    read (NpzError if an entry inflates to more than it may: LEXICON_BYTES_PER_WORD a word, or
    text_bytes, the words' size meta states, when larger; the file's whole inflation budget
    bounds both).

    The words are stored as they are, or zlib'd (words_zlib: checkpoint format 2).
    With verify=False the checks that read every word (the sha256, the words' order) wait for
    LexiconData.check: a cold completion reads only the words below its prefix. Damage is
    still found at once by the zip's and zlib's own checksums; those checks find a file made to
    look whole."""
    n_words, sha256 = summary["n_words"], summary["sha256"]
    text, problem = _read_words(npz, n_words, summary.get("text_bytes"), words_zlib)
    if problem:
        return None, problem
    counts = npz.inflate("lexicon.counts", 8 * n_words)
    held_out = npz.read_bytes("lexicon.held_out")
    if verify and _sha256(text, counts, held_out) != sha256:
        return None, "the lexicon's sha256 does not match (the file is damaged)"
    lexicon, problem = _decode(text, counts, held_out, n_words, check_order=verify)
    if lexicon is not None:
        lexicon.summary = summary
        if RNN_LOGP_ENTRY in npz.members and not problem:
            lexicon.rnn_logp = np.frombuffer(npz.read_bytes(RNN_LOGP_ENTRY), dtype="<f4")  # (N,)
            if np.isnan(lexicon.rnn_logp).any() or (lexicon.rnn_logp > 0).any():
                problem = f"{RNN_LOGP_ENTRY} holds NaN or log-probabilities above 0"
    return lexicon, problem and f"lexicon: {problem}"


def _read_words(npz: Npz, n_words: int, text_bytes: int | None, words_zlib: bool) -> tuple[bytes, str | None]:
    """The words' text: inflated (format 2), or read as stored, once its size is the one meta states."""
    if words_zlib:
        return npz.inflate("lexicon.words", max(LEXICON_BYTES_PER_WORD * n_words + 4096, text_bytes or 0)), None
    stored = npz.members["lexicon.words"].nbytes  # checked against meta before a byte is read
    if stored != text_bytes:  # format 3's meta always has text_bytes
        shown = "nothing of its size" if text_bytes is None else f"{text_bytes:,}"
        return b"", f"lexicon.words holds {stored:,} bytes, meta lexicon says {shown}"
    return npz.read_bytes("lexicon.words"), None


def deferred_problem(lexicon: LexiconData, sha256: str) -> str | None:
    """What read_lexicon(verify=False) left unchecked in the `lexicon` it read: why it does not
    hash to `sha256`, is not its number of lines of UTF-8 or is out of order, or None."""
    problem = lines_problem(lexicon.words.data, len(lexicon.words), len(lexicon.counts))
    if problem:
        return f"lexicon: {problem}"
    counts, held_out = lexicon.counts.astype("<f8").tobytes(), np.flatnonzero(lexicon.held_out).astype("<i4").tobytes()
    if _sha256(lexicon.words.data, counts, held_out) != sha256:
        return "the lexicon's sha256 does not match (the file is damaged)"
    problem = _words_problem(lexicon.words)
    return problem and f"lexicon: {problem}"


def _decode(text: bytes, counts: bytes, held_out: bytes, n_words: int,
            check_order: bool = True) -> tuple[LexiconData | None, str | None]:
    """The LexiconData the checked bytes hold, or why they cannot be one. Without check_order
    the words' order, their UTF-8 and their number of lines are left to deferred_problem: a
    cold start reads a few of them."""
    problem = check_order and lines_problem(text, n_words, len(counts) // 8)
    if problem:
        return None, problem
    if len(counts) != 8 * n_words:
        return None, f"{len(counts) // 8:,} counts, meta says {n_words:,} words"
    words = WordText(text, n_words, counted=False)
    mask = _held_out_mask(held_out, n_words)
    if mask is None:
        return None, f"held_out is not increasing indices below {n_words:,}"
    lexicon = LexiconData(words, np.frombuffer(counts, dtype="<f8").astype(np.float64), mask)
    return lexicon, (check_order and _words_problem(words)) or _counts_problem(lexicon.counts)


def _held_out_mask(held_out: bytes, n_words: int) -> np.ndarray | None:
    """The held-out flags (N,) bool from the bytes of their increasing indices, or None if they are not that."""
    index = np.frombuffer(held_out, dtype="<i4")  # (n_held_out,)
    if index.size and (index[0] < 0 or index[-1] >= n_words or (np.diff(index) <= 0).any()):
        return None
    mask = np.zeros(n_words, dtype=bool)  # (N,)
    mask[index] = True
    return mask


@dataclass(eq=False)
class StoredTrie:
    """The trie of a lexicon (Lexicon.arrays) as a checkpoint keeps it beside the words, so that a
    process that needs the whole trie reads it instead of building it again (about a second for
    a million words); `facts` (meta lexicon trie) say what it was built for: the vocabulary's
    characters, whose order gives the token ids (chars), the folding (lowercase, fold_accents:
    false when absent), and the Lexicon's skipped, total and longest. Read from a checkpoint,
    the arrays are read when first asked for: `read` opens the file again and checks them
    (trie_problem), or returns None when the file has been replaced since (a run saves
    best.npz anew)."""

    facts: dict[str, Any]
    arrays: dict[str, np.ndarray] | None = None
    read: Callable[[], dict[str, np.ndarray] | None] | None = None

    @classmethod
    def of(cls, lexicon: Lexicon, vocab: Vocab, folding: Folding | bool) -> StoredTrie:
        folding = Folding.of(folding)
        facts = {"chars": "".join(vocab.chars), "lowercase": folding.lowercase, "fold_accents": folding.accents,
                 "skipped": lexicon.skipped, "total": lexicon.total, "longest": lexicon.longest}
        return cls(facts, lexicon.arrays())

    def lexicon(self, written: Sequence[str], vocab: Vocab, folding: Folding | bool) -> Lexicon | None:
        """The Lexicon stored, over `written` (the words as given, which it was built from); None
        when it was built for another vocabulary or folding, or its file has been replaced."""
        stored = Folding(self.facts["lowercase"], self.facts.get("fold_accents", False))
        if self.facts["chars"] != "".join(vocab.chars) or stored != Folding.of(folding):
            return None
        arrays = self.arrays if self.arrays is not None else self.read()
        if arrays is None:
            return None
        written = written if isinstance(written, WordText) else WordText.of(written)
        facts = self.facts
        return Lexicon.from_arrays(arrays, written, len(vocab), facts["skipped"], facts["total"], facts["longest"])


@dataclass(eq=False)
class StoredWordStarts:
    """The index of the words of a lexicon's entries (rnnac.inference.wordstarts.WordStarts.arrays)
    as a checkpoint keeps it: `words`, the distinct words of the entries, sorted, as UTF-8 lines;
    `first` (W + 1,), where each word's occurrences start in `key`; `key` (M,), each occurrence
    as entry * stride + offset, entry the index of a distinct folded word of the lexicon's trie.
    `facts` (meta lexicon wordstarts): the folding (lowercase, fold_accents), the stride and the
    number of entries. Read as StoredTrie is: `read` opens the file again when first needed,
    checked (word_starts_problem), None once the file has been replaced."""

    facts: dict[str, Any]
    arrays: dict[str, np.ndarray] | None = None
    read: Callable[[], dict[str, np.ndarray] | None] | None = None

    def for_folding(self, folding: Folding | bool, n_entries: int) -> dict[str, np.ndarray] | None:
        """The arrays, when stored for this folding and a trie of n_entries words; else None (build anew)."""
        facts = self.facts
        if Folding(facts["lowercase"], facts["fold_accents"]) != Folding.of(folding) or facts["n_entries"] != n_entries:
            return None
        if self.arrays is None:
            self.arrays = self.read()  # kept: the index built from them holds them anyway
        return self.arrays


def word_starts_problem(arrays: dict[str, np.ndarray], facts: dict[str, Any]) -> str | None:
    """Why `arrays` are not an index of word starts as StoredWordStarts says, or None. Checked:
    names, dtypes, shapes, the words' lines against `first`, `first` rising from 0 to len(key),
    each key's entry below n_entries and offset below the stride. A crafted file can make a
    wrong index, never one that reads out of its arrays."""
    if set(arrays) != set(WORD_STARTS_ARRAYS) or any(arrays[n].dtype.str != d or arrays[n].ndim != 1
                                                     for n, d in WORD_STARTS_ARRAYS.items()):
        return f"word-start arrays must be {', '.join(f'{n} (1-d {d})' for n, d in WORD_STARTS_ARRAYS.items())}"
    words, first, key = arrays["words"], arrays["first"], arrays["key"]
    n_words = int(np.count_nonzero(words == ord("\n"))) + 1 if len(words) else 0
    if len(first) != n_words + 1 or first[0] != 0 or first[-1] != len(key) or (np.diff(first) < 0).any():
        return f"word-start first must rise from 0 to {len(key):,}, one step per word ({n_words:,})"
    stride, n_entries = facts["stride"], facts["n_entries"]
    if len(key) and (key.min() < 0 or key.max() // stride >= n_entries):
        return f"word-start keys must be entries below {n_entries:,} with offsets below {stride:,}"
    return None


# --- the trie a search walks ------------------------------------------------------------


class WordText(Sequence[str]):
    """Words kept as one UTF-8 text, read one at a time: a million short words cost their
    length plus 4 bytes each here, about 70 as a list of Python strings.

    WordText.of(["ab", "Paris"])[1] -> "Paris"
    """

    def __init__(self, data: bytes, n_words: int, counted: bool = True):
        """`data`: the n_words words joined by newlines (none holds one), UTF-8 (lone surrogates
        passed); ValueError if it holds another number of lines (not counted with counted=False:
        a lazy read, whose deferred checks count them, lines_problem)."""
        problem = counted and lines_problem(data, n_words)
        if problem:
            raise ValueError(problem)
        self.data, self.n_words = data, n_words

    @cached_property
    def starts(self) -> np.ndarray:
        """Where each word starts in `data` (N + 1,), then its length + 1: made when first needed (a
        cold completion bisects by bytes instead: prefix_lines)."""
        ends = np.flatnonzero(np.frombuffer(self.data, dtype=np.uint8) == ord("\n"))  # (N - 1,)
        return np.concatenate([[0], ends + 1, [len(self.data) + 1]])[: self.n_words + 1].astype(np.int64)

    @classmethod
    def of(cls, words: Sequence[str]) -> WordText:
        """The words, a newline within one made a space: written forms are only shown."""
        text = "\n".join(words)
        if text.count("\n") != max(len(words) - 1, 0):
            text = "\n".join(word.replace("\n", " ") for word in words)
        return cls(text.encode("utf-8", "surrogatepass"), len(words), counted=False)  # lines by construction

    def __len__(self) -> int:
        return self.n_words


    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        i = operator.index(i)
        if not -len(self) <= i < len(self):
            raise IndexError("word index out of range")
        i %= len(self)
        return self.data[self.starts[i]:self.starts[i + 1] - 1].decode("utf-8", "surrogatepass")

    def __iter__(self):
        return iter(self.data.decode("utf-8", "surrogatepass").split("\n") if len(self) else ())

    def __eq__(self, other):
        if isinstance(other, WordText):
            return len(self) == len(other) and self.data == other.data
        return list(self) == other if isinstance(other, list) else NotImplemented


def lines_problem(data: bytes, n_words: int, n_counts: int | None = None) -> str | None:
    """Why `data` is not n_words lines of UTF-8 text (WordText; as many as n_counts when given), or None."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return "the words are not UTF-8"
    lines = data.count(b"\n") + 1 if n_words or data else 0
    if lines != n_words or n_counts not in (None, n_words):
        return f"{lines:,} lines of text for {n_words:,} words" if n_counts is None else (
            f"{lines:,} words and {n_counts:,} counts, meta says {n_words:,} words")
    return None


class Lexicon:
    """A trie over the words a completion may be, with their counts.

    Nodes are numbered in preorder, which is the order of the sorted words with each word's new
    characters (those past the prefix it shares with the word before) numbered in turn: node 0
    is the root (the empty string), word i's nodes are the run seg[i]:seg[i + 1], at depths
    lcp_i + 1 .. len_i, and it ends at the run's last node. A node's first child is therefore the
    next node when it is in the same run (its chain child); the others start a word's run
    (branch children, one per word at most, kept as sorted keys parent * K + token). Along a run,
    a stretch without branch children (a piece, one node of a path-compressed trie) has the same
    words below it: counts of the subtree are kept per piece. So the trie costs 2 bytes a
    character of the list's front-coded text, plus about 28 bytes a word and 20 a piece (at most
    two a word), however long the words: no table of nodes by K.

    Methods read nodes (any shape); index -1 (no node, a walk off the lexicon) reads no child,
    no word and count 0:

        child(node, token)    the child by token id, -1 for none
        child_rows(node)      (..., K-1) the children by token 1..K-1, -1 for none
        ends(node)            a word ends at the node
        count(node)           that word's count, 0 where none ends (log_count: its log)
        max_below(node)       the largest count of a word in the node's subtree, its own included
        mass(node)            the total count of the subtree's words: P_lex(s*) = mass / total
        rnn_max_below(node)   the largest log P_rnn(w) of a word below, when the lexicon was given
                              each word's (word_logp): a bound that prunes where counts tie
        display(node)         index into `written` (the words as given) of the most frequent
                              written form of the word ending at the node ("Paris" for "paris"),
                              -1 where none ends
        words_below(node)     the words in the node's subtree (indices of their runs)
        total                 the total count of the lexicon's words

    Words are folded as the model was trained (`folding`, rnnac.storage.folding: NFC, then case
    and accents as it says; a bool is the case folding alone); words that fold together are
    merged and their counts added. A word holding a character outside the vocabulary can never
    be completed: it is left out and counted in `skipped`.

    `total` overrides the total count, for a Lexicon holding part of a larger list.

    lex = Lexicon(["Ab", "ab", "b"], Vocab("ab"), counts=[1, 2, 5]); lex.count(lex.walk([1, 2])) -> 3.0

    Performance notes: building is a few passes over the folded text as token ids, each a NumPy
    call per depth over the words still that long, so its cost follows the text's length; words
    already in order (a checkpoint's, which mostly stay so once folded) skip the sort.
    """

    def __init__(self, words: Iterable[str], vocab: Vocab, folding: Folding | bool = True, counts=None,
                 total: float | None = None, word_logp=None):
        if not isinstance(words, WordText):
            words = list(words)
            if sum(map(len, words)) != len("".join(words).replace("\n", "")):  # a word holds a newline: never a completion
                outside = next(ch for ch in map(chr, range(1, 0x110000)) if ch not in vocab.index and ch != "\n")
                words = [word.replace("\n", outside) for word in words]  # a character outside the vocabulary
            words = WordText.of(words)
        self._build(words, vocab, Folding.of(folding), counts, total, word_logp)

    def _build(self, written: WordText, vocab: Vocab, folding: Folding, counts, total: float | None, word_logp):
        self.written = written  # the words as given
        n_given = len(written)
        counts = np.ones(n_given) if counts is None else np.asarray(counts, dtype=np.float64)  # (N_in,)
        if counts.shape != (n_given,) or not (counts >= 0).all():  # NaN fails >= 0 too
            raise ValueError(f"counts must be {n_given} non-negative numbers, one per word")
        self.K = len(vocab)
        folded = fold(written.data.decode("utf-8", "surrogatepass"), folding)  # folding never acts across a newline
        ids, starts, lengths, in_vocab = _token_ids(folded, n_given, vocab)  # (chars + 1,), (N_in,) each
        self.skipped = int(n_given - in_vocab.sum())
        self.longest = int(lengths[in_vocab].max(initial=0))  # characters of the longest word, folded
        keep = np.flatnonzero(in_vocab & (lengths > 0))  # the empty word is never a completion
        order, lcp = _sort_words(ids, starts[keep], lengths[keep], folded, keep, vocab)  # (N_kept,) each
        entry = keep[order]  # (N_kept,) the words kept, sorted
        length = lengths[entry]  # (N_kept,)
        first = np.flatnonzero(np.concatenate([[True], (lcp[1:] < length[1:]) | (lcp[1:] < length[:-1])])[: len(entry)])  # (N,)
        self._display = _most_frequent_forms(written, entry, counts[entry], first)  # (N,)
        if len(self._display) == n_given and (self._display == np.arange(n_given)).all():
            self._display = None  # each word is its own written form, in order (a sorted, folded list): no table
        self._count = _run_sums(counts[entry], first)  # (N,)
        word = entry[first]  # (N,) one entry per distinct folded word
        if word_logp is not None:  # the same for every written form of a word: the model reads it folded
            word_logp = np.asarray(word_logp, dtype=np.float64)[word]  # (N,)
        self._front_code(ids, starts[word], lengths[word], lcp[first], word_logp)
        self.total = float(self._count.sum()) if total is None else float(total)  # a part of a larger lexicon: its total

    def _front_code(self, ids, starts, lengths, lcp, word_logp):
        """The node arrays from the distinct folded words in order: their starts in ids, lengths and
        lcp (N,) each (with the word before; 0 for the first), and their log P_rnn or None."""
        new = (lengths - lcp).astype(np.int64)  # (N,) each word's new characters: its run of nodes
        self.seg = np.concatenate([[1], 1 + np.cumsum(new)]).astype(np.int64)  # (N + 1,) runs, the root before them
        n = int(self.seg[-1])  # nodes, the root included; node n is the dead end
        self.token = np.zeros(n + 1, dtype=ids.dtype)  # (n + 1,)
        source = np.repeat(starts + lcp - self.seg[:-1], new) + np.arange(1, n)  # (n - 1,) each node's place in ids
        self.token[1:n] = ids[source]
        self.is_end = np.zeros(n + 1, dtype=bool)  # (n + 1,)
        self.is_end[self.seg[1:] - 1] = True
        branch_parent, depth = _branch_parents(self.seg, lcp)  # (N,), (n,)
        key = branch_parent * self.K + self.token[self.seg[:-1]]  # (N,) each run's first node under its parent
        order = np.argsort(key, kind="stable")
        self.branch_key, self.branch_child = key[order], self.seg[:-1][order]  # (N,) each
        piece = np.sort(np.concatenate([[0], self.seg[:-1], branch_parent + 1, [n]]))  # np.unique imports numpy.ma: slow
        self.piece_start = piece[np.concatenate([[True], piece[1:] != piece[:-1]])]  # (P + 1,) distinct, the dead end's last
        self.piece_max, self.piece_mass, self.piece_rnn_max = _piece_max_and_sum(
            self.piece_start, self.seg, self._count, branch_parent, depth, self.is_end, word_logp)  # (P + 1,) each
        if (self.piece_max == self.piece_max.astype(np.float32)).all():  # counts float32 holds exactly (a plain list's 1s)
            self.piece_max = self.piece_max.astype(np.float32)  # exact: read back as float64 (max_below)
        index = np.int32 if (n + 1) * self.K < 2**31 else np.int64  # node ids and branch keys: int32 unless too many
        self.seg, self.piece_start = self.seg.astype(index), self.piece_start.astype(index)
        self.branch_key, self.branch_child = self.branch_key.astype(index), self.branch_child.astype(index)

    def arrays(self) -> dict[str, np.ndarray]:
        """The trie as arrays (TRIE_ARRAYS), which from_arrays takes back with the words as given:
        what a checkpoint stores so that loading reads the trie instead of building it again."""
        arrays = {"seg": self.seg, "token": self.token, "branch_key": self.branch_key, "branch_child": self.branch_child,
                  "piece_start": self.piece_start, "piece_max": self.piece_max, "piece_mass": self.piece_mass,
                  "count": self._count, "display": self._display, "piece_rnn_max": self.piece_rnn_max}
        return {name: array for name, array in arrays.items() if array is not None}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], written: WordText, K: int, skipped: int, total: float,
                    longest: int) -> Lexicon:
        """The Lexicon whose arrays() these are, built from `written` (the words as given) for a
        vocabulary of size K, with its skipped, total and longest; ValueError if they are not a trie's (trie_problem): a crafted file
        can make a wrong trie, never one that reads out of its arrays."""
        problem = trie_problem(arrays, len(written), K)
        if problem:
            raise ValueError(problem)
        lexicon = cls.__new__(cls)
        lexicon.written, lexicon.K, lexicon.skipped, lexicon.total = written, K, int(skipped), float(total)
        lexicon.longest = int(longest)
        lexicon.seg, lexicon.token, lexicon._count = arrays["seg"], arrays["token"], arrays["count"]
        lexicon.branch_key, lexicon.branch_child = arrays["branch_key"], arrays["branch_child"]
        lexicon.piece_start, lexicon.piece_max, lexicon.piece_mass = arrays["piece_start"], arrays["piece_max"], arrays["piece_mass"]
        lexicon._display, lexicon.piece_rnn_max = arrays.get("display"), arrays.get("piece_rnn_max")
        lexicon.is_end = np.zeros(len(lexicon.token), dtype=bool)  # (n + 1,)
        lexicon.is_end[lexicon.seg[1:] - 1] = True
        return lexicon

    @classmethod
    def from_file(cls, path: str | os.PathLike, vocab: Vocab, folding: Folding | bool = True,
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
        return cls(words, vocab, folding, counts)

    @property
    def n_nodes(self) -> int:
        """The trie's nodes, the root included."""
        return len(self.token) - 1

    @property
    def flat(self) -> bool:
        """Every word has the same count (a list without counts)."""
        return bool(len(self._count) == 0 or self._count.min() == self._count.max())

    @property
    def n_words(self) -> int:
        """The distinct folded words."""
        return len(self._count)

    def walk(self, ids: Sequence[int]) -> int:
        """The node the token ids lead to from the root, or -1 if no lexicon word starts so."""
        node = 0
        for token in ids:
            node = int(self.child(node, token))
            if node < 0:
                return -1
        return node

    def words_below(self, node: int) -> np.ndarray:
        """The distinct words (W,) in the subtree of `node`, its own included (those starting with
        its string), in order: indices of the runs, whose last nodes seg[i + 1] - 1 they end at.
        None for -1.

        In preorder a subtree is a stretch of nodes, so its words are a stretch of runs: from the
        run holding the node, up to the first later run that hangs from a node before it.
        """
        if node < 0:
            return np.zeros(0, dtype=np.int64)
        first = max(int(np.searchsorted(self.seg, node, side="right")) - 1, 0)  # the run holding it (the root: the first)
        above = np.flatnonzero(self._branch_parent[first + 1:] < node)  # later runs hanging outside the subtree
        stop = first + 1 + int(above[0]) if len(above) else self.n_words
        return np.arange(first, stop, dtype=np.int64)

    @cached_property
    def _branch_parent(self) -> np.ndarray:
        """Each run's branch parent (N,): the node it hangs from (its first node's parent)."""
        parent = np.zeros(self.n_words, dtype=np.int64)  # (N,)
        parent[np.searchsorted(self.seg, self.branch_child)] = self.branch_key.astype(np.int64) // self.K
        return parent

    def child(self, node, token) -> np.ndarray:
        """The child (...) of each node (...) by its token (...), -1 for none."""
        node, token = np.asarray(node, dtype=np.int64), np.asarray(token)
        chain = (node > 0) & ~self.is_end[node] & (self.token[np.where(node > 0, np.minimum(node + 1, len(self.token) - 1), 0)] == token)
        if not len(self.branch_key):  # no word: the root has no child
            return np.where(chain, node + 1, -1)
        key = node * self.K + token
        at = np.minimum(np.searchsorted(self.branch_key, key.astype(self.branch_key.dtype)), len(self.branch_key) - 1)
        branch = (node >= 0) & (self.branch_key[at] == key)
        return np.where(chain, node + 1, np.where(branch, self.branch_child[at], -1))

    def child_rows(self, node) -> np.ndarray:
        """The children (..., K-1) of nodes (...) by token id 1..K-1, -1 for none."""
        node = np.asarray(node, dtype=np.int64)
        flat = node.reshape(-1)  # (M,)
        out = np.full((len(flat), self.K - 1), -1, dtype=np.int64)  # (M, K-1)
        chain = np.flatnonzero((flat > 0) & ~self.is_end[flat] & (flat < len(self.token) - 1))  # the dead end has none
        out[chain, self.token[flat[chain] + 1].astype(np.int64) - 1] = flat[chain] + 1
        row, edge = self._branch_edges(flat)
        out[row, self.branch_key[edge] - flat[row] * self.K - 1] = self.branch_child[edge]
        return out.reshape(node.shape + (self.K - 1,))

    def _branch_edges(self, flat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The branch children of nodes flat (M,): (the node's row, the edge's index), (E,) each."""
        key = np.where(flat >= 0, flat * self.K, -1)  # (M,) off the lexicon: an empty range
        key = key.astype(self.branch_key.dtype)  # searchsorted would copy the keys to a wider type
        lo = np.searchsorted(self.branch_key, key)
        size = np.searchsorted(self.branch_key, key + self.K) - lo  # (M,)
        size[flat < 0] = 0
        row = np.repeat(np.arange(len(flat)), size)  # (E,)
        edge = np.arange(len(row)) + np.repeat(lo - np.concatenate([[0], np.cumsum(size)[:-1]]), size)  # (E,)
        return row, edge

    def ends(self, node) -> np.ndarray:
        return self.is_end[node]

    def _word(self, node) -> np.ndarray:
        """The distinct word (...) ending at each node (...) where one does (garbage elsewhere)."""
        return np.minimum(np.searchsorted(self.seg, (np.asarray(node) + 1).astype(self.seg.dtype)) - 1, len(self._count) - 1)

    def count(self, node) -> np.ndarray:
        ends = self.is_end[node]
        return np.where(ends, self._count[self._word(node)] if len(self._count) else 0.0, 0.0)

    def display(self, node) -> np.ndarray:
        ends = self.is_end[node]
        if not len(self._count):
            return np.where(ends, -1, -1)
        word = self._word(node)
        return np.where(ends, word if self._display is None else self._display[word], -1)

    def _piece(self, node) -> np.ndarray:
        """The piece (...) of each node (...): -1 and the dead end read the last, empty one."""
        return np.searchsorted(self.piece_start, np.asarray(node).astype(self.piece_start.dtype), side="right") - 1

    def max_below(self, node) -> np.ndarray:
        return self.piece_max[self._piece(node)].astype(np.float64)

    def mass(self, node) -> np.ndarray:
        return self.piece_mass[self._piece(node)]

    @property
    def has_word_logp(self) -> bool:
        """The lexicon knows each word's log P_rnn (rnn_max_below can bound the search)."""
        return self.piece_rnn_max is not None

    def rnn_max_below(self, node) -> np.ndarray:
        """The largest log P_rnn(w) of a word w in the node's subtree, as given to the lexicon
        (word_logp); -inf where none is."""
        return self.piece_rnn_max[self._piece(node)]

    def log_count(self, node) -> np.ndarray:
        return _log(self.count(node))  # -inf where no word ends

    def log_max_below(self, node) -> np.ndarray:
        return _log(self.max_below(node))

    def log_mass(self, node) -> np.ndarray:
        return _log(self.mass(node))


TRIE_ARRAYS = {  # Lexicon.arrays(): name -> the dtypes it may have; display and piece_rnn_max may be absent
    "seg": ("<i4", "<i8"), "token": ("|u1", "<i4"), "branch_key": ("<i4", "<i8"), "branch_child": ("<i4", "<i8"),
    "piece_start": ("<i4", "<i8"), "piece_max": ("<f4", "<f8"), "piece_mass": ("<f8",), "count": ("<f8",),
    "display": ("<i4",), "piece_rnn_max": ("<f8",)}
OPTIONAL_TRIE_ARRAYS = ("display", "piece_rnn_max")


def trie_problem(arrays: dict[str, np.ndarray], n_written: int, K: int) -> str | None:
    """Why `arrays` are not the arrays of a Lexicon over n_written words as given with a vocabulary
    of size K (Lexicon.arrays), or None. Checked: names, dtypes and shapes; every index within
    its array; runs, pieces and branch keys in order; each branch child a run's first node, under
    a parent before it, by the token it holds; counts finite and >= 0, log P_rnn <= 0. Whether
    the trie holds the words it should is the file's checksums' to tell, not this."""
    names = set(TRIE_ARRAYS) - set(OPTIONAL_TRIE_ARRAYS)
    if not names <= set(arrays) <= set(TRIE_ARRAYS):
        return f"trie arrays {sorted(arrays)} are not {sorted(names)} with optionally {', '.join(OPTIONAL_TRIE_ARRAYS)}"
    for name, array in arrays.items():
        if array.dtype.str not in TRIE_ARRAYS[name] or array.ndim != 1:
            return f"trie {name} must be 1-d {' or '.join(TRIE_ARRAYS[name])}, not {array.dtype.str} {array.shape}"
    seg, token, count = arrays["seg"], arrays["token"], arrays["count"]
    n_words, n = len(count), int(seg[-1]) if len(seg) else -1
    if len(seg) != n_words + 1 or seg[0] != 1 or (np.diff(seg) < 1).any() or len(token) != n + 1 or K < 1:
        return f"trie of {n_words:,} words and {len(token):,} nodes has runs that do not fit them"
    if token[0] != 0 or token[n] != 0 or (token[1:n] == 0).any() or (token[1:n] >= K).any():
        return f"trie tokens must be ids from 1 to {K - 1} between two 0s"
    key, child = arrays["branch_key"].astype(np.int64), arrays["branch_child"].astype(np.int64)
    runs = np.zeros(n + 1, dtype=bool)  # (n + 1,) the runs' first nodes
    runs[seg[:-1]] = True
    if (len(key) != n_words or len(child) != n_words or (np.diff(key) < 1).any() or (key[:1] < 0).any() or (key[-1:] >= n * K).any()
            or (child < 1).any() or (child >= n).any()):
        return f"trie branch keys and children must be {n_words:,} increasing keys and nodes"
    hit = np.zeros(n + 1, dtype=bool)  # (n + 1,) the branch children: n_words of them, distinct, when they are the runs'
    hit[child] = True
    if not np.array_equal(hit, runs) or (key // K >= child).any() or (key % K != token[child]).any():
        return "trie branch children must each be a run's first node, under a node before it, by its token"
    piece = arrays["piece_start"]
    n_pieces = len(piece) - 1
    if n_pieces < 0 or piece[0] != 0 or piece[-1] != n or (np.diff(piece) < 1).any():
        return "trie pieces must start at the root, in order, and end with the dead end"
    values = [arrays["piece_max"], arrays["piece_mass"], count]
    if any(len(v) != n_pieces + 1 for v in values[:2]) or not all((np.isfinite(v) & (v >= 0)).all() for v in values):
        return f"trie counts must be {n_pieces + 1:,} per piece and {n_words:,} per word, finite and >= 0"
    best = arrays.get("piece_rnn_max")
    if best is not None and (len(best) != n_pieces + 1 or np.isnan(best).any() or (best > 0).any()):
        return f"trie piece_rnn_max must be {n_pieces + 1:,} log-probabilities <= 0"
    display = arrays.get("display")
    if (n_words != n_written if display is None
            else len(display) != n_words or (display < 0).any() or (display >= n_written).any()):
        return f"trie display must give each of its {n_words:,} words one of the {n_written:,} words as given"
    return None


def _log(x: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):  # log 0 = -inf: an absent term
        return np.log(x)


def _token_ids(folded: str, n_words: int, vocab: Vocab) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The folded words (joined by newlines) as token ids (chars + 1,), 0 at each newline and at
    the end, so that a word's end reads the boundary; each word's start in them and length
    (N_in,); and whether all its characters are in the vocabulary (N_in,). A newline never is:
    it separates the words. Ids are uint8 when the vocabulary allows."""
    codes = _code_points(folded)  # (chars,)
    breaks = np.flatnonzero(codes == ord("\n"))  # (N_in - 1,)
    starts = np.concatenate([[0], breaks + 1])[:n_words].astype(np.int64)  # (N_in,)
    lengths = np.diff(np.append(starts, len(codes) + 1)) - 1  # (N_in,)
    table = np.zeros(max(int(codes.max(initial=0)), max(map(ord, vocab.chars), default=0)) + 1,
                     dtype=np.uint8 if len(vocab) <= 256 else np.int32)  # code point -> token id, 0 for none
    table[[ord(ch) for ch in vocab.chars]] = np.arange(1, len(vocab))
    table[ord("\n")] = 0
    ids = np.append(table[codes], table.dtype.type(0))  # (chars + 1,)
    unknown = np.flatnonzero(ids[:-1] == 0)  # (bad chars + newlines,)
    unknown = unknown[codes[unknown] != ord("\n")]
    in_vocab = np.ones(n_words, dtype=bool)  # (N_in,)
    in_vocab[np.searchsorted(starts, unknown, side="right") - 1] = False
    return ids, starts, lengths, in_vocab


def _code_points(text: str) -> np.ndarray:
    """The code points (chars,) of `text`: uint8 when all are below 256, else uint32."""
    try:
        return np.frombuffer(text.encode("latin-1"), dtype=np.uint8)
    except UnicodeEncodeError:
        return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)


def _sort_words(ids, starts, lengths, folded: str, keep: np.ndarray, vocab: Vocab):
    """Sort words (their starts in ids and lengths (N_kept,)) by their tokens, stably. Returns
    the order (N_kept,) and each sorted word's lcp with the one before it (N_kept,), 0 for the
    first. Words out of order are sorted as strings whose characters are their token ids."""
    lcp, increasing = _neighbours(ids, starts, lengths)
    if increasing:
        return np.arange(len(starts)), lcp
    as_tokens = folded.translate({ord(ch): 0x20 + i for i, ch in enumerate(vocab.chars, 1)}).split("\n")  # never a newline
    kept = [as_tokens[i] for i in keep.tolist()]
    order = np.array(sorted(range(len(kept)), key=kept.__getitem__), dtype=np.int64)  # stable
    lcp, _ = _neighbours(ids, starts[order], lengths[order])
    return order, lcp


def _neighbours(ids, starts, lengths) -> tuple[np.ndarray, bool]:
    """Each word's lcp with the one before (M,) (0 for the first), and whether the words are in
    increasing order (ties allowed). Depth by depth over the pairs still equal, so the cost is
    the sum of the lcps."""
    lcp = np.zeros(len(starts), dtype=np.int64)  # (M,)
    if ids.dtype == np.uint8 and len(starts) > 1:  # token ids as bytes: 8 at a time
        lcp[1:] = common_prefix(np.append(ids, np.zeros(8, dtype=np.uint8)), starts[:-1], starts[1:])
    else:
        pair, depth = np.arange(1, len(starts)), 0  # the words still equal to the one before, so far
        while len(pair):
            a = ids[starts[pair - 1] + depth]
            pair = pair[(a == ids[starts[pair] + depth]) & (a != 0)]  # a 0: the end of both, equal words
            depth += 1
            lcp[pair] = depth
    if len(starts) < 2:
        return lcp, True
    at_before = ids[starts[:-1] + np.minimum(lcp[1:], lengths[:-1])]  # the first characters that differ; 0 at an end
    at_after = ids[starts[1:] + np.minimum(lcp[1:], lengths[1:])]
    return lcp, bool((at_before <= at_after).all())


def _run_sums(values: np.ndarray, first: np.ndarray) -> np.ndarray:
    """The sums (N,) of the runs of values (N_in,) that start at first (N,)."""
    return np.add.reduceat(values, first) if len(first) else values[:0]


def _most_frequent_forms(written: Sequence[str], index: np.ndarray, counts: np.ndarray, first: np.ndarray) -> np.ndarray:
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


def _branch_parents(seg: np.ndarray, lcp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each word's branch parent (N,): the node its run hangs from, the node at depth lcp on its
    path (the root when lcp is 0). In preorder a node's ancestor at depth d is the last node of
    depth d before it, so each is one bisection among the nodes of that depth. Also every node's
    depth (n,), the root's 0."""
    n = int(seg[-1])
    new = np.diff(seg)  # (N,)
    longest = int((lcp + new).max(initial=0))
    depth = np.zeros(n, dtype=np.uint8 if longest < 256 else np.int32)  # (n,)
    depth[1:] = np.repeat(lcp + 1 - seg[:-1], new) + np.arange(1, n)
    by_depth = np.argsort(depth, kind="stable")  # (n,) nodes by depth, in preorder within each (a radix sort)
    level = np.concatenate([[0], np.cumsum(np.bincount(depth, minlength=longest + 1))])  # by_depth[level[d]:level[d + 1]]: depth d
    parent = np.zeros(len(lcp), dtype=np.int64)  # (N,)
    hanging = np.flatnonzero(lcp > 0)
    hanging = hanging[np.argsort(lcp[hanging], kind="stable")]  # grouped by the depth they hang from
    bounds = np.searchsorted(lcp[hanging], np.arange(1, longest + 2))  # (longest + 1,)
    for d, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:]), 1):
        if lo < hi:
            nodes, words = by_depth[level[d]:level[d + 1]], hanging[lo:hi]
            parent[words] = nodes[np.searchsorted(nodes, seg[words]) - 1]
    return parent, depth


def _piece_max_and_sum(piece: np.ndarray, seg: np.ndarray, counts: np.ndarray, branch_parent: np.ndarray,
                       depth: np.ndarray, is_end: np.ndarray, word_logp: np.ndarray | None = None):
    """The largest count and the total count (P + 1,) each of the words below each piece (0 for
    the dead end, the last), and the largest of their word_logp (N,) (P + 1,) (-inf at the dead
    end; None without it), folded up the pieces' tree deepest first: a piece that starts a
    word's run hangs from its branch parent's piece, any other continues the piece before it."""
    real = piece[:-1]  # (P,) the dead end is no piece of the tree
    last = piece[1:] - 1  # (P,) each piece's last node
    word = np.minimum(np.searchsorted(seg, last + 1) - 1, max(len(counts) - 1, 0))  # (P,) the word ending there, where one does
    ends = is_end[last]  # (P,)
    own = np.where(ends, counts[word] if len(counts) else 0.0, 0.0)  # (P,)
    best = None if word_logp is None else np.append(np.where(ends, word_logp[word] if len(counts) else -np.inf, -np.inf), -np.inf)
    run = np.searchsorted(seg, real, side="right") - 1  # (P,) the run of each piece's first node (-1: the root)
    starts_run = (run >= 0) & (seg[np.maximum(run, 0)] == real)
    parent = np.where(starts_run, np.searchsorted(piece, np.append(branch_parent, 0)[np.maximum(run, 0)], side="right") - 1,
                      np.arange(len(real)) - 1)  # (P,), -1 for the root's
    top, total = np.append(own, 0.0), np.append(own, 0.0)  # (P + 1,) each
    piece_depth = depth[real]  # (P,)
    order = np.argsort(piece_depth, kind="stable")[::-1]  # deepest first
    cut = np.flatnonzero(np.diff(piece_depth[order])) + 1
    for group in np.split(order, cut):
        group = group[parent[group] >= 0]
        np.maximum.at(top, parent[group], top[group])
        np.add.at(total, parent[group], total[group])
        if best is not None:
            np.maximum.at(best, parent[group], best[group])
    return top, total, best
