"""Completing prefixes: the exact k most probable words, beam search, sampling.

A completion of the prefix s is a whole word w = s c_1 .. c_m, scored by the model as

    log P(w | s) = sum_j log y^(c_j | s c_1 .. c_{j-1}) + log y^(boundary | w)

The prefix's own characters are given, not scored. Every term is <= 0, so a partial word's
log-prob only falls as characters are added: no word below a node scores more than the node.
That is what makes best-first (uniform-cost) search exact: once k finished words score at least
as much as every node not yet expanded, no better word can remain.

The exact search runs many prefixes together, in rounds. In a round each prefix expands every
frontier node scoring at least its threshold tau = max(k-th best word, best frontier node -
ROUND_NATS), and those nodes' children above tau too, depth by depth: one `model.step` call
evaluates the nodes of all prefixes at one depth. Children below tau wait in the frontier,
children that cannot beat the k-th best word are dropped. Between rounds a prefix is done when
its k-th word scores >= its best frontier node (exact), or when its budget of expansions (node
evaluations) is spent (truncated). Words are at most `max_length` characters, prefix included:
a node of that length is evaluated only for the probability that the word ends there.

Shapes: G prefixes searched together, N nodes evaluated at once, H hidden, K vocabulary
(id 0 is the word boundary).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rnnac import blas
from rnnac.checkpoint import load_model
from rnnac.data import BOUNDARY, Vocab
from rnnac.errors import CheckpointError, UnknownCharError
from rnnac.model import RNN

BUNDLED_MODEL = Path(__file__).parent / "models" / "en.npz"
ROUND_NATS = 1.0  # how far below a prefix's best frontier node one round reaches
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


def resolve_checkpoint(path: str | os.PathLike | None = None) -> Path:
    """The checkpoint to use: `path`, else $RNNAC_CHECKPOINT, else the bundled model."""
    if path:
        return Path(path)
    if os.environ.get("RNNAC_CHECKPOINT"):
        return Path(os.environ["RNNAC_CHECKPOINT"])
    if not BUNDLED_MODEL.exists():
        raise CheckpointError("no bundled model; train one (`make model`, or `rnnac train configs/default.yaml`) "
                              "and pass it with -c/--checkpoint or $RNNAC_CHECKPOINT")
    return BUNDLED_MODEL


def load(path: str | os.PathLike | None = None) -> tuple[RNN, Vocab, bool, dict]:
    """(model, vocab, lowercase, meta) from `resolve_checkpoint(path)`; CheckpointError if unusable."""
    model, vocab, lowercase, ckpt = load_model(resolve_checkpoint(path))
    return model, vocab, lowercase, ckpt.meta


def describe(path: str | os.PathLike | None = None) -> dict:
    """What `rnnac info` shows: vocabulary, sizes, parameter count, training state, config."""
    path = resolve_checkpoint(path)
    model, vocab, _, meta = load(path)
    return {"path": str(path), "format_version": meta["format_version"], "chars": "".join(vocab.chars),
            "vocab_size": len(vocab), "hidden_size": model.hidden_size, "activation": model.activation,
            "dtype": str(model.dtype), "parameters": model.n_params(), "step": meta["step"],
            "epoch": meta["epoch"], "best_val_loss": meta["best_val_loss"], "config": meta["config"]}


class Lexicon:
    """A trie over the words a completion may be: children (nodes, K) int32, -1 for no child;
    ends (nodes,) bool, True where a word ends. Node 0 is the root (the empty string).

    Words are case-folded as the model was trained; words holding a character outside the
    vocabulary can never be completed and are counted in `skipped`.
    """

    def __init__(self, words: Iterable[str], vocab: Vocab, lowercase: bool = True):
        rows: list[list[int]] = [[-1] * len(vocab)]
        ends = [False]
        self.skipped = 0
        for word in words:
            word = word.lower() if lowercase else word
            if vocab.unknown_char(word) is not None:
                self.skipped += 1
                continue
            node = 0
            for token in vocab.encode(word):
                if rows[node][token] < 0:
                    rows[node][token] = len(rows)
                    rows.append([-1] * len(vocab))
                    ends.append(False)
                node = rows[node][token]
            ends[node] = node != 0  # the empty word is never a completion
        self.children = np.array(rows, dtype=np.int32)  # (nodes, K)
        self.ends = np.array(ends, dtype=bool)  # (nodes,)

    @classmethod
    def from_file(cls, path: str | os.PathLike, vocab: Vocab, lowercase: bool = True) -> Lexicon:
        """A word list file (one word a line, or `word<TAB>count`), as rnnac.wordlist reads it."""
        from rnnac.wordlist import read_word_list

        return cls(read_word_list(path, lowercase=lowercase).words, vocab, lowercase)

    def walk(self, ids: Sequence[int]) -> int:
        """The node the token ids lead to from the root, or -1 if no lexicon word starts so."""
        node = 0
        for token in ids:
            node = int(self.children[node, token])
            if node < 0:
                return -1
        return node


class Completer:
    """Completes prefixes with a model: `Completer.load().complete("rec").completions`."""

    def __init__(self, model: RNN, vocab: Vocab, lowercase: bool = True):
        if len(vocab) != model.vocab_size:
            raise ValueError(f"vocabulary of {len(vocab)} tokens for a model of {model.vocab_size}")
        self.model, self.vocab, self.lowercase = model, vocab, lowercase
        # (K,) token id -> character; the boundary's "\0" pads fixed-width strings (see _Tree.suffixes)
        self._chars = np.array(["\0", *vocab.chars], dtype="<U1")
        self._evals_per_prefix = 200.0  # running estimate, sizes the groups searched together

    @classmethod
    def load(cls, path: str | os.PathLike | None = None) -> Completer:
        model, vocab, lowercase, _ = load(path)
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
        todo: dict[str, list[int]] = {}  # folded prefix -> positions; each distinct one is searched once
        for i, prefix in enumerate(prefixes):
            folded = prefix.lower() if self.lowercase else prefix
            char = self.vocab.unknown_char(folded)
            if char is not None:
                results[i].error = str(UnknownCharError(prefix, char))
            else:
                todo.setdefault(folded, []).append(i)
        queue, size = list(todo), self._group_size(budget)
        while queue:
            group = queue[:size]
            try:
                # One BLAS thread: these GEMMs are small, and OpenBLAS's extra threads cost more
                # to wake (and fight over a busy machine's cores) than they save. Measured.
                with blas.limit(1):
                    found = self._search(group, k, max_length, budget, beam, lexicon)
            except _OutOfMemory:
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

    def _bytes_per_eval(self) -> int:
        return self.model.hidden_size * self.model.dtype.itemsize + (self.model.vocab_size - 1) * FRONTIER_BYTES

    def _group_size(self, budget: int) -> int:
        per_prefix = min(budget, self._evals_per_prefix) * self._bytes_per_eval()
        return int(np.clip(SEARCH_BYTES // per_prefix, 1, 4096))

    def _search(self, prefixes: list[str], k, max_length, budget, beam, lexicon):
        """[(completions, truncated, expansions)] for distinct, valid, folded prefixes."""
        encoded = [self.vocab.encode(p) for p in prefixes]
        a, logp = _read_prefixes(self.model, encoded)  # (G, H), (G, K)
        lengths = np.array([len(ids) for ids in encoded], dtype=np.int32)  # (G,)
        trie = np.zeros(len(prefixes), dtype=np.int32)  # (G,)
        if lexicon is not None:
            trie[:] = [lexicon.walk(ids) for ids in encoded]
        live = trie >= 0  # a prefix no lexicon word starts with has no completion
        if beam:
            search = _BeamSearch(self.model, k, max_length, budget, lexicon, beam)
        else:
            max_rows = SEARCH_BYTES // self._bytes_per_eval() if len(prefixes) > 1 else None
            search = _ExactSearch(self.model, k, max_length, budget, lexicon, max_rows)
        best_lp, best_row, truncated, used = search.run(a[live], logp[live], lengths[live], trie[live])
        out = [([], False, 0)] * len(prefixes)
        suffixes = search.tree.suffixes(best_row, self._chars)  # (g, k) str
        for j, i in enumerate(np.flatnonzero(live)):
            words = [(prefixes[i] + suffix, float(lp)) for suffix, lp in zip(suffixes[j], best_lp[j]) if lp > -np.inf]
            out[i] = (words, bool(truncated[j]), int(used[j]))
        return out

def _read_prefixes(model: RNN, encoded: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
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


class _OutOfMemory(Exception):
    """A group's search grew past SEARCH_BYTES; the caller retries with fewer prefixes."""


class _Tree:
    """Every node a search evaluated: hidden state, parent row, token, depth below its prefix.
    Rows grow by doubling; words are read back from a row by following parents."""

    def __init__(self, hidden_size: int, dtype, capacity: int):
        self.a = np.empty((capacity, hidden_size), dtype=dtype)  # (rows, H)
        self.parent = np.empty(capacity, dtype=np.int32)  # (rows,), -1 at a prefix
        self.token = np.empty(capacity, dtype=np.int32)  # (rows,)
        self.depth = np.empty(capacity, dtype=np.int32)  # (rows,), characters after the prefix
        self.n = 0

    def add(self, a: np.ndarray, parent: np.ndarray, token: np.ndarray) -> np.ndarray:
        """Append N nodes; their row numbers (N,)."""
        n, N = self.n, len(a)
        if n + N > len(self.parent):
            size = max(2 * len(self.parent), n + N)
            for name in ("a", "parent", "token", "depth"):
                old = getattr(self, name)
                new = np.empty((size, *old.shape[1:]), dtype=old.dtype)
                new[:n] = old[:n]
                setattr(self, name, new)
        self.a[n : n + N] = a
        self.parent[n : n + N] = parent
        self.token[n : n + N] = token
        self.depth[n : n + N] = np.where(parent < 0, 0, self.depth[np.maximum(parent, 0)] + 1)
        self.n = n + N
        return np.arange(n, n + N)

    def suffixes(self, rows: np.ndarray, chars: np.ndarray) -> np.ndarray:
        """The characters each row adds to its prefix, as strings; "" where row is -1. rows: (G, k)."""
        flat = rows.ravel()  # (M,)
        D = int(self.depth[flat[flat >= 0]].max(initial=0))
        tokens = np.zeros((len(flat), max(D, 1)), dtype=np.int32)  # (M, D), 0 (read as "\0") pads the end
        cur = flat.copy()
        while True:
            moving = np.flatnonzero((cur >= 0) & (self.parent[np.maximum(cur, 0)] >= 0))
            if not moving.size:
                break
            rows_now = cur[moving]
            tokens[moving, self.depth[rows_now] - 1] = self.token[rows_now]
            cur[moving] = self.parent[rows_now]
        # One fixed-width string per row: numpy drops the trailing "\0" padding.
        strings = chars[tokens].view(f"<U{tokens.shape[1]}")[:, 0]  # (M,)
        return strings.reshape(rows.shape)


class _ExactSearch:
    """Batched best-first search in threshold rounds (see the module docstring)."""

    def __init__(self, model: RNN, k: int, max_length: int, budget: int, lexicon: Lexicon | None,
                 max_rows: int | None = None):
        self.model, self.k, self.max_length, self.budget, self.lexicon = model, k, max_length, budget, lexicon
        self.max_rows = max_rows  # raise _OutOfMemory past this many evaluated nodes (None: never)

    def run(self, a0, logp0, lengths, trie0):
        """(best_lp (G, k), best_row (G, k), truncated (G,), used (G,)) for G prefixes' roots."""
        G, k = len(a0), self.k
        self.tree = _Tree(a0.shape[1], a0.dtype, max(64, 64 * G))
        self.best_lp = np.full((G, k), -np.inf)  # (G, k) the best words so far, best first
        self.best_row = np.full((G, k), -1, dtype=np.int32)  # (G, k) the row each word ends at
        self.frontier: list[dict[str, np.ndarray]] = []
        self.used = np.zeros(G, dtype=np.int64)  # (G,) nodes evaluated per prefix
        done = np.zeros(G, dtype=bool)  # (G,)
        truncated = np.zeros(G, dtype=bool)  # (G,)
        pid = np.arange(G, dtype=np.int32)  # (G,)
        rows = self.tree.add(a0, np.full(G, -1), np.zeros(G))  # (G,)
        never = np.full(G, np.inf)  # (G,) the roots' children all start in the frontier
        self._expand(rows, pid, logp0, np.zeros(G), lengths, trie0, never)
        while True:
            fr = _concat(self.frontier)
            fr = _take(fr, fr["lp"] > self.best_lp[fr["pid"], -1])  # can still beat the k-th word
            best_open = np.full(G, -np.inf)  # (G,) best frontier node per prefix
            np.maximum.at(best_open, fr["pid"], fr["lp"])
            done |= self.best_lp[:, -1] >= best_open  # exact: nothing left can beat the k-th word
            cut = ~done & (self.used >= self.budget)
            truncated |= cut
            done |= cut
            if done.all():
                break
            tau = np.maximum(self.best_lp[:, -1], best_open - ROUND_NATS)  # (G,)
            fr = _take(fr, ~done[fr["pid"]])
            now = fr["lp"] >= tau[fr["pid"]]
            self.frontier = [_take(fr, ~now)]
            layer = _take(fr, now)
            while len(layer["lp"]):
                layer = self._limit(layer)
                a, logp = self.model.step(self.tree.a[layer["parent"]], layer["token"])  # (N, H), (N, K)
                rows = self.tree.add(a, layer["parent"], layer["token"])
                self.used += np.bincount(layer["pid"], minlength=G)
                if self.max_rows is not None and self.tree.n > self.max_rows:
                    raise _OutOfMemory
                layer = self._expand(rows, layer["pid"], logp, layer["lp"], layer["length"], layer["trie"], tau)
        return self.best_lp, self.best_row, truncated, self.used

    def _expand(self, rows, pid, logp, lp, length, trie, tau):
        """Record the words ending at N evaluated nodes; return their children scoring >= tau,
        and put the others that can still beat the k-th word in the frontier."""
        word_lp = lp + logp[:, BOUNDARY]  # (N,)
        ends = length > 0 if self.lexicon is None else self.lexicon.ends[trie]
        better = ends & (word_lp > self.best_lp[pid, -1])
        if better.any():
            self._merge(pid[better], word_lp[better], rows[better])
        child_lp = lp[:, None] + logp[:, 1:]  # (N, K-1), float64: sums of many small log-probs
        if self.lexicon is not None:
            child_trie = self.lexicon.children[trie, 1:]  # (N, K-1)
            child_lp[child_trie < 0] = -np.inf
        child_lp[length >= self.max_length] = -np.inf  # a word of max_length may only end
        floor = self.best_lp[pid, -1][:, None]  # (N, 1) what a child must beat to matter
        alive = child_lp > floor  # (N, K-1)
        now = alive & (child_lp >= tau[pid][:, None])  # (N, K-1)
        r, t = np.nonzero(alive & ~now)
        self.frontier.append(self._nodes(r, t, rows, pid, child_lp, length, trie))
        r, t = np.nonzero(now)
        return self._nodes(r, t, rows, pid, child_lp, length, trie)

    def _nodes(self, r, t, rows, pid, child_lp, length, trie):
        """Children (node r, token t + 1) as frontier entries: not yet evaluated."""
        token = (t + 1).astype(np.int32)
        return {"pid": pid[r], "parent": rows[r].astype(np.int32), "token": token, "lp": child_lp[r, t],
                "length": length[r] + 1,
                "trie": self.lexicon.children[trie[r], token] if self.lexicon is not None else trie[r]}

    def _merge(self, pid, lp, rows):
        """Fold new words into each prefix's best k: sort old and new by (prefix, -lp), keep k each."""
        k = self.k
        touched = np.flatnonzero(np.bincount(pid, minlength=len(self.best_lp)))  # not np.unique: it imports numpy.ma (~20 ms)
        all_pid = np.concatenate([np.repeat(touched, k), pid])
        all_lp = np.concatenate([self.best_lp[touched].ravel(), lp])
        all_row = np.concatenate([self.best_row[touched].ravel(), rows])
        order, sorted_pid, rank = _rank_within_groups(all_pid, all_lp)  # on a tie, the word found first stays first
        keep = rank < k
        self.best_lp[sorted_pid[keep], rank[keep]] = all_lp[order][keep]
        self.best_row[sorted_pid[keep], rank[keep]] = all_row[order][keep]

    def _limit(self, layer):
        """The layer's best nodes that each prefix's remaining budget allows; the rest wait."""
        count = np.bincount(layer["pid"], minlength=len(self.used))
        room = self.budget - self.used
        if (count <= room).all():
            return layer
        order, sorted_pid, rank = _rank_within_groups(layer["pid"], layer["lp"])
        fits = np.empty(len(order), dtype=bool)
        fits[order] = rank < room[sorted_pid]
        self.frontier.append(_take(layer, ~fits))
        return _take(layer, fits)


class _BeamSearch(_ExactSearch):
    """Beam search: at each depth keep each prefix's `beam` best unfinished nodes, in one
    (G, beam) array for all prefixes. Not exact: it never scores better than _ExactSearch."""

    def __init__(self, model: RNN, k: int, max_length: int, budget: int, lexicon: Lexicon | None, width: int):
        super().__init__(model, k, max_length, budget, lexicon)
        self.width = width

    def run(self, a0, logp0, lengths, trie0):
        G, B, k, K = len(a0), self.width, self.k, logp0.shape[1]
        self.tree = _Tree(a0.shape[1], a0.dtype, max(64, 4 * G * B))
        self.best_lp = np.full((G, k), -np.inf)  # (G, k)
        self.best_row = np.full((G, k), -1, dtype=np.int32)  # (G, k)
        self.used = np.zeros(G, dtype=np.int64)  # (G,)
        truncated = np.zeros(G, dtype=bool)  # (G,)
        pid = np.repeat(np.arange(G, dtype=np.int32), B).reshape(G, B)  # (G, B)
        lp = np.full((G, B), -np.inf)  # (G, B) -inf marks an empty slot
        lp[:, 0] = 0.0
        logp = np.zeros((G, B, K), dtype=logp0.dtype)  # (G, B, K)
        logp[:, 0] = logp0
        rows = np.full((G, B), -1, dtype=np.int64)  # (G, B)
        rows[:, 0] = self.tree.add(a0, np.full(G, -1), np.zeros(G))
        length = np.repeat(lengths, B).reshape(G, B)  # (G, B)
        trie = np.repeat(trie0, B).reshape(G, B)  # (G, B)
        while True:
            word_lp = lp + logp[:, :, BOUNDARY]  # (G, B)
            ends = length > 0 if self.lexicon is None else self.lexicon.ends[trie]
            better = ends & (word_lp > self.best_lp[:, -1:])  # (G, B)
            if better.any():
                self._merge(pid[better], word_lp[better], rows[better])
            child_lp = lp[:, :, None] + logp[:, :, 1:]  # (G, B, K-1)
            if self.lexicon is not None:
                child_lp[self.lexicon.children[trie, 1:] < 0] = -np.inf
            child_lp[length >= self.max_length] = -np.inf
            child_lp[child_lp <= self.best_lp[:, -1, None, None]] = -np.inf  # cannot beat the k-th word
            flat = child_lp.reshape(G, B * (K - 1))  # (G, B (K-1))
            if B < flat.shape[1]:
                top = np.argpartition(-flat, B - 1, axis=1)[:, :B]  # (G, B) unordered; linear time
            else:
                top = np.broadcast_to(np.arange(flat.shape[1]), flat.shape)  # (G, B (K-1)) all of them
            lp = np.take_along_axis(flat, top, axis=1)  # (G, B') the new beams
            slot, token = top // (K - 1), (top % (K - 1) + 1).astype(np.int32)  # (G, B') parent slot, token
            alive = lp > -np.inf  # (G, B')
            over = self.used + alive.sum(1) > self.budget
            truncated |= over & alive.any(1)
            alive[over] = False
            lp[~alive] = -np.inf
            if not alive.any():
                break
            parent = np.take_along_axis(rows, slot, axis=1)  # (G, B')
            length = np.take_along_axis(length, slot, axis=1) + 1
            trie = np.take_along_axis(trie, slot, axis=1)
            if self.lexicon is not None:
                trie = np.where(alive, self.lexicon.children[trie, token], 0)
            g, s = np.nonzero(alive)
            a, logp_alive = self.model.step(self.tree.a[parent[g, s]], token[g, s])  # (N, H), (N, K)
            pid = np.repeat(np.arange(G, dtype=np.int32), lp.shape[1]).reshape(lp.shape)
            rows = np.full(lp.shape, -1, dtype=np.int64)
            rows[g, s] = self.tree.add(a, parent[g, s], token[g, s])
            logp = np.zeros((*lp.shape, K), dtype=logp_alive.dtype)  # (G, B', K)
            logp[g, s] = logp_alive
            self.used += alive.sum(1)
        return self.best_lp, self.best_row, truncated, self.used


def _rank_within_groups(group: np.ndarray, score: np.ndarray):
    """Sort by (group, -score), stably; (order, group[order], rank of each within its group, 0 = best).

    _rank_within_groups([1, 0, 1], [0.5, 0.1, 0.9]) -> order [1, 2, 0], groups [0, 1, 1], ranks [0, 0, 1]
    """
    order = np.lexsort((-score, group))
    sorted_group = group[order]
    return order, sorted_group, np.arange(len(order)) - np.searchsorted(sorted_group, sorted_group)


def _concat(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}


def _take(nodes: dict[str, np.ndarray], mask: np.ndarray) -> dict[str, np.ndarray]:
    return {key: value[mask] for key, value in nodes.items()}


def sample(model: RNN, vocab: Vocab, n: int, temperature: float = 1.0, prefix: str = "",
           rng: np.random.Generator | int | None = None, max_length: int = 32, lowercase: bool = True) -> list[str]:
    """n words drawn from the model, each starting with `prefix` (case-folded as the model was
    trained). temperature divides the logits: < 1 sharper, > 1 flatter, 0 the most likely
    character every time. A word is never empty and stops at `max_length` characters.
    rng: a Generator, or a seed for one (None: fresh entropy).

    sample(model, vocab, 3, rng=np.random.default_rng(1)) -> e.g. ["the", "ston", "reading"]
    """
    if n < 0 or temperature < 0 or max_length < 1:
        raise ValueError("n and temperature must be >= 0, max_length >= 1")
    rng = np.random.default_rng(rng)  # passes a Generator through unchanged
    prefix = prefix.lower() if lowercase else prefix
    # 1. Read the prefix once; every sample starts from its state.
    a, logp = _read_prefixes(model, [vocab.encode(prefix)])  # (1, H), (1, K)
    a, logp = np.repeat(a, n, axis=0), np.repeat(logp, n, axis=0)  # (n, H), (n, K)
    tokens = np.zeros((n, max(0, max_length - len(prefix))), dtype=np.int64)  # (n, T), 0 pads
    active = np.arange(n)  # rows still growing
    for t in range(tokens.shape[1]):
        # 2. Next-character distribution, sharpened or flattened by the temperature.
        logits = logp[active].astype(np.float64)  # (n', K)
        if not prefix and t == 0:
            logits[:, BOUNDARY] = -np.inf  # no empty words
        if temperature == 0:
            draw = logits.argmax(axis=1)  # (n',)
        else:
            p = np.exp((logits - logits.max(axis=1, keepdims=True)) / temperature)  # (n', K)
            cdf = np.cumsum(p, axis=1)  # (n', K)
            # 3. Inverse-CDF draw: the first token whose cumulative mass passes u.
            u = rng.random(len(active)) * cdf[:, -1]  # (n',)
            draw = np.minimum((cdf <= u[:, None]).sum(axis=1), logits.shape[1] - 1)  # (n',)
        # 4. Rows that drew the boundary are finished words; the others take one more step.
        tokens[active, t] = draw
        active = active[draw != BOUNDARY]
        if not active.size:
            break
        a[active], logp[active] = model.step(a[active], tokens[active, t])
    return [prefix + vocab.decode(row) for row in tokens.tolist()]
