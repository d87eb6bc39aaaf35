"""Searching the words below a prefix: the lexicon trie, the tree of evaluated nodes, exact
best-first search and beam search.

A completion of the prefix s is a whole word w = s c_1 .. c_m, scored by the model as

    log P(w | s) = sum_j log y^(c_j | s c_1 .. c_{j-1}) + log y^(boundary | w)

The prefix's own characters are given, not scored. Every term is <= 0, so a partial word's
log-prob only falls as characters are added: no word below a node scores more than the node.
That is what makes best-first (uniform-cost) search exact: once k finished words score at least
as much as every node not yet expanded, no better word can remain.

The exact search runs many prefixes together, in rounds. In a round each prefix expands every
frontier node scoring at least its threshold = max(k-th best word, best frontier node -
ROUND_NATS), and those nodes' children above the threshold too, depth by depth: one `model.step`
call evaluates the nodes of all prefixes at one depth. Children below the threshold wait in the
frontier, children that cannot beat the k-th best word are dropped. Between rounds a prefix is
done when its k-th word scores >= its best frontier node (exact), or when its budget of
expansions (node evaluations) is spent (truncated). Words are at most `max_length` characters,
prefix included: a node of that length is evaluated only for the probability that the word ends
there.

Shapes: G prefixes searched together, N nodes evaluated at once, H hidden, K vocabulary (id 0 is
the word boundary); a beam search keeps `width` nodes per prefix.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import NamedTuple

import numpy as np

from rnnac.data import BOUNDARY, Vocab
from rnnac.model import RNN

ROUND_NATS = 1.0  # how far below a prefix's best frontier node one round reaches


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


class Roots(NamedTuple):
    """Where the searches of G prefixes start: the state after reading each prefix."""

    a: np.ndarray  # (G, H) hidden state
    logp: np.ndarray  # (G, K) log-probs of the next token
    length: np.ndarray  # (G,) characters in the prefix
    trie: np.ndarray  # (G,) lexicon node of the prefix (0 without a lexicon)


class OutOfMemory(Exception):
    """A search evaluated more than its max_rows nodes; the caller retries with fewer prefixes."""


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


class TopK:
    """The k best words of each of G prefixes, best first: their log-probs best_lp (G, k), -inf
    where none is found yet, and the tree rows they end at, best_row (G, k)."""

    def __init__(self, n_prefixes: int, k: int):
        self.best_lp = np.full((n_prefixes, k), -np.inf)  # (G, k)
        self.best_row = np.full((n_prefixes, k), -1, dtype=np.int32)  # (G, k)

    def kth(self) -> np.ndarray:
        """Each prefix's k-th best word so far (G,): what a word or node must beat to matter."""
        return self.best_lp[:, -1]

    def merge(self, pid: np.ndarray, lp: np.ndarray, rows: np.ndarray) -> None:
        """Fold new words into each prefix's best k: sort old and new by (prefix, -lp), keep k each."""
        k = self.best_lp.shape[1]
        touched = np.flatnonzero(np.bincount(pid, minlength=len(self.best_lp)))  # not np.unique: it imports numpy.ma (~20 ms)
        all_pid = np.concatenate([np.repeat(touched, k), pid])
        all_lp = np.concatenate([self.best_lp[touched].ravel(), lp])
        all_row = np.concatenate([self.best_row[touched].ravel(), rows])
        order, sorted_pid, rank = _rank_within_groups(all_pid, all_lp)  # on a tie, the word found first stays first
        keep = rank < k
        self.best_lp[sorted_pid[keep], rank[keep]] = all_lp[order][keep]
        self.best_row[sorted_pid[keep], rank[keep]] = all_row[order][keep]


def _children(top: TopK, lexicon: Lexicon | None, max_length: int, rows, pid, logp, lp, length, trie):
    """Record in `top` the words ending at evaluated nodes, then score the nodes' children.

    rows, pid, lp, length, trie: (...) the nodes' tree rows, prefixes, log-probs, lengths and
    lexicon nodes, in any shape (N,) or (G, width); logp (..., K) their next-token log-probs.
    Returns child_lp (..., K-1), the log-prob of the child with token id j + 1 at [..., j], -inf
    where the lexicon or max_length forbids it; and alive (..., K-1), the children that can still
    beat their prefix's k-th word.
    """
    word_lp = lp + logp[..., BOUNDARY]  # (...)
    ends = length > 0 if lexicon is None else lexicon.ends[trie]
    better = ends & (word_lp > top.kth()[pid])
    if better.any():
        top.merge(pid[better], word_lp[better], rows[better])
    child_lp = lp[..., None] + logp[..., 1:]  # (..., K-1), float64: sums of many small log-probs
    if lexicon is not None:
        child_lp[lexicon.children[trie, 1:] < 0] = -np.inf
    child_lp[length >= max_length] = -np.inf  # a word of max_length may only end
    alive = child_lp > top.kth()[pid][..., None]  # (..., K-1)
    return child_lp, alive


class ExactSearch:
    """Batched best-first search in threshold rounds (see the module docstring)."""

    def __init__(self, model: RNN, roots: Roots, k: int, max_length: int, budget: int, lexicon: Lexicon | None,
                 max_rows: int | None = None):
        G = len(roots.a)
        self.model, self.max_length, self.budget, self.lexicon = model, max_length, budget, lexicon
        self.max_rows = max_rows  # raise OutOfMemory past this many evaluated nodes (None: never)
        self.tree = _Tree(roots.a.shape[1], roots.a.dtype, max(64, 64 * G))
        self.top = TopK(G, k)
        self.used = np.zeros(G, dtype=np.int64)  # (G,) nodes evaluated per prefix
        self.frontier: list[dict[str, np.ndarray]] = []  # nodes not yet evaluated, in parts
        rows = self.tree.add(roots.a, np.full(G, -1), np.zeros(G))  # (G,)
        never = np.full(G, np.inf)  # (G,) the roots' children all start in the frontier
        self._expand(rows, np.arange(G, dtype=np.int32), roots.logp, np.zeros(G), roots.length, roots.trie, never)

    def run(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(best_lp (G, k), best_row (G, k), truncated (G,), used (G,))."""
        G = len(self.used)
        done = np.zeros(G, dtype=bool)  # (G,)
        truncated = np.zeros(G, dtype=bool)  # (G,)
        while True:
            fr, best_open = self._open_nodes()
            done |= self.top.kth() >= best_open  # exact: nothing left can beat the k-th word
            cut = ~done & (self.used >= self.budget)
            truncated |= cut
            done |= cut
            if done.all():
                break
            threshold = np.maximum(self.top.kth(), best_open - ROUND_NATS)  # (G,)
            fr = _take(fr, ~done[fr["pid"]])
            now = fr["lp"] >= threshold[fr["pid"]]
            self.frontier = [_take(fr, ~now)]
            self._round(_take(fr, now), threshold)
        return self.top.best_lp, self.top.best_row, truncated, self.used

    def _open_nodes(self):
        """The frontier nodes that can still beat their prefix's k-th word, and the best of
        them per prefix (G,), -inf for none."""
        fr = _concat(self.frontier)
        fr = _take(fr, fr["lp"] > self.top.kth()[fr["pid"]])
        best_open = np.full(len(self.used), -np.inf)  # (G,)
        np.maximum.at(best_open, fr["pid"], fr["lp"])
        return fr, best_open

    def _round(self, layer: dict[str, np.ndarray], threshold: np.ndarray) -> None:
        """Evaluate the layer's nodes, then their children scoring >= threshold, depth by depth."""
        while len(layer["lp"]):
            layer = self._limit(layer)
            a, logp = self.model.step(self.tree.a[layer["parent"]], layer["token"])  # (N, H), (N, K)
            rows = self.tree.add(a, layer["parent"], layer["token"])
            self.used += np.bincount(layer["pid"], minlength=len(self.used))
            if self.max_rows is not None and self.tree.n > self.max_rows:
                raise OutOfMemory
            layer = self._expand(rows, layer["pid"], logp, layer["lp"], layer["length"], layer["trie"], threshold)

    def _expand(self, rows, pid, logp, lp, length, trie, threshold):
        """Record the words ending at N evaluated nodes; return their children scoring >= threshold,
        and put the others that can still beat the k-th word in the frontier."""
        child_lp, alive = _children(self.top, self.lexicon, self.max_length, rows, pid, logp, lp, length, trie)
        now = alive & (child_lp >= threshold[pid][:, None])  # (N, K-1)
        node, column = np.nonzero(alive & ~now)
        self.frontier.append(self._nodes(node, column, rows, pid, child_lp, length, trie))
        node, column = np.nonzero(now)
        return self._nodes(node, column, rows, pid, child_lp, length, trie)

    def _nodes(self, node, column, rows, pid, child_lp, length, trie):
        """Children (of node, token id column + 1) as frontier entries: not yet evaluated."""
        token = (column + 1).astype(np.int32)
        return {"pid": pid[node], "parent": rows[node].astype(np.int32), "token": token, "lp": child_lp[node, column],
                "length": length[node] + 1,
                "trie": self.lexicon.children[trie[node], token] if self.lexicon is not None else trie[node]}

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


class BeamSearch:
    """Beam search: at each depth keep each prefix's `width` best unfinished nodes, in one
    (G, width) array for all prefixes. Not exact: it never scores better than ExactSearch."""

    def __init__(self, model: RNN, roots: Roots, k: int, max_length: int, budget: int, lexicon: Lexicon | None,
                 width: int):
        G, K = len(roots.a), roots.logp.shape[1]
        self.model, self.max_length, self.budget, self.lexicon = model, max_length, budget, lexicon
        self.tree = _Tree(roots.a.shape[1], roots.a.dtype, max(64, 4 * G * width))
        self.top = TopK(G, k)
        self.used = np.zeros(G, dtype=np.int64)  # (G,) nodes evaluated per prefix
        # The beam: one slot per node kept, the prefix's root in slot 0 to start.
        self.pid = np.repeat(np.arange(G, dtype=np.int32), width).reshape(G, width)  # (G, width)
        self.lp = np.full((G, width), -np.inf)  # (G, width) -inf marks an empty slot
        self.lp[:, 0] = 0.0
        self.logp = np.zeros((G, width, K), dtype=roots.logp.dtype)  # (G, width, K)
        self.logp[:, 0] = roots.logp
        self.rows = np.full((G, width), -1, dtype=np.int64)  # (G, width)
        self.rows[:, 0] = self.tree.add(roots.a, np.full(G, -1), np.zeros(G))
        self.length = np.repeat(roots.length, width).reshape(G, width)  # (G, width)
        self.trie = np.repeat(roots.trie, width).reshape(G, width)  # (G, width)

    def run(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(best_lp (G, k), best_row (G, k), truncated (G,), used (G,))."""
        truncated = np.zeros(len(self.used), dtype=bool)  # (G,)
        while True:
            child_lp, alive = _children(self.top, self.lexicon, self.max_length, self.rows, self.pid, self.logp,
                                        self.lp, self.length, self.trie)
            child_lp[~alive] = -np.inf  # cannot beat the k-th word
            lp, slot, token = self._best_children(child_lp)
            alive = lp > -np.inf  # (G, width)
            over = self.used + alive.sum(1) > self.budget
            truncated |= over & alive.any(1)
            alive[over] = False
            lp[~alive] = -np.inf
            if not alive.any():
                break
            self._advance(lp, slot, token, alive)
        return self.top.best_lp, self.top.best_row, truncated, self.used

    def _best_children(self, child_lp):
        """Each prefix's `width` best children (G, width), unordered: their log-probs, the slots
        of their parents and their tokens. child_lp: (G, width, K-1)."""
        G, width, K = *self.lp.shape, child_lp.shape[2] + 1
        flat = child_lp.reshape(G, width * (K - 1))  # (G, width (K-1))
        if width < flat.shape[1]:
            pick = np.argpartition(-flat, width - 1, axis=1)[:, :width]  # (G, width) unordered; linear time
        else:
            pick = np.broadcast_to(np.arange(flat.shape[1]), flat.shape)  # (G, width (K-1)) all of them
        lp = np.take_along_axis(flat, pick, axis=1)  # (G, width) the new beams
        slot, token = pick // (K - 1), (pick % (K - 1) + 1).astype(np.int32)  # (G, width) parent slot, token
        return lp, slot, token

    def _advance(self, lp, slot, token, alive):
        """Make the chosen children (G, width) the beam: evaluate the alive ones, empty the other slots."""
        parent = np.take_along_axis(self.rows, slot, axis=1)  # (G, width)
        self.length = np.take_along_axis(self.length, slot, axis=1) + 1  # (G, width)
        self.trie = np.take_along_axis(self.trie, slot, axis=1)  # (G, width)
        if self.lexicon is not None:
            self.trie = np.where(alive, self.lexicon.children[self.trie, token], 0)
        g, s = np.nonzero(alive)  # (N,) each alive child's prefix and slot
        a, logp = self.model.step(self.tree.a[parent[g, s]], token[g, s])  # (N, H), (N, K)
        self.lp = lp
        self.rows = np.full(lp.shape, -1, dtype=np.int64)  # (G, width)
        self.rows[g, s] = self.tree.add(a, parent[g, s], token[g, s])
        self.logp = np.zeros((*lp.shape, logp.shape[1]), dtype=logp.dtype)  # (G, width, K)
        self.logp[g, s] = logp
        self.used += alive.sum(1)


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
