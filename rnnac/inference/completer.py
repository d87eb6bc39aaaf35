"""Completing prefixes: the k most probable words for each of many prefixes, searched in groups.

A Completer reads every prefix with the model, then hands the states to a search (rnnac.inference.search:
exact best-first or beam) over groups of prefixes sized to bound the search's memory. With a
lexicon (the words the model was trained on, with their counts) it ranks words by a mixture of
the lexicon's frequencies and the model (rnnac.inference.search explains the scores and the modes). With
typing errors allowed (max_edits), it first builds each prefix's trie of candidate intended
prefixes (rnnac.inference.typos), reads all their nodes depth by depth, and searches below the candidates.
Matching word starts instead (match="word-start": lexicon entries with a word that starts with
what was typed), it ranks the lexicon's matching entries by the same scores, with no search
(rnnac.inference.wordstarts).

Shapes: G prefixes searched together, T prefix characters, H hidden, K vocabulary (id 0 is the
word boundary).

Performance notes: searches run with one BLAS thread (their GEMMs are small, and OpenBLAS's extra
threads cost more to wake than they save); typed prefixes repeat, so each distinct one is folded
once; a candidate trie's leaves (about a third of its nodes) are read only when the search
reaches them.
"""

from __future__ import annotations

import math
import os
import warnings
import weakref
from pathlib import Path
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from rnnac.engine import blas
from rnnac.engine.model import RNN
from rnnac.engine.reading import read_strings
from rnnac.engine.vocab import Vocab
from rnnac.errors import DataError, UnknownCharError
from rnnac.inference.search import MODES, BeamSearch, ExactSearch, OutOfMemory, Owners, Pending, Roots, Scoring
from rnnac.inference.cases import as_typed, case_like, written_forms
from rnnac.inference.lexicons import FEW_PREFIXES, Lexicons, written_part
from rnnac.inference.mixture import rnn_word_logprobs, word_logprobs
from rnnac.inference.options import (DEFAULT_MAX_LENGTH, DEFAULT_NEW, MAX_BUDGET, MAX_K, MAX_LENGTH, OptionError,
                                     check_options)
from rnnac.inference.typos import (MAX_EDITS, MAX_NODES, CandidateNodes, Candidates, Channel, Costs, TooManyCandidates, candidates,
                                   distinct, first_candidates)
from rnnac.inference.wordstarts import WordStarts, best_matches, shown_offset, typed_words
from rnnac.storage.checkpoint import load_trained
from rnnac.storage.folding import Folding, fold
from rnnac.storage.lexicon import Lexicon, LexiconData

SEARCH_BYTES = 2**28  # rough cap on the memory of one group's search (states and frontier)
CHANNELS_KEPT = 16  # typing channels whose costs a completer keeps
FRONTIER_BYTES = 28  # one frontier entry: pid, parent, token, length, trie (int32) + lp (float64); a
# mixture adds its bound (float64), a blocklist its node (int32): the cap is rough


class Completion(NamedTuple):
    """One completion as shown: the word in the case typed (as_typed) or as the lexicon writes it."""

    word: str  # the whole word
    prob: float  # P(word | prefix)
    logprob: float  # log P(word | prefix)
    known: bool  # a word of the lexicon
    edits: int  # edits made to the typed prefix (max_edits)
    corrected: str  # the prefix it completes, as shown: the one typed, or the one it was corrected to
    match: int = 0  # where in the word what was typed matched: 0, or with word-start matching the matched word's offset


@dataclass
class Result:
    """The answer for one prefix: its completions, best first."""

    prefix: str  # as given, before normalisation and case folding
    completions: list[Completion] = field(default_factory=list)
    truncated: bool = False  # the budget stopped the exact search: the list may not be exact
    error: str | None = None  # why the prefix was not searched (a character outside the vocabulary)


class _Found(NamedTuple):
    """A word a search found for one distinct folded prefix, before it is shown."""

    root: str  # the folded prefix it completes: the one typed, or with typos the candidate corrected to
    edits: int  # edits from the typed prefix to root
    suffix: str  # the characters after root
    logprob: float  # log P(word | prefix)
    node: int  # the word's lexicon node, -1 off the lexicon


class _Searched(NamedTuple):
    """What one group's search found: per prefix, its words best first; whether the budget cut it; its node evaluations."""

    found: list[list[_Found]]
    truncated: np.ndarray  # (G,) bool
    evaluations: np.ndarray  # (G,) int


class _Options(NamedTuple):
    """How one complete_many call scores words (see rnnac.inference.search)."""

    mode: str  # "open", "mixture" or "known"
    lexicon: Lexicon | None
    mixture_lambda: float  # the lexicon's weight
    exclude: Lexicon | None  # words never proposed
    max_edits: int = 0  # typing errors allowed in a prefix (rnnac.inference.typos)
    costs: Costs | None = None  # the channel's, with max_edits
    max_new: int | None = None  # at most this many invented strings in a top k (None: any number)


def file_identity(path: str | os.PathLike) -> tuple | None:
    """(device, inode, size, modification time) of a file: another file, or the same rewritten,
    differs; None when there is none."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns


class Completer:
    """Completes prefixes with a model: `Completer.load().complete("rec").completions`.

    `folding` is how the model reads text (rnnac.storage.folding: case, accents; a bool is the
    case folding alone). `lexicon` (the training words with their counts) and `mixture_lambda`
    (its weight lambda in [0, 1]) set the default mode, "mixture"; without a lexicon the mode is
    "open", the model alone.
    """

    def __init__(self, model: RNN, vocab: Vocab, folding: Folding | bool = True, lexicon: Lexicon | None = None,
                 mixture_lambda: float = 0.0):
        if len(vocab) != model.vocab_size:
            raise ValueError(f"vocabulary of {len(vocab)} tokens for a model of {model.vocab_size}")
        self.model, self.vocab, self.folding = model, vocab, Folding.of(folding)
        self.lexicons = Lexicons(vocab, self.folding, _check_lexicon(lexicon, vocab))
        self.mixture_lambda = _check_lambda(mixture_lambda)
        # (K,) token id -> character; the boundary's "\0" pads fixed-width strings (see rnnac.inference.search._Tree.suffixes)
        self._chars = np.array(["\0", *vocab.chars], dtype="<U1")
        self._evals_per_prefix = 200.0  # running estimate, sizes the groups searched together
        self._costs: dict[Channel, Costs] = {}  # each typing channel's log-probabilities over the vocabulary, once
        self._word_starts: weakref.WeakKeyDictionary[Lexicon, WordStarts] = weakref.WeakKeyDictionary()  # each lexicon's, once
        self.evaluations = 0  # node evaluations (model.step rows) of every search so far, the prefixes' own characters excluded
        self.path: Path | None = None  # the checkpoint loaded (load), whose journal holds the list's edits
        self.file_identity: tuple | None = None  # that file's (device, inode, size, mtime) when loaded
        self.journal_edits = 0  # edits of that journal replayed at load
        self.journal_sha256: str | None = None  # the sha256 of the checkpoint's own list, which its journal follows
        self.base_total, self.base_words = 0.0, 0  # that list's total count and number of words
        self.accepts = 0  # accepts its counts hold (meta lexicon_edits, then the journal's): live.accept_counts

    @classmethod
    def load(cls, path: str | os.PathLike | None = None) -> Completer:
        """The model of `resolve_checkpoint(path)`, with the lexicon it carries (every word it
        lists, held-out ones too), when it has one, and its weight (TrainedModel.mixture_lambda)."""
        trained = load_trained(path, verify_lexicon=False)  # the whole list is checked when first used (Lexicons.whole)
        completer = cls(trained.model, trained.vocab, trained.folding, None, trained.mixture_lambda)
        completer.lexicon_words = trained.lexicon  # its Lexicon is built when first needed (rnnac.inference.lexicons)
        completer.path = trained.path
        completer.file_identity = file_identity(trained.path)
        completer.accepts = int((trained.checkpoint.meta.get("lexicon_edits") or {}).get("accepts", 0))
        completer.journal_edits = completer._replay_journal()
        return completer

    def _replay_journal(self) -> int:
        """Apply the edits of the checkpoint's journal (rnnac.storage.journal) to its word list;
        how many there were. A journal that cannot be read is a DataError naming it."""
        from rnnac.storage.journal import JournalError, journal_path, read_journal

        stored = self.lexicon_words
        if stored is None or not (stored.summary or {}).get("sha256"):
            return 0
        self.journal_sha256, self.base_total = stored.summary["sha256"], float(stored.summary["total_count"])
        self.base_words = int(stored.summary["n_words"])
        try:
            edits, _ = read_journal(journal_path(self.path), self.journal_sha256)
            if edits:
                self.edit_lexicon(edits)
        except (JournalError, ValueError) as e:
            raise DataError(f"cannot replay {journal_path(self.path)}: {e}") from None
        from rnnac.inference.live import accepts_since_scale

        self.accepts = accepts_since_scale(edits, self.accepts)
        return len(edits)

    def pinned(self) -> Completer:
        """A completer sharing this one's model and caches, with its lexicons as they are now:
        what this one's later edits (edit_lexicon) do not reach."""
        import copy

        return copy.copy(self)

    def edit_lexicon(self, edits: Sequence[dict]) -> list[str]:
        """Apply edits (rnnac.storage.lexedit) to the completer's own word list, the model untouched,
        and return the words an edit removed or boosted that the list lacks. The change is one
        swap of the completer's lexicons: a search running meanwhile keeps the list it started
        with. Counts added to words the built trie holds update a copy of it (live.with_added_counts,
        about a millisecond); other edits rebuild it. DataError (a word the model cannot spell) and
        ValueError (a malformed edit) change nothing."""
        from rnnac.inference.live import edit_lexicon, with_added_counts

        old = self.lexicons
        if old.built is None and old._building.locked():  # being built in the background: update it once built
            old.whole()
        if old.stored is None:
            raise DataError("this model carries no word list to change (trained before rnnac 0.2, or with --open)")
        edited, absent = edit_lexicon(self.model, self.vocab, self.folding, old.stored, edits)
        new = Lexicons(self.vocab, self.folding)
        new.stored = edited
        if old.built is not None:
            added: dict[str, float] = {}
            for edit in edits:
                if edit["op"] in ("add", "accept"):
                    added[edit["word"]] = added.get(edit["word"], 0.0) + edit["count"]
            increments_only = all(edit["op"] in ("add", "accept") for edit in edits) and edited.words is old.stored.words
            new.built = (increments_only and old.built._display is None
                         and with_added_counts(old.built, self.vocab, self.folding, added)) or None
            if new.built is None:
                new.built = Lexicon(edited.words, self.vocab, self.folding, edited.counts, word_logp=edited.rnn_logp)
        self.lexicons = new
        return absent

    @property
    def lowercase(self) -> bool:
        """The model reads text lowercased (Folding.lowercase)."""
        return self.folding.lowercase

    @property
    def lexicon(self) -> Lexicon | None:
        """The completer's own lexicon: the one given, or the whole word list of its checkpoint."""
        return self.lexicons.whole()

    @property
    def lexicon_words(self) -> LexiconData | None:
        """The checkpoint's word list, when loaded from one with it."""
        return self.lexicons.stored

    @lexicon_words.setter
    def lexicon_words(self, stored: LexiconData | None) -> None:
        self.lexicons.stored = stored

    @property
    def has_lexicon(self) -> bool:
        """The completer has a lexicon of its own (built or not yet)."""
        return self.lexicons.present

    def lexicon_from_file(self, path: str | os.PathLike, add: bool = False, allow_empty: bool = False) -> Lexicon:
        """A Lexicon of the words of the list at `path` with its counts (1 each in a plain list);
        with `add`, together with the completer's own words (counts of a word in both are added).
        `allow_empty`: an empty file is a Lexicon of no words (a list of words to exclude), not an error."""
        if add and self.lexicon_words is not None:
            self.lexicon_words.check()
        return Lexicon.from_file(path, self.vocab, self.folding, self.lexicon_words if add else None, allow_empty)

    def max_length(self, lexicon: Lexicon | None = None) -> int:
        """The longest invented string by default: as long as the longest word of `lexicon`, or of
        the completer's own list; DEFAULT_MAX_LENGTH without either (the list's words are never cut)."""
        longest = lexicon.longest if lexicon is not None else self.lexicons.longest()
        return DEFAULT_MAX_LENGTH if longest is None else int(np.clip(longest, 1, MAX_LENGTH))

    def default_new(self, lexicon: Lexicon | None = None) -> int | None:
        """How many invented strings a top k holds by default in the mixture with `lexicon` (or the
        completer's own): DEFAULT_NEW with counts, 0 for a list without them (every count alike:
        a closed list, such as package names, where a name that does not exist misleads); None
        (any number) without a lexicon."""
        flat = lexicon.flat if lexicon is not None else self.lexicons.flat()
        return None if flat is None else 0 if flat else DEFAULT_NEW

    def complete(self, prefix: str, k: int = 5, **options) -> Result:
        """The k most probable words starting with `prefix`; see `complete_many`."""
        return self.complete_many([prefix], k, **options)[0]

    def complete_many(self, prefixes: Sequence[str], k: int = 5, max_length: int | None = None, budget: int = 2000,
                      beam: int | None = None, lexicon: Lexicon | None = None, known_only: bool | None = None,
                      open: bool = False, mixture_lambda: float | None = None, exclude: Lexicon | Iterable[str] | None = None,
                      max_edits: int = 0, channel: Channel | None = None, mode: str | None = None,
                      new: int | None = None, match: str = "prefix") -> list[Result]:
        """One Result per prefix, in order. Exact best-first search, or beam search of width `beam`.

        Prefixes are folded as the model was trained (rnnac.storage.folding: NFC, case, accents);
        the Completions show the words in the case typed (as_typed: REC gives RECORD), or as the
        lexicon writes them when that has a case or accents of its own (cafe gives Café Royal).
        A typed accent still narrows when the model folds accents: a prefix typed with one (café)
        completes only to the lexicon words written so, case folded (written_part), scored as
        with `known_only` (an invented string cannot carry the accent); `open` still searches the
        model alone; with max_edits the accent folds like the rest. A prefix holding a character
        outside the vocabulary gets a Result with `error` set (with max_edits, only when it holds
        more such characters than edits). Invented strings (not lexicon words) are at most
        `max_length` characters, prefix included; None is the longest word of the lexicon
        searched (max_length), 32 without one. Lexicon words are never cut. `budget` bounds the
        node evaluations per prefix.

        Scoring (rnnac.inference.search): by the lexicon and the model (the mixture) over every
        word; `known_only` over the lexicon's words only (scored as in the mixture, not
        renormalised); `open` by the model alone. `lexicon` replaces the completer's own for this
        call; `known_only` None is True with such a lexicon (its words, ranked by the model when
        mixture_lambda is 0), else False. Without any lexicon the search is open.
        `mixture_lambda` None is the completer's. `exclude` (a Lexicon or words) is never
        proposed. `mode` ("known", "open", "mixture": known_only=True, open=True,
        known_only=False) is deprecated. Options that do not go together (known_only with open,
        beam with max_edits, known_only without a lexicon) are an OptionError (rnnac.inference.options).

        Invented strings (words not in the lexicon): in the mixture, at most `new` of them in a
        top k, the rest the best lexicon words (0: the lexicon's words only, as known_only);
        None is default_new(). Completion.known tells them apart.

        Typing errors (rnnac.inference.typos): with `max_edits` N > 0 the typed prefix may hold up to N
        of them, weighed by `channel` (default Channel()); each word then comes with the edits
        of its best path and the prefix it corrected to (Completion.edits, .corrected). Exact search only.

        Word starts (rnnac.inference.wordstarts): with `match` "word-start" a prefix is the
        words typed, and the answers are the k most probable lexicon entries with words starting
        with them, in order (`sam s24`: Samsung Galaxy S24), normalised over every entry that
        matches; each entry is shown as the lexicon writes it, Completion.match saying where its
        first typed word matched. A typed accent narrows here too: `café` matches only entries
        whose written words start so, normalised over them. Neither max_edits nor beam goes with it; max_length and budget
        do not apply.
        """
        if max_length is None:
            max_length = self.max_length(lexicon)
        _check_sizes(k, max_length, budget, beam, max_edits)
        if mode is not None:
            known_only, open = _from_mode(mode)
        check_options(known_only, open, beam, max_edits, has_lexicon=lexicon is not None or self.has_lexicon, match=match)
        results = [Result(prefix) for prefix in prefixes]
        todo, accented = self._fold(results, max_edits, match)
        if match == "word-start":  # entries matched as the model folds them; a typed accent narrows to their written forms
            options = self._options(lexicon, known_only, open, mixture_lambda, exclude, None, new=new)
            self._match_word_starts(todo, results, k, options)
            for typed, (folded, positions) in accented.items():
                self._match_word_starts({folded: positions}, results, k, options, typed_words(typed))
            return results
        tries = self._candidates(todo, results, max_edits, channel or Channel()) if max_edits else None
        every = list(dict.fromkeys([*todo, *(folded for folded, _ in accented.values())]))  # distinct folded prefixes
        options = self._options(lexicon, known_only, open, mixture_lambda, exclude, every, tries, new)
        if options.lexicon is None:  # no written forms to narrow to: the accents fold like the rest
            for folded, positions in accented.values():
                todo.setdefault(folded, []).extend(positions)
            accented = {}
        self._search_all(todo, results, tries, k, max_length, budget, beam, options)
        for typed, (folded, positions) in accented.items():
            part = written_part(options.lexicon, folded, typed, self.vocab, self.folding)
            narrowed = options._replace(lexicon=part, mode="open" if options.mode == "open" else "known", max_new=None)
            self._search_all({folded: positions}, results, None, k, max_length, budget, beam, narrowed)
        return results

    def _search_all(self, todo: dict[str, list[int]], results: list[Result], tries: dict[str, Candidates] | None,
                    k, max_length, budget, beam, options: _Options) -> None:
        """Search the folded prefixes of `todo` in groups, setting the completions of the results
        at the positions each answers."""
        # Alphabetical: a group's neighbouring prefixes share their candidates, read once (CandidateNodes.read).
        queue, size = sorted(todo), None
        while queue:
            group, size = self._search_group(queue, size, tries, k, max_length, budget, beam, options)
            if group is None:
                continue
            self._show(queue[: len(group.found)], group, options.lexicon, todo, results)
            queue = queue[len(group.found):]

    def _search_group(self, queue: list[str], size: int | None, tries: dict[str, Candidates] | None, k, max_length, budget,
                      beam, options: _Options) -> tuple[_Searched | None, int]:
        """Search the next group of the queue's prefixes, `size` of them (None: as many as fit);
        (what it found, the size for the next group), or (None, a smaller size) when it ran out
        of memory. Counts its node evaluations and updates the estimate that sizes the groups."""
        # With typos each prefix first reads its candidate trie: nodes, each a state and log-probs, and roots.
        extra = sum(len(t.parent) for t in tries.values()) / len(tries) if tries else 0.0
        group = queue[: size or self._group_size(budget, extra)]
        try:
            with blas.limit(1):
                if tries is None:
                    searched = self._search(group, k, max_length, budget, beam, options)
                else:
                    searched = self._search_typos(group, [tries[p] for p in group], k, max_length, budget, options)
        except OutOfMemory:
            return None, max(1, len(group) // 2)  # the same prefixes again, in smaller groups
        self.evaluations += int(searched.evaluations.sum())
        # Converges to twice the mean evaluations per prefix: room for groups of harder prefixes.
        self._evals_per_prefix = max(16.0, 0.5 * self._evals_per_prefix + float(searched.evaluations.mean()))
        return searched, self._group_size(budget, extra)

    def _show(self, group: list[str], searched: _Searched, lexicon: Lexicon | None, todo: dict[str, list[int]],
              results: list[Result]) -> None:
        """Set the completions a group's search found on the results of its (folded) prefixes."""
        facts = _lexicon_facts(lexicon, searched.found)
        for folded, rows, row_facts, cut in zip(group, searched.found, facts, searched.truncated.tolist()):
            for i in todo[folded]:
                results[i].completions = _completions(results[i].prefix, folded, rows, row_facts, self.folding.lowercase)
                results[i].truncated = cut

    def _options(self, lexicon, known_only: bool | None, open: bool, mixture_lambda, exclude, folded: list[str] | None,
                 tries=None, new: int | None = None) -> _Options:
        """complete_many's scoring options, defaults resolved and checked, for the `folded`
        prefixes (and with typos their candidate tries); None: for any, with the whole of the
        completer's own lexicon. known_only None: True with a lexicon given, else the mixture
        with the completer's own lexicon, else the search is open."""
        if known_only is None:
            known_only = lexicon is not None
        if new is None:
            new = self.default_new(lexicon)
        if lexicon is None:  # the own one; in open mode too, which still says which words are known
            lexicon = self.lexicon if folded is None else self._own_lexicon(folded, tries)
        lexicon = _check_lexicon(lexicon, self.vocab)
        mode = "open" if open or lexicon is None else "known" if known_only or new == 0 else "mixture"
        mixture_lambda = self.mixture_lambda if mixture_lambda is None else _check_lambda(mixture_lambda)
        if exclude is not None and not isinstance(exclude, Lexicon):
            exclude = Lexicon(exclude, self.vocab, self.folding)
        return _Options(mode, lexicon, mixture_lambda, _check_lexicon(exclude, self.vocab),
                        max_new=new if mode == "mixture" else None)

    def _own_lexicon(self, folded: list[str], tries: dict[str, Candidates] | None) -> Lexicon | None:
        """The completer's own lexicon for the `folded` prefixes: for a few with typos, the part of
        the list below their candidates (rnnac.inference.lexicons)."""
        few = tries is not None and len(folded) <= FEW_PREFIXES
        return self.lexicons.for_prefixes(first_candidates(tries, self._chars) if few else folded, len(folded))

    def _candidates(self, todo: dict[str, list[int]], results: list[Result], max_edits: int, channel: Channel,
) -> dict[str, Candidates]:
        """Each folded prefix's trie of intended prefixes (rnnac.inference.typos.candidates). A prefix with
        more than MAX_NODES of them leaves `todo`, its results saying so."""
        if channel not in self._costs:
            if len(self._costs) >= CHANNELS_KEPT:  # a server's clients may ask for any number of channels
                self._costs.clear()
            self._costs[channel] = channel.costs(self.vocab.chars)
        costs = self._costs[channel]
        outside = len(self.vocab)  # the token id of a character outside the vocabulary
        ids = {ch: i for i, ch in enumerate(self.vocab.chars, start=1)}
        tries = {}
        for folded in list(todo):
            try:
                tries[folded] = candidates([ids.get(ch, outside) for ch in folded], costs, max_edits, MAX_LENGTH)
            except TooManyCandidates:
                for i in todo.pop(folded):
                    results[i].error = (f"{results[i].prefix!r} has more than {MAX_NODES:,} candidate prefixes within "
                                        f"{max_edits} edits: allow fewer edits, or type more of it")
        return tries

    def _fold(self, results: list[Result], max_edits: int = 0,
              match: str = "prefix") -> tuple[dict[str, list[int]], dict[str, tuple[str, list[int]]]]:
        """Each distinct normalised, folded prefix -> the positions it answers, so it is searched
        once; apart from them, when the model folds accents (and without typos), the prefixes
        typed with an accent: each distinct one case-folded (Folding.case) -> (its folded form,
        the positions it answers). Sets `error` on the results whose prefix holds a character
        outside the vocabulary (more of them than max_edits; with word-start matching, outside
        its separators). Each distinct prefix as given is folded once."""
        given: dict[str, list[int]] = {}
        for i, result in enumerate(results):
            given.setdefault(result.prefix, []).append(i)
        todo: dict[str, list[int]] = {}
        accented: dict[str, tuple[str, list[int]]] = {}
        for prefix, positions in given.items():
            typed = fold(prefix, self.folding.case)
            folded = fold(typed, self.folding) if self.folding.accents else typed
            char = self.vocab.unknown_char(folded if match == "prefix" else "".join(typed_words(folded)))
            if char is not None and max_edits:
                outside = [ch for ch in folded if self.vocab.unknown_char(ch) is not None]
                char = char if len(outside) > max_edits else None
            if char is None and typed != folded and not max_edits:
                accented.setdefault(typed, (folded, []))[1].extend(positions)
            elif char is None:
                todo.setdefault(folded, []).extend(positions)
            else:
                for i in positions:
                    results[i].error = str(UnknownCharError(prefix, char))
        return todo, accented

    def _match_word_starts(self, todo: dict[str, list[int]], results: list[Result], k: int, options: _Options,
                           accents: list[str] | None = None) -> None:
        """Set on the results of each folded prefix (its typed words) the k most probable
        lexicon entries whose words start with them (rnnac.inference.wordstarts), shown as the
        lexicon writes them; with `accents` (the words typed with accents, case folded), only
        the entries written with them."""
        lexicon = options.lexicon
        if lexicon not in self._word_starts:
            self._word_starts[lexicon] = WordStarts(lexicon, self.folding, self.lexicons.written_logp(lexicon),
                                                    self.lexicons.stored_word_starts(lexicon))
        starts = self._word_starts[lexicon]

        def entry_logp(entry: np.ndarray) -> np.ndarray:  # log P(w) (n,) of entries (n,)
            if options.mode != "open" and options.mixture_lambda == 1.0:  # P_rnn has no weight: not scored
                return word_logprobs(lexicon, 1.0, starts.node[entry], np.full(len(entry), -np.inf))
            rnn = starts.rnn_logp_of(entry, lambda words: rnn_word_logprobs(self.model, self.vocab, words))  # (n,)
            return rnn if options.mode == "open" else word_logprobs(lexicon, options.mixture_lambda, starts.node[entry], rnn)

        blocked = None
        if options.exclude is not None:
            def blocked(entry: str) -> bool:
                return bool(options.exclude.ends(options.exclude.walk(self.vocab.encode(entry))))

        for folded, positions in todo.items():
            found = best_matches(starts, typed_words(folded), k, entry_logp, blocked, accents)
            node = starts.node[[m.entry for m in found]]  # (k,)
            shown = written_forms(lexicon, node, np.ones(len(found), dtype=bool))
            for i in positions:
                results[i].completions = [
                    Completion(word, math.exp(m.logprob), m.logprob, True, 0, results[i].prefix,
                               shown_offset(starts.entries[m.entry], word, m.offset)) for m, word in zip(found, shown)]

    def _bytes_per_eval(self) -> int:
        return self.model.hidden_size * self.model.dtype.itemsize + (self.model.vocab_size - 1) * FRONTIER_BYTES

    def _group_size(self, budget: int, extra: float = 0.0) -> int:
        """Prefixes searched together: as many as fit SEARCH_BYTES at the expected node evaluations
        each, plus `extra` nodes each read first (typos)."""
        per_prefix = (min(budget, self._evals_per_prefix) + extra) * self._bytes_per_eval()
        return int(np.clip(SEARCH_BYTES // per_prefix, 1, 4096))

    def _search(self, prefixes: list[str], k, max_length, budget, beam, options: _Options) -> _Searched:
        """What the search finds for distinct, valid, folded prefixes."""
        encoded = [self.vocab.encode(p) for p in prefixes]
        a, logp, prefix_lp = read_strings(self.model, encoded)  # (G, H), (G, K), (G,)
        lengths = np.array([len(ids) for ids in encoded], dtype=np.int32)  # (G,)
        roots = Roots(a, logp, lengths, _walk(options.lexicon, encoded), _walk(options.exclude, encoded), prefix_lp)
        scoring = Scoring.of(roots, options.mode, options.lexicon, options.mixture_lambda, options.exclude)
        if beam:
            search = BeamSearch(self.model, roots, k, max_length, budget, scoring, width=beam, max_new=options.max_new)
        else:
            max_rows = SEARCH_BYTES // self._bytes_per_eval() if len(prefixes) > 1 else None
            search = ExactSearch(self.model, roots, k, max_length, budget, scoring, max_rows, max_new=options.max_new)
        best_lp, best_row, truncated, evaluations = search.run()
        suffixes, _ = search.tree.suffixes(best_row, self._chars)  # (G, k) str
        k = best_row.shape[1]
        found = _found(best_lp, suffixes, _tries(search, best_row), [[p] * k for p in prefixes], [[0] * k] * len(prefixes))
        return _Searched(found, truncated, evaluations)

    def _search_typos(self, prefixes: list[str], tries: list[Candidates], k, max_length, budget, options: _Options) -> _Searched:
        """What the search finds for distinct, folded prefixes, searched below their candidates (rnnac.inference.typos)."""
        nodes = CandidateNodes(tries)
        cands = np.flatnonzero(nodes.channel > -np.inf)  # (R,) the candidates: the search's roots, r -> node
        owned = nodes.owned()  # (n,)
        # A leaf's state is read only if the search comes to it (Pending). A trie's top, the empty
        # string, is read whatever: it has no parent to start from.
        leaf = nodes.leaves() & (nodes.depth > 0)  # (n,)
        (a, logp, prefix_lp), row = nodes.read(self.model, skip=leaf)  # (S, H), (S, K), (S,) by string; row (n,)
        prefix_lp = prefix_lp[row]  # (n,)
        trie, block = nodes.walk(options.lexicon), nodes.walk(options.exclude)  # (n,) each
        every = Roots(None, None, nodes.depth[cands], trie[cands], block[cands], prefix_lp[cands], nodes.group[cands],
                      cands.astype(np.int32), np.arange(len(cands)))
        owners = Owners(nodes.children(len(self.vocab)), np.append(nodes.channel, -np.inf), nodes.channel[cands])
        scoring = Scoring.of_typos(every, nodes.channel[cands], owned[cands], owners, options.mode,
                                   options.lexicon, options.mixture_lambda, options.exclude)
        read = np.flatnonzero(~leaf[cands])  # (R_read,) roots read already
        roots = Roots(a[row[cands[read]]], logp[row[cands[read]]], *(column[read] for column in every[2:]))
        later = np.flatnonzero(leaf[cands] & owned[cands])  # (P,) the others that search their words
        parents, parent_of = distinct(nodes.parent[cands[later]])
        pending = Pending(a[row[parents]], parent_of, nodes.token[cands[later]],
                          Roots(None, None, *(column[later] for column in every[2:])))
        max_rows = SEARCH_BYTES // self._bytes_per_eval() if len(prefixes) > 1 else None
        search = ExactSearch(self.model, roots, k, max_length, budget, scoring, max_rows, groups=len(prefixes), pending=pending,
                             max_new=options.max_new)
        best_lp, best_row, truncated, evaluations = search.run()
        suffixes, root_row = search.tree.suffixes(best_row, self._chars)  # (G, k) each
        node = np.array([[cands[search.root_of_row[row]] if row >= 0 else -1 for row in rows] for rows in root_row.tolist()],
                        dtype=np.int64).reshape(root_row.shape)  # (G, k) candidate nodes, -1 where no word is found
        spelled = nodes.strings(self._chars)[node].tolist()  # (G, k) the candidates' strings
        edits = nodes.edits[node].tolist()  # (G, k)
        return _Searched(_found(best_lp, suffixes, _tries(search, best_row), spelled, edits), truncated, evaluations)


def _check_sizes(k: int, max_length: int, budget: int, beam: int | None, max_edits: int) -> None:
    """OptionError unless complete_many's sizes are in range (options.MAX_K and the others)."""
    for name, value, top in (("k", k, MAX_K), ("max_length", max_length, MAX_LENGTH), ("budget", budget, MAX_BUDGET),
                             ("beam", 1 if beam is None else beam, MAX_K)):
        if not 1 <= value <= top:
            raise OptionError(f"{{{name}}} must be from 1 to {top:,}, got {value}")
    if not 0 <= max_edits <= MAX_EDITS:
        raise OptionError(f"{{max_edits}} must be from 0 to {MAX_EDITS}, got {max_edits}")


def _from_mode(mode: str) -> tuple[bool | None, bool]:
    """(known_only, open) for complete_many's deprecated `mode`, with its DeprecationWarning."""
    warnings.warn('complete_many(mode=...) is deprecated: give known_only=True ("known"), open=True ("open") '
                  'or known_only=False ("mixture")', DeprecationWarning, stacklevel=3)
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    return {"known": (True, False), "open": (None, True), "mixture": (False, False)}[mode]


def _tries(search, best_row: np.ndarray) -> np.ndarray:
    """The lexicon nodes (G, k) of the words at the search's best rows, -1 where none is found."""
    return np.where(best_row >= 0, search.tree.trie[best_row], -1)


def _found(best_lp: np.ndarray, suffixes: np.ndarray, trie: np.ndarray, roots: list[list[str]],
           edits: list[list[int]]) -> list[list[_Found]]:
    """Each prefix's words found (best_lp, suffixes, trie, roots, edits (G, k)), best first;
    -inf in best_lp: fewer than k words."""
    return [[_Found(*row) for row in zip(row_roots, row_edits, row_suffixes, row_lp, row_trie) if row[3] > -np.inf]
            for row_lp, row_suffixes, row_trie, row_roots, row_edits in
            zip(best_lp.tolist(), suffixes.tolist(), trie.tolist(), roots, edits)]


def _lexicon_facts(lexicon: Lexicon | None, found: list[list[_Found]]) -> list[list[tuple[bool, str | None]]]:
    """For each word found: (a word of the lexicon, the lexicon's written form of it or None)."""
    if lexicon is None:
        return [[(False, None)] * len(rows) for rows in found]
    trie = np.array([row.node for rows in found for row in rows], dtype=np.int64)  # (M,)
    known = lexicon.ends(trie)  # (M,)
    facts = iter(zip(known.tolist(), written_forms(lexicon, trie, known)))
    return [[next(facts) for _ in rows] for rows in found]


def _completions(prefix: str, folded: str, found: list[_Found], facts: list[tuple[bool, str | None]],
                 lowercase: bool) -> list[Completion]:
    """The words found for the folded prefix as shown for `prefix` as typed, and the prefixes they
    corrected to in the case typed."""
    typed = fold(prefix, False)
    out = []
    for row, (known, written) in zip(found, facts):
        corrected = prefix if row.root == folded else case_like(typed, row.root) if lowercase else row.root
        word = as_typed(corrected, row.root, row.root + row.suffix, written, lowercase)
        out.append(Completion(word, math.exp(row.logprob), row.logprob, known, row.edits, corrected))
    return out


def _check_lambda(mixture_lambda: float) -> float:
    if not 0.0 <= mixture_lambda <= 1.0:  # NaN fails too
        raise ValueError(f"mixture_lambda must be in [0, 1], got {mixture_lambda}")
    return float(mixture_lambda)


def _check_lexicon(lexicon: Lexicon | None, vocab: Vocab) -> Lexicon | None:
    if lexicon is not None and lexicon.K != len(vocab):
        raise ValueError(f"a lexicon built for {lexicon.K} tokens, a vocabulary of {len(vocab)}")
    return lexicon


def _walk(lexicon: Lexicon | None, encoded: list[list[int]]) -> np.ndarray:
    """Each prefix's lexicon node (G,): -1 where no word starts so, 0 for all without a lexicon."""
    if lexicon is None:
        return np.zeros(len(encoded), dtype=np.int32)  # (G,)
    return np.array([lexicon.walk(ids) for ids in encoded], dtype=np.int32)  # (G,)
