"""Completing prefixes: the k most probable words for each of many prefixes, searched in groups.

A Completer reads every prefix with the model, then hands the states to a search (rnnac.search:
exact best-first or beam) over groups of prefixes sized to bound the search's memory.

Shapes: G prefixes searched together, T prefix characters, H hidden, K vocabulary (id 0 is the
word boundary).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from rnnac import blas
from rnnac.checkpoint import load_for_inference
from rnnac.data import BOUNDARY, Vocab
from rnnac.errors import UnknownCharError
from rnnac.model import RNN
from rnnac.search import BeamSearch, ExactSearch, Lexicon, OutOfMemory, Roots

SEARCH_BYTES = 2**28  # rough cap on the memory of one group's search (states and frontier)
FRONTIER_BYTES = 28  # one frontier entry: pid, parent, token, length, trie (int32) + lp (float64)


@dataclass
class Result:
    """The answer for one prefix. completions: (whole word, log P(word | prefix)), best first."""

    prefix: str  # as given, before case folding
    completions: list[tuple[str, float]] = field(default_factory=list)
    truncated: bool = False  # the budget stopped the exact search: the list may not be exact
    error: str | None = None  # why the prefix was not searched (a character outside the vocabulary)
    expansions: int = 0  # nodes evaluated (model.step rows), the prefix's own characters excluded


class Completer:
    """Completes prefixes with a model: `Completer.load().complete("rec").completions`."""

    def __init__(self, model: RNN, vocab: Vocab, lowercase: bool = True):
        if len(vocab) != model.vocab_size:
            raise ValueError(f"vocabulary of {len(vocab)} tokens for a model of {model.vocab_size}")
        self.model, self.vocab, self.lowercase = model, vocab, lowercase
        # (K,) token id -> character; the boundary's "\0" pads fixed-width strings (see rnnac.search._Tree.suffixes)
        self._chars = np.array(["\0", *vocab.chars], dtype="<U1")
        self._evals_per_prefix = 200.0  # running estimate, sizes the groups searched together

    @classmethod
    def load(cls, path: str | os.PathLike | None = None) -> Completer:
        model, vocab, lowercase, _ = load_for_inference(path)
        return cls(model, vocab, lowercase)

    def complete(self, prefix: str, k: int = 5, **options) -> Result:
        """The k most probable words starting with `prefix`; see `complete_many`."""
        return self.complete_many([prefix], k, **options)[0]

    def complete_many(self, prefixes: Sequence[str], k: int = 5, max_length: int = 32, budget: int = 2000,
                      beam: int | None = None, lexicon: Lexicon | None = None) -> list[Result]:
        """One Result per prefix, in order. Exact best-first search, or beam search of width `beam`.

        Prefixes are case-folded as the model was trained. A prefix holding a character outside
        the vocabulary gets a Result with `error` set. Words are at most `max_length` characters,
        prefix included (a longer prefix can only complete to itself). `budget` bounds the node
        evaluations per prefix; `lexicon` restricts completions to its words, still ranked by
        the model (probabilities are not renormalised over the lexicon).
        """
        if k < 1 or max_length < 1 or budget < 1 or (beam is not None and beam < 1):
            raise ValueError("k, max_length, budget and beam must be >= 1")
        results = [Result(prefix) for prefix in prefixes]
        todo = self._fold(results)
        queue, size = list(todo), self._group_size(budget)
        while queue:
            group = queue[:size]
            try:
                # One BLAS thread: these GEMMs are small, and OpenBLAS's extra threads cost more
                # to wake (and fight over a busy machine's cores) than they save. Measured.
                with blas.limit(1):
                    found = self._search(group, k, max_length, budget, beam, lexicon)
            except OutOfMemory:
                size = max(1, len(group) // 2)  # the same prefixes again, in smaller groups
                continue
            queue = queue[len(group):]
            for folded, (words, truncated, used) in zip(group, found):
                for i in todo[folded]:
                    results[i].completions, results[i].truncated, results[i].expansions = list(words), truncated, used
            # Converges to twice the mean expansions per prefix: room for groups of harder prefixes.
            mean_used = sum(used for _, _, used in found) / len(found)
            self._evals_per_prefix = max(16.0, 0.5 * self._evals_per_prefix + mean_used)
            size = self._group_size(budget)
        return results

    def _fold(self, results: list[Result]) -> dict[str, list[int]]:
        """Each distinct folded prefix -> the positions it answers, so it is searched once; sets
        `error` on the results whose prefix holds a character outside the vocabulary."""
        todo: dict[str, list[int]] = {}
        for i, result in enumerate(results):
            folded = result.prefix.lower() if self.lowercase else result.prefix
            char = self.vocab.unknown_char(folded)
            if char is not None:
                result.error = str(UnknownCharError(result.prefix, char))
            else:
                todo.setdefault(folded, []).append(i)
        return todo

    def _bytes_per_eval(self) -> int:
        return self.model.hidden_size * self.model.dtype.itemsize + (self.model.vocab_size - 1) * FRONTIER_BYTES

    def _group_size(self, budget: int) -> int:
        per_prefix = min(budget, self._evals_per_prefix) * self._bytes_per_eval()
        return int(np.clip(SEARCH_BYTES // per_prefix, 1, 4096))

    def _search(self, prefixes: list[str], k, max_length, budget, beam, lexicon):
        """[(completions, truncated, expansions)] for distinct, valid, folded prefixes."""
        encoded = [self.vocab.encode(p) for p in prefixes]
        a, logp = read_prefixes(self.model, encoded)  # (G, H), (G, K)
        lengths = np.array([len(ids) for ids in encoded], dtype=np.int32)  # (G,)
        trie = np.zeros(len(prefixes), dtype=np.int32)  # (G,)
        if lexicon is not None:
            trie[:] = [lexicon.walk(ids) for ids in encoded]
        live = trie >= 0  # a prefix no lexicon word starts with has no completion
        roots = Roots(a[live], logp[live], lengths[live], trie[live])
        if beam:
            search = BeamSearch(self.model, roots, k, max_length, budget, lexicon, width=beam)
        else:
            max_rows = SEARCH_BYTES // self._bytes_per_eval() if len(prefixes) > 1 else None
            search = ExactSearch(self.model, roots, k, max_length, budget, lexicon, max_rows)
        best_lp, best_row, truncated, used = search.run()
        out = [([], False, 0)] * len(prefixes)
        suffixes = search.tree.suffixes(best_row, self._chars)  # (g, k) str
        for j, i in enumerate(np.flatnonzero(live)):
            words = [(prefixes[i] + suffix, float(lp)) for suffix, lp in zip(suffixes[j], best_lp[j]) if lp > -np.inf]
            out[i] = (words, bool(truncated[j]), int(used[j]))
        return out


def read_prefixes(model: RNN, encoded: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    """Feed [boundary, prefix...] to every prefix together: the last hidden state (G, H) and the
    next token's log-probs (G, K). Prefixes of different lengths drop out as they end."""
    G, T = len(encoded), max(map(len, encoded), default=0)
    ids = np.zeros((G, T), dtype=np.int64)  # (G, T), padded
    for i, row in enumerate(encoded):
        ids[i, : len(row)] = row
    lengths = np.array([len(row) for row in encoded])  # (G,)
    a, logp = model.step(model.initial_state(G), np.full(G, BOUNDARY))  # (G, H), (G, K)
    for t in range(T):
        rows = np.flatnonzero(lengths > t)  # prefixes still being read
        a[rows], logp[rows] = model.step(a[rows], ids[rows, t])
    return a, logp
