"""A completer's own lexicon, and when to build which part of it.

A checkpoint carries its word list (LexiconData); the trie a search walks (Lexicon) is built from
it when first needed. A cold `rnnac complete rec` builds only the part of the list below the few
prefixes it completes (a trie of a few hundred words, not of the whole list); scores are the
same either way, since the part keeps the whole list's total count. A completer called again
builds the whole trie (once, ~20 ms for 50,000 words, ~1 s for a million), or reads it from the
checkpoint when stored there (a finished run's best.npz: with_stored_trie; ~0.1 s for a
million): it is in a running process, where the part would cost that much again at every call
with typos. A server builds or reads it in the background (build_in_background) and answers
from parts until it is ready.

A prefix typed with an accent, for a model that folds accents, searches only the words written
with it (written_part): a small Lexicon built at each such call, from the part or the whole.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Sequence

import numpy as np

from rnnac.engine.vocab import Vocab
from rnnac.storage.folding import Folding, fold
from rnnac.storage.lexicon import Lexicon, LexiconData, StoredTrie, StoredWordStarts, WordText, longest_line
from rnnac.storage.sorted_words import prefix_lines, prefix_range

FEW_PREFIXES = 16  # up to this many distinct prefixes a first call builds only the part of the list below them


class Lexicons:
    """The lexicon given to a completer, or the word list of its checkpoint (`stored`) and the
    trie of it built when first needed (`built`)."""

    def __init__(self, vocab: Vocab, folding: Folding | bool, lexicon: Lexicon | None = None):
        self.vocab, self.folding = vocab, Folding.of(folding)
        self.built = lexicon  # the whole trie: the one given, or built from `stored`
        self.stored: LexiconData | None = None  # the checkpoint's word list, when loaded from one with it
        self._folded_words: list[str] | None = None  # the list's words folded, once, when they differ from it
        self._total: float | None = None  # their total count, once (see total)
        self._longest: int | None = None  # the longest word's characters, once (see longest)
        self._flat: bool | None = None  # whether every word has the same count, once (see flat)
        self._calls = 0  # calls of for_prefixes
        self._building = threading.Lock()  # held while the whole trie is built

    @property
    def present(self) -> bool:
        """A lexicon is at hand (built or not yet)."""
        return self.built is not None or self.stored is not None

    def whole(self) -> Lexicon | None:
        """The whole lexicon, built now if not yet (the stored list checked whole first: LexiconData.check)."""
        with self._building:
            if self.built is None and self.stored is not None:
                self.stored.check()
                self._build()
        return self.built

    def build_in_background(self) -> threading.Thread | None:
        """Build the whole trie on a thread of its own (the stored list checked first, here);
        until it is ready, calls for a few prefixes search parts of the list."""
        if self.built is not None or self.stored is None:
            return None
        self.stored.check()
        self._building.acquire()  # held before the thread starts: no call builds it twice meanwhile
        thread = threading.Thread(target=self._build_then_release, name="rnnac-lexicon", daemon=True)
        thread.start()
        return thread

    def _build_then_release(self) -> None:
        try:
            self._build()
        finally:
            self._building.release()

    def _build(self) -> None:
        """The whole trie of the stored list, its words' log P_rnn included: read from the checkpoint
        when stored there (LexiconData.trie), else built; the freed pages of the checks, the read or
        the build given back."""
        trie = self.stored.trie
        self.built = trie and trie.lexicon(self.stored.words, self.vocab, self.folding)
        if self.built is None:
            self.built = Lexicon(self.stored.words, self.vocab, self.folding, self.stored.counts,
                                 word_logp=self.stored.rnn_logp)
        release_freed_memory()

    def for_prefixes(self, folded: list[str], typed: int) -> Lexicon | None:
        """The whole lexicon, or at a first call for a few typed prefixes (`typed` of them) only
        the part of the stored list below `folded` (the prefixes, or with typos their candidates)."""
        self._calls += 1
        if self.built is not None or self.stored is None or typed > FEW_PREFIXES or "" in folded:
            return self.whole()
        if self._calls > 1 and not self._building.locked():  # being built in the background: parts meanwhile
            return self.whole()
        try:
            rows, words = self._below(folded)  # (N',) each
            counts, scores = self.stored.counts[rows], None if self.stored.rnn_logp is None else self.stored.rnn_logp[rows]
        except (UnicodeDecodeError, IndexError):  # a damaged list, read lazily: its deferred checks say how
            self.stored.check()
            raise
        return Lexicon(words, self.vocab, self.folding, counts, self.total(), scores)

    def flat(self) -> bool | None:
        """Whether every word of the list has the same count (a list without counts); None without a list."""
        if self._flat is None and self.present:
            if self.stored is not None:
                counts = self.stored.counts
                self._flat = bool(len(counts) == 0 or counts.min() == counts.max())
            else:
                self._flat = self.built.flat
        return self._flat

    def stored_word_starts(self, lexicon: Lexicon) -> dict[str, np.ndarray] | None:
        """The index of word starts its checkpoint stored (with its stride), when `lexicon` is the
        whole stored list's and the index was stored for it; else None."""
        stored = self.stored
        if lexicon is not self.built or stored is None or stored.word_starts is None:
            return None
        arrays = stored.word_starts.for_folding(self.folding, len(lexicon.seg) - 1)
        return arrays and {**arrays, "stride": stored.word_starts.facts["stride"]}

    def written_logp(self, lexicon: Lexicon) -> np.ndarray | None:
        """The log P_rnn (N_in,) of each word of lexicon.written, when `lexicon` is the whole stored
        list's and its checkpoint stored them (LexiconData.rnn_logp); else None."""
        return self.stored.rnn_logp if lexicon is self.built and self.stored is not None else None

    def longest(self) -> int | None:
        """The characters of the list's longest word (the default cap of invented strings), None
        without a list: as its checkpoint states it, else counted once."""
        if self._longest is None and self.present:
            summary = (self.stored.summary or {}) if self.stored is not None else {}
            if "longest" in summary:
                self._longest = summary["longest"]
            elif self.stored is not None:
                words = self.stored.words
                self._longest = longest_line(words.data if isinstance(words, WordText) else WordText.of(words).data)
            else:
                self._longest = self.built.longest
        return self._longest

    def total(self) -> float:
        """The total count of the stored words the model can spell, as the whole Lexicon would
        sum it (Lexicon.total), summed once."""
        if self._total is None:
            words, counts = self._folded(), self.stored.counts
            chars = (self.stored.summary or {}).get("chars")  # the checkpoint's words' own: theirs folded when unchanged
            if (set(chars) <= set(self.vocab.chars) if chars is not None and words is self.stored.words
                    else _spellable(words, self.vocab)):  # every word qualifies
                self._total = float(counts.sum())
            else:
                self._total = float(sum(c for w, c in zip(words, counts) if w and self.vocab.unknown_char(w) is None))
        return self._total

    def _below(self, folded: list[str]) -> tuple[np.ndarray, list[str]]:
        """The stored words whose folded form starts with one of `folded`: their indices (N',) and
        the words as written."""
        words = self._folded()
        if words is not self.stored.words:  # folding changed them: look at every word
            starts = tuple(folded)
            rows = [i for i, w in enumerate(words) if w.startswith(starts)]
        elif isinstance(words, WordText) and len(words):  # already folded, one text: the words below a prefix are a run of its lines
            found = {}
            for p in folded:
                first, lines = prefix_lines(words.data, p.encode("utf-8", "surrogatepass"))
                found.update(zip(range(first, first + len(lines)), lines))
            rows = sorted(found)
            return np.array(rows, dtype=np.int64), [found[i].decode("utf-8", "surrogatepass") for i in rows]
        else:  # already folded: the words below a prefix are one run of the sorted list
            rows = sorted(set(itertools.chain(*(range(*prefix_range(words, p)) for p in folded))))
        return np.array(rows, dtype=np.int64), [self.stored.words[i] for i in rows]

    def _folded(self) -> Sequence[str]:
        """The stored words folded as prefixes are (the list itself when already so), made once."""
        if self._folded_words is None:
            words = self.stored.words  # sorted as written
            if self.folding.leaves(self.stored.summary or {}):  # the checkpoint says they are
                self._folded_words = words
                return words
            text = words.data.decode("utf-8", "surrogatepass") if isinstance(words, WordText) else "\n".join(words)
            folded_text = fold(text, self.folding)  # in one call: folding never acts across a newline
            self._folded_words = words if folded_text == text else folded_text.split("\n")
        return self._folded_words


def written_part(lexicon: Lexicon, folded: str, typed: str, vocab: Vocab, folding: Folding) -> Lexicon:
    """The words of `lexicon` below the folded prefix `folded` whose written forms (Lexicon.display),
    case-folded as `folding` folds case but with their accents, start with `typed` (the prefix as
    typed, folded so): a Lexicon of those forms with their counts and the whole lexicon's total,
    so each scores as in the whole. A typed accent narrows the words so (Completer.complete_many):
    `café` completes to the words written café..., not to those written cafe...

    Performance notes: the words below the prefix are a stretch of the trie (Lexicon.words_below);
    only their written forms are folded.
    """
    words = lexicon.words_below(lexicon.walk(vocab.encode(folded)))  # (W,)
    ends = lexicon.seg[words + 1] - 1  # (W,) the nodes they end at
    forms = [lexicon.written[i] for i in lexicon.display(ends).tolist()]
    keep = [j for j, form in enumerate(forms) if fold(form, folding.case).startswith(typed)]
    return Lexicon([forms[j] for j in keep], vocab, folding, lexicon.count(ends[keep]), total=lexicon.total)


def _spellable(words: Sequence[str], vocab: Vocab) -> bool:
    """Whether every character of the words is in the vocabulary; a WordText's checked on its
    bytes when they are ASCII (deleting the vocabulary's bytes and the newlines leaves none)."""
    if isinstance(words, WordText) and words.data.isascii():
        allowed = "".join(ch for ch in vocab.chars if ch.isascii()).encode() + b"\n"
        return not words.data.translate(None, allowed)
    return set("".join(words)) <= set(vocab.chars)


def release_freed_memory() -> None:
    """Give the heap's free pages back to the system (glibc's malloc_trim), after building a large
    lexicon: glibc keeps the freed temporaries' pages, a few times the lexicon's own size; a
    no-op elsewhere."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def with_stored_trie(lexicon: LexiconData, vocab: Vocab, folding: Folding | bool) -> LexiconData:
    """The lexicon with its whole trie (LexiconData.trie, over its words, counts and rnn_logp) to
    store beside it, and for a list of entries of several words its index of word starts
    (LexiconData.word_starts): a process that needs either then reads it rather than builds it."""
    from rnnac.inference.wordstarts import WordStarts

    built = Lexicon(lexicon.words, vocab, folding, lexicon.counts, word_logp=lexicon.rnn_logp)
    stored = LexiconData(lexicon.words, lexicon.counts, lexicon.held_out, rnn_logp=lexicon.rnn_logp)
    stored.trie = StoredTrie.of(built, vocab, folding)
    starts = WordStarts(built, folding)
    if starts.several_words:
        folding = Folding.of(folding)
        stored.word_starts = StoredWordStarts({"lowercase": folding.lowercase, "fold_accents": folding.accents,
                                               "stride": starts.stride, "n_entries": len(starts.node)}, starts.arrays())
    return stored
