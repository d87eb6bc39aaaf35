"""Completing prefixes: the k most probable words for each of many prefixes, searched in groups.

A Completer reads every prefix with the model, then hands the states to a search (rnnac.inference.search:
exact best-first or beam) over groups of prefixes sized to bound the search's memory. With a
lexicon (the words the model was trained on, with their counts) it ranks words by a mixture of
the lexicon's frequencies and the model (rnnac.inference.search explains the scores and the modes). With
typing errors allowed (max_edits), it first builds each prefix's trie of candidate intended
prefixes (rnnac.inference.typos), reads all their nodes depth by depth, and searches below the candidates.

Shapes: G prefixes searched together, T prefix characters, H hidden, K vocabulary (id 0 is the
word boundary).
"""

from __future__ import annotations

import bisect
import itertools
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from rnnac.engine import blas
from rnnac.engine.model import RNN
from rnnac.engine.vocab import BOUNDARY, Vocab
from rnnac.errors import CheckpointError, UnknownCharError
from rnnac.inference.search import MODES, BeamSearch, ExactSearch, OutOfMemory, Owners, Pending, Roots, Scoring
from rnnac.inference.typos import MAX_EDITS, MAX_NODES, Candidates, Channel, Costs, TooManyCandidates, candidates, spell_all
from rnnac.storage.checkpoint import load_model, resolve_checkpoint
from rnnac.storage.lexicon import Lexicon, LexiconData, fold

SEARCH_BYTES = 2**28  # rough cap on the memory of one group's search (states and frontier)
DEFAULT_LAMBDA = 0.5  # the lexicon's weight for a checkpoint that carries one but no fitted weight (a run cut short)
FEW_PREFIXES = 16  # up to this many distinct prefixes a call builds only the part of a list below them
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
    used: np.ndarray  # (G,) int


class _Options(NamedTuple):
    """How one complete_many call scores words (see rnnac.inference.search)."""

    mode: str  # "open", "mixture" or "known"
    lexicon: Lexicon | None
    mixture_lambda: float  # lam, the lexicon's weight
    exclude: Lexicon | None  # words never proposed
    max_edits: int = 0  # typing errors allowed in a prefix (rnnac.inference.typos)
    costs: Costs | None = None  # the channel's, with max_edits


class Completer:
    """Completes prefixes with a model: `Completer.load().complete("rec").completions`.

    `lexicon` (the training words with their counts) and `mixture_lambda` (its weight lam in
    [0, 1]) set the default mode, "mixture"; without a lexicon the mode is "open", the model alone.
    """

    def __init__(self, model: RNN, vocab: Vocab, lowercase: bool = True, lexicon: Lexicon | None = None,
                 mixture_lambda: float = 0.0):
        if len(vocab) != model.vocab_size:
            raise ValueError(f"vocabulary of {len(vocab)} tokens for a model of {model.vocab_size}")
        self.model, self.vocab, self.lowercase = model, vocab, lowercase
        self._lexicon, self.mixture_lambda = _check_lexicon(lexicon, vocab), _check_lambda(mixture_lambda)
        self.lexicon_words: LexiconData | None = None  # the checkpoint's word list, when loaded from one with it
        self._folded_words: list[str] | None = None  # the list's words folded, once, when they differ from it
        self._total: float | None = None  # their total count, once (see _lexicon_total)
        # (K,) token id -> character; the boundary's "\0" pads fixed-width strings (see rnnac.inference.search._Tree.suffixes)
        self._chars = np.array(["\0", *vocab.chars], dtype="<U1")
        self._evals_per_prefix = 200.0  # running estimate, sizes the groups searched together
        self._calls = 0  # complete_many calls that chose a lexicon (see _lexicon_for)
        self._costs: dict[Channel, Costs] = {}  # each typing channel's log-probabilities over the vocabulary, once
        self.evaluations = 0  # node evaluations (model.step rows) of every search so far, the prefixes' own characters excluded

    @classmethod
    def load(cls, path: str | os.PathLike | None = None) -> Completer:
        """The model of `resolve_checkpoint(path)`, with the lexicon it carries (every word it
        lists, held-out ones too) and its meta's mixture_lambda, when it has them."""
        path = resolve_checkpoint(path)
        model, vocab, lowercase, ckpt = load_model(path)
        stored = ckpt.lexicon  # words (W,), counts (W,), held_out (W,); None in older checkpoints
        # A lexicon without a fitted lam comes from a run that never finished: weigh both sides alike.
        mixture_lambda = ckpt.meta.get("mixture_lambda")
        if mixture_lambda is None:
            mixture_lambda = 0.0 if stored is None else DEFAULT_LAMBDA
        if isinstance(mixture_lambda, bool) or not (isinstance(mixture_lambda, (int, float)) and 0.0 <= mixture_lambda <= 1.0):
            raise CheckpointError(f"cannot load checkpoint {path}: meta mixture_lambda {mixture_lambda!r} is not in [0, 1]")
        completer = cls(model, vocab, lowercase, None, mixture_lambda)
        completer.lexicon_words = stored  # its Lexicon is built when first needed (see _lexicon_for)
        return completer

    @property
    def lexicon(self) -> Lexicon | None:
        """The completer's own lexicon: the one given, or the whole word list of its checkpoint."""
        if self._lexicon is None and self.lexicon_words is not None:
            stored = self.lexicon_words
            self._lexicon = Lexicon(stored.words, self.vocab, self.lowercase, stored.counts)
        return self._lexicon

    def _lexicon_for(self, folded: list[str], typed: int) -> Lexicon | None:
        """The own lexicon, or for a few typed prefixes (`typed` of them) only the part of the
        checkpoint's list below `folded` (the prefixes, or with typos their candidates): a cold
        `rnnac complete rec` then builds a trie of a few hundred words, not of the whole list.
        Scores are the same either way: the part keeps the whole list's total count. A completer
        called again builds the whole trie (once, ~20 ms for 50,000 words): it is in a running
        process, where the part would cost that much again at every call with typos."""
        stored = self.lexicon_words
        self._calls += 1
        if self._lexicon is not None or stored is None or typed > FEW_PREFIXES or "" in folded or self._calls > 1:
            return self.lexicon
        rows = self._rows_below(folded)  # (W',)
        return Lexicon([stored.words[i] for i in rows], self.vocab, self.lowercase, stored.counts[rows],
                       self._lexicon_total())

    def _lexicon_total(self) -> float:
        """The total count C of the checkpoint's words the model can spell, as the whole Lexicon
        would sum it (Lexicon.total), summed once; for speed, one set of characters when every
        word qualifies."""
        if self._total is None:
            words, counts = self._folded(), self.lexicon_words.counts
            if set("".join(words)) <= set(self.vocab.chars):
                self._total = float(counts.sum())
            else:
                self._total = float(sum(c for w, c in zip(words, counts) if w and self.vocab.unknown_char(w) is None))
        return self._total

    def _rows_below(self, folded: list[str]) -> np.ndarray:
        """Indices of the checkpoint's words whose folded form starts with one of `folded`."""
        words = self._folded()
        if words is self.lexicon_words.words:  # already folded: the words below a prefix are one run of the sorted list
            rows = sorted(set(itertools.chain(*(_run_below(words, p) for p in folded))))  # not np.unique: numpy.ma costs 20 ms
            return np.array(rows, dtype=np.int64)  # (W',)
        starts = tuple(folded)
        return np.array([i for i, w in enumerate(words) if w.startswith(starts)], dtype=np.int64)  # (W',)

    def _folded(self) -> list[str]:
        """The checkpoint's words folded as prefixes are (the list itself when already so), made once."""
        if self._folded_words is None:
            words = self.lexicon_words.words  # sorted as written
            text = "\n".join(words)  # folded in one call: neither NFC nor lower() acts across a newline
            folded_text = fold(text, self.lowercase)
            self._folded_words = words if folded_text == text else folded_text.split("\n")
        return self._folded_words

    @property
    def has_lexicon(self) -> bool:
        """The completer has a lexicon of its own (built or not yet)."""
        return self._lexicon is not None or self.lexicon_words is not None

    def lexicon_from_file(self, path: str | os.PathLike, add: bool = False) -> Lexicon:
        """A Lexicon of the words of the list at `path` with its counts (1 each in a plain list);
        with `add`, together with the completer's own words (counts of a word in both are added)."""
        return Lexicon.from_file(path, self.vocab, self.lowercase, self.lexicon_words if add else None)

    def complete(self, prefix: str, k: int = 5, **options) -> Result:
        """The k most probable words starting with `prefix`; see `complete_many`."""
        return self.complete_many([prefix], k, **options)[0]

    def complete_many(self, prefixes: Sequence[str], k: int = 5, max_length: int = 32, budget: int = 2000,
                      beam: int | None = None, lexicon: Lexicon | None = None, mode: str | None = None,
                      mixture_lambda: float | None = None, exclude: Lexicon | Iterable[str] | None = None,
                      max_edits: int = 0, channel: Channel | None = None) -> list[Result]:
        """One Result per prefix, in order. Exact best-first search, or beam search of width `beam`.

        Prefixes are put in Unicode NFC and case-folded as the model was trained; the Completions
        show the words in the case typed (as_typed: REC gives RECORD), or as the lexicon writes
        them when that has a case of its own. A prefix holding a character outside the vocabulary gets a
        Result with `error` set (with max_edits, only when it holds more such characters than
        edits). Words are at most `max_length` characters, prefix included (a longer prefix has
        no completion). `budget` bounds the node evaluations per prefix.

        Scoring (rnnac.inference.search): `mode` "open" (the model alone), "mixture" (every word, by the
        lexicon and the model) or "known" (lexicon words only, scored as in the mixture, not
        renormalised). `lexicon` replaces the completer's own for this call; `mode` None is
        "known" with such a lexicon (its words, ranked by the model when lam is 0), else
        "mixture" with the completer's lexicon, else "open". `mixture_lambda` None is the
        completer's. `exclude` (a Lexicon or words) is never proposed.

        Typing errors (rnnac.inference.typos): with `max_edits` N > 0 the typed prefix may hold up to N
        of them, weighed by `channel` (default Channel()); each word then comes with the edits
        of its best path and the prefix it corrected to (Completion.edits, .corrected). Exact search only.
        """
        if k < 1 or max_length < 1 or budget < 1 or (beam is not None and beam < 1):
            raise ValueError("k, max_length, budget and beam must be >= 1")
        if not 0 <= max_edits <= MAX_EDITS:
            raise ValueError(f"max_edits must be in 0..{MAX_EDITS}, got {max_edits}")
        if max_edits and beam:
            raise ValueError("beam search does not take max_edits: typo-tolerant completion is exact search only")
        results = [Result(prefix) for prefix in prefixes]
        todo = self._fold(results, max_edits)
        tries = self._candidates(todo, results, max_edits, channel or Channel(), max_length) if max_edits else None
        options = self._options(lexicon, mode, mixture_lambda, exclude, list(todo), tries)
        # With typos each prefix first reads its candidate trie: nodes, each a state and log-probs, and roots.
        extra = sum(len(t.parent) for t in tries.values()) / len(tries) if tries else 0.0
        queue, size = list(todo), self._group_size(budget, extra)
        while queue:
            group = queue[:size]
            try:
                # One BLAS thread: these GEMMs are small, and OpenBLAS's extra threads cost more
                # to wake (and fight over a busy machine's cores) than they save. Measured.
                with blas.limit(1):
                    if tries is None:
                        found = self._search(group, k, max_length, budget, beam, options)
                    else:
                        found = self._search_typos(group, [tries[p] for p in group], k, max_length, budget, options)
            except OutOfMemory:
                size = max(1, len(group) // 2)  # the same prefixes again, in smaller groups
                continue
            queue = queue[len(group):]
            found, truncated, used = found
            self.evaluations += int(used.sum())
            facts = _lexicon_facts(options.lexicon, found)
            for folded, rows, row_facts, cut in zip(group, found, facts, truncated.tolist()):
                for i in todo[folded]:
                    results[i].completions = _completions(results[i].prefix, folded, rows, row_facts, self.lowercase)
                    results[i].truncated = cut
            # Converges to twice the mean evaluations per prefix: room for groups of harder prefixes.
            self._evals_per_prefix = max(16.0, 0.5 * self._evals_per_prefix + float(used.mean()))
            size = self._group_size(budget, extra)
        return results

    def _options(self, lexicon, mode, mixture_lambda, exclude, folded: list[str], tries=None) -> _Options:
        """complete_many's scoring options, defaults resolved and checked, for the `folded`
        prefixes (and with typos their candidate tries)."""
        if mode is None:
            mode = "known" if lexicon is not None else "mixture" if self.has_lexicon else "open"
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        if lexicon is None:  # the own one; in open mode too, which still says which words are known
            few = tries is not None and len(folded) <= FEW_PREFIXES  # then the part of the list below their candidates
            lexicon = self._lexicon_for(_first_candidates(tries, self._chars) if few else folded, len(folded))
        lexicon = _check_lexicon(lexicon, self.vocab)
        if mode != "open" and lexicon is None:
            raise ValueError(f"mode {mode!r} needs a lexicon")
        lam = self.mixture_lambda if mixture_lambda is None else _check_lambda(mixture_lambda)
        if exclude is not None and not isinstance(exclude, Lexicon):
            exclude = Lexicon(exclude, self.vocab, self.lowercase)
        return _Options(mode, lexicon, lam, _check_lexicon(exclude, self.vocab))

    def _candidates(self, todo: dict[str, list[int]], results: list[Result], max_edits: int, channel: Channel,
                    max_length: int) -> dict[str, Candidates]:
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
                tries[folded] = candidates([ids.get(ch, outside) for ch in folded], costs, max_edits, max_length)
            except TooManyCandidates:
                for i in todo.pop(folded):
                    results[i].error = (f"{results[i].prefix!r} has more than {MAX_NODES:,} candidate prefixes within "
                                        f"{max_edits} edits: allow fewer edits, or type more of it")
        return tries

    def _fold(self, results: list[Result], max_edits: int = 0) -> dict[str, list[int]]:
        """Each distinct normalised, folded prefix -> the positions it answers, so it is searched
        once; sets `error` on the results whose prefix holds a character outside the vocabulary
        (more of them than max_edits). For speed, each distinct prefix as given is folded once:
        typed prefixes repeat."""
        given: dict[str, list[int]] = {}
        for i, result in enumerate(results):
            given.setdefault(result.prefix, []).append(i)
        todo: dict[str, list[int]] = {}
        for prefix, positions in given.items():
            folded = fold(prefix, self.lowercase)
            char = self.vocab.unknown_char(folded)
            if char is not None and max_edits:
                outside = [ch for ch in folded if self.vocab.unknown_char(ch) is not None]
                char = char if len(outside) > max_edits else None
            if char is None:
                todo.setdefault(folded, []).extend(positions)
                continue
            for i in positions:
                results[i].error = str(UnknownCharError(prefix, char))
        return todo

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
        a, logp, prefix_lp = _read(self.model, encoded)  # (G, H), (G, K), (G,)
        lengths = np.array([len(ids) for ids in encoded], dtype=np.int32)  # (G,)
        roots = Roots(a, logp, lengths, _walk(options.lexicon, encoded), _walk(options.exclude, encoded), prefix_lp)
        scoring = Scoring.of(roots, options.mode, options.lexicon, options.mixture_lambda, options.exclude)
        if beam:
            search = BeamSearch(self.model, roots, k, max_length, budget, scoring, width=beam)
        else:
            max_rows = SEARCH_BYTES // self._bytes_per_eval() if len(prefixes) > 1 else None
            search = ExactSearch(self.model, roots, k, max_length, budget, scoring, max_rows)
        best_lp, best_row, truncated, used = search.run()
        suffixes, _ = search.tree.suffixes(best_row, self._chars)  # (G, k) str
        k = best_row.shape[1]
        found = _found(best_lp, suffixes, _tries(search, best_row), [[p] * k for p in prefixes], [[0] * k] * len(prefixes))
        return _Searched(found, truncated, used)

    def _search_typos(self, prefixes: list[str], tries: list[Candidates], k, max_length, budget, options: _Options) -> _Searched:
        """What the search finds for distinct, folded prefixes, searched below their candidates (rnnac.inference.typos)."""
        nodes = _CandidateNodes(tries)
        cands = np.flatnonzero(nodes.channel > -np.inf)  # (R,) the candidates: the search's roots, r -> node
        owned = nodes.owned()  # (n,)
        # For speed, a leaf's state is read only if the search comes to it (Pending): a third of the
        # nodes. (A trie's top, the empty string, is read whatever: it has no parent to start from.)
        leaf = nodes.leaves() & (nodes.depth > 0)  # (n,)
        a, logp, prefix_lp = nodes.read(self.model, skip=leaf)  # (n, H), (n, K), (n,); leaves' a and logp unset
        trie, block = nodes.walk(options.lexicon), nodes.walk(options.exclude)  # (n,) each
        every = Roots(None, None, nodes.depth[cands], trie[cands], block[cands], prefix_lp[cands], nodes.group[cands],
                      cands.astype(np.int32), np.arange(len(cands)))
        owners = Owners(nodes.children(len(self.vocab)), np.append(nodes.channel, -np.inf), nodes.channel[cands])
        scoring = Scoring.of_typos(every, nodes.channel[cands], owned[cands], owners, options.mode,
                                   options.lexicon, options.mixture_lambda, options.exclude)
        read = np.flatnonzero(~leaf[cands])  # (R_read,) roots read already
        roots = Roots(a[cands[read]], logp[cands[read]], *(column[read] for column in every[2:]))
        later = np.flatnonzero(leaf[cands] & owned[cands])  # (P,) the others that search their words
        parents, parent_of = _distinct(nodes.parent[cands[later]])
        pending = Pending(a[parents], parent_of, nodes.token[cands[later]], Roots(None, None, *(column[later] for column in every[2:])))
        max_rows = SEARCH_BYTES // self._bytes_per_eval() if len(prefixes) > 1 else None
        search = ExactSearch(self.model, roots, k, max_length, budget, scoring, max_rows, groups=len(prefixes), pending=pending)
        best_lp, best_row, truncated, used = search.run()
        suffixes, root_row = search.tree.suffixes(best_row, self._chars)  # (G, k) each
        node = np.array([[cands[search.root_of_row[row]] if row >= 0 else -1 for row in rows] for rows in root_row.tolist()],
                        dtype=np.int64).reshape(root_row.shape)  # (G, k) candidate nodes, -1 where no word is found
        spelled = nodes.strings(self._chars)[node].tolist()  # (G, k) the candidates' strings
        edits = nodes.edits[node].tolist()  # (G, k)
        return _Searched(_found(best_lp, suffixes, _tries(search, best_row), spelled, edits), truncated, used)


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
    known = lexicon.ends[trie]  # (M,)
    index = np.where(known, lexicon.display[np.where(known, trie, 0)], -1).tolist()  # (M,) into lexicon.written
    facts = iter(zip(known.tolist(), (fold(lexicon.written[i], lowercase=False) if i >= 0 else None for i in index)))
    return [[next(facts) for _ in rows] for rows in found]


def _completions(prefix: str, folded: str, found: list[_Found], facts: list[tuple[bool, str | None]],
                 lowercase: bool) -> list[Completion]:
    """The words found for the folded prefix as shown for `prefix` as typed, and the prefixes they
    corrected to in the case typed."""
    typed = fold(prefix, lowercase=False)
    out = []
    for row, (known, written) in zip(found, facts):
        corrected = prefix if row.root == folded else _case_like(typed, row.root) if lowercase else row.root
        word = as_typed(corrected, row.root, row.root + row.suffix, written, lowercase)
        out.append(Completion(word, math.exp(row.logprob), row.logprob, known, row.edits, corrected))
    return out


def _distinct(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(the distinct values, sorted; each value's index among them): np.unique(values,
    return_inverse=True) without its import of numpy.ma, which costs a cold start 20 ms."""
    order = np.argsort(values, kind="stable")
    first = np.ones(len(values), dtype=bool)
    first[1:] = values[order][1:] != values[order][:-1]
    inverse = np.empty(len(values), dtype=np.int64)
    inverse[order] = np.cumsum(first) - 1
    return values[order][first], inverse


def _case_like(typed: str, corrected: str) -> str:
    """A corrected prefix in the case of what was typed: capitals if typed in capitals (two or
    more), a capital first letter if typed so."""
    if _shouting(typed):
        return corrected.upper()
    if typed[:1].isupper():
        return corrected[:1].upper() + corrected[1:]
    return corrected


class _CandidateNodes:
    """The candidate tries of G typed prefixes as one array of nodes, parents before children
    within each; their states are read together, depth by depth."""

    def __init__(self, tries: list[Candidates]):
        sizes = [len(t.parent) for t in tries]
        start = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)  # (G,) each trie's first node
        self.group = np.repeat(np.arange(len(tries), dtype=np.int32), sizes)  # (n,)
        self.parent = np.concatenate([np.where(t.parent >= 0, t.parent + s, -1) for t, s in zip(tries, start)])  # (n,)
        self.token, self.depth, self.channel, self.edits = (
            np.concatenate([getattr(t, name) for t in tries]) for name in ("token", "depth", "channel", "edits"))
        self.levels = [np.flatnonzero(self.depth == d) for d in range(int(self.depth.max(initial=0)) + 1)]

    def read(self, model: RNN, skip: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every node's hidden state (n, H), next-token log-probs (n, K) and log P_rnn(s*) (n,);
        the nodes of `skip` (n,) (no children: leaves) get their log P_rnn(s*) only, their state
        and log-probs left unset."""
        n = len(self.parent)
        a = np.empty((n, model.hidden_size), dtype=model.dtype)
        logp = np.empty((n, model.vocab_size), dtype=model.dtype)
        prefix_lp = np.zeros(n)
        top = self.levels[0]  # the empty string of each trie
        a[top], logp[top] = model.step(model.initial_state(len(top)), np.full(len(top), BOUNDARY))
        for level in self.levels[1:]:
            parent, token = self.parent[level], self.token[level]
            prefix_lp[level] = prefix_lp[parent] + logp[parent, token]
            if skip is not None:
                level = level[~skip[level]]
            a[level], logp[level] = model.step(a[self.parent[level]], self.token[level])
        return a, logp, prefix_lp

    def leaves(self) -> np.ndarray:
        """(n,) the nodes without children."""
        leaf = np.ones(len(self.parent), dtype=bool)
        leaf[self.parent[self.parent >= 0]] = False
        return leaf

    def walk(self, lexicon: Lexicon | None) -> np.ndarray:
        """Every node's lexicon node (n,): -1 off it, 0 for all without a lexicon."""
        trie = np.zeros(len(self.parent), dtype=np.int32)
        if lexicon is not None:
            for level in self.levels[1:]:
                trie[level] = lexicon.children[trie[self.parent[level]], self.token[level]]
        return trie

    def children(self, K: int) -> np.ndarray:
        """(n + 1, K) the child of each node by token, -1 for none; the last row is "off the tries"."""
        table = np.full((len(self.parent) + 1, K), -1, dtype=np.int32)
        below = np.flatnonzero(self.parent >= 0)
        table[self.parent[below], self.token[below]] = below
        return table

    def owned(self) -> np.ndarray:
        """(n,) whether a candidate scores its words itself: its channel beats every shorter
        candidate's on its path (on a tie the shorter one does)."""
        above = np.full(len(self.parent), -np.inf)  # (n,) best channel of a proper ancestor
        for level in self.levels[1:]:
            parent = self.parent[level]
            above[level] = np.maximum(above[parent], self.channel[parent])
        return self.channel > above

    def strings(self, chars: np.ndarray) -> np.ndarray:
        """Every node's string (n,); chars (K,) maps token ids to characters."""
        return spell_all(self.parent, self.token, self.depth, chars)


def _first_candidates(tries: dict[str, Candidates], chars: np.ndarray) -> list[str]:
    """The candidates no other candidate of their typed prefix starts (Candidates.first)."""
    return [s for t in tries.values() for s in spell_all(t.parent, t.token, t.depth, chars)[t.first()].tolist()]


def as_typed(typed: str, folded: str, word: str, written: str | None, lowercase: bool) -> str:
    """A completion as it is shown. `word` is what the search found (it starts with `folded`, the
    prefix as the model reads it); `typed` is the prefix as typed, in NFC; `written` the word as
    the lexicon writes it (None if it is not a lexicon word). A model trained without case folding
    gives its words as they are. Otherwise a written form with a case of its own wins (Paris);
    else the prefix as typed, then the rest in capitals if the prefix is in capitals (two or more
    of them), as found if not.

    as_typed("REC", "rec", "record", None, True) -> "RECORD"; as_typed("Rec", "rec", "record", None, True) -> "Record"
    """
    if not lowercase:
        return word
    if written is not None and written != word:
        return written
    rest = word[len(folded):]
    return typed + (rest.upper() if _shouting(typed) else rest)


def _shouting(typed: str) -> bool:
    """Typed in capitals: two or more of them, and no lower-case letter."""
    return typed.isupper() and sum(map(str.isupper, typed)) >= 2


def _run_below(words: list[str], prefix: str) -> range:
    """The indices of the sorted `words` that start with `prefix`: one run, found by bisection
    (no key function, for speed: the run ends before prefix + the last code point, past which
    only words holding that code point right after the prefix can lie)."""
    start = bisect.bisect_left(words, prefix)
    end = bisect.bisect_left(words, prefix + "\U0010ffff", lo=start)
    while end < len(words) and words[end].startswith(prefix):
        end += 1
    return range(start, end)


def _check_lambda(mixture_lambda: float) -> float:
    if not 0.0 <= mixture_lambda <= 1.0:  # NaN fails too
        raise ValueError(f"mixture_lambda must be in [0, 1], got {mixture_lambda}")
    return float(mixture_lambda)


def _check_lexicon(lexicon: Lexicon | None, vocab: Vocab) -> Lexicon | None:
    if lexicon is not None and lexicon.children.shape[1] != len(vocab):
        raise ValueError(f"a lexicon built for {lexicon.children.shape[1]} tokens, a vocabulary of {len(vocab)}")
    return lexicon


def _walk(lexicon: Lexicon | None, encoded: list[list[int]]) -> np.ndarray:
    """Each prefix's lexicon node (G,): -1 where no word starts so, 0 for all without a lexicon."""
    if lexicon is None:
        return np.zeros(len(encoded), dtype=np.int32)  # (G,)
    return np.array([lexicon.walk(ids) for ids in encoded], dtype=np.int32)  # (G,)


def read_prefixes(model: RNN, encoded: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    """Feed [boundary, prefix...] to every prefix together: the last hidden state (G, H) and the
    next token's log-probs (G, K). Prefixes of different lengths drop out as they end."""
    a, logp, _ = _read(model, encoded)
    return a, logp


def _read(model: RNN, encoded: list[list[int]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """read_prefixes, and each prefix's log-prob (G,), log P_rnn(s*): the sum of its characters' log y^."""
    G, T = len(encoded), max(map(len, encoded), default=0)
    ids = np.zeros((G, T), dtype=np.int64)  # (G, T), padded
    for i, row in enumerate(encoded):
        ids[i, : len(row)] = row
    lengths = np.array([len(row) for row in encoded])  # (G,)
    a, logp = model.step(model.initial_state(G), np.full(G, BOUNDARY))  # (G, H), (G, K)
    prefix_lp = np.zeros(G)  # (G,), float64
    for t in range(T):
        rows = np.flatnonzero(lengths > t)  # prefixes still being read
        prefix_lp[rows] += logp[rows, ids[rows, t]]
        a[rows], logp[rows] = model.step(a[rows], ids[rows, t])
    return a, logp, prefix_lp
