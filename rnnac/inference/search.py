"""Searching the words below a prefix: how words and nodes are scored, exact best-first search
and beam search, over the model and a lexicon trie (lexicon.py).

Scores. A completion of the prefix s is a whole word w = s v (s itself when v is empty and s is
not; never the empty word). The RNN gives P_rnn(w), the product of y^ over w's characters and
its end, read from the word boundary; a lexicon of words with counts c_w (summing to `total`)
gives P_lex(w) = c_w / total. A word is ranked by

    P(w | s) = P(w) / Z(s)      P(w) = lambda P_lex(w) + (1 - lambda) P_rnn(w)
                                Z(s) = lambda P_lex(s*) + (1 - lambda) P_rnn(s*)

with P_lex(s*) the lexicon mass of the words starting with s and P_rnn(s*) the RNN's probability
of s's characters. Per prefix this is P(w | s) = a c_w + b P_rnn(v, end | s), with
a = lambda / (total Z(s)) and b = (1 - lambda) P_rnn(s*) / Z(s): the prefix's own characters are given.
Modes: "open" is the RNN alone, log P(w | s) = log P_rnn(v, end | s) (no lexicon needed);
"mixture" proposes every word; "known" only the lexicon's words, scored by the same formula (not
renormalised over the lexicon). Whatever the mode, a word found says whether it is a lexicon
word (`known`). A blocklist (`exclude`), a second trie walked alongside, drops its words where
they end.

Why best-first search is exact. Every word below a search node n, the string s u, scores at most

    bound(n) = a maxc(n) + b P_rnn(u | s)

where maxc(n) is the largest count of a lexicon word in n's subtree (0 off the lexicon) and
P_rnn(u | s) the probability of u's characters only: a word's count is at most maxc(n), and its
P_rnn(v, end | s) multiplies P_rnn(u | s) by more factors <= 1. Both terms only fall going down
(a subtree's largest count is at most its parent's), so no node bounds more than its parent: once
k finished words score at least as much as every node not yet expanded, no better word remains.
Scores and bounds are kept in log space, each a logaddexp of its two terms (-inf for an absent
one); in "open" mode a node's bound is its own log-prob, log P_rnn(u | s).

Where counts tie (a plain list: maxc is the same everywhere) that bound cannot tell nodes apart.
A lexicon that knows each word's log P_rnn(w) (stored with the checkpoint: LexiconData.rnn_logp)
bounds its own words below n tighter, by the largest of them, max_w P_rnn(w) / P_rnn(s*) in place
of P_rnn(u | s); words not in it ("mixture") keep the bound above (Scoring.with_word_bounds).

The exact search runs many prefixes together, in rounds. In a round each prefix expands every
frontier node bounding at least its threshold = max(k-th best word, best frontier bound -
ROUND_NATS), and those nodes' children above the threshold too, depth by depth: one `model.step`
call evaluates the nodes of all prefixes at one depth. Children below the threshold wait in the
frontier, children that cannot beat the k-th best word are dropped. Between rounds a prefix is
done when its k-th word scores >= its best frontier bound (exact), or when its budget of
expansions (node evaluations) is spent (truncated). Invented strings (words off the lexicon) are
at most `max_length` characters, prefix included; a lexicon word is never cut: past max_length
the search follows the lexicon only, so a longer prefix completes to lexicon words alone.

Typos (rnnac.inference.typos). With edits allowed, a typed prefix t has many candidate intended prefixes
s, each with its channel log P(t | s), and the exact search runs below all of them at once: each
candidate is a root (Roots.group names its typed prefix, which owns the top k, the budget and the
bounds' threshold), scored as above with offsets that fold in the channel and a normaliser over
every candidate (Scoring.of_typos):

    P(w | t) = P(w) P(t | s) / Z(t)      Z(t) = sum over candidates s of P(s*) P(t | s)

A word below several candidates (s and a longer s') is scored once, from its owner: the
candidate on its path with the best channel, the shortest on a tie (P(w) is the same from each).
A root owned by a shorter candidate gets -inf offsets and is never expanded; a search below an
owner drops the children that are candidates with a better channel (Owners). So each word is
found on one path, its best, and the bounds above still hold root by root: the search stays
exact.

Shapes: G prefixes searched together, n nodes evaluated at once, H hidden, K vocabulary (id 0 is
the word boundary); a beam search keeps `width` nodes per prefix.

Performance notes: a node has few children on the lexicon, so bounds add the lexicon term only
where there is one; frontier columns a search does not walk are None rather than filled, and
nodes are gathered by index rather than by boolean mask.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from rnnac.engine.model import RNN
from rnnac.engine.vocab import BOUNDARY
from rnnac.inference.mixture import prefix_terms
from rnnac.storage.lexicon import Lexicon

ROUND_NATS = 1.0  # how far below a prefix's best frontier bound one round reaches
WORD_LOGP_SLACK = 0.01  # nats added to a lexicon's stored log P_rnn(w): its batch scoring and a search's steps round apart
MODES = ("open", "mixture", "known")  # the RNN alone; the mixture over every word; over lexicon words only


class Roots(NamedTuple):
    """Where the searches of G prefixes start: the state after reading each prefix."""

    a: np.ndarray  # (G, H) hidden state
    logp: np.ndarray  # (G, K) log-probs of the next token
    length: np.ndarray  # (G,) characters in the prefix
    trie: np.ndarray  # (G,) lexicon node of the prefix (-1 off the lexicon, 0 without one)
    block: np.ndarray  # (G,) blocklist node of the prefix (-1 off it, 0 without one)
    prefix_lp: np.ndarray  # (G,) log P_rnn(s*), the RNN's log-prob of the prefix's characters
    group: np.ndarray | None = None  # (G,) the typed prefix each root answers (typos: several roots each); None: its own
    cand: np.ndarray | None = None  # (G,) with typos, each root's node in its typed prefix's candidate trie
    root: np.ndarray | None = None  # (G,) with typos, each root's index into the scoring's offsets


class Pending(NamedTuple):
    """With typos, candidate roots whose states are not read yet (the candidate tries' leaves):
    the search evaluates one only when its bound comes up, from its parent's state."""

    parent_a: np.ndarray  # (P', H) the states of their parents, distinct
    parent: np.ndarray  # (P,) each one's parent, a row of parent_a
    token: np.ndarray  # (P,) its last character
    roots: Roots  # a, logp unused (None); length, trie, block, group, cand, root as for Roots


class Owners(NamedTuple):
    """With typos (rnnac.inference.typos), which root a word below several candidate prefixes is scored
    from: the one whose channel log P(t | s) is best (the shortest on a tie), since P(w) is the
    same from each. Arrays over the candidate tries' nodes of all typed prefixes, with a last
    row for "off the tries" (index -1)."""

    children: np.ndarray  # (n + 1, K) int32 child node by token, -1 for none
    channel: np.ndarray  # (n + 1,) float64 log P(t | s), -inf where a node is no candidate
    root_channel: np.ndarray  # (G,) each root's


class Nodes(NamedTuple):
    """Search nodes, each column (n,) in the exact search or (G, width) in a beam. A column the
    search does not walk is None: block without a blocklist, root, cand and new_root without
    typos; parent and token in a beam, which keeps its nodes' rows; row until a node is evaluated."""

    pid: np.ndarray  # int32 the prefix (with typos, the typed prefix) each node answers
    parent: np.ndarray | None  # int32 tree row of the node's parent
    token: np.ndarray | None  # int32 the node's last character
    lp: np.ndarray  # float64 log P_rnn(u | s), the RNN's log-prob of the characters below the prefix
    length: np.ndarray  # int32 characters, prefix included
    trie: np.ndarray  # int32 lexicon node (see Roots.trie)
    bound: np.ndarray | None  # float64 the node's bound; lp itself when the scoring says so (Scoring.bound_is_lp); None in a beam
    block: np.ndarray | None  # int32 blocklist node
    root: np.ndarray | None  # int32 with typos, the root whose offsets score the node
    cand: np.ndarray | None  # int32 with typos, its node in the candidate tries
    new_root: np.ndarray | None  # bool with typos, a root evaluated late (Pending)
    row: np.ndarray | None = None  # tree row, once evaluated

    def take(self, index: np.ndarray) -> Nodes:
        """The nodes at `index` (M,); a bound that is lp stays lp."""
        taken = [None if column is None else column[index] for column in self]
        if self.bound is self.lp:
            taken[_BOUND] = taken[_LP]
        return Nodes(*taken)

    @staticmethod
    def concat(parts: list[Nodes]) -> Nodes:
        """The nodes of every part, in order (the parts have the same columns)."""
        joined = [None if column is None else np.concatenate([p[i] for p in parts]) for i, column in enumerate(parts[0])]
        if parts[0].bound is parts[0].lp:
            joined[_BOUND] = joined[_LP]
        return Nodes(*joined)


_LP, _BOUND = Nodes._fields.index("lp"), Nodes._fields.index("bound")


class Scoring:
    """How the searches of G prefixes score words and bound nodes (see the module docstring): the
    mode, the lexicon walked alongside (its words are `known`), the blocklist walked alongside,
    and each prefix's log a and log b, `lex_offset` and `rnn_offset` (G,) (None in "open" mode).
    Node arrays below have any shape (...): (n,) in the exact search, (G, width) in a beam."""

    def __init__(self, mode: str = "open", lexicon: Lexicon | None = None, exclude: Lexicon | None = None,
                 lex_offset: np.ndarray | None = None, rnn_offset: np.ndarray | None = None, owners: Owners | None = None):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        if mode != "open" and (lexicon is None or lex_offset is None or rnn_offset is None):
            raise ValueError(f"mode {mode!r} needs a lexicon and the prefixes' offsets (Scoring.of)")
        self.mode, self.lexicon, self.exclude = mode, lexicon, exclude
        self.lex_offset, self.rnn_offset, self.owners = lex_offset, rnn_offset, owners
        self.word_offset = None  # (G,) log b - log P_rnn(s*) + slack: with_word_bounds
        # In "open" mode without typos a node's bound is its log-prob: the search keys nodes by it.
        self.bound_is_lp = mode == "open" and rnn_offset is None

    @classmethod
    def of(cls, roots: Roots, mode: str = "open", lexicon: Lexicon | None = None, mixture_lambda: float = 0.0,
           exclude: Lexicon | None = None) -> Scoring:
        """The scoring of these roots: log a = log lambda - log total - log Z(s) and log b =
        log (1 - lambda) + log P_rnn(s*) - log Z(s); both -inf where Z(s) = 0 (lambda = 1 and no
        lexicon word starts with s), a prefix with no completion."""
        if mode == "open" or lexicon is None:
            return cls(mode, lexicon, exclude)
        lex_weight, lex, rnn = prefix_terms(lexicon, mixture_lambda, roots.trie, roots.prefix_lp)
        log_z = np.logaddexp(lex, rnn)  # (G,)
        live = log_z > -np.inf
        log_z = np.where(live, log_z, 0.0)
        lex_offset = np.where(live, lex_weight - log_z, -np.inf)  # (G,)
        rnn_offset = np.where(live, rnn - log_z, -np.inf)  # (G,)
        return cls(mode, lexicon, exclude, lex_offset, rnn_offset).with_word_bounds(roots.prefix_lp)

    def with_word_bounds(self, prefix_lp: np.ndarray) -> Scoring:
        """Bound lexicon words by the lexicon's largest log P_rnn(w) below a node too, when it
        knows them (Lexicon.has_word_logp): a word w = s v below node n scores at most
        logaddexp(log a maxc(n), log b - log P_rnn(s*) + max over n's words of log P_rnn(w)),
        since b P_rnn(v, end | s) = b P_rnn(w) / P_rnn(s*). Where counts tie (a plain list), the
        count term is the same everywhere and only this one tells nodes apart. prefix_lp (G,),
        or (R,) with typos, is log P_rnn(s*) of the prefixes the offsets are for."""
        if self.mode != "open" and self.lexicon.has_word_logp:
            possible = np.isfinite(prefix_lp) & (self.rnn_offset > -np.inf)
            self.word_offset = np.where(possible, self.rnn_offset - np.where(possible, prefix_lp, 0.0) + WORD_LOGP_SLACK,
                                        -np.inf)
        return self

    @classmethod
    def of_typos(cls, roots: Roots, channel: np.ndarray, owned: np.ndarray, owners: Owners, mode: str = "open",
                 lexicon: Lexicon | None = None, mixture_lambda: float = 0.0, exclude: Lexicon | None = None) -> Scoring:
        """The scoring of every candidate prefix s of the typed prefixes t (roots.group): a word
        w = s v scores P(w) P(t | s) / Z(t), Z(t) the sum over t's candidates of P(s*) P(t | s),
        P the mixture (the RNN alone in "open" mode) and channel (R,) log P(t | s). Only the
        roots that own their words (owned (R,); see Owners) are searched: the others get -inf."""
        G = int(roots.group.max()) + 1 if len(roots.group) else 0
        if mode == "open" or lexicon is None:
            lex_weight, lex, rnn = 0.0, np.full(len(channel), -np.inf), roots.prefix_lp  # (R,) each
        else:
            lex_weight, lex, rnn = prefix_terms(lexicon, mixture_lambda, roots.trie, roots.prefix_lp)
        mass = np.logaddexp(lex, rnn) + channel  # (R,) log P(s*) P(t | s)
        log_z = np.full(G, -np.inf)  # (G,) log Z(t), summed stably: max, then the sum of exp below it
        np.maximum.at(log_z, roots.group, mass)
        top = np.where(log_z > -np.inf, log_z, 0.0)
        total = np.zeros(G)
        np.add.at(total, roots.group, np.exp(mass - top[roots.group]))
        with np.errstate(divide="ignore"):
            log_z = top + np.log(total)  # -inf where no candidate has mass
        shift = np.where(owned & (log_z[roots.group] > -np.inf), channel - log_z[roots.group], -np.inf)  # (R,)
        lex_offset = None if mode == "open" else lex_weight + shift
        return cls(mode, lexicon, exclude, lex_offset, rnn + shift, owners).with_word_bounds(roots.prefix_lp)

    def step(self, trie: np.ndarray, block: np.ndarray | None, token: np.ndarray, cand: np.ndarray | None = None):
        """The lexicon, blocklist and candidate nodes (...) one token further down (block None
        without a blocklist, cand None without typos)."""
        if self.lexicon is not None:
            trie = self.lexicon.child(trie, token)
        if self.exclude is not None:
            block = self.exclude.child(block, token)
        if self.owners is not None:
            cand = self.owners.children[cand, token]
        return trie, block, cand

    def words(self, pid, word_lp, length, trie, block) -> tuple[np.ndarray, np.ndarray]:
        """(scores, may end) (...) of the words ending at nodes; word_lp (...) is log P_rnn(v, end | s);
        pid (...) indexes the offsets: the prefix, or with typos the root."""
        ends = self.lexicon.ends(trie) if self.mode == "known" else length > 0
        if self.exclude is not None:
            ends = ends & ~self.exclude.ends(block)
        if self.mode == "open":
            return (word_lp, ends) if self.rnn_offset is None else (self.rnn_offset[pid] + word_lp, ends)
        lexical = self.lex_offset[pid] + self.lexicon.log_count(trie)  # (...) log a c_w
        return np.logaddexp(lexical, self.rnn_offset[pid] + word_lp), ends

    def bounds(self, pid, child_lp, trie, cand=None) -> np.ndarray:
        """The bounds (..., K-1) of nodes' children, from their RNN log-probs child_lp (..., K-1)
        and the nodes' lexicon nodes trie (...) (and candidate nodes cand with typos); -inf where
        the mode forbids a child or another root owns it. In "open" mode without typos this is
        child_lp itself."""
        if self.owners is not None:
            key = self._bounds(pid, child_lp, trie)
            below = self.owners.children[cand, 1:]  # (..., K-1) the children's candidate nodes
            key[self.owners.channel[below] > self.owners.root_channel[pid][..., None]] = -np.inf
            return key
        return self._bounds(pid, child_lp, trie)

    def _bounds(self, pid, child_lp, trie) -> np.ndarray:
        if self.mode == "open":
            return child_lp if self.rnn_offset is None else self.rnn_offset[pid][..., None] + child_lp
        below = self.lexicon.child_rows(trie)  # (..., K-1) the children's lexicon nodes
        key = self.rnn_offset[pid][..., None] + child_lp  # (..., K-1) log b P_rnn(u | s)
        # The lexicon term only where there is one (logaddexp(-inf, x) = x exactly).
        on = np.nonzero(below >= 0)  # (M,) each, the children on the lexicon
        lexical = self.lex_offset[pid[on[:-1]]] + self.lexicon.log_max_below(below[on])  # (M,) log a maxc
        if self.word_offset is None:
            key[on] = np.logaddexp(lexical, key[on])
        else:  # lexicon words below by their best log P_rnn; other words ("mixture") by the child's own
            known = np.logaddexp(lexical, self.word_offset[pid[on[:-1]]] + self.lexicon.rnn_max_below(below[on]))
            key[on] = known if self.mode == "known" else np.maximum(known, key[on])
        if self.mode == "known":
            key[below < 0] = -np.inf
        return key

    def root_bounds(self, root: np.ndarray, trie: np.ndarray) -> np.ndarray:
        """With typos, the bounds (P,) of roots not yet evaluated: log(a maxc(s) + b), the bound
        of a node with u empty (module docstring)."""
        key = self.rnn_offset[root].astype(np.float64)  # log b P_rnn("" | s) = log b
        if self.mode != "open":
            key = np.logaddexp(self.lex_offset[root] + self.lexicon.log_max_below(trie), key)
            if self.mode == "known":
                key[trie < 0] = -np.inf
        return key

    def on_lexicon(self, trie: np.ndarray) -> np.ndarray | None:
        """Whether the children (..., K-1) of these lexicon nodes (...) are on the lexicon; None without one."""
        return None if self.lexicon is None else self.lexicon.child_rows(trie) >= 0

    def known(self, trie: np.ndarray) -> np.ndarray:
        """Whether words ending at these lexicon nodes (...) are lexicon words."""
        return self.lexicon.ends(trie) if self.lexicon is not None else np.zeros(np.shape(trie), dtype=bool)


class OutOfMemory(Exception):
    """A search evaluated more than its max_rows nodes; the caller retries with fewer prefixes."""


class _Tree:
    """Every node a search evaluated: hidden state, parent row, token, depth below its prefix,
    lexicon node. Rows grow by doubling; words are read back from a row by following parents."""

    COLUMNS = ("a", "parent", "token", "depth", "trie")

    def __init__(self, hidden_size: int, dtype, capacity: int):
        self.a = np.empty((capacity, hidden_size), dtype=dtype)  # (rows, H)
        self.parent = np.empty(capacity, dtype=np.int32)  # (rows,), -1 at a prefix
        self.token = np.empty(capacity, dtype=np.int32)  # (rows,)
        self.depth = np.empty(capacity, dtype=np.int32)  # (rows,), characters after the prefix
        self.trie = np.empty(capacity, dtype=np.int32)  # (rows,), lexicon node (see Roots.trie)
        self.n = 0

    def add(self, a: np.ndarray, parent: np.ndarray, token: np.ndarray, trie: np.ndarray) -> np.ndarray:
        """Append n nodes; their row numbers (n,)."""
        start, end = self.n, self.n + len(a)
        if end > len(self.parent):
            size = max(2 * len(self.parent), end)
            for name in self.COLUMNS:
                old = getattr(self, name)
                new = np.empty((size, *old.shape[1:]), dtype=old.dtype)
                new[:start] = old[:start]
                setattr(self, name, new)
        self.a[start:end] = a
        self.parent[start:end] = parent
        self.token[start:end] = token
        self.trie[start:end] = trie
        self.depth[start:end] = np.where(parent < 0, 0, self.depth[np.maximum(parent, 0)] + 1)
        self.n = end
        return np.arange(start, end)

    def suffixes(self, rows: np.ndarray, chars: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The characters each row adds to its prefix, as strings, "" where row is -1; and the
        root row each hangs from (-1 where row is -1). rows: (G, k); both (G, k)."""
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
        return spell_rows(tokens, chars).reshape(rows.shape), cur.reshape(rows.shape)


def spell_rows(tokens: np.ndarray, chars: np.ndarray) -> np.ndarray:
    """One string (M,) per row of token ids (M, D), id 0 padding the end; chars (K,) "<U1" maps
    ids to characters, "\0" at 0: each row is one fixed-width string, whose trailing "\0"
    padding numpy drops."""
    return np.ascontiguousarray(chars[tokens]).view(f"<U{tokens.shape[1]}")[:, 0]  # (M,)


class TopK:
    """The k best words of each of G prefixes, best first: their scores, log P(w | s), best_lp
    (G, k), -inf where none is found yet, the tree rows they end at, best_row (G, k), and
    whether each is a lexicon word, best_known (G, k). With max_new, at most that many words
    of a prefix's k are not lexicon words (invented strings): the rest are its best lexicon words."""

    def __init__(self, n_prefixes: int, k: int, max_new: int | None = None):
        self.best_lp = np.full((n_prefixes, k), -np.inf)  # (G, k)
        self.best_row = np.full((n_prefixes, k), -1, dtype=np.int32)  # (G, k)
        self.best_known = np.zeros((n_prefixes, k), dtype=bool)  # (G, k)
        self.max_new = max_new

    def kth(self) -> np.ndarray:
        """Each prefix's k-th best word so far (G,): what a word or node must beat to matter."""
        return self.best_lp[:, -1]

    def floor(self, pid: np.ndarray, trie: np.ndarray) -> np.ndarray:
        """What nodes (...) of prefixes pid at lexicon nodes trie (...) must beat to matter: the
        k-th word, and off the lexicon, where only invented strings lie, the max_new-th of them
        once the top holds that many."""
        kth = self.kth()[pid]
        if not self.max_new:
            return kth
        new = ~self.best_known & (self.best_lp > -np.inf)  # (G, k)
        full = new.sum(axis=1) >= self.max_new  # (G,)
        new_kth = np.where(full, np.where(new, self.best_lp, np.inf).min(axis=1), -np.inf)  # (G,)
        return np.where(trie < 0, np.maximum(kth, new_kth[pid]), kth)

    def merge(self, pid: np.ndarray, lp: np.ndarray, rows: np.ndarray, known: np.ndarray) -> None:
        """Fold new words into each prefix's best k: sort old and new by (prefix, -lp), keep k each
        (and of the words not known, max_new at most)."""
        k = self.best_lp.shape[1]
        touched = np.flatnonzero(np.bincount(pid, minlength=len(self.best_lp)))  # not np.unique: it imports numpy.ma (~20 ms)
        all_pid = np.concatenate([np.repeat(touched, k), pid])
        all_lp = np.concatenate([self.best_lp[touched].ravel(), lp])
        all_row = np.concatenate([self.best_row[touched].ravel(), rows])
        all_known = np.concatenate([self.best_known[touched].ravel(), known])
        order, sorted_pid, rank = _rank_within_groups(all_pid, all_lp)  # on a tie, the word found first stays first
        if self.max_new is not None:  # an invented string past the first max_new of its prefix leaves
            new = ~all_known[order]
            start = np.searchsorted(sorted_pid, sorted_pid)  # (M,) where each one's prefix starts
            before = np.concatenate([[0], np.cumsum(new)])  # (M + 1,) invented strings before each position
            allowed = ~new | (before[1:] - before[start] <= self.max_new)
            order, sorted_pid = order[allowed], sorted_pid[allowed]
            rank = np.arange(len(order)) - np.searchsorted(sorted_pid, sorted_pid)
        keep = rank < k
        self.best_lp[sorted_pid[keep], rank[keep]] = all_lp[order][keep]
        self.best_row[sorted_pid[keep], rank[keep]] = all_row[order][keep]
        self.best_known[sorted_pid[keep], rank[keep]] = all_known[order][keep]


def _children(top: TopK, scoring: Scoring, max_length: int, node: Nodes, logp: np.ndarray):
    """Record in `top` the words ending at evaluated nodes, then bound the nodes' children.

    node: evaluated Nodes (...), (n,) or (G, width); logp (..., K) their next-token log-probs. Returns child_lp (..., K-1), the
    RNN log-prob of the child with token id j + 1 at [..., j]; child_key (..., K-1) its bound, -inf
    where the mode or max_length forbids it; and alive (..., K-1), the children that can still
    beat their prefix's k-th word.
    """
    pid, length = node.pid, node.length
    root = pid if node.root is None else node.root  # with typos, each typed prefix (pid) has many roots, each scored its own way
    score, ends = scoring.words(root, node.lp + logp[..., BOUNDARY], length, node.trie, node.block)  # (...)
    long = length >= max_length  # (...) from here on only lexicon words: an invented string is at most max_length
    better = ends & ((length <= max_length) | scoring.known(node.trie)) & (score > top.kth()[pid])
    if better.any():
        top.merge(pid[better], score[better], node.row[better], scoring.known(node.trie[better]))
    child_lp = node.lp[..., None] + logp[..., 1:]  # (..., K-1), float64: sums of many small log-probs
    child_key = scoring.bounds(root, child_lp, node.trie, node.cand)  # (..., K-1)
    if long.any():  # past max_length a child must be on the lexicon (its words' bound holds there as anywhere)
        on = scoring.on_lexicon(node.trie[long])  # (M, K-1), None without a lexicon
        child_key[long] = -np.inf if on is None else np.where(on, child_key[long], -np.inf)
    alive = child_key > top.floor(pid, node.trie)[..., None]  # (..., K-1) children of a node off the lexicon are off it too
    return child_lp, child_key, alive


class ExactSearch:
    """Batched best-first search by bound, in threshold rounds (see the module docstring)."""

    def __init__(self, model: RNN, roots: Roots, k: int, max_length: int, budget: int, scoring: Scoring,
                 max_rows: int | None = None, groups: int | None = None, pending: Pending | None = None,
                 max_new: int | None = None):
        R = len(roots.a)  # roots: one per prefix, or with typos (roots.group) many per typed prefix, of `groups`
        G = R if groups is None else groups
        self.model, self.max_length, self.budget, self.scoring = model, max_length, budget, scoring
        self.max_rows = max_rows  # raise OutOfMemory past this many evaluated nodes (None: never)
        self.tree = _Tree(roots.a.shape[1], roots.a.dtype, max(64, 64 * G + R + (0 if pending is None else len(pending.parent))))
        self.top = TopK(G, k, max_new)
        self.evaluations = np.zeros(G, dtype=np.int64)  # (G,) nodes evaluated per prefix
        self.frontier: list[Nodes] = []  # nodes not yet evaluated, in parts
        root = _root_nodes(roots, scoring, self.tree.add(roots.a, np.full(R, -1), np.zeros(R), roots.trie))  # (R,) each
        self.root_of_row = dict(zip(root.row.tolist(), root.root.tolist())) if root.root is not None else {}  # tree row -> root
        never = np.full(G, np.inf)  # (G,) the roots' children all start in the frontier
        self._expand(root, roots.logp, never)
        if pending is not None and len(pending.parent):
            self._pend(pending)

    def _pend(self, pending: Pending) -> None:
        """Put roots not yet evaluated in the frontier, their parents' states as rows of the tree
        (rows no word ends at, parent -1)."""
        roots, P = pending.roots, len(pending.parent)
        anchor = self.tree.add(pending.parent_a, np.full(len(pending.parent_a), -1), np.zeros(len(pending.parent_a)),
                               np.full(len(pending.parent_a), -1))
        self.frontier.append(Nodes(roots.group.astype(np.int32), anchor[pending.parent].astype(np.int32),
                                   pending.token.astype(np.int32), np.zeros(P), roots.length, roots.trie,
                                   self.scoring.root_bounds(roots.root, roots.trie),
                                   roots.block if self.scoring.exclude is not None else None, roots.root.astype(np.int32),
                                   roots.cand, np.ones(P, dtype=bool)))

    def run(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(best scores (G, k), best_row (G, k), truncated (G,), evaluations (G,))."""
        G = len(self.evaluations)
        done = np.zeros(G, dtype=bool)  # (G,)
        truncated = np.zeros(G, dtype=bool)  # (G,)
        while True:
            fr, best_open = self._open_nodes()
            done |= self.top.kth() >= best_open  # exact: nothing left can beat the k-th word
            cut = ~done & (self.evaluations >= self.budget)
            truncated |= cut
            done |= cut
            if done.all():
                break
            threshold = np.maximum(self.top.kth(), best_open - ROUND_NATS)  # (G,)
            fr = _take(fr, ~done[fr.pid])
            now = fr.bound >= threshold[fr.pid]
            self.frontier = [_take(fr, ~now)]
            self._round(_take(fr, now), threshold)
        return self.top.best_lp, self.top.best_row, truncated, self.evaluations

    def _open_nodes(self):
        """The frontier nodes that can still beat their prefix's k-th word, and the best bound of
        them per prefix (G,), -inf for none."""
        fr = Nodes.concat(self.frontier)
        fr = _take(fr, fr.bound > self.top.floor(fr.pid, fr.trie))
        best_open = np.full(len(self.evaluations), -np.inf)  # (G,)
        np.maximum.at(best_open, fr.pid, fr.bound)
        return fr, best_open

    def _round(self, layer: Nodes, threshold: np.ndarray) -> None:
        """Evaluate the layer's nodes, then their children bounding >= threshold, depth by depth."""
        while len(layer.pid):
            layer = self._limit(layer)
            a, logp = self.model.step(self.tree.a[layer.parent], layer.token)  # (n, H), (n, K)
            layer = layer._replace(row=self.tree.add(a, layer.parent, layer.token, layer.trie))
            if layer.new_root is not None and layer.new_root.any():  # roots evaluated now: words below them start here
                rows = layer.row[layer.new_root]
                self.tree.parent[rows], self.tree.depth[rows] = -1, 0
                self.root_of_row.update(zip(rows.tolist(), layer.root[layer.new_root].tolist()))
            self.evaluations += np.bincount(_charged(layer), minlength=len(self.evaluations))
            if self.max_rows is not None and self.tree.n > self.max_rows:
                raise OutOfMemory
            layer = self._expand(layer, logp, threshold)

    def _expand(self, node, logp, threshold):
        """Record the words ending at n evaluated nodes; return their children bounding >= threshold,
        and put the others that can still beat the k-th word in the frontier."""
        child_lp, child_key, alive = _children(self.top, self.scoring, self.max_length, node, logp)
        now = alive & (child_key >= threshold[node.pid][:, None])  # (n, K-1)
        self.frontier.append(self._nodes(np.nonzero(alive & ~now), node, child_lp, child_key))
        return self._nodes(np.nonzero(now), node, child_lp, child_key)

    def _nodes(self, where, node, child_lp, child_key):
        """Children (of node i, token id column + 1) as frontier entries: not yet evaluated."""
        i, column = where
        token = (column + 1).astype(np.int32)
        block = None if node.block is None else node.block[i]
        cand = None if node.cand is None else node.cand[i]
        trie, block, cand = self.scoring.step(node.trie[i], block, token, cand)
        lp = child_lp[i, column]
        typos = node.root is not None
        return Nodes(node.pid[i], node.row[i].astype(np.int32), token, lp, node.length[i] + 1, trie,
                     lp if self.scoring.bound_is_lp else child_key[i, column], block, node.root[i] if typos else None,
                     cand, np.zeros(len(i), dtype=bool) if typos else None)

    def _limit(self, layer):
        """The layer's best nodes that each prefix's remaining budget allows; the rest wait.
        Roots evaluated late (typos) are not charged: reading a candidate is not a search step."""
        count = np.bincount(_charged(layer), minlength=len(self.evaluations))
        room = self.budget - self.evaluations
        if (count <= room).all():
            return layer
        fits = layer.new_root.copy() if layer.new_root is not None else np.zeros(len(layer.pid), dtype=bool)
        charged = np.flatnonzero(~fits)
        order, sorted_pid, rank = _rank_within_groups(layer.pid[charged], layer.bound[charged])
        fits[charged[order]] = rank < room[sorted_pid]
        self.frontier.append(_take(layer, ~fits))
        return _take(layer, fits)


class BeamSearch:
    """Beam search: at each depth keep each prefix's `width` unfinished nodes of best bound, in
    (G, width) arrays for all prefixes. Not exact: it never scores better than ExactSearch."""

    def __init__(self, model: RNN, roots: Roots, k: int, max_length: int, budget: int, scoring: Scoring,
                 width: int, max_new: int | None = None):
        G, K = len(roots.a), roots.logp.shape[1]
        self.model, self.max_length, self.budget, self.scoring = model, max_length, budget, scoring
        self.tree = _Tree(roots.a.shape[1], roots.a.dtype, max(64, 4 * G * width))
        self.top = TopK(G, k, max_new)
        self.evaluations = np.zeros(G, dtype=np.int64)  # (G,) nodes evaluated per prefix

        def slots(first, empty, dtype):  # (G, width): the prefix's root in slot 0, the other slots empty
            beam = np.full((G, width), empty, dtype=dtype)
            beam[:, 0] = first
            return beam

        # An empty slot has lp -inf and lexicon node -1 (the dead end): no word, no child.
        self.node = Nodes(np.repeat(np.arange(G, dtype=np.int32), width).reshape(G, width), None, None,
                          slots(0.0, -np.inf, np.float64), slots(roots.length, 0, np.int32), slots(roots.trie, -1, np.int32),
                          None, slots(roots.block, -1, np.int32), None, None, None,
                          slots(self.tree.add(roots.a, np.full(G, -1), np.zeros(G), roots.trie), -1, np.int64))
        self.logp = np.zeros((G, width, K), dtype=roots.logp.dtype)  # (G, width, K)
        self.logp[:, 0] = roots.logp

    def run(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(best scores (G, k), best_row (G, k), truncated (G,), evaluations (G,))."""
        truncated = np.zeros(len(self.evaluations), dtype=bool)  # (G,)
        while True:
            child_lp, child_key, alive = _children(self.top, self.scoring, self.max_length, self.node, self.logp)
            child_key = np.where(alive, child_key, -np.inf)  # (G, width, K-1) -inf: cannot beat the k-th word
            G = len(child_key)
            pick = self._best_children(child_key)  # (G, width)
            key = np.take_along_axis(child_key.reshape(G, -1), pick, axis=1)  # (G, width)
            lp = np.take_along_axis(child_lp.reshape(G, -1), pick, axis=1)  # (G, width)
            alive = key > -np.inf  # (G, width)
            over = self.evaluations + alive.sum(1) > self.budget
            truncated |= over & alive.any(1)
            alive[over] = False
            if not alive.any():
                break
            self._advance(np.where(alive, lp, -np.inf), pick, alive)
        return self.top.best_lp, self.top.best_row, truncated, self.evaluations

    def _best_children(self, child_key):
        """Each prefix's `width` children of best bound (G, width), unordered, as indices into its
        flattened (width (K-1)) children. child_key: (G, width, K-1)."""
        G, width = self.node.lp.shape
        flat = child_key.reshape(G, -1)  # (G, width (K-1))
        if width < flat.shape[1]:
            return np.argpartition(-flat, width - 1, axis=1)[:, :width]  # (G, width) unordered; linear time
        return np.broadcast_to(np.arange(flat.shape[1]), flat.shape)  # (G, width (K-1)) all of them

    def _advance(self, lp, pick, alive):
        """Make the chosen children (G, width) the beam: evaluate the alive ones, empty the other slots."""
        K = self.logp.shape[2]
        slot, token = pick // (K - 1), (pick % (K - 1) + 1).astype(np.int32)  # (G, width) parent slot, token
        parent = np.take_along_axis(self.node.row, slot, axis=1)  # (G, width)
        trie, block, _ = self.scoring.step(*(np.take_along_axis(column, slot, axis=1) for column in (self.node.trie, self.node.block)),
                                           token)  # (G, width) each
        g, s = np.nonzero(alive)  # (n,) each alive child's prefix and slot
        a, logp = self.model.step(self.tree.a[parent[g, s]], token[g, s])  # (n, H), (n, K)
        rows = np.full(lp.shape, -1, dtype=np.int64)  # (G, width)
        rows[g, s] = self.tree.add(a, parent[g, s], token[g, s], trie[g, s])
        self.node = self.node._replace(row=rows, lp=lp, length=np.take_along_axis(self.node.length, slot, axis=1) + 1,
                                       trie=np.where(alive, trie, -1), block=block)
        self.logp = np.zeros((*lp.shape, K), dtype=logp.dtype)  # (G, width, K)
        self.logp[g, s] = logp
        self.evaluations += alive.sum(1)


def _charged(layer: Nodes) -> np.ndarray:
    """The prefixes (pid) of a layer's nodes that count against the budget: all but the roots
    evaluated late (typos), whose reading is the candidates', as the roots read first are."""
    return layer.pid if layer.new_root is None else layer.pid[~layer.new_root]


def _rank_within_groups(group: np.ndarray, score: np.ndarray):
    """Sort by (group, -score), stably; (order, group[order], rank of each within its group, 0 = best).

    _rank_within_groups([1, 0, 1], [0.5, 0.1, 0.9]) -> order [1, 2, 0], groups [0, 1, 1], ranks [0, 0, 1]
    """
    order = np.lexsort((-score, group))
    sorted_group = group[order]
    return order, sorted_group, np.arange(len(order)) - np.searchsorted(sorted_group, sorted_group)


def _root_nodes(roots: Roots, scoring: Scoring, row: np.ndarray) -> Nodes:
    """The R roots as evaluated search nodes, at tree rows `row` (R,): each its own prefix's, or
    with typos (roots.group) its typed prefix's; with typos they carry their root and candidate."""
    R = len(row)
    pid = np.arange(R, dtype=np.int32) if roots.group is None else roots.group.astype(np.int32)  # (R,)
    typos, lp = scoring.owners is not None, np.zeros(R)
    return Nodes(pid, None, None, lp, roots.length, roots.trie, lp if scoring.bound_is_lp else np.full(R, np.inf),
                 roots.block if scoring.exclude is not None else None, roots.root.astype(np.int32) if typos else None,
                 roots.cand if typos else None, np.zeros(R, dtype=bool) if typos else None, row)


def _take(nodes: Nodes, mask: np.ndarray) -> Nodes:
    return nodes.take(np.flatnonzero(mask))
